/* pipe_build.h: the build's row in the builds table (pipe_build.c): its start, its
 * end, and the last will that marks it lost. pipe_check_build() is in pipe.h. */
#ifndef MOSQLITE_PIPE_BUILD_H
#define MOSQLITE_PIPE_BUILD_H

#include "pipe.h"

/* The start (start = 1: an upsert, the row is made if missing, status running) or the
 * end (an update: status passed, failed or cancelled from wstatus, the command's wait
 * status, and signalled, whether this program got a signal; duration ms). A JSON
 * text to free with cJSON_free(), or NULL when out of memory. */
char *build_record(const struct pipe_conf *pc, char **cmd, int start, int wstatus,
                   int signalled, double ms);

/* The build's last will: an update of its row to `lost`, only while it is `running`.
 * Freed with cJSON_free(); NULL when out of memory. */
char *build_will(const struct pipe_conf *pc);

#endif
