/* fuzz_cron.c: libFuzzer target over cron_parse() and the tick functions.
 *
 * An input is "FIELDS\nTIME": FIELDS is five fields split at single spaces (fewer give
 * missing fields, an empty one an empty field) or a macro when it starts with '@';
 * TIME, optional, a start time in milliseconds (decimal, taken modulo the range the
 * tick functions accept). Besides the sanitizers, the target checks what cron.h
 * promises: an error comes with a message; a schedule parsed has every field non-empty
 * and within its values; from the start time, eight cron_next calls each succeed (or
 * fail only when no tick is left before the range's end), go forward, stay within the
 * range, land on a whole minute that the C library's calendar says matches the
 * fields, with no tick between (cron_latest just before each is at or before the one
 * before it); and cron_missed over the span counts them.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text, long long a, long long b)
{
    fprintf(stderr, "fuzz_cron: %s: \"%s\" %lld %lld\n", what, text, a, b);
    abort();
}

/* Whether ms is a tick of c, by gmtime_r's calendar. */
static int matches(const struct cron *c, long long ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    int dom, dow;

    if (ms % 60000 || !gmtime_r(&s, &tm))
        return 0;
    dom = c->dom >> tm.tm_mday & 1;
    dow = c->dow >> tm.tm_wday & 1;
    return (c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) &&
           (c->month >> (tm.tm_mon + 1) & 1) && (c->dom_or_dow ? dom || dow : dom && dow);
}

static void check_fields(const struct cron *c, const char *text)
{
    if (!c->minute || c->minute >> 60 || !c->hour || c->hour >> 24 || !(c->dom & ~1U) ||
        (c->dom & 1) || !(c->month & 0x1ffe) || (c->month & ~0x1ffeU) || !c->dow || c->dow >> 7)
        fail("fields out of their range", text, (long long)c->minute, c->hour);
}

static void check_ticks(const struct cron *c, const char *text, long long start)
{
    long long t = start, next, before, first = 0, n;
    int i;

    for (i = 0; i < 8; i++) {
        if (cron_next(c, t, &next)) {
            /* None left before the range's end: the last tick in range is not after t. */
            if (cron_latest(c, CRON_MAX_MS, &before) || before > t)
                fail("cron_next found no tick", text, t, 0);
            break;
        }
        if (next <= t || next > CRON_MAX_MS || !matches(c, next))
            fail("cron_next: not a later tick", text, t, next);
        if (cron_latest(c, next, &before) || before != next)
            fail("cron_latest of a tick is not that tick", text, next, before);
        if (next - 1 >= CRON_MIN_MS && !cron_latest(c, next - 1, &before) && before > t)
            fail("a tick between two cron_next", text, t, before);
        t = next;
    }
    if (i) {
        n = cron_missed(c, start, t, 100, &first);
        if (n != i || (!cron_next(c, start, &next) && first != next))
            fail("cron_missed does not count the ticks", text, n, i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *nl, *p, err[256], shown[300];
    const char *fields[5] = {NULL, NULL, NULL, NULL, NULL};
    const long long span = CRON_MAX_MS - CRON_MIN_MS + 1;
    long long start = 0;
    struct cron c;
    int k = 0, rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    snprintf(shown, sizeof shown, "%s", text);
    if ((nl = strchr(text, '\n'))) {
        *nl = 0;
        start = strtoll(nl + 1, NULL, 10) % span;
        start += start < CRON_MIN_MS ? span : start > CRON_MAX_MS ? -span : 0;
    }
    err[0] = 0;
    if (text[0] == '@') {
        rc = cron_parse_macro(&c, text, err, sizeof err);
    } else {
        for (p = text; p && k < 5; k++) {
            fields[k] = p;
            if ((p = strchr(p, ' ')))
                *p++ = 0;
        }
        rc = cron_parse(&c, fields, err, sizeof err);
    }
    if (rc && !err[0])
        fail("an error without a message", shown, rc, 0);
    if (!rc) {
        check_fields(&c, shown);
        check_ticks(&c, shown, start);
    }
    free(text);
    return 0;
}
