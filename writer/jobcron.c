/* jobcron.c: recurring jobs (see jobcron.h): the `job-cron` line's parser, and the
 * schedules at run time, each tick enqueued in the batch's transaction together with
 * the line's row in mosqlite_job_cron. */
#include "jobcron.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "util.h"

#define PAYLOAD_MAX 65536
#define TOKEN_MAX   1024

/* ---- the line ----------------------------------------------------------------------- */

static const char *blank_skip(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The next blank-separated word into out: its length, 0 at the end, -1 when longer
 * than cap - 1. */
static int word(const char **p, char *out, size_t cap)
{
    const char *s = blank_skip(*p), *e = s;

    while (*e && *e != ' ' && *e != '\t')
        e++;
    *p = e;
    if ((size_t)(e - s) >= cap)
        return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return (int)(e - s);
}

static int name_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* The schedule: a macro or five fields. */
static int read_schedule(const char **p, struct jobcron_spec *s, char *err, size_t errlen)
{
    static const char *const what[5] = {"MIN", "HOUR", "DOM", "MON", "DOW"};
    char f[5][TOKEN_MAX];
    const char *fields[5];
    int i, n;

    if ((n = word(p, f[0], sizeof f[0])) == 0)
        return util_fail(err, errlen, "needs a schedule (MIN HOUR DOM MON DOW, or a macro such as @daily), "
                         "then QUEUE and PAYLOAD");
    if (n > 0 && f[0][0] == '@')
        return cron_parse_macro(&s->cron, f[0], err, errlen);
    for (i = 0; i < 5; i++) {
        if (i && (n = word(p, f[i], sizeof f[i])) == 0)
            return util_fail(err, errlen, "the schedule needs five fields (MIN HOUR DOM MON DOW) or a macro "
                             "such as @daily: %s is missing", what[i]);
        if (n < 0)
            return util_fail(err, errlen, "%s: longer than %d bytes", what[i], TOKEN_MAX - 1);
        fields[i] = f[i];
    }
    return cron_parse(&s->cron, fields, err, errlen);
}

/* PAYLOAD: one JSON value from *p, read strictly, as {"payload": VALUE} into s->root. */
static int read_payload(const char **p, struct jobcron_spec *s, char *err, size_t errlen)
{
    const char *start = blank_skip(*p), *end = NULL;
    struct json_nums nums = {0};
    char why[512], *text;
    cJSON *probe;
    size_t len;
    int rc;

    if (!*start)
        return util_fail(err, errlen, "needs a PAYLOAD after the queue: one JSON value, e.g. "
                         "{\"branch\":\"main\"} or null");
    probe = cJSON_ParseWithOpts(start, &end, 0);
    cJSON_Delete(probe);
    if (!probe || !end)
        return util_fail(err, errlen, "PAYLOAD is not one JSON value: \"%.60s\"", start);
    if (*end && *end != ' ' && *end != '\t')
        return util_fail(err, errlen, "PAYLOAD: a blank must follow the JSON value, not \"%.40s\"", end);
    len = (size_t)(end - start);
    if (len > PAYLOAD_MAX)
        return util_fail(err, errlen, "PAYLOAD is longer than %d bytes", PAYLOAD_MAX);
    if (!(text = malloc(len + 14)))
        return util_fail(err, errlen, "out of memory");
    memcpy(text, "{\"payload\":", 11);
    memcpy(text + 11, start, len);
    memcpy(text + 11 + len, "}", 2);
    rc = json_read(&s->root, &nums, len + 13, 32, text, len + 12, why, sizeof why);
    free(text);
    json_nums_free(&nums);
    if (rc)
        return util_fail(err, errlen, "PAYLOAD: %s", why);
    *p = end;
    return 0;
}

static int catch_read(const char *v, struct jobcron_spec *s, char *err, size_t errlen)
{
    s->catch_max = JOBCRON_ALL_MAX;
    if (!strcmp(v, "skip"))
        s->catch_up = JOBCRON_SKIP;
    else if (!strcmp(v, "one"))
        s->catch_up = JOBCRON_ONE;
    else if (!strcmp(v, "all"))
        s->catch_up = JOBCRON_ALL;
    else if (!strncmp(v, "all:", 4) && !cfg_parse_int(v + 4, 1, JOBCRON_ALL_MAX, &s->catch_max))
        s->catch_up = JOBCRON_ALL;
    else
        return util_fail(err, errlen, "catch_up: \"%.60s\" is not skip, one, all or all:N (N 1 to %d)", v,
                         JOBCRON_ALL_MAX);
    return 0;
}

/* One KEY=VALUE option: catch_up, or an enqueue option put in s->root. */
static int read_option(const char *opt, int *seen_catch, struct jobcron_spec *s, char *err, size_t errlen)
{
    static const char *const text_keys[] = {"unique_key", "on_duplicate", "concurrency_key", NULL};
    static const char *const int_keys[] = {"priority", "concurrency", "max_attempts", "max_lost", "backoff_ms",
                                           "backoff_cap_ms", "jitter_pct", "lease_ms", "timeout_ms", NULL};
    const char *eq = strchr(opt, '=');
    char key[64];
    long long n;
    cJSON *v;
    int i, k;

    if (!eq || eq == opt || (size_t)(eq - opt) >= sizeof key)
        return util_fail(err, errlen, "option \"%.60s\" is not KEY=VALUE", opt);
    memcpy(key, opt, (size_t)(eq - opt));
    key[eq - opt] = '\0';
    if (!strcmp(key, "catch_up")) {
        if ((*seen_catch)++)
            return util_fail(err, errlen, "option catch_up is given twice");
        return catch_read(eq + 1, s, err, errlen);
    }
    for (i = 0; text_keys[i] && strcmp(text_keys[i], key); i++)
        ;
    for (k = 0; int_keys[k] && strcmp(int_keys[k], key); k++)
        ;
    if (!text_keys[i] && !int_keys[k]) {
        if (!strcmp(key, "follow"))
            return util_fail(err, errlen, "follow: a recurring job has no enqueuer to follow it (its changes "
                             "are on PREFIX/jobs/events/QUEUE)");
        return util_fail(err, errlen, "unknown option \"%.60s\" (catch_up, priority, unique_key, on_duplicate, "
                         "concurrency_key, concurrency, max_attempts, max_lost, backoff_ms, backoff_cap_ms, "
                         "jitter_pct, lease_ms or timeout_ms)", key);
    }
    if (cJSON_GetObjectItemCaseSensitive(s->root, key))
        return util_fail(err, errlen, "option %s is given twice", key);
    if (!strcmp(key, "on_duplicate") && !strcmp(eq + 1, "reject"))
        return util_fail(err, errlen, "on_duplicate: ignore or replace (a tick is never refused)");
    if (int_keys[k] && !cfg_parse_int(eq + 1, -(UTIL_EXACT_INT - 1), (UTIL_EXACT_INT - 1), &n))
        v = cJSON_CreateNumber((double)n);
    else
        v = cJSON_CreateString(eq + 1);
    if (!v || !cJSON_AddItemToObject(s->root, key, v)) {
        cJSON_Delete(v);
        return util_fail(err, errlen, "out of memory");
    }
    return 0;
}

static int parse_rest(const char *p, struct jobcron_spec *s, char *err, size_t errlen)
{
    char queue[TOKEN_MAX], opt[TOKEN_MAX];
    int n, seen_catch = 0;
    cJSON *q;

    if (read_schedule(&p, s, err, errlen))
        return -1;
    if ((n = word(&p, queue, sizeof queue)) <= 0)
        return util_fail(err, errlen, n ? "QUEUE is too long" : "needs QUEUE and PAYLOAD after the schedule");
    if (req_queue_check(queue, err, errlen) || read_payload(&p, s, err, errlen))
        return -1;
    if (!(q = cJSON_CreateString(queue)) || !cJSON_AddItemToObject(s->root, "queue", q)) {
        cJSON_Delete(q);
        return util_fail(err, errlen, "out of memory");
    }
    while ((n = word(&p, opt, sizeof opt)) != 0) {
        if (n < 0)
            return util_fail(err, errlen, "an option is longer than %d bytes", TOKEN_MAX - 1);
        if (read_option(opt, &seen_catch, s, err, errlen))
            return -1;
    }
    return req_enqueue_read(s->root, 0, 0, NULL, &s->enq, err, errlen);
}

int jobcron_parse(const char *line, struct jobcron_spec *s, char *err, size_t errlen)
{
    const char *p = line;
    char why[512];
    int n;

    memset(s, 0, sizeof *s);
    s->catch_up = JOBCRON_ONE;
    s->catch_max = 1;
    n = word(&p, s->name, sizeof s->name);
    if (n == 0)
        return util_fail(err, errlen, "job-cron needs NAME MIN HOUR DOM MON DOW QUEUE PAYLOAD [KEY=VALUE...]");
    if (n < 0 || !name_ok(s->name))
        return util_fail(err, errlen, "job-cron: the NAME must be 1 to %d printable ASCII characters without "
                         "blanks", JOBCRON_NAME_MAX);
    if (parse_rest(p, s, why, sizeof why)) {
        jobcron_spec_free(s);
        return util_fail(err, errlen, "job-cron %s: %s", s->name, why);
    }
    return 0;
}

void jobcron_spec_free(struct jobcron_spec *s)
{
    cJSON_Delete(s->root);
    s->root = NULL;
}

int jobcron_check(const struct cfg_list *lines, char *err, size_t errlen)
{
    struct jobcron_spec s, t;
    char why[768];
    size_t i, k;

    for (i = 0; i < lines->n; i++) {
        const char *at = cfg_list_origin(lines, i);
        if (jobcron_parse(lines->items[i], &s, why, sizeof why))
            return util_fail(err, errlen, "%s%s%s", at ? at : "", at ? ": " : "", why);
        jobcron_spec_free(&s);
        for (k = 0; k < i; k++) {
            const char *prev = cfg_list_origin(lines, k);
            if (jobcron_parse(lines->items[k], &t, why, sizeof why))
                continue;
            jobcron_spec_free(&t);
            if (!strcmp(s.name, t.name))
                return util_fail(err, errlen, "%s%sjob-cron %s: the name is used by the line at %s already",
                                 at ? at : "", at ? ": " : "", s.name, prev ? prev : "the command line");
        }
    }
    return 0;
}

void jobcron_fill(struct jobs_new *n, const struct req_enqueue *e)
{
    n->queue = e->queue;
    n->priority = e->priority;
    n->unique_key = e->unique_key;
    n->on_duplicate = (enum jobs_dup)e->on_duplicate;
    n->conc_key = e->conc_key;
    n->conc_limit = e->conc_limit;
    if (e->max_attempts >= 0) n->max_attempts = e->max_attempts;
    if (e->max_lost >= 0) n->max_lost = e->max_lost;
    if (e->backoff_ms >= 0) n->backoff_ms = e->backoff_ms;
    if (e->backoff_cap_ms >= 0) n->backoff_cap_ms = e->backoff_cap_ms;
    if (e->jitter_pct >= 0) n->jitter_pct = e->jitter_pct;
    if (e->lease_ms >= 0) n->lease_ms = e->lease_ms;
    if (e->timeout_ms >= 0) n->timeout_ms = e->timeout_ms;
    n->follow = e->follow;
}

/* ---- the schedules at run time -------------------------------------------------------- */

struct entry {
    struct jobcron_spec s;
    long long next_ms;            /* the next tick to enqueue (LLONG_MAX: none left) */
    long long last_ms;            /* the last tick enqueued, LLONG_MIN for none */
    int dirty;                    /* the row is to be written (new line, changed schedule) */
    int pend;                     /* the open batch moved it: pend_next, pend_last */
    long long pend_next, pend_last;
};

struct jobcron {
    struct jobs *jobs;
    struct entry *e;
    size_t n;
    int sync, sync_pend;          /* rows of lines no longer in the config: to delete */
};

static long long next_after(const struct cron *c, long long t)
{
    long long next;

    return cron_next(c, t, &next) ? LLONG_MAX : next;
}

struct jobcron *jobcron_new(const struct cfg_list *lines, struct jobs *jobs, long long now_ms, char *err,
                            size_t errlen)
{
    struct jobcron *c = calloc(1, sizeof *c);
    size_t i;

    if (!c || (lines->n && !(c->e = calloc(lines->n, sizeof *c->e)))) {
        free(c);
        return util_fail(err, errlen, "out of memory"), NULL;
    }
    c->jobs = jobs;
    c->sync = 1;
    for (i = 0; i < lines->n; i++, c->n++) {
        struct entry *e = &c->e[i];
        long long next, last;
        int found;
        if (jobcron_parse(lines->items[i], &e->s, err, errlen) ||
            jobs_cron_get(jobs, e->s.name, &found, &next, &last, err, errlen) != DB_OK) {
            jobcron_free(c);
            return NULL;
        }
        e->last_ms = last;
        if (found && next <= now_ms) {
            e->next_ms = next;    /* due: caught up in the first batch */
        } else {
            /* Not due, or new: the schedule's next tick (it may have changed), never one
             * at or before the last tick enqueued (a clock set back). */
            e->next_ms = next_after(&e->s.cron, last != LLONG_MIN && last > now_ms ? last : now_ms);
            e->dirty = !found || next != e->next_ms;
        }
    }
    return c;
}

void jobcron_free(struct jobcron *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < c->n; i++)
        jobcron_spec_free(&c->e[i].s);
    free(c->e);
    free(c);
}

size_t jobcron_count(const struct jobcron *c)
{
    return c ? c->n : 0;
}

long long jobcron_next_ms(const struct jobcron *c)
{
    long long m = LLONG_MAX;
    size_t i;

    if (!c)
        return m;
    if (c->sync)
        return LLONG_MIN;
    for (i = 0; i < c->n; i++) {
        if (c->e[i].dirty)
            return LLONG_MIN;
        if (c->e[i].next_ms < m)
            m = c->e[i].next_ms;
    }
    return m;
}

struct sync_ctx {
    struct jobcron *c;
    char (*gone)[JOBCRON_NAME_MAX + 1];
    size_t n, cap;
    int oom;
};

static int sync_one(void *arg, const char *name)
{
    struct sync_ctx *x = arg;
    size_t i;

    for (i = 0; i < x->c->n; i++)
        if (!strcmp(x->c->e[i].s.name, name))
            return 0;
    if (x->n == x->cap) {
        void *p = realloc(x->gone, (x->cap = x->cap ? 2 * x->cap : 8) * sizeof *x->gone);
        if (!p)
            return x->oom = 1;
        x->gone = p;
    }
    snprintf(x->gone[x->n++], sizeof *x->gone, "%s", name);
    return 0;
}

/* The rows of lines no longer in the config are deleted. */
static int sync_rows(struct jobcron *c, char *err, size_t errlen)
{
    struct sync_ctx x = {c, NULL, 0, 0, 0};
    int rc;
    size_t i;

    rc = jobs_cron_names(c->jobs, sync_one, &x, err, errlen);
    if (rc == DB_OK && x.oom)
        rc = util_fail(err, errlen, "out of memory") ? DB_FAULT : DB_FAULT;
    for (i = 0; rc == DB_OK && i < x.n; i++) {
        log_info("job-cron %s: no longer in the config: its row in mosqlite_job_cron is deleted", x.gone[i]);
        rc = jobs_cron_delete(c->jobs, x.gone[i], err, errlen);
    }
    free(x.gone);
    c->sync_pend = rc == DB_OK;
    return rc;
}

/* Enqueue the job of tick t. DB_OK (also when a live job holds its unique key, or the
 * job is refused: logged) or DB_FAULT. */
static int enqueue_tick(struct entry *e, struct jobs *jobs, const struct jobs_new *base, long long t,
                        long long now_ms, void (*on_replaced)(void *arg, long long job), void *arg,
                        char *err, size_t errlen)
{
    char at[UTIL_TIME_LEN], id[JOBCRON_NAME_MAX + UTIL_TIME_LEN + 8], why[512];
    struct jobs_new n = *base;
    struct jobs_enq out;
    char *payload;
    int rc;

    util_time_format(t, at);
    snprintf(id, sizeof id, "cron:%s@%s", e->s.name, at);
    jobcron_fill(&n, &e->s.enq);
    if (!(payload = json_text(e->s.enq.payload)))
        return util_fail(err, errlen, "out of memory") ? DB_FAULT : DB_FAULT;
    n.payload = payload;
    n.enq_id = id;
    if (!n.unique_key) {
        n.unique_key = id;
        n.on_duplicate = JOBS_DUP_IGNORE;
    }
    rc = jobs_enqueue(jobs, &n, now_ms, &out, why, sizeof why);
    free(payload);
    if (rc == DB_FAULT)
        return util_fail(err, errlen, "%s", why) ? DB_FAULT : DB_FAULT;
    if (rc == DB_OK)
        log_info("job-cron %s: tick %s: job %lld, %s", e->s.name, at, out.job, jobs_state_name(out.state));
    else if (rc == DB_DUP)
        log_info("job-cron %s: tick %s: no new job, job %lld (%s) holds unique key \"%s\"", e->s.name, at,
                 out.job, jobs_state_name(out.state), n.unique_key);
    else
        log_warn("job-cron %s: tick %s: no job: %s", e->s.name, at, why);
    if (rc == DB_OK && out.replaced && out.replaced_state == JOBS_RUNNING && on_replaced)
        on_replaced(arg, out.replaced);
    if (rc == DB_OK)
        e->pend_last = t;
    return DB_OK;
}

/* The ticks of e from its next tick to now, per its catch-up. DB_OK / DB_FAULT. */
static int catch_up(struct entry *e, struct jobs *jobs, const struct jobs_new *base, long long now_ms,
                    void (*on_replaced)(void *arg, long long job), void *arg, int *enqueued, char *err,
                    size_t errlen)
{
    const struct cron *cr = &e->s.cron;
    long long latest, to = now_ms, first = 0, t, take, missed, total;
    int on_time, rc;

    on_time = !cron_latest(cr, now_ms, &latest) && latest >= e->next_ms && now_ms - latest < JOBCRON_LATE_MS;
    if (on_time)
        to = latest - 1;
    take = e->s.catch_up == JOBCRON_SKIP ? 0 : e->s.catch_up == JOBCRON_ONE ? 1 : e->s.catch_max;
    total = cron_missed(cr, e->next_ms - 1, to, JOBCRON_ALL_MAX + 1, &first);
    missed = take ? cron_missed(cr, e->next_ms - 1, to, take, &first) : 0;
    if (total > missed)
        log_info("job-cron %s: %s%lld tick%s missed while the writer was away %s skipped (catch_up=%s)", e->s.name,
                 total > JOBCRON_ALL_MAX ? "more than " : "", total > JOBCRON_ALL_MAX ? (long long)JOBCRON_ALL_MAX
                 : total - missed, total - missed == 1 ? "" : "s", total - missed == 1 ? "is" : "are",
                 e->s.catch_up == JOBCRON_SKIP ? "skip" : e->s.catch_up == JOBCRON_ONE ? "one" : "all");
    for (t = first; missed > 0; missed--) {
        if ((rc = enqueue_tick(e, jobs, base, t, now_ms, on_replaced, arg, err, errlen)) != DB_OK)
            return rc;
        ++*enqueued;
        if (cron_next(cr, t, &t))
            break;
    }
    if (on_time) {
        if ((rc = enqueue_tick(e, jobs, base, latest, now_ms, on_replaced, arg, err, errlen)) != DB_OK)
            return rc;
        ++*enqueued;
    }
    return DB_OK;
}

int jobcron_step(struct jobcron *c, const struct jobs_new *base, long long now_ms,
                 void (*on_replaced)(void *arg, long long job), void *arg, int *enqueued, char *err,
                 size_t errlen)
{
    size_t i;
    int rc;

    *enqueued = 0;
    if (!c)
        return DB_OK;
    c->sync_pend = 0;
    if (c->sync && (rc = sync_rows(c, err, errlen)) != DB_OK)
        return rc;
    for (i = 0; i < c->n; i++) {
        struct entry *e = &c->e[i];
        e->pend = 0;
        if (e->next_ms > now_ms && !e->dirty)
            continue;
        e->pend_last = e->last_ms;
        e->pend_next = e->next_ms;
        if (e->next_ms <= now_ms) {
            if ((rc = catch_up(e, c->jobs, base, now_ms, on_replaced, arg, enqueued, err, errlen)) != DB_OK)
                return rc;
            e->pend_next = next_after(&e->s.cron, now_ms);
        }
        if ((rc = jobs_cron_set(c->jobs, e->s.name, e->pend_next == LLONG_MAX ? CRON_MAX_MS : e->pend_next,
                                e->pend_last, err, errlen)) != DB_OK)
            return rc;
        e->pend = 1;
    }
    return DB_OK;
}

void jobcron_committed(struct jobcron *c)
{
    size_t i;

    if (!c)
        return;
    if (c->sync_pend)
        c->sync = c->sync_pend = 0;
    for (i = 0; i < c->n; i++)
        if (c->e[i].pend) {
            c->e[i].next_ms = c->e[i].pend_next;
            c->e[i].last_ms = c->e[i].pend_last;
            c->e[i].dirty = c->e[i].pend = 0;
        }
}

void jobcron_rolled_back(struct jobcron *c)
{
    size_t i;

    if (!c)
        return;
    c->sync_pend = 0;
    for (i = 0; i < c->n; i++)
        c->e[i].pend = 0;
}
