#!/bin/bash
# mosqlite-pub sends values as they were written: a table of JSON values (every number
# form, +-2^53 and beyond, \u0000, bad \u escapes, duplicate keys, nested objects and arrays) goes
# through every way into mosqlite-pub (arguments, --where, --with, JSON Lines with and
# without --wait), and the same text through plain mosquitto_pub. Each pair must agree:
# the same stored value and type (sqlite3 typeof() and quote()), or both refused with
# the same words. For JSON Lines the words are compared exactly (the line is the
# payload); for an argument, after its name ("values: ", "where: ", "--with: ") and
# the operation's ("ops[0]: ") and with byte offsets left out, since the writer counts
# from the start of the whole request.
. "$(dirname "$0")/lib.sh"

SCHEMA=$T/schema
mkdir -p "$SCHEMA"
echo 'CREATE TABLE kv (k TEXT PRIMARY KEY, v, hit);' > "$SCHEMA/001_kv.sql"
broker_start
writer_start
receipts_bg

# The members after "k" of each row's values, one case a line.
cat > "$T/cases" <<'C'
"v":0
"v":42
"v":-7
"v":-0
"v":0.0
"v":-0.0
"v":1.0
"v":-1.5
"v":1E2
"v":1e-7
"v":2.5e+3
"v":0.30000000000000004
"v":9007199254740991
"v":-9007199254740991
"v":9007199254740992
"v":-9007199254740992
"v":9007199254740993
"v":-9007199254740993
"v":18446744073709551616
"v":5000000000000001
"v":1e999
"v":-1e999
"v":1e-999
"v":1.7976931348623157e308
"v":123456789012345678901234567890.5
"v":012
"v":"a\u0000b"
"v":"a\uzzzzb"
"v":"\ud800"
"v":"\udc00x"
"v":"\u00e9\ud83d\ude00 \"q\" \\ \t"
"v":"plain"
"v":true
"v":null
"v":1,"v":2
"v":{"a":1,"a":2}
"v":{"a":[1,2.50,{"b":null}],"c":1E2}
"v":[1.0,-0,1e-7]
C
NC=$(grep -c . "$T/cases")

stored() { sql "SELECT typeof(v) || ' ' || quote(v) FROM kv WHERE k = '$1'"; }
hit() { sql "SELECT coalesce(hit, '-') FROM kv WHERE k = '$1'"; }
# The reason in a receipt, unescaped.
reason() { sed -n 's/.*"error":"\(.*\)"}.*/\1/p' | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g'; }
# The words of an error, without the argument's or the op's name and byte offsets.
norm() { sed -E -e 's/^(values|set|where|--with): //' -e 's/^ops\[0\]: //' -e 's/byte [0-9]+/byte N/g'; }
# What mosqlite-pub said on stderr: the writer's reason, or its own.
said() { sed -E -e 's/^.* (error|warning): //' -e 's/^(line [0-9]+: )?request [^ ]+ rejected: /\1/' \
             -e 's/^[0-9]+ line\(s\) rejected: //' "$1" | grep -v '^lines [0-9]' | head -1; }
# ref ID TOPIC-SUFFIX PAYLOAD: publish with mosquitto_pub; print "applied" or the reason.
ref() {
    pub "$2" "$3"
    r=$(receipt "$1")
    case $r in *'"status":"applied"'*) echo applied;; *) printf '%s\n' "$r" | reason;; esac
}
# agree DESC PUB-KEY PUB-RC PUB-WORDS REF-KEY REF-OUTCOME: one pair. PUB-RC is 0 when
# mosqlite-pub did not refuse or report a rejection.
agree() {
    if [ "$6" = applied ]; then
        if [ "$3" = 0 ]; then
            check_eq "$1: stored alike" "$(stored "$2")" "$(stored "$5")"
        else
            fail "$1: mosquitto_pub's applied ($(stored "$5")), mosqlite-pub's refused: [$4]"
        fi
    elif [ "$3" = 0 ]; then
        fail "$1: mosquitto_pub's refused [$6], mosqlite-pub's not (stored: $(stored "$2"))"
    else
        check_eq "$1: refused alike" "$4" "$6"
    fi
}

# --- arguments, --where, --with ------------------------------------------------------
cn=0
while IFS= read -r vm; do
    cn=$((cn + 1))
    # Arguments: TABLE VALUES.
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait kv "{\"k\":\"a$cn\",$vm}" 2>"$T/a$cn.log"; rc=$?
    out=$(ref "ra$cn" write/kv "{\"values\":{\"k\":\"ra$cn\",$vm},\"id\":\"ra$cn\",\"reply_to\":\"$REPLY/ra$cn\"}")
    agree "arguments $vm" "a$cn" "$rc" "$(said "$T/a$cn.log" | norm)" "ra$cn" "$(printf '%s\n' "$out" | norm)"

    # --where: two rows made alike, one updated through mosqlite-pub and one through
    # mosquitto_pub with the same where; both hit or both missed.
    ref "pw$cn" write/kv "{\"values\":{\"k\":\"w$cn\",$vm},\"id\":\"pw$cn\",\"reply_to\":\"$REPLY/pw$cn\"}" >/dev/null
    ref "px$cn" write/kv "{\"values\":{\"k\":\"rw$cn\",$vm},\"id\":\"px$cn\",\"reply_to\":\"$REPLY/px$cn\"}" >/dev/null
    "$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait --op update --where "{\"k\":\"w$cn\",$vm}" kv '{"hit":1}' \
        2>"$T/w$cn.log"; rc=$?
    out=$(ref "rw$cn" write/kv "{\"op\":\"update\",\"set\":{\"hit\":1},\"where\":{\"k\":\"rw$cn\",$vm},\"id\":\"rw$cn\",\"reply_to\":\"$REPLY/rw$cn\"}")
    if [ "$out" = applied ] && [ "$rc" = 0 ]; then
        check_eq "--where $vm: matched alike" "$(hit "w$cn")" "$(hit "rw$cn")"
    else
        agree "--where $vm" "w$cn" "$rc" "$(said "$T/w$cn.log" | norm)" "rw$cn" "$(printf '%s\n' "$out" | norm)"
    fi

    # --with: the log pipe, one line, the row's other values from --with.
    echo "l$cn" | "$BIN/mosqlite-pub" -p "$MQTT_PORT" --no-tee --linger 5 --spool "$T/spool$cn" \
        --lines k --with "{$vm}" kv 2>"$T/l$cn.log"; rc=$?
    [ "$rc" = 0 ] && grep -q 'rejected: ' "$T/l$cn.log" && rc=1
    out=$(ref "rl$cn" write "{\"ops\":[{\"table\":\"kv\",\"values\":{$vm,\"k\":\"rl$cn\"}}],\"id\":\"rl$cn\",\"reply_to\":\"$REPLY/rl$cn\"}")
    agree "--with $vm" "l$cn" "$rc" "$(said "$T/l$cn.log" | norm)" "rl$cn" "$(printf '%s\n' "$out" | norm)"
done < "$T/cases"

# --- JSON Lines --------------------------------------------------------------------
# The same lines for both; mosquitto_pub's get an id and reply_to at the end, where
# they move no byte of the values.
jsonl() {   # jsonl PREFIX: the JSON Lines, keys PREFIX1, PREFIX2, ...
    cn=0
    while IFS= read -r vm; do
        cn=$((cn + 1))
        printf '{"table":"kv","values":{"k":"%s%d",%s}}\n' "$1" "$cn" "$vm"
    done < "$T/cases"
}
jsonl j > "$T/j.jsonl"
jsonl n > "$T/n.jsonl"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" --wait - < "$T/j.jsonl" 2>"$T/j.log"
"$BIN/mosqlite-pub" -p "$MQTT_PORT" - < "$T/n.jsonl" 2>"$T/n.log"
cn=0
applied=0
while IFS= read -r line; do
    cn=$((cn + 1))
    rline=$(printf '%s' "$line" | sed "s/\"k\":\"j$cn\"/\"k\":\"x$cn\"/")   # as long: same offsets
    out=$(ref "rj$cn" write "${rline%\}},\"id\":\"rj$cn\",\"reply_to\":\"$REPLY/rj$cn\"}")
    echo "$out" > "$T/rj$cn.out"
    [ "$out" = applied ] && applied=$((applied + 1))
done < "$T/j.jsonl"
# Without --wait nothing says when the writer is done: wait for the rows that apply.
wait_until 15 rows_are "kv WHERE k LIKE 'n%'" "$applied"
for cn in $(seq "$NC"); do
    vm=$(sed -n "${cn}p" "$T/cases")
    out=$(cat "$T/rj$cn.out")
    grep "line $cn: " "$T/j.log" | sed 's/^.* error: //' > "$T/j$cn.log"
    rc=0; [ -s "$T/j$cn.log" ] && rc=1
    agree "JSON Lines --wait $vm" "j$cn" "$rc" "$(said "$T/j$cn.log" | sed 's/^line [0-9]*: //')" "x$cn" "$out"
    grep "line $cn: " "$T/n.log" | sed 's/^.* error: //' > "$T/n$cn.log"
    rc=0; [ -s "$T/n$cn.log" ] && rc=1
    agree "JSON Lines $vm" "n$cn" "$rc" "$(said "$T/n$cn.log" | sed 's/^line [0-9]*: //')" "x$cn" "$out"
done
