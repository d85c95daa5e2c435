/* Scorers of kv-score.h. Policy code only: the dot products and softmax come from the kernel
 * table (simd/ops.h), so they run at the dispatched ISA. */
#include "kv-score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int kv_score_layout(const struct kv_cache *kv, int layer, int n_window, int32_t *off,
                    struct adakv_err *e) {
    off[0] = 0;
    for (int g = 0; g < kv->n_head_kv; g++) {
        const struct kv_segment *s = kv_cache_seg(kv, layer, g);
        if (s->len < n_window)
            return err_set(e, "kv-score: layer %d head %d holds %d rows, fewer than the window %d",
                           layer, g, s->len, n_window);
        off[g + 1] = off[g] + (s->len - n_window);
    }
    return 0;
}

void kv_row_to_f32(enum kv_type type, const void *rows, const float *scales, int row, int head_dim,
                   float *out) {
    size_t base = (size_t)row * head_dim;
    switch (type) {
    case KV_TYPE_INT8: {
        const int8_t *r = (const int8_t *)rows + base;
        for (int i = 0; i < head_dim; i++)
            out[i] = (float)r[i] * scales[row];
        break;
    }
    case KV_TYPE_F16: {
        const _Float16 *r = (const _Float16 *)rows + base;
        for (int i = 0; i < head_dim; i++)
            out[i] = (float)r[i];
        break;
    }
    case KV_TYPE_F32:
        memcpy(out, (const float *)rows + base, (size_t)head_dim * sizeof *out);
        break;
    }
}

/* s[r * n_k + j] = mul * q_r . k_j for n_q query rows (stride q_stride) against the first n_k
 * stored key rows of a segment, whatever the storage type. */
static void logits(const struct simd_ops *ops, enum kv_type type, const struct kv_segment *seg,
                   float *s, const float *q, size_t q_stride, int n_q, int n_k, int d, float mul) {
    switch (type) {
    case KV_TYPE_INT8:
        ops->attn_qk_i8(s, (size_t)n_k, q, q_stride, n_q, seg->k, seg->k_scale, n_k, d, mul);
        break;
    case KV_TYPE_F16:
        ops->attn_qk_f16(s, (size_t)n_k, q, q_stride, n_q, seg->k, n_k, d, mul);
        break;
    case KV_TYPE_F32:
        ops->attn_qk_f32(s, (size_t)n_k, q, q_stride, n_q, seg->k, n_k, d, mul);
        break;
    }
}

void kv_score_pool(const float *in, int n, enum kv_pool pool, int kernel, float *out) {
    int half = kernel / 2;
    if (pool == KV_POOL_NONE || kernel <= 1) {
        memcpy(out, in, (size_t)n * sizeof *out);
        return;
    }
    for (int j = 0; j < n; j++) {
        int lo = j - half < 0 ? 0 : j - half, hi = j + half >= n ? n - 1 : j + half;
        if (pool == KV_POOL_MAX) {
            float m = in[lo];
            for (int i = lo + 1; i <= hi; i++)
                m = in[i] > m ? in[i] : m;
            out[j] = m;
        } else {
            float sum = 0.0f;
            for (int i = lo; i <= hi; i++)
                sum += in[i];
            out[j] = sum / (float)kernel;
        }
    }
}

int kv_score_snapkv(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                    const float *q_window, int n_window, int n_head, enum kv_pool pool, int kernel,
                    const int32_t *off, float *out, struct adakv_err *e) {
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    int max_len = 0;
    for (int g = 0; g < n_kv; g++)
        if (kv_cache_seg(kv, layer, g)->len > max_len)
            max_len = kv_cache_seg(kv, layer, g)->len;
    /* One head at a time keeps the score block at n_window x len floats (algorithms.md 1). */
    float *p = malloc((size_t)n_window * (max_len ? max_len : 1) * sizeof *p);
    float *acc = malloc((size_t)(max_len ? max_len : 1) * sizeof *acc);
    if (!p || !acc) {
        free(p);
        free(acc);
        return err_set(e, "kv-score: out of memory for the %d x %d window scores", n_window,
                       max_len);
    }
    const float mul = 1.0f / sqrtf((float)d);
    const float inv_rows = 1.0f / (float)(n_window * group);
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        const int len = seg->len, n_prefix = off[g + 1] - off[g];
        memset(acc, 0, (size_t)n_prefix * sizeof *acc);
        for (int h = g * group; h < (g + 1) * group; h++) {
            logits(ops, kv->type, seg, p, q_window + (size_t)h * d, (size_t)n_head * d, n_window,
                   len, d, mul);
            for (int t = 0; t < n_window; t++) {
                float *row = p + (size_t)t * len;
                /* Causal inside the window: query t sits at row n_prefix + t. */
                for (int j = n_prefix + t + 1; j < len; j++)
                    row[j] = -INFINITY;
                ops->softmax(row, len);
                for (int j = 0; j < n_prefix; j++)
                    acc[j] += row[j];
            }
        }
        for (int j = 0; j < n_prefix; j++)
            acc[j] *= inv_rows;
        kv_score_pool(acc, n_prefix, pool, kernel, out + off[g]);
    }
    free(p);
    free(acc);
    return 0;
}

/* Squared L2 norm of one stored row, read in place. */
static double row_sq_norm(enum kv_type type, const void *rows, const float *scales, int row,
                          int d) {
    double sq = 0.0;
    size_t base = (size_t)row * d;
    for (int i = 0; i < d; i++) {
        double x = type == KV_TYPE_INT8  ? (double)((const int8_t *)rows)[base + i]
                   : type == KV_TYPE_F16 ? (double)((const _Float16 *)rows)[base + i]
                                         : (double)((const float *)rows)[base + i];
        sq += x * x;
    }
    if (type == KV_TYPE_INT8)
        sq *= (double)scales[row] * scales[row];
    return sq;
}

void kv_score_knorm(const struct kv_cache *kv, int layer, const int32_t *off, float *out) {
    for (int g = 0; g < kv->n_head_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        for (int j = 0; j < off[g + 1] - off[g]; j++)
            out[off[g] + j] =
                -(float)sqrt(row_sq_norm(kv->type, seg->k, seg->k_scale, j, kv->head_dim));
    }
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void kv_score_random(uint64_t seed, int layer, int n_head_kv, const int32_t *off, float *out) {
    for (int g = 0; g < n_head_kv; g++) {
        uint64_t stream = splitmix64(seed ^ splitmix64(((uint64_t)layer << 32) | (uint32_t)g));
        for (int j = 0; j < off[g + 1] - off[g]; j++)
            out[off[g] + j] = (float)(splitmix64(stream + (uint64_t)j) >> 40) * 0x1p-24f;
    }
}

int kv_score_value_norm(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                        int n_head, int n_embd, const float *w_o, const int32_t *off, float *out,
                        struct adakv_err *e) {
    enum { CHUNK = 128 }; /* rows of v W_O^h held at once: CHUNK x n_embd floats */
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    const size_t w_stride = (size_t)n_head * d;
    float *w_h = malloc((size_t)n_embd * d * sizeof *w_h);
    float *v = malloc((size_t)CHUNK * d * sizeof *v);
    float *u = malloc((size_t)CHUNK * n_embd * sizeof *u);
    if (!w_h || !v || !u) {
        free(w_h);
        free(v);
        free(u);
        return err_set(e, "kv-score: out of memory for the value norms (n_embd %d)", n_embd);
    }
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        const int n_prefix = off[g + 1] - off[g];
        float *dst = out + off[g];
        memset(dst, 0, (size_t)n_prefix * sizeof *dst);
        for (int h = g * group; h < (g + 1) * group; h++) {
            /* W_O^h as n_embd contiguous rows of head_dim, so the qk kernel can apply it. */
            for (int r = 0; r < n_embd; r++)
                memcpy(w_h + (size_t)r * d, w_o + r * w_stride + (size_t)h * d,
                       (size_t)d * sizeof *w_h);
            for (int j0 = 0; j0 < n_prefix; j0 += CHUNK) {
                int rows = n_prefix - j0 < CHUNK ? n_prefix - j0 : CHUNK;
                for (int r = 0; r < rows; r++)
                    kv_row_to_f32(kv->type, seg->v, seg->v_scale, j0 + r, d, v + (size_t)r * d);
                ops->attn_qk_f32(u, (size_t)n_embd, v, (size_t)d, rows, w_h, n_embd, d, 1.0f);
                for (int r = 0; r < rows; r++) {
                    double l1 = 0.0;
                    for (int c = 0; c < n_embd; c++)
                        l1 += fabsf(u[(size_t)r * n_embd + c]);
                    dst[j0 + r] += (float)l1 / (float)group;
                }
            }
        }
    }
    free(w_h);
    free(v);
    free(u);
    return 0;
}
