/* req.c: request parsing and validation (see req.h): the envelope. Pure: no SQL, no
 * network.
 *
 * Order of checks: the bytes and the JSON as json.c reads them (size, UTF-8, nesting
 * depth, \u0000, numbers, then the parse), then the envelope (id and reply_to first, so even a bad request can be answered), then
 * each operation (req_op.c; the enqueue and cancel_job ops in req_job.c). Duplicate keys
 * in the structural objects are refused: which of two values is meant would be a guess. */
#include "req.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "req_int.h"
#include "util.h"

/* FNV-1a, 64 bits, over n bytes, continuing from h. */
static unsigned long long fnv1a(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n--)
        h = (h ^ *b++) * 1099511628211ULL;
    return h;
}

static int printable_id(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return n >= 1 && n <= 128;
}

/* The control characters MQTT forbids in a topic (U+0001-U+001F, U+007F-U+009F); the
 * broker drops the connection of a client that publishes to such a topic. */
static size_t control_char(const char *s, unsigned *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    for (i = 0; p[i]; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            *cp = p[i];
            return i + 1;
        }
        if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            *cp = p[i + 1];
            return i + 1;
        }
    }
    return 0;
}

int req_reply_check(const char *topic, const char *prefix, char *err, size_t errlen)
{
    size_t len = strlen(topic), n = prefix ? strlen(prefix) : 0, at;
    const char *w, *rest;
    unsigned cp;

    if (!len)
        return util_fail(err, errlen, "\"reply_to\" is empty: give the topic for the receipt");
    if (len > REQ_TOPIC_MAX)
        return util_fail(err, errlen, "\"reply_to\" is %zu bytes long: a topic name is at most %d",
                         len, REQ_TOPIC_MAX);
    if ((w = strpbrk(topic, "+#")))
        return util_fail(err, errlen, "\"reply_to\" contains the wildcard \"%c\" (byte %zu): a receipt "
                         "needs a topic name, not a filter", *w, (size_t)(w - topic));
    if ((at = control_char(topic, &cp)))
        return util_fail(err, errlen, "\"reply_to\" contains the control character U+%04X (byte %zu), "
                         "which a topic name may not", cp, at - 1);
    if (topic[0] == '$')
        return util_fail(err, errlen, "\"reply_to\" may not start with \"$\": the broker keeps $ topics "
                         "for itself and refuses a client's publish to them");
    if (!n || strncmp(topic, prefix, n) || (topic[n] != '/' && topic[n]))
        return 0;                    /* outside the prefix: the broker's ACL decides */
    rest = topic + n;
    if (!strncmp(rest, "/receipts/", 10) || !strncmp(rest, "/reply/", 7) || !strncmp(rest, "/jobs/to/", 9))
        return 0;
    return util_fail(err, errlen, "\"reply_to\" may not be one of the writer's own topics: use "
                     "%s/receipts/... or a topic outside %s/", prefix, prefix);
}

int req_reply_topic_ok(const char *topic, const char *prefix)
{
    char err[8];

    return !req_reply_check(topic, prefix, err, sizeof err);
}

int req_id_ok(const char *s)
{
    return printable_id(s);
}

/* The bytes and the JSON (json.c), as every request path takes them. */
static int parse_json(struct req *r, const struct req_limits *lim, const char *payload, size_t len,
                      const char *what, int *scan_err, char *err, size_t errlen)
{
    return json_parse(&r->root, &r->nums, lim->max_payload, lim->max_depth, payload, len, what,
                      scan_err, err, errlen);
}

static int walk_tree(struct req *r, char *err, size_t errlen)
{
    return json_mark(r->root, &r->nums, err, errlen);
}

/* How often key is a member of obj. */
static int key_count(const cJSON *obj, const char *key)
{
    const cJSON *c;
    int n = 0;

    for (c = obj->child; c; c = c->next)
        n += !strcmp(c->string, key);
    return n;
}

/* The bytes, the JSON and the envelope. id and reply_to are read first, and kept when
 * valid, so that a request rejected for anything else is still answered with its id
 * (a key given twice included, unless it is id or reply_to: which value is meant is a
 * guess). A raw-scan error is reported after the envelope is read, when the JSON still
 * parses (cJSON itself stops at 1000 levels). */
static int parse_envelope(struct req *r, const struct req_limits *lim, const char *payload,
                          size_t len, char *err, size_t errlen)
{
    const cJSON *id, *rt;
    char dup[256] = "", iderr[512] = "", rterr[512] = "";
    int scan_err;

    if (parse_json(r, lim, payload, len, "a request", &scan_err, err, errlen))
        return -1;
    if (json_dup_keys(r->root, "the request", dup, sizeof dup) &&
        (key_count(r->root, "id") > 1 || key_count(r->root, "reply_to") > 1))
        return util_fail(err, errlen, "%s", dup);
    id = cJSON_GetObjectItemCaseSensitive(r->root, "id");
    if (id && (!cJSON_IsString(id) || !printable_id(id->valuestring)))
        util_fail(iderr, sizeof iderr, "\"id\" must be a string of 1 to 128 printable ASCII characters");
    else if (id)
        r->id = id->valuestring;
    rt = cJSON_GetObjectItemCaseSensitive(r->root, "reply_to");
    if (rt && !cJSON_IsString(rt))
        util_fail(rterr, sizeof rterr, "\"reply_to\" must be a string (a topic name), not %s", json_type_name(rt));
    else if (rt && !req_reply_check(rt->valuestring, lim->prefix, rterr, sizeof rterr))
        r->reply_to = rt->valuestring;
    if (dup[0])
        return util_fail(err, errlen, "%s", dup);
    if (scan_err)
        return -1;
    if (iderr[0] || rterr[0])
        return util_fail(err, errlen, "%s", iderr[0] ? iderr : rterr);
    return 0;
}

/* A transaction: {"ops": [op, ...], "id", "reply_to"}, each op parsed as a lone
 * request would be, its error prefixed with ops[i]. */
static int parse_ops(struct req *r, const struct schema *s, const struct req_limits *lim,
                     const char *topic_table, const cJSON *ops, char *err, size_t errlen)
{
    const cJSON *f;

    for (f = r->root->child; f; f = f->next)
        if (strcmp(f->string, "ops") && strcmp(f->string, "id") && strcmp(f->string, "reply_to") &&
            strcmp(f->string, "at") && strcmp(f->string, "delay_ms") && strcmp(f->string, "after"))
            return util_fail(err, errlen, "a transaction has only \"ops\", \"id\", \"reply_to\", "
                        "\"after\", \"at\" and \"delay_ms\"; \"%.100s\" belongs inside an op", f->string);
    return req_op_list(r, s, lim, topic_table, ops, err, errlen);
}

int req_topic(const char *topic, const char *write_topic, const char **table,
              char *err, size_t errlen)
{
    size_t n = strlen(write_topic);
    const char *t;

    *table = NULL;
    if (!strncmp(topic, write_topic, n)) {
        t = topic + n;
        if (!*t)
            return 0;
        if (*t == '/' && t[1] && !strchr(t + 1, '/')) {
            *table = t + 1;
            return 0;
        }
    }
    return util_fail(err, errlen, "topic \"%.200s\" is not %s or %s/TABLE", topic, write_topic,
                     write_topic);
}

/* {"cancel": "ID", "id", "reply_to"}: no ops. */
static int parse_cancel(struct req *r, const cJSON *c, char *err, size_t errlen)
{
    const cJSON *f;

    for (f = r->root->child; f; f = f->next)
        if (strcmp(f->string, "cancel") && strcmp(f->string, "id") && strcmp(f->string, "reply_to"))
            return util_fail(err, errlen, "a cancel has only \"cancel\", \"id\" and \"reply_to\"; "
                             "\"%.100s\" does not belong in it", f->string);
    if (!cJSON_IsString(c) || !printable_id(c->valuestring))
        return util_fail(err, errlen, "\"cancel\" must be the id of a scheduled request: a string "
                         "of 1 to 128 printable ASCII characters");
    r->cancel = c->valuestring;
    return 0;
}

/* "at" (an RFC 3339 date-time) or "delay_ms" (whole milliseconds), not both. */
static int parse_when(struct req *r, char *err, size_t errlen)
{
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(r->root, "at");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(r->root, "delay_ms");

    if (at && delay)
        return util_fail(err, errlen, "give \"at\" or \"delay_ms\", not both");
    if (at && (!cJSON_IsString(at) || util_time_parse(at->valuestring, &r->at_ms)))
        return util_fail(err, errlen, "\"at\" must be a date and time as in RFC 3339, in UTC: "
                         "\"2026-11-24T23:00:00Z\"");
    r->has_at = at != NULL;
    if (delay) {
        double d = cJSON_IsNumber(delay) ? delay->valuedouble : -1;
        if (!(d >= 0 && d <= (double)REQ_DELAY_MAX) || d != floor(d))
            return util_fail(err, errlen, "\"delay_ms\" must be a whole number of milliseconds "
                             "from 0 to %lld", REQ_DELAY_MAX);
        r->delay_ms = (long long)d;
    }
    return 0;
}

/* "after": the id of the request this one must follow: applied only once that one is
 * (batch.c answers "waiting" otherwise). Not with a time: a scheduled request is
 * applied when due, not when another is. */
static int parse_after(struct req *r, char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r->root, "after");

    if (!a)
        return 0;
    if (!cJSON_IsString(a) || !printable_id(a->valuestring))
        return util_fail(err, errlen, "\"after\" must be the id of a request: a string of 1 to 128 "
                         "printable ASCII characters");
    if (r->has_at || r->delay_ms >= 0)
        return util_fail(err, errlen, "give \"after\" or \"at\"/\"delay_ms\", not both: a request "
                         "that follows another is applied when that one is, not at a time");
    if (r->id && !strcmp(r->id, a->valuestring))
        return util_fail(err, errlen, "\"after\" is the request's own id: it would wait for itself");
    r->after = a->valuestring;
    return 0;
}

/* After the ops: "at"/"delay_ms" with enqueues is when the jobs run (the request is
 * applied now, so it may hold nothing else); otherwise a scheduled request, which needs
 * an id. An enqueue's "follow" needs the request's reply_to. */
static int check_when(struct req *r, char *err, size_t errlen)
{
    int i, nenq = 0;

    for (i = 0; i < r->nops; i++)
        if (r->ops[i].kind == OP_ENQUEUE) {
            nenq++;
            if (r->ops[i].enq.follow && !r->reply_to)
                return r->nops > 1 ? util_fail(err, errlen, "ops[%d]: \"follow\" needs the request's "
                                               "\"reply_to\"", i)
                                   : util_fail(err, errlen, "\"follow\" needs the request's \"reply_to\"");
        }
    if (!r->has_at && r->delay_ms < 0)
        return 0;
    if (nenq && nenq < r->nops)
        return util_fail(err, errlen, "\"at\"/\"delay_ms\" with an enqueue schedules the job, not the "
                         "request: send the other ops apart");
    if (nenq) {
        r->jobs_at = 1;
        return 0;
    }
    if (!r->id)
        return util_fail(err, errlen, "a scheduled request needs an \"id\": it is how the request "
                         "is cancelled, and how a retry is told from a new request");
    return 0;
}

int req_parse(struct req *r, const struct schema *s, const struct req_limits *lim,
              const char *topic_table, const char *payload, size_t len, char *err, size_t errlen)
{
    const cJSON *ops, *cancel;
    int i;

    r->root = NULL;
    r->id = r->reply_to = r->cancel = r->after = NULL;
    r->at_ms = r->delay_ms = -1;
    r->has_at = r->jobs_at = 0;
    r->nops = r->nval = r->nint = 0;
    if (parse_envelope(r, lim, payload, len, err, errlen))
        return -1;
    if ((cancel = cJSON_GetObjectItemCaseSensitive(r->root, "cancel")))
        return parse_cancel(r, cancel, err, errlen) || walk_tree(r, err, errlen) ? -1 : 0;
    if (parse_when(r, err, errlen) || parse_after(r, err, errlen))
        return -1;
    ops = cJSON_GetObjectItemCaseSensitive(r->root, "ops");
    if (ops) {
        if (parse_ops(r, s, lim, topic_table, ops, err, errlen))
            return -1;
    } else {
        if (!(r->ops = req_grow(r->ops, &r->opcap, 1, sizeof *r->ops)))
            return util_fail(err, errlen, "out of memory");
        if (req_op_read(r, s, r->root, topic_table, &r->ops[0], err, errlen))
            return -1;
        r->nops = 1;
    }
    if (check_when(r, err, errlen) || walk_tree(r, err, errlen))
        return -1;
    /* Read the enqueues again now that numbers are marked: 1.0 is not an integer. */
    for (i = 0; i < r->nops; i++)
        if (r->ops[i].kind == OP_CANCEL_JOB) {
            char sub[512];
            /* The op's object again, now that numbers are marked: 1.0 is not an id. */
            const cJSON *o = ops ? cJSON_GetArrayItem(ops, i) : r->root;
            if (o && req_cancel_job_read(o, o == r->root, &r->ops[i].job, sub, sizeof sub))
                return o == r->root ? util_fail(err, errlen, "%s", sub)
                                    : util_fail(err, errlen, "ops[%d]: %s", i, sub);
        } else if (r->ops[i].kind == OP_ENQUEUE) {
            const cJSON *o = r->ops[i].enq.obj;
            char sub[512];
            if (req_enqueue_read(o, 1, o == r->root ? 2 : 0, NULL, &r->ops[i].enq, sub, sizeof sub))
                return o == r->root ? util_fail(err, errlen, "%s", sub)
                                    : util_fail(err, errlen, "ops[%d]: %s", i, sub);
        }
    /* valbuf and intbuf are final now: turn the stored offsets into pointers. */
    for (i = 0; i < r->nops; i++) {
        struct req_op *op = &r->ops[i];
        op->vals = op->nvals ? r->valbuf + op->voff : NULL;
        op->where = op->nwhere ? r->valbuf + op->woff : NULL;
        op->conflict = op->nconflict ? r->intbuf + op->coff : NULL;
    }
    return 0;
}

int req_parse_ops(struct req *r, const struct schema *s, const struct req_limits *lim,
                  const cJSON *ops, char *err, size_t errlen)
{
    int i;

    r->root = NULL;
    r->id = r->reply_to = r->cancel = r->after = NULL;
    r->at_ms = r->delay_ms = -1;
    r->has_at = r->jobs_at = 0;
    r->nops = r->nval = r->nint = 0;
    r->hash = 0;
    if (req_op_list(r, s, lim, NULL, ops, err, errlen))
        return -1;
    for (i = 0; i < r->nops; i++) {
        struct req_op *op = &r->ops[i];
        op->vals = op->nvals ? r->valbuf + op->voff : NULL;
        op->where = op->nwhere ? r->valbuf + op->woff : NULL;
        op->conflict = op->nconflict ? r->intbuf + op->coff : NULL;
    }
    return 0;
}

/* The hash of cJSON's own text of item (cJSON_PrintUnformatted), for what hash_value
 * does not write itself. */
static unsigned long long hash_printed(unsigned long long h, const cJSON *item)
{
    char *v = cJSON_PrintUnformatted(item);

    if (v) {
        h = fnv1a(h, v, strlen(v));
        cJSON_free(v);
    }
    return h;
}

/* A string as cJSON prints it: quoted, and as it is when nothing in it is escaped
 * (no '"', '\\' or control character); else cJSON's own text. */
static unsigned long long hash_string(unsigned long long h, const char *s)
{
    const char *p;
    cJSON tmp;

    if (!s)
        return fnv1a(h, "\"\"", 2);
    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            break;
    if (!*p) {
        h = fnv1a(h, "\"", 1);
        h = fnv1a(h, s, (size_t)(p - s));
        return fnv1a(h, "\"", 1);
    }
    memset(&tmp, 0, sizeof tmp);
    tmp.type = cJSON_String;
    tmp.valuestring = (char *)s;
    return hash_printed(h, &tmp);
}

/* The hash of the bytes cJSON_PrintUnformatted(item) gives, without printing them
 * (printing a 1,000-op transaction to hash it was a fifth of the writer's work in
 * bulk): containers, literals, plain strings and whole numbers below 10^15 (which
 * cJSON prints as their digits, "%1.15g" or "%d" alike) are written here; any other
 * number (a fraction, an exponent, -0) and any string with an escape are cJSON's own
 * text. The same hash as before, so ids kept in mosqlite_applied still match. */
static unsigned long long hash_value(unsigned long long h, const cJSON *item)
{
    const cJSON *c;
    char buf[24], *p;
    double d;
    unsigned long long u;

    switch (item->type & 0xFF) {
    case cJSON_False:
        return fnv1a(h, "false", 5);
    case cJSON_True:
        return fnv1a(h, "true", 4);
    case cJSON_NULL:
        return fnv1a(h, "null", 4);
    case cJSON_String:
        return hash_string(h, item->valuestring);
    case cJSON_Number:
        d = item->valuedouble;
        if (d != floor(d) || fabs(d) >= 1e15 || (d == 0 && signbit(d)))
            return hash_printed(h, item);
        p = buf + sizeof buf;
        for (u = (unsigned long long)fabs(d); p == buf + sizeof buf || u; u /= 10)
            *--p = (char)('0' + u % 10);
        if (d < 0)
            *--p = '-';
        return fnv1a(h, p, (size_t)(buf + sizeof buf - p));
    case cJSON_Array:
    case cJSON_Object:
        h = fnv1a(h, (item->type & 0xFF) == cJSON_Array ? "[" : "{", 1);
        for (c = item->child; c; c = c->next) {
            if (c != item->child)
                h = fnv1a(h, ",", 1);
            if ((item->type & 0xFF) == cJSON_Object) {
                h = hash_string(h, c->string);
                h = fnv1a(h, ":", 1);
            }
            h = hash_value(h, c);
        }
        return fnv1a(h, (item->type & 0xFF) == cJSON_Array ? "]" : "}", 1);
    default:
        return hash_printed(h, item);
    }
}

unsigned long long req_hash(const cJSON *root, const char *topic)
{
    unsigned long long h = fnv1a(14695981039346656037ULL, topic, strlen(topic) + 1);
    const cJSON *c;

    /* Summed field by field: the order of the fields does not count either. Each
     * field: its name and NUL, then its value's compact text and NUL. */
    for (c = root->child; c; c = c->next) {
        unsigned long long f;
        if (!strcmp(c->string, "reply_to") || !strcmp(c->string, "after"))
            continue;
        f = fnv1a(14695981039346656037ULL, c->string, strlen(c->string) + 1);
        f = hash_value(f, c);
        h += fnv1a(f, "", 1);
    }
    return h;
}

int req_read(struct req *r, const struct schema *s, const struct req_limits *lim,
             const char *write_topic, const char *topic, const char *payload, size_t len,
             char *err, size_t errlen)
{
    const char *table;
    char scratch[512];

    if (req_topic(topic, write_topic, &table, err, errlen)) {
        /* Still read the envelope, so that the rejection names the id and is sent to
         * reply_to when they are valid. */
        r->root = NULL;
        r->id = r->reply_to = r->cancel = r->after = NULL;
        r->at_ms = r->delay_ms = -1;
        r->has_at = r->jobs_at = 0;
        r->nops = r->nval = r->nint = 0;
        parse_envelope(r, lim, payload, len, scratch, sizeof scratch);
        return -1;
    }
    if (req_parse(r, s, lim, table, payload, len, err, errlen))
        return -1;
    r->hash = r->id ? req_hash(r->root, topic) : 0;
    return 0;
}

void req_clear(struct req *r)
{
    cJSON_Delete(r->root);
    r->root = NULL;
    r->id = r->reply_to = r->cancel = r->after = NULL;
    r->at_ms = r->delay_ms = -1;
    r->has_at = r->jobs_at = 0;
    r->nops = r->nval = r->nint = 0;
}

void req_free(struct req *r)
{
    if (!r)
        return;
    req_clear(r);
    free(r->ops);
    free(r->valbuf);
    free(r->intbuf);
    free(r->seen);
    json_nums_free(&r->nums);
    memset(r, 0, sizeof *r);
}
