/* request.h: library-internal JSON helpers shared by client.c and request.c (not
 * installed). Internal names carry the mosqlite__ prefix. */
#ifndef MOSQLITE_REQUEST_H
#define MOSQLITE_REQUEST_H

#include "mosqlite.h"

/* Internal functions are not exported from the shared library. */
#ifndef MOSQLITE_INTERNAL
#define MOSQLITE_INTERNAL __attribute__((visibility("hidden")))

#endif

/* Check json as the writer checks a request (see strict.h). With reply_to, give it an id
 * unless it has one and set its reply_to: the other members are kept as written, the
 * id and reply_to added at the end. after (NULL or "": none) is the id of the request
 * it must follow, added as "after" unless the request names its own, is scheduled
 * ("at", "delay_ms") or a cancel, or has that id itself. Without reply_to (NULL),
 * return a copy of json. id_out (NULL, or MOSQLITE_ID_MAX + 1 bytes) receives the id
 * ("" for none); *chain (NULL: not wanted) is 1 when, with reply_to, the next request
 * may follow this one (it is applied now: not scheduled, not a cancel). Returns a
 * heap string (free()), or NULL with err set. */
MOSQLITE_INTERNAL char *mosqlite__stamp(const char *json, const char *reply_to, const char *after,
                                        char *id_out, int *chain, char *err, size_t errlen);

/* Read a receipt. id receives its id (MOSQLITE_ID_MAX + 1 bytes); *error a heap copy
 * of the reason when rejected, else NULL; *changes its "changes" (-1 when it has none).
 * Returns 0, 1 for "waiting" (the request came before the one it names in "after": not
 * applied; after, MOSQLITE_ID_MAX + 1 bytes, receives that id, "" when the receipt has
 * none; *status is not set), or -1 when it is not a receipt. */
MOSQLITE_INTERNAL int mosqlite__receipt(const char *payload, size_t len, char *id,
                                       enum mosqlite_status *status, char **error,
                                       long *changes, char *after);

/* mosqlite_lines_new() with one more fixed value, stream_column: stream (a string),
 * in place of any such member of with (NULL stream_column or stream: none). For the
 * log pipe's wrapper, whose rows carry the stream they came from. */
MOSQLITE_INTERNAL mosqlite_lines *mosqlite__lines_stream(const char *column, const char *with,
                                                         const char *stream_column,
                                                         const char *stream, char *err,
                                                         size_t errlen);

#endif
