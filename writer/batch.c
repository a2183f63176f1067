/* batch.c: group commit over the request queue, and what it publishes (see batch.h).
 *
 * Each received message carries the writer's struct outcome (mq.c keeps room for it):
 * set while the request is applied, read when its receipt and rejection are
 * published after COMMIT, kept across a rollback (a request whose rejection took the
 * whole batch with it is rejected again, without being applied, when the batch is
 * replayed), and freed here before the message is dropped. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <sqlite3.h>

#include "log.h"
#include "util.h"

struct batch {
    struct db *db;
    struct mq *mq;
    struct batch_opts o;
    struct req req;                /* the request being applied */
    struct jbuf out;               /* scratch for publishing */
    char *t_write, *t_status, *t_rejected, *t_events;
    char since[32];                /* start time, ISO 8601 */
    struct out_stats stats;
    int stalled;
    char error[1024];              /* the last database fault */
    long long retry_at;
    int backoff;
    int status_dirty;              /* counters changed since the last status */
    long long last_status_ms;
    long long hold_seq;            /* while holding a batch's messages: the commit they wait for */
    int sync_full;                 /* requests refused: sync-max-held messages are held */
};

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static struct outcome *outcome_of(struct msg *m)
{
    return m->app;
}

static void outcome_clear(struct outcome *o)
{
    free(o->id);
    free(o->reply_to);
    free(o->error);
    free(o->cancel);
    free(o->extra);
    free(o->after);
    o->id = o->reply_to = o->error = o->cancel = o->extra = o->after = NULL;
}

/* Drop the first n messages of the queue. */
static void drop_requests(struct batch *b, size_t n)
{
    struct msg *m = mq_head(b->mq);
    size_t i;

    for (i = 0; i < n && m; i++, m = m->next)
        outcome_clear(outcome_of(m));
    mq_drop(b->mq, n);
}

struct batch *batch_new(struct db *db, struct mq *mq, const struct batch_opts *o)
{
    struct batch *b = calloc(1, sizeof *b);
    time_t t = time(NULL);
    struct tm tm;

    if (!b)
        return NULL;
    b->db = db;
    b->mq = mq;
    b->o = *o;
    b->t_write = util_join(o->prefix, "/write");
    b->t_status = util_join(o->prefix, "/status");
    b->t_rejected = util_join(o->prefix, "/rejected");
    b->t_events = util_join(o->prefix, "/events/");
    b->hold_seq = -1;
    if (!b->t_write || !b->t_status || !b->t_rejected || !b->t_events) {
        batch_free(b);
        return NULL;
    }
    gmtime_r(&t, &tm);
    strftime(b->since, sizeof b->since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

void batch_free(struct batch *b)
{
    if (!b)
        return;
    drop_requests(b, mq_queued(b->mq));
    req_free(&b->req);
    jb_free(&b->out);
    free(b->t_write);
    free(b->t_status);
    free(b->t_rejected);
    free(b->t_events);
    free(b);
}

int batch_stalled(const struct batch *b, long long *retry_at)
{
    *retry_at = b->retry_at;
    return b->stalled;
}

const char *batch_error(const struct batch *b)
{
    return b->error;
}

const struct out_stats *batch_stats(const struct batch *b)
{
    return &b->stats;
}

/* Fencing: a commit may be made and published only while mq says no newer writer can
 * have taken over (mq.h); at shutdown, unless one was seen, what is held is committed. */
static int fence_clear(const struct batch *b)
{
    return mq_fence_ok(b->mq) || (*b->o.stop && !mq_fenced_by(b->mq) && !mq_taken_over(b->mq));
}

int batch_due(const struct batch *b, long long now_ms)
{
    if ((b->stalled && now_ms < b->retry_at) || b->sync_full)
        return 0;
    return (mq_queued(b->mq) || (b->o.jobq && jobq_due(b->o.jobq, now_ms))) && fence_clear(b);
}

void batch_status(struct batch *b, const char *state)
{
    char libmosq[32];
    int major, minor, rev;
    struct out_versions v;

    if (!strcmp(state, "online") && !mq_online(b->mq)) {
        b->status_dirty = 1;     /* said once requests reach the writer (mq.h) */
        return;
    }
    mosquitto_lib_version(&major, &minor, &rev);
    snprintf(libmosq, sizeof libmosq, "%d.%d.%d", major, minor, rev);
    v.broker = mq_broker_version(b->mq);
    v.libmosquitto = libmosq;
    v.sqlite = sqlite3_libversion();
    v.request_protocol = mq_request_protocol(b->mq);
    if (mq_fenced_by(b->mq))
        return;                  /* the newer writer's status is the one that counts */
    if (b->o.changes) {
        b->stats.seq = changes_seq(b->o.changes);
        b->stats.epoch = changes_epoch(b->o.changes);
    }
    if (!out_status(&b->out, state, b->since, &b->stats, mq_queued(b->mq),
                    b->stalled ? b->error : NULL, &v)) {
        /* The job queue's counts go in before the closing brace. */
        if (b->o.jobq && !b->stalled && b->out.len && b->out.s[b->out.len - 1] == '}') {
            b->out.len--;
            jobq_status(b->o.jobq, &b->out);
            jb_putc(&b->out, '}');
        }
        if (b->o.sync && b->out.len && b->out.s[b->out.len - 1] == '}') {
            b->out.len--;
            sync_status(b->o.sync, util_now_ms(), &b->out);
            jb_putc(&b->out, '}');
        }
        if (!b->out.oom)
            mq_publish(b->mq, b->t_status, b->out.s, b->out.len, 1, 1, NULL, 0);
    }
    b->status_dirty = 0;
    b->last_status_ms = util_now_ms();
}

void batch_paused(struct batch *b, int on)
{
    b->stats.paused = on;
    batch_status(b, "online");
}

void batch_status_due(struct batch *b, long long now_ms, long long interval_ms)
{
    if ((b->status_dirty || (b->o.jobq && jobq_status_changed(b->o.jobq))) &&
        now_ms - b->last_status_ms >= interval_ms)
        batch_status(b, "online");
}

/* Parse and apply, store for later (*what OUT_SCHEDULED, *due_ms set) or cancel
 * (OUT_CANCELLED); rc as db_apply, the rejection text in err. A scheduled request
 * that is due (queued by sched_tick) is applied. */
static int apply_request(struct batch *b, struct msg *m, const struct outcome *o, enum out_kind *what,
                         long long *due_ms, long long *changes, long long *rowid, char *err, size_t errlen)
{
    const struct req *r = &b->req;
    int held;

    *what = OUT_APPLIED;
    if (req_read(&b->req, db_schema(b->db), &b->o.lim, b->t_write, m->topic, m->payload, m->len,
                 err, errlen))
        return DB_REJECT;
    if (m->retained) {
        /* The broker would deliver it again to every new subscription: never applied. */
        snprintf(err, errlen, "a retained request is not applied: publish requests without the "
                 "retain flag, and clear this one (an empty retained message on %.200s)", m->topic);
        return DB_REJECT;
    }
    if (o->replay_reject) {
        snprintf(err, errlen, "%s", o->error ? o->error : "rejected");
        return DB_REJECT;
    }
    if (r->cancel) {
        *what = OUT_CANCELLED;
        return sched_cancel(b->o.sched, r, m->topic, b->t_write, err, errlen);
    }
    if (!m->sched_id && !r->jobs_at && (r->has_at || r->delay_ms >= 0)) {
        *what = OUT_SCHEDULED;
        *due_ms = r->has_at ? r->at_ms : util_wall_ms() + r->delay_ms;
        return sched_add(b->o.sched, r, m, *due_ms, err, errlen);
    }
    if (r->id && !m->sched_id && (held = sched_holds(b->o.sched, r->id, err, errlen)))
        return held < 0 ? DB_FAULT : DB_REJECT;
    return db_apply(b->db, r, changes, rowid, err, errlen);
}

/* A job message (jobq.c) in the open batch. */
static int process_job(struct batch *b, struct msg *m)
{
    struct outcome *o = outcome_of(m);
    struct jobq_mark mk;
    char err[1024] = "";
    int rc;

    if (o->replay_reject) {
        o->kind = OUT_REJECTED;
        return DB_OK;
    }
    outcome_clear(o);
    o->changes = 0;
    o->rowid = -1;
    jobq_mark(b->o.jobq, &mk);
    rc = jobq_apply(b->o.jobq, m, o, err, sizeof err);
    if (rc == DB_LOST) {
        free(o->error);
        o->error = strdup(err);
        o->replay_reject = 1;
        return DB_LOST;
    }
    if (rc == DB_FAULT) {
        snprintf(b->error, sizeof b->error, "%s", err);
        return DB_FAULT;
    }
    if (rc == DB_REJECT) {
        jobq_cut(b->o.jobq, &mk);
        o->kind = OUT_REJECTED;
        free(o->extra);
        o->extra = NULL;
        o->error = strdup(err);
        if (db_record_rejection(b->db, m->topic, o->id, err, m->payload, m->len, b->error,
                                sizeof b->error) == DB_FAULT)
            return DB_FAULT;
        return DB_OK;
    }
    if (rc == DB_DUP)
        o->kind = OUT_DUP;
    else if (!o->kind)
        o->kind = OUT_APPLIED;
    return DB_OK;
}

/* Apply one request in the open batch. DB_FAULT means roll the batch back. */
static int process(struct batch *b, struct msg *m)
{
    struct outcome *o = outcome_of(m);
    struct jobq_mark mk;
    char err[1024];
    long long changes = 0, rowid = -1, due_ms = 0;
    enum out_kind what;
    int rc;

    if (b->o.jobq && jobq_owns(b->o.jobq, m))
        return process_job(b, m);
    o->kind = 0;
    /* Due now: its row comes out in this transaction, or it was cancelled meanwhile. */
    if (m->sched_id && (rc = sched_take(b->o.sched, m->sched_id, b->error, sizeof b->error)) != DB_OK) {
        if (rc == DB_FAULT)
            return DB_FAULT;
        outcome_clear(o);
        o->kind = OUT_DROPPED;
        return DB_OK;
    }
    if (b->o.jobq)
        jobq_mark(b->o.jobq, &mk);
    rc = apply_request(b, m, o, &what, &due_ms, &changes, &rowid, err, sizeof err);
    if (b->o.jobq && rc != DB_OK && rc != DB_DUP)
        jobq_cut(b->o.jobq, &mk);       /* DB_WAIT too: none of its ops ran */
    if (rc == DB_LOST) {
        /* Keep the reason; the caller replays the batch without this request. */
        free(o->error);
        o->error = strdup(err);
        o->replay_reject = 1;
        req_clear(&b->req);
        return DB_LOST;
    }
    if (rc == DB_FAULT) {
        snprintf(b->error, sizeof b->error, "%s", err);
        req_clear(&b->req);
        return DB_FAULT;
    }
    outcome_clear(o);
    o->id = xstrdup(b->req.id ? b->req.id : m->sched_id);
    o->reply_to = xstrdup(b->req.reply_to ? b->req.reply_to :
                          m->resp_topic && req_reply_topic_ok(m->resp_topic, b->o.prefix) ? m->resp_topic : NULL);
    o->cancel = xstrdup(b->req.cancel);
    if (rc == DB_WAIT)
        o->after = xstrdup(b->req.after);
    if (b->o.jobq && rc == DB_OK)
        o->extra = jobq_take_receipt(b->o.jobq);
    req_clear(&b->req);
    if (rc == DB_REJECT) {
        o->kind = OUT_REJECTED;
        o->error = strdup(err);
        if (db_record_rejection(b->db, m->topic, o->id, err, m->payload, m->len, b->error,
                                sizeof b->error) == DB_FAULT)
            return DB_FAULT;
        return DB_OK;
    }
    o->kind = rc == DB_DUP ? OUT_DUP : rc == DB_WAIT ? OUT_WAITING : what;
    o->changes = changes;
    o->rowid = rowid;
    o->due_ms = due_ms;
    return DB_OK;
}

static void publish_outcome(struct batch *b, struct msg *m)
{
    const struct outcome *o = outcome_of(m);

    if (o->kind == OUT_DROPPED)
        return;
    if (o->kind == OUT_REJECTED) {
        b->stats.rejected++;
        log_debug("rejected %s: %s", m->topic, o->error ? o->error : "?");
        if (!out_rejection(&b->out, m->topic, o, m->payload, m->len))
            mq_publish(b->mq, b->t_rejected, b->out.s, b->out.len, 1, 0, NULL, 0);
    } else if (o->kind == OUT_DUP) {
        b->stats.duplicates++;
    } else if (o->kind == OUT_SCHEDULED) {
        b->stats.scheduled++;
    } else if (o->kind == OUT_CANCELLED) {
        b->stats.cancelled++;
    } else if (o->kind == OUT_WAITING) {
        log_debug("%s came before %s: not applied, answered waiting", o->id ? o->id : "a request",
                  o->after);
    } else {
        b->stats.applied++;
    }
    if (o->reply_to && !out_receipt(&b->out, o))
        mq_publish(b->mq, o->reply_to, b->out.s, b->out.len, 1, 0, m->corr, m->corrlen);
}

static void publish_events(struct batch *b)
{
    const struct schema *s = db_schema(b->db);
    const char *rows = db_event_rows(b->db);
    const struct db_event *ev;
    int n, i;

    ev = db_events(b->db, &n);
    for (i = 0; i < n; i++) {
        const char *table = s->tables[ev[i].tindex].name;
        char *topic = util_join(b->t_events, table);
        if (!topic) {
            log_error("out of memory");
            exit(1);
        }
        if (!out_event(&b->out, table, ev[i].kind, rows + ev[i].start, ev[i].end - ev[i].start,
                       ev[i].truncated)) {
            mq_publish(b->mq, topic, b->out.s, b->out.len, b->o.events_qos, 0, NULL, 0);
            if (b->hold_seq >= 0 && b->o.hooks) {
                if (sync_hold(b->o.sync, b->hold_seq, SYNC_HOOK, table, b->out.s, b->out.len, 0, 0,
                              op_names[ev[i].kind], (int)strlen(op_names[ev[i].kind]) + 1, util_now_ms())) {
                    log_error("out of memory");
                    exit(1);
                }
            } else {
                hook_event(b->o.hooks, table, op_names[ev[i].kind], b->out.s, b->out.len);
            }
        }
        free(topic);
    }
}

/* Undo the open transaction, and what the scheduled writes counted in it. */
static void roll_back(struct batch *b)
{
    db_rollback(b->db);
    sched_rolled_back(b->o.sched);
    if (b->o.jobq)
        jobq_rolled_back(b->o.jobq);
}

static void stall(struct batch *b)
{
    int was = b->stalled;

    b->stalled = 1;
    b->backoff = util_backoff(b->backoff);
    b->retry_at = util_now_ms() + b->backoff;
    mq_accept(b->mq, 0);
    if (!was) {
        log_error("database fault, holding %zu requests and retrying: %s", mq_queued(b->mq), b->error);
        batch_status(b, "online");
    }
}

static void unstall(struct batch *b)
{
    if (!b->stalled)
        return;
    log_info("database writable again");
    b->stalled = 0;
    b->backoff = 0;
    mq_accept(b->mq, !*b->o.stop && !b->sync_full);
    b->status_dirty = 1;
    batch_status(b, "online");
}

/* Apply the queue in the open transaction, reading ahead for more, until the batch
 * bound (count or time) or nothing more is waiting. The requests applied are the
 * first *n; *last the last of them. *waited counts the short waits for a request
 * still on the wire (one per batch, however often it restarts). DB_OK, DB_LOST
 * (rolled back: start again) or DB_FAULT (rolled back). */
static int apply_queue(struct batch *b, double t0, int *waited, struct msg **last, size_t *n)
{
    struct msg *m = mq_head(b->mq);

    *last = NULL;
    *n = 0;
    for (;;) {
        for (; m && *n < b->o.max; *last = m, m = m->next, (*n)++) {
            int rc = process(b, m);
            if (rc == DB_LOST) {
                log_warn("a rejected request rolled back its whole batch (ON CONFLICT ROLLBACK "
                         "or RAISE(ROLLBACK)); applying the batch again without it");
                roll_back(b);
                return DB_LOST;
            }
            if (rc == DB_FAULT) {
                roll_back(b);
                return DB_FAULT;
            }
        }
        if (*n >= b->o.max || util_now_exact_ms() - t0 >= (double)b->o.ms || *b->o.stop)
            return DB_OK;
        /* Read ahead: more requests may already be waiting. Requests whose PUBREL is
         * still on the wire complete within a round trip: give them one short wait. */
        if (!mq_read_more(b->mq, 0) && !((*waited)++ == 0 && mq_read_more(b->mq, 1)))
            return DB_OK;
        m = *last ? (*last)->next : mq_head(b->mq);
        if (!m)
            return DB_OK;
    }
}

/* Synchronous replicas: what the batch publishes while mq_capture is set is held. */
static int capture(void *ud, const char *topic, const void *payload, size_t len, int qos, int retain,
                   const void *corr, int corrlen)
{
    struct batch *b = ud;

    if (sync_hold(b->o.sync, b->hold_seq, SYNC_PUBLISH, topic, payload, len, qos, retain, corr, corrlen,
                  util_now_ms())) {
        log_error("out of memory");
        exit(1);
    }
    return 0;
}

/* A held message, now acknowledged (or degraded): out. */
static void emit(void *ud, const struct sync_msg *m)
{
    struct batch *b = ud;

    if (m->kind == SYNC_HOOK)
        hook_event(b->o.hooks, m->topic, m->corr, m->payload, m->len);
    else
        mq_publish(b->mq, m->topic, m->payload, m->len, m->qos, m->retain, m->corr, m->corrlen);
}

void batch_sync_tick(struct batch *b)
{
    size_t before;
    int full;

    if (!b->o.sync)
        return;
    if (mq_fenced_by(b->mq) || mq_taken_over(b->mq)) {
        size_t n = sync_drop(b->o.sync);
        if (n)
            log_error("%zu held receipts and events are not sent: this writer has been replaced", n);
        return;
    }
    if (!fence_clear(b))
        return;               /* checked again first (mq.h) */
    before = sync_held(b->o.sync);
    {
        const char *st = sync_state(b->o.sync);
        mq_batch(b->mq, 1);
        sync_release(b->o.sync, util_now_ms(), emit, b);
        mq_batch(b->mq, 0);
        if (strcmp(st, sync_state(b->o.sync)))
            batch_status(b, "online");
    }
    if (sync_held(b->o.sync) != before)
        b->status_dirty = 1;
    full = sync_held(b->o.sync) >= (b->sync_full ? b->o.sync_max_held / 4 * 3 : b->o.sync_max_held);
    if (full != b->sync_full) {
        b->sync_full = full;
        if (full)
            log_error("sync: %zu receipts and events held for replicas' acknowledgement (sync-max-held): "
                      "taking no request more until some go out", sync_held(b->o.sync));
        else
            log_warn("sync: %zu held now: taking requests again", sync_held(b->o.sync));
        mq_accept(b->mq, !full && !b->stalled && !*b->o.stop);
        batch_status(b, "online");
    }
}

int batch_sync_wait_ms(const struct batch *b, int cap)
{
    return b->o.sync ? sync_wait_ms(b->o.sync, util_now_ms(), cap) : cap;
}

size_t batch_sync_finish(struct batch *b, long long timeout_ms)
{
    long long give_up = util_now_ms() + timeout_ms;
    size_t n;

    if (!b->o.sync)
        return 0;
    while (sync_held(b->o.sync) && util_now_ms() < give_up && !mq_fenced_by(b->mq) && !mq_taken_over(b->mq)) {
        mq_poll(b->mq, sync_wait_ms(b->o.sync, util_now_ms(), 50));
        batch_sync_tick(b);
    }
    if ((n = sync_drop(b->o.sync)))
        log_error("exiting with %zu receipts and events not sent: their commits (up to sequence %lld) are in "
                  "this file, but %d replicas did not acknowledge them; producers republish what has no "
                  "receipt (with ids, they are answered duplicate)", n, changes_seq(b->o.changes),
                  b->o.sync_n);
    return n;
}

/* After COMMIT: the counters, then receipts, rejections and events in one burst. */
static void publish_batch(struct batch *b, double t0, struct msg *last, size_t n, int committed)
{
    struct msg *m;
    size_t i;

    (void)last;
    if (committed) {
        b->stats.last_commit_ms = util_now_exact_ms() - t0;
        b->stats.commits++;
        b->stats.last_batch = (long long)n;
        if (b->stats.last_batch > b->stats.max_batch)
            b->stats.max_batch = b->stats.last_batch;
    }
    mq_batch(b->mq, 1);
    /* Replication: the commit's changeset goes out before its receipts. */
    if (b->o.changes && committed)
        changes_publish(b->o.changes, b->mq);
    /* Synchronous replicas: the rest waits for their acknowledgement of this commit. */
    b->hold_seq = -1;
    if (b->o.sync) {
        if (committed)
            sync_committed(b->o.sync, changes_seq(b->o.changes), util_now_ms());
        if (sync_must_hold(b->o.sync, committed)) {
            b->hold_seq = committed ? changes_seq(b->o.changes) : sync_held_seq(b->o.sync);
            mq_capture(b->mq, capture, b);
        }
    }
    for (m = mq_head(b->mq), i = 0; m && i < n; m = m->next, i++)
        publish_outcome(b, m);
    publish_events(b);
    if (b->o.jobq)
        jobq_committed(b->o.jobq);
    mq_capture(b->mq, NULL, NULL);
    b->hold_seq = -1;
    mq_batch(b->mq, 0);
    drop_requests(b, n);
    b->status_dirty = 1;
    unstall(b);
}

/* After COMMIT: stopped between the fence's check before it and here, no receipt goes
 * out before the broker connection is checked again; a newer writer seen means none at
 * all. */
static void publish_committed(struct batch *b, double t0, struct msg *last, size_t n)
{
    while (!fence_clear(b) && !mq_fenced_by(b->mq) && !mq_taken_over(b->mq))
        mq_poll(b->mq, 100);
    if (mq_fenced_by(b->mq) == MQ_LEASE_LOST) {
        log_error("the leader lease in etcd lapsed: the commit of %zu requests stays in this file only, "
                  "and no receipt is sent for it", n);
        drop_requests(b, n);
        return;
    }
    if (mq_fenced_by(b->mq)) {
        log_error("a writer of epoch %lld has taken over: the commit of %zu requests stays in this "
                  "file only, and no receipt is sent for it", mq_fenced_by(b->mq), n);
        drop_requests(b, n);
        return;
    }
    publish_batch(b, t0, last, n, 1);
}

void batch_run(struct batch *b)
{
    char err[512];
    double t0 = util_now_exact_ms();
    struct msg *last, *m;
    size_t n, i;
    int rc, waited = 0, only_jobs;
    sqlite3_int64 changes0;

    do {
        if (db_begin(b->db, err, sizeof err) != DB_OK) {
            snprintf(b->error, sizeof b->error, "%s", err);
            if (b->o.jobq)
                jobq_rolled_back(b->o.jobq);
            stall(b);
            return;
        }
        changes0 = sqlite3_total_changes64(db_handle(b->db));
        if (b->o.jobq && jobq_begin(b->o.jobq, b->error, sizeof b->error) != DB_OK) {
            roll_back(b);
            stall(b);
            return;
        }
        rc = apply_queue(b, t0, &waited, &last, &n);
    } while (rc == DB_LOST);
    if (rc == DB_FAULT) {
        stall(b);
        return;
    }
    /* Fencing: a newer writer may have been promoted while this one was stopped or
     * starved (mq.h). Then nothing of this batch is committed: its producers, who have
     * no receipt, republish to the writer that holds the request session now. */
    if (!fence_clear(b)) {
        roll_back(b);
        log_warn("holding %zu requests uncommitted until the broker connection is checked again",
                 mq_queued(b->mq));
        return;
    }
    if (b->o.jobq && jobq_match(b->o.jobq, b->error, sizeof b->error) != DB_OK) {
        roll_back(b);
        stall(b);
        return;
    }
    /* A batch of job messages that wrote nothing (waiting claims, beats, a timer with
     * nothing due) is not committed: an idle fleet costs no commit. */
    for (only_jobs = 1, i = 0, m = mq_head(b->mq); only_jobs && i < n && m; i++, m = m->next)
        only_jobs = b->o.jobq && jobq_owns(b->o.jobq, m);
    if (only_jobs && sqlite3_total_changes64(db_handle(b->db)) == changes0) {
        db_rollback(b->db);
        publish_batch(b, t0, last, n, 0);
        return;
    }
    /* Replication: number the commit and take its changeset, inside the transaction. */
    if (b->o.changes && changes_seal(b->o.changes, err, sizeof err)) {
        roll_back(b);
        snprintf(b->error, sizeof b->error, "%s", err);
        stall(b);
        return;
    }
    if (db_commit(b->db, err, sizeof err) != DB_OK) {   /* rolled back by db_commit */
        snprintf(b->error, sizeof b->error, "%s", err);
        sched_rolled_back(b->o.sched);
        if (b->o.jobq)
            jobq_rolled_back(b->o.jobq);
        stall(b);
        return;
    }
    publish_committed(b, t0, last, n);
}
