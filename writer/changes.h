/* changes.h: what the writer gives replicas: one changeset per commit, numbered.
 *
 * SQLite's session extension records every row the writer's connection changes, in
 * every table with a declared PRIMARY KEY (the internal mosqlite_* tables included, so
 * a promoted replica knows which request ids were applied). At each COMMIT the batch
 * seals the transaction (changes_seal, inside it, before COMMIT): the sequence kept in
 * mosqlite_seq goes up by one in the same transaction, so it is durable with the rows
 * and survives restarts, and the session's changeset is taken. After COMMIT,
 * changes_publish sends it on PREFIX/changes before the commit's receipts:
 *
 *     {"seq":N,"prev":N-1,"db":"<id>","schema":V,"epoch":E,"prev_epoch":P,"at":MS}\n<changeset bytes>
 *
 * db is the database's identity (random, made once with mosqlite_seq), schema its
 * PRAGMA user_version, at the wall clock (ms since 1970) just before COMMIT. epoch is
 * the writer's generation (mosqlite_seq.epoch: 1 for a new file, one more at each
 * mosqlite-replica --promote), prev_epoch the epoch of commit N-1 (mosqlite_seq.seq_epoch
 * holds the epoch of the file's last commit): a replica applies a change only onto
 * the commit (prev, prev_epoch), and refuses one of an older epoch than its file's. A commit
 * that fails keeps the session as it was: the rolled-back rows net out of it.
 *
 * The same module serves snapshots (snapshot.c) to replicas that bootstrap. */
#ifndef MOSQLITE_CHANGES_H
#define MOSQLITE_CHANGES_H

#include <stddef.h>

#include "db.h"
#include "mq.h"

struct changes;

/* Create mosqlite_seq if needed and attach a session to db's connection (db is the
 * caller's and must outlive it). qos: of PREFIX/changes. NULL + err. */
struct changes *changes_new(struct db *db, const char *prefix, int qos, char *err, size_t errlen);
void changes_free(struct changes *c);   /* accepts NULL */

/* Inside the open transaction, just before COMMIT: next sequence number, changeset.
 * 0, or -1 + err (a database fault: roll back). */
int changes_seal(struct changes *c, char *err, size_t errlen);
/* After a successful COMMIT: publish what changes_seal took, start a new session. */
void changes_publish(struct changes *c, struct mq *mq);

/* This writer's epoch, and its last committed sequence number. */
long long changes_epoch(const struct changes *c);
long long changes_seq(const struct changes *c);
/* The epoch of the last committed sequence number (mosqlite_seq.seq_epoch). */
long long changes_seq_epoch(const struct changes *c);
/* Start a newer epoch in the file (the one etcd gave, lead.h) before anything is
 * committed: mosqlite_seq.epoch = epoch, which must be greater than the file's.
 * 0, or -1 + err. */
int changes_set_epoch(struct changes *c, long long epoch, char *err, size_t errlen);
/* The "epoch" of a message on PREFIX/status or PREFIX/changes (its first line, a JSON
 * object): a positive integer, or 0 when it has none (an older writer's, a Last Will,
 * not JSON). Pure. */
long long changes_epoch_of(const char *payload, size_t len);

#endif
