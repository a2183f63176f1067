/* req_hash_ref.h: req_hash as it was written first, for the tests that compare the
 * writer's streaming req_hash with it (tests/unit/test_req.c, tests/fuzz/fuzz_req.c):
 * each field's cJSON_PrintUnformatted text hashed. The two must give the same value
 * (ids kept in mosqlite_applied). Header only: static functions. */
#ifndef MOSQLITE_REQ_HASH_REF_H
#define MOSQLITE_REQ_HASH_REF_H

#include <string.h>

#include <cjson/cJSON.h>

static unsigned long long ref_fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n--)
        h = (h ^ *b++) * 1099511628211ULL;
    return h;
}

static unsigned long long ref_hash(const cJSON *root, const char *topic)
{
    unsigned long long h = ref_fnv(14695981039346656037ULL, topic, strlen(topic) + 1);
    const cJSON *c;

    for (c = root->child; c; c = c->next) {
        unsigned long long f;
        char *v;
        if (!strcmp(c->string, "reply_to") || !strcmp(c->string, "after"))
            continue;
        f = ref_fnv(14695981039346656037ULL, c->string, strlen(c->string) + 1);
        if ((v = cJSON_PrintUnformatted(c))) {
            f = ref_fnv(f, v, strlen(v) + 1);
            cJSON_free(v);
        }
        h += f;
    }
    return h;
}

#endif
