#!/bin/bash
# Hooks against a real broker and a real SQLite file: a command run after each commit
# with the commit's event on stdin sees every committed row; a failing command is
# reported on PREFIX/hooks with its exit status; a hanging one is killed at its time
# limit (process group and all) and reported, and while it hangs receipts keep coming
# (the receipt of a request sent after it started arrives before the time-out report);
# no child is left unreaped; a bad hook line stops the writer at start with file:line.
. "$(dirname "$0")/lib.sh"

N=300
cat >"$T/copy.sh" <<EOS
# one event per line, appended whole (flock: runs overlap)
ev=\$(cat)
flock "$T/seen.lock" sh -c 'printf "%s\n" "\$1" >>"$T/seen"' sh "\$ev"
EOS
: >"$T/seen"
cat >"$T/writer.conf" <<EOS
hook build_logs insert sh $T/copy.sh
hook builds insert false
hook builds update sleep 617
hook-max 4
hook-timeout-ms 3000
EOS

# A bad hook line is a config error: exit 3, naming its file:line, before the database
# is opened (no file made).
printf '# hooks\nhook builds replace true\n' >"$T/bad.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" --db "$T/bad.db" 2>&1)
rc=$?
check "a bad hook line refused at start ($out)" \
    grep -qx "mosqlite-writer: $T/bad.conf:2: hook: op \"replace\" is not insert, upsert, update, delete or \*" <<<"$out"
check_eq "... exit 3" "$rc" 3
printf 'hook builds insert\n' >"$T/bad2.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad2.conf" --db "$T/bad.db" 2>&1)
rc=$?
check "a hook line without a command refused at start ($out)" \
    grep -qx "mosqlite-writer: $T/bad2.conf:1: hook: want TABLE OP COMMAND \[ARG...\], got \"builds insert\"" <<<"$out"
check_eq "... exit 3" "$rc" 3
check "... and the database never opened" not test -e "$T/bad.db"

broker_start
receipts_bg
sub_bg "$T/hooks" "$PREFIX_TOPIC/hooks"
writer_start -c "$T/writer.conf"

# --- every commit's event reaches the command --------------------------------------
for i in $(seq 1 $N); do
    echo "{\"id\":\"l$i\",\"reply_to\":\"$REPLY/l$i\",\"values\":{\"build_id\":1,\"line\":\"line $i\"}}"
done | mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l
wait_until 20 grep -q '"id":"l'$N'"' "$RECEIPTS"
check_eq "all $N inserts applied" "$(sql 'SELECT count(*) FROM build_logs')" $N
seen_rows() { grep -o '"line":"line [0-9]*"' "$T/seen" | sort -u | wc -l; }
all_seen() { [ "$(seen_rows)" = $N ]; }
wait_until 20 all_seen
check_eq "the hook saw every committed row, in events on its stdin" "$(seen_rows)" $N
check "each run got one event of build_logs inserts" \
    bash -c "! grep -v '^{\"table\":\"build_logs\",\"op\":\"insert\",\"rows\":\[' '$T/seen'"
note "$(wc -l <"$T/seen") hook runs for $(sql 'SELECT count(DISTINCT substr(ts,1,23)) FROM build_logs') distinct commit times"

# --- a failing command: reported with its exit status --------------------------------
r=$(req write/builds b1 '"values":{"id":1,"name":"b1"}')
check "insert into builds applied" grep -q '"status":"applied"' <<<"$r"
wait_until 10 grep -q '"command":"false"' "$T/hooks"
check "failure published on PREFIX/hooks with exit status 1" \
    grep -q '{"command":"false","table":"builds","op":"insert","outcome":"failed","exit_status":1,"signal":null' "$T/hooks"
check "failure logged" grep -q 'hook false (builds insert) failed: exit status 1' "$WRITER_LOG"

# --- a hanging command: receipts go on, then it is killed at its limit ---------------
r=$(req write/builds u1 '"op":"update","set":{"status":"passed"},"where":{"id":1}')
check "update applied" grep -q '"status":"applied"' <<<"$r"
wait_until 5 pgrep -f '^sleep 617$' >/dev/null
check "the hanging hook runs" pgrep -f '^sleep 617$'
t0=$(date +%s%N)
r=$(req write/build_logs after '"values":{"build_id":2,"line":"while the hook hangs"}')
t1=$(date +%s%N)
check "a receipt while the hook hangs" grep -q '"status":"applied"' <<<"$r"
check "that receipt came before the hook's time-out report" bash -c "! grep -q '\"outcome\":\"timeout\"' '$T/hooks'"
note "receipt while a hook hangs: $(( (t1 - t0) / 1000000 )) ms"
wait_until 10 grep -q '"outcome":"timeout"' "$T/hooks"
check "time-out published on PREFIX/hooks, killed by signal 9" \
    grep -q '{"command":"sleep 617","table":"builds","op":"update","outcome":"timeout","exit_status":null,"signal":9' "$T/hooks"
check "time-out logged" grep -q 'hook sleep 617 (builds update) timed out after 3000 ms: killed' "$WRITER_LOG"
check "the hanging command is gone" bash -c "! pgrep -f '^sleep 617$'"
sleep 0.3
zombies=$(ps -o stat= --ppid "$WRITER_PID" | grep -c Z)
check_eq "no child left unreaped" "$zombies" 0

writer_stop
check_eq "writer exits 0" "$?" 0

# --- a command failing on every commit cannot flood the log or PREFIX/hooks ----------
NF=300
# One commit per request, without fsync: many more failures a second than are let through.
printf 'hook nokey insert false\nbatch-max 1\nsynchronous OFF\n' >"$T/flood.conf"
sub_bg "$T/flood" "$PREFIX_TOPIC/hooks"
lines0=$(grep -c 'hook false (nokey insert) failed' "$WRITER_LOG")
test_schema
writer_start -c "$T/flood.conf"
for i in $(seq 1 $NF); do echo "{\"values\":{\"x\":\"f$i\"}}"; done |
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/nokey" -l
# failed reports, plus the counts of the suppressed ones, make every failure
reported() {
    awk -v n=$NF '/"outcome":"failed"/ { t++ } /"outcome":"suppressed"/ { match($0, /"count":[0-9]+/); t += substr($0, RSTART + 8, RLENGTH - 8) }
                  END { exit !(t >= n) }' "$T/flood"
}
check "all $NF failures accounted for on PREFIX/hooks" wait_until 30 reported
nrep=$(grep -c '"outcome":"failed"' "$T/flood")
nsup=$(grep -c '"outcome":"suppressed"' "$T/flood")
nlog=$(( $(grep -c 'hook false (nokey insert) failed' "$WRITER_LOG") - lines0 ))
note "$NF commits, each failing its hook: $nrep reports and $nlog log lines, $nsup summaries ($(grep -m1 suppressed "$T/flood"))"
check "fewer reports than failures ($nrep of $NF), and summaries of the rest ($nsup)" test "$nrep" -lt $NF -a "$nsup" -ge 1
check "as many log lines as reports ($nlog)" test "$nlog" = "$nrep"
# At most 10 in each second counted: no 21 log lines within less than a second.
grep 'hook false (nokey insert) failed' "$WRITER_LOG" | tail -n "$nlog" |
    sed -n 's/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z.*/\1 \2 \3/p' |
    awk '{ t[NR] = ($1 * 3600 + $2 * 60 + $3) * 1000 } END { for (i = 21; i <= NR; i++) if (t[i] - t[i - 20] < 1000) { print t[i] - t[i - 20]; exit } }' >"$T/dense"
check "no second with more than 10 reports, but where two seconds meet ($(cat "$T/dense"))" test ! -s "$T/dense"
check "summaries logged" grep -q 'more failures in the last [0-9]* ms were not logged or published (at most 10 a second)' "$WRITER_LOG"
writer_stop
exit "$NFAIL"
