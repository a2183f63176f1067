/* jobq_end.c: the outcomes of an attempt: done, fail, release, each under the fence
 * (job, attempt), with a done's ops and enqueues and the next claim, in one savepoint
 * (see jobq.h). */
#include "jobq_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TEXT_MAX 65536                 /* a result */

void jobq_extra_set(struct outcome *o, struct jbuf *b)
{
    free(o->extra);
    o->extra = NULL;
    if (!b->len)
        return;
    if (b->oom || !(o->extra = malloc(b->len + 1)))
        jobq_oom();
    memcpy(o->extra, b->s, b->len);
    o->extra[b->len] = '\0';
}

/* A done, fail or release as read: the outcome, the next claim, a done's ops and
 * enqueues. */
struct end_msg {
    int is_done, is_fail;
    long long job, attempt, exit_code, retry_in, delay;
    const char *error;
    enum jobs_retry retry;
    int cancelled;
    struct claim c;
    int has_claim;
    const cJSON *ops;
    struct req_enqueue enqs[64];
    int nenq;
    char *result;                  /* a done's result as JSON (cJSON_free) */
};

/* A fail's "retry" and "cancelled". */
static int end_read_fail(const cJSON *root, struct end_msg *e, char *err, size_t errlen)
{
    const cJSON *v;

    if ((v = cJSON_GetObjectItemCaseSensitive(root, "retry"))) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "policy"))
            e->retry = JOBS_RETRY_POLICY;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "yes"))
            e->retry = JOBS_RETRY_YES;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "no"))
            e->retry = JOBS_RETRY_NO;
        else
            return util_fail(err, errlen, "\"retry\" must be policy, yes or no") ? DB_REJECT : DB_REJECT;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "cancelled"))) {
        if (!cJSON_IsBool(v))
            return util_fail(err, errlen, "\"cancelled\" must be true or false") ? DB_REJECT : DB_REJECT;
        e->cancelled = cJSON_IsTrue(v);
    }
    return DB_OK;
}

/* A done's "enqueue": up to 64 jobs. */
static int end_read_enqueue(const cJSON *enq, const struct outcome *o, struct end_msg *x, char *err,
                            size_t errlen)
{
    const cJSON *e;
    char sub[1024];

    if (!cJSON_IsArray(enq) || !enq->child)
        return util_fail(err, errlen, "\"enqueue\" must be a non-empty array of jobs") ? DB_REJECT : DB_REJECT;
    for (e = enq->child; e; e = e->next, x->nenq++) {
        if (x->nenq == 64)
            return util_fail(err, errlen, "\"enqueue\" holds more than 64 jobs") ? DB_REJECT : DB_REJECT;
        if (!cJSON_IsObject(e))
            return util_fail(err, errlen, "enqueue[%d]: a job must be a JSON object", x->nenq) ? DB_REJECT : DB_REJECT;
        if (req_enqueue_read(e, 0, 0, NULL, &x->enqs[x->nenq], sub, sizeof sub))
            return util_fail(err, errlen, "enqueue[%d]: %s", x->nenq, sub) ? DB_REJECT : DB_REJECT;
        if (x->enqs[x->nenq].follow && !o->reply_to)
            return util_fail(err, errlen, "enqueue[%d]: \"follow\" needs the message's \"reply_to\"", x->nenq)
                   ? DB_REJECT : DB_REJECT;
    }
    return DB_OK;
}

/* The message's fields into e: DB_OK or DB_REJECT + err. */
static int end_read(struct jobq *q, const cJSON *root, const char *op, const char *family, const struct outcome *o,
                    struct end_msg *e, char *err, size_t errlen)
{
    static const char *const f_done[] = {"op", "id", "reply_to", "job", "attempt", "exit_code", "result", "ops",
                                         "enqueue", "claim", NULL};
    static const char *const f_fail[] = {"op", "id", "reply_to", "job", "attempt", "exit_code", "error", "retry",
                                         "retry_in_ms", "cancelled", "claim", NULL};
    static const char *const f_rel[] = {"op", "id", "reply_to", "job", "attempt", "delay_ms", "claim", NULL};
    int is_done = e->is_done, is_fail = e->is_fail;
    const cJSON *enq, *cl, *v;

    if (jobq_fields_only(root, is_done ? f_done : is_fail ? f_fail : f_rel,
                         is_done ? "a done" : is_fail ? "a fail" : "a release", err, errlen))
        return DB_REJECT;
    if (!o->id)
        return util_fail(err, errlen, "a %s needs an \"id\": a repeat of it is then answered duplicate", op)
               ? DB_REJECT : DB_REJECT;
    if (jobq_get_int(root, "job", 1, 1, (UTIL_EXACT_INT - 1), &e->job, err, errlen) ||
        jobq_get_int(root, "attempt", 1, 1, (UTIL_EXACT_INT - 1), &e->attempt, err, errlen) ||
        jobq_get_int(root, "exit_code", 0, -2147483648LL, 2147483647LL, &e->exit_code, err, errlen) ||
        jobq_get_int(root, "retry_in_ms", 0, 0, 86400000LL * 365, &e->retry_in, err, errlen) ||
        jobq_get_int(root, "delay_ms", 0, 0, REQ_DELAY_MAX, &e->delay, err, errlen) ||
        jobq_get_text(root, "error", ERROR_MAX, &e->error, err, errlen))
        return DB_REJECT;
    if (end_read_fail(root, e, err, errlen))
        return DB_REJECT;
    if ((cl = cJSON_GetObjectItemCaseSensitive(root, "claim"))) {
        char cerr[512];
        if (!cJSON_IsObject(cl))
            return util_fail(err, errlen, "\"claim\" must be an object: the next claim") ? DB_REJECT : DB_REJECT;
        if (jobq_read_claim(q, cl, 0, family, o->reply_to, &e->c, cerr, sizeof cerr))
            return util_fail(err, errlen, "claim: %s", cerr) ? DB_REJECT : DB_REJECT;
        e->has_claim = 1;
    }
    if (is_done && (e->ops = cJSON_GetObjectItemCaseSensitive(root, "ops")) &&
        req_parse_ops(&q->sub, db_schema(q->db), &q->lim, e->ops, err, errlen))
        return DB_REJECT;
    if (is_done && (enq = cJSON_GetObjectItemCaseSensitive(root, "enqueue")) &&
        end_read_enqueue(enq, o, e, err, errlen))
        return DB_REJECT;
    if (is_done && (v = cJSON_GetObjectItemCaseSensitive(root, "result"))) {
        if (!(e->result = json_text(v)))
            jobq_oom();
        if (strlen(e->result) > TEXT_MAX) {
            cJSON_free(e->result);
            e->result = NULL;
            return util_fail(err, errlen, "\"result\" is longer than %d bytes as JSON", TEXT_MAX)
                   ? DB_REJECT : DB_REJECT;
        }
    }
    return DB_OK;
}

/* The request's id already kept: 1 with *rc (DB_DUP, or DB_REJECT for another request
 * under that id, or DB_FAULT), the savepoint ended; 0 when not. */
static int end_seen(struct jobq *q, const char *id, unsigned long long hash, int *rc, char *err, size_t errlen)
{
    int seen, dbrc;

    if (!(seen = db_id_seen(q->db, id, hash, &dbrc)))
        return 0;
    if (seen < 0)
        *rc = db_fault(q->db, dbrc, err, errlen);
    else if (seen == 2)
        *rc = util_fail(err, errlen, "id \"%s\" was already used by a different request", id) ? DB_REJECT : 0;
    else
        *rc = DB_DUP;
    *rc = db_req_end(q->db, *rc, err, errlen);
    return 1;
}

/* Inside the request's savepoint: the fence and the outcome, the ops, the enqueues, the
 * id kept; then the savepoint ended. */
static int end_write(struct jobq *q, const char *family, const struct outcome *o, const struct end_msg *e,
                     unsigned long long hash, struct jobs_end *end, long long *changes, char *err, size_t errlen)
{
    long long job = e->job, attempt = e->attempt, exit_code = e->exit_code, rowid;
    struct jobs_info in;
    char sub[1024], what[192];
    int rc, dbrc;

    memset(&in, 0, sizeof in);
    rc = jobs_info(q->jobs, job, &in, err, errlen);
    if (rc == DB_OK && family && !jobq_in_family(family, in.queue))
        rc = util_fail(err, errlen, "job %lld is in queue \"%s\": a message on PREFIX/jobs/%s may only name "
                       "jobs of %s and %s.*", job, in.queue, family, family, family) ? DB_REJECT : 0;
    jobs_info_free(&in);
    if (rc == DB_OK) {
        long long now = util_wall_ms();
        if (e->is_done)
            rc = jobs_done(q->jobs, job, attempt, e->result, exit_code == LLONG_MIN ? 0 : exit_code, now, end,
                           err, errlen);
        else if (e->is_fail && e->cancelled)
            rc = jobs_cancelled(q->jobs, job, attempt, now, end, err, errlen);
        else if (e->is_fail)
            rc = jobs_fail(q->jobs, job, attempt, exit_code, e->error, e->retry, e->retry_in, now, end, err,
                           errlen);
        else
            rc = jobs_release(q->jobs, job, attempt, e->delay, now, end, err, errlen);
    }
    if (rc == DB_OK && e->ops)
        rc = db_apply(q->db, &q->sub, changes, &rowid, err, errlen);
    for (int i = 0; rc == DB_OK && i < e->nenq; i++) {
        rc = jobq_enqueue_one(q, &e->enqs[i], o->id, o->reply_to, 0, sub, sizeof sub);
        if (rc == DB_FAULT)
            snprintf(err, errlen, "%s", sub);
        else if (rc != DB_OK)
            snprintf(err, errlen, "enqueue[%d]: %s", i, sub);
    }
    if (rc == DB_OK && (dbrc = db_id_keep(q->db, o->id, hash)) != SQLITE_OK) {
        snprintf(what, sizeof what, "id \"%s\" could not be kept as used", o->id);
        rc = db_own(q->db, dbrc, what, err, errlen);
    }
    return db_req_end(q->db, rc, err, errlen);
}

/* The receipt's fields (the job's state, the jobs enqueued) and the next claim, after
 * the savepoint: DB_OK, or DB_FAULT from the claim. */
static int end_answer(struct jobq *q, struct outcome *o, const struct end_msg *e, const struct jobs_end *end,
                      long long changes, char *err, size_t errlen)
{
    struct jbuf lb = {0}, *b = &lb;     /* not q->scratch: the claim's grant is built there */
    char *jobs = jobq_take_receipt(q);

    o->changes = changes;
    jb_reset(b);
    jb_puts(b, "\"job\":");
    jb_int(b, e->job);
    jb_puts(b, ",\"state\":");
    jb_cstr(b, jobs_state_name(end->state));
    if (jobs) {
        jb_putc(b, ',');
        jb_puts(b, jobs);
        free(jobs);
    }
    if (e->has_claim) {
        char cerr[512];
        int crc = jobq_claim(q, &e->c, cerr, sizeof cerr);
        if (crc == DB_FAULT) {
            snprintf(err, errlen, "%s", cerr);
            jb_free(b);
            return DB_FAULT;
        }
        if (crc == DB_REJECT) {
            jb_puts(b, ",\"claim_error\":");
            jb_cstr(b, cerr);
        }
    }
    jobq_extra_set(o, b);
    jb_free(b);
    return DB_OK;
}

/* done, fail, release: under the fence, with ops, enqueues and the next claim. */
int jobq_apply_end(struct jobq *q, struct msg *m, const cJSON *root, const char *op, const char *family,
                   struct outcome *o, char *err, size_t errlen)
{
    struct end_msg e;
    struct jobs_end end;
    long long changes = 0;
    unsigned long long hash;
    int rc;

    memset(&e, 0, sizeof e);
    e.is_done = !strcmp(op, "done");
    e.is_fail = !strcmp(op, "fail");
    e.exit_code = LLONG_MIN;
    e.retry_in = -1;
    e.retry = JOBS_RETRY_POLICY;
    if (end_read(q, root, op, family, o, &e, err, errlen))
        return DB_REJECT;
    hash = req_hash(root, m->topic);
    /* The request: its id, the fence, its effects, all in one savepoint. */
    if ((rc = db_req_begin(q->db, err, errlen)) != DB_OK)
        goto out;
    if (end_seen(q, o->id, hash, &rc, err, errlen))
        goto out;
    rc = end_write(q, family, o, &e, hash, &end, &changes, err, errlen);
    if (rc == DB_OK)
        rc = end_answer(q, o, &e, &end, changes, err, errlen);
out:
    if (e.result)
        cJSON_free(e.result);
    req_clear(&q->sub);
    return rc;
}
