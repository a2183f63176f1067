/* bench.h: what the bench's C drivers (mqbench.c, jobbench.c) share: CPU time, a fatal
 * error, a strict number, sorting latencies, and one pass of a poll loop over many
 * libmosquitto clients. Header only: each driver is one file compiled alone. The
 * including file defines BENCH_PROG (its name, for messages) first. */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <mosquitto.h>

/* bench_cpu_s: user + system CPU seconds of this process so far. */
static inline double bench_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
		+ (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static inline void die(const char *what, int rc)
{
	fprintf(stderr, BENCH_PROG ": %s: %s\n", what, rc ? mosquitto_strerror(rc) : strerror(errno));
	exit(2);
}

/* parse_num: a strict number, the whole string or nothing. */
static inline double parse_num(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end) {
		fprintf(stderr, BENCH_PROG ": %s: not a number: %s\n", opt, s);
		exit(2);
	}
	return v;
}

static inline int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* bench_step: one pass of the event loop over the n clients client(0..n-1), waiting at
 * most ms; the first lost connection is said and kept in *lost_rc. */
static inline void bench_step(struct mosquitto *(*client)(int), int n, int ms, int *lost_rc)
{
	struct pollfd pf[n];
	for (int i = 0; i < n; i++) {
		pf[i].fd = mosquitto_socket(client(i));   /* -1 once lost: poll skips it */
		pf[i].events = POLLIN | (mosquitto_want_write(client(i)) ? POLLOUT : 0);
		pf[i].revents = 0;
	}
	if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) die("poll", 0);
	for (int i = 0; i < n; i++) {
		int rc = 0;
		if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) rc = mosquitto_loop_read(client(i), 1);
		if (!rc && (pf[i].revents & POLLOUT)) rc = mosquitto_loop_write(client(i), 1);
		if (!rc) rc = mosquitto_loop_misc(client(i));
		if (rc && !*lost_rc) {
			fprintf(stderr, BENCH_PROG ": connection lost: %s\n", mosquitto_strerror(rc));
			*lost_rc = rc;
		}
	}
}

#endif
