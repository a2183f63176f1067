#!/bin/bash
# The workers online, against a real broker, a real writer and real agents: a hello is
# listed by the `workers` admin command with its host, queues and slots, and counted in
# the status; a beat updates its last seen; bye takes it out; a hostile or oversized hello
# is refused with its exact reason and changes nothing; a hello of an ended session is
# refused; a claim refused lists no session; mosqlite-work is listed with the job it runs and is gone once killed -9 (its
# Last Will); one stopped (SIGSTOP) past its lease is gone, and back once continued; the
# list holds at most 4096 sessions (a hello beyond is refused) and answers with a limit.
. "$(dirname "$0")/lib.sh"

broker_start
receipts_bg
sub_bg "$T/answers" "$PREFIX_TOPIC/reply/admin/#"
sub_bg "$T/rejected" "$PREFIX_TOPIC/rejected"
# A lease far too long to end any session by itself.
writer_start --job-lease-ms 600000 || exit 1
TO=$PREFIX_TOPIC/jobs/to

# ask JSON-MEMBERS: an admin command, its answer printed (one a line, in order).
answers_are() { [ "$(wc -l <"$T/answers")" -ge "$1" ]; }
ask() {
    _n=$(( $(wc -l <"$T/answers") + 1 ))
    pub admin "{\"reply_to\":\"$PREFIX_TOPIC/reply/admin/$_n\",$1}" -q 1
    wait_until 20 answers_are $_n || { echo "no answer"; return; }
    sed -n "${_n}p" "$T/answers"
}
# session S [LIMIT]: the list's entry of session S, or nothing.
session() { ask "\"cmd\":\"workers\"${2:+,\"limit\":$2}" | grep -o "{\"worker\":\"[^\"]*\",\"session\":\"$1\"[^}]*}"; }
listed() { [ -n "$(session "$1")" ]; }
unlisted() { [ -z "$(session "$1")" ]; }
count() { ask '"cmd":"workers","limit":1' | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
status_workers() { status | sed -n 's/.*"workers":\([0-9]*\).*/\1/p'; }
status_says() { [ "$(status_workers)" = "$1" ]; }
hello() { pub jobs/worker "{\"op\":\"hello\",\"worker\":\"$1\",\"session\":\"$2\"${3:+,$3}}"; }
beat() { pub jobs/worker "{\"op\":\"beat\",\"worker\":\"$1\",\"session\":\"$2\",\"reply_to\":\"$TO/$1\",\"jobs\":[]}"; }
rejected_with() { wait_until 10 grep -qF "$1" "$T/rejected"; }

# ---- a shell worker's hello, beat, bye ------------------------------------------------------
check_eq "no worker at start: the list" "$(ask '"cmd":"workers"')" '{"cmd":"workers","ok":true,"count":0,"more":false,"workers":[]}'
check_eq "no worker at start: the status" "$(status_workers)" 0
hello w1 s1 '"host":"build-1","queues":["build.arm64","build.any"],"jobs":2'
wait_until 10 listed s1
e=$(session s1)
check "hello: listed with its host, queues, slots, no job ($e)" grep -qE '^\{"worker":"w1","session":"s1","host":"build-1","queues":\["build.arm64","build.any"\],"slots":2,"running":0,"since":"20[0-9T:.-]+Z","last_seen":"20[0-9T:.-]+Z","idle_ms":[0-9]+\}$' <<<"$e"
wait_until 10 status_says 1
check_eq "the status counts it" "$(status_workers)" 1
seen1=$(sed -n 's/.*"last_seen":"\([^"]*\)".*/\1/p' <<<"$e")
since1=$(sed -n 's/.*"since":"\([^"]*\)".*/\1/p' <<<"$e")
sleep 0.3
beat w1 s1
seen_moved() { [ "$(session s1 | sed -n 's/.*"last_seen":"\([^"]*\)".*/\1/p')" != "$seen1" ]; }
wait_until 10 seen_moved
e=$(session s1)
check "a beat moves last seen ($seen1 -> $(sed -n 's/.*"last_seen":"\([^"]*\)".*/\1/p' <<<"$e"))" seen_moved
check_eq "and keeps since, host and slots" "$(sed -n 's/.*"host":"\([^"]*\)".*"slots":\([0-9]*\).*"since":"\([^"]*\)".*/\1 \2 \3/p' <<<"$e")" "build-1 2 $since1"
beat w2 s2
wait_until 10 listed s2
check "a beat from a session without hello is listed (host and slots unknown)" grep -q '"worker":"w2","session":"s2","host":null,"queues":\[\],"slots":null,"running":0' <<<"$(session s2)"
pub jobs/worker '{"op":"bye","worker":"w2","session":"s2"}'
wait_until 10 unlisted s2
check "bye: gone from the list" unlisted s2
check "the other one stays" listed s1

# ---- hostile hellos: refused with their reason, nothing changed -----------------------------
before=$(session s1)
long=$(printf 'h%.0s' $(seq 1 256))
bad_hello() { # NAME MEMBERS ERROR
    hello w1 s1 "$2"
    rejected_with "$3"
    check "refused: $1" grep -qF "$3" "$T/rejected"
}
bad_hello "a host with a blank" '"host":"a b"' '"host\" must be a string of 1 to 255 printable ASCII characters, no blank'
bad_hello "a host of 256 bytes" "\"host\":\"$long\"" '"host\" must be a string of 1 to 255 printable ASCII characters, no blank'
bad_hello "a host not a string" '"host":7' '"host\" must be a string of 1 to 255 printable ASCII characters, no blank'
bad_hello "queues not an array" '"queues":"build"' '"queues\" must be a non-empty array of queue names'
bad_hello "a reserved queue" '"queues":["to"]' 'queue name \"to\" is reserved'
bad_hello "17 queues" "\"queues\":[$(seq -f '"q%g"' 1 17 | paste -sd ,)]" '"queues\" names more than 16 queues'
bad_hello "jobs 0" '"jobs":0' '"jobs\" must be an integer from 1 to 1024'
bad_hello "jobs 1025" '"jobs":1025' '"jobs\" must be an integer from 1 to 1024'
bad_hello "an unknown field" '"cpu":8' 'unknown field \"cpu\" in a hello'
hello w1 "$long"
rejected_with 'session\" must be a string of 1 to 128 printable ASCII characters'
check "refused: a session of 256 bytes" grep -qF 'session\" must be a string of 1 to 128 printable ASCII characters' "$T/rejected"
printf '{"op":"hello","worker":"w1","session":"s1","host":"%s"}' "$(head -c 300000 /dev/zero | tr '\0' x)" >"$T/big.json"
mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/jobs/worker" -f "$T/big.json"
rejected_with 'payload too large: 300053 bytes (limit 262144)'
check "refused: a hello over max-payload" grep -qF 'payload too large: 300053 bytes (limit 262144)' "$T/rejected"
e=$(session s1)
check_eq "none of them changed the session (but for idle_ms)" "${e%,\"idle_ms\"*}" "${before%,\"idle_ms\"*}"
check_eq "nor the count" "$(count)" 1
pub jobs/worker '{"op":"bye","worker":"w1","session":"s1"}'
wait_until 10 unlisted s1
hello w1 s1 '"host":"build-1"'
rejected_with 'session \"s1\" has ended'
check "a hello of an ended session is refused" grep -qF 'session \"s1\" has ended (its gone or bye was seen): a new connection needs a new session' "$T/rejected"
check "and not listed again" unlisted s1
beat w1 s1
sleep 0.5
check "nor by a late beat" unlisted s1
wait_until 10 status_says 0
check_eq "the status counts none again" "$(status_workers)" 0

# ---- a claim refused lists no session ---------------------------------------------------------
r=$(req write g1 '"op":"enqueue","queue":"gq","payload":1')
gjob=$(sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r")
pub jobs/gq "{\"op\":\"claim\",\"id\":\"gc1\",\"worker\":\"wg\",\"session\":\"sg1\",\"reply_to\":\"$TO/wg\"}"
pub jobs/gq "{\"op\":\"done\",\"id\":\"gd1\",\"job\":$gjob,\"attempt\":1}"
wait_until 10 listed sg1
n0=$(count)
pub jobs/gq "{\"op\":\"claim\",\"id\":\"gc1\",\"worker\":\"wg\",\"session\":\"sg2\",\"reply_to\":\"$TO/wg\",\"wait_ms\":60000}"
rejected_with "claim \\\"gc1\\\" was already granted (job $gjob attempt 1), and that lease has ended"
check "a claim already granted and ended is refused" grep -qF "claim \\\"gc1\\\" was already granted (job $gjob attempt 1), and that lease has ended" "$T/rejected"
check "and its session is not listed" unlisted sg2
check_eq "nor counted" "$(count)" "$n0"
pub jobs/worker '{"op":"bye","worker":"wg","session":"sg1"}'
wait_until 10 unlisted sg1

# ---- mosqlite-work: listed with its job; kill -9: its Last Will takes it out -----------------
work() { n=$1; shift; "$BIN/mosqlite-work" -p "$MQTT_PORT" -w "$n" "$@" >>"$T/$n.log" 2>&1 & AGENT=$!; PIDS="$PIDS $AGENT"; }
by_worker() { ask '"cmd":"workers"' | grep -o "{\"worker\":\"$1\",[^}]*}"; }
worker_listed() { [ -n "$(by_worker "$1")" ]; }
worker_gone() { [ -z "$(by_worker "$1")" ]; }
running_is() { by_worker "$1" | grep -q "\"running\":$2,"; }
work wk9 --jobs 2 killq -- sh -c "echo \$\$ >$T/k9.pid; exec sleep 600"
K9=$AGENT
wait_until 20 worker_listed wk9
check "mosqlite-work is listed with its host, queues and slots ($(by_worker wk9))" \
    grep -q "\"worker\":\"wk9\",\"session\":\"[^\"]*\",\"host\":\"$(hostname)\",\"queues\":\[\"killq\"\],\"slots\":2,\"running\":0" <<<"$(by_worker wk9)"
r=$(req write k1 '"op":"enqueue","queue":"killq","payload":{"n":1}')
wait_until 30 running_is wk9 1
check "running its job: running 1" running_is wk9 1
kill -9 "$K9"
wait_until 20 worker_gone wk9
check "kill -9: gone from the list (its Last Will)" worker_gone wk9
wait_until 10 status_says 0
check_eq "and from the status's count" "$(status_workers)" 0
kill -9 "$(cat "$T/k9.pid")" 2>/dev/null

# ---- SIGTERM: bye ------------------------------------------------------------------------------
work wterm termq -- true
WT=$AGENT
wait_until 20 worker_listed wterm
kill -TERM "$WT"
wait "$WT"
check "SIGTERM: its bye takes it out" worker_gone wterm

# ---- the bound: 4096 sessions ------------------------------------------------------------------
seq -f '{"op":"hello","worker":"wb","session":"b%05g","host":"h"}' 1 4096 |
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/jobs/worker" -l
count_is() { [ "$(count)" = "$1" ]; }
wait_until 60 count_is 4096
check_eq "4096 sessions listed" "$(count)" 4096
hello wb b04097
rejected_with 'at most 4096 worker sessions'
check "the 4097th hello is refused" grep -qF 'the writer lists at most 4096 worker sessions and all of them are live: hello of session \"b04097\" not taken (its claims are served all the same)' "$T/rejected"
beat wb b04098
check_eq "a beat from another new session is not listed either" "$(count)" 4096
a=$(ask '"cmd":"workers"')
check_eq "the answer lists 100 by default, says there are more" \
    "$(grep -o '"session":' <<<"$a" | wc -l),$(grep -o '"more":true' <<<"$a")" '100,"more":true'
a=$(ask '"cmd":"workers","limit":3')
check "limit 3: the first three by worker and session" grep -q '"count":4096,"more":true,"workers":\[{"worker":"wb","session":"b00001",.*"session":"b00002",.*"session":"b00003",[^{]*\]}$' <<<"$a"
note "an answer of 1000 sessions is $(ask '"cmd":"workers","limit":1000' | wc -c) bytes"
check_eq "limit out of range" "$(ask '"cmd":"workers","limit":0')" '{"cmd":"workers","error":"\"limit\" must be an integer from 1 to 1000"}'
wait_until 10 status_says 4096
check_eq "the status counts 4096" "$(status_workers)" 4096

# ---- SIGSTOP past the lease: gone; SIGCONT: back ------------------------------------------------
writer_stop
writer_start --job-lease-ms 1000 || exit 1
check_eq "a restarted writer lists none" "$(count)" 0
work wstop --claim-wait 1 stopq -- true
WS=$AGENT
wait_until 20 worker_listed wstop
check "listed while it claims" worker_listed wstop
kill -STOP "$WS"
wait_until 30 worker_gone wstop
check "SIGSTOP past its lease (1 s, plus its 1 s claim): gone" worker_gone wstop
wait_until 10 status_says 0
check_eq "and the status says so without any message from it" "$(status_workers)" 0
kill -CONT "$WS"
wait_until 20 worker_listed wstop
check "SIGCONT: its next claim lists it again" worker_listed wstop
kill -TERM "$WS"
wait "$WS"

writer_stop
exit $NFAIL
