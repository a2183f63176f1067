/* admin.h: maintenance commands on PREFIX/admin, parsed with no I/O.
 *
 * A command is one JSON object with "cmd" and "reply_to" (or an MQTT v5 Response
 * Topic), answered on that topic with {"cmd": ..., "ok": true, ...} or
 * {"cmd": ..., "error": "..."}. The commands:
 *
 *   {"cmd": "backup", "name": "nightly.db"}   an online copy into backup-dir/NAME
 *   {"cmd": "checkpoint"}                      the WAL into the file, and truncated
 *   {"cmd": "integrity_check"}                 PRAGMA integrity_check
 *   {"cmd": "optimize"}                        PRAGMA optimize
 *   {"cmd": "stats"}                           tables, rows, sizes, ids kept
 *   {"cmd": "pause"} / {"cmd": "resume"}       stop taking requests, and go on
 *
 * admin_parse() checks the payload in this order: UTF-8 JSON object, "cmd" a known
 * command, "reply_to" a topic the writer may answer on, then the command's own fields
 * ("name" of a backup: a plain file name, never a path). maint.c runs what it returns. */
#ifndef MOSQLITE_ADMIN_H
#define MOSQLITE_ADMIN_H

#include <stddef.h>

#include "jbuf.h"

enum admin_cmd {
    ADMIN_BACKUP, ADMIN_CHECKPOINT, ADMIN_INTEGRITY, ADMIN_OPTIMIZE, ADMIN_STATS,
    ADMIN_PAUSE, ADMIN_RESUME, ADMIN_NCMDS
};

extern const char *const admin_names[];

#define ADMIN_NAME_MAX  128       /* longest backup file name */
#define ADMIN_TOPIC_MAX 1024      /* longest reply_to */

struct admin_req {
    int cmd;                          /* enum admin_cmd, or -1 when not known */
    char name[ADMIN_NAME_MAX + 1];    /* backup: the file name */
    char reply_to[ADMIN_TOPIC_MAX + 1]; /* "" when the payload had none */
};

/* Parse a command (len bytes). prefix is the topic prefix (reply_to may not be one of
 * the writer's own topics). 0, or -1 with the error text for the answer in err; r->cmd
 * and r->reply_to are set whenever they could be read, so the error can be answered. */
int admin_parse(const char *payload, size_t len, const char *prefix, struct admin_req *r,
                char *err, size_t errlen);

/* Is name a plain file name: 1 to ADMIN_NAME_MAX of [A-Za-z0-9._-], not starting with
 * a dot (so never "..", never hidden, never a path)? */
int admin_name_ok(const char *name);

/* {"cmd":"NAME","error":"..."}; cmd may be NULL (the command could not be read). */
int admin_error(struct jbuf *b, const char *cmd, const char *error);
/* {"cmd":"NAME","ok":true then the caller's members, then admin_end() closes it. */
void admin_ok(struct jbuf *b, const char *cmd);
int admin_end(struct jbuf *b);

#endif
