/* pipe_cancel.h: the build wrapper hears an operator's cancel (pipe_cancel.c): its
 * build's row turned `cancelled` for this attempt stops the command (SIGTERM to its
 * process group, SIGKILL 10 s later if it is still there). */
#ifndef MOSQLITE_PIPE_CANCEL_H
#define MOSQLITE_PIPE_CANCEL_H

#include "pipe.h"

#include <cJSON.h>

/* Watch the row that row_where names (--build-where or {"id": N}, plus the attempt) in
 * pc->build_table, on a connection of its own (pc->mo's broker and login). Call once the
 * command has started. 0, or -1 when it cannot (the build then runs unwatched). */
int cancel_watch_start(const struct pipe_conf *pc, const cJSON *row_where);

/* The command has ended: stop watching. 1 when the build was cancelled. */
int cancel_watch_stop(void);

#endif
