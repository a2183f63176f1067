/* test_out.c: the exact JSON of receipts, rejections, events and the status (out.c). */
#include <string.h>

#include "out.h"
#include "unit.h"

static struct jbuf b;

/* The encoder's text (jbuf keeps it NUL-terminated). */
static const char *text(int rc)
{
    return rc ? "(failed)" : b.s;
}

static char r1[] = "r1", reply[] = "receipts/x", unknown[] = "unknown table \"x\"", bad[] = "bad";

static void check_receipt(void)
{
    struct outcome o = {.kind = OUT_APPLIED, .changes = 3, .rowid = 17, .id = r1, .reply_to = reply};

    unit_check_str(text(out_receipt(&b, &o)), "{\"id\":\"r1\",\"status\":\"applied\",\"changes\":3,\"rowid\":17}",
                   "out: receipt of an insert");
    o.rowid = -1;
    o.id = NULL;
    unit_check_str(text(out_receipt(&b, &o)), "{\"id\":null,\"status\":\"applied\",\"changes\":3}",
                   "out: receipt without rowid or id");
    o.kind = OUT_DUP;
    o.id = r1;
    unit_check_str(text(out_receipt(&b, &o)), "{\"id\":\"r1\",\"status\":\"duplicate\"}",
                   "out: receipt of a duplicate");
    o.kind = OUT_REJECTED;
    o.error = unknown;
    unit_check_str(text(out_receipt(&b, &o)),
                   "{\"id\":\"r1\",\"status\":\"rejected\",\"error\":\"unknown table \\\"x\\\"\"}",
                   "out: receipt of a rejection");
    o.kind = OUT_SCHEDULED;
    o.due_ms = 1795561200000LL + 7;
    unit_check_str(text(out_receipt(&b, &o)),
                   "{\"id\":\"r1\",\"status\":\"scheduled\",\"due\":\"2026-11-24T23:00:00.007Z\"}",
                   "out: receipt of a scheduled request: when it is due");
    o.kind = OUT_CANCELLED;
    o.id = NULL;
    o.cancel = r1;
    unit_check_str(text(out_receipt(&b, &o)), "{\"id\":null,\"status\":\"cancelled\",\"cancel\":\"r1\"}",
                   "out: receipt of a cancel");
}

static void check_rejection(void)
{
    static char big[3000];
    struct outcome o = {.kind = OUT_REJECTED, .rowid = -1, .error = bad};
    const char *t;

    unit_check_str(text(out_rejection(&b, "mosqlite/write/t", &o, "{\"a\":\xff}", 7)),
                   "{\"topic\":\"mosqlite/write/t\",\"id\":null,\"error\":\"bad\",\"payload\":"
                   "\"{\\\"a\\\":\xef\xbf\xbd}\"}",
                   "out: rejection: the payload as a string, invalid UTF-8 as U+FFFD");
    memset(big, 'x', sizeof big);
    t = text(out_rejection(&b, "t", &o, big, sizeof big));
    unit_check(strlen(t) == strlen("{\"topic\":\"t\",\"id\":null,\"error\":\"bad\",\"payload\":\"\"}") + REQ_EXCERPT,
               "out: rejection: the payload cut to %d bytes", REQ_EXCERPT);
}

static void check_event(void)
{
    const char *rows = "{\"id\":1},{\"id\":2}";

    unit_check_str(text(out_event(&b, "t", OP_DELETE, rows, strlen(rows), 0)),
                   "{\"table\":\"t\",\"op\":\"delete\",\"rows\":[{\"id\":1},{\"id\":2}]}",
                   "out: event");
    unit_check_str(text(out_event(&b, "t", OP_UPSERT, rows, 8, 1)),
                   "{\"table\":\"t\",\"op\":\"upsert\",\"rows\":[{\"id\":1}],\"truncated\":true}",
                   "out: truncated event");
}

static void check_status(void)
{
    struct out_stats s = {.applied = 5, .rejected = 2, .duplicates = 1, .commits = 3, .last_batch = 4,
                          .max_batch = 9, .last_commit_ms = 1.23456789, .seq = 41, .epoch = 2};

    struct out_versions v = {"", "2.0.21", "3.40.1", "5"};

    unit_check_str(text(out_status(&b, "online", "2026-11-24T00:00:00Z", &s, 7, NULL, NULL)),
                   "{\"state\":\"online\",\"version\":\"" MOSQLITE_VERSION "\",\"since\":"
                   "\"2026-11-24T00:00:00Z\",\"applied\":5,\"rejected\":2,\"duplicates\":1,\"scheduled\":0,\"cancelled\":0,"
                   "\"commits\":3,\"seq\":41,\"epoch\":2,\"last_commit_ms\":1.234,\"last_batch\":4,\"max_batch\":9,"
                   "\"pending\":7,\"error\":null,\"paused\":false}",
                   "out: status, commit time to the microsecond");
    s.paused = 1;
    unit_check(strstr(text(out_status(&b, "online", "s", &s, 0, NULL, NULL)), ",\"paused\":true}") != NULL,
               "out: status says paused");
    s.paused = 0;
    unit_check(strstr(text(out_status(&b, "online", "s", &s, 0, "database is locked", NULL)),
                      ",\"error\":\"database is locked\",\"paused\":false}") != NULL,
               "out: status carries the stall reason");
    unit_check(strstr(text(out_status(&b, "online", "s", &s, 0, NULL, &v)),
                      ",\"error\":null,\"paused\":false,\"broker\":null,\"libmosquitto\":\"2.0.21\","
                      "\"sqlite\":\"3.40.1\",\"request_protocol\":\"5\"}") != NULL,
               "out: status names the broker (null until known), the libraries and the request protocol");
}

void test_out(void)
{
    check_receipt();
    check_rejection();
    check_event();
    check_status();
    jb_free(&b);
}
