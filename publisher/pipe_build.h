/* pipe_build.h: the build's row in the builds table (pipe_build.c): its start, its
 * end, and the last will that marks it lost. pipe_check_build() is in pipe.h. */
#ifndef MOSQLITE_PIPE_BUILD_H
#define MOSQLITE_PIPE_BUILD_H

#include "pipe.h"

#include <cJSON.h>

/* The attempt column (in the log table and the builds table), or NULL: none (no
 * build recorded, or --attempt-column ''). */
const char *build_attempt_column(const struct pipe_conf *pc);

/* This run's attempt as JSON text: --with's value for the attempt column when it has
 * one, else the time now in Unix milliseconds. NULL when there is no attempt column.
 * Freed with cJSON_free(). */
char *build_attempt_new(const struct pipe_conf *pc);

/* --with with the attempt added (unless it has it): the lines' values. NULL when there is
 * no attempt. Freed with cJSON_free(). */
char *build_with_attempt(const struct pipe_conf *pc);

/* This run's row: {"id": N} or --build-where, plus the attempt. NULL when out of memory.
 * Freed with cJSON_Delete(). */
cJSON *build_row_where(const struct pipe_conf *pc);

/* The start: an upsert (the row is made if missing): status running, started_at now,
 * the attempt, and the end's columns cleared. A JSON text to free with cJSON_free(), or
 * NULL when out of memory. */
char *build_start(const struct pipe_conf *pc, char **cmd);

/* The end, two updates of this attempt's row: *status_rec sets status passed, failed or
 * cancelled (from wstatus, the command's wait status, and signalled: whether this program
 * got a signal or an operator's cancel) only while the row says running, so it never
 * overwrites an operator's `cancelled`; *facts_rec sets exit_code, finished_at and
 * duration_ms (ms) whatever the status. Each freed with cJSON_free() (NULL: no memory). */
void build_end(const struct pipe_conf *pc, int wstatus, int signalled, double ms,
               char **status_rec, char **facts_rec);

/* The build's last will: an update of its row to `lost`, only while this attempt is
 * `running`.
 * Freed with cJSON_free(); NULL when out of memory. */
char *build_will(const struct pipe_conf *pc);

#endif
