/* main.c: mosqlite, the operator's command: `mosqlite [options] COMMAND [ARGS]`.
 * The connection options (cfg.h's CFG_CLIENT_OPTIONS), the config file
 * ($XDG_CONFIG_HOME/mosqlite-pub or ~/.config/mosqlite-pub, then -c FILE) and the
 * environment (MOSQLITE_HOST, ...) are mosqlite-pub's, so one setup serves both; the keys of that file that only
 * mosqlite-pub uses are accepted and ignored here. The commands are in commands.c. */
#include "console.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "mosqlite.h"

static struct cfg_client cl = CFG_CLIENT_INIT;
static char *o_ignored;
static long long o_timeout = 30, o_count;
static int o_json, o_follow, o_ignored_flag;

static const struct cfg_opt opts[] = {
    CFG_CLIENT_OPTIONS(cl),
    CFG_CLIENT_ID_OPTIONS(cl, "MQTT client id (default mosqlite-cli-<new id>)"),
    CFG_CLIENT_END_OPTIONS(cl),
    {"timeout", 0, CFG_INT, &o_timeout, 0, 86400, 0, "SECONDS",
     "wait this long for an answer (0 = for ever)"},
    {"json", 0, CFG_FLAG, &o_json, 0, 0, CFG_CMDLINE_ONLY, NULL, "print JSON (one document, or one per line)"},
    {"follow", 'f', CFG_FLAG, &o_follow, 0, 0, CFG_CMDLINE_ONLY, NULL, "log: follow the build while it runs"},
    {"count", 'n', CFG_INT, &o_count, 1, 1LL << 40, CFG_CMDLINE_ONLY, "N", "tail: stop after N messages"},
    /* mosqlite-pub's own keys, so that its config file serves here too */
    {"wait", 0, CFG_FLAG, &o_ignored_flag, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"verbose", 0, CFG_FLAG, &o_ignored_flag, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"no-tee", 0, CFG_FLAG, &o_ignored_flag, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"window", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"lines-window", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"lines-max", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"max-line", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"spool", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"spool-max", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"linger", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"build-table", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"stream-column", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"time-column", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"qos", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {"protocol-version", 0, CFG_STR, &o_ignored, 0, 0, CFG_FILE_ONLY, NULL, ""},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
    signal(sig, SIG_DFL);       /* a second one ends the program at once */
}

/* --help: the commands from the table, then what the exits mean. */
static char usage[4096];

static void make_usage(void)
{
    const struct command *c;
    size_t n;

    n = (size_t)snprintf(usage, sizeof usage, "usage: mosqlite [options] COMMAND [ARGS]\n\nCommands:\n");
    for (c = commands; c->name && n < sizeof usage; c++) {
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s %s", c->name, c->args);
        n += (size_t)snprintf(usage + n, sizeof usage - n, "  %-22s %s\n", lhs, c->help);
    }
    if (n < sizeof usage)
        snprintf(usage + n, sizeof usage - n,
                 "\nHuman-readable output; --json for scripts. Exit status: 0 done; 1 refused (by\n"
                 "the writer, or by the broker's ACL: said so) or failed; 2 no answer within\n"
                 "--timeout; 3 bad arguments or config; 4 cannot connect to the broker.\n");
}

/* The options that go together, for cmd: 0, or -1 (said on stderr). */
static int check_options(const struct command *cmd)
{
    const char *why = NULL;

    if (o_follow && strcmp(cmd->name, "log"))
        why = "-f/--follow goes with log only";
    else if (o_count && strcmp(cmd->name, "tail"))
        why = "-n/--count goes with tail only";
    else
        why = cfg_client_check(&cl);
    if (!why && (!*cl.prefix || strpbrk(cl.prefix, "+#")))
        why = "--prefix must be a topic without wildcards";
    if (why)
        log_error("%s", why);
    return why ? -1 : 0;
}

/* The connection's options and the command's state from the options. */
static void setup(struct cliconn_opts *co, struct console *k, const char *client_id)
{
    cliconn_opts_init(co, &cl);
    co->client_id = client_id;
    co->timeout_ms = (int)o_timeout * 1000;

    k->prefix = cl.prefix;
    snprintf(k->reply, sizeof k->reply, "%s/reply/%s", k->prefix, client_id);
    k->json = o_json;
    k->follow = o_follow;
    k->count = o_count;
    k->timeout_ms = (int)o_timeout * 1000;
    k->has_user = cl.username != NULL;
    k->stop = &stop;
}

/* Connect, subscribe to the answers if cmd asks questions, run it: its exit code. */
static int run(struct console *k, const struct command *cmd, const struct cliconn_opts *co, int argc,
               char **argv)
{
    char err[512];
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(cmd->name, "tail") || o_follow) {   /* Ctrl-C ends these: exit 0 */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    if (!(k->c = cliconn_open(co, &rc, err, sizeof err))) {
        log_error("%s", err);
        return rc;
    }
    if (cmd->needs_reply) {     /* the answer topic first, then the question */
        char filter[700];
        snprintf(filter, sizeof filter, "%s/#", k->reply);
        if ((rc = cliconn_subscribe(k->c, filter, err, sizeof err))) {
            log_error("%s", err);
            return rc;
        }
    }
    rc = cmd->run(k, cmd, argc, argv);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    struct console k;
    struct cliconn_opts co;
    const struct command *cmd;
    char err[512], client_id[256], id[MOSQLITE_ID_LEN + 1];
    int npos = 0, rc;

    memset(&k, 0, sizeof k);
    log_init("mosqlite", LOG_INFO);
    make_usage();
    if ((rc = cfg_start(opts, "mosqlite-pub", &argc, argv, NULL, &npos, usage)))
        return rc > 0 ? EX_DONE : EX_USAGE;
    rc = EX_USAGE;
    if (npos == 0) {
        log_error("no command (try --help)");
        goto out;
    }
    if (!(cmd = command_find(argv[1]))) {
        log_error("unknown command \"%s\" (try --help)", argv[1]);
        goto out;
    }
    if (command_check(cmd, npos - 1, argv + 2, err, sizeof err)) {
        log_error("%s", err);
        goto out;
    }
    if (check_options(cmd))
        goto out;
    if (mosqlite_new_id(id)) {
        log_error("no randomness for a client id");
        rc = EX_FAILED;
        goto out;
    }
    cfg_client_id(&cl, id, "mosqlite-cli-", client_id, sizeof client_id);
    setup(&co, &k, client_id);
    rc = run(&k, cmd, &co, npos - 1, argv + 2);
out:
    cliconn_close(k.c);
    cfg_free(opts);
    return rc;
}
