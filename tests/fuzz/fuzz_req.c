/* fuzz_req.c: libFuzzer target over req_parse(), the request parser and validator.
 *
 * An input is "TABLE\nPAYLOAD": the first line is the table named by the topic
 * (PREFIX/write/TABLE), empty for PREFIX/write; an input with no newline is a payload
 * on PREFIX/write. The schema is the project's (conf/schema) plus the test tables
 * (tests/schema), migrated into an in-memory SQLite once. One struct req is reused
 * across inputs, as the writer reuses it, so stale state between requests shows up.
 * Besides the sanitizers, the target checks what req.h promises: an error comes with
 * a message, a success with ops whose tables and columns are in the schema, an id that
 * is 1..128 printable characters, $base64 values that decode, and an enqueue
 * ({"op": "enqueue"}) whose queue can be a topic level, with a payload, and that
 * req_hash() is the hash of each field's cJSON_PrintUnformatted text, as it was.
 *
 * Built and run by tests/fuzz/run.sh; the schema directories come from the
 * environment (MOSQLITE_ROOT, default the current directory). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "fuzz_input.h"
#include "req.h"
#include "../unit/req_hash_ref.h"
#include "schema.h"

static struct schema schema;
static struct req req;
static const struct req_limits limits = {4000, 32, 100};

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_req: %s: %s\n", what, err);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("MOSQLITE_ROOT");
    char dir[4096], err[1024];
    struct cfg_list all = {0};   /* no `tables` narrowing: every table writable */
    sqlite3 *db;

    (void)argc;
    (void)argv;
    if (!root)
        root = ".";
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));
    snprintf(dir, sizeof dir, "%s/conf/schema", root);
    if (schema_migrate(db, dir, err, sizeof err))
        die(dir, err);
    snprintf(dir, sizeof dir, "%s/tests/schema", root);
    if (schema_migrate(db, dir, err, sizeof err))
        die(dir, err);
    if (schema_load(db, &all, &schema, err, sizeof err))
        die("schema_load", err);
    sqlite3_close(db);
    return 0;
}

static void check_ok(void)
{
    int i, j;

    if (req.cancel ? req.nops != 0 : req.nops < 1 || req.nops > limits.max_ops)
        die("invariant", "nops out of range");
    if (req.cancel && (req.has_at || req.delay_ms >= 0 || !*req.cancel || strlen(req.cancel) > 128))
        die("invariant", "a cancel with a time, or a bad id to cancel");
    if ((req.has_at || req.delay_ms >= 0) && ((!req.id && !req.jobs_at) || (req.has_at && req.delay_ms >= 0) ||
                                                  req.delay_ms > REQ_DELAY_MAX))
        die("invariant", "a scheduled request without an id, with both times, or too far");
    if (req.id) {
        size_t n = strlen(req.id);
        if (n < 1 || n > 128)
            die("invariant", "id length");
        for (i = 0; req.id[i]; i++)
            if (req.id[i] < 0x20 || req.id[i] > 0x7e)
                die("invariant", "id not printable");
    }
    if (req.reply_to && (!*req.reply_to || strpbrk(req.reply_to, "+#")))
        die("invariant", "reply_to");
    if (req.after) {
        size_t n = strlen(req.after);
        if (n < 1 || n > 128 || req.cancel || req.has_at || req.delay_ms >= 0 ||
            (req.id && !strcmp(req.id, req.after)))
            die("invariant", "after: its length, with a cancel or a time, or the request's own id");
        for (i = 0; req.after[i]; i++)
            if (req.after[i] < 0x20 || req.after[i] > 0x7e)
                die("invariant", "after not printable");
    }
    for (i = 0; i < req.nops; i++) {
        const struct req_op *op = &req.ops[i];
        const struct req_val *sets[2] = {op->vals, op->where};
        int ns[2] = {op->nvals, op->nwhere}, k;
        char qerr[256];

        if (op->kind == OP_ENQUEUE) {
            /* An enqueue: a queue that can be a topic level, a payload, and when its
             * request is timed, every op of it an enqueue. */
            if (!op->enq.queue || req_queue_check(op->enq.queue, qerr, sizeof qerr) || !op->enq.payload ||
                (!op->enq.conc_key != !op->enq.conc_limit) || (op->enq.follow && !req.reply_to))
                die("invariant", "enqueue fields");
            for (j = 0; req.jobs_at && j < req.nops; j++)
                if (req.ops[j].kind != OP_ENQUEUE)
                    die("invariant", "a timed enqueue with another op");
            continue;
        }
        if (!op->table || op->tindex < 0 || op->tindex >= schema.ntables ||
            op->table != &schema.tables[op->tindex] || !op->table->writable)
            die("invariant", "op table");
        if ((op->kind == OP_UPDATE || op->kind == OP_DELETE) && op->nwhere < 1)
            die("invariant", "update/delete without where");
        for (k = 0; k < 2; k++)
            for (j = 0; j < ns[k]; j++) {
                const struct req_val *v = &sets[k][j];
                const char *b;
                if (v->col < 0 || v->col >= op->table->ncols || !v->v)
                    die("invariant", "column index");
                if ((b = req_blob_text(v->v))) {
                    size_t n = strlen(b);
                    unsigned char *out = malloc(n / 4 * 3 + 3);
                    if (!out || req_base64_decode(b, n, out) < 0)
                        die("invariant", "accepted $base64 does not decode");
                    free(out);
                }
            }
        for (j = 0; j < op->nconflict; j++)
            if (op->conflict[j] < 0 || op->conflict[j] >= op->table->ncols)
                die("invariant", "conflict column");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char table[256], err[1024];
    const char *tt;
    size_t len;
    char *payload = fuzz_input(data, size, table, sizeof table, &tt, &len);
    int rc;

    if (!payload)
        return 0;
    err[0] = 0;
    rc = req_parse(&req, &schema, &limits, tt, payload, len, err, sizeof err);
    if (rc) {
        if (rc != -1 || !err[0] || !memchr(err, 0, sizeof err))
            die("invariant", "an error without a message");
    } else {
        check_ok();
    }
    if (!rc && req_hash(req.root, "mq/write/t") != ref_hash(req.root, "mq/write/t"))
        die("invariant", "req_hash is not the hash of cJSON's compact text");
    req_clear(&req);
    free(payload);
    return 0;
}
