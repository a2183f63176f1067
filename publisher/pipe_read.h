/* pipe_read.h: the log pipe's reading side (pipe_read.c): reads its sources to their
 * end, copies them to the tee, cuts them into rows and appends the rows to the spool.
 * It never waits for the broker: a full spool drops a line and counts it. */
#ifndef MOSQLITE_PIPE_READ_H
#define MOSQLITE_PIPE_READ_H

#include "mosqlite.h"
#include "spool.h"

#include <sys/types.h>

#define PIPE_BUF_LEN (32768 + 65536)    /* a source's buffer: a longest row and a read */

/* One input: stdin, or the command's stdout or stderr. */
struct source {
    int fd;                             /* -1 once at its end */
    int out;                            /* where the tee copies it, -1: nowhere */
    const mosqlite_lines *tpl;          /* its rows' values */
    char *buf;                          /* PIPE_BUF_LEN bytes; buf[off..len) not stored yet */
    size_t off, len;
    size_t free_to;                     /* rows ending here or before were read before every
                                         * other source was last seen empty */
};

struct reader {
    spool *sp;                          /* NULL: rows are counted, not stored */
    const char *head;                   /* {"table":"T",  */
    const char *time_column;            /* NULL: none */
    char *rec;
    size_t reccap;
    char *batch;                        /* records read together, stored in one write */
    size_t blen, bcap;
    long bn;
    int full;                           /* dropping lines right now */
    unsigned long long lines;
};

/* Read the nsrc (1 or 2) sources to their end, storing their rows in the order they
 * were read across the sources, a row at a time (rows waiting in both pipes are taken
 * in turn). With a command (pid > 0), also stop once it has ended and its pipes have
 * been silent for a second (something it started holds them); *status receives its
 * wait status, *ended_at the time it ended. pipe_mode: a second signal stops the
 * reading. */
void read_all(struct reader *r, struct source *src, int nsrc, pid_t pid, int *status,
              double *ended_at, int pipe_mode);

/* Store one more row of text (NUL-terminated, one line) as from tpl's source, now. */
void reader_line(struct reader *r, const mosqlite_lines *tpl, const char *text);

/* Free what the reader holds. */
void reader_free(struct reader *r);

#endif
