/* db.c: the read-write connection, the statement cache and applying requests
 * (see db.h).
 *
 * Hardening: SQLITE_DBCONFIG_DEFENSIVE, no ATTACH, and an authorizer that, once the
 * migrations have run, refuses DDL, PRAGMA, ATTACH and writes to internal tables for
 * every statement the request path prepares. Identifiers in SQL come from the schema
 * (already quoted there); values are bound parameters, never text in SQL.
 *
 * Statements are cached by (table, op, the columns named): a producer sending the
 * same shape of request again reuses the prepared statement. */
#include "db.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "utf8.h"

#define CACHE_SLOTS 1024          /* power of two */
#define CACHE_MAX   (CACHE_SLOTS / 2)

struct cache_ent {
    uint64_t hash;
    unsigned char *key;
    size_t klen;
    sqlite3_stmt *st;
};

struct db {
    sqlite3 *h;
    struct schema schema;
    struct db_opts o;
    int trusted;                  /* 1 while the writer runs its own statements */
    struct cache_ent cache[CACHE_SLOTS];
    int ncache;
    unsigned char *key;           /* scratch for cache keys */
    size_t keycap;
    struct jbuf sql;              /* scratch for building SQL */
    sqlite3_stmt *begin, *commit, *rollback, *sp, *sp_release, *sp_rollback;
    sqlite3_stmt *dup_check, *dup_insert, *rej_insert;
    struct jbuf rows;             /* event rows of the open batch */
    struct db_event *ev;
    int nev, capev;
};

int db_is_fault(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_FULL: case SQLITE_IOERR:
    case SQLITE_NOMEM: case SQLITE_CANTOPEN: case SQLITE_READONLY: case SQLITE_CORRUPT:
    case SQLITE_NOTADB: case SQLITE_PROTOCOL: case SQLITE_INTERRUPT: case SQLITE_NOLFS:
        return 1;
    }
    return 0;
}

static int authorize(void *arg, int action, const char *a, const char *b, const char *dbname,
                     const char *trigger)
{
    struct db *db = arg;

    if (db->trusted)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE:
        /* Internal tables are the writer's own; a trigger may still write its tables. */
        if (!trigger && a && (!strncasecmp(a, "mosqlite_", 9) || !strncasecmp(a, "sqlite_", 7)))
            return SQLITE_DENY;
        return SQLITE_OK;
    case SQLITE_READ: case SQLITE_SELECT: case SQLITE_FUNCTION: case SQLITE_SAVEPOINT:
    case SQLITE_TRANSACTION: case SQLITE_RECURSIVE:
        return SQLITE_OK;
    default:
        return SQLITE_DENY;       /* DDL, PRAGMA, ATTACH, DETACH, ANALYZE, VACUUM ... */
    }
}

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        log_error("preparing %s: %s", sql, sqlite3_errmsg(db->h));
    return st;
}

static int mkparent(const char *path)
{
    char *dir = strdup(path), *p;
    int rc = 0;

    if (!dir)
        return -1;
    for (p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) && errno != EEXIST)
                rc = -1;
            *p = '/';
        }
    free(dir);
    return rc;
}

static int exec(struct db *db, const char *sql, char *err, size_t errlen)
{
    char *emsg = NULL;

    if (sqlite3_exec(db->h, sql, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, emsg ? emsg : sqlite3_errmsg(db->h));
        sqlite3_free(emsg);
        return -1;
    }
    return 0;
}

struct db *db_open(const struct db_opts *o, char *err, size_t errlen)
{
    struct db *db = calloc(1, sizeof *db);
    char pragma[128];
    sqlite3_stmt *st;
    int on = 1;

    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->o = *o;
    db->trusted = 1;
    if (mkparent(o->path)) {
        snprintf(err, errlen, "%s: cannot create its directory: %s", o->path, strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(o->path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", o->path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, (int)o->busy_timeout_ms);
    /* WAL: readers never block the writer nor it them. */
    if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcasecmp((const char *)sqlite3_column_text(st, 0), "wal")) {
        snprintf(err, errlen, "%s: cannot use WAL mode: %s", o->path, sqlite3_errmsg(db->h));
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", o->synchronous);
    if (exec(db, pragma, err, errlen) || exec(db, "PRAGMA foreign_keys=ON", err, errlen))
        goto fail;
    if (schema_migrate(db->h, o->schema_dir, err, errlen))
        goto fail;
    if (exec(db,
             "CREATE TABLE IF NOT EXISTS mosqlite_applied ("
             " id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;"
             "CREATE INDEX IF NOT EXISTS mosqlite_applied_at ON mosqlite_applied (at);"
             "CREATE TABLE IF NOT EXISTS mosqlite_rejected ("
             " id INTEGER PRIMARY KEY, at TEXT NOT NULL, topic TEXT NOT NULL, req_id TEXT,"
             " error TEXT NOT NULL, payload)", err, errlen))
        goto fail;
    if (schema_load(db->h, o->tables, &db->schema, err, errlen))
        goto fail;
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on);
    sqlite3_limit(db->h, SQLITE_LIMIT_ATTACHED, 0);
    /* Installing an authorizer expires prepared statements: do it before preparing. */
    sqlite3_set_authorizer(db->h, authorize, db);
    if (!(db->begin = prep(db, "BEGIN IMMEDIATE")) || !(db->commit = prep(db, "COMMIT")) ||
        !(db->rollback = prep(db, "ROLLBACK")) || !(db->sp = prep(db, "SAVEPOINT req")) ||
        !(db->sp_release = prep(db, "RELEASE req")) ||
        !(db->sp_rollback = prep(db, "ROLLBACK TO req")) ||
        !(db->dup_check = prep(db, "SELECT 1 FROM mosqlite_applied WHERE id = ?1")) ||
        !(db->dup_insert = prep(db, "INSERT INTO mosqlite_applied (id, at) VALUES (?1, ?2)")) ||
        !(db->rej_insert = prep(db, "INSERT INTO mosqlite_rejected (at, topic, req_id, error, payload)"
                                    " VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?1, ?2, ?3, ?4)"))) {
        snprintf(err, errlen, "preparing internal statements: %s", sqlite3_errmsg(db->h));
        goto fail;
    }
    db->trusted = 0;
    return db;
fail:
    db_close(db);
    return NULL;
}

static void cache_clear(struct db *db)
{
    int i;

    for (i = 0; i < CACHE_SLOTS; i++) {
        sqlite3_finalize(db->cache[i].st);
        free(db->cache[i].key);
        memset(&db->cache[i], 0, sizeof db->cache[i]);
    }
    db->ncache = 0;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    cache_clear(db);
    sqlite3_finalize(db->begin);
    sqlite3_finalize(db->commit);
    sqlite3_finalize(db->rollback);
    sqlite3_finalize(db->sp);
    sqlite3_finalize(db->sp_release);
    sqlite3_finalize(db->sp_rollback);
    sqlite3_finalize(db->dup_check);
    sqlite3_finalize(db->dup_insert);
    sqlite3_finalize(db->rej_insert);
    if (db->h && sqlite3_close(db->h) != SQLITE_OK)
        log_warn("closing the database: %s", sqlite3_errmsg(db->h));
    schema_free(&db->schema);
    jb_free(&db->sql);
    jb_free(&db->rows);
    free(db->ev);
    free(db->key);
    free(db);
}

const struct schema *db_schema(const struct db *db)
{
    return &db->schema;
}

/* Run a prepared statement that returns no rows. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The same for the writer's own statements on internal tables: if SQLite re-prepares
 * one (after a schema change), the authorizer must let it through. */
static int run_trusted(struct db *db, sqlite3_stmt *st)
{
    int rc;

    db->trusted = 1;
    rc = run(st);
    db->trusted = 0;
    return rc;
}

static int fault(struct db *db, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", sqlite3_errstr(rc));
    if (sqlite3_errcode(db->h) == rc)
        snprintf(err, errlen, "%s", sqlite3_errmsg(db->h));
    return DB_FAULT;
}

int db_begin(struct db *db, char *err, size_t errlen)
{
    int rc;

    db->rows.len = 0;
    db->rows.oom = 0;
    db->nev = 0;
    rc = run(db->begin);
    return rc == SQLITE_OK ? DB_OK : fault(db, rc, err, errlen);
}

int db_commit(struct db *db, char *err, size_t errlen)
{
    int rc = run(db->commit);

    if (rc == SQLITE_OK)
        return DB_OK;
    fault(db, rc, err, errlen);
    db_rollback(db);
    return DB_FAULT;
}

void db_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->h))
        run(db->rollback);
    db->rows.len = 0;
    db->nev = 0;
}

/* The cache key: op, table, and the column lists. */
static size_t make_key(struct db *db, const struct req_op *op)
{
    size_t need = 16 + 4 * ((size_t)op->nvals + (size_t)op->nwhere + (size_t)op->nconflict);
    int32_t *k;
    size_t n = 0;
    int i;

    if (need > db->keycap) {
        unsigned char *p = realloc(db->key, need);
        if (!p)
            return 0;
        db->key = p;
        db->keycap = need;
    }
    k = (int32_t *)(void *)db->key;
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

static uint64_t hash(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    while (n--)
        h = (h ^ *p++) * 1099511628211ULL;
    return h;
}

static int in_conflict(const struct req_op *op, int col)
{
    int i;
    for (i = 0; i < op->nconflict; i++)
        if (op->conflict[i] == col)
            return 1;
    return 0;
}

static void build_sql(struct jbuf *b, const struct req_op *op)
{
    const struct table *t = op->table;
    char num[16];
    int i, p = 1, nset = 0;

    b->len = 0;
    b->oom = 0;
    if (op->kind == OP_INSERT || op->kind == OP_UPSERT) {
        jb_puts(b, "INSERT INTO ");
        jb_puts(b, t->quoted);
        if (!op->nvals) {
            jb_puts(b, " DEFAULT VALUES");
        } else {
            jb_puts(b, " (");
            for (i = 0; i < op->nvals; i++) {
                if (i)
                    jb_putc(b, ',');
                jb_puts(b, t->cols[op->vals[i].col].quoted);
            }
            jb_puts(b, ") VALUES (");
            for (i = 0; i < op->nvals; i++) {
                snprintf(num, sizeof num, "%s?%d", i ? "," : "", p++);
                jb_puts(b, num);
            }
            jb_putc(b, ')');
        }
        if (op->kind == OP_UPSERT) {
            jb_puts(b, " ON CONFLICT (");
            for (i = 0; i < op->nconflict; i++) {
                if (i)
                    jb_putc(b, ',');
                jb_puts(b, t->cols[op->conflict[i]].quoted);
            }
            jb_puts(b, ") DO UPDATE SET ");
            for (i = 0; i < op->nvals; i++) {
                const char *q = t->cols[op->vals[i].col].quoted;
                if (in_conflict(op, op->vals[i].col))
                    continue;
                if (nset++)
                    jb_putc(b, ',');
                jb_puts(b, q);
                jb_puts(b, "=excluded.");
                jb_puts(b, q);
            }
            if (!nset) {
                /* Nothing to change: a no-op update, so RETURNING still reports the row. */
                const char *q = t->cols[op->conflict[0]].quoted;
                jb_puts(b, q);
                jb_puts(b, "=excluded.");
                jb_puts(b, q);
            }
        }
    } else {
        if (op->kind == OP_UPDATE) {
            jb_puts(b, "UPDATE ");
            jb_puts(b, t->quoted);
            jb_puts(b, " SET ");
            for (i = 0; i < op->nvals; i++) {
                snprintf(num, sizeof num, "=?%d", p++);
                if (i)
                    jb_putc(b, ',');
                jb_puts(b, t->cols[op->vals[i].col].quoted);
                jb_puts(b, num);
            }
        } else {
            jb_puts(b, "DELETE FROM ");
            jb_puts(b, t->quoted);
        }
        jb_puts(b, " WHERE ");
        for (i = 0; i < op->nwhere; i++) {
            snprintf(num, sizeof num, " IS ?%d", p++);
            if (i)
                jb_puts(b, " AND ");
            jb_puts(b, t->cols[op->where[i].col].quoted);
            jb_puts(b, num);
        }
    }
    jb_puts(b, " RETURNING *");
}

/* The cached statement for op, preparing it on a miss. SQLite's own error code comes
 * back in *rc when preparing fails (e.g. an on_conflict that matches no index). */
static sqlite3_stmt *stmt_for(struct db *db, const struct req_op *op, int *rc)
{
    size_t klen = make_key(db, op), slot;
    uint64_t h;
    sqlite3_stmt *st = NULL;

    *rc = SQLITE_NOMEM;
    if (!klen)
        return NULL;
    h = hash(db->key, klen);
    for (slot = h & (CACHE_SLOTS - 1); db->cache[slot].key; slot = (slot + 1) & (CACHE_SLOTS - 1))
        if (db->cache[slot].hash == h && db->cache[slot].klen == klen &&
            !memcmp(db->cache[slot].key, db->key, klen)) {
            *rc = SQLITE_OK;
            return db->cache[slot].st;
        }
    build_sql(&db->sql, op);
    if (db->sql.oom)
        return NULL;
    *rc = sqlite3_prepare_v3(db->h, db->sql.s, (int)db->sql.len, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (*rc != SQLITE_OK)
        return NULL;
    if (db->ncache >= CACHE_MAX) {
        cache_clear(db);
        slot = h & (CACHE_SLOTS - 1);
    }
    db->cache[slot].key = malloc(klen);
    if (!db->cache[slot].key)
        return st;                 /* caller finalizes: not cached */
    memcpy(db->cache[slot].key, db->key, klen);
    db->cache[slot].klen = klen;
    db->cache[slot].hash = h;
    db->cache[slot].st = st;
    db->ncache++;
    return st;
}

static int is_cached(const struct db *db, const sqlite3_stmt *st)
{
    size_t i;
    for (i = 0; i < CACHE_SLOTS; i++)
        if (db->cache[i].st == st)
            return 1;
    return 0;
}

int db_bind_json(sqlite3_stmt *st, int i, const cJSON *v)
{
    const char *b64;

    if (cJSON_IsString(v))
        return sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_STATIC);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) <= REQ_MAX_EXACT)
            return sqlite3_bind_int64(st, i, (sqlite3_int64)d);
        return sqlite3_bind_double(st, i, d);
    }
    if (cJSON_IsTrue(v))
        return sqlite3_bind_int(st, i, 1);
    if (cJSON_IsFalse(v))
        return sqlite3_bind_int(st, i, 0);
    if (cJSON_IsNull(v))
        return sqlite3_bind_null(st, i);
    if ((b64 = req_blob_text(v))) {
        size_t n = strlen(b64);
        unsigned char *p = malloc(n / 4 * 3 + 3);
        long len;
        if (!p)
            return SQLITE_NOMEM;
        len = req_base64_decode(b64, n, p);
        return sqlite3_bind_blob64(st, i, p, (sqlite3_uint64)(len < 0 ? 0 : len), free);
    }
    {
        char *json = cJSON_PrintUnformatted(v);
        if (!json)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(st, i, json, -1, cJSON_free);
    }
}

void db_row_json(struct jbuf *b, sqlite3_stmt *st)
{
    int i, n = sqlite3_column_count(st);

    jb_putc(b, '{');
    for (i = 0; i < n; i++) {
        if (i)
            jb_putc(b, ',');
        jb_cstr(b, sqlite3_column_name(st, i));
        jb_putc(b, ':');
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            jb_int(b, sqlite3_column_int64(st, i));
            break;
        case SQLITE_FLOAT:
            jb_double(b, sqlite3_column_double(st, i));
            break;
        case SQLITE_TEXT:
            jb_str(b, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
            break;
        case SQLITE_BLOB:
            jb_base64(b, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
            break;
        default:
            jb_puts(b, "null");
        }
    }
    jb_putc(b, '}');
}

/* The event group rows of (table, kind) go to: the open one when it matches and has
 * room, else a new one. */
static struct db_event *event_for(struct db *db, const struct req_op *op)
{
    struct db_event *e = db->nev ? &db->ev[db->nev - 1] : NULL;

    if (e && e->tindex == op->tindex && e->kind == op->kind && e->nrows < db->o.max_event_rows)
        return e;
    if (db->nev == db->capev) {
        int cap = db->capev ? db->capev * 2 : 16;
        struct db_event *n = realloc(db->ev, (size_t)cap * sizeof *n);
        if (!n)
            return NULL;
        db->ev = n;
        db->capev = cap;
    }
    e = &db->ev[db->nev++];
    e->tindex = op->tindex;
    e->kind = op->kind;
    e->start = e->end = db->rows.len;
    e->nrows = 0;
    e->truncated = 0;
    return e;
}

/* Step a bound statement to the end, collecting its rows as event text. */
static int step_op(struct db *db, sqlite3_stmt *st, const struct req_op *op, long long *rowid)
{
    int before = db->nev, rc;
    struct db_event *e = event_for(db, op);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (op->table->rowid_col >= 0 && (op->kind == OP_INSERT || op->kind == OP_UPSERT))
            *rowid = sqlite3_column_int64(st, op->table->rowid_col);
        if (!e)
            continue;
        if (e->nrows >= db->o.max_event_rows) {
            e->truncated = 1;
            continue;
        }
        if (e->nrows)
            jb_putc(&db->rows, ',');
        db_row_json(&db->rows, st);
        e->nrows++;
        e->end = db->rows.len;
    }
    if (e && db->nev > before && !e->nrows)   /* nothing returned: drop the new group */
        db->nev--;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int db_apply(struct db *db, const struct req *r, long long *changes, long long *rowid,
             char *err, size_t errlen)
{
    int nev = db->nev, i, rc;
    size_t rows_len = db->rows.len;
    struct db_event last;

    if (nev)
        last = db->ev[nev - 1];
    *changes = 0;
    *rowid = -1;
    if ((rc = run(db->sp)) != SQLITE_OK)
        return fault(db, rc, err, errlen);
    if (r->id) {
        sqlite3_bind_text(db->dup_check, 1, r->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(db->dup_check);
        sqlite3_reset(db->dup_check);
        if (rc == SQLITE_ROW) {
            run(db->sp_release);
            return DB_DUP;
        }
        if (rc != SQLITE_DONE)
            goto failed;
    }
    for (i = 0; i < r->nops; i++) {
        const struct req_op *op = &r->ops[i];
        sqlite3_stmt *st = stmt_for(db, op, &rc);
        int j, p = 1;
        if (!st)
            goto failed_op;
        for (j = 0; j < op->nvals && rc == SQLITE_OK; j++)
            rc = db_bind_json(st, p++, op->vals[j].v);
        for (j = 0; j < op->nwhere && rc == SQLITE_OK; j++)
            rc = db_bind_json(st, p++, op->where[j].v);
        if (rc == SQLITE_OK) {
            long long before = sqlite3_last_insert_rowid(db->h);
            rc = step_op(db, st, op, rowid);
            if (rc == SQLITE_OK && *rowid < 0 && op->table->rowid && op->kind != OP_UPDATE &&
                op->kind != OP_DELETE && sqlite3_last_insert_rowid(db->h) != before)
                *rowid = sqlite3_last_insert_rowid(db->h);
            if (rc == SQLITE_OK)
                *changes += sqlite3_changes64(db->h);
        }
        if (rc != SQLITE_OK)
            rc = sqlite3_errcode(db->h) != SQLITE_OK ? sqlite3_extended_errcode(db->h) : rc;
        if (rc != SQLITE_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db->h));
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            if (!is_cached(db, st))
                sqlite3_finalize(st);
            if (db_is_fault(rc))
                goto failed;
            if (r->nops > 1)
                snprintf(err, errlen, "ops[%d]: %s", i, msg);
            else
                snprintf(err, errlen, "%s", msg);
            goto reject;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (!is_cached(db, st))
            sqlite3_finalize(st);
        continue;
failed_op:
        if (db_is_fault(rc))
            goto failed;
        if (r->nops > 1)
            snprintf(err, errlen, "ops[%d]: %s", i, sqlite3_errmsg(db->h));
        else
            snprintf(err, errlen, "%s", sqlite3_errmsg(db->h));
        goto reject;
    }
    if (r->id) {
        sqlite3_bind_text(db->dup_insert, 1, r->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(db->dup_insert, 2, (sqlite3_int64)time(NULL));
        rc = run_trusted(db, db->dup_insert);
        if (rc != SQLITE_OK)
            goto failed;
    }
    if ((rc = run(db->sp_release)) != SQLITE_OK)
        goto failed;
    return DB_OK;

reject:
    if (sqlite3_get_autocommit(db->h)) {
        db->rows.len = 0;
        db->nev = 0;
        return DB_LOST;
    }
    run(db->sp_rollback);
    run(db->sp_release);
    db->nev = nev;
    if (nev)
        db->ev[nev - 1] = last;
    db->rows.len = rows_len;
    return DB_REJECT;
failed:
    fault(db, rc, err, errlen);
    return DB_FAULT;
}

int db_record_rejection(struct db *db, const char *topic, const char *id, const char *error,
                        const char *payload, size_t len, char *err, size_t errlen)
{
    sqlite3_stmt *st = db->rej_insert;
    int rc;

    if (len > 1024) {
        len = 1024;
        /* Do not cut a UTF-8 sequence in two. */
        while (len > 0 && ((unsigned char)payload[len] & 0xC0) == 0x80)
            len--;
    }
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    if (id)
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    if (utf8_check((const unsigned char *)payload, len) == len && !memchr(payload, 0, len))
        sqlite3_bind_text(st, 4, payload, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 4, payload, (int)len, SQLITE_STATIC);
    rc = run_trusted(db, st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_OK ? DB_OK : fault(db, rc, err, errlen);
}

int db_prune(struct db *db, char *err, size_t errlen)
{
    char sql[256];
    char *emsg = NULL;
    int rc;

    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE;"
             "DELETE FROM mosqlite_applied WHERE at < %lld;"
             "DELETE FROM mosqlite_rejected WHERE id <= (SELECT max(id) FROM mosqlite_rejected) - %lld;"
             "COMMIT",
             (long long)time(NULL) - db->o.id_ttl_days * 86400, db->o.rejected_keep);
    db->trusted = 1;
    rc = sqlite3_exec(db->h, sql, NULL, NULL, &emsg);
    db->trusted = 0;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "pruning: %s", emsg ? emsg : sqlite3_errstr(rc));
        sqlite3_free(emsg);
        if (!sqlite3_get_autocommit(db->h))
            run(db->rollback);
        return DB_FAULT;
    }
    return DB_OK;
}

const struct db_event *db_events(const struct db *db, int *n)
{
    *n = db->nev;
    return db->ev;
}

const char *db_event_rows(const struct db *db)
{
    return db->rows.s;
}
