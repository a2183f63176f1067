/* etcd.h: a small client of etcd's v3 API over its HTTP/JSON gateway (etcd 3.4 and
 * later: POST http://HOST:2379/v3/..., JSON bodies; keys and values in base64, 64-bit
 * integers as decimal strings). Only what a leader key under a lease needs:
 *
 *     grant      POST /v3/lease/grant      {"TTL":"10"}            -> ID, TTL
 *     keepalive  POST /v3/lease/keepalive  {"ID":"..."}            -> {"result":{ID, TTL}} (no TTL: gone)
 *     revoke     POST /v3/lease/revoke     {"ID":"..."}
 *     range      POST /v3/kv/range         {"key":"..."}           -> kvs[0]
 *     txn        POST /v3/kv/txn           compare / success / failure -> succeeded, responses
 *
 * The pure half (this file's first part, etcd.c): base64, the request bodies, and the
 * reading of every answer into one struct etcd_resp (tested in tests/unit/test_etcd.c,
 * fuzzed by tests/fuzz/fuzz_etcd.c). The I/O half (etcd_http.c): one libcurl handle,
 * the cluster's endpoints tried in turn, every call bounded by a deadline on the
 * monotonic clock. Not thread-safe: one struct etcd per thread. */
#ifndef MOSQLITE_ETCD_H
#define MOSQLITE_ETCD_H

#include <stddef.h>

/* What a call expects back. */
enum etcd_kind { ETCD_GRANT, ETCD_KEEPALIVE, ETCD_REVOKE, ETCD_RANGE, ETCD_TXN };

/* gRPC status codes etcd names in an error (etcd_resp.code): the ones that answer the
 * question rather than say the member could not. */
#define ETCD_CODE_INVALID_ARGUMENT 3
#define ETCD_CODE_NOT_FOUND        5      /* "requested lease not found" */
#define ETCD_CODE_PERMISSION       7
#define ETCD_CODE_UNAUTHENTICATED  16

/* One key as etcd holds it: its revisions, its lease (0: none) and its value, decoded
 * from base64 (value is NUL-terminated, value_len bytes; malloc'd). */
struct etcd_kv {
    long long create_rev, mod_rev, version, lease;
    char *value;
    size_t value_len;
};

/* Every answer, read: the store's revision (header.revision: after a txn that put a new
 * key, that key's create_revision), succeeded (txn), id and ttl (grant, keepalive: ttl 0
 * means the lease is gone), the first key found (range, or a txn's first response_range).
 * An error answer ({"error":..., "code":N}, or a stream's {"error":{"grpc_code":N,
 * "message":...}}) fills code and message. */
struct etcd_resp {
    long long revision, id, ttl;
    int succeeded;
    int has_kv;
    struct etcd_kv kv;
    int code;                 /* 0, or the gRPC code of an error answer */
    char message[256];        /* the error answer's message */
};

/* ---- pure ----------------------------------------------------------------------- */

/* Standard base64 with padding: a new NUL-terminated string (NULL: out of memory). */
char *etcd_b64_encode(const void *data, size_t len);
/* Decode slen chars (padding required, no white space) into a new buffer, NUL-terminated
 * after *outlen bytes. 0, or -1 (not base64, or out of memory). */
int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen);

/* Request bodies, new strings (NULL: out of memory). Keys and values are raw bytes
 * (NUL-terminated strings here); the bodies carry them in base64. */
char *etcd_body_grant(long long ttl);
char *etcd_body_lease(long long id);                  /* keepalive, revoke */
char *etcd_body_range(const char *key);
/* Create key with value under lease if it does not exist (create_revision 0), else
 * read it: succeeded says which. */
char *etcd_body_campaign(const char *key, const char *value, long long lease);
/* While key still has create_revision create_rev (still ours) and counter still has
 * mod_revision counter_mod (0: absent), put counter = value_of_counter and key = value
 * under lease; else read key. */
char *etcd_body_claim(const char *key, long long create_rev, const char *counter, long long counter_mod,
                      const char *counter_value, const char *value, long long lease);

/* While key still has create_revision create_rev and lease lease (this leader's), put
 * skey = value (no lease: it outlives the leader); else read key. */
char *etcd_body_put_held(const char *key, long long create_rev, long long lease, const char *skey,
                         const char *value);

/* The synchronous set, KEY/sync's value: {"epoch":E,"replicas":["ID",...]}, written by
 * the leader of epoch E (sync.h) before it counts those replicas' acknowledgements. */
#define ETCD_SYNC_MAX    64
#define ETCD_SYNC_ID_MAX 128
struct etcd_sync {
    long long epoch;
    int n;
    char ids[ETCD_SYNC_MAX][ETCD_SYNC_ID_MAX + 1];
};
/* The value, a new string (NULL: out of memory). */
char *etcd_sync_value(const struct etcd_sync *s);
/* Read a value strictly: an object with "epoch" (an integer from 1 to 2^53 - 1) and
 * "replicas" (distinct ids, 1 to ETCD_SYNC_ID_MAX printable ASCII characters, at most
 * ETCD_SYNC_MAX); other members ignored. 0, or -1 + err (and *s empty). */
int etcd_sync_read(const char *value, size_t len, struct etcd_sync *s, char *err, size_t errlen);
int etcd_sync_has(const struct etcd_sync *s, const char *id);

/* Read an answer of the given kind. 0 with *r filled (free with etcd_resp_free), or -1
 * with err saying what was wrong with it. An error answer returns 0 with r->code set (a
 * non-zero code, or a message alone: code -1). */
int etcd_parse(const char *body, size_t len, enum etcd_kind kind, struct etcd_resp *r, char *err,
               size_t errlen);
void etcd_resp_free(struct etcd_resp *r);

/* The endpoint list of etcd-endpoints: "URL[,URL...]", each http:// or https://, at
 * most ETCD_MAX_ENDPOINTS. 0, or -1 + err naming the bad one. */
#define ETCD_MAX_ENDPOINTS 16
int etcd_check_endpoints(const char *list, char *err, size_t errlen);

/* ---- I/O (etcd_http.c) ----------------------------------------------------------- */

struct etcd;

/* A client of the cluster at endpoints (checked as above). NULL + err. Call
 * etcd_global_init once, before any thread starts. */
int etcd_global_init(char *err, size_t errlen);
struct etcd *etcd_new(const char *endpoints, char *err, size_t errlen);
void etcd_free(struct etcd *e);                          /* accepts NULL */

/* POST body to path ("/v3/lease/grant") of the endpoint last answered, then of the
 * others in turn, until one answers (HTTP 200, or an error etcd gives for the question
 * itself: lease not found, bad argument, no permission) or deadline_ms (util_now_ms)
 * has passed; each try lasts at most try_ms. 0 with *r (read as kind; r->code may be
 * set), or -1 + err (the last endpoint's failure). */
int etcd_call(struct etcd *e, const char *path, const char *body, enum etcd_kind kind,
              long long deadline_ms, long try_ms, struct etcd_resp *r, char *err, size_t errlen);
/* The endpoint that answered last (or the first). */
const char *etcd_endpoint(const struct etcd *e);

#endif
