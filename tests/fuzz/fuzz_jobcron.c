/* fuzz_jobcron.c: libFuzzer target over the `job-cron` line parser (writer/jobcron.c:
 * the schedule through common/cron.c, the queue, the strict JSON payload, the options
 * through the enqueue op's own reader).
 *
 * An input is a config value. Besides the sanitizers, the target checks what the
 * header promises: an error comes with a message naming job-cron; a line parsed has a
 * name of 1 to 128 printable characters without blanks, a queue the enqueue op accepts,
 * a payload, a catch-up count within bounds, and a schedule that has a next tick.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobcron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_jobcron: %s: \"%s\"\n", what, text);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[1024], qerr[256];
    struct jobcron_spec s;
    long long next;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    err[0] = 0;
    if (jobcron_parse(text, &s, err, sizeof err)) {
        if (!err[0] || !strstr(err, "job-cron"))
            fail("an error without a message naming job-cron", text);
    } else {
        size_t n = strlen(s.name);
        if (!n || n > JOBCRON_NAME_MAX || strpbrk(s.name, " \t"))
            fail("a bad name accepted", text);
        if (!s.enq.queue || req_queue_check(s.enq.queue, qerr, sizeof qerr))
            fail("a bad queue accepted", text);
        if (!s.enq.payload)
            fail("no payload", text);
        if (s.catch_max < 1 || s.catch_max > JOBCRON_ALL_MAX)
            fail("a catch-up count out of range", text);
        if (cron_next(&s.cron, 0, &next) || next <= 0)
            fail("a schedule with no tick", text);
        jobcron_spec_free(&s);
    }
    free(text);
    return 0;
}
