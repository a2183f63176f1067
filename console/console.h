/* console.h: mosqlite, the operator's command. Shared by its parts:
 *   main.c      options, config file and environment, the dispatch, exit codes
 *   commands.c  the command table and what each command does
 *   ask.c       questions to the writer and the reading of its answers
 *   watch.c     the commands that watch: tail, log
 *   jobs.c      the job queue's commands: jobs, job, retry, discard, cancel-job, workers, ...
 *   format.c    the output: human text, JSON, safe terminal text
 * The broker connection and the waiting for answers: publisher/cliconn.c, shared with
 * mosqlite-work. */
#ifndef MOSQLITE_CONSOLE_H
#define MOSQLITE_CONSOLE_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stddef.h>

#include "cliconn.h"

/* Exit status (the same codes as mosqlite-pub; the connection's calls return them). */
enum {
    EX_DONE = CLI_OK,           /* done */
    EX_FAILED = CLI_REFUSED,    /* refused (by the writer or the broker's ACL) or failed */
    EX_NOANSWER = CLI_NOANSWER, /* no answer within --timeout */
    EX_USAGE = CLI_USAGE,       /* bad arguments or config */
    EX_CONNECT = CLI_CONNECT,   /* cannot connect to the broker (or lost it) */
};

/* ---- format.c: output ---- */

/* Text for a terminal: control characters shown as ^X, \x9b-style C1 codes and other
 * escape sequences made harmless; with keep_sgr, colour sequences (ESC [ ... m) are
 * kept as they are. Returns a heap string; *had_sgr set when one was kept. */
char *fmt_term(const char *s, int keep_sgr, int *had_sgr);

/* A value as a cell of a table: strings as text (made safe), numbers as written,
 * null as "NULL". Heap string. */
char *fmt_cell(const cJSON *v);

/* "10.4 MiB" and the like into out. */
void fmt_bytes(double n, char *out, size_t len);

/* A number that may be absent: the text, or "-". */
void fmt_num(const cJSON *obj, const char *key, char *out, size_t len);

/* Print rows (an array of objects) as an aligned table with a header; columns in the
 * order of the first row's keys, skip (NULL or a key) left out. */
void fmt_table(const cJSON *rows, const char *skip);

/* Print a JSON value on one line to stdout. */
void fmt_json(const cJSON *v);

/* Parse one k=v (or k:=JSON) query argument into obj. 0, or -1 with a reason. */
int fmt_param(cJSON *obj, const char *arg, char *err, size_t errlen);

/* ---- commands.c ---- */

struct console {
    struct cliconn *c;
    const char *prefix;
    char reply[600];        /* PREFIX/reply/CLIENT_ID: answers come under it */
    unsigned seq;           /* the last answer topic used */
    int json, follow, timeout_ms;
    long long count;        /* tail: stop after this many messages (0: never) */
    int has_user;           /* logged in with a username: a missing message may be the ACL */
    volatile sig_atomic_t *stop;
};

struct command {
    const char *name;
    int min_args, max_args;     /* the arguments after the name (max -1: any number) */
    const char *args;           /* their synopsis */
    const char *help;           /* one line */
    int (*run)(struct console *k, const struct command *cmd, int argc, char **argv);
    const char *wire;           /* the protocol's name, for commands that share run */
    int needs_reply;            /* subscribe to the answer topic before running */
    /* NULL, or a check of the arguments before connecting: 0, or -1 with a reason */
    int (*check)(int argc, char **argv, char *err, size_t errlen);
};

extern const struct command commands[];

/* The command named name, or NULL. */
const struct command *command_find(const char *name);

/* Check a command's own arguments before connecting: EX_DONE or EX_USAGE (the reason
 * in err). */
int command_check(const struct command *cmd, int argc, char **argv, char *err, size_t errlen);

/* ---- ask.c: questions and answers ---- */

/* PREFIX/suffix, in one of four static buffers (valid for three more calls). */
const char *cmd_topic(struct console *k, const char *suffix);

/* Publish req (its reply_to set to a new answer topic) on topic to, and wait for the
 * answer. EX_DONE with *answer set (a JSON value), or another exit code (said on
 * stderr). */
int cmd_ask(struct console *k, const char *to, cJSON *req, int qos, cJSON **answer);

/* Ask the named query name with params (taken; NULL: none); EX_DONE with *answer (it
 * may carry "error"). */
int cmd_ask_query(struct console *k, const char *name, cJSON *params, cJSON **answer);

/* A string member of obj (NULL if not one), a number member (dflt if not one). */
const char *cmd_str(const cJSON *obj, const char *key);
double cmd_num(const cJSON *obj, const char *key, double dflt);

/* The writer's error text, made safe for the terminal, on stderr after what; EX_FAILED. */
int cmd_refused(const char *what, const char *error);

/* " (or the broker's ACL ...)" when logged in with a username, else "". */
const char *cmd_acl_hint(struct console *k);

/* ---- watch.c: tail, log and cancel-build (their entries in the command table) ---- */

int cmd_check_tables(int argc, char **argv, char *err, size_t errlen);
int cmd_run_tail(struct console *k, const struct command *cmd, int argc, char **argv);
int cmd_check_build(int argc, char **argv, char *err, size_t errlen);
int cmd_run_log(struct console *k, const struct command *cmd, int argc, char **argv);
int cmd_run_cancel_build(struct console *k, const struct command *cmd, int argc, char **argv);

/* ---- jobs.c: the job commands (their entries in the command table) ---- */

int cmd_check_job(int argc, char **argv, char *err, size_t errlen);
int cmd_check_queue(int argc, char **argv, char *err, size_t errlen);
int cmd_run_jobs(struct console *k, const struct command *cmd, int argc, char **argv);
int cmd_run_job(struct console *k, const struct command *cmd, int argc, char **argv);
int cmd_run_job_admin(struct console *k, const struct command *cmd, int argc, char **argv);
int cmd_run_workers(struct console *k, const struct command *cmd, int argc, char **argv);

#endif
