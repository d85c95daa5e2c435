/* Prefill attention over an int8 KV cache, AVX2 + FMA + F16C, with the query rows in the lanes:
 * attn-rows-vnni.c's algorithm (its header says why each part is shaped so) for CPUs without
 * AVX-512, 8 rows per 256-bit vector. Contract: ops.h attn_rows_i8; reference: attn-rows-scalar.c.
 *
 * What differs from the VNNI form, and why:
 *   - vpmaddwd + vpaddd where it has vpdpwssd: the same exact int32 sums, one instruction more.
 *     Not AVX-VNNI (vpdpwssd on ymm): this table serves every AVX2 CPU, most of which lack it;
 *   - 16 ymm registers, not 32 zmm: a score tile is 4 keys x 2 row vectors and a value tile 4
 *     dims x 2 row vectors (8 int32 sums, 2 operand vectors, a broadcast and vpmaddwd's product
 *     in registers; 16 sums as there would spill). The row vectors are walked two at a time
 *     (one for an odd last) at run time rather than one body per row count: a pass has 1 to 8
 *     row vectors here, not 1 to 4;
 *   - a pass still takes 64 rows (8 vectors): a prefill work item is 16 tokens x G = 3 or 4
 *     heads, so each key and value row is read once per item;
 *   - exp without vscalefps, which AVX2 lacks: 2^n goes straight into the exponent bits, valid
 *     for n >= -126, so weights below 2^-126 of the row's running maximum become 0 (exp_nonpos);
 *   - no masked byte loads: key and value tails go through avx2_load_bytes's zeroed buffer, and
 *     the results leave through an 8 x 8 transpose and masked row stores, not lane by lane.
 *
 * Integer sums are exact, as there: scores |q| <= 32767, |k| <= 128, d <= 256 (< 2^30); values
 * |w| <= 32767, |v| <= 128, KS = 64 keys per step (< 2^29). Queries and weights are rounded to
 * int16 as the VNNI kernel rounds them (kv_round_i16 is avx512_row_to_q16's AVX2 twin), so the
 * error against the reference is the same 2^-16 of a row's largest. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "avx2-kv-row.h"
#include "avx2-lanes.h"
#include "ops.h"

enum {
    RG = 8,                   /* row vectors per pass: 64 rows */
    KS = 64,                  /* keys per online-softmax step */
    NP = ATTN_ROWS_DMAX / 2,  /* dim pairs of the longest row */
    VD = ATTN_ROWS_DMAX + 16, /* value pair row: value_pairs writes dims 16 at a time */
};

/* State of one pass of up to 64 rows, in the lanes. */
struct rows_pass {
    __m256i qt[NP * RG];     /* qt[p * ng + g] lane l: dims (2p, 2p+1) of row 8 g + l, int16 */
    __m256 qsm[RG];          /* per row: mul * its query scale */
    __m256i qp[RG];          /* per row: its position */
    __m256 m[RG], l[RG];     /* running max and sum */
    __m256 acc[VD * RG];     /* acc[i * ng + g]: dim i of the 8 rows of g, f32 */
    float st[KS * RG * 8];   /* st[j * 64 + row]: scores, then weights, of the step's keys */
    __m256i wp[KS / 2 * RG]; /* wp[jp * ng + g] lane l: int16 weights of keys 2jp, 2jp+1 */
    int32_t vp[KS / 2 * VD]; /* vp[jp * VD + i]: int16 values (v_2jp[i], v_2jp+1[i]) */
};

/* exp(x) for x <= 0 (a score minus its row's running maximum, or -inf), inline, as in
 * attn-rows-vnni.h (Sleef's out-of-line expf would cost more than its accuracy buys once the
 * weights are rounded to int16): 2^n times Cephes exp2f's degree-6 polynomial of the fraction f
 * in [-1/2, 1/2]. 2^n is built as the float whose exponent field is n + 127, so n must stay >=
 * -126: from x log2 e <= -126 on the result is 0. Those weights are below 2^-126 of the running
 * maximum's, which adds exactly 1 to the row's sum: they could not move an f32 result. -inf (a
 * masked key) gives 0, never NaN: the mask clears whatever the polynomial made of it. */
AVX2_INLINE __m256 exp_nonpos(__m256 x) {
    const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    const __m256 live = _mm256_cmp_ps(t, _mm256_set1_ps(-126.0f), _CMP_GT_OQ);
    const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_and_ps(live, _mm256_sub_ps(t, n));
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(live, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* In-register transpose of 8 rows of 8 dwords: r[i] lane c becomes r[c] lane i. */
AVX2_INLINE void transpose8(__m256i r[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + m]: in 128-bit half h, column 4h + m of rows 4i .. 4i + 3 */
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        r[m] = _mm256_permute2x128_si256(u[m], u[4 + m], 0x20);
        r[4 + m] = _mm256_permute2x128_si256(u[m], u[4 + m], 0x31);
    }
}

/* Rounds rows 0..nr of q to int16 (zero past d and past nr), transposes them into ps->qt and
 * sets the scales, positions (a padding lane takes the last row's, so it masks only keys a real
 * row masks too) and softmax state. */
static void pass_begin(struct rows_pass *ps, const float *q, const int32_t *qpos, int nr, int d,
                       float mul, int ng) {
    _Alignas(32) int16_t q16[RG * 8][ATTN_ROWS_DMAX];
    _Alignas(32) float qs[RG * 8];
    _Alignas(32) int32_t pos[RG * 8];
    const int w = (d + 15) / 16 * 16; /* int16 values per row that the transposes read */
    for (int r = 0; r < 8 * ng; r++) {
        pos[r] = qpos[r < nr ? r : nr - 1];
        if (r >= nr) {
            memset(q16[r], 0, (size_t)w * sizeof q16[r][0]);
            qs[r] = 0.0f;
            continue;
        }
        qs[r] = kv_round_i16(q16[r], q + (size_t)r * d, NULL, d, w) * mul;
    }
    for (int g = 0; g < ng; g++) {
        for (int p0 = 0; p0 < w / 2; p0 += 8) {
            __m256i b[8];
            for (int l = 0; l < 8; l++)
                b[l] = _mm256_load_si256((const __m256i *)(q16[8 * g + l] + 2 * p0));
            transpose8(b);
            for (int c = 0; c < 8; c++)
                ps->qt[(p0 + c) * ng + g] = b[c];
        }
        ps->qsm[g] = _mm256_load_ps(qs + 8 * g);
        ps->qp[g] = _mm256_load_si256((const __m256i *)(pos + 8 * g));
        ps->m[g] = _mm256_set1_ps(-INFINITY);
        ps->l[g] = _mm256_setzero_ps();
    }
    /* up to the next 8 dims: the value tiles add to them and pass_end's transposes read them */
    for (int i = 0; i < (d + 7) / 8 * 8 * ng; i++)
        ps->acc[i] = _mm256_setzero_ps();
}

/* The int32 sums of the tiles. Not __m256i: its lanes are 4 int64 to gcc, and _mm256_add_epi32
 * converts to 8 int32 and back around every add, so gcc 12 -O3 gave each sum two registers and
 * copied between them after every vpaddd (one move per multiply, some sums spilled). In the
 * lane type of the adds the sums stay in one register each (gcc and clang both take the vector
 * extension and the casts). */
typedef int32_t sum8 __attribute__((vector_size(32)));

/* acc + the int16 pair products of x and y, summed per int32 lane (vpdpwssd in two). */
AVX2_INLINE sum8 dot_add(sum8 acc, __m256i x, __m256i y) {
    return acc + (sum8)_mm256_madd_epi16(x, y);
}

/* Scores of the 4 keys of kw (scales ks) against row vectors g0 .. g0 + GB, into slots jt ..
 * jt + 4 of st, their maximum folded into mt. */
AVX2_INLINE void scores_tile(struct rows_pass *ps, __m256 *mt, int jt,
                             const int16_t (*kw)[ATTN_ROWS_DMAX], const float *ks, int n_dp, int ng,
                             int g0, const int GB) {
    sum8 a[4][2];
    for (int b = 0; b < 4; b++)
        for (int g = 0; g < GB; g++)
            a[b][g] = (sum8){0};
    for (int p = 0; p < n_dp; p++) {
        __m256i qv[2];
        for (int g = 0; g < GB; g++)
            qv[g] = _mm256_load_si256(&ps->qt[p * ng + g0 + g]);
        for (int b = 0; b < 4; b++) {
            int32_t pair;
            memcpy(&pair, kw[b] + 2 * p, sizeof pair);
            const __m256i kv = _mm256_set1_epi32(pair);
            for (int g = 0; g < GB; g++)
                a[b][g] = dot_add(a[b][g], qv[g], kv);
        }
    }
    for (int b = 0; b < 4; b++)
        for (int g = 0; g < GB; g++) {
            const __m256 sc = _mm256_mul_ps(_mm256_cvtepi32_ps((__m256i)a[b][g]),
                                            _mm256_mul_ps(ps->qsm[g0 + g], _mm256_set1_ps(ks[b])));
            mt[g0 + g] = _mm256_max_ps(mt[g0 + g], sc);
            _mm256_store_ps(ps->st + (size_t)(jt + b) * 64 + 8 * (g0 + g), sc);
        }
}

/* Scores of keys j .. j + 4 (slots jt .. jt + 4 of st) against every row; a key at or past n_k
 * reads as the zero row (its slot is masked out afterwards). The keys are widened to int16 once
 * here and serve every row vector. */
static void scores4(struct rows_pass *ps, __m256 *mt, int jt, const int8_t *k, const float *k_scale,
                    int j, int n_k, int d, int ng) {
    _Alignas(32) int16_t kw[4][ATTN_ROWS_DMAX];
    float ks[4];
    for (int b = 0; b < 4; b++) {
        const bool in = j + b < n_k;
        for (int i = 0; i < d; i += 16)
            _mm256_store_si256((__m256i *)(kw[b] + i),
                               _mm256_cvtepi8_epi16(avx2_load_bytes(
                                   k + (size_t)(in ? j + b : 0) * d + i, in ? d - i : 0)));
        ks[b] = in ? k_scale[j + b] : 0.0f;
    }
    const int n_dp = (d + 1) / 2;
    int g0 = 0;
    for (; g0 + 2 <= ng; g0 += 2)
        scores_tile(ps, mt, jt, (const int16_t(*)[ATTN_ROWS_DMAX])kw, ks, n_dp, ng, g0, 2);
    if (g0 < ng)
        scores_tile(ps, mt, jt, (const int16_t(*)[ATTN_ROWS_DMAX])kw, ks, n_dp, ng, g0, 1);
}

/* Values of keys j0 .. j0 + 2 n_pairs as int16 pairs in ps->vp, zero past n_k and past d up to
 * the next 16 dims (the value tiles read up to the next 8; not the whole VD row: at d = 64 that
 * would triple the work). Interleaving the bytes of the two rows before sign-extending puts
 * both rows' value of a dim in one int32 lane, the operand order vpmaddwd wants. */
static void value_pairs(struct rows_pass *ps, const int8_t *v, int j0, int n_pairs, int n_k,
                        int d) {
    for (int jp = 0; jp < n_pairs; jp++) {
        const int j = j0 + 2 * jp;
        const bool two = j + 1 < n_k;
        int32_t *o = ps->vp + (size_t)jp * VD;
        for (int i = 0; i < d; i += 16) {
            const __m128i x = avx2_load_bytes(v + (size_t)j * d + i, d - i);
            const __m128i y =
                two ? avx2_load_bytes(v + (size_t)(j + 1) * d + i, d - i) : _mm_setzero_si128();
            _mm256_store_si256((__m256i *)(o + i), _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x, y)));
            _mm256_store_si256((__m256i *)(o + i + 8),
                               _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(x, y)));
        }
    }
}

/* acc[dims i0 .. i0 + DB] of row vectors g0 .. g0 + GB = corr acc + sw * sum over the step's key
 * pairs of w16 * v16 (the online softmax's rescale of the old sums rides on the epilogue, not a
 * pass of its own). DB * GB = 8 sums. */
AVX2_INLINE void values_tile(struct rows_pass *ps, const __m256 *sw, const __m256 *corr, int g0,
                             int i0, int n_pairs, int ng, const int GB, const int DB) {
    sum8 a[8];
    for (int x = 0; x < DB * GB; x++)
        a[x] = (sum8){0};
    for (int jp = 0; jp < n_pairs; jp++) {
        __m256i wv[2];
        for (int g = 0; g < GB; g++)
            wv[g] = _mm256_load_si256(&ps->wp[jp * ng + g0 + g]);
        const int32_t *vr = ps->vp + (size_t)jp * VD + i0;
        for (int di = 0; di < DB; di++) {
            const __m256i b = _mm256_set1_epi32(vr[di]);
            for (int g = 0; g < GB; g++)
                a[di * GB + g] = dot_add(a[di * GB + g], wv[g], b);
        }
    }
    for (int di = 0; di < DB; di++)
        for (int g = 0; g < GB; g++) {
            __m256 *o = &ps->acc[(i0 + di) * ng + g0 + g];
            *o = _mm256_fmadd_ps(_mm256_cvtepi32_ps((__m256i)a[di * GB + g]), sw[g0 + g],
                                 _mm256_mul_ps(*o, corr[g0 + g]));
        }
}

/* One step: keys j0 .. j0 + kt folded into the pass's softmax state and accumulators. */
static void pass_step(struct rows_pass *ps, const int8_t *k, const float *k_scale, const int8_t *v,
                      const float *v_scale, const int32_t *kpos, int j0, int kt, int n_k, int d,
                      int32_t window, int32_t qmin, int32_t qmax, int ng) {
    const int kt4 = (kt + 3) & ~3, n_pairs = (kt + 1) / 2;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mt[RG];
    for (int g = 0; g < ng; g++)
        mt[g] = ninf;
    for (int jt = 0; jt < kt4; jt += 4)
        scores4(ps, mt, jt, k, k_scale, j0 + jt, n_k, d, ng);
    bool masked = false; /* then mt is recomputed over what the rows may see */
    for (int jt = 0; jt < kt4; jt++) {
        float *sj = ps->st + (size_t)jt * 64;
        if (jt >= kt) { /* the zero rows past the step */
            for (int g = 0; g < ng; g++)
                _mm256_store_ps(sj + 8 * g, ninf);
            masked = true;
            continue;
        }
        const int32_t kp = kpos[j0 + jt];
        if (kp <= qmin && !(window && kp <= qmax - window))
            continue; /* every row sees this key */
        const __m256i kv = _mm256_set1_epi32(kp);
        for (int g = 0; g < ng; g++) {
            __m256i out = _mm256_cmpgt_epi32(kv, ps->qp[g]);
            if (window) /* kp <= qp - window, i.e. qp - (window - 1) > kp */
                out = _mm256_or_si256(
                    out, _mm256_cmpgt_epi32(
                             _mm256_sub_epi32(ps->qp[g], _mm256_set1_epi32(window - 1)), kv));
            _mm256_store_ps(sj + 8 * g, _mm256_blendv_ps(_mm256_load_ps(sj + 8 * g), ninf,
                                                         _mm256_castsi256_ps(out)));
            masked |= !_mm256_testz_si256(out, out);
        }
    }
    __m256 shift[RG], corr[RG], amax[RG], lsum[RG];
    for (int g = 0; g < ng; g++) {
        if (masked) {
            mt[g] = ninf;
            for (int jt = 0; jt < kt4; jt++)
                mt[g] = _mm256_max_ps(mt[g], _mm256_load_ps(ps->st + (size_t)jt * 64 + 8 * g));
        }
        const __m256 m_new = _mm256_max_ps(ps->m[g], mt[g]);
        /* a row that has seen no key yet keeps shift 0: exp(-inf - 0) = 0, never inf - inf */
        shift[g] =
            _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, ninf, _CMP_EQ_OQ));
        corr[g] = exp_nonpos(_mm256_sub_ps(ps->m[g], shift[g]));
        ps->m[g] = m_new;
        amax[g] = lsum[g] = _mm256_setzero_ps();
    }
    for (int jt = 0; jt < kt4; jt++) {
        const __m256 vs = _mm256_set1_ps(jt < kt ? v_scale[j0 + jt] : 0.0f);
        for (int g = 0; g < ng; g++) {
            float *s = ps->st + (size_t)jt * 64 + 8 * g;
            const __m256 p = exp_nonpos(_mm256_sub_ps(_mm256_load_ps(s), shift[g]));
            lsum[g] = _mm256_add_ps(lsum[g], p);
            const __m256 w = _mm256_mul_ps(p, vs); /* >= 0 */
            amax[g] = _mm256_max_ps(amax[g], w);
            _mm256_store_ps(s, w);
        }
    }
    __m256 sw[RG];
    for (int g = 0; g < ng; g++) {
        ps->l[g] = _mm256_fmadd_ps(ps->l[g], corr[g], lsum[g]);
        /* a row with no weight this step: inv 0, not 32767 / 0 */
        const __m256 some = _mm256_cmp_ps(amax[g], _mm256_setzero_ps(), _CMP_GT_OQ);
        const __m256 inv = _mm256_and_ps(some, _mm256_div_ps(_mm256_set1_ps(32767.0f), amax[g]));
        sw[g] = _mm256_mul_ps(amax[g], _mm256_set1_ps(1.0f / 32767.0f));
        for (int jp = 0; jp < n_pairs; jp++) {
            const __m256i lo = _mm256_cvtps_epi32(
                _mm256_mul_ps(_mm256_load_ps(ps->st + (size_t)(2 * jp) * 64 + 8 * g), inv));
            const __m256i hi = _mm256_cvtps_epi32(
                _mm256_mul_ps(_mm256_load_ps(ps->st + (size_t)(2 * jp + 1) * 64 + 8 * g), inv));
            /* both in [0, 32767]: lo's high half is 0, so the word blend pairs them */
            ps->wp[jp * ng + g] = _mm256_blend_epi16(lo, _mm256_slli_epi32(hi, 16), 0xaa);
        }
    }
    value_pairs(ps, v, j0, n_pairs, n_k, d);
    int g0 = 0;
    for (; g0 + 2 <= ng; g0 += 2)
        for (int i0 = 0; i0 < d; i0 += 4)
            values_tile(ps, sw, corr, g0, i0, n_pairs, ng, 2, 4);
    if (g0 < ng)
        for (int i0 = 0; i0 < d; i0 += 8)
            values_tile(ps, sw, corr, g0, i0, n_pairs, ng, 1, 8);
}

/* Rows r0 .. r0 + nr of out (and lse) from the pass's state: acc / l, 8 dims of 8 rows at a time
 * turned back into rows. */
static void pass_end(const struct rows_pass *ps, float *out, float *lse, int nr, int d, int ng) {
    for (int g = 0; g < ng; g++) {
        const int rows = nr - 8 * g < 8 ? nr - 8 * g : 8;
        /* rows that saw no key have l = 0: their output is 0, not 0/0 */
        const __m256 seen = _mm256_cmp_ps(ps->l[g], _mm256_setzero_ps(), _CMP_GT_OQ);
        const __m256 inv = _mm256_and_ps(seen, _mm256_div_ps(_mm256_set1_ps(1.0f), ps->l[g]));
        if (lse) { /* m + log l, -inf where no key was seen (log 0) */
            _Alignas(32) float mv[8], lv[8];
            _mm256_store_ps(mv, ps->m[g]);
            _mm256_store_ps(lv, ps->l[g]);
            for (int x = 0; x < rows; x++)
                lse[8 * g + x] = mv[x] + logf(lv[x]);
        }
        for (int i0 = 0; i0 < d; i0 += 8) {
            __m256i c[8];
            for (int x = 0; x < 8; x++)
                c[x] = _mm256_castps_si256(_mm256_mul_ps(ps->acc[(i0 + x) * ng + g], inv));
            transpose8(c);
            for (int x = 0; x < rows; x++)
                avx2_store_ps(out + (size_t)(8 * g + x) * d + i0, d - i0,
                              _mm256_castsi256_ps(c[x]));
        }
    }
}

void attn_rows_i8__avx2(float *out, float *lse, const float *q, int n_q, const int32_t *qpos,
                        const int8_t *k, const float *k_scale, const int8_t *v,
                        const float *v_scale, const int32_t *kpos, int n_k, int d, float mul,
                        int32_t window) {
    static _Thread_local struct rows_pass ps __attribute__((aligned(32)));
    for (int r0 = 0; r0 < n_q; r0 += RG * 8) {
        const int nr = n_q - r0 < RG * 8 ? n_q - r0 : RG * 8, ng = (nr + 7) / 8;
        int32_t qmin = qpos[r0], qmax = qpos[r0];
        for (int r = 1; r < nr; r++) {
            qmin = qpos[r0 + r] < qmin ? qpos[r0 + r] : qmin;
            qmax = qpos[r0 + r] > qmax ? qpos[r0 + r] : qmax;
        }
        pass_begin(&ps, q + (size_t)r0 * d, qpos + r0, nr, d, mul, ng);
        for (int j0 = 0; j0 < n_k; j0 += KS)
            pass_step(&ps, k, k_scale, v, v_scale, kpos, j0, n_k - j0 < KS ? n_k - j0 : KS, n_k, d,
                      window, qmin, qmax, ng);
        pass_end(&ps, out + (size_t)r0 * d, lse ? lse + r0 : NULL, nr, d, ng);
    }
}
