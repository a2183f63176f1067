-- Extra tables for the tests, applied after conf/schema: every value type, a STRICT
-- table, a foreign key, a UNIQUE column, a generated column, a table with no key.
CREATE TABLE kinds (
    id INTEGER PRIMARY KEY,
    i  INTEGER,
    r  REAL,
    t  TEXT,
    b  BLOB,
    a  ANY,
    g  INTEGER GENERATED ALWAYS AS (i * 2) VIRTUAL
) STRICT;
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id));
CREATE TABLE uniq (k TEXT NOT NULL UNIQUE, v INTEGER);
CREATE TABLE nokey (x TEXT, y TEXT);
CREATE TABLE seq (producer INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (producer, n)) WITHOUT ROWID;
-- A conflict here rolls back the whole transaction, not just the statement.
CREATE TABLE rb (k TEXT UNIQUE ON CONFLICT ROLLBACK);
