#!/bin/bash
# Fault: SIGSTOP the writer (keepalive 5 s) for longer than the broker waits (1.5 x
# keepalive), so the broker drops it and fires its Last Will, then SIGCONT. Nothing is
# lost (the writer keeps what it holds; the broker keeps the rest in the persistent
# session), so order must be kept for every producer, windowed ones included.
. "$(dirname "$0")/lib.sh"

# ---- stream helpers (the same block in each tests/t_fault_*.sh) ----------------------
# feed P N PACE_MS: producer P's N requests as JSON Lines; sleeps PACE_MS every 100.
feed() {
    awk -v p="$1" -v n="$2" -v d="$3" 'BEGIN { for (i = 1; i <= n; i++) {
        printf "{\"id\":\"f-%d-%d\",\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"%d\"}}\n", p, i, p, i
        if (d > 0 && i % 100 == 0) { fflush(); system("sleep " d / 1000) } } }'
}
# producer P N PACE_MS [mosqlite-pub options]: start producer P in the background.
producer() {
    _p=$1 _n=$2 _d=$3; shift 3
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 120 -v "$@" - < <(feed "$_p" "$_n" "$_d") \
        >"$T/pub$_p.out" 2>"$T/pub$_p.err" &
    eval "PUB_$_p=$!"
    PIDS="$PIDS $!"
}
# producers_wait P: wait for producers 1..P; each must exit 0 with no rejection.
producers_wait() {
    for _p in $(seq 1 "$1"); do
        eval "wait \$PUB_$_p"; _rc=$?
        check_eq "producer $_p: mosqlite-pub --wait exit 0" "$_rc" 0
        note "producer $_p: $(tail -1 "$T/pub$_p.err")"
    done
    check_eq "no request rejected" "$(cat "$T"/pub*.err | grep -c 'rejected:')" 0
}
applied_rows() { sql "SELECT count(*) FROM build_logs WHERE build_id BETWEEN 1 AND 99"; }
at_least() { [ "$(applied_rows)" -ge "$1" ]; }
# out_of_order P: rows of producer P not directly after their predecessor (0 = in order).
out_of_order() {
    sql "SELECT count(*) FROM (SELECT CAST(line AS INTEGER) - lag(CAST(line AS INTEGER), 1, 0)
         OVER (ORDER BY id) AS d FROM build_logs WHERE build_id = $1) WHERE d <> 1"
}
status_field() { status | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
status_applied_is() { [ "$(status_field applied)" = "$1" ]; }
# stream_check "P:N ..." ORDERED: exactly-once for each producer P of N requests; order
# kept for the producers listed in ORDERED; integrity. Sets LOST, DUPS and TOTAL.
stream_check() {
    TOTAL=0
    for _pn in $1; do TOTAL=$((TOTAL + ${_pn#*:})); done
    _rows=$(applied_rows)
    _distinct=$(sql "SELECT count(*) FROM (SELECT DISTINCT build_id, line FROM build_logs WHERE build_id BETWEEN 1 AND 99)")
    LOST=$((TOTAL - _distinct)) DUPS=$((_rows - _distinct))
    check_eq "every request applied (lost)" "$LOST" 0
    check_eq "no request applied twice (duplicated)" "$DUPS" 0
    check_eq "every id recorded once in mosqlite_applied" \
        "$(sql "SELECT count(*) FROM mosqlite_applied WHERE id LIKE 'f-%'")" "$TOTAL"
    for _pn in $1; do
        _p=${_pn%:*} _o=$(out_of_order "${_pn%:*}")
        case " $2 " in
            *" $_p "*) check_eq "producer $_p: order kept" "$_o" 0 ;;
            *) note "producer $_p (windowed): $_o rows out of order" ;;
        esac
    done
    check_eq "nothing in mosqlite_rejected" "$(sql 'SELECT count(*) FROM mosqlite_rejected')" 0
    check_eq "PRAGMA integrity_check" "$(sql 'PRAGMA integrity_check')" ok
}
# ---------------------------------------------------------------------------------------

NO=60 NW=500 PACE=1000 STOP_S=12
if [ -n "${SOAK:-}" ]; then NO=300 NW=5000 PACE=300 STOP_S=40; fi
TOTAL=$((2 * NO + 2 * NW))

broker_start
writer_start --keepalive 5
# --timeout 30: a writer that never recovers fails the test in 30 s, not 120.
producer 1 "$NO" 0 --window 1 --timeout 30
producer 2 "$NO" 0 --window 1 --timeout 30
producer 3 "$NW" "$PACE" --timeout 30
producer 4 "$NW" "$PACE" --timeout 30

wait_until 60 at_least $((TOTAL / 4)) || fail "rows reached $((TOTAL / 4))"
kill -STOP "$WRITER_PID"
at_stop=$(applied_rows)
note "SIGSTOP at $at_stop rows, for ${STOP_S}s (keepalive 5 s)"
wait_until 15 status_is offline
check "stopped past its keepalive: the broker fires the Last Will (offline)" status_is offline
sleep $((STOP_S - 8))
check_eq "nothing applied while stopped" "$(applied_rows)" "$at_stop"
kill -CONT "$WRITER_PID"
wait_until 20 status_is online
check "after SIGCONT: online again" status_is online
wait_until 30 at_least "$TOTAL"
flaps=$(grep -c 'request connection lost' "$WRITER_LOG")
check "request connection stable after SIGCONT ($flaps losses logged)" [ "$flaps" -le 3 ]
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2 3 4"
wait_until 10 status_applied_is "$TOTAL"
check_eq "writer's status: applied = every request" "$(status_field applied)" "$TOTAL"
check_eq "writer's status: rejected" "$(status_field rejected)" 0
note "FIGURES t_fault_stop: requests=$TOTAL stops=1 (${STOP_S}s) lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
