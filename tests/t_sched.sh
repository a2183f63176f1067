#!/bin/bash
# Scheduled writes against a real broker and a real SQLite file: "delay_ms" and "at"
# get a "scheduled" receipt at once and an "applied" one when due, never before; a retry
# is a duplicate and a reused id is refused; cancel works, and is refused after the
# request was applied, for an unknown id, from another table's topic and when its own
# id is a waiting request's (the writer going on); a request that turns out invalid when
# due is rejected then, with its receipt; an "at" before 1970 is in the past as any
# other; a key given twice is refused on reply_to; the writer sleeps until
# the next one is due; the named query `scheduled` lists what waits. Then 1,000
# scheduled writes with due times spread over 10 s, published in shuffled order, with
# the writer killed (-9) in the middle and restarted: each applied once, none before
# its time, in due order.
. "$(dirname "$0")/lib.sh"

N=1000
SCHEMA=$T/schema
mkdir -p "$SCHEMA"
cp "$ROOT"/conf/schema/*.sql "$SCHEMA"/
# applied_ms: when the row was written (SQLite's clock, the wall clock, to the ms).
cat >"$SCHEMA/950_timed.sql" <<'SQL'
CREATE TABLE timed (
    seq INTEGER PRIMARY KEY,
    n INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    applied_ms INTEGER NOT NULL DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER))
);
CREATE TABLE once (k TEXT NOT NULL UNIQUE);
SQL
broker_start
receipts_bg
WRITER_ARGS="-c $ROOT/conf/mosqlite.conf"
writer_start || exit 1

now_ms() { date +%s%3N; }
iso() { date -u -d "@$(( $1 / 1000 )).$(printf %03d $(( $1 % 1000 )))" +%Y-%m-%dT%H:%M:%S.%3NZ; }
# receipt_n ID K: the K-th receipt for ID (1: scheduled, 2: applied or rejected).
receipts_for() { [ "$(grep -c "\"id\":\"$1\"" "$RECEIPTS")" -ge "$2" ]; }
receipt_n() {
    wait_until 15 receipts_for "$1" "$2" || { echo "no receipt $2 for $1"; return 1; }
    grep "\"id\":\"$1\"" "$RECEIPTS" | sed -n "${2}p"
}

# --- one request, in 3 s ---------------------------------------------------------------
t0=$(now_ms)
pub write/timed "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1\",\"delay_ms\":3000,\"values\":{\"n\":1,\"due_ms\":$((t0 + 3000))}}"
r=$(receipt_n d1 1)
check "delay_ms: a scheduled receipt with when it is due ($r)" grep -qE '^\{"id":"d1","status":"scheduled","due":"20[0-9-]+T[0-9:.]+Z"\}$' <<<"$r"
due=$(sed -n 's/.*"due":"\([^"]*\)".*/\1/p' <<<"$r")
due_ms=$(( $(date -d "$due" +%s%3N) ))
check "due is 3 s after it was received (${due}, sent at $(iso "$t0"))" test $((due_ms - t0)) -ge 3000 -a $((due_ms - t0)) -lt 13000
check "stored, not applied yet" test "$(sql "SELECT count(*) FROM mosqlite_scheduled WHERE id = 'd1'"),$(sql 'SELECT count(*) FROM timed')" = "1,0"
# A retry of it is a duplicate; its id with another payload is refused.
pub write/timed "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1\",\"delay_ms\":3000,\"values\":{\"n\":1,\"due_ms\":$((t0 + 3000))}}"
r=$(receipt_n d1 2)
check_eq "a retry while scheduled is a duplicate" "$r" '{"id":"d1","status":"duplicate"}'
pub write/timed "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1\",\"delay_ms\":5,\"values\":{\"n\":2,\"due_ms\":0}}"
r=$(receipt_n d1 3)
check_eq "its id with another request is refused" "$r" '{"id":"d1","status":"rejected","error":"id \"d1\" is already used by a different scheduled request"}'
pub write/timed "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1\",\"values\":{\"n\":2,\"due_ms\":0}}"
r=$(receipt_n d1 4)
check_eq "its id on a request for now is refused too" "$r" '{"id":"d1","status":"rejected","error":"id \"d1\" is already used by a scheduled request"}'
r=$(receipt_n d1 5)
check "then applied when due ($r)" grep -qE '^\{"id":"d1","status":"applied","changes":1,"rowid":1\}$' <<<"$r"
check "applied once, not before its time" test "$(sql 'SELECT count(*), sum(applied_ms >= due_ms) FROM timed')" = "1|1"
check "its row is gone from mosqlite_scheduled" test "$(sql 'SELECT count(*) FROM mosqlite_scheduled')" = 0
pub write/timed "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1\",\"delay_ms\":3000,\"values\":{\"n\":1,\"due_ms\":$((t0 + 3000))}}"
r=$(receipt_n d1 6)
check_eq "a retry after it was applied is a duplicate" "$r" '{"id":"d1","status":"duplicate"}'

# --- "at", in the past and in a transaction -----------------------------------------
r=$(req write a1 "\"at\":\"2020-01-01T00:00:00Z\",\"ops\":[{\"table\":\"timed\",\"values\":{\"n\":2,\"due_ms\":0}},{\"table\":\"timed\",\"values\":{\"n\":3,\"due_ms\":0}}]")
check_eq "at in the past: scheduled" "$r" '{"id":"a1","status":"scheduled","due":"2020-01-01T00:00:00.000Z"}'
r=$(receipt_n a1 2)
check_eq "and applied at once, both ops" "$r" '{"id":"a1","status":"applied","changes":2,"rowid":3}'
at=$(iso $(( $(now_ms) + 2000 )))
r=$(req write/timed a2 "\"at\":\"$at\",\"values\":{\"n\":4,\"due_ms\":$(date -d "$at" +%s%3N)}")
check_eq "at in 2 s: scheduled for then" "$r" "{\"id\":\"a2\",\"status\":\"scheduled\",\"due\":\"$at\"}"

# --- the writer sleeps until the next is due ----------------------------------------
r=$(req write/timed far "\"delay_ms\":600000,\"values\":{\"n\":99,\"due_ms\":0}")
ticks() { awk '{print $14 + $15}' "/proc/$WRITER_PID/stat"; }
receipt_n a2 2 >/dev/null
c0=$(ticks); sleep 3; c1=$(ticks)
check "idle with a request due in 10 minutes: $((c1 - c0)) CPU ticks in 3 s (a polling loop would use ~300)" test $((c1 - c0)) -lt 60
check "at applied not before its time" test "$(sql 'SELECT applied_ms >= due_ms FROM timed WHERE n = 4')" = 1

# --- the named query the page uses --------------------------------------------------
q=$(timeout -k 2 14 mosquitto_sub -p "$MQTT_PORT" -t q/sched -C 1 -W 10 & sleep 0.5
    mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/query" -m '{"query":"scheduled","reply_to":"q/sched"}'; wait)
check "query scheduled lists it with when it is due ($q)" grep -qE '^\{"query":"scheduled","rows":\[\{"id":"far","due":"[0-9T:.-]+Z","received":"[0-9T:.-]+Z","topic":"mosqlite/write/timed","payload":"\{.*delay_ms.*\}","total":1\}\],"truncated":false\}$' <<<"$q"

# --- cancel -------------------------------------------------------------------------
r=$(req write/once c1 '"cancel":"far"')
check_eq "cancel from another table's topic refused" "$r" '{"id":"c1","status":"rejected","error":"request \"far\" was published on another topic: cancel it on mosqlite/write/timed or on mosqlite/write"}'
r=$(req write c2 '"cancel":"far"')
check_eq "cancel: receipt cancelled" "$r" '{"id":"c2","status":"cancelled","cancel":"far"}'
check "cancel: gone from mosqlite_scheduled" test "$(sql "SELECT count(*) FROM mosqlite_scheduled")" = 0
r=$(req write c3 '"cancel":"far"')
check_eq "cancel twice refused" "$r" '{"id":"c3","status":"rejected","error":"request \"far\" is not scheduled any more: it was applied or cancelled"}'
r=$(req write c4 '"cancel":"d1"')
check_eq "cancel after it was applied refused" "$r" '{"id":"c4","status":"rejected","error":"request \"d1\" is not scheduled any more: it was applied or cancelled"}'
r=$(req write c5 '"cancel":"nobody"')
check_eq "cancel of an unknown id refused" "$r" '{"id":"c5","status":"rejected","error":"no request with id \"nobody\" is scheduled"}'
r=$(req write/timed late "\"delay_ms\":1200,\"values\":{\"n\":98,\"due_ms\":0}")
r=$(req write/timed c6 '"cancel":"late"')
check_eq "cancel on the request's own table topic" "$r" '{"id":"c6","status":"cancelled","cancel":"late"}'
pub write/timed "{\"id\":\"c6\",\"reply_to\":\"$REPLY/c6\",\"cancel\":\"late\"}"
r=$(receipt_n c6 2)
check_eq "a cancel's retry is a duplicate" "$r" '{"id":"c6","status":"duplicate"}'
sleep 2
check "cancelled requests never applied" test "$(sql 'SELECT count(*) FROM timed WHERE n IN (98, 99)')" = 0

# --- invalid when due ---------------------------------------------------------------
r=$(req write/once u1 '"delay_ms":3000,"values":{"k":"z"}')
check "a request valid now, scheduled ($r)" grep -q '"status":"scheduled"' <<<"$r"
r=$(req write/once u2 '"values":{"k":"z"}')
check "meanwhile another takes its unique key ($r)" grep -q '"status":"applied"' <<<"$r"
r=$(receipt_n u1 2)
check "rejected when due, with its receipt ($r)" grep -qE '^\{"id":"u1","status":"rejected","error":"UNIQUE constraint failed: once\.k"\}$' <<<"$r"
check "and kept in mosqlite_rejected" test "$(sql "SELECT count(*) FROM mosqlite_rejected WHERE req_id = 'u1'")" = 1
counted() { status | grep -qE '"scheduled":6,"cancelled":2,'; }
check "status counts scheduled and cancelled ($(wait_until 10 counted; status))" counted

# --- a cancel's own id is an id like any other ----------------------------------------
# Its target's id: the cancel is refused, the writer goes on, the request stays scheduled.
r=$(req write/timed x1 '"delay_ms":600000,"values":{"n":93,"due_ms":0}')
check "x1 scheduled ($r)" grep -q '"status":"scheduled"' <<<"$r"
pub write "{\"id\":\"x1\",\"cancel\":\"x1\",\"reply_to\":\"$REPLY/x1\"}"
r=$(receipt_n x1 2)
check_eq "a cancel with its target's id is refused as any reuse of an id" "$r" '{"id":"x1","status":"rejected","error":"id \"x1\" is already used by a scheduled request"}'
r=$(req write/timed x2 '"values":{"n":92,"due_ms":0}')
check "and the writer goes on: the next request is applied ($r)" grep -q '"status":"applied"' <<<"$r"
check_eq "x1 is still scheduled" "$(sql "SELECT count(*) FROM mosqlite_scheduled WHERE id = 'x1'")" 1
r=$(req write x3 '"cancel":"x1"')
check_eq "then cancelled by a cancel of its own id" "$r" '{"id":"x3","status":"cancelled","cancel":"x1"}'
# Another waiting request's id: refused; both go on waiting, the one due is applied.
r=$(req write/timed y1 '"delay_ms":1500,"values":{"n":91,"due_ms":0}')
r=$(req write/timed y2 '"delay_ms":600000,"values":{"n":90,"due_ms":0}')
pub write "{\"id\":\"y1\",\"cancel\":\"y2\",\"reply_to\":\"$REPLY/y1\"}"
r=$(receipt_n y1 2)
check_eq "a cancel with another waiting request's id is refused" "$r" '{"id":"y1","status":"rejected","error":"id \"y1\" is already used by a scheduled request"}'
r=$(receipt_n y1 3)
check "y1 applied when due ($r)" grep -qE '^\{"id":"y1","status":"applied","changes":1,"rowid":[0-9]+\}$' <<<"$r"
check_eq "y2 still scheduled" "$(sql "SELECT count(*) FROM mosqlite_scheduled WHERE id = 'y2'")" 1
r=$(req write y3 '"cancel":"y2"')
check_eq "then cancelled" "$r" '{"id":"y3","status":"cancelled","cancel":"y2"}'

# --- "at" before 1970 is in the past like any other ------------------------------------
r=$(req write/timed old '"at":"1969-07-20T20:17:40Z","values":{"n":89,"due_ms":0}')
check_eq "at in 1969: scheduled" "$r" '{"id":"old","status":"scheduled","due":"1969-07-20T20:17:40.000Z"}'
r=$(receipt_n old 2)
check "and applied at once ($r)" grep -qE '^\{"id":"old","status":"applied","changes":1,"rowid":[0-9]+\}$' <<<"$r"
r=$(req write/timed older '"at":"0001-01-01T00:00:00Z","values":{"n":88,"due_ms":0}')
check_eq "at in year 1: scheduled, due in four digits" "$r" '{"id":"older","status":"scheduled","due":"0001-01-01T00:00:00.000Z"}'
r=$(receipt_n older 2)
check "and applied at once ($r)" grep -q '"status":"applied"' <<<"$r"

# --- a key given twice in a scheduled request: refused on its reply_to -----------------
pub write/timed "{\"id\":\"twice\",\"reply_to\":\"$REPLY/twice\",\"at\":\"2020-01-01T00:00:00Z\",\"at\":\"2021-01-01T00:00:00Z\",\"values\":{\"n\":87,\"due_ms\":0}}"
r=$(receipt_n twice 1)
check_eq "\"at\" twice: refused, with a receipt" "$r" '{"id":"twice","status":"rejected","error":"duplicate key \"at\" in the request"}'
check_eq "and not applied" "$(sql 'SELECT count(*) FROM timed WHERE n = 87')" 0

# --- paused: nothing due is applied until resume -------------------------------------
admin() { mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/admin" -m "{\"cmd\":\"$1\",\"reply_to\":\"$REPLY/admin\"}"; }
paused_is() { status | grep -q "\"paused\":$1"; }
r=$(req write/timed p1 '"delay_ms":3000,"values":{"n":97,"due_ms":0}')
admin pause
wait_until 10 paused_is true
sleep 4
applied_while_paused=$(sql 'SELECT count(*) FROM timed WHERE n = 97')
admin resume
wait_until 10 paused_is false
r=$(receipt_n p1 2)
check "paused: a request due meanwhile waits ($applied_while_paused applied), then is applied on resume ($r)" \
    test "$applied_while_paused" = 0 -a "$(sql 'SELECT count(*) FROM timed WHERE n = 97')" = 1

# --- mosqlite-pub --wait: a scheduled receipt completes a request ---------------------
out=$(printf '%s\n' '{"table":"timed","delay_ms":800,"values":{"n":94,"due_ms":0}}' |
      "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 10 -v - 2>&1); rc=$?
check "mosqlite-pub --wait: exit 0 once it is scheduled (rc $rc: $(tail -1 <<<"$out"))" \
    test $rc = 0 -a "$(sql 'SELECT count(*) FROM timed WHERE n = 94')" = 0
check "mosqlite-pub counts it as scheduled" grep -q "scheduled 1, cancelled 0" <<<"$out"
ninety_four() { [ "$(sql 'SELECT count(*) FROM timed WHERE n = 94')" = 1 ]; }
check "and the writer applies it when due" wait_until 10 ninety_four

# --- a bound: schedule-max ----------------------------------------------------------
writer_stop
printf 'schedule-max 2\n' >"$T/max.conf"
writer_start -c "$T/max.conf" || exit 1
req write/timed m1 '"delay_ms":60000,"values":{"n":96,"due_ms":0}' >/dev/null
req write/timed m2 '"delay_ms":60000,"values":{"n":96,"due_ms":0}' >/dev/null
r=$(req write/timed m3 '"delay_ms":60000,"values":{"n":96,"due_ms":0}')
check_eq "beyond schedule-max a scheduled request is refused" "$r" '{"id":"m3","status":"rejected","error":"too many scheduled requests: 2 are waiting (limit 2, schedule-max)"}'
r=$(req write/timed m4 '"values":{"n":95,"due_ms":0}')
check "a request for now still goes through ($r)" grep -q '"status":"applied"' <<<"$r"
req write c7 '"cancel":"m1"' >/dev/null
r=$(req write/timed m5 '"delay_ms":60000,"values":{"n":96,"due_ms":0}')
check "after a cancel there is room again ($r)" grep -q '"status":"scheduled"' <<<"$r"
req write c8 '"cancel":"m2"' >/dev/null
req write c9 '"cancel":"m5"' >/dev/null
writer_stop
writer_start || exit 1

# --- 1,000 over 10 s, the writer killed in the middle --------------------------------
sub_bg "$T/bulk" "$REPLY/bulk/#"
# Due every 10 ms from 4 s on ("at", to the ms), published in shuffled order.
start=$(( $(now_ms) + 4000 ))
seq 1001 $((1000 + N)) | awk -v s=$((start / 1000)) -v ms=$((start % 1000)) \
    '{ t = ms + ($1 - 1000) * 10; printf "%d %d%03d @%d.%03d\n", $1, s + int(t / 1000), t % 1000, s + int(t / 1000), t % 1000 }' >"$T/due"
cut -d' ' -f3 "$T/due" | date -u -f - +%Y-%m-%dT%H:%M:%S.%3NZ | paste -d' ' "$T/due" - | shuf |
    awk '{ printf "{\"id\":\"b%d\",\"reply_to\":\"'"$REPLY"'/bulk/%d\",\"at\":\"%s\",\"values\":{\"n\":%d,\"due_ms\":%s}}\n", $1, $1, $4, $1, $2 }' >"$T/reqs"
mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/timed" -l <"$T/reqs"
scheduled() { [ "$(grep -c '"status":"scheduled"' "$T/bulk")" -ge "$1" ]; }
check "every one of $N got its scheduled receipt" wait_until 60 scheduled $N
bulk() { sql 'SELECT count(*) FROM timed WHERE n > 1000'; }
half() { [ "$(bulk)" -ge $((N * 2 / 5)) ]; }
wait_until 60 half
writer_kill
before=$(bulk)
note "writer killed (-9) with $before of $N applied; restarting in 1.5 s"
sleep 1.5
writer_start || exit 1
all() { [ "$(bulk)" -ge $N ]; }
check "all applied after the restart" wait_until 60 all
sleep 0.5
check "killed in the middle: $before applied before, $((N - before)) after" test "$before" -gt 0 -a "$before" -lt $N
r=$(sql "SELECT count(*), count(DISTINCT n) FROM timed WHERE n > 1000")
check_eq "each applied once" "$r" "$N|$N"
r=$(sql "SELECT count(*) FROM timed WHERE n > 1000 AND applied_ms < due_ms")
check_eq "none applied before its time" "$r" 0
r=$(sql "SELECT count(*) FROM (SELECT n, lag(n) OVER (ORDER BY seq) AS prev FROM timed WHERE n > 1000) WHERE n < prev")
check_eq "applied in due order" "$r" 0
r=$(sql "SELECT max(applied_ms - due_ms) FROM timed WHERE n > 1000 AND seq > (SELECT min(seq) FROM timed WHERE n > 1000) + $before")
note "most late after the restart: ${r} ms (the writer was down 1.5 s)"
check "nothing left in mosqlite_scheduled" test "$(sql 'SELECT count(*) FROM mosqlite_scheduled')" = 0
dups=$(grep '"status":"applied"' "$T/bulk" | sort | uniq -d | wc -l)
check_eq "no request has two applied receipts" "$dups" 0
note "applied receipts: $(grep -c '"status":"applied"' "$T/bulk") of $N (a kill between COMMIT and publishing loses a receipt, never a write)"

exit "$NFAIL"
