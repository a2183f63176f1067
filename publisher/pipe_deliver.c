/* pipe_deliver.c: the log pipe's delivering side (see pipe_deliver.h). The library
 * republishes a transaction under the same id until its receipt comes, so a batch is
 * applied exactly once and the lines keep their order; the broker or the writer away
 * is said once, and lines wait in the spool meanwhile. */
#include "pipe_deliver.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_LINES 100                 /* rows per transaction: one event carries them all */
#define BATCH_BYTES (192u * 1024u)      /* under the writer's default payload limit */
#define WILL_DELAY_S 5                  /* a reconnect within this cancels the build's last will */

void deliver_init(struct deliverer *d, spool *sp, const char *dir,
                  const struct mosqlite_options *mo, const char *will)
{
    memset(d, 0, sizeof *d);
    d->sp = sp;
    d->spool_dir = dir;
    d->mo = *mo;
    d->mo.receipts = 1;
    d->mo.window = 1;
    d->mo.timeout_ms = 0;
    d->will = will;
}

static void on_result(mosqlite_client *c, const struct mosqlite_result *r, void *arg)
{
    struct deliverer *d = arg;

    d->got = 1;
    d->status = r->status;
    snprintf(d->error, sizeof d->error, "%s", r->error ? r->error : "");
}

/* Sleep ms, or less when told to stop. */
static void nap(struct deliverer *d, int ms)
{
    for (; ms > 0 && !d->abandon; ms -= 50)
        usleep(50000);
}

static void say_away(struct deliverer *d, const char *why)
{
    if (d->away)
        return;
    d->away = 1;
    log_warn("%s: lines are kept in the spool %s and delivered when it answers", why,
             d->spool_dir);
}

static mosqlite_client *dial(struct deliverer *d)
{
    mosqlite_client *c = mosqlite_client_new(&d->mo);
    char why[600];

    if (!c)
        return NULL;
    mosqlite_set_callback(c, on_result, d);
    if (d->will && mosqlite_set_will(c, NULL, d->will, WILL_DELAY_S) != MOSQLITE_OK)
        log_warn("no last will for the build: %s", mosqlite_errstr(c));
    if (mosqlite_connect(c) == MOSQLITE_OK)
        return c;
    snprintf(why, sizeof why, "%s", mosqlite_errstr(c));
    say_away(d, why);
    mosqlite_close(c);
    return NULL;
}

/* Publish one transaction of n records and wait for its receipt. 1 when it is done
 * with (applied, or rejected: the records are then forgotten), 0 when it could not be
 * published (to try again), -1 when told to stop while waiting. */
static int send_batch(struct deliverer *d, const char *payload, long n, char kind)
{
    const char *what = kind == 'B' ? "build record(s)" : "line(s)";
    double sent_at;
    int rc;

    d->got = 0;
    if ((rc = mosqlite_publish(d->c, NULL, payload, NULL, NULL)) == MOSQLITE_EINVAL) {
        /* The library refuses it (it would never be sent): count it as rejected. */
        log_error("%ld %s not sent: %s", n, what, mosqlite_errstr(d->c));
        d->rejected += (unsigned long long)n;
        spool_done(d->sp, n);
        return 1;
    }
    if (rc != MOSQLITE_OK) {
        log_error("publishing lines: %s", mosqlite_errstr(d->c));
        return 0;
    }
    sent_at = util_now_exact_ms();
    while (!d->got && !d->abandon) {
        mosqlite_wait(d->c, 200);
        if (!d->got && util_now_exact_ms() - sent_at > 5000)
            say_away(d, "no answer from the broker or the writer for 5 s");
    }
    if (!d->got)
        return -1;
    if (d->away) {
        log_info("delivering again");
        d->away = 0;
    }
    d->batches++;
    if (d->status == MOSQLITE_REJECTED) {
        log_error("%ld %s rejected: %s", n, what, d->error);
        d->rejected += (unsigned long long)n;
    } else {
        d->applied += (unsigned long long)n;
    }
    spool_done(d->sp, n);
    return 1;
}

void *deliver_main(void *arg)
{
    struct deliverer *d = arg;
    char *body = NULL, *payload = NULL, kind, err[256];
    size_t cap = 0, len, pcap = 0;
    unsigned long long seq;
    long n;
    int rc;

    while (!d->abandon) {
        if (!d->c && !(d->c = dial(d))) {
            nap(d, 1000);
            continue;
        }
        n = spool_peek(d->sp, &body, &cap, &len, BATCH_LINES, BATCH_BYTES, &kind, &seq,
                       err, sizeof err);
        if (n < 0) {
            log_error("%s", err);
            break;
        }
        if (n == 0) {
            if (spool_finished(d->sp))
                break;
            spool_wait(d->sp, 200);
            continue;
        }
        if (len + 256 > pcap) {
            char *np = realloc(payload, len + 256);
            if (!np) {
                log_error("out of memory");
                break;
            }
            payload = np;
            pcap = len + 256;
        }
        snprintf(payload, pcap, "{\"id\":\"%s-%llu\",\"ops\":[%s]}", spool_id(d->sp), seq, body);
        spool_inflight(d->sp, n);
        if ((rc = send_batch(d, payload, n, kind)) < 0)
            break;
        if (rc == 0)
            nap(d, 1000);
    }
    if (d->c) {
        mosqlite_wait(d->c, 1);         /* so close() does not wait for the abandoned */
        mosqlite_close(d->c);
        d->c = NULL;
    }
    free(body);
    free(payload);
    d->finished = 1;
    return NULL;
}

/* Stop the deliverer. 1 when its thread has ended (and was joined). */
int deliver_stop(struct deliverer *d, pthread_t th)
{
    int i;

    d->abandon = 1;
    for (i = 0; i < 150 && !d->finished; i++)   /* a connect in progress may take a while */
        usleep(20000);
    if (!d->finished)
        return 0;
    pthread_join(th, NULL);
    return 1;
}

