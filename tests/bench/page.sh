#!/bin/sh
# tests/bench/page.sh: how fast the page opens a long build log, through the broker's
# WebSocket listener, in headless Debian Chromium. Builds a database with a 5,000-line
# and a 50,000-line build (straight into the file with sqlite3), starts a broker from
# mosquitto.conf.example (WebSocket listener and http_dir as shipped, ports changed) and
# the writer with conf/mosqlite.conf, then opens ?build=N RUNS times each and prints, in
# tests/bench/run.sh's table format, the median time from navigation to the first screen
# of lines and to the whole log, each with its target and PASS/MISS. A report, not a
# test: exits 0 whatever the numbers (non-zero only if it cannot run).
#
#   sh tests/bench/page.sh             after make, make deps and make web
#   RUNS=5 sh tests/bench/page.sh      more openings per build (default 3)
#   KEEP=1 ...                         keep the temp dir
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh
for need in "$BIN/mosqlite-writer" "$ROOT/web/index.html" "$ROOT/node_modules/playwright-core/package.json" /usr/bin/chromium; do
    [ -e "$need" ] || { echo "bench page: $need missing (make; make deps; make web)" >&2; exit 2; }
done
. "$ROOT/tests/lib.sh"

WRITER_ARGS="-c $ROOT/conf/mosqlite.conf"
broker_start
writer_start || exit 2           # creates the schema
writer_stop >/dev/null 2>&1
# Build 101: 5,000 lines; build 102: 50,000; a few other builds' lines interleaved, as
# when builds run side by side. Lines like a C build's, some coloured (ANSI SGR).
sqlite3 "$DB" <<'SQL' || exit 2
INSERT INTO builds (id, name, status, started_at, finished_at, exit_code, duration_ms) VALUES
  (100, 'docs/site @5be01d2', 'passed', '2026-11-24T10:00:00.000Z', '2026-11-24T10:01:00.000Z', 0, 60000),
  (101, 'firmware/main @a3f9c21', 'passed', '2026-11-24T10:02:00.000Z', '2026-11-24T10:09:31.000Z', 0, 451000),
  (102, 'firmware/full @7be3310', 'failed', '2026-11-24T11:00:00.000Z', '2026-11-24T11:48:02.000Z', 2, 2882000);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 57500)
INSERT INTO build_logs (build_id, line, ts, stream)
SELECT CASE WHEN i % 23 = 0 THEN 100 WHEN i - i / 23 <= 5000 THEN 101 ELSE 102 END,
       CASE WHEN i % 97 = 0 THEN printf(char(27) || '[1;31merror:' || char(27) || '[0m src/net/tcp_%05d.c:%d: undefined reference to `tcp_poll''', i, i % 400)
            WHEN i % 41 = 0 THEN printf(char(27) || '[33mwarning:' || char(27) || '[0m unused variable ''rc'' [-Wunused-variable] in app/cli_%05d.c', i)
            ELSE printf('[%3d%%] Building C object src/CMakeFiles/fw.dir/drivers/uart/uart_%05d.c.o', i * 100 / 57500, i) END,
       strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-24 10:02:00', printf('+%d seconds', i / 20)),
       CASE WHEN i % 97 = 0 THEN 'stderr' ELSE 'stdout' END
FROM n;
SQL
writer_start || exit 2
n101=$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 101')
n102=$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 102')
note "page bench: build 101 has $n101 lines, build 102 $n102; broker ws://127.0.0.1:$WS_PORT/"

RUNS=${RUNS:-3}
export T WS_PORT ROOT RUNS
BUILDS="101:$n101 102:$n102" node "$ROOT/tests/bench/page.js" >"$T/page.out" 2>&1 ||
    { cat "$T/page.out"; echo "bench page: the Chromium driver failed" >&2; exit 2; }
grep '^#' "$T/page.out"

row() { printf '%-8s %-50s %14s %8s %8s  %s\n' "$@"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
res() { sed -n "s/^$1 //p" "$T/page.out" | head -1; }
for b in 101:5,000:6a 102:50,000:6b; do
    id=${b%%:*}; rest=${b#*:}; lines=${rest%%:*}; no=${rest#*:}
    f=$(res "first_$id"); a=$(res "all_$id")
    row "${no}" "page: $lines-line log, first screen" "${f:--} ms" - - "< 1000 ms: $( [ -n "$f" ] && verdict "$f < 1000" || echo MISS) (median of $RUNS; $(res "firsts_$id"))"
    row "${no}w" "page: $lines-line log, whole log" "${a:--} ms" - - "< 5000 ms: $( [ -n "$a" ] && verdict "$a < 5000" || echo MISS) (median of $RUNS; $(res "alls_$id"))"
done
# For comparison, not a target: the page's files from a web server that answers at once.
for b in 101:5,000:6s 102:50,000:6t; do
    id=${b%%:*}; rest=${b#*:}; lines=${rest%%:*}; no=${rest#*:}
    f=$(res "static_first_$id"); a=$(res "static_all_$id")
    row "${no}" "page from a plain web server: $lines lines, first" "${f:--} ms" - - "(median of $RUNS; $(res "static_firsts_$id"))"
    row "${no}w" "page from a plain web server: $lines lines, whole" "${a:--} ms" - - "(median of $RUNS; $(res "static_alls_$id"))"
done
exit 0
