/* out.h: the JSON the writer publishes, built from plain values: receipts, events,
 * rejections and the status. Pure: a buffer in, text out, no globals, no I/O; batch.c
 * publishes the text on the topic each is for:
 *
 *   receipt    the request's reply_to (or MQTT v5 Response Topic), after COMMIT
 *              {"id":...,"status":"applied","changes":N[,"rowid":N]}
 *              {"id":...,"status":"duplicate"}
 *              {"id":...,"status":"rejected","error":"..."}
 *              {"id":...,"status":"scheduled","due":"2026-11-24T23:00:00.000Z"}
 *              {"id":...,"status":"cancelled","cancel":"ID"}
 *   rejection  PREFIX/rejected: {"topic":...,"id":...,"error":...,"payload":"<first 1 KiB>"}
 *   event      PREFIX/events/TABLE: {"table":...,"op":...,"rows":[...][,"truncated":true]}
 *   status     PREFIX/status, retained: state, version, counters, pending, error
 *
 * Each encoder empties b first, and returns 0, or -1 when out of memory (nothing
 * to publish). */
#ifndef MOSQLITE_OUT_H
#define MOSQLITE_OUT_H

#include <stddef.h>

#include "jbuf.h"
#include "req.h"

/* OUT_DROPPED: a scheduled request queued when due but cancelled since: nothing to
 * publish (the cancel had its receipt). */
enum out_kind { OUT_APPLIED = 1, OUT_DUP, OUT_REJECTED, OUT_SCHEDULED, OUT_CANCELLED, OUT_DROPPED };

/* What became of one request. The strings are heap copies owned by whoever fills
 * the outcome in (batch.c); the encoders only read them. */
struct outcome {
    enum out_kind kind;           /* 0 while not decided */
    int replay_reject;            /* rejected with its batch lost: do not apply again */
    long long changes;            /* rows changed, when applied */
    long long rowid;              /* the row inserted, or -1 */
    long long due_ms;             /* when scheduled: when it is due (wall clock, ms) */
    char *id;                     /* the request's id, or NULL */
    char *reply_to;               /* where its receipt goes, or NULL for none */
    char *error;                  /* the rejection text, when rejected */
    char *cancel;                 /* when cancelled: the id of the request cancelled */
    char *extra;                  /* applied or duplicate: more members, JSON text ("jobs":[...]) */
};

/* The writer's counters, as the status shows them. */
struct out_stats {
    long long applied, rejected, duplicates, commits;
    long long scheduled, cancelled;    /* requests stored for later, and cancels done */
    long long last_batch, max_batch;   /* requests in the last and the largest commit */
    double last_commit_ms;             /* shown to the microsecond */
    int paused;                        /* by an admin command: "paused" in the status */
};

int out_receipt(struct jbuf *b, const struct outcome *o);

/* payload is the rejected request's bytes, cut to REQ_EXCERPT (invalid UTF-8 in it
 * becomes U+FFFD). */
int out_rejection(struct jbuf *b, const char *topic, const struct outcome *o,
                  const char *payload, size_t len);

/* rows is the comma-separated JSON objects of the event's rows (n bytes). */
int out_event(struct jbuf *b, const char *table, enum op_kind kind, const char *rows, size_t n,
              int truncated);

/* What the writer runs on, shown after the counters; an empty or NULL field is null. */
struct out_versions {
    const char *broker;             /* the broker's own version, "" until it has said it */
    const char *libmosquitto, *sqlite;
    const char *request_protocol;   /* "3.1.1" or "5" */
};

/* state is "online" or "offline"; since the start time (ISO 8601); pending the
 * requests held; error the reason the database cannot be written, or NULL; v may be
 * NULL (no version fields). */
int out_status(struct jbuf *b, const char *state, const char *since, const struct out_stats *s,
               size_t pending, const char *error, const struct out_versions *v);

#endif
