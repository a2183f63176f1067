/* work_agent.c: the agent's loop (see work.h and docs/PROTOCOL.md, "Jobs").
 *
 * One thread does all the talking, on one jobs connection (cliconn.c) whose Last
 * Will is `gone` with this run's random session: it says hello, keeps one claim
 * waiting in the writer per free slot (a long poll: the writer answers when a job is
 * ready or the claim's wait_ms has passed, and the agent claims again), starts a job's
 * thread for each grant (work_job.c), beats every lease/3 naming the (job, attempt) of
 * each lease it holds, stops a command on `cancel` or `lease_lost` (SIGTERM to its
 * process group, SIGKILL after the grace), and once a job's thread has finished (its
 * command ended and every line of its log is in the file) sends done, fail or release,
 * republished under the same id until the writer's receipt comes.
 *
 * Claims and beats go at QoS 1 (a claim id is granted at most once; a beat repeats
 * itself), outcomes, hello and bye at QoS 2. Every message of a job goes on the claim's
 * topic, PREFIX/jobs/FAMILY, FAMILY being the longest queue name whose family holds
 * every queue claimed (the broker's ACL vouches for that topic). The session (the
 * connection, its Last Will, a new session, that topic) is work_session.c; the two
 * share work_agent.h. */
#define _GNU_SOURCE                     /* asprintf */
#include "work.h"
#include "work_agent.h"
#include "log.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_SLACK_MS 10000            /* a claim unanswered this long past its wait: ask again */
#define RETRY_FIRST_MS 2000             /* an outcome without a receipt: publish again after... */
#define RETRY_MAX_MS 16000

static double now_ms(void)
{
    return util_now_exact_ms();
}

/* ---- sending ---- */

/* Publish a cJSON message and free it. 0, or -1 when it could not go now. */
static int send_json(struct agent *a, const char *topic, cJSON *o, int qos)
{
    char *s = cJSON_PrintUnformatted(o);
    int rc = s ? cliconn_publish(a->c, topic, s, qos) : -1;

    cJSON_free(s);
    cJSON_Delete(o);
    return rc;
}

cJSON *agent_msg_new(const struct agent *a, const char *op)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddStringToObject(o, "worker", a->wc->worker);
    cJSON_AddStringToObject(o, "session", a->wc->session);
    return o;
}

void agent_send_hello(struct agent *a)
{
    cJSON *o = agent_msg_new(a, "hello"), *q = cJSON_AddArrayToObject(o, "queues");
    int i;

    cJSON_AddStringToObject(o, "host", a->wc->host);
    for (i = 0; i < a->wc->nqueues; i++)
        cJSON_AddItemToArray(q, cJSON_CreateString(a->wc->queues[i]));
    cJSON_AddNumberToObject(o, "jobs", a->wc->jobs);
    send_json(a, a->wtopic, o, 2);
}

/* A claim: whole, a message of its own; else the "claim" of an outcome (no op, its
 * grant goes to the outcome's reply_to). */
static cJSON *claim_json(const struct agent *a, const struct claim *cl, int whole)
{
    cJSON *o = cJSON_CreateObject(), *q;
    int i;

    if (whole)
        cJSON_AddStringToObject(o, "op", "claim");
    cJSON_AddStringToObject(o, "id", cl->id);
    cJSON_AddStringToObject(o, "worker", a->wc->worker);
    cJSON_AddStringToObject(o, "session", a->wc->session);
    if (whole)
        cJSON_AddStringToObject(o, "reply_to", a->reply);
    cJSON_AddNumberToObject(o, "wait_ms", a->wc->wait_ms);
    q = cJSON_AddArrayToObject(o, "queues");
    for (i = 0; i < a->wc->nqueues; i++)
        cJSON_AddItemToArray(q, cJSON_CreateString(a->wc->queues[i]));
    return o;
}

static void send_claim(struct agent *a, struct claim *cl)
{
    cl->sent_at = now_ms();
    send_json(a, a->topic, claim_json(a, cl, 1), 1);
}

static void new_claim(struct agent *a)
{
    struct claim *cl = &a->claims[a->nclaims++];

    snprintf(cl->id, sizeof cl->id, "%s.%llu", a->wc->session, ++a->claim_seq);
    send_claim(a, cl);
}

/* Forget claim i. */
static void drop_claim(struct agent *a, int i)
{
    a->claims[i] = a->claims[--a->nclaims];
}

static int find_claim(const struct agent *a, const char *id)
{
    int i;

    for (i = 0; id && i < a->nclaims; i++)
        if (!strcmp(a->claims[i].id, id))
            return i;
    return -1;
}

static struct job *find_job(const struct agent *a, long long job, long long attempt)
{
    int i;

    for (i = 0; i < a->njobs; i++)
        if (a->jobs[i]->id == job && (attempt < 0 || a->jobs[i]->attempt == attempt))
            return a->jobs[i];
    return NULL;
}

/* A lease the agent does not run (a grant for a claim it no longer waits for): give it
 * back at once, under its fence, with no receipt waited for. */
static void release_unwanted(struct agent *a, long long job, long long attempt)
{
    cJSON *o = cJSON_CreateObject();
    char id[96];

    snprintf(id, sizeof id, "%lld.%lld.release", job, attempt);
    cJSON_AddStringToObject(o, "op", "release");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "job", (double)job);
    cJSON_AddNumberToObject(o, "attempt", (double)attempt);
    cJSON_AddStringToObject(o, "reply_to", a->reply);
    send_json(a, a->topic, o, 2);
}

/* The job's progress file, when it has changed: a progress (before the beat, and once
 * more when the command has ended, before the outcome). */
static void send_progress(struct agent *a, struct job *j)
{
    char *msg;

    if (j->outcome_sent || !(msg = job_report_progress(j)))
        return;
    cliconn_publish(a->c, a->topic, msg, 1);
    free(msg);
}

static void send_beat(struct agent *a)
{
    cJSON *o = agent_msg_new(a, "beat"), *arr, *e;
    double lease = 0;
    int i, n = 0;

    cJSON_AddStringToObject(o, "reply_to", a->reply);
    arr = cJSON_AddArrayToObject(o, "jobs");
    for (i = 0; i < a->njobs; i++) {
        struct job *j = a->jobs[i];
        if (j->stop == STOP_LEASE_LOST)
            continue;
        send_progress(a, j);
        e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "job", (double)j->id);
        cJSON_AddNumberToObject(e, "attempt", (double)j->attempt);
        cJSON_AddItemToArray(arr, e);
        if (!lease || j->lease_ms < lease)
            lease = (double)j->lease_ms;
        n++;
    }
    if (!n) {
        cJSON_Delete(o);
        a->next_beat = 0;
        return;
    }
    send_json(a, a->wtopic, o, 1);
    a->next_beat = now_ms() + lease / 3;
}

/* ---- a job's end ---- */

static const char *signame(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
        [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE", [SIGKILL] = "SIGKILL",
        [SIGSEGV] = "SIGSEGV", [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
    };
    return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) && names[sig] ? names[sig] : "a signal";
}

/* The slots taken: jobs whose outcome is not yet sent (a job whose outcome is on its
 * way frees its slot: the next claim goes with that outcome, or at once). */
static int slots_taken(const struct agent *a)
{
    int i, n = 0;

    for (i = 0; i < a->njobs; i++)
        if (!a->jobs[i]->out_msg)
            n++;
    return n;
}

static void new_claim(struct agent *a);
static cJSON *claim_json(const struct agent *a, const struct claim *cl, int whole);

/* Build the outcome of a finished job into j->out_msg (NULL: none is sent). A done or
 * a fail carries the claim of the slot it frees ("claim": one request per job). */
static void make_outcome(struct agent *a, struct job *j)
{
    cJSON *o;
    const char *op;
    char error[128] = "";
    int code, w = j->wstatus;

    if (j->stop == STOP_LEASE_LOST)
        return;                         /* no longer ours: nothing to say */
    code = WIFSIGNALED(w) ? 128 + WTERMSIG(w) : WEXITSTATUS(w);
    if (j->stop == STOP_RELEASE)
        op = "release";
    else if (j->stop == STOP_NONE && j->started && WIFEXITED(w) && code == 0)
        op = "done";
    else
        op = "fail";
    if (!j->started)
        snprintf(error, sizeof error, "cannot start %s", a->wc->cmd[0]);
    else if (j->stop == STOP_TIMEOUT)
        snprintf(error, sizeof error, "timeout");
    else if (j->stop == STOP_CANCEL)
        snprintf(error, sizeof error, "cancelled");
    else if (WIFSIGNALED(w))
        snprintf(error, sizeof error, "killed by signal %d (%s)", WTERMSIG(w), signame(WTERMSIG(w)));
    else if (code)
        snprintf(error, sizeof error, "exit status %d", code);
    snprintf(j->out_id, sizeof j->out_id, "%lld.%lld.%s", j->id, j->attempt, op);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddStringToObject(o, "id", j->out_id);
    cJSON_AddNumberToObject(o, "job", (double)j->id);
    cJSON_AddNumberToObject(o, "attempt", (double)j->attempt);
    if (!strcmp(op, "done") && j->result)
        cJSON_AddRawToObject(o, "result", j->result);    /* the command's text, checked */
    if (strcmp(op, "release")) {
        cJSON_AddNumberToObject(o, "exit_code", code);
        if (*error)
            cJSON_AddStringToObject(o, "error", error);
        if (j->stop == STOP_CANCEL)
            cJSON_AddTrueToObject(o, "cancelled");
    }
    cJSON_AddStringToObject(o, "reply_to", a->reply);
    if (strcmp(op, "release") && !a->stopping && slots_taken(a) - 1 + a->nclaims < a->wc->jobs) {
        struct claim *cl = &a->claims[a->nclaims++];
        snprintf(cl->id, sizeof cl->id, "%s.%llu", a->wc->session, ++a->claim_seq);
        cl->sent_at = now_ms();
        snprintf(j->next_claim, sizeof j->next_claim, "%s", cl->id);
        cJSON_AddItemToObject(o, "claim", claim_json(a, cl, 0));
    }
    j->out_msg = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (j->stop == STOP_CANCEL)
        log_info("job %lld attempt %lld: cancelled (%llu lines)", j->id, j->attempt, j->lines);
    else
        log_info("job %lld attempt %lld: %s%s%s (%llu lines)", j->id, j->attempt,
                 !strcmp(op, "done") ? "done" : !strcmp(op, "release") ? "released" : "failed",
                 *error ? ": " : "", error, j->lines);
}

static void remove_job(struct agent *a, struct job *j)
{
    int i;

    for (i = 0; i < a->njobs; i++)
        if (a->jobs[i] == j) {
            a->jobs[i] = a->jobs[--a->njobs];
            break;
        }
    job_free(j);
}

/* Stop a job's command: SIGTERM to its group now, SIGKILL after the grace. */
static void stop_job(struct job *j, enum job_stop why)
{
    if (j->stop == STOP_NONE || why == STOP_LEASE_LOST)
        j->stop = why;
    if (!j->term_at) {
        j->term_at = now_ms();
        job_signal(j, SIGTERM);
    }
}

/* Timers and ends of each job. */
static void tend_jobs(struct agent *a)
{
    double now = now_ms();
    int i;

    for (i = 0; i < a->njobs; i++) {
        struct job *j = a->jobs[i];

        if (j->term_at && !j->kill_at && now - j->term_at >= a->wc->grace_ms) {
            j->kill_at = now;
            job_signal(j, SIGKILL);
        }
        if (j->stop == STOP_NONE && j->timeout_ms > 0 && now - j->started_ms >= (double)j->timeout_ms) {
            log_warn("job %lld attempt %lld: ran past its timeout (%lld ms): stopping it", j->id,
                     j->attempt, j->timeout_ms);
            stop_job(j, STOP_TIMEOUT);
        }
        if (!__atomic_load_n(&j->finished, __ATOMIC_SEQ_CST) || j->outcome_sent)
            continue;
        if (j->stop != STOP_LEASE_LOST)
            send_progress(a, j);        /* its last word before the outcome */
        j->outcome_sent = 1;
        if (j->spool_dir[0] && !j->log_ok) {
            /* The log is not all in the file: the outcome is not said (the lease ends
             * with this agent's session, and the job goes back). */
            log_warn("job %lld attempt %lld: its log is not all delivered: no outcome sent",
                     j->id, j->attempt);
            a->unconfirmed = 1;
            remove_job(a, j);
            i--;
            continue;
        }
        make_outcome(a, j);
        if (!j->out_msg) {
            if (j->stop == STOP_LEASE_LOST)
                log_warn("job %lld attempt %lld: stopped, its lease lost (%llu lines)", j->id,
                         j->attempt, j->lines);
            remove_job(a, j);
            i--;
            continue;
        }
        cliconn_publish(a->c, a->topic, j->out_msg, 2);
        j->out_backoff_ms = RETRY_FIRST_MS;
        j->out_retry_at = now + j->out_backoff_ms;
    }
    for (i = 0; i < a->njobs; i++) {
        struct job *j = a->jobs[i];
        if (j->out_msg && now >= j->out_retry_at) {
            cliconn_publish(a->c, a->topic, j->out_msg, 2);
            j->out_backoff_ms = j->out_backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : j->out_backoff_ms * 2;
            j->out_retry_at = now + j->out_backoff_ms;
        }
    }
}

/* ---- what comes in ---- */

static void on_grant(struct agent *a, struct work_in *g)
{
    int ci = find_claim(a, g->claim);
    struct job *j;

    if (ci < 0 || a->stopping) {
        if (ci >= 0)
            drop_claim(a, ci);
        if (!find_job(a, g->job, g->attempt)) {
            if (a->stopping)
                log_info("job %lld attempt %lld: granted while stopping: released", g->job, g->attempt);
            release_unwanted(a, g->job, g->attempt);
        }
        return;
    }
    drop_claim(a, ci);
    if (!(j = calloc(1, sizeof *j))) {
        log_error("job %lld attempt %lld: out of memory: released", g->job, g->attempt);
        release_unwanted(a, g->job, g->attempt);
        return;
    }
    j->id = g->job;
    j->attempt = g->attempt;
    j->lease_ms = g->lease_ms < 1000 ? 1000 : g->lease_ms;    /* beats every lease/3: no flood */
    j->timeout_ms = g->timeout_ms > 0 ? g->timeout_ms : 0;
    j->lost = g->lost > 0 ? g->lost : 0;
    j->queue = g->queue ? g->queue : strdup("");
    j->claim = g->claim;
    j->enqueued_at = g->enqueued_at;
    j->payload = g->payload;
    j->build_id = g->build_id;
    g->queue = g->claim = g->enqueued_at = g->payload = g->build_id = NULL;   /* the job's now */
    if (!j->build_id && asprintf(&j->build_id, "%lld", j->id) < 0)
        j->build_id = NULL;
    j->wc = a->wc;
    j->started_ms = now_ms();
    if (!j->queue || !j->build_id || job_start(j)) {
        log_error("job %lld attempt %lld: cannot start its thread: released", j->id, j->attempt);
        release_unwanted(a, j->id, j->attempt);
        free(j->queue);
        free(j->claim);
        free(j->enqueued_at);
        free(j->payload);
        free(j->build_id);
        free(j);
        return;
    }
    a->jobs[a->njobs++] = j;
    a->ran++;
    log_info("job %lld attempt %lld from %s: running", j->id, j->attempt, j->queue);
    if (!a->next_beat || a->next_beat > now_ms() + (double)j->lease_ms / 3)
        a->next_beat = now_ms() + (double)j->lease_ms / 3;
}

static void on_receipt(struct agent *a, const struct work_in *r)
{
    const char *id = r->id, *status = r->status, *error = r->error;
    int i = find_claim(a, id);

    if (!id || !status)
        return;
    if (i >= 0) {                       /* a claim is answered only when refused */
        drop_claim(a, i);
        if (!strcmp(status, "rejected")) {
            if (error && strstr(error, "has ended")) {
                log_warn("the writer has ended this session (%s): starting a new one", error);
                agent_renew_session(a);
                return;
            }
            log_error("claim refused: %s", error ? error : "(no reason)");
            a->refused = 1;
            a->stopping = 1;
            a->stop_at = now_ms();
        }
        return;
    }
    for (i = 0; i < a->njobs; i++) {
        struct job *j = a->jobs[i];
        int ci;
        if (!j->out_msg || strcmp(j->out_id, id))
            continue;
        ci = j->next_claim[0] ? find_claim(a, j->next_claim) : -1;
        if (ci >= 0 && r->claim_error) {    /* the outcome went in, its claim did not */
            struct work_in c = {.kind = WM_RECEIPT};
            c.id = j->next_claim;
            c.status = (char *)"rejected";
            c.error = r->claim_error;
            on_receipt(a, &c);
        } else if (ci >= 0 && strcmp(status, "applied")) {
            send_claim(a, &a->claims[ci]);  /* not applied now: its claim was not made */
        }
        if (!strcmp(status, "rejected") && j->result && !strcmp(strrchr(j->out_id, '.'), ".done")) {
            /* the writer may bound the result tighter (max-depth): the job without it */
            log_warn("job %lld attempt %lld: done refused: %s: sent again without its result",
                     j->id, j->attempt, error ? error : "(no reason)");
            free(j->result);
            j->result = NULL;
            free(j->out_msg);
            j->out_msg = NULL;
            j->next_claim[0] = '\0';
            make_outcome(a, j);
            cliconn_publish(a->c, a->topic, j->out_msg, 2);
            j->out_backoff_ms = RETRY_FIRST_MS;
            j->out_retry_at = now_ms() + j->out_backoff_ms;
            return;
        }
        if (!strcmp(status, "rejected"))
            log_warn("job %lld attempt %lld: %s refused: %s", j->id, j->attempt,
                     strrchr(j->out_id, '.') + 1, error ? error : "(no reason)");
        else if (!strcmp(j->out_id + strlen(j->out_id) - 5, ".done"))
            a->done++;
        else
            a->failed++;
        remove_job(a, j);
        return;
    }
}

static void on_message(struct agent *a, const struct climsg *m)
{
    struct work_in in;
    struct job *j;
    char since[sizeof a->since];
    int i;

    if (!strcmp(m->topic, a->status_topic)) {
        if (work_status_read(m->payload, m->len, since, sizeof since) && strcmp(since, a->since)) {
            if (*a->since)                  /* a new writer: its waiting claims are gone */
                for (i = 0; i < a->nclaims; i++)
                    send_claim(a, &a->claims[i]);
            snprintf(a->since, sizeof a->since, "%s", since);
        }
        return;
    }
    if (work_in_read(&in, m->payload, m->len))
        return;
    switch (in.kind) {
    case WM_RECEIPT:
        on_receipt(a, &in);
        break;
    case WM_GRANT:
        on_grant(a, &in);
        break;
    case WM_EMPTY:
        if ((i = find_claim(a, in.claim)) >= 0)
            drop_claim(a, i);
        break;
    case WM_CANCEL:
    case WM_LEASE_LOST:
        if ((j = find_job(a, in.job, in.attempt)) && !j->outcome_sent) {
            enum job_stop why = in.kind == WM_CANCEL ? STOP_CANCEL : STOP_LEASE_LOST;
            if (j->stop != why) {           /* a cancel is repeated at each beat */
                log_warn("job %lld attempt %lld: %s: stopping its command", j->id, j->attempt,
                         why == STOP_CANCEL ? "cancelled" : "lease lost");
                stop_job(j, why);
            }
        }                                   /* an outcome on its way: its receipt will say */
        break;
    case WM_OTHER:
        break;
    }
    work_in_free(&in);
}

/* The signals: the first stops claiming, the second (or the drain's end) releases the
 * jobs in hand, the third leaves at once. */
static void tend_stop(struct agent *a, volatile sig_atomic_t *stop, double now)
{
    struct work_conf *wc = a->wc;
    int i;

    if (*stop >= 1 && !a->stopping) {
        a->stopping = 1;
        a->stop_at = now;
        if (a->njobs)
            log_info("stopping: no more claims; the %d job%s in hand finish (a second signal "
                     "releases them)", a->njobs, a->njobs == 1 ? "" : "s");
        else
            log_info("stopping: no job in hand");
    }
    if (a->stopping && !a->releasing && a->njobs &&
        (*stop >= 2 || (wc->drain_s > 0 && now - a->stop_at >= wc->drain_s * 1000.0))) {
        a->releasing = 1;
        a->release_at = now;
        log_info("releasing the %d job%s in hand", a->njobs, a->njobs == 1 ? "" : "s");
        for (i = 0; i < a->njobs; i++)
            if (!a->jobs[i]->outcome_sent)
                stop_job(a->jobs[i], STOP_RELEASE);
    }
    if (*stop >= 3) {
        log_warn("third signal: leaving now (the broker ends this session's leases)");
        _exit(WORK_EXIT_UNCONFIRMED);   /* no clean disconnect: the Last Will goes */
    }
    if (a->releasing)                   /* jobs stopped: do not wait for ever on their log */
        for (i = 0; i < a->njobs; i++)
            a->jobs[i]->abandon = 1;
}

/* One claim waiting per free slot: made again after a reconnect or past its wait. */
static void tend_claims(struct agent *a, double now)
{
    struct work_conf *wc = a->wc;
    unsigned rc;
    int i;

    if ((rc = cliconn_reconnects(a->c)) != a->reconnects) {
        a->reconnects = rc;             /* claims made while away may be lost: again */
        for (i = 0; i < a->nclaims; i++)
            send_claim(a, &a->claims[i]);
    }
    if (!a->stopping && cliconn_connected(a->c))
        while (slots_taken(a) + a->nclaims < wc->jobs)
            new_claim(a);
    for (i = 0; i < a->nclaims; i++)
        if (now - a->claims[i].sent_at >= wc->wait_ms + CLAIM_SLACK_MS)
            send_claim(a, &a->claims[i]);
}

/* Releasing past the grace and the linger: outcomes still unanswered are left
 * unconfirmed. */
static void give_up_unconfirmed(struct agent *a, double now)
{
    struct work_conf *wc = a->wc;
    int i;

    if (a->releasing && now - a->release_at >= wc->grace_ms + wc->linger_s * 1000.0)
        for (i = 0; i < a->njobs; i++)
            if (a->jobs[i]->out_msg) {  /* no receipt: the writer is away */
                log_warn("job %lld attempt %lld: no answer to its %s: leaving it unconfirmed",
                         a->jobs[i]->id, a->jobs[i]->attempt, strrchr(a->jobs[i]->out_id, '.') + 1);
                a->unconfirmed = 1;
                remove_job(a, a->jobs[i--]);
            }
}

int agent_run(struct work_conf *wc, volatile sig_atomic_t *stop)
{
    struct agent *a = calloc(1, sizeof *a);
    char err[512];
    int usage = 0, status, warned = 0;

    if (!a) {
        log_error("out of memory");
        return WORK_EXIT_CONNECT;
    }
    a->wc = wc;
    if (agent_family_topic(a, err, sizeof err)) {
        log_error("%s", err);
        free(a);
        return WORK_EXIT_USAGE;
    }
    snprintf(a->reply, sizeof a->reply, "%s/jobs/to/%s", wc->prefix, wc->worker);
    snprintf(a->wtopic, sizeof a->wtopic, "%s/jobs/worker", wc->prefix);
    snprintf(a->status_topic, sizeof a->status_topic, "%s/status", wc->prefix);
    if (agent_open_session(a, &usage, err, sizeof err)) {
        log_error("%s", err);
        cliconn_close(a->c);
        free(a);
        return usage ? WORK_EXIT_USAGE : WORK_EXIT_CONNECT;
    }
    if (wc->verbose)
        log_info("worker %s (session %s, host %s): claiming from %s on %s, %d slot%s", wc->worker,
                 wc->session, wc->host, wc->queues[0], a->topic, wc->jobs, wc->jobs > 1 ? "s" : "");

    for (;;) {
        struct climsg *m;
        double now = now_ms();

        tend_stop(a, stop, now);
        tend_claims(a, now);
        if ((m = cliconn_next(a->c, 100))) {
            do {
                on_message(a, m);
                climsg_free(m);
            } while ((m = cliconn_next(a->c, 0)));
        }
        if (!a->refused && cliconn_denied(a->c, err, sizeof err)) {
            log_error("refused by the broker's ACL: this login may not publish on %s", err);
            a->refused = 1;
            if (!a->stopping) {
                a->stopping = 1;
                a->stop_at = now;
            }
        }
        tend_jobs(a);
        if (a->njobs && (!a->next_beat || now_ms() >= a->next_beat))
            send_beat(a);
        give_up_unconfirmed(a, now);
        if (a->stopping && a->njobs == 0)
            break;
        if (!cliconn_connected(a->c) && !warned) {
            log_warn("lost the broker: reconnecting (jobs go on)");
            warned = 1;
        } else if (cliconn_connected(a->c) && warned) {
            log_info("connected again");
            warned = 0;
        }
    }
    {
        cJSON *bye = agent_msg_new(a, "bye");
        send_json(a, a->wtopic, bye, 2);
    }
    cliconn_close(a->c);
    if (wc->verbose)
        log_info("ran %llu jobs: %llu done, %llu failed or released", a->ran, a->done, a->failed);
    status = a->refused ? WORK_EXIT_REFUSED : a->unconfirmed ? WORK_EXIT_UNCONFIRMED : WORK_EXIT_OK;
    free(a);
    return status;
}
