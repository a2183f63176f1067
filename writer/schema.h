/* schema.h: what the database looks like, read once at start after the migrations.
 *
 * Table and column names that reach SQL come only from here, never from a request:
 * a request names a table or column, the validator looks it up in this structure, and
 * the SQL is built from the stored, quoted name. */
#ifndef MOSQLITE_SCHEMA_H
#define MOSQLITE_SCHEMA_H

#include <sqlite3.h>
#include <stddef.h>

#include "cfg.h"

struct column {
    char *name;          /* as declared */
    char *quoted;        /* "name" with inner quotes doubled, ready for SQL */
    int pk;              /* position in the primary key (1-based), 0 if not in it */
    int generated;       /* a generated column: never written */
    int int_affinity;    /* INTEGER affinity (its declared type contains "INT") */
};

struct table {
    char *name;
    char *quoted;
    struct column *cols;
    int ncols;
    int npk;             /* columns in the declared primary key */
    int rowid;           /* 1 unless WITHOUT ROWID */
    int strict;
    int rowid_col;       /* the INTEGER PRIMARY KEY column aliasing rowid, or -1 */
    int writable;        /* 0 for sqlite_*, mosqlite_*, and tables outside `tables` */
};

struct schema {
    struct table *tables;
    int ntables;
};

/* Apply the migrations NNN_name.sql in dir whose number is above PRAGMA user_version,
 * in order, each in its own transaction that also sets user_version. 0 or -1 + err. */
int schema_migrate(sqlite3 *db, const char *dir, char *err, size_t errlen);

/* Read every table of the main database. `writable` narrows the writable set when it
 * has items (each must name an existing table). 0 or -1 + err. */
int schema_load(sqlite3 *db, const struct cfg_list *writable, struct schema *s,
                char *err, size_t errlen);

void schema_free(struct schema *s);

/* Case-insensitive lookups, as SQLite resolves names. NULL / -1 when absent. */
const struct table *schema_table(const struct schema *s, const char *name);
int schema_column(const struct table *t, const char *name);

#endif
