/* cliconn.c: the command-line programs' own broker connection (cliconn.h).
 *
 * Mosquitto grants a subscription its ACL does not allow and then delivers nothing on
 * it, so a missing message may be the ACL too: the callers say so where it matters.
 * With a session kept (the job agent), a short break loses nothing in flight and a
 * Will Delay can be honoured: a reconnect within it cancels the will. */
#include "cliconn.h"

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
#define NSENT 64
/* How long an acknowledgement may take: the broker answers at once. */
#define ACK_MS 10000

struct cliconn {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int conn_rc;                /* -1 until the first CONNACK */
    int connected, ever, kept;  /* kept: a session kept across reconnects */
    unsigned reconnects;
    short acks[65536];          /* per packet id: 0 waiting, else reason code + 1 */
    struct climsg *head, *tail;
    char *subs[MAX_SUBS];       /* made again after a reconnect */
    int nsubs;
    int inflight;               /* publishes not yet acknowledged */
    struct { int mid; char topic[256]; } sent[NSENT];   /* the last publishes, by mid */
    int nsent;
    char denied[256];           /* a topic the broker's ACL refused, or "" */
    char host[256];
    int port;
};

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p)
{
    struct cliconn *c = obj;
    int i;

    pthread_mutex_lock(&c->lock);
    c->conn_rc = rc;
    c->connected = rc == 0;
    if (rc == 0 && c->ever) {   /* the broker may have lost the session: subscribe again */
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
    struct cliconn *c = obj;

    pthread_mutex_lock(&c->lock);
    c->connected = 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *p)
{
    struct cliconn *c = obj;
    int i;

    pthread_mutex_lock(&c->lock);
    c->acks[mid & 0xffff] = (short)(reason + 1);
    if (c->inflight > 0)
        c->inflight--;
    if (reason == MQTT_RC_NOT_AUTHORIZED && !c->denied[0]) {
        for (i = 0; i < NSENT; i++)
            if (c->sent[i].mid == mid && c->sent[i].topic[0])
                snprintf(c->denied, sizeof c->denied, "%s", c->sent[i].topic);
        if (!c->denied[0])
            snprintf(c->denied, sizeof c->denied, "a job topic");
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *p)
{
    struct cliconn *c = obj;

    pthread_mutex_lock(&c->lock);
    c->acks[mid & 0xffff] = (short)((n > 0 ? granted[0] : MQTT_RC_UNSPECIFIED) + 1);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *in,
                       const mosquitto_property *p)
{
    struct cliconn *c = obj;
    struct climsg *g = calloc(1, sizeof *g);

    if (!g || !(g->topic = strdup(in->topic)) || !(g->payload = malloc((size_t)in->payloadlen + 1))) {
        climsg_free(g);
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
static void wait_change(struct cliconn *c, double deadline)
{
    double now = util_now_exact_ms(), until = deadline < 0 || deadline - now > 200 ? now + 200 : deadline;
    struct timespec ts = util_deadline(CLOCK_MONOTONIC, (long long)(until - now));

    pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

/* The client and its options: callbacks, login, TLS, the Last Will. 0, or -1 with a
 * reason (*status CLI_USAGE when the fault is the configuration's). */
static int make_client(struct cliconn *c, const struct cliconn_opts *o, int *status,
                       char *err, size_t errlen)
{
    mosquitto_property *wprops = NULL;
    int rc;

    if (!(c->m = mosquitto_new(o->client_id, !c->kept, c))) {
        snprintf(err, errlen, "cannot make an MQTT client: %s", strerror(errno));
        return -1;
    }
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (o->tcp_nodelay)
        mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
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
        return -1;
    }
    if ((o->cafile || o->certfile) &&
        (rc = mosquitto_tls_set(c->m, o->cafile, NULL, o->certfile, o->keyfile, NULL))) {
        snprintf(err, errlen, "TLS with %s%s%s: %s", o->cafile ? o->cafile : "",
                 o->certfile ? " and " : "", o->certfile ? o->certfile : "", mosquitto_strerror(rc));
        *status = CLI_USAGE;
        return -1;
    }
    if (o->tls_insecure)
        mosquitto_tls_insecure_set(c->m, true);
    if (!o->will_topic)
        return 0;
    if (o->will_delay_s > 0)
        mosquitto_property_add_int32(&wprops, MQTT_PROP_WILL_DELAY_INTERVAL, (uint32_t)o->will_delay_s);
    if ((rc = mosquitto_will_set_v5(c->m, o->will_topic, (int)strlen(o->will_payload), o->will_payload,
                                    2, false, wprops))) {
        mosquitto_property_free_all(&wprops);
        snprintf(err, errlen, "last will: %s", mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

/* Connect, start the network thread, wait for the CONNACK until deadline. */
static int connect_wait(struct cliconn *c, const struct cliconn_opts *o, double deadline,
                        char *err, size_t errlen)
{
    mosquitto_property *props = NULL;
    int rc;

    if (c->kept)
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, (uint32_t)o->session_s);
    rc = mosquitto_connect_bind_v5(c->m, o->host, o->port, o->keepalive > 0 ? o->keepalive : 30,
                                   NULL, props);
    mosquitto_property_free_all(&props);
    if (rc) {
        snprintf(err, errlen, "cannot connect to the broker at %s:%d: %s", o->host, o->port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    if ((rc = mosquitto_loop_start(c->m))) {
        snprintf(err, errlen, "network thread: %s", mosquitto_strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&c->lock);
    while (c->conn_rc == -1 && util_now_exact_ms() < deadline)
        wait_change(c, deadline);
    rc = c->conn_rc;
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        return 0;
    if (rc > 0)
        snprintf(err, errlen, "the broker at %s:%d refused the connection: %s", o->host, o->port,
                 mosquitto_reason_string(rc));
    else
        snprintf(err, errlen, "the broker at %s:%d did not answer the connection", o->host, o->port);
    return -1;
}

void cliconn_opts_init(struct cliconn_opts *o, const struct cfg_client *cl)
{
    memset(o, 0, sizeof *o);
    o->host = cl->host;
    o->port = (int)cl->port;
    o->username = cl->username;
    o->password = cl->password;
    o->cafile = cl->cafile;
    o->certfile = cl->cert;
    o->keyfile = cl->key;
    o->tls_insecure = cl->insecure;
    o->debug = cl->debug;
}

struct cliconn *cliconn_open(const struct cliconn_opts *o, int *status, char *err, size_t errlen)
{
    struct cliconn *c = calloc(1, sizeof *c);
    pthread_condattr_t ca;
    double deadline = util_now_exact_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 10000);

    *status = CLI_CONNECT;
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
    c->kept = o->session_s > 0;
    snprintf(c->host, sizeof c->host, "%s", o->host);
    c->port = o->port;
    if (make_client(c, o, status, err, errlen) || connect_wait(c, o, deadline, err, errlen)) {
        cliconn_close(c);
        return NULL;
    }
    return c;
}

/* Lock held: wait for the acknowledgement of mid; its reason code, or -1 when the
 * connection broke or the deadline passed (*broke tells which). */
static int wait_ack(struct cliconn *c, int mid, double deadline, int *broke)
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

/* What the acknowledgement of a subscription (sub) or a publish on topic says: rc its
 * reason code, or -1 when the connection broke (broke) or no answer came. */
static int verdict(struct cliconn *c, int rc, int broke, int sub, const char *topic, char *err,
                   size_t errlen)
{
    if (rc < 0 && broke)
        snprintf(err, errlen, "lost the connection to the broker at %s:%d", c->host, c->port);
    else if (rc < 0)
        snprintf(err, errlen, "the broker at %s:%d did not %s", c->host, c->port,
                 sub ? "answer the subscription" : "acknowledge the publish");
    else if (rc == MQTT_RC_NOT_AUTHORIZED)
        snprintf(err, errlen, "refused by the broker's ACL: this user may not %s %s",
                 sub ? "read" : "publish on", topic);
    else if (rc >= 0x80)
        snprintf(err, errlen, "the broker refused the %s %s: %s", sub ? "subscription to" : "publish on",
                 topic, mosquitto_reason_string(rc));
    else
        return CLI_OK;
    return rc >= 0 ? CLI_REFUSED : broke ? CLI_CONNECT : CLI_NOANSWER;
}

int cliconn_subscribe(struct cliconn *c, const char *filter, char *err, size_t errlen)
{
    int mid = 0, rc, broke;

    pthread_mutex_lock(&c->lock);
    if (c->nsubs < MAX_SUBS && !(c->subs[c->nsubs] = strdup(filter))) {
        pthread_mutex_unlock(&c->lock);
        snprintf(err, errlen, "out of memory");
        return CLI_REFUSED;
    }
    if (c->nsubs < MAX_SUBS)
        c->nsubs++;
    rc = mosquitto_subscribe_v5(c->m, &mid, filter, 1, 0, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        c->acks[mid & 0xffff] = 0;      /* what an earlier use of the packet id left */
    if (rc == MOSQ_ERR_SUCCESS)
        rc = wait_ack(c, mid, util_now_exact_ms() + ACK_MS, &broke);
    else
        rc = -1, broke = 1;
    pthread_mutex_unlock(&c->lock);
    return verdict(c, rc, broke, 1, filter, err, errlen);
}

/* Lock held: publish, its packet id in *mid, remembered with its topic until acknowledged. */
static int publish_locked(struct cliconn *c, int *mid, const char *topic, const char *payload, int qos)
{
    int rc = mosquitto_publish_v5(c->m, mid, topic, (int)strlen(payload), payload, qos, false, NULL);

    if (rc == MOSQ_ERR_SUCCESS && qos > 0) {
        c->acks[*mid & 0xffff] = 0;
        c->inflight++;
        c->sent[c->nsent].mid = *mid;
        snprintf(c->sent[c->nsent].topic, sizeof c->sent[c->nsent].topic, "%s", topic);
        c->nsent = (c->nsent + 1) % NSENT;
    }
    return rc;
}

int cliconn_publish(struct cliconn *c, const char *topic, const char *payload, int qos)
{
    int rc, mid = 0;

    pthread_mutex_lock(&c->lock);
    rc = publish_locked(c, &mid, topic, payload, qos);
    pthread_mutex_unlock(&c->lock);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int cliconn_publish_wait(struct cliconn *c, const char *topic, const char *payload, int qos,
                         int no_subscribers_fails, char *err, size_t errlen)
{
    int mid = 0, rc, broke;

    pthread_mutex_lock(&c->lock);
    rc = publish_locked(c, &mid, topic, payload, qos);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = wait_ack(c, mid, util_now_exact_ms() + ACK_MS, &broke);
    else
        rc = -1, broke = 1;
    pthread_mutex_unlock(&c->lock);
    if (rc == MQTT_RC_NO_MATCHING_SUBSCRIBERS && no_subscribers_fails) {
        snprintf(err, errlen, "no one listens on %s: no mosqlite-writer is running on this "
                 "broker with this prefix", topic);
        return CLI_NOANSWER;
    }
    return verdict(c, rc, broke, 0, topic, err, errlen);
}

int cliconn_denied(struct cliconn *c, char *topic, size_t n)
{
    int d;

    pthread_mutex_lock(&c->lock);
    d = c->denied[0] != '\0';
    if (d)
        snprintf(topic, n, "%s", c->denied);
    pthread_mutex_unlock(&c->lock);
    return d;
}

struct climsg *cliconn_wait(struct cliconn *c, const char *topic, double deadline_ms,
                            volatile sig_atomic_t *stop, int *lost)
{
    struct climsg *g = NULL, *prev;

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

struct climsg *cliconn_next(struct cliconn *c, int ms)
{
    return cliconn_wait(c, NULL, util_now_exact_ms() + (ms > 0 ? ms : 0), NULL, NULL);
}

int cliconn_connected(struct cliconn *c)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = c->connected;
    pthread_mutex_unlock(&c->lock);
    return n;
}

unsigned cliconn_reconnects(struct cliconn *c)
{
    unsigned n;

    pthread_mutex_lock(&c->lock);
    n = c->reconnects;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void climsg_free(struct climsg *g)
{
    if (!g)
        return;
    free(g->topic);
    free(g->payload);
    free(g);
}

/* A session kept: what was published last (the agent's bye) goes first, then a clean
 * end: the session goes with the connection, the will is not sent. */
static void disconnect_kept(struct cliconn *c)
{
    double deadline = util_now_exact_ms() + 2000;
    mosquitto_property *props = NULL;

    pthread_mutex_lock(&c->lock);
    while (c->inflight > 0 && c->connected && util_now_exact_ms() < deadline)
        wait_change(c, deadline);
    pthread_mutex_unlock(&c->lock);
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
    mosquitto_disconnect_v5(c->m, 0, props);
    mosquitto_property_free_all(&props);
}

void cliconn_close(struct cliconn *c)
{
    struct climsg *g;
    int i;

    if (!c)
        return;
    if (c->m) {
        if (c->ever && c->kept)
            disconnect_kept(c);
        else if (c->ever)
            mosquitto_disconnect_v5(c->m, 0, NULL);
        mosquitto_loop_stop(c->m, c->conn_rc == -1 || !c->ever);
        mosquitto_destroy(c->m);
    }
    while ((g = c->head)) {
        c->head = g->next;
        climsg_free(g);
    }
    for (i = 0; i < c->nsubs; i++)
        free(c->subs[i]);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    mosquitto_lib_cleanup();
}
