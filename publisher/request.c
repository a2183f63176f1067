/* request.c: the JSON side of the publisher, with no I/O. Builds write requests
 * (insert/upsert/update/delete), stamps a request with its id and reply_to when
 * receipts are wanted, reads receipts, and turns text lines into inserts with bad
 * UTF-8 repaired. Everything here is pure and testable without a broker. */
#include "request.h"

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

/* ---- where JSON text goes wrong ---- */

/* A small RFC 8259 checker, used only to explain text cJSON refused: it stops at the
 * first fault, and leaves its byte offset in p and what was expected there in why. */
struct jcheck {
    const char *start, *p;
    const char *why;
};

static void jc_ws(struct jcheck *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static int jc_fail(struct jcheck *j, const char *why)
{
    j->why = why;
    return -1;
}

static int jc_string(struct jcheck *j)
{
    int i;

    if (*j->p != '"')
        return jc_fail(j, "a string in double quotes");
    for (j->p++; *j->p != '"'; j->p++) {
        if (!*j->p)
            return jc_fail(j, "the closing quote of the string");
        if ((unsigned char)*j->p < 0x20)
            return jc_fail(j, "no raw control character in a string (escape it)");
        if (*j->p == '\\') {
            j->p++;
            if (!*j->p || !strchr("\"\\/bfnrtu", *j->p))
                return jc_fail(j, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
            if (*j->p == 'u')
                for (i = 0; i < 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", *++j->p) || !*j->p)
                        return jc_fail(j, "four hex digits after \\u");
        }
    }
    j->p++;
    return 0;
}

static int jc_digits(struct jcheck *j, const char *why)
{
    if (*j->p < '0' || *j->p > '9')
        return jc_fail(j, why);
    while (*j->p >= '0' && *j->p <= '9')
        j->p++;
    return 0;
}

static int jc_number(struct jcheck *j)
{
    if (*j->p == '-')
        j->p++;
    if (*j->p == '0') {
        j->p++;
        if (*j->p >= '0' && *j->p <= '9')
            return jc_fail(j, "a number without a leading zero");
    } else if (jc_digits(j, "a digit")) {
        return -1;
    }
    if (*j->p == '.' && (j->p++, jc_digits(j, "a digit after the decimal point")))
        return -1;
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-')
            j->p++;
        if (jc_digits(j, "a digit in the exponent"))
            return -1;
    }
    return 0;
}

static int jc_value(struct jcheck *j, int depth);

static int jc_members(struct jcheck *j, int depth, int object)
{
    char close = object ? '}' : ']';

    j->p++;
    jc_ws(j);
    if (*j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        if (object) {
            if (jc_string(j))
                return j->why && !strcmp(j->why, "a string in double quotes")
                    ? jc_fail(j, "a member name in double quotes") : -1;
            jc_ws(j);
            if (*j->p != ':')
                return jc_fail(j, "':' after the member name");
            j->p++;
        }
        if (jc_value(j, depth + 1))
            return -1;
        jc_ws(j);
        if (*j->p == close) {
            j->p++;
            return 0;
        }
        if (*j->p != ',')
            return jc_fail(j, object ? "',' or '}'" : "',' or ']'");
        j->p++;
        jc_ws(j);
    }
}

static int jc_value(struct jcheck *j, int depth)
{
    static const char *lits[] = {"true", "false", "null"};
    int i;

    jc_ws(j);
    if (depth > 64)
        return jc_fail(j, "less nesting");
    if (*j->p == '{' || *j->p == '[')
        return jc_members(j, depth, *j->p == '{');
    if (*j->p == '"')
        return jc_string(j);
    if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
        return jc_number(j);
    for (i = 0; i < 3; i++)
        if (!strncmp(j->p, lits[i], strlen(lits[i]))) {
            j->p += strlen(lits[i]);
            return 0;
        }
    return jc_fail(j, "a value (a string, number, object, array, true, false or null)");
}

/* Check that text is one JSON object (RFC 8259, as strict as the writer). 0, or -1
 * with "WHAT is not a JSON object: invalid JSON at byte N, expected ..., found ..."
 * (or "... but an array") in err. */
static int check_object(const char *text, const char *what, char *err, size_t errlen)
{
    struct jcheck j = {text, text, NULL};
    char found[32];

    if (!jc_value(&j, 0)) {
        jc_ws(&j);
        if (!*j.p) {
            if (*(j.start + strspn(j.start, " \t\r\n")) == '{')
                return 0;
            seterr(err, errlen, "%s is not a JSON object ({...}) but %s", what,
                   *(j.start + strspn(j.start, " \t\r\n")) == '[' ? "an array" : "a single value");
            return -1;
        }
        j.why = "the end of the text";
    }
    if (!*j.p)
        snprintf(found, sizeof found, "the end");
    else if ((unsigned char)*j.p < 0x20 || (unsigned char)*j.p > 0x7e)
        snprintf(found, sizeof found, "byte 0x%02x", (unsigned char)*j.p);
    else
        snprintf(found, sizeof found, "'%c'", *j.p);
    seterr(err, errlen, "%s is not a JSON object: invalid JSON at byte %zu, expected %s, found %s", what,
           (size_t)(j.p - j.start), j.why, found);
    return -1;
}

/* Parse text that must be a JSON object; what names it in messages. */
static cJSON *parse_object(const char *text, const char *what, char *err, size_t errlen)
{
    cJSON *o;

    if (check_object(text, what, err, errlen))
        return NULL;
    if (!(o = cJSON_Parse(text)) || !cJSON_IsObject(o)) {
        seterr(err, errlen, "%s: out of memory", what);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *mosqlite_request_build(enum mosqlite_op op, const char *data, const char *where,
                             const char *id, char *err, size_t errlen)
{
    static const char *names[] = {"insert", "upsert", "update", "delete"};
    cJSON *req = NULL, *d = NULL, *w = NULL;
    char *out = NULL;

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
    if (data && !(d = parse_object(data, op == MOSQLITE_UPDATE ? "set" : "values", err, errlen)))
        goto cleanup;
    if (where && !(w = parse_object(where, "where", err, errlen)))
        goto cleanup;
    if (w && !w->child) {
        seterr(err, errlen, "where must not be empty");
        goto cleanup;
    }
    if (!(req = cJSON_CreateObject()))
        goto nomem;
    if (id && !cJSON_AddStringToObject(req, "id", id))
        goto nomem;
    if (!cJSON_AddStringToObject(req, "op", names[op]))
        goto nomem;
    if (d) {
        cJSON_AddItemToObject(req, op == MOSQLITE_UPDATE ? "set" : "values", d);
        d = NULL;
    }
    if (w) {
        cJSON_AddItemToObject(req, "where", w);
        w = NULL;
    }
    if (!(out = cJSON_PrintUnformatted(req)))
        goto nomem;
    goto cleanup;
nomem:
    seterr(err, errlen, "out of memory");
cleanup:
    cJSON_Delete(req);
    cJSON_Delete(d);
    cJSON_Delete(w);
    return out;
}

char *mosqlite__stamp(const char *json, const char *reply_to, char *id_out, char *err, size_t errlen)
{
    cJSON *req = parse_object(json, "request", err, errlen), *id;
    char *out = NULL;

    if (!req)
        return NULL;
    id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (id && !(cJSON_IsString(id) && mosqlite_id_valid(id->valuestring))) {
        seterr(err, errlen, "request id must be a string of 1 to %d printable ASCII characters",
               MOSQLITE_ID_MAX);
        goto cleanup;
    }
    if (id) {
        strcpy(id_out, id->valuestring);
    } else {
        if (mosqlite_new_id(id_out)) {
            seterr(err, errlen, "no randomness for a request id");
            goto cleanup;
        }
        if (!cJSON_AddStringToObject(req, "id", id_out))
            goto nomem;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(req, "reply_to");
    if (!cJSON_AddStringToObject(req, "reply_to", reply_to))
        goto nomem;
    if ((out = cJSON_PrintUnformatted(req)))
        goto cleanup;
nomem:
    seterr(err, errlen, "out of memory");
cleanup:
    cJSON_Delete(req);
    return out;
}

int mosqlite__receipt(const char *payload, size_t len, char *id, enum mosqlite_status *status,
                char **error)
{
    cJSON *r = cJSON_ParseWithLength(payload, len), *i, *s, *e;
    int rc = -1;

    *error = NULL;
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
    else
        goto cleanup;
    strcpy(id, i->valuestring);
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

/* How many bytes at s (n left) form one UTF-8 character (*ok = 1), or else the
 * "maximal subpart" of a broken one (*ok = 0, at least 1 byte): the bytes that started
 * a valid sequence before it broke off, replaced together by one U+FFFD, as Unicode
 * recommends (and as Python and browsers do). NUL is treated as broken. */
static size_t utf8_seq(const unsigned char *s, size_t n, int *ok)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need, i;

    *ok = 1;
    if (s[0] > 0 && s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    else {
        *ok = 0;
        return 1;
    }
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *ok = 0;
            return i;
        }
        lo = 0x80, hi = 0xbf;
    }
    return need;
}

size_t mosqlite_utf8_repair(const char *text, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    int ok;

    while (i < len) {
        size_t n = utf8_seq(s + i, len - i, &ok);
        if (ok)
            memcpy(out + o, s + i, n), o += n;
        else
            memcpy(out + o, "\xef\xbf\xbd", 3), o += 3;
        i += n;
    }
    out[o] = '\0';
    return o;
}

/* Append s as a JSON string literal (quotes included) at out; returns the new end. */
static char *json_quote(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    *out++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c == '\n') {
            *out++ = '\\', *out++ = 'n';
        } else if (c == '\t') {
            *out++ = '\\', *out++ = 't';
        } else if (c == '\r') {
            *out++ = '\\', *out++ = 'r';
        } else if (c < 0x20) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            out += 6;
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    return out;
}

mosqlite_lines *mosqlite_lines_new(const char *column, const char *with, char *err, size_t errlen)
{
    mosqlite_lines *l = NULL;
    cJSON *w = NULL;
    char *wtext = NULL;
    size_t wlen, clen;

    if (!column || !*column) {
        seterr(err, errlen, "the column name is empty");
        return NULL;
    }
    if (with) {
        if (!(w = parse_object(with, "--with", err, errlen)))
            return NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(w, column);
        if (!(wtext = cJSON_PrintUnformatted(w)))
            goto nomem;
    }
    wlen = wtext ? strlen(wtext) : 2;     /* "{...}" or "{}" */
    clen = strlen(column);
    if (!(l = calloc(1, sizeof *l)) || !(l->head = malloc(wlen + 6 * clen + 32)))
        goto nomem;
    {
        char *p = l->head;
        p += sprintf(p, "{\"values\":");
        if (wtext && wlen > 2) {
            memcpy(p, wtext, wlen - 1);     /* without the closing brace */
            p += wlen - 1;
            *p++ = ',';
        } else {
            *p++ = '{';
        }
        p = json_quote(p, column, clen);
        *p++ = ':';
        l->headlen = (size_t)(p - l->head);
    }
    goto cleanup;
nomem:
    seterr(err, errlen, "out of memory");
    mosqlite_lines_free(l);
    l = NULL;
cleanup:
    cJSON_free(wtext);
    cJSON_Delete(w);
    return l;
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
        p = json_quote(out + l->headlen, fixed, n);
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
