/* mq_fence.c: fencing (see mq.h): a newer epoch seen on PREFIX/status or
 * PREFIX/changes, or the lease in etcd lapsed, closes the request connection for good;
 * the marker `ctl` sends itself says when the retained status has been read. And what
 * the status may say of the connections (online, taken over). */
#include "mq_int.h"

#include <string.h>

#include "util.h"

/* A newer writer exists: take no request more. */
void mq_fence(struct mq *mq, long long epoch, const char *where)
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
void mq_watch(struct mq *mq, const struct mosquitto_message *in)
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
        mq_fence(mq, e, in->topic == NULL ? "" : !strcmp(in->topic, mq->status_topic) ? mq->status_topic
                                                                                    : mq->changes_topic);
    else if (e < mq->o.epoch && in->payloadlen > 0 && mq->synced && !strcmp(in->topic, mq->status_topic))
        mq->ctl_new = 1;     /* an older writer's status (its Last Will) over ours: say ours again */
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
