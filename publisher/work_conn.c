/* work_conn.c: the agent's jobs connection (see work.h).
 *
 * One MQTT 5 connection whose client id is the worker's name, with a session kept for
 * ten minutes across reconnects (so a short break loses nothing in flight, and a Will
 * Delay can be honoured: a reconnect within it cancels the will), and a Last Will the
 * broker publishes when the connection ends without a clean DISCONNECT (the agent
 * killed, its machine or network gone). libmosquitto's network thread reconnects; its
 * callbacks only queue what came, under a lock, and signal the agent's thread. */
#include "work.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SUBS 8
#define SESSION_EXPIRY_S 600

struct wconn {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int conn_rc;                /* -1 until the first CONNACK */
    int connected, ever;
    unsigned reconnects;
    int sub_mid, sub_rc;        /* the subscription waited for, its reason code + 1 */
    struct wmsg *head, *tail;
    char *subs[MAX_SUBS];
    int nsubs;
    int inflight;               /* publishes not yet acknowledged */
    struct { int mid; char topic[256]; } sent[64];  /* the last publishes, by mid */
    int nsent;
    char denied[256];           /* a topic the broker's ACL refused, or "" */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
    struct wconn *c = obj;
    int i;

    pthread_mutex_lock(&c->lock);
    c->conn_rc = rc;
    c->connected = rc == 0;
    if (rc == 0) {
        if (c->ever)
            c->reconnects++;
        c->ever = 1;
        /* Again on every connect: the broker may have lost the session. */
        for (i = 0; i < c->nsubs; i++)
            mosquitto_subscribe_v5(m, NULL, c->subs[i], 1, 0, NULL);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
    struct wconn *c = obj;

    pthread_mutex_lock(&c->lock);
    c->connected = 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *p)
{
    struct wconn *c = obj;

    pthread_mutex_lock(&c->lock);
    if (mid == c->sub_mid)
        c->sub_rc = (n > 0 ? granted[0] : MQTT_RC_UNSPECIFIED) + 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *p)
{
    struct wconn *c = obj;

    pthread_mutex_lock(&c->lock);
    if (c->inflight > 0)
        c->inflight--;
    if (reason == MQTT_RC_NOT_AUTHORIZED && !c->denied[0]) {
        int i;
        for (i = 0; i < 64; i++)
            if (c->sent[i].mid == mid && c->sent[i].topic[0])
                snprintf(c->denied, sizeof c->denied, "%s", c->sent[i].topic);
        if (!c->denied[0])
            snprintf(c->denied, sizeof c->denied, "a job topic");
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *in,
                       const mosquitto_property *p)
{
    struct wconn *c = obj;
    struct wmsg *g = calloc(1, sizeof *g);

    if (!g || !(g->topic = strdup(in->topic)) || !(g->payload = malloc((size_t)in->payloadlen + 1))) {
        wmsg_free(g);
        return;                 /* out of memory: as if it never came (asked again later) */
    }
    memcpy(g->payload, in->payload, (size_t)in->payloadlen);
    g->payload[in->payloadlen] = '\0';
    g->len = (size_t)in->payloadlen;
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = g;
    else
        c->head = g;
    c->tail = g;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *text)
{
    fprintf(stderr, "%s\n", text);
}

/* Lock held: wait for a change, at most ms. */
static void wait_change(struct wconn *c, double ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)((long long)ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

/* The client and its options: callbacks, login, TLS, the Last Will (will_topic NULL:
 * none). 0, or -1 with a reason (*usage set when the fault is the configuration's). */
static int make_client(struct wconn *c, const struct work_conf *wc, const char *will_topic,
                       const char *will_payload, int *usage, char *err, size_t errlen)
{
    mosquitto_property *wprops = NULL;
    int rc;

    if (!(c->m = mosquitto_new(wc->worker, false, c))) {
        snprintf(err, errlen, "cannot make an MQTT client: %s", strerror(errno));
        return -1;
    }
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
    mosquitto_message_v5_callback_set(c->m, on_message);
    mosquitto_publish_v5_callback_set(c->m, on_publish);
    mosquitto_reconnect_delay_set(c->m, 1, 4, true);
    if (wc->debug)
        mosquitto_log_callback_set(c->m, on_log);
    if (wc->username && (rc = mosquitto_username_pw_set(c->m, wc->username, wc->password))) {
        snprintf(err, errlen, "username: %s", mosquitto_strerror(rc));
        return -1;
    }
    if ((wc->cafile || wc->certfile) &&
        (rc = mosquitto_tls_set(c->m, wc->cafile, NULL, wc->certfile, wc->keyfile, NULL))) {
        snprintf(err, errlen, "TLS with %s%s%s: %s", wc->cafile ? wc->cafile : "",
                 wc->certfile ? " and " : "", wc->certfile ? wc->certfile : "", mosquitto_strerror(rc));
        *usage = 1;
        return -1;
    }
    if (wc->tls_insecure)
        mosquitto_tls_insecure_set(c->m, true);
    if (will_topic) {
        if (wc->will_delay_s > 0)
            mosquitto_property_add_int32(&wprops, MQTT_PROP_WILL_DELAY_INTERVAL,
                                         (uint32_t)wc->will_delay_s);
        if ((rc = mosquitto_will_set_v5(c->m, will_topic, (int)strlen(will_payload), will_payload,
                                        2, false, wprops))) {
            mosquitto_property_free_all(&wprops);
            snprintf(err, errlen, "last will: %s", mosquitto_strerror(rc));
            return -1;
        }
    }
    return 0;
}

struct wconn *wconn_open(const struct work_conf *wc, const char *will_topic,
                         const char *will_payload, int *usage, char *err, size_t errlen)
{
    struct wconn *c = calloc(1, sizeof *c);
    mosquitto_property *props = NULL;
    pthread_condattr_t ca;
    double deadline = now_ms() + 10000;
    int rc;

    *usage = 0;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mosquitto_lib_init();
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->conn_rc = -1;
    if (make_client(c, wc, will_topic, will_payload, usage, err, errlen))
        goto fail;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_S);
    rc = mosquitto_connect_bind_v5(c->m, wc->mq_host, wc->port, wc->keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", wc->mq_host, wc->port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto fail;
    }
    if ((rc = mosquitto_loop_start(c->m))) {
        snprintf(err, errlen, "network thread: %s", mosquitto_strerror(rc));
        goto fail;
    }
    pthread_mutex_lock(&c->lock);
    while (c->conn_rc == -1 && now_ms() < deadline)
        wait_change(c, 100);
    rc = c->conn_rc;
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        return c;
    if (rc > 0)
        snprintf(err, errlen, "broker %s:%d refused the connection: %s", wc->mq_host, wc->port,
                 mosquitto_reason_string(rc));
    else
        snprintf(err, errlen, "broker %s:%d did not answer", wc->mq_host, wc->port);
fail:
    wconn_close(c);
    return NULL;
}

int wconn_subscribe(struct wconn *c, const char *filter, char *err, size_t errlen)
{
    double deadline = now_ms() + 10000;
    int rc;

    pthread_mutex_lock(&c->lock);
    if (c->nsubs >= MAX_SUBS || !(c->subs[c->nsubs] = strdup(filter))) {
        pthread_mutex_unlock(&c->lock);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->nsubs++;
    c->sub_rc = 0;
    rc = mosquitto_subscribe_v5(c->m, &c->sub_mid, filter, 1, 0, NULL);
    while (rc == MOSQ_ERR_SUCCESS && !c->sub_rc && now_ms() < deadline)
        wait_change(c, 100);
    rc = rc == MOSQ_ERR_SUCCESS && c->sub_rc ? c->sub_rc - 1 : -1;
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        snprintf(err, errlen, "the broker did not answer the subscription to %s", filter);
        return -1;
    }
    if (rc == MQTT_RC_NOT_AUTHORIZED) {
        snprintf(err, errlen, "refused by the broker's ACL: this user may not read %s", filter);
        return -1;
    }
    if (rc >= 0x80) {
        snprintf(err, errlen, "the broker refused the subscription to %s: %s", filter,
                 mosquitto_reason_string(rc));
        return -1;
    }
    return 0;
}

int wconn_publish(struct wconn *c, const char *topic, const char *payload, int qos)
{
    int rc, mid = 0;

    pthread_mutex_lock(&c->lock);
    rc = mosquitto_publish_v5(c->m, &mid, topic, (int)strlen(payload), payload, qos, false, NULL);
    if (rc == MOSQ_ERR_SUCCESS && qos > 0) {
        c->inflight++;
        c->sent[c->nsent].mid = mid;
        snprintf(c->sent[c->nsent].topic, sizeof c->sent[c->nsent].topic, "%s", topic);
        c->nsent = (c->nsent + 1) % 64;
    }
    pthread_mutex_unlock(&c->lock);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

struct wmsg *wconn_next(struct wconn *c, int ms)
{
    struct wmsg *g;

    pthread_mutex_lock(&c->lock);
    if (!c->head && ms > 0)
        wait_change(c, ms);
    if ((g = c->head)) {
        c->head = g->next;
        if (!c->head)
            c->tail = NULL;
        g->next = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    return g;
}

int wconn_connected(struct wconn *c)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = c->connected;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int wconn_denied(struct wconn *c, char *topic, size_t n)
{
    int d;

    pthread_mutex_lock(&c->lock);
    d = c->denied[0] != '\0';
    if (d)
        snprintf(topic, n, "%s", c->denied);
    pthread_mutex_unlock(&c->lock);
    return d;
}

unsigned wconn_reconnects(struct wconn *c)
{
    unsigned n;

    pthread_mutex_lock(&c->lock);
    n = c->reconnects;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void wmsg_free(struct wmsg *g)
{
    if (!g)
        return;
    free(g->topic);
    free(g->payload);
    free(g);
}

void wconn_close(struct wconn *c)
{
    struct wmsg *g;
    int i;

    if (!c)
        return;
    if (c->m) {
        if (c->ever) {
            double deadline = now_ms() + 2000;

            pthread_mutex_lock(&c->lock);   /* what was published last (bye) goes first */
            while (c->inflight > 0 && c->connected && now_ms() < deadline)
                wait_change(c, 100);
            pthread_mutex_unlock(&c->lock);
            /* A clean end: the session goes with the connection, the will is not sent. */
            mosquitto_property *props = NULL;
            mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
            mosquitto_disconnect_v5(c->m, 0, props);
            mosquitto_property_free_all(&props);
        }
        mosquitto_loop_stop(c->m, c->conn_rc == -1 || !c->ever);
        mosquitto_destroy(c->m);
    }
    while ((g = c->head)) {
        c->head = g->next;
        wmsg_free(g);
    }
    for (i = 0; i < c->nsubs; i++)
        free(c->subs[i]);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    mosquitto_lib_cleanup();
}
