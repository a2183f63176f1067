#!/bin/bash
# tests/bench/retain.sh: how long retention holds writes up. Runnable alone (bash
# tests/bench/retain.sh); prints result lines in the manner of tests/bench/run.sh, with
# the target and PASS/MISS. A report, not a test: exits 0 whatever the numbers.
#
#   P2  receipts at RATE/s (default 1000) from the writer's start with `retain build_logs
#       ts 30d` on a database whose build_logs holds ROWS (default 1,000,000) old lines
#       (indexed by ts) until every one is deleted, in steps of retain-batch (500) rows
#       between batches: p50/p99/max, the pass's length, its longest step;
#   P1  receipts at RATE/s for as long on the same database without retention: the
#       receipts' p99 and max during the pass against these, in the same run.
#
#   QUICK=1 ...      ROWS=100000
#   KEEP=1 ...       keep the temp dir
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh
if [ -n "${QUICK:-}" ]; then ROWS=${ROWS:-100000}; fi
ROWS=${ROWS:-1000000} RATE=${RATE:-1000}
MQB=$ROOT/build/bench/mqbench
[ -x "$MQB" ] || BUILD_ONLY=1 sh tests/bench/run.sh >/dev/null || exit 2

. "$ROOT/tests/lib.sh"
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
row() { printf '%-4s %-62s %-22s %s\n' "$@"; }
say() { echo "bench: $*" >&2; }
rate_run() { _s=$1; shift; "$MQB" rate -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write/build_logs" -r "$RATE" -s "$_s" --timeout 60 "$@"; }

# The schema with an index on build_logs.ts, as a deployment that retains by it has.
SCHEMA=$T/schema
mkdir -p "$SCHEMA"
cp "$ROOT"/conf/schema/*.sql "$SCHEMA"/
echo 'CREATE INDEX build_logs_by_ts ON build_logs (ts);' >"$SCHEMA/900_build_logs_by_ts.sql"

broker_start
say "making a database with $ROWS old log lines"
writer_start
writer_stop
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
     INSERT INTO build_logs (build_id, line, ts)
     SELECT i / 1000, 'step ' || i || ': compiling src/mod_' || (i % 997) || '.c ok',
            strftime('%Y-%m-%dT%H:%M:%fZ', '2020-01-01', '+' || (i / 10) || ' seconds') FROM n"
sql 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
cp "$DB" "$T/copy.db"
size=$(stat -c %s "$DB")

# P2 first: receipts from the writer's start until the pass is over (mqbench stops
# sending once $T/pass.done exists), then P1 for as long, without retention.
say "P2: receipts at $RATE/s while retention deletes the $ROWS old lines"
mv "$DB" "$T/orig.db"
mv "$T/copy.db" "$DB"
printf 'retain build_logs ts 30d\n' >"$T/retain.conf"
pass_done() { grep -q "retain build_logs ts: $ROWS rows before" "$WRITER_LOG"; }
writer_start -c "$T/retain.conf"
( wait_until 900 pass_done; touch "$T/pass.done" ) &
PIDS="$PIDS $!"
p2=$(rate_run 900 --until "$T/pass.done")
pass=$(grep -m1 "retain build_logs ts: $ROWS rows before" "$WRITER_LOG" | sed 's/.*: \([0-9]* rows before\)/\1/')
pass_ms=$(sed -n 's/.*examined), \([0-9]*\) ms, longest step.*/\1/p' <<<"$pass")
step_ms=$(sed -n 's/.*longest step \([0-9.]*\) ms.*/\1/p' <<<"$pass")
left=$(sql "SELECT count(*) FROM build_logs WHERE ts < '2021'")
writer_stop
SECS=$(printf '%.0f' "$(kv "$p2" send_secs)")
[ "$SECS" -ge 1 ] 2>/dev/null || SECS=1

say "P1: receipts at $RATE/s for $SECS s, no retention"
rm -f "$DB" "$DB-wal" "$DB-shm"
mv "$T/orig.db" "$DB"
writer_start
p1=$(rate_run "$SECS")
writer_stop
say "P1: $p1"
say "P2: $p2"
say "pass: $pass"

p99_1=$(kv "$p1" p99_ms) p99_2=$(kv "$p2" p99_ms) max_1=$(kv "$p1" max_ms) max_2=$(kv "$p2" max_ms)
echo
row "#" "measurement" "result" "target"
row P1 "receipts at $RATE/s for $SECS s, $ROWS old rows, no retention: p50/p99/max" \
    "$(kv "$p1" p50_ms)/$p99_1/$max_1 ms" "$(kv "$p1" receipts)/$(kv "$p1" sent) receipts"
row P2 "same, while retention deletes them (batch 500): p50/p99/max" \
    "$(kv "$p2" p50_ms)/$p99_2/$max_2 ms" \
    "p99 <= P1 p99 x1.5 + 5 ms: $(verdict "${p99_2:-99999} <= ${p99_1:-0} * 1.5 + 5")"
row "" "  longest retention step (the longest writes wait on it)" "${step_ms:-?} ms" \
    "< 100 ms: $(verdict "${step_ms:-99999} < 100")"
row "" "  the pass: $ROWS rows of $((size / 1048576)) MB deleted in" "${pass_ms:-?} ms" \
    "$(kv "$p2" receipts)/$(kv "$p2" sent) receipts; $left old rows left"
exit 0
