/* test_corpus.c: tests/hostile/corpus.txt without a broker. Every case, in order, goes
 * the writer's way from topic to database: req_topic, req_parse, then db_apply in its
 * own transaction on a real SQLite file migrated with conf/schema and tests/schema; a
 * job message (PREFIX/jobs/...) through jobq_apply on the writer's job queue in that
 * file, as the batch applies it (a rejected one cut back to its mark, and then the job
 * tables must hold what they held before it).
 * A good case must be applied; a bad one rejected with exactly its expected text
 * (an extended regex when the expectation starts with `~`), whichever step rejects
 * it; the count of cases that req_parse alone rejects is printed as a note. The
 * broker-side half (publishing byte for byte, PREFIX/rejected, mosqlite_rejected, the
 * writer's memory) is tests/t_hostile.sh. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "db.h"
#include "jobq.h"
#include "jobq_int.h"
#include "req.h"
#include "unit.h"

#define CORPUS "tests/hostile/corpus.txt"

/* printf %b as gen.py writes the payload: \\ for a backslash, \xHH for a byte. */
static size_t decode(const char *in, char *out)
{
    size_t n = 0;

    while (*in) {
        if (in[0] == '\\' && in[1] == '\\') {
            out[n++] = '\\';
            in += 2;
        } else if (in[0] == '\\' && in[1] == 'x' && in[2] && in[3]) {
            char hex[3] = {in[2], in[3], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            in += 4;
        } else {
            out[n++] = *in++;
        }
    }
    return n;
}

static int matches(const char *got, const char *want)
{
    regex_t re;
    int ok;

    if (want[0] != '~')
        return !strcmp(got, want);
    if (regcomp(&re, want + 1, REG_EXTENDED | REG_NOSUB))
        return 0;
    ok = !regexec(&re, got, 0, NULL, 0);
    regfree(&re);
    return ok;
}

/* A database as the hostile test's writer has it: both schema directories applied. */
static struct db *corpus_db(void)
{
    char err[1024];
    char *path = unit_path("corpus.db");
    struct db_opts o;
    struct db *db = NULL;
    sqlite3 *h = NULL;

    if (sqlite3_open(path, &h) == SQLITE_OK && !schema_migrate(h, "conf/schema", err, sizeof err) &&
        !schema_migrate(h, "tests/schema", err, sizeof err)) {
        testdb_opts(&o, path, "tests/schema");
        sqlite3_close(h);
        h = NULL;
        if ((db = db_open(&o, err, sizeof err)) && jobq_create_tables(db, err, sizeof err) != DB_OK) {
            db_close(db);
            db = NULL;
        }
    }
    if (!db)
        unit_note("corpus database: %s", h ? sqlite3_errmsg(h) : err);
    sqlite3_close(h);
    free(path);
    return db;
}

struct tally {
    int good, bad, applied, rejected_as_expected, by_parse, mism;
};

static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};

/* The job tables' rows, as one number that changes with any of them. */
static long long job_tables(struct db *db)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    db_trust(db, 1);
    if (sqlite3_prepare_v2(db_handle(db), "SELECT ifnull((SELECT group_concat(id || state || attempt || ifnull(progress, '-') || "
                           "ifnull(result, '-'), ',') FROM mosqlite_jobs), '') || '/' || "
                           "(SELECT count(*) FROM mosqlite_job_attempts) || '/' || ifnull((SELECT "
                           "group_concat(queue || n_ready || n_running || n_done, ',') FROM mosqlite_job_queues), '')",
                           -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        unsigned long long h = 1469598103934665603ULL;     /* FNV-1a, unsigned: it wraps */
        for (; t && *t; t++)
            h = (h ^ *t) * 1099511628211ULL;
        v = (long long)(h >> 1);
    }
    sqlite3_finalize(st);
    db_trust(db, 0);
    return v;
}

/* A job message as the batch applies it (batch.c, process_job), in its own transaction. */
static int run_job(struct db *db, struct jobq *q, const char *topic, char *payload, size_t len, char *err,
                   size_t errlen)
{
    struct outcome o;
    struct jobq_mark mk;
    struct msg m;
    long long before = job_tables(db);
    int rc;

    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    o.rowid = -1;
    m.topic = (char *)topic;
    m.payload = payload;
    m.len = len;
    err[0] = 0;
    if (db_begin(db, err, errlen) != DB_OK || jobq_begin(q, err, errlen) != DB_OK)
        return -1;
    jobq_mark(q, &mk);
    rc = jobq_apply(q, &m, &o, err, errlen);
    if (rc == DB_REJECT)
        jobq_cut(q, &mk);
    if (rc == DB_FAULT || rc == DB_LOST) {
        db_rollback(db);
        jobq_rolled_back(q);
    } else if (jobq_match(q, err, errlen) != DB_OK || db_commit(db, err, errlen) != DB_OK) {
        rc = -1;
    } else {
        jobq_rolled_back(q);       /* no broker: its pushes are not published */
    }
    free(o.id);
    free(o.reply_to);
    free(o.error);
    free(o.cancel);
    free(o.after);
    free(o.extra);
    if (rc == DB_REJECT && job_tables(db) != before)
        unit_check(0, "corpus: the rejected job message on %s left the job tables changed: %s", topic, err);
    return rc == DB_FAULT ? -1 : rc == DB_LOST ? DB_REJECT : rc;
}

/* One case: its outcome, or -1 for a database fault; the rejection text in err. */
static int run_case(struct db *db, struct jobq *q, struct req *r, const char *topic, char *payload,
                    size_t len, char *err, size_t errlen, int *by_parse)
{
    const char *table;
    long long changes, rowid;
    int rc;

    *by_parse = 0;
    if (!strncmp(topic, "mosqlite/jobs/", 14))
        return run_job(db, q, topic, payload, len, err, errlen);
    if (req_topic(topic, "mosqlite/write", &table, err, errlen))
        return DB_REJECT;
    if (req_parse(r, db_schema(db), &lim, table, payload, len, err, errlen)) {
        req_clear(r);
        *by_parse = 1;
        return DB_REJECT;
    }
    if (db_begin(db, err, errlen) != DB_OK || jobq_begin(q, err, errlen) != DB_OK)
        return -1;
    rc = db_apply(db, r, &changes, &rowid, err, errlen);
    req_clear(r);
    if (rc == DB_FAULT)
        db_rollback(db);
    else if (rc != DB_LOST && db_commit(db, err, errlen) != DB_OK)
        return -1;
    jobq_rolled_back(q);
    return rc == DB_FAULT ? -1 : rc == DB_LOST ? DB_REJECT : rc;
}

static void check_case(struct tally *t, int lineno, const char *kind, const char *expect, int rc,
                       const char *err)
{
    int ok;

    if (!strcmp(kind, "good")) {
        t->good++;
        ok = rc == DB_OK;
        t->applied += ok;
    } else {
        t->bad++;
        ok = rc == DB_REJECT && matches(err, expect);
        t->rejected_as_expected += ok;
    }
    if (!ok && ++t->mism <= 10)
        unit_note("corpus line %d (%s): rc %d, got [%s], want [%s]", lineno, kind, rc,
                  rc == DB_OK ? "applied" : err, expect);
}

void test_corpus(void)
{
    static char line[1 << 20], payload[1 << 20];
    char err[1024];
    struct tally t = {0};
    struct req r = {0};
    struct db *db = corpus_db();
    struct jobq_opts jo;
    struct jobq *q = NULL;
    FILE *f = fopen(CORPUS, "r");
    int lineno = 0, njob = 0;

    memset(&jo, 0, sizeof jo);
    jo.lease_ms = jo.max_lost = jo.max_attempts = jo.backoff_ms = jo.backoff_cap_ms = -1;
    if (db && !(q = jobq_new(db, NULL, "mosqlite", &lim, &jo, err, sizeof err)))
        unit_note("corpus: the job queue: %s", err);
    unit_check(db && q && f, "corpus: %s and a migrated database with its job queue", CORPUS);
    while (db && q && f && fgets(line, sizeof line, f)) {
        char *kind = strtok(line, "\t"), *topic = strtok(NULL, "\t");
        char *expect = strtok(NULL, "\t"), *raw = strtok(NULL, "\n");
        char full[256];
        int by_parse, rc;
        size_t len;

        lineno++;
        if (!kind || !topic || !expect || !strcmp(kind, "todo"))
            continue;
        len = decode(raw ? raw : "", payload);
        snprintf(full, sizeof full, "mosqlite/%s", topic);
        payload[len] = 0;        /* NUL-terminated past len, as the broker's messages are */
        njob += !strncmp(topic, "jobs/", 5);
        rc = run_case(db, q, &r, full, payload, len, err, sizeof err, &by_parse);
        t.by_parse += by_parse;
        check_case(&t, lineno, kind, expect, rc, err);
    }
    unit_note("corpus: %d good, %d bad, %d cases on a job topic; req_parse alone rejects %d, the rest reach "
              "SQLite, the topic check or the job queue", t.good, t.bad, njob, t.by_parse);
    unit_check(njob >= 60, "corpus: at least 60 job messages (%d)", njob);
    unit_check(t.bad >= 200, "corpus: at least 200 hostile cases (%d)", t.bad);
    unit_check(t.applied == t.good, "corpus: every good case applied (%d of %d)", t.applied, t.good);
    unit_check(t.rejected_as_expected == t.bad,
               "corpus: every hostile case rejected with its expected text (%d of %d)",
               t.rejected_as_expected, t.bad);
    req_free(&r);
    jobq_free(q);
    db_close(db);
    if (f)
        fclose(f);
}
