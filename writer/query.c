/* query.c: named read queries (see query.h). */
#include "query.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    struct timespec deadline;
};

static int past_deadline(void *arg)
{
    struct queries *q = arg;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > q->deadline.tv_sec ||
           (now.tv_sec == q->deadline.tv_sec && now.tv_nsec >= q->deadline.tv_nsec);
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

    clock_gettime(CLOCK_MONOTONIC, &q->deadline);
    q->deadline.tv_sec += q->timeout_ms / 1000;
    q->deadline.tv_nsec += (q->timeout_ms % 1000) * 1000000;
    if (q->deadline.tv_nsec >= 1000000000) {
        q->deadline.tv_sec++;
        q->deadline.tv_nsec -= 1000000000;
    }
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
