#!/bin/bash
# make install into a DESTDIR, and the installed files at work: the writer and
# mosqlite-pub run from there against a real broker, a C program built with the
# installed header, pkg-config file and shared library, the Mosquitto drop-in loaded by
# a real broker, the man pages rendered by man, the unit checked by systemd-analyze,
# the journald log format, and make uninstall.
. "$(dirname "$0")/lib.sh"
# Plain build whatever BIN says (under make asan too): this is `make install` as a user
# runs it.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" BIN=bin BUILD=build "$@"; }

R=$T/root
if mk install DESTDIR="$R" >"$T/install.log" 2>&1; then
    ok "make install DESTDIR=... (PREFIX /usr/local)"
else
    fail "make install DESTDIR=... (PREFIX /usr/local)"; cat "$T/install.log"; exit 1
fi
P=$R/usr/local
for f in bin/mosqlite-pub bin/mosqlite bin/mosqlite-work share/man/man1/mosqlite.1 \
         share/bash-completion/completions/mosqlite sbin/mosqlite-writer lib/libmosqlite.a lib/libmosqlite.so.0.1.0 \
         include/mosqlite.h lib/pkgconfig/mosqlite.pc share/man/man8/mosqlite-writer.8 \
         share/man/man1/mosqlite-pub.1 share/man/man1/mosqlite-work.1 share/man/man3/libmosqlite.3 \
         share/doc/mosqlite/PROTOCOL.md share/doc/mosqlite/README.md \
         share/doc/mosqlite/replicas.md share/doc/mosqlite/deployment.md share/doc/mosqlite/jobs.md \
         share/mosqlite/web/index.html \
         share/mosqlite/mosquitto.conf.example share/mosqlite/secure/mosquitto.conf \
         lib/systemd/system/mosqlite-writer.service; do
    [ -f "$P/$f" ] || fail "installed: $f"
done
for f in etc/mosqlite/mosqlite.conf etc/mosqlite/schema/001_builds.sql \
         etc/mosquitto/conf.d/mosqlite.conf etc/sysusers.d/mosqlite.conf; do
    [ -f "$R/$f" ] || fail "installed: /$f"
done
ok "every file in place"
check "the installed page is whole: its stylesheet and scripts inline, no file named" \
    bash -c "grep -q 'mosqliteMqtt' '$P/share/mosqlite/web/index.html' &&
             grep -q 'window.mosqliteLogView' '$P/share/mosqlite/web/index.html' &&
             ! grep -q '<script src=\\|rel=\"stylesheet\"' '$P/share/mosqlite/web/index.html'"
check_eq "libmosqlite.so.0 -> libmosqlite.so.0.1.0, libmosqlite.so -> libmosqlite.so.0" \
    "$(readlink "$P/lib/libmosqlite.so.0") $(readlink "$P/lib/libmosqlite.so")" "libmosqlite.so.0.1.0 libmosqlite.so.0"
check_eq "soname" "$(objdump -p "$P/lib/libmosqlite.so.0.1.0" | awk '$1 == "SONAME" {print $2}')" libmosqlite.so.0
check_eq "libmosqlite needs only libmosquitto, libcjson and libc (no SQLite)" \
    "$(objdump -p "$P/lib/libmosqlite.so.0.1.0" | awk '$1 == "NEEDED" {print $2}' | grep -v '^libc\.so' | sort | tr '\n' ' ')" \
    "libcjson.so.1 libmosquitto.so.1 "
check "no @VARIABLE@ left in any installed file of ours" \
    bash -c "! grep -rIl '@[A-Z]*@' '$R'"
check "the unit runs the installed writer with /etc/mosqlite/mosqlite.conf" \
    grep -q "^ExecStart=/usr/local/sbin/mosqlite-writer -c /etc/mosqlite/mosqlite.conf\$" \
    "$P/lib/systemd/system/mosqlite-writer.service"
check "mosqlite.conf: database in the state directory, schema in /etc" \
    bash -c "grep -qx 'db /var/lib/mosqlite/mosqlite.db' '$R/etc/mosqlite/mosqlite.conf' &&
             grep -qx 'schema /etc/mosqlite/schema' '$R/etc/mosqlite/mosqlite.conf'"
check "the secure broker config serves the installed page" \
    grep -qx "http_dir /usr/local/share/mosqlite/web" "$P/share/mosqlite/secure/mosquitto.conf"

# The man pages render without warnings and point to the protocol reference.
for m in "$P"/share/man/man*/*; do
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>"$T/man.err")
    check "man -l $(basename "$m") renders without warnings" test -n "$out" -a ! -s "$T/man.err"
    sed 's/^/# /' "$T/man.err"
    echo "$out" | grep -q "/usr/local/share/doc/mosqlite/PROTOCOL.md" ||
        fail "$(basename "$m") names PROTOCOL.md's installed path"
done

# A real broker with the installed drop-in (as Debian's mosquitto.conf includes conf.d).
DROPIN_PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\ninclude_dir %s\n' "$DROPIN_PORT" \
    "$R/etc/mosquitto/conf.d" >"$T/dropin.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/dropin.conf"
mosquitto -c "$T/dropin.conf" >"$T/dropin.log" 2>&1 & DROPIN_PID=$!
PIDS="$PIDS $DROPIN_PID"
check "a broker starts with the installed conf.d drop-in" wait_until 10 port_open "$DROPIN_PORT"
kill "$DROPIN_PID" 2>/dev/null

# The installed programs, from the DESTDIR, against a real broker: the installed config
# and schema, with the database and port of this test (the command line wins).
broker_start
BIN=$P/sbin WRITER_ARGS="-c $R/etc/mosqlite/mosqlite.conf" SCHEMA=$R/etc/mosqlite/schema writer_start
"$P/bin/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 20 builds '{"id": 41, "name": "installed #41"}' \
    >"$T/pub.out" 2>&1
check "installed mosqlite-pub --wait: exit 0 once applied" [ $? = 0 ]; sed 's/^/# /' "$T/pub.out"
check_eq "the installed writer applied it" "$(sql 'SELECT name FROM builds WHERE id = 41')" "installed #41"
out=$("$P/bin/mosqlite" -p "$MQTT_PORT" --json stats 2>&1)
check "installed mosqlite: the writer answers stats ($out)" grep -q '"cmd":"stats","ok":true' <<<"$out"
check "the installed bash completion completes mosqlite's commands" bash -c \
    ". '$P/share/bash-completion/completions/mosqlite'; COMP_WORDS=(mosqlite rep); COMP_CWORD=1; _mosqlite;
     [ \"\${COMPREPLY[*]}\" = replicas ]"

# A C program built against the installed library, as pkg-config describes it.
export PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R
check_eq "pkg-config --modversion mosqlite" "$(pkg-config --modversion mosqlite)" 0.1.0
cc -std=c11 -Wall -Wextra -Werror -o "$T/probe" "$ROOT/tests/c/install_probe.c" \
    $(pkg-config --cflags --libs mosqlite) 2>"$T/cc.err"
check "a program builds with the installed header and pkg-config file" [ $? = 0 ]; sed 's/^/# /' "$T/cc.err"
check_eq "it needs libmosqlite.so.0" "$(objdump -p "$T/probe" | awk '$1 == "NEEDED" && /mosqlite/ {print $2}')" \
    libmosqlite.so.0
out=$(LD_LIBRARY_PATH=$P/lib "$T/probe" "$MQTT_PORT" builds '{"values": {"id": 42, "name": "from C"}}')
check_eq "and sends through the installed shared library" "$out" "version 0.1.0: applied"
check_eq "row from C" "$(sql 'SELECT name FROM builds WHERE id = 42')" "from C"
writer_stop; check "the installed writer stops cleanly on SIGTERM" [ $? = 0 ]

# Log format: timestamped on a file; journald's when stderr is the JOURNAL_STREAM.
"$P/sbin/mosqlite-writer" --db /proc/mosqlite/x.db 2>"$T/plain.log"
check "plain log line: time, program, level" \
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z mosqlite-writer: error: /proc/mosqlite/x.db' "$T/plain.log"
: >"$T/journal.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.log") \
    "$P/sbin/mosqlite-writer" --db /proc/mosqlite/x.db 2>>"$T/journal.log"
check "journald log line: priority prefix, no time, no program" \
    grep -qE '^<3>/proc/mosqlite/x.db: ' "$T/journal.log"
JOURNAL_STREAM=1:2 "$P/sbin/mosqlite-writer" --db /proc/mosqlite/x.db 2>"$T/other.log"
check "JOURNAL_STREAM naming another stream: plain format" grep -q ' mosqlite-writer: error: ' "$T/other.log"

# systemd-analyze verify needs the unit's ExecStart and man page where it says: an
# install with PREFIX (and SYSCONFDIR) in this test's directory, no DESTDIR.
if command -v systemd-analyze >/dev/null; then
    mk install PREFIX="$T/prefix" SYSCONFDIR="$T/prefix/etc" >"$T/install2.log" 2>&1 ||
        fail "make install PREFIX=$T/prefix"
    MANPATH=$T/prefix/share/man systemd-analyze verify \
        "$T/prefix/lib/systemd/system/mosqlite-writer.service" >"$T/verify.out" 2>&1
    check "systemd-analyze verify mosqlite-writer.service" test $? = 0 -a ! -s "$T/verify.out"
    sed 's/^/# verify: /' "$T/verify.out"
    # The sandbox as systemd rates it (0 = locked down, 10 = none): 1.4 at the time
    # of writing; more than 3 means a protection was dropped.
    systemd-analyze security --offline=true --threshold=30 \
        "$T/prefix/lib/systemd/system/mosqlite-writer.service" >"$T/security.out" 2>&1
    rc=$?
    level=$(grep -o 'exposure level[^:]*: [0-9.]*' "$T/security.out" | grep -o '[0-9.]*$')
    check "systemd-analyze security: exposure at most 3.0 (${level:-?})" [ "$rc" = 0 ]
else
    fail "systemd-analyze missing (tests/deps.sh installs systemd)"
fi

mk uninstall DESTDIR="$R" >"$T/uninstall.log" 2>&1
check "make uninstall" [ $? = 0 ]
check_eq "what is left: the configuration only" \
    "$(cd "$R" && find . -type f | sort | tr '\n' ' ')" \
    "./etc/mosqlite/mosqlite.conf ./etc/mosqlite/schema/001_builds.sql ./etc/mosqlite/schema/002_build_results.sql ./etc/mosqlite/schema/003_builds_lost.sql ./etc/mosqlite/schema/004_build_attempts.sql ./etc/mosquitto/conf.d/mosqlite.conf "
