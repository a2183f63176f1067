/* mq_session.c: the request session's subscriptions, and the record of them beside the
 * database (DB-writer.session; see mq.h and mq_int.h). */
#include "mq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

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
int mq_record_matches(struct mq *mq)
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

void mq_record_remove(struct mq *mq)
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

void mq_record_write(struct mq *mq)
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
void mq_subscribe_requests(struct mq *mq)
{
    char *const filters[2] = {mq->write_filter, mq->jobs_filter};
    int mid = 0;

    if (mosquitto_subscribe_multiple(mq->sub.m, &mid, 2, filters, 2,
                                     mq->proto == MQ_PROTO_5 ? MQTT_SUB_OPT_SEND_RETAIN_NEVER |
                                     MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0, NULL))
        mid = 0;
    mq->sub_mid = mid;
}

void mq_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted,
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
        mq_record_write(mq);
    }
    mq->sub_ready = 1;
    mq->ctl_new = 1;
}
