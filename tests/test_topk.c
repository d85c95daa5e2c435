/* Partial top-k: every compiled ISA against a sort-based reference (and so against each other),
 * on random data with many ties, odd sizes around the vector width, deep radix passes (values
 * that share their high bits) and special values. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "cpu.h"
#include "topk.h"

static const float *sort_x; /* qsort has no context argument */

/* Rank order of topk.h: larger key first, lower index first among equal keys. */
static int by_rank(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    uint32_t ki = topk_key(sort_x[i]), kj = topk_key(sort_x[j]);
    if (ki != kj)
        return ki > kj ? -1 : 1;
    return (i > j) - (i < j);
}

static int by_index(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    return (i > j) - (i < j);
}

static void reference(const float *x, size_t n, size_t k, int32_t *idx) {
    int32_t *all = malloc((n ? n : 1) * sizeof *all);
    for (size_t i = 0; i < n; i++)
        all[i] = (int32_t)i;
    sort_x = x;
    qsort(all, n, sizeof *all, by_rank);
    qsort(all, k, sizeof *all, by_index);
    for (size_t i = 0; i < k; i++)
        idx[i] = all[i];
    free(all);
}

/* Runs every available ISA on (x, n, k) and compares with the reference, index for index. */
static void check_all_isas(const float *x, size_t n, size_t k, const char *what) {
    int32_t *want = malloc((k ? k : 1) * sizeof *want);
    int32_t *got = malloc((k + 1) * sizeof *got);
    uint32_t *scratch = malloc((n ? n : 1) * sizeof *scratch);
    reference(x, n, k, want);
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++) {
        topk_fn f = topk_for_isa(isa);
        if (!f || !simd_isa_available((enum simd_isa)isa))
            continue;
        got[k] = -7; /* sentinel: nothing may be written past k */
        size_t r = f(x, n, k, scratch, got);
        cr_assert_eq(r, k, "%s isa=%s n=%zu k=%zu: returned %zu", what, simd_isa_name(isa), n, k,
                     r);
        cr_assert_eq(got[k], -7, "%s isa=%s n=%zu k=%zu: wrote past k", what, simd_isa_name(isa), n,
                     k);
        for (size_t i = 0; i < k; i++)
            cr_assert_eq(got[i], want[i], "%s isa=%s n=%zu k=%zu: idx[%zu] = %d, want %d", what,
                         simd_isa_name(isa), n, k, i, got[i], want[i]);
    }
    free(want);
    free(got);
    free(scratch);
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const size_t sizes[] = {1,  2,  3,  7,  15,  16,  17,  31,   32,   33,   47,
                               63, 64, 65, 97, 255, 256, 257, 1000, 4095, 4096, 4097};

static void sweep(float *x, size_t n, const char *what) {
    size_t ks[] = {0, 1, n / 3, n / 2, n - 1, n, (size_t)rnd() % (n + 1)};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        check_all_isas(x, n, ks[i], what);
}

Test(topk, random_with_many_ties) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(rnd() % 5) * 0.25f - 0.5f; /* five values, negatives included */
        sweep(x, n, "five-valued");
        for (size_t i = 0; i < n; i++)
            x[i] = (float)rnd() / 4294967296.0f * 2.0f - 1.0f;
        sweep(x, n, "uniform");
        free(x);
    }
}

Test(topk, all_equal_takes_lowest_indices) {
    float x[77];
    for (int i = 0; i < 77; i++)
        x[i] = 0.125f;
    for (size_t k = 0; k <= 77; k++)
        check_all_isas(x, 77, k, "all-equal");
    int32_t idx[10];
    uint32_t scratch[77];
    topk__scalar(x, 77, 10, scratch, idx);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(idx[i], i);
}

Test(topk, values_sharing_high_bits_need_every_radix_pass) {
    size_t n = 1001;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        /* 1.0 plus a few ulps: identical in the top two key digits, ties in the last. */
        x[i] = nextafterf(1.0f, 2.0f);
        for (uint32_t u = rnd() % 40; u > 0; u--)
            x[i] = nextafterf(x[i], 2.0f);
    }
    sweep(x, n, "near-equal");
    free(x);
}

Test(topk, special_values) {
    const float specials[] = {INFINITY, -INFINITY, NAN,      -NAN,   0.0f,    -0.0f, FLT_MAX,
                              -FLT_MAX, FLT_MIN,   -FLT_MIN, 1e-45f, -1e-45f, 1.0f,  -1.0f};
    const size_t ns = sizeof specials / sizeof specials[0];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = specials[rnd() % ns];
        sweep(x, n, "specials");
        free(x);
    }
}

Test(topk, known_answer) {
    const float x[] = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, 3.0f, -0.0f, 0.0f};
    int32_t idx[8];
    uint32_t scratch[8];
    cr_assert_eq(topk__scalar(x, 8, 4, scratch, idx), 4);
    const int32_t want[4] = {1, 3, 4, 5}; /* three 3.0s and the 2.0, in index order */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(idx[i], want[i]);
    cr_assert_eq(topk__scalar(x, 8, 6, scratch, idx), 6);
    cr_assert_eq(idx[0], 0); /* 0.5 is fifth; +0.0 (index 7) beats -0.0 (index 6) */
    cr_assert_eq(idx[5], 7);
}

Test(topk, dispatch_matches_reference) {
    float x[333];
    for (int i = 0; i < 333; i++)
        x[i] = (float)(rnd() % 9);
    int32_t want[100], got[100];
    uint32_t scratch[333];
    reference(x, 333, 100, want);
    topk_select(x, 333, 100, scratch, got);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(got[i], want[i]);
}
