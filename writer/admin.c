/* admin.c: parsing maintenance commands and the shape of their answers (see admin.h).
 * Pure: a payload in, a command or an error text out; no broker, no file. */
#include "admin.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "req.h"
#include "utf8.h"
#include "util.h"

const char *const admin_names[] = {
    "backup", "checkpoint", "integrity_check", "optimize", "stats", "pause", "resume", NULL,
};

int admin_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (!n || n > ADMIN_NAME_MAX || name[0] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int admin_parse(const char *payload, size_t len, const char *prefix, struct admin_req *r,
                char *err, size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *f;
    const char *end = NULL;
    int rc = -1, i;

    r->cmd = -1;
    r->name[0] = r->reply_to[0] = '\0';
    if (utf8_check((const unsigned char *)payload, len) != len) {
        util_fail(err, errlen, "not valid UTF-8");
        goto out;
    }
    root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
    while (root && end && end < payload + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (!cJSON_IsObject(root) || (end && end < payload + len)) {
        util_fail(err, errlen, "not a JSON object");
        goto out;
    }
    f = cJSON_GetObjectItemCaseSensitive(root, "cmd");
    if (cJSON_IsString(f))
        for (i = 0; admin_names[i]; i++)
            if (!strcmp(admin_names[i], f->valuestring))
                r->cmd = i;
    f = cJSON_GetObjectItemCaseSensitive(root, "reply_to");
    if (f) {
        if (!cJSON_IsString(f) || strlen(f->valuestring) > ADMIN_TOPIC_MAX ||
            !req_reply_topic_ok(f->valuestring, prefix)) {
            util_fail(err, errlen, "\"reply_to\" may not be one of the writer's own topics: use "
                      "%s/reply/... or a topic outside %s/", prefix, prefix);
            goto out;
        }
        snprintf(r->reply_to, sizeof r->reply_to, "%s", f->valuestring);
    }
    if (r->cmd < 0) {
        util_fail(err, errlen, "\"cmd\" must be one of backup, checkpoint, integrity_check, "
                  "optimize, stats, pause, resume");
        goto out;
    }
    if (r->cmd == ADMIN_BACKUP) {
        f = cJSON_GetObjectItemCaseSensitive(root, "name");
        if (!cJSON_IsString(f) || !admin_name_ok(f->valuestring)) {
            util_fail(err, errlen, "\"name\" must be a plain file name: 1 to %d letters, digits, "
                      "'.', '_' or '-', not starting with '.'", ADMIN_NAME_MAX);
            goto out;
        }
        snprintf(r->name, sizeof r->name, "%s", f->valuestring);
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

int admin_error(struct jbuf *b, const char *cmd, const char *error)
{
    jb_reset(b);
    jb_puts(b, "{\"cmd\":");
    jb_cstr(b, cmd);
    jb_puts(b, ",\"error\":");
    jb_cstr(b, error);
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}

void admin_ok(struct jbuf *b, const char *cmd)
{
    jb_reset(b);
    jb_puts(b, "{\"cmd\":");
    jb_cstr(b, cmd);
    jb_puts(b, ",\"ok\":true");
}

int admin_end(struct jbuf *b)
{
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}
