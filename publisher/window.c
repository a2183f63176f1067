/* window.c: the requests a client has outstanding. A fixed array of slots (the
 * window) so memory stays bounded; a map from MQTT mid to slot for PUBCOMP, and a hash
 * from request id to slot for receipts.
 *
 * A request's life: E_SENDING (given to libmosquitto, waiting for PUBCOMP of its latest
 * publish) -> E_WAITING (with receipts: the broker has it, waiting for the receipt;
 * or the broker refused it, or there was no connection yet) -> published again at
 * retry_at -> ... -> E_DONE (finished, its result not yet delivered) -> E_FREE. A
 * request answered "waiting" (it names "after" a request the writer has not applied
 * yet) is not finished: it waits in E_WAITING, held until the receipt of that request
 * comes when this client has it outstanding (or republished with an earlier one, in
 * order), else published again after a short delay. A
 * request in E_SENDING is libmosquitto's to resend on reconnect, so without receipts
 * it is never published twice by us: a second copy would be a second row. */
#include "internal.h"

#include <mqtt_protocol.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* ---- the error message, for client.c too (which calls into this file; nothing here
 * calls client.c); the clock is util.h's ---- */

int mosqlite__seterr(mosqlite_client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the id hash (lock held) ---- */

static unsigned hash_id(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void hash_add(mosqlite_client *c, int i)
{
    unsigned b = hash_id(c->ents[i].id) & (c->nbuckets - 1);
    c->ents[i].hnext = c->buckets[b];
    c->buckets[b] = i;
    c->ents[i].hashed = 1;
}

static void hash_del(mosqlite_client *c, int i)
{
    int *p = &c->buckets[hash_id(c->ents[i].id) & (c->nbuckets - 1)];

    for (; *p >= 0; p = &c->ents[*p].hnext)
        if (*p == i) {
            *p = c->ents[i].hnext;
            break;
        }
    c->ents[i].hashed = 0;
}

static int hash_find(mosqlite_client *c, const char *id)
{
    int i = c->buckets[hash_id(id) & (c->nbuckets - 1)];

    for (; i >= 0; i = c->ents[i].hnext)
        if (!strcmp(c->ents[i].id, id) && c->ents[i].state != E_DONE)
            return i;
    return -1;
}

static void set_held(mosqlite_client *c, struct entry *e, int held)
{
    c->nheld += held - e->held;
    e->held = held;
}

/* Lock held. Slot i, in E_WAITING, was answered "waiting" for e->after: held until
 * that request's receipt when it is outstanding here, else published again soon
 * (from 50 ms, doubling to 16 s: it may have been answered just before). */
static void hold(mosqlite_client *c, int i, double now)
{
    struct entry *e = &c->ents[i];
    int p = *e->after ? hash_find(c, e->after) : -1;

    if (p >= 0 && p != i) {
        set_held(c, e, 1);
        e->retry_at = 1e300;
        return;
    }
    set_held(c, e, 0);
    if (!e->wait_ms)
        e->wait_ms = 50;
    e->retry_at = now + e->wait_ms;
    e->wait_ms = e->wait_ms * 2 > 16000 ? 16000 : e->wait_ms * 2;
}

/* Lock held. The request in slot i is finished: queue its result for delivery, and
 * let those held for it go out again. */
static void finish(mosqlite_client *c, int i, enum mosqlite_status status, char *error)
{
    struct entry *e = &c->ents[i];
    int k;

    set_held(c, e, 0);
    for (k = 0; c->nheld > 0 && k < c->window; k++) {
        struct entry *w = &c->ents[k];
        if (w->held && w->state == E_WAITING && !strcmp(w->after, e->id)) {
            set_held(c, w, 0);
            w->retry_at = 0;
        }
    }

    e->state = E_DONE;
    e->status = status;
    e->error = error;
    if (e->hashed)
        hash_del(c, i);
    c->doneq[(c->dhead + c->ndone++) % c->window] = i;
    c->progress_at = util_now_exact_ms();
    if (status == MOSQLITE_APPLIED)
        c->st.applied++;
    else if (status == MOSQLITE_DUPLICATE)
        c->st.duplicate++;
    else if (status == MOSQLITE_REJECTED)
        c->st.rejected++;
    else if (status == MOSQLITE_SCHEDULED)
        c->st.scheduled++;
    else if (status == MOSQLITE_CANCELLED)
        c->st.cancelled++;
    pthread_cond_broadcast(&c->cond);
}

/* A refusal the broker would repeat: publishing again cannot help. Others (0x97 quota
 * exceeded, 0x80 unspecified, ...) may pass later. */
static int refused_for_good(int reason)
{
    return reason == MQTT_RC_NOT_AUTHORIZED || reason == MQTT_RC_TOPIC_NAME_INVALID ||
           reason == MQTT_RC_PACKET_TOO_LARGE || reason == MQTT_RC_PAYLOAD_FORMAT_INVALID;
}

/* The result's error for a refused publish on topic: a heap string, or NULL. */
static char *refusal(const char *topic, int reason)
{
    char buf[600];

    if (reason == MQTT_RC_NOT_AUTHORIZED)
        snprintf(buf, sizeof buf, "refused by the broker's ACL: this user may not publish on %s",
                 topic);
    else
        snprintf(buf, sizeof buf, "refused by the broker: %s (reason code 0x%02x) on %s",
                 mosquitto_reason_string(reason), reason, topic);
    return strdup(buf);
}

void mosqlite__on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                          const mosquitto_property *props)
{
    mosqlite_client *c = obj;
    int i;
    struct entry *e;

    pthread_mutex_lock(&c->lock);
    i = c->by_mid[mid & 0xffff];
    e = i >= 0 ? &c->ents[i] : NULL;
    if (e && e->state == E_SENDING && e->mid == mid) {
        c->by_mid[mid & 0xffff] = -1;
        /* 0x92 (packet id not found) answers a PUBREL we resent after a reconnect:
         * the broker had already released the message, so it is done. Any other
         * failure code comes with PUBREC: refused, the broker does not have it; for
         * now (quota full: published again) or for good (not authorized, ...). */
        if (reason >= 0x80 && reason != MQTT_RC_PACKET_ID_NOT_FOUND && refused_for_good(reason)) {
            c->st.refused++;
            finish(c, i, MOSQLITE_REFUSED, refusal(e->topic, reason));
        } else if (reason >= 0x80 && reason != MQTT_RC_PACKET_ID_NOT_FOUND) {
            e->state = E_WAITING;
            e->retry_at = util_now_exact_ms() + 100;
            c->st.refused++;
        } else {
            if (!e->sent_counted) {
                e->sent_counted = 1;
                c->st.sent++;
            }
            if (c->receipts) {
                e->state = E_WAITING;
                e->retry_at = util_now_exact_ms() + e->backoff_ms;
                e->backoff_ms = e->backoff_ms * 2 > 16000 ? 16000 : e->backoff_ms * 2;
                if (e->waited) {
                    e->waited = 0;
                    hold(c, i, util_now_exact_ms());
                }
            } else {
                finish(c, i, MOSQLITE_SENT, NULL);
            }
        }
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

void mosqlite__on_message(struct mosquitto *mosq, void *obj,
                          const struct mosquitto_message *m, const mosquitto_property *props)
{
    mosqlite_client *c = obj;
    char id[MOSQLITE_ID_MAX + 1], after[MOSQLITE_ID_MAX + 1];
    enum mosqlite_status status;
    char *error;
    long changes;
    int i, rc;

    if (strcmp(m->topic, c->reply_topic) ||
        (rc = mosqlite__receipt(m->payload, (size_t)m->payloadlen, id, &status, &error, &changes, after)) < 0)
        return;
    pthread_mutex_lock(&c->lock);
    i = hash_find(c, id);
    if (rc == 1) {
        /* Waiting: not applied; published again once what it follows is. */
        if (i >= 0) {
            struct entry *e = &c->ents[i];
            strcpy(e->after, after);
            if (e->state == E_SENDING)
                e->waited = 1;      /* its latest publish is not complete yet */
            else
                hold(c, i, util_now_exact_ms());
            pthread_cond_broadcast(&c->cond);
        }
    } else if (i >= 0) {
        c->ents[i].changes = changes;
        finish(c, i, status, error);
    } else {
        free(error);                /* a receipt for a copy of a request already done */
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the window (caller's thread, lock held) ---- */

/* Publish slot i (again). */
static int send_entry(mosqlite_client *c, int i)
{
    struct entry *e = &c->ents[i];
    int mid = 0, rc;

    rc = mosquitto_publish_v5(c->mosq, &mid, e->topic, (int)e->len, e->payload, 2, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST)
        return mosqlite__seterr(c, MOSQLITE_EINVAL, "publish: %s", mosquitto_strerror(rc));
    /* NO_CONN/CONN_LOST: libmosquitto has queued it and sends it on reconnect. */
    e->state = E_SENDING;
    e->mid = mid;
    set_held(c, e, 0);
    if (e->tries++ > 0)
        c->st.republished++;
    c->by_mid[mid & 0xffff] = i;
    return MOSQLITE_OK;
}

/* Republish what is due, in publish order, and with it everything published after
 * it that waits for its receipt: a request the broker lost may have been lost with
 * those after it, and sent again alone it would be applied after them. Only while
 * connected: a request waiting for the connection is not handed to libmosquitto
 * twice. */
static void scan(mosqlite_client *c, double now)
{
    unsigned long long first = 0;
    int i, n = 0, k, found = 0;

    if (now < c->next_scan || !c->connected || (c->receipts && !c->subscribed))
        return;
    c->next_scan = now + 50;
    for (i = 0; i < c->window; i++) {
        struct entry *e = &c->ents[i];
        if (e->state == E_WAITING && e->retry_at <= now && (!found || e->order < first)) {
            first = e->order;
            found = 1;
        }
    }
    if (!found)
        return;
    for (i = 0; i < c->window; i++)
        if (c->ents[i].state == E_WAITING && c->ents[i].order >= first)
            c->batch[n++] = i;
    /* Insertion sort by publish order: the window is small and mostly in order. */
    for (i = 1; i < n; i++)
        for (k = i; k > 0 && c->ents[c->batch[k - 1]].order > c->ents[c->batch[k]].order; k--) {
            int t = c->batch[k];
            c->batch[k] = c->batch[k - 1];
            c->batch[k - 1] = t;
        }
    for (i = 0; i < n; i++)
        send_entry(c, c->batch[i]);
}

/* Hand finished results to the callback and free their slots. Drops the lock while
 * the callback runs; finished slots are not touched by the network thread. */
void mosqlite__deliver(mosqlite_client *c)
{
    int n = 0, k;

    while (c->ndone > 0) {
        c->batch[n++] = c->doneq[c->dhead];
        c->dhead = (c->dhead + 1) % c->window;
        c->ndone--;
    }
    if (!n)
        return;
    for (k = 0; k < n; k++) {
        struct entry *e = &c->ents[c->batch[k]];
        if (e->tag == &c->send_done) {
            e->tag = NULL;
            c->send_done = 1;
            c->send_status = e->status;
            snprintf(c->send_err, sizeof c->send_err, "%s", e->error ? e->error : "");
        }
    }
    if (c->cb) {
        pthread_mutex_unlock(&c->lock);
        for (k = 0; k < n; k++) {
            struct entry *e = &c->ents[c->batch[k]];
            struct mosqlite_result r = {e->id, e->status, e->error, e->tag, e->changes};
            c->cb(c, &r, c->cb_arg);
        }
        pthread_mutex_lock(&c->lock);
    }
    for (k = 0; k < n; k++) {
        struct entry *e = &c->ents[c->batch[k]];
        free(e->topic);
        free(e->payload);
        free(e->error);
        e->topic = e->payload = e->error = NULL;
        c->bytes -= e->len;
        e->state = E_FREE;
        c->nused--;
        c->freelist[c->nfree++] = c->batch[k];
    }
}

/* One step of waiting: deliver, republish, check for the timeout, then sleep on the
 * condition for at most wait_ms. Returns MOSQLITE_ETIMEDOUT when nothing has finished
 * for the client's timeout while requests are outstanding. */
int mosqlite__step(mosqlite_client *c, int wait_ms)
{
    double now = util_now_exact_ms();
    struct timespec ts;
    int nfree = c->nfree;

    mosqlite__deliver(c);
    if (c->nfree != nfree)
        wait_ms = 0;                /* progress made: let the caller use it at once */
    scan(c, now);
    if (c->nused > 0 && c->timeout_ms > 0 && now - c->progress_at >= c->timeout_ms) {
        c->timed_out = 1;
        return mosqlite__seterr(c, MOSQLITE_ETIMEDOUT, "%d request%s unconfirmed after %d s without progress%s",
                      c->nused, c->nused == 1 ? "" : "s", c->timeout_ms / 1000,
                      c->connected ? "" : " (not connected to the broker)");
    }
    if (wait_ms > 0 && c->ndone == 0) {
        ts = util_deadline(CLOCK_MONOTONIC, wait_ms);
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    return MOSQLITE_OK;
}

/* Lock held. Slot i, just taken by mosqlite_publish(), was not published: undo. */
static void unpublish(mosqlite_client *c, int i)
{
    struct entry *e = &c->ents[i];

    if (e->hashed)
        hash_del(c, i);
    free(e->topic);
    free(e->payload);
    e->topic = e->payload = NULL;
    e->state = E_FREE;
    c->nused--;
    c->bytes -= e->len;
    c->st.published--;
    c->freelist[c->nfree++] = i;
}

/* In order (mosqlite_set_in_order): into after, the id of the request the next one
 * follows while that one has no receipt yet, else "". Answered since, it is applied
 * (or rejected), and naming it costs the writer a look-up. */
static void follow(mosqlite_client *c, char *after)
{
    *after = '\0';
    pthread_mutex_lock(&c->lock);
    if (c->in_order && c->has_last) {
        struct entry *l = &c->ents[c->last_i];
        if (l->order == c->last_order && (l->state == E_SENDING || l->state == E_WAITING))
            strcpy(after, l->id);
    }
    pthread_mutex_unlock(&c->lock);
}

int mosqlite_publish(mosqlite_client *c, const char *table, const char *json, void *tag,
                     char *id_out)
{
    char id[MOSQLITE_ID_MAX + 1] = "", after[MOSQLITE_ID_MAX + 1] = "", *payload, *topic;
    size_t len, tlen;
    struct entry *e;
    int i, rc, chain = 0;

    if (id_out)
        *id_out = '\0';
    if (!c->started)
        return mosqlite__seterr(c, MOSQLITE_ESTATE, "not connected");
    if (table && *table && strpbrk(table, "/+#"))
        return mosqlite__seterr(c, MOSQLITE_EINVAL, "table name \"%s\" has a character not allowed in a topic", table);
    follow(c, after);
    /* Checked as the writer checks it; with receipts, given an id and our reply_to. */
    if (!(payload = mosqlite__stamp(json, c->receipts ? c->reply_topic : NULL, after,
                                    c->receipts ? id : NULL, &chain, c->err, sizeof c->err)))
        return strstr(c->err, "out of memory") ? MOSQLITE_ENOMEM : MOSQLITE_EINVAL;
    len = strlen(payload);
    tlen = strlen(c->prefix) + (table ? strlen(table) : 0) + 8;
    if (!(topic = malloc(tlen))) {
        free(payload);
        return mosqlite__seterr(c, MOSQLITE_ENOMEM, "out of memory");
    }
    snprintf(topic, tlen, table && *table ? "%s/write/%s" : "%s/write", c->prefix, table);

    pthread_mutex_lock(&c->lock);
    if (c->nused == 0)
        c->progress_at = util_now_exact_ms();
    while (c->nfree == 0 || (c->nused > 0 && c->bytes + len > c->window_bytes)) {
        if ((rc = mosqlite__step(c, 100)) != MOSQLITE_OK) {
            pthread_mutex_unlock(&c->lock);
            free(payload);
            free(topic);
            return rc;
        }
    }
    i = c->freelist[--c->nfree];
    e = &c->ents[i];
    memset(e, 0, sizeof *e);
    e->topic = topic;
    e->payload = payload;
    e->len = len;
    e->tag = tag;
    e->backoff_ms = c->retry_ms;
    e->changes = -1;
    e->order = c->norder++;
    strcpy(e->id, id);
    c->nused++;
    c->bytes += len;
    c->st.published++;
    if (c->receipts)
        hash_add(c, i);
    if (c->connected && (!c->receipts || c->subscribed)) {
        rc = send_entry(c, i);
    } else {
        e->state = E_WAITING;       /* scan() publishes it once connected */
        rc = MOSQLITE_OK;
    }
    if (rc != MOSQLITE_OK) {        /* libmosquitto would not take it */
        unpublish(c, i);
    } else if (chain && *id) {
        c->has_last = 1;            /* the next request follows this one */
        c->last_i = i;
        c->last_order = e->order;
    }
    mosqlite__deliver(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == MOSQLITE_OK && id_out)
        strcpy(id_out, id);
    return rc;
}

int mosqlite_send(mosqlite_client *c, const char *table, const char *json,
                  enum mosqlite_status *status_out, char *error_out, size_t errlen)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    c->send_done = 0;
    pthread_mutex_unlock(&c->lock);
    if ((rc = mosqlite_publish(c, table, json, &c->send_done, NULL)) != MOSQLITE_OK)
        return rc;
    pthread_mutex_lock(&c->lock);
    while (!c->send_done && (rc = mosqlite__step(c, 100)) == MOSQLITE_OK)
        ;
    mosqlite__deliver(c);
    pthread_mutex_unlock(&c->lock);
    if (!c->send_done)
        return rc;
    if (status_out)
        *status_out = c->send_status;
    if (error_out && errlen)
        snprintf(error_out, errlen, "%s", c->send_err);
    if (c->send_status == MOSQLITE_REJECTED)
        return mosqlite__seterr(c, MOSQLITE_EREJECTED, "rejected: %s", c->send_err);
    if (c->send_status == MOSQLITE_REFUSED)
        return mosqlite__seterr(c, MOSQLITE_EREFUSED, "%s", c->send_err);
    return MOSQLITE_OK;
}

int mosqlite_wait(mosqlite_client *c, int timeout_ms)
{
    double deadline = util_now_exact_ms() + timeout_ms;
    int rc = MOSQLITE_OK;

    pthread_mutex_lock(&c->lock);
    while (c->nused > 0) {
        if ((rc = mosqlite__step(c, 100)) != MOSQLITE_OK)
            break;
        if (timeout_ms >= 0 && util_now_exact_ms() >= deadline && c->nused > 0) {
            c->timed_out = 1;
            rc = mosqlite__seterr(c, MOSQLITE_ETIMEDOUT, "%d request%s unconfirmed after %d ms",
                        c->nused, c->nused == 1 ? "" : "s", timeout_ms);
            break;
        }
    }
    mosqlite__deliver(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int mosqlite_wait_any(mosqlite_client *c, int timeout_ms)
{
    double deadline = util_now_exact_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = MOSQLITE_OK, nused;

    pthread_mutex_lock(&c->lock);
    mosqlite__deliver(c);
    nused = c->nused;
    while (c->nused > 0 && c->nused >= nused) {
        double left = deadline - util_now_exact_ms();
        if (left <= 0)
            break;
        if ((rc = mosqlite__step(c, left < 100 ? (int)left + 1 : 100)) != MOSQLITE_OK)
            break;
    }
    mosqlite__deliver(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int mosqlite_service(mosqlite_client *c)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    rc = mosqlite__step(c, 0);
    mosqlite__deliver(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

