/* changes.c: the changeset of each commit and its sequence number (see changes.h).
 *
 * Why the sequence lives in a table and not in memory: the UPDATE of mosqlite_seq is
 * part of the commit it numbers, so after a crash the file and the number agree, and
 * the changeset itself carries the new number to the replica, which stores it in the
 * same transaction as the rows. A replica therefore always knows exactly which commit
 * its file reflects.
 *
 * Why a new session after each commit: SQLite 3.40 has no way to empty a session, and
 * a session's changeset is the net difference since it began. Rows changed and then
 * rolled back (a rejected request's savepoint, a batch rolled back on a fault) differ
 * from nothing, so they never appear. A prune between batches (db_prune, its own
 * transaction) is carried by the next commit's changeset. */
#include "changes.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jbuf.h"
#include "log.h"
#include "util.h"

struct changes {
    struct db *db;
    sqlite3 *h;
    sqlite3_session *sess;
    sqlite3_stmt *bump;            /* UPDATE mosqlite_seq ... RETURNING seq */
    char *topic;                   /* PREFIX/changes */
    int qos;
    long long seq;                 /* last committed */
    long long schema;              /* PRAGMA user_version */
    long long epoch;               /* this writer's generation (mosqlite_seq.epoch) */
    long long prev_epoch;          /* the epoch of commit seq (mosqlite_seq.seq_epoch) */
    char dbid[40];
    struct jbuf msg;               /* sealed, not yet published: header + changeset */
    long long sealed_seq;          /* 0 when nothing is sealed */
    int unsent;                    /* the sealed commit has no changeset to send */
    char **skip;                   /* tables the session leaves out (see warn_unfit) */
    size_t nskip;
};

/* The session's table filter: every table but those in c->skip. */
static int want_table(void *ud, const char *table)
{
    const struct changes *c = ud;
    size_t i;

    for (i = 0; i < c->nskip; i++)
        if (!strcmp(c->skip[i], table))
            return 0;
    return 1;
}

static int session_start(struct changes *c, char *err, size_t errlen)
{
    int rc;

    if (c->sess)
        sqlite3session_delete(c->sess);
    c->sess = NULL;
    if ((rc = sqlite3session_create(c->h, "main", &c->sess)) != SQLITE_OK ||
        (rc = sqlite3session_attach(c->sess, NULL)) != SQLITE_OK)
        return util_fail(err, errlen, "starting the changes session: %s", sqlite3_errstr(rc));
    sqlite3session_table_filter(c->sess, want_table, c);
    return 0;
}

/* The tables a changeset cannot carry, left out of the session with a warning:
 * those without a declared PRIMARY KEY (the session extension cannot name their rows;
 * a WITHOUT ROWID table always has one) and those with generated columns (SQLite
 * 3.40's session extension counts their columns differently when it records a change
 * and when it writes the changeset, and fails). */
static void warn_unfit(struct changes *c)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(c->h, "SELECT m.name, NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE pk > 0)"
                           " FROM sqlite_schema m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND"
                           " (NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE pk > 0) OR"
                           "  EXISTS (SELECT 1 FROM pragma_table_xinfo(m.name) WHERE hidden IN (2, 3)))",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char **n = realloc(c->skip, (c->nskip + 1) * sizeof *n);
        if (!n || !(n[c->nskip] = strdup(name))) {
            c->skip = n ? n : c->skip;
            break;
        }
        c->skip = n;
        c->nskip++;
        log_warn("table \"%s\" has %s: replicas do not receive its rows", name,
                 sqlite3_column_int(st, 1) ? "no declared PRIMARY KEY" : "generated columns");
    }
    sqlite3_finalize(st);
}

/* A rowid table's PRIMARY KEY columns may hold NULL (an old SQLite quirk kept for
 * compatibility), unless declared NOT NULL or the key is the rowid itself (a single
 * INTEGER PRIMARY KEY); and SQLite's session extension leaves out, without a word, every
 * row whose key holds a NULL. So for each such column of a replicated table: a warning
 * at start, and a TEMP trigger on this connection that refuses, as that request's
 * fault, an INSERT or UPDATE that would put a NULL there (a row replicas would never
 * get). 0, or -1 + err. */
static int guard_null_keys(struct changes *c, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (sqlite3_prepare_v2(c->h, "SELECT m.name, k.name, k.type FROM sqlite_schema m"
                           " JOIN pragma_table_list l ON l.schema = 'main' AND l.name = m.name"
                           " JOIN pragma_table_info(m.name) k"
                           " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND l.wr = 0"
                           " AND k.pk > 0 AND k.\"notnull\" = 0 AND NOT (upper(k.type) = 'INTEGER' AND"
                           "  (SELECT count(*) FROM pragma_table_info(m.name) WHERE pk > 0) = 1)"
                           " ORDER BY m.name, k.pk", -1, &st, NULL) != SQLITE_OK)
        return util_fail(err, errlen, "reading the tables' keys: %s", sqlite3_errmsg(c->h));
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *table = (const char *)sqlite3_column_text(st, 0);
        const char *col = (const char *)sqlite3_column_text(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 2);
        char *sql, *msg, *emsg = NULL;

        if (!want_table(c, table))
            continue;
        log_warn("table \"%s\": PRIMARY KEY column \"%s\"%s%s%s may hold NULL, and replicas never receive "
                 "a row whose key holds a NULL: writes that would put one there are refused (declare "
                 "the column NOT NULL to say so in the schema)", table, col, type && type[0] ? " (" : "",
                 type ? type : "", type && type[0] ? ")" : "");
        msg = sqlite3_mprintf("NULL in PRIMARY KEY column \"%s\" of table \"%s\": replicas never "
                                        "receive a row whose key holds a NULL; give it a value", col, table);
        sql = msg ? sqlite3_mprintf(
            "CREATE TEMP TRIGGER \"mosqlite_nullkey_%w_%w_i\" BEFORE INSERT ON main.\"%w\" WHEN NEW.\"%w\" IS NULL"
            " BEGIN SELECT RAISE(ABORT, '%q'); END;"
            "CREATE TEMP TRIGGER \"mosqlite_nullkey_%w_%w_u\" BEFORE UPDATE OF \"%w\" ON main.\"%w\""
            " WHEN NEW.\"%w\" IS NULL BEGIN SELECT RAISE(ABORT, '%q'); END;",
            table, col, table, col, msg, table, col, col, table, col, msg) : NULL;
        sqlite3_free(msg);
        if (!sql)
            rc = util_fail(err, errlen, "out of memory");
        else if (sqlite3_exec(c->h, sql, NULL, NULL, &emsg) != SQLITE_OK)
            rc = util_fail(err, errlen, "guarding the key of table \"%s\": %s", table,
                           emsg ? emsg : sqlite3_errmsg(c->h));
        sqlite3_free(emsg);
        sqlite3_free(sql);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Create mosqlite_seq, or add the epoch columns to one made before epochs (its commits
 * count as epoch 1), and read where it stands. Runs trusted (internal table, PRAGMA). */
static int seq_open(struct changes *c, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char *emsg = NULL;
    int rc = -1;

    if (sqlite3_exec(c->h,
                     "CREATE TABLE IF NOT EXISTS mosqlite_seq (id INTEGER PRIMARY KEY CHECK (id = 1),"
                     " seq INTEGER NOT NULL, db TEXT NOT NULL, epoch INTEGER NOT NULL DEFAULT 1,"
                     " seq_epoch INTEGER NOT NULL DEFAULT 1);"
                     "INSERT OR IGNORE INTO mosqlite_seq (id, seq, db) VALUES (1, 0, lower(hex(randomblob(8))))",
                     NULL, NULL, &emsg) != SQLITE_OK ||
        (sqlite3_prepare_v2(c->h, "SELECT count(*) FROM pragma_table_info('mosqlite_seq') WHERE name = 'epoch'",
                            -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
         !sqlite3_column_int(st, 0) &&
         sqlite3_exec(c->h, "ALTER TABLE mosqlite_seq ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;"
                      "ALTER TABLE mosqlite_seq ADD COLUMN seq_epoch INTEGER NOT NULL DEFAULT 1",
                      NULL, NULL, &emsg) != SQLITE_OK)) {
        util_fail(err, errlen, "creating mosqlite_seq: %s", emsg ? emsg : sqlite3_errmsg(c->h));
        sqlite3_free(emsg);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c->h, "SELECT seq, db, (SELECT user_version FROM pragma_user_version),"
                           " epoch, seq_epoch FROM mosqlite_seq WHERE id = 1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        util_fail(err, errlen, "reading mosqlite_seq: %s", sqlite3_errmsg(c->h));
        goto cleanup;
    }
    c->seq = sqlite3_column_int64(st, 0);
    snprintf(c->dbid, sizeof c->dbid, "%s", (const char *)sqlite3_column_text(st, 1));
    c->schema = sqlite3_column_int64(st, 2);
    c->epoch = sqlite3_column_int64(st, 3);
    c->prev_epoch = sqlite3_column_int64(st, 4);
    if (c->epoch < 1 || c->prev_epoch > c->epoch) {
        util_fail(err, errlen, "mosqlite_seq: epoch %lld with a last commit of epoch %lld: not a "
                  "file a writer made", c->epoch, c->prev_epoch);
        goto cleanup;
    }
    if (sqlite3_prepare_v3(c->h, "UPDATE mosqlite_seq SET seq = seq + 1, seq_epoch = epoch WHERE id = 1"
                           " RETURNING seq", -1, SQLITE_PREPARE_PERSISTENT, &c->bump, NULL) != SQLITE_OK) {
        util_fail(err, errlen, "preparing the sequence: %s", sqlite3_errmsg(c->h));
        goto cleanup;
    }
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    return rc;
}

struct changes *changes_new(struct db *db, const char *prefix, int qos, char *err, size_t errlen)
{
    struct changes *c = calloc(1, sizeof *c);
    int rc;

    if (!c || !(c->topic = util_join(prefix, "/changes"))) {
        util_fail(err, errlen, "out of memory");
        changes_free(c);
        return NULL;
    }
    c->db = db;
    c->h = db_handle(db);
    c->qos = qos;
    db_trust(db, 1);
    rc = seq_open(c, err, errlen);
    if (!rc) {
        warn_unfit(c);
        rc = guard_null_keys(c, err, errlen);
    }
    db_trust(db, 0);
    if (rc || session_start(c, err, errlen)) {
        changes_free(c);
        return NULL;
    }
    log_info("changes: database %s at sequence %lld (schema %lld), epoch %lld, on %s", c->dbid,
             c->seq, c->schema, c->epoch, c->topic);
    return c;
}

void changes_free(struct changes *c)
{
    if (!c)
        return;
    if (c->sess)
        sqlite3session_delete(c->sess);
    sqlite3_finalize(c->bump);
    while (c->nskip)
        free(c->skip[--c->nskip]);
    free(c->skip);
    jb_free(&c->msg);
    free(c->topic);
    free(c);
}

int changes_seal(struct changes *c, char *err, size_t errlen)
{
    char head[256];
    void *cs = NULL;
    int n = 0, rc, len;
    long long seq;

    c->sealed_seq = 0;
    db_trust(c->db, 1);
    rc = sqlite3_step(c->bump);
    seq = rc == SQLITE_ROW ? sqlite3_column_int64(c->bump, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(c->bump);
    sqlite3_reset(c->bump);
    db_trust(c->db, 0);
    if (rc != SQLITE_DONE || !seq)
        return util_fail(err, errlen, "advancing the sequence: %s", sqlite3_errmsg(c->h));
    db_trust(c->db, 1);
    rc = sqlite3session_changeset(c->sess, &n, &cs);
    db_trust(c->db, 0);
    c->unsent = rc != SQLITE_OK;
    if (rc != SQLITE_OK) {
        /* Replication must not stop the writer: commit without a changeset. The
         * replicas find the gap and take a snapshot. */
        log_error("changes: commit %lld goes without a changeset (%s): replicas will take a "
                  "snapshot", seq, sqlite3_errstr(rc));
        c->sealed_seq = seq;
        return 0;
    }
    len = snprintf(head, sizeof head, "{\"seq\":%lld,\"prev\":%lld,\"db\":\"%s\",\"schema\":%lld,"
                   "\"epoch\":%lld,\"prev_epoch\":%lld,\"at\":%lld}\n", seq, seq - 1, c->dbid, c->schema,
                   c->epoch, c->prev_epoch, util_wall_ms());
    c->msg.len = 0;
    c->msg.oom = 0;
    jb_putn(&c->msg, head, (size_t)len);
    jb_putn(&c->msg, cs, (size_t)n);
    sqlite3_free(cs);
    if (c->msg.oom)
        return util_fail(err, errlen, "out of memory for the changeset of commit %lld", seq);
    c->sealed_seq = seq;
    return 0;
}

void changes_publish(struct changes *c, struct mq *mq)
{
    char err[256];

    if (!c->sealed_seq)
        return;
    c->seq = c->sealed_seq;
    c->prev_epoch = c->epoch;
    c->sealed_seq = 0;
    if (!c->unsent && mq_publish(mq, c->topic, c->msg.s, c->msg.len, c->qos, 0, NULL, 0))
        log_error("changes: commit %lld could not be published: replicas will find a gap", c->seq);
    if (session_start(c, err, sizeof err)) {
        /* Without a session the next changesets would be empty: stop rather than lie. */
        log_error("%s", err);
        exit(1);
    }
}

long long changes_epoch(const struct changes *c)
{
    return c->epoch;
}

long long changes_seq_epoch(const struct changes *c)
{
    return c->prev_epoch;
}

long long changes_seq(const struct changes *c)
{
    return c->seq;
}

int changes_set_epoch(struct changes *c, long long epoch, char *err, size_t errlen)
{
    char sql[96], *emsg = NULL;
    int rc;

    if (epoch <= c->epoch)
        return util_fail(err, errlen, "epoch %lld is not newer than the file's %lld", epoch, c->epoch);
    snprintf(sql, sizeof sql, "UPDATE mosqlite_seq SET epoch = %lld WHERE id = 1", epoch);
    /* Outside any changeset: a replica's copy (a snapshot, taken after this) holds the
     * new epoch already, and the next commit's changeset must not say the old one. */
    if (c->sess)
        sqlite3session_enable(c->sess, 0);
    db_trust(c->db, 1);
    rc = sqlite3_exec(c->h, sql, NULL, NULL, &emsg);
    db_trust(c->db, 0);
    if (c->sess)
        sqlite3session_enable(c->sess, 1);
    if (rc != SQLITE_OK) {
        util_fail(err, errlen, "starting epoch %lld in mosqlite_seq: %s", epoch, emsg ? emsg : sqlite3_errstr(rc));
        sqlite3_free(emsg);
        return -1;
    }
    log_info("changes: epoch %lld starts (the file was at epoch %lld)", epoch, c->epoch);
    c->epoch = epoch;
    return 0;
}

long long changes_epoch_of(const char *payload, size_t len)
{
    const char *nl = memchr(payload, '\n', len);
    const cJSON *e;
    cJSON *j;
    long long epoch = 0;

    if (nl)
        len = (size_t)(nl - payload);
    if (!(j = cJSON_ParseWithLength(payload, len)))
        return 0;
    e = cJSON_GetObjectItemCaseSensitive(j, "epoch");
    if (cJSON_IsObject(j) && cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble < 9e15)
        epoch = (long long)e->valuedouble;
    cJSON_Delete(j);
    return epoch;
}
