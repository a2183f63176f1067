#!/bin/bash
# Recurring jobs, the cancel_job op and the pruning of finished jobs, against a real
# broker and a real SQLite file: `job-cron` lines refused at start with file:line and the
# reason (exit 3, no database made); the catch-up policies (one, skip, all, all:N) for
# ticks missed while the writer was down (its row's next_tick_ms set back with sqlite3
# while it is stopped: the ticks are missed for real), and nothing more at the next
# restart; a line removed: its row deleted; a real minute boundary passed while the
# writer is stopped (SIGSTOP), then kill -9 and a restart: exactly one job for that
# tick, and again after a kill -9 right after its commit (the one wait of up to a
# minute); cancel_job of a queued job (at once) and of a running one (pushed to its
# worker), alone and inside a transaction; finished jobs past job-keep-days (dead ones
# past job-dead-keep-days) deleted at start with their attempts, the queues' counts
# moved down with them.
. "$(dirname "$0")/lib.sh"

test_schema
broker_start
receipts_bg
GRANTS=$T/grants
TO=$PREFIX_TOPIC/jobs/to
CONF=$T/writer.conf
pause_next=0

jobs_of() { sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = '$1'"; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.000Z; }
# The writer's job counts agree with the rows, queue by queue and state by state.
counts_agree() {
    a=$(sql "SELECT queue, state, count(*) FROM mosqlite_jobs GROUP BY queue, state ORDER BY 1, 2")
    b=$(sql "SELECT queue, s, n FROM (SELECT queue, 'scheduled' s, n_scheduled n FROM mosqlite_job_queues
        UNION ALL SELECT queue, 'ready', n_ready FROM mosqlite_job_queues UNION ALL SELECT queue, 'blocked', n_blocked FROM mosqlite_job_queues
        UNION ALL SELECT queue, 'running', n_running FROM mosqlite_job_queues UNION ALL SELECT queue, 'retry', n_retry FROM mosqlite_job_queues
        UNION ALL SELECT queue, 'done', n_done FROM mosqlite_job_queues UNION ALL SELECT queue, 'failed', n_failed FROM mosqlite_job_queues
        UNION ALL SELECT queue, 'dead', n_dead FROM mosqlite_job_queues UNION ALL SELECT queue, 'cancelled', n_cancelled FROM mosqlite_job_queues)
        WHERE n != 0 ORDER BY 1, 2")
    [ "$a" = "$b" ] || { echo "rows: $a"; echo "counts: $b"; return 1; }
}

# --- config errors: exit 3, file:line, before the database is opened ------------------------------
bad_conf() { # DESCRIPTION LINE EXPECTED-STDERR
    printf '# a comment\njob-cron %s\n' "$2" >"$T/bad.conf"
    out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" -p "$MQTT_PORT" --db "$T/bad.db" --schema "$SCHEMA" 2>&1)
    rc=$?
    check_eq "config: $1 (exit $rc)" "$rc|$out|$(test -e "$T/bad.db" && echo made)" "3|mosqlite-writer: $T/bad.conf:2: $3|"
}
bad_conf "hour out of range" 'nightly 0 24 * * * build {"b":1}' 'job-cron nightly: hour: "24" is out of range 0-23'
bad_conf "a day that never comes" 'feb30 0 0 30 2 * build null' "job-cron feb30: day of month: no month in \"2\" has a day in \"30\": the schedule never fires"
bad_conf "@reboot" 'boot @reboot build null' 'job-cron boot: "@reboot" is not a schedule: @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually'
bad_conf "four fields" 'short 0 2 * * build' 'job-cron short: day of week: "build" is not a number or a day name (SUN-SAT)'
bad_conf "no payload" 'nopay @daily build' 'job-cron nopay: needs a PAYLOAD after the queue: one JSON value, e.g. {"branch":"main"} or null'
bad_conf "payload not JSON" 'badpay @daily build {branch:main}' 'job-cron badpay: PAYLOAD is not one JSON value: "{branch:main}"'
bad_conf "payload with a duplicate key" 'dup @daily build {"a":1,"a":2}' 'job-cron dup: PAYLOAD: duplicate key "a" in an object'
bad_conf "unknown option" 'opt @daily build null prio=1' 'job-cron opt: unknown option "prio" (catch_up, priority, unique_key, on_duplicate, concurrency_key, concurrency, max_attempts, max_lost, backoff_ms, backoff_cap_ms, jitter_pct, lease_ms or timeout_ms)'
bad_conf "bad catch_up" 'cu @daily build null catch_up=most' 'job-cron cu: catch_up: "most" is not skip, one, all or all:N (N 1 to 1000)'
bad_conf "an option's range, as the enqueue op says it" 'lease @daily build null lease_ms=10' 'job-cron lease: "lease_ms" must be an integer from 1000 to 86400000'
bad_conf "a reserved queue" 'q @daily worker null' 'job-cron q: queue name "worker" is reserved (PREFIX/jobs/worker is the writer'"'"'s)'
printf 'job-cron same @daily a null\njob-cron other @hourly b 1\njob-cron same @weekly c 2\n' >"$T/bad.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" -p "$MQTT_PORT" --db "$T/bad.db" --schema "$SCHEMA" 2>&1)
check_eq "config: a name used twice (exit $?)" "$out" "mosqlite-writer: $T/bad.conf:3: job-cron same: the name is used by the line at $T/bad.conf:1 already"

# --- catch-up of ticks missed while the writer was down --------------------------------------------
# Hourly lines at minute M, half an hour from now: their last tick is ~30 min old, their
# next ~30 min away, whatever minute this test crosses.
NOW=$(date +%s)
M=$(( ($(date -u +%M | sed 's/^0//') + 30) % 60 ))
LAST=$(( NOW / 3600 * 3600 + M * 60 )); [ "$LAST" -gt "$NOW" ] && LAST=$((LAST - 3600))
cat >"$CONF" <<EOF
job-cron c-one $M * * * * cq1 {"p": "one"}
job-cron c-skip $M * * * * cq2 null catch_up=skip
job-cron c-all $M * * * * cq3 "all" catch_up=all priority=-5
job-cron c-all2 $M * * * * cq4 [1, 2] catch_up=all:2 unique_key=latest
job-cron every * * * * * cronq {"every":"minute"}
EOF
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' 'SELECT count(*) FROM mosqlite_job_cron') = 5 ]"
check_eq "each line has its row, the next tick ahead (no job for a line new to the file)" \
    "$(sql "SELECT name, next_tick_ms / 1000, last_tick_ms IS NULL FROM mosqlite_job_cron WHERE name LIKE 'c-%' ORDER BY name" | tr '\n' ' ')" \
    "c-all|$((LAST + 3600))|1 c-all2|$((LAST + 3600))|1 c-one|$((LAST + 3600))|1 c-skip|$((LAST + 3600))|1 "
writer_stop
# Down since five ticks ago: the row says the tick at LAST - 4 h is the next one.
sql "UPDATE mosqlite_job_cron SET next_tick_ms = ($LAST - 4 * 3600) * 1000 WHERE name LIKE 'c-%'"
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' \"SELECT count(*) FROM mosqlite_jobs WHERE queue = 'cq3'\") = 5 ]"
check_eq "catch_up=one (the default): the latest missed tick only" \
    "$(sql "SELECT enq_id, payload, state FROM mosqlite_jobs WHERE queue = 'cq1'")" "cron:c-one@$(iso $LAST)|{\"p\":\"one\"}|ready"
check_eq "catch_up=skip: none" "$(jobs_of cq2)" "0"
check_eq "catch_up=all: every missed tick, oldest first, with the line's options" \
    "$(sql "SELECT enq_id, priority FROM mosqlite_jobs WHERE queue = 'cq3' ORDER BY id" | tr '\n' ' ')" \
    "$(for k in 4 3 2 1 0; do printf 'cron:c-all@%s|-5 ' "$(iso $((LAST - k * 3600)))"; done)"
check_eq "catch_up=all:2: the two latest (a unique_key of its own: the second is its duplicate)" \
    "$(sql "SELECT enq_id, unique_key FROM mosqlite_jobs WHERE queue = 'cq4' ORDER BY id")" "cron:c-all2@$(iso $((LAST - 3600)))|latest"
check "  and the duplicate tick is logged" grep -q "job-cron c-all2: tick $(iso $LAST): no new job, job [0-9]* (ready) holds unique key \"latest\"" "$WRITER_LOG"
check_eq "the rows moved on to the next tick, the last tick enqueued kept" \
    "$(sql "SELECT name, next_tick_ms / 1000, last_tick_ms / 1000 FROM mosqlite_job_cron WHERE name LIKE 'c-%' ORDER BY name" | tr '\n' ' ')" \
    "c-all|$((LAST + 3600))|$LAST c-all2|$((LAST + 3600))|$((LAST - 3600)) c-one|$((LAST + 3600))|$LAST c-skip|$((LAST + 3600))| "
check "the ticks skipped are logged" grep -q "job-cron c-skip: 5 ticks missed while the writer was away are skipped (catch_up=skip)" "$WRITER_LOG"
n1=$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue LIKE 'cq%'")
writer_stop
writer_start -c "$CONF" || exit 1
sleep 1
check_eq "a restart enqueues nothing more (each tick once)" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue LIKE 'cq%'")" "$n1"
# A line removed from the file: its row is deleted at the next start.
writer_stop
grep -v c-skip "$CONF" >"$CONF.2" && mv "$CONF.2" "$CONF"
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' \"SELECT count(*) FROM mosqlite_job_cron WHERE name = 'c-skip'\") = 0 ]"
check_eq "a line removed: its row deleted" "$(sql "SELECT group_concat(name) FROM (SELECT name FROM mosqlite_job_cron ORDER BY name)")" "c-all,c-all2,c-one,every"
check "  and logged" grep -q "job-cron c-skip: no longer in the config: its row in mosqlite_job_cron is deleted" "$WRITER_LOG"
check "the job counts agree with the rows" counts_agree

# --- cancel_job inside write requests ---------------------------------------------------------------
sub_bg "$GRANTS" "$TO/#" -v
enq() { r=$(req write "$1" "\"op\":\"enqueue\",\"queue\":\"$2\",\"payload\":$3"); sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r"; }
k1=$(enq k1 kq 1)
r=$(req write x1 "\"op\":\"cancel_job\",\"job\":$k1")
check_eq "cancel_job of a queued job: cancelled at once" "$r" "{\"id\":\"x1\",\"status\":\"applied\",\"changes\":0,\"jobs\":[{\"job\":$k1,\"state\":\"cancelled\"}]}"
check_eq "  in the table" "$(sql "SELECT state, error FROM mosqlite_jobs WHERE id = $k1")" "cancelled|"
k2=$(enq k2 kq 2)
pub jobs/kq "{\"op\":\"claim\",\"id\":\"kc1\",\"worker\":\"wk\",\"session\":\"sk\",\"reply_to\":\"$TO/wk\",\"wait_ms\":0}"
wait_until 10 grep -q "\"claim\":\"kc1\",\"job\":$k2" "$GRANTS"
r=$(req write x2 "\"ops\":[{\"table\":\"builds\",\"values\":{\"id\":90,\"name\":\"b90\",\"status\":\"cancelled\"}},{\"op\":\"cancel_job\",\"job\":$k2}]")
check_eq "cancel_job of a running job, in a transaction: asked" "$r" "{\"id\":\"x2\",\"status\":\"applied\",\"changes\":1,\"rowid\":90,\"jobs\":[{\"job\":$k2,\"state\":\"running\",\"cancel_asked\":true}]}"
check "  pushed to its worker" wait_until 5 grep -q "$TO/wk {\"op\":\"cancel\",\"job\":$k2,\"attempt\":1}" "$GRANTS"
r=$(req write x3 "\"op\":\"cancel_job\",\"job\":$k2")
check_eq "  asked again: the same answer" "$r" "{\"id\":\"x3\",\"status\":\"applied\",\"changes\":0,\"jobs\":[{\"job\":$k2,\"state\":\"running\",\"cancel_asked\":true}]}"
r=$(req jobs/kq kf1 "\"op\":\"fail\",\"job\":$k2,\"attempt\":1,\"cancelled\":true")
check_eq "  the worker stops it: cancelled" "$(sql "SELECT state FROM mosqlite_jobs WHERE id = $k2")" "cancelled"
r=$(req write x4 "\"ops\":[{\"table\":\"builds\",\"values\":{\"id\":91,\"name\":\"b91\"}},{\"op\":\"cancel_job\",\"job\":$k2}]")
check_eq "cancel_job of a finished job: the transaction is rejected" "$r" "{\"id\":\"x4\",\"status\":\"rejected\",\"error\":\"ops[1]: job $k2 is already cancelled\"}"
check_eq "  and its row was not written" "$(sql "SELECT count(*) FROM builds WHERE id = 91")" "0"
r=$(req write x5 '"op":"cancel_job","job":999999')
check_eq "cancel_job of no job" "$r" '{"id":"x5","status":"rejected","error":"no job 999999"}'
r=$(req write x6 '"op":"cancel_job","job":"7"')
check_eq "cancel_job: job not an integer" "$r" '{"id":"x6","status":"rejected","error":"\"job\" must be an integer from 1 to 9007199254740991"}'
r=$(req write x7 '"op":"cancel_job","job":1.0')
check_eq "cancel_job: 1.0 is not an id" "$r" '{"id":"x7","status":"rejected","error":"\"job\" must be an integer from 1 to 9007199254740991"}'
r=$(req write x8 '"op":"cancel_job","job":1,"queue":"kq"')
check_eq "cancel_job: unknown field" "$r" '{"id":"x8","status":"rejected","error":"unknown field \"queue\" in a cancel_job (it takes \"job\")"}'
r=$(req write/builds x9 '"op":"cancel_job","job":1')
check_eq "cancel_job on a table's topic" "$r" '{"id":"x9","status":"rejected","error":"a cancel_job goes on PREFIX/write, not on a table'"'"'s topic"}'
r=$(req write x10 '"op":"cancel_job"')
check_eq "cancel_job without a job" "$r" '{"id":"x10","status":"rejected","error":"cancel_job needs \"job\": the job'"'"'s id"}'

# --- pruning of finished jobs ---------------------------------------------------------------------
# done (with an attempt), cancelled, dead: some older than their keep age, some not.
p1=$(enq p1 pq 1); p2=$(enq p2 pq 2); p3=$(enq p3 pq 3); p4=$(enq p4 pq 4); p5=$(enq p5 pq 5)
pub jobs/pq "{\"op\":\"claim\",\"id\":\"pc1\",\"worker\":\"wp\",\"session\":\"sp\",\"reply_to\":\"$TO/wp\",\"wait_ms\":0}"
wait_until 10 grep -q "\"claim\":\"pc1\",\"job\":$p1" "$GRANTS"
req jobs/pq pd1 "\"op\":\"done\",\"job\":$p1,\"attempt\":1" >/dev/null
req write pk2 "\"ops\":[{\"op\":\"cancel_job\",\"job\":$p2},{\"op\":\"cancel_job\",\"job\":$p3}]" >/dev/null
ADM=$T/adm
sub_bg "$ADM" "$PREFIX_TOPIC/reply/ops/#" -v
for j in $p4 $p5; do
    mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/admin" -m "{\"reply_to\":\"$PREFIX_TOPIC/reply/ops/d$j\",\"cmd\":\"job_discard\",\"job\":$j}"
    wait_until 10 grep -q "reply/ops/d$j " "$ADM"
done
check_eq "finished: done, cancelled, dead" "$(sql "SELECT group_concat(state) FROM (SELECT state FROM mosqlite_jobs WHERE queue = 'pq' ORDER BY id)")" "done,cancelled,cancelled,dead,dead"
writer_stop
ago() { sql "UPDATE mosqlite_jobs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-$2 days') WHERE id = $1"; }
ago "$p1" 8; ago "$p2" 8; ago "$p3" 6; ago "$p4" 29; ago "$p5" 31
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' \"SELECT count(*) FROM mosqlite_jobs WHERE queue = 'pq'\") = 2 ]"
check_eq "older than job-keep-days (7) and job-dead-keep-days (30): deleted at start" \
    "$(sql "SELECT group_concat(id) FROM (SELECT id FROM mosqlite_jobs WHERE queue = 'pq' ORDER BY id)")" "$p3,$p4"
check_eq "  with their attempts" "$(sql "SELECT count(*) FROM mosqlite_job_attempts WHERE job = $p1")" "0"
check_eq "  the queue's counts moved down" "$(sql "SELECT n_done, n_cancelled, n_dead FROM mosqlite_job_queues WHERE queue = 'pq'")" "0|1|1"
check "  every queue's counts agree with its rows" counts_agree
check "  logged" grep -q "jobs: 3 finished jobs pruned (kept 7 days, dead ones 30 days)" "$WRITER_LOG"
check_eq "the pruning plan uses an index" "$(sql "EXPLAIN QUERY PLAN SELECT id FROM mosqlite_jobs WHERE state = 'done' AND finished_at < 'x' ORDER BY finished_at, id LIMIT 5" | grep -c 'INDEX mosqlite_jobs_finished (state=? AND finished_at<?)')" "1"

# --- a real tick: passed while the writer is stopped, then kill -9; and kill -9 after its commit --
# The one wait of this test: up to a minute, for the next minute boundary B.
kill -STOP "$WRITER_PID"
B=$(( ($(date +%s) / 60 + 1) * 60 ))
before=$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'cronq' AND enq_id = 'cron:every@$(iso $B)'")
note "writer stopped; waiting for the minute boundary $(iso $B)"
wait_until 70 sh -c "[ \$(date +%s) -ge $((B + 1)) ]"
writer_kill
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' \"SELECT count(*) FROM mosqlite_jobs WHERE enq_id = 'cron:every@$(iso $B)'\") -ge 1 ]"
writer_kill     # right after the tick's commit, maybe before its events
writer_start -c "$CONF" || exit 1
sleep 1
check_eq "the tick passed while the writer was stopped, then killed: exactly one job ($before before)" \
    "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE enq_id = 'cron:every@$(iso $B)'")" "1"
check_eq "one job per tick across every restart and kill of this test" \
    "$(sql "SELECT count(*) = count(DISTINCT enq_id) FROM mosqlite_jobs WHERE queue = 'cronq'")" "1"
check_eq "the row moved past the tick" "$(sql "SELECT last_tick_ms / 1000 >= $B, next_tick_ms / 1000 > $B FROM mosqlite_job_cron WHERE name = 'every'")" "1|1"
check "the job counts agree with the rows" counts_agree
check "the writer is online" status_is online

exit $NFAIL
