#!/bin/bash
# tests/bench/admin.sh: what maintenance and hooks cost the writes around them. Runnable
# alone (bash tests/bench/admin.sh); prints result lines in the manner of tests/bench/run.sh,
# each with its target and PASS/MISS. A report, not a test: exits 0 whatever the numbers.
#
#   A1  a backup of a SIZE_MB (default 1024) database taken while requests arrive at
#       RATE/s: the longest single step of the copy (the longest writes are held up) and
#       the receipt latency meanwhile.
#   H1  receipt latency at RATE/s (default 1000) with no hook, then
#   H2  the same with a hook that sleeps 1 s on every commit (hook-max 4): the receipts'
#       p99 must not move by more than noise.
#
#   QUICK=1 ...      SIZE_MB=100, 5 s runs
#   KEEP=1 ...       keep the temp dir
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh
if [ -n "${QUICK:-}" ]; then SIZE_MB=${SIZE_MB:-100} SECS=${SECS:-5}; fi
SIZE_MB=${SIZE_MB:-1024} SECS=${SECS:-15} RATE=${RATE:-1000}
MQB=$ROOT/build/bench/mqbench
[ -x "$MQB" ] || BUILD_ONLY=1 sh tests/bench/run.sh >/dev/null || exit 2

. "$ROOT/tests/lib.sh"
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
jv() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
row() { printf '%-4s %-62s %-22s %s\n' "$@"; }
say() { echo "bench: $*" >&2; }

broker_start
sub_bg "$T/answers" "$PREFIX_TOPIC/reply/bench/#"
answers_are() { [ "$(wc -l <"$T/answers")" -ge "$1" ]; }
ask() {
    _n=$(( $(wc -l <"$T/answers") + 1 ))
    pub admin "{\"reply_to\":\"$PREFIX_TOPIC/reply/bench/$_n\",$1}" -q 1
    wait_until "${2:-600}" answers_are $_n || { echo "no answer"; return; }
    sed -n "${_n}p" "$T/answers"
}
rate_run() { "$MQB" rate -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write/build_logs" -r "$RATE" -s "$1" --timeout 60; }

# --- A1: backup of a large database while writing ------------------------------------
say "making a $SIZE_MB MB database"
writer_start
writer_stop
rows=$((SIZE_MB * 1024 * 1024 / 1100))
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
     INSERT INTO build_logs (build_id, line) SELECT 0, hex(randomblob(500)) FROM n"
sql 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
size=$(stat -c %s "$DB")
say "database: $((size / 1048576)) MB; backing it up while writing at $RATE/s"
printf 'backup-dir %s\n' "$T/backups" >"$T/writer.conf"
writer_start -c "$T/writer.conf"
rate_run $((SECS * 4)) >"$T/a1.rate" &
RP=$!
sleep 2
a=$(ask '"cmd":"backup","name":"big.db"')
wait "$RP"
r=$(cat "$T/a1.rate")
step=$(jv "$a" longest_step_ms)
ms=$(jv "$a" ms)
ok=$(sqlite3 "$T/backups/big.db" 'PRAGMA quick_check' 2>&1)
say "backup answer: $a"
say "receipts meanwhile: $r"
writer_stop

# --- H1, H2: receipts at RATE/s without and with a hook sleeping 1 s ------------------
rm -f "$DB" "$DB-wal" "$DB-shm"
writer_start
say "receipts at $RATE/s for $SECS s, no hook"
h1=$(rate_run "$SECS")
writer_stop
rm -f "$DB" "$DB-wal" "$DB-shm"
printf 'hook build_logs insert sleep 1\nhook-max 4\n' >"$T/hook.conf"
writer_start -c "$T/hook.conf"
say "receipts at $RATE/s for $SECS s, hook sleeping 1 s on every commit"
h2=$(rate_run "$SECS")
dropped=$(grep -c 'this one is dropped' "$WRITER_LOG")
writer_stop
say "no hook: $h1"
say "hook:    $h2"

p99_1=$(kv "$h1" p99_ms) p99_2=$(kv "$h2" p99_ms)
echo
row "#" "measurement" "result" "target"
row A1 "backup of $((size / 1048576)) MB while writing at $RATE/s: longest hold-up" "${step:-?} ms" \
    "< 1 s: $(verdict "${step:-99999} < 1000")"
row "" "  whole backup (copied in steps between batches)" "${ms:-?} ms" "quick_check: $ok"
row "" "  receipts meanwhile p50/p99/max" "$(kv "$r" p50_ms)/$(kv "$r" p99_ms)/$(kv "$r" max_ms) ms" \
    "$(kv "$r" receipts)/$(kv "$r" sent) receipts"
row H1 "receipts at $RATE/s, no hook: p50/p99/max" "$(kv "$h1" p50_ms)/$p99_1/$(kv "$h1" max_ms) ms" ""
row H2 "same, hook sleeping 1 s per commit (hook-max 4): p50/p99/max" \
    "$(kv "$h2" p50_ms)/$p99_2/$(kv "$h2" max_ms) ms" \
    "p99 <= H1 p99 x1.5 + 5 ms: $(verdict "${p99_2:-99999} <= ${p99_1:-0} * 1.5 + 5")"
row "" "  hook runs dropped (queue full)" "$dropped" "$(kv "$h2" receipts)/$(kv "$h2" sent) receipts"
exit 0
