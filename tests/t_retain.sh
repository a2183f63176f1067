#!/bin/bash
# Retention (`retain TABLE COLUMN AGE [s|ms]`) against a real broker, a real SQLite file
# and a real replica: rows older than AGE are deleted in steps of retain-batch rows, each
# its own commit, while requests go on and get their receipts; rows younger stay; old
# rows written later go in the next pass; a numeric time column in milliseconds; a column
# without an index (warned about) is pruned too; deleted rows make no events; the
# replica, following through it all, ends with the writer's rows. Bad `retain` lines
# stop the writer at start, naming their file:line, with exit 3.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica.sh"

OLD=${RETAIN_OLD:-100000}     # old log lines, pruned 50 a step: 2,000 steps
BATCH=50
SCHEMA=$T/schema
mkdir -p "$SCHEMA"
cp "$ROOT"/conf/schema/*.sql "$SCHEMA"/
cat >"$SCHEMA/050_retain_test.sql" <<'EOS'
CREATE INDEX build_logs_by_ts ON build_logs (ts);
CREATE TABLE samples (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, v TEXT);
CREATE INDEX samples_by_at ON samples (at_ms);
CREATE TABLE blobby (id INTEGER PRIMARY KEY, t BLOB);
EOS

# --- bad lines: exit 3 with file:line ------------------------------------------------
bad() {   # bad DESC LINE MESSAGE: the writer refuses LINE at start with MESSAGE
    printf '# retention\n%s\n' "$2" >"$T/bad.conf"
    out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" --db "$T/bad.db" --schema "$SCHEMA" -p "$(free_port)" 2>&1)
    rc=$?
    check "$1 refused at start ($out)" grep -qxF "mosqlite-writer: $T/bad.conf:2: $3" <<<"$out"
    check_eq "... exit 3" "$rc" 3
}
bad "an age without a unit" "retain build_logs ts 30" \
    'retain: age "30" is not a whole number of days, hours, minutes or seconds from 1s to 100 years (30d, 12h, 90m, 45s)'
check "... before the database is opened" not test -e "$T/bad.db"
bad "a line without an age" "retain build_logs ts" 'retain: want TABLE COLUMN AGE [s|ms], got "build_logs ts"'
bad "an unknown unit" "retain samples at_ms 1d us" 'retain: unit "us" is not s or ms (the unit of a numeric time column)'
bad "an unknown table" "retain nothere ts 1d" 'retain: no table "nothere" in the database'
bad "an unknown column" "retain build_logs nope 1d" 'retain: table "build_logs" has no column "nope"'
bad "a numeric column without its unit" "retain samples at_ms 1d" \
    'retain: column "at_ms" of "samples" is INTEGER, a number: give its unit after the age, s or ms (Unix time in seconds or milliseconds)'
bad "a text column with a unit" "retain build_logs ts 1d ms" \
    'retain: column "ts" of "build_logs" is TEXT, read as RFC 3339 text: give no unit'
bad "a column that is no time" "retain blobby t 1d" \
    'retain: column "t" of "blobby" has the type BLOB: a time column is TEXT (RFC 3339 in UTC) or INTEGER (Unix time, s or ms)'
bad "the writer's own table" "retain mosqlite_rejected at 1d" 'retain: "mosqlite_rejected" is internal: the writer keeps it itself'
rm -f "$T"/bad.db*

# --- the database: old rows, rows near the bound, new rows ---------------------------
broker_start
writer_start
writer_stop
NOW_MS=$(( $(date +%s%N) / 1000000 ))
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $OLD)
     INSERT INTO build_logs (build_id, line, ts)
     SELECT i % 100, 'old line ' || i, strftime('%Y-%m-%dT%H:%M:%fZ', '2020-01-01', '+' || i || ' seconds') FROM n;
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
     INSERT INTO build_logs (build_id, line, ts)
     SELECT 7, 'recent line ' || i, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 minutes') FROM n;
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
     INSERT INTO builds (id, name, status, started_at)
     SELECT i, 'old build ' || i, 'passed', strftime('%Y-%m-%dT%H:%M:%fZ', '2021-06-01', '+' || i || ' minutes') FROM n;
     INSERT INTO builds (id, name, started_at) VALUES (5001, 'recent build', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
     INSERT INTO samples (at_ms, v) SELECT $NOW_MS - 86400000 - i, 'old sample' FROM n;
     INSERT INTO samples (at_ms, v) VALUES ($NOW_MS - 60000, 'recent sample');"
check_eq "$OLD old log lines to prune" "$(sql "SELECT count(*) FROM build_logs WHERE line LIKE 'old%'")" "$OLD"

# A replica bootstraps from them, before retention starts.
writer_start
replica_start r1
check "r1 bootstraps and follows" wait_until 60 caught_up r1
writer_stop
seq0=$(writer_seq)

# --- retention while writes go on ----------------------------------------------------
cat >"$T/writer.conf" <<EOS
retain build_logs ts 10m
retain builds started_at 10m
retain samples at_ms 10m ms
retain-batch $BATCH
EOS
receipts_bg
sub_bg "$T/events" "$PREFIX_TOPIC/events/#"
old_left() { sql "SELECT count(*) FROM build_logs WHERE line LIKE 'old%'"; }
writer_start -c "$T/writer.conf"
# Writes from the start, in the background: 600 requests with receipts.
( for i in $(seq 1 600); do
      echo "{\"id\":\"w$i\",\"reply_to\":\"$REPLY/w$i\",\"values\":{\"build_id\":9,\"line\":\"written $i\"}}"
      [ $((i % 20)) = 0 ] && sleep 0.05
  done | mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l ) &
STREAM=$!
PIDS="$PIDS $STREAM"
started() { [ "$(old_left)" -lt "$OLD" ]; }
check "pruning has begun" wait_until 30 started
r=$(req write/build_logs mid '"values":{"build_id":9,"line":"while pruning"}')
left=$(old_left)
check "a request sent while pruning gets its receipt" grep -q '"status":"applied"' <<<"$r"
check "... while old rows are still there ($left of $OLD left)" test "$left" -gt 0
wait "$STREAM"
all_receipts() { [ "$(grep -c '"id":"w' "$RECEIPTS")" -ge 600 ]; }
check "every write sent during the pass got its receipt" wait_until 60 all_receipts
check_eq "... every one applied" "$(grep '"id":"w' "$RECEIPTS" | grep -c '"status":"applied"')" 600
gone() { [ "$(old_left)" = 0 ]; }
check "every old log line is deleted" wait_until 120 gone
check_eq "the lines within the age are kept" "$(sql "SELECT count(*) FROM build_logs WHERE line LIKE 'recent%'")" 200
check_eq "the lines written meanwhile are kept" "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 9")" 601
pass_line() { grep -q "retain build_logs ts: $OLD rows before .* deleted in [0-9]* steps" "$WRITER_LOG"; }
check "the pass is logged" wait_until 10 pass_line
steps=$(sed -n "s/.*retain build_logs ts: $OLD rows before .* deleted in \([0-9]*\) steps.*/\1/p" "$WRITER_LOG" | head -1)
note "$(grep -m1 "retain build_logs ts: $OLD rows" "$WRITER_LOG" | sed 's/.*retain /retain /')"
check "in steps of at most $BATCH rows ($steps steps)" test "${steps:-0}" -ge $((OLD / BATCH))
check "each step its own commit, sealed for the replicas (sequence $seq0 -> $(writer_seq))" \
    test "$(writer_seq)" -ge $((seq0 + OLD / BATCH))
builds_gone() { [ "$(sql "SELECT count(*) FROM builds WHERE name LIKE 'old build%'")" = 0 ]; }
check "old builds deleted, through a column without an index" wait_until 60 builds_gone
check_eq "... the recent build kept" "$(sql "SELECT name FROM builds")" "recent build"
check "... and the missing index warned about" grep -q 'retain builds started_at: the column has no index' "$WRITER_LOG"
samples_gone() { [ "$(sql "SELECT count(*) FROM samples")" = 1 ]; }
check "old samples deleted by a time in milliseconds" wait_until 60 samples_gone
check_eq "... the recent one kept" "$(sql "SELECT v FROM samples")" "recent sample"

# --- the bound holds: old rows written now go in the next pass -----------------------
for i in 1 2 3; do
    r=$(req write/build_logs late$i "\"values\":{\"build_id\":8,\"line\":\"late old $i\",\"ts\":\"2022-03-0${i}T10:00:00Z\"}")
done
r=$(req write/build_logs late4 '"values":{"build_id":8,"line":"late old 4, space and offset","ts":"2022-03-04 10:00:00"}')
r=$(req write/build_logs late5 '"values":{"build_id":8,"line":"not a time","ts":"yesterday"}')
check_eq "old rows written meanwhile are in" "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 8")" 5
late_gone() { [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 8")" = 1 ]; }
check "... and deleted in the next pass" wait_until 30 late_gone
check_eq "... but a row whose time is not a time is kept" "$(sql "SELECT line FROM build_logs WHERE build_id = 8")" "not a time"

# --- no events; the replica follows ----------------------------------------------------
check "no event for a deleted row" not grep -q '"op":"delete"' "$T/events"
check "r1 caught up" wait_until 60 caught_up r1
check "r1 has the writer's rows (same .dump)" same_dump r1 || dump_diff r1
writer_stop
check_eq "writer exits 0" "$?" 0
exit "$NFAIL"
