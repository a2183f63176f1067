/* test_sync.c: synchronous replicas designated in etcd (sync.c with designate): the
 * set proposed, its value for KEY/sync, acknowledgements that count only once the set
 * is written, and a replica out of sync swapped for one that has everything. */
#include <stdlib.h>
#include <string.h>

#include "sync.h"
#include "unit.h"

static int emitted;
static void count(void *ud, const struct sync_msg *m)
{
    (void)ud;
    (void)m;
    emitted++;
}

static void ack(struct sync *s, const char *id, long long seq, long long epoch, long long now)
{
    sync_ack(s, id, strlen(id), seq, epoch, now);
}

static void commit_one(struct sync *s, long long seq, long long now)
{
    sync_committed(s, seq, now);
    sync_hold(s, seq, SYNC_PUBLISH, "t", "x", 1, 1, 0, NULL, 0, now);
}

void test_sync(void)
{
    struct sync_opts o = {1, 1000, 0, 1000, 1};
    struct sync *s = sync_new(&o, 2, 10, 1);
    long long gen = 0;
    char *v;

    unit_check(s && !sync_designate(s, 0), "designate: no replica, no set");
    commit_one(s, 11, 0);
    ack(s, "a", 10, 1, 5);
    unit_check(!sync_designate(s, 5), "a replica behind the last commit is not designated");
    ack(s, "a", 11, 2, 6);
    unit_check(sync_designate(s, 6), "one that has acknowledged every commit is proposed");
    v = sync_wanted(s, &gen);
    unit_check_str(v, "{\"epoch\":2,\"replicas\":[\"a\"]}", "the value for KEY/sync");
    free(v);
    unit_check(!sync_wanted(s, &gen), "handed once");
    sync_release(s, 7, count, NULL);
    unit_check(emitted == 0, "its acknowledgement does not count before the set is written");
    sync_named(s, gen);
    sync_release(s, 8, count, NULL);
    unit_check(emitted == 1, "once written it does");

    ack(s, "b", 11, 2, 9);
    unit_check(!sync_designate(s, 9), "a second replica does not displace one in sync");
    commit_one(s, 12, 10);
    ack(s, "b", 12, 2, 11);
    sync_release(s, 11, count, NULL);
    unit_check(emitted == 1, "only the designated replica's acknowledgement counts");
    commit_one(s, 13, 12);
    ack(s, "b", 13, 2, 1500);
    unit_check(sync_designate(s, 1500), "the designated one out of sync: the one that has everything is proposed");
    v = sync_wanted(s, &gen);
    unit_check_str(v, "{\"epoch\":2,\"replicas\":[\"b\"]}", "... in its place");
    free(v);
    sync_release(s, 1501, count, NULL);
    unit_check(emitted == 1, "while the new set is being written, both sets must acknowledge");
    sync_named(s, gen);
    sync_release(s, 1502, count, NULL);
    unit_check(emitted == 3, "once written, the new one's acknowledgement releases what waited");
    sync_free(s);

    o.designate = 0;
    s = sync_new(&o, 2, 10, 1);
    commit_one(s, 11, 0);
    ack(s, "a", 11, 2, 1);
    sync_release(s, 2, count, NULL);
    unit_check(emitted == 4 && !sync_designate(s, 2), "without etcd: any replica's acknowledgement counts");
    sync_free(s);
}
