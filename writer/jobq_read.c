/* jobq_read.c: job messages on PREFIX/jobs/QUEUE and PREFIX/jobs/worker read as
 * strictly as requests and sent to their part: claim, progress, enqueue here; done, fail,
 * release (jobq_end.c); hello, beat, bye, gone (jobq_lease.c); job commands (jobq.c). */
#include "jobq_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define WAIT_MAX_MS 3600000LL

int jobq_in_family(const char *family, const char *queue)
{
    size_t n = strlen(family);

    return !strncmp(queue, family, n) && (queue[n] == '\0' || queue[n] == '.');
}

static int family_check(const char *family, const char *queue, char *err, size_t errlen)
{
    if (!family || jobq_in_family(family, queue))
        return 0;
    return util_fail(err, errlen, "queue \"%.128s\" is not in the family of \"%s\" (a message on "
                     "PREFIX/jobs/%s may name %s and %s.*)", queue, family, family, family, family);
}

/* Each field of o is one of the names (NULL-terminated). */
int jobq_fields_only(const cJSON *o, const char *const *names, const char *what, char *err, size_t errlen)
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

int jobq_get_name(const cJSON *o, const char *key, int required, const char **out, char *err, size_t errlen)
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

int jobq_get_int(const cJSON *o, const char *key, int required, long long lo, long long hi, long long *out,
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

int jobq_get_text(const cJSON *o, const char *key, size_t max, const char **out, char *err, size_t errlen)
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

static int claim_reply_rule(const struct jobq *q, char *err, size_t errlen)
{
    return util_fail(err, errlen, "a claim's \"reply_to\" must be under %s/jobs/to/ or outside %s/", q->prefix,
                     q->prefix);
}

/* A claim's reply_to: under PREFIX/jobs/to/ or outside PREFIX/. */
static int claim_reply_check(struct jobq *q, const char *rt, char *err, size_t errlen)
{
    size_t n = strlen(q->prefix);

    if (req_reply_check(rt, q->prefix, err, errlen))
        return -1;
    if (!strncmp(rt, q->prefix, n) && rt[n] == '/' && strncmp(rt, q->t_to, strlen(q->t_to)))
        return claim_reply_rule(q, err, errlen);
    return 0;
}

static int is_claim(const cJSON *root)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");

    return cJSON_IsString(op) && !strcmp(op->valuestring, "claim");
}

/* A claim from o (a message, or the "claim" of a done/fail/release: with_op 0, its
 * reply_to the message's). */
int jobq_read_claim(struct jobq *q, const cJSON *o, int with_op, const char *family, const char *reply_to,
                    struct claim *c, char *err, size_t errlen)
{
    static const char *const names[] = {"op", "id", "worker", "session", "reply_to", "wait_ms", "queues", NULL};
    const cJSON *qs, *v;

    memset(c, 0, sizeof *c);
    if (jobq_fields_only(o, names + !with_op, "a claim", err, errlen) ||
        jobq_get_name(o, "id", 1, &c->id, err, errlen) ||
        jobq_get_name(o, "worker", 1, &c->worker, err, errlen) ||
        jobq_get_name(o, "session", 1, &c->session, err, errlen) ||
        jobq_get_int(o, "wait_ms", 0, 0, WAIT_MAX_MS, &c->wait_ms, err, errlen))
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

static int apply_progress(struct jobq *q, const cJSON *root, const char *family, char *err, size_t errlen)
{
    static const char *const names[] = {"op", "reply_to", "job", "attempt", "progress", NULL};
    long long job = 0, attempt = 0;
    const cJSON *v;
    struct jobs_info in;
    char *text;
    int rc;

    if (jobq_fields_only(root, names, "a progress", err, errlen) ||
        jobq_get_int(root, "job", 1, 1, (UTIL_EXACT_INT - 1), &job, err, errlen) ||
        jobq_get_int(root, "attempt", 1, 1, (UTIL_EXACT_INT - 1), &attempt, err, errlen))
        return DB_REJECT;
    if (!(v = cJSON_GetObjectItemCaseSensitive(root, "progress")))
        return util_fail(err, errlen, "\"progress\" is required") ? DB_REJECT : DB_REJECT;
    if (!(text = json_text(v)))
        jobq_oom();
    if (strlen(text) > ERROR_MAX) {
        cJSON_free(text);
        return util_fail(err, errlen, "\"progress\" is longer than %d bytes as JSON", ERROR_MAX) ? DB_REJECT : DB_REJECT;
    }
    rc = jobs_info(q->jobs, job, &in, err, errlen);
    if (rc == DB_OK && family && !jobq_in_family(family, in.queue))
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
        jobq_oom();
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
        if (delay && jobq_get_int(root, "delay_ms", 0, 0, REQ_DELAY_MAX, &r.delay_ms, err, errlen))
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
        jobq_extra_set(o, &b);
        jb_free(&b);
        o->changes = changes;
    }
out:
    free(r.ops);
    return rc;
}

/* An op on PREFIX/jobs/QUEUE, QUEUE the family of the queues it may name. */
static int apply_queue_op(struct jobq *q, struct msg *m, const cJSON *root, const char *op, const char *family,
                          struct outcome *o, char *err, size_t errlen)
{
    int rc = DB_REJECT;

    if (!strcmp(op, "claim")) {
        struct claim c;
        o->kind = OUT_DROPPED;
        if (jobq_read_claim(q, root, 1, family, o->reply_to, &c, err, errlen))
            return DB_REJECT;
        rc = jobq_claim(q, &c, err, errlen);
        if (rc == DB_OK) {
            free(o->reply_to);
            o->reply_to = NULL;    /* the grant (or empty) is the answer */
        }
    } else if (!strcmp(op, "done") || !strcmp(op, "fail") || !strcmp(op, "release")) {
        rc = jobq_apply_end(q, m, root, op, family, o, err, errlen);
    } else if (!strcmp(op, "progress")) {
        rc = apply_progress(q, root, family, err, errlen);
        o->kind = OUT_DROPPED;
    } else if (!strcmp(op, "enqueue")) {
        rc = apply_enqueue_msg(q, m, root, family, o, err, errlen);
    } else {
        util_fail(err, errlen, "unknown op \"%.100s\" on PREFIX/jobs/QUEUE (use claim, done, fail, release, "
                  "progress or enqueue)", op);
    }
    return rc;
}

int jobq_apply(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen)
{
    const char *rest = m->topic + q->t_jobs_len, *op;
    cJSON *root = NULL;
    const cJSON *id, *rt, *opv;
    char rterr[512] = "";
    int rc = DB_REJECT;

    o->kind = 0;
    if (m->sched_id)
        return jobq_apply_admin(q, m, o, err, errlen);
    if (json_read(&root, &q->nums, q->lim.max_payload, q->lim.max_depth, m->payload, m->len, err, errlen)) {
        /* Still answer where the message asks, when that can be read. */
        if (root && (rt = cJSON_GetObjectItemCaseSensitive(root, "reply_to")) && cJSON_IsString(rt) &&
            !req_reply_check(rt->valuestring, q->prefix, rterr, sizeof rterr))
            o->reply_to = jobq_xdup(rt->valuestring);
        if (root && (id = cJSON_GetObjectItemCaseSensitive(root, "id")) && cJSON_IsString(id) &&
            req_id_ok(id->valuestring))
            o->id = jobq_xdup(id->valuestring);
        goto out;
    }
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && (!cJSON_IsString(id) || !req_id_ok(id->valuestring))) {
        util_fail(err, errlen, "\"id\" must be a string of 1 to 128 printable ASCII characters");
        id = NULL;
    } else if (id) {
        o->id = jobq_xdup(id->valuestring);
    }
    rt = cJSON_GetObjectItemCaseSensitive(root, "reply_to");
    if (rt && !cJSON_IsString(rt))
        util_fail(rterr, sizeof rterr, "\"reply_to\" must be a string (a topic name), not %s", json_type_name(rt));
    else if (rt && !req_reply_check(rt->valuestring, q->prefix, rterr, sizeof rterr))
        o->reply_to = jobq_xdup(rt->valuestring);
    else if (rt && is_claim(root) && !req_reply_check(rt->valuestring, NULL, rterr, sizeof rterr))
        /* A well-formed topic of the writer's own: a claim's rule, not the receipts' hint. */
        claim_reply_rule(q, rterr, sizeof rterr);
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
        rc = jobq_apply_worker(q, root, op, o, err, errlen);
        goto out;
    }
    if (strchr(rest, '/') || req_queue_check(rest, err, errlen)) {
        if (strchr(rest, '/'))
            util_fail(err, errlen, "topic \"%.200s\" is not %sQUEUE or %sworker", m->topic, q->t_jobs, q->t_jobs);
        goto out;
    }
    rc = apply_queue_op(q, m, root, op, rest, o, err, errlen);
out:
    cJSON_Delete(root);
    return rc;
}
