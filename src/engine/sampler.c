#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "adakv.h"

int sampler_init(struct sampler *s, const struct sampler_params *p, int n_vocab,
                 struct adakv_err *e) {
    s->p = *p;
    s->n_vocab = n_vocab;
    /* splitmix64 expands the seed so nearby seeds give unrelated streams */
    uint64_t z = p->seed;
    for (int i = 0; i < 2; i++) {
        z += 0x9e3779b97f4a7c15ull;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        s->rng[i] = x ^ (x >> 31);
    }
    if (s->rng[0] == 0 && s->rng[1] == 0)
        s->rng[0] = 1;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->cand)
        return err_set(e, "sampler: out of memory for %d candidates", n_vocab);
    return 0;
}

void sampler_free(struct sampler *s) {
    free(s->cand);
    s->cand = NULL;
}

double sampler_uniform(struct sampler *s) {
    uint64_t a = s->rng[0], b = s->rng[1];
    s->rng[0] = b;
    a ^= a << 23;
    s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return (double)((s->rng[1] + b) >> 11) * (1.0 / 9007199254740992.0);
}

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

/* Descending by logit, ascending id on ties, so results do not depend on qsort's stability. */
static int cand_cmp(const void *pa, const void *pb) {
    const struct sampler_cand *a = pa, *b = pb;
    if (a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* a ranks below b: lower logit, or equal logit and higher id */
static int cand_below(const struct sampler_cand *a, const struct sampler_cand *b) {
    return cand_cmp(a, b) > 0;
}

static void heap_sift_down(struct sampler_cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_below(&h[l], &h[m]))
            m = l;
        if (r < n && cand_below(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct sampler_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Moves the k best candidates to the front, sorted best first. A min-heap of size k keeps this
 * O(n log k): a full sort of 49k candidates would cost more than a decode step. */
static int top_k_sorted(struct sampler_cand *c, int n, int k) {
    if (k <= 0 || k >= n) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        return n;
    }
    for (int i = k / 2 - 1; i >= 0; i--)
        heap_sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cand_below(&c[0], &c[i])) {
            c[0] = c[i];
            heap_sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
    return k;
}

int32_t sampler_sample(struct sampler *s, const float *logits) {
    const int n = s->n_vocab;
    if (s->p.temp <= 0.0f)
        return argmax(logits, n);

    struct sampler_cand *c = s->cand;
    for (int i = 0; i < n; i++)
        c[i] = (struct sampler_cand){logits[i], i};
    int m = top_k_sorted(c, n, s->p.top_k);

    /* top-p on the softmax of the (untempered) logits, as llama.cpp's chain does */
    if (s->p.top_p < 1.0f) {
        double z = 0.0;
        for (int i = 0; i < m; i++)
            z += exp((double)c[i].logit - c[0].logit);
        double cum = 0.0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += exp((double)c[i].logit - c[0].logit) / z;
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        m = keep;
    }

    double z = 0.0;
    for (int i = 0; i < m; i++)
        z += exp(((double)c[i].logit - c[0].logit) / s->p.temp);
    double r = sampler_uniform(s) * z, cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += exp(((double)c[i].logit - c[0].logit) / s->p.temp);
        if (r < cum)
            return c[i].id;
    }
    return c[m - 1].id;
}

/* ---- the public sampler (adakv.h): struct sampler behind an opaque handle ---- */

struct adakv_sampler {
    struct sampler s;
};

void adakv_sampler_params_default(struct adakv_sampler_params *p) {
    *p = (struct adakv_sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 0};
}

struct adakv_sampler *adakv_sampler_new(const struct adakv_model *m,
                                        const struct adakv_sampler_params *p, struct adakv_err *e) {
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "sampler: out of memory");
        return NULL;
    }
    const struct sampler_params sp = {
        .temp = p->temp, .top_k = p->top_k, .top_p = p->top_p, .seed = p->seed};
    if (sampler_init(&s->s, &sp, info.n_vocab, e) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void adakv_sampler_free(struct adakv_sampler *s) {
    if (!s)
        return;
    sampler_free(&s->s);
    free(s);
}

int32_t adakv_sample(struct adakv_sampler *s, const float *logits) {
    return sampler_sample(&s->s, logits);
}
