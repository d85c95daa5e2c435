/* Tokenizers on tiny hand-made GGUF vocabs (written with tests/gguf-writer.h), with expected ids
 * derived by hand from the SentencePiece / llama.cpp rules, and bad tokenizer metadata.
 *
 * SPM rules under test (llama.cpp's llm_tokenizer_spm_session):
 *  R1 add_space_prefix (default for "llama"): one space before raw text at the start and after
 *     each special token; every ' ' is then written as U+2581.
 *  R2 symbols start as single UTF-8 characters; the adjacent pair whose concatenation is the
 *     highest-scoring token merges first, even when another pair is further left;
 *  R3 equal scores: the leftmost pair merges first;
 *  R4 a final symbol that is not a token becomes <0xNN> byte tokens, one per byte;
 *  R5 add_bos defaults to true for "llama"; tokenizer.ggml.add_eos_token adds EOS;
 *  R6 control-token text is matched only with parse_special, user-defined text always. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gguf-writer.h"
#include "gguf.h"
#include "tokenizer.h"

static const char *tmp_path(const char *name) {
    static char path[4096];
    const char *dir = getenv("ADAKV_BUILDDIR");
    snprintf(path, sizeof path, "%s/tests/%s", dir ? dir : ".", name);
    return path;
}

/* Ids of the hand-made SPM vocab. */
enum {
    UNK = 0,
    BOS = 1,
    EOS = 2,
    BYTE0 = 3, /* <0x00> .. <0xFF> are 3 .. 258 */
    SP = 259,  /* "▁" */
    A,
    B,
    C,
    AB,
    BC,
    SP_A,
    ABC,
    CA,
    E_ACUTE,
    USER_U,
    N_SPM
};

static struct gw *spm_writer(void) {
    static char bytes[256][7];
    const char *tok[N_SPM];
    float score[N_SPM] = {0};
    int32_t type[N_SPM];
    tok[UNK] = "<unk>";
    type[UNK] = 2;
    tok[BOS] = "<s>";
    type[BOS] = 3;
    tok[EOS] = "</s>";
    type[EOS] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tok[BYTE0 + b] = bytes[b];
        type[BYTE0 + b] = 6;
    }
    struct {
        int id;
        const char *text;
        float score;
    } normal[] = {
        {SP, "\xe2\x96\x81", -1},
        {A, "a", -2},
        {B, "b", -3},
        {C, "c", -4},
        {AB, "ab", -5},
        {BC, "bc", -0.5f},
        {SP_A,
         "\xe2\x96\x81"
         "a",
         -6},
        {ABC, "abc", -7},
        {CA, "ca", -5},
        {E_ACUTE, "\xc3\xa9", -9},
    };
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++) {
        tok[normal[i].id] = normal[i].text;
        score[normal[i].id] = normal[i].score;
        type[normal[i].id] = 1;
    }
    tok[USER_U] = "<u>";
    type[USER_U] = 4;
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", "llama");
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, N_SPM);
    gw_kv_arr_f32(w, "tokenizer.ggml.scores", score, N_SPM);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", type, N_SPM);
    return w;
}

static struct tokenizer *load_from(struct gw *w, const char *name, struct gguf_file **f,
                                   struct adakv_err *e) {
    const char *path = tmp_path(name);
    gw_write(w, path);
    gw_free(w);
    *f = gguf_open(path, e);
    cr_assert(*f, "%s", e->msg);
    return tokenizer_load(*f, e);
}

static void expect_ids(struct tokenizer *t, const char *text, bool add, bool parse,
                       const int32_t *want, size_t n_want) {
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq(tokenizer_encode(t, text, strlen(text), add, parse, &ids, &n, &e), 0, "%s", e.msg);
    cr_expect_eq(n, n_want, "'%s': %zu ids, want %zu", text, n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++)
        cr_expect_eq(ids[i], want[i], "'%s': id %zu is %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), sizeof((const int32_t[]){__VA_ARGS__}) / 4

Test(spm, hand_made_vocab_follows_the_rules) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_from(spm_writer(), "tok-spm.gguf", &f, &e);
    cr_assert(t, "%s", e.msg);
    cr_expect_str_eq(tokenizer_model_name(t), "llama");
    cr_expect(tokenizer_adds_bos(t)); /* R5 */
    cr_expect_eq(tokenizer_bos(t), BOS);
    cr_expect_eq(tokenizer_eos(t), EOS);

    /* R1+R2: "▁abc": bc (-0.5) beats ab (-5) and ▁a (-6); then ▁a; "▁abc" is no token. */
    expect_ids(t, "abc", true, false, IDS(BOS, SP_A, BC));
    expect_ids(t, "abc", false, false, IDS(SP_A, BC));
    /* R3: "▁cab": ca and ab both score -5; the left one (ca) wins, leaving ▁ and b. */
    expect_ids(t, "cab", false, false, IDS(SP, CA, B));
    /* R4: 'd' and 'ü' (C3 BC) have no token: bytes; 'é' has one. */
    expect_ids(t, "d", false, false, IDS(SP, BYTE0 + 'd'));
    expect_ids(t, "\xc3\xbc\xc3\xa9", false, false, IDS(SP, BYTE0 + 0xC3, BYTE0 + 0xBC, E_ACUTE));
    /* Invalid UTF-8 goes through the byte tokens. Symbols are sized by the lead byte alone:
     * 0xFF claims 4 bytes, so "\xff" "a" is one symbol and 'a' comes out as <0x61>. */
    expect_ids(t,
               "\xff"
               "a",
               false, false, IDS(SP, BYTE0 + 0xFF, BYTE0 + 'a'));
    expect_ids(t,
               "a\x80"
               "b",
               false, false, IDS(SP_A, BYTE0 + 0x80, B));
    /* R1: every space is ▁; runs of spaces stay separate ▁ symbols here. */
    expect_ids(t, "a  b", false, false, IDS(SP_A, SP, SP, B));
    /* R6 + R1: with parse_special, <s> is a token and the text after it gets a space prefix. */
    expect_ids(t, "a<s>b", false, true, IDS(SP_A, BOS, SP, B));
    expect_ids(t, "a<s>b", false, false, IDS(SP_A, BYTE0 + '<', BYTE0 + 's', BYTE0 + '>', B));
    /* user-defined tokens are matched without parse_special too */
    expect_ids(t, "a<u>a", false, false, IDS(SP_A, USER_U, SP_A));
    /* empty input: only what add_special adds */
    expect_ids(t, "", true, false, IDS(BOS));
    struct adakv_err e2 = {{0}};
    int32_t *ids = NULL;
    size_t n = 7;
    cr_expect_eq(tokenizer_encode(t, "", 0, false, false, &ids, &n, &e2), 0);
    cr_expect_eq(n, 0);
    free(ids);

    /* Pieces and decode: ▁ back to spaces, the prefix space dropped once, bytes re-joined. */
    char buf[32];
    cr_expect_eq(tokenizer_piece(t, SP_A, false, buf, sizeof buf), 2);
    cr_expect_eq(memcmp(buf, " a", 2), 0);
    cr_expect_eq(tokenizer_piece(t, BYTE0 + 0xC3, false, buf, sizeof buf), 1);
    cr_expect_eq((unsigned char)buf[0], 0xC3);
    cr_expect_eq(tokenizer_piece(t, BOS, false, buf, sizeof buf), 0);
    cr_expect_eq(tokenizer_piece(t, BOS, true, buf, sizeof buf), 3);
    cr_expect_eq(tokenizer_piece(t, USER_U, false, buf, sizeof buf), 3);
    const int32_t seq[] = {BOS, SP_A, BC, SP, BYTE0 + 0xC3, BYTE0 + 0xBC};
    char *out;
    size_t out_len;
    cr_assert_eq(tokenizer_decode(t, seq, 6, true, false, &out, &out_len, &e), 0);
    /* llama_detokenize keeps the prefix space when it removed a BOS (remove_space = false);
     * without a BOS the first piece loses it. */
    cr_expect_str_eq(out, " abc \xc3\xbc");
    free(out);
    cr_assert_eq(tokenizer_decode(t, seq + 1, 5, true, false, &out, &out_len, &e), 0);
    cr_expect_str_eq(out, "abc \xc3\xbc");
    cr_expect_eq(out_len, 6);
    free(out);
    tokenizer_free(t);
    gguf_close(f);
}

Test(spm, add_eos_and_missing_byte_tokens) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct gw *w = spm_writer();
    gw_kv_bool(w, "tokenizer.ggml.add_eos_token", true);
    gw_kv_bool(w, "tokenizer.ggml.add_space_prefix", false);
    struct tokenizer *t = load_from(w, "tok-spm-eos.gguf", &f, &e);
    cr_assert(t, "%s", e.msg);
    expect_ids(t, "ab", true, false, IDS(BOS, AB, EOS)); /* no space prefix: "ab" merges */
    tokenizer_free(t);
    gguf_close(f);

    /* A vocab without byte tokens falls back to the unknown token (llama.cpp aborts). */
    const char *tok[] = {"<unk>", "<s>", "</s>", "a"};
    float score[] = {0, 0, 0, -1};
    struct gw *w2 = gw_new();
    gw_kv_str(w2, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w2, "tokenizer.ggml.tokens", tok, 4);
    gw_kv_arr_f32(w2, "tokenizer.ggml.scores", score, 4);
    t = load_from(w2, "tok-spm-nobytes.gguf", &f, &e);
    cr_assert(t, "%s", e.msg);
    /* ▁ a z: each byte of ▁ (3) and z are unknown */
    expect_ids(t, "az", false, false, IDS(UNK, UNK, UNK, 3, UNK));
    tokenizer_free(t);
    gguf_close(f);
}

/* ---------------------------------------------------------------- BPE metadata handling */

static struct gw *bpe_writer(const char *pre) {
    /* GPT-2 alphabet for the printable ASCII bytes plus "Ġ" (space), and one merge. */
    static char texts[100][4];
    const char *tok[100];
    int n = 0;
    tok[n++] = "<|endoftext|>";
    tok[n++] = "<|im_end|>";
    for (int c = '!'; c <= '~'; c++) {
        texts[n][0] = (char)c;
        tok[n] = texts[n];
        n++;
    }
    tok[n++] = "\xc4\xa0"; /* Ġ */
    tok[n++] = "ab";
    int32_t type[100];
    for (int i = 0; i < n; i++)
        type[i] = i < 2 ? 3 : 1;
    const char *merges[] = {"a b"};
    struct gw *w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre)
        gw_kv_str(w, "tokenizer.ggml.pre", pre);
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n);
    gw_kv_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    return w;
}

Test(bpe, unknown_pre_falls_back_to_gpt2_with_a_warning) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_from(bpe_writer("no-such-pre"), "tok-bpe-unknown.gguf", &f, &e);
    cr_assert(t, "%s", e.msg);
    cr_expect_str_eq(tokenizer_pre_name(t), "gpt2");
    const char *w = tokenizer_warning(t);
    cr_assert_not_null(w);
    cr_expect(strstr(w, "no-such-pre") && strstr(w, "tokenizer.ggml.pre"), "%s", w);
    /* ids: 2 specials, '!'..'~' = 2..95, Ġ = 96, "ab" = 97. "ab" merges; " ab" is Ġ + ab. */
    expect_ids(t, "ab ab", false, false, IDS(97, 96, 97));
    cr_expect(tokenizer_is_eog(t, 0));
    cr_expect(tokenizer_is_eog(t, 1));
    cr_expect_not(tokenizer_is_eog(t, 2));
    cr_expect_eq(tokenizer_bos(t), 11); /* llama.cpp's BPE default without the key */
    tokenizer_free(t);
    gguf_close(f);
}

/* Each bad tokenizer metadata gives one error line naming the key, never a crash. */
static void expect_load_error(struct gw *w, const char *name, const char *needle) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_from(w, name, &f, &e);
    cr_expect_null(t, "%s: loaded", name);
    cr_expect(strstr(e.msg, needle), "%s: error '%s' does not name '%s'", name, e.msg, needle);
    cr_expect_null(strchr(e.msg, '\n'), "error is not one line");
    tokenizer_free(t);
    gguf_close(f);
}

Test(bad, metadata_errors) {
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", "llama");
    expect_load_error(w, "tok-bad-nomodel.gguf", "tokenizer.ggml.model");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "bert");
    expect_load_error(w, "tok-bad-bert.gguf", "bert");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    expect_load_error(w, "tok-bad-notokens.gguf", "tokenizer.ggml.tokens");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    const uint32_t nums[] = {1, 2};
    gw_kv_arr(w, "tokenizer.ggml.tokens", GGUF_TYPE_UINT32, nums, 2);
    expect_load_error(w, "tok-bad-tokentype.gguf", "tokenizer.ggml.tokens");

    const char *tok[] = {"a", "b", "c"};
    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", (const int32_t[]){1, 1}, 2);
    expect_load_error(w, "tok-bad-types.gguf", "tokenizer.ggml.token_type");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    gw_kv_str(w, "tokenizer.ggml.scores", "high");
    expect_load_error(w, "tok-bad-scores.gguf", "tokenizer.ggml.scores");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gw_kv_str(w, "tokenizer.ggml.pre", "smollm");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    expect_load_error(w, "tok-bad-merges.gguf", "tokenizer.ggml.merges");

    w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, 0);
    expect_load_error(w, "tok-bad-empty.gguf", "tokenizer.ggml.tokens");
}

Test(bad, odd_but_valid_vocab_is_handled) {
    /* Out-of-range special ids keep the defaults, empty and NUL-carrying token texts become
     * what llama.cpp makes of them, a merge line without a space is ignored. */
    const char *tok[] = {"", "x", "y", "x\0z", "xy"};
    const uint64_t lens[] = {0, 1, 1, 3, 2};
    const char *merges[] = {"xy", "x y"};
    struct gw *w = gw_new();
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gw_kv_str(w, "tokenizer.ggml.pre", "gpt2");
    gw_kv_arr_str_n(w, "tokenizer.ggml.tokens", tok, lens, 5);
    gw_kv_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 999);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_from(w, "tok-odd.gguf", &f, &e);
    cr_assert(t, "%s", e.msg);
    cr_expect_eq(tokenizer_bos(t), -1); /* default 11 is out of range, key too */
    size_t len;
    const char *s = tokenizer_token_text(t, 0, &len);
    cr_expect(len == 9 && memcmp(s, "[EMPTY_0]", 9) == 0);
    s = tokenizer_token_text(t, 3, &len);
    cr_expect(len == 1 && s[0] == 'x'); /* the NUL ends the text; the later "x" wins */
    cr_expect_eq(tokenizer_find(t, "x", 1), 3);
    expect_ids(t, "xy", true, false, IDS(4));
    expect_ids(t, "xyz", false, false, IDS(4)); /* 'z' has no token: dropped, as llama.cpp */
    cr_expect_null(tokenizer_token_text(t, 5, &len));
    tokenizer_free(t);
    gguf_close(f);
}
