/* req_op.c: one operation of a request (see req.h): its fields, its table and the
 * column lists each op takes, an upsert's conflict target, a blob's base64; the list of
 * ops of a transaction. Pure: no SQL, no network. */
#include "req.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "req_int.h"
#include "util.h"

const char *const op_names[] = {"insert", "upsert", "update", "delete", "enqueue", "cancel_job"};

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

void *req_grow(void *p, int *cap, int need, size_t size)
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
    if (!(p = req_grow(r->valbuf, &r->valcap, r->nval + n, sizeof *r->valbuf)))
        return util_fail(err, errlen, "out of memory");
    r->valbuf = p;
    if (!(p = req_grow(r->seen, &r->seencap, t->ncols, 1)))
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
                                          "id", "reply_to", "ops", "at", "delay_ms", "after", NULL};
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
    case OP_CANCEL_JOB:
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
    if (!(p = req_grow(r->intbuf, &r->intcap, r->nint + n, sizeof *r->intbuf)))
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

int req_op_read(struct req *r, const struct schema *s, const cJSON *o, const char *topic_table,
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
            return req_enqueue_read(o, 1, o == r->root ? 2 : 0, NULL, &op->enq, err, errlen);
        }
        if (cJSON_IsString(k) && !strcmp(k->valuestring, "cancel_job")) {
            op->kind = OP_CANCEL_JOB;
            if (topic_table)
                return util_fail(err, errlen, "a cancel_job goes on PREFIX/write, not on a table's topic");
            return req_cancel_job_read(o, o == r->root, &op->job, err, errlen);
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

/* The ops of a transaction, each read as a lone request's would be, its error prefixed
 * with ops[i]. */
int req_op_list(struct req *r, const struct schema *s, const struct req_limits *lim,
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
    if (!(r->ops = req_grow(r->ops, &r->opcap, n, sizeof *r->ops)))
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
            (cJSON_GetObjectItemCaseSensitive(o, "after") && util_fail(sub, sizeof sub, "\"after\" belongs to the transaction, not to an op")) ||
            req_op_read(r, s, o, topic_table, &r->ops[i], sub, sizeof sub))
            return util_fail(err, errlen, "ops[%d]: %s", i, sub);
    }
    r->nops = n;
    return 0;
}
