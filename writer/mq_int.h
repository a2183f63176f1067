/* mq_int.h: what the parts of the writer's MQTT connections share (mq.c, mq_loop.c,
 * mq_fence.c, mq_session.c; not for the rest of the writer): the state of the two
 * connections and of the request queue. */
#ifndef MOSQLITE_MQ_INT_H
#define MOSQLITE_MQ_INT_H

#include <mosquitto.h>

#include "mq.h"

enum { DOWN, CONNECTING, UP };

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

/* mq_session.c: the record of the request session's subscriptions (DB-writer.session).
 * record_matches: 1 when the file says what mq->record does; record_remove: before a
 * CONNECT; record_write: once the subscriptions are known acknowledged;
 * subscribe_requests: both request filters in one SUBSCRIBE; on_subscribe: its SUBACK. */
int mq_record_matches(struct mq *mq);
void mq_record_remove(struct mq *mq);
void mq_record_write(struct mq *mq);
void mq_subscribe_requests(struct mq *mq);
void mq_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted,
                     const mosquitto_property *p);

/* mq_fence.c: fence: a newer writer exists (epoch, where seen): `sub` closed for good;
 * watch: a message on PREFIX/status, PREFIX/changes or the fence marker's topic. */
void mq_fence(struct mq *mq, long long epoch, const char *where);
void mq_watch(struct mq *mq, const struct mosquitto_message *in);

#endif
