/* test_corpus.c: tests/hostile/corpus.txt without a broker. Every case, in order, goes
 * the writer's way from topic to database: req_topic, req_parse, then db_apply in its
 * own transaction on a real SQLite file migrated with conf/schema and tests/schema.
 * A good case must be applied; a bad one rejected with exactly its expected text
 * (an extended regex when the expectation starts with `~`), whichever step rejects
 * it; the count of cases that req_parse alone rejects is printed as a note. The
 * broker-side half (publishing byte for byte, PREFIX/rejected, mosqlite_rejected, the
 * writer's memory) is tests/t_hostile.sh. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
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
    static const struct cfg_list all = {NULL, 0};
    char err[1024];
    char *path = unit_path("corpus.db");
    struct db_opts o = {0};
    struct db *db = NULL;
    sqlite3 *h = NULL;

    if (sqlite3_open(path, &h) == SQLITE_OK && !schema_migrate(h, "conf/schema", err, sizeof err) &&
        !schema_migrate(h, "tests/schema", err, sizeof err)) {
        o.path = path;
        o.schema_dir = "tests/schema";
        o.tables = &all;
        o.synchronous = "OFF";
        o.busy_timeout_ms = 100;
        o.id_ttl_days = 7;
        o.rejected_keep = 10000;
        o.max_event_rows = 100;
        sqlite3_close(h);
        h = NULL;
        db = db_open(&o, err, sizeof err);
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

/* One case: its outcome, or -1 for a database fault; the rejection text in err. */
static int run_case(struct db *db, struct req *r, const char *topic, const char *payload,
                    size_t len, char *err, size_t errlen, int *by_parse)
{
    static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};
    const char *table;
    long long changes, rowid;
    int rc;

    *by_parse = 0;
    if (req_topic(topic, "mosqlite/write", &table, err, errlen))
        return DB_REJECT;
    if (req_parse(r, db_schema(db), &lim, table, payload, len, err, errlen)) {
        req_clear(r);
        *by_parse = 1;
        return DB_REJECT;
    }
    if (db_begin(db, err, errlen) != DB_OK)
        return -1;
    rc = db_apply(db, r, &changes, &rowid, err, errlen);
    req_clear(r);
    if (rc == DB_FAULT)
        db_rollback(db);
    else if (rc != DB_LOST && db_commit(db, err, errlen) != DB_OK)
        return -1;
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
    FILE *f = fopen(CORPUS, "r");
    int lineno = 0;

    unit_check(db && f, "corpus: %s and a migrated database", CORPUS);
    while (db && f && fgets(line, sizeof line, f)) {
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
        rc = run_case(db, &r, full, payload, len, err, sizeof err, &by_parse);
        t.by_parse += by_parse;
        check_case(&t, lineno, kind, expect, rc, err);
    }
    unit_note("corpus: %d good, %d bad; req_parse alone rejects %d, the rest reach SQLite or "
              "the topic check", t.good, t.bad, t.by_parse);
    unit_check(t.bad >= 200, "corpus: at least 200 hostile cases (%d)", t.bad);
    unit_check(t.applied == t.good, "corpus: every good case applied (%d of %d)", t.applied, t.good);
    unit_check(t.rejected_as_expected == t.bad,
               "corpus: every hostile case rejected with its expected text (%d of %d)",
               t.rejected_as_expected, t.bad);
    req_free(&r);
    db_close(db);
    if (f)
        fclose(f);
}
