/* retain.c: retention, rows older than an age deleted in small steps (see retain.h).
 *
 * Why a cursor: a step examines at most `batch` rows and goes on from where the last
 * one stopped, so its length is bounded whatever the table holds: rows kept because
 * their time is not one (NULL, text that is not a date) are passed once per pass, not
 * read again at every step. With an index on the column the cursor is (COLUMN, rowid)
 * in index order and every row examined is below the cut-off; without one it is the
 * rowid, and a pass reads the whole table.
 *
 * Why each step is sealed (changes_seal) before its COMMIT: a replica applies the
 * writer's commits by their sequence numbers. A prune left unsealed would ride on the
 * next batch's changeset, and be lost to the replicas if the writer stopped before
 * that batch. */
#include "retain.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define REST_MIN_MS     1000                 /* between two passes: AGE/100, within these */
#define REST_MAX_MS     60000
#define AGE_MAX_MS      (100LL * 366 * 86400 * 1000)
#define SQL_MAX         2048

struct spec {
    struct retain_spec s;
    const char *at;                 /* FILE:LINE, or NULL */
    int indexed;                    /* the step reads the column's index */
    sqlite3_stmt *first, *next;     /* the step's SELECT: from the start, after the cursor */
    sqlite3_stmt *del;              /* DELETE ... WHERE rowid = ?1 */
    /* the pass under way */
    int in_pass;
    long long next_pass_ms;         /* monotonic */
    long long cut_ms;               /* wall clock: rows before it go */
    char cut_text[UTIL_TIME_LEN];
    int started;                    /* the cursor is set */
    sqlite3_value *cur_val;         /* indexed: the column's value of the last row examined */
    long long cur_rowid;
    long long deleted, steps, examined;
    double longest_ms;
    long long pass_t0;
};

struct retain {
    struct db *db;
    struct changes *changes;
    sqlite3 *h;
    struct retain_opts o;
    struct spec *specs;
    int n, cur;
    long long *ids;                 /* the rowids a step deletes */
    long long last_step_ms;
};

/* --- the lines --------------------------------------------------------------------- */

int retain_duration(const char *s, long long *ms)
{
    long long v = 0, unit;
    const char *p = s;

    if (!s || !isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > AGE_MAX_MS / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    switch (*p) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 86400 * 1000; break;
    default: return -1;
    }
    if (p[1] || v < 1 || v > AGE_MAX_MS / unit)
        return -1;
    *ms = v * unit;
    return 0;
}

void retain_spec_free(struct retain_spec *s)
{
    free(s->table);
    free(s->column);
    s->table = s->column = NULL;
}

int retain_parse(const char *line, struct retain_spec *out, char *err, size_t errlen)
{
    char *copy = strdup(line), *w[5], *save = NULL, *tok;
    int n = 0;

    memset(out, 0, sizeof *out);
    if (!copy)
        return util_fail(err, errlen, "out of memory");
    for (tok = strtok_r(copy, " \t", &save); tok && n < 5; tok = strtok_r(NULL, " \t", &save))
        w[n++] = tok;
    if (n < 3 || n > 4) {
        util_fail(err, errlen, "retain: want TABLE COLUMN AGE [s|ms], got \"%.200s\"", line);
        goto fail;
    }
    if (retain_duration(w[2], &out->age_ms)) {
        util_fail(err, errlen, "retain: age \"%.40s\" is not a whole number of days, hours, minutes or "
                  "seconds from 1s to 100 years (30d, 12h, 90m, 45s)", w[2]);
        goto fail;
    }
    out->unit = RETAIN_TEXT;
    if (n == 4) {
        if (!strcmp(w[3], "s"))
            out->unit = RETAIN_S;
        else if (!strcmp(w[3], "ms"))
            out->unit = RETAIN_MS;
        else {
            util_fail(err, errlen, "retain: unit \"%.40s\" is not s or ms (the unit of a numeric "
                      "time column)", w[3]);
            goto fail;
        }
    }
    if (!(out->table = strdup(w[0])) || !(out->column = strdup(w[1]))) {
        retain_spec_free(out);
        util_fail(err, errlen, "out of memory");
        goto fail;
    }
    free(copy);
    return 0;
fail:
    free(copy);
    return -1;
}

static int fail_at(char *err, size_t errlen, const char *at, const char *why)
{
    return util_fail(err, errlen, "%s%s%s", at ? at : "", at ? ": " : "", why);
}

int retain_check(const struct cfg_list *lines, char *err, size_t errlen)
{
    struct retain_spec a, b;
    char why[512];
    size_t i, j;

    for (i = 0; i < lines->n; i++) {
        const char *at = cfg_list_origin(lines, i);
        if (retain_parse(lines->items[i], &a, why, sizeof why))
            return fail_at(err, errlen, at, why);
        for (j = 0; j < i; j++) {
            if (retain_parse(lines->items[j], &b, why, sizeof why))
                continue;
            if (!strcasecmp(a.table, b.table) && !strcasecmp(a.column, b.column)) {
                const char *first = cfg_list_origin(lines, j);
                snprintf(why, sizeof why, "retain: %.100s %.100s is retained already%s%s", a.table,
                         a.column, first ? " at " : "", first ? first : "");
                retain_spec_free(&a);
                retain_spec_free(&b);
                return fail_at(err, errlen, at, why);
            }
            retain_spec_free(&b);
        }
        retain_spec_free(&a);
    }
    return 0;
}

/* --- against the schema -------------------------------------------------------------- */

/* SQLite's affinity of a declared type (https://sqlite.org/datatype3.html, 3.1). */
enum aff { AFF_INT, AFF_TEXT, AFF_BLOB, AFF_REAL, AFF_NUMERIC };

static int has(const char *type, const char *word)
{
    size_t n = strlen(word);
    const char *p;

    for (p = type; *p; p++)
        if (!strncasecmp(p, word, n))
            return 1;
    return 0;
}

static enum aff affinity(const char *type)
{
    if (has(type, "INT"))
        return AFF_INT;
    if (has(type, "CHAR") || has(type, "CLOB") || has(type, "TEXT"))
        return AFF_TEXT;
    if (!*type || has(type, "BLOB"))
        return AFF_BLOB;
    if (has(type, "REAL") || has(type, "FLOA") || has(type, "DOUB"))
        return AFF_REAL;
    return AFF_NUMERIC;
}

/* The declared type of t.c: 0, or -1 with SQLite's message. */
static int declared_type(sqlite3 *h, const struct table *t, const struct column *c, char *type,
                         size_t n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(h, "SELECT type FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        util_fail(err, errlen, "reading the columns of %s: %s", t->name, sqlite3_errmsg(h));
        sqlite3_finalize(st);
        return -1;
    }
    snprintf(type, n, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
    sqlite3_finalize(st);
    return 0;
}

/* Does the query plan of st read an index (and sort nothing)? */
static int plan_uses_index(sqlite3 *h, sqlite3_stmt *st)
{
    sqlite3_stmt *eqp = NULL;
    char *sql = util_join("EXPLAIN QUERY PLAN ", sqlite3_sql(st));
    int index = 0, sorts = 0;

    if (sql && sqlite3_prepare_v2(h, sql, -1, &eqp, NULL) == SQLITE_OK)
        while (sqlite3_step(eqp) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(eqp, 3);
            if (d && strstr(d, " INDEX "))
                index = 1;
            if (d && strstr(d, "TEMP B-TREE"))
                sorts = 1;
        }
    sqlite3_finalize(eqp);
    free(sql);
    return index && !sorts;
}

static sqlite3_stmt *prepare(sqlite3 *h, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v3(h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        util_fail(err, errlen, "preparing %s: %s", sql, sqlite3_errmsg(h));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* The statements of one line: ?1 the cut-off, ?2 as a Julian day (text times), ?3 the
 * rows a step examines, ?4 and ?5 the cursor (column value, rowid). Each SELECT
 * returns rowid, the column, and whether the row is old. */
static int prepare_spec(struct retain *r, struct spec *p, const struct table *t, int col,
                        char *err, size_t errlen)
{
    static const char *const rowid_names[] = {"rowid", "_rowid_", "oid", NULL};
    const char *q = t->cols[col].quoted, *rid = NULL;
    char sql[SQL_MAX], old[512];
    int i;

    for (i = 0; rowid_names[i] && !rid; i++)
        if (schema_column(t, rowid_names[i]) < 0)
            rid = rowid_names[i];
    if (!rid) {
        snprintf(old, sizeof old, "retain: table \"%s\" has columns named rowid, _rowid_ and oid: "
                 "retention cannot name its rows", t->name);
        return fail_at(err, errlen, p->at, old);
    }
    if (p->s.unit == RETAIN_TEXT)
        snprintf(old, sizeof old, "julianday(%s) < ?2", q);
    else
        snprintf(old, sizeof old, "1");
    /* Try the column's index first. */
    snprintf(sql, sizeof sql, "SELECT %s, %s, %s FROM %s WHERE %s < ?1 ORDER BY %s, %s LIMIT ?3",
             rid, q, old, t->quoted, q, q, rid);
    if (!(p->first = prepare(r->h, sql, err, errlen)))
        return -1;
    p->indexed = plan_uses_index(r->h, p->first);
    if (p->indexed) {
        snprintf(sql, sizeof sql, "SELECT %s, %s, %s FROM %s WHERE %s < ?1 AND (%s, %s) > (?4, ?5) "
                 "ORDER BY %s, %s LIMIT ?3", rid, q, old, t->quoted, q, q, rid, q, rid);
        if (!(p->next = prepare(r->h, sql, err, errlen)))
            return -1;
        p->indexed = plan_uses_index(r->h, p->next);
    }
    if (!p->indexed) {
        sqlite3_finalize(p->first);
        sqlite3_finalize(p->next);
        p->first = p->next = NULL;
        if (p->s.unit == RETAIN_TEXT)
            snprintf(old, sizeof old, "(%s < ?1 AND julianday(%s) < ?2)", q, q);
        else
            snprintf(old, sizeof old, "(%s < ?1)", q);
        snprintf(sql, sizeof sql, "SELECT %s, NULL, %s FROM %s WHERE %s > ?5 ORDER BY %s LIMIT ?3",
                 rid, old, t->quoted, rid, rid);
        if (!(p->next = prepare(r->h, sql, err, errlen)))
            return -1;
        log_warn("%s%sretain %s %s: the column has no index: each pass reads the whole table "
                 "(CREATE INDEX ... ON %s (%s) in a migration makes it read only the old rows)",
                 p->at ? p->at : "", p->at ? ": " : "", t->name, t->cols[col].name, t->name,
                 t->cols[col].name);
    }
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE %s = ?1", t->quoted, rid);
    return (p->del = prepare(r->h, sql, err, errlen)) ? 0 : -1;
}

/* One line against the schema. */
static int open_spec(struct retain *r, struct spec *p, char *err, size_t errlen)
{
    const struct table *t = schema_table(db_schema(r->db), p->s.table);
    char why[512], type[128];
    int col;
    enum aff a;

    if (!t) {
        snprintf(why, sizeof why, "retain: no table \"%s\" in the database", p->s.table);
        return fail_at(err, errlen, p->at, why);
    }
    if (!strncasecmp(t->name, "mosqlite_", 9) || !strncasecmp(t->name, "sqlite_", 7)) {
        snprintf(why, sizeof why, "retain: \"%s\" is internal: the writer keeps it itself", t->name);
        return fail_at(err, errlen, p->at, why);
    }
    if (!t->rowid) {
        snprintf(why, sizeof why, "retain: table \"%s\" is WITHOUT ROWID: retention deletes by rowid",
                 t->name);
        return fail_at(err, errlen, p->at, why);
    }
    if ((col = schema_column(t, p->s.column)) < 0) {
        snprintf(why, sizeof why, "retain: table \"%s\" has no column \"%s\"", t->name, p->s.column);
        return fail_at(err, errlen, p->at, why);
    }
    if (declared_type(r->h, t, &t->cols[col], type, sizeof type, err, errlen))
        return -1;
    a = affinity(type);
    if (a == AFF_BLOB)
        snprintf(why, sizeof why, "retain: column \"%s\" of \"%s\" has %s%s%s: a time column is TEXT "
                 "(RFC 3339 in UTC) or INTEGER (Unix time, s or ms)", t->cols[col].name, t->name,
                 *type ? "the type " : "no declared type", type, "");
    else if (a == AFF_TEXT && p->s.unit != RETAIN_TEXT)
        snprintf(why, sizeof why, "retain: column \"%s\" of \"%s\" is %s, read as RFC 3339 text: "
                 "give no unit", t->cols[col].name, t->name, type);
    else if (a != AFF_TEXT && p->s.unit == RETAIN_TEXT)
        snprintf(why, sizeof why, "retain: column \"%s\" of \"%s\" is %s, a number: give its unit "
                 "after the age, s or ms (Unix time in seconds or milliseconds)", t->cols[col].name,
                 t->name, type);
    else
        why[0] = '\0';
    if (why[0])
        return fail_at(err, errlen, p->at, why);
    return prepare_spec(r, p, t, col, err, errlen);
}

struct retain *retain_open(struct db *db, struct changes *changes, const struct retain_opts *o,
                           char *err, size_t errlen)
{
    struct retain *r;
    long long now = util_now_ms();
    size_t i;

    err[0] = '\0';
    if (!o->lines->n)
        return NULL;
    if (!(r = calloc(1, sizeof *r)) || !(r->specs = calloc(o->lines->n, sizeof *r->specs)) ||
        !(r->ids = calloc((size_t)o->batch, sizeof *r->ids))) {
        util_fail(err, errlen, "out of memory");
        retain_free(r);
        return NULL;
    }
    r->db = db;
    r->changes = changes;
    r->h = db_handle(db);
    r->o = *o;
    db_trust(db, 1);                 /* pragma_table_info, EXPLAIN */
    for (i = 0; i < o->lines->n; i++) {
        struct spec *p = &r->specs[r->n];
        p->at = cfg_list_origin(o->lines, i);
        if (retain_parse(o->lines->items[i], &p->s, err, errlen)) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            fail_at(err, errlen, p->at, why);
            break;
        }
        r->n++;
        if (open_spec(r, p, err, errlen))
            break;
        p->next_pass_ms = now;
        log_info("retain %s: %lld rows a step, %s", o->lines->items[i], o->batch,
                 p->indexed ? "by the column's index" : "reading the table by rowid");
    }
    db_trust(db, 0);
    if (i < o->lines->n) {
        retain_free(r);
        return NULL;
    }
    return r;
}

void retain_free(struct retain *r)
{
    int i;

    if (!r)
        return;
    for (i = 0; i < r->n; i++) {
        struct spec *p = &r->specs[i];
        sqlite3_finalize(p->first);
        sqlite3_finalize(p->next);
        sqlite3_finalize(p->del);
        sqlite3_value_free(p->cur_val);
        retain_spec_free(&p->s);
    }
    free(r->specs);
    free(r->ids);
    free(r);
}

/* --- pruning ----------------------------------------------------------------------------- */

static int exec(struct retain *r, const char *sql)
{
    return sqlite3_exec(r->h, sql, NULL, NULL, NULL);
}

static void pass_start(struct spec *p)
{
    p->in_pass = 1;
    p->cut_ms = util_wall_ms() - p->s.age_ms;
    util_time_format(p->cut_ms, p->cut_text);
    p->started = 0;
    sqlite3_value_free(p->cur_val);
    p->cur_val = NULL;
    p->cur_rowid = 0;
    p->deleted = p->steps = p->examined = 0;
    p->longest_ms = 0;
    p->pass_t0 = util_now_ms();
}

static void pass_end(struct spec *p, long long now)
{
    long long rest = p->s.age_ms / 100;

    if (p->deleted)
        log_info("retain %s %s: %lld rows before %s deleted in %lld steps (%lld rows examined), "
                 "%lld ms, longest step %.1f ms", p->s.table, p->s.column, p->deleted, p->cut_text,
                 p->steps, p->examined, now - p->pass_t0, p->longest_ms);
    p->in_pass = 0;
    p->next_pass_ms = now + (rest < REST_MIN_MS ? REST_MIN_MS : rest > REST_MAX_MS ? REST_MAX_MS : rest);
}

/* The step's SELECT, bound. */
static sqlite3_stmt *select_for(struct retain *r, struct spec *p)
{
    sqlite3_stmt *st = p->indexed && !p->started ? p->first : p->next;

    if (p->s.unit == RETAIN_TEXT) {
        sqlite3_bind_text(st, 1, p->cut_text, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, (double)p->cut_ms / 86400000.0 + 2440587.5);
    } else {
        sqlite3_bind_int64(st, 1, p->s.unit == RETAIN_MS ? p->cut_ms : p->cut_ms / 1000);
    }
    sqlite3_bind_int64(st, 3, r->o.batch);
    if (p->indexed && p->started)
        sqlite3_bind_value(st, 4, p->cur_val);
    sqlite3_bind_int64(st, 5, p->started ? p->cur_rowid : (long long)(-9223372036854775807LL - 1));
    return st;
}

/* One step of p's pass: 1 when the pass goes on, 0 when it is over, -1 on a fault
 * (rolled back, the reason in err). */
static int step(struct retain *r, struct spec *p, struct mq *mq, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    long long n = 0, k = 0, i;
    int rc;

    if ((rc = exec(r, "BEGIN IMMEDIATE")) != SQLITE_OK)
        return util_fail(err, errlen, "%s", sqlite3_errmsg(r->h));
    st = select_for(r, p);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        p->cur_rowid = sqlite3_column_int64(st, 0);
        if (p->indexed) {
            sqlite3_value_free(p->cur_val);
            p->cur_val = sqlite3_value_dup(sqlite3_column_value(st, 1));
        }
        if (sqlite3_column_int(st, 2))
            r->ids[k++] = p->cur_rowid;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE || (p->indexed && n && !p->cur_val)) {
        util_fail(err, errlen, "%s", rc != SQLITE_DONE ? sqlite3_errmsg(r->h) : "out of memory");
        goto undo;
    }
    p->started = 1;
    for (i = 0; i < k; i++) {
        sqlite3_bind_int64(p->del, 1, r->ids[i]);
        rc = sqlite3_step(p->del);
        sqlite3_reset(p->del);
        if (rc != SQLITE_DONE) {
            util_fail(err, errlen, "deleting rowid %lld: %s", r->ids[i], sqlite3_errmsg(r->h));
            goto undo;
        }
    }
    if (!k) {
        exec(r, "ROLLBACK");        /* nothing written: no commit, no sequence number */
    } else {
        if (changes_seal(r->changes, err, errlen))
            goto undo;
        if ((rc = exec(r, "COMMIT")) != SQLITE_OK) {
            util_fail(err, errlen, "%s", sqlite3_errmsg(r->h));
            goto undo;
        }
        changes_publish(r->changes, mq);
    }
    p->examined += n;
    p->deleted += k;
    return n == r->o.batch;
undo:
    if (!sqlite3_get_autocommit(r->h))
        exec(r, "ROLLBACK");
    return -1;
}

/* The next line whose pass is under way or due, from r->cur on, or NULL. */
static struct spec *due(const struct retain *r, long long now, int *at)
{
    int i;

    for (i = 0; i < r->n; i++) {
        int k = (r->cur + i) % r->n;
        if (r->specs[k].in_pass || r->specs[k].next_pass_ms <= now) {
            *at = k;
            return &r->specs[k];
        }
    }
    return NULL;
}

void retain_tick(struct retain *r, struct mq *mq, int waiting, int blocked)
{
    char err[512];
    struct spec *p;
    long long now;
    double t0;
    int k, rc;

    if (!r || blocked)
        return;
    now = util_now_ms();
    if (waiting && now - r->last_step_ms < r->o.every_ms)
        return;
    if (!(p = due(r, now, &k)))
        return;
    if (!p->in_pass)
        pass_start(p);
    t0 = util_now_exact_ms();
    rc = step(r, p, mq, err, sizeof err);
    t0 = util_now_exact_ms() - t0;
    p->steps++;
    if (t0 > p->longest_ms)
        p->longest_ms = t0;
    r->last_step_ms = now = util_now_ms();
    r->cur = (k + 1) % r->n;         /* the lines take turns */
    if (rc < 0)
        log_warn("retain %s %s: %s; trying again in the next pass", p->s.table, p->s.column, err);
    if (rc <= 0)
        pass_end(p, now);
}

int retain_wait_ms(const struct retain *r, int max_ms, int blocked)
{
    long long now, wait = max_ms;
    int i;

    if (!r || blocked)
        return max_ms;
    now = util_now_ms();
    for (i = 0; i < r->n; i++) {
        const struct spec *p = &r->specs[i];
        long long w = p->in_pass ? 0 : p->next_pass_ms - now;
        if (w < wait)
            wait = w < 0 ? 0 : w;
    }
    return (int)wait;
}
