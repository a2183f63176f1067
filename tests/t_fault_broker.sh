#!/bin/bash
# Fault: SIGKILL the broker (persistence on) in the middle of a stream of id'd requests
# through mosqlite-pub --wait, and restart it on the same ports and persistence
# directory. What the broker held since its last autosave dies with it; the producers
# republish with the same ids. Short: 2,000 requests, 1 broker kill; SOAK=1: 11,000
# requests, 5 kills. Exactly once, order of the --window 1 producers, integrity, and the
# writer (never restarted) counts every request once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

NO=100 NW=900 PACE=1500 KILLS=1
if [ -n "${SOAK:-}" ]; then NO=500 NW=5000 PACE=500 KILLS=5; fi
TOTAL=$((2 * NO + 2 * NW))

broker_start
writer_start
producers_start "$NO" "$NW" "$PACE"

kills=0
for k in $(seq 1 "$KILLS"); do
    want=$(( TOTAL * k / (KILLS + 1) ))
    wait_until 120 at_least "$want" || { fail "rows reached $want before broker kill $k"; break; }
    broker_kill
    kills=$((kills + 1))
    note "broker kill $k at $(applied_rows) rows"
    sleep 0.5
    broker_start
    wait_until 20 status_is online || fail "writer back online after broker kill $k"
done
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2"
status_counts "writer's status" "every request (it ran throughout)" "$TOTAL"
check "writer never restarted" kill -0 "$WRITER_PID"
note "FIGURES t_fault_broker: requests=$TOTAL broker-kills=$kills lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
