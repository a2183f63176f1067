/* jobs.h: the job queue's tables and every change of a job's state.
 *
 * Work that agents claim through the writer is kept in internal tables (created here):
 *   mosqlite_jobs          one row per job: its state, options, current lease, outcome
 *   mosqlite_job_attempts  one row per grant (job, attempt): who ran it, when, how it ended
 *   mosqlite_job_queues    one row per queue: paused, max_running, the count of its jobs
 *                          in each state (kept in the same transactions as the jobs)
 *   mosqlite_job_cron      recurring jobs' next tick (the table only; used by the cron)
 * Each has a primary key that is never NULL, so replicas (the session extension) follow.
 *
 * Every function here runs on the writer's connection inside the caller's open
 * transaction (a request's SAVEPOINT): nothing here begins, commits or rolls back,
 * talks to the broker or reads the clock. Times are the caller's `now_ms` (wall clock,
 * ms since the epoch). Statuses are db.h's: DB_OK; DB_DUP (see each function); DB_REJECT
 * with the exact text for the sender in err, having changed nothing (the request is
 * refused, its SAVEPOINT may be kept or rolled back); DB_FAULT with SQLite's message in
 * err (roll the batch back).
 *
 * States: scheduled (waits for its time), ready (may be granted), blocked (its
 * concurrency key is full), running (granted: one lease, named by (job, attempt)),
 * retry (waits out its backoff), and the final ones done, failed (the job's own
 * failures used up), dead (lost too often by its workers, or discarded by an
 * operator), cancelled.
 *
 * Exact concurrency: a job with a concurrency key holds one of the key's slots while it
 * is ready or running; it is made ready only when a slot is free (else blocked), and
 * each end of a slot makes the key's next blocked job (priority, then arrival) ready in
 * the same transaction. So a grant never needs to count, and the running jobs of a key
 * never exceed its limit, even for an instant. A running job whose cancel was asked
 * keeps its slot until it ends (its process may still run).
 *
 * Every change of state is recorded (struct jobs_event) for the caller to publish after
 * its COMMIT; it takes them with jobs_events and drops them with jobs_events_reset (or
 * back to a mark when it rolls a request back). */
#ifndef MOSQLITE_JOBS_H
#define MOSQLITE_JOBS_H

#include <sqlite3.h>
#include <stddef.h>

#include "db.h"

enum jobs_state {
    JOBS_SCHEDULED, JOBS_READY, JOBS_BLOCKED, JOBS_RUNNING, JOBS_RETRY,
    JOBS_DONE, JOBS_FAILED, JOBS_DEAD, JOBS_CANCELLED, JOBS_NSTATES
};

#define JOBS_FINAL(s) ((s) >= JOBS_DONE)
#define JOBS_QUEUE_MAX 128        /* bytes in a queue's name (one topic level) */

/* Defaults of an enqueue (jobs_new_init). */
#define JOBS_MAX_ATTEMPTS   1     /* failures before `failed`: a failing build fails once */
#define JOBS_MAX_LOST       3     /* worker losses before `dead` */
#define JOBS_BACKOFF_MS     10000
#define JOBS_BACKOFF_CAP_MS 3600000
#define JOBS_JITTER_PCT     20
#define JOBS_LEASE_MS       30000

/* The state's name as stored ("ready"), or NULL for JOBS_NSTATES and beyond. */
const char *jobs_state_name(int s);

enum jobs_dup { JOBS_DUP_IGNORE, JOBS_DUP_REJECT, JOBS_DUP_REPLACE };

/* An enqueue. Strings are the caller's, read during the call only; NULL for none. */
struct jobs_new {
    const char *queue;            /* 1..JOBS_QUEUE_MAX bytes, no '/', '+', '#', control */
    const char *payload;          /* stored as given (JSON text) */
    long long priority;           /* smaller first */
    const char *unique_key;       /* at most one live job per (queue, key) */
    enum jobs_dup on_duplicate;
    const char *conc_key;         /* with conc_limit >= 1 */
    long long conc_limit;
    long long max_attempts, max_lost;
    long long backoff_ms, backoff_cap_ms, jitter_pct;
    long long lease_ms, timeout_ms;   /* timeout_ms 0: no maximum run time */
    long long run_at_ms;          /* later than now: scheduled */
    const char *enq_id, *reply_to;    /* the enqueuing request, for `follow` */
    int follow;
};

/* The defaults above, everything else zero or NULL. */
void jobs_new_init(struct jobs_new *n);

struct jobs_enq {
    long long job;                /* the new job, or for DB_DUP the live one */
    enum jobs_state state;
    long long replaced;           /* replace: the job superseded, or 0 */
    enum jobs_state replaced_state;   /* cancelled, or running (its cancel asked) */
    long long replaced_attempt;   /* when running: the lease to push a cancel to */
};

/* A grant (heap copies, freed with jobs_grant_free). */
struct jobs_grant {
    long long job, attempt;
    char queue[JOBS_QUEUE_MAX + 1];
    char *payload;
    long long lease_ms, timeout_ms, lost, priority;
    char *enqueued_at;
};

/* The state a job is in after a call, for the answer (and, for a stale lease, where the
 * job is now). */
struct jobs_end {
    enum jobs_state state;
    long long attempt;
    int cancel_asked;             /* running with its cancel asked (jobs_cancel) */
    long long next_ms;            /* retry / scheduled: when it runs again */
};

/* One change of state. from is -1 for a new job. */
struct jobs_event {
    long long job, attempt;
    char queue[JOBS_QUEUE_MAX + 1];
    int from, to;
    int follow;                   /* the enqueuer follows it (final states: send its receipt) */
};

struct jobs;

/* Create the tables and indexes (IF NOT EXISTS) and prepare the statements. On the
 * writer's connection this runs while trusted (db_trust), as DDL needs. DB_OK / DB_FAULT. */
int jobs_open(struct jobs **out, sqlite3 *h, char *err, size_t errlen);
void jobs_close(struct jobs *j);

/* Called with 1 before each statement on the internal tables and 0 after (db_trust on
 * the writer's connection, whose authorizer refuses them otherwise). */
void jobs_set_trust(struct jobs *j, void (*trust)(void *arg, int on), void *arg);

/* The generator of backoff jitter (seeded from the clock and pid at open). */
void jobs_seed(struct jobs *j, unsigned long long seed);

/* Enqueue. DB_OK with the new job (ready, blocked or scheduled; for `replace`, the job
 * superseded in out->replaced); DB_DUP for `ignore` when a live job holds the unique key
 * (it is out->job, nothing changed); DB_REJECT for bad options or `reject`; DB_FAULT. */
int jobs_enqueue(struct jobs *j, const struct jobs_new *n, long long now_ms, struct jobs_enq *out,
                 char *err, size_t errlen);

/* Grant the best ready job (priority, then arrival) of the first of the nq queues that
 * has one, skipping paused queues and those at max_running: it is running, its attempt
 * one more, an attempt row written. claim_id (or NULL) grants at most once: DB_DUP with
 * the same grant when it is still running under it, DB_REJECT "already granted" when that
 * lease has ended. DB_OK with g->job 0 when nothing is ready (the claim waits). */
int jobs_grant(struct jobs *j, const char *const *queues, int nq, const char *worker,
               const char *session, const char *claim_id, long long now_ms,
               struct jobs_grant *g, char *err, size_t errlen);
void jobs_grant_free(struct jobs_grant *g);

/* Ends of a lease, each under the fence (job, attempt): a (job, attempt) that is not the
 * running lease changes nothing and is DB_REJECT "lease lost: ..." with the job's state
 * in out. Each frees the job's concurrency slot (unless it goes back to ready).
 *   done:    -> done (result text or NULL, exit code).
 *   fail:    a failure counted (exit_code LLONG_MIN: none); -> retry after the backoff while failures < max_attempts
 *            (retry JOBS_RETRY_POLICY), never (JOBS_RETRY_NO), or whatever the count
 *            (JOBS_RETRY_YES); retry_in_ms >= 0 replaces the backoff; else -> failed.
 *   release: given back, no failure counted: -> ready (delay_ms 0) or scheduled.
 *   lost:    the worker died or its lease ran out: -> ready at once while lost < max_lost,
 *            else dead (error names the reason and the worker).
 *   cancelled: the worker stopped it -> cancelled.
 * A job whose cancel was asked ends cancelled on fail, release and lost (never retried). */
enum jobs_retry { JOBS_RETRY_POLICY, JOBS_RETRY_NO, JOBS_RETRY_YES };
int jobs_done(struct jobs *j, long long job, long long attempt, const char *result, long long exit_code,
              long long now_ms, struct jobs_end *out, char *err, size_t errlen);
int jobs_fail(struct jobs *j, long long job, long long attempt, long long exit_code, const char *error,
              enum jobs_retry retry, long long retry_in_ms, long long now_ms, struct jobs_end *out,
              char *err, size_t errlen);
int jobs_release(struct jobs *j, long long job, long long attempt, long long delay_ms, long long now_ms,
                 struct jobs_end *out, char *err, size_t errlen);
int jobs_lost(struct jobs *j, long long job, long long attempt, const char *reason, long long now_ms,
              struct jobs_end *out, char *err, size_t errlen);
int jobs_cancelled(struct jobs *j, long long job, long long attempt, long long now_ms,
                   struct jobs_end *out, char *err, size_t errlen);

/* The backoff before retry number `failures` (1 for the first): d = min(cap, base *
 * 2^(failures-1)), less up to jitter_pct percent of it: in [d - d*jitter/100, d]. Pure
 * but for the generator. */
long long jobs_backoff(struct jobs *j, long long base_ms, long long cap_ms, long long jitter_pct,
                       long long failures);

/* Scheduled and retry jobs whose time has come become ready (or blocked), at most max
 * of them; *made gets how many. *next_ms: when the next one is due (<= now_ms when more
 * are due already; LLONG_MAX for none). DB_OK / DB_FAULT. */
int jobs_due(struct jobs *j, long long now_ms, int max, int *made, long long *next_ms, char *err,
             size_t errlen);

/* The running jobs of one worker connection are lost (its Last Will): as jobs_lost for
 * each; *n gets how many. DB_OK / DB_FAULT. */
int jobs_lost_session(struct jobs *j, const char *session, const char *reason, long long now_ms,
                      int *n, char *err, size_t errlen);

/* Each running job, for leases kept in memory (at start). Strings are valid during the
 * call. fn returns 0 to go on. DB_OK / DB_FAULT. */
struct jobs_lease {
    long long job, attempt;
    const char *queue, *worker, *session;
    long long started_ms, lease_ms, timeout_ms;
    int cancel_asked;
};
int jobs_running(struct jobs *j, int (*fn)(void *arg, const struct jobs_lease *l), void *arg,
                 char *err, size_t errlen);

/* Cancel: a queued job (scheduled, ready, blocked, retry) is cancelled at once; a
 * running one is flagged (out->cancel_asked, out->attempt: push the cancel to its
 * worker) and ends cancelled when its worker says so or its lease ends. DB_DUP when its
 * cancel was asked already; DB_REJECT for a final job or none. */
int jobs_cancel(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                size_t errlen);

/* Operator commands. retry: a failed, dead or cancelled job back to ready (or blocked),
 * its failure and loss counts reset (its attempt number goes on: it is the fence).
 * discard: a queued job (scheduled, ready, blocked, retry) -> dead, error "discarded by
 * an operator" (a running job is cancelled instead). run_now: a scheduled or retry
 * job -> ready (or blocked) now. Each DB_OK / DB_REJECT / DB_FAULT. */
int jobs_retry(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
               size_t errlen);
int jobs_discard(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                 size_t errlen);
int jobs_run_now(struct jobs *j, long long job, long long now_ms, struct jobs_end *out, char *err,
                 size_t errlen);

/* A queue's settings (its row is made if need be): paused (grants nothing; running
 * jobs go on); max_running (-1: no limit). DB_OK / DB_REJECT (a bad name) / DB_FAULT. */
int jobs_queue_pause(struct jobs *j, const char *queue, int paused, char *err, size_t errlen);
int jobs_queue_max_running(struct jobs *j, const char *queue, long long max_running, char *err,
                           size_t errlen);

/* Each queue's settings and counts by state, in name order (read from mosqlite_job_queues:
 * no scan of the jobs). Strings valid during the call; fn returns 0 to go on. */
struct jobs_count {
    const char *queue;
    int paused;
    long long max_running;        /* -1: none */
    long long n[JOBS_NSTATES];
};
int jobs_counts(struct jobs *j, int (*fn)(void *arg, const struct jobs_count *c), void *arg,
                char *err, size_t errlen);

/* What a job is now, for answers and the follow receipt: queue, state, attempt, whether
 * its cancel was asked, and the enqueuer's follow (enq_id, reply_to), its error and exit
 * code (has_exit 0: none). Strings on the heap (jobs_info_free). DB_OK, DB_REJECT "no job
 * N", DB_FAULT. */
struct jobs_info {
    char queue[JOBS_QUEUE_MAX + 1];
    enum jobs_state state;
    long long attempt;
    int cancel_asked, follow, has_exit;
    long long exit_code;
    char *enq_id, *reply_to, *error;
};
int jobs_info(struct jobs *j, long long job, struct jobs_info *out, char *err, size_t errlen);
void jobs_info_free(struct jobs_info *i);

/* The progress (JSON text) of the running lease (job, attempt): DB_OK, DB_REJECT
 * "lease lost: ..." when that is not the live lease, DB_FAULT. */
int jobs_progress(struct jobs *j, long long job, long long attempt, const char *progress,
                  char *err, size_t errlen);

/* The changes of state so far. jobs_events_mark: where the list stands (before a
 * request); jobs_events_cut: back to a mark (the request was rolled back); reset: empty
 * (after publishing, or a rolled-back batch). */
const struct jobs_event *jobs_events(const struct jobs *j, size_t *n);
size_t jobs_events_mark(const struct jobs *j);
void jobs_events_cut(struct jobs *j, size_t mark);
void jobs_events_reset(struct jobs *j);

#endif
