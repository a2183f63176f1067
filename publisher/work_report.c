/* work_report.c: a job's result and progress (see work.h). The command is told two
 * paths in a directory of the job's own (made before it starts, removed with the job):
 *
 *   MOSQLITE_JOB_RESULT    read once the command has ended: one JSON value, sent as the
 *                          done's "result" (a fail carries none);
 *   MOSQLITE_JOB_PROGRESS  looked at at each beat while the command runs, and once more
 *                          when it has ended: when its text has changed and is one JSON
 *                          value, it is sent as a "progress" for (job, attempt).
 *
 * A missing, empty or blank file says nothing. Each is read as the writer reads a
 * request (work_value_read) and bounded as the writer bounds it, so that what the agent
 * sends is not refused; a bad one is said on stderr (a bad result in the job's log too)
 * and the job goes on without it. The files are opened without following a link, read
 * only when regular and at most a bounded size: a command cannot block or flood the
 * agent with them. */
#define _GNU_SOURCE                     /* asprintf */
#include "work.h"
#include "log.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_SLACK 4                    /* a file may be this many times its bound (spacing) */

void job_report_open(struct job *j)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(j->report_dir, sizeof j->report_dir, "%s/mosqlite-job.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(j->report_dir)) {
        log_warn("job %lld: cannot make a directory %s for its result and progress: %s", j->id,
                 j->report_dir, strerror(errno));
        j->report_dir[0] = '\0';
    }
}

void job_report_env(const struct job *j, char **env, int *n)
{
    if (!j->report_dir[0])
        return;
    if (asprintf(&env[*n], "MOSQLITE_JOB_RESULT=%s/result", j->report_dir) >= 0)
        (*n)++;
    if (asprintf(&env[*n], "MOSQLITE_JOB_PROGRESS=%s/progress", j->report_dir) >= 0)
        (*n)++;
}

/* The text of the job's file name (heap, NUL-terminated, *len bytes): 1; 0 when it is
 * missing; -1 with the reason in err. */
static int read_file(const struct job *j, const char *name, size_t max, char **text, size_t *len,
                     char *err, size_t errlen)
{
    char path[4200];
    struct stat st;
    ssize_t r;
    size_t cap = max * READ_SLACK, n = 0;
    int fd, bad = 1;

    snprintf(path, sizeof path, "%s/%s", j->report_dir, name);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open the %s file: %s", name, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st))
        snprintf(err, errlen, "cannot read the %s file: %s", name, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, errlen, "the %s file is not a regular file", name);
    else if ((size_t)st.st_size > cap)
        snprintf(err, errlen, "the %s file is %lld bytes: more than %zu", name, (long long)st.st_size, cap);
    else
        bad = 0;
    if (bad) {
        close(fd);
        return -1;
    }
    if (!(*text = malloc(cap + 1))) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (n < cap && ((r = read(fd, *text + n, cap - n)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    close(fd);
    (*text)[n] = '\0';
    *len = n;
    return 1;
}

const char *job_report_result(struct job *j, char *reason, size_t n)
{
    char *text = NULL, err[512];
    size_t len = 0, s, e;
    int rc;

    if (!j->report_dir[0])
        return NULL;
    rc = read_file(j, "result", WORK_RESULT_MAX, &text, &len, err, sizeof err);
    if (rc > 0)
        rc = work_value_read(text, len, "the result", WORK_RESULT_MAX, &s, &e, err, sizeof err);
    if (rc > 0 && !(j->result = strndup(text + s, e - s))) {
        snprintf(err, sizeof err, "out of memory");
        rc = -1;
    }
    free(text);
    if (rc >= 0)
        return NULL;
    snprintf(reason, n, "mosqlite-work: job %lld attempt %lld: its result is not sent: %s", j->id,
             j->attempt, err);
    log_warn("%s", reason + strlen("mosqlite-work: "));
    return reason;
}

char *job_report_progress(struct job *j)
{
    char *text = NULL, *msg = NULL, err[512];
    size_t len = 0, s, e;
    int rc;

    if (!j->report_dir[0])
        return NULL;
    rc = read_file(j, "progress", WORK_PROGRESS_MAX, &text, &len, err, sizeof err);
    if (rc == 0 || (rc > 0 && j->progress && !strcmp(text, j->progress))) {
        free(text);
        return NULL;                    /* nothing, or nothing new */
    }
    if (rc < 0 && j->progress && !strcmp(j->progress, err))
        return NULL;                    /* the same fault: said once */
    free(j->progress);
    j->progress = rc > 0 ? text : strdup(err);
    if (rc > 0 && (rc = work_value_read(text, len, "the progress", WORK_PROGRESS_MAX, &s, &e, err,
                                        sizeof err)) > 0 &&
        asprintf(&msg, "{\"op\":\"progress\",\"job\":%lld,\"attempt\":%lld,\"progress\":%.*s}", j->id,
                 j->attempt, (int)(e - s), text + s) < 0)
        msg = NULL;
    if (rc < 0)
        log_warn("job %lld attempt %lld: its progress is not sent: %s", j->id, j->attempt, err);
    return msg;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void job_report_close(struct job *j)
{
    if (j->report_dir[0])
        nftw(j->report_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    j->report_dir[0] = '\0';
    free(j->result);
    free(j->progress);
    j->result = j->progress = NULL;
}
