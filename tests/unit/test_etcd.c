/* test_etcd.c: the pure half of the etcd client (etcd.c): base64 both ways (RFC 4648's
 * vectors, bad input), the request bodies as the v3 JSON gateway reads them, and the
 * reading of answers as etcd 3.4's gateway writes them (taken from a real cluster),
 * zero values left out, errors of both shapes, and answers that are wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "unit.h"

static void b64_roundtrip(const char *raw, const char *enc)
{
    char *e = etcd_b64_encode(raw, strlen(raw)), *d = NULL;
    size_t n = 0;

    unit_check_str(e, enc, "base64 of \"%s\"", raw);
    unit_check(!etcd_b64_decode(enc, strlen(enc), &d, &n) && n == strlen(raw) && !memcmp(d, raw, n),
               "\"%s\" decodes back", enc);
    free(e);
    free(d);
}

static int b64_bad(const char *s)
{
    char *d = NULL;
    size_t n;
    int rc = etcd_b64_decode(s, strlen(s), &d, &n);

    free(d);
    return rc == -1 && !d;
}

/* Parse body as kind; the struct, or NULL (err in perr). */
static char perr[256];
static struct etcd_resp resp;
static struct etcd_resp *parse(const char *body, enum etcd_kind kind)
{
    etcd_resp_free(&resp);
    if (etcd_parse(body, strlen(body), kind, &resp, perr, sizeof perr))
        return NULL;
    return &resp;
}

static int endpoints_ok(const char *list)
{
    char err[256];

    return !etcd_check_endpoints(list, err, sizeof err);
}

void test_etcd(void)
{
    struct etcd_resp *r;
    char *s;

    b64_roundtrip("", "");
    b64_roundtrip("f", "Zg==");
    b64_roundtrip("fo", "Zm8=");
    b64_roundtrip("foo", "Zm9v");
    b64_roundtrip("foob", "Zm9vYg==");
    b64_roundtrip("fooba", "Zm9vYmE=");
    b64_roundtrip("foobar", "Zm9vYmFy");
    b64_roundtrip("/mosqlite/mosqlite/leader", "L21vc3FsaXRlL21vc3FsaXRlL2xlYWRlcg==");
    unit_check(b64_bad("Zg=") && b64_bad("Z===") && b64_bad("Zg=a") && b64_bad("Z m9") && b64_bad("Zm9v\n") &&
               b64_bad("Zg==Zg==") && b64_bad("Zm-_"), "bad base64 refused (length, padding inside, "
               "spaces, URL alphabet)");
    {
        char *d = NULL;
        size_t n = 0;
        unit_check(!etcd_b64_decode("AP8A", 4, &d, &n) && n == 3 && d[0] == 0 && (unsigned char)d[1] == 255 &&
                   d[2] == 0 && d[3] == 0, "bytes with NULs decode, NUL-terminated after them");
        free(d);
    }

    s = etcd_body_grant(10);
    unit_check_str(s, "{\"TTL\":\"10\"}", "grant body");
    free(s);
    s = etcd_body_lease(7587868553014950660LL);
    unit_check_str(s, "{\"ID\":\"7587868553014950660\"}", "keepalive/revoke body: a 64-bit id as a string");
    free(s);
    s = etcd_body_range("k");
    unit_check_str(s, "{\"key\":\"aw==\"}", "range body");
    free(s);
    s = etcd_body_campaign("k", "v", 5);
    unit_check_str(s, "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"aw==\",\"create_revision\":\"0\","
                   "\"result\":\"EQUAL\"}],\"success\":[{\"request_put\":{\"key\":\"aw==\",\"value\":\"dg==\","
                   "\"lease\":\"5\"}}],\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}",
                   "campaign: create if absent under the lease, else read");
    free(s);
    s = etcd_body_claim("k", 12, "k/epoch", 0, "3", "v", 5);
    unit_check_str(s, "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"aw==\",\"create_revision\":\"12\","
                   "\"result\":\"EQUAL\"},{\"target\":\"MOD\",\"key\":\"ay9lcG9jaA==\",\"mod_revision\":\"0\","
                   "\"result\":\"EQUAL\"}],\"success\":[{\"request_put\":{\"key\":\"ay9lcG9jaA==\",\"value\":"
                   "\"Mw==\"}},{\"request_put\":{\"key\":\"aw==\",\"value\":\"dg==\",\"lease\":\"5\"}}],"
                   "\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}",
                   "claim: the counter, while the key is still ours and the counter unmoved");
    free(s);

    /* Answers as etcd 3.4.23's gateway gives them. */
    r = parse("{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
              "\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"2324035841744147973\",\"TTL\":\"3\"}", ETCD_GRANT);
    unit_check(r && r->id == 2324035841744147973LL && r->ttl == 3 && r->revision == 1 && !r->code,
               "grant: ID and TTL as strings, beyond 2^53");
    r = parse("{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"2324035841744147975\",\"TTL\":\"3\"}}",
              ETCD_KEEPALIVE);
    unit_check(r && r->id == 2324035841744147975LL && r->ttl == 3, "keepalive: the stream's result");
    r = parse("{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"2324035841744147975\"}}", ETCD_KEEPALIVE);
    unit_check(r && r->ttl == 0 && !r->code, "keepalive of an expired lease: no TTL, read as 0 (gone)");
    r = parse("{\"header\":{\"revision\":\"2\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
              "{\"header\":{\"revision\":\"2\"}}}]}", ETCD_TXN);
    unit_check(r && r->succeeded && r->revision == 2 && !r->has_kv, "txn that succeeded: the new revision");
    r = parse("{\"header\":{\"revision\":\"2\"},\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"2\"},"
              "\"kvs\":[{\"key\":\"L21vc3FsaXRlL2xlYWRlcg==\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
              "\"version\":\"1\",\"value\":\"bWU=\",\"lease\":\"2324035841744147975\"}],\"count\":\"1\"}}]}", ETCD_TXN);
    unit_check(r && !r->succeeded && r->has_kv && r->kv.create_rev == 2 && r->kv.mod_rev == 2 &&
               r->kv.version == 1 && r->kv.lease == 2324035841744147975LL && r->kv.value_len == 2 &&
               !strcmp(r->kv.value, "me"), "txn that failed (no \"succeeded\"): the key read instead");
    r = parse("{\"header\":{\"revision\":\"3\"}}", ETCD_RANGE);
    unit_check(r && !r->has_kv && r->revision == 3, "range of a key that does not exist: no kvs");
    r = parse("{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"aw==\",\"create_revision\":5}],\"count\":1}",
              ETCD_RANGE);
    unit_check(r && r->has_kv && r->kv.create_rev == 5 && r->kv.value_len == 0 && r->kv.value &&
               !r->kv.value[0], "range: numbers as numbers, an empty value left out");
    r = parse("{\"header\":{\"revision\":\"3\"}}", ETCD_REVOKE);
    unit_check(r && !r->code, "revoke");
    r = parse("{}", ETCD_REVOKE);
    unit_check(r != NULL, "revoke: an answer without a header will do");

    r = parse("{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease "
              "not found\",\"code\":5}", ETCD_TXN);
    unit_check(r && r->code == ETCD_CODE_NOT_FOUND && !strcmp(r->message, "etcdserver: requested lease not found"),
               "an error answer: code and message");
    r = parse("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
              "\"http_status\":\"Service Unavailable\"}}", ETCD_KEEPALIVE);
    unit_check(r && r->code == 14 && !strcmp(r->message, "etcdserver: no leader"), "a stream's error answer");
    r = parse("{\"error\":\"something\"}", ETCD_RANGE);
    unit_check(r && r->code == -1 && !strcmp(r->message, "something"), "an error without a code: code -1");

    unit_check(!parse("", ETCD_RANGE) && !parse("[]", ETCD_RANGE) && !parse("{\"header\":", ETCD_RANGE),
               "not a JSON object: refused (%s)", perr);
    unit_check(!parse("{\"ID\":\"1\",\"TTL\":\"3\"}", ETCD_GRANT), "no header: refused (%s)", perr);
    unit_check(!parse("{\"header\":{},\"ID\":\"1\"}", ETCD_GRANT), "a grant without TTL: refused (%s)", perr);
    unit_check(!parse("{\"header\":{},\"ID\":\"x1\",\"TTL\":\"3\"}", ETCD_GRANT) &&
               !parse("{\"header\":{},\"ID\":\"1 \",\"TTL\":\"3\"}", ETCD_GRANT) &&
               !parse("{\"header\":{},\"ID\":\"99999999999999999999\",\"TTL\":\"3\"}", ETCD_GRANT) &&
               !parse("{\"header\":{},\"ID\":1.5,\"TTL\":\"3\"}", ETCD_GRANT) &&
               !parse("{\"header\":{},\"ID\":1e300,\"TTL\":\"3\"}", ETCD_GRANT) &&
               !parse("{\"header\":{},\"ID\":\"1\",\"TTL\":\"-3\"}", ETCD_GRANT),
               "ids and TTLs that are not 64-bit integers: refused (%s)", perr);
    unit_check(!parse("{\"result\":{\"ID\":\"1\"}}", ETCD_KEEPALIVE) && !parse("{\"header\":{}}", ETCD_KEEPALIVE),
               "a keepalive answer without header or result: refused (%s)", perr);
    unit_check(!parse("{\"header\":{},\"succeeded\":\"yes\"}", ETCD_TXN) &&
               !parse("{\"header\":{},\"responses\":{}}", ETCD_TXN), "a txn answer of the wrong shape: refused (%s)",
               perr);
    unit_check(!parse("{\"header\":{},\"kvs\":[{\"value\":\"not base64!\"}]}", ETCD_RANGE) &&
               !parse("{\"header\":{},\"kvs\":[{\"value\":5}]}", ETCD_RANGE) &&
               !parse("{\"header\":{},\"kvs\":{}}", ETCD_RANGE) &&
               !parse("{\"header\":{},\"kvs\":[7]}", ETCD_RANGE) &&
               !parse("{\"header\":{\"revision\":true}}", ETCD_RANGE),
               "a key of the wrong shape: refused (%s)", perr);
    etcd_resp_free(&resp);

    unit_check(endpoints_ok("http://127.0.0.1:2379") && endpoints_ok("http://a:1,https://b:2,http://c:3/"),
               "endpoints: one, or several with commas");
    unit_check(!endpoints_ok("") && !endpoints_ok("127.0.0.1:2379") && !endpoints_ok("http://a:1,") &&
               !endpoints_ok("http://a:1,,http://b") && !endpoints_ok("http://a:1, http://b:2") &&
               !endpoints_ok("ftp://a") && !endpoints_ok("http://") && !endpoints_ok("http://a/?x=1"),
               "endpoints: empty, no scheme, empty items, spaces, other schemes, queries refused");
    {
        char err[256], many[2048] = "";
        int i;
        for (i = 0; i < ETCD_MAX_ENDPOINTS + 1; i++)
            snprintf(many + strlen(many), sizeof many - strlen(many), "%shttp://h%d:2379", i ? "," : "", i);
        unit_check(etcd_check_endpoints(many, err, sizeof err) && strstr(err, "more than"),
                   "endpoints: at most %d (%s)", ETCD_MAX_ENDPOINTS, err);
        etcd_check_endpoints("127.0.0.1:2379", err, sizeof err);
        unit_check_str(err, "\"127.0.0.1:2379\" is not an http:// or https:// URL", "the error names the endpoint");
    }
}

/* The synchronous set's value (KEY/sync) and the transaction that writes it. */
static int sync_bad(const char *v, const char *want)
{
    struct etcd_sync s;
    char err[256] = "";
    int rc = etcd_sync_read(v, strlen(v), &s, err, sizeof err);

    return rc == -1 && s.n == 0 && s.epoch == 0 && strstr(err, want) != NULL;
}

void test_etcd_sync(void)
{
    struct etcd_sync s = {.epoch = 7, .n = 2, .ids = {"r1", "site-2"}}, t;
    char err[256], *v = etcd_sync_value(&s);
    const char *empty = "{\"epoch\":1,\"replicas\":[],\"x\":1}";

    unit_check_str(v, "{\"epoch\":7,\"replicas\":[\"r1\",\"site-2\"]}", "the sync value");
    unit_check(v && !etcd_sync_read(v, strlen(v), &t, err, sizeof err) && t.epoch == 7 && t.n == 2 &&
               etcd_sync_has(&t, "r1") && etcd_sync_has(&t, "site-2") && !etcd_sync_has(&t, "r"),
               "the sync value reads back");
    free(v);
    unit_check(!etcd_sync_read(empty, strlen(empty), &t, err, sizeof err) && t.n == 0,
               "an empty set, other members ignored");
    unit_check(sync_bad("", "not a JSON object") && sync_bad("[1]", "not a JSON object") &&
               sync_bad("{\"epoch\":1,\"replicas\":[]", "not a JSON object"), "not an object: refused");
    unit_check(sync_bad("{\"replicas\":[]}", "\"epoch\"") && sync_bad("{\"epoch\":0,\"replicas\":[]}", "\"epoch\"") &&
               sync_bad("{\"epoch\":1.5,\"replicas\":[]}", "\"epoch\"") &&
               sync_bad("{\"epoch\":\"1\",\"replicas\":[]}", "\"epoch\"") &&
               sync_bad("{\"epoch\":9007199254740992,\"replicas\":[]}", "\"epoch\""), "a bad epoch: refused");
    unit_check(sync_bad("{\"epoch\":1}", "a list") && sync_bad("{\"epoch\":1,\"replicas\":\"r1\"}", "a list") &&
               sync_bad("{\"epoch\":1,\"replicas\":[1]}", "replica ids") &&
               sync_bad("{\"epoch\":1,\"replicas\":[\"\"]}", "replica ids") &&
               sync_bad("{\"epoch\":1,\"replicas\":[\"a b\"]}", "not printable") &&
               sync_bad("{\"epoch\":1,\"replicas\":[\"a\",\"a\"]}", "names a twice"), "bad ids: refused");
    v = etcd_body_put_held("k", 12, 5, "k/sync", "v");
    unit_check_str(v, "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"aw==\",\"create_revision\":\"12\","
                   "\"result\":\"EQUAL\"},{\"target\":\"LEASE\",\"key\":\"aw==\",\"lease\":\"5\",\"result\":\"EQUAL\"}],"
                   "\"success\":[{\"request_put\":{\"key\":\"ay9zeW5j\",\"value\":\"dg==\"}}],"
                   "\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}",
                   "put while held: the sync key, no lease, while the key is ours");
    free(v);
}
