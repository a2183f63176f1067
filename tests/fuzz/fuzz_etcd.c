/* fuzz_etcd.c: libFuzzer target over the etcd client's reading of answers (etcd.c:
 * etcd_parse) and its base64.
 *
 * An input is one byte choosing what the answer is read as (grant, keepalive, revoke,
 * range, txn: the byte modulo 5), then the answer's bytes. Besides the sanitizers, the
 * target checks what etcd.h promises: a refusal comes with a message; an answer read has
 * a TTL of 0 or more, a key's value NUL-terminated after value_len bytes, and an error
 * answer a message; and the answer's bytes, encoded in base64 and decoded, come back
 * the same. The answer's bytes are also read as the synchronous set's value (KEY/sync,
 * etcd_sync_read): a refusal comes with a message and leaves the set empty; a set read
 * is written again (etcd_sync_value) and reads back the same.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_etcd: %s\n", what);
    abort();
}

/* The bytes as KEY/sync's value. */
static void sync_value(const char *body, size_t len)
{
    static struct etcd_sync s, t;
    char err[256] = "", *v;
    int i;

    if (etcd_sync_read(body, len, &s, err, sizeof err)) {
        if (!err[0] || s.n || s.epoch)
            fail("a sync value refused without a message, or not left empty");
        return;
    }
    if (s.epoch < 1 || s.n < 0 || s.n > ETCD_SYNC_MAX)
        fail("a sync value read out of its bounds");
    if (!(v = etcd_sync_value(&s)))
        return;
    if (etcd_sync_read(v, strlen(v), &t, err, sizeof err) || t.epoch != s.epoch || t.n != s.n)
        fail("a sync value written again does not read back");
    for (i = 0; i < s.n; i++)
        if (strcmp(s.ids[i], t.ids[i]))
            fail("a sync value's ids do not read back");
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum etcd_kind kinds[] = {ETCD_GRANT, ETCD_KEEPALIVE, ETCD_REVOKE, ETCD_RANGE, ETCD_TXN};
    struct etcd_resp r;
    char err[256], *enc, *dec = NULL;
    const char *body;
    size_t len, n = 0;

    if (!size)
        return 0;
    body = (const char *)data + 1;
    len = size - 1;
    err[0] = '\0';
    if (etcd_parse(body, len, kinds[data[0] % 5], &r, err, sizeof err)) {
        if (!err[0])
            fail("refused without a message");
        if (r.has_kv || r.kv.value)
            fail("refused, but a key is left behind");
    } else {
        if (r.ttl < 0)
            fail("a negative TTL");
        if (r.has_kv && (!r.kv.value || r.kv.value[r.kv.value_len] != '\0'))
            fail("a key's value not NUL-terminated");
        if (r.code && !r.message[0])
            fail("an error answer without a message");
        etcd_resp_free(&r);
    }
    sync_value(body, len);
    if (!(enc = etcd_b64_encode(body, len)))
        return 0;
    if (etcd_b64_decode(enc, strlen(enc), &dec, &n) || n != len || memcmp(dec, body, len))
        fail("base64 does not come back");
    free(enc);
    free(dec);
    /* The answer's bytes as base64 themselves: decoded or refused, never past the end. */
    if (!etcd_b64_decode(body, len, &dec, &n))
        free(dec);
    return 0;
}
