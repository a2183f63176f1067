/* fuzz_pub.c: libFuzzer target over the publisher's request building (publisher/
 * request.c and json.c), checked against the writer's own reader (writer/req.c).
 *
 * An input is MODE then text. MODE 's' (and any other byte): the text is a JSON Lines
 * line, given to mosqlite__stamp() with and without a reply_to. 'b': an operation
 * (the next byte, 0-3 by its low bits), then DATA '\n' WHERE (WHERE absent when there
 * is no newline; DATA empty means none), given to mosqlite_request_build(). 'l': the
 * text is --with, given to mosqlite_lines_new() and mosqlite__lines_stream(), then a
 * line formatted with it.
 *
 * What is checked, besides the sanitizers:
 * - what the publisher builds, the writer reads as JSON (json_read);
 * - a stamped line keeps every member as it was written: cJSON's trees of the line
 *   and of the stamped request print alike but for id and reply_to, and reply_to is
 *   ours; stamped with an "after", it has it unless the writer would refuse it there
 *   (scheduled, a cancel, an "after" of its own, its own id), and keeps the rest;
 * - a line the publisher refuses, the writer refuses, and when both refuse it for
 *   its bytes (a number, \u0000, a control character, UTF-8, nesting), with the same
 *   words;
 * - a line the writer takes, the publisher takes, unless it leans on what cJSON takes
 *   beyond RFC 8259 (a control byte as white space, a \u escape without four hex
 *   digits).
 *
 * Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "mosqlite.h"
#include "json.h"
#include "req.h"
#include "request.h"

#define REPLY "mosqlite/receipts/fuzz"
#define AFTER "fuzz-after-1"

static const struct req_limits limits = {1 << 20, 1000, 1000, NULL};
static struct req wreq;

static void die(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_pub: %s\n  [%s]\n  [%s]\n", what, a ? a : "(null)", b ? b : "(null)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The writer reads text as a request's JSON: 0, or -1 with its words in err. */
static int writer_reads(const char *text, char *err, size_t errlen)
{
    int rc;

    err[0] = '\0';
    rc = json_read(&wreq.root, &wreq.nums, limits.max_payload, limits.max_depth, text, strlen(text),
                   err, errlen);
    return rc;
}

/* The writer's words for a fault in the bytes (its raw scan), found before the parse. */
static int bytes_fault(const char *e)
{
    static const char *const starts[] = {"invalid JSON: number ", "number ", "integer ",
                                         "string contains \\u0000", "payload is not valid UTF-8",
                                         "payload contains a NUL", "invalid JSON: control character",
                                         "nesting too deep", "invalid JSON: \"\\u", NULL};
    int i;

    for (i = 0; starts[i]; i++)
        if (!strncmp(e, starts[i], strlen(starts[i])))
            return 1;
    return 0;
}

/* What cJSON takes beyond RFC 8259: any byte up to 0x20 as white space. (A \u escape
 * whose four characters are not all hex digits both readers refuse in their raw scan.) */
static int cjson_leniency(const char *s)
{
    const char *p;

    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 && !strchr("\t\n\r", *p))
            return 1;
    return 0;
}

/* cJSON's tree of text, without its id and reply_to. */
static cJSON *members(const char *text)
{
    cJSON *t = cJSON_Parse(text);

    cJSON_DeleteItemFromObjectCaseSensitive(t, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "reply_to");
    return t;
}

static void fuzz_stamp(const char *line)
{
    char perr[512], werr[512], id[MOSQLITE_ID_MAX + 1];
    char *plain = mosqlite__stamp(line, NULL, NULL, NULL, NULL, perr, sizeof perr), *stamped;
    int chain;
    int wrc = writer_reads(line, werr, sizeof werr);

    req_clear(&wreq);
    stamped = mosqlite__stamp(line, REPLY, NULL, id, NULL, perr, sizeof perr);
    if ((plain != NULL) != (stamped != NULL))
        die("stamping with and without a reply_to disagree", line, perr);
    if (plain && strcmp(plain, line))
        die("without a reply_to the line is not sent as it is", line, plain);
    free(plain);
    if (stamped) {
        cJSON *a, *b, *rt;
        char *pa, *pb;
        if (wrc)
            die("the publisher takes a line the writer refuses", line, werr);
        if (writer_reads(stamped, werr, sizeof werr))
            die("the writer cannot read a stamped request", stamped, werr);
        rt = cJSON_GetObjectItemCaseSensitive(wreq.root, "reply_to");
        if (!cJSON_IsString(rt) || strcmp(rt->valuestring, REPLY) || !mosqlite_id_valid(id))
            die("a stamped request lacks our reply_to or a valid id", stamped, id);
        req_clear(&wreq);
        /* Printed, not cJSON_Compare()d: that one is exponential in the depth. The
         * members keep their order, so equal trees print alike. */
        a = members(line);
        b = members(stamped);
        pa = a ? cJSON_PrintUnformatted(a) : NULL;
        pb = b ? cJSON_PrintUnformatted(b) : NULL;
        if (!pa || !pb || strcmp(pa, pb))
            die("stamping changed a member", line, stamped);
        cJSON_free(pa);
        cJSON_free(pb);
        cJSON_Delete(b);
        free(stamped);
        /* In order: "after" added only where the writer takes it (no "at", "delay_ms",
         * "cancel" or "after" of its own, not its own id), every other member kept. */
        stamped = mosqlite__stamp(line, REPLY, AFTER, id, &chain, perr, sizeof perr);
        if (!stamped)
            die("stamping with an after refuses what stamping without took", line, perr);
        if (writer_reads(stamped, werr, sizeof werr))
            die("the writer cannot read a request stamped with an after", stamped, werr);
        {
            cJSON *own = cJSON_GetObjectItemCaseSensitive(a, "after");
            const cJSON *got = cJSON_GetObjectItemCaseSensitive(wreq.root, "after");
            int timed = cJSON_GetObjectItemCaseSensitive(a, "at") || cJSON_GetObjectItemCaseSensitive(a, "delay_ms") ||
                        cJSON_GetObjectItemCaseSensitive(a, "cancel");
            int want = !own && !timed && strcmp(id, AFTER);
            if (chain != !timed)
                die("a request that may be followed is told wrong", line, stamped);
            if (want ? !cJSON_IsString(got) || strcmp(got->valuestring, AFTER) : !own && got)
                die("\"after\" added where the writer refuses it, or not added", line, stamped);
            b = members(stamped);
            if (want)
                cJSON_DeleteItemFromObjectCaseSensitive(b, "after");
            pa = cJSON_PrintUnformatted(a);
            pb = b ? cJSON_PrintUnformatted(b) : NULL;
            if (!pa || !pb || strcmp(pa, pb))
                die("stamping with an after changed a member", line, stamped);
            cJSON_free(pa);
            cJSON_free(pb);
            cJSON_Delete(b);
        }
        req_clear(&wreq);
        cJSON_Delete(a);
        free(stamped);
        return;
    }
    req_clear(&wreq);
    if (!strncmp(perr, "\"id\" must be", 12) || !strncmp(perr, "out of memory", 13))
        return;                 /* the writer's JSON reader alone does not look at ids */
    if (!wrc && !cjson_leniency(line))
        die("the publisher refuses a line the writer takes", line, perr);
    if (wrc && bytes_fault(perr) && bytes_fault(werr) && strcmp(perr, werr))
        die("publisher and writer refuse the same bytes in other words", perr, werr);
}

static void fuzz_build(const char *text, unsigned opbyte)
{
    char err[512], werr[512], *data, *where = NULL, *nl, *out;
    enum mosqlite_op op = (enum mosqlite_op)(opbyte & 3);

    if (!(data = strdup(text)))
        return;
    if ((nl = strchr(data, '\n'))) {
        *nl = '\0';
        where = nl + 1;
    }
    out = mosqlite_request_build(op, *data ? data : NULL, where, (opbyte & 4) ? "fuzz-id" : NULL,
                                 err, sizeof err);
    if (out) {
        if (writer_reads(out, werr, sizeof werr))
            die("the writer cannot read a built request", out, werr);
        req_clear(&wreq);
        if (*data) {            /* the values as written, but a BOM and outer white space */
            char *v = data + (strncmp(data, "\xef\xbb\xbf", 3) ? 0 : 3), *e;
            v += strspn(v, " \t\r\n");
            for (e = v + strlen(v); e > v && strchr(" \t\r\n", e[-1]); e--)
                ;
            *e = '\0';
            if (!strstr(out, v))
                die("a built request does not hold its values as written", v, out);
        }
        free(out);
    } else if (!err[0]) {
        die("a refusal without a reason", text, NULL);
    }
    free(data);
}

static void fuzz_lines(const char *with)
{
    char err[512], werr[512], *out;
    mosqlite_lines *l = mosqlite_lines_new("line", with, err, sizeof err);
    mosqlite_lines *s = mosqlite__lines_stream("line", with, "stream", "stderr", err, sizeof err);
    mosqlite_lines *ls[2] = {l, s};
    int i;

    if ((l != NULL) != (s != NULL))
        die("the two templates disagree", with, err);
    for (i = 0; i < 2; i++) {
        if (ls[i] && (out = mosqlite_lines_format(ls[i], "a \"line\"\t\x01\xff", 11))) {
            if (writer_reads(out, werr, sizeof werr))
                die("the writer cannot read a formatted line", out, werr);
            req_clear(&wreq);
            free(out);
        }
        mosqlite_lines_free(ls[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    size_t skip = size > 0 && data[0] == 'b' ? 2 : 1;

    if (size < skip || memchr(data, 0, size))
        return 0;       /* C strings: mosqlite-pub refuses a NUL byte before these */
    if (!(text = malloc(size - skip + 1)))
        return 0;
    memcpy(text, data + skip, size - skip);
    text[size - skip] = '\0';
    if (data[0] == 'b')
        fuzz_build(text, data[1]);
    else if (data[0] == 'l')
        fuzz_lines(text);
    else
        fuzz_stamp(text);
    free(text);
    return 0;
}
