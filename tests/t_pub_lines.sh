#!/bin/bash
# mosqlite-pub --lines COLUMN --with JSON TABLE: each stdin line is one insert, sent as
# it arrives (a live log pipe), in order; bad UTF-8 bytes become U+FFFD, a trailing CR
# is dropped, an empty line is an empty row, an overlong line is split into rows.
# (--no-tee: the copy on stdout is tested in t_pub_pipe.sh; here it would put bad
# UTF-8 into the test log.)
. "$(dirname "$0")/lib.sh"
lines_of() { sql "SELECT group_concat(line, '|') FROM (SELECT line FROM build_logs WHERE build_id = $1 ORDER BY id)"; }
count_is() { [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = $1")" = "$2" ]; }

broker_start
writer_start

# Live: a line is in the database while the producer is still running.
mkfifo "$T/pipe"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 7}' build_logs < "$T/pipe" & PUB=$!
exec 3>"$T/pipe"
echo "first line" >&3
wait_until 5 count_is 7 1; check "first line stored before the second is written" [ $? = 0 ]
echo "second line" >&3
wait_until 5 count_is 7 2; check "second line stored while stdin stays open" [ $? = 0 ]
for i in $(seq 1 500); do echo "line $i"; done >&3
exec 3>&-
wait "$PUB"; rc=$?
check_eq "--lines: exit 0" "$rc" 0
want="first line|second line|$(seq -f 'line %g' 1 500 | paste -sd '|')"
wait_until 30 count_is 7 502   # without --wait, exit 0 means the broker has them all
check_eq "--lines: all 502 lines in order" "$(lines_of 7)" "$want"

# Bad UTF-8, CR LF, an empty line, a line without a final newline.
printf 'ok \xff\xfe end\nhalf \xe2\x82\ncrlf\r\n\n\xe2\x82\xac euro\nlast' |
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --wait --lines line --with '{"build_id": 8}' build_logs; rc=$?
check_eq "bad UTF-8 with --wait: exit 0" "$rc" 0
check_eq "6 rows, nothing dropped" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 8')" 6
check_eq "invalid bytes became U+FFFD" "$(sql "SELECT hex(line) FROM build_logs WHERE build_id = 8 ORDER BY id LIMIT 1")" \
    "$(printf 'ok \xef\xbf\xbd\xef\xbf\xbd end' | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
check_eq "truncated sequence became U+FFFD" "$(sql "SELECT line FROM build_logs WHERE build_id = 8 ORDER BY id LIMIT 1 OFFSET 1")" "half �"
check_eq "CR LF, empty, UTF-8, no final newline" "$(sql "SELECT group_concat(quote(line), ',') FROM (SELECT line FROM build_logs WHERE build_id = 8 ORDER BY id LIMIT 4 OFFSET 2)")" "'crlf','','€ euro','last'"

# A 100,000-byte line is split into rows of at most 32 KiB.
head -c 100000 /dev/zero | tr '\0' 'x' | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --wait --lines line --with '{"build_id": 9}' build_logs; rc=$?
check_eq "long line: exit 0" "$rc" 0
check_eq "long line: 4 rows, 100000 bytes in all" "$(sql "SELECT count(*) || ',' || sum(length(line)) || ',' || max(length(line)) FROM build_logs WHERE build_id = 9")" "4,100000,32768"

# Lines over 32 KiB are cut into rows of at most 32 KiB, between characters, whether
# the line arrives whole (one read from a file) or in pieces (a pipe fed 1000 bytes at a
# time); a line of exactly 32 KiB (with or without a CR before its newline) is one row.
long_input() {
    perl -e 'print "x" x 40001, "\n", "y" x 60000, "\n", "z" x 32768, "\n", "w" x 32769, "\n",
             "v" x 32768, "\r\n", "a" x 32767, "\xe2\x82\xac", "b\n", "end\n"'
}
rows_of() { sql "SELECT group_concat(sig, ',') FROM (SELECT substr(line, 1, 1) || length(CAST(line AS BLOB)) AS sig FROM build_logs WHERE build_id = $1 ORDER BY id)"; }
long_want="x32768,x7233,y32768,y27232,z32768,w32768,w1,v32768,a32767,€4,e3"
long_input > "$T/long.txt"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 11}' build_logs < "$T/long.txt"; rc=$?
check_eq "long lines read whole: exit 0" "$rc" 0
check_eq "long lines read whole: cut into rows of at most 32 KiB" "$(rows_of 11)" "$long_want"
perl -e 'open(F, "<", $ARGV[0]) or die; $| = 1; while (read(F, $b, 1000)) { syswrite(STDOUT, $b); select(undef, undef, undef, 0.0005) }' "$T/long.txt" |
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 12}' build_logs; rc=$?
check_eq "long lines read in pieces: exit 0" "$rc" 0
check_eq "long lines read in pieces: the same rows" "$(rows_of 12)" "$long_want"

# --with must not fight the column: the line wins.
echo "mine" | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --wait --lines line --with '{"build_id": 10, "line": "theirs"}' build_logs
check_eq "--with naming the column: the line wins" "$(lines_of 10)" mine
