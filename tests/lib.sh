# lib.sh: sourced by every tests/t_*.sh. Gives each test its own temp dir ($T), a real
# Mosquitto broker started from the project's mosquitto.conf.example on free loopback
# ports, helpers to start and stop the writer, and TAP-style checks. Everything a test
# starts is killed by the EXIT trap.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${BIN:-$ROOT/bin}
T=$(mktemp -d "${TMPDIR:-/tmp}/mosqlite-test.XXXXXX")
PIDS=
NFAIL=0
DB=$T/test.db
PREFIX_TOPIC=mosqlite

cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    # Under `make asan`, a sanitizer report in any log of the test is a failure.
    if grep -rlsE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T" --include='*.log' >/dev/null; then
        fail "sanitizer report in $(grep -rlsE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T" --include='*.log' | head -1)"
    fi
    if [ "$NFAIL" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "# kept $T"; fi
}
trap cleanup EXIT

ok()   { echo "ok - $*"; }
fail() { echo "not ok - $*"; NFAIL=$((NFAIL + 1)); }
# check DESC CMD...: ok when CMD succeeds
check() { d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# not CMD...: true when CMD fails (for check).
not() { ! "$@"; }
# check_eq DESC GOT WANT
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (got [$2], want [$3])"; fi
}
note() { echo "# $*"; }

# A TCP port nobody uses, below the kernel's ephemeral range (32768+), so that the
# many short client connections of a test cannot take it between check and bind.
free_port() {
    while :; do
        p=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 22000 ))
        if ! ss -Htan "sport = :$p" | grep -q .; then echo "$p"; return; fi
    done
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds; 1 on timeout.
wait_until() {
    _limit=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
    while ! "$@" 2>/dev/null; do
        [ $(( $(date +%s%N) / 1000000 )) -ge "$_limit" ] && return 1
        sleep 0.05
    done
}

port_open() { ss -Htln "sport = :$1" | grep -q .; }

# broker_conf: the project's example config with this test's ports and directories.
# Extra lines for the config can be given in $BROKER_EXTRA.
broker_conf() {
    mkdir -p "$T/broker"
    sed -e "s/^listener 1883 127.0.0.1/listener $MQTT_PORT 127.0.0.1/" \
        -e "s/^listener 9001\$/listener $WS_PORT/" \
        -e "s|^persistence_location .*|persistence_location $T/broker/|" \
        -e "s|^http_dir .*|http_dir $ROOT/web|" \
        -e "s|^log_dest .*|log_dest file $T/broker/mosquitto.log|" \
        "$ROOT/mosquitto.conf.example" > "$T/broker/mosquitto.conf"
    echo "log_type subscribe" >> "$T/broker/mosquitto.conf"
    [ "$(id -u)" = 0 ] && echo "user root" >> "$T/broker/mosquitto.conf"
    [ -n "${BROKER_EXTRA:-}" ] && printf '%s\n' "$BROKER_EXTRA" >> "$T/broker/mosquitto.conf"
    return 0
}

# broker_start: start (or restart, on the same ports and persistence) a real broker.
# On a first start that fails (a port taken meanwhile), try again on other ports.
broker_start() {
    _fresh=
    [ -z "${MQTT_PORT:-}" ] && _fresh=1
    for _try in 1 2 3 4 5; do
        : "${MQTT_PORT:=$(free_port)}"
        : "${WS_PORT:=$(free_port)}"
        export MQTT_PORT WS_PORT
        [ -f "$T/broker/mosquitto.conf" ] || broker_conf
        mosquitto -c "$T/broker/mosquitto.conf" >>"$T/broker/stdout.log" 2>&1 &
        BROKER_PID=$!
        PIDS="$PIDS $BROKER_PID"
        if wait_until 10 port_open "$MQTT_PORT" && wait_until 5 port_open "$WS_PORT" &&
           kill -0 "$BROKER_PID" 2>/dev/null; then
            return 0
        fi
        kill -9 "$BROKER_PID" 2>/dev/null
        [ -n "$_fresh" ] || break
        note "broker did not start on $MQTT_PORT/$WS_PORT; trying other ports"
        unset MQTT_PORT WS_PORT
        rm -f "$T/broker/mosquitto.conf"
    done
    fail "broker did not start"; cat "$T/broker/"*.log; exit 1
}
broker_stop() { kill "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null; }
broker_kill() { kill -9 "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null; }

# The writer's retained status, or nothing within 2 s.
status() {
    timeout -k 2 3 mosquitto_sub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/status" -C 1 -W 2 2>/dev/null
}
status_is() { status | grep -q "\"state\":[ ]*\"$1\""; }

# writer_start [ARGS...]: start the writer on $DB with the project's schema; wait online.
WRITER_LOG=$T/writer.log
writer_start() {
    "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "${SCHEMA:-$ROOT/conf/schema}" \
        ${WRITER_ARGS:-} "$@" >>"$WRITER_LOG" 2>&1 &
    WRITER_PID=$!
    PIDS="$PIDS $WRITER_PID"
    wait_until 15 status_is online || { fail "writer did not come online"; tail -20 "$WRITER_LOG"; return 1; }
}
writer_stop() { kill -TERM "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID"; }
writer_kill() { kill -9 "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null; }

# pub TOPIC-SUFFIX PAYLOAD [mosquitto_pub args]: QoS 2 publish under the prefix.
pub() { t=$1; m=$2; shift 2; mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/$t" -m "$m" "$@"; }

# sql QUERY: run against the test database (read-only use; waits on a busy file).
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }

# rows_are TABLE N: the table has exactly N rows.
rows_are() { [ "$(sql "SELECT count(*) FROM $1")" = "$2" ]; }

# sub_bg FILE TOPIC [ARGS]: subscribe in the background, one message per line, to FILE;
# returns once the subscription is in place.
sub_bg() {
    f=$1; t=$2; shift 2
    _id=sub-$$-$RANDOM$RANDOM
    mosquitto_sub -p "$MQTT_PORT" -i "$_id" -t "$t" -q 1 "$@" >"$f" 2>&1 &
    PIDS="$PIDS $!"
    # The broker logs each SUBSCRIBE (log_type subscribe, set by broker_conf).
    wait_until 10 grep -q "^[^ ]* $_id [0-9] " "$T/broker/mosquitto.log" ||
        note "no SUBSCRIBE from $_id in the broker log after 10 s"
}

# test_schema: conf/schema plus tests/schema in one migrations dir; sets SCHEMA.
test_schema() {
    SCHEMA=$T/schema
    mkdir -p "$SCHEMA"
    cp "$ROOT"/conf/schema/*.sql "$ROOT"/tests/schema/*.sql "$SCHEMA"/
}

# receipts_bg: collect every receipt published to $T-unique reply topics in $T/receipts.
RECEIPTS=$T/receipts
REPLY=receipts/test
receipts_bg() { sub_bg "$RECEIPTS" "$REPLY/#"; }
# receipt ID: wait for the receipt of request ID and print it.
receipt() {
    wait_until 10 grep -q "\"id\":\"$1\"" "$RECEIPTS" || { echo "no receipt for $1"; return 1; }
    grep "\"id\":\"$1\"" "$RECEIPTS" | head -1
}
# req TOPIC-SUFFIX ID JSON-BODY: publish {"id": ID, "reply_to": ..., BODY...} and print
# the receipt. BODY is the request's members without braces.
req() {
    pub "$1" "{\"id\":\"$2\",\"reply_to\":\"$REPLY/$2\",$3}"
    receipt "$2"
}
