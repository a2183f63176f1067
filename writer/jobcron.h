/* jobcron.h: recurring jobs, `job-cron` lines of the writer's config.
 *
 *   job-cron NAME MIN HOUR DOM MON DOW QUEUE PAYLOAD [KEY=VALUE...]
 *   job-cron NAME @MACRO QUEUE PAYLOAD [KEY=VALUE...]
 *
 * NAME: 1 to 128 printable ASCII characters, no blank, unique among the lines. The
 * schedule: the five fields of a crontab line or a macro (common/cron.h), in UTC.
 * QUEUE: a queue name as for an enqueue. PAYLOAD: one JSON value, read as strictly as a
 * request; it may hold blanks (it ends where the JSON value ends, and a blank must follow
 * it). Options, each at most once: catch_up=skip|one|all|all:N (below), and the enqueue
 * op's own options with their names and checks: priority, unique_key, on_duplicate
 * (ignore or replace), concurrency_key, concurrency, max_attempts, max_lost,
 * backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, timeout_ms (numbers in decimal).
 *
 * Each tick enqueues one job, in one transaction with the line's row in
 * mosqlite_job_cron (next_tick_ms moves past the tick, last_tick_ms is the tick): so a
 * tick is enqueued once across restarts and kill -9, whichever side of the COMMIT the
 * writer dies on. The job's enq_id is "cron:NAME@TIME" (the tick, RFC 3339) and so is
 * its unique key unless the line gives one. No polling: the next tick is a deadline of
 * the writer's loop.
 *
 * Catch-up, for ticks that came while the writer was down (or stopped, or stalled):
 * the ticks due are those from the row's next_tick_ms to now. A tick reached within
 * JOBCRON_LATE_MS of its time is on time and always enqueued; the others were missed:
 *   skip    none of the missed ticks;
 *   one     the latest missed tick only (the default: a nightly build missed while the
 *           box was off runs once when it is back, on the latest state, not once per
 *           night it was off, and not never);
 *   all[:N] every missed tick, at most the N latest (default and at most
 *           JOBCRON_ALL_MAX), oldest first.
 * A line new to the file starts at its next tick (nothing is caught up for it). A
 * line removed from the file: its row is deleted at the next start (logged), so a line
 * that comes back starts afresh rather than catching up from a forgotten past. A
 * changed schedule applies from its next tick; ticks missed are counted by it. */
#ifndef MOSQLITE_JOBCRON_H
#define MOSQLITE_JOBCRON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cfg.h"
#include "cron.h"
#include "jobs.h"
#include "req.h"

#define JOBCRON_NAME_MAX 128
#define JOBCRON_LATE_MS  60000        /* a tick reached later than this was missed */
#define JOBCRON_ALL_MAX  1000         /* catch_up=all: at most this many missed ticks */

enum jobcron_catch { JOBCRON_SKIP, JOBCRON_ONE, JOBCRON_ALL };

struct jobcron_spec {
    char name[JOBCRON_NAME_MAX + 1];
    struct cron cron;
    enum jobcron_catch catch_up;
    long long catch_max;              /* all: the most missed ticks enqueued */
    cJSON *root;                      /* {"payload": ..., "queue": ..., options}: owned */
    struct req_enqueue enq;           /* read from root (points into it) */
};

/* Parse one line (the value after `job-cron`). 0, or -1 with the reason in err ("hour:
 * \"24\" is out of range 0-23", ...). jobcron_spec_free after a 0. */
int jobcron_parse(const char *line, struct jobcron_spec *s, char *err, size_t errlen);
void jobcron_spec_free(struct jobcron_spec *s);

/* Every line, as the config check before the database is opened: 0, or -1 with
 * "FILE:LINE: job-cron: reason" in err (a name used twice names both lines). */
int jobcron_check(const struct cfg_list *lines, char *err, size_t errlen);

/* The enqueue options of e over n (those e gives; n keeps the others). */
void jobcron_fill(struct jobs_new *n, const struct req_enqueue *e);

/* ---- the schedules, at run time (writer's thread; tables through jobs.h) ---- */

struct jobcron;

/* Parse the lines (checked already: NULL + err otherwise) and read their rows. */
struct jobcron *jobcron_new(const struct cfg_list *lines, struct jobs *jobs, long long now_ms, char *err,
                            size_t errlen);
void jobcron_free(struct jobcron *c);

/* The earliest wall-clock time (ms) at which jobcron_step has work: a tick due, or the
 * rows to bring in line with the config after a start; LLONG_MAX for none. */
long long jobcron_next_ms(const struct jobcron *c);

/* In a batch's transaction: the rows of lines removed from the config deleted (once);
 * every line whose tick has come enqueues its job(s) per its catch-up and moves its row
 * on. base: the writer's defaults for an enqueue. on_replaced (or NULL): a running job
 * superseded by a tick's job (on_duplicate=replace), whose cancel is to be pushed to
 * its worker. *enqueued gets how many jobs. DB_OK / DB_FAULT (roll the batch back). */
int jobcron_step(struct jobcron *c, const struct jobs_new *base, long long now_ms,
                 void (*on_replaced)(void *arg, long long job), void *arg, int *enqueued, char *err,
                 size_t errlen);

/* After the batch's COMMIT: the new ticks hold. After a rollback: as before the step. */
void jobcron_committed(struct jobcron *c);
void jobcron_rolled_back(struct jobcron *c);

/* How many lines. */
size_t jobcron_count(const struct jobcron *c);

#endif
