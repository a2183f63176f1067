/* mq_loop.c: the two connections driven by one poll() (see mq.h): connecting and
 * reconnecting with backoff, reading, writing, and closing the request connection on
 * purpose (mq_accept, mq_quiesce).
 *
 * libmosquitto is driven by hand (mosquitto_loop_read/write/misc around one poll())
 * so that a single thread can apply a batch to SQLite and still read ahead on the
 * socket between requests. Note what libmosquitto 2.0 does: it sends PUBREC/PUBCOMP
 * for a QoS 2 request before on_message runs, so a request held in this queue has
 * been acknowledged to the broker. A crash before COMMIT loses it unless the producer
 * republishes: that is what request ids, receipts after COMMIT and
 * `mosqlite-pub --wait` are for. */
#include "mq_int.h"

#include <errno.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

/* No marker back after this long (a broker that refuses the writer its reply topic):
 * say so and go on unfenced rather than never take a request. */
#define FENCE_SYNC_MS 5000

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
        mq_record_remove(mq);
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
        mq_fence(mq, MQ_LEASE_LOST, "etcd");
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
