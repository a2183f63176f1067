/* sched.h: scheduled writes ("at" or "delay_ms" in a request) and their cancels.
 *
 * A scheduled request is stored in mosqlite_scheduled inside the batch's transaction
 * (sched_add), so its "scheduled" receipt, published after COMMIT, means it is on
 * disk. The loop sleeps until the next one is due (sched_wait_ms: no polling), then
 * sched_tick puts the due requests, in due order, at the end of the request queue
 * (mq_inject), and the batch applies each as it would any request, after taking its
 * row out in the same transaction (sched_take). A kill before that COMMIT leaves the
 * row, and the next start applies it; after it, the row is gone and the id is kept in
 * mosqlite_applied: applied once either way. A cancel (sched_cancel) takes the row
 * out and keeps the id, so neither the request nor a retry of it is applied.
 *
 * All of it runs on the writer's one connection (db.c), between batches or in one. */
#ifndef MOSQLITE_SCHED_H
#define MOSQLITE_SCHED_H

#include <stddef.h>

#include "db.h"
#include "mq.h"
#include "req.h"

struct sched;

/* Read when the first scheduled request is due. max: most requests put in the queue
 * at once; limit: most requests scheduled at once (more are rejected, so that no
 * producer can fill the disk with them). NULL + err. */
struct sched *sched_new(struct db *db, struct mq *mq, size_t max, long long limit, char *err,
                        size_t errlen);
void sched_free(struct sched *s);

/* After the batch's transaction was rolled back: count what is scheduled again. */
void sched_rolled_back(struct sched *s);

/* In the batch's transaction. Store r (received as m, its id required) to be applied
 * at due_ms (wall clock, ms since the epoch; before 1970 too). DB_OK; DB_DUP when the id
 * is scheduled or was applied for the same request (a retry); DB_REJECT + err when the
 * id belongs to another request, the limit is reached or mosqlite_scheduled refuses the
 * row (a constraint); DB_LOST + err when that refusal rolled the transaction back;
 * DB_FAULT + err. */
int sched_add(struct sched *s, const struct req *r, const struct msg *m, long long due_ms,
              char *err, size_t errlen);

/* In the batch's transaction, for a request to apply now: 1 when its id belongs to a
 * scheduled request (it is refused, with err: ids are one namespace), 0 when not (at no
 * cost while nothing is scheduled), -1 with err on a database fault. */
int sched_holds(struct sched *s, const char *id, char *err, size_t errlen);

/* In the batch's transaction, before applying a request sched_tick queued: take its
 * row out. DB_OK (apply it now), DB_DUP (it is gone: cancelled since; skip it) or
 * DB_FAULT + err. */
int sched_take(struct sched *s, const char *id, char *err, size_t errlen);

/* In the batch's transaction: cancel the scheduled request r->cancel. topic is the
 * cancel's own: on PREFIX/write/TABLE only a request published on that same topic can
 * be cancelled. DB_OK (cancelled), DB_DUP (the cancel's own id was seen before),
 * DB_REJECT + err (not scheduled: unknown, applied or cancelled already; the cancel's
 * own id used by another request or by a scheduled one, its target included; or what
 * the writer keeps refused its ids: then nothing of it remains), DB_LOST + err,
 * DB_FAULT + err. */
int sched_cancel(struct sched *s, const struct req *r, const char *topic, const char *write_topic,
                 char *err, size_t errlen);

/* How long the loop may sleep, up to max_ms: 0 once a request is due (unless paused,
 * or the due ones are already queued). */
int sched_wait_ms(const struct sched *s, int max_ms, int paused);

/* Between batches: queue the requests that are due, when none queued before are left. */
void sched_tick(struct sched *s, int paused);

#endif
