/* commands.c: the command table of mosqlite and what each command does (console.h).
 *
 * A command is one entry: its name, how many arguments it takes, a line of help, an
 * optional check of its arguments (run before connecting: bad ones exit 3), and the
 * function that runs it. Commands that differ only in the protocol's name share one
 * function and carry that name in `wire` (the maintenance commands), so a new command
 * of the same kind is one more line in the table.
 *
 * Every question goes with a reply_to of its own, PREFIX/reply/CLIENT_ID/N, under the
 * subscription PREFIX/reply/CLIENT_ID/# made before the first question: an answer is
 * told by its topic. */
#include "console.h"

#include <ctype.h>
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

static char topic_buf[4][512];

/* PREFIX/suffix in one of a few static buffers. */
static const char *topic(struct console *k, const char *suffix)
{
    static int n;
    char *t = topic_buf[n++ % 4];

    snprintf(t, sizeof topic_buf[0], "%s/%s", k->prefix, suffix);
    return t;
}

/* Ask: publish req (reply_to added) on topic and wait for the answer. EX_DONE with
 * *answer set (a JSON value; NULL if it was not JSON), or another exit code (said on
 * stderr). */
static int ask(struct console *k, const char *to, cJSON *req, int qos, cJSON **answer)
{
    char rt[700], err[512], *payload;
    struct msg *m;
    int rc, lost;
    double deadline = k->timeout_ms > 0 ? conn_now_ms() + k->timeout_ms : -1;

    *answer = NULL;
    snprintf(rt, sizeof rt, "%s/%u", k->reply, ++k->seq);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "reply_to");
    if (!cJSON_AddStringToObject(req, "reply_to", rt) || !(payload = cJSON_PrintUnformatted(req))) {
        log_error("out of memory");
        return EX_FAILED;
    }
    rc = conn_publish(k->c, to, payload, qos, 1, err, sizeof err);
    cJSON_free(payload);
    if (rc) {
        log_error("%s", err);
        return rc;
    }
    if (!(m = conn_wait(k->c, rt, deadline, k->stop, &lost))) {
        if (lost) {
            log_error("lost the connection to the broker while waiting for the answer");
            return EX_CONNECT;
        }
        if (k->stop && *k->stop)
            return EX_FAILED;
        log_error("no answer from the writer within %d s (is mosqlite-writer running, with prefix "
                  "\"%s\", and not too busy? --timeout waits longer)", k->timeout_ms / 1000, k->prefix);
        return EX_NOANSWER;
    }
    *answer = cJSON_ParseWithLength(m->payload, m->len);
    msg_free(m);
    if (!*answer) {
        log_error("the answer on %s is not JSON", rt);
        return EX_FAILED;
    }
    return EX_DONE;
}

/* Ask a named query; EX_DONE with *answer (it may carry "error"). */
static int ask_query(struct console *k, const char *name, cJSON *params, cJSON **answer)
{
    cJSON *req = cJSON_CreateObject();
    int rc;

    if (!req) {
        cJSON_Delete(params);
        return EX_FAILED;
    }
    cJSON_AddStringToObject(req, "query", name);
    cJSON_AddItemToObject(req, "params", params ? params : cJSON_CreateObject());
    rc = ask(k, topic(k, "query"), req, 1, answer);
    cJSON_Delete(req);
    return rc;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The writer's error text, made safe for the terminal, on stderr after what. */
static int refused(const char *what, const char *error)
{
    char *t = fmt_term(error ? error : "(no reason given)", 0, NULL);
    log_error("%s: %s", what, t ? t : "");
    free(t);
    return EX_FAILED;
}

/* A retained message may be missing because the ACL hides it: say so when logged in. */
static const char *acl_hint(struct console *k)
{
    return k->has_user ? " (or the broker's ACL does not let this user read it)" : "";
}

/* ---- status ---------------------------------------------------------------------- */

static int run_status(struct console *k, const struct command *cmd, int argc, char **argv)
{
    char err[512], a[64], b[64], c[64], d[64], e[64], f[64], g[64], h[64];
    const char *st = topic(k, "status");
    struct msg *m;
    cJSON *s;
    int rc;

    /* The retained status comes right after its SUBACK; the second SUBACK (the answer
     * topic) comes after it, so once that is in, a missing status is really missing. */
    if ((rc = conn_subscribe(k->c, st, err, sizeof err)) ||
        (rc = conn_subscribe(k->c, k->reply, err, sizeof err))) {
        log_error("%s", err);
        return rc;
    }
    if (!(m = conn_wait(k->c, st, conn_now_ms(), NULL, NULL))) {
        log_error("no status on %s: no mosqlite-writer has run on this broker with prefix \"%s\"%s",
                  st, k->prefix, acl_hint(k));
        return EX_NOANSWER;
    }
    s = cJSON_ParseWithLength(m->payload, m->len);
    msg_free(m);
    if (!cJSON_IsObject(s)) {
        cJSON_Delete(s);
        log_error("the status on %s is not a JSON object", st);
        return EX_FAILED;
    }
    if (k->json) {
        fmt_json(s);
    } else {
        const cJSON *paused = cJSON_GetObjectItemCaseSensitive(s, "paused");
        const char *state = str(s, "state"), *error = str(s, "error");
        char *et = error ? fmt_term(error, 0, NULL) : NULL;

        printf("writer     %s%s\n", state ? state : "?",
               cJSON_IsTrue(paused) ? ", paused: requests wait at the broker (mosqlite resume)" : "");
        if (state && !strcmp(state, "online")) {
            fmt_num(s, "version", a, sizeof a);
            printf("since      %s, version %s\n", str(s, "since") ? str(s, "since") : "-", a);
            fmt_num(s, "applied", a, sizeof a);
            fmt_num(s, "rejected", b, sizeof b);
            fmt_num(s, "duplicates", c, sizeof c);
            fmt_num(s, "pending", d, sizeof d);
            printf("requests   %s applied, %s rejected, %s duplicates, %s pending\n", a, b, c, d);
            fmt_num(s, "scheduled", a, sizeof a);
            fmt_num(s, "cancelled", b, sizeof b);
            printf("scheduled  %s stored, %s cancelled (mosqlite scheduled)\n", a, b);
            fmt_num(s, "commits", a, sizeof a);
            fmt_num(s, "last_commit_ms", b, sizeof b);
            fmt_num(s, "last_batch", c, sizeof c);
            fmt_num(s, "max_batch", d, sizeof d);
            printf("commits    %s, the last %s ms, last batch %s, largest %s\n", a, b, c, d);
            printf("error      %s\n", et ? et : "none");
            fmt_num(s, "broker", e, sizeof e);
            fmt_num(s, "libmosquitto", f, sizeof f);
            fmt_num(s, "sqlite", g, sizeof g);
            fmt_num(s, "request_protocol", h, sizeof h);
            printf("versions   broker %s, libmosquitto %s, SQLite %s, requests over MQTT %s\n",
                   e, f, g, h);
        }
        free(et);
    }
    rc = str(s, "state") && !strcmp(str(s, "state"), "online") ? EX_DONE : EX_FAILED;
    if (rc)
        log_error("the writer is %s", str(s, "state") ? str(s, "state") : "in an unknown state");
    cJSON_Delete(s);
    return rc;
}

/* ---- tail ------------------------------------------------------------------------ */

static int check_tables(int argc, char **argv, char *err, size_t errlen)
{
    int i;

    for (i = 0; i < argc; i++)
        if (!*argv[i] || strpbrk(argv[i], "/+#"))
            return util_fail(err, errlen, "\"%s\": a TABLE is a plain table name", argv[i]);
    return 0;
}

static void now_text(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char t[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(t, sizeof t, "%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03ld", t, ts.tv_nsec / 1000000);
}

static void print_tail(struct console *k, const struct msg *m)
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
        const char *id = str(v, "id");
        t = fmt_term(str(v, "topic") ? str(v, "topic") : "?", 0, NULL);
        e = fmt_term(str(v, "error") ? str(v, "error") : m->payload, 0, NULL);
        printf("%s rejected  %s%s%s: %s\n", when, t ? t : "", id ? " id " : "", id ? id : "", e ? e : "");
        free(t);
        free(e);
    } else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(v, "rows"))) {
        const char *table = str(v, "table"), *op = str(v, "op");
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

static int run_tail(struct console *k, const struct command *cmd, int argc, char **argv)
{
    char err[512], sub[700];
    long long n = 0;
    struct msg *m;
    int i, rc;

    for (i = 0; i < (argc ? argc : 1); i++) {
        snprintf(sub, sizeof sub, "%s/events/%s", k->prefix, argc ? argv[i] : "#");
        if ((rc = conn_subscribe(k->c, sub, err, sizeof err))) {
            log_error("%s", err);
            return rc;
        }
    }
    if ((rc = conn_subscribe(k->c, topic(k, "rejected"), err, sizeof err))) {
        log_error("%s", err);
        return rc;
    }
    /* Until interrupted (or --count messages): the connection comes back by itself. */
    while (!*k->stop && (!k->count || n < k->count)) {
        if (!(m = conn_wait(k->c, NULL, -1, k->stop, NULL)))
            continue;
        print_tail(k, m);
        msg_free(m);
        n++;
    }
    return EX_DONE;
}

/* ---- log ------------------------------------------------------------------------- */

static int check_build(int argc, char **argv, char *err, size_t errlen)
{
    long long id;

    if (cfg_parse_int(argv[0], -UTIL_EXACT_INT, UTIL_EXACT_INT, &id))
        return util_fail(err, errlen, "\"%s\": BUILD is a build's id, a whole number", argv[0]);
    return 0;
}

/* A builds row that is still going (its log grows). */
static int build_running(const cJSON *row)
{
    const char *s = str(row, "status");
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
        if ((rc = ask_query(k, "build_log", params, &ans)))
            return rc;
        if (str(ans, "error")) {
            rc = refused("build_log", str(ans, "error"));
            if (strstr(str(ans, "error"), "unknown query"))
                log_error("mosqlite log needs the named queries build_log and build in the "
                          "writer's config (see conf/mosqlite.conf)");
            cJSON_Delete(ans);
            return rc;
        }
        rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
        cJSON_ArrayForEach(row, rows) {
            const char *line = str(row, "line");
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
    if ((rc = ask_query(k, "build", params, &ans)))
        return rc + 10;
    if (str(ans, "error")) {
        rc = strstr(str(ans, "error"), "unknown query") ? -1 : (refused("build", str(ans, "error")), EX_FAILED + 10);
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
    log_info("build %lld %s (exit code %s, %s ms)", id, str(row, "status") ? str(row, "status") : "ended",
             code, ms);
}

static int run_log(struct console *k, const struct command *cmd, int argc, char **argv)
{
    struct follow f = {0};
    char err[512], ev_logs[600], ev_builds[600];
    cJSON *row = NULL;
    int have, rc, ended, running;
    unsigned reconnects;

    cfg_parse_int(argv[0], -UTIL_EXACT_INT, UTIL_EXACT_INT, &f.id);
    snprintf(f.last, sizeof f.last, "-" MAX_ID);
    snprintf(ev_logs, sizeof ev_logs, "%s/events/build_logs", k->prefix);
    snprintf(ev_builds, sizeof ev_builds, "%s/events/builds", k->prefix);
    /* Following: the events first, so that nothing written meanwhile is missed. */
    if (k->follow && ((rc = conn_subscribe(k->c, ev_logs, err, sizeof err)) ||
                      (rc = conn_subscribe(k->c, ev_builds, err, sizeof err)))) {
        log_error("%s", err);
        return rc;
    }
    reconnects = conn_reconnects(k->c);
    if ((have = build_row(k, f.id, &row)) >= 10)
        return have - 10;
    f.attempt = have == 1 ? num(row, "attempt", 0) : 0;
    if (f.attempt != f.attempt)
        f.attempt = 0;
    if ((rc = drain(k, &f))) {
        cJSON_Delete(row);
        return rc;
    }
    if (have != 1 && f.lines == 0) {
        log_error("no build %lld: %sno lines in build_logs", f.id,
                  have == 0 ? "no row in builds and " : "");
        return EX_FAILED;
    }
    running = have == 1 ? build_running(row) : 1;
    if (k->follow && have == -1)
        log_warn("the writer has no named query \"build\": following until interrupted");
    else if (k->follow && have == 0)
        log_warn("build %lld has no row in builds: following until interrupted", f.id);
    ended = !running;
    while (k->follow && !ended && !*k->stop) {
        struct msg *m = conn_wait(k->c, NULL, conn_now_ms() + FOLLOW_IDLE_MS, k->stop, NULL);
        int again = !m || conn_reconnects(k->c) != reconnects;
        cJSON *v, *r;

        reconnects = conn_reconnects(k->c);
        if (m && (v = cJSON_ParseWithLength(m->payload, m->len))) {
            int logs = !strcmp(m->topic, ev_logs), builds = !strcmp(m->topic, ev_builds);
            cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(v, "rows")) {
                if (logs && num(r, "build_id", NAN) == (double)f.id && num(r, "attempt", 0) == f.attempt)
                    again = 1;
                if (builds && num(r, "id", NAN) == (double)f.id && num(r, "attempt", 0) == f.attempt) {
                    again = 1;
                    if (!build_running(r)) {
                        ended = 1;
                        cJSON_Delete(row);
                        row = cJSON_Duplicate(r, 1);
                    }
                }
            }
            cJSON_Delete(v);
        }
        msg_free(m);
        if (!m && !*k->stop && have == 1) {    /* quiet for a while: the row, again */
            cJSON *now = NULL;
            int h = build_row(k, f.id, &now);
            if (h >= 10) {
                rc = h - 10;
                break;
            }
            if (h == 1 && !build_running(now)) {
                ended = 1;
                cJSON_Delete(row);
                row = now;
            } else {
                cJSON_Delete(now);
            }
        }
        if (again && !*k->stop && (rc = drain(k, &f)))
            break;
    }
    if (f.had_sgr && !k->json && isatty(1))
        printf("\x1b[0m");
    if (k->follow && ended && !rc)
        say_end(k, f.id, row);
    cJSON_Delete(row);
    return rc;
}

/* ---- query, scheduled --------------------------------------------------------------- */

static int check_query(int argc, char **argv, char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateObject();
    int i, rc = 0;

    for (i = 1; i < argc && !rc; i++)
        rc = fmt_param(p, argv[i], err, errlen);
    cJSON_Delete(p);
    return rc;
}

static int run_query(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *params = cJSON_CreateObject(), *ans;
    const cJSON *rows;
    char err[512], what[300];
    int i, rc;

    for (i = 1; i < argc; i++)
        if (fmt_param(params, argv[i], err, sizeof err)) {
            cJSON_Delete(params);
            log_error("%s", err);
            return EX_USAGE;
        }
    if ((rc = ask_query(k, argv[0], params, &ans)))
        return rc;
    rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
    if (k->json)
        fmt_json(ans);
    if (str(ans, "error")) {
        snprintf(what, sizeof what, "query %s", argv[0]);
        rc = refused(what, str(ans, "error"));
    } else if (!k->json) {
        int n = cJSON_GetArraySize(rows);
        if (n)
            fmt_table(rows, NULL);
        printf("(%d row%s%s)\n", n, n == 1 ? "" : "s",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans, "truncated")) ?
               ", truncated: the writer's query-max-rows" : "");
    }
    cJSON_Delete(ans);
    return rc;
}

static int run_scheduled(struct console *k, const struct command *cmd, int argc, char **argv)
{
    const cJSON *rows;
    cJSON *ans;
    int rc, n;
    double total;

    if ((rc = ask_query(k, "scheduled", NULL, &ans)))
        return rc;
    if (str(ans, "error")) {
        rc = refused("scheduled", str(ans, "error"));
        cJSON_Delete(ans);
        return rc;
    }
    rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
    n = cJSON_GetArraySize(rows);
    total = num(cJSON_GetArrayItem(rows, 0), "total", n);
    if (k->json) {
        fmt_json(rows);
    } else if (!n) {
        printf("nothing scheduled\n");
    } else {
        fmt_table(rows, "total");
        printf("(%.0f scheduled%s; cancel one with mosqlite cancel ID)\n", total,
               total > n ? ", the first ones shown" : "");
    }
    cJSON_Delete(ans);
    return EX_DONE;
}

/* ---- cancel ------------------------------------------------------------------------- */

static int check_id(int argc, char **argv, char *err, size_t errlen)
{
    if (!mosqlite_id_valid(argv[0]))
        return util_fail(err, errlen, "\"%s\": an ID is 1 to %d printable ASCII characters",
                         argv[0], MOSQLITE_ID_MAX);
    return 0;
}

static int run_cancel(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    char id[MOSQLITE_ID_LEN + 1], what[300];
    const char *status;
    int rc;

    if (!req || mosqlite_new_id(id)) {
        cJSON_Delete(req);
        log_error("cannot make a request id");
        return EX_FAILED;
    }
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "cancel", argv[0]);
    rc = ask(k, topic(k, "write"), req, 2, &ans);
    cJSON_Delete(req);
    if (rc == EX_NOANSWER)
        log_error("the cancel stays queued at the broker: a stopped or paused writer applies it "
                  "when it takes requests again");
    if (rc)
        return rc;
    status = str(ans, "status");
    if (k->json)
        fmt_json(ans);
    if (status && !strcmp(status, "rejected")) {
        snprintf(what, sizeof what, "cannot cancel %s", argv[0]);
        rc = refused(what, str(ans, "error"));
    } else if (!k->json) {
        printf("%s %s\n", status ? status : "answered", argv[0]);
    }
    cJSON_Delete(ans);
    return rc;
}

/* ---- cancel-build ------------------------------------------------------------------- */

/* A running build's row set to cancelled, as the page's "Cancel build" does: only while its
 * latest attempt is running. The build wrapper watches its row and stops the command. */
static int run_cancel_build(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *row = NULL, *req, *set, *where, *ans = NULL;
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
    if (!str(row, "status") || strcmp(str(row, "status"), "running")) {
        log_error("build %lld is not running (it says %s): nothing to cancel", build,
                  str(row, "status") ? str(row, "status") : "nothing");
        cJSON_Delete(row);
        return EX_FAILED;
    }
    if (!(req = cJSON_CreateObject()) || mosqlite_new_id(id)) {
        cJSON_Delete(req);
        cJSON_Delete(row);
        log_error("cannot make a request id");
        return EX_FAILED;
    }
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "table", "builds");
    cJSON_AddStringToObject(req, "op", "update");
    set = cJSON_AddObjectToObject(req, "set");
    cJSON_AddStringToObject(set, "status", "cancelled");
    where = cJSON_AddObjectToObject(req, "where");
    cJSON_AddNumberToObject(where, "id", (double)build);
    cJSON_AddNumberToObject(where, "attempt", num(row, "attempt", 0));
    cJSON_AddStringToObject(where, "status", "running");
    cJSON_Delete(row);
    rc = ask(k, topic(k, "write"), req, 2, &ans);
    cJSON_Delete(req);
    if (rc == EX_NOANSWER)
        log_error("the cancel stays queued at the broker: a stopped or paused writer applies it "
                  "when it takes requests again");
    if (rc)
        return rc;
    status = str(ans, "status");
    if (k->json)
        fmt_json(ans);
    if (status && !strcmp(status, "rejected")) {
        snprintf(what, sizeof what, "cannot cancel build %lld", build);
        rc = refused(what, str(ans, "error"));
    } else if (status && !strcmp(status, "applied") && num(ans, "changes", 1) == 0) {
        log_error("build %lld ended before the cancel reached the writer: nothing cancelled", build);
        rc = EX_FAILED;
    } else if (!k->json) {
        printf("cancelled build %lld\n", build);
    }
    cJSON_Delete(ans);
    return rc;
}

/* ---- the maintenance commands -------------------------------------------------------- */

static int check_backup(int argc, char **argv, char *err, size_t errlen)
{
    const char *s = argv[0];
    size_t n = strlen(s), i;

    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            break;
    if (!n || n > 128 || s[0] == '.' || i < n)
        return util_fail(err, errlen, "\"%s\": NAME is a plain file name (1 to 128 letters, digits, "
                         "'.', '_' or '-', not starting with '.'); the writer puts it in its backup-dir", s);
    return 0;
}

static void print_admin(const char *wire, const cJSON *a)
{
    char x[64], y[64], z[64], w[64];

    if (!strcmp(wire, "backup")) {
        char *path = fmt_term(str(a, "path") ? str(a, "path") : "?", 0, NULL);
        fmt_bytes(num(a, "bytes", 0), x, sizeof x);
        fmt_num(a, "ms", y, sizeof y);
        fmt_num(a, "steps", z, sizeof z);
        fmt_num(a, "longest_step_ms", w, sizeof w);
        printf("backup %s: %s, %s (%.0f pages), in %s ms, %s steps, the longest %s ms\n",
               str(a, "name") ? str(a, "name") : "?", path ? path : "", x, num(a, "pages", 0), y, z, w);
        free(path);
    } else if (!strcmp(wire, "checkpoint")) {
        fmt_num(a, "wal_frames", x, sizeof x);
        fmt_num(a, "checkpointed", y, sizeof y);
        fmt_num(a, "ms", z, sizeof z);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "complete")))
            printf("checkpoint: %s of %s WAL frames copied into the database, WAL truncated (%s ms)\n",
                   y, x, z);
        else
            printf("checkpoint incomplete: readers kept part of the WAL (%s of %s frames copied, "
                   "%s ms); run it again later\n", y, x, z);
    } else if (!strcmp(wire, "integrity_check")) {
        const cJSON *p;
        fmt_num(a, "ms", x, sizeof x);
        printf("integrity_check: %s (%s ms)\n", str(a, "result") ? str(a, "result") : "?", x);
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(a, "problems")) {
            char *t = fmt_cell(p);
            printf("  %s\n", t ? t : "");
            free(t);
        }
    } else if (!strcmp(wire, "optimize")) {
        fmt_num(a, "ms", x, sizeof x);
        printf("optimize: done (%s ms)\n", x);
    } else if (!strcmp(wire, "stats")) {
        cJSON *t = cJSON_CreateArray(), *r;
        const cJSON *e;
        fmt_bytes(num(a, "file_bytes", 0), x, sizeof x);
        fmt_bytes(num(a, "wal_bytes", 0), y, sizeof y);
        printf("database   %s (%.0f pages of %.0f bytes, %.0f free), WAL %s\n", x,
               num(a, "page_count", 0), num(a, "page_size", 0), num(a, "freelist_count", 0), y);
        fmt_num(a, "ids_kept", x, sizeof x);
        fmt_num(a, "rejected_kept", y, sizeof y);
        fmt_num(a, "ms", z, sizeof z);
        printf("kept       %s request ids, %s rejections\n", x, y);
        printf("paused     %s\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "paused")) ? "yes" : "no");
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(a, "tables")) {
            if ((r = cJSON_CreateObject())) {
                cJSON_AddStringToObject(r, "table", e->string);
                cJSON_AddItemToObject(r, "rows", cJSON_Duplicate(e, 1));
                cJSON_AddItemToArray(t, r);
            }
        }
        printf("\n");
        fmt_table(t, NULL);
        cJSON_Delete(t);
    } else if (!strcmp(wire, "pause")) {
        printf("paused: the writer takes no requests; they wait at the broker until mosqlite resume\n");
    } else if (!strcmp(wire, "resume")) {
        printf("resumed: the writer takes requests again\n");
    }
}

static int run_admin(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    int rc;

    if (!req)
        return EX_FAILED;
    cJSON_AddStringToObject(req, "cmd", cmd->wire);
    if (argc > 0)
        cJSON_AddStringToObject(req, "name", argv[0]);
    rc = ask(k, topic(k, "admin"), req, 1, &ans);
    cJSON_Delete(req);
    if (rc)
        return rc;
    if (k->json)
        fmt_json(ans);
    if (str(ans, "error")) {
        rc = refused(cmd->name, str(ans, "error"));
    } else {
        if (!k->json)
            print_admin(cmd->wire, ans);
        if (!strcmp(cmd->wire, "integrity_check") && str(ans, "result") && strcmp(str(ans, "result"), "ok")) {
            log_error("integrity_check found %d problem(s)",
                      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ans, "problems")));
            rc = EX_FAILED;
        }
    }
    cJSON_Delete(ans);
    return rc;
}

/* ---- replicas ------------------------------------------------------------------------ */

static int run_replicas(struct console *k, const struct command *cmd, int argc, char **argv)
{
    char err[512], filter[600], pre[600], a[64];
    cJSON *all = cJSON_CreateArray(), *table = cJSON_CreateArray();
    static const char *const cols[] = {"state", "seq", "writer_seq", "lag_commits", "lag_ms",
                                       "lag_ms_p50", "lag_ms_p99", "pending", NULL};
    struct msg *m;
    int rc, i, n = 0;

    snprintf(filter, sizeof filter, "%s/replica/+/status", k->prefix);
    snprintf(pre, sizeof pre, "%s/replica/", k->prefix);
    /* As for status: the retained statuses are in once the second SUBACK is. */
    if ((rc = conn_subscribe(k->c, filter, err, sizeof err)) ||
        (rc = conn_subscribe(k->c, k->reply, err, sizeof err))) {
        log_error("%s", err);
        goto out;
    }
    while ((m = conn_wait(k->c, NULL, conn_now_ms(), NULL, NULL))) {
        cJSON *s = cJSON_ParseWithLength(m->payload, m->len), *r, *e;
        size_t pl = strlen(pre), tl = strlen(m->topic);
        if (cJSON_IsObject(s) && !strncmp(m->topic, pre, pl) && tl > pl + 7) {
            char id[256];
            snprintf(id, sizeof id, "%.*s", (int)(tl - pl - 7), m->topic + pl);
            if (!cJSON_GetObjectItemCaseSensitive(s, "id"))
                cJSON_AddStringToObject(s, "id", id);
            if ((r = cJSON_CreateObject())) {
                cJSON_AddStringToObject(r, "replica", id);
                for (i = 0; cols[i]; i++) {
                    fmt_num(s, cols[i], a, sizeof a);
                    cJSON_AddStringToObject(r, cols[i], a);
                }
                e = cJSON_GetObjectItemCaseSensitive(s, "error");
                cJSON_AddItemToObject(r, "error", e ? cJSON_Duplicate(e, 1) : cJSON_CreateNull());
                cJSON_AddItemToArray(table, r);
            }
            cJSON_AddItemToArray(all, s);
            n++;
        } else {
            cJSON_Delete(s);
        }
        msg_free(m);
    }
    if (k->json)
        fmt_json(all);
    else if (n)
        fmt_table(table, NULL);
    else
        printf("no replica has a status on %s%s\n", filter, acl_hint(k));
out:
    cJSON_Delete(all);
    cJSON_Delete(table);
    return rc;
}

/* ---- the table ---------------------------------------------------------------------- */

const struct command commands[] = {
    {"status", 0, 0, "", "the writer's status", run_status, NULL, 0, NULL},
    {"tail", 0, -1, "[TABLE...]", "committed rows and rejections as they happen (until Ctrl-C, or --count)",
     run_tail, NULL, 0, check_tables},
    {"log", 1, 1, "BUILD", "a build's log, colours kept (-f: follow it while the build runs)",
     run_log, NULL, 1, check_build},
    {"query", 1, -1, "NAME [k=v...]", "run a named query of the writer's config (k:=JSON for exact JSON)",
     run_query, NULL, 1, check_query},
    {"backup", 1, 1, "NAME", "an online copy of the database into the writer's backup-dir",
     run_admin, "backup", 1, check_backup},
    {"checkpoint", 0, 0, "", "copy the WAL into the database and truncate it", run_admin, "checkpoint", 1, NULL},
    {"integrity", 0, 0, "", "PRAGMA integrity_check (exit 1 on problems)", run_admin, "integrity_check", 1, NULL},
    {"optimize", 0, 0, "", "PRAGMA optimize", run_admin, "optimize", 1, NULL},
    {"stats", 0, 0, "", "rows per table, file sizes, ids and rejections kept", run_admin, "stats", 1, NULL},
    {"pause", 0, 0, "", "stop taking requests (they wait at the broker)", run_admin, "pause", 1, NULL},
    {"resume", 0, 0, "", "take requests again", run_admin, "resume", 1, NULL},
    {"scheduled", 0, 0, "", "the scheduled writes waiting, the next due first", run_scheduled, NULL, 1, NULL},
    {"cancel", 1, 1, "ID", "cancel the scheduled write ID", run_cancel, NULL, 1, check_id},
    {"cancel-build", 1, 1, "BUILD", "cancel a running build (its wrapper stops the command)",
     run_cancel_build, NULL, 1, check_build},
    {"replicas", 0, 0, "", "each replica's status and lag", run_replicas, NULL, 0, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, NULL},
};

const struct command *command_find(const char *name)
{
    const struct command *c;

    for (c = commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

int command_check(const struct command *cmd, int argc, char **argv, char *err, size_t errlen)
{
    if (argc < cmd->min_args || (cmd->max_args >= 0 && argc > cmd->max_args)) {
        if (cmd->max_args == 0)
            util_fail(err, errlen, "%s takes no arguments", cmd->name);
        else
            util_fail(err, errlen, "usage: mosqlite %s %s", cmd->name, cmd->args);
        return EX_USAGE;
    }
    if (cmd->check && cmd->check(argc, argv, err, errlen))
        return EX_USAGE;
    return EX_DONE;
}
