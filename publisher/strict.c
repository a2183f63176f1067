/* strict.c: the publisher's strict JSON reader (see strict.h). It refuses what the writer
 * refuses, in the writer's words, so that a request the publisher lets through is not
 * rejected for its JSON, and one it stops is stopped with the reason the writer would
 * have given:
 *
 * 1. one pass over the raw bytes, the writer's own (common/jscan.c): valid UTF-8, no
 *    NUL, every \u escape in a string four hex digits, not \u0000 (a C string would end
 *    there) nor a lone surrogate, no raw control character in a string, every number
 *    RFC 8259's, finite, and an integer within +-2^53, nesting within limit;
 * 2. the grammar (RFC 8259, as cJSON reads it: a \u escape of a lone surrogate is
 *    refused), into a flat tree of byte ranges;
 * 3. duplicate keys, named as the writer names them: the request, each operation,
 *    values/set/where, then any object in document order.
 *
 * Nothing is re-printed: callers cut and join the text by the byte ranges found. */
#include "strict.h"

#include "jscan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

size_t mosqlite__utf8_seq(const unsigned char *s, size_t n, int *ok)
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

/* ---- 1. the raw bytes, as the writer reads them: jscan_raw (common/jscan.c) ---- */

/* ---- 2. the grammar ---- */

struct jp {
    struct jdoc *d;
    size_t i;
    const char *why;            /* what was expected at i, on failure */
};

#define AT(j) ((j)->i < (j)->d->n ? (unsigned char)(j)->d->s[(j)->i] : 0)

static int jp_fail(struct jp *j, const char *why)
{
    j->why = why;
    return -1;
}

static void jp_ws(struct jp *j)
{
    while (j->i < j->d->n && strchr(" \t\n\r", j->d->s[j->i]) && j->d->s[j->i])
        j->i++;
}

static int node_new(struct jp *j, enum jtype t, size_t key)
{
    struct jdoc *d = j->d;

    if (d->nv == d->cap) {
        int c = d->cap ? d->cap * 2 : 16;
        struct jnode *v = realloc(d->v, (size_t)c * sizeof *v);
        if (!v)
            return jp_fail(j, NULL);     /* out of memory */
        d->v = v;
        d->cap = c;
    }
    d->v[d->nv].type = t;
    d->v[d->nv].start = j->i;
    d->v[d->nv].end = j->i;
    d->v[d->nv].key = key;
    d->v[d->nv].child = d->v[d->nv].next = -1;
    return d->nv++;
}

static int hex4(struct jp *j, unsigned *cp)
{
    int k;

    *cp = 0;
    for (k = 0; k < 4; k++) {
        unsigned char c = AT(j);
        if (c >= '0' && c <= '9')
            *cp = *cp << 4 | (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            *cp = *cp << 4 | (unsigned)((c | 0x20) - 'a' + 10);
        else
            return jp_fail(j, "four hex digits after \\u");
        j->i++;
    }
    return 0;
}

static int jp_string(struct jp *j)
{
    unsigned cp, lo;

    if (AT(j) != '"')
        return jp_fail(j, "a string in double quotes");
    for (j->i++; AT(j) != '"'; ) {
        unsigned char c = AT(j);
        if (j->i >= j->d->n)
            return jp_fail(j, "the closing quote of the string");
        if (c < 0x20)
            return jp_fail(j, "no raw control character in a string (escape it)");
        if (c != '\\') {
            j->i++;
            continue;
        }
        j->i++;
        c = AT(j);
        if (!c || !strchr("\"\\/bfnrtu", c))
            return jp_fail(j, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
        j->i++;
        if (c != 'u')
            continue;
        if (hex4(j, &cp))
            return -1;
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            j->i -= 6;
            return jp_fail(j, "an escape other than a lone low surrogate (\\uDC00 to \\uDFFF)");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (AT(j) != '\\' || j->i + 1 >= j->d->n || j->d->s[j->i + 1] != 'u')
                return jp_fail(j, "a low surrogate \\uDC00 to \\uDFFF after a high one");
            j->i += 2;
            if (hex4(j, &lo))
                return -1;
            if (lo < 0xdc00 || lo > 0xdfff) {
                j->i -= 6;
                return jp_fail(j, "a low surrogate \\uDC00 to \\uDFFF after a high one");
            }
        }
    }
    j->i++;
    return 0;
}

static int jp_digits(struct jp *j, const char *why)
{
    if (AT(j) < '0' || AT(j) > '9')
        return jp_fail(j, why);
    while (AT(j) >= '0' && AT(j) <= '9')
        j->i++;
    return 0;
}

static int jp_number(struct jp *j)
{
    if (AT(j) == '-')
        j->i++;
    if (AT(j) == '0') {
        j->i++;
        if (AT(j) >= '0' && AT(j) <= '9')
            return jp_fail(j, "a number without a leading zero");
    } else if (jp_digits(j, "a digit")) {
        return -1;
    }
    if (AT(j) == '.' && (j->i++, jp_digits(j, "a digit after the decimal point")))
        return -1;
    if (AT(j) == 'e' || AT(j) == 'E') {
        j->i++;
        if (AT(j) == '+' || AT(j) == '-')
            j->i++;
        if (jp_digits(j, "a digit in the exponent"))
            return -1;
    }
    return 0;
}

static int jp_value(struct jp *j, int depth, size_t key);

/* The members of an object or the elements of an array at j->i; node is its index. */
static int jp_members(struct jp *j, int node, int depth, int object)
{
    char close = object ? '}' : ']';
    int last = -1, v;
    size_t key = (size_t)-1;

    j->i++;
    jp_ws(j);
    if (AT(j) == close) {
        j->i++;
        return 0;
    }
    for (;;) {
        if (object) {
            key = j->i;
            if (jp_string(j))
                return j->why && !strcmp(j->why, "a string in double quotes")
                    ? jp_fail(j, "a member name in double quotes") : -1;
            jp_ws(j);
            if (AT(j) != ':')
                return jp_fail(j, "':' after the member name");
            j->i++;
        }
        jp_ws(j);
        if ((v = jp_value(j, depth + 1, key)) < 0)
            return -1;
        if (last < 0)
            j->d->v[node].child = v;
        else
            j->d->v[last].next = v;
        last = v;
        jp_ws(j);
        if (AT(j) == close) {
            j->i++;
            return 0;
        }
        if (AT(j) != ',')
            return jp_fail(j, object ? "',' or '}'" : "',' or ']'");
        j->i++;
        jp_ws(j);
    }
}

/* One value at j->i (no whitespace before it); its node index, or -1. */
static int jp_value(struct jp *j, int depth, size_t key)
{
    static const char *lits[] = {"true", "false", "null"};
    unsigned char c = AT(j);
    int i, node, rc;

    if (depth > MOSQLITE_JSON_DEPTH)
        return jp_fail(j, "less nesting");
    if (c == '{' || c == '[')
        node = node_new(j, c == '{' ? J_OBJECT : J_ARRAY, key);
    else if (c == '"')
        node = node_new(j, J_STRING, key);
    else if (c == '-' || (c >= '0' && c <= '9'))
        node = node_new(j, J_NUMBER, key);
    else
        node = node_new(j, J_LITERAL, key);
    if (node < 0)
        return -1;
    if (c == '{' || c == '[')
        rc = jp_members(j, node, depth, c == '{');
    else if (c == '"')
        rc = jp_string(j);
    else if (c == '-' || (c >= '0' && c <= '9'))
        rc = jp_number(j);
    else {
        for (i = 0; i < 3; i++)
            if (j->d->n - j->i >= strlen(lits[i]) && !memcmp(j->d->s + j->i, lits[i], strlen(lits[i]))) {
                j->i += strlen(lits[i]);
                break;
            }
        rc = i < 3 ? 0 : jp_fail(j, "a value (a string, number, object, array, true, false or null)");
    }
    if (rc)
        return -1;
    j->d->v[node].end = j->i;
    return node;
}

/* ---- 3. duplicate keys ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The writer's dup_keys(): the first key (in order) given again, pairwise up to 16
 * keys; beyond, the first in sorted order. 0, or -1 with err set. */
static int dup_keys(const struct jdoc *d, int obj, const char *what, char *err, size_t errlen)
{
    char **keys, *dup = NULL;
    int n = 0, i, k, c, rc = 0;

    for (c = d->v[obj].child; c >= 0; c = d->v[c].next)
        n++;
    if (n < 2)
        return 0;
    if (!(keys = calloc((size_t)n, sizeof *keys)))
        return fail(err, errlen, "out of memory");
    for (i = 0, c = d->v[obj].child; c >= 0; c = d->v[c].next, i++)
        if (!(keys[i] = mosqlite__json_decode(d->s + d->v[c].key))) {
            rc = fail(err, errlen, "out of memory");
            goto done;
        }
    if (n <= 16) {
        for (i = 0; i < n && !dup; i++)
            for (k = i + 1; k < n && !dup; k++)
                if (!strcmp(keys[i], keys[k]))
                    dup = keys[i];
    } else {
        qsort(keys, (size_t)n, sizeof *keys, cmp_str);
        for (i = 1; i < n && !dup; i++)
            if (!strcmp(keys[i - 1], keys[i]))
                dup = keys[i];
    }
    if (dup)
        rc = fail(err, errlen, "duplicate key \"%.100s\" in %s", dup, what);
done:
    for (i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    return rc;
}

/* Every object in document order (the writer's walk), as "an object". */
static int walk(const struct jdoc *d, int v, char *err, size_t errlen)
{
    int c;

    if (d->v[v].type == J_OBJECT && dup_keys(d, v, "an object", err, errlen))
        return -1;
    for (c = d->v[v].child; c >= 0; c = d->v[c].next)
        if (walk(d, c, err, errlen))
            return -1;
    return 0;
}

/* A member of object obj by key, or -1 (first match: duplicates are refused before). */
static int field(const struct jdoc *d, int obj, const char *key)
{
    int c;

    for (c = d->v[obj].child; c >= 0; c = d->v[c].next)
        if (mosqlite__json_key_is(d, c, key))
            return c;
    return -1;
}

/* The column objects of one operation, as the writer reads them: values (insert,
 * upsert), set then where (update), where (delete). Where the writer would refuse the
 * operation for something else first, nothing is checked here: the walk still is. */
static int op_columns(const struct jdoc *d, int o, char *err, size_t errlen)
{
    static const char *const names[] = {"insert", "upsert", "update", "delete"};
    int op = field(d, o, "op"), kind = 0, vals = field(d, o, "values"), set = field(d, o, "set"),
        where = field(d, o, "where");
    char *name;

    if (op >= 0) {
        if (d->v[op].type != J_STRING || !(name = mosqlite__json_string(d, op)))
            return 0;
        for (kind = 0; kind < 4 && strcmp(names[kind], name); kind++)
            ;
        free(name);
    }
    if (kind == 0 || kind == 1) {
        if (set >= 0 || where >= 0 || vals < 0 || d->v[vals].type != J_OBJECT)
            return 0;
        return dup_keys(d, vals, "values", err, errlen);
    }
    if (kind == 2) {
        if (vals >= 0 || set < 0 || d->v[set].type != J_OBJECT || d->v[set].child < 0)
            return 0;
        if (dup_keys(d, set, "set", err, errlen))
            return -1;
    }
    if (kind == 3 && (vals >= 0 || set >= 0))
        return 0;
    if (kind >= 2 && where >= 0 && d->v[where].type == J_OBJECT && d->v[where].child >= 0)
        return dup_keys(d, where, "where", err, errlen);
    return 0;
}

/* The structural objects of a request: each operation and its column objects. */
static int request_dups(const struct jdoc *d, char *err, size_t errlen)
{
    char sub[512];
    int ops, o, i;

    if (field(d, 0, "cancel") >= 0)
        return 0;
    if ((ops = field(d, 0, "ops")) < 0)
        return op_columns(d, 0, err, errlen);
    if (d->v[ops].type != J_ARRAY)
        return 0;
    for (i = 0, o = d->v[ops].child; o >= 0; o = d->v[o].next, i++) {
        if (d->v[o].type != J_OBJECT)
            return 0;
        if (dup_keys(d, o, "the operation", sub, sizeof sub) || op_columns(d, o, sub, sizeof sub))
            return fail(err, errlen, "ops[%d]: %s", i, sub);
    }
    return 0;
}

/* A request's "id", when it has one, as the writer takes it. */
static int bad_id(const struct jdoc *d, char *err, size_t errlen)
{
    int i = field(d, 0, "id"), ok = 0;
    char *id;
    size_t n;

    if (i < 0)
        return 0;
    if (d->v[i].type == J_STRING && (id = mosqlite__json_string(d, i))) {
        for (n = 0; id[n] && (unsigned char)id[n] >= 0x20 && (unsigned char)id[n] <= 0x7e; n++)
            ;
        ok = !id[n] && n >= 1 && n <= 128;
        free(id);
    }
    return ok ? 0 : fail(err, errlen, "\"id\" must be a string of 1 to 128 printable ASCII characters");
}

/* ---- the whole ---- */

void mosqlite__json_free(struct jdoc *d)
{
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* The reader of both: any (a value of any type at the top, named what in every
 * refusal, its objects checked for duplicate keys as "an object"), or else an object. */
static int read_doc(struct jdoc *d, const char *text, size_t len, const char *what,
                    const char *dupctx, int any, char *err, size_t errlen)
{
    struct jp j;
    char scan[512] = "", found[32];
    size_t at;
    int top;

    memset(d, 0, sizeof *d);
    d->s = text;
    d->n = len;
    /* scan[0]: it failed */
    jscan_raw((const unsigned char *)text, len, MOSQLITE_JSON_DEPTH, NULL, NULL, scan, sizeof scan);
    j.d = d;
    j.i = len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3) ? 3 : 0;    /* a BOM, as cJSON skips it */
    j.why = "";
    jp_ws(&j);
    at = j.i;
    top = jp_value(&j, 0, (size_t)-1);
    if (top >= 0) {
        jp_ws(&j);
        if (j.i < len) {
            top = -1;
            j.why = "the end of the text";
        }
    }
    if (top < 0) {
        if (!j.why)
            fail(err, errlen, "out of memory");
        else if (scan[0] && (any || dupctx != J_REQUEST))
            fail(err, errlen, "%s: %s", what, scan);
        else if (scan[0])
            fail(err, errlen, "%s", scan);
        else {
            unsigned char c = AT(&j);
            if (j.i >= len)
                snprintf(found, sizeof found, "the end");
            else if (c < 0x20 || c > 0x7e)
                snprintf(found, sizeof found, "byte 0x%02x", c);
            else
                snprintf(found, sizeof found, "'%c'", c);
            fail(err, errlen, "%s is not %s: invalid JSON at byte %zu, expected %s, found %s",
                 what, any ? "JSON" : "a JSON object", j.i, j.why, found);
        }
        mosqlite__json_free(d);
        return -1;
    }
    if (any && !(scan[0] ? fail(err, errlen, "%s", scan) : walk(d, 0, err, errlen)))
        return 0;
    if (!any && d->v[0].type != J_OBJECT) {
        fail(err, errlen, "%s is not a JSON object ({...}) but %s", what,
             text[at] == '[' ? "an array" : "a single value");
        mosqlite__json_free(d);
        return -1;
    }
    /* The writer's order: the request's own keys, the raw checks, the structure, the
     * rest. A bare column object's top level is read with the structure. */
    if (any ||
        (dupctx == J_REQUEST && dup_keys(d, 0, "the request", err, errlen)) ||
        (scan[0] && fail(err, errlen, "%s", scan)) ||
        (dupctx == J_REQUEST && bad_id(d, err, errlen)) ||
        (dupctx == J_REQUEST ? request_dups(d, err, errlen) : dup_keys(d, 0, dupctx, err, errlen)) ||
        walk(d, 0, err, errlen)) {
        if ((any || dupctx != J_REQUEST) && err && errlen) {
            char words[512];
            snprintf(words, sizeof words, "%s", err);
            snprintf(err, errlen, "%s: %s", what, words);
        }
        mosqlite__json_free(d);
        return -1;
    }
    return 0;
}

int mosqlite__json_read(struct jdoc *d, const char *text, size_t len, const char *what,
                        const char *dupctx, char *err, size_t errlen)
{
    return read_doc(d, text, len, what, dupctx, 0, err, errlen);
}

int mosqlite__json_read_value(struct jdoc *d, const char *text, size_t len, const char *what,
                              char *err, size_t errlen)
{
    return read_doc(d, text, len, what, J_REQUEST, 1, err, errlen);
}
