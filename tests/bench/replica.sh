#!/bin/sh
# tests/bench/replica.sh: what read replicas cost the writer, and how far behind they are.
# Runnable alone; tests/bench/run.sh may call it. Each phase on a fresh broker, writer
# and files, replicas started (and following) before the load:
#
#   R1.K  the writer's throughput with K replicas (0, 1, 4): mqbench pub, 8 producers,
#         counted in the writer's file; target: 4 replicas >= 0.8 x none (PASS/MISS).
#         Also how long the replicas took to catch up once the writer had it all.
#   R2.R  replica lag at R requests/s (1,000 and 10,000; one replica): mqbench rate for
#         the load, then the replica's own figures from its status: p50 / p99 of the
#         time from the writer's commit to the replica's commit, per commit.
#   R3.K  synchronous replicas: receipts per second (mosqlite-pub --wait, window 1000,
#         ids) with no replica (R3.0) and with one replica and sync-replicas 1 (R3.1),
#         in the same run; target: R3.1 >= 0.7 x R3.0 (PASS/MISS).
#   R4    receipt latency p50 / p99 at 1,000 requests/s with sync-replicas 1 (mqbench rate).
#   R5    failover time on etcd, p50 / p99 over 10 kills of the writer (QUICK: 3): the
#         rounds of tests/t_failover_auto.sh, from the old writer's last receipt to the new
#         writer's first (lease ttl 3 s).
#
#   sh tests/bench/replica.sh            full sizes (a few minutes on 2 cores)
#   QUICK=1 sh tests/bench/replica.sh    small sizes, about a minute
#   KEEP=1 ...                           keep the temp dir
# A report, not a test: exits 0 whatever the numbers (non-zero only if it cannot run).
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh

if [ -n "${QUICK:-}" ]; then
    N_THR=20000 LAT_SECS=5 FAIL_ROUNDS=3
else
    N_THR=100000 LAT_SECS=20 FAIL_ROUNDS=10
fi
REPLICAS=${REPLICAS:-0 1 4}
RATES=${RATES:-1000 10000}
WINDOW=${WINDOW:-100}

CCFLAGS="-O2 -std=c11 -Wall -Wextra -Werror"
PKG=$(pkg-config --cflags --libs libmosquitto sqlite3 libcjson) || exit 2
if [ ! -x "$BB/mqbench" ] || [ tests/bench/mqbench.c -nt "$BB/mqbench" ] || [ tests/bench/bench.h -nt "$BB/mqbench" ]; then
    # shellcheck disable=SC2086
    cc $CCFLAGS -o "$BB/mqbench" tests/bench/mqbench.c $PKG || exit 2
fi
MQB=$BB/mqbench
[ -x "$BIN/mosqlite-replica" ] || { echo "bench: no $BIN/mosqlite-replica: run make first" >&2; exit 2; }

. "$ROOT/tests/lib.sh"
. "$ROOT/tests/replica.sh"
STARTED=$(date +%s)
say() { echo "bench: $*" >&2; }
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
calc_f() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# cpu_s PID: user + system CPU seconds of a process so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null; }

# phase_start K [WRITER ARGS]: a fresh broker, writer and K following replicas (b1..bK).
phase_start() {
    rm -rf "$T/broker" "$T"/b*.db* "$DB" "$DB-wal" "$DB-shm"
    unset MQTT_PORT WS_PORT
    broker_start
    _k=$1; shift
    writer_start "$@"
    set -- "$_k"
    RS=
    i=1
    while [ "$i" -le "$1" ]; do
        replica_start "b$i"
        RS="$RS b$i"
        i=$((i + 1))
    done
    for r in $RS; do
        wait_until 30 sh -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/replica/$r/status -C 1 -W 2 |
            grep -q '\"state\":\"following\"'" || say "replica $r not following after 30 s"
    done
}
phase_stop() {
    for r in $RS; do replica_kill "$r"; done
    writer_kill
    broker_kill
}
all_caught_up() { for r in $RS; do caught_up "$r" || return 1; done; }

THR0=
for k in $REPLICAS; do
    say "throughput with $k replica(s): $N_THR requests"
    phase_start "$k"
    p=$("$MQB" pub -p "$MQTT_PORT" -t mosqlite/write/build_logs -n "$N_THR" -c 8 -w "$WINDOW" --db "$DB" --timeout 300)
    t0=$(now_ms)
    catch=-
    if [ -n "$RS" ]; then
        if wait_until 120 all_caught_up; then catch=$(( $(now_ms) - t0 )); else catch=">120000"; fi
    fi
    wcpu=$(cpu_s "$WRITER_PID") rcpu=0
    for r in $RS; do rcpu=$(calc_f "%.2f" "$rcpu + $(cpu_s "$(replica_pid "$r")")"); done
    eval "THR$k=$(kv "$p" commit_rate) CATCH$k=$catch WCPU$k=$wcpu RCPU$k=$rcpu"
    phase_stop
done

for rate in $RATES; do
    say "replica lag at $rate requests/s for $LAT_SECS s"
    eval "LAG${rate}_P50= LAG${rate}_P99= LAG${rate}_NOTE="
    phase_start 1
    p=$("$MQB" rate -p "$MQTT_PORT" -t mosqlite/write/build_logs -r "$rate" -s "$LAT_SECS" --timeout 60)
    wait_until 60 all_caught_up || say "b1 not caught up 60 s after the load"
    sleep 1.2   # one more status
    st=$(replica_status b1)
    eval "LAG${rate}_P50=$(echo "$st" | sed -n 's/.*"lag_ms_p50":\([0-9]*\).*/\1/p')"
    eval "LAG${rate}_P99=$(echo "$st" | sed -n 's/.*"lag_ms_p99":\([0-9]*\).*/\1/p')"
    eval "LAG${rate}_NOTE=\"$(kv "$p" rate) req/s sent, $(seq_of "$DB") commits; receipts p50 $(kv "$p" p50_ms) / p99 $(kv "$p" p99_ms) ms\""
    phase_stop
done

# Synchronous replicas: receipts per second, and their latency.
N_SYNC=$((N_THR / 2))
for k in 0 1; do
    say "receipts per second with $k synchronous replica(s): $N_SYNC requests"
    if [ "$k" = 0 ]; then phase_start 0; else phase_start 1 --sync-replicas 1; fi
    awk -v n="$N_SYNC" -v k="$k" 'BEGIN { for (i = 1; i <= n; i++)
        printf "{\"table\":\"build_logs\",\"id\":\"s%d-%d\",\"values\":{\"build_id\":1,\"line\":\"line %d\"}}\n", k, i, i }' >"$T/sync.jsonl"
    t0=$(now_ms)
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --window 1000 --timeout 120 - <"$T/sync.jsonl" >/dev/null 2>"$T/sync$k.err" ||
        say "mosqlite-pub: $(tail -n 1 "$T/sync$k.err")"
    ms=$(( $(now_ms) - t0 ))
    eval "SYNC$k=$(calc_f "%.0f" "$N_SYNC * 1000 / $ms")"
    phase_stop
done
say "receipt latency at 1000 requests/s with sync-replicas 1 for $LAT_SECS s"
phase_start 1 --sync-replicas 1
p=$("$MQB" rate -p "$MQTT_PORT" -t mosqlite/write/build_logs -r 1000 -s "$LAT_SECS" --timeout 60)
SYNCLAT="$(kv "$p" p50_ms) / $(kv "$p" p99_ms) ms"
SYNCLAT_NOTE="$(kv "$p" rate) req/s sent, $(kv "$p" receipts) receipts, max $(kv "$p" max_ms) ms; one replica, sync-replicas 1"
phase_stop

# Failover time: the rounds of tests/t_failover_auto.sh (a real 3-member etcd, the writer
# killed, the designated synchronous replica promoting itself), its figures line read back.
say "failover on etcd: $FAIL_ROUNDS writer kills (tests/t_failover_auto.sh)"
f=$(ROUNDS=$FAIL_ROUNDS bash tests/t_failover_auto.sh 2>&1 | sed -n 's/^# FIGURES t_failover_auto: //p' | tail -1)
FAILOVER="$(kv "$f" failover_ms_p50) / $(kv "$f" failover_ms_p99) ms"
FAILOVER_NOTE="$(kv "$f" rounds) kills, etcd lease ttl $(kv "$f" ttl); acknowledged writes lost $(kv "$f" lost), applied twice $(kv "$f" duplicated)"

row() { printf '%-8s %-50s %14s %8s  %s\n' "$@"; }
echo "# mosqlite replica bench$( [ -n "${QUICK:-}" ] && echo ' (QUICK=1: small sizes, figures indicative only)')"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
row "#" "measurement" "result" "/R1.0" "target / notes"
row "-----" "--------------------------------------------------" "--------------" "--------" "------------------------------"
for k in $REPLICAS; do
    eval "v=\$THR$k c=\$CATCH$k wc=\$WCPU$k rc=\$RCPU$k"
    rt=-
    [ -n "${THR0:-}" ] && [ -n "$v" ] && rt=$(calc_f "%.2f" "$v / $THR0")
    note=
    note="CPU: writer ${wc} s, replicas ${rc} s in all"
    [ "$c" != - ] && note="$note; replicas caught up $c ms after the writer had it all"
    if [ "$k" = 4 ] && [ "$rt" != - ]; then note="$rt x R1.0, >=0.8: $(verdict "$rt >= 0.8"); $note"; fi
    row "R1.$k" "writer throughput, $k replica(s), $N_THR requests" "$(calc_f "%.0f" "${v:-0}") rows/s" "$rt" "$note"
done
for rate in $RATES; do
    eval "a=\$LAG${rate}_P50 b=\$LAG${rate}_P99 n=\$LAG${rate}_NOTE"
    row "R2.$rate" "replica lag at $rate req/s, p50 / p99 per commit" "${a:--} / ${b:--} ms" - "$n"
done
rt=$(calc_f "%.2f" "${SYNC1:-0} / ${SYNC0:-1}")
row "R3.0" "receipts/s, no replica, $N_SYNC requests (--wait)" "${SYNC0:-0} req/s" - "mosqlite-pub --wait, window 1000"
row "R3.1" "receipts/s, 1 synchronous replica, $N_SYNC requests" "${SYNC1:-0} req/s" - "$rt x R3.0, >=0.7: $(verdict "$rt >= 0.7")"
row "R4" "receipt p50 / p99 at 1000 req/s, sync-replicas 1" "$SYNCLAT" - "$SYNCLAT_NOTE"
row "R5" "failover, old writer's last receipt to new's first" "$FAILOVER" - "$FAILOVER_NOTE"
echo "# Lag: from the writer's clock just before COMMIT to the replica's COMMIT, per commit (one"
echo "# commit holds a batch of requests); both on this machine, so one clock. Replicas: their default, synchronous=NORMAL."
echo "# The replicas run on this machine too: their CPU and fsyncs compete with the writer's and the"
echo "# broker's (on their own machines they cost the writer only the broker's fan-out)."
echo "# Took $(( $(date +%s) - STARTED )) s."
