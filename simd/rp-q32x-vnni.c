/* AVX-512 VNNI decode and prompt kernels over the repacked tiles of the three 32-element block
 * types rp-q32-vnni.c leaves to AVX2: Q4_0, Q5_0 and Q5_1 (tile layouts: quant-repack.c). They
 * read the AVX2 group's activation packing (rp-q32-avx2.c, "the packed activation row": q[nb *
 * 32], f32 d[nb], then per block the exact int32 offset * sum(q) for Q4_0/Q5_0 or the f32 Q8_1
 * minimum term s for Q5_1), which stays the table's pack_act, so the integer terms and the float
 * folding are the AVX2 kernels' (vec_dot's, llama.cpp's): acc += d_w d_a (dot - offset sum(a))
 * [+ m_w s_a] per block.
 *
 * Why: on a VNNI machine these types ran the AVX2 tile kernels, vpmaddubsw + vpaddsw + vpmaddwd
 * on 8 rows per register; here a step (4 bytes of each of the 16 rows) is one zmm and one
 * vpdpbusd per token and nibble half, with no saturation bound to respect (int32 sums: a block
 * dot is at most 32 * 31 * 127).
 *
 * Fifth bits (Q5_0, Q5_1): a row's qh word has bit e = bit 4 of element e. For step s, element
 * 4 s + j (low nibbles) is bit 4 (s & 1) + j of qh byte s / 2, element 16 + 4 s + j (high) the
 * same bit of byte 2 + s / 2: vpshufb copies that byte into the lane's 4 bytes, vptestmb picks
 * bit 4 (s & 1) + j in byte j, and a masked vpor sets 0x10 there. */
#include <immintrin.h>
#include <string.h>

#include "avx512-lanes.h"
#include "quant.h"
#include "rp-glue.h"
#include "rp-q32.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    NT = 4,              /* tokens per pass of gemm_rp over a tile */
    PF_DIST_OTHER = 8192 /* prefetch bytes off Intel: rp_prefetch_distance (rp-glue.h) */
};

static ALWAYS_INLINE __m512i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* 0x10 in the bytes of w whose element has its fifth bit set (see the top). */
static ALWAYS_INLINE __m512i or_fifth(__m512i w, __m512i qh, int byte, int odd) {
    const __m512i idx = _mm512_add_epi8(_mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0),
                                        _mm512_set1_epi8((char)byte));
    const __m512i sel = _mm512_set1_epi32(odd ? (int32_t)0x80402010 : 0x08040201);
    const __mmask64 set = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, idx), sel);
    return _mm512_mask_or_epi32(w, 0xffff, w, _mm512_maskz_mov_epi8(set, _mm512_set1_epi8(0x10)));
}

static ALWAYS_INLINE void prefetch_line(const void *p) {
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
}

/* The 16 rows of one tile against nt tokens (a[t]: the token's packed row): out[t] per row lane,
 * the tile's blocks folded in order as gemv_kind (rp-q32-avx2.c) folds them; prefetching
 * `prefetch` bytes ahead (decode), or not (0). */
static ALWAYS_INLINE void tile_dot(enum kind k, const uint8_t *tile, int64_t nb,
                                   const struct act_row *a, int nt, size_t prefetch, __m512 *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const size_t chunk = R * block_bytes(k);
    for (int t = 0; t < nt; t++)
        out[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * chunk;
        if (prefetch)
            for (size_t o = 0; o < chunk; o += 64)
                prefetch_line(tb + prefetch + o);
        const __m512i qh =
            is_q5(k) ? _mm512_loadu_si512((const void *)(tb + off_qh(k))) : _mm512_setzero_si512();
        __m512i lo[NT], hi[NT];
        for (int t = 0; t < nt; t++)
            lo[t] = hi[t] = _mm512_setzero_si512();
        for (int s = 0; s < 4; s++) {
            const __m512i z = _mm512_loadu_si512((const void *)(tb + off_qs(k) + 64 * s));
            __m512i wl = _mm512_and_si512(z, m4);
            __m512i wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            if (is_q5(k)) {
                wl = or_fifth(wl, qh, s >> 1, s & 1);
                wh = or_fifth(wh, qh, 2 + (s >> 1), s & 1);
            }
            for (int t = 0; t < nt; t++) {
                const int8_t *q = a[t].q + QK * b + 4 * s;
                lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast4(q));
                hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast4(q + 16));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)tb));
        const __m512 mw = k == K_Q5_1
                              ? _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(tb + 2 * R)))
                              : _mm512_setzero_ps();
        for (int t = 0; t < nt; t++) {
            __m512i dot = _mm512_add_epi32(lo[t], hi[t]);
            if (k != K_Q5_1)
                dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(a[t].o[b]));
            out[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a[t].d[b])),
                                     _mm512_cvtepi32_ps(dot), out[t]);
            if (k == K_Q5_1)
                out[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a[t].s[b]), out[t]);
        }
    }
}

static ALWAYS_INLINE void store_rows(float *y, __m512 v, int64_t count) {
    _mm512_mask_storeu_ps(y, avx512_lanes16(count < R ? (int)count : R), v);
}

static ALWAYS_INLINE void gemv_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                                    int64_t n_rows, const void *restrict act, float *restrict y) {
    const int64_t nb = n / QK;
    const struct act_row a = act_view(act, nb);
    const size_t ahead = rp_prefetch_distance(PF_DIST_OTHER);
    for (int64_t r = 0; r < n_rows; r += R) {
        __m512 out[1];
        tile_dot(k, (const uint8_t *)w + (size_t)r * w_stride, nb, &a, 1, ahead, out);
        store_rows(y + r, out[0], n_rows - r);
    }
}

/* Tokens t0 .. t0 + nt over every tile of the rows (a few, from matmul's row blocks: they stay
 * in cache while the token groups pass). */
static ALWAYS_INLINE void gemm_group(enum kind k, int64_t n, const uint8_t *w, size_t w_stride,
                                     int64_t n_rows, const uint8_t *act, size_t act_stride,
                                     int64_t t0, int nt, float *y, size_t y_stride) {
    const int64_t nb = n / QK;
    struct act_row a[NT];
    for (int t = 0; t < nt; t++)
        a[t] = act_view(act + (size_t)(t0 + t) * act_stride, nb);
    for (int64_t r = 0; r < n_rows; r += R) {
        __m512 out[NT];
        tile_dot(k, w + (size_t)r * w_stride, nb, a, nt, 0, out);
        for (int t = 0; t < nt; t++)
            store_rows(y + (size_t)(t0 + t) * y_stride + r, out[t], n_rows - r);
    }
}

static ALWAYS_INLINE void gemm_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                                    int64_t n_rows, const void *restrict act, size_t act_stride,
                                    int64_t n_tok, float *restrict y, size_t y_stride) {
#define PASS(t, nt) gemm_group(k, n, w, w_stride, n_rows, act, act_stride, (t), nt, y, y_stride)
    RP_TOKEN_PASSES(n_tok, PASS);
#undef PASS
}

RP_Q32_KERNELS(q4_0, K_Q4_0)
RP_Q32_KERNELS(q5_0, K_Q5_0)
RP_Q32_KERNELS(q5_1, K_Q5_1)

/* pack_act and rp_tile stay the AVX2 group's (see the top). */
void quant_fill_rp_q32x_vnni(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_0].gemv_rp = gemv_q4_0_rp;
    t[TENSOR_TYPE_Q4_0].gemm_rp = gemm_q4_0_rp;
    t[TENSOR_TYPE_Q5_0].gemv_rp = gemv_q5_0_rp;
    t[TENSOR_TYPE_Q5_0].gemm_rp = gemm_q5_0_rp;
    t[TENSOR_TYPE_Q5_1].gemv_rp = gemv_q5_1_rp;
    t[TENSOR_TYPE_Q5_1].gemm_rp = gemm_q5_1_rp;
}
