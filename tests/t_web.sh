#!/bin/bash
# t_web.sh: the page (web/) in headless Debian Chromium, driven by playwright-core,
# against a real broker that serves it (http_dir) and a real writer. The checks are in
# tests/web/page.test.js; this script starts the broker and the writer, seeds builds and
# a long build log, and runs the lib.sh helpers the page test asks for on its stdout
# ("@@ writer_kill", "@@ broker_stop", ...), answering "done RC" on its stdin.
# SCREENSHOT=path saves the desktop screenshot there (docs/screenshot.png is made so).
. "$(dirname "$0")/lib.sh"

if [ "${MOSQLITE_NO_BROWSER:-}" = 1 ]; then note "skipped: MOSQLITE_NO_BROWSER=1"; exit 0; fi
for need in "$ROOT/web/vendor/mqtt.min.js" "$ROOT/node_modules/playwright-core/package.json" /usr/bin/chromium; do
    [ -e "$need" ] || { fail "page test: $need missing (run make deps; sh web/build.sh)"; exit 1; }
done

# The writer's config: the project's, when it defines the page's two named queries.
CONF=$ROOT/conf/mosqlite.conf
if ! grep -q '^query[[:space:]]\+build_log[[:space:]]' "$CONF" 2>/dev/null ||
   ! grep -q '^query[[:space:]]\+recent_builds[[:space:]]' "$CONF"; then
    CONF=$T/writer.conf
    cat >"$CONF" <<'CONF'
query recent_builds SELECT id, name, status, started_at, finished_at FROM builds ORDER BY id DESC LIMIT 50
query build_log SELECT id, build_id, line, ts FROM build_logs WHERE build_id = :build_id AND id > :after ORDER BY id LIMIT 1000
CONF
fi
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
wait_until 90 rows_are build_logs 2800 || { fail "seed: build_logs has $(sql 'SELECT count(*) FROM build_logs') rows, want 2800"; exit 1; }
note "seeded $(sql 'SELECT count(*) FROM builds') builds, $(sql 'SELECT count(*) FROM build_logs') log lines"

export T DB MQTT_PORT WS_PORT ROOT PREFIX_TOPIC
coproc PAGE { cd "$ROOT" && exec node tests/web/page.test.js 2>&1; }
NODE_PID=$PAGE_PID
PIDS="$PIDS $NODE_PID"
exec 5<&"${PAGE[0]}" 6>&"${PAGE[1]}"
while IFS= read -r line <&5; do
    case $line in
        "@@ "*)
            cmd=${line#@@ }
            case $cmd in
                writer_kill|writer_start|broker_stop|broker_start) $cmd 5<&- 6>&-; rc=$? ;;
                *) rc=127 ;;
            esac
            echo "done $rc" >&6 ;;
        *) printf '%s\n' "$line" ;;
    esac
done
exec 6>&-
wait "$NODE_PID" || fail "page test exited with status $?"
