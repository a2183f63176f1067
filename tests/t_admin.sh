#!/bin/bash
# Maintenance over PREFIX/admin against a real broker and a real SQLite file: stats,
# checkpoint, integrity_check, optimize answer on reply_to; bad commands and backup
# names that are paths are refused with their reason, and so are commands that are not
# strict JSON (\u0000 in a command or a name, a key given twice); a backup taken while 8 producers
# write is a valid SQLite file (integrity_check ok) holding every row committed before
# it started, copied in many steps; pause leaves new requests queued at the broker
# (none applied, status "paused": true) and resume applies every one of them.
. "$(dirname "$0")/lib.sh"

NP=8 NPER=1500 NPAUSE=200
broker_start
sub_bg "$T/answers" "$PREFIX_TOPIC/reply/admin/#"
cat >"$T/writer.conf" <<EOS
backup-dir $T/backups
backup-step-pages 16
EOS
# Some bulk first, so that a backup takes many steps: 40,000 rows of 200 bytes.
writer_start -c "$T/writer.conf"
writer_stop
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
     INSERT INTO build_logs (build_id, line) SELECT 0, printf('%.200c', 'x') FROM n"
writer_start -c "$T/writer.conf"

# ask JSON-MEMBERS [SECONDS]: send a command, print its answer. The answers arrive in
# order, one per command, one a line.
ask() {
    _n=$(( $(wc -l <"$T/answers") + 1 ))
    pub admin "{\"reply_to\":\"$PREFIX_TOPIC/reply/admin/$_n\",$1}" -q 1
    wait_until "${2:-20}" answers_are $_n || { echo "no answer"; return; }
    sed -n "${_n}p" "$T/answers"
}
status_has() { status | grep -q "$1"; }
answers_are() { [ "$(wc -l <"$T/answers")" -ge "$1" ]; }
# producer_rows OP N: rows of the 8 producers compare to N.
producer_rows() { [ "$(sql 'SELECT count(*) FROM build_logs WHERE build_id > 0')" "$1" "$2" ]; }
paused_rows() { [ "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = -1')" = "$1" ]; }

# --- the quick ones, and refusals ---------------------------------------------------
r=$(ask '"cmd":"stats"')
check "stats: tables and rows ($r)" grep -q '"cmd":"stats","ok":true,"tables":{.*"build_logs":40000' <<<"$r"
check "stats: sizes, ids kept, paused" grep -qE '"file_bytes":[1-9][0-9]*,"wal_bytes":[0-9]+,.*"ids_kept":0,"rejected_kept":0,"paused":false' <<<"$r"
r=$(ask '"cmd":"checkpoint"')
check "checkpoint ($r)" grep -q '"cmd":"checkpoint","ok":true,"wal_frames":[0-9]*,"checkpointed":[0-9]*,"complete":true' <<<"$r"
r=$(ask '"cmd":"integrity_check"')
check "integrity_check ($r)" grep -q '"cmd":"integrity_check","ok":true,"problems":\[\],"result":"ok"' <<<"$r"
r=$(ask '"cmd":"optimize"')
check "optimize ($r)" grep -q '"cmd":"optimize","ok":true' <<<"$r"
r=$(ask '"cmd":"vacuum"')
check_eq "unknown command refused" "$r" '{"cmd":null,"error":"\"cmd\" must be one of backup, checkpoint, integrity_check, optimize, stats, pause, resume, job_retry, job_discard, job_cancel, job_run_now, queue_pause, queue_resume, workers"}'
r=$(ask '"cmd":"backup","name":"../../etc/x.db"')
check_eq "a backup name that is a path refused" "$r" '{"cmd":"backup","error":"\"name\" must be a plain file name: 1 to 128 letters, digits, '"'.', '_' or '-', not starting with '.'"'"}'
r=$(ask '"cmd":"backup"')
check "a backup without name refused" grep -q '"cmd":"backup","error":"\\"name\\" must be' <<<"$r"
# Read as strictly as a write request: a NUL never cuts a command or a name short, a
# key given twice is refused (neither of its values is taken).
ran_before=$(grep -c 'admin [a-z_]*' "$WRITER_LOG")
r=$(ask '"cmd":"stats\u0000pause"')
check "a command with \\u0000 refused, not run as stats ($r)" \
    grep -q '^{"cmd":null,"error":"string contains \\\\u0000 (byte [0-9]*): NUL characters are not supported"}$' <<<"$r"
r=$(ask '"cmd":"backup","name":"ok.db\u0000/../../evil.db"')
check "a backup name with \\u0000 refused ($r)" \
    grep -q '^{"cmd":null,"error":"string contains \\\\u0000 (byte [0-9]*): NUL characters are not supported"}$' <<<"$r"
check "no backup made under the name cut at the NUL" not test -e "$T/backups/ok.db"
r=$(ask '"cmd":"pause","cmd":"stats"')
check_eq "a command given twice refused, neither run" "$r" '{"cmd":null,"error":"duplicate key \"cmd\" in the request"}'
r=$(ask '"cmd":"stats","x":{"a":1,"a":2}')
check_eq "a key twice deeper down refused" "$r" '{"cmd":null,"error":"duplicate key \"a\" in an object"}'
r=$(ask '"cmd":"stats","name":"x.db"')
check_eq "a name for a command other than backup refused" "$r" '{"cmd":"stats","error":"\"name\" is only for backup"}'
r=$(ask '"cmd":"stats","pause":true')
check_eq "an unknown field refused" "$r" '{"cmd":null,"error":"unknown field \"pause\" (a command has \"cmd\", \"name\", \"job\", \"queue\", \"limit\", \"id\" and \"reply_to\")"}'
check "none of them paused the writer" status_has '"paused":false'
check_eq "none of them ran a command" "$(grep -c 'admin [a-z_]*' "$WRITER_LOG")" "$ran_before"
pub admin '{"cmd":"stats","reply_to":"mosqlite/status"}' -q 1
r=$(ask '"cmd":"stats"')
check "an answer to the writer's own topic is refused (not sent, next answer in order)" grep -q '"cmd":"stats","ok":true' <<<"$r"
check "no answer on the status topic" bash -c "! timeout -k 2 6 mosquitto_sub -p $MQTT_PORT -t $PREFIX_TOPIC/status -C 1 -W 2 | grep -q cmd"

# --- a backup while 8 producers write -----------------------------------------------
for p in $(seq 1 $NP); do
    for i in $(seq 1 $NPER); do echo "{\"values\":{\"build_id\":$p,\"line\":\"p$p $i\"}}"; done >"$T/in.$p"
done
PRODUCERS=
for p in $(seq 1 $NP); do
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l <"$T/in.$p" &
    PRODUCERS="$PRODUCERS $!"
done
wait_until 30 producer_rows -ge 1000
before=$(sql 'SELECT max(id) FROM build_logs')
sum_before=$(sql "SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(line)) FROM build_logs WHERE id <= $before")
r=$(ask '"cmd":"backup","name":"live.db"' 120)
# shellcheck disable=SC2086
wait $PRODUCERS
note "backup while writing: $r"
check "backup answered with path, size, steps ($r)" \
    grep -qE '"cmd":"backup","ok":true,"name":"live.db","path":"'"$T"'/backups/live.db","bytes":[1-9][0-9]*,"pages":[0-9]+,"ms":[0-9]+,"steps":[0-9]+' <<<"$r"
steps=$(sed -n 's/.*"steps":\([0-9]*\).*/\1/p' <<<"$r")
check "copied in many steps between batches ($steps)" [ "${steps:-0}" -gt 10 ]
check "no partial file left" bash -c "! ls -A '$T/backups' | grep -q partial"
check_eq "the backup passes integrity_check" "$(sqlite3 "$T/backups/live.db" 'PRAGMA integrity_check')" ok
check_eq "the backup holds every row committed before it started ($before rows)" \
    "$(sqlite3 "$T/backups/live.db" "SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(line)) FROM build_logs WHERE id <= $before")" \
    "$sum_before"
wait_until 30 producer_rows -eq $((NP * NPER))
check_eq "every producer's row applied meanwhile" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id > 0')" $((NP * NPER))

# --- pause and resume -----------------------------------------------------------------
r=$(ask '"cmd":"pause"')
check_eq "pause answered" "$r" '{"cmd":"pause","ok":true,"paused":true}'
wait_until 10 status_has '"paused":true'
check "status says paused" status_has '"paused":true'
for i in $(seq 1 $NPAUSE); do echo "{\"values\":{\"build_id\":-1,\"line\":\"paused $i\"}}"; done |
    mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/build_logs" -l
sleep 1.5
check_eq "nothing applied while paused" "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = -1')" 0
r=$(ask '"cmd":"stats"')
check "stats says paused" grep -q '"paused":true' <<<"$r"
r=$(ask '"cmd":"resume"')
check_eq "resume answered" "$r" '{"cmd":"resume","ok":true,"paused":false}'
wait_until 20 paused_rows $NPAUSE
check_eq "every request sent while paused applied after resume" \
    "$(sql 'SELECT count(*) FROM build_logs WHERE build_id = -1')" $NPAUSE
wait_until 10 status_has '"paused":false'
check "status says not paused" status_has '"paused":false'

# --- a command's id: run once, however often it is sent ----------------------------------
r=$(ask '"cmd":"pause","id":"op-1"')
check_eq "pause with an id answered" "$r" '{"cmd":"pause","ok":true,"paused":true}'
r=$(ask '"cmd":"resume","id":"op-2"')
check_eq "resume with an id answered" "$r" '{"cmd":"resume","ok":true,"paused":false}'
r=$(ask '"cmd":"pause","id":"op-1"')
check_eq "the pause sent again under its id: answered as run before" "$r" \
    '{"cmd":"pause","ok":true,"id":"op-1","duplicate":true}'
check "and not run again: not paused" status_has '"paused":false'
r=$(ask '"cmd":"stats","id":"op-2"')
check_eq "an id used by another command refused" "$r" \
    '{"cmd":"stats","error":"id \"op-2\" was already used by a resume command"}'
r=$(ask '"cmd":"stats","id":""')
check_eq "an empty id refused" "$r" '{"cmd":"stats","error":"\"id\" must be a string of 1 to 128 printable ASCII characters"}'

writer_stop
check_eq "writer exits 0" "$?" 0

# --- backup-dir is the database's own directory ----------------------------------------
# A backup is renamed over its name: a name that is, or could become, one of the
# database's files (its WAL, the one-writer lock, the record of the request session's
# subscriptions, a snapshot's or a replica's temporary file) is refused; any other name
# there is fine, and the lock still holds.
printf 'backup-dir %s\n' "$(dirname "$DB")" >"$T/samedir.conf"
writer_start -c "$T/samedir.conf"
b=$(basename "$DB")
for n in "$b" "$b-wal" "$b-shm" "$b-journal" "$b-writer.lock" "$b-writer.session" "$b-mj1A2B3C4D" \
         "$b.snapshot-$WRITER_PID" "$b.snapshot-1" "$b.incoming"; do
    r=$(ask "\"cmd\":\"backup\",\"name\":\"$n\"")
    check_eq "backup named $n beside the database refused" "$r" \
        "{\"cmd\":\"backup\",\"error\":\"\\\"$n\\\" is, or could become, one of the database's own files: choose another name or backup-dir\"}"
done
r=$(ask '"cmd":"backup","name":"copy.db"' 120)
check "another name beside the database is backed up ($r)" grep -q '"cmd":"backup","ok":true,"name":"copy.db"' <<<"$r"
out=$(timeout 20 "$BIN/mosqlite-writer" -p "$MQTT_PORT" --db "$DB" --schema "$ROOT/conf/schema" --client-id second 2>&1)
rc=$?
check_eq "a second writer on the file still exits 1 ($out)" "$rc" 1
check "... because the database is in use" grep -q "is in use by another" <<<"$out"
writer_stop
check_eq "writer exits 0" "$?" 0
exit "$NFAIL"
