/* jsonesc.h: the \u escapes a JSON string may hold, and the words for those it may not,
 * shared by the raw scan of the strict JSON readers (jscan.c) and the writer's copy of
 * a refused payload (writer/json.c), so that both agree on which escapes are refused.
 *
 * cJSON reads "a\uzzzzb" as "a" (the string stops at the bad escape) and refuses a lone
 * surrogate only with its position; \u0000 would end a C string. So a \u escape must be
 * four hex digits, not 0000, and a surrogate only as a pair (a high one, \uD800 to
 * \uDBFF, then at once a low one, \uDC00 to \uDFFF). */
#ifndef MOSQLITE_JSONESC_H
#define MOSQLITE_JSONESC_H

#include <stddef.h>
#include <stdio.h>

/* The four hex digits at p[i..i+4) as a number, or -1 when they are not. */
static inline long jsonesc_hex4(const unsigned char *p, size_t n, size_t i)
{
    long v = 0;
    size_t k;

    for (k = i; k < i + 4; k++) {
        unsigned c = k < n ? p[k] : 0;
        if (c >= '0' && c <= '9')
            v = v << 4 | (long)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v << 4 | (long)((c | 0x20) - 'a' + 10);
        else
            return -1;
    }
    return v;
}

/* The \u escape at p[i] (p[i] is the backslash, p[i + 1] the u): 0 with its length in
 * *len (6, or 12 for a surrogate pair), or -1 with the reason in err. */
static inline int jsonesc_u(const unsigned char *p, size_t n, size_t i, size_t *len, char *err,
                            size_t errlen)
{
    long cp = jsonesc_hex4(p, n, i + 2), lo;

    *len = 6;
    if (cp < 0)
        snprintf(err, errlen, "invalid JSON: \"\\u\" must be followed by four hex digits at byte %zu", i);
    else if (cp == 0)
        snprintf(err, errlen, "string contains \\u0000 (byte %zu): NUL characters are not supported", i);
    else if (cp >= 0xdc00 && cp <= 0xdfff)
        snprintf(err, errlen, "invalid JSON: \"\\u%.4s\" at byte %zu is a low surrogate without a "
                 "high one (\\uD800 to \\uDBFF) before it", (const char *)p + i + 2, i);
    else if (cp < 0xd800 || cp > 0xdbff)
        return 0;
    else if (i + 7 < n && p[i + 6] == '\\' && p[i + 7] == 'u' &&
             (lo = jsonesc_hex4(p, n, i + 8)) >= 0xdc00 && lo <= 0xdfff) {
        *len = 12;
        return 0;
    } else
        snprintf(err, errlen, "invalid JSON: \"\\u%.4s\" at byte %zu is a high surrogate without a "
                 "low one (\\uDC00 to \\uDFFF) after it", (const char *)p + i + 2, i);
    return -1;
}

#endif
