/* GGUF reader tests: files built by tests/gguf-writer.c (round trips, typed getters, one
 * corruption per validation rule, every truncation point) and the real default model. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf-writer.h"
#include "gguf.h"
#include "tensor-type.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */

/* Temporary files live in the build tree; pid + tag keep parallel Criterion workers apart. */
static char *tmp_path(const char *tag) {
    const char *dir = getenv("ADAKV_BUILDDIR");
    if (!dir || !*dir)
        dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/test_gguf-%s-%d.gguf", dir, tag, (int)getpid()) > 0);
    return p;
}

/* Writes w to a temporary file, opens it with gguf_open, and removes the file. */
static struct gguf_file *open_written(struct gw *w, const char *tag, unsigned flags,
                                      struct adakv_err *e) {
    char *path = tmp_path(tag);
    gw_write(w, path);
    struct gguf_file *f = gguf_open_flags(path, flags, e);
    unlink(path);
    free(path);
    return f;
}

/* Opening must fail with a one-line message that starts with the path and contains `frag`. */
static void expect_reject(struct gw *w, const char *tag, const char *frag) {
    char *path = tmp_path(tag);
    gw_write(w, path);
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open(path, &e);
    cr_assert_null(f, "%s: file was accepted, expected an error containing '%s'", tag, frag);
    cr_assert(strncmp(e.msg, path, strlen(path)) == 0,
              "%s: message does not start with the path: %s", tag, e.msg);
    cr_assert(strchr(e.msg, '\n') == NULL, "%s: message is not one line: %s", tag, e.msg);
    cr_assert(strstr(e.msg, frag) != NULL, "%s: message '%s' lacks '%s'", tag, e.msg, frag);
    unlink(path);
    free(path);
}

static void expect_msg(const struct adakv_err *e, const char *frag) {
    cr_assert(strstr(e->msg, frag) != NULL, "message '%s' lacks '%s'", e->msg, frag);
}

/* A small valid file: a few metadata entries and two tensors. */
static struct gw *small_file(void) {
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", "llama");
    gw_kv_u32(w, "llama.block_count", 2);
    static const char *const toks[] = {"a", "bc", ""};
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    gw_tensor(w, "a.weight", TENSOR_TYPE_F32, 2, (uint64_t[]){4, 2}, v, sizeof v);
    gw_tensor(w, "b.weight", TENSOR_TYPE_F32, 1, (uint64_t[]){3}, v, 12);
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* Round trip                                                                                   */

/* Every metadata type, several tensor types and shapes, alignment 64. */
static struct gw *every_type_file(uint32_t version) {
    struct gw *w = gw_new();
    gw_set_version(w, version);
    gw_kv_u8(w, "t.u8", 200);
    gw_kv_i8(w, "t.i8", -100);
    gw_kv_u16(w, "t.u16", 60000);
    gw_kv_i16(w, "t.i16", -30000);
    gw_kv_u32(w, "t.u32", 4000000000u);
    gw_kv_i32(w, "t.i32", -2000000000);
    gw_kv_f32(w, "t.f32", 1e-5f);
    gw_kv_bool(w, "t.bool", true);
    gw_kv_str(w, "t.str", "héllo\nworld");
    gw_kv_u64(w, "t.u64", UINT64_MAX);
    gw_kv_i64(w, "t.i64", INT64_MIN);
    gw_kv_f64(w, "t.f64", 3.141592653589793);
    gw_kv_str_n(w, "t.binstr", "a\0b", 3);
    gw_kv_str(w, "t.empty", "");
    gw_set_alignment(w, 64);
    static const char *const strs[] = {"<s>", "", "Ġthe", "x y"};
    gw_kv_arr_str(w, "a.str", strs, 4);
    int32_t i32s[5] = {3, -1, 0, INT32_MAX, INT32_MIN};
    gw_kv_arr_i32(w, "a.i32", i32s, 5);
    float f32s[3] = {0.5f, -2.0f, 1e30f};
    gw_kv_arr_f32(w, "a.f32", f32s, 3);
    uint8_t u8s[2] = {0, 255};
    gw_kv_arr(w, "a.u8", GGUF_TYPE_UINT8, u8s, 2);
    uint64_t u64s[2] = {1, UINT64_MAX};
    gw_kv_arr(w, "a.u64", GGUF_TYPE_UINT64, u64s, 2);
    double f64s[2] = {0.25, -1e300};
    gw_kv_arr(w, "a.f64", GGUF_TYPE_FLOAT64, f64s, 2);
    bool bools[3] = {true, false, true};
    gw_kv_arr(w, "a.bool", GGUF_TYPE_BOOL, bools, 3);
    gw_kv_arr(w, "a.empty", GGUF_TYPE_INT16, NULL, 0);
    /* nested: array of 2 arrays: [u16 x 2] and [string x 1] */
    uint8_t nested[] = {
        2, 0, 0, 0, 2, 0, 0, 0, 0,   0,   0, 0, /* u16 x 2 */
        7, 0, 9, 0,                             /* 7, 9 */
        8, 0, 0, 0, 1, 0, 0, 0, 0,   0,   0, 0, /* string x 1 */
        2, 0, 0, 0, 0, 0, 0, 0, 'h', 'i',       /* "hi" */
    };
    uint8_t outer[12 + sizeof nested] = {9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
    memcpy(outer + 12, nested, sizeof nested);
    gw_kv_raw(w, "a.nested", GGUF_TYPE_ARRAY, outer, sizeof outer);
    return w;
}

static uint8_t tensor_bytes[4][1024];

static void add_every_tensor(struct gw *w) {
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 1024; i++)
            tensor_bytes[t][i] = (uint8_t)(i * 7 + t * 31 + 1);
    gw_tensor(w, "f32.1d", TENSOR_TYPE_F32, 1, (uint64_t[]){5}, tensor_bytes[0], 20);
    gw_tensor(w, "q4_1.2d", TENSOR_TYPE_Q4_1, 2, (uint64_t[]){64, 3}, tensor_bytes[1], 2 * 20 * 3);
    gw_tensor(w, "q8_0.3d", TENSOR_TYPE_Q8_0, 3, (uint64_t[]){32, 2, 2}, tensor_bytes[2], 34 * 4);
    gw_tensor(w, "f16.4d", TENSOR_TYPE_F16, 4, (uint64_t[]){3, 1, 2, 5}, tensor_bytes[3], 2 * 30);
}

static void check_every_type(const struct gguf_file *f) {
    struct adakv_err e;
    uint64_t u64;
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    struct gguf_str s;
    cr_assert_eq(f->n_kv, 24);
    cr_assert_eq(gguf_get_u32(f, "t.u8", &u32, &e), 0);
    cr_assert_eq(u32, 200);
    cr_assert_eq(gguf_get_i64(f, "t.i8", &i64, &e), 0);
    cr_assert_eq(i64, -100);
    cr_assert_eq(gguf_get_u32(f, "t.u16", &u32, &e), 0);
    cr_assert_eq(u32, 60000);
    cr_assert_eq(gguf_get_i64(f, "t.i16", &i64, &e), 0);
    cr_assert_eq(i64, -30000);
    cr_assert_eq(gguf_get_u32(f, "t.u32", &u32, &e), 0);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(gguf_get_i64(f, "t.i32", &i64, &e), 0);
    cr_assert_eq(i64, -2000000000);
    cr_assert_eq(gguf_get_f32(f, "t.f32", &f32, &e), 0);
    cr_assert_eq(f32, 1e-5f);
    cr_assert_eq(gguf_get_bool(f, "t.bool", &b, &e), 0);
    cr_assert(b);
    cr_assert_eq(gguf_get_str(f, "t.str", &s, &e), 0);
    cr_assert(gguf_str_eq(s, "héllo\nworld"));
    cr_assert_eq(gguf_get_u64(f, "t.u64", &u64, &e), 0);
    cr_assert_eq(u64, UINT64_MAX);
    cr_assert_eq(gguf_get_i64(f, "t.i64", &i64, &e), 0);
    cr_assert_eq(i64, INT64_MIN);
    cr_assert_eq(gguf_get_f32(f, "t.f64", &f32, &e), 0);
    cr_assert_eq(f32, (float)3.141592653589793);
    cr_assert_eq(gguf_get_str(f, "t.binstr", &s, &e), 0);
    cr_assert(s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0);
    cr_assert_eq(gguf_get_str(f, "t.empty", &s, &e), 0);
    cr_assert_eq(s.len, 0);
    cr_assert_eq(gguf_get_u32(f, "general.alignment", &u32, &e), 0);
    cr_assert_eq(u32, 64);
    cr_assert_eq(f->alignment, 64);

    const struct gguf_kv *kv = gguf_get_arr(f, "a.str", GGUF_TYPE_STRING, &e);
    cr_assert_not_null(kv, "%s", e.msg);
    cr_assert_eq(kv->arr_n, 4);
    cr_assert(gguf_str_eq(kv->arr_strs[0], "<s>") && gguf_str_eq(kv->arr_strs[1], ""));
    cr_assert(gguf_str_eq(gguf_arr_str(kv, 2), "Ġthe") && gguf_str_eq(gguf_arr_str(kv, 3), "x y"));
    kv = gguf_get_arr(f, "a.i32", GGUF_TYPE_INT32, &e);
    cr_assert_not_null(kv, "%s", e.msg);
    int64_t want_i32[5] = {3, -1, 0, INT32_MAX, INT32_MIN};
    for (int i = 0; i < 5; i++) {
        cr_assert(gguf_arr_i64(kv, (uint64_t)i, &i64));
        cr_assert_eq(i64, want_i32[i]);
    }
    cr_assert(!gguf_arr_f32(kv, 0, &f32), "i32 elements are not floats");
    kv = gguf_get_arr(f, "a.f32", GGUF_TYPE_FLOAT32, &e);
    cr_assert_not_null(kv, "%s", e.msg);
    cr_assert(gguf_arr_f32(kv, 2, &f32) && f32 == 1e30f);
    cr_assert(!gguf_arr_i64(kv, 0, &i64), "f32 elements are not integers");
    kv = gguf_get_arr(f, "a.u8", GGUF_TYPE_UINT8, &e);
    cr_assert(kv && kv->arr_n == 2 && kv->data[1] == 255);
    kv = gguf_get_arr(f, "a.u64", GGUF_TYPE_UINT64, &e);
    cr_assert(kv && gguf_arr_i64(kv, 0, &i64) && i64 == 1);
    cr_assert(!gguf_arr_i64(kv, 1, &i64), "UINT64_MAX does not fit in i64");
    kv = gguf_get_arr(f, "a.f64", GGUF_TYPE_FLOAT64, &e);
    cr_assert(kv && gguf_arr_f32(kv, 0, &f32) && f32 == 0.25f);
    kv = gguf_get_arr(f, "a.bool", GGUF_TYPE_BOOL, &e);
    cr_assert(kv && kv->arr_n == 3 && kv->data[0] == 1 && kv->data[1] == 0 && kv->data[2] == 1);
    kv = gguf_get_arr(f, "a.empty", GGUF_TYPE_INT16, &e);
    cr_assert(kv && kv->arr_n == 0);
    kv = gguf_get_arr(f, "a.nested", GGUF_TYPE_ARRAY, &e);
    cr_assert_not_null(kv, "%s", e.msg);
    cr_assert_eq(kv->arr_n, 2);
    cr_assert_eq(kv->data[0], GGUF_TYPE_UINT16); /* first inner array's element type */

    cr_assert_eq(f->n_tensors, 4);
    const char *names[4] = {"f32.1d", "q4_1.2d", "q8_0.3d", "f16.4d"};
    uint32_t types[4] = {TENSOR_TYPE_F32, TENSOR_TYPE_Q4_1, TENSOR_TYPE_Q8_0, TENSOR_TYPE_F16};
    uint64_t nbytes[4] = {20, 120, 136, 60};
    uint64_t ne[4][4] = {{5, 1, 1, 1}, {64, 3, 1, 1}, {32, 2, 2, 1}, {3, 1, 2, 5}};
    for (int i = 0; i < 4; i++) {
        const struct gguf_tensor *t = gguf_find_tensor(f, names[i]);
        cr_assert_not_null(t, "tensor %s missing", names[i]);
        cr_assert_eq(t, &f->tensors[i], "tensors keep file order");
        cr_assert_eq(t->type, types[i]);
        cr_assert_eq(t->n_dims, (uint32_t)i + 1);
        for (int d = 0; d < 4; d++)
            cr_assert_eq(t->ne[d], ne[i][d], "%s ne[%d]", names[i], d);
        cr_assert_eq(t->nbytes, nbytes[i]);
        cr_assert_eq(t->offset % 64, 0);
        cr_assert_eq(((const uint8_t *)t->data - f->map) % 64, 0, "data aligned to 64 in the file");
        cr_assert(memcmp(t->data, tensor_bytes[i], nbytes[i]) == 0, "%s data", names[i]);
    }
    cr_assert_null(gguf_find_tensor(f, "missing"));
    cr_assert_null(gguf_find_tensor(f, "f32.1"));
    cr_assert_null(gguf_find(f, "t.u"));
    uint64_t counts[TENSOR_TYPE_COUNT];
    gguf_count_tensor_types(f, counts);
    cr_assert(counts[TENSOR_TYPE_F32] == 1 && counts[TENSOR_TYPE_Q4_1] == 1 &&
              counts[TENSOR_TYPE_Q8_0] == 1 && counts[TENSOR_TYPE_F16] == 1);
}

Test(gguf, round_trip_v3) {
    struct gw *w = every_type_file(3);
    add_every_tensor(w);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "rt3", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->version, 3);
    check_every_type(f);
    gguf_close(f);
    gw_free(w);
}

Test(gguf, round_trip_v2) {
    struct gw *w = every_type_file(2);
    add_every_tensor(w);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "rt2", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->version, 2);
    check_every_type(f);
    gguf_close(f);
    gw_free(w);
}

Test(gguf, default_alignment_and_data_offset) {
    struct gw *w = small_file();
    size_t len;
    gw_bytes(w, &len);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "align", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->alignment, 32);
    cr_assert_eq(f->data_offset, gw_field_pos(w, GW_DATA, 0, 0));
    cr_assert_eq(f->data_offset % 32, 0);
    cr_assert_eq(f->tensors[1].offset, 32, "second tensor at the next multiple of 32");
    cr_assert_eq(f->size, len);
    gguf_close(f);
    gw_free(w);
}

Test(gguf, empty_tables) {
    struct gw *w = gw_new();
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "empty", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert(f->n_kv == 0 && f->n_tensors == 0);
    cr_assert_null(gguf_find(f, "x"));
    cr_assert_null(gguf_find_tensor(f, "x"));
    gguf_close(f);
    gw_free(w);
}

/* Many tensors and keys: lookups by binary search must find every one. */
Test(gguf, many_tensors_lookup) {
    struct gw *w = gw_new();
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "k.%d", (i * 37) % 500);
        gw_kv_i32(w, name, (i * 37) % 500);
        snprintf(name, sizeof name, "blk.%d.w", (i * 37) % 500);
        float v = (float)i;
        gw_tensor(w, name, TENSOR_TYPE_F32, 1, (uint64_t[]){1}, &v, 4);
    }
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "many", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "k.%d", i);
        int64_t v;
        cr_assert_eq(gguf_get_i64(f, name, &v, &e), 0, "%s", e.msg);
        cr_assert_eq(v, i);
        snprintf(name, sizeof name, "blk.%d.w", i);
        const struct gguf_tensor *t = gguf_find_tensor(f, name);
        cr_assert_not_null(t, "%s", name);
        cr_assert_str_eq(t->name, name);
    }
    gguf_close(f);
    gw_free(w);
}

/* String arrays the size of a real vocabulary (49152 tokens, 48900 merges) must index in linear
 * time; 400k entries would take minutes if building arr_strs were quadratic. */
Test(gguf, large_string_array_is_linear, .timeout = 20) {
    enum { N = 400000 };
    char(*buf)[16] = malloc((size_t)N * sizeof *buf);
    const char **strs = malloc((size_t)N * sizeof *strs);
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "t%d", i);
        strs[i] = buf[i];
    }
    struct gw *w = gw_new();
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", strs, N);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "bigarr", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    const struct gguf_kv *kv = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &e);
    cr_assert_not_null(kv);
    cr_assert_eq(kv->arr_n, N);
    for (int i = 0; i < N; i += 9973)
        cr_assert(gguf_str_eq(kv->arr_strs[i], buf[i]), "element %d", i);
    cr_assert(gguf_str_eq(kv->arr_strs[N - 1], buf[N - 1]));
    gguf_close(f);
    gw_free(w);
    free(strs);
    free(buf);
}

/* The writer's intended use by other tests: a one-layer llama with random weights. */
Test(gguf, writer_builds_tiny_llama) {
    enum { n_embd = 64, n_ff = 128, n_vocab = 32, n_head = 4, n_head_kv = 2 };
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", "llama");
    gw_kv_u32(w, "llama.block_count", 1);
    gw_kv_u32(w, "llama.embedding_length", n_embd);
    gw_kv_u32(w, "llama.feed_forward_length", n_ff);
    gw_kv_u32(w, "llama.attention.head_count", n_head);
    gw_kv_u32(w, "llama.attention.head_count_kv", n_head_kv);
    gw_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    const char *toks[n_vocab];
    char names[n_vocab][8];
    for (int i = 0; i < n_vocab; i++) {
        snprintf(names[i], sizeof names[i], "%c", 'a' + i % 26);
        names[i][1] = i >= 26 ? 'x' : '\0';
        names[i][2] = '\0';
        toks[i] = names[i];
    }
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", toks, n_vocab);
    static float weights[n_ff * n_embd];
    srand(1);
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        weights[i] = (float)rand() / RAND_MAX - 0.5f;
    struct {
        const char *name;
        uint64_t ne0, ne1;
    } mats[] = {
        {"token_embd.weight", n_embd, n_vocab},       {"blk.0.attn_q.weight", n_embd, n_embd},
        {"blk.0.attn_k.weight", n_embd, 32},          {"blk.0.attn_v.weight", n_embd, 32},
        {"blk.0.attn_output.weight", n_embd, n_embd}, {"blk.0.ffn_gate.weight", n_embd, n_ff},
        {"blk.0.ffn_up.weight", n_embd, n_ff},        {"blk.0.ffn_down.weight", n_ff, n_embd},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        gw_tensor(w, mats[i].name, TENSOR_TYPE_F32, 2, (uint64_t[]){mats[i].ne0, mats[i].ne1},
                  weights, mats[i].ne0 * mats[i].ne1 * 4);
    const char *norms[] = {"blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"};
    for (int i = 0; i < 3; i++)
        gw_tensor(w, norms[i], TENSOR_TYPE_F32, 1, (uint64_t[]){n_embd}, weights, n_embd * 4);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "tiny", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->n_tensors, 11);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    cr_assert(t && t->ne[0] == n_ff && t->ne[1] == n_embd && t->nbytes == n_ff * n_embd * 4);
    cr_assert(memcmp(t->data, weights, t->nbytes) == 0);
    uint32_t u32;
    cr_assert_eq(gguf_get_u32(f, "llama.attention.head_count_kv", &u32, &e), 0);
    cr_assert_eq(u32, n_head_kv);
    gguf_close(f);
    gw_free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Typed getters                                                                                */

Test(gguf, getters_widen_and_reject) {
    struct gw *w = gw_new();
    gw_kv_u8(w, "u8", 7);
    gw_kv_u16(w, "u16", 65535);
    gw_kv_u32(w, "u32", 123456);
    gw_kv_u64(w, "u64.small", 42);
    gw_kv_u64(w, "u64.big", 5000000000ull);
    gw_kv_u64(w, "u64.max", UINT64_MAX);
    gw_kv_i32(w, "i32", 99);
    gw_kv_i32(w, "i32.neg", -3);
    gw_kv_bool(w, "flag", true);
    gw_kv_str(w, "name", "llama");
    gw_kv_f32(w, "eps", 1e-6f);
    gw_kv_arr_i32(w, "ids", (int32_t[]){1, 2}, 2);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "getters", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f32;
    bool b;
    struct gguf_str s;
    const char *ok_keys[] = {"u8", "u16", "u32", "u64.small", "i32"};
    uint64_t ok_vals[] = {7, 65535, 123456, 42, 99};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(gguf_get_u32(f, ok_keys[i], &u32, &e), 0, "%s: %s", ok_keys[i], e.msg);
        cr_assert_eq(u32, ok_vals[i]);
        cr_assert_eq(gguf_get_u64(f, ok_keys[i], &u64, &e), 0, "%s: %s", ok_keys[i], e.msg);
        cr_assert_eq(u64, ok_vals[i]);
        cr_assert_eq(gguf_get_i64(f, ok_keys[i], &i64, &e), 0, "%s: %s", ok_keys[i], e.msg);
        cr_assert_eq(i64, (int64_t)ok_vals[i]);
    }
    cr_assert_eq(gguf_get_u64(f, "u64.big", &u64, &e), 0);
    cr_assert_eq(u64, 5000000000ull);
    cr_assert_eq(gguf_get_u32(f, "u64.big", &u32, &e), -1);
    expect_msg(&e, "'u64.big' = 5000000000 does not fit in u32");
    cr_assert_eq(gguf_get_i64(f, "u64.max", &i64, &e), -1);
    expect_msg(&e, "does not fit in i64");
    cr_assert_eq(gguf_get_u32(f, "i32.neg", &u32, &e), -1);
    expect_msg(&e, "'i32.neg' is negative");
    cr_assert_eq(gguf_get_u64(f, "i32.neg", &u64, &e), -1);
    cr_assert_eq(gguf_get_i64(f, "i32.neg", &i64, &e), 0);
    cr_assert_eq(i64, -3);
    cr_assert_eq(gguf_get_u32(f, "flag", &u32, &e), 0, "bool widens to an integer");
    cr_assert_eq(u32, 1);
    cr_assert_eq(gguf_get_u32(f, "name", &u32, &e), -1);
    expect_msg(&e, "'name' has type string, expected an integer");
    cr_assert(strstr(e.msg, "getters") != NULL, "names the file: %s", e.msg);
    cr_assert_eq(gguf_get_u32(f, "eps", &u32, &e), -1);
    expect_msg(&e, "has type f32");
    cr_assert_eq(gguf_get_u32(f, "ids", &u32, &e), -1);
    expect_msg(&e, "'ids' is an array of i32, expected an integer");
    cr_assert_eq(gguf_get_u32(f, "nope", &u32, &e), -1);
    expect_msg(&e, "metadata key 'nope' not found");
    cr_assert_eq(gguf_get_f32(f, "eps", &f32, &e), 0);
    cr_assert_eq(f32, 1e-6f);
    cr_assert_eq(gguf_get_f32(f, "u32", &f32, &e), -1);
    expect_msg(&e, "'u32' has type u32, expected f32");
    cr_assert_eq(gguf_get_bool(f, "flag", &b, &e), 0);
    cr_assert(b);
    cr_assert_eq(gguf_get_bool(f, "u8", &b, &e), -1);
    expect_msg(&e, "expected bool");
    cr_assert_eq(gguf_get_str(f, "name", &s, &e), 0);
    cr_assert(gguf_str_eq(s, "llama") && !gguf_str_eq(s, "llam") && !gguf_str_eq(s, "llamas"));
    cr_assert_eq(gguf_get_str(f, "u8", &s, &e), -1);
    expect_msg(&e, "expected string");
    cr_assert_not_null(gguf_get_arr(f, "ids", GGUF_TYPE_INT32, &e));
    cr_assert_null(gguf_get_arr(f, "ids", GGUF_TYPE_STRING, &e));
    expect_msg(&e, "'ids' is an array of i32, expected an array of string");
    cr_assert_null(gguf_get_arr(f, "u8", GGUF_TYPE_UINT8, &e));
    expect_msg(&e, "'u8' has type u8, expected an array of u8");
    cr_assert_null(gguf_get_arr(f, "missing", GGUF_TYPE_UINT8, &e));
    expect_msg(&e, "not found");
    gguf_close(f);
    gw_free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Files that are not GGUF at all                                                               */

Test(gguf, missing_directory_empty_and_foreign_files) {
    struct adakv_err e;
    char *path = tmp_path("absent");
    cr_assert_null(gguf_open(path, &e));
    expect_msg(&e, "cannot open: No such file or directory");
    cr_assert(strncmp(e.msg, path, strlen(path)) == 0);

    const char *dir = getenv("ADAKV_BUILDDIR") ? getenv("ADAKV_BUILDDIR") : "/tmp";
    cr_assert_null(gguf_open(dir, &e));
    expect_msg(&e, "is a directory");

    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    fclose(fp);
    cr_assert_null(gguf_open(path, &e));
    expect_msg(&e, "empty file");

    fp = fopen(path, "wb");
    fputs("\x7f"
          "ELF and then some more bytes to pass the header size",
          fp);
    fclose(fp);
    cr_assert_null(gguf_open(path, &e));
    expect_msg(&e, "not a GGUF file (magic bytes 7f 45 4c 46");

    fp = fopen(path, "wb");
    fputs("GG", fp);
    fclose(fp);
    cr_assert_null(gguf_open(path, &e));
    expect_msg(&e, "not a GGUF file (only 2 bytes)");
    unlink(path);
    free(path);

    cr_assert_null(gguf_open_memory("", 0, "mem", 0, &e));
    expect_msg(&e, "mem: empty file");
}

/* ------------------------------------------------------------------------------------------ */
/* Corruptions: one per validation rule                                                         */

Test(gguf, bad_magic) {
    struct gw *w = small_file();
    gw_patch_u32(w, GW_MAGIC, 0, 0, 0x46554746); /* "FGUF" */
    expect_reject(w, "magic", "not a GGUF file (magic bytes 46 47 55 46");
    gw_free(w);
}

Test(gguf, bad_versions) {
    struct gw *w = small_file();
    gw_patch_u32(w, GW_VERSION, 0, 0, 1);
    expect_reject(w, "v1", "GGUF version 1 is not supported");
    gw_patch_u32(w, GW_VERSION, 0, 0, 99);
    expect_reject(w, "v99", "unsupported GGUF version 99 (expected 2 or 3)");
    gw_patch_u32(w, GW_VERSION, 0, 0, 0x03000000);
    expect_reject(w, "vbe", "big-endian GGUF file");
    gw_free(w);
}

Test(gguf, string_length_past_eof) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_KV_VALUE, 0, 0, 1000000); /* general.architecture's length */
    expect_reject(w, "strlen",
                  "string value of metadata key 'general.architecture' has length "
                  "1000000 but only");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_KV_KEY_LEN, 1, 0, UINT64_MAX);
    expect_reject(w, "keylen", "key of metadata entry 1 has length 18446744073709551615");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_TENSOR_NAME_LEN, 1, 0, 1ull << 40);
    expect_reject(w, "namelen", "name of tensor info 1 has length 1099511627776");
    gw_free(w);
}

Test(gguf, huge_array_counts) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_KV_ARR_COUNT, 2, 0, 1ull << 60); /* string array */
    expect_reject(w, "arrstr",
                  "array count 1152921504606846976 of metadata key "
                  "'tokenizer.ggml.tokens'");
    gw_free(w);
    w = small_file();
    gw_kv_arr_i32(w, "ids", (int32_t[]){1, 2, 3}, 3);
    gw_patch_u64(w, GW_KV_ARR_COUNT, 3, 0, UINT64_MAX / 2);
    expect_reject(w, "arri32", "array count 9223372036854775807 of metadata key 'ids'");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_N_KV, 0, 0, 1ull << 60);
    expect_reject(w, "nkv", "metadata count 1152921504606846976 cannot fit");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_N_TENSORS, 0, 0, 1ull << 60);
    expect_reject(w, "ntensors", "tensor count 1152921504606846976 cannot fit");
    gw_free(w);
}

Test(gguf, bad_value_types) {
    struct gw *w = small_file();
    gw_patch_u32(w, GW_KV_TYPE, 1, 0, 13);
    expect_reject(w, "kvtype",
                  "value type of metadata key 'llama.block_count' is 13, not a GGUF "
                  "value type");
    gw_free(w);
    w = small_file();
    gw_patch_u32(w, GW_KV_ARR_TYPE, 2, 0, 0xffffffffu);
    expect_reject(w, "arrtype",
                  "array element type of metadata key 'tokenizer.ggml.tokens' is "
                  "4294967295");
    gw_free(w);
}

/* An array nested deeper than GGUF_MAX_ARRAY_DEPTH is refused before the recursion gets deep. */
Test(gguf, deep_nesting) {
    uint8_t raw[12 * 20 + 12];
    size_t n = 0;
    for (int level = 0; level < 20; level++) {
        uint8_t head[12] = {9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}; /* array x 1 */
        memcpy(raw + n, head, 12);
        n += 12;
    }
    uint8_t leaf[12] = {4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* u32 x 0 */
    memcpy(raw + n, leaf, 12);
    n += 12;
    struct gw *w = gw_new();
    gw_kv_raw(w, "deep", GGUF_TYPE_ARRAY, raw, n);
    expect_reject(w, "deep", "nests arrays deeper than 8 levels");
    gw_free(w);
    /* exactly at the limit it is accepted */
    w = gw_new();
    gw_kv_raw(w, "ok", GGUF_TYPE_ARRAY, raw + 12 * (20 - (GGUF_MAX_ARRAY_DEPTH - 1)),
              n - 12 * (size_t)(20 - (GGUF_MAX_ARRAY_DEPTH - 1)));
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "deepok", 0, &e);
    cr_assert_not_null(f, "%s", e.msg);
    gguf_close(f);
    gw_free(w);
}

Test(gguf, n_dims_out_of_range) {
    struct gw *w = small_file();
    gw_patch_u32(w, GW_TENSOR_N_DIMS, 0, 0, 0);
    expect_reject(w, "ndims0", "tensor 'a.weight' has n_dims 0 (must be 1..4)");
    gw_free(w);
    w = small_file();
    gw_patch_u32(w, GW_TENSOR_N_DIMS, 0, 0, 5);
    expect_reject(w, "ndims5", "tensor 'a.weight' has n_dims 5 (must be 1..4)");
    gw_free(w);
}

Test(gguf, bad_shapes) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_TENSOR_NE, 0, 1, 0);
    expect_reject(w, "ne0", "tensor 'a.weight' has ne[1] = 0");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_TENSOR_NE, 0, 0, 1ull << 32);
    gw_patch_u64(w, GW_TENSOR_NE, 0, 1, 1ull << 32);
    expect_reject(w, "neovf", "tensor 'a.weight' element count overflows");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_TENSOR_NE, 0, 0, 1ull << 31);
    gw_patch_u64(w, GW_TENSOR_NE, 0, 1, 1ull << 31);
    expect_reject(w, "bytesovf", "overflow the byte size");
    gw_free(w);
    /* Q4_1 rows must be whole 32-value blocks */
    w = gw_new();
    gw_tensor(w, "q.weight", TENSOR_TYPE_Q4_1, 2, (uint64_t[]){48, 2}, NULL, 80);
    expect_reject(w, "blck",
                  "tensor 'q.weight': row length 48 is not a multiple of the Q4_1 "
                  "block size 32");
    gw_free(w);
}

Test(gguf, unknown_and_unsupported_types) {
    struct gw *w = gw_new();
    gw_tensor(w, "blk.0.attn_q.weight", TENSOR_TYPE_IQ2_XXS, 2, (uint64_t[]){256, 2}, NULL, 132);
    expect_reject(w, "iq2", "tensor 'blk.0.attn_q.weight' has unsupported type 16 (IQ2_XXS)");
    /* the inspector's flag lets known-but-unsupported types through */
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "iq2any", GGUF_OPEN_ANY_KNOWN_TYPE, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->tensors[0].nbytes, 132);
    gguf_close(f);
    gw_patch_u32(w, GW_TENSOR_TYPE, 0, 0, 200);
    expect_reject(w, "t200", "tensor 'blk.0.attn_q.weight' has unknown type 200");
    cr_assert_null(open_written(w, "t200any", GGUF_OPEN_ANY_KNOWN_TYPE, &e));
    expect_msg(&e, "unknown type 200");
    gw_patch_u32(w, GW_TENSOR_TYPE, 0, 0, 4); /* removed Q4_2 */
    expect_reject(w, "t4", "has unknown type 4");
    gw_free(w);
}

Test(gguf, misaligned_offset) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, 33);
    expect_reject(w, "misal",
                  "tensor 'b.weight' data offset 33 is not a multiple of the "
                  "alignment 32");
    gw_free(w);
}

Test(gguf, tensor_past_eof) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, 4096);
    expect_reject(w, "pasteof", "tensor 'b.weight' data (offset 4096 + 12 bytes");
    gw_free(w);
    w = small_file();
    gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, UINT64_MAX - 31); /* aligned, and offset + n wraps */
    expect_reject(w, "wrap", "runs past the end of the file");
    gw_free(w);
    /* the last tensor one byte short */
    w = small_file();
    size_t len;
    gw_bytes(w, &len);
    char *path = tmp_path("short");
    gw_write_prefix(w, path, len - 1);
    struct adakv_err e;
    cr_assert_null(gguf_open(path, &e));
    expect_msg(&e, "tensor 'b.weight' data");
    unlink(path);
    free(path);
    gw_free(w);
}

Test(gguf, overlapping_tensors) {
    struct gw *w = small_file();
    gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, 0);
    expect_reject(w, "overlap", "overlaps tensor");
    gw_free(w);
    /* partial overlap: a 64-byte tensor at 0 and another at 32 */
    w = gw_new();
    gw_tensor(w, "x", TENSOR_TYPE_F32, 1, (uint64_t[]){16}, NULL, 64);
    gw_tensor(w, "y", TENSOR_TYPE_F32, 1, (uint64_t[]){8}, NULL, 32);
    gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, 32);
    expect_reject(w, "overlap2",
                  "tensor 'x' (data offset 0, 64 bytes) overlaps tensor 'y' (data "
                  "offset 32)");
    gw_free(w);
}

Test(gguf, bad_alignment_values) {
    uint32_t bad[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw *w = small_file();
        gw_kv_u32(w, "general.alignment", bad[i]);
        char frag[80];
        snprintf(frag, sizeof frag, "general.alignment is %u, not a non-zero power of two", bad[i]);
        expect_reject(w, "badalign", frag);
        gw_free(w);
    }
    struct gw *w = small_file();
    gw_kv_str(w, "general.alignment", "32");
    expect_reject(w, "stralign", "'general.alignment' has type string, expected an integer");
    gw_free(w);
}

Test(gguf, duplicates) {
    struct gw *w = small_file();
    gw_tensor(w, "a.weight", TENSOR_TYPE_F32, 1, (uint64_t[]){1}, NULL, 4);
    expect_reject(w, "duptensor", "duplicate tensor name 'a.weight' (tensor infos 0 and 2)");
    gw_free(w);
    w = small_file();
    gw_kv_u32(w, "llama.block_count", 3);
    expect_reject(w, "dupkey", "duplicate metadata key 'llama.block_count' (entries 1 and 3)");
    gw_free(w);
}

Test(gguf, bad_tensor_names) {
    struct gw *w = gw_new();
    char long_name[66];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    gw_tensor(w, long_name, TENSOR_TYPE_F32, 1, (uint64_t[]){1}, NULL, 4);
    expect_reject(w, "longname", "is 65 bytes, longer than 64");
    gw_free(w);
    w = gw_new();
    long_name[64] = '\0';
    gw_tensor(w, long_name, TENSOR_TYPE_F32, 1, (uint64_t[]){1}, NULL, 4);
    struct adakv_err e;
    struct gguf_file *f = open_written(w, "name64", 0, &e);
    cr_assert_not_null(f, "64 bytes is allowed: %s", e.msg);
    cr_assert_not_null(gguf_find_tensor(f, long_name));
    gguf_close(f);
    gw_free(w);
    w = gw_new();
    gw_tensor(w, "ab", TENSOR_TYPE_F32, 1, (uint64_t[]){1}, NULL, 4);
    size_t pos = gw_field_pos(w, GW_TENSOR_NAME_LEN, 0, 0) + 8;
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, img, len);
    copy[pos + 1] = '\0'; /* "a\0" */
    cr_assert_null(gguf_open_memory(copy, len, "nul.gguf", 0, &e));
    expect_msg(&e, "nul.gguf: tensor info 0: name contains a NUL byte");
    free(copy);
    gw_free(w);
}

/* Names with newlines or escapes are shown sanitized, so the message stays one line. */
Test(gguf, messages_stay_one_line) {
    struct gw *w = gw_new();
    gw_kv_str(w, "evil\nkey\x1b[31m", "x");
    gw_patch_u64(w, GW_KV_VALUE, 0, 0, 99);
    expect_reject(w, "evil", "metadata key 'evil?key?[31m'");
    gw_free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Truncation at every cut point                                                                */

static struct gw *truncation_file(void) {
    struct gw *w = small_file();
    gw_kv_f64(w, "f", 2.5);
    gw_kv_arr_i32(w, "ids", (int32_t[]){1, 2, 3}, 3);
    uint8_t nested[] = {8, 0, 0, 0, 2, 0, 0, 0, 0,   0, 0, 0, /* string x 2 */
                        1, 0, 0, 0, 0, 0, 0, 0, 'a',          /* "a" */
                        0, 0, 0, 0, 0, 0, 0, 0};              /* "" */
    uint8_t outer[12 + sizeof nested] = {9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    memcpy(outer + 12, nested, sizeof nested);
    gw_kv_raw(w, "nested", GGUF_TYPE_ARRAY, outer, sizeof outer);
    return w;
}

/* A cut is always reported as missing bytes, never as some other defect. */
static bool says_too_short(const char *msg) {
    const char *frags[] = {"truncated",    "left in the file", "cannot fit",
                           "past the end", "empty file",       "only"};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        if (strstr(msg, frags[i]))
            return true;
    return false;
}

/* In memory, each prefix sits in a malloc block of exactly its size, so ASan flags any read
 * past the end (a file mapping would hide reads that stay inside the last page). */
Test(gguf, truncated_every_prefix_in_memory) {
    struct gw *w = truncation_file();
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    struct adakv_err e;
    struct gguf_file *f = gguf_open_memory(img, len, "mem.gguf", 0, &e);
    cr_assert_not_null(f, "full image must open: %s", e.msg);
    gguf_close(f);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, img, cut);
        e.msg[0] = '\0';
        f = gguf_open_memory(copy, cut, "mem.gguf", 0, &e);
        cr_assert_null(f, "prefix of %zu of %zu bytes was accepted", cut, len);
        cr_assert(strncmp(e.msg, "mem.gguf: ", 10) == 0, "cut %zu: %s", cut, e.msg);
        cr_assert(strchr(e.msg, '\n') == NULL);
        cr_assert(says_too_short(e.msg), "cut %zu: not reported as too short: %s", cut, e.msg);
        free(copy);
    }
    gw_free(w);
}

/* Through real files, so the mmap path sees the same cut points. */
Test(gguf, truncated_every_prefix_on_disk) {
    struct gw *w = truncation_file();
    size_t len;
    gw_bytes(w, &len);
    char *path = tmp_path("trunc");
    for (size_t cut = 0; cut < len; cut++) {
        gw_write_prefix(w, path, cut);
        struct adakv_err e = {{0}};
        struct gguf_file *f = gguf_open(path, &e);
        cr_assert_null(f, "prefix of %zu of %zu bytes was accepted", cut, len);
        cr_assert(strncmp(e.msg, path, strlen(path)) == 0, "cut %zu: %s", cut, e.msg);
        cr_assert(says_too_short(e.msg), "cut %zu: not reported as too short: %s", cut, e.msg);
    }
    unlink(path);
    free(path);
    gw_free(w);
}

/* Single-byte corruptions anywhere in the tables must never crash (the verdict may be either). */
Test(gguf, byte_flips_never_crash) {
    struct gw *w = truncation_file();
    size_t tables = gw_field_pos(w, GW_DATA, 0, 0);
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    uint8_t *copy = malloc(len);
    const uint8_t flips[] = {0x00, 0xff, 0x80, 0x01, 0x7f, 0x40};
    for (size_t pos = 0; pos < tables; pos++)
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(copy, img, len);
            copy[pos] = flips[k];
            struct adakv_err e;
            struct gguf_file *f = gguf_open_memory(copy, len, "flip.gguf", 0, &e);
            if (f) {
                for (uint64_t i = 0; i < f->n_tensors; i++) { /* views must lie in the image */
                    const uint8_t *d = f->tensors[i].data;
                    cr_assert(d >= copy && d + f->tensors[i].nbytes <= copy + len);
                }
                gguf_close(f);
            } else {
                cr_assert(strncmp(e.msg, "flip.gguf: ", 11) == 0, "%s", e.msg);
            }
        }
    free(copy);
    gw_free(w);
}

/* Random multi-byte mutations (fixed seed): the reader either accepts with every view inside the
 * image or rejects with a message naming the file; ASan checks the reads. */
Test(gguf, random_mutations_never_crash) {
    struct gw *w = truncation_file();
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    uint8_t *copy = malloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, img, len);
        size_t cut = len;
        for (int k = 0; k < 1 + iter % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            size_t pos = (size_t)(x % len);
            copy[pos] =
                (x >> 32) & 1 ? (uint8_t)(x >> 40) : (uint8_t)(copy[pos] ^ (1u << (x >> 56) % 8));
        }
        if (iter % 7 == 0)
            cut = (size_t)(x % (len + 1)); /* sometimes also truncate */
        struct adakv_err e;
        struct gguf_file *f = gguf_open_memory(copy, cut ? cut : 1, "fuzz.gguf", 0, &e);
        if (f) {
            accepted++;
            for (uint64_t i = 0; i < f->n_tensors; i++) {
                const uint8_t *d = f->tensors[i].data;
                cr_assert(d >= copy && d + f->tensors[i].nbytes <= copy + cut);
            }
            for (uint64_t i = 0; i < f->n_kv; i++)
                if (f->kv[i].arr_strs)
                    for (uint64_t j = 0; j < f->kv[i].arr_n; j++)
                        cr_assert((const uint8_t *)f->kv[i].arr_strs[j].ptr +
                                      f->kv[i].arr_strs[j].len <=
                                  copy + cut);
            gguf_close(f);
        } else {
            cr_assert(strncmp(e.msg, "fuzz.gguf: ", 11) == 0, "%s", e.msg);
        }
    }
    cr_assert_gt(accepted, 0, "some mutations only touch data bytes and must still open");
    free(copy);
    gw_free(w);
}

/* The inspector prints what the reader read (run from the build tree). */
Test(gguf, inspector_output) {
    const char *build = getenv("ADAKV_BUILDDIR");
    cr_assert(build, "ADAKV_BUILDDIR not set (run through make check)");
    struct gw *w = small_file();
    gw_kv_f32(w, "eps", 1e-5f);
    gw_kv_i64(w, "neg", -7);
    gw_tensor(w, "q.weight", TENSOR_TYPE_Q4_1, 2, (uint64_t[]){32, 3}, NULL, 60);
    char *path = tmp_path("insp");
    gw_write(w, path);
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "'%s/adakv-gguf' '%s' 2>&1", build, path) > 0);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "adakv-gguf failed: %s", out);
    const char *want[] = {
        "gguf version 3",
        "3 tensors",
        "string             1  general.architecture = \"llama\"",
        "u32                1  llama.block_count = 2",
        "[string]           3  tokenizer.ggml.tokens = [\"a\", \"bc\", \"\"]",
        "f32                1  eps = 1e-05",
        "i64                1  neg = -7",
        "F32     4 x 2",
        "a.weight",
        "Q4_1    32 x 3",
        "q.weight",
        "F32          2 tensors",
        "Q4_1         1 tensors",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(out, want[i]) != NULL, "output lacks '%s':\n%s", want[i], out);
    /* a broken file: exit status 1 and one line on stderr */
    gw_patch_u32(w, GW_VERSION, 0, 0, 1);
    gw_write(w, path);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    cr_assert(strstr(out, "GGUF version 1 is not supported") != NULL, "%s", out);
    cr_assert(strchr(out, '\n') == out + n - 1, "one line: %s", out);
    unlink(path);
    free(path);
    free(cmd);
    gw_free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Tensor type table                                                                            */

Test(tensor_type, layouts_and_sizes) {
    struct {
        uint32_t id;
        const char *name;
        uint32_t blck, size;
        bool supported;
    } want[] = {
        {TENSOR_TYPE_F32, "F32", 1, 4, true},
        {TENSOR_TYPE_F16, "F16", 1, 2, true},
        {TENSOR_TYPE_BF16, "BF16", 1, 2, true},
        {TENSOR_TYPE_Q8_0, "Q8_0", 32, 34, true},
        {TENSOR_TYPE_Q4_0, "Q4_0", 32, 18, true},
        {TENSOR_TYPE_Q4_1, "Q4_1", 32, 20, true},
        {TENSOR_TYPE_Q5_0, "Q5_0", 32, 22, true},
        {TENSOR_TYPE_Q5_1, "Q5_1", 32, 24, true},
        {TENSOR_TYPE_Q4_K, "Q4_K", 256, 144, true},
        {TENSOR_TYPE_Q5_K, "Q5_K", 256, 176, true},
        {TENSOR_TYPE_Q6_K, "Q6_K", 256, 210, true},
        {TENSOR_TYPE_Q8_1, "Q8_1", 32, 36, false},
        {TENSOR_TYPE_Q8_K, "Q8_K", 256, 292, false},
        {TENSOR_TYPE_Q2_K, "Q2_K", 256, 84, false},
        {TENSOR_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66, false},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct tensor_type_info *t = tensor_type_info(want[i].id);
        cr_assert_not_null(t, "%s", want[i].name);
        cr_assert_str_eq(t->name, want[i].name);
        cr_assert_str_eq(tensor_type_name(want[i].id), want[i].name);
        cr_assert_eq(tensor_type_blck_size(want[i].id), want[i].blck, "%s", want[i].name);
        cr_assert_eq(tensor_type_size(want[i].id), want[i].size, "%s", want[i].name);
        cr_assert_eq(tensor_type_supported(want[i].id), want[i].supported, "%s", want[i].name);
    }
    cr_assert(tensor_type_info(TENSOR_TYPE_Q8_1)->activation);
    cr_assert(tensor_type_info(TENSOR_TYPE_Q8_K)->activation);
    cr_assert(!tensor_type_info(TENSOR_TYPE_Q8_0)->activation);
    uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, TENSOR_TYPE_COUNT, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_assert_null(tensor_type_info(unknown[i]), "id %u", unknown[i]);
        cr_assert(!tensor_type_known(unknown[i]) && !tensor_type_supported(unknown[i]));
        cr_assert_str_eq(tensor_type_name(unknown[i]), "unknown");
        cr_assert_eq(tensor_type_blck_size(unknown[i]), 0);
    }
}

Test(tensor_type, nbytes_checks) {
    struct adakv_err e;
    uint64_t n;
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_Q4_1, 576, 1536, &n, &e), 0);
    cr_assert_eq(n, 576 / 32 * 20 * 1536);
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_Q8_0, 576, 49152, &n, &e), 0);
    cr_assert_eq(n, 30081024);
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_Q6_K, 512, 3, &n, &e), 0);
    cr_assert_eq(n, 2 * 210 * 3);
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_F32, 7, 0, &n, &e), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(tensor_type_row_size(TENSOR_TYPE_Q4_K, 768), 3 * 144);
    cr_assert_eq(tensor_type_row_size(TENSOR_TYPE_Q4_K, 576), 0, "576 is not whole 256-blocks");
    cr_assert_eq(tensor_type_row_size(200, 32), 0);
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_Q4_K, 576, 1, &n, &e), -1);
    expect_msg(&e, "row length 576 is not a multiple of the Q4_K block size 256");
    cr_assert_eq(tensor_type_nbytes(99, 32, 1, &n, &e), -1);
    expect_msg(&e, "unknown tensor type 99");
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_F32, 1ull << 62, 1, &n, &e), -1);
    expect_msg(&e, "overflows");
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_F32, 1ull << 61, 1, &n, &e), -1,
                 "2^63 bytes exceeds the 2^63-1 cap");
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_F32, 1ull << 60, 1, &n, &e), 0);
    cr_assert_eq(n, 1ull << 62);
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_F32, 1ull << 30, 1ull << 31, &n, &e), -1);
    expect_msg(&e, "overflow the byte size");
    cr_assert_eq(tensor_type_nbytes(TENSOR_TYPE_Q8_0, UINT64_MAX - 31, UINT64_MAX, &n, &e), -1);
}

/* ------------------------------------------------------------------------------------------ */
/* The real default model                                                                       */

Test(gguf, default_model) {
    const char *path = getenv("ADAKV_MODEL");
    struct stat st;
    /* fetched before every make check (tools/fetch-model.sh): missing is a failure, not a skip */
    cr_assert(path && stat(path, &st) == 0, "ADAKV_MODEL %s is missing (tools/fetch-model.sh)",
              path ? path : "(not set)");
    struct adakv_err e;
    struct gguf_file *f = gguf_open(path, &e);
    cr_assert_not_null(f, "%s", e.msg);
    cr_assert_eq(f->version, 3);
    cr_assert_eq(f->n_tensors, 272);
    cr_assert_eq(f->n_kv, 33);
    cr_assert_eq(f->alignment, 32);
    uint32_t u32;
    cr_assert_eq(gguf_get_u32(f, "llama.block_count", &u32, &e), 0, "%s", e.msg);
    cr_assert_eq(u32, 30);
    cr_assert_eq(gguf_get_u32(f, "llama.embedding_length", &u32, &e), 0);
    cr_assert_eq(u32, 576);
    float theta;
    cr_assert_eq(gguf_get_f32(f, "llama.rope.freq_base", &theta, &e), 0);
    cr_assert_eq(theta, 100000.0f);
    struct gguf_str arch;
    cr_assert_eq(gguf_get_str(f, "general.architecture", &arch, &e), 0);
    cr_assert(gguf_str_eq(arch, "llama"));
    const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    cr_assert_not_null(t);
    cr_assert_eq(t->type, TENSOR_TYPE_Q8_0);
    cr_assert(t->n_dims == 2 && t->ne[0] == 576 && t->ne[1] == 49152);
    cr_assert_eq(t->nbytes, 30081024);
    cr_assert_null(gguf_find_tensor(f, "output.weight"), "SmolLM2 ties its embeddings");
    uint64_t counts[TENSOR_TYPE_COUNT];
    gguf_count_tensor_types(f, counts);
    uint64_t total = 0;
    for (int i = 0; i < TENSOR_TYPE_COUNT; i++)
        total += counts[i];
    cr_assert_eq(total, 272);
    cr_assert_eq(counts[TENSOR_TYPE_Q4_1], 210);
    cr_assert_eq(counts[TENSOR_TYPE_F32], 61);
    cr_assert_eq(counts[TENSOR_TYPE_Q8_0], 1);
    const struct gguf_kv *tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &e);
    cr_assert_not_null(tokens, "%s", e.msg);
    cr_assert_eq(tokens->arr_n, 49152);
    cr_assert(gguf_str_eq(gguf_arr_str(tokens, 0), "<|endoftext|>"));
    cr_assert(gguf_str_eq(gguf_arr_str(tokens, 1), "<|im_start|>"));
    const struct gguf_kv *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &e);
    cr_assert_not_null(merges, "%s", e.msg);
    cr_assert_eq(merges->arr_n, 48900);
    cr_assert(gguf_str_eq(gguf_arr_str(merges, 0), "Ġ t"));
    cr_assert(gguf_str_eq(gguf_arr_str(merges, 48899), "ect able"));
    /* every tensor lies inside the file, aligned, without overlap (checked at open; spot-check) */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const uint8_t *d = f->tensors[i].data;
        cr_assert(d >= f->map + f->data_offset && d + f->tensors[i].nbytes <= f->map + f->size);
        cr_assert_eq((uint64_t)(d - f->map) % 32, 0);
    }
    gguf_close(f);
}
