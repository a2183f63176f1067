/* req.h: turning one request payload into validated operations, with no I/O.
 *
 * req_parse() checks everything that can be checked without touching the data: the
 * payload's size, UTF-8, nesting depth and JSON syntax, the envelope's shape, the
 * table (exists and writable) and every column name against the schema, and the
 * shape of each blob ({"$base64": "..."}); a value's type against its column is left
 * to SQLite. What it returns points into the parsed JSON tree it owns;
 * sql.c builds the statement and val.c binds those values. The error text is the
 * product's rejection text. */
#ifndef MOSQLITE_REQ_H
#define MOSQLITE_REQ_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "json.h"
#include "schema.h"

/* OP_ENQUEUE ({"op": "enqueue", ...}) adds a job (jobs.h); the writer applies it through
 * db.c's op hook, never as SQL. */
enum op_kind { OP_INSERT, OP_UPSERT, OP_UPDATE, OP_DELETE, OP_ENQUEUE };

extern const char *const op_names[];

struct req_limits {
    size_t max_payload;    /* bytes */
    int max_depth;         /* JSON nesting */
    int max_ops;           /* ops in one transaction */
    const char *prefix;    /* topic prefix: reply_to may not name the writer's own topics */
};

/* A column and the JSON value for it. */
struct req_val {
    int col;               /* index into table->cols */
    const cJSON *v;
};

/* An enqueue as read: strings and payload point into the parsed JSON; -1 for the numbers
 * not given (the defaults of jobs.h apply). */
struct req_enqueue {
    const cJSON *obj;      /* the op's object */
    const char *queue;
    const cJSON *payload;
    long long priority;
    const char *unique_key;
    int on_duplicate;      /* 0 ignore, 1 reject, 2 replace (enum jobs_dup) */
    const char *conc_key;
    long long conc_limit;  /* 0 with no concurrency_key */
    long long max_attempts, max_lost, backoff_ms, backoff_cap_ms, jitter_pct, lease_ms, timeout_ms;
    int follow;
};

struct req_op {
    enum op_kind kind;
    struct req_enqueue enq;    /* OP_ENQUEUE */
    const struct table *table;
    int tindex;            /* table's index in the schema */
    struct req_val *vals;  /* values (insert, upsert) or set (update) */
    int nvals;
    struct req_val *where; /* update, delete */
    int nwhere;
    int *conflict;         /* upsert: conflict target columns */
    int nconflict;
    int voff, woff, coff;  /* offsets into the request's buffers while parsing */
};

struct req {
    cJSON *root;           /* owned */
    const char *id;        /* the request's id, or NULL; points into root */
    const char *reply_to;  /* or NULL; points into root */
    const char *cancel;    /* {"cancel": "ID"}: the scheduled request to cancel (no ops),
                            * or NULL; points into root */
    int has_at;            /* 1 when "at" was given: at_ms is when to apply it */
    long long at_ms;       /* "at": ms since the epoch (UTC), before 1970 negative */
    long long delay_ms;    /* "delay_ms": how long after it is received, or -1 */
    int jobs_at;           /* "at"/"delay_ms" is when its enqueued jobs run: the request
                            * itself is applied now (all its ops are enqueues) */
    unsigned long long hash; /* with an id (req_read): of the topic and the payload but
                              * reply_to, to tell a retry of this request from another
                              * request that reuses its id; else 0 */
    struct req_op *ops;
    int nops;
    /* Storage reused from one request to the next (see req_clear). */
    struct req_val *valbuf;
    int valcap, nval;
    int *intbuf;
    int intcap, nint;
    int opcap;
    unsigned char *seen;   /* per-column marks for duplicate detection */
    int seencap;
    struct json_nums nums; /* which number literals are REALs (json.h) */
};

/* The longest "delay_ms": about 100 years. */
#define REQ_DELAY_MAX 3155760000000LL

/* The table a request's topic names. write_topic is PREFIX/write: on it *table is set
 * to NULL (the request names its tables); on PREFIX/write/TABLE, to TABLE (pointing
 * into topic). Any other topic: -1 with the rejection text in err. */
int req_topic(const char *topic, const char *write_topic, const char **table,
              char *err, size_t errlen);

/* Parse and validate. topic_table is TABLE for PREFIX/write/TABLE, NULL for
 * PREFIX/write. A request may be scheduled ("at" or "delay_ms" beside its op or ops,
 * which are checked as for any request; it then needs an id), or be a cancel
 * ({"cancel": "ID"}, with "id" and "reply_to" only; nops is 0). On error returns -1 with the rejection reason in err; r->id and
 * r->reply_to are still set when they could be read, so the rejection can be answered.
 * Call req_clear() before reusing r and req_free() at the end. */
int req_parse(struct req *r, const struct schema *s, const struct req_limits *lim,
              const char *topic_table, const char *payload, size_t len,
              char *err, size_t errlen);

/* req_topic, then req_parse: the whole of a write request. A request on a topic that
 * is not a write topic is rejected with req_topic's text, but its id and reply_to are
 * still read (r->id, r->reply_to, when valid) so that the rejection can be answered. */
int req_read(struct req *r, const struct schema *s, const struct req_limits *lim,
             const char *write_topic, const char *topic, const char *payload, size_t len,
             char *err, size_t errlen);

/* Forget the last request (frees its JSON tree), keep the reusable storage. */
void req_clear(struct req *r);
void req_free(struct req *r);

/* A rejected request's payload is kept (mosqlite_rejected) and republished
 * (PREFIX/rejected) cut to its first 1 KiB. */
#define REQ_EXCERPT 1024

/* Decode base64 (standard alphabet, padding optional). Returns the decoded length,
 * or -1 if the text is not base64. out needs room for n / 4 * 3 + 3 bytes. */
long req_base64_decode(const char *in, size_t n, unsigned char *out);

/* The longest topic name MQTT can carry. */
#define REQ_TOPIC_MAX 65535

/* May the writer publish a receipt or answer to topic? A topic name (not empty, at
 * most REQ_TOPIC_MAX bytes, no wildcard, no control character), not a $ topic (the
 * broker refuses those, and Mosquitto may drop the connection that tried), and not
 * under PREFIX/ except PREFIX/receipts/... and PREFIX/reply/..., so a request cannot
 * make the writer publish on its own status, events or rejections, or as a request.
 * req_reply_check: 0, or -1 with the rejection text in err; req_reply_topic_ok: 1 or 0. */
int req_reply_check(const char *topic, const char *prefix, char *err, size_t errlen);
int req_reply_topic_ok(const char *topic, const char *prefix);

/* A queue's name: 1 to 128 bytes, one topic level (no '/', '+', '#', control
 * character), not "worker", "to" or "events" (PREFIX/jobs/ has those). 0, or -1 + err. */
#define REQ_QUEUE_MAX 128
int req_queue_check(const char *q, char *err, size_t errlen);

/* An enqueue's fields from its object. with_op: the object has "op": "enqueue";
 * envelope: it may also hold "id", "reply_to", "at", "delay_ms" (a request of its own);
 * default_queue: the queue when "queue" is absent (NULL: required). 0, or -1 + err. */
int req_enqueue_read(const cJSON *o, int with_op, int envelope, const char *default_queue,
                     struct req_enqueue *e, char *err, size_t errlen);

/* Ordinary ops (and enqueues) from a JSON array into r, as a transaction's "ops" are
 * read, tables named; r->root is left NULL (the array is the caller's). 0, or -1 + err
 * ("ops[i]: ..."). */
int req_parse_ops(struct req *r, const struct schema *s, const struct req_limits *lim,
                  const cJSON *ops, char *err, size_t errlen);

/* The hash req_read gives a request with an id: of the topic and every field of the
 * object but reply_to. */
unsigned long long req_hash(const cJSON *root, const char *topic);

/* A printable id: 1 to 128 characters from 0x20 to 0x7E. */
int req_id_ok(const char *s);

/* If v is {"$base64": "..."} return the string, else NULL. */
const char *req_blob_text(const cJSON *v);

#endif
