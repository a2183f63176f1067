#!/bin/bash
# mosqlite-pub - never drops, even when the broker takes one message in flight at a
# time (max_inflight_messages 1: Mosquitto 2.0.11 applies it to what a client sends
# too, and tells an MQTT v5 client as its Receive Maximum), and across a broker restart
# in the middle of the input (libmosquitto resends what was not complete on the same
# session).
. "$(dirname "$0")/lib.sh"
N=${PUB_LINES:-3000}
gen() { awk -v n="$N" -v b="$1" 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"line %d\"}}\n", b, i }'; }

# distinct_are BUILD_ID N: build BUILD_ID has N distinct lines.
distinct_are() { [ "$(sql "SELECT count(DISTINCT line) FROM build_logs WHERE build_id = $1")" = "$2" ]; }

BROKER_EXTRA="max_inflight_messages 1"
broker_start
writer_start
gen 1 > "$T/in1.jsonl"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" -v - < "$T/in1.jsonl" 2>"$T/pub1.err"; rc=$?
check_eq "max_inflight_messages 1: exit 0" "$rc" 0
note "$(tail -1 "$T/pub1.err")"
wait_until 60 distinct_are 1 "$N"
check_eq "max_inflight_messages 1: all $N rows" "$(sql 'SELECT count(DISTINCT line) FROM build_logs WHERE build_id = 1')" "$N"

# For the record: a v3.1.1 client has no Receive Maximum and sends 20 at a time.
timeout -k 2 3 mosquitto_pub -p "$MQTT_PORT" -q 2 -l -t "$PREFIX_TOPIC/write" < <(gen 3 | head -200); mrc=$?
sleep 1
note "mosquitto_pub -l -q 2 (MQTT 3.1.1) on this broker: exit $mrc, $(sql 'SELECT count(*) FROM build_logs WHERE build_id = 3') of 200 rows"

# A broker restart (clean stop, same port and persistence) in the middle.
broker_stop
BROKER_EXTRA=
broker_conf
broker_start
wait_until 15 status_is online || fail "writer back online"
gen 2 > "$T/in2.jsonl"
N2=$N
# Feed it slowly (about 2,000 lines/s) so requests are in flight when the broker stops.
feed() { i=0; while IFS= read -r l; do printf '%s\n' "$l"; i=$((i + 1)); [ $((i % 100)) = 0 ] && sleep 0.05; done; }
"$BIN/mosqlite-pub" -p "$MQTT_PORT" -v - < <(feed < "$T/in2.jsonl") 2>"$T/pub2.err" & PUB=$!
sleep 0.6
broker_stop
sleep 0.5
broker_start
wait "$PUB"; rc=$?
check_eq "broker restart mid-input: exit 0" "$rc" 0
note "$(tail -1 "$T/pub2.err")"
wait_until 60 distinct_are 2 "$N2"
check_eq "broker restart: no line lost" "$(sql 'SELECT count(DISTINCT line) FROM build_logs WHERE build_id = 2')" "$N2"
note "broker restart: $(sql 'SELECT count(*) FROM build_logs WHERE build_id = 2') rows for $N2 lines (more means Mosquitto 2.0.11, restarted, sent the writer again a PUBLISH it had already released with PUBREL; without --wait a request has no id to dedupe it)"

# Endless input, then the broker goes away: stdin is read only while the window has
# room, so memory stays flat however much waits on the pipe.
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --timeout 0 - 2>/dev/null \
    < <(yes '{"table":"build_logs","values":{"build_id":4,"line":"endless"}}') & PUB=$!
PIDS="$PIDS $PUB"
sleep 1
broker_stop
sleep 1; rss1=$(ps -o rss= -p "$PUB"); sleep 2; rss2=$(ps -o rss= -p "$PUB")
check "endless input, broker gone: memory flat (RSS ${rss1} KiB, then ${rss2} KiB)" \
    [ "$rss2" -lt 65536 -a $((rss2 - rss1)) -lt 2048 ]
cpu=$(ps -o time= -p "$PUB")
note "endless input: $(sql 'SELECT count(*) FROM build_logs WHERE build_id = 4') rows in 1 s before the broker stopped; CPU time $cpu"
kill "$PUB"
