/* fuzz_ctl.c: libFuzzer target over the door for control messages: ctl_read() (the
 * strict JSON read and where the answer goes), then what each control topic reads from
 * the object: admin_read() (a maintenance command) and snapshot_request() (its fields).
 *
 * An input is "RESPONSE-TOPIC\nPAYLOAD" (the MQTT 5 Response Topic, or none when the
 * line is empty); with no newline, all of it is the payload. Besides the sanitizers, the
 * target checks what ctl.h and admin.h promise: an error comes with a message; an
 * answer only ever goes to a topic the reply rule allows; a command read is a known one,
 * and a backup's name a plain file name. The whole input also goes to changes_epoch_of()
 * (the epoch of a status or change, read for fencing), and to sync_ack_read() and
 * sync_ack_id() (a replica's ack and its topic).
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "changes.h"
#include "ctl.h"
#include "fuzz_input.h"
#include "req.h"
#include "snapshot.h"
#include "sync.h"
#include "workers.h"

static const struct ctl_limits limits = {4000, 32, "mosqlite"};
static struct ctl_msg msg;
static struct snapshot *snap;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_ctl: invariant: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_read(void)
{
    struct admin_req r;
    char err[512];

    if (!cJSON_IsObject(msg.root))
        die("read without an object");
    err[0] = 0;
    if (admin_read(msg.root, &r, err, sizeof err)) {
        if (!err[0])
            die("an admin error without a message");
    } else if (r.cmd < 0 || r.cmd >= ADMIN_NCMDS || (r.cmd == ADMIN_BACKUP && !admin_name_ok(r.name))) {
        die("admin command or name");
    } else if (r.cmd == ADMIN_WORKERS && (r.limit < 1 || r.limit > WORKERS_LIMIT_MAX)) {
        die("workers' limit out of its range");
    }
    /* A fresh queue each time (it holds at most 16). */
    snapshot_free(snap);
    if (!(snap = snapshot_new("fuzz.db", NULL)))
        die("out of memory");
    err[0] = 0;
    if (snapshot_request(snap, msg.root, msg.to ? msg.to : "r", err, sizeof err) && !err[0])
        die("a snapshot error without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char rt[256], err[1024];
    const char *resp;
    size_t len;
    char *payload = fuzz_input(data, size, rt, sizeof rt, &resp, &len);
    int rc;

    if (!payload)
        return 0;
    err[0] = 0;
    rc = ctl_read(&limits, payload, len, resp, &msg, err, sizeof err);
    if (msg.to && !req_reply_topic_ok(msg.to, limits.prefix))
        die("an answer to a topic the reply rule refuses");
    if (rc) {
        if (rc != -1 || !err[0] || !memchr(err, 0, sizeof err))
            die("an error without a message");
    } else {
        check_read();
    }
    ctl_msg_clear(&msg);
    /* The epoch a writer reads from PREFIX/status and PREFIX/changes (fencing): the
     * payload as it comes, whole. */
    free(payload);
    payload = malloc(size ? size : 1);
    if (!payload)
        return 0;
    memcpy(payload, data, size);
    if (changes_epoch_of(payload, size) < 0)
        die("a negative epoch");
    /* A replica's ack (synchronous replicas), and the id in an ack topic. */
    {
        long long seq = -1, epoch = -1;
        size_t idlen = 0;
        const char *id;
        err[0] = 0;
        if (sync_ack_read(payload, size, &seq, &epoch, err, sizeof err)) {
            if (!err[0])
                die("an ack error without a message");
        } else if (seq < 0 || epoch < 0 || seq > 9007199254740991LL || epoch > 9007199254740991LL) {
            die("an ack out of range");
        }
        if (size && !memchr(payload, 0, size) && payload[size - 1] != '\0') {
            char *t = malloc(size + 1);
            if (t) {
                memcpy(t, payload, size);
                t[size] = 0;
                if ((id = sync_ack_id(t, limits.prefix, &idlen)) && (!idlen || memchr(id, '/', idlen)))
                    die("an ack id empty or with a /");
                free(t);
            }
        }
    }
    free(payload);
    return 0;
}
