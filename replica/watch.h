/* watch.h: a replica watching the writer's leader key in etcd (etcd-endpoints), for
 * automatic failover.
 *
 * A thread looks at the leader key every ttl/3 (at most every second), as a standby
 * writer does. While someone holds it, nothing happens (the holder is logged when it
 * changes). When it is gone (the writer's lease expired, or it was revoked at a clean
 * stop), the thread reads the epoch counter (KEY/epoch) and the synchronous set
 * (KEY/sync, written by the leader before it counted any replica's acknowledgement:
 * writer/sync.h). Only when KEY/sync names this replica and was written at the latest
 * epoch may the replica promote itself: it then holds every write whose receipt went
 * out. Otherwise it says why in its log (once for each reason) and keeps following. */
#ifndef MOSQLITE_WATCH_H
#define MOSQLITE_WATCH_H

struct watch_opts {
    const char *endpoints;     /* "URL[,URL...]" */
    const char *key;           /* the leader key */
    const char *id;            /* this replica's id */
    long long ttl;             /* the writers' etcd-ttl, seconds: how often to look */
};

struct watch;

/* Start the thread. NULL + err. */
struct watch *watch_start(const struct watch_opts *o, char *err, size_t errlen);
/* 1 once this replica may promote itself (then always 1); *epoch: KEY/sync's epoch. */
int watch_promote(struct watch *w, long long *epoch);
/* Stop the thread. Accepts NULL. */
void watch_free(struct watch *w);

#endif
