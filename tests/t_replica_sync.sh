#!/bin/bash
# Synchronous replicas (sync-replicas N): a receipt goes out only once N replicas have
# applied its commit and acknowledged it. Real broker, writer and replicas.
#
# 1. sync-replicas 1, one replica r1, sync-fallback hold: receipts come, and every row
#    with a receipt is already in r1's file when the receipt arrives (a watcher reads
#    r1's file on each receipt). r1 frozen (SIGSTOP): the writer commits, no receipt
#    comes, its status says "holding"; r1 woken: every receipt comes, in order.
# 2. sync-fallback degrade, sync-timeout-ms 1000: r1 frozen: the receipts come after
#    the timeout, the status says "degraded" (and the log says so); r1 woken: "sync"
#    again, and receipts wait for r1 again.
# 3. Two replicas, sync-replicas 1: one frozen does not hold receipts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica.sh"

broker_start
writer_start --sync-replicas 1 --sync-timeout-ms 1000
replica_start r1
check "r1 bootstraps from a snapshot" wait_until 20 caught_up r1

# The watcher: on each receipt, is its row (builds.id = N for request sN) in FILE?
# One line per receipt: "N yes" or "N no", in the order the receipts came.
watch_receipts() {
    _file=$1 _out=$2
    _id=watch-$$-$RANDOM
    ( mosquitto_sub -p "$MQTT_PORT" -i "$_id" -q 1 -t "$REPLY/#" | while read -r line; do
        n=$(sed -n 's/.*"id":"s\([0-9]*\)".*/\1/p' <<<"$line")
        [ -n "$n" ] || continue
        c=$(sqlite3 -cmd '.timeout 5000' "$_file" "SELECT count(*) FROM builds WHERE id = $n" 2>/dev/null)
        if [ "$c" = 1 ]; then echo "$n yes"; else echo "$n no"; fi
      done >"$_out" ) &
    PIDS="$PIDS $!"
    wait_until 10 grep -q "^[^ ]* $_id [0-9] " "$T/broker/mosquitto.log" || note "watcher not subscribed"
}
send() { for i in $(seq "$1" "$2"); do
    pub write/builds "{\"id\":\"s$i\",\"reply_to\":\"$REPLY/s$i\",\"values\":{\"id\":$i,\"name\":\"b$i\"}}"; done; }
got() { grep -c . "$1" 2>/dev/null || echo 0; }
in_writer() { [ "$(sql "SELECT count(*) FROM builds WHERE id BETWEEN $1 AND $2")" = $(($2 - $1 + 1)) ]; }
writer_says() { status | grep -q "\"sync\":\"$1\""; }
lines_for() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b' "$3"; }

watch_receipts "$T/r1.db" "$T/w1"
send 1 20
check "20 receipts come with r1 acknowledging" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 20 ]"
check_eq "every row with a receipt was in r1's file when the receipt came" "$(grep -c ' yes$' "$T/w1")" 20
names_r1() { status | grep -q '"sync":"sync".*"replicas_in_sync":\["r1"\]'; }
check "the writer's status names r1 in sync" wait_until 10 names_r1
check "r1's status says it is synchronous" wait_until 10 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/replica/r1/status -C 1 -W 2 | grep -q '\"sync\":true'"

# r1 frozen: commits go on, receipts wait.
kill -STOP "$(replica_pid r1)"
send 21 40
check "r1 frozen: the writer commits requests 21-40" wait_until 20 in_writer 21 40
sleep 3
check_eq "... and no receipt comes for them within 3 s" "$(lines_for 21 40 "$T/w1" | grep -c .)" 0
check "... the writer's status says holding" wait_until 10 writer_says holding
check "... and the log says why" grep -q 'sync: commit [0-9]* has waited .* holding' "$WRITER_LOG"
kill -CONT "$(replica_pid r1)"
check "r1 woken: the 20 receipts come" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 40 ]"
check_eq "... in order" "$(lines_for 21 40 "$T/w1" | awk '{print $1}' | tr '\n' ' ')" "$(seq 21 40 | tr '\n' ' ')"
check_eq "... each row in r1's file when its receipt came" "$(lines_for 21 40 "$T/w1" | grep -c ' yes$')" 20
check "the writer's status says sync again" wait_until 10 writer_says sync

# 2. degrade.
writer_stop
writer_start --sync-replicas 1 --sync-timeout-ms 1000 --sync-fallback degrade
send 41 42
check "degrade: receipts come with r1 up" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 42 ]"
kill -STOP "$(replica_pid r1)"
send 43 50
check "r1 frozen: the receipts come after the timeout" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 50 ]"
check "... the status says degraded" wait_until 10 writer_says degraded
check "... the log says so" grep -q 'sync: DEGRADED' "$WRITER_LOG"
check_eq "... and those rows were not in r1's file (sent without its ack)" "$(lines_for 43 50 "$T/w1" | grep -c ' no$')" 8
kill -CONT "$(replica_pid r1)"
check "r1 woken: the status says sync again" wait_until 20 writer_says sync
check "... and the log says so" grep -q 'in sync again' "$WRITER_LOG"
send 51 55
check "receipts wait for r1 again: 51-55 come" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 55 ]"
check_eq "... each row in r1's file when its receipt came" "$(lines_for 51 55 "$T/w1" | grep -c ' yes$')" 5

# 3. Two replicas, one needed: one frozen holds nothing.
writer_stop
writer_start --sync-replicas 1 --sync-timeout-ms 60000
replica_start r2
check "r2 bootstraps" wait_until 20 caught_up r2
send 56 57
check "receipts come with both up" wait_until 20 sh -c "[ \$(grep -c . $T/w1) -ge 57 ]"
kill -STOP "$(replica_pid r1)"
watch_receipts "$T/r2.db" "$T/w2"
send 58 67
check "r1 frozen, r2 up: the receipts come" wait_until 20 sh -c "[ \$(grep -c . $T/w2) -ge 10 ]"
check_eq "... each row in r2's file when its receipt came" "$(lines_for 58 67 "$T/w2" | grep -c ' yes$')" 10
kill -CONT "$(replica_pid r1)"

# Bad settings name the option.
out=$("$BIN/mosqlite-writer" --sync-fallback sometimes 2>&1); rc=$?
check_eq "sync-fallback sometimes: exit 3" "$rc" 3
check "... naming the option ($out)" grep -q 'sync-fallback: "sometimes" is not hold or degrade' <<<"$out"
exit 0
