/* db_keep.c: the writer's own tables on the connection (see db.h): creating them, ids
 * applied (for duplicates), rejections kept, and their pruning. */
#include "db.h"
#include "db_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "utf8.h"
#include "util.h"

/* The writer's own tables: ids applied (for duplicates), rejections kept, scheduled
 * writes. mosqlite_applied keeps each applied id with a hash of its request (topic and
 * payload), to tell a producer's retry (a duplicate) from another request reusing the
 * id (rejected). Files from before the hash get the column; their ids have none and
 * count as duplicates. */
int db_internal_create(struct db *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int has_hash;

    if (db_exec(db, "CREATE TABLE IF NOT EXISTS mosqlite_applied ("
                    " id TEXT PRIMARY KEY, at INTEGER NOT NULL, hash INTEGER) WITHOUT ROWID;", err, errlen))
        return -1;
    has_hash = sqlite3_prepare_v2(db->h, "SELECT hash FROM mosqlite_applied LIMIT 0", -1, &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    if (!has_hash && db_exec(db, "ALTER TABLE mosqlite_applied ADD COLUMN hash INTEGER", err, errlen))
        return -1;
    return db_exec(db,
                   "CREATE INDEX IF NOT EXISTS mosqlite_applied_at ON mosqlite_applied (at);"
                   "CREATE TABLE IF NOT EXISTS mosqlite_rejected ("
                   " id INTEGER PRIMARY KEY, at TEXT NOT NULL, topic TEXT NOT NULL, req_id TEXT,"
                   " error TEXT NOT NULL, payload);"
                   /* A request "after" a rejected one is not held back by it (db_apply). */
                   "CREATE INDEX IF NOT EXISTS mosqlite_rejected_req_id ON mosqlite_rejected (req_id);"
                   /* Scheduled writes (sched.c), each as received, until applied or cancelled;
                    * seq keeps the order of those due at the same time. */
                   "CREATE TABLE IF NOT EXISTS mosqlite_scheduled ("
                   " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, due_ms INTEGER NOT NULL,"
                   " due TEXT NOT NULL, at TEXT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,"
                   " hash INTEGER NOT NULL, resp_topic TEXT, corr BLOB);"
                   "CREATE INDEX IF NOT EXISTS mosqlite_scheduled_due ON mosqlite_scheduled (due_ms, seq)",
                   err, errlen);
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
    return db_run_trusted(db, db->dup_insert);
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
    rc = db_run_trusted(db, st);
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
            db_run(db->rollback);
        return DB_FAULT;
    }
    return DB_OK;
}
