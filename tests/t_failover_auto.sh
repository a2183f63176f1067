#!/bin/bash
# Automatic failover on etcd: a real 3-member etcd cluster, a real broker (a machine of
# its own: it survives), writers and replicas with the same leader key, sync-replicas 1.
# The writer designates one replica in KEY/sync; the replicas watch the leader key
# (etcd-endpoints); when it is gone, the designated one promotes itself (a new epoch
# from etcd) and the others follow the new writer.
#
# a. Writer + r1 + r2, four producers streaming id'd requests with mosqlite-pub --wait.
#    The replica not designated is lagging: stopped (SIGSTOP) while the writer commits a
#    third of the stream, woken (SIGCONT) right after the kill. The writer is killed
#    (SIGKILL) and its file deleted: the designated replica promotes itself, the lagging
#    one says why it does not and catches up from the new writer, same rows; every
#    request with an applied receipt is in the promoted file, none applied twice.
# b. The writer frozen (SIGSTOP): the replica designated then promotes itself; woken
#    (SIGCONT), the old writer takes nothing back and exits naming the newer epoch; no
#    acknowledged write lost.
#    SOAK=1: a and b three times in a row, a fresh replica started before each a.
# c. ROUNDS kills in a row (3; SOAK=1: 10), a fresh replica started before each: each
#    time the designated replica is promoted; failover times (the old writer's last
#    receipt to the new one's first) as p50/p99.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"
. "$(dirname "$0")/replica.sh"
. "$(dirname "$0")/etcd.sh"

TTL=${ETCD_TTL:-3}
ROUNDS=${ROUNDS:-3}
[ "${SOAK:-}" = 1 ] && ROUNDS=${SOAK_ROUNDS:-10}
AB=1
[ "${SOAK:-}" = 1 ] && AB=3
broker_start
etcd_cluster_start
EOPTS="--etcd-endpoints $ETCD_ENDPOINTS --etcd-ttl $TTL"
WOPTS="--schema $ROOT/conf/schema --keepalive 5 --sync-replicas 1 --sync-timeout-ms 2000"
# exactly P N: producer P's N requests are each in $DB once.
exactly() {
    [ "$(sql "SELECT count(DISTINCT line) FROM build_logs WHERE build_id = $1")" = "$2" ] &&
        [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = $1")" = "$2" ]
}
rows_of() { sql "SELECT count(*) FROM build_logs WHERE build_id = $1"; }
# failover_ms KILL_TIME: the last receipt before it to the first after it, in ms.
failover_ms() {
    awk -v k="$1" '$1 < k && $1 > last { last = $1 } $1 > k && (first == "" || $1 < first) { first = $1 }
        END { if (first != "" && last != "") printf "%d\n", (first - last) * 1000 }' "$T/receipts.all"
}
# kill_writer: SIGKILL, and the file gone with its machine. Sets KT, the kill time.
kill_writer() {
    KT=$(date +%s.%N)
    writer_kill
    rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-writer.lock" "$DB-writer.session"
}

# shellcheck disable=SC2086
writer_start $EOPTS --keepalive 5 --sync-replicas 1 --sync-timeout-ms 2000
auto_replica r1
auto_replica r2
NR=2 FOLLOW="r1 r2" SPEC= ORD=
both_follow() { caught_up "$1" && caught_up "$2"; }
# o_log_has ERE: the log of replica $O, after its first $LO lines, matches ERE.
o_log_has() { tail -n +$((LO + 1)) "$T/$O.log" | grep -qE "$1"; }
rows_digest() { sqlite3 -cmd '.timeout 5000' "$1" 'SELECT * FROM build_logs ORDER BY id' | md5sum; }
sub_bg "$T/receipts.all" "$PREFIX_TOPIC/receipts/#" -F '%U %p'
NO=300 NW=1500

for j in $(seq 1 "$AB"); do
    [ "$AB" -gt 1 ] && note "parts a and b, round $j of $AB"
    P0=$((20 * (j - 1)))
    if [ "$j" -gt 1 ]; then NR=$((NR + 1)); auto_replica "r$NR"; FOLLOW="$FOLLOW r$NR"; fi
    # shellcheck disable=SC2086
    set -- $FOLLOW; A=$1 B=$2
    check "$A and $B follow" wait_until 30 both_follow "$A" "$B"
    check "the writer designates one replica in etcd" wait_until 20 has_designated
    D=$(designated)
    O=$A; [ "$D" = "$A" ] && O=$B
    check "... one of them ($D)" test "$D" = "$A" -o "$D" = "$B"
    check_eq "KEY/sync names it" "$(etcd_get "/mosqlite/$PREFIX_TOPIC/leader/sync" | sed -n 's/.*"replicas":\["\([^"]*\)"\].*/\1/p')" "$D"
    note "designated: $D; the other: $O"

    # a. Writer machine lost, the other replica lagging: stopped (SIGSTOP) from a third
    # of the stream until two thirds, woken (SIGCONT) right after the kill.
    P1=$((P0 + 1)) P2=$((P0 + 2)) P3=$((P0 + 3)) P4=$((P0 + 4))
    producer "$P1" "$NO" 0 --window 1
    producer "$P2" "$NO" 0 --window 1
    producer "$P3" "$NW" 300
    producer "$P4" "$NW" 300
    rows_a() { sql "SELECT count(*) FROM build_logs WHERE build_id BETWEEN $P1 AND $P4"; }
    at_least_a() { [ "$(rows_a)" -ge "$1" ]; }
    wait_until 120 at_least_a $(((2 * NO + 2 * NW) / 3)) || fail "rows reached a third before stopping $O"
    kill -STOP "$(replica_pid "$O")"
    SO0=$(seq_of "$T/$O.db") LO=$(wc -l <"$T/$O.log")
    wait_until 120 at_least_a $((2 * (2 * NO + 2 * NW) / 3)) || fail "rows reached two thirds before the kill"
    E0=$(epoch_now)
    kill_writer
    SD=$(seq_of "$T/$D.db") SO=$(seq_of "$T/$O.db")
    kill -CONT "$(replica_pid "$O")"
    sleep 0.3
    applied_ids >"$T/applied-before"
    note "writer killed: $(wc -l <"$T/applied-before") applied receipts; $D at $SD, $O at $SO (stopped at $SO0)"
    check "at the kill, $O was lagging: its sequence ($SO) below $D's ($SD)" test "${SO:-0}" -lt "${SD:-0}"
    check "the designated replica ($D) promotes itself: a writer online at a newer epoch" wait_until 60 online_above "$E0"
    check "... its log says why it may" grep -q "names this replica at the latest epoch.*promoting" "$T/$D.log"
    # Polling once a second, the lagging one sees the key gone (and that KEY/sync names
    # another) or, when the designated one was quicker, the key held by the new writer.
    check "... the lagging one ($O) says why it does not" wait_until 10 o_log_has \
        "not this replica \($O\): not promoting|is held by .*\"db\":\"$T/$D.db\".*: following"
    note "$O: $(tail -n +$((LO + 1)) "$T/$O.log" | grep -E 'not promoting|is held by' | head -1 | cut -c1-300)"
    check "... and does not promote itself" not o_log_has "promoting: applying"
    WRITER_PID=$(replica_pid "$D") DB=$T/$D.db WRITER_LOG=$T/$D.log
    for p in "$P1" "$P2" "$P3" "$P4"; do
        eval "wait \$PUB_$p"; check_eq "producer $p: mosqlite-pub --wait exit 0" "$?" 0
    done
    check_eq "no request rejected" "$(cat "$T"/pub*.err | grep -c 'rejected:')" 0
    note "failover: $(failover_ms "$KT") ms"
    check_eq "every request with an applied receipt before the kill is in the promoted file" \
        "$(missing_in "$DB" "$T/applied-before")" 0
    SPEC="$SPEC $P1:$NO $P2:$NO $P3:$NW $P4:$NW" ORD="$ORD $P1 $P2"
    stream_check "$SPEC" "$ORD"
    check "the lagging replica ($O) catches up from the new writer" wait_until 30 caught_up "$O"
    check_eq "... with the same rows" "$(rows_digest "$T/$O.db")" "$(rows_digest "$DB")"
    check "... and the new writer designates it" wait_until 20 sh -c "$(declare -f status designated); MQTT_PORT=$MQTT_PORT PREFIX_TOPIC=$PREFIX_TOPIC; [ \"\$(designated)\" = $O ]"

    # b. A frozen old writer.
    NR=$((NR + 1)); N3=r$NR
    auto_replica "$N3"
    check "$N3 follows" wait_until 30 caught_up "$N3"
    FROZEN=$WRITER_PID FROZEN_LOG=$WRITER_LOG D=$(designated)
    E1=$(epoch_now) P5=$((P0 + 5))
    producer "$P5" 600 300
    wait_until 60 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' $DB 'SELECT count(*) FROM build_logs WHERE build_id = $P5') -ge 100 ]"
    kill -STOP "$FROZEN"
    check "writer frozen: the designated replica ($D) promotes itself" wait_until 60 online_above "$E1"
    E2=$(epoch_now)
    kill -CONT "$FROZEN"
    wait_until 20 not kill -0 "$FROZEN"
    wait "$FROZEN"; rc=$?
    check "woken, the old writer exits 4 or 5 (got $rc)" test "$rc" = 4 -o "$rc" = 5
    check "... naming the newer epoch ($E2)" grep -Eq "exiting: .*(epoch $E2\b|\"epoch\":$E2\b)" "$FROZEN_LOG"
    note "$(grep 'exiting:' "$FROZEN_LOG" | tail -1 | cut -c1-300)"
    check_eq "... the new writer is still the one online" "$(epoch_now)" "$E2"
    applied_ids >"$T/applied-b"
    WRITER_PID=$(replica_pid "$D") DB=$T/$D.db WRITER_LOG=$T/$D.log
    eval "wait \$PUB_$P5"; check_eq "producer $P5: exit 0" "$?" 0
    check "producer $P5: each request once in the new file" exactly "$P5" 600
    check_eq "every applied receipt is in the new file" "$(missing_in "$DB" "$T/applied-b")" 0
    SPEC="$SPEC $P5:600"
    FOLLOW=$O; [ "$D" = "$O" ] && FOLLOW=$N3
done

# c. Repeated kills.
times=
for i in $(seq 1 "$ROUNDS"); do
    auto_replica "k$i"
    wait_until 30 caught_up "k$i" || fail "round $i: k$i follows"
    wait_until 20 has_designated || fail "round $i: a replica designated"
    D=$(designated) E=$(epoch_now) P=$((10 + i))
    producer "$P" 400 300
    wait_until 60 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' $DB 'SELECT count(*) FROM build_logs WHERE build_id = $P') -ge 100 ]"
    kill_writer
    applied_ids >"$T/applied-c"
    if ! wait_until 60 online_above "$E"; then fail "round $i: a writer online after the kill"; break; fi
    check "round $i: the designated replica ($D) promoted itself" grep -q "promoting" "$T/$D.log"
    WRITER_PID=$(replica_pid "$D") DB=$T/$D.db
    eval "wait \$PUB_$P"; check_eq "round $i: producer $P exit 0" "$?" 0
    check "round $i: each request once" exactly "$P" 400
    check_eq "round $i: every applied receipt in the new file" "$(missing_in "$DB" "$T/applied-c")" 0
    ms=$(failover_ms "$KT"); times="$times $ms"
    note "round $i: epoch $E -> $(epoch_now), failover $ms ms"
done
p50=$(printf '%s\n' $times | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
p99=$(printf '%s\n' $times | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.999); print a[i < 1 ? 1 : i] }')
note "FIGURES t_failover_auto: ttl=${TTL}s rounds=$ROUNDS failover_ms_p50=$p50 failover_ms_p99=$p99 lost=$LOST duplicated=$DUPS"
writer_stop
exit 0
