/* test_retain.c: `retain` lines and durations (retain.c), the names of scheduled
 * backups (autobackup.c). */
#include <string.h>

#include "autobackup.h"
#include "backup.h"
#include "retain.h"
#include "unit.h"

static void durations(void)
{
    static const struct { const char *s; long long ms; } good[] = {
        {"1s", 1000}, {"45s", 45000}, {"90m", 5400000}, {"12h", 43200000}, {"30d", 2592000000LL},
        {"36600d", 36600LL * 86400000}, {NULL, 0},
    };
    static const char *const bad[] = {
        "", "0s", "30", "d", "1.5h", "-1d", "+1d", " 1d", "1d ", "1 d", "1w", "1dd", "1D", "36601d",
        "99999999999999999999s", "1ms", NULL,
    };
    long long ms;
    int i, ok;

    for (i = 0, ok = 1; good[i].s; i++)
        if (retain_duration(good[i].s, &ms) || ms != good[i].ms) {
            unit_note("%s: not %lld ms", good[i].s, good[i].ms);
            ok = 0;
        }
    unit_check(ok, "retain: durations in s, m, h, d");
    for (i = 0, ok = 1; bad[i]; i++)
        if (!retain_duration(bad[i], &ms)) {
            unit_note("accepted: \"%s\"", bad[i]);
            ok = 0;
        }
    unit_check(ok, "retain: not durations refused (no unit, zero, fractions, signs, blanks, beyond 100 years)");
}

static void lines(void)
{
    struct retain_spec s;
    char err[512];

    unit_check(!retain_parse("build_logs ts 30d", &s, err, sizeof err) && !strcmp(s.table, "build_logs") &&
               !strcmp(s.column, "ts") && s.age_ms == 30LL * 86400000 && s.unit == RETAIN_TEXT,
               "retain: TABLE COLUMN AGE");
    retain_spec_free(&s);
    unit_check(!retain_parse("  samples\tat_ms  12h ms ", &s, err, sizeof err) && s.unit == RETAIN_MS &&
               s.age_ms == 43200000, "retain: blanks and tabs, unit ms");
    retain_spec_free(&s);
    unit_check(!retain_parse("events at 1d s", &s, err, sizeof err) && s.unit == RETAIN_S, "retain: unit s");
    retain_spec_free(&s);
    unit_check(retain_parse("build_logs ts", &s, err, sizeof err) &&
               !strcmp(err, "retain: want TABLE COLUMN AGE [s|ms], got \"build_logs ts\""), "retain: too few words: %s", err);
    unit_check(retain_parse("a b 1d ms x", &s, err, sizeof err) && !strncmp(err, "retain: want", 12),
               "retain: too many words");
    unit_check(retain_parse("a b 1d us", &s, err, sizeof err) && strstr(err, "unit \"us\" is not s or ms"),
               "retain: unknown unit: %s", err);
    unit_check(retain_parse("a b 10x", &s, err, sizeof err) && strstr(err, "age \"10x\" is not"),
               "retain: bad age: %s", err);
    unit_check(retain_parse("", &s, err, sizeof err), "retain: empty line");
}

static void backup_names(void)
{
    char name[AUTOBACKUP_NAME_MAX];
    long long ms;

    /* 2026-12-06T01:00:00.789Z */
    autobackup_name("mosqlite", 1796518800789LL, name);
    unit_check_str(name, "mosqlite-20261206T010000Z.db", "autobackup: BASE-YYYYMMDDTHHMMSSZ.db, UTC");
    unit_check(autobackup_parse_name("mosqlite", name, &ms) && ms == 1796518800000LL,
               "autobackup: its own name read back, to the second");
    unit_check(!autobackup_parse_name("mosqlite", "mosqlite-20261206T010000Z.db.bak", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite-20261206T010000Z.db-wal", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite-2026126T010000Z.db", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite-20261206T010000.db", &ms) &&
               !autobackup_parse_name("mosqlite", "other-20261206T010000Z.db", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite.db", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite-nightly.db", &ms) &&
               !autobackup_parse_name("mosqlite", "mosqlite-20261306T010000Z.db", &ms) &&
               !autobackup_parse_name("mosql", "mosqlite-20261206T010000Z.db", &ms),
               "autobackup: other names are not its own (suffixes, other bases, bad dates)");
    unit_check(!autobackup_parse_name("mosqlite", "mosqlite-20261231T235960Z.db", &ms),
               "autobackup: only the form it writes (no leap second)");
    unit_check(!backup_name_is_live("mosqlite.db", name), "autobackup: never one of the database's own names");
}

void test_retain(void)
{
    durations();
    lines();
    backup_names();
}
