/* test_val.c: values between JSON and SQLite (val.c) on an in-memory database: what
 * each JSON value is bound as (its SQLite type and value), and how each SQLite type
 * comes back as JSON, at the edges (2^53, blobs, non-finite reals). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jbuf.h"
#include "json.h"
#include "req.h"
#include "unit.h"
#include "util.h"
#include "val.h"

static sqlite3 *h;

/* Bind json to SELECT typeof(?1), quote(?1), and give "type value". */
static const char *bound(const char *json)
{
    static char out[256];
    cJSON *v = cJSON_Parse(json);
    sqlite3_stmt *st = NULL;

    snprintf(out, sizeof out, "(error)");
    if (v && sqlite3_prepare_v2(h, "SELECT typeof(?1), quote(?1)", -1, &st, NULL) == SQLITE_OK &&
        val_bind(st, 1, v) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof out, "%s %s", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    cJSON_Delete(v);
    return out;
}

/* The row of a SELECT as val_row_json writes it. */
static const char *row(const char *sql)
{
    static struct jbuf b;
    sqlite3_stmt *st = NULL;

    b.len = 0;
    b.oom = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return "(error)";
    }
    val_row_json(&b, st);
    sqlite3_finalize(st);
    return b.oom ? "(out of memory)" : b.s;
}

static void check_bind(void)
{
    unit_check_str(bound("\"x'y\""), "text 'x''y'", "val: a string binds as TEXT");
    unit_check_str(bound("42"), "integer 42", "val: a whole number binds as INTEGER");
    unit_check_str(bound("-" UTIL_STR(UTIL_EXACT_INT)), "integer -" UTIL_STR(UTIL_EXACT_INT),
                   "val: -2^53 is still an INTEGER");
    unit_check_str(bound("1.5"), "real 1.5", "val: a fraction binds as REAL");
    unit_check_str(bound("1e300"), "real 1.0e+300", "val: a whole number beyond 2^53 binds as REAL");
    unit_check_str(bound("true"), "integer 1", "val: true is 1");
    unit_check_str(bound("false"), "integer 0", "val: false is 0");
    unit_check_str(bound("null"), "null NULL", "val: null is NULL");
    unit_check_str(bound("{\"$base64\":\"AAH/\"}"), "blob X'0001FF'", "val: {\"$base64\"} is a BLOB");
    unit_check_str(bound("{\"$base64\":\"\"}"), "blob X''", "val: empty $base64 is an empty BLOB");
    unit_check_str(bound("{\"a\":[1,2]}"), "text '{\"a\":[1,2]}'",
                   "val: another object binds as its JSON text");
    unit_check_str(bound("[1,\"x\"]"), "text '[1,\"x\"]'", "val: an array binds as its JSON text");
}

static void check_row(void)
{
    unit_check_str(row("SELECT 1 AS i, 2.5 AS r, 'a\"b' AS t, NULL AS n"),
                   "{\"i\":1,\"r\":2.5,\"t\":\"a\\\"b\",\"n\":null}",
                   "val: a row is an object keyed by column name");
    unit_check_str(row("SELECT 9007199254740992 AS a, 9007199254740993 AS b, -9007199254740993 AS c"),
                   "{\"a\":9007199254740992,\"b\":\"9007199254740993\",\"c\":\"-9007199254740993\"}",
                   "val: integers beyond 2^53 come back as strings");
    unit_check_str(row("SELECT 0 AS z, -1 AS m, -9007199254740992 AS l, 9223372036854775807 AS x, "
                       "-9223372036854775807 - 1 AS n, 1234567890 AS d"),
                   "{\"z\":0,\"m\":-1,\"l\":-9007199254740992,\"x\":\"9223372036854775807\","
                   "\"n\":\"-9223372036854775808\",\"d\":1234567890}",
                   "val: zero, negatives, -2^53 and the 64-bit ends written exactly");
    unit_check_str(row("SELECT x'0001ff' AS b, x'' AS e"),
                   "{\"b\":{\"$base64\":\"AAH/\"},\"e\":{\"$base64\":\"\"}}",
                   "val: blobs come back as {\"$base64\"}");
    unit_check_str(row("SELECT 1e999 AS inf"), "{\"inf\":null}", "val: a non-finite real is null");
    unit_check_str(row("SELECT 'caf\xc3\xa9' AS \"we\"\"ird\""), "{\"we\\\"ird\":\"caf\xc3\xa9\"}",
                   "val: names are escaped, UTF-8 kept");
}

/* Parse {"v": LITERAL} the way requests are parsed (json_read), bind v, and give
 * "type value" (with " negative" for a negative zero), or the parser's error. */
static const char *bound_literal(const char *json)
{
    static char out[512];
    struct json_nums nums = {0};
    cJSON *root = NULL;
    sqlite3_stmt *st = NULL;

    snprintf(out, sizeof out, "(error)");
    if (json_read(&root, &nums, 262144, 32, json, strlen(json), out, sizeof out)) {
        cJSON_Delete(root);
        json_nums_free(&nums);
        return out;
    }
    if (sqlite3_prepare_v2(h, "SELECT typeof(?1), quote(?1), ?1", -1, &st, NULL) == SQLITE_OK &&
        val_bind(st, 1, root->child) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof out, "%s %s%s", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                 sqlite3_column_type(st, 2) == SQLITE_FLOAT && signbit(sqlite3_column_double(st, 2))
                     ? " negative" : "");
    sqlite3_finalize(st);
    cJSON_Delete(root);
    json_nums_free(&nums);
    return out;
}

/* Strict RFC 8259 numbers, and their type from the literal: a fraction or an exponent
 * makes a REAL whatever the value. */
static void check_literals(void)
{
    unit_check_str(bound_literal("{\"v\":3}"), "integer 3", "val: 3 binds as INTEGER");
    unit_check_str(bound_literal("{\"v\":3.0}"), "real 3.0", "val: 3.0 binds as REAL");
    unit_check_str(bound_literal("{\"v\":1E2}"), "real 100.0", "val: 1E2 binds as REAL");
    unit_check_str(bound_literal("{\"v\":-0.0}"), "real 0.0 negative", "val: -0.0 binds as REAL, sign kept");
    unit_check_str(bound_literal("{\"v\":[1.5e0]}"), "text '[1.5]'", "val: a REAL inside a JSON value");
    /* A JSON value is stored with every value as sent: cJSON's printer would make 1.0
     * an integer 1 and round 2^53-1 to 15 digits. */
    unit_check_str(bound_literal("{\"v\":{\"a\":1.0,\"b\":9007199254740991,\"c\":-9007199254740991,"
                                 "\"d\":0.30000000000000004,\"e\":[1E2,-0.0,true,null,\"x\\\"y\"]}}"),
                   "text '{\"a\":1.0,\"b\":9007199254740991,\"c\":-9007199254740991,"
                   "\"d\":0.30000000000000004,\"e\":[100.0,-0.0,true,null,\"x\\\"y\"]}'",
                   "val: a JSON value stored with its values exact (REALs, 2^53-1, 17 digits)");
    unit_check_str(bound_literal("{\"v\":012}"),
                   "invalid JSON: number \"012\" at byte 5: leading zeros are not allowed", "val: 012 refused");
    unit_check_str(bound_literal("{\"v\":1.}"),
                   "invalid JSON: number \"1.\" at byte 5: a digit must follow \".\"", "val: 1. refused");
    unit_check_str(bound_literal("{\"v\":1e}"),
                   "invalid JSON: number \"1e\" at byte 5: the exponent needs digits", "val: 1e refused");
    unit_check_str(bound_literal("{\"v\":1e999}"),
                   "number 1e999 at byte 5 is out of range: beyond the largest double (about 1.8e308)",
                   "val: 1e999 refused, not stored as +Inf");
    unit_check_str(bound_literal("{\"v\":{\"a\":1,\"a\":2}}"), "duplicate key \"a\" in an object",
                   "val: a duplicate key inside a value refused");
}

void test_val(void)
{
    if (sqlite3_open(":memory:", &h) != SQLITE_OK) {
        unit_check(0, "val: in-memory database");
        return;
    }
    check_bind();
    check_row();
    check_literals();
    sqlite3_close(h);
}
