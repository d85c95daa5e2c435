/* KVzip's score (kv-score.h): the largest attention a context row receives while the model
 * repeats the context, and question-aware, what the question's queries give it. Policy only:
 * with an int8 cache and a table that has the fused kernel (press-ops' attn_colmax_i8), each
 * block of reconstruction queries goes through it; else, and for the question's queries (a
 * sum, and few of them), logits from the press GEMMs and softmax from the forward-pass table. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kv-score.h"
#include "press-ops.h"

/* Query tokens per work item: a block of them x the group's heads are the rows of one GEMM (or
 * of the fused kernel, whose passes take 64 rows: 64 / group tokens fill them). */
enum { QUERY_BLOCK = 32, FUSED_ROWS = 64 };

/* acc[j] += x[j] for j < n: the question's probabilities add up. */
static void col_add(float *acc, const float *x, int n) {
    for (int j = 0; j < n; j++)
        acc[j] += x[j];
}

/* out = max(zip / sum(zip), ask / sum(ask)) over n rows (a zero sum leaves its side out; ask
 * NULL: zip / sum(zip)). */
static void combine_normalized(float *out, const float *zip, const float *ask, size_t n) {
    double sz = 0.0, sa = 0.0;
    for (size_t j = 0; j < n; j++)
        sz += zip[j], sa += ask ? ask[j] : 0.0f;
    const float iz = sz > 0.0 ? (float)(1.0 / sz) : 0.0f, ia = sa > 0.0 ? (float)(1.0 / sa) : 0.0f;
    for (size_t j = 0; j < n; j++) {
        const float a = zip[j] * iz, b = ask ? ask[j] * ia : 0.0f;
        out[j] = a > b ? a : b;
    }
}

/* Logits of a copy query of piece k (kv-rec-pieces.h) at the rows it does not see: -inf. */
static void mask_outside_piece(const struct kv_rec_pieces *rp, int32_t k, const int32_t *pos,
                               float *row, int n) {
    int32_t lo[KV_REC_RANGES], hi[KV_REC_RANGES];
    const int nr = kv_rec_ranges(rp, k, lo, hi);
    for (int j = 0, i = 0; j < n; j++) {
        while (i < nr && pos[j] >= hi[i])
            i++;
        if (i == nr || pos[j] < lo[i])
            row[j] = -INFINITY;
    }
}

/* The fused kernel for query rows of one piece (k >= 0) or of none (k < 0): the context rows
 * they see, in their ranges. */
static void colmax_piece(const struct press_ops *po, const struct kv_rec_pieces *rp, int32_t k,
                         const struct kv_segment *seg, int n_ctx, float *zip, const float *q,
                         int n_q, const int32_t *qpos, const float *lse, int nk, int d, float mul) {
    if (k < 0) {
        po->attn_colmax_i8(zip, n_ctx, q, n_q, qpos, lse, (const int8_t *)seg->k, seg->k_scale,
                           seg->pos, nk, d, mul);
        return;
    }
    int32_t lo[KV_REC_RANGES], hi[KV_REC_RANGES];
    const int nr = kv_rec_ranges(rp, k, lo, hi);
    for (int i = 0; i < nr; i++) {
        const int32_t j0 = kv_rows_below(seg->pos, n_ctx, lo[i]);
        const int32_t j1 = kv_rows_below(seg->pos, n_ctx, hi[i]);
        if (j1 > j0)
            po->attn_colmax_i8(zip + j0, j1 - j0, q, n_q, qpos, lse,
                               (const int8_t *)seg->k + (size_t)j0 * d, seg->k_scale + j0,
                               seg->pos + j0, j1 - j0, d, mul);
    }
}

int kv_score_kvzip(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_rep, const float *lse_rep, const struct kv_rec_pieces *rp,
                   int n_rep, int n_question, int n_head, const int32_t *off, float *out,
                   struct adakv_err *e) {
    const struct simd_ops *fo = ops ? ops : simd_ops_best();
    const struct press_ops *po = kv_score_press_ops(ops);
    const int d = kv->head_dim, n_kv = kv->n_head_kv, group = n_head / n_kv;
    /* in pieces, a query's log-sum-exp covers only its piece's rows: the kernel cannot find it
     * with its own first sweep, so without the forward pass's the logits are masked instead */
    const bool pieces = rp && rp->piece > 0;
    const bool fused = po->attn_colmax_i8 && kv->type == KV_TYPE_INT8 && d <= ATTN_ROWS_DMAX &&
                       (!pieces || lse_rep);
    const int block = fused ? (group < FUSED_ROWS ? FUSED_ROWS / group : 1) : QUERY_BLOCK;
    n_question = n_question < 0 ? 0 : n_question > n_rep ? n_rep : n_question;
    const int n_zip = n_rep - n_question; /* the reconstruction's queries, then the question's */
    const size_t total = (size_t)off[n_kv];
    int max_len = 1;
    for (int g = 0; g < n_kv; g++)
        max_len =
            kv_cache_seg(kv, layer, g)->len > max_len ? kv_cache_seg(kv, layer, g)->len : max_len;
    const int zip_blocks = (n_zip + block - 1) / block;
    const int ask_blocks = (n_question + QUERY_BLOCK - 1) / QUERY_BLOCK;
    const int per_head = zip_blocks + ask_blocks, items = n_kv * per_head;
    const int n_thr = omp_get_max_threads();
    const int rows = (block > QUERY_BLOCK ? block : QUERY_BLOCK) * group;
    /* per thread: its own maxima and sums (merged at the end, no atomics), one block of logits
     * (f32 path) or positions and log-sum-exps (fused) and its queries; memory is bounded by the
     * block, not by the reconstruction's length */
    const size_t per_thr = 2 * (total ? total : 1);
    const size_t blk_floats = (size_t)rows * (fused && !n_question ? 2 : max_len > 2 ? max_len : 2);
    float *acc = calloc((size_t)n_thr * per_thr, sizeof *acc);
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
        float *zip = acc + (size_t)me * per_thr, *ask = zip + total;
        float *s = blk + (size_t)me * blk_floats, *q = qb + (size_t)me * rows * d;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            const int b = it % per_head, g = it / per_head;
            const bool is_ask = b >= zip_blocks;
            const int t0 = is_ask ? n_zip + (b - zip_blocks) * QUERY_BLOCK : b * block;
            const int t_end = is_ask ? n_rep : n_zip, step = is_ask ? QUERY_BLOCK : block;
            const int nq = t_end - t0 < step ? t_end - t0 : step;
            const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
            const int n_ctx = off[g + 1] - off[g];
            /* row r = t * group + hh: the group's heads side by side, so one GEMM reads each
             * key once for all of them (a query's heads are adjacent in q_rep) */
            for (int t = 0; t < nq; t++)
                memcpy(q + (size_t)t * group * d,
                       q_rep + (size_t)(t0 + t) * qstride + (size_t)g * group * d,
                       (size_t)group * d * sizeof *q);
            /* query t0 + t sits at row n_ctx + t0 + t and sees rows 0 .. itself */
            const int nk = n_ctx + t0 + nq;
            if (fused && !is_ask) {
                int32_t *qpos = (int32_t *)s;
                float *lse = lse_rep ? s + rows : NULL; /* row r's, as q's: t * group + hh */
                for (int r = 0; r < nq * group; r++) {
                    qpos[r] = seg->pos[n_ctx + t0 + r / group];
                    if (lse)
                        lse[r] = lse_rep[(size_t)(t0 + r / group) * n_head + g * group + r % group];
                }
                /* runs of queries of one piece (or of none) */
                for (int u0 = 0, u1; u0 < nq; u0 = u1) {
                    const int32_t k = kv_rec_piece(rp, seg->pos[n_ctx + t0 + u0]);
                    for (u1 = u0 + 1; u1 < nq && kv_rec_piece(rp, seg->pos[n_ctx + t0 + u1]) == k;
                         u1++)
                        ;
                    const int r0 = u0 * group;
                    colmax_piece(po, rp, k, seg, n_ctx, zip + off[g], q + (size_t)r0 * d,
                                 (u1 - u0) * group, qpos + r0, lse ? lse + r0 : NULL, nk, d, mul);
                }
                continue;
            }
            kv_score_logits(po, kv->type, seg, 0, s, (size_t)max_len, q, (size_t)d, nq * group, nk,
                            d, mul);
            for (int r = 0; r < nq * group; r++) {
                float *row = s + (size_t)r * max_len;
                const int n_seen = n_ctx + t0 + r / group + 1;
                const int32_t k = is_ask ? -1 : kv_rec_piece(rp, seg->pos[n_seen - 1]);
                if (k >= 0)
                    mask_outside_piece(rp, k, seg->pos, row, n_seen);
                fo->softmax(row, n_seen);
                if (is_ask)
                    col_add(ask + off[g], row, n_ctx);
                else
                    po->col_max(zip + off[g], row, n_ctx);
            }
        }
    }
    float *zip = acc, *ask = acc + total;
    for (int t = 1; t < n_thr; t++) {
        po->col_max(zip, acc + (size_t)t * per_thr, (int)total);
        col_add(ask, acc + (size_t)t * per_thr + total, (int)total);
    }
    combine_normalized(out, zip, n_question ? ask : NULL, total);
    free(acc), free(blk), free(qb);
    return 0;
}
