/* request.c: the JSON side of the publisher, with no I/O. Builds write requests
 * (insert/upsert/update/delete), stamps a request with its id and reply_to when
 * receipts are wanted, reads receipts, and turns text lines into inserts with bad
 * UTF-8 repaired. Everything here is pure and testable without a broker. */
#include "request.h"
#include "strict.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void mosqlite_free(void *p)
{
    free(p);
}

const char *mosqlite_version(void)
{
    return MOSQLITE_VERSION;
}

int mosqlite_op_parse(const char *name, enum mosqlite_op *op)
{
    static const char *names[] = {"insert", "upsert", "update", "delete"};
    int i;

    for (i = 0; i < 4; i++)
        if (name && !strcmp(name, names[i])) {
            *op = (enum mosqlite_op)i;
            return 0;
        }
    return -1;
}

/* ---- requests: the user's text, cut and joined, never re-printed ---- */

/* Read an argument that must be a JSON object of columns (values, set, where, --with). */
static int read_columns(struct jdoc *d, const char *text, const char *what, char *err, size_t errlen)
{
    return mosqlite__json_read(d, text, strlen(text), what, what[0] == '-' ? "values" : what,
                               err, errlen);
}

/* The members of d's top-level object but those named skip (NULL: all), each as it
 * was written, joined by commas at out. Returns the new end; *count how many. */
static char *put_members(char *out, const struct jdoc *d, const char *skip, int *count)
{
    int c;

    *count = 0;
    for (c = d->v[0].child; c >= 0; c = d->v[c].next) {
        if (skip && mosqlite__json_key_is(d, c, skip))
            continue;
        if ((*count)++)
            *out++ = ',';
        memcpy(out, d->s + d->v[c].key, d->v[c].end - d->v[c].key);
        out += d->v[c].end - d->v[c].key;
    }
    return out;
}

/* The top-level value of d, as it was written. */
static char *put_value(char *out, const struct jdoc *d)
{
    memcpy(out, d->s + d->v[0].start, d->v[0].end - d->v[0].start);
    return out + (d->v[0].end - d->v[0].start);
}

char *mosqlite_request_build(enum mosqlite_op op, const char *data, const char *where,
                             const char *id, char *err, size_t errlen)
{
    static const char *names[] = {"insert", "upsert", "update", "delete"};
    struct jdoc dd = {0}, wd = {0};
    char *out = NULL, *p;

    if ((unsigned)op > MOSQLITE_DELETE) {
        seterr(err, errlen, "unknown operation");
        return NULL;
    }
    if (op == MOSQLITE_DELETE ? data != NULL : data == NULL) {
        seterr(err, errlen, op == MOSQLITE_DELETE ? "delete takes no values"
                                                  : "%s needs values", names[op]);
        return NULL;
    }
    if (op == MOSQLITE_UPDATE || op == MOSQLITE_DELETE) {
        if (!where) {
            seterr(err, errlen, "%s needs --where", names[op]);
            return NULL;
        }
    } else if (where) {
        seterr(err, errlen, "%s takes no where", names[op]);
        return NULL;
    }
    if (id && !mosqlite_id_valid(id)) {
        seterr(err, errlen, "id must be 1 to %d printable ASCII characters", MOSQLITE_ID_MAX);
        return NULL;
    }
    if (data && read_columns(&dd, data, op == MOSQLITE_UPDATE ? "set" : "values", err, errlen))
        return NULL;
    if (where && read_columns(&wd, where, "where", err, errlen))
        goto cleanup;
    if (where && wd.v[0].child < 0) {
        seterr(err, errlen, "where must not be empty");
        goto cleanup;
    }
    /* {"id":ID,"op":OP,"values"|"set":DATA,"where":WHERE} */
    if (!(out = malloc((data ? strlen(data) : 0) + (where ? strlen(where) : 0) +
                       (id ? 6 * strlen(id) : 0) + 64))) {
        seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    p = out;
    *p++ = '{';
    if (id) {
        p += sprintf(p, "\"id\":");
        p = mosqlite__json_quote(p, id, strlen(id));
        *p++ = ',';
    }
    p += sprintf(p, "\"op\":\"%s\"", names[op]);
    if (data) {
        p += sprintf(p, ",\"%s\":", op == MOSQLITE_UPDATE ? "set" : "values");
        p = put_value(p, &dd);
    }
    if (where) {
        p += sprintf(p, ",\"where\":");
        p = put_value(p, &wd);
    }
    memcpy(p, "}", 2);
cleanup:
    mosqlite__json_free(&dd);
    mosqlite__json_free(&wd);
    return out;
}

char *mosqlite__stamp(const char *json, const char *reply_to, const char *after, char *id_out,
                     int *chain, char *err, size_t errlen)
{
    struct jdoc d;
    char *out = NULL, *p, *id = NULL, newid[MOSQLITE_ID_LEN + 1];
    int i, n, timed;

    if (chain)
        *chain = 0;
    if (mosqlite__json_read(&d, json, strlen(json), "request", J_REQUEST, err, errlen))
        return NULL;
    if ((i = mosqlite__json_member(&d, "id")) >= 0 && !(id = mosqlite__json_string(&d, i)))
        goto nomem;
    if (id_out)
        snprintf(id_out, MOSQLITE_ID_MAX + 1, "%s", id ? id : "");
    if (!reply_to) {                    /* no receipts: the text as it is */
        if (!(out = strdup(json)))
            goto nomem;
        goto cleanup;
    }
    /* A scheduled request or a cancel may not name a request to follow, and is not
     * applied now: the next request does not wait for it either. */
    timed = mosqlite__json_member(&d, "at") >= 0 || mosqlite__json_member(&d, "delay_ms") >= 0 ||
            mosqlite__json_member(&d, "cancel") >= 0;
    if (chain)
        *chain = !timed;
    if (timed || mosqlite__json_member(&d, "after") >= 0 || (after && id && !strcmp(after, id)))
        after = NULL;                   /* its own "after" is kept as written */
    if (after && !*after)
        after = NULL;
    if (!id && mosqlite_new_id(newid)) {
        seterr(err, errlen, "no randomness for a request id");
        goto cleanup;
    }
    if (!id && id_out)
        snprintf(id_out, MOSQLITE_ID_MAX + 1, "%s", newid);
    /* {MEMBERS but reply_to,"id":NEW,"after":AFTER,"reply_to":REPLY} */
    if (!(out = malloc(strlen(json) + 6 * strlen(reply_to) + (after ? 6 * strlen(after) : 0) +
                       MOSQLITE_ID_LEN + 48)))
        goto nomem;
    p = out;
    *p++ = '{';
    p = put_members(p, &d, "reply_to", &n);
    if (n)
        *p++ = ',';
    if (!id)
        p += sprintf(p, "\"id\":\"%s\",", newid);
    if (after) {
        p += sprintf(p, "\"after\":");
        p = mosqlite__json_quote(p, after, strlen(after));
        *p++ = ',';
    }
    p += sprintf(p, "\"reply_to\":");
    p = mosqlite__json_quote(p, reply_to, strlen(reply_to));
    memcpy(p, "}", 2);
    goto cleanup;
nomem:
    seterr(err, errlen, "out of memory");
cleanup:
    free(id);
    mosqlite__json_free(&d);
    return out;
}

int mosqlite__receipt(const char *payload, size_t len, char *id, enum mosqlite_status *status,
                char **error, long *changes, char *after)
{
    cJSON *r = cJSON_ParseWithLength(payload, len), *i, *s, *e, *n;
    int rc = -1;

    *error = NULL;
    *changes = -1;
    *after = '\0';
    if (!r)
        return -1;
    i = cJSON_GetObjectItemCaseSensitive(r, "id");
    s = cJSON_GetObjectItemCaseSensitive(r, "status");
    e = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (!cJSON_IsString(i) || !mosqlite_id_valid(i->valuestring) || !cJSON_IsString(s))
        goto cleanup;
    if (!strcmp(s->valuestring, "applied"))
        *status = MOSQLITE_APPLIED;
    else if (!strcmp(s->valuestring, "duplicate"))
        *status = MOSQLITE_DUPLICATE;
    else if (!strcmp(s->valuestring, "rejected"))
        *status = MOSQLITE_REJECTED;
    else if (!strcmp(s->valuestring, "scheduled"))
        *status = MOSQLITE_SCHEDULED;
    else if (!strcmp(s->valuestring, "cancelled"))
        *status = MOSQLITE_CANCELLED;
    else if (!strcmp(s->valuestring, "waiting")) {
        e = cJSON_GetObjectItemCaseSensitive(r, "after");
        if (cJSON_IsString(e) && mosqlite_id_valid(e->valuestring))
            strcpy(after, e->valuestring);
        strcpy(id, i->valuestring);
        rc = 1;
        goto cleanup;
    } else
        goto cleanup;
    strcpy(id, i->valuestring);
    n = cJSON_GetObjectItemCaseSensitive(r, "changes");
    if (cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble < 9e15)
        *changes = (long)n->valuedouble;
    if (*status == MOSQLITE_REJECTED)
        *error = strdup(cJSON_IsString(e) ? e->valuestring : "rejected (no reason given)");
    rc = 0;
cleanup:
    cJSON_Delete(r);
    return rc;
}

/* ---- text lines ---- */

struct mosqlite_lines {
    char *head;     /* {"values":{WITH...,"COLUMN":  */
    size_t headlen;
};

size_t mosqlite_utf8_repair(const char *text, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    int ok;

    while (i < len) {
        size_t n = mosqlite__utf8_seq(s + i, len - i, &ok);
        if (ok)
            memcpy(out + o, s + i, n), o += n;
        else
            memcpy(out + o, "\xef\xbf\xbd", 3), o += 3;
        i += n;
    }
    out[o] = '\0';
    return o;
}

/* {"values":{WITH but COLUMN and SCOL,"SCOL":SVAL,"COLUMN": -- the members of with
 * as they were written. */
static mosqlite_lines *lines_make(const char *column, const char *with, const char *scol,
                                  const char *sval, char *err, size_t errlen)
{
    mosqlite_lines *l = NULL;
    struct jdoc d = {0};
    size_t clen, need;
    char *p;
    int c, n = 0;

    if (!column || !*column) {
        seterr(err, errlen, "the column name is empty");
        return NULL;
    }
    if (with && read_columns(&d, with, "--with", err, errlen))
        return NULL;
    clen = strlen(column);
    need = (with ? strlen(with) : 0) + 6 * clen + (scol ? 6 * (strlen(scol) + strlen(sval)) : 0) + 32;
    if (!(l = calloc(1, sizeof *l)) || !(l->head = malloc(need))) {
        seterr(err, errlen, "out of memory");
        mosqlite_lines_free(l);
        mosqlite__json_free(&d);
        return NULL;
    }
    p = l->head + sprintf(l->head, "{\"values\":{");
    for (c = with ? d.v[0].child : -1; c >= 0; c = d.v[c].next) {
        if (mosqlite__json_key_is(&d, c, column) || (scol && mosqlite__json_key_is(&d, c, scol)))
            continue;
        if (n++)
            *p++ = ',';
        memcpy(p, d.s + d.v[c].key, d.v[c].end - d.v[c].key);
        p += d.v[c].end - d.v[c].key;
    }
    if (scol) {
        if (n++)
            *p++ = ',';
        p = mosqlite__json_quote(p, scol, strlen(scol));
        *p++ = ':';
        p = mosqlite__json_quote(p, sval, strlen(sval));
    }
    if (n)
        *p++ = ',';
    p = mosqlite__json_quote(p, column, clen);
    *p++ = ':';
    l->headlen = (size_t)(p - l->head);
    mosqlite__json_free(&d);
    return l;
}

mosqlite_lines *mosqlite_lines_new(const char *column, const char *with, char *err, size_t errlen)
{
    return lines_make(column, with, NULL, NULL, err, errlen);
}

mosqlite_lines *mosqlite__lines_stream(const char *column, const char *with, const char *stream_column,
                                       const char *stream, char *err, size_t errlen)
{
    return lines_make(column, with, stream_column && stream ? stream_column : NULL, stream, err, errlen);
}

char *mosqlite_lines_format(const mosqlite_lines *l, const char *text, size_t len)
{
    char *fixed = malloc(3 * len + 1), *out, *p;
    size_t n;

    if (!fixed)
        return NULL;
    n = mosqlite_utf8_repair(text, len, fixed);
    out = malloc(l->headlen + 6 * n + 8);
    if (out) {
        memcpy(out, l->head, l->headlen);
        p = mosqlite__json_quote(out + l->headlen, fixed, n);
        memcpy(p, "}}", 3);
    }
    free(fixed);
    return out;
}

void mosqlite_lines_free(mosqlite_lines *l)
{
    if (!l)
        return;
    free(l->head);
    free(l);
}
