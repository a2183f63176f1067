/* admin.h: maintenance commands on PREFIX/admin, parsed with no I/O.
 *
 * A command is one JSON object with "cmd" and "reply_to" (or an MQTT v5 Response
 * Topic), answered on that topic with {"cmd": ..., "ok": true, ...} or
 * {"cmd": ..., "error": "..."}. It comes through the door for control messages
 * (ctl.c), which reads the payload strictly and works out where the answer goes. The
 * commands:
 *
 *   {"cmd": "backup", "name": "nightly.db"}   an online copy into backup-dir/NAME
 *   {"cmd": "checkpoint"}                      the WAL into the file, and truncated
 *   {"cmd": "integrity_check"}                 PRAGMA integrity_check
 *   {"cmd": "optimize"}                        PRAGMA optimize
 *   {"cmd": "stats"}                           tables, rows, sizes, ids kept
 *   {"cmd": "pause"} / {"cmd": "resume"}       stop taking requests, and go on
 *   {"cmd": "job_retry", "job": N}             and job_discard, job_cancel, job_run_now
 *   {"cmd": "queue_pause", "queue": "Q"}       and queue_resume
 *   {"cmd": "workers", "limit": N}             the worker sessions online (from memory)
 *
 * admin_read() checks the object's fields: only "cmd", "name", "job", "queue", "limit",
 * "id" and "reply_to"; "cmd" a known command; "limit" for workers only; "name" for a backup only, a plain file name, never
 * a path; "id" (optional) 1 to 128 printable ASCII characters, as a request's. maint.c
 * runs what it returns; a maintenance command whose id it has run before (among the
 * last ADMIN_IDS_KEPT) is answered {"cmd": ..., "ok": true, "id": ..., "duplicate":
 * true} and not run again, so that a command republished until answered runs once. */
#ifndef MOSQLITE_ADMIN_H
#define MOSQLITE_ADMIN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "jbuf.h"

enum admin_cmd {
    ADMIN_BACKUP, ADMIN_CHECKPOINT, ADMIN_INTEGRITY, ADMIN_OPTIMIZE, ADMIN_STATS,
    ADMIN_PAUSE, ADMIN_RESUME,
    /* The job queue's commands (run in a batch by jobq.c). */
    ADMIN_JOB_RETRY, ADMIN_JOB_DISCARD, ADMIN_JOB_CANCEL, ADMIN_JOB_RUN_NOW, ADMIN_QUEUE_PAUSE,
    ADMIN_QUEUE_RESUME,
    /* Answered at once from the job queue's memory (jobq_workers_answer). */
    ADMIN_WORKERS, ADMIN_NCMDS
};

extern const char *const admin_names[];

#define ADMIN_NAME_MAX  128       /* longest backup file name */
#define ADMIN_ID_MAX    128       /* longest id, as a request's */
#define ADMIN_IDS_KEPT  256       /* the ids of the last commands run, kept in memory */

struct admin_req {
    int cmd;                          /* enum admin_cmd, or -1 when not known */
    char name[ADMIN_NAME_MAX + 1];    /* backup: the file name */
    char id[ADMIN_ID_MAX + 1];        /* "" when the command has none */
    long long job;                    /* job_*: the job */
    char queue[129];                  /* queue_*: the queue */
    int limit;                        /* workers: sessions listed at most */
};

/* The job commands run in a batch (not workers). */
#define ADMIN_IS_JOB(c) ((c) >= ADMIN_JOB_RETRY && (c) < ADMIN_WORKERS)

/* A command from its object (read by ctl.c). 0, or -1 with the error text for the
 * answer in err; r->cmd is set whenever it could be read, so the error names it. */
int admin_read(const cJSON *root, struct admin_req *r, char *err, size_t errlen);

/* Is name a plain file name: 1 to ADMIN_NAME_MAX of [A-Za-z0-9._-], not starting with
 * a dot (so never "..", never hidden, never a path)? */
int admin_name_ok(const char *name);

/* {"cmd":"NAME","error":"..."}; cmd may be NULL (the command could not be read). */
int admin_error(struct jbuf *b, const char *cmd, const char *error);
/* {"cmd":"NAME","ok":true then the caller's members, then admin_end() closes it. */
void admin_ok(struct jbuf *b, const char *cmd);
int admin_end(struct jbuf *b);

#endif
