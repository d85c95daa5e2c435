/* Random KV caches for the press tests: no model needed. Segments are malloc'ed like
 * kv-cache.c does, so kv-compact may realloc them. */
#ifndef ADAKV_TESTS_KV_FIXTURE_H
#define ADAKV_TESTS_KV_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv-cache.h"
#include "kv-score.h"

static uint64_t fx_state = 0x243f6a8885a308d3ull;
static inline void fx_seed(uint64_t s) {
    fx_state = s * 2654435761u + 1;
}
static inline uint32_t fx_u32(void) {
    fx_state ^= fx_state << 13;
    fx_state ^= fx_state >> 7;
    fx_state ^= fx_state << 17;
    return (uint32_t)(fx_state >> 16);
}
/* Uniform in [-1, 1). */
static inline float fx_unif(void) {
    return (float)fx_u32() / 2147483648.0f - 1.0f;
}

static inline size_t fx_elem(enum kv_type t) {
    return t == KV_TYPE_INT8 ? 1 : t == KV_TYPE_F16 ? 2 : 4;
}

/* Fills one row with random values of the storage type; keys get a per-row spread so attention
 * is peaked on some rows. */
static inline void fx_fill_row(enum kv_type t, void *rows, float *scale, int j, int d, float amp) {
    for (int i = 0; i < d; i++) {
        float x = fx_unif() * amp;
        if (t == KV_TYPE_INT8)
            ((int8_t *)rows)[(size_t)j * d + i] = (int8_t)(fx_u32() % 255 - 127);
        else if (t == KV_TYPE_F16)
            ((_Float16 *)rows)[(size_t)j * d + i] = (_Float16)x;
        else
            ((float *)rows)[(size_t)j * d + i] = x;
    }
    if (scale)
        scale[j] = amp * (0.002f + 0.01f * (float)(fx_u32() % 100) / 100.0f);
}

/* A cache whose segments of every layer hold len[g] rows (cap = len[g]), positions 0..len-1. */
static inline void fx_cache(struct kv_cache *c, enum kv_type t, int n_layer, int n_kv, int d,
                            const int *len) {
    c->type = t;
    c->n_layer = n_layer;
    c->n_head_kv = n_kv;
    c->head_dim = d;
    c->k_rot = 0; /* rows are written as stored bytes, not through kv_cache_append */
    c->seg = calloc((size_t)n_layer * n_kv, sizeof *c->seg);
    for (int l = 0; l < n_layer; l++)
        for (int g = 0; g < n_kv; g++) {
            struct kv_segment *s = kv_cache_seg(c, l, g);
            int n = len[g];
            s->len = s->cap = n;
            s->k = malloc((size_t)(n ? n : 1) * d * fx_elem(t));
            s->v = malloc((size_t)(n ? n : 1) * d * fx_elem(t));
            s->pos = malloc((size_t)(n ? n : 1) * sizeof *s->pos);
            if (t == KV_TYPE_INT8) {
                s->k_scale = malloc((size_t)(n ? n : 1) * sizeof(float));
                s->v_scale = malloc((size_t)(n ? n : 1) * sizeof(float));
            }
            for (int j = 0; j < n; j++) {
                float amp = 0.5f + 3.0f * (float)(fx_u32() % 1000) / 1000.0f;
                fx_fill_row(t, s->k, s->k_scale, j, d, amp);
                fx_fill_row(t, s->v, s->v_scale, j, d, 1.0f);
                s->pos[j] = j;
            }
        }
}

static inline void fx_cache_free(struct kv_cache *c) {
    for (int i = 0; i < c->n_layer * c->n_head_kv; i++) {
        free(c->seg[i].k);
        free(c->seg[i].v);
        free(c->seg[i].k_scale);
        free(c->seg[i].v_scale);
        free(c->seg[i].pos);
    }
    free(c->seg);
}

/* Deep copy, for before/after comparisons. */
static inline void fx_cache_copy(struct kv_cache *dst, const struct kv_cache *src) {
    *dst = *src;
    size_t n = (size_t)src->n_layer * src->n_head_kv;
    dst->seg = calloc(n, sizeof *dst->seg);
    for (size_t i = 0; i < n; i++) {
        const struct kv_segment *s = &src->seg[i];
        struct kv_segment *t = &dst->seg[i];
        size_t cap = (size_t)(s->cap ? s->cap : 1),
               row = (size_t)src->head_dim * fx_elem(src->type);
        *t = *s;
        t->k = malloc(cap * row);
        memcpy(t->k, s->k, (size_t)s->cap * row);
        t->v = malloc(cap * row);
        memcpy(t->v, s->v, (size_t)s->cap * row);
        t->pos = malloc(cap * sizeof *t->pos);
        memcpy(t->pos, s->pos, (size_t)s->cap * sizeof *t->pos);
        if (s->k_scale) {
            t->k_scale = malloc(cap * sizeof(float));
            memcpy(t->k_scale, s->k_scale, (size_t)s->cap * sizeof(float));
            t->v_scale = malloc(cap * sizeof(float));
            memcpy(t->v_scale, s->v_scale, (size_t)s->cap * sizeof(float));
        }
    }
}

/* A query's log-sum-exp over the rows of segment (layer, g) at positions <= max_pos (positions
 * ascend), of q . k_j / sqrt(d) in double, the keys read back through kv_row_to_f32: the
 * reference for the log-sum-exps the forward pass hands the KVzip scorer. fx_row_lse_in: over
 * only the rows whose position lies in one of the n_ranges [lo[i], hi[i]) (0: every row). */
static inline double fx_row_lse_in(const struct kv_cache *c, int layer, int g, const float *q,
                                   int32_t max_pos, const int32_t *lo, const int32_t *hi,
                                   int n_ranges) {
    const struct kv_segment *s = kv_cache_seg(c, layer, g);
    const int d = c->head_dim;
    float k[256];
    double m = -INFINITY, sum = 0.0;
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < s->len && s->pos[j] <= max_pos; j++) {
            bool seen = n_ranges == 0;
            for (int i = 0; i < n_ranges; i++)
                seen = seen || (s->pos[j] >= lo[i] && s->pos[j] < hi[i]);
            if (!seen)
                continue;
            kv_row_to_f32(c->type, s->k, s->k_scale, j, d, k);
            double z = 0.0;
            for (int i = 0; i < d; i++)
                z += (double)q[i] * k[i];
            z /= sqrt((double)d);
            if (pass == 0)
                m = z > m ? z : m;
            else
                sum += exp(z - m);
        }
    return m + log(sum);
}

static inline double fx_row_lse(const struct kv_cache *c, int layer, int g, const float *q,
                                int32_t max_pos) {
    return fx_row_lse_in(c, layer, g, q, max_pos, NULL, NULL, 0);
}

/* True when segment a holds exactly the rows of b listed by a->pos (b holds pos 0..len-1). */
static inline int fx_rows_match_by_pos(const struct kv_cache *c, const struct kv_segment *a,
                                       const struct kv_segment *b) {
    size_t row = (size_t)c->head_dim * fx_elem(c->type);
    for (int i = 0; i < a->len; i++) {
        int p = a->pos[i];
        if (p < 0 || p >= b->len || (i > 0 && p <= a->pos[i - 1]))
            return 0;
        if (memcmp((char *)a->k + i * row, (char *)b->k + (size_t)p * row, row) ||
            memcmp((char *)a->v + i * row, (char *)b->v + (size_t)p * row, row))
            return 0;
        if (a->k_scale && (a->k_scale[i] != b->k_scale[p] || a->v_scale[i] != b->v_scale[p]))
            return 0;
    }
    return 1;
}

#endif
