#!/bin/bash
# tests/bench/jobs.sh: the job queue, beside plain writes measured in the same run.
# Runnable alone (bash tests/bench/jobs.sh); run.sh runs it after its own lines and
# passes its line 4.1. Prints result lines in the manner of tests/bench/run.sh, each with
# its target and PASS/MISS. A report, not a test: exits 0 whatever the numbers.
#
#   J0      plain writes, 1 producer: line 4.1 of run.sh (PLAIN=RATE), or measured here
#           the same way (mqbench pub, WINDOW in flight, until the rows are in the file)
#   J1.K    jobs/s with K = 1, 8, 64 workers (WORKERS): N jobs enqueued, then each
#           worker claims (long poll), is granted, says done with a receipt, its done
#           carrying its next claim; until the last done's receipt: >= 0.3 x J0. Beside
#           J1.1, SQLite's own one-row transactions/s (run.sh's line 2a: COMMIT1=RATE, or
#           measured here): one worker gets at most one job per commit
#   J2.R    pickup at R = 100 and 1,000 jobs/s offered (PICKUP_RATES), 64 workers waiting
#           in long poll: enqueue to grant, p50/p99/max: p99 < 60 ms; beside it the
#           receipts of plain writes at the same rate (mqbench rate), same run
#   J3w     kill -9 of a worker holding a job -> its next grant to a waiting worker,
#           KILLS times: p99 < 1 s (the worker's MQTT Last Will gives the job back)
#   J3l     the same with SIGSTOP (its keepalive 60 s, its lease 1,000 ms): only the
#           lease's expiry gives it back
#   J4      IDLE workers (200) waiting in long poll for IDLE_SECS (60): commits made
#           meanwhile (the file's sequence, mosqlite_seq, before and after): 0
#   J5e     claim to grant, one worker, GRANTS times, on a file with only those jobs
#   J5f     the same on a file holding READY (1,000,000) ready and DEAD (100,000) dead
#           jobs besides, written with sqlite3 while the writer was stopped: p50 <= 1.2 x J5e
#
#   QUICK=1 ...      small sizes (J4 for 5 s, J5 with 100,000 + 10,000 jobs), under 2 minutes
#   KEEP=1 ...       keep the temp dir
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh
if [ -n "${QUICK:-}" ]; then
    N=${N:-2000} N1=${N1:-500} PICKUP_SECS=${PICKUP_SECS:-3} KILLS=${KILLS:-5} IDLE_SECS=${IDLE_SECS:-5}
    IDLE_WAIT_MS=${IDLE_WAIT_MS:-2000} READY=${READY:-100000} DEAD=${DEAD:-10000} GRANTS=${GRANTS:-300}
    N_PLAIN=${N_PLAIN:-10000}
fi
N=${N:-20000} N1=${N1:-3000} PICKUP_SECS=${PICKUP_SECS:-20} KILLS=${KILLS:-20} IDLE_SECS=${IDLE_SECS:-60}
IDLE_WAIT_MS=${IDLE_WAIT_MS:-30000} READY=${READY:-1000000} DEAD=${DEAD:-100000} GRANTS=${GRANTS:-2000}
N_PLAIN=${N_PLAIN:-100000} WORKERS=${WORKERS:-1 8 64} PICKUP_RATES=${PICKUP_RATES:-100 1000}
PICKUP_WORKERS=${PICKUP_WORKERS:-64} IDLE=${IDLE:-200} WINDOW=${WINDOW:-100} LEASE_ONLY_MS=1000
JB=$BB/jobbench MQB=$BB/mqbench
if [ ! -x "$JB" ] || [ tests/bench/jobbench.c -nt "$JB" ] || [ tests/bench/bench.h -nt "$JB" ] || [ ! -x "$MQB" ]; then
    BUILD_ONLY=1 sh tests/bench/run.sh >/dev/null || exit 2
fi

. "$ROOT/tests/lib.sh"
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
calc_f() { awk "BEGIN { printf \"$1\", $2 }"; }
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then calc_f "%.2f" "$1 / $2"; else echo -; fi; }
verdict() { if awk "BEGIN { exit !($1) }" 2>/dev/null; then echo PASS; else echo MISS; fi; }
row() { printf '%-8s %-50s %14s  %s\n' "$@"; }
say() { echo "bench: $*" >&2; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
pct() { echo "$(kv "$1" p50_ms)/$(kv "$1" p99_ms)/$(kv "$1" max_ms)"; }
seq_of() { sqlite3 -cmd '.timeout 5000' "$DB" 'SELECT seq FROM mosqlite_seq'; }
NOTES=$T/jobs.notes
: >"$NOTES"
note_line() { echo "# $*" >>"$NOTES"; }

# fresh NAME: a fresh broker, and the writer on a fresh file $T/NAME.db.
fresh() {
    [ -n "${WRITER_PID:-}" ] && { writer_stop; WRITER_PID=; }
    [ -n "${BROKER_PID:-}" ] && broker_kill
    rm -rf "$T/broker"
    unset MQTT_PORT WS_PORT
    broker_start
    DB=$T/$1.db
    writer_start
}

# J0: plain writes, one producer (run.sh's line 4.1 when given).
if [ -n "${PLAIN:-}" ]; then
    J0=$PLAIN J0_NOTE="line 4.1 of this run"
else
    say "jobs: plain writes, 1 producer, $N_PLAIN requests (line 4.1)"
    fresh plain
    r=$("$MQB" pub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write/build_logs" -n "$N_PLAIN" -c 1 -w "$WINDOW" --db "$DB" --timeout 120)
    J0=$(kv "$r" commit_rate) J0_NOTE="measured here as line 4.1: $N_PLAIN requests, $(kv "$r" rows) rows in $(kv "$r" commit_secs) s"
fi

# One worker holds one job at a time, and a grant is sent only after the COMMIT that made
# it: at most one job per commit. SQLite's own rate of one-row transactions on this disk
# (run.sh's line 2a, or sqlbench here) is that ceiling, printed beside J1.1.
if [ -z "${COMMIT1:-}" ]; then
    rm -f "$T/c1.db"*
    COMMIT1=$(kv "$("$BB/sqlbench" "$T/c1.db" "$ROOT/conf/schema/001_builds.sql" 2000 1)" rate)
fi

# J1: jobs/s at K workers.
for k in $WORKERS; do
    n=$N; [ "$k" = 1 ] && n=$N1
    say "jobs: $n jobs, $k worker(s), claim -> grant -> done"
    fresh "work$k"
    c0=$(cpu_s "$WRITER_PID") b0=$(cpu_s "$BROKER_PID")
    r=$("$JB" work -p "$MQTT_PORT" -n "$n" -c "$k" --timeout 120)
    eval "J1_$k=\$(kv \"\$r\" rate)"
    eval "J1_${k}_NOTE=\"\$(kv \"\$r\" done) of $n done in \$(kv \"\$r\" secs) s, granted twice \$(kv \"\$r\" twice)\""
    [ "$(kv "$r" timeout)" = 1 ] && eval "J1_${k}_NOTE=\"INCOMPLETE: \$J1_${k}_NOTE\""
    note_line "J1.$k: $n jobs in $(kv "$r" secs) s; CPU s writer $(calc_f %.2f "$(cpu_s "$WRITER_PID") - $c0")," \
        "broker $(calc_f %.2f "$(cpu_s "$BROKER_PID") - $b0"), driver $(kv "$r" cpu_s); enqueued at" \
        "$(kv "$r" enqueue_rate) jobs/s beforehand; rejected $(kv "$r" rejected), receipts not JSON $(kv "$r" malformed)"
done

# J2: pickup latency at R jobs/s offered, and plain receipts at the same rate.
for rate in $PICKUP_RATES; do
    say "jobs: pickup at $rate jobs/s, $PICKUP_WORKERS workers waiting"
    fresh "pickup$rate"
    c0=$(cpu_s "$WRITER_PID") b0=$(cpu_s "$BROKER_PID")
    r=$("$JB" pickup -p "$MQTT_PORT" -c "$PICKUP_WORKERS" -r "$rate" -s "$PICKUP_SECS" --timeout 30)
    note_line "J2.$rate: CPU s writer $(calc_f %.2f "$(cpu_s "$WRITER_PID") - $c0"), broker" \
        "$(calc_f %.2f "$(cpu_s "$BROKER_PID") - $b0"), driver $(kv "$r" cpu_s) over $PICKUP_SECS s"
    say "jobs: plain receipts at $rate requests/s"
    fresh "receipts$rate"
    p=$("$MQB" rate -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write/build_logs" -r "$rate" -s "$PICKUP_SECS" --timeout 30)
    eval "J2_$rate=\$(pct \"\$r\") J2_${rate}_P99=\$(kv \"\$r\" p99_ms) J2_${rate}_BASE=\$(pct \"\$p\")"
    eval "J2_${rate}_BASE99=\$(kv \"\$p\" p99_ms)"
    eval "J2_${rate}_NOTE=\"\$(kv \"\$r\" n) of \$(kv \"\$r\" sent) granted\""
done

# J3: a worker holding a job killed (Last Will) or stopped (lease only).
say "jobs: kill -9 of a worker holding a job, $KILLS times"
fresh kill
r=$("$JB" kill -p "$MQTT_PORT" -n "$KILLS" --lease 30000 --timeout 60)
J3W=$(pct "$r") J3W_P99=$(kv "$r" p99_ms) J3W_NOTE="$(kv "$r" n) of $KILLS kills, next grant to another worker; wrong job $(kv "$r" wrong)"
say "jobs: SIGSTOP of a worker holding a job (lease $LEASE_ONLY_MS ms), $KILLS times"
r=$("$JB" kill -p "$MQTT_PORT" -n "$KILLS" --stop 1 --lease "$LEASE_ONLY_MS" --timeout 60)
J3L=$(pct "$r") J3L_P99=$(kv "$r" p99_ms) J3L_NOTE="$(kv "$r" n) of $KILLS stops; lease_ms $LEASE_ONLY_MS (the least a job may have); wrong job $(kv "$r" wrong)"

# J4: an idle fleet.
say "jobs: $IDLE idle workers for $IDLE_SECS s"
fresh idle
s0=$(seq_of) c0=$(cpu_s "$WRITER_PID")
r=$("$JB" idle -p "$MQTT_PORT" -c "$IDLE" -s "$IDLE_SECS" --wait-ms "$IDLE_WAIT_MS")
sleep 1
s1=$(seq_of)
J4=$((s1 - s0))
J4_NOTE="$(kv "$r" claims) claims (wait_ms $IDLE_WAIT_MS), $(kv "$r" empties) empty answers, $(kv "$r" grants) grants, $(kv "$r" rejected) rejected; writer CPU $(calc_f %.2f "$(cpu_s "$WRITER_PID") - $c0") s"

# J5: grant latency on a file with only the jobs granted, and on one with a million more.
say "jobs: grant latency, $GRANTS jobs on an otherwise empty file"
fresh grant-empty
r=$("$JB" grant -p "$MQTT_PORT" -n "$GRANTS")
J5E=$(pct "$r") J5E_P50=$(kv "$r" p50_ms) J5E_P99=$(kv "$r" p99_ms) J5E_N=$(kv "$r" n)
say "jobs: writing $READY ready and $DEAD dead jobs with sqlite3"
fresh grant-full
writer_stop
WRITER_PID=
t0=$(date +%s%N)
sqlite3 "$DB" <<SQL || say "jobs: could not fill $DB"
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $DEAD)
INSERT INTO mosqlite_jobs (queue, state, priority, run_at_ms, payload, attempt, lost, max_attempts, max_lost,
    backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, worker, session, started_ms, error, created_at,
    started_at, finished_at)
SELECT 'bench', 'dead', 0, 0, '{"seq":' || i || '}', 3, 3, 1, 3, 10000, 3600000, 20, 30000,
    'w' || (i % 64), 's' || i, 0, 'worker lost 3 times (last: w' || (i % 64) || ', gone)',
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM n;
INSERT INTO mosqlite_job_attempts (job, attempt, claim_id, worker, session, started_at, ended_at, outcome, error)
SELECT j.id, a.k, 'c' || j.id || '.' || a.k, j.worker, j.session, j.started_at, j.finished_at, 'lost', 'gone'
FROM mosqlite_jobs j, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) a WHERE j.state = 'dead';
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $READY)
INSERT INTO mosqlite_jobs (queue, state, priority, run_at_ms, payload, max_attempts, max_lost, backoff_ms,
    backoff_cap_ms, jitter_pct, lease_ms, created_at)
SELECT 'bench', 'ready', 0, 0, '{"seq":' || i || '}', 1, 3, 10000, 3600000, 20, 30000,
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM n;
INSERT INTO mosqlite_job_queues (queue, n_ready, n_dead) VALUES ('bench', $READY, $DEAD)
    ON CONFLICT (queue) DO UPDATE SET n_ready = n_ready + excluded.n_ready, n_dead = n_dead + excluded.n_dead;
COMMIT;
SQL
FILL_SECS=$(calc_f %.1f "($(date +%s%N) - $t0) / 1e9")
FILL_MB=$(calc_f %.0f "$(stat -c %s "$DB") / 1048576")
writer_start
say "jobs: grant latency, $GRANTS of $READY ready jobs"
r=$("$JB" grant -p "$MQTT_PORT" -n "$GRANTS" --enqueue 0)
J5F=$(pct "$r") J5F_P50=$(kv "$r" p50_ms) J5F_P99=$(kv "$r" p99_ms) J5F_N=$(kv "$r" n)
left=$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT n_ready || ' ready, ' || n_dead || ' dead' FROM mosqlite_job_queues WHERE queue = 'bench'")
writer_stop
WRITER_PID=
broker_kill
BROKER_PID=

# The lines.
r1() { eval "v=\${J1_$1:-}"; ratio "$v" "$J0"; }
row J0 "plain writes, 1 producer (line 4.1)" "$(calc_f %.0f "${J0:-0}") rows/s" "$J0_NOTE"
for k in $WORKERS; do
    eval "v=\${J1_$k:-} n=\${J1_${k}_NOTE:-}"
    rr=$(r1 "$k")
    [ "$k" = 1 ] && n="$n; one commit per job: SQLite alone commits $(calc_f %.0f "${COMMIT1:-0}") one-row transactions/s here"
    row "J1.$k" "jobs/s, $k worker(s): claim, grant, done" "${v:--} jobs/s" "$rr x J0, >=0.3: $(verdict "$rr >= 0.3"); $n"
done
for rate in $PICKUP_RATES; do
    eval "v=\$J2_$rate p=\$J2_${rate}_P99 b=\$J2_${rate}_BASE b99=\$J2_${rate}_BASE99 n=\$J2_${rate}_NOTE"
    row "J2.$rate" "pickup at $rate jobs/s, enqueue->grant p50/p99/max" "$v ms" \
        "p99 < 60 ms: $(verdict "${p:--1} >= 0 && ${p:--1} < 60"); $(ratio "$p" "$b99") x plain receipts' p99 at $rate/s ($b ms); $n, $PICKUP_WORKERS workers"
done
row J3w "kill -9 of a worker -> next grant, p50/p99/max" "$J3W ms" \
    "p99 < 1000 ms: $(verdict "${J3W_P99:--1} >= 0 && ${J3W_P99:--1} < 1000"); the lease alone (J3l): p99 $J3L_P99 ms; $J3W_NOTE"
row J3l "  SIGSTOP instead: the lease alone, p50/p99/max" "$J3L ms" "$J3L_NOTE"
row J4 "$IDLE idle workers for $IDLE_SECS s: commits" "$J4" "= 0: $(verdict "$J4 == 0"); $J4_NOTE"
row J5e "claim->grant, file without other jobs, p50/p99/max" "$J5E ms" "$J5E_N grants"
r5=$(ratio "$J5F_P50" "$J5E_P50")
row J5f "  $READY ready + $DEAD dead jobs, p50/p99/max" "$J5F ms" \
    "p50 $r5 x J5e, <= 1.2: $(verdict "$r5 <= 1.2"); p99 $(ratio "$J5F_P99" "$J5E_P99") x; $J5F_N grants; filled in $FILL_SECS s, $FILL_MB MB; $left after"
cat "$NOTES"
exit 0
