/* id.c: request ids. ULID-style: 48 bits of Unix time in milliseconds then 80 random
 * bits, written as 26 characters of Crockford base32, so ids sort by creation time.
 * Within one millisecond the random part is incremented instead of redrawn, so ids
 * made by this process are strictly increasing. Randomness comes from getrandom(). */
#include "mosqlite.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned char last_rand[10];

static int fill_random(unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Add one to the 80-bit big-endian number; 1 when it wrapped around. */
static int increment(unsigned char *r)
{
    int i;
    for (i = 9; i >= 0; i--)
        if (++r[i] != 0)
            return 0;
    return 1;
}

int mosqlite_new_id(char *out)
{
    unsigned char bytes[16];
    uint64_t ms;
    int i, bit;

    ms = (uint64_t)util_wall_ms();
    pthread_mutex_lock(&id_lock);
    if (ms <= last_ms) {
        ms = last_ms;               /* same millisecond, or the clock went back */
        if (increment(last_rand))
            ms = ++last_ms;
    } else if (fill_random(last_rand, sizeof last_rand)) {
        pthread_mutex_unlock(&id_lock);
        return -1;
    }
    last_ms = ms;
    for (i = 0; i < 6; i++)
        bytes[i] = (unsigned char)(ms >> (40 - 8 * i));
    memcpy(bytes + 6, last_rand, 10);
    pthread_mutex_unlock(&id_lock);

    /* 128 bits as 26 five-bit groups; the first group holds the top 3 bits. */
    for (i = 0, bit = -2; i < MOSQLITE_ID_LEN; i++, bit += 5) {
        unsigned v = 0;
        int b;
        for (b = bit; b < bit + 5; b++) {
            v <<= 1;
            if (b >= 0)
                v |= (bytes[b / 8] >> (7 - b % 8)) & 1u;
        }
        out[i] = crockford[v];
    }
    out[MOSQLITE_ID_LEN] = '\0';
    return 0;
}

int mosqlite_id_valid(const char *id)
{
    size_t n = 0;

    if (!id)
        return 0;
    for (; id[n]; n++)
        if ((unsigned char)id[n] < 0x20 || (unsigned char)id[n] > 0x7e)
            return 0;
    return n >= 1 && n <= MOSQLITE_ID_MAX;
}
