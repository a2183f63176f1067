/* main.c: mosqlite-replica, a read replica of the writer's SQLite file.
 *
 * One MQTT connection with a persistent session (fixed client id
 * mosqlite-replica-ID, clean session off, MQTT 3.1.1 like the writer's request
 * session): it subscribes to PREFIX/changes (QoS 2) and to its own snapshot reply
 * topic PREFIX/reply/mosqlite-replica-ID/snapshot (QoS 1), so what the writer commits
 * while the replica is down waits at the broker and is applied when it comes back.
 * follow.c decides what each message does to the file (store.c). The replica
 * publishes its status, retained, on PREFIX/replica/ID/status; its Last Will says
 * offline.
 *
 * --promote turns the replica into the writer when the writer's machine is lost:
 * it applies every change still queued for it, refuses if the writer's status says
 * online (unless --force), ends its session, and replaces itself (exec) with
 * mosqlite-writer on the same file, which takes over the request session.
 *
 * Signals only set a flag; the loop then publishes the offline status and exits. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cfg.h"
#include "etcd.h"
#include "follow.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "watch.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

#define EXIT_FATAL   1
#define EXIT_USAGE   3
#define LOOP_MS      100       /* longest wait in the loop */
#define READ_AHEAD   1000      /* more network turns while messages keep coming */
#define CONNECT_WAIT_MS 10000  /* longest wait for the broker's CONNACK */
#define PROMOTE_QUIET_MS 1000  /* --promote: no change for this long = all applied */
#define PROMOTE_MAX_MS   60000 /* --promote: give up after this */
#define ID_MAX           64    /* characters in --id */

static volatile sig_atomic_t stop_requested;

static struct {
    const char *host, *prefix, *username, *password, *cafile, *config, *db, *id, *synchronous;
    const char *writer, *etcd_endpoints, *etcd_key;
    long long port, keepalive, status_interval, etcd_ttl;
    int bootstrap, promote, force, verbose;
} cf = {
    .host = MOSQLITE_DEFAULT_HOST, .prefix = MOSQLITE_DEFAULT_PREFIX, .db = "data/replica.db", .id = "replica",
    .synchronous = "NORMAL", .port = MOSQLITE_DEFAULT_PORT, .keepalive = MOSQLITE_DEFAULT_KEEPALIVE, .status_interval = 1,
    .etcd_ttl = 10,
};

static const struct cfg_opt options[] = {
    CFG_BROKER_OPTIONS(cf),
    {"db", 0, CFG_STR, &cf.db, 0, 0, 0, "PATH", "the replica's SQLite file"},
    {"id", 0, CFG_STR, &cf.id, 0, 0, 0, "ID", "this replica's name: client id mosqlite-replica-ID"},
    {"synchronous", 0, CFG_STR, &cf.synchronous, 0, 0, 0, "MODE", "SQLite synchronous: FULL, NORMAL or OFF"},
    {"keepalive", 0, CFG_INT, &cf.keepalive, 5, 65535, 0, "S", "MQTT keepalive"},
    {"status-interval", 0, CFG_INT, &cf.status_interval, 1, 3600, 0, "S", "status period while it changes"},
    {"bootstrap", 0, CFG_FLAG, &cf.bootstrap, 0, 0, CFG_CMDLINE_ONLY, "", "start again from a snapshot of the writer's file"},
    {"promote", 0, CFG_FLAG, &cf.promote, 0, 0, CFG_CMDLINE_ONLY, "", "apply what is queued, then become the writer on this file"},
    {"force", 0, CFG_FLAG, &cf.force, 0, 0, CFG_CMDLINE_ONLY, "", "--promote even if the writer's status says online"},
    {"writer", 0, CFG_STR, &cf.writer, 0, 0, 0, "PATH", "--promote: the writer program (mosqlite-writer beside this one)"},
    {"etcd-endpoints", 0, CFG_STR, &cf.etcd_endpoints, 0, 0, 0, "URL,...", "watch the writer's leader key in this etcd cluster: promote when it is gone and KEY/sync names this replica"},
    {"etcd-key", 0, CFG_STR, &cf.etcd_key, 0, 0, 0, "KEY", "the writer's leader key (unset: /mosqlite/PREFIX/leader)"},
    {"etcd-ttl", 0, CFG_INT, &cf.etcd_ttl, 2, 3600, 0, "S", "the writers' etcd-ttl: the key is looked at every S/3 s (at most 1 s)"},
    {"verbose", 'v', CFG_FLAG, &cf.verbose, 0, 0, 0, "", "log debug lines"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char usage[] =
    "Usage: mosqlite-replica [options] [--promote] [-- WRITER-OPTIONS...]\n"
    "Keeps a local SQLite file equal to the writer's: bootstraps from a snapshot, then\n"
    "applies the changeset of every commit, in order, from PREFIX/changes.";

static struct {
    struct mosquitto *m;
    struct store *store;
    struct follow *follow;
    struct watch *watch;      /* etcd-endpoints: the leader key watched, or NULL */
    char client_id[256], *t_changes, *t_reply, *t_status, *t_snapshot, *t_writer_status, *t_ack;
    long long acked_seq, acked_epoch;  /* the position last acknowledged on t_ack (-1: none) */
    int connected, subscribed, sub_mid, backoff, status_dirty;
    int ever;                 /* connected once: mosquitto_reconnect from then on */
    long long connecting_until;  /* a connect is under way until CONNACK or then */
    long long retry_at, last_status_ms;
    int writer_online;        /* --promote: 1 online, 0 not, -1 not known yet */
    long long received;       /* messages so far */
} r = {.writer_online = -1};

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)ud;
    if (rc) {
        log_error("broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    r.connected = 1;
    r.connecting_until = 0;
    r.backoff = 0;
    log_info("connected to %s:%lld as %s", cf.host, cf.port, r.client_id);
    mosquitto_subscribe(m, NULL, r.t_changes, 2);
    mosquitto_subscribe(m, NULL, r.t_writer_status, 1);
    mosquitto_subscribe(m, &r.sub_mid, r.t_reply, 1);
    r.last_status_ms = 0;
    r.acked_seq = r.acked_epoch = -1;     /* acknowledge the position again */
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *qos)
{
    (void)m;
    (void)ud;
    (void)n;
    (void)qos;
    if (mid == r.sub_mid)
        r.subscribed = 1;
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    (void)ud;
    if (r.connected && rc)
        log_warn("connection lost: %s", mosquitto_strerror(rc));
    r.connected = r.subscribed = 0;
    r.connecting_until = 0;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    (void)ud;
    r.received++;
    if (!strcmp(msg->topic, r.t_changes))
        follow_change(r.follow, msg->payload, (size_t)msg->payloadlen);
    else if (!strcmp(msg->topic, r.t_reply))
        follow_chunk(r.follow, msg->payload, (size_t)msg->payloadlen);
    else if (!strcmp(msg->topic, r.t_writer_status)) {
        r.writer_online = msg->payloadlen > 0 && strstr(msg->payload, "\"online\"") != NULL;
        follow_writer_status(r.follow, msg->payload, (size_t)msg->payloadlen);
    }
}

static void publish_status(const char *state)
{
    char buf[2048];
    int n = follow_status(r.follow, cf.id, state, buf, sizeof buf);

    if (n > 0)
        mosquitto_publish(r.m, NULL, r.t_status, n, buf, 1, true);
    r.last_status_ms = util_now_ms();
}

/* Topics, the client, its Last Will. */
static int open_mq(char *err, size_t errlen)
{
    char will[512];
    int rc;

    snprintf(r.client_id, sizeof r.client_id, "mosqlite-replica-%s", cf.id);
    r.t_changes = util_join(cf.prefix, "/changes");
    r.t_snapshot = util_join(cf.prefix, "/snapshot");
    r.t_writer_status = util_join(cf.prefix, "/status");
    snprintf(will, sizeof will, "%s/reply/%s/snapshot", cf.prefix, r.client_id);
    r.t_reply = strdup(will);
    snprintf(will, sizeof will, "%s/replica/%s/status", cf.prefix, cf.id);
    r.t_status = strdup(will);
    snprintf(will, sizeof will, "%s/replica/%s/ack", cf.prefix, cf.id);
    r.t_ack = strdup(will);
    if (!r.t_changes || !r.t_snapshot || !r.t_writer_status || !r.t_reply || !r.t_status || !r.t_ack)
        return util_fail(err, errlen, "out of memory");
    mosquitto_lib_init();
    if (!(r.m = mosquitto_new(r.client_id, false, NULL)))
        return util_fail(err, errlen, "cannot create MQTT client %s: %s", r.client_id, strerror(errno));
    mosquitto_int_option(r.m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(r.m, 0);
    mosquitto_connect_callback_set(r.m, on_connect);
    mosquitto_disconnect_callback_set(r.m, on_disconnect);
    mosquitto_subscribe_callback_set(r.m, on_subscribe);
    mosquitto_message_callback_set(r.m, on_message);
    if (cf.username && mosquitto_username_pw_set(r.m, cf.username, cf.password))
        return util_fail(err, errlen, "bad username or password");
    if (cf.cafile && (rc = mosquitto_tls_set(r.m, cf.cafile, NULL, NULL, NULL, NULL)))
        return util_fail(err, errlen, "TLS with %s: %s", cf.cafile, mosquitto_strerror(rc));
    snprintf(will, sizeof will, "{\"state\":\"offline\",\"id\":\"%s\"}", cf.id);
    if ((rc = mosquitto_will_set(r.m, r.t_status, (int)strlen(will), will, 1, true)))
        return util_fail(err, errlen, "setting the Last Will: %s", mosquitto_strerror(rc));
    return 0;
}

/* Connect, or reconnect after a loss, with backoff; one attempt at a time. */
static void keep_connected(long long now)
{
    int rc;

    if (r.connected || now < r.retry_at || now < r.connecting_until)
        return;
    rc = r.ever ? mosquitto_reconnect(r.m)
                : mosquitto_connect(r.m, cf.host, (int)cf.port, (int)cf.keepalive);
    if (!rc) {
        r.ever = 1;
        r.connecting_until = now + CONNECT_WAIT_MS;
        return;
    }
    r.backoff = util_backoff(r.backoff);
    r.retry_at = now + r.backoff;
    if (r.backoff == UTIL_BACKOFF_FIRST_MS || r.backoff == UTIL_BACKOFF_MAX_MS)
        log_warn("cannot reach the broker at %s:%lld (%s); retrying", cf.host, cf.port, mosquitto_strerror(rc));
}

/* Acknowledge the file's position to the writer (synchronous replicas): after each
 * transaction that moved it, and once after each connect; one ack covers every commit
 * before it. */
static void ack(void)
{
    const struct store_pos *p = store_pos(r.store);
    char buf[128];
    int n;

    if (!r.subscribed || !p->known || strcmp(follow_state(r.follow), "following") ||
        (p->seq == r.acked_seq && p->epoch == r.acked_epoch))
        return;
    n = snprintf(buf, sizeof buf, "{\"seq\":%lld,\"epoch\":%lld}", p->seq, p->epoch);
    if (!mosquitto_publish(r.m, NULL, r.t_ack, n, buf, 1, false)) {
        r.acked_seq = p->seq;
        r.acked_epoch = p->epoch;
    }
}

/* One turn: network, then the file, then the status. */
static void turn(void)
{
    long long now = util_now_ms();
    int rc;

    keep_connected(now);
    rc = mosquitto_loop(r.m, follow_pending(r.follow) ? 0 : LOOP_MS, 1);
    /* Read what else is waiting before applying: a backlog then goes into the file
     * in few transactions, not one per commit of the writer. */
    for (int i = 0; !rc && i < READ_AHEAD; i++) {
        long long before = r.received;
        rc = mosquitto_loop(r.m, 0, 1);
        if (r.received == before && !mosquitto_want_write(r.m))
            break;
    }
    if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
        if (r.connected)
            log_warn("connection lost: %s", mosquitto_strerror(rc));
        r.connected = r.subscribed = 0;
        r.connecting_until = 0;
        if (r.ever && now >= r.retry_at) {
            r.backoff = util_backoff(r.backoff);
            r.retry_at = now + r.backoff;
        }
        usleep(10000);
    }
    now = util_now_ms();
    if (follow_step(r.follow, now) && r.subscribed) {
        char req[512];
        int n = snprintf(req, sizeof req, "{\"reply_to\":\"%s\"}", r.t_reply);
        log_info("asking the writer for a snapshot on %s", r.t_snapshot);
        mosquitto_publish(r.m, NULL, r.t_snapshot, n, req, 1, false);
        follow_asked(r.follow, now);
    }
    ack();
    r.status_dirty |= follow_dirty(r.follow) || follow_pending(r.follow);
    if (r.connected && (r.status_dirty || !r.last_status_ms) &&
        now - r.last_status_ms >= cf.status_interval * 1000) {
        publish_status(cf.promote ? "promoting" : NULL);
        r.status_dirty = 0;
    }
}

/* The path of mosqlite-writer: --writer, else beside this program, else $PATH. */
static const char *writer_path(char *buf, size_t len)
{
    ssize_t n;
    char *slash;

    if (cf.writer)
        return cf.writer;
    n = readlink("/proc/self/exe", buf, len - 32);
    if (n > 0) {
        buf[n] = '\0';
        if ((slash = strrchr(buf, '/'))) {
            strcpy(slash + 1, "mosqlite-writer");
            if (!access(buf, X_OK))
                return buf;
        }
    }
    return "mosqlite-writer";
}

/* --promote, first step: turn until every change queued for this replica is applied and
 * the changes topic has been quiet a while. 0 when caught up (or a signal came: then
 * stop_requested is set), else EXIT_FATAL with the reason logged. */
static int catch_up(void)
{
    long long start = util_now_ms();

    log_info("promoting: applying every change still queued for this replica");
    while (!stop_requested) {
        long long now = util_now_ms();
        turn();
        if (now - start > PROMOTE_MAX_MS) {
            log_error("cannot promote: %s after %d s (state %s, %zu changes pending, writer status %s)",
                      r.subscribed ? "not caught up" : "no connection to the broker", PROMOTE_MAX_MS / 1000,
                      follow_state(r.follow), follow_pending(r.follow),
                      r.writer_online < 0 ? "unknown" : r.writer_online ? "online" : "offline");
            return EXIT_FATAL;
        }
        if (!r.subscribed || strcmp(follow_state(r.follow), "following") || follow_pending(r.follow) ||
            follow_quiet_ms(r.follow, now) < PROMOTE_QUIET_MS)
            continue;
        if (r.writer_online == 1 && !cf.force) {
            log_error("cannot promote: the writer's status says online; stop it (or make sure its "
                      "machine is gone) first, or use --force");
            return EXIT_FATAL;
        }
        break;
    }
    return 0;
}

/* Clear our status, end the session: nothing should queue for this id any more. The
 * persistent session goes by connecting once more with clean session on. */
static void end_session(void)
{
    mosquitto_publish(r.m, NULL, r.t_status, 0, NULL, 1, true);
    mosquitto_unsubscribe(r.m, NULL, r.t_changes);
    mosquitto_loop(r.m, 200, 1);
    mosquitto_disconnect(r.m);
    mosquitto_loop(r.m, 100, 1);
    mosquitto_destroy(r.m);
    r.m = mosquitto_new(r.client_id, true, NULL);
    if (!r.m)
        return;
    mosquitto_int_option(r.m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (cf.username)
        mosquitto_username_pw_set(r.m, cf.username, cf.password);
    if (cf.cafile)
        mosquitto_tls_set(r.m, cf.cafile, NULL, NULL, NULL, NULL);
    if (!mosquitto_connect(r.m, cf.host, (int)cf.port, (int)cf.keepalive)) {
        mosquitto_loop(r.m, 500, 1);
        mosquitto_disconnect(r.m);
        mosquitto_loop(r.m, 100, 1);
    }
    mosquitto_destroy(r.m);
    r.m = NULL;
}

/* Replace this process with mosqlite-writer on the same file and broker, with the
 * options after "--". Returns only on failure. */
static int exec_writer(int nextra, char **extra)
{
    char port[16], ttl[16], path[PATH_MAX];
    const char *argv[64];
    int argc = 0, i;

    snprintf(port, sizeof port, "%lld", cf.port);
    argv[argc++] = writer_path(path, sizeof path);
    argv[argc++] = "--db";
    argv[argc++] = cf.db;
    argv[argc++] = "-h";
    argv[argc++] = cf.host;
    argv[argc++] = "-p";
    argv[argc++] = port;
    argv[argc++] = "--prefix";
    argv[argc++] = cf.prefix;
    if (cf.username) {
        argv[argc++] = "-u";
        argv[argc++] = cf.username;
        argv[argc++] = "-P";
        argv[argc++] = cf.password ? cf.password : "";
    }
    if (cf.cafile) {
        argv[argc++] = "--cafile";
        argv[argc++] = cf.cafile;
    }
    if (cf.etcd_endpoints) {      /* the writer campaigns for the key: a new epoch from etcd */
        snprintf(ttl, sizeof ttl, "%lld", cf.etcd_ttl);
        argv[argc++] = "--etcd-endpoints";
        argv[argc++] = cf.etcd_endpoints;
        argv[argc++] = "--etcd-key";
        argv[argc++] = cf.etcd_key;
        argv[argc++] = "--etcd-ttl";
        argv[argc++] = ttl;
    }
    for (i = 0; i < nextra && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    fflush(NULL);
    execvp(argv[0], (char *const *)argv);
    log_error("cannot start %s: %s", argv[0], strerror(errno));
    return EXIT_FATAL;
}

/* Wait for every queued change, end the session, hand the file to the writer. Returns
 * only on failure. */
static int promote(int nextra, char **extra)
{
    char err[512];
    long long epoch;
    int rc;

    if ((rc = catch_up()) || stop_requested)
        return rc;
    /* A new epoch: the writer on this file is a new generation; replicas refuse what a
     * writer of an older one still publishes, and such a writer stops when it sees it. */
    if ((epoch = store_new_epoch(r.store, follow_max_epoch(r.follow), err, sizeof err)) < 0) {
        log_error("cannot promote: %s", err);
        return EXIT_FATAL;
    }
    end_session();
    log_info("promoted at sequence %lld, epoch %lld: starting the writer on %s", store_pos(r.store)->seq,
             epoch, cf.db);
    store_release(r.store);
    return exec_writer(nextra, extra);
}

/* The id is one level of the status topic, part of the client id and of JSON: plain
 * characters only. 0, or -1 with the reason in err. */
static int id_check(const char *id, char *err, size_t errlen)
{
    const char *at = cfg_origin("id");
    size_t i, n = strlen(id);
    int ok = n >= 1 && n <= ID_MAX;

    for (i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)id[i]) || id[i] == '.' || id[i] == '_' || id[i] == '-';
    if (ok)
        return 0;
    return util_fail(err, errlen, "%s%s\"%.100s\" must be one topic level: 1 to %d letters, digits, "
                     "'.', '_' or '-'", at ? at : "", at ? ": id " : "--id ", id, ID_MAX);
}

/* The file, and the snapshot that makes it, are made beside path: find out now whether
 * they can be, not after asking the writer for a snapshot. */
static int can_create(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];

    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (access(dir, W_OK | X_OK))
        return util_fail(err, errlen, "cannot create files beside %s (%s: %s)", path, dir, strerror(errno));
    return 0;
}

/* The options cfg_parse_args cannot check alone. 0, or -1 with the reason on stderr. */
static int options_check(int npos, char **argv)
{
    char err[1024];

    if (npos && !cf.promote && !cf.etcd_endpoints) {
        fprintf(stderr, "mosqlite-replica: unexpected argument \"%s\" (try --help)\n", argv[1]);
        return -1;
    }
    if (cf.etcd_endpoints) {
        static char key[512];
        if (etcd_check_endpoints(cf.etcd_endpoints, err, sizeof err)) {
            fprintf(stderr, "mosqlite-replica: %setcd-endpoints: %s\n", cfg_origin("etcd-endpoints") ?
                    cfg_origin("etcd-endpoints") : "", err);
            return -1;
        }
        if (!cf.etcd_key) {
            snprintf(key, sizeof key, "/mosqlite/%s/leader", cf.prefix);
            cf.etcd_key = key;
        }
        if (!cf.etcd_key[0]) {
            fprintf(stderr, "mosqlite-replica: etcd-key: empty\n");
            return -1;
        }
    }
    if (strcasecmp(cf.synchronous, "FULL") && strcasecmp(cf.synchronous, "NORMAL") &&
        strcasecmp(cf.synchronous, "OFF") && strcasecmp(cf.synchronous, "EXTRA")) {
        fprintf(stderr, "mosqlite-replica: synchronous: \"%s\" is not FULL, NORMAL, OFF or EXTRA\n",
                cf.synchronous);
        return -1;
    }
    if (id_check(cf.id, err, sizeof err)) {
        fprintf(stderr, "mosqlite-replica: %s\n", err);
        return -1;
    }
    return 0;
}

/* SIGTERM and SIGINT only set the flag the loop reads; a lost peer is an error return. */
static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* After a signal: what was received has been acknowledged to the broker, so apply it
 * before going, or the next start would find a gap. Nothing more is read. Then the
 * offline status and a clean disconnect. */
static void shut_down(void)
{
    for (int i = 0; follow_pending(r.follow) && !strcmp(follow_state(r.follow), "following") && i < 50; i++)
        follow_step(r.follow, util_now_ms() + i * 100);
    if (follow_pending(r.follow))
        log_warn("stopping with %zu changes not applied: the next start will take a snapshot",
                 follow_pending(r.follow));
    if (r.connected) {
        publish_status("offline");
        mosquitto_loop(r.m, 100, 1);
        mosquitto_disconnect(r.m);
        mosquitto_loop(r.m, 100, 1);
    }
    log_info("stopped at sequence %lld", store_pos(r.store)->seq);
}

int main(int argc, char **argv)
{
    char err[1024], tmp[PATH_MAX];
    int npos = 0, rc, exit_code = 0;

    rc = cfg_parse_args(options, argc, argv, &npos, usage, err, sizeof err);
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "mosqlite-replica: %s\n", err);
        cfg_free(options);
        return rc < 0 ? EXIT_USAGE : 0;
    }
    if (options_check(npos, argv)) {
        cfg_free(options);
        return EXIT_USAGE;
    }
    log_init("mosqlite-replica", cf.verbose ? LOG_DEBUG : LOG_INFO);
    snprintf(tmp, sizeof tmp, "%s.incoming", cf.db);
    if (can_create(cf.db, err, sizeof err)) {
        log_error("%s", err);
        cfg_free(options);
        return EXIT_FATAL;
    }
    if (!(r.store = store_open(cf.db, cf.synchronous, err, sizeof err)) ||
        !(r.follow = follow_new(r.store, tmp, cf.bootstrap)) || open_mq(err, sizeof err)) {
        log_error("%s", r.follow || !r.store ? err : "out of memory");
        exit_code = EXIT_FATAL;
        goto cleanup;
    }
    follow_set_id(r.follow, cf.id);
    catch_signals();
    log_info("version %s: %s, %s, broker %s:%lld, prefix %s", MOSQLITE_VERSION, cf.db,
             store_pos(r.store)->known ? "has a position" : "empty", cf.host, cf.port, cf.prefix);

    if (cf.promote) {
        exit_code = promote(npos, argv + 1);
        goto cleanup;
    }
    if (cf.etcd_endpoints && !(r.watch = watch_start(&(struct watch_opts){cf.etcd_endpoints, cf.etcd_key, cf.id,
                                                                          cf.etcd_ttl}, err, sizeof err))) {
        log_error("%s", err);
        exit_code = EXIT_FATAL;
        goto cleanup;
    }
    while (!stop_requested) {
        long long epoch;
        turn();
        if (r.watch && watch_promote(r.watch, &epoch)) {
            /* etcd is the authority: the old writer stopped before its lease expired,
             * whatever its retained status still says. */
            watch_free(r.watch);
            r.watch = NULL;
            cf.promote = cf.force = 1;
            exit_code = promote(npos, argv + 1);
            goto cleanup;
        }
    }
    shut_down();
cleanup:
    watch_free(r.watch);
    if (r.m)
        mosquitto_destroy(r.m);
    mosquitto_lib_cleanup();
    follow_free(r.follow);
    store_close(r.store);
    free(r.t_changes);
    free(r.t_snapshot);
    free(r.t_writer_status);
    free(r.t_reply);
    free(r.t_status);
    free(r.t_ack);
    cfg_free(options);
    return exit_code;
}
