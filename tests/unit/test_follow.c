/* test_follow.c: the replica's logic (replica/follow.c, replica/store.c) on real files,
 * with changesets made here the way the writer makes them (a session, mosqlite_seq
 * raised in the same transaction): copies dropped, changes applied in order, a gap
 * found, a conflict refused. No broker. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "follow.h"
#include "store.h"
#include "unit.h"

#define NCH 4
static char *msg[NCH + 1];
static size_t msglen[NCH + 1];

static void exec(sqlite3 *h, const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &e) != SQLITE_OK)
        unit_check(0, "follow: setup: %s: %s", sql, e ? e : "?");
    sqlite3_free(e);
}

/* Commit k of the source: one row change and the sequence, as one changeset message. */
static void commit(sqlite3 *h, int k, const char *sql)
{
    sqlite3_session *s;
    char head[160], up[64];
    void *cs;
    int n = 0, hl;

    sqlite3session_create(h, "main", &s);
    sqlite3session_attach(s, NULL);
    exec(h, "BEGIN");
    exec(h, sql);
    snprintf(up, sizeof up, "UPDATE mosqlite_seq SET seq = %d", k);
    exec(h, up);
    sqlite3session_changeset(s, &n, &cs);
    exec(h, "COMMIT");
    sqlite3session_delete(s);
    hl = snprintf(head, sizeof head, "{\"seq\":%d,\"prev\":%d,\"db\":\"d1\",\"schema\":0,\"at\":0}\n", k, k - 1);
    msg[k] = malloc((size_t)hl + (size_t)n);
    memcpy(msg[k], head, (size_t)hl);
    memcpy(msg[k] + hl, cs, (size_t)n);
    msglen[k] = (size_t)hl + (size_t)n;
    sqlite3_free(cs);
}

static const char *value(const char *path, const char *sql)
{
    static char out[128];
    sqlite3 *h;
    sqlite3_stmt *st;

    out[0] = '\0';
    sqlite3_open(path, &h);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof out, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "NULL");
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static struct follow *replica(const char *path, struct store **st)
{
    char err[256], *tmp = unit_path("incoming");
    struct follow *f;

    *st = store_open(path, "OFF", err, sizeof err);
    unit_check(*st != NULL, "follow: store_open %s", *st ? path : err);
    f = follow_new(*st, tmp, 0);
    free(tmp);
    return f;
}

void test_follow(void)
{
    char *src = unit_path("src.db"), *r1 = unit_path("r1.db"), *r2 = unit_path("r2.db"), sql[600];
    struct store *s1, *s2;
    struct follow *f1, *f2;
    sqlite3 *h;
    int k;

    sqlite3_open(src, &h);
    exec(h, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
            "CREATE TABLE mosqlite_seq (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, db TEXT NOT NULL);"
            "INSERT INTO mosqlite_seq VALUES (1, 0, 'd1')");
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'; VACUUM INTO '%s'", r1, r2);
    exec(h, sql);
    commit(h, 1, "INSERT INTO t VALUES (1, 'one')");
    commit(h, 2, "INSERT INTO t VALUES (2, 'two')");
    commit(h, 3, "UPDATE t SET v = 'uno' WHERE id = 1");
    commit(h, 4, "INSERT INTO t VALUES (4, 'four')");
    sqlite3_close(h);

    /* In order, with a copy of the first: applied once each. */
    f1 = replica(r1, &s1);
    unit_check_str(follow_state(f1), "following", "follow: a file with a position follows");
    follow_change(f1, msg[1], msglen[1]);
    follow_change(f1, msg[1], msglen[1]);
    follow_change(f1, msg[2], msglen[2]);
    follow_step(f1, 0);
    unit_check(store_pos(s1)->seq == 2, "follow: changes 1, 1 again, 2: position 2 (got %lld)", store_pos(s1)->seq);
    unit_check_str(value(r1, "SELECT group_concat(v) FROM t"), "one,two", "follow: the rows, once");
    unit_check(follow_pending(f1) == 0, "follow: nothing pending");

    /* A row changed behind the replica's back: the next change on it is refused. */
    sqlite3_open(r1, &h);
    exec(h, "UPDATE t SET v = 'mine' WHERE id = 1");
    sqlite3_close(h);
    follow_change(f1, msg[3], msglen[3]);
    follow_step(f1, 0);
    unit_check_str(follow_state(f1), "conflict", "follow: a change onto a changed row: conflict");
    unit_check(store_pos(s1)->seq == 2, "follow: the conflict applied nothing (position %lld)", store_pos(s1)->seq);
    unit_check_str(value(r1, "SELECT v FROM t WHERE id = 1"), "mine", "follow: the replica's row kept");
    follow_status(f1, "r1", NULL, sql, sizeof sql);
    unit_check(strstr(sql, "\"error\":\"change 3 conflicts with this file: update of a row of 't'") != NULL,
               "follow: the status says which change, table and op: %s", sql);
    unit_check(strstr(sql, "\"lag_ms\":0,\"lag_ms_p50\":0,\"lag_ms_p99\":0,") != NULL,
               "follow: changes without a commit time make no lag (not the time since 1970)");

    /* A gap: change 4 right after 1. */
    f2 = replica(r2, &s2);
    follow_change(f2, msg[1], msglen[1]);
    follow_change(f2, msg[4], msglen[4]);
    k = follow_step(f2, 0);
    unit_check(store_pos(s2)->seq == 1, "follow: 1 applied before the gap (position %lld)", store_pos(s2)->seq);
    unit_check_str(follow_state(f2), "bootstrapping", "follow: a gap: bootstrapping");
    unit_check(follow_step(f2, 0) == 1 || k == 1, "follow: after a gap it wants a snapshot");
    follow_status(f2, "r2", NULL, sql, sizeof sql);
    unit_check(strstr(sql, "gap: this file is at 1, the next change is 4 (after 3)") != NULL,
               "follow: the status names the gap: %s", sql);

    /* Another database (the writer started on a new file): a snapshot too. */
    follow_free(f2);
    store_close(s2);
    f2 = replica(r2, &s2);
    {
        static const char other[] = "{\"seq\":2,\"prev\":1,\"db\":\"d2\",\"schema\":0,\"at\":0}\n";
        follow_change(f2, other, sizeof other - 1);
    }
    follow_step(f2, 0);
    unit_check_str(follow_state(f2), "bootstrapping", "follow: another database identity: bootstrapping");
    follow_status(f2, "r2", NULL, sql, sizeof sql);
    unit_check(strstr(sql, "the writer's database is now d2 (schema 0), this file holds d1 (schema 0)") != NULL,
               "follow: the status says so: %s", sql);

    follow_free(f1);
    follow_free(f2);
    store_close(s1);
    store_close(s2);
    for (k = 1; k <= NCH; k++)
        free(msg[k]);
    free(src);
    free(r1);
    free(r2);
}
