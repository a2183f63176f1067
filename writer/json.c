/* json.c: the strict JSON reader (see json.h). Pure: no SQL, no network. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jbuf.h"
#include "jscan.h"
#include "jsonesc.h"
#include "util.h"

/* Remember, in order, which number literals are REALs (see json_mark): jscan_raw's
 * on_number. */
static int note_number(void *ctx, int real)
{
    struct json_nums *nums = ctx;

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
 * literal had a fraction or an exponent (jscan_raw noted them in document order, the
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
    nums->n = 0;
    *scan_err = jscan_raw((const unsigned char *)payload, len, max_depth, note_number, nums, err, errlen);
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

void json_print(struct jbuf *b, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        jb_putc(b, cJSON_IsObject(v) ? '{' : '[');
        for (c = v->child; c; c = c->next) {
            if (c != v->child)
                jb_putc(b, ',');
            if (cJSON_IsObject(v))
                jb_key(b, c->string);
            json_print(b, c);
        }
        jb_putc(b, cJSON_IsObject(v) ? '}' : ']');
    } else if (cJSON_IsString(v)) {
        jb_cstr(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        if (!(v->type & JSON_REAL) && v->valuedouble == (double)(long long)v->valuedouble)
            jb_int(b, (long long)v->valuedouble);
        else
            jb_double(b, v->valuedouble);
    } else {
        jb_puts(b, cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false" : "null");
    }
}

char *json_text(const cJSON *v)
{
    struct jbuf b = {0};

    json_print(&b, v);
    jb_putc(&b, '\0');
    if (b.oom) {
        jb_free(&b);
        return NULL;
    }
    return b.s;
}
