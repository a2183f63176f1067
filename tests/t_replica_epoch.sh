#!/bin/bash
# Epochs: a writer that was only frozen, not gone, after a replica was promoted in its
# place; and a replica offered a change of an older epoch.
#
# 1. The frozen old writer. Writer W1 (epoch 1, keepalive 5 s) with replicas r1 and r2;
#    a producer streams id'd requests with --wait. W1 is stopped (SIGSTOP: a hung VM, a
#    long stall); once the broker says it is offline (its Last Will), r1 is promoted by
#    hand (--promote: epoch 2) and takes requests. Then W1 wakes up (SIGCONT). It must
#    take nothing back: no commit more in its file, the promoted writer keeps running,
#    and W1 exits 4 naming both epochs. r2 follows the new writer; every request with an
#    applied receipt is in the promoted file, each once.
# 2. A stale change. A change of epoch 1 made from a real one, numbered as the very next
#    commit after r2's position, is published by hand: r2 refuses it, applies nothing,
#    and its status says so (stale_changes, stale_epoch, error), and it goes on following.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"
. "$(dirname "$0")/replica.sh"

N=3000
broker_start
WRITER_ARGS="--keepalive 5" writer_start
W1=$WRITER_PID
check "a new file starts at epoch 1" test "$(status | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p')" = 1
replica_start r1
replica_start r2
wait_until 15 caught_up r1 && wait_until 15 caught_up r2 || fail "r1 and r2 follow the writer"

# A real change of epoch 1, for part 2.
timeout -k 2 15 mosquitto_sub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/changes" -C 1 -W 10 >"$T/one-change" 2>&1 &
CSUB=$!
sleep 0.3
pub write/builds '{"values": {"id": 424242, "name": "one change"}}'
wait "$CSUB"

sub_bg "$T/receipts.all" "$PREFIX_TOPIC/receipts/#"
producer 1 "$N" 300
wait_until 60 at_least 200 || fail "200 rows before the freeze"
kill -STOP "$W1"
frozen_seq=$(writer_seq)
note "W1 stopped at sequence $frozen_seq"
check "the broker says W1 is offline (its Last Will)" wait_until 30 status_is offline
replica_stop r1
"$BIN/mosqlite-replica" -p "$MQTT_PORT" --id r1 --db "$T/r1.db" --promote -- --schema "$ROOT/conf/schema" \
    --keepalive 5 >"$T/promoted.log" 2>&1 &
W2=$!; PIDS="$PIDS $W2"
check "r1 promoted: a writer of epoch 2 online" \
    wait_until 60 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/status -C 1 -W 2 | grep -q '\"state\":\"online\".*\"epoch\":2'"
promoted_seq=$(sed -n 's/.*promoted at sequence \([0-9]*\),.*/\1/p' "$T/promoted.log")
wait_until 30 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' $T/r1.db 'SELECT seq FROM mosqlite_seq') -gt $promoted_seq ]" ||
    fail "the promoted writer commits"
note "promoted at sequence $promoted_seq; W2 now at $(seq_of "$T/r1.db"); W1 wakes up"
kill -CONT "$W1"
if timeout 30 sh -c "while kill -0 $W1 2>/dev/null; do sleep 0.1; done"; then
    wait "$W1"; rc=$?
else
    rc="still running"
fi
check_eq "W1 exits 4 once awake" "$rc" 4
check "... naming both epochs" grep -q "a writer of epoch 2 has replaced this one (epoch 1)" "$WRITER_LOG"
check_eq "W1 committed nothing after waking up" "$(writer_seq)" "$frozen_seq"
check "W2 still runs" kill -0 "$W2"
check "W2 kept its sessions" not grep -q "taken over" "$T/promoted.log"
check "the status is still W2's" status_is online

DB=$T/r1.db        # from here on the promoted file is the database
producers_wait 1
grep '"status":"applied"' "$T/receipts.all" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | sort -u >"$T/acked"
missing=$(sqlite3 -cmd '.timeout 5000' "$DB" "CREATE TEMP TABLE seen (id TEXT);" ".import $T/acked seen" \
    "SELECT count(*) FROM temp.seen s WHERE NOT EXISTS (SELECT 1 FROM build_logs b WHERE b.build_id = 1 AND
     b.line = substr(s.id, 5))")
check_eq "every request with an applied receipt is in the promoted file ($(wc -l <"$T/acked") receipts)" "$missing" 0
stream_check "1:$N" ""
check "r2 follows the promoted writer" wait_until 30 caught_up r2
check_eq "r2's file is at epoch 2" "$(sqlite3 "$T/r2.db" 'SELECT seq_epoch FROM mosqlite_seq')" 2
check "r2 equals the promoted file" same_dump r2

# --- 2. a change of an older epoch, made to look like the next commit -----------------
pos=$(seq_of "$T/r2.db")
head=$(head -1 "$T/one-change")
dbid=$(sed -n 's/.*"db":"\([0-9a-f]*\)".*/\1/p' <<<"$head")
schema=$(sed -n 's/.*"schema":\([0-9]*\).*/\1/p' <<<"$head")
printf '{"seq":%d,"prev":%d,"db":"%s","schema":%d,"epoch":1,"prev_epoch":1,"at":%d}\n' \
    $((pos + 1)) "$pos" "$dbid" "$schema" "$(date +%s%3N)" >"$T/stale-change"
tail -c +$(( ${#head} + 2 )) "$T/one-change" | head -c -1 >>"$T/stale-change"
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/changes" -f "$T/stale-change"
stale() { replica_status r2 | grep -q '"stale_changes":1,"stale_epoch":1'; }
check "r2 refuses it and counts it (stale_changes 1, stale_epoch 1)" wait_until 10 stale
st=$(replica_status r2)
check "... says why in its status ($st)" \
    grep -q "\"error\":\"refused change $((pos + 1)) of epoch 1: this file is at epoch 2 (sequence $pos)" <<<"$st"
check "... and stays following" grep -q '"state":"following"' <<<"$st"
check_eq "r2 applied nothing of it" "$(seq_of "$T/r2.db")" "$pos"
pub write/builds '{"values": {"id": 424243, "name": "after the stale change"}}'
check "r2 goes on following the writer of epoch 2" wait_until 15 caught_up r2
check "and equals its file" same_dump r2
kill -TERM "$W2"; wait "$W2"
