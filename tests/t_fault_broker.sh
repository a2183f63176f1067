#!/bin/bash
# Fault: SIGKILL the broker (persistence on) in the middle of a stream of id'd requests
# through mosqlite-pub --wait, and restart it on the same ports and persistence
# directory. What the broker held since its last autosave dies with it; the producers
# republish with the same ids. Short: 2,000 requests, 1 broker kill; SOAK=1: 11,000
# requests, 5 kills. Exactly once, order of the --window 1 producers, integrity, and the
# writer (never restarted) counts every request once.
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

NO=100 NW=900 PACE=1500 KILLS=1
if [ -n "${SOAK:-}" ]; then NO=500 NW=5000 PACE=500 KILLS=5; fi
TOTAL=$((2 * NO + 2 * NW))

broker_start
writer_start
producer 1 "$NO" 0 --window 1
producer 2 "$NO" 0 --window 1
producer 3 "$NW" "$PACE"
producer 4 "$NW" "$PACE"

kills=0
for k in $(seq 1 "$KILLS"); do
    want=$(( TOTAL * k / (KILLS + 1) ))
    wait_until 120 at_least "$want" || { fail "rows reached $want before broker kill $k"; break; }
    broker_kill
    kills=$((kills + 1))
    note "broker kill $k at $(applied_rows) rows"
    sleep 0.5
    broker_start
    wait_until 20 status_is online || fail "writer back online after broker kill $k"
done
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2"
wait_until 10 status_applied_is "$TOTAL"
check_eq "writer's status: applied = every request (it ran throughout)" "$(status_field applied)" "$TOTAL"
check_eq "writer's status: rejected" "$(status_field rejected)" 0
check "writer never restarted" kill -0 "$WRITER_PID"
note "FIGURES t_fault_broker: requests=$TOTAL broker-kills=$kills lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
