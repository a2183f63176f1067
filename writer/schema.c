/* schema.c: migrations and schema introspection (see schema.h).
 *
 * Migrations are plain SQL files named NNN_name.sql. Each one above the database's
 * PRAGMA user_version runs inside its own transaction together with the statement
 * that raises user_version to NNN, so a failed migration leaves the database as it
 * was and the writer refuses to start, naming the file and SQLite's reason. */
#include "schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct migration {
    long long num;
    char *path;
};

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
        !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int user_version(sqlite3 *db, long long *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return -1;
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* One migration in its own transaction, which also sets user_version to its number. */
static int apply_migration(sqlite3 *db, const struct migration *m, char *err, size_t errlen)
{
    char *sql, *emsg = NULL, set[64];
    int rc = 0;

    if (!(sql = read_file(m->path, err, errlen)))
        return -1;
    snprintf(set, sizeof set, "PRAGMA user_version = %lld", m->num);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(db, set, NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", m->path, emsg ? emsg : sqlite3_errmsg(db));
        sqlite3_free(emsg);
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        rc = -1;
    }
    free(sql);
    return rc;
}

int schema_migrate(sqlite3 *db, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct migration *m = NULL;
    size_t n = 0, i;
    long long cur;
    int rc = -1;

    if (!d) {
        snprintf(err, errlen, "schema directory %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        char *end;
        long long num;
        struct migration *nm;

        if (len < 5 || strcmp(name + len - 4, ".sql"))
            continue;
        if (!isdigit((unsigned char)name[0]))
            continue;
        errno = 0;
        num = strtoll(name, &end, 10);
        if (errno || *end != '_' || num <= 0 || num > 2147483647) {
            snprintf(err, errlen, "%s/%s: migration files are named NNN_name.sql", dir, name);
            goto out;
        }
        nm = realloc(m, (n + 1) * sizeof *m);
        if (!nm)
            goto oom;
        m = nm;
        m[n].num = num;
        m[n].path = malloc(strlen(dir) + len + 2);
        if (!m[n].path)
            goto oom;
        sprintf(m[n].path, "%s/%s", dir, name);
        n++;
    }
    qsort(m, n, sizeof *m, cmp_migration);
    for (i = 1; i < n; i++)
        if (m[i].num == m[i - 1].num) {
            snprintf(err, errlen, "%s and %s have the same number", m[i - 1].path, m[i].path);
            goto out;
        }
    if (user_version(db, &cur)) {
        snprintf(err, errlen, "reading user_version: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (m[i].num <= cur)
            continue;
        if (apply_migration(db, &m[i], err, errlen))
            goto out;
        cur = m[i].num;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    closedir(d);
    for (i = 0; i < n; i++)
        free(m[i].path);
    free(m);
    return rc;
}

/* "name" with inner double quotes doubled; the caller frees. */
static char *quote_ident(const char *name)
{
    size_t n = 3;
    const char *p;
    char *q, *o;

    for (p = name; *p; p++)
        n += *p == '"' ? 2 : 1;
    if (!(q = malloc(n)))
        return NULL;
    o = q;
    *o++ = '"';
    for (p = name; *p; p++) {
        if (*p == '"')
            *o++ = '"';
        *o++ = *p;
    }
    *o++ = '"';
    *o = '\0';
    return q;
}

static int load_columns(sqlite3 *db, struct table *t)
{
    sqlite3_stmt *st;
    int rc, cap = 0, alias = -1;

    if (sqlite3_prepare_v2(db, "SELECT name, pk, hidden, upper(type) = 'INTEGER', instr(upper(type), 'INT') > 0 "
                           "FROM pragma_table_xinfo(?1)", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct column *c;
        int hidden = sqlite3_column_int(st, 2);
        if (hidden == 1)          /* a virtual table's hidden column */
            continue;
        if (t->ncols == cap) {
            struct column *nc;
            cap = cap ? cap * 2 : 8;
            nc = realloc(t->cols, (size_t)cap * sizeof *nc);
            if (!nc)
                break;
            t->cols = nc;
        }
        c = &t->cols[t->ncols];
        memset(c, 0, sizeof *c);
        c->name = strdup((const char *)sqlite3_column_text(st, 0));
        c->quoted = c->name ? quote_ident(c->name) : NULL;
        if (!c->quoted) {
            free(c->name);
            break;
        }
        c->pk = sqlite3_column_int(st, 1);
        c->generated = hidden == 2 || hidden == 3;
        c->int_affinity = sqlite3_column_int(st, 4);
        if (c->pk) {
            t->npk++;
            if (sqlite3_column_int(st, 3))
                alias = t->ncols;
        }
        t->ncols++;
    }
    sqlite3_finalize(st);
    t->rowid_col = t->rowid && t->npk == 1 ? alias : -1;
    return rc == SQLITE_DONE ? 0 : -1;
}

static int is_internal(const char *name)
{
    return !strncasecmp(name, "sqlite_", 7) || !strncasecmp(name, "mosqlite_", 9);
}

int schema_load(sqlite3 *db, const struct cfg_list *writable, struct schema *s,
                char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc, cap = 0;
    size_t i;

    memset(s, 0, sizeof *s);
    if (sqlite3_prepare_v2(db, "SELECT name, wr, strict FROM pragma_table_list "
                               "WHERE schema = 'main' AND type = 'table' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the schema: %s", sqlite3_errmsg(db));
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct table *t;
        if (s->ntables == cap) {
            struct table *nt;
            cap = cap ? cap * 2 : 8;
            nt = realloc(s->tables, (size_t)cap * sizeof *nt);
            if (!nt)
                break;
            s->tables = nt;
        }
        t = &s->tables[s->ntables];
        memset(t, 0, sizeof *t);
        t->name = strdup((const char *)sqlite3_column_text(st, 0));
        t->quoted = t->name ? quote_ident(t->name) : NULL;
        if (!t->quoted) {
            free(t->name);
            break;
        }
        s->ntables++;
        t->rowid = !sqlite3_column_int(st, 1);
        t->rowid_col = -1;
        t->strict = sqlite3_column_int(st, 2);
        t->writable = !is_internal(t->name) && !writable->n;
        if (load_columns(db, t)) {
            rc = SQLITE_ERROR;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading the schema: %s", sqlite3_errmsg(db));
        schema_free(s);
        return -1;
    }
    for (i = 0; i < writable->n; i++) {
        struct table *t = (struct table *)schema_table(s, writable->items[i]);
        if (!t) {
            snprintf(err, errlen, "tables: no table \"%s\" in the database", writable->items[i]);
            schema_free(s);
            return -1;
        }
        if (is_internal(t->name)) {
            snprintf(err, errlen, "tables: \"%s\" is internal and never writable", t->name);
            schema_free(s);
            return -1;
        }
        t->writable = 1;
    }
    return 0;
}

void schema_free(struct schema *s)
{
    int i, j;

    if (!s)
        return;
    for (i = 0; i < s->ntables; i++) {
        struct table *t = &s->tables[i];
        for (j = 0; j < t->ncols; j++) {
            free(t->cols[j].name);
            free(t->cols[j].quoted);
        }
        free(t->cols);
        free(t->name);
        free(t->quoted);
    }
    free(s->tables);
    memset(s, 0, sizeof *s);
}

const struct table *schema_table(const struct schema *s, const char *name)
{
    int i;

    for (i = 0; i < s->ntables; i++)
        if (!sqlite3_stricmp(s->tables[i].name, name))
            return &s->tables[i];
    return NULL;
}

int schema_column(const struct table *t, const char *name)
{
    int i;

    for (i = 0; i < t->ncols; i++)
        if (!sqlite3_stricmp(t->cols[i].name, name))
            return i;
    return -1;
}
