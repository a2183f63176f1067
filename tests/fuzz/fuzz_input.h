/* fuzz_input.h: how fuzz_req and fuzz_ctl cut an input into "FIRST-LINE\nPAYLOAD".
 * Header only: each target is built from its own list of sources (run.sh). */
#ifndef MOSQLITE_FUZZ_INPUT_H
#define MOSQLITE_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The first line of data, when there is a newline and the line fits line[linelen],
 * goes into line, and *first points to it unless it is empty or holds a NUL (else
 * *first is NULL); the payload is what follows the newline, or all of data when there
 * is none. Returns the payload as an exact-size heap copy, so that a read past it is
 * caught by ASan (the caller frees it), with its length in *len; NULL when out of
 * memory. */
static inline char *fuzz_input(const uint8_t *data, size_t size, char *line, size_t linelen,
                               const char **first, size_t *len)
{
    const char *p = (const char *)data, *nl = memchr(data, '\n', size);
    size_t off = 0;
    char *payload;

    *first = NULL;
    if (nl && (size_t)(nl - p) < linelen) {
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = 0;
        if (!memchr(line, 0, (size_t)(nl - p)) && line[0])
            *first = line;
        off = (size_t)(nl - p) + 1;
    }
    *len = size - off;
    if (!(payload = malloc(*len ? *len : 1)))
        return NULL;
    memcpy(payload, p + off, *len);
    return payload;
}

#endif
