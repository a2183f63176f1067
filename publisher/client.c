/* client.c: the publisher's connection: options, connect (MQTT v5, a persistent
 * session so libmosquitto can resend what was in flight after a reconnect), the
 * subscription to the reply topic, and close.
 *
 * libmosquitto runs the network in its own thread (mosquitto_loop_start), which also
 * reconnects after a broken connection. Its callbacks only update the client under
 * its lock and signal a condition variable; everything that takes time or calls the
 * user happens in the caller's thread (see window.c). */
#include "internal.h"

#include <cJSON.h>
#include <errno.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "util.h"

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

/* -d: libmosquitto's own log lines, as mosquitto_pub -d prints them. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
}

/* ---- public API ---- */

/* The defaults of mosqlite_options_init, also taken for an option left at 0. */
#define DEFAULT_WINDOW       1000
#define DEFAULT_WINDOW_BYTES (16u << 20)
#define DEFAULT_TIMEOUT_MS   30000
#define DEFAULT_RETRY_MS     2000

void mosqlite_options_init(struct mosqlite_options *o)
{
    memset(o, 0, sizeof *o);
    o->port = MOSQLITE_DEFAULT_PORT;
    o->window = DEFAULT_WINDOW;
    o->window_bytes = DEFAULT_WINDOW_BYTES;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->retry_ms = DEFAULT_RETRY_MS;
    o->keepalive = MOSQLITE_DEFAULT_KEEPALIVE;
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
    c->port = o->port > 0 ? o->port : MOSQLITE_DEFAULT_PORT;
    c->receipts = o->receipts;
    c->window = o->window > 0 ? o->window : DEFAULT_WINDOW;
    c->window_bytes = o->window_bytes > 0 ? o->window_bytes : DEFAULT_WINDOW_BYTES;
    c->timeout_ms = o->timeout_ms >= 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->retry_ms = o->retry_ms > 0 ? o->retry_ms : DEFAULT_RETRY_MS;
    c->keepalive = o->keepalive > 0 ? o->keepalive : MOSQLITE_DEFAULT_KEEPALIVE;
    c->host = dupornull(o->host ? o->host : MOSQLITE_DEFAULT_HOST, &bad);
    c->username = dupornull(o->username, &bad);
    c->password = dupornull(o->password, &bad);
    c->cafile = dupornull(o->cafile, &bad);
    c->certfile = dupornull(o->certfile, &bad);
    c->keyfile = dupornull(o->keyfile, &bad);
    c->tls_insecure = o->tls_insecure;
    c->prefix = dupornull(o->prefix ? o->prefix : MOSQLITE_DEFAULT_PREFIX, &bad);
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
    mosquitto_publish_v5_callback_set(c->mosq, mosqlite__on_publish);
    mosquitto_message_v5_callback_set(c->mosq, mosqlite__on_message);
    mosquitto_reconnect_delay_set(c->mosq, 1, 4, true);
    if (o->debug)
        mosquitto_log_callback_set(c->mosq, on_log);
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

int mosqlite_set_in_order(mosqlite_client *c, int on)
{
    if (on && !c->receipts)
        return mosqlite__seterr(c, MOSQLITE_ESTATE, "in order needs receipts");
    pthread_mutex_lock(&c->lock);
    c->in_order = on != 0;
    c->has_last = 0;
    pthread_mutex_unlock(&c->lock);
    return MOSQLITE_OK;
}

int mosqlite_set_will(mosqlite_client *c, const char *table, const char *json, int delay_s)
{
    mosquitto_property *props = NULL;
    cJSON *o;
    char *topic;
    size_t tlen;
    int rc, object;

    if (c->started)
        return mosqlite__seterr(c, MOSQLITE_ESTATE, "the will is set before connecting");
    if (table && *table && strpbrk(table, "/+#"))
        return mosqlite__seterr(c, MOSQLITE_EINVAL, "table name \"%s\" has a character not allowed in a topic", table);
    if (delay_s < 0 || delay_s > 3600)
        return mosqlite__seterr(c, MOSQLITE_EINVAL, "will delay %d s: must be 0 to 3600", delay_s);
    o = json ? cJSON_Parse(json) : NULL;
    object = cJSON_IsObject(o);
    cJSON_Delete(o);
    if (!object)
        return mosqlite__seterr(c, MOSQLITE_EINVAL, "the will is not a JSON object");
    tlen = strlen(c->prefix) + (table ? strlen(table) : 0) + 8;
    if (!(topic = malloc(tlen)))
        return mosqlite__seterr(c, MOSQLITE_ENOMEM, "out of memory");
    snprintf(topic, tlen, table && *table ? "%s/write/%s" : "%s/write", c->prefix, table);
    if (delay_s > 0)
        mosquitto_property_add_int32(&props, MQTT_PROP_WILL_DELAY_INTERVAL, (uint32_t)delay_s);
    rc = mosquitto_will_set_v5(c->mosq, topic, (int)strlen(json), json, 2, false, props);
    free(topic);
    if (rc) {
        mosquitto_property_free_all(&props);
        return mosqlite__seterr(c, rc == MOSQ_ERR_NOMEM ? MOSQLITE_ENOMEM : MOSQLITE_EINVAL,
                                "will: %s", mosquitto_strerror(rc));
    }
    return MOSQLITE_OK;
}

int mosqlite_connect(mosqlite_client *c)
{
    mosquitto_property *props = NULL;
    double deadline = util_now_exact_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 10000);
    int rc;

    if (c->started)
        return mosqlite__seterr(c, MOSQLITE_ESTATE, "already connected");
    if (c->username && (rc = mosquitto_username_pw_set(c->mosq, c->username, c->password)))
        return mosqlite__seterr(c, MOSQLITE_ECONNECT, "username: %s", mosquitto_strerror(rc));
    if ((c->cafile || c->certfile) &&
        (rc = mosquitto_tls_set(c->mosq, c->cafile, NULL, c->certfile, c->keyfile, NULL)))
        return mosqlite__seterr(c, MOSQLITE_ECONNECT, "TLS with %s%s%s: %s",
                                c->cafile ? c->cafile : "", c->certfile ? " and " : "",
                                c->certfile ? c->certfile : "", mosquitto_strerror(rc));
    if (c->tls_insecure && (rc = mosquitto_tls_insecure_set(c->mosq, true)))
        return mosqlite__seterr(c, MOSQLITE_ECONNECT, "--insecure: %s", mosquitto_strerror(rc));
    /* Keep the session (and what is in flight) across reconnects for 10 minutes. */
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 600);
    c->conn_rc = -1;
    rc = mosquitto_connect_bind_v5(c->mosq, c->host, c->port, c->keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc)
        return mosqlite__seterr(c, MOSQLITE_ECONNECT, "cannot connect to %s:%d: %s", c->host, c->port,
                      rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    if ((rc = mosquitto_loop_start(c->mosq)))
        return mosqlite__seterr(c, MOSQLITE_ECONNECT, "network thread: %s", mosquitto_strerror(rc));
    c->started = 1;
    pthread_mutex_lock(&c->lock);
    while ((c->conn_rc == -1 || (c->connected && c->receipts && !c->subscribed)) &&
           util_now_exact_ms() < deadline)
        mosqlite__step(c, 50);
    rc = c->connected && (!c->receipts || c->subscribed);
    if (!rc && c->conn_rc > 0)
        mosqlite__seterr(c, MOSQLITE_ECONNECT, "broker %s:%d refused the connection: %s", c->host,
               c->port, mosquitto_reason_string(c->conn_rc));
    else if (!rc)
        mosqlite__seterr(c, MOSQLITE_ECONNECT, "broker %s:%d did not answer%s", c->host, c->port,
               c->connected ? " the subscription to the reply topic" : "");
    pthread_mutex_unlock(&c->lock);
    return rc ? MOSQLITE_OK : MOSQLITE_ECONNECT;
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
    free(c->certfile);
    free(c->keyfile);
    free(c->prefix);
    free(c->client_id);
    free(c->reply_topic);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    mosquitto_lib_cleanup();
}
