/* test_cfg.c: the option and config-file parser (common/cfg.c): strict numbers, the
 * same keys from the file and the command line, file:line errors, the command line
 * winning over the file, keys limited to one side. */
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

void test_cfg(void)
{
    check_int();
    check_file();
    check_args();
    cfg_free(opts);
}
