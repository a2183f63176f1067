/* main.c: mosqlite-pub, the command-line publisher, built on the library in
 * mosqlite.h. Four ways in: one request from the arguments (TABLE JSON, --op, --where,
 * --id), JSON Lines from stdin (`-`), the log pipe (--lines COLUMN --with JSON TABLE,
 * optionally wrapping a command after `--`; see pipe.c), and --deliver DIR for what a
 * log pipe left in its spool. For JSON Lines, stdin is read only while the library's
 * window has room, so memory stays bounded on endless input, and every line is
 * published as soon as it is read. The exit status says whether everything landed
 * (see usage below); the log pipe's never fails the build it watches. */
#include "cfg.h"
#include "cliconn.h"
#include "hints.h"
#include "log.h"
#include "mosqlite.h"
#include "pipe.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_REJECTED = 1, EXIT_UNCONFIRMED = 2, EXIT_USAGE = 3, EXIT_CONNECT = 4 };


static const char usage[] =
    "usage: mosqlite-pub [options] TABLE '{\"col\": value, ...}'        insert one row\n"
    "       mosqlite-pub [options] --op upsert TABLE '{...}'\n"
    "       mosqlite-pub [options] --op update --where '{...}' TABLE '{set...}'\n"
    "       mosqlite-pub [options] --op delete --where '{...}' TABLE\n"
    "       mosqlite-pub [options] -                   JSON Lines from stdin, to PREFIX/write\n"
    "       mosqlite-pub [options] --lines COLUMN [--with '{...}'] TABLE   log pipe: each stdin line\n"
    "       mosqlite-pub [options] --lines COLUMN [--with '{...}'] TABLE -- COMMAND [ARGS...]\n"
    "       mosqlite-pub [options] --deliver DIR       what a log pipe left in its spool\n"
    "\n"
    "Every request goes at QoS 2; the program ends once the broker has completed every\n"
    "handshake (or, with --wait, once the writer has answered every request). A JSON\n"
    "Lines line longer than --max-line is not sent and counts as an error. --timeout is\n"
    "how long to go on without any request completing (0 = for ever).\n"
    "The JSON of TABLE '{...}' is the row itself, not mosquitto_pub's {\"values\": ...}.\n"
    "Only --wait knows what the writer did: then an update or delete that matched no row\n"
    "is said on stderr (exit 0; --must-match: exit 1); without it nothing is known.\n"
    "A publish the broker's ACL refuses is said at once (exit 1), never retried.\n"
    "Exit status: 0 all done (with --wait: applied, duplicate, scheduled or\n"
    "cancelled); 1 a request was rejected or refused by the broker, or a line could not\n"
    "be sent; 2 unconfirmed after --timeout; 3 bad arguments or config; 4 could not\n"
    "connect.\n"
    "\n"
    "The log pipe (--lines) copies stdin to stdout as it reads it (--no-tee: not), reads\n"
    "to the end whatever happens, and inserts each line into COLUMN of TABLE with the\n"
    "values of --with: transactions of up to --lines-max lines (1000) and 192 KiB, each\n"
    "under an id, up to --lines-window (16) in flight, each naming the one before it so\n"
    "that the writer keeps their order even across a broker or writer killed -9: a line\n"
    "is applied once and in order. Lines go through a spool on disk (--spool, bounded by\n"
    "--spool-max: past it lines are dropped and counted) while the broker is away. At the\n"
    "end it waits while delivery progresses, and up to --linger seconds without; what is\n"
    "left stays in the spool for --deliver DIR. A line longer than 32 KiB becomes several\n"
    "rows; invalid UTF-8 becomes U+FFFD; a trailing CR is dropped. Its exit status is 0.\n"
    "With `-- COMMAND`, it runs COMMAND (no shell), reads its stdout and stderr (copied\n"
    "to its own; each line's stream goes to --stream-column), marks the build running in\n"
    "--build-table before and passed/failed/cancelled with exit_code, finished_at and\n"
    "duration_ms after, and exits with COMMAND's status (128 + N if killed by signal N).\n"
    "--deliver exits 0 when all is delivered, 2 when some is left.\n";

static struct cfg_client cl = CFG_CLIENT_INIT;
static const char *o_build_table = "builds";
static char *o_op, *o_where, *o_id, *o_lines, *o_with, *o_spool, *o_deliver,
            *o_build_where, *o_build_name, *o_stream_column, *o_time_column, *o_protocol;
static long long o_timeout = 30, o_window = 1000,
                 o_max_line = MOSQLITE_DEFAULT_MAX_PAYLOAD, o_spool_max = 64LL << 20, o_linger = 10, o_qos = 2,
                 o_lines_window = 0, o_lines_max = 1000;
static int o_wait, o_verbose, o_no_tee, o_no_build, o_must_match;

static const struct cfg_opt opts[] = {
    CFG_CLIENT_OPTIONS(cl),
    CFG_CLIENT_ID_OPTIONS(cl, "MQTT client id (default mosqlite-pub-<new id>); not the request id (--id)"),
    {"qos", 'q', CFG_INT, &o_qos, 0, 255, 0, "2", "QoS: always 2 (any other is refused)"},
    {"protocol-version", 'V', CFG_STR, &o_protocol, 0, 0, 0, "5",
     "MQTT version: 5 (or mqttv5); the only one spoken"},
    CFG_CLIENT_END_OPTIONS(cl),
    {"op", 0, CFG_STR, &o_op, 0, 0, CFG_CMDLINE_ONLY, "OP", "insert, upsert, update or delete"},
    {"where", 0, CFG_STR, &o_where, 0, 0, CFG_CMDLINE_ONLY, "JSON", "rows to update or delete"},
    {"id", 0, CFG_STR, &o_id, 0, 0, CFG_CMDLINE_ONLY, "ID",
     "the request id of a single request (not mosquitto_pub's -i/--id: that is -i/--client-id)"},
    {"lines", 0, CFG_STR, &o_lines, 0, 0, CFG_CMDLINE_ONLY, "COLUMN",
     "insert each stdin line into COLUMN of TABLE"},
    {"with", 0, CFG_STR, &o_with, 0, 0, CFG_CMDLINE_ONLY, "JSON", "values added to each --lines row"},
    {"no-tee", 0, CFG_FLAG, &o_no_tee, 0, 0, 0, NULL, "--lines: do not copy the input to stdout"},
    {"spool", 0, CFG_STR, &o_spool, 0, 0, 0, "DIR",
     "--lines: spool directory (a new one in $TMPDIR, removed when empty)"},
    {"spool-max", 0, CFG_INT, &o_spool_max, 65536, 1LL << 40, 0, "BYTES",
     "--lines: most undelivered bytes spooled"},
    {"linger", 0, CFG_INT, &o_linger, 0, 86400, 0, "SECONDS",
     "--lines, --deliver: at the end, wait this long without progress"},
    {"lines-window", 0, CFG_INT, &o_lines_window, 1, 256, 0, "N",
     "--lines, --deliver: transactions in flight at once (16; 1: the next only once the one "
     "before is answered); the order holds across a broker or writer killed -9 either way"},
    {"lines-max", 0, CFG_INT, &o_lines_max, 1, 100000, 0, "N",
     "--lines, --deliver: most rows in one transaction (at most the writer's max-ops)"},
    {"deliver", 0, CFG_STR, &o_deliver, 0, 0, CFG_CMDLINE_ONLY, "DIR",
     "deliver what a log pipe left in the spool DIR"},
    {"build-table", 0, CFG_STR, &o_build_table, 0, 0, 0, "TABLE",
     "-- COMMAND: the builds table"},
    {"build-where", 0, CFG_STR, &o_build_where, 0, 0, CFG_CMDLINE_ONLY, "JSON",
     "-- COMMAND: the build's row ({\"id\": --with's build_id})"},
    {"build-name", 0, CFG_STR, &o_build_name, 0, 0, CFG_CMDLINE_ONLY, "NAME",
     "-- COMMAND: the build's name (the command line)"},
    {"no-build", 0, CFG_FLAG, &o_no_build, 0, 0, CFG_CMDLINE_ONLY, NULL,
     "-- COMMAND: record no start and end"},
    {"stream-column", 0, CFG_STR, &o_stream_column, 0, 0, 0, "COLUMN",
     "-- COMMAND: stdout or stderr goes here (stream; \"\": none)"},
    {"time-column", 0, CFG_STR, &o_time_column, 0, 0, 0, "COLUMN",
     "--lines: the time each line was read goes here (none)"},
    {"wait", 0, CFG_FLAG, &o_wait, 0, 0, 0, NULL, "wait for the writer's receipts"},
    {"must-match", 0, CFG_FLAG, &o_must_match, 0, 0, CFG_CMDLINE_ONLY, NULL,
     "--wait: an update or delete that matches no row is an error (exit 1), not a warning"},
    {"timeout", 0, CFG_INT, &o_timeout, 0, 86400, 0, "SECONDS", "give up after this long without progress"},
    {"window", 0, CFG_INT, &o_window, 1, 65535, 0, "N", "most requests outstanding at once"},
    {"max-line", 0, CFG_INT, &o_max_line, 16, 64 << 20, 0, "BYTES", "longest JSON Lines line"},
    {"verbose", 'v', CFG_FLAG, &o_verbose, 0, 0, 0, NULL, "print a summary at the end"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static volatile sig_atomic_t stop;
static unsigned long local_failures;    /* lines we could not send, updates that matched
                                         * nothing under --must-match */
static unsigned long refused;           /* requests the broker refused for good (its ACL) */
static const char *single_table;        /* TABLE of a request from the arguments */

static void on_signal(int sig)
{
    stop = 1;
    signal(sig, SIG_DFL);       /* a second signal ends the program at once */
}

/* A request's tag: its line number (0 for one from the arguments), and whether it
 * only updates or deletes (then applied with no change means it matched no row). */
#define TAG(line, ud) ((void *)(((uintptr_t)(line) << 1) | ((ud) ? 1u : 0u)))

/* Result callback: one stderr line per rejection, per update that matched no row, and
 * for the first refusal by the broker (the rest go to the same topic). */
static void on_result(mosqlite_client *c, const struct mosqlite_result *r, void *arg)
{
    uintptr_t tag = (uintptr_t)r->tag;
    char at[64] = "";

    if (tag >> 1)
        snprintf(at, sizeof at, "line %lu: ", (unsigned long)(tag >> 1));
    if (r->status == MOSQLITE_REJECTED) {
        log_error("%srequest %s rejected: %s", at, r->id, r->error);
    } else if (r->status == MOSQLITE_REFUSED) {
        if (refused++ == 0)
            log_error("%s%s", at, r->error ? r->error : "refused by the broker");
    } else if (r->status == MOSQLITE_APPLIED && r->changes == 0 && (tag & 1)) {
        enum log_level lv = o_must_match ? LOG_ERROR : LOG_WARN;
        if (o_must_match)
            local_failures++;
        if (at[0])
            log_msg(lv, "%srequest %s: its update or delete matched no row: nothing changed",
                    at, r->id);
        else
            log_msg(lv, "request %s: %s of %s matched no row (where %s): nothing changed",
                    r->id, o_op, single_table, o_where);
    }
}

/* ---- reading stdin ---- */

struct reader {
    char *buf;
    size_t cap, start, end;
    size_t max;                 /* longest piece handed out */
    int eof;
    int cont;                   /* the next piece continues a cut line */
};

/* The next line (without its newline) or piece of an overlong line. Returns 1 and
 * sets *p, *len, *cut (the line is longer than r->max: more of it may follow) and
 * *cont (this continues a cut line); 0 when more input is needed; -1 at the end. */
static int next_line(struct reader *r, char **p, size_t *len, int *cut, int *cont)
{
    char *b = r->buf + r->start, *nl;
    size_t avail = r->end - r->start, n;

    *cont = r->cont;
    if ((nl = memchr(b, '\n', avail))) {
        *p = b;
        *len = (size_t)(nl - b);
        *cut = *len > r->max;   /* too long, though it came whole in one read */
        r->start += *len + 1;
        r->cont = 0;
        return 1;
    }
    if (avail > r->max) {
        n = r->max;             /* cut before a UTF-8 continuation byte if possible */
        while (n > r->max - 3 && ((unsigned char)b[n] & 0xc0) == 0x80)
            n--;
        *p = b;
        *len = n;
        *cut = 1;
        r->start += n;
        r->cont = 1;
        return 1;
    }
    if (r->eof && avail > 0) {
        *p = b;
        *len = avail;
        *cut = 0;
        r->start = r->end;
        r->cont = 0;
        return 1;
    }
    return r->eof ? -1 : 0;
}

/* Read what stdin has. 0, or -1 on a read error. */
static int fill(struct reader *r)
{
    ssize_t n;

    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    n = read(0, r->buf + r->end, r->cap - r->end);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0)
        r->eof = 1;
    r->end += (size_t)n;
    return 0;
}

/* Publish one JSON Lines line. Returns 0 to go on, or a MOSQLITE_E* code that ends
 * the input. */
static int handle_line(mosqlite_client *c, char *p, size_t len, int cut, int cont,
                       unsigned long lineno)
{
    char *json;
    int rc;

    {
        size_t i = 0;
        if (cut || cont) {
            if (!cont) {
                log_error("line %lu: longer than %lld bytes, not sent", lineno, o_max_line);
                local_failures++;
            }
            return 0;
        }
        while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
            i++;
        if (i == len)
            return 0;           /* blank line */
        if (!(json = malloc(len + 1)))
            return MOSQLITE_ENOMEM;
        memcpy(json, p, len);
        json[len] = '\0';
        if (strlen(json) != len) {
            log_error("line %lu: has a NUL byte, not sent", lineno);
            local_failures++;
            free(json);
            return 0;
        }
    }
    rc = mosqlite_publish(c, NULL, json, TAG(lineno, o_wait && only_updates(json)), NULL);
    free(json);
    if (rc == MOSQLITE_EINVAL) {
        log_error("line %lu: %s", lineno, mosqlite_errstr(c));
        local_failures++;
        return 0;
    }
    return rc;
}

/* Publish JSON Lines from stdin, line by line, as they arrive. */
static int run_stdin(mosqlite_client *c)
{
    struct reader r = {0};
    unsigned long lineno = 0;
    int rc = MOSQLITE_OK;

    r.max = (size_t)o_max_line;
    r.cap = r.max + 65536;
    if (!(r.buf = malloc(r.cap)))
        return MOSQLITE_ENOMEM;
    while (!stop && !refused && rc == MOSQLITE_OK) {
        char *p;
        size_t len;
        int cut, cont, got = 0;
        struct pollfd pfd = {0, POLLIN, 0};

        while (rc == MOSQLITE_OK && !refused && (got = next_line(&r, &p, &len, &cut, &cont)) == 1) {
            if (!cont)
                lineno++;
            rc = handle_line(c, p, len, cut, cont, lineno);
        }
        if (rc != MOSQLITE_OK || got < 0)
            break;
        /* Wait for input, but wake to deliver results and republish. */
        if (poll(&pfd, 1, 100) > 0 && fill(&r) < 0) {
            log_error("reading stdin: %s", strerror(errno));
            local_failures++;
            break;
        }
        if (rc == MOSQLITE_OK)
            rc = mosqlite_service(c);
    }
    if (stop)
        log_warn("interrupted: stopped reading stdin after %lu lines", lineno);
    else if (refused)       /* every line goes to the same topic: all would be refused */
        log_error("stopped reading stdin after %lu lines", lineno);
    free(r.buf);
    return rc;
}

/* One request from the arguments, built before connecting so bad JSON fails early. */
static char *build_single(const char *table, const char *data)
{
    enum mosqlite_op op = MOSQLITE_INSERT;
    char err[256], *json;
    const char *key;
    int deletes;

    mosqlite_op_parse(o_op ? o_op : "insert", &op);
    if (!(json = mosqlite_request_build(op, data, o_where, o_id, err, sizeof err)))
        log_error("%s", err);
    else if (data && (key = envelope_of(data, &deletes))) {
        envelope_hint(key, deletes, o_op && !strcmp(o_op, "upsert"), table);
        mosqlite_free(json);
        json = NULL;
    }
    return json;
}

/* A column name that can go into JSON text as it is. */
static int plain_name(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* Check the arguments; 0 when they make sense, else one line on stderr. cmd is what
 * followed `--` (NULL when there was none). */
static int check_args(int npos, char **pos, char **cmd, int *mode)
{
    enum mosqlite_op op = MOSQLITE_INSERT;
    const char *why = NULL;

    if (o_op && mosqlite_op_parse(o_op, &op))
        why = "--op must be insert, upsert, update or delete";
    else if (o_qos != 2)
        why = "-q/--qos: mosqlite-pub publishes at QoS 2 only (exactly once needs it)";
    else if (o_protocol && strcmp(o_protocol, "5") && strcmp(o_protocol, "mqttv5"))
        why = "-V/--protocol-version: mosqlite-pub speaks MQTT 5 only (5 or mqttv5): it needs "
              "v5 reason codes to know when the broker refused a request";
    else if ((why = cfg_client_check(&cl)) != NULL) {
        /* said below */
    } else if (o_deliver) {
        *mode = 'd';
        if (npos || cmd || o_lines)
            why = "--deliver DIR takes nothing else to publish";
    } else if (o_lines) {
        *mode = 'l';
        if (npos != 1 || !strcmp(pos[0], "-"))
            why = "--lines takes exactly one TABLE (then -- COMMAND to run a build)";
        else if (o_op || o_where || o_id)
            why = "--lines does not take --op, --where or --id";
        else if (cmd && !cmd[0])
            why = "nothing to run after --";
        else if (!plain_name(o_lines) || (o_time_column && !plain_name(o_time_column)) ||
                 (o_stream_column && !plain_name(o_stream_column)))
            why = "a column name must not hold quotes, backslashes or control characters";
    } else if (o_with) {
        why = "--with only goes with --lines";
    } else if (cmd) {
        why = "-- COMMAND goes with --lines COLUMN TABLE";
    } else if (npos == 1 && !strcmp(pos[0], "-")) {
        *mode = '-';
        if (o_op || o_where || o_id)
            why = "- (JSON Lines) does not take --op, --where or --id: put them in each line";
    } else {
        *mode = 's';
        if (npos == 0)
            why = "nothing to publish (try --help)";
        else if (op == MOSQLITE_DELETE && npos != 1)
            why = "--op delete takes TABLE and --where, no values";
        else if (op != MOSQLITE_DELETE && npos != 2)
            why = "expected TABLE and a JSON object of values (try --help)";
        else if ((op == MOSQLITE_UPDATE || op == MOSQLITE_DELETE) && !o_where)
            why = "update and delete need --where";
        else if (o_where && op != MOSQLITE_UPDATE && op != MOSQLITE_DELETE)
            why = "--where only goes with --op update or delete";
    }
    if (!why && (*mode == 'l' || *mode == 's') && (!*pos[0] || strpbrk(pos[0], "/+#")))
        why = "TABLE must be a plain table name";
    if (!why && o_must_match && !(*mode == '-' || op == MOSQLITE_UPDATE || op == MOSQLITE_DELETE))
        why = "--must-match goes with --op update or delete, or - (JSON Lines)";
    else if (!why && o_must_match && !o_wait)
        why = "--must-match needs --wait: only the writer's receipt says how many rows changed";
    if (why) {
        log_error("%s", why);
        return -1;
    }
    return 0;
}

/* The log pipe, the wrapper (cmd) and --deliver; returns the exit status. */
static int run_pipe(int mode, const char *table, char **cmd, const struct mosqlite_options *mo)
{
    struct pipe_conf pc;
    mosqlite_lines *tpl;
    char err[512];

    memset(&pc, 0, sizeof pc);
    pc.table = table;
    pc.column = o_lines;
    pc.with = o_with;
    pc.stream_column = o_stream_column ? o_stream_column : "stream";
    pc.time_column = o_time_column;
    pc.build_table = cmd && !o_no_build ? o_build_table : NULL;
    pc.build_where = o_build_where;
    pc.build_name = o_build_name;
    pc.spool_dir = mode == 'd' ? o_deliver : o_spool;
    pc.spool_max = (unsigned long long)o_spool_max;
    pc.linger_s = (int)o_linger;
    pc.window = (int)o_lines_window;
    pc.batch_lines = (int)o_lines_max;
    pc.tee = !o_no_tee;
    pc.verbose = o_verbose;
    pc.mo = *mo;
    if (mode == 'd')
        return pipe_deliver(&pc);
    if (!(tpl = mosqlite_lines_new(o_lines, o_with, err, sizeof err)) ||
        pipe_check_build(&pc, err, sizeof err)) {
        log_error("%s", err);
        mosqlite_lines_free(tpl);
        return EXIT_USAGE;
    }
    mosqlite_lines_free(tpl);
    return pipe_run(&pc, cmd);
}

/* The library's options from ours; client_id is the buffer for a --id-prefix id. */
static void client_options(struct mosqlite_options *mo, char *client_id, size_t n)
{
    char id[MOSQLITE_ID_LEN + 1];

    cliconn_mosqlite_options(mo, &cl);
    /* NULL: the library's mosqlite-pub-<id> */
    mo->client_id = cfg_client_id(&cl, cl.id_prefix && mosqlite_new_id(id) == 0 ? id : NULL, NULL,
                                  client_id, n);
    mo->receipts = o_wait;
    mo->window = (int)o_window;
    mo->timeout_ms = (int)o_timeout * 1000;
}

/* --verbose: what happened to the requests, and how fast. */
static void report(const struct mosqlite_stats *st, double dt)
{
    if (o_wait) {
        unsigned long done = st->applied + st->duplicate + st->rejected + st->scheduled +
                             st->cancelled;
        log_info("sent %lu, applied %lu, duplicate %lu, rejected %lu, scheduled %lu, cancelled %lu, "
                 "unconfirmed %lu, republished %lu, refused by broker %lu, elapsed %.3f s, "
                 "%.0f requests/s", st->sent, st->applied, st->duplicate, st->rejected,
                 st->scheduled, st->cancelled, st->outstanding, st->republished, st->refused, dt,
                 dt > 0 ? done / dt : 0.0);
    } else {                            /* without receipts nothing says what was applied */
        log_info("sent %lu (taken by the broker; use --wait to know what was applied), "
                 "unconfirmed %lu, republished %lu, refused by broker %lu, elapsed %.3f s, "
                 "%.0f requests/s", st->sent, st->outstanding, st->republished, st->refused, dt,
                 dt > 0 ? st->sent / dt : 0.0);
    }
}

/* The exit status of a run that got as far as connecting (see usage). */
static int exit_status(int rc, const struct mosqlite_stats *st)
{
    if (rc == MOSQLITE_ETIMEDOUT || st->outstanding > 0)
        return EXIT_UNCONFIRMED;
    if (rc != MOSQLITE_OK)
        return EXIT_CONNECT;
    if (st->rejected > 0 || local_failures > 0 || refused > 0)
        return EXIT_REJECTED;
    return 0;
}

/* One request from the arguments (single) or JSON Lines from stdin, to the end: the
 * exit status. */
static int run_requests(const char *table, const char *single, const struct mosqlite_options *mo,
                        double t0)
{
    struct mosqlite_stats st;
    struct sigaction sa;
    mosqlite_client *c;
    int rc, status;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;          /* no SA_RESTART: poll() returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!(c = mosqlite_client_new(mo))) {
        log_error("out of memory");
        return EXIT_CONNECT;
    }
    mosqlite_set_callback(c, on_result, NULL);
    if (!single && o_wait)
        mosqlite_set_in_order(c, 1);    /* each line after the one before: the order holds */
    if (mosqlite_connect(c) != MOSQLITE_OK) {
        log_error("%s", mosqlite_errstr(c));
        mosqlite_close(c);
        return EXIT_CONNECT;
    }
    if (single) {
        single_table = table;
        rc = mosqlite_publish(c, table, single, TAG(0, o_op && (!strcmp(o_op, "update") ||
                                                                !strcmp(o_op, "delete"))), NULL);
        if (rc != MOSQLITE_OK)
            log_error("%s", mosqlite_errstr(c));
    } else {
        rc = run_stdin(c);
    }
    if (rc == MOSQLITE_EINVAL) {
        local_failures++;
        rc = MOSQLITE_OK;
    }
    if (rc == MOSQLITE_OK)
        rc = mosqlite_wait(c, -1);
    if (rc != MOSQLITE_OK)
        log_error("%s", mosqlite_errstr(c));
    if (refused > 1)
        log_error("%lu requests refused by the broker in all", refused);

    mosqlite_stats(c, &st);
    if (o_verbose)
        report(&st, util_now_exact_ms() / 1e3 - t0);
    status = exit_status(rc, &st);
    mosqlite_close(c);
    return status;
}

int main(int argc, char **argv)
{
    struct mosqlite_options mo;
    char *single = NULL, **cmd = NULL, client_id[512];
    int npos = 0, mode = 0, rc, status;
    double t0 = util_now_exact_ms() / 1e3;

    log_init("mosqlite-pub", LOG_INFO);
    /* Everything after the first `--` is the command to run, not ours to parse. The
     * user's defaults: $XDG_CONFIG_HOME/mosqlite-pub or ~/.config/mosqlite-pub (as
     * mosquitto_pub reads ~/.config/mosquitto_pub), then MOSQLITE_HOST, ... */
    if ((rc = cfg_start(opts, "mosqlite-pub", &argc, argv, &cmd, &npos, usage)))
        return rc > 0 ? 0 : EXIT_USAGE;
    if (check_args(npos, argv + 1, cmd, &mode) ||
        (mode == 's' && !(single = build_single(argv[1], npos > 1 ? argv[2] : NULL)))) {
        cfg_free(opts);
        return EXIT_USAGE;
    }

    client_options(&mo, client_id, sizeof client_id);
    if (mode == 'l' || mode == 'd')
        status = run_pipe(mode, argv[1], cmd, &mo);
    else
        status = run_requests(argv[1], single, &mo, t0);
    mosqlite_free(single);
    cfg_free(opts);
    return status;
}
