/* watch.c: the commands of mosqlite that watch (console.h): tail, the events and
 * rejections as they come, and log, a build's lines through the page's named queries
 * (build, build_log), followed with -f through the events until the build ends. */
#include "console.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "mosqlite.h"
#include "util.h"

/* build_log, as the page asks it: the rows after an id, up to a count and a size. */
#define LOG_ROWS   1000
#define LOG_BYTES  (256 * 1024)
#define MAX_ID     "9007199254740991"
#define FOLLOW_IDLE_MS 5000     /* log -f: ask again after this long without an event */

/* ---- tail ------------------------------------------------------------------------ */

int cmd_check_tables(int argc, char **argv, char *err, size_t errlen)
{
    int i;

    for (i = 0; i < argc; i++)
        if (!*argv[i] || strpbrk(argv[i], "/+#"))
            return util_fail(err, errlen, "\"%s\": a TABLE is a plain table name", argv[i]);
    return 0;
}

static void now_text(char *out, size_t len)
{
    long long ms = util_wall_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char t[32];

    localtime_r(&s, &tm);
    strftime(t, sizeof t, "%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03lld", t, ms % 1000);
}

static void print_tail(struct console *k, const struct climsg *m)
{
    cJSON *v = cJSON_ParseWithLength(m->payload, m->len), *row;
    char when[48], rej[512];
    char *t, *e;

    if (k->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "topic", m->topic);
        cJSON_AddItemToObject(o, "message", v ? v : cJSON_CreateString(m->payload));
        fmt_json(o);
        cJSON_Delete(o);
        fflush(stdout);
        return;
    }
    now_text(when, sizeof when);
    snprintf(rej, sizeof rej, "%s/rejected", k->prefix);
    if (!strcmp(m->topic, rej)) {
        const char *id = cmd_str(v, "id");
        t = fmt_term(cmd_str(v, "topic") ? cmd_str(v, "topic") : "?", 0, NULL);
        e = fmt_term(cmd_str(v, "error") ? cmd_str(v, "error") : m->payload, 0, NULL);
        printf("%s rejected  %s%s%s: %s\n", when, t ? t : "", id ? " id " : "", id ? id : "", e ? e : "");
        free(t);
        free(e);
    } else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(v, "rows"))) {
        const char *table = cmd_str(v, "table"), *op = cmd_str(v, "op");
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(v, "rows")) {
            char *p = cJSON_PrintUnformatted(row);
            t = p ? fmt_term(p, 0, NULL) : NULL;
            printf("%s %s %s  %s\n", when, table ? table : "?", op ? op : "?", t ? t : "");
            free(t);
            cJSON_free(p);
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "truncated")))
            printf("%s %s %s  (more rows changed than one event carries: read the database)\n",
                   when, table ? table : "?", op ? op : "?");
    } else {
        t = fmt_term(m->payload, 0, NULL);
        printf("%s %s  %s\n", when, m->topic, t ? t : "");
        free(t);
    }
    cJSON_Delete(v);
    fflush(stdout);
}

int cmd_run_tail(struct console *k, const struct command *cmd, int argc, char **argv)
{
    char err[512], sub[700];
    long long n = 0;
    struct climsg *m;
    int i, rc;

    for (i = 0; i < (argc ? argc : 1); i++) {
        snprintf(sub, sizeof sub, "%s/events/%s", k->prefix, argc ? argv[i] : "#");
        if ((rc = cliconn_subscribe(k->c, sub, err, sizeof err))) {
            log_error("%s", err);
            return rc;
        }
    }
    if ((rc = cliconn_subscribe(k->c, cmd_topic(k, "rejected"), err, sizeof err))) {
        log_error("%s", err);
        return rc;
    }
    /* Until interrupted (or --count messages): the connection comes back by itself. */
    while (!*k->stop && (!k->count || n < k->count)) {
        if (!(m = cliconn_wait(k->c, NULL, -1, k->stop, NULL)))
            continue;
        print_tail(k, m);
        climsg_free(m);
        n++;
    }
    return EX_DONE;
}

/* ---- log ------------------------------------------------------------------------- */

int cmd_check_build(int argc, char **argv, char *err, size_t errlen)
{
    long long id;

    if (cfg_parse_int(argv[0], -UTIL_EXACT_INT, UTIL_EXACT_INT, &id))
        return util_fail(err, errlen, "\"%s\": BUILD is a build's id, a whole number", argv[0]);
    return 0;
}

/* A builds row that is still going (its log grows). */
static int build_running(const cJSON *row)
{
    const char *s = cmd_str(row, "status");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(row, "finished_at");

    if (s)
        return !strcmp(s, "running") || !strcmp(s, "queued") || !strcmp(s, "pending");
    return !fin || cJSON_IsNull(fin);
}

struct follow {
    long long id;
    double attempt;             /* the attempt shown: the row's (its latest run), else 0 */
    char last[32];              /* the last id printed, as text */
    unsigned long lines;
    int had_sgr;
    /* -f: the events watched, the connection's count of reconnects when last looked,
     * the builds row (have: 1 there is one, 0 not, -1 no query "build") and whether
     * the build has ended. */
    char ev_logs[600], ev_builds[600];
    unsigned reconnects;
    int have, ended;
    cJSON *row;
};

/* Print the build's lines after f->last, asking until an answer is complete. */
static int drain(struct console *k, struct follow *f)
{
    for (;;) {
        cJSON *params = cJSON_CreateObject(), *ans = NULL, *row;
        const cJSON *rows;
        size_t bytes = 0;
        int n = 0, rc;

        cJSON_AddNumberToObject(params, "build_id", (double)f->id);
        cJSON_AddNumberToObject(params, "attempt", f->attempt);
        cJSON_AddRawToObject(params, "after", f->last);
        cJSON_AddRawToObject(params, "until", MAX_ID);
        cJSON_AddNumberToObject(params, "limit", LOG_ROWS);
        cJSON_AddNumberToObject(params, "bytes", LOG_BYTES);
        if ((rc = cmd_ask_query(k, "build_log", params, &ans)))
            return rc;
        if (cmd_str(ans, "error")) {
            rc = cmd_refused("build_log", cmd_str(ans, "error"));
            if (strstr(cmd_str(ans, "error"), "unknown query"))
                log_error("mosqlite log needs the named queries build_log and build in the "
                          "writer's config (see conf/mosqlite.conf)");
            cJSON_Delete(ans);
            return rc;
        }
        rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
        cJSON_ArrayForEach(row, rows) {
            const char *line = cmd_str(row, "line");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
            if (k->json) {
                fmt_json(row);
            } else {
                char *t = fmt_term(line ? line : "", 1, &f->had_sgr);
                printf("%s\n", t ? t : "");
                free(t);
            }
            if (cJSON_IsNumber(id))
                snprintf(f->last, sizeof f->last, "%.0f", id->valuedouble);
            else if (cJSON_IsString(id))       /* beyond 2^53 the writer sends text */
                snprintf(f->last, sizeof f->last, "%s", id->valuestring);
            bytes += (line ? strlen(line) : 0) + 64;
            n++;
            f->lines++;
        }
        fflush(stdout);
        rc = n > 0 && (n >= LOG_ROWS || bytes >= LOG_BYTES ||
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans, "truncated")));
        cJSON_Delete(ans);
        if (!rc)
            return EX_DONE;
    }
}

/* The build's row through the named query `build`: 1 found (*row set), 0 no such row,
 * -1 the writer has no such query; or an exit code + 10 on failure. */
static int build_row(struct console *k, long long id, cJSON **row)
{
    cJSON *params = cJSON_CreateObject(), *ans = NULL;
    int rc;

    *row = NULL;
    cJSON_AddNumberToObject(params, "id", (double)id);
    if ((rc = cmd_ask_query(k, "build", params, &ans)))
        return rc + 10;
    if (cmd_str(ans, "error")) {
        rc = strstr(cmd_str(ans, "error"), "unknown query") ? -1 : (cmd_refused("build", cmd_str(ans, "error")), EX_FAILED + 10);
        cJSON_Delete(ans);
        return rc;
    }
    *row = cJSON_DetachItemFromArray(cJSON_GetObjectItemCaseSensitive(ans, "rows"), 0);
    cJSON_Delete(ans);
    return *row ? 1 : 0;
}

static void say_end(struct console *k, long long id, const cJSON *row)
{
    char code[32], ms[32];

    if (k->json || !row)
        return;
    fmt_num(row, "exit_code", code, sizeof code);
    fmt_num(row, "duration_ms", ms, sizeof ms);
    log_info("build %lld %s (exit code %s, %s ms)", id, cmd_str(row, "status") ? cmd_str(row, "status") : "ended",
             code, ms);
}

/* -f: one event message. Whether it touches the build (ask its lines again); a builds
 * row that says it ended replaces f->row. */
static int on_event(struct follow *f, const struct climsg *m)
{
    cJSON *v = cJSON_ParseWithLength(m->payload, m->len), *r;
    int logs = !strcmp(m->topic, f->ev_logs), builds = !strcmp(m->topic, f->ev_builds), again = 0;

    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(v, "rows")) {
        if (logs && cmd_num(r, "build_id", NAN) == (double)f->id && cmd_num(r, "attempt", 0) == f->attempt)
            again = 1;
        if (builds && cmd_num(r, "id", NAN) == (double)f->id && cmd_num(r, "attempt", 0) == f->attempt) {
            again = 1;
            if (!build_running(r)) {
                f->ended = 1;
                cJSON_Delete(f->row);
                f->row = cJSON_Duplicate(r, 1);
            }
        }
    }
    cJSON_Delete(v);
    return again;
}

/* -f: quiet for a while, so the builds row again. 0, or an exit code + 10 as build_row. */
static int recheck_row(struct console *k, struct follow *f)
{
    cJSON *now = NULL;
    int h = build_row(k, f->id, &now);

    if (h >= 10)
        return h;
    if (h == 1 && !build_running(now)) {
        f->ended = 1;
        cJSON_Delete(f->row);
        f->row = now;
    } else {
        cJSON_Delete(now);
    }
    return 0;
}

/* -f: the events until the build ends (or the user stops); its new lines as they come. */
static int follow_build(struct console *k, struct follow *f)
{
    int rc = 0;

    while (!f->ended && !*k->stop) {
        struct climsg *m = cliconn_wait(k->c, NULL, util_now_exact_ms() + FOLLOW_IDLE_MS, k->stop, NULL);
        int again = !m || cliconn_reconnects(k->c) != f->reconnects;

        f->reconnects = cliconn_reconnects(k->c);
        if (m)
            again |= on_event(f, m);
        climsg_free(m);
        if (!m && !*k->stop && f->have == 1 && (rc = recheck_row(k, f)))
            return rc - 10;
        if (again && !*k->stop && (rc = drain(k, f)))
            return rc;
    }
    return 0;
}

int cmd_run_log(struct console *k, const struct command *cmd, int argc, char **argv)
{
    struct follow f = {0};
    char err[512];
    int rc;

    cfg_parse_int(argv[0], -UTIL_EXACT_INT, UTIL_EXACT_INT, &f.id);
    snprintf(f.last, sizeof f.last, "-" MAX_ID);
    snprintf(f.ev_logs, sizeof f.ev_logs, "%s/events/build_logs", k->prefix);
    snprintf(f.ev_builds, sizeof f.ev_builds, "%s/events/builds", k->prefix);
    /* Following: the events first, so that nothing written meanwhile is missed. */
    if (k->follow && ((rc = cliconn_subscribe(k->c, f.ev_logs, err, sizeof err)) ||
                      (rc = cliconn_subscribe(k->c, f.ev_builds, err, sizeof err)))) {
        log_error("%s", err);
        return rc;
    }
    f.reconnects = cliconn_reconnects(k->c);
    if ((f.have = build_row(k, f.id, &f.row)) >= 10)
        return f.have - 10;
    f.attempt = f.have == 1 ? cmd_num(f.row, "attempt", 0) : 0;
    if (f.attempt != f.attempt)
        f.attempt = 0;
    if ((rc = drain(k, &f))) {
        cJSON_Delete(f.row);
        return rc;
    }
    if (f.have != 1 && f.lines == 0) {
        log_error("no build %lld: %sno lines in build_logs", f.id,
                  f.have == 0 ? "no row in builds and " : "");
        return EX_FAILED;
    }
    if (k->follow && f.have == -1)
        log_warn("the writer has no named query \"build\": following until interrupted");
    else if (k->follow && f.have == 0)
        log_warn("build %lld has no row in builds: following until interrupted", f.id);
    f.ended = f.have == 1 ? !build_running(f.row) : 0;
    if (k->follow)
        rc = follow_build(k, &f);
    if (f.had_sgr && !k->json && isatty(1))
        printf("\x1b[0m");
    if (k->follow && f.ended && !rc)
        say_end(k, f.id, f.row);
    cJSON_Delete(f.row);
    return rc;
}

/* ---- cancel-build ------------------------------------------------------------------- */

/* A running build's row set to cancelled, as the page's "Cancel build" does: only while
 * its latest attempt is running. The build wrapper watches its row and stops the command. */
static cJSON *cancel_request(long long build, const cJSON *row, char *id)
{
    cJSON *req, *set, *where;

    if (!(req = cJSON_CreateObject()) || mosqlite_new_id(id)) {
        cJSON_Delete(req);
        return NULL;
    }
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "table", "builds");
    cJSON_AddStringToObject(req, "op", "update");
    set = cJSON_AddObjectToObject(req, "set");
    cJSON_AddStringToObject(set, "status", "cancelled");
    where = cJSON_AddObjectToObject(req, "where");
    cJSON_AddNumberToObject(where, "id", (double)build);
    cJSON_AddNumberToObject(where, "attempt", cmd_num(row, "attempt", 0));
    cJSON_AddStringToObject(where, "status", "running");
    return req;
}

int cmd_run_cancel_build(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *row = NULL, *req, *ans = NULL;
    char id[MOSQLITE_ID_LEN + 1], what[300];
    const char *status;
    long long build;
    int have, rc;

    cfg_parse_int(argv[0], -UTIL_EXACT_INT, UTIL_EXACT_INT, &build);
    if ((have = build_row(k, build, &row)) >= 10)
        return have - 10;
    if (have != 1) {
        log_error("no build %lld%s", build, have < 0 ? ": the writer has no named query \"build\"" : " in builds");
        return EX_FAILED;
    }
    if (!cmd_str(row, "status") || strcmp(cmd_str(row, "status"), "running")) {
        log_error("build %lld is not running (it says %s): nothing to cancel", build,
                  cmd_str(row, "status") ? cmd_str(row, "status") : "nothing");
        cJSON_Delete(row);
        return EX_FAILED;
    }
    req = cancel_request(build, row, id);
    cJSON_Delete(row);
    if (!req) {
        log_error("cannot make a request id");
        return EX_FAILED;
    }
    rc = cmd_ask(k, cmd_topic(k, "write"), req, 2, &ans);
    cJSON_Delete(req);
    if (rc == EX_NOANSWER)
        log_error("the cancel stays queued at the broker: a stopped or paused writer applies it "
                  "when it takes requests again");
    if (rc)
        return rc;
    status = cmd_str(ans, "status");
    if (k->json)
        fmt_json(ans);
    if (status && !strcmp(status, "rejected")) {
        snprintf(what, sizeof what, "cannot cancel build %lld", build);
        rc = cmd_refused(what, cmd_str(ans, "error"));
    } else if (status && !strcmp(status, "applied") && cmd_num(ans, "changes", 1) == 0) {
        log_error("build %lld ended before the cancel reached the writer: nothing cancelled", build);
        rc = EX_FAILED;
    } else if (!k->json) {
        printf("cancelled build %lld\n", build);
    }
    cJSON_Delete(ans);
    return rc;
}
