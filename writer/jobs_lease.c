/* jobs_lease.c: grants and the ends of a lease, all under the fence (job, attempt),
 * and the backoff of a retry (see jobs.h). */
#include "jobs_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* splitmix64 */
static unsigned long long next_random(struct jobs *j)
{
    unsigned long long z = (j->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

long long jobs_backoff(struct jobs *j, long long base_ms, long long cap_ms, long long jitter_pct,
                       long long failures)
{
    long long d = base_ms < 0 ? 0 : base_ms, span;

    for (; failures > 1 && d < cap_ms; failures--)
        d = d > LLONG_MAX / 2 ? LLONG_MAX : d * 2;
    if (d > cap_ms)
        d = cap_ms;
    if (jitter_pct <= 0 || d <= 0)
        return d;
    span = d / 100 * jitter_pct + d % 100 * jitter_pct / 100;
    return d - (long long)(next_random(j) % (unsigned long long)(span + 1));
}

/* The end of an attempt in its row. 0 or SQLite's code. */
static int attempt_end(struct jobs *j, long long id, long long attempt, const char *outcome,
                       const long long *exit_code, const char *error, long long now_ms)
{
    char at[UTIL_TIME_LEN];

    util_time_format(now_ms, at);
    sqlite3_bind_int64(j->st[ST_ATT_END], 1, id);
    sqlite3_bind_int64(j->st[ST_ATT_END], 2, attempt);
    jobs_text(j, ST_ATT_END, 3, at);
    jobs_text(j, ST_ATT_END, 4, outcome);
    if (exit_code)
        sqlite3_bind_int64(j->st[ST_ATT_END], 5, *exit_code);
    jobs_text(j, ST_ATT_END, 6, error);
    return jobs_exec(j, ST_ATT_END);
}

/* ---- grant ---- */

void jobs_grant_free(struct jobs_grant *g)
{
    free(g->payload);
    free(g->enqueued_at);
    memset(g, 0, sizeof *g);
}

/* The grant of r (running under attempt). */
static void fill_grant(struct jobs_row *r, struct jobs_grant *g)
{
    g->job = r->id;
    g->attempt = r->attempt;
    snprintf(g->queue, sizeof g->queue, "%s", r->queue);
    g->payload = r->payload;
    r->payload = NULL;
    g->enqueued_at = r->created_at;
    r->created_at = NULL;
    g->lease_ms = r->lease_ms;
    g->timeout_ms = r->timeout_ms;
    g->lost = r->lost;
    g->priority = r->priority;
}

/* A claim id seen before: its grant again while that lease lives. */
static int grant_again(struct jobs *j, const char *claim_id, long long id, long long attempt,
                       struct jobs_grant *g, char *err, size_t errlen)
{
    struct jobs_row r;
    int rc, found = jobs_load(j, id, &r, &rc);

    if (found < 0)
        return jobs_fault(j, rc, err, errlen);
    if (found && r.state == JOBS_RUNNING && r.attempt == attempt) {
        fill_grant(&r, g);
        jobs_row_free(&r);
        return DB_DUP;
    }
    if (found)
        snprintf(err, errlen, "claim \"%s\" was already granted (job %lld attempt %lld), and that "
                 "lease has ended: the job is %s (attempt %lld)", claim_id, id, attempt,
                 jobs_state_name(r.state), r.attempt);
    else
        snprintf(err, errlen, "claim \"%s\" was already granted (job %lld attempt %lld)", claim_id, id,
                 attempt);
    jobs_row_free(&r);
    return DB_REJECT;
}

/* The best ready job of a queue that may grant one: its id, 0 for none, -1 with *rc. */
static long long best_of(struct jobs *j, const char *queue, int *rc)
{
    sqlite3_stmt *q = j->st[ST_QUEUE];
    long long id = 0;
    int open = 0;

    jobs_text(j, ST_QUEUE, 1, queue);
    if ((*rc = jobs_step(j, ST_QUEUE)) == SQLITE_ROW)
        open = !sqlite3_column_int(q, 0) && (sqlite3_column_type(q, 1) == SQLITE_NULL ||
                                              sqlite3_column_int64(q, 2) < sqlite3_column_int64(q, 1));
    jobs_reset(j, ST_QUEUE);
    if (*rc != SQLITE_ROW && *rc != SQLITE_DONE)
        return -1;
    if (!open)
        return 0;
    jobs_text(j, ST_BEST, 1, queue);
    if ((*rc = jobs_step(j, ST_BEST)) == SQLITE_ROW)
        id = sqlite3_column_int64(j->st[ST_BEST], 0);
    else if (*rc != SQLITE_DONE)
        id = -1;
    jobs_reset(j, ST_BEST);
    return id;
}

int jobs_grant(struct jobs *j, const char *const *queues, int nq, const char *worker,
               const char *session, const char *claim_id, long long now_ms,
               struct jobs_grant *g, char *err, size_t errlen)
{
    char at[UTIL_TIME_LEN];
    struct jobs_row r;
    long long id = 0;
    int i, rc;

    memset(g, 0, sizeof *g);
    if (claim_id) {
        jobs_text(j, ST_CLAIM, 1, claim_id);
        if ((rc = jobs_step(j, ST_CLAIM)) == SQLITE_ROW) {
            long long job = sqlite3_column_int64(j->st[ST_CLAIM], 0);
            long long attempt = sqlite3_column_int64(j->st[ST_CLAIM], 1);
            jobs_reset(j, ST_CLAIM);
            return grant_again(j, claim_id, job, attempt, g, err, errlen);
        }
        jobs_reset(j, ST_CLAIM);
        if (rc != SQLITE_DONE)
            return jobs_fault(j, rc, err, errlen);
    }
    for (i = 0; i < nq && !id; i++)
        if ((id = best_of(j, queues[i], &rc)) < 0)
            return jobs_fault(j, rc, err, errlen);
    if (!id)
        return DB_OK;
    if (jobs_load(j, id, &r, &rc) <= 0)
        return jobs_fault(j, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, errlen);
    util_time_format(now_ms, at);
    sqlite3_bind_int64(j->st[ST_LEASE], 1, id);
    jobs_text(j, ST_LEASE, 2, worker);
    jobs_text(j, ST_LEASE, 3, session);
    sqlite3_bind_int64(j->st[ST_LEASE], 4, now_ms);
    jobs_text(j, ST_LEASE, 5, at);
    if ((rc = jobs_step(j, ST_LEASE)) == SQLITE_ROW) {
        r.attempt = sqlite3_column_int64(j->st[ST_LEASE], 0);
        rc = jobs_step(j, ST_LEASE);
    }
    jobs_reset(j, ST_LEASE);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(j->st[ST_ATT_ADD], 1, id);
        sqlite3_bind_int64(j->st[ST_ATT_ADD], 2, r.attempt);
        jobs_text(j, ST_ATT_ADD, 3, claim_id);
        jobs_text(j, ST_ATT_ADD, 4, worker);
        jobs_text(j, ST_ATT_ADD, 5, session);
        jobs_text(j, ST_ATT_ADD, 6, at);
        if (!(rc = jobs_exec(j, ST_ATT_ADD)))
            rc = jobs_set_state(j, &r, JOBS_RUNNING, now_ms);
    }
    if (!rc)
        fill_grant(&r, g);
    jobs_row_free(&r);
    return rc ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

/* ---- the ends of a lease ---- */

/* The job, when (job, attempt) is its running lease: DB_OK with r loaded (free it);
 * else DB_REJECT "lease lost" (out: where the job is) or DB_FAULT. */
static int fence(struct jobs *j, long long job, long long attempt, struct jobs_row *r,
                 struct jobs_end *out, char *err, size_t errlen)
{
    int rc, found = jobs_load(j, job, r, &rc);

    if (found < 0)
        return jobs_fault(j, rc, err, errlen);
    if (!found)
        return jobs_no_job(job, err, errlen);
    if (r->state == JOBS_RUNNING && r->attempt == attempt)
        return DB_OK;
    jobs_end_of(r, r->run_at_ms, out);
    snprintf(err, errlen, "lease lost: job %lld attempt %lld is no longer yours (%s, attempt %lld)",
             job, attempt, jobs_state_name(r->state), r->attempt);
    jobs_row_free(r);
    return DB_REJECT;
}

/* r leaves running for `to`: the attempt's row, the state, and the slot. */
static int end_lease(struct jobs *j, struct jobs_row *r, int to, const char *outcome,
                     const long long *exit_code, const char *error, long long now_ms)
{
    int rc;

    if ((rc = attempt_end(j, r->id, r->attempt, outcome, exit_code, error, now_ms)) ||
        (rc = jobs_set_state(j, r, to, now_ms)))
        return rc;
    return to == JOBS_READY ? 0 : jobs_promote(j, r->conc_key, now_ms);
}

static int finish(struct jobs *j, struct jobs_row *r, int rc, long long next_ms, struct jobs_end *out,
                  char *err, size_t errlen)
{
    if (!rc)
        jobs_end_of(r, next_ms, out);
    jobs_row_free(r);
    return rc ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

int jobs_done(struct jobs *j, long long job, long long attempt, const char *result, long long exit_code,
              long long now_ms, struct jobs_end *out, char *err, size_t errlen)
{
    struct jobs_row r;
    int rc;

    if ((rc = fence(j, job, attempt, &r, out, err, errlen)))
        return rc;
    if (!(rc = jobs_outcome(j, job, 0, 0, result, NULL, &exit_code)))
        rc = end_lease(j, &r, JOBS_DONE, "done", &exit_code, NULL, now_ms);
    return finish(j, &r, rc, 0, out, err, errlen);
}

int jobs_fail(struct jobs *j, long long job, long long attempt, long long exit_code, const char *error,
              enum jobs_retry retry, long long retry_in_ms, long long now_ms, struct jobs_end *out,
              char *err, size_t errlen)
{
    struct jobs_row r;
    long long next = 0;
    int rc, to, again;

    if ((rc = fence(j, job, attempt, &r, out, err, errlen)))
        return rc;
    r.failures++;
    again = retry == JOBS_RETRY_YES || (retry == JOBS_RETRY_POLICY && r.failures < r.max_attempts);
    to = r.cancel_req ? JOBS_CANCELLED : again ? JOBS_RETRY : JOBS_FAILED;
    if (to == JOBS_RETRY)
        next = now_ms + (retry_in_ms >= 0 ? retry_in_ms :
                         jobs_backoff(j, r.backoff_ms, r.backoff_cap_ms, r.jitter_pct, r.failures));
    if (!(rc = jobs_outcome(j, job, 1, 0, NULL, error, exit_code == LLONG_MIN ? NULL : &exit_code)) &&
        !(rc = to == JOBS_RETRY ? jobs_run_at(j, job, next) : 0))
        rc = end_lease(j, &r, to, "failed", exit_code == LLONG_MIN ? NULL : &exit_code, error, now_ms);
    return finish(j, &r, rc, next, out, err, errlen);
}

int jobs_release(struct jobs *j, long long job, long long attempt, long long delay_ms, long long now_ms,
                 struct jobs_end *out, char *err, size_t errlen)
{
    struct jobs_row r;
    long long next = 0;
    int rc, to;

    if ((rc = fence(j, job, attempt, &r, out, err, errlen)))
        return rc;
    to = r.cancel_req ? JOBS_CANCELLED : delay_ms > 0 ? JOBS_SCHEDULED : JOBS_READY;
    if (to == JOBS_SCHEDULED)
        next = now_ms + delay_ms;
    rc = to == JOBS_SCHEDULED ? jobs_run_at(j, job, next) : 0;
    if (!rc)
        rc = end_lease(j, &r, to, "released", NULL, NULL, now_ms);
    return finish(j, &r, rc, next, out, err, errlen);
}

int jobs_lost(struct jobs *j, long long job, long long attempt, const char *reason, long long now_ms,
              struct jobs_end *out, char *err, size_t errlen)
{
    char why[256];
    struct jobs_row r;
    int rc, to;

    if ((rc = fence(j, job, attempt, &r, out, err, errlen)))
        return rc;
    r.lost++;
    to = r.cancel_req ? JOBS_CANCELLED : r.lost < r.max_lost ? JOBS_READY : JOBS_DEAD;
    snprintf(why, sizeof why, "worker lost %lld time%s (last: %.100s, %.100s)", r.lost,
             r.lost == 1 ? "" : "s", r.worker ? r.worker : "?", reason ? reason : "lost");
    if (!(rc = jobs_outcome(j, job, 0, 1, NULL, why, NULL)))
        rc = end_lease(j, &r, to, "lost", NULL, reason ? reason : "lost", now_ms);
    return finish(j, &r, rc, 0, out, err, errlen);
}

int jobs_cancelled(struct jobs *j, long long job, long long attempt, long long now_ms,
                   struct jobs_end *out, char *err, size_t errlen)
{
    struct jobs_row r;
    int rc;

    if ((rc = fence(j, job, attempt, &r, out, err, errlen)))
        return rc;
    rc = end_lease(j, &r, JOBS_CANCELLED, "cancelled", NULL, NULL, now_ms);
    return finish(j, &r, rc, 0, out, err, errlen);
}

