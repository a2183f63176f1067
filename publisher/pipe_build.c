/* pipe_build.c: the build's row (see pipe_build.h), and the checks of the options that
 * name it before anything runs. */
#include "pipe_build.h"
#include "util.h"

#include <cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* The row's where: --build-where, else {"id": <--with's build_id>}. NULL if neither. */
static cJSON *build_where(const struct pipe_conf *pc)
{
    cJSON *w = NULL, *with, *id;

    if (pc->build_where)
        return cJSON_Parse(pc->build_where);
    if (!pc->with || !(with = cJSON_Parse(pc->with)))
        return NULL;
    id = cJSON_GetObjectItemCaseSensitive(with, "build_id");
    if (id && (w = cJSON_CreateObject()))
        cJSON_AddItemToObject(w, "id", cJSON_Duplicate(id, 1));
    cJSON_Delete(with);
    return w;
}

/* The columns the wrapper sets itself in the builds table (and the attempt column). */
static const char *const build_columns[] = {
    "name", "status", "started_at", "finished_at", "exit_code", "duration_ms", NULL,
};

const char *build_attempt_column(const struct pipe_conf *pc)
{
    if (!pc->build_table)
        return NULL;
    if (!pc->attempt_column)
        return "attempt";
    return *pc->attempt_column ? pc->attempt_column : NULL;
}

/* The row's where with the attempt: the rows of this run, not of an earlier one. */
cJSON *build_row_where(const struct pipe_conf *pc)
{
    cJSON *w = build_where(pc), *a;
    const char *ac = build_attempt_column(pc);

    if (w && ac && pc->attempt) {
        if (!(a = cJSON_Parse(pc->attempt))) {
            cJSON_Delete(w);
            return NULL;
        }
        cJSON_AddItemToObject(w, ac, a);
    }
    return w;
}

char *build_attempt_new(const struct pipe_conf *pc)
{
    const char *ac = build_attempt_column(pc);
    cJSON *with, *a;
    char *out = NULL, buf[32];

    if (!ac)
        return NULL;
    with = pc->with ? cJSON_Parse(pc->with) : NULL;
    if (with && (a = cJSON_GetObjectItemCaseSensitive(with, ac)))
        out = cJSON_PrintUnformatted(a);
    cJSON_Delete(with);
    if (out)
        return out;
    snprintf(buf, sizeof buf, "%lld", util_wall_ms());
    if ((out = cJSON_malloc(strlen(buf) + 1)))
        strcpy(out, buf);
    return out;
}

char *build_with_attempt(const struct pipe_conf *pc)
{
    const char *ac = build_attempt_column(pc);
    cJSON *with, *a;
    char *out = NULL;

    if (!ac || !pc->attempt)
        return NULL;
    if (!(with = pc->with ? cJSON_Parse(pc->with) : cJSON_CreateObject()))
        return NULL;
    if (!cJSON_GetObjectItemCaseSensitive(with, ac) && (a = cJSON_Parse(pc->attempt)))
        cJSON_AddItemToObject(with, ac, a);
    out = cJSON_PrintUnformatted(with);
    cJSON_Delete(with);
    return out;
}

/* check_time_column: a row must not get the time column twice (from --lines, --with or
 * --stream-column too): the writer would reject every line as a duplicate key. */
static int check_time_column(const struct pipe_conf *pc, char *err, size_t errlen)
{
    const char *tc = pc->time_column && *pc->time_column ? pc->time_column : NULL;
    cJSON *with;
    int clash;

    if (!tc)
        return 0;
    with = pc->with ? cJSON_Parse(pc->with) : NULL;
    clash = !strcmp(tc, pc->column) || (with && cJSON_GetObjectItemCaseSensitive(with, tc)) ||
            (pc->stream_column && !strcmp(tc, pc->stream_column));
    cJSON_Delete(with);
    if (!clash)
        return 0;
    snprintf(err, errlen, "--time-column %s: that column already gets a value from --lines, "
             "--with or --stream-column", tc);
    return -1;
}

/* check_where_columns: --build-where names the row, and must not name a column the
 * wrapper sets (the start would carry it twice and be rejected). */
static int check_where_columns(const struct pipe_conf *pc, const cJSON *w, char *err,
                               size_t errlen)
{
    const char *ac = build_attempt_column(pc);
    const int n = (int)(sizeof build_columns / sizeof build_columns[0]) - 1;
    const cJSON *k;
    int i;

    /* The wrapper's n columns, then the attempt column when there is one. */
    for (k = w->child; k; k = k->next)
        for (i = 0; i < n || (ac && i == n); i++)
            if (!strcmp(k->string, i < n ? build_columns[i] : ac)) {
                snprintf(err, errlen, "--build-where cannot name %s: the wrapper sets that "
                         "column itself; name the row by its key", k->string);
                return -1;
            }
    return 0;
}

int pipe_check_build(const struct pipe_conf *pc, char *err, size_t errlen)
{
    cJSON *w;
    int ok;
    const char *ac;
    char e[400], *req = NULL;

    if (check_time_column(pc, err, errlen))
        return -1;
    if (!pc->build_table)
        return 0;
    if ((ac = build_attempt_column(pc)) &&
        (!strcmp(ac, pc->column) || (pc->stream_column && !strcmp(ac, pc->stream_column)) ||
         (pc->time_column && !strcmp(ac, pc->time_column)))) {
        snprintf(err, errlen, "the attempt column %s is also the line, stream or time column", ac);
        return -1;
    }
    if (!*pc->build_table || strpbrk(pc->build_table, "/+#")) {
        snprintf(err, errlen, "--build-table must be a plain table name");
        return -1;
    }
    /* The library's strict check; its message starts "where ...". */
    if (pc->build_where &&
        !(req = mosqlite_request_build(MOSQLITE_DELETE, NULL, pc->build_where, NULL, e, sizeof e))) {
        snprintf(err, errlen, "--build-%s", e);
        return -1;
    }
    if (pc->build_where)
        mosqlite_free(req);
    w = build_where(pc);
    ok = w && cJSON_IsObject(w) && w->child;
    if (ok && check_where_columns(pc, w, err, errlen)) {
        cJSON_Delete(w);
        return -1;
    }
    cJSON_Delete(w);
    if (ok)
        return 0;
    if (pc->build_where)
        snprintf(err, errlen, "--build-where must be a non-empty JSON object");
    else
        snprintf(err, errlen, "the build is recorded in %s: give --with '{\"build_id\": N, ...}' "
                 "or --build-where '{\"COLUMN\": VALUE}', or --no-build", pc->build_table);
    return -1;
}

/* The start: an upsert (the row is made if missing). */
char *build_start(const struct pipe_conf *pc, char **cmd)
{
    cJSON *o = cJSON_CreateObject(), *w = build_where(pc), *v, *k, *keys, *a;
    const char *ac = build_attempt_column(pc);
    char now[40], *out = NULL, name[256];
    int i;
    size_t off = 0;

    if (!o || !w)
        goto cleanup;
    util_time_format(util_wall_ms(), now);
    cJSON_AddStringToObject(o, "table", pc->build_table);
    cJSON_AddStringToObject(o, "op", "upsert");
    v = cJSON_Duplicate(w, 1);
    if (pc->build_name) {
        snprintf(name, sizeof name, "%s", pc->build_name);
    } else {
        name[0] = '\0';
        for (i = 0; cmd[i] && off < sizeof name - 1; i++)
            off += (size_t)snprintf(name + off, sizeof name - off, "%s%s", i ? " " : "", cmd[i]);
    }
    cJSON_AddStringToObject(v, "name", name);
    cJSON_AddStringToObject(v, "status", "running");
    cJSON_AddStringToObject(v, "started_at", now);
    cJSON_AddNullToObject(v, "finished_at");
    cJSON_AddNullToObject(v, "exit_code");
    cJSON_AddNullToObject(v, "duration_ms");
    if (ac && pc->attempt && (a = cJSON_Parse(pc->attempt)))
        cJSON_AddItemToObject(v, ac, a);
    cJSON_AddItemToObject(o, "values", v);
    keys = cJSON_AddArrayToObject(o, "on_conflict");
    for (k = w->child; k; k = k->next)
        cJSON_AddItemToArray(keys, cJSON_CreateString(k->string));
    out = cJSON_PrintUnformatted(o);
cleanup:
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

/* An update of this attempt's row: set (taken), where the row (and status, if given). */
static char *attempt_update(const struct pipe_conf *pc, cJSON *set, const char *status)
{
    cJSON *o = cJSON_CreateObject(), *w = build_row_where(pc);
    char *out = NULL;

    if (o && w && set) {
        cJSON_AddStringToObject(o, "table", pc->build_table);
        cJSON_AddStringToObject(o, "op", "update");
        cJSON_AddItemToObject(o, "set", set);
        set = NULL;
        if (status)
            cJSON_AddStringToObject(w, "status", status);
        cJSON_AddItemToObject(o, "where", w);
        w = NULL;
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(set);
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

void build_end(const struct pipe_conf *pc, int wstatus, int signalled, double ms,
               char **status_rec, char **facts_rec)
{
    cJSON *st = cJSON_CreateObject(), *facts = cJSON_CreateObject();
    char now[40];
    const char *s;
    int code;

    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        code = 128 + sig;
        s = sig == SIGINT || sig == SIGTERM || sig == SIGHUP || signalled ? "cancelled" : "failed";
    } else {
        code = WEXITSTATUS(wstatus);
        s = code == 0 ? "passed" : signalled ? "cancelled" : "failed";
    }
    util_time_format(util_wall_ms(), now);
    if (st)
        cJSON_AddStringToObject(st, "status", s);
    if (facts) {
        cJSON_AddStringToObject(facts, "finished_at", now);
        cJSON_AddNumberToObject(facts, "exit_code", code);
        cJSON_AddNumberToObject(facts, "duration_ms", (double)(long long)(ms + 0.5));
    }
    *status_rec = attempt_update(pc, st, "running");
    *facts_rec = attempt_update(pc, facts, NULL);
}

/* The build's last will: an update of its row to `lost`, only while this attempt is
 * `running` (so it changes nothing once the end is recorded, applied late or twice, nor
 * a row an operator cancelled, nor a later attempt's). The broker publishes it if the
 * connection ends without a clean close (the wrapper killed), and forgets it when the
 * wrapper disconnects at its end. */
char *build_will(const struct pipe_conf *pc)
{
    cJSON *set = cJSON_CreateObject();

    if (set)
        cJSON_AddStringToObject(set, "status", "lost");
    return attempt_update(pc, set, "running");
}
