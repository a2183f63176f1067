/* jobq.h: the job queue wired into the writer: job messages (PREFIX/jobs/QUEUE,
 * PREFIX/jobs/worker), the enqueue op, waiting claims, leases, timers, pushes.
 *
 * The tables and every change of a job's state are jobs.c's; this file holds what lives
 * in memory and what the broker says:
 *   - waiting claims (claim id, worker, session, reply_to, queues, deadline): a claim
 *     with nothing ready waits here, no polling; each batch in which a job became ready
 *     grants to them (jobq_match) before its COMMIT;
 *   - leases (job, attempt, reply_to, deadline): renewed by beats with no disk write;
 *     one that runs out, or whose run passes timeout_ms, is ended in the next batch;
 *     rebuilt at start from the running jobs, each with a full lease;
 *   - ended sessions (their Last Will `gone`, or `bye`): a later claim from one is refused;
 *   - the outbox: grants, `empty`, pushes (`cancel`, `lease_lost`), answers to job
 *     commands, published after the COMMIT with the batch's receipts (jobq_committed),
 *     dropped with a rolled-back batch or request (jobq_cut, jobq_rolled_back).
 *
 * Everything runs on the writer's thread, between batches (jobq_tick, jobq_due,
 * jobq_wait_ms) or inside one (the rest), on the writer's connection (db.c). */
#ifndef MOSQLITE_JOBQ_H
#define MOSQLITE_JOBQ_H

#include <stddef.h>

#include "cfg.h"
#include "db.h"
#include "jbuf.h"
#include "mq.h"
#include "out.h"
#include "req.h"

struct jobq;

/* The writer's job settings (its config). */
struct jobq_opts {
    const struct cfg_list *cron;   /* `job-cron` lines (jobcron.h), or NULL */
    /* The defaults of an enqueue's options (jobs.h's JOBS_* when not set). */
    long long lease_ms, max_lost, max_attempts, backoff_ms, backoff_cap_ms;
    /* Finished jobs (done, failed, cancelled; dead) are deleted, with their attempts,
     * this many days after they ended (0: kept for ever): in passes of at most a few
     * thousand rows inside a batch, at start and then every hour, each queue's counts
     * moved down in the same transaction. */
    long long keep_days, dead_keep_days;
};

/* The settings and every `job-cron` line checked, before the database is opened: 0, or
 * -1 with the reason in err ("FILE:LINE: job-cron NAME: ..."). */
int jobq_config_check(const struct jobq_opts *o, char *err, size_t errlen);

/* Create the job tables if need be (before the named queries are checked against the
 * database, so that they may read them). DB_OK / DB_FAULT + err. */
int jobq_create_tables(struct db *db, char *err, size_t errlen);

/* Open the job tables on db's connection, rebuild the leases of the running jobs, read
 * the recurring jobs' rows, hook the enqueue and cancel_job ops into db_apply. NULL +
 * err. */
struct jobq *jobq_new(struct db *db, struct mq *mq, const char *prefix, const struct req_limits *lim,
                      const struct jobq_opts *o, char *err, size_t errlen);
void jobq_free(struct jobq *q);

/* Is m a job message (PREFIX/jobs/..., or a job command put in the queue by jobq_admin)? */
int jobq_owns(const struct jobq *q, const struct msg *m);

/* In the batch, right after BEGIN: due jobs made ready, the recurring jobs whose tick
 * has come enqueued, finished jobs pruned when due, expired leases and runs past their
 * timeout ended. DB_OK / DB_FAULT + err. */
int jobq_begin(struct jobq *q, char *err, size_t errlen);

/* Around one request of the batch: where the events, pushes and the receipt's job list
 * stand (jobq_mark), and back there when the request was rejected (jobq_cut). */
struct jobq_mark {
    size_t ev, out, nlease, asked;
};
void jobq_mark(struct jobq *q, struct jobq_mark *mk);
void jobq_cut(struct jobq *q, const struct jobq_mark *mk);

/* Apply one job message in the batch. Fills o's id, reply_to (NULL: no receipt), kind
 * (OUT_DROPPED when nothing is counted or answered by receipt) and extra. Returns
 * DB_OK, DB_DUP, DB_REJECT + err (nothing of it remains once the caller cuts back to its
 * mark), DB_LOST or DB_FAULT + err. */
int jobq_apply(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen);

/* The receipt members of the last request's enqueues (`"jobs":[...]`), heap, or NULL. */
char *jobq_take_receipt(struct jobq *q);

/* Before COMMIT: grant to waiting claims when jobs became ready. DB_OK / DB_FAULT. */
int jobq_match(struct jobq *q, char *err, size_t errlen);

/* After COMMIT (inside the batch's burst): the leases and claims it changed, then job
 * events, follow receipts, grants and pushes. After a rollback: all of it dropped. */
void jobq_committed(struct jobq *q);
void jobq_rolled_back(struct jobq *q);

/* Between batches. jobq_due: a batch is needed for the timers. jobq_wait_ms: how long
 * the loop may sleep, up to max_ms. jobq_tick: claims whose wait is over are answered
 * `empty` (no transaction). */
int jobq_due(const struct jobq *q, long long now_ms);
int jobq_wait_ms(const struct jobq *q, int max_ms);
void jobq_tick(struct jobq *q);

/* The status's members: ,"jobs":{QUEUE:{counts...,"paused":B},...},"job_waiting":N,
 * "job_leases":N,"workers":N appended to b. jobq_status_changed: a worker session was
 * dropped between batches (silent past its lease) since the status was last written. */
void jobq_status(struct jobq *q, struct jbuf *b);
int jobq_status_changed(const struct jobq *q);

/* The answer to the `workers` command into b: {"cmd":"workers","ok":true,"count":N,
 * "more":B,"workers":[...]} with at most limit sessions (workers.h), from memory, now. */
void jobq_workers_answer(struct jobq *q, int limit, struct jbuf *b);

/* A job command from PREFIX/admin (job_retry, job_discard, job_cancel, job_run_now,
 * queue_pause, queue_resume), put in the request queue to run in a batch; its answer goes
 * to `to` after the COMMIT. 0, or -1 when out of memory. */
int jobq_admin(struct jobq *q, const char *cmd, long long job, const char *queue, const char *to,
               const void *corr, int corrlen);

#endif
