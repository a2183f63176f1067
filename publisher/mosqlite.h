/* mosqlite.h: the publisher library. Send write requests to mosqlite-writer over MQTT
 * and know that they landed.
 *
 * A client holds one MQTT v5 connection to the broker (its own network thread, from
 * libmosquitto) and a window of outstanding requests. Every request goes at QoS 2 and
 * stays in the window until it is complete:
 *   - without receipts (opts.receipts = 0): when the broker has finished the QoS 2
 *     handshake (PUBCOMP) for it;
 *   - with receipts (opts.receipts = 1): when the writer's receipt for its id arrives
 *     (applied, duplicate or rejected). The library gives each request an `id` (unless it
 *     has one) and a `reply_to`, subscribes to that topic before the first publish, and
 *     republishes with the same id whatever is unconfirmed after a while (2 s, backing
 *     off to 16 s), in publish order, each time with every request published after it
 *     that still waits for its receipt.
 * A publish that does not fit the window blocks until there is room, so memory stays
 * bounded. A request the broker refuses for now (a v5 reason code of 0x80 or more on
 * PUBREC, as when its receive quota is full) is published again; one it would refuse
 * again (0x87 not authorized: its ACL does not let this user publish on the topic; 0x90
 * topic name invalid; 0x95 packet too large; 0x99 payload format invalid) is finished
 * at once as MOSQLITE_REFUSED and never published again. A PUBCOMP saying "packet id
 * not found" after a reconnect means the broker had already released it.
 * Broken connections are re-established with the same client id and session, and
 * libmosquitto resends what was not yet complete.
 *
 * Results come back through a callback, called only from inside mosqlite_publish(),
 * mosqlite_send(), mosqlite_wait() and mosqlite_service(), in the caller's thread.
 *
 * Threads: one client is used from one thread at a time. Different clients are
 * independent.
 *
 * Ownership: the library copies every string it is given (options, topics, payloads);
 * the caller keeps its own. Strings the library returns from mosqlite_request_*() and
 * mosqlite_lines_format() are heap copies the caller frees with mosqlite_free(). Pointers
 * in a struct mosqlite_result are valid only during the callback.
 *
 * Return values: 0 (MOSQLITE_OK) on success, else one of the negative MOSQLITE_E*
 * codes; mosqlite_errstr() then holds a one-line message. */
#ifndef MOSQLITE_H
#define MOSQLITE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOSQLITE_ID_LEN 26      /* length of an id made by mosqlite_new_id() */
#define MOSQLITE_ID_MAX 128     /* longest id the writer accepts */

/* Return codes. */
#define MOSQLITE_OK          0
#define MOSQLITE_EINVAL    (-1) /* bad argument (e.g. payload is not a JSON object) */
#define MOSQLITE_ENOMEM    (-2) /* out of memory */
#define MOSQLITE_ECONNECT  (-3) /* could not connect, or the broker refused us */
#define MOSQLITE_ETIMEDOUT (-4) /* no progress for the client's timeout */
#define MOSQLITE_EREJECTED (-5) /* mosqlite_send(): the writer rejected the request */
#define MOSQLITE_ESTATE    (-6) /* not connected yet, or already failed */
#define MOSQLITE_EREFUSED  (-7) /* mosqlite_send(): the broker refused the publish (its ACL) */

/* The outcome of one request. */
enum mosqlite_status {
    MOSQLITE_SENT = 1,      /* broker completed QoS 2 (no receipts asked for) */
    MOSQLITE_APPLIED,       /* the writer applied it */
    MOSQLITE_DUPLICATE,     /* the writer had applied this id before */
    MOSQLITE_REJECTED,      /* the writer refused it; see error */
    MOSQLITE_SCHEDULED,     /* a request with "at" or "delay_ms": stored by the writer, to be
                             * applied when due (its second receipt is not waited for) */
    MOSQLITE_CANCELLED,     /* a {"cancel": ID} request: the scheduled request is cancelled */
    MOSQLITE_REFUSED,       /* the broker refused the publish and would again (see top): not
                             * applied, not published again; error says why, e.g. "refused
                             * by the broker's ACL: this user may not publish on TOPIC" */
};

/* Options for mosqlite_client_new(). Fill with mosqlite_options_init() first; NULL
 * strings mean the default. */
struct mosqlite_options {
    const char *host;       /* default "127.0.0.1" */
    int port;               /* default 1883 */
    const char *username;   /* default none */
    const char *password;   /* default none */
    const char *cafile;     /* CA file: enables TLS; default none */
    const char *prefix;     /* topic prefix, default "mosqlite" */
    const char *client_id;  /* default "mosqlite-pub-" + a fresh id; must be unique */
    int receipts;           /* 1: ask for and wait for receipts (see top); default 0 */
    int window;             /* most requests outstanding at once; default 1000 */
    size_t window_bytes;    /* most payload bytes outstanding; default 16 MiB */
    int timeout_ms;         /* give up when nothing completes for this long while
                             * requests are outstanding (0 = never); default 30000 */
    int retry_ms;           /* first republish delay with receipts; default 2000 */
    int keepalive;          /* seconds; default 30 */
    const char *certfile;   /* TLS client certificate (with keyfile); default none */
    const char *keyfile;    /* its private key; default none */
    int tls_insecure;       /* 1: do not check the server's host name; default 0 */
    int debug;              /* 1: libmosquitto's log (packets sent and received) on stderr */
};

/* One finished request, as given to the result callback. */
struct mosqlite_result {
    const char *id;         /* the request's id, or "" without receipts */
    enum mosqlite_status status;
    const char *error;      /* the writer's reason when REJECTED, the broker's when
                             * REFUSED, else NULL */
    void *tag;              /* what the caller gave mosqlite_publish() */
    long changes;           /* APPLIED: the receipt's "changes", the rows the request
                             * inserted, updated or deleted (0: an update or delete that
                             * matched no row); -1 when not known (no receipts) */
};

/* Running totals. */
struct mosqlite_stats {
    unsigned long published;    /* requests accepted by mosqlite_publish() */
    unsigned long sent;         /* QoS 2 handshakes completed (first time per request) */
    unsigned long applied, duplicate, rejected;
    unsigned long republished;  /* extra publishes: retries and refused ones */
    unsigned long refused;      /* publishes the broker refused (PUBREC code >= 0x80),
                                 * REFUSED results included */
    unsigned long outstanding;  /* in the window now */
    unsigned long scheduled, cancelled; /* receipts for scheduled writes and cancels */
};

typedef struct mosqlite_client mosqlite_client;

/* Called once per finished request, from inside the library calls listed at the top,
 * in the caller's thread. It must not call mosqlite_* functions on the same client. */
typedef void (*mosqlite_result_cb)(mosqlite_client *client,
                                   const struct mosqlite_result *result, void *arg);

/* Fill opts with the defaults. */
void mosqlite_options_init(struct mosqlite_options *opts);

/* Create a client (not yet connected). Copies everything in opts.
 * Returns the client, or NULL when out of memory or libmosquitto cannot start. */
mosqlite_client *mosqlite_client_new(const struct mosqlite_options *opts);

/* Set the result callback (NULL for none) and its argument. */
void mosqlite_set_callback(mosqlite_client *client, mosqlite_result_cb cb, void *arg);

/* Keep the requests in order (with receipts; before publishing): each request
 * published while the one published before it has no receipt yet names that one in
 * "after", so the writer applies it only after that one, whatever the broker or the
 * writer lost and this client published again (docs/PROTOCOL.md, "In order with many
 * in flight"); a request answered "waiting" is published again once the one it
 * follows is answered. The order is that of mosqlite_publish() calls (from one
 * thread). A request that names its own "after" keeps it; a scheduled request ("at",
 * "delay_ms") or a cancel names none and is named by none (it is not applied now).
 * Returns MOSQLITE_OK, or MOSQLITE_ESTATE without receipts. */
int mosqlite_set_in_order(mosqlite_client *client, int on);

/* Leave a last will: a write request the broker publishes for this client (QoS 2, to
 * PREFIX/write, or PREFIX/write/TABLE when table is given) if its connection ends
 * without mosqlite_close(): the process killed, the machine or the network gone. A
 * reconnect within delay_s seconds (0 to 3600) cancels it, so a short break in the
 * connection does not set it off. mosqlite_close() disconnects cleanly, and the broker
 * then forgets it. json is published as given: no id or reply_to is added, no receipt
 * is waited for. Make it a request that does no harm when applied late or twice (an
 * update with a `where` that matches only the state it is meant to change).
 * Call before mosqlite_connect().
 * Returns MOSQLITE_OK; MOSQLITE_EINVAL (bad table, json not a JSON object, delay out of
 * range); MOSQLITE_ESTATE (already connected); MOSQLITE_ENOMEM. */
int mosqlite_set_will(mosqlite_client *client, const char *table, const char *json,
                      int delay_s);

/* Connect and, with receipts, subscribe to the reply topic. Blocks until the broker
 * has answered (at most the timeout, or 10 s when the timeout is 0).
 * Returns MOSQLITE_OK or MOSQLITE_ECONNECT (errstr says why). */
int mosqlite_connect(mosqlite_client *client);

/* Publish one write request at QoS 2.
 * Parameters:
 *   table   - NULL or "" for PREFIX/write (the request names its tables), else the
 *             topic PREFIX/write/TABLE
 *   json    - the request, a JSON object (UTF-8), checked as the writer checks a
 *             request (RFC 8259 numbers, exact integers within +-2^53, no \u0000,
 *             no duplicate key, valid UTF-8), refused in the writer's words. Without
 *             receipts it is sent as is; with receipts it gets `id` (unless it has
 *             one) and `reply_to` (replacing any), its other members sent as written.
 *   tag     - handed back in the result; not touched by the library
 *   id_out  - if not NULL, receives the request's id (MOSQLITE_ID_MAX + 1 bytes), ""
 *             without receipts
 * Blocks while the window is full, delivering results meanwhile.
 * Returns MOSQLITE_OK; MOSQLITE_EINVAL (bad table or JSON: nothing was sent);
 * MOSQLITE_ETIMEDOUT (the window stayed full for the timeout); MOSQLITE_ENOMEM. */
int mosqlite_publish(mosqlite_client *client, const char *table, const char *json,
                     void *tag, char *id_out);

/* Publish one request and block until its own result. The result is also given to
 * the callback. status_out (may be NULL) receives its status; error_out (may be NULL,
 * errlen bytes) the writer's reason on rejection.
 * Returns MOSQLITE_OK (sent, applied, duplicate, scheduled or cancelled),
 * MOSQLITE_EREJECTED, MOSQLITE_EREFUSED (the broker refused it: status REFUSED, its
 * reason in error_out and mosqlite_errstr()), or an error of mosqlite_publish() or
 * mosqlite_wait(). */
int mosqlite_send(mosqlite_client *client, const char *table, const char *json,
                  enum mosqlite_status *status_out, char *error_out, size_t errlen);

/* Block until every outstanding request is finished, republishing as needed.
 * timeout_ms: -1 uses the client's timeout (no progress for that long); otherwise at
 * most this long in all. Returns MOSQLITE_OK when none is outstanding, else
 * MOSQLITE_ETIMEDOUT (the rest stay outstanding; mosqlite_stats() counts them). */
int mosqlite_wait(mosqlite_client *client, int timeout_ms);

/* Block until at least one outstanding request is finished (its result given to the
 * callback), none is outstanding, or timeout_ms (0 or more) have passed, republishing
 * as needed: for a caller that keeps a window of its own full. Returns MOSQLITE_OK,
 * or MOSQLITE_ETIMEDOUT when nothing has completed for the client's timeout while
 * requests are outstanding. */
int mosqlite_wait_any(mosqlite_client *client, int timeout_ms);

/* Do due work without blocking: deliver results, republish what is due.
 * Returns MOSQLITE_OK, or MOSQLITE_ETIMEDOUT when nothing has completed for the
 * client's timeout while requests are outstanding. */
int mosqlite_service(mosqlite_client *client);

/* Copy the running totals into *stats. */
void mosqlite_stats(mosqlite_client *client, struct mosqlite_stats *stats);

/* The last error's message, never NULL. Owned by the client. */
const char *mosqlite_errstr(const mosqlite_client *client);

/* The client id in use (owned by the client). */
const char *mosqlite_client_id(const mosqlite_client *client);

/* Flush (mosqlite_wait with the client's timeout), disconnect cleanly, free the
 * client and everything it owns. Requests still outstanding are abandoned.
 * Accepts NULL. */
void mosqlite_close(mosqlite_client *client);

/* --- Building requests (no connection needed) ---------------------------------- */

enum mosqlite_op { MOSQLITE_INSERT, MOSQLITE_UPSERT, MOSQLITE_UPDATE, MOSQLITE_DELETE };

/* Parse "insert", "upsert", "update" or "delete". Returns 0 and sets *op, or -1. */
int mosqlite_op_parse(const char *name, enum mosqlite_op *op);

/* Build one operation as JSON text.
 * Parameters:
 *   op     - the operation
 *   data   - JSON object: the values for insert/upsert, the `set` for update; must be
 *            NULL for delete
 *   where  - JSON object, required and non-empty for update/delete, NULL otherwise
 *   id     - NULL, or the request id (1..128 printable ASCII characters)
 *   err    - receives a one-line reason on failure (errlen bytes)
 * data and where are checked as the writer checks a request (see mosqlite_publish)
 * and go into the request as they were written, never printed again.
 * Returns a heap string the caller frees with mosqlite_free(), or NULL on error. */
char *mosqlite_request_build(enum mosqlite_op op, const char *data, const char *where,
                             const char *id, char *err, size_t errlen);

/* A template for turning text lines into inserts of {WITH..., COLUMN: line}. */
typedef struct mosqlite_lines mosqlite_lines;

/* Parameters: column - the text column; with - NULL or a JSON object of fixed values,
 * checked as data is by mosqlite_request_build() and kept as written (but a member
 * named column, which the line replaces).
 * Returns the template (free with mosqlite_lines_free) or NULL with err set. */
mosqlite_lines *mosqlite_lines_new(const char *column, const char *with,
                                   char *err, size_t errlen);

/* Build {"values": {WITH..., COLUMN: text}} from len bytes of text (no NUL needed).
 * Invalid UTF-8 and NUL bytes become U+FFFD (see mosqlite_utf8_repair). Returns a
 * heap string (free with mosqlite_free) or NULL when out of memory. */
char *mosqlite_lines_format(const mosqlite_lines *lines, const char *text, size_t len);

/* Free a template. Accepts NULL. */
void mosqlite_lines_free(mosqlite_lines *lines);

/* Copy len bytes of text to out (at least 3 * len + 1 bytes, NUL-terminated),
 * replacing what is not valid UTF-8 with U+FFFD: one per maximal broken subpart (a
 * truncated sequence like E2 82 gives one), one per stray byte, one per NUL.
 * Returns the output length. */
size_t mosqlite_utf8_repair(const char *text, size_t len, char *out);

/* Write a new id to out (MOSQLITE_ID_LEN + 1 bytes): 26 characters of Crockford
 * base32, 48 bits of Unix milliseconds then 80 random bits, strictly increasing within
 * this process. Returns 0, or -1 when no randomness is available. Thread-safe. */
int mosqlite_new_id(char *out);

/* 1 when id is a valid request id (1..128 printable ASCII characters), else 0. */
int mosqlite_id_valid(const char *id);

/* Free a string returned by this library. Accepts NULL. */
void mosqlite_free(void *p);

/* Library version string, e.g. "0.1.0". */
const char *mosqlite_version(void);

#ifdef __cplusplus
}
#endif

#endif
