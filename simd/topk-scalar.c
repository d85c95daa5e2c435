/* Partial top-k, plain C reference (contract in topk.h). */
#include "topk.h"

/* Keeps the candidates whose key matches `prefix` on `mask` (compacting scratch in place) and
 * histograms their digit at `shift`. Returns the new candidate count. */
static size_t filter_and_count(uint32_t *keys, size_t m, uint32_t mask, uint32_t prefix,
                               unsigned shift, uint32_t hist[256]) {
    size_t kept = 0;
    memset(hist, 0, 256 * sizeof hist[0]);
    for (size_t i = 0; i < m; i++) {
        uint32_t key = keys[i];
        if ((key & mask) == prefix) {
            keys[kept++] = key;
            hist[(key >> shift) & 255u]++;
        }
    }
    return kept;
}

size_t topk__scalar(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx) {
    size_t kept;
    if (topk_trivial(n, k, idx, &kept))
        return kept;
    uint32_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) {
        scratch[i] = topk_key(x[i]);
        hist[scratch[i] >> 24]++;
    }
    size_t need = k; /* rank of the k-th largest inside the current bucket */
    const uint32_t prefix = topk_radix_walk(scratch, n, hist, &need, filter_and_count);
    /* prefix is now the key T of the k-th largest; `need` of the values equal to T are winners. */
    size_t out = 0, ties = need;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = topk_key(x[i]);
        if (key > prefix || (key == prefix && ties > 0)) {
            ties -= (key == prefix);
            idx[out++] = (int32_t)i;
        }
    }
    return out;
}
