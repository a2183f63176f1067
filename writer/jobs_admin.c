/* jobs_admin.c: the jobs' changes that come from the writer's timers (due jobs, a
 * worker connection's Last Will), from cancels and from operators (retry, discard, run
 * now, queue settings), and what is read for the status and at start (see jobs.h). */
#include "jobs_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ids (and a second column, or 0) a statement returns, into a new array. */
static int collect(struct jobs *j, int i, long long (**ids)[2], size_t *n)
{
    size_t cap = 0;
    int rc;

    *ids = NULL;
    *n = 0;
    while ((rc = jobs_step(j, i)) == SQLITE_ROW) {
        if (*n == cap) {
            long long (*p)[2] = realloc(*ids, (cap = cap ? 2 * cap : 16) * sizeof *p);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            *ids = p;
        }
        (*ids)[*n][0] = sqlite3_column_int64(j->st[i], 0);
        (*ids)[*n][1] = sqlite3_column_count(j->st[i]) > 1 ? sqlite3_column_int64(j->st[i], 1) : 0;
        (*n)++;
    }
    jobs_reset(j, i);
    if (rc == SQLITE_DONE)
        return 0;
    free(*ids);
    *ids = NULL;
    return rc;
}

int jobs_due(struct jobs *j, long long now_ms, int max, int *made, long long *next_ms, char *err,
             size_t errlen)
{
    long long (*ids)[2];
    struct jobs_row r;
    size_t n, k;
    int rc, found;

    *made = 0;
    *next_ms = LLONG_MAX;
    sqlite3_bind_int64(j->st[ST_DUE], 1, now_ms);
    sqlite3_bind_int(j->st[ST_DUE], 2, max > 0 ? max : 1);
    if ((rc = collect(j, ST_DUE, &ids, &n)))
        return jobs_fault(j, rc, err, errlen);
    for (k = 0; k < n && !rc; k++) {
        if ((found = jobs_load(j, ids[k][0], &r, &rc)) < 0)
            break;
        rc = 0;
        if (found && (r.state == JOBS_SCHEDULED || r.state == JOBS_RETRY)) {
            rc = jobs_place(j, &r, now_ms);
            (*made)++;
        }
        jobs_row_free(&r);
    }
    free(ids);
    if (rc)
        return jobs_fault(j, rc, err, errlen);
    if ((rc = jobs_step(j, ST_NEXT)) == SQLITE_ROW && sqlite3_column_type(j->st[ST_NEXT], 0) != SQLITE_NULL)
        *next_ms = sqlite3_column_int64(j->st[ST_NEXT], 0);
    jobs_reset(j, ST_NEXT);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DB_OK : jobs_fault(j, rc, err, errlen);
}

int jobs_lost_session(struct jobs *j, const char *session, const char *reason, long long now_ms,
                      int *n, char *err, size_t errlen)
{
    long long (*ids)[2];
    size_t cnt, k;
    int rc;

    *n = 0;
    sqlite3_bind_text(j->st[ST_SESSION], 1, session, -1, SQLITE_STATIC);
    if ((rc = collect(j, ST_SESSION, &ids, &cnt)))
        return jobs_fault(j, rc, err, errlen);
    for (k = 0; k < cnt; k++) {
        if ((rc = jobs_lost(j, ids[k][0], ids[k][1], reason, now_ms, NULL, err, errlen)) == DB_FAULT)
            break;
        *n += rc == DB_OK;
        rc = DB_OK;
    }
    free(ids);
    return rc;
}

int jobs_running(struct jobs *j, int (*fn)(void *arg, const struct jobs_lease *l), void *arg,
                 char *err, size_t errlen)
{
    sqlite3_stmt *st = j->st[ST_RUNNING];
    struct jobs_lease l;
    int rc;

    while ((rc = jobs_step(j, ST_RUNNING)) == SQLITE_ROW) {
        l.job = sqlite3_column_int64(st, 0);
        l.attempt = sqlite3_column_int64(st, 1);
        l.queue = (const char *)sqlite3_column_text(st, 2);
        l.worker = (const char *)sqlite3_column_text(st, 3);
        l.session = (const char *)sqlite3_column_text(st, 4);
        l.started_ms = sqlite3_column_int64(st, 5);
        l.lease_ms = sqlite3_column_int64(st, 6);
        l.timeout_ms = sqlite3_column_int64(st, 7);
        l.cancel_asked = sqlite3_column_int(st, 8);
        if (fn(arg, &l)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    jobs_reset(j, ST_RUNNING);
    return rc == SQLITE_DONE ? DB_OK : jobs_fault(j, rc, err, errlen);
}

/* Job `job` loaded into r: DB_OK, DB_REJECT "no job N", DB_FAULT. */
static int load(struct jobs *j, long long job, struct jobs_row *r, char *err, size_t errlen)
{
    int rc, found = jobs_load(j, job, r, &rc);

    return found < 0 ? jobs_fault(j, rc, err, errlen) : found ? DB_OK : jobs_no_job(job, err, errlen);
}

static int queued(int s)
{
    return s == JOBS_SCHEDULED || s == JOBS_READY || s == JOBS_BLOCKED || s == JOBS_RETRY;
}

/* A queued job r ends in `to` with this error. 0 or SQLite's code. */
static int drop(struct jobs *j, struct jobs_row *r, int to, const char *error, long long now_ms)
{
    int held = r->state == JOBS_READY, rc;

    if ((rc = jobs_outcome(j, r->id, 0, 0, NULL, error, NULL)) || (rc = jobs_set_state(j, r, to, now_ms)))
        return rc;
    return held ? jobs_promote(j, r->conc_key, now_ms) : 0;
}

static int done_with(struct jobs *j, struct jobs_row *r, int rc, struct jobs_end *out, char *err,
                     size_t errlen)
{
    if (!rc)
        jobs_end_of(r, r->run_at_ms, out);
    jobs_row_free(r);
    return rc ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

int jobs_cancel(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                size_t errlen)
{
    struct jobs_row r;
    int rc;

    if ((rc = load(j, job, &r, err, errlen)))
        return rc;
    if (JOBS_FINAL(r.state)) {
        snprintf(err, errlen, "job %lld is already %s", job, jobs_state_name(r.state));
        jobs_end_of(&r, 0, out);
        jobs_row_free(&r);
        return DB_REJECT;
    }
    if (r.state == JOBS_RUNNING) {
        if (r.cancel_req) {
            jobs_end_of(&r, 0, out);
            jobs_row_free(&r);
            return DB_DUP;
        }
        sqlite3_bind_int64(j->st[ST_CANCEL_REQ], 1, job);
        rc = jobs_exec(j, ST_CANCEL_REQ);
        r.cancel_req = 1;
    } else
        rc = drop(j, &r, JOBS_CANCELLED, NULL, now_ms);
    return done_with(j, &r, rc, out, err, errlen);
}

int jobs_retry(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
               size_t errlen)
{
    struct jobs_row r;
    long long holder;
    int rc;

    if ((rc = load(j, job, &r, err, errlen)))
        return rc;
    if (r.state != JOBS_FAILED && r.state != JOBS_DEAD && r.state != JOBS_CANCELLED) {
        snprintf(err, errlen, "job %lld is %s: only a failed, dead or cancelled job can be retried", job,
                 jobs_state_name(r.state));
        jobs_row_free(&r);
        return DB_REJECT;
    }
    if (r.unique_key) {
        if ((holder = jobs_holder(j, r.queue, r.unique_key, &rc)) < 0) {
            jobs_row_free(&r);
            return jobs_fault(j, rc, err, errlen);
        }
        if (holder) {
            snprintf(err, errlen, "job %lld cannot be retried: its unique key \"%s\" is held by job %lld",
                     job, r.unique_key, holder);
            jobs_row_free(&r);
            return DB_REJECT;
        }
    }
    sqlite3_bind_int64(j->st[ST_RESET], 1, job);
    sqlite3_bind_int64(j->st[ST_RESET], 2, now_ms);
    if (!(rc = jobs_exec(j, ST_RESET))) {
        r.cancel_req = 0;
        r.run_at_ms = now_ms;
        rc = jobs_place(j, &r, now_ms);
    }
    return done_with(j, &r, rc, out, err, errlen);
}

int jobs_discard(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                 size_t errlen)
{
    struct jobs_row r;
    int rc;

    if ((rc = load(j, job, &r, err, errlen)))
        return rc;
    if (!queued(r.state)) {
        if (r.state == JOBS_RUNNING)
            snprintf(err, errlen, "job %lld is running: cancel it instead", job);
        else
            snprintf(err, errlen, "job %lld is already %s", job, jobs_state_name(r.state));
        jobs_row_free(&r);
        return DB_REJECT;
    }
    rc = drop(j, &r, JOBS_DEAD, "discarded by an operator", now_ms);
    return done_with(j, &r, rc, out, err, errlen);
}

int jobs_run_now(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                 size_t errlen)
{
    struct jobs_row r;
    int rc;

    if ((rc = load(j, job, &r, err, errlen)))
        return rc;
    if (r.state != JOBS_SCHEDULED && r.state != JOBS_RETRY) {
        snprintf(err, errlen, "job %lld is %s: only a scheduled job or one waiting to retry can run now",
                 job, jobs_state_name(r.state));
        jobs_row_free(&r);
        return DB_REJECT;
    }
    if (!(rc = jobs_run_at(j, job, now_ms))) {
        r.run_at_ms = now_ms;
        rc = jobs_place(j, &r, now_ms);
    }
    return done_with(j, &r, rc, out, err, errlen);
}

static int queue_set(struct jobs *j, int i, const char *queue, long long v, char *err, size_t errlen)
{
    int rc;

    if (jobs_check_queue(queue, err, errlen))
        return DB_REJECT;
    sqlite3_bind_text(j->st[i], 1, queue, -1, SQLITE_STATIC);
    if (v >= 0)
        sqlite3_bind_int64(j->st[i], 2, v);
    return (rc = jobs_exec(j, i)) ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

int jobs_queue_pause(struct jobs *j, const char *queue, int paused, char *err, size_t errlen)
{
    return queue_set(j, ST_PAUSE, queue, !!paused, err, errlen);
}

int jobs_queue_max_running(struct jobs *j, const char *queue, long long max_running, char *err,
                           size_t errlen)
{
    return queue_set(j, ST_MAX_RUNNING, queue, max_running < 0 ? -1 : max_running, err, errlen);
}

int jobs_counts(struct jobs *j, int (*fn)(void *arg, const struct jobs_count *c), void *arg,
                char *err, size_t errlen)
{
    sqlite3_stmt *st = j->st[ST_COUNTS];
    struct jobs_count c;
    int rc, i;

    while ((rc = jobs_step(j, ST_COUNTS)) == SQLITE_ROW) {
        c.queue = (const char *)sqlite3_column_text(st, 0);
        c.paused = sqlite3_column_int(st, 1);
        c.max_running = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
        for (i = 0; i < JOBS_NSTATES; i++)
            c.n[i] = sqlite3_column_int64(st, 3 + i);
        if (fn(arg, &c)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    jobs_reset(j, ST_COUNTS);
    return rc == SQLITE_DONE ? DB_OK : jobs_fault(j, rc, err, errlen);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);

    return s ? strdup(s) : NULL;
}

int jobs_info(struct jobs *j, long long job, struct jobs_info *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = j->st[ST_INFO];
    int rc;

    memset(out, 0, sizeof *out);
    sqlite3_bind_int64(st, 1, job);
    rc = jobs_step(j, ST_INFO);
    if (rc == SQLITE_ROW) {
        const char *q = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);
        int i;
        snprintf(out->queue, sizeof out->queue, "%s", q ? q : "");
        out->state = JOBS_FAILED;
        for (i = 0; i < JOBS_NSTATES; i++)
            if (state && !strcmp(state, jobs_state_name(i)))
                out->state = (enum jobs_state)i;
        out->attempt = sqlite3_column_int64(st, 2);
        out->cancel_asked = sqlite3_column_int(st, 3);
        out->follow = sqlite3_column_int(st, 4);
        out->enq_id = col_dup(st, 5);
        out->reply_to = col_dup(st, 6);
        out->error = col_dup(st, 7);
        out->has_exit = sqlite3_column_type(st, 8) != SQLITE_NULL;
        out->exit_code = sqlite3_column_int64(st, 8);
    }
    jobs_reset(j, ST_INFO);
    if (rc == SQLITE_ROW)
        return DB_OK;
    if (rc == SQLITE_DONE)
        return jobs_no_job(job, err, errlen);
    return jobs_fault(j, rc, err, errlen);
}

void jobs_info_free(struct jobs_info *i)
{
    free(i->enq_id);
    free(i->reply_to);
    free(i->error);
    i->enq_id = i->reply_to = i->error = NULL;
}

int jobs_progress(struct jobs *j, long long job, long long attempt, const char *progress,
                  char *err, size_t errlen)
{
    struct jobs_info in;
    int rc;

    sqlite3_bind_int64(j->st[ST_PROGRESS], 1, job);
    sqlite3_bind_int64(j->st[ST_PROGRESS], 2, attempt);
    jobs_text(j, ST_PROGRESS, 3, progress);
    if ((rc = jobs_exec(j, ST_PROGRESS)))
        return jobs_fault(j, rc, err, errlen);
    if (sqlite3_changes(j->h) == 1)
        return DB_OK;
    if ((rc = jobs_info(j, job, &in, err, errlen)) != DB_OK)
        return rc;
    snprintf(err, errlen, "lease lost: job %lld attempt %lld is no longer yours (%s, attempt %lld)", job,
             attempt, jobs_state_name(in.state), in.attempt);
    jobs_info_free(&in);
    return DB_REJECT;
}
