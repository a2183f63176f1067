/* db.h: the writer's one read-write SQLite connection.
 *
 * A batch is one transaction (BEGIN IMMEDIATE .. COMMIT) holding many requests, each
 * inside its own SAVEPOINT, so a rejected request rolls back alone and its neighbours
 * commit. db_apply() returns what happened to one request; the rows each statement
 * wrote (read back by key after it, as stored; a delete's RETURNING * rows) are kept
 * as event text until the batch commits or rolls back.
 *
 * Errors are split in two: the request's fault (constraint, type, shape) rejects the
 * request; anything else (disk full, I/O error, the file locked by another process)
 * is a DB_FAULT: the caller rolls back the whole batch and retries it later. */
#ifndef MOSQLITE_DB_H
#define MOSQLITE_DB_H

#include <sqlite3.h>

#include "jbuf.h"
#include "req.h"
#include "schema.h"

/* DB_LOST: the request was rejected, and SQLite rolled back the whole batch with it
 * (an ON CONFLICT ROLLBACK clause, or RAISE(ROLLBACK) in a trigger): the requests
 * before it in the batch must be applied again, without it. */
enum db_rc { DB_OK, DB_DUP, DB_REJECT, DB_FAULT, DB_LOST };

struct db_opts {
    const char *path;
    const char *schema_dir;
    const char *synchronous;      /* FULL, NORMAL, OFF */
    const struct cfg_list *tables;
    long long busy_timeout_ms;
    long long id_ttl_days;
    long long rejected_keep;
    long long max_event_rows;     /* rows per event (100) */
};

/* A run of returned rows of one table and op, published as one event. */
struct db_event {
    int tindex;
    enum op_kind kind;
    size_t start, end;            /* their JSON objects in db->rows, comma-separated */
    int nrows;
    int truncated;
};

struct db;

/* Open (creating the file and its directory), set the pragmas, run the migrations,
 * create the internal tables, read the schema, harden the connection. NULL + err. */
struct db *db_open(const struct db_opts *o, char *err, size_t errlen);
void db_close(struct db *db);
const struct schema *db_schema(const struct db *db);

int db_begin(struct db *db, char *err, size_t errlen);       /* DB_OK / DB_FAULT */
int db_commit(struct db *db, char *err, size_t errlen);      /* DB_OK / DB_FAULT */
void db_rollback(struct db *db);                             /* and forget the events */

/* Apply one validated request inside the open batch. Sets *changes and *rowid
 * (-1 when none). DB_OK, DB_DUP (its id was applied before), DB_REJECT (+ err,
 * nothing of it remains), DB_LOST (+ err, see above), DB_FAULT (+ err; roll the
 * batch back). */
int db_apply(struct db *db, const struct req *r, long long *changes, long long *rowid,
             char *err, size_t errlen);

/* Ops that are not SQL (OP_ENQUEUE: a job, jobq.c): fn runs op i of r inside the request's
 * savepoint, in order with the others; it returns DB_OK, DB_REJECT + err (the request is
 * rejected: nothing of it remains) or DB_FAULT + err. Without a hook such an op is
 * rejected. */
typedef int (*db_op_fn)(void *arg, const struct req *r, int i, char *err, size_t errlen);
void db_set_op_hook(struct db *db, db_op_fn fn, void *arg);

/* The ids kept in mosqlite_applied, for what else takes an id (scheduled writes and
 * cancels, sched.c). db_id_seen: 1 when id was kept with this hash (or none), 2 with
 * another, 0 when not kept, -1 with SQLite's code in *rc. db_id_keep: keep it; SQLite's
 * code. */
int db_id_seen(struct db *db, const char *id, unsigned long long hash, int *rc);
int db_id_keep(struct db *db, const char *id, unsigned long long hash);

/* Keep a rejected request in mosqlite_rejected: its first REQ_EXCERPT bytes, cut back
 * to a whole UTF-8 character; TEXT when that is valid UTF-8 without NUL, else a BLOB.
 * DB_OK (also when a constraint refuses the row: logged, the request stays rejected)
 * or DB_FAULT + err. */
int db_record_rejection(struct db *db, const char *topic, const char *id, const char *error,
                        const char *payload, size_t len, char *err, size_t errlen);

/* Delete ids older than the ttl and rejections beyond the newest rejected_keep.
 * Runs in its own small transaction; DB_OK / DB_FAULT. */
int db_prune(struct db *db, char *err, size_t errlen);

/* The events of the batch so far, valid until the next db_begin. */
const struct db_event *db_events(const struct db *db, int *n);
const char *db_event_rows(const struct db *db);

/* SQLite's code rc as a database fault: its message (the connection's own when it is
 * the last error there) in err; returns DB_FAULT. */
int db_fault(struct db *db, int rc, char *err, size_t errlen);

/* SQLite's code rc from the writer's own bookkeeping for a request (mosqlite_applied,
 * mosqlite_scheduled, mosqlite_rejected): a constraint failed means the request's
 * content collides with what the writer keeps, so the request is rejected, never the
 * batch stalled: DB_REJECT with "WHAT: SQLite's message" in err. Anything else (disk
 * full, I/O) is a database fault: DB_FAULT as db_fault. */
int db_own(struct db *db, int rc, const char *what, char *err, size_t errlen);

/* The bookkeeping of a request done outside db_apply (scheduling it, cancelling one:
 * sched.c), as one unit: db_req_begin opens the request's savepoint (DB_OK, or DB_FAULT
 * + err); db_req_end takes the outcome rc and returns it, after releasing the savepoint
 * (DB_OK, DB_DUP; DB_FAULT + err when that fails) or undoing the request's writes
 * (DB_REJECT; DB_LOST when SQLite had already rolled the whole transaction back). A
 * DB_FAULT is returned as is: the batch is rolled back. */
int db_req_begin(struct db *db, char *err, size_t errlen);
int db_req_end(struct db *db, int rc, char *err, size_t errlen);

/* True for SQLite result codes that are not a request's fault. */
int db_is_fault(int rc);

/* The read-write connection itself, for maintenance between batches (maint.c: the
 * backup API, checkpoints) and replication (changes.c, snapshot.c); and trusted mode
 * (on: the writer's own statements on internal tables pass the authorizer; off again
 * after). Without trusted mode the authorizer refuses statements on it. */
sqlite3 *db_handle(struct db *db);
void db_trust(struct db *db, int on);

#endif
