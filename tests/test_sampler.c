#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "sampler.h"

static struct sampler make(float temp, int top_k, float top_p, uint64_t seed, int n) {
    struct sampler s;
    struct sampler_params p = {.temp = temp, .top_k = top_k, .top_p = top_p, .seed = seed};
    struct adakv_err e;
    cr_assert_eq(sampler_init(&s, &p, n, &e), 0);
    return s;
}

Test(sampler, greedy_is_argmax_lowest_id_on_ties) {
    float l[6] = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f};
    struct sampler s = make(0.0f, 40, 0.95f, 1, 6);
    cr_assert_eq(sampler_sample(&s, l), 1);
    sampler_free(&s);
}

Test(sampler, top_k_one_is_greedy_at_any_temperature) {
    float l[1000];
    srand(7);
    for (int i = 0; i < 1000; i++)
        l[i] = (float)rand() / RAND_MAX;
    l[617] = 2.0f;
    struct sampler s = make(5.0f, 1, 1.0f, 3, 1000);
    for (int t = 0; t < 50; t++)
        cr_assert_eq(sampler_sample(&s, l), 617);
    sampler_free(&s);
}

Test(sampler, frequencies_follow_softmax) {
    float l[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    struct sampler s = make(1.0f, 0, 1.0f, 42, 3);
    int cnt[3] = {0};
    const int n = 200000;
    for (int t = 0; t < n; t++)
        cnt[sampler_sample(&s, l)]++;
    /* binomial std for p=0.5, n=2e5 is 0.0011; 0.006 is > 5 sigma */
    cr_assert_float_eq(cnt[0] / (double)n, 0.5, 0.006);
    cr_assert_float_eq(cnt[1] / (double)n, 0.3, 0.006);
    cr_assert_float_eq(cnt[2] / (double)n, 0.2, 0.006);
    sampler_free(&s);
}

Test(sampler, temperature_sharpens) {
    float l[2] = {1.0f, 0.0f};
    struct sampler s = make(0.5f, 0, 1.0f, 9, 2);
    int c0 = 0;
    const int n = 100000;
    for (int t = 0; t < n; t++)
        c0 += sampler_sample(&s, l) == 0;
    double want = 1.0 / (1.0 + exp(-2.0)); /* softmax of logits / 0.5 */
    cr_assert_float_eq(c0 / (double)n, want, 0.006);
    sampler_free(&s);
}

Test(sampler, top_p_cuts_the_tail) {
    float l[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    struct sampler s = make(1.0f, 0, 0.75f, 5, 3); /* 0.5 + 0.3 >= 0.75: id 2 is cut */
    for (int t = 0; t < 20000; t++)
        cr_assert_neq(sampler_sample(&s, l), 2);
    sampler_free(&s);
}

Test(sampler, top_k_keeps_exactly_the_k_best) {
    enum { N = 5000, K = 7 };
    float *l = malloc(N * sizeof *l);
    srand(11);
    for (int i = 0; i < N; i++)
        l[i] = (float)(rand() % 100); /* many ties */
    /* reference: the K best by (logit desc, id asc) */
    int ref[K];
    char *used = calloc(N, 1);
    for (int k = 0; k < K; k++) {
        int b = -1;
        for (int i = 0; i < N; i++)
            if (!used[i] && (b < 0 || l[i] > l[b]))
                b = i;
        used[b] = 1;
        ref[k] = b;
    }
    struct sampler s = make(100.0f, K, 1.0f, 1, N); /* hot: all K get drawn */
    int seen[K] = {0};
    for (int t = 0; t < 20000; t++) {
        int id = sampler_sample(&s, l), hit = 0;
        for (int k = 0; k < K; k++)
            if (id == ref[k]) {
                seen[k] = 1;
                hit = 1;
            }
        cr_assert(hit, "sampled id %d outside the top-%d", id, K);
    }
    for (int k = 0; k < K; k++)
        cr_assert(seen[k], "top-k member %d never drawn", ref[k]);
    sampler_free(&s);
    free(used);
    free(l);
}

Test(sampler, same_seed_same_stream_other_seed_differs) {
    struct sampler a = make(1.0f, 0, 1.0f, 123, 4), b = make(1.0f, 0, 1.0f, 123, 4),
                   c = make(1.0f, 0, 1.0f, 124, 4);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        double x = sampler_uniform(&a), y = sampler_uniform(&b), z = sampler_uniform(&c);
        cr_assert_eq(x, y);
        cr_assert(x >= 0.0 && x < 1.0);
        differ += x != z;
    }
    cr_assert_gt(differ, 90);
    sampler_free(&a);
    sampler_free(&b);
    sampler_free(&c);
}
