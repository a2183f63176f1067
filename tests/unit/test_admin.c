/* test_admin.c: parsing PREFIX/admin commands and the shape of their answers (admin.c). */
#include <string.h>

#include "admin.h"
#include "unit.h"

static const char *parse(const char *payload, struct admin_req *r)
{
    static char err[512];

    if (admin_parse(payload, strlen(payload), "mosqlite", r, err, sizeof err))
        return err;
    return "ok";
}

void test_admin(void)
{
    struct admin_req r;
    struct jbuf b = {0};

    unit_check_str(parse("{\"cmd\":\"stats\",\"reply_to\":\"mosqlite/reply/a/1\"}", &r), "ok", "admin: stats");
    unit_check(r.cmd == ADMIN_STATS && !strcmp(r.reply_to, "mosqlite/reply/a/1"), "admin: cmd and reply_to");
    unit_check_str(parse("{\"cmd\":\"backup\",\"name\":\"nightly-1.db\"}", &r), "ok", "admin: backup");
    unit_check_str(r.name, "nightly-1.db", "admin: backup name");
    unit_check_str(parse("{\"cmd\":\"pause\"} \n", &r), "ok", "admin: trailing blanks");
    unit_check_str(parse("{\"cmd\":\"pause\"} x", &r), "not a JSON object", "admin: trailing text");
    unit_check_str(parse("[1]", &r), "not a JSON object", "admin: not an object");
    unit_check_str(parse("{\"cmd\":\"drop\",\"reply_to\":\"r\"}", &r),
                   "\"cmd\" must be one of backup, checkpoint, integrity_check, optimize, stats, pause, resume",
                   "admin: unknown command");
    unit_check(r.cmd == -1 && !strcmp(r.reply_to, "r"), "admin: reply_to kept for the error");
    unit_check_str(parse("{\"cmd\":\"stats\",\"reply_to\":\"mosqlite/status\"}", &r),
                   "\"reply_to\" may not be one of the writer's own topics: use mosqlite/reply/... or a topic outside mosqlite/",
                   "admin: reply_to on the writer's own topic");
    unit_check_str(parse("{\"cmd\":\"backup\",\"name\":\"../x.db\"}", &r),
                   "\"name\" must be a plain file name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'",
                   "admin: a path as backup name");
    unit_check(r.cmd == ADMIN_BACKUP, "admin: cmd kept for the error");
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
