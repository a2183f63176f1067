/* test_workers.c: the worker sessions online (workers.c): hello, beat or claim, bye or
 * gone, silence past the lease, the bound, the list's order, limit and fields. */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "workers.h"

static int two_leases(void *arg, const char *session)
{
    (void)arg;
    return !strcmp(session, "s-b") ? 2 : 0;
}

static const char *list(struct workers *t, int limit, long long now)
{
    static struct jbuf b;

    jb_reset(&b);
    workers_json(t, &b, limit, now, two_leases, NULL);
    return b.len ? b.s : "";
}

static void test_bound(void)
{
    struct workers *t = workers_new(3);
    struct workers_seen s = {"w", NULL, NULL, NULL, 0, -1};
    char err[256] = "", name[16];
    int i, rc = 0;

    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "s%d", i);
        s.session = name;
        rc |= workers_hello(t, &s, 1000 + i, 0, 1000, err, sizeof err);
    }
    unit_check(!rc && workers_count(t) == 3, "workers: three sessions fill a table of three");
    s.session = "s3";
    unit_check(workers_hello(t, &s, 1500, 0, 1000, err, sizeof err) == -1, "workers: a fourth hello is refused");
    unit_check_str(err, "the writer lists at most 3 worker sessions and all of them are live: hello of session "
                   "\"s3\" not taken (its claims are served all the same)", "workers: the refusal says why");
    unit_check(workers_count(t) == 3 && !workers_has(t, "s3"), "workers: and changes nothing");
    workers_heard(t, &s, 1500, 0, 1000);
    unit_check(!workers_has(t, "s3"), "workers: a beat from a new session is not listed when full");
    s.session = "s1";
    unit_check(!workers_hello(t, &s, 1500, 0, 1000, err, sizeof err), "workers: a known session's hello is taken when full");
    s.session = "s3";
    unit_check(!workers_hello(t, &s, 2000, 0, 1000, err, sizeof err) && workers_has(t, "s3") &&
               !workers_has(t, "s0") && workers_count(t) == 3,
               "workers: once a session is silent past its lease, a new hello takes its room");
    workers_free(t);
}

void test_workers(void)
{
    struct workers *t = workers_new(WORKERS_MAX);
    const char *const qs[] = {"build.arm64", "build.any"};
    struct workers_seen a = {"wa", "s-a", "host-a", qs, 2, 2};
    struct workers_seen bb = {"wb", "s-b", NULL, qs, 1, -1};
    char err[256] = "";

    unit_check(workers_count(t) == 0 && workers_next(t) == 0x7fffffffffffffffLL, "workers: empty at start");
    unit_check_str(list(t, 10, 0), "\"count\":0,\"more\":false,\"workers\":[]", "workers: the empty list");
    unit_check(!workers_hello(t, &a, 1000, 1764027558000LL, 30000, err, sizeof err), "workers: a hello is listed");
    workers_heard(t, &bb, 2000, 1764027559000LL, 30000);
    unit_check(workers_count(t) == 2, "workers: a claim from a session without hello is listed too");
    unit_check_str(list(t, 10, 3500),
                   "\"count\":2,\"more\":false,\"workers\":["
                   "{\"worker\":\"wa\",\"session\":\"s-a\",\"host\":\"host-a\",\"queues\":[\"build.arm64\",\"build.any\"],"
                   "\"slots\":2,\"running\":0,\"since\":\"2025-11-24T23:39:18.000Z\",\"last_seen\":\"2025-11-24T23:39:18.000Z\","
                   "\"idle_ms\":2500},"
                   "{\"worker\":\"wb\",\"session\":\"s-b\",\"host\":null,\"queues\":[\"build.arm64\"],\"slots\":null,"
                   "\"running\":2,\"since\":\"2025-11-24T23:39:19.000Z\",\"last_seen\":\"2025-11-24T23:39:19.000Z\","
                   "\"idle_ms\":1500}]",
                   "workers: the list, ordered by worker, with host, queues, slots, leases, times");
    unit_check_str(list(t, 1, 3500) + strlen(list(t, 1, 3500)) - 16, "\"idle_ms\":2500}]",
                   "workers: limit 1 lists one");
    unit_check(!strncmp(list(t, 1, 3500), "\"count\":2,\"more\":true,", 22), "workers: and says there are more");
    unit_check(workers_next(t) == 31000, "workers: the next deadline is the first hello's lease");
    workers_heard(t, &a, 20000, 1764027577000LL, 30000);
    unit_check(workers_next(t) == 32000, "workers: a beat pushes its session's deadline");
    unit_check(strstr(list(t, 10, 20000), "\"last_seen\":\"2025-11-24T23:39:37.000Z\",\"idle_ms\":0") != NULL,
               "workers: a beat updates last seen");
    unit_check(strstr(list(t, 10, 20000), "\"since\":\"2025-11-24T23:39:18.000Z\"") != NULL,
               "workers: connected since stays the first time heard");
    workers_heard(t, &a, 21000, 0, 5000);
    unit_check(workers_next(t) == 32000, "workers: a shorter lease never pulls a deadline in");
    unit_check(workers_expire(t, 31999) == 0 && workers_expire(t, 32000) == 1 && !workers_has(t, "s-b"),
               "workers: silent past its lease: gone");
    unit_check(workers_end(t, "s-a") == 1 && workers_count(t) == 0, "workers: bye or gone: gone");
    unit_check(workers_end(t, "s-a") == 0, "workers: the end of a session not listed changes nothing");
    workers_free(t);
    test_bound();
}
