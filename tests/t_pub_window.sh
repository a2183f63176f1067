#!/bin/bash
# The log pipe with many transactions in flight (--lines-window): through a broker and
# a writer stopped and started again, and through a broker killed with SIGKILL (once
# just after it saved its state, once long after) and a writer killed with SIGKILL,
# every line is stored once and in the order read (the rows' ids follow the lines),
# with 16 transactions in flight and with one; the same for JSON Lines with --wait
# (mosqlite-pub -, up to 1,000 lines in flight). What the broker or the writer lost is
# sent again after later transactions got through; each transaction names the one
# before it ("after"), so the writer answers those later ones "waiting" and they are
# applied after it. Checked with sqlite3: the count, the count of distinct lines, and
# no row holding a line read before the row before it. SOAK=1 (make soak) repeats it (ROUNDS_SOAK rounds, 10) on 200,000 lines a
# build; make test runs one round of 50,000.
. "$(dirname "$0")/lib.sh"
N=${WINDOW_LINES:-50000}
[ -n "${SOAK:-}" ] && N=${WINDOW_LINES:-200000}
W=${WINDOW_N:-16}
TX=${WINDOW_TX:-100}            # lines per transaction: hundreds of transactions a build
ROUNDS=${ROUNDS:-1}
[ -n "${SOAK:-}" ] && ROUNDS=${ROUNDS_SOAK:-10}

count() { sql "SELECT count(*) FROM build_logs WHERE build_id = $1"; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
# out_of_order B: how many of build B's rows, in id order, hold a line read before
# the row before them.
out_of_order() {
    sql "SELECT count(*) FROM (SELECT line, lag(line) OVER (ORDER BY id) AS prev FROM build_logs WHERE build_id = $1) WHERE prev > line"
}
# waited: how many "waiting" answers the writer gave so far (its log, -v).
waited() { grep -c 'answered waiting' "$T/writer.log" 2>/dev/null || true; }
# lines N: the build's output, N lines, in bursts of 500 with a pause of 10 ms after
# each, as a build prints: the kills below land while transactions are in flight.
lines() {
    awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) { printf "line %07d of a long build log\n", i
                                                       if (i % 500 == 0) { fflush(); system("sleep 0.01") } } }'
}

# pipe B W LOG: the pipe on build B with W transactions in flight, in the background.
pipe() {
    lines "$N" | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee -v --linger 60 --lines-window "$2" --lines-max "$TX" \
        --lines line --with "{\"build_id\": $1}" build_logs 2>"$T/p$1.err.log" &
    PUB=$!
}
# jsonl B: mosqlite-pub --wait - on build B, the same lines as JSON Lines (one insert
# each), in the background.
jsonl() {
    lines "$N" | awk -v b="$1" '{ printf "{\"table\":\"build_logs\",\"values\":{\"build_id\":%d,\"line\":\"%s\"}}\n", b, $0; fflush() }' |
        "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 60 -v - 2>"$T/p$1.err.log" &
    PUB=$!
}
# at B FRACTION: wait until build B has that fraction of the N lines (a/b).
at() { wait_until 60 at_least "$1" $(( N * $2 )) || fail "build $1: $(( N * $2 )) rows"; }
# ended B: the pipe has ended (exit 0) and says what it did.
ended() {
    wait "$PUB"; rc=$?
    check_eq "build $1: the pipe exits 0" "$rc" 0
    note "build $1: $(grep -o 'lines [0-9].*' "$T/p$1.err.log")"
}
once() {
    check_eq "build $1: $N rows, $N distinct lines" \
        "$(sql "SELECT count(*) || ',' || count(DISTINCT line) FROM build_logs WHERE build_id = $1")" "$N,$N"
}
# kills B: the broker SIGKILLed just after it saved its state (SIGUSR1), then long after
# its last save, then the writer SIGKILLed, each while transactions are in flight.
kills() {
    at "$1" 1/5
    kill -USR1 "$BROKER_PID"; sleep 0.2
    broker_kill
    note "build $1: broker killed after a save at $(count "$1") rows"
    sleep 0.5; broker_start
    at "$1" 2/5
    broker_kill
    note "build $1: broker killed without a save at $(count "$1") rows"
    sleep 0.5; broker_start
    at "$1" 3/5
    writer_kill
    note "build $1: writer killed at $(count "$1") rows"
    sleep 0.3; writer_start
}

WRITER_ARGS=-v                  # the writer logs each "waiting" answer
broker_start
writer_start

# The writer's side: a request "after" one not applied yet is answered waiting, not
# applied, not remembered, not a rejection; once that one is applied, it is; "after"
# a rejected one, it is applied.
receipts_bg
check_eq "after an id not applied yet: waiting" \
    "$(req write/build_logs w2 '"after":"w1","values":{"build_id":1,"line":"two"}')" '{"id":"w2","status":"waiting","after":"w1"}'
check_eq "... nothing of it applied, its id not kept, no rejection kept" \
    "$(sql "SELECT (SELECT count(*) FROM build_logs WHERE build_id = 1) || ',' || (SELECT count(*) FROM mosqlite_applied WHERE id = 'w2') || ',' || (SELECT count(*) FROM mosqlite_rejected)")" 0,0,0
req write/build_logs w1 '"values":{"build_id":1,"line":"one"}' >/dev/null
pub write/build_logs "{\"id\":\"w2\",\"reply_to\":\"$REPLY/w2b\",\"after\":\"w1\",\"values\":{\"build_id\":1,\"line\":\"two\"}}"
wait_until 10 grep -q '"id":"w2","status":"applied"' "$RECEIPTS" || fail "w2 sent again after w1: no applied receipt"
check_eq "sent again once w1 is applied: applied after it" \
    "$(sql "SELECT group_concat(line, ' ') FROM (SELECT line FROM build_logs WHERE build_id = 1 ORDER BY id)")" "one two"
req write/build_logs w3 '"values":{"build_id":1,"nope":"x"}' >/dev/null
check_eq "after a rejected request: applied" \
    "$(req write/build_logs w4 '"after":"w3","values":{"build_id":1,"line":"four"}' | grep -o '"status":"[a-z]*"')" '"status":"applied"'
for round in $(seq 1 "$ROUNDS"); do
    b=$(( round * 10 ))
    # 1. The broker and the writer stopped and started again (SIGTERM) with W in
    # flight: every line once, in order.
    pipe "$b" "$W"
    at "$b" 1/4
    broker_stop; note "build $b: broker stopped at $(count "$b") rows"; broker_start
    at "$b" 2/4
    writer_stop; note "build $b: writer stopped at $(count "$b") rows"; writer_start
    ended "$b"; once "$b"
    check_eq "build $b, $W in flight, broker and writer restarted: rows out of order" "$(out_of_order "$b")" 0
    # 2. Killed (SIGKILL) with W in flight: every line once, in order. What the broker
    # or the writer acknowledged and then lost is sent again after later transactions
    # got through; those waited for it.
    pipe $(( b + 1 )) "$W"
    kills $(( b + 1 ))
    ended $(( b + 1 )); once $(( b + 1 ))
    check_eq "build $(( b + 1 )), $W in flight, killed: rows out of order" "$(out_of_order $(( b + 1 )))" 0
    note "build $(( b + 1 )): $(waited) \"waiting\" answer(s) from the writer so far"
    # 3. The same kills with one transaction in flight: every line once, in order.
    pipe $(( b + 2 )) 1
    kills $(( b + 2 ))
    ended $(( b + 2 )); once $(( b + 2 ))
    check_eq "build $(( b + 2 )), one in flight, killed: rows out of order" "$(out_of_order $(( b + 2 )))" 0
    # 4. JSON Lines with --wait (one insert a line, up to --window in flight), the same
    # kills: every line once, in the order read. Each line names the one before in
    # "after" while that one is unanswered.
    jsonl $(( b + 3 ))
    kills $(( b + 3 ))
    wait "$PUB"; rc=$?
    check_eq "build $(( b + 3 )): JSON Lines --wait exits 0" "$rc" 0
    note "build $(( b + 3 )): $(tail -n 1 "$T/p$(( b + 3 )).err.log")"
    check_eq "build $(( b + 3 )), JSON Lines --wait, killed: missing, twice" \
        "$(sql "SELECT ($N - count(DISTINCT line)) || ',' || (count(*) - count(DISTINCT line)) FROM build_logs WHERE build_id = $(( b + 3 ))")" 0,0
    check_eq "build $(( b + 3 )), JSON Lines --wait, killed: rows out of order" "$(out_of_order $(( b + 3 )))" 0
    note "build $(( b + 3 )): $(waited) \"waiting\" answer(s) from the writer so far"
done
