/* internal.h: the library's internal header (not installed): the client's insides,
 * shared by client.c (the connection) and window.c (the outstanding requests), and,
 * through request.h, the request helpers both use. client.c calls into window.c, never
 * the other way. */
#ifndef MOSQLITE_INTERNAL_H
#define MOSQLITE_INTERNAL_H

#include "request.h"

#include <mosquitto.h>
#include <pthread.h>

enum estate { E_FREE, E_SENDING, E_WAITING, E_DONE };

struct entry {
    enum estate state;
    int mid;                    /* mid of the latest publish */
    int sent_counted;           /* stats.sent already counted for this request */
    int tries;                  /* publishes so far */
    double retry_at;            /* E_WAITING: when to publish again (ms) */
    int backoff_ms;             /* the next retry delay */
    char *topic, *payload;      /* owned */
    size_t len;
    char id[MOSQLITE_ID_MAX + 1];
    enum mosqlite_status status;
    char *error;                /* owned; the writer's reason when rejected, the broker's
                                 * when refused */
    long changes;               /* the receipt's "changes", or -1 */
    void *tag;
    int hnext;                  /* next index in the id hash chain, or -1 */
    int hashed;
    unsigned long long order;   /* its place in publish order (republishing keeps it) */
    /* Answered "waiting": it came before the request it names in "after" (after). */
    char after[MOSQLITE_ID_MAX + 1];
    int waited;                 /* that answer came while E_SENDING: held at PUBCOMP */
    int held;                   /* E_WAITING until after's receipt (or an earlier one's republish) */
    int wait_ms;                /* the next delay when after is not outstanding here */
};

struct mosqlite_client {
    struct mosquitto *mosq;
    pthread_mutex_t lock;       /* guards everything below that callbacks touch */
    pthread_cond_t cond;        /* signalled on any change */
    char *host, *username, *password, *cafile, *prefix, *client_id, *reply_topic;
    char *certfile, *keyfile;
    int port, receipts, window, timeout_ms, retry_ms, keepalive, tls_insecure;
    size_t window_bytes;
    struct entry *ents;         /* window slots */
    int *freelist, nfree;       /* free slots (a stack) */
    int *doneq, dhead, ndone;   /* finished slots in order (a ring) */
    int *batch;                 /* scratch for delivery and republishing */
    unsigned long long norder;  /* the next entry's place in publish order */
    int *by_mid;                /* mid -> slot of its latest publish, or -1 */
    int *buckets;               /* id hash -> first slot, or -1 */
    unsigned nbuckets;
    int in_order;               /* name the request before in "after" (mosqlite_set_in_order) */
    int has_last, last_i;       /* the latest request the next may follow: its slot */
    unsigned long long last_order;  /* and its place, to tell it from the slot's next user */
    int nused;
    int nheld;                  /* entries held for another's receipt */
    size_t bytes;
    int connected, subscribed, sub_mid, conn_rc, started;
    double progress_at;         /* last time something finished (or the window filled from empty) */
    double next_scan;
    int timed_out;              /* a wait gave up: close() does not wait again */
    mosqlite_result_cb cb;
    void *cb_arg;
    int send_done;              /* mosqlite_send(): its request's result, when done */
    enum mosqlite_status send_status;
    char send_err[512];
    struct mosqlite_stats st;
    char err[512];
};

/* Set the client's message; returns rc. */
MOSQLITE_INTERNAL int mosqlite__seterr(mosqlite_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* libmosquitto callbacks for the window (network thread). */
MOSQLITE_INTERNAL void mosqlite__on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                          const mosquitto_property *props);
MOSQLITE_INTERNAL void mosqlite__on_message(struct mosquitto *mosq, void *obj,
                          const struct mosquitto_message *m, const mosquitto_property *props);

/* Lock held. One step of waiting (see window.c); deliver finished results. */
MOSQLITE_INTERNAL int mosqlite__step(mosqlite_client *c, int wait_ms);
MOSQLITE_INTERNAL void mosqlite__deliver(mosqlite_client *c);

#endif
