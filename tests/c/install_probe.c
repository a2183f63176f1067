/* install_probe.c: a program built the way a user of an installed libmosqlite builds
 * one (the installed header, `pkg-config mosqlite`, the shared library by its soname).
 * It sends one request with receipts and prints the outcome.
 * Usage: install_probe PORT TABLE JSON; exit 0 when applied, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include <mosqlite.h>

int main(int argc, char **argv)
{
    struct mosqlite_options o;
    enum mosqlite_status st = 0;
    char err[512] = "";
    mosqlite_client *c;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: install_probe PORT TABLE JSON\n");
        return 2;
    }
    mosqlite_options_init(&o);
    o.port = atoi(argv[1]);
    o.receipts = 1;
    o.timeout_ms = 20000;
    c = mosqlite_client_new(&o);
    if (!c || mosqlite_connect(c)) {
        fprintf(stderr, "connect: %s\n", c ? mosqlite_errstr(c) : "out of memory");
        mosqlite_close(c);
        return 1;
    }
    rc = mosqlite_send(c, argv[2], argv[3], &st, err, sizeof err);
    printf("version %s: %s\n", mosqlite_version(),
           rc ? (st == MOSQLITE_REJECTED ? err : mosqlite_errstr(c)) :
           st == MOSQLITE_APPLIED ? "applied" : "not applied");
    mosqlite_close(c);
    return rc == 0 && st == MOSQLITE_APPLIED ? 0 : 1;
}
