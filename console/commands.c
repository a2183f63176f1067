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

/* ---- status ---------------------------------------------------------------------- */

static int run_status(struct console *k, const struct command *cmd, int argc, char **argv)
{
    char err[512], a[64], b[64], c[64], d[64], e[64], f[64], g[64], h[64];
    const char *st = cmd_topic(k, "status");
    struct climsg *m;
    cJSON *s;
    int rc;

    /* The retained status comes right after its SUBACK; the second SUBACK (the answer
     * topic) comes after it, so once that is in, a missing status is really missing. */
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
    s = cJSON_ParseWithLength(m->payload, m->len);
    climsg_free(m);
    if (!cJSON_IsObject(s)) {
        cJSON_Delete(s);
        log_error("the status on %s is not a JSON object", st);
        return EX_FAILED;
    }
    if (k->json) {
        fmt_json(s);
    } else {
        const cJSON *paused = cJSON_GetObjectItemCaseSensitive(s, "paused");
        const char *state = cmd_str(s, "state"), *error = cmd_str(s, "error");
        char *et = error ? fmt_term(error, 0, NULL) : NULL;

        printf("writer     %s%s\n", state ? state : "?",
               cJSON_IsTrue(paused) ? ", paused: requests wait at the broker (mosqlite resume)" : "");
        if (state && !strcmp(state, "online")) {
            fmt_num(s, "version", a, sizeof a);
            printf("since      %s, version %s\n", cmd_str(s, "since") ? cmd_str(s, "since") : "-", a);
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
    rc = cmd_str(s, "state") && !strcmp(cmd_str(s, "state"), "online") ? EX_DONE : EX_FAILED;
    if (rc)
        log_error("the writer is %s", cmd_str(s, "state") ? cmd_str(s, "state") : "in an unknown state");
    cJSON_Delete(s);
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
    if ((rc = cmd_ask_query(k, argv[0], params, &ans)))
        return rc;
    rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
    if (k->json)
        fmt_json(ans);
    if (cmd_str(ans, "error")) {
        snprintf(what, sizeof what, "query %s", argv[0]);
        rc = cmd_refused(what, cmd_str(ans, "error"));
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

    if ((rc = cmd_ask_query(k, "scheduled", NULL, &ans)))
        return rc;
    if (cmd_str(ans, "error")) {
        rc = cmd_refused("scheduled", cmd_str(ans, "error"));
        cJSON_Delete(ans);
        return rc;
    }
    rows = cJSON_GetObjectItemCaseSensitive(ans, "rows");
    n = cJSON_GetArraySize(rows);
    total = cmd_num(cJSON_GetArrayItem(rows, 0), "total", n);
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
        snprintf(what, sizeof what, "cannot cancel %s", argv[0]);
        rc = cmd_refused(what, cmd_str(ans, "error"));
    } else if (!k->json) {
        printf("%s %s\n", status ? status : "answered", argv[0]);
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
        char *path = fmt_term(cmd_str(a, "path") ? cmd_str(a, "path") : "?", 0, NULL);
        fmt_bytes(cmd_num(a, "bytes", 0), x, sizeof x);
        fmt_num(a, "ms", y, sizeof y);
        fmt_num(a, "steps", z, sizeof z);
        fmt_num(a, "longest_step_ms", w, sizeof w);
        printf("backup %s: %s, %s (%.0f pages), in %s ms, %s steps, the longest %s ms\n",
               cmd_str(a, "name") ? cmd_str(a, "name") : "?", path ? path : "", x, cmd_num(a, "pages", 0), y, z, w);
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
        printf("integrity_check: %s (%s ms)\n", cmd_str(a, "result") ? cmd_str(a, "result") : "?", x);
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
        fmt_bytes(cmd_num(a, "file_bytes", 0), x, sizeof x);
        fmt_bytes(cmd_num(a, "wal_bytes", 0), y, sizeof y);
        printf("database   %s (%.0f pages of %.0f bytes, %.0f free), WAL %s\n", x,
               cmd_num(a, "page_count", 0), cmd_num(a, "page_size", 0), cmd_num(a, "freelist_count", 0), y);
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
    rc = cmd_ask(k, cmd_topic(k, "admin"), req, 1, &ans);
    cJSON_Delete(req);
    if (rc)
        return rc;
    if (k->json)
        fmt_json(ans);
    if (cmd_str(ans, "error")) {
        rc = cmd_refused(cmd->name, cmd_str(ans, "error"));
    } else {
        if (!k->json)
            print_admin(cmd->wire, ans);
        if (!strcmp(cmd->wire, "integrity_check") && cmd_str(ans, "result") && strcmp(cmd_str(ans, "result"), "ok")) {
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
    struct climsg *m;
    int rc, i, n = 0;

    snprintf(filter, sizeof filter, "%s/replica/+/status", k->prefix);
    snprintf(pre, sizeof pre, "%s/replica/", k->prefix);
    /* As for status: the retained statuses are in once the second SUBACK is. */
    if ((rc = cliconn_subscribe(k->c, filter, err, sizeof err)) ||
        (rc = cliconn_subscribe(k->c, k->reply, err, sizeof err))) {
        log_error("%s", err);
        goto out;
    }
    while ((m = cliconn_wait(k->c, NULL, util_now_exact_ms(), NULL, NULL))) {
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
        climsg_free(m);
    }
    if (k->json)
        fmt_json(all);
    else if (n)
        fmt_table(table, NULL);
    else
        printf("no replica has a status on %s%s\n", filter, cmd_acl_hint(k));
out:
    cJSON_Delete(all);
    cJSON_Delete(table);
    return rc;
}

/* ---- the table ---------------------------------------------------------------------- */

const struct command commands[] = {
    {"status", 0, 0, "", "the writer's status", run_status, NULL, 0, NULL},
    {"tail", 0, -1, "[TABLE...]", "committed rows and rejections as they happen (until Ctrl-C, or --count)",
     cmd_run_tail, NULL, 0, cmd_check_tables},
    {"log", 1, 1, "BUILD", "a build's log, colours kept (-f: follow it while the build runs)",
     cmd_run_log, NULL, 1, cmd_check_build},
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
     cmd_run_cancel_build, NULL, 1, cmd_check_build},
    {"replicas", 0, 0, "", "each replica's status and lag", run_replicas, NULL, 0, NULL},
    {"jobs", 0, 1, "[QUEUE]", "job queues with their counts, claims waiting, running jobs",
     cmd_run_jobs, NULL, 1, cmd_check_queue},
    {"job", 1, 1, "ID", "a job and each of its attempts", cmd_run_job, NULL, 1, cmd_check_job},
    {"retry", 1, 1, "ID", "a failed, dead or cancelled job back to ready", cmd_run_job_admin, "job_retry", 1,
     cmd_check_job},
    {"discard", 1, 1, "ID", "a queued job to dead (never run)", cmd_run_job_admin, "job_discard", 1, cmd_check_job},
    {"cancel-job", 1, 1, "ID", "cancel a queued job, or stop a running one", cmd_run_job_admin, "job_cancel", 1,
     cmd_check_job},
    {"pause-queue", 1, 1, "QUEUE", "the queue grants no job (running ones go on)", cmd_run_job_admin,
     "queue_pause", 1, cmd_check_queue},
    {"resume-queue", 1, 1, "QUEUE", "the queue grants jobs again", cmd_run_job_admin, "queue_resume", 1,
     cmd_check_queue},
    {"workers", 0, 0, "", "the workers online: host, queues, slots, jobs running, last seen", cmd_run_workers,
     NULL, 1, NULL},
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
