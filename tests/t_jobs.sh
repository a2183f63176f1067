#!/bin/bash
# The job queue against a real broker and a real SQLite file, workers simulated with
# mosquitto_pub and mosquitto_sub: enqueue (alone and with a build row) -> claim -> grant
# -> done, the build row updated in the done's transaction exactly once; a waiting
# claim granted when a job arrives; a repeated claim id gets the same grant; a stale
# (job, attempt) is refused "lease lost" and changes nothing; a worker killed -9 (its
# Last Will) and one stopped past its lease: the job is granted again (a job granted
# again in the batch that ended its lease keeps the new lease); a job that loses
# its worker max_lost times is dead; per-key concurrency is exact; unique keys (ignore,
# reject, replace; a replace in a rejected request asks no cancel); cancel of a queued and
# of a running job; the job commands; waiting
# claims cost no commit; bad job messages get their exact rejection and change nothing;
# `follow` sends the job's end as a second receipt; a done carrying the next claim gets
# its own receipt and, apart, the grant.
. "$(dirname "$0")/lib.sh"

test_schema
broker_start
receipts_bg
GRANTS=$T/grants
EVENTS=$T/events
writer_start || exit 1
sub_bg "$GRANTS" "$PREFIX_TOPIC/jobs/to/#" -v
sub_bg "$EVENTS" "$PREFIX_TOPIC/jobs/events/#" -v
TO=$PREFIX_TOPIC/jobs/to

# claim QUEUE-TOPIC ID WORKER SESSION WAIT [QUEUES-JSON]
claim() {
    q=${6:+,\"queues\":$6}
    pub "jobs/$1" "{\"op\":\"claim\",\"id\":\"$2\",\"worker\":\"$3\",\"session\":\"$4\",\"reply_to\":\"$TO/$3\",\"wait_ms\":$5$q}"
}
# answer ID [K]: the K-th message on a worker topic for claim ID.
answers_for() { [ "$(grep -c "\"claim\":\"$1\"" "$GRANTS")" -ge "$2" ]; }
answer() {
    wait_until 15 answers_for "$1" "${2:-1}" || { echo "no answer for claim $1"; return 1; }
    grep "\"claim\":\"$1\"" "$GRANTS" | sed -n "${2:-1}p" | cut -d' ' -f2-
}
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2"; }
state() { sql "SELECT state FROM mosqlite_jobs WHERE id = $1"; }
enq() { # ID QUEUE PAYLOAD [MORE-FIELDS]: enqueue alone; prints the job id
    r=$(req write "$1" "\"op\":\"enqueue\",\"queue\":\"$2\",\"payload\":$3${4:+,$4}")
    sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r"
}
commits() { status | sed -n 's/.*"commits":\([0-9]*\).*/\1/p'; }

# --- enqueue with a build row, claim, grant, done with the row's update -------------------
r=$(req write e1 '"ops":[{"table":"builds","values":{"id":7,"name":"linux #7","status":"queued"}},{"op":"enqueue","queue":"build","payload":{"build_id":7,"cmd":["make","-j8"]},"priority":5}]')
check_eq "enqueue in a transaction: the receipt names the job" "$r" '{"id":"e1","status":"applied","changes":1,"rowid":7,"jobs":[{"job":1,"state":"ready"}]}'
check_eq "the row and the job in one commit" "$(sql "SELECT (SELECT status FROM builds WHERE id = 7), state, payload, priority FROM mosqlite_jobs")" 'queued|ready|{"build_id":7,"cmd":["make","-j8"]}|5'
claim build c1 w1 s1 0
g=$(answer c1)
check "the grant names job, attempt, queue, payload, lease ($g)" grep -qE '^\{"op":"job","claim":"c1","job":1,"attempt":1,"queue":"build","payload":\{"build_id":7,"cmd":\["make","-j8"\]\},"lease_ms":30000,"timeout_ms":0,"lost":0,"priority":5,"enqueued_at":"[0-9T:.Z-]+"\}$' <<<"$g"
check_eq "running, one attempt row with the worker" "$(sql "SELECT j.state, a.worker, a.session, a.claim_id FROM mosqlite_jobs j JOIN mosqlite_job_attempts a ON a.job = j.id WHERE j.id = 1")" 'running|w1|s1|c1'
claim build c1 w1 s1 0
check_eq "a repeated claim id gets the same grant" "$(answer c1 2 | sed 's/"enqueued_at":"[^"]*"//')" "$(sed 's/"enqueued_at":"[^"]*"//' <<<"$g")"
check_eq "and no second grant happened" "$(sql "SELECT attempt FROM mosqlite_jobs WHERE id = 1"),$(sql "SELECT count(*) FROM mosqlite_job_attempts")" "1,1"
DONE='"op":"done","job":1,"attempt":1,"exit_code":0,"result":{"artifact":"x.tar"},"ops":[{"table":"builds","op":"update","set":{"status":"passed"},"where":{"id":7}}],"enqueue":[{"queue":"publish","payload":{"build_id":7}}]'
r=$(req jobs/build d1 "$DONE")
check_eq "done: applied, with its follow-up job" "$r" '{"id":"d1","status":"applied","changes":1,"job":1,"state":"done","jobs":[{"job":2,"state":"ready"}]}'
check_eq "the build row passed, the result kept" "$(sql "SELECT (SELECT status FROM builds WHERE id = 7), state, result, exit_code FROM mosqlite_jobs WHERE id = 1")" 'passed|done|{"artifact":"x.tar"}|0'
pub jobs/build "{\"id\":\"d1\",\"reply_to\":\"$REPLY/d1b\",$DONE}"
wait_until 10 grep -q '"id":"d1","status":"duplicate"' "$RECEIPTS"
check "the same done again is a duplicate" grep -q '"id":"d1","status":"duplicate"' "$RECEIPTS"
r=$(req jobs/build d2 "${DONE/passed/again}")
check_eq "a done under another id for an ended lease: lease lost" "$r" '{"id":"d2","status":"rejected","error":"lease lost: job 1 attempt 1 is no longer yours (done, attempt 1)"}'
check_eq "and its ops were not applied (the row as the first done left it)" "$(sql "SELECT status FROM builds WHERE id = 7"),$(sql "SELECT count(*) FROM mosqlite_jobs")" "passed,2"
wait_until 5 grep -q '"job":1,"queue":"build","attempt":1,"from":"running","to":"done"' "$EVENTS"
check "job state changes published live" grep -q 'jobs/events/build {"job":1,"queue":"build","attempt":1,"from":"running","to":"done"}' "$EVENTS"

# --- a waiting claim is granted when a job arrives -----------------------------------------
claim wait c2 w2 s2 20000
sleep 0.5
check "a waiting claim gets nothing yet" not answers_for c2 1
check_eq "it waits in memory: no job row changed" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'wait'")" "0"
j=$(enq e2 wait '"later"')
g=$(answer c2)
check "the waiting claim is granted the new job ($g)" grep -q "\"op\":\"job\",\"claim\":\"c2\",\"job\":$j,\"attempt\":1" <<<"$g"
claim wait c3 w2 s2 300
check_eq "wait_ms passed with nothing: empty" "$(answer c3)" '{"op":"empty","claim":"c3"}'

# --- stale (job, attempt): fail, release, progress ------------------------------------------
r=$(req jobs/wait f1 "\"op\":\"fail\",\"job\":$j,\"attempt\":2,\"exit_code\":2")
check_eq "a fail naming another attempt: lease lost" "$r" "{\"id\":\"f1\",\"status\":\"rejected\",\"error\":\"lease lost: job $j attempt 2 is no longer yours (running, attempt 1)\"}"
check_eq "and the job runs on" "$(state "$j")" "running"
r=$(req jobs/wait r1 "\"op\":\"release\",\"job\":$j,\"attempt\":1")
check_eq "release: back to ready" "$r" "{\"id\":\"r1\",\"status\":\"applied\",\"changes\":0,\"job\":$j,\"state\":\"ready\"}"
claim wait c4 w2 s2 0
g=$(answer c4)
check "granted again, attempt 2" grep -q "\"job\":$j,\"attempt\":2" <<<"$g"
r=$(req jobs/wait f2 "\"op\":\"fail\",\"job\":$j,\"attempt\":2,\"exit_code\":2,\"error\":\"make: Error 2\"")
check_eq "fail: failed at once (max_attempts 1: a failing build fails once)" "$r" "{\"id\":\"f2\",\"status\":\"applied\",\"changes\":0,\"job\":$j,\"state\":\"failed\"}"

# --- Last Will: a worker killed -9 ---------------------------------------------------------
j=$(enq e3 will '{"n":3}')
mosquitto_sub -p "$MQTT_PORT" -i wk9 -q 1 -t "$TO/wk9" -k 5 --will-topic "$PREFIX_TOPIC/jobs/worker" \
    --will-payload '{"op":"gone","worker":"wk9","session":"sk9"}' --will-qos 2 >"$T/wk9" 2>&1 &
WK=$!
PIDS="$PIDS $WK"
wait_until 10 grep -q "wk9 1 " "$T/broker/mosquitto.log"
claim will c5 wk9 sk9 0
wait_until 10 grep -q '"claim":"c5"' "$T/wk9"
check "the worker got its job" grep -q "\"job\":$j,\"attempt\":1" "$T/wk9"
claim will c6 w3 s3 20000
sleep 0.3
check "another worker waits" not answers_for c6 1
kill -9 "$WK"
g=$(answer c6)
check "kill -9 of the worker: its will ends the lease, the job is granted again ($g)" grep -q "\"job\":$j,\"attempt\":2,\"queue\":\"will\",.*\"lost\":1" <<<"$g"
check_eq "the attempt is recorded lost" "$(sql "SELECT outcome, error FROM mosqlite_job_attempts WHERE job = $j AND attempt = 1")" "lost|gone"
claim will c7 wk9 sk9 0
wait_until 10 grep -q '"id":"c7","status":"rejected"' "$GRANTS"
check_eq "a claim from the ended session is refused" "$(grep '"id":"c7"' "$GRANTS" | cut -d' ' -f2-)" '{"id":"c7","status":"rejected","error":"session \"sk9\" has ended (its gone or bye was seen): a new connection needs a new session"}'

# --- a job granted again in the batch that ended its lease: the new lease is kept ------------
j=$(enq e3b regrant '{"n":31}' '"lease_ms":1000')
claim regrant rg1 wr1 sr1 0
answer rg1 >/dev/null
claim regrant rg2 wr2 sr2 20000
sleep 0.3
pub jobs/worker '{"op":"gone","worker":"wr1","session":"sr1"}'
g=$(answer rg2)
check "the will ends the lease and the waiting claim gets the job in the same batch ($g)" grep -q "\"job\":$j,\"attempt\":2" <<<"$g"
# A beat for the new lease, then one for no job: its answer comes after any for the first.
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"wr2\",\"session\":\"sr2\",\"reply_to\":\"$TO/wr2\",\"jobs\":[{\"job\":$j,\"attempt\":2}]}"
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"wr2\",\"session\":\"sr2\",\"reply_to\":\"$TO/wr2\",\"jobs\":[{\"job\":424242,\"attempt\":1}]}"
wait_until 10 grep -q '"op":"lease_lost","job":424242,' "$GRANTS"
check "the new lease's beat is not answered lease_lost" not grep -q "\"op\":\"lease_lost\",\"job\":$j,\"attempt\":2" "$GRANTS"
wait_until 15 sh -c "[ \"\$(sqlite3 '$DB' \"SELECT outcome FROM mosqlite_job_attempts WHERE job = $j AND attempt = 2\")\" = lost ]"
check_eq "and with no more beats it expires (the writer still holds it)" \
    "$(sql "SELECT outcome, error FROM mosqlite_job_attempts WHERE job = $j AND attempt = 2")" "lost|lease expired"

# --- lease expiry: a worker stopped past its lease ------------------------------------------
j=$(enq e4 stop '{"n":4}' '"lease_ms":1000')
claim stop c8 w4 s4 0
g=$(answer c8)
check "granted with a 1 s lease" grep -q "\"job\":$j,\"attempt\":1,.*\"lease_ms\":1000" <<<"$g"
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"w4\",\"session\":\"s4\",\"reply_to\":\"$TO/w4\",\"jobs\":[{\"job\":$j,\"attempt\":1}]}"
claim stop c9 w5 s5 20000
g=$(answer c9)
check "no beat within the lease: lost, granted again ($g)" grep -q "\"job\":$j,\"attempt\":2" <<<"$g"
wait_until 5 grep -q "\"op\":\"lease_lost\",\"job\":$j,\"attempt\":1" "$GRANTS"
check "the old holder is told lease_lost" grep -q "$TO/w4 {\"op\":\"lease_lost\",\"job\":$j,\"attempt\":1,\"state\":\"ready\"}" "$GRANTS"
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"w4\",\"session\":\"s4\",\"reply_to\":\"$TO/w4\",\"jobs\":[{\"job\":$j,\"attempt\":1}]}"
wait_until 5 grep -q "\"op\":\"lease_lost\",\"job\":$j,\"attempt\":1,\"state\":\"running\"" "$GRANTS"
check "its late beat is answered lease_lost" grep -q "\"op\":\"lease_lost\",\"job\":$j,\"attempt\":1,\"state\":\"running\"" "$GRANTS"
# beats keep a lease alive past lease_ms
for i in 1 2 3 4 5 6; do
    pub jobs/worker "{\"op\":\"beat\",\"worker\":\"w5\",\"session\":\"s5\",\"reply_to\":\"$TO/w5\",\"jobs\":[{\"job\":$j,\"attempt\":2}]}"
    sleep 0.4
done
check_eq "beats renew the lease (2.4 s on a 1 s lease)" "$(sql "SELECT state, attempt FROM mosqlite_jobs WHERE id = $j")" "running|2"

# --- a poison job: dead after max_lost -------------------------------------------------------
j=$(enq e5 poison '{"n":5}' '"max_lost":2')
for k in 1 2; do
    claim poison pc$k wp$k sp$k 0
    answer pc$k >/dev/null
    pub jobs/worker "{\"op\":\"gone\",\"worker\":\"wp$k\",\"session\":\"sp$k\"}"
done
wait_until 10 sh -c "[ \"\$(sqlite3 '$DB' \"SELECT state FROM mosqlite_jobs WHERE id = $j\")\" = dead ]"
check_eq "lost twice with max_lost 2: dead" "$(sql "SELECT state, lost, error FROM mosqlite_jobs WHERE id = $j")" "dead|2|worker lost 2 times (last: wp2, gone)"

# --- exact per-key concurrency ----------------------------------------------------------------
for i in 1 2 3 4 5; do enq k$i conc "{\"i\":$i}" '"concurrency_key":"repo:x","concurrency":2' >/dev/null; done
check_eq "2 ready, 3 blocked" "$(sql "SELECT group_concat(state) FROM (SELECT state FROM mosqlite_jobs WHERE queue = 'conc' ORDER BY id)")" "ready,ready,blocked,blocked,blocked"
for i in 1 2 3; do claim conc kc$i wk$i sk$i 20000; done
answer kc1 >/dev/null; answer kc2 >/dev/null
sleep 0.5
check "the third claim waits: the key is full" not answers_for kc3 1
check_eq "never more than 2 running" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'conc' AND state = 'running'")" "2"
g=$(answer kc1); jj=$(field job "$g")
req jobs/conc kd1 "\"op\":\"done\",\"job\":$jj,\"attempt\":1" >/dev/null
g=$(answer kc3)
check "a slot freed: the waiting claim gets the next of the key ($g)" grep -q '"op":"job","claim":"kc3"' <<<"$g"
check_eq "still 2 running" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'conc' AND state = 'running'")" "2"

# --- unique keys ---------------------------------------------------------------------------------
u1=$(enq u1 uniq '1' '"unique_key":"main"')
r=$(req write u2 '"op":"enqueue","queue":"uniq","payload":2,"unique_key":"main"')
check_eq "ignore (default): the live job is the answer" "$r" "{\"id\":\"u2\",\"status\":\"applied\",\"changes\":0,\"jobs\":[{\"job\":$u1,\"state\":\"ready\",\"duplicate\":true}]}"
r=$(req write u3 '"op":"enqueue","queue":"uniq","payload":3,"unique_key":"main","on_duplicate":"reject"')
check_eq "reject" "$r" "{\"id\":\"u3\",\"status\":\"rejected\",\"error\":\"unique key \\\"main\\\" of queue \\\"uniq\\\" is held by job $u1 (ready)\"}"
claim uniq uc1 wu1 su1 0
answer uc1 >/dev/null
r=$(req write u4 '"op":"enqueue","queue":"uniq","payload":4,"unique_key":"main","on_duplicate":"replace"')
u4=$(sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r")
check_eq "replace of a running job: the new one enqueued" "$r" "{\"id\":\"u4\",\"status\":\"applied\",\"changes\":0,\"jobs\":[{\"job\":$u4,\"state\":\"ready\",\"replaced\":$u1}]}"
wait_until 5 grep -q "$TO/wu1 {\"op\":\"cancel\",\"job\":$u1,\"attempt\":1}" "$GRANTS"
check "the running one is told to stop" grep -q "$TO/wu1 {\"op\":\"cancel\",\"job\":$u1,\"attempt\":1}" "$GRANTS"
check_eq "exactly one live job per unique key" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'uniq' AND state NOT IN ('done','failed','dead','cancelled') AND cancel_req = 0")" "1"

# A request that replaces a running job and is then rejected asks no cancel: the worker's
# next beat is not told to stop (a beat naming a job that is not, as the marker).
ur=$(enq ur1 uniqr '1' '"unique_key":"k"')
claim uniqr urc1 wur sur 0
answer urc1 >/dev/null
r=$(req write ur2 '"ops":[{"op":"enqueue","queue":"uniqr","payload":2,"unique_key":"k","on_duplicate":"replace"},{"op":"enqueue","queue":"uniqr","payload":3,"unique_key":"k","on_duplicate":"reject"}]')
check "replace, then reject of the same key: the request is rejected ($r)" grep -qF '"status":"rejected","error":"ops[1]: unique key \"k\" of queue \"uniqr\" is held by job' <<<"$r"
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"wur\",\"session\":\"sur\",\"reply_to\":\"$TO/wur\",\"jobs\":[{\"job\":$ur,\"attempt\":1},{\"job\":999999,\"attempt\":1}]}"
wait_until 10 grep -q "$TO/wur {\"op\":\"lease_lost\",\"job\":999999" "$GRANTS"
not_told() { ! grep -q "$TO/wur {\"op\":\"cancel\"" "$GRANTS"; }
check "its worker's beat is answered, and not with a cancel" not_told
check_eq "the job runs on, no cancel asked" "$(sql "SELECT state, cancel_req FROM mosqlite_jobs WHERE id = $ur")" "running|0"

# --- cancel, the job commands ------------------------------------------------------------------------
ADM=$T/adm
admin() { mosquitto_pub -p "$MQTT_PORT" -q 1 -t "$PREFIX_TOPIC/admin" -m "{\"reply_to\":\"$PREFIX_TOPIC/reply/ops/$1\",$2}"; wait_until 10 grep -q "reply/ops/$1 " <(cat "$ADM"); grep "^" "$ADM" | tail -1; }
sub_bg "$ADM" "$PREFIX_TOPIC/reply/ops/#" -v
q1=$(enq ca1 cq '1')
check_eq "job_cancel of a queued job: cancelled at once" "$(admin a1 "\"cmd\":\"job_cancel\",\"job\":$q1")" "$PREFIX_TOPIC/reply/ops/a1 {\"cmd\":\"job_cancel\",\"ok\":true,\"job\":$q1,\"state\":\"cancelled\"}"
q2=$(enq ca2 cq '2')
claim cq cc1 wc1 sc1 0
answer nc1 >/dev/null
check_eq "job_cancel of a running job: asked" "$(admin a2 "\"cmd\":\"job_cancel\",\"job\":$q2")" "$PREFIX_TOPIC/reply/ops/a2 {\"cmd\":\"job_cancel\",\"ok\":true,\"job\":$q2,\"state\":\"running\"}"
check "pushed to its worker" wait_until 5 grep -q "$TO/wc1 {\"op\":\"cancel\",\"job\":$q2,\"attempt\":1}" "$GRANTS"
pub jobs/worker "{\"op\":\"beat\",\"worker\":\"wc1\",\"session\":\"sc1\",\"reply_to\":\"$TO/wc1b\",\"jobs\":[{\"job\":$q2,\"attempt\":1}]}"
check "and repeated in beat answers" wait_until 5 grep -q "$TO/wc1b {\"op\":\"cancel\",\"job\":$q2,\"attempt\":1}" "$GRANTS"
r=$(req jobs/cq cf1 "\"op\":\"fail\",\"job\":$q2,\"attempt\":1,\"cancelled\":true")
check_eq "the worker reports it: cancelled, never retried" "$r" "{\"id\":\"cf1\",\"status\":\"applied\",\"changes\":0,\"job\":$q2,\"state\":\"cancelled\"}"
check_eq "job_retry of a cancelled job" "$(admin a3 "\"cmd\":\"job_retry\",\"job\":$q2")" "$PREFIX_TOPIC/reply/ops/a3 {\"cmd\":\"job_retry\",\"ok\":true,\"job\":$q2,\"state\":\"ready\"}"
check_eq "job_discard" "$(admin a4 "\"cmd\":\"job_discard\",\"job\":$q2")" "$PREFIX_TOPIC/reply/ops/a4 {\"cmd\":\"job_discard\",\"ok\":true,\"job\":$q2,\"state\":\"dead\"}"
check_eq "job_discard of a final job: refused" "$(admin a5 "\"cmd\":\"job_discard\",\"job\":$q2")" "$PREFIX_TOPIC/reply/ops/a5 {\"cmd\":\"job_discard\",\"error\":\"job $q2 is already dead\"}"
check_eq "an unknown job" "$(admin a6 '"cmd":"job_run_now","job":999999')" "$PREFIX_TOPIC/reply/ops/a6 {\"cmd\":\"job_run_now\",\"error\":\"no job 999999\"}"
pub write "{\"id\":\"ca4\",\"reply_to\":\"$REPLY/ca4\",\"delay_ms\":3600000,\"op\":\"enqueue\",\"queue\":\"cq\",\"payload\":4}"
s1=$(receipt ca4 | sed -n 's/.*"jobs":\[{"job":\([0-9]*\),"state":"scheduled".*/\1/p')
check "delay_ms on an enqueue: the job is scheduled" test -n "$s1"
check_eq "job_run_now: ready now" "$(admin a7 "\"cmd\":\"job_run_now\",\"job\":$s1")" "$PREFIX_TOPIC/reply/ops/a7 {\"cmd\":\"job_run_now\",\"ok\":true,\"job\":$s1,\"state\":\"ready\"}"
check_eq "queue_pause" "$(admin a8 '"cmd":"queue_pause","queue":"pq"')" "$PREFIX_TOPIC/reply/ops/a8 {\"cmd\":\"queue_pause\",\"ok\":true,\"queue\":\"pq\",\"paused\":true}"
p1=$(enq pq1 pq '1')
claim pq pc9 wq sq 20000
sleep 0.5
check "a paused queue grants nothing" not answers_for pc9 1
check_eq "queue_resume" "$(admin a9 '"cmd":"queue_resume","queue":"pq"')" "$PREFIX_TOPIC/reply/ops/a9 {\"cmd\":\"queue_resume\",\"ok\":true,\"queue\":\"pq\",\"paused\":false}"
check "resumed: the waiting claim is granted" sh -c "grep -q '\"claim\":\"pc9\",\"job\":$p1' '$GRANTS' || (sleep 3; grep -q '\"claim\":\"pc9\",\"job\":$p1' '$GRANTS')"

# --- follow: the job's end as a second receipt -----------------------------------------------------
r=$(req write fo1 '"op":"enqueue","queue":"fq","payload":1,"follow":true')
fj=$(sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r")
claim fq fc1 wf sf 0
answer fc1 >/dev/null
req jobs/fq fd1 "\"op\":\"done\",\"job\":$fj,\"attempt\":1,\"exit_code\":0" >/dev/null
wait_until 10 grep -q '"id":"fo1","status":"job_done"' "$RECEIPTS"
check_eq "follow: a second receipt with the end" "$(grep '"id":"fo1"' "$RECEIPTS" | sed -n 2p)" "{\"id\":\"fo1\",\"status\":\"job_done\",\"job\":$fj,\"attempt\":1,\"exit_code\":0}"

# --- waiting claims cost no commit ---------------------------------------------------------------------
sleep 2.5
c0=$(commits)
for i in $(seq 1 20); do claim idle ic$i wi$i si$i 1500; done
wait_until 15 answers_for ic20 1
for i in $(seq 1 20); do pub jobs/worker "{\"op\":\"beat\",\"worker\":\"wi$i\",\"session\":\"si$i\",\"reply_to\":\"$TO/wi$i\",\"jobs\":[]}"; done
for i in $(seq 1 20); do claim idle id$i wi$i si$i 1000; done
wait_until 15 answers_for id20 1
sleep 2.5
c1=$(commits)
check_eq "40 waiting claims ran out: 40 empty" "$(grep -c '"op":"empty","claim":"i[cd][0-9]*"' "$GRANTS")" "40"
check "idle claims and beats made no commit ($c0 -> $c1)" test -n "$c0" -a "$c0" = "$c1"
st=$(status)
check "the status counts jobs per queue ($st)" grep -q '"jobs":{.*"build":{"scheduled":0,"ready":0,"blocked":0,"running":0,"retry":0,"done":1,"failed":0,"dead":0,"cancelled":0,"paused":false}' <<<"$st"

# --- bad input: exact rejections, nothing changed ------------------------------------------------------
n0=$(sql "SELECT count(*) || ',' || total(attempt) FROM mosqlite_jobs")
bad() { # NAME TOPIC ID BODY ERROR
    r=$(req "$2" "$3" "$4")
    check_eq "refused: $1" "$r" "{\"id\":\"$3\",\"status\":\"rejected\",\"error\":$5}"
}
bad "unknown op" jobs/build b1 '"op":"grab"' '"unknown op \"grab\" on PREFIX/jobs/QUEUE (use claim, done, fail, release, progress or enqueue)"'
bad "no op" jobs/build b2 '"job":1' '"a job message needs \"op\" (a string)"'
bad "claim: unknown field" jobs/build b3 "\"op\":\"claim\",\"worker\":\"w\",\"session\":\"s\",\"max\":2" '"unknown field \"max\" in a claim"'
bad "claim outside its family" jobs/build b5 "\"op\":\"claim\",\"worker\":\"w\",\"session\":\"s\",\"queues\":[\"deploy\"]" '"queue \"deploy\" is not in the family of \"build\" (a message on PREFIX/jobs/build may name build and build.*)"'
pub jobs/build "{\"op\":\"claim\",\"id\":\"b4\",\"worker\":\"w\",\"session\":\"s\",\"reply_to\":\"$PREFIX_TOPIC/receipts/w\"}"
wait_until 10 sh -c "sqlite3 '$DB' \"SELECT error FROM mosqlite_rejected WHERE req_id = 'b4'\" | grep -q ."
check_eq "claim: reply_to under PREFIX but not PREFIX/jobs/to/" "$(sql "SELECT error FROM mosqlite_rejected WHERE req_id = 'b4'")" "a claim's \"reply_to\" must be under mosqlite/jobs/to/ or outside mosqlite/"
pub jobs/build "{\"op\":\"claim\",\"id\":\"b6\",\"worker\":\"w\",\"session\":\"s\",\"reply_to\":\"$TO/bad\",\"queues\":[\"deploy\"]}"
wait_until 10 grep -q '"id":"b6"' "$GRANTS"
check_eq "claim outside its family: refused on its reply_to" "$(grep '"id":"b6"' "$GRANTS" | cut -d' ' -f2-)" '{"id":"b6","status":"rejected","error":"queue \"deploy\" is not in the family of \"build\" (a message on PREFIX/jobs/build may name build and build.*)"}'
pub jobs/build "{\"op\":\"claim\",\"id\":\"b7\",\"worker\":\"w\",\"session\":\"s\",\"reply_to\":\"$TO/bad\",\"queues\":[\"build.arm64\",\"build\"],\"wait_ms\":0}"
check_eq "a claim in its family is taken" "$(answer b7)" '{"op":"empty","claim":"b7"}'
bad "done without an id" jobs/build b8 '"op":"done","job":1' '"\"attempt\" is required"'
bad "done: job not an integer" jobs/build b9 '"op":"done","job":"1","attempt":1' '"\"job\" must be an integer from 1 to 9007199254740991"'
bad "done of a job of another queue" jobs/wait b10 '"op":"done","job":1,"attempt":1' '"job 1 is in queue \"build\": a message on PREFIX/jobs/wait may only name jobs of wait and wait.*"'
bad "done of no job" jobs/build b11 '"op":"done","job":424242,"attempt":1' '"no job 424242"'
bad "done with a bad op" jobs/build b12 '"op":"done","job":1,"attempt":1,"ops":[{"table":"nope","values":{}}]' '"ops[0]: unknown table \"nope\""'
bad "fail: bad retry" jobs/build b13 '"op":"fail","job":1,"attempt":1,"retry":"maybe"' '"\"retry\" must be policy, yes or no"'
bad "enqueue: reserved queue" write b14 '"op":"enqueue","queue":"worker","payload":1' '"queue name \"worker\" is reserved (PREFIX/jobs/worker is the writer'"'"'s)"'
bad "enqueue: queue with a slash" write b15 '"op":"enqueue","queue":"a/b","payload":1' '"queue name \"a/b\" cannot be one MQTT topic level (it has \"/\")"'
bad "enqueue: no payload" write b16 '"op":"enqueue","queue":"q"' '"enqueue needs \"payload\" (any JSON value; the worker gets it as is)"'
bad "enqueue: unknown field" write b17 '"op":"enqueue","queue":"q","payload":1,"prio":1' '"unknown field \"prio\" in an enqueue"'
bad "enqueue: concurrency without key" write b18 '"op":"enqueue","queue":"q","payload":1,"concurrency":2' '"\"concurrency_key\" needs \"concurrency\" (and the other way round)"'
bad "enqueue: bad on_duplicate" write b19 '"op":"enqueue","queue":"q","payload":1,"unique_key":"k","on_duplicate":"merge"' '"\"on_duplicate\" must be ignore, reject or replace"'
bad "enqueue: lease too short" write b20 '"op":"enqueue","queue":"q","payload":1,"lease_ms":10' '"\"lease_ms\" must be an integer from 1000 to 86400000"'
bad "enqueue in a transaction, by index" write b21 '"ops":[{"table":"builds","values":{"id":70,"name":"x"}},{"op":"enqueue","queue":"","payload":1}]' '"ops[1]: a job'"'"'s queue needs a name"'
bad "enqueue on a table topic" write/builds b22 '"op":"enqueue","queue":"q","payload":1' '"an enqueue goes on PREFIX/write or PREFIX/jobs/QUEUE, not on a table'"'"'s topic"'
bad "at with an enqueue and an ordinary op" write b23 '"delay_ms":10,"ops":[{"table":"builds","values":{"id":71,"name":"x"}},{"op":"enqueue","queue":"q","payload":1}]' '"\"at\"/\"delay_ms\" with an enqueue schedules the job, not the request: send the other ops apart"'
bad "follow without reply_to" jobs/build b24 '"op":"enqueue","payload":1,"follow":"yes"' '"\"follow\" must be true or false"'
bad "beat: unknown op on the worker topic" jobs/worker b25 '"op":"ping","worker":"w","session":"s"' '"unknown op \"ping\" on PREFIX/jobs/worker (use hello, beat, bye or gone)"'
pub jobs/worker '{"op":"beat","worker":"w","session":"s26","reply_to":"x/y"}'
wait_until 10 sh -c "sqlite3 '$DB' \"SELECT error FROM mosqlite_rejected WHERE payload LIKE '%s26%'\" | grep -q ."
check_eq "refused: beat without jobs (on PREFIX/rejected only)" "$(sql "SELECT error FROM mosqlite_rejected WHERE payload LIKE '%s26%'")" '"jobs" must be an array of {"job": N, "attempt": A}'
bad "a rolled-back transaction enqueues nothing" write b27 '"ops":[{"op":"enqueue","queue":"rb","payload":1},{"table":"builds","values":{"id":7,"name":"dup"}}]' '"ops[1]: UNIQUE constraint failed: builds.id"'
check_eq "bad input changed no job" "$(sql "SELECT count(*) || ',' || total(attempt) FROM mosqlite_jobs")" "$n0"
check_eq "the rolled-back enqueue left no job" "$(sql "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'rb'")" "0"

# --- a done carrying the next claim, granted at once: the receipt and the grant apart ------
j=$(enq c-e1 carry '{"n":1}'); j2=$(enq c-e2 carry '{"n":2}')
claim carry nx1 wnx snx 0
answer nx1 >/dev/null
r=$(req jobs/carry dx1 "\"op\":\"done\",\"job\":$j,\"attempt\":1,\"claim\":{\"id\":\"nx2\",\"worker\":\"wnx\",\"session\":\"snx\",\"wait_ms\":0}")
check_eq "done with a next claim granted at once: its receipt is its own" "$r" "{\"id\":\"dx1\",\"status\":\"applied\",\"changes\":0,\"job\":$j,\"state\":\"done\"}"
wait_until 10 grep -q '"claim":"nx2"' "$RECEIPTS"
check "and the grant of the next job goes to the same reply_to" grep -q "\"op\":\"job\",\"claim\":\"nx2\",\"job\":$j2,\"attempt\":1" "$RECEIPTS"
check "the writer is still online" status_is online

exit $NFAIL
