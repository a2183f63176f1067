/* etcd.c: the pure half of the etcd client (see etcd.h): base64, request bodies, and
 * the reading of answers. No I/O here.
 *
 * The gateway speaks proto3's JSON mapping: a field at its zero value is left out (a
 * txn that failed has no "succeeded", a lease that is gone no "TTL", a key that does not
 * exist no "kvs"), 64-bit integers are decimal strings (numbers are accepted too), bytes
 * are base64. */
#include "etcd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out, *o;
    size_t i;

    if (len > ((size_t)-1 / 4) * 3 - 3 || !(out = malloc((len + 2) / 3 * 4 + 1)))
        return NULL;
    o = out;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;

    return p ? (int)(p - b64) : -1;
}

int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen)
{
    size_t i, n = 0;
    char *buf;

    *out = NULL;
    *outlen = 0;
    if (slen % 4)
        return -1;
    if (!(buf = malloc(slen / 4 * 3 + 1)))
        return -1;
    for (i = 0; i < slen; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == slen && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
                free(buf);
                return -1;
            }
        }
        buf[n++] = (char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            buf[n++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            buf[n++] = (char)((v[2] & 3) << 6 | v[3]);
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

/* ---- request bodies ---------------------------------------------------------------- */

static int add_i64(cJSON *o, const char *name, long long v)
{
    char s[32];

    snprintf(s, sizeof s, "%lld", v);
    return cJSON_AddStringToObject(o, name, s) ? 0 : -1;
}

static int add_b64(cJSON *o, const char *name, const char *raw)
{
    char *s = etcd_b64_encode(raw, strlen(raw));
    int rc = s && cJSON_AddStringToObject(o, name, s) ? 0 : -1;

    free(s);
    return rc;
}

/* Print and free o; NULL when anything failed (bad set). */
static char *finish(cJSON *o, int bad)
{
    char *s = !bad && o ? cJSON_PrintUnformatted(o) : NULL;

    cJSON_Delete(o);
    return s;
}

char *etcd_body_grant(long long ttl)
{
    cJSON *o = cJSON_CreateObject();

    return finish(o, !o || add_i64(o, "TTL", ttl));
}

char *etcd_body_lease(long long id)
{
    cJSON *o = cJSON_CreateObject();

    return finish(o, !o || add_i64(o, "ID", id));
}

char *etcd_body_range(const char *key)
{
    cJSON *o = cJSON_CreateObject();

    return finish(o, !o || add_b64(o, "key", key));
}

/* {"target":TARGET,"key":KEY,FIELD:"V","result":"EQUAL"} appended to arr. */
static int add_compare(cJSON *arr, const char *target, const char *key, const char *field, long long v)
{
    cJSON *c = cJSON_CreateObject();

    if (!c || !cJSON_AddItemToArray(arr, c))
        return cJSON_Delete(c), -1;
    return cJSON_AddStringToObject(c, "target", target) && !add_b64(c, "key", key) && !add_i64(c, field, v) &&
           cJSON_AddStringToObject(c, "result", "EQUAL") ? 0 : -1;
}

/* {"request_put":{"key":K,"value":V[,"lease":L]}} appended to arr. */
static int add_put(cJSON *arr, const char *key, const char *value, long long lease)
{
    cJSON *op = cJSON_CreateObject(), *put;

    if (!op || !cJSON_AddItemToArray(arr, op))
        return cJSON_Delete(op), -1;
    if (!(put = cJSON_AddObjectToObject(op, "request_put")))
        return -1;
    return !add_b64(put, "key", key) && !add_b64(put, "value", value) && (!lease || !add_i64(put, "lease", lease))
           ? 0 : -1;
}

static int add_range(cJSON *arr, const char *key)
{
    cJSON *op = cJSON_CreateObject(), *rr;

    if (!op || !cJSON_AddItemToArray(arr, op))
        return cJSON_Delete(op), -1;
    return (rr = cJSON_AddObjectToObject(op, "request_range")) && !add_b64(rr, "key", key) ? 0 : -1;
}

char *etcd_body_campaign(const char *key, const char *value, long long lease)
{
    cJSON *o = cJSON_CreateObject(), *cmp, *ok, *ko;
    int bad = !o || !(cmp = cJSON_AddArrayToObject(o, "compare")) || !(ok = cJSON_AddArrayToObject(o, "success")) ||
              !(ko = cJSON_AddArrayToObject(o, "failure"));

    bad = bad || add_compare(cmp, "CREATE", key, "create_revision", 0) || add_put(ok, key, value, lease) ||
          add_range(ko, key);
    return finish(o, bad);
}

char *etcd_body_claim(const char *key, long long create_rev, const char *counter, long long counter_mod,
                      const char *counter_value, const char *value, long long lease)
{
    cJSON *o = cJSON_CreateObject(), *cmp, *ok, *ko;
    int bad = !o || !(cmp = cJSON_AddArrayToObject(o, "compare")) || !(ok = cJSON_AddArrayToObject(o, "success")) ||
              !(ko = cJSON_AddArrayToObject(o, "failure"));

    bad = bad || add_compare(cmp, "CREATE", key, "create_revision", create_rev) ||
          add_compare(cmp, "MOD", counter, "mod_revision", counter_mod) ||
          add_put(ok, counter, counter_value, 0) || add_put(ok, key, value, lease) || add_range(ko, key);
    return finish(o, bad);
}

char *etcd_body_put_held(const char *key, long long create_rev, long long lease, const char *skey,
                         const char *value)
{
    cJSON *o = cJSON_CreateObject(), *cmp, *ok, *ko;
    int bad = !o || !(cmp = cJSON_AddArrayToObject(o, "compare")) || !(ok = cJSON_AddArrayToObject(o, "success")) ||
              !(ko = cJSON_AddArrayToObject(o, "failure"));

    bad = bad || add_compare(cmp, "CREATE", key, "create_revision", create_rev) ||
          add_compare(cmp, "LEASE", key, "lease", lease) || add_put(ok, skey, value, 0) || add_range(ko, key);
    return finish(o, bad);
}

/* ---- the synchronous set (KEY/sync) ------------------------------------------------- */

char *etcd_sync_value(const struct etcd_sync *s)
{
    cJSON *o = cJSON_CreateObject(), *a;
    int i, bad = !o || !cJSON_AddNumberToObject(o, "epoch", (double)s->epoch) ||
                 !(a = cJSON_AddArrayToObject(o, "replicas"));

    for (i = 0; !bad && i < s->n; i++) {
        cJSON *id = cJSON_CreateString(s->ids[i]);
        bad = !id || !cJSON_AddItemToArray(a, id);
        if (bad)
            cJSON_Delete(id);
    }
    return finish(o, bad);
}

int etcd_sync_has(const struct etcd_sync *s, const char *id)
{
    int i;

    for (i = 0; i < s->n; i++)
        if (!strcmp(s->ids[i], id))
            return 1;
    return 0;
}

/* One id of the list: a string of 1 to ETCD_SYNC_ID_MAX printable ASCII characters. */
static int sync_id(const cJSON *j, struct etcd_sync *s, char *err, size_t errlen)
{
    size_t i, n;

    if (!cJSON_IsString(j) || !(n = strlen(j->valuestring)) || n > ETCD_SYNC_ID_MAX)
        return util_fail(err, errlen, "\"replicas\" must hold replica ids (strings of 1 to %d characters)",
                         ETCD_SYNC_ID_MAX);
    for (i = 0; i < n; i++)
        if ((unsigned char)j->valuestring[i] <= ' ' || (unsigned char)j->valuestring[i] >= 127)
            return util_fail(err, errlen, "a replica id in \"replicas\" holds a character that is not printable");
    if (s->n == ETCD_SYNC_MAX)
        return util_fail(err, errlen, "\"replicas\" names more than %d replicas", ETCD_SYNC_MAX);
    if (etcd_sync_has(s, j->valuestring))
        return util_fail(err, errlen, "\"replicas\" names %s twice", j->valuestring);
    memcpy(s->ids[s->n++], j->valuestring, n + 1);
    return 0;
}

int etcd_sync_read(const char *value, size_t len, struct etcd_sync *s, char *err, size_t errlen)
{
    cJSON *o = cJSON_ParseWithLength(value, len);
    const cJSON *e, *a, *j;
    int rc = 0;

    memset(s, 0, sizeof *s);
    if (!o || !cJSON_IsObject(o))
        rc = util_fail(err, errlen, "not a JSON object");
    else if (!(e = cJSON_GetObjectItemCaseSensitive(o, "epoch")) || !cJSON_IsNumber(e) || e->valuedouble < 1 ||
             e->valuedouble > 9007199254740991.0 || e->valuedouble != (double)(long long)e->valuedouble)
        rc = util_fail(err, errlen, "\"epoch\" must be an integer from 1 to 2^53 - 1");
    else if (!(a = cJSON_GetObjectItemCaseSensitive(o, "replicas")) || !cJSON_IsArray(a))
        rc = util_fail(err, errlen, "\"replicas\" must be a list of replica ids");
    else {
        s->epoch = (long long)e->valuedouble;
        cJSON_ArrayForEach(j, a) {
            if ((rc = sync_id(j, s, err, errlen)))
                break;
        }
    }
    cJSON_Delete(o);
    if (rc)
        memset(s, 0, sizeof *s);
    return rc;
}

/* ---- answers ------------------------------------------------------------------------ */

/* An int64 field: absent is 0 (proto3); a decimal string or an integral number. 0, or -1. */
static int get_i64(const cJSON *o, const char *name, long long *v)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    char *end;

    *v = 0;
    if (!f || cJSON_IsNull(f))
        return 0;
    if (cJSON_IsString(f)) {
        const char *s = f->valuestring;
        if (!s[0] || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
            return -1;
        errno = 0;
        *v = strtoll(s, &end, 10);
        return errno || *end || end == s ? -1 : 0;
    }
    if (cJSON_IsNumber(f) && f->valuedouble >= -9007199254740992.0 && f->valuedouble <= 9007199254740992.0 &&
        (double)(long long)f->valuedouble == f->valuedouble) {
        *v = (long long)f->valuedouble;
        return 0;
    }
    return -1;
}

/* A key from kvs[0]. 0, or -1 + err. */
static int read_kv(const cJSON *kv, struct etcd_kv *out, char *err, size_t errlen)
{
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(kv, "value");

    if (!cJSON_IsObject(kv))
        return util_fail(err, errlen, "a key that is not an object");
    if (get_i64(kv, "create_revision", &out->create_rev) || get_i64(kv, "mod_revision", &out->mod_rev) ||
        get_i64(kv, "version", &out->version) || get_i64(kv, "lease", &out->lease))
        return util_fail(err, errlen, "a key whose revisions or lease are not integers");
    if (val && !cJSON_IsString(val))
        return util_fail(err, errlen, "a key whose value is not a string");
    if (etcd_b64_decode(val ? val->valuestring : "", val ? strlen(val->valuestring) : 0, &out->value,
                        &out->value_len))
        return util_fail(err, errlen, "a key whose value is not base64");
    return 0;
}

/* The first key of a range answer (an object with "kvs"), if any. */
static int read_range(const cJSON *o, struct etcd_resp *r, char *err, size_t errlen)
{
    const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(o, "kvs");

    if (!kvs || cJSON_IsNull(kvs))
        return 0;
    if (!cJSON_IsArray(kvs))
        return util_fail(err, errlen, "\"kvs\" is not an array");
    if (!cJSON_GetArraySize(kvs))
        return 0;
    if (read_kv(cJSON_GetArrayItem(kvs, 0), &r->kv, err, errlen))
        return -1;
    r->has_kv = 1;
    return 0;
}

/* {"error":"msg","code":N} or {"error":{"grpc_code":N,"message":"msg"}}: 1 (r filled),
 * 0 (not an error answer). */
static int read_error(const cJSON *o, struct etcd_resp *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error"), *m;
    long long code = 0;

    if (!e)
        return 0;
    if (cJSON_IsObject(e)) {
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (get_i64(e, "grpc_code", &code))
            code = 0;
    } else {
        m = cJSON_GetObjectItemCaseSensitive(o, "message");
        if (!cJSON_IsString(m))
            m = e;
        if (get_i64(o, "code", &code))
            code = 0;
    }
    snprintf(r->message, sizeof r->message, "%s",
             cJSON_IsString(m) && m->valuestring[0] ? m->valuestring : "(no message)");
    r->code = code > 0 && code < 1000 ? (int)code : -1;
    return 1;
}

/* A transaction's answer: "succeeded", and the first range among its "responses". */
static int read_txn(const cJSON *o, struct etcd_resp *r, char *err, size_t errlen)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "succeeded");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(o, "responses"), *it;

    if (s && !cJSON_IsBool(s))
        return util_fail(err, errlen, "\"succeeded\" is not true or false");
    r->succeeded = cJSON_IsTrue(s);
    if (resp && !cJSON_IsNull(resp) && !cJSON_IsArray(resp))
        return util_fail(err, errlen, "\"responses\" is not an array");
    cJSON_ArrayForEach(it, resp) {
        const cJSON *rr = cJSON_GetObjectItemCaseSensitive(it, "response_range");
        if (!cJSON_IsObject(rr))
            continue;
        return read_range(rr, r, err, errlen);
    }
    return 0;
}

int etcd_parse(const char *body, size_t len, enum etcd_kind kind, struct etcd_resp *r, char *err,
               size_t errlen)
{
    cJSON *j;
    const cJSON *o, *h;
    int rc = -1;

    memset(r, 0, sizeof *r);
    if (!(j = cJSON_ParseWithLength(body, len)) || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return util_fail(err, errlen, "not a JSON object");
    }
    o = j;
    if (read_error(o, r)) {
        rc = 0;
        goto out;
    }
    if (kind == ETCD_KEEPALIVE) {
        /* A stream: {"result":{...}}. */
        o = cJSON_GetObjectItemCaseSensitive(j, "result");
        if (!cJSON_IsObject(o)) {
            util_fail(err, errlen, "no \"result\" in a keepalive answer");
            goto out;
        }
    }
    h = cJSON_GetObjectItemCaseSensitive(o, "header");
    if (h && (!cJSON_IsObject(h) || get_i64(h, "revision", &r->revision))) {
        util_fail(err, errlen, "a bad \"header\"");
        goto out;
    }
    if (!h && kind != ETCD_REVOKE) {
        util_fail(err, errlen, "no \"header\"");
        goto out;
    }
    switch (kind) {
    case ETCD_GRANT:
    case ETCD_KEEPALIVE:
        if (get_i64(o, "ID", &r->id) || get_i64(o, "TTL", &r->ttl) || r->ttl < 0) {
            util_fail(err, errlen, "a lease whose ID or TTL is not an integer");
            goto out;
        }
        if (kind == ETCD_GRANT && r->ttl <= 0) {
            util_fail(err, errlen, "a lease granted with no TTL");
            goto out;
        }
        break;
    case ETCD_REVOKE:
        break;
    case ETCD_RANGE:
        if (read_range(o, r, err, errlen))
            goto out;
        break;
    case ETCD_TXN:
        if (read_txn(o, r, err, errlen))
            goto out;
        break;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    if (rc)
        etcd_resp_free(r);
    return rc;
}

void etcd_resp_free(struct etcd_resp *r)
{
    free(r->kv.value);
    r->kv.value = NULL;
    r->kv.value_len = 0;
    r->has_kv = 0;
}

int etcd_check_endpoints(const char *list, char *err, size_t errlen)
{
    const char *p = list;
    int n = 0;

    if (!list || !*list)
        return util_fail(err, errlen, "no endpoint");
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t skip = !strncmp(p, "http://", 7) ? 7 : !strncmp(p, "https://", 8) ? 8 : 0;
        size_t i;

        if (!skip || len <= skip)
            return util_fail(err, errlen, "\"%.*s\" is not an http:// or https:// URL", (int)len, p);
        for (i = 0; i < len; i++)
            if ((unsigned char)p[i] <= ' ' || p[i] == '"' || p[i] == '\\' || (unsigned char)p[i] >= 127)
                return util_fail(err, errlen, "\"%.*s\": a URL has no spaces or control characters", (int)len, p);
        if (memchr(p + skip, '?', len - skip) || memchr(p + skip, '#', len - skip))
            return util_fail(err, errlen, "\"%.*s\": give the endpoint only (scheme, host, port)", (int)len, p);
        if (++n > ETCD_MAX_ENDPOINTS)
            return util_fail(err, errlen, "more than %d endpoints", ETCD_MAX_ENDPOINTS);
        p += len;
        if (*p == ',' && !*++p)
            return util_fail(err, errlen, "an empty endpoint after the last comma");
    }
    return 0;
}
