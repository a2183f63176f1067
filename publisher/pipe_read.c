/* pipe_read.c: the log pipe's reading side (see pipe_read.h).
 *
 * A line becomes one or more rows (next_row: a line longer than LINE_CHUNK is cut,
 * between characters), each an op appended to the spool; the rows of one read go in
 * one write. With two sources (the command's stdout and stderr) the order of rows
 * across them is the order a reader taking one line at a time would have read them:
 * pick() chooses the source of the next row. */
#include "pipe_read.h"
#include "pipe_command.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_CHUNK 32768                /* longest text per row: a longer line is cut */
#define READ_CHUNK (PIPE_BUF_LEN - LINE_CHUNK)
#define QUIET_MS 1000                   /* after the command ends, how long its pipes may stay open and silent */

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
        util_time_format(util_wall_ms(), ts);
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
    n = read(s->fd, s->buf + s->len, PIPE_BUF_LEN - s->len);
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

/* (see pipe_read.h) */
void read_all(struct reader *r, struct source *src, int nsrc, pid_t pid, int *status,
              double *ended_at, int pipe_mode)
{
    int exited = pid <= 0, turn = 0, i, filled;
    double last_data = util_now_exact_ms();

    while (any_left(src, nsrc)) {
        if (pipe_mode && command_signals() >= 2)
            break;                      /* a second signal: stop reading */
        i = pick(r, src, nsrc, turn);
        if ((filled = i >= 0 && !has_row(&src[i]))) {
            flush(r);                   /* the rows of the read before, in one write */
            fill(&src[i], pid);
            last_data = util_now_exact_ms();
        }
        if (i >= 0 && has_row(&src[i])) {
            take_row(r, &src[i]);
            turn = (i + 1) % nsrc;
        }
        if (i >= 0 && !filled)
            continue;                   /* a row from the buffer: the command is looked at after a read or a wait */
        if (!exited && command_ended(pid, status)) {
            exited = 1;
            *ended_at = util_now_exact_ms();
        }
        if (exited && pid > 0 && util_now_exact_ms() - last_data >= QUIET_MS &&
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
        command_wait(pid, status);
        *ended_at = util_now_exact_ms();
    }
}

void reader_line(struct reader *r, const mosqlite_lines *tpl, const char *text)
{
    put_line(r, tpl, text, strlen(text));
    flush(r);
}

void reader_free(struct reader *r)
{
    free(r->rec);
    free(r->batch);
}
