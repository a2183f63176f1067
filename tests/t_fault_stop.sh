#!/bin/bash
# Fault: SIGSTOP the writer (keepalive 5 s) for longer than the broker waits (1.5 x
# keepalive), so the broker drops it and fires its Last Will, then SIGCONT. Nothing is
# lost (the writer keeps what it holds; the broker keeps the rest in the persistent
# session), so order must be kept for every producer, windowed ones included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

NO=60 NW=500 PACE=1000 STOP_S=12
if [ -n "${SOAK:-}" ]; then NO=300 NW=5000 PACE=300 STOP_S=40; fi
TOTAL=$((2 * NO + 2 * NW))

broker_start
writer_start --keepalive 5
# --timeout 30: a writer that never recovers fails the test in 30 s, not 120.
producers_start "$NO" "$NW" "$PACE" --timeout 30

wait_until 60 at_least $((TOTAL / 4)) || fail "rows reached $((TOTAL / 4))"
kill -STOP "$WRITER_PID"
at_stop=$(applied_rows)
note "SIGSTOP at $at_stop rows, for ${STOP_S}s (keepalive 5 s)"
wait_until 15 status_is offline
check "stopped past its keepalive: the broker fires the Last Will (offline)" status_is offline
sleep $((STOP_S - 8))
check_eq "nothing applied while stopped" "$(applied_rows)" "$at_stop"
kill -CONT "$WRITER_PID"
wait_until 20 status_is online
check "after SIGCONT: online again" status_is online
wait_until 30 at_least "$TOTAL"
flaps=$(grep -c 'request connection lost' "$WRITER_LOG")
check "request connection stable after SIGCONT ($flaps losses logged)" [ "$flaps" -le 3 ]
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2 3 4"
status_counts "writer's status" "every request" "$TOTAL"
note "FIGURES t_fault_stop: requests=$TOTAL stops=1 (${STOP_S}s) lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
