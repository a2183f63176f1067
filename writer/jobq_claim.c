/* jobq_claim.c: claims: granted at once, or left waiting in memory (no polling) and
 * granted in the batch that makes a job ready (jobq_match), or answered empty; the
 * sessions that have ended (see jobq.h). */
#include "jobq_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

void jobq_waiter_free(struct waiter *w)
{
    int i;

    free(w->claim_id);
    free(w->worker);
    free(w->session);
    free(w->reply_to);
    for (i = 0; i < w->nq; i++)
        free(w->queues[i]);
}

/* Remove the waiters for which drop(w) says so, keeping the order of the others. */
void jobq_waiters_filter(struct jobq *q, int (*drop)(struct jobq *q, struct waiter *w, const void *arg),
                         const void *arg)
{
    size_t i, k = 0;

    for (i = 0; i < q->nwait; i++) {
        if (drop(q, &q->waiters[i], arg))
            jobq_waiter_free(&q->waiters[i]);
        else
            q->waiters[k++] = q->waiters[i];
    }
    q->nwait = k;
}

static int drop_claim_id(struct jobq *q, struct waiter *w, const void *arg)
{
    (void)q;
    return !strcmp(w->claim_id, arg);
}

static void waiter_add(struct jobq *q, const struct claim *c)
{
    struct waiter *w;
    int i;

    jobq_waiters_filter(q, drop_claim_id, c->id);
    q->waiters = jobq_grow(q->waiters, &q->capwait, q->nwait + 1, sizeof *q->waiters);
    w = &q->waiters[q->nwait++];
    memset(w, 0, sizeof *w);
    w->claim_id = jobq_xdup(c->id);
    w->worker = jobq_xdup(c->worker);
    w->session = jobq_xdup(c->session);
    w->reply_to = jobq_xdup(c->reply_to);
    for (i = 0; i < c->nq; i++)
        w->queues[i] = jobq_xdup(c->queues[i]);
    w->nq = c->nq;
    w->deadline = util_now_ms() + c->wait_ms;
}

int jobq_session_ended(const struct jobq *q, const char *session)
{
    size_t i;

    for (i = 0; i < q->ended_n; i++)              /* filled from slot 0 on */
        if (!strcmp(q->ended[i], session))
            return 1;
    return 0;
}

void jobq_session_end(struct jobq *q, const char *session)
{
    if (jobq_session_ended(q, session))
        return;
    free(q->ended[q->ended_next]);
    q->ended[q->ended_next] = jobq_xdup(session);
    q->ended_next = (q->ended_next + 1) % ENDED_MAX;
    if (q->ended_n < ENDED_MAX)
        q->ended_n++;
}

static void lease_from_grant(struct jobq *q, const struct jobs_grant *g, const char *worker,
                             const char *session, const char *reply_to)
{
    struct lease *l = jobq_lease_add(q, g->job, g->attempt, worker, session, reply_to, g->lease_ms,
                                     g->timeout_ms, util_now_ms());
    l->pending = 1;
}

/* Grant now, or wait, or answer empty. DB_OK, DB_REJECT + err, DB_FAULT + err. */
int jobq_claim(struct jobq *q, const struct claim *c, char *err, size_t errlen)
{
    struct jobs_grant g;
    int rc;

    if (jobq_session_ended(q, c->session))
        return util_fail(err, errlen, "session \"%s\" has ended (its gone or bye was seen): a new "
                         "connection needs a new session", c->session) ? DB_REJECT : DB_REJECT;
    memset(&g, 0, sizeof g);
    rc = jobs_grant(q->jobs, c->queues, c->nq, c->worker, c->session, c->id, util_wall_ms(), &g, err, errlen);
    /* A claim taken lists its session (a refused one changes nothing). */
    if (rc == DB_OK || rc == DB_DUP)
        jobq_worker_heard(q, c->worker, c->session, c->queues, c->nq, c->wait_ms + q->base.lease_ms);
    if (rc == DB_OK && g.job) {
        lease_from_grant(q, &g, c->worker, c->session, c->reply_to);
        jobq_push_grant(q, c->reply_to, c->id, &g);
        jobq_waiters_filter(q, drop_claim_id, c->id);
    } else if (rc == DB_DUP) {
        /* The same claim again: the same grant, to where this one asks. */
        jobq_push_grant(q, c->reply_to, c->id, &g);
        rc = DB_OK;
    } else if (rc == DB_OK && c->wait_ms > 0) {
        waiter_add(q, c);
    } else if (rc == DB_OK) {
        jobq_push_empty(q, c->reply_to, c->id);
    }
    jobs_grant_free(&g);
    return rc;
}

static int skip_queues(char **empty, int nempty, char *const *queues, int nq)
{
    int i, k;

    for (i = 0; i < nq; i++) {
        for (k = 0; k < nempty && strcmp(empty[k], queues[i]); k++)
            ;
        if (k == nempty)
            return 0;
    }
    return 1;
}

int jobq_match(struct jobq *q, char *err, size_t errlen)
{
    const struct jobs_event *ev;
    char *empty[256];
    size_t n, i;
    int nempty = 0, any = q->match_all, rc = DB_OK;

    ev = jobs_events(q->jobs, &n);
    for (i = q->match_ev; i < n && !any; i++)
        any = ev[i].to == JOBS_READY;
    if (!any || !q->nwait) {
        q->match_ev = n;
        q->match_all = 0;
        return DB_OK;
    }
    for (i = 0; i < q->nwait && rc != DB_FAULT; i++) {
        struct waiter *w = &q->waiters[i];
        struct jobs_grant g;
        if (w->pending || skip_queues(empty, nempty, w->queues, w->nq))
            continue;
        memset(&g, 0, sizeof g);
        rc = jobs_grant(q->jobs, (const char *const *)w->queues, w->nq, w->worker, w->session, w->claim_id,
                        util_wall_ms(), &g, err, errlen);
        if ((rc == DB_OK && g.job) || rc == DB_DUP) {
            if (rc == DB_OK)
                lease_from_grant(q, &g, w->worker, w->session, w->reply_to);
            jobq_push_grant(q, w->reply_to, w->claim_id, &g);
            w->pending = 1;
            rc = DB_OK;
        } else if (rc == DB_OK) {
            int k;
            for (k = 0; k < w->nq && nempty < 256; k++)
                empty[nempty++] = w->queues[k];
        } else if (rc == DB_REJECT) {
            log_warn("jobs: waiting claim \"%s\": %s", w->claim_id, err);
            w->pending = 1;    /* dropped with the batch's grants */
            rc = DB_OK;
        }
        jobs_grant_free(&g);
    }
    jobs_events(q->jobs, &q->match_ev);
    q->match_all = 0;
    return rc == DB_FAULT ? DB_FAULT : DB_OK;
}
