#!/bin/bash
# Failover by hand: the writer's machine is lost and a replica is promoted.
# Four producers stream id'd requests with mosqlite-pub --wait (two with --window 1,
# whose order must be kept); replica r1 follows, and a watcher records every receipt
# the writer publishes. Mid-stream the writer is killed (SIGKILL) and its database
# deleted (file, WAL and all): that machine is gone. The producers go on publishing
# (the broker queues their requests in the writer's session) and republish what has no
# receipt. Then `mosqlite-replica --promote` on r1's file: it applies what was still
# queued for it, ends its own session, and becomes the writer (exec), taking over the
# request session. Checks: every request that had got an `applied` receipt before the
# kill is in the promoted file; every request is applied exactly once (those queued
# meanwhile after it); order kept for the --window 1 producers; every producer exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"
. "$(dirname "$0")/replica.sh"

NO=300 NW=3000 PACE=300
TOTAL=$((2 * NO + 2 * NW))

broker_start
writer_start
replica_start r1
wait_until 15 caught_up r1 || fail "r1 follows the writer"
# --promote refuses while the writer's status says online (a second writer on a copy
# of the file would be a split brain).
timeout 60 "$BIN/mosqlite-replica" -p "$MQTT_PORT" --id r9 --db "$T/r9.db" --promote >"$T/r9.log" 2>&1
check_eq "--promote refuses while the writer is online (exit 1)" "$?" 1
check "and says why" grep -q "the writer's status says online" "$T/r9.log"
sub_bg "$T/receipts.all" "$PREFIX_TOPIC/receipts/#"
producers_start "$NO" "$NW" "$PACE"

wait_until 120 at_least $((TOTAL / 3)) || fail "rows reached $((TOTAL / 3)) before the kill"
writer_kill
# What the producers had been told was applied, up to the moment the writer died.
sleep 0.5
grep '"status":"applied"' "$T/receipts.all" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | sort -u >"$T/applied-before"
note "writer killed at sequence $(writer_seq): $(wc -l <"$T/applied-before") applied receipts so far; r1 at $(seq_of "$T/r1.db")"
rm -f "$DB" "$DB-wal" "$DB-shm"
check "the writer's database is gone" test ! -e "$DB"
sleep 2     # the producers keep publishing into the writer's session meanwhile

# Promote r1: stop it, then --promote on the same file (the session holds what it missed).
replica_stop r1
"$BIN/mosqlite-replica" -p "$MQTT_PORT" --id r1 --db "$T/r1.db" --promote -- --schema "$ROOT/conf/schema" \
    >>"$T/promoted.log" 2>&1 &
WRITER_PID=$!; PIDS="$PIDS $WRITER_PID"
check "the promoted replica comes online as the writer" wait_until 90 status_is online
note "promoted: $(grep -m1 'promoted at' "$T/promoted.log")"

DB=$T/r1.db        # from here on the promoted file is the database
producers_wait 4
# Ids are f-P-I: producer P's request I is the build_logs row (build_id P, line I).
missing=$(sqlite3 -cmd '.timeout 5000' "$DB" "CREATE TEMP TABLE seen (id TEXT);" ".import $T/applied-before seen" \
    "SELECT count(*) FROM (SELECT substr(id, 3) AS r FROM temp.seen) WHERE NOT EXISTS (SELECT 1 FROM build_logs
     WHERE build_id = CAST(substr(r, 1, instr(r, '-') - 1) AS INTEGER) AND line = substr(r, instr(r, '-') + 1))")
check_eq "every request with an applied receipt before the kill is in the promoted file" "$missing" 0
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2"
check "the promoted writer took over the request session" grep -q "session resumed" "$T/promoted.log"
writer_stop
note "FIGURES t_replica_failover: requests=$TOTAL applied-receipts-before-kill=$(wc -l <"$T/applied-before")" \
     "lost=$LOST duplicated=$DUPS"
