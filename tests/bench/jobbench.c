/* jobbench.c: the job queue's load driver behind tests/bench/jobs.sh.
 *
 * One single-threaded program; every worker is a libmosquitto client of one poll() loop
 * (as in mqbench.c), so 200 workers cost one process. Each mode prints one line of
 * key=value pairs:
 *
 *   work     N jobs enqueued into QUEUE (write requests of --per enqueue ops each, 10 in
 *            flight, until their receipts), then C workers take them as fast as they can: a
 *            claim (long poll), its grant, a done with a receipt; the done carries the
 *            worker's next claim (one request per job, as mosqlite-work sends them), or
 *            with --carry 0 the claim follows the done as its own message. Rate = N / (the
 *            first claim until the last done's receipt). Counts jobs granted twice.
 *   pickup   C workers wait in long poll; a producer enqueues R jobs a second for S
 *            seconds (each alone on PREFIX/jobs/QUEUE); from the enqueue's publish to its
 *            grant at a worker: p50/p99/max (JB_DUMP=FILE: each job's send time and
 *            latency, to see when the slow ones came).
 *   kill     K rounds: one job enqueued, a worker in a process of its own (mode victim)
 *            granted it, a second worker's claim waiting here; then the victim is killed
 *            with SIGKILL (--stop 0: its connection's Last Will gives its jobs back) or
 *            stopped with SIGSTOP (--stop 1: only the lease's expiry does, its keepalive
 *            being longer); from the signal to the job's next grant here: p50/p99/max.
 *   victim   (kill's worker) claims, prints "granted JOB ATTEMPT", beats every lease/3.
 *   idle     C workers, each with a Last Will, wait in long poll (--wait-ms, claimed again
 *            at each empty) for S seconds; counts claims, empties and grants.
 *   grant    M jobs enqueued (--enqueue 0: the file holds them), one worker: a claim (no
 *            wait) until its grant, then done until its receipt, M times: claim to
 *            grant p50/p99/max.
 *
 * Times are CLOCK_MONOTONIC within this process (kill: the signal and the grant are
 * both taken here). Workers end with a bye (their waiting claims go) and a clean
 * disconnect. A receipt that is not JSON is counted (malformed=), not dropped. */
#define _GNU_SOURCE     /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#define BENCH_PROG "jobbench"
#include "bench.h"

struct wk {
	struct mosquitto *m;
	int idx;
	char name[64], session[40], to[160];
	int connected, subscribed;
	long nclaim;            /* claims made (the claim id's counter) */
	int out;                /* QoS 1/2 messages not yet acknowledged by the broker */
	long long job, attempt; /* the last grant */
	long long granted_ns;   /* when it came */
	int grants, receipts, empties;
};

static const char *o_mode, *o_host = "127.0.0.1", *o_prefix = "mosqlite", *o_queue = "bench";
static int o_port = 1883, o_clients = 1, o_per = 100, o_carry = 1, o_will = 1, o_stop = 0, o_enq = 1;
static long o_n = 1000, o_lease = 30000, o_wait_ms = 30000;
static double o_rate = 100, o_secs = 10, o_timeout = 120;

static struct wk *W;            /* workers, then the producer (W[o_clients]) */
static int NW;                  /* clients in W */
static int lost_rc;
static int closing;             /* the workers have said bye: no more claims */
static long n_rejected, n_pushes, n_enq_receipts, n_malformed;
static char reject_text[512];
/* Per-mode state. */
static unsigned char *seen;     /* work: grants per job id */
static long seen_cap, n_twice, n_done;
static long long *sent_at, *lat;
static long nlat, maxsend;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}




static void publish(struct wk *w, const char *topic, const char *payload, int qos)
{
	int rc = mosquitto_publish_v5(w->m, NULL, topic, (int)strlen(payload), payload, qos, false, NULL);
	if (rc) die("publish", rc);
	w->out++;
}

static void topic_of(char *buf, size_t len, const char *rest)
{
	snprintf(buf, len, "%s/%s", o_prefix, rest);
}

/* claim_fields: the fields of w's next claim (without op and reply_to), into buf. */
static void claim_fields(struct wk *w, char *buf, size_t len, long wait_ms)
{
	w->nclaim++;
	snprintf(buf, len, "\"id\":\"%s.%s.%ld\",\"worker\":\"%s\",\"session\":\"%s\",\"wait_ms\":%ld",
		w->name, w->session, w->nclaim, w->name, w->session, wait_ms);
}

static void send_claim(struct wk *w, long wait_ms)
{
	char topic[256], f[400], buf[600];
	topic_of(topic, sizeof topic, "jobs/");
	strncat(topic, o_queue, sizeof topic - strlen(topic) - 1);
	claim_fields(w, f, sizeof f, wait_ms);
	snprintf(buf, sizeof buf, "{\"op\":\"claim\",%s,\"reply_to\":\"%s\"}", f, w->to);
	publish(w, topic, buf, 1);
}

/* send_done: done for w's job, with a receipt; carrying the next claim when carry. */
static void send_done(struct wk *w, int carry, long wait_ms)
{
	char topic[256], f[400], buf[800];
	topic_of(topic, sizeof topic, "jobs/");
	strncat(topic, o_queue, sizeof topic - strlen(topic) - 1);
	int n = snprintf(buf, sizeof buf, "{\"op\":\"done\",\"id\":\"%lld.%lld.done\",\"job\":%lld,\"attempt\":%lld,"
		"\"reply_to\":\"%s\"", w->job, w->attempt, w->job, w->attempt, w->to);
	if (carry) {
		claim_fields(w, f, sizeof f, wait_ms);
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"claim\":{%s}", f);
	}
	snprintf(buf + n, sizeof buf - (size_t)n, "}");
	publish(w, topic, buf, 2);
}


/* print_pct: p50/p99/max (ms) of the k latencies in lat (sorted here), nearest rank. */
static void print_pct(long k)
{
	qsort(lat, (size_t)k, sizeof *lat, cmp_ll);
	printf(" n=%ld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", k, k ? lat[k / 2] / 1e6 : -1,
		k ? lat[(k * 99 + 99) / 100 - 1] / 1e6 : -1, k ? lat[k - 1] / 1e6 : -1);
}

/* ---- messages ------------------------------------------------------------------------- */

static void on_grant(struct wk *w, const cJSON *j, long long t);

static long long num_of(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

static void on_receipt(struct wk *w, const cJSON *j)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
	const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "error");
	w->receipts++;
	if (cJSON_IsString(st) && !strcmp(st->valuestring, "applied")) {
		if (cJSON_IsString(id) && !strncmp(id->valuestring, "enq-", 4)) n_enq_receipts++;
		else n_done++;
		return;
	}
	n_rejected++;
	if (!reject_text[0])
		snprintf(reject_text, sizeof reject_text, "%s: %s", cJSON_IsString(id) ? id->valuestring : "?",
			cJSON_IsString(er) ? er->valuestring : (cJSON_IsString(st) ? st->valuestring : "?"));
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
	const mosquitto_property *p)
{
	long long t = now_ns();
	struct wk *w = ud;
	(void)m; (void)p;
	cJSON *j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
	if (cJSON_IsString(op) && !strcmp(op->valuestring, "job")) {
		on_grant(w, j, t);
	} else if (cJSON_IsString(op) && !strcmp(op->valuestring, "empty")) {
		w->empties++;
		/* In long poll, claim again; grant counts an empty as the end. */
		if (strcmp(o_mode, "grant") && !closing) send_claim(w, o_wait_ms);
	} else if (cJSON_IsString(op)) {
		n_pushes++;             /* lease_lost, cancel */
	} else if (j) {
		on_receipt(w, j);
	} else if (msg->payloadlen > 7 && !memcmp(msg->payload, "{\"id\":\"", 7)) {
		/* A receipt that is not JSON (the writer's receipt of a done whose carried
		 * claim was granted at once holds the grant's text): counted apart. */
		n_malformed++;
		w->receipts++;
		if (memmem(msg->payload, (size_t)msg->payloadlen, "\"status\":\"applied\"", 18)) n_done++;
		else n_rejected++;
	}
	cJSON_Delete(j);
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *p)
{
	struct wk *w = ud;
	(void)flags; (void)p;
	if (rc) {
		fprintf(stderr, "jobbench: connect refused: %s\n", mosquitto_reason_string(rc));
		exit(2);
	}
	w->connected = 1;
	rc = mosquitto_subscribe_v5(m, NULL, w->to, 1, 0, NULL);
	if (rc) die("subscribe", rc);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q,
	const mosquitto_property *p)
{
	struct wk *w = ud;
	(void)m; (void)mid; (void)n; (void)q; (void)p;
	w->subscribed = 1;
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason, const mosquitto_property *p)
{
	struct wk *w = ud;
	(void)m; (void)mid; (void)reason; (void)p;
	w->out--;
}

/* wk_open: client i, named NAME-PID-i, its reply topic PREFIX/jobs/to/NAME, a random
 * session, a Last Will (gone) when will. */
static void wk_open(struct wk *w, int i, const char *name, int will, int keepalive)
{
	char wt[256], wp[256];
	memset(w, 0, sizeof *w);
	w->idx = i;
	snprintf(w->name, sizeof w->name, "%s-%d-%d", name, (int)getpid(), i);
	snprintf(w->session, sizeof w->session, "%08lx%08lx", (unsigned long)random(), (unsigned long)random());
	snprintf(w->to, sizeof w->to, "%s/jobs/to/%s", o_prefix, w->name);
	w->m = mosquitto_new(w->name, true, w);
	if (!w->m) die("mosquitto_new", 0);
	mosquitto_int_option(w->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(w->m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(w->m, on_connect);
	mosquitto_subscribe_v5_callback_set(w->m, on_subscribe);
	mosquitto_publish_v5_callback_set(w->m, on_publish);
	mosquitto_message_v5_callback_set(w->m, on_message);
	if (will) {
		topic_of(wt, sizeof wt, "jobs/worker");
		snprintf(wp, sizeof wp, "{\"op\":\"gone\",\"worker\":\"%s\",\"session\":\"%s\"}", w->name, w->session);
		int rc = mosquitto_will_set_v5(w->m, wt, (int)strlen(wp), wp, 2, false, NULL);
		if (rc) die("will", rc);
	}
	int rc = mosquitto_connect_bind_v5(w->m, o_host, o_port, keepalive, NULL, NULL);
	if (rc) die("connect", rc);
}

static struct mosquitto *client_at(int i) { return W[i].m; }

/* step: one pass of the event loop over every client, waiting at most ms. */
static void step(int ms)
{
	bench_step(client_at, NW, ms, &lost_rc);
}

/* step_for: run the loop for ms. */
static void step_for(int ms)
{
	long long until = now_ns() + ms * 1000000LL;
	while (now_ns() < until && !lost_rc) step(5);
}

/* open_all: workers 0..n-1 (with wills when will) and, when producer, a producer
 * W[n]; waits until each has subscribed to its reply topic. */
static void open_all(int n, int will, int producer)
{
	NW = n + (producer ? 1 : 0);
	W = calloc((size_t)NW, sizeof *W);
	if (!W) die("calloc", 0);
	for (int i = 0; i < n; i++) wk_open(&W[i], i, "jbw", will, 60);
	if (producer) wk_open(&W[n], n, "jbp", 0, 60);
	long long limit = now_ns() + 20000000000LL;
	for (;;) {
		int ok = 1;
		for (int i = 0; i < NW; i++) ok &= W[i].subscribed;
		if (ok) return;
		if (lost_rc || now_ns() > limit) { fprintf(stderr, "jobbench: connect timed out\n"); exit(2); }
		step(10);
	}
}

/* close_all: each worker says bye (its waiting claims go, as a clean agent's do), then
 * every client disconnects cleanly (no Last Will). */
static void close_all(void)
{
	char topic[256], buf[256];
	topic_of(topic, sizeof topic, "jobs/worker");
	closing = 1;
	for (int i = 0; i < NW; i++) {
		if (W[i].name[2] == 'w') {
			snprintf(buf, sizeof buf, "{\"op\":\"bye\",\"worker\":\"%s\",\"session\":\"%s\"}",
				W[i].name, W[i].session);
			publish(&W[i], topic, buf, 2);
		}
	}
	long long limit = now_ns() + 5000000000LL;
	for (int i = 0; i < NW && !lost_rc && now_ns() < limit; i++)
		while (W[i].out > 0 && !lost_rc && now_ns() < limit) step(5);
	for (int i = 0; i < NW; i++) {
		mosquitto_disconnect(W[i].m);   /* a clean end: no Last Will */
		mosquitto_loop_write(W[i].m, 1);
		mosquitto_destroy(W[i].m);
	}
}

/* enqueue: n jobs with lease_ms into the queue from the producer P, --per a request,
 * 10 requests in flight; returns once all are committed (their receipts). */
static void enqueue(struct wk *P, long n, long lease_ms)
{
	char topic[256];
	size_t cap = (size_t)o_per * 160 + 256;
	char *buf = malloc(cap);
	if (!buf) die("malloc", 0);
	topic_of(topic, sizeof topic, "write");
	long sent = 0, reqs = 0, base = n_enq_receipts;
	long long limit = now_ns() + (long long)(o_timeout * 1e9);
	while (n_enq_receipts - base < reqs || sent < n) {
		while (sent < n && reqs - (n_enq_receipts - base) < 10) {
			size_t k = (size_t)snprintf(buf, cap, "{\"id\":\"enq-%d-%ld-%ld\",\"reply_to\":\"%s\",\"ops\":[",
				(int)getpid(), base, reqs, P->to);
			for (int j = 0; j < o_per && sent < n; j++, sent++)
				k += (size_t)snprintf(buf + k, cap - k, "%s{\"op\":\"enqueue\",\"queue\":\"%s\","
					"\"payload\":{\"seq\":%ld},\"lease_ms\":%ld}", j ? "," : "", o_queue, sent, lease_ms);
			snprintf(buf + k, cap - k, "]}");
			publish(P, topic, buf, 2);
			reqs++;
		}
		if (n_rejected) { fprintf(stderr, "jobbench: enqueue rejected: %s\n", reject_text); exit(2); }
		if (lost_rc || now_ns() > limit) { fprintf(stderr, "jobbench: enqueue timed out\n"); exit(2); }
		step(50);
	}
	free(buf);
}

/* ---- grants, by mode ------------------------------------------------------------------- */

static void on_grant(struct wk *w, const cJSON *j, long long t)
{
	const cJSON *pl = cJSON_GetObjectItemCaseSensitive(j, "payload");
	w->job = num_of(j, "job");
	w->attempt = num_of(j, "attempt");
	w->granted_ns = t;
	w->grants++;
	if (!strcmp(o_mode, "work")) {
		if (w->job >= 0 && w->job < seen_cap && seen[w->job]++) n_twice++;
		send_done(w, o_carry, o_wait_ms);
		if (!o_carry) send_claim(w, o_wait_ms);
	} else if (!strcmp(o_mode, "pickup")) {
		long long seq = num_of(pl, "seq");
		if (seq >= 0 && seq < maxsend && sent_at[seq] && !lat[seq]) {
			lat[seq] = t - sent_at[seq];
			nlat++;
		}
		send_done(w, 1, o_wait_ms);
	} else if (!strcmp(o_mode, "victim")) {
		printf("granted %lld %lld\n", w->job, w->attempt);
		fflush(stdout);
	}
	/* kill, grant: the round's code reads w->job, w->grants. */
}

/* ---- modes -------------------------------------------------------------------------------- */

static int run_work(void)
{
	open_all(o_clients, 1, 1);
	long long e0 = now_ns();
	enqueue(&W[o_clients], o_n, o_lease);
	double enq_secs = (now_ns() - e0) / 1e9;
	seen_cap = o_n * 2 + 16;     /* job ids of a fresh file: 1..n */
	seen = calloc((size_t)seen_cap, 1);
	long long t0 = now_ns(), limit = t0 + (long long)(o_timeout * 1e9);
	for (int i = 0; i < o_clients; i++) send_claim(&W[i], o_wait_ms);
	while (n_done < o_n && !lost_rc && now_ns() < limit) step(100);
	long long t1 = now_ns();
	long grants = 0, empties = 0;
	for (int i = 0; i < o_clients; i++) grants += W[i].grants, empties += W[i].empties;
	printf("mode=work workers=%d carry=%d n=%ld done=%ld secs=%.3f rate=%.0f grants=%ld twice=%ld empties=%ld "
		"rejected=%ld malformed=%ld enqueue_secs=%.3f enqueue_rate=%.0f cpu_s=%.2f%s%s\n", o_clients, o_carry, o_n,
		n_done, (t1 - t0) / 1e9, n_done / ((t1 - t0) / 1e9), grants, n_twice, empties, n_rejected, n_malformed, enq_secs,
		o_n / enq_secs, bench_cpu_s(), n_done < o_n ? " timeout=1" : "", lost_rc ? " lost=1" : "");
	if (n_rejected) fprintf(stderr, "jobbench: first rejection: %s\n", reject_text);
	close_all();
	free(seen);
	return 0;
}

static int run_pickup(void)
{
	char topic[256], buf[256];
	open_all(o_clients, 1, 1);
	struct wk *P = &W[o_clients];
	for (int i = 0; i < o_clients; i++) send_claim(&W[i], o_wait_ms);
	step_for(500);                       /* the claims are waiting in the writer */
	maxsend = (long)(o_rate * o_secs);
	sent_at = calloc((size_t)maxsend + 1, sizeof *sent_at);
	lat = calloc((size_t)maxsend + 1, sizeof *lat);
	topic_of(topic, sizeof topic, "jobs/");
	strncat(topic, o_queue, sizeof topic - strlen(topic) - 1);
	long long t0 = now_ns(), period = (long long)(1e9 / o_rate);
	long seq = 0;
	while (seq < maxsend && !lost_rc) {
		while (seq < maxsend && now_ns() >= t0 + seq * period) {
			snprintf(buf, sizeof buf, "{\"op\":\"enqueue\",\"payload\":{\"seq\":%ld},\"lease_ms\":%ld}", seq, o_lease);
			sent_at[seq] = now_ns();
			publish(P, topic, buf, 2);
			seq++;
		}
		long long next = t0 + seq * period - now_ns();
		step(next > 0 ? (int)((next + 999999) / 1000000) : 0);
	}
	long long t1 = now_ns(), limit = t1 + (long long)(o_timeout * 1e9);
	while (nlat < seq && now_ns() < limit && !lost_rc) step(20);
	const char *dump = getenv("JB_DUMP");   /* seq, send time and latency of each job (ms) */
	FILE *df = dump ? fopen(dump, "w") : NULL;
	long k = 0;
	for (long i = 0; i < seq; i++) {
		if (df) fprintf(df, "%ld %.3f %.3f\n", i, (sent_at[i] - t0) / 1e6, lat[i] / 1e6);
		if (lat[i]) lat[k++] = lat[i];
	}
	if (df) fclose(df);
	printf("mode=pickup workers=%d sent=%ld send_secs=%.3f rate=%.0f", o_clients, seq, (t1 - t0) / 1e9,
		seq / ((t1 - t0) / 1e9));
	print_pct(k);
	printf(" rejected=%ld cpu_s=%.2f%s\n", n_rejected, bench_cpu_s(), lost_rc ? " lost=1" : "");
	close_all();
	return 0;
}

/* wait_for: run the loop until *iv or *lv (whichever is given) is above v0; 0 on a
 * timeout or a lost connection. */
static int wait_for(const int *iv, const long *lv, long v0, double secs)
{
	long long limit = now_ns() + (long long)(secs * 1e9);
	while (!lost_rc && now_ns() < limit) {
		if ((iv && *iv > v0) || (lv && *lv > v0)) return 1;
		step(2);
	}
	return 0;
}

static const char *self_path;

/* spawn_victim: the victim worker in a process of its own; its stdout on *fd. */
static pid_t spawn_victim(int *fd)
{
	char port[16], lease[24];
	int p[2];
	if (pipe(p)) die("pipe", 0);
	snprintf(port, sizeof port, "%d", o_port);
	snprintf(lease, sizeof lease, "%ld", o_lease);
	pid_t pid = fork();
	if (pid < 0) die("fork", 0);
	if (!pid) {
		dup2(p[1], 1);
		for (int fd = 3; fd < 1024; fd++) close(fd);   /* not the driver's sockets */
		execl(self_path, self_path, "victim", "-h", o_host, "-p", port, "--prefix", o_prefix, "-q", o_queue,
			"--lease", lease, "--timeout", "300", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*fd = p[0];
	return pid;
}

/* victim_grant: the job and attempt the victim says it was granted, reading its pipe
 * while the loop runs; 0 on timeout. */
static int victim_grant(int fd, long long *job, long long *attempt)
{
	char line[128];
	size_t n = 0;
	long long limit = now_ns() + 20000000000LL;
	while (!lost_rc && now_ns() < limit) {
		ssize_t k = read(fd, line + n, sizeof line - 1 - n);
		if (k > 0) n += (size_t)k;
		line[n] = 0;
		if (strchr(line, '\n')) return sscanf(line, "granted %lld %lld", job, attempt) == 2;
		if (k == 0) return 0;           /* it exited */
		step(5);
	}
	return 0;
}

static int run_kill(void)
{
	open_all(1, 1, 1);
	struct wk *R = &W[0], *P = &W[1];
	lat = calloc((size_t)o_n + 1, sizeof *lat);
	long k = 0, wrong = 0;
	for (long r = 0; r < o_n && !lost_rc; r++) {
		long long job, attempt;
		int fd;
		enqueue(P, 1, o_lease);
		pid_t pid = spawn_victim(&fd);
		if (!victim_grant(fd, &job, &attempt)) {
			fprintf(stderr, "jobbench: the victim was granted nothing\n");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			exit(2);
		}
		int g0 = R->grants;
		long d0 = n_done;
		send_claim(R, 60000);
		step_for(150);                  /* the claim is waiting in the writer */
		long long t0 = now_ns();
		kill(pid, o_stop ? SIGSTOP : SIGKILL);
		if (wait_for(&R->grants, NULL, g0, 30)) {
			lat[k++] = R->granted_ns - t0;
			if (R->job != job || R->attempt != attempt + 1) wrong++;
			send_done(R, 0, 0);
			wait_for(NULL, &n_done, d0, 10);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
	}
	printf("mode=kill stop=%d lease_ms=%ld rounds=%ld", o_stop, o_lease, o_n);
	print_pct(k);
	printf(" wrong=%ld rejected=%ld%s\n", wrong, n_rejected, lost_rc ? " lost=1" : "");
	close_all();
	return 0;
}

static int run_victim(void)
{
	char topic[256], buf[512];
	/* Keepalive 60 s: a stopped victim's link is not declared dead within its lease. */
	NW = 1;
	W = calloc(1, sizeof *W);
	wk_open(&W[0], 0, "jbv", o_will, 60);
	while (!W[0].subscribed && !lost_rc) step(10);
	send_claim(&W[0], 60000);
	topic_of(topic, sizeof topic, "jobs/worker");
	long long limit = now_ns() + (long long)(o_timeout * 1e9), beat = 0;
	while (!lost_rc && now_ns() < limit) {
		step(20);
		if (W[0].grants && now_ns() >= beat) {
			snprintf(buf, sizeof buf, "{\"op\":\"beat\",\"worker\":\"%s\",\"session\":\"%s\",\"reply_to\":\"%s\","
				"\"jobs\":[{\"job\":%lld,\"attempt\":%lld}]}", W[0].name, W[0].session, W[0].to,
				W[0].job, W[0].attempt);
			publish(&W[0], topic, buf, 1);
			beat = now_ns() + o_lease * 1000000LL / 3;
		}
	}
	return 0;
}

static int run_idle(void)
{
	open_all(o_clients, 1, 0);
	for (int i = 0; i < o_clients; i++) send_claim(&W[i], o_wait_ms);
	step_for((int)(o_secs * 1000));
	long claims = 0, empties = 0, grants = 0;
	for (int i = 0; i < o_clients; i++) claims += W[i].nclaim, empties += W[i].empties, grants += W[i].grants;
	printf("mode=idle workers=%d secs=%.0f wait_ms=%ld claims=%ld empties=%ld grants=%ld rejected=%ld cpu_s=%.2f%s\n",
		o_clients, o_secs, o_wait_ms, claims, empties, grants, n_rejected, bench_cpu_s(), lost_rc ? " lost=1" : "");
	close_all();
	return 0;
}

static int run_grant(void)
{
	open_all(1, 1, 1);
	struct wk *w = &W[0];
	if (o_enq) enqueue(&W[1], o_n, o_lease);    /* else the file holds them */
	lat = calloc((size_t)o_n + 1, sizeof *lat);
	long k = 0;
	for (long i = 0; i < o_n && !lost_rc && !n_rejected; i++) {
		int g0 = w->grants, e0 = w->empties;
		long d0 = n_done;
		long long t0 = now_ns();
		send_claim(w, 0);
		while (w->grants == g0 && w->empties == e0 && !lost_rc && !n_rejected) step(2);
		if (w->grants == g0) break;
		lat[k++] = w->granted_ns - t0;
		send_done(w, 0, 0);
		wait_for(NULL, &n_done, d0, 10);
	}
	printf("mode=grant");
	print_pct(k);
	printf(" empties=%d rejected=%ld cpu_s=%.2f%s\n", w->empties, n_rejected, bench_cpu_s(), lost_rc ? " lost=1" : "");
	if (n_rejected) fprintf(stderr, "jobbench: first rejection: %s\n", reject_text);
	close_all();
	return 0;
}

static void usage(void)
{
	fputs("usage: jobbench work|pickup|kill|idle|grant [-h HOST] [-p PORT] [--prefix P]\n"
	      "         [-q QUEUE] [-n N] [-c WORKERS] [-r RATE] [-s SECONDS] [--per OPS] [--carry 0|1]\n"
	      "         [--lease MS] [--wait-ms MS] [--stop 0|1] [--will 0|1] [--enqueue 0|1] [--timeout S]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2) usage();
	o_mode = argv[1];
	self_path = argv[0];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) usage();
		i++;
		if (!strcmp(a, "-h")) o_host = v;
		else if (!strcmp(a, "-p")) o_port = (int)parse_num(a, v);
		else if (!strcmp(a, "--prefix")) o_prefix = v;
		else if (!strcmp(a, "-q")) o_queue = v;
		else if (!strcmp(a, "-n")) o_n = (long)parse_num(a, v);
		else if (!strcmp(a, "-c")) o_clients = (int)parse_num(a, v);
		else if (!strcmp(a, "-r")) o_rate = parse_num(a, v);
		else if (!strcmp(a, "-s")) o_secs = parse_num(a, v);
		else if (!strcmp(a, "--per")) o_per = (int)parse_num(a, v);
		else if (!strcmp(a, "--carry")) o_carry = (int)parse_num(a, v);
		else if (!strcmp(a, "--will")) o_will = (int)parse_num(a, v);
		else if (!strcmp(a, "--enqueue")) o_enq = (int)parse_num(a, v);
		else if (!strcmp(a, "--stop")) o_stop = (int)parse_num(a, v);
		else if (!strcmp(a, "--lease")) o_lease = (long)parse_num(a, v);
		else if (!strcmp(a, "--wait-ms")) o_wait_ms = (long)parse_num(a, v);
		else if (!strcmp(a, "--timeout")) o_timeout = parse_num(a, v);
		else usage();
	}
	if (o_clients < 1 || o_n < 1 || o_rate <= 0 || o_per < 1 || o_per > 1000) usage();
	srandom((unsigned)(now_ns() ^ getpid()));
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	int rc;
	if (!strcmp(o_mode, "work")) rc = run_work();
	else if (!strcmp(o_mode, "pickup")) rc = run_pickup();
	else if (!strcmp(o_mode, "kill")) rc = run_kill();
	else if (!strcmp(o_mode, "victim")) rc = run_victim();
	else if (!strcmp(o_mode, "idle")) rc = run_idle();
	else if (!strcmp(o_mode, "grant")) rc = run_grant();
	else usage();
	free(W);
	free(sent_at);
	free(lat);
	mosquitto_lib_cleanup();
	return rc;
}
