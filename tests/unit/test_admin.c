/* test_admin.c: PREFIX/admin commands as they come through the door (ctl_read, then
 * admin_read) and the shape of their answers (admin.c). */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "ctl.h"
#include "unit.h"
#include "workers.h"

static char to[256];    /* where the answer of the last command parsed would go */

static const char *parse(const char *payload, size_t len, struct admin_req *r)
{
    static const struct ctl_limits lim = {262144, 32, "mosqlite"};
    static struct ctl_msg m;
    static char err[512];
    const char *res = "ok";

    r->cmd = -1;
    if (ctl_read(&lim, payload, len, NULL, &m, err, sizeof err) ||
        admin_read(m.root, r, err, sizeof err))
        res = err;
    snprintf(to, sizeof to, "%s", m.to ? m.to : "(none)");
    ctl_msg_free(&m);
    return res;
}

#define PARSE(lit, r) parse(lit, sizeof lit - 1, r)

void test_admin(void)
{
    struct admin_req r;
    struct jbuf b = {0};

    unit_check_str(PARSE("{\"cmd\":\"stats\",\"reply_to\":\"mosqlite/reply/a/1\"}", &r), "ok", "admin: stats");
    unit_check(r.cmd == ADMIN_STATS && !strcmp(to, "mosqlite/reply/a/1"), "admin: cmd and reply_to");
    unit_check_str(PARSE("{\"cmd\":\"backup\",\"name\":\"nightly-1.db\"}", &r), "ok", "admin: backup");
    unit_check_str(r.name, "nightly-1.db", "admin: backup name");
    unit_check_str(PARSE("{\"cmd\":\"pause\"} \n", &r), "ok", "admin: trailing blanks");
    unit_check_str(PARSE("{\"cmd\":\"pause\"} x", &r), "invalid JSON: unexpected text at byte 16", "admin: trailing text");
    unit_check_str(PARSE("[1]", &r), "a request must be a JSON object", "admin: not an object");
    unit_check_str(PARSE("{\"cmd\":\"drop\",\"reply_to\":\"r\"}", &r),
                   "\"cmd\" must be one of backup, checkpoint, integrity_check, optimize, stats, pause, resume, job_retry, job_discard, job_cancel, job_run_now, queue_pause, queue_resume, workers",
                   "admin: unknown command");
    unit_check(r.cmd == -1 && !strcmp(to, "r"), "admin: reply_to kept for the error");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"reply_to\":\"mosqlite/status\"}", &r),
                   "\"reply_to\" may not be one of the writer's own topics: use mosqlite/receipts/... or a topic outside mosqlite/",
                   "admin: reply_to on the writer's own topic");
    unit_check_str(to, "(none)", "admin: nowhere to answer then");
    unit_check_str(PARSE("{\"cmd\":\"backup\",\"name\":\"../x.db\"}", &r),
                   "\"name\" must be a plain file name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'",
                   "admin: a path as backup name");
    unit_check(r.cmd == ADMIN_BACKUP, "admin: cmd kept for the error");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"name\":\"x.db\"}", &r), "\"name\" is only for backup",
                   "admin: a name for another command");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"verbose\":true}", &r),
                   "unknown field \"verbose\" (a command has \"cmd\", \"name\", \"job\", \"queue\", \"limit\", \"id\" and \"reply_to\")",
                   "admin: an unknown field");
    unit_check_str(PARSE("{\"cmd\":\"workers\"}", &r), "ok", "admin: workers");
    unit_check(r.cmd == ADMIN_WORKERS && r.limit == WORKERS_LIMIT_DFLT && !ADMIN_IS_JOB(r.cmd),
               "admin: workers, the default limit, not a job command run in a batch");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"limit\":7}", &r), "ok", "admin: workers with a limit");
    unit_check(r.limit == 7, "admin: the limit kept");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"limit\":0}", &r), "\"limit\" must be an integer from 1 to 1000",
                   "admin: workers, limit 0");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"limit\":1001}", &r), "\"limit\" must be an integer from 1 to 1000",
                   "admin: workers, limit too large");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"limit\":2.5}", &r), "\"limit\" must be an integer from 1 to 1000",
                   "admin: workers, limit not an integer");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"limit\":\"5\"}", &r), "\"limit\" must be an integer from 1 to 1000",
                   "admin: workers, limit a string");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"limit\":5}", &r), "\"limit\" is only for workers",
                   "admin: a limit for another command");
    unit_check_str(PARSE("{\"cmd\":\"workers\",\"queue\":\"build\"}", &r), "workers takes only \"limit\"",
                   "admin: workers with a queue");
    unit_check_str(PARSE("{\"cmd\":\"pause\",\"id\":\"op-1\"}", &r), "ok", "admin: an id");
    unit_check_str(r.id, "op-1", "admin: the id kept");
    unit_check_str(PARSE("{\"cmd\":\"pause\",\"id\":7}", &r),
                   "\"id\" must be a string of 1 to 128 printable ASCII characters", "admin: an id not a string");
    unit_check_str(PARSE("{\"cmd\":\"pause\",\"id\":\"a\\u0001b\"}", &r),
                   "\"id\" must be a string of 1 to 128 printable ASCII characters", "admin: an id with a control character");

    /* Read as strictly as a write request: a NUL never cuts a command or a name short,
     * a key given twice is refused rather than one of its values taken. */
    unit_check_str(PARSE("{\"cmd\":\"stats\\u0000pause\",\"reply_to\":\"r/1\"}", &r),
                   "string contains \\u0000 (byte 13): NUL characters are not supported",
                   "admin: \\u0000 in cmd refused (not run as stats)");
    unit_check(r.cmd == -1 && !strcmp(to, "r/1"), "admin: \\u0000 in cmd: no command, answered on reply_to");
    unit_check_str(PARSE("{\"cmd\":\"backup\",\"name\":\"ok.db\\u0000/../../evil.db\"}", &r),
                   "string contains \\u0000 (byte 29): NUL characters are not supported",
                   "admin: \\u0000 in a backup name refused (not cut to ok.db)");
    unit_check_str(PARSE("{\"cmd\":\"stats\0pause\"}", &r), "payload contains a NUL byte (byte 13)",
                   "admin: a raw NUL refused");
    unit_check_str(PARSE("{\"cmd\":\"pause\",\"cmd\":\"stats\",\"reply_to\":\"r/2\"}", &r),
                   "duplicate key \"cmd\" in the request", "admin: cmd given twice refused (not run as pause)");
    unit_check(r.cmd == -1 && !strcmp(to, "r/2"), "admin: cmd given twice: no command, answered on reply_to");
    unit_check_str(PARSE("{\"cmd\":\"backup\",\"name\":\"a.db\",\"name\":\"b.db\"}", &r),
                   "duplicate key \"name\" in the request", "admin: name given twice refused");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"x\":{\"a\":1,\"a\":2}}", &r),
                   "duplicate key \"a\" in an object", "admin: a key twice deeper down refused");
    unit_check_str(PARSE("{\"cmd\":\"stats\",\"x\":012}", &r),
                   "invalid JSON: number \"012\" at byte 19: leading zeros are not allowed",
                   "admin: numbers as strict as a write request's");
    unit_check_str(PARSE("{\"cmd\":\"st\xc3\"}", &r), "payload is not valid UTF-8 (byte 10)",
                   "admin: invalid UTF-8 refused");

    unit_check(!admin_name_ok("a/b") && !admin_name_ok("..") && !admin_name_ok(".hidden") &&
               !admin_name_ok("") && !admin_name_ok("a b") && admin_name_ok("x.db") &&
               admin_name_ok("2026-11-24_night.sqlite"), "admin: plain names only");
    admin_error(&b, "backup", "a \"b\"");
    unit_check_str(b.s, "{\"cmd\":\"backup\",\"error\":\"a \\\"b\\\"\"}", "admin: error answer");
    admin_error(&b, NULL, "x");
    unit_check_str(b.s, "{\"cmd\":null,\"error\":\"x\"}", "admin: error answer without a command");
    admin_ok(&b, "pause");
    jb_puts(&b, ",\"paused\":true");
    admin_end(&b);
    unit_check_str(b.s, "{\"cmd\":\"pause\",\"ok\":true,\"paused\":true}", "admin: ok answer");
    jb_free(&b);
}
