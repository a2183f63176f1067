/* ctl.h: the one door for control messages: every message on the control connection
 * but the broker's own ($SYS/broker/version) comes in here.
 *
 * One table in ctl.c names the control topics (PREFIX/SUFFIX) and their handlers:
 *
 *     PREFIX/query      a named read query (query.c)
 *     PREFIX/admin      a maintenance command (admin.c parses, maint.c runs)
 *     PREFIX/snapshot   a replica asks for a copy of the database (snapshot.c)
 *
 * Every payload is read the way a write request is (json.c: size, UTF-8, depth,
 * \u0000, numbers, duplicate keys, one object), and its answer goes where
 * ctl_read() says (one rule for every control topic): the payload's "reply_to" when
 * it is a topic the writer may answer on (req_reply_check, given once), else the MQTT 5
 * Response Topic when it is one, else nowhere. A message that cannot be read is
 * answered with {"KEY": null, "error": "..."} (KEY the topic's: "query", "cmd"; a
 * snapshot's error is {"error": "..."}); one with nowhere to answer is dropped with a
 * log line. The handler gets a parsed object and a place to answer: it checks its own
 * fields and answers (or keeps where to answer for later, as a backup does).
 *
 * A new control topic is one entry in the table and its handler. */
#ifndef MOSQLITE_CTL_H
#define MOSQLITE_CTL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "jbuf.h"
#include "json.h"
#include "mq.h"

struct queries;
struct maint;
struct snapshot;
struct jobq;

/* What the handlers reach: any may be NULL (no named queries defined). */
struct ctl_parts {
    struct queries *queries;
    struct maint *maint;
    struct snapshot *snap;
    struct jobq *jobq;     /* the job commands (jobq_admin) */
};

struct ctl_limits {
    size_t max_payload;    /* as for write requests: max-payload, max-depth */
    int max_depth;
    const char *prefix;    /* the topic prefix */
};

/* One control message, read. */
struct ctl_msg {
    cJSON *root;           /* the payload, one object; NULL when it could not be parsed */
    const char *to;        /* where the answer goes, or NULL: nowhere */
    const void *corr;      /* MQTT 5 Correlation Data, sent back with the answer */
    int corrlen;
    struct json_nums nums; /* storage for json.c */
};

/* Pure: read a payload and work out where its answer goes. 0, or -1 with the reason in
 * err (m->to is still set when there is a usable place to answer). resp_topic (MQTT 5
 * Response Topic) may be NULL. ctl_msg_clear() after each, ctl_msg_free() at the end. */
int ctl_read(const struct ctl_limits *lim, const char *payload, size_t len, const char *resp_topic,
             struct ctl_msg *m, char *err, size_t errlen);
void ctl_msg_clear(struct ctl_msg *m);
void ctl_msg_free(struct ctl_msg *m);

/* {"KEY": name, "error": error}, or {"error": error} when key is NULL; name may be NULL. */
int ctl_error_json(struct jbuf *b, const char *key, const char *name, const char *error);

struct ctl;

/* Before mq_new (the door is its callback); the limits must outlive it. NULL when out
 * of memory. */
struct ctl *ctl_new(const struct ctl_limits *lim);
/* Once the parts exist: subscribe the control connection to every control topic
 * (before the first mq_poll). 0, or -1 when out of memory. */
int ctl_open(struct ctl *c, struct mq *mq, const struct ctl_parts *parts);
void ctl_free(struct ctl *c);

/* A message on the control connection (an mq_ctl_fn: ud is the struct ctl). */
void ctl_receive(void *ud, const char *topic, const char *payload, size_t len,
                 const char *resp_topic, const void *corr, int corrlen);

#endif
