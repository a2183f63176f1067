/* jobq_events.c: the job queue's outbox (grants, empty answers, pushes, answers to job
 * commands), published after COMMIT with the job events and `follow` receipts, dropped
 * after a rollback; the jobs in the writer's status (see jobq.h). */
#include "jobq_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define PRUNE_EVERY_MS 3600000LL       /* finished jobs pruned this often */

void jobq_push(struct jobq *q, const char *topic, const struct jbuf *b)
{
    if (!topic || b->oom)
        return;
    q->out = jobq_grow(q->out, &q->capout, q->nout + 1, sizeof *q->out);
    q->out[q->nout].topic = jobq_xdup(topic);
    if (!(q->out[q->nout].payload = malloc(b->len + 1)))
        jobq_oom();
    memcpy(q->out[q->nout].payload, b->s, b->len);
    q->out[q->nout].payload[b->len] = '\0';
    q->nout++;
}

void jobq_out_cut(struct jobq *q, size_t n)
{
    while (q->nout > n) {
        q->nout--;
        free(q->out[q->nout].topic);
        free(q->out[q->nout].payload);
    }
}

/* {"op":OP,"job":N,"attempt":A[,"state":S]} to topic. */
void jobq_push_op(struct jobq *q, const char *topic, const char *op, long long job, long long attempt,
                  const char *state)
{
    struct jbuf *b = &q->scratch;

    if (!topic)
        return;
    jb_reset(b);
    jb_puts(b, "{\"op\":");
    jb_cstr(b, op);
    jb_puts(b, ",\"job\":");
    jb_int(b, job);
    jb_puts(b, ",\"attempt\":");
    jb_int(b, attempt);
    if (state) {
        jb_puts(b, ",\"state\":");
        jb_cstr(b, state);
    }
    jb_putc(b, '}');
    jobq_push(q, topic, b);
}

void jobq_push_empty(struct jobq *q, const char *topic, const char *claim)
{
    jb_reset(&q->scratch);
    jb_puts(&q->scratch, "{\"op\":\"empty\",\"claim\":");
    jb_cstr(&q->scratch, claim);
    jb_putc(&q->scratch, '}');
    jobq_push(q, topic, &q->scratch);
}

void jobq_push_grant(struct jobq *q, const char *topic, const char *claim, const struct jobs_grant *g)
{
    struct jbuf *b = &q->scratch;

    jb_reset(b);
    jb_puts(b, "{\"op\":\"job\",\"claim\":");
    jb_cstr(b, claim);
    jb_puts(b, ",\"job\":");
    jb_int(b, g->job);
    jb_puts(b, ",\"attempt\":");
    jb_int(b, g->attempt);
    jb_puts(b, ",\"queue\":");
    jb_cstr(b, g->queue);
    jb_puts(b, ",\"payload\":");
    jb_puts(b, g->payload ? g->payload : "null");
    jb_puts(b, ",\"lease_ms\":");
    jb_int(b, g->lease_ms);
    jb_puts(b, ",\"timeout_ms\":");
    jb_int(b, g->timeout_ms);
    jb_puts(b, ",\"lost\":");
    jb_int(b, g->lost);
    jb_puts(b, ",\"priority\":");
    jb_int(b, g->priority);
    jb_puts(b, ",\"enqueued_at\":");
    jb_cstr(b, g->enqueued_at);
    jb_putc(b, '}');
    jobq_push(q, topic, b);
}

/* ---- after COMMIT, after a rollback ------------------------------------------------------ */

static int drop_pending(struct jobq *q, struct waiter *w, const void *arg)
{
    (void)q;
    (void)arg;
    return w->pending;
}

static void follow_receipt(struct jobq *q, const struct jobs_event *e)
{
    struct jobs_info in;
    char err[256];
    struct jbuf *b = &q->scratch;

    if (jobs_info(q->jobs, e->job, &in, err, sizeof err) != DB_OK)
        return;
    if (in.reply_to) {
        jb_reset(b);
        jb_puts(b, "{\"id\":");
        jb_cstr(b, in.enq_id);
        jb_puts(b, ",\"status\":");
        jb_cstr(b, e->to == JOBS_DONE ? "job_done" : e->to == JOBS_FAILED ? "job_failed" :
                   e->to == JOBS_DEAD ? "job_dead" : "job_cancelled");
        jb_puts(b, ",\"job\":");
        jb_int(b, e->job);
        jb_puts(b, ",\"attempt\":");
        jb_int(b, e->attempt);
        if (in.has_exit) {
            jb_puts(b, ",\"exit_code\":");
            jb_int(b, in.exit_code);
        }
        if (in.error && e->to != JOBS_DONE) {
            jb_puts(b, ",\"error\":");
            jb_cstr(b, in.error);
        }
        jb_putc(b, '}');
        if (!b->oom)
            mq_publish(q->mq, in.reply_to, b->s, b->len, 1, 0, NULL, 0);
    }
    jobs_info_free(&in);
}

void jobq_committed(struct jobq *q)
{
    const struct jobs_event *ev;
    size_t n, i;

    /* Grants and pushes first: a waiting worker is the one in a hurry. */
    for (i = 0; i < q->nout; i++)
        mq_publish(q->mq, q->out[i].topic, q->out[i].payload, strlen(q->out[i].payload), 1, 0, NULL, 0);
    jobq_out_cut(q, 0);
    q->nasked = 0;
    for (i = 0; i < q->nlease; i++)
        q->leases[i].pending = 0;
    ev = jobs_events(q->jobs, &n);
    for (i = 0; i < n; i++) {
        const struct jobs_event *e = &ev[i];
        struct jbuf *b = &q->scratch;
        char *topic;
        if (e->from == JOBS_RUNNING) {
            /* The lease of the attempt that ended: not the next attempt's, granted in
             * the same batch (a lost job given at once to a waiting claim). */
            struct lease *l = jobq_lease_find(q, e->job);
            if (l && l->attempt == e->attempt)
                jobq_lease_drop(q, e->job);
        }
        if (e->to == JOBS_SCHEDULED || e->to == JOBS_RETRY)
            q->next_due_ms = LLONG_MIN;
        jb_reset(b);
        jb_puts(b, "{\"job\":");
        jb_int(b, e->job);
        jb_puts(b, ",\"queue\":");
        jb_cstr(b, e->queue);
        jb_puts(b, ",\"attempt\":");
        jb_int(b, e->attempt);
        jb_puts(b, ",\"from\":");
        jb_cstr(b, e->from >= 0 ? jobs_state_name(e->from) : NULL);
        jb_puts(b, ",\"to\":");
        jb_cstr(b, jobs_state_name(e->to));
        jb_putc(b, '}');
        if (!(topic = util_join(q->t_events, e->queue)))
            jobq_oom();
        if (!b->oom)
            mq_publish(q->mq, topic, b->s, b->len, 0, 0, NULL, 0);
        free(topic);
        if (e->follow && JOBS_FINAL(e->to))
            follow_receipt(q, e);
    }
    /* Leases ended by a timer whose job was not running any more. */
    for (i = q->nlease; i-- > 0;)
        if (q->leases[i].ending)
            jobq_lease_drop_at(q, i);
    jobq_waiters_filter(q, drop_pending, NULL);
    jobs_events_reset(q->jobs);
    q->match_ev = 0;
    jobcron_committed(q->cron);
    if (q->prune_pend)
        q->next_prune = q->prune_pend == 2 ? util_now_ms() : util_now_ms() + PRUNE_EVERY_MS;
    q->prune_pend = 0;
}

void jobq_rolled_back(struct jobq *q)
{
    size_t i;

    jobq_out_cut(q, 0);
    jobq_asked_cut(q, 0);
    for (i = q->nlease; i-- > 0;) {
        if (q->leases[i].pending)
            jobq_lease_drop_at(q, i);
        else
            q->leases[i].ending = 0;
    }
    for (i = 0; i < q->nwait; i++)
        q->waiters[i].pending = 0;
    jobs_events_reset(q->jobs);
    q->match_ev = 0;
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
    q->next_due_ms = LLONG_MIN;
    jobcron_rolled_back(q->cron);
    q->prune_pend = 0;
}

/* ---- status ------------------------------------------------------------------------------ */

struct status_ctx {
    struct jbuf *b;
    int n;
};

static int status_one(void *arg, const struct jobs_count *c)
{
    struct status_ctx *s = arg;
    int i;

    jb_puts(s->b, s->n++ ? "," : "");
    jb_cstr(s->b, c->queue);
    jb_putc(s->b, ':');
    for (i = 0; i < JOBS_NSTATES; i++) {
        jb_putc(s->b, i ? ',' : '{');
        jb_cstr(s->b, jobs_state_name(i));
        jb_putc(s->b, ':');
        jb_int(s->b, c->n[i]);
    }
    jb_puts(s->b, c->paused ? ",\"paused\":true}" : ",\"paused\":false}");
    return 0;
}

void jobq_status(struct jobq *q, struct jbuf *b)
{
    struct status_ctx s = {b, 0};
    char err[256];

    jb_puts(b, ",\"jobs\":{");
    if (jobs_counts(q->jobs, status_one, &s, err, sizeof err) != DB_OK)
        log_warn("jobs: counts for the status: %s", err);
    jb_puts(b, "},\"job_waiting\":");
    jb_int(b, (long long)q->nwait);
    jb_puts(b, ",\"job_leases\":");
    jb_int(b, (long long)q->nlease);
    jb_puts(b, ",\"workers\":");
    jb_int(b, (long long)jobq_workers_count(q));
    q->workers_dirty = 0;
}
