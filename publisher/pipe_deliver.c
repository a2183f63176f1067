/* pipe_deliver.c: the log pipe's delivering side (see pipe_deliver.h). Transactions
 * go out in spool order, several in flight; the library republishes each under the
 * same id until its receipt comes, in publish order and with every one after it, so
 * a transaction is applied exactly once; after a republish nothing new goes out until
 * every transaction in flight is answered. A transaction published while the one
 * before it has no receipt yet names it in "after": the writer applies it only once
 * that one is applied, and otherwise answers "waiting" (the library then publishes it
 * again after that one), so the order holds whatever the broker or the writer lost.
 * The broker or the writer away is said once, and lines wait in the spool meanwhile. A
 * transaction the broker refuses for good (its ACL) ends delivery: it and what follows
 * stay in the spool. */
#include "pipe_deliver.h"
#include "log.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WILL_DELAY_S 5                  /* a reconnect within this cancels the build's last will */

void deliver_init(struct deliverer *d, spool *sp, const char *dir,
                  const struct mosqlite_options *mo, const char *will)
{
    memset(d, 0, sizeof *d);
    d->sp = sp;
    d->spool_dir = dir;
    d->mo = *mo;
    d->mo.receipts = 1;
    d->mo.timeout_ms = 0;
    d->window = DELIVER_WINDOW;
    d->batch_lines = DELIVER_LINES;
    d->batch_bytes = DELIVER_BYTES;
    d->will = will;
}

static const char *what(char kind)
{
    return kind == 'B' ? "build record(s)" : "line(s)";
}

/* A transaction is answered (in the thread, from inside the library's calls). */
static void on_result(mosqlite_client *c, const struct mosqlite_result *r, void *arg)
{
    struct deliverer *d = arg;
    int slot = (int)(intptr_t)r->tag;
    struct flight *f = &d->fl[slot];

    if (r->status == MOSQLITE_REFUSED) {
        /* The broker would refuse it again (its ACL): delivery ends, the transaction
         * stays in the spool, unanswered, to be delivered under another login. */
        if (!d->refused)
            log_error("%s: delivery stopped; the lines stay in the spool %s, for a user that "
                      "may publish there", r->error ? r->error : "refused by the broker", d->spool_dir);
        d->refused = 1;
        d->freefl[d->nfree++] = slot;
        d->outstanding--;
        return;
    }
    if (d->away) {
        log_info("delivering again");
        d->away = 0;
    }
    d->batches++;
    if (!d->draining)
        d->open = 1;
    if (r->status == MOSQLITE_REJECTED) {
        log_error("%ld %s rejected: %s", f->n, what(f->kind), r->error ? r->error : "");
        d->rejected += (unsigned long long)f->n;
    } else {
        d->applied += (unsigned long long)f->n;
    }
    spool_done(d->sp, f->seq);
    if (f->seq == d->last_seq)
        d->last_live = 0;
    d->freefl[d->nfree++] = slot;
    d->outstanding--;
    d->answered_at = util_now_exact_ms();
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

/* Publish the transaction in payload (n records from seq). 1 when it is in the
 * window or done with (the library refused it: counted as rejected), 0 when it could
 * not be published (to try again). */
static int send_batch(struct deliverer *d, const char *payload, long n, char kind,
                      unsigned long long seq)
{
    unsigned long long last_seq;
    int slot, rc, last_live;

    slot = d->freefl[--d->nfree];
    d->fl[slot].seq = seq;
    d->fl[slot].n = n;
    d->fl[slot].kind = kind;
    if (d->outstanding == 0)
        d->answered_at = util_now_exact_ms();
    d->outstanding++;
    last_seq = d->last_seq;
    last_live = d->last_live;
    d->last_seq = seq;                  /* before: its receipt may come within the call */
    d->last_live = 1;
    rc = mosqlite_publish(d->c, NULL, payload, (void *)(intptr_t)slot, NULL);
    if (rc == MOSQLITE_OK)
        return 1;
    d->last_seq = last_seq;             /* not published: the one before is still the last */
    d->last_live = last_live;
    d->outstanding--;
    d->freefl[d->nfree++] = slot;
    if (rc == MOSQLITE_EINVAL) {
        /* The library refuses it (it would never be sent): count it as rejected. */
        log_error("%ld %s not sent: %s", n, what(kind), mosqlite_errstr(d->c));
        d->rejected += (unsigned long long)n;
        spool_done(d->sp, seq);
        return 1;
    }
    log_error("publishing lines: %s", mosqlite_errstr(d->c));
    return 0;
}

/* What may go out now: nothing new while draining (something had to be published
 * again: a transaction lost by the broker or the writer is sent again, in order with
 * those after it, before anything new); then, and on a new connection, one at a time
 * until a receipt comes (a broker without the writer's session drops what it is sent:
 * a later transaction must not reach the writer before an earlier one is known to
 * have); else up to the window. */
static int room(struct deliverer *d)
{
    struct mosqlite_stats st;

    mosqlite_stats(d->c, &st);
    if (st.republished != d->republished) {
        d->republished = st.republished;
        d->draining = 1;
        d->open = 0;
    }
    if (d->draining && d->outstanding == 0)
        d->draining = 0;
    return !d->draining && d->outstanding < (d->open ? d->window : 1);
}

/* The window (1 to DELIVER_WINDOW_MAX) given to the library, and its slots, all free.
 * -1 when out of memory. */
static int open_window(struct deliverer *d)
{
    long i;

    if (d->window < 1)
        d->window = 1;
    if (d->window > DELIVER_WINDOW_MAX)
        d->window = DELIVER_WINDOW_MAX;
    d->mo.window = d->window;
    d->mo.window_bytes = (size_t)d->window * (d->batch_bytes + 65536);
    d->fl = calloc((size_t)d->window, sizeof *d->fl);
    d->freefl = calloc((size_t)d->window, sizeof *d->freefl);
    if (!d->fl || !d->freefl) {
        log_error("out of memory");
        return -1;
    }
    for (i = 0; i < d->window; i++)
        d->freefl[d->nfree++] = (int)(d->window - 1 - i);
    return 0;
}

/* The transaction of the records in body (len bytes, from seq) into *payload (grown,
 * *pcap its size). -1 when out of memory. */
static int make_payload(struct deliverer *d, const char *body, size_t len, unsigned long long seq,
                        char **payload, size_t *pcap)
{
    if (len + 256 > *pcap) {
        char *np = realloc(*payload, len + 256);
        if (!np) {
            log_error("out of memory");
            return -1;
        }
        *payload = np;
        *pcap = len + 256;
    }
    /* After the one before while that one has no receipt: a transaction
     * the broker or the writer lost then cannot be overtaken. */
    if (d->last_live)
        snprintf(*payload, *pcap, "{\"id\":\"%s-%llu\",\"after\":\"%s-%llu\",\"ops\":[%s]}",
                 spool_id(d->sp), seq, spool_id(d->sp), d->last_seq, body);
    else
        snprintf(*payload, *pcap, "{\"id\":\"%s-%llu\",\"ops\":[%s]}", spool_id(d->sp),
                 seq, body);
    return 0;
}

void *deliver_main(void *arg)
{
    struct deliverer *d = arg;
    char *body = NULL, *payload = NULL, kind = 'L', err[256];
    size_t cap = 0, len = 0, pcap = 0;
    unsigned long long seq = 0;
    long n = 0;
    int held = 0;                       /* a batch taken and not yet published */

    if (open_window(d))
        goto out;
    while (!d->abandon && !d->refused) {
        if (!d->c) {
            if (!(d->c = dial(d))) {
                nap(d, 1000);
                continue;
            }
            d->open = 0;
            d->republished = 0;
        }
        if (room(d)) {
            if (!held) {
                n = spool_take(d->sp, &body, &cap, &len, d->batch_lines, d->batch_bytes, &kind,
                               &seq, err, sizeof err);
                if (n < 0) {
                    log_error("%s", err);
                    break;
                }
                if (n > 0 && make_payload(d, body, len, seq, &payload, &pcap))
                    break;
                held = n > 0;
            }
            if (held) {
                if (send_batch(d, payload, n, kind, seq))
                    held = 0;
                else
                    nap(d, 1000);
                continue;
            }
            if (d->outstanding == 0) {
                if (spool_finished(d->sp))
                    break;
                spool_wait(d->sp, 200);
                continue;
            }
        }
        /* Wait for an answer; new records are looked at again within 20 ms. */
        mosqlite_wait_any(d->c, d->outstanding < (d->open ? d->window : 1) && !d->draining ? 20 : 200);
        if (d->outstanding > 0 && util_now_exact_ms() - d->answered_at > 5000)
            say_away(d, "no answer from the broker or the writer for 5 s");
    }
out:
    if (d->c) {
        mosqlite_wait(d->c, 1);         /* so close() does not wait for the abandoned */
        mosqlite_close(d->c);
        d->c = NULL;
    }
    free(body);
    free(payload);
    free(d->fl);
    free(d->freefl);
    d->fl = NULL;
    d->freefl = NULL;
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

