/* jscan.h: the raw-byte pass of the strict JSON readers, shared by the writer's
 * (writer/json.c, before cJSON) and the publisher's (publisher/strict.c, before its
 * grammar), so that both refuse the same bytes in the same words. Pure: no cJSON, no
 * allocation. libmosqlite holds it too (hidden: it is not part of the library's API).
 *
 * What cJSON alone would let through: a string cut at \u0000 or a raw NUL, 012, 1. and
 * 1e999 (as +Inf), integers beyond 2^53 silently rounded, invalid UTF-8, control
 * characters in strings, and nesting deep enough to exhaust the stack. */
#ifndef MOSQLITE_JSCAN_H
#define MOSQLITE_JSCAN_H

#include <stddef.h>

#ifndef MOSQLITE_INTERNAL
#define MOSQLITE_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Called once a number literal, in document order: real is 1 when the literal has a
 * fraction or an exponent. Nonzero only when out of memory. */
typedef int (*jscan_number_fn)(void *ctx, int real);

/* One pass over p[0..n): valid UTF-8, no raw NUL, nesting within max_depth, every \u
 * escape inside strings four hex digits, not \u0000 nor a lone surrogate (jsonesc.h),
 * no raw control character in a string, every number RFC 8259's
 * (-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?), finite, and an integer
 * within +-2^53 (quoting the literal). on_number (may be NULL) is told of each number.
 * 0, or -1 with the reason in err. */
MOSQLITE_INTERNAL int jscan_raw(const unsigned char *p, size_t n, int max_depth,
                                jscan_number_fn on_number, void *ctx, char *err, size_t errlen);

#endif
