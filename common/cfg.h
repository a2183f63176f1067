/* cfg.h: one parser for command-line options and `key value` config files.
 *
 * A program describes its options once, in a table of struct cfg_opt ended by an
 * entry whose name is NULL. The same table drives `--name value`, `--name=value`,
 * `-x value` on the command line and `name value` lines in a file, so both accept
 * the same keys with the same strict checks. Strings are copied; cfg_free() frees
 * every copy this module made. Numbers are parsed strictly: trailing junk, overflow
 * or a value outside [min, max] is an error. */
#ifndef MOSQLITE_CFG_H
#define MOSQLITE_CFG_H

#include <stddef.h>

#include "defaults.h"

enum cfg_type {
    CFG_STR,    /* char ** (or const char **): the last value given wins */
    CFG_INT,    /* long long *, checked against min..max */
    CFG_FLAG,   /* int *: takes no value on the command line; `yes/no/1/0/true/false` in a file */
    CFG_LIST,   /* struct cfg_list *: repeatable, every value kept in order */
};

struct cfg_list {
    char **items;
    size_t n;
};

/* Where item i of a list filled by cfg came from: "FILE:LINE" for a config file line,
 * NULL for the command line (or a list cfg did not fill), so a later check of the
 * item can name its line. Valid until cfg_free. */
const char *cfg_list_origin(const struct cfg_list *l, size_t i);

/* Where the value of key (a long option name) was last set from a config file:
 * "FILE:LINE", or NULL (command line or default); for a list, its last line from a
 * file. Valid until cfg_free. */
const char *cfg_origin(const char *key);

#define CFG_CMDLINE_ONLY 1   /* not accepted in a config file (e.g. config itself) */
#define CFG_FILE_ONLY    2   /* not accepted on the command line */

struct cfg_opt {
    const char *name;        /* long option and config key */
    char short_name;         /* single-letter option, or 0 */
    enum cfg_type type;
    void *dst;
    long long min, max;      /* for CFG_INT */
    int flags;               /* CFG_CMDLINE_ONLY, CFG_FILE_ONLY */
    const char *arg;         /* placeholder shown in --help, e.g. "PORT" */
    const char *help;        /* one line for --help, without the default: --help adds
                              * " (default X)" from the variable's initial value */
};

/* Set option `key` to `val`. 0 on success; -1 with a reason in err. */
int cfg_set(const struct cfg_opt *opts, const char *key, const char *val,
            int from_file, char *err, size_t errlen);

/* Read `key value` lines ('#' starts a comment, blank lines ignored). Errors come
 * back as "path:line: reason". 0 on success, -1 on error. */
int cfg_load_file(const struct cfg_opt *opts, const char *path, char *err, size_t errlen);

/* Parse argv. Options are applied; the positional arguments (and everything after
 * `--`) are moved, in order, to the front of argv[1..] and their count returned
 * through *npos. If an option named "config" is given, its file is loaded first
 * and the command line applied over it, so the command line wins.
 * Returns 0, 1 when --help or --version was asked (already printed), -1 on error. */
int cfg_parse_args(const struct cfg_opt *opts, int argc, char **argv, int *npos,
                   const char *usage, char *err, size_t errlen);

/* Print the option table as --help text: each option's help, then " (default X)" from
 * the value its variable holds (a number within min..max, a string that is set), then
 * the config-file-only options with a help text of their own. */
void cfg_print_help(const struct cfg_opt *opts, const char *usage);
/* --version: the version on the first line, then the libraries it runs with. */
void cfg_print_version(void);

/* Strict integer parsing: the whole string, base 10, within [min, max]. */
int cfg_parse_int(const char *s, long long min, long long max, long long *out);

/* Free every string and list this module allocated. */
void cfg_free(const struct cfg_opt *opts);

/* The options every program that talks to the broker takes, with the same names, for
 * a config struct s with the fields host, port, prefix, username, password, cafile and
 * config (their defaults: defaults.h's, set in s). */
#define CFG_BROKER_OPTIONS(s) \
    {"host", 'h', CFG_STR, &(s).host, 0, 0, 0, "HOST", "broker host"}, \
    {"port", 'p', CFG_INT, &(s).port, 1, 65535, 0, "PORT", "broker port"}, \
    {"prefix", 0, CFG_STR, &(s).prefix, 0, 0, 0, "PREFIX", "topic prefix"}, \
    {"username", 'u', CFG_STR, &(s).username, 0, 0, 0, "USER", "broker username"}, \
    {"password", 'P', CFG_STR, &(s).password, 0, 0, 0, "PASS", "broker password"}, \
    {"cafile", 0, CFG_STR, &(s).cafile, 0, 0, 0, "FILE", "CA certificate: connect with TLS"}, \
    {"config", 'c', CFG_STR, &(s).config, 0, 0, CFG_CMDLINE_ONLY, "FILE", "config file of `key value` lines"}

/* The connection options of the command-line programs (mosqlite, mosqlite-pub,
 * mosqlite-work), kept in one struct cfg_client (CFG_CLIENT_INIT: the defaults). Their
 * table has CFG_CLIENT_OPTIONS first, then optionally CFG_CLIENT_ID_OPTIONS (help: the
 * client id's, naming its default), then a program's own, then CFG_CLIENT_END_OPTIONS. */
struct cfg_client {
    const char *host, *prefix;
    char *username, *password, *cafile, *cert, *key, *client_id, *id_prefix, *config;
    long long port;
    int insecure, debug;
};

#define CFG_CLIENT_INIT \
    {.host = MOSQLITE_DEFAULT_HOST, .prefix = MOSQLITE_DEFAULT_PREFIX, .port = MOSQLITE_DEFAULT_PORT}

#define CFG_CLIENT_OPTIONS(s) \
    {"host", 'h', CFG_STR, &(s).host, 0, 0, 0, "HOST", "broker host"}, \
    {"port", 'p', CFG_INT, &(s).port, 1, 65535, 0, "PORT", "broker port"}, \
    {"prefix", 0, CFG_STR, &(s).prefix, 0, 0, 0, "PREFIX", "topic prefix"}, \
    {"username", 'u', CFG_STR, &(s).username, 0, 0, 0, "USER", "MQTT username"}, \
    {"password", 'P', CFG_STR, &(s).password, 0, 0, 0, "PASS", "MQTT password"}, \
    {"cafile", 0, CFG_STR, &(s).cafile, 0, 0, 0, "FILE", "CA certificates: connect with TLS"}, \
    {"cert", 0, CFG_STR, &(s).cert, 0, 0, 0, "FILE", "TLS client certificate (with --key)"}, \
    {"key", 0, CFG_STR, &(s).key, 0, 0, 0, "FILE", "TLS client private key"}, \
    {"insecure", 0, CFG_FLAG, &(s).insecure, 0, 0, 0, NULL, "TLS: do not check the server's host name"}

#define CFG_CLIENT_ID_OPTIONS(s, help) \
    {"client-id", 'i', CFG_STR, &(s).client_id, 0, 0, 0, "ID", help}, \
    {"id-prefix", 'I', CFG_STR, &(s).id_prefix, 0, 0, 0, "PREFIX", "MQTT client id: PREFIX then a new id"}

#define CFG_CLIENT_END_OPTIONS(s) \
    {"debug", 'd', CFG_FLAG, &(s).debug, 0, 0, 0, NULL, "print libmosquitto's debug lines (packets)"}, \
    {"config", 'c', CFG_STR, &(s).config, 0, 0, CFG_CMDLINE_ONLY, "FILE", "read `key value` options from FILE"}

/* What a command-line program's main does first. With cmd, everything after the first
 * `--` in argv is the command to run, cut off into *cmd (else NULL, and `--` is the
 * parser's). Then the user's defaults: the config file $XDG_CONFIG_HOME/NAME (or
 * ~/.config/NAME), then the environment (MOSQLITE_ and a key in capitals, dashes as
 * underscores, for every key taken both on the command line and in a file); then -c
 * FILE and the command line over them (cfg_parse_args). 0 to go on; 1 when --help or
 * --version was printed, -1 when an error was said on stderr: the options freed then. */
int cfg_start(const struct cfg_opt *opts, const char *name, int *argc, char **argv, char ***cmd,
              int *npos, const char *usage);

/* The client id: PREFIX then new_id with --id-prefix (and new_id), else --client-id,
 * else dflt_prefix then new_id (new_id and dflt_prefix set), else NULL. */
const char *cfg_client_id(const struct cfg_client *cl, const char *new_id, const char *dflt_prefix,
                          char *out, size_t n);

/* What the options cannot be together: the reason, or NULL. */
const char *cfg_client_check(const struct cfg_client *cl);

#endif
