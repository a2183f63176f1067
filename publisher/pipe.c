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
 *   - the delivering side (a thread) connects when it can, takes the oldest records
 *     (up to 100 lines of one kind) and publishes them as one transaction under the id
 *     SPOOLID-SEQ, one transaction at a time, and waits for the writer's receipt
 *     before it forgets them. The library republishes under the same id until the
 *     receipt comes, so a batch is applied exactly once and the lines keep their order.
 *
 * When the input has ended, the program waits while delivery makes progress, and up
 * to linger seconds without any; what is left stays in the spool directory for
 * `mosqlite-pub --deliver DIR` or a later run with the same --spool. */
#define _GNU_SOURCE                     /* pipe2 */
#include "pipe.h"
#include "log.h"
#include "spool.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_CHUNK 32768                /* longest text per row: a longer line is cut */
#define READ_CHUNK 65536
#define BATCH_LINES 100                 /* rows per transaction: one event carries them all */
#define BATCH_BYTES (192u * 1024u)      /* under the writer's default payload limit */
#define QUIET_MS 1000                   /* after the command ends, how long its pipes may stay open and silent */
#define WILL_DELAY_S 5                  /* a reconnect within this cancels the build's last will */

/* ---- shared with the signal handler ---- */

static volatile sig_atomic_t nsignals, last_signal;
static volatile pid_t child_pid;

/* A signal the terminal sent (Ctrl-C, Ctrl-\\, a hangup) has reached the command
 * already, with the whole foreground process group; one sent to this process alone
 * (kill, a CI runner's SIGTERM) is passed on, so the command ends as it would have. */
static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    if (child_pid > 0 && si->si_code != SI_KERNEL)
        kill(child_pid, sig);
    last_signal = sig;
    nsignals++;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* UTC now as 2026-11-24T23:00:00.123Z (the example schema's format). */
static void utc_now(char *out, size_t len)
{
    struct timeval tv;
    struct tm tm;
    char s[32];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%.19s.%03dZ", s, (int)(tv.tv_usec / 1000));
}

/* ---- the delivering side ---- */

struct deliverer {
    spool *sp;
    const char *spool_dir;
    struct mosqlite_options mo;
    mosqlite_client *c;
    volatile int abandon;               /* set by the main thread: stop now */
    volatile int finished;              /* set by the thread when it ends */
    int got;                            /* the batch's result arrived */
    enum mosqlite_status status;
    char error[512];
    int away;                           /* the broker or writer is not answering */
    const char *will;                   /* NULL, or the request the broker sends if we die */
    unsigned long long applied, rejected, batches;
};

static void on_result(mosqlite_client *c, const struct mosqlite_result *r, void *arg)
{
    struct deliverer *d = arg;

    d->got = 1;
    d->status = r->status;
    snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
}

/* Sleep ms, or less when told to stop. */
static void nap(struct deliverer *d, int ms)
{
    for (; ms > 0 && !d->abandon; ms -= 50)
        usleep(50000);
}

static void say_away(struct deliverer *d, const char *why)
{
    if (d->away)
        return;
    d->away = 1;
    log_warn("%s: lines are kept in the spool %s and delivered when it answers", why,
             d->spool_dir);
}

static mosqlite_client *dial(struct deliverer *d)
{
    mosqlite_client *c = mosqlite_client_new(&d->mo);
    char why[600];

    if (!c)
        return NULL;
    mosqlite_set_callback(c, on_result, d);
    if (d->will && mosqlite_set_will(c, NULL, d->will, WILL_DELAY_S) != MOSQLITE_OK)
        log_warn("no last will for the build: %s", mosqlite_errstr(c));
    if (mosqlite_connect(c) == MOSQLITE_OK)
        return c;
    snprintf(why, sizeof why, "%s", mosqlite_errstr(c));
    say_away(d, why);
    mosqlite_close(c);
    return NULL;
}

static void *deliver_main(void *arg)
{
    struct deliverer *d = arg;
    char *body = NULL, *payload = NULL, kind, err[256];
    size_t cap = 0, len, pcap = 0;
    unsigned long long seq;
    long n;
    int rc;
    double sent_at;

    while (!d->abandon) {
        if (!d->c && !(d->c = dial(d))) {
            nap(d, 1000);
            continue;
        }
        n = spool_peek(d->sp, &body, &cap, &len, BATCH_LINES, BATCH_BYTES, &kind, &seq,
                       err, sizeof err);
        if (n < 0) {
            log_error("%s", err);
            break;
        }
        if (n == 0) {
            if (spool_finished(d->sp))
                break;
            spool_wait(d->sp, 200);
            continue;
        }
        if (len + 256 > pcap) {
            char *np = realloc(payload, len + 256);
            if (!np) {
                log_error("out of memory");
                break;
            }
            payload = np;
            pcap = len + 256;
        }
        snprintf(payload, pcap, "{\"id\":\"%s-%llu\",\"ops\":[%s]}", spool_id(d->sp), seq, body);
        spool_inflight(d->sp, n);
        d->got = 0;
        if ((rc = mosqlite_publish(d->c, NULL, payload, NULL, NULL)) == MOSQLITE_EINVAL) {
            /* The library refuses it (it would never be sent): count it as rejected. */
            log_error("%ld %s not sent: %s", n, kind == 'B' ? "build record(s)" : "line(s)",
                      mosqlite_errstr(d->c));
            d->rejected += (unsigned long long)n;
            spool_done(d->sp, n);
            continue;
        }
        if (rc != MOSQLITE_OK) {
            log_error("publishing lines: %s", mosqlite_errstr(d->c));
            nap(d, 1000);
            continue;
        }
        sent_at = now_ms();
        while (!d->got && !d->abandon) {
            mosqlite_wait(d->c, 200);
            if (!d->got && now_ms() - sent_at > 5000)
                say_away(d, "no answer from the broker or the writer for 5 s");
        }
        if (!d->got)
            break;
        if (d->away) {
            log_info("delivering again");
            d->away = 0;
        }
        d->batches++;
        if (d->status == MOSQLITE_REJECTED) {
            log_error("%ld %s rejected: %s", n, kind == 'B' ? "build record(s)" : "line(s)", d->error);
            d->rejected += (unsigned long long)n;
        } else {
            d->applied += (unsigned long long)n;
        }
        spool_done(d->sp, n);
    }
    if (d->c) {
        mosqlite_wait(d->c, 1);         /* so close() does not wait for the abandoned */
        mosqlite_close(d->c);
        d->c = NULL;
    }
    free(body);
    free(payload);
    d->finished = 1;
    return NULL;
}

/* Wait for the deliverer: until it has finished, or nothing was delivered for
 * quiet_s seconds, or a new signal came. 1 when it finished. */
static int drain(struct deliverer *d, int quiet_s)
{
    struct spool_stats st;
    unsigned long long done = 0;
    double progress_at = now_ms();
    int sigs = nsignals;

    while (!d->finished) {
        spool_stats(d->sp, &st);
        if (st.done != done) {
            done = st.done;
            progress_at = now_ms();
        }
        if (now_ms() - progress_at >= quiet_s * 1e3 || nsignals != sigs)
            break;
        usleep(20000);
    }
    return d->finished;
}

/* Stop the deliverer. 1 when its thread has ended (and was joined). */
static int stop_deliverer(struct deliverer *d, pthread_t th)
{
    int i;

    d->abandon = 1;
    for (i = 0; i < 150 && !d->finished; i++)   /* a connect in progress may take a while */
        usleep(20000);
    if (!d->finished)
        return 0;
    pthread_join(th, NULL);
    return 1;
}

/* ---- the reading side ---- */

struct source {
    int fd;                             /* -1 once at its end */
    int out;                            /* where the tee copies it, -1: nowhere */
    const mosqlite_lines *tpl;
    char *buf;                          /* what was read: buf[off..len) is not stored yet */
    size_t off, len;
    size_t free_to;                     /* rows ending here or before were read before every
                                         * other source was last seen empty */
};

struct reader {
    spool *sp;
    const char *head;                   /* {"table":"T",  */
    const char *time_column;
    char *rec;
    size_t reccap;
    char *batch;                        /* records of one read, stored in one write */
    size_t blen, bcap;
    long bn;
    int full;                           /* dropping lines right now */
    unsigned long long lines;
};

/* Store one record, or drop it and say so when the spool is full. */
static void store(struct reader *r, const char *text, size_t len)
{
    struct spool_stats st;

    if (spool_append(r->sp, 'L', text, len, 0)) {
        if (!r->full) {
            spool_stats(r->sp, &st);
            log_warn("the spool is full (%llu lines, %llu bytes undelivered): dropping lines "
                     "until the broker takes some", st.pending, st.bytes);
        }
        r->full = 1;
    } else if (r->full) {
        spool_stats(r->sp, &st);
        log_warn("the spool has room again; %llu lines dropped so far", st.dropped);
        r->full = 0;
    }
}

/* Store the records of one read: in one write, or one by one when they do not all fit. */
static void flush(struct reader *r)
{
    char *p, *end, *nl;

    if (!r->bn)
        return;
    if (r->full || spool_append_many(r->sp, r->batch, r->blen, r->bn))
        for (p = r->batch, end = r->batch + r->blen; p < end; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(end - p));
            store(r, p + 1, (size_t)(nl - p) - 1);
        }
    r->blen = 0;
    r->bn = 0;
}

/* Spool one line (len bytes of text, no newline). */
static void put_line(struct reader *r, const mosqlite_lines *tpl, const char *p, size_t len)
{
    char *vals, ts[40];
    size_t need, hl, vl;

    r->lines++;
    if (!r->sp)
        return;
    if (!(vals = mosqlite_lines_format(tpl, p, len)))
        return;                         /* out of memory: the line is lost, the input goes on */
    hl = strlen(r->head);
    vl = strlen(vals);
    need = hl + vl + 128 + (r->time_column ? strlen(r->time_column) * 6 : 0);
    if (need > r->reccap) {
        char *n = realloc(r->rec, need);
        if (!n) {
            free(vals);
            return;
        }
        r->rec = n;
        r->reccap = need;
    }
    /* {"table":"T", + "values":{...,"col":"text"}} without its first brace */
    memcpy(r->rec, r->head, hl);
    memcpy(r->rec + hl, vals + 1, vl - 1);
    need = hl + vl - 1;
    if (r->time_column) {
        utc_now(ts, sizeof ts);
        need -= 2;                          /* the closing }} */
        need += (size_t)sprintf(r->rec + need, ",\"%s\":\"%s\"}}", r->time_column, ts);
    }
    free(vals);
    if (r->blen + need + 2 > r->bcap) {
        size_t ncap = (r->blen + need + 2) * 2;
        char *nb = realloc(r->batch, ncap);
        if (!nb) {
            store(r, r->rec, need);     /* out of memory: one at a time */
            return;
        }
        r->batch = nb;
        r->bcap = ncap;
    }
    r->batch[r->blen++] = 'L';
    memcpy(r->batch + r->blen, r->rec, need);
    r->blen += need;
    r->batch[r->blen++] = '\n';
    r->bn++;
}

/* The next row at the start of b (avail bytes): 1 with *text (its length) and *used
 * (the bytes it takes, its newline and CR included) set; 0 when more input is needed.
 * A line whose text is longer than LINE_CHUNK is cut: its first LINE_CHUNK bytes (less,
 * to cut before a character's continuation bytes) are a row and the rest goes on. The
 * answer depends only on the bytes, never on how they were read: a line of exactly
 * LINE_CHUNK is one row, known once its newline (after an optional CR) is there. At
 * the end of input (eof), what is left is a row too. */
static int next_row(const char *b, size_t avail, int eof, size_t *text, size_t *used)
{
    size_t scan = avail < LINE_CHUNK + 2 ? avail : LINE_CHUNK + 2, n;
    const char *nl = memchr(b, '\n', scan);

    if (nl) {
        n = (size_t)(nl - b);
        *text = n > 0 && b[n - 1] == '\r' ? n - 1 : n;
        if (*text <= LINE_CHUNK) {
            *used = n + 1;
            return 1;
        }
    }
    if (nl || avail >= LINE_CHUNK + 2 || (eof && avail > LINE_CHUNK)) {
        n = LINE_CHUNK;
        while (n > LINE_CHUNK - 3 && ((unsigned char)b[n] & 0xc0) == 0x80)
            n--;
        *text = *used = n;
        return 1;
    }
    if (eof && avail > 0) {
        *text = *used = avail;
        return 1;
    }
    return 0;
}

/* Whether the source holds a whole row (at its end, what is left is one). */
static int has_row(const struct source *s)
{
    size_t text, used;

    return next_row(s->buf + s->off, s->len - s->off, s->fd < 0, &text, &used);
}

/* Store the source's next row. */
static void take_row(struct reader *r, struct source *s)
{
    size_t text, used;

    if (next_row(s->buf + s->off, s->len - s->off, s->fd < 0, &text, &used)) {
        put_line(r, s->tpl, s->buf + s->off, text);
        s->off += used;
    }
}

/* Copy to the tee; a reader that went away ends the copy, never the program. */
static void tee_out(struct source *s, const char *p, size_t n)
{
    while (n > 0 && s->out >= 0) {
        ssize_t w = write(s->out, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_warn("%s is closed (%s): no longer copying to it",
                     s->out == 1 ? "stdout" : "stderr", w < 0 ? strerror(errno) : "no progress");
            s->out = -1;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The source's end: no more reading (what is left in its buffer is its last row). */
static void end_source(struct source *s, pid_t pid)
{
    if (pid > 0)
        close(s->fd);
    s->fd = -1;
}

/* One read from a source that holds no whole row (so its buffer has room for
 * READ_CHUNK), copied to the tee. */
static void fill(struct source *s, pid_t pid)
{
    ssize_t n;

    if (s->off) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->free_to = s->free_to > s->off ? s->free_to - s->off : 0;
        s->off = 0;
    }
    n = read(s->fd, s->buf + s->len, LINE_CHUNK + READ_CHUNK - s->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        tee_out(s, s->buf + s->len, (size_t)n);
        s->len += (size_t)n;
        return;
    }
    if (n < 0)
        log_error("reading %s: %s", pid > 0 ? "the command's output" : "stdin", strerror(errno));
    end_source(s, pid);
}

/* Whether the source's next row may be stored without looking at the others: it was
 * read before each of them was last seen empty (so it was written before anything
 * they write now), and none of them holds a row. */
static int row_is_free(const struct source *src, int nsrc, int i)
{
    size_t text, used;
    int j;

    if (!next_row(src[i].buf + src[i].off, src[i].len - src[i].off, src[i].fd < 0, &text, &used))
        return 0;
    for (j = 0; j < nsrc; j++)
        if (j != i && has_row(&src[j]))
            return 0;
    return nsrc == 1 || src[i].off + used <= src[i].free_to;
}

/* Which source gives the next row, as a reader taking one line at a time from
 * whichever stream has one, in turn from *turn, would read it: a source holding a
 * row, or one whose pipe has something (to be read). Looks at the pipes of the
 * sources without a row (at once when another holds a row, else for up to 200 ms;
 * the rows read so far are stored before such a wait). -1 when none. */
static int pick(struct reader *r, struct source *src, int nsrc, int turn)
{
    struct pollfd pfd[2];
    int np = 0, map[2], ready[2] = {0, 0}, any = 0, i, j, k;

    for (k = 0; k < nsrc; k++)
        if (row_is_free(src, nsrc, (turn + k) % nsrc))
            return (turn + k) % nsrc;
    for (i = 0; i < nsrc; i++) {
        if ((ready[i] = has_row(&src[i])))
            any = 1;
        else if (src[i].fd >= 0) {
            pfd[np].fd = src[i].fd;
            pfd[np].events = POLLIN;
            map[np++] = i;
        }
    }
    if (!any)
        flush(r);
    if (np && poll(pfd, (nfds_t)np, any ? 0 : 200) >= 0)
        for (k = 0; k < np; k++) {
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
                ready[map[k]] = 1;
            else                        /* empty now: what the others read so far is older */
                for (j = 0; j < nsrc; j++)
                    if (j != map[k])
                        src[j].free_to = src[j].len;
        }
    for (k = 0; k < nsrc; k++)
        if (ready[(turn + k) % nsrc])
            return (turn + k) % nsrc;
    return -1;
}

static int any_left(const struct source *src, int nsrc)
{
    int i;

    for (i = 0; i < nsrc; i++)
        if (src[i].fd >= 0 || has_row(&src[i]))
            return 1;
    return 0;
}

/* Read the sources to their end, storing their rows in the order they were read
 * across the sources, a row at a time (the command's stdout and stderr are two pipes:
 * rows that wait in both are taken in turn). With a command (pid > 0), also stop once
 * it has ended and its pipes have been silent for QUIET_MS (something it started holds
 * them). *status receives the command's wait status. */
static void read_all(struct reader *r, struct source *src, int nsrc, pid_t pid, int *status,
                     double *ended_at, int pipe_mode)
{
    int exited = pid <= 0, turn = 0, i, filled;
    double last_data = now_ms();

    while (any_left(src, nsrc)) {
        if (pipe_mode && nsignals >= 2)
            break;                      /* a second signal: stop reading */
        i = pick(r, src, nsrc, turn);
        if ((filled = i >= 0 && !has_row(&src[i]))) {
            flush(r);                   /* the rows of the read before, in one write */
            fill(&src[i], pid);
            last_data = now_ms();
        }
        if (i >= 0 && has_row(&src[i])) {
            take_row(r, &src[i]);
            turn = (i + 1) % nsrc;
        }
        if (i >= 0 && !filled)
            continue;                   /* a row from the buffer: the command is looked at after a read or a wait */
        if (!exited && waitpid(pid, status, WNOHANG) == pid) {
            exited = 1;
            *ended_at = now_ms();
            child_pid = 0;
        }
        if (exited && pid > 0 && now_ms() - last_data >= QUIET_MS &&
            (src[0].fd >= 0 || (nsrc > 1 && src[1].fd >= 0))) {
            log_warn("the command has ended but something it started keeps its output open: "
                     "no longer reading it");
            for (i = 0; i < nsrc; i++)
                if (src[i].fd >= 0)
                    end_source(&src[i], pid);
        }
    }
    flush(r);
    if (!exited) {
        while (waitpid(pid, status, 0) < 0 && errno == EINTR)
            ;
        *ended_at = now_ms();
        child_pid = 0;
    }
}

/* ---- the build's row ---- */

/* The row's where: --build-where, else {"id": <--with's build_id>}. NULL if neither. */
static cJSON *build_where(const struct pipe_conf *pc)
{
    cJSON *w = NULL, *with, *id;

    if (pc->build_where)
        return cJSON_Parse(pc->build_where);
    if (!pc->with || !(with = cJSON_Parse(pc->with)))
        return NULL;
    id = cJSON_GetObjectItemCaseSensitive(with, "build_id");
    if (id && (w = cJSON_CreateObject()))
        cJSON_AddItemToObject(w, "id", cJSON_Duplicate(id, 1));
    cJSON_Delete(with);
    return w;
}

/* The columns the wrapper sets itself in the builds table. */
static const char *const build_columns[] = {
    "name", "status", "started_at", "finished_at", "exit_code", "duration_ms", NULL,
};

/* check_time_column: a row must not get the time column twice (from --lines, --with or
 * --stream-column too): the writer would reject every line as a duplicate key. */
static int check_time_column(const struct pipe_conf *pc, char *err, size_t errlen)
{
    const char *tc = pc->time_column && *pc->time_column ? pc->time_column : NULL;
    cJSON *with;
    int clash;

    if (!tc)
        return 0;
    with = pc->with ? cJSON_Parse(pc->with) : NULL;
    clash = !strcmp(tc, pc->column) || (with && cJSON_GetObjectItemCaseSensitive(with, tc)) ||
            (pc->stream_column && !strcmp(tc, pc->stream_column));
    cJSON_Delete(with);
    if (!clash)
        return 0;
    snprintf(err, errlen, "--time-column %s: that column already gets a value from --lines, "
             "--with or --stream-column", tc);
    return -1;
}

/* check_where_columns: --build-where names the row, and must not name a column the
 * wrapper sets (the start would carry it twice and be rejected). */
static int check_where_columns(const cJSON *w, char *err, size_t errlen)
{
    const cJSON *k;
    int i;

    for (k = w->child; k; k = k->next)
        for (i = 0; build_columns[i]; i++)
            if (!strcmp(k->string, build_columns[i])) {
                snprintf(err, errlen, "--build-where cannot name %s: the wrapper sets that "
                         "column itself; name the row by its key", k->string);
                return -1;
            }
    return 0;
}

int pipe_check_build(const struct pipe_conf *pc, char *err, size_t errlen)
{
    cJSON *w;
    int ok;

    char e[400], *req = NULL;

    if (check_time_column(pc, err, errlen))
        return -1;
    if (!pc->build_table)
        return 0;
    if (!*pc->build_table || strpbrk(pc->build_table, "/+#")) {
        snprintf(err, errlen, "--build-table must be a plain table name");
        return -1;
    }
    /* The library's strict check; its message starts "where ...". */
    if (pc->build_where &&
        !(req = mosqlite_request_build(MOSQLITE_DELETE, NULL, pc->build_where, NULL, e, sizeof e))) {
        snprintf(err, errlen, "--build-%s", e);
        return -1;
    }
    if (pc->build_where)
        mosqlite_free(req);
    w = build_where(pc);
    ok = w && cJSON_IsObject(w) && w->child;
    if (ok && check_where_columns(w, err, errlen)) {
        cJSON_Delete(w);
        return -1;
    }
    cJSON_Delete(w);
    if (ok)
        return 0;
    if (pc->build_where)
        snprintf(err, errlen, "--build-where must be a non-empty JSON object");
    else
        snprintf(err, errlen, "the build is recorded in %s: give --with '{\"build_id\": N, ...}' "
                 "or --build-where '{\"COLUMN\": VALUE}', or --no-build", pc->build_table);
    return -1;
}

/* The start (an upsert: the row is made if missing) or the end (an update). */
static char *build_record(const struct pipe_conf *pc, char **cmd, int start, int wstatus,
                          double ms)
{
    cJSON *o = cJSON_CreateObject(), *w = build_where(pc), *v, *k, *keys;
    char now[40], *out = NULL, name[256];
    int i, code;
    size_t off = 0;

    if (!o || !w)
        goto cleanup;
    utc_now(now, sizeof now);
    cJSON_AddStringToObject(o, "table", pc->build_table);
    if (start) {
        cJSON_AddStringToObject(o, "op", "upsert");
        v = cJSON_Duplicate(w, 1);
        if (pc->build_name) {
            snprintf(name, sizeof name, "%s", pc->build_name);
        } else {
            name[0] = '\0';
            for (i = 0; cmd[i] && off < sizeof name - 1; i++)
                off += (size_t)snprintf(name + off, sizeof name - off, "%s%s", i ? " " : "", cmd[i]);
        }
        cJSON_AddStringToObject(v, "name", name);
        cJSON_AddStringToObject(v, "status", "running");
        cJSON_AddStringToObject(v, "started_at", now);
        cJSON_AddNullToObject(v, "finished_at");
        cJSON_AddNullToObject(v, "exit_code");
        cJSON_AddNullToObject(v, "duration_ms");
        cJSON_AddItemToObject(o, "values", v);
        keys = cJSON_AddArrayToObject(o, "on_conflict");
        for (k = w->child; k; k = k->next)
            cJSON_AddItemToArray(keys, cJSON_CreateString(k->string));
    } else {
        const char *st;
        if (WIFSIGNALED(wstatus)) {
            int sig = WTERMSIG(wstatus);
            code = 128 + sig;
            st = sig == SIGINT || sig == SIGTERM || sig == SIGHUP ? "cancelled" : "failed";
        } else {
            code = WEXITSTATUS(wstatus);
            st = code == 0 ? "passed" : nsignals ? "cancelled" : "failed";
        }
        cJSON_AddStringToObject(o, "op", "update");
        v = cJSON_AddObjectToObject(o, "set");
        cJSON_AddStringToObject(v, "status", st);
        cJSON_AddStringToObject(v, "finished_at", now);
        cJSON_AddNumberToObject(v, "exit_code", code);
        cJSON_AddNumberToObject(v, "duration_ms", (double)(long long)(ms + 0.5));
        cJSON_AddItemToObject(o, "where", w);
        w = NULL;
    }
    out = cJSON_PrintUnformatted(o);
cleanup:
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

/* The build's last will: an update of its row to `lost`, only while it is `running`
 * (so it changes nothing once the end is recorded, applied late or twice). The broker
 * publishes it if the connection ends without a clean close (the wrapper killed), and
 * forgets it when the wrapper disconnects at its end. */
static char *build_will(const struct pipe_conf *pc)
{
    cJSON *o = cJSON_CreateObject(), *w = build_where(pc), *set;
    char *out = NULL;

    if (o && w && (set = cJSON_AddObjectToObject(o, "set"))) {
        cJSON_AddStringToObject(o, "table", pc->build_table);
        cJSON_AddStringToObject(o, "op", "update");
        cJSON_AddStringToObject(set, "status", "lost");
        cJSON_AddStringToObject(w, "status", "running");
        cJSON_AddItemToObject(o, "where", w);
        w = NULL;
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    cJSON_Delete(w);
    return out;
}

/* ---- the command ---- */

/* Start cmd with its stdout and stderr on pipes; its stdin is ours. */
static pid_t spawn(char **cmd, int *out_fd, int *err_fd)
{
    int po[2], pe[2];
    pid_t pid;

    if (pipe2(po, O_CLOEXEC))
        return -1;
    if (pipe2(pe, O_CLOEXEC)) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        static const char pre[] = "mosqlite-pub: cannot run ";
        struct sigaction sa;
        sigset_t none;
        int e;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);  /* ignored in here: not in the build */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGQUIT, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execvp(cmd[0], cmd);
        e = errno;
        (void)!write(2, pre, sizeof pre - 1);
        (void)!write(2, cmd[0], strlen(cmd[0]));
        (void)!write(2, ": ", 2);
        (void)!write(2, strerror(e), strlen(strerror(e)));
        (void)!write(2, "\n", 1);
        _exit(e == ENOENT ? 127 : 126);
    }
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -1;
    }
    *out_fd = po[0];
    *err_fd = pe[0];
    return pid;
}

/* A template for one stream: --with plus the stream column. */
static mosqlite_lines *template_for(const struct pipe_conf *pc, const char *stream)
{
    cJSON *w = pc->with ? cJSON_Parse(pc->with) : cJSON_CreateObject();
    char *text = NULL, err[256];
    mosqlite_lines *t = NULL;

    if (!w)
        return NULL;
    if (stream && pc->stream_column && *pc->stream_column) {
        cJSON_DeleteItemFromObjectCaseSensitive(w, pc->stream_column);
        cJSON_AddStringToObject(w, pc->stream_column, stream);
    }
    if ((text = cJSON_PrintUnformatted(w)) && !(t = mosqlite_lines_new(pc->column, text, err, sizeof err)))
        log_error("%s", err);
    cJSON_free(text);
    cJSON_Delete(w);
    return t;
}

static void set_signals(void (*handler)(int, siginfo_t *, void *))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;          /* no SA_RESTART: poll() returns at once */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
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
                 d->rejected, st.dropped, st.pending, (now_ms() - t0) / 1e3);
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
    if ((*pid = spawn(cmd, &src[0].fd, &src[1].fd)) < 0) {
        log_error("cannot start %s: %s", cmd[0], strerror(errno));
        return -1;
    }
    child_pid = *pid;
    src[0].out = pc->tee ? 1 : -1;
    src[1].out = pc->tee ? 2 : -1;
    src[0].tpl = tpl[1];
    src[1].tpl = tpl[2];
    return 2;
}

int pipe_run(const struct pipe_conf *pc, char **cmd)
{
    struct deliverer d;
    struct reader r;
    struct source src[2];
    mosqlite_lines *tpl[3] = {NULL, NULL, NULL};
    char dir[4096], *head = NULL, *rec, *will = NULL;
    pthread_t th;
    int made = 0, nsrc, wstatus = 0, status = 3, joined = 1, threaded = 0, i;
    pid_t pid = -1;
    double t0 = now_ms(), started = 0, ended = 0;

    memset(&d, 0, sizeof d);
    memset(&r, 0, sizeof r);
    memset(src, 0, sizeof src);
    /* Without a spool the pipe still copies and reads to the end: the build goes on. */
    if (!(d.sp = open_spool(pc, dir, sizeof dir, &made)))
        log_error("no spool: lines are copied but not recorded");
    d.spool_dir = dir;
    d.mo = pc->mo;
    d.mo.receipts = 1;
    d.mo.window = 1;
    d.mo.timeout_ms = 0;
    r.sp = d.sp;
    r.time_column = pc->time_column && *pc->time_column ? pc->time_column : NULL;
    if (!(r.head = head = table_head(pc->table)))
        goto out;
    for (i = 0; i < (cmd ? 3 : 1); i++)
        if (!(tpl[i] = template_for(pc, i == 0 ? NULL : i == 1 ? "stdout" : "stderr")))
            goto out;

    for (i = 0; i < 2; i++)
        if (!(src[i].buf = malloc(LINE_CHUNK + READ_CHUNK))) {
            log_error("out of memory");
            goto out;
        }
    set_signals(on_signal);
    if (d.sp && cmd && pc->build_table && (rec = build_record(pc, cmd, 1, 0, 0))) {
        spool_append(d.sp, 'B', rec, strlen(rec), 1);
        cJSON_free(rec);
        d.will = will = build_will(pc);
    }
    started = now_ms();
    if ((nsrc = open_sources(pc, cmd, src, tpl, &pid)) < 0)
        goto out;
    if (d.sp && !(threaded = !pthread_create(&th, NULL, deliver_main, &d)))
        log_error("cannot start the delivering thread: lines stay in the spool");

    read_all(&r, src, nsrc, pid, &wstatus, &ended, !cmd);
    if (cmd) {
        if (WIFSIGNALED(wstatus))
            status = 128 + WTERMSIG(wstatus);
        else
            status = WEXITSTATUS(wstatus);
        if (d.sp && pc->build_table &&
            (rec = build_record(pc, cmd, 0, wstatus, ended - started))) {
            spool_append(d.sp, 'B', rec, strlen(rec), 1);
            cJSON_free(rec);
        }
    } else {
        status = 0;
    }
    if (d.sp) {
        spool_end(d.sp);
        if (threaded && (cmd || nsignals < 2))
            drain(&d, pc->linger_s);
        if (threaded)
            joined = stop_deliverer(&d, th);
        finish_spool(pc, &d, joined, dir, r.lines, t0);
        d.sp = NULL;                    /* closed by finish_spool, or still in use */
    }
out:
    if (d.sp)
        spool_close(d.sp, made);
    for (i = 0; i < 3; i++)
        mosqlite_lines_free(tpl[i]);
    for (i = 0; i < 2; i++)
        free(src[i].buf);
    free(r.rec);
    free(r.batch);
    free(head);
    if (joined)
        cJSON_free(will);               /* else the deliverer may still read it */
    return status;
}

int pipe_deliver(const struct pipe_conf *pc)
{
    struct deliverer d;
    char err[512];
    pthread_t th;
    int ok, joined;
    struct spool_stats st;
    double t0 = now_ms();

    memset(&d, 0, sizeof d);
    if (!(d.sp = spool_open(pc->spool_dir, 1, pc->spool_max, err, sizeof err))) {
        log_error("%s", err);
        return 3;
    }
    d.spool_dir = pc->spool_dir;
    d.mo = pc->mo;
    d.mo.receipts = 1;
    d.mo.window = 1;
    d.mo.timeout_ms = 0;
    spool_end(d.sp);
    set_signals(on_signal);
    if (pthread_create(&th, NULL, deliver_main, &d)) {
        log_error("cannot start the delivering thread");
        spool_close(d.sp, 0);
        return 3;
    }
    ok = drain(&d, pc->linger_s);
    joined = stop_deliverer(&d, th);
    spool_stats(d.sp, &st);
    ok = ok && st.pending == 0;
    finish_spool(pc, &d, joined, pc->spool_dir, 0, t0);
    return ok ? 0 : 2;
}
