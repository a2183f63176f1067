#!/bin/bash
# mosqlite, the operator's command, against a real broker, writer and replica: every
# subcommand with its human output and exit code, and its --json parsed by python3's
# json module; exit 2 when no writer answers, 3 on bad arguments, 4 with no broker; and
# under conf/secure/ an operator's command succeeds while a producer's is refused by the
# broker's ACL (said so, exit 1). The command's standard error goes to *.log files, where
# lib.sh looks for sanitizer reports under make asan.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/replica.sh"
M=$BIN/mosqlite

# py EXPR: evaluate EXPR with d = the JSON document on stdin; print the result.
py() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# pyl EXPR: the same over JSON Lines, with l = the list of documents.
pyl() { python3 -c 'import json, sys; l = [json.loads(x) for x in sys.stdin if x.strip()]; print(eval(sys.argv[1]))' "$1"; }
# run ARGS...: mosqlite against this test's broker; stdout in $out, stderr in $err, exit in $rc.
run() {
    "$M" -p "$MQTT_PORT" --timeout 20 "$@" >"$T/out" 2>"$T/err.log"
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err.log")
    cat "$T/err.log" >>"$T/every-run.log"
}
# expect DESC RC [GREP...]: the last run exited RC and its stdout+stderr match each pattern.
expect() {
    _d=$1 _rc=$2; shift 2
    _ok=1
    [ "$rc" = "$_rc" ] || _ok=
    for _p in "$@"; do grep -qE -- "$_p" "$T/out" "$T/err.log" || _ok=; done
    if [ -n "$_ok" ]; then ok "$_d"; else fail "$_d (exit $rc, want $_rc): $(head -c 600 "$T/out") | $(head -c 600 "$T/err.log")"; fi
}

# --- bad arguments: exit 3, before any connection -----------------------------------
MQTT_PORT=1
run;                          expect "no command: exit 3" 3 "no command"
run frobnicate;               expect "unknown command: exit 3" 3 'unknown command "frobnicate"'
run status extra;             expect "status takes no arguments: exit 3" 3 "status takes no arguments"
run backup;                   expect "backup without NAME: exit 3" 3 "usage: mosqlite backup NAME"
run backup ../etc/x.db;       expect "backup NAME that is a path: exit 3" 3 "plain file name"
run log seven;                expect "log BUILD not a number: exit 3" 3 "a build's id"
run tail a/b;                 expect "tail TABLE with a slash: exit 3" 3 "plain table name"
run query recent_builds x;    expect "query param without =: exit 3" 3 "NAME=VALUE"
run query q 'a:={bad';        expect "query param with bad JSON: exit 3" 3 "not valid JSON"
run status -f;                expect "-f with status: exit 3" 3 "goes with log only"
run --port 0 status;          expect "port 0: exit 3" 3 "port"
run --bogus status;           expect "unknown option: exit 3" 3 'unknown option "--bogus"'
run job seven;                expect "job ID not a number: exit 3" 3 "a job's id is an integer"
run retry 0;                  expect "retry 0: exit 3" 3 "a job's id is an integer"
run cancel-job;               expect "cancel-job without ID: exit 3" 3 "usage: mosqlite cancel-job ID"
run pause-queue a/b;          expect "pause-queue with a slash: exit 3" 3 "one MQTT topic level"
run jobs worker;              expect "jobs of a reserved name: exit 3" 3 "reserved"
run workers all;              expect "workers takes no arguments: exit 3" 3 "workers takes no arguments"
MOSQLITE_PORT=http run status; expect "bad MOSQLITE_PORT: exit 3, names the variable" 3 "MOSQLITE_PORT"
"$M" --help >"$T/help" 2>&1
check "--help lists every command and the exit codes" bash -c "grep -q 'replicas' '$T/help' &&
    grep -q 'cancel ID' '$T/help' && grep -q 'resume-queue QUEUE' '$T/help' && grep -q '^ *workers ' '$T/help' && grep -q '4 cannot connect' '$T/help'"

# --- no broker: exit 4 -------------------------------------------------------------------
MQTT_PORT=$(free_port)
run status;                   expect "no broker: exit 4" 4 "cannot connect to the broker at 127.0.0.1:$MQTT_PORT"
unset MQTT_PORT

broker_start
# --- a broker without a writer: exit 2 ---------------------------------------------------
run status;                   expect "status, no writer ever: exit 2" 2 "no status on mosqlite/status"
run stats;                    expect "stats, no writer: exit 2 (no one listens on mosqlite/admin)" 2 \
                                     "no one listens on mosqlite/admin"

grep '^query ' "$ROOT/conf/mosqlite.conf" >"$T/writer.conf"
echo "backup-dir $T/backups" >>"$T/writer.conf"
writer_start -c "$T/writer.conf"

# --- status --------------------------------------------------------------------------------
run status;                   expect "status: online, exit 0" 0 "^writer +online" "^requests +0 applied"
run status --json
check_eq "status --json: state, paused" "$(py '(d["state"], d["paused"])' <"$T/out")" "('online', False)"
# mosqlite-pub's config file serves here too: every key it takes from a file is accepted.
mkdir -p "$T/xdg"
printf '%s\n' 'wait' 'verbose' 'no-tee' 'window 8' 'lines-window 4' 'lines-max 50' 'max-line 100' \
    'spool /tmp' 'spool-max 70000' 'linger 3' 'build-table builds' 'stream-column stream' \
    'time-column at' 'qos 2' 'protocol-version 5' >"$T/xdg/mosqlite-pub"
XDG_CONFIG_HOME=$T/xdg run status
expect "mosqlite-pub's config file with its own keys: accepted" 0 "^writer +online"

# --- the maintenance commands ------------------------------------------------------------
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait builds '{"id": 1, "name": "first"}' >/dev/null 2>&1
run stats;                    expect "stats: tables and rows" 0 "^database" "^builds +1$" "^paused +no"
run stats --json
check_eq "stats --json" "$(py '(d["ok"], d["tables"]["builds"], d["paused"])' <"$T/out")" "(True, 1, False)"
run checkpoint;               expect "checkpoint" 0 "^checkpoint: [0-9]+ of [0-9]+ WAL frames copied"
run checkpoint --json
check_eq "checkpoint --json" "$(py '(d["cmd"], d["ok"], d["complete"])' <"$T/out")" "('checkpoint', True, True)"
run integrity;                expect "integrity" 0 "^integrity_check: ok"
run integrity --json
check_eq "integrity --json" "$(py '(d["cmd"], d["result"], d["problems"])' <"$T/out")" "('integrity_check', 'ok', [])"
run optimize;                 expect "optimize" 0 "^optimize: done"
run optimize --json
check_eq "optimize --json" "$(py 'd["ok"]' <"$T/out")" True
run backup nightly.db;        expect "backup" 0 "^backup nightly.db: $T/backups/nightly.db, [0-9.]+ (bytes|KiB)"
check_eq "the backup is a sound SQLite file with the row" \
    "$(sqlite3 "$T/backups/nightly.db" 'PRAGMA integrity_check; SELECT name FROM builds')" "ok
first"
run backup second.db --json
check_eq "backup --json" "$(py '(d["name"], d["path"])' <"$T/out")" "('second.db', '$T/backups/second.db')"

# --- pause and resume ---------------------------------------------------------------------
status_has() { status | grep -q "$1"; }
run pause;                    expect "pause" 0 "^paused: the writer takes no requests"
check "status says paused" wait_until 10 status_has '"paused":true'
run status;                   expect "status shows the pause" 0 "^writer +online, paused"
pub write/builds '{"values": {"id": 2, "name": "while paused"}}'
run stats --json
check_eq "stats while paused: paused, the request not applied" "$(py '(d["paused"], d["tables"]["builds"])' <"$T/out")" "(True, 1)"
run resume --json
check_eq "resume --json" "$(py '(d["cmd"], d["paused"])' <"$T/out")" "('resume', False)"
check "the request held during the pause is applied" wait_until 10 rows_are builds 2
run pause --json
check_eq "pause --json" "$(py '(d["cmd"], d["paused"])' <"$T/out")" "('pause', True)"
run resume;                   expect "resume" 0 "^resumed"

# --- query ------------------------------------------------------------------------------------
RB="before_at=9999 before_id=999999 status= name= limit=20"
run query recent_builds $RB; expect "query recent_builds: a table" 0 "^id +name +status" "^2 +while paused" "^\(2 rows\)$"
run query recent_builds $RB --json
check_eq "query --json: the answer" "$(py '(d["query"], [r["id"] for r in d["rows"]])' <"$T/out")" "('recent_builds', [2, 1])"
run query build id=1 --json
check_eq "query with a number parameter" "$(py 'd["rows"][0]["name"]' <"$T/out")" first
run query build 'id:="1"' --json
check_eq "query with a k:=JSON parameter" "$(py 'len(d["rows"])' <"$T/out")" 1
run query nope;               expect "unknown query: exit 1 with the writer's reason" 1 'unknown query \\"nope\\"|unknown query "nope"'
run query build;              expect "missing parameter: exit 1 with the reason" 1 'needs parameter'

# --- log --------------------------------------------------------------------------------------
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 7}' build_logs --no-tee -- \
    sh -c 'printf "\033[31mred\033[0m plain\n"; echo two; printf "bell\a \033]0;title\a\n"' >/dev/null 2>&1
run log 7;                    expect "log 7: exit 0" 0
check_eq "log 7: colours kept, other control characters shown as ^X" "$(cat "$T/out")" \
    $'\e[31mred\e[0m plain\ntwo\nbell^G ^[]0;title^G'
run log 7 --json
check_eq "log --json: one row a line" "$(pyl '[r["line"] for r in l][1:]' <"$T/out")" "['two', 'bell\x07 \x1b]0;title\x07']"
run log 999999;               expect "log of no build: exit 1" 1 "no build 999999"
# -f: follows a running build to its end. The build waits for a file before its last lines.
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --lines line --with '{"build_id": 8}' build_logs --no-tee -- \
    sh -c "echo one; while [ ! -f '$T/go' ]; do sleep 0.05; done; echo two; echo three" >/dev/null 2>&1 &
BUILD=$!
PIDS="$PIDS $BUILD"
has_line() { [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 8")" -ge 1 ]; }
wait_until 20 has_line
"$M" -p "$MQTT_PORT" log 8 -f >"$T/follow" 2>"$T/follow.log" &
FOLLOW=$!
PIDS="$PIDS $FOLLOW"
check "log -f prints the lines so far" wait_until 20 grep -qx one "$T/follow"
touch "$T/go"
wait "$BUILD"
wait_until 30 bash -c "! kill -0 $FOLLOW 2>/dev/null"
wait "$FOLLOW"
rc=$?
check_eq "log -f: every line, in order, and exit 0 when the build ends" "$(cat "$T/follow") rc=$rc" "one
two
three rc=0"
check "log -f says how the build ended" grep -q "build 8 passed (exit code 0" "$T/follow.log"

# --- tail -----------------------------------------------------------------------------------
subscribed() { grep -q "^[^ ]* $1 [0-9] $2\$" "$T/broker/mosquitto.log"; }
"$M" -p "$MQTT_PORT" -i tail-1 tail build_logs -n 2 >"$T/tail" 2>"$T/tail.log" &
TAIL=$!
PIDS="$PIDS $TAIL"
wait_until 10 subscribed tail-1 mosqlite/rejected
pub write/build_logs '{"values": {"build_id": 9, "line": "live line"}}'
pub write/build_logs '{"id": "bad-1", "values": {"build_id": 9, "lne": "typo"}}'
wait_until 20 bash -c "! kill -0 $TAIL 2>/dev/null"
wait "$TAIL"
rc=$?
check_eq "tail -n 2: exit 0" "$rc" 0
check "tail: the committed row" grep -qE '^[0-9:.]+ build_logs insert  \{.*"line":"live line"' "$T/tail"
check "tail: the rejection with its reason" grep -qE '^[0-9:.]+ rejected  mosqlite/write/build_logs id bad-1: unknown column "lne"' "$T/tail"
"$M" -p "$MQTT_PORT" -i tail-2 tail --json >"$T/tail.json" 2>&1 &
TAIL=$!
PIDS="$PIDS $TAIL"
wait_until 10 subscribed tail-2 mosqlite/rejected
pub write/build_logs '{"values": {"build_id": 9, "line": "json line"}}'
wait_until 10 grep -q 'json line' "$T/tail.json"
kill -INT "$TAIL"
wait "$TAIL"
rc=$?
check_eq "tail --json until Ctrl-C: exit 0" "$rc" 0
check_eq "tail --json: topic and message" "$(pyl '(l[0]["topic"], l[0]["message"]["rows"][0]["line"])' <"$T/tail.json")" \
    "('mosqlite/events/build_logs', 'json line')"

# --- scheduled and cancel ----------------------------------------------------------------------
run scheduled;                expect "scheduled: nothing" 0 "^nothing scheduled"
echo '{"id": "later-1", "table": "builds", "at": "2099-01-01T00:00:00Z", "values": {"id": 99, "name": "later"}}' |
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait - >/dev/null 2>&1
run scheduled;                expect "scheduled: the waiting write" 0 "^id +due +received +topic +payload" "^later-1 +2099-01-01T00:00:00.000Z" "^\(1 scheduled"
run scheduled --json
check_eq "scheduled --json" "$(py '[(r["id"], r["due"]) for r in d]' <"$T/out")" "[('later-1', '2099-01-01T00:00:00.000Z')]"
run cancel later-1;           expect "cancel" 0 "^cancelled later-1$"
run cancel later-1 --json;    expect "cancel again: refused by the writer, exit 1" 1 "cannot cancel later-1: request \"later-1\" is not scheduled any more"
check_eq "cancel --json: the receipt" "$(py '(d["status"], d["error"][:7])' <"$T/out")" "('rejected', 'request')"
run cancel nothing-here;      expect "cancel of an unknown id: exit 1" 1 'no request with id "nothing-here" is scheduled'
run scheduled;                expect "scheduled after the cancel" 0 "^nothing scheduled"

# --- cancel-build: a running build's row to cancelled; its wrapper stops the command -------------
(exec "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --lines line --with '{"build_id": 880}' build_logs \
    -- sh -c "echo \$\$ > '$T/cmd880.pid'; echo started; exec sleep 300") &
W=$!
wait_until 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT count(*) FROM build_logs WHERE build_id = 880')\" = 1 ]" ||
    fail "build 880 started"
run cancel-build 880;         expect "cancel-build of a running build" 0 "^cancelled build 880$"
wait_until 30 sh -c "! kill -0 $W 2>/dev/null" || { kill -9 "$(cat "$T/cmd880.pid")"; fail "the wrapper went on after cancel-build"; }
wait "$W"; check_eq "cancel-build: the wrapper exits 143" "$?" 143
check "cancel-build: the command is gone" not kill -0 "$(cat "$T/cmd880.pid")" 2>/dev/null
wait_until 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' 'SELECT exit_code FROM builds WHERE id = 880')\" = 143 ]"
check_eq "cancel-build: the row says cancelled" "$(sql 'SELECT status FROM builds WHERE id = 880')" cancelled
run cancel-build 880;         expect "cancel-build of a build that ended: exit 1" 1 "build 880 is not running \(it says cancelled\)"
run cancel-build 999999;      expect "cancel-build of no build: exit 1" 1 "no build 999999"

# --- replicas ---------------------------------------------------------------------------------
run replicas;                 expect "replicas: none" 0 "^no replica has a status on mosqlite/replica/\+/status"
replica_start site1
following() { replica_status site1 | grep -q '"state":"following"'; }
wait_until 30 following
run replicas;                 expect "replicas: site1 following" 0 "^replica +state +seq" "^site1 +following"
run replicas --json
check_eq "replicas --json" "$(py '[(r["id"], r["state"]) for r in d]' <"$T/out")" "[('site1', 'following')]"
replica_stop site1

# --- jobs: a real queue, workers simulated with mosquitto_rr and mosquitto_pub --------------
JT=$PREFIX_TOPIC/jobs/to
# claim WORKER ID [WAIT_MS]: a claim on PREFIX/jobs/build, the grant (or empty) printed.
claim() {
    mosquitto_rr -p "$MQTT_PORT" -i "$1" -q 1 -t "$PREFIX_TOPIC/jobs/build" -e "$JT/$1" -W 15 \
        -m "{\"op\":\"claim\",\"id\":\"$2\",\"worker\":\"$1\",\"session\":\"s-$1\",\"reply_to\":\"$JT/$1\",\"wait_ms\":${3:-0}}"
}
jstate() { sql "SELECT state FROM mosqlite_jobs WHERE id = $1"; }
jstate_is() { [ "$(jstate "$1")" = "$2" ]; }
run jobs;                     expect "jobs: no queue yet" 0 "^no job queue yet" "^claims waiting 0, live leases 0" "^no job running"
for i in 1 2 3; do
    pub write "{\"id\":\"je$i\",\"op\":\"enqueue\",\"queue\":\"build\",\"payload\":{\"build_id\":4$i}}"
done
wait_until 10 rows_are mosqlite_jobs 3
check "a worker's claim is granted job 1" grep -q '"job":1,"attempt":1' <<<"$(claim w1 jc1)"
check "another's job 2" grep -q '"job":2,"attempt":1' <<<"$(claim w2 jc2)"
pub jobs/build '{"op":"progress","job":1,"attempt":1,"progress":{"pct":40,"step":"linking"}}'
pub jobs/build '{"op":"fail","id":"jf2","job":2,"attempt":1,"exit_code":2,"error":"make: *** Error 2"}'
wait_until 10 jstate_is 2 failed
wait_until 10 bash -c "[ -n \"\$(sqlite3 '$DB' 'SELECT progress FROM mosqlite_jobs WHERE id = 1')\" ]"
wait_until 10 bash -c "timeout -k 2 3 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/status -C 1 | grep -q '\"running\":1,\"retry\":0,\"done\":0,\"failed\":1'"
run jobs
expect "jobs: the queue's counts by state, claims and leases, the running job" 0 \
    "^queue +paused +max_running +scheduled +ready +blocked +running +retry +done +failed +dead +cancelled$" \
    "^build +0 +NULL +0 +1 +0 +1 +0 +0 +1 +0 +0$" "^claims waiting 0, live leases 1; workers running jobs: w1$" \
    "^id +queue +attempt +worker +started_at +cancel_asked +progress +build_id +elapsed$" \
    '^1 +build +1 +w1 +[0-9T:.Z-]+ +0 +\{"pct":40,"step":"linking"\} +41 +[0-9]+ s$'
run jobs --json
check_eq "jobs --json: counts, leases, the running job with its build id" \
    "$(py '(d["queues"][0]["queue"], d["queues"][0]["ready"], d["queues"][0]["failed"], d["job_leases"], [(r["id"], r["worker"], r["build_id"]) for r in d["running"]])' <"$T/out")" \
    "('build', 1, 1, 1, [(1, 'w1', 41)])"
run jobs build;               expect "jobs QUEUE: that queue" 0 "^build +0" "^1 +build +1 +w1"
run jobs nope;                expect "jobs of no queue: exit 1" 1 'no queue "nope"'
run job 2
expect "job ID: the job and its attempt (worker, start, end, outcome, exit code)" 0 "^state +failed$" "^queue +build$" \
    '^error +make: \*\*\* Error 2$' "^attempt +worker +started_at +ended_at +outcome +exit_code +error$" \
    "^1 +w2 +[0-9T:.Z-]+ +[0-9T:.Z-]+ +failed +2 +make"
run job 2 --json
check_eq "job --json: the job with its attempts" \
    "$(py '(d["id"], d["state"], [(a["attempt"], a["worker"], a["outcome"], a["exit_code"]) for a in d["attempts"]])' <"$T/out")" \
    "(2, 'failed', [(1, 'w2', 'failed', 2)])"
run job 999999;               expect "job of no job: exit 1" 1 "no job 999999"
run retry 2;                  expect "retry: the failed job back to ready" 0 "^job 2 retried: ready$"
check_eq "and it is ready" "$(jstate 2)" ready
run retry 2;                  expect "retry of a ready job: refused by the writer, exit 1" 1 "retry 2: job 2 is"
check "the retried job runs again: attempt 2" grep -q '"job":2,"attempt":2' <<<"$(claim w2 jc3)"
run job 2;                    expect "job: both attempts" 0 "^1 +w2 .* failed +2" "^2 +w2 .*running|^2 +w2 +[0-9T:.Z-]+ +NULL"
run cancel-job 3;             expect "cancel-job of a queued job: cancelled at once" 0 "^job 3 cancelled: cancelled$"
run cancel-job 1 --json
check_eq "cancel-job of a running job: asked (--json)" "$(py '(d["cmd"], d["job"], d["state"])' <"$T/out")" "('job_cancel', 1, 'running')"
run cancel-job 2;             expect "cancel-job of a running job: its worker is told" 0 "^job 2: cancel asked"
pub jobs/build '{"op":"fail","id":"jf3","job":2,"attempt":2,"cancelled":true}'
wait_until 10 jstate_is 2 cancelled
run discard 2;                expect "discard of a cancelled job: refused, exit 1" 1 "discard 2: job 2 is already cancelled"
pub write '{"id":"je4","op":"enqueue","queue":"build","payload":{"build_id":44}}'
wait_until 10 rows_are mosqlite_jobs 4
run discard 4;                expect "discard of a queued job: dead" 0 "^job 4 discarded: dead$"
run pause-queue build;        expect "pause-queue" 0 "^queue build paused: it grants nothing"
run jobs --json
check_eq "the queue says paused" "$(py 'd["queues"][0]["paused"]' <"$T/out")" 1
pub write '{"id":"je5","op":"enqueue","queue":"build","payload":{"build_id":45}}'
wait_until 10 rows_are mosqlite_jobs 5
check_eq "a claim from the paused queue gets nothing" "$(claim w3 jc4 500)" '{"op":"empty","claim":"jc4"}'
run resume-queue build --json
check_eq "resume-queue --json" "$(py '(d["cmd"], d["queue"], d["paused"])' <"$T/out")" "('queue_resume', 'build', False)"
check "resumed: a claim is granted the job" grep -q '"job":5,"attempt":1' <<<"$(claim w3 jc5 2000)"

# --- workers: the sessions online -----------------------------------------------------------------
pub jobs/worker '{"op":"hello","worker":"wcon","session":"s-con","host":"h-con","queues":["build","build.arm64"],"jobs":4}'
wsess() { "$M" -p "$MQTT_PORT" --timeout 20 --json workers | grep -q "\"session\":\"$1\""; }
wait_until 10 wsess s-con
run workers
expect "workers: the sessions online, a hello's host, queues and slots" 0 \
    "^[0-9]+ worker sessions? online$" "^worker +host +queues +slots +running +last_seen +since +session$" \
    "^wcon +h-con +build,build.arm64 +4 +0 +[0-9]+ s ago +[0-9T:.Z-]+ +s-con$"
run workers --json
check_eq "workers --json: the writer's answer" \
    "$(py '[(w["worker"], w["host"], w["queues"], w["slots"], w["running"]) for w in d["workers"] if w["session"] == "s-con"]' <"$T/out")" \
    "[('wcon', 'h-con', ['build', 'build.arm64'], 4, 0)]"
pub jobs/worker '{"op":"bye","worker":"wcon","session":"s-con"}'
wait_until 10 not wsess s-con
run workers;                  expect "workers: bye takes it off" 0
check "and s-con is not listed" not grep -q "s-con" "$T/out"

# --- no writer: exit 2 ---------------------------------------------------------------------------
writer_stop
run status;                   expect "status of a stopped writer: offline, exit 1" 1 "^writer +offline" "the writer is offline"
run stats;                    expect "stats, writer stopped: exit 2" 2 "no one listens on mosqlite/admin"
"$M" -p "$MQTT_PORT" --timeout 2 cancel later-2 >"$T/out" 2>"$T/err.log"
rc=$?
expect "cancel, writer stopped: no receipt within --timeout, exit 2" 2 "no answer from the writer within 2 s" "stays queued"
broker_stop

# --- conf/secure: the operator's command and a producer's refusal ---------------------------------
SEC=$ROOT/conf/secure
WPASS=writer-pw-$$ PPASS=builder-pw-$$ WEBPASS=web-pw-$$ OPASS=ops-pw-$$
mkdir -p "$T/sec/certs"
( cd "$T/sec/certs" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=mosqlite-test-ca &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 \
      -extfile san.ext ) >"$T/openssl.log" 2>&1 || { fail "openssl"; cat "$T/openssl.log"; exit 1; }
sh "$SEC/make-passwd.sh" "$T/sec/passwd" writer "$WPASS" builder "$PPASS" web "$WEBPASS" ops "$OPASS" >/dev/null
install -m 600 "$SEC/acl" "$T/sec/acl"
MQTT_PORT=$(free_port) WS_PORT=$(free_port) TLS_PORT=$(free_port)
export MQTT_PORT WS_PORT
sed -e "s/^listener 1883 127.0.0.1\$/listener $MQTT_PORT 127.0.0.1/" \
    -e "s/^listener 8883\$/listener $TLS_PORT/" \
    -e "s/^listener 9001\$/listener $WS_PORT/" \
    -e "s|/etc/mosquitto/secure/|$T/sec/|" \
    -e "s|^http_dir .*|http_dir $ROOT/web|" \
    -e "s|^persistence_location .*|persistence_location $T/broker/|" \
    -e "s|^log_dest .*|log_dest file $T/broker/mosquitto.log|" \
    "$SEC/mosquitto.conf" >"$T/broker/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/broker/mosquitto.conf"
rm -f "$T/broker/mosquitto.db"
broker_start
status() {
    timeout -k 2 3 mosquitto_sub -p "$MQTT_PORT" -u web -P "$WEBPASS" -t "$PREFIX_TOPIC/status" -C 1 -W 2 2>/dev/null
}
DB=$T/secure.db
writer_start -u writer -P "$WPASS" -c "$T/writer.conf"

run -u ops -P "$OPASS" stats; expect "secure: the operator's stats, exit 0" 0 "^database" "^paused +no"
run -u ops -P "$OPASS" status --json
check_eq "secure: the operator reads the status" "$(py 'd["state"]' <"$T/out")" online
run -u builder -P "$PPASS" pause
expect "secure: a producer's pause is refused by the broker's ACL, exit 1" 1 \
    "refused by the broker's ACL: this user may not publish on mosqlite/admin"
run -u ops -P "$OPASS" stats --json
check_eq "secure: and the writer was not paused" "$(py 'd["paused"]' <"$T/out")" False
run -u builder -P "$PPASS" status
expect "secure: a producer cannot read the status: exit 2, the ACL named as a cause" 2 \
    "no status on mosqlite/status.*ACL"
run -u ops -P wrong stats;   expect "secure: a wrong password: exit 4, the broker's reason" 4 "refused the connection"
run -u ops -P "$OPASS" cancel nothing-here
expect "secure: the operator may cancel (the writer answers, not the ACL)" 1 'no request with id "nothing-here" is scheduled'
run -u ops -P "$OPASS" replicas
expect "secure: the operator may list the replicas" 0 "^no replica has a status"
run -u ops -P "$OPASS" scheduled
expect "secure: the operator may run named queries (scheduled writes)" 0 "^nothing scheduled"
run -u builder -P "$PPASS" scheduled
expect "secure: a producer's query is refused by the broker's ACL, exit 1" 1 \
    "refused by the broker's ACL: this user may not publish on mosqlite/query"
run -u ops -P "$OPASS" jobs
expect "secure: the operator lists the jobs" 0 "^no job queue yet"
run -u ops -P "$OPASS" retry 1
expect "secure: the operator may retry (the writer answers, not the ACL)" 1 "retry 1: no job 1"
run -u builder -P "$PPASS" pause-queue build
expect "secure: a producer's pause-queue is refused by the broker's ACL, exit 1" 1 \
    "refused by the broker's ACL: this user may not publish on mosqlite/admin"
writer_stop
exit "$NFAIL"
