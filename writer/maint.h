/* maint.h: running the maintenance commands of PREFIX/admin (read by admin.c).
 *
 * Nothing here holds up writes for more than a moment:
 *   backup           SQLite's online backup API from the writer's own connection, in
 *                    steps run by maint_tick() between batches (backup.h).
 *   integrity_check, stats
 *                    on a read-only connection of their own, in a thread; the loop only
 *                    collects the answer.
 *   checkpoint       sqlite3_wal_checkpoint_v2(TRUNCATE) between batches: it waits for
 *                    readers at most busy-timeout-ms.
 *   optimize         PRAGMA optimize (with an analysis limit) on a short-lived
 *                    connection, between batches.
 *   pause, resume    close the request connection (the broker keeps the requests
 *                    queued) and open it again; the status says "paused": true meanwhile.
 *
 * One backup and one threaded command at a time; another of the same kind meanwhile is
 * answered with an error. */
#ifndef MOSQLITE_MAINT_H
#define MOSQLITE_MAINT_H

#include <sqlite3.h>
#include <stddef.h>

#include "admin.h"
#include "batch.h"
#include "mq.h"
#include "schema.h"

struct maint_opts {
    const char *db_path;
    sqlite3 *h;                      /* the writer's connection (backup, checkpoint) */
    const struct schema *schema;     /* the tables stats counts */
    const char *backup_dir;          /* NULL or "": backups refused */
    long long step_pages;            /* pages copied per step of a backup */
    long long busy_timeout_ms;
    struct mq *mq;                   /* answers, and pause */
    struct batch *batch;             /* the status's "paused" */
};

struct maint;

/* All arguments must outlive it. NULL when out of memory. */
struct maint *maint_new(const struct maint_opts *o);
/* Abandon a backup in progress (its partial file removed), wait for the thread. */
void maint_free(struct maint *m);

/* Run a command read on PREFIX/admin (ctl.c, admin_read), answering on to (never
 * NULL) with corr as MQTT 5 Correlation Data. */
void maint_command(struct maint *m, const struct admin_req *r, const char *to,
                   const void *corr, int corrlen);

/* From the loop, between batches: a step of the backup, the thread's answer, pause kept. */
void maint_tick(struct maint *m);
/* How long the loop may sleep: 0 while a backup is being copied. */
int maint_wait_ms(const struct maint *m, int max_ms);
int maint_paused(const struct maint *m);
/* An operator's backup is being made (scheduled backups wait for it, autobackup.h). */
int maint_backup_busy(const struct maint *m);

#endif
