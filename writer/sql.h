/* sql.h: the SQL text of a validated operation, and the cache of its prepared
 * statements.
 *
 * sql_build() turns a req_op into one statement: identifiers are the schema's quoted
 * names (never text from the request), every value is a numbered parameter bound in
 * order (values or set first, then where), and every statement ends in RETURNING *
 * so the rows it touched become the event:
 *
 *   insert  INSERT INTO "t" ("a","b") VALUES (?1,?2) RETURNING *
 *           (INSERT INTO "t" DEFAULT VALUES RETURNING * when values is {})
 *   upsert  INSERT ... ON CONFLICT ("k") DO UPDATE SET "b"=excluded."b" RETURNING *
 *           (every value outside the conflict target is set; with none, the first
 *           target column is set to itself so the row is still returned)
 *   update  UPDATE "t" SET "b"=?1 WHERE "k" IS ?2 RETURNING *
 *   delete  DELETE FROM "t" WHERE "k" IS ?1 RETURNING *
 *
 * `IS` rather than `=` so that where {"col": null} matches NULL.
 *
 * The cache holds statements by (op, table, the columns named): a producer sending
 * the same shape of request again reuses the prepared statement. */
#ifndef MOSQLITE_SQL_H
#define MOSQLITE_SQL_H

#include <sqlite3.h>

#include "jbuf.h"
#include "req.h"

/* Write the statement for op into b (b->len reset first; b->oom when out of memory). */
void sql_build(struct jbuf *b, const struct req_op *op);

struct sql_cache;

/* A cache preparing on connection h (which must outlive it). NULL when out of memory. */
struct sql_cache *sql_cache_new(sqlite3 *h);
/* Finalize every statement held, and free. Accepts NULL. */
void sql_cache_free(struct sql_cache *c);

/* The prepared statement for op, preparing it on a miss. NULL with SQLite's code in
 * *rc when preparing fails (e.g. an on_conflict that matches no index; its message is
 * sqlite3_errmsg() of the connection), or SQLITE_NOMEM. Hand the statement back with
 * sql_cache_done() once stepped. */
sqlite3_stmt *sql_cache_get(struct sql_cache *c, const struct req_op *op, int *rc);

/* Reset st and clear its bindings; finalize it if the cache could not keep it. */
void sql_cache_done(struct sql_cache *c, sqlite3_stmt *st);

/* How many statements the cache holds. */
int sql_cache_count(const struct sql_cache *c);

#endif
