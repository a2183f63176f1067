/* etcd_http.c: the I/O half of the etcd client (see etcd.h): POST a JSON body to one
 * of the cluster's endpoints with libcurl, and read the answer with etcd_parse.
 *
 * Every member of an etcd cluster serves the gateway and forwards to the raft leader,
 * so any endpoint that answers will do. The one that answered last is tried first (the
 * connection is reused); a refused or timed-out connection, an HTTP error without an
 * answer to the question (no leader, a timeout inside etcd), or an answer that cannot be
 * read moves on to the next, until the caller's deadline.
 *
 * libcurl is loaded (dlopen) by etcd_global_init, only when etcd is configured: linked
 * in, it and the libraries it brings (TLS, Kerberos, LDAP, ...) doubled the resident
 * size of every writer, etcd or not. */
#include "etcd.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ANSWER_MAX (1 << 20)     /* a larger answer is not one of ours */

struct etcd {
    char *ep[ETCD_MAX_ENDPOINTS];
    int n, cur;
    CURL *h;
    struct curl_slist *headers;
    char *buf;                   /* the answer being read */
    size_t len, cap;
    int too_big;
};

#define LIBCURL "libcurl.so.4"

/* libcurl's functions, once loaded. */
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} C;

static int load_curl(char *err, size_t errlen)
{
    static const char *const names[] = {
        "curl_global_init", "curl_easy_init", "curl_easy_cleanup", "curl_easy_reset",
        "curl_easy_setopt", "curl_easy_perform", "curl_easy_getinfo", "curl_easy_strerror",
        "curl_slist_append", "curl_slist_free_all",
    };
    void **slot[] = {
        (void **)&C.global_init, (void **)&C.easy_init, (void **)&C.easy_cleanup,
        (void **)&C.easy_reset, (void **)&C.easy_setopt, (void **)&C.easy_perform,
        (void **)&C.easy_getinfo, (void **)&C.easy_strerror, (void **)&C.slist_append,
        (void **)&C.slist_free_all,
    };
    void *lib;
    size_t i;

    if (C.global_init)
        return 0;
    if (!(lib = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL)))
        return util_fail(err, errlen, "etcd needs libcurl (" LIBCURL ", Debian's libcurl4): %s", dlerror());
    for (i = 0; i < sizeof names / sizeof *names; i++)
        if (!(*slot[i] = dlsym(lib, names[i]))) {
            util_fail(err, errlen, LIBCURL " has no %s", names[i]);
            memset(&C, 0, sizeof C);
            dlclose(lib);
            return -1;
        }
    return 0;
}

int etcd_global_init(char *err, size_t errlen)
{
    CURLcode rc;

    if (load_curl(err, errlen))
        return -1;
    rc = C.global_init(CURL_GLOBAL_DEFAULT);
    return rc ? util_fail(err, errlen, "libcurl: %s", C.easy_strerror(rc)) : 0;
}

struct etcd *etcd_new(const char *endpoints, char *err, size_t errlen)
{
    struct etcd *e;
    const char *p = endpoints;

    if (!C.easy_init) {
        util_fail(err, errlen, "libcurl is not loaded (etcd_global_init)");
        return NULL;
    }
    if (etcd_check_endpoints(endpoints, err, errlen))
        return NULL;
    if (!(e = calloc(1, sizeof *e)))
        goto oom;
    while (*p) {
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == '/')      /* "http://h:2379/" is "http://h:2379" */
            len--;
        if (!(e->ep[e->n] = strndup(p, len)))
            goto oom;
        e->n++;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (!(e->h = C.easy_init()) ||
        !(e->headers = C.slist_append(NULL, "Content-Type: application/json")))
        goto oom;
    return e;
oom:
    etcd_free(e);
    util_fail(err, errlen, "out of memory");
    return NULL;
}

void etcd_free(struct etcd *e)
{
    int i;

    if (!e)
        return;
    for (i = 0; i < e->n; i++)
        free(e->ep[i]);
    if (e->h)
        C.easy_cleanup(e->h);
    C.slist_free_all(e->headers);
    free(e->buf);
    free(e);
}

const char *etcd_endpoint(const struct etcd *e)
{
    return e->ep[e->cur];
}

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    struct etcd *e = ud;
    size_t add = size * n;

    if (e->len + add > ANSWER_MAX) {
        e->too_big = 1;
        return 0;
    }
    if (e->len + add + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        char *b;
        while (cap < e->len + add + 1)
            cap *= 2;
        if (!(b = realloc(e->buf, cap)))
            return 0;
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, add);
    e->len += add;
    e->buf[e->len] = '\0';
    return add;
}

/* One try at endpoint i. 0: *r holds an answer to the question (maybe an error etcd
 * gives for it); 1: this endpoint could not answer (err says why). */
static int try_one(struct etcd *e, int i, const char *path, const char *body, enum etcd_kind kind,
                   long timeout_ms, struct etcd_resp *r, char *err, size_t errlen)
{
    char url[1024], why[160];
    long status = 0;
    CURLcode rc;

    snprintf(url, sizeof url, "%s%s", e->ep[i], path);
    e->len = 0;
    e->too_big = 0;
    C.easy_reset(e->h);
    C.easy_setopt(e->h, CURLOPT_URL, url);
    C.easy_setopt(e->h, CURLOPT_POSTFIELDS, body);
    C.easy_setopt(e->h, CURLOPT_HTTPHEADER, e->headers);
    C.easy_setopt(e->h, CURLOPT_WRITEFUNCTION, on_data);
    C.easy_setopt(e->h, CURLOPT_WRITEDATA, e);
    C.easy_setopt(e->h, CURLOPT_NOSIGNAL, 1L);              /* a thread of a program with signals */
    C.easy_setopt(e->h, CURLOPT_TIMEOUT_MS, timeout_ms);
    C.easy_setopt(e->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    C.easy_setopt(e->h, CURLOPT_PROTOCOLS_STR, "http,https");
    C.easy_setopt(e->h, CURLOPT_TCP_NODELAY, 1L);
    if ((rc = C.easy_perform(e->h)) != CURLE_OK) {
        util_fail(err, errlen, "%s: %s", e->ep[i], e->too_big ? "answer too large" : C.easy_strerror(rc));
        return 1;
    }
    C.easy_getinfo(e->h, CURLINFO_RESPONSE_CODE, &status);
    if (etcd_parse(e->buf ? e->buf : "", e->len, kind, r, why, sizeof why)) {
        util_fail(err, errlen, "%s: HTTP %ld, %s", e->ep[i], status, why);
        return 1;
    }
    if (status == 200 && !r->code)
        return 0;
    if (r->code == ETCD_CODE_NOT_FOUND || r->code == ETCD_CODE_INVALID_ARGUMENT ||
        r->code == ETCD_CODE_PERMISSION || r->code == ETCD_CODE_UNAUTHENTICATED)
        return 0;
    util_fail(err, errlen, "%s: HTTP %ld, %s", e->ep[i], status, r->code ? r->message : "no answer");
    etcd_resp_free(r);
    return 1;
}

int etcd_call(struct etcd *e, const char *path, const char *body, enum etcd_kind kind,
              long long deadline_ms, long try_ms, struct etcd_resp *r, char *err, size_t errlen)
{
    int k;

    if (!body)
        return util_fail(err, errlen, "out of memory");
    snprintf(err, errlen, "no time left to ask etcd");
    for (k = 0; k < e->n; k++) {
        int i = (e->cur + k) % e->n;
        long long left = deadline_ms - util_now_ms();
        if (left <= 0)
            break;
        if (!try_one(e, i, path, body, kind, left < try_ms ? (long)left : try_ms, r, err, errlen)) {
            e->cur = i;
            return 0;
        }
    }
    /* Next time, start with the one after the one that failed first. */
    e->cur = (e->cur + 1) % e->n;
    memset(r, 0, sizeof *r);
    return -1;
}
