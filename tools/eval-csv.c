/* adakv-eval's results file (eval-csv.h): header check, resume keys, one-line rows. */
#include "eval-csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

#define KEY_FIELDS 8

void eval_key_format(const struct eval_key *k, char *buf, size_t cap) {
    snprintf(buf, cap, "%s,%d,%d,%d,%llu,%s,%g,%s", k->task, k->length, k->depth, k->sample,
             (unsigned long long)k->seed, k->press, k->ratio, k->mode);
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool eval_done_has(const struct eval_done *d, const char *key) {
    return d->n && bsearch(&key, d->keys, d->n, sizeof *d->keys, cmp_key);
}

void eval_done_free(struct eval_done *d) {
    for (size_t i = 0; i < d->n; i++)
        free(d->keys[i]);
    free(d->keys);
    *d = (struct eval_done){0};
}

/* The first KEY_FIELDS comma-separated fields of a row, or NULL for a short row. */
static char *row_key(const char *line, size_t len) {
    size_t i = 0;
    for (int commas = 0; i < len; i++)
        if (line[i] == ',' && ++commas == KEY_FIELDS)
            break;
    if (i == len)
        return NULL;
    char *k = malloc(i + 1);
    if (k) {
        memcpy(k, line, i);
        k[i] = '\0';
    }
    return k;
}

/* Reads the whole file; *len bytes (NUL-terminated). */
static char *slurp(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *g = realloc(buf, cap *= 2);
        if (!g)
            free(buf);
        buf = g;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Collects the keys of every complete row after the header into d. */
static int read_keys(const char *path, const char *text, size_t len, struct eval_done *d,
                     struct adakv_err *e) {
    size_t cap = 0;
    for (size_t at = strlen(EVAL_CSV_HEADER) + 1; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = (size_t)(nl - (text + at));
        char *k = row_key(text + at, n);
        if (!k)
            return err_set(e, "%s: line '%.40s' is not a results row", path, text + at);
        if (d->n == cap) {
            cap = cap ? 2 * cap : 256;
            char **g = realloc(d->keys, cap * sizeof *g);
            if (!g) {
                free(k);
                return err_set(e, "%s: out of memory", path);
            }
            d->keys = g;
        }
        d->keys[d->n++] = k;
        at += n + 1;
    }
    if (d->n)
        qsort(d->keys, d->n, sizeof *d->keys, cmp_key);
    return 0;
}

/* Reads an existing file's keys; drops a last line without its newline. */
static int resume(const char *path, FILE *f, struct eval_done *d, struct adakv_err *e) {
    size_t len = 0;
    char *text = slurp(f, &len);
    if (!text)
        return err_set(e, "%s: out of memory", path);
    if (ferror(f)) {
        free(text);
        return err_set(e, "%s: read error", path);
    }
    size_t hl = strlen(EVAL_CSV_HEADER);
    int rc = 0;
    if (len && (len <= hl || memcmp(text, EVAL_CSV_HEADER "\n", hl + 1)))
        rc = err_set(e,
                     "%s: not an adakv-eval results file (its header differs); give another "
                     "--csv",
                     path);
    size_t complete = len;
    while (complete && text[complete - 1] != '\n')
        complete--;
    if (!rc && complete < len) {
        fprintf(stderr, "adakv-eval: %s: dropping a last row cut short (%zu bytes)\n", path,
                len - complete);
        if (truncate(path, (off_t)complete))
            rc = err_set(e, "%s: %s", path, strerror(errno));
    }
    if (!rc && complete)
        rc = read_keys(path, text, complete, d, e);
    free(text);
    return rc;
}

int eval_csv_open(const char *path, struct eval_done *done, FILE **out, struct adakv_err *e) {
    *done = (struct eval_done){0};
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f && errno != ENOENT)
        return err_set(e, "--csv: %s: %s", path, strerror(errno));
    if (f) {
        int rc = resume(path, f, done, e);
        fclose(f);
        if (rc)
            return -1;
    }
    if (!(f = fopen(path, "ab")))
        return err_set(e, "--csv: %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) == 0 &&
        (fputs(EVAL_CSV_HEADER "\n", f) < 0 || fflush(f))) {
        fclose(f);
        return err_set(e, "%s: %s", path, strerror(errno));
    }
    *out = f;
    return 0;
}

/* The answer as one CSV field on one line (see the header). */
static void put_answer(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputs("\"\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\r')
            fputs("\\r", f);
        else if (*s == '\\')
            fputs("\\\\", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

int eval_csv_write(FILE *f, const char *path, const struct eval_key *k, const struct eval_result *r,
                   struct adakv_err *e) {
    char key[512];
    eval_key_format(k, key, sizeof key);
    fprintf(f, "%s,%zu,%zu,%zu,%zu,%d,%d,%.4f,%d,%d,%.3f,", key, r->n_tokens, r->n_context,
            r->kv_rows, r->kv_rows_full, r->score.n_expected, r->score.n_found, r->score.score,
            r->score.correct ? 1 : 0, r->answer_tokens, r->seconds);
    for (int i = 0; i < r->n_expected; i++) /* values never hold commas, quotes or '|' */
        fprintf(f, "%s%s", i ? "|" : "", r->expected[i]);
    fputc(',', f);
    put_answer(f, r->answer);
    fputc('\n', f);
    if (fflush(f) || ferror(f))
        return err_set(e, "%s: %s", path, strerror(errno));
    return 0;
}
