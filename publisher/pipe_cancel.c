/* pipe_cancel.c: the build wrapper's ear for a cancel (see pipe_cancel.h).
 *
 * An operator cancels a running build through the writer, as an ordinary write: an
 * update of the build's row to `cancelled` where it is this attempt and `running`
 * (durable, applied once, answered). The wrapper learns of it from the row: a
 * connection of its own subscribes to PREFIX/events/BUILD_TABLE, and at each connect
 * (the events of a time away are not kept for it) asks the named query `build` for the
 * row, when the row is the example schema's (`builds`, by `id`). When this attempt's
 * row says `cancelled`, the command's process group gets SIGTERM, and SIGKILL if it
 * is still there GRACE_S seconds later. */
#include "pipe_cancel.h"
#include "pipe_build.h"
#include "pipe_command.h"
#include "log.h"

#include <cJSON.h>
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define GRACE_S 10

/* One wrapper per process: the state is static, so that the grace timer can outlive
 * the run that started it. */
static struct {
    struct mosquitto *m;
    cJSON *where;                       /* the row: --build-where plus the attempt */
    char *events, *reply, *query;       /* topics, and the query to ask (NULL: none) */
    char *query_topic, *reply_filter;
    volatile int cancelled, ended;
} w;

/* The row is this attempt's, and says cancelled. */
static int is_cancelled(const cJSON *row)
{
    const cJSON *k, *v = cJSON_GetObjectItemCaseSensitive(row, "status");

    if (!cJSON_IsString(v) || strcmp(v->valuestring, "cancelled"))
        return 0;
    for (k = w.where->child; k; k = k->next) {
        if (!(v = cJSON_GetObjectItemCaseSensitive(row, k->string)) || !cJSON_Compare(k, v, 1))
            return 0;
    }
    return 1;
}

static void *grace(void *arg)
{
    int i;

    for (i = 0; i < GRACE_S * 10 && !w.ended; i++)
        usleep(100000);
    if (!w.ended && command_stop(SIGKILL))
        log_warn("the command did not end within %d s of SIGTERM: SIGKILL sent", GRACE_S);
    return NULL;
}

static void cancel_now(void)
{
    pthread_t th;

    if (w.cancelled || w.ended)
        return;
    w.cancelled = 1;
    log_warn("the build was cancelled (its row says cancelled): stopping the command");
    command_stop(SIGTERM);
    if (!pthread_create(&th, NULL, grace, NULL))
        pthread_detach(th);
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    cJSON *j, *rows, *row;

    if (!msg->payloadlen || !(j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen)))
        return;
    rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    cJSON_ArrayForEach(row, rows)
        if (cJSON_IsObject(row) && is_cancelled(row))
            cancel_now();
    cJSON_Delete(j);
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    if (rc)
        return;
    mosquitto_subscribe(m, NULL, w.events, 1);
    if (w.query) {
        mosquitto_subscribe(m, NULL, w.reply_filter, 1);
        /* Behind the SUBSCRIBE: the broker takes a connection's packets in order. */
        mosquitto_publish(m, NULL, w.query_topic, (int)strlen(w.query), w.query, 1, false);
    }
}

/* Quiet: the deliverer says when the broker is away. */
static void on_log(struct mosquitto *m, void *arg, int level, const char *s) {}

/* "A/B/C" (a new string, NULL when out of memory). */
static char *topic3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);

    if (s)
        snprintf(s, n, "%s/%s%s%s", a, b, *c ? "/" : "", c);
    return s;
}

int cancel_watch_start(const struct pipe_conf *pc, const cJSON *row_where)
{
    const struct mosqlite_options *mo = &pc->mo;
    const char *prefix = mo->prefix ? mo->prefix : "mosqlite";
    char id[MOSQLITE_ID_LEN + 1], cid[64];
    const cJSON *key = row_where->child;
    int rc;

    if (!(w.where = cJSON_Duplicate(row_where, 1)) || mosqlite_new_id(id))
        return -1;
    snprintf(cid, sizeof cid, "mosqlite-pub-watch-%s", id);
    w.events = topic3(prefix, "events", pc->build_table);
    w.reply = topic3(prefix, "reply", cid);
    w.query_topic = topic3(prefix, "query", "");
    /* The row of the example schema: ask the named query `build` at each connect. */
    if (!strcasecmp(pc->build_table, "builds") && !pc->build_where && key && !strcmp(key->string, "id")) {
        cJSON *q = cJSON_CreateObject(), *p;
        char *rt = topic3(w.reply, "build", "");
        if (q && rt) {
            cJSON_AddStringToObject(q, "query", "build");
            p = cJSON_AddObjectToObject(q, "params");
            cJSON_AddItemToObject(p, "id", cJSON_Duplicate(key, 1));
            cJSON_AddStringToObject(q, "reply_to", rt);
            w.query = cJSON_PrintUnformatted(q);
        }
        free(rt);
        cJSON_Delete(q);
    }
    w.reply_filter = w.reply ? topic3(w.reply, "#", "") : NULL;
    if (!w.events || !w.reply_filter || !w.query_topic)
        return -1;
    mosquitto_lib_init();
    if (!(w.m = mosquitto_new(cid, true, NULL)))
        return -1;
    mosquitto_connect_callback_set(w.m, on_connect);
    mosquitto_message_callback_set(w.m, on_message);
    mosquitto_log_callback_set(w.m, on_log);
    mosquitto_reconnect_delay_set(w.m, 1, 4, true);
    if ((mo->username && mosquitto_username_pw_set(w.m, mo->username, mo->password)) ||
        ((mo->cafile || mo->certfile) &&
         mosquitto_tls_set(w.m, mo->cafile, NULL, mo->certfile, mo->keyfile, NULL)) ||
        (mo->tls_insecure && mosquitto_tls_insecure_set(w.m, true))) {
        log_warn("a cancel of the build cannot be heard: bad connection options");
        return -1;
    }
    rc = mosquitto_connect_async(w.m, mo->host ? mo->host : "127.0.0.1", mo->port ? mo->port : 1883,
                                 mo->keepalive > 0 ? mo->keepalive : 30);
    (void)rc;                           /* not yet: the loop connects when it can */
    if (mosquitto_loop_start(w.m) != MOSQ_ERR_SUCCESS) {
        log_warn("a cancel of the build cannot be heard: no network thread");
        return -1;
    }
    return 0;
}

int cancel_watch_stop(void)
{
    w.ended = 1;
    if (w.m) {
        mosquitto_disconnect(w.m);
        mosquitto_loop_stop(w.m, false);
        mosquitto_destroy(w.m);
        w.m = NULL;
    }
    return w.cancelled;
}
