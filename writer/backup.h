/* backup.h: an online backup of the database into backup-dir/NAME (the admin command
 * `backup`, run by maint.c).
 *
 * SQLite's online backup API from the writer's own connection, in steps of step_pages
 * pages, one per call of backup_step() between batches. A write made meanwhile by that
 * connection is copied into the backup too (SQLite does it), so the copy holds every
 * commit made before it ends. It goes to backup-dir/.NAME.partial; once complete, a
 * thread syncs it and renames it to backup-dir/NAME, so the loop never waits on fsync.
 *
 * The rename replaces whatever NAME was: a name that is, or could become, one of the
 * database's own files (when backup-dir is the database's directory) is refused at
 * the start. Nothing here publishes: maint.c answers the command. */
#ifndef MOSQLITE_BACKUP_H
#define MOSQLITE_BACKUP_H

#include <sqlite3.h>
#include <stddef.h>

#include "jbuf.h"

struct backup_opts {
    sqlite3 *h;                  /* the writer's connection */
    const char *db_path;
    const char *dir;             /* backup-dir: made if missing */
    long long step_pages;
};

struct backup;

/* Would a file NAME beside the database file base (its name without the directory)
 * be, or could it become, one of the database's own files: the database, its -wal,
 * -shm, -journal, SQLite's super-journals (-mj...), the writer's -writer.lock and
 * -writer.session (mq_session.c), a snapshot's temporary BASE.snapshot-PID (and its side
 * files), a replica's BASE.incoming? Pure. */
int backup_name_is_live(const char *base, const char *name);

/* Start copying into dir/name (name already checked as a plain file name). NULL with
 * the reason in err. The options are copied; the connection and strings they point to
 * must outlive it. */
struct backup *backup_start(const struct backup_opts *o, const char *name, char *err, size_t errlen);

enum backup_state { BACKUP_MORE, BACKUP_DONE, BACKUP_FAILED };
/* One step; once copied, the sync starts; once synced, BACKUP_DONE (then
 * backup_result) or BACKUP_FAILED (the reason in err). BACKUP_MORE: call again. */
enum backup_state backup_step(struct backup *b, char *err, size_t errlen);
/* Is there something for backup_step() to do now (not waiting for the sync thread)? */
int backup_ready(const struct backup *b);
/* The members of a done backup's answer: ,"name":...,"path":...,"bytes":...,"pages":...,
 * "ms":...,"steps":...,"longest_step_ms":... */
void backup_result(const struct backup *b, struct jbuf *out);
const char *backup_name(const struct backup *b);
const char *backup_path(const struct backup *b);
/* Wait for the sync thread, close; unless done, remove the partial file. Accepts NULL. */
void backup_free(struct backup *b);

#endif
