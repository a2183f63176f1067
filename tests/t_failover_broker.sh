#!/bin/bash
# Writer machine lost with its broker (the Debian package's layout: the broker on the
# writer's machine), with etcd and sync-replicas 1. A second broker idles on a replica's
# machine (docs/replicas.md, "Automatic failover with etcd": the broker to move to).
#
# The writer and its broker are killed (SIGKILL) and the writer's file and the broker's
# saved state deleted while four producers stream id'd requests with mosqlite-pub --wait
# and the replicas follow. Then:
# - the designated replica already holds every request that had an applied receipt;
# - it does not promote itself: it has no broker to catch up from, and says so (exit 1
#   after 60 s); the other says it is not designated;
# - promoted by hand against the second broker (the replica KEY/sync names), the other
#   replica and the producers moved there (the producers republish every request by id):
#   every request with an applied receipt is in the promoted file, every request applied
#   exactly once, order kept, and the other replica follows the new writer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"
. "$(dirname "$0")/replica.sh"
. "$(dirname "$0")/etcd.sh"

TTL=${ETCD_TTL:-3}
broker_start
B1_PORT=$MQTT_PORT B1_PID=$BROKER_PID
etcd_cluster_start
EOPTS="--etcd-endpoints $ETCD_ENDPOINTS --etcd-ttl $TTL"
WOPTS="--schema $ROOT/conf/schema --keepalive 5 --sync-replicas 1 --sync-timeout-ms 2000"

# The second broker, on a replica's machine: the same config, its own ports and state.
B2_PORT=$(free_port) B2_WS=$(free_port)
mkdir -p "$T/broker2"
sed -e "s/^listener $B1_PORT /listener $B2_PORT /" -e "s/^listener $WS_PORT\$/listener $B2_WS/" \
    -e "s|$T/broker/|$T/broker2/|g" "$T/broker/mosquitto.conf" >"$T/broker2/mosquitto.conf"
mosquitto -c "$T/broker2/mosquitto.conf" >>"$T/broker2/stdout.log" 2>&1 &
B2_PID=$!
PIDS="$PIDS $B2_PID"
wait_until 10 port_open "$B2_PORT" || { fail "the second broker started"; exit 1; }

exited() { ! kill -0 "$1" 2>/dev/null; }
leader_gone() { [ -z "$(etcd_get "/mosqlite/$PREFIX_TOPIC/leader")" ]; }

# shellcheck disable=SC2086
writer_start $EOPTS --keepalive 5 --sync-replicas 1 --sync-timeout-ms 2000
auto_replica r1
auto_replica r2
check "r1 and r2 follow" wait_until 30 sh -c "$(declare -f seq_of writer_seq caught_up); DB=$DB T=$T; caught_up r1 && caught_up r2"
check "the writer designates one replica in etcd" wait_until 20 has_designated
D=$(designated)
O=r1; [ "$D" = r1 ] && O=r2
note "designated: $D; the other: $O"

sub_bg "$T/receipts.all" "$PREFIX_TOPIC/receipts/#"
NO=300 NW=1500
producers_start "$NO" "$NW" 300
wait_until 120 at_least $(((2 * NO + 2 * NW) / 3)) || fail "rows reached a third before the kill"

# The writer's machine lost: the writer, its file, its broker and the broker's state.
writer_kill
kill -9 "$B1_PID" 2>/dev/null; wait "$B1_PID" 2>/dev/null
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-writer.lock" "$DB-writer.session" "$T/broker/mosquitto.db"
sleep 0.3
applied_ids >"$T/applied-before"
N_APPLIED=$(wc -l <"$T/applied-before")
note "writer and broker killed: $N_APPLIED applied receipts; $D at $(seq_of "$T/$D.db"), $O at $(seq_of "$T/$O.db")"
check "applied receipts came before the kill" test "$N_APPLIED" -gt 0
check_eq "the designated replica ($D) holds every request with an applied receipt" \
    "$(missing_in "$T/$D.db" "$T/applied-before")" 0

# No broker: the designated replica cannot catch up, so it does not promote itself.
check "the leader key expires" wait_until 60 leader_gone
check "$D is told it may promote" wait_until 30 grep -q "names this replica at the latest epoch.*promoting" "$T/$D.log"
check "$O says why it does not" wait_until 30 grep -q "not this replica ($O): not promoting" "$T/$O.log"
DPID=$(replica_pid "$D")
check "$D gives up: no broker to catch up from" wait_until 120 exited "$DPID"
wait "$DPID"; rc=$?
check_eq "... exit 1" "$rc" 1
check "... saying why" grep -q "cannot promote: no connection to the broker after 60 s" "$T/$D.log"
check_eq "... and still holds every acknowledged request" "$(missing_in "$T/$D.db" "$T/applied-before")" 0

# By hand, on the second broker: the producers, the designated replica, the other replica.
for p in 1 2 3 4; do eval "kill \$PUB_$p" 2>/dev/null; eval "wait \$PUB_$p" 2>/dev/null; done
replica_stop "$O"
MQTT_PORT=$B2_PORT
export MQTT_PORT
# shellcheck disable=SC2086
replica_start "$D" $EOPTS --promote --force -- $WOPTS
check "$D promoted by hand on the second broker: a writer online there" wait_until 60 online_above 0
WRITER_PID=$(replica_pid "$D") DB=$T/$D.db WRITER_LOG=$T/$D.log
auto_replica "$O"
check "$O follows the new writer on the second broker" wait_until 60 caught_up "$O"
mosquitto_sub -p "$MQTT_PORT" -i "sub-after-$$" -t "$PREFIX_TOPIC/receipts/#" -q 1 >"$T/receipts.after" 2>&1 &
PIDS="$PIDS $!"
wait_until 10 grep -q " sub-after-$$ [0-9] " "$T/broker2/mosquitto.log" || note "no SUBSCRIBE in the second broker's log"
producers_start "$NO" "$NW" 0
producers_wait 4
note "republished: $(grep -c '"status":"duplicate"' "$T/receipts.after") answered duplicate, $(grep -c '"status":"applied"' "$T/receipts.after") applied"
check_eq "every request with an applied receipt before the kill is in the promoted file" \
    "$(missing_in "$DB" "$T/applied-before")" 0
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2"
check "$O catches up" wait_until 30 caught_up "$O"
check_eq "... with the same rows" "$(sqlite3 -cmd '.timeout 5000' "$T/$O.db" 'SELECT count(*) FROM build_logs')" \
    "$(sql 'SELECT count(*) FROM build_logs')"
note "FIGURES t_failover_broker: ttl=${TTL}s applied_before=$N_APPLIED lost=$LOST duplicated=$DUPS"
writer_stop
exit 0
