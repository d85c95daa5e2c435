/* Expected Attention's score (kv-score.h): the attention a row should receive from the queries
 * still to come, modelled as the window's queries' Gaussian (mean and covariance) turned by the
 * RoPE rotation averaged over the next positions. The covariance never forms: k^T C k is the
 * mean of (c_t . k)^2 over the centred window queries, so the whole score is one small GEMM per
 * query head (the mean and the centred queries against the keys, press-ops' qk kernels) and a
 * vertical sum of squares (press-ops' sq_combine). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "key-rotation.h"
#include "kv-score.h"
#include "press-ops.h"

enum { KEY_BLOCK = 256 };

/* The (n_win + 1) x d rows one query head scores with: its window queries' mean then the centred
 * queries, all pre-RoPE, turned by the averaged future rotation and put into the stored keys'
 * space (the int8 cache rotates keys, key-rotation.h). */
static void head_rows(const struct simd_ops *fo, const struct kv_cache *kv, const float *q_win,
                      int n_win, int n_head, int h, const float *rope_undo,
                      const float *rope_future, int n_rot, int neox, float *rows) {
    const int d = kv->head_dim;
    float *mu = rows, *c = rows + d;
    memset(mu, 0, (size_t)d * sizeof *mu);
    for (int t = 0; t < n_win; t++) {
        float *q = c + (size_t)t * d;
        memcpy(q, q_win + ((size_t)t * n_head + h) * d, (size_t)d * sizeof *q);
        if (kv->k_rot) /* the Hadamard transform is its own inverse */
            key_rotate(q, d, kv->k_rot);
        fo->rope(q, 1, d, n_rot, rope_undo + (size_t)t * n_rot, neox);
        for (int i = 0; i < d; i++)
            mu[i] += q[i];
    }
    for (int i = 0; i < d; i++)
        mu[i] /= (float)n_win;
    for (int t = 0; t < n_win; t++) /* centred before mu itself is turned below */
        for (int i = 0; i < d; i++)
            c[(size_t)t * d + i] -= mu[i];
    for (int t = 0; t <= n_win; t++) {
        float *x = rows + (size_t)t * d;
        fo->rope(x, 1, d, n_rot, rope_future, neox);
        if (kv->k_rot)
            key_rotate(x, d, kv->k_rot);
    }
}

static float value_norm(const struct kv_cache *kv, const struct kv_segment *seg, int j,
                        float *tmp) {
    kv_row_to_f32(kv->type, seg->v, seg->v_scale, j, kv->head_dim, tmp);
    float s = 0.0f;
    for (int i = 0; i < kv->head_dim; i++)
        s += tmp[i] * tmp[i];
    return sqrtf(s);
}

int kv_score_eattn(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_win, int n_win, int n_head, const float *rope_undo,
                   const float *rope_future, int n_rot, int neox, int n_sink, float eps,
                   const int32_t *off, float *out, struct adakv_err *e) {
    const struct simd_ops *fo = ops ? ops : simd_ops_best();
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    int max_len = 1;
    for (int g = 0; g < n_kv; g++)
        max_len =
            kv_cache_seg(kv, layer, g)->len > max_len ? kv_cache_seg(kv, layer, g)->len : max_len;
    const int n_thr = omp_get_max_threads();
    float *z = malloc((size_t)n_head * max_len * sizeof *z); /* [h][j] logits, then probs */
    float *rows = malloc((size_t)n_thr * (n_win + 1) * d * sizeof *rows);
    float *s = malloc((size_t)n_thr * (n_win + 1) * KEY_BLOCK * sizeof *s);
    if (!z || !rows || !s) {
        free(z), free(rows), free(s);
        return err_set(e, "kv-score: out of memory for expected attention (%d rows)", max_len);
    }
    const float a = 1.0f / sqrtf((float)d), b = 1.0f / (2.0f * (float)d * (float)n_win);
    const double work = (double)n_head * (n_win + 1) * max_len * d;
#pragma omp parallel num_threads(n_thr) if (work >= (double)(1 << 22))
    {
        const int me = omp_get_thread_num();
        float *my_rows = rows + (size_t)me * (n_win + 1) * d;
        float *my_s = s + (size_t)me * (n_win + 1) * KEY_BLOCK;
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < n_head; h++) {
            const int g = h / group;
            const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
            const int sink = n_sink < seg->len ? n_sink : seg->len;
            float *zh = z + (size_t)h * max_len;
            head_rows(fo, kv, q_win, n_win, n_head, h, rope_undo, rope_future, n_rot, neox,
                      my_rows);
            for (int j0 = sink; j0 < seg->len; j0 += KEY_BLOCK) {
                const int nk = seg->len - j0 < KEY_BLOCK ? seg->len - j0 : KEY_BLOCK;
                kv_score_logits(po, kv->type, seg, j0, my_s, KEY_BLOCK, my_rows, (size_t)d,
                                n_win + 1, nk, d, 1.0f);
                po->sq_combine(zh + j0, my_s, KEY_BLOCK, n_win + 1, nk, a, b);
            }
            if (seg->len > sink) /* kvpress: the sinks are left out of the softmax */
                fo->softmax(zh + sink, seg->len - sink);
        }
    }
    float *tmp = rows, top = -INFINITY; /* d floats of scratch, now free */
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        const int sink = n_sink < seg->len ? n_sink : seg->len;
        float *o = out + off[g];
        for (int j = sink; j < seg->len; j++) {
            float p = 0.0f;
            for (int hh = 0; hh < group; hh++)
                p += z[(size_t)(g * group + hh) * max_len + j];
            o[j] = (p / (float)group + eps) * value_norm(kv, seg, j, tmp);
            top = o[j] > top ? o[j] : top;
        }
    }
    /* the sinks above every row of the layer (kvpress pads with the largest score + 1), so
     * Ada-KV's layer-wide selection cannot drop them either */
    for (int g = 0; g < n_kv; g++) {
        const int len = kv_cache_seg(kv, layer, g)->len, sink = n_sink < len ? n_sink : len;
        for (int j = 0; j < sink; j++)
            out[off[g] + j] = (top > -INFINITY ? top : 0.0f) + 1.0f;
    }
    free(z), free(rows), free(s);
    return 0;
}
