/* util.h: the few helpers every part of the writer needs once: the clocks,
 * the error setter behind the `int status + caller's err buffer` convention, and
 * string joining. One copy each, so they cannot drift apart. */
#ifndef MOSQLITE_UTIL_H
#define MOSQLITE_UTIL_H

#include <stddef.h>
#include <time.h>

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

/* ---- the clocks: here, inline, so that libmosqlite, which does not link util.c,
 * reads the same ones (the only clock_gettime calls of the tree). ---- */

/* Milliseconds on the monotonic clock: whole, and with the fraction. */
static inline long long util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double util_now_exact_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Milliseconds since the epoch on the wall clock (UTC). */
static inline long long util_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The time ms milliseconds from now on clock (CLOCK_REALTIME for a condition variable
 * with the default clock, CLOCK_MONOTONIC for one set to it), as pthread_cond_timedwait
 * takes it. A negative ms is now. */
static inline struct timespec util_deadline(clockid_t clock, long long ms)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    if (ms > 0) {
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    return ts;
}

/* Wall-clock time (UTC), for what is due at a given time (util_wall_ms above); an RFC 3339 date-time ("2026-11-24T23:00:00Z", a fraction and a numeric
 * offset allowed) read as such (0, or -1 when it is not one; a fraction finer than a
 * millisecond rounds up, so the time is never early); and written back as
 * 2026-11-24T23:00:00.000Z into out (UTIL_TIME_LEN bytes). */
#define UTIL_TIME_LEN 32
int util_time_parse(const char *s, long long *ms);
void util_time_format(long long ms, char *out);

/* Days from 1970-01-01 to y-m-d (m 1..12) in the proleptic Gregorian calendar, negative
 * before it: the one calendar of the tree (RFC 3339 times here, cron schedules). */
long long util_days_from_civil(long long y, int m, int d);

/* Format a reason into err (errlen bytes, always terminated) and return -1, so a
 * check reads `return util_fail(err, errlen, "...", ...)`. */
int util_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* a followed by b in a new string the caller frees; NULL when out of memory. */
char *util_join(const char *a, const char *b);

#endif
