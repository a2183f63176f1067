/* db_int.h: what db.c, db_apply.c and db_keep.c share (not for the rest of the
 * writer): the connection's struct and the running of its own statements. */
#ifndef MOSQLITE_DB_INT_H
#define MOSQLITE_DB_INT_H

#include "db.h"
#include "sql.h"


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
    sqlite3_stmt *dup_check, *dup_insert, *rej_insert, *rej_check;
    struct jbuf rows;             /* event rows of the open batch */
    struct db_event *ev;
    int nev, capev;
    int lock_fd;                  /* PATH-writer.lock, held (flock) while open; or -1 */
    sqlite3_stmt **readback;      /* per table: SELECT * by key (sql_build_read), lazily */
    struct ev_mark req_mark;      /* the request between db_req_begin and db_req_end */
    db_op_fn op_fn;               /* ops that are not SQL (db_set_op_hook) */
    void *op_arg;
};

/* A statement prepared to last (SQLITE_PREPARE_PERSISTENT), or NULL with a log line. */
sqlite3_stmt *db_prep(struct db *db, const char *sql);

/* Run SQL text; on an error, the statement and SQLite's message in err, -1. */
int db_exec(struct db *db, const char *sql, char *err, size_t errlen);

/* Run a prepared statement that returns no rows: SQLITE_OK or SQLite's code. */
int db_run(sqlite3_stmt *st);

/* The same for the writer's own statements on internal tables (db_run_trusted). */
int db_run_trusted(struct db *db, sqlite3_stmt *st);

/* Create (or bring up to date) the writer's own tables (db_keep.c). */
int db_internal_create(struct db *db, char *err, size_t errlen);

#endif
