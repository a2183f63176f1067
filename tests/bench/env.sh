# env.sh: sourced by each bench script once it is in the project's root: ROOT, BIN (an
# absolute path), BB (where the bench drivers are built), and the temp root
# $TMPDIR/mosqlite-bench (/tmp/mosqlite-bench by default; not $TMPDIR/mosqlite-test.*,
# which other suites sweep), made and exported.
ROOT=$(pwd)
export ROOT
: "${BIN:=$ROOT/bin}"
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN;; esac
BB=$ROOT/build/bench
case ${TMPDIR:-} in */mosqlite-bench) ;; *) TMPDIR=${TMPDIR:-/tmp}/mosqlite-bench ;; esac
mkdir -p "$BB" "$TMPDIR"
export TMPDIR
