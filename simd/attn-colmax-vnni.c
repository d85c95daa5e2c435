/* KVzip's column maxima over an int8 cache (press-ops.h attn_colmax_i8), AVX-512 VNNI, with the
 * query rows in the lanes as in the fused prefill attention (attn-rows-vnni.h).
 *
 * Why: a context row's KVzip score is the largest attention any reconstruction query gives it,
 * and a probability needs its row's softmax denominator first. The f32 path (the qk_i8 GEMM of
 * every query block against all the keys it sees, a softmax per row, col_max) was most of
 * KVzip's scoring hook, itself more than a prefill at 2k tokens. Here the queries are rounded
 * to int16 and transposed once per 64 rows, and two sweeps over the keys use vpdpwssd: the first
 * folds each row's running maximum and sum (its log-sum-exp; no values), the second rescores
 * the keys j < n_out and keeps, per key, the largest score minus its row's log-sum-exp across
 * the lanes; exp is monotonic, so one exp per key at the end. When the caller passes the rows'
 * log-sum-exps (the forward pass computed them over the same keys), the first sweep is skipped:
 * it read every key a row sees, context and reconstruction, with an exp per score, where the
 * second reads the context's keys only. The error against the reference is
 * the int16 rounding of the queries (2^-16 of a row's largest), as in attn-rows-vnni.c. */
#include "attn-rows-vnni.h"
#include "press-ops.h"

/* Masks the step's slots of st that a row may not see: keys past the step (jt >= kt) for all
 * rows, keys after a row's position for that row; true when any slot was masked. */
static ALWAYS_INLINE bool mask_step(struct rows_pass *ps, const int32_t *kpos, int j0, int kt,
                                    int kt4, int32_t qmin, const int ng) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    bool masked = false;
    for (int jt = 0; jt < kt4; jt++) {
        float *sj = ps->st + (size_t)jt * 64;
        if (jt >= kt) {
            for (int g = 0; g < ng; g++)
                _mm512_store_ps(sj + 16 * g, ninf);
            masked = true;
            continue;
        }
        const int32_t kp = kpos[j0 + jt];
        if (kp <= qmin)
            continue; /* every row sees this key */
        const __m512i kv = _mm512_set1_epi32(kp);
        for (int g = 0; g < ng; g++) {
            const __mmask16 out = _mm512_cmpgt_epi32_mask(kv, ps->qp[g]);
            _mm512_mask_store_ps(sj + 16 * g, out, ninf);
            masked |= out != 0;
        }
    }
    return masked;
}

/* First sweep: each row's log-sum-exp over the keys j < n_k it sees, into lse[g]; +inf for a
 * padding lane or a row that sees no key, so that every score minus it is -inf. */
static ALWAYS_INLINE void lse_sweep(struct rows_pass *ps, __m512 *lse, const int8_t *k,
                                    const float *k_scale, const int32_t *kpos, int n_k, int d,
                                    int32_t qmin, int nr, const int ng) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n_k; j0 += KS) {
        const int kt = n_k - j0 < KS ? n_k - j0 : KS, kt4 = (kt + 3) & ~3;
        __m512 mt[RG];
        for (int g = 0; g < ng; g++)
            mt[g] = ninf;
        for (int jt = 0; jt < kt4; jt += 4)
            scores4(ps, mt, jt, k, k_scale, j0 + jt, n_k, d, ng);
        if (mask_step(ps, kpos, j0, kt, kt4, qmin, ng))
            for (int g = 0; g < ng; g++) {
                mt[g] = ninf;
                for (int jt = 0; jt < kt4; jt++)
                    mt[g] = _mm512_max_ps(mt[g], _mm512_load_ps(ps->st + (size_t)jt * 64 + 16 * g));
            }
        for (int g = 0; g < ng; g++) {
            const __m512 m_new = _mm512_max_ps(ps->m[g], mt[g]);
            /* a row that has seen no key yet keeps shift 0: exp(-inf - 0) = 0, never inf - inf */
            const __m512 shift = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ),
                                                      m_new, _mm512_setzero_ps());
            __m512 sum = _mm512_setzero_ps();
            for (int jt = 0; jt < kt4; jt++)
                sum = _mm512_add_ps(
                    sum, exp_nonpos(_mm512_sub_ps(_mm512_load_ps(ps->st + (size_t)jt * 64 + 16 * g),
                                                  shift)));
            ps->l[g] = _mm512_fmadd_ps(ps->l[g], exp_nonpos(_mm512_sub_ps(ps->m[g], shift)), sum);
            ps->m[g] = m_new;
        }
    }
    for (int g = 0; g < ng; g++) {
        const __mmask16 live = _mm512_cmp_ps_mask(ps->l[g], _mm512_setzero_ps(), _CMP_GT_OQ) &
                               avx512_lanes16(nr - 16 * g);
        lse[g] = _mm512_mask_blend_ps(live, _mm512_set1_ps(INFINITY),
                                      _mm512_add_ps(ps->m[g], Sleef_logf16_u10avx512f(ps->l[g])));
    }
}

/* Second sweep: colmax[j] = max(colmax[j], exp(max over rows of score - lse)) for j < n_out. */
static ALWAYS_INLINE void colmax_sweep(struct rows_pass *ps, float *colmax, const __m512 *lse,
                                       const int8_t *k, const float *k_scale, const int32_t *kpos,
                                       int n_out, int d, int32_t qmin, const int ng) {
    _Alignas(64) float best[KS];
    for (int j0 = 0; j0 < n_out; j0 += KS) {
        const int kt = n_out - j0 < KS ? n_out - j0 : KS, kt4 = (kt + 3) & ~3;
        __m512 unused[RG];
        for (int jt = 0; jt < kt4; jt += 4)
            scores4(ps, unused, jt, k, k_scale, j0 + jt, n_out, d, ng);
        mask_step(ps, kpos, j0, kt, kt4, qmin, ng);
        for (int jt = 0; jt < kt; jt++) {
            __m512 x = _mm512_set1_ps(-INFINITY);
            for (int g = 0; g < ng; g++)
                x = _mm512_max_ps(
                    x, _mm512_sub_ps(_mm512_load_ps(ps->st + (size_t)jt * 64 + 16 * g), lse[g]));
            best[jt] = _mm512_reduce_max_ps(x);
        }
        for (int jt = 0; jt < kt; jt += 16) {
            const __mmask16 m = avx512_lanes16(kt - jt);
            /* <= 0 up to rounding: a score is at most its row's maximum, below its log-sum-exp */
            const __m512 p =
                exp_nonpos(_mm512_min_ps(_mm512_load_ps(best + jt), _mm512_setzero_ps()));
            float *c = colmax + j0 + jt;
            _mm512_mask_storeu_ps(c, m, _mm512_max_ps(p, _mm512_maskz_loadu_ps(m, c)));
        }
    }
}

/* The caller's log-sum-exps of the nr rows, with lse_sweep's +inf for a padding lane or a row
 * that saw no key (-inf from attn_rows_i8). */
static void lse_given(__m512 *lse, const float *rows_lse, int nr, int ng) {
    const __m512 inf = _mm512_set1_ps(INFINITY);
    for (int g = 0; g < ng; g++) {
        const __mmask16 in = avx512_lanes16(nr - 16 * g);
        const __m512 x = _mm512_maskz_loadu_ps(in, rows_lse + 16 * g);
        lse[g] = _mm512_mask_blend_ps(
            in & _mm512_cmp_ps_mask(x, _mm512_set1_ps(-INFINITY), _CMP_NEQ_UQ), inf, x);
    }
}

WITHOUT_TREE_PRE static void colmax_pass(struct rows_pass *ps, float *colmax, int n_out,
                                         const float *rows_lse, const int8_t *k,
                                         const float *k_scale, const int32_t *kpos, int n_k, int d,
                                         int32_t qmin, int nr, int ng) {
    __m512 lse[RG];
    if (rows_lse)
        lse_given(lse, rows_lse, nr, ng);
    if (ng == 1) {
        if (!rows_lse)
            lse_sweep(ps, lse, k, k_scale, kpos, n_k, d, qmin, nr, 1);
        colmax_sweep(ps, colmax, lse, k, k_scale, kpos, n_out, d, qmin, 1);
    } else if (ng == 2) {
        if (!rows_lse)
            lse_sweep(ps, lse, k, k_scale, kpos, n_k, d, qmin, nr, 2);
        colmax_sweep(ps, colmax, lse, k, k_scale, kpos, n_out, d, qmin, 2);
    } else if (ng == 3) {
        if (!rows_lse)
            lse_sweep(ps, lse, k, k_scale, kpos, n_k, d, qmin, nr, 3);
        colmax_sweep(ps, colmax, lse, k, k_scale, kpos, n_out, d, qmin, 3);
    } else {
        if (!rows_lse)
            lse_sweep(ps, lse, k, k_scale, kpos, n_k, d, qmin, nr, 4);
        colmax_sweep(ps, colmax, lse, k, k_scale, kpos, n_out, d, qmin, 4);
    }
}

void attn_colmax_i8__avx512vnni(float *colmax, int n_out, const float *q, int n_q,
                                const int32_t *qpos, const float *lse, const int8_t *k,
                                const float *k_scale, const int32_t *kpos, int n_k, int d,
                                float mul) {
    static _Thread_local struct rows_pass ps __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_q; r0 += RG * 16) {
        const int nr = n_q - r0 < RG * 16 ? n_q - r0 : RG * 16, ng = (nr + 15) / 16;
        int32_t qmin = qpos[r0];
        for (int r = 1; r < nr; r++)
            qmin = qpos[r0 + r] < qmin ? qpos[r0 + r] : qmin;
        pass_begin(&ps, q + (size_t)r0 * d, qpos + r0, nr, d, mul, ng);
        colmax_pass(&ps, colmax, n_out, lse ? lse + r0 : NULL, k, k_scale, kpos, n_k, d, qmin, nr,
                    ng);
    }
}
