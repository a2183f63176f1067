/* test_jobs.c: the job tables and every change of a job's state (writer/jobs*.c) on a
 * real SQLite file, behind an authorizer like the writer's (internal tables written
 * only while trusted): enqueue and its options, grants in order, claim ids, the fence,
 * done/fail/release/lost/cancel, backoff bounds, due jobs, a session's leases, the
 * operators' commands, exact concurrency, unique keys with each policy, the counts,
 * the events, and the query plans (no scan of mosqlite_jobs). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobcron.h"
#include "jobs_int.h"
#include "unit.h"
#include "util.h"

static sqlite3 *H;
static struct jobs *J;
static int trusted;
static char err[512];
static const long long T0 = 1800000000000LL;     /* "now" in these tests */

static int authorize(void *arg, int action, const char *a, const char *b, const char *dbname,
                     const char *trigger)
{
    if (trusted)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE:
        return a && !strncasecmp(a, "mosqlite_", 9) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_READ: case SQLITE_SELECT: case SQLITE_FUNCTION: case SQLITE_SAVEPOINT:
    case SQLITE_TRANSACTION:
        return SQLITE_OK;
    default:
        return SQLITE_DENY;
    }
}

static void trust(void *arg, int on)
{
    *(int *)arg = on;
}

static void sql(const char *q)
{
    char *e = NULL;

    trusted = 1;
    if (sqlite3_exec(H, q, NULL, NULL, &e) != SQLITE_OK)
        unit_check(0, "jobs: test SQL %s: %s", q, e);
    trusted = 0;
    sqlite3_free(e);
}

/* The first column of the first row of a query, as an integer (LLONG_MIN for none). */
static long long qint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long qint(const char *fmt, ...)
{
    char q[512];
    sqlite3_stmt *st;
    long long v = LLONG_MIN;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    trusted = 1;      /* the test reads as it likes (pragma_table_info) */
    if (sqlite3_prepare_v2(H, q, -1, &st, NULL) != SQLITE_OK) {
        unit_check(0, "jobs: test query %s: %s", q, sqlite3_errmsg(H));
        trusted = 0;
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    trusted = 0;
    return v;
}

/* The same as text, in buf (valid until the next call). */
static const char *qtext(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *qtext(const char *fmt, ...)
{
    static char buf[512];
    char q[512];
    sqlite3_stmt *st;
    const char *s = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    trusted = 1;
    if (sqlite3_prepare_v2(H, q, -1, &st, NULL) != SQLITE_OK) {
        unit_check(0, "jobs: test query %s: %s", q, sqlite3_errmsg(H));
        trusted = 0;
        return NULL;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
        s = buf;
    }
    sqlite3_finalize(st);
    trusted = 0;
    return s;
}

static const char *state(long long id)
{
    return qtext("SELECT state FROM mosqlite_jobs WHERE id = %lld", id);
}

/* A fresh database file with the job tables. */
static void fresh(const char *name)
{
    char *path = unit_path(name);

    if (J)
        jobs_close(J);
    if (H)
        sqlite3_close(H);
    J = NULL;
    H = NULL;
    if (sqlite3_open(path, &H) != SQLITE_OK)
        unit_check(0, "jobs: open %s", path);
    free(path);
    sqlite3_exec(H, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF", NULL, NULL, NULL);
    sqlite3_set_authorizer(H, authorize, NULL);
    trusted = 1;      /* the writer opens them while trusted (DDL) */
    if (jobs_open(&J, H, err, sizeof err) != DB_OK)
        unit_check(0, "jobs: jobs_open: %s", err);
    trusted = 0;
    jobs_set_trust(J, trust, &trusted);
    jobs_seed(J, 42);
}

/* Enqueue with the defaults but these; the job id (0 when refused). */
static long long enq(const char *queue, long long priority, const char *payload)
{
    struct jobs_new n;
    struct jobs_enq e;

    jobs_new_init(&n);
    n.queue = queue;
    n.priority = priority;
    n.payload = payload ? payload : "{}";
    return jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_OK ? e.job : 0;
}

static long long enq_key(const char *queue, const char *ckey, long long limit)
{
    struct jobs_new n;
    struct jobs_enq e;

    jobs_new_init(&n);
    n.queue = queue;
    n.payload = "{}";
    n.conc_key = ckey;
    n.conc_limit = limit;
    return jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_OK ? e.job : 0;
}

/* Grant from one queue; the job (0 for none), attempt in *att. */
static long long grant1(const char *queue, const char *session, const char *claim, long long *att)
{
    struct jobs_grant g;
    const char *q[1] = {queue};
    long long id;

    if (jobs_grant(J, q, 1, "w1", session, claim, T0, &g, err, sizeof err) != DB_OK)
        return -1;
    id = g.job;
    if (att)
        *att = g.attempt;
    jobs_grant_free(&g);
    return id;
}

static long long count(const char *queue, const char *st)
{
    return qint("SELECT n_%s FROM mosqlite_job_queues WHERE queue = '%s'", st, queue);
}

/* The counts agree with the rows, for every queue and state. */
static int counts_agree(void)
{
    return qint("SELECT count(*) FROM (SELECT queue, state, count(*) AS n FROM mosqlite_jobs GROUP BY"
                " queue, state) r JOIN mosqlite_job_queues q USING (queue) WHERE r.n != CASE r.state"
                " WHEN 'scheduled' THEN q.n_scheduled WHEN 'ready' THEN q.n_ready WHEN 'blocked' THEN"
                " q.n_blocked WHEN 'running' THEN q.n_running WHEN 'retry' THEN q.n_retry WHEN 'done'"
                " THEN q.n_done WHEN 'failed' THEN q.n_failed WHEN 'dead' THEN q.n_dead ELSE"
                " q.n_cancelled END") == 0 &&
           qint("SELECT sum(n_scheduled + n_ready + n_blocked + n_running + n_retry + n_done + n_failed"
                " + n_dead + n_cancelled) FROM mosqlite_job_queues") ==
           qint("SELECT count(*) FROM mosqlite_jobs");
}

static void check_schema(void)
{
    static const char *const tables[] = {
        "mosqlite_jobs", "mosqlite_job_attempts", "mosqlite_job_queues", "mosqlite_job_cron",
    };
    struct jobs *again;
    size_t i;

    fresh("jobs-schema.db");
    enq("q", 0, NULL);
    trusted = 1;
    unit_check(jobs_open(&again, H, err, sizeof err) == DB_OK, "jobs: opening again keeps the tables");
    trusted = 0;
    jobs_close(again);
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs") == 1, "jobs: opening again keeps the jobs");
    for (i = 0; i < sizeof tables / sizeof *tables; i++) {
        /* A declared key; a rowid table's TEXT key is declared NOT NULL (it could hold
         * NULL otherwise, and the session extension skips such rows). */
        unit_check(qint("SELECT count(*) FROM pragma_table_info('%s') WHERE pk > 0", tables[i]) > 0,
                   "jobs: %s has a primary key", tables[i]);
        unit_check(qint("SELECT count(*) FROM pragma_table_info('%s') WHERE pk > 0 AND \"notnull\" = 0"
                        " AND type != 'INTEGER'", tables[i]) == 0,
                   "jobs: %s: its key is never NULL", tables[i]);
    }
}

static void check_enqueue(void)
{
    struct jobs_new n;
    struct jobs_enq e;
    const struct jobs_event *ev;
    size_t nev;
    long long id;

    fresh("jobs-enqueue.db");
    id = enq("build", 0, "{\"ref\":\"a1\"}");
    unit_check(id > 0, "jobs: enqueue: a job id");
    unit_check_str(state(id), "ready", "jobs: enqueue: ready");
    unit_check_str(qtext("SELECT payload FROM mosqlite_jobs WHERE id = %lld", id), "{\"ref\":\"a1\"}",
                   "jobs: enqueue: the payload as given");
    unit_check(qint("SELECT max_attempts * 100 + max_lost FROM mosqlite_jobs WHERE id = %lld", id) == 103,
               "jobs: enqueue: defaults max_attempts 1, max_lost 3");
    ev = jobs_events(J, &nev);
    unit_check(nev == 1 && ev[0].job == id && ev[0].from == -1 && ev[0].to == JOBS_READY &&
               !strcmp(ev[0].queue, "build") && ev[0].attempt == 0, "jobs: enqueue: one event, new -> ready");
    unit_check(count("build", "ready") == 1, "jobs: enqueue: counted ready");

    jobs_new_init(&n);
    n.queue = "build";
    n.payload = "{}";
    n.run_at_ms = T0 + 5000;
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_OK && e.state == JOBS_SCHEDULED,
               "jobs: enqueue at a later time: scheduled");
    unit_check(qint("SELECT run_at_ms FROM mosqlite_jobs WHERE id = %lld", e.job) == T0 + 5000,
               "jobs: scheduled: its time kept");

    n.run_at_ms = 0;
    n.queue = "a/b";
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_REJECT, "jobs: a queue with / refused");
    unit_check_str(err, "queue name \"a/b\" cannot be one MQTT topic level (it has \"/\")",
                   "jobs: the reason for a queue with /");
    n.queue = "";
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_REJECT, "jobs: an empty queue refused");
    unit_check_str(err, "a job's queue needs a name", "jobs: the reason for an empty queue");
    n.queue = "build";
    n.max_attempts = 0;
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_REJECT, "jobs: max_attempts 0 refused");
    unit_check_str(err, "max_attempts must be at least 1, got 0", "jobs: the reason for max_attempts 0");
    n.max_attempts = 1;
    n.conc_key = "k";
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_REJECT, "jobs: a key without a limit refused");
    unit_check_str(err, "concurrency must be at least 1 with a concurrency_key, got 0",
                   "jobs: the reason for a key without a limit");
    n.conc_key = NULL;
    n.jitter_pct = 101;
    unit_check(jobs_enqueue(J, &n, T0, &e, err, sizeof err) == DB_REJECT, "jobs: jitter 101 refused");
    unit_check_str(err, "jitter must be 0 to 100 (percent), got 101", "jobs: the reason for jitter 101");
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs") == 2, "jobs: refused enqueues wrote nothing");
    unit_check(counts_agree(), "jobs: enqueue: counts agree with the rows");
}

static void check_grant(void)
{
    const char *qs[2] = {"first", "second"};
    struct jobs_grant g;
    long long a, b, c, d, att;

    fresh("jobs-grant.db");
    a = enq("second", 0, "{\"n\":1}");
    b = enq("first", 5, "{\"n\":2}");
    c = enq("first", 1, "{\"n\":3}");
    d = enq("first", 1, "{\"n\":4}");
    unit_check(jobs_grant(J, qs, 2, "w1", "s1", NULL, T0 + 7, &g, err, sizeof err) == DB_OK && g.job == c,
               "jobs: grant: the first queue's best priority first");
    unit_check(g.attempt == 1 && !strcmp(g.queue, "first") && !strcmp(g.payload, "{\"n\":3}") &&
               g.lease_ms == JOBS_LEASE_MS && g.timeout_ms == 0 && g.lost == 0 && g.enqueued_at,
               "jobs: grant: attempt 1, queue, payload, lease, timeout, lost");
    jobs_grant_free(&g);
    unit_check_str(state(c), "running", "jobs: grant: running");
    unit_check_str(qtext("SELECT worker || ' ' || session || ' ' || started_at FROM mosqlite_job_attempts"
                         " WHERE job = %lld AND attempt = 1", c), "w1 s1 2027-01-15T08:00:00.007Z",
                   "jobs: grant: an attempt row (worker, session, start)");
    unit_check(grant1("first", "s1", NULL, NULL) == d, "jobs: grant: same priority, the older first");
    unit_check(grant1("first", "s1", NULL, NULL) == b, "jobs: grant: then the lower priority");
    unit_check(jobs_grant(J, qs, 2, "w1", "s1", NULL, T0, &g, err, sizeof err) == DB_OK && g.job == a,
               "jobs: grant: the next queue when the first has none");
    jobs_grant_free(&g);
    unit_check(jobs_grant(J, qs, 2, "w1", "s1", NULL, T0, &g, err, sizeof err) == DB_OK && g.job == 0,
               "jobs: grant: nothing ready: job 0");
    unit_check(grant1("nosuch", "s1", NULL, NULL) == 0, "jobs: grant: an unknown queue has nothing");

    /* Paused and max_running. */
    a = enq("p", 0, NULL);
    unit_check(jobs_queue_pause(J, "p", 1, err, sizeof err) == DB_OK, "jobs: pause a queue");
    unit_check(grant1("p", "s1", NULL, NULL) == 0, "jobs: a paused queue grants nothing");
    jobs_queue_pause(J, "p", 0, err, sizeof err);
    unit_check(grant1("p", "s1", NULL, &att) == a, "jobs: resumed, it grants");
    b = enq("p", 0, NULL);
    unit_check(jobs_queue_max_running(J, "p", 1, err, sizeof err) == DB_OK, "jobs: max_running set");
    unit_check(grant1("p", "s1", NULL, NULL) == 0, "jobs: a queue at max_running grants nothing");
    jobs_done(J, a, att, NULL, 0, T0, NULL, err, sizeof err);
    unit_check(grant1("p", "s1", NULL, NULL) == b, "jobs: below max_running again, it grants");
    jobs_queue_max_running(J, "p", -1, err, sizeof err);
    unit_check(qint("SELECT max_running IS NULL FROM mosqlite_job_queues WHERE queue = 'p'") == 1,
               "jobs: max_running -1: no limit");
    unit_check(jobs_queue_pause(J, "a+b", 1, err, sizeof err) == DB_REJECT, "jobs: pause of a bad name refused");

    /* Claim ids. */
    a = enq("c", 0, "{\"c\":1}");
    unit_check(grant1("c", "s1", "w1.s1.c1", &att) == a && att == 1, "jobs: claim id: granted");
    {
        const char *q[1] = {"c"};
        unit_check(jobs_grant(J, q, 1, "w1", "s1", "w1.s1.c1", T0, &g, err, sizeof err) == DB_DUP &&
                   g.job == a && g.attempt == 1 && !strcmp(g.payload, "{\"c\":1}"),
                   "jobs: claim id again: the same grant (DB_DUP)");
        jobs_grant_free(&g);
        unit_check(qint("SELECT count(*) FROM mosqlite_job_attempts WHERE job = %lld", a) == 1,
                   "jobs: claim id again: no second attempt");
        jobs_release(J, a, 1, 0, T0, NULL, err, sizeof err);
        unit_check(jobs_grant(J, q, 1, "w1", "s1", "w1.s1.c1", T0, &g, err, sizeof err) == DB_REJECT,
                   "jobs: claim id again after its lease ended: refused");
        unit_check_str(err, "claim \"w1.s1.c1\" was already granted (job 7 attempt 1), and that lease has "
                       "ended: the job is ready (attempt 1)", "jobs: the reason for a claim granted before");
        unit_check_str(state(a), "ready", "jobs: a refused claim changed nothing");
    }
    unit_check(counts_agree(), "jobs: grant: counts agree with the rows");
}

static void check_ends(void)
{
    struct jobs_end out;
    struct jobs_new n;
    struct jobs_enq e;
    long long a, att, next;
    int made, i;

    fresh("jobs-ends.db");
    /* done, and the fence. */
    a = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_done(J, a, att + 1, "{}", 0, T0, &out, err, sizeof err) == DB_REJECT,
               "jobs: done with a wrong attempt: refused");
    unit_check_str(err, "lease lost: job 1 attempt 2 is no longer yours (running, attempt 1)",
                   "jobs: the reason for a wrong attempt");
    unit_check(jobs_done(J, a, att, "{\"ok\":1}", 0, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_DONE, "jobs: done");
    unit_check_str(qtext("SELECT result || ' ' || exit_code || ' ' || (finished_at IS NOT NULL) FROM"
                         " mosqlite_jobs WHERE id = %lld", a), "{\"ok\":1} 0 1", "jobs: done: result, exit, end");
    unit_check_str(qtext("SELECT outcome FROM mosqlite_job_attempts WHERE job = %lld", a), "done",
                   "jobs: done: the attempt's outcome");
    unit_check(jobs_done(J, a, att, "{}", 0, T0, &out, err, sizeof err) == DB_REJECT && out.state == JOBS_DONE,
               "jobs: a second done: lease lost, the job is done");
    unit_check_str(err, "lease lost: job 1 attempt 1 is no longer yours (done, attempt 1)",
                   "jobs: the reason for a second done");
    unit_check(jobs_fail(J, 999, 1, 1, "x", JOBS_RETRY_POLICY, -1, T0, &out, err, sizeof err) == DB_REJECT,
               "jobs: fail of no job: refused");
    unit_check_str(err, "no job 999", "jobs: the reason for no job");

    /* fail: once by default. */
    a = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_fail(J, a, att, 2, "make: Error 2", JOBS_RETRY_POLICY, -1, T0, &out, err, sizeof err) ==
               DB_OK && out.state == JOBS_FAILED, "jobs: fail with max_attempts 1: failed");
    unit_check_str(qtext("SELECT failures || ' ' || exit_code || ' ' || error FROM mosqlite_jobs WHERE id ="
                         " %lld", a), "1 2 make: Error 2", "jobs: fail: failures, exit code, error kept");

    /* fail with retries: backoff, due, then failed. */
    jobs_new_init(&n);
    n.queue = "q";
    n.payload = "{}";
    n.max_attempts = 3;
    n.backoff_ms = 1000;
    n.backoff_cap_ms = 1500;
    n.jitter_pct = 0;
    jobs_enqueue(J, &n, T0, &e, err, sizeof err);
    a = e.job;
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_fail(J, a, att, 1, "e1", JOBS_RETRY_POLICY, -1, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_RETRY && out.next_ms == T0 + 1000, "jobs: fail 1 of 3: retry after the backoff");
    unit_check(jobs_due(J, T0 + 999, 10, &made, &next, err, sizeof err) == DB_OK && made == 0 &&
               next == T0 + 1000, "jobs: due before its time: nothing, next due at its time");
    unit_check(jobs_due(J, T0 + 1000, 10, &made, &next, err, sizeof err) == DB_OK && made == 1 &&
               next == LLONG_MAX && !strcmp(state(a), "ready"), "jobs: due at its time: ready, nothing next");
    grant1("q", "s1", NULL, &att);
    unit_check(att == 2, "jobs: the retry's grant is attempt 2");
    jobs_fail(J, a, att, 1, "e2", JOBS_RETRY_POLICY, -1, T0, &out, err, sizeof err);
    unit_check(out.state == JOBS_RETRY && out.next_ms == T0 + 1500, "jobs: fail 2 of 3: backoff doubled, capped");
    jobs_run_now(J, a, T0, &out, err, sizeof err);
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_fail(J, a, att, 1, "e3", JOBS_RETRY_POLICY, -1, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_FAILED, "jobs: fail 3 of 3: failed");
    /* The job decides. */
    a = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_fail(J, a, att, 75, "tempfail", JOBS_RETRY_YES, 250, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_RETRY && out.next_ms == T0 + 250, "jobs: fail with retry yes, in 250 ms");
    jobs_due(J, T0 + 250, 10, &made, &next, err, sizeof err);
    grant1("q", "s1", NULL, &att);
    jobs_fail(J, a, att, 2, "no", JOBS_RETRY_NO, -1, T0, &out, err, sizeof err);
    unit_check(out.state == JOBS_FAILED, "jobs: fail with retry no: failed");

    /* release. */
    a = enq("r", 0, NULL);
    grant1("r", "s1", NULL, &att);
    unit_check(jobs_release(J, a, att, 0, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_READY,
               "jobs: release: ready again");
    unit_check(qint("SELECT failures + lost FROM mosqlite_jobs WHERE id = %lld", a) == 0,
               "jobs: release: no failure or loss counted");
    unit_check_str(qtext("SELECT outcome FROM mosqlite_job_attempts WHERE job = %lld AND attempt = 1", a),
                   "released", "jobs: release: the attempt's outcome");
    grant1("r", "s1", NULL, &att);
    unit_check(att == 2 && jobs_release(J, a, att, 5000, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_SCHEDULED && out.next_ms == T0 + 5000, "jobs: release with a delay: scheduled");

    /* lost: back at once, then dead after max_lost. */
    a = enq("l", 0, NULL);
    for (i = 1; i <= 3; i++) {
        grant1("l", "s1", NULL, &att);
        jobs_lost(J, a, att, "gone", T0, &out, err, sizeof err);
        unit_check(out.state == (i < 3 ? JOBS_READY : JOBS_DEAD), "jobs: lost %d of 3: %s", i,
                   i < 3 ? "ready at once" : "dead");
    }
    unit_check_str(qtext("SELECT error FROM mosqlite_jobs WHERE id = %lld", a),
                   "worker lost 3 times (last: w1, gone)", "jobs: dead: the error says why");
    unit_check(qint("SELECT failures FROM mosqlite_jobs WHERE id = %lld", a) == 0,
               "jobs: losses are not failures");
    unit_check(jobs_lost(J, a, att, "gone", T0, &out, err, sizeof err) == DB_REJECT,
               "jobs: lost again for a dead job: lease lost");

    /* cancel-ack */
    a = enq("k", 0, NULL);
    grant1("k", "s1", NULL, &att);
    unit_check(jobs_cancelled(J, a, att, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_CANCELLED,
               "jobs: the worker stopped it: cancelled");
    unit_check(counts_agree(), "jobs: ends: counts agree with the rows");
}

static void check_backoff(void)
{
    long long n, d, v, lo = LLONG_MAX, hi = 0;
    int i, ok = 1;

    fresh("jobs-backoff.db");
    for (n = 1; n <= 70; n++) {
        d = n <= 7 ? 1000LL << (n - 1) : 60000;
        if (d > 60000)
            d = 60000;
        for (i = 0; i < 200; i++) {
            v = jobs_backoff(J, 1000, 60000, 20, n);
            if (v < d - d / 5 || v > d)
                ok = 0;
            if (n == 1) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    }
    unit_check(ok, "jobs: backoff: always in [d - 20%%, d], d = min(cap, base * 2^(n-1)), up to n = 70");
    unit_check(lo < 900 && hi > 950, "jobs: backoff: the jitter spreads (first retry %lld..%lld ms)", lo, hi);
    unit_check(jobs_backoff(J, 1000, 60000, 0, 3) == 4000, "jobs: backoff without jitter: exact");
    unit_check(jobs_backoff(J, 1000, LLONG_MAX, 0, 200) > 0, "jobs: backoff: no overflow with a huge cap");
    unit_check(jobs_backoff(J, 0, 0, 20, 5) == 0, "jobs: backoff 0: at once");
}

static int count_running(void *arg, const struct jobs_lease *l)
{
    int *n = arg;

    if (l->session && !strcmp(l->session, "s2") && l->lease_ms == JOBS_LEASE_MS && l->started_ms == T0 &&
        !strcmp(l->worker, "w1") && l->attempt == 1)
        (*n)++;
    return 0;
}

static void check_sessions(void)
{
    long long a, b, c;
    int n = 0;

    fresh("jobs-sessions.db");
    a = enq("q", 0, NULL);
    b = enq("q", 0, NULL);
    c = enq("q", 0, NULL);
    grant1("q", "s1", NULL, NULL);
    grant1("q", "s2", NULL, NULL);
    grant1("q", "s1", NULL, NULL);
    unit_check(jobs_running(J, count_running, &n, err, sizeof err) == DB_OK && n == 1,
               "jobs: running: each lease with its worker, session, start and lease");
    unit_check(jobs_lost_session(J, "s1", "gone", T0, &n, err, sizeof err) == DB_OK && n == 2,
               "jobs: a session's Last Will: its two leases lost");
    unit_check(!strcmp(state(a), "ready") && !strcmp(state(b), "running") && !strcmp(state(c), "ready"),
               "jobs: the other session's lease goes on");
    unit_check_str(qtext("SELECT outcome || ' ' || error FROM mosqlite_job_attempts WHERE job = %lld", a),
                   "lost gone", "jobs: lost: the attempt's outcome and reason");
    unit_check(jobs_lost_session(J, "s1", "gone", T0, &n, err, sizeof err) == DB_OK && n == 0,
               "jobs: the same Will again: nothing");
}

static void check_cancel(void)
{
    struct jobs_end out;
    long long a, b, att;

    fresh("jobs-cancel.db");
    a = enq("q", 0, NULL);
    unit_check(jobs_cancel(J, a, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_CANCELLED,
               "jobs: cancel of a ready job: cancelled at once");
    unit_check(jobs_cancel(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: cancel of a final job refused");
    unit_check_str(err, "job 1 is already cancelled", "jobs: the reason for a final job");
    unit_check(jobs_cancel(J, 77, T0, &out, err, sizeof err) == DB_REJECT, "jobs: cancel of no job refused");

    b = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    unit_check(jobs_cancel(J, b, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_RUNNING &&
               out.cancel_asked && out.attempt == att, "jobs: cancel of a running job: asked, told to its lease");
    unit_check(jobs_cancel(J, b, T0, &out, err, sizeof err) == DB_DUP, "jobs: cancel asked again: DB_DUP");
    unit_check(jobs_fail(J, b, att, 143, "terminated", JOBS_RETRY_YES, -1, T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_CANCELLED, "jobs: a cancelled job's fail: cancelled, never retried");

    b = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    jobs_cancel(J, b, T0, &out, err, sizeof err);
    unit_check(jobs_lost(J, b, att, "lease expired", T0, &out, err, sizeof err) == DB_OK &&
               out.state == JOBS_CANCELLED, "jobs: a cancelled job's lease ends: cancelled");
    b = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    jobs_cancel(J, b, T0, &out, err, sizeof err);
    unit_check(jobs_done(J, b, att, "{}", 0, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_DONE,
               "jobs: a cancelled job that finished anyway: done");
    unit_check(counts_agree(), "jobs: cancel: counts agree with the rows");
}

static void check_operator(void)
{
    struct jobs_end out;
    struct jobs_new n;
    struct jobs_enq e;
    long long a, att;
    int i;

    fresh("jobs-operator.db");
    a = enq("q", 0, NULL);
    for (i = 0; i < 3; i++) {
        grant1("q", "s1", NULL, &att);
        jobs_lost(J, a, att, "gone", T0, &out, err, sizeof err);
    }
    unit_check(jobs_retry(J, a, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_READY,
               "jobs: retry of a dead job: ready");
    unit_check(qint("SELECT lost + failures FROM mosqlite_jobs WHERE id = %lld", a) == 0,
               "jobs: retry: counts of losses and failures reset");
    grant1("q", "s1", NULL, &att);
    unit_check(att == 4, "jobs: retry: the attempt number goes on (the fence)");
    unit_check(jobs_retry(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: retry of a running job refused");
    unit_check_str(err, "job 1 is running: only a failed, dead or cancelled job can be retried",
                   "jobs: the reason for a retry of a running job");
    unit_check(jobs_discard(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: discard of a running job refused");
    unit_check_str(err, "job 1 is running: cancel it instead", "jobs: the reason for a discard of a running job");
    jobs_done(J, a, att, NULL, 0, T0, &out, err, sizeof err);
    unit_check(jobs_retry(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: retry of a done job refused");

    a = enq("q", 0, NULL);
    unit_check(jobs_discard(J, a, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_DEAD,
               "jobs: discard of a ready job: dead");
    unit_check_str(qtext("SELECT error FROM mosqlite_jobs WHERE id = %lld", a), "discarded by an operator",
                   "jobs: discard: the error says so");
    unit_check(jobs_discard(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: discard of a dead job refused");
    unit_check_str(err, "job 2 is already dead", "jobs: the reason for a discard of a final job");

    jobs_new_init(&n);
    n.queue = "q";
    n.payload = "{}";
    n.run_at_ms = T0 + 3600000;
    jobs_enqueue(J, &n, T0, &e, err, sizeof err);
    unit_check(jobs_run_now(J, e.job, T0, &out, err, sizeof err) == DB_OK && out.state == JOBS_READY,
               "jobs: run now of a scheduled job: ready");
    unit_check(jobs_run_now(J, e.job, T0, &out, err, sizeof err) == DB_REJECT, "jobs: run now of a ready job refused");
    unit_check_str(err, "job 3 is ready: only a scheduled job or one waiting to retry can run now",
                   "jobs: the reason for run now of a ready job");
    unit_check(counts_agree(), "jobs: operator: counts agree with the rows");
}

/* Running or ready jobs of key k, at most limit at every step. */
static long long held(const char *k)
{
    return qint("SELECT count(*) FROM mosqlite_jobs WHERE conc_key = '%s' AND state IN ('ready','running')", k);
}

static void check_concurrency(void)
{
    long long ids[20], att[20], id, a;
    struct jobs_end out;
    size_t mark, nev;
    const struct jobs_event *ev;
    int i, granted = 0, over = 0, done = 0;

    fresh("jobs-conc.db");
    for (i = 0; i < 20; i++)
        ids[i] = enq_key("q", "repo:linux", 3);
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs WHERE state = 'ready'") == 3 &&
               qint("SELECT count(*) FROM mosqlite_jobs WHERE state = 'blocked'") == 17,
               "jobs: concurrency 3: three ready, the rest blocked");
    while ((id = grant1("q", "s1", NULL, &a)) > 0)
        granted++;
    unit_check(granted == 3, "jobs: concurrency 3: grants stop at three (got %d)", granted);
    mark = jobs_events_mark(J);
    jobs_done(J, ids[0], 1, NULL, 0, T0, &out, err, sizeof err);
    ev = jobs_events(J, &nev);
    unit_check(nev - mark == 2 && ev[mark + 1].job == ids[3] && ev[mark + 1].from == JOBS_BLOCKED &&
               ev[mark + 1].to == JOBS_READY, "jobs: one done: exactly one blocked job (the oldest) ready");
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs WHERE state = 'ready'") == 1,
               "jobs: one done: one ready");
    /* Run them all, always granting as many as possible, checking the limit each step. */
    for (i = 0; i < 20; i++)
        att[i] = !strcmp(state(ids[i]), "running");
    for (;;) {
        while ((id = grant1("q", "s1", NULL, &a)) > 0)
            for (i = 0; i < 20; i++)
                if (ids[i] == id)
                    att[i] = a;
        if (qint("SELECT count(*) FROM mosqlite_jobs WHERE conc_key = 'repo:linux' AND state = 'running'") > 3 ||
            held("repo:linux") > 3)
            over = 1;
        for (i = 0; i < 20 && !(att[i] && !strcmp(state(ids[i]), "running")); i++)
            ;
        if (i == 20)
            break;
        /* End one, in turn by each way that frees a slot. */
        switch (done++ % 4) {
        case 0: jobs_done(J, ids[i], att[i], NULL, 0, T0, &out, err, sizeof err); break;
        case 1: jobs_fail(J, ids[i], att[i], 1, "x", JOBS_RETRY_NO, -1, T0, &out, err, sizeof err); break;
        case 2: jobs_cancel(J, ids[i], T0, &out, err, sizeof err);
                jobs_cancelled(J, ids[i], att[i], T0, &out, err, sizeof err); break;
        case 3: jobs_lost(J, ids[i], att[i], "gone", T0, &out, err, sizeof err); break;
        }
    }
    unit_check(!over, "jobs: concurrency 3: never more than 3 running or ready, over every end");
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs WHERE state IN ('ready','blocked','running')") == 0,
               "jobs: concurrency: every job ran to an end");
    /* A cancel of a ready job frees its slot too; a retry to a later time as well. */
    ids[0] = enq_key("q", "k2", 1);
    ids[1] = enq_key("q", "k2", 1);
    unit_check(!strcmp(state(ids[1]), "blocked"), "jobs: concurrency 1: the second blocked");
    jobs_cancel(J, ids[0], T0, &out, err, sizeof err);
    unit_check_str(state(ids[1]), "ready", "jobs: the ready job cancelled: the blocked one ready");
    /* A job due, run now or retried by an operator waits for a slot like a new one. */
    {
        struct jobs_new n;
        struct jobs_enq e;
        long long next;
        int made;

        jobs_new_init(&n);
        n.queue = "q3";
        n.payload = "{}";
        n.conc_key = "k3";
        n.conc_limit = 1;
        n.run_at_ms = T0 + 1000;
        jobs_enqueue(J, &n, T0, &e, err, sizeof err);
        ids[3] = e.job;
        jobs_enqueue(J, &n, T0, &e, err, sizeof err);
        ids[4] = e.job;
        ids[5] = enq_key("q3", "k3", 1);
        jobs_due(J, T0 + 1000, 10, &made, &next, err, sizeof err);
        unit_check(made == 2 && !strcmp(state(ids[3]), "blocked"), "jobs: due with the key full: blocked");
        jobs_run_now(J, ids[4], T0, &out, err, sizeof err);
        unit_check_str(state(ids[4]), "blocked", "jobs: run now with the key full: blocked");
        grant1("q3", "s1", NULL, &a);
        jobs_fail(J, ids[5], a, 1, "x", JOBS_RETRY_NO, -1, T0, &out, err, sizeof err);
        unit_check_str(state(ids[3]), "ready", "jobs: the slot freed: the oldest blocked ready");
        jobs_retry(J, ids[5], T0, &out, err, sizeof err);
        unit_check(out.state == JOBS_BLOCKED && held("k3") == 1, "jobs: an operator retry with the key full: blocked");
    }
    jobs_queue_pause(J, "q", 1, err, sizeof err);
    ids[2] = enq_key("q", "k2", 1);
    unit_check_str(state(ids[2]), "blocked", "jobs: a ready job holds its slot (paused queue)");
    unit_check(counts_agree(), "jobs: concurrency: counts agree with the rows");
}

static long long enq_unique(const char *key, enum jobs_dup dup, struct jobs_enq *e, int *rc,
                            const char *ckey)
{
    struct jobs_new n;

    jobs_new_init(&n);
    n.queue = "u";
    n.payload = "{}";
    n.unique_key = key;
    n.on_duplicate = dup;
    n.conc_key = ckey;
    n.conc_limit = ckey ? 1 : 0;
    *rc = jobs_enqueue(J, &n, T0, e, err, sizeof err);
    return e->job;
}

static void check_unique(void)
{
    struct jobs_enq e;
    struct jobs_end out;
    long long a, b, c, att;
    int rc;

    fresh("jobs-unique.db");
    a = enq_unique("branch:main", JOBS_DUP_IGNORE, &e, &rc, NULL);
    b = enq_unique("branch:main", JOBS_DUP_IGNORE, &e, &rc, NULL);
    unit_check(rc == DB_DUP && b == a && e.state == JOBS_READY, "jobs: unique ignore: the live job is the answer");
    enq_unique("branch:main", JOBS_DUP_REJECT, &e, &rc, NULL);
    unit_check(rc == DB_REJECT && e.job == a, "jobs: unique reject: refused");
    unit_check_str(err, "unique key \"branch:main\" of queue \"u\" is held by job 1 (ready)",
                   "jobs: the reason for a unique key held");
    c = enq_unique("branch:main", JOBS_DUP_REPLACE, &e, &rc, NULL);
    unit_check(rc == DB_OK && c != a && e.replaced == a && e.replaced_state == JOBS_CANCELLED &&
               !strcmp(state(a), "cancelled") && !strcmp(state(c), "ready"),
               "jobs: unique replace of a queued job: it is cancelled, the new one ready");
    unit_check(qint("SELECT count(*) FROM mosqlite_jobs WHERE unique_key = 'branch:main' AND state IN"
                    " ('scheduled','ready','blocked','running','retry') AND cancel_req = 0") == 1,
               "jobs: one live job per unique key");
    grant1("u", "s1", NULL, &att);
    b = enq_unique("branch:main", JOBS_DUP_REPLACE, &e, &rc, NULL);
    unit_check(rc == DB_OK && e.replaced == c && e.replaced_state == JOBS_RUNNING && e.replaced_attempt == att &&
               !strcmp(state(c), "running") && qint("SELECT cancel_req FROM mosqlite_jobs WHERE id = %lld", c) == 1,
               "jobs: unique replace of a running job: its cancel asked, told to its lease");
    unit_check(jobs_done(J, c, att, NULL, 0, T0, &out, err, sizeof err) == DB_OK, "jobs: the superseded job may still end");
    unit_check(jobs_cancel(J, b, T0, &out, err, sizeof err) == DB_OK, "jobs: cancel the live one");
    a = enq_unique("branch:main", JOBS_DUP_REJECT, &e, &rc, NULL);
    unit_check(rc == DB_OK, "jobs: a key no live job holds: enqueued");
    jobs_cancel(J, a, T0, &out, err, sizeof err);

    /* Replace under a concurrency limit of 1: the new one waits for the old to stop. */
    a = enq_unique("dev:7", JOBS_DUP_REPLACE, &e, &rc, "station:7");
    grant1("u", "s1", NULL, &att);
    while (grant1("u", "s1", NULL, NULL) > 0)
        ;
    b = enq_unique("dev:7", JOBS_DUP_REPLACE, &e, &rc, "station:7");
    unit_check(rc == DB_OK && e.state == JOBS_BLOCKED && !strcmp(state(a), "running"),
               "jobs: replace a running job with a limit of 1: the new one blocked while the old runs");
    jobs_cancelled(J, a, att, T0, &out, err, sizeof err);
    unit_check_str(state(b), "ready", "jobs: the old one stopped: the new one ready");
    /* An operator retry of a job whose key is held again is refused. */
    unit_check(jobs_retry(J, a, T0, &out, err, sizeof err) == DB_REJECT, "jobs: retry with the key held refused");
    unit_check_str(err, "job 5 cannot be retried: its unique key \"dev:7\" is held by job 6",
                   "jobs: the reason for a retry with the key held");
    unit_check(counts_agree(), "jobs: unique: counts agree with the rows");
}

static void check_events_and_rollback(void)
{
    size_t mark, n;
    long long before;

    fresh("jobs-rollback.db");
    enq("q", 0, NULL);
    jobs_events_reset(J);
    sql("BEGIN; SAVEPOINT req");
    mark = jobs_events_mark(J);
    before = count("q", "ready");
    enq("q", 0, NULL);
    grant1("q", "s1", NULL, NULL);
    sql("ROLLBACK TO req; RELEASE req; COMMIT");
    jobs_events_cut(J, mark);
    jobs_events(J, &n);
    unit_check(n == 0 && count("q", "ready") == before && qint("SELECT count(*) FROM mosqlite_jobs") == 1 &&
               counts_agree(), "jobs: a request rolled back: its jobs, counts and events gone");
}

/* The statement's plan: no SCAN of mosqlite_jobs, and the index named is used (for the
 * list of all leases, a scan of the partial index of running jobs is the plan). */
static void check_plan(int i, const char *index, const char *what, int index_scan_ok)
{
    char q[2048];
    sqlite3_stmt *st;
    int scan = 0, uses = 0;

    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sqlite3_sql(J->st[i]));
    trusted = 1;
    if (sqlite3_prepare_v2(H, q, -1, &st, NULL) != SQLITE_OK) {
        unit_check(0, "jobs: plan of %s: %s", what, sqlite3_errmsg(H));
        trusted = 0;
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if ((!strncmp(d, "SCAN mosqlite_jobs", 18) || !strncmp(d, "SCAN TABLE mosqlite_jobs", 24)) &&
            !(index_scan_ok && strstr(d, index)))
            scan = 1;
        if (strstr(d, index))
            uses = 1;
        if (scan || !uses)
            unit_note("plan of %s: %s", what, d);
    }
    sqlite3_finalize(st);
    trusted = 0;
    unit_check(!scan && uses, "jobs: the plan of %s uses %s, no scan", what, index);
}

static void check_plans(void)
{
    int i;

    fresh("jobs-plans.db");
    /* Many finished jobs and a few live ones, and the planner's statistics. */
    sql("BEGIN");
    for (i = 0; i < 2000; i++)
        enq(i % 2 ? "q" : "r", i % 5, NULL);
    sql("UPDATE mosqlite_jobs SET state = CASE id % 3 WHEN 0 THEN 'done' WHEN 1 THEN 'dead' ELSE 'failed'"
        " END, unique_key = 'k' || id, conc_key = 'c' || (id % 7), conc_limit = 2,"
        " finished_at = '2027-01-01T00:00:00.000Z' WHERE id > 20;"
        "COMMIT; ANALYZE");
    check_plan(ST_BEST, "mosqlite_jobs_ready", "a grant", 0);
    check_plan(ST_DUE, "mosqlite_jobs_due", "due jobs", 0);
    check_plan(ST_NEXT, "mosqlite_jobs_due", "the next due time", 0);
    check_plan(ST_BLOCKED, "mosqlite_jobs_blocked", "unblock", 0);
    check_plan(ST_SLOTS, "mosqlite_jobs_slots", "a key's slots", 0);
    check_plan(ST_UNIQUE, "mosqlite_jobs_unique", "the unique-key lookup", 0);
    check_plan(ST_SESSION, "mosqlite_jobs_running", "a session's leases", 0);
    check_plan(ST_RUNNING, "mosqlite_jobs_running", "all leases", 1);
    check_plan(ST_CLAIM, "mosqlite_job_attempts_claim", "a claim id", 0);
    check_plan(ST_PRUNE_COUNT, "mosqlite_jobs_finished", "the jobs to prune, counted", 0);
    check_plan(ST_PRUNE_JOBS, "mosqlite_jobs_finished", "the jobs pruned", 0);
    unit_check(grant1("q", "s1", NULL, NULL) > 0, "jobs: a grant among many finished jobs");
}

/* The trust hook is called around each statement: after a schema change SQLite
 * prepares them again inside sqlite3_step, where the authorizer must let them pass. */
static void check_trust(void)
{
    fresh("jobs-trust.db");
    sql("CREATE TABLE other (x)");
    unit_check(enq("q", 0, NULL) > 0, "jobs: statements prepared again after a schema change pass the "
               "authorizer (trusted around each step)");
    jobs_set_trust(J, NULL, NULL);
    sql("CREATE TABLE other2 (x)");
    unit_check(enq("q", 0, NULL) == 0, "jobs: without the trust hook, the authorizer refuses them");
}

static int sum_counts(void *arg, const struct jobs_count *c)
{
    long long *n = arg;

    if (!strcmp(c->queue, "q"))
        n[0] = c->n[JOBS_READY] * 1000 + c->n[JOBS_RUNNING] * 100 + c->n[JOBS_DONE] * 10 + c->paused;
    return 0;
}

static void check_counts(void)
{
    long long a, att, n[1] = {-1};
    int rc;

    fresh("jobs-counts.db");
    a = enq("q", 0, NULL);
    enq("q", 0, NULL);
    enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    jobs_done(J, a, att, NULL, 0, T0, NULL, err, sizeof err);
    grant1("q", "s1", NULL, &att);
    jobs_queue_pause(J, "q", 1, err, sizeof err);
    rc = jobs_counts(J, sum_counts, n, err, sizeof err);
    unit_check(rc == DB_OK && n[0] == 1111, "jobs: counts: 1 ready, 1 running, 1 done, paused (got %lld)", n[0]);
    jobs_close(J);
    J = NULL;
    sqlite3_close(H);
    H = NULL;
}

/* Pruning: the oldest finished jobs of a state, their attempts, the counts. */
static void check_prune(void)
{
    long long a, b, c, d, att, n = -1;
    int rc;

    fresh("jobs-prune.db");
    err[0] = 0;
    a = enq("q", 0, NULL);
    b = enq("q", 0, NULL);
    c = enq("r", 0, NULL);
    d = enq("q", 0, NULL);
    grant1("q", "s1", NULL, &att);
    jobs_done(J, a, att, NULL, 0, T0 - 10 * 86400000LL, NULL, err, sizeof err);
    jobs_cancel(J, b, T0 - 9 * 86400000LL, NULL, err, sizeof err);
    jobs_cancel(J, c, T0 - 8 * 86400000LL, NULL, err, sizeof err);
    jobs_cancel(J, d, T0 - 1 * 86400000LL, NULL, err, sizeof err);
    rc = jobs_prune(J, JOBS_CANCELLED, T0 - 7 * 86400000LL, 1, &n, err, sizeof err);
    unit_check(rc == DB_OK && n == 1 && qint("SELECT count(*) FROM mosqlite_jobs WHERE id = %lld", b) == 0,
               "jobs: prune at most max, the oldest first (%lld pruned: %s)", n, err);
    rc = jobs_prune(J, JOBS_CANCELLED, T0 - 7 * 86400000LL, 100, &n, err, sizeof err);
    unit_check(rc == DB_OK && n == 1 && qint("SELECT count(*) FROM mosqlite_jobs WHERE id IN (%lld, %lld)", c, d) == 1,
               "jobs: prune: only those older than the cut (%lld pruned)", n);
    unit_check(qint("SELECT n_cancelled FROM mosqlite_job_queues WHERE queue = 'q'") == 1 &&
               qint("SELECT n_cancelled FROM mosqlite_job_queues WHERE queue = 'r'") == 0 &&
               qint("SELECT n_done FROM mosqlite_job_queues WHERE queue = 'q'") == 1,
               "jobs: prune: each queue's count of the state moved down by its own");
    rc = jobs_prune(J, JOBS_DONE, T0, 100, &n, err, sizeof err);
    unit_check(rc == DB_OK && n == 1 && qint("SELECT count(*) FROM mosqlite_job_attempts WHERE job = %lld", a) == 0 &&
               qint("SELECT n_done FROM mosqlite_job_queues WHERE queue = 'q'") == 0,
               "jobs: prune: a done job with its attempts");
    unit_check(jobs_prune(J, JOBS_RUNNING, T0, 100, &n, err, sizeof err) == DB_REJECT,
               "jobs: prune: never a live state");
}

static int cron_name(void *arg, const char *name)
{
    strcat(arg, name);
    strcat(arg, ",");
    return 0;
}

/* mosqlite_job_cron rows, and `job-cron` lines. */
static void check_cron(void)
{
    struct jobcron_spec sp;
    long long next, last;
    char names[256] = "";
    int found, rc;

    fresh("jobs-cron.db");
    rc = jobs_cron_set(J, "b", 120000, LLONG_MIN, err, sizeof err);
    rc |= jobs_cron_set(J, "a", 60000, 0, err, sizeof err);
    rc |= jobs_cron_set(J, "b", 180000, 120000, err, sizeof err);
    rc |= jobs_cron_get(J, "b", &found, &next, &last, err, sizeof err);
    unit_check(rc == DB_OK && found && next == 180000 && last == 120000, "jobs: cron row written, then moved on");
    jobs_cron_get(J, "zz", &found, &next, &last, err, sizeof err);
    unit_check(!found, "jobs: no cron row");
    jobs_cron_delete(J, "a", err, sizeof err);
    jobs_cron_names(J, cron_name, names, err, sizeof err);
    unit_check(!strcmp(names, "b,"), "jobs: cron rows: one deleted (left: %s)", names);
    rc = jobcron_parse("nightly 0 2 * * MON-FRI build-arm64 {\"branch\": \"main\", \"n\": [1, 2]} priority=-3 "
                       "catch_up=all:4 unique_key=nightly on_duplicate=replace", &sp, err, sizeof err);
    unit_check(!rc && !strcmp(sp.name, "nightly") && !strcmp(sp.enq.queue, "build-arm64") && sp.enq.priority == -3 &&
               sp.catch_up == JOBCRON_ALL && sp.catch_max == 4 && !strcmp(sp.enq.unique_key, "nightly") &&
               sp.enq.on_duplicate == JOBS_DUP_REPLACE && cJSON_IsObject(sp.enq.payload) && sp.cron.hour == 1U << 2,
               "jobcron: a line with a payload holding blanks, and options (%s)", rc ? err : "");
    if (!rc)
        jobcron_spec_free(&sp);
    rc = jobcron_parse("h @hourly q null", &sp, err, sizeof err);
    unit_check(!rc && sp.catch_up == JOBCRON_ONE && sp.catch_max == 1 && cJSON_IsNull(sp.enq.payload) &&
               sp.enq.lease_ms == -1, "jobcron: a macro; catch_up one by default; options left to the defaults");
    if (!rc)
        jobcron_spec_free(&sp);
    rc = jobcron_parse("x @daily q 1.5 max_attempts=2.0", &sp, err, sizeof err);
    unit_check(rc && !strcmp(err, "job-cron x: \"max_attempts\" must be an integer from 1 to 1000000"),
               "jobcron: an option's number is an integer (%s)", err);
    rc = jobcron_parse("x @daily q {\"a\":1}x", &sp, err, sizeof err);
    unit_check(rc && !strcmp(err, "job-cron x: PAYLOAD: a blank must follow the JSON value, not \"x\""),
               "jobcron: the payload ends where its JSON does (%s)", err);
    rc = jobcron_parse("x @daily q 1 follow=true", &sp, err, sizeof err);
    unit_check(rc && strstr(err, "follow: a recurring job has no enqueuer"), "jobcron: no follow (%s)", err);
    rc = jobcron_parse("x @daily q 1 priority=1 priority=2", &sp, err, sizeof err);
    unit_check(rc && !strcmp(err, "job-cron x: option priority is given twice"), "jobcron: an option twice (%s)", err);
    rc = jobcron_parse("x @daily q 1 on_duplicate=replace", &sp, err, sizeof err);
    unit_check(rc && strstr(err, "\"on_duplicate\" needs \"unique_key\""), "jobcron: the enqueue's own checks (%s)",
               err);
}

void test_jobs(void)
{
    double t0 = util_now_exact_ms();
    check_schema();
    check_enqueue();
    check_grant();
    check_ends();
    check_backoff();
    check_sessions();
    check_cancel();
    check_operator();
    check_concurrency();
    check_unique();
    check_events_and_rollback();
    check_plans();
    check_trust();
    check_counts();
    check_prune();
    check_cron();
    unit_note("jobs took %.0f ms", util_now_exact_ms() - t0);
}
