#!/bin/sh
# tests/bench/run.sh: `make bench`. What mosqlite costs and what it buys, measured in one
# run on this machine: the broker's own QoS 2 ceiling, SQLite's own ceiling, the naive
# ways (a sqlite3 process per write, 8 direct writers), then mosqlite end to end, its
# backlog drain, receipt latency, memory and CPU. Prints the machine, then one table;
# every mosqlite figure beside its ratio to the broker ceiling (line 1) and to one
# sqlite3 process per write (line 3a), and the issue's targets with PASS/MISS.
# A report, not a test: exits 0 whatever the numbers (non-zero only if it cannot run).
#
#   sh tests/bench/run.sh            full run, under 10 minutes on 2 cores
#   QUICK=1 sh tests/bench/run.sh    small sizes, under a minute
#   PROFILE=1 ...                    also perf-profile the writer draining a backlog
#   KEEP=1 ...                       keep the temp dir (databases, logs, raw results)
#
# The C drivers (mqbench.c, sqlbench.c) are compiled into build/bench/. Raw key=value
# results of each step are kept in $T/results.
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
export ROOT
: "${BIN:=$ROOT/bin}"
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN;; esac
BB=$ROOT/build/bench
mkdir -p "$BB" /tmp/mosqlite-bench
# Our own temp root: other suites may sweep /tmp/mosqlite-test.*.
TMPDIR=/tmp/mosqlite-bench
export TMPDIR

if [ -n "${QUICK:-}" ]; then
    N_SQL1=300 N_SQLB=20000 N_NAIVE=100 N_NAIVE8=20 N_BROKER=20000 N_E2E=10000
    LAT_SECS=3 N_BACKLOG=50000 N_PROF=50000
else
    N_SQL1=2000 N_SQLB=200000 N_NAIVE=500 N_NAIVE8=60 N_BROKER=150000 N_E2E=100000
    LAT_SECS=20 N_BACKLOG=1000000 N_PROF=200000
fi
# Messages a producer set keeps in flight, split between its connections (at least 2
# each): the best window for one libmosquitto publisher through this broker (larger
# windows make Mosquitto 2.0 slower, see README).
WINDOW=${WINDOW:-100}

CCFLAGS="-O2 -std=c11 -Wall -Wextra -Werror"
PKG=$(pkg-config --cflags --libs libmosquitto sqlite3 libcjson) || exit 2
for p in mqbench sqlbench; do
    if [ ! -x "$BB/$p" ] || [ "tests/bench/$p.c" -nt "$BB/$p" ]; then
        # shellcheck disable=SC2086
        cc $CCFLAGS -o "$BB/$p" "tests/bench/$p.c" $PKG || exit 2
    fi
done
MQB=$BB/mqbench

. "$ROOT/tests/lib.sh"
RES=$T/results
: >"$RES"
SCHEMA_SQL=$ROOT/conf/schema/001_builds.sql
STARTED=$(date +%s)

say() { echo "bench: $*" >&2; }
# kv LINE KEY: the value of KEY in a key=value line.
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# calc EXPR: floating point arithmetic.
calc() { awk "BEGIN { printf \"%.10g\", $1 }"; }
record() { echo "$1 $2" >>"$RES"; }
now() { date +%s.%N; }

# ---------------------------------------------------------------------------------
# Machine facts.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
ram=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
mosq_v=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version //p' | head -1)
fs=$(df -T "$T" | awk 'NR == 2 { print $2 " on " $1 }')
echo "# mosqlite bench$( [ -n "${QUICK:-}" ] && echo ' (QUICK=1: small sizes, figures indicative only)')"
echo "# date:      $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null)"
echo "# cpu:       $cpu, $(nproc) cores online"
echo "# ram:       $ram"
echo "# kernel:    $(uname -sr)"
echo "# mosquitto: broker $mosq_v, libmosquitto $(pkg-config --modversion libmosquitto), config mosquitto.conf.example"
echo "# sqlite:    library $(pkg-config --modversion sqlite3), cli $(sqlite3 --version | cut -d' ' -f1); WAL, synchronous=FULL"
echo "# disk:      $fs ($T)"
echo "# load:      $(cut -d' ' -f1-3 /proc/loadavg) at start (other work on the machine makes figures noisy)"

# ---------------------------------------------------------------------------------
# 2. SQLite's own ceiling: prepared INSERTs, one transaction per row and 1000 per txn.
sqlite_ceiling() {
    rm -f "$T/sql.db" "$T/sql.db-wal" "$T/sql.db-shm"
    "$BB/sqlbench" "$T/sql.db" "$SCHEMA_SQL" "$1" "$2"
}
say "SQLite ceiling"
r=$(sqlite_ceiling "$N_SQL1" 1); record sql1 "$r"; SQL1=$(kv "$r" rate)
r=$(sqlite_ceiling "$N_SQLB" 1000); record sqlb "$r"; SQLB=$(kv "$r" rate)

# ---------------------------------------------------------------------------------
# 3. The naive ways: the sqlite3 CLI, one process per write, on a WAL file.
naive_db() {
    rm -f "$1" "$1-wal" "$1-shm"
    sqlite3 "$1" <"$SCHEMA_SQL" && sqlite3 "$1" 'PRAGMA journal_mode=WAL' >/dev/null
}
# naive_loop DB N TAG [sqlite3 args]: N inserts, one sqlite3 process each; errors to $T/TAG.err
naive_loop() {
    _db=$1 _n=$2 _tag=$3; shift 3
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        sqlite3 "$@" "$_db" "PRAGMA synchronous=FULL; INSERT INTO build_logs (build_id, line) VALUES ($$, 'step $_i: compiling src/mod_001.c ok')" \
            >/dev/null 2>>"$T/$_tag.err"
        _i=$((_i + 1))
    done
}
say "naive: one sqlite3 per write"
naive_db "$T/naive.db"
: >"$T/naive1.err"
t0=$(now); naive_loop "$T/naive.db" "$N_NAIVE" naive1; t1=$(now)
rows=$(sqlite3 "$T/naive.db" 'SELECT count(*) FROM build_logs')
NAIVE1=$(calc "$rows / ($t1 - $t0)")
record naive1 "rows=$rows secs=$(calc "$t1 - $t0") rate=$NAIVE1"

# naive8 TAG [sqlite3 args]: 8 concurrent loops of N_NAIVE8 inserts; sets N8_RATE N8_LOCKED N8_ROWS
naive8() {
    _tag=$1; shift
    naive_db "$T/$_tag.db"
    t0=$(now)
    _pids=
    for k in 1 2 3 4 5 6 7 8; do
        : >"$T/$_tag.$k.err"
        naive_loop "$T/$_tag.db" "$N_NAIVE8" "$_tag.$k" "$@" &
        _pids="$_pids $!"
    done
    # shellcheck disable=SC2086
    wait $_pids
    t1=$(now)
    N8_ROWS=$(sqlite3 "$T/$_tag.db" 'SELECT count(*) FROM build_logs')
    N8_LOCKED=$(cat "$T/$_tag".*.err | grep -c 'locked')
    N8_RATE=$(calc "$N8_ROWS / ($t1 - $t0)")
    record "$_tag" "rows=$N8_ROWS of=$((8 * N_NAIVE8)) locked=$N8_LOCKED secs=$(calc "$t1 - $t0") rate=$N8_RATE"
}
say "naive: 8 concurrent sqlite3 writers"
naive8 naive8
NAIVE8_RATE=$N8_RATE NAIVE8_LOCKED=$N8_LOCKED NAIVE8_ROWS=$N8_ROWS
naive8 naive8t -cmd '.timeout 5000'
NAIVE8T_RATE=$N8_RATE NAIVE8T_LOCKED=$N8_LOCKED NAIVE8T_ROWS=$N8_ROWS

# ---------------------------------------------------------------------------------
# 1. The broker's own ceiling: QoS 2, K publishers -> the project's broker -> one
# subscriber shaped like the writer. Rate = N / (last arrival - first publish).
broker_start
BROKER_PID0=$BROKER_PID
# ceiling K: sets CEIL
ceiling() {
    _id=bench-sub-$1-$$
    rm -f "$T/ready"
    "$MQB" sub -p "$MQTT_PORT" -t "bench/ceiling/$1" -n "$N_BROKER" --id "$_id" \
        --ready "$T/ready" --timeout 300 >"$T/sub.out" &
    _sp=$!
    wait_until 10 test -f "$T/ready" || { say "subscriber did not start"; kill "$_sp"; CEIL=0; return; }
    _p=$("$MQB" pub -p "$MQTT_PORT" -t "bench/ceiling/$1" -n "$N_BROKER" -c "$1" -w "$WINDOW" --timeout 300)
    wait "$_sp"
    _s=$(cat "$T/sub.out")
    CEIL=$(calc "$(kv "$_s" n) / (($(kv "$_s" last_ns) - $(kv "$_p" start_ns)) / 1e9)")
    record "ceiling$1" "$_p $_s rate=$CEIL"
}
say "broker ceiling, 1 publisher"
ceiling 1; CEIL1=$CEIL
say "broker ceiling, 8 publishers"
ceiling 8; CEIL8=$CEIL
say "broker ceiling, 64 publishers"
ceiling 64; CEIL64=$CEIL

# ---------------------------------------------------------------------------------
# 4, 5. mosqlite end to end.
HAVE_WRITER=
[ -x "$BIN/mosqlite-writer" ] && HAVE_WRITER=1
# vm PID FIELD: a /proc/PID/status figure in MiB.
vm() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
# cpu_s PID: user + system CPU seconds of a live process.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }

if [ -n "$HAVE_WRITER" ]; then
    say "writer: idle memory"
    writer_start
    sleep 1
    RSS_IDLE=$(vm "$WRITER_PID" VmHWM)
    record rss_idle "hwm_mib=$RSS_IDLE rss_mib=$(vm "$WRITER_PID" VmRSS)"

    # e2e K: K producers publish N_E2E requests; rate = rows committed / time from the
    # first publish until they are all in the database.
    e2e() {
        _p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$N_E2E" -c "$1" \
            -w "$WINDOW" --db "$DB" --timeout 300)
        record "e2e$1" "$_p"
        E2E=$(kv "$_p" commit_rate)
    }
    for k in 1 8 64; do
        say "mosqlite end to end, $k producers"
        e2e "$k"
        eval "E2E$k=\$E2E"
    done

    say "receipt latency at 1000 requests/s"
    r=$("$MQB" rate -p "$MQTT_PORT" -t mosqlite/write/build_logs -r 1000 -s "$LAT_SECS" --timeout 30)
    record latency "$r"
    LAT_P50=$(kv "$r" p50_ms) LAT_P99=$(kv "$r" p99_ms) LAT_MAX=$(kv "$r" max_ms)
    LAT_N=$(kv "$r" receipts) LAT_SENT=$(kv "$r" sent) LAT_BAD=$(kv "$r" not_applied)
    writer_stop

    # backlog N DBFILE: queue N requests while the writer is down (its persistent session
    # keeps them), start it on a fresh file, time until all N rows are committed.
    # Sets BL_RATE BL_ROWS BL_QUEUE_RATE; leaves the writer running as $WRITER_PID.
    backlog() {
        _p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$1" -w "$WINDOW" --timeout 900)
        BL_QUEUE_RATE=$(kv "$_p" pub_rate)
        "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$2" --schema "$ROOT/conf/schema" \
            ${WRITER_ARGS:-} >>"$WRITER_LOG" 2>&1 &
        WRITER_PID=$!
        PIDS="$PIDS $WRITER_PID"
        _w=$("$MQB" wait --db "$2" -n "$1" --timeout 900)
        BL_RATE=$(kv "$_w" rate) BL_ROWS=$(kv "$_w" rows)
        record "backlog" "$_p $_w"
    }
    say "backlog: queueing $N_BACKLOG requests with the writer down"
    backlog "$N_BACKLOG" "$T/backlog.db"
    BROKER_HWM=$(vm "$BROKER_PID" VmHWM)
    RSS_DRAIN=$(vm "$WRITER_PID" VmHWM)
    CPU_DRAIN=$(cpu_s "$WRITER_PID")
    CPU_100K=$(calc "$CPU_DRAIN * 100000 / $BL_ROWS")
    record drain "hwm_mib=$RSS_DRAIN cpu_s=$CPU_DRAIN cpu_per_100k=$CPU_100K broker_hwm_mib=$BROKER_HWM"
    writer_stop

    if [ -n "${PROFILE:-}" ]; then
        say "profile: writer draining $N_PROF requests under perf"
        backlog_prof() {
            "$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$N_PROF" -w "$WINDOW" \
                --timeout 900 >/dev/null
            "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/prof.db" --schema "$ROOT/conf/schema" \
                >>"$WRITER_LOG" 2>&1 &
            WRITER_PID=$!
            PIDS="$PIDS $WRITER_PID"
            perf record -e cpu-clock -F 2000 -g -o "$T/perf.data" -p "$WRITER_PID" \
                >"$T/perf.log" 2>&1 &
            _perf=$!
            "$MQB" wait --db "$T/prof.db" -n "$N_PROF" --timeout 900 >/dev/null
            kill -INT "$_perf"; wait "$_perf"
            writer_stop
        }
        backlog_prof
    fi
fi

# ---------------------------------------------------------------------------------
# The table.
# ratio A B: A/B with 2 decimals, or - when either is missing.
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then calc_f "%.2f" "$1 / $2"; else echo -; fi; }
calc_f() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
int() { if [ -n "$1" ]; then calc_f "%.0f" "$1"; else echo -; fi; }
row() { printf '%-4s %-50s %14s %8s %8s  %s\n' "$@"; }

echo
row "#" "measurement" "result" "/line1" "/line3a" "target"
row "--" "--------------------------------------------------" "--------------" "--------" "--------" "------------------------------"
row 1 "broker QoS 2 ceiling, 1 pub -> 1 sub, no DB" "$(int "$CEIL1") msg/s" "1.00" - ""
row 1b "broker QoS 2 ceiling, 8 pubs -> 1 sub" "$(int "$CEIL8") msg/s" "$(ratio "$CEIL8" "$CEIL1")" - ""
row 1c "broker QoS 2 ceiling, 64 pubs -> 1 sub" "$(int "$CEIL64") msg/s" "$(ratio "$CEIL64" "$CEIL1")" - ""
row 2a "SQLite, 1 txn per row (prepared, FULL, WAL)" "$(int "$SQL1") rows/s" "$(ratio "$SQL1" "$CEIL1")" "$(ratio "$SQL1" "$NAIVE1")" ""
row 2b "SQLite, 1000 rows per txn" "$(int "$SQLB") rows/s" "$(ratio "$SQLB" "$CEIL1")" "$(ratio "$SQLB" "$NAIVE1")" ""
row 3a "naive: one sqlite3 process per write" "$(int "$NAIVE1") rows/s" "$(ratio "$NAIVE1" "$CEIL1")" "1.00" ""
row 3b "naive: 8 sqlite3 writers, no busy timeout" "$(int "$NAIVE8_RATE") rows/s" "$(ratio "$NAIVE8_RATE" "$CEIL1")" "$(ratio "$NAIVE8_RATE" "$NAIVE1")" "$NAIVE8_LOCKED of $((8 * N_NAIVE8)) 'database is locked', $NAIVE8_ROWS rows"
row 3c "naive: 8 sqlite3 writers, .timeout 5000" "$(int "$NAIVE8T_RATE") rows/s" "$(ratio "$NAIVE8T_RATE" "$CEIL1")" "$(ratio "$NAIVE8T_RATE" "$NAIVE1")" "$NAIVE8T_LOCKED of $((8 * N_NAIVE8)) 'database is locked', $NAIVE8T_ROWS rows"
if [ -n "$HAVE_WRITER" ]; then
    for k in 1 8 64; do
        eval "v=\$E2E$k c=\$CEIL$k"
        rb=$(ratio "$v" "$c")
        rn=$(ratio "$v" "$NAIVE1")
        row "4" "mosqlite e2e, $k producer(s), $N_E2E requests" "$(int "$v") rows/s" "$(ratio "$v" "$CEIL1")" "$rn" \
            ">=0.9 x broker@$k: $rb $(verdict "$rb >= 0.9"); >=50 x 3a: $(verdict "$rn >= 50")"
    done
    rb=$(ratio "$BL_RATE" "$CEIL1")
    row 4d "mosqlite backlog drain, $N_BACKLOG queued" "$(int "$BL_RATE") rows/s" "$rb" "$(ratio "$BL_RATE" "$NAIVE1")" \
        "(queued at $(int "$BL_QUEUE_RATE") msg/s; $BL_ROWS rows)"
    row 4e "receipt latency at 1000 req/s, p50 / p99 / max" "$LAT_P50/$LAT_P99/$LAT_MAX ms" - - \
        "p99 < 10 ms: $(verdict "$LAT_P99 >= 0 && $LAT_P99 < 10") ($LAT_N/$LAT_SENT receipts, $LAT_BAD not applied)"
    row 5a "writer peak RSS (VmHWM), idle" "$RSS_IDLE MiB" - - "< 8 MiB: $(verdict "$RSS_IDLE < 8")"
    row 5b "writer peak RSS (VmHWM), draining $N_BACKLOG" "$RSS_DRAIN MiB" - - "< 32 MiB: $(verdict "$RSS_DRAIN < 32") (broker peak $BROKER_HWM MiB)"
    row 5c "writer CPU (user+sys) per 100,000 requests" "$(calc_f "%.2f" "$CPU_100K") s" - - "(drain: $CPU_DRAIN s for $BL_ROWS)"
else
    row 4 "mosqlite end to end" "no $BIN/mosqlite-writer: run make first" - - ""
fi
echo "# 1b/1c and the 0.9 target compare like with like (same number of producers);"
echo "# /line1 is against the 1-publisher ceiling. Producers keep $WINDOW QoS 2 messages in flight"
echo "# in total (at least 2 per connection). Took $(( $(date +%s) - STARTED )) s."

if [ -n "${PROFILE:-}" ] && [ -f "$T/perf.data" ]; then
    echo
    echo "# writer profile while draining $N_PROF requests (perf, cpu-clock, self time):"
    perf report -i "$T/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -30
fi
exit 0
