/* Partial top-k, AArch64 NEON (contract in topk.h; must equal topk__scalar index for index).
 *
 * NEON has no compress-store, so the vector work is the float -> key transform and a 4-lane
 * test that lets whole blocks of losers (the common case: k is a fraction of n) be skipped;
 * lanes of a block with a winner or candidate are handled one by one, in index order. */
#include <arm_neon.h>

#include "topk.h"

static inline uint32x4_t keys4(const float *x) {
    uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x));
    uint32x4_t sign = vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_u32(u), 31));
    return veorq_u32(u, vorrq_u32(sign, vdupq_n_u32(0x80000000u)));
}

static size_t filter_and_count(uint32_t *keys, size_t m, uint32_t mask, uint32_t prefix,
                               unsigned shift, uint32_t hist[256]) {
    const uint32x4_t vmask = vdupq_n_u32(mask), vprefix = vdupq_n_u32(prefix);
    size_t kept = 0, i = 0;
    memset(hist, 0, 256 * sizeof hist[0]);
    for (; i + 4 <= m; i += 4) {
        uint32x4_t key = vld1q_u32(keys + i);
        if (vmaxvq_u32(vceqq_u32(vandq_u32(key, vmask), vprefix)) == 0)
            continue; /* no candidate in this block */
        for (size_t l = i; l < i + 4; l++)
            if ((keys[l] & mask) == prefix) {
                keys[kept++] = keys[l];
                hist[(keys[l] >> shift) & 255u]++;
            }
    }
    for (; i < m; i++)
        if ((keys[i] & mask) == prefix) {
            keys[kept++] = keys[i];
            hist[(keys[i] >> shift) & 255u]++;
        }
    return kept;
}

size_t topk__neon(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx) {
    size_t kept;
    if (topk_trivial(n, k, idx, &kept))
        return kept;
    uint32_t hist[256] = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_u32(scratch + i, keys4(x + i));
    for (; i < n; i++)
        scratch[i] = topk_key(x[i]);
    for (i = 0; i < n; i++)
        hist[scratch[i] >> 24]++;
    size_t need = k;
    const uint32_t prefix = topk_radix_walk(scratch, n, hist, &need, filter_and_count);
    /* Collect: blocks whose keys are all below T hold no winner. */
    const uint32x4_t vt = vdupq_n_u32(prefix);
    size_t out = 0, ties = need;
    for (i = 0; i < n; i++) {
        if (i + 4 <= n && (i & 3) == 0 && vmaxvq_u32(vcgeq_u32(keys4(x + i), vt)) == 0) {
            i += 3;
            continue;
        }
        uint32_t key = topk_key(x[i]);
        if (key > prefix || (key == prefix && ties > 0)) {
            ties -= (key == prefix);
            idx[out++] = (int32_t)i;
        }
    }
    return out;
}
