/* test_cron.c: cron schedules (common/cron.c): the fields and their exact errors,
 * schedules that never fire, next and latest ticks over month ends, leap years, the
 * day-of-month/day-of-week rule and the year's end, the catch-up count, and a
 * cross-check of cron_next and cron_latest against a minute-by-minute scan for a few
 * hundred random schedules. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "unit.h"
#include "util.h"

/* "a b c d e" split into its five fields (in buf); the number of fields found. */
static int split(const char *line, char *buf, size_t n, const char *f[5])
{
    int k = 0;
    char *p;

    snprintf(buf, n, "%s", line);
    for (p = strtok(buf, " "); p && k < 5; p = strtok(NULL, " "))
        f[k++] = p;
    return k;
}

static int parse(struct cron *c, const char *line, char *err, size_t errlen)
{
    char buf[256];
    const char *f[5] = {0};

    split(line, buf, sizeof buf, f);
    return cron_parse(c, f, err, errlen);
}

static long long t(const char *s)
{
    long long ms = 0;

    if (util_time_parse(s, &ms))
        unit_check(0, "cron: test time %s", s);
    return ms;
}

static void check_parse(void)
{
    static const struct {
        const char *line, *err;
    } bad[] = {
        {"60 * * * *", "minute: \"60\" is out of range 0-59"},
        {"* 24 * * *", "hour: \"24\" is out of range 0-23"},
        {"* * 0 * *", "day of month: \"0\" is out of range 1-31"},
        {"* * 32 * *", "day of month: \"32\" is out of range 1-31"},
        {"* * * 13 *", "month: \"13\" is out of range 1-12"},
        {"* * * * 8", "day of week: \"8\" is out of range 0-7"},
        {"99999999999999999999 * * * *", "minute: \"99999999999999999999\" is out of range 0-59"},
        {"1x * * * *", "minute: \"1x\" is not a number"},
        {"MON * * * *", "minute: \"MON\" is not a number"},
        {"* * * JANUARY *", "month: \"JANUARY\" is not a number or a month name (JAN-DEC)"},
        {"* * * * FUN", "day of week: \"FUN\" is not a number or a day name (SUN-SAT)"},
        {"1,,2 * * * *", "minute: \"1,,2\" has an empty item"},
        {"1, * * * *", "minute: \"1,\" has an empty item"},
        {",1 * * * *", "minute: \",1\" has an empty item"},
        {"5-3 * * * *", "minute: \"5-3\": the range runs backwards"},
        {"* * * * SAT-SUN", "day of week: \"SAT-SUN\": the range runs backwards"},
        {"*/0 * * * *", "minute: step \"0\" is out of range 1-59"},
        {"* */24 * * *", "hour: step \"24\" is out of range 1-23"},
        {"*/x * * * *", "minute: step \"x\" is not a number"},
        {"* * * * */MON", "day of week: step \"MON\" is not a number"},
        {"*/ * * * *", "minute: \"*/\": a number is missing"},
        {"1- * * * *", "minute: \"1-\": a number is missing"},
        {"-1 * * * *", "minute: \"-1\": a number is missing"},
        {"+1 * * * *", "minute: \"+1\": a number is missing"},
        {"1-2-3 * * * *", "minute: \"1-2-3\": unexpected \"-3\""},
        {"1/2/3 * * * *", "minute: \"1/2/3\": unexpected \"/3\""},
        {"** * * * *", "minute: \"**\": unexpected \"*\""},
        {"*-5 * * * *", "minute: \"*-5\": unexpected \"-5\""},
        {"1.5 * * * *", "minute: \"1.5\": unexpected \".5\""},
        {"0 0 30 2 *", "day of month: no month in \"2\" has a day in \"30\": the schedule never fires"},
        {"0 0 31 4,6,9,11 *",
         "day of month: no month in \"4,6,9,11\" has a day in \"31\": the schedule never fires"},
        {"0 0 30-31 FEB */1",
         "day of month: no month in \"FEB\" has a day in \"30-31\": the schedule never fires"},
    };
    struct cron c;
    char err[256];
    size_t i;
    const char *missing[5] = {"*", "*", "*", "*", NULL}, *empty[5] = {"*", "", "*", "*", "*"};

    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        unit_check(parse(&c, bad[i].line, err, sizeof err) == -1, "cron: \"%s\" refused", bad[i].line);
        unit_check_str(err, bad[i].err, "cron: \"%s\": its error", bad[i].line);
    }
    unit_check(cron_parse(&c, missing, err, sizeof err) == -1, "cron: a missing field refused");
    unit_check_str(err, "day of week: the field is missing", "cron: a missing field: its error");
    unit_check(cron_parse(&c, empty, err, sizeof err) == -1, "cron: an empty field refused");
    unit_check_str(err, "hour: the field is empty", "cron: an empty field: its error");

    unit_check(!parse(&c, "*/15 9-17 * * MON-FRI", err, sizeof err) &&
               c.minute == (1ULL | 1ULL << 15 | 1ULL << 30 | 1ULL << 45) && c.hour == 0x3fe00 &&
               c.dom == 0xfffffffe && c.month == 0x1ffe && c.dow == 0x3e && !c.dom_or_dow,
               "cron: */15 9-17 * * MON-FRI");
    unit_check(!parse(&c, "05 0-23/6 1,15 jan-Mar/2 5-7", err, sizeof err) &&
               c.minute == 1ULL << 5 && c.hour == 0x41041 && c.dom == 0x8002 &&
               c.month == 0xa && c.dow == 0x61 && c.dom_or_dow,
               "cron: leading zeros, N-M/S, names in any case, 7 as Sunday");
    unit_check(!parse(&c, "50/3 20/2 28/2 11/1 3/2", err, sizeof err) &&
               c.minute == (1ULL << 50 | 1ULL << 53 | 1ULL << 56 | 1ULL << 59) &&
               c.hour == (1U << 20 | 1U << 22) && c.dom == (1U << 28 | 1U << 30) &&
               c.month == 0x1800 && c.dow == 0x28,
               "cron: N/S runs to the field's end (Saturday for the day of week)");
    unit_check(!parse(&c, "0 0 * * 7", err, sizeof err) && c.dow == 1 &&
               !parse(&c, "0 0 * * */7", err, sizeof err) && c.dow == 1 && !c.dom_or_dow,
               "cron: 7 and */7 are Sunday");
    unit_check(!parse(&c, "0 0 30 2 MON", err, sizeof err) && c.dom_or_dow,
               "cron: 30 February or a Monday fires (on the Mondays)");
    unit_check(!parse(&c, "0 0 29 2 *", err, sizeof err), "cron: 29 February fires");
}

static int same(const struct cron *a, const struct cron *b)
{
    return a->minute == b->minute && a->hour == b->hour && a->dom == b->dom &&
           a->month == b->month && a->dow == b->dow && a->dom_or_dow == b->dom_or_dow;
}

static void check_macros(void)
{
    struct cron a, b;
    char err[256];

    unit_check(!cron_parse_macro(&a, "@daily", err, sizeof err) &&
               !parse(&b, "0 0 * * *", err, sizeof err) && same(&a, &b),
               "cron: @daily is 0 0 * * *");
    unit_check(!cron_parse_macro(&a, "@weekly", err, sizeof err) &&
               !parse(&b, "0 0 * * 0", err, sizeof err) && same(&a, &b),
               "cron: @weekly is 0 0 * * 0");
    unit_check(!cron_parse_macro(&a, "@annually", err, sizeof err) &&
               !parse(&b, "0 0 1 1 *", err, sizeof err) && same(&a, &b),
               "cron: @annually is 0 0 1 1 *");
    unit_check(cron_parse_macro(&a, "@reboot", err, sizeof err) == -1, "cron: @reboot refused");
    unit_check_str(err, "\"@reboot\" is not a schedule: @hourly, @daily, @midnight, @weekly, "
                   "@monthly, @yearly or @annually", "cron: @reboot: its error");
}

/* line, a time, the first tick after it (next) and the last at or before it (latest). */
static const struct {
    const char *line, *at, *next, *latest;
} ticks[] = {
    {"* * * * *", "2025-06-01T10:00:00Z", "2025-06-01T10:01:00Z", "2025-06-01T10:00:00Z"},
    {"* * * * *", "2025-06-01T09:59:59.999Z", "2025-06-01T10:00:00Z", "2025-06-01T09:59:00Z"},
    {"*/15 * * * *", "2025-06-01T10:07:30Z", "2025-06-01T10:15:00Z", "2025-06-01T10:00:00Z"},
    {"5-20/5 * * * *", "2025-06-01T10:20:00Z", "2025-06-01T11:05:00Z", "2025-06-01T10:20:00Z"},
    {"0 0 31 * *", "2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z", "2025-01-31T00:00:00Z"},
    {"0 0 31 * *", "2025-04-15T00:00:00Z", "2025-05-31T00:00:00Z", "2025-03-31T00:00:00Z"},
    {"0 12 30 * *", "2024-02-10T00:00:00Z", "2024-03-30T12:00:00Z", "2024-01-30T12:00:00Z"},
    {"0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z", "2096-02-29T00:00:00Z"},
    {"0 0 29 2 *", "2103-01-01T00:00:00Z", "2104-02-29T00:00:00Z", "2096-02-29T00:00:00Z"},
    {"0 0 29 2 *", "1996-03-01T00:00:00Z", "2000-02-29T00:00:00Z", "1996-02-29T00:00:00Z"},
    {"0 0 29 2 *", "1897-01-01T00:00:00Z", "1904-02-29T00:00:00Z", "1896-02-29T00:00:00Z"},
    {"0 0 29 2 1", "2025-01-01T00:00:00Z", "2025-02-03T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 29 2 1", "2025-02-03T00:00:00Z", "2025-02-10T00:00:00Z", "2025-02-03T00:00:00Z"},
    {"0 0 29 2 */1", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 29 2 MON", "2024-02-26T00:00:00Z", "2024-02-29T00:00:00Z", "2024-02-26T00:00:00Z"},
    {"0 0 */29 2 MON", "2025-01-01T00:00:00Z", "2027-02-01T00:00:00Z", "2021-02-01T00:00:00Z"},
    {"0 0 * * 7", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z", "2024-12-29T00:00:00Z"},
    {"0 0 * * 0", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z", "2024-12-29T00:00:00Z"},
    {"0 0 * * sun", "2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z", "2025-01-05T00:00:00Z"},
    {"0 0 13 * FRI", "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z", "2024-12-27T00:00:00Z"},
    {"0 0 13 * FRI", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z", "2025-01-10T00:00:00Z"},
    {"0 0 */2 * MON", "2025-01-01T00:00:00Z", "2025-01-13T00:00:00Z", "2024-12-23T00:00:00Z"},
    {"0 0 13 * *", "2025-01-01T00:00:00Z", "2025-01-13T00:00:00Z", "2024-12-13T00:00:00Z"},
    {"59 23 31 12 *", "2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z", "2025-12-31T23:59:00Z"},
    {"0 0 1 1 *", "2025-12-31T23:59:59.999Z", "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
    {"0 0 1 1 *", "1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z", "1969-01-01T00:00:00Z"},
    {"30 12 * * *", "1900-03-01T13:00:00Z", "1900-03-02T12:30:00Z", "1900-03-01T12:30:00Z"},
    {"0 22,23 * * *", "2025-06-01T22:00:00Z", "2025-06-01T23:00:00Z", "2025-06-01T22:00:00Z"},
    {"45 0,23 * * *", "2025-06-01T00:30:00Z", "2025-06-01T00:45:00Z", "2025-05-31T23:45:00Z"},
    {"0 9 * * 1-5", "2025-01-03T09:00:00Z", "2025-01-06T09:00:00Z", "2025-01-03T09:00:00Z"},
    {"15 3 1 jan-mar/2 *", "2025-01-01T03:16:00Z", "2025-03-01T03:15:00Z", "2025-01-01T03:15:00Z"},
    /* The range's ends: a tick past 9999 or before year 1 is none ("error"). */
    {"0 0 1 1 *", "9999-06-01T00:00:00Z", "error", "9999-01-01T00:00:00Z"},
    {"00 00 2 2 *", "9999-02-02T00:00:00Z", "error", "9999-02-02T00:00:00Z"},
    {"00 00 2 2 *", "9998-02-02T00:00:00Z", "9999-02-02T00:00:00Z", "9998-02-02T00:00:00Z"},
    {"0 0 2 2 *", "0001-02-01T23:59:59.999Z", "0001-02-02T00:00:00Z", "error"},
    {"59 23 31 12 *", "9999-12-31T23:58:59.999Z", "9999-12-31T23:59:00Z", "9998-12-31T23:59:00Z"},
    {"59 23 31 12 *", "9999-12-31T23:59:59.999Z", "error", "9999-12-31T23:59:00Z"},
};

static void check_ticks(void)
{
    char err[256], got[UTIL_TIME_LEN], want[UTIL_TIME_LEN];
    struct cron c;
    long long ms;
    size_t i;

    for (i = 0; i < sizeof ticks / sizeof *ticks; i++) {
        if (parse(&c, ticks[i].line, err, sizeof err)) {
            unit_check(0, "cron: \"%s\" parses: %s", ticks[i].line, err);
            continue;
        }
        strcpy(got, "error");
        if (!cron_next(&c, t(ticks[i].at), &ms))
            util_time_format(ms, got);
        strcpy(want, "error");
        if (strcmp(ticks[i].next, "error"))
            util_time_format(t(ticks[i].next), want);
        unit_check_str(got, want, "cron: \"%s\" after %s", ticks[i].line, ticks[i].at);
        strcpy(got, "error");
        if (!cron_latest(&c, t(ticks[i].at), &ms))
            util_time_format(ms, got);
        strcpy(want, "error");
        if (strcmp(ticks[i].latest, "error"))
            util_time_format(t(ticks[i].latest), want);
        unit_check_str(got, want, "cron: \"%s\" at or before %s", ticks[i].line, ticks[i].at);
    }
    parse(&c, "* * * * *", err, sizeof err);
    unit_check(cron_next(&c, CRON_MAX_MS + 1, &ms) == -1 && cron_next(&c, CRON_MIN_MS - 1, &ms) == -1 &&
               cron_latest(&c, CRON_MAX_MS + 1, &ms) == -1 && cron_latest(&c, CRON_MIN_MS - 1, &ms) == -1,
               "cron: times outside the range refused");
    unit_check(!cron_next(&c, CRON_MIN_MS - 0, &ms) && ms == CRON_MIN_MS + 60000 &&
               !cron_latest(&c, CRON_MIN_MS, &ms) && ms == CRON_MIN_MS,
               "cron: the first moment of the range");
    memset(&c, 0, sizeof c);    /* a schedule cron_parse would refuse: no day at all */
    c.minute = c.hour = c.month = 1;
    unit_check(cron_next(&c, 0, &ms) == -1 && cron_latest(&c, 0, &ms) == -1,
               "cron: a schedule with no tick ends the search with an error");
}

static void check_missed(void)
{
    char err[256];
    struct cron c;
    long long first = 0, from = t("2025-01-01T03:00:00Z"), to = t("2025-01-05T03:00:00Z");

    parse(&c, "0 3 * * *", err, sizeof err);
    unit_check(cron_missed(&c, from, to, 100, &first) == 4 && first == t("2025-01-02T03:00:00Z"),
               "cron: missed: every tick after from, up to and with to");
    unit_check(cron_missed(&c, from, to, 1, &first) == 1 && first == to,
               "cron: missed, limit 1: the latest");
    unit_check(cron_missed(&c, from, to, 2, &first) == 2 && first == t("2025-01-04T03:00:00Z"),
               "cron: missed, limit 2: the two latest");
    unit_check(cron_missed(&c, from, to - 1, 100, &first) == 3 && first == t("2025-01-02T03:00:00Z"),
               "cron: missed: a tick after to is not missed");
    unit_check(cron_missed(&c, from, from, 100, &first) == 0 &&
               cron_missed(&c, to, from, 100, &first) == 0 &&
               cron_missed(&c, from, to, 0, &first) == 0 &&
               cron_missed(&c, from, from + 86399999, 100, &first) == 0,
               "cron: missed: none in an empty span, backwards, with limit 0, or between ticks");
}

/* ---- the cross-check against a scan ------------------------------------------- */

static unsigned long long rng = 88172645463325252ULL;

static int rnd(int n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (unsigned long long)n);
}

/* A random field over lo..hi (the field's limit: 7 for the day of week); one time in
 * four a single value from one..hi, so that rare days (the 29th to the 31st) come up. */
static void random_field(char *out, size_t n, int lo, int hi, int one, const char *names)
{
    int items = 1 + rnd(3), i, a, b;
    size_t len = 0;

    if (!rnd(3)) {
        snprintf(out, n, "*");
        return;
    }
    if (!rnd(4)) {
        snprintf(out, n, "%d", one + rnd(hi - one + 1));
        return;
    }
    for (i = 0; i < items && len < n - 20; i++) {
        a = lo + rnd(hi - lo + 1);
        b = a + rnd(hi - a + 1);
        if (i)
            out[len++] = ',';
        switch (rnd(6)) {
        case 0: len += (size_t)snprintf(out + len, n - len, "%d", a); break;
        case 1: len += (size_t)snprintf(out + len, n - len, "%d-%d", a, b); break;
        case 2: len += (size_t)snprintf(out + len, n - len, "*/%d", 1 + rnd(hi)); break;
        case 3: len += (size_t)snprintf(out + len, n - len, "%d-%d/%d", a, b, 1 + rnd(hi)); break;
        case 4: len += (size_t)snprintf(out + len, n - len, "%d/%d", a, 1 + rnd(hi)); break;
        default:
            if (names && a < hi)
                len += (size_t)snprintf(out + len, n - len, "%.3s", names + (a - lo) * 3);
            else
                len += (size_t)snprintf(out + len, n - len, "%d", a);
        }
    }
}

static long long floor_div(long long a, long long b)
{
    return a / b - (a % b < 0);
}

/* Whether day d (since 1970) is a day of the schedule, from the C library's calendar. */
static int scan_day(const struct cron *c, long long d)
{
    time_t s = (time_t)(d * 86400);
    struct tm tm;
    int dom, dow;

    gmtime_r(&s, &tm);
    dom = c->dom >> tm.tm_mday & 1;
    dow = c->dow >> tm.tm_wday & 1;
    return (c->month >> (tm.tm_mon + 1) & 1) && (c->dom_or_dow ? dom || dow : dom && dow);
}

/* From minute m (since 1970) one minute at a time in direction dir, the first tick
 * within limit minutes; *found is 0 when there is none. */
static long long scan(const struct cron *c, long long m, int dir, long long limit, int *found)
{
    long long i, d, day = 0, x = m;
    int day_ok = 0;

    *found = 1;
    for (i = 0; i < limit; i++, x += dir) {
        d = floor_div(x, 1440);
        if (!i || d != day) {
            day = d;
            day_ok = scan_day(c, d);
        }
        if (day_ok && (c->hour >> (x - d * 1440) / 60 & 1) && (c->minute >> (x - d * 1440) % 60 & 1))
            return x;
    }
    *found = 0;
    return x;
}

/* cron_next after at and cron_latest at at against a scan of two years each way: the
 * number of answers that differ. *next is the tick after at (the scan's end if none). */
static int cross_check(const struct cron *c, const char *const f[5], long long at,
                       long long *next, int *beyond)
{
    const long long limit = 2 * 366 * 1440;
    long long m = floor_div(at, 60000), s, ms = 0;
    int found, ok, bad = 0;

    s = scan(c, m + 1, 1, limit, &found);
    ok = !cron_next(c, at, &ms);
    if (found ? !ok || ms != s * 60000 : !ok || ms < s * 60000)
        bad++, unit_note("next: %s %s %s %s %s after %lld: %lld, scan %lld", f[0], f[1], f[2],
                         f[3], f[4], at, ms, found ? s * 60000 : -1);
    *next = s * 60000;
    *beyond += !found;
    s = scan(c, m, -1, limit, &found);
    ok = !cron_latest(c, at, &ms);
    if (found ? !ok || ms != s * 60000 : !ok || ms > s * 60000)
        bad++, unit_note("latest: %s %s %s %s %s at %lld: %lld, scan %lld", f[0], f[1], f[2],
                         f[3], f[4], at, ms, found ? s * 60000 : -1);
    return bad;
}

/* Random schedules from random times (1960 to 2110, to the millisecond), then from the
 * tick found and from just before it. */
static void check_scan(void)
{
    static const char months[] = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC", days[] = "SUNMONTUEWEDTHUFRISAT";
    char buf[5][48], err[256];
    const char *f[5];
    int n, k, bad = 0, refused = 0, beyond = 0;
    long long at, next;
    struct cron c;

    for (n = 0; n < 300; n++) {
        random_field(buf[0], sizeof buf[0], 0, 59, 0, NULL);
        random_field(buf[1], sizeof buf[1], 0, 23, 0, NULL);
        random_field(buf[2], sizeof buf[2], 1, 31, 28, NULL);
        random_field(buf[3], sizeof buf[3], 1, 12, 1, months);
        random_field(buf[4], sizeof buf[4], 0, 7, 0, days);
        for (k = 0; k < 5; k++)
            f[k] = buf[k];
        if (cron_parse(&c, f, err, sizeof err)) {
            refused++;
            continue;
        }
        for (k = 0; k < 2; k++) {
            at = (-315619200LL + (long long)rnd(1 << 30) * 4 + rnd(4)) * 1000 + rnd(1000);
            bad += cross_check(&c, f, at, &next, &beyond);
            bad += cross_check(&c, f, next, &next, &beyond);
            bad += cross_check(&c, f, next - 1, &next, &beyond);
        }
    }
    unit_note("cron: %d random schedules (%d refused as never firing), %d ticks beyond two years",
              n - refused, refused, beyond);
    unit_check(!bad && n - refused > 200, "cron: next and latest agree with a minute-by-minute scan");
}

void test_cron(void)
{
    check_parse();
    check_macros();
    check_ticks();
    check_missed();
    check_scan();
}
