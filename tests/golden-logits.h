/* Golden logits files (format: tests/data/golden/README.md): the reader and the comparison of an
 * engine's full logits with the stored top-k, for Criterion tests (asserts on malformed files).
 * Static functions: include it in one test file each. */
#ifndef ADAKV_TESTS_GOLDEN_LOGITS_H
#define ADAKV_TESTS_GOLDEN_LOGITS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct golden {
    uint32_t n_pos, k, n_vocab;
    int32_t *tokens;
    float *lse;    /* [n_pos] */
    uint32_t *ids; /* [n_pos][k] */
    float *logit;  /* [n_pos][k] */
};

static void golden_read(struct golden *g, const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    char magic[8];
    uint32_t hdr[4];
    cr_assert(fread(magic, 1, 8, f) == 8 && !memcmp(magic, "ADKVLOGT", 8), "%s: bad magic", path);
    cr_assert(fread(hdr, 4, 4, f) == 4 && hdr[0] == 1, "%s: bad version", path);
    g->n_pos = hdr[1];
    g->k = hdr[2];
    g->n_vocab = hdr[3];
    cr_assert(g->n_pos > 0 && g->n_pos <= 1 << 16 && g->k > 0 && g->k <= 64);
    g->tokens = malloc(g->n_pos * sizeof *g->tokens);
    g->lse = malloc(g->n_pos * sizeof *g->lse);
    g->ids = malloc((size_t)g->n_pos * g->k * sizeof *g->ids);
    g->logit = malloc((size_t)g->n_pos * g->k * sizeof *g->logit);
    cr_assert(fread(g->tokens, 4, g->n_pos, f) == g->n_pos);
    for (uint32_t i = 0; i < g->n_pos; i++) {
        cr_assert(fread(&g->lse[i], 4, 1, f) == 1);
        cr_assert(fread(&g->ids[(size_t)i * g->k], 4, g->k, f) == g->k);
        cr_assert(fread(&g->logit[(size_t)i * g->k], 4, g->k, f) == g->k);
    }
    cr_assert(fgetc(f) == EOF, "%s: trailing bytes", path);
    fclose(f);
}

struct agreement {
    double mean_kl, max_kl, top1;
};

/* KL(llama.cpp || adakv) over the golden top-k mass plus one tail bucket (a lower bound of the
 * full-vocabulary KL; see tests/data/golden/README.md), and top-1 agreement. */
static struct agreement compare(const struct golden *g, const float *logits, int n_vocab) {
    struct agreement a = {0, 0, 0};
    for (uint32_t i = 0; i < g->n_pos; i++) {
        const float *l = logits + (size_t)i * n_vocab;
        int am = 0;
        double mx = l[0];
        for (int j = 1; j < n_vocab; j++)
            if (l[j] > l[am]) {
                am = j;
                mx = l[j];
            }
        double s = 0.0;
        for (int j = 0; j < n_vocab; j++)
            s += exp(l[j] - mx);
        double lse_q = mx + log(s), P = 0, Q = 0, kl = 0;
        for (uint32_t j = 0; j < g->k; j++) {
            double p = exp(g->logit[i * g->k + j] - (double)g->lse[i]);
            double q = exp(l[g->ids[i * g->k + j]] - lse_q);
            P += p;
            Q += q;
            kl += p * (log(p) - log(q));
        }
        if (P < 1.0 && Q < 1.0)
            kl += (1.0 - P) * log((1.0 - P) / (1.0 - Q));
        a.mean_kl += kl;
        a.max_kl = kl > a.max_kl ? kl : a.max_kl;
        a.top1 += (uint32_t)am == g->ids[i * g->k];
    }
    a.mean_kl /= g->n_pos;
    a.top1 /= g->n_pos;
    return a;
}

static void golden_free(struct golden *g) {
    free(g->tokens), free(g->lse), free(g->ids), free(g->logit);
}

#endif
