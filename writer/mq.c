/* mq.c: the two MQTT connections and the request queue (see mq.h).
 *
 * libmosquitto is driven by hand (mosquitto_loop_read/write/misc around one poll())
 * so that a single thread can apply a batch to SQLite and still read ahead on the
 * socket between requests. Note what libmosquitto 2.0 does: it sends PUBREC/PUBCOMP
 * for a QoS 2 request before on_message runs, so a request held in this queue has
 * been acknowledged to the broker. A crash before COMMIT loses it unless the producer
 * republishes: that is what request ids, receipts after COMMIT and
 * `mosqlite-pub --wait` are for. */
#include "mq.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum { DOWN, CONNECTING, UP };

/* Where the caller's room starts in a message: after the struct, aligned for any type. */
#define APP_OFFSET ((sizeof(struct msg) + alignof(max_align_t) - 1) / alignof(max_align_t) * \
                    alignof(max_align_t))

struct conn {
    struct mosquitto *m;
    const char *name;
    int state;
    int ever;                /* connected at least once: use mosquitto_reconnect */
    long long retry_at;      /* ms, monotonic */
    int backoff;             /* ms */
    int wanted;              /* 0 while closed on purpose */
};

struct mq {
    struct mq_opts o;
    struct conn sub, ctl;
    struct msg *head, **tail;
    size_t nq;
    size_t ninjected;          /* of them, put there by mq_inject */
    int ctl_new;
    mq_ctl_fn on_ctl;        /* control messages (ctl.c) */
    void *ud;
    char *write_filter, *jobs_filter, *status_topic, *marker_filter;
    /* The request session's subscriptions (see on_connect). */
    char *record;            /* what the record file says once they are acknowledged */
    int record_on_disk;      /* the file may exist: remove it before the next CONNECT */
    int subscribed;          /* the broker's session for our client id has them */
    int sub_mid;             /* their SUBSCRIBE, awaiting its SUBACK; or 0 */
    int sub_ready;           /* `sub` is up and subscribed: requests reach us */
    int marker_mid;          /* SUBACK awaited by mq_quiesce, or 0 */
    int frozen;              /* after mq_quiesce: the request connection is left alone */
    int proto;               /* request session: MQ_PROTO_311 or MQ_PROTO_5 */
    char broker_version[32]; /* "2.0.21", from $SYS/broker/version; "" unknown */
    char *listen[MQ_LISTEN_MAX]; /* control topics (mq_listen) */
    int nlisten;
    int taken_over;          /* another client took our client id: stop, say nothing */
    long long sub_up_ms;     /* when sub last connected */
    int quick_drops;         /* sub dropped right after CONNACK, in a row */
    /* fencing (see mq.h) */
    char *changes_topic, *fence_topic;
    char token[32];          /* the marker of the current ctl connection */
    unsigned ntoken;
    int synced;              /* the marker came back since ctl connected */
    long long sync_sent_ms;
    long long ctl_seen_ms;   /* ctl last serviced while up */
    long long fenced_by;     /* a newer epoch seen, or 0 */
    const char *fenced_where;
    mq_capture_fn capture;   /* while set, mq_publish hands messages here (mq_capture) */
    void *capture_ud;
};

/* No marker back after this long (a broker that refuses the writer its reply topic):
 * say so and go on unfenced rather than never take a request. */
#define FENCE_SYNC_MS 5000

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

/* The request session's subscriptions, and the record of them.
 *
 * The broker keeps the request session, with its subscriptions, from one writer to the
 * next. Subscribing again on a session it kept would make MQTT 3.1.1 resend every
 * retained message under the filters (and, while the broker is sending a backlog to a
 * resumed session, has cost the connection again and again). But "session resumed"
 * does not say the session has the subscriptions: a writer stopped (SIGTERM, kill -9,
 * power loss) after its CONNECT created the session and before the broker processed
 * its SUBSCRIBE leaves a session without them, and the broker drops every request for
 * want of a subscriber. So the writer subscribes unless it knows, and knows only from
 * a record it keeps beside the database (mq_opts.session_record): written, and synced,
 * once the SUBACK came, naming the client id, the broker, the protocol and the
 * filters; removed, and synced, before each CONNECT (the CONNECT may create a new
 * session, if the broker lost the old one, and the writer may stop before it reads
 * the CONNACK); written again at a CONNACK that says the session was kept, when the
 * writer knew it subscribed. Each point a writer can stop at then leaves either no
 * record (the next writer subscribes: at worst the retained messages come again, and
 * are rejected) or a record of a session that has the subscriptions. Over MQTT 5 the
 * subscriptions say "retain as published" (the writer sees the retain flag of a
 * request published while it is connected, and rejects it: batch.c) and "send
 * retained: never", so subscribing again costs no retained message there. The job
 * filter (PREFIX/jobs/+, jobq.c) goes in the same SUBSCRIBE and the same record: a
 * session kept from a writer without jobs has no record, and gets it. */

static void fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* 1 when the record file says what mq->record does. */
static int record_matches(struct mq *mq)
{
    size_t want = strlen(mq->record);
    char *buf;
    ssize_t n;
    int fd = open(mq->o.session_record, O_RDONLY | O_CLOEXEC), same;

    if (fd < 0) {
        mq->record_on_disk = errno != ENOENT;
        return 0;
    }
    mq->record_on_disk = 1;
    if (!(buf = malloc(want + 1))) {
        close(fd);
        return 0;
    }
    n = read(fd, buf, want + 1);
    same = n == (ssize_t)want && !memcmp(buf, mq->record, want);
    free(buf);
    close(fd);
    return same;
}

static void record_remove(struct mq *mq)
{
    if (!mq->o.session_record || !mq->record_on_disk)
        return;
    if (unlink(mq->o.session_record) && errno != ENOENT) {
        log_warn("%s: cannot remove: %s", mq->o.session_record, strerror(errno));
        return;
    }
    fsync_dir(mq->o.session_record);
    mq->record_on_disk = 0;
}

static void record_write(struct mq *mq)
{
    const char *path = mq->o.session_record;
    size_t len = mq->record ? strlen(mq->record) : 0;
    int fd, ok;

    if (!path || !mq->record)
        return;
    mq->record_on_disk = 1;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ok = fd >= 0 && write(fd, mq->record, len) == (ssize_t)len && !fsync(fd);
    if (fd >= 0 && close(fd))
        ok = 0;
    if (!ok) {
        /* The next start subscribes again: nothing is lost. */
        log_warn("%s: cannot record the request session's subscriptions: %s", path, strerror(errno));
        return;
    }
    fsync_dir(path);
}

/* Both request filters in one SUBSCRIBE: one SUBACK says the session has them. */
static void subscribe_requests(struct mq *mq)
{
    char *const filters[2] = {mq->write_filter, mq->jobs_filter};
    int mid = 0;

    if (mosquitto_subscribe_multiple(mq->sub.m, &mid, 2, filters, 2,
                                     mq->proto == MQ_PROTO_5 ? MQTT_SUB_OPT_SEND_RETAIN_NEVER |
                                     MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0, NULL))
        mid = 0;
    mq->sub_mid = mid;
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted,
                         const mosquitto_property *p)
{
    struct mq *mq = ud;
    int i, refused = 0;

    if (m != mq->sub.m || !mid || mid != mq->sub_mid)
        return;
    mq->sub_mid = 0;
    for (i = 0; i < n; i++)
        if (granted[i] >= 0x80) {
            log_error("the broker refused the request session's subscription to %s (reason %d): "
                      "requests there do not reach this writer", i ? mq->jobs_filter : mq->write_filter,
                      granted[i]);
            refused = 1;
        }
    if (!refused) {
        mq->subscribed = 1;
        record_write(mq);
    }
    mq->sub_ready = 1;
    mq->ctl_new = 1;
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
            record_write(mq);
            mq->sub_ready = 1;
            mq->ctl_new = 1;        /* the status can say online again */
        } else {
            if (flags & 1)
                log_info("the request session was kept by the broker, but this writer has no record "
                         "of its subscriptions being acknowledged: subscribing");
            subscribe_requests(mq);
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

/* A newer writer exists: take no request more. */
static void fence(struct mq *mq, long long epoch, const char *where)
{
    if (mq->fenced_by)
        return;
    mq->fenced_by = epoch;
    mq->fenced_where = where;
    mq->sub.wanted = 0;
    if (mq->sub.state != DOWN) {
        mosquitto_disconnect_v5(mq->sub.m, 0, NULL);
        mosquitto_loop_write(mq->sub.m, 1);
        mq->sub.state = DOWN;
    }
}

/* A message on one of the topics `ctl` watches for fencing. */
static void on_watch(struct mq *mq, const struct mosquitto_message *in)
{
    long long e;

    if (!strcmp(in->topic, mq->fence_topic)) {
        if (!mq->synced && in->payloadlen == (int)strlen(mq->token) &&
            !memcmp(in->payload, mq->token, (size_t)in->payloadlen)) {
            mq->synced = 1;
            mq->ctl_new = 1;
        }
        return;
    }
    e = mq->o.epoch_of ? mq->o.epoch_of(in->payload ? in->payload : "", (size_t)in->payloadlen) : 0;
    if (e > mq->o.epoch)
        fence(mq, e, in->topic == NULL ? "" : !strcmp(in->topic, mq->status_topic) ? mq->status_topic
                                                                                    : mq->changes_topic);
    else if (e < mq->o.epoch && in->payloadlen > 0 && mq->synced && !strcmp(in->topic, mq->status_topic))
        mq->ctl_new = 1;     /* an older writer's status (its Last Will) over ours: say ours again */
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
            on_watch(mq, in);
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
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
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
        mq->subscribed = record_matches(mq);
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

static void try_connect(struct mq *mq, struct conn *c)
{
    long long now = util_now_ms();
    mosquitto_property *props = NULL;
    int rc;

    if (!c->wanted || c->state != DOWN || now < c->retry_at)
        return;
    /* Requests only once the retained status has been read: it may name a newer writer. */
    if (c == &mq->sub && (!mq->synced || mq->fenced_by || mq->ctl.state != UP))
        return;
    if (c == &mq->sub) {
        record_remove(mq);
        mq->sub_ready = 0;
        mq->sub_mid = 0;
    }
    if (c->ever) {
        rc = mosquitto_reconnect(c->m);
    } else {
        if (c == &mq->sub) {
            mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION,
                                 mq->proto == MQ_PROTO_5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
            if (mq->proto == MQ_PROTO_5)   /* keep the session (and its queue) forever */
                mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
        }
        rc = mosquitto_connect_bind_v5(c->m, mq->o.host, mq->o.port, mq->o.keepalive, NULL, props);
        mosquitto_property_free_all(&props);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        c->state = CONNECTING;
        c->ever = 1;
        return;
    }
    c->backoff = util_backoff(c->backoff);
    c->retry_at = now + c->backoff;
    if (c->backoff == UTIL_BACKOFF_FIRST_MS || c->backoff == UTIL_BACKOFF_MAX_MS)
        log_warn("cannot reach the broker at %s:%d for the %s connection (%s); retrying",
                 mq->o.host, mq->o.port, c->name, mosquitto_strerror(rc) ? mosquitto_strerror(rc) : "?");
}

static void lost(struct mq *mq, struct conn *c, int rc)
{
    if (c->state != DOWN && c->wanted)
        log_warn("%s connection lost: %s", c->name, mosquitto_strerror(rc));
    c->state = DOWN;
    c->backoff = c->backoff ? c->backoff : UTIL_BACKOFF_FIRST_MS;
    c->retry_at = util_now_ms() + c->backoff;
}

/* Hold back small TCP segments while on (libmosquitto writes every packet with its
 * own write()), and send them as few segments when turned off. Used around the
 * burst of events and receipts that follows a commit. */
static void cork(struct conn *c, int on)
{
    int fd = mosquitto_socket(c->m);

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* Is there something to read on c's socket right now? */
static int readable(struct conn *c, int timeout_ms)
{
    struct pollfd p;

    p.fd = mosquitto_socket(c->m);
    if (p.fd < 0)
        return 0;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* Read until the socket is drained: libmosquitto reads only a packet or a few per
 * call, and a QoS 2 request takes two (PUBLISH, then PUBREL) before it reaches us.
 * The acknowledgements the reads queued (PUBREC, PUBCOMP: libmosquitto writes each
 * packet with its own send()) leave after the round, corked into as few segments as
 * they fit in: on loopback each segment sent costs the sender the receiver's
 * processing too. The request connection stops once max_queue requests are held. */
static int read_all(struct mq *mq, struct conn *c)
{
    int rc = 0, rounds = 0;

    do {
        rc = mosquitto_loop_read(c->m, 1);
    } while (!rc && ++rounds < 100000 && (c != &mq->sub || mq->nq < mq->o.max_queue) &&
             c->state != DOWN && readable(c, 0));
    if (!rc && c->state != DOWN && mosquitto_want_write(c->m)) {
        if (rounds > 1)
            cork(c, 1);
        rc = mosquitto_loop_write(c->m, 1);
        if (rounds > 1)
            cork(c, 0);
    }
    if (rc) {
        lost(mq, c, rc);
        return -1;
    }
    return 0;
}

static void service(struct mq *mq, struct conn *c, short revents)
{
    int rc;

    if ((revents & (POLLIN | POLLHUP | POLLERR)) && read_all(mq, c))
        return;
    if (mosquitto_socket(c->m) >= 0 && mosquitto_want_write(c->m)) {
        rc = mosquitto_loop_write(c->m, 1);
        if (rc) {
            lost(mq, c, rc);
            return;
        }
    }
    rc = mosquitto_loop_misc(c->m);
    if ((rc && rc != MOSQ_ERR_NO_CONN) || (c->state != DOWN && mosquitto_socket(c->m) < 0))
        lost(mq, c, rc);
}

void mq_poll(struct mq *mq, int timeout_ms)
{
    struct conn *cs[2] = {&mq->sub, &mq->ctl};
    struct pollfd pfd[2];
    int i, n = 0, idx[2] = {-1, -1};

    if (!mq->fenced_by && mq->o.held && !mq->o.held(mq->o.held_ud))
        fence(mq, MQ_LEASE_LOST, "etcd");
    for (i = 0; i < 2; i++) {
        int s;
        if (cs[i] == &mq->sub && mq->frozen)
            continue;
        try_connect(mq, cs[i]);
        s = mosquitto_socket(cs[i]->m);
        if (cs[i]->state == DOWN || s < 0)
            continue;
        pfd[n].fd = s;
        pfd[n].events = mosquitto_want_write(cs[i]->m) ? POLLOUT : 0;
        if (cs[i] != &mq->sub || mq->nq < mq->o.max_queue)
            pfd[n].events |= POLLIN;
        pfd[n].revents = 0;
        idx[i] = n++;
    }
    if (timeout_ms > 0 && (mq->sub.state == DOWN || mq->ctl.state == DOWN)) {
        /* Wake up for the next reconnect attempt. */
        long long wait = UTIL_BACKOFF_MAX_MS, now = util_now_ms();
        for (i = 0; i < 2; i++)
            if (cs[i]->wanted && cs[i]->state == DOWN && cs[i]->retry_at - now < wait)
                wait = cs[i]->retry_at - now;
        if (wait < timeout_ms)
            timeout_ms = wait < 0 ? 0 : (int)wait;
    }
    if (poll(pfd, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
        log_error("poll: %s", strerror(errno));
    for (i = 0; i < 2; i++)
        if (idx[i] >= 0)
            service(mq, cs[i], pfd[idx[i]].revents);
    if (mq->ctl.state == UP) {
        mq->ctl_seen_ms = util_now_ms();
        if (!mq->synced && mq->ctl_seen_ms - mq->sync_sent_ms > FENCE_SYNC_MS) {
            log_warn("no answer on %s after %d s (may this writer read it?): taking requests without "
                     "knowing whether the retained status names a newer writer", mq->fence_topic,
                     FENCE_SYNC_MS / 1000);
            mq->synced = 1;
            mq->ctl_new = 1;
        }
    }
}

int mq_read_more(struct mq *mq, int wait_ms)
{
    size_t before = mq->nq;

    if (!mq->frozen && mq->sub.state == UP && mq->nq < mq->o.max_queue && readable(&mq->sub, wait_ms))
        read_all(mq, &mq->sub);
    return (int)(mq->nq - before);
}

void mq_accept(struct mq *mq, int on)
{
    struct conn *c = &mq->sub;

    if (on == c->wanted)
        return;
    c->wanted = on;
    if (on) {
        c->retry_at = 0;
        c->backoff = 0;
        log_info("taking requests again");
        return;
    }
    log_info("not taking new requests: the broker keeps them queued");
    if (c->state != DOWN) {
        mosquitto_disconnect_v5(c->m, 0, NULL);
        mosquitto_loop_write(c->m, 1);
        c->state = DOWN;
    }
}

void mq_quiesce(struct mq *mq, int timeout_ms)
{
    struct conn *c = &mq->sub;
    long long end = util_now_ms() + timeout_ms;
    int mid = 0;

    c->wanted = 0;
    mq->frozen = 1;
    if (c->state != UP)
        return;
    /* Unsubscribing from a filter the session never had changes nothing, but its
     * UNSUBACK marks a point: the broker answers packets in order, so every PUBREL
     * for a PUBREC sent before it arrives before it. */
    if (mosquitto_unsubscribe_v5(c->m, &mid, mq->marker_filter, NULL))
        mid = 0;
    mq->marker_mid = mid;
    while (mosquitto_want_write(c->m) && util_now_ms() < end)
        if (mosquitto_loop_write(c->m, 1))
            break;
    /* Read, but send nothing more: a request whose PUBLISH arrives now is never
     * acknowledged, so the broker keeps it for the next start. */
    while (mq->marker_mid && c->state == UP && util_now_ms() < end)
        if (readable(c, 20) && mosquitto_loop_read(c->m, 1))
            break;
    if (mq->marker_mid)
        log_warn("stopping: no answer from the broker to the final marker");
    /* Drop the connection without sending the acknowledgements still queued. */
    if (mosquitto_socket(c->m) >= 0)
        shutdown(mosquitto_socket(c->m), SHUT_RDWR);
    c->state = DOWN;
}

int mq_online(const struct mq *mq)
{
    if (!mq->synced || mq->fenced_by)
        return 0;       /* a status published now could hide a newer writer's */
    /* "online" once requests reach the writer: the request session is up and the broker
     * has acknowledged its subscriptions (a writer stopped before that leaves a session
     * that takes no request; see on_connect) */
    return !mq->sub.wanted || (mq->sub.state == UP && mq->sub_ready);
}

int mq_ctl_connected(struct mq *mq)
{
    int r;

    if (!mq_online(mq))
        return 0;
    r = mq->ctl_new;
    mq->ctl_new = 0;
    return r;
}

int mq_taken_over(const struct mq *mq)
{
    return mq->taken_over;
}

int mq_fence_ok(const struct mq *mq)
{
    long long stale_ms = (long long)mq->o.keepalive * 500;

    return mq->ctl.state == UP && mq->synced && !mq_fenced_by(mq) && !mq->taken_over &&
           util_now_ms() - mq->ctl_seen_ms < stale_ms;
}

long long mq_fenced_by(const struct mq *mq)
{
    if (!mq->fenced_by && mq->o.held && !mq->o.held(mq->o.held_ud))
        return MQ_LEASE_LOST;
    return mq->fenced_by;
}

const char *mq_fenced_where(const struct mq *mq)
{
    return mq->fenced_where ? mq->fenced_where : mq_fenced_by(mq) == MQ_LEASE_LOST ? "etcd" : "";
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

void mq_batch(struct mq *mq, int on)
{
    struct conn *c = &mq->ctl;

    if (on || c->state != UP)
        return;
    /* Send the burst now, as few segments as it fits in. */
    cork(c, 1);
    if (mosquitto_want_write(c->m) && mosquitto_loop_write(c->m, 1))
        lost(mq, c, MOSQ_ERR_CONN_LOST);
    cork(c, 0);
}

void mq_flush(struct mq *mq, int timeout_ms)
{
    long long end = util_now_ms() + timeout_ms;

    while (mq->ctl.state == UP && mosquitto_want_write(mq->ctl.m) && util_now_ms() < end)
        mq_poll(mq, 20);
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
