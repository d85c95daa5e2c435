/* KVzip's score (kv-score.h): the largest attention a context row receives while the model
 * repeats the context. Policy only: with an int8 cache and a table that has the fused kernel
 * (press-ops' attn_colmax_i8), each block of queries goes through it; else logits from the press
 * GEMMs, softmax from the forward-pass table, the running maximum from press-ops' col_max. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kv-score.h"
#include "press-ops.h"

/* Query tokens per work item: a block of them x the group's heads are the rows of one GEMM (or
 * of the fused kernel, whose passes take 64 rows: 64 / group tokens fill them). */
enum { QUERY_BLOCK = 32, FUSED_ROWS = 64 };

int kv_score_kvzip(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_rep, int n_rep, int n_head, const int32_t *off, float *out,
                   struct adakv_err *e) {
    const struct simd_ops *fo = ops ? ops : simd_ops_best();
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    const bool fused = po->attn_colmax_i8 && kv->type == KV_TYPE_INT8 && d <= ATTN_ROWS_DMAX;
    const int block = fused ? (group < FUSED_ROWS ? FUSED_ROWS / group : 1) : QUERY_BLOCK;
    const size_t total = (size_t)off[n_kv];
    int max_len = 1;
    for (int g = 0; g < n_kv; g++)
        max_len =
            kv_cache_seg(kv, layer, g)->len > max_len ? kv_cache_seg(kv, layer, g)->len : max_len;
    const int n_blocks = (n_rep + block - 1) / block;
    const int items = n_kv * n_blocks;
    const int n_thr = omp_get_max_threads();
    const int rows = block * group; /* a block's queries of every head of the group */
    /* per thread: its own running maxima (merged at the end, no atomics), one block of logits
     * (f32 path) or positions (fused) and its queries; memory is bounded by the block, not by
     * the reconstruction's length */
    const size_t blk_floats = fused ? (size_t)rows : (size_t)rows * max_len;
    float *acc = calloc((size_t)n_thr * (total ? total : 1), sizeof *acc);
    float *blk = malloc((size_t)n_thr * blk_floats * sizeof *blk);
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
        float *mine = acc + (size_t)me * total, *s = blk + (size_t)me * blk_floats;
        float *q = qb + (size_t)me * rows * d;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            const int b = it % n_blocks, g = it / n_blocks;
            const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
            const int n_ctx = off[g + 1] - off[g], t0 = b * block;
            const int nq = n_rep - t0 < block ? n_rep - t0 : block;
            /* row r = t * group + hh: the group's heads side by side, so one GEMM reads each
             * key once for all of them (a query's heads are adjacent in q_rep) */
            for (int t = 0; t < nq; t++)
                memcpy(q + (size_t)t * group * d,
                       q_rep + (size_t)(t0 + t) * qstride + (size_t)g * group * d,
                       (size_t)group * d * sizeof *q);
            /* query t0 + t sits at row n_ctx + t0 + t and sees rows 0 .. itself */
            const int nk = n_ctx + t0 + nq;
            if (fused) {
                int32_t *qpos = (int32_t *)s;
                for (int r = 0; r < nq * group; r++)
                    qpos[r] = seg->pos[n_ctx + t0 + r / group];
                po->attn_colmax_i8(mine + off[g], n_ctx, q, nq * group, qpos,
                                   (const int8_t *)seg->k, seg->k_scale, seg->pos, nk, d, mul);
                continue;
            }
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
