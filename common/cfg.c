/* cfg.c: the shared option and config-file parser (see cfg.h).
 *
 * Strings set through this module are heap copies. To free them without knowing
 * which values are still the program's string-literal defaults, the module keeps
 * its own list of every pointer it allocated and frees exactly those. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <sqlite3.h>

#include "log.h"
#include "util.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

static void **owned;
static size_t nowned, capowned;

/* "FILE:LINE" of the config line being applied, "" for the command line: kept with
 * each item of a list, so that a later check of the item can name its line. */
static char cur_origin[512];

/* The origins of list items that came from a file. */
static struct origin {
    const struct cfg_list *l;     /* a list item's, or NULL for the last setting of key */
    size_t i;
    const char *key;
    char *at;
} *origins;
static size_t norigins;

static void *own(void *p)
{
    if (!p)
        return NULL;
    if (nowned == capowned) {
        size_t cap = capowned ? capowned * 2 : 32;
        void **n = realloc(owned, cap * sizeof *n);
        if (!n) {
            free(p);
            return NULL;
        }
        owned = n;
        capowned = cap;
    }
    owned[nowned++] = p;
    return p;
}

int cfg_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static const struct cfg_opt *find_long(const struct cfg_opt *opts, const char *name, size_t len)
{
    for (; opts->name; opts++)
        if (strlen(opts->name) == len && !strncmp(opts->name, name, len))
            return opts;
    return NULL;
}

static const struct cfg_opt *find_short(const struct cfg_opt *opts, char c)
{
    for (; opts->name; opts++)
        if (opts->short_name && opts->short_name == c)
            return opts;
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int note_origin(const struct cfg_list *l, size_t i, const char *key)
{
    struct origin *o = realloc(origins, (norigins + 1) * sizeof *o);
    char *at;

    if (!o)
        return -1;
    origins = o;
    if (!cur_origin[0])
        at = NULL;                    /* the command line */
    else if (!(at = own(strdup(cur_origin))))
        return -1;
    origins[norigins].l = l;
    origins[norigins].i = i;
    origins[norigins].key = key;
    origins[norigins++].at = at;
    return 0;
}

const char *cfg_list_origin(const struct cfg_list *l, size_t i)
{
    size_t k;

    for (k = 0; k < norigins; k++)
        if (origins[k].l == l && origins[k].i == i)
            return origins[k].at;
    return NULL;
}

const char *cfg_origin(const char *key)
{
    const char *at = NULL;
    size_t k;

    for (k = 0; k < norigins; k++)     /* the last setting (or line of a list) wins */
        if (origins[k].key && !strcmp(origins[k].key, key))
            at = origins[k].at;
    return at;
}

static int apply(const struct cfg_opt *o, const char *val, char *err, size_t errlen)
{
    switch (o->type) {
    case CFG_STR: {
        char *s = own(strdup(val));
        if (!s)
            return util_fail(err, errlen, "out of memory");
        *(char **)o->dst = s;
        return 0;
    }
    case CFG_INT: {
        long long v;
        if (cfg_parse_int(val, o->min, o->max, &v))
            return util_fail(err, errlen, "%s: \"%s\" is not a whole number from %lld to %lld",
                        o->name, val, o->min, o->max);
        *(long long *)o->dst = v;
        return 0;
    }
    case CFG_FLAG: {
        int b;
        if (parse_bool(val, &b))
            return util_fail(err, errlen, "%s: \"%s\" is not yes or no", o->name, val);
        *(int *)o->dst = b;
        return 0;
    }
    case CFG_LIST: {
        struct cfg_list *l = o->dst;
        char **items = realloc(l->items, (l->n + 1) * sizeof *items);
        char *s;
        if (!items)
            return util_fail(err, errlen, "out of memory");
        l->items = items;
        if (cur_origin[0] && note_origin(l, l->n, o->name))
            return util_fail(err, errlen, "out of memory");
        s = own(strdup(val));
        if (!s)
            return util_fail(err, errlen, "out of memory");
        l->items[l->n++] = s;
        return 0;
    }
    }
    return util_fail(err, errlen, "%s: bad option type", o->name);
}

int cfg_set(const struct cfg_opt *opts, const char *key, const char *val,
            int from_file, char *err, size_t errlen)
{
    const struct cfg_opt *o = find_long(opts, key, strlen(key));

    if (!o || (from_file && (o->flags & CFG_CMDLINE_ONLY)) ||
        (!from_file && (o->flags & CFG_FILE_ONLY)))
        return util_fail(err, errlen, "unknown key \"%s\"", key);
    if (apply(o, val, err, errlen))
        return -1;
    if (o->type != CFG_LIST && note_origin(NULL, 0, o->name))
        return util_fail(err, errlen, "out of memory");
    return 0;
}

int cfg_load_file(const struct cfg_opt *opts, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;

    if (!f)
        return util_fail(err, errlen, "%s: %s", path, strerror(errno));
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *k, *end, reason[256];
        const char *v;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           isspace((unsigned char)line[len - 1])))
            line[--len] = '\0';
        k = line;
        while (isspace((unsigned char)*k))
            k++;
        if (!*k || *k == '#')
            continue;
        end = k;
        while (*end && !isspace((unsigned char)*end))
            end++;
        v = end;
        while (isspace((unsigned char)*v))
            v++;
        *end = '\0';
        if (!*v) {
            const struct cfg_opt *o = find_long(opts, k, strlen(k));
            if (!o || o->type != CFG_FLAG) {
                rc = util_fail(err, errlen, "%s:%d: \"%s\" needs a value", path, lineno, k);
                break;
            }
            v = "yes";
        }
        snprintf(cur_origin, sizeof cur_origin, "%s:%d", path, lineno);
        rc = cfg_set(opts, k, v, 1, reason, sizeof reason);
        cur_origin[0] = '\0';
        if (rc) {
            rc = util_fail(err, errlen, "%s:%d: %s", path, lineno, reason);
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

void cfg_print_version(void)
{
    int major, minor, rev;

    mosquitto_lib_version(&major, &minor, &rev);
    printf("%s\nlibmosquitto %d.%d.%d, SQLite %s\n", MOSQLITE_VERSION, major, minor, rev,
           sqlite3_libversion());
}

/* " (default X)" from the value o's variable holds before any option is applied (its
 * initial value: --help is printed before), into buf; "" when there is none to show
 * (a flag, a list, an unset string, a number outside its range: "not set"). */
static const char *default_text(const struct cfg_opt *o, char *buf, size_t n)
{
    const char *s;
    long long v;

    buf[0] = 0;
    if (o->type == CFG_INT) {
        v = *(const long long *)o->dst;
        if (v >= o->min && v <= o->max)
            snprintf(buf, n, " (default %lld)", v);
    } else if (o->type == CFG_STR && (s = *(const char *const *)o->dst)) {
        snprintf(buf, n, *s ? " (default %s)" : " (default \"\")", s);
    }
    return buf;
}

void cfg_print_help(const struct cfg_opt *opts, const char *usage)
{
    const struct cfg_opt *o;
    char def[300];
    int file_only = 0;

    printf("%s\nOptions:\n", usage);
    for (o = opts; o->name; o++) {
        char lhs[64];
        if (o->flags & CFG_FILE_ONLY) {
            file_only |= o->help && *o->help;
            continue;
        }
        snprintf(lhs, sizeof lhs, "%s%c%s--%s%s%s",
                 o->short_name ? "-" : "  ", o->short_name ? o->short_name : ' ',
                 o->short_name ? ", " : "  ", o->name,
                 o->type == CFG_FLAG ? "" : " ", o->type == CFG_FLAG ? "" : o->arg);
        printf("  %-30s %s%s\n", lhs, o->help, default_text(o, def, sizeof def));
    }
    printf("      --help                     show this help\n"
           "      --version                  show the version\n");
    if (!file_only)
        return;
    printf("In a config file only (`key value` lines):\n");
    for (o = opts; o->name; o++)
        if ((o->flags & CFG_FILE_ONLY) && o->help && *o->help) {
            char lhs[64];
            snprintf(lhs, sizeof lhs, "      %s %s", o->name, o->arg ? o->arg : "");
            printf("  %-30s %s%s\n", lhs, o->help, default_text(o, def, sizeof def));
        }
}

/* One pass over argv. When `apply_opts` is 0 it only checks the syntax and finds the
 * config file; when 1 it applies every option except config. */
static int walk_args(const struct cfg_opt *opts, int argc, char **argv, int apply_opts,
                     const char **config, int *npos, const char *usage, char *err, size_t errlen)
{
    int i, pos = 0;
    char reason[256];

    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        const struct cfg_opt *o = NULL;
        const char *val = NULL, *name;
        char shortname[3] = "-?";

        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                argv[1 + pos++] = argv[i];
            break;
        }
        if (a[0] != '-' || !a[1]) {          /* positional, including "-" */
            argv[1 + pos++] = a;
            continue;
        }
        if (!strcmp(a, "--help")) {
            if (apply_opts)
                continue;
            cfg_print_help(opts, usage);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            if (apply_opts)
                continue;
            cfg_print_version();
            return 1;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            o = find_long(opts, a + 2, len);
            if (eq)
                val = eq + 1;
            name = a;
        } else {
            if (a[2])
                return util_fail(err, errlen, "unknown option \"%s\" (try --help)", a);
            o = find_short(opts, a[1]);
            shortname[1] = a[1];
            name = shortname;
        }
        if (!o || (o->flags & CFG_FILE_ONLY))
            return util_fail(err, errlen, "unknown option \"%s\" (try --help)", a);
        if (o->type == CFG_FLAG) {
            if (!val)
                val = "yes";
        } else if (!val) {
            if (i + 1 >= argc)
                return util_fail(err, errlen, "option %s needs a value", name);
            val = argv[++i];
        }
        if (!strcmp(o->name, "config")) {
            *config = val;
            continue;
        }
        if (apply_opts && apply(o, val, reason, sizeof reason))
            return util_fail(err, errlen, "%s", reason);
        if (apply_opts && o->type != CFG_LIST && note_origin(NULL, 0, o->name))
            return util_fail(err, errlen, "out of memory");
    }
    *npos = pos;
    return 0;
}

int cfg_parse_args(const struct cfg_opt *opts, int argc, char **argv, int *npos,
                   const char *usage, char *err, size_t errlen)
{
    const char *config = NULL;
    const struct cfg_opt *co = find_long(opts, "config", 6);
    char **copy;
    int rc, i;

    /* walk_args reorders argv, so the first pass runs on a copy. */
    copy = malloc((size_t)(argc + 1) * sizeof *copy);
    if (!copy)
        return util_fail(err, errlen, "out of memory");
    for (i = 0; i <= argc; i++)
        copy[i] = argv[i];
    rc = walk_args(opts, argc, copy, 0, &config, npos, usage, err, errlen);
    free(copy);
    if (rc)
        return rc;
    if (config) {
        if (co && co->type == CFG_STR && apply(co, config, err, errlen))
            return -1;
        if (cfg_load_file(opts, config, err, errlen))
            return -1;
    }
    return walk_args(opts, argc, argv, 1, &config, npos, usage, err, errlen);
}

void cfg_free(const struct cfg_opt *opts)
{
    size_t i;

    for (; opts && opts->name; opts++)
        if (opts->type == CFG_LIST) {
            struct cfg_list *l = opts->dst;
            free(l->items);
            l->items = NULL;
            l->n = 0;
        }
    free(origins);
    origins = NULL;
    norigins = 0;
    for (i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    owned = NULL;
    nowned = capowned = 0;
}

/* The user's config file, then the environment (see cfg_start). 0, or -1 with err. */
static int load_user(const struct cfg_opt *opts, const char *name, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME"), *v;
    const struct cfg_opt *o;
    char path[4096] = "", env[64], reason[256];
    size_t i;

    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/%s", xdg, name);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.config/%s", home, name);
    if (*path && access(path, F_OK) == 0 && cfg_load_file(opts, path, err, errlen))
        return -1;
    for (o = opts; o->name; o++) {
        if (o->flags & (CFG_CMDLINE_ONLY | CFG_FILE_ONLY))
            continue;
        snprintf(env, sizeof env, "MOSQLITE_%s", o->name);
        for (i = 9; env[i]; i++)
            env[i] = env[i] == '-' ? '_' : (char)toupper((unsigned char)env[i]);
        if ((v = getenv(env)) && cfg_set(opts, o->name, v, 1, reason, sizeof reason)) {
            snprintf(err, errlen, "environment %s: %s", env, reason);
            return -1;
        }
    }
    return 0;
}

int cfg_start(const struct cfg_opt *opts, const char *name, int *argc, char **argv, char ***cmd,
              int *npos, const char *usage)
{
    char err[512];
    int i, rc;

    if (cmd)
        *cmd = NULL;
    for (i = 1; cmd && i < *argc; i++)
        if (!strcmp(argv[i], "--")) {
            *cmd = argv + i + 1;
            argv[i] = NULL;
            *argc = i;
            break;
        }
    rc = load_user(opts, name, err, sizeof err);
    if (rc == 0)
        rc = cfg_parse_args(opts, *argc, argv, npos, usage, err, sizeof err);
    if (rc < 0)
        log_error("%s", err);
    if (rc)
        cfg_free(opts);
    return rc;
}

const char *cfg_client_id(const struct cfg_client *cl, const char *new_id, const char *dflt_prefix,
                          char *out, size_t n)
{
    if (cl->id_prefix && new_id)
        snprintf(out, n, "%s%s", cl->id_prefix, new_id);
    else if (cl->client_id)
        snprintf(out, n, "%s", cl->client_id);
    else if (dflt_prefix && new_id)
        snprintf(out, n, "%s%s", dflt_prefix, new_id);
    else
        return NULL;
    return out;
}

const char *cfg_client_check(const struct cfg_client *cl)
{
    if ((cl->cert != NULL) != (cl->key != NULL))
        return "--cert and --key go together";
    if (cl->client_id && cl->id_prefix)
        return "-i/--client-id and -I/--id-prefix do not go together";
    return NULL;
}
