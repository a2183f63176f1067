/* req.c: request parsing and validation (see req.h). Pure: no SQL, no network.
 *
 * Order of checks: the bytes and the JSON as json.c reads them (size, UTF-8, nesting
 * depth, \u0000, numbers, then the parse), then the envelope (id and reply_to first, so even a bad request can be answered), then
 * each operation. Duplicate keys in the structural objects are refused: which of two
 * values is meant would be a guess. */
#include "req.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

const char *const op_names[] = {"insert", "upsert", "update", "delete", "enqueue"};

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

const char *req_blob_text(const cJSON *v)
{
    if (cJSON_IsObject(v) && v->child && !v->child->next && cJSON_IsString(v->child) &&
        !strcmp(v->child->string, "$base64"))
        return v->child->valuestring;
    return NULL;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long req_base64_decode(const char *in, size_t n, unsigned char *out)
{
    size_t i, o = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0;

    while (n > 0 && in[n - 1] == '=') {
        n--;
        pad++;
    }
    if (pad > 2 || (pad && (n + pad) % 4) || n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out)
                out[o] = (unsigned char)(acc >> bits);
            o++;
        }
    }
    /* Leftover bits must be zero in canonical base64. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

/* The one value shape checked here is a blob: an object with a "$base64" key must be
 * {"$base64": "..."} alone, with valid base64. Any other value is taken as it is: its
 * type against the column is SQLite's to judge (affinity, or a STRICT table's error). */
static int check_blob(const struct table *t, int col, const cJSON *v, char *err, size_t errlen)
{
    const char *cname = t->cols[col].name;

    if (cJSON_IsObject(v)) {
        const cJSON *c;
        for (c = v->child; c; c = c->next)
            if (!strcmp(c->string, "$base64")) {
                const char *b = req_blob_text(v);
                if (!b)
                    return util_fail(err, errlen, "column \"%s\": a blob is {\"$base64\": \"...\"} "
                                "with a string and no other key", cname);
                if (req_base64_decode(b, strlen(b), NULL) < 0)
                    return util_fail(err, errlen, "column \"%s\": $base64 is not valid base64", cname);
                return 0;
            }
    }
    return 0;
}

/* A string into an INTEGER column is converted by SQLite's affinity; an integer
 * string beyond 64 bits would silently become an approximate REAL: refuse it. */
static int check_int_text(const struct table *t, int col, const cJSON *v, char *err, size_t errlen)
{
    static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
    const char *p, *d;
    size_t n;
    int neg = 0;

    if (!t->cols[col].int_affinity || !cJSON_IsString(v))
        return 0;
    for (p = v->valuestring; *p == ' ' || (*p >= '\t' && *p <= '\r'); p++)
        ;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    while (*p == '0' && p[1] >= '0' && p[1] <= '9')
        p++;
    for (d = p; *p >= '0' && *p <= '9'; p++)
        ;
    n = (size_t)(p - d);
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    if (!n || *p)
        return 0;      /* not an integer string: the affinity's business */
    if (n < sizeof max - 1 || (n == sizeof max - 1 && memcmp(d, neg ? min : max, n) <= 0))
        return 0;
    return util_fail(err, errlen, "column \"%s\": \"%.40s\" is outside the 64-bit integer range of an "
                     "INTEGER column (SQLite would store an approximate REAL)", t->cols[col].name,
                     v->valuestring);
}

static void *grow(void *p, int *cap, int need, size_t size)
{
    int c = *cap ? *cap : 8;
    void *n;

    if (need <= *cap)
        return p;
    while (c < need)
        c *= 2;
    n = realloc(p, (size_t)c * size);
    if (n)
        *cap = c;
    return n;
}

/* Read a column -> value object into r->valbuf. */
static int read_columns(struct req *r, const struct table *t, const cJSON *obj, const char *field,
                        int allow_empty, int *off, int *nout, char *err, size_t errlen)
{
    const cJSON *c;
    int n = 0, start;
    void *p;

    if (!cJSON_IsObject(obj))
        return util_fail(err, errlen, "\"%s\" must be an object of column: value", field);
    if (!obj->child && !allow_empty)
        return util_fail(err, errlen, "\"%s\" must not be empty", field);
    if (json_dup_keys(obj, field, err, errlen))
        return -1;
    for (c = obj->child; c; c = c->next)
        n++;
    if (!(p = grow(r->valbuf, &r->valcap, r->nval + n, sizeof *r->valbuf)))
        return util_fail(err, errlen, "out of memory");
    r->valbuf = p;
    if (!(p = grow(r->seen, &r->seencap, t->ncols, 1)))
        return util_fail(err, errlen, "out of memory");
    r->seen = p;
    memset(r->seen, 0, (size_t)t->ncols);
    start = r->nval;
    for (c = obj->child; c; c = c->next) {
        int col = schema_column(t, c->string);
        if (col < 0)
            return util_fail(err, errlen, "unknown column \"%.100s\" in table \"%s\"", c->string, t->name);
        if (t->cols[col].generated && strcmp(field, "where"))
            return util_fail(err, errlen, "column \"%s\" in table \"%s\" is generated and cannot be written",
                        t->cols[col].name, t->name);
        if (r->seen[col])
            return util_fail(err, errlen, "column \"%s\" is given twice in \"%s\"", t->cols[col].name, field);
        r->seen[col] = 1;
        if (check_blob(t, col, c, err, errlen) || check_int_text(t, col, c, err, errlen))
            return -1;
        r->valbuf[r->nval].col = col;
        r->valbuf[r->nval].v = c;
        r->nval++;
    }
    /* Pointers are set once valbuf stops moving (end of req_parse). */
    *off = start;
    *nout = n;
    return 0;
}

/* The fields of one operation object, each NULL when absent. */
struct op_fields {
    const cJSON *op, *table, *values, *set, *where, *conflict;
    const cJSON *unknown;   /* the first field that is none of these */
};

/* Sort the operation's fields out, noting the first unknown one (parse_op refuses it). */
static void op_fields(const cJSON *o, struct op_fields *f)
{
    static const char *const allowed[] = {"op", "table", "values", "set", "where", "on_conflict",
                                          "id", "reply_to", "ops", "at", "delay_ms", NULL};
    const cJSON *c;
    int i;

    memset(f, 0, sizeof *f);
    for (c = o->child; c; c = c->next) {
        for (i = 0; allowed[i] && strcmp(allowed[i], c->string); i++)
            ;
        if (!allowed[i]) {
            if (!f->unknown)
                f->unknown = c;
            continue;
        }
        switch (i) {
        case 0: f->op = c; break;
        case 1: f->table = c; break;
        case 2: f->values = c; break;
        case 3: f->set = c; break;
        case 4: f->where = c; break;
        case 5: f->conflict = c; break;
        }
    }
}

/* The op (insert when absent) and the table: the topic's, or "table" on PREFIX/write. */
static int op_target(const struct schema *s, const struct op_fields *f, const char *topic_table,
                     struct req_op *op, char *err, size_t errlen)
{
    const char *tname;
    int i;

    if (f->op) {
        if (!cJSON_IsString(f->op))
            return util_fail(err, errlen, "\"op\" must be a string: insert, upsert, update or delete");
        for (i = 0; i < 4 && strcmp(op_names[i], f->op->valuestring); i++)
            ;
        if (i == 4)
            return util_fail(err, errlen, "unknown op \"%.100s\" (use insert, upsert, update or delete)",
                        f->op->valuestring);
        op->kind = (enum op_kind)i;
    }
    if (f->table && !cJSON_IsString(f->table))
        return util_fail(err, errlen, "\"table\" must be a string");
    if (topic_table) {
        tname = topic_table;
        if (f->table && sqlite3_stricmp(f->table->valuestring, topic_table))
            return util_fail(err, errlen, "\"table\" is \"%.100s\" but the topic names table \"%.100s\"",
                        f->table->valuestring, topic_table);
    } else {
        if (!f->table)
            return util_fail(err, errlen, "\"table\" is required for a request on the write topic "
                        "without a table");
        tname = f->table->valuestring;
    }
    op->table = schema_table(s, tname);
    if (!op->table)
        return util_fail(err, errlen, "unknown table \"%.100s\"", tname);
    if (!op->table->writable)
        return util_fail(err, errlen, "table \"%s\" is not writable", op->table->name);
    op->tindex = (int)(op->table - s->tables);
    return 0;
}

/* The column lists each op takes: values (insert, upsert), set and where (update),
 * where (delete). */
static int op_columns(struct req *r, const struct op_fields *f, struct req_op *op,
                      char *err, size_t errlen)
{
    switch (op->kind) {
    case OP_INSERT:
    case OP_UPSERT:
        if (f->set || f->where)
            return util_fail(err, errlen, "%s takes \"values\", not \"%s\"", op_names[op->kind],
                        f->set ? "set" : "where");
        if (!f->values)
            return util_fail(err, errlen, "%s needs \"values\"", op_names[op->kind]);
        return read_columns(r, op->table, f->values, "values", op->kind == OP_INSERT, &op->voff,
                            &op->nvals, err, errlen);
    case OP_UPDATE:
        if (f->values)
            return util_fail(err, errlen, "update takes \"set\", not \"values\"");
        if (!f->set)
            return util_fail(err, errlen, "update needs \"set\"");
        if (read_columns(r, op->table, f->set, "set", 0, &op->voff, &op->nvals, err, errlen))
            return -1;
        /* fall through */
    case OP_DELETE:
        if (op->kind == OP_DELETE && (f->values || f->set))
            return util_fail(err, errlen, "delete takes only \"where\"");
        if (!f->where || (cJSON_IsObject(f->where) && !f->where->child))
            return util_fail(err, errlen, "%s needs a non-empty \"where\": a request never %ss a whole table",
                        op_names[op->kind], op_names[op->kind]);
        return read_columns(r, op->table, f->where, "where", 0, &op->woff, &op->nwhere, err, errlen);
    case OP_ENQUEUE:
        break;
    }
    return 0;
}

/* An upsert's conflict target: the columns named in "on_conflict", else the table's
 * declared primary key, in key order. */
static int op_conflict(struct req *r, const cJSON *conf, struct req_op *op, char *err, size_t errlen)
{
    const struct table *t = op->table;
    const cJSON *c;
    int n = 0, i;
    void *p;

    if (conf) {
        if (!cJSON_IsArray(conf) || !conf->child)
            return util_fail(err, errlen, "\"on_conflict\" must be a non-empty array of column names");
        for (c = conf->child; c; c = c->next)
            n++;
    } else if (!(n = t->npk)) {
        return util_fail(err, errlen, "upsert into \"%s\" needs \"on_conflict\": the table has "
                         "no declared primary key", t->name);
    }
    if (!(p = grow(r->intbuf, &r->intcap, r->nint + n, sizeof *r->intbuf)))
        return util_fail(err, errlen, "out of memory");
    r->intbuf = p;
    op->coff = r->nint;
    if (!conf) {
        for (i = 0; i < t->ncols; i++)
            if (t->cols[i].pk)
                r->intbuf[r->nint + t->cols[i].pk - 1] = i;
        r->nint += n;
    }
    for (c = conf ? conf->child : NULL; c; c = c->next) {
        int col;
        if (!cJSON_IsString(c))
            return util_fail(err, errlen, "\"on_conflict\" must be a non-empty array of column names");
        col = schema_column(t, c->valuestring);
        if (col < 0)
            return util_fail(err, errlen, "unknown column \"%.100s\" in table \"%s\"",
                             c->valuestring, t->name);
        r->intbuf[r->nint++] = col;
    }
    op->nconflict = n;
    return 0;
}


int req_id_ok(const char *s)
{
    return printable_id(s);
}

int req_queue_check(const char *q, char *err, size_t errlen)
{
    const unsigned char *p;
    size_t n = strlen(q);

    if (!n)
        return util_fail(err, errlen, "a job's queue needs a name");
    if (n > REQ_QUEUE_MAX)
        return util_fail(err, errlen, "queue name \"%.40s...\" is longer than %d bytes", q, REQ_QUEUE_MAX);
    for (p = (const unsigned char *)q; *p; p++) {
        if (*p == '/' || *p == '+' || *p == '#')
            return util_fail(err, errlen, "queue name \"%.100s\" cannot be one MQTT topic level (it has "
                             "\"%c\")", q, *p);
        if (*p < 0x20 || *p == 0x7f)
            return util_fail(err, errlen, "queue name \"%.100s\" cannot be one MQTT topic level (it has "
                             "byte 0x%02x)", q, *p);
    }
    if (!strcmp(q, "worker") || !strcmp(q, "to") || !strcmp(q, "events"))
        return util_fail(err, errlen, "queue name \"%s\" is reserved (PREFIX/jobs/%s is the writer's)", q, q);
    return 0;
}

/* A whole number in [lo, hi] into *out; absent: *out untouched. */
static int enq_int(const cJSON *o, const char *key, long long lo, long long hi, long long *out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d;

    if (!v)
        return 0;
    d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || (v->type & JSON_REAL) || d != floor(d) || d < (double)lo || d > (double)hi)
        return util_fail(err, errlen, "\"%s\" must be an integer from %lld to %lld", key, lo, hi);
    *out = (long long)d;
    return 0;
}

static int enq_key(const cJSON *o, const char *key, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !*v->valuestring || strlen(v->valuestring) > 256)
        return util_fail(err, errlen, "\"%s\" must be a string of 1 to 256 bytes", key);
    *out = v->valuestring;
    return 0;
}

int req_enqueue_read(const cJSON *o, int with_op, int envelope, const char *default_queue,
                     struct req_enqueue *e, char *err, size_t errlen)
{
    static const char *const fields[] = {
        "op", "queue", "payload", "priority", "unique_key", "on_duplicate", "concurrency_key",
        "concurrency", "max_attempts", "max_lost", "backoff_ms", "backoff_cap_ms", "jitter_pct",
        "lease_ms", "timeout_ms", "follow", NULL};
    static const char *const env[] = {"id", "reply_to", "at", "delay_ms", NULL};
    const cJSON *c, *v;
    int i;

    memset(e, 0, sizeof *e);
    e->obj = o;
    e->max_attempts = e->max_lost = e->backoff_ms = e->backoff_cap_ms = e->jitter_pct = -1;
    e->lease_ms = e->timeout_ms = -1;
    for (c = o->child; c; c = c->next) {
        for (i = with_op ? 0 : 1; fields[i] && strcmp(fields[i], c->string); i++)
            ;
        if (fields[i])
            continue;
        for (i = 0; envelope && env[i] && strcmp(env[i], c->string); i++)
            ;
        if (!envelope || !env[i])
            return util_fail(err, errlen, "unknown field \"%.100s\" in an enqueue", c->string);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "queue");
    if (!v && !default_queue)
        return util_fail(err, errlen, "enqueue needs \"queue\"");
    if (v && !cJSON_IsString(v))
        return util_fail(err, errlen, "\"queue\" must be a string");
    e->queue = v ? v->valuestring : default_queue;
    if (req_queue_check(e->queue, err, errlen))
        return -1;
    if (!(e->payload = cJSON_GetObjectItemCaseSensitive(o, "payload")))
        return util_fail(err, errlen, "enqueue needs \"payload\" (any JSON value; the worker gets it as is)");
    if (enq_int(o, "priority", -1000000000, 1000000000, &e->priority, err, errlen) ||
        enq_key(o, "unique_key", &e->unique_key, err, errlen) ||
        enq_key(o, "concurrency_key", &e->conc_key, err, errlen) ||
        enq_int(o, "concurrency", 1, 1000000, &e->conc_limit, err, errlen) ||
        enq_int(o, "max_attempts", 1, 1000000, &e->max_attempts, err, errlen) ||
        enq_int(o, "max_lost", 1, 1000000, &e->max_lost, err, errlen) ||
        enq_int(o, "backoff_ms", 0, 86400000LL * 365, &e->backoff_ms, err, errlen) ||
        enq_int(o, "backoff_cap_ms", 0, 86400000LL * 365, &e->backoff_cap_ms, err, errlen) ||
        enq_int(o, "jitter_pct", 0, 100, &e->jitter_pct, err, errlen) ||
        enq_int(o, "lease_ms", 1000, 86400000, &e->lease_ms, err, errlen) ||
        enq_int(o, "timeout_ms", 0, 86400000LL * 365, &e->timeout_ms, err, errlen))
        return -1;
    if (!e->conc_key != !e->conc_limit)
        return util_fail(err, errlen, "\"concurrency_key\" needs \"concurrency\" (and the other way round)");
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "on_duplicate"))) {
        static const char *const pol[] = {"ignore", "reject", "replace", NULL};
        for (i = 0; cJSON_IsString(v) && pol[i] && strcmp(pol[i], v->valuestring); i++)
            ;
        if (!cJSON_IsString(v) || !pol[i])
            return util_fail(err, errlen, "\"on_duplicate\" must be ignore, reject or replace");
        if (!e->unique_key)
            return util_fail(err, errlen, "\"on_duplicate\" needs \"unique_key\"");
        e->on_duplicate = i;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "follow"))) {
        if (!cJSON_IsBool(v))
            return util_fail(err, errlen, "\"follow\" must be true or false");
        e->follow = cJSON_IsTrue(v);
    }
    return 0;
}

static int parse_op(struct req *r, const struct schema *s, const cJSON *o, const char *topic_table,
                    struct req_op *op, char *err, size_t errlen)
{
    struct op_fields f;

    memset(op, 0, sizeof *op);
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "op");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, "enqueue")) {
            op->kind = OP_ENQUEUE;
            if (topic_table)
                return util_fail(err, errlen, "an enqueue goes on PREFIX/write or PREFIX/jobs/QUEUE, "
                                 "not on a table's topic");
            return req_enqueue_read(o, 1, o == r->root, NULL, &op->enq, err, errlen);
        }
    }
    op_fields(o, &f);
    if (f.unknown) {
        /* A bare row ({"build_id": 7, ...}) is a common mistake: say where rows go. */
        char scratch[256];
        if (!op_target(s, &f, topic_table, op, scratch, sizeof scratch) &&
            schema_column(op->table, f.unknown->string) >= 0)
            return util_fail(err, errlen, "unknown field \"%.100s\": rows go under \"values\", "
                             "e.g. {\"values\": {...}}", f.unknown->string);
        return util_fail(err, errlen, "unknown field \"%.100s\"", f.unknown->string);
    }
    if (op_target(s, &f, topic_table, op, err, errlen) || op_columns(r, &f, op, err, errlen))
        return -1;
    if (f.conflict && op->kind != OP_UPSERT)
        return util_fail(err, errlen, "\"on_conflict\" is only for upsert");
    if (op->kind == OP_UPSERT)
        return op_conflict(r, f.conflict, op, err, errlen);
    return 0;
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
static int parse_op_list(struct req *r, const struct schema *s, const struct req_limits *lim,
                         const char *topic_table, const cJSON *ops, char *err, size_t errlen);

static int parse_ops(struct req *r, const struct schema *s, const struct req_limits *lim,
                     const char *topic_table, const cJSON *ops, char *err, size_t errlen)
{
    const cJSON *f;

    for (f = r->root->child; f; f = f->next)
        if (strcmp(f->string, "ops") && strcmp(f->string, "id") && strcmp(f->string, "reply_to") &&
            strcmp(f->string, "at") && strcmp(f->string, "delay_ms"))
            return util_fail(err, errlen, "a transaction has only \"ops\", \"id\", \"reply_to\", "
                        "\"at\" and \"delay_ms\"; \"%.100s\" belongs inside an op", f->string);
    return parse_op_list(r, s, lim, topic_table, ops, err, errlen);
}

static int parse_op_list(struct req *r, const struct schema *s, const struct req_limits *lim,
                         const char *topic_table, const cJSON *ops, char *err, size_t errlen)
{
    const cJSON *o;
    char sub[512];
    int i, n;

    if (!cJSON_IsArray(ops) || !ops->child)
        return util_fail(err, errlen, "\"ops\" must be a non-empty array of operations");
    n = cJSON_GetArraySize(ops);
    if (n > lim->max_ops)
        return util_fail(err, errlen, "too many ops: %d (limit %d)", n, lim->max_ops);
    if (!(r->ops = grow(r->ops, &r->opcap, n, sizeof *r->ops)))
        return util_fail(err, errlen, "out of memory");
    for (i = 0, o = ops->child; o; o = o->next, i++) {
        if (!cJSON_IsObject(o))
            return util_fail(err, errlen, "ops[%d]: an operation must be a JSON object", i);
        if (json_dup_keys(o, "the operation", sub, sizeof sub) ||
            (cJSON_GetObjectItemCaseSensitive(o, "ops") && util_fail(sub, sizeof sub, "operations do not nest")) ||
            (cJSON_GetObjectItemCaseSensitive(o, "id") && util_fail(sub, sizeof sub, "\"id\" belongs to the transaction, not to an op")) ||
            (cJSON_GetObjectItemCaseSensitive(o, "reply_to") && util_fail(sub, sizeof sub, "\"reply_to\" belongs to the transaction, not to an op")) ||
            (cJSON_GetObjectItemCaseSensitive(o, "at") && util_fail(sub, sizeof sub, "\"at\" belongs to the transaction, not to an op")) ||
            (cJSON_GetObjectItemCaseSensitive(o, "delay_ms") && util_fail(sub, sizeof sub, "\"delay_ms\" belongs to the transaction, not to an op")) ||
            parse_op(r, s, o, topic_table, &r->ops[i], sub, sizeof sub))
            return util_fail(err, errlen, "ops[%d]: %s", i, sub);
    }
    r->nops = n;
    return 0;
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
    r->id = r->reply_to = r->cancel = NULL;
    r->at_ms = r->delay_ms = -1;
    r->has_at = r->jobs_at = 0;
    r->nops = r->nval = r->nint = 0;
    if (parse_envelope(r, lim, payload, len, err, errlen))
        return -1;
    if ((cancel = cJSON_GetObjectItemCaseSensitive(r->root, "cancel")))
        return parse_cancel(r, cancel, err, errlen) || walk_tree(r, err, errlen) ? -1 : 0;
    if (parse_when(r, err, errlen))
        return -1;
    ops = cJSON_GetObjectItemCaseSensitive(r->root, "ops");
    if (ops) {
        if (parse_ops(r, s, lim, topic_table, ops, err, errlen))
            return -1;
    } else {
        if (!(r->ops = grow(r->ops, &r->opcap, 1, sizeof *r->ops)))
            return util_fail(err, errlen, "out of memory");
        if (parse_op(r, s, r->root, topic_table, &r->ops[0], err, errlen))
            return -1;
        r->nops = 1;
    }
    if (check_when(r, err, errlen) || walk_tree(r, err, errlen))
        return -1;
    /* Read the enqueues again now that numbers are marked: 1.0 is not an integer. */
    for (i = 0; i < r->nops; i++)
        if (r->ops[i].kind == OP_ENQUEUE) {
            const cJSON *o = r->ops[i].enq.obj;
            char sub[512];
            if (req_enqueue_read(o, 1, o == r->root, NULL, &r->ops[i].enq, sub, sizeof sub))
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
    r->id = r->reply_to = r->cancel = NULL;
    r->at_ms = r->delay_ms = -1;
    r->has_at = r->jobs_at = 0;
    r->nops = r->nval = r->nint = 0;
    r->hash = 0;
    if (parse_op_list(r, s, lim, NULL, ops, err, errlen))
        return -1;
    for (i = 0; i < r->nops; i++) {
        struct req_op *op = &r->ops[i];
        op->vals = op->nvals ? r->valbuf + op->voff : NULL;
        op->where = op->nwhere ? r->valbuf + op->woff : NULL;
        op->conflict = op->nconflict ? r->intbuf + op->coff : NULL;
    }
    return 0;
}

/* What a request asks, for telling a retry from another request with the same id:
 * the topic and every field of the payload but reply_to (a retry may ask for its
 * receipt elsewhere), each in cJSON's compact form, so spacing does not count. */
static unsigned long long request_hash(const struct req *r, const char *topic)
{
    return req_hash(r->root, topic);
}

unsigned long long req_hash(const cJSON *root, const char *topic)
{
    unsigned long long h = fnv1a(14695981039346656037ULL, topic, strlen(topic) + 1);
    const cJSON *c;

    /* Summed field by field: the order of the fields does not count either. */
    for (c = root->child; c; c = c->next) {
        unsigned long long f;
        char *v;
        if (!strcmp(c->string, "reply_to"))
            continue;
        f = fnv1a(14695981039346656037ULL, c->string, strlen(c->string) + 1);
        if ((v = cJSON_PrintUnformatted(c))) {
            f = fnv1a(f, v, strlen(v) + 1);
            cJSON_free(v);
        }
        h += f;
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
        r->id = r->reply_to = r->cancel = NULL;
        r->at_ms = r->delay_ms = -1;
        r->has_at = r->jobs_at = 0;
        r->nops = r->nval = r->nint = 0;
        parse_envelope(r, lim, payload, len, scratch, sizeof scratch);
        return -1;
    }
    if (req_parse(r, s, lim, table, payload, len, err, errlen))
        return -1;
    r->hash = r->id ? request_hash(r, topic) : 0;
    return 0;
}

void req_clear(struct req *r)
{
    cJSON_Delete(r->root);
    r->root = NULL;
    r->id = r->reply_to = r->cancel = NULL;
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
