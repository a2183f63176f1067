#!/bin/bash
# conf/hooks/notify-webhook as a hook of a real writer, POSTing to a real HTTP listener
# on a free loopback port: once per failed build (updated to failed, or inserted so,
# rows of one commit each their own message), never for a passed or running one, with
# the message's text filled from the row and the row itself; a webhook that answers 500,
# or too slowly for --timeout, makes the hook fail, reported on PREFIX/hooks.
. "$(dirname "$0")/lib.sh"

HP=$(free_port)
BODIES=$T/bodies
: >"$BODIES"
# The listener: each POST's body appended as a line to $BODIES with its path; /fail
# answers 500, /slow answers after 3 s.
cat >"$T/listener.py" <<'EOS'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(self.path.encode() + b" " + self.headers.get("Content-Type", "").encode() + b" " + body + b"\n")
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(500 if self.path == "/fail" else 200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOS
python3 "$T/listener.py" "$HP" "$BODIES" >"$T/listener.log" 2>&1 &
PIDS="$PIDS $!"
check "the HTTP listener is up on $HP" wait_until 10 port_open "$HP"

NW=$ROOT/conf/hooks/notify-webhook
URL=http://127.0.0.1:$HP
cat >"$T/writer.conf" <<EOS
hook builds update $NW --where status=failed --text build {name} (#{id}) failed $URL/hook
hook builds insert $NW --where status=failed --text build {name} (#{id}) failed $URL/hook
hook build_logs insert $NW --where line=boom $URL/fail
hook build_logs insert $NW --where line=slow --timeout 1 $URL/slow
hook-max 1
EOS

broker_start
receipts_bg
sub_bg "$T/hooks" "$PREFIX_TOPIC/hooks"
writer_start -c "$T/writer.conf"

# Five builds running, then: 1 and 3 fail, 2 and 4 pass (in one burst: commits of
# several rows), 5 is inserted failed, 6 stays running; 99 fails last.
for i in 1 2 3 4 6; do r=$(req write/builds b$i "\"values\":{\"id\":$i,\"name\":\"b$i\"}"); done
{
    echo '{"op":"update","set":{"status":"failed","exit_code":2},"where":{"id":1}}'
    echo '{"op":"update","set":{"status":"passed","exit_code":0},"where":{"id":2}}'
    echo '{"op":"update","set":{"status":"failed","exit_code":1},"where":{"id":3}}'
    echo '{"op":"update","set":{"status":"passed","exit_code":0},"where":{"id":4}}'
    echo '{"values":{"id":5,"name":"b5","status":"failed"}}'
} | mosquitto_pub -p "$MQTT_PORT" -q 2 -t "$PREFIX_TOPIC/write/builds" -l
r=$(req write/builds b99 '"values":{"id":99,"name":"last","status":"running"}')
r=$(req write/builds f99 '"op":"update","set":{"status":"failed"},"where":{"id":99}')
check "the last failed build is posted" wait_until 20 grep -q '"id":99' "$BODIES"
# hook-max 1: the runs go one at a time in commit order, so all before it are done.
hook_posts() { grep '^/hook ' "$BODIES"; }
check_eq "one POST per failed build, none for the passed or running ones" \
    "$(hook_posts | grep -o '"row":{"id":[0-9]*' | sort | tr '\n' ' ')" \
    '"row":{"id":1 "row":{"id":3 "row":{"id":5 "row":{"id":99 '
check "each is JSON, sent as application/json" \
    bash -c "grep '^/hook ' '$BODIES' | grep -v '^/hook application/json {' | grep -q . && exit 1 || exit 0"
hook_posts | cut -d' ' -f3- >"$T/messages"
check "each carries the filled-in text, the table, the op and the row" python3 -c '
import json, sys
want = {1: ("update", "build b1 (#1) failed"), 3: ("update", "build b3 (#3) failed"),
        5: ("insert", "build b5 (#5) failed"), 99: ("update", "build last (#99) failed")}
got = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    assert m["table"] == "builds" and m["row"]["status"] == "failed", m
    got[m["row"]["id"]] = (m["op"], m["text"])
assert got == want, got
' "$T/messages"
note "$(head -1 "$T/messages")"

# --- a webhook that fails, and one that is too slow ----------------------------------
r=$(req write/build_logs l1 '"values":{"build_id":1,"line":"boom"}')
check "a 500 answer makes the hook fail, reported on PREFIX/hooks" \
    wait_until 20 grep -q '"command":"[^"]*notify-webhook --where line=boom [^"]*/fail","table":"build_logs","op":"insert","outcome":"failed","exit_status":1' "$T/hooks"
r=$(req write/build_logs l2 '"values":{"build_id":1,"line":"slow"}')
check "an answer slower than --timeout makes it fail too" \
    wait_until 20 grep -q '"command":"[^"]*notify-webhook --where line=slow --timeout 1 [^"]*/slow","table":"build_logs","op":"insert","outcome":"failed","exit_status":1' "$T/hooks"
check "a row that matches no filter posts nothing" not grep -q '"line":"l' "$BODIES"
writer_stop
exit "$NFAIL"
