#!/bin/bash
# Leadership in etcd: a real 3-member etcd cluster, a real broker, two real writers on two
# copies of one file with the same leader key (etcd-ttl 5 s: more than an etcd election
# takes, see part 4).
#
# 1. One leads: only it connects to the broker and applies requests; the other waits as
#    a standby, says so, and takes nothing.
# 2. The leader is killed (SIGKILL): the standby takes the key once the lease has
#    expired and applies requests, at a higher epoch (in its status and its file).
# 3. The leader is frozen (SIGSTOP) past its TTL: the other writer takes the key at a
#    higher epoch; woken (SIGCONT), the frozen one commits nothing more and exits.
# 4. An etcd member is killed: the raft leader of etcd, so that the other two elect a
#    new one while the writer's renewals wait. The leader keeps the key and its epoch,
#    and the standby stays one.
# 5. The whole cluster stops answering (its members SIGSTOPped): the leader stops taking
#    requests before its lease could expire (measured from the request time of its last
#    successful renewal, as it logs it), and exits 5; requests sent once the TTL has
#    passed get no receipt.
#
# SOAK=1: part 2 again, KILLS times in a row (default 10), with failover times (kill of
# the leader to its successor's status online) as p50/p99.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"

TTL=${ETCD_TTL:-5}
KILLS=${KILLS:-10}
KEY=/mosqlite/$PREFIX_TOPIC/leader
broker_start
etcd_cluster_start
receipts_bg

# A fresh file, and a copy of it: two writers of one database.
writer_start
# libcurl is loaded only with etcd: a writer without it does not carry it (nor the TLS,
# Kerberos and LDAP libraries it brings), a writer with it does (below).
check "a writer without etcd-endpoints has not loaded libcurl" not grep -q libcurl "/proc/$WRITER_PID/maps"
writer_stop
cp "$DB" "$T/a.db"
cp "$DB" "$T/b.db"

# wstart NAME: a writer on $T/NAME.db under the leader key, log $T/NAME.log; sets PID_NAME.
wstart() {
    "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/$1.db" --schema "$ROOT/conf/schema" --keepalive 5 \
        --etcd-endpoints "$ETCD_ENDPOINTS" --etcd-ttl "$TTL" -v >>"$T/$1.log" 2>&1 &
    eval "PID_$1=$!"
    PIDS="$PIDS $!"
}
epoch_now() { status | sed -n 's/.*"state":"online".*"epoch":\([0-9]*\).*/\1/p'; }
online_above() { e=$(epoch_now); [ -n "$e" ] && [ "$e" -gt "$1" ]; }
rows_in() { sqlite3 -cmd '.timeout 5000' "$T/$1.db" "SELECT count(*) FROM builds WHERE id >= $2 AND id < $3"; }
file_epoch() { sqlite3 -cmd '.timeout 5000' "$T/$1.db" "SELECT epoch FROM mosqlite_seq"; }
seq_in() { sqlite3 -cmd '.timeout 5000' "$T/$1.db" "SELECT seq FROM mosqlite_seq"; }
# send FROM TO: requests FROM..TO-1 with ids, no waiting.
send() {
    i=$1
    while [ "$i" -lt "$2" ]; do
        pub write/builds "{\"id\":\"r$i\",\"reply_to\":\"$REPLY/r$i\",\"values\":{\"id\":$i,\"name\":\"n$i\"}}"
        i=$((i + 1))
    done
}
# applied FROM TO: every request in FROM..TO-1 has an applied receipt.
applied() {
    [ "$(grep -c '"status":"applied"' <(grep -E "\"id\":\"r($(seq -s '|' "$1" $(($2 - 1))))\"" "$RECEIPTS"))" = $(($2 - $1)) ]
}
# wait_exit S PID: RC is PID's exit status once it ends within S seconds, else "still running".
wait_exit() {
    if timeout "$1" sh -c "while kill -0 $2 2>/dev/null; do sleep 0.1; done"; then
        wait "$2"; RC=$?
    else
        RC="still running"
    fi
}

# --- 0. bad settings ------------------------------------------------------------------
out=$("$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/a.db" --etcd-endpoints "127.0.0.1:2379" 2>&1); rc=$?
check_eq "an endpoint without http:// is refused (exit 3)" "$rc" 3
check "... naming it" grep -q 'etcd-endpoints: "127.0.0.1:2379" is not an http:// or https:// URL' <<<"$out"
out=$("$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$T/a.db" --etcd-endpoints "$ETCD_ENDPOINTS" --etcd-ttl 1 2>&1); rc=$?
check_eq "etcd-ttl 1 is refused (exit 3): $out" "$rc" 3

# --- 1. one leader, one standby ------------------------------------------------------
wstart a
check "writer a leads and comes online" wait_until 30 status_is online
check "writer a, with etcd-endpoints, has loaded libcurl" grep -q libcurl "/proc/$PID_a/maps"
EA=$(epoch_now)
check "a took a new epoch from etcd (status epoch $EA > 1)" test "${EA:-0}" -gt 1
check_eq "a's file holds that epoch" "$(file_epoch a)" "$EA"
key_names() { etcd_get "$KEY" | grep -q "\"pid\":$1,.*\"epoch\":$2"; }
check "the leader key names a, at that epoch" wait_until 5 key_names "$PID_a" "$EA"
wstart b
check "writer b waits as a standby, and says so" wait_until 15 grep -q "is held by .*\"pid\":$PID_a.*waiting as a standby" "$T/b.log"
send 1 21
check "20 requests applied, with receipts" wait_until 20 applied 1 21
check_eq "... all in a's file" "$(rows_in a 1 21)" 20
check_eq "... none in b's" "$(rows_in b 1 21)" 0
check "b never connected to the broker" not grep -q "connection up" "$T/b.log"

# --- 2. the leader killed --------------------------------------------------------------
t0=$(date +%s%3N)
kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null
check "b takes over once a's lease has expired" wait_until 60 online_above "$EA"
note "failover (SIGKILL of the leader to the successor online): $(( $(date +%s%3N) - t0 )) ms at etcd-ttl $TTL"
EB=$(epoch_now)
check "b leads at a higher epoch ($EB > $EA)" test "${EB:-0}" -gt "$EA"
check_eq "b's file holds it" "$(file_epoch b)" "$EB"
check "b says it leads" grep -q "this writer leads: $KEY .*epoch $EB" "$T/b.log"
send 21 41
check "b applies requests" wait_until 20 applied 21 41
check_eq "... in its file" "$(rows_in b 21 41)" 20

if [ -n "${SOAK:-}" ]; then
    # Kill the leader KILLS times; each time the other writer (a or b) takes over.
    : >"$T/failovers"
    cur=b; other=a; prev=$EB
    for k in $(seq 1 "$KILLS"); do
        wstart "$other"
        wait_until 15 grep -q "waiting as a standby" "$T/$other.log" || fail "kill $k: $other waits"
        eval "p=\$PID_$cur"
        t0=$(date +%s%3N)
        kill -9 "$p"; wait "$p" 2>/dev/null
        if wait_until 60 online_above "$prev"; then
            echo $(( $(date +%s%3N) - t0 )) >>"$T/failovers"
        else
            fail "kill $k: $other takes over"
        fi
        prev=$(epoch_now)
        base=$((1000 + k * 100))
        send "$base" $((base + 10))
        wait_until 20 applied "$base" $((base + 10)) || fail "kill $k: $other applies requests"
        t=$cur; cur=$other; other=$t
    done
    sort -n "$T/failovers" >"$T/failovers.sorted"
    n=$(wc -l <"$T/failovers.sorted")
    p50=$(sed -n "$(( (n + 1) / 2 ))p" "$T/failovers.sorted")
    p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$T/failovers.sorted")
    check_eq "$KILLS kills, $KILLS failovers" "$n" "$KILLS"
    note "failover at etcd-ttl $TTL: p50 ${p50} ms, p99 ${p99} ms, max $(tail -1 "$T/failovers.sorted") ms over $n kills"
    # Back to the layout below: b leads, a is gone.
    if [ "$cur" = a ]; then
        wstart b
        wait_until 15 grep -q "waiting as a standby" "$T/b.log"
        kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null
        wait_until 60 online_above "$prev" || fail "b takes over again"
    fi
    EB=$(epoch_now)
fi

# --- 3. the leader frozen past its TTL ---------------------------------------------------
wstart a
check "a restarts as a standby" wait_until 15 grep -q "is held by .*\"pid\":$PID_b.*waiting" "$T/a.log"
kill -STOP "$PID_b"
frozen_seq=$(seq_in b)
check "a takes over from the frozen b" wait_until 60 online_above "$EB"
EA2=$(epoch_now)
send 41 61
check "a applies requests while b is frozen" wait_until 20 applied 41 61
kill -CONT "$PID_b"
wait_exit 30 "$PID_b"
check "b, woken, exits (4: fenced by the newer epoch, or 5: its lease lapsed; got $RC)" \
    test "$RC" = 4 -o "$RC" = 5
check_eq "b committed nothing after waking up" "$(seq_in b)" "$frozen_seq"
check_eq "... none of the requests sent while it was frozen are in its file" "$(rows_in b 41 61)" 0
check "a still runs" kill -0 "$PID_a"
check_eq "the status is still a's (epoch $EA2)" "$(epoch_now)" "$EA2"

# --- 4. an etcd member killed ------------------------------------------------------------
wstart b
check "b restarts as a standby" wait_until 15 grep -q "is held by .*\"pid\":$PID_a.*waiting" "$T/b.log"
b_led=$(grep -c 'this writer leads' "$T/b.log")
dead=$(etcd_leader)
[ -n "$dead" ] || { note "no raft leader found: killing member 1"; dead=1; }
etcd_kill "$dead"
note "etcd member $dead, the raft leader, killed; waiting $((3 * TTL)) s"
sleep $((3 * TTL))
check "a still runs" kill -0 "$PID_a"
check_eq "a keeps the key and its epoch" "$(epoch_now)" "$EA2"
live=$(for n in 1 2 3; do [ "$n" != "$dead" ] && eval "printf '%s,' \$ETCD_EP$n"; done)
ETCD_ENDPOINTS=${live%,}
check "the key still names a" key_names "$PID_a" "$EA2"
send 61 71
check "a applies requests with 2 of 3 members" wait_until 20 applied 61 71
check_eq "b still waits (never led again)" "$(grep -c 'this writer leads' "$T/b.log")" "$b_led"

# --- 5. etcd unreachable -------------------------------------------------------------------
a_seq=$(seq_in a)
for n in 1 2 3; do [ "$n" != "$dead" ] && etcd_stop "$n"; done
t_stop=$(date +%s%3N)
# Past the TTL, the lease may have expired: requests sent now must not be taken.
sleep $((TTL + 1))
send 71 81
wait_exit 60 "$PID_a"
check_eq "a, unable to renew, exits 5" "$RC" 5
note "a exited $(( $(date +%s%3N) - t_stop )) ms after etcd stopped answering"
line=$(grep "exiting: this writer no longer holds" "$T/a.log" | tail -1)
note "${line#*exiting: }"
after=$(sed -n 's/.*stopped taking requests \([0-9]*\) ms after the last successful renewal.*/\1/p' <<<"$line")
ttl_ms=$(sed -n "s/.*the lease's TTL is \([0-9]*\) ms.*/\1/p" <<<"$line")
check "a stopped taking requests before its lease could expire (${after:-?} ms after its last renewal's request, TTL ${ttl_ms:-?} ms)" \
    test -n "$after" -a -n "$ttl_ms" -a "${after:-0}" -lt "${ttl_ms:-0}"
check "... and said why" grep -q "could not renew the leader lease" "$T/a.log"
sleep 2
check_eq "requests sent once the TTL had passed get no receipt" "$(grep -cE '"id":"r(7[1-9]|80)"' "$RECEIPTS")" 0
check_eq "a's file is unchanged" "$(seq_in a)" "$a_seq"
check "b, unable to reach etcd either, still waits" kill -0 "$PID_b"
check_eq "... without leading" "$(grep -c 'this writer leads' "$T/b.log")" "$b_led"
for n in 1 2 3; do [ "$n" != "$dead" ] && etcd_cont "$n"; done
kill -TERM "$PID_b"
wait_exit 30 "$PID_b"
check_eq "a standby stopped with SIGTERM exits 0" "$RC" 0
exit "$NFAIL"
