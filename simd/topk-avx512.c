/* Partial top-k, AVX-512F (contract in topk.h; must equal topk__scalar index for index).
 *
 * Vectorised: the float -> key transform, the candidate filter (compare under the digit mask,
 * compress-store in place) and the final collection (compare, compress-store of indices).
 * The 256-bin histogram stays a scalar increment per candidate: without AVX512CD conflict
 * detection a vector histogram needs gather/scatter round trips that are not faster here, and
 * after the first digit the candidate set is usually a small fraction of n. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "topk.h"

static inline __m512i keys16(__m512i u) {
    __m512i sign = _mm512_srai_epi32(u, 31); /* all ones for negative floats */
    return _mm512_xor_si512(u, _mm512_or_si512(sign, _mm512_set1_epi32((int)0x80000000u)));
}

/* Compress in a register, then store the packed prefix: vpcompressd with a memory destination
 * is microcoded and very slow on AMD Zen 4, the register form is fast everywhere. */
static inline size_t compress_store(int32_t *dst, __mmask16 m, __m512i v) {
    unsigned cnt = (unsigned)__builtin_popcount(m);
    _mm512_mask_storeu_epi32(dst, (__mmask16)((1u << cnt) - 1u), _mm512_maskz_compress_epi32(m, v));
    return cnt;
}

static void keys_and_top_digit(const float *x, size_t n, uint32_t *keys, uint32_t hist[256]) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = avx512_lanes16(n - i >= 16 ? 16 : (int)(n - i));
        _mm512_mask_storeu_epi32(keys + i, m, keys16(_mm512_maskz_loadu_epi32(m, x + i)));
    }
    /* A separate pass: reading lanes back right after the vector store defeats store forwarding.
     * Four sub-histograms: scores of one layer share their sign and most exponent bits, so one
     * table would serialise on the same counter. */
    uint32_t sub[4][256] = {{0}};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        sub[0][keys[i] >> 24]++;
        sub[1][keys[i + 1] >> 24]++;
        sub[2][keys[i + 2] >> 24]++;
        sub[3][keys[i + 3] >> 24]++;
    }
    for (; i < n; i++)
        sub[0][keys[i] >> 24]++;
    for (int d = 0; d < 256; d++)
        hist[d] = sub[0][d] + sub[1][d] + sub[2][d] + sub[3][d];
}

static size_t filter_and_count(uint32_t *keys, size_t m, uint32_t mask, uint32_t prefix,
                               unsigned shift, uint32_t hist[256]) {
    const __m512i vmask = _mm512_set1_epi32((int)mask), vprefix = _mm512_set1_epi32((int)prefix);
    size_t kept = 0;
    for (size_t i = 0; i < m; i += 16) {
        __m512i key =
            _mm512_maskz_loadu_epi32(avx512_lanes16(m - i >= 16 ? 16 : (int)(m - i)), keys + i);
        __mmask16 hit = _mm512_mask_cmpeq_epi32_mask(
            avx512_lanes16(m - i >= 16 ? 16 : (int)(m - i)), _mm512_and_si512(key, vmask), vprefix);
        /* kept <= i, and this vector was loaded before the store: safe in place. */
        kept += compress_store((int32_t *)keys + kept, hit, key);
    }
    memset(hist, 0, 256 * sizeof hist[0]);
    for (size_t i = 0; i < kept; i++)
        hist[(keys[i] >> shift) & 255u]++;
    return kept;
}

/* Keeps only the lowest `ties` set bits of m (lower index wins ties). */
static inline __mmask16 lowest_bits(__mmask16 m, size_t ties) {
    unsigned mm = m;
    unsigned cnt = (unsigned)__builtin_popcount(mm);
    while (cnt > ties) {
        mm &= ~(1u << (31 - __builtin_clz(mm))); /* drop the highest */
        cnt--;
    }
    return (__mmask16)mm;
}

static size_t collect(const float *x, size_t n, uint32_t t, size_t ties, int32_t *idx) {
    const __m512i vt = _mm512_set1_epi32((int)t);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t out = 0;
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = avx512_lanes16(n - i >= 16 ? 16 : (int)(n - i));
        __m512i key = keys16(_mm512_maskz_loadu_epi32(m, x + i));
        __mmask16 gt = _mm512_mask_cmpgt_epu32_mask(m, key, vt);
        __mmask16 eq = 0;
        if (ties > 0) {
            eq = lowest_bits(_mm512_mask_cmpeq_epi32_mask(m, key, vt), ties);
            ties -= (size_t)__builtin_popcount(eq);
        }
        __m512i pos = _mm512_add_epi32(lane, _mm512_set1_epi32((int)i));
        out += compress_store(idx + out, gt | eq, pos);
    }
    return out;
}

size_t topk__avx512(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx) {
    size_t kept;
    if (topk_trivial(n, k, idx, &kept))
        return kept;
    uint32_t hist[256] = {0};
    keys_and_top_digit(x, n, scratch, hist);
    size_t need = k;
    const uint32_t prefix = topk_radix_walk(scratch, n, hist, &need, filter_and_count);
    return collect(x, n, prefix, need, idx);
}
