/* spool.c: the log pipe's on-disk queue (see spool.h).
 *
 * Layout of a spool directory: segment files 00000001.seg, 00000002.seg, ... each a
 * run of records, one per line (a kind byte, the JSON text, a newline; JSON text never
 * holds a raw newline), and a `state` file, one line: "mosqlite-spool 2 ID RSEG ROFF
 * RSEQ N1,N2,..." (version 1, written by older programs, has one N). Records are
 * appended to the newest segment; a segment is closed once it passes an eighth of the
 * bound, and deleted once delivery has passed its end, so the disk holds the
 * undelivered records plus at most one segment. When delivery catches up with the
 * input, the segment is cut back to nothing.
 *
 * A record's sequence number is its position in the spool since it was made (RSEQ
 * is the number of the oldest undelivered one, at RSEG/ROFF). The deliverer takes
 * batches in order, each named after the spool's id and its first sequence number,
 * and keeps several in flight; N1,N2,... are their sizes, in order from RSEQ, so a
 * later run rebuilds the very same batches under the same ids and the writer applies
 * each once. Records are forgotten only as a prefix: a batch answered before an
 * older one stays in the spool (and in the list) until the older one is answered too,
 * as the queue is one file position; a later run would send it again and the writer
 * answer `duplicate`. The state is written without fsync: it protects against a
 * program that ends, not against a power cut (after one, a batch may be sent again
 * under a new id, or a few lines lost). */
#define _GNU_SOURCE                     /* pwritev */
#include "spool.h"
#include "mosqlite.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define READ_CAP (512u * 1024u)         /* bigger than any record (see pipe.c) */
#define MAX_FLIGHT 256                  /* most batches in flight at once */

struct batch {
    unsigned long seg;                  /* where it starts */
    off_t off, bytes;                   /* and its bytes in the segment file */
    long n;                             /* records */
    unsigned long long seq;             /* the first one's sequence number */
    int done;
};

struct spool {
    pthread_mutex_t lock;
    pthread_cond_t cond;                /* an append, the end of input, a done */
    char *dir;
    char id[MOSQLITE_ID_LEN + 1];
    int sfd;                            /* the state file */
    int wfd, tfd;                       /* the segment appended to, the one taken from */
    unsigned long wseg, rseg, tseg;
    off_t woff, roff, toff;             /* write end; oldest pending; next to take */
    unsigned long long rseq;            /* sequence number of the oldest pending record */
    unsigned long long tseq;            /* sequence number of the next record to take */
    unsigned long long max, seg_max;
    struct spool_stats st;
    struct batch fl[MAX_FLIGHT];        /* batches in flight, oldest first (a ring) */
    int fhead, nfl;
    long resume[MAX_FLIGHT];            /* sizes of the batches a former run had in flight */
    int nresume, iresume;
    unsigned long long taken;           /* records in flight */
    int ended;
    char *rbuf;
};

static int seg_open(spool *sp, unsigned long seg, int flags)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%08lu.seg", sp->dir, seg);
    return open(path, flags | O_CLOEXEC, 0600);
}

static void seg_unlink(spool *sp, unsigned long seg)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%08lu.seg", sp->dir, seg);
    unlink(path);
}

/* cut: drop what a short write left past len. Best effort (the next append writes at
 * len again); a failure is only logged in verbose mode. */
static void cut(int fd, off_t len)
{
    if (ftruncate(fd, len) != 0)
        log_debug("spool: ftruncate: %s", strerror(errno));
}

/* Lock held. Record where delivery stands, and the sizes of the batches in flight
 * (those of a former run not yet taken again first). */
static void state_write(spool *sp)
{
    char line[MAX_FLIGHT * 12 + 256];
    int n = snprintf(line, sizeof line, "mosqlite-spool 2 %s %lu %lld %llu ", sp->id,
                     sp->rseg, (long long)sp->roff, sp->rseq), i, k = 0;

    for (i = 0; i < sp->nfl; i++, k++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%ld", k ? "," : "",
                      sp->fl[(sp->fhead + i) % MAX_FLIGHT].n);
    for (i = sp->iresume; i < sp->nresume; i++, k++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%ld", k ? "," : "", sp->resume[i]);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s\n", k ? "" : "0");
    if (pwrite(sp->sfd, line, (size_t)n, 0) == n)
        cut(sp->sfd, n);
}

/* The lowest and highest segment numbers in the directory; 0 when there is none. */
static void seg_range(const char *dir, unsigned long *lo, unsigned long *hi)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    *lo = *hi = 0;
    if (!d)
        return;
    while ((e = readdir(d))) {
        char *end;
        unsigned long n = strtoul(e->d_name, &end, 10);
        if (end == e->d_name + 8 && !strcmp(end, ".seg") && n > 0) {
            if (!*lo || n < *lo)
                *lo = n;
            if (n > *hi)
                *hi = n;
        }
    }
    closedir(d);
}

/* Resume's last step: count the records still pending (and their bytes), from where
 * delivery stands (rseg, roff; the taking side already open there) to the end. */
static void count_pending(spool *sp)
{
    unsigned long s;

    for (s = sp->rseg; s <= sp->wseg; s++) {
        int fd = s == sp->rseg ? sp->tfd : seg_open(sp, s, O_RDONLY);
        off_t off = s == sp->rseg ? sp->roff : 0, end;
        if (fd < 0)
            continue;
        end = s == sp->wseg ? sp->woff : lseek(fd, 0, SEEK_END);
        while (off < end) {
            ssize_t k = pread(fd, sp->rbuf, READ_CAP, off);
            ssize_t i;
            if (k <= 0)
                break;
            if (off + k > end)
                k = end - off;
            for (i = 0; i < k; i++)
                sp->st.pending += sp->rbuf[i] == '\n';
            sp->st.bytes += (unsigned long long)k;
            off += k;
        }
        if (fd != sp->tfd)
            close(fd);
    }
}

/* Resume: read the state, find the segments, cut a half-written last record, count
 * what is pending. 0, or -1 with err set. */
static int resume(spool *sp, char *err, size_t errlen)
{
    char line[MAX_FLIGHT * 12 + 256], id[MOSQLITE_ID_LEN + 8], *p, *end;
    unsigned long lo, hi;
    long long roff;
    ssize_t n = pread(sp->sfd, line, sizeof line - 1, 0);
    struct stat stt;
    int version, used = 0;

    if (n <= 0)
        goto bad;
    line[n] = '\0';
    if (sscanf(line, "mosqlite-spool %d %30s %lu %lld %llu %n", &version, id, &sp->rseg, &roff,
               &sp->rseq, &used) != 5 || used == 0 || (version != 1 && version != 2) ||
        strlen(id) != MOSQLITE_ID_LEN || roff < 0)
        goto bad;
    /* The sizes of the batches in flight: N or N1,N2,...; 0 for none. */
    for (p = line + used;; p = end + 1) {
        long k = strtol(p, &end, 10);
        if (end == p || k < 0 || sp->nresume == MAX_FLIGHT)
            goto bad;
        if (k > 0)
            sp->resume[sp->nresume++] = k;
        if (*end != ',')
            break;
    }
    if (*end != '\n' && *end != '\0')
        goto bad;
    strcpy(sp->id, id);
    sp->roff = (off_t)roff;
    seg_range(sp->dir, &lo, &hi);
    if (!hi) {
        lo = hi = sp->rseg ? sp->rseg : 1;
        sp->roff = 0;
        sp->nresume = 0;
    } else if (sp->rseg < lo || sp->rseg > hi) {
        sp->rseg = lo;                  /* its segment is gone: start at the oldest */
        sp->roff = 0;
        sp->nresume = 0;
    }
    sp->rseg = sp->rseg ? sp->rseg : lo;
    sp->wseg = hi;
    if ((sp->wfd = seg_open(sp, sp->wseg, O_RDWR | O_CREAT)) < 0 || fstat(sp->wfd, &stt))
        goto ioerr;
    sp->woff = stt.st_size;
    /* Cut a record the former run did not finish writing. */
    while (sp->woff > 0) {
        char c;
        if (pread(sp->wfd, &c, 1, sp->woff - 1) != 1)
            goto ioerr;
        if (c == '\n')
            break;
        sp->woff--;
    }
    if (ftruncate(sp->wfd, sp->woff))
        goto ioerr;
    if (sp->rseg == sp->wseg && sp->roff > sp->woff)
        sp->roff = sp->woff;
    if ((sp->tfd = seg_open(sp, sp->rseg, O_RDONLY)) < 0)
        goto ioerr;
    sp->tseg = sp->rseg;
    sp->toff = sp->roff;
    sp->tseq = sp->rseq;
    count_pending(sp);
    return 0;
bad:
    snprintf(err, errlen, "%s/state is not a mosqlite-pub spool state", sp->dir);
    return -1;
ioerr:
    snprintf(err, errlen, "spool %s: %s", sp->dir, strerror(errno));
    return -1;
}

spool *spool_open(const char *dir, int must_exist, unsigned long long max_bytes,
                  char *err, size_t errlen)
{
    spool *sp = calloc(1, sizeof *sp);
    char path[4096];
    struct stat stt;
    int existed;

    if (!sp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->cond, NULL);
    sp->sfd = sp->wfd = sp->tfd = -1;
    if (!(sp->dir = strdup(dir)) || !(sp->rbuf = malloc(READ_CAP))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sp->max = max_bytes;
    sp->seg_max = max_bytes / 8 < 65536 ? 65536 : max_bytes / 8;
    if (!must_exist && mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/state", dir);
    existed = stat(path, &stt) == 0;
    if (must_exist && !existed) {
        snprintf(err, errlen, "%s holds no spool (no state file)", dir);
        goto fail;
    }
    if ((sp->sfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(sp->sfd, LOCK_EX | LOCK_NB)) {
        snprintf(err, errlen, "the spool %s is in use by another mosqlite-pub", dir);
        goto fail;
    }
    if (existed) {
        if (resume(sp, err, errlen))
            goto fail;
    } else {
        if (mosqlite_new_id(sp->id)) {
            snprintf(err, errlen, "no randomness for the spool's id");
            goto fail;
        }
        sp->rseg = sp->wseg = sp->tseg = 1;
        if ((sp->wfd = seg_open(sp, 1, O_RDWR | O_CREAT | O_TRUNC)) < 0 ||
            (sp->tfd = seg_open(sp, 1, O_RDONLY)) < 0) {
            snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
            goto fail;
        }
        state_write(sp);
    }
    return sp;
fail:
    spool_close(sp, 0);
    return NULL;
}

/* seg_roll: once the segment being written is full, go on in a new one (or keep
 * appending to this one if the new one cannot be made). Called with the lock held. */
static void seg_roll(spool *sp)
{
    int fd;

    if ((unsigned long long)sp->woff < sp->seg_max)
        return;
    fd = seg_open(sp, sp->wseg + 1, O_RDWR | O_CREAT | O_TRUNC);
    if (fd >= 0) {
        close(sp->wfd);
        sp->wfd = fd;
        sp->wseg++;
        sp->woff = 0;
    }
}

int spool_append(spool *sp, char kind, const char *text, size_t len, int force)
{
    char nl = '\n';
    struct iovec iov[3] = {{&kind, 1}, {(void *)text, len}, {&nl, 1}};
    ssize_t n;
    int rc = 1;

    pthread_mutex_lock(&sp->lock);
    if ((!force && sp->st.bytes + len + 2 > sp->max) || sp->wfd < 0)
        goto out;
    n = pwritev(sp->wfd, iov, 3, sp->woff);
    if (n != (ssize_t)(len + 2)) {
        if (n > 0)
            cut(sp->wfd, sp->woff);
        goto out;
    }
    sp->woff += n;
    sp->st.bytes += (unsigned long long)n;
    sp->st.pending++;
    sp->st.appended++;
    rc = 0;
    seg_roll(sp);
    pthread_cond_broadcast(&sp->cond);
out:
    if (rc)
        sp->st.dropped++;
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

int spool_append_many(spool *sp, const char *recs, size_t len, long n)
{
    ssize_t w;
    int rc = 1;

    pthread_mutex_lock(&sp->lock);
    if (sp->st.bytes + len > sp->max || sp->wfd < 0)
        goto out;
    w = pwrite(sp->wfd, recs, len, sp->woff);
    if (w != (ssize_t)len) {
        if (w > 0)
            cut(sp->wfd, sp->woff);
        goto out;
    }
    sp->woff += w;
    sp->st.bytes += len;
    sp->st.pending += (unsigned long long)n;
    sp->st.appended += (unsigned long long)n;
    rc = 0;
    seg_roll(sp);
    pthread_cond_broadcast(&sp->cond);
out:
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

/* Lock held. Pass over fully taken segments; the bytes left to take in the one
 * being taken from. (Segments are deleted once delivery is done with them.) */
static off_t takeable(spool *sp)
{
    while (sp->tseg < sp->wseg) {
        off_t end = lseek(sp->tfd, 0, SEEK_END);
        int fd;
        if (end > sp->toff)
            return end - sp->toff;
        if ((fd = seg_open(sp, sp->tseg + 1, O_RDONLY)) < 0)
            return 0;
        close(sp->tfd);
        sp->tfd = fd;
        sp->tseg++;
        sp->toff = 0;
    }
    return sp->woff - sp->toff;
}

long spool_take(spool *sp, char **buf, size_t *cap, size_t *len, size_t maxn,
                size_t maxbytes, char *kind, unsigned long long *seq, char *err, size_t errlen)
{
    off_t avail;
    ssize_t got;
    char *p, *end;
    long n = 0;
    size_t want;
    int resumed;
    struct batch *b;

    pthread_mutex_lock(&sp->lock);
    *len = 0;
    if (sp->nfl == MAX_FLIGHT || (avail = takeable(sp)) <= 0)
        goto out;
    resumed = sp->iresume < sp->nresume;
    want = resumed ? (size_t)sp->resume[sp->iresume] : maxn;
    got = pread(sp->tfd, sp->rbuf, avail < READ_CAP ? (size_t)avail : READ_CAP, sp->toff);
    if (got <= 0) {
        snprintf(err, errlen, "reading the spool: %s", got < 0 ? strerror(errno) : "cut short");
        n = -1;
        goto out;
    }
    for (p = sp->rbuf, end = sp->rbuf + got; (size_t)n < want; n++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t tlen;
        if (!nl)
            break;
        tlen = (size_t)(nl - p) - 1;
        if (n == 0)
            *kind = *p;
        else if (!resumed && (*p != *kind || *len + 1 + tlen > maxbytes))
            break;
        if (*len + tlen + 2 > *cap) {
            size_t ncap = (*len + tlen + 2) * 2;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                n = -1;
                goto out;
            }
            *buf = nb;
            *cap = ncap;
        }
        if (n > 0)
            (*buf)[(*len)++] = ',';
        memcpy(*buf + *len, p + 1, tlen);
        *len += tlen;
        (*buf)[*len] = '\0';
        p = nl + 1;
    }
    if (n == 0) {
        snprintf(err, errlen, "the spool holds a record longer than %u bytes", READ_CAP);
        n = -1;
        goto out;
    }
    if (resumed)
        sp->iresume++;
    b = &sp->fl[(sp->fhead + sp->nfl++) % MAX_FLIGHT];
    b->seg = sp->tseg;
    b->off = sp->toff;
    b->bytes = p - sp->rbuf;
    b->n = n;
    b->seq = sp->tseq;
    b->done = 0;
    *seq = sp->tseq;
    sp->toff += b->bytes;
    sp->tseq += (unsigned long long)n;
    sp->taken += (unsigned long long)n;
    state_write(sp);
out:
    pthread_mutex_unlock(&sp->lock);
    return n;
}

void spool_done(spool *sp, unsigned long long seq)
{
    int i, moved = 0;

    pthread_mutex_lock(&sp->lock);
    for (i = 0; i < sp->nfl; i++) {
        struct batch *b = &sp->fl[(sp->fhead + i) % MAX_FLIGHT];
        if (b->seq == seq && !b->done) {
            b->done = 1;
            sp->st.done += (unsigned long long)b->n;
            break;
        }
    }
    /* Forget the answered batches at the head, in order. */
    while (sp->nfl > 0 && sp->fl[sp->fhead].done) {
        struct batch *b = &sp->fl[sp->fhead];
        while (sp->rseg < b->seg)
            seg_unlink(sp, sp->rseg++);
        sp->roff = b->off + b->bytes;
        sp->st.bytes -= (unsigned long long)b->bytes;
        sp->st.pending -= (unsigned long long)b->n;
        sp->taken -= (unsigned long long)b->n;
        sp->rseq += (unsigned long long)b->n;
        sp->fhead = (sp->fhead + 1) % MAX_FLIGHT;
        sp->nfl--;
        moved = 1;
    }
    if (moved) {
        /* Caught up: cut the segment back to nothing. */
        if (sp->nfl == 0 && sp->rseg == sp->wseg && sp->tseg == sp->wseg &&
            sp->roff == sp->woff && sp->woff > 0 && ftruncate(sp->wfd, 0) == 0)
            sp->roff = sp->toff = sp->woff = 0;
        state_write(sp);
        pthread_cond_broadcast(&sp->cond);
    }
    pthread_mutex_unlock(&sp->lock);
}

long spool_inflight(spool *sp)
{
    long n;

    pthread_mutex_lock(&sp->lock);
    n = sp->nfl;
    pthread_mutex_unlock(&sp->lock);
    return n;
}

void spool_wait(spool *sp, int ms)
{
    struct timespec ts = util_deadline(CLOCK_REALTIME, ms);

    pthread_mutex_lock(&sp->lock);
    if (!sp->ended && sp->st.pending == sp->taken)
        pthread_cond_timedwait(&sp->cond, &sp->lock, &ts);
    pthread_mutex_unlock(&sp->lock);
}

void spool_end(spool *sp)
{
    pthread_mutex_lock(&sp->lock);
    sp->ended = 1;
    pthread_cond_broadcast(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
}

int spool_finished(spool *sp)
{
    int f;

    pthread_mutex_lock(&sp->lock);
    f = sp->ended && sp->st.pending == 0;
    pthread_mutex_unlock(&sp->lock);
    return f;
}

const char *spool_id(const spool *sp)
{
    return sp->id;
}

void spool_stats(spool *sp, struct spool_stats *st)
{
    pthread_mutex_lock(&sp->lock);
    *st = sp->st;
    pthread_mutex_unlock(&sp->lock);
}

void spool_close(spool *sp, int remove)
{
    char path[4096];
    unsigned long lo, hi, s;

    if (!sp)
        return;
    if (sp->wfd >= 0)
        close(sp->wfd);
    if (sp->tfd >= 0)
        close(sp->tfd);
    if (sp->sfd >= 0)
        close(sp->sfd);
    if (remove && sp->dir) {
        seg_range(sp->dir, &lo, &hi);
        for (s = lo; s && s <= hi; s++)
            seg_unlink(sp, s);
        snprintf(path, sizeof path, "%s/state", sp->dir);
        unlink(path);
        rmdir(sp->dir);
    }
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp->rbuf);
    free(sp->dir);
    free(sp);
}
