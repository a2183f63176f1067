/* snapshot.h: consistent copies of the database for replicas that bootstrap.
 *
 * A replica publishes {"reply_to": "PREFIX/reply/CLIENT_ID/snapshot"} on
 * PREFIX/snapshot. The writer copies the file with SQLite's backup API, from a
 * separate read-only connection inside one read transaction (WAL: the writer's own
 * commits go on meanwhile), a few hundred pages per turn of the loop, into a temporary
 * file next to the database; reads in the same transaction the sequence number the
 * copy reflects; then publishes the file in chunks on reply_to (QoS 1):
 *
 *     {"seq":S,"db":"<id>","schema":V,"chunk":I,"chunks":N,"offset":O,"size":BYTES}\n<bytes>
 *
 * Every chunk is SNAP_CHUNK bytes but the last. One snapshot at a time; requests that
 * come meanwhile wait their turn. */
#ifndef MOSQLITE_SNAPSHOT_H
#define MOSQLITE_SNAPSHOT_H

#include <stddef.h>

#include "mq.h"

#define SNAP_CHUNK (256 * 1024)

struct snapshot;

/* Serve snapshots of the file at path (the writer's database), answering through mq
 * (the caller's; must outlive it). NULL when out of memory. */
struct snapshot *snapshot_new(const char *path, const char *prefix, struct mq *mq);
void snapshot_free(struct snapshot *s);   /* accepts NULL; removes a temporary file */

/* A request from PREFIX/snapshot (an mq_query_fn: ud is the struct snapshot). */
void snapshot_request(void *ud, const char *payload, size_t len, const char *resp_topic,
                      const void *corr, int corrlen);

/* One step of the work in hand. 1 while there is more to do (poll without waiting). */
int snapshot_step(struct snapshot *s);

#endif
