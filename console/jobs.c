/* jobs.c: mosqlite's job commands (console.h): `jobs [QUEUE]` (the queues with their
 * counts, the claims waiting and the live leases from the writer's status, the running
 * jobs), `job ID` (a job and each of its attempts), and the job and queue commands of
 * PREFIX/admin: `retry`, `discard`, `cancel-job`, `pause-queue`, `resume-queue` (one
 * function, the protocol's name in the table's `wire`), and `workers` (the worker
 * sessions online, from the admin command of that name). The lists come from the named
 * queries of the example config (job_queues, jobs_running, job, job_attempts), read a
 * page at a time. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define PAGE 100        /* rows asked for at once */

/* ---- arguments --------------------------------------------------------------------- */

int cmd_check_job(int argc, char **argv, char *err, size_t errlen)
{
    const char *s = argv[0];
    char *end;
    long long n;

    (void)argc;
    n = strtoll(s, &end, 10);
    if (!*s || *end || s[0] == '-' || s[0] == '+' || n < 1 || n >= UTIL_EXACT_INT)
        return util_fail(err, errlen, "\"%s\": a job's id is an integer from 1 (mosqlite jobs lists them)", s);
    return 0;
}

int cmd_check_queue(int argc, char **argv, char *err, size_t errlen)
{
    const char *s = argc > 0 ? argv[0] : NULL;
    size_t n, i;

    if (!s)
        return 0;
    n = strlen(s);
    if (n < 1 || n > 128)
        return util_fail(err, errlen, "\"%s\": a queue's name is 1 to 128 bytes", s);
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '+' || s[i] == '#')
            return util_fail(err, errlen, "\"%s\": a queue's name is one MQTT topic level (no '/', '+', "
                             "'#' or control character)", s);
    if (!strcmp(s, "worker") || !strcmp(s, "to") || !strcmp(s, "events"))
        return util_fail(err, errlen, "\"%s\": that name is reserved (PREFIX/jobs/%s is not a queue)", s, s);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* The rows of a named query, every page of it: params gets "after"/"before" = the last
 * row's id (the cursor key) each time. EX_DONE with *rows (an array), or another exit
 * code (said on stderr). */
static int query_all(struct console *k, const char *name, cJSON *params, const char *cursor,
                     const char *idkey, double start, cJSON **rows)
{
    double at = start;
    char what[128];
    int rc = EX_DONE;

    *rows = cJSON_CreateArray();
    for (;;) {
        cJSON *p = cJSON_Duplicate(params, 1), *ans, *got, *r;
        int n;
        cJSON_AddNumberToObject(p, cursor, at);
        cJSON_AddNumberToObject(p, "limit", PAGE);
        if ((rc = cmd_ask_query(k, name, p, &ans)))
            break;
        if (cmd_str(ans, "error")) {
            snprintf(what, sizeof what, "query %s", name);
            rc = cmd_refused(what, cmd_str(ans, "error"));
            cJSON_Delete(ans);
            break;
        }
        got = cJSON_DetachItemFromObjectCaseSensitive(ans, "rows");
        cJSON_Delete(ans);
        n = cJSON_GetArraySize(got);
        while ((r = cJSON_DetachItemFromArray(got, 0))) {
            at = cmd_num(r, idkey, at);
            cJSON_AddItemToArray(*rows, r);
        }
        cJSON_Delete(got);
        if (n < PAGE)
            break;
    }
    if (rc) {
        cJSON_Delete(*rows);
        *rows = NULL;
    }
    return rc;
}

/* "2026-11-24T23:39:18.120Z" as milliseconds since the epoch; -1 if it is not one. */
static double iso_ms(const char *s)
{
    struct tm tm;
    int ms = 0;

    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) * 1000.0 + ms;
}

/* A span of time as "42 s", "3 min 05 s", "2 h 07 min". */
static void fmt_span(double ms, char *out, size_t len)
{
    long long s = ms < 0 ? 0 : (long long)(ms / 1000 + 0.5);

    if (s < 60)
        snprintf(out, len, "%lld s", s);
    else if (s < 3600)
        snprintf(out, len, "%lld min %02lld s", s / 60, s % 60);
    else
        snprintf(out, len, "%lld h %02lld min", s / 3600, (s % 3600) / 60);
}

/* ---- jobs [QUEUE] ---------------------------------------------------------------------- */

/* The retained status: EX_DONE with *status, or EX_NOANSWER/... said on stderr. */
static int read_status(struct console *k, cJSON **status)
{
    char err[512];
    const char *st = cmd_topic(k, "status");
    struct climsg *m;
    int rc;

    *status = NULL;
    /* The retained status comes before the SUBACK of the next subscription. */
    if ((rc = cliconn_subscribe(k->c, st, err, sizeof err)) ||
        (rc = cliconn_subscribe(k->c, k->reply, err, sizeof err))) {
        log_error("%s", err);
        return rc;
    }
    if (!(m = cliconn_wait(k->c, st, util_now_exact_ms(), NULL, NULL))) {
        log_error("no status on %s: no mosqlite-writer has run on this broker with prefix \"%s\"%s",
                  st, k->prefix, cmd_acl_hint(k));
        return EX_NOANSWER;
    }
    *status = cJSON_ParseWithLength(m->payload, m->len);
    climsg_free(m);
    if (!cJSON_IsObject(*status)) {
        cJSON_Delete(*status);
        *status = NULL;
        log_error("the status on %s is not a JSON object", st);
        return EX_FAILED;
    }
    return EX_DONE;
}

/* The claims waiting and live leases (from the status), and the workers holding jobs:
 * the distinct names among the running jobs. */
static void print_workers(const cJSON *status, const cJSON *running)
{
    cJSON *names = cJSON_CreateArray(), *w;
    const cJSON *r;

    cJSON_ArrayForEach(r, running) {
        const char *name = cmd_str(r, "worker");
        int seen = 0;
        cJSON_ArrayForEach(w, names)
            seen |= !strcmp(w->valuestring, name ? name : "");
        if (name && !seen)
            cJSON_AddItemToArray(names, cJSON_CreateString(name));
    }
    printf("\nclaims waiting %.0f, live leases %.0f", cmd_num(status, "job_waiting", 0),
           cmd_num(status, "job_leases", 0));
    cJSON_ArrayForEach(w, names) {
        char *t = fmt_term(w->valuestring, 0, NULL);
        printf("%s%s", w == names->child ? "; workers running jobs: " : ", ", t ? t : "");
        free(t);
    }
    printf("\n");
    cJSON_Delete(names);
}

/* The running jobs (of queue, "" for all) with the time each has run, without payloads. */
static void print_running(cJSON *running, const char *queue)
{
    cJSON *r;

    if (cJSON_GetArraySize(running)) {
        double now = (double)time(NULL) * 1000.0;
        char el[64];
        cJSON_ArrayForEach(r, running) {
            double t0 = iso_ms(cmd_str(r, "started_at"));
            if (t0 >= 0)
                fmt_span(now - t0, el, sizeof el);
            else
                snprintf(el, sizeof el, "-");
            cJSON_AddStringToObject(r, "elapsed", el);
            cJSON_DeleteItemFromObjectCaseSensitive(r, "payload");
        }
        printf("\nrunning\n");
        fmt_table(running, NULL);
    } else {
        printf("\nno job running%s%s\n", *queue ? " in " : "", *queue ? "that queue" : "");
    }
}

int cmd_run_jobs(struct console *k, const struct command *cmd, int argc, char **argv)
{
    const char *queue = argc > 0 ? argv[0] : "";
    cJSON *status = NULL, *queues = NULL, *running = NULL, *params = NULL, *ans = NULL, *r, *next;
    const cJSON *st;
    int rc, n;

    (void)cmd;
    if ((rc = read_status(k, &status)))
        return rc;
    st = cJSON_GetObjectItemCaseSensitive(status, "state");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "online")) {
        log_error("the writer is %s", cJSON_IsString(st) ? st->valuestring : "in an unknown state");
        cJSON_Delete(status);
        return EX_FAILED;
    }
    if ((rc = cmd_ask_query(k, "job_queues", NULL, &ans)))
        goto out;
    if (cmd_str(ans, "error")) {
        rc = cmd_refused("query job_queues", cmd_str(ans, "error"));
        goto out;
    }
    queues = cJSON_DetachItemFromObjectCaseSensitive(ans, "rows");
    if (*queue) {       /* that queue alone */
        for (r = queues ? queues->child : NULL; r; r = next) {
            next = r->next;
            if (!cmd_str(r, "queue") || strcmp(cmd_str(r, "queue"), queue))
                cJSON_Delete(cJSON_DetachItemViaPointer(queues, r));
        }
        if (!cJSON_GetArraySize(queues)) {
            char *t = fmt_term(queue, 0, NULL);
            log_error("no queue \"%s\": a queue exists once a job was enqueued into it or it was paused", t ? t : "");
            free(t);
            rc = EX_FAILED;
            goto out;
        }
    }
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "queue", queue);
    if ((rc = query_all(k, "jobs_running", params, "after", "id", 0, &running)))
        goto out;
    if (k->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "queues", queues);
        cJSON_AddNumberToObject(o, "job_waiting", cmd_num(status, "job_waiting", 0));
        cJSON_AddNumberToObject(o, "job_leases", cmd_num(status, "job_leases", 0));
        cJSON_AddItemToObject(o, "running", running);
        queues = running = NULL;
        fmt_json(o);
        cJSON_Delete(o);
        goto out;
    }
    if ((n = cJSON_GetArraySize(queues)))
        fmt_table(queues, NULL);
    else
        printf("no job queue yet: a queue appears with its first job\n");
    if (!*queue)
        print_workers(status, running);
    print_running(running, queue);
out:
    cJSON_Delete(ans);
    cJSON_Delete(params);
    cJSON_Delete(queues);
    cJSON_Delete(running);
    cJSON_Delete(status);
    return rc;
}

/* ---- job ID ---------------------------------------------------------------------------- */

int cmd_run_job(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *params = cJSON_CreateObject(), *ans = NULL, *job, *attempts = NULL, *f;
    double id = strtod(argv[0], NULL);
    int rc, i, n;

    (void)cmd, (void)argc;
    cJSON_AddNumberToObject(params, "id", id);
    rc = cmd_ask_query(k, "job", params, &ans);
    params = NULL;      /* taken */
    if (rc)
        return rc;
    if (cmd_str(ans, "error")) {
        rc = cmd_refused("query job", cmd_str(ans, "error"));
        goto out;
    }
    job = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ans, "rows"), 0);
    if (!cJSON_IsObject(job)) {
        log_error("no job %s", argv[0]);
        rc = EX_FAILED;
        goto out;
    }
    params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "job", id);
    rc = query_all(k, "job_attempts", params, "before", "attempt", UTIL_EXACT_INT - 1, &attempts);
    cJSON_Delete(params);
    params = NULL;
    if (rc)
        goto out;
    /* oldest first */
    n = cJSON_GetArraySize(attempts);
    for (i = 0; i < n / 2; i++) {
        cJSON *a = cJSON_GetArrayItem(attempts, i), *b = cJSON_GetArrayItem(attempts, n - 1 - i);
        cJSON *ca = cJSON_Duplicate(a, 1), *cb = cJSON_Duplicate(b, 1);
        cJSON_ReplaceItemInArray(attempts, i, cb);
        cJSON_ReplaceItemInArray(attempts, n - 1 - i, ca);
    }
    if (k->json) {
        cJSON_AddItemToObject(job, "attempts", attempts);
        attempts = NULL;
        fmt_json(job);
        goto out;
    }
    cJSON_ArrayForEach(f, job) {
        char *t;
        if (cJSON_IsNull(f))
            continue;
        t = fmt_cell(f);
        printf("%-15s %s\n", f->string, t ? t : "");
        free(t);
    }
    if (n) {
        printf("\nattempts\n");
        fmt_table(attempts, "job");
    } else {
        printf("\nno attempt yet\n");
    }
out:
    cJSON_Delete(params);
    cJSON_Delete(attempts);
    cJSON_Delete(ans);
    return rc;
}

/* ---- retry, discard, cancel-job, pause-queue, resume-queue ------------------------------ */

int cmd_run_job_admin(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    int queue = !strncmp(cmd->wire, "queue_", 6), rc;
    char what[300], *t;

    (void)argc;
    if (!req)
        return EX_FAILED;
    cJSON_AddStringToObject(req, "cmd", cmd->wire);
    if (queue)
        cJSON_AddStringToObject(req, "queue", argv[0]);
    else
        cJSON_AddNumberToObject(req, "job", strtod(argv[0], NULL));
    rc = cmd_ask(k, cmd_topic(k, "admin"), req, 1, &ans);
    cJSON_Delete(req);
    if (rc)
        return rc;
    if (k->json)
        fmt_json(ans);
    t = fmt_term(argv[0], 0, NULL);
    if (cmd_str(ans, "error")) {
        snprintf(what, sizeof what, "%s %s", cmd->name, t ? t : "");
        rc = cmd_refused(what, cmd_str(ans, "error"));
    } else if (!k->json) {
        const char *state = cmd_str(ans, "state");
        if (!strcmp(cmd->wire, "queue_pause"))
            printf("queue %s paused: it grants nothing; its running jobs go on (mosqlite resume-queue %s)\n",
                   t, t);
        else if (!strcmp(cmd->wire, "queue_resume"))
            printf("queue %s resumed: it grants jobs again\n", t);
        else if (!strcmp(cmd->wire, "job_cancel") && state && !strcmp(state, "running"))
            printf("job %s: cancel asked; its worker is told to stop it (running until it does)\n", t);
        else
            printf("job %s %s: %s\n", t,
                   !strcmp(cmd->wire, "job_retry") ? "retried" :
                   !strcmp(cmd->wire, "job_discard") ? "discarded" : "cancelled", state ? state : "?");
    }
    free(t);
    cJSON_Delete(ans);
    return rc;
}

/* ---- workers ----------------------------------------------------------------------------- */

#define WORKERS_ASKED 1000      /* sessions asked for (the writer's most in one answer) */

/* One session as a row of the table: queues joined, last seen as "3 s ago". */
static cJSON *worker_row(const cJSON *w)
{
    cJSON *row = cJSON_CreateObject(), *q;
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(w, "queues");
    char buf[1024] = "", span[64];
    size_t n = 0;

    cJSON_AddItemToObject(row, "worker", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "worker"), 1));
    cJSON_AddItemToObject(row, "host", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "host"), 1));
    cJSON_ArrayForEach(q, qs)
        if (cJSON_IsString(q) && n < sizeof buf)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? "," : "", q->valuestring);
    cJSON_AddStringToObject(row, "queues", buf);
    cJSON_AddItemToObject(row, "slots", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "slots"), 1));
    cJSON_AddItemToObject(row, "running", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "running"), 1));
    fmt_span(cmd_num(w, "idle_ms", 0), span, sizeof span);
    snprintf(buf, sizeof buf, "%s ago", span);
    cJSON_AddStringToObject(row, "last_seen", buf);
    cJSON_AddItemToObject(row, "since", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "since"), 1));
    cJSON_AddItemToObject(row, "session", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w, "session"), 1));
    return row;
}

int cmd_run_workers(struct console *k, const struct command *cmd, int argc, char **argv)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL, *rows, *w;
    const cJSON *list;
    int rc;

    (void)cmd, (void)argc, (void)argv;
    if (!req)
        return EX_FAILED;
    cJSON_AddStringToObject(req, "cmd", "workers");
    cJSON_AddNumberToObject(req, "limit", WORKERS_ASKED);
    rc = cmd_ask(k, cmd_topic(k, "admin"), req, 1, &ans);
    cJSON_Delete(req);
    if (rc)
        return rc;
    list = cJSON_GetObjectItemCaseSensitive(ans, "workers");
    if (cmd_str(ans, "error")) {
        rc = cmd_refused("workers", cmd_str(ans, "error"));
    } else if (!cJSON_IsArray(list)) {
        log_error("the writer's answer to workers has no list");
        rc = EX_FAILED;
    } else if (k->json) {
        fmt_json(ans);
    } else if (!cJSON_GetArraySize(list)) {
        printf("no worker online\n");
    } else {
        rows = cJSON_CreateArray();
        cJSON_ArrayForEach(w, list)
            cJSON_AddItemToArray(rows, worker_row(w));
        printf("%.0f worker session%s online", cmd_num(ans, "count", 0), cmd_num(ans, "count", 0) == 1 ? "" : "s");
        if (cmd_num(ans, "count", 0) > cJSON_GetArraySize(list))
            printf(" (the first %d shown)", cJSON_GetArraySize(list));
        printf("\n");
        fmt_table(rows, NULL);
        cJSON_Delete(rows);
    }
    cJSON_Delete(ans);
    return rc;
}
