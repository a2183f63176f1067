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
#   PROFILE=1 ...                    also perf-profile the writer and the broker while
#                                    the writer drains a backlog (top functions)
#   KEEP=1 ...                       keep the temp dir (databases, logs, raw results)
#   NO_PAGE=1 ...                    skip line 6, the page in Chromium (tests/bench/page.sh)
#   NO_ADMIN=1, NO_REPLICA=1 ...     skip lines A/H (admin.sh) and R (replica.sh)
#   NO_RETAIN=1 ...                  skip lines P (retain.sh: retention under load)
#   NO_BULK=1 ...                    skip lines B (bulk.sh: the log pipe, JSON Lines)
#   NO_JOBS=1 ...                    skip lines J (jobs.sh: the job queue)
#   PRODUCERS="1" ALT_PRODUCERS="1"  producer counts of lines 1/4 and 4p (1 8 64 256; 1 8 64)
#
# The C drivers (mqbench.c, sqlbench.c, jobbench.c) are compiled into build/bench/. Raw key=value
# results of each step are kept in $T/results.
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh

if [ -n "${QUICK:-}" ]; then
    N_SQL1=300 N_SQLB=20000 N_NAIVE=100 N_NAIVE8=20 N_BROKER=20000 N_E2E=10000
    LAT_SECS=3 N_BACKLOG=50000 N_PROF=30000 DRAIN_LIMIT=${DRAIN_LIMIT:-10} PHASE_LIMIT=20
    N_LINES=5000 N_BULK=100000
else
    N_SQL1=2000 N_SQLB=200000 N_NAIVE=500 N_NAIVE8=60 N_BROKER=150000 N_E2E=100000
    LAT_SECS=20 N_BACKLOG=1000000 N_PROF=100000 DRAIN_LIMIT=${DRAIN_LIMIT:-90} PHASE_LIMIT=60
    N_LINES=20000 N_BULK=1000000
fi
# Rows per transaction of the bulk line (5e): one request of BULK_OPS inserts.
BULK_OPS=1000
# Producer counts for the broker ceilings and the end-to-end lines.
PRODUCERS=${PRODUCERS:-1 8 64 256}
# Producer counts of the lines in the other request protocol (4p).
ALT_PRODUCERS=${ALT_PRODUCERS:-1 8 64}
# Request rates of the receipt latency lines.
RATES=${RATES:-1000 10000}
# The request session's MQTT version, for the writer (its default unless REQ_PROTO is
# set) and for the bare subscriber of the ceilings, so both speak the same protocol.
REQ_PROTO=${REQ_PROTO:-$("$BIN/mosqlite-writer" --help 2>&1 | sed -n 's/.*request-protocol.*(\([0-9.]*\)).*/\1/p' | head -1)}
: "${REQ_PROTO:=3.1.1}"
SUB_MQTT=5
[ "$REQ_PROTO" = 3.1.1 ] && SUB_MQTT=311
# The writer's receive maximum (v5), given to the bare subscriber too.
RECV_MAX=${RECV_MAX:-$("$BIN/mosqlite-writer" --help 2>&1 | sed -n 's/.*receive-max.*(\([0-9]*\)).*/\1/p' | head -1)}
: "${RECV_MAX:=65535}"
# The other protocol is measured too, end to end (lines 4p), to show why the default is it.
ALT_PROTO=5
[ "$REQ_PROTO" = 5 ] && ALT_PROTO=3.1.1
# Messages a producer set keeps in flight, split between its connections (at least 2
# each): the best window for one libmosquitto publisher through this broker (larger
# windows make Mosquitto 2.0 slower, see tests/bench/README.md).
WINDOW=${WINDOW:-100}

CCFLAGS="-O2 -std=c11 -Wall -Wextra -Werror"
PKG=$(pkg-config --cflags --libs libmosquitto sqlite3 libcjson) || exit 2
for p in mqbench sqlbench jobbench; do
    if [ ! -x "$BB/$p" ] || [ "tests/bench/$p.c" -nt "$BB/$p" ] || [ tests/bench/bench.h -nt "$BB/$p" ]; then
        # shellcheck disable=SC2086
        cc $CCFLAGS -o "$BB/$p" "tests/bench/$p.c" $PKG || exit 2
    fi
done
# BUILD_ONLY=1 (CI): check the drivers compile, measure nothing.
[ -n "${BUILD_ONLY:-}" ] && { echo "bench: built $BB/mqbench, $BB/sqlbench and $BB/jobbench"; exit 0; }
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
# ratio A B: A/B with 2 decimals, or - when either is missing.
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then calc_f "%.2f" "$1 / $2"; else echo -; fi; }
calc_f() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
int() { if [ -n "$1" ]; then calc_f "%.0f" "$1"; else echo -; fi; }

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
if [ -x "$BIN/mosqlite-writer" ]; then
    echo "# writer:    $("$BIN/mosqlite-writer" --version 2>&1 | head -1), built $(date -u -r "$BIN/mosqlite-writer" +%Y-%m-%dT%H:%M:%SZ)"
fi
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
# SQLite's own CPU for 1,000,000 rows at 1000 per transaction: the ceiling of line 5e.
SQLB_CPU_1M=$(calc "$(kv "$r" cpu_s) * 1000000 / $N_SQLB")

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
# Helpers for the broker phases. Every phase gets a fresh broker (new persistence) and,
# for mosqlite, a fresh writer and database, so that one phase's leftovers (a queue
# the writer could not drain, a stuck session) cannot spoil the next.
fresh_broker() {
    [ -n "${BROKER_PID:-}" ] && broker_kill
    rm -rf "$T/broker"
    unset MQTT_PORT WS_PORT
    broker_start
}
# vm PID FIELD: a /proc/PID/status figure in MiB.
vm() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
# cpu_s PID: user + system CPU seconds of a live process.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
alive() { _s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$_s" ] && [ "$_s" != Z ]; }
dead() { ! alive "$1"; }
# writer_halt: SIGTERM, and SIGKILL if it has not exited within 15 s.
writer_halt() {
    kill -TERM "$WRITER_PID" 2>/dev/null
    wait_until 15 dead "$WRITER_PID" || kill -9 "$WRITER_PID" 2>/dev/null
    wait "$WRITER_PID" 2>/dev/null
}
# lost_count: how often the writer has lost its request connection so far.
lost_count() { grep -c 'request connection lost' "$WRITER_LOG" 2>/dev/null; }
NOTES=$T/notes
: >"$NOTES"
note_line() { echo "# $*" >>"$NOTES"; }

# ---------------------------------------------------------------------------------
# 1. The broker's own ceiling: QoS 2, K publishers -> the project's broker -> one
# subscriber shaped like the writer. Rate = N / (last arrival - first publish).
# ceiling K: sets CEIL and CEIL_NOTE
ceiling() {
    fresh_broker
    rm -f "$T/ready"
    "$MQB" sub --mqtt "$SUB_MQTT" --receive-max "$RECV_MAX" -p "$MQTT_PORT" -t "bench/ceiling/$1" \
        -n "$N_BROKER" --id "bench-sub-$1" --ready "$T/ready" --timeout "$PHASE_LIMIT" >"$T/sub.out" 2>"$T/sub.err" &
    _sp=$!
    wait_until 10 test -f "$T/ready" || { say "subscriber did not start"; kill "$_sp"; CEIL=; return; }
    _p=$("$MQB" pub -p "$MQTT_PORT" -t "bench/ceiling/$1" -n "$N_BROKER" -c "$1" -w "$WINDOW" \
        --timeout "$PHASE_LIMIT")
    wait "$_sp"
    _s=$(cat "$T/sub.out")
    _n=$(kv "$_s" n)
    CEIL= CEIL_NOTE=
    if [ -n "$_n" ] && [ "$_n" -gt 0 ]; then
        CEIL=$(calc "$_n / (($(kv "$_s" last_ns) - $(kv "$_p" start_ns)) / 1e9)")
    fi
    if [ "$(kv "$_s" lost)" = 1 ]; then
        CEIL_NOTE="subscriber DISCONNECTED ($(sed 's/^mqbench: //' "$T/sub.err" | head -1)) after $_n of $N_BROKER"
    elif [ "$(kv "$_s" timeout)" = 1 ]; then
        CEIL_NOTE="only $_n of $N_BROKER arrived within $PHASE_LIMIT s"
    fi
    record "ceiling$1" "$_p $_s rate=$CEIL"
}
for k in $PRODUCERS; do
    say "broker ceiling, $k publisher(s)"
    ceiling "$k"
    eval "CEIL$k=\$CEIL CEIL${k}_NOTE=\$CEIL_NOTE"
done
CEIL1=${CEIL1:-}

# The broker's own backlog drain: N messages queued for an offline subscriber session
# (MQTT 3.1.1 persistent session, like the writer's request session), then the subscriber returns.
say "broker backlog drain: $N_BACKLOG queued for a returning subscriber"
fresh_broker
"$MQB" sub --mqtt "$SUB_MQTT" --receive-max "$RECV_MAX" -p "$MQTT_PORT" -t bench/drain -n 1 --id bench-drain --timeout 1 >/dev/null 2>&1
_p=$("$MQB" pub -p "$MQTT_PORT" -t bench/drain -n "$N_BACKLOG" -w "$WINDOW" --timeout 900)
_s=$("$MQB" sub --mqtt "$SUB_MQTT" --receive-max "$RECV_MAX" -p "$MQTT_PORT" -t bench/drain -n "$N_BACKLOG" --id bench-drain --timeout "$DRAIN_LIMIT" 2>"$T/sub.err")
BD_N=$(kv "$_s" n) BD_RATE= BD_NOTE=
if [ -n "$BD_N" ] && [ "$BD_N" -gt 0 ]; then
    BD_SECS=$(calc_f "%.1f" "($(kv "$_s" last_ns) - $(kv "$_s" start_ns)) / 1e9")
    BD_RATE=$(calc "$BD_N / $BD_SECS")
fi
if [ "$(kv "$_s" lost)" = 1 ]; then BD_NOTE="subscriber DISCONNECTED after $BD_N"
elif [ "$(kv "$_s" timeout)" = 1 ]; then BD_NOTE="INCOMPLETE: $BD_N in the $DRAIN_LIMIT s limit"
else BD_NOTE="all drained in $BD_SECS s"; fi
BD_SUB_HWM=$(kv "$_s" hwm_mib)
BD_NOTE="$BD_NOTE; subscriber peak RSS $BD_SUB_HWM MiB"
BD_BROKER_CPU=$(cpu_s "$BROKER_PID")
record broker_drain "$_p $_s broker_cpu_s=$BD_BROKER_CPU"

# One outside producer, Mosquitto's own clients: `mosquitto_pub -l` (QoS 2, one message
# per line of a file) into `mosquitto_sub` (QoS 2, persistent session like the writer's),
# no database. Rate = N / (time from the start of mosquitto_pub until mosquitto_sub has
# all N). This is the ceiling for line 4m.
LINES_FILE=$T/lines.jsonl
awk -v n="$N_LINES" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"values\":{\"build_id\":1,\"line\":\"step %07d: compiling src/mod_%03d.c ok\"}}\n", i, i % 1000 }' >"$LINES_FILE"
say "broker ceiling, one mosquitto_pub -l into mosquitto_sub: $N_LINES messages"
fresh_broker
timeout "$PHASE_LIMIT" mosquitto_sub -p "$MQTT_PORT" -i bench-lines-sub -c -q 2 -t bench/lines -C "$N_LINES" >"$T/lines.sub" 2>"$T/lines.err" &
_sp=$!
wait_until 10 grep -q " bench-lines-sub 2 bench/lines" "$T/broker/mosquitto.log" || say "mosquitto_sub did not subscribe"
t0=$(now)
mosquitto_pub -p "$MQTT_PORT" -q 2 -t bench/lines -l <"$LINES_FILE"
wait "$_sp"
t1=$(now)
PUBL_N=$(wc -l <"$T/lines.sub")
PUBL_RATE=$(calc "$PUBL_N / ($t1 - $t0)")
PUBL_NOTE="$PUBL_N of $N_LINES arrived in $(calc_f "%.2f" "$t1 - $t0") s"
record lines_ceiling "n=$PUBL_N secs=$(calc "$t1 - $t0") rate=$PUBL_RATE"

# ---------------------------------------------------------------------------------
# 4, 5. mosqlite end to end.
HAVE_WRITER=
[ -x "$BIN/mosqlite-writer" ] && HAVE_WRITER=1
# stat_of KEY: a number from the writer's retained status.
stat_of() { status | sed -n "s/.*\"$1\":[ ]*\([0-9.]*\).*/\1/p" | head -1; }
# commits_at N: the writer's commit count once its status says N applied (the status
# is published every ~2 s while counters change), or ? .
applied_ge() { _a=$(stat_of applied); [ -n "$_a" ] && [ "$_a" -ge "$1" ]; }
commits_at() { if wait_until 6 applied_ge "$1"; then stat_of commits; else echo "?"; fi; }
# per_commit N FORMAT: requests per commit once the status says N applied, or ? .
per_commit() {
    _c=$(commits_at "$1")
    if [ "$_c" != "?" ] && [ "$_c" != 0 ]; then calc_f "$2" "$1 / $_c"; else echo "?"; fi
}
# phase_begin / phase_end: CPU seconds the broker and the writer spent between them.
phase_begin() { PB0=$(cpu_s "$BROKER_PID"); PW0=$(cpu_s "$WRITER_PID" 2>/dev/null || echo 0); PL0=$(lost_count); }
phase_end() {
    PB=$(calc_f "%.2f" "$(cpu_s "$BROKER_PID") - $PB0")
    PW=$(calc_f "%.2f" "$(cpu_s "$WRITER_PID" 2>/dev/null || echo "$PW0") - $PW0")
    PL=$(( $(lost_count) - PL0 ))
}
# fresh_writer NAME: a fresh broker, and the writer on a fresh database $T/NAME.db.
fresh_writer() {
    fresh_broker
    DB=$T/$1.db
    writer_start
}

# tally DB N: once the row count has stopped moving, how many of N distinct requests
# (each build_logs row is unique by build_id and line) are missing, and how many rows
# are there twice. Sets LOST and TWICE.
tally() {
    _prev=-1
    for _i in 1 2 3 4 5 6 7 8 9 10; do
        _now=$(sqlite3 -cmd '.timeout 5000' "$1" 'SELECT count(*) FROM build_logs')
        [ "$_now" = "$_prev" ] && break
        _prev=$_now
        sleep 0.5
    done
    set -- $(sqlite3 -cmd '.timeout 5000' -separator ' ' "$1" \
        "SELECT count(*), count(DISTINCT build_id || ':' || line) FROM build_logs") "$2"
    LOST=$(( $3 - $2 )) TWICE=$(( $1 - $2 ))
}

if [ -n "$HAVE_WRITER" ]; then
    WRITER_ARGS="--request-protocol $REQ_PROTO ${WRITER_ARGS:-}"
    # e2e K TAG [WRITER ARGS...]: on a fresh file e2eKTAG.db, K producers publish N_E2E id-less requests; rate = rows
    # committed / time from the first publish until they are all in the database.
    e2e() {
        _k=$1 _tag=$2; shift 2
        _wa=$WRITER_ARGS
        WRITER_ARGS="$*"
        fresh_writer "e2e$_k$_tag" || { E2E=; WRITER_ARGS=$_wa; return; }
        WRITER_ARGS=$_wa
        if [ "$_k" = 1 ] && [ -z "$_tag" ]; then
            sleep 1
            RSS_IDLE=$(vm "$WRITER_PID" VmHWM)
            record rss_idle "hwm_mib=$RSS_IDLE rss_mib=$(vm "$WRITER_PID" VmRSS)"
        fi
        phase_begin
        _p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$N_E2E" -c "$_k" \
            -w "$WINDOW" --db "$DB" --timeout "$PHASE_LIMIT")
        phase_end
        _b=$(per_commit "$N_E2E" %.0f)
        tally "$DB" "$N_E2E"
        record "e2e$_k$_tag" "$_p broker_cpu_s=$PB writer_cpu_s=$PW avg_batch=$_b writer_reconnects=$PL lost=$LOST twice=$TWICE"
        note_line "4 e2e $_k producer(s)${*:+ ($*)}: $(kv "$_p" commit_secs) s wall; CPU s broker $PB, writer $PW," \
            "driver $(kv "$_p" cpu_s); avg requests per commit $_b; writer lost its connection $PL times"
        E2E=$(kv "$_p" commit_rate) E2E_NOTE="lost $LOST, twice $TWICE"
        if [ "$(kv "$_p" timeout)" = 1 ]; then
            E2E_NOTE="INCOMPLETE: $(kv "$_p" rows) of $N_E2E rows in $PHASE_LIMIT s ($LOST not yet applied), twice $TWICE"
        fi
        [ "$PL" -gt 0 ] && E2E_NOTE="$E2E_NOTE; writer reconnected $PL times"
        writer_halt
    }
    for k in $PRODUCERS; do
        say "mosqlite end to end, $k producers (request session MQTT $REQ_PROTO)"
        e2e "$k" "" --request-protocol "$REQ_PROTO"
        eval "E2E$k=\$E2E E2E${k}_NOTE=\$E2E_NOTE"
    done
    for k in $ALT_PRODUCERS; do
        say "mosqlite end to end, $k producers (request session MQTT $ALT_PROTO)"
        e2e "$k" alt --request-protocol "$ALT_PROTO"
        eval "ALT$k=\$E2E ALT${k}_NOTE=\$E2E_NOTE"
    done

    # latency R: steady R requests/s with id and reply_to for LAT_SECS; receipts timed.
    latency() {
        fresh_writer "latency$1"
        phase_begin
        r=$("$MQB" rate -p "$MQTT_PORT" -t mosqlite/write/build_logs -r "$1" -s "$LAT_SECS" --timeout 30)
        phase_end
        _sent=$(kv "$r" sent)
        _b=$(per_commit "$_sent" %.1f)
        "$MQB" wait --db "$DB" -n "$_sent" --timeout "$PHASE_LIMIT" >/dev/null   # the rest applied
        tally "$DB" "$_sent"
        record "latency$1" "$r broker_cpu_s=$PB writer_cpu_s=$PW lost=$LOST twice=$TWICE"
        note_line "4e latency at $1/s: sent at $(kv "$r" rate)/s; CPU s broker $PB, writer $PW over $LAT_SECS s;" \
            "avg requests per commit $_b; writer lost its connection $PL times"
        eval "LAT$1=\"\$(kv \"\$r\" p50_ms)/\$(kv \"\$r\" p99_ms)/\$(kv \"\$r\" max_ms)\""
        eval "LAT$1_P99=\$(kv \"\$r\" p99_ms)"
        eval "LAT$1_NOTE=\"\$(kv \"\$r\" receipts)/\$_sent receipts, \$(kv \"\$r\" not_applied) not applied; lost \$LOST, twice \$TWICE\""
        writer_halt
    }
    for r in $RATES; do
        say "receipt latency at $r requests/s"
        latency "$r"
    done

    # backlog N NAME [perf]: a fresh broker; the writer's session made, the writer
    # stopped; N requests queued; the writer started on a fresh $T/NAME.db; timed until
    # all N rows are committed or DRAIN_LIMIT s pass. Sets BL_*; leaves the writer running.
    backlog() {
        fresh_writer "$2" && writer_halt
        _p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$1" -w "$WINDOW" --timeout 900)
        BL_QUEUE_RATE=$(kv "$_p" pub_rate)
        PB0=$(cpu_s "$BROKER_PID") PL0=$(lost_count)
        rm -f "$DB" "$DB-wal" "$DB-shm"
        "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "$ROOT/conf/schema" \
            ${WRITER_ARGS:-} >>"$WRITER_LOG" 2>&1 &
        WRITER_PID=$!
        PIDS="$PIDS $WRITER_PID"
        if [ -n "${3:-}" ]; then
            perf record -e cpu-clock -F 999 -g -o "$T/writer.perf" -p "$WRITER_PID" >"$T/perf-w.log" 2>&1 &
            PERF_W=$!
            perf record -e cpu-clock -F 999 -g -o "$T/broker.perf" -p "$BROKER_PID" >"$T/perf-b.log" 2>&1 &
            PERF_B=$!
        fi
        _w=$("$MQB" wait --db "$DB" -n "$1" --timeout "$DRAIN_LIMIT")
        if [ -n "${3:-}" ]; then kill -INT "$PERF_W" "$PERF_B"; wait "$PERF_W" "$PERF_B"; fi
        PB=$(calc_f "%.2f" "$(cpu_s "$BROKER_PID") - $PB0")
        PL=$(( $(lost_count) - PL0 ))
        BL_RATE=$(kv "$_w" rate) BL_ROWS=$(kv "$_w" rows) BL_SECS=$(kv "$_w" secs)
        BL_DONE=yes
        [ "$(kv "$_w" timeout)" = 1 ] && BL_DONE=no
        record "backlog-$2" "$_p $_w broker_cpu_s=$PB writer_reconnects=$PL"
    }
    say "backlog: $N_BACKLOG requests queued while the writer is down, then drained"
    backlog "$N_BACKLOG" backlog
    DR_RATE=$BL_RATE DR_ROWS=$BL_ROWS DR_SECS=$BL_SECS DR_DONE=$BL_DONE DR_QUEUE_RATE=$BL_QUEUE_RATE
    tally "$DB" "$N_BACKLOG"
    DR_LOST=$LOST DR_TWICE=$TWICE
    BROKER_HWM=$(vm "$BROKER_PID" VmHWM)
    RSS_DRAIN=$(vm "$WRITER_PID" VmHWM)
    CPU_DRAIN=$(cpu_s "$WRITER_PID")
    CPU_100K=
    [ "${DR_ROWS:-0}" -gt 0 ] && CPU_100K=$(calc "$CPU_DRAIN * 100000 / $DR_ROWS")
    record drain "hwm_mib=$RSS_DRAIN cpu_s=$CPU_DRAIN cpu_per_100k=$CPU_100K broker_hwm_mib=$BROKER_HWM"
    note_line "4d drain: $DR_ROWS rows in $DR_SECS s; CPU s broker $PB, writer $CPU_DRAIN;" \
        "writer lost its connection $PL times; broker peak RSS $BROKER_HWM MiB"
    writer_halt

    # One `mosquitto_pub -l` producer of N_LINES id-less requests into the writer, timed
    # from its start until the rows are all in the file (line 4m, against line 1m).
    say "mosqlite, one mosquitto_pub -l producer: $N_LINES requests"
    if fresh_writer lines; then
        "$MQB" wait --db "$DB" -n "$N_LINES" --timeout "$PHASE_LIMIT" >"$T/lines.wait" &
        _wp=$!
        phase_begin
        t0=$(now)
        mosquitto_pub -p "$MQTT_PORT" -q 2 -t mosqlite/write/build_logs -l <"$LINES_FILE"
        wait "$_wp"
        t1=$(now)
        phase_end
        _w=$(cat "$T/lines.wait")
        tally "$DB" "$N_LINES"
        LINES_RATE=$(calc "$(kv "$_w" rows) / ($t1 - $t0)")
        LINES_NOTE="lost $LOST, twice $TWICE"
        [ "$(kv "$_w" timeout)" = 1 ] && LINES_NOTE="INCOMPLETE: $(kv "$_w" rows) of $N_LINES rows in $PHASE_LIMIT s, twice $TWICE"
        LINES_CPU_100K=$(calc "$PW * 100000 / $N_LINES")
        record lines "$_w secs=$(calc "$t1 - $t0") rate=$LINES_RATE writer_cpu_s=$PW broker_cpu_s=$PB lost=$LOST twice=$TWICE"
        note_line "4m mosquitto_pub -l: $(kv "$_w" rows) rows in $(calc_f "%.2f" "$t1 - $t0") s; CPU s broker $PB, writer $PW" \
            "($(calc_f "%.2f" "$LINES_CPU_100K") s per 100,000 requests); writer lost its connection $PL times"
        writer_halt
    fi

    # Bulk: N_BULK rows in requests of BULK_OPS inserts each (one transaction per request),
    # from mqbench; the writer's CPU per 1,000,000 rows (line 5e) against SQLite's own
    # for the same rows at 1000 per transaction (line 2b), and its rate.
    say "bulk: $N_BULK rows in transactions of $BULK_OPS inserts"
    if fresh_writer bulk; then
        phase_begin
        _p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write -n "$((N_BULK / BULK_OPS))" --ops "$BULK_OPS" \
            -w 10 --db "$DB" --timeout "$PHASE_LIMIT")
        phase_end
        tally "$DB" "$N_BULK"
        BULK_RATE=$(kv "$_p" commit_rate)
        BULK_CPU_1M=$(calc "$PW * 1000000 / $N_BULK")
        BULK_NOTE="lost $LOST, twice $TWICE"
        [ "$(kv "$_p" timeout)" = 1 ] && BULK_NOTE="INCOMPLETE: $(kv "$_p" rows) of $N_BULK rows in $PHASE_LIMIT s, twice $TWICE"
        record bulk "$_p writer_cpu_s=$PW broker_cpu_s=$PB lost=$LOST twice=$TWICE"
        note_line "5e bulk: $(kv "$_p" rows) rows in $(kv "$_p" commit_secs) s ($(int "$BULK_RATE") rows/s, $(ratio "$BULK_RATE" "$SQLB") x line 2b);" \
            "CPU s broker $PB, writer $PW; writer lost its connection $PL times"
        writer_halt
    fi

    if [ -n "${PROFILE:-}" ]; then
        say "profile: writer and broker under perf while the writer drains $N_PROF requests"
        backlog "$N_PROF" profile perf
        PROF_NOTE="$BL_ROWS rows in $BL_SECS s"
        writer_halt
    fi
fi
[ -n "${BROKER_PID:-}" ] && broker_kill

# ---------------------------------------------------------------------------------
# The table.
row() { printf '%-8s %-50s %14s %8s %8s  %s\n' "$@"; }
rate_cell() { if [ -n "$1" ]; then echo "$(int "$1") $2"; else echo "-"; fi; }

echo
row "#" "measurement" "result" "/line1" "/line3a" "target / notes"
row "-----" "--------------------------------------------------" "--------------" "--------" "--------" "------------------------------"
for k in $PRODUCERS; do
    eval "v=\$CEIL$k n=\$CEIL${k}_NOTE"
    row "1.$k" "broker QoS 2 ceiling, $k pub(s) -> 1 sub, no DB" "$(rate_cell "$v" msg/s)" "$(ratio "$v" "$CEIL1")" - "$n"
done
row 1d "broker drain, $N_BACKLOG queued -> returning sub" "$(rate_cell "$BD_RATE" msg/s)" "$(ratio "$BD_RATE" "$CEIL1")" - "$BD_NOTE"
row 1m "broker, one mosquitto_pub -l -> mosquitto_sub" "$(rate_cell "$PUBL_RATE" msg/s)" "$(ratio "$PUBL_RATE" "$CEIL1")" - "$PUBL_NOTE"
row 2a "SQLite, 1 txn per row (prepared, FULL, WAL)" "$(rate_cell "$SQL1" rows/s)" "$(ratio "$SQL1" "$CEIL1")" "$(ratio "$SQL1" "$NAIVE1")" ""
row 2b "SQLite, 1000 rows per txn" "$(rate_cell "$SQLB" rows/s)" "$(ratio "$SQLB" "$CEIL1")" "$(ratio "$SQLB" "$NAIVE1")" ""
row 3a "naive: one sqlite3 process per write" "$(rate_cell "$NAIVE1" rows/s)" "$(ratio "$NAIVE1" "$CEIL1")" "1.00" ""
row 3b "naive: 8 sqlite3 writers, no busy timeout" "$(rate_cell "$NAIVE8_RATE" rows/s)" "$(ratio "$NAIVE8_RATE" "$CEIL1")" "$(ratio "$NAIVE8_RATE" "$NAIVE1")" "$NAIVE8_LOCKED of $((8 * N_NAIVE8)) 'database is locked', $NAIVE8_ROWS rows"
row 3c "naive: 8 sqlite3 writers, .timeout 5000" "$(rate_cell "$NAIVE8T_RATE" rows/s)" "$(ratio "$NAIVE8T_RATE" "$CEIL1")" "$(ratio "$NAIVE8T_RATE" "$NAIVE1")" "$NAIVE8T_LOCKED of $((8 * N_NAIVE8)) 'database is locked', $NAIVE8T_ROWS rows"
if [ -n "$HAVE_WRITER" ]; then
    for k in $PRODUCERS; do
        eval "v=\$E2E$k n=\$E2E${k}_NOTE c=\$CEIL$k"
        rb=$(ratio "$v" "$CEIL1")
        rc=$(ratio "$v" "$c")
        rn=$(ratio "$v" "$NAIVE1")
        # The target compares with the broker's ceiling for the same number of producers.
        row "4.$k" "mosqlite e2e, $k producer(s), $N_E2E requests" "$(rate_cell "$v" rows/s)" "$rb" "$rn" \
            "$rc x line 1.$k, >=0.9: $(verdict "$rc >= 0.9" 2>/dev/null); $n"
    done
    for k in $ALT_PRODUCERS; do
        eval "v=\$ALT$k n=\$ALT${k}_NOTE c=\${CEIL$k:-}"
        row "4p.$k" "  same, request session in MQTT $ALT_PROTO" "$(rate_cell "$v" rows/s)" "$(ratio "$v" "$CEIL1")" "$(ratio "$v" "$NAIVE1")" \
            "$(ratio "$v" "$c") x line 1.$k; $n"
    done
    if [ "$DR_DONE" = yes ]; then bl="all drained in $DR_SECS s; lost $DR_LOST, twice $DR_TWICE"
    else bl="INCOMPLETE: $DR_ROWS rows in the $DRAIN_LIMIT s limit ($DR_LOST not yet applied), twice $DR_TWICE"; fi
    rd=$(ratio "$DR_RATE" "$BD_RATE")
    row 4d "mosqlite backlog drain, $N_BACKLOG queued" "$(rate_cell "$DR_RATE" rows/s)" "$(ratio "$DR_RATE" "$CEIL1")" "$(ratio "$DR_RATE" "$NAIVE1")" \
        "$rd x line 1d, >=0.9: $(verdict "$rd >= 0.9" 2>/dev/null) ($bl; queued at $(int "$DR_QUEUE_RATE") msg/s)"
    rm_=$(ratio "${LINES_RATE:-}" "$PUBL_RATE")
    row 4m "mosqlite, one mosquitto_pub -l, $N_LINES requests" "$(rate_cell "${LINES_RATE:-}" rows/s)" "$(ratio "${LINES_RATE:-}" "$CEIL1")" "$(ratio "${LINES_RATE:-}" "$NAIVE1")" \
        "$rm_ x line 1m, >=0.9: $(verdict "$rm_ >= 0.9" 2>/dev/null); ${LINES_NOTE:-not measured}"
    for r in $RATES; do
        eval "v=\$LAT$r p=\$LAT${r}_P99 n=\$LAT${r}_NOTE"
        row "4e.$r" "receipt latency at $r req/s, p50 / p99 / max" "$v ms" - - \
            "p99 < 10 ms: $(verdict "${p:--1} >= 0 && ${p:--1} < 10") ($n)"
    done
    row 5a "writer peak RSS (VmHWM), idle" "$RSS_IDLE MiB" - - "< 8 MiB: $(verdict "$RSS_IDLE < 8")"
    row 5b "writer peak RSS (VmHWM), draining $N_BACKLOG" "$RSS_DRAIN MiB" - - "< 32 MiB: $(verdict "$RSS_DRAIN < 32") (bare subscriber, line 1d: $BD_SUB_HWM MiB; broker peak $BROKER_HWM MiB)"
    row 5c "writer CPU (user+sys) per 100,000 requests" "$(calc_f "%.2f" "${CPU_100K:-0}") s" - - \
        "<= 1.5 s: $(verdict "${CPU_100K:-99} <= 1.5") (drain: $CPU_DRAIN s for $DR_ROWS rows; line 4m: $(calc_f "%.2f" "${LINES_CPU_100K:-0}") s)"
    row 5e "writer CPU per 1,000,000 rows, $BULK_OPS per request" "$(calc_f "%.2f" "${BULK_CPU_1M:-0}") s" - - \
        "$(ratio "${BULK_CPU_1M:-}" "$SQLB_CPU_1M") x SQLite alone ($(calc_f "%.2f" "$SQLB_CPU_1M") s, line 2b); $(int "${BULK_RATE:-}") rows/s, $(ratio "${BULK_RATE:-}" "$SQLB") x line 2b; ${BULK_NOTE:-not measured}"
else
    row 4 "mosqlite end to end" "no $BIN/mosqlite-writer: run make first" - - ""
fi
# B. Rows in bulk (tests/bench/bulk.sh: its own broker and writer): the log pipe and
# JSON Lines against SQLite alone. NO_BULK=1 skips it.
if [ -z "${NO_BULK:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "bulk: the log pipe and JSON Lines against SQLite alone"
    CEIL1=$(int "$CEIL1") bash "$ROOT/tests/bench/bulk.sh" 2>"$T/bulk.err" | grep -E '^B[0-9]' ||
        row B "rows in bulk" - - - "not measured: $(tail -n 1 "$T/bulk.err")"
fi
# J: the job queue (tests/bench/jobs.sh: brokers and writers of its own), beside this
# run's line 4.1 and line 2a. NO_JOBS=1 skips it.
if [ -z "${NO_JOBS:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "jobs: throughput, pickup, a killed worker, an idle fleet, a file with a million jobs"
    PLAIN=$(int "${E2E1:-}" | grep -v '^-$') COMMIT1=$(int "$SQL1") bash "$ROOT/tests/bench/jobs.sh" 2>"$T/jobs.err" |
        grep -E '^(J[0-9]|# J)' || row J "job queue" - - - "not measured: $(tail -n 1 "$T/jobs.err")"
fi
# 6. The page opening a long build log in Chromium, through the WebSocket listener
# (tests/bench/page.sh: its own broker and writer). NO_PAGE=1 skips it.
if [ -z "${NO_PAGE:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "page: opening a 5,000- and a 50,000-line log in Chromium"
    sh "$ROOT/tests/bench/page.sh" 2>"$T/page.err" | grep -E '^6' ||
        row 6 "page: opening a long log" - - - "not measured: $(tail -n 1 "$T/page.err")"
fi
# A, H: maintenance and hooks (tests/bench/admin.sh); R: read replicas
# (tests/bench/replica.sh). Each with brokers and writers of its own. NO_ADMIN=1,
# NO_REPLICA=1 skip them.
if [ -z "${NO_ADMIN:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "maintenance and hooks: a backup while requests arrive, a slow hook"
    bash "$ROOT/tests/bench/admin.sh" 2>"$T/admin.err" | grep -E '^([AH][0-9]|    )' ||
        row A "maintenance and hooks" - - - "not measured: $(tail -n 1 "$T/admin.err")"
fi
if [ -z "${NO_REPLICA:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "read replicas: the writer with 0, 1 and 4 replicas; replica lag"
    sh "$ROOT/tests/bench/replica.sh" 2>"$T/replica.err" | grep -E '^R[0-9]' ||
        row R "read replicas" - - - "not measured: $(tail -n 1 "$T/replica.err")"
fi
# P: retention deleting a large table under a steady write load (tests/bench/retain.sh).
# NO_RETAIN=1 skips it.
if [ -z "${NO_RETAIN:-}" ] && [ -n "$HAVE_WRITER" ]; then
    say "retention: receipts while a pass deletes a large table, and without"
    bash "$ROOT/tests/bench/retain.sh" 2>"$T/retain.err" | grep -E '^(P[0-9]|    )' ||
        row P "retention" - - - "not measured: $(tail -n 1 "$T/retain.err")"
fi
echo "# /line1: against the 1-publisher broker ceiling (line 1.1); /line3a: against one sqlite3 per write."
echo "# Request session: MQTT $REQ_PROTO (the bare subscriber of lines 1 and 1d too; receive maximum $RECV_MAX)."
echo "# lost / twice: requests missing from the file once the phase is over / rows applied twice, counted"
echo "# in the file. A phase cut by its time limit (INCOMPLETE) counts what was not yet applied instead."
echo "# Producers keep $WINDOW QoS 2 messages in flight in total (at least 2 per connection)."
echo "# Each broker phase runs on a fresh broker; mosqlite phases on a fresh writer and file."
echo "# Took $(( $(date +%s) - STARTED )) s."
cat "$NOTES"

# top_symbols FILE: the 20 symbols with the most self time in a perf file.
top_symbols() {
    perf report -i "$1" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -20 | sed -e 's/ *- *- *$//' -e 's/^/#   /'
}
if [ -n "${PROFILE:-}" ] && [ -f "$T/writer.perf" ]; then
    echo
    echo "# profile while the writer drains $N_PROF queued requests ($PROF_NOTE); perf cpu-clock, self time"
    echo "# writer, by library:"
    perf report -i "$T/writer.perf" --no-children -g none --sort dso --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -8 | sed 's/^/#   /'
    echo "# writer, top symbols:"
    top_symbols "$T/writer.perf"
    echo "# broker (mosquitto), top symbols:"
    top_symbols "$T/broker.perf"
fi
exit 0
