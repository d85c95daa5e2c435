/* Prefill attention over an int8 KV cache, AVX-512 VNNI, with the query rows in the lanes: the
 * whole online softmax (scores, masks, exp, weighted values) of up to 64 rows per pass.
 *
 * Why: the decode kernels (attn-qk-vnni.c, attn-av-vnni.c) serve a few rows; in prefill a work
 * item has 16 tokens x G heads = 48-64 rows, and there their horizontal sums (scores) and
 * per-row value passes took 23% of a 4,096-token 1B prompt and ~50% of an 8k-token
 * default-model one. With 16 rows per vector nothing is ever summed across lanes:
 *   - scores: the queries are rounded to int16 (one scale per row, as attn-qk-vnni.c) and
 *     transposed ONCE per call, so lane l of qt[p] holds the dims (2p, 2p+1) of row l; each key
 *     pair of dims is broadcast and vpdpwssd adds 16 rows' products (4 keys x 4 row vectors a
 *     pass). The transposed scores st[key][row] are what the softmax wants;
 *   - softmax: maxima, exp and sums per row are lane-wise vector operations over the keys;
 *   - values: the weights p v_scale are rounded to int16 per row (one scale per row and step of
 *     keys), paired over keys (2j, 2j+1) in the lanes, and each value pair (v_2j[i], v_2j+1[i])
 *     is broadcast: the accumulator of dim i holds 16 rows.
 * The reverted d65b709 did the scores this way but per 128-key call, re-transposing the queries
 * each time and transposing the scores back for the row-major softmax: it lost in the model's
 * 128-key steps what it gained on long runs. Here nothing is transposed per key step.
 *
 * Integer sums are exact: scores |q| <= 32767, |k| <= 128, d <= 256 (<= 2^30); values |w| <=
 * 32767, |v| <= 128, KS = 64 keys per step (< 2^29). The error against the f32 reference is the
 * int16 rounding of queries and weights (2^-16 of a row's largest), as in the decode kernels. */
#include "attn-rows-vnni.h"
/* Values of keys j0 .. j0 + 2 n_pairs as int16 pairs in ps->vp (zero past n_k and past d, up to
 * the 16 dims past d that the last block of values_block reads; not the whole VD row: at d = 64
 * that would triple the work). */
static void value_pairs(struct rows_pass *ps, const int8_t *v, int j0, int n_pairs, int n_k,
                        int d) {
    for (int jp = 0; jp < n_pairs; jp++) {
        const int j = j0 + 2 * jp;
        const bool two = j + 1 < n_k;
        int32_t *o = ps->vp + (size_t)jp * VD;
        for (int i = 0; i < d + 16; i += 16) {
            const __mmask16 m = avx512_lanes16(d - i);
            const __m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, v + (size_t)j * d + i));
            const __m512i y = _mm512_cvtepi8_epi32(
                _mm_maskz_loadu_epi8(two ? m : 0, v + (size_t)(two ? j + 1 : j) * d + i));
            _mm512_store_si512(o + i,
                               _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi32(0xffff)),
                                               _mm512_slli_epi32(y, 16)));
        }
    }
}

/* acc + w . (the int16 pair at p, broadcast to every lane), the broadcast in the multiply's
 * memory operand ({1to16}). From intrinsics gcc keeps a broadcast that several multiplies use in
 * a register: one more vector operation beside every ng multiplies (perf/bench-attn 4096 8 64 on
 * Zen 5: 1.74 -> 1.65 ms). The scores' key pairs stay broadcast once (scores4): folded there
 * too, the loads of the pairs and the query vectors outnumbered the multiplies and the gain went.
 */
static ALWAYS_INLINE __m512i dpwssd_bcast(__m512i acc, __m512i w, const int32_t *p) {
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*p));
    return acc;
}

/* acc[dims i0 .. i0 + DB] = corr acc + sw * sum over the step's key pairs of w16 * v16 (the
 * online softmax's rescale of the old sums rides on the epilogue, not a pass of its own). */
static ALWAYS_INLINE void values_block(struct rows_pass *ps, const __m512 *sw, const __m512 *corr,
                                       int i0, int n_pairs, const int ng, const int DB) {
    __m512i a[16];
    for (int x = 0; x < DB * ng; x++)
        a[x] = _mm512_setzero_si512();
    for (int jp = 0; jp < n_pairs; jp++) {
        __m512i wv[RG];
        for (int g = 0; g < ng; g++)
            wv[g] = ps->wp[jp * ng + g];
        const int32_t *vr = ps->vp + (size_t)jp * VD + i0;
        for (int di = 0; di < DB; di++)
            for (int g = 0; g < ng; g++)
                a[di * ng + g] = dpwssd_bcast(a[di * ng + g], wv[g], vr + di);
    }
    for (int di = 0; di < DB; di++)
        for (int g = 0; g < ng; g++) {
            __m512 *o = &ps->acc[(i0 + di) * ng + g];
            *o = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[di * ng + g]), sw[g],
                                 _mm512_mul_ps(*o, corr[g]));
        }
}

/* One step: keys j0 .. j0 + kt folded into the pass's softmax state and accumulators. */
static ALWAYS_INLINE void pass_step(struct rows_pass *ps, const int8_t *k, const float *k_scale,
                                    const int8_t *v, const float *v_scale, const int32_t *kpos,
                                    int j0, int kt, int n_k, int d, int32_t window, int32_t qmin,
                                    int32_t qmax, const int ng) {
    const int kt4 = (kt + 3) & ~3, n_pairs = (kt + 1) / 2;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mt[RG];
    for (int g = 0; g < ng; g++)
        mt[g] = ninf;
    for (int jt = 0; jt < kt4; jt += 4)
        scores4(ps, mt, jt, k, k_scale, j0 + jt, n_k, d, ng);
    bool masked = false; /* then mt is recomputed over what the rows may see */
    for (int jt = 0; jt < kt4; jt++) {
        float *sj = ps->st + (size_t)jt * 64;
        if (jt >= kt) { /* the zero rows past the step */
            for (int g = 0; g < ng; g++)
                _mm512_store_ps(sj + 16 * g, ninf);
            masked = true;
            continue;
        }
        const int32_t kp = kpos[j0 + jt];
        if (kp <= qmin && !(window && kp <= qmax - window))
            continue; /* every row sees this key */
        const __m512i kv = _mm512_set1_epi32(kp);
        for (int g = 0; g < ng; g++) {
            __mmask16 out = _mm512_cmpgt_epi32_mask(kv, ps->qp[g]);
            if (window)
                out |= _mm512_cmple_epi32_mask(
                    kv, _mm512_sub_epi32(ps->qp[g], _mm512_set1_epi32(window)));
            _mm512_mask_store_ps(sj + 16 * g, out, ninf);
            masked |= out != 0;
        }
    }
    __m512 shift[RG], corr[RG], amax[RG], lsum[RG];
    for (int g = 0; g < ng; g++) {
        if (masked) {
            mt[g] = ninf;
            for (int jt = 0; jt < kt4; jt++)
                mt[g] = _mm512_max_ps(mt[g], _mm512_load_ps(ps->st + (size_t)jt * 64 + 16 * g));
        }
        const __m512 m_new = _mm512_max_ps(ps->m[g], mt[g]);
        /* a row that has seen no key yet keeps shift 0: exp(-inf - 0) = 0, never inf - inf */
        shift[g] = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ), m_new,
                                        _mm512_setzero_ps());
        corr[g] = exp_nonpos(_mm512_sub_ps(ps->m[g], shift[g]));
        ps->m[g] = m_new;
        amax[g] = lsum[g] = _mm512_setzero_ps();
    }
    for (int jt = 0; jt < kt4; jt++) {
        const __m512 vs = _mm512_set1_ps(jt < kt ? v_scale[j0 + jt] : 0.0f);
        for (int g = 0; g < ng; g++) {
            float *s = ps->st + (size_t)jt * 64 + 16 * g;
            const __m512 p = exp_nonpos(_mm512_sub_ps(_mm512_load_ps(s), shift[g]));
            lsum[g] = _mm512_add_ps(lsum[g], p);
            const __m512 w = _mm512_mul_ps(p, vs); /* >= 0 */
            amax[g] = _mm512_max_ps(amax[g], w);
            _mm512_store_ps(s, w);
        }
    }
    __m512 sw[RG];
    for (int g = 0; g < ng; g++) {
        ps->l[g] = _mm512_fmadd_ps(ps->l[g], corr[g], lsum[g]);
        const __mmask16 some = _mm512_cmp_ps_mask(amax[g], _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 inv = _mm512_maskz_div_ps(some, _mm512_set1_ps(32767.0f), amax[g]);
        sw[g] = _mm512_mul_ps(amax[g], _mm512_set1_ps(1.0f / 32767.0f));
        for (int jp = 0; jp < n_pairs; jp++) {
            const __m512i lo = _mm512_cvtps_epi32(
                _mm512_mul_ps(_mm512_load_ps(ps->st + (size_t)(2 * jp) * 64 + 16 * g), inv));
            const __m512i hi = _mm512_cvtps_epi32(
                _mm512_mul_ps(_mm512_load_ps(ps->st + (size_t)(2 * jp + 1) * 64 + 16 * g), inv));
            ps->wp[jp * ng + g] =
                _mm512_mask_blend_epi16(0xaaaaaaaa, lo, _mm512_slli_epi32(hi, 16));
        }
    }
    value_pairs(ps, v, j0, n_pairs, n_k, d);
    const int DB = ng == 1 ? 16 : ng == 2 ? 8 : ng == 3 ? 5 : 4; /* DB * ng int32 sums <= 16 */
    for (int i0 = 0; i0 < d; i0 += DB) {
        if (ng == 1)
            values_block(ps, sw, corr, i0, n_pairs, 1, 16);
        else if (ng == 2)
            values_block(ps, sw, corr, i0, n_pairs, 2, 8);
        else if (ng == 3)
            values_block(ps, sw, corr, i0, n_pairs, 3, 5);
        else
            values_block(ps, sw, corr, i0, n_pairs, 4, 4);
    }
}

WITHOUT_TREE_PRE static void pass_run(struct rows_pass *ps, const int8_t *k, const float *k_scale,
                                      const int8_t *v, const float *v_scale, const int32_t *kpos,
                                      int n_k, int d, int32_t window, int32_t qmin, int32_t qmax,
                                      int ng) {
    for (int j0 = 0; j0 < n_k; j0 += KS) {
        const int kt = n_k - j0 < KS ? n_k - j0 : KS;
        if (ng == 1)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 1);
        else if (ng == 2)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 2);
        else if (ng == 3)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 3);
        else
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 4);
    }
}

void attn_rows_i8__avx512vnni(float *out, float *lse, const float *q, int n_q, const int32_t *qpos,
                              const int8_t *k, const float *k_scale, const int8_t *v,
                              const float *v_scale, const int32_t *kpos, int n_k, int d, float mul,
                              int32_t window) {
    static _Thread_local struct rows_pass ps __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_q; r0 += RG * 16) {
        const int nr = n_q - r0 < RG * 16 ? n_q - r0 : RG * 16, ng = (nr + 15) / 16;
        int32_t qmin = qpos[r0], qmax = qpos[r0];
        for (int r = 1; r < nr; r++) {
            qmin = qpos[r0 + r] < qmin ? qpos[r0 + r] : qmin;
            qmax = qpos[r0 + r] > qmax ? qpos[r0 + r] : qmax;
        }
        pass_begin(&ps, q + (size_t)r0 * d, qpos + r0, nr, d, mul, ng);
        pass_run(&ps, k, k_scale, v, v_scale, kpos, n_k, d, window, qmin, qmax, ng);
        for (int g = 0; g < ng; g++) {
            /* rows that saw no key have l = 0: their output is 0, not 0/0 */
            const __mmask16 seen = _mm512_cmp_ps_mask(ps.l[g], _mm512_setzero_ps(), _CMP_GT_OQ);
            const __m512 inv = _mm512_maskz_div_ps(seen, _mm512_set1_ps(1.0f), ps.l[g]);
            _Alignas(64) float col[16];
            if (lse) { /* m + log l, -inf where no key was seen (log 0) */
                _mm512_store_ps(col, _mm512_add_ps(ps.m[g], Sleef_logf16_u10avx512f(ps.l[g])));
                for (int l = 0; l < 16 && 16 * g + l < nr; l++)
                    lse[r0 + 16 * g + l] = col[l];
            }
            for (int i = 0; i < d; i++) {
                _mm512_store_ps(col, _mm512_mul_ps(ps.acc[i * ng + g], inv));
                for (int l = 0; l < 16 && 16 * g + l < nr; l++)
                    out[(size_t)(r0 + 16 * g + l) * d + i] = col[l];
            }
        }
    }
}
