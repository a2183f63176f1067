/* conn.c: the console's broker connection and the waiting for answers (console.h).
 *
 * One MQTT 5 connection with a clean session, run by libmosquitto's network thread.
 * Its callbacks only record what came (acknowledgements by packet id, messages in a
 * queue) under a lock and signal a condition variable; the command's thread waits on
 * it. MQTT 5 reason codes tell a refusal apart: PUBACK/PUBREC 0x87 is the broker's ACL,
 * 0x10 means no one subscribes to the topic (no writer listening). Mosquitto grants a
 * subscription its ACL does not allow and then delivers nothing on it, so a missing
 * message may be the ACL too: the commands say so where it matters. */
#include "console.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define MAX_SUBS 16

struct conn {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int conn_rc;                /* -1 until the first CONNACK */
    int connected, ever;
    unsigned reconnects;
    short acks[65536];          /* per packet id: 0 waiting, else reason code + 1 */
    struct msg *head, *tail;
    char *subs[MAX_SUBS];       /* made again after a reconnect */
    int nsubs;
    char host[256];
    int port;
};

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
    struct conn *c = obj;
    int i;

    pthread_mutex_lock(&c->lock);
    c->conn_rc = rc;
    c->connected = rc == 0;
    if (rc == 0 && c->ever) {   /* a clean session: subscribe again */
        c->reconnects++;
        for (i = 0; i < c->nsubs; i++)
            mosquitto_subscribe_v5(m, NULL, c->subs[i], 1, 0, NULL);
    }
    if (rc == 0)
        c->ever = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p)
{
    struct conn *c = obj;

    pthread_mutex_lock(&c->lock);
    c->connected = 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void ack(struct conn *c, int mid, int reason)
{
    pthread_mutex_lock(&c->lock);
    c->acks[mid & 0xffff] = (short)(reason + 1);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *p)
{
    ack(obj, mid, reason);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *p)
{
    ack(obj, mid, n > 0 ? granted[0] : MQTT_RC_UNSPECIFIED);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *in,
                       const mosquitto_property *p)
{
    struct conn *c = obj;
    struct msg *g = calloc(1, sizeof *g);

    if (!g || !(g->topic = strdup(in->topic)) || !(g->payload = malloc((size_t)in->payloadlen + 1))) {
        msg_free(g);
        return;                 /* out of memory: as if it never came */
    }
    memcpy(g->payload, in->payload, (size_t)in->payloadlen);
    g->payload[in->payloadlen] = '\0';
    g->len = (size_t)in->payloadlen;
    g->retained = in->retain;
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

/* Lock held: wait for a change, at most until deadline (< 0: 200 ms). */
static void wait_change(struct conn *c, double deadline)
{
    double now = util_now_exact_ms(), until = deadline < 0 || deadline - now > 200 ? now + 200 : deadline;
    struct timespec ts = util_deadline(CLOCK_MONOTONIC, (long long)(until - now));

    pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

struct conn *conn_open(const struct conn_opts *o, int *exit_code, char *err, size_t errlen)
{
    struct conn *c = calloc(1, sizeof *c);
    pthread_condattr_t ca;
    double deadline = util_now_exact_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 10000);
    int rc;

    *exit_code = EX_CONNECT;
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
    snprintf(c->host, sizeof c->host, "%s", o->host);
    c->port = o->port;
    if (!(c->m = mosquitto_new(o->client_id, true, c))) {
        snprintf(err, errlen, "cannot make an MQTT client: %s", strerror(errno));
        goto fail;
    }
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    mosquitto_publish_v5_callback_set(c->m, on_publish);
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
    mosquitto_message_v5_callback_set(c->m, on_message);
    mosquitto_reconnect_delay_set(c->m, 1, 4, true);
    if (o->debug)
        mosquitto_log_callback_set(c->m, on_log);
    if (o->username && (rc = mosquitto_username_pw_set(c->m, o->username, o->password))) {
        snprintf(err, errlen, "username: %s", mosquitto_strerror(rc));
        goto fail;
    }
    if ((o->cafile || o->certfile) &&
        (rc = mosquitto_tls_set(c->m, o->cafile, NULL, o->certfile, o->keyfile, NULL))) {
        snprintf(err, errlen, "TLS with %s%s%s: %s", o->cafile ? o->cafile : "",
                 o->certfile ? " and " : "", o->certfile ? o->certfile : "", mosquitto_strerror(rc));
        *exit_code = EX_USAGE;
        goto fail;
    }
    if (o->tls_insecure)
        mosquitto_tls_insecure_set(c->m, true);
    rc = mosquitto_connect_bind_v5(c->m, o->host, o->port, 30, NULL, NULL);
    if (rc) {
        snprintf(err, errlen, "cannot connect to the broker at %s:%d: %s", o->host, o->port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto fail;
    }
    if ((rc = mosquitto_loop_start(c->m))) {
        snprintf(err, errlen, "network thread: %s", mosquitto_strerror(rc));
        goto fail;
    }
    pthread_mutex_lock(&c->lock);
    while (c->conn_rc == -1 && util_now_exact_ms() < deadline)
        wait_change(c, deadline);
    rc = c->conn_rc;
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        return c;
    if (rc > 0)
        snprintf(err, errlen, "the broker at %s:%d refused the connection: %s", o->host, o->port,
                 mosquitto_reason_string(rc));
    else
        snprintf(err, errlen, "the broker at %s:%d did not answer the connection", o->host, o->port);
fail:
    conn_close(c);
    return NULL;
}

/* Lock held: wait for the acknowledgement of mid; its reason code, or -1 when the
 * connection broke or the deadline passed (*broke tells which). */
static int wait_ack(struct conn *c, int mid, double deadline, int *broke)
{
    int r;

    *broke = 0;
    while (!c->acks[mid & 0xffff]) {
        if (!c->connected) {
            *broke = 1;
            return -1;
        }
        if (deadline >= 0 && util_now_exact_ms() >= deadline)
            return -1;
        wait_change(c, deadline);
    }
    r = c->acks[mid & 0xffff] - 1;
    c->acks[mid & 0xffff] = 0;
    return r;
}

/* How long an acknowledgement may take: the broker answers at once. */
#define ACK_MS 10000

int conn_subscribe(struct conn *c, const char *filter, char *err, size_t errlen)
{
    int mid = 0, rc, broke;

    pthread_mutex_lock(&c->lock);
    if (c->nsubs < MAX_SUBS && !(c->subs[c->nsubs] = strdup(filter))) {
        pthread_mutex_unlock(&c->lock);
        snprintf(err, errlen, "out of memory");
        return EX_FAILED;
    }
    if (c->nsubs < MAX_SUBS)
        c->nsubs++;
    rc = mosquitto_subscribe_v5(c->m, &mid, filter, 1, 0, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = wait_ack(c, mid, util_now_exact_ms() + ACK_MS, &broke);
    else
        rc = -1, broke = 1;
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        snprintf(err, errlen, broke ? "lost the connection to the broker at %s:%d" :
                 "the broker at %s:%d did not answer the subscription", c->host, c->port);
        return broke ? EX_CONNECT : EX_NOANSWER;
    }
    if (rc == MQTT_RC_NOT_AUTHORIZED) {
        snprintf(err, errlen, "refused by the broker's ACL: this user may not read %s", filter);
        return EX_FAILED;
    }
    if (rc >= 0x80) {
        snprintf(err, errlen, "the broker refused the subscription to %s: %s", filter,
                 mosquitto_reason_string(rc));
        return EX_FAILED;
    }
    return EX_DONE;
}

int conn_publish(struct conn *c, const char *topic, const char *payload, int qos,
                 int no_subscribers_fails, char *err, size_t errlen)
{
    int mid = 0, rc, broke;

    pthread_mutex_lock(&c->lock);
    rc = mosquitto_publish_v5(c->m, &mid, topic, (int)strlen(payload), payload, qos, false, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = wait_ack(c, mid, util_now_exact_ms() + ACK_MS, &broke);
    else
        rc = -1, broke = 1;
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        snprintf(err, errlen, broke ? "lost the connection to the broker at %s:%d" :
                 "the broker at %s:%d did not acknowledge the publish", c->host, c->port);
        return broke ? EX_CONNECT : EX_NOANSWER;
    }
    if (rc == MQTT_RC_NOT_AUTHORIZED) {
        snprintf(err, errlen, "refused by the broker's ACL: this user may not publish on %s", topic);
        return EX_FAILED;
    }
    if (rc == MQTT_RC_NO_MATCHING_SUBSCRIBERS && no_subscribers_fails) {
        snprintf(err, errlen, "no one listens on %s: no mosqlite-writer is running on this "
                 "broker with this prefix", topic);
        return EX_NOANSWER;
    }
    if (rc >= 0x80) {
        snprintf(err, errlen, "the broker refused the publish on %s: %s", topic,
                 mosquitto_reason_string(rc));
        return EX_FAILED;
    }
    return EX_DONE;
}

struct msg *conn_wait(struct conn *c, const char *topic, double deadline_ms,
                      volatile sig_atomic_t *stop, int *lost)
{
    struct msg *g = NULL, *prev;

    if (lost)
        *lost = 0;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        for (prev = NULL, g = c->head; g; prev = g, g = g->next)
            if (!topic || !strcmp(g->topic, topic))
                break;
        if (g) {
            if (prev)
                prev->next = g->next;
            else
                c->head = g->next;
            if (c->tail == g)
                c->tail = prev;
            g->next = NULL;
            break;
        }
        if ((stop && *stop) || (deadline_ms >= 0 && util_now_exact_ms() >= deadline_ms))
            break;
        if (!c->connected && lost) {
            *lost = 1;
            break;
        }
        wait_change(c, deadline_ms);
    }
    pthread_mutex_unlock(&c->lock);
    return g;
}

unsigned conn_reconnects(struct conn *c)
{
    unsigned n;

    pthread_mutex_lock(&c->lock);
    n = c->reconnects;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void msg_free(struct msg *g)
{
    if (!g)
        return;
    free(g->topic);
    free(g->payload);
    free(g);
}

void conn_close(struct conn *c)
{
    struct msg *g;
    int i;

    if (!c)
        return;
    if (c->m) {
        if (c->ever)
            mosquitto_disconnect_v5(c->m, 0, NULL);
        mosquitto_loop_stop(c->m, c->conn_rc == -1 || !c->ever);
        mosquitto_destroy(c->m);
    }
    while ((g = c->head)) {
        c->head = g->next;
        msg_free(g);
    }
    for (i = 0; i < c->nsubs; i++)
        free(c->subs[i]);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    mosquitto_lib_cleanup();
}
