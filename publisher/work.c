/* work.c: mosqlite-work, the job agent: its options (the command line over -c FILE
 * over the environment over the user's config file, as mosqlite-pub), its signals and
 * its exit status. The agent itself is work_agent.c; see work.h for the parts. */
#include "cfg.h"
#include "log.h"
#include "work.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: mosqlite-work [options] QUEUE[,QUEUE...] -- COMMAND [ARGS...]\n"
    "\n"
    "A job agent: it claims jobs from the queues (in that order) through mosqlite-writer,\n"
    "runs COMMAND for each (no shell; the job in MOSQLITE_JOB_* variables, its payload on\n"
    "stdin), stores the command's stdout and stderr lines in --log-table (as the build\n"
    "wrapper of mosqlite-pub does), and once every line is in the file says done (exit\n"
    "0) or fail (with the exit status). --jobs N runs N at once. A cancel stops the\n"
    "command (SIGTERM to its process group, SIGKILL after --grace). Its connection's Last\n"
    "Will gives its jobs back at once if it dies. SIGTERM or SIGINT: no more claims, the\n"
    "jobs in hand finish (a second signal, or --drain seconds, releases them).\n"
    "Exit status: 0 stopped cleanly; 1 the writer or the broker refused a claim; 2 an\n"
    "outcome or a log was left unconfirmed; 3 bad arguments or config; 4 could not connect.\n";

static struct cfg_client cl = CFG_CLIENT_INIT;
static char *o_worker, *o_log_table, *o_log_column, *o_stream_column, *o_time_column,
            *o_build_table, *o_spool;
static long long o_jobs = 1, o_claim_wait = 30, o_grace = 10, o_drain = 0,
                 o_will_delay = 0, o_keepalive = 10, o_spool_max = 64LL << 20, o_linger = 10;
static int o_verbose, o_tee, o_no_build;

static const struct cfg_opt opts[] = {
    CFG_CLIENT_OPTIONS(cl),
    CFG_CLIENT_END_OPTIONS(cl),
    {"worker", 'w', CFG_STR, &o_worker, 0, 0, 0, "NAME",
     "this agent's name, unique among the agents (the host name); its MQTT client id"},
    {"jobs", 'j', CFG_INT, &o_jobs, 1, WORK_MAX_JOBS, 0, "N", "jobs run at once"},
    {"claim-wait", 0, CFG_INT, &o_claim_wait, 1, 3600, 0, "SECONDS",
     "how long a claim waits in the writer before it is made again"},
    {"grace", 0, CFG_INT, &o_grace, 0, 3600, 0, "SECONDS",
     "a stopped command: SIGTERM, then SIGKILL after this long"},
    {"drain", 0, CFG_INT, &o_drain, 0, 864000, 0, "SECONDS",
     "after SIGTERM, how long the jobs in hand may go on before they are released (0: no limit)"},
    {"will-delay", 0, CFG_INT, &o_will_delay, 0, 3600, 0, "SECONDS",
     "a reconnect within this long keeps the jobs (0: a lost connection gives them back)"},
    {"keepalive", 0, CFG_INT, &o_keepalive, 5, 3600, 0, "SECONDS",
     "MQTT keepalive: a dead link is seen after 1.5 times this"},
    {"log-table", 0, CFG_STR, &o_log_table, 0, 0, 0, "TABLE", "the log's table (build_logs)"},
    {"log-column", 0, CFG_STR, &o_log_column, 0, 0, 0, "COLUMN", "the log's text column (line)"},
    {"stream-column", 0, CFG_STR, &o_stream_column, 0, 0, 0, "COLUMN",
     "stdout or stderr goes here (stream; \"\": none)"},
    {"time-column", 0, CFG_STR, &o_time_column, 0, 0, 0, "COLUMN",
     "the time each line was read goes here (none)"},
    {"build-table", 0, CFG_STR, &o_build_table, 0, 0, 0, "TABLE",
     "the builds table: each job's start and end in its row (builds)"},
    {"no-build", 0, CFG_FLAG, &o_no_build, 0, 0, 0, NULL, "record no start and end in a builds table"},
    {"spool", 0, CFG_STR, &o_spool, 0, 0, 0, "DIR",
     "where each job's spool directory is made ($TMPDIR)"},
    {"spool-max", 0, CFG_INT, &o_spool_max, 65536, 1LL << 40, 0, "BYTES",
     "most undelivered bytes spooled per job"},
    {"linger", 0, CFG_INT, &o_linger, 0, 86400, 0, "SECONDS",
     "stopping: wait this long without progress for a log to be delivered"},
    {"tee", 0, CFG_FLAG, &o_tee, 0, 0, 0, NULL, "copy the commands' output to stdout and stderr"},
    {"verbose", 'v', CFG_FLAG, &o_verbose, 0, 0, 0, NULL, "say more: the start, the totals at the end"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static volatile sig_atomic_t nstop;

static void on_signal(int sig)
{
    nstop++;
}

/* A name that goes into JSON and topics as it is: printable ASCII, none of "\/+#. */
static int plain(const char *s, const char *also_bad)
{
    if (!*s || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(also_bad, *s))
            return 0;
    return 1;
}

/* QUEUE[,QUEUE...] into wc->queues; 0, or -1 with a reason. */
static int split_queues(struct work_conf *wc, char *list, char *err, size_t errlen)
{
    char *q, *save = NULL;
    int i;

    for (q = strtok_r(list, ",", &save); q; q = strtok_r(NULL, ",", &save)) {
        if (wc->nqueues == WORK_MAX_QUEUES) {
            snprintf(err, errlen, "at most %d queues", WORK_MAX_QUEUES);
            return -1;
        }
        if (!plain(q, "\"\\/+#") || !strcmp(q, "worker") || !strcmp(q, "to") || !strcmp(q, "events")) {
            snprintf(err, errlen, "queue name \"%s\": 1 to 128 printable ASCII characters, "
                     "no '/', '+', '#', quote or backslash, not worker, to or events", q);
            return -1;
        }
        for (i = 0; i < wc->nqueues; i++)
            if (!strcmp(wc->queues[i], q)) {
                snprintf(err, errlen, "queue %s is named twice", q);
                return -1;
            }
        wc->queues[wc->nqueues++] = q;
    }
    if (!wc->nqueues) {
        snprintf(err, errlen, "no queue named (QUEUE[,QUEUE...])");
        return -1;
    }
    return 0;
}

static int plain_column(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* What the options and arguments cannot be together: the reason, or NULL. */
/* --spool DIR: made if it is missing (not its parents), and a directory this agent can
 * write in; else why not. */
static const char *spool_base(const char *dir)
{
    static char why[600];
    struct stat st;

    if (!*dir)
        return "--spool: an empty directory name";
    if (mkdir(dir, 0700) && errno != EEXIST)
        snprintf(why, sizeof why, "--spool %.400s: cannot make it: %s", dir, strerror(errno));
    else if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        snprintf(why, sizeof why, "--spool %.400s: not a directory", dir);
    else if (access(dir, W_OK | X_OK))
        snprintf(why, sizeof why, "--spool %.400s: cannot write in it: %s", dir, strerror(errno));
    else
        return NULL;
    return why;
}

static const char *check_options(int npos, char **cmd, const char *host)
{
    const char *why = NULL;

    if (npos != 1)
        why = npos ? "one QUEUE[,QUEUE...] argument only (the command goes after --)"
                   : "no queue named: mosqlite-work QUEUE[,QUEUE...] -- COMMAND [ARGS...]";
    else if (!cmd || !cmd[0])
        why = "no command: mosqlite-work QUEUE[,QUEUE...] -- COMMAND [ARGS...]";
    else if ((why = cfg_client_check(&cl)) != NULL) {
        /* said by the caller */
    } else if (o_worker && !plain(o_worker, "\"\\/+#"))
        why = "--worker: 1 to 128 printable ASCII characters, no space, '/', '+', '#', quote or backslash";
    else if (!o_worker && !plain(host, "\"\\/+#"))
        why = "this host's name cannot be a worker name: give --worker NAME";
    else if (!*cl.prefix || strpbrk(cl.prefix, "+#"))
        why = "--prefix must be a topic without wildcards";
    else if ((o_log_table && (!*o_log_table || strpbrk(o_log_table, "/+#"))) ||
             (o_build_table && (!*o_build_table || strpbrk(o_build_table, "/+#"))))
        why = "a table name must be a plain table name";
    else if ((o_log_column && (!*o_log_column || !plain_column(o_log_column))) ||
             (o_stream_column && !plain_column(o_stream_column)) ||
             (o_time_column && !plain_column(o_time_column)))
        why = "a column name must not be empty or hold quotes, backslashes or control characters";
    else if (o_spool)
        why = spool_base(o_spool);
    return why;
}

/* The agent's settings from the options (the defaults where unset). */
static void set_conf(struct work_conf *wc, char **cmd, const char *host)
{
    wc->cmd = cmd;
    wc->prefix = cl.prefix;
    wc->worker = o_worker ? o_worker : host;
    wc->host = host;
    wc->jobs = (int)o_jobs;
    wc->wait_ms = (int)o_claim_wait * 1000;
    wc->grace_ms = (int)o_grace * 1000;
    wc->drain_s = (int)o_drain;
    wc->will_delay_s = (int)o_will_delay;
    wc->keepalive = (int)o_keepalive;
    wc->linger_s = (int)o_linger;
    wc->verbose = o_verbose;
    wc->log_table = o_log_table ? o_log_table : "build_logs";
    wc->log_column = o_log_column ? o_log_column : "line";
    wc->stream_column = o_stream_column ? o_stream_column : "stream";
    wc->time_column = o_time_column;
    wc->build_table = o_no_build ? NULL : o_build_table ? o_build_table : "builds";
    wc->spool_base = o_spool;
    wc->spool_max = (unsigned long long)o_spool_max;
    wc->tee = o_tee;
    wc->cl = &cl;
    cliconn_mosqlite_options(&wc->mo, &cl);
}

int main(int argc, char **argv)
{
    static struct work_conf wc;
    char err[512], host[256], **cmd = NULL;
    const char *why = NULL;
    struct sigaction sa;
    int npos = 0, rc, status;

    log_init("mosqlite-work", LOG_INFO);
    /* The user's defaults: $XDG_CONFIG_HOME/mosqlite-work (or ~/.config/mosqlite-work),
     * then MOSQLITE_KEY variables, as mosqlite-pub. */
    if ((rc = cfg_start(opts, "mosqlite-work", &argc, argv, &cmd, &npos, usage)))
        return rc > 0 ? 0 : WORK_EXIT_USAGE;
    if (gethostname(host, sizeof host))
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    why = check_options(npos, cmd, host);
    if (why) {
        log_error("%s", why);
        cfg_free(opts);
        return WORK_EXIT_USAGE;
    }
    if (split_queues(&wc, argv[1], err, sizeof err)) {
        log_error("%s", err);
        cfg_free(opts);
        return WORK_EXIT_USAGE;
    }
    set_conf(&wc, cmd, host);
    if (mosqlite_new_id(wc.session)) {
        log_error("no randomness for a session id");
        cfg_free(opts);
        return WORK_EXIT_USAGE;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    status = agent_run(&wc, &nstop);
    cfg_free(opts);
    return status;
}
