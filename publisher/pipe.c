/* pipe.c: the log pipe (`mosqlite-pub --lines COLUMN TABLE`) and the build wrapper
 * (`... TABLE -- COMMAND ARGS...`). The pipe must never harm the build it watches, so
 * the work is split in two:
 *
 *   - the reading side (the main thread) reads its input to the end whatever happens:
 *     it copies what it reads to its own stdout as it reads it (a tee; a cut-off
 *     reader of that copy only ends the copy), cuts the input into lines, and appends
 *     them as records to the spool on disk (spool.c), the lines of one read in one
 *     write to the page cache. When the spool is full a line is dropped and counted,
 *     never waited for. As a wrapper it runs the command without a shell,
 *     reads its stdout and stderr (each line keeps its stream) and stores their lines
 *     one at a time in the order it read them across the two pipes, and records the
 *     build's start and end in the builds table as records of the same spool.
 *   - the delivering side (a thread) connects when it can, takes the records in order
 *     (up to 1,000 lines of one kind and 192 KiB) and publishes them as transactions
 *     under the ids SPOOLID-SEQ, several in flight (--lines-window), and forgets them
 *     once the writer's receipts have come. The library republishes under the same id
 *     until the receipt comes, so a batch is applied exactly once; the broker keeps
 *     one publisher's messages in order, and after a republish nothing new goes out
 *     until all in flight are answered (see pipe_deliver.c).
 *
 * When the input has ended, the program waits while delivery makes progress, and up
 * to linger seconds without any; what is left stays in the spool directory for
 * `mosqlite-pub --deliver DIR` or a later run with the same --spool.
 *
 * This file sets a run up and ends it. The parts: pipe_read.c (the reading side),
 * pipe_deliver.c (the delivering side), pipe_command.c (the command and the signals
 * passed on to it), pipe_build.c (the build's row), spool.c (the spool). */
#include "pipe.h"
#include "pipe_build.h"
#include "pipe_cancel.h"
#include "pipe_command.h"
#include "pipe_deliver.h"
#include "pipe_read.h"
#include "request.h"
#include "log.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A template for one stream: --with, as written, plus the stream column. */
static mosqlite_lines *template_for(const struct pipe_conf *pc, const char *stream)
{
    const char *sc = pc->stream_column && *pc->stream_column ? pc->stream_column : NULL;
    mosqlite_lines *t;
    char err[256];

    if (!(t = mosqlite__lines_stream(pc->column, pc->with, stream ? sc : NULL, stream, err, sizeof err)))
        log_error("%s", err);
    return t;
}

/* Wait for the deliverer: until it has finished, or nothing was delivered for
 * quiet_s seconds, or a new signal came. 1 when it finished. */
static int drain(struct deliverer *d, int quiet_s)
{
    struct spool_stats st;
    unsigned long long done = 0;
    double progress_at = util_now_exact_ms();
    int sigs = command_signals();

    while (!d->finished) {
        spool_stats(d->sp, &st);
        if (st.done != done) {
            done = st.done;
            progress_at = util_now_exact_ms();
        }
        if (util_now_exact_ms() - progress_at >= quiet_s * 1e3 || command_signals() != sigs)
            break;
        usleep(20000);
    }
    return d->finished;
}

/* Open the spool: --spool DIR, or a new private directory. */
static spool *open_spool(const struct pipe_conf *pc, char *dir, size_t dirlen, int *made)
{
    char err[512];
    const char *tmp = getenv("TMPDIR");
    spool *sp;

    *made = 0;
    if (pc->spool_dir) {
        snprintf(dir, dirlen, "%s", pc->spool_dir);
    } else {
        snprintf(dir, dirlen, "%s/mosqlite-pub.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            log_error("cannot make a spool directory %s: %s", dir, strerror(errno));
            return NULL;
        }
        *made = 1;
    }
    if (!(sp = spool_open(dir, 0, pc->spool_max, err, sizeof err))) {
        log_error("%s", err);
        if (*made)
            rmdir(dir);
    }
    return sp;
}

/* End of a run: report, and remove the spool when it is empty. */
static void finish_spool(const struct pipe_conf *pc, struct deliverer *d, int joined,
                         const char *dir, unsigned long long lines, double t0)
{
    struct spool_stats st;

    spool_stats(d->sp, &st);
    if (pc->verbose)
        log_info("lines %llu, delivered %llu in %llu transactions, rejected %llu, dropped %llu, "
                 "left in the spool %llu, elapsed %.3f s", lines, d->applied, d->batches,
                 d->rejected, st.dropped, st.pending, (util_now_exact_ms() - t0) / 1e3);
    if (st.dropped)
        log_warn("%llu lines were dropped: the spool was full (--spool-max %llu)", st.dropped,
                 pc->spool_max);
    if (st.pending)
        log_warn("%llu records not delivered: kept in the spool %s; send them with "
                 "`mosqlite-pub --deliver %s` (same -h/-p), or a later run with --spool %s",
                 st.pending, dir, dir, dir);
    if (joined)
        spool_close(d->sp, st.pending == 0);
    /* else the deliverer still runs (a connect that hangs): the exit ends it */
}

/* The start every record of the table shares, {"table":"T", (JSON-quoted); NULL when
 * out of memory. The caller frees it. */
static char *table_head(const char *table)
{
    cJSON *tq = cJSON_CreateString(table);
    char *quoted = tq ? cJSON_PrintUnformatted(tq) : NULL, *head = NULL;

    if (quoted && (head = malloc(strlen(quoted) + 16)))
        sprintf(head, "{\"table\":%s,", quoted);
    else
        log_error("out of memory");
    cJSON_free(quoted);
    cJSON_Delete(tq);
    return head;
}

/* What the pipe reads: the command's stdout and stderr (started here; *pid is set), or
 * without a command our stdin. Each copied to ours when pc->tee, each with its
 * template (tpl[0] stdin's, tpl[1] and tpl[2] the command's). Returns how many, or -1
 * when the command cannot start. */
static int open_sources(const struct pipe_conf *pc, char **cmd, struct source *src,
                        mosqlite_lines **tpl, pid_t *pid)
{
    if (!cmd) {
        src[0].fd = 0;
        src[0].out = pc->tee ? 1 : -1;
        src[0].tpl = tpl[0];
        return 1;
    }
    if ((*pid = command_start(cmd, &src[0].fd, &src[1].fd)) < 0) {
        log_error("cannot start %s: %s", cmd[0], strerror(errno));
        return -1;
    }
    src[0].out = pc->tee ? 1 : -1;
    src[1].out = pc->tee ? 2 : -1;
    src[0].tpl = tpl[1];
    src[1].tpl = tpl[2];
    return 2;
}

/* The window and the transactions' size from the options. */
static void size_deliverer(struct deliverer *d, const struct pipe_conf *pc)
{
    if (pc->window > 0)
        d->window = pc->window;
    if (pc->batch_lines > 0)
        d->batch_lines = (size_t)pc->batch_lines;
}

/* Append one of the build's records (start or end) to the spool: never dropped. */
static void put_build_record(spool *sp, char *rec)
{
    if (rec)
        spool_append(sp, 'B', rec, strlen(rec), 1);
    cJSON_free(rec);
}

/* The line templates (ntpl: the pipe's, or the command's stdout and stderr as well) and
 * the sources' buffers; -1 when one cannot be made (those made are the caller's to free). */
static int make_sources(const struct pipe_conf *pc, int ntpl, mosqlite_lines **tpl, struct source *src)
{
    int i;

    for (i = 0; i < ntpl; i++)
        if (!(tpl[i] = template_for(pc, i == 0 ? NULL : i == 1 ? "stdout" : "stderr")))
            return -1;
    for (i = 0; i < 2; i++)
        if (!(src[i].buf = malloc(PIPE_BUF_LEN))) {
            log_error("out of memory");
            return -1;
        }
    return 0;
}

/* The build's end, its two updates of the row (build_end), into the spool. */
static void put_build_end(const struct pipe_conf *pc, spool *sp, int wstatus, int signalled, double ms)
{
    char *rec[2];

    build_end(pc, wstatus, signalled, ms, &rec[0], &rec[1]);
    put_build_record(sp, rec[0]);
    put_build_record(sp, rec[1]);
}

/* The spool ended: the delivering thread (th, NULL when none runs) given linger_s to
 * drain it, unless a plain pipe got a second signal, then stopped; the spool finished.
 * Whether the thread was joined (1 when there was none). */
static int end_delivery(const struct pipe_conf *pc, struct deliverer *d, pthread_t *th, int has_cmd,
                        const char *dir, unsigned long long lines, double t0)
{
    int joined = 1;

    spool_end(d->sp);
    if (th && (has_cmd || command_signals() < 2))
        drain(d, pc->linger_s);
    if (th)
        joined = deliver_stop(d, *th);
    finish_spool(pc, d, joined, dir, lines, t0);
    d->sp = NULL;                    /* closed by finish_spool, or still in use */
    return joined;
}

/* The command's end as this program's exit status (128 + N when signal N killed it). */
static int exit_status(int wstatus)
{
    return WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
}

int pipe_run(const struct pipe_conf *conf, char **cmd)
{
    struct pipe_conf run = *conf, *pc = &run;
    char *attempt = NULL, *with = NULL;
    cJSON *row = NULL;
    int watching = 0, cancelled = 0;
    struct deliverer d;
    struct reader r;
    struct source src[2];
    mosqlite_lines *tpl[3] = {NULL, NULL, NULL};
    char dir[4096], *head = NULL, *will = NULL;
    pthread_t th;
    int made = 0, nsrc, wstatus = 0, status = 3, joined = 1, threaded = 0, i;
    int build = cmd && pc->build_table;
    pid_t pid = -1;
    double t0 = util_now_exact_ms(), started = 0, ended = 0;

    memset(&r, 0, sizeof r);
    memset(src, 0, sizeof src);
    /* Without a spool the pipe still copies and reads to the end: the build goes on. */
    if (!(r.sp = open_spool(pc, dir, sizeof dir, &made)))
        log_error("no spool: lines are copied but not recorded");
    deliver_init(&d, r.sp, dir, &pc->mo, NULL);
    size_deliverer(&d, pc);
    r.time_column = pc->time_column && *pc->time_column ? pc->time_column : NULL;
    /* The wrapper's attempt: on every line, and in the build's row. */
    if (build && build_attempt_column(pc)) {
        if (!(pc->attempt = attempt = build_attempt_new(pc)) || !(pc->with = with = build_with_attempt(pc))) {
            log_error("out of memory");
            goto out;
        }
    }
    if (!(r.head = head = table_head(pc->table)))
        goto out;
    if (make_sources(pc, cmd ? 3 : 1, tpl, src))
        goto out;
    command_catch_signals();
    if (d.sp && build) {
        put_build_record(d.sp, build_start(pc, cmd));
        d.will = will = build_will(pc);
    }
    started = util_now_exact_ms();
    if ((nsrc = open_sources(pc, cmd, src, tpl, &pid)) < 0)
        goto out;
    if (build && (row = build_row_where(pc)))
        watching = !cancel_watch_start(pc, row);
    if (d.sp && !(threaded = !pthread_create(&th, NULL, deliver_main, &d)))
        log_error("cannot start the delivering thread: lines stay in the spool");

    read_all(&r, src, nsrc, pid, &wstatus, &ended, !cmd);
    status = cmd ? exit_status(wstatus) : 0;
    if (watching && (cancelled = cancel_watch_stop()) && status == 0)
        status = 128 + SIGTERM;         /* a cancelled build never exits 0 */
    watching = 0;
    if (d.sp && build)
        put_build_end(pc, d.sp, wstatus, command_signals() > 0 || cancelled, ended - started);
    if (d.sp)
        joined = end_delivery(pc, &d, threaded ? &th : NULL, cmd != NULL, dir, r.lines, t0);
out:
    if (watching)
        cancel_watch_stop();
    cJSON_Delete(row);
    if (d.sp)
        spool_close(d.sp, made);
    for (i = 0; i < 3; i++)
        mosqlite_lines_free(tpl[i]);
    for (i = 0; i < 2; i++)
        free(src[i].buf);
    reader_free(&r);
    free(head);
    if (joined) {
        cJSON_free(will);               /* else the deliverer may still read it */
        cJSON_free(attempt);
        cJSON_free(with);
    }
    return status;
}

int pipe_deliver(const struct pipe_conf *pc)
{
    struct deliverer d;
    char err[512];
    pthread_t th;
    int ok, joined;
    struct spool_stats st;
    double t0 = util_now_exact_ms();
    spool *sp;

    if (!(sp = spool_open(pc->spool_dir, 1, pc->spool_max, err, sizeof err))) {
        log_error("%s", err);
        return 3;
    }
    deliver_init(&d, sp, pc->spool_dir, &pc->mo, NULL);
    size_deliverer(&d, pc);
    spool_end(d.sp);
    command_catch_signals();
    if (pthread_create(&th, NULL, deliver_main, &d)) {
        log_error("cannot start the delivering thread");
        spool_close(d.sp, 0);
        return 3;
    }
    ok = drain(&d, pc->linger_s);
    joined = deliver_stop(&d, th);
    spool_stats(d.sp, &st);
    ok = ok && st.pending == 0;
    finish_spool(pc, &d, joined, pc->spool_dir, 0, t0);
    return ok ? 0 : 2;
}
