/* sync.h: synchronous replicas (sync-replicas N).
 *
 * Each replica acknowledges the commits it has applied on PREFIX/replica/ID/ack
 * ({"seq":S,"epoch":E}: its file's position; an ack for S covers every commit before
 * it). With N >= 1 the batch does not publish a commit's receipts, rejections, events
 * (and hook runs) at once: it hands them here, held in memory in commit order, and
 * they go out once N distinct replicas have acknowledged that commit's sequence or a
 * later one, in this writer's lineage (an ack of this writer's epoch, or of the commit
 * it started from).
 *
 * When the oldest held commit has waited sync-timeout-ms: with fallback "hold" (the
 * default, as PostgreSQL's synchronous_commit) everything keeps waiting and the state
 * is "holding"; with "degrade" everything held goes out, and so does every later
 * commit's, without waiting ("degraded"), until N replicas are in sync again: then
 * receipts wait again ("sync"). A replica is in sync when it has acknowledged every
 * commit older than sync-timeout-ms.
 *
 * At most max_held messages are held: sync_full says when that many are, and the batch
 * then takes no request more until acknowledgements let some out.
 *
 * With etcd (designate): not any N replicas but exactly N designated ones, named in
 * etcd (KEY/sync, lead.h) before their acknowledgements count, so that a replica named
 * there holds every commit whose receipt went out, and only such a replica promotes
 * itself when the leader is gone. The first replicas to have acknowledged everything
 * committed are designated, and kept; one that is no longer in sync is swapped for
 * another only once that one has acknowledged everything committed. While a new set
 * waits to be written, a commit needs the acknowledgement of both the old set and the
 * new; nothing goes out until N are named. */
#ifndef MOSQLITE_SYNC_H
#define MOSQLITE_SYNC_H

#include <stddef.h>

#include "jbuf.h"

struct sync_opts {
    int n;                    /* replicas that must acknowledge a commit (>= 1) */
    long long timeout_ms;     /* sync-timeout-ms */
    int degrade;              /* sync-fallback degrade (1) or hold (0) */
    size_t max_held;          /* most messages held */
    int designate;            /* with etcd: exactly n designated replicas (above) */
};

enum sync_kind { SYNC_PUBLISH, SYNC_HOOK };

/* One held message: a publish (topic, payload, qos, retain, correlation data) or a
 * hook run (topic: the table, corr: the op's name). */
struct sync_msg {
    struct sync_msg *next;
    long long seq;            /* the commit it waits for */
    long long at_ms;          /* when it was held */
    int kind, qos, retain, corrlen;
    char *topic;
    void *payload, *corr;
    size_t len;
};

struct sync;

/* epoch: this writer's; start_seq, start_epoch: the file's last commit when it
 * started, and that commit's epoch. NULL when out of memory. */
struct sync *sync_new(const struct sync_opts *o, long long epoch, long long start_seq, long long start_epoch);
void sync_free(struct sync *s);   /* accepts NULL */

/* Pure. The replica id of an ack topic PREFIX/replica/ID/ack (NULL if topic is not
 * one), its length in *idlen. */
const char *sync_ack_id(const char *topic, const char *prefix, size_t *idlen);
/* Pure. An ack's payload, read strictly (json.c): {"seq": S, "epoch": E}, integers
 * from 0 to 2^53 - 1; other members are ignored. 0, or -1 with the reason in err. */
int sync_ack_read(const char *payload, size_t len, long long *seq, long long *epoch, char *err,
                  size_t errlen);

/* An ack from replica id. */
void sync_ack(struct sync *s, const char *id, size_t idlen, long long seq, long long epoch, long long now_ms);
/* A commit was made at now_ms. */
void sync_committed(struct sync *s, long long seq, long long now_ms);

/* Whether what a batch publishes now must be held: not while degraded; a batch that
 * committed nothing only behind held messages (its place in the order). */
int sync_must_hold(const struct sync *s, int committed);
/* Hold a message for commit seq. 0, or -1 when out of memory. */
int sync_hold(struct sync *s, long long seq, int kind, const char *topic, const void *payload, size_t len,
              int qos, int retain, const void *corr, int corrlen, long long now_ms);

/* Acknowledgements and time: what may go out now, in order, each handed to emit;
 * the state moves (and is logged). */
typedef void (*sync_emit_fn)(void *ud, const struct sync_msg *m);
void sync_release(struct sync *s, long long now_ms, sync_emit_fn emit, void *ud);
/* Drop everything held, unsent; how many. */
size_t sync_drop(struct sync *s);

size_t sync_held(const struct sync *s);
long long sync_held_seq(const struct sync *s);   /* the last commit held, -1 none */
int sync_full(const struct sync *s);
/* ms until the oldest held message reaches the timeout (for the loop's sleep), or
 * `cap` when sooner or nothing is held. */
int sync_wait_ms(const struct sync *s, long long now_ms, int cap);
/* "sync", "holding" or "degraded". */
const char *sync_state(const struct sync *s);

/* Designation (designate only). Look at the replicas: propose a new set when fewer than
 * N are named and one has acknowledged everything committed, or when a named one is
 * not in sync and another has. 1 when a set was proposed. */
int sync_designate(struct sync *s, long long now_ms);
/* The proposed set's value for KEY/sync (a new string, etcd_sync_value) and its
 * generation, once per proposal; NULL when there is nothing new to write. */
char *sync_wanted(struct sync *s, long long *gen);
/* The proposal of generation gen is in etcd: it is the set from now on. 1 when that
 * changed the set. */
int sync_named(struct sync *s, long long gen);

/* The status members, each preceded by a comma:
 * ,"sync":"...","sync_replicas":N,"sync_acked":S,"sync_held":K,"replicas_in_sync":["ID",...]
 * and with designate ,"sync_designated":["ID",...] (the set in etcd). */
void sync_status(const struct sync *s, long long now_ms, struct jbuf *out);

#endif
