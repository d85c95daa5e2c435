/* RoPE, AVX2 + FMA. The loop runs over 8-lane column blocks of the rotated dims and, inside,
 * over the heads, so each block's cos/sin vectors are built once per call and serve every head
 * (no per-call table, hence no limit on n_rot).
 *
 * NORM pairs (2i, 2i+1): the cosines and sines of four pairs are duplicated into the two lanes
 * of each pair, and one vfmaddsub gives x0 c - x1 s in even lanes and x1 c + x0 s in odd lanes
 * from the row and its pair-swapped copy. NEOX pairs (i, i + n_rot/2): two half-rows. */
#include "avx2-lanes.h"
#include "ops.h"

/* The `left` (<= 4 used) values at v, each repeated twice: (v0, v0, v1, v1, ..., v3, v3). */
AVX2_INLINE __m256 dup_pairs(const float *v, int left) {
    const __m128 c =
        left >= 4 ? _mm_loadu_ps(v) : _mm_maskload_ps(v, _mm256_castsi256_si128(avx2_lanes8(left)));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_unpacklo_ps(c, c)),
                                _mm_unpackhi_ps(c, c), 1);
}

static void rope_norm(float *x, int n_head, int head_dim, int n_rot, const float *cs) {
    const int half = n_rot / 2;
    for (int i = 0; i < n_rot; i += 8) {
        const int left = n_rot - i; /* even, as n_rot is */
        const __m256 c = dup_pairs(cs + i / 2, left / 2);
        const __m256 s = dup_pairs(cs + half + i / 2, left / 2);
        for (int h = 0; h < n_head; h++) {
            float *r = x + (size_t)h * head_dim + i;
            const __m256 v = avx2_load_ps(r, left, 0.0f);
            const __m256 sw = _mm256_permute_ps(v, 0xB1); /* (x1, x0) in each pair */
            avx2_store_ps(r, left, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(sw, s)));
        }
    }
}

static void rope_neox(float *x, int n_head, int head_dim, int n_rot, const float *cs) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i += 8) {
        const int left = half - i;
        const __m256 c = avx2_load_ps(cs + i, left, 0.0f);
        const __m256 s = avx2_load_ps(cs + half + i, left, 0.0f);
        for (int h = 0; h < n_head; h++) {
            float *r = x + (size_t)h * head_dim + i;
            const __m256 x0 = avx2_load_ps(r, left, 0.0f);
            const __m256 x1 = avx2_load_ps(r + half, left, 0.0f);
            avx2_store_ps(r, left, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
            avx2_store_ps(r + half, left, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
        }
    }
}

void rope__avx2(float *x, int n_head, int head_dim, int n_rot, const float *cs, int neox) {
    if (neox)
        rope_neox(x, n_head, head_dim, n_rot, cs);
    else
        rope_norm(x, n_head, head_dim, n_rot, cs);
}
