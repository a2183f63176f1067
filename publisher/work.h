/* work.h: mosqlite-work, the job agent (not part of the library). Its parts:
 *   work.c       options, config file and environment, signals, exit status
 *   work_agent.c the agent: hello, claims, grants, beats, outcomes, cancel, stop
 *   work_session.c the agent's session: its connection and Last Will, renewed, its topic
 *   work_job.c   one job: its command, its log through a spool, its end
 *   work_report.c a job's result and progress: the files its command writes
 *   work_msg.c   what it reads from the broker, and those files' JSON (pure, fuzzed)
 * The job messages go to PREFIX/jobs/..., which libmosqlite does not publish to, so
 * the agent drives libmosquitto itself for them (cliconn.c, shared with mosqlite); each
 * job's log goes through the log pipe's spool and delivering thread (pipe_read.c,
 * pipe_deliver.c, spool.c) on libmosqlite, as mosqlite-pub's build wrapper does. */
#ifndef MOSQLITE_WORK_H
#define MOSQLITE_WORK_H

#include "cliconn.h"
#include "mosqlite.h"
#include "pipe.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit status, as mosqlite-pub's. */
enum {
    WORK_EXIT_OK = 0,           /* stopped cleanly: every job finished or released */
    WORK_EXIT_REFUSED = 1,      /* the writer or the broker refused the agent (its claim) */
    WORK_EXIT_UNCONFIRMED = 2,  /* stopped with an outcome or a log not confirmed */
    WORK_EXIT_USAGE = 3,        /* bad arguments or config */
    WORK_EXIT_CONNECT = 4,      /* cannot connect */
};

#define WORK_MAX_QUEUES 16
#define WORK_MAX_JOBS 256

/* ---- the agent's settings ---- */

struct work_conf {
    char *queues[WORK_MAX_QUEUES];  /* in the order claimed */
    int nqueues;
    char **cmd;                     /* the command and its arguments, NULL-terminated */
    const char *prefix;
    const char *worker;             /* the worker's name (also the MQTT client id) */
    const char *host;               /* this machine's name, told in hello and claims */
    char session[MOSQLITE_ID_LEN + 1];  /* random per run: its Last Will names it */
    int jobs;                       /* slots */
    int wait_ms;                    /* a claim's long poll */
    int grace_ms;                   /* SIGTERM to SIGKILL when a command is stopped */
    int drain_s;                    /* after SIGTERM, how long jobs may go on (0: no limit) */
    int will_delay_s;
    int keepalive;
    int linger_s;                   /* at the agent's end, log delivery without progress */
    int verbose;
    /* the log: the build wrapper's options */
    const char *log_table, *log_column, *stream_column, *time_column, *build_table;
    const char *spool_base;         /* where each job's spool directory is made */
    unsigned long long spool_max;
    int tee;
    struct mosqlite_options mo;     /* the log's connections (client ids left to the library) */
    const struct cfg_client *cl;    /* the jobs connection's options */
};

/* ---- work_msg.c ---- */

enum work_in_kind { WM_OTHER, WM_GRANT, WM_EMPTY, WM_CANCEL, WM_LEASE_LOST, WM_RECEIPT };

/* A message of the writer on the agent's topic. Numbers are -1 when absent or not an
 * integer within 0..2^53; strings are heap copies or NULL. A grant (WM_GRANT) has job,
 * attempt, claim and payload (its text as sent); build_id is the text of the payload's
 * build_id when it is a number or a string. A message without "op" is a receipt
 * (claim_error: the refusal of the claim an outcome carried). */
struct work_in {
    enum work_in_kind kind;
    long long job, attempt, lease_ms, timeout_ms, lost;
    char *claim, *queue, *enqueued_at, *payload, *build_id;
    char *id, *status, *error, *claim_error;
};

/* Read text[0..len). 0 (m filled, free with work_in_free), or -1 when it is not a JSON
 * object (m empty). */
int work_in_read(struct work_in *m, const char *text, size_t len);
void work_in_free(struct work_in *m);

/* The writer's status: 1 when it says online, with its start time copied to since (n
 * bytes); else 0. */
int work_status_read(const char *text, size_t len, char *since, size_t n);

/* A job's result or progress file, text[0..len): 1 with the value at [*start, *end)
 * (one JSON value, checked as the writer checks a request, at most max bytes as JSON
 * printed compactly), 0 when it holds nothing (empty or blank), -1 with the reason in
 * err (named what). */
int work_value_read(const char *text, size_t len, const char *what, size_t max, size_t *start,
                    size_t *end, char *err, size_t errlen);

#define WORK_RESULT_MAX 65536           /* the writer's bounds, as JSON: a done's result */
#define WORK_PROGRESS_MAX 4096          /* a progress */

/* ---- work_job.c ---- */

enum job_stop { STOP_NONE, STOP_CANCEL, STOP_LEASE_LOST, STOP_TIMEOUT, STOP_RELEASE };

struct job {
    /* from the grant */
    long long id, attempt, lease_ms, timeout_ms, lost;
    char *queue, *payload, *claim, *enqueued_at;
    char *build_id;                 /* JSON text: the payload's build_id, else the job id */
    /* the agent's side (main thread) */
    double started_ms;              /* monotonic */
    enum job_stop stop;             /* why it is being stopped, if it is */
    double term_at, kill_at;        /* when SIGTERM / SIGKILL were sent (0: not yet) */
    int outcome_sent;               /* done/fail/release/cancelled published */
    char out_id[MOSQLITE_ID_MAX + 1];
    char next_claim[64];            /* the claim that goes with the outcome, or "" */
    char *out_msg;                  /* the outcome's message, republished until answered */
    double out_retry_at;
    int out_backoff_ms;
    /* shared with the job's thread */
    pthread_mutex_t lock;
    pid_t pid;                      /* the command's process (and group), 0 before, -1 after */
    volatile int finished;          /* the thread is done: wstatus, log_ok set */
    int wstatus;
    int started;                    /* the command ran (else it could not start) */
    int log_ok;                     /* every line of it is in the file */
    unsigned long long lines, dropped, pending;
    char spool_dir[4096];
    pthread_t th;
    const struct work_conf *wc;
    volatile int abandon;           /* stop waiting for the log (the agent's end) */
    /* the result and progress files (work_report.c) */
    char report_dir[4096];          /* the job's own directory for them, or "" */
    char *result;                   /* the result's JSON text (set before finished), or NULL */
    char *progress;                 /* the progress file's text last looked at, or NULL */
};

/* Start the job's thread: spool, command, log, end. 0, or -1 (errno). */
int job_start(struct job *j);

/* Send the command's process group sig (while it runs). */
void job_signal(struct job *j, int sig);

/* Join the finished thread and free the job. */
void job_free(struct job *j);

/* ---- work_report.c ---- */

/* Make the job's directory for its result and progress files (j->report_dir, "" when
 * it cannot be made: said, and the command runs without them). */
void job_report_open(struct job *j);

/* Put MOSQLITE_JOB_RESULT and MOSQLITE_JOB_PROGRESS into env[*n] (heap strings). */
void job_report_env(const struct job *j, char **env, int *n);

/* Once the command has ended: read its result file into j->result. When it is refused,
 * the reason goes to the agent's stderr and is returned (to be told in the job's log),
 * else NULL. reason has room for n bytes. */
const char *job_report_result(struct job *j, char *reason, size_t n);

/* The progress file, when it has changed since it was last looked at and holds a
 * value: the progress message for (job, attempt) to send (heap), else NULL. A changed
 * file that holds no valid value is said once on stderr and skipped. */
char *job_report_progress(struct job *j);

/* Remove the job's directory and what is in it. */
void job_report_close(struct job *j);

/* ---- work_agent.c ---- */

/* Run the agent until it is told to stop and has stopped; the exit status. stop
 * counts SIGTERM/SIGINT. */
int agent_run(struct work_conf *wc, volatile sig_atomic_t *stop);

#endif
