/* jobq.c: the job queue wired into the writer (see jobq.h and docs/PROTOCOL.md, "Jobs"). */
#include "jobq.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jobs.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define ADMIN_MARK "\001job-command"   /* msg->sched_id of a job command (jobq_admin) */
#define MAX_QUEUES 16                  /* queues in one claim */
#define MAX_BEAT 256                   /* leases in one beat */
#define ENDED_MAX 4096                 /* ended sessions remembered */
#define WAIT_MAX_MS 3600000LL
#define TEXT_MAX 65536                 /* a result */
#define ERROR_MAX 4096                 /* a failure's error, a progress */

struct lease {
    long long job, attempt;
    char *worker, *session, *reply_to;
    long long deadline;            /* monotonic ms: lost when no beat comes before */
    long long started;             /* monotonic ms */
    long long lease_ms, timeout_ms;
    int cancel_asked;
    int pending;                   /* granted in the open batch: dropped on rollback */
    int ending;                    /* ended by a timer in the open batch */
};

struct waiter {
    char *claim_id, *worker, *session, *reply_to;
    char *queues[MAX_QUEUES];
    int nq;
    long long deadline;            /* monotonic ms */
    int pending;                   /* granted in the open batch */
};

struct push {
    char *topic, *payload;
};

struct claim {
    const char *id, *worker, *session, *reply_to;
    long long wait_ms;
    const char *queues[MAX_QUEUES];
    int nq;
};

struct jobq {
    struct db *db;
    struct mq *mq;
    struct jobs *jobs;
    struct req_limits lim;
    char *prefix, *t_jobs, *t_worker, *t_events, *t_to, *t_admin;
    size_t t_jobs_len;
    struct lease *leases;
    size_t nlease, caplease;
    struct waiter *waiters;
    size_t nwait, capwait;
    struct push *out;
    size_t nout, capout;
    char *ended[ENDED_MAX];
    size_t ended_next;
    struct jbuf rcpt;              /* the current request's "jobs":[...] members */
    int rcpt_n;
    struct jbuf scratch;
    struct req sub;                /* a done's ops */
    struct json_nums nums;
    long long next_due_ms;         /* wall clock: when jobs_due has work; LLONG_MAX none */
    size_t match_ev;               /* events before this one were matched */
    int match_all;                 /* a queue was resumed: try every waiter */
    long long hellos;
};

static void oom(void)
{
    log_error("out of memory");
    exit(1);
}

static char *xdup(const char *s)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        oom();
    return d;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 16;

    if (need <= *cap)
        return p;
    while (c < need)
        c *= 2;
    if (!(p = realloc(p, c * size)))
        oom();
    *cap = c;
    return p;
}

static void trust(void *arg, int on)
{
    db_trust(arg, on);
}

/* ---- the outbox ---------------------------------------------------------------------- */

static void push(struct jobq *q, const char *topic, const struct jbuf *b)
{
    if (!topic || b->oom)
        return;
    q->out = grow(q->out, &q->capout, q->nout + 1, sizeof *q->out);
    q->out[q->nout].topic = xdup(topic);
    if (!(q->out[q->nout].payload = malloc(b->len + 1)))
        oom();
    memcpy(q->out[q->nout].payload, b->s, b->len);
    q->out[q->nout].payload[b->len] = '\0';
    q->nout++;
}

static void out_cut(struct jobq *q, size_t n)
{
    while (q->nout > n) {
        q->nout--;
        free(q->out[q->nout].topic);
        free(q->out[q->nout].payload);
    }
}

/* {"op":OP,"job":N,"attempt":A[,"state":S]} to topic. */
static void push_op(struct jobq *q, const char *topic, const char *op, long long job, long long attempt,
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
    push(q, topic, b);
}

static void push_empty(struct jobq *q, const char *topic, const char *claim)
{
    jb_reset(&q->scratch);
    jb_puts(&q->scratch, "{\"op\":\"empty\",\"claim\":");
    jb_cstr(&q->scratch, claim);
    jb_putc(&q->scratch, '}');
    push(q, topic, &q->scratch);
}

static void push_grant(struct jobq *q, const char *topic, const char *claim, const struct jobs_grant *g)
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
    push(q, topic, b);
}

/* ---- leases, waiters, sessions ------------------------------------------------------- */

static struct lease *lease_find(struct jobq *q, long long job)
{
    size_t i;

    for (i = 0; i < q->nlease; i++)
        if (q->leases[i].job == job)
            return &q->leases[i];
    return NULL;
}

static void lease_drop_at(struct jobq *q, size_t i)
{
    struct lease *l = &q->leases[i];

    free(l->worker);
    free(l->session);
    free(l->reply_to);
    q->leases[i] = q->leases[--q->nlease];
}

static void lease_drop(struct jobq *q, long long job)
{
    size_t i;

    for (i = 0; i < q->nlease; i++)
        if (q->leases[i].job == job) {
            lease_drop_at(q, i);
            return;
        }
}

static struct lease *lease_add(struct jobq *q, long long job, long long attempt, const char *worker,
                               const char *session, const char *reply_to, long long lease_ms,
                               long long timeout_ms, long long started)
{
    struct lease *l;

    lease_drop(q, job);
    q->leases = grow(q->leases, &q->caplease, q->nlease + 1, sizeof *q->leases);
    l = &q->leases[q->nlease++];
    memset(l, 0, sizeof *l);
    l->job = job;
    l->attempt = attempt;
    l->worker = xdup(worker);
    l->session = xdup(session);
    l->reply_to = xdup(reply_to);
    l->lease_ms = lease_ms;
    l->timeout_ms = timeout_ms;
    l->started = started;
    l->deadline = util_now_ms() + lease_ms;
    return l;
}

static void waiter_free(struct waiter *w)
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
static void waiters_filter(struct jobq *q, int (*drop)(struct jobq *q, struct waiter *w, const void *arg),
                           const void *arg)
{
    size_t i, k = 0;

    for (i = 0; i < q->nwait; i++) {
        if (drop(q, &q->waiters[i], arg))
            waiter_free(&q->waiters[i]);
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

static int drop_session(struct jobq *q, struct waiter *w, const void *arg)
{
    (void)q;
    return !strcmp(w->session, arg);
}

static int drop_pending(struct jobq *q, struct waiter *w, const void *arg)
{
    (void)q;
    (void)arg;
    return w->pending;
}

static void waiter_add(struct jobq *q, const struct claim *c)
{
    struct waiter *w;
    int i;

    waiters_filter(q, drop_claim_id, c->id);
    q->waiters = grow(q->waiters, &q->capwait, q->nwait + 1, sizeof *q->waiters);
    w = &q->waiters[q->nwait++];
    memset(w, 0, sizeof *w);
    w->claim_id = xdup(c->id);
    w->worker = xdup(c->worker);
    w->session = xdup(c->session);
    w->reply_to = xdup(c->reply_to);
    for (i = 0; i < c->nq; i++)
        w->queues[i] = xdup(c->queues[i]);
    w->nq = c->nq;
    w->deadline = util_now_ms() + c->wait_ms;
}

static int session_ended(const struct jobq *q, const char *session)
{
    size_t i;

    for (i = 0; i < ENDED_MAX; i++)
        if (q->ended[i] && !strcmp(q->ended[i], session))
            return 1;
    return 0;
}

static void session_end(struct jobq *q, const char *session)
{
    if (session_ended(q, session))
        return;
    free(q->ended[q->ended_next]);
    q->ended[q->ended_next] = xdup(session);
    q->ended_next = (q->ended_next + 1) % ENDED_MAX;
}

/* ---- open, close --------------------------------------------------------------------- */

static int rebuild_one(void *arg, const struct jobs_lease *l)
{
    struct jobq *q = arg;
    long long now = util_now_ms(), age = util_wall_ms() - l->started_ms;
    struct lease *x;

    /* Nothing expires while the writer is down: every lease gets a full lease_ms now. */
    x = lease_add(q, l->job, l->attempt, l->worker, l->session, NULL, l->lease_ms, l->timeout_ms,
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

struct jobq *jobq_new(struct db *db, struct mq *mq, const char *prefix, const struct req_limits *lim,
                      char *err, size_t errlen)
{
    struct jobq *q = calloc(1, sizeof *q);
    int rc;

    if (!q)
        oom();
    q->db = db;
    q->mq = mq;
    q->lim = *lim;
    q->prefix = xdup(prefix);
    q->lim.prefix = q->prefix;
    q->t_jobs = util_join(prefix, "/jobs/");
    q->t_worker = util_join(prefix, "/jobs/worker");
    q->t_events = util_join(prefix, "/jobs/events/");
    q->t_to = util_join(prefix, "/jobs/to/");
    q->t_admin = util_join(prefix, "/admin");
    if (!q->t_jobs || !q->t_worker || !q->t_events || !q->t_to || !q->t_admin)
        oom();
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
    while (q->nlease)
        lease_drop_at(q, q->nlease - 1);
    for (i = 0; i < q->nwait; i++)
        waiter_free(&q->waiters[i]);
    out_cut(q, 0);
    for (i = 0; i < ENDED_MAX; i++)
        free(q->ended[i]);
    free(q->leases);
    free(q->waiters);
    free(q->out);
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
static int enqueue_one(struct jobq *q, const struct req_enqueue *e, const char *enq_id, const char *reply_to,
                       long long run_at_ms, char *err, size_t errlen)
{
    struct jobs_new n;
    struct jobs_enq out;
    char *payload;
    int rc;

    jobs_new_init(&n);
    if (!(payload = cJSON_PrintUnformatted(e->payload)))
        oom();
    n.queue = e->queue;
    n.payload = payload;
    n.priority = e->priority;
    n.unique_key = e->unique_key;
    n.on_duplicate = (enum jobs_dup)e->on_duplicate;
    n.conc_key = e->conc_key;
    n.conc_limit = e->conc_limit;
    if (e->max_attempts >= 0) n.max_attempts = e->max_attempts;
    if (e->max_lost >= 0) n.max_lost = e->max_lost;
    if (e->backoff_ms >= 0) n.backoff_ms = e->backoff_ms;
    if (e->backoff_cap_ms >= 0) n.backoff_cap_ms = e->backoff_cap_ms;
    if (e->jitter_pct >= 0) n.jitter_pct = e->jitter_pct;
    if (e->lease_ms >= 0) n.lease_ms = e->lease_ms;
    if (e->timeout_ms >= 0) n.timeout_ms = e->timeout_ms;
    n.run_at_ms = run_at_ms;
    n.enq_id = enq_id;
    n.reply_to = reply_to;
    n.follow = e->follow;
    memset(&out, 0, sizeof out);
    rc = jobs_enqueue(q->jobs, &n, util_wall_ms(), &out, err, errlen);
    cJSON_free(payload);
    if (rc != DB_OK && rc != DB_DUP)
        return rc;
    rcpt_job(q, &out, rc == DB_DUP);
    if (out.replaced && out.replaced_state == JOBS_RUNNING) {
        struct lease *l = lease_find(q, out.replaced);
        if (l) {
            l->cancel_asked = 1;
            push_op(q, l->reply_to, "cancel", l->job, l->attempt, NULL);
        }
    }
    return DB_OK;
}

static long long run_at_of(const struct req *r)
{
    if (!r->jobs_at)
        return 0;
    return r->has_at ? r->at_ms : util_wall_ms() + r->delay_ms;
}

/* db.c's hook for {"op": "enqueue"} in a write request. */
static int enqueue_op(void *arg, const struct req *r, int i, char *err, size_t errlen)
{
    struct jobq *q = arg;
    char sub[1024];
    int rc;

    rc = enqueue_one(q, &r->ops[i].enq, r->id, r->reply_to, run_at_of(r), sub, sizeof sub);
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
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
}

void jobq_cut(struct jobq *q, const struct jobq_mark *mk)
{
    size_t i;

    jobs_events_cut(q->jobs, mk->ev);
    out_cut(q, mk->out);
    /* Leases granted by the request (pending ones added after the mark). */
    for (i = q->nlease; i-- > 0;)
        if (q->leases[i].pending && i >= mk->nlease)
            lease_drop_at(q, i);
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
        oom();
    memcpy(s, q->rcpt.s, q->rcpt.len);
    s[q->rcpt.len] = '\0';
    jb_reset(&q->rcpt);
    q->rcpt_n = 0;
    return s;
}

/* ---- reading job messages ------------------------------------------------------------ */

static int in_family(const char *family, const char *queue)
{
    size_t n = strlen(family);

    return !strncmp(queue, family, n) && (queue[n] == '\0' || queue[n] == '.');
}

static int family_check(const char *family, const char *queue, char *err, size_t errlen)
{
    if (!family || in_family(family, queue))
        return 0;
    return util_fail(err, errlen, "queue \"%.128s\" is not in the family of \"%s\" (a message on "
                     "PREFIX/jobs/%s may name %s and %s.*)", queue, family, family, family, family);
}

/* Each field of o is one of the names (NULL-terminated). */
static int fields_only(const cJSON *o, const char *const *names, const char *what, char *err, size_t errlen)
{
    const cJSON *c;
    int i;

    for (c = o->child; c; c = c->next) {
        for (i = 0; names[i] && strcmp(names[i], c->string); i++)
            ;
        if (!names[i])
            return util_fail(err, errlen, "unknown field \"%.100s\" in %s", c->string, what);
    }
    return 0;
}

static int get_name(const cJSON *o, const char *key, int required, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (!v)
        return required ? util_fail(err, errlen, "\"%s\" is required", key) : 0;
    if (!cJSON_IsString(v) || !req_id_ok(v->valuestring))
        return util_fail(err, errlen, "\"%s\" must be a string of 1 to 128 printable ASCII characters", key);
    *out = v->valuestring;
    return 0;
}

static int get_int(const cJSON *o, const char *key, int required, long long lo, long long hi, long long *out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d;

    if (!v)
        return required ? util_fail(err, errlen, "\"%s\" is required", key) : 0;
    d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || (v->type & JSON_REAL) || d != floor(d) || d < (double)lo || d > (double)hi)
        return util_fail(err, errlen, "\"%s\" must be an integer from %lld to %lld", key, lo, hi);
    *out = (long long)d;
    return 0;
}

static int get_text(const cJSON *o, const char *key, size_t max, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
        return util_fail(err, errlen, "\"%s\" must be a string of at most %zu bytes", key, max);
    *out = v->valuestring;
    return 0;
}

/* A claim's reply_to: under PREFIX/jobs/to/ or outside PREFIX/. */
static int claim_reply_check(struct jobq *q, const char *rt, char *err, size_t errlen)
{
    size_t n = strlen(q->prefix);

    if (req_reply_check(rt, q->prefix, err, errlen))
        return -1;
    if (!strncmp(rt, q->prefix, n) && rt[n] == '/' && strncmp(rt, q->t_to, strlen(q->t_to)))
        return util_fail(err, errlen, "a claim's \"reply_to\" must be under %s/jobs/to/ or outside %s/",
                         q->prefix, q->prefix);
    return 0;
}

/* A claim from o (a message, or the "claim" of a done/fail/release: with_op 0, its
 * reply_to the message's). */
static int read_claim(struct jobq *q, const cJSON *o, int with_op, const char *family, const char *reply_to,
                      struct claim *c, char *err, size_t errlen)
{
    static const char *const names[] = {"op", "id", "worker", "session", "reply_to", "wait_ms", "queues", NULL};
    const cJSON *qs, *v;

    memset(c, 0, sizeof *c);
    if (fields_only(o, names + !with_op, "a claim", err, errlen) ||
        get_name(o, "id", 1, &c->id, err, errlen) ||
        get_name(o, "worker", 1, &c->worker, err, errlen) ||
        get_name(o, "session", 1, &c->session, err, errlen) ||
        get_int(o, "wait_ms", 0, 0, WAIT_MAX_MS, &c->wait_ms, err, errlen))
        return -1;
    if (!with_op && cJSON_GetObjectItemCaseSensitive(o, "reply_to"))
        return util_fail(err, errlen, "a next claim's answer goes to the message's \"reply_to\": "
                         "\"claim\" has no \"reply_to\" of its own");
    c->reply_to = reply_to;
    if (!c->reply_to)
        return util_fail(err, errlen, "a claim needs \"reply_to\": where its grant goes");
    if (claim_reply_check(q, c->reply_to, err, errlen))
        return -1;
    if (!(qs = cJSON_GetObjectItemCaseSensitive(o, "queues"))) {
        if (!family)
            return util_fail(err, errlen, "a claim needs \"queues\"");
        c->queues[c->nq++] = family;
        return 0;
    }
    if (!cJSON_IsArray(qs) || !qs->child)
        return util_fail(err, errlen, "\"queues\" must be a non-empty array of queue names");
    for (v = qs->child; v; v = v->next) {
        if (c->nq == MAX_QUEUES)
            return util_fail(err, errlen, "\"queues\" names more than %d queues", MAX_QUEUES);
        if (!cJSON_IsString(v))
            return util_fail(err, errlen, "\"queues\" must be a non-empty array of queue names");
        if (req_queue_check(v->valuestring, err, errlen) || family_check(family, v->valuestring, err, errlen))
            return -1;
        c->queues[c->nq++] = v->valuestring;
    }
    return 0;
}

/* ---- claims -------------------------------------------------------------------------- */

static void lease_from_grant(struct jobq *q, const struct jobs_grant *g, const char *worker,
                             const char *session, const char *reply_to)
{
    struct lease *l = lease_add(q, g->job, g->attempt, worker, session, reply_to, g->lease_ms,
                                g->timeout_ms, util_now_ms());
    l->pending = 1;
}

/* Grant now, or wait, or answer empty. DB_OK, DB_REJECT + err, DB_FAULT + err. */
static int do_claim(struct jobq *q, const struct claim *c, char *err, size_t errlen)
{
    struct jobs_grant g;
    int rc;

    if (session_ended(q, c->session))
        return util_fail(err, errlen, "session \"%s\" has ended (its gone or bye was seen): a new "
                         "connection needs a new session", c->session) ? DB_REJECT : DB_REJECT;
    memset(&g, 0, sizeof g);
    rc = jobs_grant(q->jobs, c->queues, c->nq, c->worker, c->session, c->id, util_wall_ms(), &g, err, errlen);
    if (rc == DB_OK && g.job) {
        lease_from_grant(q, &g, c->worker, c->session, c->reply_to);
        push_grant(q, c->reply_to, c->id, &g);
        waiters_filter(q, drop_claim_id, c->id);
    } else if (rc == DB_DUP) {
        /* The same claim again: the same grant, to where this one asks. */
        push_grant(q, c->reply_to, c->id, &g);
        rc = DB_OK;
    } else if (rc == DB_OK && c->wait_ms > 0) {
        waiter_add(q, c);
    } else if (rc == DB_OK) {
        push_empty(q, c->reply_to, c->id);
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
            push_grant(q, w->reply_to, w->claim_id, &g);
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

/* ---- outcomes ------------------------------------------------------------------------- */

static const char *state_of(int s)
{
    return jobs_state_name(s);
}

static void extra_set(struct outcome *o, struct jbuf *b)
{
    free(o->extra);
    o->extra = NULL;
    if (!b->len)
        return;
    if (b->oom || !(o->extra = malloc(b->len + 1)))
        oom();
    memcpy(o->extra, b->s, b->len);
    o->extra[b->len] = '\0';
}

/* done, fail, release: under the fence, with ops, enqueues and the next claim. */
static int apply_end(struct jobq *q, struct msg *m, const cJSON *root, const char *op, const char *family,
                     struct outcome *o, char *err, size_t errlen)
{
    static const char *const f_done[] = {"op", "id", "reply_to", "job", "attempt", "exit_code", "result", "ops",
                                         "enqueue", "claim", NULL};
    static const char *const f_fail[] = {"op", "id", "reply_to", "job", "attempt", "exit_code", "error", "retry",
                                         "retry_in_ms", "cancelled", "claim", NULL};
    static const char *const f_rel[] = {"op", "id", "reply_to", "job", "attempt", "delay_ms", "claim", NULL};
    int is_done = !strcmp(op, "done"), is_fail = !strcmp(op, "fail");
    const cJSON *ops = NULL, *enq = NULL, *cl, *v;
    struct req_enqueue enqs[64];
    int nenq = 0, rc, seen, dbrc, has_claim = 0;
    long long job = 0, attempt = 0, exit_code = LLONG_MIN, retry_in = -1, delay = 0, changes = 0, rowid;
    const char *error = NULL;
    char *result = NULL, what[192];
    enum jobs_retry retry = JOBS_RETRY_POLICY;
    int cancelled = 0;
    struct claim c;
    struct jobs_end end;
    struct jobs_info in;
    unsigned long long hash;
    char sub[1024];

    if (fields_only(root, is_done ? f_done : is_fail ? f_fail : f_rel,
                    is_done ? "a done" : is_fail ? "a fail" : "a release", err, errlen))
        return DB_REJECT;
    if (!o->id)
        return util_fail(err, errlen, "a %s needs an \"id\": a repeat of it is then answered duplicate", op)
               ? DB_REJECT : DB_REJECT;
    if (get_int(root, "job", 1, 1, 9007199254740991LL, &job, err, errlen) ||
        get_int(root, "attempt", 1, 1, 9007199254740991LL, &attempt, err, errlen) ||
        get_int(root, "exit_code", 0, -2147483648LL, 2147483647LL, &exit_code, err, errlen) ||
        get_int(root, "retry_in_ms", 0, 0, 86400000LL * 365, &retry_in, err, errlen) ||
        get_int(root, "delay_ms", 0, 0, REQ_DELAY_MAX, &delay, err, errlen) ||
        get_text(root, "error", ERROR_MAX, &error, err, errlen))
        return DB_REJECT;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "retry"))) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "policy"))
            retry = JOBS_RETRY_POLICY;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "yes"))
            retry = JOBS_RETRY_YES;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "no"))
            retry = JOBS_RETRY_NO;
        else
            return util_fail(err, errlen, "\"retry\" must be policy, yes or no") ? DB_REJECT : DB_REJECT;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "cancelled"))) {
        if (!cJSON_IsBool(v))
            return util_fail(err, errlen, "\"cancelled\" must be true or false") ? DB_REJECT : DB_REJECT;
        cancelled = cJSON_IsTrue(v);
    }
    if ((cl = cJSON_GetObjectItemCaseSensitive(root, "claim"))) {
        char cerr[512];
        if (!cJSON_IsObject(cl))
            return util_fail(err, errlen, "\"claim\" must be an object: the next claim") ? DB_REJECT : DB_REJECT;
        if (read_claim(q, cl, 0, family, o->reply_to, &c, cerr, sizeof cerr))
            return util_fail(err, errlen, "claim: %s", cerr) ? DB_REJECT : DB_REJECT;
        has_claim = 1;
    }
    if (is_done && (ops = cJSON_GetObjectItemCaseSensitive(root, "ops")) &&
        req_parse_ops(&q->sub, db_schema(q->db), &q->lim, ops, err, errlen))
        return DB_REJECT;
    if (is_done && (enq = cJSON_GetObjectItemCaseSensitive(root, "enqueue"))) {
        const cJSON *e;
        if (!cJSON_IsArray(enq) || !enq->child)
            return util_fail(err, errlen, "\"enqueue\" must be a non-empty array of jobs") ? DB_REJECT : DB_REJECT;
        for (e = enq->child; e; e = e->next, nenq++) {
            if (nenq == 64)
                return util_fail(err, errlen, "\"enqueue\" holds more than 64 jobs") ? DB_REJECT : DB_REJECT;
            if (!cJSON_IsObject(e))
                return util_fail(err, errlen, "enqueue[%d]: a job must be a JSON object", nenq) ? DB_REJECT : DB_REJECT;
            if (req_enqueue_read(e, 0, 0, NULL, &enqs[nenq], sub, sizeof sub))
                return util_fail(err, errlen, "enqueue[%d]: %s", nenq, sub) ? DB_REJECT : DB_REJECT;
            if (enqs[nenq].follow && !o->reply_to)
                return util_fail(err, errlen, "enqueue[%d]: \"follow\" needs the message's \"reply_to\"", nenq)
                       ? DB_REJECT : DB_REJECT;
        }
    }
    if (is_done && (v = cJSON_GetObjectItemCaseSensitive(root, "result"))) {
        if (!(result = cJSON_PrintUnformatted(v)))
            oom();
        if (strlen(result) > TEXT_MAX) {
            cJSON_free(result);
            return util_fail(err, errlen, "\"result\" is longer than %d bytes as JSON", TEXT_MAX) ? DB_REJECT : DB_REJECT;
        }
    }
    hash = req_hash(root, m->topic);
    /* The request: its id, the fence, its effects, all in one savepoint. */
    if ((rc = db_req_begin(q->db, err, errlen)) != DB_OK)
        goto out;
    if ((seen = db_id_seen(q->db, o->id, hash, &dbrc))) {
        if (seen < 0)
            rc = db_fault(q->db, dbrc, err, errlen);
        else if (seen == 2)
            rc = util_fail(err, errlen, "id \"%s\" was already used by a different request", o->id) ? DB_REJECT : 0;
        else
            rc = DB_DUP;
        rc = db_req_end(q->db, rc, err, errlen);
        goto out;
    }
    memset(&in, 0, sizeof in);
    rc = jobs_info(q->jobs, job, &in, err, errlen);
    if (rc == DB_OK && family && !in_family(family, in.queue))
        rc = util_fail(err, errlen, "job %lld is in queue \"%s\": a message on PREFIX/jobs/%s may only name "
                       "jobs of %s and %s.*", job, in.queue, family, family, family) ? DB_REJECT : 0;
    jobs_info_free(&in);
    if (rc == DB_OK) {
        long long now = util_wall_ms();
        if (is_done)
            rc = jobs_done(q->jobs, job, attempt, result, exit_code == LLONG_MIN ? 0 : exit_code, now, &end,
                           err, errlen);
        else if (is_fail && cancelled)
            rc = jobs_cancelled(q->jobs, job, attempt, now, &end, err, errlen);
        else if (is_fail)
            rc = jobs_fail(q->jobs, job, attempt, exit_code, error, retry, retry_in, now, &end, err, errlen);
        else
            rc = jobs_release(q->jobs, job, attempt, delay, now, &end, err, errlen);
    }
    if (rc == DB_OK && ops)
        rc = db_apply(q->db, &q->sub, &changes, &rowid, err, errlen);
    for (int i = 0; rc == DB_OK && i < nenq; i++) {
        rc = enqueue_one(q, &enqs[i], o->id, o->reply_to, 0, sub, sizeof sub);
        if (rc == DB_FAULT)
            snprintf(err, errlen, "%s", sub);
        else if (rc != DB_OK)
            snprintf(err, errlen, "enqueue[%d]: %s", i, sub);
    }
    if (rc == DB_OK && (dbrc = db_id_keep(q->db, o->id, hash)) != SQLITE_OK) {
        snprintf(what, sizeof what, "id \"%s\" could not be kept as used", o->id);
        rc = db_own(q->db, dbrc, what, err, errlen);
    }
    rc = db_req_end(q->db, rc, err, errlen);
    if (rc == DB_OK) {
        struct jbuf *b = &q->scratch;
        char *jobs = jobq_take_receipt(q);
        o->changes = changes;
        jb_reset(b);
        jb_puts(b, "\"job\":");
        jb_int(b, job);
        jb_puts(b, ",\"state\":");
        jb_cstr(b, state_of(end.state));
        if (jobs) {
            jb_putc(b, ',');
            jb_puts(b, jobs);
            free(jobs);
        }
        if (has_claim) {
            char cerr[512];
            int crc = do_claim(q, &c, cerr, sizeof cerr);
            if (crc == DB_FAULT) {
                snprintf(err, errlen, "%s", cerr);
                rc = DB_FAULT;
                goto out;
            }
            if (crc == DB_REJECT) {
                jb_puts(b, ",\"claim_error\":");
                jb_cstr(b, cerr);
            }
        }
        extra_set(o, b);
    }
out:
    if (result)
        cJSON_free(result);
    req_clear(&q->sub);
    return rc;
}

static int apply_progress(struct jobq *q, const cJSON *root, const char *family, char *err, size_t errlen)
{
    static const char *const names[] = {"op", "reply_to", "job", "attempt", "progress", NULL};
    long long job = 0, attempt = 0;
    const cJSON *v;
    struct jobs_info in;
    char *text;
    int rc;

    if (fields_only(root, names, "a progress", err, errlen) ||
        get_int(root, "job", 1, 1, 9007199254740991LL, &job, err, errlen) ||
        get_int(root, "attempt", 1, 1, 9007199254740991LL, &attempt, err, errlen))
        return DB_REJECT;
    if (!(v = cJSON_GetObjectItemCaseSensitive(root, "progress")))
        return util_fail(err, errlen, "\"progress\" is required") ? DB_REJECT : DB_REJECT;
    if (!(text = cJSON_PrintUnformatted(v)))
        oom();
    if (strlen(text) > ERROR_MAX) {
        cJSON_free(text);
        return util_fail(err, errlen, "\"progress\" is longer than %d bytes as JSON", ERROR_MAX) ? DB_REJECT : DB_REJECT;
    }
    rc = jobs_info(q->jobs, job, &in, err, errlen);
    if (rc == DB_OK && family && !in_family(family, in.queue))
        rc = util_fail(err, errlen, "job %lld is in queue \"%s\": a message on PREFIX/jobs/%s may only name "
                       "jobs of %s and %s.*", job, in.queue, family, family, family) ? DB_REJECT : 0;
    jobs_info_free(&in);
    if (rc == DB_OK && (rc = db_req_begin(q->db, err, errlen)) == DB_OK)
        rc = db_req_end(q->db, jobs_progress(q->jobs, job, attempt, text, err, errlen), err, errlen);
    cJSON_free(text);
    return rc;
}

/* An enqueue on PREFIX/jobs/QUEUE: a request of one op. */
static int apply_enqueue_msg(struct jobq *q, struct msg *m, const cJSON *root, const char *family,
                             struct outcome *o, char *err, size_t errlen)
{
    struct req r;
    long long changes, rowid;
    int rc;

    memset(&r, 0, sizeof r);
    r.delay_ms = -1;
    if (!(r.ops = calloc(1, sizeof *r.ops)))
        oom();
    r.nops = 1;
    r.ops[0].kind = OP_ENQUEUE;
    rc = DB_REJECT;
    if (req_enqueue_read(root, 1, 1, family, &r.ops[0].enq, err, errlen) ||
        family_check(family, r.ops[0].enq.queue, err, errlen))
        goto out;
    {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "at");
        const cJSON *delay = cJSON_GetObjectItemCaseSensitive(root, "delay_ms");
        if (at && delay) {
            util_fail(err, errlen, "give \"at\" or \"delay_ms\", not both");
            goto out;
        }
        if (at && (!cJSON_IsString(at) || util_time_parse(at->valuestring, &r.at_ms))) {
            util_fail(err, errlen, "\"at\" must be a date and time as in RFC 3339, in UTC: \"2026-11-24T23:00:00Z\"");
            goto out;
        }
        r.has_at = at != NULL;
        if (delay && get_int(root, "delay_ms", 0, 0, REQ_DELAY_MAX, &r.delay_ms, err, errlen))
            goto out;
        r.jobs_at = at || delay;
    }
    if (r.ops[0].enq.follow && !o->reply_to) {
        util_fail(err, errlen, "\"follow\" needs the request's \"reply_to\"");
        goto out;
    }
    r.id = o->id;
    r.reply_to = o->reply_to;
    r.hash = o->id ? req_hash(root, m->topic) : 0;
    rc = db_apply(q->db, &r, &changes, &rowid, err, errlen);
    if (rc == DB_OK) {
        struct jbuf b = {0};
        char *jobs = jobq_take_receipt(q);
        if (jobs) {
            jb_puts(&b, jobs);
            free(jobs);
        }
        extra_set(o, &b);
        jb_free(&b);
        o->changes = changes;
    }
out:
    free(r.ops);
    return rc;
}

/* hello, beat, bye, gone on PREFIX/jobs/worker. */
static int apply_worker(struct jobq *q, const cJSON *root, const char *op, struct outcome *o, char *err,
                        size_t errlen)
{
    static const char *const f_hello[] = {"op", "worker", "session", "host", "queues", "jobs", "reply_to", NULL};
    static const char *const f_beat[] = {"op", "worker", "session", "reply_to", "jobs", NULL};
    static const char *const f_bye[] = {"op", "worker", "session", NULL};
    const char *worker, *session;
    const cJSON *jobs, *e;
    int n = 0, rc;

    o->kind = OUT_DROPPED;
    if (!strcmp(op, "hello")) {
        if (fields_only(root, f_hello, "a hello", err, errlen))
            return DB_REJECT;
    } else if (!strcmp(op, "beat")) {
        if (fields_only(root, f_beat, "a beat", err, errlen))
            return DB_REJECT;
    } else if (!strcmp(op, "bye") || !strcmp(op, "gone")) {
        if (fields_only(root, f_bye, !strcmp(op, "bye") ? "a bye" : "a gone", err, errlen))
            return DB_REJECT;
    } else {
        return util_fail(err, errlen, "unknown op \"%.100s\" on PREFIX/jobs/worker (use hello, beat, bye or "
                         "gone)", op) ? DB_REJECT : DB_REJECT;
    }
    if (get_name(root, "worker", 1, &worker, err, errlen) || get_name(root, "session", 1, &session, err, errlen))
        return DB_REJECT;
    if (!strcmp(op, "hello")) {
        q->hellos++;
        log_debug("jobs: hello from worker %s (session %s)", worker, session);
        return DB_OK;
    }
    if (!strcmp(op, "bye") || !strcmp(op, "gone")) {
        session_end(q, session);
        waiters_filter(q, drop_session, session);
        rc = jobs_lost_session(q->jobs, session, op, util_wall_ms(), &n, err, errlen);
        if (n)
            log_info("jobs: worker %s (session %s) %s: %d lease%s ended", worker, session, op, n,
                     n == 1 ? "" : "s");
        return rc;
    }
    /* beat */
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
        if (!cJSON_IsObject(e) || fields_only(e, f_lease, "a beat's lease", sub, sizeof sub) ||
            get_int(e, "job", 1, 1, 9007199254740991LL, &job, sub, sizeof sub) ||
            get_int(e, "attempt", 1, 1, 9007199254740991LL, &attempt, sub, sizeof sub))
            return util_fail(err, errlen, "jobs[%d]: %s", n, cJSON_IsObject(e) ? sub :
                             "a lease is {\"job\": N, \"attempt\": A}") ? DB_REJECT : DB_REJECT;
        n++;
    }
    for (e = jobs->child; e; e = e->next) {
        long long job = (long long)cJSON_GetObjectItemCaseSensitive(e, "job")->valuedouble;
        long long attempt = (long long)cJSON_GetObjectItemCaseSensitive(e, "attempt")->valuedouble;
        struct lease *l = lease_find(q, job);
        if (l && l->attempt == attempt && !l->ending) {
            l->deadline = util_now_ms() + l->lease_ms;
            if (!l->reply_to)        /* leases rebuilt at start learn where to push */
                l->reply_to = xdup(o->reply_to);
            if (l->cancel_asked)
                push_op(q, o->reply_to, "cancel", job, attempt, NULL);
        } else {
            struct jobs_info in;
            char sub[256];
            rc = jobs_info(q->jobs, job, &in, sub, sizeof sub);
            if (rc == DB_FAULT)
                return util_fail(err, errlen, "%s", sub) ? DB_FAULT : DB_FAULT;
            push_op(q, o->reply_to, "lease_lost", job, attempt, rc == DB_OK ? state_of(in.state) : NULL);
            jobs_info_free(&in);
        }
    }
    o->reply_to = NULL;    /* news only, by push */
    return DB_OK;
}

/* A job command put in the queue by jobq_admin. Always DB_OK (or DB_FAULT): its error
 * is its answer, not a rejected request. */
static int apply_admin(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen)
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
        push(q, m->resp_topic, b);
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
        jb_cstr(b, state_of(end.state));
    }
    jb_putc(b, '}');
    push(q, m->resp_topic, b);
    if (!strcmp(cmd, "job_cancel") && end.cancel_asked) {
        struct lease *l = lease_find(q, job);
        if (l) {
            l->cancel_asked = 1;
            push_op(q, l->reply_to, "cancel", l->job, l->attempt, NULL);
        }
    }
out:
    cJSON_Delete(root);
    return rc;
}

int jobq_apply(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen)
{
    const char *rest = m->topic + q->t_jobs_len, *op, *family = NULL;
    cJSON *root = NULL;
    const cJSON *id, *rt, *opv;
    char rterr[512] = "";
    int rc = DB_REJECT;

    o->kind = 0;
    if (m->sched_id)
        return apply_admin(q, m, o, err, errlen);
    if (json_read(&root, &q->nums, q->lim.max_payload, q->lim.max_depth, m->payload, m->len, err, errlen)) {
        /* Still answer where the message asks, when that can be read. */
        if (root && (rt = cJSON_GetObjectItemCaseSensitive(root, "reply_to")) && cJSON_IsString(rt) &&
            !req_reply_check(rt->valuestring, q->prefix, rterr, sizeof rterr))
            o->reply_to = xdup(rt->valuestring);
        if (root && (id = cJSON_GetObjectItemCaseSensitive(root, "id")) && cJSON_IsString(id) &&
            req_id_ok(id->valuestring))
            o->id = xdup(id->valuestring);
        goto out;
    }
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && (!cJSON_IsString(id) || !req_id_ok(id->valuestring))) {
        util_fail(err, errlen, "\"id\" must be a string of 1 to 128 printable ASCII characters");
        id = NULL;
    } else if (id) {
        o->id = xdup(id->valuestring);
    }
    rt = cJSON_GetObjectItemCaseSensitive(root, "reply_to");
    if (rt && !cJSON_IsString(rt))
        util_fail(rterr, sizeof rterr, "\"reply_to\" must be a string (a topic name), not %s", json_type_name(rt));
    else if (rt && !req_reply_check(rt->valuestring, q->prefix, rterr, sizeof rterr))
        o->reply_to = xdup(rt->valuestring);
    if (*err && id == NULL && cJSON_GetObjectItemCaseSensitive(root, "id"))
        goto out;
    if (rterr[0]) {
        util_fail(err, errlen, "%s", rterr);
        goto out;
    }
    if (m->retained) {
        util_fail(err, errlen, "a retained request is not applied: publish requests without the retain "
                  "flag, and clear this one (an empty retained message on %.200s)", m->topic);
        goto out;
    }
    opv = cJSON_GetObjectItemCaseSensitive(root, "op");
    if (!opv || !cJSON_IsString(opv)) {
        util_fail(err, errlen, "a job message needs \"op\" (a string)");
        goto out;
    }
    op = opv->valuestring;
    if (!strcmp(rest, "worker")) {
        rc = apply_worker(q, root, op, o, err, errlen);
        goto out;
    }
    if (strchr(rest, '/') || req_queue_check(rest, err, errlen)) {
        if (strchr(rest, '/'))
            util_fail(err, errlen, "topic \"%.200s\" is not %sQUEUE or %sworker", m->topic, q->t_jobs, q->t_jobs);
        goto out;
    }
    family = rest;
    if (!strcmp(op, "claim")) {
        struct claim c;
        o->kind = OUT_DROPPED;
        if (read_claim(q, root, 1, family, o->reply_to, &c, err, errlen))
            goto out;
        rc = do_claim(q, &c, err, errlen);
        if (rc == DB_OK) {
            free(o->reply_to);
            o->reply_to = NULL;    /* the grant (or empty) is the answer */
        }
    } else if (!strcmp(op, "done") || !strcmp(op, "fail") || !strcmp(op, "release")) {
        rc = apply_end(q, m, root, op, family, o, err, errlen);
    } else if (!strcmp(op, "progress")) {
        rc = apply_progress(q, root, family, err, errlen);
        o->kind = OUT_DROPPED;
    } else if (!strcmp(op, "enqueue")) {
        rc = apply_enqueue_msg(q, m, root, family, o, err, errlen);
    } else {
        util_fail(err, errlen, "unknown op \"%.100s\" on PREFIX/jobs/QUEUE (use claim, done, fail, release, "
                  "progress or enqueue)", op);
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- timers ----------------------------------------------------------------------------- */

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
            push_op(q, l->reply_to, "lease_lost", l->job, l->attempt, state_of(end.state));
        }
    }
    return DB_OK;
}

int jobq_due(const struct jobq *q, long long now_ms)
{
    long long wall = util_wall_ms();
    size_t i;

    (void)now_ms;
    if (q->next_due_ms <= wall)
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
    return w < 0 ? 0 : (int)w;
}

static int drop_expired(struct jobq *q, struct waiter *w, const void *arg)
{
    long long now = *(const long long *)arg;

    if (w->pending || now < w->deadline)
        return 0;
    push_empty(q, w->reply_to, w->claim_id);
    return 1;
}

void jobq_tick(struct jobq *q)
{
    long long now = util_now_ms();
    size_t n0 = q->nout, i;

    waiters_filter(q, drop_expired, &now);
    for (i = n0; i < q->nout; i++)
        mq_publish(q->mq, q->out[i].topic, q->out[i].payload, strlen(q->out[i].payload), 1, 0, NULL, 0);
    out_cut(q, n0);
}

/* ---- after COMMIT, after a rollback ------------------------------------------------------ */

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
    out_cut(q, 0);
    for (i = 0; i < q->nlease; i++)
        q->leases[i].pending = 0;
    ev = jobs_events(q->jobs, &n);
    for (i = 0; i < n; i++) {
        const struct jobs_event *e = &ev[i];
        struct jbuf *b = &q->scratch;
        char *topic;
        if (e->from == JOBS_RUNNING) {
            struct lease *l = lease_find(q, e->job);
            if (l && !l->pending)
                lease_drop(q, e->job);
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
        jb_cstr(b, e->from >= 0 ? state_of(e->from) : NULL);
        jb_puts(b, ",\"to\":");
        jb_cstr(b, state_of(e->to));
        jb_putc(b, '}');
        if (!(topic = util_join(q->t_events, e->queue)))
            oom();
        if (!b->oom)
            mq_publish(q->mq, topic, b->s, b->len, 0, 0, NULL, 0);
        free(topic);
        if (e->follow && JOBS_FINAL(e->to))
            follow_receipt(q, e);
    }
    /* Leases ended by a timer whose job was not running any more. */
    for (i = q->nlease; i-- > 0;)
        if (q->leases[i].ending)
            lease_drop_at(q, i);
    waiters_filter(q, drop_pending, NULL);
    jobs_events_reset(q->jobs);
    q->match_ev = 0;
}

void jobq_rolled_back(struct jobq *q)
{
    size_t i;

    out_cut(q, 0);
    for (i = q->nlease; i-- > 0;) {
        if (q->leases[i].pending)
            lease_drop_at(q, i);
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
}

/* ---- status, commands -------------------------------------------------------------------- */

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
