/* autobackup.h: scheduled backups with rotation (`backup-every`, `backup-keep`).
 *
 * Every `backup-every` the writer backs the database up into backup-dir, through
 * backup.c (in steps between batches, synced and renamed by a thread), as
 * BASE-YYYYMMDDTHHMMSSZ.db: BASE the database's file name without its directory and
 * a final ".db", the time (UTC) the backup started. Once one is done, the newest
 * `backup-keep` files of that form in backup-dir are kept and the older ones of that
 * form deleted; no other file is touched. Across restarts the next backup is due one
 * period after the time in the newest such file's name (at once when that is past).
 * A scheduled backup waits while an operator's backup (PREFIX/admin) is copied; one
 * that fails is logged and tried again a period later. */
#ifndef MOSQLITE_AUTOBACKUP_H
#define MOSQLITE_AUTOBACKUP_H

#include <sqlite3.h>
#include <stddef.h>

#define AUTOBACKUP_NAME_MAX 512

struct autobackup_opts {
    sqlite3 *h;                  /* the writer's connection */
    const char *db_path;
    const char *dir;             /* backup-dir */
    long long every_ms;          /* > 0 */
    long long keep;              /* >= 1 */
    long long step_pages;
};

/* The name of a scheduled backup of base (the database's file name) started at
 * wall_ms, into out (AUTOBACKUP_NAME_MAX bytes). Pure. */
void autobackup_name(const char *base, long long wall_ms, char *out);
/* Is name one of base's scheduled backups? 1 with its time in *wall_ms, else 0. Pure. */
int autobackup_parse_name(const char *base, const char *name, long long *wall_ms);

struct autobackup;

/* Reads backup-dir for the newest scheduled backup. The options are copied; what
 * they point to must outlive it. NULL when out of memory. */
struct autobackup *autobackup_new(const struct autobackup_opts *o);
/* A backup in progress is abandoned (its partial file removed). Accepts NULL. */
void autobackup_free(struct autobackup *a);

/* From the loop, between batches: start the backup when due (unless other_busy, an
 * operator's backup being copied), copy a step, rotate once done. Accepts NULL. */
void autobackup_tick(struct autobackup *a, int other_busy);
/* How long the loop may sleep: 0 while a backup is copied, until it is due. */
int autobackup_wait_ms(const struct autobackup *a, int max_ms);

#endif
