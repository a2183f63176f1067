/* val.h: values between JSON and SQLite, the one mapping the writer and the named
 * queries share.
 *
 * JSON to SQLite (binding a request's value or a query's parameter): a string is
 * TEXT; a number that is a whole number within +-2^53 is INTEGER, any other number
 * REAL; true and false are 1 and 0; null is NULL; {"$base64": "..."} is a BLOB;
 * any other object or array is bound as its JSON text.
 *
 * SQLite to JSON (a returned row, for events and query answers): INTEGER as a number
 * (a string beyond +-2^53, see jbuf.h), REAL as a number (null when not finite), TEXT
 * as a string, BLOB as {"$base64": "..."}, NULL as null. */
#ifndef MOSQLITE_VAL_H
#define MOSQLITE_VAL_H

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "jbuf.h"

/* Bind v to parameter i of st. SQLite's result code (SQLITE_NOMEM when a copy could
 * not be made). The statement keeps no pointer into v beyond the next step: strings
 * are bound SQLITE_STATIC, so v must live until then. */
int val_bind(sqlite3_stmt *st, int i, const cJSON *v);

/* Append the current row of a stepped statement as one JSON object, keyed by the
 * column names. */
void val_row_json(struct jbuf *b, sqlite3_stmt *st);

#endif
