#!/bin/sh
# make run: the whole thing on this machine. Mosquitto from mosquitto.conf.example
# (MQTT on 127.0.0.1:1883, the page on :9001), mosqlite-writer on data/mosqlite.db with
# conf/schema and conf/mosqlite.conf. Ctrl-C stops both. MQTT_PORT and WS_PORT move
# the ports; when the default one is taken (a system mosquitto, say), the next free
# one is used and printed.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

in_use() { ss -Htan "sport = :$1" | grep -q .; }
pick() {
    p=$1
    while in_use "$p"; do p=$((p + 1)); done
    [ "$p" = "$1" ] || echo "run: port $1 is in use, using $p" >&2
    echo "$p"
}
MQTT_PORT=$(pick "${MQTT_PORT:-1883}")
WS_PORT=$(pick "${WS_PORT:-9001}")

mkdir -p data
conf=data/mosquitto.conf
sed -e "s/^listener 1883 127.0.0.1/listener $MQTT_PORT 127.0.0.1/" \
    -e "s/^listener 9001\$/listener $WS_PORT/" \
    -e "s|^http_dir .*|http_dir $ROOT/web|" \
    -e "s|^persistence_location .*|persistence_location $ROOT/data/|" \
    mosquitto.conf.example > "$conf"
# As root, Mosquitto drops to the `mosquitto` user, which could not write data/.
[ "$(id -u)" = 0 ] && echo "user root" >> "$conf"

BROKER= WRITER=
stop() {
    trap - INT TERM EXIT
    [ -n "$WRITER" ] && kill -TERM "$WRITER" 2>/dev/null && wait "$WRITER" 2>/dev/null
    [ -n "$BROKER" ] && kill -TERM "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null
    exit 0
}
trap stop INT TERM EXIT

mosquitto -c "$conf" &
BROKER=$!
i=0
until in_use "$MQTT_PORT"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "run: mosquitto did not start" >&2; exit 1; }
    sleep 0.1
done
bin/mosqlite-writer -c conf/mosqlite.conf -p "$MQTT_PORT" &
WRITER=$!

cat <<MSG

  mosqlite is running.
    page:      http://localhost:$WS_PORT/
    database:  $ROOT/data/mosqlite.db   (read it: sqlite3 -cmd '.timeout 2000' data/mosqlite.db)
    write a row from a shell:
      mosquitto_pub -p $MQTT_PORT -q 2 -t mosqlite/write/build_logs -m '{"values":{"build_id":7,"line":"hello"}}'
    pipe a build log:
      make 2>&1 | bin/mosqlite-pub -p $MQTT_PORT --lines line --with '{"build_id": 7}' build_logs
  Ctrl-C stops the writer and the broker.

MSG
wait "$WRITER"
