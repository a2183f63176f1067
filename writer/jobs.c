/* jobs.c: the job tables, their statements, the changes of state every other part
 * goes through, and enqueue (see jobs.h). Grants and the ends of a lease are in
 * jobs_lease.c; the timers' and operators' changes in jobs_admin.c.
 *
 * Every change of a job's state goes through set_state (the row, the queue's counts,
 * the event); every job that leaves a concurrency slot is followed by promote (the
 * key's next blocked job becomes ready). The indexes are partial, one per question the
 * writer asks (a grant, what is due, who is blocked, the slots held, a unique key, one
 * session's leases), so none of them grows with the finished jobs. */
#include "jobs_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const char *const state_names[JOBS_NSTATES] = {
    "scheduled", "ready", "blocked", "running", "retry", "done", "failed", "dead", "cancelled",
};

const char *jobs_state_name(int s)
{
    return s >= 0 && s < JOBS_NSTATES ? state_names[s] : NULL;
}

static int state_of(const char *name)
{
    int i;

    for (i = 0; name && i < JOBS_NSTATES; i++)
        if (!strcmp(name, state_names[i]))
            return i;
    return JOBS_FAILED;           /* not written by the writer: never granted */
}

#define LIVE "('scheduled','ready','blocked','running','retry')"

static const char schema_sql[] =
    /* One row per job. id AUTOINCREMENT: a job id is never used twice, even once the
     * newest rows are pruned, so a stale (job, attempt) can never name a newer job. */
    "CREATE TABLE IF NOT EXISTS mosqlite_jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, state TEXT NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0, run_at_ms INTEGER NOT NULL, payload TEXT NOT NULL,"
    " unique_key TEXT, conc_key TEXT, conc_limit INTEGER,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
    " lost INTEGER NOT NULL DEFAULT 0, max_lost INTEGER NOT NULL,"
    " backoff_ms INTEGER NOT NULL, backoff_cap_ms INTEGER NOT NULL, jitter_pct INTEGER NOT NULL,"
    " lease_ms INTEGER NOT NULL, timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " worker TEXT, session TEXT, started_ms INTEGER, cancel_req INTEGER NOT NULL DEFAULT 0,"
    " progress TEXT, result TEXT, error TEXT, exit_code INTEGER,"
    " enq_id TEXT, reply_to TEXT, follow INTEGER NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);"
    /* A grant: the best ready job of a queue. */
    "CREATE INDEX IF NOT EXISTS mosqlite_jobs_ready ON mosqlite_jobs (queue, priority, id)"
    " WHERE state = 'ready';"
    /* Due: scheduled and retry jobs by time. */
    "CREATE INDEX IF NOT EXISTS mosqlite_jobs_due ON mosqlite_jobs (run_at_ms)"
    " WHERE state IN ('scheduled','retry');"
    /* Unblock: a key's blocked jobs in grant order. */
    "CREATE INDEX IF NOT EXISTS mosqlite_jobs_blocked ON mosqlite_jobs (conc_key, priority, id)"
    " WHERE state = 'blocked';"
    /* The slots a key's jobs hold (ready or running): at most its limit per key. */
    "CREATE INDEX IF NOT EXISTS mosqlite_jobs_slots ON mosqlite_jobs (conc_key)"
    " WHERE conc_key IS NOT NULL AND state IN ('ready','running');"
    /* One worker connection's leases (its Last Will), and all leases at start. */
    "CREATE INDEX IF NOT EXISTS mosqlite_jobs_running ON mosqlite_jobs (session)"
    " WHERE state = 'running';"
    /* At most one live job per (queue, unique key); a running job whose cancel was
     * asked no longer holds its key (a `replace` supersedes it). */
    "CREATE UNIQUE INDEX IF NOT EXISTS mosqlite_jobs_unique ON mosqlite_jobs (queue, unique_key)"
    " WHERE unique_key IS NOT NULL AND state IN " LIVE " AND cancel_req = 0;"
    "CREATE TABLE IF NOT EXISTS mosqlite_job_attempts ("
    " job INTEGER NOT NULL, attempt INTEGER NOT NULL, claim_id TEXT, worker TEXT, session TEXT,"
    " started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, exit_code INTEGER, error TEXT,"
    " PRIMARY KEY (job, attempt)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS mosqlite_job_attempts_claim ON mosqlite_job_attempts"
    " (claim_id) WHERE claim_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS mosqlite_job_queues ("
    " queue TEXT NOT NULL PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, max_running INTEGER,"
    " n_scheduled INTEGER NOT NULL DEFAULT 0, n_ready INTEGER NOT NULL DEFAULT 0,"
    " n_blocked INTEGER NOT NULL DEFAULT 0, n_running INTEGER NOT NULL DEFAULT 0,"
    " n_retry INTEGER NOT NULL DEFAULT 0, n_done INTEGER NOT NULL DEFAULT 0,"
    " n_failed INTEGER NOT NULL DEFAULT 0, n_dead INTEGER NOT NULL DEFAULT 0,"
    " n_cancelled INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mosqlite_job_cron ("
    " name TEXT NOT NULL PRIMARY KEY, next_tick_ms INTEGER NOT NULL, last_tick_ms INTEGER)"
    " WITHOUT ROWID;";

/* The counts move from one state (-1: none) to another; the order of the columns is
 * enum jobs_state's. */
#define MOVE(n, i) n " = " n " + (?3 = " #i ") - (?2 = " #i ")"

static const char *const sql[ST_N] = {
    [ST_INSERT] = "INSERT INTO mosqlite_jobs (queue, state, priority, run_at_ms, payload, unique_key,"
                  " conc_key, conc_limit, max_attempts, max_lost, backoff_ms, backoff_cap_ms, jitter_pct,"
                  " lease_ms, timeout_ms, enq_id, reply_to, follow, created_at) VALUES (?1, ?2, ?3, ?4,"
                  " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    [ST_GET] = "SELECT queue, state, attempt, conc_key, conc_limit, failures, max_attempts, lost,"
               " max_lost, backoff_ms, backoff_cap_ms, jitter_pct, cancel_req, follow, unique_key,"
               " worker, payload, lease_ms, timeout_ms, priority, created_at, run_at_ms"
               " FROM mosqlite_jobs WHERE id = ?1",
    [ST_UNIQUE] = "SELECT id FROM mosqlite_jobs WHERE queue = ?1 AND unique_key = ?2 AND"
                  " unique_key IS NOT NULL AND state IN " LIVE " AND cancel_req = 0",
    [ST_SLOTS] = "SELECT count(*) FROM mosqlite_jobs WHERE conc_key = ?1 AND conc_key IS NOT NULL"
                 " AND state IN ('ready','running')",
    [ST_BLOCKED] = "SELECT id FROM mosqlite_jobs WHERE conc_key = ?1 AND state = 'blocked'"
                   " ORDER BY priority, id LIMIT 1",
    [ST_BEST] = "SELECT id FROM mosqlite_jobs WHERE queue = ?1 AND state = 'ready'"
                " ORDER BY priority, id LIMIT 1",
    [ST_QUEUE] = "SELECT paused, max_running, n_running FROM mosqlite_job_queues WHERE queue = ?1",
    [ST_QUEUE_ADD] = "INSERT OR IGNORE INTO mosqlite_job_queues (queue) VALUES (?1)",
    [ST_COUNT] = "UPDATE mosqlite_job_queues SET " MOVE("n_scheduled", 0) ", " MOVE("n_ready", 1) ", "
                 MOVE("n_blocked", 2) ", " MOVE("n_running", 3) ", " MOVE("n_retry", 4) ", "
                 MOVE("n_done", 5) ", " MOVE("n_failed", 6) ", " MOVE("n_dead", 7) ", "
                 MOVE("n_cancelled", 8) " WHERE queue = ?1",
    [ST_STATE] = "UPDATE mosqlite_jobs SET state = ?2, finished_at = ?3 WHERE id = ?1",
    [ST_LEASE] = "UPDATE mosqlite_jobs SET attempt = attempt + 1, worker = ?2, session = ?3,"
                 " started_ms = ?4, started_at = ?5, progress = NULL WHERE id = ?1 RETURNING attempt",
    [ST_ATT_ADD] = "INSERT INTO mosqlite_job_attempts (job, attempt, claim_id, worker, session,"
                   " started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_ATT_END] = "UPDATE mosqlite_job_attempts SET ended_at = ?3, outcome = ?4, exit_code = ?5,"
                   " error = ?6 WHERE job = ?1 AND attempt = ?2",
    [ST_CLAIM] = "SELECT job, attempt FROM mosqlite_job_attempts WHERE claim_id = ?1",
    [ST_OUTCOME] = "UPDATE mosqlite_jobs SET failures = failures + ?2, lost = lost + ?3, result = ?4,"
                   " error = ?5, exit_code = ?6 WHERE id = ?1",
    [ST_RUN_AT] = "UPDATE mosqlite_jobs SET run_at_ms = ?2 WHERE id = ?1",
    [ST_CANCEL_REQ] = "UPDATE mosqlite_jobs SET cancel_req = 1 WHERE id = ?1",
    [ST_RESET] = "UPDATE mosqlite_jobs SET failures = 0, lost = 0, cancel_req = 0, result = NULL,"
                 " error = NULL, exit_code = NULL, run_at_ms = ?2 WHERE id = ?1",
    [ST_DUE] = "SELECT id FROM mosqlite_jobs WHERE state IN ('scheduled','retry') AND run_at_ms <= ?1"
               " ORDER BY run_at_ms LIMIT ?2",
    [ST_NEXT] = "SELECT min(run_at_ms) FROM mosqlite_jobs WHERE state IN ('scheduled','retry')",
    [ST_SESSION] = "SELECT id, attempt FROM mosqlite_jobs WHERE session = ?1 AND state = 'running'",
    [ST_RUNNING] = "SELECT id, attempt, queue, worker, session, started_ms, lease_ms, timeout_ms,"
                   " cancel_req FROM mosqlite_jobs WHERE state = 'running'",
    [ST_PAUSE] = "INSERT INTO mosqlite_job_queues (queue, paused) VALUES (?1, ?2)"
                 " ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused",
    [ST_MAX_RUNNING] = "INSERT INTO mosqlite_job_queues (queue, max_running) VALUES (?1, ?2)"
                       " ON CONFLICT (queue) DO UPDATE SET max_running = excluded.max_running",
    [ST_COUNTS] = "SELECT queue, paused, max_running, n_scheduled, n_ready, n_blocked, n_running,"
                  " n_retry, n_done, n_failed, n_dead, n_cancelled FROM mosqlite_job_queues"
                  " ORDER BY queue",
    [ST_INFO] = "SELECT queue, state, attempt, cancel_req, follow, enq_id, reply_to, error, exit_code"
                " FROM mosqlite_jobs WHERE id = ?1",
    [ST_PROGRESS] = "UPDATE mosqlite_jobs SET progress = ?3 WHERE id = ?1 AND attempt = ?2"
                    " AND state = 'running'",
};

int jobs_open(struct jobs **out, sqlite3 *h, char *err, size_t errlen)
{
    struct jobs *j = calloc(1, sizeof *j);
    char *emsg = NULL;
    int i;

    *out = NULL;
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return DB_FAULT;
    }
    j->h = h;
    jobs_seed(j, (unsigned long long)util_now_exact_ms() * 1000003ULL ^ (unsigned long long)getpid());
    if (sqlite3_exec(h, schema_sql, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "jobs: creating the tables: %s", emsg ? emsg : sqlite3_errmsg(h));
        sqlite3_free(emsg);
        jobs_close(j);
        return DB_FAULT;
    }
    for (i = 0; i < ST_N; i++)
        if (sqlite3_prepare_v3(h, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "jobs: preparing %s: %s", sql[i], sqlite3_errmsg(h));
            jobs_close(j);
            return DB_FAULT;
        }
    *out = j;
    return DB_OK;
}

void jobs_close(struct jobs *j)
{
    int i;

    if (!j)
        return;
    for (i = 0; i < ST_N; i++)
        sqlite3_finalize(j->st[i]);
    free(j->ev);
    free(j);
}

void jobs_set_trust(struct jobs *j, void (*trust)(void *arg, int on), void *arg)
{
    j->trust = trust;
    j->trust_arg = arg;
}

void jobs_seed(struct jobs *j, unsigned long long seed)
{
    j->rng = seed;
}

/* ---- helpers shared with jobs_lease.c and jobs_admin.c ---- */

int jobs_step(struct jobs *j, int i)
{
    int rc;

    if (j->trust)
        j->trust(j->trust_arg, 1);
    rc = sqlite3_step(j->st[i]);
    if (j->trust)
        j->trust(j->trust_arg, 0);
    return rc;
}

void jobs_reset(struct jobs *j, int i)
{
    sqlite3_reset(j->st[i]);
    sqlite3_clear_bindings(j->st[i]);
}

/* Run a statement that returns no row; 0 or SQLite's code. */
int jobs_exec(struct jobs *j, int i)
{
    int rc = jobs_step(j, i);

    jobs_reset(j, i);
    return rc == SQLITE_DONE ? 0 : rc;
}

int jobs_fault(struct jobs *j, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "jobs: %s", rc == SQLITE_NOMEM ? "out of memory" :
             sqlite3_errcode(j->h) == rc ? sqlite3_errmsg(j->h) : sqlite3_errstr(rc));
    return DB_FAULT;
}

void jobs_text(struct jobs *j, int i, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(j->st[i], col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(j->st[i], col);
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);

    return s ? strdup(s) : NULL;
}

void jobs_row_free(struct jobs_row *r)
{
    free(r->conc_key);
    free(r->unique_key);
    free(r->worker);
    free(r->payload);
    free(r->created_at);
    memset(r, 0, sizeof *r);
}

int jobs_load(struct jobs *j, long long id, struct jobs_row *r, int *rc)
{
    sqlite3_stmt *st = j->st[ST_GET];
    int found = 0;

    memset(r, 0, sizeof *r);
    sqlite3_bind_int64(st, 1, id);
    if ((*rc = jobs_step(j, ST_GET)) == SQLITE_ROW) {
        found = 1;
        r->id = id;
        snprintf(r->queue, sizeof r->queue, "%s", (const char *)sqlite3_column_text(st, 0));
        r->state = state_of((const char *)sqlite3_column_text(st, 1));
        r->attempt = sqlite3_column_int64(st, 2);
        r->conc_key = dup_col(st, 3);
        r->conc_limit = sqlite3_column_int64(st, 4);
        r->failures = sqlite3_column_int64(st, 5);
        r->max_attempts = sqlite3_column_int64(st, 6);
        r->lost = sqlite3_column_int64(st, 7);
        r->max_lost = sqlite3_column_int64(st, 8);
        r->backoff_ms = sqlite3_column_int64(st, 9);
        r->backoff_cap_ms = sqlite3_column_int64(st, 10);
        r->jitter_pct = sqlite3_column_int64(st, 11);
        r->cancel_req = sqlite3_column_int(st, 12);
        r->follow = sqlite3_column_int(st, 13);
        r->unique_key = dup_col(st, 14);
        r->worker = dup_col(st, 15);
        r->payload = dup_col(st, 16);
        r->lease_ms = sqlite3_column_int64(st, 17);
        r->timeout_ms = sqlite3_column_int64(st, 18);
        r->priority = sqlite3_column_int64(st, 19);
        r->created_at = dup_col(st, 20);
        r->run_at_ms = sqlite3_column_int64(st, 21);
        if ((sqlite3_column_type(st, 3) != SQLITE_NULL && !r->conc_key) ||
            (sqlite3_column_type(st, 14) != SQLITE_NULL && !r->unique_key) ||
            (sqlite3_column_type(st, 15) != SQLITE_NULL && !r->worker) || !r->payload ||
            !r->created_at) {
            jobs_row_free(r);
            *rc = SQLITE_NOMEM;
            found = -1;
        }
    } else if (*rc != SQLITE_DONE)
        found = -1;
    jobs_reset(j, ST_GET);
    if (found == 0)
        *rc = SQLITE_DONE;
    return found;
}

/* The live job holding (queue, key): its id, 0 for none, -1 with *rc. */
long long jobs_holder(struct jobs *j, const char *queue, const char *key, int *rc)
{
    long long id = 0;

    jobs_text(j, ST_UNIQUE, 1, queue);
    jobs_text(j, ST_UNIQUE, 2, key);
    if ((*rc = jobs_step(j, ST_UNIQUE)) == SQLITE_ROW)
        id = sqlite3_column_int64(j->st[ST_UNIQUE], 0);
    else if (*rc != SQLITE_DONE)
        id = -1;
    jobs_reset(j, ST_UNIQUE);
    return id;
}

/* The slots a key's jobs hold; -1 with *rc. */
static long long slots(struct jobs *j, const char *key, int *rc)
{
    long long n = -1;

    jobs_text(j, ST_SLOTS, 1, key);
    if ((*rc = jobs_step(j, ST_SLOTS)) == SQLITE_ROW)
        n = sqlite3_column_int64(j->st[ST_SLOTS], 0);
    jobs_reset(j, ST_SLOTS);
    return n;
}

/* The queue's counts move, and the change is recorded. 0 or SQLite's code. */
static int record(struct jobs *j, long long id, long long attempt, const char *queue, int from, int to,
                  int follow)
{
    struct jobs_event *e;
    int rc;

    jobs_text(j, ST_COUNT, 1, queue);
    sqlite3_bind_int(j->st[ST_COUNT], 2, from);
    sqlite3_bind_int(j->st[ST_COUNT], 3, to);
    if ((rc = jobs_exec(j, ST_COUNT)))
        return rc;
    if (j->nev == j->capev) {
        size_t cap = j->capev ? 2 * j->capev : 16;
        struct jobs_event *ev = realloc(j->ev, cap * sizeof *ev);
        if (!ev)
            return SQLITE_NOMEM;
        j->ev = ev;
        j->capev = cap;
    }
    e = &j->ev[j->nev++];
    e->job = id;
    e->attempt = attempt;
    snprintf(e->queue, sizeof e->queue, "%s", queue);
    e->from = from;
    e->to = to;
    e->follow = follow;
    return 0;
}

int jobs_set_state(struct jobs *j, struct jobs_row *r, int to, long long now_ms)
{
    char at[UTIL_TIME_LEN];
    int rc;

    sqlite3_bind_int64(j->st[ST_STATE], 1, r->id);
    jobs_text(j, ST_STATE, 2, state_names[to]);
    if (JOBS_FINAL(to)) {
        util_time_format(now_ms, at);
        jobs_text(j, ST_STATE, 3, at);
    }
    if ((rc = jobs_exec(j, ST_STATE)) || (rc = record(j, r->id, r->attempt, r->queue, r->state, to, r->follow)))
        return rc;
    r->state = to;
    return 0;
}

/* Ready, or blocked when its key has no free slot. 0 or SQLite's code. */
int jobs_place(struct jobs *j, struct jobs_row *r, long long now_ms)
{
    int rc = 0;
    long long n = 0;

    if (r->conc_key && (n = slots(j, r->conc_key, &rc)) < 0)
        return rc;
    return jobs_set_state(j, r, r->conc_key && n >= r->conc_limit ? JOBS_BLOCKED : JOBS_READY, now_ms);
}

/* A slot of key was freed: the key's blocked jobs become ready, in grant order, while
 * the first of them finds a free slot. 0 or SQLite's code. */
int jobs_promote(struct jobs *j, const char *key, long long now_ms)
{
    struct jobs_row r;
    long long id, n;
    int rc;

    if (!key)
        return 0;
    for (;;) {
        if ((n = slots(j, key, &rc)) < 0)
            return rc;
        jobs_text(j, ST_BLOCKED, 1, key);
        rc = jobs_step(j, ST_BLOCKED);
        id = rc == SQLITE_ROW ? sqlite3_column_int64(j->st[ST_BLOCKED], 0) : 0;
        jobs_reset(j, ST_BLOCKED);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? 0 : rc;
        if (jobs_load(j, id, &r, &rc) <= 0)
            return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
        rc = n < r.conc_limit ? jobs_set_state(j, &r, JOBS_READY, now_ms) : -1;
        jobs_row_free(&r);
        if (rc)
            return rc < 0 ? 0 : rc;
    }
}

/* The job's outcome columns. 0 or SQLite's code. */
int jobs_outcome(struct jobs *j, long long id, int failures, int lost, const char *result,
                 const char *error, const long long *exit_code)
{
    sqlite3_bind_int64(j->st[ST_OUTCOME], 1, id);
    sqlite3_bind_int(j->st[ST_OUTCOME], 2, failures);
    sqlite3_bind_int(j->st[ST_OUTCOME], 3, lost);
    jobs_text(j, ST_OUTCOME, 4, result);
    jobs_text(j, ST_OUTCOME, 5, error);
    if (exit_code)
        sqlite3_bind_int64(j->st[ST_OUTCOME], 6, *exit_code);
    return jobs_exec(j, ST_OUTCOME);
}

int jobs_run_at(struct jobs *j, long long id, long long at_ms)
{
    sqlite3_bind_int64(j->st[ST_RUN_AT], 1, id);
    sqlite3_bind_int64(j->st[ST_RUN_AT], 2, at_ms);
    return jobs_exec(j, ST_RUN_AT);
}

void jobs_end_of(const struct jobs_row *r, long long next_ms, struct jobs_end *out)
{
    if (!out)
        return;
    out->state = r->state;
    out->attempt = r->attempt;
    out->cancel_asked = r->state == JOBS_RUNNING && r->cancel_req;
    out->next_ms = next_ms;
}

int jobs_no_job(long long id, char *err, size_t errlen)
{
    snprintf(err, errlen, "no job %lld", id);
    return DB_REJECT;
}

/* ---- enqueue ---- */

void jobs_new_init(struct jobs_new *n)
{
    memset(n, 0, sizeof *n);
    n->on_duplicate = JOBS_DUP_IGNORE;
    n->max_attempts = JOBS_MAX_ATTEMPTS;
    n->max_lost = JOBS_MAX_LOST;
    n->backoff_ms = JOBS_BACKOFF_MS;
    n->backoff_cap_ms = JOBS_BACKOFF_CAP_MS;
    n->jitter_pct = JOBS_JITTER_PCT;
    n->lease_ms = JOBS_LEASE_MS;
}

int jobs_check_queue(const char *q, char *err, size_t errlen)
{
    const unsigned char *p;

    if (!q || !*q) {
        snprintf(err, errlen, "a job's queue needs a name");
        return DB_REJECT;
    }
    if (strlen(q) > JOBS_QUEUE_MAX) {
        snprintf(err, errlen, "queue name \"%.40s...\" is longer than %d bytes", q, JOBS_QUEUE_MAX);
        return DB_REJECT;
    }
    for (p = (const unsigned char *)q; *p; p++)
        if (*p == '/' || *p == '+' || *p == '#' || *p < 0x20 || *p == 0x7f) {
            if (*p >= 0x20 && *p != 0x7f)
                snprintf(err, errlen, "queue name \"%s\" cannot be one MQTT topic level (it has \"%c\")", q, *p);
            else
                snprintf(err, errlen, "queue name \"%s\" cannot be one MQTT topic level (it has byte 0x%02x)",
                         q, *p);
            return DB_REJECT;
        }
    return DB_OK;
}

static int check_new(const struct jobs_new *n, char *err, size_t errlen)
{
    if (jobs_check_queue(n->queue, err, errlen))
        return DB_REJECT;
    if (!n->payload)
        return util_fail(err, errlen, "a job needs a payload"), DB_REJECT;
    if (n->max_attempts < 1)
        return util_fail(err, errlen, "max_attempts must be at least 1, got %lld", n->max_attempts), DB_REJECT;
    if (n->max_lost < 1)
        return util_fail(err, errlen, "max_lost must be at least 1, got %lld", n->max_lost), DB_REJECT;
    if (n->conc_key && n->conc_limit < 1)
        return util_fail(err, errlen, "concurrency must be at least 1 with a concurrency_key, got %lld",
                         n->conc_limit), DB_REJECT;
    if (!n->conc_key && n->conc_limit)
        return util_fail(err, errlen, "concurrency needs a concurrency_key"), DB_REJECT;
    if (n->backoff_ms < 0 || n->backoff_cap_ms < n->backoff_ms)
        return util_fail(err, errlen, "backoff_ms must be 0 to backoff_cap_ms (%lld), got %lld",
                         n->backoff_cap_ms, n->backoff_ms), DB_REJECT;
    if (n->jitter_pct < 0 || n->jitter_pct > 100)
        return util_fail(err, errlen, "jitter must be 0 to 100 (percent), got %lld", n->jitter_pct), DB_REJECT;
    if (n->lease_ms < 1)
        return util_fail(err, errlen, "lease_ms must be at least 1, got %lld", n->lease_ms), DB_REJECT;
    if (n->timeout_ms < 0)
        return util_fail(err, errlen, "timeout_ms must be 0 (none) or more, got %lld", n->timeout_ms), DB_REJECT;
    return DB_OK;
}

/* Replace: the live job `old` of the same key gives way: cancelled at once when queued;
 * when running, its cancel is asked (it keeps its slot until it ends, and leaves the
 * unique index at once). 0 or SQLite's code. */
static int supersede(struct jobs *j, long long old, long long now_ms, struct jobs_enq *out)
{
    struct jobs_row r;
    int rc, held;

    if (jobs_load(j, old, &r, &rc) <= 0)
        return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    out->replaced = old;
    if (r.state == JOBS_RUNNING) {
        sqlite3_bind_int64(j->st[ST_CANCEL_REQ], 1, old);
        rc = jobs_exec(j, ST_CANCEL_REQ);
        out->replaced_attempt = r.attempt;
    } else {
        held = r.state == JOBS_READY;
        if (!(rc = jobs_outcome(j, old, 0, 0, NULL, "replaced by a newer job", NULL)) &&
            !(rc = jobs_set_state(j, &r, JOBS_CANCELLED, now_ms)) && held)
            rc = jobs_promote(j, r.conc_key, now_ms);
    }
    out->replaced_state = r.state;
    jobs_row_free(&r);
    return rc;
}

int jobs_enqueue(struct jobs *j, const struct jobs_new *n, long long now_ms, struct jobs_enq *out,
                 char *err, size_t errlen)
{
    char at[UTIL_TIME_LEN];
    sqlite3_stmt *st = j->st[ST_INSERT];
    long long held, run_at = n->run_at_ms > now_ms ? n->run_at_ms : now_ms;
    int rc, state;

    memset(out, 0, sizeof *out);
    if (check_new(n, err, errlen))
        return DB_REJECT;
    if (n->unique_key) {
        if ((held = jobs_holder(j, n->queue, n->unique_key, &rc)) < 0)
            return jobs_fault(j, rc, err, errlen);
        if (held && n->on_duplicate != JOBS_DUP_REPLACE) {
            struct jobs_row r;
            if (jobs_load(j, held, &r, &rc) <= 0)
                return jobs_fault(j, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, errlen);
            out->job = held;
            out->state = r.state;
            jobs_row_free(&r);
            if (n->on_duplicate == JOBS_DUP_IGNORE)
                return DB_DUP;
            snprintf(err, errlen, "unique key \"%s\" of queue \"%s\" is held by job %lld (%s)",
                     n->unique_key, n->queue, held, state_names[out->state]);
            return DB_REJECT;
        }
        if (held && (rc = supersede(j, held, now_ms, out)))
            return jobs_fault(j, rc, err, errlen);
    }
    jobs_text(j, ST_QUEUE_ADD, 1, n->queue);
    if ((rc = jobs_exec(j, ST_QUEUE_ADD)))
        return jobs_fault(j, rc, err, errlen);
    state = JOBS_SCHEDULED;
    if (run_at <= now_ms) {
        long long used = 0;
        if (n->conc_key && (used = slots(j, n->conc_key, &rc)) < 0)
            return jobs_fault(j, rc, err, errlen);
        state = n->conc_key && used >= n->conc_limit ? JOBS_BLOCKED : JOBS_READY;
    }
    util_time_format(now_ms, at);
    jobs_text(j, ST_INSERT, 1, n->queue);
    jobs_text(j, ST_INSERT, 2, state_names[state]);
    sqlite3_bind_int64(st, 3, n->priority);
    sqlite3_bind_int64(st, 4, run_at);
    jobs_text(j, ST_INSERT, 5, n->payload);
    jobs_text(j, ST_INSERT, 6, n->unique_key);
    jobs_text(j, ST_INSERT, 7, n->conc_key);
    if (n->conc_key)
        sqlite3_bind_int64(st, 8, n->conc_limit);
    sqlite3_bind_int64(st, 9, n->max_attempts);
    sqlite3_bind_int64(st, 10, n->max_lost);
    sqlite3_bind_int64(st, 11, n->backoff_ms);
    sqlite3_bind_int64(st, 12, n->backoff_cap_ms);
    sqlite3_bind_int64(st, 13, n->jitter_pct);
    sqlite3_bind_int64(st, 14, n->lease_ms);
    sqlite3_bind_int64(st, 15, n->timeout_ms);
    jobs_text(j, ST_INSERT, 16, n->enq_id);
    jobs_text(j, ST_INSERT, 17, n->reply_to);
    sqlite3_bind_int(st, 18, !!n->follow);
    jobs_text(j, ST_INSERT, 19, at);
    if ((rc = jobs_exec(j, ST_INSERT)))
        return jobs_fault(j, rc, err, errlen);
    out->job = sqlite3_last_insert_rowid(j->h);
    out->state = state;
    if ((rc = record(j, out->job, 0, n->queue, -1, state, !!n->follow)))
        return jobs_fault(j, rc, err, errlen);
    return DB_OK;
}

/* ---- events ---- */

const struct jobs_event *jobs_events(const struct jobs *j, size_t *n)
{
    *n = j->nev;
    return j->ev;
}

size_t jobs_events_mark(const struct jobs *j)
{
    return j->nev;
}

void jobs_events_cut(struct jobs *j, size_t mark)
{
    if (mark < j->nev)
        j->nev = mark;
}

void jobs_events_reset(struct jobs *j)
{
    j->nev = 0;
}
