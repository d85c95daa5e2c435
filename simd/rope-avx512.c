/* RoPE, AVX-512. NORM pairs (2i, 2i+1) are rotated with one swap-adjacent permute and a
 * sign-folded sine vector; NEOX pairs (i, i + n_rot/2) are two aligned half-rows. The per-lane
 * cos/sin vectors are expanded once per call and reused for every head. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "ops.h"

#define ROPE_MAX_ROT 512 /* larger n_rot falls back to the reference (no model needs it) */

static void rope_norm(float *x, int n_head, int head_dim, int n_rot, const float *cs) {
    const int half = n_rot / 2;
    float c2[ROPE_MAX_ROT], s2[ROPE_MAX_ROT]; /* per lane: c, c and -s, +s of each pair */
    for (int i = 0; i < half; i++) {
        c2[2 * i] = c2[2 * i + 1] = cs[i];
        s2[2 * i] = -cs[half + i];
        s2[2 * i + 1] = cs[half + i];
    }
    for (int h = 0; h < n_head; h++) {
        float *r = x + (size_t)h * head_dim;
        for (int i = 0; i < n_rot; i += 16) {
            const __mmask16 m = avx512_lanes16(n_rot - i);
            const __m512 v = _mm512_maskz_loadu_ps(m, r + i);
            const __m512 sw = _mm512_permute_ps(v, 0xB1); /* (x1, x0) in each pair */
            const __m512 out = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, c2 + i),
                                               _mm512_mul_ps(sw, _mm512_maskz_loadu_ps(m, s2 + i)));
            _mm512_mask_storeu_ps(r + i, m, out);
        }
    }
}

static void rope_neox(float *x, int n_head, int head_dim, int n_rot, const float *cs) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_head; h++) {
        float *r = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i += 16) {
            const __mmask16 m = avx512_lanes16(half - i);
            const __m512 c = _mm512_maskz_loadu_ps(m, cs + i);
            const __m512 s = _mm512_maskz_loadu_ps(m, cs + half + i);
            const __m512 x0 = _mm512_maskz_loadu_ps(m, r + i);
            const __m512 x1 = _mm512_maskz_loadu_ps(m, r + half + i);
            _mm512_mask_storeu_ps(r + i, m, _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s)));
            _mm512_mask_storeu_ps(r + half + i, m, _mm512_fmadd_ps(x0, s, _mm512_mul_ps(x1, c)));
        }
    }
}

void rope__avx512(float *x, int n_head, int head_dim, int n_rot, const float *cs, int neox) {
    if (neox)
        rope_neox(x, n_head, head_dim, n_rot, cs);
    else if (n_rot <= ROPE_MAX_ROT)
        rope_norm(x, n_head, head_dim, n_rot, cs);
    else
        rope__scalar(x, n_head, head_dim, n_rot, cs, neox);
}
