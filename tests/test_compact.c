/* Compaction: order and bytes kept (int8 rows and scales, f16, f32), capacity cut to
 * kept + reserve, bad keep lists rejected without touching the segment. */
#include <criterion/criterion.h>

#include "kv-compact.h"
#include "kv-fixture.h"

static void check_type(enum kv_type t) {
    const int d = 37; /* odd, so no row is a multiple of a vector */
    for (int trial = 0; trial < 40; trial++) {
        int len = 1 + (int)(fx_u32() % 300), reserve = (int)(fx_u32() % 20);
        struct kv_cache c, orig;
        fx_cache(&c, t, 1, 1, d, &len);
        fx_cache_copy(&orig, &c);
        int32_t *keep = malloc((size_t)len * sizeof *keep);
        int n = 0;
        int mode = trial % 4; /* random subset, all, none, last only */
        for (int j = 0; j < len; j++)
            if (mode == 1 || (mode == 0 && fx_u32() % 3 == 0) || (mode == 3 && j == len - 1))
                keep[n++] = j;
        struct adakv_err e = {{0}};
        struct kv_segment *s = kv_cache_seg(&c, 0, 0);
        cr_assert_eq(kv_segment_compact(s, t, d, keep, n, reserve, &e), 0, "%s", e.msg);
        cr_assert_eq(s->len, n);
        cr_assert_eq(s->cap, n + reserve);
        for (int i = 0; i < n; i++)
            cr_assert_eq(s->pos[i], keep[i]);
        cr_assert(fx_rows_match_by_pos(&c, s, kv_cache_seg(&orig, 0, 0)),
                  "type %d len %d kept %d: rows, scales or order changed", t, len, n);
        free(keep);
        fx_cache_free(&c);
        fx_cache_free(&orig);
    }
}

Test(compact, int8_rows_and_scales_keep_order_and_bytes) {
    check_type(KV_TYPE_INT8);
}
Test(compact, f16_rows_keep_order_and_bytes) {
    check_type(KV_TYPE_F16);
}
Test(compact, f32_rows_keep_order_and_bytes) {
    check_type(KV_TYPE_F32);
}

Test(compact, reserve_grows_capacity_for_decode) {
    int len = 10;
    struct kv_cache c;
    fx_cache(&c, KV_TYPE_INT8, 1, 1, 8, &len);
    int32_t keep[] = {0, 9};
    struct adakv_err e;
    struct kv_segment *s = kv_cache_seg(&c, 0, 0);
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 8, keep, 2, 100, &e), 0);
    cr_assert_eq(s->cap, 102);
    ((int8_t *)s->k)[101 * 8 + 7] = 1; /* the reserve is writable (ASan checks the bound) */
    s->k_scale[101] = 1.0f;
    s->pos[101] = 1;
    fx_cache_free(&c);
}

Test(compact, bad_keep_lists_are_rejected_untouched) {
    int len = 6;
    struct kv_cache c, orig;
    fx_cache(&c, KV_TYPE_INT8, 1, 1, 4, &len);
    fx_cache_copy(&orig, &c);
    struct kv_segment *s = kv_cache_seg(&c, 0, 0);
    struct adakv_err e;
    const int32_t unsorted[] = {0, 3, 2}, dup[] = {1, 1}, out[] = {2, 6}, neg[] = {-1, 2};
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 4, unsorted, 3, 0, &e), -1);
    cr_assert(strstr(e.msg, "not ascending"), "%s", e.msg);
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 4, dup, 2, 0, &e), -1);
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 4, out, 2, 0, &e), -1);
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 4, neg, 2, 0, &e), -1);
    cr_assert_eq(kv_segment_compact(s, KV_TYPE_INT8, 4, unsorted, 7, 0, &e), -1);
    cr_assert_eq(s->len, 6);
    cr_assert_eq(s->cap, 6);
    cr_assert(fx_rows_match_by_pos(&c, s, kv_cache_seg(&orig, 0, 0)));
    fx_cache_free(&c);
    fx_cache_free(&orig);
}
