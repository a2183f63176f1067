#!/bin/bash
# Restarts and batches: requests published while the writer is down are applied when it
# returns, in order; kill -9 fires the Last Will and a restart comes back online; the
# writer rides out a broker restart; a rejected request inside a large batch leaves its
# neighbours applied.
. "$(dirname "$0")/lib.sh"

test_schema
broker_start
writer_start

# --- published while the writer is stopped ---------------------------------------
writer_stop
check "stopped writer: status offline" status_is offline
for i in $(seq 1 300); do echo "{\"values\":{\"build_id\":1,\"line\":\"$i\"}}"; done > "$T/offline.jsonl"
# One mosquitto_pub per line: mosquitto_pub -l can exit before its QoS 2 handshakes end.
while read -r l; do pub write/build_logs "$l" || echo "pub failed"; done < "$T/offline.jsonl" > "$T/pub.out" 2>&1
check_eq "nothing applied while stopped" "$(sql 'SELECT count(*) FROM build_logs')" 0
writer_start
wait_until 30 rows_are build_logs 300
check_eq "all 300 applied after restart" "$(sql 'SELECT count(*) FROM build_logs')" 300
check_eq "applied in publish order" "$(sql 'SELECT group_concat(line) FROM (SELECT line FROM build_logs ORDER BY id)')" "$(seq -s, 1 300)"

# --- kill -9: the Last Will ----------------------------------------------------------
writer_kill
wait_until 10 status_is offline
check "kill -9: retained status turns offline (Last Will)" status_is offline
check_eq "Last Will payload" "$(status)" '{"state":"offline","epoch":1}'
writer_start
check "restart after kill -9: online" status_is online

# --- the broker goes away and comes back ---------------------------------------------
broker_stop
sleep 1
broker_start
wait_until 20 status_is online
check "writer back online after a broker restart" status_is online
pub write/build_logs '{"values":{"build_id":2,"line":"after broker restart"}}'
wait_until 10 rows_are "build_logs WHERE build_id=2" 1
check "writes flow after the broker restart" rows_are "build_logs WHERE build_id=2" 1

# --- a rejection in the middle of a batch --------------------------------------------
writer_stop
for i in $(seq 1 1000); do
    case $i in
        250) echo '{"values":{"build_id":3,"lne":"typo"}}' ;;
        500) echo '{"values":{"build_id":3}}' ;;
        750) echo '{"values": not json' ;;
        *) echo "{\"values\":{\"build_id\":3,\"line\":\"$i\"}}" ;;
    esac
done | while read -r l; do pub write/build_logs "$l"; done
writer_start
wait_until 30 rows_are "build_logs WHERE build_id=3" 997
check_eq "neighbours of 3 rejected requests all applied" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id=3')" 997
check_eq "...in order" "$(sql "SELECT group_concat(line) FROM (SELECT line FROM build_logs WHERE build_id=3 ORDER BY id)")" "$(seq 1 1000 | grep -vxE '250|500|750' | paste -sd,)"
check_eq "3 rejections recorded" "$(sql "SELECT count(*) FROM mosqlite_rejected")" 3
wait_until 5 bash -c "status | grep -q '\"pending\":0'"
st=$(status)
mb=$(sed 's/.*"max_batch":\([0-9]*\).*/\1/' <<<"$st")
note "backlog of 1000 drained with max_batch=$mb ($st)"
check "the backlog was applied in batches (max_batch > 1)" [ "$mb" -gt 1 ]
check "integrity_check ok" [ "$(sql 'PRAGMA integrity_check')" = ok ]

# --- a conflict that rolls back the whole batch ---------------------------------------
# rb.k is UNIQUE ON CONFLICT ROLLBACK: the failing request takes the batch's transaction
# with it. The writer must apply the others exactly once, and reject only that one.
writer_stop
pub write/rb '{"values":{"k":"a"}}'
for i in 1 2 3; do pub write/build_logs "{\"values\":{\"build_id\":4,\"line\":\"before $i\"}}"; done
pub write/rb '{"values":{"k":"a"}}'
for i in 1 2 3; do pub write/build_logs "{\"values\":{\"build_id\":4,\"line\":\"after $i\"}}"; done
writer_start
wait_until 20 rows_are "build_logs WHERE build_id=4" 6
sleep 0.5
check_eq "batch rolled back by ON CONFLICT ROLLBACK: others applied once" \
    "$(sql "SELECT group_concat(line) FROM (SELECT line FROM build_logs WHERE build_id=4 ORDER BY id)")" \
    "before 1,before 2,before 3,after 1,after 2,after 3"
check_eq "...the first rb row kept" "$(sql "SELECT count(*) FROM rb")" 1
check_eq "...only the conflicting request rejected" \
    "$(sql "SELECT count(*) || ' ' || max(error) FROM mosqlite_rejected WHERE topic LIKE '%/rb'")" "1 UNIQUE constraint failed: rb.k"
