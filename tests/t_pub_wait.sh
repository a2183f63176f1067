#!/bin/bash
# mosqlite-pub --wait: exit 0 when every request is applied or duplicate, 1 when one is
# rejected (one stderr line per rejection, with its id and the writer's reason), 2 when
# one is unconfirmed after --timeout (writer absent). Ids: --id, ids in JSON Lines,
# generated ids; the same request twice is applied once, and another request under an
# id already applied is rejected. An update or delete that matches no row is said on
# stderr (exit 0; --must-match: exit 1).
. "$(dirname "$0")/lib.sh"
pubw() { "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait "$@"; }

broker_start
writer_start

pubw builds '{"name":"one"}' 2>"$T/e1"; rc=$?
check_eq "applied: exit 0" "$rc" 0
check_eq "applied: row stored" "$(sql "SELECT count(*) FROM builds WHERE name = 'one'")" 1
check_eq "applied: nothing on stderr" "$(cat "$T/e1")" ""

pubw build_logs '{"build_id":1,"lne":"x"}' 2>"$T/e2"; rc=$?
check_eq "rejected: exit 1" "$rc" 1
check_eq "rejected: one line on stderr" "$(grep -c . "$T/e2")" 1
check "rejected: the line has the id and the writer's reason" \
    grep -Eq 'request [0-9A-Z]{26} rejected: .*lne' "$T/e2"

pubw --id build-42 builds '{"id":42,"name":"forty-two"}' 2>/dev/null; rc=$?
check_eq "--id: exit 0" "$rc" 0
pubw -v --id build-42 builds '{"id":43,"name":"again"}' 2>"$T/e3"; rc=$?
check_eq "--id again, another request: rejected, exit 1" "$rc" 1
check "--id again, another request: the reason" grep -q 'was already used by a different request' "$T/e3"
pubw -v --id build-42 builds '{"id":42,"name":"forty-two"}' 2>"$T/e3"; rc=$?
check_eq "--id again, the same request: duplicate is exit 0" "$rc" 0
check "--id again: counted as duplicate" grep -q 'duplicate 1' "$T/e3"
check_eq "--id again: not applied twice" "$(sql "SELECT count(*) FROM builds WHERE id IN (42, 43)")" 1
pubw --op update --where '{"id":42}' builds '{"status":"passed"}'; rc=$?
check_eq "--op update: exit 0" "$rc" 0
check_eq "--op update: row updated" "$(sql "SELECT status FROM builds WHERE id = 42")" passed
pubw --op upsert builds '{"id":42,"name":"forty-two b"}'; rc=$?
check_eq "--op upsert: applied" "$rc.$(sql "SELECT name FROM builds WHERE id = 42")" "0.forty-two b"
pubw --op delete --where '{"id":42}' builds; rc=$?
check_eq "--op delete: row gone" "$rc.$(sql "SELECT count(*) FROM builds WHERE id = 42")" "0.0"

# The same keys in a config file; the command line wins.
printf '# publisher\nport 1\nwait yes\ntimeout 5\n' > "$T/pub.conf"
"$BIN/mosqlite-pub" -c "$T/pub.conf" -p "$MQTT_PORT" -v builds '{"name":"from config"}' 2>"$T/ec"; rc=$?
check_eq "config file: exit 0" "$rc" 0
check "config file: wait yes took effect" grep -q 'applied 1,' "$T/ec"

# JSON Lines with --wait: ids kept or added; a bad line and a rejected one both counted.
cat > "$T/in.jsonl" <<'L'
{"table":"build_logs","values":{"build_id":5,"line":"a"}}
{"id":"mine-1","table":"build_logs","values":{"build_id":5,"line":"b"}}

{"table":"build_logs","values":{"build_id":5,"nope":"c"}}
not json
{"ops":[{"table":"builds","values":{"id":50,"name":"t"}},{"table":"build_logs","values":{"build_id":50,"line":"t"}}]}
{"id":"mine-1","table":"build_logs","values":{"build_id":5,"line":"b"}}
L
pubw -v - < "$T/in.jsonl" 2>"$T/e4"; rc=$?
check_eq "JSON Lines --wait with a rejection: exit 1" "$rc" 1
check "the rejection names line 4 and the column" grep -q 'line 4: request .* rejected: .*nope' "$T/e4"
check "the unparsable line is named" grep -q 'line 5: request is not a JSON object' "$T/e4"
check "summary: 3 applied, 1 duplicate, 1 rejected" grep -q 'applied 3, duplicate 1, rejected 1' "$T/e4"
check_eq "rows of build 5: a and b" "$(sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = 5 ORDER BY id)")" "a,b"
check_eq "the transaction applied" "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 50")" 1

# An update or delete that matches no row: applied, changes 0. Said on stderr; exit 0
# (deleting what is already gone is no failure), exit 1 with --must-match.
pubw --op update --where '{"id":999}' builds '{"status":"passed"}' 2>"$T/e6"; rc=$?
check_eq "update matching no row: exit 0" "$rc" 0
check "update matching no row: said so, with its where" \
    grep -Eq 'warning: request [0-9A-Z]{26}: update of builds matched no row \(where \{"id":999\}\): nothing changed' "$T/e6"
pubw --must-match --op delete --where '{"id":999}' builds 2>"$T/e7"; rc=$?
check_eq "--must-match, delete matching no row: exit 1" "$rc" 1
check "--must-match: an error line" grep -q 'error: request .*: delete of builds matched no row' "$T/e7"
pubw --must-match --op update --where '{"id":50}' builds '{"status":"passed"}' 2>"$T/e8"; rc=$?
check_eq "--must-match, update matching a row: exit 0, nothing said" "$rc.$(cat "$T/e8")" "0."
pubw --op upsert builds '{"id":50,"name":"t"}' 2>"$T/e8"; rc=$?
check_eq "an upsert that changes nothing new: nothing said" "$rc.$(cat "$T/e8")" "0."
cat > "$T/nomatch.jsonl" <<'L'
{"table":"builds","values":{"id":60,"name":"n"}}
{"table":"builds","op":"update","set":{"name":"m"},"where":{"id":998}}
{"ops":[{"table":"builds","op":"delete","where":{"id":997}},{"table":"builds","op":"delete","where":{"id":996}}]}
{"ops":[{"table":"builds","op":"delete","where":{"id":995}},{"table":"builds","values":{"id":61,"name":"n"}}]}
L
pubw - < "$T/nomatch.jsonl" 2>"$T/e9"; rc=$?
check_eq "JSON Lines, updates and deletes matching nothing: exit 0" "$rc" 0
check_eq "JSON Lines: lines 2 and 3 are named, no other" \
    "$(grep -o '^.*warning: line [0-9]*: request [^ ]*: its update or delete matched no row: nothing changed' "$T/e9" | grep -o 'line [0-9]*' | tr '\n' ' ')" "line 2 line 3 "
pubw --must-match - < "$T/nomatch.jsonl" 2>/dev/null; rc=$?
check_eq "JSON Lines --must-match: exit 1" "$rc" 1
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --must-match --op delete --where '{"id":1}' builds 2>"$T/e10"; rc=$?
check_eq "--must-match without --wait: exit 3" "$rc" 3
check "--must-match without --wait: says why" grep -q -- "--must-match needs --wait: only the writer's receipt says how many rows changed" "$T/e10"
"$BIN/mosqlite-pub" --help | grep -q 'without it nothing is known'
check "--help: without --wait, whether an update matched is not known" [ $? = 0 ]

# Writer absent: unconfirmed after --timeout.
writer_stop
start=$(date +%s)
pubw --timeout 2 builds '{"name":"nobody home"}' 2>"$T/e5"; rc=$?
took=$(( $(date +%s) - start ))
check_eq "writer absent: exit 2" "$rc" 2
check "writer absent: gave up after about 2 s (took ${took} s)" [ "$took" -ge 2 -a "$took" -le 5 ]
check "writer absent: says unconfirmed" grep -q 'unconfirmed' "$T/e5"
# The writer's session kept it: once back, the request is applied (once).
writer_start
home() { [ "$(sql "SELECT count(*) FROM builds WHERE name = 'nobody home'")" = 1 ]; }
wait_until 10 home
check_eq "queued request applied when the writer returns" "$(sql "SELECT count(*) FROM builds WHERE name = 'nobody home'")" 1
