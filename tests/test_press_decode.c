/* Decode-time eviction (kv_press_compress_decode, --kv-max) on random caches: every head ends
 * under the cap, the recent rows are kept, kept rows are the original rows in order, the freed
 * rows stay as reserve (no reallocation), nothing changes while no head overflows, a long decode
 * loop never exceeds the cap and never allocates after the first eviction, uniform SnapKV under
 * the cap picks the same rows as the prefill press with the same budget, and bad calls fail
 * with one line. */
#include <criterion/criterion.h>
#include <math.h>

#include "kv-fixture.h"
#include "kv-press.h"

enum { N_KV = 3, GROUP = 3, N_HEAD = 9, D = 32, N_EMBD = 24, RECENT = 8, MAX_ROWS = 120 };

static float *random_floats(size_t n, float amp) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = fx_unif() * amp;
    return x;
}

static struct kv_press_hook hook(const struct kv_press_config *c, const float *w_o) {
    return (struct kv_press_hook){.cfg = c,
                                  .n_layer = 1,
                                  .n_head = N_HEAD,
                                  .n_embd = N_EMBD,
                                  .w_o = w_o,
                                  .ops = simd_ops_best()};
}

/* Copies of the segment pointers and sizes, to prove nothing was reallocated. */
struct seg_shape {
    void *k, *v;
    int32_t cap;
};

Test(press_decode, every_head_ends_under_the_cap_with_recent_rows_kept_in_order) {
    const char *names[] = {"snapkv", "ada-snapkv", "critical",  "ada-critical", "pyramid",
                           "knorm",  "random",     "streaming", "full"};
    const enum kv_type types[] = {KV_TYPE_INT8, KV_TYPE_F16, KV_TYPE_F32};
    int trial = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (int ti = 0; ti < 3; ti++, trial++) {
            fx_seed(100 + (uint64_t)trial);
            /* ragged: one head under the cap, one just over, one far over */
            int len[N_KV] = {60 + trial % 50, MAX_ROWS + 1, 200 + 13 * trial};
            struct kv_cache kv, orig;
            fx_cache(&kv, types[ti], 1, N_KV, D, len);
            fx_cache_copy(&orig, &kv);
            float *q = random_floats((size_t)RECENT * N_HEAD * D, 3.0f);
            float *w_o = random_floats((size_t)N_EMBD * N_HEAD * D, 1.0f);
            struct kv_press_config c;
            kv_press_config_default(&c);
            struct adakv_err e = {{0}};
            cr_assert_eq(kv_press_parse_name(names[k], &c, &e), 0);
            c.decode_chunk = 16;
            struct kv_press_hook hk = hook(&c, w_o);
            struct seg_shape before[N_KV];
            for (int g = 0; g < N_KV; g++) {
                const struct kv_segment *s = kv_cache_seg(&kv, 0, g);
                before[g] = (struct seg_shape){s->k, s->v, s->cap};
            }
            cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, MAX_ROWS, &e), 0,
                         "%s: %s", names[k], e.msg);
            int total = 0;
            for (int g = 0; g < N_KV; g++) {
                const struct kv_segment *s = kv_cache_seg(&kv, 0, g);
                const struct kv_segment *o = kv_cache_seg(&orig, 0, g);
                total += s->len;
                cr_assert_leq(s->len, MAX_ROWS - 16 / 2, "%s head %d: %d rows", names[k], g,
                              s->len);
                cr_assert(s->k == before[g].k && s->v == before[g].v && s->cap == before[g].cap,
                          "%s head %d: the segment was reallocated", names[k], g);
                cr_assert(fx_rows_match_by_pos(&kv, s, o), "%s head %d: rows differ or reorder",
                          names[k], g);
                const int recent = RECENT;
                for (int t = 0; t < recent; t++)
                    cr_assert_eq(s->pos[s->len - recent + t], o->len - recent + t,
                                 "%s head %d: recent row %d evicted", names[k], g, t);
                if (strstr(names[k], "ada") == NULL)
                    cr_assert_eq(s->len, o->len < MAX_ROWS - 16 ? o->len : MAX_ROWS - 16,
                                 "%s head %d: uniform keeps the target", names[k], g);
            }
            /* Ada-KV moves rows between heads but keeps the uniform layer total. */
            int want = 0;
            for (int g = 0; g < N_KV; g++)
                want += len[g] < MAX_ROWS - 16 ? len[g] : MAX_ROWS - 16;
            cr_assert_eq(total, want, "%s: layer total %d, uniform %d", names[k], total, want);
            free(q);
            free(w_o);
            fx_cache_free(&kv);
            fx_cache_free(&orig);
        }
}

Test(press_decode, nothing_overflows_is_a_no_op) {
    int len[N_KV] = {MAX_ROWS, 50, MAX_ROWS - 1}; /* at the cap is not over it */
    struct kv_cache kv, orig;
    fx_cache(&kv, KV_TYPE_INT8, 1, N_KV, D, len);
    fx_cache_copy(&orig, &kv);
    float *q = random_floats((size_t)RECENT * N_HEAD * D, 3.0f);
    struct kv_press_config c;
    kv_press_config_default(&c);
    struct adakv_err e = {{0}};
    kv_press_parse_name("ada-snapkv", &c, &e);
    struct kv_press_hook hk = hook(&c, NULL);
    void *k0 = kv.seg[0].k;
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, MAX_ROWS, &e), 0, "%s", e.msg);
    cr_assert_eq(kv.seg[0].k, k0);
    for (int g = 0; g < N_KV; g++) {
        const struct kv_segment *s = &kv.seg[g], *o = &orig.seg[g];
        cr_assert_eq(s->len, o->len);
        cr_assert_eq(s->cap, o->cap);
        cr_assert_eq(memcmp(s->k, o->k, (size_t)s->len * D), 0);
        cr_assert_eq(memcmp(s->v, o->v, (size_t)s->len * D), 0);
        cr_assert_eq(memcmp(s->k_scale, o->k_scale, (size_t)s->len * sizeof(float)), 0);
        cr_assert_eq(memcmp(s->v_scale, o->v_scale, (size_t)s->len * sizeof(float)), 0);
        cr_assert_eq(memcmp(s->pos, o->pos, (size_t)s->len * sizeof(int32_t)), 0);
    }
    free(q);
    fx_cache_free(&kv);
    fx_cache_free(&orig);
}

Test(press_decode, long_decode_stays_under_the_cap_without_allocating) {
    int len[N_KV] = {100, 100, 100};
    struct kv_cache kv;
    fx_seed(7);
    fx_cache(&kv, KV_TYPE_INT8, 1, N_KV, D, len);
    struct kv_press_config c;
    kv_press_config_default(&c);
    struct adakv_err e = {{0}};
    kv_press_parse_name("ada-snapkv", &c, &e);
    c.decode_chunk = 24;
    struct kv_press_hook hk = hook(&c, NULL);
    float *q = random_floats((size_t)RECENT * N_HEAD * D, 3.0f);
    float *row = random_floats((size_t)N_KV * D * 2, 1.0f);
    struct seg_shape first[N_KV];
    int evictions = 0, steps_since = 0, min_gap = 1 << 30;
    for (int step = 0; step < 400; step++) {
        for (int i = 0; i < N_KV * D * 2; i++)
            row[i] = fx_unif();
        for (int g = 0; g < N_KV; g++)
            cr_assert_eq(kv_cache_append(&kv, 0, g, row + g * D, row + (N_KV + g) * D, 0, 1,
                                         100 + step, simd_ops_best()->quant_row_i8, &e),
                         0, "%s", e.msg);
        for (int i = 0; i < RECENT * N_HEAD * D; i++) /* the window slides: new queries */
            q[i] = fx_unif() * 3.0f;
        int before = kv.seg[0].len + kv.seg[1].len + kv.seg[2].len;
        cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, MAX_ROWS, &e), 0, "%s",
                     e.msg);
        steps_since++;
        if (kv.seg[0].len + kv.seg[1].len + kv.seg[2].len < before) {
            if (evictions > 0)
                min_gap = steps_since < min_gap ? steps_since : min_gap;
            steps_since = 0;
            if (evictions++ == 0)
                for (int g = 0; g < N_KV; g++)
                    first[g] = (struct seg_shape){kv.seg[g].k, kv.seg[g].v, kv.seg[g].cap};
        }
        for (int g = 0; g < N_KV; g++) {
            const struct kv_segment *s = &kv.seg[g];
            cr_assert_leq(s->len, MAX_ROWS, "step %d head %d: %d rows", step, g, s->len);
            cr_assert_eq(s->pos[s->len - 1], 100 + step, "step %d: the newest row is gone", step);
            for (int j = 1; j < s->len; j++)
                cr_assert_lt(s->pos[j - 1], s->pos[j], "step %d head %d: order", step, g);
            if (evictions > 0)
                cr_assert(s->k == first[g].k && s->cap == first[g].cap,
                          "step %d head %d: allocated after the first eviction", step, g);
        }
    }
    cr_assert_geq(evictions, 10, "only %d evictions in 400 steps", evictions);
    cr_assert_geq(min_gap, 24 / 2, "a layer was evicted again after %d steps", min_gap);
    free(q);
    free(row);
    fx_cache_free(&kv);
}

Test(press_decode, uniform_snapkv_under_the_cap_equals_the_prefill_press) {
    int len[N_KV] = {300, 257, 180};
    struct kv_cache a, b;
    fx_seed(11);
    fx_cache(&a, KV_TYPE_INT8, 1, N_KV, D, len);
    fx_cache_copy(&b, &a);
    float *q = random_floats((size_t)RECENT * N_HEAD * D, 3.0f);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.decode_chunk = 20;
    c.window = RECENT;
    struct kv_press_hook hk = hook(&c, NULL);
    struct adakv_err e = {{0}};
    cr_assert_eq(kv_press_compress_decode(&hk, &a, 0, q, RECENT, MAX_ROWS, &e), 0, "%s", e.msg);
    c.budget = MAX_ROWS - 20;
    cr_assert_eq(kv_press_compress_layer(&hk, &b, 0, q, RECENT, &e), 0, "%s", e.msg);
    for (int g = 0; g < N_KV; g++) {
        cr_assert_eq(a.seg[g].len, b.seg[g].len);
        cr_assert_eq(memcmp(a.seg[g].pos, b.seg[g].pos, (size_t)a.seg[g].len * sizeof(int32_t)), 0,
                     "head %d: decode eviction and the prefill press keep different rows", g);
    }
    free(q);
    fx_cache_free(&a);
    fx_cache_free(&b);
}

Test(press_decode, bad_calls_fail_with_one_line) {
    int len[N_KV] = {200, 200, 200};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, N_KV, D, len);
    float *q = random_floats((size_t)RECENT * N_HEAD * D, 1.0f);
    struct kv_press_config c;
    kv_press_config_default(&c);
    struct kv_press_hook hk = hook(&c, NULL);
    struct adakv_err e = {{0}};
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, RECENT, &e), -1);
    cr_assert(strstr(e.msg, "--kv-max") && !strchr(e.msg, '\n'), "%s", e.msg);
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, 0, &e), -1);
    cr_assert(strstr(e.msg, "--kv-max"), "%s", e.msg);
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, NULL, 0, MAX_ROWS, &e), -1);
    cr_assert(strstr(e.msg, "recent queries"), "%s", e.msg);
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 5, q, RECENT, MAX_ROWS, &e), -1);
    cr_assert(strstr(e.msg, "layer 5"), "%s", e.msg);
    kv_press_parse_name("critical", &c, &e);
    cr_assert_eq(kv_press_compress_decode(&hk, &kv, 0, q, RECENT, MAX_ROWS, &e), -1);
    cr_assert(strstr(e.msg, "W_O"), "%s", e.msg);
    for (int g = 0; g < N_KV; g++)
        cr_assert_eq(kv.seg[g].len, 200, "a failed call changed head %d", g);
    /* the flags */
    kv_press_config_default(&c);
    cr_assert_eq(kv_press_config_set(&c, "kv-max", "0", &e), -1);
    cr_assert(strstr(e.msg, "--kv-max"), "%s", e.msg);
    cr_assert_eq(kv_press_config_set(&c, "kv-chunk", "x", &e), -1);
    cr_assert(strstr(e.msg, "--kv-chunk"), "%s", e.msg);
    cr_assert_eq(kv_press_config_set(&c, "kv-max", "512", &e), 0);
    cr_assert_eq(c.kv_max, 512);
    c.kv_max = 16; /* not above the window of 32 */
    cr_assert_eq(kv_press_config_check(&c, &e), -1);
    cr_assert(strstr(e.msg, "--kv-max"), "%s", e.msg);
    free(q);
    fx_cache_free(&kv);
}
