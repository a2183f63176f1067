/* batch.h: group commit, the heart of the writer's loop.
 *
 * batch_run() applies the queue of received requests (mq.c) in one transaction,
 * each in its own savepoint (db_apply.c), reading ahead on the socket between requests
 * until nothing more is waiting or the batch bound (count or time) is hit; COMMIT;
 * only then publishes receipts, rejections and events (encoded by out.c). A failure
 * that is not a request's fault (disk full, I/O error, the file locked by another
 * process) rolls the batch back, keeps every request of it, closes the request
 * connection so the broker keeps the backlog, and retries with backoff: the batch is
 * then "stalled", and the status says why.
 *
 * The batch also keeps the counters and publishes the retained status. */
#ifndef MOSQLITE_BATCH_H
#define MOSQLITE_BATCH_H

#include <signal.h>
#include <stddef.h>

#include "changes.h"
#include "db.h"
#include "hook.h"
#include "mq.h"
#include "out.h"
#include "req.h"
#include "sched.h"
#include "jobq.h"
#include "sync.h"

struct batch_opts {
    const char *prefix;              /* topic prefix: PREFIX/write, /rejected, /events/, /status */
    struct req_limits lim;           /* for req_parse */
    size_t max;                      /* most requests in one commit */
    long long ms;                    /* longest a batch stays open */
    int events_qos;
    volatile sig_atomic_t *stop;     /* set by a signal: close the batch, accept nothing new */
    struct changes *changes;         /* replication (changes.h): sealed before COMMIT,
                                      * published before the receipts; NULL for none */
    struct hooks *hooks;             /* run after each commit with its events, or NULL */
    struct sched *sched;             /* scheduled writes and cancels (sched.h) */
    struct jobq *jobq;               /* the job queue (jobq.h), or NULL */
    struct sync *sync;               /* synchronous replicas (sync.h): a commit's receipts, events
                                      * and hook runs held until acknowledged; NULL for none */
    int sync_n;                      /* sync-replicas */
    size_t sync_max_held;            /* sync-max-held: take no request while this many are held */
};

struct batch;

/* A batch over db and mq (both the caller's, and must outlive it). mq must have been
 * made with app_size >= sizeof(struct outcome): the outcome of each request is kept
 * in its message. NULL when out of memory. */
struct batch *batch_new(struct db *db, struct mq *mq, const struct batch_opts *o);
/* Free; what the batch kept in the messages still queued too. Accepts NULL. */
void batch_free(struct batch *b);

/* Whether to run now: requests are queued, and no retry is pending for later than now. */
int batch_due(const struct batch *b, long long now_ms);
/* One group commit over the queue (see the top). */
void batch_run(struct batch *b);

/* 1 while a database fault holds the queue; *retry_at then is when it is tried again. */
int batch_stalled(const struct batch *b, long long *retry_at);
/* The reason of the last database fault. */
const char *batch_error(const struct batch *b);
const struct out_stats *batch_stats(const struct batch *b);

/* Synchronous replicas (sync.h), once a turn of the loop: send what replicas have
 * acknowledged (or what the timeout degrades), in commit order; stop taking requests
 * while sync-max-held messages are held, take them again below three quarters of it. */
void batch_sync_tick(struct batch *b);
/* How long the loop may sleep before the oldest held commit reaches sync-timeout-ms
 * (cap when sooner or none). */
int batch_sync_wait_ms(const struct batch *b, int cap);
/* At shutdown: wait up to timeout_ms for acknowledgements of what is held, then drop
 * (never send) the rest, with a log line. How many were dropped. */
size_t batch_sync_finish(struct batch *b, long long timeout_ms);

/* Publish the retained status now ("online" or "offline"). */
void batch_status(struct batch *b, const char *state);
/* Paused by an admin command or not: kept for the status, which is published now. */
void batch_paused(struct batch *b, int on);
/* Publish "online" when the counters changed and interval_ms has passed since the last. */
void batch_status_due(struct batch *b, long long now_ms, long long interval_ms);

#endif
