#!/bin/sh
# run.sh [SECONDS]: build tests/fuzz/fuzz_req.c (libFuzzer + ASan + UBSan, clang) over the
# request parser and validator, seed it from the hostile corpus, run it for SECONDS
# (default 60), and print the executions and the coverage reached. Exit non-zero on a
# crash or a sanitizer report; the input is left in build/fuzz/ (crash-*, leak-*, ...).
# Inputs found are kept in build/fuzz/corpus for the next run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-60}
OUT=$ROOT/build/fuzz
CC=${FUZZ_CC:-clang}
mkdir -p "$OUT/seeds" "$OUT/corpus"

# shellcheck disable=SC2046
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Iwriter \
    $(pkg-config --cflags sqlite3 libcjson) \
    tests/fuzz/fuzz_req.c writer/req.c writer/schema.c common/utf8.c common/util.c \
    $(pkg-config --libs sqlite3 libcjson) -lm -o "$OUT/fuzz_req"

# Seeds: each corpus case as "TABLE\nPAYLOAD" (TABLE empty for PREFIX/write).
n=0
while IFS=$'\t' read -r kind topic expect payload; do
    n=$((n + 1))
    case $topic in write/*) t=${topic#write/} ;; *) t= ;; esac
    { printf '%s\n' "$t"; printf '%b' "$payload"; } >"$OUT/seeds/$n"
done <tests/hostile/corpus.txt

echo "fuzz: $n seeds, ${SECS}s"
set +e
MOSQLITE_ROOT=$ROOT UBSAN_OPTIONS=print_stacktrace=1 "$OUT/fuzz_req" \
    -max_total_time="$SECS" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -dict=tests/fuzz/req.dict -artifact_prefix="$OUT/" -print_final_stats=1 \
    "$OUT/corpus" "$OUT/seeds" >"$OUT/fuzz.log" 2>&1
rc=$?
set -e
last=$(grep -E '^#[0-9]+' "$OUT/fuzz.log" | tail -1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz.log")
echo "fuzz: $execs executions; last status: $last"
echo "fuzz: coverage $(sed 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/' <<<"$last"), corpus $(ls "$OUT/corpus" | wc -l) inputs"
if [ "$rc" != 0 ]; then
    echo "fuzz: FAILED (exit $rc); log: $OUT/fuzz.log"
    grep -E -A30 'ERROR: |runtime error|deadly signal|fuzz_req: ' "$OUT/fuzz.log" | head -60
    exit 1
fi

# The operator's command's text handling (console/format.c): a quarter of the time.
"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Icommon -Iconsole \
    $(pkg-config --cflags libcjson) tests/fuzz/fuzz_console.c console/format.c common/util.c \
    $(pkg-config --libs libcjson) -lm -o "$OUT/fuzz_console"
mkdir -p "$OUT/console-corpus"
printf 'a\033[31mred\033[0m\a\033]0;t\a\302\233x' >"$OUT/console-corpus/seed-sgr"
printf 'k:={"a":[1,2]}' >"$OUT/console-corpus/seed-raw"
printf 'n=-12.5e3' >"$OUT/console-corpus/seed-num"
set +e
UBSAN_OPTIONS=print_stacktrace=1 "$OUT/fuzz_console" -max_total_time=$(( (SECS + 3) / 4 )) -max_len=1024 \
    -timeout=10 -artifact_prefix="$OUT/console-" -print_final_stats=1 "$OUT/console-corpus" \
    >"$OUT/fuzz_console.log" 2>&1
rc=$?
set -e
echo "fuzz_console: $(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz_console.log") executions"
if [ "$rc" != 0 ]; then
    echo "fuzz_console: FAILED (exit $rc); log: $OUT/fuzz_console.log"
    grep -E -A30 'ERROR: |runtime error|deadly signal' "$OUT/fuzz_console.log" | head -60
    exit 1
fi
