/* spool.h: the log pipe's spool, an ordered queue of records on disk (mosqlite-pub
 * only, not part of the library).
 *
 * The reading side appends records (one kind byte, then one line of JSON text); the
 * delivering side takes them in order as batches, several in flight at once, and
 * marks each batch done once the writer has answered it. Records live in segment files in the spool directory, so
 * a spool never holds more than its bound of undelivered bytes (an append past it is
 * dropped and counted) plus one delivered segment. A small `state` file records where
 * delivery stands and which records were last in flight, so a later run can pick the
 * spool up and send the same batches again under the same ids (exactly once).
 *
 * Threads: one appender and one deliverer may use a spool at once; every call takes
 * the spool's lock, and an append never waits for anything but the other side's
 * short disk reads. */
#ifndef MOSQLITE_SPOOL_H
#define MOSQLITE_SPOOL_H

#include <stddef.h>

typedef struct spool spool;

struct spool_stats {
    unsigned long long appended;    /* records stored */
    unsigned long long done;        /* records delivered (or answered with a rejection) */
    unsigned long long dropped;     /* records not stored: spool full or disk error */
    unsigned long long pending;     /* records stored and not yet done */
    unsigned long long bytes;       /* bytes of those */
};

/* Open the spool in dir: a new one (the directory must exist and hold no spool), or,
 * with resume = 1, the one a former run left there. max_bytes bounds what is stored
 * and not yet delivered. Returns the spool, or NULL with a reason in err. */
spool *spool_open(const char *dir, int resume, unsigned long long max_bytes,
                  char *err, size_t errlen);

/* Append one record: kind (a printable byte) then len bytes of text without a
 * newline. force = 1 stores it even past the bound (for the few records that must not
 * be lost to a flood of others). Returns 0 when stored, 1 when dropped (full, or the
 * disk refused it). */
int spool_append(spool *sp, char kind, const char *text, size_t len, int force);

/* Append n records at once: len bytes, each a kind byte, its text and a newline (one
 * write for many lines). Returns 0 when all are stored; 1 when they do not all fit
 * under the bound or the disk refused them: then none is stored (the caller appends
 * them one by one, and what does not fit is dropped). */
int spool_append_many(spool *sp, const char *recs, size_t len, long n);

/* Take the next records not yet taken, at most maxn and maxbytes of text (always at
 * least one), all of the same kind, their texts joined by commas into *buf (grown as
 * needed, *len set): a batch, now in flight. A run that left batches in flight gets
 * exactly those first, one by one, whatever maxn and maxbytes say. Sets *kind and
 * *seq (the sequence number of the first record, unique within this spool: the
 * batch's name). Returns how many records, 0 when none is left to take (or 256
 * batches are in flight), or -1 with a message in err (a disk error). */
long spool_take(spool *sp, char **buf, size_t *cap, size_t *len, size_t maxn,
                size_t maxbytes, char *kind, unsigned long long *seq, char *err, size_t errlen);

/* The batch named seq is answered (applied, or rejected: either way done with).
 * Its records are forgotten once every batch taken before it is answered too. */
void spool_done(spool *sp, unsigned long long seq);

/* How many batches are in flight (taken, and not yet forgotten). */
long spool_inflight(spool *sp);

/* Wait at most ms, while every stored record is taken, for a record to be appended,
 * a batch to be forgotten, or the input to end (spool_end). */
void spool_wait(spool *sp, int ms);

/* The input has ended: nothing more will be appended. */
void spool_end(spool *sp);

/* 1 once the input has ended and every record is done. */
int spool_finished(spool *sp);

/* The spool's id (a new id per spool, kept across runs). */
const char *spool_id(const spool *sp);

void spool_stats(spool *sp, struct spool_stats *st);

/* Close the spool. With remove = 1 (meant for an empty spool) its files are deleted,
 * and the directory too when it is then empty. Accepts NULL. */
void spool_close(spool *sp, int remove);

#endif
