#!/bin/bash
# make run (conf/run.sh): a port that only holds TIME-WAIT sockets (a broker that just
# stopped) is used, not skipped; a port something listens on is skipped, and said so;
# the broker's connection notices go to the log file it names, not the terminal; the
# printed mosquitto_pub command writes a row; SIGTERM stops the broker and the writer.
. "$(dirname "$0")/lib.sh"
running() { grep -q 'mosqlite is running' "$1"; }
row_count() { sqlite3 -cmd '.timeout 5000' "$1" 'SELECT count(*) FROM build_logs' 2>/dev/null; }
rows_in() { [ "$(row_count "$1")" = "$2" ]; }
tw_count() { ss -Htan state time-wait "sport = :$1" | grep -c .; }

# A broker on the port with a client connected, then stopped: the broker closes the
# connection first, so its side stays in TIME-WAIT on the port.
broker_start
P=$MQTT_PORT W=$WS_PORT
mosquitto_sub -p "$P" -t x >/dev/null 2>&1 &
SUB=$!
PIDS="$PIDS $SUB"
wait_until 5 sh -c "ss -Htan state established '( sport = :$P )' | grep -q ." || note "subscriber not connected"
broker_stop
kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
note "TIME-WAIT sockets on port $P after the broker stopped: $(tw_count "$P")"
check "a TIME-WAIT socket is on the port (the case under test)" [ "$(tw_count "$P")" -gt 0 ]

MQTT_PORT=$P WS_PORT=$W DATA_DIR=$T/data sh "$ROOT/conf/run.sh" >"$T/run.out" 2>&1 &
RUN=$!
PIDS="$PIDS $RUN"
wait_until 20 running "$T/run.out"; check "run.sh says it is running" [ $? = 0 ]
check "TIME-WAIT only: the port is used, not skipped" not grep -q 'in use' "$T/run.out"
check "the broker listens on the port asked for" port_open "$P"
check "it names the broker's log file" grep -q "broker log: *$T/data/mosquitto.log" "$T/run.out"
broker_v=$(mosquitto -h | sed -n "s/^mosquitto version //p" | head -1)
check "it names the broker's and the libraries' versions" grep -q "versions: *Mosquitto $broker_v (broker), libmosquitto [0-9.]*, SQLite" "$T/run.out"
cmd=$(grep -m1 'mosquitto_pub -p' "$T/run.out" | sed 's/^ *//')
check_eq "the printed command names the port" "$(echo "$cmd" | awk '{print $3}')" "$P"
eval "$cmd"
wait_until 10 rows_in "$T/data/mosqlite.db" 1; check "the printed mosquitto_pub command writes a row" [ $? = 0 ]
for i in $(seq 1 20); do mosquitto_pub -p "$P" -q 2 -t mosqlite/write/build_logs -m "{\"values\":{\"build_id\":1,\"line\":\"$i\"}}"; done
wait_until 10 rows_in "$T/data/mosqlite.db" 21
check "connection notices are in the broker's log" grep -q 'New connection from' "$T/data/mosquitto.log"
check_eq "and none on the terminal" "$(grep -c 'New connection\|disconnected' "$T/run.out")" 0
note "run.sh printed $(wc -l < "$T/run.out") lines for 21 client connections"

# A second make run on the same data directory: refused, exit 1, nothing touched; the
# first goes on.
sum_of() { [ -e "$1" ] && md5sum <"$1" || echo absent; }
conf_sum=$(sum_of "$T/data/mosquitto.conf") db_sum=$(sum_of "$T/data/mosquitto.db")
MQTT_PORT=$(free_port) WS_PORT=$(free_port) DATA_DIR=$T/data timeout 30 sh "$ROOT/conf/run.sh" >"$T/run.dup" 2>&1
rc=$?
note "a second make run on the same data/: exit $rc, $(head -c 300 "$T/run.dup")"
check_eq "a second make run on the same data/ exits 1" "$rc" 1
check "it says the data directory is in use by the first" grep -q "$T/data is in use by another make run (pid $RUN)" "$T/run.dup"
check "it does not say it is running" not running "$T/run.dup"
check_eq "the first one's mosquitto.conf is untouched" "$(sum_of "$T/data/mosquitto.conf")" "$conf_sum"
check_eq "the first one's mosquitto.db is untouched" "$(sum_of "$T/data/mosquitto.db")" "$db_sum"
mosquitto_pub -p "$P" -q 2 -t mosqlite/write/build_logs -m '{"values":{"build_id":2,"line":"still here"}}'
wait_until 10 rows_in "$T/data/mosqlite.db" 22; check "the first one still writes" [ $? = 0 ]

# A writer that cannot start (another writer holds the database): not "running", exit 1.
mkdir -p "$T/data3"
"$BIN/mosqlite-writer" -c "$ROOT/conf/mosqlite.conf" -p "$P" --client-id other-writer --prefix other \
    --db "$T/data3/mosqlite.db" 2>"$T/other.log" &
OTHER=$!
PIDS="$PIDS $OTHER"
wait_until 10 test -e "$T/data3/mosqlite.db-writer.lock"
MQTT_PORT=$(free_port) WS_PORT=$(free_port) DATA_DIR=$T/data3 timeout 30 sh "$ROOT/conf/run.sh" >"$T/run3.out" 2>&1
rc=$?
note "make run whose writer cannot start: exit $rc, $(grep '^run:\|in use' "$T/run3.out" | head -3 | tr '\n' ' ')"
check_eq "make run whose writer cannot start exits 1" "$rc" 1
check "it says the writer did not start" grep -q "mosqlite-writer did not start" "$T/run3.out"
check "it does not say it is running" not running "$T/run3.out"
kill "$OTHER"; wait "$OTHER" 2>/dev/null

# Something listening on the port: skipped, and said so.
BROKER_PID2=
mosquitto -p "$((P + 1000))" >/dev/null 2>&1 &
BROKER_PID2=$!
PIDS="$PIDS $BROKER_PID2"
wait_until 10 port_open "$((P + 1000))"
MQTT_PORT=$((P + 1000)) WS_PORT=$(free_port) DATA_DIR=$T/data2 sh "$ROOT/conf/run.sh" >"$T/run2.out" 2>&1 &
RUN2=$!
PIDS="$PIDS $RUN2"
wait_until 20 running "$T/run2.out"
check "a listening port is skipped, and said so" grep -q "port $((P + 1000)) is in use" "$T/run2.out"
kill -TERM "$RUN2"; wait "$RUN2" 2>/dev/null
kill "$BROKER_PID2"; wait "$BROKER_PID2" 2>/dev/null

# SIGTERM (as Ctrl-C) stops the writer and the broker.
kill -TERM "$RUN"; wait "$RUN"; rc=$?
check_eq "run.sh exits 0 on SIGTERM" "$rc" 0
wait_until 10 sh -c "! ss -Htln 'sport = :$P' | grep -q ."; check "the broker is stopped" [ $? = 0 ]
check "the writer is stopped" not pgrep -f "mosqlite-writer.*$T/data/mosqlite.db" >/dev/null
