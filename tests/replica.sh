# replica.sh: sourced by tests/t_replica*.sh, right after lib.sh: starting, stopping
# and reading mosqlite-replica, and the stream of mixed writes the replica tests send.
# Not named t_*.sh, so tests/run.sh does not run it as a test.

# replica_start NAME [ARGS...]: mosqlite-replica --id NAME on $T/NAME.db; sets RPID_NAME.
replica_start() {
    _n=$1; shift
    "$BIN/mosqlite-replica" -p "$MQTT_PORT" --id "$_n" --db "$T/$_n.db" "$@" >>"$T/$_n.log" 2>&1 &
    eval "RPID_$_n=$!"
    PIDS="$PIDS $!"
}
replica_pid() { eval "echo \$RPID_$1"; }
replica_kill() { kill -9 "$(replica_pid "$1")" 2>/dev/null; wait "$(replica_pid "$1")" 2>/dev/null; }
replica_stop() { kill -TERM "$(replica_pid "$1")" 2>/dev/null; wait "$(replica_pid "$1")"; }

# replica_subscribed NAME COUNT: the broker has logged more than COUNT subscriptions of
# replica NAME to the changes (log_type subscribe, set by broker_conf).
replica_subs() { grep -c " mosqlite-replica-$1 [0-9] $PREFIX_TOPIC/changes\$" "$T/broker/mosquitto.log"; }
replica_subscribed() { [ "$(replica_subs "$1")" -gt "$2" ]; }

# The retained status of replica NAME, or nothing within 2 s.
replica_status() {
    timeout -k 2 3 mosquitto_sub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/replica/$1/status" -C 1 -W 2 2>/dev/null
}
replica_field() { replica_status "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }

# Sequence numbers: the writer's file, and a replica's file.
seq_of() { sqlite3 -cmd '.timeout 5000' "$1" "SELECT seq FROM mosqlite_seq" 2>/dev/null; }
writer_seq() { seq_of "$DB"; }
# caught_up NAME: the replica's file holds the writer's last commit.
caught_up() { _w=$(writer_seq); [ -n "$_w" ] && [ "$(seq_of "$T/$1.db")" = "$_w" ]; }

# same_dump NAME: the replica's .dump equals the writer's.
same_dump() {
    sqlite3 -cmd '.timeout 5000' "$DB" .dump >"$T/writer.dump"
    sqlite3 -cmd '.timeout 5000' "$T/$1.db" .dump >"$T/$1.dump"
    cmp -s "$T/writer.dump" "$T/$1.dump"
}
dump_diff() { diff "$T/writer.dump" "$T/$1.dump" | head -10; }

# mixed FROM TO: requests FROM..TO as JSON Lines: every request inserts a build_logs row
# with id i; every 5th also updates row i-3; every 7th deletes row i-5; every 50th
# upserts a build; every 97th is a transaction of two ops; every 100th is rejected
# (NOT NULL). Ends with the build FROM+TO*10 as a marker.
mixed() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++) {
        printf "{\"table\":\"build_logs\",\"values\":{\"id\":%d,\"build_id\":%d,\"line\":\"line %d\"}}\n", i, i % 13, i
        if (i % 5 == 0) printf "{\"table\":\"build_logs\",\"op\":\"update\",\"set\":{\"line\":\"updated %d\",\"stream\":\"stdout\"},\"where\":{\"id\":%d}}\n", i, i - 3
        if (i % 7 == 0) printf "{\"table\":\"build_logs\",\"op\":\"delete\",\"where\":{\"id\":%d}}\n", i - 5
        if (i % 50 == 0) printf "{\"table\":\"builds\",\"op\":\"upsert\",\"values\":{\"id\":%d,\"name\":\"build %d\",\"status\":\"passed\",\"exit_code\":%d}}\n", i % 400, i, i % 3
        if (i % 97 == 0) printf "{\"ops\":[{\"table\":\"builds\",\"values\":{\"id\":%d,\"name\":\"tx %d\"}},{\"table\":\"build_logs\",\"op\":\"update\",\"set\":{\"line\":\"in tx\"},\"where\":{\"id\":%d}}]}\n", 1000000 + i, i, i - 1
        if (i % 100 == 0) printf "{\"table\":\"builds\",\"values\":{\"id\":%d,\"name\":null}}\n", 2000000 + i
      }
      printf "{\"table\":\"builds\",\"values\":{\"id\":%d,\"name\":\"marker\"}}\n", a + b * 10 }'
}
# marker_in FILE FROM TO: the marker of mixed FROM TO is in FILE.
marker_in() { [ "$(sqlite3 -cmd '.timeout 5000' "$1" "SELECT count(*) FROM builds WHERE id = $(($2 + $3 * 10))" 2>/dev/null)" = 1 ]; }

# Failover on etcd (t_failover_*): replicas that may promote themselves, started with
# $EOPTS (the etcd options) and $WOPTS (the writer they would become); the writer's
# designated replica and epoch from its status; the applied ids of $T/receipts.all.
# shellcheck disable=SC2086
auto_replica() { replica_start "$1" $EOPTS -- $WOPTS; }
designated() { status | grep '"state":"online"' | sed -n 's/.*"sync_designated":\["\([^"]*\)"\].*/\1/p'; }
has_designated() { [ -n "$(designated)" ]; }
epoch_now() { status | sed -n 's/.*"state":"online".*"epoch":\([0-9]*\).*/\1/p'; }
online_above() { e=$(epoch_now); [ -n "$e" ] && [ "$e" -gt "$1" ]; }
applied_ids() { grep '"status":"applied"' "$T/receipts.all" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | sort -u; }
# missing_in FILE IDS: requests f-P-I listed in IDS that are not rows of FILE.
missing_in() {
    sqlite3 -cmd '.timeout 5000' "$1" "CREATE TEMP TABLE seen (id TEXT);" ".import $2 seen" \
        "SELECT count(*) FROM (SELECT substr(id, 3) AS r FROM temp.seen) WHERE NOT EXISTS (SELECT 1 FROM build_logs
         WHERE build_id = CAST(substr(r, 1, instr(r, '-') - 1) AS INTEGER) AND line = substr(r, instr(r, '-') + 1))"
}
