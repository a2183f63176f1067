/* workers.h: the worker sessions online, in memory only (no disk write per hello or
 * beat). Pure: the caller gives the clocks (monotonic for the deadlines, wall for what
 * is shown), so it is tested without a broker.
 *
 * A session is one worker connection (the "session" of its messages): its worker's
 * name, host, queues and slots (from its hello; a beat or a claim from a session not
 * listed adds it with what it names), when it was first heard, when last, and a
 * deadline. Each message heard pushes the deadline to at least now + live_ms (the
 * caller's lease, plus a claim's wait); a session past its deadline is gone from the
 * list (workers_expire), as are sessions that said bye or whose Last Will came
 * (workers_end).
 *
 * Bounded: at most max sessions. A hello from a new session when the table is full of
 * live ones is refused (workers_hello returns -1 with the reason); a beat or claim from
 * a new session then is simply not listed. Live sessions are never evicted, so a flood
 * of hellos cannot push real workers out of the list. */
#ifndef MOSQLITE_WORKERS_H
#define MOSQLITE_WORKERS_H

#include <stddef.h>

#include "jbuf.h"

#define WORKERS_MAX 4096          /* sessions listed at most */
#define WORKERS_QUEUES 16         /* queues kept per session */
#define WORKERS_LIMIT_MAX 1000    /* sessions in one answer at most */
#define WORKERS_LIMIT_DFLT 100

struct workers;

/* A new empty table of at most max sessions (NULL: out of memory). */
struct workers *workers_new(size_t max);
void workers_free(struct workers *t);

/* What a message says of its session: worker and session always; host NULL, nq 0,
 * slots < 0 when it does not say. */
struct workers_seen {
    const char *worker, *session, *host;
    const char *const *queues;
    int nq;
    int slots;
};

/* A hello: the session added or updated (host, queues, slots replaced by the hello's).
 * 0, or -1 when the session is new and max live sessions are listed (reason in err). */
int workers_hello(struct workers *t, const struct workers_seen *s, long long now, long long wall,
                  long long live_ms, char *err, size_t errlen);

/* A beat or a claim: the session renewed, or added when there is room. Queues (a
 * claim's) fill in those of a session that has none. */
void workers_heard(struct workers *t, const struct workers_seen *s, long long now, long long wall,
                   long long live_ms);

/* bye or gone: the session removed. 1 if it was listed. */
int workers_end(struct workers *t, const char *session);

/* The sessions whose deadline is past (<= now) removed; how many. */
size_t workers_expire(struct workers *t, long long now);

/* The earliest deadline (monotonic ms), or LLONG_MAX with none listed. */
long long workers_next(const struct workers *t);

size_t workers_count(const struct workers *t);

/* Is session listed? */
int workers_has(const struct workers *t, const char *session);

/* The list into b as members of an object: "count":N,"more":B,"workers":[{"worker",
 * "session","host","queues","slots","running","since","last_seen","idle_ms"},...]:
 * at most limit sessions, ordered by worker then session; running from
 * leases(arg, session). */
void workers_json(const struct workers *t, struct jbuf *b, int limit, long long now,
                  int (*leases)(void *arg, const char *session), void *arg);

#endif
