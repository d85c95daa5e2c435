/* Blocked Walsh-Hadamard transform, AVX2 (ops.h op_hadamard_fn): the AVX-512 kernel's scheme on
 * 8-value vectors (hadamard-avx512.c says why and how): spans 1-4 as lane permutes and fused
 * multiply-adds by +-1, 8 and up across vectors; the reference's bits. */
#include <immintrin.h>
#include <math.h>

#include "ops.h"

/* Lanes with bit h of their index set take -1, the others +1. */
static __m256 span_sign(int h) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i upper =
        _mm256_cmpeq_epi32(_mm256_and_si256(lane, _mm256_set1_epi32(h)), _mm256_set1_epi32(h));
    return _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_set1_ps(-1.0f),
                            _mm256_castsi256_ps(upper));
}

void hadamard__avx2(float *x, int n, int block) {
    if (block < 8 || n % 8) {
        hadamard__scalar(x, n, block);
        return;
    }
    const __m256i swap1 = _mm256_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6);
    const __m256i swap2 = _mm256_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5);
    const __m256i swap4 = _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3);
    const __m256 s1 = span_sign(1), s2 = span_sign(2), s4 = span_sign(4);
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        v = _mm256_fmadd_ps(v, s1, _mm256_permutevar8x32_ps(v, swap1));
        v = _mm256_fmadd_ps(v, s2, _mm256_permutevar8x32_ps(v, swap2));
        v = _mm256_fmadd_ps(v, s4, _mm256_permutevar8x32_ps(v, swap4));
        _mm256_storeu_ps(x + i, v);
    }
    for (int h = 8; h < block; h *= 2)
        for (int b = 0; b < n; b += 2 * h)
            for (int j = b; j < b + h; j += 8) {
                const __m256 a = _mm256_loadu_ps(x + j), c = _mm256_loadu_ps(x + j + h);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a, c));
                _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, c));
            }
    const __m256 s = _mm256_set1_ps(1.0f / sqrtf((float)block));
    for (int i = 0; i < n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
}
