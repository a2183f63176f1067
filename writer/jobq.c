/* jobq.c: the job queue wired into the writer (see jobq.h and docs/PROTOCOL.md, "Jobs"):
 * open and close, the enqueue and cancel_job ops of a write request, a request's mark,
 * cut and receipt, job commands from PREFIX/admin. The other parts: jobq_read.c (job
 * messages read), jobq_claim.c (claims that wait, grants), jobq_end.c (done, fail,
 * release), jobq_lease.c (leases, workers, timers), jobq_events.c (the outbox, after
 * COMMIT or a rollback, the status). */
#include "jobq_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define ADMIN_MARK "\001job-command"   /* msg->sched_id of a job command (jobq_admin) */

void jobq_oom(void)
{
    log_error("out of memory");
    exit(1);
}

char *jobq_xdup(const char *s)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        jobq_oom();
    return d;
}

void *jobq_grow(void *p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 16;

    if (need <= *cap)
        return p;
    while (c < need)
        c *= 2;
    if (!(p = realloc(p, c * size)))
        jobq_oom();
    *cap = c;
    return p;
}

static void trust(void *arg, int on)
{
    db_trust(arg, on);
}

/* ---- open, close --------------------------------------------------------------------- */

static int rebuild_one(void *arg, const struct jobs_lease *l)
{
    struct jobq *q = arg;
    long long now = util_now_ms(), age = util_wall_ms() - l->started_ms;
    struct lease *x;

    /* Nothing expires while the writer is down: every lease gets a full lease_ms now. */
    x = jobq_lease_add(q, l->job, l->attempt, l->worker, l->session, NULL, l->lease_ms, l->timeout_ms,
                       now - (age > 0 ? age : 0));
    x->cancel_asked = l->cancel_asked;
    return 0;
}

static int enqueue_op(void *arg, const struct req *r, int i, char *err, size_t errlen);

int jobq_create_tables(struct db *db, char *err, size_t errlen)
{
    struct jobs *j = NULL;
    int rc;

    db_trust(db, 1);
    rc = jobs_open(&j, db_handle(db), err, errlen);
    db_trust(db, 0);
    jobs_close(j);
    return rc;
}

int jobq_config_check(const struct jobq_opts *o, char *err, size_t errlen)
{
    if (o->backoff_cap_ms < o->backoff_ms)
        return util_fail(err, errlen, "job-backoff-ms (%lld) is more than job-backoff-cap-ms (%lld)",
                         o->backoff_ms, o->backoff_cap_ms);
    return o->cron ? jobcron_check(o->cron, err, errlen) : 0;
}

struct jobq *jobq_new(struct db *db, struct mq *mq, const char *prefix, const struct req_limits *lim,
                      const struct jobq_opts *o, char *err, size_t errlen)
{
    struct jobq *q = calloc(1, sizeof *q);
    int rc;

    if (!q)
        jobq_oom();
    q->db = db;
    q->mq = mq;
    q->lim = *lim;
    q->prefix = jobq_xdup(prefix);
    q->lim.prefix = q->prefix;
    q->t_jobs = util_join(prefix, "/jobs/");
    q->t_worker = util_join(prefix, "/jobs/worker");
    q->t_events = util_join(prefix, "/jobs/events/");
    q->t_to = util_join(prefix, "/jobs/to/");
    q->t_admin = util_join(prefix, "/admin");
    if (!q->t_jobs || !q->t_worker || !q->t_events || !q->t_to || !q->t_admin)
        jobq_oom();
    q->t_jobs_len = strlen(q->t_jobs);
    db_trust(db, 1);
    rc = jobs_open(&q->jobs, db_handle(db), err, errlen);
    db_trust(db, 0);
    if (rc != DB_OK) {
        jobq_free(q);
        return NULL;
    }
    jobs_set_trust(q->jobs, trust, db);
    if (jobs_running(q->jobs, rebuild_one, q, err, errlen) != DB_OK) {
        jobq_free(q);
        return NULL;
    }
    q->next_due_ms = LLONG_MIN;    /* look at once */
    jobs_new_init(&q->base);
    if (o) {
        if (o->lease_ms > 0) q->base.lease_ms = o->lease_ms;
        if (o->max_lost > 0) q->base.max_lost = o->max_lost;
        if (o->max_attempts > 0) q->base.max_attempts = o->max_attempts;
        if (o->backoff_ms >= 0) q->base.backoff_ms = o->backoff_ms;
        if (o->backoff_cap_ms >= 0) q->base.backoff_cap_ms = o->backoff_cap_ms;
        q->keep_ms = o->keep_days * 86400000LL;
        q->dead_keep_ms = o->dead_keep_days * 86400000LL;
    }
    q->next_prune = LLONG_MIN;     /* a pass at start */
    if (o && o->cron && o->cron->n &&
        !(q->cron = jobcron_new(o->cron, q->jobs, util_wall_ms(), err, errlen))) {
        jobq_free(q);
        return NULL;
    }
    db_set_op_hook(db, enqueue_op, q);
    if (q->nlease)
        log_info("jobs: %zu running jobs, each with a full lease again", q->nlease);
    return q;
}

void jobq_free(struct jobq *q)
{
    size_t i;

    if (!q)
        return;
    db_set_op_hook(q->db, NULL, NULL);
    jobcron_free(q->cron);
    workers_free(q->workers);
    while (q->nlease)
        jobq_lease_drop_at(q, q->nlease - 1);
    for (i = 0; i < q->nwait; i++)
        jobq_waiter_free(&q->waiters[i]);
    jobq_out_cut(q, 0);
    for (i = 0; i < ENDED_MAX; i++)
        free(q->ended[i]);
    free(q->leases);
    free(q->waiters);
    free(q->out);
    free(q->asked);
    jobs_close(q->jobs);
    jb_free(&q->rcpt);
    jb_free(&q->scratch);
    req_free(&q->sub);
    json_nums_free(&q->nums);
    free(q->prefix);
    free(q->t_jobs);
    free(q->t_worker);
    free(q->t_events);
    free(q->t_to);
    free(q->t_admin);
    free(q);
}

int jobq_owns(const struct jobq *q, const struct msg *m)
{
    if (m->sched_id)
        return !strcmp(m->sched_id, ADMIN_MARK);
    return !strncmp(m->topic, q->t_jobs, q->t_jobs_len);
}

/* ---- enqueue --------------------------------------------------------------------------- */

static void rcpt_job(struct jobq *q, const struct jobs_enq *e, int dup)
{
    struct jbuf *b = &q->rcpt;

    jb_puts(b, q->rcpt_n++ ? "," : "\"jobs\":[");
    jb_puts(b, "{\"job\":");
    jb_int(b, e->job);
    jb_puts(b, ",\"state\":");
    jb_cstr(b, jobs_state_name(e->state));
    if (e->replaced) {
        jb_puts(b, ",\"replaced\":");
        jb_int(b, e->replaced);
    }
    if (dup)
        jb_puts(b, ",\"duplicate\":true");
    jb_putc(b, '}');
}

/* One enqueue, in the open request. DB_OK (also for an ignored duplicate), DB_REJECT,
 * DB_FAULT. */
int jobq_enqueue_one(struct jobq *q, const struct req_enqueue *e, const char *enq_id, const char *reply_to,
                     long long run_at_ms, char *err, size_t errlen)
{
    struct jobs_new n;
    struct jobs_enq out;
    char *payload;
    int rc;

    n = q->base;
    jobcron_fill(&n, e);
    if (!(payload = json_text(e->payload)))     /* every value as it was sent */
        jobq_oom();
    n.payload = payload;
    n.run_at_ms = run_at_ms;
    n.enq_id = enq_id;
    n.reply_to = reply_to;
    memset(&out, 0, sizeof out);
    rc = jobs_enqueue(q->jobs, &n, util_wall_ms(), &out, err, errlen);
    free(payload);
    if (rc != DB_OK && rc != DB_DUP)
        return rc;
    rcpt_job(q, &out, rc == DB_DUP);
    if (out.replaced && out.replaced_state == JOBS_RUNNING)
        jobq_on_replaced(q, out.replaced);
    return DB_OK;
}

/* A running job's cancel was asked: pushed to its worker (and again in beat answers).
 * Noted, so that a request rejected or a batch rolled back takes it back (jobq_cut,
 * jobq_rolled_back): else the worker's next beat would be told to stop a job whose
 * cancel was never written. */
void jobq_on_replaced(void *arg, long long job)
{
    struct jobq *q = arg;
    struct lease *l = jobq_lease_find(q, job);

    if (l) {
        if (!l->cancel_asked) {
            q->asked = jobq_grow(q->asked, &q->capasked, q->nasked + 1, sizeof *q->asked);
            q->asked[q->nasked++] = job;
        }
        l->cancel_asked = 1;
        jobq_push_op(q, l->reply_to, "cancel", l->job, l->attempt, NULL);
    }
}

void jobq_asked_cut(struct jobq *q, size_t n)
{
    struct lease *l;

    while (q->nasked > n)
        if ((l = jobq_lease_find(q, q->asked[--q->nasked])))
            l->cancel_asked = 0;
}

/* {"op": "cancel_job", "job": N} in a write request: a queued job cancelled at once, a
 * running one's cancel pushed to its worker (asked twice: the same answer). DB_OK,
 * DB_REJECT (no such job, or a finished one), DB_FAULT. */
static int cancel_one(struct jobq *q, long long job, char *err, size_t errlen)
{
    struct jobs_end end;
    struct jbuf *b = &q->rcpt;
    int rc;

    memset(&end, 0, sizeof end);
    rc = jobs_cancel(q->jobs, job, util_wall_ms(), &end, err, errlen);
    if (rc != DB_OK && rc != DB_DUP)
        return rc;
    if (rc == DB_OK && end.cancel_asked)
        jobq_on_replaced(q, job);
    jb_puts(b, q->rcpt_n++ ? "," : "\"jobs\":[");
    jb_puts(b, "{\"job\":");
    jb_int(b, job);
    jb_puts(b, ",\"state\":");
    jb_cstr(b, jobs_state_name(end.state));
    if (end.cancel_asked)
        jb_puts(b, ",\"cancel_asked\":true");
    jb_putc(b, '}');
    return DB_OK;
}

static long long run_at_of(const struct req *r)
{
    if (!r->jobs_at)
        return 0;
    return r->has_at ? r->at_ms : util_wall_ms() + r->delay_ms;
}

/* db.c's hook for {"op": "enqueue"} and {"op": "cancel_job"} in a write request. */
static int enqueue_op(void *arg, const struct req *r, int i, char *err, size_t errlen)
{
    struct jobq *q = arg;
    char sub[1024];
    int rc;

    if (r->ops[i].kind == OP_CANCEL_JOB)
        rc = cancel_one(q, r->ops[i].job, sub, sizeof sub);
    else
        rc = jobq_enqueue_one(q, &r->ops[i].enq, r->id, r->reply_to, run_at_of(r), sub, sizeof sub);
    if (rc == DB_FAULT)
        snprintf(err, errlen, "%s", sub);
    else if (rc != DB_OK && r->nops > 1)
        snprintf(err, errlen, "ops[%d]: %s", i, sub);
    else if (rc != DB_OK)
        snprintf(err, errlen, "%s", sub);
    return rc;
}

void jobq_mark(struct jobq *q, struct jobq_mark *mk)
{
    mk->ev = jobs_events_mark(q->jobs);
    mk->out = q->nout;
    mk->nlease = q->nlease;
    mk->asked = q->nasked;
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
}

void jobq_cut(struct jobq *q, const struct jobq_mark *mk)
{
    size_t i;

    jobs_events_cut(q->jobs, mk->ev);
    jobq_out_cut(q, mk->out);
    jobq_asked_cut(q, mk->asked);
    /* Leases granted by the request (pending ones added after the mark). */
    for (i = q->nlease; i-- > 0;)
        if (q->leases[i].pending && i >= mk->nlease)
            jobq_lease_drop_at(q, i);
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
}

char *jobq_take_receipt(struct jobq *q)
{
    char *s;

    if (!q->rcpt_n)
        return NULL;
    jb_putc(&q->rcpt, ']');
    if (q->rcpt.oom || !(s = malloc(q->rcpt.len + 1)))
        jobq_oom();
    memcpy(s, q->rcpt.s, q->rcpt.len);
    s[q->rcpt.len] = '\0';
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
    return s;
}

/* ---- job commands ------------------------------------------------------------------------ */

/* A job command put in the queue by jobq_admin. Always DB_OK (or DB_FAULT): its error
 * is its answer, not a rejected request. */
int jobq_apply_admin(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(m->payload);
    const char *cmd = root ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "cmd")) : NULL;
    const cJSON *jv = root ? cJSON_GetObjectItemCaseSensitive(root, "job") : NULL;
    const char *queue = root ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "queue")) : NULL;
    long long job = cJSON_IsNumber(jv) ? (long long)jv->valuedouble : 0;
    long long now = util_wall_ms();
    struct jobs_end end;
    struct jbuf *b = &q->scratch;
    char why[512] = "";
    int rc = DB_OK;

    o->kind = OUT_DROPPED;
    if (!cmd) {
        cJSON_Delete(root);
        return DB_OK;
    }
    memset(&end, 0, sizeof end);
    if ((rc = db_req_begin(q->db, err, errlen)) != DB_OK)
        goto out;
    if (!strcmp(cmd, "job_retry"))
        rc = jobs_retry(q->jobs, job, now, &end, why, sizeof why);
    else if (!strcmp(cmd, "job_discard"))
        rc = jobs_discard(q->jobs, job, now, &end, why, sizeof why);
    else if (!strcmp(cmd, "job_run_now"))
        rc = jobs_run_now(q->jobs, job, now, &end, why, sizeof why);
    else if (!strcmp(cmd, "job_cancel"))
        rc = jobs_cancel(q->jobs, job, now, &end, why, sizeof why);
    else if (!strcmp(cmd, "queue_pause") || !strcmp(cmd, "queue_resume"))
        rc = jobs_queue_pause(q->jobs, queue, !strcmp(cmd, "queue_pause"), why, sizeof why);
    if (rc == DB_FAULT)
        snprintf(err, errlen, "%s", why);
    rc = db_req_end(q->db, rc, err, errlen);
    if (rc == DB_FAULT)
        goto out;
    if (rc == DB_REJECT) {
        jb_reset(b);
        jb_puts(b, "{\"cmd\":");
        jb_cstr(b, cmd);
        jb_puts(b, ",\"error\":");
        jb_cstr(b, why);
        jb_putc(b, '}');
        jobq_push(q, m->resp_topic, b);
        rc = DB_OK;
        goto out;
    }
    jb_reset(b);
    jb_puts(b, "{\"cmd\":");
    jb_cstr(b, cmd);
    jb_puts(b, ",\"ok\":true");
    if (!strncmp(cmd, "queue_", 6)) {
        jb_puts(b, ",\"queue\":");
        jb_cstr(b, queue);
        jb_puts(b, !strcmp(cmd, "queue_pause") ? ",\"paused\":true" : ",\"paused\":false");
        if (!strcmp(cmd, "queue_resume"))
            q->match_all = 1;
    } else {
        jb_puts(b, ",\"job\":");
        jb_int(b, job);
        jb_puts(b, ",\"state\":");
        jb_cstr(b, jobs_state_name(end.state));
    }
    jb_putc(b, '}');
    jobq_push(q, m->resp_topic, b);
    if (!strcmp(cmd, "job_cancel") && end.cancel_asked)
        jobq_on_replaced(q, job);
out:
    cJSON_Delete(root);
    return rc;
}

int jobq_admin(struct jobq *q, const char *cmd, long long job, const char *queue, const char *to,
               const void *corr, int corrlen)
{
    struct jbuf b = {0};
    int rc;

    jb_puts(&b, "{\"cmd\":");
    jb_cstr(&b, cmd);
    jb_puts(&b, ",\"job\":");
    jb_int(&b, job);
    jb_puts(&b, ",\"queue\":");
    jb_cstr(&b, queue);
    jb_putc(&b, '}');
    rc = b.oom ? -1 : mq_inject(q->mq, q->t_admin, b.s, b.len, to, corr, corrlen, ADMIN_MARK);
    jb_free(&b);
    return rc;
}
