/* mqbench.c: the MQTT load driver behind tests/bench/run.sh.
 *
 * One single-threaded program, four modes, each printing one line of key=value pairs:
 *
 *   pub   publish N QoS 2 build_logs requests from C concurrent clients, each keeping at
 *         most W/C messages in flight; counts completions (PUBCOMP). With --db it then
 *         polls the SQLite file until N more rows are there ("committed"). With --ops K
 *         each request is a transaction of K inserts ({"ops": [...]}), N x K rows.
 *   sub   one subscriber (clean session off; --mqtt 311 like the writer's request session, or v5 with receive
 *         maximum 65535, QoS 2) counting arrivals until N: the broker's own ceiling.
 *   rate  publish requests with an id and a reply_to at a steady R per second for S
 *         seconds (or until the file named by --until exists) and time each receipt:
 *         latency percentiles.
 *   wait  poll the SQLite file until the table holds N more rows (a draining backlog).
 *
 * All clients are driven from one poll() loop (mosquitto_loop_read/write/misc), so the
 * driver costs one core at most whatever the number of producers. Times are
 * CLOCK_REALTIME nanoseconds so that a pub and a sub process can be compared.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#define BENCH_PROG "mqbench"
#include "bench.h"
#include <sqlite3.h>

struct client {
	struct mosquitto *m;
	int idx;
	int connected;
	int subscribed;
	long quota;   /* messages this client publishes */
	long sent;    /* mosquitto_publish calls made */
	long done;    /* completions (PUBCOMP for QoS 2) */
};

static const char *o_mode, *o_host = "127.0.0.1", *o_topic, *o_reply, *o_db;
static const char *o_table = "build_logs", *o_id, *o_ready, *o_until;
static int o_recv_max = 65535, o_v311;
static int o_port = 1883, o_clients = 1, o_window = 1000, o_qos = 2, o_ops;
static long o_n = 1000;
static double o_rate = 1000, o_secs = 10, o_timeout = 120;

static struct client *cl;
static int lost_rc;         /* a connection was lost: stop, report what was done */
static int window_each;
static long arrived;
static long long first_ns, last_ns;
/* rate mode */
static long long *sent_at;
static long long *lat;
static long nlat, nbad, maxsend;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct rusage self_usage(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru;
}


/* hwm_mib: this process's peak resident set, MiB. */
static double hwm_mib(void) { return self_usage().ru_maxrss / 1024.0; }



/* payload: one build_logs insert, about 60 bytes of row; with an id and reply_to in
 * rate mode. */
static int payload(char *buf, size_t len, int client, long seq, int with_id)
{
	if (with_id)
		return snprintf(buf, len,
			"{\"id\":\"lat-%d-%ld\",\"reply_to\":\"%s\",\"values\":{\"build_id\":%d,"
			"\"line\":\"step %07ld: compiling src/mod_%03ld.c ok\"}}",
			(int)getpid(), seq, o_reply, client + 1, seq, seq % 1000);
	return snprintf(buf, len,
		"{\"values\":{\"build_id\":%d,\"line\":\"step %07ld: compiling src/mod_%03ld.c ok\"}}",
		client + 1, seq, seq % 1000);
}

/* bulk_payload: with --ops K, one transaction of K build_logs inserts (rows seq*K .. seq*K+K-1,
 * each line unique). The length, or -1 when it does not fit. */
static int bulk_payload(char *buf, size_t len, int client, long seq)
{
	size_t n = 0;
	for (int j = 0; j < o_ops; j++) {
		long row = seq * o_ops + j;
		int k = snprintf(buf + n, len - n,
			"%s{\"table\":\"build_logs\",\"values\":{\"build_id\":%d,"
			"\"line\":\"step %07ld: compiling src/mod_%03ld.c ok\"}}",
			j ? "," : "{\"ops\":[", client + 1, row, row % 1000);
		if (k < 0 || (size_t)k >= len - n) return -1;
		n += (size_t)k;
	}
	if (n + 3 > len) return -1;
	memcpy(buf + n, "]}", 3);
	return (int)n + 2;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *p)
{
	struct client *c = ud;
	(void)flags; (void)p;
	if (rc) {
		fprintf(stderr, "mqbench: connect refused: %s\n", mosquitto_reason_string(rc));
		exit(2);
	}
	c->connected = 1;
	if (!strcmp(o_mode, "sub")) {
		int r = mosquitto_subscribe_v5(m, NULL, o_topic, o_qos, 0, NULL);
		if (r) die("subscribe", r);
	} else if (!strcmp(o_mode, "rate")) {
		int r = mosquitto_subscribe_v5(m, NULL, o_reply, 1, 0, NULL);
		if (r) die("subscribe", r);
	}
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q,
	const mosquitto_property *p)
{
	struct client *c = ud;
	(void)m; (void)mid; (void)n; (void)q; (void)p;
	c->subscribed = 1;
	if (o_ready) {
		FILE *f = fopen(o_ready, "w");
		if (f) fclose(f);
	}
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason, const mosquitto_property *p)
{
	struct client *c = ud;
	(void)m; (void)mid; (void)reason; (void)p;
	c->done++;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
	const mosquitto_property *p)
{
	long long t = now_ns();
	(void)m; (void)ud; (void)p;
	if (!arrived) first_ns = t;
	last_ns = t;
	arrived++;
	if (strcmp(o_mode, "rate")) return;

	cJSON *j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
	const char *dash = cJSON_IsString(id) ? strrchr(id->valuestring, '-') : NULL;
	if (dash) {
		long seq = strtol(dash + 1, NULL, 10);
		if (seq >= 0 && seq < maxsend && sent_at[seq] && !lat[seq]) {
			lat[seq] = t - sent_at[seq];
			nlat++;
			if (!cJSON_IsString(st) || strcmp(st->valuestring, "applied")) nbad++;
		}
	} else {
		nbad++;
	}
	cJSON_Delete(j);
}

static struct mosquitto *client_new(struct client *c, const char *id, int clean)
{
	struct mosquitto *m = mosquitto_new(id, clean, c);
	if (!m) die("mosquitto_new", 0);
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, o_v311 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
	mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, o_recv_max);
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 65535);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_subscribe_v5_callback_set(m, on_subscribe);
	mosquitto_publish_v5_callback_set(m, on_publish);
	mosquitto_message_v5_callback_set(m, on_message);
	mosquitto_property *props = NULL;
	if (!clean && !o_v311) mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600);
	int rc = mosquitto_connect_bind_v5(m, o_host, o_port, 60, NULL, props);
	mosquitto_property_free_all(&props);
	if (rc) die("connect", rc);
	return m;
}

static struct mosquitto *client_at(int i) { return cl[i].m; }

/* step: one pass of the event loop over the first n clients, waiting at most ms. */
static void step(int n, int ms)
{
	bench_step(client_at, n, ms, &lost_rc);
}

static void wait_connected(int n)
{
	long long limit = now_ns() + 10000000000LL;
	for (;;) {
		int ok = 1;
		for (int i = 0; i < n; i++) ok &= cl[i].connected;
		if (ok) return;
		if (lost_rc) exit(2);
		if (now_ns() > limit) { fprintf(stderr, "mqbench: connect timed out\n"); exit(2); }
		step(n, 10);
	}
}

static sqlite3 *db_open(void)
{
	sqlite3 *db;
	if (sqlite3_open_v2(o_db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "mqbench: %s: %s\n", o_db, sqlite3_errmsg(db));
		exit(2);
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* db_rows: the highest row id of the table (ids grow by one per insert here, and
 * max(id) costs a b-tree descent where count(*) would scan). */
static long db_rows(sqlite3 *db)
{
	char sql[256];
	sqlite3_stmt *st;
	long v = -1;
	snprintf(sql, sizeof sql, "SELECT coalesce(max(id), 0) FROM \"%s\"", o_table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
	if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* db_wait: poll until the table has grown to target rows; the time it got there, or 0. */
static long long db_wait(sqlite3 *db, long target, long *got)
{
	long long limit = now_ns() + (long long)(o_timeout * 1e9);
	for (;;) {
		*got = db_rows(db);
		if (*got >= target) return now_ns();
		if (now_ns() > limit) return 0;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}

static int run_pub(void)
{
	size_t bufsize = o_ops ? (size_t)o_ops * 128 + 16 : 512;
	char *buf = malloc(bufsize);
	long rows_each = o_ops ? o_ops : 1;
	if (!buf) die("malloc", 0);
	sqlite3 *db = o_db ? db_open() : NULL;
	long base = db ? db_rows(db) : 0;
	window_each = o_window / o_clients;
	if (window_each < 2) window_each = 2;
	cl = calloc((size_t)o_clients, sizeof *cl);
	for (int i = 0; i < o_clients; i++) {
		cl[i].idx = i;
		cl[i].quota = o_n / o_clients + (i < o_n % o_clients);
		cl[i].m = client_new(&cl[i], NULL, 1);
	}
	wait_connected(o_clients);

	long long t0 = now_ns(), limit = t0 + (long long)(o_timeout * 1e9);
	long total_done = 0;
	while (total_done < o_n) {
		total_done = 0;
		for (int i = 0; i < o_clients; i++) {
			struct client *c = &cl[i];
			while (c->sent < c->quota && c->sent - c->done < window_each) {
				int len = o_ops ? bulk_payload(buf, bufsize, i, c->sent) : payload(buf, bufsize, i, c->sent, 0);
				if (len < 0) { fprintf(stderr, "mqbench: --ops: payload too long\n"); exit(2); }
				int rc = mosquitto_publish_v5(c->m, NULL, o_topic, len, buf, o_qos, false, NULL);
				if (rc) die("publish", rc);
				c->sent++;
			}
			total_done += c->done;
		}
		if (total_done >= o_n || lost_rc) break;
		if (now_ns() > limit) { fprintf(stderr, "mqbench: publish timed out\n"); break; }
		step(o_clients, 100);
	}
	long long t1 = now_ns();
	if (lost_rc) printf("lost=1 ");
	printf("mode=pub n=%ld clients=%d window=%d start_ns=%lld done_ns=%lld pub_secs=%.3f pub_rate=%.0f",
		total_done, o_clients, window_each, t0, t1, (t1 - t0) / 1e9, total_done / ((t1 - t0) / 1e9));
	if (db) {
		long got;
		long long t2 = db_wait(db, base + o_n * rows_each, &got);
		long rows = got - base;
		double secs = ((t2 ? t2 : now_ns()) - t0) / 1e9;
		printf(" rows=%ld commit_secs=%.3f commit_rate=%.0f%s", rows, secs, rows / secs,
			t2 ? "" : " timeout=1");
		sqlite3_close(db);
	}
	printf(" cpu_s=%.2f\n", bench_cpu_s());
	for (int i = 0; i < o_clients; i++) {
		mosquitto_disconnect(cl[i].m);
		mosquitto_destroy(cl[i].m);
	}
	free(buf);
	return 0;
}

static int run_sub(void)
{
	char id[64];
	if (!o_id) { snprintf(id, sizeof id, "mqbench-sub-%d", (int)getpid()); o_id = id; }
	cl = calloc(1, sizeof *cl);
	long long t0 = now_ns(), limit = t0 + (long long)(o_timeout * 1e9);
	cl[0].m = client_new(&cl[0], o_id, 0);
	while (arrived < o_n && now_ns() < limit && !lost_rc) step(1, 100);
	if (lost_rc) printf("lost=1 ");
	printf("mode=sub n=%ld start_ns=%lld first_ns=%lld last_ns=%lld cpu_s=%.2f hwm_mib=%.1f%s\n", arrived,
		t0, first_ns, last_ns, bench_cpu_s(), hwm_mib(), arrived < o_n ? " timeout=1" : "");
	mosquitto_disconnect(cl[0].m);
	mosquitto_destroy(cl[0].m);
	return 0;
}


static int run_rate(void)
{
	char buf[512], reply[128];
	if (!o_reply) { snprintf(reply, sizeof reply, "bench/receipts/%d", (int)getpid()); o_reply = reply; }
	maxsend = (long)(o_rate * o_secs);
	sent_at = calloc((size_t)maxsend + 1, sizeof *sent_at);
	lat = calloc((size_t)maxsend + 1, sizeof *lat);
	cl = calloc(1, sizeof *cl);
	cl[0].m = client_new(&cl[0], NULL, 1);
	while (!cl[0].subscribed && !lost_rc) step(1, 10);

	long long t0 = now_ns(), period = (long long)(1e9 / o_rate);
	long seq = 0;
	while (seq < maxsend && !lost_rc) {
		long long t = now_ns();
		/* --until FILE: stop sending once FILE exists. */
		if (o_until && !access(o_until, F_OK)) break;
		while (seq < maxsend && t >= t0 + seq * period) {
			int len = payload(buf, sizeof buf, 0, seq, 1);
			sent_at[seq] = now_ns();
			int rc = mosquitto_publish_v5(cl[0].m, NULL, o_topic, len, buf, 2, false, NULL);
			if (rc) die("publish", rc);
			seq++;
		}
		long long next = t0 + seq * period - now_ns();
		/* Round up: a 0 ms poll while the next send is under 1 ms away would spin. */
		step(1, next > 0 ? (int)((next + 999999) / 1000000) : 0);
	}
	maxsend = seq;          /* fewer when --until stopped it */
	long long t1 = now_ns(), limit = t1 + (long long)(o_timeout * 1e9);
	while (nlat < maxsend && now_ns() < limit && !lost_rc) step(1, 50);

	long k = 0;
	for (long i = 0; i < maxsend; i++)
		if (lat[i]) lat[k++] = lat[i];
	qsort(lat, (size_t)k, sizeof *lat, cmp_ll);
	double p50 = k ? lat[k / 2] / 1e6 : -1;
	double p99 = k ? lat[(k * 99 + 99) / 100 - 1] / 1e6 : -1;   /* nearest rank */
	double mx = k ? lat[k - 1] / 1e6 : -1;
	if (lost_rc) printf("lost=1 ");
	printf("mode=rate sent=%ld receipts=%ld not_applied=%ld send_secs=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f cpu_s=%.2f\n",
		seq, k, nbad, (t1 - t0) / 1e9, seq / ((t1 - t0) / 1e9), p50, p99, mx, bench_cpu_s());
	mosquitto_disconnect(cl[0].m);
	mosquitto_destroy(cl[0].m);
	return 0;
}

static int run_wait(void)
{
	long long t0 = now_ns();
	/* The writer may not have created the file or the table yet. */
	while (access(o_db, F_OK) != 0 && now_ns() < t0 + (long long)(o_timeout * 1e9)) {
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	sqlite3 *db = db_open();
	long got;
	long long t1 = db_wait(db, o_n, &got);
	double secs = ((t1 ? t1 : now_ns()) - t0) / 1e9;
	printf("mode=wait rows=%ld secs=%.3f rate=%.0f%s\n", got, secs, got / secs, t1 ? "" : " timeout=1");
	sqlite3_close(db);
	return 0;
}

static void usage(void)
{
	fputs("usage: mqbench pub|sub|rate|wait [-h HOST] [-p PORT] [-t TOPIC] [-n N]\n"
	      "         [-c CLIENTS] [-w WINDOW] [-q QOS] [-r RATE] [-s SECONDS] [--reply TOPIC]\n"
	      "         [--db PATH] [--table T] [--id CLIENTID] [--ready FILE] [--timeout S]\n"
	      "         [--receive-max N] [--mqtt 5|311] [--until FILE] [--ops K]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2) usage();
	o_mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) usage();
		i++;
		if (!strcmp(a, "-h")) o_host = v;
		else if (!strcmp(a, "-p")) o_port = (int)parse_num(a, v);
		else if (!strcmp(a, "-t")) o_topic = v;
		else if (!strcmp(a, "-n")) o_n = (long)parse_num(a, v);
		else if (!strcmp(a, "-c")) o_clients = (int)parse_num(a, v);
		else if (!strcmp(a, "-w")) o_window = (int)parse_num(a, v);
		else if (!strcmp(a, "-q")) o_qos = (int)parse_num(a, v);
		else if (!strcmp(a, "-r")) o_rate = parse_num(a, v);
		else if (!strcmp(a, "-s")) o_secs = parse_num(a, v);
		else if (!strcmp(a, "--reply")) o_reply = v;
		else if (!strcmp(a, "--db")) o_db = v;
		else if (!strcmp(a, "--table")) o_table = v;
		else if (!strcmp(a, "--id")) o_id = v;
		else if (!strcmp(a, "--ready")) o_ready = v;
		else if (!strcmp(a, "--until")) o_until = v;
		else if (!strcmp(a, "--mqtt")) o_v311 = !strcmp(v, "311");
		else if (!strcmp(a, "--receive-max")) o_recv_max = (int)parse_num(a, v);
		else if (!strcmp(a, "--timeout")) o_timeout = parse_num(a, v);
		else if (!strcmp(a, "--ops")) o_ops = (int)parse_num(a, v);
		else usage();
	}
	if (o_clients < 1 || o_n < 1 || o_window < 1 || o_rate <= 0 || o_ops < 0) usage();
	mosquitto_lib_init();
	int rc;
	if (!strcmp(o_mode, "pub") && o_topic) rc = run_pub();
	else if (!strcmp(o_mode, "sub") && o_topic) rc = run_sub();
	else if (!strcmp(o_mode, "rate") && o_topic) rc = run_rate();
	else if (!strcmp(o_mode, "wait") && o_db) rc = run_wait();
	else usage();
	free(cl);
	free(sent_at);
	free(lat);
	mosquitto_lib_cleanup();
	return rc;
}
