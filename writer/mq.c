/* mq.c: the writer's two MQTT connections (see mq.h): created, their callbacks, the
 * request queue, publishing, freed. The loop that drives them is mq_loop.c, fencing
 * mq_fence.c, the record of the request session's subscriptions mq_session.c; they
 * share mq_int.h. */
#include "mq_int.h"

#include <errno.h>
#include <mqtt_protocol.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Where the caller's room starts in a message: after the struct, aligned for any type. */
#define APP_OFFSET ((sizeof(struct msg) + alignof(max_align_t) - 1) / alignof(max_align_t) * \
                    alignof(max_align_t))

/* MQTT 3.1.1 has no reason for a session taken over: the broker just closes the
 * connection. So many closes in a row (not protocol errors, which a resumed session
 * can meet a few times and get over), each this soon after CONNACK, mean the same. */
#define TAKEOVER_DROPS   5
#define TAKEOVER_SOON_MS 1000

/* The broker names its version on this retained topic (when its $SYS tree is on); the
 * status shows it. */
#define VERSION_TOPIC   "$SYS/broker/version"

/* on_version: "mosquitto version 2.0.21" on $SYS/broker/version. */
static void on_version(struct mq *mq, const char *payload, int len)
{
    static const char pre[] = "mosquitto version ";
    size_t n = sizeof pre - 1;
    int i;

    if (len <= (int)n || strncmp(payload, pre, n))
        return;
    for (i = 0; (size_t)i < sizeof mq->broker_version - 1 && (int)n + i < len; i++) {
        char ch = payload[n + (size_t)i];
        if (!((ch >= '0' && ch <= '9') || ch == '.'))
            break;
        mq->broker_version[i] = ch;
    }
    mq->broker_version[i] = '\0';
    mq->ctl_new = 1;    /* the status shows it */
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *p)
{
    struct mq *mq = ud;
    struct conn *c = m == mq->sub.m ? &mq->sub : &mq->ctl;

    if (rc) {
        log_error("broker refused the %s connection: %s", c->name, mosquitto_reason_string(rc));
        c->state = DOWN;
        return;
    }
    c->state = UP;
    c->ever = 1;
    c->backoff = 0;
    if (c == &mq->sub)
        mq->sub_up_ms = util_now_ms();
    log_info("%s connection up (%s:%d)%s", c->name, mq->o.host, mq->o.port,
             c == &mq->sub && (flags & 1) ? ", session resumed" : "");
    if (c == &mq->sub) {
        mq->sub_ready = 0;
        if (!(flags & 1))
            mq->subscribed = 0;     /* a new session: nothing subscribed */
        if (mq->subscribed) {
            mq_record_write(mq);
            mq->sub_ready = 1;
            mq->ctl_new = 1;        /* the status can say online again */
        } else {
            if (flags & 1)
                log_info("the request session was kept by the broker, but this writer has no record "
                         "of its subscriptions being acknowledged: subscribing");
            mq_subscribe_requests(mq);
        }
    }
    else {
        mosquitto_subscribe_v5(m, NULL, VERSION_TOPIC, 0, 0, NULL);
        for (int i = 0; i < mq->nlisten; i++)
            mosquitto_subscribe_v5(m, NULL, mq->listen[i], 1, 0, NULL);
        /* Fencing: the retained status and the changes, then the marker after them. */
        mosquitto_subscribe_v5(m, NULL, mq->status_topic, 1, 0, NULL);
        mosquitto_subscribe_v5(m, NULL, mq->changes_topic, 0, 0, NULL);
        mosquitto_subscribe_v5(m, NULL, mq->fence_topic, 1, 0, NULL);
        snprintf(mq->token, sizeof mq->token, "%ld-%u", (long)getpid(), ++mq->ntoken);
        mq->synced = 0;
        mq->sync_sent_ms = util_now_ms();
        mosquitto_publish_v5(m, NULL, mq->fence_topic, (int)strlen(mq->token), mq->token, 1, false, NULL);
    }
}

static void on_unsubscribe(struct mosquitto *m, void *ud, int mid, const mosquitto_property *p)
{
    struct mq *mq = ud;

    if (m == mq->sub.m && mid == mq->marker_mid)
        mq->marker_mid = 0;
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc, const mosquitto_property *p)
{
    struct mq *mq = ud;
    struct conn *c = m == mq->sub.m ? &mq->sub : &mq->ctl;

    if (c == &mq->sub && c->state == UP && c->wanted && mq->proto == MQ_PROTO_311)
        mq->quick_drops = rc == MOSQ_ERR_CONN_LOST && util_now_ms() - mq->sub_up_ms < TAKEOVER_SOON_MS
                          ? mq->quick_drops + 1 : 0;
    if (rc == MQTT_RC_SESSION_TAKEN_OVER || mq->quick_drops >= TAKEOVER_DROPS) {
        if (!mq->taken_over)
            log_error("the %s session was taken over by another client with client id %s%s "
                      "(another mosqlite-writer?): stopping, so as not to fight over it",
                      c->name, mq->o.client_id, c == &mq->ctl ? "-ctl" : "");
        mq->taken_over = 1;
        mq->sub.wanted = mq->ctl.wanted = 0;
    } else if (c->state == UP && (rc || c->wanted)) {
        log_warn("%s connection lost: %s", c->name, mosquitto_strerror(rc));
    }
    c->state = DOWN;
    if (c == &mq->ctl)
        mq->synced = 0;
}

static void read_props(const mosquitto_property *props, char **rt, void **corr, uint16_t *corrlen)
{
    *rt = NULL;
    *corr = NULL;
    *corrlen = 0;
    if (!props)
        return;
    mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, rt, false);
    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, corr, corrlen, false);
}

/* A message in one allocation, appended to the queue. 0, or -1 when out of memory. */
static int enqueue(struct mq *mq, const char *topic, const void *payload, size_t len, int retained,
                   const char *rt, const void *corr, int corrlen, const char *sched_id)
{
    size_t tlen = strlen(topic) + 1, rtlen = rt ? strlen(rt) + 1 : 0;
    size_t slen = sched_id ? strlen(sched_id) + 1 : 0;
    size_t need = APP_OFFSET + mq->o.app_size + tlen + len + 1 + rtlen + (size_t)corrlen + slen;
    struct msg *msg;
    char *p;

    if (!(msg = calloc(1, need)))
        return -1;
    p = (char *)msg + APP_OFFSET;
    msg->app = mq->o.app_size ? p : NULL;
    p += mq->o.app_size;
    msg->topic = p;
    memcpy(p, topic, tlen);
    p += tlen;
    msg->payload = p;
    msg->len = len;
    msg->retained = retained;
    if (len)
        memcpy(p, payload, len);
    p[len] = '\0';
    p += len + 1;
    if (rt) {
        msg->resp_topic = p;
        memcpy(p, rt, rtlen);
        p += rtlen;
    }
    if (corr && corrlen > 0) {
        msg->corr = p;
        msg->corrlen = corrlen;
        memcpy(p, corr, (size_t)corrlen);
        p += corrlen;
    }
    if (sched_id) {
        msg->sched_id = p;
        memcpy(p, sched_id, slen);
        mq->ninjected++;
    }
    *mq->tail = msg;
    mq->tail = &msg->next;
    mq->nq++;
    return 0;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *in,
                       const mosquitto_property *props)
{
    struct mq *mq = ud;
    char *rt;
    void *corr;
    uint16_t corrlen;

    read_props(props, &rt, &corr, &corrlen);
    if (m == mq->ctl.m) {
        if (!strcmp(in->topic, VERSION_TOPIC))
            on_version(mq, in->payload, in->payloadlen);
        else if (!strcmp(in->topic, mq->status_topic) || !strcmp(in->topic, mq->changes_topic) ||
                 !strcmp(in->topic, mq->fence_topic))
            mq_watch(mq, in);
        else
            mq->on_ctl(mq->ud, in->topic, in->payload, (size_t)in->payloadlen, rt, corr, corrlen);
        goto out;
    }
    if (enqueue(mq, in->topic, in->payload, (size_t)in->payloadlen, in->retain, rt, corr, corrlen, NULL))
        log_error("out of memory: a request from %s was not queued", in->topic);
out:
    free(rt);
    free(corr);
}

int mq_inject(struct mq *mq, const char *topic, const char *payload, size_t len, const char *resp_topic,
              const void *corr, int corrlen, const char *sched_id)
{
    return enqueue(mq, topic, payload, len, 0, resp_topic, corr, corrlen, sched_id);
}

size_t mq_injected(const struct mq *mq)
{
    return mq->ninjected;
}

static int setup(struct mq *mq, struct conn *c, const char *id, int persistent, char *err, size_t errlen)
{
    const struct mq_opts *o = &mq->o;

    c->m = mosquitto_new(id, !persistent, mq);
    if (!c->m) {
        snprintf(err, errlen, "cannot create MQTT client %s: %s", id, strerror(errno));
        return -1;
    }
    /* The request session's version is set when it first connects (try_connect). */
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    /* Outgoing packets wait for mosquitto_loop_write(): the writer decides when its
     * acknowledgements leave (see mq_quiesce). */
    mosquitto_threaded_set(c->m, true);
    mosquitto_unsubscribe_v5_callback_set(c->m, on_unsubscribe);
    mosquitto_subscribe_v5_callback_set(c->m, mq_on_subscribe);
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(c->m, MOSQ_OPT_RECEIVE_MAXIMUM, mq->o.receive_max);
    mosquitto_max_inflight_messages_set(c->m, 0);
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    mosquitto_message_v5_callback_set(c->m, on_message);
    if (o->username && mosquitto_username_pw_set(c->m, o->username, o->password)) {
        snprintf(err, errlen, "bad username or password");
        return -1;
    }
    if (o->cafile) {
        int rc = mosquitto_tls_set(c->m, o->cafile, NULL, NULL, NULL, NULL);
        if (rc) {
            snprintf(err, errlen, "TLS with %s: %s", o->cafile, mosquitto_strerror(rc));
            return -1;
        }
    }
    c->wanted = 1;
    return 0;
}

struct mq *mq_new(const struct mq_opts *o, const char *will_payload, mq_ctl_fn on_ctl,
                  void *ud, char *err, size_t errlen)
{
    struct mq *mq = calloc(1, sizeof *mq);
    char *ctl_id;
    int rc;

    if (!mq) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mq->o = *o;
    mq->proto = o->request_proto == MQ_PROTO_5 ? MQ_PROTO_5 : MQ_PROTO_311;
    mq->tail = &mq->head;
    mq->on_ctl = on_ctl;
    mq->ud = ud;
    mq->sub.name = "request";
    mq->ctl.name = "control";
    mq->write_filter = util_join(o->prefix, "/write/#");
    mq->jobs_filter = util_join(o->prefix, "/jobs/+");
    mq->status_topic = util_join(o->prefix, "/status");
    mq->marker_filter = util_join(o->prefix, "/write/.mosqlite-writer-marker");
    mq->changes_topic = util_join(o->prefix, "/changes");
    if (o->epoch > 1) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "-ctl-%lld", o->epoch);
        ctl_id = util_join(o->client_id, suffix);
    } else {
        ctl_id = util_join(o->client_id, "-ctl");
    }
    if (ctl_id) {
        size_t n = strlen(o->prefix) + strlen(ctl_id) + 16;
        if ((mq->fence_topic = malloc(n)))
            snprintf(mq->fence_topic, n, "%s/reply/%s/fence", o->prefix, ctl_id);
    }
    if (!mq->write_filter || !mq->jobs_filter || !mq->status_topic || !mq->marker_filter || !ctl_id || !mq->changes_topic ||
        !mq->fence_topic) {
        free(ctl_id);
        snprintf(err, errlen, "out of memory");
        mq_free(mq);
        return NULL;
    }
    if (o->session_record) {
        size_t n = strlen(o->client_id) + strlen(o->host) + strlen(mq->write_filter) +
                   strlen(mq->jobs_filter) + 128;
        if (!(mq->record = malloc(n))) {
            free(ctl_id);
            snprintf(err, errlen, "out of memory");
            mq_free(mq);
            return NULL;
        }
        snprintf(mq->record, n, "mosqlite-writer request session\nclient-id %s\nbroker %s:%d\n"
                 "protocol %s\nsubscribed %s %s\n", o->client_id, o->host, o->port,
                 mq_request_protocol(mq), mq->write_filter, mq->jobs_filter);
        mq->subscribed = mq_record_matches(mq);
    }
    rc = setup(mq, &mq->sub, o->client_id, 1, err, errlen) ||
         setup(mq, &mq->ctl, ctl_id, 0, err, errlen);
    free(ctl_id);
    if (rc) {
        mq_free(mq);
        return NULL;
    }
    rc = mosquitto_will_set_v5(mq->ctl.m, mq->status_topic, (int)strlen(will_payload), will_payload, 1, true, NULL);
    if (rc) {
        snprintf(err, errlen, "setting the Last Will: %s", mosquitto_strerror(rc));
        mq_free(mq);
        return NULL;
    }
    return mq;
}

struct msg *mq_head(struct mq *mq)
{
    return mq->head;
}

size_t mq_queued(const struct mq *mq)
{
    return mq->nq;
}

void mq_drop(struct mq *mq, size_t n)
{
    while (n-- && mq->head) {
        struct msg *m = mq->head;
        mq->head = m->next;
        if (m->sched_id)
            mq->ninjected--;
        free(m);
        mq->nq--;
    }
    if (!mq->head)
        mq->tail = &mq->head;
}

int mq_publish(struct mq *mq, const char *topic, const void *payload, size_t len, int qos,
               int retain, const void *corr, int corrlen)
{
    mosquitto_property *props = NULL;
    int rc;

    if (mq->capture)
        return mq->capture(mq->capture_ud, topic, payload, len, qos, retain, corr, corrlen);
    if (qos == 0 && mq->ctl.state != UP)
        return -1;
    if (corr && corrlen > 0)
        mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, (uint16_t)corrlen);
    rc = mosquitto_publish_v5(mq->ctl.m, NULL, topic, (int)len, payload, qos, retain, props);
    mosquitto_property_free_all(&props);
    if (rc && rc != MOSQ_ERR_NO_CONN) {
        log_warn("publishing to %s: %s", topic, mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

void mq_capture(struct mq *mq, mq_capture_fn fn, void *ud)
{
    mq->capture = fn;
    mq->capture_ud = ud;
}

void mq_free(struct mq *mq)
{
    struct conn *cs[2];
    int i;

    if (!mq)
        return;
    cs[0] = &mq->sub;
    cs[1] = &mq->ctl;
    for (i = 0; i < 2; i++) {
        if (!cs[i]->m)
            continue;
        cs[i]->wanted = 0;    /* closing on purpose: not a lost connection */
        if (cs[i]->state == UP && !(i == 0 && mq->frozen)) {
            mosquitto_disconnect_v5(cs[i]->m, 0, NULL);
            mosquitto_loop_write(cs[i]->m, 1);
        }
        mosquitto_destroy(cs[i]->m);
    }
    mq_drop(mq, mq->nq);
    for (i = 0; i < mq->nlisten; i++)
        free(mq->listen[i]);
    free(mq->write_filter);
    free(mq->jobs_filter);
    free(mq->status_topic);
    free(mq->marker_filter);
    free(mq->record);
    free(mq->changes_topic);
    free(mq->fence_topic);
    free(mq);
}

const char *mq_broker_version(const struct mq *mq)
{
    return mq->broker_version;
}

const char *mq_request_protocol(const struct mq *mq)
{
    return mq->proto == MQ_PROTO_5 ? "5" : "3.1.1";
}

int mq_listen(struct mq *mq, const char *topic)
{
    if (mq->nlisten == MQ_LISTEN_MAX || !(mq->listen[mq->nlisten] = strdup(topic)))
        return -1;
    mq->nlisten++;
    return 0;
}

int mq_ctl_backlog(struct mq *mq)
{
    return mq->ctl.state != UP || mosquitto_want_write(mq->ctl.m);
}
