/* query.c: named read queries (see query.h). */
#include "query.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "val.h"

struct named {
    char *name;
    sqlite3_stmt *st;
};

struct queries {
    sqlite3 *h;
    struct named *q;
    int n;
    long long max_rows, timeout_ms;
    long long deadline_ms;      /* on util_now_ms() */
};

static int past_deadline(void *arg)
{
    struct queries *q = arg;

    return util_now_ms() >= q->deadline_ms;
}

/* The first word of sql, past blanks and comments, upper-cased into w (empty: none). */
static void first_word(const char *sql, char *w, size_t wlen)
{
    size_t n = 0;

    for (;;) {
        while (isspace((unsigned char)*sql))
            sql++;
        if (sql[0] == '-' && sql[1] == '-')
            sql += strcspn(sql, "\n");
        else if (sql[0] == '/' && sql[1] == '*')
            sql = strstr(sql + 2, "*/") ? strstr(sql + 2, "*/") + 2 : sql + strlen(sql);
        else
            break;
    }
    while ((isalpha((unsigned char)*sql) || *sql == '_') && n + 1 < wlen)
        w[n++] = (char)toupper((unsigned char)*sql++);
    w[n] = '\0';
}

/* Why a named query may not begin with word: NULL when it may. */
static const char *refused_word(const char *word)
{
    static const struct { const char *word, *why; } no[] = {
        {"BEGIN", ": a transaction left open would hold every later answer to one snapshot"},
        {"SAVEPOINT", ": a transaction left open would hold every later answer to one snapshot"},
        {"COMMIT", ": it ends a transaction"}, {"END", ": it ends a transaction"},
        {"ROLLBACK", ": it ends a transaction"}, {"RELEASE", ": it ends a transaction"},
        {"ATTACH", ": it opens another database file"},
        {"DETACH", ": it changes the connection's databases"},
        {"PRAGMA", ": it reads or changes the connection's settings"},
        {"INSERT", ": it writes"}, {"UPDATE", ": it writes"}, {"DELETE", ": it writes"},
        {"REPLACE", ": it writes"}, {"CREATE", ": it writes"}, {"DROP", ": it writes"},
        {"ALTER", ": it writes"}, {"VACUUM", ": it writes"}, {"REINDEX", ": it writes"},
        {"ANALYZE", ": it writes"},
    };
    size_t i;

    if (!strcmp(word, "SELECT") || !strcmp(word, "WITH") || !strcmp(word, "VALUES"))
        return NULL;
    for (i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcmp(word, no[i].word))
            return no[i].why;
    return "";
}

/* The length of a definition's name; *sql set to its SQL (past the blanks). */
static size_t def_split(const char *d, const char **sql)
{
    const char *p = d;

    while (*p && !isspace((unsigned char)*p))
        p++;
    *sql = p;
    while (isspace((unsigned char)**sql))
        (*sql)++;
    return (size_t)(p - d);
}

int query_check(const struct cfg_list *defs, char *err, size_t errlen)
{
    size_t i, j;

    for (i = 0; i < defs->n; i++) {
        const char *d = defs->items[i], *sql, *other, *why;
        const char *at = cfg_list_origin(defs, i) ? cfg_list_origin(defs, i) : "";
        const char *sep = *at ? ": " : "";
        size_t nlen = def_split(d, &sql);
        char word[16];

        if (!nlen || !*sql)
            return snprintf(err, errlen, "%s%squery \"%s\": expected NAME SELECT ...", at, sep, d), -1;
        for (j = 0; j < i; j++) {
            if (def_split(defs->items[j], &other) != nlen || strncmp(defs->items[j], d, nlen))
                continue;
            other = cfg_list_origin(defs, j);
            return snprintf(err, errlen, "%s%squery %.*s: the name is already used%s%s", at, sep,
                            (int)nlen, d, other ? " on " : " by another query", other ? other : ""), -1;
        }
        first_word(sql, word, sizeof word);
        if ((why = refused_word(word)))
            return snprintf(err, errlen, "%s%squery %.*s: must be one SELECT (or WITH ... SELECT, or "
                            "VALUES), not %s%s", at, sep, (int)nlen, d, *word ? word : "that", why), -1;
    }
    return 0;
}

/* Second to query_check: a statement that would open a transaction or another file is
 * not even prepared. (Not PRAGMA: SQLite asks the same for a SELECT from a pragma
 * function such as pragma_table_info, which only reads.) */
static int authorize(void *ud, int action, const char *a, const char *b, const char *c, const char *d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return action == SQLITE_TRANSACTION || action == SQLITE_SAVEPOINT || action == SQLITE_ATTACH ||
           action == SQLITE_DETACH ? SQLITE_DENY : SQLITE_OK;
}

struct queries *query_open(const char *path, const struct cfg_list *defs, long long max_rows,
                           long long timeout_ms, char *err, size_t errlen)
{
    struct queries *q = calloc(1, sizeof *q);
    size_t i;

    if (!q || !(q->q = calloc(defs->n + 1, sizeof *q->q))) {
        free(q);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->max_rows = max_rows;
    q->timeout_ms = timeout_ms;
    if (sqlite3_open_v2(path, &q->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "query connection: %s", sqlite3_errmsg(q->h));
        query_close(q);
        return NULL;
    }
    sqlite3_exec(q->h, "PRAGMA query_only=1", NULL, NULL, NULL);
    sqlite3_busy_timeout(q->h, (int)timeout_ms);
    sqlite3_progress_handler(q->h, 1000, past_deadline, q);
    sqlite3_set_authorizer(q->h, authorize, NULL);
    for (i = 0; i < defs->n; i++) {
        const char *d = defs->items[i], *sql = d, *tail = NULL;
        /* Every error names the config line: "FILE:LINE: query NAME: ..." */
        const char *at = cfg_list_origin(defs, i) ? cfg_list_origin(defs, i) : "";
        const char *sep = *at ? ": " : "";
        struct named *nq = &q->q[q->n];
        size_t nlen;
        while (*sql && !isspace((unsigned char)*sql))
            sql++;
        nlen = (size_t)(sql - d);
        while (isspace((unsigned char)*sql))
            sql++;
        if (!nlen || !*sql) {
            snprintf(err, errlen, "%s%squery \"%s\": expected NAME SELECT ...", at, sep, d);
            query_close(q);
            return NULL;
        }
        nq->name = strndup(d, nlen);
        if (!nq->name || sqlite3_prepare_v3(q->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &nq->st, &tail) != SQLITE_OK) {
            snprintf(err, errlen, "%s%squery %s: %s", at, sep, nq->name ? nq->name : d, sqlite3_errmsg(q->h));
            free(nq->name);
            query_close(q);
            return NULL;
        }
        q->n++;
        while (tail && isspace((unsigned char)*tail))
            tail++;
        if (!nq->st || !sqlite3_stmt_readonly(nq->st) || (tail && *tail && strcmp(tail, ";"))) {
            snprintf(err, errlen, "%s%squery %s: must be one read-only SELECT", at, sep, nq->name);
            query_close(q);
            return NULL;
        }
    }
    return q;
}

void query_close(struct queries *q)
{
    int i;

    if (!q)
        return;
    for (i = 0; i < q->n; i++) {
        sqlite3_finalize(q->q[i].st);
        free(q->q[i].name);
    }
    free(q->q);
    sqlite3_close(q->h);
    free(q);
}

static void answer_error(struct jbuf *out, const char *name, const char *msg)
{
    out->len = 0;
    jb_puts(out, "{\"query\":");
    jb_cstr(out, name);
    jb_puts(out, ",\"error\":");
    jb_cstr(out, msg);
    jb_putc(out, '}');
}

/* Bind params ({"name": value}, for :name or $name) to nq's statement; every named
 * parameter must be given. -1 when out holds the error answer. */
static int bind_params(const struct named *nq, const cJSON *params, struct jbuf *out)
{
    sqlite3_stmt *st = nq->st;
    const cJSON *p;
    char msg[512];
    int i;

    for (p = params ? params->child : NULL; p; p = p->next) {
        char pname[256];
        int idx;
        snprintf(pname, sizeof pname, ":%s", p->string);
        idx = sqlite3_bind_parameter_index(st, pname);
        if (!idx) {
            snprintf(pname, sizeof pname, "$%s", p->string);
            idx = sqlite3_bind_parameter_index(st, pname);
        }
        if (!idx) {
            snprintf(msg, sizeof msg, "query \"%s\" has no parameter \"%.100s\"", nq->name, p->string);
            answer_error(out, nq->name, msg);
            sqlite3_clear_bindings(st);
            return -1;
        }
        val_bind(st, idx, p);
    }
    for (i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *pn = sqlite3_bind_parameter_name(st, i);
        if (pn && (!params || !cJSON_GetObjectItemCaseSensitive(params, pn + 1))) {
            snprintf(msg, sizeof msg, "query \"%s\" needs parameter \"%s\"", nq->name, pn + 1);
            answer_error(out, nq->name, msg);
            sqlite3_clear_bindings(st);
            return -1;
        }
    }
    return 0;
}

/* Step the bound statement under the time cap, up to max_rows rows, into out. */
static void run_named(struct queries *q, const struct named *nq, struct jbuf *out)
{
    sqlite3_stmt *st = nq->st;
    long long nrows = 0;
    char msg[512];
    int rc;

    q->deadline_ms = util_now_ms() + q->timeout_ms;
    jb_puts(out, "{\"query\":");
    jb_cstr(out, nq->name);
    jb_puts(out, ",\"rows\":[");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nrows == q->max_rows)
            break;
        if (nrows++)
            jb_putc(out, ',');
        val_row_json(out, st);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        if (rc == SQLITE_INTERRUPT)
            snprintf(msg, sizeof msg, "query \"%s\" ran past its time cap (%lld ms)", nq->name, q->timeout_ms);
        else
            snprintf(msg, sizeof msg, "query \"%s\": %s", nq->name, sqlite3_errmsg(q->h));
        answer_error(out, nq->name, msg);
    } else {
        jb_puts(out, "],\"truncated\":");
        jb_puts(out, rc == SQLITE_ROW ? "true}" : "false}");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!sqlite3_get_autocommit(q->h))          /* never left in a transaction */
        sqlite3_exec(q->h, "ROLLBACK", NULL, NULL, NULL);
}

/* A query request's fields, each NULL when absent; any other field is refused. */
static int query_fields(const cJSON *root, const cJSON **name, const cJSON **params,
                        const cJSON **rt, char *err, size_t errlen)
{
    const cJSON *c;

    *name = *params = *rt = NULL;
    for (c = root->child; c; c = c->next) {
        if (!strcmp(c->string, "query"))
            *name = c;
        else if (!strcmp(c->string, "params"))
            *params = c;
        else if (!strcmp(c->string, "reply_to"))
            *rt = c;
        else
            return snprintf(err, errlen, "unknown field \"%.100s\" (a query request has \"query\", "
                            "\"params\" and \"reply_to\")", c->string), -1;
    }
    return 0;
}

void query_run(struct queries *q, const cJSON *root, struct jbuf *out)
{
    const cJSON *jname, *params, *rt;
    struct named *nq = NULL;
    char msg[512];
    int i;

    jb_reset(out);
    if (query_fields(root, &jname, &params, &rt, msg, sizeof msg)) {
        answer_error(out, cJSON_IsString(jname) ? jname->valuestring : NULL, msg);
        return;
    }
    if (!cJSON_IsString(jname)) {
        answer_error(out, NULL, "\"query\" must name a defined query");
        return;
    }
    for (i = 0; i < q->n; i++)
        if (!strcmp(q->q[i].name, jname->valuestring))
            nq = &q->q[i];
    if (!nq) {
        snprintf(msg, sizeof msg, "unknown query \"%.100s\"", jname->valuestring);
        answer_error(out, jname->valuestring, msg);
        return;
    }
    if (params && !cJSON_IsObject(params)) {
        answer_error(out, nq->name, "\"params\" must be an object");
        return;
    }
    if (!bind_params(nq, params, out))
        run_named(q, nq, out);
}
