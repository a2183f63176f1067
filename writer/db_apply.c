/* db_apply.c: applying one request inside the batch's transaction (see db.h): a
 * SAVEPOINT per request so a rejected one rolls back alone, duplicate ids, a request
 * whose "after" is not dealt with yet held back (DB_WAIT), each op's cached statement
 * bound and stepped, and the rows each statement wrote, read back by key as stored (a
 * delete's as they were), grouped into events. */
#include "db.h"
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "sql.h"
#include "util.h"
#include "val.h"

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
            db->readback[tindex] = db_prep(db, sql.s);
        jb_free(&sql);
    }
    return db->readback[tindex];
}

/* Step rb, the read of one row by its key (bound), and write the row into the events:
 * none when it is gone already (a trigger deleted it). SQLITE_OK or SQLite's code. */
static int read_back(struct db *db, sqlite3_stmt *rb, struct db_event *e)
{
    int rc = sqlite3_step(rb);

    if (rc == SQLITE_ROW) {
        if (e->nrows++)
            jb_putc(&db->rows, ',');
        val_row_json(&db->rows, rb);
    }
    sqlite3_reset(rb);
    sqlite3_clear_bindings(rb);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The read of a row of op's table by its key, or NULL with SQLite's code in *rc. */
static sqlite3_stmt *read_stmt(struct db *db, const struct req_op *op, int *rc)
{
    sqlite3_stmt *rb = readback_for(db, op->tindex);

    if (!rb)
        *rc = sqlite3_errcode(db->h) != SQLITE_OK ? sqlite3_errcode(db->h) : SQLITE_NOMEM;
    return rb;
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
    if (!(rb = read_stmt(db, op, &rc)))
        return rc;
    n = sql_key_count(op->table);
    for (k = 0; k < n; k++)
        sqlite3_bind_value(rb, k + 1, sqlite3_column_value(st, k));
    return read_back(db, rb, e);
}

/* A plain INSERT into a rowid table returns nothing (sql_plain_insert): the row it
 * wrote, if it wrote one, is the last inserted rowid. Into the events as event_row. */
static int event_inserted(struct db *db, const struct req_op *op, struct db_event *e,
                          long long *rowid)
{
    sqlite3_stmt *rb;
    int rc;

    if (sqlite3_changes64(db->h) != 1)   /* ignored (OR IGNORE, RAISE(IGNORE)) */
        return SQLITE_OK;
    *rowid = sqlite3_last_insert_rowid(db->h);
    if (!e)
        return SQLITE_OK;
    if (e->nrows >= db->o.max_event_rows) {
        e->truncated = 1;
        return SQLITE_OK;
    }
    if (!(rb = read_stmt(db, op, &rc)))
        return rc;
    sqlite3_bind_int64(rb, 1, *rowid);
    rc = read_back(db, rb, e);
    e->end = db->rows.len;
    return rc;
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
    if (rc == SQLITE_DONE && sql_plain_insert(op))
        rrc = event_inserted(db, op, e, rowid);
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
    db_run(db->sp_rollback);
    db_run(db->sp_release);
    db->nev = m->nev;
    if (m->nev)
        db->ev[m->nev - 1] = m->last;
    db->rows.len = m->rows_len;
    return DB_REJECT;
}

/* Has the request named id been dealt with: applied (or a duplicate of one applied),
 * earlier in this batch included, or rejected? 1, 0, or -1 with SQLite's code in *rc. */
static int after_done(struct db *db, const char *id, int *rc)
{
    int seen = db_id_seen(db, id, 0, rc);

    if (seen)
        return seen < 0 ? -1 : 1;
    sqlite3_bind_text(db->rej_check, 1, id, -1, SQLITE_STATIC);
    *rc = sqlite3_step(db->rej_check);
    sqlite3_reset(db->rej_check);
    return *rc == SQLITE_ROW ? 1 : *rc == SQLITE_DONE ? 0 : -1;
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
    if ((rc = db_run(db->sp)) != SQLITE_OK)
        return db_fault(db, rc, err, errlen);
    if (r->id && (seen = db_id_seen(db, r->id, r->hash, &rc))) {
        if (seen < 0)
            return db_fault(db, rc, err, errlen);
        if (seen == 2) {
            snprintf(err, errlen, "id \"%s\" was already used by a different request", r->id);
            return unwind(db, &m);
        }
        db_run(db->sp_release);
        return DB_DUP;
    }
    /* Come before the request it follows: nothing applied, its id not kept. */
    if (r->after && (seen = after_done(db, r->after, &rc)) <= 0) {
        if (seen < 0)
            return db_fault(db, rc, err, errlen);
        db_run(db->sp_release);
        return DB_WAIT;
    }
    for (i = 0; i < r->nops; i++) {
        if (r->ops[i].kind == OP_ENQUEUE || r->ops[i].kind == OP_CANCEL_JOB) {
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
    if ((rc = db_run(db->sp_release)) != SQLITE_OK)
        return db_fault(db, rc, err, errlen);
    return DB_OK;
}

int db_req_begin(struct db *db, char *err, size_t errlen)
{
    int rc;

    mark(db, &db->req_mark);
    if ((rc = db_run(db->sp)) != SQLITE_OK)
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
    if ((src = db_run(db->sp_release)) != SQLITE_OK)
        return db_fault(db, src, err, errlen);
    return rc;
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
