#!/bin/bash
# An edge broker bridged to the central broker, from conf/bridge/mosquitto.conf. Two
# real brokers on loopback: the central one (the test broker of lib.sh, with the
# writer) and the edge one (conf/bridge/ with this test's ports, paths, passwords and
# ACL; plain MQTT to the central broker, whose TLS and passwords t_security.sh checks).
# Four producers publish with mosqlite-pub --wait to the EDGE: two with --window 1, two
# with the default window. Mid-stream the central broker saves its state (as an
# autosave would), is then killed (SIGKILL, or CENTRAL_SIGNAL=TERM) and stays down a
# few seconds while the producers go on publishing to the edge; then it is restarted
# on the same port and persistence. Then, with the producers still publishing, the
# edge broker is restarted (SIGTERM). Checks:
# every request applied exactly once, each --window 1 producer's order (the windowed
# producers' order is a note: a broker restart can reorder what they have in flight),
# every receipt delivered back through the bridge (mosqlite-pub --wait exits 0), no
# message dropped by the edge's queues, integrity.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

NO=400 NW=3000 PACE_O=1500 PACE_W=200 OUTAGE=4
SIG=${CENTRAL_SIGNAL:-KILL}
TOTAL=$((2 * NO + 2 * NW))
BPASS=builder-pw-$$ WEBPASS=web-pw-$$

# --- central: the test broker and the writer ---------------------------------------------
broker_start
writer_start

# --- edge: conf/bridge/ on this test's ports and paths ------------------------------------
E=$T/edge
mkdir -p "$E"
sh "$ROOT/conf/secure/make-passwd.sh" "$E/passwd" builder "$BPASS" web "$WEBPASS" >/dev/null
cp "$ROOT/conf/secure/acl" "$E/acl"
chmod 600 "$E/acl"
EDGE_PORT=$(free_port)
# The central broker of this test is plain MQTT without users: the TLS and login lines
# go. The bridge retries every second, not 2 to 30 s, to keep the test short.
sed -e "s/^listener 1883 127.0.0.1\$/listener $EDGE_PORT 127.0.0.1/" \
    -e "s|/etc/mosquitto/bridge/|$E/|" \
    -e "s|^persistence_location .*|persistence_location $E/|" \
    -e "s|^log_dest .*|log_dest file $E/mosquitto.log|" \
    -e "s|^address .*|address 127.0.0.1:$MQTT_PORT|" \
    -e "s|^restart_timeout .*|restart_timeout 1|" \
    -e "/^remote_username /d" -e "/^remote_password /d" \
    -e "/^bridge_cafile /d" -e "/^bridge_insecure /d" -e "/^bridge_tls_version /d" \
    "$ROOT/conf/bridge/mosquitto.conf" >"$E/mosquitto.conf"
echo "log_timestamp_format %Y-%m-%dT%H:%M:%S" >>"$E/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$E/mosquitto.conf"

edge_start() {
    mosquitto -c "$E/mosquitto.conf" >>"$E/stdout.log" 2>&1 &
    EDGE_PID=$!
    PIDS="$PIDS $EDGE_PID"
    wait_until 10 port_open "$EDGE_PORT" && kill -0 "$EDGE_PID" 2>/dev/null ||
        { fail "edge broker did not start"; cat "$E"/*.log; exit 1; }
}
edge_stop() { kill -TERM "$EDGE_PID" 2>/dev/null; wait "$EDGE_PID" 2>/dev/null; }
# The writer's retained status, as the edge has it (carried in by the bridge).
edge_status() {
    timeout -k 2 3 mosquitto_sub -p "$EDGE_PORT" -u web -P "$WEBPASS" -t "$PREFIX_TOPIC/status" -C 1 -W 2 2>/dev/null
}
edge_status_online() { edge_status | grep -q '"state":[ ]*"online"'; }
# Connections of the bridge to the central broker, from the central broker's log.
bridge_connects() { grep -c " as mosqlite-edge-site1 " "$T/broker/mosquitto.log"; }
bridge_connected_times() { [ "$(bridge_connects)" -ge "$1" ]; }

AUTH="-p $EDGE_PORT -u builder -P $BPASS"
edge_start
note "central broker on $MQTT_PORT, edge broker on $EDGE_PORT; $(mosquitto -h | head -1)"
check "the bridge connects to the central broker" wait_until 15 bridge_connected_times 1
check "the writer's retained status comes in over the bridge" wait_until 10 edge_status_online

# --- one request through the edge, before the stream ---------------------------------------
out=$("$BIN/mosqlite-pub" -p "$EDGE_PORT" -u builder -P "$BPASS" --wait --timeout 20 \
      build_logs '{"build_id": 100, "line": "through the bridge"}' 2>&1)
rc=$?
check_eq "one request through the edge: applied, receipt back (exit 0) $out" "$rc" 0
check_eq "its row" "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 100")" 1

# Round trips, one request at a time (--window 1): straight to the central broker, and
# through the edge and the bridge. A note, not a check.
lat_feed() {
    awk -v p="$1" 'BEGIN { for (i = 1; i <= 50; i++)
        printf "{\"id\":\"lat-%d-%d\",\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"%d\"}}\n", p, i, p, i }'
}
lat_feed 101 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --window 1 -v - 2>"$T/lat-central.err"
lat_feed 102 | "$BIN/mosqlite-pub" $AUTH --wait --window 1 -v - 2>"$T/lat-edge.err"
check_eq "50 requests one at a time through the edge: all applied" \
    "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 102")" 50
note "one at a time, 50 requests: straight to the central broker $(sed -n 's/.*elapsed \([0-9.]*\) s.*/\1/p' "$T/lat-central.err") s," \
     "through the edge and the bridge $(sed -n 's/.*elapsed \([0-9.]*\) s.*/\1/p' "$T/lat-edge.err") s"

# Events come in too: a watcher on the edge.
EVENTS=$T/edge-events
mosquitto_sub -p "$EDGE_PORT" -u web -P "$WEBPASS" -t "$PREFIX_TOPIC/events/#" >"$EVENTS" 2>&1 &
PIDS="$PIDS $!"
sleep 0.5

# --- the stream, the central broker's outage, the edge's restart ------------------------------
producer 1 "$NO" "$PACE_O" --window 1 $AUTH
producer 2 "$NO" "$PACE_O" --window 1 $AUTH
producer 3 "$NW" "$PACE_W" $AUTH
producer 4 "$NW" "$PACE_W" $AUTH

# A central broker in service saves its state every autosave_interval: the writer's
# subscription and the bridge's session survive a kill -9, with whatever was in
# flight at the save. Save once mid-stream (SIGUSR1), as an autosave would. Without a
# save, the restarted central broker has no subscriber for the requests the bridge
# delivers before the writer is back, and drops them; --wait publishes those again.
wait_until 120 at_least $((TOTAL / 12)) || fail "rows reached $((TOTAL / 12)) before the save"
kill -USR1 "$BROKER_PID"
check "the central broker saved its state mid-stream" wait_until 10 test -s "$T/broker/mosquitto.db"
note "central broker saved at $(applied_rows) rows"

wait_until 120 at_least $((TOTAL / 6)) || fail "rows reached $((TOTAL / 6)) before the central broker's outage"
kill -"$SIG" "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
at_stop=$(applied_rows)
note "central broker stopped (SIG$SIG) at $at_stop rows; down for ${OUTAGE} s"
sleep "$OUTAGE"
during=$(applied_rows)
check "the edge broker stayed up meanwhile" kill -0 "$EDGE_PID"
broker_start
wait_until 20 status_is online || fail "writer back online after the central broker's restart"
check "the bridge reconnects to the restarted central broker" wait_until 30 bridge_connected_times 2
note "rows: $at_stop at the stop, $during after ${OUTAGE} s down, $(applied_rows) at the restart"

# The edge restarts while the producers are still publishing: what it queued for the
# bridge and its producers' sessions are saved at SIGTERM; the receipts published
# meanwhile wait in the bridge's session on the central broker.
sleep 2
connects=$(bridge_connects)
if kill -0 "$PUB_3" 2>/dev/null; then running=yes; else running=no; fi
edge_stop
note "edge broker stopped (SIGTERM) at $(applied_rows) rows (windowed producers still running: $running)"
sleep 1
edge_start
check "the bridge reconnects after the edge restart" wait_until 30 bridge_connected_times $((connects + 1))

producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2"
check "the writer never restarted" kill -0 "$WRITER_PID"
check_eq "no message dropped by the edge's queues" \
    "$(grep -c -i 'dropped' "$E/mosquitto.log")" 0
check "events came in over the bridge" grep -q '"table":"build_logs"' "$EVENTS"
rep=$(cat "$T"/pub*.err | sed -n 's/.*republished \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
note "FIGURES t_bridge: requests=$TOTAL central-stop=SIG$SIG outage=${OUTAGE}s edge-restarts=1" \
     "lost=$LOST duplicated=$DUPS bridge-connects=$(bridge_connects) republished=$rep" \
     "duplicate-receipts=$(status_field duplicates)"
edge_stop
