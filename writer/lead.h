/* lead.h: the writer's leadership, held in etcd (etcd-endpoints): one writer at a time
 * takes requests, the one holding the leader key under a lease.
 *
 * At start the writer campaigns: it creates the key (etcd-key) under its own lease
 * (etcd-ttl seconds) if no one holds it. While another holds it, the writer waits as a
 * standby: it has not connected to the broker, takes no request, and says so in its log
 * (and again whenever the holder changes); it looks again every second (or ttl/3). Once
 * it holds the key it takes a new epoch from a counter kept in etcd beside the key
 * (KEY/epoch): one more than the larger of the counter and the file's own epoch, set in
 * the same transaction that checks the key is still its own. So a new leader's epoch is
 * greater than any leader's before it, whoever promoted what; it goes into
 * mosqlite_seq.epoch (changes_set_epoch) before the writer connects, and so into every
 * change, status and snapshot, and fences whoever held it before (mq.h).
 *
 * A thread renews the lease every ttl/3 (every 0.5 s after a failure), trying each
 * endpoint in turn, so a slow or dead etcd member never holds up a batch. After each
 * renewal it checks the key is still its own. The writer may commit and publish only
 * before the deadline: the *request time* of the last successful renewal, on the
 * monotonic clock, plus the TTL etcd granted, minus a margin (ttl/5, at least 0.5 s). etcd
 * counts the TTL from when it received that renewal, which is later, so the writer
 * stops before its lease can expire, even when it was frozen (SIGSTOP, a paused VM)
 * while the renewal was on its way. Past the deadline, or once etcd says the lease or
 * the key is gone, lead_ok says no: mq closes the request session, nothing is committed
 * or published any more, and the writer exits 5 (mosqlite-writer.8); the service is
 * restarted and campaigns again, as a standby if another has taken the key. A clean stop
 * revokes the lease, so that a standby takes the key at once. */
#ifndef MOSQLITE_LEAD_H
#define MOSQLITE_LEAD_H

#include <signal.h>

#include "changes.h"

struct lead_opts {
    const char *endpoints;      /* "URL[,URL...]" */
    const char *key;            /* the leader key */
    long long ttl;              /* seconds asked for */
    const char *db;             /* for the key's value: who holds it */
};

struct lead;

/* The config keys, checked before anything is opened: 0, or -1 + err. */
int lead_check(const struct lead_opts *o, char *err, size_t errlen);

/* Campaign until this writer holds the key (or *stop is set), then take the new epoch
 * and store it in the file through ch. 0: leader (*out is the lead, to pass to lead_ok
 * and lead_free); 1: stopped while waiting; -1 + err. */
int lead_start(const struct lead_opts *o, struct changes *ch, volatile sig_atomic_t *stop,
               struct lead **out, char *err, size_t errlen);

/* 1 while the writer may commit and publish (before the deadline, nothing lost); 0 once
 * not, and from then on. Any thread; ud is the struct lead. */
int lead_ok(void *ud);
/* How long a loop may wait before lead_ok can change: at most max_ms. l may be NULL. */
int lead_wait_ms(struct lead *l, int max_ms);
/* Why lead_ok says no, for the exit message: what etcd said or could not, and the
 * times from the last renewal's request. */
void lead_describe(struct lead *l, char *buf, size_t len);

/* The synchronous set (sync.h): have the thread write value to KEY/sync, a plain key
 * (no lease: it outlives this writer), in a transaction that checks the leader key is
 * still ours; retried every 0.5 s until it is written. gen orders the values (a newer
 * one replaces one not yet written). lead_sync_done: the gen last written (0: none). */
void lead_put_sync(struct lead *l, const char *value, long long gen);
long long lead_sync_done(struct lead *l);

/* Stop the renewals and revoke the lease (at most a second). Accepts NULL. */
void lead_free(struct lead *l);

#endif
