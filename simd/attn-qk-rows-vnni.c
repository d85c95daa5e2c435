/* Attention scores of many query rows at once over int8 keys, AVX-512 VNNI: the prefill shape
 * (a tile of 16 query tokens x the G heads of a KV head, up to 64 rows, against 128 keys).
 *
 * Why: attn-qk-vnni.c is shaped for decode (a few rows): each row's dot with 4 keys ends in a
 * horizontal reduction, 8 vpdpwssd among ~25 instructions, and prefill attention took 11% of a
 * 4,096-token 1B prompt and 24% of an 8k-token default-model one in that kernel. Here the rows
 * sit in the lanes instead: the queries are rounded to int16 as there (one scale per row) and
 * transposed once per call, so that lane l of qt[p] holds the pair (2p, 2p + 1) of row l; every
 * key row is widened to int16 once, and each pair of it is broadcast against the row vectors,
 * vpdpwssd adding 16 rows' products per instruction: 4 keys x 4 row vectors per pass, 16
 * multiplies for 4 loads and 4 broadcasts, no reductions. The int32 sums are the same exact
 * integers as attn-qk-vnni.c's; the f32 scaling multiplies the same three factors in another
 * order. The scores come out transposed (keys x rows) and a 16 x 16 transpose per 16 keys and 16
 * rows puts them back in s. */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "avx512-lanes.h"
#include "ops.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum { ROWS_MAX = 64, D_MAX = 128, KB = 4, KTILE = 16 };

/* In-register transpose of 16 rows of 16 dwords: r[i] lane c becomes r[c] lane i. */
static ALWAYS_INLINE void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + m]: in 128-bit lane L, column 4L + m of rows 4i .. 4i + 3 */
    __m512i u[16];
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
        const __m512i x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee);
        const __m512i y0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
        const __m512i y1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
    }
}

/* Rows r .. r + nr of q rounded to int16 (zero past d and past nr, up to 16 ng rows), scale
 * max|q| / 32767 per row in qs, and transposed: qt[p * ng + g] lane l = pair p of row 16 g + l.
 * np = pairs per row (a multiple of 16). */
static void queries_in_lanes(__m512i *qt, float *qs, const float *q, size_t q_stride, int nr, int d,
                             int np, int ng) {
    _Alignas(64) int16_t q16[ROWS_MAX * D_MAX];
    const int w = 2 * np; /* int16 values per row, zero-padded */
    for (int r = 0; r < 16 * ng; r++) {
        int16_t *o = q16 + (size_t)r * w;
        if (r >= nr) {
            memset(o, 0, (size_t)w * sizeof *o);
            qs[r] = 0.0f;
            continue;
        }
        const float *qr = q + (size_t)r * q_stride;
        __m512 mx = _mm512_setzero_ps();
        for (int i = 0; i < d; i += 16)
            mx = _mm512_max_ps(mx,
                               _mm512_abs_ps(_mm512_maskz_loadu_ps(avx512_lanes16(d - i), qr + i)));
        const float amax = _mm512_reduce_max_ps(mx);
        const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
        for (int i = 0; i < w; i += 16) /* lanes past d load as 0 and store 0 */
            _mm256_storeu_si256((void *)(o + i),
                                _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(
                                    _mm512_maskz_loadu_ps(avx512_lanes16(d - i), qr + i), inv))));
        qs[r] = amax / 32767.0f;
    }
    for (int g = 0; g < ng; g++)
        for (int p0 = 0; p0 < np; p0 += 16) {
            __m512i b[16];
            for (int l = 0; l < 16; l++)
                b[l] = _mm512_loadu_si512(q16 + (size_t)(16 * g + l) * w + 2 * p0);
            transpose16(b);
            for (int c = 0; c < 16; c++)
                qt[(size_t)(p0 + c) * ng + g] = b[c];
        }
}

/* Keys j .. j + KB of the tile (slots jt .. jt + KB of st) against all ng row vectors. A key at
 * or past n_k reads the zero row: its transposed scores are never stored. */
static ALWAYS_INLINE void keys_block(float *st, int jt, const __m512i *qt, const __m512 *qsm,
                                     const int8_t *k, const float *k_scale, int j, int n_k, int d,
                                     int np, const int ng) {
    _Alignas(64) int16_t kw[KB][D_MAX];
    float ks[KB];
    for (int b = 0; b < KB; b++) {
        const bool in = j + b < n_k;
        for (int i = 0; i < 2 * np; i += 32) {
            const __mmask32 m = in ? avx512_lanes32(d - i) : 0;
            _mm512_store_si512(kw[b] + i, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(
                                              m, k + (size_t)(in ? j + b : 0) * d + i)));
        }
        ks[b] = in ? k_scale[j + b] : 0.0f;
    }
    __m512i acc[KB][4];
    for (int b = 0; b < KB; b++)
        for (int g = 0; g < ng; g++)
            acc[b][g] = _mm512_setzero_si512();
    for (int p = 0; p < np; p++) {
        __m512i qv[4];
        for (int g = 0; g < ng; g++)
            qv[g] = _mm512_load_si512(qt + (size_t)p * ng + g);
        for (int b = 0; b < KB; b++) {
            int32_t pair;
            memcpy(&pair, kw[b] + 2 * p, sizeof pair);
            const __m512i kv = _mm512_set1_epi32(pair);
            for (int g = 0; g < ng; g++)
                acc[b][g] = _mm512_dpwssd_epi32(acc[b][g], qv[g], kv);
        }
    }
    for (int b = 0; b < KB; b++)
        for (int g = 0; g < ng; g++)
            _mm512_store_ps(st + (size_t)(jt + b) * ROWS_MAX + 16 * g,
                            _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[b][g]), qsm[g]),
                                          _mm512_set1_ps(ks[b])));
}

static ALWAYS_INLINE void rows_pass(float *s, size_t s_stride, const __m512i *qt, const float *qs,
                                    int nr, const int8_t *k, const float *k_scale, int n_k, int d,
                                    int np, float mul, const int ng) {
    __m512 qsm[4];
    for (int g = 0; g < ng; g++)
        qsm[g] = _mm512_mul_ps(_mm512_loadu_ps(qs + 16 * g), _mm512_set1_ps(mul));
    /* [key of the tile][row]; zeroed once, as a short last tile transposes slots it never
     * writes (their scores are not stored) */
    _Alignas(64) float st[KTILE * ROWS_MAX];
    memset(st, 0, sizeof st);
    for (int j0 = 0; j0 < n_k; j0 += KTILE) {
        const int kt = n_k - j0 < KTILE ? n_k - j0 : KTILE;
        for (int jt = 0; jt < kt; jt += KB)
            keys_block(st, jt, qt, qsm, k, k_scale, j0 + jt, n_k, d, np, ng);
        const __mmask16 keys = avx512_lanes16(kt);
        for (int g = 0; g < ng && 16 * g < nr; g++) {
            __m512i b[16];
            for (int l = 0; l < 16; l++) /* slots past kt hold stale or no scores: not stored */
                b[l] = _mm512_castps_si512(_mm512_load_ps(st + (size_t)l * ROWS_MAX + 16 * g));
            transpose16(b);
            for (int l = 0; l < 16 && 16 * g + l < nr; l++)
                _mm512_mask_storeu_ps(s + (size_t)(16 * g + l) * s_stride + j0, keys,
                                      _mm512_castsi512_ps(b[l]));
        }
    }
}

void attn_qk_i8_rows__avx512vnni(float *s, size_t s_stride, const float *q, size_t q_stride,
                                 int n_q, const int8_t *k, const float *k_scale, int n_k, int d,
                                 float mul) {
    const int np = d <= 64 ? 32 : 64; /* pairs per row, zero-padded: as attn-qk-vnni.c's C */
    _Alignas(64) __m512i qt[(D_MAX / 2) * 4];
    _Alignas(64) float qs[ROWS_MAX];
    for (int r0 = 0; r0 < n_q; r0 += ROWS_MAX) {
        const int nr = n_q - r0 < ROWS_MAX ? n_q - r0 : ROWS_MAX, ng = (nr + 15) / 16;
        float *sr = s + (size_t)r0 * s_stride;
        queries_in_lanes(qt, qs, q + (size_t)r0 * q_stride, q_stride, nr, d, np, ng);
        if (ng == 4)
            rows_pass(sr, s_stride, qt, qs, nr, k, k_scale, n_k, d, np, mul, 4);
        else if (ng == 3)
            rows_pass(sr, s_stride, qt, qs, nr, k, k_scale, n_k, d, np, mul, 3);
        else if (ng == 2)
            rows_pass(sr, s_stride, qt, qs, nr, k, k_scale, n_k, d, np, mul, 2);
        else
            rows_pass(sr, s_stride, qt, qs, nr, k, k_scale, n_k, d, np, mul, 1);
    }
}
