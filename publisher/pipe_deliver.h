/* pipe_deliver.h: the log pipe's delivering side, a thread that sends the spool's
 * records to the writer as transactions, several in flight at once (pipe_deliver.c). */
#ifndef MOSQLITE_PIPE_DELIVER_H
#define MOSQLITE_PIPE_DELIVER_H

#include "mosqlite.h"
#include "spool.h"

#include <pthread.h>

#define DELIVER_WINDOW 16               /* transactions in flight, by default (each names
                                         * the one before: the order survives a broker or
                                         * writer killed -9 whatever the window) */
#define DELIVER_WINDOW_MAX 256          /* the most a spool keeps track of */
#define DELIVER_LINES 1000              /* rows per transaction: the writer's default max-ops */
#define DELIVER_BYTES (192u * 1024u)    /* under the writer's default payload limit (256 KiB) */

struct flight {                         /* one transaction in flight */
    unsigned long long seq;
    long n;
    char kind;
};

struct deliverer {
    spool *sp;
    const char *spool_dir;
    struct mosqlite_options mo;
    mosqlite_client *c;
    volatile int abandon;               /* set by the main thread: stop now */
    volatile int finished;              /* set by the thread when it ends */
    int window;                         /* transactions in flight at most (1..256) */
    size_t batch_lines, batch_bytes;    /* the most in one transaction */
    int away;                           /* the broker or writer is not answering */
    int refused;                        /* the broker refused a transaction for good (its
                                         * ACL): delivery has ended, the rest is spooled */
    const char *will;                   /* NULL, or the request the broker sends if we die */
    unsigned long long applied, rejected, batches;  /* records applied and rejected; transactions */
    /* The thread's own: */
    struct flight *fl;                  /* window slots */
    int *freefl, nfree, outstanding;
    int draining;                       /* something was republished: nothing new until all are answered */
    int open;                           /* a receipt came on this connection since it was made or
                                         * since a republish: the whole window may be used */
    unsigned long republished;
    double answered_at;
    unsigned long long last_seq;        /* the last transaction published, */
    int last_live;                      /* ... while its receipt is still to come */
};

/* Set d up to deliver the spool sp (in dir) over a connection like mo's (with
 * receipts, no timeout); will: NULL or a last will. The window (DELIVER_WINDOW) and
 * the transaction's size (DELIVER_LINES, DELIVER_BYTES) may be changed before the
 * thread starts. */
void deliver_init(struct deliverer *d, spool *sp, const char *dir,
                  const struct mosqlite_options *mo, const char *will);

/* The thread (pthread_create(..., deliver_main, d)): connects when it can, publishes
 * the spool's records in order as transactions (up to batch_lines records of one kind
 * and batch_bytes) under the ids SPOOLID-SEQ, up to `window` of them in flight, and
 * marks each done in the spool when its receipt comes; ends when the spool is
 * finished, or told to (abandon). Sets d->finished at its end. */
void *deliver_main(void *arg);

/* Stop the thread. 1 when it has ended (and was joined). */
int deliver_stop(struct deliverer *d, pthread_t th);

#endif
