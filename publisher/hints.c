/* hints.c: what mosqlite-pub reads in a request to say more than the writer would: a
 * whole request given where a row belongs (mosquitto_pub's {"values": ...}), and
 * whether a request only updates or deletes (applied with no change, it matched no
 * row). See hints.h. */
#include "hints.h"
#include "log.h"

#include <cJSON.h>
#include <string.h>

static int updates_or_deletes(const cJSON *o)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");

    return cJSON_IsString(op) && (!strcmp(op->valuestring, "update") ||
                                  !strcmp(op->valuestring, "delete"));
}

/* 1 when the request json only updates or deletes: its op, or every op of its ops. */
int only_updates(const char *json)
{
    cJSON *r, *op, *ops, *array;
    int yes;

    if (!strstr(json, "\"update\"") && !strstr(json, "\"delete\""))
        return 0;
    if (!(r = cJSON_Parse(json)))
        return 0;
    ops = cJSON_GetObjectItemCaseSensitive(r, "ops");
    yes = cJSON_IsArray(ops) ? cJSON_GetArraySize(ops) > 0 : updates_or_deletes(r);
    array = cJSON_IsArray(ops) ? ops : NULL;
    cJSON_ArrayForEach(op, array)
        yes = yes && updates_or_deletes(op);
    cJSON_Delete(r);
    return yes;
}

/* A whole request given where the row belongs (mosquitto_pub's {"values": {...}}): the
 * member that shows it ("ops", "set", "where" or "values"), or NULL. Only an object of
 * envelope fields alone, with an object in values/set/where or an array in ops, counts:
 * a row of a table whose columns are so named goes as a JSON Lines request (`-`). */
const char *envelope_of(const char *data, int *deletes)
{
    static const char *const fields[] = {"values", "set", "where", "ops", "op", "table", "id",
                                         "reply_to", "at", "delay_ms", NULL};
    cJSON *r = cJSON_Parse(data), *m, *op = cJSON_GetObjectItemCaseSensitive(r, "op");
    cJSON *members = cJSON_IsObject(r) ? r : NULL;
    const char *const *f, *key = NULL;
    int rank = 0, k;

    *deletes = cJSON_IsString(op) && !strcmp(op->valuestring, "delete");
    cJSON_ArrayForEach(m, members) {
        for (f = fields; *f && strcmp(*f, m->string); f++)
            ;
        if (!*f) {              /* a member no request has: a row */
            key = NULL;
            break;
        }
        /* The strongest sign wins: ops, then set or where, then values. */
        if (!strcmp(*f, "ops"))
            k = cJSON_IsArray(m) ? 3 : 0;
        else if (!strcmp(*f, "set") || !strcmp(*f, "where"))
            k = cJSON_IsObject(m) ? 2 : 0;
        else
            k = !strcmp(*f, "values") && cJSON_IsObject(m);
        if (k > rank) {
            rank = k;
            key = *f;
        }
    }
    cJSON_Delete(r);
    return key;
}

/* The hint for a request given as the row of TABLE (see envelope_of). */
void envelope_hint(const char *key, int deletes, int upsert, const char *table)
{
    const char *op = upsert ? "--op upsert " : "";

    if (!strcmp(key, "ops"))
        log_error("values: {\"ops\": [...]} is a whole transaction, not a row: send it as a line "
                  "of JSON Lines, echo '{\"ops\": [...]}' | mosqlite-pub -");
    else if (strcmp(key, "values") && deletes)
        log_error("values: {\"%s\": ...} is the whole request mosquitto_pub sends, not a row; "
                  "mosqlite-pub builds it: mosqlite-pub --op delete --where '{\"key\": value}' %s",
                  key, table);
    else if (strcmp(key, "values"))
        log_error("values: {\"%s\": ...} is the whole request mosquitto_pub sends, not a row; "
                  "mosqlite-pub builds it: the new values go directly, mosqlite-pub --op update "
                  "--where '{\"key\": value}' %s '{\"col\": value, ...}'", key, table);
    else
        log_error("values: {\"values\": ...} is the whole request mosquitto_pub sends, not a row; "
                  "mosqlite-pub builds it: the row's columns go directly, mosqlite-pub %s%s "
                  "'{\"col\": value, ...}'", op, table);
}
