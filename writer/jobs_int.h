/* jobs_int.h: what jobs.c, jobs_lease.c and jobs_admin.c share (not for the rest of
 * the writer). */
#ifndef MOSQLITE_JOBS_INT_H
#define MOSQLITE_JOBS_INT_H

#include "jobs.h"

enum {
    ST_INSERT, ST_GET, ST_UNIQUE, ST_SLOTS, ST_BLOCKED, ST_BEST, ST_QUEUE, ST_QUEUE_ADD, ST_COUNT,
    ST_STATE, ST_LEASE, ST_ATT_ADD, ST_ATT_END, ST_CLAIM, ST_OUTCOME, ST_RUN_AT, ST_CANCEL_REQ,
    ST_RESET, ST_DUE, ST_NEXT, ST_SESSION, ST_RUNNING, ST_PAUSE, ST_MAX_RUNNING, ST_COUNTS, ST_INFO, ST_PROGRESS, ST_N
};

struct jobs {
    sqlite3 *h;
    sqlite3_stmt *st[ST_N];
    void (*trust)(void *arg, int on);
    void *trust_arg;
    unsigned long long rng;
    struct jobs_event *ev;
    size_t nev, capev;
};

/* A job's row as read (jobs_load); strings on the heap (jobs_row_free). */
struct jobs_row {
    long long id;
    char queue[JOBS_QUEUE_MAX + 1];
    int state;
    long long attempt, conc_limit, failures, max_attempts, lost, max_lost;
    long long backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, timeout_ms, priority, run_at_ms;
    int cancel_req, follow;
    char *conc_key, *unique_key, *worker, *payload, *created_at;
};

/* Statement i stepped with the trust hook around it; reset with its bindings cleared;
 * run to its end (0 or SQLite's code). */
int jobs_step(struct jobs *j, int i);
void jobs_reset(struct jobs *j, int i);
int jobs_exec(struct jobs *j, int i);
/* Bind text (NULL: SQL NULL) to parameter col of statement i, for the call only. */
void jobs_text(struct jobs *j, int i, int col, const char *s);

/* SQLite's code as DB_FAULT with its message in err. */
int jobs_fault(struct jobs *j, int rc, char *err, size_t errlen);
int jobs_no_job(long long id, char *err, size_t errlen);     /* DB_REJECT "no job N" */
int jobs_check_queue(const char *q, char *err, size_t errlen);   /* DB_OK / DB_REJECT */

/* Read job id: 1 found, 0 not (*rc SQLITE_DONE), -1 with SQLite's code in *rc. */
int jobs_load(struct jobs *j, long long id, struct jobs_row *r, int *rc);
void jobs_row_free(struct jobs_row *r);
/* The live job holding (queue, key): its id, 0 for none, -1 with *rc. */
long long jobs_holder(struct jobs *j, const char *queue, const char *key, int *rc);

/* Each 0 or SQLite's code. set_state: r's state becomes `to` (row, counts, event);
 * place: ready, or blocked when its key is full; promote: a slot of key was freed. */
int jobs_set_state(struct jobs *j, struct jobs_row *r, int to, long long now_ms);
int jobs_place(struct jobs *j, struct jobs_row *r, long long now_ms);
int jobs_promote(struct jobs *j, const char *key, long long now_ms);
int jobs_outcome(struct jobs *j, long long id, int failures, int lost, const char *result,
                 const char *error, const long long *exit_code);
int jobs_run_at(struct jobs *j, long long id, long long at_ms);

/* r's state into out (when out is not NULL). */
void jobs_end_of(const struct jobs_row *r, long long next_ms, struct jobs_end *out);

#endif
