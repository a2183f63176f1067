#!/bin/bash
# One writer per database file, one writer per client id. A second writer on the same
# file (same client id, or another) refuses to start at once, naming the database and
# the first writer's pid, and costs the first nothing (no offline status, no request
# applied twice). A writer on another file that takes the first one's client id wins:
# the first stops, says why, exits non-zero and does not publish offline over the
# winner's status.
. "$(dirname "$0")/lib.sh"
broker_start
sub_bg "$T/status.all" "$PREFIX_TOPIC/status"
writer_start
FIRST=$WRITER_PID

# exit_of PID SECONDS: rc = its exit status once it has exited, or "running" (then killed).
exit_of() {
    if wait_until "$2" bash -c "! kill -0 $1"; then wait "$1"; rc=$?
    else kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; rc=running; fi
}
failed_exit() { [ "$rc" != 0 ] && [ "$rc" != running ]; }

# --- the same file, the same client id --------------------------------------------------
"$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "$ROOT/conf/schema" >"$T/second.log" 2>&1 &
SECOND=$!
PIDS="$PIDS $SECOND"
exit_of "$SECOND" 5
check "a second writer on the same file exits at once, non-zero (exit $rc)" failed_exit
check "it names the database and the first writer's pid ($(tail -1 "$T/second.log"))" \
    grep -q "database $DB is in use by another mosqlite-writer (pid $FIRST" "$T/second.log"

# --- the same file, another client id: each request still applied once ---------------------
"$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "$ROOT/conf/schema" --client-id other \
    >"$T/third.log" 2>&1 &
THIRD=$!
PIDS="$PIDS $THIRD"
exit_of "$THIRD" 5
check "a second writer with another client id on the same file refuses too (exit $rc)" \
    failed_exit
for i in 1 2 3; do pub write/build_logs "{\"values\":{\"build_id\":1,\"line\":\"once $i\"}}"; done
wait_until 10 rows_are build_logs 3
sleep 0.5
check_eq "each id-less request applied once" "$(sql 'SELECT count(*) FROM build_logs')" 3
check "the first writer still runs" kill -0 "$FIRST"
check "no offline status so far" bash -c "! grep -q offline '$T/status.all'"

# --- another file, the same client id: the newcomer wins, the first stops -----------------------
"$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/other.db" --schema "$ROOT/conf/schema" >"$T/rival.log" 2>&1 &
RIVAL=$!
PIDS="$PIDS $RIVAL"
exit_of "$FIRST" 10
check "the writer whose client id was taken stops, non-zero (exit $rc)" failed_exit
check "it says why" grep -q "taken over by another client with client id mosqlite-writer" "$WRITER_LOG"
check "the rival still runs" kill -0 "$RIVAL"
sleep 1
check "the retained status is the rival's: online" status_is online
check "the loser published no offline status" bash -c "! grep -q '\"state\":\"offline\",\"version\"' '$T/status.all'"
pub write/build_logs '{"values":{"build_id":2,"line":"to the rival"}}'
check "the rival applies requests" wait_until 10 bash -c \
    "[ \"\$(sqlite3 '$T/other.db' 'SELECT count(*) FROM build_logs')\" = 1 ]"
reconnects=$(grep -c "request connection up" "$T/rival.log")
check_eq "the rival was not knocked off (request connection up once)" "$reconnects" 1
kill -TERM "$RIVAL"; wait "$RIVAL"

# --- a file from before the request hash: its ids still count as duplicates ---------------
sqlite3 "$T/old.db" "CREATE TABLE mosqlite_applied (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
                     INSERT INTO mosqlite_applied VALUES ('old-1', strftime('%s', 'now'));"
DB=$T/old.db writer_start
sub_bg "$T/old.receipts" "receipts/old"
pub write/build_logs '{"id":"old-1","reply_to":"receipts/old","values":{"build_id":3,"line":"again"}}'
check "an id applied before the upgrade: duplicate" wait_until 10 grep -q '"id":"old-1","status":"duplicate"' "$T/old.receipts"
check_eq "mosqlite_applied got its hash column" \
    "$(sqlite3 "$T/old.db" "SELECT count(*) FROM pragma_table_info('mosqlite_applied') WHERE name = 'hash'")" 1
writer_stop

# --- a writable table whose name cannot be a topic level is refused at start ------------------
mkdir -p "$T/badname"
printf 'CREATE TABLE "a#b" (x);\n' >"$T/badname/001_t.sql"
out=$("$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/badname.db" --schema "$T/badname" 2>&1)
rc=$?
check "a table named a#b: the writer refuses to start (exit $rc)" [ "$rc" = 1 ]
check "it says why" grep -q 'table "a#b": its name cannot be an MQTT topic level (it has "#")' <<<"$out"
printf 'tables builds\n' >"$T/badname.conf"
printf 'CREATE TABLE builds (x);\n' >"$T/badname/002_t.sql"
"$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/badname.db" --schema "$T/badname" -c "$T/badname.conf" \
    --client-id badname >"$T/badname.log" 2>&1 &
BN=$!
PIDS="$PIDS $BN"
check "left out of tables, it is no obstacle" wait_until 10 grep -q "request connection up" "$T/badname.log"
kill -TERM "$BN"; wait "$BN"
