/* sync.c: synchronous replicas: acknowledgements, held messages, the state (sync.h). */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define MAX_REPLICAS  256          /* replicas tracked; acks from more are ignored */
#define MAX_ID        128          /* longest replica id kept */
#define RING          4096         /* recent commits and their times (who is in sync) */
#define MAX_ACK       4096         /* largest ack payload read */

enum { ST_SYNC, ST_HOLDING, ST_DEGRADED };
static const char *const state_names[] = {"sync", "holding", "degraded"};

struct replica {
    char id[MAX_ID + 1];
    long long seq, epoch;          /* its last ack */
    long long at_ms;
};

struct sync {
    struct sync_opts o;
    long long epoch, start_seq, start_epoch;
    struct replica *rep;
    int nrep;
    struct sync_msg *head, *tail;
    size_t nheld;
    int state;
    int warned_many;
    struct { long long seq, at_ms; } ring[RING];   /* commits, oldest first from ring_first */
    int ring_first, ring_n;
    long long last_seq;            /* the last commit (start_seq before any) */
    struct etcd_sync named, want;  /* designate: the set in etcd, the one proposed */
    int pending;                   /* want is being written */
    long long gen, handed;         /* want's generation, the last handed to sync_wanted */
};

struct sync *sync_new(const struct sync_opts *o, long long epoch, long long start_seq, long long start_epoch)
{
    struct sync *s = calloc(1, sizeof *s);

    if (!s || !(s->rep = calloc(MAX_REPLICAS, sizeof *s->rep))) {
        free(s);
        return NULL;
    }
    s->o = *o;
    s->epoch = epoch;
    s->start_seq = start_seq;
    s->start_epoch = start_epoch;
    s->last_seq = start_seq;
    s->named.epoch = s->want.epoch = epoch;
    return s;
}

static void msg_free(struct sync_msg *m)
{
    free(m->topic);
    free(m->payload);
    free(m->corr);
    free(m);
}

size_t sync_drop(struct sync *s)
{
    size_t n = s->nheld;

    while (s->head) {
        struct sync_msg *m = s->head;
        s->head = m->next;
        msg_free(m);
    }
    s->tail = NULL;
    s->nheld = 0;
    return n;
}

void sync_free(struct sync *s)
{
    if (!s)
        return;
    sync_drop(s);
    free(s->rep);
    free(s);
}

/* --- pure ---------------------------------------------------------------------------- */

const char *sync_ack_id(const char *topic, const char *prefix, size_t *idlen)
{
    size_t pl = strlen(prefix), n;
    const char *id, *end;

    if (strncmp(topic, prefix, pl) || strncmp(topic + pl, "/replica/", 9))
        return NULL;
    id = topic + pl + 9;
    if (!(end = strchr(id, '/')) || strcmp(end, "/ack") || end == id)
        return NULL;
    n = (size_t)(end - id);
    *idlen = n;
    return id;
}

static int read_count(const cJSON *root, const char *key, long long *v, char *err, size_t errlen)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);

    if (!j)
        return util_fail(err, errlen, "an ack needs \"%s\"", key);
    if (!cJSON_IsNumber(j) || (j->type & JSON_REAL) || j->valuedouble < 0 ||
        j->valuedouble > (double)(UTIL_EXACT_INT - 1) || j->valuedouble != (double)(long long)j->valuedouble)
        return util_fail(err, errlen, "an ack's \"%s\" must be an integer from 0 to 2^53 - 1", key);
    *v = (long long)j->valuedouble;
    return 0;
}

int sync_ack_read(const char *payload, size_t len, long long *seq, long long *epoch, char *err,
                  size_t errlen)
{
    struct json_nums nums = {0};
    cJSON *root = NULL;
    int rc;

    rc = json_read(&root, &nums, MAX_ACK, 4, payload, len, err, errlen) ||
         read_count(root, "seq", seq, err, errlen) || read_count(root, "epoch", epoch, err, errlen) ? -1 : 0;
    cJSON_Delete(root);
    json_nums_free(&nums);
    return rc;
}

/* --- acknowledgements ---------------------------------------------------------------- */

/* What a replica's ack covers in this writer's lineage: its sequence when of our epoch;
 * the commit we started from when of that commit's epoch; else nothing (-1). */
static long long covered(const struct sync *s, const struct replica *r)
{
    if (r->epoch == s->epoch)
        return r->seq;
    if (r->epoch == s->start_epoch && r->seq <= s->start_seq)
        return r->seq;
    return -1;
}

void sync_ack(struct sync *s, const char *id, size_t idlen, long long seq, long long epoch, long long now_ms)
{
    struct replica *r = NULL;
    int i;

    if (idlen > MAX_ID)
        idlen = MAX_ID;
    for (i = 0; i < s->nrep; i++)
        if (strlen(s->rep[i].id) == idlen && !memcmp(s->rep[i].id, id, idlen)) {
            r = &s->rep[i];
            break;
        }
    if (!r) {
        if (s->nrep == MAX_REPLICAS) {
            if (!s->warned_many++)
                log_warn("sync: acks from more than %d replicas: the others are not counted", MAX_REPLICAS);
            return;
        }
        r = &s->rep[s->nrep++];
        memcpy(r->id, id, idlen);
        r->id[idlen] = '\0';
        r->seq = r->epoch = -1;
        log_info("sync: replica %s acknowledges (sequence %lld of epoch %lld)", r->id, seq, epoch);
    }
    /* A replica's position only moves on within an epoch; a new epoch restarts it. */
    if (epoch > r->epoch || (epoch == r->epoch && seq > r->seq) || epoch < r->epoch) {
        r->seq = seq;
        r->epoch = epoch;
    }
    r->at_ms = now_ms;
}

void sync_committed(struct sync *s, long long seq, long long now_ms)
{
    int i;

    if (s->ring_n == RING) {
        s->ring_first = (s->ring_first + 1) % RING;
        s->ring_n--;
    }
    i = (s->ring_first + s->ring_n) % RING;
    s->ring[i].seq = seq;
    s->ring[i].at_ms = now_ms;
    s->ring_n++;
    s->last_seq = seq;
}

static int cmp_desc(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x < y) - (x > y);
}

static const struct replica *find(const struct sync *s, const char *id)
{
    int i;

    for (i = 0; i < s->nrep; i++)
        if (!strcmp(s->rep[i].id, id))
            return &s->rep[i];
    return NULL;
}

/* The lowest sequence every replica of set has acknowledged (below 0: one has not). */
static long long set_low(const struct sync *s, const struct etcd_sync *set, long long low)
{
    int i;

    for (i = 0; i < set->n; i++) {
        const struct replica *r = find(s, set->ids[i]);
        long long c = r ? covered(s, r) : -1;
        if (c < low)
            low = c;
    }
    return low;
}

/* The highest sequence N distinct replicas have acknowledged (-1: none); designate:
 * that every named replica has, and every proposed one while a set is being written. */
static long long quorum(const struct sync *s)
{
    long long v[MAX_REPLICAS];
    int i;

    if (s->o.designate) {
        if (s->named.n < s->o.n)
            return -1;
        return set_low(s, s->pending ? &s->want : &s->named, set_low(s, &s->named, UTIL_EXACT_INT));
    }
    if (s->nrep < s->o.n)
        return -1;
    for (i = 0; i < s->nrep; i++)
        v[i] = covered(s, &s->rep[i]);
    qsort(v, (size_t)s->nrep, sizeof *v, cmp_desc);
    return v[s->o.n - 1];
}

/* In sync: has acknowledged every commit older than the timeout. */
static int in_sync(const struct sync *s, const struct replica *r, long long now_ms)
{
    long long c = covered(s, r);
    int i;

    if (c < 0)
        return 0;
    for (i = 0; i < s->ring_n; i++) {
        int k = (s->ring_first + i) % RING;
        if (s->ring[k].seq > c)
            return now_ms - s->ring[k].at_ms < s->o.timeout_ms;
    }
    return 1;
}

static int count_in_sync(const struct sync *s, long long now_ms)
{
    int i, n = 0;

    for (i = 0; i < s->nrep; i++)
        n += in_sync(s, &s->rep[i], now_ms);
    return n;
}

/* --- designation (with etcd) ---------------------------------------------------------- */

static void log_set(const char *what, const struct etcd_sync *set)
{
    char ids[1024] = "";
    size_t n = 0;
    int i;

    for (i = 0; i < set->n && n < sizeof ids; i++)
        n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%s", i ? ", " : "", set->ids[i]);
    log_info("sync: %s: %s (epoch %lld)", what, set->n ? ids : "none", set->epoch);
}

int sync_designate(struct sync *s, long long now_ms)
{
    const struct replica *in = NULL;
    int i, out = -1;

    if (!s->o.designate || s->pending)
        return 0;
    for (i = 0; i < s->nrep && !in; i++)
        if (!etcd_sync_has(&s->named, s->rep[i].id) && strlen(s->rep[i].id) <= ETCD_SYNC_ID_MAX &&
            covered(s, &s->rep[i]) >= 0 && covered(s, &s->rep[i]) >= s->last_seq)
            in = &s->rep[i];
    if (!in)
        return 0;
    if (s->named.n >= s->o.n) {
        for (i = 0; i < s->named.n && out < 0; i++) {
            const struct replica *r = find(s, s->named.ids[i]);
            if (!r || !in_sync(s, r, now_ms))
                out = i;
        }
        if (out < 0)
            return 0;
    }
    s->want = s->named;
    if (out >= 0) {
        log_warn("sync: replica %s is no longer in sync: %s, which has acknowledged every commit, takes its "
                 "place", s->want.ids[out], in->id);
        memmove(s->want.ids[out], s->want.ids[out + 1], (size_t)(s->want.n - out - 1) * sizeof s->want.ids[0]);
        s->want.n--;
    }
    snprintf(s->want.ids[s->want.n++], sizeof s->want.ids[0], "%s", in->id);
    s->want.epoch = s->epoch;
    s->pending = 1;
    s->gen++;
    log_set("designating in etcd", &s->want);
    return 1;
}

char *sync_wanted(struct sync *s, long long *gen)
{
    if (!s->pending || s->handed == s->gen)
        return NULL;
    s->handed = s->gen;
    *gen = s->gen;
    return etcd_sync_value(&s->want);
}

int sync_named(struct sync *s, long long gen)
{
    if (!s->pending || gen != s->gen)
        return 0;
    s->named = s->want;
    s->pending = 0;
    log_set("designated (in etcd)", &s->named);
    return 1;
}

/* --- holding ------------------------------------------------------------------------- */

int sync_must_hold(const struct sync *s, int committed)
{
    if (s->state == ST_DEGRADED)
        return 0;
    return committed || s->head != NULL;
}

int sync_hold(struct sync *s, long long seq, int kind, const char *topic, const void *payload, size_t len,
              int qos, int retain, const void *corr, int corrlen, long long now_ms)
{
    struct sync_msg *m = calloc(1, sizeof *m);

    if (!m)
        return -1;
    m->seq = seq;
    m->at_ms = now_ms;
    m->kind = kind;
    m->qos = qos;
    m->retain = retain;
    m->len = len;
    m->corrlen = corr ? corrlen : 0;
    m->topic = strdup(topic ? topic : "");
    m->payload = malloc(len ? len : 1);
    m->corr = m->corrlen ? malloc((size_t)m->corrlen) : NULL;
    if (!m->topic || !m->payload || (m->corrlen && !m->corr)) {
        msg_free(m);
        return -1;
    }
    if (len)
        memcpy(m->payload, payload, len);
    if (m->corrlen)
        memcpy(m->corr, corr, (size_t)m->corrlen);
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
    s->nheld++;
    return 0;
}

static void release_head(struct sync *s, sync_emit_fn emit, void *ud)
{
    struct sync_msg *m = s->head;

    s->head = m->next;
    if (!s->head)
        s->tail = NULL;
    s->nheld--;
    emit(ud, m);
    msg_free(m);
}

void sync_release(struct sync *s, long long now_ms, sync_emit_fn emit, void *ud)
{
    long long q = quorum(s);

    if (s->state == ST_DEGRADED) {
        while (s->head)
            release_head(s, emit, ud);
        if (count_in_sync(s, now_ms) >= s->o.n) {
            s->state = ST_SYNC;
            log_warn("sync: %d replicas in sync again (acknowledged up to sequence %lld): receipts wait for "
                     "them again", s->o.n, q);
        }
        return;
    }
    while (s->head && s->head->seq <= q)
        release_head(s, emit, ud);
    if (!s->head || now_ms - s->head->at_ms < s->o.timeout_ms) {
        if (s->state == ST_HOLDING)
            log_warn("sync: acknowledged by %d replicas again (sequence %lld): receipts go out", s->o.n, q);
        s->state = ST_SYNC;
        return;
    }
    if (s->o.degrade) {
        log_error("sync: DEGRADED: commit %lld has waited %lld ms and only %d of the %d replicas needed are in "
                  "sync: sending %zu held receipts and events (commits up to %lld) WITHOUT a replica's "
                  "acknowledgement, and the next ones too until %d replicas are in sync again",
                  s->head->seq, now_ms - s->head->at_ms, count_in_sync(s, now_ms), s->o.n, s->nheld,
                  s->tail->seq, s->o.n);
        s->state = ST_DEGRADED;
        while (s->head)
            release_head(s, emit, ud);
    } else if (s->state != ST_HOLDING) {
        log_warn("sync: commit %lld has waited %lld ms for %d replicas' acknowledgement (%d in sync): holding "
                 "%zu receipts and events until they acknowledge (sync-fallback hold)", s->head->seq,
                 now_ms - s->head->at_ms, s->o.n, count_in_sync(s, now_ms), s->nheld);
        s->state = ST_HOLDING;
    }
}

size_t sync_held(const struct sync *s)
{
    return s->nheld;
}

long long sync_held_seq(const struct sync *s)
{
    return s->tail ? s->tail->seq : -1;
}

int sync_full(const struct sync *s)
{
    return s->nheld >= s->o.max_held;
}

int sync_wait_ms(const struct sync *s, long long now_ms, int cap)
{
    long long left;

    if (s && s->pending && cap > 20)
        cap = 20;                       /* a set being written: look again soon */
    if (!s || (!s->head && s->state != ST_DEGRADED))
        return cap;
    if (!s->head)                       /* degraded: look for acks again now and then */
        return cap < 100 ? cap : 100;
    left = s->head->at_ms + s->o.timeout_ms - now_ms;
    if (left < 0)
        left = 0;
    return left < cap ? (int)left : cap;
}

const char *sync_state(const struct sync *s)
{
    return state_names[s->state];
}

void sync_status(const struct sync *s, long long now_ms, struct jbuf *out)
{
    int i, first = 1;

    jb_puts(out, ",\"sync\":");
    jb_cstr(out, state_names[s->state]);
    jb_puts(out, ",\"sync_replicas\":");
    jb_int(out, s->o.n);
    jb_puts(out, ",\"sync_acked\":");
    jb_int(out, quorum(s));
    jb_puts(out, ",\"sync_held\":");
    jb_int(out, (long long)s->nheld);
    jb_puts(out, ",\"replicas_in_sync\":[");
    for (i = 0; i < s->nrep; i++)
        if (in_sync(s, &s->rep[i], now_ms)) {
            if (!first)
                jb_putc(out, ',');
            first = 0;
            jb_cstr(out, s->rep[i].id);
        }
    jb_putc(out, ']');
    if (!s->o.designate)
        return;
    jb_puts(out, ",\"sync_designated\":[");
    for (i = 0; i < s->named.n; i++) {
        if (i)
            jb_putc(out, ',');
        jb_cstr(out, s->named.ids[i]);
    }
    jb_putc(out, ']');
}
