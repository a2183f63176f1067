/* request.h: library-internal JSON helpers shared by client.c and request.c (not
 * installed). Internal names carry the mosqlite__ prefix. */
#ifndef MOSQLITE_REQUEST_H
#define MOSQLITE_REQUEST_H

#include "mosqlite.h"

/* Internal functions are not exported from the shared library. */
#define MOSQLITE_INTERNAL __attribute__((visibility("hidden")))

/* Parse json (must be an object), give it an id unless it has a valid one, set its
 * reply_to. id_out receives the id (MOSQLITE_ID_MAX + 1 bytes). Returns a heap string
 * (free()), or NULL with err set. */
MOSQLITE_INTERNAL char *mosqlite__stamp(const char *json, const char *reply_to, char *id_out,
                                        char *err, size_t errlen);

/* Read a receipt. id receives its id (MOSQLITE_ID_MAX + 1 bytes); *error a heap copy
 * of the reason when rejected, else NULL. Returns 0, or -1 when it is not a receipt. */
MOSQLITE_INTERNAL int mosqlite__receipt(const char *payload, size_t len, char *id,
                                       enum mosqlite_status *status, char **error);

#endif
