/* pipe.h: mosqlite-pub's log pipe and build wrapper (the CLI's, not the library's). */
#ifndef MOSQLITE_PIPE_H
#define MOSQLITE_PIPE_H

#include "mosqlite.h"

struct pipe_conf {
    const char *table;              /* the log table */
    const char *column;             /* its text column */
    const char *with;               /* NULL or a JSON object of values for every line */
    const char *stream_column;      /* wrapper: "stdout"/"stderr" goes here; NULL or "": none */
    const char *time_column;        /* the time a line was read goes here; NULL or "": none */
    const char *build_table;        /* wrapper: where start and end go; NULL: nowhere */
    const char *build_where;        /* JSON object naming the build's row in build_table */
    const char *build_name;         /* the row's name; NULL: the command line */
    const char *attempt_column;     /* wrapper: the attempt goes here, in the log table and the
                                     * builds table; NULL: "attempt"; "": none */
    const char *attempt;            /* set by pipe_run: the attempt's value as JSON text */
    const char *spool_dir;          /* NULL: a new directory under $TMPDIR, removed at the end */
    unsigned long long spool_max;   /* most undelivered bytes in the spool */
    int linger_s;                   /* at the end, wait this long without progress */
    int window;                     /* transactions in flight at once; 0: the default */
    int batch_lines;                /* most rows in one transaction; 0: the default */
    int tee;                        /* copy the input to stdout (a command's stderr to stderr) */
    int verbose;                    /* a summary line at the end */
    struct mosqlite_options mo;     /* the connection (receipts, window, timeout are set here) */
};

/* Run the log pipe on stdin (cmd == NULL) or on the command cmd[0] with its arguments
 * (NULL-terminated; run without a shell). Returns the exit status: 0 for the pipe,
 * the command's own status (128 + signal if it was killed) for the wrapper, 3 when
 * the spool or the build's row cannot be set up. */
int pipe_run(const struct pipe_conf *pc, char **cmd);

/* Deliver what a former run left in the spool pc->spool_dir. Returns 0 when all of
 * it is delivered (the spool is then removed), 2 when some is left after linger_s
 * seconds without progress, 3 when there is no spool there. */
int pipe_deliver(const struct pipe_conf *pc);

/* Check the column and build options before anything runs (a column given twice, a
 * --build-where naming a column the wrapper sets); 0, or -1 with err set. */
int pipe_check_build(const struct pipe_conf *pc, char *err, size_t errlen);

#endif
