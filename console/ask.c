/* ask.c: the questions mosqlite asks the writer and the reading of its answers
 * (console.h): topics under the prefix, one question with its own reply_to and the
 * wait for the answer, a named query, a field of an answer, a refusal said on stderr. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

static char topic_buf[4][512];

/* PREFIX/suffix in one of a few static buffers. */
const char *cmd_topic(struct console *k, const char *suffix)
{
    static int n;
    char *t = topic_buf[n++ % 4];

    snprintf(t, sizeof topic_buf[0], "%s/%s", k->prefix, suffix);
    return t;
}

/* Ask: publish req (reply_to added) on topic and wait for the answer. EX_DONE with
 * *answer set (a JSON value; NULL if it was not JSON), or another exit code (said on
 * stderr). */
int cmd_ask(struct console *k, const char *to, cJSON *req, int qos, cJSON **answer)
{
    char rt[700], err[512], *payload;
    struct climsg *m;
    int rc, lost;
    double deadline = k->timeout_ms > 0 ? util_now_exact_ms() + k->timeout_ms : -1;

    *answer = NULL;
    snprintf(rt, sizeof rt, "%s/%u", k->reply, ++k->seq);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "reply_to");
    if (!cJSON_AddStringToObject(req, "reply_to", rt) || !(payload = cJSON_PrintUnformatted(req))) {
        log_error("out of memory");
        return EX_FAILED;
    }
    rc = cliconn_publish_wait(k->c, to, payload, qos, 1, err, sizeof err);
    cJSON_free(payload);
    if (rc) {
        log_error("%s", err);
        return rc;
    }
    if (!(m = cliconn_wait(k->c, rt, deadline, k->stop, &lost))) {
        if (lost) {
            log_error("lost the connection to the broker while waiting for the answer");
            return EX_CONNECT;
        }
        if (k->stop && *k->stop)
            return EX_FAILED;
        log_error("no answer from the writer within %d s (is mosqlite-writer running, with prefix "
                  "\"%s\", and not too busy? --timeout waits longer)", k->timeout_ms / 1000, k->prefix);
        return EX_NOANSWER;
    }
    *answer = cJSON_ParseWithLength(m->payload, m->len);
    climsg_free(m);
    if (!*answer) {
        log_error("the answer on %s is not JSON", rt);
        return EX_FAILED;
    }
    return EX_DONE;
}

/* Ask a named query; EX_DONE with *answer (it may carry "error"). */
int cmd_ask_query(struct console *k, const char *name, cJSON *params, cJSON **answer)
{
    cJSON *req = cJSON_CreateObject();
    int rc;

    if (!req) {
        cJSON_Delete(params);
        return EX_FAILED;
    }
    cJSON_AddStringToObject(req, "query", name);
    cJSON_AddItemToObject(req, "params", params ? params : cJSON_CreateObject());
    rc = cmd_ask(k, cmd_topic(k, "query"), req, 1, answer);
    cJSON_Delete(req);
    return rc;
}

const char *cmd_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double cmd_num(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The writer's error text, made safe for the terminal, on stderr after what. */
int cmd_refused(const char *what, const char *error)
{
    char *t = fmt_term(error ? error : "(no reason given)", 0, NULL);
    log_error("%s: %s", what, t ? t : "");
    free(t);
    return EX_FAILED;
}

/* A retained message may be missing because the ACL hides it: say so when logged in. */
const char *cmd_acl_hint(struct console *k)
{
    return k->has_user ? " (or the broker's ACL does not let this user read it)" : "";
}
