/* test_req.c: request parsing (req.c) beyond the corpus: what a valid request turns
 * into (ops, columns, conflict target, id, reply_to), the topic check, the topics a
 * receipt may go to, base64. The hostile cases are test_corpus.c. */
#include <string.h>

#include "req.h"
#include "req_hash_ref.h"
#include "schema.h"
#include "unit.h"
#include "util.h"

static sqlite3 *h;
static struct schema sch;
static struct req r;
static const struct req_limits lim = {4096, 8, 3, "mq"};

static void check_hash(void)
{
    static const char *const docs[] = {
        "{}",
        "{\"values\":{\"a\":1,\"b\":\"x\"}}",
        "{\"id\":\"h1\",\"reply_to\":\"mq/receipts/x\",\"after\":\"h0\",\"values\":{\"a\":1}}",
        "{\"ops\":[{\"table\":\"t\",\"values\":{\"n\":0,\"m\":-0,\"r\":-0.0,\"f\":1.5,\"e\":1e3,\"E\":-2.5E-7}}]}",
        "{\"values\":{\"big\":9007199254740991,\"neg\":-9007199254740991,\"k\":999999999999999,\"k1\":1000000000000000,\"i\":2147483648,\"j\":-2147483649}}",
        "{\"values\":{\"pi\":3.141592653589793,\"third\":0.30000000000000004,\"tiny\":5e-324,\"huge\":1.7976931348623157e308,\"one\":1.0}}",
        "{\"values\":{\"s\":\"q\\\"b\\\\s\\/t\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f \\u00e9\\ud83d\\ude00 \\u2028\"}}",
        "{\"values\":{\"k\\\"ey\":1,\"k\\n2\":[],\"e\":{},\"n\":null,\"t\":true,\"f\":false,\"a\":[1,[2,[3,{}]],\"x\"]}}",
        "{\"at\":\"2026-11-25T02:00:00Z\",\"delay_ms\":0,\"cancel\":\"x\",\"values\":{\"\":\"\"}}",
    };
    size_t i;

    for (i = 0; i < sizeof docs / sizeof *docs; i++) {
        cJSON *t = cJSON_Parse(docs[i]);
        unit_check(t && req_hash(t, "mq/write/t") == ref_hash(t, "mq/write/t"),
                   "req: req_hash is the hash of cJSON's compact text: %s", docs[i]);
        cJSON_Delete(t);
    }
}

static int parse(const char *table, const char *payload, char *err, size_t errlen)
{
    req_clear(&r);
    return req_parse(&r, &sch, &lim, table, payload, strlen(payload), err, errlen);
}

static void check_parse(void)
{
    char err[512] = "";
    int ok;

    ok = !parse("T", "{\"id\":\"a1\",\"reply_to\":\"mq/receipts/x\",\"op\":\"upsert\","
                "\"values\":{\"B\":1,\"v\":\"x\"}}", err, sizeof err);
    unit_check(ok && r.nops == 1 && !strcmp(r.id, "a1") && !strcmp(r.reply_to, "mq/receipts/x") &&
               r.ops[0].kind == OP_UPSERT && r.ops[0].table == schema_table(&sch, "t") && r.ops[0].nvals == 2 &&
               r.ops[0].vals[0].col == 1 && r.ops[0].vals[1].col == 2,
               "req: an upsert: id, reply_to, table and columns resolved case-insensitively%s%s",
               *err ? ": " : "", err);
    unit_check(ok && r.ops[0].nconflict == 2 && r.ops[0].conflict[0] == 1 && r.ops[0].conflict[1] == 0,
               "req: the default conflict target is the primary key in key order");
    ok = !parse(NULL, "{\"ops\":[{\"table\":\"t\",\"values\":{}},{\"op\":\"delete\",\"table\":\"t\","
                "\"where\":{\"a\":1,\"b\":2}}]}", err, sizeof err);
    unit_check(ok && r.nops == 2 && r.ops[0].nvals == 0 && r.ops[1].kind == OP_DELETE &&
               r.ops[1].nwhere == 2 && !r.id && !r.reply_to,
               "req: a transaction on the write topic%s%s", *err ? ": " : "", err);
    parse(NULL, "{\"ops\":[{\"table\":\"t\",\"values\":{}},{\"table\":\"t\",\"values\":{}},"
          "{\"table\":\"t\",\"values\":{}},{\"table\":\"t\",\"values\":{}}]}", err, sizeof err);
    unit_check_str(err, "too many ops: 4 (limit 3)", "req: the max-ops limit");
    parse("t", "{\"values\":{\"a\":[[[[[[[1]]]]]]]}}", err, sizeof err);
    unit_check_str(err, "nesting too deep (limit 8)", "req: the max-depth limit");
    parse("t", "{\"id\":\"x\",\"values\":{\"nope\":1}}", err, sizeof err);
    unit_check(!strcmp(err, "unknown column \"nope\" in table \"t\"") && r.id && !strcmp(r.id, "x"),
               "req: a rejected request still has its id for the receipt");
}

/* \u escapes: four hex digits, a surrogate only in a pair, and what is stored is what
 * was sent (cJSON alone cut "a\uzzzzb" to "a"). */
static void check_escapes(void)
{
    static const struct {
        const char *payload, *want;     /* want: the error, or "=" and the bytes stored */
    } cases[] = {
        {"{\"values\":{\"v\":\"a\\uzzzzb\"}}",
         "invalid JSON: \"\\u\" must be followed by four hex digits at byte 17"},
        {"{\"values\":{\"v\":\"a\\u12\"}}",
         "invalid JSON: \"\\u\" must be followed by four hex digits at byte 17"},
        {"{\"values\":{\"v\":\"a\\u12",
         "invalid JSON: \"\\u\" must be followed by four hex digits at byte 17"},
        {"{\"values\":{\"v\\u00zz\":1}}",
         "invalid JSON: \"\\u\" must be followed by four hex digits at byte 13"},
        {"{\"values\":{\"v\":\"\\ud800\"}}",
         "invalid JSON: \"\\ud800\" at byte 16 is a high surrogate without a low one "
         "(\\uDC00 to \\uDFFF) after it"},
        {"{\"values\":{\"v\":\"\\uDBFF\\u0041\"}}",
         "invalid JSON: \"\\uDBFF\" at byte 16 is a high surrogate without a low one "
         "(\\uDC00 to \\uDFFF) after it"},
        {"{\"values\":{\"v\":\"\\ud800\\ud800\"}}",
         "invalid JSON: \"\\ud800\" at byte 16 is a high surrogate without a low one "
         "(\\uDC00 to \\uDFFF) after it"},
        {"{\"values\":{\"v\":\"\\udc00x\"}}",
         "invalid JSON: \"\\udc00\" at byte 16 is a low surrogate without a high one "
         "(\\uD800 to \\uDBFF) before it"},
        {"{\"values\":{\"v\":\"\\u0041\\uDFFF\"}}",
         "invalid JSON: \"\\uDFFF\" at byte 22 is a low surrogate without a high one "
         "(\\uD800 to \\uDBFF) before it"},
        {"{\"values\":{\"v\":\"a\\u0000b\"}}",
         "string contains \\u0000 (byte 17): NUL characters are not supported"},
        {"{\"values\":{\"v\":\"x\\ud83d\\ude00y\"}}", "=x\xf0\x9f\x98\x80y"},
        {"{\"values\":{\"v\":\"\\udbff\\udfff\"}}", "=\xf4\x8f\xbf\xbf"},
        {"{\"values\":{\"v\":\"a\\u00e9\\uFFFF\\\\u12\"}}", "=a\xc3\xa9\xef\xbf\xbf\\u12"},
    };
    char err[512];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = 0;
        if (cases[i].want[0] != '=') {
            parse("t", cases[i].payload, err, sizeof err);
            unit_check_str(err, cases[i].want, "req: %s", cases[i].payload);
            continue;
        }
        unit_check(!parse("t", cases[i].payload, err, sizeof err) && r.nops == 1 &&
                   r.ops[0].nvals == 1 && cJSON_IsString(r.ops[0].vals[0].v) &&
                   !strcmp(r.ops[0].vals[0].v->valuestring, cases[i].want + 1),
                   "req: %s stored as sent%s%s", cases[i].payload, *err ? ": " : "", err);
    }
    /* Refused, but with its id and reply_to read: the producer gets the receipt. */
    unit_check(parse("t", "{\"id\":\"s1\",\"reply_to\":\"mq/receipts/x\",\"values\":{\"v\":\"\\ud800\"}}",
                     err, sizeof err) && r.id && !strcmp(r.id, "s1") && r.reply_to,
               "req: a request with a lone surrogate keeps its id and reply_to (%s)", err);
}

static void check_topic(void)
{
    const char *t = "?";
    char err[512] = "";

    unit_check(!req_topic("mq/write", "mq/write", &t, err, sizeof err) && !t,
               "req_topic: PREFIX/write names no table");
    unit_check(!req_topic("mq/write/x y", "mq/write", &t, err, sizeof err) && t && !strcmp(t, "x y"),
               "req_topic: PREFIX/write/TABLE names TABLE");
    req_topic("mq/write/a/b", "mq/write", &t, err, sizeof err);
    unit_check_str(err, "topic \"mq/write/a/b\" is not mq/write or mq/write/TABLE",
                   "req_topic: a deeper topic is refused");
    unit_check(req_topic("mq/write/", "mq/write", &t, err, sizeof err) &&
               req_topic("mq/writex", "mq/write", &t, err, sizeof err) &&
               req_topic("mq", "mq/write", &t, err, sizeof err),
               "req_topic: an empty table, a longer word, a shorter topic refused");
}

/* A rejection keeps the request's id and reply_to whenever they are valid: for a
 * bad topic, and for a bad reply_to (the id). */
static void check_kept_id(void)
{
    static const char *const topics[] = {"mq/write/t/", "mq/write/", "mq/write/t/extra", "mq/write//t"};
    static const char ok[] = "{\"id\":\"k1\",\"reply_to\":\"mq/receipts/p\",\"values\":{\"a\":1}}";
    static const char badrt[] = "{\"id\":\"k2\",\"reply_to\":\"a/#\",\"values\":{\"a\":1}}";
    char err[512] = "";
    size_t i;

    req_clear(&r);
    for (i = 0; i < sizeof topics / sizeof *topics; i++) {
        int rc = req_read(&r, &sch, &lim, "mq/write", topics[i], ok, strlen(ok), err, sizeof err);
        unit_check(rc && r.id && !strcmp(r.id, "k1") && r.reply_to && !strcmp(r.reply_to, "mq/receipts/p") &&
                   strstr(err, "is not mq/write or mq/write/TABLE"),
                   "req_read: a request on %s is rejected for its topic, id and reply_to kept (%s)",
                   topics[i], err);
        req_clear(&r);
    }
    unit_check(req_read(&r, &sch, &lim, "mq/write", "mq/write/t", badrt, strlen(badrt), err, sizeof err) &&
               r.id && !strcmp(r.id, "k2") && !r.reply_to,
               "req_read: a bad reply_to keeps the id (%s)", err);
    req_clear(&r);
    /* A reply_to with \u0000 is not read as the topic before it. */
    unit_check(parse("t", "{\"id\":\"k3\",\"reply_to\":\"mq/receipts/a\\u0000b\",\"values\":{\"a\":1}}", err,
                     sizeof err) && r.id && !r.reply_to && strstr(err, "\\u0000"),
               "req: a reply_to cut at \\u0000 is not answered on (%s)", err);
    req_clear(&r);
}

static void check_reply_topic(void)
{
    unit_check(req_reply_topic_ok("mq/receipts/p1", "mq") && req_reply_topic_ok("mq/reply/q", "mq") &&
               req_reply_topic_ok("elsewhere/x", "mq") && req_reply_topic_ok("mqx/status", "mq"),
               "req: receipts may go to PREFIX/receipts/, PREFIX/reply/ and outside the prefix");
    unit_check(!req_reply_topic_ok("mq/status", "mq") && !req_reply_topic_ok("mq/write/t", "mq") &&
               !req_reply_topic_ok("mq", "mq") && !req_reply_topic_ok("a/+", "mq") &&
               !req_reply_topic_ok("", "mq"),
               "req: not the writer's own topics, nor wildcards, nor empty");
}

static void check_base64(void)
{
    unsigned char out[16];

    unit_check(req_base64_decode("AAH/", 4, out) == 3 && out[0] == 0 && out[1] == 1 && out[2] == 0xff,
               "base64: decodes");
    unit_check(req_base64_decode("QQ", 2, out) == 1 && req_base64_decode("QQ==", 4, out) == 1,
               "base64: padding optional");
    unit_check(req_base64_decode("QR==", 4, out) < 0 && req_base64_decode("Q", 1, out) < 0 &&
               req_base64_decode("Q===", 4, out) < 0 && req_base64_decode("A-B_", 4, out) < 0,
               "base64: non-canonical bits, a lone char, bad padding, the URL alphabet refused");
}

/* Scheduled requests and cancels: what the parse keeps; RFC 3339 times. */
static void check_when(void)
{
    char err[512] = "", out[UTIL_TIME_LEN];
    long long ms = 0;
    int ok;

    ok = !parse("t", "{\"id\":\"s1\",\"at\":\"2026-11-24T23:00:00Z\",\"values\":{\"a\":1}}", err, sizeof err);
    unit_check(ok && r.at_ms == 1795561200000LL && r.delay_ms == -1 && r.nops == 1 && !r.cancel,
               "req: \"at\" read as ms since the epoch%s%s", *err ? ": " : "", err);
    ok = !parse(NULL, "{\"id\":\"s2\",\"delay_ms\":1500,\"ops\":[{\"table\":\"t\",\"values\":{}}]}", err, sizeof err);
    unit_check(ok && r.delay_ms == 1500 && r.at_ms == -1 && r.nops == 1,
               "req: \"delay_ms\" beside a transaction's ops%s%s", *err ? ": " : "", err);
    ok = !parse(NULL, "{\"id\":\"c1\",\"reply_to\":\"mq/receipts/c\",\"cancel\":\"s1\"}", err, sizeof err);
    unit_check(ok && r.cancel && !strcmp(r.cancel, "s1") && r.nops == 0 && !strcmp(r.id, "c1"),
               "req: a cancel: no ops, the id to cancel%s%s", *err ? ": " : "", err);
    ok = !parse("t", "{\"values\":{\"a\":1}}", err, sizeof err);
    unit_check(ok && r.at_ms == -1 && r.delay_ms == -1 && !r.cancel, "req: a request for now");

    unit_check(!util_time_parse("2026-11-24T23:00:00Z", &ms) && ms == 1795561200000LL &&
               !util_time_parse("2026-11-25T00:30:00.5+01:30", &ms) && ms == 1795561200500LL &&
               !util_time_parse("2026-11-24t23:00:00.0001z", &ms) && ms == 1795561200001LL &&
               !util_time_parse("2024-02-29T00:00:00Z", &ms) && ms == 1709164800000LL &&
               !util_time_parse("1970-01-01T00:00:00Z", &ms) && ms == 0,
               "time: RFC 3339 with an offset, a fraction (finer than a ms rounds up), leap day");
    unit_check(util_time_parse("2026-11-24T23:00Z", &ms) && util_time_parse("2026-13-01T00:00:00Z", &ms) &&
               util_time_parse("2025-02-29T00:00:00Z", &ms) && util_time_parse("2026-11-24T23:00:00+1:00", &ms) &&
               util_time_parse("2026-11-24T23:00:00.1234567890Z", &ms) && util_time_parse("", &ms) &&
               util_time_parse("2026-11-24", &ms),
               "time: no seconds, month 13, 29 Feb of a common year, a short offset, 10 digits refused");
    util_time_format(1795561200007LL, out);
    unit_check_str(out, "2026-11-24T23:00:00.007Z", "time: written back in UTC to the ms");
}

/* "after": the request it must follow; read exactly, kept out of the hash. */
static void check_after(void)
{
    static const char a1[] = "{\"id\":\"b\",\"after\":\"a\",\"reply_to\":\"mq/receipts/x\",\"values\":{\"a\":1}}";
    static const char a2[] = "{\"id\":\"b\",\"values\":{\"a\":1}}";
    static const char a3[] = "{\"id\":\"b\",\"after\":\"z\",\"values\":{\"a\":2}}";
    char err[512] = "";
    unsigned long long h1, h2;
    int ok;

    ok = !parse("t", a1, err, sizeof err);
    unit_check(ok && r.after && !strcmp(r.after, "a") && !strcmp(r.id, "b") && r.nops == 1,
               "req: \"after\" beside a lone op%s%s", *err ? ": " : "", err);
    ok = !parse(NULL, "{\"after\":\"a\",\"ops\":[{\"table\":\"t\",\"values\":{}}]}", err, sizeof err);
    unit_check(ok && r.after && !strcmp(r.after, "a") && !r.id, "req: \"after\" beside a transaction's ops, "
               "without an id%s%s", *err ? ": " : "", err);
    ok = !parse(NULL, "{\"after\":\"a\",\"op\":\"enqueue\",\"queue\":\"q\",\"payload\":1}", err, sizeof err);
    unit_check(ok && r.after && r.ops[0].kind == OP_ENQUEUE, "req: \"after\" beside a lone enqueue%s%s",
               *err ? ": " : "", err);
    ok = !parse("t", a2, err, sizeof err);
    unit_check(ok && !r.after, "req: no \"after\": NULL");
    parse("t", "{\"after\":5,\"values\":{\"a\":1}}", err, sizeof err);
    unit_check_str(err, "\"after\" must be the id of a request: a string of 1 to 128 printable ASCII characters",
                   "req: \"after\" a number refused");
    parse("t", "{\"after\":\"\",\"values\":{\"a\":1}}", err, sizeof err);
    unit_check_str(err, "\"after\" must be the id of a request: a string of 1 to 128 printable ASCII characters",
                   "req: \"after\" empty refused");
    parse("t", "{\"id\":\"s\",\"after\":\"a\",\"delay_ms\":5,\"values\":{\"a\":1}}", err, sizeof err);
    unit_check_str(err, "give \"after\" or \"at\"/\"delay_ms\", not both: a request that follows another is "
                   "applied when that one is, not at a time", "req: \"after\" with a time refused");
    parse("t", "{\"id\":\"s\",\"after\":\"s\",\"values\":{\"a\":1}}", err, sizeof err);
    unit_check_str(err, "\"after\" is the request's own id: it would wait for itself",
                   "req: \"after\" its own id refused");
    parse(NULL, "{\"ops\":[{\"after\":\"a\",\"table\":\"t\",\"values\":{}}]}", err, sizeof err);
    unit_check_str(err, "ops[0]: \"after\" belongs to the transaction, not to an op",
                   "req: \"after\" inside an op refused");
    /* A retry may follow another request, or none: the same request for duplicates. */
    req_clear(&r);
    req_read(&r, &sch, &lim, "mq/write", "mq/write/t", a1, strlen(a1), err, sizeof err);
    h1 = r.hash;
    req_clear(&r);
    req_read(&r, &sch, &lim, "mq/write", "mq/write/t", a2, strlen(a2), err, sizeof err);
    h2 = r.hash;
    req_clear(&r);
    unit_check(h1 && h1 == h2, "req: \"after\" is not in the hash (%llx %llx)", h1, h2);
    req_read(&r, &sch, &lim, "mq/write", "mq/write/t", a3, strlen(a3), err, sizeof err);
    unit_check(r.hash != h1, "req: ... the values are");
    req_clear(&r);
}

/* The enqueue op: its fields, its defaults, "at"/"delay_ms" as the job's time, the
 * reply topics of the job queue, and the strict read of a done's ops. */
static void check_enqueue(void)
{
    char err[512] = "";
    const struct req_enqueue *e;
    cJSON *ops;
    int ok;

    ok = !parse(NULL, "{\"reply_to\":\"x/y\",\"ops\":[{\"table\":\"t\",\"values\":{}},{\"op\":\"enqueue\","
                "\"queue\":\"build.arm64\",\"payload\":{\"n\":[1,2]},\"priority\":-3,\"unique_key\":\"k\","
                "\"on_duplicate\":\"replace\",\"concurrency_key\":\"c\",\"concurrency\":2,\"lease_ms\":1000,"
                "\"follow\":true}]}", err, sizeof err);
    e = ok ? &r.ops[1].enq : NULL;
    unit_check(ok && r.nops == 2 && r.ops[1].kind == OP_ENQUEUE && !r.ops[1].table && !strcmp(e->queue, "build.arm64") &&
               cJSON_IsObject(e->payload) && e->priority == -3 && !strcmp(e->unique_key, "k") && e->on_duplicate == 2 &&
               !strcmp(e->conc_key, "c") && e->conc_limit == 2 && e->lease_ms == 1000 && e->follow &&
               e->max_attempts == -1 && e->timeout_ms == -1 && !r.jobs_at,
               "req: an enqueue in a transaction, its fields read, the others left to the defaults%s%s",
               *err ? ": " : "", err);
    ok = !parse(NULL, "{\"delay_ms\":500,\"op\":\"enqueue\",\"queue\":\"q\",\"payload\":null}", err, sizeof err);
    unit_check(ok && r.jobs_at && r.delay_ms == 500 && !r.id && cJSON_IsNull(r.ops[0].enq.payload),
               "req: delay_ms on an enqueue times the job, and needs no id%s%s", *err ? ": " : "", err);
    parse(NULL, "{\"delay_ms\":500,\"ops\":[{\"op\":\"enqueue\",\"queue\":\"q\",\"payload\":1},"
          "{\"table\":\"t\",\"values\":{}}]}", err, sizeof err);
    unit_check_str(err, "\"at\"/\"delay_ms\" with an enqueue schedules the job, not the request: send the other "
                   "ops apart", "req: a timed enqueue with an ordinary op is refused");
    parse(NULL, "{\"op\":\"enqueue\",\"queue\":\"events\",\"payload\":1}", err, sizeof err);
    unit_check_str(err, "queue name \"events\" is reserved (PREFIX/jobs/events is the writer's)",
                   "req: the job topics' own names are not queues");
    parse(NULL, "{\"op\":\"enqueue\",\"queue\":\"q\",\"payload\":1,\"priority\":1.0}", err, sizeof err);
    unit_check_str(err, "\"priority\" must be an integer from -1000000000 to 1000000000",
                   "req: an integer option written as a REAL is refused");
    unit_check(!req_reply_check("mq/jobs/to/w3", "mq", err, sizeof err) &&
               req_reply_check("mq/jobs/w3", "mq", err, sizeof err),
               "req: receipts may go to PREFIX/jobs/to/..., not elsewhere under PREFIX/jobs/");
    ops = cJSON_Parse("[{\"table\":\"t\",\"op\":\"update\",\"set\":{\"v\":\"x\"},\"where\":{\"a\":1}},"
                      "{\"op\":\"enqueue\",\"queue\":\"q\",\"payload\":2}]");
    req_clear(&r);
    ok = ops && !req_parse_ops(&r, &sch, &lim, ops, err, sizeof err);
    unit_check(ok && r.nops == 2 && r.ops[0].kind == OP_UPDATE && r.ops[0].nvals == 1 && r.ops[0].vals &&
               r.ops[0].where && r.ops[1].kind == OP_ENQUEUE && !r.root,
               "req: a done's ops read from its array, the array left to its owner%s%s", *err ? ": " : "", err);
    req_clear(&r);
    cJSON_Delete(ops);
    ops = cJSON_Parse("[{\"table\":\"t\",\"values\":{\"zz\":1}}]");
    req_parse_ops(&r, &sch, &lim, ops, err, sizeof err);
    unit_check_str(err, "ops[0]: unknown column \"zz\" in table \"t\"", "req: a done's bad op, by index");
    req_clear(&r);
    cJSON_Delete(ops);
}

void test_req(void)
{
    static const struct cfg_list all = {NULL, 0};
    char err[256];

    if (sqlite3_open(":memory:", &h) != SQLITE_OK ||
        sqlite3_exec(h, "CREATE TABLE t (a INTEGER, b INTEGER, v TEXT, PRIMARY KEY (b, a))",
                     NULL, NULL, NULL) != SQLITE_OK ||
        schema_load(h, &all, &sch, err, sizeof err)) {
        unit_check(0, "req: in-memory schema");
    } else {
        check_parse();
        check_hash();
        check_escapes();
        check_topic();
        check_kept_id();
        check_after();
        check_reply_topic();
        check_base64();
        check_when();
        check_enqueue();
    }
    req_free(&r);
    schema_free(&sch);
    sqlite3_close(h);
}
