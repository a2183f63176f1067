/* log.c: one line per message on stderr, in one of two formats.
 *
 * On a terminal or into a file: UTC time, program, level, text
 * ("2026-11-24T23:00:00.123Z mosqlite-writer: error: ..."). Under systemd, when stderr
 * is the journal stream that systemd announced in JOURNAL_STREAM ("DEV:INODE", checked
 * against stderr itself so that a child whose stderr was redirected keeps the plain
 * format): no time and no program name, which journald records itself, and a syslog
 * priority prefix ("<3>...") that journald turns into the entry's priority. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

static const char *prog = "mosqlite";
static enum log_level minlevel = LOG_INFO;
static int journal;

/* 1 when stderr is the stream named by JOURNAL_STREAM. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;

    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return 0;
    if (fstat(2, &st))
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *progname, enum log_level min)
{
    prog = progname;
    minlevel = min;
    journal = stderr_is_journal();
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    static const int priorities[] = {7, 6, 4, 3};   /* syslog: debug, info, warning, err */
    char ts[32], line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < minlevel)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (journal) {
        fprintf(stderr, "<%d>%s\n", priorities[level], line);
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", ts, (long)(tv.tv_usec / 1000), prog, names[level], line);
}
