/* lead.c: the writer's leadership in etcd (see lead.h): the campaign, the epoch, and
 * the thread that renews the lease.
 *
 * The thread does all the talking to etcd (blocking libcurl calls, each bounded); the
 * main thread only reads, under the mutex, the state and the deadline the thread keeps
 * (lead_ok). Times are util_now_ms (CLOCK_MONOTONIC): a clock step changes nothing, and
 * a process that was stopped finds its deadline passed when it wakes. */
#include "lead.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "log.h"
#include "util.h"

#define RETRY_MS      500       /* after a failed renewal */
#define MARGIN_MIN_MS 500       /* the deadline's margin: ttl/5, at least this */
#define TRY_MIN_MS    300       /* one try at one endpoint: ttl/4 within these */
#define TRY_MAX_MS    2000
#define REVOKE_MS     1000      /* at a clean stop */
#define CLAIM_TRIES   5

enum { WAITING, LEADER, LOST };

struct lead {
    char *key, *counter, *endpoints, *db, *sync_key;
    long long ttl;                /* asked for, seconds */
    long long file_epoch;
    struct etcd *etcd;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* shared, under mu */
    int quit;                     /* the main thread asks the thread to end */
    int state;
    long long epoch;
    long long deadline;           /* take nothing at or after this */
    long long last_req;           /* the request time of the last successful renewal */
    long long granted_ms;         /* the lease's TTL as etcd granted it */
    long long stopped_at;         /* when lead_ok first said no */
    char why[400];
    char *sync_val;               /* KEY/sync's value to write (lead_put_sync), or NULL */
    long long sync_gen, sync_done;   /* its generation; the last one written */
    long long sync_retry;         /* after a failed write: not before this */
    /* the thread's own */
    long long lease, lease_ttl, lease_req, create_rev;
    char holder[200];
    char last_err[300];
    int failing;
};

static long long try_ms(const struct lead *l)
{
    long long t = l->ttl * 1000 / 4;

    return t < TRY_MIN_MS ? TRY_MIN_MS : t > TRY_MAX_MS ? TRY_MAX_MS : t;
}

static long long margin_ms(long long ttl_ms)
{
    return ttl_ms / 5 < MARGIN_MIN_MS ? MARGIN_MIN_MS : ttl_ms / 5;
}

/* How often a standby looks at the key again. */
static long long poll_ms(const struct lead *l)
{
    long long t = l->ttl * 1000 / 3;

    return t < 1000 ? t : 1000;
}

int lead_check(const struct lead_opts *o, char *err, size_t errlen)
{
    char why[256];

    if (etcd_check_endpoints(o->endpoints, why, sizeof why))
        return util_fail(err, errlen, "etcd-endpoints: %s", why);
    if (!o->key || !o->key[0])
        return util_fail(err, errlen, "etcd-key: empty");
    if (o->ttl < 2)
        return util_fail(err, errlen, "etcd-ttl: %lld is less than 2 seconds", o->ttl);
    return 0;
}

/* Printable: a value someone else put in etcd, for the log. */
static void printable(char *dst, size_t cap, const char *src, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len && n + 1 < cap; i++)
        dst[n++] = (unsigned char)src[i] >= ' ' && (unsigned char)src[i] < 127 ? src[i] : '?';
    dst[n] = '\0';
}

/* The key's value: who holds it (and, once known, at which epoch). */
static char *who(const struct lead *l, long long epoch)
{
    char host[256] = "";
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;

    gethostname(host, sizeof host - 1);
    if (o && cJSON_AddStringToObject(o, "host", host) && cJSON_AddNumberToObject(o, "pid", (double)getpid()) &&
        cJSON_AddStringToObject(o, "db", l->db) && (!epoch || cJSON_AddNumberToObject(o, "epoch", (double)epoch)))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Sleep until at (util_now_ms) or until the main thread asks to quit. 1 when asked. */
static int sleep_until(struct lead *l, long long at)
{
    struct timespec ts;
    int quit;

    pthread_mutex_lock(&l->mu);
    while (!l->quit && util_now_ms() < at &&
           !(l->state == LEADER && l->sync_val && util_now_ms() >= l->sync_retry)) {
        long long ms = l->state == LEADER && l->sync_val && l->sync_retry < at ? l->sync_retry : at;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* util_now_ms is CLOCK_MONOTONIC in ms: wait until then. */
        ms -= (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    quit = l->quit;
    pthread_mutex_unlock(&l->mu);
    return quit;
}

/* A call to etcd, bounded by deadline. 0 with *r, or -1 (l->last_err says why). */
static int call(struct lead *l, const char *path, char *body, enum etcd_kind kind, long long deadline,
                struct etcd_resp *r)
{
    int rc = etcd_call(l->etcd, path, body, kind, deadline, (long)try_ms(l), r, l->last_err, sizeof l->last_err);

    free(body);
    return rc;
}

/* A failure while campaigning: logged when it starts and when its text changes. */
static void campaign_failed(struct lead *l, const char *what)
{
    static char said[sizeof l->last_err];

    if (strcmp(said, l->last_err))
        log_warn("etcd: %s: %s (trying again)", what, l->last_err);
    snprintf(said, sizeof said, "%s", l->last_err);
}

/* Our own lease: granted, and renewed when a third of its TTL has passed. 0, or -1. */
static int own_lease(struct lead *l)
{
    struct etcd_resp r;
    long long t0 = util_now_ms();

    if (l->lease && t0 - l->lease_req >= l->lease_ttl * 1000 / 3) {
        if (call(l, "/v3/lease/keepalive", etcd_body_lease(l->lease), ETCD_KEEPALIVE, t0 + try_ms(l) * 3, &r))
            return campaign_failed(l, "renewing the lease"), -1;
        if (r.code || r.ttl <= 0)
            l->lease = 0;              /* expired while we waited: take another */
        else {
            l->lease_req = t0;
            l->lease_ttl = r.ttl;
        }
        etcd_resp_free(&r);
    }
    if (!l->lease) {
        t0 = util_now_ms();
        if (call(l, "/v3/lease/grant", etcd_body_grant(l->ttl), ETCD_GRANT, t0 + try_ms(l) * 3, &r))
            return campaign_failed(l, "granting a lease"), -1;
        if (r.code) {
            snprintf(l->last_err, sizeof l->last_err, "%s", r.message);
            return campaign_failed(l, "granting a lease"), -1;
        }
        l->lease = r.id;
        l->lease_ttl = r.ttl;
        l->lease_req = t0;
        log_debug("etcd: lease %llx granted, TTL %lld s", (unsigned long long)l->lease, r.ttl);
    }
    return 0;
}

/* The holder, logged whenever it changes. */
static void note_holder(struct lead *l, const struct etcd_kv *kv)
{
    char v[sizeof l->holder];

    printable(v, sizeof v, kv->value, kv->value_len);
    if (strcmp(v, l->holder))
        log_info("etcd: %s is held by %s (lease %llx): waiting as a standby, taking no request", l->key, v,
                 (unsigned long long)kv->lease);
    snprintf(l->holder, sizeof l->holder, "%s", v);
}

/* Holding the key (create revision l->create_rev): take the next epoch. 1: leader;
 * 0: the key was lost meanwhile, or etcd failed (campaign again). */
static int claim(struct lead *l)
{
    int tries;

    for (tries = 0; tries < CLAIM_TRIES; tries++) {
        struct etcd_resp r;
        long long now = util_now_ms(), mod, have = 0, epoch;
        char num[32], *value;
        int ok;

        if (call(l, "/v3/kv/range", etcd_body_range(l->counter), ETCD_RANGE, now + try_ms(l) * 3, &r) || r.code)
            return campaign_failed(l, "reading the epoch counter"), etcd_resp_free(&r), 0;
        mod = r.has_kv ? r.kv.mod_rev : 0;
        if (r.has_kv) {
            char *end;
            errno = 0;
            have = strtoll(r.kv.value, &end, 10);
            if (errno || end == r.kv.value || *end || have < 0) {
                snprintf(l->last_err, sizeof l->last_err, "%s holds \"%.40s\", not an epoch", l->counter, r.kv.value);
                etcd_resp_free(&r);
                return campaign_failed(l, "reading the epoch counter"), 0;
            }
        }
        etcd_resp_free(&r);
        epoch = (have > l->file_epoch ? have : l->file_epoch) + 1;
        snprintf(num, sizeof num, "%lld", epoch);
        value = who(l, epoch);
        ok = value && !call(l, "/v3/kv/txn", etcd_body_claim(l->key, l->create_rev, l->counter, mod, num, value,
                                                             l->lease), ETCD_TXN, now + try_ms(l) * 3, &r);
        free(value);
        if (!ok)
            return campaign_failed(l, "taking an epoch"), 0;
        if (r.code) {
            snprintf(l->last_err, sizeof l->last_err, "%s", r.message);
            etcd_resp_free(&r);
            return campaign_failed(l, "taking an epoch"), 0;
        }
        if (r.succeeded) {
            pthread_mutex_lock(&l->mu);
            l->state = LEADER;
            l->epoch = epoch;
            l->granted_ms = l->lease_ttl * 1000;
            l->last_req = l->lease_req;
            l->deadline = l->lease_req + l->granted_ms - margin_ms(l->granted_ms);
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            log_info("etcd: this writer leads: %s (lease %llx, created at revision %lld), epoch %lld "
                     "(%s was %lld, the file's %lld)", l->key, (unsigned long long)l->lease, l->create_rev, epoch,
                     l->counter, have, l->file_epoch);
            etcd_resp_free(&r);
            return 1;
        }
        if (!r.has_kv || r.kv.create_rev != l->create_rev) {
            etcd_resp_free(&r);
            log_warn("etcd: %s was lost before an epoch could be taken: campaigning again", l->key);
            return 0;
        }
        etcd_resp_free(&r);          /* the counter moved under us: read it again */
    }
    snprintf(l->last_err, sizeof l->last_err, "%s kept changing", l->counter);
    return campaign_failed(l, "taking an epoch"), 0;
}

/* One look at the key as a standby. When to look again. */
static long long campaign(struct lead *l)
{
    struct etcd_resp r;
    long long now = util_now_ms();
    char *value;
    int rc;

    if (own_lease(l))
        return now + poll_ms(l);
    if (call(l, "/v3/kv/range", etcd_body_range(l->key), ETCD_RANGE, now + try_ms(l) * 3, &r) || r.code) {
        if (r.code)
            snprintf(l->last_err, sizeof l->last_err, "%s", r.message);
        etcd_resp_free(&r);
        campaign_failed(l, "reading the leader key");
        return now + poll_ms(l);
    }
    if (r.has_kv && (!l->lease || r.kv.lease != l->lease)) {
        note_holder(l, &r.kv);
        etcd_resp_free(&r);
        return now + poll_ms(l);
    }
    if (r.has_kv) {                  /* ours already: a campaign whose answer was lost */
        l->create_rev = r.kv.create_rev;
        etcd_resp_free(&r);
    } else {
        etcd_resp_free(&r);
        /* Fresh lease before the key is created under it. */
        l->lease_req -= l->lease_ttl * 1000;
        if (own_lease(l))
            return now + poll_ms(l);
        value = who(l, 0);
        rc = value ? call(l, "/v3/kv/txn", etcd_body_campaign(l->key, value, l->lease), ETCD_TXN,
                          util_now_ms() + try_ms(l) * 3, &r) : -1;
        free(value);
        if (rc) {
            campaign_failed(l, "creating the leader key");
            return now + poll_ms(l);
        }
        if (r.code) {                /* our lease is gone: take another */
            if (r.code == ETCD_CODE_NOT_FOUND)
                l->lease = 0;
            snprintf(l->last_err, sizeof l->last_err, "%s", r.message);
            etcd_resp_free(&r);
            campaign_failed(l, "creating the leader key");
            return util_now_ms();
        }
        if (!r.succeeded) {
            if (r.has_kv)
                note_holder(l, &r.kv);
            etcd_resp_free(&r);
            return now + poll_ms(l);
        }
        l->create_rev = r.revision;
        etcd_resp_free(&r);
    }
    if (claim(l))
        return util_now_ms() + l->lease_ttl * 1000 / 3;
    return util_now_ms() + poll_ms(l);
}

/* Leading is over: say why (under the mutex, once). */
static void lose(struct lead *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lose(struct lead *l, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&l->mu);
    if (l->state == LEADER) {
        va_start(ap, fmt);
        vsnprintf(l->why, sizeof l->why, fmt, ap);
        va_end(ap);
        l->state = LOST;
    }
    pthread_mutex_unlock(&l->mu);
}

/* Who holds the key now, for the reason of a lost lease: "; KEY is now held by V". */
static void holder_now(struct lead *l, char *buf, size_t len)
{
    struct etcd_resp r;
    char v[sizeof l->holder] = "";

    buf[0] = '\0';
    if (call(l, "/v3/kv/range", etcd_body_range(l->key), ETCD_RANGE, util_now_ms() + try_ms(l), &r) || r.code) {
        etcd_resp_free(&r);
        return;
    }
    if (r.has_kv && r.kv.lease != l->lease) {
        printable(v, sizeof v, r.kv.value, r.kv.value_len);
        snprintf(buf, len, "; %s is now held by %s", l->key, v);
    } else if (!r.has_kv)
        snprintf(buf, len, "; %s is held by no one now", l->key);
    etcd_resp_free(&r);
}

/* One renewal as the leader. When to renew next, or -1 when leading is over. */
static long long renew(struct lead *l)
{
    struct etcd_resp r;
    long long t0 = util_now_ms(), deadline;
    int rc;

    pthread_mutex_lock(&l->mu);
    deadline = l->deadline;
    pthread_mutex_unlock(&l->mu);
    if (t0 >= deadline) {
        char held[sizeof l->holder + 300];
        const char *last = l->failing ? l->last_err : "none: the process was not running";
        char said[sizeof l->last_err];
        snprintf(said, sizeof said, "%s", last);
        holder_now(l, held, sizeof held);
        lose(l, "the lease could not be renewed in time (last error: %s)%s", said, held);
        return -1;
    }
    rc = call(l, "/v3/lease/keepalive", etcd_body_lease(l->lease), ETCD_KEEPALIVE, deadline, &r);
    if (!rc && (r.code || r.ttl <= 0)) {
        lose(l, "etcd says the lease %llx is gone (expired or revoked)%s%s", (unsigned long long)l->lease,
             r.code ? ": " : "", r.code ? r.message : "");
        etcd_resp_free(&r);
        l->lease = 0;
        return -1;
    }
    if (!rc) {
        long long ttl = r.ttl;
        etcd_resp_free(&r);
        /* Still our key? (Deleted by hand, or the lease was revoked and the key taken.) */
        rc = call(l, "/v3/kv/range", etcd_body_range(l->key), ETCD_RANGE, deadline, &r);
        if (!rc && !r.code && (!r.has_kv || r.kv.create_rev != l->create_rev || r.kv.lease != l->lease)) {
            char v[sizeof l->holder] = "";
            if (r.has_kv)
                printable(v, sizeof v, r.kv.value, r.kv.value_len);
            lose(l, "%s %s%s", l->key, r.has_kv ? "is now held by " : "was deleted", v);
            etcd_resp_free(&r);
            return -1;
        }
        if (!rc && r.code) {
            snprintf(l->last_err, sizeof l->last_err, "%s", r.message);
            rc = -1;
        }
        etcd_resp_free(&r);
        if (!rc) {
            pthread_mutex_lock(&l->mu);
            if (l->state == LEADER) {
                l->granted_ms = ttl * 1000;
                l->last_req = t0;
                l->deadline = t0 + l->granted_ms - margin_ms(l->granted_ms);
            }
            pthread_mutex_unlock(&l->mu);
            if (l->failing)
                log_info("etcd: lease renewed again (through %s) after %d failed tries", etcd_endpoint(l->etcd),
                         l->failing);
            l->failing = 0;
            log_debug("etcd: lease renewed, TTL %lld s", ttl);
            return t0 + ttl * 1000 / 3;
        }
    }
    if (!l->failing++)
        log_warn("etcd: could not renew the leader lease: %s (trying again; this writer stops taking "
                 "requests in %lld ms unless it succeeds)", l->last_err, deadline - util_now_ms());
    t0 = util_now_ms();
    if (t0 >= deadline) {
        lose(l, "the lease could not be renewed in time (last error: %s)", l->last_err);
        return -1;
    }
    return t0 + RETRY_MS < deadline ? t0 + RETRY_MS : deadline;
}

/* As the leader: write KEY/sync's value, if one waits, in a transaction that checks the
 * key is still ours. 0 (written, or to try again at sync_retry), or -1 when the key is
 * no longer ours (leading is over). */
static int write_sync(struct lead *l)
{
    struct etcd_resp r;
    long long gen = 0, now = util_now_ms();
    char *value = NULL;
    int rc;

    pthread_mutex_lock(&l->mu);
    if (l->sync_val && now >= l->sync_retry && (value = strdup(l->sync_val)))
        gen = l->sync_gen;
    pthread_mutex_unlock(&l->mu);
    if (!value)
        return 0;
    rc = call(l, "/v3/kv/txn", etcd_body_put_held(l->key, l->create_rev, l->lease, l->sync_key, value), ETCD_TXN,
              now + try_ms(l) * 3, &r);
    if (!rc && !r.code && !r.succeeded) {
        lose(l, "%s is no longer this writer's (found while writing %s)", l->key, l->sync_key);
        etcd_resp_free(&r);
        free(value);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    if (!rc && !r.code) {
        l->sync_done = gen;
        if (l->sync_gen == gen) {
            free(l->sync_val);
            l->sync_val = NULL;
        }
        log_info("etcd: %s = %s", l->sync_key, value);
    } else {
        l->sync_retry = util_now_ms() + RETRY_MS;
        log_warn("etcd: could not write %s: %s (trying again)", l->sync_key, rc ? l->last_err : r.message);
    }
    pthread_mutex_unlock(&l->mu);
    etcd_resp_free(&r);
    free(value);
    return 0;
}

static void *run(void *arg)
{
    struct lead *l = arg;
    long long next = 0;

    for (;;) {
        int state;
        if (sleep_until(l, next))
            break;
        pthread_mutex_lock(&l->mu);
        state = l->state;
        pthread_mutex_unlock(&l->mu);
        if (state == LOST || (state == LEADER && write_sync(l)))
            break;
        if (util_now_ms() < next)
            continue;
        next = state == LEADER ? renew(l) : campaign(l);
        if (next < 0)
            break;
    }
    if (l->lease) {
        struct etcd_resp r;
        if (!call(l, "/v3/lease/revoke", etcd_body_lease(l->lease), ETCD_REVOKE, util_now_ms() + REVOKE_MS, &r))
            log_debug("etcd: lease %llx revoked", (unsigned long long)l->lease);
        etcd_resp_free(&r);
        l->lease = 0;
    }
    return NULL;
}

static void free_parts(struct lead *l)
{
    etcd_free(l->etcd);
    free(l->key);
    free(l->counter);
    free(l->endpoints);
    free(l->db);
    free(l->sync_key);
    free(l->sync_val);
    free(l);
}

void lead_free(struct lead *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->th, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free_parts(l);
}

int lead_start(const struct lead_opts *o, struct changes *ch, volatile sig_atomic_t *stop,
               struct lead **out, char *err, size_t errlen)
{
    struct lead *l;
    pthread_condattr_t ca;
    int state;

    *out = NULL;
    if (lead_check(o, err, errlen) || etcd_global_init(err, errlen))
        return -1;
    if (!(l = calloc(1, sizeof *l)) || !(l->key = strdup(o->key)) || !(l->counter = util_join(o->key, "/epoch")) ||
        !(l->sync_key = util_join(o->key, "/sync")) ||
        !(l->endpoints = strdup(o->endpoints)) || !(l->db = strdup(o->db ? o->db : ""))) {
        if (l)
            free_parts(l);
        return util_fail(err, errlen, "out of memory");
    }
    l->ttl = o->ttl;
    l->file_epoch = changes_epoch(ch);
    if (!(l->etcd = etcd_new(o->endpoints, err, errlen))) {
        free_parts(l);
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    log_info("etcd: campaigning for %s on %s (lease TTL %lld s)", l->key, l->endpoints, l->ttl);
    if (pthread_create(&l->th, NULL, run, l)) {
        lead_free(l);
        return util_fail(err, errlen, "cannot start the etcd thread");
    }
    l->started = 1;
    pthread_mutex_lock(&l->mu);
    while ((state = l->state) == WAITING && !*stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
    if (state != LEADER) {
        lead_free(l);
        if (*stop)
            return 1;
        return util_fail(err, errlen, "etcd: lost %s before serving", o->key);
    }
    if (changes_set_epoch(ch, l->epoch, err, errlen)) {
        lead_free(l);
        return -1;
    }
    *out = l;
    return 0;
}

int lead_ok(void *ud)
{
    struct lead *l = ud;
    long long now = util_now_ms();
    int ok;

    pthread_mutex_lock(&l->mu);
    ok = l->state == LEADER && now < l->deadline;
    if (!ok && !l->stopped_at)
        l->stopped_at = now;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

int lead_wait_ms(struct lead *l, int max_ms)
{
    long long left;

    if (!l)
        return max_ms;
    pthread_mutex_lock(&l->mu);
    left = l->state == LEADER ? l->deadline - util_now_ms() : 0;
    pthread_mutex_unlock(&l->mu);
    if (left < 0)
        left = 0;
    return left < max_ms ? (int)left : max_ms;
}

void lead_describe(struct lead *l, char *buf, size_t len)
{
    long long until = util_now_ms() + 2000;

    pthread_mutex_lock(&l->mu);
    /* The thread says why (and who holds the key now) once it has run: wait for it a
     * little, a frozen process having just woken. */
    while (l->state == LEADER && util_now_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    snprintf(buf, len, "this writer no longer holds %s: %s; it stopped taking requests %lld ms after the last "
             "successful renewal was asked for (the lease's TTL is %lld ms; the deadline was at %lld ms)",
             l->key, l->state == LOST ? l->why : "the lease could not be renewed in time",
             (l->stopped_at ? l->stopped_at : util_now_ms()) - l->last_req, l->granted_ms,
             l->deadline - l->last_req);
    pthread_mutex_unlock(&l->mu);
}

void lead_put_sync(struct lead *l, const char *value, long long gen)
{
    char *v = strdup(value);

    if (!v)
        return;
    pthread_mutex_lock(&l->mu);
    if (gen > l->sync_gen) {
        free(l->sync_val);
        l->sync_val = v;
        l->sync_gen = gen;
        l->sync_retry = 0;
        v = NULL;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    free(v);
}

long long lead_sync_done(struct lead *l)
{
    long long gen;

    pthread_mutex_lock(&l->mu);
    gen = l->sync_done;
    pthread_mutex_unlock(&l->mu);
    return gen;
}
