/* testdb.h: the writer's database options as the unit tests and fuzzers open a file
 * (db_open): every table, no fsync, short timeouts and bounds. Header only, for
 * tests/unit and tests/fuzz alike. */
#ifndef TESTDB_H
#define TESTDB_H

#include <string.h>

#include "cfg.h"
#include "db.h"

static inline void testdb_opts(struct db_opts *o, const char *path, const char *schema_dir)
{
    static const struct cfg_list all = {NULL, 0};

    memset(o, 0, sizeof *o);
    o->path = path;
    o->schema_dir = schema_dir;
    o->tables = &all;
    o->synchronous = "OFF";
    o->busy_timeout_ms = 100;
    o->id_ttl_days = 7;
    o->rejected_keep = 10000;
    o->max_event_rows = 100;
}

#endif
