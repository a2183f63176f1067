#!/bin/bash
# Tables a replica cannot follow: the writer names each at start (no declared PRIMARY
# KEY, generated columns, a PRIMARY KEY column that may hold NULL), and refuses, with an
# exact rejection, a write that would put a NULL in such a key (SQLite's session
# extension leaves such rows out of every changeset: replicas would never get them).
# Keys that cannot hold NULL (INTEGER PRIMARY KEY, NOT NULL, WITHOUT ROWID) are left
# alone. A replica follows, and ends with the writer's rows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica.sh"

SCHEMA=$T/schema
mkdir -p "$SCHEMA"
cp "$ROOT"/conf/schema/*.sql "$SCHEMA"/
cat >"$SCHEMA/900_unfit.sql" <<'EOF'
CREATE TABLE u_nokey (a TEXT, b INTEGER);
CREATE TABLE u_gen (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL);
CREATE TABLE u_text (k TEXT PRIMARY KEY, v INTEGER);
CREATE TABLE u_pair (a INTEGER, b TEXT NOT NULL, v INTEGER, PRIMARY KEY (a, b));
CREATE TABLE u_notnull (k TEXT PRIMARY KEY NOT NULL, v INTEGER);
CREATE TABLE u_wr (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
CREATE TABLE u_int (id INTEGER PRIMARY KEY, v INTEGER);
EOF
broker_start
writer_start
w() { grep -c "$1" "$WRITER_LOG"; }
check_eq "start: a table with no declared PRIMARY KEY named" \
    "$(w 'table "u_nokey" has no declared PRIMARY KEY: replicas do not receive its rows')" 1
check_eq "start: a table with generated columns named" \
    "$(w 'table "u_gen" has generated columns: replicas do not receive its rows')" 1
check_eq "start: a nullable TEXT PRIMARY KEY named" \
    "$(w 'table "u_text": PRIMARY KEY column "k" (TEXT) may hold NULL, and replicas never receive a row whose key holds a NULL: writes that would put one there are refused')" 1
check_eq "start: the nullable column of a composite key named, not the NOT NULL one" \
    "$(w 'table "u_pair": PRIMARY KEY column "a" (INTEGER) may hold NULL'):$(w 'table "u_pair": PRIMARY KEY column "b"')" 1:0
check_eq "start: nothing said of NOT NULL, WITHOUT ROWID and INTEGER PRIMARY KEY keys" \
    "$(grep -cE 'table "(u_notnull|u_wr|u_int)"' "$WRITER_LOG")" 0
replica_start r1
check "r1 follows" wait_until 15 caught_up r1

sub_bg "$T/rejected" "$PREFIX_TOPIC/rejected"
pub write/u_text '{"id":"n1","values":{"k":null,"v":1}}'
pub write/u_text '{"id":"n2","values":{"v":2}}'
pub write/u_text '{"id":"n3","values":{"k":"a","v":3}}'
pub write/u_text '{"id":"n4","op":"update","set":{"k":null},"where":{"k":"a"}}'
pub write/u_pair '{"id":"n5","values":{"b":"x","v":5}}'
pub write/u_pair '{"id":"n6","values":{"a":1,"b":"x","v":6}}'
pub write/u_notnull '{"id":"n7","values":{"k":"z","v":7}}'
wait_until 10 sh -c "[ \$(grep -c '\"id\":\"n' $T/rejected) -ge 4 ]"
for id in n1 n2 n4; do
    check "$id (a NULL key in u_text) refused, saying why" grep -q "\"id\":\"$id\",\"error\":\"NULL in PRIMARY KEY column \\\\\"k\\\\\" of table \\\\\"u_text\\\\\": replicas never receive a row whose key holds a NULL; give it a value\"" "$T/rejected"
done
check "n5 (a NULL in u_pair's key) refused, naming the column" grep -q '"id":"n5","error":"NULL in PRIMARY KEY column \\"a\\" of table \\"u_pair\\"' "$T/rejected"
check_eq "nothing else refused" "$(grep -c '"id":"n' "$T/rejected")" 4
check_eq "no row with a NULL key in the writer's file" \
    "$(sql 'SELECT count(*) FROM u_text WHERE k IS NULL') $(sql 'SELECT count(*) FROM u_pair WHERE a IS NULL')" "0 0"
check_eq "the rows with keys are there" "$(sql "SELECT group_concat(k || v) FROM u_text") $(sql 'SELECT count(*) FROM u_pair')" "a3 1"
check "r1 caught up" wait_until 15 caught_up r1
check "r1 equals the writer's file" same_dump r1
