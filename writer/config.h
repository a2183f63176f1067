/* config.h: mosqlite-writer's configuration: one table for the command line and the
 * config file (common/cfg.c), its defaults, and the checks made of it before anything
 * is opened (main.c opens what it names). */
#ifndef MOSQLITE_WRITER_CONFIG_H
#define MOSQLITE_WRITER_CONFIG_H

#include "cfg.h"
#include "jobq.h"
#include "lead.h"

#define EXIT_BAD_ARGS        3        /* as mosqlite-pub: bad arguments or config */

struct writer_cfg {
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
    struct cfg_list retains;          /* retention (retain.h) */
    long long retain_batch, retain_every_ms;
    const char *backup_every;         /* scheduled backups (autobackup.h) */
    long long backup_keep;
    const char *etcd_endpoints, *etcd_key;   /* leadership in etcd (lead.h) */
    long long etcd_ttl;
    struct cfg_list job_cron;         /* the job queue (jobq.h) */
    long long job_lease_ms, job_max_lost, job_max_attempts, job_backoff_ms, job_backoff_cap_ms;
    long long job_keep_days, job_dead_keep_days;
    long long sync_replicas, sync_timeout_ms, sync_max_held;   /* synchronous replicas (sync.h) */
    const char *sync_fallback;
};

/* The settings, defaults until config_parse has read the command line and the file. */
extern struct writer_cfg cf;

/* The command line and config file. 0, or -1 to exit with *exit_code: 0 after --help,
 * EXIT_BAD_ARGS on error. Sets *backup_every_ms from backup-every and, with
 * etcd-endpoints, *lead_o. */
int config_parse(int argc, char **argv, long long *backup_every_ms, struct lead_opts *lead_o,
                 int *exit_code);
/* The job queue's settings from the config. */
void config_job_opts(struct jobq_opts *o);
/* Free what config_parse kept (the strings and lists it read). */
void config_free(void);

#endif
