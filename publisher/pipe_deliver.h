/* pipe_deliver.h: the log pipe's delivering side, a thread that sends the spool's
 * records to the writer one transaction at a time (pipe_deliver.c). */
#ifndef MOSQLITE_PIPE_DELIVER_H
#define MOSQLITE_PIPE_DELIVER_H

#include "mosqlite.h"
#include "spool.h"

#include <pthread.h>

struct deliverer {
    spool *sp;
    const char *spool_dir;
    struct mosqlite_options mo;
    mosqlite_client *c;
    volatile int abandon;               /* set by the main thread: stop now */
    volatile int finished;              /* set by the thread when it ends */
    int got;                            /* the batch's result arrived */
    enum mosqlite_status status;
    char error[512];
    int away;                           /* the broker or writer is not answering */
    const char *will;                   /* NULL, or the request the broker sends if we die */
    unsigned long long applied, rejected, batches;
};

/* Set d up to deliver the spool sp (in dir) over a connection like mo's (with
 * receipts, one transaction at a time, no timeout); will: NULL or a last will. */
void deliver_init(struct deliverer *d, spool *sp, const char *dir,
                  const struct mosqlite_options *mo, const char *will);

/* The thread (pthread_create(..., deliver_main, d)): connects when it can, publishes
 * the oldest records (up to 100 of one kind) as one transaction under the id
 * SPOOLID-SEQ, waits for the receipt, marks them done; ends when the spool is
 * finished, or told to (abandon). Sets d->finished at its end. */
void *deliver_main(void *arg);

/* Stop the thread. 1 when it has ended (and was joined). */
int deliver_stop(struct deliverer *d, pthread_t th);

#endif
