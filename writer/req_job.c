/* req_job.c: the job ops of a request (see req.h): an enqueue's fields (also read by
 * jobq.c for PREFIX/jobs/QUEUE and by jobcron.c for job-cron lines), a queue's name (also
 * checked by admin.c), a cancel_job. Pure: no SQL, no network. */
#include "req.h"

#include <math.h>
#include <string.h>

#include "req_int.h"
#include "util.h"

int req_queue_check(const char *q, char *err, size_t errlen)
{
    const unsigned char *p;
    size_t n = strlen(q);

    if (!n)
        return util_fail(err, errlen, "a job's queue needs a name");
    if (n > REQ_QUEUE_MAX)
        return util_fail(err, errlen, "queue name \"%.40s...\" is longer than %d bytes", q, REQ_QUEUE_MAX);
    for (p = (const unsigned char *)q; *p; p++) {
        if (*p == '/' || *p == '+' || *p == '#')
            return util_fail(err, errlen, "queue name \"%.100s\" cannot be one MQTT topic level (it has "
                             "\"%c\")", q, *p);
        if (*p < 0x20 || *p == 0x7f)
            return util_fail(err, errlen, "queue name \"%.100s\" cannot be one MQTT topic level (it has "
                             "byte 0x%02x)", q, *p);
    }
    if (!strcmp(q, "worker") || !strcmp(q, "to") || !strcmp(q, "events"))
        return util_fail(err, errlen, "queue name \"%s\" is reserved (PREFIX/jobs/%s is the writer's)", q, q);
    return 0;
}

/* A whole number in [lo, hi] into *out; absent: *out untouched. */
static int enq_int(const cJSON *o, const char *key, long long lo, long long hi, long long *out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d;

    if (!v)
        return 0;
    d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || (v->type & JSON_REAL) || d != floor(d) || d < (double)lo || d > (double)hi)
        return util_fail(err, errlen, "\"%s\" must be an integer from %lld to %lld", key, lo, hi);
    *out = (long long)d;
    return 0;
}

static int enq_key(const cJSON *o, const char *key, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !*v->valuestring || strlen(v->valuestring) > 256)
        return util_fail(err, errlen, "\"%s\" must be a string of 1 to 256 bytes", key);
    *out = v->valuestring;
    return 0;
}

int req_enqueue_read(const cJSON *o, int with_op, int envelope, const char *default_queue,
                     struct req_enqueue *e, char *err, size_t errlen)
{
    static const char *const fields[] = {
        "op", "queue", "payload", "priority", "unique_key", "on_duplicate", "concurrency_key",
        "concurrency", "max_attempts", "max_lost", "backoff_ms", "backoff_cap_ms", "jitter_pct",
        "lease_ms", "timeout_ms", "follow", NULL};
    static const char *const env[] = {"id", "reply_to", "at", "delay_ms", "after", NULL};
    const cJSON *c, *v;
    int i;

    memset(e, 0, sizeof *e);
    e->obj = o;
    e->max_attempts = e->max_lost = e->backoff_ms = e->backoff_cap_ms = e->jitter_pct = -1;
    e->lease_ms = e->timeout_ms = -1;
    for (c = o->child; c; c = c->next) {
        for (i = with_op ? 0 : 1; fields[i] && strcmp(fields[i], c->string); i++)
            ;
        if (fields[i])
            continue;
        for (i = 0; envelope && env[i] && strcmp(env[i], c->string); i++)
            ;
        if (!envelope || !env[i] || (envelope < 2 && !strcmp(env[i], "after")))
            return util_fail(err, errlen, "unknown field \"%.100s\" in an enqueue", c->string);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "queue");
    if (!v && !default_queue)
        return util_fail(err, errlen, "enqueue needs \"queue\"");
    if (v && !cJSON_IsString(v))
        return util_fail(err, errlen, "\"queue\" must be a string");
    e->queue = v ? v->valuestring : default_queue;
    if (req_queue_check(e->queue, err, errlen))
        return -1;
    if (!(e->payload = cJSON_GetObjectItemCaseSensitive(o, "payload")))
        return util_fail(err, errlen, "enqueue needs \"payload\" (any JSON value; the worker gets it as is)");
    if (enq_int(o, "priority", -1000000000, 1000000000, &e->priority, err, errlen) ||
        enq_key(o, "unique_key", &e->unique_key, err, errlen) ||
        enq_key(o, "concurrency_key", &e->conc_key, err, errlen) ||
        enq_int(o, "concurrency", 1, 1000000, &e->conc_limit, err, errlen) ||
        enq_int(o, "max_attempts", 1, 1000000, &e->max_attempts, err, errlen) ||
        enq_int(o, "max_lost", 1, 1000000, &e->max_lost, err, errlen) ||
        enq_int(o, "backoff_ms", 0, 86400000LL * 365, &e->backoff_ms, err, errlen) ||
        enq_int(o, "backoff_cap_ms", 0, 86400000LL * 365, &e->backoff_cap_ms, err, errlen) ||
        enq_int(o, "jitter_pct", 0, 100, &e->jitter_pct, err, errlen) ||
        enq_int(o, "lease_ms", 1000, 86400000, &e->lease_ms, err, errlen) ||
        enq_int(o, "timeout_ms", 0, 86400000LL * 365, &e->timeout_ms, err, errlen))
        return -1;
    if (!e->conc_key != !e->conc_limit)
        return util_fail(err, errlen, "\"concurrency_key\" needs \"concurrency\" (and the other way round)");
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "on_duplicate"))) {
        static const char *const pol[] = {"ignore", "reject", "replace", NULL};
        for (i = 0; cJSON_IsString(v) && pol[i] && strcmp(pol[i], v->valuestring); i++)
            ;
        if (!cJSON_IsString(v) || !pol[i])
            return util_fail(err, errlen, "\"on_duplicate\" must be ignore, reject or replace");
        if (!e->unique_key)
            return util_fail(err, errlen, "\"on_duplicate\" needs \"unique_key\"");
        e->on_duplicate = i;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "follow"))) {
        if (!cJSON_IsBool(v))
            return util_fail(err, errlen, "\"follow\" must be true or false");
        e->follow = cJSON_IsTrue(v);
    }
    return 0;
}

/* {"op": "cancel_job", "job": N} (with the envelope's fields when it is the request). */
int req_cancel_job_read(const cJSON *o, int envelope, long long *job, char *err, size_t errlen)
{
    static const char *const fields[] = {"op", "job", "id", "reply_to", "at", "delay_ms", NULL};
    const cJSON *c;
    int i, nf = envelope ? 6 : 2;

    for (c = o->child; c; c = c->next) {
        for (i = 0; i < nf && strcmp(fields[i], c->string); i++)
            ;
        if (i == nf)
            return util_fail(err, errlen, "unknown field \"%.100s\" in a cancel_job (it takes \"job\")",
                             c->string);
    }
    *job = 0;
    if (!cJSON_GetObjectItemCaseSensitive(o, "job"))
        return util_fail(err, errlen, "cancel_job needs \"job\": the job's id");
    return enq_int(o, "job", 1, (UTIL_EXACT_INT - 1), job, err, errlen);
}
