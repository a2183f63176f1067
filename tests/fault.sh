# fault.sh: sourced by every tests/t_fault_*.sh, right after lib.sh. The fault tests all
# stream the same kind of id'd requests through mosqlite-pub (producer P's request i has
# id "f-P-i" and becomes the build_logs row build_id P, line i), inject one fault (writer
# killed, stopped or sent SIGTERM; broker killed; disk full; database locked), and check
# the outcome the same way: every request applied exactly once, order kept for the
# producers that must keep it, integrity. This file holds that shared part: generating
# the requests, starting and waiting for the producers, counting rows, reading the
# writer's status, the end-of-stream checks. Each test keeps its own sizes, its fault and
# its own expectations. Not named t_*.sh, so tests/run.sh does not run it as a test.
# Needs bash (process substitution).

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
# producers_start NO NW PACE_MS [mosqlite-pub options]: producers 1 and 2, NO requests
# each at full speed with --window 1 (order must be kept); producers 3 and 4, NW requests
# each, PACE_MS every 100, with the default window. The options go to all four.
producers_start() {
    _no=$1 _nw=$2 _pace=$3; shift 3
    producer 1 "$_no" 0 --window 1 "$@"
    producer 2 "$_no" 0 --window 1 "$@"
    producer 3 "$_nw" "$_pace" "$@"
    producer 4 "$_nw" "$_pace" "$@"
}
# error_is JSON: the writer's status has "error": JSON (a grep pattern, e.g. null).
error_is() { status | grep -q "\"error\":$1"; }
# status_counts WHO WHAT WANT: once the writer's status says applied = WANT, check that
# ("WHO: applied = WHAT") and that it rejected nothing ("WHO: rejected").
status_counts() {
    wait_until 10 status_applied_is "$3"
    check_eq "$1: applied = $2" "$(status_field applied)" "$3"
    check_eq "$1: rejected" "$(status_field rejected)" 0
}
