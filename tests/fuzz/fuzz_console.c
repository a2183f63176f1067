/* fuzz_console.c: libFuzzer over the operator's command's text handling (console/
 * format.c): a stored line made safe for a terminal (with and without its colours) and
 * a query argument NAME=VALUE or NAME:=JSON. Beyond the sanitizers, it checks that no
 * control character but TAB, and no escape sequence but a colour one, survives. */
#include "console.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_safe(const char *out, int keep_sgr)
{
    const unsigned char *p = (const unsigned char *)out;

    while (*p) {
        if (*p == 0x1b) {
            /* only ESC [ digits ; : m */
            const unsigned char *q = p + 1;
            if (!keep_sgr || *q != '[')
                abort();
            q++;
            while ((*q >= '0' && *q <= '9') || *q == ';' || *q == ':')
                q++;
            if (*q != 'm')
                abort();
            p = q + 1;
            continue;
        }
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            abort();
        p++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *t, err[256];
    cJSON *obj;
    int sgr = 0;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if ((t = fmt_term(s, 1, &sgr))) {
        check_safe(t, 1);
        free(t);
    }
    if ((t = fmt_term(s, 0, NULL))) {
        check_safe(t, 0);
        free(t);
    }
    if ((obj = cJSON_CreateObject())) {
        if (fmt_param(obj, s, err, sizeof err) == 0 && cJSON_GetArraySize(obj) != 1)
            abort();
        cJSON_Delete(obj);
    }
    free(s);
    return 0;
}
