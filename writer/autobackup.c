/* autobackup.c: scheduled backups with rotation (see autobackup.h). */
#include "autobackup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "log.h"
#include "util.h"

#define SYNC_POLL_MS 50           /* the loop's longest sleep while the copy is synced */
#define STAMP_LEN    16           /* YYYYMMDDTHHMMSSZ */

struct autobackup {
    struct autobackup_opts o;
    char base[AUTOBACKUP_NAME_MAX - 32];
    long long due_ms;             /* wall clock */
    struct backup *bk;            /* the one being made, or NULL */
};

/* The database's file name without its directory and a final ".db". */
static void base_of(const char *db_path, char *out, size_t n)
{
    const char *slash = strrchr(db_path, '/');
    size_t len;

    snprintf(out, n, "%s", slash ? slash + 1 : db_path);
    len = strlen(out);
    if (len > 3 && !strcmp(out + len - 3, ".db"))
        out[len - 3] = '\0';
}

void autobackup_name(const char *base, long long wall_ms, char *out)
{
    char t[UTIL_TIME_LEN];

    util_time_format(wall_ms, t);     /* 2026-12-06T01:00:00.000Z */
    snprintf(out, AUTOBACKUP_NAME_MAX, "%.400s-%.4s%.2s%.2sT%.2s%.2s%.2sZ.db", base, t, t + 5, t + 8,
             t + 11, t + 14, t + 17);
}

int autobackup_parse_name(const char *base, const char *name, long long *wall_ms)
{
    size_t n = strlen(base);
    const char *s;
    char t[32], again[AUTOBACKUP_NAME_MAX];
    int i;

    if (strncmp(name, base, n) || name[n] != '-')
        return 0;
    s = name + n + 1;
    for (i = 0; i < STAMP_LEN; i++)
        if (i == 8 ? s[i] != 'T' : i == 15 ? s[i] != 'Z' : (s[i] < '0' || s[i] > '9'))
            return 0;
    if (strcmp(s + STAMP_LEN, ".db"))
        return 0;
    snprintf(t, sizeof t, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", s, s + 4, s + 6, s + 9, s + 11, s + 13);
    if (util_time_parse(t, wall_ms))
        return 0;
    /* Only the form it writes: not a leap second's :60, say. */
    autobackup_name(base, *wall_ms, again);
    return !strcmp(again, name);
}

/* The time of the newest scheduled backup in the directory, or 0. */
static long long newest(const struct autobackup *a)
{
    DIR *d = opendir(a->o.dir);
    struct dirent *e;
    long long best = 0, t;

    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (autobackup_parse_name(a->base, e->d_name, &t) && t > best)
            best = t;
    closedir(d);
    return best;
}

static void rotate(struct autobackup *a);

struct autobackup *autobackup_new(const struct autobackup_opts *o)
{
    struct autobackup *a = calloc(1, sizeof *a);
    long long last, now = util_wall_ms();
    char when[UTIL_TIME_LEN];

    if (!a)
        return NULL;
    a->o = *o;
    base_of(o->db_path, a->base, sizeof a->base);
    last = newest(a);
    a->due_ms = last ? last + o->every_ms : now;
    if (a->due_ms > now + o->every_ms)      /* a name from the future: the clock went back */
        a->due_ms = now + o->every_ms;
    util_time_format(a->due_ms, when);
    log_info("scheduled backups: every %lld s into %s, the newest %lld kept; the next at %s",
             o->every_ms / 1000, o->dir, o->keep, when);
    return a;
}

void autobackup_free(struct autobackup *a)
{
    if (!a)
        return;
    if (a->bk) {
        log_warn("stopping: scheduled backup to %s abandoned", backup_path(a->bk));
        backup_free(a->bk);
        rotate(a);          /* it may have been renamed into place just now */
    }
    free(a);
}

static int newer_first(const void *x, const void *y)
{
    return strcmp(*(char *const *)y, *(char *const *)x);
}

/* Keep the newest `keep` scheduled backups, delete the older ones of that form. */
static void rotate(struct autobackup *a)
{
    DIR *d = opendir(a->o.dir);
    struct dirent *e;
    char **names = NULL, **nn, path[4096];
    size_t n = 0, i;
    long long t;

    if (!d) {
        log_warn("scheduled backups: reading %s: %s", a->o.dir, strerror(errno));
        return;
    }
    while ((e = readdir(d))) {
        if (!autobackup_parse_name(a->base, e->d_name, &t))
            continue;
        if (!(nn = realloc(names, (n + 1) * sizeof *nn)) || !(nn[n] = strdup(e->d_name))) {
            names = nn ? nn : names;
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    /* The same form and length: by name is by time. */
    qsort(names, n, sizeof *names, newer_first);
    for (i = 0; i < n; i++) {
        if (i >= (size_t)a->o.keep) {
            snprintf(path, sizeof path, "%s/%s", a->o.dir, names[i]);
            if (unlink(path))
                log_warn("scheduled backups: removing %s: %s", path, strerror(errno));
            else
                log_info("scheduled backups: removed %s (backup-keep %lld)", path, a->o.keep);
        }
        free(names[i]);
    }
    free(names);
}

void autobackup_tick(struct autobackup *a, int other_busy)
{
    struct backup_opts bo;
    char name[AUTOBACKUP_NAME_MAX], err[1024];
    long long now;

    if (!a)
        return;
    if (!a->bk) {
        now = util_wall_ms();
        if (now < a->due_ms || other_busy)
            return;
        a->due_ms = now + a->o.every_ms;
        autobackup_name(a->base, now, name);
        bo.h = a->o.h;
        bo.db_path = a->o.db_path;
        bo.dir = a->o.dir;
        bo.step_pages = a->o.step_pages;
        if (!(a->bk = backup_start(&bo, name, err, sizeof err)))
            log_error("scheduled backup %s: %s; the next in %lld s", name, err, a->o.every_ms / 1000);
        return;
    }
    switch (backup_step(a->bk, err, sizeof err)) {
    case BACKUP_MORE:
        return;
    case BACKUP_DONE:
        backup_free(a->bk);
        a->bk = NULL;
        rotate(a);
        return;
    case BACKUP_FAILED:
        log_error("scheduled backup to %s: %s; the next in %lld s", backup_path(a->bk), err,
                  a->o.every_ms / 1000);
        backup_free(a->bk);
        a->bk = NULL;
        return;
    }
}

int autobackup_wait_ms(const struct autobackup *a, int max_ms)
{
    long long w;

    if (!a)
        return max_ms;
    if (a->bk)
        return backup_ready(a->bk) ? 0 : max_ms < SYNC_POLL_MS ? max_ms : SYNC_POLL_MS;
    w = a->due_ms - util_wall_ms();
    return w <= 0 ? 0 : w < max_ms ? (int)w : max_ms;
}
