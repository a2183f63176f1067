/* client.c: the publisher's connection and its window of outstanding requests.
 *
 * libmosquitto runs the network in its own thread (mosquitto_loop_start), which also
 * reconnects after a broken connection. Its callbacks only update the window under
 * the client's lock and signal a condition variable; everything that takes time or
 * calls the user (delivering results, republishing) happens in the caller's thread,
 * inside mosqlite_publish/send/wait/service.
 *
 * A request's life: E_SENDING (given to libmosquitto, waiting for PUBCOMP of its latest
 * publish) -> E_WAITING (with receipts: the broker has it, waiting for the receipt;
 * or the broker refused it) -> republished at retry_at -> ... -> E_DONE (finished, its
 * result not yet delivered) -> E_FREE. A request in E_SENDING is libmosquitto's to
 * resend on reconnect, so it is never published twice by us without receipts: a
 * second copy would be a second row. */
#include "request.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum estate { E_FREE, E_SENDING, E_WAITING, E_DONE };

struct entry {
    enum estate state;
    int mid;                    /* mid of the latest publish */
    int sent_counted;           /* stats.sent already counted for this request */
    int tries;                  /* publishes so far */
    double retry_at;            /* E_WAITING: when to publish again (ms) */
    int backoff_ms;             /* the next retry delay */
    char *topic, *payload;      /* owned */
    size_t len;
    char id[MOSQLITE_ID_MAX + 1];
    enum mosqlite_status status;
    char *error;                /* owned; the writer's reason when rejected */
    void *tag;
    int hnext;                  /* next index in the id hash chain, or -1 */
    int hashed;
};

struct mosqlite_client {
    struct mosquitto *mosq;
    pthread_mutex_t lock;       /* guards everything below that callbacks touch */
    pthread_cond_t cond;        /* signalled on any change */
    char *host, *username, *password, *cafile, *prefix, *client_id, *reply_topic;
    int port, receipts, window, timeout_ms, retry_ms, keepalive;
    size_t window_bytes;
    struct entry *ents;         /* window slots */
    int *freelist, nfree;       /* free slots (a stack) */
    int *doneq, dhead, ndone;   /* finished slots in order (a ring) */
    int *batch;                 /* scratch for delivery */
    int *by_mid;                /* mid -> slot of its latest publish, or -1 */
    int *buckets;               /* id hash -> first slot, or -1 */
    unsigned nbuckets;
    int nused;
    size_t bytes;
    int connected, subscribed, sub_mid, conn_rc, started;
    double progress_at;         /* last time something finished (or the window filled from empty) */
    double next_scan;
    int timed_out;              /* a wait gave up: close() does not wait again */
    mosqlite_result_cb cb;
    void *cb_arg;
    int send_done;              /* mosqlite_send(): its request's result, when done */
    enum mosqlite_status send_status;
    char send_err[512];
    struct mosqlite_stats st;
    char err[512];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int seterr(mosqlite_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int seterr(mosqlite_client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

static unsigned hash_id(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void hash_add(mosqlite_client *c, int i)
{
    unsigned b = hash_id(c->ents[i].id) & (c->nbuckets - 1);
    c->ents[i].hnext = c->buckets[b];
    c->buckets[b] = i;
    c->ents[i].hashed = 1;
}

static void hash_del(mosqlite_client *c, int i)
{
    int *p = &c->buckets[hash_id(c->ents[i].id) & (c->nbuckets - 1)];

    for (; *p >= 0; p = &c->ents[*p].hnext)
        if (*p == i) {
            *p = c->ents[i].hnext;
            break;
        }
    c->ents[i].hashed = 0;
}

static int hash_find(mosqlite_client *c, const char *id)
{
    int i = c->buckets[hash_id(id) & (c->nbuckets - 1)];

    for (; i >= 0; i = c->ents[i].hnext)
        if (!strcmp(c->ents[i].id, id) && c->ents[i].state != E_DONE)
            return i;
    return -1;
}

/* Lock held. The request in slot i is finished: queue its result for delivery. */
static void finish(mosqlite_client *c, int i, enum mosqlite_status status, char *error)
{
    struct entry *e = &c->ents[i];

    e->state = E_DONE;
    e->status = status;
    e->error = error;
    if (e->hashed)
        hash_del(c, i);
    c->doneq[(c->dhead + c->ndone++) % c->window] = i;
    c->progress_at = now_ms();
    if (status == MOSQLITE_APPLIED)
        c->st.applied++;
    else if (status == MOSQLITE_DUPLICATE)
        c->st.duplicate++;
    else if (status == MOSQLITE_REJECTED)
        c->st.rejected++;
    pthread_cond_broadcast(&c->cond);
}

/* ---- libmosquitto callbacks (network thread) ---- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    mosqlite_client *c = obj;

    pthread_mutex_lock(&c->lock);
    c->conn_rc = rc;
    c->connected = rc == 0;
    if (rc == 0 && c->receipts)     /* again on every connect: the session may be new */
        mosquitto_subscribe_v5(mosq, &c->sub_mid, c->reply_topic, 1, 0, NULL);
    c->next_scan = 0;               /* publish what waits for the connection now */
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    mosqlite_client *c = obj;

    pthread_mutex_lock(&c->lock);
    c->connected = 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n,
                         const int *granted, const mosquitto_property *props)
{
    mosqlite_client *c = obj;

    pthread_mutex_lock(&c->lock);
    if (mid == c->sub_mid && n > 0 && granted[0] <= 2)
        c->subscribed = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* PUBCOMP (or a PUBREC/PUBCOMP with a failure reason) for mid. */
static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    mosqlite_client *c = obj;
    int i;
    struct entry *e;

    pthread_mutex_lock(&c->lock);
    i = c->by_mid[mid & 0xffff];
    e = i >= 0 ? &c->ents[i] : NULL;
    if (e && e->state == E_SENDING && e->mid == mid) {
        c->by_mid[mid & 0xffff] = -1;
        /* 0x92 (packet id not found) answers a PUBREL we resent after a reconnect:
         * the broker had already released the message, so it is done. Any other
         * failure code comes with PUBREC: refused (quota full, not authorized, ...),
         * the broker does not have it. */
        if (reason >= 0x80 && reason != MQTT_RC_PACKET_ID_NOT_FOUND) {
            e->state = E_WAITING;
            e->retry_at = now_ms() + 100;
            c->st.refused++;
        } else {
            if (!e->sent_counted) {
                e->sent_counted = 1;
                c->st.sent++;
            }
            if (c->receipts) {
                e->state = E_WAITING;
                e->retry_at = now_ms() + e->backoff_ms;
                e->backoff_ms = e->backoff_ms * 2 > 16000 ? 16000 : e->backoff_ms * 2;
            } else {
                finish(c, i, MOSQLITE_SENT, NULL);
            }
        }
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    mosqlite_client *c = obj;
    char id[MOSQLITE_ID_MAX + 1];
    enum mosqlite_status status;
    char *error;
    int i;

    if (strcmp(m->topic, c->reply_topic) ||
        mosqlite__receipt(m->payload, (size_t)m->payloadlen, id, &status, &error))
        return;
    pthread_mutex_lock(&c->lock);
    i = hash_find(c, id);
    if (i >= 0)
        finish(c, i, status, error);
    else
        free(error);                /* a receipt for a copy of a request already done */
    pthread_mutex_unlock(&c->lock);
}

/* ---- the window (caller's thread, lock held) ---- */

/* Publish slot i (again). */
static int send_entry(mosqlite_client *c, int i)
{
    struct entry *e = &c->ents[i];
    int mid = 0, rc;

    rc = mosquitto_publish_v5(c->mosq, &mid, e->topic, (int)e->len, e->payload, 2, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST)
        return seterr(c, MOSQLITE_EINVAL, "publish: %s", mosquitto_strerror(rc));
    /* NO_CONN/CONN_LOST: libmosquitto has queued it and sends it on reconnect. */
    e->state = E_SENDING;
    e->mid = mid;
    if (e->tries++ > 0)
        c->st.republished++;
    c->by_mid[mid & 0xffff] = i;
    return MOSQLITE_OK;
}

/* Republish what is due. Only while connected: a request waiting for the
 * connection is not handed to libmosquitto twice. */
static void scan(mosqlite_client *c, double now)
{
    int i;

    if (now < c->next_scan || !c->connected || (c->receipts && !c->subscribed))
        return;
    c->next_scan = now + 50;
    for (i = 0; i < c->window; i++) {
        struct entry *e = &c->ents[i];
        if (e->state == E_WAITING && e->retry_at <= now)
            send_entry(c, i);
    }
}

/* Hand finished results to the callback and free their slots. Drops the lock while
 * the callback runs; finished slots are not touched by the network thread. */
static void deliver(mosqlite_client *c)
{
    int n = 0, k;

    while (c->ndone > 0) {
        c->batch[n++] = c->doneq[c->dhead];
        c->dhead = (c->dhead + 1) % c->window;
        c->ndone--;
    }
    if (!n)
        return;
    for (k = 0; k < n; k++) {
        struct entry *e = &c->ents[c->batch[k]];
        if (e->tag == &c->send_done) {
            e->tag = NULL;
            c->send_done = 1;
            c->send_status = e->status;
            snprintf(c->send_err, sizeof c->send_err, "%s", e->error ? e->error : "");
        }
    }
    if (c->cb) {
        pthread_mutex_unlock(&c->lock);
        for (k = 0; k < n; k++) {
            struct entry *e = &c->ents[c->batch[k]];
            struct mosqlite_result r = {e->id, e->status, e->error, e->tag};
            c->cb(c, &r, c->cb_arg);
        }
        pthread_mutex_lock(&c->lock);
    }
    for (k = 0; k < n; k++) {
        struct entry *e = &c->ents[c->batch[k]];
        free(e->topic);
        free(e->payload);
        free(e->error);
        e->topic = e->payload = e->error = NULL;
        c->bytes -= e->len;
        e->state = E_FREE;
        c->nused--;
        c->freelist[c->nfree++] = c->batch[k];
    }
}

/* One step of waiting: deliver, republish, check for the timeout, then sleep on the
 * condition for at most wait_ms. Returns MOSQLITE_ETIMEDOUT when nothing has finished
 * for the client's timeout while requests are outstanding. */
static int step(mosqlite_client *c, int wait_ms)
{
    double now = now_ms();
    struct timespec ts;

    deliver(c);
    scan(c, now);
    if (c->nused > 0 && c->timeout_ms > 0 && now - c->progress_at >= c->timeout_ms) {
        c->timed_out = 1;
        return seterr(c, MOSQLITE_ETIMEDOUT, "%d request%s unconfirmed after %d s without progress%s",
                      c->nused, c->nused == 1 ? "" : "s", c->timeout_ms / 1000,
                      c->connected ? "" : " (not connected to the broker)");
    }
    if (wait_ms > 0 && c->ndone == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)wait_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    return MOSQLITE_OK;
}

/* ---- public API ---- */

void mosqlite_options_init(struct mosqlite_options *o)
{
    memset(o, 0, sizeof *o);
    o->port = 1883;
    o->window = 1000;
    o->window_bytes = 16u << 20;
    o->timeout_ms = 30000;
    o->retry_ms = 2000;
    o->keepalive = 30;
}

static char *dupornull(const char *s, int *bad)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *bad = 1;
    return d;
}

mosqlite_client *mosqlite_client_new(const struct mosqlite_options *o)
{
    mosqlite_client *c = calloc(1, sizeof *c);
    char id[MOSQLITE_ID_LEN + 1];
    pthread_condattr_t ca;
    int bad = 0, i;
    size_t tlen;

    if (!c)
        return NULL;
    mosquitto_lib_init();
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->port = o->port > 0 ? o->port : 1883;
    c->receipts = o->receipts;
    c->window = o->window > 0 ? o->window : 1000;
    c->window_bytes = o->window_bytes > 0 ? o->window_bytes : 16u << 20;
    c->timeout_ms = o->timeout_ms >= 0 ? o->timeout_ms : 30000;
    c->retry_ms = o->retry_ms > 0 ? o->retry_ms : 2000;
    c->keepalive = o->keepalive > 0 ? o->keepalive : 30;
    c->host = dupornull(o->host ? o->host : "127.0.0.1", &bad);
    c->username = dupornull(o->username, &bad);
    c->password = dupornull(o->password, &bad);
    c->cafile = dupornull(o->cafile, &bad);
    c->prefix = dupornull(o->prefix ? o->prefix : "mosqlite", &bad);
    if (o->client_id) {
        c->client_id = dupornull(o->client_id, &bad);
    } else if (mosqlite_new_id(id) == 0 && (c->client_id = malloc(64))) {
        snprintf(c->client_id, 64, "mosqlite-pub-%s", id);
    } else {
        bad = 1;
    }
    for (c->nbuckets = 16; c->nbuckets < 2u * (unsigned)c->window; c->nbuckets *= 2)
        ;
    c->ents = calloc((size_t)c->window, sizeof *c->ents);
    c->freelist = malloc((size_t)c->window * sizeof(int));
    c->doneq = malloc((size_t)c->window * sizeof(int));
    c->batch = malloc((size_t)c->window * sizeof(int));
    c->by_mid = malloc(65536 * sizeof(int));
    c->buckets = malloc(c->nbuckets * sizeof(int));
    if (bad || !c->host || !c->prefix || !c->ents || !c->freelist || !c->doneq ||
        !c->batch || !c->by_mid || !c->buckets)
        goto fail;
    tlen = strlen(c->prefix) + strlen(c->client_id) + 16;
    if (!(c->reply_topic = malloc(tlen)))
        goto fail;
    snprintf(c->reply_topic, tlen, "%s/receipts/%s", c->prefix, c->client_id);
    for (i = 0; i < 65536; i++)
        c->by_mid[i] = -1;
    for (i = 0; i < (int)c->nbuckets; i++)
        c->buckets[i] = -1;
    for (i = 0; i < c->window; i++)
        c->freelist[c->nfree++] = c->window - 1 - i;
    c->mosq = mosquitto_new(c->client_id, false, c);
    if (!c->mosq)
        goto fail;
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    mosquitto_message_v5_callback_set(c->mosq, on_message);
    mosquitto_reconnect_delay_set(c->mosq, 1, 4, true);
    snprintf(c->err, sizeof c->err, "no error");
    return c;
fail:
    mosqlite_close(c);
    return NULL;
}

void mosqlite_set_callback(mosqlite_client *c, mosqlite_result_cb cb, void *arg)
{
    c->cb = cb;
    c->cb_arg = arg;
}

int mosqlite_connect(mosqlite_client *c)
{
    mosquitto_property *props = NULL;
    double deadline = now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 10000);
    int rc;

    if (c->started)
        return seterr(c, MOSQLITE_ESTATE, "already connected");
    if (c->username && (rc = mosquitto_username_pw_set(c->mosq, c->username, c->password)))
        return seterr(c, MOSQLITE_ECONNECT, "username: %s", mosquitto_strerror(rc));
    if (c->cafile && (rc = mosquitto_tls_set(c->mosq, c->cafile, NULL, NULL, NULL, NULL)))
        return seterr(c, MOSQLITE_ECONNECT, "TLS with %s: %s", c->cafile, mosquitto_strerror(rc));
    /* Keep the session (and what is in flight) across reconnects for 10 minutes. */
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 600);
    c->conn_rc = -1;
    rc = mosquitto_connect_bind_v5(c->mosq, c->host, c->port, c->keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc)
        return seterr(c, MOSQLITE_ECONNECT, "cannot connect to %s:%d: %s", c->host, c->port,
                      rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    if ((rc = mosquitto_loop_start(c->mosq)))
        return seterr(c, MOSQLITE_ECONNECT, "network thread: %s", mosquitto_strerror(rc));
    c->started = 1;
    pthread_mutex_lock(&c->lock);
    while ((c->conn_rc == -1 || (c->connected && c->receipts && !c->subscribed)) &&
           now_ms() < deadline)
        step(c, 50);
    rc = c->connected && (!c->receipts || c->subscribed);
    if (!rc && c->conn_rc > 0)
        seterr(c, MOSQLITE_ECONNECT, "broker %s:%d refused the connection: %s", c->host,
               c->port, mosquitto_reason_string(c->conn_rc));
    else if (!rc)
        seterr(c, MOSQLITE_ECONNECT, "broker %s:%d did not answer%s", c->host, c->port,
               c->connected ? " the subscription to the reply topic" : "");
    pthread_mutex_unlock(&c->lock);
    return rc ? MOSQLITE_OK : MOSQLITE_ECONNECT;
}

int mosqlite_publish(mosqlite_client *c, const char *table, const char *json, void *tag,
                     char *id_out)
{
    char id[MOSQLITE_ID_MAX + 1] = "", *payload, *topic;
    size_t len, tlen;
    struct entry *e;
    int i, rc;

    if (id_out)
        *id_out = '\0';
    if (!c->started)
        return seterr(c, MOSQLITE_ESTATE, "not connected");
    if (table && *table && strpbrk(table, "/+#"))
        return seterr(c, MOSQLITE_EINVAL, "table name \"%s\" has a character not allowed in a topic", table);
    if (c->receipts)
        payload = mosqlite__stamp(json, c->reply_topic, id, c->err, sizeof c->err);
    else
        payload = strdup(json);
    if (!payload)
        return c->receipts ? MOSQLITE_EINVAL : seterr(c, MOSQLITE_ENOMEM, "out of memory");
    len = strlen(payload);
    tlen = strlen(c->prefix) + (table ? strlen(table) : 0) + 8;
    if (!(topic = malloc(tlen))) {
        free(payload);
        return seterr(c, MOSQLITE_ENOMEM, "out of memory");
    }
    snprintf(topic, tlen, table && *table ? "%s/write/%s" : "%s/write", c->prefix, table);

    pthread_mutex_lock(&c->lock);
    if (c->nused == 0)
        c->progress_at = now_ms();
    while (c->nfree == 0 || (c->nused > 0 && c->bytes + len > c->window_bytes)) {
        if ((rc = step(c, 100)) != MOSQLITE_OK) {
            pthread_mutex_unlock(&c->lock);
            free(payload);
            free(topic);
            return rc;
        }
    }
    i = c->freelist[--c->nfree];
    e = &c->ents[i];
    memset(e, 0, sizeof *e);
    e->topic = topic;
    e->payload = payload;
    e->len = len;
    e->tag = tag;
    e->backoff_ms = c->retry_ms;
    strcpy(e->id, id);
    c->nused++;
    c->bytes += len;
    c->st.published++;
    if (c->receipts)
        hash_add(c, i);
    if (c->connected && (!c->receipts || c->subscribed)) {
        rc = send_entry(c, i);
    } else {
        e->state = E_WAITING;       /* scan() publishes it once connected */
        rc = MOSQLITE_OK;
    }
    if (rc != MOSQLITE_OK) {        /* libmosquitto would not take it: undo */
        if (e->hashed)
            hash_del(c, i);
        free(e->topic);
        free(e->payload);
        e->topic = e->payload = NULL;
        e->state = E_FREE;
        c->nused--;
        c->bytes -= len;
        c->st.published--;
        c->freelist[c->nfree++] = i;
    }
    deliver(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == MOSQLITE_OK && id_out)
        strcpy(id_out, id);
    return rc;
}

int mosqlite_send(mosqlite_client *c, const char *table, const char *json,
                  enum mosqlite_status *status_out, char *error_out, size_t errlen)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    c->send_done = 0;
    pthread_mutex_unlock(&c->lock);
    if ((rc = mosqlite_publish(c, table, json, &c->send_done, NULL)) != MOSQLITE_OK)
        return rc;
    pthread_mutex_lock(&c->lock);
    while (!c->send_done && (rc = step(c, 100)) == MOSQLITE_OK)
        ;
    deliver(c);
    pthread_mutex_unlock(&c->lock);
    if (!c->send_done)
        return rc;
    if (status_out)
        *status_out = c->send_status;
    if (error_out && errlen)
        snprintf(error_out, errlen, "%s", c->send_err);
    if (c->send_status == MOSQLITE_REJECTED)
        return seterr(c, MOSQLITE_EREJECTED, "rejected: %s", c->send_err);
    return MOSQLITE_OK;
}

int mosqlite_wait(mosqlite_client *c, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    int rc = MOSQLITE_OK;

    pthread_mutex_lock(&c->lock);
    while (c->nused > 0) {
        if ((rc = step(c, 100)) != MOSQLITE_OK)
            break;
        if (timeout_ms >= 0 && now_ms() >= deadline && c->nused > 0) {
            c->timed_out = 1;
            rc = seterr(c, MOSQLITE_ETIMEDOUT, "%d request%s unconfirmed after %d ms",
                        c->nused, c->nused == 1 ? "" : "s", timeout_ms);
            break;
        }
    }
    deliver(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int mosqlite_service(mosqlite_client *c)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    rc = step(c, 0);
    deliver(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void mosqlite_stats(mosqlite_client *c, struct mosqlite_stats *s)
{
    pthread_mutex_lock(&c->lock);
    *s = c->st;
    s->outstanding = (unsigned long)c->nused;
    pthread_mutex_unlock(&c->lock);
}

const char *mosqlite_errstr(const mosqlite_client *c)
{
    return c ? c->err : "no client";
}

const char *mosqlite_client_id(const mosqlite_client *c)
{
    return c->client_id;
}

void mosqlite_close(mosqlite_client *c)
{
    int i;

    if (!c)
        return;
    if (c->started) {
        mosquitto_property *props = NULL;
        if (!c->timed_out)
            mosqlite_wait(c, -1);
        /* End the session with the connection: nothing of ours is left in it. */
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
        mosquitto_disconnect_v5(c->mosq, 0, props);
        mosquitto_property_free_all(&props);
        mosquitto_loop_stop(c->mosq, false);
    }
    mosquitto_destroy(c->mosq);
    for (i = 0; c->ents && i < c->window; i++) {
        free(c->ents[i].topic);
        free(c->ents[i].payload);
        free(c->ents[i].error);
    }
    free(c->ents);
    free(c->freelist);
    free(c->doneq);
    free(c->batch);
    free(c->by_mid);
    free(c->buckets);
    free(c->host);
    free(c->username);
    free(c->password);
    free(c->cafile);
    free(c->prefix);
    free(c->client_id);
    free(c->reply_topic);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    mosquitto_lib_cleanup();
}
