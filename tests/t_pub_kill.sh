#!/bin/bash
# mosqlite-pub --wait over a writer that is killed (SIGKILL) three times while 5,000
# requests go through: every request ends applied or duplicate, none is lost (the
# publisher republishes what has no receipt, with the same id) and none is applied
# twice (the writer dedupes ids). Exit 0.
. "$(dirname "$0")/lib.sh"
N=${PUB_REQUESTS:-5000}
count() { sql 'SELECT count(*) FROM build_logs WHERE build_id = 9'; }
at_least() { [ "$(count)" -ge "$1" ]; }

broker_start
writer_start
# Fed at about 1,000 lines/s so the kills land in the middle of the stream.
feed() { awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) {
    printf "{\"table\":\"build_logs\",\"values\":{\"build_id\":9,\"line\":\"req %d\"}}\n", i
    if (i % 100 == 0) { fflush(); system("sleep 0.1") } } }'; }
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 60 -v - < <(feed) 2>"$T/pub.err" & PUB=$!

for k in 1 2 3; do
    want=$(( N * k / 4 ))
    wait_until 60 at_least "$want" || fail "rows reached $want before kill $k"
    writer_kill
    note "kill $k at $(count) rows"
    sleep 0.3
    writer_start
done
wait "$PUB"; rc=$?
check_eq "--wait through 3 writer kills: exit 0" "$rc" 0
note "$(tail -1 "$T/pub.err")"
check_eq "exactly $N rows" "$(count)" "$N"
check_eq "no request applied twice" "$(sql 'SELECT count(DISTINCT line) FROM build_logs WHERE build_id = 9')" "$N"
check "no rejection reported" [ "$(grep -c rejected: "$T/pub.err")" = 0 ]

# The broker SIGKILLed once in the middle: what it had taken but not yet delivered is
# gone with it, so only republishing with the same id brings those requests back.
count() { sql 'SELECT count(*) FROM build_logs WHERE build_id = 10'; }
feed10() { feed | sed 's/"build_id":9/"build_id":10/'; }
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 60 -v - < <(feed10) 2>"$T/pub2.err" & PUB=$!
wait_until 60 at_least $(( N / 3 )) || fail "rows reached $(( N / 3 )) before the broker kill"
broker_kill
note "broker killed at $(count) rows"
sleep 0.5
broker_start
wait "$PUB"; rc=$?
check_eq "--wait through a broker SIGKILL: exit 0" "$rc" 0
note "$(tail -1 "$T/pub2.err")"
check_eq "broker SIGKILL: exactly $N rows" "$(count)" "$N"
check_eq "broker SIGKILL: none twice" "$(sql 'SELECT count(DISTINCT line) FROM build_logs WHERE build_id = 10')" "$N"
