/* config.c: mosqlite-writer's configuration (see config.h): the option table for the
 * command line and the config file, the usage text, and the checks of the values that
 * need more than a range (modes, durations, the etcd, hook, query, retain and job-cron
 * lines) before anything is opened. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "defaults.h"
#include "hook.h"
#include "jobs.h"
#include "query.h"
#include "retain.h"

struct writer_cfg cf = {
    .job_lease_ms = JOBS_LEASE_MS, .job_max_lost = JOBS_MAX_LOST, .job_max_attempts = JOBS_MAX_ATTEMPTS,
    .job_backoff_ms = JOBS_BACKOFF_MS, .job_backoff_cap_ms = JOBS_BACKOFF_CAP_MS, .job_keep_days = 7,
    .job_dead_keep_days = 30,
    .sync_timeout_ms = 5000, .sync_fallback = "hold", .sync_max_held = 100000,
    .retain_batch = 500, .retain_every_ms = 100, .backup_keep = 7,
    .hook_max = 4, .hook_timeout_ms = 10000, .hook_queue = 1000, .backup_step_pages = 256, .schedule_max = 100000,
    .host = MOSQLITE_DEFAULT_HOST, .prefix = MOSQLITE_DEFAULT_PREFIX, .db = "data/mosqlite.db",
    .schema = "conf/schema", .client_id = "mosqlite-writer", .synchronous = "FULL",
    .port = MOSQLITE_DEFAULT_PORT, .max_payload = MOSQLITE_DEFAULT_MAX_PAYLOAD, .max_depth = 32, .max_ops = 1000,
    .batch_max = 5000, .batch_ms = 50, .events_qos = 0, .query_max_rows = 5000,
    .query_timeout_ms = 200, .status_interval = 2, .keepalive = MOSQLITE_DEFAULT_KEEPALIVE, .busy_timeout_ms = 100,
    .id_ttl_days = 7, .rejected_keep = 10000, .max_event_rows = 100, .receive_max = 65535, .request_protocol = "3.1.1",
    .changes_qos = 1, .etcd_ttl = 10,
};

static const struct cfg_opt options[] = {
    CFG_BROKER_OPTIONS(cf),
    {"db", 0, CFG_STR, &cf.db, 0, 0, 0, "PATH", "SQLite file"},
    {"schema", 0, CFG_STR, &cf.schema, 0, 0, 0, "DIR", "migrations NNN_name.sql"},
    {"client-id", 0, CFG_STR, &cf.client_id, 0, 0, 0, "ID", "MQTT client id of the persistent session"},
    {"tables", 0, CFG_LIST, &cf.tables, 0, 0, CFG_FILE_ONLY, "T...", "writable tables (unset: all)"},
    {"query", 0, CFG_LIST, &cf.queries, 0, 0, CFG_FILE_ONLY, "NAME SQL", "a named read query"},
    {"synchronous", 0, CFG_STR, &cf.synchronous, 0, 0, 0, "MODE", "SQLite synchronous: FULL, NORMAL or OFF"},
    {"max-payload", 0, CFG_INT, &cf.max_payload, 64, 256LL << 20, 0, "BYTES", "largest request"},
    {"max-depth", 0, CFG_INT, &cf.max_depth, 2, 1000, 0, "N", "deepest JSON nesting"},
    {"max-ops", 0, CFG_INT, &cf.max_ops, 1, 100000, 0, "N", "most ops in one transaction"},
    {"batch-max", 0, CFG_INT, &cf.batch_max, 1, 1000000, 0, "N", "most requests in one commit"},
    {"batch-ms", 0, CFG_INT, &cf.batch_ms, 0, 60000, 0, "MS", "longest a batch stays open"},
    {"events-qos", 0, CFG_INT, &cf.events_qos, 0, 2, 0, "QOS", "QoS of events"},
    {"max-event-rows", 0, CFG_INT, &cf.max_event_rows, 1, 100000, 0, "N", "rows in one event"},
    {"query-max-rows", 0, CFG_INT, &cf.query_max_rows, 1, 10000000, 0, "N", "rows a query returns"},
    {"query-timeout-ms", 0, CFG_INT, &cf.query_timeout_ms, 1, 600000, 0, "MS", "time cap of a query"},
    {"status-interval", 0, CFG_INT, &cf.status_interval, 1, 3600, 0, "S", "status period while counters change"},
    {"request-protocol", 0, CFG_STR, &cf.request_protocol, 0, 0, 0, "V", "MQTT version of the request session: 3.1.1 or 5"},
    {"receive-max", 0, CFG_INT, &cf.receive_max, 1, 65535, 0, "N", "MQTT 5: requests the broker may have in flight to the writer"},
    {"keepalive", 0, CFG_INT, &cf.keepalive, 5, 65535, 0, "S", "MQTT keepalive"},
    {"busy-timeout-ms", 0, CFG_INT, &cf.busy_timeout_ms, 0, 600000, 0, "MS", "wait on an outside lock before backing off"},
    {"id-ttl-days", 0, CFG_INT, &cf.id_ttl_days, 7, 36500, 0, "DAYS", "keep applied ids this long"},
    {"rejected-keep", 0, CFG_INT, &cf.rejected_keep, 0, 100000000, 0, "N", "rows kept in mosqlite_rejected"},
    {"changes-qos", 0, CFG_INT, &cf.changes_qos, 1, 2, 0, "QOS", "QoS of PREFIX/changes for replicas"},
    {"hook", 0, CFG_LIST, &cf.hooks, 0, 0, CFG_FILE_ONLY, "TABLE OP CMD...", "run CMD after each commit that changed TABLE by OP"},
    {"hook-max", 0, CFG_INT, &cf.hook_max, 1, 1000, 0, "N", "hook commands running at once"},
    {"hook-timeout-ms", 0, CFG_INT, &cf.hook_timeout_ms, 1, 86400000, 0, "MS", "a hook command is killed after this"},
    {"hook-queue", 0, CFG_INT, &cf.hook_queue, 0, 10000000, 0, "N", "hook runs waiting for a slot; more are dropped"},
    {"schedule-max", 0, CFG_INT, &cf.schedule_max, 0, 100000000, 0, "N", "scheduled writes held at once; more are rejected"},
    {"backup-dir", 0, CFG_STR, &cf.backup_dir, 0, 0, 0, "DIR", "where admin backups go (unset: backups refused)"},
    {"backup-step-pages", 0, CFG_INT, &cf.backup_step_pages, 1, 1000000, 0, "N", "pages a backup copies between batches"},
    {"backup-every", 0, CFG_STR, &cf.backup_every, 0, 0, 0, "DURATION", "a backup into backup-dir this often: 6h, 1d, ... (unset: none)"},
    {"backup-keep", 0, CFG_INT, &cf.backup_keep, 1, 1000000, 0, "N", "scheduled backups kept, the newest"},
    {"retain", 0, CFG_LIST, &cf.retains, 0, 0, CFG_FILE_ONLY, "TABLE COLUMN AGE [s|ms]", "delete TABLE's rows whose time COLUMN is older than AGE"},
    {"retain-batch", 0, CFG_INT, &cf.retain_batch, 1, 100000, 0, "N", "rows a retention step examines and deletes at most"},
    {"retain-every-ms", 0, CFG_INT, &cf.retain_every_ms, 0, 600000, 0, "MS", "while requests wait, a retention step at most this often"},
    {"etcd-endpoints", 0, CFG_STR, &cf.etcd_endpoints, 0, 0, 0, "URL,...", "hold the leader key in this etcd cluster (unset: no etcd)"},
    {"etcd-key", 0, CFG_STR, &cf.etcd_key, 0, 0, 0, "KEY", "the leader key (unset: /mosqlite/PREFIX/leader)"},
    {"etcd-ttl", 0, CFG_INT, &cf.etcd_ttl, 2, 3600, 0, "S", "the leader lease's TTL"},
    {"job-cron", 0, CFG_LIST, &cf.job_cron, 0, 0, CFG_FILE_ONLY, "NAME SCHEDULE QUEUE PAYLOAD [K=V...]", "a recurring job (UTC)"},
    {"job-lease-ms", 0, CFG_INT, &cf.job_lease_ms, 1000, 86400000, 0, "MS", "a job's lease unless its enqueue says"},
    {"job-max-lost", 0, CFG_INT, &cf.job_max_lost, 1, 1000000, 0, "N", "worker losses before a job is dead"},
    {"job-max-attempts", 0, CFG_INT, &cf.job_max_attempts, 1, 1000000, 0, "N", "failures before a job is failed"},
    {"job-backoff-ms", 0, CFG_INT, &cf.job_backoff_ms, 0, 86400000LL * 365, 0, "MS", "first retry's backoff"},
    {"job-backoff-cap-ms", 0, CFG_INT, &cf.job_backoff_cap_ms, 0, 86400000LL * 365, 0, "MS", "longest backoff"},
    {"job-keep-days", 0, CFG_INT, &cf.job_keep_days, 0, 36500, 0, "DAYS", "done, failed, cancelled jobs kept (0: for ever)"},
    {"job-dead-keep-days", 0, CFG_INT, &cf.job_dead_keep_days, 0, 36500, 0, "DAYS", "dead jobs kept (0: for ever)"},
    {"sync-replicas", 0, CFG_INT, &cf.sync_replicas, 0, 64, 0, "N", "replicas that must acknowledge a commit before its receipts go out (0: none)"},
    {"sync-timeout-ms", 0, CFG_INT, &cf.sync_timeout_ms, 1, 86400000, 0, "MS", "a commit unacknowledged this long: sync-fallback"},
    {"sync-fallback", 0, CFG_STR, &cf.sync_fallback, 0, 0, 0, "MODE", "after sync-timeout-ms: hold (receipts wait) or degrade (sent, loudly)"},
    {"sync-max-held", 0, CFG_INT, &cf.sync_max_held, 100, 100000000, 0, "N", "receipts and events held for acks; more: no request taken"},
    {"verbose", 'v', CFG_FLAG, &cf.verbose, 0, 0, 0, "", "log debug lines"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char usage[] =
    "Usage: mosqlite-writer [options]\n"
    "Applies write requests published on PREFIX/write/TABLE and PREFIX/write to one\n"
    "SQLite file, and republishes events, receipts, rejections and its status.\n"
    "The protocol (topics, requests, receipts, status, exit codes): docs/PROTOCOL.md.";

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

/* The job queue's settings from the config. */
void config_job_opts(struct jobq_opts *o)
{
    o->cron = &cf.job_cron;
    o->lease_ms = cf.job_lease_ms;
    o->max_lost = cf.job_max_lost;
    o->max_attempts = cf.job_max_attempts;
    o->backoff_ms = cf.job_backoff_ms;
    o->backoff_cap_ms = cf.job_backoff_cap_ms;
    o->keep_days = cf.job_keep_days;
    o->dead_keep_days = cf.job_dead_keep_days;
}

/* The command line and config file. 0, or -1 to exit with *exit_code: 0 after --help,
 * EXIT_BAD_ARGS on error. */
int config_parse(int argc, char **argv, long long *backup_every_ms, struct lead_opts *lead_o,
                 int *exit_code)
{
    char err[1024];
    struct jobq_opts jo;
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
    if (strcmp(cf.sync_fallback, "hold") && strcmp(cf.sync_fallback, "degrade")) {
        fprintf(stderr, "mosqlite-writer: %ssync-fallback: \"%s\" is not hold or degrade\n",
                origin_of("sync-fallback"), cf.sync_fallback);
        return -1;
    }
    if (strcmp(cf.request_protocol, "3.1.1") && strcmp(cf.request_protocol, "5")) {
        fprintf(stderr, "mosqlite-writer: %srequest-protocol: \"%s\" is not 3.1.1 or 5\n",
                origin_of("request-protocol"), cf.request_protocol);
        return -1;
    }
    if (cf.backup_every && *cf.backup_every && strcmp(cf.backup_every, "0") &&
        (retain_duration(cf.backup_every, backup_every_ms) || !cf.backup_dir || !*cf.backup_dir)) {
        fprintf(stderr, "mosqlite-writer: %sbackup-every: %s\n", origin_of("backup-every"),
                *backup_every_ms ? "needs backup-dir, where the backups go"
                                 : "not a whole number of days, hours, minutes or seconds (1d, 6h, 30m, 90s)");
        return -1;
    }
    if (cf.etcd_endpoints) {
        static char key[512];
        if (!cf.etcd_key) {
            snprintf(key, sizeof key, "/mosqlite/%s/leader", cf.prefix);
            cf.etcd_key = key;
        }
        lead_o->endpoints = cf.etcd_endpoints;
        lead_o->key = cf.etcd_key;
        lead_o->ttl = cf.etcd_ttl;
        lead_o->db = cf.db;
        if (lead_check(lead_o, err, sizeof err)) {
            fprintf(stderr, "mosqlite-writer: %s%s\n", origin_of(!strncmp(err, "etcd-key", 8) ? "etcd-key" :
                                                               "etcd-endpoints"), err);
            return -1;
        }
    }
    /* hook, query and retain lines: checked before the database is opened */
    config_job_opts(&jo);
    if (hook_check(&cf.hooks, err, sizeof err) || query_check(&cf.queries, err, sizeof err) ||
        retain_check(&cf.retains, err, sizeof err) || jobq_config_check(&jo, err, sizeof err)) {
        fprintf(stderr, "mosqlite-writer: %s\n", err);
        return -1;
    }
    *exit_code = 0;
    return 0;
}

void config_free(void)
{
    cfg_free(options);
}
