/* test_ctl.c: the door for control messages (ctl.c): the strict read of a payload, the
 * one rule for where its answer goes, the error answers' shape; and a snapshot request's
 * own fields (snapshot.c), which come through the same door. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "req.h"
#include "snapshot.h"
#include "unit.h"

static const struct ctl_limits lim = {1024, 8, "mosqlite"};
static struct ctl_msg m;
static char err[512], to[256];

/* ctl_read: "ok" or the error; to is where the answer would go, or "(none)". */
static const char *read_msg(const char *payload, size_t len, const char *resp_topic)
{
    const char *res = ctl_read(&lim, payload, len, resp_topic, &m, err, sizeof err) ? err : "ok";

    snprintf(to, sizeof to, "%s", m.to ? m.to : "(none)");
    return res;
}

#define READ(lit, rt) read_msg(lit, sizeof lit - 1, rt)

static void check_reply_rule(void)
{
    unit_check_str(READ("{\"reply_to\":\"mosqlite/reply/a/1\"}", NULL), "ok", "ctl: reply_to");
    unit_check_str(to, "mosqlite/reply/a/1", "ctl: answered on reply_to");
    unit_check_str(READ("{\"reply_to\":\"r/1\"}", "mosqlite/reply/b"), "ok", "ctl: reply_to and a Response Topic");
    unit_check_str(to, "r/1", "ctl: reply_to comes before the Response Topic");
    unit_check_str(READ("{}", "mosqlite/reply/b"), "ok", "ctl: a Response Topic alone");
    unit_check_str(to, "mosqlite/reply/b", "ctl: answered on the Response Topic");
    unit_check_str(READ("{}", NULL), "ok", "ctl: neither");
    unit_check_str(to, "(none)", "ctl: nowhere to answer");
    unit_check_str(READ("{}", "mosqlite/status"), "ok", "ctl: a Response Topic on the writer's own topics");
    unit_check_str(to, "(none)", "ctl: that Response Topic is not used");
    unit_check_str(READ("{\"reply_to\":\"a/#\"}", "mosqlite/reply/b"),
                   "\"reply_to\" contains the wildcard \"#\" (byte 2): a receipt needs a topic name, not a filter",
                   "ctl: a filter as reply_to refused, with the write path's words");
    unit_check_str(to, "mosqlite/reply/b", "ctl: the refusal goes to the Response Topic");
    unit_check_str(READ("{\"reply_to\":7}", NULL), "\"reply_to\" must be a string (a topic name), not a number",
                   "ctl: reply_to of the wrong type");
    unit_check_str(READ("{\"reply_to\":\"$SYS/x\"}", NULL),
                   "\"reply_to\" may not start with \"$\": the broker keeps $ topics for itself and refuses a client's publish to them",
                   "ctl: a $ topic refused");
    unit_check_str(to, "(none)", "ctl: and not answered there");
    unit_check_str(READ("{\"reply_to\":\"r/a\",\"reply_to\":\"r/b\"}", NULL),
                   "duplicate key \"reply_to\" in the request", "ctl: reply_to given twice refused");
    unit_check_str(to, "(none)", "ctl: and neither of them is answered");
    unit_check_str(READ("{\"reply_to\":\"r/a\\u0000/x\"}", NULL),
                   "string contains \\u0000 (byte 16): NUL characters are not supported",
                   "ctl: \\u0000 in reply_to refused");
    unit_check_str(to, "(none)", "ctl: not answered on the topic cut at the NUL (r/a)");
    unit_check_str(READ("{\"reply_to\":\"r/a\",\"x\":\"\\u0000\"}", NULL),
                   "string contains \\u0000 (byte 23): NUL characters are not supported",
                   "ctl: \\u0000 elsewhere refused");
    unit_check_str(to, "r/a", "ctl: and answered on reply_to");
    unit_check_str(READ("{\"reply_to\":\"r/a\\\\u0000\"}", NULL), "ok", "ctl: an escaped backslash before u0000 is text");
    unit_check_str(to, "r/a\\u0000", "ctl: that topic kept as written");
    unit_check_str(READ("{\"reply_to\":\"r/a\"", NULL), "invalid JSON at byte 16", "ctl: JSON that does not parse");
    unit_check_str(to, "(none)", "ctl: nowhere to answer it but a Response Topic");
    unit_check_str(READ("{\"reply_to\":\"r/a\",\"pad\":\"", NULL), "invalid JSON at byte 24", "ctl: cut short");
    unit_check_str(READ("", "r/b"), "empty payload: expected a JSON object", "ctl: empty");
    unit_check_str(to, "r/b", "ctl: an empty payload answered on the Response Topic");
    unit_check_str(READ("{\"a\":[[[[[[[[[1]]]]]]]]],\"reply_to\":\"r/a\"}", NULL), "nesting too deep (limit 8)",
                   "ctl: the depth limit");
    unit_check_str(to, "r/a", "ctl: answered");
    {
        char big[1100];
        memset(big, ' ', sizeof big);
        memcpy(big, "{\"reply_to\":\"r/a\"}", 18);
        unit_check_str(read_msg(big, sizeof big, NULL), "payload too large: 1100 bytes (limit 1024)",
                       "ctl: the size limit");
        unit_check_str(to, "(none)", "ctl: a payload too large is not read for its reply_to");
    }
}

static void check_answers(void)
{
    struct jbuf b = {0};

    ctl_error_json(&b, "query", NULL, "x");
    unit_check_str(b.s, "{\"query\":null,\"error\":\"x\"}", "ctl: error answer with a key");
    ctl_error_json(&b, NULL, NULL, "a \"b\"");
    unit_check_str(b.s, "{\"error\":\"a \\\"b\\\"\"}", "ctl: error answer without one");
    jb_free(&b);
}

static void check_snapshot(void)
{
    struct snapshot *s = snapshot_new("unused.db", NULL);
    int i, queued = 0;

    READ("{\"reply_to\":\"mosqlite/reply/r1/snapshot\"}", NULL);
    unit_check(!snapshot_request(s, m.root, to, err, sizeof err), "ctl: snapshot request queued");
    READ("{\"reply_to\":\"mosqlite/reply/r1/snapshot\",\"since\":5}", NULL);
    unit_check(snapshot_request(s, m.root, to, err, sizeof err), "ctl: snapshot request with another field refused");
    unit_check_str(err, "unknown field \"since\" (a snapshot request has only \"reply_to\")",
                   "ctl: the snapshot's refusal");
    READ("{\"reply_to\":\"r\"}", NULL);
    for (i = 0; i < 20; i++)
        queued += !snapshot_request(s, m.root, to, err, sizeof err);
    unit_check(queued == 15, "ctl: at most 16 snapshot requests wait (%d more queued)", queued);
    unit_check_str(err, "16 snapshot requests are waiting already: ask again later", "ctl: the 17th refused");
    snapshot_free(s);
    ctl_msg_free(&m);
}

void test_ctl(void)
{
    check_reply_rule();
    check_answers();
    check_snapshot();
}
