/* sql.c: building the SQL of an operation, and the statement cache (see sql.h).
 *
 * The cache is an open-addressing hash table keyed by the op's shape, written as
 * int32 words: kind, table, the value columns, the where columns, the conflict
 * columns. When it is half full it is emptied and starts again: a workload with more
 * shapes than that re-prepares, it does not grow without bound. */
#include "sql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 1024          /* power of two */
#define CACHE_MAX   (CACHE_SLOTS / 2)

struct cache_ent {
    uint64_t hash;
    unsigned char *key;           /* NULL for a free slot */
    size_t klen;
    sqlite3_stmt *st;
};

struct sql_cache {
    sqlite3 *h;
    struct cache_ent ent[CACHE_SLOTS];
    int n;
    unsigned char *key;           /* scratch for the key being looked up */
    size_t keycap;
    struct jbuf sql;              /* scratch for building SQL */
    sqlite3_stmt *loose;          /* handed out without a slot (out of memory): finalized when done */
};

static int in_conflict(const struct req_op *op, int col)
{
    int i;

    for (i = 0; i < op->nconflict; i++)
        if (op->conflict[i] == col)
            return 1;
    return 0;
}

/* "a","b" for the given columns of t. */
static void put_columns(struct jbuf *b, const struct table *t, const struct req_val *v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (i)
            jb_putc(b, ',');
        jb_puts(b, t->cols[v[i].col].quoted);
    }
}

/* "c"=excluded."c" */
static void put_excluded(struct jbuf *b, const char *q)
{
    jb_puts(b, q);
    jb_puts(b, "=excluded.");
    jb_puts(b, q);
}

static void build_upsert(struct jbuf *b, const struct req_op *op)
{
    const struct table *t = op->table;
    int i, nset = 0;

    jb_puts(b, " ON CONFLICT (");
    for (i = 0; i < op->nconflict; i++) {
        if (i)
            jb_putc(b, ',');
        jb_puts(b, t->cols[op->conflict[i]].quoted);
    }
    jb_puts(b, ") DO UPDATE SET ");
    for (i = 0; i < op->nvals; i++) {
        if (in_conflict(op, op->vals[i].col))
            continue;
        if (nset++)
            jb_putc(b, ',');
        put_excluded(b, t->cols[op->vals[i].col].quoted);
    }
    /* Nothing to change: a no-op update, so RETURNING still reports the row. */
    if (!nset)
        put_excluded(b, t->cols[op->conflict[0]].quoted);
}

static void build_insert(struct jbuf *b, const struct req_op *op)
{
    char num[16];
    int i;

    jb_puts(b, "INSERT INTO ");
    jb_puts(b, op->table->quoted);
    if (!op->nvals) {
        jb_puts(b, " DEFAULT VALUES");
    } else {
        jb_puts(b, " (");
        put_columns(b, op->table, op->vals, op->nvals);
        jb_puts(b, ") VALUES (");
        for (i = 0; i < op->nvals; i++) {
            snprintf(num, sizeof num, "%s?%d", i ? "," : "", i + 1);
            jb_puts(b, num);
        }
        jb_putc(b, ')');
    }
    if (op->kind == OP_UPSERT)
        build_upsert(b, op);
}

/* "a"=?1,"b"=?2 (sep ",", op "=") or "a" IS ?3 AND "b" IS ?4: parameters from p on.
 * The next parameter number. */
static int put_params(struct jbuf *b, const struct table *t, const struct req_val *v, int n,
                      const char *sep, const char *op, int p)
{
    char num[16];
    int i;

    for (i = 0; i < n; i++) {
        if (i)
            jb_puts(b, sep);
        jb_puts(b, t->cols[v[i].col].quoted);
        snprintf(num, sizeof num, "%s?%d", op, p++);
        jb_puts(b, num);
    }
    return p;
}

/* UPDATE ... SET or DELETE FROM, then WHERE. */
static void build_update_delete(struct jbuf *b, const struct req_op *op)
{
    int p = 1;

    if (op->kind == OP_UPDATE) {
        jb_puts(b, "UPDATE ");
        jb_puts(b, op->table->quoted);
        jb_puts(b, " SET ");
        p = put_params(b, op->table, op->vals, op->nvals, ",", "=", p);
    } else {
        jb_puts(b, "DELETE FROM ");
        jb_puts(b, op->table->quoted);
    }
    jb_puts(b, " WHERE ");
    put_params(b, op->table, op->where, op->nwhere, " AND ", " IS ", p);
}

int sql_key_count(const struct table *t)
{
    return t->rowid ? 1 : t->npk;
}

/* The key's columns, comma-separated: the rowid (by its INTEGER PRIMARY KEY alias when
 * there is one), or the primary key in key order for a WITHOUT ROWID table. With
 * op " = ?" and sep " AND ": "k1" = ?1 AND "k2" = ?2. */
static void put_key(struct jbuf *b, const struct table *t, const char *sep, int params)
{
    char num[16];
    int k, i, n = sql_key_count(t);

    for (k = 1; k <= n; k++) {
        if (k > 1)
            jb_puts(b, sep);
        if (t->rowid) {
            jb_puts(b, t->rowid_col >= 0 ? t->cols[t->rowid_col].quoted : "rowid");
        } else {
            for (i = 0; i < t->ncols && t->cols[i].pk != k; i++)
                ;
            jb_puts(b, t->cols[i].quoted);
        }
        if (params) {
            snprintf(num, sizeof num, " = ?%d", k);
            jb_puts(b, num);
        }
    }
}

int sql_plain_insert(const struct req_op *op)
{
    return op->kind == OP_INSERT && op->table->rowid;
}

/* The statement, with or without its RETURNING clause. */
static void build(struct jbuf *b, const struct req_op *op, int returning)
{
    jb_reset(b);
    if (op->kind == OP_INSERT || op->kind == OP_UPSERT)
        build_insert(b, op);
    else
        build_update_delete(b, op);
    if (!returning)
        return;
    if (op->kind == OP_DELETE) {
        jb_puts(b, " RETURNING *");
        return;
    }
    jb_puts(b, " RETURNING ");
    put_key(b, op->table, ",", 0);
}

void sql_build(struct jbuf *b, const struct req_op *op)
{
    build(b, op, 1);
}

void sql_build_read(struct jbuf *b, const struct table *t)
{
    jb_reset(b);
    jb_puts(b, "SELECT * FROM ");
    jb_puts(b, t->quoted);
    jb_puts(b, " WHERE ");
    put_key(b, t, " AND ", 1);
}

struct sql_cache *sql_cache_new(sqlite3 *h)
{
    struct sql_cache *c = calloc(1, sizeof *c);

    if (c)
        c->h = h;
    return c;
}

static void cache_clear(struct sql_cache *c)
{
    int i;

    for (i = 0; i < CACHE_SLOTS; i++) {
        sqlite3_finalize(c->ent[i].st);
        free(c->ent[i].key);
        memset(&c->ent[i], 0, sizeof c->ent[i]);
    }
    c->n = 0;
}

void sql_cache_free(struct sql_cache *c)
{
    if (!c)
        return;
    cache_clear(c);
    jb_free(&c->sql);
    free(c->key);
    free(c);
}

int sql_cache_count(const struct sql_cache *c)
{
    return c->n;
}

/* The key of op in c->key: its length in bytes, 0 when out of memory. */
static size_t make_key(struct sql_cache *c, const struct req_op *op)
{
    size_t need = 16 + 4 * ((size_t)op->nvals + (size_t)op->nwhere + (size_t)op->nconflict);
    int32_t *k;
    size_t n = 0;
    int i;

    if (need > c->keycap) {
        unsigned char *p = realloc(c->key, need);
        if (!p)
            return 0;
        c->key = p;
        c->keycap = need;
    }
    k = (int32_t *)(void *)c->key;
    k[n++] = op->kind;
    k[n++] = op->tindex;
    k[n++] = op->nvals;
    for (i = 0; i < op->nvals; i++)
        k[n++] = op->vals[i].col;
    k[n++] = op->nwhere;
    for (i = 0; i < op->nwhere; i++)
        k[n++] = op->where[i].col;
    for (i = 0; i < op->nconflict; i++)
        k[n++] = op->conflict[i];
    return n * sizeof *k;
}

/* FNV-1a. */
static uint64_t hash(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    while (n--)
        h = (h ^ *p++) * 1099511628211ULL;
    return h;
}

sqlite3_stmt *sql_cache_get(struct sql_cache *c, const struct req_op *op, int *rc)
{
    size_t klen = make_key(c, op), slot;
    uint64_t h;
    sqlite3_stmt *st = NULL;

    *rc = SQLITE_NOMEM;
    if (!klen)
        return NULL;
    h = hash(c->key, klen);
    for (slot = h & (CACHE_SLOTS - 1); c->ent[slot].key; slot = (slot + 1) & (CACHE_SLOTS - 1))
        if (c->ent[slot].hash == h && c->ent[slot].klen == klen &&
            !memcmp(c->ent[slot].key, c->key, klen)) {
            *rc = SQLITE_OK;
            return c->ent[slot].st;
        }
    build(&c->sql, op, !sql_plain_insert(op));
    if (c->sql.oom)
        return NULL;
    *rc = sqlite3_prepare_v3(c->h, c->sql.s, (int)c->sql.len, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (*rc != SQLITE_OK)
        return NULL;
    if (c->n >= CACHE_MAX) {
        cache_clear(c);
        slot = h & (CACHE_SLOTS - 1);
    }
    c->ent[slot].key = malloc(klen);
    if (!c->ent[slot].key) {
        c->loose = st;             /* not cached: sql_cache_done finalizes it */
        return st;
    }
    memcpy(c->ent[slot].key, c->key, klen);
    c->ent[slot].klen = klen;
    c->ent[slot].hash = h;
    c->ent[slot].st = st;
    c->n++;
    return st;
}

void sql_cache_done(struct sql_cache *c, sqlite3_stmt *st)
{
    /* Known without a scan of the slots: only the statement that found no room is loose. */
    if (st == c->loose) {
        sqlite3_finalize(st);
        c->loose = NULL;
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}
