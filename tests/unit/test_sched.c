/* test_sched.c: scheduled writes and cancels (sched.c) with the writer's bookkeeping
 * (db.c), no broker: each request in a transaction of its own on a real SQLite file,
 * as batch.c applies it. Ids are one namespace, a cancel's own id included; and when
 * what the writer keeps for a request (mosqlite_applied, mosqlite_scheduled,
 * mosqlite_rejected) refuses a row because of that request, the request alone is
 * rejected, with its writes undone, and nothing is a database fault. The envelope of a
 * scheduled request with a key given twice; times before 1970. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testdb.h"
#include "db.h"
#include "req.h"
#include "sched.h"
#include "unit.h"
#include "util.h"

#define WRITE "mosqlite/write"

static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};
static struct db *db;
static struct sched *sc;
static struct req r;
static char *path;

static int put_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (!(f = fopen(p, "w")))
        return -1;
    fputs(text, f);
    return fclose(f);
}

static struct db *open_db(const char *dir)
{
    struct db_opts o;
    char err[1024];
    struct db *d;

    testdb_opts(&o, path, dir);
    if (!(d = db_open(&o, err, sizeof err)))
        unit_note("sched database: %s", err);
    return d;
}

/* One request the way batch.c applies it, in a transaction of its own: a cancel, a
 * scheduled request (delay_ms), or one for now. The outcome; its text in err. */
static int run(const char *topic, const char *payload, char *err, size_t errlen)
{
    struct msg m = {0};
    long long changes, rowid;
    char berr[512];
    int rc, held;

    *err = '\0';
    m.topic = (char *)topic;
    m.payload = (char *)payload;
    m.len = strlen(payload);
    if (db_begin(db, berr, sizeof berr) != DB_OK)
        return DB_FAULT;
    if (req_read(&r, db_schema(db), &lim, WRITE, topic, payload, m.len, err, errlen))
        rc = DB_REJECT;
    else if (r.cancel)
        rc = sched_cancel(sc, &r, topic, WRITE, err, errlen);
    else if (r.delay_ms >= 0)
        rc = sched_add(sc, &r, &m, util_wall_ms() + r.delay_ms, err, errlen);
    else if (r.id && (held = sched_holds(sc, r.id, err, errlen)))
        rc = held < 0 ? DB_FAULT : DB_REJECT;
    else
        rc = db_apply(db, &r, &changes, &rowid, err, errlen);
    if (rc == DB_REJECT &&
        db_record_rejection(db, topic, r.id, err, payload, m.len, berr, sizeof berr) != DB_OK) {
        snprintf(err, errlen, "%s", berr);
        rc = DB_FAULT;
    }
    req_clear(&r);
    if (rc == DB_FAULT || rc == DB_LOST) {
        db_rollback(db);
        sched_rolled_back(sc);
    } else if (db_commit(db, berr, sizeof berr) != DB_OK) {
        snprintf(err, errlen, "%s", berr);
        return DB_FAULT;
    }
    return rc;
}

/* A count from the file, through a connection of its own. */
static long long count(const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long n = -1;

    if (sqlite3_open(path, &h) == SQLITE_OK && sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return n;
}

static int exec_other(const char *sql)
{
    sqlite3 *h;
    int rc = sqlite3_open(path, &h);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    return rc;
}

#define LATER "\"delay_ms\":600000,\"values\":{\"k\":\"later\"}"

static void check_cancel_ids(void)
{
    char err[512];
    int rc;

    rc = run(WRITE "/kv", "{\"id\":\"X\"," LATER "}", err, sizeof err);
    unit_check(rc == DB_OK, "sched: X scheduled (%d %s)", rc, err);
    /* A cancel whose own id is the id of the request it cancels. */
    rc = run(WRITE, "{\"id\":\"X\",\"cancel\":\"X\",\"reply_to\":\"r/b\"}", err, sizeof err);
    unit_check(rc == DB_REJECT, "sched: a cancel with its target's id is rejected, not a database "
               "fault (rc %d)", rc);
    unit_check_str(err, "id \"X\" is already used by a scheduled request",
                   "sched: ... with the words of any other reuse of an id");
    unit_check(count("SELECT count(*) FROM mosqlite_scheduled WHERE id = 'X'") == 1 &&
               count("SELECT count(*) FROM mosqlite_applied WHERE id = 'X'") == 0,
               "sched: X is still scheduled, and its id not kept as applied");
    rc = run(WRITE "/kv", "{\"id\":\"now1\",\"values\":{\"k\":\"now1\"}}", err, sizeof err);
    unit_check(rc == DB_OK, "sched: the next request is applied (%d %s)", rc, err);
    rc = run(WRITE, "{\"id\":\"C1\",\"cancel\":\"X\"}", err, sizeof err);
    unit_check(rc == DB_OK, "sched: X is cancelled by a cancel of its own id (%d %s)", rc, err);

    /* A cancel whose own id is the id of another waiting request. */
    run(WRITE "/kv", "{\"id\":\"Y\"," LATER "}", err, sizeof err);
    run(WRITE "/kv", "{\"id\":\"X2\"," LATER "}", err, sizeof err);
    rc = run(WRITE, "{\"id\":\"Y\",\"cancel\":\"X2\"}", err, sizeof err);
    unit_check(rc == DB_REJECT, "sched: a cancel with another waiting request's id is rejected "
               "(rc %d)", rc);
    unit_check_str(err, "id \"Y\" is already used by a scheduled request",
                   "sched: ... with the words of any other reuse of an id");
    unit_check(count("SELECT count(*) FROM mosqlite_scheduled WHERE id IN ('Y', 'X2')") == 2 &&
               count("SELECT count(*) FROM mosqlite_applied WHERE id IN ('Y', 'X2')") == 0,
               "sched: both still scheduled, neither id kept as applied");
    rc = run(WRITE, "{\"id\":\"C2\",\"cancel\":\"X2\"}", err, sizeof err);
    unit_check(rc == DB_OK, "sched: X2 then cancelled (%d %s)", rc, err);
    rc = run(WRITE, "{\"id\":\"C3\",\"cancel\":\"Y\"}", err, sizeof err);
    unit_check(rc == DB_OK, "sched: Y then cancelled (%d %s)", rc, err);
}

/* What the writer keeps refuses a row because of the request: that request rejected,
 * its writes undone; the batch goes on. */
static void check_bookkeeping(void)
{
    char err[512];
    int rc;

    /* An id both scheduled and kept as applied (a cancel of older versions could leave
     * that): cancelling it cannot keep its id again. */
    run(WRITE "/kv", "{\"id\":\"Z\"," LATER "}", err, sizeof err);
    exec_other("INSERT INTO mosqlite_applied (id, at, hash) VALUES ('Z', 0, 1)");
    rc = run(WRITE, "{\"id\":\"C4\",\"cancel\":\"Z\"}", err, sizeof err);
    unit_check(rc == DB_REJECT, "bookkeeping: a cancel whose target's id is kept already is "
               "rejected, not a database fault (rc %d)", rc);
    unit_check_str(err, "request \"Z\" could not be cancelled: UNIQUE constraint failed: "
                   "mosqlite_applied.id", "bookkeeping: ... saying why");
    unit_check(count("SELECT count(*) FROM mosqlite_scheduled WHERE id = 'Z'") == 1 &&
               count("SELECT count(*) FROM mosqlite_applied WHERE id = 'C4'") == 0,
               "bookkeeping: its writes undone (Z still scheduled, C4 not kept)");
    rc = run(WRITE "/kv", "{\"id\":\"now2\",\"values\":{\"k\":\"now2\"}}", err, sizeof err);
    unit_check(rc == DB_OK, "bookkeeping: the next request is applied (%d %s)", rc, err);

    /* A trigger of the request's table keeps the id itself. */
    rc = run(WRITE "/sneaky", "{\"id\":\"S1\",\"values\":{\"k\":\"S1\"}}", err, sizeof err);
    unit_check(rc == DB_REJECT, "bookkeeping: a request whose id its own trigger kept is rejected, "
               "not a database fault (rc %d)", rc);
    unit_check_str(err, "id \"S1\" could not be kept as used: UNIQUE constraint failed: "
                   "mosqlite_applied.id", "bookkeeping: ... saying why");
    unit_check(count("SELECT count(*) FROM sneaky") == 0 &&
               count("SELECT count(*) FROM mosqlite_applied WHERE id = 'S1'") == 0,
               "bookkeeping: its writes undone, the trigger's included");

    /* mosqlite_scheduled refuses the row (a trigger on it: RAISE(ABORT), RAISE(ROLLBACK)). */
    rc = run(WRITE "/kv", "{\"id\":\"boom\"," LATER "}", err, sizeof err);
    unit_check(rc == DB_REJECT, "bookkeeping: a request mosqlite_scheduled refuses is rejected, not a "
               "database fault (rc %d)", rc);
    unit_check_str(err, "the request could not be scheduled: not this one",
                   "bookkeeping: ... saying why");
    rc = run(WRITE "/kv", "{\"id\":\"bang\"," LATER "}", err, sizeof err);
    unit_check(rc == DB_LOST, "bookkeeping: one that rolls the whole transaction back is rejected and "
               "the batch replayed without it (rc %d)", rc);
    unit_check_str(err, "the request could not be scheduled: nor this one",
                   "bookkeeping: ... saying why");
    unit_check(count("SELECT count(*) FROM mosqlite_scheduled WHERE id IN ('boom', 'bang')") == 0,
               "bookkeeping: neither scheduled");
    rc = run(WRITE "/kv", "{\"id\":\"fine\"," LATER "}", err, sizeof err);
    unit_check(rc == DB_OK, "bookkeeping: the next scheduled request is stored (%d %s)", rc, err);

    /* mosqlite_rejected refuses the record of a rejection: it stays a rejection. */
    rc = run(WRITE "/kv", "{\"id\":\"norecord\",\"values\":{\"nope\":1}}", err, sizeof err);
    unit_check(rc == DB_REJECT, "bookkeeping: a rejection mosqlite_rejected refuses is still a "
               "rejection, not a database fault (rc %d: %s)", rc, err);
}

/* A scheduled request with a key given twice is answered on its reply_to. */
static void check_envelope(void)
{
    static const char *cases[][2] = {
        {"{\"id\":\"d1\",\"reply_to\":\"r/d1\",\"at\":\"2020-01-01T00:00:00Z\","
         "\"at\":\"2021-01-01T00:00:00Z\",\"values\":{\"k\":\"a\"}}", "at"},
        {"{\"id\":\"d2\",\"reply_to\":\"r/d2\",\"delay_ms\":1,\"delay_ms\":2,\"values\":{\"k\":\"a\"}}",
         "delay_ms"},
        {"{\"reply_to\":\"r/d3\",\"id\":\"d3\",\"cancel\":\"x\",\"cancel\":\"y\"}", "cancel"},
    };
    static const char twice[] = "{\"id\":\"a\",\"id\":\"b\",\"reply_to\":\"r/x\",\"values\":{\"k\":\"a\"}}";
    char err[512], want[128];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = req_read(&r, db_schema(db), &lim, WRITE, WRITE "/kv", cases[i][0],
                          strlen(cases[i][0]), err, sizeof err);
        snprintf(want, sizeof want, "duplicate key \"%s\" in the request", cases[i][1]);
        unit_check(rc && !strcmp(err, want) && r.id && r.reply_to && !strncmp(r.reply_to, "r/d", 3),
                   "envelope: \"%s\" twice: rejected (%s), answered to its id and reply_to (%s, %s)",
                   cases[i][1], err, r.id ? r.id : "no id", r.reply_to ? r.reply_to : "no reply_to");
        req_clear(&r);
    }
    /* id or reply_to itself twice: which one is meant is a guess; neither is used. */
    req_read(&r, db_schema(db), &lim, WRITE, WRITE "/kv", twice, strlen(twice), err, sizeof err);
    unit_check(!strcmp(err, "duplicate key \"id\" in the request") && !r.id && !r.reply_to,
               "envelope: id twice: rejected (%s), no receipt", err);
    req_clear(&r);
}

/* Times before 1970 are times like any other. */
static void check_times(void)
{
    char out[UTIL_TIME_LEN];
    long long ms = 0;
    int rc = util_time_parse("1969-07-20T20:17:40Z", &ms);

    unit_check(!rc && ms == -14182940000LL, "time: 1969 parsed as before the epoch (%lld)", ms);
    util_time_format(ms, out);
    unit_check_str(out, "1969-07-20T20:17:40.000Z", "time: written back as it was");
    util_time_format(-1, out);
    unit_check_str(out, "1969-12-31T23:59:59.999Z", "time: a millisecond before the epoch");
    util_time_parse("0001-01-01T00:00:00Z", &ms);
    util_time_format(ms, out);
    unit_check_str(out, "0001-01-01T00:00:00.000Z", "time: the year in four digits");
}

void test_sched(void)
{
    char *dir = unit_path("sched-schema"), err[512];

    path = unit_path("sched.db");
    mkdir(dir, 0755);
    /* sneaky's trigger keeps the row's key as a used id, behind the writer's back. */
    put_file(dir, "001_kv.sql",
             "CREATE TABLE kv (k TEXT PRIMARY KEY, v);\n"
             "CREATE TABLE sneaky (k TEXT PRIMARY KEY);\n"
             "CREATE TRIGGER sneaky_ai AFTER INSERT ON sneaky BEGIN\n"
             "    INSERT INTO mosqlite_applied (id, at) VALUES (NEW.k, 0);\n"
             "END;\n");
    /* The internal tables exist from the first start on: a later migration may add
     * triggers to them. */
    db_close(open_db(dir));
    put_file(dir, "002_refuse.sql",
             "CREATE TRIGGER sched_refuse BEFORE INSERT ON mosqlite_scheduled BEGIN\n"
             "    SELECT CASE NEW.id WHEN 'boom' THEN RAISE(ABORT, 'not this one')\n"
             "                       WHEN 'bang' THEN RAISE(ROLLBACK, 'nor this one') END;\n"
             "END;\n"
             "CREATE TRIGGER rej_refuse BEFORE INSERT ON mosqlite_rejected\n"
             "WHEN NEW.req_id = 'norecord' BEGIN SELECT RAISE(ABORT, 'no record'); END;\n");
    db = open_db(dir);
    sc = db ? sched_new(db, NULL, 100, 1000, err, sizeof err) : NULL;
    unit_check(db && sc, "sched: a database with scheduled writes%s%s", sc ? "" : ": ", sc ? "" : err);
    if (sc) {
        check_cancel_ids();
        check_bookkeeping();
        check_envelope();
    }
    check_times();
    req_free(&r);
    sched_free(sc);
    db_close(db);
    free(dir);
    free(path);
}
