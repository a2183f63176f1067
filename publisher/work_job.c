/* work_job.c: one job of the agent (see work.h), run by a thread of its own:
 *
 *   - a spool of its own (a new directory), and a delivering thread for it
 *     (pipe_deliver.c), on a libmosqlite connection whose last will marks the build
 *     `lost` if the agent dies;
 *   - the build's start in the builds table (unless --no-build), through the spool;
 *   - the command, started without a shell in a process group of its own (so a cancel
 *     stops what it started too), killed with the agent (PR_SET_PDEATHSIG), the job in
 *     MOSQLITE_JOB_* variables and its payload on stdin (a file: a command that never
 *     reads it is never blocked by it), with the paths of its result and progress
 *     files (work_report.c);
 *   - its stdout and stderr read to their end into the spool (pipe_read.c), copied to
 *     the agent's own when --tee; then its result read (a refused one said in the log);
 *   - the build's end, then the wait until the spool is delivered: every line of the
 *     job is in the file before the agent is told it has finished (and before it says
 *     done or fail).
 * The agent's thread reads `finished`, and signals the command's group. */
#define _GNU_SOURCE                     /* pipe2, O_TMPFILE */
#include "work.h"
#include "pipe_build.h"
#include "pipe_deliver.h"
#include "pipe_read.h"
#include "request.h"
#include "log.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The payload in an unlinked file, for the command's stdin. -1 on failure. */
static int payload_file(const struct job *j)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    size_t len = strlen(j->payload), off = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/mosqlite-work.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
        return -1;
    unlink(path);
    while (off < len) {
        if ((n = write(fd, j->payload + off, len - off)) < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* NAME=VALUE into env[*n] (heap). */
static void env_put(char **env, int *n, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void env_put(char **env, int *n, const char *name, const char *fmt, ...)
{
    va_list ap;
    char *v = NULL, *s;

    va_start(ap, fmt);
    if (vasprintf(&v, fmt, ap) < 0)
        v = NULL;
    va_end(ap);
    if (v && asprintf(&s, "%s=%s", name, v) >= 0)
        env[(*n)++] = s;
    free(v);
}

/* The command's environment: ours without any MOSQLITE_JOB_*, then the job's. */
static char **job_env(const struct job *j)
{
    const struct work_conf *wc = j->wc;
    size_t n = 0, i;
    char **env;
    int k = 0;

    while (environ[n])
        n++;
    if (!(env = calloc(n + 20, sizeof *env)))
        return NULL;
    for (i = 0; i < n; i++)
        if (strncmp(environ[i], "MOSQLITE_JOB_", 13))
            env[k++] = environ[i];
    env_put(env, &k, "MOSQLITE_JOB_ID", "%lld", j->id);
    env_put(env, &k, "MOSQLITE_JOB_ATTEMPT", "%lld", j->attempt);
    env_put(env, &k, "MOSQLITE_JOB_QUEUE", "%s", j->queue);
    if (j->build_id[0] == '"') {        /* a string: its text, not its JSON */
        cJSON *b = cJSON_Parse(j->build_id);
        if (cJSON_IsString(b))
            env_put(env, &k, "MOSQLITE_JOB_BUILD_ID", "%s", b->valuestring);
        cJSON_Delete(b);
    } else {
        env_put(env, &k, "MOSQLITE_JOB_BUILD_ID", "%s", j->build_id);
    }
    env_put(env, &k, "MOSQLITE_JOB_LOST", "%lld", j->lost);
    env_put(env, &k, "MOSQLITE_JOB_LEASE_MS", "%lld", j->lease_ms);
    env_put(env, &k, "MOSQLITE_JOB_TIMEOUT_MS", "%lld", j->timeout_ms);
    env_put(env, &k, "MOSQLITE_JOB_WORKER", "%s", wc->worker);
    env_put(env, &k, "MOSQLITE_JOB_SESSION", "%s", wc->session);
    env_put(env, &k, "MOSQLITE_JOB_HOST", "%s", wc->host);
    if (j->enqueued_at)
        env_put(env, &k, "MOSQLITE_JOB_ENQUEUED_AT", "%s", j->enqueued_at);
    job_report_env(j, env, &k);
    env[k] = NULL;
    return env;
}

/* Start the command: its own process group, killed with this thread's process, stdin
 * the payload, stdout and stderr on pipes. The pid, or -1 (errno). */
static pid_t start_command(struct job *j, int *out_fd, int *err_fd)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, in = -1, e;
    char **env = NULL;
    pid_t pid = -1, parent = getpid();

    if ((in = payload_file(j)) < 0 || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) ||
        !(env = job_env(j)))
        goto out;
    pid = fork();
    if (pid == 0) {
        static const char pre[] = "mosqlite-work: cannot run ";
        struct sigaction sa;
        sigset_t none;

        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)        /* the agent died before prctl */
            _exit(137);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGQUIT, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(in, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        environ = env;
        execvp(j->wc->cmd[0], j->wc->cmd);
        e = errno;
        (void)!write(2, pre, sizeof pre - 1);
        (void)!write(2, j->wc->cmd[0], strlen(j->wc->cmd[0]));
        (void)!write(2, ": ", 2);
        (void)!write(2, strerror(e), strlen(strerror(e)));
        (void)!write(2, "\n", 1);
        _exit(e == ENOENT ? 127 : 126);
    }
    if (pid > 0)
        setpgid(pid, pid);              /* as the child does: no race with a kill */
out:
    e = errno;
    if (in >= 0)
        close(in);
    if (po[1] >= 0)
        close(po[1]);
    if (pe[1] >= 0)
        close(pe[1]);
    if (pid <= 0) {
        if (po[0] >= 0)
            close(po[0]);
        if (pe[0] >= 0)
            close(pe[0]);
        pid = -1;
    } else {
        *out_fd = po[0];
        *err_fd = pe[0];
    }
    if (env) {
        int i;
        for (i = 0; env[i]; i++)
            if (!strncmp(env[i], "MOSQLITE_JOB_", 13))
                free(env[i]);
        free(env);
    }
    errno = e;
    return pid;
}

/* {"table":"T", (JSON-quoted); NULL when out of memory. */
static char *table_head(const char *table)
{
    cJSON *tq = cJSON_CreateString(table);
    char *quoted = tq ? cJSON_PrintUnformatted(tq) : NULL, *head = NULL;

    if (quoted && (head = malloc(strlen(quoted) + 16)))
        sprintf(head, "{\"table\":%s,", quoted);
    cJSON_free(quoted);
    cJSON_Delete(tq);
    return head;
}

/* The log's settings for this job, as the build wrapper's. with receives the
 * {"build_id": ...} object (to free). */
/* The lines' and the build row's attempt is the job's: attempts of one job's build are
 * numbered as the job's are. */
static void job_pipe_conf(const struct job *j, struct pipe_conf *pc, char **with, char **attempt)
{
    const struct work_conf *wc = j->wc;

    memset(pc, 0, sizeof *pc);
    if (asprintf(with, "{\"build_id\":%s,\"attempt\":%lld}", j->build_id, j->attempt) < 0)
        *with = NULL;
    if (asprintf(attempt, "%lld", j->attempt) < 0)
        *attempt = NULL;
    pc->attempt = *attempt;
    pc->table = wc->log_table;
    pc->column = wc->log_column;
    pc->with = *with;
    pc->stream_column = wc->stream_column;
    pc->time_column = wc->time_column;
    pc->build_table = wc->build_table;
    pc->spool_max = wc->spool_max;
    pc->tee = wc->tee;
    pc->mo = wc->mo;
}

/* The build's end for a job the agent stopped: what happened to the job, not how its
 * command died (a SIGKILL after the grace is still a cancel). */
static char *stopped_record(char *rec, enum job_stop stop)
{
    static const char *const status[] = {
        [STOP_CANCEL] = "cancelled", [STOP_LEASE_LOST] = "lost", [STOP_TIMEOUT] = "failed",
        [STOP_RELEASE] = "queued",
    };
    cJSON *o = rec ? cJSON_Parse(rec) : NULL, *set = cJSON_GetObjectItemCaseSensitive(o, "set");
    char *out = NULL;

    if (stop != STOP_NONE && cJSON_IsObject(set)) {
        cJSON_ReplaceItemInObjectCaseSensitive(set, "status", cJSON_CreateString(status[stop]));
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    if (!out)
        return rec;
    cJSON_free(rec);
    return out;
}

static void put_build_record(spool *sp, char *rec)
{
    if (rec)
        spool_append(sp, 'B', rec, strlen(rec), 1);
    cJSON_free(rec);
}

/* Wait until the deliverer has sent every record, or the agent gives up (abandon:
 * then up to linger_s more without progress). 1 when all is in. */
static int wait_delivered(struct job *j, struct deliverer *d)
{
    struct spool_stats st;
    unsigned long long done = 0;
    double progress_at = util_now_exact_ms();

    while (!d->finished) {
        spool_stats(d->sp, &st);
        if (st.done != done) {
            done = st.done;
            progress_at = util_now_exact_ms();
        }
        if (j->abandon && util_now_exact_ms() - progress_at >= j->wc->linger_s * 1e3)
            break;
        usleep(20000);
    }
    spool_stats(d->sp, &st);
    return d->finished && st.pending == 0;
}

/* The job's spool directory (under --spool, $TMPDIR or /tmp) and its spool; NULL when
 * either cannot be made (j->spool_dir is then ""). */
static spool *open_spool(struct job *j)
{
    const struct work_conf *wc = j->wc;
    const char *tmp = getenv("TMPDIR");
    spool *sp = NULL;
    char err[512];

    snprintf(j->spool_dir, sizeof j->spool_dir, "%s/mosqlite-work.XXXXXX",
             wc->spool_base ? wc->spool_base : tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(j->spool_dir)) {
        log_error("job %lld: cannot make a spool directory %s: %s", j->id, j->spool_dir,
                  strerror(errno));
        j->spool_dir[0] = '\0';
    } else if (!(sp = spool_open(j->spool_dir, 0, wc->spool_max, err, sizeof err))) {
        log_error("job %lld: %s", j->id, err);
        rmdir(j->spool_dir);
        j->spool_dir[0] = '\0';
    }
    return sp;
}

/* The log's end: delivered (or given up on, j->abandon), the deliverer stopped, what was
 * dropped or is still pending said; the spool closed once the deliverer has stopped.
 * Whether it has (joined). */
static int end_spool(struct job *j, struct deliverer *d, spool *sp, int threaded, pthread_t *th)
{
    const struct work_conf *wc = j->wc;
    struct spool_stats st;
    int joined = 1;

    spool_end(sp);
    j->log_ok = threaded && wait_delivered(j, d);
    if (threaded)
        joined = deliver_stop(d, *th);
    spool_stats(sp, &st);
    j->dropped = st.dropped;
    j->pending = st.pending;
    if (st.dropped)
        log_warn("job %lld: %llu lines were dropped: the spool was full (--spool-max %llu)",
                 j->id, st.dropped, wc->spool_max);
    if (st.pending)
        log_warn("job %lld: %llu records not delivered: kept in the spool %s; send them with "
                 "`mosqlite-pub --deliver %s`", j->id, st.pending, j->spool_dir, j->spool_dir);
    if (joined)
        spool_close(sp, st.pending == 0);
    return joined;
}

/* The command run, its output read into the log, and the build row's end. Its wait
 * status (126 << 8 when it could not start). */
static int run_command(struct job *j, struct reader *r, struct source *src, mosqlite_lines **tpl,
                       struct pipe_conf *pc)
{
    const struct work_conf *wc = j->wc;
    char *rec[2], reason[768];
    const char *why;
    int wstatus = 0;
    pid_t pid;
    double started, ended = 0;

    started = util_now_exact_ms();
    pthread_mutex_lock(&j->lock);
    pid = start_command(j, &src[0].fd, &src[1].fd);
    j->pid = pid;
    j->started = pid > 0;
    pthread_mutex_unlock(&j->lock);
    if (pid < 0) {
        log_error("job %lld: cannot start %s: %s", j->id, wc->cmd[0], strerror(errno));
        wstatus = 126 << 8;
    } else {
        src[0].out = wc->tee ? 1 : -1;
        src[1].out = wc->tee ? 2 : -1;
        src[0].tpl = tpl[0];
        src[1].tpl = tpl[1];
        read_all(r, src, 2, pid, &wstatus, &ended, 0);
        if (j->stop == STOP_NONE && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
            (why = job_report_result(j, reason, sizeof reason)) && r->sp)
            reader_line(r, tpl[1], why);    /* a done without its result: the log says why */
        if (r->sp && wc->build_table) {
            build_end(pc, wstatus, j->stop != STOP_NONE, ended - started, &rec[0], &rec[1]);
            put_build_record(r->sp, stopped_record(rec[0], j->stop));
            put_build_record(r->sp, rec[1]);
        }
    }
    return wstatus;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    const struct work_conf *wc = j->wc;
    struct pipe_conf pc;
    struct deliverer d;
    struct reader r;
    struct source src[2];
    mosqlite_lines *tpl[2] = {NULL, NULL};
    char err[512], *with = NULL, *attempt = NULL, *will = NULL, *head = NULL;
    pthread_t th;
    int threaded = 0, joined = 1, wstatus = 0, i;

    memset(&r, 0, sizeof r);
    memset(src, 0, sizeof src);
    memset(&d, 0, sizeof d);
    job_pipe_conf(j, &pc, &with, &attempt);
    r.sp = open_spool(j);
    if (wc->build_table && r.sp)
        will = build_will(&pc);
    deliver_init(&d, r.sp, j->spool_dir, &wc->mo, will);
    r.time_column = wc->time_column && *wc->time_column ? wc->time_column : NULL;
    r.head = head = table_head(wc->log_table);
    for (i = 0; i < 2; i++) {
        tpl[i] = mosqlite__lines_stream(wc->log_column, with,
                                        wc->stream_column && *wc->stream_column ? wc->stream_column : NULL,
                                        i == 0 ? "stdout" : "stderr", err, sizeof err);
        if (!tpl[i])
            log_error("job %lld: %s", j->id, err);
        src[i].buf = malloc(PIPE_BUF_LEN);
    }
    if (!head || !tpl[0] || !tpl[1] || !src[0].buf || !src[1].buf) {
        log_error("job %lld: out of memory, or a bad log template", j->id);
        wstatus = 126 << 8;
        goto end;
    }
    if (r.sp && wc->build_table)
        put_build_record(r.sp, build_start(&pc, wc->cmd));
    if (r.sp && !(threaded = !pthread_create(&th, NULL, deliver_main, &d)))
        log_error("job %lld: cannot start the delivering thread: lines stay in the spool", j->id);
    wstatus = run_command(j, &r, src, tpl, &pc);
end:
    pthread_mutex_lock(&j->lock);
    j->pid = -1;                        /* reaped: never signalled again */
    pthread_mutex_unlock(&j->lock);
    if (r.sp)
        joined = end_spool(j, &d, r.sp, threaded, &th);
    j->lines = r.lines;
    for (i = 0; i < 2; i++) {
        mosqlite_lines_free(tpl[i]);
        free(src[i].buf);
    }
    reader_free(&r);
    free(head);
    free(with);
    free(attempt);
    if (joined)
        cJSON_free(will);
    j->wstatus = wstatus;
    __atomic_store_n(&j->finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int job_start(struct job *j)
{
    int rc;

    pthread_mutex_init(&j->lock, NULL);
    job_report_open(j);
    if ((rc = pthread_create(&j->th, NULL, job_main, j))) {
        job_report_close(j);
        pthread_mutex_destroy(&j->lock);
        errno = rc;
        return -1;
    }
    return 0;
}

void job_signal(struct job *j, int sig)
{
    pthread_mutex_lock(&j->lock);
    if (j->pid > 0)
        kill(-j->pid, sig);
    pthread_mutex_unlock(&j->lock);
}

void job_free(struct job *j)
{
    if (!j)
        return;
    pthread_join(j->th, NULL);
    pthread_mutex_destroy(&j->lock);
    job_report_close(j);
    free(j->queue);
    free(j->payload);
    free(j->claim);
    free(j->enqueued_at);
    free(j->build_id);
    free(j->out_msg);
    free(j);
}
