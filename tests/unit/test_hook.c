/* test_hook.c: `hook` config lines and the reports published on PREFIX/hooks (hook.c),
 * and one real run: a command forked with an event on its stdin, reaped without
 * waiting, and a hanging one killed at its time limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "unit.h"
#include "util.h"

static void check_parse(void)
{
    struct hook_spec s;
    char err[256];

    unit_check(!hook_parse("build_logs insert /bin/echo a  b", &s, err, sizeof err),
               "hook: a line parses");
    unit_check_str(s.table, "build_logs", "hook: table");
    unit_check_str(s.op, "insert", "hook: op");
    unit_check(s.argc == 3 && !strcmp(s.argv[0], "/bin/echo") && !strcmp(s.argv[2], "b") &&
               !s.argv[3], "hook: argv split on blanks, NULL-terminated");
    unit_check_str(s.command, "/bin/echo a b", "hook: command text");
    unit_check(hook_matches(&s, "BUILD_LOGS", "insert"), "hook: table matches case-insensitively");
    unit_check(!hook_matches(&s, "build_logs", "update"), "hook: another op does not match");
    unit_check(!hook_matches(&s, "builds", "insert"), "hook: another table does not match");
    hook_spec_free(&s);

    unit_check(!hook_parse("* * notify", &s, err, sizeof err) && hook_matches(&s, "x", "delete"),
               "hook: * * matches any table and op");
    hook_spec_free(&s);

    unit_check(hook_parse("builds insert", &s, err, sizeof err) == -1, "hook: no command refused");
    unit_check_str(err, "hook: want TABLE OP COMMAND [ARG...], got \"builds insert\"",
                   "hook: the reason for a missing command");
    unit_check(hook_parse("builds replace cmd", &s, err, sizeof err) == -1, "hook: unknown op refused");
    unit_check_str(err, "hook: op \"replace\" is not insert, upsert, update, delete or *",
                   "hook: the reason for an unknown op");
    hook_spec_free(&s);    /* accepts a spec left empty by a failure */
}

static void check_report(void)
{
    struct jbuf b = {0};
    struct hook_result r = {"notify x", "builds", "insert", "failed", 3, 0, 12, NULL};

    hook_report(&b, &r);
    unit_check_str(b.s, "{\"command\":\"notify x\",\"table\":\"builds\",\"op\":\"insert\","
                   "\"outcome\":\"failed\",\"exit_status\":3,\"signal\":null,\"ms\":12}",
                   "hook: report of a failure");
    r.outcome = "timeout";
    r.exit_status = -1;
    r.signal = 9;
    hook_report(&b, &r);
    unit_check_str(b.s, "{\"command\":\"notify x\",\"table\":\"builds\",\"op\":\"insert\","
                   "\"outcome\":\"timeout\",\"exit_status\":null,\"signal\":9,\"ms\":12}",
                   "hook: report of a time-out");
    r.outcome = "error";
    r.signal = 0;
    r.ms = 0;
    r.error = "No \"such\"";
    hook_report(&b, &r);
    unit_check_str(b.s, "{\"command\":\"notify x\",\"table\":\"builds\",\"op\":\"insert\","
                   "\"outcome\":\"error\",\"exit_status\":null,\"signal\":null,\"ms\":0,"
                   "\"error\":\"No \\\"such\\\"\"}", "hook: report of a command not started");
    hook_report_suppressed(&b, 290, 1003);
    unit_check_str(b.s, "{\"outcome\":\"suppressed\",\"count\":290,\"ms\":1003}",
                   "hook: report of the failures only counted");
    jb_free(&b);
}

static char reports[4096];

static void on_report(void *ud, const char *json, size_t len)
{
    (void)ud;
    strncat(reports, json, sizeof reports - strlen(reports) - 2);
    strcat(reports, "\n");
}

/* Real children: one copies its stdin to a file, one hangs and is killed. */
static void check_run(void)
{
    char err[256], line1[512], line2[256], got[256] = "";
    char *out = unit_path("hook-out.json");
    char *items[2];
    struct cfg_list lines = {items, 2};
    struct hooks *h;
    long long t0, end;
    FILE *f;

    snprintf(line1, sizeof line1, "builds insert cp /dev/stdin %s", out);
    snprintf(line2, sizeof line2, "builds insert sleep 30");
    items[0] = line1;
    items[1] = line2;
    h = hook_new(&lines, 4, 300, 10, on_report, NULL, err, sizeof err);
    unit_check(h != NULL, "hook: hook_new (%s)", h ? "ok" : err);
    if (!h)
        return;
    t0 = util_now_ms();
    hook_event(h, "builds", "insert", "{\"table\":\"builds\"}", 18);
    unit_check(util_now_ms() - t0 < 1000 && hook_running(h) == 2,
               "hook: hook_event starts both commands and returns at once");
    hook_event(h, "builds", "delete", "{}", 2);
    unit_check(hook_running(h) == 2 && hook_queued(h) == 0, "hook: a delete starts nothing");
    end = util_now_ms() + 5000;
    while (hook_running(h) && util_now_ms() < end) {
        usleep((useconds_t)hook_wait_ms(h, 1000) * 1000 + 1000);
        hook_tick(h);
    }
    unit_note("hook: both ended after %lld ms (time limit 300 ms)", util_now_ms() - t0);
    unit_check(!hook_running(h), "hook: the hanging command was killed and reaped");
    if ((f = fopen(out, "r"))) {
        if (!fgets(got, sizeof got, f))
            got[0] = '\0';
        fclose(f);
    }
    unit_check_str(got, "{\"table\":\"builds\"}", "hook: the command got the event on stdin");
    unit_check(strstr(reports, "\"command\":\"sleep 30\"") && strstr(reports, "\"outcome\":\"timeout\"") &&
               strstr(reports, "\"signal\":9") && !strstr(reports, "\"command\":\"cp"),
               "hook: one report, the time-out, with signal 9 (got %s)", reports);
    hook_free(h);
    free(out);
}

/* hook-max 1: a second run waits for the first; hook-queue 1: a third is dropped. */
static void check_limit(void)
{
    char err[256], line[] = "t insert true";
    char *items[1] = {line};
    struct cfg_list lines = {items, 1};
    struct hooks *h;
    long long end;

    reports[0] = '\0';
    h = hook_new(&lines, 1, 5000, 1, on_report, NULL, err, sizeof err);
    if (!h) {
        unit_check(0, "hook: hook_new (%s)", err);
        return;
    }
    hook_event(h, "t", "insert", "{}", 2);
    hook_event(h, "t", "insert", "{}", 2);
    hook_event(h, "t", "insert", "{}", 2);
    unit_check(hook_running(h) == 1 && hook_queued(h) == 1,
               "hook: hook-max 1 runs one, queues one (running %d, queued %d)", hook_running(h), hook_queued(h));
    unit_check(strstr(reports, "\"outcome\":\"dropped\"") != NULL, "hook: beyond hook-queue a run is dropped and reported");
    end = util_now_ms() + 5000;
    while ((hook_running(h) || hook_queued(h)) && util_now_ms() < end) {
        usleep((useconds_t)hook_wait_ms(h, 1000) * 1000 + 1000);
        hook_tick(h);
    }
    unit_check(!hook_running(h) && !hook_queued(h), "hook: the queued run started when the first ended");
    hook_free(h);
}

/* The lines as config, checked before anything is opened. */
static void check_config(void)
{
    char err[256], good[] = "builds insert true", merge[] = "kv merge /bin/true", nocmd[] = "kv insert";
    char *items[2] = {good, merge};
    struct cfg_list lines = {items, 2};

    unit_check(hook_check(&lines, err, sizeof err) == -1, "hook: hook_check refuses a bad line");
    unit_check_str(err, "hook: op \"merge\" is not insert, upsert, update, delete or *", "hook: hook_check's reason");
    items[1] = nocmd;
    hook_check(&lines, err, sizeof err);
    unit_check_str(err, "hook: want TABLE OP COMMAND [ARG...], got \"kv insert\"", "hook: hook_check, no command");
    lines.n = 1;
    unit_check(!hook_check(&lines, err, sizeof err), "hook: hook_check takes a good line");
}

void test_hook(void)
{
    check_config();
    check_parse();
    check_report();
    check_run();
    check_limit();
}
