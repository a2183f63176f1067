/* follow.c: the replica's state machine (see follow.h).
 *
 * Messages are parsed here and nowhere else: a header of one JSON line, then the
 * bytes (a changeset, or a piece of a snapshot file). Changes wait in arrival order,
 * which for one publisher is sequence order; changes that cannot be applied yet
 * (while a snapshot comes in) stay queued in memory.
 *
 * Lag: each change carries the wall-clock time of the writer's commit ("at"); the lag
 * of a change is the time from then to the replica's own COMMIT of it. The status shows
 * the last one and the median and 99th percentile of the last LAG_KEEP. */
#include "follow.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define APPLY_MAX   1000       /* changesets in one transaction of the replica */
#define ASK_AGAIN_MS 30000     /* a snapshot asked for and not coming: ask again */
#define RETRY_MS    1000       /* after a fault of the file */
#define LAG_KEEP    10000

enum { BOOTSTRAPPING, FOLLOWING, CONFLICT };
static const char *const state_names[] = {"bootstrapping", "following", "conflict"};

struct change {
    struct change *next;
    long long seq, prev, schema, at;
    long long epoch, prev_epoch;   /* 0: a writer from before epochs */
    char db[40];
    size_t n;
    unsigned char data[];      /* the changeset */
};

struct follow {
    struct store *store;
    char *tmp;
    int state;
    struct change *head, **tail;
    size_t npending;
    long long writer_seq;      /* the highest sequence number heard of, in the newest epoch */
    long long status_seq;      /* the writer's last commit, from its retained status (-1: none) */
    long long max_epoch;       /* the newest epoch seen: file, changes, status, snapshots */
    long long stale, stale_epoch;  /* changes refused for an older epoch, and the last one's */
    long long last_arrival_ms;
    long long applied, bootstraps;
    char error[768];
    int dirty;
    long long retry_at;
    /* the snapshot coming in */
    long long asked_at, progress_at;
    long long snap_seq, snap_chunks, snap_got, snap_size;
    char snap_db[40];
    unsigned char *snap_have;
    int snap_fd;
    /* lags, ms */
    double lag[LAG_KEEP];
    long long nlag;
    double last_lag;
    char id[128];              /* this replica's id (follow_set_id) */
    int sync;                  /* in the writer's replicas_in_sync: 1, 0; -1: it has none */
};

/* The JSON header line of a message: parsed, and where the bytes begin. */
static cJSON *header(const void *payload, size_t len, const unsigned char **body, size_t *n)
{
    const unsigned char *p = payload, *nl = memchr(p, '\n', len);

    if (!nl)
        return NULL;
    *body = nl + 1;
    *n = len - (size_t)(nl + 1 - p);
    return cJSON_ParseWithLength((const char *)p, (size_t)(nl - p));
}

static long long num(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

static void str(const cJSON *j, const char *key, char *out, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    snprintf(out, len, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void set_state(struct follow *f, int state, const char *why)
{
    if (f->state != state)
        log_info("%s%s%s", state_names[state], why ? ": " : "", why ? why : "");
    f->state = state;
    f->dirty = 1;
}

struct follow *follow_new(struct store *store, const char *tmp_path, int bootstrap)
{
    struct follow *f = calloc(1, sizeof *f);

    if (!f || !(f->tmp = strdup(tmp_path))) {
        free(f);
        return NULL;
    }
    f->store = store;
    f->tail = &f->head;
    f->snap_fd = -1;
    f->last_arrival_ms = util_now_ms();
    f->state = store_pos(store)->known && !bootstrap ? FOLLOWING : BOOTSTRAPPING;
    f->writer_seq = store_pos(store)->seq;
    f->status_seq = -1;
    f->sync = -1;
    f->max_epoch = store_pos(store)->epoch > store_pos(store)->gen ? store_pos(store)->epoch
                                                                   : store_pos(store)->gen;
    f->dirty = 1;
    return f;
}

static void snap_reset(struct follow *f)
{
    if (f->snap_fd >= 0) {
        close(f->snap_fd);
        unlink(f->tmp);
    }
    f->snap_fd = -1;
    free(f->snap_have);
    f->snap_have = NULL;
    f->snap_seq = -1;
    f->snap_got = 0;
}

void follow_free(struct follow *f)
{
    if (!f)
        return;
    snap_reset(f);
    while (f->head) {
        struct change *c = f->head;
        f->head = c->next;
        free(c);
    }
    free(f->tmp);
    free(f);
}

void follow_change(struct follow *f, const void *payload, size_t len)
{
    const unsigned char *body;
    size_t n;
    cJSON *j = header(payload, len, &body, &n);
    struct change *c;

    if (!j || num(j, "seq") < 1 || !(c = malloc(sizeof *c + n))) {
        log_warn("a message on the changes topic without a valid header ignored");
        cJSON_Delete(j);
        return;
    }
    c->next = NULL;
    c->seq = num(j, "seq");
    c->prev = num(j, "prev");
    c->schema = num(j, "schema");
    c->at = num(j, "at");
    c->epoch = num(j, "epoch") > 0 ? num(j, "epoch") : 0;
    c->prev_epoch = num(j, "prev_epoch") > 0 ? num(j, "prev_epoch") : c->epoch;
    str(j, "db", c->db, sizeof c->db);
    c->n = n;
    memcpy(c->data, body, n);
    cJSON_Delete(j);
    *f->tail = c;
    f->tail = &c->next;
    f->npending++;
    if (c->epoch > f->max_epoch) {
        f->max_epoch = c->epoch;
        f->writer_seq = c->seq;         /* a new lineage: its own numbers */
    } else if (c->epoch == f->max_epoch && c->seq > f->writer_seq) {
        f->writer_seq = c->seq;
    }
    f->last_arrival_ms = util_now_ms();
}

/* All chunks are in: install the file. */
static void snap_install(struct follow *f)
{
    char err[512];
    const struct store_pos *p;

    if (fsync(f->snap_fd) || lseek(f->snap_fd, 0, SEEK_END) != f->snap_size) {
        log_error("snapshot %lld: the file is not whole; asking again", f->snap_seq);
        snap_reset(f);
        f->asked_at = 0;
        return;
    }
    close(f->snap_fd);
    f->snap_fd = -1;
    if (store_install(f->store, f->tmp, err, sizeof err)) {
        log_error("%s", err);
        snap_reset(f);
        f->asked_at = 0;
        return;
    }
    p = store_pos(f->store);
    f->bootstraps++;
    if (p->seq > f->writer_seq)
        f->writer_seq = p->seq;
    if (p->gen > f->max_epoch)
        f->max_epoch = p->gen;
    snap_reset(f);
    f->error[0] = '\0';
    log_info("snapshot installed: database %s at sequence %lld (%lld bytes)", p->db, p->seq, f->snap_size);
    set_state(f, FOLLOWING, NULL);
}

void follow_chunk(struct follow *f, const void *payload, size_t len)
{
    const unsigned char *body = NULL;
    size_t n = 0;
    cJSON *j = header(payload, len, &body, &n);
    long long seq = num(j, "seq"), chunk = num(j, "chunk"), chunks = num(j, "chunks");
    long long off = num(j, "offset"), size = num(j, "size"), epoch = num(j, "epoch");
    char db[40];

    str(j, "db", db, sizeof db);
    cJSON_Delete(j);
    if (f->state != BOOTSTRAPPING)
        return;                   /* a late copy of one already installed */
    if (epoch > 0 && epoch < f->max_epoch) {
        if (!chunk)
            log_warn("a snapshot from a writer of epoch %lld ignored: epoch %lld is the newest seen",
                     epoch, f->max_epoch);
        return;
    }
    if (!body || seq < 0 || chunks < 1 || chunk < 0 || chunk >= chunks || off < 0 || size < 0) {
        log_warn("a snapshot chunk without a valid header ignored");
        return;
    }
    if (f->snap_fd < 0 || seq != f->snap_seq || strcmp(db, f->snap_db) || chunks != f->snap_chunks) {
        snap_reset(f);
        if ((f->snap_fd = open(f->tmp, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0 ||
            !(f->snap_have = calloc((size_t)chunks, 1))) {
            log_error("%s: %s", f->tmp, strerror(errno));
            snap_reset(f);
            return;
        }
        f->snap_seq = seq;
        f->snap_chunks = chunks;
        f->snap_size = size;
        snprintf(f->snap_db, sizeof f->snap_db, "%s", db);
        log_info("receiving a snapshot at sequence %lld: %lld bytes in %lld chunks", seq, size, chunks);
    }
    f->progress_at = util_now_ms();
    if (f->snap_have[chunk])
        return;
    if (pwrite(f->snap_fd, body, n, (off_t)off) != (ssize_t)n) {
        log_error("%s: %s", f->tmp, strerror(errno));
        snap_reset(f);
        return;
    }
    f->snap_have[chunk] = 1;
    if (++f->snap_got == f->snap_chunks)
        snap_install(f);
}

static void drop_head(struct follow *f)
{
    struct change *c = f->head;

    f->head = c->next;
    if (!f->head)
        f->tail = &f->head;
    f->npending--;
    free(c);
}

/* A change from a writer of an older epoch: a copy of a commit from before the
 * promotion, or a writer that was replaced and still runs. Never applied, never taken
 * for a copy of this lineage's commit: counted and told. */
static void refuse_stale(struct follow *f, const struct change *c, const struct store_pos *p)
{
    f->stale++;
    f->stale_epoch = c->epoch;
    snprintf(f->error, sizeof f->error, "refused change %lld of epoch %lld: this file is at "
             "epoch %lld (sequence %lld); a writer of an older epoch published it", c->seq,
             c->epoch, p->epoch, p->seq);
    log_error("%s", f->error);
    f->dirty = 1;
}

/* Why change c cannot follow the position p: its writer went on from a commit this
 * file does not hold, or a gap. */
static void gap_reason(const struct change *c, const struct store_pos *p, char *err, size_t errlen)
{
    if (c->epoch > p->epoch && c->seq <= p->seq)
        snprintf(err, errlen, "the writer of epoch %lld went on from sequence %lld of epoch "
                 "%lld; this file holds commits up to %lld of epoch %lld that it does not have",
                 c->epoch, c->prev, c->prev_epoch, p->seq, p->epoch);
    else if (c->prev_epoch == p->epoch)
        snprintf(err, errlen, "gap: this file is at %lld, the next change is %lld (after %lld)",
                 p->seq, c->seq, c->prev);
    else
        snprintf(err, errlen, "gap: this file is at %lld of epoch %lld, the next change is %lld "
                 "(after %lld of epoch %lld)", p->seq, p->epoch, c->seq, c->prev, c->prev_epoch);
}

/* The lag of each change applied, from its commit time at the writer. */
static void note_lag(struct follow *f, const long long *at, int k)
{
    for (int i = 0; i < k; i++) {
        double lag;
        if (at[i] <= 0)
            continue;                    /* a change without its commit time: no lag to tell */
        lag = (double)(util_wall_ms() - at[i]);
        f->lag[f->nlag++ % LAG_KEEP] = lag;
        f->last_lag = lag;
    }
}

/* What a run ending with rc means for the state: 1 a gap or another database
 * (bootstrap), -2 a conflict (stop applying), -1 a fault of the file (retry); k changes
 * applied clear an old error. */
static void run_ended(struct follow *f, int rc, int k, const char *err)
{
    if (rc == 1) {
        log_warn("%s: bootstrapping again", err);
        snprintf(f->error, sizeof f->error, "%s", err);
        f->asked_at = 0;
        set_state(f, BOOTSTRAPPING, "asking for a snapshot");
    } else if (rc == -2) {
        log_error("refusing it: %s; run with --bootstrap to start again from a snapshot", err);
        snprintf(f->error, sizeof f->error, "%s", err);
        set_state(f, CONFLICT, "applying nothing more");
    } else if (rc == -1) {
        log_error("%s; retrying", err);
        snprintf(f->error, sizeof f->error, "%s", err);
        f->retry_at = util_now_ms() + RETRY_MS;
        f->dirty = 1;
    } else if (k && f->error[0] && f->state == FOLLOWING && strncmp(f->error, "refused change", 14)) {
        f->error[0] = '\0';
    }
}

/* Apply the run of changes that follow the position, in one transaction. The queue
 * loses them only once that is committed. */
static void apply_run(struct follow *f)
{
    const struct store_pos *p = store_pos(f->store);   /* live: moves with each change */
    long long at[APPLY_MAX];
    struct change *c;
    char err[768];
    int k = 0, rc = 0;
    size_t taken = 0;

    for (c = f->head; c && k < APPLY_MAX; c = c->next, taken++) {
        if (strcmp(c->db, p->db) || c->schema != p->schema) {
            snprintf(err, sizeof err, "the writer's database is now %s (schema %lld), this file "
                     "holds %s (schema %lld)", c->db, c->schema, p->db, p->schema);
            rc = 1;
            break;
        }
        if (c->epoch < p->epoch) {
            refuse_stale(f, c, p);
            continue;
        }
        if (c->epoch == p->epoch && c->seq <= p->seq)   /* held already (a copy, or in the snapshot) */
            continue;
        if (c->prev != p->seq || c->prev_epoch != p->epoch) {
            gap_reason(c, p, err, sizeof err);
            rc = 1;
            break;
        }
        if (!k && store_begin(f->store, err, sizeof err)) {
            rc = -1;
            break;
        }
        if ((rc = store_apply(f->store, c->seq, c->epoch, c->data, c->n, err, sizeof err))) {
            store_rollback(f->store);
            k = 0;
            taken = 0;
            break;
        }
        at[k++] = c->at;
    }
    if (k && store_commit(f->store, err, sizeof err)) {
        rc = -1;
        k = 0;
        taken = 0;
    }
    while (taken--)
        drop_head(f);
    note_lag(f, at, k);
    f->applied += k;
    if (k)
        f->dirty = 1;
    run_ended(f, rc, k, err);
}

void follow_writer_status(struct follow *f, const void *payload, size_t len)
{
    cJSON *j = len ? cJSON_ParseWithLength(payload, len) : NULL;
    long long epoch = num(j, "epoch"), seq = num(j, "seq");

    if (cJSON_IsObject(j) && epoch > 0) {
        if (epoch > f->max_epoch) {
            f->max_epoch = epoch;
            f->writer_seq = store_pos(f->store)->epoch == epoch ? store_pos(f->store)->seq : 0;
            f->status_seq = -1;
        }
        if (epoch == f->max_epoch && seq >= 0 && seq != f->status_seq) {
            f->status_seq = seq;
            f->dirty = 1;
        }
        if (epoch == f->max_epoch) {
            /* Synchronous replicas: the writer names those in sync. */
            const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "replicas_in_sync"), *e;
            int in = -1;
            if (cJSON_IsArray(list)) {
                in = 0;
                cJSON_ArrayForEach(e, list)
                    if (cJSON_IsString(e) && !strcmp(e->valuestring, f->id))
                        in = 1;
            }
            if (in != f->sync) {
                f->sync = in;
                f->dirty = 1;
            }
        }
    }
    cJSON_Delete(j);
}

void follow_set_id(struct follow *f, const char *id)
{
    snprintf(f->id, sizeof f->id, "%s", id);
}

long long follow_max_epoch(const struct follow *f)
{
    return f->max_epoch;
}

int follow_step(struct follow *f, long long now_ms)
{
    switch (f->state) {
    case FOLLOWING:
        if (f->head && now_ms >= f->retry_at)
            apply_run(f);
        return 0;
    case CONFLICT:
        while (f->head)
            drop_head(f);
        return 0;
    default:
        return !f->asked_at || now_ms - (f->progress_at > f->asked_at ? f->progress_at : f->asked_at) >
               ASK_AGAIN_MS;
    }
}

void follow_asked(struct follow *f, long long now_ms)
{
    f->asked_at = now_ms;
}

const char *follow_state(const struct follow *f)
{
    return state_names[f->state];
}

size_t follow_pending(const struct follow *f)
{
    return f->npending;
}

long long follow_quiet_ms(const struct follow *f, long long now_ms)
{
    return now_ms - f->last_arrival_ms;
}

int follow_dirty(struct follow *f)
{
    int d = f->dirty;
    f->dirty = 0;
    return d;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int follow_status(const struct follow *f, const char *id, const char *state_override, char *buf,
                  size_t len)
{
    const struct store_pos *p = store_pos(f->store);
    static double sorted[LAG_KEEP];
    size_t n = (size_t)(f->nlag < LAG_KEEP ? f->nlag : LAG_KEEP);
    double p50 = 0, p99 = 0;
    long long wseq = f->status_seq > f->writer_seq ? f->status_seq : f->writer_seq;
    long long behind = wseq - p->seq;
    char err[800];
    int w;

    if (n) {
        memcpy(sorted, f->lag, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        p50 = sorted[n / 2];
        p99 = sorted[(n * 99 + 99) / 100 - 1];
    }
    if (f->error[0]) {
        /* the texts are ours: no quote or backslash in them but from a table name */
        size_t i, j = 0;
        err[j++] = '"';
        for (i = 0; f->error[i] && j < sizeof err - 3; i++)
            err[j++] = f->error[i] == '"' || f->error[i] == '\\' ? '\'' : f->error[i];
        err[j++] = '"';
        err[j] = '\0';
    } else {
        snprintf(err, sizeof err, "null");
    }
    w = snprintf(buf, len,
                 "{\"state\":\"%s\",\"id\":\"%s\",\"seq\":%lld,\"epoch\":%lld,\"writer_seq\":%lld,"
                 "\"writer_epoch\":%lld,\"lag_commits\":%lld,"
                 "\"lag_ms\":%.0f,\"lag_ms_p50\":%.0f,\"lag_ms_p99\":%.0f,\"applied\":%lld,"
                 "\"bootstraps\":%lld,\"pending\":%zu,\"stale_changes\":%lld,\"stale_epoch\":%lld,"
                 "\"sync\":%s,\"db\":\"%s\",\"error\":%s}",
                 state_override ? state_override : state_names[f->state], id, p->seq, p->epoch, wseq,
                 f->max_epoch, behind > 0 ? behind : 0, f->last_lag, p50, p99, f->applied, f->bootstraps,
                 f->npending, f->stale, f->stale_epoch,
                 f->sync < 0 ? "null" : f->sync ? "true" : "false", p->db, err);
    return w > 0 && (size_t)w < len ? w : -1;
}
