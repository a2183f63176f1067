/* hook.h: commands run after a commit, outside the write path.
 *
 * A config line `hook TABLE OP COMMAND ARGS...` runs COMMAND (found on PATH, no shell,
 * fork and exec) after every commit that changed TABLE by OP, with that commit's event
 * JSON (the text published on PREFIX/events/TABLE) on its standard input. TABLE and OP
 * may be `*` for any. At most `max` commands run at once; the others wait in a queue of
 * at most `queue_max` (beyond it an event's hook is dropped and reported). A command
 * still running after `timeout_ms` is killed (SIGKILL to its process group).
 *
 * Nothing here ever waits for a command: hook_event() only queues and forks, and
 * hook_tick(), called from the writer's loop, reaps finished children with
 * waitpid(WNOHANG) (SIGCHLD only sets a flag that makes the loop come round at once),
 * kills the late ones and starts the queued ones. A command that fails (non-zero exit,
 * killed by a signal), is timed out, or is dropped is logged and reported through the
 * caller's function, which publishes it on PREFIX/hooks; a command that succeeds is
 * logged at debug level only.
 *
 * The parsing of a hook line and the JSON of a report are pure (tested in tests/unit). */
#ifndef MOSQLITE_HOOK_H
#define MOSQLITE_HOOK_H

#include <stddef.h>

#include "cfg.h"
#include "jbuf.h"

/* One `hook` line, parsed. Owns its strings (free with hook_spec_free). */
struct hook_spec {
    char *table;          /* a table name, or "*" */
    char *op;             /* insert, upsert, update, delete, or "*" */
    char **argv;          /* the command and its arguments, NULL-terminated */
    int argc;
    char *command;        /* argv joined by spaces, for logs and reports */
};

/* Parse "TABLE OP COMMAND [ARG...]" (words split on blanks; no quoting, no shell).
 * 0, or -1 with the reason in err. */
int hook_parse(const char *line, struct hook_spec *out, char *err, size_t errlen);
void hook_spec_free(struct hook_spec *s);
/* The `hook` lines as config, before anything is opened: each parses. 0, or -1 with
 * "FILE:LINE: hook: why" in err. */
int hook_check(const struct cfg_list *lines, char *err, size_t errlen);
/* Does the spec match an event of table (case-insensitive, as SQLite names) and op? */
int hook_matches(const struct hook_spec *s, const char *table, const char *op);

/* What became of one run, as published on PREFIX/hooks:
 *   {"command":"...","table":"...","op":"...","outcome":"failed","exit_status":3,
 *    "signal":null,"ms":12}
 * outcome is "failed" (exit_status non-zero or killed by signal), "timeout" (killed
 * at the time limit: signal 9), "dropped" (the queue was full) or "error" (could not
 * be started: error says why). exit_status and signal are null when they do not apply.
 * 0, or -1 when out of memory. */
struct hook_result {
    const char *command, *table, *op;
    const char *outcome;
    int exit_status;      /* -1: none */
    int signal;           /* 0: none */
    long long ms;         /* from start to end, or 0 */
    const char *error;    /* or NULL */
};
int hook_report(struct jbuf *b, const struct hook_result *r);
/* At most 10 failures a second are logged and published; the report of the others:
 * {"outcome":"suppressed","count":N,"ms":M}, M the span they were counted in. */
int hook_report_suppressed(struct jbuf *b, long long count, long long ms);

/* Called for every failed, timed-out, dropped or unstartable run: json is the report. */
typedef void (*hook_publish_fn)(void *ud, const char *json, size_t len);

struct hooks;

/* From the config's `hook` lines (lines may be empty: then no hooks, hook_event does
 * nothing). Installs the SIGCHLD handler. NULL + err on a bad line or out of memory. */
struct hooks *hook_new(const struct cfg_list *lines, int max, long long timeout_ms,
                       int queue_max, hook_publish_fn publish, void *ud,
                       char *err, size_t errlen);
/* Kill what still runs, reap it, free. Accepts NULL. */
void hook_free(struct hooks *h);

/* After a commit: queue a run of every hook matching (table, op) with json (len bytes)
 * on its stdin, and start what the limit allows. Never waits. */
void hook_event(struct hooks *h, const char *table, const char *op, const char *json, size_t len);

/* From the loop: reap, report, kill the late, start the queued. Never waits. */
void hook_tick(struct hooks *h);

/* How long the loop may sleep for the hooks' sake: 0 when a child has exited (SIGCHLD
 * seen) or a queued run can start, else until the next time limit, capped at max_ms. */
int hook_wait_ms(const struct hooks *h, int max_ms);

/* Runs now in progress and waiting. */
int hook_running(const struct hooks *h);
int hook_queued(const struct hooks *h);

#endif
