/* fuzz_work.c: libFuzzer target over what mosqlite-work reads from the broker
 * (publisher/work_msg.c): any bytes as a message on the agent's topic, as the
 * writer's status and as a job's result or progress file. Besides the sanitizers, it
 * checks what work.h promises: numbers are -1 or within 0..2^53; a grant has its job,
 * attempt, claim and payload, and the payload is a run of the input's own bytes (the
 * text as sent), as is a build_id; a file's value is a run of its own bytes.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "work.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_work: %s\n", what);
    abort();
}

static void check_num(long long v)
{
    if (v != -1 && (v < 0 || v > 9007199254740992LL))
        fail("a number out of range");
}

/* Whether s is a run of bytes of text (the payload as sent, not printed again). */
static int inside(const char *s, const char *text, size_t len)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= len; i++)
        if (!memcmp(text + i, s, n))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct work_in m;
    char since[64], err[512];
    size_t vs, ve;

    if (work_in_read(&m, text, size) == 0) {
        check_num(m.job);
        check_num(m.attempt);
        check_num(m.lease_ms);
        check_num(m.timeout_ms);
        check_num(m.lost);
        if (m.kind == WM_GRANT) {
            if (m.job < 0 || m.attempt < 0 || !m.claim || !m.payload)
                fail("a grant without its job, attempt, claim or payload");
            if (!inside(m.payload, text, size))
                fail("the payload is not the grant's own text");
            if (m.build_id && !inside(m.build_id, m.payload, strlen(m.payload)))
                fail("the build_id is not the payload's own text");
        }
        work_in_free(&m);
    }
    if (work_status_read(text, size, since, sizeof since) && strlen(since) >= sizeof since)
        fail("since overflows");
    /* a job's result or progress file: a value is a run of the file's own bytes */
    if (work_value_read(text, size, "the result", WORK_PROGRESS_MAX, &vs, &ve, err, sizeof err) > 0 &&
        (vs >= ve || ve > size))
        fail("the value is not within the text");
    return 0;
}
