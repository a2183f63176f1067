/* main.c: mosqlite-writer, the only process that writes the SQLite file.
 *
 * The loop: wait for requests (mq.c), then apply as many as are waiting in one
 * transaction, each in its own savepoint (db.c), reading ahead on the socket between
 * requests until nothing more is waiting or the batch bound (count or time) is hit;
 * COMMIT; only then publish receipts, events and rejections. A failure that is not a
 * request's fault (disk full, I/O error, the file locked by another process) rolls the
 * batch back, keeps every request of it in memory, closes the request connection so
 * the broker keeps the backlog, and retries with backoff; the status says why.
 *
 * Signals only set a flag. On SIGTERM/SIGINT the writer stops taking requests,
 * commits what it holds, publishes the offline status and disconnects.
 *
 * main() is writer_open (config, database, connections), writer_serve (the loop) and
 * writer_shut_down. The other steps of a request have their own files: README.md in
 * this directory lists them in order. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "cfg.h"
#include "db.h"
#include "jbuf.h"
#include "log.h"
#include "mq.h"
#include "out.h"
#include "query.h"
#include "req.h"
#include "util.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

#define POLL_MAX_MS          1000     /* longest wait in the loop when idle */
#define PRUNE_EVERY_MS       (3600 * 1000)
#define QUIESCE_MS           2000     /* shutdown: to read what the broker has sent */
#define SHUTDOWN_APPLY_MS    5000     /* shutdown: to apply what is held */
#define SHUTDOWN_RETRY_MS    50       /* shutdown: poll between retries of a stalled batch */
#define FLUSH_MS             2000     /* shutdown: to send the offline status */

static volatile sig_atomic_t stop_requested;

static struct {
    const char *host, *prefix, *username, *password, *cafile, *config, *db, *schema, *client_id;
    const char *synchronous;
    long long port, max_payload, max_depth, max_ops, batch_max, batch_ms, events_qos;
    long long query_max_rows, query_timeout_ms, status_interval, keepalive, busy_timeout_ms;
    long long id_ttl_days, rejected_keep, max_event_rows, receive_max;
    const char *request_protocol;
    int verbose;
    struct cfg_list tables, queries;
} cf = {
    .host = "127.0.0.1", .prefix = "mosqlite", .db = "data/mosqlite.db",
    .schema = "conf/schema", .client_id = "mosqlite-writer", .synchronous = "FULL",
    .port = 1883, .max_payload = 262144, .max_depth = 32, .max_ops = 1000,
    .batch_max = 5000, .batch_ms = 50, .events_qos = 0, .query_max_rows = 5000,
    .query_timeout_ms = 200, .status_interval = 2, .keepalive = 30, .busy_timeout_ms = 100,
    .id_ttl_days = 7, .rejected_keep = 10000, .max_event_rows = 100, .receive_max = 65535, .request_protocol = "3.1.1",
};

static const struct cfg_opt options[] = {
    {"host", 'h', CFG_STR, &cf.host, 0, 0, 0, "HOST", "broker host (127.0.0.1)"},
    {"port", 'p', CFG_INT, &cf.port, 1, 65535, 0, "PORT", "broker port (1883)"},
    {"prefix", 0, CFG_STR, &cf.prefix, 0, 0, 0, "PREFIX", "topic prefix (mosqlite)"},
    {"username", 'u', CFG_STR, &cf.username, 0, 0, 0, "USER", "broker username"},
    {"password", 'P', CFG_STR, &cf.password, 0, 0, 0, "PASS", "broker password"},
    {"cafile", 0, CFG_STR, &cf.cafile, 0, 0, 0, "FILE", "CA certificate: connect with TLS"},
    {"config", 'c', CFG_STR, &cf.config, 0, 0, CFG_CMDLINE_ONLY, "FILE", "config file of `key value` lines"},
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
    {"receive-max", 0, CFG_INT, &cf.receive_max, 1, 65535, 0, "N", "requests the broker may have in flight to the writer (65535)"},
    {"keepalive", 0, CFG_INT, &cf.keepalive, 5, 65535, 0, "S", "MQTT keepalive (30)"},
    {"busy-timeout-ms", 0, CFG_INT, &cf.busy_timeout_ms, 0, 600000, 0, "MS", "wait on an outside lock before backing off (100)"},
    {"id-ttl-days", 0, CFG_INT, &cf.id_ttl_days, 7, 36500, 0, "DAYS", "keep applied ids this long (7)"},
    {"rejected-keep", 0, CFG_INT, &cf.rejected_keep, 0, 100000000, 0, "N", "rows kept in mosqlite_rejected (10000)"},
    {"verbose", 'v', CFG_FLAG, &cf.verbose, 0, 0, 0, "", "log debug lines"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char usage[] =
    "Usage: mosqlite-writer [options]\n"
    "Applies write requests published on PREFIX/write/TABLE and PREFIX/write to one\n"
    "SQLite file, and republishes events, receipts, rejections and its status.";

/* Runtime state. */
static struct {
    struct db *db;
    struct mq *mq;
    struct queries *queries;
    struct cfg_list tables;        /* `tables` split into names */
    struct req req;
    struct req_limits lim;
    struct jbuf out;               /* scratch for publishing */
    char *t_status, *t_rejected, *t_events, *write_topic;
    char since[32];
    struct out_stats stats;
    int stalled;
    char stall_error[1024];
    long long stall_retry_at;
    int stall_backoff;
    int status_dirty;
    long long last_status_ms, last_prune_ms;
} w;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static char *xjoin(const char *a, const char *b)
{
    char *s = util_join(a, b);

    if (!s) {
        log_error("out of memory");
        exit(1);
    }
    return s;
}

static void publish_status(const char *state)
{
    if (!out_status(&w.out, state, w.since, &w.stats, mq_queued(w.mq),
                    w.stalled ? w.stall_error : NULL))
        mq_publish(w.mq, w.t_status, w.out.s, w.out.len, 1, 1, NULL, 0);
    w.status_dirty = 0;
    w.last_status_ms = util_now_ms();
}

static void on_query(void *ud, const char *payload, size_t len, const char *resp_topic,
                     const void *corr, int corrlen)
{
    struct jbuf out = {0};
    const char *reply_to;

    (void)ud;
    if (!w.queries)
        return;
    query_run(w.queries, payload, len, &out, &reply_to);
    if (!reply_to)
        reply_to = resp_topic;
    if (reply_to && !req_reply_topic_ok(reply_to, cf.prefix)) {
        log_warn("query answer to %s refused: not a topic for answers", reply_to);
        reply_to = NULL;
    }
    if (reply_to && !out.oom)
        mq_publish(w.mq, reply_to, out.s, out.len, 1, 0, corr, corrlen);
    else if (!reply_to)
        log_debug("query without reply_to ignored");
    jb_free(&out);
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A message's outcome lives in the room mq keeps for the writer in each message;
 * its strings are the writer's, freed here before mq frees the message. */
static struct outcome *outcome_of(struct msg *m)
{
    return m->app;
}

static void outcome_clear(struct outcome *o)
{
    free(o->id);
    free(o->reply_to);
    free(o->error);
    o->id = o->reply_to = o->error = NULL;
}

/* Drop the first n messages of the queue. */
static void drop_requests(size_t n)
{
    struct msg *m = mq_head(w.mq);
    size_t i;

    for (i = 0; i < n && m; i++, m = m->next)
        outcome_clear(outcome_of(m));
    mq_drop(w.mq, n);
}

/* Parse and apply; rc as db_apply, the rejection text in err. */
static int apply_request(struct msg *m, const struct outcome *o, long long *changes,
                         long long *rowid, char *err, size_t errlen)
{
    const char *table;

    if (req_topic(m->topic, w.write_topic, &table, err, errlen) ||
        req_parse(&w.req, db_schema(w.db), &w.lim, table, m->payload, m->len, err, errlen))
        return DB_REJECT;
    if (o->replay_reject) {
        snprintf(err, errlen, "%s", o->error ? o->error : "rejected");
        return DB_REJECT;
    }
    return db_apply(w.db, &w.req, changes, rowid, err, errlen);
}

/* Apply one request in the open batch. DB_FAULT means roll the batch back. */
static int process(struct msg *m)
{
    struct outcome *o = outcome_of(m);
    char err[1024];
    long long changes, rowid;
    int rc;

    o->kind = 0;
    rc = apply_request(m, o, &changes, &rowid, err, sizeof err);
    if (rc == DB_LOST) {
        /* Keep the reason; the caller replays the batch without this request. */
        free(o->error);
        o->error = strdup(err);
        o->replay_reject = 1;
        req_clear(&w.req);
        return DB_LOST;
    }
    if (rc == DB_FAULT) {
        snprintf(w.stall_error, sizeof w.stall_error, "%s", err);
        req_clear(&w.req);
        return DB_FAULT;
    }
    outcome_clear(o);
    o->id = xstrdup(w.req.id);
    o->reply_to = xstrdup(w.req.reply_to ? w.req.reply_to :
                          m->resp_topic && req_reply_topic_ok(m->resp_topic, cf.prefix) ? m->resp_topic : NULL);
    req_clear(&w.req);
    if (rc == DB_REJECT) {
        o->kind = OUT_REJECTED;
        o->error = strdup(err);
        if (db_record_rejection(w.db, m->topic, o->id, err, m->payload, m->len, w.stall_error,
                                sizeof w.stall_error) == DB_FAULT)
            return DB_FAULT;
        return DB_OK;
    }
    o->kind = rc == DB_DUP ? OUT_DUP : OUT_APPLIED;
    o->changes = changes;
    o->rowid = rowid;
    return DB_OK;
}

static void publish_outcome(struct msg *m)
{
    const struct outcome *o = outcome_of(m);

    if (o->kind == OUT_REJECTED) {
        w.stats.rejected++;
        log_debug("rejected %s: %s", m->topic, o->error ? o->error : "?");
        if (!out_rejection(&w.out, m->topic, o, m->payload, m->len))
            mq_publish(w.mq, w.t_rejected, w.out.s, w.out.len, 1, 0, NULL, 0);
    } else if (o->kind == OUT_DUP) {
        w.stats.duplicates++;
    } else {
        w.stats.applied++;
    }
    if (o->reply_to && !out_receipt(&w.out, o))
        mq_publish(w.mq, o->reply_to, w.out.s, w.out.len, 1, 0, m->corr, m->corrlen);
}

static void publish_events(void)
{
    const struct schema *s = db_schema(w.db);
    const char *rows = db_event_rows(w.db);
    const struct db_event *ev;
    int n, i;

    ev = db_events(w.db, &n);
    for (i = 0; i < n; i++) {
        const char *table = s->tables[ev[i].tindex].name;
        char *topic = xjoin(w.t_events, table);
        if (!out_event(&w.out, table, ev[i].kind, rows + ev[i].start, ev[i].end - ev[i].start,
                       ev[i].truncated))
            mq_publish(w.mq, topic, w.out.s, w.out.len, (int)cf.events_qos, 0, NULL, 0);
        free(topic);
    }
}

static void stall(void)
{
    int was = w.stalled;

    w.stalled = 1;
    w.stall_backoff = util_backoff(w.stall_backoff);
    w.stall_retry_at = util_now_ms() + w.stall_backoff;
    mq_accept(w.mq, 0);
    if (!was) {
        log_error("database fault, holding %zu requests and retrying: %s", mq_queued(w.mq), w.stall_error);
        publish_status("online");
    }
}

static void unstall(void)
{
    if (!w.stalled)
        return;
    log_info("database writable again");
    w.stalled = 0;
    w.stall_backoff = 0;
    mq_accept(w.mq, !stop_requested);
    w.status_dirty = 1;
    publish_status("online");
}

/* Apply the queue in the open transaction, reading ahead for more, until the batch
 * bound (count or time) or nothing more is waiting. The requests applied are the
 * first *n; *last the last of them. *waited counts the short waits for a request
 * still on the wire (one per batch, however often it restarts). DB_OK, DB_LOST (rolled back: start again) or
 * DB_FAULT (rolled back). */
static int apply_batch(double t0, int *waited, struct msg **last, size_t *n)
{
    struct msg *m = mq_head(w.mq);

    *last = NULL;
    *n = 0;
    for (;;) {
        for (; m && *n < (size_t)cf.batch_max; *last = m, m = m->next, (*n)++) {
            int rc = process(m);
            if (rc == DB_LOST) {
                log_warn("a rejected request rolled back its whole batch (ON CONFLICT ROLLBACK "
                         "or RAISE(ROLLBACK)); applying the batch again without it");
                db_rollback(w.db);
                return DB_LOST;
            }
            if (rc == DB_FAULT) {
                db_rollback(w.db);
                return DB_FAULT;
            }
        }
        if (*n >= (size_t)cf.batch_max || util_now_exact_ms() - t0 >= (double)cf.batch_ms ||
            stop_requested)
            return DB_OK;
        /* Read ahead: more requests may already be waiting. Requests whose PUBREL is
         * still on the wire complete within a round trip: give them one short wait. */
        if (!mq_read_more(w.mq, 0) && !((*waited)++ == 0 && mq_read_more(w.mq, 1)))
            return DB_OK;
        m = *last ? (*last)->next : mq_head(w.mq);
        if (!m)
            return DB_OK;
    }
}

/* After COMMIT: the counters, then receipts, rejections and events in one burst. */
static void publish_batch(double t0, struct msg *last, size_t n)
{
    struct msg *m;

    w.stats.last_commit_ms = util_now_exact_ms() - t0;
    w.stats.commits++;
    w.stats.last_batch = (long long)n;
    if (w.stats.last_batch > w.stats.max_batch)
        w.stats.max_batch = w.stats.last_batch;
    mq_batch(w.mq, 1);
    for (m = mq_head(w.mq); m && m != (last ? last->next : NULL); m = m->next)
        publish_outcome(m);
    publish_events();
    mq_batch(w.mq, 0);
    drop_requests(n);
    w.status_dirty = 1;
    unstall();
}

/* One group commit over the queue. */
static void run_batch(void)
{
    char err[512];
    double t0 = util_now_exact_ms();
    struct msg *last;
    size_t n;
    int rc, waited = 0;

    do {
        if (db_begin(w.db, err, sizeof err) != DB_OK) {
            snprintf(w.stall_error, sizeof w.stall_error, "%s", err);
            stall();
            return;
        }
        rc = apply_batch(t0, &waited, &last, &n);
    } while (rc == DB_LOST);
    if (rc == DB_FAULT) {
        stall();
        return;
    }
    if (db_commit(w.db, err, sizeof err) != DB_OK) {
        snprintf(w.stall_error, sizeof w.stall_error, "%s", err);
        stall();
        return;
    }
    publish_batch(t0, last, n);
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

/* The command line and config file. 0, or the exit code: 0 after --help, 2 on error. */
static int open_config(int argc, char **argv, int *exit_code)
{
    char err[1024];
    int npos, rc;

    rc = cfg_parse_args(options, argc, argv, &npos, usage, err, sizeof err);
    *exit_code = rc < 0 ? 2 : 0;
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "mosqlite-writer: %s\n", err);
        return -1;
    }
    *exit_code = 2;
    if (npos) {
        fprintf(stderr, "mosqlite-writer: unexpected argument \"%s\" (try --help)\n", argv[1]);
        return -1;
    }
    if (strcasecmp(cf.synchronous, "FULL") && strcasecmp(cf.synchronous, "NORMAL") &&
        strcasecmp(cf.synchronous, "OFF") && strcasecmp(cf.synchronous, "EXTRA")) {
        fprintf(stderr, "mosqlite-writer: synchronous: \"%s\" is not FULL, NORMAL, OFF or EXTRA\n",
                cf.synchronous);
        return -1;
    }
    if (strcmp(cf.request_protocol, "3.1.1") && strcmp(cf.request_protocol, "5")) {
        fprintf(stderr, "mosqlite-writer: request-protocol: \"%s\" is not 3.1.1 or 5\n", cf.request_protocol);
        return -1;
    }
    *exit_code = 0;
    return 0;
}

/* The database, the named queries, the request limits and the topics. */
static int open_db(char *err, size_t errlen)
{
    struct db_opts dbo;
    time_t t;
    struct tm tm;

    memset(&dbo, 0, sizeof dbo);
    dbo.path = cf.db;
    dbo.schema_dir = cf.schema;
    dbo.synchronous = cf.synchronous;
    dbo.tables = &w.tables;
    dbo.busy_timeout_ms = cf.busy_timeout_ms;
    dbo.id_ttl_days = cf.id_ttl_days;
    dbo.rejected_keep = cf.rejected_keep;
    dbo.max_event_rows = cf.max_event_rows;
    if (!(w.db = db_open(&dbo, err, errlen)))
        return -1;
    if (cf.queries.n && !(w.queries = query_open(cf.db, &cf.queries, cf.query_max_rows,
                                                 cf.query_timeout_ms, err, errlen)))
        return -1;
    w.lim.max_payload = (size_t)cf.max_payload;
    w.lim.max_depth = (int)cf.max_depth;
    w.lim.max_ops = (int)cf.max_ops;
    w.lim.prefix = cf.prefix;
    w.t_status = xjoin(cf.prefix, "/status");
    w.t_rejected = xjoin(cf.prefix, "/rejected");
    w.t_events = xjoin(cf.prefix, "/events/");
    w.write_topic = xjoin(cf.prefix, "/write");
    t = time(NULL);
    gmtime_r(&t, &tm);
    strftime(w.since, sizeof w.since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return 0;
}

/* Both broker connections (see mq.h). */
static int open_mq(char *err, size_t errlen)
{
    struct mq_opts mqo;

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
    mqo.request_v5 = !strcmp(cf.request_protocol, "5");
    mqo.app_size = sizeof(struct outcome);
    w.mq = mq_new(&mqo, "{\"state\":\"offline\"}", on_query, NULL, err, errlen);
    return w.mq ? 0 : -1;
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
    if (mq_queued(w.mq) && !w.stalled)
        return 0;
    if (!w.stalled)
        return POLL_MAX_MS;
    if (w.stall_retry_at <= now)
        return 0;
    return (int)(w.stall_retry_at - now < POLL_MAX_MS ? w.stall_retry_at - now : POLL_MAX_MS);
}

/* The loop, until a signal: poll, apply what is queued, keep the status current,
 * prune now and then. */
static void writer_serve(void)
{
    char err[1024];

    while (!stop_requested) {
        long long now;

        mq_poll(w.mq, poll_timeout(util_now_ms()));
        if (mq_ctl_connected(w.mq))
            publish_status("online");
        if (stop_requested)
            break;
        now = util_now_ms();
        if (mq_queued(w.mq) && (!w.stalled || now >= w.stall_retry_at))
            run_batch();
        if (w.status_dirty && now - w.last_status_ms >= cf.status_interval * 1000)
            publish_status("online");
        if (!w.stalled && now - w.last_prune_ms >= PRUNE_EVERY_MS) {
            if (db_prune(w.db, err, sizeof err) != DB_OK)
                log_warn("%s", err);
            w.last_prune_ms = now;
        }
    }
}

/* Take nothing more, commit what is held, say offline, disconnect. The exit code. */
static int writer_shut_down(void)
{
    long long give_up;
    int exit_code = 0;

    mq_quiesce(w.mq, QUIESCE_MS);
    log_info("stopping: %zu requests in hand", mq_queued(w.mq));
    give_up = util_now_ms() + SHUTDOWN_APPLY_MS;
    while (mq_queued(w.mq) && util_now_ms() < give_up) {
        if (!w.stalled || util_now_ms() >= w.stall_retry_at)
            run_batch();
        else
            mq_poll(w.mq, SHUTDOWN_RETRY_MS);
    }
    if (mq_queued(w.mq)) {
        log_error("exiting with %zu requests not applied: %s", mq_queued(w.mq), w.stall_error);
        exit_code = 1;
    }
    publish_status("offline");
    mq_flush(w.mq, FLUSH_MS);
    log_info("stopped: %lld applied, %lld rejected, %lld duplicates, %lld commits",
             w.stats.applied, w.stats.rejected, w.stats.duplicates, w.stats.commits);
    return exit_code;
}

/* Free everything writer_open made, whatever step it reached. */
static void writer_free(void)
{
    if (w.mq) {
        drop_requests(mq_queued(w.mq));
        mq_free(w.mq);
        mosquitto_lib_cleanup();
    }
    query_close(w.queries);
    db_close(w.db);
    req_free(&w.req);
    jb_free(&w.out);
    free(w.t_status);
    free(w.t_rejected);
    free(w.t_events);
    free(w.write_topic);
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
