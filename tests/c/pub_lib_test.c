/* pub_lib_test.c: the publisher library (mosqlite.h) used from a small C program.
 *
 *   pub_lib_test unit             pure functions: ids, UTF-8 repair, request building
 *   pub_lib_test live PORT        against a broker and a running writer
 *   pub_lib_test retry PORT       one request while the writer is down (the script
 *                                 starts it after a while): republished, applied once
 *   pub_lib_test refused PORT USER PASS
 *                                 a user the broker's ACL does not let publish on
 *                                 mosqlite/write/build_logs: refused at once, never
 *                                 republished, with and without receipts
 *
 * Prints TAP-style "ok - ..." / "not ok - ..." lines; exits 1 if any check failed. */
#include "mosqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

static void check(int cond, const char *what)
{
    printf("%s - %s\n", cond ? "ok" : "not ok", what);
    if (!cond)
        failures++;
}

static void check_str(const char *got, const char *want, const char *what)
{
    int same = got && !strcmp(got, want);
    check(same, what);
    if (!same)
        printf("# got  [%s]\n# want [%s]\n", got ? got : "(null)", want);
}

static void repaired(const char *in, size_t len, const char *want, const char *what)
{
    char out[64];
    mosqlite_utf8_repair(in, len, out);
    check_str(out, want, what);
}

static void unit(void)
{
    char ids[2000][MOSQLITE_ID_LEN + 1], err[256], *s;
    int i, sorted = 1, alphabet = 1;
    long long ms = 0;
    mosqlite_lines *l;
    enum mosqlite_op op;

    for (i = 0; i < 2000; i++) {
        if (mosqlite_new_id(ids[i]) != 0) {
            check(0, "mosqlite_new_id");
            return;
        }
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
            sorted = 0;
        if (strlen(ids[i]) != MOSQLITE_ID_LEN || strspn(ids[i], "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != MOSQLITE_ID_LEN)
            alphabet = 0;
    }
    check(sorted, "2,000 new ids are strictly increasing");
    check(alphabet, "ids are 26 characters of Crockford base32");
    for (i = 0; i < 10; i++)
        ms = ms * 32 + (strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", ids[0][i]) -
                        "0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    check(llabs(ms / 1000 - (long long)time(NULL)) < 5, "an id starts with the time in ms");
    check(mosqlite_id_valid("a b~") && !mosqlite_id_valid("") && !mosqlite_id_valid("a\tb"),
          "id validity: printable ASCII, not empty");

    repaired("a\xff" "b", 3, "a\xef\xbf\xbd" "b", "a stray byte becomes U+FFFD");
    repaired("x\xe2\x82", 3, "x\xef\xbf\xbd", "a truncated sequence becomes one U+FFFD");
    repaired("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is three broken bytes");
    repaired("\xf0\x9f\x98\x80\xc3\xa9", 6, "\xf0\x9f\x98\x80\xc3\xa9", "valid UTF-8 is kept");
    repaired("a\0b", 3, "a\xef\xbf\xbd" "b", "NUL becomes U+FFFD");
    repaired("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", "an overlong encoding is refused");

    check(mosqlite_op_parse("upsert", &op) == 0 && op == MOSQLITE_UPSERT &&
          mosqlite_op_parse("merge", &op) == -1, "op names parse");
    s = mosqlite_request_build(MOSQLITE_INSERT, "{\"a\": 1}", NULL, NULL, err, sizeof err);
    check_str(s, "{\"op\":\"insert\",\"values\":{\"a\": 1}}", "build insert: the values as written");
    mosqlite_free(s);
    s = mosqlite_request_build(MOSQLITE_INSERT, " {\"a\":1.0,\"b\":1E2,\"c\":0.30000000000000004} ", NULL,
                               NULL, err, sizeof err);
    check_str(s, "{\"op\":\"insert\",\"values\":{\"a\":1.0,\"b\":1E2,\"c\":0.30000000000000004}}",
              "build insert: numbers as written");
    mosqlite_free(s);
    s = mosqlite_request_build(MOSQLITE_INSERT, "{\"a\":1e999}", NULL, NULL, err, sizeof err);
    check(!s && !strcmp(err, "values: number 1e999 at byte 5 is out of range: beyond the largest double "
                        "(about 1.8e308)"), "build insert: 1e999 refused in the writer's words");
    s = mosqlite_request_build(MOSQLITE_UPDATE, "{\"a\":1}", "{\"id\":2}", "u-1", err, sizeof err);
    check_str(s, "{\"id\":\"u-1\",\"op\":\"update\",\"set\":{\"a\":1},\"where\":{\"id\":2}}", "build update with id");
    mosqlite_free(s);
    s = mosqlite_request_build(MOSQLITE_DELETE, NULL, "{\"id\":2}", NULL, err, sizeof err);
    check_str(s, "{\"op\":\"delete\",\"where\":{\"id\":2}}", "build delete");
    mosqlite_free(s);
    s = mosqlite_request_build(MOSQLITE_DELETE, NULL, NULL, NULL, err, sizeof err);
    check(!s && strstr(err, "--where"), "delete without where: NULL and a reason");
    s = mosqlite_request_build(MOSQLITE_INSERT, "[1]", NULL, NULL, err, sizeof err);
    check(!s && strstr(err, "not a JSON object"), "values not an object: NULL and a reason");

    l = mosqlite_lines_new("line", "{\"build_id\": 7}", err, sizeof err);
    s = l ? mosqlite_lines_format(l, "say \"hi\"\t\x01\xff", 11) : NULL;
    check_str(s, "{\"values\":{\"build_id\": 7,\"line\":\"say \\\"hi\\\"\\t\\u0001\xef\xbf\xbd\"}}",
              "a line becomes an escaped insert with its bad byte replaced");
    mosqlite_free(s);
    mosqlite_lines_free(l);
    check(mosqlite_lines_new("line", "nope", err, sizeof err) == NULL, "--with must be an object");
    mosqlite_lines_free(NULL);
    mosqlite_close(NULL);
    mosqlite_free(NULL);
}

struct counts { int sent, applied, duplicate, rejected, tagged, refused; long changes; };

static void on_result(mosqlite_client *c, const struct mosqlite_result *r, void *arg)
{
    struct counts *n = arg;
    if (r->status == MOSQLITE_SENT) n->sent++;
    if (r->status == MOSQLITE_APPLIED) n->applied++;
    if (r->status == MOSQLITE_DUPLICATE) n->duplicate++;
    if (r->status == MOSQLITE_REJECTED) n->rejected++;
    if (r->status == MOSQLITE_REFUSED) n->refused++;
    if (r->tag == (void *)n) n->tagged++;
    n->changes = r->changes;
}

static mosqlite_client *client(int port, int receipts, int retry_ms, struct counts *n)
{
    struct mosqlite_options o;
    mosqlite_client *c;

    mosqlite_options_init(&o);
    o.port = port;
    o.receipts = receipts;
    o.window = 50;
    o.timeout_ms = 20000;
    if (retry_ms)
        o.retry_ms = retry_ms;
    c = mosqlite_client_new(&o);
    if (c && n)
        mosqlite_set_callback(c, on_result, n);
    return c;
}

static void live(int port)
{
    struct counts n = {0};
    struct mosqlite_stats st;
    enum mosqlite_status status = 0;
    char err[256] = "", id[MOSQLITE_ID_MAX + 1], json[128];
    mosqlite_client *c;
    int i, rc;

    c = client(1, 0, 0, NULL);
    check(c && mosqlite_connect(c) == MOSQLITE_ECONNECT && strstr(mosqlite_errstr(c), "refused"),
          "no broker: MOSQLITE_ECONNECT with a message");
    mosqlite_close(c);

    c = client(port, 1, 0, &n);
    check(c && mosqlite_connect(c) == MOSQLITE_OK, "connect with receipts");
    rc = mosqlite_send(c, "build_logs", "{\"values\":{\"build_id\":77,\"line\":\"from C\"}}", &status, err, sizeof err);
    check(rc == MOSQLITE_OK && status == MOSQLITE_APPLIED, "mosqlite_send: applied");
    rc = mosqlite_send(c, "build_logs", "{\"values\":{\"build_id\":77,\"lne\":\"x\"}}", &status, err, sizeof err);
    check(rc == MOSQLITE_EREJECTED && status == MOSQLITE_REJECTED && strstr(err, "lne"),
          "mosqlite_send: rejected, with the writer's reason");
    printf("# rejection: %s\n", err);
    rc = mosqlite_send(c, NULL, "{\"id\":\"c-dup\",\"table\":\"build_logs\",\"values\":{\"build_id\":77,\"line\":\"dup\"}}", &status, NULL, 0);
    rc |= mosqlite_send(c, NULL, "{\"id\":\"c-dup\",\"table\":\"build_logs\",\"values\":{\"build_id\":77,\"line\":\"dup\"}}", &status, NULL, 0);
    check(rc == MOSQLITE_OK && status == MOSQLITE_DUPLICATE, "the same id twice: duplicate");
    check(mosqlite_publish(c, "build_logs", "not json", NULL, id) == MOSQLITE_EINVAL &&
          strstr(mosqlite_errstr(c), "not a JSON object"), "not JSON: MOSQLITE_EINVAL with a message");
    check(mosqlite_publish(c, "a/b", "{}", NULL, NULL) == MOSQLITE_EINVAL, "a table with a slash is refused");
    memset(&n, 0, sizeof n);
    for (i = 0, rc = 0; i < 300; i++) {
        snprintf(json, sizeof json, "{\"values\":{\"build_id\":78,\"line\":\"n%d\"}}", i);
        rc |= mosqlite_publish(c, "build_logs", json, &n, id);
    }
    check(rc == MOSQLITE_OK && strlen(id) == MOSQLITE_ID_LEN, "300 publishes through a window of 50");
    check(mosqlite_wait(c, -1) == MOSQLITE_OK, "mosqlite_wait: all finished");
    check(n.applied == 300 && n.tagged == 300, "callback: 300 applied, each with its tag");
    mosqlite_stats(c, &st);
    check(st.outstanding == 0 && st.rejected == 1 && st.duplicate == 1, "stats count it all");
    n.changes = -2;
    mosqlite_publish(c, NULL, "{\"table\":\"build_logs\",\"op\":\"update\",\"set\":{\"line\":\"x\"},"
                     "\"where\":{\"build_id\":-1}}", NULL, NULL);
    check(mosqlite_wait(c, -1) == MOSQLITE_OK && n.changes == 0,
          "an update that matches no row: applied, changes 0");
    mosqlite_publish(c, NULL, "{\"table\":\"build_logs\",\"op\":\"update\",\"set\":{\"line\":\"from C\"},"
                     "\"where\":{\"build_id\":77,\"line\":\"dup\"}}", NULL, NULL);
    check(mosqlite_wait(c, -1) == MOSQLITE_OK && n.changes == 1, "an update of one row: changes 1");
    mosqlite_close(c);

    memset(&n, 0, sizeof n);
    c = client(port, 0, 0, &n);
    check(c && mosqlite_connect(c) == MOSQLITE_OK, "connect without receipts");
    for (i = 0, rc = 0; i < 100; i++)
        rc |= mosqlite_publish(c, "build_logs", "{\"values\":{\"build_id\":79,\"line\":\"q\"}}", NULL, NULL);
    check(rc == 0 && mosqlite_wait(c, 10000) == MOSQLITE_OK && n.sent == 100,
          "without receipts: 100 sent (QoS 2 complete)");
    check(n.changes == -1, "without receipts: changes not known (-1)");
    mosqlite_close(c);
}

static void refused(int port, const char *user, const char *pass)
{
    struct counts n = {0};
    struct mosqlite_stats st;
    struct mosqlite_options o;
    enum mosqlite_status status = 0;
    char err[256] = "";
    const char *want = "refused by the broker's ACL: this user may not publish on "
                       "mosqlite/write/build_logs";
    mosqlite_client *c;
    int receipts, rc;

    for (receipts = 1; receipts >= 0; receipts--) {
        mosqlite_options_init(&o);
        o.port = port;
        o.username = user;
        o.password = pass;
        o.receipts = receipts;
        o.timeout_ms = 60000;
        c = mosqlite_client_new(&o);
        mosqlite_set_callback(c, on_result, &n);
        check(c && mosqlite_connect(c) == MOSQLITE_OK, "refused: connect");
        rc = mosqlite_send(c, "build_logs", "{\"values\":{\"build_id\":90,\"line\":\"no\"}}",
                           &status, err, sizeof err);
        check(rc == MOSQLITE_EREFUSED && status == MOSQLITE_REFUSED,
              receipts ? "with receipts: MOSQLITE_EREFUSED, status MOSQLITE_REFUSED"
                       : "without receipts: MOSQLITE_EREFUSED, status MOSQLITE_REFUSED");
        check_str(err, want, "the reason names the ACL and the topic");
        check_str(mosqlite_errstr(c), want, "and so does mosqlite_errstr()");
        mosqlite_stats(c, &st);
        check(st.republished == 0 && st.outstanding == 0 && st.refused == 1,
              "not published again; nothing left outstanding");
        mosqlite_close(c);
    }
    check(n.refused == 2, "the callback was given both, as MOSQLITE_REFUSED");
}

static void retry(int port)
{
    struct counts n = {0};
    struct mosqlite_stats st;
    mosqlite_client *c = client(port, 1, 300, &n);
    enum mosqlite_status status = 0;
    int rc;

    check(c && mosqlite_connect(c) == MOSQLITE_OK, "retry: connect");
    rc = mosqlite_send(c, "build_logs", "{\"id\":\"retry-1\",\"values\":{\"build_id\":80,\"line\":\"once\"}}",
                       &status, NULL, 0);
    mosqlite_stats(c, &st);
    check(rc == MOSQLITE_OK && status == MOSQLITE_APPLIED, "retry: applied once the writer is back");
    check(st.republished >= 2, "retry: republished while the writer was away");
    printf("# republished %lu times\n", st.republished);
    mosqlite_close(c);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "unit"))
        unit();
    else if (argc >= 3 && !strcmp(argv[1], "live"))
        live(atoi(argv[2]));
    else if (argc >= 3 && !strcmp(argv[1], "retry"))
        retry(atoi(argv[2]));
    else if (argc >= 5 && !strcmp(argv[1], "refused"))
        refused(atoi(argv[2]), argv[3], argv[4]);
    else {
        fprintf(stderr, "usage: pub_lib_test unit | live PORT | retry PORT | refused PORT USER PASS\n");
        return 2;
    }
    return failures ? 1 : 0;
}
