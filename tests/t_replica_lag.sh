#!/bin/bash
# A replica's lag is counted against the writer's real sequence, not only against the
# changes it has heard of. Replica r1 logs in as a user the broker lets read the
# writer's status and its own snapshot, but not PREFIX/changes: its flow of changes is
# cut while it stays connected (as a link that drops those messages, or a broker that
# lost its queue, would look). The writer commits; r1's status must say how far behind
# it is (lag_commits = the writer's sequence - its own), not "lag_commits": 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica.sh"

mkdir -p "$T/broker"
cat >"$T/broker/acl" <<'EOF'
topic readwrite #
topic read $SYS/#
pattern read mosqlite/reply/%c/#
user lagger
topic read mosqlite/status
topic write mosqlite/snapshot
topic readwrite mosqlite/replica/#
EOF
BROKER_EXTRA="acl_file $T/broker/acl"
broker_start
writer_start
replica_start r1 -u lagger
replica_start r2
check "r1 bootstraps from a snapshot" wait_until 15 caught_up r1
wait_until 15 caught_up r2 || fail "r2 follows"
for i in 1 2 3 4 5 6; do
    pub write/builds "{\"values\": {\"id\": $((500 + i)), \"name\": \"commit $i\"}}"
    wait_until 10 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' $DB 'SELECT count(*) FROM builds WHERE id = $((500 + i))') = 1 ]"
done
wseq=$(writer_seq)
r1seq=$(seq_of "$T/r1.db")
note "writer at sequence $wseq, r1 at $r1seq"
check "the writer's status carries its sequence" \
    wait_until 10 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/status -C 1 -W 2 | grep -q '\"seq\":$wseq,'"
lag_is() { [ "$(replica_field r1 lag_commits)" = "$1" ]; }
check "r1's lag is the writer's sequence minus its own ($((wseq - r1seq)) commits)" \
    wait_until 10 lag_is $((wseq - r1seq))
st=$(replica_status r1)
check "... and its writer_seq is the writer's ($st)" grep -q "\"writer_seq\":$wseq," <<<"$st"
check "r2, which gets the changes, has caught up" wait_until 10 caught_up r2
check "... and says lag 0" wait_until 10 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/replica/r2/status -C 1 -W 2 | grep -q '\"lag_commits\":0,'"
