/* Scorers of kv-score.h. Policy code only: the logits GEMM and the value-norm GEMM come from
 * the press kernel table (simd/press-ops.h), exp from the forward-pass table (simd/ops.h), all
 * at the dispatched ISA; the heavy loops are split over OpenMP threads (the press hook is
 * called from outside any parallel region). */
#include "kv-score.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "press-ops.h"
#include "quant.h"

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
        const uint16_t *r = (const uint16_t *)rows + base;
        for (int i = 0; i < head_dim; i++)
            out[i] = quant_f16_to_f32(r[i]);
        break;
    }
    case KV_TYPE_F32:
        memcpy(out, (const float *)rows + base, (size_t)head_dim * sizeof *out);
        break;
    }
}

/* The press kernel table matching the caller's forward-pass table, so a reference run
 * (simd_ops_scalar()) scores with the reference kernels too. The best forward table gets the
 * best press table: at the AVX2 level, which has press kernels but no forward-pass kernels yet,
 * the best forward table is the scalar one. */
const struct press_ops *kv_score_press_ops(const struct simd_ops *ops) {
    if (ops == simd_ops_best())
        return press_ops_best();
    const struct press_ops *p = ops ? press_ops_by_name(ops->isa) : NULL;
    return p ? p : press_ops_scalar();
}

/* s[r * s_stride + j] = mul * q_r . k_j for n_q query rows (stride d) against stored key rows
 * j0 .. j0 + n_k of a segment, whatever the storage type. */
void kv_score_logits(const struct press_ops *po, enum kv_type type, const struct kv_segment *seg,
                     int j0, float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                     int n_k, int d, float mul) {
    const size_t at = (size_t)j0 * d;
    switch (type) {
    case KV_TYPE_INT8:
        po->qk_i8(s, s_stride, q, q_stride, n_q, (const int8_t *)seg->k + at, seg->k_scale + j0,
                  n_k, d, mul);
        break;
    case KV_TYPE_F16:
        po->qk_f16(s, s_stride, q, q_stride, n_q, (const uint16_t *)seg->k + at, n_k, d, mul);
        break;
    case KV_TYPE_F32:
        po->qk_f32(s, s_stride, q, q_stride, n_q, (const float *)seg->k + at, n_k, d, mul);
        break;
    }
}

/* Largest of x[0..n) (n >= 1); eight running maxima so the compiler can keep them in vector
 * lanes. */
static float row_max(const float *x, int n) {
    float m[8];
    for (int u = 0; u < 8; u++)
        m[u] = x[0];
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++)
            m[u] = x[j + u] > m[u] ? x[j + u] : m[u];
    for (; j < n; j++)
        m[0] = x[j] > m[0] ? x[j] : m[0];
    for (int u = 1; u < 8; u++)
        m[0] = m[u] > m[0] ? m[u] : m[0];
    return m[0];
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

/* Work below PARALLEL_MIN_WORK multiply-adds (about 0.1 ms on one core: decode-time evictions,
 * short prompts) runs on the calling thread: a parallel region's wake-up and barriers cost more,
 * and on a busy machine a barrier can wait a whole scheduler slice for a preempted thread.
 * KEY_CHUNK keys make one work item of the window scores. Heads whose score blocks together
 * stay under BLOCK_BYTES are scored in one pass (one parallel region, two barriers). */
enum { PARALLEL_MIN_WORK = 1 << 22, KEY_CHUNK = 256 };
#define BLOCK_BYTES ((size_t)64 << 20)

/* Scratch of kv_score_snapkv for one pass over `hp` KV heads. */
struct snap_scratch {
    float *p;    /* [hp][n_rows][ml] logits, then softmax numerators */
    float *qg;   /* [n_kv][n_rows][d] window queries of each group, contiguous */
    float *cmax; /* [hp][n_rows][n_chunks] max logit of each key chunk */
    float *cfac; /* [hp][n_rows][n_chunks] sum of the chunk's numerators, then its factor */
    float *acc;  /* [hp][ml] column means */
};

int kv_score_snapkv(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                    const float *q_window, int n_window, int n_head, enum kv_pool pool, int kernel,
                    const int32_t *off, float *out, struct adakv_err *e) {
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    const int n_rows = n_window * group; /* every window query of every head of a group */
    int max_len = 0;
    for (int g = 0; g < n_kv; g++)
        if (kv_cache_seg(kv, layer, g)->len > max_len)
            max_len = kv_cache_seg(kv, layer, g)->len;
    const size_t ml = (size_t)(max_len ? max_len : 1);
    const int n_chunks = (int)((ml + KEY_CHUNK - 1) / KEY_CHUNK);
    const size_t head_block = (size_t)n_rows * ml * sizeof(float);
    const int hp = head_block * n_kv <= BLOCK_BYTES ? n_kv : 1; /* heads per pass */
    struct snap_scratch w = {
        .p = malloc((size_t)hp * head_block),
        .qg = malloc((size_t)n_kv * n_rows * d * sizeof(float)),
        .cmax = malloc((size_t)hp * n_rows * n_chunks * sizeof(float)),
        .cfac = malloc((size_t)hp * n_rows * n_chunks * sizeof(float)),
        .acc = malloc((size_t)hp * ml * sizeof(float)),
    };
    if (!w.p || !w.qg || !w.cmax || !w.cfac || !w.acc) {
        free(w.p), free(w.qg), free(w.cmax), free(w.cfac), free(w.acc);
        return err_set(e, "kv-score: out of memory for the %d x %d window scores", n_rows, max_len);
    }
    /* Row r = hh * n_window + t: query head g * group + hh at window position t. */
    for (int g = 0; g < n_kv; g++)
        for (int hh = 0; hh < group; hh++)
            for (int t = 0; t < n_window; t++)
                memcpy(w.qg + (((size_t)g * group + hh) * n_window + t) * d,
                       q_window + ((size_t)t * n_head + (size_t)g * group + hh) * d,
                       (size_t)d * sizeof(float));
    const float mul = 1.0f / sqrtf((float)d);
    const float inv_rows = 1.0f / (float)n_rows;
    const size_t rc = (size_t)n_rows * n_chunks; /* chunk stats per head */
    for (int g0 = 0; g0 < n_kv; g0 += hp) {
        const int nh = n_kv - g0 < hp ? n_kv - g0 : hp;
        const int par = (size_t)nh * n_rows * ml * d >= PARALLEL_MIN_WORK;
#pragma omp parallel if (par)
        {
            /* 1. per key chunk: logits of every row, and per row the chunk's max logit and the
             * sum of its softmax numerators exp(z - chunk max), over the keys the row may see
             * (causal inside the window: query t sits at row n_prefix + t) */
#pragma omp for schedule(dynamic, 1)
            for (int it = 0; it < nh * n_chunks; it++) {
                const int gh = it / n_chunks, c = it % n_chunks, g = g0 + gh;
                const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
                const int j0 = c * KEY_CHUNK, n_prefix = off[g + 1] - off[g];
                if (j0 >= seg->len)
                    continue;
                const int nk = seg->len - j0 < KEY_CHUNK ? seg->len - j0 : KEY_CHUNK;
                float *pg = w.p + (size_t)gh * n_rows * ml;
                kv_score_logits(po, kv->type, seg, j0, pg + j0, ml, w.qg + (size_t)g * n_rows * d,
                                (size_t)d, n_rows, nk, d, mul);
                for (int r = 0; r < n_rows; r++) {
                    float *row = pg + (size_t)r * ml + j0;
                    const int seen = n_prefix + r % n_window + 1 - j0;
                    const int valid = seen < nk ? seen : nk;
                    float *m = w.cmax + gh * rc + (size_t)r * n_chunks + c;
                    float *l = w.cfac + gh * rc + (size_t)r * n_chunks + c;
                    if (valid <= 0) {
                        *m = -INFINITY, *l = 0.0f;
                        continue;
                    }
                    *m = row_max(row, valid);
                    *l = ops->exp_sum(row, valid, *m);
                }
            }
            /* 2. per row: the softmax denominator over all chunks, then each chunk's factor
             * exp(chunk max - row max) / denominator, with the mean over rows folded in */
#pragma omp for schedule(static)
            for (int it = 0; it < nh * n_rows; it++) {
                float *m = w.cmax + (size_t)it * n_chunks, *l = w.cfac + (size_t)it * n_chunks;
                float big = -INFINITY;
                for (int c = 0; c < n_chunks; c++)
                    big = m[c] > big ? m[c] : big;
                double sum = 0.0;
                for (int c = 0; c < n_chunks; c++)
                    if (l[c] > 0.0f)
                        sum += (double)l[c] * exp((double)m[c] - big);
                for (int c = 0; c < n_chunks; c++)
                    l[c] = l[c] > 0.0f ? (float)(exp((double)m[c] - big) / sum) * inv_rows : 0.0f;
            }
            /* 3. per key chunk of the prefix: column means over the rows (the window queries
             * and the GQA group, reduced before pooling) */
#pragma omp for schedule(dynamic, 1)
            for (int it = 0; it < nh * n_chunks; it++) {
                const int gh = it / n_chunks, c = it % n_chunks, g = g0 + gh;
                const int j0 = c * KEY_CHUNK, n_prefix = off[g + 1] - off[g];
                if (j0 >= n_prefix)
                    continue;
                const int j1 = n_prefix - j0 < KEY_CHUNK ? n_prefix : j0 + KEY_CHUNK;
                float *acc = w.acc + (size_t)gh * ml;
                const float *pg = w.p + (size_t)gh * n_rows * ml;
                memset(acc + j0, 0, (size_t)(j1 - j0) * sizeof *acc);
                for (int r = 0; r < n_rows; r++) {
                    const float *row = pg + (size_t)r * ml;
                    const float f = w.cfac[gh * rc + (size_t)r * n_chunks + c];
                    for (int j = j0; j < j1; j++)
                        acc[j] += row[j] * f;
                }
            }
        }
        for (int gh = 0; gh < nh; gh++) {
            const int g = g0 + gh;
            kv_score_pool(w.acc + (size_t)gh * ml, off[g + 1] - off[g], pool, kernel, out + off[g]);
        }
    }
    free(w.p), free(w.qg), free(w.cmax), free(w.cfac), free(w.acc);
    return 0;
}

/* Squared L2 norm of one stored key row, read in place (an int8 row's rotation keeps its norm);
 * one loop per storage type so each vectorizes. */
static double key_sq_norm(enum kv_type type, const struct kv_segment *seg, int row, int d) {
    const size_t base = (size_t)row * d;
    double sq = 0.0;
    if (type == KV_TYPE_INT8) {
        const int8_t *x = (const int8_t *)seg->k + base;
        for (int i = 0; i < d; i++)
            sq += (double)x[i] * x[i];
        return sq * seg->k_scale[row] * seg->k_scale[row];
    }
    if (type == KV_TYPE_F16) {
        const uint16_t *x = (const uint16_t *)seg->k + base;
        for (int i = 0; i < d; i++) {
            const double v = quant_f16_to_f32(x[i]);
            sq += v * v;
        }
    } else {
        const float *x = (const float *)seg->k + base;
        for (int i = 0; i < d; i++)
            sq += (double)x[i] * x[i];
    }
    return sq;
}

void kv_score_knorm(const struct kv_cache *kv, int layer, const int32_t *off, float *out) {
    for (int g = 0; g < kv->n_head_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        for (int j = 0; j < off[g + 1] - off[g]; j++)
            out[off[g] + j] = -(float)sqrt(key_sq_norm(kv->type, seg, j, kv->head_dim));
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
    enum { ROWS = 64 }; /* value rows converted to f32 at once, per thread */
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    const size_t w_stride = (size_t)n_head * d;
    const size_t work = (size_t)off[n_kv] * d * n_embd;
    const int n_threads = work >= PARALLEL_MIN_WORK ? omp_get_max_threads() : 1;
    /* Every W_O^h transposed to [d][n_embd], so the kernel reads contiguous output columns. */
    float *wt = malloc((size_t)n_head * d * n_embd * sizeof *wt);
    float *vbuf = malloc((size_t)n_threads * ROWS * d * sizeof *vbuf);
    if (!wt || !vbuf) {
        free(wt);
        free(vbuf);
        return err_set(e, "kv-score: out of memory for the value norms (n_embd %d)", n_embd);
    }
    const float inv_group = 1.0f / (float)group;
    int max_prefix = 0;
    for (int g = 0; g < n_kv; g++)
        max_prefix = off[g + 1] - off[g] > max_prefix ? off[g + 1] - off[g] : max_prefix;
    const int n_chunks = (max_prefix + ROWS - 1) / ROWS;
#pragma omp parallel num_threads(n_threads)
    {
#pragma omp for schedule(static)
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < d; i++)
                for (int o = 0; o < n_embd; o++)
                    wt[((size_t)h * d + i) * n_embd + o] = w_o[o * w_stride + (size_t)h * d + i];
                    /* work items: (KV head, chunk of ROWS value rows) */
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < n_kv * n_chunks; it++) {
            const int g = it / n_chunks, j0 = (it % n_chunks) * ROWS;
            const int n_prefix = off[g + 1] - off[g];
            if (j0 >= n_prefix)
                continue;
            const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
            float *vb = vbuf + (size_t)omp_get_thread_num() * ROWS * d;
            const int rows = n_prefix - j0 < ROWS ? n_prefix - j0 : ROWS;
            float *o = out + off[g] + j0;
            memset(o, 0, (size_t)rows * sizeof *o);
            for (int r = 0; r < rows; r++)
                kv_row_to_f32(kv->type, seg->v, seg->v_scale, j0 + r, d, vb + (size_t)r * d);
            for (int h = g * group; h < (g + 1) * group; h++)
                po->vnorm_l1(o, vb, rows, d, wt + (size_t)h * d * n_embd, n_embd);
            for (int r = 0; r < rows; r++)
                o[r] *= inv_group;
        }
    }
    free(wt);
    free(vbuf);
    return 0;
}
