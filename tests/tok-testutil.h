/* Helpers shared by the tokenizer tests: file reading and the corpus line format
 * (tests/data/tokenizer-corpus.txt: one string per line, escapes \\ \n \t \r \xHH, lines
 * starting with '#' are comments). */
#ifndef ADAKV_TESTS_TOK_TESTUTIL_H
#define ADAKV_TESTS_TOK_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tt_bytes {
    char *p;
    size_t n;
};

static inline char *tt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = (size_t)n;
    }
    return p;
}

static inline char *tt_data_path(const char *name) {
    const char *src = getenv("ADAKV_SRCDIR");
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", src ? src : ".", name);
    return path;
}

static inline int tt_hex(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses the corpus; returns the number of strings (array malloc'd into *out), -1 on a bad
 * escape. */
static inline long tt_read_corpus(const char *path, struct tt_bytes **out) {
    size_t len;
    char *text = tt_read_file(path, &len);
    if (!text)
        return -1;
    size_t cap = 512, n = 0;
    struct tt_bytes *v = malloc(cap * sizeof *v);
    char *line = text;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        if (ll == 0 || line[0] != '#') {
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            char *s = malloc(ll + 1);
            size_t o = 0;
            for (size_t i = 0; i < ll; i++) {
                char c = line[i];
                if (c != '\\') {
                    s[o++] = c;
                    continue;
                }
                if (i + 1 >= ll)
                    return -1;
                char d = line[++i];
                if (d == 'n')
                    s[o++] = '\n';
                else if (d == 't')
                    s[o++] = '\t';
                else if (d == 'r')
                    s[o++] = '\r';
                else if (d == '\\')
                    s[o++] = '\\';
                else if (d == 'x' && i + 2 < ll && tt_hex(line[i + 1]) >= 0 &&
                         tt_hex(line[i + 2]) >= 0) {
                    s[o++] = (char)(tt_hex(line[i + 1]) * 16 + tt_hex(line[i + 2]));
                    i += 2;
                } else
                    return -1;
            }
            s[o] = '\0';
            v[n].p = s;
            v[n].n = o;
            n++;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    free(text);
    *out = v;
    return (long)n;
}

static inline void tt_free_corpus(struct tt_bytes *v, long n) {
    for (long i = 0; i < n; i++)
        free(v[i].p);
    free(v);
}

#endif
