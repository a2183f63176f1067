/* out.c: the JSON of receipts, rejections, events and the status (see out.h).
 *
 * Written with jbuf rather than a cJSON tree: the texts are small and fixed in shape,
 * and the event rows arrive already as JSON text (db.c writes them as it steps). */
#include "out.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif

static void start(struct jbuf *b)
{
    b->len = 0;
    b->oom = 0;
}

static int done(struct jbuf *b)
{
    return b->oom ? -1 : 0;
}

int out_receipt(struct jbuf *b, const struct outcome *o)
{
    start(b);
    jb_puts(b, "{\"id\":");
    jb_cstr(b, o->id);
    if (o->kind == OUT_REJECTED) {
        jb_puts(b, ",\"status\":\"rejected\",\"error\":");
        jb_cstr(b, o->error);
    } else if (o->kind == OUT_DUP) {
        jb_puts(b, ",\"status\":\"duplicate\"");
    } else {
        jb_puts(b, ",\"status\":\"applied\",\"changes\":");
        jb_int(b, o->changes);
        if (o->rowid >= 0) {
            jb_puts(b, ",\"rowid\":");
            jb_int(b, o->rowid);
        }
    }
    jb_putc(b, '}');
    return done(b);
}

int out_rejection(struct jbuf *b, const char *topic, const struct outcome *o,
                  const char *payload, size_t len)
{
    start(b);
    jb_puts(b, "{\"topic\":");
    jb_cstr(b, topic);
    jb_puts(b, ",\"id\":");
    jb_cstr(b, o->id);
    jb_puts(b, ",\"error\":");
    jb_cstr(b, o->error);
    jb_puts(b, ",\"payload\":");
    jb_str(b, payload, len > REQ_EXCERPT ? REQ_EXCERPT : len);
    jb_putc(b, '}');
    return done(b);
}

int out_event(struct jbuf *b, const char *table, enum op_kind kind, const char *rows, size_t n,
              int truncated)
{
    start(b);
    jb_puts(b, "{\"table\":");
    jb_cstr(b, table);
    jb_puts(b, ",\"op\":\"");
    jb_puts(b, op_names[kind]);
    jb_puts(b, "\",\"rows\":[");
    jb_putn(b, rows, n);
    jb_putc(b, ']');
    if (truncated)
        jb_puts(b, ",\"truncated\":true");
    jb_putc(b, '}');
    return done(b);
}

int out_status(struct jbuf *b, const char *state, const char *since, const struct out_stats *s,
               size_t pending, const char *error)
{
    start(b);
    jb_puts(b, "{\"state\":");
    jb_cstr(b, state);
    jb_puts(b, ",\"version\":\"" MOSQLITE_VERSION "\",\"since\":");
    jb_cstr(b, since);
    jb_puts(b, ",\"applied\":");
    jb_int(b, s->applied);
    jb_puts(b, ",\"rejected\":");
    jb_int(b, s->rejected);
    jb_puts(b, ",\"duplicates\":");
    jb_int(b, s->duplicates);
    jb_puts(b, ",\"commits\":");
    jb_int(b, s->commits);
    jb_puts(b, ",\"last_commit_ms\":");
    jb_double(b, (double)(long long)(s->last_commit_ms * 1000.0) / 1000.0);
    jb_puts(b, ",\"last_batch\":");
    jb_int(b, s->last_batch);
    jb_puts(b, ",\"max_batch\":");
    jb_int(b, s->max_batch);
    jb_puts(b, ",\"pending\":");
    jb_int(b, (long long)pending);
    jb_puts(b, ",\"error\":");
    jb_cstr(b, error);
    jb_putc(b, '}');
    return done(b);
}
