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
 *     {"seq":N,"prev":N-1,"db":"<id>","schema":V,"at":MS}\n<changeset bytes>
 *
 * db is the database's identity (random, made once with mosqlite_seq), schema its
 * PRAGMA user_version, at the wall clock (ms since 1970) just before COMMIT. A commit
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

#endif
