/* fuzz_retain.c: libFuzzer target over the `retain` line parser and durations
 * (writer/retain.c) and the names of scheduled backups (writer/autobackup.c).
 *
 * An input is a config value. Besides the sanitizers, the target checks what the
 * headers promise: an error comes with a message; a line parsed has a table and a
 * column without blanks and an age from 1 s to 100 years; a duration parsed is a whole
 * number of seconds in range; a name read as a scheduled backup is written back the
 * same from its time.
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autobackup.h"
#include "retain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_retain: %s: \"%s\"\n", what, text);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[512], name[AUTOBACKUP_NAME_MAX];
    struct retain_spec s;
    long long ms;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    err[0] = 0;
    if (retain_parse(text, &s, err, sizeof err)) {
        if (!err[0])
            fail("an error without a message", text);
    } else {
        if (!s.table[0] || !s.column[0] || strpbrk(s.table, " \t") || strpbrk(s.column, " \t"))
            fail("a table or column with blanks", text);
        if (s.age_ms < 1000 || s.age_ms > 100LL * 366 * 86400 * 1000)
            fail("an age out of range", text);
        retain_spec_free(&s);
    }
    if (!retain_duration(text, &ms) && (ms < 1000 || ms % 1000))
        fail("a duration not whole seconds", text);
    if (autobackup_parse_name("mosqlite", text, &ms)) {
        autobackup_name("mosqlite", ms, name);
        if (strcmp(name, text))
            fail("a scheduled backup's name not written back the same", text);
    }
    free(text);
    return 0;
}
