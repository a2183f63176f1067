/* watch.c: the leader key watched from a replica (see watch.h). The thread does all the
 * talking to etcd (blocking libcurl calls, each bounded), so that the replica's loop and
 * its acknowledgements never wait for etcd; the loop only reads a flag. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "log.h"
#include "util.h"
#include "watch.h"

#define TRY_MIN_MS 300          /* one try at one endpoint: ttl/4 within these */
#define TRY_MAX_MS 2000

struct watch {
    char *key, *counter, *sync_key, *id;
    long long ttl_ms;
    struct etcd *etcd;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, promote;           /* under mu */
    long long epoch;             /* under mu: KEY/sync's epoch when promote */
    char said[600];              /* the thread's: the last reason logged */
    char err[300];
};

static long long try_ms(const struct watch *w)
{
    long long t = w->ttl_ms / 4;

    return t < TRY_MIN_MS ? TRY_MIN_MS : t > TRY_MAX_MS ? TRY_MAX_MS : t;
}

/* Log a line once, and again only when it changes. */
static void say(struct watch *w, int warn, const char *line)
{
    if (!strcmp(line, w->said))
        return;
    snprintf(w->said, sizeof w->said, "%s", line);
    if (warn)
        log_warn("etcd: %s", line);
    else
        log_info("etcd: %s", line);
}

static void printable(char *dst, size_t cap, const char *src, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len && n + 1 < cap; i++)
        dst[n++] = (unsigned char)src[i] >= ' ' && (unsigned char)src[i] < 127 ? src[i] : '?';
    dst[n] = '\0';
}

/* Read key: 1 found (*r to free), 0 absent, -1 etcd failed (said). */
static int get(struct watch *w, const char *key, struct etcd_resp *r)
{
    char line[600], *body = etcd_body_range(key);
    int oom = !body, rc = body ? etcd_call(w->etcd, "/v3/kv/range", body, ETCD_RANGE, util_now_ms() + try_ms(w) * 3,
                              (long)try_ms(w), r, w->err, sizeof w->err) : -1;

    if (oom)
        memset(r, 0, sizeof *r);
    free(body);
    if (!rc && r->code)
        snprintf(w->err, sizeof w->err, "%s", r->message);
    if (rc || r->code) {
        if (!rc)
            etcd_resp_free(r);
        snprintf(line, sizeof line, "cannot read %s: %s (trying again)", key, oom ? "out of memory" : w->err);
        say(w, 1, line);
        return -1;
    }
    if (!r->has_kv)
        etcd_resp_free(r);
    return r->has_kv;
}

/* The leader key is gone: may this replica promote? 1 yes, 0 no (said why), -1 etcd failed. */
static int may_promote(struct watch *w, long long *epoch_out)
{
    struct etcd_resp r;
    struct etcd_sync s;
    char line[600], v[200], why[256];
    long long latest = 0;
    int rc;

    if ((rc = get(w, w->counter, &r)) < 0)
        return -1;
    if (rc) {
        char *end;
        errno = 0;
        latest = strtoll(r.kv.value, &end, 10);
        if (errno || end == r.kv.value || *end)
            latest = -1;
        etcd_resp_free(&r);
    }
    if ((rc = get(w, w->sync_key, &r)) < 0)
        return -1;
    if (!rc) {
        snprintf(line, sizeof line, "%s is gone and %s does not exist: no replica was designated synchronous, so "
                 "none may promote itself (not promoting; following)", w->key, w->sync_key);
        return say(w, 1, line), 0;
    }
    printable(v, sizeof v, r.kv.value, r.kv.value_len);
    rc = etcd_sync_read(r.kv.value, r.kv.value_len, &s, why, sizeof why);
    etcd_resp_free(&r);
    if (rc)
        snprintf(line, sizeof line, "%s is gone and %s holds %s: %s (not promoting; following)", w->key,
                 w->sync_key, v, why);
    else if (!etcd_sync_has(&s, w->id))
        snprintf(line, sizeof line, "%s is gone; %s names %s, not this replica (%s): not promoting, following "
                 "whichever writer takes the key", w->key, w->sync_key, v, w->id);
    else if (s.epoch != latest)
        snprintf(line, sizeof line, "%s is gone; %s names this replica, but at epoch %lld while the latest epoch "
                 "(%s) is %lld: its leader designated no replica, so none may promote itself (not promoting; "
                 "following)", w->key, w->sync_key, s.epoch, w->counter, latest);
    else {
        snprintf(line, sizeof line, "%s is gone (the writer's lease expired or was revoked) and %s names this "
                 "replica at the latest epoch, %lld: promoting", w->key, w->sync_key, s.epoch);
        say(w, 0, line);
        *epoch_out = s.epoch;
        return 1;
    }
    return say(w, 1, line), 0;
}

/* One look. 1 when this replica may promote. */
static int look(struct watch *w, long long *epoch)
{
    struct etcd_resp r;
    char line[600], v[200];
    int rc = get(w, w->key, &r);

    if (rc < 0)
        return 0;
    if (rc) {
        printable(v, sizeof v, r.kv.value, r.kv.value_len);
        etcd_resp_free(&r);
        snprintf(line, sizeof line, "%s is held by %s: following", w->key, v);
        say(w, 0, line);
        return 0;
    }
    return may_promote(w, epoch) == 1;
}

static void *run(void *arg)
{
    struct watch *w = arg;
    long long every = w->ttl_ms / 3 < 1000 ? w->ttl_ms / 3 : 1000;

    for (;;) {
        struct timespec ts;
        long long epoch = 0;
        int quit;

        if (look(w, &epoch)) {
            pthread_mutex_lock(&w->mu);
            w->promote = 1;
            w->epoch = epoch;
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += every / 1000;
        ts.tv_nsec += (every % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&w->mu);
        if (!w->quit)
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        quit = w->quit;
        pthread_mutex_unlock(&w->mu);
        if (quit)
            return NULL;
    }
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->quit = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    etcd_free(w->etcd);
    free(w->key);
    free(w->counter);
    free(w->sync_key);
    free(w->id);
    free(w);
}

struct watch *watch_start(const struct watch_opts *o, char *err, size_t errlen)
{
    struct watch *w = calloc(1, sizeof *w);
    pthread_condattr_t ca;

    if (!w || !(w->key = strdup(o->key)) || !(w->counter = util_join(o->key, "/epoch")) ||
        !(w->sync_key = util_join(o->key, "/sync")) || !(w->id = strdup(o->id))) {
        watch_free(w);
        util_fail(err, errlen, "out of memory");
        return NULL;
    }
    w->ttl_ms = o->ttl * 1000;
    if (etcd_global_init(err, errlen) || !(w->etcd = etcd_new(o->endpoints, err, errlen))) {
        watch_free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->th, NULL, run, w)) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        watch_free(w);
        util_fail(err, errlen, "cannot start the etcd thread");
        return NULL;
    }
    w->started = 1;
    log_info("etcd: watching %s on %s: this replica (%s) promotes itself when the key is gone and %s/sync "
             "names it", o->key, o->endpoints, o->id, o->key);
    return w;
}

int watch_promote(struct watch *w, long long *epoch)
{
    int p;

    pthread_mutex_lock(&w->mu);
    p = w->promote;
    *epoch = w->epoch;
    pthread_mutex_unlock(&w->mu);
    return p;
}
