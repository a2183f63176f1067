/* backup.c: an online backup of the database, in steps (see backup.h). */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define BACKUP_DIR_MODE 0750

struct backup {
    struct backup_opts o;
    sqlite3 *dest;
    sqlite3_backup *bk;
    char *name, *final, *partial;
    long long t0, ms;             /* started; took, once done */
    double longest_ms;
    int steps;
    int pages;
    int done;                     /* renamed into place: nothing to remove */
    int syncing;                  /* copied: a thread syncs and renames it (backup_sync) */
    pthread_t th;
    atomic_int synced;
    int sync_errno;               /* 0, or why the sync or rename failed */
};

int backup_name_is_live(const char *base, const char *name)
{
    /* beside BASE: exact names, and prefixes whose rest the writer, SQLite or a
     * replica picks at run time (a pid, SQLite's random super-journal suffix) */
    static const char *const exact[] = {"", "-wal", "-shm", "-journal", "-writer.lock", "-writer.session",
                                        ".incoming", NULL};
    static const char *const prefix[] = {"-mj", ".snapshot-", NULL};
    size_t n = strlen(base);
    int i;

    if (strncmp(name, base, n))
        return 0;
    name += n;
    for (i = 0; exact[i]; i++)
        if (!strcmp(name, exact[i]))
            return 1;
    for (i = 0; prefix[i]; i++)
        if (!strncmp(name, prefix[i], strlen(prefix[i])))
            return 1;
    return 0;
}

/* Would dir/name be, or become, one of the database's own files? */
static int is_live_file(const struct backup_opts *o, const char *name)
{
    const char *slash = strrchr(o->db_path, '/');
    char *dbdir = slash ? strndup(o->db_path, (size_t)(slash - o->db_path)) : strdup(".");
    struct stat a, b;
    int same;

    if (!dbdir)
        return 1;
    same = !stat(*dbdir ? dbdir : "/", &a) && !stat(o->dir, &b) && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
    free(dbdir);
    return same && backup_name_is_live(slash ? slash + 1 : o->db_path, name);
}

static struct backup *backup_alloc(const struct backup_opts *o, const char *name)
{
    struct backup *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->o = *o;
    atomic_init(&b->synced, 0);
    if (!(b->name = strdup(name)) ||
        !(b->final = malloc(strlen(o->dir) + strlen(name) + 2)) ||
        !(b->partial = malloc(strlen(o->dir) + strlen(name) + 12))) {
        backup_free(b);
        return NULL;
    }
    sprintf(b->final, "%s/%s", o->dir, name);
    sprintf(b->partial, "%s/.%s.partial", o->dir, name);
    return b;
}

struct backup *backup_start(const struct backup_opts *o, const char *name, char *err, size_t errlen)
{
    struct backup *b;

    if (mkdir(o->dir, BACKUP_DIR_MODE) && errno != EEXIST) {
        util_fail(err, errlen, "%s: %s", o->dir, strerror(errno));
        return NULL;
    }
    if (is_live_file(o, name)) {
        util_fail(err, errlen, "\"%s\" is, or could become, one of the database's own files: "
                  "choose another name or backup-dir", name);
        return NULL;
    }
    if (!(b = backup_alloc(o, name))) {
        util_fail(err, errlen, "out of memory");
        return NULL;
    }
    unlink(b->partial);
    if (sqlite3_open_v2(b->partial, &b->dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        !(b->bk = sqlite3_backup_init(b->dest, "main", o->h, "main"))) {
        util_fail(err, errlen, "%s: %s", b->partial, b->dest ? sqlite3_errmsg(b->dest) : "cannot open");
        backup_free(b);
        return NULL;
    }
    /* No journal and no fsync per step: the partial file is nobody's until renamed,
     * and it is synced once, whole, before that (backup_sync). */
    sqlite3_exec(b->dest, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", NULL, NULL, NULL);
    b->t0 = util_now_ms();
    log_info("backup to %s started", b->final);
    return b;
}

/* In a thread, since syncing a large copy can take seconds: the complete copy on disk,
 * then its name in the directory. */
static void *backup_sync(void *arg)
{
    struct backup *b = arg;
    int fd, rc = -1;

    errno = 0;
    if ((fd = open(b->partial, O_RDONLY)) >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    if (rc || rename(b->partial, b->final)) {
        b->sync_errno = errno ? errno : EIO;
    } else if ((fd = open(b->o.dir, O_RDONLY)) >= 0) {
        fsync(fd);
        close(fd);
    }
    atomic_store(&b->synced, 1);
    return NULL;
}

/* Copied: close the copy and start the sync. BACKUP_MORE, or BACKUP_FAILED. */
static enum backup_state copied(struct backup *b, int rc, char *err, size_t errlen)
{
    b->pages = sqlite3_backup_pagecount(b->bk);
    sqlite3_backup_finish(b->bk);
    b->bk = NULL;
    if (rc == SQLITE_DONE && sqlite3_close(b->dest) == SQLITE_OK) {
        b->dest = NULL;
        if (!pthread_create(&b->th, NULL, backup_sync, b)) {
            b->syncing = 1;
            return BACKUP_MORE;
        }
        util_fail(err, errlen, "cannot start a thread to sync %s", b->partial);
    } else {
        util_fail(err, errlen, "%s: %s", b->partial,
                  b->dest && sqlite3_errcode(b->dest) ? sqlite3_errmsg(b->dest) : sqlite3_errstr(rc));
    }
    return BACKUP_FAILED;
}

enum backup_state backup_step(struct backup *b, char *err, size_t errlen)
{
    double t, dt;
    int rc;

    if (b->syncing) {
        if (!atomic_load(&b->synced))
            return BACKUP_MORE;
        if (b->sync_errno) {
            util_fail(err, errlen, "syncing and renaming %s: %s", b->partial, strerror(b->sync_errno));
            return BACKUP_FAILED;
        }
        b->done = 1;
        b->ms = util_now_ms() - b->t0;
        log_info("backup to %s done: %d pages in %lld ms, %d steps, longest %.1f ms",
                 b->final, b->pages, b->ms, b->steps, b->longest_ms);
        return BACKUP_DONE;
    }
    t = util_now_exact_ms();
    rc = sqlite3_backup_step(b->bk, (int)b->o.step_pages);
    dt = util_now_exact_ms() - t;
    b->steps++;
    if (dt > b->longest_ms)
        b->longest_ms = dt;
    if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return BACKUP_MORE;
    return copied(b, rc, err, errlen);
}

int backup_ready(const struct backup *b)
{
    return !b->syncing || atomic_load(&b->synced);
}

void backup_result(const struct backup *b, struct jbuf *out)
{
    struct stat st;

    jb_puts(out, ",\"name\":");
    jb_cstr(out, b->name);
    jb_puts(out, ",\"path\":");
    jb_cstr(out, b->final);
    jb_puts(out, ",\"bytes\":");
    jb_int(out, stat(b->final, &st) ? -1 : (long long)st.st_size);
    jb_puts(out, ",\"pages\":");
    jb_int(out, b->pages);
    jb_puts(out, ",\"ms\":");
    jb_int(out, b->ms);
    jb_puts(out, ",\"steps\":");
    jb_int(out, b->steps);
    jb_puts(out, ",\"longest_step_ms\":");
    jb_double(out, (double)(long long)(b->longest_ms * 1000.0) / 1000.0);
}

const char *backup_name(const struct backup *b)
{
    return b->name;
}

const char *backup_path(const struct backup *b)
{
    return b->final;
}

void backup_free(struct backup *b)
{
    if (!b)
        return;
    if (b->syncing)
        pthread_join(b->th, NULL);
    if (b->bk)
        sqlite3_backup_finish(b->bk);
    if (b->dest)
        sqlite3_close(b->dest);
    if (!b->done && b->partial)
        unlink(b->partial);
    free(b->name);
    free(b->final);
    free(b->partial);
    free(b);
}
