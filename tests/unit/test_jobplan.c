/* test_jobplan.c: the grant's query (writer/jobs.c, the best ready job of a queue) keeps
 * its index however many jobs the file holds: an in-memory database with the writer's
 * job tables (jobs_open), filled in the shape `make bench` measures (many ready jobs in
 * the queue claimed from and in another, many dead ones), EXPLAIN QUERY PLAN of the
 * prepared statement, before and after ANALYZE. And the check itself: with the partial
 * index dropped, the same plan is a SCAN of mosqlite_jobs and is seen as one. */
#include <stdio.h>
#include <string.h>

#include "jobs_int.h"
#include "unit.h"

static sqlite3 *H;

static void exec(const char *q)
{
    char *e = NULL;

    if (sqlite3_exec(H, q, NULL, NULL, &e) != SQLITE_OK)
        unit_check(0, "jobplan: %s: %s", q, e);
    sqlite3_free(e);
}

/* The plan of q uses index and never scans mosqlite_jobs: 1; else 0, the plan's lines
 * in why. */
static int plan_ok(const char *q, const char *index, char *why, size_t len)
{
    char eqp[2048];
    sqlite3_stmt *st;
    int scan = 0, uses = 0;
    size_t n = 0;

    why[0] = '\0';
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", q);
    if (sqlite3_prepare_v2(H, eqp, -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, len, "%s", sqlite3_errmsg(H));
        return 0;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if (!d)
            continue;
        if (!strncmp(d, "SCAN mosqlite_jobs", 18) || !strncmp(d, "SCAN TABLE mosqlite_jobs", 24))
            scan = 1;
        if (strstr(d, index))
            uses = 1;
        if (n < len)
            n += (size_t)snprintf(why + n, len - n, "%s%s", n ? "; " : "", d);
    }
    sqlite3_finalize(st);
    return uses && !scan;
}

/* Jobs in the shape of the bench's big file, scaled down: ready ones in the queue
 * claimed from and in another, dead ones (finished, with their unique keys). */
static void fill(void)
{
    exec("BEGIN;"
         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
         " INSERT INTO mosqlite_jobs (queue, state, run_at_ms, payload, attempt, lost, max_attempts,"
         " max_lost, backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, unique_key, created_at, finished_at)"
         " SELECT 'bench', 'dead', 0, '{}', 3, 3, 1, 3, 10000, 3600000, 20, 30000, 'k' || i,"
         " '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z' FROM n;"
         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
         " INSERT INTO mosqlite_jobs (queue, state, priority, run_at_ms, payload, max_attempts, max_lost,"
         " backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, created_at)"
         " SELECT CASE WHEN i % 2 THEN 'bench' ELSE 'other' END, 'ready', i % 3, 0, '{}', 1, 3, 10000,"
         " 3600000, 20, 30000, '2027-01-01T00:00:00.000Z' FROM n;"
         "COMMIT");
}

void test_jobplan(void)
{
    struct jobs *j = NULL;
    char err[512], why[1024];
    const char *best;

    if (sqlite3_open(":memory:", &H) != SQLITE_OK || jobs_open(&j, H, err, sizeof err) != DB_OK) {
        unit_check(0, "jobplan: the job tables in memory: %s", j ? sqlite3_errmsg(H) : err);
        sqlite3_close(H);
        return;
    }
    best = sqlite3_sql(j->st[ST_BEST]);
    fill();
    unit_check(plan_ok(best, "mosqlite_jobs_ready", why, sizeof why),
               "jobplan: a grant among 25,000 jobs searches mosqlite_jobs_ready, no scan (%s)", why);
    exec("ANALYZE");
    unit_check(plan_ok(best, "mosqlite_jobs_ready", why, sizeof why),
               "jobplan: and so after ANALYZE (%s)", why);
    exec("DROP INDEX mosqlite_jobs_ready");
    unit_check(!plan_ok(best, "mosqlite_jobs_ready", why, sizeof why) && strstr(why, "SCAN"),
               "jobplan: without the index the check sees the scan (%s)", why);
    jobs_close(j);
    sqlite3_close(H);
    H = NULL;
}
