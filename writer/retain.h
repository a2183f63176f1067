/* retain.h: retention: rows older than an age deleted by the writer, in small steps.
 *
 * A config line `retain TABLE COLUMN AGE [UNIT]` keeps TABLE's rows whose COLUMN is
 * younger than AGE (30d, 12h, 90m, 45s). COLUMN is a time: in a column of TEXT
 * affinity, RFC 3339 text in UTC as the example schema's defaults write it
 * (strftime('%Y-%m-%dT%H:%M:%fZ')); in a column of numeric affinity, Unix time in
 * UNIT, `s` or `ms` (required there, refused on a TEXT column). A row whose COLUMN is
 * NULL or not such a time is kept. A text time with an offset east of UTC is pruned up
 * to that offset late, never early.
 *
 * The lines are read twice: their words before anything is opened (retain_check, a
 * config error), and against the schema once the migrations have run (retain_open: the
 * table exists and is not internal, has a rowid, the column exists with a fitting
 * type). A column without an index is warned about: each pass then reads the whole
 * table, in steps.
 *
 * Pruning goes in passes, one step per turn of the writer's loop, between batches:
 * a step examines at most `batch` rows from where the last step stopped (in the
 * column's index order when it has one, else in rowid order), deletes the old ones
 * among them by rowid, and is its own short transaction, sealed with the next
 * sequence number and published on PREFIX/changes like any commit (changes.h), so
 * replicas delete the same rows. A step that deletes nothing commits nothing. Steps
 * run back to back while no request waits; while requests wait, at most one every
 * `every_ms`. A pass ends when a step finds fewer rows than it may examine; the next
 * pass starts AGE/100 later (at least 1 s, at most 60 s). Deleted rows make no events
 * and run no hooks: retention is the writer's housekeeping, not a request. */
#ifndef MOSQLITE_RETAIN_H
#define MOSQLITE_RETAIN_H

#include <stddef.h>

#include "cfg.h"
#include "changes.h"
#include "db.h"
#include "mq.h"

enum retain_unit { RETAIN_TEXT, RETAIN_S, RETAIN_MS };

/* One `retain` line, parsed. Owns its strings (free with retain_spec_free). */
struct retain_spec {
    char *table, *column;
    long long age_ms;
    enum retain_unit unit;   /* RETAIN_TEXT when no UNIT was given */
};

/* "30d", "12h", "90m", "45s": a whole number, then d, h, m or s; from 1 s to 100
 * years. 0 with the milliseconds in *ms, or -1. Pure. */
int retain_duration(const char *s, long long *ms);

/* "TABLE COLUMN AGE [UNIT]". 0, or -1 with the reason in err. Pure. */
int retain_parse(const char *line, struct retain_spec *out, char *err, size_t errlen);
void retain_spec_free(struct retain_spec *s);
/* The `retain` lines as config, before anything is opened: each parses, no table and
 * column twice. 0, or -1 with "FILE:LINE: retain: why" in err. */
int retain_check(const struct cfg_list *lines, char *err, size_t errlen);

struct retain_opts {
    const struct cfg_list *lines;   /* checked by retain_check */
    long long batch;                /* rows a step examines at most */
    long long every_ms;             /* while requests wait: a step at most this often */
};

struct retain;

/* The lines against db's schema; db and changes must outlive it. NULL + err
 * ("FILE:LINE: retain: why") for a line that does not fit the schema; NULL without a
 * reason when there are no lines. */
struct retain *retain_open(struct db *db, struct changes *changes, const struct retain_opts *o,
                           char *err, size_t errlen);
void retain_free(struct retain *r);   /* accepts NULL */

/* From the loop, between batches: one step, when one is due; its changeset published
 * on mq. waiting: requests are queued. Nothing is done while blocked (paused, or the
 * database stalled). */
void retain_tick(struct retain *r, struct mq *mq, int waiting, int blocked);
/* How long the loop may sleep: 0 while a pass is under way (and not blocked), else
 * until the next pass, at most max_ms. Accepts NULL. */
int retain_wait_ms(const struct retain *r, int max_ms, int blocked);

#endif
