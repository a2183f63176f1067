#!/bin/bash
# tests/bench/bulk.sh: rows in bulk, against SQLite alone inserting the same rows in the
# same run. Runnable alone (bash tests/bench/bulk.sh); prints result lines in the
# manner of tests/bench/run.sh, each with its target and PASS/MISS. A report, not a
# test: exits 0 whatever the numbers.
#
#   B1  SQLite alone (sqlbench), N rows, 100 per transaction      the ceiling
#   B2  SQLite alone, N rows, 1,000 per transaction
#   B3  the log pipe (mosqlite-pub --lines, its default window: 16 in flight), N lines
#       piped in, until the last is in the file: >= 0.5 x B1; with the writer's CPU per N rows
#   B4  the same with one transaction in flight (--lines-window 1: stop and wait)
#   B5  JSON Lines with --wait, transactions of 1,000 ops, N rows: >= 0.5 x B1
#   B6  JSON Lines with --wait, one op per request, N1 requests: >= 0.9 x CEIL1 (the
#       broker's QoS 2 ceiling for one publisher, line 1.1 of run.sh) when given
#   B7, B8  the writer's CPU per 1,000,000 rows of B3 and B5: <= the time 1,000,000 rows
#       take at 0.5 x B1 (a writer that needs more cannot reach B3's target)
#
#   QUICK=1 ...      N=100000, N1=20000
#   N=..., N1=...    sizes (1000000 and 100000)
#   CEIL1=RATE       the broker ceiling for B6 (run.sh passes its line 1.1)
cd "$(dirname "$0")/../.." || exit 2
. tests/bench/env.sh
if [ -n "${QUICK:-}" ]; then N=${N:-100000} N1=${N1:-20000}; fi
N=${N:-1000000} N1=${N1:-100000}
SB=$ROOT/build/bench/sqlbench
[ -x "$SB" ] || BUILD_ONLY=1 sh tests/bench/run.sh >/dev/null || exit 2

. "$ROOT/tests/lib.sh"
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
calc_f() { awk "BEGIN { printf \"$1\", $2 }"; }
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then calc_f "%.2f" "$1 / $2"; else echo -; fi; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
row() { printf '%-8s %-50s %14s  %s\n' "$@"; }
say() { echo "bench: $*" >&2; }
now_ns() { date +%s%N; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
# The rows sqlbench writes: build_id 1 + i % 8, "step %07d: compiling src/mod_%03d.c ok".
text() { awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "step %07d: compiling src/mod_%03d.c ok\n", i, i % 1000 }'; }
ops() { awk -v n="$1" -v per="$2" 'BEGIN { for (i = 0; i < n; i += per) { printf "{\"ops\":["
    for (k = i; k < i + per && k < n; k++) printf "%s{\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"step %07d: compiling src/mod_%03d.c ok\"}}", (k > i ? "," : ""), 1 + k % 8, k, k % 1000
    printf "]}\n" } }'; }
one() { awk -v n="$1" 'BEGIN { for (k = 0; k < n; k++) printf "{\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"step %07d: compiling src/mod_%03d.c ok\"}}\n", 1 + k % 8, k, k % 1000 }'; }

say "bulk: SQLite alone, $N rows"
sqlite_alone() { rm -f "$T/sql.db"*; "$SB" "$T/sql.db" "$ROOT/conf/schema/001_builds.sql" "$N" "$1"; }
r=$(sqlite_alone 100); B1=$(kv "$r" rate)
r=$(sqlite_alone 1000); B2=$(kv "$r" rate)

# run NAME INPUT-FILE ROWS CMD...: a fresh writer and database; CMD reads INPUT-FILE;
# timed from the start until ROWS rows are in the file. Sets RATE, SECS, WCPU, OUT.
run() {
    _name=$1 _in=$2 _rows=$3; shift 3
    [ -n "${WRITER_PID:-}" ] && writer_stop
    DB=$T/$_name.db
    writer_start || { RATE=; return; }
    _c0=$(cpu_s "$WRITER_PID")
    _t0=$(now_ns)
    "$@" <"$_in" >/dev/null 2>"$T/$_name.err"
    wait_until 300 rows_are build_logs "$_rows"    # (the spool holds them all: no line dropped)
    _t1=$(now_ns)
    WCPU=$(calc_f "%.2f" "$(cpu_s "$WRITER_PID") - $_c0")
    SECS=$(calc_f "%.2f" "($_t1 - $_t0) / 1e9")
    RATE=$(calc_f "%.0f" "$(sql 'SELECT count(*) FROM build_logs') / $SECS")
    OUT="$(sql "SELECT count(*) || ' rows, ' || count(DISTINCT build_id || ':' || line) || ' distinct' FROM build_logs") in $SECS s"
}
broker_start
text "$N" >"$T/lines"
ops "$N" 1000 >"$T/ops1000"
one "$N1" >"$T/ops1"
PUB=$BIN/mosqlite-pub

say "bulk: the log pipe, $N lines"
run pipe "$T/lines" "$N" "$PUB" -p "$MQTT_PORT" --no-tee --spool-max 1073741824 --lines line --with '{"build_id": 1}' build_logs
B3=$RATE B3_OUT=$OUT B3_CPU=$WCPU
say "bulk: the log pipe, one transaction in flight"
run pipe1 "$T/lines" "$N" "$PUB" -p "$MQTT_PORT" --no-tee --spool-max 1073741824 --lines-window 1 --lines line --with '{"build_id": 1}' build_logs
B4=$RATE B4_OUT=$OUT
say "bulk: JSON Lines --wait, 1,000 ops per transaction"
run jl1000 "$T/ops1000" "$N" "$PUB" -p "$MQTT_PORT" --wait -
B5=$RATE B5_OUT=$OUT B5_CPU=$WCPU
say "bulk: JSON Lines --wait, one op per request"
run jl1 "$T/ops1" "$N1" "$PUB" -p "$MQTT_PORT" --wait -
B6=$RATE B6_OUT=$OUT B6_CPU=$WCPU

r1=$(ratio "$B3" "$B1") r4=$(ratio "$B4" "$B1") r5=$(ratio "$B5" "$B1") r6=$(ratio "$B6" "${CEIL1:-}")
row B1 "SQLite alone, $N rows, 100 per txn" "$B1 rows/s" "the ceiling of B3, B5"
row B2 "SQLite alone, $N rows, 1,000 per txn" "$B2 rows/s" "$(ratio "$B2" "$B1") x B1"
row B3 "log pipe, $N lines (default window)" "$B3 rows/s" "$r1 x B1, >=0.5: $(verdict "${r1/-/0} >= 0.5") ($B3_OUT; writer CPU $B3_CPU s per $N rows)"
row B4 "log pipe, $N lines, one transaction in flight" "$B4 rows/s" "$r4 x B1 ($B4_OUT)"
row B5 "JSON Lines --wait, 1,000 ops per txn, $N rows" "$B5 rows/s" "$r5 x B1, >=0.5: $(verdict "${r5/-/0} >= 0.5") ($B5_OUT; writer CPU $B5_CPU s)"
if [ -n "${CEIL1:-}" ]; then
    row B6 "JSON Lines --wait, 1 op per request, $N1" "$B6 rows/s" "$r6 x line 1.1, >=0.9: $(verdict "$r6 >= 0.9") ($B6_OUT; writer CPU $B6_CPU s)"
else
    row B6 "JSON Lines --wait, 1 op per request, $N1" "$B6 rows/s" "$(ratio "$B6" "$B1") x B1 (no broker ceiling given: CEIL1; $B6_OUT; writer CPU $B6_CPU s)"
fi
# The writer's CPU per 1,000,000 rows: within the time the rate target gives them (a
# writer that needs more cannot reach 0.5 x B1 even with a core of its own).
cpu_1m() { calc_f "%.2f" "$1 * 1000000 / $N"; }
B3_C1M=$(cpu_1m "$B3_CPU") B5_C1M=$(cpu_1m "$B5_CPU") CPU_MAX=$(calc_f "%.2f" "1000000 / (0.5 * $B1)")
row B7 "writer CPU per 1,000,000 rows, log pipe" "$B3_C1M s" "<= $CPU_MAX s (1,000,000 rows at 0.5 x B1): $(verdict "$B3_C1M <= $CPU_MAX")"
row B8 "writer CPU per 1,000,000 rows, JSON Lines 1,000 ops" "$B5_C1M s" "<= $CPU_MAX s: $(verdict "$B5_C1M <= $CPU_MAX")"
exit 0
