/* workers.c: the worker sessions online, in memory (see workers.h). */
#include "workers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct wsess {
    char *worker, *session, *host;
    char *queues[WORKERS_QUEUES];
    int nq, slots;
    long long since_wall, seen_wall, seen_mono, deadline;
};

struct workers {
    struct wsess *s;
    size_t n, max;
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

struct workers *workers_new(size_t max)
{
    struct workers *t = calloc(1, sizeof *t);

    if (!t)
        return NULL;
    t->max = max;
    if (!(t->s = calloc(max ? max : 1, sizeof *t->s))) {
        free(t);
        return NULL;
    }
    return t;
}

static void set_queues(struct wsess *w, const char *const *queues, int nq)
{
    int i;

    for (i = 0; i < w->nq; i++)
        free(w->queues[i]);
    w->nq = 0;
    for (i = 0; i < nq && i < WORKERS_QUEUES; i++)
        w->queues[w->nq++] = xdup(queues[i]);
}

static void sess_free(struct wsess *w)
{
    free(w->worker);
    free(w->session);
    free(w->host);
    set_queues(w, NULL, 0);
}

void workers_free(struct workers *t)
{
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->n; i++)
        sess_free(&t->s[i]);
    free(t->s);
    free(t);
}

static struct wsess *find(const struct workers *t, const char *session)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (!strcmp(t->s[i].session, session))
            return &t->s[i];
    return NULL;
}

static void drop_at(struct workers *t, size_t i)
{
    sess_free(&t->s[i]);
    t->s[i] = t->s[--t->n];
}

/* The session's entry, made when there is room (expired ones removed first); NULL when
 * the table is full of live sessions. */
static struct wsess *entry(struct workers *t, const struct workers_seen *s, long long now, long long wall)
{
    struct wsess *w = find(t, s->session);

    if (w)
        return w;
    if (t->n == t->max)
        workers_expire(t, now);
    if (t->n == t->max)
        return NULL;
    w = &t->s[t->n++];
    memset(w, 0, sizeof *w);
    w->session = xdup(s->session);
    w->slots = -1;
    w->since_wall = wall;
    w->deadline = LLONG_MIN;
    return w;
}

static void renew(struct wsess *w, const struct workers_seen *s, long long now, long long wall, long long live_ms)
{
    if (!w->worker || strcmp(w->worker, s->worker)) {
        free(w->worker);
        w->worker = xdup(s->worker);
    }
    w->seen_wall = wall;
    w->seen_mono = now;
    if (now + live_ms > w->deadline)
        w->deadline = now + live_ms;
}

int workers_hello(struct workers *t, const struct workers_seen *s, long long now, long long wall,
                  long long live_ms, char *err, size_t errlen)
{
    struct wsess *w = entry(t, s, now, wall);

    if (!w)
        return util_fail(err, errlen, "the writer lists at most %zu worker sessions and all of them are live: "
                         "hello of session \"%s\" not taken (its claims are served all the same)", t->max,
                         s->session);
    renew(w, s, now, wall, live_ms);
    free(w->host);
    w->host = xdup(s->host);
    set_queues(w, s->queues, s->nq);
    w->slots = s->slots;
    return 0;
}

void workers_heard(struct workers *t, const struct workers_seen *s, long long now, long long wall,
                   long long live_ms)
{
    struct wsess *w = entry(t, s, now, wall);

    if (!w)
        return;
    renew(w, s, now, wall, live_ms);
    if (!w->nq && s->nq)
        set_queues(w, s->queues, s->nq);
}

int workers_end(struct workers *t, const char *session)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (!strcmp(t->s[i].session, session)) {
            drop_at(t, i);
            return 1;
        }
    return 0;
}

size_t workers_expire(struct workers *t, long long now)
{
    size_t i, n = 0;

    for (i = t->n; i-- > 0;)
        if (t->s[i].deadline <= now) {
            drop_at(t, i);
            n++;
        }
    return n;
}

long long workers_next(const struct workers *t)
{
    long long next = LLONG_MAX;
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->s[i].deadline < next)
            next = t->s[i].deadline;
    return next;
}

size_t workers_count(const struct workers *t)
{
    return t->n;
}

int workers_has(const struct workers *t, const char *session)
{
    return find(t, session) != NULL;
}

static int cmp(const void *a, const void *b)
{
    const struct wsess *x = *(const struct wsess *const *)a, *y = *(const struct wsess *const *)b;
    int c = strcmp(x->worker, y->worker);

    return c ? c : strcmp(x->session, y->session);
}

static void one_json(const struct wsess *w, struct jbuf *b, long long now, int running)
{
    char t[UTIL_TIME_LEN];
    int i;

    jb_puts(b, "{\"worker\":");
    jb_cstr(b, w->worker);
    jb_puts(b, ",\"session\":");
    jb_cstr(b, w->session);
    jb_puts(b, ",\"host\":");
    jb_cstr(b, w->host);
    jb_puts(b, ",\"queues\":[");
    for (i = 0; i < w->nq; i++) {
        jb_puts(b, i ? "," : "");
        jb_cstr(b, w->queues[i]);
    }
    jb_puts(b, "],\"slots\":");
    if (w->slots < 0)
        jb_puts(b, "null");
    else
        jb_int(b, w->slots);
    jb_puts(b, ",\"running\":");
    jb_int(b, running);
    util_time_format(w->since_wall, t);
    jb_puts(b, ",\"since\":");
    jb_cstr(b, t);
    util_time_format(w->seen_wall, t);
    jb_puts(b, ",\"last_seen\":");
    jb_cstr(b, t);
    jb_puts(b, ",\"idle_ms\":");
    jb_int(b, now > w->seen_mono ? now - w->seen_mono : 0);
    jb_putc(b, '}');
}

void workers_json(const struct workers *t, struct jbuf *b, int limit, long long now,
                  int (*leases)(void *arg, const char *session), void *arg)
{
    const struct wsess **v;
    size_t i, n = t->n < (size_t)limit ? t->n : (size_t)limit;

    if (!(v = malloc((t->n ? t->n : 1) * sizeof *v)))
        oom();
    for (i = 0; i < t->n; i++)
        v[i] = &t->s[i];
    qsort(v, t->n, sizeof *v, cmp);
    jb_puts(b, "\"count\":");
    jb_int(b, (long long)t->n);
    jb_puts(b, n < t->n ? ",\"more\":true,\"workers\":[" : ",\"more\":false,\"workers\":[");
    for (i = 0; i < n; i++) {
        jb_puts(b, i ? "," : "");
        one_json(v[i], b, now, leases ? leases(arg, v[i]->session) : 0);
    }
    jb_putc(b, ']');
    free(v);
}
