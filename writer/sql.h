/* sql.h: the SQL text of a validated operation, and the cache of its prepared
 * statements.
 *
 * sql_build() turns a req_op into one statement: identifiers are the schema's quoted
 * names (never text from the request), every value is a numbered parameter bound in
 * order (values or set first, then where). An insert, upsert or update returns the key
 * of each row it wrote (the rowid, or the primary key of a WITHOUT ROWID table): RETURNING
 * shows a row before AFTER triggers run, so db_apply.c reads each row back by its key once
 * the statement is done (sql_build_read), as it is in the file. A delete returns the
 * whole rows, as they were:
 *
 *   insert  INSERT INTO "t" ("a","b") VALUES (?1,?2) RETURNING "id"
 *           (INSERT INTO "t" DEFAULT VALUES RETURNING "id" when values is {})
 *   upsert  INSERT ... ON CONFLICT ("k") DO UPDATE SET "b"=excluded."b" RETURNING "id"
 *           (every value outside the conflict target is set; with none, the first
 *           target column is set to itself so the row is still returned)
 *   update  UPDATE "t" SET "b"=?1 WHERE "k" IS ?2 RETURNING "id"
 *   delete  DELETE FROM "t" WHERE "k" IS ?1 RETURNING *
 *   read    SELECT * FROM "t" WHERE "id" = ?1   (or rowid, or "k1" = ?1 AND "k2" = ?2)
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

/* 1 when op is a plain INSERT into a rowid table. Its statement in the cache has no
 * RETURNING (SQLite collects RETURNING rows in a temporary b-tree opened and closed
 * for every statement run): the row it wrote, if any (sqlite3_changes() is 1), is
 * sqlite3_last_insert_rowid(), which triggers do not change. */
int sql_plain_insert(const struct req_op *op);

/* The columns of a table's key (1 for a rowid table), and the statement reading one
 * row by them, bound ?1.. in key order. */
int sql_key_count(const struct table *t);
void sql_build_read(struct jbuf *b, const struct table *t);

struct sql_cache;

/* A cache preparing on connection h (which must outlive it). NULL when out of memory. */
struct sql_cache *sql_cache_new(sqlite3 *h);
/* Finalize every statement held, and free. Accepts NULL. */
void sql_cache_free(struct sql_cache *c);

/* The prepared statement for op (sql_build's, without RETURNING when
 * sql_plain_insert), preparing it on a miss. NULL with SQLite's code in
 * *rc when preparing fails (e.g. an on_conflict that matches no index; its message is
 * sqlite3_errmsg() of the connection), or SQLITE_NOMEM. Hand the statement back with
 * sql_cache_done() once stepped. */
sqlite3_stmt *sql_cache_get(struct sql_cache *c, const struct req_op *op, int *rc);

/* Reset st and clear its bindings; finalize it if the cache could not keep it. */
void sql_cache_done(struct sql_cache *c, sqlite3_stmt *st);

/* How many statements the cache holds. */
int sql_cache_count(const struct sql_cache *c);

#endif
