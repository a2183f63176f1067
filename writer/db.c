/* db.c: the read-write connection: opening and hardening it, the batch's
 * transaction, applying one request inside it, and the events its rows make (see
 * db.h). The SQL of an operation and its prepared statements are sql.c's; binding
 * values and writing rows as JSON, val.c's.
 *
 * Hardening: SQLITE_DBCONFIG_DEFENSIVE, no ATTACH, and an authorizer that, once the
 * migrations have run, refuses DDL, PRAGMA, ATTACH and writes to internal tables for
 * every statement the request path prepares. Identifiers in SQL come from the schema
 * (already quoted there); values are bound parameters, never text in SQL. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sql.h"
#include "utf8.h"
#include "util.h"
#include "val.h"

/* Where a request started in the batch's events, to put them back if it is rejected. */
struct ev_mark {
    int nev;
    size_t rows_len;
    struct db_event last;         /* the open group as it was, when nev > 0 */
};

struct db {
    sqlite3 *h;
    struct schema schema;
    struct db_opts o;
    int trusted;                  /* 1 while the writer runs its own statements */
    struct sql_cache *cache;      /* the request path's statements */
    sqlite3_stmt *begin, *commit, *rollback, *sp, *sp_release, *sp_rollback;
    sqlite3_stmt *dup_check, *dup_insert, *rej_insert;
    struct jbuf rows;             /* event rows of the open batch */
    struct db_event *ev;
    int nev, capev;
    int lock_fd;                  /* PATH-writer.lock, held (flock) while open; or -1 */
    sqlite3_stmt **readback;      /* per table: SELECT * by key (sql_build_read), lazily */
    struct ev_mark req_mark;      /* the request between db_req_begin and db_req_end */
    db_op_fn op_fn;               /* ops that are not SQL (db_set_op_hook) */
    void *op_arg;
};

void db_set_op_hook(struct db *db, db_op_fn fn, void *arg)
{
    db->op_fn = fn;
    db->op_arg = arg;
}

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
    case SQLITE_PRAGMA:
        /* Replication: the session extension reads a table's columns (read-only) the
         * first time a request changes it (changes.c). */
        return a && !strcasecmp(a, "table_info") ? SQLITE_OK : SQLITE_DENY;
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

/* One writer per database file: an exclusive flock on PATH-writer.lock, held for the
 * writer's life, holding its pid. flock, not fcntl: SQLite's own fcntl locks on the
 * database are released whenever any descriptor of that file is closed, and a flock
 * on a file of its own cannot be lost that way. The file is never removed (removing
 * it would let a third writer lock a new file while the first still runs). */
static int lock_file(struct db *db, const char *path, char *err, size_t errlen)
{
    char *lp = util_join(path, "-writer.lock");
    char pid[32];
    ssize_t n;
    int fd;

    if (!lp)
        return util_fail(err, errlen, "out of memory");
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        util_fail(err, errlen, "%s: cannot open its lock file %s: %s", path, lp, strerror(errno));
        free(lp);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            util_fail(err, errlen, "database %s is in use by another mosqlite-writer (pid %s, lock "
                      "%s): one writer per database file", path, pid[0] ? pid : "unknown", lp);
        else
            util_fail(err, errlen, "%s: cannot lock %s: %s", path, lp, strerror(e));
        close(fd);
        free(lp);
        return -1;
    }
    free(lp);
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || write(fd, pid, strlen(pid)) < 0)
        log_warn("%s-writer.lock: cannot record the pid: %s", path, strerror(errno));
    db->lock_fd = fd;
    return 0;
}

/* Open or create the file (and its directory), in WAL mode, with the pragmas. */
static int open_file(struct db *db, const struct db_opts *o, char *err, size_t errlen)
{
    char pragma[128];
    sqlite3_stmt *st;

    if (mkparent(o->path)) {
        snprintf(err, errlen, "%s: cannot create its directory: %s", o->path, strerror(errno));
        return -1;
    }
    if (lock_file(db, o->path, err, errlen))
        return -1;
    if (sqlite3_open_v2(o->path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", o->path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        return -1;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, (int)o->busy_timeout_ms);
    /* WAL: readers never block the writer nor it them. */
    if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcasecmp((const char *)sqlite3_column_text(st, 0), "wal")) {
        snprintf(err, errlen, "%s: cannot use WAL mode: %s", o->path, sqlite3_errmsg(db->h));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", o->synchronous);
    return exec(db, pragma, err, errlen) || exec(db, "PRAGMA foreign_keys=ON", err, errlen) ? -1 : 0;
}

/* The writer's own tables: ids applied (for duplicates), rejections kept, scheduled
 * writes. mosqlite_applied keeps each applied id with a hash of its request (topic and
 * payload), to tell a producer's retry (a duplicate) from another request reusing the
 * id (rejected). Files from before the hash get the column; their ids have none and
 * count as duplicates. */
static int create_internal(struct db *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int has_hash;

    if (exec(db, "CREATE TABLE IF NOT EXISTS mosqlite_applied ("
                 " id TEXT PRIMARY KEY, at INTEGER NOT NULL, hash INTEGER) WITHOUT ROWID;", err, errlen))
        return -1;
    has_hash = sqlite3_prepare_v2(db->h, "SELECT hash FROM mosqlite_applied LIMIT 0", -1, &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    if (!has_hash && exec(db, "ALTER TABLE mosqlite_applied ADD COLUMN hash INTEGER", err, errlen))
        return -1;
    return exec(db,
                "CREATE INDEX IF NOT EXISTS mosqlite_applied_at ON mosqlite_applied (at);"
                "CREATE TABLE IF NOT EXISTS mosqlite_rejected ("
                " id INTEGER PRIMARY KEY, at TEXT NOT NULL, topic TEXT NOT NULL, req_id TEXT,"
                " error TEXT NOT NULL, payload);"
                /* Scheduled writes (sched.c), each as received, until applied or cancelled;
                 * seq keeps the order of those due at the same time. */
                "CREATE TABLE IF NOT EXISTS mosqlite_scheduled ("
                " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, due_ms INTEGER NOT NULL,"
                " due TEXT NOT NULL, at TEXT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,"
                " hash INTEGER NOT NULL, resp_topic TEXT, corr BLOB);"
                "CREATE INDEX IF NOT EXISTS mosqlite_scheduled_due ON mosqlite_scheduled (due_ms, seq)",
                err, errlen);
}

/* A writable table's events go to PREFIX/events/TABLE: a name that cannot be one topic
 * level (+, #, / or a control character) would be written but never get events.
 * Refused at start, with what to do. */
static int check_table_names(const struct schema *s, char *err, size_t errlen)
{
    int i;

    for (i = 0; i < s->ntables; i++) {
        const struct table *t = &s->tables[i];
        const unsigned char *p;
        if (!t->writable)
            continue;
        for (p = (const unsigned char *)t->name; *p; p++)
            if (*p == '+' || *p == '#' || *p == '/' || *p < 0x20 || *p == 0x7f)
                break;
        if (*p) {
            char what[16];
            if (*p >= 0x20 && *p != 0x7f)
                snprintf(what, sizeof what, "\"%c\"", *p);
            else
                snprintf(what, sizeof what, "byte 0x%02x", *p);
            return util_fail(err, errlen, "table \"%s\": its name cannot be an MQTT topic level (it "
                             "has %s), so its events could not be published; rename it, or leave "
                             "it out of `tables`", t->name, what);
        }
    }
    return 0;
}

/* From here on the connection runs only what the request path may do (see the top). */
static void harden(struct db *db)
{
    int on = 1;

    sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on);
    sqlite3_limit(db->h, SQLITE_LIMIT_ATTACHED, 0);
    /* Installing an authorizer expires prepared statements: do it before preparing. */
    sqlite3_set_authorizer(db->h, authorize, db);
}

static int prepare_internal(struct db *db, char *err, size_t errlen)
{
    if (!(db->begin = prep(db, "BEGIN IMMEDIATE")) || !(db->commit = prep(db, "COMMIT")) ||
        !(db->rollback = prep(db, "ROLLBACK")) || !(db->sp = prep(db, "SAVEPOINT req")) ||
        !(db->sp_release = prep(db, "RELEASE req")) ||
        !(db->sp_rollback = prep(db, "ROLLBACK TO req")) ||
        !(db->dup_check = prep(db, "SELECT hash IS NULL OR hash = ?2 FROM mosqlite_applied WHERE id = ?1")) ||
        !(db->dup_insert = prep(db, "INSERT INTO mosqlite_applied (id, at, hash) VALUES (?1, ?2, ?3)")) ||
        !(db->rej_insert = prep(db, "INSERT INTO mosqlite_rejected (at, topic, req_id, error, payload)"
                                    " VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?1, ?2, ?3, ?4)"))) {
        snprintf(err, errlen, "preparing internal statements: %s", sqlite3_errmsg(db->h));
        return -1;
    }
    return 0;
}

struct db *db_open(const struct db_opts *o, char *err, size_t errlen)
{
    struct db *db = calloc(1, sizeof *db);

    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->o = *o;
    db->trusted = 1;
    db->lock_fd = -1;
    if (open_file(db, o, err, errlen) || schema_migrate(db->h, o->schema_dir, err, errlen) ||
        create_internal(db, err, errlen) || schema_load(db->h, o->tables, &db->schema, err, errlen))
        goto fail;
    if (check_table_names(&db->schema, err, errlen))
        goto fail;
    harden(db);
    if (prepare_internal(db, err, errlen))
        goto fail;
    if (!(db->cache = sql_cache_new(db->h))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    db->trusted = 0;
    return db;
fail:
    db_close(db);
    return NULL;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    sql_cache_free(db->cache);
    if (db->readback) {
        int i;
        for (i = 0; i < db->schema.ntables; i++)
            sqlite3_finalize(db->readback[i]);
        free(db->readback);
    }
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
    jb_free(&db->rows);
    free(db->ev);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
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

int db_fault(struct db *db, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", sqlite3_errstr(rc));
    if (sqlite3_errcode(db->h) == rc)
        snprintf(err, errlen, "%s", sqlite3_errmsg(db->h));
    return DB_FAULT;
}

int db_own(struct db *db, int rc, const char *what, char *err, size_t errlen)
{
    if ((rc & 0xff) != SQLITE_CONSTRAINT && (rc & 0xff) != SQLITE_TOOBIG)
        return db_fault(db, rc, err, errlen);
    snprintf(err, errlen, "%s: %s", what,
             sqlite3_extended_errcode(db->h) == rc ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    return DB_REJECT;
}

int db_begin(struct db *db, char *err, size_t errlen)
{
    int rc;

    db->rows.len = 0;
    db->rows.oom = 0;
    db->nev = 0;
    rc = run(db->begin);
    return rc == SQLITE_OK ? DB_OK : db_fault(db, rc, err, errlen);
}

int db_commit(struct db *db, char *err, size_t errlen)
{
    int rc = run(db->commit);

    if (rc == SQLITE_OK)
        return DB_OK;
    db_fault(db, rc, err, errlen);
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

/* The statement reading a row of table tindex by its key, prepared on first use. */
static sqlite3_stmt *readback_for(struct db *db, int tindex)
{
    struct jbuf sql = {0};

    if (!db->readback && !(db->readback = calloc((size_t)db->schema.ntables, sizeof *db->readback)))
        return NULL;
    if (!db->readback[tindex]) {
        sql_build_read(&sql, &db->schema.tables[tindex]);
        if (!sql.oom)
            db->readback[tindex] = prep(db, sql.s);
        jb_free(&sql);
    }
    return db->readback[tindex];
}

/* Write one returned row into the events: a deleted row as RETURNING gave it (as it
 * was); any other by its key, read back from the file now that the statement is done
 * (SQLite runs the whole statement, AFTER triggers included, on its first step and
 * then hands out the RETURNING rows), so defaults, generated columns and what
 * triggers set are there. SQLITE_OK or SQLite's code. */
static int event_row(struct db *db, sqlite3_stmt *st, const struct req_op *op, struct db_event *e)
{
    sqlite3_stmt *rb;
    int k, n, rc;

    if (op->kind == OP_DELETE) {
        if (e->nrows++)
            jb_putc(&db->rows, ',');
        val_row_json(&db->rows, st);
        return SQLITE_OK;
    }
    if (!(rb = readback_for(db, op->tindex)))
        return sqlite3_errcode(db->h) != SQLITE_OK ? sqlite3_errcode(db->h) : SQLITE_NOMEM;
    n = sql_key_count(op->table);
    for (k = 0; k < n; k++)
        sqlite3_bind_value(rb, k + 1, sqlite3_column_value(st, k));
    rc = sqlite3_step(rb);
    if (rc == SQLITE_ROW) {             /* else gone already: a trigger deleted it */
        if (e->nrows++)
            jb_putc(&db->rows, ',');
        val_row_json(&db->rows, rb);
    }
    sqlite3_reset(rb);
    sqlite3_clear_bindings(rb);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Step a bound statement to the end, collecting its rows as event text. */
static int step_op(struct db *db, sqlite3_stmt *st, const struct req_op *op, long long *rowid)
{
    int before = db->nev, rc, rrc = SQLITE_OK;
    struct db_event *e = event_for(db, op);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (op->table->rowid && (op->kind == OP_INSERT || op->kind == OP_UPSERT))
            *rowid = sqlite3_column_int64(st, 0);
        if (!e || rrc != SQLITE_OK)
            continue;
        if (e->nrows >= db->o.max_event_rows) {
            e->truncated = 1;
            continue;
        }
        rrc = event_row(db, st, op, e);
        e->end = db->rows.len;
    }
    if (e && db->nev > before && !e->nrows)   /* nothing returned: drop the new group */
        db->nev--;
    if (rc == SQLITE_DONE && rrc != SQLITE_OK)
        return rrc;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run one op of r: its cached statement, its values bound, stepped to the end.
 * SQLITE_OK, or SQLite's code with the rejection text (ops[i]: prefixed in a
 * transaction) in err. */
static int apply_op(struct db *db, const struct req *r, int i, long long *changes,
                    long long *rowid, char *err, size_t errlen)
{
    const struct req_op *op = &r->ops[i];
    int tx = r->nops > 1;
    sqlite3_stmt *st;
    char msg[512];
    int j, p = 1, rc;

    if (!(st = sql_cache_get(db->cache, op, &rc))) {
        if (tx)
            snprintf(err, errlen, "ops[%d]: %s", i, sqlite3_errmsg(db->h));
        else
            snprintf(err, errlen, "%s", sqlite3_errmsg(db->h));
        return rc;
    }
    for (j = 0; j < op->nvals && rc == SQLITE_OK; j++)
        rc = val_bind(st, p++, op->vals[j].v);
    for (j = 0; j < op->nwhere && rc == SQLITE_OK; j++)
        rc = val_bind(st, p++, op->where[j].v);
    if (rc == SQLITE_OK) {
        long long before = sqlite3_last_insert_rowid(db->h);
        rc = step_op(db, st, op, rowid);
        if (rc == SQLITE_OK && *rowid < 0 && op->table->rowid && op->kind != OP_UPDATE &&
            op->kind != OP_DELETE && sqlite3_last_insert_rowid(db->h) != before)
            *rowid = sqlite3_last_insert_rowid(db->h);
        if (rc == SQLITE_OK)
            *changes += sqlite3_changes64(db->h);
    }
    if (rc != SQLITE_OK) {
        rc = sqlite3_errcode(db->h) != SQLITE_OK ? sqlite3_extended_errcode(db->h) : rc;
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(db->h));
        if (tx)
            snprintf(err, errlen, "ops[%d]: %s", i, msg);
        else
            snprintf(err, errlen, "%s", msg);
    }
    sql_cache_done(db->cache, st);
    return rc;
}

/* Undo a rejected request: back to its savepoint and its place in the events, or
 * DB_LOST when SQLite already rolled the whole transaction back. */
static void mark(const struct db *db, struct ev_mark *m)
{
    m->nev = db->nev;
    m->rows_len = db->rows.len;
    if (m->nev)
        m->last = db->ev[m->nev - 1];
}

static int unwind(struct db *db, const struct ev_mark *m)
{
    if (sqlite3_get_autocommit(db->h)) {
        db->rows.len = 0;
        db->nev = 0;
        return DB_LOST;
    }
    run(db->sp_rollback);
    run(db->sp_release);
    db->nev = m->nev;
    if (m->nev)
        db->ev[m->nev - 1] = m->last;
    db->rows.len = m->rows_len;
    return DB_REJECT;
}

int db_id_seen(struct db *db, const char *id, unsigned long long hash, int *rc)
{
    int same = 0;

    sqlite3_bind_text(db->dup_check, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(db->dup_check, 2, (sqlite3_int64)hash);
    *rc = sqlite3_step(db->dup_check);
    if (*rc == SQLITE_ROW)
        same = sqlite3_column_int(db->dup_check, 0);
    sqlite3_reset(db->dup_check);
    if (*rc == SQLITE_ROW)
        return same ? 1 : 2;
    return *rc == SQLITE_DONE ? 0 : -1;
}

int db_id_keep(struct db *db, const char *id, unsigned long long hash)
{
    sqlite3_bind_text(db->dup_insert, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(db->dup_insert, 2, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(db->dup_insert, 3, (sqlite3_int64)hash);
    return run_trusted(db, db->dup_insert);
}

int db_apply(struct db *db, const struct req *r, long long *changes, long long *rowid,
             char *err, size_t errlen)
{
    struct ev_mark m;
    char what[192];
    int i, rc, seen;

    mark(db, &m);
    *changes = 0;
    *rowid = -1;
    if ((rc = run(db->sp)) != SQLITE_OK)
        return db_fault(db, rc, err, errlen);
    if (r->id && (seen = db_id_seen(db, r->id, r->hash, &rc))) {
        if (seen < 0)
            return db_fault(db, rc, err, errlen);
        if (seen == 2) {
            snprintf(err, errlen, "id \"%s\" was already used by a different request", r->id);
            return unwind(db, &m);
        }
        run(db->sp_release);
        return DB_DUP;
    }
    for (i = 0; i < r->nops; i++) {
        if (r->ops[i].kind == OP_ENQUEUE) {
            rc = db->op_fn ? db->op_fn(db->op_arg, r, i, err, errlen)
                           : (snprintf(err, errlen, "jobs are not enabled in this writer"), DB_REJECT);
            if (rc == DB_FAULT)
                return DB_FAULT;
            if (rc != DB_OK)
                return unwind(db, &m);
            continue;
        }
        rc = apply_op(db, r, i, changes, rowid, err, errlen);
        if (rc != SQLITE_OK)
            return db_is_fault(rc) ? db_fault(db, rc, err, errlen) : unwind(db, &m);
    }
    /* A trigger of the request's tables may have written mosqlite_applied itself. */
    if (r->id && (rc = db_id_keep(db, r->id, r->hash)) != SQLITE_OK) {
        snprintf(what, sizeof what, "id \"%s\" could not be kept as used", r->id);
        return db_own(db, rc, what, err, errlen) == DB_FAULT ? DB_FAULT : unwind(db, &m);
    }
    if ((rc = run(db->sp_release)) != SQLITE_OK)
        return db_fault(db, rc, err, errlen);
    return DB_OK;
}

int db_req_begin(struct db *db, char *err, size_t errlen)
{
    int rc;

    mark(db, &db->req_mark);
    if ((rc = run(db->sp)) != SQLITE_OK)
        return db_fault(db, rc, err, errlen);
    return DB_OK;
}

int db_req_end(struct db *db, int rc, char *err, size_t errlen)
{
    int src;

    if (rc == DB_FAULT)
        return DB_FAULT;
    if (rc != DB_OK && rc != DB_DUP)
        return unwind(db, &db->req_mark);
    if ((src = run(db->sp_release)) != SQLITE_OK)
        return db_fault(db, src, err, errlen);
    return rc;
}

int db_record_rejection(struct db *db, const char *topic, const char *id, const char *error,
                        const char *payload, size_t len, char *err, size_t errlen)
{
    sqlite3_stmt *st = db->rej_insert;
    int rc;

    if (len > REQ_EXCERPT) {
        len = REQ_EXCERPT;
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
    if (rc == SQLITE_OK)
        return DB_OK;
    /* The request is rejected all the same; only its record is missing. */
    if (db_own(db, rc, "keeping the rejection", err, errlen) == DB_REJECT) {
        log_warn("%s (topic %.200s, id %s)", err, topic, id ? id : "none");
        return DB_OK;
    }
    return DB_FAULT;
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

/* ---- for changes.c and snapshot.c (replication) ---- */

sqlite3 *db_handle(struct db *db)
{
    return db->h;
}

void db_trust(struct db *db, int on)
{
    db->trusted = on;
}
