/* unit.h: the unit tests' harness, in the manner of beanstalkd's ct/: each test is a
 * plain function listed in unit.c; a check prints one TAP-style line, "ok - ..." or
 * "not ok - ..." with what was got and wanted; the run ends with "N passed, N failed"
 * and exits non-zero when anything failed.
 *
 * The tests run against the writer's own objects (everything but main.c) and real
 * SQLite files in a temporary directory; no broker. */
#ifndef MOSQLITE_UNIT_H
#define MOSQLITE_UNIT_H

#include <stddef.h>

/* One check: ok when cond holds. desc is printf-style. */
void unit_check(int cond, const char *desc, ...) __attribute__((format(printf, 2, 3)));

/* Ok when got equals want (both may be NULL); on failure prints both. */
void unit_check_str(const char *got, const char *want, const char *desc, ...)
    __attribute__((format(printf, 3, 4)));

/* A "# ..." line: a detail or a measured figure, never a check. */
void unit_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A fresh temporary directory for this run (removed at exit) and a path in it. */
const char *unit_tmpdir(void);
char *unit_path(const char *name);    /* caller frees */

/* The test suites. */
void test_cfg(void);
void test_out(void);
void test_req(void);
void test_sql(void);
void test_val(void);
void test_corpus(void);
void test_follow(void);     /* replica/ */
void test_hook(void);
void test_admin(void);
void test_cron(void);
void test_backup(void);
void test_query(void);
void test_ctl(void);
void test_sched(void);
void test_jobs(void);
void test_jobplan(void);   /* the grant's plan at scale */
void test_retain(void);   /* retain.c, autobackup.c names */
void test_etcd(void);
void test_workers(void);
void test_etcd_sync(void);
void test_sync(void);

#endif
