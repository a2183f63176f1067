/* cron.c: cron schedules and their ticks (see cron.h).
 *
 * A field is a bit set of its values. A tick is found by walking the calendar a field
 * at a time, never minute by minute: a month not in the set jumps to the next one that
 * is, a day that does not match to the next day, an hour to the next hour in the set,
 * and the minute is the next one in the set. The same walk runs backwards for
 * cron_latest. Dates are days since 1970 by the civil-calendar formulas (proleptic
 * Gregorian), so there is no time zone and no library call. */
#include "cron.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ---- parsing ----------------------------------------------------------------- */

struct field {
    const char *name;
    int lo, hi;           /* values accepted */
    int last;             /* the last value of `*` and N/S */
    const char *names;    /* three letters per value from lo, or NULL */
    const char *what;     /* what a value may be, for errors */
};

static const struct field fields_def[5] = {
    {"minute", 0, 59, 59, NULL, "a number"},
    {"hour", 0, 23, 23, NULL, "a number"},
    {"day of month", 1, 31, 31, NULL, "a number"},
    {"month", 1, 12, 12, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC", "a number or a month name (JAN-DEC)"},
    {"day of week", 0, 7, 6, "SUNMONTUEWEDTHUFRISAT", "a number or a day name (SUN-SAT)"},
};

/* One item of a field being parsed: the field, the item's text, where errors go. */
struct item {
    const struct field *f;
    const char *s;
    int len;
    char *err;
    size_t errlen;
};

/* The digits of s[0..n) as a number, or -1 if they are not all digits; large numbers
 * stop at 100000 (out of every field's range) instead of overflowing. */
static int number(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        if (v < 100000)
            v = v * 10 + (s[i] - '0');
    }
    return n ? v : -1;
}

/* The value (a number or a name) at *p, which is advanced past it, into *v. */
static int value(const struct item *it, const char **p, int *v)
{
    const char *s = *p, *end = it->s + it->len;
    int n = 0, i;

    while (s + n < end && isalnum((unsigned char)s[n]))
        n++;
    if (!n)
        return util_fail(it->err, it->errlen, "%s: \"%.*s\": a number is missing", it->f->name,
                         it->len, it->s);
    *p = s + n;
    if ((*v = number(s, n)) >= 0) {
        if (*v < it->f->lo || *v > it->f->hi)
            return util_fail(it->err, it->errlen, "%s: \"%.*s\" is out of range %d-%d",
                             it->f->name, n, s, it->f->lo, it->f->hi);
        return 0;
    }
    for (i = 0; n == 3 && it->f->names && it->f->names[i * 3]; i++)
        if (!strncasecmp(s, it->f->names + i * 3, 3)) {
            *v = it->f->lo + i;
            return 0;
        }
    return util_fail(it->err, it->errlen, "%s: \"%.*s\" is not %s", it->f->name, n, s,
                     it->f->what);
}

/* One item (`*`, N, N-M, `*`/S, N/S, N-M/S) into the bit set *bits. */
static int parse_item(const struct item *it, unsigned long long *bits)
{
    const struct field *f = it->f;
    const char *p = it->s, *end = it->s + it->len, *step;
    int lo, hi, s = 1, v;

    if (p < end && *p == '*') {
        p++;
        lo = f->lo;
        hi = f->last;
    } else {
        if (value(it, &p, &lo))
            return -1;
        hi = lo;
        if (p < end && *p == '-') {
            p++;
            if (value(it, &p, &hi))
                return -1;
            if (hi < lo)
                return util_fail(it->err, it->errlen, "%s: \"%.*s\": the range runs backwards",
                                 f->name, it->len, it->s);
        } else if (p < end && *p == '/') {
            hi = f->last > lo ? f->last : lo;
        }
    }
    if (p < end && *p == '/') {
        for (step = ++p; p < end && isalnum((unsigned char)*p); p++)
            ;
        if (p == step)
            return util_fail(it->err, it->errlen, "%s: \"%.*s\": a number is missing", f->name,
                             it->len, it->s);
        s = number(step, (int)(p - step));
        if (s < 0)
            return util_fail(it->err, it->errlen, "%s: step \"%.*s\" is not a number", f->name,
                             (int)(p - step), step);
        if (s < 1 || s > f->hi)
            return util_fail(it->err, it->errlen, "%s: step \"%.*s\" is out of range 1-%d",
                             f->name, (int)(p - step), step, f->hi);
    }
    if (p < end)
        return util_fail(it->err, it->errlen, "%s: \"%.*s\": unexpected \"%.*s\"", f->name,
                         it->len, it->s, (int)(end - p), p);
    for (v = lo; v <= hi; v += s)
        *bits |= 1ULL << v;
    return 0;
}

/* Field i's text into *bits; *star is set when an item is `*`-based. */
static int parse_field(int i, const char *text, unsigned long long *bits, int *star, char *err,
                       size_t errlen)
{
    struct item it = {&fields_def[i], text, 0, err, errlen};
    const char *comma;

    *bits = 0;
    *star = 0;
    if (!text || !*text)
        return util_fail(err, errlen, "%s: the field is %s", it.f->name, text ? "empty" : "missing");
    for (;;) {
        comma = strchr(it.s, ',');
        it.len = comma ? (int)(comma - it.s) : (int)strlen(it.s);
        if (!it.len || (comma && !comma[1]))
            return util_fail(err, errlen, "%s: \"%s\" has an empty item", it.f->name, text);
        *star |= it.s[0] == '*';
        if (parse_item(&it, bits))
            return -1;
        if (!comma)
            return 0;
        it.s = comma + 1;
    }
}

static const int mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int cron_parse(struct cron *c, const char *const fields[5], char *err, size_t errlen)
{
    unsigned long long bits[5];
    int star[5], i, m;

    for (i = 0; i < 5; i++)
        if (parse_field(i, fields[i], &bits[i], &star[i], err, errlen))
            return -1;
    c->minute = bits[0];
    c->hour = (unsigned)bits[1];
    c->dom = (unsigned)bits[2];
    c->month = (unsigned)bits[3];
    c->dow = (unsigned)((bits[4] | bits[4] >> 7) & 0x7f);
    c->dom_or_dow = !star[2] && !star[4];
    /* Days that must match both day fields: some month in the set must have some day in
     * it (February counting its 29th). Either field will do: every month has every
     * day of the week. And the calendar repeats every 400 years, which hold every date
     * on every day of the week. */
    if (c->dom_or_dow)
        return 0;
    for (m = 1; m <= 12; m++)
        if ((c->month >> m & 1) && (c->dom & ((2U << (m == 2 ? 29 : mdays[m])) - 2)))
            return 0;
    return util_fail(err, errlen, "day of month: no month in \"%s\" has a day in \"%s\": "
                     "the schedule never fires", fields[3], fields[2]);
}

int cron_parse_macro(struct cron *c, const char *word, char *err, size_t errlen)
{
    static const char *const macros[][6] = {
        {"@hourly", "0", "*", "*", "*", "*"},   {"@daily", "0", "0", "*", "*", "*"},
        {"@midnight", "0", "0", "*", "*", "*"}, {"@weekly", "0", "0", "*", "*", "0"},
        {"@monthly", "0", "0", "1", "*", "*"},  {"@yearly", "0", "0", "1", "1", "*"},
        {"@annually", "0", "0", "1", "1", "*"},
    };
    size_t i;

    for (i = 0; i < sizeof macros / sizeof *macros; i++)
        if (word && !strcmp(word, macros[i][0]))
            return cron_parse(c, macros[i] + 1, err, errlen);
    return util_fail(err, errlen, "\"%s\" is not a schedule: @hourly, @daily, @midnight, "
                     "@weekly, @monthly, @yearly or @annually", word ? word : "");
}

/* ---- the calendar -------------------------------------------------------------- */

/* Days since 1970-01-01 back to y-m-d (proleptic Gregorian): the inverse of
 * util_days_from_civil. */
static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int month_days(long long y, int m)
{
    return m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 29 : mdays[m];
}

/* A minute of the calendar. */
struct when {
    long long y;
    int mo, d, h, mi;
};

static long long floor_div(long long a, long long b)
{
    return a / b - (a % b < 0);
}

static long long when_ms(const struct when *w)
{
    return ((util_days_from_civil(w->y, w->mo, w->d) * 1440) + w->h * 60 + w->mi) * 60000;
}

/* The member of set nearest x in direction dir (1: at or after, -1: at or before),
 * or -1 when there is none that way. */
static int seek_bit(unsigned long long set, int x, int dir)
{
    unsigned long long m;

    if (dir > 0) {
        m = x > 63 ? 0 : set >> x;
        return m ? x + __builtin_ctzll(m) : -1;
    }
    if (x < 0)
        return -1;
    m = x >= 63 ? set : set & ((2ULL << x) - 1);
    return m ? 63 - __builtin_clzll(m) : -1;
}

static int day_matches(const struct cron *c, const struct when *w)
{
    long long z = util_days_from_civil(w->y, w->mo, w->d);
    int dom = c->dom >> w->d & 1, dow = c->dow >> (int)((z % 7 + 11) % 7) & 1;

    return c->dom_or_dow ? dom || dow : dom && dow;
}

/* The start of the day (dir 1) or its last minute (dir -1). */
static void day_edge(struct when *w, int dir)
{
    w->h = dir > 0 ? 0 : 23;
    w->mi = dir > 0 ? 0 : 59;
}

/* The first (dir 1) or the last (dir -1) minute of w's month. */
static void month_edge(struct when *w, int dir)
{
    w->d = dir > 0 ? 1 : month_days(w->y, w->mo);
    day_edge(w, dir);
}

/* The next day in direction dir, at its edge. */
static void step_day(struct when *w, int dir)
{
    w->d += dir;
    day_edge(w, dir);
    if (w->d >= 1 && w->d <= month_days(w->y, w->mo))
        return;
    w->mo += dir;
    if (w->mo < 1 || w->mo > 12) {
        w->y += dir;
        w->mo = dir > 0 ? 1 : 12;
    }
    month_edge(w, dir);
}

/* Move w to the nearest tick in direction dir, w itself included. -1 when none comes
 * within 400 years. */
static int seek(const struct cron *c, struct when *w, int dir)
{
    long long y0 = w->y;
    int v;

    while (w->y - y0 <= 400 && y0 - w->y <= 400) {
        if ((v = seek_bit(c->month, w->mo, dir)) < 0) {
            w->y += dir;
            w->mo = dir > 0 ? 1 : 12;
            month_edge(w, dir);
            continue;
        }
        if (v != w->mo) {
            w->mo = v;
            month_edge(w, dir);
        }
        if (!day_matches(c, w)) {
            step_day(w, dir);
            continue;
        }
        if ((v = seek_bit(c->hour, w->h, dir)) < 0) {
            step_day(w, dir);
            continue;
        }
        if (v != w->h) {
            w->h = v;
            w->mi = dir > 0 ? 0 : 59;
        }
        if ((v = seek_bit(c->minute, w->mi, dir)) < 0) {
            w->h += dir;    /* past the day's end, the hour's seek steps the day */
            w->mi = dir > 0 ? 0 : 59;
            continue;
        }
        w->mi = v;
        return 0;
    }
    return -1;
}

/* ---- ticks ---------------------------------------------------------------------- */

/* The nearest tick to minute m (since 1970) in direction dir, m included; ms is the
 * time asked about, checked against the range, and so is the tick found: a tick past
 * 9999-12-31 (before 0001-01-01) is none. */
static int tick(const struct cron *c, long long ms, long long m, int dir, long long *out)
{
    struct when w;
    long long day = floor_div(m, 1440);

    if (ms < CRON_MIN_MS || ms > CRON_MAX_MS)
        return -1;
    civil_from_days(day, &w.y, &w.mo, &w.d);
    w.h = (int)(m - day * 1440) / 60;
    w.mi = (int)(m - day * 1440) % 60;
    if (seek(c, &w, dir) || when_ms(&w) < CRON_MIN_MS || when_ms(&w) > CRON_MAX_MS)
        return -1;    /* none within 400 years, or none before the range's end (start) */
    *out = when_ms(&w);
    return 0;
}

int cron_next(const struct cron *c, long long after_ms, long long *next_ms)
{
    return tick(c, after_ms, floor_div(after_ms, 60000) + 1, 1, next_ms);
}

int cron_latest(const struct cron *c, long long at_ms, long long *last_ms)
{
    return tick(c, at_ms, floor_div(at_ms, 60000), -1, last_ms);
}

long long cron_missed(const struct cron *c, long long from_ms, long long to_ms, long long limit,
                      long long *first_ms)
{
    long long n = 0, t = to_ms, tick;

    while (n < limit && t > from_ms && !cron_latest(c, t, &tick) && tick > from_ms) {
        *first_ms = tick;
        n++;
        t = tick - 1;
    }
    return n;
}
