/* utf8.h: strict UTF-8 checking (no overlongs, no surrogates, nothing past U+10FFFF). */
#ifndef MOSQLITE_UTF8_H
#define MOSQLITE_UTF8_H

#include <stddef.h>

/* libmosqlite holds these too (for jscan.c), hidden: they are not part of its API. */
#ifndef MOSQLITE_INTERNAL
#define MOSQLITE_INTERNAL __attribute__((visibility("hidden")))
#endif

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if the bytes at s
 * are not the start of a valid sequence within n bytes. */
MOSQLITE_INTERNAL size_t utf8_seqlen(const unsigned char *s, size_t n);

/* Offset of the first invalid byte in s[0..n), or n when it is all valid UTF-8. */
MOSQLITE_INTERNAL size_t utf8_check(const unsigned char *s, size_t n);

#endif
