/* work_session.c: the agent's session (see work_agent.c): the jobs connection opened
 * with its Last Will `gone` naming this run's session, a new session when the writer
 * saw the old one end, and the topic every message of the agent goes on. */
#include "work.h"
#include "work_agent.h"
#include "log.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The jobs connection: MQTT 5, client id = the worker's name, a session kept for ten
 * minutes across reconnects (a short break loses nothing in flight, and a reconnect
 * within the Will Delay cancels the will), and the Last Will will on will_topic that
 * the broker publishes when the connection ends without a clean DISCONNECT (the agent
 * killed, its machine or network gone). *usage set when the cause is ours (TLS files). */
static struct cliconn *open_conn(const struct work_conf *wc, const char *will_topic, const char *will,
                                 int *usage, char *err, size_t errlen)
{
    struct cliconn_opts o;
    struct cliconn *c;
    int status;

    cliconn_opts_init(&o, wc->cl);
    o.client_id = wc->worker;
    o.keepalive = wc->keepalive;
    o.session_s = 600;
    o.tcp_nodelay = 1;
    o.will_topic = will_topic;
    o.will_payload = will;
    o.will_delay_s = wc->will_delay_s;
    c = cliconn_open(&o, &status, err, errlen);
    *usage = !c && status == CLI_USAGE;
    return c;
}

int agent_open_session(struct agent *a, int *usage, char *err, size_t errlen)
{
    cJSON *w = agent_msg_new(a, "gone");
    char *will = cJSON_PrintUnformatted(w);

    cJSON_Delete(w);
    if (!will) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->c = open_conn(a->wc, a->wtopic, will, usage, err, errlen);
    cJSON_free(will);
    if (!a->c || cliconn_subscribe(a->c, a->reply, err, errlen) ||
        cliconn_subscribe(a->c, a->status_topic, err, errlen))
        return -1;
    a->reconnects = 0;
    agent_send_hello(a);
    return 0;
}

int agent_renew_session(struct agent *a)
{
    char err[512];
    int usage, i;

    cliconn_close(a->c);
    a->c = NULL;
    if (mosqlite_new_id(a->wc->session)) {
        log_error("no randomness for a new session id");
        a->stopping = 1;
        return -1;
    }
    while (agent_open_session(a, &usage, err, sizeof err)) {
        log_error("%s: trying again", err);
        cliconn_close(a->c);
        a->c = NULL;
        sleep(1);
    }
    a->nclaims = 0;
    for (i = 0; i < a->njobs; i++)      /* outcomes: the same ids, on the new connection */
        if (a->jobs[i]->out_msg)
            a->jobs[i]->out_retry_at = 0;
    return 0;
}

/* The topic every message goes on: PREFIX/jobs/FAMILY (see the top). */
int agent_family_topic(struct agent *a, char *err, size_t errlen)
{
    const char *q0 = a->wc->queues[0];
    size_t len = strlen(q0), n;
    int i, ok;

    for (;;) {
        for (ok = 1, i = 1; i < a->wc->nqueues && ok; i++) {
            const char *q = a->wc->queues[i];
            ok = !strncmp(q, q0, len) && (q[len] == '\0' || q[len] == '.');
        }
        if (ok)
            break;
        for (n = len; n > 0 && q0[n - 1] != '.'; n--)
            ;
        if (n == 0) {
            snprintf(err, errlen, "queues %s and %s are of no common family: one claim names "
                     "queues of one family (Q and Q.*, e.g. build.arm64,build.any)", q0,
                     a->wc->queues[i - 1]);
            return -1;
        }
        len = n - 1;
    }
    snprintf(a->topic, sizeof a->topic, "%s/jobs/%.*s", a->wc->prefix, (int)len, q0);
    return 0;
}
