#!/bin/bash
# mosqlite-work, the job agent, against a real broker, a real writer and a real file:
# a job runs and its whole log is in build_logs before its done; the exit status
# decides done or fail; --jobs 2 runs two at once; the environment and stdin are as
# documented; kill -9 of an agent: its Last Will gives the job back and a second agent
# runs it (the lease is far too long to be the cause), the command is killed with it;
# SIGTERM finishes the job in hand and takes no other, a second SIGTERM releases it;
# cancel of a running job stops its command (SIGKILL after --grace when it ignores
# SIGTERM) and the job ends cancelled; bad arguments exit 3. Then the shell worker of
# docs/jobs.md, run as written, with stock mosquitto_rr and mosquitto_pub.
. "$(dirname "$0")/lib.sh"

# Everyone may do everything, but publish on mosqlite/jobs/forbidden.
printf 'topic readwrite #\ntopic deny %s/jobs/forbidden\n' "$PREFIX_TOPIC" >"$T/acl"
chmod 600 "$T/acl"
BROKER_EXTRA="acl_file $T/acl"
broker_start
receipts_bg
writer_start || exit 1

# work NAME [OPTIONS] QUEUES -- COMMAND...: an agent in the background; its pid in $AGENT.
work() { n=$1; shift; "$BIN/mosqlite-work" -p "$MQTT_PORT" -w "$n" "$@" >>"$T/$n.log" 2>&1 & AGENT=$!; PIDS="$PIDS $AGENT"; }
enq() { # ID QUEUE PAYLOAD [MORE-FIELDS]: enqueue; prints the job id
    r=$(req write "$1" "\"op\":\"enqueue\",\"queue\":\"$2\",\"payload\":$3${4:+,$4}")
    sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p' <<<"$r"
}
state() { sql "SELECT state FROM mosqlite_jobs WHERE id = $1"; }
state_is() { [ "$(state "$1")" = "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# wait_agent PID: its exit status, or 137 when it had to be killed after 60 s.
wait_agent() { ( sleep 60; kill -9 "$1" ) 2>/dev/null & _wd=$!; wait "$1"; _rc=$?; kill "$_wd" 2>/dev/null; return $_rc; }

# ---- a job, its log, its done ------------------------------------------------------------
work w-log logs -- sh -c 'seq 1 20000 | sed "s/^/line /"; echo "on stderr" >&2'
j=$(enq l1 logs '{"build_id": 1}')
wait_until 60 state_is "$j" done
check_eq "the job is done, exit code 0" "$(sql "SELECT state, exit_code FROM mosqlite_jobs WHERE id = $j")" "done|0"
check_eq "its 20001 lines are in build_logs (stdout and stderr)" \
    "$(sql "SELECT count(*), sum(stream = 'stderr') FROM build_logs WHERE build_id = 1")" "20001|1"
check_eq "stdout in order" "$(sql "SELECT group_concat(line, ',') FROM (SELECT line FROM build_logs WHERE build_id = 1 AND stream = 'stdout' ORDER BY id)")" \
    "$(seq -f 'line %g' 1 20000 | paste -sd ,)"
check "every line was stored before the job was done" \
    [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = 1 AND ts > (SELECT finished_at FROM mosqlite_jobs WHERE id = $j)")" = 0 ]
check_eq "the build row: passed, exit 0" "$(sql "SELECT status, exit_code FROM builds WHERE id = 1")" "passed|0"
check_eq "the attempt names the worker" "$(sql "SELECT worker, outcome FROM mosqlite_job_attempts WHERE job = $j")" "w-log|done"

# ---- the exit status decides ---------------------------------------------------------------
sub_bg "$T/codes.msgs" "$PREFIX_TOPIC/jobs/codes"
work w-code codes -- sh -c 'read -r p; exit "$(printf %s "$p" | sed -n "s/.*\"code\": *\([0-9]*\).*/\1/p")"'
j0=$(enq c0 codes '{"build_id": 2, "code": 0}')
j3=$(enq c3 codes '{"build_id": 3, "code": 3}')
wait_until 30 state_is "$j3" failed
wait_until 30 state_is "$j0" done
check_eq "exit 0: done" "$(sql "SELECT state, exit_code FROM mosqlite_jobs WHERE id = $j0")" "done|0"
check_eq "exit 3: failed (max_attempts 1), exit code and error kept" \
    "$(sql "SELECT state, exit_code, error FROM mosqlite_jobs WHERE id = $j3")" "failed|3|exit status 3"
c=$(grep -m1 -o '^{"op":"\(done\|fail\)".*"claim":{"id":"[^"]*"' "$T/codes.msgs" | sed 's/.*"claim":{"id":"\([^"]*\)".*/\1/')
check_eq "the first outcome carried the next claim, which got the second job (one request per job)" \
    "$(sql "SELECT count(*) FROM mosqlite_job_attempts WHERE claim_id = '${c:-none}' AND job IN ($j0, $j3)")" 1
check_eq "the build rows say so" "$(sql "SELECT group_concat(status, ',') FROM (SELECT status FROM builds WHERE id IN (2, 3) ORDER BY id)")" "passed,failed"

# ---- --jobs 2: two at once -----------------------------------------------------------------
mkdir "$T/pair"
# Each job marks itself and waits (up to 30 s) for the other's mark: only two at once pass.
work w-pair --jobs 2 pair -- sh -c "touch $T/pair/\$MOSQLITE_JOB_ID; i=0; while [ \$(ls $T/pair | wc -l) -lt 2 ]; do sleep 0.1; i=\$((i+1)); [ \$i -gt 300 ] && exit 1; done; exit 0"
p1=$(enq p1 pair '{"build_id": 11}')
p2=$(enq p2 pair '{"build_id": 12}')
wait_until 60 state_is "$p2" done
wait_until 30 state_is "$p1" done
check_eq "--jobs 2: both jobs ran at the same time (each saw the other's mark)" "$(state "$p1"),$(state "$p2")" "done,done"

# ---- environment and stdin ------------------------------------------------------------------
work w-env --no-build env.a,env.b -- sh -c "env | grep '^MOSQLITE_JOB_' | sort >$T/env.out; cat >$T/stdin.out; stat -c %a \"\$(dirname \"\$MOSQLITE_JOB_RESULT\")\" >$T/env.mode"
PAYLOAD='{"build_id": 9, "x": 1.0, "big": 9007199254740991, "s": "\u00e9 \"q\""}'
je=$(enq e1 env.b "$PAYLOAD")
wait_until 30 state_is "$je" done
check_eq "stdin is the payload byte for byte as the writer holds it" "$(cat "$T/stdin.out")" \
    "$(sql "SELECT payload FROM mosqlite_jobs WHERE id = $je")"
check_eq "the payload's values are the ones enqueued (1.0 a REAL, 2^53-1 exact)" "$(cat "$T/stdin.out")" \
    '{"build_id":9,"x":1.0,"big":9007199254740991,"s":"é \"q\""}'
check_eq "the job's variables" "$(grep -v -e _ENQUEUED_AT= -e _SESSION= -e _HOST= -e _RESULT= -e _PROGRESS= "$T/env.out")" \
"MOSQLITE_JOB_ATTEMPT=1
MOSQLITE_JOB_BUILD_ID=9
MOSQLITE_JOB_ID=$je
MOSQLITE_JOB_LEASE_MS=30000
MOSQLITE_JOB_LOST=0
MOSQLITE_JOB_QUEUE=env.b
MOSQLITE_JOB_TIMEOUT_MS=0
MOSQLITE_JOB_WORKER=w-env"
check "MOSQLITE_JOB_SESSION is the attempt's session" \
    grep -qx "MOSQLITE_JOB_SESSION=$(sql "SELECT session FROM mosqlite_job_attempts WHERE job = $je")" "$T/env.out"
check "MOSQLITE_JOB_HOST and MOSQLITE_JOB_ENQUEUED_AT are set" \
    [ "$(grep -c -e '^MOSQLITE_JOB_HOST=.' -e '^MOSQLITE_JOB_ENQUEUED_AT=20' "$T/env.out")" = 2 ]
RDIR=$(sed -n 's|^MOSQLITE_JOB_RESULT=\(.*\)/result$|\1|p' "$T/env.out")
check_eq "MOSQLITE_JOB_RESULT and MOSQLITE_JOB_PROGRESS: two files of one private directory (mode 700)" \
    "$(grep -c -e "^MOSQLITE_JOB_RESULT=$RDIR/result\$" -e "^MOSQLITE_JOB_PROGRESS=$RDIR/progress\$" "$T/env.out"),$(cat "$T/env.mode")" "2,700"
wait_until 10 test -n "$RDIR" -a ! -e "$RDIR"
check "that directory is removed with the job" test -n "$RDIR" -a ! -e "$RDIR"

# ---- a job's result and progress -------------------------------------------------------------
# The payload's "mode" says what the job writes. progress: an invalid progress first (the
# job waits for the agent's warning), then two, each awaited in the job table while the
# command runs (the lease is 1500 ms: a beat every 500 ms looks at the file).
cat >"$T/report-job" <<EOF
#!/bin/sh
[ -n "\$MOSQLITE_JOB_RESULT" ] && [ -n "\$MOSQLITE_JOB_PROGRESS" ] || exit 9
p=\$(cat)
seen() { # TEXT: wait (up to 30 s) until the job row's progress is TEXT
    i=0
    until [ "\$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT progress FROM mosqlite_jobs WHERE id = \$MOSQLITE_JOB_ID")" = "\$1" ]; do
        sleep 0.1; i=\$((i+1)); [ \$i -gt 300 ] && exit 3
    done
}
put() { printf '%s' "\$1" >"\$MOSQLITE_JOB_PROGRESS.tmp" && mv "\$MOSQLITE_JOB_PROGRESS.tmp" "\$MOSQLITE_JOB_PROGRESS"; }
case "\$p" in
*'"mode":"result"'*) printf '{"artifact": "x.tar",\n "n": 1}\n' >"\$MOSQLITE_JOB_RESULT" ;;
*'"mode":"bad"'*) printf '{"artifact": "x.tar", "n": 01}' >"\$MOSQLITE_JOB_RESULT" ;;
*'"mode":"big"'*) printf '"%070000d"' 0 >"\$MOSQLITE_JOB_RESULT" ;;
*'"mode":"fail"'*) echo '{"artifact": "x.tar"}' >"\$MOSQLITE_JOB_RESULT"; exit 2 ;;
*'"mode":"last"'*) put '{"step": "last"}' ;;
*'"mode":"progress"'*)
    put '{"step": 1'
    i=0; until grep -q "job \$MOSQLITE_JOB_ID attempt 1: its progress is not sent" "$T/w-rep.log"; do
        sleep 0.1; i=\$((i+1)); [ \$i -gt 300 ] && exit 3
    done
    put '{"step": 1}'; seen '{"step":1}'
    put '{"step": 2, "of": 2}'; seen '{"step":2,"of":2}' ;;
esac
exit 0
EOF
chmod +x "$T/report-job"
work w-rep rep -- "$T/report-job"
jr1=$(enq rr1 rep '{"build_id": 71, "mode":"result"}')
wait_until 30 state_is "$jr1" done
check_eq "a result written to \$MOSQLITE_JOB_RESULT is the done's result, kept on the job" \
    "$(sql "SELECT state, result FROM mosqlite_jobs WHERE id = $jr1")" 'done|{"artifact":"x.tar","n":1}'
jr2=$(enq rr2 rep '{"build_id": 72, "mode":"bad"}')
wait_until 30 state_is "$jr2" done
check_eq "an invalid result: the job is still done, without a result" \
    "$(sql "SELECT state, result IS NULL FROM mosqlite_jobs WHERE id = $jr2")" "done|1"
WHY="job $jr2 attempt 1: its result is not sent: the result: invalid JSON: number \"01\" at byte 27: leading zeros are not allowed"
check "the agent says why on stderr" grep -qF "$WHY" "$T/w-rep.log"
check_eq "and in the job's log, last" \
    "$(sql "SELECT stream, line FROM build_logs WHERE build_id = 72 ORDER BY id DESC LIMIT 1")" "stderr|mosqlite-work: $WHY"
jr3=$(enq rr3 rep '{"build_id": 73, "mode":"big"}')
wait_until 30 state_is "$jr3" done
check_eq "a result longer than the writer takes: done without it" \
    "$(sql "SELECT state, result IS NULL FROM mosqlite_jobs WHERE id = $jr3")" "done|1"
check "and why" grep -q "job $jr3 attempt 1: its result is not sent: the result is longer than 65536 bytes as JSON (70002)" "$T/w-rep.log"
jr4=$(enq rr4 rep '{"build_id": 74, "mode":"fail"}')
wait_until 30 state_is "$jr4" failed
check_eq "a failing job's result is not sent (a fail carries none)" \
    "$(sql "SELECT state, result IS NULL FROM mosqlite_jobs WHERE id = $jr4")" "failed|1"
jp=$(enq rp1 rep '{"build_id": 75, "mode":"progress"}' '"lease_ms":1500')
wait_until 60 state_is "$jp" done
check_eq "progress written twice while the command runs: each reached the job row (the command saw it), the last kept" \
    "$(sql "SELECT state, progress FROM mosqlite_jobs WHERE id = $jp")" 'done|{"step":2,"of":2}'
check_eq "an invalid progress is said once, however many beats see it" \
    "$(grep -c "job $jp attempt 1: its progress is not sent: the progress is not JSON: invalid JSON at byte 10, expected ',' or '}', found the end" "$T/w-rep.log")" 1
jl=$(enq rl1 rep '{"build_id": 76, "mode":"last"}')
wait_until 30 state_is "$jl" done
check_eq "a progress written just before the command ends is sent before the done" \
    "$(sql "SELECT progress FROM mosqlite_jobs WHERE id = $jl")" '{"step":"last"}'

# ---- kill -9 of an agent: the job runs again on another, its command is gone ----------------
KILLCMD="echo \$\$ >$T/kill.\$MOSQLITE_JOB_ATTEMPT.pid; [ \$MOSQLITE_JOB_ATTEMPT = 1 ] && exec sleep 600; exit 0"
work w-k1 killq -- sh -c "$KILLCMD"
K1=$AGENT
jk=$(enq k1 killq '{"build_id": 21}' '"lease_ms":3600000')
wait_until 30 test -s "$T/kill.1.pid"
work w-k2 killq -- sh -c "$KILLCMD"
t0=$(date +%s%N)
kill -9 "$K1"
wait_until 30 state_is "$jk" done
t1=$(date +%s%N)
note "kill -9 to done on the second agent: $(( (t1 - t0) / 1000000 )) ms (the lease is 3600 s)"
check_eq "the job ran again on the second agent and is done" \
    "$(sql "SELECT group_concat(attempt || ':' || worker || ':' || outcome, ',') FROM (SELECT * FROM mosqlite_job_attempts WHERE job = $jk ORDER BY attempt)")" \
    "1:w-k1:lost,2:w-k2:done"
wait_until 10 gone "$(cat "$T/kill.1.pid")"
check "the killed agent's command is gone with it" gone "$(cat "$T/kill.1.pid")"

# ---- SIGTERM: the job in hand finishes, no other is taken -------------------------------------
work w-term termq -- sh -c "touch $T/term.\$MOSQLITE_JOB_ID; sleep 2; echo finished"
TA=$AGENT
jt=$(enq t1 termq '{"build_id": 31}')
wait_until 30 test -e "$T/term.$jt"
kill -TERM "$TA"
jt2=$(enq t2 termq '{"build_id": 32}')
wait_agent "$TA"; rc=$?
check_eq "SIGTERM: the agent exits 0 once its job is done" "$rc" 0
check_eq "the job in hand finished: done, its last line stored" \
    "$(state "$jt"),$(sql "SELECT line FROM build_logs WHERE build_id = 31 ORDER BY id DESC LIMIT 1")" "done,finished"
check_eq "the job enqueued after SIGTERM was not taken" "$(sql "SELECT state, attempt FROM mosqlite_jobs WHERE id = $jt2")" "ready|0"
# A second SIGTERM releases the job in hand: back to ready, no failure counted.
work w-term2 termq.r -- sh -c "echo \$\$ >$T/rel.pid; exec sleep 600"
TA=$AGENT
jr=$(enq r1 termq.r '{"build_id": 33}')
wait_until 30 test -s "$T/rel.pid"
kill -TERM "$TA"; sleep 0.5; kill -TERM "$TA"
wait_agent "$TA"; rc=$?
check_eq "a second SIGTERM: the job is released (ready again, no failure), the agent exits 0" \
    "$(sql "SELECT state, failures FROM mosqlite_jobs WHERE id = $jr"),$rc" "ready|0,0"
check "its command was stopped" gone "$(cat "$T/rel.pid")"

# ---- cancel of a running job --------------------------------------------------------------
# The command ignores SIGTERM (and so does its sleep): only the SIGKILL after --grace stops it.
work w-cancel --grace 1 cancelq -- sh -c "trap '' TERM; echo \$\$ >$T/cancel.pid; sleep 600 & echo \$! >$T/cancel.child; wait; wait"
jc=$(enq x1 cancelq '{"build_id": 41}')
wait_until 30 test -s "$T/cancel.child"
check_eq "the job runs" "$(state "$jc")" "running"
pub admin "{\"cmd\":\"job_cancel\",\"job\":$jc,\"reply_to\":\"$REPLY/cx\"}" -q 1
wait_until 30 state_is "$jc" cancelled
check_eq "cancel: the job ends cancelled" "$(state "$jc")" "cancelled"
check "its command is gone" gone "$(cat "$T/cancel.pid")"
wait_until 10 gone "$(cat "$T/cancel.child")"
check "and what it started (its process group)" gone "$(cat "$T/cancel.child")"
check_eq "the build row says cancelled" "$(sql "SELECT status FROM builds WHERE id = 41")" "cancelled"

# ---- timeout_ms: the command is stopped, the job fails with error timeout ---------------------
work w-timeout --grace 1 timeq -- sh -c "echo \$\$ >$T/timeout.pid; exec sleep 600"
jto=$(enq to1 timeq '{"build_id": 51}' '"timeout_ms":1000')
wait_until 30 state_is "$jto" failed
check_eq "a run past timeout_ms: failed, error timeout" "$(sql "SELECT state, error FROM mosqlite_jobs WHERE id = $jto")" "failed|timeout"
wait_until 10 gone "$(cat "$T/timeout.pid")"
check "its command was stopped" gone "$(cat "$T/timeout.pid")"

# ---- what anyone may publish on an agent's topic changes nothing it does -----------------------
work w-junk junkq -- sh -c 'echo ran'
JA=$AGENT
for m in 'not json' '[1,2]' '{"op":"job"}' '{"op":"job","claim":"nobody","job":1e999,"attempt":-1}' \
         '{"op":"job","claim":"nobody.1","job":999999,"attempt":1,"payload":{},"lease_ms":0}' \
         '{"op":"cancel","job":1e999,"attempt":1}' '{"op":"lease_lost"}' '{"id":"x","status":"rejected"}' \
         '{"op":"empty","claim":null}'; do
    pub jobs/to/w-junk "$m"
done
jj=$(enq jk1 junkq '{"build_id": 61}')
wait_until 30 state_is "$jj" done
check_eq "after junk on its topic the agent runs the next job" "$(state "$jj")" "done"
check "and is still running" kill -0 "$JA"

# ---- a writer restart: waiting claims are in its memory; the agent claims again at once -----
sleep 1                                 # the agent's claim waits in the writer
writer_stop
writer_start
jw=$(enq wr1 junkq '{"build_id": 62}')
wait_until 20 state_is "$jw" done
check_eq "after a writer restart the idle agent claims again when the status says online (not after --claim-wait 30 s)" "$(state "$jw")" "done"

# ---- bad arguments --------------------------------------------------------------------------
"$BIN/mosqlite-work" -p "$MQTT_PORT" a,b -- true 2>"$T/bad1.err"; rc=$?
check_eq "queues of no common family: exit 3" "$rc" 3
check "and why" grep -qF "queues a and b are of no common family: one claim names queues of one family (Q and Q.*, e.g. build.arm64,build.any)" "$T/bad1.err"
"$BIN/mosqlite-work" -p "$MQTT_PORT" q 2>"$T/bad2.err"; rc=$?
check_eq "no command: exit 3" "$rc,$(grep -c "no command: mosqlite-work QUEUE" "$T/bad2.err")" "3,1"
"$BIN/mosqlite-work" -p 1 -w x q -- true 2>"$T/bad3.err"; rc=$?
check "no broker: exit 4" [ "$rc" = 4 ]
touch "$T/not-a-dir"
timeout -k 2 20 "$BIN/mosqlite-work" -p "$MQTT_PORT" --spool "$T/not-a-dir" q -- true 2>"$T/bad4.err"; rc=$?
check_eq "--spool naming a file: exit 3, and why" "$rc,$(grep -c "spool $T/not-a-dir: not a directory" "$T/bad4.err")" "3,1"
timeout -k 2 20 "$BIN/mosqlite-work" -p "$MQTT_PORT" --spool "$T/no/such" q -- true 2>"$T/bad5.err"; rc=$?
check_eq "--spool whose parent is missing: exit 3, and why" "$rc,$(grep -c "spool $T/no/such: cannot make it" "$T/bad5.err")" "3,1"
"$BIN/mosqlite-work" -p 1 -w x --spool "$T/made" q -- true 2>/dev/null
check "--spool DIR missing is made (mode 700) before the agent connects" test "$(stat -c %a "$T/made" 2>/dev/null)" = 700
timeout 60 "$BIN/mosqlite-work" -p "$MQTT_PORT" -w w-denied forbidden -- true 2>"$T/denied.err"; rc=$?
check_eq "a claim the broker's ACL refuses: exit 1" "$rc" 1
check "and why" grep -q "refused by the broker's ACL: this login may not publish on $PREFIX_TOPIC/jobs/forbidden" "$T/denied.err"

# ---- the shell worker of docs/jobs.md --------------------------------------------------------
sed -n '/^<!-- shell-worker -->$/,/^```$/p' "$ROOT/docs/jobs.md" | sed '1,2d;$d' >"$T/shell-worker.sh"
check "docs/jobs.md has the shell worker" [ -s "$T/shell-worker.sh" ]
cat >"$T/run-job" <<EOF
#!/bin/sh
# The job: its payload on stdin, a line on stdout; exit 0 or the payload's "code".
p=\$(cat)
echo "ran \$JOB attempt \$ATTEMPT: \$p" >>$T/shell.out
exit \$(printf %s "\$p" | sed -n 's/.*"code":\([0-9]*\).*/\1/p')
EOF
chmod +x "$T/run-job"
MOSQLITE_PORT=$MQTT_PORT WORKER=sh-1 QUEUE=shq RUN_JOB=$T/run-job bash "$T/shell-worker.sh" >"$T/shell.log" 2>&1 &
SHW=$!
PIDS="$PIDS $SHW"
js0=$(enq s0 shq '{"code":0}')
js4=$(enq s4 shq '{"code":4}')
wait_until 60 state_is "$js4" failed
wait_until 30 state_is "$js0" done
check_eq "shell worker: exit 0 is done, exit 4 is failed with its code" \
    "$(state "$js0"),$(sql "SELECT state, exit_code FROM mosqlite_jobs WHERE id = $js4")" "done,failed|4"
check_eq "it ran each job once, with its payload" "$(sort "$T/shell.out")" \
"ran $js0 attempt 1: {\"code\":0}
ran $js4 attempt 1: {\"code\":4}"
check_eq "the attempts name the shell worker" "$(sql "SELECT group_concat(DISTINCT worker) FROM mosqlite_job_attempts WHERE job IN ($js0, $js4)")" "sh-1"
# The worker's own clients (its mosquitto_sub) first: killing the shell alone would leave
# them reconnecting to a broker that is gone.
pkill -P "$SHW" 2>/dev/null
kill "$SHW" 2>/dev/null

exit "$NFAIL"
