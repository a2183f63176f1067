/* unit.c: the harness (see unit.h) and the list of suites. Run from the top of the
 * tree (`make check` does): the corpus and the schema are read from there. */
#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int npass, nfail;
static char tmpdir[64];

static void report(int cond, const char *desc, va_list ap)
{
    printf(cond ? "ok - " : "not ok - ");
    vprintf(desc, ap);
    printf("\n");
    if (cond)
        npass++;
    else
        nfail++;
}

void unit_check(int cond, const char *desc, ...)
{
    va_list ap;

    va_start(ap, desc);
    report(cond, desc, ap);
    va_end(ap);
}

void unit_check_str(const char *got, const char *want, const char *desc, ...)
{
    int same = got && want ? !strcmp(got, want) : got == want;
    va_list ap;

    va_start(ap, desc);
    report(same, desc, ap);
    va_end(ap);
    if (!same)
        printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)", want ? want : "(null)");
}

void unit_note(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

const char *unit_tmpdir(void)
{
    return tmpdir;
}

char *unit_path(const char *name)
{
    char *p = malloc(strlen(tmpdir) + strlen(name) + 2);

    if (p)
        sprintf(p, "%s/%s", tmpdir, name);
    return p;
}

static void remove_tmpdir(void)
{
    char cmd[128];

    if (!tmpdir[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "unit: could not remove %s\n", tmpdir);
}

int main(void)
{
    static void (*const suites[])(void) = {
        test_cfg, test_out, test_req, test_sql, test_val, test_corpus, test_follow, test_hook,
        test_admin, test_cron, test_backup, test_query, test_ctl, test_sched, test_jobs, test_retain, test_etcd, test_workers, test_etcd_sync, test_sync, test_jobplan,
    };
    const char *t = getenv("TMPDIR");
    double t0 = util_now_exact_ms();
    size_t i;

    snprintf(tmpdir, sizeof tmpdir, "%s/mosqlite-unit.XXXXXX", t && strlen(t) < 40 ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("unit: mkdtemp");
        return 2;
    }
    atexit(remove_tmpdir);
    log_init("unit", LOG_ERROR);
    for (i = 0; i < sizeof suites / sizeof *suites; i++)
        suites[i]();
    unit_note("unit tests took %.0f ms", util_now_exact_ms() - t0);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
