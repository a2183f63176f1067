/* test_query.c: the `query` config lines checked before the database is opened
 * (query_check, query.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "query.h"
#include "unit.h"

static struct cfg_list defs;
static const struct cfg_opt opts[] = {
    {"query", 0, CFG_LIST, &defs, 0, 0, CFG_FILE_ONLY, "NAME SQL", "a named read query"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

/* The text of the config file's check: "ok" or the error with the file's path cut. */
static const char *check(const char *text)
{
    static char err[512], out[512];
    char *path = unit_path("query.conf");
    FILE *f = path ? fopen(path, "w") : NULL;
    size_t n = path ? strlen(path) : 0;

    cfg_free(opts);
    memset(&defs, 0, sizeof defs);
    if (!f) {
        free(path);
        return "cannot write the file";
    }
    fputs(text, f);
    fclose(f);
    if (cfg_load_file(opts, path, err, sizeof err) || query_check(&defs, err, sizeof err))
        snprintf(out, sizeof out, "%s", strncmp(err, path, n) ? err : err + n);
    else
        snprintf(out, sizeof out, "ok");
    free(path);
    return out;
}

void test_query(void)
{
    const char *not = ":1: query b: must be one SELECT (or WITH ... SELECT, or VALUES), not ";
    char want[512];

    unit_check_str(check("query a SELECT 1\nquery b  with x AS (SELECT 1) SELECT * FROM x\n"
                         "query c VALUES (1)\n"), "ok",
                   "query: SELECT, WITH, VALUES");
    unit_check_str(check("query d /* a comment */ select 1\n"), "ok", "query: a comment before SELECT");
    snprintf(want, sizeof want, "%sBEGIN: a transaction left open would hold every later answer to one snapshot", not);
    unit_check_str(check("query b BEGIN\n"), want, "query: BEGIN refused");
    unit_check_str(check("query b /**/begin immediate\n"), want, "query: begin after a comment refused");
    snprintf(want, sizeof want, "%sSAVEPOINT: a transaction left open would hold every later answer to one snapshot", not);
    unit_check_str(check("query b savepoint s\n"), want, "query: SAVEPOINT refused");
    snprintf(want, sizeof want, "%sATTACH: it opens another database file", not);
    unit_check_str(check("query b ATTACH 'x.db' AS x\n"), want, "query: ATTACH refused");
    snprintf(want, sizeof want, "%sPRAGMA: it reads or changes the connection's settings", not);
    unit_check_str(check("query b PRAGMA query_only=0\n"), want, "query: PRAGMA refused");
    snprintf(want, sizeof want, "%sDELETE: it writes", not);
    unit_check_str(check("query b DELETE FROM t\n"), want, "query: DELETE refused");
    snprintf(want, sizeof want, "%sEXPLAIN", not);
    unit_check_str(check("query b EXPLAIN SELECT 1\n"), want, "query: EXPLAIN refused");
    snprintf(want, sizeof want, "%sthat", not);
    unit_check_str(check("query b (SELECT 1)\n"), want, "query: no first word");
    unit_check_str(check("query b /* SELECT */\n"), want, "query: only a comment");
    unit_check_str(check("query nosql\n"), ":1: query \"nosql\": expected NAME SELECT ...",
                   "query: a name without SQL");
    snprintf(want, sizeof want, "%s:2: query a: the name is already used on ", "");
    {
        const char *got = check("query a SELECT 1\nquery a SELECT 2\n");
        unit_check(!strncmp(got, want, strlen(want)) && strstr(got, "query.conf:1"),
                   "query: a name used twice (%s)", got);
    }
    unit_check_str(check("query ab SELECT 1\nquery a SELECT 2\n"), "ok", "query: a name that begins another");
    cfg_free(opts);
}
