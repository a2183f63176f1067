#!/bin/bash
# tests/web/screenshots.sh: the pictures of the page in README.md and docs/page.md, taken
# in headless Debian Chromium against a real broker and writer: a few builds, one with a
# coloured compiler log (CMake, GCC and CTest colours as they print them), and two
# rejections. Writes
#   docs/screenshot.png         the page, light theme, a failed build's log
#   docs/screenshot-dark.png    the same in the dark theme
#   docs/screenshot-search.png  the log searched for "warning", matching lines only
# Run after make, make deps and make web:  bash tests/web/screenshots.sh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/lib.sh"
for need in "$ROOT/web/index.html" "$ROOT/node_modules/playwright-core/package.json" /usr/bin/chromium; do
    [ -e "$need" ] || { echo "screenshots: $need missing (make deps; make web)" >&2; exit 1; }
done
WRITER_ARGS="-c $ROOT/conf/mosqlite.conf"
broker_start
writer_start || exit 1

at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.000Z; }
pub write/builds "{\"values\":{\"id\":1519,\"name\":\"docs/site @5be01d2\",\"status\":\"passed\",\"started_at\":\"$(at '-52 min')\",\"finished_at\":\"$(at '-51 min')\",\"exit_code\":0,\"duration_ms\":61400}}"
pub write/builds "{\"values\":{\"id\":1520,\"name\":\"web/app @e1d2a90\",\"status\":\"passed\",\"started_at\":\"$(at '-40 min')\",\"finished_at\":\"$(at '-38 min')\",\"exit_code\":0,\"duration_ms\":95200}}"
pub write/builds "{\"values\":{\"id\":1521,\"name\":\"firmware/rel-2.4 @7be3310\",\"status\":\"cancelled\",\"started_at\":\"$(at '-31 min')\",\"finished_at\":\"$(at '-30 min')\",\"exit_code\":143}}"
pub write/builds "{\"values\":{\"id\":1522,\"name\":\"firmware/main @a3f9c21\",\"status\":\"running\",\"started_at\":\"$(at '-5 min')\"}}"
pub write/builds "{\"values\":{\"id\":1523,\"name\":\"bootloader/main @0d9e5b1\",\"status\":\"running\",\"started_at\":\"$(at '-1 min')\"}}"

# Build 1522's log: ^[ stands for ESC; awk escapes the line for JSON.
awk 'BEGIN {
    split("uart spi i2c gpio dma tcp dhcp dns lfs sched heap ota cli crc", m, " ");
    print "-- The C compiler identification is GNU 12.2.0";
    print "-- Detecting C compiler ABI info - done";
    print "-- Configuring done (0.4s)";
    print "-- Generating done (0.1s)";
    for (i = 1; i <= 560; i++) {
        f = m[i % 14 + 1] "_" sprintf("%03d", i);
        printf "[%3d%%] ^[[32mBuilding C object src/CMakeFiles/fw.dir/%s.c.o^[[0m\n", int(i * 96 / 560), f;
        if (i % 61 == 0)
            printf "^[[01m^[[Ksrc/%s.c:%d:9:^[[m^[[K ^[[01;35m^[[Kwarning: ^[[m^[[Kunused variable ^[[01m^[[K‘rc’^[[m^[[K [^[[01;35m^[[K-Wunused-variable^[[m^[[K]\n", f, 40 + i % 200;
        if (i % 97 == 0)
            printf "^[[38;5;244m[ccache]^[[0m hit rate ^[[38;2;255;135;0m%d%%^[[0m (%d of %d)\n", 60 + i % 30, i, i + 37;
    }
    print "[ 97%] ^[[32m^[[1mLinking C executable firmware.elf^[[0m";
    print "[100%] Built target firmware";
    print "^[[1mTest project /build/firmware^[[0m";
    for (t = 1; t <= 12; t++)
        printf "%5d/12 Test #%d: %-26s ....   %s %5.2f sec\n", t, t, m[t] "_selftest", (t == 9 ? "^[[31m***Failed^[[0m" : "^[[32m  Passed^[[0m"), t * 0.07;
    print "^[[01m^[[Ktests/tcp_selftest.c:88:^[[m^[[K ^[[01;31m^[[Kerror: ^[[m^[[Kexpected ack 0x2f, got 0x00 (board 3)";
    print "^[[31m92% tests passed, 1 tests failed out of 12^[[0m";
}' | awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\^\[/, "\\u001b");
            printf "{\"values\":{\"build_id\":1522,\"line\":\"%s\",\"stream\":\"%s\"}}\n", $0, ($0 ~ /error: |warning: /) ? "stderr" : "stdout" }' |
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l
for i in 1 2 3; do
    pub write/build_logs "{\"values\":{\"build_id\":1523,\"line\":\"CC boot/stage$i.o\"}}"
done
pub write/build_logs '{"values":{"build_id":1522,"lne":"typo in the column name"}}'
pub write/builds '{"values":{"id":1524,"status":"running"}}'
# Scheduled writes: a nightly build queued for 02:00 UTC, a release tag in 3 hours.
pub write/builds "{\"id\":\"nightly-$(date -u -d tomorrow +%m%d)\",\"at\":\"$(date -u -d tomorrow +%Y-%m-%dT02:00:00Z)\",\"values\":{\"name\":\"nightly @main\",\"status\":\"queued\"}}"
pub write "{\"id\":\"release-2.5\",\"delay_ms\":10800000,\"ops\":[{\"table\":\"builds\",\"values\":{\"name\":\"firmware/rel-2.5\",\"status\":\"queued\"}}]}"
want=$(( 4 + 560 + 9 + 5 + 2 + 1 + 12 + 2 + 3 ))   # configure, builds, warnings, ccache, link, tests, summary, 1523
wait_until 30 rows_are build_logs "$want" || { echo "screenshots: $(sql 'SELECT count(*) FROM build_logs') log lines, want $want" >&2; exit 1; }

export WS_PORT MQTT_PORT ROOT
node "$ROOT/tests/web/screenshots.js"
