#!/bin/bash
# Fault: the disk fills up. The database lives on a small filesystem of its own (a tmpfs
# with size=16m), which a filler file takes to its last block in the middle of a stream.
# The writer rejects nothing, says "full" in its status and applies nothing more; once
# the filler is deleted it applies everything it held and the broker kept: exactly
# once, order kept for every producer, integrity.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault.sh"

NO=40 NW=600 PACE=800 FULL_S=5
if [ -n "${SOAK:-}" ]; then NO=200 NW=5000 PACE=300 FULL_S=30; fi

# The database on its own small filesystem: a tmpfs with a size limit (root), else a
# loop-mounted ext4 image; without either the test is skipped, never faked.
FS=$T/fs
mkdir -p "$FS"
unmount_fs() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    mountpoint -q "$FS" && umount -l "$FS"
}
trap 'unmount_fs; cleanup' EXIT
if mount -t tmpfs -o size=16m,mode=0755 mosqlite-test "$FS" 2>/dev/null; then
    note "database on a 16 MiB tmpfs"
elif truncate -s 16M "$T/fs.img" && mkfs.ext4 -q "$T/fs.img" 2>/dev/null &&
     mount -o loop "$T/fs.img" "$FS" 2>/dev/null; then
    note "database on a 16 MiB loop-mounted ext4"
else
    echo "ok - # SKIP cannot mount a small filesystem here (not root?)"
    exit 0
fi
DB=$FS/test.db

broker_start
writer_start
producers_start "$NO" "$NW" "$PACE"
wait_until 60 at_least $((NW / 3)) || fail "rows reached $((NW / 3))"

# Fill the filesystem to the last block.
dd if=/dev/zero of="$FS/filler" bs=64k 2>/dev/null
dd if=/dev/zero of="$FS/filler2" bs=512 2>/dev/null
note "filesystem full at $(applied_rows) rows: $(df -k "$FS" | awk 'NR == 2 { print $4 " kB free" }')"
wait_until 10 error_is '"[^"]*full'
check "status says the disk is full" error_is '"[^"]*full'
note "status while full: $(status)"
at_full=$(applied_rows)
sleep "$FULL_S"
check_eq "nothing applied while full" "$(applied_rows)" "$at_full"
check_eq "nothing rejected while full" "$(sql 'SELECT count(*) FROM mosqlite_rejected')" 0
check_eq "no producer got a rejection" "$(cat "$T"/pub*.err | grep -c 'rejected:')" 0
check "writer still running" kill -0 "$WRITER_PID"
rm -f "$FS/filler" "$FS/filler2"
note "space freed at $(applied_rows) rows"
wait_until 20 error_is null
check "status error cleared once space is back" error_is null
producers_wait 4
stream_check "1:$NO 2:$NO 3:$NW 4:$NW" "1 2 3 4"
TOTAL=$((2 * NO + 2 * NW))
status_counts "writer's status" "every request" "$TOTAL"
note "FIGURES t_fault_full: requests=$TOTAL full=${FULL_S}s lost=$LOST duplicated=$DUPS" \
     "(duplicate receipts: $(status_field duplicates))"
