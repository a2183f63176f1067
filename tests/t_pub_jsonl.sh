#!/bin/bash
# mosqlite-pub - : 100,000 JSON Lines through the project's broker config into the
# writer: exit 0 and every row in the database. For comparison (not asserted), the same
# input through `mosquitto_pub -l -q 2`, which on Debian's 2.0.11 exits 0 before it has
# sent everything. Also the command line's argument errors.
. "$(dirname "$0")/lib.sh"
N=${PUB_LINES:-100000}

# --- arguments -------------------------------------------------------------------
"$BIN/mosqlite-pub" --version | grep -qx '0\.[0-9.]*'; check "--version prints the version" [ $? = 0 ]
"$BIN/mosqlite-pub" --help | grep -q -- '--lines COLUMN'; check "--help shows --lines" [ $? = 0 ]
bad() {   # bad DESC WANT-TEXT ARGS...: exit 3 with one line naming the problem
    d=$1; want=$2; shift 2
    out=$("$BIN/mosqlite-pub" "$@" 2>&1); rc=$?
    check_eq "$d: exit 3" "$rc" 3
    check "$d: one line saying [$want]" [ "$(printf '%s\n' "$out" | wc -l)" = 1 ]
    case "$out" in *"$want"*) ;; *) fail "$d: message was [$out]";; esac
}
bad "no arguments" "nothing to publish"
bad "unknown option" 'unknown option "--colour"' --colour red t '{}'
bad "bad port" 'port: "0" is not' -p 0 t '{}'
bad "values not an object" "values is not a JSON object" builds '[1]'
bad "update without where" "need --where" --op update builds '{"a":1}'
bad "empty where" "where must not be empty" --op delete --where '{}' builds
bad "bad op" "--op must be" --op merge builds '{}'
bad "table with a slash" "plain table name" 'a/b' '{}'
bad "--with without --lines" "--with only goes with --lines" --with '{}' -
bad "bad --with" "--with is not a JSON object" --lines line --with '[' build_logs
bad "id too long" "id must be" --id "$(printf 'x%.0s' $(seq 130))" builds '{"name":"a"}'
printf 'port 1883\ncolour blue\n' > "$T/bad.conf"
bad "config file error" "bad.conf:2: unknown key" -c "$T/bad.conf" builds '{}'
out=$("$BIN/mosqlite-pub" -p "$(free_port)" builds '{"name":"x"}' 2>&1); rc=$?
check_eq "no broker: exit 4" "$rc" 4
case "$out" in *"Connection refused"*) ok "no broker: says why";; *) fail "no broker: [$out]";; esac

broker_start
writer_start

# --- a line longer than --max-line ----------------------------------------------------
# A line longer than --max-line is not sent, also when it comes whole in one read
# (--wait: the rows are in when it exits).
{
    echo '{"table":"build_logs","values":{"build_id":3,"line":"short 1"}}'
    echo '{"table":"build_logs","values":{"build_id":3,"line":"long long long long long long long"}}'
    echo '{"table":"build_logs","values":{"build_id":3,"line":"short 2"}}'
} > "$T/long.jsonl"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --max-line 70 - < "$T/long.jsonl" 2>"$T/long.err"; rc=$?
check_eq "a line over --max-line in one read: exit 1" "$rc" 1
check "a line over --max-line in one read: named" grep -q 'line 2: longer than 70 bytes, not sent' "$T/long.err"
check_eq "a line over --max-line in one read: not stored" \
    "$(sql "SELECT group_concat(line, ',') FROM build_logs WHERE build_id = 3")" "short 1,short 2"

# --- 100,000 lines ------------------------------------------------------------------
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"table\":\"build_logs\",\"values\":{\"build_id\":1,\"line\":\"line %d\"}}\n", i }' > "$T/in.jsonl"
start=$(date +%s%N)
"$BIN/mosqlite-pub" -p "$MQTT_PORT" -v - < "$T/in.jsonl" 2>"$T/pub.err"; rc=$?
pub_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "mosqlite-pub - of $N lines: exit 0" "$rc" 0
note "$(tail -1 "$T/pub.err")"
wait_until 60 rows_are build_logs "$N"
check_eq "all $N rows in the database" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 1')" "$N"
check_eq "no line twice" "$(sql 'SELECT count(DISTINCT line) FROM build_logs WHERE build_id = 1')" "$N"
all_ms=$(( ($(date +%s%N) - start) / 1000000 ))
note "mosqlite-pub -: $N lines, broker done in ${pub_ms} ms, all rows in ${all_ms} ms ($(( N * 1000 / (all_ms + 1) )) rows/s)"

# The same input through mosquitto_pub, into build_id 2. Not asserted.
sed 's/"build_id":1/"build_id":2/' "$T/in.jsonl" > "$T/in2.jsonl"
start=$(date +%s%N)
mosquitto_pub -p "$MQTT_PORT" -q 2 -l -t "$PREFIX_TOPIC/write" < "$T/in2.jsonl"; mrc=$?
m_ms=$(( ($(date +%s%N) - start) / 1000000 ))
prev=-1; got=0   # rows stop arriving: count them
while :; do
    sleep 1; got=$(sql 'SELECT count(*) FROM build_logs WHERE build_id = 2')
    [ "$got" = "$prev" ] && break; prev=$got
done
note "mosquitto_pub -l -q 2: exit $mrc after ${m_ms} ms, delivered $got of $N lines ($(( got * 1000 / (m_ms + 1) )) rows/s while it ran)"
