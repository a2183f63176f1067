/* query.h: named read queries for browsers and scripts, which cannot open the file.
 *
 * The operator defines them in the config (`query NAME SELECT ...`). They run on a
 * separate read-only connection (WAL: they never block a commit), with a row cap and
 * a time cap enforced by SQLite's progress handler. */
#ifndef MOSQLITE_QUERY_H
#define MOSQLITE_QUERY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "cfg.h"
#include "jbuf.h"

struct queries;

/* The `query` lines as config, before the database is opened: each "NAME SQL", its
 * name used once, its SQL one SELECT (or WITH ... SELECT, or VALUES) by its first
 * word: never BEGIN or SAVEPOINT (a transaction left open would hold every later
 * answer to one snapshot and the WAL to that point), ATTACH, PRAGMA or a write.
 * 0, or -1 with "FILE:LINE: query NAME: why" in err. Pure. */
int query_check(const struct cfg_list *defs, char *err, size_t errlen);

/* Prepare every definition ("NAME SQL") on a read-only connection to path. Each must
 * be one read-only statement. NULL + err on any error. */
struct queries *query_open(const char *path, const struct cfg_list *defs, long long max_rows,
                           long long timeout_ms, char *err, size_t errlen);
void query_close(struct queries *q);

/* Answer one request into out (JSON): root is the payload as the door for control
 * messages (ctl.c) read it (strict JSON, one object; reply_to checked there), and here
 * its fields are checked: "query", "params", "reply_to", nothing else. */
void query_run(struct queries *q, const cJSON *root, struct jbuf *out);

#endif
