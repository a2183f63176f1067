/* jscan.c: the raw-byte pass of the strict JSON readers (see jscan.h). */
#include "jscan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonesc.h"
#include "utf8.h"
#include "util.h"

/* The largest integer a double holds exactly, 2^53, as the refusal writes it. */
static const char exact_int[] = UTIL_STR(UTIL_EXACT_INT);

/* Put the reason in err and be -1: every refusal reads `return FAIL("...", ...)`. */
#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* The run of number characters at p[i], at most 40, for quoting a bad literal. */
static int num_run(const unsigned char *p, size_t n, size_t i)
{
    size_t k = i;

    while (k < n && k - i < 40 && p[k] && strchr("0123456789.eE+-", p[k]))
        k++;
    return (int)(k - i);
}

/* A real literal p[start..end) must be a finite double. */
static int check_real(const unsigned char *p, size_t start, size_t end, char *err, size_t errlen)
{
    char buf[512];
    size_t k = end - start < sizeof buf - 1 ? end - start : sizeof buf - 1;
    int len = (int)(end - start > 40 ? 40 : end - start);

    memcpy(buf, p + start, k);
    buf[k] = '\0';
    if (end - start >= sizeof buf || !isfinite(strtod(buf, NULL)))
        return FAIL("number %.*s at byte %zu is out of range: beyond the largest "
                    "double (about 1.8e308)", len, (const char *)p + start, start);
    return 0;
}

/* One number literal at p[i], against RFC 8259's grammar. *end is set past the literal,
 * *real to 1 when it has a fraction or an exponent (it is then a REAL, whatever its
 * value: 3.0, 1E2, -0.0). An integer literal beyond 2^53 cannot be held exactly by a
 * double: it is refused, quoting the literal. */
static int scan_number(const unsigned char *p, size_t n, size_t i, size_t *end, int *real,
                       char *err, size_t errlen)
{
    size_t start = i, d, nd;
    int len;

    /* On a grammar error, quote the run of number characters, as written. */
#define NUM_FAIL(why) \
    (len = num_run(p, n, start), \
     FAIL("invalid JSON: number \"%.*s\" at byte %zu: %s", len, \
          (const char *)p + start, start, why))
    *real = 0;
    if (p[i] == '-')
        i++;
    d = i;
    if (i >= n || p[i] < '0' || p[i] > '9')
        return NUM_FAIL("a digit must follow \"-\"");
    if (p[i] == '0' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')
        return NUM_FAIL("leading zeros are not allowed");
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    nd = i - d;
    if (i < n && p[i] == '.') {
        *real = 1;
        if (++i >= n || p[i] < '0' || p[i] > '9')
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
    if (*real)
        return check_real(p, start, i, err, errlen);
    len = (int)(i - start > 40 ? 40 : i - start);
    if (nd > sizeof exact_int - 1 || (nd == sizeof exact_int - 1 && memcmp(p + d, exact_int, nd) > 0))
        return FAIL("integer %.*s at byte %zu is beyond +-2^53 and would lose "
                    "precision; send it as a string", len, (const char *)p + start, start);
    return 0;
}

int jscan_raw(const unsigned char *p, size_t n, int max_depth, jscan_number_fn on_number, void *ctx,
              char *err, size_t errlen)
{
    size_t i = 0, k;
    int depth = 0, instr = 0, real;

    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x80) {
            if (!(k = utf8_seqlen(p + i, n - i)))
                return FAIL("payload is not valid UTF-8 (byte %zu)", i);
            i += k;
            continue;
        }
        if (c == 0)
            return FAIL("payload contains a NUL byte (byte %zu)", i);
        if (instr) {
            if (c == '\\' && i + 1 < n && p[i + 1] == 'u') {
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
                return FAIL("invalid JSON: control character 0x%02x in a string "
                            "(byte %zu); escape it", c, i);
        } else if (c == '"') {
            instr = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (scan_number(p, n, i, &i, &real, err, errlen))
                return -1;
            if (on_number && on_number(ctx, real))
                return FAIL("out of memory");
            continue;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return FAIL("nesting too deep (limit %d)", max_depth);
        } else if (c == '}' || c == ']') {
            depth--;
        }
        i++;
    }
    return 0;
}
