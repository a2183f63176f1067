/* out.c: the JSON of receipts, rejections, events and the status (see out.h).
 *
 * Written with jbuf rather than a cJSON tree: the texts are small and fixed in shape,
 * and the event rows arrive already as JSON text (db_apply.c writes them as it steps). */
#include "out.h"

#include "util.h"

#ifndef MOSQLITE_VERSION
#define MOSQLITE_VERSION "0"
#endif


static int done(struct jbuf *b)
{
    return b->oom ? -1 : 0;
}

/* ,"key":value (key needs no escaping) */
static void put_str(struct jbuf *b, const char *key, const char *v)
{
    jb_putc(b, ',');
    jb_key(b, key);
    jb_cstr(b, v);
}

static void put_int(struct jbuf *b, const char *key, long long v)
{
    jb_putc(b, ',');
    jb_key(b, key);
    jb_int(b, v);
}

int out_receipt(struct jbuf *b, const struct outcome *o)
{
    jb_reset(b);
    jb_puts(b, "{\"id\":");
    jb_cstr(b, o->id);
    if (o->kind == OUT_REJECTED) {
        put_str(b, "status", "rejected");
        put_str(b, "error", o->error);
    } else if (o->kind == OUT_DUP) {
        put_str(b, "status", "duplicate");
    } else if (o->kind == OUT_SCHEDULED) {
        char due[UTIL_TIME_LEN];
        util_time_format(o->due_ms, due);
        put_str(b, "status", "scheduled");
        put_str(b, "due", due);
    } else if (o->kind == OUT_CANCELLED) {
        put_str(b, "status", "cancelled");
        put_str(b, "cancel", o->cancel);
    } else if (o->kind == OUT_WAITING) {
        put_str(b, "status", "waiting");
        put_str(b, "after", o->after);
    } else {
        put_str(b, "status", "applied");
        put_int(b, "changes", o->changes);
        if (o->rowid >= 0)
            put_int(b, "rowid", o->rowid);
    }
    if (o->extra && (o->kind == OUT_APPLIED || o->kind == OUT_DUP)) {
        jb_putc(b, ',');
        jb_puts(b, o->extra);
    }
    jb_putc(b, '}');
    return done(b);
}

int out_rejection(struct jbuf *b, const char *topic, const struct outcome *o,
                  const char *payload, size_t len)
{
    jb_reset(b);
    jb_puts(b, "{\"topic\":");
    jb_cstr(b, topic);
    put_str(b, "id", o->id);
    put_str(b, "error", o->error);
    jb_puts(b, ",\"payload\":");
    jb_str(b, payload, len > REQ_EXCERPT ? REQ_EXCERPT : len);
    jb_putc(b, '}');
    return done(b);
}

int out_event(struct jbuf *b, const char *table, enum op_kind kind, const char *rows, size_t n,
              int truncated)
{
    jb_reset(b);
    jb_puts(b, "{\"table\":");
    jb_cstr(b, table);
    put_str(b, "op", op_names[kind]);
    jb_puts(b, ",\"rows\":[");
    jb_putn(b, rows, n);
    jb_putc(b, ']');
    if (truncated)
        jb_puts(b, ",\"truncated\":true");
    jb_putc(b, '}');
    return done(b);
}

int out_status(struct jbuf *b, const char *state, const char *since, const struct out_stats *s,
               size_t pending, const char *error, const struct out_versions *v)
{
    jb_reset(b);
    jb_puts(b, "{\"state\":");
    jb_cstr(b, state);
    put_str(b, "version", MOSQLITE_VERSION);
    put_str(b, "since", since);
    put_int(b, "applied", s->applied);
    put_int(b, "rejected", s->rejected);
    put_int(b, "duplicates", s->duplicates);
    put_int(b, "scheduled", s->scheduled);
    put_int(b, "cancelled", s->cancelled);
    put_int(b, "commits", s->commits);
    put_int(b, "seq", s->seq);
    put_int(b, "epoch", s->epoch);
    jb_puts(b, ",\"last_commit_ms\":");
    jb_double(b, (double)(long long)(s->last_commit_ms * 1000.0) / 1000.0);
    put_int(b, "last_batch", s->last_batch);
    put_int(b, "max_batch", s->max_batch);
    put_int(b, "pending", (long long)pending);
    put_str(b, "error", error);
    jb_puts(b, s->paused ? ",\"paused\":true" : ",\"paused\":false");
    if (v) {
        put_str(b, "broker", v->broker && v->broker[0] ? v->broker : NULL);
        put_str(b, "libmosquitto", v->libmosquitto && v->libmosquitto[0] ? v->libmosquitto : NULL);
        put_str(b, "sqlite", v->sqlite && v->sqlite[0] ? v->sqlite : NULL);
        put_str(b, "request_protocol", v->request_protocol);
    }
    jb_putc(b, '}');
    return done(b);
}
