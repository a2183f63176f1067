/* jbuf.h: a growable byte buffer for building JSON text (events, receipts, status,
 * query answers) without a tree. Out of memory is sticky: jb->oom is set, further
 * appends do nothing, and the caller checks once at the end. */
#ifndef MOSQLITE_JBUF_H
#define MOSQLITE_JBUF_H

#include <stddef.h>

struct jbuf {
    char *s;        /* the text, NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int oom;
};

void jb_free(struct jbuf *b);
void jb_reset(struct jbuf *b);                         /* empty again, the memory kept */
void jb_putn(struct jbuf *b, const char *s, size_t n);   /* raw bytes */
void jb_puts(struct jbuf *b, const char *s);             /* raw string */
void jb_putc(struct jbuf *b, char c);
/* A JSON string literal with quotes; invalid UTF-8 becomes U+FFFD. */
void jb_str(struct jbuf *b, const char *s, size_t n);
void jb_cstr(struct jbuf *b, const char *s);             /* jb_str, or null for NULL */
/* An integer; beyond +-2^53 it is written as a string so JavaScript keeps it exact. */
void jb_int(struct jbuf *b, long long v);
void jb_double(struct jbuf *b, double v);                /* null when not finite */
/* Binary data as {"$base64": "..."}. */
void jb_base64(struct jbuf *b, const unsigned char *p, size_t n);
/* "key": (the key must need no escaping) */
void jb_key(struct jbuf *b, const char *key);

#endif
