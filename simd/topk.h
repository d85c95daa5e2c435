/* Partial top-k selection over f32 scores (the Ada-KV budget split and the per-head pick).
 *
 * Contract, identical for every ISA (topk__scalar is the reference the others are tested
 * against, bit for bit):
 *   topk__<isa>(x, n, k, scratch, idx) writes into idx[0..k) the indices of the k largest
 *   values of x[0..n), in ascending index order, and returns k. Values are ranked by the
 *   order-preserving key of their bits (topk_key below): for ordinary floats this is numeric
 *   order, -0.0 ranks just below +0.0, +NaN above +inf and -NaN below -inf, so every input has
 *   one well-defined answer. Among equal keys the lower index wins (Ada-KV tie rule).
 *   Requires 0 <= k <= n, n < 2^31; scratch holds n uint32 (any alignment), idx holds k int32.
 *
 * Why not a sort: the layer-wide selection runs over n_head_kv * L scores per layer. A radix
 * select on the key (8-bit digits, most significant first) finds the k-th largest key T in at
 * most four histogram passes whose candidate set shrinks after each pass; one more pass
 * collects x > T and the first (k - count(x > T)) ties with x == T. Linear in n. */
#ifndef ADAKV_SIMD_TOPK_H
#define ADAKV_SIMD_TOPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef size_t (*topk_fn)(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx);

size_t topk__scalar(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx);
size_t topk__avx512(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx);
size_t topk__neon(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx);

/* The implementation for `isa` if this build compiled one, else NULL (tests loop over these). */
topk_fn topk_for_isa(int isa);

/* The best implementation for simd_isa() (simd/cpu.h), resolved per call (cheap). */
size_t topk_select(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx);

/* Monotone map from float bits to uint32: a > b as keys iff a ranks above b. */
/* The cases every topk kernel answers without looking at x: k = 0 keeps nothing, k >= n keeps
 * all in order. True with *kept set when (n, k) is one of them. */
static inline bool topk_trivial(size_t n, size_t k, int32_t *idx, size_t *kept) {
    if (k == 0) {
        *kept = 0;
        return true;
    }
    if (k >= n) {
        for (size_t i = 0; i < n; i++)
            idx[i] = (int32_t)i;
        *kept = n;
        return true;
    }
    return false;
}

static inline uint32_t topk_key(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* The radix walk shared by every ISA: given the histogram of one 8-bit digit over the current
 * candidates, pick the digit that holds the k-th largest and reduce k by the count above it. */
static inline unsigned topk_pick_digit(const uint32_t hist[256], size_t *k) {
    unsigned d = 255;
    for (;; d--) {
        if (hist[d] >= *k || d == 0)
            break;
        *k -= hist[d];
    }
    return d;
}

/* Keeps the keys[0 .. m) whose bits under mask equal prefix, in place, and counts the next
 * 8-bit digit (at shift) of the kept ones into hist (cleared first). Each ISA file has one. */
typedef size_t (*topk_filter_fn)(uint32_t *keys, size_t m, uint32_t mask, uint32_t prefix,
                                 unsigned shift, uint32_t hist[256]);

/* The rest of the radix walk, shared by every ISA: hist holds the top digit's histogram of the
 * n keys in scratch; the three lower digits are narrowed with the ISA's filter. Returns the key
 * of the k-th largest value; *need is then how many of the values with that key are winners. */
static inline __attribute__((always_inline)) uint32_t topk_radix_walk(uint32_t *scratch, size_t n,
                                                                      uint32_t hist[256],
                                                                      size_t *need,
                                                                      topk_filter_fn filter) {
    uint32_t prefix = (uint32_t)topk_pick_digit(hist, need) << 24;
    uint32_t mask = 0xff000000u;
    size_t m = n;
    for (int shift = 16; shift >= 0; shift -= 8) {
        m = filter(scratch, m, mask, prefix, (unsigned)shift, hist);
        prefix |= (uint32_t)topk_pick_digit(hist, need) << shift;
        mask |= 0xffu << shift;
    }
    return prefix;
}

#endif
