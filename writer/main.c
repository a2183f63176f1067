/* main.c: mosqlite-writer, the only process that writes the SQLite file.
 *
 * Here the parts are wired together: the configuration (config.c: one table for the
 * command line and the config file), then writer_open (the database, the named queries, both
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

#include "autobackup.h"
#include "batch.h"
#include "cfg.h"
#include "changes.h"
#include "config.h"
#include "ctl.h"
#include "db.h"
#include "hook.h"
#include "jbuf.h"
#include "lead.h"
#include "log.h"
#include "maint.h"
#include "mq.h"
#include "query.h"
#include "retain.h"
#include "sched.h"
#include "jobq.h"
#include "jobs.h"
#include "snapshot.h"
#include "util.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

#define EXIT_FENCED          4        /* a writer of a newer epoch has replaced this one */
#define EXIT_LEASE_LOST      5        /* the leader lease in etcd lapsed (lead.h) */
#define POLL_MAX_MS          1000     /* longest wait in the loop when idle */
#define PRUNE_EVERY_MS       (3600 * 1000)
#define QUIESCE_MS           2000     /* shutdown: to read what the broker has sent */
#define SHUTDOWN_APPLY_MS    5000     /* shutdown: to apply what is held */
#define SHUTDOWN_RETRY_MS    50       /* shutdown: poll between retries of a stalled batch */
#define FLUSH_MS             2000     /* shutdown: to send the offline status */
#define HOOK_GRACE_MS        2000     /* shutdown: for hook commands still running */

static volatile sig_atomic_t stop_requested;

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
    struct retain *retain;         /* retention (retain.h) */
    struct autobackup *autobk;     /* scheduled backups (autobackup.h) */
    long long backup_every_ms;
    struct jobq *jobq;             /* the job queue (jobq.h) */
    struct sync *sync;             /* synchronous replicas (sync.h), or NULL */
    char *t_hooks;                 /* PREFIX/hooks */
    char *session_record;          /* DB-writer.session (mq_session.c) */
    struct cfg_list tables;        /* `tables` split into names */
    struct lead *lead;             /* leadership in etcd, or NULL (lead.h) */
    struct lead_opts lead_o;
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

/* The broker connections' settings from the config (see mq.h). */
static void broker_opts(struct mq_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = cf.host;
    o->port = (int)cf.port;
    o->username = cf.username;
    o->password = cf.password;
    o->cafile = cf.cafile;
    o->client_id = cf.client_id;
    o->prefix = cf.prefix;
    o->keepalive = (int)cf.keepalive;
    o->max_queue = (size_t)cf.batch_max;
    o->receive_max = (int)cf.receive_max;
    o->request_proto = !strcmp(cf.request_protocol, "5") ? MQ_PROTO_5 : MQ_PROTO_311;
    o->app_size = sizeof(struct outcome);
    o->epoch = changes_epoch(w.changes);
    o->epoch_of = changes_epoch_of;
    o->held = w.lead ? lead_ok : NULL;
    o->held_ud = w.lead;
}

/* The batch's settings from the config (see batch.h); the parts it hands requests to
 * are set by open_mq. */
static void batch_config(struct batch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prefix = cf.prefix;
    o->lim.max_payload = (size_t)cf.max_payload;
    o->lim.max_depth = (int)cf.max_depth;
    o->lim.max_ops = (int)cf.max_ops;
    o->lim.prefix = cf.prefix;
    o->max = (size_t)cf.batch_max;
    o->ms = cf.batch_ms;
    o->events_qos = (int)cf.events_qos;
    o->stop = &stop_requested;
    o->changes = w.changes;
}

/* Both broker connections (see mq.h), and the batch that applies what they bring. */
static int open_mq(char *err, size_t errlen)
{
    struct mq_opts mqo;
    struct batch_opts bo;
    struct ctl_parts parts;
    struct jobq_opts jo;
    char will[64];

    mosquitto_lib_init();
    broker_opts(&mqo);
    /* The record that the request session's subscriptions were acknowledged, beside
     * the database and its lock (mq_session.c). */
    if (!(mqo.session_record = w.session_record = util_join(cf.db, "-writer.session"))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(will, sizeof will, "{\"state\":\"offline\",\"epoch\":%lld}", mqo.epoch);
    /* Control messages (queries, commands, snapshot requests) come through one door. */
    w.ctl_lim.max_payload = (size_t)cf.max_payload;
    w.ctl_lim.max_depth = (int)cf.max_depth;
    w.ctl_lim.prefix = cf.prefix;
    if (!(w.ctl = ctl_new(&w.ctl_lim))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(w.mq = mq_new(&mqo, will, ctl_receive, w.ctl, err, errlen)))
        return -1;
    /* Replication: snapshots asked for on PREFIX/snapshot. */
    if (!(w.snap = snapshot_new(cf.db, w.mq))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    batch_config(&bo);
    if (!(w.t_hooks = util_join(cf.prefix, "/hooks")) ||
        !(w.hooks = hook_new(&cf.hooks, (int)cf.hook_max, cf.hook_timeout_ms, (int)cf.hook_queue,
                             on_hook_report, NULL, err, errlen)))
        return -1;
    bo.hooks = cf.hooks.n ? w.hooks : NULL;
    if (!(w.sched = sched_new(w.db, w.mq, (size_t)cf.batch_max, cf.schedule_max, err, errlen)))
        return -1;
    bo.sched = w.sched;
    config_job_opts(&jo);
    if (!(w.jobq = jobq_new(w.db, w.mq, cf.prefix, &bo.lim, &jo, err, errlen)))
        return -1;
    bo.jobq = w.jobq;
    if (cf.sync_replicas) {
        struct sync_opts so = {(int)cf.sync_replicas, cf.sync_timeout_ms, !strcmp(cf.sync_fallback, "degrade"),
                               (size_t)cf.sync_max_held, w.lead != NULL};
        if (!(w.sync = sync_new(&so, changes_epoch(w.changes), changes_seq(w.changes),
                                changes_seq_epoch(w.changes))))
            return util_fail(err, errlen, "out of memory");
        bo.sync = w.sync;
        bo.sync_n = (int)cf.sync_replicas;
        bo.sync_max_held = (size_t)cf.sync_max_held;
    }
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
    parts.sync = w.sync;
    if (ctl_open(w.ctl, w.mq, &parts)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Retention, before the broker: a `retain` line that does not fit the schema is a
 * config error. */
static int open_retain(int *bad_config, char *err, size_t errlen)
{
    struct retain_opts ro = {&cf.retains, cf.retain_batch, cf.retain_every_ms};

    if (!(w.retain = retain_open(w.db, w.changes, &ro, err, errlen)) && err[0]) {
        *bad_config = 1;
        return -1;
    }
    return 0;
}

/* Scheduled backups. */
static int open_autobackup(char *err, size_t errlen)
{
    struct autobackup_opts ao;

    if (!w.backup_every_ms)
        return 0;
    ao.h = db_handle(w.db);
    ao.db_path = cf.db;
    ao.dir = cf.backup_dir;
    ao.every_ms = w.backup_every_ms;
    ao.keep = cf.backup_keep;
    ao.step_pages = cf.backup_step_pages;
    if (!(w.autobk = autobackup_new(&ao)))
        return util_fail(err, errlen, "out of memory");
    return 0;
}

/* Everything the writer needs before it serves. 0, or -1 to exit with *exit_code
 * (0 after --help or --version). */
static int writer_open(int argc, char **argv, int *exit_code)
{
    char err[1024];
    struct sigaction sa;
    int bad_config = 0, rc;

    if (config_parse(argc, argv, &w.backup_every_ms, &w.lead_o, exit_code))
        return -1;
    log_init("mosqlite-writer", cf.verbose ? LOG_DEBUG : LOG_INFO);
    split_tables(&w.tables);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (open_db(err, sizeof err) || open_retain(&bad_config, err, sizeof err)) {
        if (bad_config)
            fprintf(stderr, "mosqlite-writer: %s\n", err);
        else
            log_error("%s", err);
        *exit_code = bad_config ? EXIT_BAD_ARGS : 1;
        return -1;
    }
    /* With etcd: lead (a new epoch) before the broker is so much as connected to. */
    if (cf.etcd_endpoints && (rc = lead_start(&w.lead_o, w.changes, &stop_requested, &w.lead, err, sizeof err))) {
        if (rc < 0)
            log_error("%s", err);
        *exit_code = rc < 0 ? 1 : 0;
        return -1;
    }
    if (open_mq(err, sizeof err) || open_autobackup(err, sizeof err)) {
        log_error("%s", err);
        *exit_code = 1;
        return -1;
    }

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

    if ((mq_queued(w.mq) && !stalled && batch_due(w.batch, now)) || w.snap_busy)
        return 0;
    if (!stalled)
        return batch_sync_wait_ms(w.batch, jobq_wait_ms(w.jobq, sched_wait_ms(w.sched, maint_wait_ms(w.maint, hook_wait_ms(w.hooks,
                            autobackup_wait_ms(w.autobk, retain_wait_ms(w.retain, POLL_MAX_MS,
                            maint_paused(w.maint))))), maint_paused(w.maint))));
    if (retry_at <= now)
        return 0;
    return (int)(retry_at - now < POLL_MAX_MS ? retry_at - now : POLL_MAX_MS);
}

/* With etcd and sync-replicas: the designated replicas, written to KEY/sync by the
 * lead's thread before their acknowledgements count (sync.h). */
static void designate_tick(void)
{
    long long gen;
    char *value;

    if (!w.sync || !w.lead)
        return;
    sync_designate(w.sync, util_now_ms());
    if ((value = sync_wanted(w.sync, &gen))) {
        lead_put_sync(w.lead, value, gen);
        free(value);
    }
    if ((gen = lead_sync_done(w.lead)) > 0 && sync_named(w.sync, gen))
        batch_status(w.batch, "online");      /* the status names the set (once online) */
}

/* The loop, until a signal: poll, apply what is queued, keep the status current,
 * prune now and then. */
static void writer_serve(void)
{
    char err[1024];
    long long retry_at;

    while (!stop_requested && !mq_taken_over(w.mq) && !mq_fenced_by(w.mq)) {
        long long now;

        mq_poll(w.mq, lead_wait_ms(w.lead, poll_timeout(util_now_ms())));
        if (mq_ctl_connected(w.mq))
            batch_status(w.batch, "online");
        designate_tick();
        batch_sync_tick(w.batch);
        hook_tick(w.hooks);
        if (stop_requested)
            break;
        now = util_now_ms();
        sched_tick(w.sched, maint_paused(w.maint));
        jobq_tick(w.jobq);
        if (batch_due(w.batch, now))
            batch_run(w.batch);
        maint_tick(w.maint);
        autobackup_tick(w.autobk, maint_backup_busy(w.maint));
        retain_tick(w.retain, w.mq, mq_queued(w.mq) > 0, maint_paused(w.maint) || batch_stalled(w.batch, &retry_at));
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

    if (mq_fenced_by(w.mq) == MQ_LEASE_LOST) {
        char why[1024];
        lead_describe(w.lead, why, sizeof why);
        log_error("exiting: %s; %zu requests held here are not applied (producers republish what has no "
                  "receipt)", why, mq_queued(w.mq));
        return EXIT_LEASE_LOST;
    }
    if (mq_fenced_by(w.mq)) {
        /* Fenced: commit nothing more, publish nothing (not even "offline": the newer
         * writer's status is the one that counts), close cleanly (no Last Will). */
        log_error("exiting: a writer of epoch %lld has replaced this one (epoch %lld), as %s says; "
                  "%zu requests held here are not applied (producers republish what has no receipt)",
                  mq_fenced_by(w.mq), changes_epoch(w.changes), mq_fenced_where(w.mq), mq_queued(w.mq));
        return EXIT_FENCED;
    }
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
    batch_sync_finish(w.batch, SHUTDOWN_APPLY_MS);
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
    autobackup_free(w.autobk);
    retain_free(w.retain);
    sched_free(w.sched);
    jobq_free(w.jobq);
    sync_free(w.sync);
    free(w.t_hooks);
    free(w.session_record);
    if (w.mq) {
        mq_free(w.mq);
        mosquitto_lib_cleanup();
    }
    lead_free(w.lead);           /* after the broker: a standby takes the key now */
    query_close(w.queries);
    ctl_free(w.ctl);
    changes_free(w.changes);
    db_close(w.db);
    free(w.tables.items);
    config_free();
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
