/* util.c: backoff, RFC 3339 times, the error setter and string joining (see util.h). */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int util_backoff(int last_ms)
{
    if (!last_ms)
        return UTIL_BACKOFF_FIRST_MS;
    return last_ms * 2 > UTIL_BACKOFF_MAX_MS ? UTIL_BACKOFF_MAX_MS : last_ms * 2;
}

long long util_days_from_civil(long long y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits at *p as a number, advancing *p; -1 when they are not all digits. */
static int digits(const char **p, int n)
{
    int v = 0;

    while (n--) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (*(*p)++ - '0');
    }
    return v;
}

int util_time_parse(const char *s, long long *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, frac = 0, off = 0, leap;
    long long t;

    if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 ||
        *p++ != '-' || (d = digits(&p, 2)) < 1)
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59 ||
        *p++ != ':' || (sec = digits(&p, 2)) < 0 || sec > 60)
        return -1;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    if (*p == '.') {
        int n = 0, finer = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            else if (*p != '0')
                finer = 1;
        }
        if (!n || n > 9)
            return -1;
        for (; n < 3; n++)
            frac *= 10;
        frac += finer;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if ((oh = digits(&p, 2)) < 0 || oh > 23 || *p++ != ':' || (om = digits(&p, 2)) < 0 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    if (sec == 60) {            /* a leap second: the last moment of the minute */
        sec = 59;
        frac = 999;
    }
    t = util_days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - off * 60LL;
    *ms = t * 1000 + frac;
    return 0;
}

void util_time_format(long long ms, char *out)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    unsigned frac = (unsigned)(ms - (long long)t * 1000) % 1000;
    struct tm tm;
    char s[24];

    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%m-%dT%H:%M:%S", &tm);
    /* The year in four digits, as RFC 3339 has it (strftime's %Y has no leading zeros). */
    snprintf(out, UTIL_TIME_LEN, "%04d-%.14s.%03uZ", (tm.tm_year + 1900) % 10000, s, frac);
}

int util_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

char *util_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);

    if (!s)
        return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}
