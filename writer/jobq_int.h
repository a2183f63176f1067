/* jobq_int.h: what the parts of the job queue wired into the writer share (jobq.c,
 * jobq_read.c, jobq_claim.c, jobq_end.c, jobq_lease.c, jobq_events.c, jobq_workers.c; not for the rest
 * of the writer). */
#ifndef MOSQLITE_JOBQ_INT_H
#define MOSQLITE_JOBQ_INT_H

#include <cjson/cJSON.h>

#include "jobcron.h"
#include "jobq.h"
#include "jobs.h"
#include "json.h"
#include "workers.h"

#define MAX_QUEUES 16                  /* queues in one claim */
#define ENDED_MAX 4096                 /* ended sessions remembered */
#define ERROR_MAX 4096                 /* a failure's error, a progress */

struct lease {
    long long job, attempt;
    char *worker, *session, *reply_to;
    long long deadline;            /* monotonic ms: lost when no beat comes before */
    long long started;             /* monotonic ms */
    long long lease_ms, timeout_ms;
    int cancel_asked;
    int pending;                   /* granted in the open batch: dropped on rollback */
    int ending;                    /* ended by a timer in the open batch */
};

struct waiter {
    char *claim_id, *worker, *session, *reply_to;
    char *queues[MAX_QUEUES];
    int nq;
    long long deadline;            /* monotonic ms */
    int pending;                   /* granted in the open batch */
};

struct push {
    char *topic, *payload;
};

struct claim {
    const char *id, *worker, *session, *reply_to;
    long long wait_ms;
    const char *queues[MAX_QUEUES];
    int nq;
};

struct jobq {
    struct db *db;
    struct mq *mq;
    struct jobs *jobs;
    struct req_limits lim;
    char *prefix, *t_jobs, *t_worker, *t_events, *t_to, *t_admin;
    size_t t_jobs_len;
    struct lease *leases;
    size_t nlease, caplease;
    struct waiter *waiters;
    size_t nwait, capwait;
    struct push *out;
    size_t nout, capout;
    long long *asked;              /* jobs whose cancel the open batch asked, in order */
    size_t nasked, capasked;
    char *ended[ENDED_MAX];
    size_t ended_next, ended_n;    /* the ring's next slot; slots filled (0..ENDED_MAX) */
    struct jbuf rcpt;              /* the current request's "jobs":[...] members */
    int rcpt_n;
    struct jbuf scratch;
    struct req sub;                /* a done's ops */
    struct json_nums nums;
    long long next_due_ms;         /* wall clock: when jobs_due has work; LLONG_MAX none */
    size_t match_ev;               /* events before this one were matched */
    int match_all;                 /* a queue was resumed: try every waiter */
    long long hellos;
    struct workers *workers;       /* the sessions online (jobq_workers.c) */
    long long workers_next;        /* monotonic ms: the earliest session deadline, or later */
    int workers_dirty;             /* a session expired since the status was written */
    struct jobcron *cron;          /* recurring jobs */
    struct jobs_new base;          /* the config's defaults of an enqueue */
    long long keep_ms, dead_keep_ms;   /* finished jobs' age before pruning; 0: kept */
    long long next_prune;          /* monotonic ms: the next pruning pass */
    int prune_pend;                /* the open batch pruned: 1 done, 2 more to do */
};

/* jobq.c: out of memory ends the process; a copy (NULL for NULL); room for need items. */
void jobq_oom(void);
char *jobq_xdup(const char *s);
void *jobq_grow(void *p, size_t *cap, size_t need, size_t size);
/* One enqueue, in the open request: DB_OK (also for an ignored duplicate), DB_REJECT,
 * DB_FAULT. A running job's cancel was asked: pushed to its worker. */
int jobq_enqueue_one(struct jobq *q, const struct req_enqueue *e, const char *enq_id, const char *reply_to,
                     long long run_at_ms, char *err, size_t errlen);
void jobq_on_replaced(void *arg, long long job);
/* The cancels asked after the first n taken back (the leases' cancel_asked cleared). */
void jobq_asked_cut(struct jobq *q, size_t n);
/* A job command put in the queue by jobq_admin (DB_OK or DB_FAULT). */
int jobq_apply_admin(struct jobq *q, struct msg *m, struct outcome *o, char *err, size_t errlen);

/* jobq_events.c: the outbox, published after COMMIT. push: b's text to topic; out_cut:
 * back to n entries; push_op: {"op":OP,"job":N,"attempt":A[,"state":S]}; push_empty:
 * a claim's empty answer; push_grant: a grant. */
void jobq_push(struct jobq *q, const char *topic, const struct jbuf *b);
void jobq_out_cut(struct jobq *q, size_t n);
void jobq_push_op(struct jobq *q, const char *topic, const char *op, long long job, long long attempt,
                  const char *state);
void jobq_push_empty(struct jobq *q, const char *topic, const char *claim);
void jobq_push_grant(struct jobq *q, const char *topic, const char *claim, const struct jobs_grant *g);

/* jobq_lease.c: the leases in memory; hello, beat, bye, gone on PREFIX/jobs/worker. */
struct lease *jobq_lease_find(struct jobq *q, long long job);
void jobq_lease_drop_at(struct jobq *q, size_t i);
void jobq_lease_drop(struct jobq *q, long long job);
struct lease *jobq_lease_add(struct jobq *q, long long job, long long attempt, const char *worker,
                             const char *session, const char *reply_to, long long lease_ms,
                             long long timeout_ms, long long started);
int jobq_apply_worker(struct jobq *q, const cJSON *root, const char *op, struct outcome *o, char *err,
                      size_t errlen);

/* jobq_workers.c: the sessions online (workers.h) as the workers' messages tell. hello:
 * its host, queues and jobs read (0, or -1 with the rejection in err: nothing changed);
 * heard: a beat or a claim of a session not ended (the caller checks; live_ms: how long
 * the session may then stay silent); end: bye or gone. */
int jobq_worker_hello(struct jobq *q, const cJSON *root, const char *worker, const char *session, char *err,
                      size_t errlen);
void jobq_worker_heard(struct jobq *q, const char *worker, const char *session, const char *const *queues,
                       int nq, long long live_ms);
void jobq_worker_end(struct jobq *q, const char *session);
/* Between batches: the sessions silent past their deadline dropped. The next deadline
 * (LLONG_MAX: none), for the loop's sleep. The sessions listed. */
void jobq_workers_tick(struct jobq *q, long long now);
long long jobq_workers_next(const struct jobq *q);
size_t jobq_workers_count(const struct jobq *q);

/* jobq_claim.c: waiting claims and ended sessions; a claim granted now, left waiting or
 * answered empty (DB_OK, DB_REJECT + err, DB_FAULT + err). */
void jobq_waiter_free(struct waiter *w);
/* Remove the waiters for which drop(w) says so, keeping the order of the others. */
void jobq_waiters_filter(struct jobq *q, int (*drop)(struct jobq *q, struct waiter *w, const void *arg),
                         const void *arg);
void jobq_session_end(struct jobq *q, const char *session);
int jobq_session_ended(const struct jobq *q, const char *session);
int jobq_claim(struct jobq *q, const struct claim *c, char *err, size_t errlen);

/* jobq_read.c: the fields of a job message, each 0 or -1 with err. fields_only: each
 * field of o is one of names (NULL-terminated); in_family: queue is family or family.*;
 * read_claim: a claim from o (a message, or the "claim" of a done/fail/release: with_op
 * 0, its reply_to the message's). */
int jobq_in_family(const char *family, const char *queue);
int jobq_fields_only(const cJSON *o, const char *const *names, const char *what, char *err, size_t errlen);
int jobq_get_name(const cJSON *o, const char *key, int required, const char **out, char *err, size_t errlen);
int jobq_get_int(const cJSON *o, const char *key, int required, long long lo, long long hi, long long *out,
                 char *err, size_t errlen);
int jobq_get_text(const cJSON *o, const char *key, size_t max, const char **out, char *err, size_t errlen);
int jobq_read_claim(struct jobq *q, const cJSON *o, int with_op, const char *family, const char *reply_to,
                    struct claim *c, char *err, size_t errlen);

/* jobq_end.c: done, fail, release; b's text as the outcome's extra receipt fields. */
int jobq_apply_end(struct jobq *q, struct msg *m, const cJSON *root, const char *op, const char *family,
                   struct outcome *o, char *err, size_t errlen);
void jobq_extra_set(struct outcome *o, struct jbuf *b);

#endif
