#!/usr/bin/env python3
"""gen.py: writes tests/hostile/corpus.txt, the hostile-input corpus (run it again after
editing; the corpus is committed, so the tests need no Python).

corpus.txt has one case per line, four fields separated by a TAB:

    KIND  TOPIC  EXPECT  PAYLOAD

KIND is `good` (must be applied; its id is good-NNN), `bad` (must be rejected) or
`todo` (must be rejected, but the writer does not yet: not published, see the note).
TOPIC is the topic under the prefix (write, write/TABLE, ...). EXPECT, for a bad case,
is the writer's rejection text: exact, or an extended regex when it starts with `~`.
PAYLOAD is the request's bytes with `\\` for a backslash and `\\xHH` for any byte that
is not printable ASCII (so NUL, invalid UTF-8, TAB and newline survive); `printf %b`
decodes it. Cases run in order: a few bad ones depend on a good one before them.

The writer runs with its defaults (max-payload 262144, max-depth 32, max-ops 1000)
against conf/schema + tests/schema."""
import os

cases = []  # (kind, topic, expect, payload bytes)
ngood = 0


def good(topic, payload):
    """A request that must be applied; gets the id good-NNN."""
    global ngood
    ngood += 1
    if isinstance(payload, str):
        payload = payload.encode()
    idf = b'"id":"good-%03d",' % ngood
    k = payload.index(b"{") + 1
    cases.append(("good", topic, "-", payload[:k] + idf + payload[k:]))


def bad(topic, expect, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    cases.append(("bad", topic, expect, payload))


def utf8_pos(b):
    try:
        b.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        return e.start


# ---- invalid UTF-8: inside values, keys, table names, outside strings -----------
bad_seqs = [b"\xff", b"\xfe", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80",
            b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
            b"\xe2\x82", b"\x80", b"\xbf", b"\xf0\x9f\x98", b"\xc3", b"\xe2\x28\xa1",
            b"\xf0\x28\x8c\x28", b"\xfc\x80\x80\x80\x80\x80"]
for i, s in enumerate(bad_seqs):
    for shape in (b'{"values":{"build_id":1,"line":"a%sb"}}', b'{"values":{"build_id":1,"li%sne":"x"}}'):
        p = shape % s
        bad("write/build_logs", "payload is not valid UTF-8 (byte %d)" % utf8_pos(p), p)
    if i % 3 == 0:
        good("write/build_logs", '{"values":{"build_id":1,"line":"valid \u00e9\u20ac\U0001F600 %d"}}' % i)
p = b'{"table":"build\xfflogs","values":{"build_id":1,"line":"x"}}'
bad("write", "payload is not valid UTF-8 (byte %d)" % utf8_pos(p), p)
# Trailing bytes after the object are reported as such, before their encoding.
bad("write/build_logs", "invalid JSON: unexpected text at byte 36", b'{"values":{"build_id":1,"line":"x"}}\xff')
# RFC 8259 lets a parser ignore a leading byte order mark; the writer does.
good("write/build_logs", b'\xef\xbb\xbf{"values":{"build_id":1,"line":"BOM"}}')

# A \u escape must be four hex digits (cJSON would cut "a\uzzzzb" to "a").
HEXW = 'invalid JSON: "\\u" must be followed by four hex digits at byte %d'

# ---- truncated and malformed JSON ---------------------------------------------------
full = b'{"op":"insert","values":{"build_id":2,"line":"truncated \\"here\\""}}'
for cut in (1, 2, 5, 8, 15, 20, 25, 30, 40, 50, 60, len(full) - 2, len(full) - 1):
    bad("write/build_logs", "~^invalid JSON at byte [0-9]+$", full[:cut])
good("write/build_logs", full)
for p in [b"{", b"}", b"[", b"]", b"{]", b"[}", b'{"values":{"build_id":1,"line":"x"},}',
          b"{'values':{'build_id':1}}", b'{values:{"build_id":1}}', b'{"values" {"build_id":1}}',
          b'{"values":{"build_id":1 "line":"x"}}', b'{"values":{"build_id":NaN}}',
          b'{"values":{"build_id":Infinity}}',
          b'{"values":{"build_id":0x10}}', b'{"values":{"build_id":.5}}',
          b'{"values":{"build_id":1,"line":"bad escape \\q"}}', b'{"values":{"build_id":1,"line":"\\u12"}}',
          b'{"values":{"build_id":tru}}', b'{"values":{"build_id":nul}}', b'  ', b'\n',
          b'{"values":{"build_id":1,"line":"x"}',
          b'/* c */ {"values":{"build_id":1,"line":"x"}}', b'{"values":{"build_id":1,"line":"x"} // c\n}']:
    bad("write/build_logs", HEXW % 32 if b"\\u12" in p else "~^invalid JSON at byte [0-9]+$", p)
# Raw control characters inside a string are not JSON (RFC 8259, section 7).
for p in [b'{"values":{"build_id":1,"line":"tab\tinside"}}', b'{"values":{"build_id":1,"line":"nl\ninside"}}',
          b'{"values":{"build_id":1,"line":"cr\rinside"}}', b'{"values":{"build_id":1,"line":"bell\x07"}}',
          b'{"values":{"build_id":1,"li\x01ne":"x"}}']:
    bad("write/build_logs", "~^invalid JSON: control character 0x[0-9a-f]{2} in a string \\(byte [0-9]+\\); escape it$", p)
bad("write/build_logs", "invalid JSON: unexpected text at byte 36", b'{"values":{"build_id":1,"line":"x"}}}')
bad("write/build_logs", "~^invalid JSON: unexpected text at byte [0-9]+$", b'{"values":{"build_id":1,"line":"x"}} x')
bad("write/build_logs", "~^invalid JSON: unexpected text at byte [0-9]+$",
    b'{"values":{"build_id":1,"line":"x"}}{"values":{"build_id":1,"line":"y"}}')
for p in [b'"just a string"', b"123", b"null", b"true", b"[]", b'[{"values":{"build_id":1,"line":"x"}}]', b"-0.5e3"]:
    bad("write/build_logs", "a request must be a JSON object", p)
bad("write/build_logs", "empty payload: expected a JSON object", b"")
good("write/build_logs", b' \n\t{"values":{"build_id":2,"line":"surrounded by whitespace"}} \r\n')

# ---- deep nesting ------------------------------------------------------------------
for depth in (33, 34, 100, 1000, 20000):
    inner = b"[" * (depth - 2) + b"]" * (depth - 2)
    bad("write/kinds", "nesting too deep (limit 32)", b'{"values":{"a":' + inner + b"}}")
bad("write/kinds", "nesting too deep (limit 32)", b"[" * 20000)
bad("write/kinds", "nesting too deep (limit 32)", b'{"values":{"a":' + b'{"x":' * 40 + b"1" + b"}" * 40 + b"}}")
bad("write", "nesting too deep (limit 32)", b'{"ops":[' + b'{"ops":[' * 40 + b"]}" * 40 + b"]}")
good("write/kinds", b'{"values":{"a":' + b"[" * 30 + b"]" * 30 + b"}}")  # depth exactly 32

# ---- payloads over the limit ----------------------------------------------------------
def sized(n, build_id):
    head = b'{"values":{"build_id":%d,"line":"' % build_id
    tail = b'"}}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


bad("write/build_logs", "payload too large: 262145 bytes (limit 262144)", sized(262145, 3))
p = sized(262144 - len(b'"id":"good-000",'), 3)
good("write/build_logs", p)  # exactly the limit, id included

# ---- huge arrays -----------------------------------------------------------------------
op = b'{"table":"nokey","values":{"x":"o"}}'
bad("write", "too many ops: 1001 (limit 1000)", b'{"ops":[' + b",".join([op] * 1001) + b"]}")
bad("write", "too many ops: 20000 (limit 1000)", b'{"ops":[' + b",".join([b"{}"] * 20000) + b"]}")
good("write", b'{"ops":[' + b",".join([op] * 1000) + b"]}")
big = b"[" + b",".join([b"0"] * 20000) + b"]"
bad("write/kinds", "cannot store TEXT value in INTEGER column kinds.i", b'{"values":{"i":' + big + b"}}")
good("write/kinds", b'{"values":{"t":' + big + b"}}")
bad("write/nokey", 'unknown column "c0" in table "nokey"',
    b'{"values":{' + b",".join(b'"c%d":1' % i for i in range(5000)) + b"}}")
bad("write/nokey", 'duplicate key "x" in values', b'{"values":{' + b",".join([b'"x":1'] * 5000) + b"}}")
bad("write/nokey", 'unknown column "nope" in table "nokey"',
    b'{"op":"upsert","values":{"x":"a"},"on_conflict":[' + b",".join([b'"nope"'] * 5000) + b"]}")
bad("write", "ops[0]: an operation must be a JSON object", b'{"ops":[' + b",".join([b"1"] * 1000) + b"]}")

# ---- numbers beyond 64 bits and beyond 2^53 -----------------------------------------------
for lit in ["18446744073709551616", "-9223372036854775809", "9223372036854775808", "9007199254740993",
            "-9007199254740993", "123456789012345678901234567890", "1" + "0" * 400,
            "99999999999999999999999999999999999999999999999999"]:
    bad("write/kinds", "integer %s at byte 15 is beyond +-2^53 and would lose precision; send it as a string"
        % lit[:40], '{"values":{"i":%s}}' % lit)
bad("write/kinds", "integer 18446744073709551616 at byte 6 is beyond +-2^53 and would lose precision; send it as a string",
    '{"id":18446744073709551616,"values":{"i":1}}')
good("write/kinds", '{"values":{"i":9007199254740992}}')
good("write/kinds", '{"values":{"i":-9007199254740992}}')
good("write/kinds", '{"values":{"i":"4611686018427387903"}}')  # kinds.g = i * 2 must fit
# An integer string outside 64 bits into an INTEGER column would become an approximate REAL.
big = 'column "%s": "%s" is outside the 64-bit integer range of an INTEGER column (SQLite would store an approximate REAL)'
for col, lit in [("i", "18446744073709551616"), ("i", "-9223372036854775809"), ("i", " 0018446744073709551616 "),
                 ("i", "+99999999999999999999999")]:
    bad("write/kinds", big % (col, lit), '{"values":{"%s":"%s"}}' % (col, lit))
bad("write/build_logs", big % ("build_id", "9223372036854775808"),
    '{"values":{"build_id":"9223372036854775808","line":"x"}}')
good("write/build_logs", '{"values":{"build_id":"9223372036854775807","line":"int64 max as a string"}}')
good("write/build_logs", '{"values":{"build_id":"-9223372036854775808","line":"int64 min as a string"}}')
good("write/kinds", '{"values":{"r":1.7976931348623157e308}}')
good("write/kinds", '{"values":{"r":-4.9e-324}}')

# ---- strict RFC 8259 numbers: no leading zero, digits after "." and in the exponent,
# nothing beyond the largest double; a fraction or an exponent makes a REAL -----------
for lit, why in [("-", 'a digit must follow "-"'), ("012", "leading zeros are not allowed"),
                 ("-012", "leading zeros are not allowed"), ("00", "leading zeros are not allowed"),
                 ("1.", 'a digit must follow "."'), ("1.e5", 'a digit must follow "."'),
                 ("-.5", 'a digit must follow "-"'), ("1e", "the exponent needs digits"),
                 ("1E+", "the exponent needs digits"), ("2e-", "the exponent needs digits")]:
    bad("write/kinds", 'invalid JSON: number "%s" at byte 15: %s' % (lit, why), '{"values":{"r":%s}}' % lit)
bad("write/kinds", 'invalid JSON: number "012" at byte 23: leading zeros are not allowed',
    '{"values":{"t":"a","r":012,"i":1}}')
for lit in ["1e999", "-1e999", "1.5E+400", "123456789" * 40 + ".0"]:
    bad("write/kinds", "number %s at byte 15 is out of range: beyond the largest double (about 1.8e308)" % lit[:40],
        '{"values":{"r":%s}}' % lit)
bad("write/kinds", 'duplicate key "a" in an object', '{"values":{"t":{"a":1,"a":2}}}')
bad("write/kinds", 'duplicate key "k" in an object', '{"values":{"t":[{"x":[{"k":1,"k":1}]}]}}')
bad("write/kinds", 'duplicate key "a" in an object', '{"values":{"a":{"a":1,"b":{},"a":2}}}')
good("write/kinds", '{"values":{"r":3.0,"a":-0.0}}')
good("write/kinds", '{"values":{"r":1E2,"a":1e-400}}')
good("write/kinds", '{"values":{"i":0,"r":-0,"a":0.5e1}}')

# ---- SQL, quotes and NUL bytes in table and column names -------------------------------------
for t in ['kinds; DROP TABLE kinds; --', "kinds' OR '1'='1", 'kinds" --', "main.kinds", "temp.kinds",
          "[kinds]", "`kinds`", "kinds ", " kinds", "", "sqlite_master", "sqlite_schema",
          "sqlite_temp_master", "pragma_table_info", "kinds,builds", "kinds)--", "\u043a\u0456nds"]:
    tj = t.replace("\\", "\\\\").replace('"', '\\"')
    msg = 'table "%s" is not writable' if t == "sqlite_schema" else 'unknown table "%s"'
    bad("write", msg % t, '{"table":"%s","values":{"i":1}}' % tj)
for t in ['kinds; DROP TABLE kinds; --', "kinds' OR '1'='1", "main.kinds", "KINDS (i) VALUES (1); --"]:
    bad("write/" + t, 'unknown table "%s"' % t, '{"values":{"i":1}}')
for t in ["mosqlite_applied", "mosqlite_rejected", "MOSQLITE_APPLIED", "Mosqlite_Rejected"]:
    bad("write", 'table "%s" is not writable' % t.lower(), '{"table":"%s","values":{"id":"x","at":1}}' % t)
    bad("write/" + t, 'table "%s" is not writable' % t.lower(), '{"values":{"id":"x","at":1}}')
bad("write", "string contains \\u0000 (byte 15): NUL characters are not supported", b'{"table":"kinds\\u0000x","values":{"i":1}}')
for c in ['i" = 1; --', "i' OR 1=1 --", "i) VALUES (1); DROP TABLE kinds; --", "rowid", "oid", "_rowid_",
          "i ", " i", "", "kinds.i", '"i"', "[i]", "\u0456", "x" * 5000, "*", "i,t", "1"]:
    cj = c.replace("\\", "\\\\").replace('"', '\\"')
    bad("write/kinds", 'unknown column "%s" in table "kinds"' % c[:100], '{"values":{"%s":1}}' % cj)
p = b'{"values":{"i\x00x":1}}'
bad("write/kinds", "payload contains a NUL byte (byte 13)", p)
p = b'{"table":"kinds\x00","values":{"i":1}}'
bad("write", "payload contains a NUL byte (byte 15)", p)
p = b'{"values":{"i":1}}\x00'
bad("write/kinds", "invalid JSON: unexpected text at byte 18", p)
bad("write/kinds", "string contains \\u0000 (byte 13): NUL characters are not supported", b'{"values":{"i\\u0000x":1}}')
bad("write/kinds", "string contains \\u0000 (byte 17): NUL characters are not supported", b'{"values":{"t":"a\\u0000b"}}')
bad("write/kinds", 'column "g" in table "kinds" is generated and cannot be written', '{"values":{"g":2}}')
good("write/kinds", '{"values":{"I":5,"T":"case-insensitive column names"}}')
good("write/KINDS", '{"values":{"t":"case-insensitive table name in the topic"}}')
good("write/kinds", '{"values":{"t":"\'; DROP TABLE kinds; --"}}')
good("write/kinds", '{"values":{"t":"\\" OR 1=1 --"}}')
good("write", '{"table":"Kinds","values":{"t":"x\'y\\"z\\\\w"}}')

# ---- unknown ops -------------------------------------------------------------------------------
for o in ["drop", "INSERT", "Insert", "insert ", "", "replace", "select", "truncate", "merge", "delete_all", "insert;"]:
    bad("write/nokey", 'unknown op "%s" (use insert, upsert, update or delete)' % o,
        '{"op":"%s","values":{"x":"a"}}' % o)
for o in ["1", "null", "true", '["insert"]', '{"insert":1}']:
    bad("write/nokey", '"op" must be a string: insert, upsert, update or delete', '{"op":%s,"values":{"x":"a"}}' % o)
bad("write", "ops[1]: unknown op \"drop\" (use insert, upsert, update or delete)",
    '{"ops":[{"table":"nokey","values":{"x":"a"}},{"op":"drop","table":"nokey"}]}')

# ---- empty and missing where --------------------------------------------------------------------
for o in ("update", "delete"):
    extra = ',"set":{"y":"b"}' if o == "update" else ""
    msg = '%s needs a non-empty "where": a request never %ss a whole table' % (o, o)
    bad("write/nokey", msg, '{"op":"%s"%s,"where":{}}' % (o, extra))
    bad("write/nokey", msg, '{"op":"%s"%s}' % (o, extra))
    for w in ("null", "[]", '"1=1"', "1", "true", '["x"]'):
        bad("write/nokey", '"where" must be an object of column: value', '{"op":"%s"%s,"where":%s}' % (o, extra, w))
    bad("write/nokey", 'unknown column "1" in table "nokey"', '{"op":"%s"%s,"where":{"1":1}}' % (o, extra))
bad("write", 'ops[1]: delete needs a non-empty "where": a request never deletes a whole table',
    '{"ops":[{"table":"nokey","values":{"x":"a"}},{"op":"delete","table":"nokey","where":{}}]}')
good("write/nokey", '{"values":{"x":"del-me","y":"1"}}')
good("write/nokey", '{"op":"update","set":{"y":"2"},"where":{"x":"del-me"}}')
good("write/nokey", '{"op":"delete","where":{"x":"del-me","y":"2"}}')

# ---- type violations in the STRICT table, and other constraints ---------------------------------
for col, val, typ, ctype in [("i", '"abc"', "TEXT", "INTEGER"), ("i", "1.5", "REAL", "INTEGER"),
                             ("i", '{"$base64":"QUJD"}', "BLOB", "INTEGER"), ("i", "[1,2]", "TEXT", "INTEGER"),
                             ("i", '{"a":1}', "TEXT", "INTEGER"), ("i", '"1.5"', "REAL", "INTEGER"),
                             ("i", '""', "TEXT", "INTEGER"), ("r", '"x"', "TEXT", "REAL"),
                             ("r", '{"$base64":"QUJD"}', "BLOB", "REAL"), ("r", "[]", "TEXT", "REAL"),
                             ("t", '{"$base64":"QUJD"}', "BLOB", "TEXT"), ("b", '"text"', "TEXT", "BLOB"),
                             ("b", "1", "INT", "BLOB"), ("b", "2.5", "REAL", "BLOB"), ("b", "true", "INT", "BLOB"),
                             ("b", "{}", "TEXT", "BLOB"), ]:
    bad("write/kinds", "cannot store %s value in %s column kinds.%s" % (typ, ctype, col), '{"values":{"%s":%s}}' % (col, val))
# The INTEGER PRIMARY KEY (rowid alias) gets SQLite's bare "datatype mismatch": rejected,
# but the text does not name the column (reported).
for t, val in [("kinds", '"abc"'), ("kinds", "1.5"), ("build_logs", '"abc"')]:
    bad("write/" + t, "datatype mismatch", '{"values":{"id":%s}}' % val)
good("write/kinds", '{"values":{"i":"42","r":7,"t":12,"b":{"$base64":"AAEC/w=="},"a":{"$base64":""}}}')
good("write/kinds", '{"values":{"i":true,"r":false,"t":null,"b":null,"a":[1,"two",{"3":null}]}}')
bad("write/build_logs", "NOT NULL constraint failed: build_logs.line", '{"values":{"build_id":1}}')
bad("write/build_logs", "NOT NULL constraint failed: build_logs.line", '{"values":{"build_id":1,"line":null}}')
bad("write/builds", "CHECK constraint failed: status IN ('queued', 'running', 'passed', 'failed', 'cancelled', 'lost')",
    '{"values":{"name":"b","status":"bogus"}}')
bad("write/child", "FOREIGN KEY constraint failed", '{"values":{"parent_id":987654321}}')
good("write/parent", '{"values":{"id":77,"name":"p"}}')
good("write/child", '{"values":{"parent_id":77}}')
bad("write/parent", "FOREIGN KEY constraint failed", '{"op":"delete","where":{"id":77}}')
good("write/uniq", '{"values":{"k":"only-once","v":1}}')
bad("write/uniq", "UNIQUE constraint failed: uniq.k", '{"values":{"k":"only-once","v":2}}')
good("write/uniq", '{"op":"upsert","values":{"k":"only-once","v":3},"on_conflict":["k"]}')
bad("write/uniq", 'upsert into "uniq" needs "on_conflict": the table has no declared primary key',
    '{"op":"upsert","values":{"k":"z","v":1}}')
good("write/seq", '{"values":{"producer":1,"n":1}}')
bad("write/seq", "UNIQUE constraint failed: seq.producer, seq.n", '{"values":{"producer":1,"n":1}}')
bad("write", "ops[1]: UNIQUE constraint failed: seq.producer, seq.n",
    '{"ops":[{"table":"seq","values":{"producer":1,"n":2}},{"table":"seq","values":{"producer":1,"n":2}}]}')

# ---- bad $base64 --------------------------------------------------------------------------------
for s in ["!!!!", "A", "AB=", "AB===", "AB==", "QQ=QQ==", "QQ==\\n", " QQ==", "QQ== ", "-_-_", "Zm9v YmFy",
          "====", "QUJD=", "QUJDRA=", "\u00e9\u00e9\u00e9\u00e9"]:
    bad("write/kinds", 'column "b": $base64 is not valid base64', '{"values":{"b":{"$base64":"%s"}}}' % s)
for v in ['{"$base64":1}', '{"$base64":null}', '{"$base64":["QQ=="]}', '{"$base64":"QQ==","x":1}',
          '{"x":1,"$base64":"QQ=="}', '{"$base64":{"$base64":"QQ=="}}', '{"$base64":true}']:
    bad("write/kinds", 'column "b": a blob is {"$base64": "..."} with a string and no other key', '{"values":{"b":%s}}' % v)
good("write/kinds", '{"values":{"b":{"$base64":"QQ"},"t":"unpadded base64"}}')

# ---- duplicate keys -----------------------------------------------------------------------------
bad("write/nokey", 'duplicate key "values" in the request', '{"values":{"x":"a"},"values":{"x":"b"}}')
bad("write/nokey", 'duplicate key "op" in the request', '{"op":"insert","op":"delete","values":{"x":"a"}}')
bad("write/nokey", 'duplicate key "id" in the request', '{"id":"a","id":"b","values":{"x":"a"}}')
bad("write/nokey", 'duplicate key "reply_to" in the request', '{"reply_to":"a","reply_to":"b","values":{"x":"a"}}')
bad("write/nokey", 'duplicate key "x" in values', '{"values":{"x":"a","x":"b"}}')
bad("write/nokey", 'duplicate key "x" in where', '{"op":"delete","where":{"x":"a","x":"b"}}')
bad("write/nokey", 'duplicate key "y" in set', '{"op":"update","set":{"y":"a","y":"b"},"where":{"x":"a"}}')
bad("write/nokey", 'column "x" is given twice in "values"', '{"values":{"x":"a","X":"b"}}')
bad("write", 'ops[0]: duplicate key "table" in the operation', '{"ops":[{"table":"nokey","table":"kinds","values":{"x":"a"}}]}')
bad("write/nokey", 'duplicate key "x" in values',
    '{"values":{' + ",".join('"k%d":1' % i for i in range(30)) + ',"x":1,"x":2}}')
bad("write/kinds", 'column "b": a blob is {"$base64": "..."} with a string and no other key', '{"values":{"b":{"$base64":"QQ==","$base64":"QQ=="}}}')

# ---- wrong types for every field ------------------------------------------------------------------
for v in ["1", "null", "true", "[]", "{}", '""', '"' + "x" * 129 + '"', '"a\\u0001b"', '"caf\u00e9"',
          '"tab\\there"', '"\\u007f"', '["id"]']:
    bad("write/nokey", '"id" must be a string of 1 to 128 printable ASCII characters', '{"id":%s,"values":{"x":"a"}}' % v)
# reply_to: each fault named (a $ topic or a control character would make the broker
# refuse the receipt, and Mosquitto may drop the writer's connection for it).
for v, t in [("1", "a number"), ("null", "null"), ("[]", "an array"), ('["a"]', "an array"),
             ("{}", "an object"), ("false", "a boolean")]:
    bad("write/nokey", '"reply_to" must be a string (a topic name), not %s' % t,
        '{"reply_to":%s,"values":{"x":"a"}}' % v)
bad("write/nokey", '"reply_to" is empty: give the topic for the receipt', '{"reply_to":"","values":{"x":"a"}}')
for v, c, at in [("a/+/b", "+", 2), ("a/#", "#", 2), ("#", "#", 0)]:
    bad("write/nokey", '"reply_to" contains the wildcard "%s" (byte %d): a receipt needs a topic name, not a filter' % (c, at),
        '{"reply_to":"%s","values":{"x":"a"}}' % v)
bad("write/nokey", '"reply_to" is 70000 bytes long: a topic name is at most 65535',
    '{"reply_to":"%s","values":{"x":"a"}}' % ("r" * 70000))
for v, cp, at in [("a\\nb", 0x0A, 1), ("a\\u0001", 0x01, 1), ("tab\\there", 0x09, 3), ("x\\u007f", 0x7F, 1),
                  ("x\u0085y", 0x85, 1), ("r/\x7f", 0x7F, 2)]:
    bad("write/nokey", '"reply_to" contains the control character U+%04X (byte %d), which a topic name may not' % (cp, at),
        '{"reply_to":"%s","values":{"x":"a"}}' % v)
for v in ["$SYS/x", "$SYS/broker/version", "$share/g/t", "$x"]:
    bad("write/nokey", '"reply_to" may not start with "$": the broker keeps $ topics for itself and refuses a '
        "client's publish to them", '{"id":"rt-dollar","reply_to":"%s","values":{"x":"a"}}' % v)
for v in ["mosqlite/status", "mosqlite/write/nokey", "mosqlite/events/nokey", "mosqlite/rejected", "mosqlite"]:
    bad("write/nokey", '"reply_to" may not be one of the writer\'s own topics: use mosqlite/receipts/... or a '
        'topic outside mosqlite/', '{"reply_to":"%s","values":{"x":"a"}}' % v)
for v in ["1", "null", "[]", '{"name":"nokey"}', "true"]:
    bad("write", '"table" must be a string', '{"table":%s,"values":{"x":"a"}}' % v)
for f in ("values",):
    for v in ["1", '"x=1"', "[]", "null", "true", '[{"x":1}]']:
        bad("write/nokey", '"%s" must be an object of column: value' % f, '{"%s":%s}' % (f, v))
for v in ["1", '"y=1"', "[]", "null"]:
    bad("write/nokey", '"set" must be an object of column: value', '{"op":"update","set":%s,"where":{"x":"a"}}' % v)
bad("write/nokey", '"set" must not be empty', '{"op":"update","set":{},"where":{"x":"a"}}')
bad("write/uniq", '"values" must not be empty', '{"op":"upsert","values":{},"on_conflict":["k"]}')
for v in ['"k"', "[]", "{}", "[1]", '[null]', "1", '[["k"]]']:
    bad("write/uniq", '"on_conflict" must be a non-empty array of column names',
        '{"op":"upsert","values":{"k":"a"},"on_conflict":%s}' % v)
bad("write/uniq", '"on_conflict" is only for upsert', '{"values":{"k":"a"},"on_conflict":["k"]}')
for v in ["{}", "[]", '"x"', "null", "1", "true"]:
    bad("write", '"ops" must be a non-empty array of operations', '{"ops":%s}' % v)
for v in ["[1]", "[[]]", '["x"]', "[null]"]:
    bad("write", "ops[0]: an operation must be a JSON object", '{"ops":%s}' % v)

# ---- wrong shapes --------------------------------------------------------------------------------
bad("write/nokey", 'insert takes "values", not "set"', '{"set":{"x":"a"}}')
bad("write/nokey", 'insert takes "values", not "where"', '{"values":{"x":"a"},"where":{"x":"a"}}')
bad("write/nokey", 'insert needs "values"', '{"op":"insert"}')
bad("write/nokey", 'insert needs "values"', '{}')
bad("write/nokey", 'upsert needs "values"', '{"op":"upsert","on_conflict":["x"]}')
bad("write/nokey", 'update takes "set", not "values"', '{"op":"update","values":{"x":"a"},"where":{"x":"a"}}')
bad("write/nokey", 'update needs "set"', '{"op":"update","where":{"x":"a"}}')
bad("write/nokey", 'delete takes only "where"', '{"op":"delete","set":{"x":"a"},"where":{"x":"a"}}')
bad("write/nokey", 'unknown field "valuez"', '{"valuez":{"x":"a"}}')
bad("write/nokey", 'unknown field "sql"', '{"sql":"DROP TABLE nokey","values":{"x":"a"}}')
bad("write/nokey", 'unknown field "Values"', '{"Values":{"x":"a"}}')
# A bare row: its keys are columns, not request fields.
hint = 'unknown field "%s": rows go under "values", e.g. {"values": {...}}'
bad("write/build_logs", hint % "build_id", '{"build_id":7,"line":"bare row"}')
bad("write/build_logs", hint % "line", '{"id":"bare-1","line":"bare row"}')
bad("write", hint % "build_id", '{"table":"build_logs","build_id":7}')
bad("write", "ops[1]: " + hint % "x", '{"ops":[{"table":"nokey","values":{"x":"a"}},{"table":"nokey","x":"a"}]}')
bad("write", 'unknown field "x"', '{"x":"a"}')
bad("write", '"table" is required for a request on the write topic without a table', '{"values":{"x":"a"}}')
bad("write/nokey", '"table" is "kinds" but the topic names table "nokey"', '{"table":"kinds","values":{"x":"a"}}')
bad("write", 'a transaction has only "ops", "id", "reply_to", "after", "at" and "delay_ms"; "table" belongs inside an op',
    '{"table":"nokey","ops":[{"values":{"x":"a"}}]}')
bad("write", "ops[0]: operations do not nest", '{"ops":[{"ops":[{"table":"nokey","values":{"x":"a"}}]}]}')
bad("write", 'ops[0]: "id" belongs to the transaction, not to an op', '{"ops":[{"id":"x","table":"nokey","values":{"x":"a"}}]}')
bad("write", 'ops[0]: "reply_to" belongs to the transaction, not to an op',
    '{"ops":[{"reply_to":"r","table":"nokey","values":{"x":"a"}}]}')
bad("write", 'ops[0]: "table" is required for a request on the write topic without a table', '{"ops":[{"values":{"x":"a"}}]}')
bad("write", 'ops[2]: NOT NULL constraint failed: build_logs.line',
    '{"ops":[{"table":"nokey","values":{"x":"tx-a"}},{"table":"nokey","values":{"x":"tx-b"}},'
    '{"table":"build_logs","values":{"build_id":1}}]}')
good("write", '{"ops":[{"table":"nokey","values":{"x":"tx-ok-1"}},{"table":"nokey","values":{"x":"tx-ok-2"}}]}')
good("write/nokey", '{"values":{}}')

# ---- topics ----------------------------------------------------------------------------------------
for t in ["write/", "write/nokey/extra", "write//nokey", "write/nokey/"]:
    bad(t, 'topic "mosqlite/%s" is not mosqlite/write or mosqlite/write/TABLE' % t, '{"values":{"x":"a"}}')
    bad(t, 'topic "mosqlite/%s" is not mosqlite/write or mosqlite/write/TABLE' % t,
        '{"id":"topic-id","reply_to":"mosqlite/receipts/x","values":{"x":"a"}}')

# ---- \u escapes ---------------------------------------------------------------------------------
# Four hex digits, not a lone surrogate: cJSON would cut "a\uzzzzb" to "a" and refuse
# a lone surrogate with a position only. The publisher refuses in the same words.
bad("write/kinds", HEXW % 17, b'{"values":{"t":"a\\uzzzzb"}}')
bad("write/kinds", HEXW % 16, b'{"values":{"t":"\\u12"}}')
bad("write/kinds", HEXW % 13, b'{"values":{"i\\uzzzz":1}}')
bad("write/kinds", 'invalid JSON: "\\ud800" at byte 16 is a high surrogate without a low one '
    '(\\uDC00 to \\uDFFF) after it', b'{"values":{"t":"\\ud800"}}')
bad("write/kinds", 'invalid JSON: "\\uD800" at byte 16 is a high surrogate without a low one '
    '(\\uDC00 to \\uDFFF) after it', b'{"values":{"t":"\\uD800\\u0041"}}')
bad("write/kinds", 'invalid JSON: "\\udc00" at byte 16 is a low surrogate without a high one '
    '(\\uD800 to \\uDBFF) before it', b'{"values":{"t":"\\udc00x"}}')

# ---- job messages on PREFIX/jobs/QUEUE and PREFIX/jobs/worker --------------------------------
# The writer takes them on its request session with the write requests, in arrival order,
# and keeps their rejections in mosqlite_rejected like a write request's. None is taken:
# the job tables must be as they were (t_hostile.sh counts them). No job exists, so a
# (job, attempt) is stale for want of the job.
JQ = "jobs/hq"
INTR = '"%s" must be an integer from %d to %d'
JMAX = 9007199254740991
NAME = '"%s" must be a string of 1 to 128 printable ASCII characters'
CL = '"op":"claim","id":"hc1","worker":"hw","session":"hs","reply_to":"mosqlite/jobs/to/hw"'
DN = '"op":"done","id":"hd1","job":999999,"attempt":1'
# The bytes and the JSON, read as strictly as a write request's, with the same texts.
for t in (JQ, "jobs/worker"):
    p = b'{"op":"claim","worker":"w\xffx"}'
    bad(t, "payload is not valid UTF-8 (byte %d)" % utf8_pos(p), p)
    p = b'{"op":"beat","worker":"\xed\xa0\x80"}'
    bad(t, "payload is not valid UTF-8 (byte %d)" % utf8_pos(p), p)
    bad(t, "~^invalid JSON at byte [0-9]+$", '{"op":"claim",')
    bad(t, "~^invalid JSON at byte [0-9]+$", "{'op':'claim'}")
    bad(t, "a request must be a JSON object", '["claim"]')
    bad(t, "empty payload: expected a JSON object", b"")
    bad(t, 'duplicate key "op" in the request', '{"op":"claim","op":"done"}')
    bad(t, "nesting too deep (limit 32)", b'{"op":"progress","progress":' + b"[" * 40 + b"]" * 40 + b"}")
    bad(t, "payload contains a NUL byte (byte 7)", b'{"op":"\x00"}')
    p = '{"op":"done","id":"x","job":9007199254740993,"attempt":1}'
    bad(t, "integer 9007199254740993 at byte %d is beyond +-2^53 and would lose precision; send it as a string"
        % p.index("9007"), p)
p = b'{"op":"progress","job":1,"attempt":1,"progress":""}'
bad(JQ, "payload too large: 262145 bytes (limit 262144)", p[:-2] + b"p" * (262145 - len(p)) + p[-2:])
bad(JQ, 'duplicate key "job" in the request', '{%s,"job":1}' % DN)
bad(JQ, 'duplicate key "a" in an object', '{"op":"progress","job":1,"attempt":1,"progress":{"a":1,"a":2}}')
# op
for t, what in ((JQ, "QUEUE (use claim, done, fail, release, progress or enqueue)"),
                ("jobs/worker", "worker (use hello, beat, bye or gone)")):
    bad(t, 'a job message needs "op" (a string)', '{"worker":"hw","session":"hs"}')
    bad(t, 'a job message needs "op" (a string)', '{"op":1,"worker":"hw","session":"hs"}')
    for o in ("grab", "CLAIM", "", "insert"):
        bad(t, 'unknown op "%s" on PREFIX/jobs/%s' % (o, what), '{"op":"%s","worker":"hw","session":"hs"}' % o)
bad("jobs/worker", 'unknown op "claim" on PREFIX/jobs/worker (use hello, beat, bye or gone)', '{%s}' % CL)
# Topics: a queue is one level, not the writer's own names.
bad("jobs/to", 'queue name "to" is reserved (PREFIX/jobs/to is the writer\'s)', '{%s}' % CL)
bad("jobs/events", 'queue name "events" is reserved (PREFIX/jobs/events is the writer\'s)', '{%s}' % CL)
bad("jobs/" + "q" * 129, 'queue name "%s..." is longer than 128 bytes' % ("q" * 40), '{%s}' % CL)
# claim
bad(JQ, 'unknown field "prio" in a claim', '{%s,"prio":1}' % CL)
bad(JQ, 'unknown field "job" in a claim', '{%s,"job":1}' % CL)
bad(JQ, '"id" is required', '{"op":"claim","worker":"hw","session":"hs","reply_to":"mosqlite/jobs/to/hw"}')
for f in ("worker", "session"):
    bad(JQ, '"%s" is required' % f, '{%s}' % CL.replace(',"%s":"h%s"' % (f, f[0] if f == "worker" else "s"), ""))
    for v in ('""', "1", "null", '"%s"' % ("w" * 129), '"a\\tb"', '"caf\u00e9"', '["hw"]'):
        bad(JQ, NAME % f, '{%s}' % CL.replace('"%s":"h%s"' % (f, "w" if f == "worker" else "s"), '"%s":%s' % (f, v)))
for v in ("-1", "3600001", "1.5", '"100"', "null", "1e3"):
    bad(JQ, INTR % ("wait_ms", 0, 3600000), '{%s,"wait_ms":%s}' % (CL, v))
bad(JQ, 'a claim needs "reply_to": where its grant goes', '{"op":"claim","id":"hc1","worker":"hw","session":"hs"}')
for rt in ("mosqlite/receipts/hw", "mosqlite/reply/hw", "mosqlite/jobs/hq", "mosqlite/status", "mosqlite"):
    bad(JQ, 'a claim\'s "reply_to" must be under mosqlite/jobs/to/ or outside mosqlite/',
        '{"op":"claim","id":"hc1","worker":"hw","session":"hs","reply_to":"%s"}' % rt)
for rt, msg in (("$SYS/x", '"reply_to" may not start with "$": the broker keeps $ topics for itself and refuses a '
                 "client's publish to them"),
                ("mosqlite/jobs/to/+", '"reply_to" contains the wildcard "+" (byte 17): a receipt needs a topic name, '
                 "not a filter"),
                ("", '"reply_to" is empty: give the topic for the receipt')):
    bad(JQ, msg, '{"op":"claim","id":"hc1","worker":"hw","session":"hs","reply_to":"%s"}' % rt)
bad(JQ, '"reply_to" must be a string (a topic name), not a number',
    '{"op":"claim","id":"hc1","worker":"hw","session":"hs","reply_to":7}')
for v in ("[]", '"hq"', "{}", "[1]", "null"):
    bad(JQ, '"queues" must be a non-empty array of queue names', '{%s,"queues":%s}' % (CL, v))
bad(JQ, '"queues" names more than 16 queues', '{%s,"queues":[%s]}' % (CL, ",".join('"hq.%d"' % i for i in range(17))))
bad(JQ, 'queue "other" is not in the family of "hq" (a message on PREFIX/jobs/hq may name hq and hq.*)',
    '{%s,"queues":["hq","other"]}' % CL)
bad(JQ, 'queue "hqx" is not in the family of "hq" (a message on PREFIX/jobs/hq may name hq and hq.*)',
    '{%s,"queues":["hqx"]}' % CL)
bad(JQ, 'queue name "hq/a" cannot be one MQTT topic level (it has "/")', '{%s,"queues":["hq/a"]}' % CL)
bad(JQ, "a job's queue needs a name", '{%s,"queues":[""]}' % CL)
# One job, taken: job 1, ready in hq (later rounds: a duplicate). Nothing below may grant,
# end or touch it: a message naming it is stale (no lease) or outside its family.
good(JQ, '{"op":"enqueue","payload":{"hostile":1},"unique_key":"hq-1"}')
STALE = "lease lost: job 1 attempt 1 is no longer yours (ready, attempt 0)"
bad(JQ, STALE, '{"op":"done","id":"hs-done","job":1,"attempt":1,"ops":[{"table":"nokey","values":{"x":"stale"}}]}')
bad(JQ, STALE, '{"op":"fail","id":"hs-fail","job":1,"attempt":1,"exit_code":2}')
bad(JQ, STALE, '{"op":"release","id":"hs-rel","job":1,"attempt":1}')
bad(JQ, STALE, '{"op":"progress","job":1,"attempt":1,"progress":{"pct":1}}')
bad(JQ, "lease lost: job 1 attempt 7 is no longer yours (ready, attempt 0)",
    '{"op":"done","id":"hs-done7","job":1,"attempt":7}')
bad("jobs/other", 'job 1 is in queue "hq": a message on PREFIX/jobs/other may only name jobs of other and other.*',
    '{"op":"done","id":"hs-fam","job":1,"attempt":1}')
bad("jobs/h", 'job 1 is in queue "hq": a message on PREFIX/jobs/h may only name jobs of h and h.*',
    '{"op":"progress","job":1,"attempt":1,"progress":1}')
bad(JQ, 'unique key "hq-1" of queue "hq" is held by job 1 (ready)',
    '{"op":"enqueue","id":"hs-uniq","payload":2,"unique_key":"hq-1","on_duplicate":"reject"}')
# done, fail, release
for op, what in (("done", "a done"), ("fail", "a fail"), ("release", "a release")):
    base = '"op":"%s","id":"h%s1","job":999999,"attempt":1' % (op, op)
    bad(JQ, 'a %s needs an "id": a repeat of it is then answered duplicate' % op,
        '{"op":"%s","job":999999,"attempt":1}' % op)
    bad(JQ, NAME % "id", '{"op":"%s","id":"","job":999999,"attempt":1}' % op)
    for f in ("job", "attempt"):
        bad(JQ, '"%s" is required' % f, '{%s}' % base.replace(',"%s":%s' % (f, "999999" if f == "job" else "1"), ""))
        for v in ("0", "-1", "1.5", '"1"', "null", "9007199254740992", "true"):
            bad(JQ, INTR % (f, 1, JMAX), '{%s}' % base.replace('"%s":%s' % (f, "999999" if f == "job" else "1"),
                                                                 '"%s":%s' % (f, v)))
    bad(JQ, 'unknown field "worker" in %s' % what, '{%s,"worker":"hw"}' % base)
    bad(JQ, "no job 999999", '{%s}' % base)
    bad(JQ, '"claim" must be an object: the next claim', '{%s,"claim":"hc2"}' % base)
    bad(JQ, 'claim: a next claim\'s answer goes to the message\'s "reply_to": "claim" has no "reply_to" of its own',
        '{%s,"reply_to":"mosqlite/jobs/to/hw","claim":{"id":"hc2","worker":"hw","session":"hs",'
        '"reply_to":"mosqlite/jobs/to/hw"}}' % base)
    bad(JQ, 'claim: a claim needs "reply_to": where its grant goes',
        '{%s,"claim":{"id":"hc2","worker":"hw","session":"hs"}}' % base)
    bad(JQ, 'claim: unknown field "op" in a claim',
        '{%s,"reply_to":"mosqlite/jobs/to/hw","claim":{"op":"claim","id":"hc2","worker":"hw","session":"hs"}}' % base)
for v in ("2147483648", "-2147483649", "1.0", '"0"'):
    bad(JQ, INTR % ("exit_code", -2147483648, 2147483647), '{%s,"exit_code":%s}' % (DN, v))
bad(JQ, '"result" is longer than 65536 bytes as JSON', '{%s,"result":"%s"}' % (DN, "r" * 65535))
bad(JQ, 'unknown field "error" in a done', '{%s,"error":"x"}' % DN)
bad(JQ, 'ops[0]: unknown table "nope"', '{%s,"ops":[{"table":"nope","values":{"x":1}}]}' % DN)
bad(JQ, '"ops" must be a non-empty array of operations', '{%s,"ops":[]}' % DN)
for v in ("[]", "{}", '"x"'):
    bad(JQ, '"enqueue" must be a non-empty array of jobs', '{%s,"enqueue":%s}' % (DN, v))
bad(JQ, "enqueue[0]: a job must be a JSON object", '{%s,"enqueue":[1]}' % DN)
bad(JQ, 'enqueue[0]: enqueue needs "queue"', '{%s,"enqueue":[{"payload":1}]}' % DN)
bad(JQ, 'enqueue[1]: unknown field "op" in an enqueue',
    '{%s,"enqueue":[{"queue":"hq","payload":1},{"op":"enqueue","queue":"hq","payload":1}]}' % DN)
bad(JQ, 'enqueue[0]: "follow" needs the message\'s "reply_to"',
    '{%s,"enqueue":[{"queue":"hq","payload":1,"follow":true}]}' % DN)
bad(JQ, '"enqueue" holds more than 64 jobs',
    '{%s,"enqueue":[%s]}' % (DN, ",".join(['{"queue":"hq","payload":1}'] * 65)))
FL = '"op":"fail","id":"hf1","job":999999,"attempt":1'
for v in ('"maybe"', "true", '"POLICY"'):
    bad(JQ, '"retry" must be policy, yes or no', '{%s,"retry":%s}' % (FL, v))
for v in ('"yes"', "1", "null"):
    bad(JQ, '"cancelled" must be true or false', '{%s,"cancelled":%s}' % (FL, v))
bad(JQ, '"error" must be a string of at most 4096 bytes', '{%s,"error":"%s"}' % (FL, "e" * 4097))
bad(JQ, '"error" must be a string of at most 4096 bytes', '{%s,"error":{"code":2}}' % FL)
bad(JQ, INTR % ("retry_in_ms", 0, 86400000 * 365), '{%s,"retry_in_ms":-1}' % FL)
bad(JQ, 'unknown field "result" in a fail', '{%s,"result":1}' % FL)
RL = '"op":"release","id":"hr1","job":999999,"attempt":1'
bad(JQ, INTR % ("delay_ms", 0, 3155760000000), '{%s,"delay_ms":-5}' % RL)
bad(JQ, INTR % ("delay_ms", 0, 3155760000000), '{%s,"delay_ms":3155760000001}' % RL)
bad(JQ, 'unknown field "exit_code" in a release', '{%s,"exit_code":0}' % RL)
# progress
PG = '"op":"progress","job":999999,"attempt":1'
bad(JQ, "no job 999999", '{%s,"progress":{"pct":40}}' % PG)
bad(JQ, '"progress" is required', '{%s}' % PG)
bad(JQ, '"progress" is longer than 4096 bytes as JSON', '{%s,"progress":"%s"}' % (PG, "p" * 4095))
bad(JQ, 'unknown field "id" in a progress', '{"id":"hp1",%s,"progress":1}' % PG)
bad(JQ, INTR % ("attempt", 1, JMAX), '{"op":"progress","job":999999,"attempt":0,"progress":1}')
bad(JQ, '"job" is required', '{"op":"progress","attempt":1,"progress":1}')
# enqueue on the queue's topic
EQ = '"op":"enqueue","id":"he1"'
bad(JQ, 'enqueue needs "payload" (any JSON value; the worker gets it as is)', '{%s}' % EQ)
bad(JQ, 'queue "other" is not in the family of "hq" (a message on PREFIX/jobs/hq may name hq and hq.*)',
    '{%s,"queue":"other","payload":1}' % EQ)
bad(JQ, '"queue" must be a string', '{%s,"queue":1,"payload":1}' % EQ)
bad(JQ, 'unknown field "prio" in an enqueue', '{%s,"payload":1,"prio":1}' % EQ)
bad(JQ, 'unknown field "after" in an enqueue', '{%s,"payload":1,"after":"x"}' % EQ)
for v in ("999", "86400001", "1.5"):
    bad(JQ, INTR % ("lease_ms", 1000, 86400000), '{%s,"payload":1,"lease_ms":%s}' % (EQ, v))
bad(JQ, INTR % ("priority", -1000000000, 1000000000), '{%s,"payload":1,"priority":1000000001}' % EQ)
bad(JQ, '"concurrency_key" needs "concurrency" (and the other way round)', '{%s,"payload":1,"concurrency":2}' % EQ)
bad(JQ, '"on_duplicate" must be ignore, reject or replace', '{%s,"payload":1,"unique_key":"k","on_duplicate":"skip"}' % EQ)
bad(JQ, '"on_duplicate" needs "unique_key"', '{%s,"payload":1,"on_duplicate":"reject"}' % EQ)
bad(JQ, '"follow" must be true or false', '{%s,"payload":1,"follow":"yes"}' % EQ)
bad(JQ, '"follow" needs the request\'s "reply_to"', '{%s,"payload":1,"follow":true}' % EQ)
bad(JQ, 'give "at" or "delay_ms", not both', '{%s,"payload":1,"at":"2099-01-01T00:00:00Z","delay_ms":5}' % EQ)
bad(JQ, '"at" must be a date and time as in RFC 3339, in UTC: "2026-11-24T23:00:00Z"',
    '{%s,"payload":1,"at":"tomorrow"}' % EQ)
bad(JQ, NAME % "id", '{"op":"enqueue","id":1,"payload":1}')
# hello, beat, bye, gone
W = "jobs/worker"
HW = '"worker":"hw","session":"hs"'
bad(W, 'unknown field "cpu" in a hello', '{"op":"hello",%s,"cpu":4}' % HW)
for v in ('"a b"', '""', '"%s"' % ("h" * 256), "1", '"h\\u00e9"'):
    bad(W, '"host" must be a string of 1 to 255 printable ASCII characters, no blank', '{"op":"hello",%s,"host":%s}' % (HW, v))
for v in ("0", "1025", "2.5", '"2"'):
    bad(W, INTR % ("jobs", 1, 1024), '{"op":"hello",%s,"jobs":%s}' % (HW, v))
bad(W, '"queues" names more than 16 queues', '{"op":"hello",%s,"queues":[%s]}' % (HW, ",".join('"q%d"' % i for i in range(17))))
bad(W, '"queues" must be a non-empty array of queue names', '{"op":"hello",%s,"queues":[]}' % HW)
bad(W, 'queue name "worker" is reserved (PREFIX/jobs/worker is the writer\'s)', '{"op":"hello",%s,"queues":["worker"]}' % HW)
bad(W, '"worker" is required', '{"op":"hello","session":"hs"}')
bad(W, '"session" is required', '{"op":"gone","worker":"hw"}')
bad(W, NAME % "session", '{"op":"bye","worker":"hw","session":""}')
bad(W, NAME % "worker", '{"op":"beat","worker":"w\\tx","session":"hs","reply_to":"mosqlite/jobs/to/hw","jobs":[]}')
bad(W, 'unknown field "reply_to" in a bye', '{"op":"bye",%s,"reply_to":"mosqlite/jobs/to/hw"}' % HW)
bad(W, 'unknown field "jobs" in a gone', '{"op":"gone",%s,"jobs":[]}' % HW)
bad(W, 'a beat needs "reply_to": where news of its leases goes', '{"op":"beat",%s,"jobs":[]}' % HW)
BT = '"op":"beat",%s,"reply_to":"mosqlite/jobs/to/hw"' % HW
for v in ('{"job":1,"attempt":1}', "null", '"1.1"'):
    bad(W, '"jobs" must be an array of {"job": N, "attempt": A}', '{%s,"jobs":%s}' % (BT, v))
bad(W, '"jobs" must be an array of {"job": N, "attempt": A}', '{%s}' % BT)
bad(W, 'jobs[0]: a lease is {"job": N, "attempt": A}', '{%s,"jobs":[[1,1]]}' % BT)
bad(W, 'jobs[1]: "attempt" is required', '{%s,"jobs":[{"job":1,"attempt":1},{"job":2}]}' % BT)
bad(W, 'jobs[0]: "job" must be an integer from 1 to %d' % JMAX, '{%s,"jobs":[{"job":0,"attempt":1}]}' % BT)
bad(W, 'jobs[0]: unknown field "lease" in a beat\'s lease', '{%s,"jobs":[{"job":1,"attempt":1,"lease":1}]}' % BT)
bad(W, "a beat names at most 256 leases",
    '{%s,"jobs":[%s]}' % (BT, ",".join('{"job":%d,"attempt":1}' % (i + 1) for i in range(257))))

# Goods spread through the corpus: interleave one after every few bad cases.
fill = 0
out = []
for c in cases:
    out.append(c)
    if c[0] == "bad":
        fill += 1
        if fill % 6 == 0:
            ngood += 1
            p = b'{"id":"good-%03d","values":{"x":"interleaved","y":"%d"}}' % (ngood, fill)
            out.append(("good", "write/nokey", "-", p))


def esc(b):
    r = []
    for ch in b:
        if ch == 0x5C:
            r.append("\\\\")
        elif 0x20 <= ch < 0x7F:
            r.append(chr(ch))
        else:
            r.append("\\x%02x" % ch)
    return "".join(r)


here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "corpus.txt"), "w") as f:
    for kind, topic, expect, payload in out:
        assert "\t" not in expect and "\n" not in expect and "\t" not in topic
        f.write("%s\t%s\t%s\t%s\n" % (kind, topic, expect, esc(payload)))
nb = sum(1 for c in out if c[0] == "bad")
nt = sum(1 for c in out if c[0] == "todo")
print("corpus.txt: %d cases, %d bad, %d good, %d todo" % (len(out), nb, len(out) - nb - nt, nt))
