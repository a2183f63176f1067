/* format.c: the console's output (console.h): text made safe for a terminal (a build
 * log keeps its colours, nothing else of a stored line reaches the terminal as a
 * control sequence), tables, sizes, JSON, and the k=v arguments of `query`. */
#include "console.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *q;
        while (cap < b->n + n + 1)
            cap *= 2;
        if (!(q = realloc(b->p, cap))) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static char *sb_done(struct sbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

/* The length of a colour sequence ESC [ digits ; : ... m at s, or 0. */
static size_t sgr_len(const char *s)
{
    size_t i = 2;

    if (s[0] != '\x1b' || s[1] != '[')
        return 0;
    while (s[i] && (isdigit((unsigned char)s[i]) || s[i] == ';' || s[i] == ':'))
        i++;
    return s[i] == 'm' ? i + 1 : 0;
}

char *fmt_term(const char *s, int keep_sgr, int *had_sgr)
{
    struct sbuf b = {0};
    char tmp[8];
    size_t n;

    while (*s) {
        unsigned char ch = (unsigned char)*s;
        if (keep_sgr && (n = sgr_len(s))) {
            sb_put(&b, s, n);
            if (had_sgr)
                *had_sgr = 1;
            s += n;
        } else if (ch == '\t') {
            sb_put(&b, s++, 1);
        } else if (ch < 0x20 || ch == 0x7f) {
            tmp[0] = '^';
            tmp[1] = ch == 0x7f ? '?' : (char)(ch + 64);
            sb_put(&b, tmp, 2);
            s++;
        } else if (ch == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) {
            snprintf(tmp, sizeof tmp, "<%02X>", (unsigned char)s[1]);   /* a C1 control */
            sb_put(&b, tmp, strlen(tmp));
            s += 2;
        } else {
            sb_put(&b, s++, 1);
        }
    }
    return sb_done(&b);
}

char *fmt_cell(const cJSON *v)
{
    char *p, *q;

    if (cJSON_IsString(v))
        return fmt_term(v->valuestring, 0, NULL);
    if (!v || cJSON_IsNull(v))
        return strdup("NULL");
    if (!(p = cJSON_PrintUnformatted(v)))
        return NULL;
    q = fmt_term(p, 0, NULL);
    cJSON_free(p);
    return q;
}

void fmt_bytes(double n, char *out, size_t len)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    int i = -1;

    if (n < 1024) {
        snprintf(out, len, "%.0f bytes", n);
        return;
    }
    while (n >= 1024 && i < 3) {
        n /= 1024;
        i++;
    }
    snprintf(out, len, "%.1f %s", n, unit[i]);
}

void fmt_num(const cJSON *obj, const char *key, char *out, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(out, len, "%.0f", d);
        else
            snprintf(out, len, "%.3f", d);
    } else if (cJSON_IsString(v)) {
        char *t = fmt_term(v->valuestring, 0, NULL);
        snprintf(out, len, "%s", t ? t : "");
        free(t);
    } else {
        snprintf(out, len, "-");
    }
}

/* Characters a cell shows (UTF-8 code points). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

#define CELL_MAX 100    /* a longer cell is cut, with "..." (--json has it whole) */

static char *cut(char *s)
{
    size_t w = 0, i;

    if (!s)
        return NULL;
    for (i = 0; s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++w > CELL_MAX - 3) {
            strcpy(s + i, "...");
            break;
        }
    return s;
}

void fmt_table(const cJSON *rows, const char *skip)
{
    const cJSON *first = cJSON_GetArrayItem(rows, 0), *col, *row;
    int ncol = 0, nrow = cJSON_GetArraySize(rows), i, j;
    const char **names;
    size_t *w;
    char ***cells;

    if (!cJSON_IsObject(first))
        return;
    cJSON_ArrayForEach(col, first)
        ncol++;
    names = calloc((size_t)ncol + 1, sizeof *names);
    w = calloc((size_t)ncol + 1, sizeof *w);
    cells = calloc((size_t)nrow + 1, sizeof *cells);
    if (!names || !w || !cells)
        goto out;
    j = 0;
    cJSON_ArrayForEach(col, first) {
        if (skip && !strcmp(col->string, skip))
            continue;
        names[j] = col->string;
        w[j] = width(col->string);
        j++;
    }
    ncol = j;
    i = 0;
    cJSON_ArrayForEach(row, rows) {
        if (!(cells[i] = calloc((size_t)ncol + 1, sizeof **cells)))
            goto out;
        for (j = 0; j < ncol; j++) {
            char *t = cut(fmt_cell(cJSON_GetObjectItemCaseSensitive(row, names[j])));
            cells[i][j] = t ? t : strdup("?");
            if (cells[i][j] && width(cells[i][j]) > w[j])
                w[j] = width(cells[i][j]);
        }
        i++;
    }
    for (j = 0; j < ncol; j++)
        printf("%s%-*s", j ? "  " : "", j == ncol - 1 ? 0 : (int)w[j], names[j]);
    printf("\n");
    for (i = 0; i < nrow; i++) {
        for (j = 0; j < ncol; j++) {
            const char *t = cells[i][j] ? cells[i][j] : "";
            /* pad by characters, not bytes */
            printf("%s%s", j ? "  " : "", t);
            if (j < ncol - 1)
                printf("%*s", (int)(w[j] - width(t)), "");
        }
        printf("\n");
    }
out:
    for (i = 0; cells && i < nrow; i++) {
        for (j = 0; cells[i] && j < ncol; j++)
            free(cells[i][j]);
        free(cells[i]);
    }
    free(cells);
    free(names);
    free(w);
}

void fmt_json(const cJSON *v)
{
    char *p = cJSON_PrintUnformatted(v);

    if (p) {
        printf("%s\n", p);
        cJSON_free(p);
    }
}

/* An RFC 8259 number, the whole string. */
static int is_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (isdigit((unsigned char)*s))
        while (isdigit((unsigned char)*s))
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

int fmt_param(cJSON *obj, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '='), *v;
    char key[128];
    size_t klen, i;
    int raw;
    cJSON *val = NULL;

    if (!eq)
        return util_fail(err, errlen, "\"%s\": a parameter is NAME=VALUE (or NAME:=JSON)", arg);
    raw = eq > arg && eq[-1] == ':';
    klen = (size_t)(eq - arg) - (size_t)raw;
    if (klen == 0 || klen >= sizeof key)
        return util_fail(err, errlen, "\"%s\": a parameter needs a name before =", arg);
    for (i = 0; i < klen; i++)
        if (!(isalnum((unsigned char)arg[i]) || arg[i] == '_'))
            return util_fail(err, errlen, "\"%.*s\": a parameter name is letters, digits and _",
                             (int)klen, arg);
    memcpy(key, arg, klen);
    key[klen] = '\0';
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return util_fail(err, errlen, "parameter \"%s\" given twice", key);
    v = eq + 1;
    if (raw) {
        const char *end = NULL;
        val = cJSON_ParseWithOpts(v, &end, 1);
        if (!val)
            return util_fail(err, errlen, "%s:=%s: not valid JSON (to send text, use %s=TEXT)",
                             key, v, key);
    } else if (!strcmp(v, "true") || !strcmp(v, "false")) {
        val = cJSON_CreateBool(v[0] == 't');
    } else if (!strcmp(v, "null")) {
        val = cJSON_CreateNull();
    } else if (is_number(v) && !strpbrk(v, ".eE")) {
        long long n;
        errno = 0;
        n = strtoll(v, NULL, 10);
        /* beyond 2^53 a JSON number is not exact: sent as text, as the protocol asks */
        if (errno || n > UTIL_EXACT_INT || n < -UTIL_EXACT_INT)
            val = cJSON_CreateString(v);
        else
            val = cJSON_CreateNumber((double)n);
    } else if (is_number(v)) {
        double d = strtod(v, NULL);
        val = isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateString(v);
    } else {
        val = cJSON_CreateString(v);
    }
    if (!val)
        return util_fail(err, errlen, "out of memory");
    cJSON_AddItemToObject(obj, key, val);
    return 0;
}
