/* store.c: the replica's file: its position, changesets applied, snapshots installed
 * (see store.h). */
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct store {
    char *path, *synchronous;
    sqlite3 *h;
    struct store_pos pos;
    char conflict[512];      /* the first conflict of the changeset being applied */
};

static int exec(struct store *s, const char *sql, char *err, size_t errlen)
{
    char *emsg = NULL;

    if (sqlite3_exec(s->h, sql, NULL, NULL, &emsg) != SQLITE_OK) {
        util_fail(err, errlen, "%s: %s: %s", s->path, sql, emsg ? emsg : sqlite3_errmsg(s->h));
        sqlite3_free(emsg);
        return -1;
    }
    return 0;
}

/* Read the position from mosqlite_seq; none when the table is not there. */
static void read_pos(struct store *s)
{
    sqlite3_stmt *st;

    memset(&s->pos, 0, sizeof s->pos);
    if (sqlite3_prepare_v2(s->h, "SELECT seq, db, (SELECT user_version FROM pragma_user_version),"
                           " seq_epoch, epoch FROM mosqlite_seq WHERE id = 1", -1, &st, NULL) != SQLITE_OK &&
        sqlite3_prepare_v2(s->h, "SELECT seq, db, (SELECT user_version FROM pragma_user_version), 0, 0"
                           " FROM mosqlite_seq WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->pos.known = 1;
        s->pos.seq = sqlite3_column_int64(st, 0);
        snprintf(s->pos.db, sizeof s->pos.db, "%s", (const char *)sqlite3_column_text(st, 1));
        s->pos.schema = sqlite3_column_int64(st, 2);
        s->pos.epoch = sqlite3_column_int64(st, 3);
        s->pos.gen = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
}

static int open_file(struct store *s, char *err, size_t errlen)
{
    char pragma[64];
    int off = 0;

    memset(&s->pos, 0, sizeof s->pos);
    if (access(s->path, F_OK))
        return 0;                 /* no file yet: a snapshot makes it */
    if (sqlite3_open_v2(s->path, &s->h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return util_fail(err, errlen, "%s: %s", s->path, s->h ? sqlite3_errmsg(s->h) : "cannot open");
    sqlite3_busy_timeout(s->h, 5000);
    sqlite3_db_config(s->h, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &off);
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", s->synchronous);
    if (exec(s, "PRAGMA journal_mode=WAL", err, errlen) || exec(s, pragma, err, errlen) ||
        exec(s, "PRAGMA foreign_keys=OFF", err, errlen))
        return -1;
    read_pos(s);
    return 0;
}

struct store *store_open(const char *path, const char *synchronous, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof *s);

    if (!s || !(s->path = strdup(path)) || !(s->synchronous = strdup(synchronous))) {
        util_fail(err, errlen, "out of memory");
        store_close(s);
        return NULL;
    }
    if (open_file(s, err, errlen)) {
        store_close(s);
        return NULL;
    }
    return s;
}

void store_release(struct store *s)
{
    if (s && s->h) {
        sqlite3_close(s->h);
        s->h = NULL;
    }
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_release(s);
    free(s->path);
    free(s->synchronous);
    free(s);
}

const struct store_pos *store_pos(const struct store *s)
{
    return &s->pos;
}

int store_begin(struct store *s, char *err, size_t errlen)
{
    if (!s->h)
        return util_fail(err, errlen, "%s: no database yet", s->path);
    return exec(s, "BEGIN IMMEDIATE", err, errlen);
}

static const char *conflict_name(int c)
{
    switch (c) {
    case SQLITE_CHANGESET_DATA: return "the row differs from the writer's before the change";
    case SQLITE_CHANGESET_NOTFOUND: return "the row is missing";
    case SQLITE_CHANGESET_CONFLICT: return "a row with that key is already there";
    case SQLITE_CHANGESET_CONSTRAINT: return "a constraint fails";
    case SQLITE_CHANGESET_FOREIGN_KEY: return "a foreign key fails";
    }
    return "conflict";
}

static int on_conflict(void *ctx, int kind, sqlite3_changeset_iter *it)
{
    struct store *s = ctx;
    const char *table = "?";
    int ncol, op, indirect;

    if (!s->conflict[0]) {
        if (kind != SQLITE_CHANGESET_FOREIGN_KEY)
            sqlite3changeset_op(it, &table, &ncol, &op, &indirect);
        else
            op = 0;
        snprintf(s->conflict, sizeof s->conflict, "%s of a row of \"%s\": %s",
                 op == SQLITE_INSERT ? "insert" : op == SQLITE_UPDATE ? "update" :
                 op == SQLITE_DELETE ? "delete" : "change", table, conflict_name(kind));
    }
    return SQLITE_CHANGESET_ABORT;
}

int store_apply(struct store *s, long long seq, long long epoch, const void *data, size_t n, char *err,
                size_t errlen)
{
    int rc;

    s->conflict[0] = '\0';
    rc = sqlite3changeset_apply(s->h, (int)n, (void *)data, NULL, on_conflict, s);
    if (rc != SQLITE_OK) {
        if (s->conflict[0]) {
            util_fail(err, errlen, "change %lld conflicts with this file: %s", seq, s->conflict);
            return -2;
        }
        return util_fail(err, errlen, "change %lld: %s", seq, sqlite3_errmsg(s->h));
    }
    read_pos(s);
    if (!s->pos.known || s->pos.seq != seq || s->pos.epoch != epoch) {
        util_fail(err, errlen, "change %lld (epoch %lld) left the file at position %lld (epoch %lld): "
                  "not the writer's changeset of that commit", seq, epoch, s->pos.seq, s->pos.epoch);
        return -2;
    }
    if (s->pos.gen && s->pos.gen < epoch) {
        /* The first commit of a promoted writer: the file belongs to its epoch now (the
         * writer set its own before that commit, outside any changeset). */
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE mosqlite_seq SET epoch = %lld WHERE id = 1", epoch);
        if (exec(s, sql, err, errlen))
            return -1;
        s->pos.gen = epoch;
    }
    return 0;
}

long long store_new_epoch(struct store *s, long long seen, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    long long e = -1;

    if (!s->h || !s->pos.known) {
        util_fail(err, errlen, "%s: no database to promote", s->path);
        return -1;
    }
    if (!s->pos.gen && exec(s, "ALTER TABLE mosqlite_seq ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;"
                            "ALTER TABLE mosqlite_seq ADD COLUMN seq_epoch INTEGER NOT NULL DEFAULT 1",
                            err, errlen))
        return -1;
    if (sqlite3_prepare_v2(s->h, "UPDATE mosqlite_seq SET epoch = max(epoch, seq_epoch, ?) + 1 WHERE id = 1"
                           " RETURNING epoch", -1, &st, NULL) != SQLITE_OK) {
        util_fail(err, errlen, "%s: starting a new epoch: %s", s->path, sqlite3_errmsg(s->h));
        return -1;
    }
    sqlite3_bind_int64(st, 1, seen);
    if (sqlite3_step(st) == SQLITE_ROW)
        e = sqlite3_column_int64(st, 0);
    if (sqlite3_step(st) != SQLITE_DONE || e < 1) {
        util_fail(err, errlen, "%s: starting a new epoch: %s", s->path, sqlite3_errmsg(s->h));
        e = -1;
    }
    sqlite3_finalize(st);
    read_pos(s);
    return e;
}

int store_commit(struct store *s, char *err, size_t errlen)
{
    if (exec(s, "COMMIT", err, errlen)) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

void store_rollback(struct store *s)
{
    if (s->h && !sqlite3_get_autocommit(s->h))
        sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
    read_pos(s);
}

int store_install(struct store *s, const char *tmp, char *err, size_t errlen)
{
    char side[4096];
    const char *ext[] = {"-wal", "-shm"};
    int i;

    store_release(s);
    /* The old file's WAL must not be replayed onto the new one. */
    for (i = 0; i < 2; i++) {
        snprintf(side, sizeof side, "%s%s", s->path, ext[i]);
        if (unlink(side) && errno != ENOENT)
            return util_fail(err, errlen, "%s: %s", side, strerror(errno));
    }
    if (rename(tmp, s->path))
        return util_fail(err, errlen, "installing the snapshot as %s: %s", s->path, strerror(errno));
    if (open_file(s, err, errlen))
        return -1;
    if (!s->pos.known)
        return util_fail(err, errlen, "the snapshot has no position (mosqlite_seq)");
    return 0;
}
