/* fuzz_jobq.c: libFuzzer target over the writer's reading of job messages: jobq_apply()
 * (writer/jobq_read.c, jobq_end.c, jobq_claim.c, jobq_lease.c, jobq_workers.c) on claim,
 * done, fail, release, progress and enqueue on PREFIX/jobs/QUEUE and hello, beat, bye
 * and gone on PREFIX/jobs/worker, on a real job queue.
 *
 * An input is "LEVELS\nPAYLOAD": the topic is mosqlite/jobs/LEVELS ("worker", a queue, or
 * anything else), mosqlite/jobs/build when the line is empty or there is no newline.
 *
 * Once, at start, a database file is made as the writer makes it (db_open with the
 * project's schema and the test tables, the job tables), and a few job messages are
 * applied and committed through the same entry: jobs enqueued in build, build.arm64 and
 * publish (one blocked on its concurrency key, one scheduled far ahead), three of them
 * granted (jobs 1, 2 and 5, attempt 1, to worker w3 session s9 and w4 session s10), one
 * done. Then each input runs as one request of a batch does (batch.c): in a job queue
 * as freshly opened on that database (the leases rebuilt from the running jobs, so that
 * no input depends on the one before), BEGIN, the timers, the request's mark,
 * jobq_apply(); then the grants to waiting claims, and ROLLBACK: the file never grows.
 *
 * Besides the sanitizers, the target checks what jobq.h and jobs.h promise:
 *   - no job message is a database fault (that would stall the writer);
 *   - a rejection has a message; once cut back to its mark, nothing of it remains: every
 *     table (the job tables, mosqlite_applied, the user's tables) holds what it held
 *     before, no push, lease (nor a change to one: a cancel asked, a renewal), waiting
 *     claim, ended session or worker online is left, and the rejection is then kept in
 *     mosqlite_rejected as the batch keeps it;
 *   - after a message taken (and after the grants to waiting claims): each queue's
 *     counts are its jobs' states, no concurrency key has more jobs ready or running
 *     than its limit, and each running job has its lease in memory for its attempt.
 *
 * Built and run by tests/fuzz/run.sh; the schema directories come from the environment
 * (MOSQLITE_ROOT, default the current directory). With FUZZ_JOBQ_VERBOSE set, each
 * input's outcome is printed (to see what the seeds reach: -runs=0). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "testdb.h"
#include "db.h"
#include "fuzz_input.h"
#include "jobq_int.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define PREFIX "mosqlite"
#define MAX_TABLES 64

static struct db *db;
static const struct req_limits limits = {8000, 32, 100, PREFIX};
static struct jobq_opts opts;
static char dir[4096];
/* The tables whose content a rejection must leave as it was (all but mosqlite_rejected),
 * each as a statement reading every row. */
static sqlite3_stmt *tables[MAX_TABLES];
static int ntables;
static int verbose;            /* FUZZ_JOBQ_VERBOSE set: each input's outcome on stderr */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_jobq: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* ---- the database as it stands ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* A hash of every row of every table read, the same whatever order the rows come in. */
static uint64_t content(void)
{
    uint64_t all = 0;
    int t, i, rc;

    db_trust(db, 1);
    for (t = 0; t < ntables; t++) {
        sqlite3_stmt *st = tables[t];
        uint64_t sum = (uint64_t)t * 0x9e3779b97f4a7c15ULL;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            uint64_t h = 1469598103934665603ULL + (uint64_t)t;
            for (i = 0; i < sqlite3_column_count(st); i++) {
                int type = sqlite3_column_type(st, i);
                h = mix(h, &type, sizeof type);
                if (type == SQLITE_INTEGER) {
                    sqlite3_int64 v = sqlite3_column_int64(st, i);
                    h = mix(h, &v, sizeof v);
                } else if (type == SQLITE_FLOAT) {
                    double v = sqlite3_column_double(st, i);
                    h = mix(h, &v, sizeof v);
                } else if (type != SQLITE_NULL) {
                    const void *b = sqlite3_column_blob(st, i);
                    int n = sqlite3_column_bytes(st, i);
                    h = mix(h, &n, sizeof n);
                    if (n)
                        h = mix(h, b, (size_t)n);
                }
            }
            sum += h * 0xff51afd7ed558ccdULL + (h >> 29);
        }
        if (rc != SQLITE_DONE)
            die("reading a table", sqlite3_errmsg(db_handle(db)));
        sqlite3_reset(st);
        all = all * 31 + sum;
    }
    db_trust(db, 0);
    return all;
}

/* The first row's first column of sql (an integer), read inside the open transaction. */
static long long scalar(const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    db_trust(db, 1);
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK)
        die(sql, sqlite3_errmsg(db_handle(db)));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    db_trust(db, 0);
    return v;
}

#define COUNT_OFF(s) "n_" #s " != (SELECT count(*) FROM mosqlite_jobs j WHERE j.queue = q.queue AND j.state = '" #s "')"

/* What holds after every message taken (the transaction still open). */
static void check_tables(struct jobq *q, const char *input)
{
    static const char counts[] =
        "SELECT count(*) FROM mosqlite_job_queues q WHERE " COUNT_OFF(scheduled) " OR " COUNT_OFF(ready)
        " OR " COUNT_OFF(blocked) " OR " COUNT_OFF(running) " OR " COUNT_OFF(retry) " OR " COUNT_OFF(done)
        " OR " COUNT_OFF(failed) " OR " COUNT_OFF(dead) " OR " COUNT_OFF(cancelled);
    sqlite3_stmt *st = NULL;
    int rc;

    if (scalar(counts) != 0)
        die("a queue's counts are not its jobs' states", input);
    if (scalar("SELECT count(*) FROM mosqlite_jobs WHERE queue NOT IN (SELECT queue FROM mosqlite_job_queues)"))
        die("a job in a queue with no row", input);
    if (scalar("SELECT count(*) FROM (SELECT conc_key FROM mosqlite_jobs WHERE conc_key IS NOT NULL AND state IN "
               "('ready','running') GROUP BY conc_key HAVING count(*) > max(conc_limit))"))
        die("a concurrency key with more jobs ready or running than its limit", input);
    /* Each running job has its lease, for its attempt. */
    db_trust(db, 1);
    if (sqlite3_prepare_v2(db_handle(db), "SELECT id, attempt FROM mosqlite_jobs WHERE state = 'running'", -1,
                           &st, NULL) != SQLITE_OK)
        die("running jobs", sqlite3_errmsg(db_handle(db)));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const struct lease *l = jobq_lease_find(q, sqlite3_column_int64(st, 0));
        if (!l || l->attempt != sqlite3_column_int64(st, 1))
            die("a running job without its lease in memory", input);
    }
    sqlite3_finalize(st);
    db_trust(db, 0);
}

/* ---- the job queue's memory ----------------------------------------------------------------- */

/* What a lease holds that a message may change. */
struct lease_copy {
    long long job, attempt, deadline, started, lease_ms, timeout_ms;
    int cancel_asked, pending, ending, has_reply_to;
};

#define LEASES_MAX 64

static size_t leases_copy(const struct jobq *q, struct lease_copy *c)
{
    size_t i;

    if (q->nlease > LEASES_MAX)
        die("leases", "more than the target keeps");
    for (i = 0; i < q->nlease; i++) {
        const struct lease *l = &q->leases[i];
        memset(&c[i], 0, sizeof c[i]);
        c[i].job = l->job;
        c[i].attempt = l->attempt;
        c[i].deadline = l->deadline;
        c[i].started = l->started;
        c[i].lease_ms = l->lease_ms;
        c[i].timeout_ms = l->timeout_ms;
        c[i].cancel_asked = l->cancel_asked;
        c[i].pending = l->pending;
        c[i].ending = l->ending;
        c[i].has_reply_to = l->reply_to != NULL;
    }
    return q->nlease;
}

static int leases_same(const struct jobq *q, const struct lease_copy *c, size_t n)
{
    struct lease_copy now[LEASES_MAX];

    return leases_copy(q, now) == n && !memcmp(now, c, n * sizeof *c);
}

/* ---- one message, as batch.c applies it ----------------------------------------------------- */

static void outcome_free(struct outcome *o)
{
    free(o->id);
    free(o->reply_to);
    free(o->error);
    free(o->cancel);
    free(o->after);
    free(o->extra);
    memset(o, 0, sizeof *o);
}

static void topic_of(char *topic, size_t n, const char *levels)
{
    snprintf(topic, n, "%s/jobs/%s", PREFIX, levels && *levels ? levels : "build");
}

/* Apply one message in the open batch: its status, the rejection in err. */
static int apply(struct jobq *q, const char *levels, char *payload, size_t len, struct outcome *o, char *err,
                 size_t errlen, const char *input)
{
    char topic[512], why[1024];
    struct msg m;
    struct jobq_mark mk;
    size_t nwait = q->nwait, ended = q->ended_next, nworkers = jobq_workers_count(q), nleases;
    struct lease_copy leases[LEASES_MAX];
    uint64_t before = content();
    int rc;

    memset(&m, 0, sizeof m);
    topic_of(topic, sizeof topic, levels);
    m.topic = topic;
    m.payload = payload;
    m.len = len;
    memset(o, 0, sizeof *o);
    o->rowid = -1;
    err[0] = 0;
    nleases = leases_copy(q, leases);
    jobq_mark(q, &mk);
    rc = jobq_apply(q, &m, o, err, errlen);
    if (rc == DB_FAULT)
        die("a job message made a database fault", err);
    if (rc != DB_OK && rc != DB_DUP && rc != DB_REJECT && rc != DB_LOST)
        die("an unknown status", input);
    if (rc == DB_REJECT) {
        if (!err[0] || !memchr(err, 0, errlen))
            die("a rejection without a message", input);
        jobq_cut(q, &mk);
        if (content() != before)
            die("a rejected message changed the database", err);
        if (q->nout != mk.out || q->nlease != mk.nlease)
            die("a rejected message left a push or a lease", err);
        if (!leases_same(q, leases, nleases))
            die("a rejected message changed a lease in memory", err);
        if (q->nwait != nwait || q->ended_next != ended)
            die("a rejected message left a waiting claim or ended a session", err);
        if (jobq_workers_count(q) != nworkers)
            die("a rejected message changed the workers online", err);
        if (db_record_rejection(db, topic, o->id, err, payload, len, why, sizeof why) != DB_OK)
            die("keeping the rejection", why);
    } else if (rc != DB_LOST) {
        free(jobq_take_receipt(q));
        check_tables(q, input);
    }
    return rc;
}

static struct jobq *open_queue(void)
{
    char err[1024];
    struct jobq *q = jobq_new(db, NULL, PREFIX, &limits, &opts, err, sizeof err);

    if (!q)
        die("jobq_new", err);
    return q;
}

/* The queue for the next input: the one before kept while its memory is as it was
 * opened (most inputs are refused, or change only the database, rolled back), else a
 * fresh one: every input meets the same queue. Renewed every few seconds too, so that no
 * lease of the setup ever runs out. */
static struct jobq *cur;
static long long cur_ms;
static struct lease_copy fresh[LEASES_MAX];
static size_t nfresh;

static struct jobq *queue_for_input(void)
{
    if (cur && (util_now_ms() - cur_ms > 5000 || cur->nwait || cur->workers || cur->ended_next || cur->hellos ||
                cur->match_all || cur->nout || cur->nasked || !leases_same(cur, fresh, nfresh))) {
        jobq_free(cur);
        cur = NULL;
    }
    if (!cur) {
        cur = open_queue();
        cur_ms = util_now_ms();
        nfresh = leases_copy(cur, fresh);
    }
    return cur;
}

/* ---- setup ------------------------------------------------------------------------------- */


static void setup(void)
{
    static const char *const msgs[][2] = {
        {"build.arm64", "{\"op\":\"enqueue\",\"id\":\"e1\",\"payload\":{\"build_id\":7,\"ref\":\"a1b2c3\"},"
                        "\"unique_key\":\"branch:main\",\"concurrency_key\":\"repo:linux\",\"concurrency\":1}"},
        {"build.arm64", "{\"op\":\"enqueue\",\"id\":\"e2\",\"payload\":\"text\",\"priority\":-1,\"lease_ms\":60000}"},
        {"build.arm64", "{\"op\":\"enqueue\",\"id\":\"e3\",\"payload\":[1,2.5],\"concurrency_key\":\"repo:linux\","
                        "\"concurrency\":1}"},
        {"publish", "{\"op\":\"enqueue\",\"id\":\"e4\",\"payload\":null,\"at\":\"2099-01-01T00:00:00Z\"}"},
        {"build", "{\"op\":\"enqueue\",\"id\":\"e5\",\"reply_to\":\"mosqlite/receipts/ci\",\"payload\":{},"
                  "\"max_attempts\":3,\"max_lost\":1,\"follow\":true}"},
        {"build", "{\"op\":\"enqueue\",\"id\":\"e6\",\"payload\":6}"},
        {"build", "{\"op\":\"enqueue\",\"id\":\"e7\",\"payload\":7}"},
        {"worker", "{\"op\":\"hello\",\"worker\":\"w3\",\"session\":\"s9\",\"host\":\"build-3\","
                   "\"queues\":[\"build.arm64\"],\"jobs\":2}"},
        /* Job 2 (priority -1), then job 1 to w3; job 5 to w4. */
        {"build.arm64", "{\"op\":\"claim\",\"id\":\"c1\",\"worker\":\"w3\",\"session\":\"s9\","
                        "\"reply_to\":\"mosqlite/jobs/to/w3\"}"},
        {"build.arm64", "{\"op\":\"claim\",\"id\":\"c2\",\"worker\":\"w3\",\"session\":\"s9\","
                        "\"reply_to\":\"mosqlite/jobs/to/w3\",\"queues\":[\"build.arm64\"]}"},
        {"build", "{\"op\":\"claim\",\"id\":\"c3\",\"worker\":\"w4\",\"session\":\"s10\","
                  "\"reply_to\":\"mosqlite/jobs/to/w4\"}"},
        {"build", "{\"op\":\"claim\",\"id\":\"c4\",\"worker\":\"w4\",\"session\":\"s10\","
                  "\"reply_to\":\"mosqlite/jobs/to/w4\"}"},
    };
    /* Job 6, granted to c4, is done (a stale message has a finished job to name). */
    static const char done[] = "{\"op\":\"done\",\"id\":\"6.1.done\",\"job\":6,\"attempt\":1,\"result\":1}";
    struct jobq *q = open_queue();
    struct outcome o;
    char err[1024];
    size_t i;

    if (db_begin(db, err, sizeof err) != DB_OK || jobq_begin(q, err, sizeof err) != DB_OK)
        die("setup: begin", err);
    for (i = 0; i < sizeof msgs / sizeof msgs[0] + 1; i++) {
        const char *levels = i < sizeof msgs / sizeof msgs[0] ? msgs[i][0] : "build";
        const char *text = i < sizeof msgs / sizeof msgs[0] ? msgs[i][1] : done;
        char *p = strdup(text);
        if (!p)
            die("setup", "out of memory");
        if (apply(q, levels, p, strlen(p), &o, err, sizeof err, text) != DB_OK)
            die(text, err);
        outcome_free(&o);
        free(p);
    }
    if (jobq_match(q, err, sizeof err) != DB_OK || db_commit(db, err, sizeof err) != DB_OK)
        die("setup: commit", err);
    jobq_rolled_back(q);   /* its pushes are not published: there is no broker */
    jobq_free(q);
    if (scalar("SELECT group_concat(id || '.' || attempt, ' ') = '1.1 2.1 5.1' FROM "
               "(SELECT id, attempt FROM mosqlite_jobs WHERE state = 'running' ORDER BY id)") != 1 ||
        scalar("SELECT count(*) FROM mosqlite_jobs WHERE id = 3 AND state = 'blocked'") != 1 ||
        scalar("SELECT count(*) FROM mosqlite_jobs WHERE id = 6 AND state = 'done'") != 1)
        die("setup", "the jobs are not in the states the seeds name");
}

/* At exit: the database and its files (WAL, lock) removed with their directory. */
static void cleanup(void)
{
    char path[4400];
    struct dirent *e;
    DIR *d;
    int t;

    jobq_free(cur);
    for (t = 0; t < ntables; t++)
        sqlite3_finalize(tables[t]);
    db_close(db);
    if ((d = opendir(dir))) {
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("MOSQLITE_ROOT");
    char path[4200], sdir[4200], err[1024];
    struct db_opts o;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;

    (void)argc;
    (void)argv;
    log_init("fuzz_jobq", LOG_ERROR);
    verbose = getenv("FUZZ_JOBQ_VERBOSE") != NULL;
    if (!root)
        root = ".";
    snprintf(dir, sizeof dir, "%s/fuzz_jobq.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    snprintf(path, sizeof path, "%s/jobq.db", dir);
    /* Both schema directories, as the hostile test's writer has them. */
    if (sqlite3_open(path, &h) != SQLITE_OK)
        die("sqlite3_open", path);
    snprintf(sdir, sizeof sdir, "%s/conf/schema", root);
    if (schema_migrate(h, sdir, err, sizeof err))
        die(sdir, err);
    sqlite3_close(h);
    snprintf(sdir, sizeof sdir, "%s/tests/schema", root);
    testdb_opts(&o, path, sdir);
    if (!(db = db_open(&o, err, sizeof err)))
        die("db_open", err);
    if (jobq_create_tables(db, err, sizeof err) != DB_OK)
        die("jobq_create_tables", err);
    opts.lease_ms = opts.max_lost = opts.max_attempts = opts.backoff_ms = opts.backoff_cap_ms = -1;
    atexit(cleanup);
    /* Every table but the rejections. */
    db_trust(db, 1);
    if (sqlite3_prepare_v2(db_handle(db), "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                           "name != 'mosqlite_rejected' ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        die("listing tables", sqlite3_errmsg(db_handle(db)));
    while (sqlite3_step(st) == SQLITE_ROW) {
        char sql[512];
        if (ntables == MAX_TABLES)
            die("listing tables", "too many");
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", (const char *)sqlite3_column_text(st, 0));
        if (sqlite3_prepare_v3(db_handle(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &tables[ntables], NULL) !=
            SQLITE_OK)
            die(sql, sqlite3_errmsg(db_handle(db)));
        ntables++;
    }
    sqlite3_finalize(st);
    db_trust(db, 0);
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[256], err[1024];
    const char *levels;
    size_t len;
    char *payload = fuzz_input(data, size, line, sizeof line, &levels, &len), *input;
    struct jobq *q;
    struct outcome o;
    int rc;

    if (!payload)
        return 0;
    /* The payload NUL-terminated past len, as the broker's messages are (mq.h). */
    if (!(input = realloc(payload, len + 1)))
        die("input", "out of memory");
    input[len] = 0;
    q = queue_for_input();
    if (db_begin(db, err, sizeof err) != DB_OK || jobq_begin(q, err, sizeof err) != DB_OK)
        die("begin", err);
    rc = apply(q, levels, input, len, &o, err, sizeof err, input);
    if (verbose)
        fprintf(stderr, "fuzz_jobq: %s: %s%s%s\n", levels ? levels : "build",
                rc == DB_OK ? "applied" : rc == DB_DUP ? "duplicate" : rc == DB_LOST ? "lost" : "rejected",
                o.extra ? " " : rc == DB_REJECT ? ": " : "", o.extra ? o.extra : rc == DB_REJECT ? err : "");
    if (rc != DB_LOST) {
        if (jobq_match(q, err, sizeof err) != DB_OK)
            die("granting to waiting claims", err);
        check_tables(q, input);
    }
    db_rollback(db);
    jobq_rolled_back(q);
    outcome_free(&o);
    free(input);
    return 0;
}
