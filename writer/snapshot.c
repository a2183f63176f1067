/* snapshot.c: copies of the database for bootstrapping replicas (see snapshot.h).
 *
 * The work is cut into steps so that the writer's loop keeps applying requests while a
 * snapshot is made and sent: SNAP_PAGES pages of backup per step, then up to
 * SNAP_BURST chunks per step, and none while the control connection still has bytes
 * to write (so a large file never piles up in the writer's memory). The copy comes from a read transaction on a connection of its own:
 * in WAL mode it sees the database as it was when the transaction began, whatever the
 * writer commits meanwhile, and the sequence number read in the same transaction is
 * the one the copy reflects. The writer is never blocked by it; its WAL only cannot be
 * checkpointed past that point until the copy is done. */
#include "snapshot.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SNAP_PAGES   512     /* pages copied per step */
#define SNAP_BURST   8       /* chunks published per step */
#define SNAP_WAITING 16      /* requests waiting their turn */

struct snapshot {
    char *path, *tmp;
    struct mq *mq;
    char *waiting[SNAP_WAITING];   /* reply_to of each request, in order */
    int nwaiting;
    /* the one in hand */
    char *reply_to;
    sqlite3 *src, *dst;
    sqlite3_backup *bk;
    FILE *f;
    long long seq, schema, epoch, size, chunk, chunks;
    char dbid[40];
    double t0;
};

struct snapshot *snapshot_new(const char *path, struct mq *mq)
{
    struct snapshot *s = calloc(1, sizeof *s);
    char suffix[64];

    if (!s)
        return NULL;
    snprintf(suffix, sizeof suffix, ".snapshot-%ld", (long)getpid());
    s->path = strdup(path);
    s->tmp = util_join(path, suffix);
    s->mq = mq;
    if (!s->path || !s->tmp) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

/* Drop the one in hand, whatever step it reached. */
static void finish(struct snapshot *s)
{
    if (s->bk)
        sqlite3_backup_finish(s->bk);
    sqlite3_close(s->dst);
    sqlite3_close(s->src);     /* ends the read transaction */
    if (s->f)
        fclose(s->f);
    if (s->reply_to)
        unlink(s->tmp);
    free(s->reply_to);
    s->bk = NULL;
    s->dst = s->src = NULL;
    s->f = NULL;
    s->reply_to = NULL;
}

void snapshot_free(struct snapshot *s)
{
    int i;

    if (!s)
        return;
    finish(s);
    for (i = 0; i < s->nwaiting; i++)
        free(s->waiting[i]);
    free(s->path);
    free(s->tmp);
    free(s);
}

int snapshot_request(struct snapshot *s, const cJSON *root, const char *to, char *err, size_t errlen)
{
    const cJSON *f;

    for (f = root->child; f; f = f->next)
        if (strcmp(f->string, "reply_to"))
            return util_fail(err, errlen, "unknown field \"%.100s\" (a snapshot request has only "
                             "\"reply_to\")", f->string);
    if (s->nwaiting == SNAP_WAITING)
        return util_fail(err, errlen, "%d snapshot requests are waiting already: ask again later",
                         SNAP_WAITING);
    if (!(s->waiting[s->nwaiting] = strdup(to)))
        return util_fail(err, errlen, "out of memory");
    s->nwaiting++;
    return 0;
}

/* Begin the next: the read transaction, its sequence number, the backup. */
static int start(struct snapshot *s)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    s->reply_to = s->waiting[0];
    memmove(s->waiting, s->waiting + 1, (size_t)--s->nwaiting * sizeof *s->waiting);
    s->t0 = util_now_exact_ms();
    unlink(s->tmp);
    if (sqlite3_open_v2(s->path, &s->src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_exec(s->src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->src, "SELECT seq, db, (SELECT user_version FROM pragma_user_version),"
                           " epoch FROM mosqlite_seq WHERE id = 1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        log_error("snapshot: reading %s: %s", s->path, s->src ? sqlite3_errmsg(s->src) : "cannot open");
        goto cleanup;
    }
    s->seq = sqlite3_column_int64(st, 0);
    snprintf(s->dbid, sizeof s->dbid, "%s", (const char *)sqlite3_column_text(st, 1));
    s->schema = sqlite3_column_int64(st, 2);
    s->epoch = sqlite3_column_int64(st, 3);
    if (sqlite3_open_v2(s->tmp, &s->dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        !(s->bk = sqlite3_backup_init(s->dst, "main", s->src, "main"))) {
        log_error("snapshot: %s: %s", s->tmp, sqlite3_errmsg(s->dst));
        goto cleanup;
    }
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    return rc;
}

/* The copy is whole: open it for sending. */
static int copied(struct snapshot *s)
{
    sqlite3_backup_finish(s->bk);
    s->bk = NULL;
    if (sqlite3_close(s->dst) != SQLITE_OK) {
        log_error("snapshot: closing %s: %s", s->tmp, sqlite3_errmsg(s->dst));
        return -1;
    }
    s->dst = NULL;
    sqlite3_close(s->src);
    s->src = NULL;
    if (!(s->f = fopen(s->tmp, "rb")) || fseek(s->f, 0, SEEK_END) || (s->size = ftell(s->f)) < 0 ||
        fseek(s->f, 0, SEEK_SET)) {
        log_error("snapshot: reading %s: %s", s->tmp, strerror(errno));
        return -1;
    }
    s->chunk = 0;
    s->chunks = s->size ? (s->size + SNAP_CHUNK - 1) / SNAP_CHUNK : 1;
    return 0;
}

/* Publish up to SNAP_BURST chunks. 1 when all are out. */
static int send_chunks(struct snapshot *s)
{
    static char buf[SNAP_CHUNK + 256];
    int k;

    for (k = 0; k < SNAP_BURST && s->chunk < s->chunks && !mq_ctl_backlog(s->mq); k++, s->chunk++) {
        int h = snprintf(buf, 256, "{\"seq\":%lld,\"db\":\"%s\",\"schema\":%lld,\"epoch\":%lld,"
                         "\"chunk\":%lld,\"chunks\":%lld,\"offset\":%lld,\"size\":%lld}\n", s->seq,
                         s->dbid, s->schema, s->epoch, s->chunk, s->chunks, s->chunk * SNAP_CHUNK, s->size);
        size_t n = fread(buf + h, 1, SNAP_CHUNK, s->f);
        if (ferror(s->f)) {
            log_error("snapshot: reading %s: %s", s->tmp, strerror(errno));
            return -1;
        }
        mq_publish(s->mq, s->reply_to, buf, (size_t)h + n, 1, 0, NULL, 0);
    }
    if (s->chunk < s->chunks)
        return 0;
    log_info("snapshot at sequence %lld (%lld bytes, %lld chunks) sent to %s in %.0f ms", s->seq,
             s->size, s->chunks, s->reply_to, util_now_exact_ms() - s->t0);
    return 1;
}

int snapshot_step(struct snapshot *s)
{
    int rc;

    if (!s->reply_to) {
        if (!s->nwaiting)
            return 0;
        if (start(s)) {
            finish(s);
            return s->nwaiting > 0;
        }
        return 1;
    }
    if (s->bk) {
        rc = sqlite3_backup_step(s->bk, SNAP_PAGES);
        if (rc == SQLITE_DONE) {
            if (copied(s))
                finish(s);
        } else if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            log_error("snapshot: copying: %s", sqlite3_errstr(rc));
            finish(s);
        }
        return 1;
    }
    if (send_chunks(s))
        finish(s);
    return 1;
}
