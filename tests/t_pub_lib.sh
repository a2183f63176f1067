#!/bin/bash
# The publisher library from C: tests/c/pub_lib_test.c built against build/libmosqlite.a
# (unit checks, then against a broker and the writer, then a retry while the writer is
# down), the shared library linked the same way, and the pkg-config template.
. "$(dirname "$0")/lib.sh"
CFLAGS_T="-std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -I$ROOT/publisher"
cc $CFLAGS_T -o "$T/pub_lib_test" "$ROOT/tests/c/pub_lib_test.c" "$ROOT/build/libmosqlite.a" \
    $(pkg-config --cflags --libs libmosquitto libcjson) -lpthread 2>"$T/cc.err"
check "test program builds against libmosqlite.a" [ $? = 0 ] || { cat "$T/cc.err"; exit 1; }
# As `make install` lays it out: libmosqlite.so.0 (the soname) and libmosqlite.so.
mkdir -p "$T/lib" && cp "$ROOT/build/libmosqlite.so" "$T/lib/libmosqlite.so.0" && ln -s libmosqlite.so.0 "$T/lib/libmosqlite.so"
cc $CFLAGS_T -o "$T/pub_lib_test_so" "$ROOT/tests/c/pub_lib_test.c" -L"$T/lib" -lmosqlite \
    -Wl,-rpath,"$T/lib" $(pkg-config --libs libmosquitto libcjson)
check "and against libmosqlite.so" [ $? = 0 ]
"$T/pub_lib_test_so" unit >/dev/null; check "the shared build runs" [ $? = 0 ]

"$T/pub_lib_test" unit

broker_start
writer_start
"$T/pub_lib_test" live "$MQTT_PORT"
# The 100 sent without receipts are with the broker, not necessarily applied yet.
live_rows() { sql 'SELECT count(*) FROM build_logs WHERE build_id BETWEEN 77 AND 79'; }
live_rows_are() { [ "$(live_rows)" = "$1" ]; }
wait_until 30 live_rows_are 402
check_eq "rows from C: 1 + 1 + 300 + 100" "$(live_rows)" 402

writer_stop
"$T/pub_lib_test" retry "$MQTT_PORT" & P=$!
sleep 1.5
writer_start
wait "$P"
check_eq "retried request applied exactly once" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 80')" 1

# The pkg-config template, as `make install` fills it in.
mkdir -p "$T/pc"
sed -e "s|@PREFIX@|/opt/mq|g" -e "s|@LIBDIR@|/opt/mq/lib|g" -e "s|@INCLUDEDIR@|/opt/mq/include|g" \
    -e "s|@VERSION@|0.1.0|g" "$ROOT/publisher/mosqlite.pc.in" > "$T/pc/mosqlite.pc"
pc() { PKG_CONFIG_PATH=$T/pc pkg-config "$@" mosqlite | sed 's/ *$//'; }
check_eq "pkg-config --libs mosqlite" "$(pc --libs)" "-L/opt/mq/lib -lmosqlite"
check "pkg-config --cflags has the include dir" grep -q -- "-I/opt/mq/include" <<<"$(pc --cflags)"
check "pkg-config --static --libs adds libmosquitto and cJSON" grep -q -- "-lmosquitto.*-lcjson" <<<"$(pc --static --libs)"
check_eq "pkg-config --modversion" "$(pc --modversion)" 0.1.0
