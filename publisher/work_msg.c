/* work_msg.c: what mosqlite-work reads from the broker (see work.h): the writer's
 * messages on the agent's topic and its status; and the JSON of a job's result and
 * progress files. Pure: no I/O, no state, so the fuzzer
 * (tests/fuzz/fuzz_work.c) runs it alone. Anyone allowed to publish on the topic can
 * send anything, so every field is checked and a bad one is as if absent. */
#define _GNU_SOURCE                     /* strndup */
#include "work.h"
#include "strict.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An integer member within 0..2^53, else -1. */
static long long num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    return d >= 0 && d <= 9007199254740992.0 && d == (double)(long long)d ? (long long)d : -1;
}

/* A string member as a heap copy, or NULL. */
static char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? strdup(v->valuestring) : NULL;
}

/* The grant's payload as the writer sent it, and its build_id's text when that is a
 * number or a string. 0, or -1 when the text is not a strict JSON object with a
 * payload. */
static int grant_texts(struct work_in *m, const char *text, size_t len)
{
    struct jdoc d, p;
    char err[256];
    int i, k;

    if (mosqlite__json_read(&d, text, len, "grant", J_REQUEST, err, sizeof err))
        return -1;
    if ((i = mosqlite__json_member(&d, "payload")) >= 0)
        m->payload = strndup(text + d.v[i].start, d.v[i].end - d.v[i].start);
    mosqlite__json_free(&d);
    if (!m->payload)
        return -1;
    if (*m->payload == '{' && !mosqlite__json_read(&p, m->payload, strlen(m->payload), "payload",
                                                   J_REQUEST, err, sizeof err)) {
        if ((k = mosqlite__json_member(&p, "build_id")) >= 0 &&
            (p.v[k].type == J_NUMBER || p.v[k].type == J_STRING))
            m->build_id = strndup(m->payload + p.v[k].start, p.v[k].end - p.v[k].start);
        mosqlite__json_free(&p);
    }
    return 0;
}

int work_in_read(struct work_in *m, const char *text, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *opv;
    const char *op;

    memset(m, 0, sizeof *m);
    m->job = m->attempt = m->lease_ms = m->timeout_ms = m->lost = -1;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    opv = cJSON_GetObjectItemCaseSensitive(o, "op");
    op = cJSON_IsString(opv) ? opv->valuestring : NULL;
    m->job = num(o, "job");
    m->attempt = num(o, "attempt");
    if (!opv) {
        m->kind = WM_RECEIPT;
        m->id = str(o, "id");
        m->status = str(o, "status");
        m->error = str(o, "error");
        m->claim_error = str(o, "claim_error");
    } else if (!op) {
        m->kind = WM_OTHER;
    } else if (!strcmp(op, "job")) {
        m->kind = WM_GRANT;
        m->claim = str(o, "claim");
        m->queue = str(o, "queue");
        m->enqueued_at = str(o, "enqueued_at");
        m->lease_ms = num(o, "lease_ms");
        m->timeout_ms = num(o, "timeout_ms");
        m->lost = num(o, "lost");
        if (m->job < 0 || m->attempt < 0 || !m->claim || grant_texts(m, text, len))
            m->kind = WM_OTHER;
    } else if (!strcmp(op, "empty")) {
        m->kind = WM_EMPTY;
        m->claim = str(o, "claim");
    } else if (!strcmp(op, "cancel")) {
        m->kind = WM_CANCEL;
    } else if (!strcmp(op, "lease_lost")) {
        m->kind = WM_LEASE_LOST;
    } else {
        m->kind = WM_OTHER;
    }
    cJSON_Delete(o);
    return 0;
}

void work_in_free(struct work_in *m)
{
    free(m->claim);
    free(m->queue);
    free(m->enqueued_at);
    free(m->id);
    free(m->status);
    free(m->error);
    free(m->claim_error);
    free(m->payload);
    free(m->build_id);
    memset(m, 0, sizeof *m);
}

int work_value_read(const char *text, size_t len, const char *what, size_t max, size_t *start,
                    size_t *end, char *err, size_t errlen)
{
    struct jdoc d;
    cJSON *v;
    char *printed;
    size_t i, n = 0;

    for (i = 0; i < len && text[i] && strchr(" \t\r\n", text[i]); i++)
        ;
    if (i == len)
        return 0;                       /* empty or blank: nothing */
    if (mosqlite__json_read_value(&d, text, len, what, err, errlen))
        return -1;
    *start = d.v[0].start;
    *end = d.v[0].end;
    mosqlite__json_free(&d);
    v = cJSON_ParseWithLength(text + *start, *end - *start);
    if ((printed = v ? cJSON_PrintUnformatted(v) : NULL))
        n = strlen(printed);
    cJSON_free(printed);
    cJSON_Delete(v);
    if (!printed) {
        snprintf(err, errlen, "%s: out of memory", what);
        return -1;
    }
    if (n > max) {
        snprintf(err, errlen, "%s is longer than %zu bytes as JSON (%zu): the writer takes no more",
                 what, max, n);
        return -1;
    }
    return 1;
}

int work_status_read(const char *text, size_t len, char *since, size_t n)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state"),
                *si = cJSON_GetObjectItemCaseSensitive(o, "since");
    int online = cJSON_IsString(st) && !strcmp(st->valuestring, "online") && cJSON_IsString(si);

    if (online)
        snprintf(since, n, "%s", si->valuestring);
    cJSON_Delete(o);
    return online;
}
