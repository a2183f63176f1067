/* strict_str.c: the strings of a document the strict reader has read (strict.h):
 * decoded from their JSON literal (escapes and surrogate pairs to UTF-8), compared as
 * keys, and quoted back into a literal. */
#include "strict.h"

#include <stdlib.h>
#include <string.h>

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static unsigned hexval(const char *s)
{
    unsigned v = 0;
    int k;

    for (k = 0; k < 4; k++)
        v = v << 4 | (unsigned)(s[k] <= '9' ? s[k] - '0' : (s[k] | 0x20) - 'a' + 10);
    return v;
}

/* Decode the string literal at s (its opening quote), checked already by jp_string. */
char *mosqlite__json_decode(const char *s)
{
    size_t n = 0, o = 0;
    const char *p;
    char *out;

    for (p = s + 1; *p != '"'; p++, n++)
        if (*p == '\\')
            p++, n++;
    if (!(out = malloc(n + 1)))
        return NULL;
    for (p = s + 1; *p != '"'; p++) {
        if (*p != '\\') {
            out[o++] = *p;
            continue;
        }
        switch (*++p) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp = hexval(p + 1);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hexval(p + 3) - 0xdc00);
                p += 6;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = *p; break;
        }
    }
    out[o] = '\0';
    return out;
}

char *mosqlite__json_string(const struct jdoc *d, int i)
{
    return mosqlite__json_decode(d->s + d->v[i].start);
}

char *mosqlite__json_quote(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    *out++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c == '\n') {
            *out++ = '\\', *out++ = 'n';
        } else if (c == '\t') {
            *out++ = '\\', *out++ = 't';
        } else if (c == '\r') {
            *out++ = '\\', *out++ = 'r';
        } else if (c < 0x20) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            out += 6;
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    return out;
}

/* A key equal to name: decoded, compared as the writer compares (strcmp). */
int mosqlite__json_key_is(const struct jdoc *d, int i, const char *name)
{
    char *k = mosqlite__json_decode(d->s + d->v[i].key);
    int eq = k && !strcmp(k, name);

    free(k);
    return eq;
}

int mosqlite__json_member(const struct jdoc *d, const char *key)
{
    int c;

    for (c = d->v[0].child; c >= 0; c = d->v[c].next)
        if (mosqlite__json_key_is(d, c, key))
            return c;
    return -1;
}
