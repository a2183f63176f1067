/* test_sql.c: the SQL text each kind of operation becomes (sql_build), and the
 * statement cache (one statement per shape), on an in-memory SQLite database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"
#include "schema.h"
#include "sql.h"
#include "unit.h"

static const char schema_sql[] =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, \"we\"\"ird\" TEXT, n INTEGER);"
    "CREATE TABLE pair (p INTEGER NOT NULL, q INTEGER NOT NULL, v TEXT, PRIMARY KEY (q, p))"
    " WITHOUT ROWID;"
    "CREATE TABLE nokey (x TEXT, y TEXT, UNIQUE (x));";

static sqlite3 *h;
static struct schema sch;
static struct req r;

static int setup(void)
{
    static const struct cfg_list all = {NULL, 0};
    char err[256];

    if (sqlite3_open(":memory:", &h) != SQLITE_OK ||
        sqlite3_exec(h, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        schema_load(h, &all, &sch, err, sizeof err)) {
        unit_note("sql: setup: %s", sqlite3_errmsg(h));
        return -1;
    }
    return 0;
}

/* The SQL of the first op of a request on PREFIX/write (tables named in it). */
static const char *sql_of(const char *payload)
{
    static struct jbuf b;
    static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};
    char err[512];

    req_clear(&r);
    if (req_parse(&r, &sch, &lim, NULL, payload, strlen(payload), err, sizeof err)) {
        unit_note("sql: %s rejected: %s", payload, err);
        return "(rejected)";
    }
    sql_build(&b, &r.ops[0]);
    if (b.oom)
        return "(out of memory)";
    return b.s;
}

/* sql_plain_insert of the request's first op, or -1 when it is rejected. */
static int plain_of(const char *payload)
{
    static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};
    char err[512];

    req_clear(&r);
    if (req_parse(&r, &sch, &lim, NULL, payload, strlen(payload), err, sizeof err))
        return -1;
    return sql_plain_insert(&r.ops[0]);
}

static void check_build(void)
{
    struct jbuf rb = {0};

    unit_check_str(sql_of("{\"table\":\"t\",\"values\":{\"a\":\"x\",\"n\":1}}"),
                   "INSERT INTO \"t\" (\"a\",\"n\") VALUES (?1,?2) RETURNING \"id\"",
                   "sql: insert names the columns given, parameters in order");
    unit_check_str(sql_of("{\"table\":\"t\",\"values\":{}}"),
                   "INSERT INTO \"t\" DEFAULT VALUES RETURNING \"id\"",
                   "sql: insert of {} is DEFAULT VALUES");
    unit_check_str(sql_of("{\"table\":\"T\",\"values\":{\"WE\\\"IRD\":\"x\"}}"),
                   "INSERT INTO \"t\" (\"we\"\"ird\") VALUES (?1) RETURNING \"id\"",
                   "sql: identifiers are the schema's, quoted, whatever case the request used");
    unit_check_str(sql_of("{\"op\":\"upsert\",\"table\":\"t\",\"values\":{\"id\":1,\"a\":\"x\"}}"),
                   "INSERT INTO \"t\" (\"id\",\"a\") VALUES (?1,?2) ON CONFLICT (\"id\") "
                   "DO UPDATE SET \"a\"=excluded.\"a\" RETURNING \"id\"",
                   "sql: upsert sets every value outside the primary key");
    unit_check_str(sql_of("{\"op\":\"upsert\",\"table\":\"pair\",\"values\":{\"p\":1,\"q\":2}}"),
                   "INSERT INTO \"pair\" (\"p\",\"q\") VALUES (?1,?2) ON CONFLICT (\"q\",\"p\") "
                   "DO UPDATE SET \"q\"=excluded.\"q\" RETURNING \"q\",\"p\"",
                   "sql: upsert of key columns only: key in declared order, a no-op set");
    unit_check_str(sql_of("{\"op\":\"upsert\",\"table\":\"nokey\",\"on_conflict\":[\"x\"],"
                          "\"values\":{\"x\":\"k\",\"y\":\"v\"}}"),
                   "INSERT INTO \"nokey\" (\"x\",\"y\") VALUES (?1,?2) ON CONFLICT (\"x\") "
                   "DO UPDATE SET \"y\"=excluded.\"y\" RETURNING rowid",
                   "sql: upsert with on_conflict");
    unit_check_str(sql_of("{\"op\":\"update\",\"table\":\"t\",\"set\":{\"a\":\"x\",\"n\":2},"
                          "\"where\":{\"id\":1,\"a\":null}}"),
                   "UPDATE \"t\" SET \"a\"=?1,\"n\"=?2 WHERE \"id\" IS ?3 AND \"a\" IS ?4 RETURNING \"id\"",
                   "sql: update binds set then where, matching with IS");
    unit_check_str(sql_of("{\"op\":\"delete\",\"table\":\"pair\",\"where\":{\"q\":2,\"p\":1}}"),
                   "DELETE FROM \"pair\" WHERE \"q\" IS ?1 AND \"p\" IS ?2 RETURNING *",
                   "sql: delete returns the whole rows, as they were");
    sql_build_read(&rb, schema_table(&sch, "t"));
    unit_check_str(rb.s, "SELECT * FROM \"t\" WHERE \"id\" = ?1", "sql: a row read back by its rowid alias");
    sql_build_read(&rb, schema_table(&sch, "pair"));
    unit_check_str(rb.s, "SELECT * FROM \"pair\" WHERE \"q\" = ?1 AND \"p\" = ?2",
                   "sql: a WITHOUT ROWID row read back by its primary key, in key order");
    sql_build_read(&rb, schema_table(&sch, "nokey"));
    unit_check_str(rb.s, "SELECT * FROM \"nokey\" WHERE rowid = ?1", "sql: a row read back by its rowid");
    jb_free(&rb);
    /* The cache prepares these without RETURNING: the row is the last inserted rowid. */
    unit_check(plain_of("{\"table\":\"t\",\"values\":{\"a\":\"x\"}}") == 1 &&
               plain_of("{\"table\":\"nokey\",\"values\":{\"x\":\"k\"}}") == 1,
               "sql: an insert into a rowid table is plain");
    unit_check(plain_of("{\"table\":\"pair\",\"values\":{\"p\":1,\"q\":2}}") == 0 &&
               plain_of("{\"op\":\"upsert\",\"table\":\"t\",\"values\":{\"id\":1}}") == 0 &&
               plain_of("{\"op\":\"update\",\"table\":\"t\",\"set\":{\"a\":\"x\"},\"where\":{\"id\":1}}") == 0,
               "sql: WITHOUT ROWID inserts, upserts and updates keep RETURNING");
}

static void check_cache(void)
{
    static const struct req_limits lim = {262144, 32, 1000, "mosqlite"};
    static const char *const reqs[] = {
        "{\"table\":\"t\",\"values\":{\"a\":\"x\",\"n\":1}}",
        "{\"table\":\"t\",\"values\":{\"a\":\"y\",\"n\":2}}",        /* same shape */
        "{\"table\":\"t\",\"values\":{\"n\":2,\"a\":\"y\"}}",        /* other order */
        "{\"op\":\"upsert\",\"table\":\"nokey\",\"on_conflict\":[\"y\"],\"values\":{\"x\":1}}",
    };
    struct sql_cache *c = sql_cache_new(h);
    sqlite3_stmt *st[4] = {0};
    char err[256];
    int i, rc[4];

    for (i = 0; i < 4; i++) {
        req_clear(&r);
        if (req_parse(&r, &sch, &lim, NULL, reqs[i], strlen(reqs[i]), err, sizeof err))
            unit_note("sql cache: %s", err);
        st[i] = sql_cache_get(c, &r.ops[0], &rc[i]);
        if (st[i])
            sql_cache_done(c, st[i]);
    }
    unit_check(st[0] && st[0] == st[1], "sql cache: the same shape reuses its statement");
    unit_check(st[2] && st[2] != st[0], "sql cache: columns in another order are another shape");
    unit_check(!st[3] && rc[3] == SQLITE_ERROR,
               "sql cache: an on_conflict that matches no index fails to prepare (rc %d)", rc[3]);
    unit_check(sql_cache_count(c) == 2, "sql cache: holds one statement per shape (%d)",
               sql_cache_count(c));
    unit_check_str(sqlite3_errmsg(h), "ON CONFLICT clause does not match any PRIMARY KEY or "
                   "UNIQUE constraint", "sql cache: SQLite's message is left for the rejection");
    sql_cache_free(c);
    sql_cache_free(NULL);
}

void test_sql(void)
{
    if (setup())
        unit_check(0, "sql: in-memory schema");
    else {
        check_build();
        check_cache();
    }
    req_free(&r);
    schema_free(&sch);
    sqlite3_close(h);
}
