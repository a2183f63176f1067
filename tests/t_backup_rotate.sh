#!/bin/bash
# Scheduled backups (`backup-every`, `backup-keep`) against a real broker and a real
# SQLite file: with a period of 1 s and keep 2, after several periods exactly 2
# scheduled backups are left, each a valid SQLite file (integrity_check ok) holding the
# rows written before it, while writes go on and get receipts; the other files of
# backup-dir are untouched (an operator's backup, files named almost like a scheduled
# one); an older scheduled backup left from before is rotated away. After a restart the
# next backup is due one period after the newest one. Bad values stop the writer at
# start with exit 3.
. "$(dirname "$0")/lib.sh"

BK=$T/backups
mkdir -p "$BK"

# --- bad config: exit 3 ----------------------------------------------------------------
printf 'backup-every 1s\n' >"$T/bad.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" --db "$T/bad.db" 2>&1)
check_eq "backup-every without backup-dir: exit 3 ($out)" "$?" 3
check "... naming the line and why" grep -qxF "mosqlite-writer: $T/bad.conf:1: backup-every: needs backup-dir, where the backups go" <<<"$out"
printf 'backup-dir %s\nbackup-every 1 day\n' "$BK" >"$T/bad.conf"
out=$("$BIN/mosqlite-writer" -c "$T/bad.conf" --db "$T/bad.db" 2>&1)
check_eq "backup-every 1 day: exit 3 ($out)" "$?" 3
check "... naming the line and why" grep -qxF "mosqlite-writer: $T/bad.conf:2: backup-every: not a whole number of days, hours, minutes or seconds (1d, 6h, 30m, 90s)" <<<"$out"
check "... before the database is opened" not test -e "$T/bad.db"

# --- other files in backup-dir, and an old scheduled backup ----------------------------
echo "keep me" >"$BK/notes.txt"
echo "an operator's backup" >"$BK/test-nightly.db"
echo "almost" >"$BK/test-20200101T000000Z.db.bak"
echo "almost" >"$BK/test-2020010T000000Z.db"
echo "other db" >"$BK/other-20200101T000000Z.db"
sqlite3 "$BK/test-20200101T000000Z.db" 'CREATE TABLE t (x); INSERT INTO t VALUES (1)'
(cd "$BK" && md5sum notes.txt test-nightly.db test-20200101T000000Z.db.bak test-2020010T000000Z.db \
    other-20200101T000000Z.db) >"$T/others.md5"

scheduled() { ls "$BK" | grep -E '^test-[0-9]{8}T[0-9]{6}Z\.db$'; }
done_count() { grep -c "backup to $BK/test-[0-9]\{8\}T[0-9]\{6\}Z.db done" "$WRITER_LOG"; }

broker_start
receipts_bg
printf 'backup-dir %s\nbackup-every 1s\nbackup-keep 2\n' "$BK" >"$T/writer.conf"
writer_start -c "$T/writer.conf"
# Writes go on meanwhile, each with its receipt.
n=0
five_done() { [ "$(done_count)" -ge 5 ]; }
while ! five_done && [ $n -lt 400 ]; do
    n=$((n + 1))
    pub write/build_logs "{\"id\":\"w$n\",\"reply_to\":\"$REPLY/w$n\",\"values\":{\"build_id\":1,\"line\":\"line $n\"}}"
    sleep 0.05
done
check "five scheduled backups made ($(done_count)) while $n writes went in" five_done
all_receipts() { [ "$(grep -c '"status":"applied"' "$RECEIPTS")" = "$n" ]; }
check "every write got its receipt" wait_until 20 all_receipts
writer_stop
check_eq "writer exits 0" "$?" 0
note "$(scheduled | tr '\n' ' ')"
check_eq "exactly 2 scheduled backups left" "$(scheduled | wc -l)" 2
check "the old scheduled backup from before is rotated away" not test -e "$BK/test-20200101T000000Z.db"
check "no partial file left" not ls "$BK"/.*.partial
for f in $(scheduled); do
    check_eq "$f passes integrity_check" "$(sqlite3 "$BK/$f" 'PRAGMA integrity_check')" ok
    check "$f holds the log lines" test "$(sqlite3 "$BK/$f" 'SELECT count(*) FROM build_logs')" -gt 0
done
check "the other files are untouched" sh -c "cd '$BK' && md5sum -c --quiet '$T/others.md5'"
check "removals logged" grep -q "scheduled backups: removed $BK/test-20200101T000000Z.db (backup-keep 2)" "$WRITER_LOG"

# --- across a restart: due one period after the newest ---------------------------------
newest=$(scheduled | sort | tail -1)
stamp=${newest#test-}; stamp=${stamp%Z.db}
due=$(date -u -d "${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:9:2}:${stamp:11:2}:${stamp:13:2}Z + 1 hour" +%Y-%m-%dT%H:%M:%S.000Z)
printf 'backup-dir %s\nbackup-every 1h\nbackup-keep 2\n' "$BK" >"$T/writer.conf"
writer_start -c "$T/writer.conf"
check "after a restart the next is due a period after the newest ($newest: $due)" \
    grep -q "scheduled backups: every 3600 s into $BK, the newest 2 kept; the next at $due" "$WRITER_LOG"
writer_stop
exit "$NFAIL"
