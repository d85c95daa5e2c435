/* tiny-vocab.h: the hand-made vocabularies. */
#include <stdio.h>
#include <string.h>

#include "tiny-vocab.h"

/* GPT-2's byte-to-symbol map (bytes_to_unicode): printable bytes stand for themselves, the
 * others for U+0100 upwards in byte order; written as UTF-8 into out (>= 3 bytes). */
static void gpt2_symbol(int b, char *out) {
    int cp = b, n = 0;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        for (int c = 0; c < b; c++)
            n += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174);
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = '\0';
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = '\0';
    }
}

enum { MAX_TOK = 320 };

int tiny_vocab_add_bpe(struct gw *w, const char *pre) {
    static char sym[256][4];
    static const char *const special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"};
    /* merges over GPT-2 symbols (Ġ = space); their results are tokens too */
    static const char *const merges[] = {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r",
                                         "Ġ Ġ", "1 2", "' s",   "Ã ©", "Ċ Ċ"};
    static const char *const merged[] = {"Ġt", "he", "Ġthe", "in", "Ġa", "er",
                                         "ĠĠ", "12", "'s",   "Ã©", "ĊĊ"};
    const char *tok[MAX_TOK];
    int32_t type[MAX_TOK];
    int n = 0;
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        type[n] = i < 3 ? 3 : 4; /* control, control, control, user-defined */
        tok[n++] = special[i];
    }
    for (int b = 0; b < 256; b++) {
        gpt2_symbol(b, sym[b]);
        type[n] = 1;
        tok[n++] = sym[b];
    }
    for (size_t i = 0; i < sizeof merged / sizeof merged[0]; i++) {
        type[n] = 1;
        tok[n++] = merged[i];
    }
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre)
        gw_kv_str(w, "tokenizer.ggml.pre", pre);
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n);
    gw_kv_arr_str(w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof merges[0]);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 0);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_bool(w, "tokenizer.ggml.add_bos_token", true);
    return n;
}

int tiny_vocab_add_spm(struct gw *w) {
    static char bytes[256][7];
    static const struct {
        const char *text;
        float score;
    } pieces[] = {{"\xe2\x96\x81", -1},
                  {"a", -2},
                  {"b", -3},
                  {"c", -4},
                  {"e", -3},
                  {"h", -4},
                  {"t", -3},
                  {"ab", -5},
                  {"bc", -0.5f},
                  {"he", -2.5f},
                  {"\xe2\x96\x81t", -2},
                  {"\xe2\x96\x81the", -1.5f},
                  {"\xc3\xa9", -9},
                  {"\xe2\x96\x81\xe2\x96\x81", -6}};
    const char *tok[MAX_TOK];
    float score[MAX_TOK] = {0};
    int32_t type[MAX_TOK];
    int n = 0;
    tok[n] = "<unk>", type[n++] = 2;
    tok[n] = "<s>", type[n++] = 3;
    tok[n] = "</s>", type[n++] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tok[n] = bytes[b], type[n++] = 6;
    }
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        score[n] = pieces[i].score;
        tok[n] = pieces[i].text, type[n++] = 1;
    }
    tok[n] = "<start_of_turn>", type[n++] = 3;
    tok[n] = "<u>", type[n++] = 4;
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    gw_kv_arr_f32(w, "tokenizer.ggml.scores", score, (uint64_t)n);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    return n;
}

struct tokenizer *tiny_vocab_load(struct gw *w, struct adakv_err *e) {
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    struct gguf_file *f = gguf_open_memory(img, len, "tiny-vocab.gguf", 0, e);
    struct tokenizer *t = f ? tokenizer_load(f, e) : NULL;
    gguf_close(f);
    gw_free(w);
    return t;
}
