#!/bin/bash
# t_web.sh: the page (web/) in headless Debian Chromium, driven by playwright-core,
# against a real broker that serves it (http_dir) and a real writer. The checks are in
# tests/web/page.test.js (and, first, tests/web/mqtt.test.js: the page's MQTT client
# against a fake WebSocket in node); this script starts the broker and the writer, seeds builds, a
# long build log, a coloured one and one of 50,000 lines, and runs the lib.sh helpers
# the page test asks for on its stdout ("@@ writer_kill", "@@ broker_stop", ...),
# answering "done RC" on its stdin. A second broker, with logins and a TLS WebSocket
# listener (a self-signed certificate made here), serves the page for the login checks.
# A third one, made from conf/secure/ with a writer of its own, serves it for an
# operator's actions and a viewer's lack of them (tests/web/act.test.js, run second), and
# for builds run by the real wrapper: attempts, and a cancel (tests/web/builds.test.js),
# and for the Jobs view, with a worker (builder-arm1) simulated by mosquitto_rr and
# mosquitto_pub (tests/web/jobs.test.js).
# SCREENSHOT=path saves the desktop screenshot there (the pictures in README.md and
# docs/page.md come from tests/web/screenshots.sh).
. "$(dirname "$0")/lib.sh"

if [ "${MOSQLITE_NO_BROWSER:-}" = 1 ]; then note "skipped: MOSQLITE_NO_BROWSER=1"; exit 0; fi
for need in "$ROOT/web/index.html" "$ROOT/node_modules/playwright-core/package.json" /usr/bin/chromium; do
    [ -e "$need" ] || { fail "page test: $need missing (run make deps; make web)"; exit 1; }
done

# The page's MQTT client alone, against a fake WebSocket (no broker, no browser).
out=$(node "$ROOT/tests/web/mqtt.test.js" 2>&1); rc=$?
printf '%s\n' "$out"
case $out in
    *"not ok"*) NFAIL=$((NFAIL + 1)) ;;
    *) [ "$rc" = 0 ] || fail "tests/web/mqtt.test.js exited with status $rc" ;;
esac

# The writer's config: the project's, with the page's named queries.
CONF=$ROOT/conf/mosqlite.conf
WRITER_ARGS="-c $CONF"

broker_start
writer_start || exit 1

# Seed: six builds, 2,500 log lines of build 1413 (three query pages) and 300 of 1412.
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.000Z; }
pub write/builds "{\"values\":{\"id\":1408,\"name\":\"firmware/main @9c04e7a\",\"status\":\"passed\",\"started_at\":\"$(at '-71 min')\",\"finished_at\":\"$(at '-63 min')\"}}"
pub write/builds "{\"values\":{\"id\":1409,\"name\":\"web/app @e1d2a90\",\"status\":\"failed\",\"started_at\":\"$(at '-55 min')\",\"finished_at\":\"$(at '-52 min')\"}}"
pub write/builds "{\"values\":{\"id\":1410,\"name\":\"firmware/rel-2.4 @7be3310\",\"status\":\"cancelled\",\"started_at\":\"$(at '-40 min')\",\"finished_at\":\"$(at '-39 min')\"}}"
pub write/builds "{\"values\":{\"id\":1411,\"name\":\"web/app @41fa0c2\",\"status\":\"passed\",\"started_at\":\"$(at '-31 min')\",\"finished_at\":\"$(at '-27 min')\"}}"
pub write/builds "{\"values\":{\"id\":1412,\"name\":\"bootloader/main @0d9e5b1\",\"status\":\"running\",\"started_at\":\"$(at '-9 min')\"}}"
pub write/builds "{\"values\":{\"id\":1413,\"name\":\"firmware/main @a3f9c21\",\"status\":\"running\",\"started_at\":\"$(at '-6 min')\"}}"
awk 'BEGIN {
    split("drivers/uart drivers/spi drivers/i2c net/tcp net/dhcp fs/lfs core/sched core/heap app/ota app/cli", m, " ");
    for (i = 1; i <= 2500; i++)
        printf "{\"values\":{\"build_id\":1413,\"line\":\"[%3d%%] Building C object src/CMakeFiles/fw.dir/%s_%04d.c.o\"}}\n", int(i * 90 / 2500), m[i % 10 + 1], i;
    for (i = 1; i <= 300; i++)
        printf "{\"values\":{\"build_id\":1412,\"line\":\"CC boot/stage%d/obj_%03d.o\"}}\n", i % 2 + 1, i;
}' | mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l
# Build 1417: a coloured log (ANSI SGR: 16 colours, bold, 256 colours, true colour).
pub write/builds '{"values":{"id":1417,"name":"lint @c0105ed","status":"failed","exit_code":1}}'
E='\u001b'
for l in "${E}[1;31merror:${E}[0m link failed" "${E}[38;5;208morange 256${E}[0m and ${E}[38;2;1;2;3mtrue colour${E}[0m" \
         "${E}[1mbold${E}[22m plain ${E}[32mgreen${E}[39m" "${E}[31m<img src=x onerror=window.__xss=3>${E}[0m" "no colour at all"; do
    case $l in *error:*) st=stderr;; *) st=stdout;; esac
    pub write/build_logs "{\"values\":{\"build_id\":1417,\"line\":\"$l\",\"stream\":\"$st\"}}"
done
# Build 1418: 50,000 lines, in 50 transactions of 1,000.
pub write/builds '{"values":{"id":1418,"name":"firmware/full @7be3310","status":"passed","exit_code":0,"duration_ms":2882000}}'
awk 'BEGIN {
    for (t = 0; t < 50; t++) {
        printf "{\"ops\":[";
        for (i = 1; i <= 1000; i++)
            printf "%s{\"table\":\"build_logs\",\"values\":{\"build_id\":1418,\"line\":\"[%3d%%] Building C object src/CMakeFiles/full.dir/lib/part_%05d.c.o\"}}", (i > 1 ? "," : ""), int((t * 1000 + i) / 500), t * 1000 + i;
        printf "]}\n";
    }
}' | mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write" -l
wait_until 120 rows_are build_logs 52805 || { fail "seed: build_logs has $(sql 'SELECT count(*) FROM build_logs') rows, want 52805"; exit 1; }
note "seeded $(sql 'SELECT count(*) FROM builds') builds, $(sql 'SELECT count(*) FROM build_logs') log lines"

# The second broker: logins required on its WebSocket listeners, one of them TLS. One
# password file and one ACL for every listener, as in conf/secure/mosquitto.conf.
SEC=$T/secure
mkdir -p "$SEC"
SEC_PASS=pw-$RANDOM$RANDOM
mosquitto_passwd -b -c "$SEC/passwd" web "$SEC_PASS" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$SEC/key.pem" -out "$SEC/cert.pem" 2>/dev/null
chmod 644 "$SEC/key.pem" "$SEC/passwd"
SEC_MQTT=$(free_port) SEC_WS=$(free_port) SEC_WSS=$(free_port)
cat >"$SEC/mosquitto.conf" <<SECCONF
per_listener_settings false
allow_anonymous false
password_file $SEC/passwd
acl_file $ROOT/conf/secure/acl
listener $SEC_MQTT 127.0.0.1
listener $SEC_WS 127.0.0.1
protocol websockets
http_dir $ROOT/web
listener $SEC_WSS 127.0.0.1
protocol websockets
http_dir $ROOT/web
certfile $SEC/cert.pem
keyfile $SEC/key.pem
log_dest file $SEC/mosquitto.log
SECCONF
[ "$(id -u)" = 0 ] && echo "user root" >> "$SEC/mosquitto.conf"
mosquitto -c "$SEC/mosquitto.conf" >>"$SEC/stdout.log" 2>&1 &
PIDS="$PIDS $!"
wait_until 10 port_open "$SEC_WSS" || note "the login broker did not start: $(cat "$SEC"/*.log)"

# A third broker, made from conf/secure/ as a deployment would be (its mosquitto.conf,
# acl, make-passwd.sh and make-certs.sh; this test's ports and paths), with a writer and a
# database of its own: the page's operator (ops-web) and viewer (web) log in on its
# WebSocket listener (tests/web/act.test.js).
OPS=$T/ops
mkdir -p "$OPS/certs" "$OPS/broker"
OPS_DB=$OPS/ops.db OPS_LOG=$OPS/writer.log
OPS_WPASS=writer-$RANDOM$RANDOM OPS_BPASS=builder-$RANDOM$RANDOM OPS_APASS=ops-$RANDOM$RANDOM
OPS_WEBPASS=web-$RANDOM$RANDOM OPS_OPPASS=opsweb-$RANDOM$RANDOM OPS_WKPASS=worker-$RANDOM$RANDOM
sh "$ROOT/conf/secure/make-certs.sh" "$OPS/certs" localhost 127.0.0.1 >"$OPS/openssl.log" 2>&1 ||
    fail "make-certs.sh: $(cat "$OPS/openssl.log")"
sh "$ROOT/conf/secure/make-passwd.sh" "$OPS/passwd" writer "$OPS_WPASS" builder "$OPS_BPASS" ops "$OPS_APASS" \
    web "$OPS_WEBPASS" ops-web "$OPS_OPPASS" builder-arm1 "$OPS_WKPASS" >/dev/null
cp "$ROOT/conf/secure/acl" "$OPS/acl"
chmod 600 "$OPS/acl"
OPS_MQTT=$(free_port) OPS_WS=$(free_port) OPS_TLS=$(free_port)
sed -e "s/^listener 1883 127.0.0.1\$/listener $OPS_MQTT 127.0.0.1/" \
    -e "s/^listener 8883\$/listener $OPS_TLS/" \
    -e "s/^listener 9001\$/listener $OPS_WS/" \
    -e "s|/etc/mosquitto/secure/|$OPS/|" \
    -e "s|^http_dir .*|http_dir $ROOT/web|" \
    -e "s|^persistence_location .*|persistence_location $OPS/broker/|" \
    -e "s|^log_dest .*|log_dest file $OPS/broker/mosquitto.log|" \
    "$ROOT/conf/secure/mosquitto.conf" >"$OPS/broker/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$OPS/broker/mosquitto.conf"
ops_broker_start() {
    mosquitto -c "$OPS/broker/mosquitto.conf" >>"$OPS/broker/stdout.log" 2>&1 &
    OPS_BROKER=$!
    PIDS="$PIDS $OPS_BROKER"
    wait_until 10 port_open "$OPS_WS" && wait_until 10 port_open "$OPS_MQTT"
}
ops_broker_stop() { kill -STOP "$OPS_BROKER"; }       # frozen: its sockets stay open, nothing is read
ops_broker_kill() { kill -9 "$OPS_BROKER"; kill -CONT "$OPS_BROKER" 2>/dev/null; wait "$OPS_BROKER" 2>/dev/null; return 0; }
ops_status() {
    timeout -k 2 3 mosquitto_sub -p "$OPS_MQTT" -u ops -P "$OPS_APASS" -t "$PREFIX_TOPIC/status" -C 1 -W 2 2>/dev/null
}
ops_online() { ops_status | grep -q '"state":"online"'; }
ops_broker_start || fail "the conf/secure broker did not start: $(cat "$OPS"/broker/*.log)"
"$BIN/mosqlite-writer" -p "$OPS_MQTT" -u writer -P "$OPS_WPASS" --db "$OPS_DB" --schema "$ROOT/conf/schema" \
    -c "$CONF" >>"$OPS_LOG" 2>&1 &
OPS_WRITER=$!
PIDS="$PIDS $OPS_WRITER"
# Frozen, the writer stays connected and the broker keeps what comes for it in its session.
ops_writer_stop() { kill -STOP "$OPS_WRITER"; }
ops_writer_cont() { kill -CONT "$OPS_WRITER"; }
wait_until 15 ops_online || { fail "the conf/secure broker's writer did not come online"; tail -20 "$OPS_LOG"; }

export T DB MQTT_PORT WS_PORT ROOT PREFIX_TOPIC SEC_WS SEC_WSS SEC_PASS BIN
export OPS_DB OPS_LOG OPS_MQTT OPS_WS OPS_BPASS OPS_APASS OPS_WEBPASS OPS_OPPASS OPS_WKPASS
# run_page_test FILE: a Chromium test, with the lib.sh helpers it asks for.
run_page_test() {
    coproc PAGE { cd "$ROOT" && exec node "$1" 2>&1; }
    NODE_PID=$PAGE_PID
    PIDS="$PIDS $NODE_PID"
    exec 5<&"${PAGE[0]}" 6>&"${PAGE[1]}"
    while IFS= read -r line <&5; do
        case $line in
            "@@ "*)
                cmd=${line#@@ }
                case $cmd in
                    writer_kill|writer_start|broker_stop|broker_start|ops_broker_*|ops_writer_*)
                        $cmd 5<&- 6>&-; rc=$? ;;
                    *) rc=127 ;;
                esac
                echo "done $rc" >&6 ;;
            *) printf '%s\n' "$line" ;;
        esac
    done
    exec 6>&- 5<&-
    wait "$NODE_PID" || fail "$1 exited with status $?"
}
run_page_test tests/web/page.test.js
run_page_test tests/web/act.test.js
run_page_test tests/web/builds.test.js
run_page_test tests/web/jobs.test.js
