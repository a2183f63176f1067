/* db.c: the read-write connection: opening and hardening it, the batch's
 * transaction (see db.h). Applying one request inside it and the events its rows make
 * are db_apply.c's; the writer's own tables (ids applied, rejections kept) and their
 * pruning, db_keep.c's. The SQL of an operation and its prepared statements are sql.c's;
 * binding values and writing rows as JSON, val.c's.
 *
 * Hardening: SQLITE_DBCONFIG_DEFENSIVE, no ATTACH, and an authorizer that, once the
 * migrations have run, refuses DDL, PRAGMA, ATTACH and writes to internal tables for
 * every statement the request path prepares. Identifiers in SQL come from the schema
 * (already quoted there); values are bound parameters, never text in SQL. */
#include "db.h"
#include "db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sql.h"
#include "util.h"

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

sqlite3_stmt *db_prep(struct db *db, const char *sql)
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

int db_exec(struct db *db, const char *sql, char *err, size_t errlen)
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
    return db_exec(db, pragma, err, errlen) || db_exec(db, "PRAGMA foreign_keys=ON", err, errlen) ? -1 : 0;
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
    if (!(db->begin = db_prep(db, "BEGIN IMMEDIATE")) || !(db->commit = db_prep(db, "COMMIT")) ||
        !(db->rollback = db_prep(db, "ROLLBACK")) || !(db->sp = db_prep(db, "SAVEPOINT req")) ||
        !(db->sp_release = db_prep(db, "RELEASE req")) ||
        !(db->sp_rollback = db_prep(db, "ROLLBACK TO req")) ||
        !(db->dup_check = db_prep(db, "SELECT hash IS NULL OR hash = ?2 FROM mosqlite_applied WHERE id = ?1")) ||
        !(db->dup_insert = db_prep(db, "INSERT INTO mosqlite_applied (id, at, hash) VALUES (?1, ?2, ?3)")) ||
        !(db->rej_check = db_prep(db, "SELECT 1 FROM mosqlite_rejected WHERE req_id = ?1 LIMIT 1")) ||
        !(db->rej_insert = db_prep(db, "INSERT INTO mosqlite_rejected (at, topic, req_id, error, payload)"
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
        db_internal_create(db, err, errlen) || schema_load(db->h, o->tables, &db->schema, err, errlen))
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
    sqlite3_finalize(db->rej_check);
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
int db_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The same for the writer's own statements on internal tables: if SQLite re-prepares
 * one (after a schema change), the authorizer must let it through. */
int db_run_trusted(struct db *db, sqlite3_stmt *st)
{
    int rc;

    db->trusted = 1;
    rc = db_run(st);
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
    rc = db_run(db->begin);
    return rc == SQLITE_OK ? DB_OK : db_fault(db, rc, err, errlen);
}

int db_commit(struct db *db, char *err, size_t errlen)
{
    int rc = db_run(db->commit);

    if (rc == SQLITE_OK)
        return DB_OK;
    db_fault(db, rc, err, errlen);
    db_rollback(db);
    return DB_FAULT;
}

void db_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->h))
        db_run(db->rollback);
    db->rows.len = 0;
    db->nev = 0;
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
