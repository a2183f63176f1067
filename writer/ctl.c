/* ctl.c: the door for control messages (see ctl.h): the table of control topics, the
 * strict read of every payload, the one rule for where an answer goes. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "jobq.h"
#include "log.h"
#include "maint.h"
#include "query.h"
#include "req.h"
#include "snapshot.h"
#include "sync.h"
#include "util.h"

struct route;

static void run_query(struct ctl *c, const struct route *r, const struct ctl_msg *m);
static void run_admin(struct ctl *c, const struct route *r, const struct ctl_msg *m);
static void run_snapshot(struct ctl *c, const struct route *r, const struct ctl_msg *m);

/* The control topics. A handler gets an object read strictly and a place to answer. */
static const struct route {
    const char *suffix;       /* the topic: PREFIX/SUFFIX */
    const char *key;          /* what an error answer names ({"KEY": ..., "error"}), or NULL */
    void (*run)(struct ctl *c, const struct route *r, const struct ctl_msg *m);
} routes[] = {
    {"query",    "query", run_query},
    {"admin",    "cmd",   run_admin},
    {"snapshot", NULL,    run_snapshot},
};

#define NROUTES ((int)(sizeof routes / sizeof routes[0]))

struct ctl {
    struct ctl_limits lim;
    struct ctl_parts parts;
    struct mq *mq;
    char *topics[NROUTES];    /* PREFIX/SUFFIX of each route */
    char *t_acks;             /* PREFIX/replica/+/ack, with parts.sync */
    struct ctl_msg msg;       /* the one being handled */
    struct jbuf out;          /* its answer */
};

/* --- reading: pure --------------------------------------------------------------------- */

/* The member of obj named key, when it is there exactly once. */
static const cJSON *member_once(const cJSON *obj, const char *key)
{
    const cJSON *c, *found = NULL;

    if (!cJSON_IsObject(obj))
        return NULL;
    for (c = obj->child; c; c = c->next)
        if (!strcmp(c->string, key)) {
            if (found)
                return NULL;
            found = c;
        }
    return found;
}

int ctl_read(const struct ctl_limits *lim, const char *payload, size_t len, const char *resp_topic,
             struct ctl_msg *m, char *err, size_t errlen)
{
    char rterr[512] = "";
    const cJSON *rt;
    int rc;

    ctl_msg_clear(m);
    rc = json_read(&m->root, &m->nums, lim->max_payload, lim->max_depth, payload, len, err, errlen);
    /* Where the answer goes, even when the rest cannot be read: reply_to (not when it is
     * given twice: which one is meant would be a guess; a string cut at a NUL is read
     * with U+0001 there, which no topic may hold), else the MQTT 5 Response Topic. */
    rt = member_once(m->root, "reply_to");
    if (rt && !cJSON_IsString(rt))
        util_fail(rterr, sizeof rterr, "\"reply_to\" must be a string (a topic name), not %s",
                  json_type_name(rt));
    else if (rt && !req_reply_check(rt->valuestring, lim->prefix, rterr, sizeof rterr))
        m->to = rt->valuestring;
    if (!m->to && resp_topic && req_reply_topic_ok(resp_topic, lim->prefix))
        m->to = resp_topic;
    if (rc)
        return -1;
    if (rterr[0])
        return util_fail(err, errlen, "%s", rterr);
    return 0;
}

void ctl_msg_clear(struct ctl_msg *m)
{
    cJSON_Delete(m->root);
    m->root = NULL;
    m->to = NULL;
    m->corr = NULL;
    m->corrlen = 0;
}

void ctl_msg_free(struct ctl_msg *m)
{
    ctl_msg_clear(m);
    json_nums_free(&m->nums);
}

int ctl_error_json(struct jbuf *b, const char *key, const char *name, const char *error)
{
    jb_reset(b);
    jb_putc(b, '{');
    if (key) {
        jb_cstr(b, key);
        jb_putc(b, ':');
        jb_cstr(b, name);
        jb_putc(b, ',');
    }
    jb_puts(b, "\"error\":");
    jb_cstr(b, error);
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}

/* --- answering ------------------------------------------------------------------------- */

static void answer(struct ctl *c, const struct ctl_msg *m, const struct jbuf *b)
{
    if (!b->oom)
        mq_publish(c->mq, m->to, b->s, b->len, 1, 0, m->corr, m->corrlen);
}

/* A refusal: logged, and answered in the route's shape. */
static void refuse(struct ctl *c, const struct route *r, const struct ctl_msg *m, const char *name,
                   const char *error)
{
    log_warn("%s/%s: %s", c->lim.prefix, r->suffix, error);
    if (!ctl_error_json(&c->out, r->key, name, error))
        answer(c, m, &c->out);
}

/* --- the handlers ---------------------------------------------------------------------- */

static void run_query(struct ctl *c, const struct route *r, const struct ctl_msg *m)
{
    (void)r;
    if (!c->parts.queries) {
        log_debug("%s/query: no named queries are defined: not answered", c->lim.prefix);
        return;
    }
    query_run(c->parts.queries, m->root, &c->out);
    answer(c, m, &c->out);
}

static void run_admin(struct ctl *c, const struct route *r, const struct ctl_msg *m)
{
    struct admin_req a;
    char err[512];

    if (admin_read(m->root, &a, err, sizeof err))
        refuse(c, r, m, a.cmd >= 0 ? admin_names[a.cmd] : NULL, err);
    else if ((ADMIN_IS_JOB(a.cmd) || a.cmd == ADMIN_WORKERS) && !c->parts.jobq)
        refuse(c, r, m, admin_names[a.cmd], "jobs are not enabled in this writer");
    else if (a.cmd == ADMIN_WORKERS) {
        jobq_workers_answer(c->parts.jobq, a.limit, &c->out);
        answer(c, m, &c->out);
    }
    else if (ADMIN_IS_JOB(a.cmd)) {
        if (!m->to)
            log_warn("%s/admin: %s: no usable reply_to to answer on: run all the same", c->lim.prefix,
                     admin_names[a.cmd]);
        if (jobq_admin(c->parts.jobq, admin_names[a.cmd], a.job, a.queue[0] ? a.queue : NULL, m->to, m->corr,
                       m->corrlen))
            refuse(c, r, m, admin_names[a.cmd], "out of memory");
    } else
        maint_command(c->parts.maint, &a, m->to, m->corr, m->corrlen);
}

static void run_snapshot(struct ctl *c, const struct route *r, const struct ctl_msg *m)
{
    char err[512];

    if (snapshot_request(c->parts.snap, m->root, m->to, err, sizeof err))
        refuse(c, r, m, NULL, err);
}

/* --- the door -------------------------------------------------------------------------- */

void ctl_receive(void *ud, const char *topic, const char *payload, size_t len,
                 const char *resp_topic, const void *corr, int corrlen)
{
    struct ctl *c = ud;
    struct ctl_msg *m = &c->msg;
    char err[512];
    int i, rc;

    const char *id;
    size_t idlen;
    long long seq, epoch;

    /* A replica's acknowledgement (sync.h): no answer, no reply_to. */
    if (c->parts.sync && (id = sync_ack_id(topic, c->lim.prefix, &idlen))) {
        if (sync_ack_read(payload, len, &seq, &epoch, err, sizeof err))
            log_warn("%s: %s: ignored", topic, err);
        else
            sync_ack(c->parts.sync, id, idlen, seq, epoch, util_now_ms());
        return;
    }
    for (i = 0; i < NROUTES && strcmp(topic, c->topics[i]); i++)
        ;
    if (i == NROUTES) {
        log_warn("a message on %s, which is not a control topic, ignored", topic);
        return;
    }
    rc = ctl_read(&c->lim, payload, len, resp_topic, m, err, sizeof err);
    m->corr = corr;
    m->corrlen = corrlen;
    if (!m->to)
        log_warn("%s: %s%sno usable reply_to (or MQTT 5 Response Topic) to answer on: dropped",
                 topic, rc ? err : "", rc ? "; " : "");
    else if (rc)
        refuse(c, &routes[i], m, NULL, err);
    else
        routes[i].run(c, &routes[i], m);
    ctl_msg_clear(m);
}

struct ctl *ctl_new(const struct ctl_limits *lim)
{
    struct ctl *c = calloc(1, sizeof *c);
    int i;

    if (!c)
        return NULL;
    c->lim = *lim;
    for (i = 0; i < NROUTES; i++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "/%s", routes[i].suffix);
        if (!(c->topics[i] = util_join(lim->prefix, suffix))) {
            ctl_free(c);
            return NULL;
        }
    }
    return c;
}

int ctl_open(struct ctl *c, struct mq *mq, const struct ctl_parts *parts)
{
    int i;

    c->mq = mq;
    c->parts = *parts;
    for (i = 0; i < NROUTES; i++)
        if (mq_listen(mq, c->topics[i]))
            return -1;
    if (parts->sync && (!(c->t_acks = util_join(c->lim.prefix, "/replica/+/ack")) || mq_listen(mq, c->t_acks)))
        return -1;
    return 0;
}

void ctl_free(struct ctl *c)
{
    int i;

    if (!c)
        return;
    for (i = 0; i < NROUTES; i++)
        free(c->topics[i]);
    free(c->t_acks);
    ctl_msg_free(&c->msg);
    jb_free(&c->out);
    free(c);
}
