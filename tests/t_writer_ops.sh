#!/bin/bash
# The writer's request handling against a real broker and a real SQLite file: each op,
# each value type, transactions, every class of rejection with its exact text, ids and
# duplicates, receipts only after COMMIT, events carrying rows as stored.
. "$(dirname "$0")/lib.sh"

# --- command line and config ---------------------------------------------------
"$BIN/mosqlite-writer" --version | grep -qx '0\.[0-9.]*' ; check "--version prints the version" [ $? = 0 ]
libmosq=$(dpkg-query -W -f='${Version}' libmosquitto1 | sed 's/-.*//')
"$BIN/mosqlite-writer" --version | grep -qx "libmosquitto $libmosq, SQLite [0-9.]*"
check "--version names libmosquitto ($libmosq) and SQLite" [ $? = 0 ]
"$BIN/mosqlite-writer" --help | grep -q -- '--batch-max' ; check "--help lists the options" [ $? = 0 ]
out=$("$BIN/mosqlite-writer" --port 70000 2>&1); rc=$?
check_eq "bad port: exit 3, as mosqlite-pub" "$rc" 3
check_eq "bad port: one-line reason" "$out" 'mosqlite-writer: port: "70000" is not a whole number from 1 to 65535'
printf 'port 1883\n# comment\nbatch-max 12x\n' > "$T/bad.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" 2>&1)
check_eq "config error names file:line" "$out" "mosqlite-writer: $T/bad.conf:3: batch-max: \"12x\" is not a whole number from 1 to 1000000"
printf 'colour blue\n' > "$T/bad2.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad2.conf" 2>&1)
check_eq "unknown config key" "$out" "mosqlite-writer: $T/bad2.conf:1: unknown key \"colour\""
# Values checked after reading, and tables checked against the database: file:line too.
printf '# x\nrequest-protocol 7\n' > "$T/bad3.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad3.conf" 2>&1)
check_eq "a bad request-protocol names file:line" "$out" "mosqlite-writer: $T/bad3.conf:2: request-protocol: \"7\" is not 3.1.1 or 5"
printf 'synchronous maybe\n' > "$T/bad4.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad4.conf" 2>&1)
check_eq "a bad synchronous names file:line" "$out" "mosqlite-writer: $T/bad4.conf:1: synchronous: \"maybe\" is not FULL, NORMAL, OFF or EXTRA"
printf 'port 1\ntables builds nope\n' > "$T/bad5.conf"
out=$("$BIN/mosqlite-writer" --db "$T/cfg.db" --schema "$ROOT/conf/schema" -c "$T/bad5.conf" 2>&1)
check "an unknown table in tables names file:line" grep -q "error: $T/bad5.conf:2: tables: no table \"nope\" in the database$" <<<"$out"

# --- start ---------------------------------------------------------------------
test_schema
# Tables whose rows change after RETURNING has seen them: AFTER triggers, a STORED
# generated column, a default; one WITHOUT ROWID.
cat >"$SCHEMA/950_event_tables.sql" <<'SQL'
CREATE TABLE trig (id INTEGER PRIMARY KEY, x REAL, stamp TEXT, dflt TEXT DEFAULT 'd',
                   g INTEGER GENERATED ALWAYS AS (id * 10) STORED);
CREATE TRIGGER trig_ai AFTER INSERT ON trig BEGIN
    UPDATE trig SET stamp = 'set by trigger ' || NEW.id WHERE id = NEW.id;
END;
CREATE TABLE trig_wr (k TEXT PRIMARY KEY, v TEXT, stamp TEXT) WITHOUT ROWID;
CREATE TRIGGER trig_wr_ai AFTER INSERT ON trig_wr BEGIN
    UPDATE trig_wr SET stamp = 'inserted ' || NEW.v WHERE k = NEW.k;
END;
CREATE TRIGGER trig_wr_au AFTER UPDATE OF v ON trig_wr BEGIN
    UPDATE trig_wr SET stamp = 'updated ' || NEW.v WHERE k = NEW.k;
END;
-- An insert whose trigger inserts elsewhere; inserts that write no row.
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
INSERT INTO audit (id, what) VALUES (500, 'seed');
CREATE TABLE logged (id INTEGER PRIMARY KEY, v TEXT);
CREATE TRIGGER logged_ai AFTER INSERT ON logged BEGIN
    INSERT INTO audit (what) VALUES ('logged ' || NEW.v);
END;
CREATE TABLE ign (k TEXT UNIQUE ON CONFLICT IGNORE, v INTEGER);
CREATE TABLE skip (id INTEGER PRIMARY KEY, v INTEGER);
CREATE TRIGGER skip_bi BEFORE INSERT ON skip WHEN NEW.v < 0 BEGIN SELECT RAISE(IGNORE); END;
SQL
broker_start
receipts_bg
sub_bg "$T/events" "$PREFIX_TOPIC/events/#"
sub_bg "$T/rejected" "$PREFIX_TOPIC/rejected"
writer_start
check_eq "migrations tracked by user_version" "$(sql 'PRAGMA user_version')" 950
check_eq "WAL mode" "$(sql 'PRAGMA journal_mode')" wal
# The broker names its version on $SYS/broker/version; the writer's status shows it.
broker_v=$(mosquitto -h | sed -n 's/^mosquitto version //p' | head -1)
wait_until 10 bash -c "timeout -k 2 6 mosquitto_sub -p $MQTT_PORT -t '$PREFIX_TOPIC/status' -C 1 -W 2 | grep -q '\"broker\":\"$broker_v\"'"
check "status names the broker's version ($broker_v)" [ $? = 0 ]
check "status: request session in MQTT 3.1.1 (the default)" grep -q '"request_protocol":"3.1.1"' <<<"$(status)"
check "status names libmosquitto" grep -q "\"libmosquitto\":\"$libmosq\"" <<<"$(status)"

# --- each op ---------------------------------------------------------------------
r=$(req write/build_logs i1 '"values":{"build_id":7,"line":"compiling"}')
check "insert: applied with changes and rowid" grep -q '"status":"applied","changes":1,"rowid":1' <<<"$r"
check_eq "insert: row stored" "$(sql "SELECT build_id||'|'||line FROM build_logs WHERE id=1")" "7|compiling"
r=$(req write i2 '"op":"insert","table":"builds","values":{"id":7,"name":"linux #7"}')
check "insert on PREFIX/write with table" grep -q '"status":"applied"' <<<"$r"
r=$(req write/builds u1 '"op":"upsert","values":{"id":7,"name":"linux #7b","status":"passed"}')
check "upsert on primary key updates" grep -q '"status":"applied","changes":1,"rowid":7' <<<"$r"
check_eq "upsert: row updated" "$(sql "SELECT name||'|'||status FROM builds WHERE id=7")" "linux #7b|passed"
r=$(req write/uniq u2 '"op":"upsert","values":{"k":"a","v":1},"on_conflict":["k"]') ; r=$(req write/uniq u3 '"op":"upsert","values":{"k":"a","v":2},"on_conflict":["k"]')
check_eq "upsert with on_conflict" "$(sql "SELECT count(*)||'|'||max(v) FROM uniq")" "1|2"
r=$(req write/builds up1 '"op":"update","set":{"status":"failed"},"where":{"id":7}')
check "update applied" grep -q '"status":"applied","changes":1' <<<"$r"
check_eq "update: row changed" "$(sql "SELECT status FROM builds WHERE id=7")" failed
r=$(req write/builds up2 '"op":"update","set":{"status":"failed"},"where":{"id":999}')
check "update matching nothing: applied, changes 0" grep -q '"status":"applied","changes":0' <<<"$r"
r=$(req write/nokey n1 '"values":{"x":"1","y":null}'); r=$(req write/nokey n2 '"op":"delete","where":{"y":null}')
check "delete where null matches NULL" grep -q '"changes":1' <<<"$r"
r=$(req write/build_logs d1 '"op":"delete","where":{"id":1}')
check "delete applied" grep -q '"status":"applied","changes":1' <<<"$r"
check_eq "delete: row gone" "$(sql "SELECT count(*) FROM build_logs WHERE id=1")" 0

# --- value types -----------------------------------------------------------------
r=$(req write/kinds v1 '"values":{"id":1,"i":42,"r":2.5,"t":"héllo \"q\"","b":{"$base64":"AAEC/w=="},"a":{"k":[1,true,null]}}')
check "all types applied" grep -q '"status":"applied"' <<<"$r"
check_eq "types stored" "$(sql "SELECT typeof(i),i,typeof(r),r,t,hex(b),a FROM kinds WHERE id=1")" 'integer|42|real|2.5|héllo "q"|000102FF|{"k":[1,true,null]}'
r=$(req write/kinds v2 '"values":{"id":2,"i":true,"t":null,"a":[1,2]}')
check_eq "true -> 1, null -> NULL, array -> JSON text" "$(sql "SELECT i, quote(t), a FROM kinds WHERE id=2")" '1|NULL|[1,2]'
r=$(req write/kinds v3 '"values":{"id":3,"i":"9223372036854775807"}')
check_eq "integer beyond 2^53 sent as a string is exact" "$(sql "SELECT typeof(i)||' '||i FROM kinds WHERE id=3")" "integer 9223372036854775807"
r=$(req write/kinds v4 '"values":{"id":4,"i":-9007199254740992}')
check_eq "integer at -2^53 exact" "$(sql "SELECT i FROM kinds WHERE id=4")" "-9007199254740992"
r=$(req write/kinds v5 '"values":{"id":5,"i":false,"r":1e300}')
check_eq "false -> 0, big real" "$(sql "SELECT i, r FROM kinds WHERE id=5")" "0|1.0e+300"

# --- rejections, each with its exact text ----------------------------------------
reject() {  # reject DESC TOPIC ID BODY EXPECTED-ERROR
    r=$(req "$2" "$3" "$4")
    check_eq "rejected: $1" "$(sed -n 's/.*"status":"rejected","error":"\(.*\)"}$/\1/p' <<<"$r")" "$5"
}
reject "unknown column" write/build_logs e1 '"values":{"build_id":7,"lne":"x"}' 'unknown column \"lne\" in table \"build_logs\"'
reject "unknown table" write/nope e2 '"values":{"a":1}' 'unknown table \"nope\"'
reject "internal table" write/mosqlite_applied e3 '"values":{"id":"x","at":1}' 'table \"mosqlite_applied\" is not writable'
reject "sqlite table" write/sqlite_schema e4 '"values":{"name":"x"}' 'table \"sqlite_schema\" is not writable'
# A rejection for the topic or for reply_to still names the id, and goes to reply_to.
for t in write/nokey/extra write/ write//nokey write/nokey/; do
    n=$((n6 = ${n6:-0} + 1))
    reject "on $t, with its id" "$t" "e6-$n" '"values":{"x":"a"}' \
        "topic \\\"$PREFIX_TOPIC/$t\\\" is not $PREFIX_TOPIC/write or $PREFIX_TOPIC/write/TABLE"
    check "PREFIX/rejected names the id of the request on $t" wait_until 5 grep -q "\"id\":\"e6-$n\"" "$T/rejected"
done
pub write/nokey '{"id":"e6-rt","reply_to":"a/#","values":{"x":"a"}}'
check "a rejection for a bad reply_to names the id" wait_until 5 grep -q '"id":"e6-rt","error":"\\"reply_to\\" contains the wildcard' "$T/rejected"
reject "a bare row gets a hint" write/build_logs e6-bare '"build_id":7,"line":"x"' \
    'unknown field \"build_id\": rows go under \"values\", e.g. {\"values\": {...}}'
reject "table differs from topic" write/builds e5 '"table":"build_logs","values":{"line":"x"}' '\"table\" is \"build_logs\" but the topic names table \"builds\"'
reject "no table on PREFIX/write" write e6 '"values":{"line":"x"}' '\"table\" is required for a request on the write topic without a table'
reject "unknown op" write/builds e7 '"op":"merge","values":{"name":"x"}' 'unknown op \"merge\" (use insert, upsert, update or delete)'
reject "empty where" write/builds e8 '"op":"delete","where":{}' 'delete needs a non-empty \"where\": a request never deletes a whole table'
reject "update without where" write/builds e9 '"op":"update","set":{"name":"x"}' 'update needs a non-empty \"where\": a request never updates a whole table'
reject "values on update" write/builds e10 '"op":"update","values":{"name":"x"},"where":{"id":1}' 'update takes \"set\", not \"values\"'
reject "NOT NULL" write/build_logs e11 '"values":{"build_id":7}' 'NOT NULL constraint failed: build_logs.line'
reject "UNIQUE" write/uniq e12 '"values":{"k":"a","v":3}' 'UNIQUE constraint failed: uniq.k'
reject "CHECK" write/builds e13 '"values":{"name":"x","status":"weird"}' "CHECK constraint failed: status IN ('queued', 'running', 'passed', 'failed', 'cancelled', 'lost')"
reject "FOREIGN KEY" write/child e14 '"values":{"parent_id":99}' 'FOREIGN KEY constraint failed'
reject "STRICT type" write/kinds e15 '"values":{"i":"abc"}' 'cannot store TEXT value in INTEGER column kinds.i'
reject "generated column" write/kinds e16 '"values":{"g":1}' 'column \"g\" in table \"kinds\" is generated and cannot be written'
reject "integer beyond 2^53" write/kinds e17 '"values":{"i":18446744073709551616}' 'integer 18446744073709551616 at byte 57 is beyond +-2^53 and would lose precision; send it as a string'
reject "bad base64" write/kinds e18 '"values":{"b":{"$base64":"!!"}}' 'column \"b\": $base64 is not valid base64'
reject "duplicate key" write/builds e19 '"values":{"name":"a","name":"b"}' 'duplicate key \"name\" in values'
reject "column twice (case)" write/builds e20 '"values":{"name":"a","NAME":"b"}' 'column \"name\" is given twice in \"values\"'
reject "unknown field" write/builds e21 '"values":{"name":"a"},"colour":1' 'unknown field \"colour\"'
reject "upsert without key" write/nokey e22 '"op":"upsert","values":{"x":"1"}' 'upsert into \"nokey\" needs \"on_conflict\": the table has no declared primary key'
reject "on_conflict matching no index" write/nokey e23 '"op":"upsert","values":{"x":"1"},"on_conflict":["x"]' 'ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint'
reject "values not an object" write/builds e24 '"values":[1,2]' '\"values\" must be an object of column: value'
reject "transaction names failing op" write e25 '"ops":[{"table":"builds","values":{"id":50,"name":"ok"}},{"table":"build_logs","values":{"build_id":50}}]' 'ops[1]: NOT NULL constraint failed: build_logs.line'
check_eq "transaction: all or nothing" "$(sql "SELECT count(*) FROM builds WHERE id=50")" 0
reject "empty ops" write e26 '"ops":[]' '\"ops\" must be a non-empty array of operations'

# Rejections without a readable envelope still reach PREFIX/rejected and the table.
pub write/builds '{"values": {"name": "x"'
pub write/builds "$(printf '{"values":{"name":"\xff"}}')"
printf '{"values":{"name":"%0300000d"}}' 0 > "$T/big.json"
mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/builds" -f "$T/big.json"
deep=$(printf '%.0s[' $(seq 40))
pub write/builds "{\"values\":{\"name\":$deep}}"
wait_until 10 bash -c "[ \$(grep -c . '$T/rejected') -ge 30 ]"
check "invalid JSON rejected with position" grep -q '"error":"invalid JSON at byte 22"' "$T/rejected"
check "invalid UTF-8 rejected" grep -q '"error":"payload is not valid UTF-8 (byte 19)"' "$T/rejected"
check "oversized payload rejected" grep -q '"error":"payload too large: 300022 bytes (limit 262144)"' "$T/rejected"
check "deep nesting rejected" grep -q '"error":"nesting too deep (limit 32)"' "$T/rejected"
check "rejection carries the first 1 KiB of payload" grep -q '"id":"e1","error":"unknown column \\"lne\\" in table \\"build_logs\\"","payload":"{\\"id\\":\\"e1\\"' "$T/rejected"
check_eq "rejections kept in mosqlite_rejected" "$(sql "SELECT count(*) FROM mosqlite_rejected")" "$(grep -c . "$T/rejected")"
check "rejected row has topic, id, error, payload" [ "$(sql "SELECT topic||'|'||req_id||'|'||error FROM mosqlite_rejected WHERE req_id='e11'")" = "$PREFIX_TOPIC/write/build_logs|e11|NOT NULL constraint failed: build_logs.line" ]

# --- ids ------------------------------------------------------------------------
before=$(sql "SELECT count(*) FROM build_logs")
r1=$(req write/build_logs dup1 '"values":{"build_id":8,"line":"once"}')
pub write/build_logs '{"id":"dup1","reply_to":"'"$REPLY"'/dup1b","values":{"build_id":8,"line":"once"}}'
wait_until 10 bash -c "[ \$(grep -c '\"id\":\"dup1\"' '$RECEIPTS') -ge 2 ]"
check "second request with the same id: duplicate" grep -q '"id":"dup1","status":"duplicate"' "$RECEIPTS"
check_eq "duplicate applied once" "$(sql "SELECT count(*) FROM build_logs WHERE line='once'")" 1
check_eq "id kept in mosqlite_applied" "$(sql "SELECT count(*) FROM mosqlite_applied WHERE id='dup1'")" 1
# Retained requests. Over MQTT 3.1.1 (the default request session) the broker clears
# the retain flag when it delivers a message live, so the writer cannot tell: a retained
# request published while it is connected is applied, once (the id), and stays retained
# in the broker until cleared.
pub write/build_logs '{"id":"ret1","reply_to":"'"$REPLY"'/ret1","values":{"build_id":11,"line":"retained"}}' -r
r=$(receipt ret1)
check "MQTT 3.1.1: a live retained request is applied ($r)" grep -q '"id":"ret1","status":"applied"' <<<"$r"
pub write/build_logs '' -r      # cleared, as docs/PROTOCOL.md says to
# Over MQTT 5 the writer sees the flag (retain as published): rejected with its reason,
# never applied, not even after a restart. A second writer on a file and prefix of its own.
RDB=$T/ret.db
ret_writer() {
    "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$RDB" --schema "$SCHEMA" --prefix ret \
        --client-id ret-writer --request-protocol 5 >>"$T/ret-writer.log" 2>&1 &
    RET_PID=$!
    PIDS="$PIDS $RET_PID"
    wait_until 15 bash -c "timeout -k 2 6 mosquitto_sub -p $MQTT_PORT -t ret/status -C 1 -W 2 | grep -q online"
}
ret_writer
mosquitto_pub -p "$MQTT_PORT" -q 2 -t ret/write/build_logs -r \
    -m '{"id":"ret2","reply_to":"'"$REPLY"'/ret2","values":{"build_id":11,"line":"retained"}}'
r=$(receipt ret2)
check "MQTT 5: a retained request is rejected with its reason ($r)" grep -q '"id":"ret2","status":"rejected","error":"a retained request is not applied: publish requests without the retain flag, and clear this one (an empty retained message on ret/write/build_logs)"' <<<"$r"
rsql() { sqlite3 -cmd '.timeout 5000' "$RDB" "$@"; }
check_eq "MQTT 5: the retained request applied nothing" "$(rsql "SELECT count(*) FROM build_logs WHERE line='retained'")" 0
kill -TERM "$RET_PID"; wait "$RET_PID"
ret_writer
mosquitto_pub -p "$MQTT_PORT" -q 2 -t ret/write/build_logs -m '{"values":{"build_id":11,"line":"after the restart"}}'
wait_until 10 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$RDB' \"SELECT count(*) FROM build_logs WHERE line='after the restart'\")\" = 1 ]"
check_eq "MQTT 5: after a restart the retained request is still not applied" "$(rsql "SELECT count(*) FROM build_logs WHERE line='retained'")" 0
kill -TERM "$RET_PID"; wait "$RET_PID"
mosquitto_pub -p "$MQTT_PORT" -q 2 -t ret/write/build_logs -r -n

# An id reused by a different request is rejected, not a silent duplicate.
pub write/build_logs '{"id":"dup1","reply_to":"'"$REPLY"'/dup1","values":{"build_id":8,"line":"squatted"}}'
pub write/builds '{"id":"dup1","reply_to":"'"$REPLY"'/dup1","values":{"name":"squatted"}}'
wait_until 10 bash -c "[ \$(grep -c 'was already used' '$RECEIPTS') -ge 2 ]"
check_eq "an id reused by other requests: rejected" \
    "$(grep -c '"id":"dup1","status":"rejected","error":"id \\"dup1\\" was already used by a different request"' "$RECEIPTS")" 2
check_eq "the squatting requests applied nothing" \
    "$(sql "SELECT (SELECT count(*) FROM build_logs WHERE line='squatted') + (SELECT count(*) FROM builds WHERE name='squatted')")" 0
pub write/build_logs '{"reply_to":"'"$REPLY"'/dup1c","values": {"build_id":8, "line":"once"},"id":"dup1"}'
check "the same request again (another reply_to, order, spacing): duplicate" wait_until 10 \
    bash -c "[ \$(grep -c '\"id\":\"dup1\",\"status\":\"duplicate\"' '$RECEIPTS') -ge 2 ]"
pub write/builds '{"id":"'"$(printf 'x%.0s' $(seq 130))"'","reply_to":"'"$REPLY"'/badid","values":{"name":"a"}}'
wait_until 5 grep -q '"id":null,"status":"rejected","error":"\\"id\\" must be a string of 1 to 128 printable ASCII characters"' "$RECEIPTS"
check "bad id: rejected, receipt still sent" [ $? = 0 ]

# --- events carry rows as stored --------------------------------------------------
r=$(req write/build_logs ev1 '"values":{"build_id":9,"line":"event me"}')
wait_until 5 grep -q '"line":"event me"' "$T/events"
ev=$(grep '"line":"event me"' "$T/events")
stored=$(sql "SELECT json_object('id',id,'build_id',build_id,'line',line,'ts',ts,'stream',stream,'attempt',attempt) FROM build_logs WHERE line='event me'")
check_eq "insert event = row as stored (defaults, generated id)" "$ev" "{\"table\":\"build_logs\",\"op\":\"insert\",\"rows\":[$stored]}"
r=$(req write/build_logs ev2 '"op":"delete","where":{"line":"event me"}')
wait_until 5 grep -q '"op":"delete".*event me' "$T/events"
check_eq "delete event carries the row before deletion" "$(grep '"op":"delete".*event me' "$T/events" | head -1)" "{\"table\":\"build_logs\",\"op\":\"delete\",\"rows\":[$stored]}"
check "no event for rejected requests" bash -c "! grep -q '\"build_id\":50' '$T/events'"
# What AFTER triggers set is in the event, as in the file (RETURNING alone showed null).
r=$(req write/trig ev3 '"values":{"x":2.5}')
wait_until 5 grep -q '"table":"trig","op":"insert"' "$T/events"
stored=$(sql "SELECT json_object('id',id,'x',x,'stamp',stamp,'dflt',dflt,'g',g) FROM trig")
check_eq "insert event: what an AFTER trigger set, the default, the stored generated column" \
    "$(grep '"table":"trig","op":"insert"' "$T/events")" "{\"table\":\"trig\",\"op\":\"insert\",\"rows\":[$stored]}"
r=$(req write/trig_wr ev4 '"values":{"k":"a","v":"1"}')
r=$(req write/trig_wr ev5 '"op":"update","set":{"v":"2"},"where":{"k":"a"}')
wait_until 5 grep -q '"table":"trig_wr","op":"update"' "$T/events"
check_eq "WITHOUT ROWID insert event: the trigger's value" \
    "$(grep '"table":"trig_wr","op":"insert"' "$T/events")" '{"table":"trig_wr","op":"insert","rows":[{"k":"a","v":"1","stamp":"inserted 1"}]}'
check_eq "WITHOUT ROWID update event: the row after the trigger" \
    "$(grep '"table":"trig_wr","op":"update"' "$T/events")" '{"table":"trig_wr","op":"update","rows":[{"k":"a","v":"2","stamp":"updated 2"}]}'
r=$(req write/trig_wr ev6 '"op":"delete","where":{"k":"a"}')
wait_until 5 grep -q '"table":"trig_wr","op":"delete"' "$T/events"
check_eq "WITHOUT ROWID delete event: the row before deletion" \
    "$(grep '"table":"trig_wr","op":"delete"' "$T/events")" '{"table":"trig_wr","op":"delete","rows":[{"k":"a","v":"2","stamp":"updated 2"}]}'
# An insert's rowid and event are its own row's, not the row its trigger inserted; an
# insert that writes no row (ON CONFLICT IGNORE, RAISE(IGNORE)) has no rowid and no event.
r=$(req write/logged lg1 '"values":{"v":"x"}')
check "insert with a trigger inserting elsewhere: the receipt's rowid is the row's" \
    grep -q '"status":"applied","changes":1,"rowid":1}' <<<"$r"
wait_until 5 grep -q '"table":"logged"' "$T/events"
check_eq "insert with a trigger inserting elsewhere: the event is the row's" \
    "$(grep '"table":"logged"' "$T/events")" '{"table":"logged","op":"insert","rows":[{"id":1,"v":"x"}]}'
r=$(req write/ign ig1 '"values":{"k":"a","v":1}')
r=$(req write/ign ig2 '"values":{"k":"a","v":2}')
check_eq "insert ignored by ON CONFLICT IGNORE: no changes, no rowid" "$r" '{"id":"ig2","status":"applied","changes":0}'
r=$(req write/skip sk1 '"values":{"v":-1}')
check_eq "insert ignored by RAISE(IGNORE): no changes, no rowid" "$r" '{"id":"sk1","status":"applied","changes":0}'
r=$(req write/skip sk2 '"values":{"v":5}')
wait_until 5 grep -q '"table":"skip"' "$T/events"
check_eq "inserts that wrote no row have no event" \
    "$(grep -E '"table":"(ign|skip)"' "$T/events" | tr '\n' ' ')" \
    '{"table":"ign","op":"insert","rows":[{"k":"a","v":1}]} {"table":"skip","op":"insert","rows":[{"id":1,"v":5}]} '
# One op changing more than max-event-rows rows: 100 rows and truncated.
ops=$(for i in $(seq 1 130); do printf '%s{"table":"build_logs","values":{"build_id":77,"line":"l%d"}}' "$([ $i = 1 ] || echo ,)" $i; done)
r=$(req write bulk '"ops":['"$ops"']')
r=$(req write/build_logs bulkdel '"op":"delete","where":{"build_id":77}')
wait_until 5 grep -q '"op":"delete","rows":\[{"id":[0-9]*,"build_id":77' "$T/events"
del=$(grep '"op":"delete","rows":\[{"id":[0-9]*,"build_id":77' "$T/events")
check_eq "big delete event: 100 rows" "$(grep -o '"build_id":77' <<<"$del" | wc -l)" 100
check "big delete event: truncated" grep -q '"truncated":true}$' <<<"$del"

# --- receipts only after COMMIT ---------------------------------------------------
# For 300 requests in flight at once: when each receipt arrives, its row must already
# be visible to an outside reader of the file.
sub_bg "$T/rc" "$REPLY/commit/#"
# (tail follows only while this script lives: killing the subshell would not stop it.)
( tail -n +1 -f --pid=$$ "$T/rc" | while read -r line; do
    id=$(sed -n 's/.*"id":"c\([0-9]*\)".*/\1/p' <<<"$line")
    [ -n "$id" ] || continue
    n=$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT count(*) FROM build_logs WHERE line='commit $id'")
    echo "$id $n"
  done > "$T/seen" ) &
PIDS="$PIDS $!"
for i in $(seq 1 300); do echo "{\"id\":\"c$i\",\"reply_to\":\"$REPLY/commit/$i\",\"values\":{\"build_id\":5,\"line\":\"commit $i\"}}"; done |
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l
wait_until 90 bash -c "[ \$(grep -c . '$T/seen') -ge 300 ]"
check_eq "every receipt seen" "$(grep -c . "$T/seen")" 300
check_eq "no receipt before its row was committed" "$(awk '$2 != 1' "$T/seen" | wc -l)" 0

# --- the status ------------------------------------------------------------------
wait_until 5 bash -c "status | grep -q '\"pending\":0'"
st=$(status)
check "status has every field" grep -qE '^\{"state":"online","version":"[0-9.]+","since":"[0-9T:-]+Z","applied":[0-9]+,"rejected":[0-9]+,"duplicates":[1-9][0-9]*,"scheduled":[0-9]+,"cancelled":[0-9]+,"commits":[0-9]+,"seq":[1-9][0-9]*,"epoch":1,"last_commit_ms":[0-9.]+,"last_batch":[0-9]+,"max_batch":[0-9]+,"pending":0,"error":null,"paused":false,"broker":"[0-9.]+","libmosquitto":"[0-9.]+","sqlite":"[0-9.]+","request_protocol":"(5|3\.1\.1)","jobs":\{.*\},"job_waiting":[0-9]+,"job_leases":[0-9]+,"workers":[0-9]+\}$' <<<"$st"
check_eq "status counts rejections" "$(sed 's/.*"rejected":\([0-9]*\).*/\1/' <<<"$st")" "$(sql "SELECT count(*) FROM mosqlite_rejected")"

# --- named queries ----------------------------------------------------------------
writer_stop
check_eq "SIGTERM: exit 0" "$?" 0
check "SIGTERM: status offline" status_is offline
WRITER_ARGS="-c $ROOT/conf/mosqlite.conf" writer_start
r=$(req write/build_logs ret3 '"values":{"build_id":11,"line":"after the restart"}')
check_eq "MQTT 3.1.1: after a restart the cleared retained request is not applied again" "$(sql "SELECT count(*) FROM build_logs WHERE line='retained'")" 1
check_eq "and not rejected again (not delivered again)" "$(grep -c '"id":"ret1"' "$RECEIPTS")" 1
mosquitto_pub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write/build_logs" -r -n
sub_bg "$T/q" "q/1"
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"build_log","params":{"build_id":8,"attempt":0,"after":0,"until":1000000,"limit":100,"bytes":8000},"reply_to":"q/1"}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"drop_all","reply_to":"q/1"}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"build_log","params":{"build_id":8},"reply_to":"q/1"}'
wait_until 5 bash -c "[ \$(grep -c . '$T/q') -ge 3 ]"
check "query answers rows" grep -q '^{"query":"build_log","rows":\[{"id":[0-9]*,"line":"once","ts":"[^"]*","stream":null}.*\],"truncated":false}$' "$T/q"
check "unknown query refused" grep -qx '{"query":"drop_all","error":"unknown query \\"drop_all\\""}' "$T/q"
check "missing parameter named" grep -qx '{"query":"build_log","error":"query \\"build_log\\" needs parameter \\"attempt\\""}' "$T/q"
# A query request is parsed and limited as a write request is: one parser.
sub_bg "$T/q2" "q/2"
qpub() { mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" "$@"; }
qpub -m '{"query":"build_log\u0000x","params":{"build_id":8,"after":0},"reply_to":"q/2"}'
qpub -m '{"query":"build_log","params":{"build_id":9007199254740993,"after":0},"reply_to":"q/2"}'
printf '{"query":"build_log","params":{"build_id":8,"after":0},"x":"\xff","reply_to":"q/2"}' >"$T/q.utf8"
qpub -f "$T/q.utf8"
qpub -m '{"query":"build_log","query":"build_log","params":{"build_id":8,"after":0},"reply_to":"q/2"}'
qpub -m '{"query":"build_log","params":{"build_id":08,"after":0},"reply_to":"q/2"}'
qpub -m '{"query":"build_log","params":{"build_id":8,"after":0},"reply_to":"q/2","x":1}'
python3 -c 'import sys; sys.stdout.write("{\"query\":\"build_log\",\"reply_to\":\"q/2\",\"pad\":\"" + "x" * 2000000 + "\"}")' >"$T/q.big"
qpub -f "$T/q.big"
qpub -m '{"query":"build_log","params":{"build_id":8,"after":0},"reply_to":"$SYS/q"}'
wait_until 10 bash -c "[ \$(grep -c . '$T/q2') -ge 6 ]"
q2() { grep -qxF "$1" "$T/q2"; }
check "query: \\u0000 in the name refused" q2 '{"query":null,"error":"string contains \\u0000 (byte 19): NUL characters are not supported"}'
check "query: a parameter beyond 2^53 refused" \
    q2 '{"query":null,"error":"integer 9007199254740993 at byte 42 is beyond +-2^53 and would lose precision; send it as a string"}'
check "query: invalid UTF-8 refused" q2 '{"query":null,"error":"payload is not valid UTF-8 (byte 60)"}'
check "query: a duplicate key refused" q2 '{"query":null,"error":"duplicate key \"query\" in the request"}'
check "query: a leading zero refused" \
    q2 '{"query":null,"error":"invalid JSON: number \"08\" at byte 42: leading zeros are not allowed"}'
check "query: an unknown field refused" \
    q2 '{"query":"build_log","error":"unknown field \"x\" (a query request has \"query\", \"params\" and \"reply_to\")"}'
# Too large to be read (as a write request, which gets no receipt either): not run, not answered.
check_eq "query: neither a 2 MB request nor one for a \$ topic answered" "$(grep -c . "$T/q2")" 6
note "query answers: $(cut -c1-150 "$T/q2" | tr '\n' '|')"
# A named query is one SELECT (WITH ... SELECT, VALUES): anything else is a config error
# (exit 3, file:line, why), found before the database is opened. BEGIN or SAVEPOINT
# would leave the query connection in a transaction: every later answer from one old
# snapshot, and the WAL never checkpointed past it.
badq() {   # badq DESC SQL WANT: the line refused at start with WANT
    printf '# q\nquery b %s\n' "$2" >"$T/q.conf"
    out=$(timeout 10 "$BIN/mosqlite-writer" -p "$NOPORT" --db "$T/q-none.db" --schema "$SCHEMA" -c "$T/q.conf" 2>&1)
    rc=$?
    check_eq "named query $1: refused at start ($out)" "$out" "mosqlite-writer: $T/q.conf:2: query b: $3"
    check_eq "... exit 3" "$rc" 3
}
NOPORT=$(free_port)   # no broker there: a query line accepted by mistake connects nowhere
NOTSEL='must be one SELECT (or WITH ... SELECT, or VALUES), not'
badq "DELETE" 'DELETE FROM builds' "$NOTSEL DELETE: it writes"
badq "BEGIN" 'BEGIN' "$NOTSEL BEGIN: a transaction left open would hold every later answer to one snapshot"
badq "begin after a comment" '/* c */ begin deferred' "$NOTSEL BEGIN: a transaction left open would hold every later answer to one snapshot"
badq "SAVEPOINT" 'SAVEPOINT s' "$NOTSEL SAVEPOINT: a transaction left open would hold every later answer to one snapshot"
badq "ATTACH" "ATTACH '/tmp/x.db' AS x" "$NOTSEL ATTACH: it opens another database file"
badq "PRAGMA" 'PRAGMA cache_size' "$NOTSEL PRAGMA: it reads or changes the connection's settings"
badq "EXPLAIN" 'EXPLAIN SELECT 1' "$NOTSEL EXPLAIN"
check "... none of them opened the database" not test -e "$T/q-none.db"
printf 'query ok SELECT 1\nquery ok VALUES (2)\n' >"$T/q.conf"
out=$(timeout 10 "$BIN/mosqlite-writer" -p "$NOPORT" --db "$T/q-none.db" --schema "$SCHEMA" -c "$T/q.conf" 2>&1)
check_eq "a query name given twice refused at start" "$out" \
    "mosqlite-writer: $T/q.conf:2: query ok: the name is already used on $T/q.conf:1"
printf 'query bad WITH d AS (SELECT 1) DELETE FROM builds\n' > "$T/q.conf"
out=$("$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/q.db" --schema "$SCHEMA" -c "$T/q.conf" 2>&1)
check "a WITH that writes is refused at start, naming file:line" \
    grep -q "error: $T/q.conf:1: query bad: must be one read-only SELECT$" <<<"$out"
printf '# queries\n\nquery broken SELECT FROM\n' > "$T/q3.conf"
out=$("$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/q.db" --schema "$SCHEMA" -c "$T/q3.conf" 2>&1)
check "a query that does not compile is refused, naming file:line" grep -q "$T/q3.conf:3: query broken: " <<<"$out"

# --- query caps and the writable set ----------------------------------------------
writer_stop
cat > "$T/caps.conf" <<CONF
tables builds kinds
query-max-rows 3
query-timeout-ms 100
query few SELECT id FROM build_logs ORDER BY id
query slow WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c
query pair VALUES (1, 'a'), (2, 'b')
query cols SELECT name FROM pragma_table_info('builds') ORDER BY cid LIMIT 1
CONF
WRITER_ARGS="-c $T/caps.conf" writer_start
: > "$T/q"
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"few","reply_to":"q/1"}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"slow","reply_to":"q/1"}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"pair","reply_to":"q/1"}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"cols","reply_to":"q/1"}'
wait_until 10 bash -c "[ \$(grep -c . '$T/q') -ge 4 ]"
check "a SELECT from a pragma function answers" grep -qx '{"query":"cols","rows":\[{"name":"id"}\],"truncated":false}' "$T/q"
check "a VALUES query answers" grep -qx '{"query":"pair","rows":\[{"column1":1,"column2":"a"},{"column1":2,"column2":"b"}\],"truncated":false}' "$T/q"
check "row cap: 3 rows and truncated" grep -qE '^\{"query":"few","rows":\[\{"id":[0-9]+\},\{"id":[0-9]+\},\{"id":[0-9]+\}\],"truncated":true\}$' "$T/q"
check "time cap: the query is stopped" grep -qx '{"query":"slow","error":"query \\"slow\\" ran past its time cap (100 ms)"}' "$T/q"
reject "table outside \`tables\`" write/build_logs e40 '"values":{"build_id":1,"line":"x"}' 'table \"build_logs\" is not writable'
r=$(req write/builds e41 '"values":{"name":"still writable"}')
check "a table in \`tables\` stays writable" grep -q '"status":"applied"' <<<"$r"
