/* cron.h: cron schedules (the five fields of a crontab line, in UTC) and their ticks.
 *
 * Fields, in order: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC,
 * day of week 0-7 (0 and 7 are Sunday) or SUN-SAT; names in any case. Each field is a
 * comma-separated list of items:
 *   *       every value                N     one value
 *   N-M     N to M (N <= M)            N/S   N to the field's last value, every S
 *   N-M/S   N to M, every S            and `*` followed by /S: every S from the first
 * The last value of the day of week for `*` and `N/S` is 6 (Saturday); 7 may be
 * written (5-7, 7). A step is 1 to the field's maximum (59, 23, 31, 12, 7). Numbers
 * are decimal digits only (leading zeros allowed); anything else is refused with the
 * field's name and the text, e.g. `hour: "24" is out of range 0-23`.
 *
 * Days, as Vixie cron counts them: when the day of month and the day of week are both
 * restricted (neither contains a `*`), a day matches if EITHER does (`0 0 1 * MON`: the
 * first of the month and every Monday); otherwise a day must match both (a day of month
 * of `*` then `/2` with MON: the odd days that are Mondays). A schedule that can never fire
 * (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`) is refused by cron_parse.
 *
 * Macros (cron_parse_macro): @hourly `0 * * * *`, @daily and @midnight `0 0 * * *`,
 * @weekly `0 0 * * 0`, @monthly `0 0 1 * *`, @yearly and @annually `0 0 1 1 *`.
 * @reboot is not a schedule and is refused.
 *
 * Times are milliseconds since 1970-01-01T00:00:00Z (negative before), UTC by
 * arithmetic: no time zone, no daylight saving, no leap seconds. Ticks fall on whole
 * minutes. Pure: no globals, no system calls. */
#ifndef MOSQLITE_CRON_H
#define MOSQLITE_CRON_H

#include <stddef.h>

/* The times the tick functions accept: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. */
#define CRON_MIN_MS (-62135596800000LL)
#define CRON_MAX_MS 253402300799999LL

struct cron {
    unsigned long long minute;  /* bit m: minute m */
    unsigned hour;              /* bit h: hour h */
    unsigned dom;               /* bit d: day d of the month (1-31) */
    unsigned month;             /* bit m: month m (1-12) */
    unsigned dow;               /* bit d: day d of the week (0-6, Sunday 0) */
    int dom_or_dow;             /* both day fields restricted: either one matching will do */
};

/* Parse the five fields. 0, or -1 with the reason in err (c is then unspecified). */
int cron_parse(struct cron *c, const char *const fields[5], char *err, size_t errlen);

/* Parse a macro ("@daily", ...; lower case, as cron writes them). 0 or -1 as above. */
int cron_parse_macro(struct cron *c, const char *word, char *err, size_t errlen);

/* The first tick strictly after after_ms, into *next_ms. -1 when after_ms is outside
 * CRON_MIN_MS..CRON_MAX_MS, when the first tick after it is past CRON_MAX_MS (there is
 * none left in 9999), or when no tick comes within 400 years (never, for a schedule
 * cron_parse accepted: the calendar repeats every 400 years). A tick returned is always
 * within CRON_MIN_MS..CRON_MAX_MS. */
int cron_next(const struct cron *c, long long after_ms, long long *next_ms);

/* The last tick at or before at_ms, into *last_ms; -1 as for cron_next (and when the
 * last tick would be before CRON_MIN_MS: none yet in year 1). */
int cron_latest(const struct cron *c, long long at_ms, long long *last_ms);

/* Catch-up: the ticks in (from_ms, to_ms], the ticks missed by someone who last ran the
 * schedule at from_ms and is back at to_ms. Counts back from to_ms and stops at limit:
 * returns how many of the latest ticks it found (0 to limit) and, when any, the
 * earliest of them in *first_ms, from which cron_next walks the rest up to to_ms.
 * So limit 1 gives the latest missed tick alone, limit N the N latest; whether older
 * ticks were left out: cron_latest(c, *first_ms - 1, &t) == 0 && t > from_ms. Times
 * outside CRON_MIN_MS..CRON_MAX_MS hold no ticks. */
long long cron_missed(const struct cron *c, long long from_ms, long long to_ms, long long limit,
                      long long *first_ms);

#endif
