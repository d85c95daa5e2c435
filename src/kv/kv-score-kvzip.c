/* KVzip's score (kv-score.h): the largest attention a context row receives while the model
 * repeats the context. Policy only: logits from the press GEMMs, softmax from the forward-pass
 * table, the running maximum from press-ops' col_max, all at the dispatched ISA. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kv-score.h"
#include "press-ops.h"

enum { QUERY_BLOCK = 32 };

int kv_score_kvzip(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_rep, int n_rep, int n_head, const int32_t *off, float *out,
                   struct adakv_err *e) {
    const struct simd_ops *fo = ops ? ops : simd_ops_best();
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    const size_t total = (size_t)off[n_kv];
    int max_len = 1;
    for (int g = 0; g < n_kv; g++)
        max_len =
            kv_cache_seg(kv, layer, g)->len > max_len ? kv_cache_seg(kv, layer, g)->len : max_len;
    const int n_blocks = (n_rep + QUERY_BLOCK - 1) / QUERY_BLOCK;
    const int items = n_kv * n_blocks;
    const int n_thr = omp_get_max_threads();
    const int rows = QUERY_BLOCK * group; /* a block's queries of every head of the group */
    /* per thread: its own running maxima (merged at the end, no atomics), one block of logits
     * and its queries; memory is bounded by the block, not by the reconstruction's length */
    float *acc = calloc((size_t)n_thr * (total ? total : 1), sizeof *acc);
    float *blk = malloc((size_t)n_thr * rows * max_len * sizeof *blk);
    float *qb = malloc((size_t)n_thr * rows * d * sizeof *qb);
    if (!acc || !blk || !qb) {
        free(acc), free(blk), free(qb);
        return err_set(e, "kv-score: out of memory for KVzip's %d x %d score block", rows, max_len);
    }
    const float mul = 1.0f / sqrtf((float)d);
    const size_t qstride = (size_t)n_head * d;
    const double work = (double)n_head * n_rep * max_len * d;
#pragma omp parallel num_threads(n_thr) if (work >= (double)(1 << 22))
    {
        const int me = omp_get_thread_num();
        float *mine = acc + (size_t)me * total, *s = blk + (size_t)me * rows * max_len;
        float *q = qb + (size_t)me * rows * d;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            const int b = it % n_blocks, g = it / n_blocks;
            const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
            const int n_ctx = off[g + 1] - off[g], t0 = b * QUERY_BLOCK;
            const int nq = n_rep - t0 < QUERY_BLOCK ? n_rep - t0 : QUERY_BLOCK;
            /* row r = t * group + hh: the group's heads side by side, so one GEMM reads each
             * key once for all of them (a query's heads are adjacent in q_rep) */
            for (int t = 0; t < nq; t++)
                memcpy(q + (size_t)t * group * d,
                       q_rep + (size_t)(t0 + t) * qstride + (size_t)g * group * d,
                       (size_t)group * d * sizeof *q);
            /* query t0 + t sits at row n_ctx + t0 + t and sees rows 0 .. itself */
            const int nk = n_ctx + t0 + nq;
            kv_score_logits(po, kv->type, seg, 0, s, (size_t)max_len, q, (size_t)d, nq * group, nk,
                            d, mul);
            for (int r = 0; r < nq * group; r++) {
                float *row = s + (size_t)r * max_len;
                fo->softmax(row, n_ctx + t0 + r / group + 1);
                po->col_max(mine + off[g], row, n_ctx);
            }
        }
    }
    memcpy(out, acc, total * sizeof *out);
    for (int t = 1; t < n_thr; t++)
        po->col_max(out, acc + (size_t)t * total, (int)total);
    free(acc), free(blk), free(qb);
    return 0;
}
