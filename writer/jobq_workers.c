/* jobq_workers.c: the worker sessions online (workers.h) wired into the job queue: a
 * hello read and listed, a beat or a claim renewing its session, bye and gone ending
 * it, silent sessions dropped between batches (jobq_tick), the count in the status and
 * the list for the `workers` command (see jobq.h). In memory only: no disk write. */
#include "jobq_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "util.h"

#define HOST_MAX 255                   /* a host name (RFC 1035's bound on a full name) */
#define SLOTS_MAX 1024                 /* a hello's "jobs" */

static void table(struct jobq *q)
{
    if (!q->workers) {
        if (!(q->workers = workers_new(WORKERS_MAX)))
            jobq_oom();
        q->workers_next = LLONG_MAX;
    }
}

static int host_ok(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return n >= 1 && n <= HOST_MAX;
}

/* A hello's "queues": 1 to MAX_QUEUES queue names. */
static int read_queues(const cJSON *qs, const char **queues, int *nq, char *err, size_t errlen)
{
    const cJSON *v;

    *nq = 0;
    if (!qs)
        return 0;
    if (!cJSON_IsArray(qs) || !qs->child)
        return util_fail(err, errlen, "\"queues\" must be a non-empty array of queue names");
    for (v = qs->child; v; v = v->next) {
        if (*nq == MAX_QUEUES)
            return util_fail(err, errlen, "\"queues\" names more than %d queues", MAX_QUEUES);
        if (!cJSON_IsString(v))
            return util_fail(err, errlen, "\"queues\" must be a non-empty array of queue names");
        if (req_queue_check(v->valuestring, err, errlen))
            return -1;
        queues[(*nq)++] = v->valuestring;
    }
    return 0;
}

int jobq_worker_hello(struct jobq *q, const cJSON *root, const char *worker, const char *session, char *err,
                      size_t errlen)
{
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(root, "host");
    const char *queues[MAX_QUEUES];
    struct workers_seen s;
    long long slots = -1, now = util_now_ms();

    memset(&s, 0, sizeof s);
    if (host && (!cJSON_IsString(host) || !host_ok(host->valuestring)))
        return util_fail(err, errlen, "\"host\" must be a string of 1 to %d printable ASCII characters, no "
                         "blank", HOST_MAX);
    if (read_queues(cJSON_GetObjectItemCaseSensitive(root, "queues"), queues, &s.nq, err, errlen) ||
        jobq_get_int(root, "jobs", 0, 1, SLOTS_MAX, &slots, err, errlen))
        return -1;
    if (jobq_session_ended(q, session))
        return util_fail(err, errlen, "session \"%s\" has ended (its gone or bye was seen): a new connection "
                         "needs a new session", session);
    table(q);
    s.worker = worker;
    s.session = session;
    s.host = host ? host->valuestring : NULL;
    s.queues = queues;
    s.slots = (int)slots;
    if (workers_hello(q->workers, &s, now, util_wall_ms(), q->base.lease_ms, err, errlen))
        return -1;
    if (now + q->base.lease_ms < q->workers_next)
        q->workers_next = now + q->base.lease_ms;
    return 0;
}

void jobq_worker_heard(struct jobq *q, const char *worker, const char *session, const char *const *queues,
                       int nq, long long live_ms)
{
    struct workers_seen s;
    long long now = util_now_ms();

    table(q);
    memset(&s, 0, sizeof s);
    s.worker = worker;
    s.session = session;
    s.queues = queues;
    s.nq = nq;
    s.slots = -1;
    workers_heard(q->workers, &s, now, util_wall_ms(), live_ms);
    if (now + live_ms < q->workers_next)
        q->workers_next = now + live_ms;
}

void jobq_worker_end(struct jobq *q, const char *session)
{
    if (q->workers)
        workers_end(q->workers, session);
}

void jobq_workers_tick(struct jobq *q, long long now)
{
    size_t n;

    if (!q->workers || now < q->workers_next)
        return;
    if ((n = workers_expire(q->workers, now))) {
        q->workers_dirty = 1;
        log_info("jobs: %zu worker session%s silent for longer than the lease: no longer listed", n,
                 n == 1 ? "" : "s");
    }
    q->workers_next = workers_next(q->workers);
}

long long jobq_workers_next(const struct jobq *q)
{
    return q->workers ? q->workers_next : LLONG_MAX;
}

size_t jobq_workers_count(const struct jobq *q)
{
    return q->workers ? workers_count(q->workers) : 0;
}

int jobq_status_changed(const struct jobq *q)
{
    return q->workers_dirty;
}

static int leases_of(void *arg, const char *session)
{
    const struct jobq *q = arg;
    size_t i;
    int n = 0;

    for (i = 0; i < q->nlease; i++)
        n += q->leases[i].session && !q->leases[i].ending && !strcmp(q->leases[i].session, session);
    return n;
}

void jobq_workers_answer(struct jobq *q, int limit, struct jbuf *b)
{
    admin_ok(b, "workers");
    jb_putc(b, ',');
    if (q->workers) {
        workers_json(q->workers, b, limit, util_now_ms(), leases_of, q);
    } else {
        jb_puts(b, "\"count\":0,\"more\":false,\"workers\":[]");
    }
    admin_end(b);
}
