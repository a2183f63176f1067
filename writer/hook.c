/* hook.c: commands run after a commit (see hook.h).
 *
 * A run is forked at once when fewer than `max` run, else queued with a copy of its
 * event. The child, not the writer, writes the event to an unlinked temporary file and
 * makes it its stdin: the writer never blocks on a pipe a slow command does not read.
 * The child leads a process group of its own, so a time-out kills whatever the command
 * started too. Its stdout goes to the writer's stderr (the log); other descriptors
 * (the database, the broker sockets) are closed before exec.
 *
 * SIGCHLD only sets a flag: hook_wait_ms() then tells the loop not to sleep, and
 * hook_tick() reaps each known child with waitpid(WNOHANG). A SIGCHLD that lands just
 * before the loop's poll() is seen at the latest after TICK_MS, the longest the loop
 * sleeps while a command runs. */
#include "hook.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define TICK_MS     100       /* longest sleep of the loop while a command runs */
#define MAX_FD      65536     /* descriptors closed in the child: at most up to this */

static volatile sig_atomic_t child_exited;

/* A run waiting for a slot. */
struct pending {
    struct pending *next;
    int spec;
    char *table, *op;
    char *json;
    size_t len;
};

/* A run in progress. */
struct running {
    pid_t pid;                /* 0: slot free */
    int spec;
    char *table, *op;
    long long start_ms, deadline_ms;
    int killed;               /* SIGKILL sent at the time limit */
};

struct hooks {
    struct hook_spec *specs;
    int nspecs;
    int max;
    long long timeout_ms;
    int queue_max;
    hook_publish_fn publish;
    void *ud;
    struct running *run;      /* max slots */
    int nrun;
    struct pending *head, **tail;
    int nq;
    struct jbuf out;
    long long win_start;      /* the second the notices below count in */
    int win_n;                /* failures logged and published in it */
    long long suppressed;     /* more failures in it, only counted */
};

/* Failures (failed, timed out, dropped, not started) logged and published in one
 * second; beyond, they are counted and the count is logged and published once the
 * second is over, so that a hook failing on every commit cannot flood the log and
 * PREFIX/hooks. */
#define HOOK_NOTICES_PER_S 10

static const char *const ops[] = {"insert", "upsert", "update", "delete", "*", NULL};

static void on_sigchld(int sig)
{
    (void)sig;
    child_exited = 1;
}

void hook_spec_free(struct hook_spec *s)
{
    int i;

    if (!s)
        return;
    free(s->table);
    free(s->op);
    for (i = 0; s->argv && i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->command);
    memset(s, 0, sizeof *s);
}

int hook_parse(const char *line, struct hook_spec *out, char *err, size_t errlen)
{
    char *copy = strdup(line), *tok, *save = NULL;
    char **words = NULL;
    int n = 0, i;
    size_t clen = 0;

    memset(out, 0, sizeof *out);
    if (!copy)
        goto oom;
    for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char **w = realloc(words, (size_t)(n + 2) * sizeof *w);
        if (!w)
            goto oom;
        words = w;
        if (!(words[n] = strdup(tok)))
            goto oom;
        words[++n] = NULL;
    }
    if (n < 3) {
        snprintf(err, errlen, "hook: want TABLE OP COMMAND [ARG...], got \"%s\"", line);
        goto fail;
    }
    for (i = 0; ops[i] && strcmp(ops[i], words[1]); i++)
        ;
    if (!ops[i]) {
        snprintf(err, errlen, "hook: op \"%s\" is not insert, upsert, update, delete or *", words[1]);
        goto fail;
    }
    out->table = words[0];
    out->op = words[1];
    out->argc = n - 2;
    if (!(out->argv = calloc((size_t)n - 1, sizeof *out->argv)))
        goto oom;
    for (i = 2; i < n; i++) {
        out->argv[i - 2] = words[i];
        clen += strlen(words[i]) + 1;
    }
    if (!(out->command = malloc(clen)))
        goto oom;
    out->command[0] = '\0';
    for (i = 0; i < out->argc; i++) {
        if (i)
            strcat(out->command, " ");
        strcat(out->command, out->argv[i]);
    }
    free(words);
    free(copy);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (out->argv) {
        hook_spec_free(out);     /* owns every word now */
    } else {
        for (i = 0; i < n; i++)
            free(words[i]);
        memset(out, 0, sizeof *out);
    }
    free(words);
    free(copy);
    return -1;
}

int hook_matches(const struct hook_spec *s, const char *table, const char *op)
{
    return (!strcmp(s->table, "*") || !strcasecmp(s->table, table)) &&
           (!strcmp(s->op, "*") || !strcmp(s->op, op));
}

int hook_report(struct jbuf *b, const struct hook_result *r)
{
    jb_reset(b);
    jb_puts(b, "{\"command\":");
    jb_cstr(b, r->command);
    jb_puts(b, ",\"table\":");
    jb_cstr(b, r->table);
    jb_puts(b, ",\"op\":");
    jb_cstr(b, r->op);
    jb_puts(b, ",\"outcome\":");
    jb_cstr(b, r->outcome);
    jb_puts(b, ",\"exit_status\":");
    if (r->exit_status >= 0)
        jb_int(b, r->exit_status);
    else
        jb_puts(b, "null");
    jb_puts(b, ",\"signal\":");
    if (r->signal > 0)
        jb_int(b, r->signal);
    else
        jb_puts(b, "null");
    jb_puts(b, ",\"ms\":");
    jb_int(b, r->ms);
    if (r->error) {
        jb_puts(b, ",\"error\":");
        jb_cstr(b, r->error);
    }
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}

int hook_report_suppressed(struct jbuf *b, long long count, long long ms)
{
    jb_reset(b);
    jb_puts(b, "{\"outcome\":\"suppressed\",\"count\":");
    jb_int(b, count);
    jb_puts(b, ",\"ms\":");
    jb_int(b, ms);
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}

int hook_check(const struct cfg_list *lines, char *err, size_t errlen)
{
    struct hook_spec spec;
    char why[512];
    size_t i;

    for (i = 0; i < lines->n; i++) {
        const char *at = cfg_list_origin(lines, i);
        if (hook_parse(lines->items[i], &spec, why, sizeof why))
            return snprintf(err, errlen, "%s%s%s", at ? at : "", at ? ": " : "", why), -1;
        hook_spec_free(&spec);
    }
    return 0;
}

struct hooks *hook_new(const struct cfg_list *lines, int max, long long timeout_ms,
                       int queue_max, hook_publish_fn publish, void *ud,
                       char *err, size_t errlen)
{
    struct hooks *h = calloc(1, sizeof *h);
    struct sigaction sa;
    size_t i;

    if (!h || !(h->specs = calloc(lines->n + 1, sizeof *h->specs)) ||
        !(h->run = calloc((size_t)max, sizeof *h->run))) {
        snprintf(err, errlen, "out of memory");
        hook_free(h);
        return NULL;
    }
    h->max = max;
    h->timeout_ms = timeout_ms;
    h->queue_max = queue_max;
    h->publish = publish;
    h->ud = ud;
    h->tail = &h->head;
    for (i = 0; i < lines->n; i++) {
        if (hook_parse(lines->items[i], &h->specs[i], err, errlen)) {
            hook_free(h);
            return NULL;
        }
        h->nspecs++;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    return h;
}

/* Close the second of notices when it is over: say how many were only counted. */
static void notices_roll(struct hooks *h, long long now)
{
    if (now - h->win_start < 1000)
        return;
    if (h->suppressed) {
        log_warn("hooks: %lld more failures in the last %lld ms were not logged or published "
                 "(at most %d a second)", h->suppressed, now - h->win_start, HOOK_NOTICES_PER_S);
        if (h->publish && !hook_report_suppressed(&h->out, h->suppressed, now - h->win_start))
            h->publish(h->ud, h->out.s, h->out.len);
    }
    h->win_start = now;
    h->win_n = 0;
    h->suppressed = 0;
}

/* A failure: logged at level with fmt, and r published, within HOOK_NOTICES_PER_S. */
static void notice(struct hooks *h, const struct hook_result *r, enum log_level level,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void notice(struct hooks *h, const struct hook_result *r, enum log_level level,
                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    notices_roll(h, util_now_ms());
    if (h->win_n >= HOOK_NOTICES_PER_S) {
        h->suppressed++;
        return;
    }
    h->win_n++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(level, "%s", msg);
    if (h->publish && !hook_report(&h->out, r))
        h->publish(h->ud, h->out.s, h->out.len);
}

/* In the child: the event as stdin, stdout to the log, nothing else open, exec. */
static void child(const struct hook_spec *s, const char *json, size_t len)
{
    struct sigaction sa;
    sigset_t none;
    FILE *f;
    long maxfd = sysconf(_SC_OPEN_MAX);
    int fd;

    setpgid(0, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (!(f = tmpfile()) || fwrite(json, 1, len, f) != len || fflush(f) || fseek(f, 0, SEEK_SET) ||
        dup2(fileno(f), 0) < 0 || dup2(2, 1) < 0) {
        fprintf(stderr, "mosqlite-writer: hook %s: cannot give it the event: %s\n",
                s->command, strerror(errno));
        _exit(126);
    }
    if (maxfd < 0 || maxfd > MAX_FD)
        maxfd = MAX_FD;
    for (fd = 3; fd < maxfd; fd++)
        close(fd);
    execvp(s->argv[0], s->argv);
    fprintf(stderr, "mosqlite-writer: hook %s: %s\n", s->argv[0], strerror(errno));
    _exit(127);
}

static void pending_free(struct pending *p)
{
    if (!p)
        return;
    free(p->table);
    free(p->op);
    free(p->json);
    free(p);
}

/* Fork a run of p in a free slot. p is freed. */
static void start(struct hooks *h, struct pending *p)
{
    const struct hook_spec *s = &h->specs[p->spec];
    struct running *r = NULL;
    struct hook_result res;
    pid_t pid;
    int i;

    for (i = 0; i < h->max && !r; i++)
        if (!h->run[i].pid)
            r = &h->run[i];
    fflush(stderr);
    pid = r ? fork() : -1;
    if (pid == 0)
        child(s, p->json, p->len);
    if (pid < 0) {
        memset(&res, 0, sizeof res);
        res.command = s->command;
        res.table = p->table;
        res.op = p->op;
        res.outcome = "error";
        res.exit_status = -1;
        res.error = strerror(errno);
        notice(h, &res, LOG_ERROR, "hook %s (%s %s): cannot start it: %s", s->command, p->table,
               p->op, res.error);
        pending_free(p);
        return;
    }
    setpgid(pid, pid);       /* also here: kill(-pid) must work even before the child runs */
    r->pid = pid;
    r->spec = p->spec;
    r->table = p->table;
    r->op = p->op;
    r->start_ms = util_now_ms();
    r->deadline_ms = r->start_ms + h->timeout_ms;
    r->killed = 0;
    h->nrun++;
    p->table = p->op = NULL;
    pending_free(p);
    log_debug("hook %s (%s %s) started: pid %d", s->command, r->table, r->op, (int)pid);
}

void hook_event(struct hooks *h, const char *table, const char *op, const char *json, size_t len)
{
    int i;

    if (!h)
        return;
    for (i = 0; i < h->nspecs; i++) {
        struct pending *p;
        if (!hook_matches(&h->specs[i], table, op))
            continue;
        if (h->nq >= h->queue_max) {
            struct hook_result res;
            memset(&res, 0, sizeof res);
            res.command = h->specs[i].command;
            res.table = table;
            res.op = op;
            res.outcome = "dropped";
            res.exit_status = -1;
            notice(h, &res, LOG_WARN, "hook %s (%s %s): %d runs already wait: this one is dropped",
                   h->specs[i].command, table, op, h->nq);
            continue;
        }
        if (!(p = calloc(1, sizeof *p)) || !(p->table = strdup(table)) || !(p->op = strdup(op)) ||
            !(p->json = malloc(len + 1))) {
            log_error("hook %s: out of memory", h->specs[i].command);
            pending_free(p);
            continue;
        }
        memcpy(p->json, json, len);
        p->json[len] = '\0';
        p->len = len;
        p->spec = i;
        *h->tail = p;
        h->tail = &p->next;
        h->nq++;
    }
    hook_tick(h);
}

/* A child has ended: log it, report a failure or a time-out, free its slot. */
static void finished(struct hooks *h, struct running *r, int st)
{
    const struct hook_spec *s = &h->specs[r->spec];
    struct hook_result res;

    memset(&res, 0, sizeof res);
    res.command = s->command;
    res.table = r->table;
    res.op = r->op;
    res.exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    res.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    res.ms = util_now_ms() - r->start_ms;
    if (r->killed) {
        res.outcome = "timeout";
        notice(h, &res, LOG_WARN, "hook %s (%s %s) timed out after %lld ms: killed", s->command,
               r->table, r->op, h->timeout_ms);
    } else if (res.exit_status != 0) {
        res.outcome = "failed";
        if (res.signal)
            notice(h, &res, LOG_WARN, "hook %s (%s %s) killed by signal %d", s->command, r->table,
                   r->op, res.signal);
        else
            notice(h, &res, LOG_WARN, "hook %s (%s %s) failed: exit status %d", s->command,
                   r->table, r->op, res.exit_status);
    } else {
        log_debug("hook %s (%s %s) done in %lld ms", s->command, r->table, r->op, res.ms);
    }
    free(r->table);
    free(r->op);
    memset(r, 0, sizeof *r);
    h->nrun--;
}

void hook_tick(struct hooks *h)
{
    long long now;
    int i, st;

    if (!h)
        return;
    child_exited = 0;
    now = util_now_ms();
    notices_roll(h, now);
    for (i = 0; i < h->max; i++) {
        struct running *r = &h->run[i];
        pid_t got;
        if (!r->pid)
            continue;
        got = waitpid(r->pid, &st, WNOHANG);
        if (got == r->pid || (got < 0 && errno == ECHILD)) {
            finished(h, r, got == r->pid ? st : 0);
            continue;
        }
        if (!r->killed && now >= r->deadline_ms) {
            kill(-r->pid, SIGKILL);
            kill(r->pid, SIGKILL);
            r->killed = 1;
        }
    }
    while (h->head && h->nrun < h->max) {
        struct pending *p = h->head;
        h->head = p->next;
        if (!h->head)
            h->tail = &h->head;
        h->nq--;
        p->next = NULL;
        start(h, p);
    }
}

int hook_wait_ms(const struct hooks *h, int max_ms)
{
    long long now, wait = max_ms;
    int i;

    if (!h || (!h->nrun && !h->nq))
        return max_ms;
    if (child_exited || (h->nq && h->nrun < h->max))
        return 0;
    now = util_now_ms();
    if (wait > TICK_MS)
        wait = TICK_MS;
    for (i = 0; i < h->max; i++)
        if (h->run[i].pid && !h->run[i].killed && h->run[i].deadline_ms - now < wait)
            wait = h->run[i].deadline_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

int hook_running(const struct hooks *h)
{
    return h ? h->nrun : 0;
}

int hook_queued(const struct hooks *h)
{
    return h ? h->nq : 0;
}

void hook_free(struct hooks *h)
{
    struct pending *p, *next;
    int i, st;

    if (!h)
        return;
    for (i = 0; h->run && i < h->max; i++) {
        if (!h->run[i].pid)
            continue;
        kill(-h->run[i].pid, SIGKILL);
        kill(h->run[i].pid, SIGKILL);
        waitpid(h->run[i].pid, &st, 0);
        free(h->run[i].table);
        free(h->run[i].op);
    }
    for (p = h->head; p; p = next) {
        next = p->next;
        pending_free(p);
    }
    for (i = 0; h->specs && i < h->nspecs; i++)
        hook_spec_free(&h->specs[i]);
    free(h->specs);
    free(h->run);
    jb_free(&h->out);
    free(h);
}
