/* json.h: the strict JSON reader every payload of the writer goes through: write
 * requests (req.c) and control messages (ctl.c). Pure: bytes in, a cJSON tree or the
 * exact error text out.
 *
 * cJSON alone is lenient where the writer must not be: it cuts a string at \u0000,
 * takes 012, 1. and 1e999 (as +Inf), keeps both values of a key given twice and
 * silently rounds integers beyond 2^53. So before cJSON parses, one pass over the raw
 * bytes checks the size, UTF-8, the nesting depth, \u0000 and raw NUL, control
 * characters in strings and every number against RFC 8259's grammar; after it, every
 * object is checked for duplicate keys and each number literal with a fraction or an
 * exponent is marked JSON_REAL (it binds as a REAL: 3.0, 1E2, -0.0). */
#ifndef MOSQLITE_JSON_H
#define MOSQLITE_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Set in a number's cJSON type (beside cJSON_Number, which cJSON_IsNumber still sees)
 * when its literal had a fraction or an exponent. */
#define JSON_REAL 0x1000

/* Per number literal, in document order: 1 if it had a fraction or an exponent.
 * Storage reused from one payload to the next; json_nums_free at the end. */
struct json_nums {
    unsigned char *real;
    int n, cap;
};

/* The bytes and the JSON: size (at most max_payload), the raw scan (max_depth levels),
 * cJSON's parse, nothing after the value but blanks, one object ("WHAT must be a JSON
 * object"). A raw-scan error is put in err and *scan_err set, and the parse still goes
 * on (so that the caller can read the envelope to answer it), but on a copy in which
 * every NUL (raw or \u0000 in a string) is U+0001, so that no string is cut short:
 * such a string is then refused wherever a topic or a name is checked. 0, or -1 with
 * the reason in err when there is no object to read. *root is the caller's to free. */
int json_parse(cJSON **root, struct json_nums *nums, size_t max_payload, int max_depth,
               const char *payload, size_t len, const char *what, int *scan_err,
               char *err, size_t errlen);

/* Refuse an object that has the same key twice: "duplicate key "K" in WHAT". */
int json_dup_keys(const cJSON *obj, const char *what, char *err, size_t errlen);

/* After a json_parse without error: every object of the tree without duplicate keys,
 * each number marked JSON_REAL as the scan noted. 0, or -1 with the reason in err. */
int json_mark(cJSON *root, const struct json_nums *nums, char *err, size_t errlen);

/* json_parse, the scan's error, duplicate keys in the top object ("the request"),
 * json_mark: the whole strict read of one object. 0, or -1 with the reason in err;
 * *root may be set even then (a tree that parsed, for reading where to answer). */
int json_read(cJSON **root, struct json_nums *nums, size_t max_payload, int max_depth,
              const char *payload, size_t len, char *err, size_t errlen);

/* "a string", "a number", "a boolean", "null", "an array", "an object". */
const char *json_type_name(const cJSON *v);

void json_nums_free(struct json_nums *nums);

struct jbuf;

/* A value read by json_read, written back as JSON text with every value as it was
 * given: a number marked JSON_REAL as a REAL (1.0 stays 1.0, never 1), an integer as
 * the integer (exact to 2^53, which the reader holds it to), strings escaped. cJSON's
 * own printer rounds to 15 digits and drops the fraction of an integral REAL: stored
 * JSON (a nested value bound as text, a job's payload) must not change what was sent. */
void json_print(struct jbuf *b, const cJSON *v);

/* json_print into a string of its own (free()), or NULL when out of memory. */
char *json_text(const cJSON *v);

#endif
