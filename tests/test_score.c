/* Scorers on random caches: SnapKV against a naive double-precision reference (int8, f16, f32
 * storage; max/avg/no pooling; GQA groups), GQA mean before pooling equal to the MHA path with
 * group size 1, pooling edges, knorm, random, and the CriticalKV value norm. */
#include <criterion/criterion.h>
#include <math.h>

#include "kv-fixture.h"
#include "kv-score.h"

static const struct simd_ops *scalar_ops(void) {
    return simd_ops_scalar();
}

/* Naive SnapKV for KV head g, unpooled: mean over group heads and window queries of the causal
 * softmax over all rows. */
static void naive_snapkv(const struct kv_cache *kv, int g, const float *q, int n_window, int n_head,
                         double *acc) {
    const struct kv_segment *s = kv_cache_seg(kv, 0, g);
    const int d = kv->head_dim, len = s->len, group = n_head / kv->n_head_kv;
    const int n_prefix = len - n_window;
    float *k = malloc((size_t)len * d * sizeof *k);
    double *p = malloc((size_t)len * sizeof *p);
    for (int j = 0; j < len; j++)
        kv_row_to_f32(kv->type, s->k, s->k_scale, j, d, k + (size_t)j * d);
    for (int j = 0; j < n_prefix; j++)
        acc[j] = 0.0;
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int t = 0; t < n_window; t++) {
            const float *qr = q + ((size_t)t * n_head + h) * d;
            int seen = n_prefix + t + 1;
            double m = -INFINITY, sum = 0.0;
            for (int j = 0; j < seen; j++) {
                double z = 0.0;
                for (int i = 0; i < d; i++)
                    z += (double)qr[i] * k[(size_t)j * d + i];
                p[j] = z / sqrt((double)d);
                m = p[j] > m ? p[j] : m;
            }
            for (int j = 0; j < seen; j++)
                sum += (p[j] = exp(p[j] - m));
            for (int j = 0; j < n_prefix; j++)
                acc[j] += p[j] / sum / (group * n_window);
        }
    free(k);
    free(p);
}

static void naive_pool(const double *in, int n, enum kv_pool pool, int kernel, double *out) {
    for (int j = 0; j < n; j++) {
        double m = -INFINITY, sum = 0.0;
        for (int i = j - kernel / 2; i <= j + kernel / 2; i++) {
            if (i < 0 || i >= n)
                continue;
            m = in[i] > m ? in[i] : m;
            sum += in[i];
        }
        out[j] = pool == KV_POOL_NONE ? in[j] : pool == KV_POOL_MAX ? m : sum / kernel;
    }
}

static float *random_queries(int n_window, int n_head, int d) {
    float *q = malloc((size_t)n_window * n_head * d * sizeof *q);
    for (int i = 0; i < n_window * n_head * d; i++)
        q[i] = fx_unif() * 2.0f;
    return q;
}

Test(score, snapkv_matches_naive_reference) {
    const enum kv_type types[] = {KV_TYPE_INT8, KV_TYPE_F16, KV_TYPE_F32};
    const enum kv_pool pools[] = {KV_POOL_MAX, KV_POOL_AVG, KV_POOL_NONE};
    const int kernels[] = {7, 5, 1};
    for (int trial = 0; trial < 18; trial++) {
        enum kv_type t = types[trial % 3];
        int n_kv = 1 + trial % 3, group = 1 + (trial / 3) % 3, n_head = n_kv * group,
            d = 16 + trial;
        int n_window = 1 + trial % 9;
        int len[3];
        for (int g = 0; g < n_kv; g++)
            len[g] = n_window + 1 + (int)(fx_u32() % 120); /* ragged lengths on purpose */
        struct kv_cache kv;
        fx_cache(&kv, t, 1, n_kv, d, len);
        float *q = random_queries(n_window, n_head, d);
        int32_t off[4];
        struct adakv_err e;
        cr_assert_eq(kv_score_layout(&kv, 0, n_window, off, &e), 0);
        float *got = malloc((size_t)off[n_kv] * sizeof *got);
        for (int pi = 0; pi < 3; pi++) {
            cr_assert_eq(kv_score_snapkv(scalar_ops(), &kv, 0, q, n_window, n_head, pools[pi],
                                         kernels[pi], off, got, &e),
                         0);
            for (int g = 0; g < n_kv; g++) {
                int n = off[g + 1] - off[g];
                double *raw = malloc((size_t)n * sizeof *raw),
                       *want = malloc((size_t)n * sizeof *want);
                naive_snapkv(&kv, g, q, n_window, n_head, raw);
                naive_pool(raw, n, pools[pi], kernels[pi], want);
                for (int j = 0; j < n; j++)
                    cr_assert(fabs(got[off[g] + j] - want[j]) <= 1e-6 + 1e-4 * want[j],
                              "type %d pool %d head %d row %d: %g vs %g", t, pools[pi], g, j,
                              got[off[g] + j], want[j]);
                free(raw);
                free(want);
            }
        }
        free(got);
        free(q);
        fx_cache_free(&kv);
    }
}

Test(score, gqa_group_mean_equals_mha_path_with_group_size_one) {
    const int n_kv = 3, group = 3, n_head = 9, d = 32, n_window = 6;
    int len[3] = {90, 90, 90};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_INT8, 1, n_kv, d, len);
    float *q = random_queries(n_window, n_head, d);
    int32_t off[4];
    struct adakv_err e;
    kv_score_layout(&kv, 0, n_window, off, &e);
    float *gqa = malloc((size_t)off[n_kv] * sizeof *gqa);
    float *mha = malloc((size_t)off[n_kv] * sizeof *mha);
    double *mean = calloc((size_t)off[n_kv], sizeof *mean);
    /* Reduction before pooling: compare unpooled, where the group mean is linear. */
    kv_score_snapkv(scalar_ops(), &kv, 0, q, n_window, n_head, KV_POOL_NONE, 1, off, gqa, &e);
    float *q1 = malloc((size_t)n_window * n_kv * d * sizeof *q1);
    for (int i = 0; i < group; i++) {
        for (int t = 0; t < n_window; t++)
            for (int g = 0; g < n_kv; g++)
                memcpy(q1 + ((size_t)t * n_kv + g) * d,
                       q + ((size_t)t * n_head + g * group + i) * d, (size_t)d * sizeof *q1);
        /* group size 1: n_head == n_head_kv, each KV head scored by one query head (MHA) */
        kv_score_snapkv(scalar_ops(), &kv, 0, q1, n_window, n_kv, KV_POOL_NONE, 1, off, mha, &e);
        for (int j = 0; j < off[n_kv]; j++)
            mean[j] += mha[j] / group;
    }
    for (int j = 0; j < off[n_kv]; j++)
        cr_assert(fabs(gqa[j] - mean[j]) <= 1e-6 + 1e-5 * mean[j], "row %d: %g vs %g", j, gqa[j],
                  mean[j]);
    free(q1);
    free(gqa);
    free(mha);
    free(mean);
    free(q);
    fx_cache_free(&kv);
}

Test(score, dispatched_kernels_agree_with_reference) {
    const int n_kv = 3, n_head = 9, d = 64, n_window = 32;
    int len[3] = {500, 500, 500};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_INT8, 1, n_kv, d, len);
    float *q = random_queries(n_window, n_head, d);
    int32_t off[4];
    struct adakv_err e;
    kv_score_layout(&kv, 0, n_window, off, &e);
    float *a = malloc((size_t)off[n_kv] * sizeof *a), *b = malloc((size_t)off[n_kv] * sizeof *b);
    kv_score_snapkv(simd_ops_scalar(), &kv, 0, q, n_window, n_head, KV_POOL_MAX, 7, off, a, &e);
    kv_score_snapkv(simd_ops_best(), &kv, 0, q, n_window, n_head, KV_POOL_MAX, 7, off, b, &e);
    for (int j = 0; j < off[n_kv]; j++)
        cr_assert(fabsf(a[j] - b[j]) <= 1e-6f + 1e-4f * a[j], "row %d: %g vs %g", j, a[j], b[j]);
    free(a);
    free(b);
    free(q);
    fx_cache_free(&kv);
}

Test(score, pooling_edges) {
    const float in[5] = {1, 5, 2, 0, 3};
    float out[5];
    kv_score_pool(in, 5, KV_POOL_MAX, 3, out);
    const float want_max[5] = {5, 5, 5, 3, 3};
    for (int j = 0; j < 5; j++)
        cr_assert_eq(out[j], want_max[j]);
    kv_score_pool(in, 5, KV_POOL_AVG, 3, out);
    /* zero padding counted: the edges divide by 3 too */
    const float want_avg[5] = {2.0f, 8.0f / 3, 7.0f / 3, 5.0f / 3, 1.0f};
    for (int j = 0; j < 5; j++)
        cr_assert_float_eq(out[j], want_avg[j], 1e-6f);
    kv_score_pool(in, 1, KV_POOL_MAX, 7, out);
    cr_assert_eq(out[0], 1.0f);
}

Test(score, knorm_and_random) {
    int len[2] = {40, 30};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, 2, 8, len);
    int32_t off[3];
    struct adakv_err e;
    kv_score_layout(&kv, 0, 4, off, &e);
    float s[70], r1[70], r2[70], r3[70];
    kv_score_knorm(&kv, 0, off, s);
    for (int g = 0; g < 2; g++)
        for (int j = 0; j < off[g + 1] - off[g]; j++) {
            const float *k = (const float *)kv_cache_seg(&kv, 0, g)->k + j * 8;
            double sq = 0;
            for (int i = 0; i < 8; i++)
                sq += k[i] * k[i];
            cr_assert_float_eq(s[off[g] + j], -sqrt(sq), 1e-5);
        }
    kv_score_random(7, 3, 2, off, r1);
    kv_score_random(7, 3, 2, off, r2);
    kv_score_random(8, 3, 2, off, r3);
    int differ = 0;
    for (int j = 0; j < off[2]; j++) {
        cr_assert(r1[j] >= 0.0f && r1[j] < 1.0f);
        cr_assert_eq(r1[j], r2[j]);
        differ += r1[j] != r3[j];
    }
    cr_assert_gt(differ, off[2] / 2);
    fx_cache_free(&kv);
}

Test(score, window_longer_than_a_segment_is_an_error) {
    int len[2] = {40, 3};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, 2, 8, len);
    int32_t off[3];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, 4, off, &e), -1);
    cr_assert(strstr(e.msg, "fewer than the window"), "%s", e.msg);
    fx_cache_free(&kv);
}

Test(score, value_norm_matches_naive) {
    const int n_kv = 2, n_head = 4, d = 8, n_embd = 13, n_window = 3;
    int len[2] = {20, 17};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_INT8, 1, n_kv, d, len);
    float *w = malloc((size_t)n_embd * n_head * d * sizeof *w);
    for (int i = 0; i < n_embd * n_head * d; i++)
        w[i] = fx_unif();
    int32_t off[3];
    struct adakv_err e;
    kv_score_layout(&kv, 0, n_window, off, &e);
    float got[40];
    cr_assert_eq(kv_score_value_norm(scalar_ops(), &kv, 0, n_head, n_embd, w, off, got, &e), 0);
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *s = kv_cache_seg(&kv, 0, g);
        for (int j = 0; j < off[g + 1] - off[g]; j++) {
            double want = 0;
            for (int h = g * 2; h < g * 2 + 2; h++)
                for (int o = 0; o < n_embd; o++) {
                    double u = 0;
                    for (int i = 0; i < d; i++)
                        u += (double)w[(size_t)o * n_head * d + h * d + i] *
                             ((const int8_t *)s->v)[j * d + i] * s->v_scale[j];
                    want += fabs(u) / 2;
                }
            cr_assert(fabs(got[off[g] + j] - want) <= 1e-5 * (1 + want), "head %d row %d: %g vs %g",
                      g, j, got[off[g] + j], want);
        }
    }
    free(w);
    fx_cache_free(&kv);
}
