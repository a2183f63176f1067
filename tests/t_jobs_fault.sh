#!/bin/bash
# Jobs under faults, counted: a real broker, a real writer, real mosqlite-work agents
# and shell workers (stock mosquitto_sub/mosquitto_pub) over a thousand jobs (SOAK=1:
# thousands), while the test kills workers with -9 (many times), stops workers with
# SIGSTOP past their lease then lets them go on (their stale outcome must be refused),
# kills the writer with -9 (and restarts it), kills the broker with -9 right after it
# saved its persistence (and restarts it on the same port), runs a poison job that kills
# every worker that takes it, cancels running jobs, replaces running jobs of a unique
# key, limits a concurrency key to 2, and has a cron line whose missed ticks (set back
# 20 minutes) are enqueued across a writer kill.
#
# Every execution of a job appends "job attempt worker queue" to $RUNS. The shell
# workers' done carries an insert of the job's token into fault_results (token UNIQUE),
# applied by the writer only under the live lease; mosqlite-work's done carries no ops,
# so for its jobs a result is the attempt the writer recorded `done`. At the end:
#   lost 0           every enqueued token has exactly one job, final as expected (done;
#                    cancelled for the cancels and the replaced; dead for the poison)
#   recorded twice 0 no job with two done attempts or a done that is not its last
#                    attempt; no token twice in fault_results (a UNIQUE rejection), none
#                    recorded under an attempt that is not the job's done one
#   ran twice <= B   extra executions at most the slots of the workers killed or stopped
#   granted twice 0  no (job, attempt) run by two workers
#   per key <= 2     sampled from the file all along, ready+running of the key
#   one live job per unique key, sampled; one job per cron tick, every tick there.
# The leases are a day long (but those of the jobs a stopped worker holds: 2 and 5 s), so
# a killed worker's job comes back by its Last Will only, and a worker is never killed
# while it is away from the broker (it would have none). No timing thresholds: every
# wait is for a condition, with a generous deadline.
. "$(dirname "$0")/lib.sh"

N=1000 NKEY=40 NSH=120 KILLS=24 CANCELS=6 REPLACES=4 POISON=1 AGENTS=4 SHELLS=2
if [ -n "${SOAK:-}" ]; then
    N=5000 NKEY=200 NSH=600 KILLS=120 CANCELS=20 REPLACES=12 POISON=3 AGENTS=6 SHELLS=3
fi
RUNS=$T/runs
SAMPLES=$T/samples
CONF=$T/writer.conf
LIVE="('scheduled','ready','blocked','running','retry')"
: >"$RUNS"

test_schema
cat >"$SCHEMA/950_fault_results.sql" <<'EOF'
-- The result of each shell-worker job, written by its done under the live lease.
CREATE TABLE fault_results (token INTEGER NOT NULL UNIQUE, job INTEGER NOT NULL,
                            attempt INTEGER NOT NULL, worker TEXT NOT NULL);
EOF
echo 'job-cron fjcron * * * * * fj.cron {"cron": true} catch_up=all max_lost=100 lease_ms=86400000' >"$CONF"
broker_start
receipts_bg

# ---- the workers ----------------------------------------------------------------------------
# Each agent (mosqlite-work) runs this for its jobs: a line in $RUNS, then the job's kind
# by its queue. The poison kills its agent (its parent) every time.
cat >"$T/job.sh" <<EOF
echo "\$MOSQLITE_JOB_ID \$MOSQLITE_JOB_ATTEMPT \$MOSQLITE_JOB_WORKER \$MOSQLITE_JOB_QUEUE" >>$RUNS
echo "job \$MOSQLITE_JOB_ID attempt \$MOSQLITE_JOB_ATTEMPT"
case \$MOSQLITE_JOB_QUEUE in
    fj.poison) kill -9 \$PPID; exec sleep 60 ;;
    fj.slow) exec sleep 3 ;;
    fj.short) exec sleep 1 ;;
    fj.key) exec sleep 0.2 ;;
    *) exec sleep 0.05 ;;
esac
EOF
# A shell worker: one job at a time, the Last Will on its mosquitto_sub, beats while the
# job runs; its done carries the token's insert and is sent again until answered (a
# rejection, such as lease lost, is an answer). A claim not answered is sent again with
# the same id (a writer restart, a broker restart: the same grant comes back).
cat >"$T/shw.sh" <<'EOF'
W=$1 Q=$2 P=$3 RUNS=$4 BLOG=$5 BUSY=$6
PREFIX=mosqlite TO=mosqlite/jobs/to/$W
S=$W.$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
D=$(mktemp -d) && mkfifo "$D/in" && exec 3<>"$D/in"
mosquitto_sub -p "$P" -V 5 -i "$W" -q 1 -t "$TO" --will-topic "$PREFIX/jobs/worker" \
    --will-qos 2 --will-payload "{\"op\":\"gone\",\"worker\":\"$W\",\"session\":\"$S\"}" >&3 &
SUB=$!
trap 'kill $SUB 2>/dev/null; rm -rf "$D"' EXIT
trap 'exit 0' TERM
send() { mosquitto_pub -p "$P" -q "$1" -t "$2" -m "$3"; }
until grep -q "^[^ ]* $W 1 $TO\$" "$BLOG"; do sleep 0.1; done
n=0
while :; do
    n=$((n + 1)); C=$S.$n
    CLAIM="{\"op\":\"claim\",\"id\":\"$C\",\"worker\":\"$W\",\"session\":\"$S\",\"reply_to\":\"$TO\",\"wait_ms\":5000}"
    send 1 "$PREFIX/jobs/$Q" "$CLAIM"
    G=
    until [ -n "$G" ]; do
        if ! read -r -t 8 M <&3; then send 1 "$PREFIX/jobs/$Q" "$CLAIM"; continue; fi
        case $M in *"\"claim\":\"$C\""* | *"\"id\":\"$C\""*) G=$M ;; esac
    done
    case $G in '{"op":"job",'*) ;; *) continue ;; esac
    set -- $(sed -n 's/^{"op":"job","claim":"[^"]*","job":\([0-9]*\),"attempt":\([0-9]*\),"queue":"[^"]*","payload":{"build_id":\([0-9]*\)},"lease_ms":\([0-9]*\),.*/\1 \2 \3 \4/p' <<<"$G")
    JOB=$1 A=$2 TOKEN=$3 LEASE=$4
    ( while sleep $((LEASE / 3000)); do
        send 1 "$PREFIX/jobs/worker" "{\"op\":\"beat\",\"worker\":\"$W\",\"session\":\"$S\",\"reply_to\":\"$TO\",\"jobs\":[{\"job\":$JOB,\"attempt\":$A}]}"
      done ) &
    BEAT=$!
    echo "$JOB $A" >"$BUSY"
    echo "$JOB $A $W $Q" >>"$RUNS"                  # the job itself
    if [ "$TOKEN" -gt 650000 ]; then sleep 1; else sleep 0.05; fi
    OUT="{\"op\":\"done\",\"id\":\"$JOB.$A.done\",\"job\":$JOB,\"attempt\":$A,\"exit_code\":0,\"reply_to\":\"$TO\",\"ops\":[{\"table\":\"fault_results\",\"values\":{\"token\":$TOKEN,\"job\":$JOB,\"attempt\":$A,\"worker\":\"$W\"}}]}"
    send 2 "$PREFIX/jobs/$Q" "$OUT"
    until read -r -t 10 M <&3 && [[ $M == *"\"id\":\"$JOB.$A.done\""* ]]; do
        [ -z "$M" ] && send 2 "$PREFIX/jobs/$Q" "$OUT"; M=
    done
    rm -f "$BUSY"
    kill $BEAT
done
EOF

# Worker slots: agents a1..aN (a1 with --jobs 2) and shell workers s1..sN, each restarted
# under a new name when it dies. WPID[slot], WNAME[slot], WSLOTS[slot].
declare -A WPID WNAME WSLOTS WGEN
# A shell worker's clients go with it (lib.sh's cleanup kills the pids it knows).
fault_cleanup() {
    local s
    for s in "${!WPID[@]}"; do case $s in s*) kill -9 -- "-${WPID[$s]}" 2>/dev/null ;; esac; done
    cleanup
}
trap fault_cleanup EXIT
DEATHS=0 BUDGET=0 TEST_KILLS=0
start_worker() { # SLOT
    local s=$1 g=$(( ${WGEN[$1]:-0} + 1 )) j
    WGEN[$s]=$g WNAME[$s]=$s-$g
    rm -f "$T/busy.$s"
    case $s in
        a*) j=1; [ "$s" = a1 ] && j=2
            WSLOTS[$s]=$j
            mkdir -p "$T/spool/${WNAME[$s]}"
            "$BIN/mosqlite-work" -p "$MQTT_PORT" -w "${WNAME[$s]}" --jobs "$j" --grace 1 --claim-wait 10 \
                --spool "$T/spool/${WNAME[$s]}" fj.slow,fj.short,fj.poison,fj.key,fj.cron,fj.main \
                -- sh "$T/job.sh" >>"$T/agent-${WNAME[$s]}.log" 2>&1 &
            WPID[$s]=$! ;;
        s*) WSLOTS[$s]=1
            setsid bash "$T/shw.sh" "${WNAME[$s]}" fjs "$MQTT_PORT" "$RUNS" "$T/broker/mosquitto.log" \
                "$T/busy.$s" >>"$T/shell-${WNAME[$s]}.log" 2>&1 &
            WPID[$s]=$! ;;
    esac
    PIDS="$PIDS ${WPID[$s]}"
    disown "${WPID[$s]}"                # no "Killed" notices: supervise sees it go
}
# alive PID: running or stopped, not a zombie (no process spawned: this runs often).
alive() { local st; [ -r "/proc/$1/stat" ] && read -r st <"/proc/$1/stat" && st=${st##*) } && [ "${st%% *}" != Z ]; }
# supervise: restart every dead worker; count its death and the slots it held.
supervise() {
    local s
    for s in "${!WPID[@]}"; do
        if ! alive "${WPID[$s]}"; then
            [ "${s#s}" != "$s" ] && kill -9 -- "-${WPID[$s]}" 2>/dev/null   # its clients too
            DEATHS=$((DEATHS + 1)) BUDGET=$((BUDGET + ${WSLOTS[$s]}))
            start_worker "$s"
        fi
    done
}
kill_worker() { # SLOT: kill -9 (a shell worker: its process group)
    case $1 in a*) kill -9 "${WPID[$1]}" ;; s*) kill -9 -- "-${WPID[$1]}" ;; esac 2>/dev/null
    TEST_KILLS=$((TEST_KILLS + 1))
}
# sup_until SECONDS CMD...: wait_until that keeps the workers alive meanwhile.
sup_until() {
    _lim=$(( $(date +%s) + $1 )); shift
    until "$@" 2>/dev/null; do
        [ "$(date +%s)" -ge "$_lim" ] && return 1
        supervise
        sleep 0.1
    done
}
slot_of() { local s; for s in "${!WNAME[@]}"; do [ "${WNAME[$s]}" = "$1" ] && echo "$s"; done; }

# ---- helpers ---------------------------------------------------------------------------------
q1() { sql "$1"; }
# enq ID QUEUE TOKEN [MORE-FIELDS]: enqueue through mosquitto_pub; prints the job id.
# max_lost is 100 unless the fields say.
enq() {
    local ml=',"max_lost":100'
    case ${4:-} in *max_lost*) ml= ;; esac
    pub write "{\"id\":\"$1\",\"reply_to\":\"$REPLY/$1\",\"op\":\"enqueue\",\"queue\":\"$2\",\"payload\":{\"build_id\":$3}$ml${4:+,$4}}"
    wait_until 60 grep -q "\"id\":\"$1\"" "$RECEIPTS" || { echo "not ok - no receipt for enqueue $1" >&2; return 1; }
    grep "\"id\":\"$1\"" "$RECEIPTS" | head -1 | sed -n 's/.*"jobs":\[{"job":\([0-9]*\).*/\1/p'
}
state() { q1 "SELECT state FROM mosqlite_jobs WHERE id = $1"; }
state_in() { case " $2 " in *" $(state "$1") "*) return 0 ;; esac; return 1; }
done_main() { q1 "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'fj.main' AND state = 'done'"; }
no_live() { [ "$(q1 "SELECT count(*) FROM mosqlite_jobs WHERE state IN $LIVE")" = 0 ]; }
mtime() { stat -c %y "$T/broker/mosquitto.db" 2>/dev/null; }
# Leases of workers that are dead: their Last Will not yet applied.
dead_leases() {
    local s names
    names=$(for s in "${!WNAME[@]}"; do printf "'%s'," "${WNAME[$s]}"; done)
    q1 "SELECT count(*) FROM mosqlite_jobs WHERE state = 'running' AND worker NOT IN (${names%,})"
}
no_dead_leases() { [ "$(dead_leases)" = 0 ]; }
writer_kill_restart() {
    writer_kill
    writer_start -c "$CONF" || { fail "writer back after kill -9"; return 1; }
}

# ---- the writer, its cron line's ticks set back, then killed -9 right away --------------------
writer_start -c "$CONF" || exit 1
wait_until 10 sh -c "[ \$(sqlite3 '$DB' 'SELECT count(*) FROM mosqlite_job_cron') = 1 ]"
writer_stop
T0=$(( ($(date +%s) / 60 - 20) * 60 * 1000 ))
sql "UPDATE mosqlite_job_cron SET next_tick_ms = $T0"
cron_jobs() { q1 "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'fj.cron'"; }
# Killed once as it comes up, after 0 to 150 ms (before or after the missed ticks'
# commit, a few ms after it opens the file), once right after it is online (after it):
# each tick must end with one job all the same.
"$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "$SCHEMA" -c "$CONF" >>"$WRITER_LOG" 2>&1 &
WRITER_PID=$!
PIDS="$PIDS $WRITER_PID"
sleep "0.$(printf %03d $((RANDOM % 150)))"
writer_kill
c1=$(cron_jobs)
writer_start -c "$CONF" || exit 1
writer_kill
note "the cron line's missed ticks (20 minutes of them): the writer killed -9 as it came up ($c1 of their jobs in the file)," \
     "then right after it was online ($(cron_jobs))"
writer_start -c "$CONF" || exit 1
WKILLED=2

# ---- the sampler: per-key and per-unique-key counts, from the file, all along ----------------
(
    while :; do
        sqlite3 -cmd '.timeout 5000' "$DB" "SELECT
            (SELECT count(*) FROM mosqlite_jobs WHERE conc_key = 'ck' AND state IN ('ready','running')),
            (SELECT count(*) FROM mosqlite_jobs WHERE conc_key = 'ck' AND state = 'running'),
            (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM mosqlite_jobs WHERE unique_key IS NOT NULL
                AND state IN $LIVE AND cancel_req = 0 GROUP BY queue, unique_key))" >>"$SAMPLES" 2>/dev/null
        sleep 0.05
    done
) &
SAMPLER=$!
PIDS="$PIDS $SAMPLER"

# ---- the enqueuers: main jobs paced, key and shell jobs at once (mosqlite-pub --wait) ----------
mkdir -p "$T/spool"
feed() { # QUEUE FIRST-TOKEN COUNT PACE-MS [FIELDS]
    awk -v q="$1" -v f="$2" -v n="$3" -v d="$4" -v x="${5:+,$5}" 'BEGIN { for (i = 0; i < n; i++) {
        printf "{\"id\":\"e-%d\",\"op\":\"enqueue\",\"queue\":\"%s\",\"payload\":{\"build_id\":%d},\"max_lost\":100%s}\n", f + i, q, f + i, x
        if (d > 0 && i % 50 == 49) { fflush(); system("sleep " d / 1000) } } }'
}
feed2() {
    feed fj.key 200001 "$NKEY" 0 '"lease_ms":86400000,"concurrency_key":"ck","concurrency":2'
    feed fjs 600001 "$NSH" 0 '"lease_ms":5000'
}
# enqueuer NAME FEED...: mosqlite-pub --wait over what FEED prints, in the background; its
# exit status in $T/NAME.rc (not by `wait`: the test starts and reaps many processes).
enqueuer() {
    local n=$1; shift
    ( "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --timeout 600 - < <("$@") >"$T/$n.out" 2>"$T/$n.err" &
      echo $! >"$T/$n.pid"; wait $!; echo $? >"$T/$n.rc" ) &
    PIDS="$PIDS $!"
    wait_until 10 test -s "$T/$n.pid" && PIDS="$PIDS $(cat "$T/$n.pid")"
}
enqueuer pub1 feed fj.main 100001 "$N" 400 '"lease_ms":86400000'
enqueuer pub2 feed2

for i in $(seq 1 "$AGENTS"); do start_worker "a$i"; done
for i in $(seq 1 "$SHELLS"); do start_worker "s$i"; done

# ---- the faults, by the main jobs' progress ----------------------------------------------------
POISONS= CANCELLED= REPL_OLD= REPL_NEW= SHORTS= NSHORT=0 NSHS=0 STALE_SEEN=0 BKILLED=0 STOPS_DONE=0 STOPS_AGENT=0 STOPS_SHELL=0
phase_poison() {
    for k in $(seq 1 "$POISON"); do
        j=$(enq "poison-$k" fj.poison $((700000 + k)) '"max_lost":3,"lease_ms":86400000') || return
        POISONS="$POISONS $j"
        sup_until 120 state_in "$j" "dead" || fail "poison job $j dead within 120 s (it is $(state "$j"))"
    done
    note "poison: $(q1 "SELECT group_concat(id || ':' || state || ':lost ' || lost, ' ') FROM mosqlite_jobs WHERE queue = 'fj.poison'")"
}
phase_replace() {
    for r in $(seq 1 "$REPLACES"); do
        o=$(enq "u-$r-old" fj.slow $((300000 + 2 * r)) "\"lease_ms\":86400000,\"unique_key\":\"u$r\",\"on_duplicate\":\"replace\"") || return
        sup_until 60 state_in "$o" "running" || fail "job $o (unique key u$r) running"
        nj=$(enq "u-$r-new" fj.slow $((300001 + 2 * r)) "\"lease_ms\":86400000,\"unique_key\":\"u$r\",\"on_duplicate\":\"replace\"") || return
        grep -q "\"id\":\"u-$r-new\".*\"replaced\":$o" "$RECEIPTS" || fail "the replace's receipt names job $o"
        REPL_OLD="$REPL_OLD $o" REPL_NEW="$REPL_NEW $nj"
    done
}
phase_cancel() {
    js=
    for c in $(seq 1 "$CANCELS"); do js="$js $(enq "c-$c" fj.slow $((400000 + c)) '"lease_ms":86400000')"; done
    CANCELLED=$js
    running() { [ "$(q1 "SELECT count(*) FROM mosqlite_jobs WHERE state = 'running' AND id IN ($(echo $js | tr ' ' ,))")" -ge 2 ]; }
    sup_until 60 running || fail "two of the jobs to cancel running"
    note "cancel: $(q1 "SELECT count(*) FROM mosqlite_jobs WHERE state = 'running' AND id IN ($(echo $js | tr ' ' ,))") of $CANCELS running"
    for j in $js; do
        r=$(req write "x-$j" "\"op\":\"cancel_job\",\"job\":$j")
        case $r in *'"status":"applied"'*) ;; *) fail "cancel_job $j: $r" ;; esac
    done
}
# stopped_out JOB ATTEMPT: the attempt lost (its lease expired under the stopped worker), or
# the job done by that attempt (its done went out just before the stop: try again).
stopped_out() {
    o=$(q1 "SELECT outcome FROM mosqlite_job_attempts WHERE job = $1 AND attempt = $2")
    [ "$o" = lost ] || [ "$o" = done ]
}
attempt_lost() { [ "$(q1 "SELECT outcome FROM mosqlite_job_attempts WHERE job = $1 AND attempt = $2")" = lost ]; }
phase_stop() {
    # An agent holding a short-lease job, stopped (SIGSTOP) past its lease, then SIGCONT.
    for try in 1 2 3 4 5; do
        NSHORT=$((NSHORT + 1))
        j=$(enq "short-$NSHORT" fj.short $((500000 + NSHORT)) '"lease_ms":2000') || return
        SHORTS="$SHORTS $j"
        sup_until 60 state_in "$j" running || { fail "short job $j running"; return; }
        w=$(q1 "SELECT worker FROM mosqlite_jobs WHERE id = $j") a=$(q1 "SELECT attempt FROM mosqlite_jobs WHERE id = $j")
        s=$(slot_of "$w")
        [ -n "$s" ] && kill -STOP "${WPID[$s]}" 2>/dev/null || continue
        sup_until 60 stopped_out "$j" "$a" || fail "the stopped agent's lease of job $j expired"
        kill -CONT "${WPID[$s]}"
        BUDGET=$((BUDGET + ${WSLOTS[$s]})) STOPS_AGENT=$((STOPS_AGENT + 1))
        attempt_lost "$j" "$a" || continue
        note "agent $w stopped past the lease of job $j attempt $a: $(q1 "SELECT error FROM mosqlite_job_attempts WHERE job = $j AND attempt = $a")"
        break
    done
    # A shell worker stopped with its whole process group while it holds a job (one of
    # 1 s, the others take 50 ms): on SIGCONT it finishes the run and sends its done,
    # which the writer must refuse.
    for try in 1 2 3 4 5; do
        NSHS=$((NSHS + 1))
        j=$(enq "shs-$NSHS" fjs $((650000 + NSHS)) '"lease_ms":5000') || return
        holder() { grep -l "^$j " "$T"/busy.* 2>/dev/null | head -1 | grep -q .; }
        sup_until 60 holder || { fail "a shell worker holds job $j"; return; }
        f=$(grep -l "^$j " "$T"/busy.* 2>/dev/null | head -1) s=${f##*/busy.}
        kill -STOP -- "-${WPID[$s]}" 2>/dev/null
        if ! read -r jj a <"$f" 2>/dev/null || [ "$jj" != "$j" ]; then
            kill -CONT -- "-${WPID[$s]}"; continue
        fi
        sup_until 60 stopped_out "$j" "$a" || fail "the stopped shell worker's lease of job $j expired"
        kill -CONT -- "-${WPID[$s]}"
        BUDGET=$((BUDGET + 1)) STOPS_SHELL=$((STOPS_SHELL + 1))
        attempt_lost "$j" "$a" || continue
        stale() { [ "$(q1 "SELECT count(*) FROM mosqlite_rejected WHERE req_id = '$j.$a.done' AND error LIKE 'lease lost: job $j attempt $a is no longer yours%'")" -ge 1 ]; }
        if sup_until 60 stale; then STALE_SEEN=$((STALE_SEEN + 1))
        else fail "the stopped shell worker's done of job $j attempt $a refused (lease lost)"; fi
        break
    done
}
phase_broker() {
    # No lease of a dead worker waiting for its Last Will, no short lease, no worker stopped:
    # then the broker saves its persistence (SIGUSR1, its autosave) and is killed -9 at once.
    sup_until 120 no_dead_leases || fail "dead workers' leases ended before the broker kill"
    m0=$(mtime)
    kill -USR1 "$BROKER_PID"
    wait_until 30 sh -c "[ \"\$(stat -c %y '$T/broker/mosquitto.db' 2>/dev/null)\" != '$m0' ]" ||
        fail "the broker saved its persistence"
    broker_kill
    BKILLED=$((BKILLED + 1))
    L=$(( $(wc -l <"$T/broker/mosquitto.log") + 1 ))
    broker_start
    sup_until 60 status_is online || fail "writer online after broker kill $BKILLED"
    # Every worker connected again before the next kill: one killed while away from the
    # broker has no Last Will sent, and only its lease (a day) would give its job back.
    back() {
        local s
        for s in "${!WNAME[@]}"; do
            tail -n +"$L" "$T/broker/mosquitto.log" | grep -q " as ${WNAME[$s]} " || return 1
        done
    }
    sup_until 120 back || fail "every worker connected again after broker kill $BKILLED"
}

phase_tick() {
    # A real tick passes while the writer is stopped (SIGSTOP), then it is killed -9 and
    # restarted: that tick gets one job (up to a minute's wait: SOAK=1 only).
    kill -STOP "$WRITER_PID"
    B=$(( ($(date +%s) / 60 + 1) * 60 ))
    past() { [ "$(date +%s)" -ge $((B + 1)) ]; }
    sup_until 70 past
    writer_kill_restart; WKILLED=$((WKILLED + 1))
    tick_job() { [ "$(q1 "SELECT count(*) FROM mosqlite_jobs WHERE enq_id = 'cron:fjcron@$(date -u -d "@$B" +%Y-%m-%dT%H:%M:%S.000Z)'")" = 1 ]; }
    sup_until 30 tick_job || fail "the tick passed while the writer was stopped has its job"
}

# The faults' places on the main jobs' progress (fractions of N, in percent).
declare -A AT
AT[5]=poison AT[15]=writer AT[25]=replace AT[35]=cancel AT[45]=stop AT[60]=broker AT[75]=writer
if [ -n "${SOAK:-}" ]; then
    AT[30]=writer AT[40]=broker AT[50]=stop AT[55]=tick AT[65]=stop AT[80]=broker AT[85]=writer AT[90]=writer
fi
# The main loop ends when the main jobs are done, or fails when they make no progress for
# three minutes (phases and faults aside).
STALL=180
dprev=-1
nextkill=1
while :; do
    supervise
    d=$(done_main)
    if [ "$d" != "$dprev" ]; then dprev=$d DEADLINE=$(( $(date +%s) + STALL )); fi
    pct=$(( d * 100 / N ))
    for p in $(printf '%s\n' "${!AT[@]}" | sort -n); do
        [ "$pct" -ge "$p" ] || break
        what=${AT[$p]}; unset "AT[$p]"
        note "at $d main jobs done ($p%): $what"
        case $what in
            poison) phase_poison ;;
            writer) writer_kill_restart; WKILLED=$((WKILLED + 1)) ;;
            replace) phase_replace ;;
            cancel) phase_cancel ;;
            stop) phase_stop; STOPS_DONE=$((STOPS_DONE + 1)) ;;
            broker) phase_broker ;;
            tick) phase_tick ;;
        esac
    done
    # kill -9 of a worker at each 1/(KILLS+1) of the main jobs (one in 4 a shell worker)
    if [ "$nextkill" -le "$KILLS" ] && [ "$d" -ge $(( N * nextkill / (KILLS + 1) )) ]; then
        if [ $((nextkill % 4)) = 0 ]; then s=s$(( RANDOM % SHELLS + 1 )); else s=a$(( RANDOM % AGENTS + 1 )); fi
        kill_worker "$s"
        nextkill=$((nextkill + 1))
    fi
    [ "$d" -ge "$N" ] && [ ${#AT[@]} = 0 ] && [ "$nextkill" -gt "$KILLS" ] && break
    [ "$(date +%s)" -ge "$DEADLINE" ] && { fail "main jobs make progress ($d of $N done, none more in $STALL s)"; break; }
    sleep 0.1
done
sup_until 660 test -s "$T/pub1.rc" -a -s "$T/pub2.rc"
check_eq "the enqueuers (mosqlite-pub --wait) exit 0" "$(cat "$T/pub1.rc" "$T/pub2.rc" 2>/dev/null | paste -sd,)" "0,0"
sup_until 180 no_live || fail "every job final within 180 s ($(q1 "SELECT group_concat(id || ':' || queue || ':' || state) FROM mosqlite_jobs WHERE state IN $LIVE"))"
# Stop the writer with nothing live (a cron tick between the check and the stop: again).
only_cron_live() { [ "$(q1 "SELECT count(*) FROM mosqlite_jobs WHERE state IN $LIVE AND queue != 'fj.cron'")" = 0 ]; }
for k in 1 2 3; do
    writer_stop
    no_live || ! only_cron_live && break
    writer_start -c "$CONF" && sup_until 120 no_live
done
kill "$SAMPLER" 2>/dev/null
for s in "${!WPID[@]}"; do
    case $s in a*) kill -TERM "${WPID[$s]}" ;; s*) kill -TERM -- "-${WPID[$s]}"; kill -9 -- "-${WPID[$s]}" ;; esac 2>/dev/null
done

# ---- the counts ---------------------------------------------------------------------------------
tokens_of() { q1 "SELECT count(*) FROM mosqlite_jobs WHERE CAST(json_extract(payload, '\$.build_id') AS INTEGER) BETWEEN $1 AND $2 AND state = '$3'"; }
list() { echo "$*" | tr -s ' ' ',' | sed 's/^,//; s/,$//'; }
# Every enqueue applied once (one job per token), and each job where it should end.
ENQ=$((N + NKEY + NSH + NSHS + 2 * REPLACES + CANCELS + NSHORT + POISON))
jobs_tok=$(q1 "SELECT count(*), count(DISTINCT json_extract(payload, '\$.build_id')) FROM mosqlite_jobs WHERE queue != 'fj.cron'")
check_eq "every enqueue is one job (jobs, distinct tokens)" "$jobs_tok" "$ENQ|$ENQ"
lost_main=$(( N - $(tokens_of 100001 $((100000 + N)) done) ))
lost_key=$(( NKEY - $(tokens_of 200001 $((200000 + NKEY)) done) ))
lost_sh=$(( NSH + NSHS - $(tokens_of 600001 $((600000 + NSH)) done) - $(tokens_of 650001 699999 done) ))
lost_short=$(( NSHORT - $(tokens_of 500001 599999 done) ))
lost_poison=$(( POISON - $(q1 "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'fj.poison' AND state = 'dead' AND lost = 3") ))
lost_repl=$(( REPLACES - $(q1 "SELECT count(*) FROM mosqlite_jobs WHERE id IN ($(list $REPL_NEW)) AND state = 'done'") ))
lost_old=$(( REPLACES - $(q1 "SELECT count(*) FROM mosqlite_jobs WHERE id IN ($(list $REPL_OLD)) AND state = 'cancelled'") ))
lost_cancel=$(( CANCELS - $(q1 "SELECT count(*) FROM mosqlite_jobs WHERE id IN ($(list $CANCELLED)) AND state IN ('cancelled', 'done')") ))
lost_cron=$(q1 "SELECT count(*) FROM mosqlite_jobs WHERE queue = 'fj.cron' AND state != 'done'")
LOST=$((lost_main + lost_key + lost_sh + lost_short + lost_poison + lost_repl + lost_old + lost_cancel + lost_cron))
note "lost by kind: main $lost_main, key $lost_key, shell $lost_sh, short $lost_short, poison $lost_poison, replacing $lost_repl, replaced $lost_old, cancels $lost_cancel, cron $lost_cron"
note "cancels: $(q1 "SELECT group_concat(state || ' ' || n, ', ') FROM (SELECT state, count(*) n FROM mosqlite_jobs WHERE id IN ($(list $CANCELLED)) GROUP BY state)")"
check_eq "lost: every job final as expected" "$LOST" 0

# Recorded twice: two done attempts; a done that is not the job's last attempt; a token's
# second insert refused by UNIQUE; a result recorded under an attempt not the done one.
rec_attempts=$(q1 "SELECT count(*) FROM (SELECT job FROM mosqlite_job_attempts WHERE outcome = 'done' GROUP BY job HAVING count(*) > 1)")
rec_notlast=$(q1 "SELECT count(*) FROM mosqlite_job_attempts a JOIN mosqlite_jobs j ON j.id = a.job WHERE a.outcome = 'done' AND (a.attempt != j.attempt OR j.state != 'done')")
rec_unique=$(q1 "SELECT count(*) FROM mosqlite_rejected WHERE error LIKE '%UNIQUE constraint failed: fault_results%'")
rec_fence=$(q1 "SELECT count(*) FROM fault_results r LEFT JOIN mosqlite_job_attempts a ON a.job = r.job AND a.attempt = r.attempt WHERE a.outcome IS NOT 'done'")
rec_rows=$(q1 "SELECT count(*), count(DISTINCT token) FROM fault_results")
RECORDED=$((rec_attempts + rec_notlast + rec_unique + rec_fence))
note "recorded twice by kind: two done attempts $rec_attempts, done not the last attempt $rec_notlast, UNIQUE refusals $rec_unique, results of a lost lease $rec_fence; fault_results rows, tokens: $rec_rows"
check_eq "recorded twice" "$RECORDED" 0
check_eq "each shell job's result recorded once, by its done" "$rec_rows" "$((NSH + NSHS))|$((NSH + NSHS))"

# Ran twice: the executions beyond one per job, against the slots of the workers killed or
# stopped. Granted twice: one (job, attempt) run by two workers.
RAN2=$(sort "$RUNS" | awk '{ n[$1]++ } END { for (j in n) s += n[j] - 1; print s + 0 }')
GRANT2=$(awk '{ print $1, $2 }' "$RUNS" | sort | uniq -d | wc -l)
check "ran twice ($RAN2) <= the slots of the workers killed or stopped ($BUDGET)" [ "$RAN2" -le "$BUDGET" ]
check_eq "granted twice: no (job, attempt) run by two workers" "$GRANT2" 0
check_eq "every run was under a grant the writer recorded" \
    "$(awk '{ print $1, $2 }' "$RUNS" | sort -u | while read -r j a; do echo "($j,$a)"; done | paste -sd, | \
       sed 's/^/SELECT count(*) FROM (SELECT 1 FROM (VALUES /; s/$/) v LEFT JOIN mosqlite_job_attempts a ON a.job = v.column1 AND a.attempt = v.column2 WHERE a.job IS NULL)/' | sql)" 0

# The concurrency key, the unique keys, the cron ticks.
nsamp=$(wc -l <"$SAMPLES")
maxkey=$(awk -F'|' 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$SAMPLES")
maxrun=$(awk -F'|' 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$SAMPLES")
maxuniq=$(awk -F'|' 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$SAMPLES")
check "the key's ready+running never over its limit 2 ($nsamp samples: at most $maxkey, $maxrun running)" test "$maxkey" -le 2 -a "$nsamp" -gt 0
check "the key ran at its limit at some point" [ "$maxrun" = 2 ]
check_eq "at most one live job per unique key in every sample" "$maxuniq" 1
check_eq "each replaced job ended cancelled, its replacement done" "$lost_old,$lost_repl" "0,0"
cron=$(q1 "SELECT count(*), count(DISTINCT enq_id), min(enq_id), max(enq_id) FROM mosqlite_jobs WHERE queue = 'fj.cron'")
last=$(q1 "SELECT last_tick_ms FROM mosqlite_job_cron WHERE name = 'fjcron'")
iso() { date -u -d "@$(( $1 / 1000 ))" +%Y-%m-%dT%H:%M:%S.000Z; }
TICKS=$(( (last - T0) / 60000 + 1 ))
check_eq "one job per cron tick, every minute from the set-back tick to the last one" "$cron" \
    "$TICKS|$TICKS|cron:fjcron@$(iso "$T0")|cron:fjcron@$(iso "$last")"
check_eq "PRAGMA integrity_check" "$(sql 'PRAGMA integrity_check')" ok

note "jobs fault: $ENQ jobs, $TICKS cron ticks, $DEATHS worker kills ($((DEATHS - TEST_KILLS)) by the poison job)," \
     "$((STOPS_AGENT + STOPS_SHELL)) worker stops, $WKILLED writer kills, $BKILLED broker kill$([ "$BKILLED" = 1 ] || echo s)," \
     "$CANCELS cancels, $REPLACES replaces: lost $LOST, recorded twice $RECORDED, ran twice $RAN2 (<= $BUDGET)," \
     "granted twice $GRANT2, running per key at most $maxrun (limit 2), stale dones refused $STALE_SEEN"
exit "$NFAIL"
