/* log.c: one line per message on stderr: UTC time, program, level, text. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static const char *prog = "mosqlite";
static enum log_level minlevel = LOG_INFO;

void log_init(const char *progname, enum log_level min)
{
    prog = progname;
    minlevel = min;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    char ts[32], line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < minlevel)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", ts, (long)(tv.tv_usec / 1000), prog, names[level], line);
}
