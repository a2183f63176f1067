#!/bin/sh
# run.sh [SECONDS]: build the libFuzzer targets (libFuzzer + ASan + UBSan, clang) and run
# each for half of SECONDS (default 60 in all), one after the other:
#   fuzz_req  the writer's request parser and validator, seeded from the hostile corpus;
#   fuzz_pub  the publisher's request building, checked against the writer's reader,
#             seeded from the same corpus as JSON Lines lines and as arguments.
# Prints each one's executions and the coverage reached. Exit non-zero on a crash or a
# sanitizer report; the input is left in build/fuzz/TARGET/ (crash-*, leak-*, ...).
# Inputs found are kept in build/fuzz/TARGET/corpus for the next run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-60}
EACH=$(( SECS / 2 > 0 ? SECS / 2 : 1 ))
CC=${FUZZ_CC:-clang}
FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Iwriter -Ipublisher"
WRITER_SRC="writer/req.c writer/schema.c common/utf8.c common/util.c"
PUB_SRC="publisher/request.c publisher/json.c publisher/id.c"
failed=0

# build TARGET SOURCES...
build() {
    t=$1; shift
    mkdir -p "$ROOT/build/fuzz/$t/seeds" "$ROOT/build/fuzz/$t/corpus"
    # shellcheck disable=SC2046,SC2086
    "$CC" $FLAGS $(pkg-config --cflags sqlite3 libcjson) "$@" \
        $(pkg-config --libs sqlite3 libcjson) -lpthread -lm -o "$ROOT/build/fuzz/$t/$t"
}

# run TARGET: fuzz it for $EACH seconds and report.
run() {
    t=$1 out=$ROOT/build/fuzz/$1
    echo "$t: $(ls "$out/seeds" | wc -l) seeds, ${EACH}s"
    set +e
    MOSQLITE_ROOT=$ROOT UBSAN_OPTIONS=print_stacktrace=1 "$out/$t" \
        -max_total_time="$EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -dict=tests/fuzz/req.dict -artifact_prefix="$out/" -print_final_stats=1 \
        "$out/corpus" "$out/seeds" >"$out/fuzz.log" 2>&1
    rc=$?
    set -e
    last=$(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
    echo "$t: $execs executions; last status: $last"
    echo "$t: coverage $(sed 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/' <<<"$last"), corpus $(ls "$out/corpus" | wc -l) inputs"
    if [ "$rc" != 0 ]; then
        echo "$t: FAILED (exit $rc); log: $out/fuzz.log"
        grep -E -A30 'ERROR: |runtime error|deadly signal|fuzz_(req|pub): ' "$out/fuzz.log" | head -60
        failed=1
    fi
}

build fuzz_req tests/fuzz/fuzz_req.c $WRITER_SRC
build fuzz_pub tests/fuzz/fuzz_pub.c $PUB_SRC $WRITER_SRC

# Seeds: each corpus case as "TABLE\nPAYLOAD" (TABLE empty for PREFIX/write) for
# fuzz_req; for fuzz_pub as a line ('s'), its "values" as an insert's ('b' 0) and as
# --with ('l').
n=0
while IFS=$'\t' read -r kind topic expect payload; do
    n=$((n + 1))
    case $topic in write/*) t=${topic#write/} ;; *) t= ;; esac
    { printf '%s\n' "$t"; printf '%b' "$payload"; } >"build/fuzz/fuzz_req/seeds/$n"
    { printf 's'; printf '%b' "$payload"; } >"build/fuzz/fuzz_pub/seeds/s$n"
    v=$(printf '%b' "$payload" | tr -d '\000' | sed -n 's/.*"values": *\({[^{}]*}\).*/\1/p' | head -1)
    if [ -n "$v" ]; then
        printf 'b\000%s' "$v" >"build/fuzz/fuzz_pub/seeds/b$n"
        printf 'l%s' "$v" >"build/fuzz/fuzz_pub/seeds/l$n"
    fi
done <tests/hostile/corpus.txt

run fuzz_req
run fuzz_pub
exit $failed
