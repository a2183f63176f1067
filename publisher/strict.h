/* strict.h: the publisher's strict JSON reader (library-internal, not installed). It
 * checks a JSON object as the writer checks a request, with the writer's words, and
 * says where each top-level member is, so that requests are built and stamped by
 * cutting and joining the user's own text: values go out byte for byte. */
#ifndef MOSQLITE_STRICT_H
#define MOSQLITE_STRICT_H

#include <stddef.h>

#ifndef MOSQLITE_INTERNAL
#define MOSQLITE_INTERNAL __attribute__((visibility("hidden")))
#endif

/* The deepest nesting accepted: the largest the writer's max-depth allows. A writer
 * configured lower refuses deeper requests itself. */
#define MOSQLITE_JSON_DEPTH 1000

enum jtype { J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_LITERAL };

/* One value of the document: its bytes [start, end), its key's opening quote when it
 * is a member of an object (else (size_t)-1), its first child and next sibling (node
 * indexes, -1 for none). */
struct jnode {
    enum jtype type;
    size_t start, end, key;
    int child, next;
};

struct jdoc {
    const char *s;
    size_t n;
    struct jnode *v;            /* v[0] is the top-level value */
    int nv, cap;
};

/* How the document's objects are named in a duplicate-key refusal, as the writer
 * names them: J_REQUEST a whole request (the writer's structure: the request, each
 * operation, values/set/where, any other object), or a bare column object whose
 * top level is called what ("values", "set", "where"). */
#define J_REQUEST NULL

/* Read text[0..len) as one JSON object: the writer's raw checks first (UTF-8, NUL,
 * \u0000, control characters in strings, RFC 8259 numbers that are exact, nesting),
 * then the grammar, then duplicate keys. 0 with *d filled (free with
 * mosqlite__json_free), or -1 with the reason in err: the writer's words for what the
 * writer refuses, else "WHAT is not a JSON object: invalid JSON at byte N, expected
 * ..., found ...". Byte offsets count from text; the writer's words are preceded by
 * "WHAT: " when dupctx names a column object (for a request, they are the writer's
 * exactly). what names the text in the grammar
 * message; dupctx is J_REQUEST or the name of a column object (see above). */
MOSQLITE_INTERNAL int mosqlite__json_read(struct jdoc *d, const char *text, size_t len,
                                          const char *what, const char *dupctx,
                                          char *err, size_t errlen);
/* As mosqlite__json_read, for one JSON value of any type (d->v[0]: an object, an
 * array, a string, a number, true, false or null): the same raw checks and grammar,
 * then duplicate keys in every object ("an object"). Every refusal begins "WHAT"
 * ("WHAT is not JSON: invalid JSON at byte N, ..." or "WHAT: the writer's words"). */
MOSQLITE_INTERNAL int mosqlite__json_read_value(struct jdoc *d, const char *text, size_t len,
                                                const char *what, char *err, size_t errlen);
MOSQLITE_INTERNAL void mosqlite__json_free(struct jdoc *d);

/* The top-level member named key (decoded), or -1. */
MOSQLITE_INTERNAL int mosqlite__json_member(const struct jdoc *d, const char *key);

/* 1 when the key of member i is name (decoded), else 0. */
MOSQLITE_INTERNAL int mosqlite__json_key_is(const struct jdoc *d, int i, const char *name);

/* strict_str.c: the string literal at s (its opening quote), checked already by the
 * reader, decoded into a heap string (NULL when out of memory). */
MOSQLITE_INTERNAL char *mosqlite__json_decode(const char *s);

/* The decoded text of the string node i, as a heap string (NULL when out of memory).
 * The reader has refused \u0000, so it holds no NUL. */
MOSQLITE_INTERNAL char *mosqlite__json_string(const struct jdoc *d, int i);

/* Append s as a JSON string literal (quotes included) at out, which has room for
 * 6 * n + 2 bytes; returns the new end. */
MOSQLITE_INTERNAL char *mosqlite__json_quote(char *out, const char *s, size_t n);

/* How many bytes at s (n left) form one UTF-8 character (*ok = 1), or else the
 * maximal subpart of a broken one (*ok = 0, at least 1 byte). NUL counts as broken. */
MOSQLITE_INTERNAL size_t mosqlite__utf8_seq(const unsigned char *s, size_t n, int *ok);

#endif
