/* admin.c: reading maintenance commands and the shape of their answers (see admin.h).
 * Pure: an object in, a command or an error text out; no broker, no file. */
#include "admin.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "req.h"
#include "util.h"
#include "workers.h"

const char *const admin_names[] = {
    "backup", "checkpoint", "integrity_check", "optimize", "stats", "pause", "resume",
    "job_retry", "job_discard", "job_cancel", "job_run_now", "queue_pause", "queue_resume", "workers", NULL,
};

int admin_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (!n || n > ADMIN_NAME_MAX || name[0] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* 1 to ADMIN_ID_MAX printable ASCII characters (a request id's rule). */
static int admin_id_ok(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return n >= 1 && n <= ADMIN_ID_MAX;
}

/* workers' "limit" (absent: the default). */
static int read_limit(const cJSON *limit, struct admin_req *r, char *err, size_t errlen)
{
    if (!limit)
        return 0;
    if (!cJSON_IsNumber(limit) || (limit->type & JSON_REAL) || limit->valuedouble < 1 ||
        limit->valuedouble > WORKERS_LIMIT_MAX || limit->valuedouble != (double)(int)limit->valuedouble)
        return util_fail(err, errlen, "\"limit\" must be an integer from 1 to %d", WORKERS_LIMIT_MAX);
    r->limit = (int)limit->valuedouble;
    return 0;
}

int admin_read(const cJSON *root, struct admin_req *r, char *err, size_t errlen)
{
    const cJSON *f, *cmd = NULL, *name = NULL, *job = NULL, *queue = NULL, *id = NULL, *limit = NULL;
    int i;

    r->cmd = -1;
    r->name[0] = r->id[0] = '\0';
    r->job = 0;
    r->queue[0] = '\0';
    r->limit = WORKERS_LIMIT_DFLT;
    for (f = root->child; f; f = f->next) {
        if (!strcmp(f->string, "cmd"))
            cmd = f;
        else if (!strcmp(f->string, "name"))
            name = f;
        else if (!strcmp(f->string, "job"))
            job = f;
        else if (!strcmp(f->string, "queue"))
            queue = f;
        else if (!strcmp(f->string, "id"))
            id = f;
        else if (!strcmp(f->string, "limit"))
            limit = f;
        else if (strcmp(f->string, "reply_to"))
            return util_fail(err, errlen, "unknown field \"%.100s\" (a command has \"cmd\", "
                             "\"name\", \"job\", \"queue\", \"limit\", \"id\" and \"reply_to\")", f->string);
    }
    if (cJSON_IsString(cmd))
        for (i = 0; admin_names[i]; i++)
            if (!strcmp(admin_names[i], cmd->valuestring))
                r->cmd = i;
    if (r->cmd < 0)
        return util_fail(err, errlen, "\"cmd\" must be one of backup, checkpoint, integrity_check, "
                         "optimize, stats, pause, resume, job_retry, job_discard, job_cancel, "
                         "job_run_now, queue_pause, queue_resume, workers");
    if (id && (!cJSON_IsString(id) || !admin_id_ok(id->valuestring)))
        return util_fail(err, errlen, "\"id\" must be a string of 1 to %d printable ASCII characters",
                         ADMIN_ID_MAX);
    if (id)
        snprintf(r->id, sizeof r->id, "%s", id->valuestring);
    if (limit && r->cmd != ADMIN_WORKERS)
        return util_fail(err, errlen, "\"limit\" is only for workers");
    if (r->cmd == ADMIN_WORKERS)
        return (name || job || queue) ? util_fail(err, errlen, "workers takes only \"limit\"") :
               read_limit(limit, r, err, errlen);
    if (r->cmd >= ADMIN_JOB_RETRY && r->cmd <= ADMIN_JOB_RUN_NOW) {
        if (name || queue)
            return util_fail(err, errlen, "%s takes only \"job\"", admin_names[r->cmd]);
        if (!cJSON_IsNumber(job) || (job->type & JSON_REAL) || job->valuedouble < 1 ||
            job->valuedouble > (double)(UTIL_EXACT_INT - 1) || job->valuedouble != (double)(long long)job->valuedouble)
            return util_fail(err, errlen, "%s needs \"job\": a job id (an integer from 1)", admin_names[r->cmd]);
        r->job = (long long)job->valuedouble;
        return 0;
    }
    if (r->cmd == ADMIN_QUEUE_PAUSE || r->cmd == ADMIN_QUEUE_RESUME) {
        if (name || job)
            return util_fail(err, errlen, "%s takes only \"queue\"", admin_names[r->cmd]);
        if (!cJSON_IsString(queue))
            return util_fail(err, errlen, "%s needs \"queue\": a queue's name", admin_names[r->cmd]);
        if (req_queue_check(queue->valuestring, err, errlen))
            return -1;
        snprintf(r->queue, sizeof r->queue, "%s", queue->valuestring);
        return 0;
    }
    if (job || queue)
        return util_fail(err, errlen, "\"%s\" is only for the job and queue commands", job ? "job" : "queue");
    if (r->cmd != ADMIN_BACKUP)
        return name ? util_fail(err, errlen, "\"name\" is only for backup") : 0;
    if (!cJSON_IsString(name) || !admin_name_ok(name->valuestring))
        return util_fail(err, errlen, "\"name\" must be a plain file name: 1 to %d letters, digits, "
                         "'.', '_' or '-', not starting with '.'", ADMIN_NAME_MAX);
    snprintf(r->name, sizeof r->name, "%s", name->valuestring);
    return 0;
}

int admin_error(struct jbuf *b, const char *cmd, const char *error)
{
    jb_reset(b);
    jb_puts(b, "{\"cmd\":");
    jb_cstr(b, cmd);
    jb_puts(b, ",\"error\":");
    jb_cstr(b, error);
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}

void admin_ok(struct jbuf *b, const char *cmd)
{
    jb_reset(b);
    jb_puts(b, "{\"cmd\":");
    jb_cstr(b, cmd);
    jb_puts(b, ",\"ok\":true");
}

int admin_end(struct jbuf *b)
{
    jb_putc(b, '}');
    return b->oom ? -1 : 0;
}
