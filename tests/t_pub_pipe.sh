#!/bin/bash
# The log pipe and the build wrapper (mosqlite-pub --lines ... [-- COMMAND]) never
# harm the build: the wrapper exits with the command's own status whether the broker
# is up, down from the start, killed in the middle or back later; every line lands
# once and in order (per stream) when the broker is back; the tee passes the output
# through, and a reader of the tee that goes away fails nothing; the builds row ends
# with the right status, exit_code and duration_ms; a build run again is a new attempt
# whose log is kept apart; a cancel (the row set to cancelled) stops the command.
. "$(dirname "$0")/lib.sh"

# wrap BUILD [options] -- COMMAND...: the wrapper on build_logs for build BUILD.
wrap() { b=$1; shift; "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with "{\"build_id\": $b}" build_logs "$@"; }
# same DESC GOT WANT: like check_eq, but a long mismatch is shown by its size and first difference.
same() {
    if [ "$2" = "$3" ]; then ok "$1"; return; fi
    fail "$1 (got ${#2} bytes, want ${#3}; first difference: $(cmp <(echo "$2" | tr , '\n') <(echo "$3" | tr , '\n') 2>&1 | head -1))"
}
# lines_of BUILD STREAM: the build's lines of one stream, in id order, joined by commas.
lines_of() { sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = $1 AND stream IS '$2' ORDER BY id)"; }
# want PREFIX N: "PREFIX 1,PREFIX 2,...,PREFIX N".
want() { seq -f "$1 %g" 1 "$2" | paste -sd ,; }
count_is() { [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = $1")" = "$2" ]; }
build_row() { sql "SELECT status || ',' || exit_code || ',' || (duration_ms IS NOT NULL) || ',' || (finished_at IS NOT NULL) FROM builds WHERE id = $1"; }
finished() { [ -n "$(sql "SELECT 1 FROM builds WHERE id = $1 AND finished_at IS NOT NULL")" ]; }
# A command writing N lines to stdout and N to stderr, sleeping S every 10, exiting E.
gen() { echo "for i in \$(seq 1 $1); do echo \"out \$i\"; echo \"err \$i\" >&2; [ \$((i % 10)) = 0 ] && sleep $2; done; exit $3"; }

# ---- 1. broker down from the start, back during the build ----
MQTT_PORT=$(free_port) WS_PORT=$(free_port)
export MQTT_PORT WS_PORT
wrap 1 --linger 60 -- sh -c "$(gen 300 0.1 5)" >"$T/b1.out" 2>"$T/b1.err.log" &
PUB=$!
sleep 1
broker_start
writer_start
wait "$PUB"; rc=$?
check_eq "broker down at start, back mid-build: exit status is the command's (5)" "$rc" 5
same "tee: stdout passed through" "$(paste -sd , "$T/b1.out")" "$(want out 300)"
same "tee: the command's stderr on stderr" "$(grep '^err ' "$T/b1.err.log" | paste -sd ,)" "$(want err 300)"
same "stdout lines once, in order" "$(lines_of 1 stdout)" "$(want out 300)"
same "stderr lines once, in order" "$(lines_of 1 stderr)" "$(want err 300)"
check_eq "builds row: failed, exit 5" "$(build_row 1)" "failed,5,1,1"
check "said the broker was away" grep -q 'kept in the spool' "$T/b1.err.log"
note "$(grep -c '' "$T/b1.err.log") stderr lines; first of the pipe's own: $(grep -m1 'mosqlite-pub' "$T/b1.err.log")"

# ---- 2. the broker killed (SIGKILL) in the middle of a build, then back ----
wrap 2 --linger 60 -- sh -c "$(gen 2000 0.02 0)" >"$T/b2.out" 2>"$T/b2.err.log" &
PUB=$!
wait_until 30 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT count(*) FROM build_logs WHERE build_id = 2')\" -ge 500 ]" ||
    fail "500 lines applied before the kill"
broker_kill
note "broker killed at $(sql 'SELECT count(*) FROM build_logs WHERE build_id = 2') rows"
sleep 1
broker_start
wait "$PUB"; rc=$?
check_eq "broker killed mid-build: exit status is the command's (0)" "$rc" 0
wait_until 30 count_is 2 4000
same "after the kill: stdout lines once, in order" "$(lines_of 2 stdout)" "$(want out 2000)"
same "after the kill: stderr lines once, in order" "$(lines_of 2 stderr)" "$(want err 2000)"
check_eq "builds row: passed, exit 0" "$(build_row 2)" "passed,0,1,1"
check_eq "tee: all 2000 stdout lines" "$(wc -l < "$T/b2.out")" 2000

# ---- 3. duration, the name, a command killed by a signal, a command not found ----
wrap 3 --no-tee -- sh -c 'sleep 1; exit 0'; rc=$?
check_eq "passing build: exit 0" "$rc" 0
check "duration_ms covers the command's second" [ "$(sql 'SELECT duration_ms FROM builds WHERE id = 3')" -ge 1000 ]
check_eq "name is the command line" "$(sql 'SELECT name FROM builds WHERE id = 3')" "sh -c sleep 1; exit 0"
note "build 3: duration_ms $(sql 'SELECT duration_ms FROM builds WHERE id = 3') for sleep 1"
wrap 4 --build-name "linux #4" -- sh -c 'echo before; kill -TERM $$' >/dev/null; rc=$?
check_eq "killed by SIGTERM: exit 128+15" "$rc" 143
check_eq "killed by SIGTERM: cancelled, exit_code 143" "$(build_row 4)" "cancelled,143,1,1"
check_eq "--build-name" "$(sql 'SELECT name FROM builds WHERE id = 4')" "linux #4"
wrap 5 -- /nonexistent/command 2>"$T/b5.err.log"; rc=$?
check_eq "command not found: exit 127" "$rc" 127
check_eq "command not found: failed, 127" "$(build_row 5)" "failed,127,1,1"
check_eq "command not found: the reason is a stderr line of the build" \
    "$(sql "SELECT stream || ':' || (line LIKE '%cannot run /nonexistent/command%') FROM build_logs WHERE build_id = 5")" "stderr:1"

# ---- 4. a reader of the tee that goes away fails nothing ----
set -o pipefail
wrap 6 -- sh -c 'seq 1 20000; exit 0' 2>"$T/b6.err.log" | head -1 >/dev/null
st=("${PIPESTATUS[@]}")
check_eq "wrapper | head -1: the wrapper exits 0" "${st[0]}" 0
wait_until 30 count_is 6 20000
check_eq "wrapper | head -1: all 20000 lines still recorded" "$(sql 'SELECT count(DISTINCT line) || "," || count(*) FROM build_logs WHERE build_id = 6')" "20000,20000"
check_eq "wrapper | head -1: passed" "$(build_row 6)" "passed,0,1,1"
(seq 1 20000; exit 0) | "$BIN/mosqlite-pub" -p "$MQTT_PORT" -v --lines line --with '{"build_id": 7}' build_logs 2>"$T/p7.err.log" | head -1 >/dev/null
st=("${PIPESTATUS[@]}")
check_eq "build | pipe | head -1: the build exits 0 (no SIGPIPE)" "${st[0]}" 0
check_eq "build | pipe | head -1: the pipe exits 0" "${st[1]}" 0
check_eq "build | pipe | head -1: all lines stored" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 7')" 20000
note "20000 lines piped, broker up: $(grep -o 'lines 20000.*' "$T/p7.err.log")"
set +o pipefail

# ---- 5. the plain pipe with the broker away for good: the build never notices ----
broker_stop
set -o pipefail
start=$(date +%s%N)
(seq 1 3000; exit 0) | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --spool "$T/spool8" --linger 1 \
    --time-column ts --lines line --with '{"build_id": 8}' build_logs 2>"$T/p8.err.log" >"$T/p8.out"
st=("${PIPESTATUS[@]}")
took=$(( ($(date +%s%N) - start) / 1000000 ))
set +o pipefail
check_eq "broker away: the build exits 0 (no SIGPIPE)" "${st[0]}" 0
check_eq "broker away: the pipe exits 0" "${st[1]}" 0
check_eq "broker away: the tee passed all 3000 lines" "$(wc -l < "$T/p8.out")" 3000
check "broker away: says the lines are kept and how to send them" grep -q 'mosqlite-pub --deliver' "$T/p8.err.log"
note "3000 lines with the broker away, --linger 1: the pipe took $took ms in all"
check "broker away: the spool is left on disk" [ -f "$T/spool8/state" ]

# How long the command itself takes with the broker away (a note, not a check).
t0=$(date +%s%N); seq 1 200000 >/dev/null; bare=$(( ($(date +%s%N) - t0) / 1000000 ))
t0=$(date +%s%N)
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --spool "$T/spool16" --linger 0 --lines line --with '{"build_id": 16}' build_logs \
    -- sh -c 'start=$(date +%s%N); seq 1 200000; echo "took $(( ($(date +%s%N) - start) / 1000000 ))" >&2' >/dev/null 2>"$T/p16.err.log"
all=$(( ($(date +%s%N) - t0) / 1000000 ))
note "200000 lines with the broker away: the command ran $(sed -n 's/^took //p' "$T/p16.err.log") ms inside the wrapper ($bare ms alone), the wrapper $all ms in all"

# A spool in use by another pipe: the second one still copies and reads to the end.
sleep 3 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --spool "$T/spool10" --linger 0 --lines line build_logs 2>/dev/null &
HOLDER=$!
wait_until 5 test -f "$T/spool10/state"
set -o pipefail
(seq 1 100; exit 0) | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --spool "$T/spool10" --lines line build_logs 2>"$T/p10.err.log" >"$T/p10.out"
st=("${PIPESTATUS[@]}")
set +o pipefail
check_eq "spool in use: the build and the pipe exit 0" "${st[0]},${st[1]}" "0,0"
check_eq "spool in use: the tee still passes every line" "$(wc -l < "$T/p10.out")" 100
check "spool in use: said on stderr" grep -q 'in use by another mosqlite-pub' "$T/p10.err.log"
wait "$HOLDER"

# A wrapped build with the broker away and a spool too small: drops are said and counted.
wrap 9 --spool "$T/spool9" --spool-max 65536 --linger 1 -- sh -c 'for i in $(seq 1 3000); do echo "line $i of a build log that is long enough to fill a small spool"; done; exit 2' \
    >/dev/null 2>"$T/b9.err.log"; rc=$?
check_eq "spool full: exit status is the command's (2)" "$rc" 2
check "spool full: said on stderr" grep -q 'the spool is full' "$T/b9.err.log"
dropped=$(sed -n 's/.* \([0-9]*\) lines were dropped.*/\1/p' "$T/b9.err.log")
check "spool full: the drops are counted" [ "${dropped:-0}" -gt 0 ]

# ---- 6. the broker back: --deliver sends what was left, once and in order ----
before=$(date -u +%Y-%m-%dT%H:%M:%S)
sleep 1
broker_start
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --deliver "$T/spool8" 2>"$T/d8.err.log"; rc=$?
check_eq "--deliver: exit 0" "$rc" 0
same "--deliver: every line once, in order" "$(sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = 8 ORDER BY id)")" "$(seq 1 3000 | paste -sd ,)"
check "--deliver: the spool is removed" [ ! -e "$T/spool8" ]
check "--time-column: a line's time is when it was read, not when it was applied" \
    [ "$(sql "SELECT max(ts) < '$before' FROM build_logs WHERE build_id = 8")" = 1 ]
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --deliver "$T/spool9" 2>"$T/d9.err.log"; rc=$?
check_eq "--deliver (after drops): exit 0" "$rc" 0
kept=$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 9')
check_eq "after drops: kept + dropped = 3000 lines" "$((kept + dropped))" 3000
same "after drops: the kept lines are the first ones, in order" \
    "$(lines_of 9 stdout)" "$(seq -f 'line %g of a build log that is long enough to fill a small spool' 1 "$kept" | paste -sd ,)"
check_eq "after drops: builds row failed, exit 2" "$(build_row 9)" "failed,2,1,1"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --deliver "$T/nothing" 2>/dev/null; rc=$?
check_eq "--deliver on no spool: exit 3" "$rc" 3
check "--deliver on no spool: makes no directory" [ ! -e "$T/nothing" ]
# A column given twice would make the writer reject every row: refused before the run.
out=$("$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 30, "ts": "x"}' \
    --time-column ts build_logs -- echo never 2>&1); rc=$?
check_eq "--time-column also in --with: exit 3" "$rc" 3
check "...with the reason" grep -q -- '--time-column ts: that column already gets a value' <<<"$out"
out=$("$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 31}' \
    --build-where '{"name": "x"}' build_logs -- echo never 2>&1); rc=$?
check_eq "--build-where naming a column the wrapper sets: exit 3" "$rc" 3
check "...with the reason" grep -q -- '--build-where cannot name name' <<<"$out"
check "...the command never ran" not grep -q never <<<"$out"

# ---- 7. signals ----
# (exec: $! must be the wrapper itself, not a subshell around it)
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 11}' build_logs --no-tee -- sleep 30) &
W=$!
wait_until 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT status FROM builds WHERE id = 11')\" = running ]" ||
    fail "build 11 marked running"
kill -TERM "$W"; wait "$W"; rc=$?
check_eq "SIGTERM to the wrapper goes on to the command: exit 143" "$rc" 143
check_eq "SIGTERM to the wrapper: cancelled, 143" "$(build_row 11)" "cancelled,143,1,1"

mkfifo "$T/fifo12"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 12}' build_logs <"$T/fifo12" 2>"$T/p12.err.log" &
P=$!
exec 4>"$T/fifo12"
echo before >&4
wait_until 10 count_is 12 1 || fail "the pipe took its first line"
kill -TERM "$P"
sleep 0.5
check "the pipe reads on after one SIGTERM" kill -0 "$P"
echo after >&4
exec 4>&-
wait "$P"; rc=$?
check_eq "the pipe after one SIGTERM: exit 0 at the end of input" "$rc" 0
check_eq "the pipe after one SIGTERM: both lines" "$(sql "SELECT group_concat(line) FROM (SELECT line FROM build_logs WHERE build_id = 12 ORDER BY id)")" "before,after"
mkfifo "$T/fifo13"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 13}' build_logs <"$T/fifo13" 2>"$T/p13.err.log" &
P=$!
exec 4>"$T/fifo13"
echo one >&4
wait_until 10 count_is 13 1 || fail "the pipe took its first line"
kill -TERM "$P"; sleep 0.2; kill -TERM "$P"
wait_until 10 sh -c "! kill -0 $P 2>/dev/null"; check "a second SIGTERM ends the pipe" [ $? = 0 ]
exec 4>&-
wait "$P"; rc=$?
check_eq "a second SIGTERM: exit 0" "$rc" 0

# ---- 8. a later run with the same --spool sends what was left first ----
broker_stop
seq 1 50 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --spool "$T/spool14" --linger 0 --lines line --with '{"build_id": 14}' build_logs 2>/dev/null
broker_start
seq 51 100 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --spool "$T/spool14" --lines line --with '{"build_id": 14}' build_logs 2>"$T/p14.err.log"; rc=$?
check_eq "later run on the same spool: exit 0" "$rc" 0
same "later run: the former run's lines first, all once, in order" \
    "$(sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = 14 ORDER BY id)")" "$(seq 1 100 | paste -sd ,)"
check "later run: the spool is removed" [ ! -e "$T/spool14" ]

# ---- 9. a transaction in flight when the pipe gave up is applied once ----
# The writer is stopped (SIGSTOP): the broker takes the first transaction, no receipt
# comes, the pipe gives up after --linger 1 with it in flight. The writer then goes on
# and applies it; --deliver sends it again under the same id: a duplicate, not new rows.
dup0=$(status | sed -n 's/.*"duplicates":\([0-9]*\).*/\1/p')
kill -STOP "$WRITER_PID"
seq 1 250 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --spool "$T/spool15" --linger 1 --lines line --with '{"build_id": 15}' build_logs 2>"$T/p15.err.log"
check "in flight: the spool says so" grep -q ' [1-9][0-9]*$' "$T/spool15/state"
note "spool state: $(cat "$T/spool15/state")"
kill -CONT "$WRITER_PID"
wait_until 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT count(*) FROM build_logs WHERE build_id = 15')\" -gt 0 ]"
note "rows of build 15 applied before --deliver: $(sql 'SELECT count(*) FROM build_logs WHERE build_id = 15')"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --deliver "$T/spool15" 2>"$T/d15.err.log"; rc=$?
check_eq "in flight, then --deliver: exit 0" "$rc" 0
same "in flight, then --deliver: every line once, in order" \
    "$(sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = 15 ORDER BY id)")" "$(seq 1 250 | paste -sd ,)"
wait_until 10 sh -c "[ \"\$(timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t mosqlite/status -C 1 -W 2 | sed -n 's/.*\"duplicates\":\([0-9]*\).*/\1/p')\" -gt ${dup0:-0} ]"
check "the writer answered the resent transaction as a duplicate" [ $? = 0 ]

# ---- 10. the wrapper stores lines in the order it read them, across both streams ----
# seq_of BUILD: the build's rows as STREAM:LINE, in id order, joined by commas.
seq_of() { sql "SELECT group_concat(stream || ':' || line, ',') FROM (SELECT stream, line FROM build_logs WHERE build_id = $1 ORDER BY id)"; }
# A burst: 3000 lines, stdout and stderr in turn, each one write, no pause. Both pipes
# fill faster than the wrapper reads; read a chunk at a time, one stream's lines came
# hundreds of rows away from the other's.
wrap 40 --no-tee -- perl -e 'for $i (1..1500) { syswrite(STDOUT, "out $i\n"); syswrite(STDERR, "err $i\n") }'; rc=$?
check_eq "burst of alternating lines: exit 0" "$rc" 0
wait_until 30 count_is 40 3000
same "burst of alternating lines: stored in the order written" "$(seq_of 40)" \
    "$(for i in $(seq 1 1500); do echo "stdout:out $i"; echo "stderr:err $i"; done | paste -sd ,)"
# With a pause after each line (the command writes the next one once the wrapper's tee
# has passed the last one on), an irregular pattern of the two streams.
pattern="oeeoooeoeeeeoeoooooeeoeoeeooeoeeeoooeeoe"
mkfifo "$T/tee41" "$T/go41"
wrap 41 -- perl -e 'open(G, "<", $ARGV[1]) or die; $i = 0;
    for $s (split //, $ARGV[0]) { $i++; syswrite($s eq "o" ? STDOUT : STDERR, "line $i\n"); <G> }' \
    "$pattern" "$T/go41" >"$T/tee41" 2>&1 &
W=$!
exec 5<"$T/tee41" 6>"$T/go41"
while read -r _ <&5; do echo >&6; done
exec 5<&- 6>&-
wait "$W"; rc=$?
check_eq "lines with pauses: exit 0" "$rc" 0
wait_until 30 count_is 41 ${#pattern}
same "lines with pauses: stored in the order written" "$(seq_of 41)" \
    "$(i=0; while [ $i -lt ${#pattern} ]; do s=${pattern:$i:1}; i=$((i + 1)); [ "$s" = o ] && echo "stdout:line $i" || echo "stderr:line $i"; done | paste -sd ,)"

# ---- 11. a wrapper killed (SIGKILL) leaves its build `lost`, through its last will ----
status_of() { sql "SELECT status FROM builds WHERE id = $1"; }
status_is_() { [ "$(status_of "$1")" = "$2" ]; }
sub_bg "$T/writes.log" "$PREFIX_TOPIC/write"      # every request on PREFIX/write, wills too
wrap 50 --no-tee -- sh -c 'echo fine'; rc=$?
check_eq "a build that ends: exit 0" "$rc" 0
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 52}' build_logs --no-tee -- sleep 30) &
W=$!
wait_until 10 status_is_ 52 running || fail "build 52 marked running"
kill -TERM "$W"; wait "$W"
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 51}' build_logs --no-tee \
    -- sh -c "echo \$\$ > '$T/cmd51.pid'; echo started; exec sleep 60") &
W=$!
wait_until 10 status_is_ 51 running || fail "build 51 marked running"
wait_until 10 count_is 51 1 || fail "build 51's first line stored"
kill -9 "$W"; wait "$W" 2>/dev/null
kill "$(cat "$T/cmd51.pid")" 2>/dev/null
wait_until 30 status_is_ 51 lost
check_eq "wrapper killed -9: its build says lost" "$(status_of 51)" lost
check_eq "a build that ended: passed, never lost" "$(build_row 50)" "passed,0,1,1"
check_eq "a build cancelled by SIGTERM: cancelled, never lost" "$(build_row 52)" "cancelled,143,1,1"
check_eq "only the killed wrapper's will was published" "$(grep -c '"lost"' "$T/writes.log")" 1

# ---- 12. a build run again: a new attempt, its log kept apart ----
# attempts_of BUILD: the build's attempts in build_logs, oldest first, comma-joined.
attempts_of() { sql "SELECT group_concat(attempt, ',') FROM (SELECT DISTINCT attempt FROM build_logs WHERE build_id = $1 ORDER BY attempt)"; }
# lines_in BUILD N: the lines of the build's Nth attempt (1: the first), in id order.
lines_in() { sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = $1 AND attempt = (SELECT DISTINCT attempt FROM build_logs WHERE build_id = $1 ORDER BY attempt LIMIT 1 OFFSET $(($2 - 1))) ORDER BY id)"; }
wrap 60 --no-tee -- sh -c 'for i in 1 2 3; do echo "first run $i"; done'; rc1=$?
wrap 60 --no-tee -- sh -c 'echo "second run 1"; echo "second run 2" >&2; exit 3'; rc2=$?
check_eq "run twice: exit statuses 0 then 3" "$rc1,$rc2" "0,3"
wait_until 10 count_is 60 5
check_eq "run twice: two attempts in the log" "$(attempts_of 60 | tr ',' '\n' | grep -c .)" 2
check_eq "run twice: the first attempt's lines alone, in order" "$(lines_in 60 1)" "first run 1,first run 2,first run 3"
check_eq "run twice: the second attempt's lines alone, in order" "$(lines_in 60 2)" "second run 1,second run 2"
check_eq "run twice: the row is the latest attempt's" \
    "$(sql "SELECT status || ',' || exit_code || ',' || (attempt = (SELECT max(attempt) FROM build_logs WHERE build_id = 60)) FROM builds WHERE id = 60")" "failed,3,1"
check "run twice: the attempt is the start time in ms" \
    [ "$(sql "SELECT abs(max(attempt) / 1000 - strftime('%s', 'now')) < 600 FROM build_logs WHERE build_id = 60")" = 1 ]
wrap 61 --no-tee -- true; wrap 61 --no-tee --with '{"build_id": 61, "attempt": 7}' -- echo seven
wait_until 10 count_is 61 1
check_eq "--with's attempt is the attempt" "$(sql "SELECT attempt || ':' || line FROM build_logs WHERE build_id = 61")" "7:seven"
check_eq "--with's attempt in the row too" "$(sql "SELECT attempt || ',' || status FROM builds WHERE id = 61")" "7,passed"
# The late end of an earlier attempt changes nothing of the later one's row.
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 62, "attempt": 1}' build_logs --no-tee \
    -- sh -c 'sleep 3; exit 4') &
W=$!
wait_until 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT attempt FROM builds WHERE id = 62')\" = 1 ]"
wrap 62 --no-tee --with '{"build_id": 62, "attempt": 2}' -- true
check_eq "a later attempt ended: the row is its" "$(sql "SELECT attempt || ',' || status || ',' || exit_code FROM builds WHERE id = 62")" "2,passed,0"
wait "$W"
check_eq "the earlier attempt ending after it changes nothing of the row" \
    "$(sql "SELECT attempt || ',' || status || ',' || exit_code FROM builds WHERE id = 62")" "2,passed,0"

# ---- 13. an operator cancels a running build: its row says cancelled, the command stops ----
# cancel BUILD: what the page's "Cancel build" publishes: the row to cancelled, only while
# its latest attempt is running.
cancel() {
    a=$(sql "SELECT attempt FROM builds WHERE id = $1")
    pub write "{\"table\":\"builds\",\"op\":\"update\",\"set\":{\"status\":\"cancelled\"},\"where\":{\"id\":$1,\"attempt\":$a,\"status\":\"running\"}}"
}
# gone PID: no such process, or a zombie waiting for its reaper.
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 70}' build_logs --no-tee \
    -- sh -c "echo \$\$ > '$T/cmd70.pid'; sleep 300 & echo \$! > '$T/child70.pid'; echo started; wait") &
W=$!
wait_until 10 status_is_ 70 running || fail "build 70 marked running"
wait_until 10 count_is 70 1 || fail "build 70's first line stored"
cancel 70
# ended WRAPPER: it exits within 30 s of the cancel (else it is killed, and the checks fail).
ended() { wait_until 30 gone "$1" || { kill -9 "$1"; fail "the wrapper went on after the cancel"; }; }
ended "$W"; wait "$W"; rc=$?
check_eq "cancelled: the wrapper exits 143 (its command ended by SIGTERM)" "$rc" 143
check "cancelled: the command is gone" gone "$(cat "$T/cmd70.pid")"
kill -9 "$(cat "$T/cmd70.pid")" "$(cat "$T/child70.pid")" 2>/dev/null
check "cancelled: what it started is gone too (its process group got SIGTERM)" wait_until 5 gone "$(cat "$T/child70.pid")"
wait_until 10 finished 70
check_eq "cancelled: the row says cancelled, with the exit code" "$(build_row 70)" "cancelled,143,1,1"
# A command that ignores SIGTERM gets SIGKILL after the grace (10 s); a wrapper killed
# meanwhile leaves the row cancelled, not lost.
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 71}' build_logs --no-tee \
    -- sh -c "trap '' TERM; echo \$\$ > '$T/cmd71.pid'; echo started; while :; do sleep 1; done") &
W=$!
wait_until 10 count_is 71 1 || fail "build 71's first line stored"
cancel 71
ended "$W"; wait "$W"; rc=$?
check_eq "SIGTERM ignored: the wrapper exits 137 (SIGKILL after the grace)" "$rc" 137
check "SIGTERM ignored: the command is gone" gone "$(cat "$T/cmd71.pid")"
kill -9 "$(cat "$T/cmd71.pid")" 2>/dev/null
wait_until 10 finished 71
check_eq "SIGTERM ignored: the row says cancelled, exit 137" "$(build_row 71)" "cancelled,137,1,1"
lost0=$(grep -c '"lost"' "$T/writes.log")
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 72}' build_logs --no-tee \
    -- sh -c "trap '' TERM; echo \$\$ > '$T/cmd72.pid'; echo started; while :; do sleep 1; done") &
W=$!
wait_until 10 count_is 72 1 || fail "build 72's first line stored"
cancel 72
wait_until 10 status_is_ 72 cancelled
kill -9 "$W"; wait "$W" 2>/dev/null
kill -9 "$(cat "$T/cmd72.pid")" 2>/dev/null
wait_until 30 sh -c "[ \$(grep -c '\"lost\"' '$T/writes.log') -gt $lost0 ]" || fail "the killed wrapper's will was published"
pub write/build_logs '{"values":{"build_id":0,"line":"marker after the will"}}'
wait_until 10 sh -c "[ -n \"\$(sqlite3 -cmd '.timeout 5000' '$DB' \"SELECT 1 FROM build_logs WHERE line = 'marker after the will'\")\" ]"
check_eq "a wrapper killed after the cancel: its will leaves the row cancelled" "$(status_of 72)" cancelled
# A build that ended is not cancelled.
cancel 50
pub write/build_logs '{"values":{"build_id":0,"line":"marker after the cancel of 50"}}'
wait_until 10 sh -c "[ -n \"\$(sqlite3 -cmd '.timeout 5000' '$DB' \"SELECT 1 FROM build_logs WHERE line = 'marker after the cancel of 50'\")\" ]"
check_eq "a build that ended: a cancel changes nothing" "$(build_row 50)" "passed,0,1,1"
