#!/bin/bash
# Fault: SIGTERM in the middle of a large batch. 10,000 requests are queued at the broker
# while the writer is down (mosqlite-pub without --wait: nothing will ever be republished,
# so a request the writer drops on the way out is lost for good); then the writer is
# started with long batches and sent SIGTERM a moment later, three times (SOAK: ten,
# with 40,000). Each time: exit 0, offline status. At the end every request applied
# exactly once and in order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

P=4 N=2500 TERMS=3
if [ -n "${SOAK:-}" ]; then N=10000 TERMS=10; fi
TOTAL=$((P * N))

broker_start
writer_start
writer_stop
# The backlog, while the writer is stopped: mosqlite-pub exits 0 only once the broker
# has completed the QoS 2 handshake of every request.
for p in $(seq 1 "$P"); do
    feed "$p" "$N" 0 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" - 2>"$T/backlog$p.err" &
    eval "BL_$p=$!"
done
for p in $(seq 1 "$P"); do
    eval "wait \$BL_$p" || fail "backlog $p: mosqlite-pub failed: $(cat "$T/backlog$p.err")"
done
note "backlog of $TOTAL requests queued at the broker"

# Long batches (up to 5,000 requests or 2 s) so that SIGTERM lands inside one.
terms=0 in_hand=0
for k in $(seq 1 "$TERMS"); do
    before=$(applied_rows)
    writer_start --batch-max 5000 --batch-ms 2000
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
    kill -TERM "$WRITER_PID"
    wait "$WRITER_PID"; rc=$?
    terms=$((terms + 1))
    h=$(sed -n 's/.*stopping: \([0-9]*\) requests in hand.*/\1/p' "$WRITER_LOG" | tail -1)
    in_hand=$((in_hand + ${h:-0}))
    check_eq "SIGTERM $k: exit 0" "$rc" 0
    note "SIGTERM $k: $h requests in hand, $before -> $(applied_rows) rows"
    [ "$(applied_rows)" -ge "$TOTAL" ] && break
done
note "requests the writer reported in hand at its SIGTERMs: $in_hand over $terms"
check_eq "offline status after the last SIGTERM" "$(status)" \
    "$(status | grep '"state":"offline"')"
before=$(applied_rows)
writer_start
wait_until 30 at_least "$TOTAL"
stream_check "1:$N 2:$N 3:$N 4:$N" "1 2 3 4"
wait_until 10 status_applied_is $((TOTAL - before))
check_eq "last writer's status: applied = rows it added" "$(status_field applied)" $((TOTAL - before))
check_eq "no duplicate: nothing was republished, nothing applied twice" "$(status_field duplicates)" 0
note "FIGURES t_fault_term: requests=$TOTAL sigterms=$terms lost=$LOST duplicated=$DUPS"
