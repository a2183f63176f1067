/* jobs_keep.c: what the job tables keep over time: the recurring jobs' rows
 * (mosqlite_job_cron) and the pruning of finished jobs, with the queues' counts kept
 * right in the same transaction (see jobs.h). */
#include "jobs_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int jobs_cron_get(struct jobs *j, const char *name, int *found, long long *next_ms, long long *last_ms,
                  char *err, size_t errlen)
{
    sqlite3_stmt *st = j->st[ST_CRON_GET];
    int rc;

    *found = 0;
    *next_ms = *last_ms = LLONG_MIN;
    jobs_text(j, ST_CRON_GET, 1, name);
    if ((rc = jobs_step(j, ST_CRON_GET)) == SQLITE_ROW) {
        *found = 1;
        *next_ms = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL)
            *last_ms = sqlite3_column_int64(st, 1);
    }
    jobs_reset(j, ST_CRON_GET);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DB_OK : jobs_fault(j, rc, err, errlen);
}

int jobs_cron_set(struct jobs *j, const char *name, long long next_ms, long long last_ms, char *err,
                  size_t errlen)
{
    int rc;

    jobs_text(j, ST_CRON_SET, 1, name);
    sqlite3_bind_int64(j->st[ST_CRON_SET], 2, next_ms);
    if (last_ms != LLONG_MIN)
        sqlite3_bind_int64(j->st[ST_CRON_SET], 3, last_ms);
    rc = jobs_exec(j, ST_CRON_SET);
    return rc ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

int jobs_cron_names(struct jobs *j, int (*fn)(void *arg, const char *name), void *arg, char *err,
                    size_t errlen)
{
    int rc;

    while ((rc = jobs_step(j, ST_CRON_NAMES)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(j->st[ST_CRON_NAMES], 0);
        if (name && fn(arg, name)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    jobs_reset(j, ST_CRON_NAMES);
    return rc == SQLITE_DONE ? DB_OK : jobs_fault(j, rc, err, errlen);
}

int jobs_cron_delete(struct jobs *j, const char *name, char *err, size_t errlen)
{
    int rc;

    jobs_text(j, ST_CRON_DEL, 1, name);
    rc = jobs_exec(j, ST_CRON_DEL);
    return rc ? jobs_fault(j, rc, err, errlen) : DB_OK;
}

/* Bind the selection of the jobs to prune to statement i. */
static void bind_pruned(struct jobs *j, int i, const char *state, const char *before, int max)
{
    jobs_text(j, i, 1, state);
    jobs_text(j, i, 2, before);
    sqlite3_bind_int(j->st[i], 3, max);
}

/* Each queue's count of state goes down by its pruned jobs. 0 or SQLite's code. */
static int prune_counts(struct jobs *j, int state, const char *before, int max, long long *n)
{
    struct { char *queue; long long n; } *q = NULL;
    size_t nq = 0, cap = 0, i;
    int rc;

    bind_pruned(j, ST_PRUNE_COUNT, jobs_state_name(state), before, max);
    while ((rc = jobs_step(j, ST_PRUNE_COUNT)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(j->st[ST_PRUNE_COUNT], 0);
        if (nq == cap) {
            void *p = realloc(q, (cap = cap ? 2 * cap : 8) * sizeof *q);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            q = p;
        }
        if (!name || !(q[nq].queue = strdup(name))) {
            rc = SQLITE_NOMEM;
            break;
        }
        q[nq++].n = sqlite3_column_int64(j->st[ST_PRUNE_COUNT], 1);
    }
    jobs_reset(j, ST_PRUNE_COUNT);
    rc = rc == SQLITE_DONE ? 0 : rc;
    for (i = 0; i < nq; i++) {
        if (!rc) {
            jobs_text(j, ST_COUNT_SUB, 1, q[i].queue);
            sqlite3_bind_int(j->st[ST_COUNT_SUB], 2, state);
            sqlite3_bind_int64(j->st[ST_COUNT_SUB], 3, q[i].n);
            rc = jobs_exec(j, ST_COUNT_SUB);
            *n += q[i].n;
        }
        free(q[i].queue);
    }
    free(q);
    return rc;
}

int jobs_prune(struct jobs *j, int state, long long before_ms, int max, long long *n, char *err,
               size_t errlen)
{
    char before[UTIL_TIME_LEN];
    int rc;

    *n = 0;
    if (!JOBS_FINAL(state) || state >= JOBS_NSTATES)
        return util_fail(err, errlen, "only finished jobs are pruned"), DB_REJECT;
    util_time_format(before_ms, before);
    /* The same selection three times in one transaction: the same rows each time. */
    if ((rc = prune_counts(j, state, before, max, n)))
        return jobs_fault(j, rc, err, errlen);
    if (!*n)
        return DB_OK;
    bind_pruned(j, ST_PRUNE_ATT, jobs_state_name(state), before, max);
    if ((rc = jobs_exec(j, ST_PRUNE_ATT)))
        return jobs_fault(j, rc, err, errlen);
    bind_pruned(j, ST_PRUNE_JOBS, jobs_state_name(state), before, max);
    if ((rc = jobs_exec(j, ST_PRUNE_JOBS)))
        return jobs_fault(j, rc, err, errlen);
    return DB_OK;
}
