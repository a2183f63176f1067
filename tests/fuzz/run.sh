#!/bin/sh
# run.sh [SECONDS]: build the libFuzzer targets (libFuzzer + ASan + UBSan, clang) and run
# each for SECONDS (default 60): tests/fuzz/fuzz_req.c over the request parser and
# validator (req.c, req_op.c, req_job.c and the strict JSON reader json.c), seeded from the hostile corpus;
# tests/fuzz/fuzz_ctl.c over the door for control messages (ctl.c: the same reader, the
# reply rule, then the admin command's and the snapshot request's fields), seeded from
# the same payloads and a few control messages; tests/fuzz/fuzz_pub.c over the
# publisher's request building, checked against the writer's reader, seeded from the
# same corpus as JSON Lines lines and as arguments; tests/fuzz/fuzz_work.c over what
# mosqlite-work reads from the broker (a quarter of SECONDS); tests/fuzz/fuzz_cron.c over cron
# schedules (common/cron.c) for FUZZ_CRON_SECONDS (default 15); tests/fuzz/fuzz_retain.c
# over `retain` lines and scheduled backups' names for FUZZ_RETAIN_SECONDS (default 10);
# tests/fuzz/fuzz_jobcron.c over `job-cron` lines for FUZZ_JOBCRON_SECONDS (default 10);
# tests/fuzz/fuzz_console.c and tests/fuzz/fuzz_etcd.c (the etcd client's reading of
# answers, writer/etcd.c) for a quarter of SECONDS each; tests/fuzz/fuzz_jobq.c over the
# writer's job messages on a real job queue (writer/jobq_*.c), a quarter of SECONDS. Prints the executions and the coverage
# reached. Exit non-zero on a crash or a sanitizer report; the input is left in
# build/fuzz/ (crash-*, leak-*, ...). Inputs found are kept in build/fuzz/corpus and
# build/fuzz/corpus-ctl, corpus-pub, ... for the next run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-60}
OUT=$ROOT/build/fuzz
CC=${FUZZ_CC:-clang}
mkdir -p "$OUT/seeds" "$OUT/corpus" "$OUT/seeds-ctl" "$OUT/corpus-ctl" "$OUT/seeds-pub" "$OUT/corpus-pub"
FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DSQLITE_ENABLE_SESSION
    -DSQLITE_ENABLE_PREUPDATE_HOOK -Icommon -Iwriter -Ipublisher"

# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson) \
    tests/fuzz/fuzz_req.c writer/req.c writer/req_op.c writer/req_job.c writer/json.c writer/jbuf.c writer/schema.c common/jscan.c common/utf8.c common/util.c \
    $(pkg-config --libs sqlite3 libcjson) -lm -o "$OUT/fuzz_req"
# The publisher's request building, against the writer's own reader.
# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson) \
    tests/fuzz/fuzz_pub.c publisher/request.c publisher/strict.c publisher/strict_str.c publisher/id.c \
    writer/req.c writer/req_op.c writer/req_job.c writer/json.c writer/jbuf.c writer/schema.c common/jscan.c common/utf8.c common/util.c \
    $(pkg-config --libs sqlite3 libcjson) -lpthread -lm -o "$OUT/fuzz_pub"
# The door links the parts its handlers reach (query.c, maint.c, snapshot.c, mq.c).
# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson libmosquitto) \
    tests/fuzz/fuzz_ctl.c $(ls writer/*.c | grep -v writer/main.c) common/*.c \
    $(pkg-config --libs sqlite3 libcjson libmosquitto libcurl) -lpthread -lm -o "$OUT/fuzz_ctl"

# Seeds: each corpus case as "TABLE\nPAYLOAD" (TABLE empty for PREFIX/write).
n=0
while IFS=$'\t' read -r kind topic expect payload; do
    n=$((n + 1))
    case $topic in write/*) t=${topic#write/} ;; *) t= ;; esac
    { printf '%s\n' "$t"; printf '%b' "$payload"; } >"$OUT/seeds/$n"
    # fuzz_pub: as a line ('s'), its "values" as an insert's ('b' 0) and as --with ('l').
    { printf 's'; printf '%b' "$payload"; } >"$OUT/seeds-pub/s$n"
    v=$(printf '%b' "$payload" | tr -d '\000' | sed -n 's/.*"values": *\({[^{}]*}\).*/\1/p' | head -1)
    if [ -n "$v" ]; then
        printf 'b\000%s' "$v" >"$OUT/seeds-pub/b$n"
        printf 'l%s' "$v" >"$OUT/seeds-pub/l$n"
    fi
done <tests/hostile/corpus.txt

# Control seeds: the same payloads with and without a Response Topic, and commands.
k=0
for f in "$OUT"/seeds/*; do
    k=$((k + 1))
    { printf '\n'; tail -n +2 "$f"; } >"$OUT/seeds-ctl/$k"
done
for m in '{"cmd":"stats","reply_to":"mosqlite/reply/a"}' '{"cmd":"backup","name":"n.db"}' \
         '{"cmd":"pause","cmd":"stats"}' '{"cmd":"stats\u0000pause"}' '{"reply_to":"r/1"}' \
         '{"reply_to":"mosqlite/reply/a\u0000b"}' '{"reply_to":"r","since":1}'; do
    k=$((k + 1)); printf 'mosqlite/reply/x\n%s' "$m" >"$OUT/seeds-ctl/$k"
    k=$((k + 1)); printf '%s' "$m" >"$OUT/seeds-ctl/$k"
done

# fuzz_cron: cron schedules (common/cron.c), FUZZ_CRON_SECONDS (default 15) of its own.
mkdir -p "$OUT/cron-seeds" "$OUT/cron-corpus"
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon \
    tests/fuzz/fuzz_cron.c common/cron.c common/util.c -o "$OUT/fuzz_cron"
n=0
for s in '*/15 9-17 * * MON-FRI' '0 0 29 2 *' '0 0 13 * FRI' '0 0 */2 * 1' '5-20/5 0,12 1-31/3 jan-Mar/2 5-7' \
    '30 2 31 * 0/2' '0 0 30 2 *' '1,,2 * * * *' '@daily' '@reboot'; do
    n=$((n + 1))
    printf '%s\n%s' "$s" "$(((n - 3) * 86400000 * 4000))" >"$OUT/cron-seeds/$n"
done

# fuzz_console: the operator's command's text handling (console/format.c), a quarter of
# the time.
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Iconsole -Ipublisher \
    $(pkg-config --cflags libcjson) tests/fuzz/fuzz_console.c console/format.c common/util.c \
    $(pkg-config --libs libcjson) -lm -o "$OUT/fuzz_console"
mkdir -p "$OUT/console-seeds" "$OUT/console-corpus"
printf 'a\033[31mred\033[0m\a\033]0;t\a\302\233x' >"$OUT/console-seeds/sgr"
printf 'k:={"a":[1,2]}' >"$OUT/console-seeds/raw"
printf 'n=-12.5e3' >"$OUT/console-seeds/num"

# fuzz_retain: `retain` lines, durations and scheduled backups' names (writer/retain.c,
# writer/autobackup.c), FUZZ_RETAIN_SECONDS (default 10).
mkdir -p "$OUT/retain-seeds" "$OUT/retain-corpus"
# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson libmosquitto libcurl) \
    tests/fuzz/fuzz_retain.c $(ls writer/*.c | grep -v writer/main.c) common/*.c \
    $(pkg-config --libs sqlite3 libcjson libmosquitto libcurl) -lpthread -lm -o "$OUT/fuzz_retain"
n=0
for s in 'build_logs ts 30d' 'samples at_ms 12h ms' 'a b 1s s' 'a b 36600d' 'a b 99999999999999999999s' \
    'mosqlite-20261206T010000Z.db' 'mosqlite-20240229T235960Z.db' 'x y 0s'; do
    n=$((n + 1)); printf '%s' "$s" >"$OUT/retain-seeds/$n"
done

# fuzz_etcd: the etcd client's reading of answers (writer/etcd.c) and of the synchronous
# set's value (KEY/sync), a quarter of the time, seeded with answers etcd 3.4's gateway
# gives and sync values, each as every kind.
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Iwriter \
    $(pkg-config --cflags libcjson) tests/fuzz/fuzz_etcd.c writer/etcd.c common/util.c \
    $(pkg-config --libs libcjson) -lm -o "$OUT/fuzz_etcd"
mkdir -p "$OUT/etcd-seeds" "$OUT/etcd-corpus"
k=0
for a in '{"header":{"cluster_id":"324952591200643719","revision":"1","raft_term":"2"},"ID":"2324035841744147973","TTL":"3"}' \
    '{"result":{"header":{"revision":"1"},"ID":"2324035841744147975","TTL":"3"}}' \
    '{"result":{"header":{"revision":"3"},"ID":"2324035841744147975"}}' \
    '{"header":{"revision":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"2"}}}]}' \
    '{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"L21vc3FsaXRlL2xlYWRlcg==","create_revision":"2","mod_revision":"2","version":"1","value":"bWU=","lease":"2324035841744147975"}],"count":"1"}}]}' \
    '{"header":{"revision":"3"},"kvs":[{"key":"aw==","create_revision":5}],"count":1}' \
    '{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}' \
    '{"epoch":3,"replicas":["r1","site-2"]}' '{"epoch":1,"replicas":[]}' \
    '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}'; do
    for kind in 0 1 2 3 4; do
        k=$((k + 1)); { printf "\\$(printf '%03o' "$kind")"; printf '%s' "$a"; } >"$OUT/etcd-seeds/$k"
    done
done

# fuzz_jobcron: `job-cron` lines (writer/jobcron.c), FUZZ_JOBCRON_SECONDS (default 10).
mkdir -p "$OUT/jobcron-seeds" "$OUT/jobcron-corpus"
# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson libmosquitto libcurl) \
    tests/fuzz/fuzz_jobcron.c $(ls writer/*.c | grep -v writer/main.c) common/*.c \
    $(pkg-config --libs sqlite3 libcjson libmosquitto libcurl) -lpthread -lm -o "$OUT/fuzz_jobcron"
n=0
for s in 'nightly 0 2 * * * build {"branch": "main"}' 'w @weekly q null catch_up=all:3 priority=-1' \
    'x */15 9-17 * * MON-FRI q [1, 2.5, "a b"] unique_key=k on_duplicate=replace lease_ms=60000' \
    'y @daily q {"a":1,"a":2}' 'z 0 0 30 2 * q 1' 'c @hourly q "x" catch_up=skip concurrency_key=r concurrency=2' \
    'd @reboot q 1' 'e @daily q 1 follow=true' 'f 0 0 * * * worker 1'; do
    n=$((n + 1)); printf '%s' "$s" >"$OUT/jobcron-seeds/$n"
done

# fuzz_work: what mosqlite-work reads from the broker and a job's result and progress
# files (publisher/work_msg.c), a quarter of the time.
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Ipublisher \
    $(pkg-config --cflags libcjson) tests/fuzz/fuzz_work.c publisher/work_msg.c publisher/strict.c publisher/strict_str.c \
    common/jscan.c common/utf8.c \
    $(pkg-config --libs libcjson) -lm -o "$OUT/fuzz_work"
mkdir -p "$OUT/work-seeds" "$OUT/work-corpus"
n=0
for m in '{"op":"job","claim":"s.1","job":412,"attempt":1,"queue":"build.arm64","payload":{"build_id":7,"x":1.0},"lease_ms":30000,"timeout_ms":0,"lost":0,"priority":10,"enqueued_at":"2026-11-24T23:39:18.120Z"}' \
         '{"op":"job","claim":"s.2","job":1,"attempt":2,"payload":"text","lease_ms":1e999}' \
         '{"op":"empty","claim":"s.1"}' '{"op":"cancel","job":412,"attempt":1}' \
         '{"op":"lease_lost","job":412,"attempt":1,"state":"ready"}' \
         '{"id":"412.1.done","status":"rejected","error":"lease lost"}' \
         '{"id":"412.1.done","status":"applied","job":412,"state":"done","claim_error":"session \\"s\\" has ended"}' \
         '{"state":"online","since":"2026-11-24T23:39:18Z"}' '{"state":"offline"}' \
         ' [1, {"a": 2.50, "b": "\u00e9"}, null]
' '"text"' '{"a":1,"a":2}' '{"step": 1'; do
    n=$((n + 1)); printf '%s' "$m" >"$OUT/work-seeds/$n"
done

# fuzz_jobq: the writer's job messages (jobq_apply: claim, done, fail, release, progress,
# enqueue on PREFIX/jobs/QUEUE; hello, beat, bye, gone on PREFIX/jobs/worker) on a real
# job queue, a quarter of the time. An input is "LEVELS\nPAYLOAD" (the topic's levels
# after PREFIX/jobs/). Seeds: the corpus's job messages, the protocol's examples and
# messages naming the jobs the target sets up (1, 2 and 5 running at attempt 1, 3
# blocked, 4 scheduled, 6 done, 7 ready).
mkdir -p "$OUT/jobq-seeds" "$OUT/jobq-corpus"
# shellcheck disable=SC2046,SC2086
"$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson libmosquitto libcurl) \
    -Itests/unit tests/fuzz/fuzz_jobq.c $(ls writer/*.c | grep -v writer/main.c) common/*.c \
    $(pkg-config --libs sqlite3 libcjson libmosquitto) -lpthread -ldl -lm -o "$OUT/fuzz_jobq"
n=0
while IFS=$'\t' read -r kind topic expect payload; do
    case $topic in
    jobs/*) n=$((n + 1)); { printf '%s\n' "${topic#jobs/}"; printf '%b' "$payload"; } >"$OUT/jobq-seeds/c$n" ;;
    esac
done <tests/hostile/corpus.txt
n=0
while IFS= read -r s; do
    n=$((n + 1)); printf '%s\n%s' "${s%% *}" "${s#* }" >"$OUT/jobq-seeds/$n"
done <<'SEEDS'
worker {"op": "hello", "worker": "w3", "session": "s9", "host": "build-3", "queues": ["build.arm64"], "jobs": 2}
worker {"op": "hello", "worker": "w5", "session": "s11", "host": "a b"}
worker {"op": "beat", "worker": "w3", "session": "s9", "reply_to": "mosqlite/jobs/to/w3", "jobs": [{"job": 1, "attempt": 1}, {"job": 2, "attempt": 1}]}
worker {"op": "beat", "worker": "w3", "session": "s9", "reply_to": "mosqlite/jobs/to/w3", "jobs": [{"job": 6, "attempt": 1}, {"job": 412, "attempt": 1}, {"job": 1, "attempt": 2}]}
worker {"op": "bye", "worker": "w3", "session": "s9"}
worker {"op": "gone", "worker": "w4", "session": "s10"}
build {"op": "claim", "id": "w3.s9.c41", "worker": "w3", "session": "s9", "reply_to": "mosqlite/jobs/to/w3", "wait_ms": 30000, "queues": ["build.arm64", "build.any"]}
build.arm64 {"op": "claim", "id": "c1", "worker": "w3", "session": "s9", "reply_to": "mosqlite/jobs/to/w3"}
build {"op": "claim", "id": "c5", "worker": "w6", "session": "s12", "reply_to": "mosqlite/jobs/to/w6", "queues": ["build", "build.arm64"]}
build.arm64 {"op": "done", "id": "2.1.done", "job": 2, "attempt": 1, "exit_code": 0, "result": {"artifact": "x.tar"}, "ops": [{"table": "builds", "op": "insert", "values": {"id": 7, "name": "b7", "status": "passed"}}], "enqueue": [{"queue": "publish", "payload": {"build_id": 7}, "follow": true}], "claim": {"id": "w3.s9.c42", "worker": "w3", "session": "s9", "wait_ms": 30000}, "reply_to": "mosqlite/jobs/to/w3"}
build.arm64 {"op": "done", "id": "1.1.done", "job": 1, "attempt": 1, "reply_to": "mosqlite/jobs/to/w3"}
build.arm64 {"op": "fail", "id": "1.1.fail", "job": 1, "attempt": 1, "exit_code": 2, "error": "make: *** [vmlinux] Error 2", "retry": "policy", "reply_to": "mosqlite/jobs/to/w3"}
build {"op": "fail", "id": "5.1.fail", "job": 5, "attempt": 1, "retry": "yes", "retry_in_ms": 1000}
build {"op": "fail", "id": "5.1.x", "job": 5, "attempt": 1, "cancelled": true}
build.arm64 {"op": "release", "id": "2.1.rel", "job": 2, "attempt": 1, "delay_ms": 0, "reply_to": "mosqlite/jobs/to/w3"}
build {"op": "release", "id": "5.1.rel", "job": 5, "attempt": 1, "delay_ms": 60000}
build.arm64 {"op": "progress", "job": 1, "attempt": 1, "progress": {"pct": 40, "step": "linking"}}
build {"op": "done", "id": "6.1.done", "job": 6, "attempt": 1, "result": 1}
build {"op": "done", "id": "6.1.again", "job": 6, "attempt": 1}
build {"op": "done", "id": "1.1.done", "job": 1, "attempt": 1}
build.arm64 {"op": "done", "id": "412.1.done", "job": 412, "attempt": 1}
build.arm64 {"op": "enqueue", "id": "e9", "reply_to": "mosqlite/receipts/r", "payload": {"build_id": 9}, "unique_key": "branch:main", "on_duplicate": "replace", "concurrency_key": "repo:linux", "concurrency": 2, "max_attempts": 1, "max_lost": 3, "lease_ms": 30000, "timeout_ms": 3600000, "follow": true}
publish {"op": "enqueue", "payload": null, "delay_ms": 5000}
build {"op": "enqueue", "queue": "build.x", "payload": [1], "at": "2026-11-24T23:00:00Z", "unique_key": "k", "on_duplicate": "reject"}
build/x {"op": "claim", "id": "c", "worker": "w", "session": "s", "reply_to": "r"}
worker {"op": "claim", "id": "c", "worker": "w", "session": "s", "reply_to": "r"}
SEEDS

# fuzz TARGET CORPUS SEEDS DICT [SECONDS [MAX_LEN]] (DICT may be ""): run one target (SECS seconds by
# default). 0, or 1 on a finding.
fuzz() {
    secs=${5:-$SECS} maxlen=${6:-8192}
    echo "fuzz $1: $(ls "$3" | wc -l) seeds, ${secs}s"
    set +e
    MOSQLITE_ROOT=$ROOT UBSAN_OPTIONS=print_stacktrace=1 "$OUT/$1" \
        -max_total_time="$secs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
        ${4:+-dict="$4"} -artifact_prefix="$OUT/" -print_final_stats=1 \
        "$2" "$3" >"$OUT/$1.log" 2>&1
    rc=$?
    set -e
    last=$(grep -E '^#[0-9]+' "$OUT/$1.log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$1.log")
    echo "fuzz $1: $execs executions; last status: $last"
    echo "fuzz $1: coverage $(sed 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/' <<<"$last"), corpus $(ls "$2" | wc -l) inputs"
    if [ "$rc" != 0 ]; then
        echo "fuzz $1: FAILED (exit $rc); log: $OUT/$1.log"
        grep -E -A30 'ERROR: |runtime error|deadly signal|fuzz_[a-z]*: ' "$OUT/$1.log" | head -60
        return 1
    fi
}

failed=0
fuzz fuzz_req "$OUT/corpus" "$OUT/seeds" tests/fuzz/req.dict || failed=1
fuzz fuzz_ctl "$OUT/corpus-ctl" "$OUT/seeds-ctl" tests/fuzz/ctl.dict || failed=1
fuzz fuzz_pub "$OUT/corpus-pub" "$OUT/seeds-pub" tests/fuzz/req.dict || failed=1
fuzz fuzz_cron "$OUT/cron-corpus" "$OUT/cron-seeds" tests/fuzz/cron.dict "${FUZZ_CRON_SECONDS:-15}" 256 || failed=1
fuzz fuzz_retain "$OUT/retain-corpus" "$OUT/retain-seeds" "" "${FUZZ_RETAIN_SECONDS:-10}" 256 || failed=1
fuzz fuzz_jobcron "$OUT/jobcron-corpus" "$OUT/jobcron-seeds" tests/fuzz/cron.dict "${FUZZ_JOBCRON_SECONDS:-10}" 1024 || failed=1
fuzz fuzz_console "$OUT/console-corpus" "$OUT/console-seeds" "" $(( (SECS + 3) / 4 )) 1024 || failed=1
fuzz fuzz_etcd "$OUT/etcd-corpus" "$OUT/etcd-seeds" tests/fuzz/etcd.dict $(( (SECS + 3) / 4 )) 4096 || failed=1
fuzz fuzz_work "$OUT/work-corpus" "$OUT/work-seeds" tests/fuzz/req.dict $(( (SECS + 3) / 4 )) 4096 || failed=1
fuzz fuzz_jobq "$OUT/jobq-corpus" "$OUT/jobq-seeds" tests/fuzz/jobq.dict $(( (SECS + 3) / 4 )) 8192 || failed=1
exit "$failed"
