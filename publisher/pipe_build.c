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

/* The columns the wrapper sets itself in the builds table. */
static const char *const build_columns[] = {
    "name", "status", "started_at", "finished_at", "exit_code", "duration_ms", NULL,
};

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
static int check_where_columns(const cJSON *w, char *err, size_t errlen)
{
    const cJSON *k;
    int i;

    for (k = w->child; k; k = k->next)
        for (i = 0; build_columns[i]; i++)
            if (!strcmp(k->string, build_columns[i])) {
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

    char e[400], *req = NULL;

    if (check_time_column(pc, err, errlen))
        return -1;
    if (!pc->build_table)
        return 0;
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
    if (ok && check_where_columns(w, err, errlen)) {
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

/* The start (an upsert: the row is made if missing) or the end (an update). */
char *build_record(const struct pipe_conf *pc, char **cmd, int start, int wstatus,
                   int signalled, double ms)
{
    cJSON *o = cJSON_CreateObject(), *w = build_where(pc), *v, *k, *keys;
    char now[40], *out = NULL, name[256];
    int i, code;
    size_t off = 0;

    if (!o || !w)
        goto cleanup;
    util_time_format(util_wall_ms(), now);
    cJSON_AddStringToObject(o, "table", pc->build_table);
    if (start) {
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
        cJSON_AddItemToObject(o, "values", v);
        keys = cJSON_AddArrayToObject(o, "on_conflict");
        for (k = w->child; k; k = k->next)
            cJSON_AddItemToArray(keys, cJSON_CreateString(k->string));
    } else {
        const char *st;
        if (WIFSIGNALED(wstatus)) {
            int sig = WTERMSIG(wstatus);
            code = 128 + sig;
            st = sig == SIGINT || sig == SIGTERM || sig == SIGHUP ? "cancelled" : "failed";
        } else {
            code = WEXITSTATUS(wstatus);
            st = code == 0 ? "passed" : signalled ? "cancelled" : "failed";
        }
        cJSON_AddStringToObject(o, "op", "update");
        v = cJSON_AddObjectToObject(o, "set");
        cJSON_AddStringToObject(v, "status", st);
        cJSON_AddStringToObject(v, "finished_at", now);
        cJSON_AddNumberToObject(v, "exit_code", code);
        cJSON_AddNumberToObject(v, "duration_ms", (double)(long long)(ms + 0.5));
        cJSON_AddItemToObject(o, "where", w);
        w = NULL;
    }
    out = cJSON_PrintUnformatted(o);
cleanup:
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

/* The build's last will: an update of its row to `lost`, only while it is `running`
 * (so it changes nothing once the end is recorded, applied late or twice). The broker
 * publishes it if the connection ends without a clean close (the wrapper killed), and
 * forgets it when the wrapper disconnects at its end. */
char *build_will(const struct pipe_conf *pc)
{
    cJSON *o = cJSON_CreateObject(), *w = build_where(pc), *set;
    char *out = NULL;

    if (o && w && (set = cJSON_AddObjectToObject(o, "set"))) {
        cJSON_AddStringToObject(o, "table", pc->build_table);
        cJSON_AddStringToObject(o, "op", "update");
        cJSON_AddStringToObject(set, "status", "lost");
        cJSON_AddStringToObject(w, "status", "running");
        cJSON_AddItemToObject(o, "where", w);
        w = NULL;
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

