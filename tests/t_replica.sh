#!/bin/bash
# Read replicas: two mosqlite-replica processes follow the writer through a real broker
# while a stream of mixed writes (inserts, updates, deletes, upserts, transactions, and
# rejected requests) goes in. Replica r1 is there from the start, is killed (SIGKILL)
# mid-stream and restarted; r2 starts late, mid-stream, and bootstraps from a snapshot
# taken while the writes go on. At the end both files' .dump equal the writer's.
# Then the faults a replica must notice: a broker that lost its queue (killed, its
# persistence deleted) leaves a gap in r1's sequence: r1 bootstraps again and is equal
# again; a row changed behind r2's back makes the next change conflict: r2 refuses it
# and says so, and --bootstrap heals it. N rows inserted, plus the updates, deletes,
# upserts and transactions around them (default N = 100,000, about 138,000 requests; under
# an ASan build 20,000; SOAK=1: 300,000).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica.sh"

case "$BIN" in *asan*) N=20000 ;; *) N=100000 ;; esac
[ -n "${SOAK:-}" ] && N=300000
N=${REPLICA_N:-$N}
HALF=$((N / 2))

# --- refused at start, before anything is asked of the writer ------------------------
# A file that cannot be made: exit 1 at once, not a snapshot asked for every 30 s that
# could never be stored. An id that is not one topic level: exit 3.
NOPORT=$(free_port)
out=$(timeout 10 "$BIN/mosqlite-replica" -p "$NOPORT" --id r0 --db /nonexistent/dir/r.db 2>&1)
rc=$?
check_eq "a replica file in a missing directory: exit 1 ($out)" "$rc" 1
check "... saying why" grep -q "cannot create files beside /nonexistent/dir/r.db (/nonexistent/dir: No such file or directory)" <<<"$out"
for id in a/b a+ '#' '' 'a"b' "$(printf '%065d' 0)"; do
    out=$(timeout 10 "$BIN/mosqlite-replica" -p "$NOPORT" --id "$id" --db "$T/r0.db" 2>&1)
    rc=$?
    check_eq "--id '$id' refused: exit 3 ($out)" "$rc" 3
    check "... saying what an id is" grep -q "^mosqlite-replica: --id \".*\" must be one topic level: 1 to 64 letters, digits, '.', '_' or '-'\$" <<<"$out"
done
out=$(printf 'id a/b\n' >"$T/r0.conf"; timeout 10 "$BIN/mosqlite-replica" -p "$NOPORT" -c "$T/r0.conf" --db "$T/r0.db" 2>&1)
check_eq "an id from the config file refused too: exit 3 ($out)" "$?" 3
check "... naming its file:line" grep -q "^mosqlite-replica: $T/r0.conf:1: id \"a/b\" must be" <<<"$out"

broker_start
writer_start
replica_start r1
check "r1 bootstraps from the writer's snapshot and follows" \
    wait_until 15 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/replica/r1/status -C 1 -W 2 | grep -q '\"state\":\"following\"'"

# --- one change as it travels: a header line, then the changeset ---------------------------
timeout -k 2 15 mosquitto_sub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/changes" -C 1 -W 10 >"$T/one-change" 2>&1 &
CSUB=$!
sleep 0.5
pub write/builds '{"values": {"id": 424242, "name": "one change"}}'
wait "$CSUB"
check "PREFIX/changes: {seq, prev, db, schema, epoch, prev_epoch, at} then the changeset" \
    grep -qE '^\{"seq":([0-9]+),"prev":[0-9]+,"db":"[0-9a-f]{16}","schema":[0-9]+,"epoch":1,"prev_epoch":1,"at":[0-9]{13}\}$' "$T/one-change"
check "the changeset names the table" grep -aq "builds" "$T/one-change"
seq1=$(head -1 "$T/one-change" | sed -n 's/.*"seq":\([0-9]*\),"prev":\([0-9]*\).*/\1 \2/p')
check_eq "prev is seq - 1" "$(echo "$seq1" | awk '{ print $1 - $2 }')" 1

# --- the stream, in two halves; r1 killed and back in the first, r2 born in the second ---
mixed 1 "$HALF" >"$T/stream1.jsonl"
mixed $((HALF + 1)) "$N" >"$T/stream2.jsonl"
REQS=$(cat "$T"/stream*.jsonl | wc -l)
t0=$(date +%s%N)
"$BIN/mosqlite-pub" -p "$MQTT_PORT" - <"$T/stream1.jsonl" >"$T/pub1.out" 2>"$T/pub1.err" &
PUB=$!; PIDS="$PIDS $PUB"
wait_until 60 sh -c "[ \$(sqlite3 -cmd '.timeout 5000' $DB 'SELECT count(*) FROM build_logs') -ge $((HALF / 3)) ]" ||
    fail "the writer applied a third of the first half"
replica_kill r1
note "r1 killed (SIGKILL) at writer sequence $(writer_seq), its file at $(seq_of "$T/r1.db")"
sleep 2
replica_start r1
wait "$PUB"; check_eq "first half published (mosqlite-pub exit 0)" "$?" 0

"$BIN/mosqlite-pub" -p "$MQTT_PORT" - <"$T/stream2.jsonl" >"$T/pub2.out" 2>"$T/pub2.err" &
PUB=$!; PIDS="$PIDS $PUB"
sleep 1
replica_start r2
note "r2 started at writer sequence $(writer_seq)"
wait "$PUB"; check_eq "second half published (mosqlite-pub exit 0)" "$?" 0
check "the writer applied the whole stream" wait_until 120 marker_in "$DB" $((HALF + 1)) "$N"
t1=$(date +%s%N)
check "r1 caught up" wait_until 60 caught_up r1
check "r2 caught up" wait_until 60 caught_up r2
t2=$(date +%s%N)
rows=$(sql "SELECT count(*) FROM build_logs")
rej=$(sql "SELECT count(*) FROM mosqlite_rejected")
note "stream: $REQS requests ($N inserts, and updates, deletes, upserts, transactions; $rows rows left," \
     "$rej rejected) in $(( (t1 - t0) / 1000000 )) ms; both replicas caught up $(( (t2 - t1) / 1000000 )) ms after;" \
     "writer sequence $(writer_seq)"
check "rejections happened (the stream exercises them)" test "$rej" -gt 0
check "r1 (killed and restarted mid-stream): .dump equals the writer's" same_dump r1 || dump_diff r1
check "r2 (bootstrapped mid-stream): .dump equals the writer's" same_dump r2 || dump_diff r2
check "r2 came in by a snapshot" grep -q "snapshot installed" "$T/r2.log"
check_eq "r1 integrity" "$(sqlite3 "$T/r1.db" 'PRAGMA integrity_check')" ok
r1_current() { replica_status r1 | grep -q '"state":"following".*"lag_commits":0'; }
check "r1 status: following, no lag in commits" wait_until 10 r1_current
note "r1 status: $(replica_status r1)"
note "r1 snapshots installed: $(grep -c 'snapshot installed' "$T/r1.log") (1 at its start; one more if the kill lost a change it had taken but not applied: a gap, healed)"

# --- a broker that lost its queue: a gap ---------------------------------------------------
replica_stop r1
before=$(seq_of "$T/r1.db")
mixed 200001 200300 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" - >/dev/null 2>&1
wait_until 30 marker_in "$DB" 200001 200300 || fail "the writer applied the writes made while r1 was stopped"
# The changes queued for r1 die with the broker: killed, and its saved state deleted.
broker_kill
rm -f "$T/broker/mosquitto.db"
broker_start
wait_until 20 status_is online || fail "writer online again after the broker lost its state"
mixed 200301 200400 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" - >/dev/null 2>&1
wait_until 30 marker_in "$DB" 200301 200400 || fail "the writer applied the writes after the broker came back"
subs=$(replica_subs r1)
replica_start r1
wait_until 20 replica_subscribed r1 "$subs" || fail "r1 subscribed again"
# r1 has a new session: what the writer commits next is after a gap.
mixed 200401 200410 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" - >/dev/null 2>&1
check "r1 detects the gap" wait_until 20 grep -q "gap: this file is at $before" "$T/r1.log"
check "r1 heals it by a new snapshot, and catches up" wait_until 30 caught_up r1
check "r1 after the gap: .dump equals the writer's" same_dump r1 || dump_diff r1

# --- a change that conflicts --------------------------------------------------------------
wait_until 30 caught_up r2
sqlite3 -cmd '.timeout 5000' "$T/r2.db" "UPDATE build_logs SET line = 'changed behind its back' WHERE id = 3"
pub write/build_logs '{"op": "update", "set": {"line": "through the writer"}, "where": {"id": 3}}'
check "r2 refuses the change that conflicts, and says so in its log" \
    wait_until 20 grep -q 'conflicts with this file: update of a row of "build_logs"' "$T/r2.log"
r2_conflict() { replica_status r2 | grep -q '"state":"conflict".*"error":".*build_logs'; }
check "r2 status says conflict, and why" wait_until 10 r2_conflict
note "r2 status: $(replica_status r2)"
check_eq "r2 kept its own row (applied nothing)" "$(sqlite3 "$T/r2.db" 'SELECT line FROM build_logs WHERE id = 3')" \
    "changed behind its back"
replica_stop r2
replica_start r2 --bootstrap
check "r2 --bootstrap: caught up" wait_until 30 caught_up r2
check "r2 after --bootstrap: .dump equals the writer's" same_dump r2 || dump_diff r2
replica_stop r1
replica_stop r2
check "r1 offline status at SIGTERM" sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/replica/r1/status -C 1 -W 2 | grep -q offline"
