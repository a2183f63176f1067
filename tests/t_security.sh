#!/bin/bash
# Access control and TLS with conf/secure/: the broker started from that config (ports,
# paths and certificates of this test), users made with make-passwd.sh, a CA and a server
# certificate made here with openssl. Anonymous and wrong-password clients are refused;
# a web-role client that publishes a write gets nothing applied; a producer over TLS is
# applied and gets its receipt; each role reads only what its block allows; an edge
# broker from conf/bridge/ bridges over TLS with the edge role's login, and a producer on
# the edge gets its request applied and its receipt back, also one applied while the edge
# was away. Only the admin role may command the writer on mosqlite/admin: a producer's or
# web user's pause goes nowhere. The
# page's operator (ops-web) logs in on the WebSocket listener, where its commands are
# answered and its test of an operator login (mosqlite/operator/CLIENT_ID) comes back;
# a web user's does not. One password file serves every listener: a login has its ACL
# block's rights wherever it connects. Requests published while the writer is stopped or
# paused are all applied when it returns, and their receipts reach the producer.
# mosqlite-pub and libmosqlite name a publish the broker's ACL refuses at once (exit 1),
# and the log pipe keeps what was refused in its spool for --deliver.
. "$(dirname "$0")/lib.sh"
SEC=$ROOT/conf/secure
WPASS=writer-pw-$$ PPASS=builder-pw-$$ WEBPASS=web-pw-$$ EPASS=edge-pw-$$ OPASS=ops-pw-$$ RPASS=replica-pw-$$
OWPASS=ops-web-pw-$$

# The clients of lib.sh are anonymous: this one logs in as the web user, who may read status.
status() {
    timeout -k 2 3 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t "$PREFIX_TOPIC/status" -C 1 -W 2 2>/dev/null
}

# --- certificates, password files, the broker config ------------------------------------
mkdir -p "$T/sec/certs" "$T/broker"
sh "$SEC/make-certs.sh" "$T/sec/certs" localhost 127.0.0.1 >"$T/openssl.log" 2>&1 ||
    { fail "make-certs.sh"; cat "$T/openssl.log"; exit 1; }
check "make-certs.sh: the server certificate names the host and the address, signed by the CA" \
    bash -c "openssl verify -CAfile '$T/sec/certs/ca.crt' '$T/sec/certs/server.crt' >/dev/null &&
             openssl x509 -in '$T/sec/certs/server.crt' -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1'"
check_eq "make-certs.sh: the keys are readable by their owner only" \
    "$(stat -c %a "$T/sec/certs/server.key" "$T/sec/certs/ca.key" | tr '\n' ' ')" "600 600 "
sh "$SEC/make-passwd.sh" "$T/sec/passwd" writer "$WPASS" builder "$PPASS" web "$WEBPASS" edge-site1 "$EPASS" ops "$OPASS" \
    replica1 "$RPASS" ops-web "$OWPASS" >/dev/null
check "password file holds hashes, not passwords" bash -c "! grep -q '$PPASS' '$T/sec/passwd'"
cp "$SEC/acl" "$T/sec/acl"

MQTT_PORT=$(free_port) WS_PORT=$(free_port) TLS_PORT=$(free_port)
export MQTT_PORT WS_PORT
sed -e "s/^listener 1883 127.0.0.1\$/listener $MQTT_PORT 127.0.0.1/" \
    -e "s/^listener 8883\$/listener $TLS_PORT/" \
    -e "s/^listener 9001\$/listener $WS_PORT/" \
    -e "s|/etc/mosquitto/secure/|$T/sec/|" \
    -e "s|^http_dir .*|http_dir $ROOT/web|" \
    -e "s|^persistence_location .*|persistence_location $T/broker/|" \
    -e "s|^log_dest .*|log_dest file $T/broker/mosquitto.log|" \
    "$SEC/mosquitto.conf" >"$T/broker/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/broker/mosquitto.conf"
broker_start
wait_until 5 port_open "$TLS_PORT" || fail "TLS listener up"
writer_start -u writer -P "$WPASS" -c "$ROOT/conf/mosqlite.conf"

count() { sql "SELECT count(*) FROM build_logs WHERE build_id = $1"; }
rows_for() { [ "$(count "$1")" = "$2" ]; }

# --- anonymous and wrong passwords ------------------------------------------------------
out=$(mosquitto_pub -p "$MQTT_PORT" -q 2 -t mosqlite/write/build_logs -m '{"values":{"build_id":1,"line":"anon"}}' 2>&1)
rc=$?
check "anonymous client refused on the MQTT listener (exit $rc: $out)" [ "$rc" != 0 ]
out=$(mosquitto_pub -p "$TLS_PORT" --cafile "$T/sec/certs/ca.crt" -q 2 -t mosqlite/write/build_logs \
      -m '{"values":{"build_id":1,"line":"anon tls"}}' 2>&1)
rc=$?
check "anonymous client refused on the TLS listener (exit $rc: $out)" [ "$rc" != 0 ]
mosquitto_pub -p "$MQTT_PORT" -u builder -P wrong -q 2 -t mosqlite/write/build_logs \
    -m '{"values":{"build_id":1,"line":"wrong password"}}' >/dev/null 2>&1
check "wrong password refused" [ $? != 0 ]
mosquitto_pub -p "$MQTT_PORT" -u web -P "$WEBPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"values":{"build_id":2,"line":"web on mqtt"}}' 2>/dev/null
mosquitto_pub -p "$MQTT_PORT" -u web -P "$WEBPASS" -V 5 -q 1 -t mosqlite/write \
    -m '{"table":"build_logs","values":{"build_id":2,"line":"web on mqtt v5"}}' 2>&1 | head -2 >"$T/web5.out"
note "web user publishing a write over MQTT 5: $(cat "$T/web5.out")"

# --- the web role writes nothing -------------------------------------------------------
# Over WebSockets with MQTT.js, as the page does (the only client here that speaks it).
ws_pub() {  # USER PASS TOPIC PAYLOAD: exit 0 when connected and published
    node -e '
const mqtt = require(process.argv[1] + "/node_modules/mqtt");
const [,, url, user, pass, topic, payload] = process.argv;
const c = mqtt.connect(url, { username: user, password: pass, reconnectPeriod: 0, connectTimeout: 3000 });
c.on("connect", () => c.publish(topic, payload, { qos: 1 }, () => { c.end(); process.exit(0); }));
c.on("error", (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => process.exit(2), 5000);' "$ROOT" "ws://127.0.0.1:$WS_PORT" "$@"
}
if [ -d "$ROOT/node_modules/mqtt" ] && command -v node >/dev/null; then
    ws_pub web "$WEBPASS" mosqlite/write/build_logs '{"values":{"build_id":2,"line":"web write"}}' 2>"$T/ws.err"
    note "web user over WebSockets publishing a write: exit $? $(cat "$T/ws.err")"
    ws_pub web "$WEBPASS" mosqlite/write '{"table":"build_logs","values":{"build_id":2,"line":"web write 2"}}' 2>/dev/null
    ws_pub builder "$PPASS" mosqlite/write/build_logs '{"values":{"build_id":12,"line":"producer over websockets"}}' 2>/dev/null
    check "a producer's login works on the WebSocket listener too (one password file)" [ $? = 0 ]
    check "... with its ACL block's rights there: its write applied" wait_until 10 rows_for 12 1
    ws_pub "" "" mosqlite/write/build_logs '{"values":{"build_id":2,"line":"anon ws"}}' 2>/dev/null
    check "anonymous refused on the WebSocket listener" [ $? != 0 ]
else
    note "no node + MQTT.js: WebSocket checks skipped"
fi
# A producer request after them, through the same broker: once it is applied, the web
# writes (published before it) would have been applied too if the broker had let them.
timeout -k 2 10 mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"values":{"build_id":2,"line":"producer"}}'
check "producer write on the MQTT listener applied" wait_until 10 rows_for 2 1
check_eq "web-role writes: nothing applied" "$(sql "SELECT count(*) FROM build_logs WHERE line LIKE 'web%' OR line LIKE 'anon%' OR line LIKE '%on ws' OR line LIKE 'wrong%'")" 0

# --- a producer over TLS -------------------------------------------------------------------
out=$("$BIN/mosqlite-pub" -p "$TLS_PORT" --cafile "$T/sec/certs/ca.crt" -u builder -P "$PPASS" --wait \
      --timeout 10 build_logs '{"build_id": 3, "line": "over TLS"}' 2>&1)
rc=$?
check_eq "mosqlite-pub --wait over TLS: applied, receipt read (exit 0) $out" "$rc" 0
check_eq "the TLS producer's row" "$(count 3)" 1
mosquitto_pub -p "$TLS_PORT" --cafile "$T/sec/certs/ca.crt" -u builder -P "$PPASS" -q 2 \
    -t mosqlite/write/build_logs -m '{"values":{"build_id":4,"line":"mosquitto_pub over TLS"}}'
check "mosquitto_pub over TLS applied" wait_until 10 rows_for 4 1
mosquitto_pub -p "$TLS_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"values":{"build_id":5,"line":"plain text on the TLS port"}}' >/dev/null 2>&1
check "plain MQTT on the TLS port refused" [ $? != 0 ]

# --- a publish the broker's ACL refuses: said at once, exit 1, never published again --------
acl_pub() { "$BIN/mosqlite-pub" -p "$MQTT_PORT" "$@"; }
want_acl="refused by the broker's ACL: this user may not publish on mosqlite/write/build_logs"
acl_pub -u web -P "$WEBPASS" --wait --timeout 10 build_logs '{"build_id": 92, "line": "web"}' 2>"$T/acl1.err"; rc=$?
check_eq "mosqlite-pub --wait as the web user: exit 1 (not 2, unconfirmed)" "$rc" 1
check_eq "and one line naming the ACL and the topic" "$(sed 's/^.*error: //' "$T/acl1.err")" "$want_acl"
acl_pub -u web -P "$WEBPASS" --timeout 10 build_logs '{"build_id": 92, "line": "web"}' 2>"$T/acl2.err"; rc=$?
check_eq "without --wait: exit 1 too, the same words" "$rc.$(sed 's/^.*error: //' "$T/acl2.err")" "1.$want_acl"
# The ops role may write mosqlite/write, not a table's own topic.
acl_pub -u ops -P "$OPASS" --wait --timeout 10 build_logs '{"build_id": 92, "line": "ops"}' 2>"$T/acl3.err"; rc=$?
check_eq "ops on mosqlite/write/build_logs: refused, exit 1" "$rc.$(sed 's/^.*error: //' "$T/acl3.err")" "1.$want_acl"
echo '{"table": "build_logs", "values": {"build_id": 92, "line": "ops on write"}}' |
    acl_pub -u ops -P "$OPASS" --wait --timeout 10 - 2>"$T/acl4.err"; rc=$?
check_eq "ops on mosqlite/write (JSON Lines): applied, exit 0 $(cat "$T/acl4.err")" "$rc.$(count 92)" "0.1"
printf '{"table": "build_logs", "values": {"build_id": 93, "line": "%s"}}\n' a b c d e |
    acl_pub -u web -P "$WEBPASS" --wait --timeout 10 - 2>"$T/acl5.err"; rc=$?
check_eq "JSON Lines as the web user: exit 1" "$rc" 1
check "the first refusal named, with its line" \
    grep -q "error: line 1: refused by the broker's ACL: this user may not publish on mosqlite/write\$" "$T/acl5.err"
check_eq "only the first is said (every line goes to that topic)" "$(grep -c 'refused by the broker.s ACL' "$T/acl5.err")" 1
# The log pipe keeps what the broker refuses, for --deliver under a login that may.
printf 'one\ntwo\n' | acl_pub -u web -P "$WEBPASS" --lines line --with '{"build_id": 94}' --no-tee \
    --spool "$T/acl-spool" --linger 5 build_logs 2>"$T/acl6.err"; rc=$?
check_eq "log pipe as the web user: exit 0 (the pipe never fails)" "$rc" 0
check "it names the ACL and keeps the lines in the spool" \
    grep -q "refused by the broker's ACL: this user may not publish on mosqlite/write: delivery stopped; the lines stay in the spool $T/acl-spool" "$T/acl6.err"
acl_pub -u builder -P "$PPASS" --deliver "$T/acl-spool" 2>"$T/acl7.err"; rc=$?
check_eq "--deliver as the producer: exit 0, both lines stored $(cat "$T/acl7.err")" "$rc.$(count 94)" "0.2"
check_eq "nothing refused was stored" "$(count 93)" 0
# The library says it to its caller: MOSQLITE_REFUSED, not a request republished until the timeout.
cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -I"$ROOT/publisher" -o "$T/pub_lib_test" \
    "$ROOT/tests/c/pub_lib_test.c" "$ROOT/build/libmosqlite.a" $(pkg-config --cflags --libs libmosquitto libcjson) -lpthread &&
    "$T/pub_lib_test" refused "$MQTT_PORT" web "$WEBPASS"
check "libmosqlite: the refusal reported to the caller" [ $? = 0 ]

# --- reading: each role sees only its own topics ----------------------------------------------
check "web reads the status" status_is online
sub_as() {  # USER PASS TOPIC [ARGS]: first message within 2 s
    u=$1 p=$2 t=$3; shift 3
    timeout -k 2 4 mosquitto_sub -p "$MQTT_PORT" -u "$u" -P "$p" -t "$t" -C 1 -W 2 "$@" 2>/dev/null
}
check_eq "producer cannot read the status" "$(sub_as builder "$PPASS" mosqlite/status)" ""
check_eq "producer cannot read another client's receipts" \
    "$(sub_as builder "$PPASS" 'mosqlite/receipts/#' -i not-the-owner -R)" ""
# Events: a subscriber per role, then one write.
( sub_as builder "$PPASS" 'mosqlite/events/#' -W 4 >"$T/ev.builder" ) &
EV=$!
( sub_as web "$WEBPASS" 'mosqlite/events/#' -W 4 >"$T/ev.web" ) &
EV2=$!
( sub_as web "$WEBPASS" 'mosqlite/write/#' -W 4 >"$T/wr.web" ) &
EV3=$!
sleep 0.5
timeout -k 2 10 mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"values":{"build_id":6,"line":"event"}}'
wait "$EV" "$EV2" "$EV3"
check_eq "producer cannot read events" "$(cat "$T/ev.builder")" ""
check "web reads events" grep -q '"line":"event"' "$T/ev.web"
check_eq "web cannot read other clients' write requests" "$(cat "$T/wr.web")" ""
# The page's query path: the web user asks, the answer comes on its own reply topic.
# Web users log in on the WebSocket listener only, which mosquitto_sub cannot speak: MQTT.js.
if [ -d "$ROOT/node_modules/mqtt" ] && command -v node >/dev/null; then
    ans=$(node -e '
const mqtt = require(process.argv[1] + "/node_modules/mqtt");
const [,, url, pass] = process.argv;
const id = "mosqlite-web-test";
const c = mqtt.connect(url, { clientId: id, username: "web", password: pass, reconnectPeriod: 0 });
c.on("connect", () => c.subscribe(["mosqlite/reply/" + id + "/#", "mosqlite/status", "mosqlite/write/#"], { qos: 1 }, (e, g) => {
  console.log("granted " + g.map((x) => x.topic + "=" + x.qos).join(" "));
  c.publish("mosqlite/query", JSON.stringify({ query: "recent_builds", params: { before_at: "9999", before_id: 1e15, status: "", name: "", limit: 20 }, reply_to: "mosqlite/reply/" + id + "/1" }), { qos: 1 });
}));
c.on("message", (t, m) => { if (t.startsWith("mosqlite/reply/")) { console.log("answer " + m); c.end(); process.exit(0); } });
c.on("error", (e) => { console.log("error " + e.message); process.exit(1); });
setTimeout(() => { console.log("timeout"); process.exit(2); }, 5000);' "$ROOT" "ws://127.0.0.1:$WS_PORT" "$WEBPASS" 2>&1)
    note "web query: $ans"
    check "web runs a named query and reads its answer" grep -q '^answer {"query":"recent_builds","rows":\[' <<<"$ans"
fi
# The page's operator, and a web user doing what the page's operator does.
ws_operator() {  # USER PASS: "echo" if its message on mosqlite/operator/CLIENT_ID came back, "answer ..." per answer
    node -e '
const mqtt = require(process.argv[1] + "/node_modules/mqtt");
const [,, url, user, pass] = process.argv;
const id = "mosqlite-web-probe-" + user;
const c = mqtt.connect(url, { clientId: id, username: user, password: pass, reconnectPeriod: 0, connectTimeout: 3000 });
const out = [];
c.on("connect", () => c.subscribe(["mosqlite/operator/" + id, "mosqlite/reply/" + id + "/#"], { qos: 1 }, () => {
  c.publish("mosqlite/operator/" + id, "{}", { qos: 1 });
  c.publish("mosqlite/admin", JSON.stringify({ cmd: "stats", reply_to: "mosqlite/reply/" + id + "/1" }), { qos: 1 });
}));
c.on("message", (t, m) => out.push(t.startsWith("mosqlite/operator/") ? "echo" : "answer " + m.toString().slice(0, 40)));
c.on("error", (e) => { console.log("error " + e.message); process.exit(1); });
setTimeout(() => { console.log(out.join("\n")); c.end(); process.exit(0); }, 2000);' "$ROOT" "ws://127.0.0.1:$WS_PORT" "$@"
}
if [ -d "$ROOT/node_modules/mqtt" ] && command -v node >/dev/null; then
    out=$(ws_operator ops-web "$OWPASS" 2>&1)
    note "ops-web on the WebSocket listener: $(echo $out)"
    check "the page's operator (ops-web): its operator test comes back" grep -qx echo <<<"$out"
    check "the page's operator (ops-web): its command on mosqlite/admin is answered" \
        grep -q '^answer {"cmd":"stats","ok":true' <<<"$out"
    out=$(ws_operator web "$WEBPASS" 2>&1)
    check_eq "a web user: no operator test back, its command never reaches the writer" "$out" ""
fi
( sub_as ops-web "$OWPASS" 'mosqlite/reply/ops-web-mqtt/#' -i ops-web-mqtt -W 4 >"$T/opsweb.mqtt" ) &
OW=$!
sleep 0.5
mosquitto_pub -p "$MQTT_PORT" -u ops-web -P "$OWPASS" -q 1 -t mosqlite/admin \
    -m '{"cmd":"stats","reply_to":"mosqlite/reply/ops-web-mqtt/1"}' >/dev/null 2>&1
wait "$OW"
check "ops-web's login works on the MQTT listener too, with its ACL block's rights (one password file)" \
    grep -q '"cmd":"stats","ok":true' "$T/opsweb.mqtt"
check "broker log shows the refusals" grep -q "not authorised\|not authorized\|Bad username or password\|disconnected, not authorised" "$T/broker/mosquitto.log"

# --- the admin topic: only the admin role ------------------------------------------------
# The producer and the web user try to pause the writer; then the admin asks for stats on
# its own reply topic: answered, and not paused.
mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 1 -t mosqlite/admin \
    -m '{"cmd":"pause","reply_to":"mosqlite/receipts/x"}' 2>/dev/null
mosquitto_pub -p "$MQTT_PORT" -u web -P "$WEBPASS" -q 1 -t mosqlite/admin \
    -m '{"cmd":"pause","reply_to":"mosqlite/reply/x/1"}' 2>/dev/null
( timeout -k 2 8 mosquitto_sub -p "$MQTT_PORT" -u ops -P "$OPASS" -i ops-test -t 'mosqlite/reply/ops-test/#' \
      -C 1 -W 6 >"$T/ops.answer" 2>&1 ) &
OPS=$!
sleep 0.5
mosquitto_pub -p "$MQTT_PORT" -u ops -P "$OPASS" -q 1 -t mosqlite/admin \
    -m '{"cmd":"stats","reply_to":"mosqlite/reply/ops-test/1"}'
wait "$OPS"
check "the admin role's command is answered ($(cut -c1-60 "$T/ops.answer"))" \
    grep -q '"cmd":"stats","ok":true' "$T/ops.answer"
check "the producer's and the web user's pause were refused by the broker" \
    bash -c "grep -q '\"paused\":false' '$T/ops.answer' && ! grep -q 'admin pause' '$WRITER_LOG'"
# The operator's failover rule reads the replicas' status; a cancel of a scheduled write
# goes on mosqlite/write.
mosquitto_pub -p "$MQTT_PORT" -u replica1 -P "$RPASS" -q 1 -r -t mosqlite/replica/site1/status \
    -m '{"state":"following","id":"site1","lag_commits":0}'
check "the admin role reads a replica's status" \
    grep -q '"lag_commits":0' <<<"$(sub_as ops "$OPASS" 'mosqlite/replica/+/status')"
check_eq "the producer cannot read a replica's status" "$(sub_as builder "$PPASS" 'mosqlite/replica/+/status' -W 1)" ""
mosquitto_pub -p "$MQTT_PORT" -u replica1 -P "$RPASS" -q 1 -r -t mosqlite/replica/site1/status -n
timeout -k 2 10 mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"id":"sched-ops-1","delay_ms":600000,"values":{"build_id":10,"line":"nightly"}}'
sched_n() { [ "$(sql "SELECT count(*) FROM mosqlite_scheduled WHERE id = 'sched-ops-1'")" = "$1" ]; }
check "a producer's scheduled write waits" wait_until 10 sched_n 1
( timeout -k 2 8 mosquitto_sub -p "$MQTT_PORT" -u ops -P "$OPASS" -i ops-cancel -t 'mosqlite/receipts/ops-cancel' \
      -C 1 -W 6 >"$T/ops.cancel" 2>&1 ) &
OPS=$!
sleep 0.5
mosquitto_pub -p "$MQTT_PORT" -u ops -P "$OPASS" -q 2 -t mosqlite/write \
    -m '{"cancel":"sched-ops-1","reply_to":"mosqlite/receipts/ops-cancel"}'
wait "$OPS"
check "the admin role cancels it on mosqlite/write, and reads the receipt ($(cut -c1-80 "$T/ops.cancel"))" \
    grep -q '"status":"cancelled","cancel":"sched-ops-1"' "$T/ops.cancel"
check "the cancelled write is no longer scheduled" wait_until 5 sched_n 0
check_eq "the producer cannot read the hook failures" "$(sub_as builder "$PPASS" mosqlite/hooks -W 1)" ""

# --- reply_to cannot aim the writer at another role's topics ------------------------------
# The writer may publish status and events, so the ACL lets its receipts through to any
# topic a producer names in reply_to: a receipt must not land on the status topic.
( timeout -k 2 4 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t mosqlite/status -W 3 >"$T/st.web" 2>/dev/null ) &
ST=$!
sleep 0.5
timeout -k 2 10 mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"id":"spoof-1","reply_to":"mosqlite/status","values":{"build_id":7,"line":"spoof"}}'
wait "$ST"
check "a producer's reply_to cannot put a receipt on mosqlite/status" bash -c "! grep -q spoof-1 '$T/st.web'"
note "status topic saw: $(grep spoof-1 "$T/st.web")"

# --- a receipt the broker refuses costs the writer nothing --------------------------------
# reply_to outside the writer's ACL: the broker refuses the receipt. With Mosquitto 2.0 and
# max_queued_messages 0 it also dropped the writer's control connection: the Last Will
# (offline) reached subscribers and the events of the next commits were lost. A $ topic
# is refused by the writer itself, with its reason.
( timeout -k 2 6 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t mosqlite/status -W 5 >"$T/flap.st" 2>/dev/null ) &
ST=$!
( timeout -k 2 6 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t mosqlite/events/build_logs -W 5 >"$T/flap.ev" 2>/dev/null ) &
EV=$!
( timeout -k 2 6 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t mosqlite/rejected -W 5 >"$T/flap.rej" 2>/dev/null ) &
RJ=$!
sleep 0.5
for i in 1 2 3; do
    mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
        -m "{\"id\":\"acl-$i\",\"reply_to\":\"elsewhere/receipts\",\"values\":{\"build_id\":9,\"line\":\"acl $i\"}}"
    mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
        -m "{\"id\":\"sys-$i\",\"reply_to\":\"\$SYS/x\",\"values\":{\"build_id\":9,\"line\":\"sys $i\"}}"
    mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
        -m "{\"values\":{\"build_id\":9,\"line\":\"after $i\"}}"
done
wait "$ST" "$EV" "$RJ"
check_eq "receipts refused by the broker: every write applied" "$(count 9)" 6
check "no offline status while the broker refused receipts" bash -c "! grep -q offline '$T/flap.st'"
check_eq "no event lost (one per write)" "$(grep -o '"line":"[a-z]* [0-9]"' "$T/flap.ev" | sort -u | wc -l)" 6
check "the writer kept its control connection" bash -c "! grep -q 'control connection lost' '$WRITER_LOG'"
check "reply_to \$SYS/x rejected with its reason, naming the id" \
    grep -q '"id":"sys-1","error":"\\"reply_to\\" may not start with \\"\$\\"' "$T/flap.rej"
note "status during the refusals: $(tr '\n' ' ' <"$T/flap.st" | cut -c1-300)"

# --- requests sent while the writer is away: every one applied, every receipt back -------
# The broker keeps them in the writer's persistent session while it is stopped (SIGTERM, a
# clean stop) and while it is paused (it closes its request session), and must queue each
# one past the ACL for a client that is not connected. The producer's receipts come on its
# own receipts topic, read by a subscriber of the producer's (same user, that client id).
AWAY=20
away_rows() { [ "$(count "$1")" = "$AWAY" ]; }
away_receipts() { grep -c "\"id\":\"$1-[0-9]*\",\"status\":\"applied\"" "$T/away.receipts"; }
away_received() { [ "$(away_receipts "$1")" = "$AWAY" ]; }
away_send() {  # BUILD_ID LABEL: AWAY requests as the producer, with ids, QoS 2
    for i in $(seq 1 "$AWAY"); do
        mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -i builder-away-pub -q 2 -t mosqlite/write/build_logs \
            -m "{\"id\":\"$2-$i\",\"reply_to\":\"mosqlite/receipts/builder-away/$2-$i\",\"values\":{\"build_id\":$1,\"line\":\"$2 $i\"}}" ||
            fail "publish $2-$i"
    done
}
mosquitto_sub -p "$MQTT_PORT" -u builder -P "$PPASS" -i builder-away -q 1 -t 'mosqlite/receipts/builder-away/#' \
    >"$T/away.receipts" 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
writer_stop
check_eq "writer stopped cleanly (SIGTERM)" "$?" 0
away_send 21 stopped
writer_start -u writer -P "$WPASS" -c "$ROOT/conf/mosqlite.conf"
wait_until 20 away_rows 21
check_eq "$AWAY requests published while the writer was stopped: all applied when it starts" "$(count 21)" "$AWAY"
wait_until 10 away_received stopped
check_eq "... and their receipts reach the producer" "$(away_receipts stopped)" "$AWAY"

admin_as_ops() {  # CMD: run it as the admin role and print its answer
    ( timeout -k 2 8 mosquitto_sub -p "$MQTT_PORT" -u ops -P "$OPASS" -i ops-away -t 'mosqlite/reply/ops-away/#' \
          -C 1 -W 6 >"$T/ops.away" 2>&1 ) &
    _w=$!
    sleep 0.5
    mosquitto_pub -p "$MQTT_PORT" -u ops -P "$OPASS" -q 1 -t mosqlite/admin \
        -m "{\"cmd\":\"$1\",\"reply_to\":\"mosqlite/reply/ops-away/$1\"}"
    wait "$_w"
    cat "$T/ops.away"
}
check "the admin role pauses the writer" grep -q '"cmd":"pause","ok":true' <<<"$(admin_as_ops pause)"
away_send 22 paused
check_eq "nothing applied while paused" "$(count 22)" 0
check "the admin role resumes it" grep -q '"cmd":"resume","ok":true' <<<"$(admin_as_ops resume)"
wait_until 20 away_rows 22
check_eq "$AWAY requests published while the writer was paused: all applied when it resumes" "$(count 22)" "$AWAY"
wait_until 10 away_received paused
check_eq "... and their receipts reach the producer" "$(away_receipts paused)" "$AWAY"

# --- an edge broker bridged over TLS with the edge role's login (conf/bridge/) --------------
E=$T/edge
mkdir -p "$E"
sh "$SEC/make-passwd.sh" "$E/passwd" builder "$PPASS" >/dev/null
cp "$SEC/acl" "$E/acl"
chmod 600 "$E/acl"
EDGE_PORT=$(free_port)
# Only ports, paths and secrets change: the TLS settings and the login are the shipped ones.
sed -e "s/^listener 1883 127.0.0.1\$/listener $EDGE_PORT 127.0.0.1/" \
    -e "s|^bridge_cafile .*|bridge_cafile $T/sec/certs/ca.crt|" \
    -e "s|/etc/mosquitto/bridge/|$E/|" \
    -e "s|^persistence_location .*|persistence_location $E/|" \
    -e "s|^log_dest .*|log_dest file $E/mosquitto.log|" \
    -e "s|^address .*|address localhost:$TLS_PORT|" \
    -e "s|^remote_password .*|remote_password $EPASS|" \
    -e "s|^restart_timeout .*|restart_timeout 1|" \
    "$ROOT/conf/bridge/mosquitto.conf" >"$E/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$E/mosquitto.conf"
mosquitto -c "$E/mosquitto.conf" >"$E/stdout.log" 2>&1 &
EDGE_PID=$!
PIDS="$PIDS $EDGE_PID"
check "edge broker up" wait_until 10 port_open "$EDGE_PORT"
edge_bridged() { grep -q "New bridge connected .* as mosqlite-edge-site1 .*u'edge-site1'" "$T/broker/mosquitto.log"; }
check "the edge's bridge logs in over TLS as edge-site1" wait_until 15 edge_bridged
out=$("$BIN/mosqlite-pub" -p "$EDGE_PORT" -u builder -P "$PPASS" --wait --timeout 20 \
      build_logs '{"build_id": 8, "line": "through the edge"}' 2>&1)
rc=$?
check_eq "mosqlite-pub --wait on the edge: applied, receipt back over the bridge (exit 0) $out" "$rc" 0
check_eq "the edge producer's row" "$(count 8)" 1
# A bridge whose login is wrong gets nothing through.
sed -e "s|^remote_password .*|remote_password wrong|" -e "s|^connection .*|connection wrong-login|" \
    -e "s|^remote_clientid .*|remote_clientid mosqlite-edge-wrong|" \
    -e "s/^listener $EDGE_PORT /listener $(free_port) /" \
    -e "s|^persistence .*|persistence false|" -e "s|$E/mosquitto.log|$E/wrong.log|" \
    "$E/mosquitto.conf" >"$E/wrong.conf"
mosquitto -c "$E/wrong.conf" >"$E/wrong.stdout" 2>&1 &
PIDS="$PIDS $!"
wrong_refused() { grep -q "mosqlite-edge-wrong.*\(not authori[sz]ed\|Bad username or password\)" "$T/broker/mosquitto.log"; }
check "a bridge with a wrong password is refused" wait_until 15 wrong_refused
# While the edge is away, the central broker keeps the receipts for the edge's bridge in
# its persistent session, and hands them over when the bridge is back: a producer of the
# edge (a persistent session there too) gets the receipt of its request applied meanwhile.
timeout -k 2 5 mosquitto_sub -p "$EDGE_PORT" -u builder -P "$PPASS" -i edge-away -c -q 1 \
    -t 'mosqlite/receipts/edge-away/#' -W 1 >/dev/null 2>&1
kill "$EDGE_PID" 2>/dev/null; wait "$EDGE_PID" 2>/dev/null
timeout -k 2 10 mosquitto_pub -p "$MQTT_PORT" -u builder -P "$PPASS" -q 2 -t mosqlite/write/build_logs \
    -m '{"id":"edge-away-1","reply_to":"mosqlite/receipts/edge-away/1","values":{"build_id":23,"line":"edge away"}}'
check "a request applied while the edge is away" wait_until 10 rows_for 23 1
mosquitto -c "$E/mosquitto.conf" >>"$E/stdout.log" 2>&1 &
EDGE_PID=$!
PIDS="$PIDS $EDGE_PID"
wait_until 10 port_open "$EDGE_PORT" || fail "edge broker up again"
out=$(timeout -k 2 25 mosquitto_sub -p "$EDGE_PORT" -u builder -P "$PPASS" -i edge-away -c -q 1 \
      -t 'mosqlite/receipts/edge-away/#' -C 1 -W 20 2>&1)
check "its receipt, kept by the central broker for the edge, reaches the producer on the edge ($out)" \
    grep -q '"id":"edge-away-1","status":"applied"' <<<"$out"
kill "$EDGE_PID" 2>/dev/null; wait "$EDGE_PID" 2>/dev/null
