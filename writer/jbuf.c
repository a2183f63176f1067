/* jbuf.c: JSON text building (see jbuf.h). */
#include "jbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

static int grow(struct jbuf *b, size_t more)
{
    size_t need, cap;
    char *s;

    if (b->oom)
        return -1;
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

void jb_free(struct jbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void jb_reset(struct jbuf *b)
{
    b->len = 0;
    b->oom = 0;
}

void jb_putn(struct jbuf *b, const char *s, size_t n)
{
    if (grow(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void jb_puts(struct jbuf *b, const char *s)
{
    jb_putn(b, s, strlen(s));
}

void jb_putc(struct jbuf *b, char c)
{
    if (grow(b, 1))
        return;
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

void jb_str(struct jbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;

    /* Worst case 6 bytes per input byte, plus quotes. */
    if (grow(b, n * 6 + 2))
        return;
    b->s[b->len++] = '"';
    while (i < n) {
        unsigned c = s[i];
        char *o = b->s + b->len;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run = i + 1;
            while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
                run++;
            memcpy(o, s + i, run - i);
            b->len += run - i;
            i = run;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seqlen(s + i, n - i);
            if (k) {
                memcpy(o, s + i, k);
                b->len += k;
                i += k;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);   /* U+FFFD */
                b->len += 3;
                i++;
            }
            continue;
        }
        o[0] = '\\';
        switch (c) {
        case '"': o[1] = '"'; b->len += 2; break;
        case '\\': o[1] = '\\'; b->len += 2; break;
        case '\n': o[1] = 'n'; b->len += 2; break;
        case '\r': o[1] = 'r'; b->len += 2; break;
        case '\t': o[1] = 't'; b->len += 2; break;
        default:
            o[1] = 'u'; o[2] = '0'; o[3] = '0';
            o[4] = hex[c >> 4]; o[5] = hex[c & 15];
            b->len += 6;
        }
        i++;
    }
    b->s[b->len++] = '"';
    b->s[b->len] = '\0';
}

void jb_cstr(struct jbuf *b, const char *s)
{
    if (s)
        jb_str(b, s, strlen(s));
    else
        jb_puts(b, "null");
}

void jb_int(struct jbuf *b, long long v)
{
    char tmp[32], *p = tmp + sizeof tmp;
    const long long lim = UTIL_EXACT_INT;
    /* Digits by hand: snprintf costs more than the rest of a row's JSON. The
     * magnitude as unsigned, so LLONG_MIN too. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int quote = v > lim || v < -lim;

    if (quote)
        *--p = '"';
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    if (quote)
        *--p = '"';
    jb_putn(b, p, (size_t)(tmp + sizeof tmp - p));
}

void jb_double(struct jbuf *b, double v)
{
    char tmp[40];
    int n;

    if (!isfinite(v)) {
        jb_puts(b, "null");
        return;
    }
    /* The shortest of %.15g/%.17g that reads back as the same double. */
    n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        n = snprintf(tmp, sizeof tmp, "%.17g", v);
    /* Keep it a JSON number that reads back as REAL, not INTEGER. */
    if (!strpbrk(tmp, ".eE") && n < 38) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    jb_putn(b, tmp, (size_t)n);
}

void jb_base64(struct jbuf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    char *o;

    jb_puts(b, "{\"$base64\":\"");
    if (grow(b, (n + 2) / 3 * 4 + 2))
        return;
    o = b->s + b->len;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->s);
    b->s[b->len] = '\0';
    jb_puts(b, "\"}");
}

void jb_key(struct jbuf *b, const char *key)
{
    jb_putc(b, '"');
    jb_puts(b, key);
    jb_puts(b, "\":");
}
