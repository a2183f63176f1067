/* sched.c: scheduled writes and cancels (see sched.h).
 *
 * What is kept in memory is only a hint: when the next request is due (next_due), and
 * whether to read that again once the requests queued by the last tick have gone
 * through (recount). The rows in mosqlite_scheduled are the truth: a hint that is too
 * early (a schedule rolled back with its batch) costs one read, never a wrong apply,
 * because a request is applied only in the transaction that takes its row out. */
#include "sched.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct sched {
    struct db *db;
    struct mq *mq;
    sqlite3 *h;
    size_t max;
    long long limit;              /* most scheduled at once */
    long long count;              /* scheduled now, as this transaction sees it */
    sqlite3_stmt *ins, *find, *del, *due, *next, *count_st;
    long long next_due;           /* wall clock ms; LLONG_MAX for none */
    int recount;                  /* read next_due again when the queued ones are done */
};

#define SCHED_RETRY_MS 1000       /* after a failed read, try again in this long */

static int prep(struct sched *s, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(s->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* Run the writer's own statement on its internal table (see db_trust). */
static int step(struct sched *s, sqlite3_stmt *st)
{
    int rc;

    db_trust(s->db, 1);
    rc = sqlite3_step(st);
    db_trust(s->db, 0);
    return rc;
}

/* When the first scheduled request is due, into s->next_due. 0, or SQLite's code. */
static int read_next(struct sched *s)
{
    int rc = step(s, s->next);

    s->next_due = LLONG_MAX;
    if (rc == SQLITE_ROW && sqlite3_column_type(s->next, 0) != SQLITE_NULL)
        s->next_due = sqlite3_column_int64(s->next, 0);
    sqlite3_reset(s->next);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

/* How many are scheduled, into s->count. 0, or SQLite's code. */
static int read_count(struct sched *s)
{
    int rc = step(s, s->count_st);

    if (rc == SQLITE_ROW)
        s->count = sqlite3_column_int64(s->count_st, 0);
    sqlite3_reset(s->count_st);
    return rc == SQLITE_ROW ? 0 : rc;
}

void sched_rolled_back(struct sched *s)
{
    int rc;

    if ((rc = read_count(s)))
        log_warn("scheduled writes: counting them: %s", sqlite3_errstr(rc));
}

struct sched *sched_new(struct db *db, struct mq *mq, size_t max, long long limit, char *err,
                        size_t errlen)
{
    struct sched *s = calloc(1, sizeof *s);
    int rc;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->db = db;
    s->mq = mq;
    s->h = db_handle(db);
    s->max = max ? max : 1;
    s->limit = limit;
    db_trust(db, 1);
    rc = prep(s, &s->ins, "INSERT INTO mosqlite_scheduled (id, due_ms, due, at, topic, payload, hash,"
                          " resp_topic, corr) VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                          " ?4, ?5, ?6, ?7, ?8)") ||
         prep(s, &s->find, "SELECT hash, topic FROM mosqlite_scheduled WHERE id = ?1") ||
         prep(s, &s->del, "DELETE FROM mosqlite_scheduled WHERE id = ?1") ||
         prep(s, &s->due, "SELECT id, topic, payload, resp_topic, corr FROM mosqlite_scheduled"
                          " WHERE due_ms <= ?1 ORDER BY due_ms, seq LIMIT ?2") ||
         prep(s, &s->next, "SELECT min(due_ms) FROM mosqlite_scheduled") ||
         prep(s, &s->count_st, "SELECT count(*) FROM mosqlite_scheduled");
    db_trust(db, 0);
    if (rc || (rc = read_next(s)) || (rc = read_count(s))) {
        snprintf(err, errlen, "scheduled writes: %s", sqlite3_errmsg(s->h));
        sched_free(s);
        return NULL;
    }
    return s;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->find);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->due);
    sqlite3_finalize(s->next);
    sqlite3_finalize(s->count_st);
    free(s);
}

/* The scheduled request with this id: 1 (its hash and topic, copied into topic), 0 for
 * none, or -1 with SQLite's code in *rc. */
static int find(struct sched *s, const char *id, unsigned long long *hash, char *topic,
                size_t topiclen, int *rc)
{
    int found = 0;

    sqlite3_bind_text(s->find, 1, id, -1, SQLITE_STATIC);
    *rc = step(s, s->find);
    if (*rc == SQLITE_ROW) {
        found = 1;
        *hash = (unsigned long long)sqlite3_column_int64(s->find, 0);
        snprintf(topic, topiclen, "%s", (const char *)sqlite3_column_text(s->find, 1));
    }
    sqlite3_reset(s->find);
    return found ? 1 : *rc == SQLITE_DONE ? 0 : -1;
}

static int take_row(struct sched *s, const char *id, int *rc)
{
    sqlite3_bind_text(s->del, 1, id, -1, SQLITE_STATIC);
    *rc = step(s, s->del);
    sqlite3_reset(s->del);
    if (*rc != SQLITE_DONE)
        return -1;
    return sqlite3_changes(s->h) > 0;
}

int sched_add(struct sched *s, const struct req *r, const struct msg *m, long long due_ms,
              char *err, size_t errlen)
{
    char due[UTIL_TIME_LEN], topic[REQ_TOPIC_MAX + 1];
    unsigned long long hash;
    int rc, seen;

    if ((seen = db_id_seen(s->db, r->id, r->hash, &rc)) < 0)
        return db_fault(s->db, rc, err, errlen);
    if (seen == 1)
        return DB_DUP;
    if (seen == 2) {
        snprintf(err, errlen, "id \"%s\" was already used by a different request", r->id);
        return DB_REJECT;
    }
    if ((seen = find(s, r->id, &hash, topic, sizeof topic, &rc)) < 0)
        return db_fault(s->db, rc, err, errlen);
    if (seen && hash == r->hash)
        return DB_DUP;
    if (seen) {
        snprintf(err, errlen, "id \"%s\" is already used by a different scheduled request", r->id);
        return DB_REJECT;
    }
    if (s->count >= s->limit) {
        snprintf(err, errlen, "too many scheduled requests: %lld are waiting (limit %lld, "
                 "schedule-max)", s->count, s->limit);
        return DB_REJECT;
    }
    util_time_format(due_ms, due);
    if ((rc = db_req_begin(s->db, err, errlen)) != DB_OK)
        return rc;
    sqlite3_bind_text(s->ins, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->ins, 2, due_ms);
    sqlite3_bind_text(s->ins, 3, due, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->ins, 4, m->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->ins, 5, m->payload, (int)m->len, SQLITE_STATIC);
    sqlite3_bind_int64(s->ins, 6, (sqlite3_int64)r->hash);
    if (m->resp_topic)
        sqlite3_bind_text(s->ins, 7, m->resp_topic, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s->ins, 7);
    if (m->corr && m->corrlen > 0)
        sqlite3_bind_blob(s->ins, 8, m->corr, m->corrlen, SQLITE_STATIC);
    else
        sqlite3_bind_null(s->ins, 8);
    rc = step(s, s->ins);
    sqlite3_reset(s->ins);
    sqlite3_clear_bindings(s->ins);
    rc = rc == SQLITE_DONE ? DB_OK : db_own(s->db, rc, "the request could not be scheduled", err, errlen);
    if ((rc = db_req_end(s->db, rc, err, errlen)) != DB_OK)
        return rc;
    if (due_ms < s->next_due)
        s->next_due = due_ms;
    s->count++;
    return DB_OK;
}

int sched_holds(struct sched *s, const char *id, char *err, size_t errlen)
{
    char topic[REQ_TOPIC_MAX + 1];
    unsigned long long hash;
    int rc, found;

    if (s->count <= 0)
        return 0;
    if ((found = find(s, id, &hash, topic, sizeof topic, &rc)) < 0) {
        db_fault(s->db, rc, err, errlen);
        return -1;
    }
    if (found)
        snprintf(err, errlen, "id \"%s\" is already used by a scheduled request", id);
    return found;
}

int sched_take(struct sched *s, const char *id, char *err, size_t errlen)
{
    int rc, took = take_row(s, id, &rc);

    if (took < 0)
        return db_fault(s->db, rc, err, errlen);
    s->count -= took;
    return took ? DB_OK : DB_DUP;
}

int sched_cancel(struct sched *s, const struct req *r, const char *topic, const char *write_topic,
                 char *err, size_t errlen)
{
    char its_topic[REQ_TOPIC_MAX + 1], what[192];
    unsigned long long hash = 0;
    int rc, src, seen;

    if (r->id && (seen = db_id_seen(s->db, r->id, r->hash, &rc))) {
        if (seen < 0)
            return db_fault(s->db, rc, err, errlen);
        if (seen == 1)
            return DB_DUP;
        snprintf(err, errlen, "id \"%s\" was already used by a different request", r->id);
        return DB_REJECT;
    }
    /* Ids are one namespace: the cancel's own may not be a waiting request's, its
     * target's included. */
    if (r->id && (seen = sched_holds(s, r->id, err, errlen)))
        return seen < 0 ? DB_FAULT : DB_REJECT;
    if ((seen = find(s, r->cancel, &hash, its_topic, sizeof its_topic, &rc)) < 0)
        return db_fault(s->db, rc, err, errlen);
    if (!seen) {
        if ((seen = db_id_seen(s->db, r->cancel, 0, &rc)) < 0)
            return db_fault(s->db, rc, err, errlen);
        snprintf(err, errlen, seen ? "request \"%s\" is not scheduled any more: it was applied or "
                 "cancelled" : "no request with id \"%s\" is scheduled", r->cancel);
        return DB_REJECT;
    }
    if (strcmp(topic, write_topic) && strcmp(topic, its_topic)) {
        snprintf(err, errlen, "request \"%s\" was published on another topic: cancel it on %.200s "
                 "or on %.200s", r->cancel, its_topic, write_topic);
        return DB_REJECT;
    }
    /* Its id is kept as if applied: a late retry of it is a duplicate, not a new request.
     * Should what the writer keeps refuse that (an id kept already), the cancel alone is
     * rejected and the request stays scheduled. */
    if ((rc = db_req_begin(s->db, err, errlen)) != DB_OK)
        return rc;
    if (take_row(s, r->cancel, &src) < 0 || (src = db_id_keep(s->db, r->cancel, hash)) != SQLITE_OK ||
        (r->id && (src = db_id_keep(s->db, r->id, r->hash)) != SQLITE_OK)) {
        snprintf(what, sizeof what, "request \"%s\" could not be cancelled", r->cancel);
        rc = db_own(s->db, src, what, err, errlen);
    }
    if ((rc = db_req_end(s->db, rc, err, errlen)) == DB_OK)
        s->count--;
    return rc;
}

int sched_wait_ms(const struct sched *s, int max_ms, int paused)
{
    long long d;

    if (paused || mq_injected(s->mq))
        return max_ms;
    if (s->recount)
        return 0;
    d = s->next_due - util_wall_ms();
    return d <= 0 ? 0 : d < max_ms ? (int)d : max_ms;
}

void sched_tick(struct sched *s, int paused)
{
    long long now = util_wall_ms();
    int rc;

    if (paused || mq_injected(s->mq))
        return;
    if (s->recount) {
        s->recount = 0;
        if ((rc = read_next(s))) {
            log_warn("scheduled writes: reading the next one due: %s", sqlite3_errstr(rc));
            s->next_due = now + SCHED_RETRY_MS;
            return;
        }
    }
    if (s->next_due > now)
        return;
    sqlite3_bind_int64(s->due, 1, now);
    sqlite3_bind_int64(s->due, 2, (sqlite3_int64)s->max);
    while ((rc = step(s, s->due)) == SQLITE_ROW) {
        const void *corr = sqlite3_column_blob(s->due, 4);
        if (mq_inject(s->mq, (const char *)sqlite3_column_text(s->due, 1),
                      (const char *)sqlite3_column_text(s->due, 2), (size_t)sqlite3_column_bytes(s->due, 2),
                      (const char *)sqlite3_column_text(s->due, 3), corr,
                      corr ? sqlite3_column_bytes(s->due, 4) : 0,
                      (const char *)sqlite3_column_text(s->due, 0))) {
            log_error("out of memory: scheduled requests wait for the next turn");
            break;
        }
    }
    sqlite3_reset(s->due);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_warn("scheduled writes: reading those due: %s", sqlite3_errstr(rc));
        s->next_due = now + SCHED_RETRY_MS;
        return;
    }
    /* Once these are through, read when the next is due (more may be due already). */
    s->recount = 1;
}
