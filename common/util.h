/* util.h: the few helpers every part of the writer needs once: the monotonic clock,
 * the error setter behind the `int status + caller's err buffer` convention, and
 * string joining. One copy each, so they cannot drift apart. */
#ifndef MOSQLITE_UTIL_H
#define MOSQLITE_UTIL_H

#include <stddef.h>

/* 2^53: integers up to this size (either sign) are exact in a JSON number, which
 * parsers hold as an IEEE double. Beyond it the writer refuses an integer literal in a
 * request and writes an integer as a string in what it publishes. No suffix, so the
 * number can also be quoted as text with UTIL_STR(). */
#define UTIL_EXACT_INT 9007199254740992

#define UTIL_STR_(x) #x
#define UTIL_STR(x)  UTIL_STR_(x)

/* Retrying what failed (a broker connection, a database that cannot be written):
 * the first wait, doubled on each failure up to the last. */
#define UTIL_BACKOFF_FIRST_MS 100
#define UTIL_BACKOFF_MAX_MS   5000

/* The wait after one more failure, given the last wait (0 for none yet). */
int util_backoff(int last_ms);

/* Milliseconds on the monotonic clock: whole, and with the fraction. */
long long util_now_ms(void);
double util_now_exact_ms(void);

/* Wall-clock time (UTC), for what is due at a given time: milliseconds since the
 * epoch now; an RFC 3339 date-time ("2026-11-24T23:00:00Z", a fraction and a numeric
 * offset allowed) read as such (0, or -1 when it is not one; a fraction finer than a
 * millisecond rounds up, so the time is never early); and written back as
 * 2026-11-24T23:00:00.000Z into out (UTIL_TIME_LEN bytes). */
#define UTIL_TIME_LEN 32
long long util_wall_ms(void);
int util_time_parse(const char *s, long long *ms);
void util_time_format(long long ms, char *out);

/* Format a reason into err (errlen bytes, always terminated) and return -1, so a
 * check reads `return util_fail(err, errlen, "...", ...)`. */
int util_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* a followed by b in a new string the caller frees; NULL when out of memory. */
char *util_join(const char *a, const char *b);

#endif
