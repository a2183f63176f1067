/* work_agent.h: what the agent's parts share (work_agent.c, work_session.c; not for the
 * rest of mosqlite-work): its state. */
#ifndef MOSQLITE_WORK_AGENT_H
#define MOSQLITE_WORK_AGENT_H

#include "work.h"

#include <cJSON.h>

struct claim {
    char id[64];
    double sent_at;
};

struct agent {
    struct work_conf *wc;
    struct cliconn *c;
    char topic[512], reply[512], wtopic[512], status_topic[512];
    struct job *jobs[2 * WORK_MAX_JOBS];   /* those running, and those whose outcome is on its way */
    int njobs;
    struct claim claims[WORK_MAX_JOBS];
    int nclaims;
    unsigned long long claim_seq;
    double next_beat;
    unsigned reconnects;
    char since[64];                 /* the writer's start, from its status */
    int stopping, releasing;
    double stop_at, release_at;
    int refused, unconfirmed;
    unsigned long long ran, done, failed;
};

/* work_agent.c: a message of the agent ({"op":OP, "worker", "session"}, to be sent by
 * the caller or freed); hello, with the queues claimed from. */
cJSON *agent_msg_new(const struct agent *a, const char *op);
void agent_send_hello(struct agent *a);

/* work_session.c: open_session: the jobs connection, its subscriptions, hello (0, or
 * -1 with a reason, *usage set when the fault is the configuration's); renew_session:
 * a new session (the writer saw this one end: a will sent during a long break);
 * family_topic: the topic every message goes on, PREFIX/jobs/FAMILY (0, or -1 with a
 * reason). */
int agent_open_session(struct agent *a, int *usage, char *err, size_t errlen);
int agent_renew_session(struct agent *a);
int agent_family_topic(struct agent *a, char *err, size_t errlen);

#endif
