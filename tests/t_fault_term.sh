#!/bin/bash
# Fault: SIGTERM in the middle of a large batch. 10,000 requests are queued at the broker
# while the writer is down (mosqlite-pub without --wait: nothing will ever be republished,
# so a request the writer drops on the way out is lost for good); then the writer is
# started with long batches and sent SIGTERM a moment later, three times (SOAK: ten,
# with 40,000). Each time: exit 0, offline status. At the end every request applied
# exactly once and in order.
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

P=4 N=2500 TERMS=3
if [ -n "${SOAK:-}" ]; then N=10000 TERMS=10; fi
TOTAL=$((P * N))

broker_start
writer_start
writer_stop
# The backlog, while the writer is stopped: mosqlite-pub exits 0 only once the broker
# has completed the QoS 2 handshake of every request.
for p in $(seq 1 "$P"); do
    feed "$p" "$N" 0 | "$BIN/mosqlite-pub" -p "$MQTT_PORT" - 2>"$T/backlog$p.err" &
    eval "BL_$p=$!"
done
for p in $(seq 1 "$P"); do
    eval "wait \$BL_$p" || fail "backlog $p: mosqlite-pub failed: $(cat "$T/backlog$p.err")"
done
note "backlog of $TOTAL requests queued at the broker"

# Long batches (up to 5,000 requests or 2 s) so that SIGTERM lands inside one.
terms=0 in_hand=0
for k in $(seq 1 "$TERMS"); do
    before=$(applied_rows)
    writer_start --batch-max 5000 --batch-ms 2000
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
    kill -TERM "$WRITER_PID"
    wait "$WRITER_PID"; rc=$?
    terms=$((terms + 1))
    h=$(sed -n 's/.*stopping: \([0-9]*\) requests in hand.*/\1/p' "$WRITER_LOG" | tail -1)
    in_hand=$((in_hand + ${h:-0}))
    check_eq "SIGTERM $k: exit 0" "$rc" 0
    note "SIGTERM $k: $h requests in hand, $before -> $(applied_rows) rows"
    [ "$(applied_rows)" -ge "$TOTAL" ] && break
done
note "requests the writer reported in hand at its SIGTERMs: $in_hand over $terms"
check_eq "offline status after the last SIGTERM" "$(status)" \
    "$(status | grep '"state":"offline"')"
before=$(applied_rows)
writer_start
wait_until 30 at_least "$TOTAL"
stream_check "1:$N 2:$N 3:$N 4:$N" "1 2 3 4"
wait_until 10 status_applied_is $((TOTAL - before))
check_eq "last writer's status: applied = rows it added" "$(status_field applied)" $((TOTAL - before))
check_eq "no duplicate: nothing was republished, nothing applied twice" "$(status_field duplicates)" 0
note "FIGURES t_fault_term: requests=$TOTAL sigterms=$terms lost=$LOST duplicated=$DUPS"
