/* test_cfg.c: the option and config-file parser (common/cfg.c): strict numbers, the
 * same keys from the file and the command line, file:line errors, the command line
 * winning over the file, keys limited to one side; --help's defaults, printed from the
 * option table; and the shipped conf/mosqlite.conf against mosqlite-writer's table, as
 * its --help prints it (the table is the writer's main.c's): every option there with
 * the same default, and no key there that the writer does not take. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "unit.h"

static struct {
    const char *host, *config;
    long long port;
    int verbose;
    struct cfg_list tables;
} v;

static const struct cfg_opt opts[] = {
    {"host", 'h', CFG_STR, &v.host, 0, 0, 0, "HOST", "broker host"},
    {"port", 'p', CFG_INT, &v.port, 1, 65535, 0, "PORT", "broker port"},
    {"config", 'c', CFG_STR, &v.config, 0, 0, CFG_CMDLINE_ONLY, "FILE", "config file"},
    {"tables", 0, CFG_LIST, &v.tables, 0, 0, CFG_FILE_ONLY, "T...", "writable tables"},
    {"verbose", 'v', CFG_FLAG, &v.verbose, 0, 0, 0, "", "debug lines"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void reset(void)
{
    cfg_free(opts);
    memset(&v, 0, sizeof v);
    v.host = "127.0.0.1";
    v.port = 1883;
}

static char *write_file(const char *name, const char *text)
{
    char *path = unit_path(name);
    FILE *f = path ? fopen(path, "w") : NULL;

    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void check_int(void)
{
    long long n = 0;

    unit_check(!cfg_parse_int("65535", 1, 65535, &n) && n == 65535, "cfg: a number at its maximum");
    unit_check(cfg_parse_int("65536", 1, 65535, &n) && cfg_parse_int("0", 1, 65535, &n),
               "cfg: numbers outside the range refused");
    unit_check(cfg_parse_int("12x", 0, 100, &n) && cfg_parse_int("", 0, 100, &n) &&
               cfg_parse_int(" 1", 0, 100, &n) && cfg_parse_int("1.0", 0, 100, &n),
               "cfg: trailing junk, empty, leading space and fractions refused");
    unit_check(cfg_parse_int("99999999999999999999", 0, 1LL << 62, &n), "cfg: overflow refused");
}

static void check_file(void)
{
    char err[512];
    char *good = write_file("good.conf", "# comment\n\nhost   broker.example  \nport 1884\n"
                            "tables a b\ntables c\nverbose\n");
    char *bad = write_file("bad.conf", "host x\n\nport 7x\n");
    char *cmdonly = write_file("cmd.conf", "config other.conf\n");
    char *noval = write_file("noval.conf", "port\n");
    char want[600];

    reset();
    unit_check(!cfg_load_file(opts, good, err, sizeof err) && !strcmp(v.host, "broker.example") &&
               v.port == 1884 && v.verbose == 1 && v.tables.n == 2 &&
               !strcmp(v.tables.items[0], "a b") && !strcmp(v.tables.items[1], "c"),
               "cfg: a file of key value lines, comments, a bare flag, a repeated list");
    reset();
    snprintf(want, sizeof want, "%s:3: port: \"7x\" is not a whole number from 1 to 65535", bad);
    err[0] = 0;
    cfg_load_file(opts, bad, err, sizeof err);
    unit_check_str(err, want, "cfg: a bad value is reported as file:line: reason");
    snprintf(want, sizeof want, "%s:1: unknown key \"config\"", cmdonly);
    cfg_load_file(opts, cmdonly, err, sizeof err);
    unit_check_str(err, want, "cfg: a command-line-only key is unknown in a file");
    snprintf(want, sizeof want, "%s:1: \"port\" needs a value", noval);
    cfg_load_file(opts, noval, err, sizeof err);
    unit_check_str(err, want, "cfg: a key without a value");
    free(good);
    free(bad);
    free(cmdonly);
    free(noval);
}

static void check_args(void)
{
    char err[512], arg_c[300];
    char *conf = write_file("args.conf", "host from-file\nport 1000\n");
    char prog[] = "prog", c[] = "-c", port_eq[] = "--port=2000", pos[] = "pos", verbose[] = "-v";
    char tables[] = "--tables", a[] = "a", port[] = "--port";
    char *argv1[] = {prog, c, arg_c, port_eq, pos, verbose, NULL};
    char *argv2[] = {prog, tables, a, NULL};
    char *argv3[] = {prog, port, NULL};
    int npos = -1;

    snprintf(arg_c, sizeof arg_c, "%s", conf ? conf : "");
    reset();
    unit_check(!cfg_parse_args(opts, 6, argv1, &npos, "usage", err, sizeof err) &&
               !strcmp(v.host, "from-file") && v.port == 2000 && v.verbose && npos == 1 &&
               !strcmp(argv1[1], "pos"),
               "cfg: the file is read first, the command line wins, positionals moved to the front");
    reset();
    cfg_parse_args(opts, 3, argv2, &npos, "usage", err, sizeof err);
    unit_check_str(err, "unknown option \"--tables\" (try --help)",
                   "cfg: a file-only key is unknown on the command line");
    reset();
    cfg_parse_args(opts, 2, argv3, &npos, "usage", err, sizeof err);
    unit_check_str(err, "option --port needs a value", "cfg: an option without its value");
    reset();
    free(conf);
}

/* cfg_print_help's text, for the test's table with the values set now. */
static char *help_text(void)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    FILE *out = stdout;

    if (!f)
        return NULL;
    fflush(stdout);
    stdout = f;
    cfg_print_help(opts, "usage");
    stdout = out;
    fclose(f);
    return buf;
}

static void check_help(void)
{
    char *h;

    reset();
    v.host = "example.org";
    v.port = 1883;
    h = help_text();
    unit_check(h && strstr(h, "broker host (default example.org)\n") &&
               strstr(h, "broker port (default 1883)\n") && strstr(h, "debug lines\n") &&
               !strstr(h, "config file (default") && strstr(h, "In a config file only") &&
               strstr(h, "tables T...") && strstr(h, "writable tables\n"),
               "cfg: --help prints each default from the table's variable:\n%s", h ? h : "");
    free(h);
    v.host = NULL;
    v.port = 0;         /* outside 1..65535: not set */
    h = help_text();
    unit_check(h && strstr(h, "broker host\n") && strstr(h, "broker port\n"),
               "cfg: --help prints no default for an unset string or a number out of range");
    free(h);
    reset();
}

/* The shipped config's `# key value` lines against what mosqlite-writer --help says. */
#define NKEYS 128
struct keys {
    char name[NKEYS][64], def[NKEYS][128];
    int kind[NKEYS];            /* 0 takes a value, 1 a flag, 2 config file only */
    int n, twice;               /* twice: help lines with "(X) (default X)" */
};

static int find_key(const struct keys *k, const char *name)
{
    int i;

    for (i = 0; i < k->n; i++)
        if (!strcmp(k->name[i], name))
            return i;
    return -1;
}

static void add_key(struct keys *k, const char *name, size_t nl, const char *def, size_t dl, int kind)
{
    if (k->n >= NKEYS || nl >= sizeof k->name[0] || dl >= sizeof k->def[0])
        return;
    memcpy(k->name[k->n], name, nl);
    k->name[k->n][nl] = 0;
    memcpy(k->def[k->n], def, dl);
    k->def[k->n][dl] = 0;
    k->kind[k->n++] = kind;
}

/* Read `prog --help` into k. 0, or -1 when it cannot be run. */
static int help_keys(const char *prog, struct keys *k)
{
    char line[1024], cmd[600];
    regex_t opt, fonly, def, twice;
    regmatch_t m[5], d[2];
    int in_file = 0, rc = 0;
    FILE *p;

    snprintf(cmd, sizeof cmd, "%s --help", prog);
    if (!(p = popen(cmd, "r")))
        return -1;
    regcomp(&opt, "^ +(-., )?--([a-z0-9-]+)( [^ ]+)? +(.*)$", REG_EXTENDED);
    regcomp(&fonly, "^ +([a-z][a-z0-9-]*) ", REG_EXTENDED);
    regcomp(&def, "\\(default ([^()]*)\\)$", REG_EXTENDED);
    regcomp(&twice, "\\(([^()]*)\\) \\(default \\1\\)$", REG_EXTENDED);
    k->n = k->twice = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "In a config file only", 21))
            in_file = 1;
        if (!regexec(&twice, line, 0, NULL, 0)) {
            unit_note("%s --help spells the default in the help text too: %s", prog, line);
            k->twice++;
        }
        if (!in_file && !regexec(&opt, line, 5, m, 0)) {
            int hasdef = !regexec(&def, line + m[4].rm_so, 2, d, 0);
            add_key(k, line + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so),
                    hasdef ? line + m[4].rm_so + d[1].rm_so : "", hasdef ? (size_t)(d[1].rm_eo - d[1].rm_so) : 0,
                    m[3].rm_so < 0);
        } else if (in_file && !regexec(&fonly, line, 2, m, 0)) {
            add_key(k, line + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so), "", 0, 2);
        }
    }
    if (pclose(p) != 0)
        rc = -1;
    regfree(&opt);
    regfree(&fonly);
    regfree(&def);
    regfree(&twice);
    return rc;
}

static void check_conf(const char *prog, const char *conf)
{
    static struct keys help, file;
    char line[1024];
    regex_t kv;
    regmatch_t m[3];
    FILE *f = fopen(conf, "r");
    int i, j, ok = 1;

    if (help_keys(prog, &help) || !help.n || !f) {
        unit_check(0, "cfg: %s --help and %s read", prog, conf);
        if (f)
            fclose(f);
        return;
    }
    /* `# key`, `# key value`, then nothing or a comment after two spaces. */
    regcomp(&kv, "^# ([a-z][a-z0-9-]*)( [^ ]+)?( {2,}#.*| *)$", REG_EXTENDED);
    file.n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!regexec(&kv, line, 3, m, 0))
            add_key(&file, line + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so),
                    m[2].rm_so < 0 ? "" : line + m[2].rm_so + 1,
                    m[2].rm_so < 0 ? 0 : (size_t)(m[2].rm_eo - m[2].rm_so - 1), 0);
    }
    fclose(f);
    regfree(&kv);
    for (i = 0; i < help.n; i++) {
        const char *want = help.kind[i] == 1 ? "no" : help.def[i];
        if (help.kind[i] == 2 || !strcmp(help.name[i], "config") || !strcmp(help.name[i], "help") ||
            !strcmp(help.name[i], "version"))
            continue;       /* a list (no default), or the command line's only */
        j = find_key(&file, help.name[i]);
        if (j < 0 || strcmp(file.def[j], want)) {
            unit_note("%s: \"# %s %s\" expected (%s --help), found %s%s%s", conf, help.name[i], want, prog,
                      j < 0 ? "no line" : "\"", j < 0 ? "" : file.def[j], j < 0 ? "" : "\"");
            ok = 0;
        }
    }
    for (j = 0; j < file.n; j++) {
        i = find_key(&help, file.name[j]);
        if (i < 0 || (help.kind[i] == 2 && file.def[j][0])) {
            unit_note("%s: \"# %s %s\": %s", conf, file.name[j], file.def[j],
                      i < 0 ? "no such option" : "a list has no default");
            ok = 0;
        }
    }
    unit_check(!help.twice, "cfg: %s --help spells each default once, from its table", prog);
    unit_check(ok, "cfg: %s's `# key value` lines are %s's options and defaults (%d keys, %d lines)",
               conf, prog, help.n, file.n);
}

void test_cfg(void)
{
    char writer[512];

    check_int();
    check_file();
    check_args();
    check_help();
    snprintf(writer, sizeof writer, "%s/mosqlite-writer", getenv("BIN") ? getenv("BIN") : "bin");
    check_conf(writer, "conf/mosqlite.conf");
    cfg_free(opts);
}
