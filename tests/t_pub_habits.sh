#!/bin/bash
# mosqlite-pub takes mosquitto_pub's options where they mean the same: -i client id,
# -I client id prefix, -d, -q 2 (any other QoS refused), -V 5 (any other version
# refused), --cert/--key/--insecure against a real broker that requires a client
# certificate; it reads ~/.config/mosqlite-pub and MOSQLITE_* variables under -c and
# the command line; bad JSON in its arguments is named with its byte and what was
# expected; -v without --wait does not claim "applied 0". Bad arguments exit 3. A whole
# request (mosquitto_pub's {"values": ...}, {"set": ...}, {"ops": [...]}) given where the
# row belongs is refused, naming the form to use; a row that only has such a member
# among its columns is sent as it is.
. "$(dirname "$0")/lib.sh"
pub() { "$BIN/mosqlite-pub" "$@"; }
count() { sql "SELECT count(*) FROM builds WHERE name = '$1'"; }
bad() {   # bad DESC WANT-TEXT ARGS...: exit 3 with one stderr line holding WANT-TEXT
    d=$1 want=$2; shift 2
    pub "$@" >/dev/null 2>"$T/bad.err.log"; rc=$?
    check_eq "$d: exit 3" "$rc" 3
    if grep -qF -- "$want" "$T/bad.err.log" && [ "$(wc -l < "$T/bad.err.log")" = 1 ]; then ok "$d: says [$want]"
    else fail "$d: says [$want] (got: $(cat "$T/bad.err.log"))"; fi
}

broker_start
writer_start

# ---- mosquitto_pub's options ----
pub -p "$MQTT_PORT" -i my-client-7 -q 2 -V 5 --wait builds '{"id": 1, "name": "i"}'; rc=$?
check_eq "-i, -q 2, -V 5: exit 0" "$rc" 0
check "-i: the broker saw client id my-client-7" grep -q ' as my-client-7 ' "$T/broker/mosquitto.log"
pub -p "$MQTT_PORT" -I ci-runner- -V mqttv5 --wait builds '{"id": 2, "name": "I"}'; rc=$?
check_eq "-I, -V mqttv5: exit 0" "$rc" 0
check "-I: the client id starts with the prefix" grep -q ' as ci-runner-[0-9A-Z]\{26\} ' "$T/broker/mosquitto.log"
pub -p "$MQTT_PORT" -d builds '{"id": 3, "name": "d"}' 2>"$T/d.err.log"; rc=$?
check_eq "-d: exit 0" "$rc" 0
check "-d: libmosquitto's packet lines on stderr" grep -q 'sending PUBLISH' "$T/d.err.log"
check_eq "the three rows" "$(sql 'SELECT group_concat(name) FROM (SELECT name FROM builds WHERE id <= 3 ORDER BY id)')" "i,I,d"
bad "-q 1" "QoS 2 only" -p "$MQTT_PORT" -q 1 builds '{"id": 4}'
bad "-q 0" "QoS 2 only" -p "$MQTT_PORT" -q 0 builds '{"id": 4}'
bad "-V 311" "MQTT 5 only" -p "$MQTT_PORT" -V 311 builds '{"id": 4}'
bad "-V mqttv31" "MQTT 5 only" -p "$MQTT_PORT" -V mqttv31 builds '{"id": 4}'
bad "-i with -I" "do not go together" -p "$MQTT_PORT" -i a -I b builds '{"id": 4}'
bad "--cert without --key" "--cert and --key go together" -p "$MQTT_PORT" --cert x.crt builds '{"id": 4}'
pub --help | grep -q -- '--id ID .*request id.*-i/--client-id'; check "--help: --id is the request id, -i the client id" [ $? = 0 ]

# ---- -v without --wait ----
pub -p "$MQTT_PORT" -v builds '{"id": 5, "name": "v"}' 2>"$T/v.err.log"; rc=$?
check_eq "-v without --wait: exit 0" "$rc" 0
check "-v without --wait: no 'applied 0'" sh -c "! grep -q 'applied 0' '$T/v.err'"
check "-v without --wait: says sent 1" grep -q 'sent 1 ' "$T/v.err.log"

# ---- config file and environment ----
mkdir -p "$T/home/.config"
printf 'port 1\nwait yes\n' > "$T/home/.config/mosqlite-pub"
HOME=$T/home pub builds '{"id": 6, "name": "f"}' 2>/dev/null; rc=$?
check_eq "~/.config/mosqlite-pub read (port 1 there: cannot connect)" "$rc" 4
HOME=$T/home pub -p "$MQTT_PORT" -v builds '{"id": 6, "name": "f"}' 2>"$T/f.err.log"; rc=$?
check_eq "the command line wins over the file: exit 0" "$rc" 0
check "the file's wait yes took effect" grep -q 'applied 1,' "$T/f.err.log"
HOME=$T/home MOSQLITE_PORT=$MQTT_PORT pub builds '{"id": 7, "name": "e"}'; rc=$?
check_eq "MOSQLITE_PORT wins over the file: exit 0" "$rc" 0
check_eq "rows from the file and the environment" "$(count f),$(count e)" "1,1"
mkdir -p "$T/xdg"
printf 'port %s\n' "$MQTT_PORT" > "$T/xdg/mosqlite-pub"
HOME=$T/home XDG_CONFIG_HOME=$T/xdg pub --wait builds '{"id": 8, "name": "x"}'; rc=$?
check_eq "\$XDG_CONFIG_HOME/mosqlite-pub: exit 0" "$rc" 0
printf 'port %s\n' "$MQTT_PORT" > "$T/c.conf"
MOSQLITE_PORT=1 pub -c "$T/c.conf" --wait builds '{"id": 9, "name": "c"}'; rc=$?
check_eq "-c FILE wins over the environment: exit 0" "$rc" 0
MOSQLITE_PORT=abc pub -p "$MQTT_PORT" builds '{}' 2>"$T/env.err.log"; rc=$?
check_eq "bad MOSQLITE_PORT: exit 3" "$rc" 3
check "bad MOSQLITE_PORT: named" grep -q 'environment MOSQLITE_PORT: port: "abc"' "$T/env.err.log"
printf 'port 1\nbogus 2\n' > "$T/home/.config/mosqlite-pub"
HOME=$T/home pub -p "$MQTT_PORT" builds '{}' 2>"$T/cf.err.log"; rc=$?
check_eq "bad ~/.config/mosqlite-pub: exit 3" "$rc" 3
check "bad ~/.config/mosqlite-pub: file:line" grep -q "$T/home/.config/mosqlite-pub:2: unknown key" "$T/cf.err.log"

# ---- JSON errors give the byte and what was expected ----
bad "trailing comma" 'at byte 9, expected a member name in double quotes, found '"'"'}'"'" -p 1 builds '{"id": 1,}'
bad "missing colon" "at byte 6, expected ':' after the member name, found '7'" -p 1 --op update --where '{"id" 7}' builds '{"a": 1}'
bad "leading zero" '--with: invalid JSON: number "01" at byte 13: leading zeros are not allowed' -p 1 --lines line --with '{"build_id": 01}' build_logs
bad "unterminated string" "expected the closing quote of the string, found the end" -p 1 builds '{"name": "x'

# ---- a whole request where the row belongs: what mosquitto_pub needs is named ----
bad "{\"values\": ...} as the row" \
    "values: {\"values\": ...} is the whole request mosquitto_pub sends, not a row; mosqlite-pub builds it: the row's columns go directly, mosqlite-pub builds '{\"col\": value, ...}'" \
    -p 1 builds '{"values": {"id": 30, "name": "envelope"}}'
bad "--op upsert, {\"values\": ...}" "mosqlite-pub --op upsert builds '{\"col\": value, ...}'" \
    -p 1 --op upsert builds '{"values": {"id": 30}}'
bad "--op update, {\"set\": ..., \"where\": ...}" \
    "values: {\"set\": ...} is the whole request mosquitto_pub sends, not a row; mosqlite-pub builds it: the new values go directly, mosqlite-pub --op update --where '{\"key\": value}' builds '{\"col\": value, ...}'" \
    -p 1 --op update --where '{"id": 30}' builds '{"op": "update", "set": {"name": "x"}, "where": {"id": 30}}'
bad "{\"ops\": [...]} as the row" \
    "values: {\"ops\": [...]} is a whole transaction, not a row: send it as a line of JSON Lines, echo '{\"ops\": [...]}' | mosqlite-pub -" \
    -p 1 builds '{"ops": [{"table": "builds", "values": {"id": 30}}]}'
bad "{\"id\": ..., \"where\": ...} with --op delete's words" "mosqlite-pub --op delete --where '{\"key\": value}' builds" \
    -p 1 builds '{"op": "delete", "where": {"id": 30}}'
# A row that only shares a name with the envelope goes as it is (the writer answers).
pub -p "$MQTT_PORT" --wait builds '{"values": {"a": 1}, "name": "not an envelope"}' 2>"$T/env.err.log"; rc=$?
check_eq "a row with a member named values and a real column: sent, rejected by the writer (exit 1)" "$rc" 1
check "and the writer's words: unknown column \"values\"" grep -q 'unknown column \\\?"values' "$T/env.err.log"
pub -p "$MQTT_PORT" --wait builds '{"id": 31, "where": "home"}' 2>/dev/null; rc=$?
check_eq "a column value that is not an object under an envelope name: sent (the writer answers)" "$rc" 1
check_eq "nothing stored from the envelopes" "$(sql 'SELECT count(*) FROM builds WHERE id IN (30, 31)')" 0
bad "--build-where" "--build-where is not a JSON object: invalid JSON at byte 6" -p 1 --lines line build_logs --build-where '{"id" 7}' -- true
bad "empty --build-where" "--build-where must not be empty" -p 1 --lines line build_logs --build-where '{}' -- true
bad "an array" "values is not a JSON object ({...}) but an array" -p 1 builds '[1]'
bad "trailing text" "at byte 10, expected the end of the text, found 'x'" -p 1 builds '{"id": 1} x'

# ---- TLS with a client certificate (--cert, --key, --insecure) ----
mkdir -p "$T/tls" && (cd "$T/tls" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=habits-ca &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=not-this-host &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 &&
  openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=builder &&
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1
) >"$T/openssl.log" 2>&1 || { fail "openssl"; cat "$T/openssl.log"; exit 1; }
TLS_PORT=$(free_port)
cat > "$T/tls/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
listener $MQTT_PORT 127.0.0.1
listener $TLS_PORT 127.0.0.1
cafile $T/tls/ca.crt
certfile $T/tls/server.crt
keyfile $T/tls/server.key
require_certificate true
persistence true
persistence_location $T/broker/
log_dest file $T/broker/mosquitto.log
log_type error
log_type warning
log_type notice
EOF
[ "$(id -u)" = 0 ] && echo "user root" >> "$T/tls/mosquitto.conf"
broker_stop
mosquitto -c "$T/tls/mosquitto.conf" >>"$T/broker/stdout.log" 2>&1 &
BROKER_PID=$!
PIDS="$PIDS $BROKER_PID"
wait_until 10 port_open "$TLS_PORT" || fail "TLS listener up"
wait_until 15 status_is online || fail "writer back online"
tlspub() { pub -p "$TLS_PORT" --cafile "$T/tls/ca.crt" --timeout 5 "$@"; }
tlspub --cert "$T/tls/client.crt" --key "$T/tls/client.key" --insecure --wait builds '{"id": 20, "name": "tls"}' 2>"$T/tls1.err.log"; rc=$?
check_eq "--cert --key --insecure: applied (exit 0)" "$rc" 0
tlspub --insecure --wait builds '{"id": 21, "name": "no cert"}' 2>/dev/null; rc=$?
check_eq "without --cert: refused by the broker (exit 4)" "$rc" 4
tlspub --cert "$T/tls/client.crt" --key "$T/tls/client.key" --wait builds '{"id": 22, "name": "no insecure"}' 2>/dev/null; rc=$?
check_eq "without --insecure, a server certificate for another host: exit 4" "$rc" 4
check_eq "only the --cert --key --insecure row" "$(sql 'SELECT group_concat(id) FROM builds WHERE id >= 20')" 20
