/* mq.h: the writer's two MQTT connections, driven by one poll loop.
 *
 * `sub` carries requests: fixed client id, persistent session (clean start off,
 * session never expires), QoS 2 subscription to PREFIX/write/# (which also matches
 * PREFIX/write itself) and PREFIX/jobs/+. It subscribes on a new session, and on a
 * session the broker kept unless a record beside the database (mq_opts.session_record)
 * says the broker acknowledged those subscriptions for it (see mq.c). It can be closed on purpose (mq_accept(mq, 0)) while the
 * database cannot be written or while shutting down: the broker then keeps the
 * backlog for the session, and nothing new reaches the writer's memory.
 *
 * `ctl` carries everything the writer publishes (events, receipts, rejections, the
 * retained status) and the control messages (named queries, admin commands, snapshot
 * requests: each handed to one callback, the door in ctl.c, on the topics mq_listen
 * names); its Last Will marks the writer offline. It stays
 * up while `sub` is closed, so the status can say why.
 *
 * Both reconnect with backoff when the broker is down or goes away, except when
 * another client has taken over a session (same client id): then neither is retried
 * (mq_taken_over), so that two writers never knock each other off in turn.
 *
 * Fencing. Each writer generation has an epoch (mq_opts.epoch). `ctl` also subscribes
 * to PREFIX/status (the retained status of whichever writer published last) and to
 * PREFIX/changes, and reads the epoch of each message (mq_opts.epoch_of): one newer
 * than ours means another writer has been promoted in our place, and mq closes `sub`
 * at once and never opens it again (mq_fenced_by). After each connect of `ctl` it sends
 * a marker to itself (PREFIX/reply/CTL-CLIENT-ID/fence) after its subscriptions: when
 * the marker is back, the retained status has been read. Until then `sub` is not
 * opened and mq_fence_ok says no; it also says no when `ctl` has not been serviced for
 * half the keepalive (the process was stopped or starved: the broker may have dropped
 * us and another writer taken our place). `ctl`'s client id is CLIENT_ID-ctl at epoch 1
 * and CLIENT_ID-ctl-EPOCH after, so that a writer of an older epoch reconnecting does not
 * take the newer one's control session. */
#ifndef MOSQLITE_MQ_H
#define MOSQLITE_MQ_H

#include <stddef.h>

/* One request as received, in one allocation (mq's: created by mq_poll and
 * mq_read_more, freed by mq_drop and mq_free). */
struct msg {
    struct msg *next;
    char *topic;
    char *payload;           /* NUL-terminated for convenience; len bytes */
    size_t len;
    int retained;            /* the retain flag as the broker sent it (MQTT 5: as published;
                              * MQTT 3.1.1: only on a copy sent for a new subscription) */
    char *resp_topic;        /* MQTT v5 Response Topic, or NULL */
    void *corr;              /* MQTT v5 Correlation Data, or NULL */
    int corrlen;
    const char *sched_id;    /* put in the queue by mq_inject: the scheduled request's id;
                              * NULL for a request from the broker */
    void *app;               /* mq_opts.app_size bytes for the caller, zeroed, aligned for
                              * any type; mq never reads them: whatever the caller keeps
                              * there it frees before mq_drop or mq_free */
};

struct mq_opts {
    const char *host;
    int port;
    const char *username, *password, *cafile;
    const char *client_id;
    const char *prefix;
    int keepalive;
    size_t max_queue;        /* stop reading requests while this many are held */
    int receive_max;         /* MQTT v5 Receive Maximum: requests in flight to us */
    int request_proto;       /* MQ_PROTO_311 (docs/deployment.md) or MQ_PROTO_5 */
    /* A file for the record that the request session's subscriptions were acknowledged
     * (DB-writer.session); NULL: none kept, a kept session is subscribed again. */
    const char *session_record;
    size_t app_size;         /* room for the caller in each message (msg->app) */
    long long epoch;         /* this writer's epoch (>= 1) */
    /* The epoch of a message on PREFIX/status or PREFIX/changes, 0 for none. */
    long long (*epoch_of)(const char *payload, size_t len);
    /* With leadership in etcd (lead.h): 1 while this writer may commit and publish;
     * once 0, the request session is closed as if fenced (mq_fenced_by says
     * MQ_LEASE_LOST). NULL: no such check. */
    int (*held)(void *ud);
    void *held_ud;
};

/* mq_fenced_by when mq_opts.held said no: the leader lease in etcd lapsed. */
#define MQ_LEASE_LOST (-1LL)

enum { MQ_PROTO_311 = 4, MQ_PROTO_5 = 5 };

/* A message on a topic mq_listen named: its topic, payload, and MQTT 5 Response Topic
 * and Correlation Data (or NULL). */
typedef void (*mq_ctl_fn)(void *ud, const char *topic, const char *payload, size_t len,
                          const char *resp_topic, const void *corr, int corrlen);

struct mq;

/* Create both clients and start connecting. will_payload is published retained to
 * PREFIX/status by the broker if the writer dies. Control messages go to on_ctl.
 * NULL + err on bad options. */
struct mq *mq_new(const struct mq_opts *o, const char *will_payload, mq_ctl_fn on_ctl,
                  void *ud, char *err, size_t errlen);
/* Disconnect both cleanly (after flushing what was published) and free. */
void mq_free(struct mq *mq);

/* Wait up to timeout_ms for network activity, handle it, reconnect what is due.
 * Received requests are appended to the queue. */
void mq_poll(struct mq *mq, int timeout_ms);

/* Read whatever requests are waiting on the request socket, waiting up to wait_ms for
 * the first byte. Returns how many requests were added to the queue. */
int mq_read_more(struct mq *mq, int wait_ms);

/* Accept requests (open `sub`) or not (close it; the broker keeps the backlog). */
void mq_accept(struct mq *mq, int on);

/* Before exiting: stop taking requests without losing one. Reads until every
 * request already acknowledged to the broker has reached the queue, then drops the
 * request connection without acknowledging anything newer (the broker redelivers
 * those on the next start). The queue must then be applied before exit. */
void mq_quiesce(struct mq *mq, int timeout_ms);

/* May the status say "online": `ctl` has read the retained status (no newer writer
 * seen), and `sub`, unless closed on purpose, is up with its subscriptions acknowledged
 * by the broker, so that a request published now reaches this writer. */
int mq_online(const struct mq *mq);

/* 1 once, while mq_online says yes, after `ctl` has (re)connected and read the retained
 * status, `sub` has become ready again, or `ctl` has seen a status of an older epoch
 * than ours, since the last call: time to publish status. */
int mq_ctl_connected(struct mq *mq);

/* 1 once another client has taken over either session (our client id): MQTT 5
 * DISCONNECT "session taken over", or for an MQTT 3.1.1 request session five closes
 * in a row, each within a second of CONNACK. Neither connection is retried then; the writer must stop without
 * publishing its status (the other client's is the one that counts). */
int mq_taken_over(const struct mq *mq);

/* Fencing (see the top). mq_fence_ok: `ctl` is up, has read the retained status since
 * it connected, was serviced within half the keepalive, and no newer epoch was seen:
 * a commit may be made and published. mq_fenced_by: the newer epoch seen (0: none;
 * MQ_LEASE_LOST: mq_opts.held said no), and where (mq_fenced_where: "PREFIX/status",
 * "PREFIX/changes" or "etcd"). */
int mq_fence_ok(const struct mq *mq);
long long mq_fenced_by(const struct mq *mq);
const char *mq_fenced_where(const struct mq *mq);

/* The queue of received, not yet finished requests. */
struct msg *mq_head(struct mq *mq);
size_t mq_queued(const struct mq *mq);
/* Remove and free the first n messages. */
void mq_drop(struct mq *mq, size_t n);

/* Append a request that did not come from the broker (a scheduled request now due,
 * sched.c), marked with its id (msg->sched_id); nothing is acknowledged for it.
 * 0, or -1 when out of memory. mq_injected: how many of those the queue holds. */
int mq_inject(struct mq *mq, const char *topic, const char *payload, size_t len, const char *resp_topic,
              const void *corr, int corrlen, const char *sched_id);
size_t mq_injected(const struct mq *mq);

/* Publish on `ctl`. corr (may be NULL) is sent as MQTT v5 Correlation Data.
 * 0 on success (or queued for when the broker is back), -1 otherwise. */
int mq_publish(struct mq *mq, const char *topic, const void *payload, size_t len, int qos,
               int retain, const void *corr, int corrlen);

/* While fn is set (not NULL), mq_publish sends nothing: it hands each message to fn
 * and returns what fn returns (synchronous replicas hold a commit's messages, sync.h). */
typedef int (*mq_capture_fn)(void *ud, const char *topic, const void *payload, size_t len, int qos,
                             int retain, const void *corr, int corrlen);
void mq_capture(struct mq *mq, mq_capture_fn fn, void *ud);

/* Around a burst of mq_publish calls: on, publish, off. Off sends the burst, in as
 * few TCP segments as it fits in. */
void mq_batch(struct mq *mq, int on);

/* A control topic for `ctl` to subscribe to (QoS 1, from its next connect on; call
 * before the first mq_poll), whose messages go to the on_ctl callback. Up to
 * MQ_LISTEN_MAX; topic is copied. 0, or -1 when full or out of memory. */
#define MQ_LISTEN_MAX 8
int mq_listen(struct mq *mq, const char *topic);

/* 1 while `ctl` is down or has packets not yet written to its socket: a large sender
 * (snapshot.c) waits, so that it never piles up in memory. */
int mq_ctl_backlog(struct mq *mq);

/* Send what is waiting to be written, for up to timeout_ms (used at shutdown). */
void mq_flush(struct mq *mq, int timeout_ms);

/* The broker's version as it names it on $SYS/broker/version ("" until known), and
 * the request session's MQTT version ("3.1.1" or "5"). */
const char *mq_broker_version(const struct mq *mq);
const char *mq_request_protocol(const struct mq *mq);

#endif
