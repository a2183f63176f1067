/* follow.h: the replica's logic, without the network: what to do with each message.
 *
 * Changes (PREFIX/changes) are queued as they arrive and applied in sequence order.
 * The position is (seq, epoch): the file's last commit and the epoch of the writer that
 * made it. A change of an older epoch than the position is refused (counted in the
 * status, stale_changes); one of the same epoch already held (seq <= position) is
 * dropped; the next one (prev = position, prev_epoch = its epoch) is applied, whatever
 * its own epoch (the first commit of a promoted writer); anything else is a gap
 * (something between was lost, e.g. by a broker that lost its queue) or a file that
 * holds commits of an older epoch the promoted writer never had: both bootstrap. A gap, another database identity, another
 * schema version, or no file at all: the replica needs a snapshot, keeps queuing
 * meanwhile, installs the snapshot when all its chunks are in, and goes on from its
 * sequence number. A change that conflicts with the file is refused: the replica stops
 * applying and says why (state "conflict") until it is started with --bootstrap.
 *
 * States: "bootstrapping", "following", "conflict". */
#ifndef MOSQLITE_FOLLOW_H
#define MOSQLITE_FOLLOW_H

#include <stddef.h>

#include "store.h"

struct follow;

/* Over store (the caller's); snapshots are assembled in tmp_path. bootstrap: take a
 * snapshot even if the file has a position. NULL when out of memory. */
struct follow *follow_new(struct store *store, const char *tmp_path, int bootstrap);
void follow_free(struct follow *f);   /* accepts NULL */

/* A message on PREFIX/changes, and one on the replica's snapshot reply topic. */
void follow_change(struct follow *f, const void *payload, size_t len);
void follow_chunk(struct follow *f, const void *payload, size_t len);

/* The writer's retained status (PREFIX/status): its epoch and its last commit, so that
 * the lag is counted against what the writer has, not only what was heard of. */
void follow_writer_status(struct follow *f, const void *payload, size_t len);
/* This replica's id: its status says whether the writer's retained status names it
 * among the replicas in sync ("sync": true, false; null when the writer has no
 * synchronous replicas). */
void follow_set_id(struct follow *f, const char *id);
/* The newest epoch seen (file, changes, status, snapshots). */
long long follow_max_epoch(const struct follow *f);

/* Apply what can be applied, install a complete snapshot. Returns 1 when a snapshot
 * should be asked for now (none asked yet, or the last ask went unanswered). */
int follow_step(struct follow *f, long long now_ms);
/* The caller asked for a snapshot at now_ms. */
void follow_asked(struct follow *f, long long now_ms);

const char *follow_state(const struct follow *f);
/* Changes received and not applied. */
size_t follow_pending(const struct follow *f);
/* ms since the last change arrived (or since start). */
long long follow_quiet_ms(const struct follow *f, long long now_ms);
/* The status as JSON into buf; state_override replaces the state when not NULL. */
int follow_status(const struct follow *f, const char *id, const char *state_override, char *buf,
                  size_t len);
/* 1 once after each change of state or position worth a status. */
int follow_dirty(struct follow *f);

#endif
