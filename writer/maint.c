/* maint.c: running maintenance commands (see maint.h).
 *
 * A command arrives on the control connection, inside mq_poll(). The quick ones
 * (checkpoint, optimize, pause, resume) run and answer at once: that is between batches,
 * since batches run outside mq_poll(). A backup (backup.c) is set up and then copied a
 * step per loop turn by maint_tick(); integrity_check and stats start a thread on a read-only
 * connection and maint_tick() publishes its answer once it is done. Answers go where
 * the door for control messages (ctl.c) said, with the command's Correlation Data. */
#include "maint.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin.h"
#include "backup.h"
#include "jbuf.h"
#include "log.h"
#include "util.h"

#define JOB_POLL_MS      50       /* the loop's longest sleep while a thread works */
#define OPTIMIZE_LIMIT   1000     /* PRAGMA analysis_limit for optimize */
#define INTEGRITY_MAX    100      /* problems listed at most */

/* Where an answer goes. */
struct reply {
    char *topic;
    void *corr;
    int corrlen;
};

/* integrity_check or stats, in a thread. */
struct job {
    pthread_t th;
    int cmd;
    atomic_int done;
    struct maint *m;
    int paused;                   /* for stats: as it was when asked */
    struct jbuf out;              /* the answer, written by the thread */
    struct reply to;
};

struct maint {
    struct maint_opts o;
    int paused;
    struct backup *bk;            /* the one in progress, or NULL */
    struct reply bk_to;           /* where its answer goes */
    struct job *job;
    struct jbuf out;
    /* The ids of the last ADMIN_IDS_KEPT commands run (a ring), with their command. */
    char ids[ADMIN_IDS_KEPT][ADMIN_ID_MAX + 1];
    int id_cmd[ADMIN_IDS_KEPT];
    int id_next;
};

static void reply_free(struct reply *r)
{
    free(r->topic);
    free(r->corr);
    r->topic = NULL;
    r->corr = NULL;
}

static int reply_set(struct reply *r, const char *topic, const void *corr, int corrlen)
{
    r->topic = strdup(topic);
    r->corr = NULL;
    r->corrlen = 0;
    if (corr && corrlen > 0 && (r->corr = malloc((size_t)corrlen))) {
        memcpy(r->corr, corr, (size_t)corrlen);
        r->corrlen = corrlen;
    }
    return r->topic ? 0 : -1;
}

static void send_to(struct maint *m, const struct reply *to, const struct jbuf *b)
{
    if (!b->oom)
        mq_publish(m->o.mq, to->topic, b->s, b->len, 1, 0, to->corr, to->corrlen);
}

static void answer_error(struct maint *m, const struct reply *to, const char *cmd, const char *error)
{
    log_warn("admin %s: %s", cmd ? cmd : "?", error);
    if (!admin_error(&m->out, cmd, error))
        send_to(m, to, &m->out);
}

struct maint *maint_new(const struct maint_opts *o)
{
    struct maint *m = calloc(1, sizeof *m);

    if (m)
        m->o = *o;
    return m;
}

/* --- backup (backup.c) --------------------------------------------------------------- */

static void backup_begin(struct maint *m, const struct admin_req *r, const struct reply *to)
{
    struct backup_opts bo;
    char err[512];

    if (!m->o.backup_dir || !*m->o.backup_dir) {
        answer_error(m, to, "backup", "backups are off: backup-dir is not set in the writer's config");
        return;
    }
    if (m->bk) {
        snprintf(err, sizeof err, "a backup is in progress (%s)", backup_name(m->bk));
        answer_error(m, to, "backup", err);
        return;
    }
    if (reply_set(&m->bk_to, to->topic, to->corr, to->corrlen)) {
        reply_free(&m->bk_to);
        answer_error(m, to, "backup", "out of memory");
        return;
    }
    bo.h = m->o.h;
    bo.db_path = m->o.db_path;
    bo.dir = m->o.backup_dir;
    bo.step_pages = m->o.step_pages;
    if (!(m->bk = backup_start(&bo, r->name, err, sizeof err))) {
        answer_error(m, to, "backup", err);
        reply_free(&m->bk_to);
    }
}

/* A step; once the backup is done or failed, its answer. */
static void backup_tick(struct maint *m)
{
    char err[1024];

    switch (backup_step(m->bk, err, sizeof err)) {
    case BACKUP_MORE:
        return;
    case BACKUP_DONE:
        admin_ok(&m->out, "backup");
        backup_result(m->bk, &m->out);
        if (!admin_end(&m->out))
            send_to(m, &m->bk_to, &m->out);
        break;
    case BACKUP_FAILED:
        answer_error(m, &m->bk_to, "backup", err);
        break;
    }
    backup_free(m->bk);
    m->bk = NULL;
    reply_free(&m->bk_to);
}

/* --- integrity_check and stats, in a thread ----------------------------------------- */

static long long one_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;

    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long long file_size(const char *path, const char *suffix)
{
    struct stat st;
    char *p = util_join(path, suffix);
    long long n = p && !stat(p, &st) ? (long long)st.st_size : 0;

    free(p);
    return n;
}

static void run_integrity(struct job *j, sqlite3 *h)
{
    sqlite3_stmt *st;
    char sql[64];
    int n = 0, ok = 0, rc;

    snprintf(sql, sizeof sql, "PRAGMA integrity_check(%d)", INTEGRITY_MAX);
    jb_puts(&j->out, ",\"problems\":[");
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            if (t && !strcmp(t, "ok")) {
                ok = 1;
                continue;
            }
            if (n++)
                jb_putc(&j->out, ',');
            jb_cstr(&j->out, t);
        }
        if (rc != SQLITE_DONE) {
            if (n++)
                jb_putc(&j->out, ',');
            jb_cstr(&j->out, sqlite3_errmsg(h));
        }
    }
    sqlite3_finalize(st);
    jb_puts(&j->out, "],\"result\":");
    jb_cstr(&j->out, ok && !n ? "ok" : "problems");
}

static void run_stats(struct job *j, sqlite3 *h)
{
    const struct schema *s = j->m->o.schema;
    char sql[1024];
    int i, n = 0;

    jb_puts(&j->out, ",\"tables\":{");
    for (i = 0; i < s->ntables; i++) {
        if (!strncmp(s->tables[i].name, "sqlite_", 7))
            continue;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", s->tables[i].quoted);
        if (n++)
            jb_putc(&j->out, ',');
        jb_cstr(&j->out, s->tables[i].name);
        jb_putc(&j->out, ':');
        jb_int(&j->out, one_int(h, sql));
    }
    jb_puts(&j->out, "},\"file_bytes\":");
    jb_int(&j->out, file_size(j->m->o.db_path, ""));
    jb_puts(&j->out, ",\"wal_bytes\":");
    jb_int(&j->out, file_size(j->m->o.db_path, "-wal"));
    jb_puts(&j->out, ",\"page_size\":");
    jb_int(&j->out, one_int(h, "PRAGMA page_size"));
    jb_puts(&j->out, ",\"page_count\":");
    jb_int(&j->out, one_int(h, "PRAGMA page_count"));
    jb_puts(&j->out, ",\"freelist_count\":");
    jb_int(&j->out, one_int(h, "PRAGMA freelist_count"));
    jb_puts(&j->out, ",\"ids_kept\":");
    jb_int(&j->out, one_int(h, "SELECT count(*) FROM mosqlite_applied"));
    jb_puts(&j->out, ",\"rejected_kept\":");
    jb_int(&j->out, one_int(h, "SELECT count(*) FROM mosqlite_rejected"));
    jb_puts(&j->out, j->paused ? ",\"paused\":true" : ",\"paused\":false");
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    sqlite3 *h = NULL;
    long long t0 = util_now_ms();

    admin_ok(&j->out, admin_names[j->cmd]);
    if (sqlite3_open_v2(j->m->o.db_path, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        admin_error(&j->out, admin_names[j->cmd], h ? sqlite3_errmsg(h) : "cannot open the database");
        sqlite3_close(h);
        atomic_store(&j->done, 1);
        return NULL;
    }
    sqlite3_busy_timeout(h, (int)j->m->o.busy_timeout_ms);
    if (j->cmd == ADMIN_INTEGRITY)
        run_integrity(j, h);
    else
        run_stats(j, h);
    sqlite3_close(h);
    jb_puts(&j->out, ",\"ms\":");
    jb_int(&j->out, util_now_ms() - t0);
    admin_end(&j->out);
    atomic_store(&j->done, 1);
    return NULL;
}

static void job_start(struct maint *m, int cmd, const struct reply *to)
{
    struct job *j;
    char err[256];

    if (m->job) {
        snprintf(err, sizeof err, "%s is still running: one at a time", admin_names[m->job->cmd]);
        answer_error(m, to, admin_names[cmd], err);
        return;
    }
    if (!(j = calloc(1, sizeof *j)) || reply_set(&j->to, to->topic, to->corr, to->corrlen)) {
        if (j)
            reply_free(&j->to);
        free(j);
        answer_error(m, to, admin_names[cmd], "out of memory");
        return;
    }
    j->cmd = cmd;
    j->m = m;
    j->paused = m->paused;
    atomic_init(&j->done, 0);
    if (pthread_create(&j->th, NULL, job_main, j)) {
        reply_free(&j->to);
        free(j);
        answer_error(m, to, admin_names[cmd], "cannot start a thread");
        return;
    }
    m->job = j;
}

static void job_free(struct job *j)
{
    pthread_join(j->th, NULL);
    jb_free(&j->out);
    reply_free(&j->to);
    free(j);
}

/* --- the quick ones ------------------------------------------------------------------ */

static void checkpoint(struct maint *m, const struct reply *to)
{
    long long t0 = util_now_ms();
    int log = 0, done = 0, rc;

    rc = sqlite3_wal_checkpoint_v2(m->o.h, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        answer_error(m, to, "checkpoint", sqlite3_errmsg(m->o.h));
        return;
    }
    admin_ok(&m->out, "checkpoint");
    jb_puts(&m->out, ",\"wal_frames\":");
    jb_int(&m->out, log);
    jb_puts(&m->out, ",\"checkpointed\":");
    jb_int(&m->out, done);
    /* BUSY: readers still used part of the WAL: copied what it could, not truncated. */
    jb_puts(&m->out, rc == SQLITE_OK ? ",\"complete\":true" : ",\"complete\":false");
    jb_puts(&m->out, ",\"ms\":");
    jb_int(&m->out, util_now_ms() - t0);
    if (!admin_end(&m->out))
        send_to(m, to, &m->out);
}

static void optimize(struct maint *m, const struct reply *to)
{
    long long t0 = util_now_ms();
    sqlite3 *h = NULL;
    char sql[128], *emsg = NULL;
    int rc;

    snprintf(sql, sizeof sql, "PRAGMA analysis_limit=%d; PRAGMA optimize;", OPTIMIZE_LIMIT);
    rc = sqlite3_open_v2(m->o.db_path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(h, (int)m->o.busy_timeout_ms);
        rc = sqlite3_exec(h, sql, NULL, NULL, &emsg);
    }
    if (rc != SQLITE_OK) {
        answer_error(m, to, "optimize", emsg ? emsg : h ? sqlite3_errmsg(h) : "cannot open the database");
        sqlite3_free(emsg);
        sqlite3_close(h);
        return;
    }
    sqlite3_close(h);
    admin_ok(&m->out, "optimize");
    jb_puts(&m->out, ",\"ms\":");
    jb_int(&m->out, util_now_ms() - t0);
    if (!admin_end(&m->out))
        send_to(m, to, &m->out);
}

static void pause_resume(struct maint *m, int pause, const struct reply *to)
{
    long long retry_at;

    if (pause != m->paused)
        log_info(pause ? "paused by an admin command" : "resumed by an admin command");
    m->paused = pause;
    if (pause)
        mq_accept(m->o.mq, 0);
    else if (!batch_stalled(m->o.batch, &retry_at))
        mq_accept(m->o.mq, 1);
    batch_paused(m->o.batch, pause);
    admin_ok(&m->out, pause ? "pause" : "resume");
    jb_puts(&m->out, pause ? ",\"paused\":true" : ",\"paused\":false");
    if (!admin_end(&m->out))
        send_to(m, to, &m->out);
}

/* A command with an id run before (still kept): answered, not run again. 1 when it
 * was; else its id is kept (when it has one) and 0. */
static int seen_before(struct maint *m, const struct admin_req *r, const struct reply *to)
{
    int i;

    if (!r->id[0])
        return 0;
    for (i = 0; i < ADMIN_IDS_KEPT; i++) {
        if (strcmp(m->ids[i], r->id))
            continue;
        if (m->id_cmd[i] != r->cmd) {
            char why[ADMIN_ID_MAX + 96];
            snprintf(why, sizeof why, "id \"%s\" was already used by a %s command", r->id,
                     admin_names[m->id_cmd[i]]);
            if (!admin_error(&m->out, admin_names[r->cmd], why))
                send_to(m, to, &m->out);
            return 1;
        }
        log_info("admin %s %s: run before, not again", admin_names[r->cmd], r->id);
        admin_ok(&m->out, admin_names[r->cmd]);
        jb_puts(&m->out, ",\"id\":");
        jb_cstr(&m->out, r->id);
        jb_puts(&m->out, ",\"duplicate\":true");
        if (!admin_end(&m->out))
            send_to(m, to, &m->out);
        return 1;
    }
    memcpy(m->ids[m->id_next], r->id, sizeof r->id);
    m->id_cmd[m->id_next] = r->cmd;
    m->id_next = (m->id_next + 1) % ADMIN_IDS_KEPT;
    return 0;
}

void maint_command(struct maint *m, const struct admin_req *r, const char *to_topic,
                   const void *corr, int corrlen)
{
    struct reply to;

    to.topic = (char *)to_topic;
    to.corr = (void *)corr;
    to.corrlen = corrlen;
    if (seen_before(m, r, &to))
        return;
    log_info("admin %s%s%s", admin_names[r->cmd], r->name[0] ? " " : "", r->name);
    switch (r->cmd) {
    case ADMIN_BACKUP:     backup_begin(m, r, &to); break;
    case ADMIN_CHECKPOINT: checkpoint(m, &to); break;
    case ADMIN_INTEGRITY:  job_start(m, ADMIN_INTEGRITY, &to); break;
    case ADMIN_OPTIMIZE:   optimize(m, &to); break;
    case ADMIN_STATS:      job_start(m, ADMIN_STATS, &to); break;
    case ADMIN_PAUSE:      pause_resume(m, 1, &to); break;
    case ADMIN_RESUME:     pause_resume(m, 0, &to); break;
    }
}

void maint_tick(struct maint *m)
{
    if (!m)
        return;
    if (m->paused)
        mq_accept(m->o.mq, 0);     /* a stall that ended must not reopen it */
    if (m->bk)
        backup_tick(m);
    if (m->job && atomic_load(&m->job->done)) {
        send_to(m, &m->job->to, &m->job->out);
        job_free(m->job);
        m->job = NULL;
    }
}

int maint_wait_ms(const struct maint *m, int max_ms)
{
    if (!m)
        return max_ms;
    if ((m->bk && backup_ready(m->bk)) ||
        (m->job && atomic_load(&m->job->done)))
        return 0;
    if ((m->job || m->bk) && max_ms > JOB_POLL_MS)
        return JOB_POLL_MS;
    return max_ms;
}

int maint_backup_busy(const struct maint *m)
{
    return m && m->bk;
}

int maint_paused(const struct maint *m)
{
    return m ? m->paused : 0;
}

void maint_free(struct maint *m)
{
    if (!m)
        return;
    if (m->bk) {
        log_warn("stopping: backup to %s abandoned", backup_path(m->bk));
        backup_free(m->bk);
        reply_free(&m->bk_to);
    }
    if (m->job)
        job_free(m->job);
    jb_free(&m->out);
    free(m);
}
