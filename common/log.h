/* log.h: log lines on stderr, shared by the writer and the publisher: timestamped,
 * or in journald's form (syslog priority prefix, no time) when stderr is the journal. */
#ifndef MOSQLITE_LOG_H
#define MOSQLITE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Program name shown on every line, and the lowest level printed. Also picks the
 * format: journald's when JOURNAL_STREAM names stderr (see log.c). */
void log_init(const char *progname, enum log_level min);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
