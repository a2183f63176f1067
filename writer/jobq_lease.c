/* jobq_lease.c: the job queue's leases in memory; the workers' hello, beat, bye and gone
 * on PREFIX/jobs/worker (a beat renews leases with no disk write); the timers: due jobs,
 * recurring jobs, pruning, leases that ran out or past their timeout, claims that waited
 * long enough (see jobq.h). */
#include "jobq_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define MAX_BEAT 256                   /* leases in one beat */
#define PRUNE_PASS 5000                /* jobs of one state deleted in one batch at most */

struct lease *jobq_lease_find(struct jobq *q, long long job)
{
    size_t i;

    for (i = 0; i < q->nlease; i++)
        if (q->leases[i].job == job)
            return &q->leases[i];
    return NULL;
}

void jobq_lease_drop_at(struct jobq *q, size_t i)
{
    struct lease *l = &q->leases[i];

    free(l->worker);
    free(l->session);
    free(l->reply_to);
    q->leases[i] = q->leases[--q->nlease];
}

void jobq_lease_drop(struct jobq *q, long long job)
{
    size_t i;

    for (i = 0; i < q->nlease; i++)
        if (q->leases[i].job == job) {
            jobq_lease_drop_at(q, i);
            return;
        }
}

struct lease *jobq_lease_add(struct jobq *q, long long job, long long attempt, const char *worker,
                             const char *session, const char *reply_to, long long lease_ms,
                             long long timeout_ms, long long started)
{
    struct lease *l;

    jobq_lease_drop(q, job);
    q->leases = jobq_grow(q->leases, &q->caplease, q->nlease + 1, sizeof *q->leases);
    l = &q->leases[q->nlease++];
    memset(l, 0, sizeof *l);
    l->job = job;
    l->attempt = attempt;
    l->worker = jobq_xdup(worker);
    l->session = jobq_xdup(session);
    l->reply_to = jobq_xdup(reply_to);
    l->lease_ms = lease_ms;
    l->timeout_ms = timeout_ms;
    l->started = started;
    l->deadline = util_now_ms() + lease_ms;
    return l;
}

/* ---- workers ---------------------------------------------------------------------------- */

static int drop_session(struct jobq *q, struct waiter *w, const void *arg)
{
    (void)q;
    return !strcmp(w->session, arg);
}

/* A beat: the leases it names renewed, news of the others (cancel, lease_lost) pushed to
 * its reply_to. */
static int worker_beat(struct jobq *q, const cJSON *root, const char *worker, const char *session,
                       struct outcome *o, char *err, size_t errlen)
{
    const cJSON *jobs, *e;
    long long live = q->base.lease_ms;
    int n = 0, rc;

    if (!o->reply_to)
        return util_fail(err, errlen, "a beat needs \"reply_to\": where news of its leases goes") ? DB_REJECT : DB_REJECT;
    if (!(jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs")) || !cJSON_IsArray(jobs))
        return util_fail(err, errlen, "\"jobs\" must be an array of {\"job\": N, \"attempt\": A}") ? DB_REJECT : DB_REJECT;
    if (cJSON_GetArraySize(jobs) > MAX_BEAT)
        return util_fail(err, errlen, "a beat names at most %d leases", MAX_BEAT) ? DB_REJECT : DB_REJECT;
    for (e = jobs->child; e; e = e->next) {
        static const char *const f_lease[] = {"job", "attempt", NULL};
        long long job = 0, attempt = 0;
        char sub[256];
        if (!cJSON_IsObject(e) || jobq_fields_only(e, f_lease, "a beat's lease", sub, sizeof sub) ||
            jobq_get_int(e, "job", 1, 1, (UTIL_EXACT_INT - 1), &job, sub, sizeof sub) ||
            jobq_get_int(e, "attempt", 1, 1, (UTIL_EXACT_INT - 1), &attempt, sub, sizeof sub))
            return util_fail(err, errlen, "jobs[%d]: %s", n, cJSON_IsObject(e) ? sub :
                             "a lease is {\"job\": N, \"attempt\": A}") ? DB_REJECT : DB_REJECT;
        n++;
    }
    for (e = jobs->child; e; e = e->next) {
        const struct lease *l = jobq_lease_find(q, (long long)cJSON_GetObjectItemCaseSensitive(e, "job")->valuedouble);
        if (l && l->lease_ms > live)
            live = l->lease_ms;
    }
    if (!jobq_session_ended(q, session))
        jobq_worker_heard(q, worker, session, NULL, 0, live);
    for (e = jobs->child; e; e = e->next) {
        long long job = (long long)cJSON_GetObjectItemCaseSensitive(e, "job")->valuedouble;
        long long attempt = (long long)cJSON_GetObjectItemCaseSensitive(e, "attempt")->valuedouble;
        struct lease *l = jobq_lease_find(q, job);
        if (l && l->attempt == attempt && !l->ending) {
            l->deadline = util_now_ms() + l->lease_ms;
            if (!l->reply_to)        /* leases rebuilt at start learn where to push */
                l->reply_to = jobq_xdup(o->reply_to);
            if (l->cancel_asked)
                jobq_push_op(q, o->reply_to, "cancel", job, attempt, NULL);
        } else {
            struct jobs_info in;
            char sub[256];
            rc = jobs_info(q->jobs, job, &in, sub, sizeof sub);
            if (rc == DB_FAULT)
                return util_fail(err, errlen, "%s", sub) ? DB_FAULT : DB_FAULT;
            jobq_push_op(q, o->reply_to, "lease_lost", job, attempt, rc == DB_OK ? jobs_state_name(in.state) : NULL);
            jobs_info_free(&in);
        }
    }
    free(o->reply_to);     /* news only, by push */
    o->reply_to = NULL;
    return DB_OK;
}


/* hello, beat, bye, gone on PREFIX/jobs/worker. */
int jobq_apply_worker(struct jobq *q, const cJSON *root, const char *op, struct outcome *o, char *err,
                      size_t errlen)
{
    static const char *const f_hello[] = {"op", "worker", "session", "host", "queues", "jobs", "reply_to", NULL};
    static const char *const f_beat[] = {"op", "worker", "session", "reply_to", "jobs", NULL};
    static const char *const f_bye[] = {"op", "worker", "session", NULL};
    const char *worker, *session;
    int n = 0, rc;

    o->kind = OUT_DROPPED;
    if (!strcmp(op, "hello")) {
        if (jobq_fields_only(root, f_hello, "a hello", err, errlen))
            return DB_REJECT;
    } else if (!strcmp(op, "beat")) {
        if (jobq_fields_only(root, f_beat, "a beat", err, errlen))
            return DB_REJECT;
    } else if (!strcmp(op, "bye") || !strcmp(op, "gone")) {
        if (jobq_fields_only(root, f_bye, !strcmp(op, "bye") ? "a bye" : "a gone", err, errlen))
            return DB_REJECT;
    } else {
        return util_fail(err, errlen, "unknown op \"%.100s\" on PREFIX/jobs/worker (use hello, beat, bye or "
                         "gone)", op) ? DB_REJECT : DB_REJECT;
    }
    if (jobq_get_name(root, "worker", 1, &worker, err, errlen) || jobq_get_name(root, "session", 1, &session, err, errlen))
        return DB_REJECT;
    if (!strcmp(op, "hello")) {
        if (jobq_worker_hello(q, root, worker, session, err, errlen))
            return DB_REJECT;
        q->hellos++;
        log_debug("jobs: hello from worker %s (session %s)", worker, session);
        return DB_OK;
    }
    if (!strcmp(op, "bye") || !strcmp(op, "gone")) {
        jobq_worker_end(q, session);
        jobq_session_end(q, session);
        jobq_waiters_filter(q, drop_session, session);
        rc = jobs_lost_session(q->jobs, session, op, util_wall_ms(), &n, err, errlen);
        if (n)
            log_info("jobs: worker %s (session %s) %s: %d lease%s ended", worker, session, op, n,
                     n == 1 ? "" : "s");
        return rc;
    }
    return worker_beat(q, root, worker, session, o, err, errlen);
}

/* ---- timers ----------------------------------------------------------------------------- */

/* A pass of pruning: the oldest finished jobs past their keep age. */
static int prune(struct jobq *q, long long wall, char *err, size_t errlen)
{
    static const int states[] = {JOBS_DONE, JOBS_FAILED, JOBS_CANCELLED, JOBS_DEAD};
    long long n, total = 0;
    int i, rc, more = 0;

    for (i = 0; i < 4; i++) {
        long long keep = states[i] == JOBS_DEAD ? q->dead_keep_ms : q->keep_ms;
        if (!keep)
            continue;
        if ((rc = jobs_prune(q->jobs, states[i], wall - keep, PRUNE_PASS, &n, err, errlen)) != DB_OK)
            return rc;
        total += n;
        more |= n == PRUNE_PASS;
    }
    if (total)
        log_info("jobs: %lld finished job%s pruned (kept %lld days, dead ones %lld days)%s", total,
                 total == 1 ? "" : "s", q->keep_ms / 86400000LL, q->dead_keep_ms / 86400000LL,
                 more ? "; more in the next batch" : "");
    q->prune_pend = more ? 2 : 1;
    return DB_OK;
}

int jobq_begin(struct jobq *q, char *err, size_t errlen)
{
    long long wall = util_wall_ms(), now = util_now_ms();
    size_t i;
    int rc;

    if (q->next_due_ms <= wall) {
        int made = 0;
        if ((rc = jobs_due(q->jobs, wall, 1000, &made, &q->next_due_ms, err, errlen)) != DB_OK)
            return rc;
    }
    if (q->cron && jobcron_next_ms(q->cron) <= wall) {
        int made = 0;
        if ((rc = jobcron_step(q->cron, &q->base, wall, jobq_on_replaced, q, &made, err, errlen)) != DB_OK)
            return rc;
    }
    q->prune_pend = 0;
    if (now >= q->next_prune && (rc = prune(q, wall, err, errlen)) != DB_OK)
        return rc;
    for (i = 0; i < q->nlease; i++) {
        struct lease *l = &q->leases[i];
        struct jobs_end end;
        char why[512];
        int timeout;
        if (l->pending || l->ending)
            continue;
        timeout = l->timeout_ms > 0 && now >= l->started + l->timeout_ms;
        if (!timeout && now < l->deadline)
            continue;
        if (timeout)
            rc = jobs_fail(q->jobs, l->job, l->attempt, LLONG_MIN, "timeout", JOBS_RETRY_POLICY, -1, wall, &end,
                           why, sizeof why);
        else
            rc = jobs_lost(q->jobs, l->job, l->attempt, "lease expired", wall, &end, why, sizeof why);
        if (rc == DB_FAULT) {
            snprintf(err, errlen, "%s", why);
            return DB_FAULT;
        }
        l->ending = 1;    /* stale (DB_REJECT) or ended: gone at COMMIT */
        if (rc == DB_OK) {
            log_info("jobs: job %lld attempt %lld (worker %s): %s", l->job, l->attempt,
                     l->worker ? l->worker : "?", timeout ? "ran past its timeout" : "lease expired");
            jobq_push_op(q, l->reply_to, "lease_lost", l->job, l->attempt, jobs_state_name(end.state));
        }
    }
    return DB_OK;
}

int jobq_due(const struct jobq *q, long long now_ms)
{
    long long wall = util_wall_ms();
    size_t i;

    if (q->next_due_ms <= wall || now_ms >= q->next_prune || (q->cron && jobcron_next_ms(q->cron) <= wall))
        return 1;
    for (i = 0; i < q->nlease; i++) {
        const struct lease *l = &q->leases[i];
        if (now_ms >= l->deadline || (l->timeout_ms > 0 && now_ms >= l->started + l->timeout_ms))
            return 1;
    }
    return 0;
}

int jobq_wait_ms(const struct jobq *q, int max_ms)
{
    long long now = util_now_ms(), wall = util_wall_ms(), w = max_ms;
    size_t i;

    if (q->next_due_ms <= wall)
        w = 0;
    else if (q->next_due_ms != LLONG_MAX && q->next_due_ms - wall < w)
        w = q->next_due_ms - wall;
    if (q->cron) {
        long long c = jobcron_next_ms(q->cron);
        if (c <= wall)
            w = 0;
        else if (c != LLONG_MAX && c - wall < w)
            w = c - wall;
    }
    if (q->next_prune <= now)
        w = 0;
    else if (q->next_prune - now < w)
        w = q->next_prune - now;
    for (i = 0; i < q->nlease; i++) {
        const struct lease *l = &q->leases[i];
        if (l->deadline - now < w)
            w = l->deadline - now;
        if (l->timeout_ms > 0 && l->started + l->timeout_ms - now < w)
            w = l->started + l->timeout_ms - now;
    }
    for (i = 0; i < q->nwait; i++)
        if (q->waiters[i].deadline - now < w)
            w = q->waiters[i].deadline - now;
    if (jobq_workers_next(q) != LLONG_MAX && jobq_workers_next(q) - now < w)
        w = jobq_workers_next(q) - now;
    return w < 0 ? 0 : (int)w;
}

static int drop_expired(struct jobq *q, struct waiter *w, const void *arg)
{
    long long now = *(const long long *)arg;

    if (w->pending || now < w->deadline)
        return 0;
    jobq_push_empty(q, w->reply_to, w->claim_id);
    return 1;
}

void jobq_tick(struct jobq *q)
{
    long long now = util_now_ms();
    size_t n0 = q->nout, i;

    jobq_waiters_filter(q, drop_expired, &now);
    jobq_workers_tick(q, now);
    for (i = n0; i < q->nout; i++)
        mq_publish(q->mq, q->out[i].topic, q->out[i].payload, strlen(q->out[i].payload), 1, 0, NULL, 0);
    jobq_out_cut(q, n0);
}
