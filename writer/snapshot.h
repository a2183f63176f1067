/* snapshot.h: consistent copies of the database for replicas that bootstrap.
 *
 * A replica publishes {"reply_to": "PREFIX/reply/CLIENT_ID/snapshot"} on
 * PREFIX/snapshot. The writer copies the file with SQLite's backup API, from a
 * separate read-only connection inside one read transaction (WAL: the writer's own
 * commits go on meanwhile), a few hundred pages per turn of the loop, into a temporary
 * file next to the database; reads in the same transaction the sequence number the
 * copy reflects; then publishes the file in chunks on reply_to (QoS 1):
 *
 *     {"seq":S,"db":"<id>","schema":V,"epoch":E,"chunk":I,"chunks":N,"offset":O,"size":BYTES}\n<bytes>
 *
 * epoch is the writer's (mosqlite_seq.epoch, read in the same transaction): a replica
 * refuses a snapshot from a writer of an older epoch than one it has seen.
 * Every chunk is SNAP_CHUNK bytes but the last. One snapshot at a time; requests that
 * come meanwhile wait their turn. The request comes through the door for control
 * messages (ctl.c), read as strictly as any other, answered with {"error": "..."} when
 * it is refused. */
#ifndef MOSQLITE_SNAPSHOT_H
#define MOSQLITE_SNAPSHOT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "mq.h"

#define SNAP_CHUNK (256 * 1024)

struct snapshot;

/* Serve snapshots of the file at path (the writer's database), answering through mq
 * (the caller's; must outlive it). NULL when out of memory. */
struct snapshot *snapshot_new(const char *path, struct mq *mq);
void snapshot_free(struct snapshot *s);   /* accepts NULL; removes a temporary file */

/* A request from PREFIX/snapshot, as the door for control messages (ctl.c) read it
 * (root: strict JSON, one object), to be sent to to: it has only "reply_to". Queued
 * (0), or -1 with the error text in err: another field, or SNAP_WAITING waiting. */
int snapshot_request(struct snapshot *s, const cJSON *root, const char *to, char *err, size_t errlen);

/* One step of the work in hand. 1 while there is more to do (poll without waiting). */
int snapshot_step(struct snapshot *s);

#endif
