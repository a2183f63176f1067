/* val.c: JSON values bound to SQLite, and SQLite rows written as JSON (see val.h). */
#include "val.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "req.h"
#include "util.h"

/* {"$base64": "..."}: already checked by req_parse for requests; a query parameter
 * that is not valid base64 binds an empty blob. */
static int bind_blob(sqlite3_stmt *st, int i, const char *b64)
{
    size_t n = strlen(b64);
    unsigned char *p = malloc(n / 4 * 3 + 3);
    long len;

    if (!p)
        return SQLITE_NOMEM;
    len = req_base64_decode(b64, n, p);
    return sqlite3_bind_blob64(st, i, p, (sqlite3_uint64)(len < 0 ? 0 : len), free);
}

int val_bind(sqlite3_stmt *st, int i, const cJSON *v)
{
    const char *b64;
    char *json;

    if (cJSON_IsString(v))
        return sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_STATIC);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* A literal with a fraction or an exponent is a REAL (json.c marks it). */
        if (!(v->type & JSON_REAL) && d == floor(d) && fabs(d) <= (double)UTIL_EXACT_INT)
            return sqlite3_bind_int64(st, i, (sqlite3_int64)d);
        return sqlite3_bind_double(st, i, d);
    }
    if (cJSON_IsTrue(v))
        return sqlite3_bind_int(st, i, 1);
    if (cJSON_IsFalse(v))
        return sqlite3_bind_int(st, i, 0);
    if (cJSON_IsNull(v))
        return sqlite3_bind_null(st, i);
    if ((b64 = req_blob_text(v)))
        return bind_blob(st, i, b64);
    /* An object or an array: its JSON text, every value as it was sent (json.h). */
    if (!(json = json_text(v)))
        return SQLITE_NOMEM;
    return sqlite3_bind_text(st, i, json, -1, free);
}

void val_row_json(struct jbuf *b, sqlite3_stmt *st)
{
    int i, n = sqlite3_column_count(st);

    jb_putc(b, '{');
    for (i = 0; i < n; i++) {
        if (i)
            jb_putc(b, ',');
        jb_cstr(b, sqlite3_column_name(st, i));
        jb_putc(b, ':');
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            jb_int(b, sqlite3_column_int64(st, i));
            break;
        case SQLITE_FLOAT:
            jb_double(b, sqlite3_column_double(st, i));
            break;
        case SQLITE_TEXT:
            jb_str(b, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
            break;
        case SQLITE_BLOB:
            jb_base64(b, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
            break;
        default:
            jb_puts(b, "null");
        }
    }
    jb_putc(b, '}');
}
