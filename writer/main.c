/* main.c: mosqlite-writer, the only process that writes the SQLite file.
 *
 * Here the parts are wired together: the configuration (one table for the command
 * line and the config file), then writer_open (the database, the named queries, both
 * broker connections, the batch), writer_serve (the loop: poll the connections, run a
 * batch when requests are queued, keep the status current, prune now and then) and
 * writer_shut_down. A request's own way through the writer is in the other files:
 * README.md in this directory lists them in order.
 *
 * Signals only set a flag. On SIGTERM/SIGINT the writer stops taking requests,
 * commits what it holds, publishes the offline status and disconnects. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "batch.h"
#include "cfg.h"
#include "changes.h"
#include "ctl.h"
#include "db.h"
#include "hook.h"
#include "jbuf.h"
#include "log.h"
#include "maint.h"
#include "mq.h"
#include "query.h"
#include "sched.h"
#include "jobq.h"
#include "snapshot.h"
#include "util.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

#define EXIT_BAD_ARGS        3        /* as mosqlite-pub: bad arguments or config */
#define POLL_MAX_MS          1000     /* longest wait in the loop when idle */
#define PRUNE_EVERY_MS       (3600 * 1000)
#define QUIESCE_MS           2000     /* shutdown: to read what the broker has sent */
#define SHUTDOWN_APPLY_MS    5000     /* shutdown: to apply what is held */
#define SHUTDOWN_RETRY_MS    50       /* shutdown: poll between retries of a stalled batch */
#define FLUSH_MS             2000     /* shutdown: to send the offline status */
#define HOOK_GRACE_MS        2000     /* shutdown: for hook commands still running */

static volatile sig_atomic_t stop_requested;

static struct {
    const char *host, *prefix, *username, *password, *cafile, *config, *db, *schema, *client_id;
    const char *synchronous;
    long long port, max_payload, max_depth, max_ops, batch_max, batch_ms, events_qos;
    long long query_max_rows, query_timeout_ms, status_interval, keepalive, busy_timeout_ms;
    long long id_ttl_days, rejected_keep, max_event_rows, receive_max;
    const char *request_protocol;
    long long changes_qos;            /* replication: QoS of PREFIX/changes */
    int verbose;
    struct cfg_list tables, queries;
    struct cfg_list hooks;
    long long hook_max, hook_timeout_ms, hook_queue;
    const char *backup_dir;
    long long backup_step_pages;
    long long schedule_max;
} cf = {
    .hook_max = 4, .hook_timeout_ms = 10000, .hook_queue = 1000, .backup_step_pages = 256, .schedule_max = 100000,
    .host = "127.0.0.1", .prefix = "mosqlite", .db = "data/mosqlite.db",
    .schema = "conf/schema", .client_id = "mosqlite-writer", .synchronous = "FULL",
    .port = 1883, .max_payload = 262144, .max_depth = 32, .max_ops = 1000,
    .batch_max = 5000, .batch_ms = 50, .events_qos = 0, .query_max_rows = 5000,
    .query_timeout_ms = 200, .status_interval = 2, .keepalive = 30, .busy_timeout_ms = 100,
    .id_ttl_days = 7, .rejected_keep = 10000, .max_event_rows = 100, .receive_max = 65535, .request_protocol = "3.1.1",
    .changes_qos = 1,
};

static const struct cfg_opt options[] = {
    CFG_BROKER_OPTIONS(cf),
    {"db", 0, CFG_STR, &cf.db, 0, 0, 0, "PATH", "SQLite file (data/mosqlite.db)"},
    {"schema", 0, CFG_STR, &cf.schema, 0, 0, 0, "DIR", "migrations NNN_name.sql (conf/schema)"},
    {"client-id", 0, CFG_STR, &cf.client_id, 0, 0, 0, "ID", "MQTT client id of the persistent session (mosqlite-writer)"},
    {"tables", 0, CFG_LIST, &cf.tables, 0, 0, CFG_FILE_ONLY, "T...", "writable tables (default all)"},
    {"query", 0, CFG_LIST, &cf.queries, 0, 0, CFG_FILE_ONLY, "NAME SQL", "a named read query"},
    {"synchronous", 0, CFG_STR, &cf.synchronous, 0, 0, 0, "MODE", "SQLite synchronous: FULL, NORMAL or OFF (FULL)"},
    {"max-payload", 0, CFG_INT, &cf.max_payload, 64, 256LL << 20, 0, "BYTES", "largest request (262144)"},
    {"max-depth", 0, CFG_INT, &cf.max_depth, 2, 1000, 0, "N", "deepest JSON nesting (32)"},
    {"max-ops", 0, CFG_INT, &cf.max_ops, 1, 100000, 0, "N", "most ops in one transaction (1000)"},
    {"batch-max", 0, CFG_INT, &cf.batch_max, 1, 1000000, 0, "N", "most requests in one commit (5000)"},
    {"batch-ms", 0, CFG_INT, &cf.batch_ms, 0, 60000, 0, "MS", "longest a batch stays open (50)"},
    {"events-qos", 0, CFG_INT, &cf.events_qos, 0, 2, 0, "QOS", "QoS of events (0)"},
    {"max-event-rows", 0, CFG_INT, &cf.max_event_rows, 1, 100000, 0, "N", "rows in one event (100)"},
    {"query-max-rows", 0, CFG_INT, &cf.query_max_rows, 1, 10000000, 0, "N", "rows a query returns (5000)"},
    {"query-timeout-ms", 0, CFG_INT, &cf.query_timeout_ms, 1, 600000, 0, "MS", "time cap of a query (200)"},
    {"status-interval", 0, CFG_INT, &cf.status_interval, 1, 3600, 0, "S", "status period while counters change (2)"},
    {"request-protocol", 0, CFG_STR, &cf.request_protocol, 0, 0, 0, "V", "MQTT version of the request session: 3.1.1 or 5 (3.1.1)"},
    {"receive-max", 0, CFG_INT, &cf.receive_max, 1, 65535, 0, "N", "MQTT 5: requests the broker may have in flight to the writer (65535)"},
    {"keepalive", 0, CFG_INT, &cf.keepalive, 5, 65535, 0, "S", "MQTT keepalive (30)"},
    {"busy-timeout-ms", 0, CFG_INT, &cf.busy_timeout_ms, 0, 600000, 0, "MS", "wait on an outside lock before backing off (100)"},
    {"id-ttl-days", 0, CFG_INT, &cf.id_ttl_days, 7, 36500, 0, "DAYS", "keep applied ids this long (7)"},
    {"rejected-keep", 0, CFG_INT, &cf.rejected_keep, 0, 100000000, 0, "N", "rows kept in mosqlite_rejected (10000)"},
    {"changes-qos", 0, CFG_INT, &cf.changes_qos, 1, 2, 0, "QOS", "QoS of PREFIX/changes for replicas (1)"},
    {"hook", 0, CFG_LIST, &cf.hooks, 0, 0, CFG_FILE_ONLY, "TABLE OP CMD...", "run CMD after each commit that changed TABLE by OP"},
    {"hook-max", 0, CFG_INT, &cf.hook_max, 1, 1000, 0, "N", "hook commands running at once (4)"},
    {"hook-timeout-ms", 0, CFG_INT, &cf.hook_timeout_ms, 1, 86400000, 0, "MS", "a hook command is killed after this (10000)"},
    {"hook-queue", 0, CFG_INT, &cf.hook_queue, 0, 10000000, 0, "N", "hook runs waiting for a slot; more are dropped (1000)"},
    {"schedule-max", 0, CFG_INT, &cf.schedule_max, 0, 100000000, 0, "N", "scheduled writes held at once; more are rejected (100000)"},
    {"backup-dir", 0, CFG_STR, &cf.backup_dir, 0, 0, 0, "DIR", "where admin backups go (unset: backups refused)"},
    {"backup-step-pages", 0, CFG_INT, &cf.backup_step_pages, 1, 1000000, 0, "N", "pages a backup copies between batches (256)"},
    {"verbose", 'v', CFG_FLAG, &cf.verbose, 0, 0, 0, "", "log debug lines"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char usage[] =
    "Usage: mosqlite-writer [options]\n"
    "Applies write requests published on PREFIX/write/TABLE and PREFIX/write to one\n"
    "SQLite file, and republishes events, receipts, rejections and its status.\n"
    "The protocol (topics, requests, receipts, status, exit codes): docs/PROTOCOL.md.";

/* Runtime state. */
static struct {
    struct db *db;
    struct mq *mq;
    struct queries *queries;
    struct batch *batch;
    struct changes *changes;       /* replication: changesets, sequence (changes.h) */
    struct snapshot *snap;         /* replication: snapshots for replicas (snapshot.h) */
    struct ctl *ctl;               /* the door for control messages (ctl.h) */
    struct ctl_limits ctl_lim;
    int snap_busy;                 /* a snapshot is being made or sent */
    struct hooks *hooks;
    struct maint *maint;
    struct sched *sched;           /* scheduled writes (sched.h) */
    struct jobq *jobq;             /* the job queue (jobq.h) */
    char *t_hooks;                 /* PREFIX/hooks */
    struct cfg_list tables;        /* `tables` split into names */
    long long last_prune_ms;
} w;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* A hook that failed, timed out or was dropped: PREFIX/hooks. */
static void on_hook_report(void *ud, const char *json, size_t len)
{
    (void)ud;
    if (w.t_hooks)
        mq_publish(w.mq, w.t_hooks, json, len, 1, 0, NULL, 0);
}

/* `tables a b c` may be given on one line or several. */
static void split_tables(struct cfg_list *out)
{
    size_t i;

    for (i = 0; i < cf.tables.n; i++) {
        char *s = cf.tables.items[i], *tok, *save = NULL;
        for (tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            char **n = realloc(out->items, (out->n + 1) * sizeof *n);
            if (!n)
                return;
            out->items = n;
            out->items[out->n++] = tok;
        }
    }
}

/* origin_of: "file:line: " where the config file set KEY, or "" (command line, default). */
static const char *origin_of(const char *key)
{
    static char buf[512];
    const char *o = cfg_origin(key);

    if (!o)
        return "";
    snprintf(buf, sizeof buf, "%s: ", o);
    return buf;
}

/* The command line and config file. 0, or -1 to exit with *exit_code: 0 after --help,
 * EXIT_BAD_ARGS on error. */
static int open_config(int argc, char **argv, int *exit_code)
{
    char err[1024];
    int npos, rc;

    rc = cfg_parse_args(options, argc, argv, &npos, usage, err, sizeof err);
    *exit_code = rc < 0 ? EXIT_BAD_ARGS : 0;
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "mosqlite-writer: %s\n", err);
        return -1;
    }
    *exit_code = EXIT_BAD_ARGS;
    if (npos) {
        fprintf(stderr, "mosqlite-writer: unexpected argument \"%s\" (try --help)\n", argv[1]);
        return -1;
    }
    if (strcasecmp(cf.synchronous, "FULL") && strcasecmp(cf.synchronous, "NORMAL") &&
        strcasecmp(cf.synchronous, "OFF") && strcasecmp(cf.synchronous, "EXTRA")) {
        fprintf(stderr, "mosqlite-writer: %ssynchronous: \"%s\" is not FULL, NORMAL, OFF or EXTRA\n",
                origin_of("synchronous"), cf.synchronous);
        return -1;
    }
    if (strcmp(cf.request_protocol, "3.1.1") && strcmp(cf.request_protocol, "5")) {
        fprintf(stderr, "mosqlite-writer: %srequest-protocol: \"%s\" is not 3.1.1 or 5\n",
                origin_of("request-protocol"), cf.request_protocol);
        return -1;
    }
    /* hook and query lines: checked before the database is opened */
    if (hook_check(&cf.hooks, err, sizeof err) || query_check(&cf.queries, err, sizeof err)) {
        fprintf(stderr, "mosqlite-writer: %s\n", err);
        return -1;
    }
    *exit_code = 0;
    return 0;
}

/* The database and the named queries. */
static int open_db(char *err, size_t errlen)
{
    struct db_opts dbo;

    memset(&dbo, 0, sizeof dbo);
    dbo.path = cf.db;
    dbo.schema_dir = cf.schema;
    dbo.synchronous = cf.synchronous;
    dbo.tables = &w.tables;
    dbo.busy_timeout_ms = cf.busy_timeout_ms;
    dbo.id_ttl_days = cf.id_ttl_days;
    dbo.rejected_keep = cf.rejected_keep;
    dbo.max_event_rows = cf.max_event_rows;
    if (!(w.db = db_open(&dbo, err, errlen))) {
        /* An unknown table in `tables`: name the config line. */
        if (!strncmp(err, "tables: ", 8) && cfg_origin("tables")) {
            char *tmp = strdup(err);
            if (tmp) {
                snprintf(err, errlen, "%s: %s", cfg_origin("tables"), tmp);
                free(tmp);
            }
        }
        return -1;
    }
    /* The job tables, before the named queries are checked: they may read them. */
    if (jobq_create_tables(w.db, err, errlen) != DB_OK)
        return -1;
    /* Replication: before anything commits (the prune at start included). */
    if (!(w.changes = changes_new(w.db, cf.prefix, (int)cf.changes_qos, err, errlen)))
        return -1;
    if (cf.queries.n && !(w.queries = query_open(cf.db, &cf.queries, cf.query_max_rows,
                                                 cf.query_timeout_ms, err, errlen)))
        return -1;
    return 0;
}

/* Maintenance commands on PREFIX/admin (see maint.h). */
static int open_maint(char *err, size_t errlen)
{
    struct maint_opts mo;

    memset(&mo, 0, sizeof mo);
    mo.db_path = cf.db;
    mo.h = db_handle(w.db);
    mo.schema = db_schema(w.db);
    mo.backup_dir = cf.backup_dir;
    mo.step_pages = cf.backup_step_pages;
    mo.busy_timeout_ms = cf.busy_timeout_ms;
    mo.mq = w.mq;
    mo.batch = w.batch;
    if (!(w.maint = maint_new(&mo))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Both broker connections (see mq.h), and the batch that applies what they bring. */
static int open_mq(char *err, size_t errlen)
{
    struct mq_opts mqo;
    struct batch_opts bo;
    struct ctl_parts parts;

    mosquitto_lib_init();
    memset(&mqo, 0, sizeof mqo);
    mqo.host = cf.host;
    mqo.port = (int)cf.port;
    mqo.username = cf.username;
    mqo.password = cf.password;
    mqo.cafile = cf.cafile;
    mqo.client_id = cf.client_id;
    mqo.prefix = cf.prefix;
    mqo.keepalive = (int)cf.keepalive;
    mqo.max_queue = (size_t)cf.batch_max;
    mqo.receive_max = (int)cf.receive_max;
    mqo.request_proto = !strcmp(cf.request_protocol, "5") ? MQ_PROTO_5 : MQ_PROTO_311;
    mqo.app_size = sizeof(struct outcome);
    /* Control messages (queries, commands, snapshot requests) come through one door. */
    w.ctl_lim.max_payload = (size_t)cf.max_payload;
    w.ctl_lim.max_depth = (int)cf.max_depth;
    w.ctl_lim.prefix = cf.prefix;
    if (!(w.ctl = ctl_new(&w.ctl_lim))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(w.mq = mq_new(&mqo, "{\"state\":\"offline\"}", ctl_receive, w.ctl, err, errlen)))
        return -1;
    /* Replication: snapshots asked for on PREFIX/snapshot. */
    if (!(w.snap = snapshot_new(cf.db, w.mq))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(&bo, 0, sizeof bo);
    bo.prefix = cf.prefix;
    bo.lim.max_payload = (size_t)cf.max_payload;
    bo.lim.max_depth = (int)cf.max_depth;
    bo.lim.max_ops = (int)cf.max_ops;
    bo.lim.prefix = cf.prefix;
    bo.max = (size_t)cf.batch_max;
    bo.ms = cf.batch_ms;
    bo.events_qos = (int)cf.events_qos;
    bo.stop = &stop_requested;
    bo.changes = w.changes;
    if (!(w.t_hooks = util_join(cf.prefix, "/hooks")) ||
        !(w.hooks = hook_new(&cf.hooks, (int)cf.hook_max, cf.hook_timeout_ms, (int)cf.hook_queue,
                             on_hook_report, NULL, err, errlen)))
        return -1;
    bo.hooks = cf.hooks.n ? w.hooks : NULL;
    if (!(w.sched = sched_new(w.db, w.mq, (size_t)cf.batch_max, cf.schedule_max, err, errlen)))
        return -1;
    bo.sched = w.sched;
    if (!(w.jobq = jobq_new(w.db, w.mq, cf.prefix, &bo.lim, err, errlen)))
        return -1;
    bo.jobq = w.jobq;
    if (!(w.batch = batch_new(w.db, w.mq, &bo))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (open_maint(err, errlen))
        return -1;
    parts.queries = w.queries;
    parts.maint = w.maint;
    parts.snap = w.snap;
    parts.jobq = w.jobq;
    if (ctl_open(w.ctl, w.mq, &parts)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Everything the writer needs before it serves. 0, or -1 to exit with *exit_code
 * (0 after --help or --version). */
static int writer_open(int argc, char **argv, int *exit_code)
{
    char err[1024];
    struct sigaction sa;

    if (open_config(argc, argv, exit_code))
        return -1;
    log_init("mosqlite-writer", cf.verbose ? LOG_DEBUG : LOG_INFO);
    split_tables(&w.tables);
    if (open_db(err, sizeof err) || open_mq(err, sizeof err)) {
        log_error("%s", err);
        *exit_code = 1;
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (db_prune(w.db, err, sizeof err) != DB_OK)
        log_warn("%s", err);
    w.last_prune_ms = util_now_ms();
    log_info("version %s: %s, schema %s, %d tables, broker %s:%lld, prefix %s", MOSQLITE_VERSION,
             cf.db, cf.schema, db_schema(w.db)->ntables, cf.host, cf.port, cf.prefix);
    return 0;
}

/* How long the loop may wait: not at all with requests to apply, until the retry
 * when stalled, else up to POLL_MAX_MS. */
static int poll_timeout(long long now)
{
    long long retry_at;
    int stalled = batch_stalled(w.batch, &retry_at);

    if ((mq_queued(w.mq) && !stalled) || w.snap_busy)
        return 0;
    if (!stalled)
        return jobq_wait_ms(w.jobq, sched_wait_ms(w.sched, maint_wait_ms(w.maint, hook_wait_ms(w.hooks,
                            POLL_MAX_MS)), maint_paused(w.maint)));
    if (retry_at <= now)
        return 0;
    return (int)(retry_at - now < POLL_MAX_MS ? retry_at - now : POLL_MAX_MS);
}

/* The loop, until a signal: poll, apply what is queued, keep the status current,
 * prune now and then. */
static void writer_serve(void)
{
    char err[1024];
    long long retry_at;

    while (!stop_requested && !mq_taken_over(w.mq)) {
        long long now;

        mq_poll(w.mq, poll_timeout(util_now_ms()));
        if (mq_ctl_connected(w.mq))
            batch_status(w.batch, "online");
        hook_tick(w.hooks);
        if (stop_requested)
            break;
        now = util_now_ms();
        sched_tick(w.sched, maint_paused(w.maint));
        jobq_tick(w.jobq);
        if (batch_due(w.batch, now))
            batch_run(w.batch);
        maint_tick(w.maint);
        batch_status_due(w.batch, now, cf.status_interval * 1000);
        w.snap_busy = snapshot_step(w.snap);
        if (!batch_stalled(w.batch, &retry_at) && now - w.last_prune_ms >= PRUNE_EVERY_MS) {
            if (db_prune(w.db, err, sizeof err) != DB_OK)
                log_warn("%s", err);
            w.last_prune_ms = now;
        }
    }
}

/* Take nothing more, commit what is held, say offline, disconnect. The exit code. */
static int writer_shut_down(void)
{
    const struct out_stats *st = batch_stats(w.batch);
    long long give_up;
    int exit_code = 0;

    mq_quiesce(w.mq, QUIESCE_MS);
    log_info("stopping: %zu requests in hand", mq_queued(w.mq));
    give_up = util_now_ms() + SHUTDOWN_APPLY_MS;
    while (mq_queued(w.mq) && util_now_ms() < give_up) {
        if (batch_due(w.batch, util_now_ms()))
            batch_run(w.batch);
        else
            mq_poll(w.mq, SHUTDOWN_RETRY_MS);
    }
    if (mq_queued(w.mq)) {
        log_error("exiting with %zu requests not applied: %s", mq_queued(w.mq), batch_error(w.batch));
        exit_code = 1;
    }
    give_up = util_now_ms() + HOOK_GRACE_MS;
    while ((hook_running(w.hooks) || hook_queued(w.hooks)) && util_now_ms() < give_up) {
        mq_poll(w.mq, hook_wait_ms(w.hooks, SHUTDOWN_RETRY_MS));
        hook_tick(w.hooks);
    }
    if (hook_running(w.hooks) || hook_queued(w.hooks))
        log_warn("stopping: killing %d hook commands, %d more not started",
                 hook_running(w.hooks), hook_queued(w.hooks));
    if (mq_taken_over(w.mq)) {
        /* Another writer has our client id: its status is the one that counts. */
        log_error("exiting: client id %s is taken by another client", cf.client_id);
        return 1;
    }
    batch_status(w.batch, "offline");
    mq_flush(w.mq, FLUSH_MS);
    log_info("stopped: %lld applied, %lld rejected, %lld duplicates, %lld commits",
             st->applied, st->rejected, st->duplicates, st->commits);
    return exit_code;
}

/* Free everything writer_open made, whatever step it reached. */
static void writer_free(void)
{
    batch_free(w.batch);
    snapshot_free(w.snap);
    hook_free(w.hooks);
    maint_free(w.maint);
    sched_free(w.sched);
    jobq_free(w.jobq);
    free(w.t_hooks);
    if (w.mq) {
        mq_free(w.mq);
        mosquitto_lib_cleanup();
    }
    query_close(w.queries);
    ctl_free(w.ctl);
    changes_free(w.changes);
    db_close(w.db);
    free(w.tables.items);
    cfg_free(options);
}

int main(int argc, char **argv)
{
    int exit_code = 0;

    if (!writer_open(argc, argv, &exit_code)) {
        writer_serve();
        exit_code = writer_shut_down();
    }
    writer_free();
    return exit_code;
}
