#!/bin/bash
# Fault: an outside process (sqlite3) holds the database's write lock for 5 s (SOAK: 30 s)
# in the middle of a stream. The writer (busy timeout 100 ms) rejects nothing, says
# "locked" in its status, holds what it has, and applies everything once the lock is
# released: exactly once, order kept for every producer, integrity.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

NO=40 NW=600 PACE=800 HOLD=5
if [ -n "${SOAK:-}" ]; then NO=200 NW=5000 PACE=300 HOLD=30; fi

broker_start
writer_start
producers_start "$NO" "$NW" "$PACE"
wait_until 60 at_least $((NW / 3)) || fail "rows reached $((NW / 3))"

# The outside writer: sqlite3 reading statements from a pipe, so the transaction stays
# open (holding the write lock) for HOLD seconds after it says so.
# It waits up to 10 s for its turn (the writer commits many times a second).
( echo ".timeout 10000"
  echo "BEGIN IMMEDIATE;"
  echo "INSERT INTO build_logs (build_id, line) VALUES (1000, 'outside');"
  echo "SELECT 'locked';"
  sleep "$HOLD"
  echo "COMMIT;"
  echo "SELECT 'released';" ) | sqlite3 "$DB" >"$T/locker.out" 2>&1 &
LOCKER=$!
PIDS="$PIDS $LOCKER"
wait_until 15 grep -q locked "$T/locker.out"
check "outside process took the lock" [ "$(cat "$T/locker.out")" = locked ]
at_lock=$(applied_rows)
note "outside process holds the write lock at $at_lock rows, for ${HOLD}s"
wait_until 4 error_is '"[^"]*locked'
check "status names the lock while it is held" error_is '"[^"]*locked'
note "status while locked: $(status)"
sleep 1
check_eq "nothing applied while the lock is held" "$(applied_rows)" "$at_lock"
wait "$LOCKER"
check "outside process committed and released, without an error" [ "$(tr "\n" " " < "$T/locker.out")" = "locked released " ]
check_eq "the outside row is there" "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 1000")" 1
wait_until 15 error_is null
check "status error cleared after the release" error_is null
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2 3 4"
TOTAL=$((2 * NO + 2 * NW))
status_counts "writer's status" "every request" "$TOTAL"
check_eq "no \"locked\" reached a producer" "$(cat "$T"/pub*.err | grep -ci locked)" 0
note "FIGURES t_fault_lock: requests=$TOTAL lock=${HOLD}s lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
