/* sqlbench.c: SQLite's own ceiling for the rows mosqlite writes, no broker.
 *
 *   sqlbench DB SCHEMA.sql N BATCH
 *
 * Creates DB from the schema file (WAL, synchronous=FULL, as the writer opens it) and
 * inserts N build_logs rows of about 60 bytes with one prepared statement, BATCH rows
 * per transaction (1 = a transaction per row). Prints one key=value line (cpu_s: user +
 * system CPU seconds of the inserts).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <sqlite3.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
		+ (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
	if (s) s[n] = 0;
	fclose(f);
	return s;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlbench: %s\n", err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fputs("usage: sqlbench DB SCHEMA.sql N BATCH\n", stderr);
		return 2;
	}
	long n = strtol(argv[3], NULL, 10), batch = strtol(argv[4], NULL, 10);
	char *schema = slurp(argv[2]);
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	int rc = 1;
	char line[128];
	if (n < 1 || batch < 1 || !schema) {
		fputs("sqlbench: bad arguments or unreadable schema\n", stderr);
		return 2;
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK) goto cleanup;
	if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
	    || exec(db, schema))
		goto cleanup;
	if (sqlite3_prepare_v2(db, "INSERT INTO build_logs (build_id, line) VALUES (?, ?)", -1,
			&ins, NULL) != SQLITE_OK)
		goto cleanup;

	double t0 = now_s(), c0 = cpu_s();
	for (long i = 0; i < n; i++) {
		if (i % batch == 0 && exec(db, "BEGIN")) goto cleanup;
		int len = snprintf(line, sizeof line, "step %07ld: compiling src/mod_%03ld.c ok", i, i % 1000);
		sqlite3_bind_int64(ins, 1, 1 + i % 8);
		sqlite3_bind_text(ins, 2, line, len, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) goto cleanup;
		sqlite3_reset(ins);
		if ((i + 1) % batch == 0 || i + 1 == n)
			if (exec(db, "COMMIT")) goto cleanup;
	}
	double secs = now_s() - t0;
	printf("rows=%ld batch=%ld secs=%.3f rate=%.0f cpu_s=%.3f\n", n, batch, secs, n / secs, cpu_s() - c0);
	rc = 0;
cleanup:
	if (rc) fprintf(stderr, "sqlbench: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(ins);
	sqlite3_close(db);
	free(schema);
	return rc;
}
