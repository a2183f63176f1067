/* store.h: the replica's own SQLite file, kept equal to the writer's.
 *
 * The file changes in two ways only: a snapshot replaces it whole (store_install), or
 * changesets from the writer are applied to it in order, several in one transaction
 * (store_begin, store_apply..., store_commit). The position of the file in the
 * writer's sequence is in the file itself (the row of mosqlite_seq, which every
 * changeset updates), so it is durable with the rows it describes.
 *
 * A changeset applies only onto exactly the rows it was taken from: any conflict (a
 * row missing, different, or already there) aborts the whole transaction, and the
 * reason says which table and which kind of conflict. Triggers and foreign keys are
 * off on this connection: the writer already ran them, and their effects are in the
 * changesets. */
#ifndef MOSQLITE_STORE_H
#define MOSQLITE_STORE_H

#include <stddef.h>

/* Where the file stands: none (no file, or no mosqlite_seq in it) or a position. */
struct store_pos {
    int known;
    long long seq;           /* the last commit of the writer the file holds */
    char db[40];             /* the writer database's identity */
    long long schema;        /* PRAGMA user_version */
    long long epoch;         /* the epoch of commit seq (mosqlite_seq.seq_epoch); 0 for a file
                              * made before epochs (no such column) */
    long long gen;           /* mosqlite_seq.epoch: the generation of the writer the file
                              * belongs to (on a replica, as its last snapshot said); 0: none */
};

struct store;

/* Open path (WAL mode, the given synchronous setting) if it exists. NULL + err. */
struct store *store_open(const char *path, const char *synchronous, char *err, size_t errlen);
void store_close(struct store *s);   /* accepts NULL */
const struct store_pos *store_pos(const struct store *s);

int store_begin(struct store *s, char *err, size_t errlen);
/* Apply one changeset whose sequence number is seq and epoch epoch (prev = the current
 * position). 0; -2 + err: it conflicts with the file, or does not leave it at (seq,
 * epoch); -1 + err: a fault. The caller rolls back. */
int store_apply(struct store *s, long long seq, long long epoch, const void *data, size_t n, char *err,
                size_t errlen);
int store_commit(struct store *s, char *err, size_t errlen);
void store_rollback(struct store *s);

/* Replace the file with the complete snapshot at tmp (renamed over it). */
int store_install(struct store *s, const char *tmp, char *err, size_t errlen);

/* --promote: start a new epoch in the file: one more than the highest of its own
 * epochs and seen (the highest the replica has seen elsewhere). The new epoch, or -1 +
 * err. */
long long store_new_epoch(struct store *s, long long seen, char *err, size_t errlen);

/* Close the connection (before the writer takes the file over). */
void store_release(struct store *s);

#endif
