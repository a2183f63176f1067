/* json.c: the strict JSON reader (see json.h). Pure: no SQL, no network. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonesc.h"
#include "utf8.h"
#include "util.h"

/* One number literal at p[i], checked against RFC 8259's grammar:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?. cJSON alone would take 012,
 * 1. and 1e999 (as +Inf). *end is set past the literal, *real to 1 when it has a
 * fraction or an exponent (it is then a REAL, whatever its value: 3.0, 1E2, -0.0).
 * An integer literal beyond 2^53 cannot be held exactly by the parser's double: it is
 * refused, quoting the literal. */
static int num_run(const unsigned char *p, size_t n, size_t i)
{
    size_t k = i;

    while (k < n && k - i < 40 && p[k] && strchr("0123456789.eE+-", p[k]))
        k++;
    return (int)(k - i);
}

static int scan_number(const unsigned char *p, size_t n, size_t i, size_t *end, int *real,
                       char *err, size_t errlen)
{
    static const char lim[] = UTIL_STR(UTIL_EXACT_INT);
    size_t start = i, d, nd;
    int len;

    /* On a grammar error, quote the run of number characters, as written. */
#define NUM_FAIL(why) \
    (len = num_run(p, n, start), \
     util_fail(err, errlen, "invalid JSON: number \"%.*s\" at byte %zu: %s", len, \
               (const char *)p + start, start, why))
    *real = 0;
    if (p[i] == '-')
        i++;
    d = i;
    if (i >= n || p[i] < '0' || p[i] > '9')
        return NUM_FAIL("a digit must follow \"-\"");
    if (p[i] == '0' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9') {
        i++;
        return NUM_FAIL("leading zeros are not allowed");
    }
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    nd = i - d;
    if (i < n && p[i] == '.') {
        *real = 1;
        i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return NUM_FAIL("a digit must follow \".\"");
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        *real = 1;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return NUM_FAIL("the exponent needs digits");
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
#undef NUM_FAIL
    *end = i;
    len = (int)(i - start > 40 ? 40 : i - start);
    if (*real) {
        char buf[512];
        size_t k = i - start < sizeof buf - 1 ? i - start : sizeof buf - 1;
        memcpy(buf, p + start, k);
        buf[k] = '\0';
        if (i - start >= sizeof buf || !isfinite(strtod(buf, NULL)))
            return util_fail(err, errlen, "number %.*s at byte %zu is out of range: beyond the largest "
                             "double (about 1.8e308)", len, (const char *)p + start, start);
        return 0;
    }
    if (nd > sizeof lim - 1 || (nd == sizeof lim - 1 && memcmp(p + d, lim, nd) > 0))
        return util_fail(err, errlen, "integer %.*s at byte %zu is beyond +-2^53 and would lose "
                         "precision; send it as a string", len, (const char *)p + start, start);
    return 0;
}

/* Remember, in order, which number literals are REALs (see json_mark). */
static int note_number(struct json_nums *nums, int real)
{
    if (nums->n == nums->cap) {
        int c = nums->cap ? nums->cap * 2 : 64;
        unsigned char *p = realloc(nums->real, (size_t)c);
        if (!p)
            return -1;
        nums->real = p;
        nums->cap = c;
    }
    nums->real[nums->n++] = (unsigned char)real;
    return 0;
}

/* One pass over the payload: valid UTF-8, no raw NUL, depth within limit, every \u
 * escape inside strings four hex digits, not \u0000 nor a lone surrogate (jsonesc.h),
 * every number RFC 8259's and exact. */
static int scan_raw(struct json_nums *nums, const unsigned char *p, size_t n, int max_depth, char *err,
                    size_t errlen)
{
    size_t i = 0;
    int depth = 0, instr = 0;

    nums->n = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t k = utf8_seqlen(p + i, n - i);
            if (!k)
                return util_fail(err, errlen, "payload is not valid UTF-8 (byte %zu)", i);
            i += k;
            continue;
        }
        if (c == 0)
            return util_fail(err, errlen, "payload contains a NUL byte (byte %zu)", i);
        if (instr) {
            if (c == '\\' && i + 1 < n && p[i + 1] == 'u') {
                size_t k;
                if (jsonesc_u(p, n, i, &k, err, errlen))
                    return -1;
                i += k;
                continue;
            }
            if (c == '\\') {
                i += 2;
                continue;
            }
            if (c == '"')
                instr = 0;
            else if (c < 0x20)
                return util_fail(err, errlen, "invalid JSON: control character 0x%02x in a string "
                            "(byte %zu); escape it", c, i);
        } else if (c == '"') {
            instr = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t end;
            int real;
            if (scan_number(p, n, i, &end, &real, err, errlen))
                return -1;
            if (note_number(nums, real))
                return util_fail(err, errlen, "out of memory");
            i = end;
            continue;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return util_fail(err, errlen, "nesting too deep (limit %d)", max_depth);
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuse an object that has the same key twice. Pairwise for small objects, sorted
 * for large ones, so a hostile object with many keys stays cheap. */
int json_dup_keys(const cJSON *obj, const char *what, char *err, size_t errlen)
{
    const cJSON *a, *b;
    int n = 0, i;
    const char **keys;

    for (a = obj->child; a; a = a->next)
        n++;
    if (n <= 16) {
        for (a = obj->child; a; a = a->next)
            for (b = a->next; b; b = b->next)
                if (!strcmp(a->string, b->string))
                    return util_fail(err, errlen, "duplicate key \"%.100s\" in %s", a->string, what);
        return 0;
    }
    if (!(keys = malloc((size_t)n * sizeof *keys)))
        return util_fail(err, errlen, "out of memory");
    for (i = 0, a = obj->child; a; a = a->next)
        keys[i++] = a->string;
    qsort(keys, (size_t)n, sizeof *keys, cmp_str);
    for (i = 1; i < n; i++)
        if (!strcmp(keys[i - 1], keys[i])) {
            util_fail(err, errlen, "duplicate key \"%.100s\" in %s", keys[i], what);
            free(keys);
            return -1;
        }
    free(keys);
    return 0;
}

const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

/* After the structural checks: every object of the tree (values given as JSON
 * included) without duplicate keys, and each number marked JSON_REAL when its
 * literal had a fraction or an exponent (scan_raw noted them in document order, the
 * order of a depth-first walk of cJSON's tree). */
static int walk(const struct json_nums *nums, cJSON *v, int *k, char *err, size_t errlen)
{
    cJSON *c;

    if (cJSON_IsNumber(v)) {
        if (*k < nums->n && nums->real[*k])
            v->type |= JSON_REAL;
        (*k)++;
        return 0;
    }
    if (cJSON_IsObject(v) && v->child && json_dup_keys(v, "an object", err, errlen))
        return -1;
    for (c = v->child; c; c = c->next)
        if ((cJSON_IsObject(c) || cJSON_IsArray(c) || cJSON_IsNumber(c)) && walk(nums, c, k, err, errlen))
            return -1;
    return 0;
}

int json_mark(cJSON *root, const struct json_nums *nums, char *err, size_t errlen)
{
    int k = 0;

    return walk(nums, root, &k, err, errlen);
}

/* For cJSON after a failed scan, so that a refused request still has its id and
 * reply_to: a copy of the payload in which every NUL, raw or \u0000 inside a string,
 * is U+0001 instead, and so is a lone surrogate escape, which cJSON would not read (the
 * same length, so byte offsets hold). NULL when out of memory. */
static char *uncut(const char *payload, size_t len)
{
    char *c = malloc(len ? len : 1);
    size_t i;
    int instr = 0;

    if (!c)
        return NULL;
    memcpy(c, payload, len);
    for (i = 0; i < len; i++) {
        if (!c[i])
            c[i] = 1;
        else if (!instr)
            instr = c[i] == '"';
        else if (c[i] == '"')
            instr = 0;
        else if (c[i] == '\\') {
            const unsigned char *u = (const unsigned char *)c;
            size_t k = 2;
            char why[256];
            if (i + 1 < len && c[i + 1] == 'u' && jsonesc_u(u, len, i, &k, why, sizeof why)) {
                if (jsonesc_hex4(u, len, i + 2) >= 0)
                    memcpy(c + i + 2, "0001", 4);
                else
                    k = 2;
            }
            i += k - 1;
        }
    }
    return c;
}

int json_parse(cJSON **root, struct json_nums *nums, size_t max_payload, int max_depth,
               const char *payload, size_t len, const char *what, int *scan_err,
               char *err, size_t errlen)
{
    const char *end = NULL, *text = payload;
    char *copy = NULL;

    *root = NULL;
    *scan_err = 0;
    if (len > max_payload)
        return util_fail(err, errlen, "payload too large: %zu bytes (limit %zu)", len, max_payload);
    if (len == 0)
        return util_fail(err, errlen, "empty payload: expected a JSON object");
    *scan_err = scan_raw(nums, (const unsigned char *)payload, len, max_depth, err, errlen);
    if (*scan_err && !(text = copy = uncut(payload, len)))
        return -1;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (end)
        end = payload + (end - text);
    free(copy);
    if (!*root)
        return *scan_err ? -1 : util_fail(err, errlen, "invalid JSON at byte %zu", end ? (size_t)(end - payload) : 0);
    if (end && (size_t)(end - payload) < len) {
        size_t k = (size_t)(end - payload);
        while (k < len && (payload[k] == ' ' || payload[k] == '\n' || payload[k] == '\r' || payload[k] == '\t'))
            k++;
        if (k < len)
            return util_fail(err, errlen, "invalid JSON: unexpected text at byte %zu", k);
    }
    if (!cJSON_IsObject(*root))
        return util_fail(err, errlen, "%s must be a JSON object", what);
    return 0;
}

int json_read(cJSON **root, struct json_nums *nums, size_t max_payload, int max_depth,
              const char *payload, size_t len, char *err, size_t errlen)
{
    int scan_err;

    if (json_parse(root, nums, max_payload, max_depth, payload, len, "a request", &scan_err, err,
                   errlen) || scan_err || json_dup_keys(*root, "the request", err, errlen))
        return -1;
    return json_mark(*root, nums, err, errlen);
}

void json_nums_free(struct json_nums *nums)
{
    free(nums->real);
    memset(nums, 0, sizeof *nums);
}
