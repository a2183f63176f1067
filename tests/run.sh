#!/bin/sh
# Runs every tests/t_*.sh (or those named in $TESTS), each in its own temp dir with its
# own broker on free loopback ports. A test script prints TAP-style lines, "ok - ..." and
# "not ok - ...". A script that exits non-zero without a "not ok" line counts as one
# failure. The last line is "N passed, N failed".
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
export ROOT
: "${BIN:=$ROOT/bin}"
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN;; esac
export BIN
LOGDIR=${LOGDIR:-$ROOT/build/test-logs}
mkdir -p "$LOGDIR"
TIMEOUT=${TEST_TIMEOUT:-900}

pass=0 failn=0 failed_files=
files=${TESTS:-$(ls tests/t_*.sh)}
for f in $files; do
    name=$(basename "$f" .sh)
    log=$LOGDIR/$name.log
    start=$(date +%s)
    timeout -k 10 "$TIMEOUT" bash "$f" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$log")
    n=$(grep -c '^not ok ' "$log")
    if [ "$rc" != 0 ] && [ "$n" = 0 ]; then
        echo "not ok - $name exited with status $rc" >>"$log"
        n=1
    fi
    pass=$((pass + p)) failn=$((failn + n))
    took=$(( $(date +%s) - start ))
    grep -E '^(ok|not ok) ' "$log" | sed "s/^/[$name] /"
    if [ "$n" != 0 ]; then
        failed_files="$failed_files $name"
        echo "---- $name: last lines of $log" ; tail -n 40 "$log"; echo "----"
    fi
    echo "# $name: $p passed, $n failed (${took}s)"
done
[ -n "$failed_files" ] && echo "# failed:$failed_files (logs in $LOGDIR)"
echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
