/* cliconn.h: the direct MQTT 5 client of the command-line programs that talk to the
 * broker themselves, not through libmosqlite: mosqlite (the operator's command) and
 * mosqlite-work (the job agent). Not part of the library.
 *
 * One connection run by libmosquitto's network thread; its callbacks only record what
 * came (acknowledgements by packet id, messages in a queue) under a lock and signal a
 * condition variable, the caller's thread waits on it. MQTT 5 reason codes tell a
 * refusal apart: 0x87 is the broker's ACL, 0x10 means no one subscribes to the topic.
 * Subscriptions are made again after every reconnect. */
#ifndef MOSQLITE_CLICONN_H
#define MOSQLITE_CLICONN_H

#include <signal.h>
#include <stddef.h>

#include "cfg.h"
#include "mosqlite.h"

/* What the calls return: the exit status mosqlite, mosqlite-pub and mosqlite-work share. */
enum {
    CLI_OK = 0,         /* done */
    CLI_REFUSED = 1,    /* refused (the broker's ACL, ...) or failed */
    CLI_NOANSWER = 2,   /* no answer in time */
    CLI_USAGE = 3,      /* bad configuration (TLS files) */
    CLI_CONNECT = 4,    /* cannot connect to the broker, or lost it */
};

struct cliconn_opts {
    const char *host, *username, *password, *cafile, *certfile, *keyfile, *client_id;
    int port, tls_insecure, debug;
    int timeout_ms;     /* the wait for the CONNACK (0: 10 s) */
    int keepalive;      /* seconds (0: 30) */
    int session_s;      /* > 0: a session kept that long across reconnects, ended by
                         * cliconn_close; 0: a clean session */
    int tcp_nodelay;
    /* NULL, or a Last Will: will_payload on will_topic at QoS 2, after will_delay_s */
    const char *will_topic, *will_payload;
    int will_delay_s;
};

/* o from the connection options of the command line (its other fields zero). */
void cliconn_opts_init(struct cliconn_opts *o, const struct cfg_client *cl);

/* The library's options (mosqlite_options_init's) with the connection options of the
 * command line. */
static inline void cliconn_mosqlite_options(struct mosqlite_options *mo, const struct cfg_client *cl)
{
    mosqlite_options_init(mo);
    mo->host = cl->host;
    mo->port = (int)cl->port;
    mo->prefix = cl->prefix;
    mo->username = cl->username;
    mo->password = cl->password;
    mo->cafile = cl->cafile;
    mo->certfile = cl->cert;
    mo->keyfile = cl->key;
    mo->tls_insecure = cl->insecure;
    mo->debug = cl->debug;
}

struct climsg {
    struct climsg *next;
    char *topic;
    char *payload;      /* NUL-terminated copy */
    size_t len;
    int retained;
};

struct cliconn;

/* Connect and wait for the broker's CONNACK. Returns the connection, or NULL with a
 * reason in err and *status CLI_CONNECT (the broker cannot be reached or refuses the
 * login) or CLI_USAGE (bad TLS files). */
struct cliconn *cliconn_open(const struct cliconn_opts *o, int *status, char *err, size_t errlen);

/* Subscribe (QoS 1) and wait for the SUBACK. Once it is in, every retained message of
 * the subscriptions made before it has been received. CLI_OK, or another status with
 * a reason in err. */
int cliconn_subscribe(struct cliconn *c, const char *filter, char *err, size_t errlen);

/* Publish at QoS qos (1 or 2) and wait for the broker's acknowledgement.
 * CLI_OK; CLI_REFUSED when the broker refused it (ACL: named as such); CLI_NOANSWER
 * when it did not answer, or no one subscribes to the topic (MQTT 5 "no matching
 * subscribers", only when no_subscribers_fails); CLI_CONNECT when the connection broke. */
int cliconn_publish_wait(struct cliconn *c, const char *topic, const char *payload, int qos,
                         int no_subscribers_fails, char *err, size_t errlen);

/* Publish without waiting. 0, or -1 when libmosquitto refuses it at once (not
 * connected: the caller publishes it again later). A refusal by the ACL comes later:
 * cliconn_denied. */
int cliconn_publish(struct cliconn *c, const char *topic, const char *payload, int qos);

/* 1 when the broker's ACL refused a publish made with cliconn_publish, with its topic
 * in topic (n bytes). */
int cliconn_denied(struct cliconn *c, char *topic, size_t n);

/* The next message received (topic NULL) or the first one on topic, waiting until
 * deadline_ms on the monotonic clock (< 0: for ever). NULL on timeout, when *stop is
 * set, or when the connection is lost and lost is not NULL (*lost set then).
 * The caller frees it with climsg_free(). */
struct climsg *cliconn_wait(struct cliconn *c, const char *topic, double deadline_ms,
                            volatile sig_atomic_t *stop, int *lost);

/* The next message, waiting at most ms (0: do not wait); NULL when none. */
struct climsg *cliconn_next(struct cliconn *c, int ms);

/* Connected now; how many times the connection came back after a loss (a follower
 * asks again then). */
int cliconn_connected(struct cliconn *c);
unsigned cliconn_reconnects(struct cliconn *c);

/* Disconnect and free; accepts NULL. With a session kept: first the publishes not yet
 * acknowledged (2 s at most), then a clean end that ends the session (the Last Will is
 * not sent). */
void cliconn_close(struct cliconn *c);

void climsg_free(struct climsg *m);

#endif
