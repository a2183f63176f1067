#!/bin/sh
# make run: the whole thing on this machine. Mosquitto from mosquitto.conf.example
# (MQTT on 127.0.0.1:1883, the page on :9001), mosqlite-writer on data/mosqlite.db with
# conf/schema and conf/mosqlite.conf. Ctrl-C stops both. MQTT_PORT and WS_PORT move
# the ports, DATA_DIR the data directory (default data/). When a port is taken (a
# system mosquitto, say), the next free one is used and printed. The broker's own log
# (its connection notices above all) goes to DATA_DIR/mosquitto.log, not the terminal.
# One `make run` per data directory: a second one on the same directory (whose broker
# would rewrite the first one's mosquitto.conf and save its state over mosquitto.db)
# touches nothing and exits 1. The exit status is 1 too when the broker or the writer
# does not start, and the writer's own when it stops by itself.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${DATA_DIR:-data}
case "$DATA" in /*) ;; *) DATA=$ROOT/$DATA;; esac
PREFIX=mosqlite

# The lock: an flock on DATA/run.lock, held by this shell and inherited by the broker
# and the writer, so it is held as long as any of them runs on DATA (even when this
# shell was killed). DATA/run.pid names the shell that took it.
mkdir -p "$DATA"
exec 9>>"$DATA/run.lock"
if ! flock -n 9; then
    pid=$(cat "$DATA/run.pid" 2>/dev/null || true)
    echo "run: $DATA is in use by another make run${pid:+ (pid $pid)}: stop that one first (Ctrl-C in its terminal${pid:+, or kill $pid}), or start this one with DATA_DIR=ANOTHER_DIR" >&2
    exit 1
fi
echo $$ >"$DATA/run.pid"

# Mosquitto binds its listeners with address reuse on, so connections on a port, and
# the TIME-WAIT sockets a broker that just stopped leaves behind, do not keep it from
# binding: only a socket listening on the port does.
listening() { ss -Htln "sport = :$1" | grep -q .; }
pick() {
    p=$1
    while listening "$p"; do p=$((p + 1)); done
    [ "$p" = "$1" ] || echo "run: port $1 is in use (something listens on it), using $p" >&2
    echo "$p"
}
MQTT_PORT=$(pick "${MQTT_PORT:-1883}")
WS_PORT=$(pick "${WS_PORT:-9001}")
[ "$WS_PORT" != "$MQTT_PORT" ] || WS_PORT=$(pick $((WS_PORT + 1)))

conf=$DATA/mosquitto.conf
log=$DATA/mosquitto.log
sed -e "s/^listener 1883 127.0.0.1/listener $MQTT_PORT 127.0.0.1/" \
    -e "s/^listener 9001\$/listener $WS_PORT/" \
    -e "s|^http_dir .*|http_dir $ROOT/web|" \
    -e "s|^persistence_location .*|persistence_location $DATA/|" \
    -e "s|^log_dest .*|log_dest file $log|" \
    mosquitto.conf.example > "$conf"
# As root, Mosquitto drops to the `mosquitto` user, which could not write data/.
[ "$(id -u)" = 0 ] && echo "user root" >> "$conf"

BROKER= WRITER= RC=1
stop() {
    trap - INT TERM EXIT
    [ -n "$WRITER" ] && kill -TERM "$WRITER" 2>/dev/null && wait "$WRITER" 2>/dev/null
    [ -n "$BROKER" ] && kill -TERM "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null
    rm -f "$DATA/run.pid"
    exit "$RC"
}
trap 'RC=0; stop' INT TERM
trap stop EXIT

mosquitto -c "$conf" >>"$log" 2>&1 &
BROKER=$!
i=0
until listening "$MQTT_PORT" && listening "$WS_PORT"; do
    i=$((i + 1))
    if [ $i -ge 100 ] || ! kill -0 "$BROKER" 2>/dev/null; then
        echo "run: mosquitto did not start; the end of $log:" >&2
        tail -n 5 "$log" >&2
        exit 1
    fi
    sleep 0.1
done
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bin/mosqlite-writer -c conf/mosqlite.conf -p "$MQTT_PORT" --db "$DATA/mosqlite.db" &
WRITER=$!
# Running means the writer's status says online, published by this writer (its "since"
# is not before it was started: a retained status may be an older writer's).
writer_up() {
    s=$(mosquitto_sub -p "$MQTT_PORT" -t "$PREFIX/status" -C 1 -W 1 2>/dev/null) || return 1
    case $s in *'"state":"online"'*) ;; *) return 1 ;; esac
    since=$(printf '%s\n' "$s" | sed -n 's/.*"since":"\([^"]*\)".*/\1/p')
    [ -n "$since" ] && [ "$(printf '%s\n%s\n' "$started" "$since" | sort | head -n 1)" = "$started" ]
}
i=0
until writer_up; do
    i=$((i + 1))
    if ! kill -0 "$WRITER" 2>/dev/null; then
        wait "$WRITER" && rc=0 || rc=$?
        WRITER=
        echo "run: mosqlite-writer did not start (exit status $rc; its reason is above)" >&2
        exit 1
    fi
    if [ $i -ge 30 ]; then
        echo "run: mosqlite-writer is running but has not said it is online after 30 tries; the end of $log:" >&2
        tail -n 5 "$log" >&2
        exit 1
    fi
    sleep 0.2
done

broker_v=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version //p' | head -1)
libs=$(bin/mosqlite-writer --version | sed -n 2p)
cat <<MSG

  mosqlite is running.
    versions:    Mosquitto ${broker_v:-?} (broker), $libs
    page:        http://localhost:$WS_PORT/
    database:    $DATA/mosqlite.db   (read it: sqlite3 -cmd '.timeout 2000' $DATA/mosqlite.db)
    broker log:  $log
    write a row from a shell:
      mosquitto_pub -p $MQTT_PORT -q 2 -t mosqlite/write/build_logs -m '{"values":{"build_id":7,"line":"hello"}}'
    pipe a build log:
      make 2>&1 | bin/mosqlite-pub -p $MQTT_PORT --lines line --with '{"build_id": 7}' build_logs
    run a build and record it (status, exit code, duration, each line's stream):
      bin/mosqlite-pub -p $MQTT_PORT --lines line --with '{"build_id": 8}' build_logs -- make
  Ctrl-C stops the writer and the broker.

MSG
wait "$WRITER" && RC=0 || RC=$?
WRITER=
echo "run: mosqlite-writer stopped (exit status $RC)" >&2
