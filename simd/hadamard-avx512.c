/* Blocked Walsh-Hadamard transform, AVX-512 (ops.h op_hadamard_fn): bit-identical to the
 * reference, because every butterfly is the same single rounding of a + c or a - c, in the same
 * order of spans.
 *
 * Why a kernel: the int8 cache rotates every key it stores and every query that reads it
 * (key-rotation.h); the reference's scalar butterflies took ~136 ns per 64-value head, ~3% of a
 * 4,096-token 1B prefill and ~6% of a 4-sequence batched decode step on the default model. Here
 * a 16-value vector takes the spans 1-8 in its lanes: with y the vector with lanes l and l ^ h
 * swapped, lane l becomes y + x where bit h of l is clear (x[l] + x[l + h]) and y - x where it is
 * set (x[l - h] - x[l]), one permute and one fused multiply-add by +-1 (exact) per span; spans of
 * 16 and more pair whole vectors. */
#include <immintrin.h>
#include <math.h>

#include "ops.h"

/* Lanes with bit h of their index set take -1, the others +1. */
static __m512 span_sign(int h) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 upper = _mm512_test_epi32_mask(lane, _mm512_set1_epi32(h));
    return _mm512_mask_blend_ps(upper, _mm512_set1_ps(1.0f), _mm512_set1_ps(-1.0f));
}

void hadamard__avx512(float *x, int n, int block) {
    if (block < 16 || n % 16) {
        hadamard__scalar(x, n, block);
        return;
    }
    const __m512i swap1 = _mm512_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    const __m512i swap2 = _mm512_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m512i swap4 = _mm512_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    const __m512i swap8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m512 s1 = span_sign(1), s2 = span_sign(2), s4 = span_sign(4), s8 = span_sign(8);
    for (int i = 0; i < n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        v = _mm512_fmadd_ps(v, s1, _mm512_permutexvar_ps(swap1, v));
        v = _mm512_fmadd_ps(v, s2, _mm512_permutexvar_ps(swap2, v));
        v = _mm512_fmadd_ps(v, s4, _mm512_permutexvar_ps(swap4, v));
        v = _mm512_fmadd_ps(v, s8, _mm512_permutexvar_ps(swap8, v));
        _mm512_storeu_ps(x + i, v);
    }
    for (int h = 16; h < block; h *= 2)
        for (int b = 0; b < n; b += 2 * h)
            for (int j = b; j < b + h; j += 16) {
                const __m512 a = _mm512_loadu_ps(x + j), c = _mm512_loadu_ps(x + j + h);
                _mm512_storeu_ps(x + j, _mm512_add_ps(a, c));
                _mm512_storeu_ps(x + j + h, _mm512_sub_ps(a, c));
            }
    const __m512 s = _mm512_set1_ps(1.0f / sqrtf((float)block));
    for (int i = 0; i < n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), s));
}
