#!/bin/bash
# The problem mosqlite exists to remove: 16 concurrent producers using plain
# mosquitto_pub (each numbering its messages) and 4 sqlite3 readers polling the file.
# Every row must be present, each producer's rows in its order, and no process may
# see "database is locked".
. "$(dirname "$0")/lib.sh"

P=${PRODUCERS:-16}
N=${PER_PRODUCER:-60}
[ -n "${SOAK:-}" ] && N=500
broker_start
writer_start

# Readers as docs/writing.md tells them to read: a busy timeout, for SQLite's rare transient
# SQLITE_BUSY on opening a WAL file (they never wait for the writer's transactions).
for r in 1 2 3 4; do
    ( while [ ! -f "$T/stop" ]; do
          sqlite3 -cmd '.timeout 2000' "$DB" "SELECT count(*), max(id) FROM build_logs" >/dev/null 2>>"$T/reader$r.err" ||
              echo "reader exit $?" >>"$T/reader$r.err"
      done ) &
    PIDS="$PIDS $!"
done
start=$(date +%s.%N)
for p in $(seq 1 "$P"); do
    ( for i in $(seq 1 "$N"); do
          pub "write/build_logs" "{\"values\":{\"build_id\":$p,\"line\":\"$i\"}}" || echo "pub $p/$i failed: $?"
      done ) >"$T/producer$p.out" 2>&1 &
    PIDS="$PIDS $!"
    eval "prod_$p=$!"
done
for p in $(seq 1 "$P"); do eval "wait \$prod_$p"; done
total=$((P * N))
wait_until 60 rows_are build_logs "$total"
end=$(date +%s.%N)
touch "$T/stop"
sleep 0.3
check_eq "every row present ($P producers x $N)" "$(sql 'SELECT count(*) FROM build_logs')" "$total"
bad=0
for p in $(seq 1 "$P"); do
    got=$(sql "SELECT group_concat(line) FROM (SELECT line FROM build_logs WHERE build_id=$p ORDER BY id)")
    [ "$got" = "$(seq -s, 1 "$N")" ] || { bad=$((bad + 1)); note "producer $p out of order: $got"; }
done
check_eq "each producer's rows in its order" "$bad" 0
check_eq "no producer reported an error" "$(cat "$T"/producer*.out | wc -l)" 0
locked=$(cat "$T"/reader*.err "$T"/producer*.out "$WRITER_LOG" | grep -ci 'locked')
check_eq "zero \"database is locked\" anywhere" "$locked" 0
check_eq "readers saw no error at all" "$(cat "$T"/reader*.err | wc -l)" 0
st=$(status)
note "$(awk -v t="$total" -v s="$start" -v e="$end" 'BEGIN { printf "%d rows in %.1f s (%.0f rows/s, one mosquitto_pub process per row)", t, e - s, t / (e - s) }')"
note "writer status: $st"
