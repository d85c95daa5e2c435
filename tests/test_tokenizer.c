/* Tokenizer tests on the default model (SmolLM2, byte-level BPE, pre "smollm") against the
 * golden ids that tools/make-golden-tokens.py made with llama.cpp (llama-cpp-python):
 *   - token ids for every corpus string, all four add_special/parse_special settings;
 *   - whole-sequence detokenisation equal to llama_detokenize;
 *   - every vocab piece (with and without `special`) equal to llama_token_to_piece, by hashes
 *     of 1024-token blocks;
 *   - decode(encode(s)) == s for valid UTF-8, and a streamed decode that never emits a partial
 *     UTF-8 sequence;
 *   - special ids, EOG set, load time. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <time.h>

#include "gguf.h"
#include "tok-testutil.h"
#include "tokenizer.h"

static struct gguf_file *model_file;
static struct tokenizer *tok;
static double load_ms;

static void setup(void) {
    struct adakv_err e = {{0}};
    const char *path = getenv("ADAKV_MODEL");
    cr_assert(path, "ADAKV_MODEL is not set");
    model_file = gguf_open(path, &e);
    cr_assert(model_file, "%s", e.msg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tok = tokenizer_load(model_file, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert(tok, "%s", e.msg);
    load_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void teardown(void) {
    tokenizer_free(tok);
    gguf_close(model_file);
}

TestSuite(smollm2, .init = setup, .fini = teardown, .timeout = 120);

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int l = unicode_valid_seq_len((const unsigned char *)s + i, n - i);
        if (l <= 0)
            return false;
        i += (size_t)l;
    }
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    char line[4096];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 16 < sizeof line; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, "%d ", ids[i]);
    line[o] = '\0';
    cr_log_error("  %s: %s", what, line);
}

Test(smollm2, metadata) {
    cr_expect_eq(tokenizer_n_vocab(tok), 49152);
    cr_expect_str_eq(tokenizer_model_name(tok), "gpt2");
    cr_expect_str_eq(tokenizer_pre_name(tok), "smollm");
    cr_expect_null(tokenizer_warning(tok));
    cr_expect_eq(tokenizer_bos(tok), 1);
    cr_expect_eq(tokenizer_eos(tok), 2);
    cr_expect_not(tokenizer_adds_bos(tok)); /* tokenizer.ggml.add_bos_token = false */
    /* llama.cpp's EOG set for this vocab: <|endoftext|>, <|im_end|> (eos), and <reponame>
     * (recognised as the fill-in-the-middle repo marker). */
    for (int32_t id = 0; id < tokenizer_n_vocab(tok); id++) {
        bool want = id == 0 || id == 2 || id == 4;
        cr_expect_eq(tokenizer_is_eog(tok, id), want, "EOG of token %d", id);
    }
    cr_expect_not(tokenizer_is_eog(tok, -1));
    cr_expect_not(tokenizer_is_eog(tok, 49152));
    cr_expect_eq(tokenizer_find(tok, "<|im_start|>", 12), 1);
    cr_expect_eq(tokenizer_attr(tok, 1), TOKEN_ATTR_CONTROL);
    cr_log_info("tokenizer load: %.1f ms", load_ms);
    cr_expect_lt(load_ms, 1000.0, "loading took %.1f ms", load_ms);
}

/* The corpus and its golden file, parsed once per test. */
struct golden {
    struct tt_bytes *corpus;
    long n_corpus;
    char *text;
    size_t len;
};

static void golden_load(struct golden *g) {
    g->n_corpus = tt_read_corpus(tt_data_path("tokenizer-corpus.txt"), &g->corpus);
    cr_assert_geq(g->n_corpus, 300, "corpus unreadable or too small (%ld strings)", g->n_corpus);
    g->text = tt_read_file(tt_data_path("tokenizer-golden-smollm2.txt"), &g->len);
    cr_assert(g->text, "cannot read tokenizer-golden-smollm2.txt");
}

static void golden_free(struct golden *g) {
    tt_free_corpus(g->corpus, g->n_corpus);
    free(g->text);
}

Test(smollm2, token_ids_match_llama_cpp) {
    struct golden g;
    golden_load(&g);
    long checked = 0, mismatches = 0, settings[4] = {0};
    int32_t *ids = NULL, want[20000];
    size_t n_ids;
    struct adakv_err e = {{0}};
    for (char *line = strtok(g.text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != 'T')
            continue;
        long idx, nbytes;
        int add, parse, off;
        cr_assert_eq(sscanf(line, "T %ld %d %d %ld :%n", &idx, &add, &parse, &nbytes, &off), 4);
        cr_assert(idx >= 0 && idx < g.n_corpus, "golden index %ld outside the corpus", idx);
        cr_assert_eq((long)g.corpus[idx].n, nbytes, "corpus string %ld changed length", idx);
        size_t n_want = 0;
        char *p = line + off;
        for (;;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            cr_assert_lt(n_want, sizeof want / sizeof want[0]);
            want[n_want++] = (int32_t)v;
            p = end;
        }
        cr_assert_eq(
            tokenizer_encode(tok, g.corpus[idx].p, g.corpus[idx].n, add, parse, &ids, &n_ids, &e),
            0, "%s", e.msg);
        checked++;
        settings[add * 2 + parse]++;
        if (n_ids != n_want || (n_ids && memcmp(ids, want, n_ids * sizeof *ids) != 0)) {
            if (mismatches < 8) {
                cr_log_error("string %ld (add_special=%d parse_special=%d) differs", idx, add,
                             parse);
                print_ids("llama.cpp", want, n_want);
                print_ids("adakv    ", ids, n_ids);
            }
            mismatches++;
        }
    }
    free(ids);
    cr_log_info("token ids: %ld encodings of %ld strings checked, %ld mismatches", checked,
                g.n_corpus, mismatches);
    cr_expect_eq(checked, 4 * g.n_corpus);
    for (int s = 0; s < 4; s++)
        cr_expect_eq(settings[s], g.n_corpus, "setting %d covered %ld times", s, settings[s]);
    cr_expect_eq(mismatches, 0, "%ld of %ld encodings differ from llama.cpp", mismatches, checked);
    golden_free(&g);
}

Test(smollm2, decode_matches_llama_detokenize) {
    struct golden g;
    golden_load(&g);
    char **want = calloc((size_t)g.n_corpus, sizeof *want);
    size_t *want_len = calloc((size_t)g.n_corpus, sizeof *want_len);
    for (char *line = strtok(g.text, "\n"); line; line = strtok(NULL, "\n")) {
        long idx;
        int off;
        if (line[0] != 'D' || sscanf(line, "D %ld %n", &idx, &off) != 1)
            continue;
        cr_assert(idx >= 0 && idx < g.n_corpus);
        size_t hl = strlen(line + off);
        want[idx] = malloc(hl / 2 + 1);
        for (size_t i = 0; i + 1 < hl; i += 2)
            want[idx][i / 2] = (char)(tt_hex(line[off + i]) * 16 + tt_hex(line[off + i + 1]));
        want_len[idx] = hl / 2;
    }
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n_ids;
    long bad = 0, n_replaced = 0;
    for (long i = 0; i < g.n_corpus; i++) {
        const char *s = want[i] ? want[i] : g.corpus[i].p;
        size_t sl = want[i] ? want_len[i] : g.corpus[i].n;
        n_replaced += want[i] != NULL;
        cr_assert_eq(
            tokenizer_encode(tok, g.corpus[i].p, g.corpus[i].n, false, false, &ids, &n_ids, &e), 0);
        char *out;
        size_t out_len;
        cr_assert_eq(tokenizer_decode(tok, ids, n_ids, false, false, &out, &out_len, &e), 0);
        if (out_len != sl || memcmp(out, s, sl) != 0) {
            if (bad < 5)
                cr_log_error("detokenized string %ld differs from llama_detokenize", i);
            bad++;
        }
        free(out);
    }
    cr_log_info("detokenize: %ld strings, %ld of them with invalid UTF-8 replaced, %ld differ",
                g.n_corpus, n_replaced, bad);
    cr_expect_eq(bad, 0);
    cr_expect_gt(n_replaced, 10);
    for (long i = 0; i < g.n_corpus; i++)
        free(want[i]);
    free(want);
    free(want_len);
    free(ids);
    golden_free(&g);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

Test(smollm2, every_piece_matches_llama_cpp) {
    struct golden g;
    golden_load(&g);
    long blocks = 0, bad = 0;
    char buf[4096];
    for (char *line = strtok(g.text, "\n"); line; line = strtok(NULL, "\n")) {
        int special, first, n;
        unsigned long long want;
        if (line[0] != 'P' || sscanf(line, "P %d %d %d %llx", &special, &first, &n, &want) != 4)
            continue;
        uint64_t h = 0xcbf29ce484222325ull;
        for (int id = first; id < first + n; id++) {
            size_t k = tokenizer_piece(tok, id, special, buf, sizeof buf);
            cr_assert_leq(k, sizeof buf);
            uint32_t k32 = (uint32_t)k; /* little-endian length, as the script hashes it */
            unsigned char le[4] = {k32 & 255, (k32 >> 8) & 255, (k32 >> 16) & 255, k32 >> 24};
            h = fnv1a(h, le, 4);
            h = fnv1a(h, buf, k);
        }
        blocks++;
        if (h != want) {
            cr_log_error("pieces of tokens %d..%d (special=%d) differ", first, first + n - 1,
                         special);
            bad++;
        }
    }
    cr_expect_eq(blocks, 2 * 48, "golden has %ld piece blocks", blocks);
    cr_expect_eq(bad, 0);
    /* Small buffers: the size is reported, nothing is written past cap. */
    char small[2] = {'x', 'y'};
    int32_t id = tokenizer_find(tok, "Ġthe", strlen("Ġthe"));
    cr_assert_geq(id, 0);
    cr_expect_eq(tokenizer_piece(tok, id, false, small, 1), 4);
    cr_expect_eq(small[1], 'y');
    cr_expect_eq(tokenizer_piece(tok, -5, true, buf, sizeof buf), 0);
    cr_expect_eq(tokenizer_piece(tok, 49152, true, buf, sizeof buf), 0);
    cr_expect_eq(tokenizer_piece(tok, 1, false, buf, sizeof buf), 0); /* control, hidden */
    cr_expect_eq(tokenizer_piece(tok, 1, true, buf, sizeof buf), 12);
    golden_free(&g);
}

/* Strings that llama.cpp itself does not give back unchanged (a "D" line): invalid UTF-8, and
 * bytes that have no token in this vocab (0x1C..0x1F), which BPE drops. */
static bool *golden_lossy(struct golden *g) {
    bool *lossy = calloc((size_t)g->n_corpus, 1);
    for (char *p = g->text; (p = strstr(p, "\nD ")); p++) {
        long idx = strtol(p + 3, NULL, 10);
        cr_assert(idx >= 0 && idx < g->n_corpus);
        lossy[idx] = true;
    }
    return lossy;
}

Test(smollm2, round_trip_and_stream) {
    struct golden g;
    golden_load(&g);
    bool *lossy = golden_lossy(&g);
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n_ids;
    long valid = 0, bad_round = 0, bad_stream = 0;
    size_t cap = 1 << 16;
    char *stream_out = malloc(cap), piece[4096];
    for (long i = 0; i < g.n_corpus; i++) {
        const struct tt_bytes *s = &g.corpus[i];
        bool ok = valid_utf8(s->p, s->n) && !lossy[i];
        valid += ok;
        for (int parse = 0; parse < 2; parse++) {
            cr_assert_eq(tokenizer_encode(tok, s->p, s->n, true, parse, &ids, &n_ids, &e), 0);
            char *out;
            size_t out_len;
            cr_assert_eq(tokenizer_decode(tok, ids, n_ids, true, parse, &out, &out_len, &e), 0);
            if (ok && (out_len != s->n || memcmp(out, s->p, s->n) != 0)) {
                cr_log_error("string %ld (parse_special=%d) does not survive decode(encode())", i,
                             parse);
                bad_round++;
            }
            /* Stream the same pieces: every chunk must be complete, valid UTF-8, and for
             * valid input the concatenation is the input. */
            struct utf8_stream st = {{0}, 0};
            size_t o = 0;
            for (size_t k = 0; k < n_ids; k++) {
                size_t pl = tokenizer_piece(tok, ids[k], parse, piece, sizeof piece);
                cr_assert_leq(pl, sizeof piece);
                size_t w = utf8_stream_push(&st, piece, pl, stream_out + o, cap - o);
                cr_assert_leq(w, cap - o);
                if (!valid_utf8(stream_out + o, w))
                    bad_stream++;
                o += w;
            }
            size_t w = utf8_stream_flush(&st, stream_out + o, cap - o);
            cr_expect(valid_utf8(stream_out + o, w));
            o += w;
            cr_expect_eq(st.n, 0);
            if (ok && (o != s->n || memcmp(stream_out, s->p, o) != 0))
                bad_stream++;
            free(out);
        }
    }
    cr_log_info("round trip: %ld valid UTF-8 strings x 2 settings, %ld differ; stream: %ld bad",
                valid, bad_round, bad_stream);
    cr_expect_gt(valid, 250);
    cr_expect_eq(bad_round, 0);
    cr_expect_eq(bad_stream, 0);
    free(stream_out);
    free(ids);
    free(lossy);
    golden_free(&g);
}

Test(smollm2, encode_appends_nothing_on_empty_and_handles_large_text) {
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n_ids = 99;
    cr_assert_eq(tokenizer_encode(tok, "", 0, true, true, &ids, &n_ids, &e), 0);
    cr_expect_eq(n_ids, 0);
    /* 1 MiB of mixed text: no quadratic blow-up (a merge loop quadratic per word would take
     * minutes on the 64 KiB single "word"). */
    size_t n = 1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = i < (1 << 16) ? 'a' : "The quick brown fox, 12 jumps.\n"[i % 31];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(tokenizer_encode(tok, big, n, false, false, &ids, &n_ids, &e), 0, "%s", e.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_log_info("encode 1 MiB: %zu tokens in %.0f ms", n_ids, ms);
    cr_expect_gt(n_ids, 1000);
    char *out;
    size_t out_len;
    cr_assert_eq(tokenizer_decode(tok, ids, n_ids, false, false, &out, &out_len, &e), 0);
    cr_expect_eq(out_len, n);
    cr_expect_eq(memcmp(out, big, n), 0);
    free(out);
    free(big);
    free(ids);
}

/* ---------------------------------------------------------------- vocab variants
 * The default model's vocab under other pre-tokenizers, and a synthetic SentencePiece vocab made
 * from it, against llama.cpp's ids on the same corpus (tokenizer-golden-variants.txt; the
 * script documents how the variants are built, and this test rebuilds them the same way). */
#include "gguf-writer.h"

struct strset {
    const char **p;
    size_t *n;
    size_t mask;
};

static bool strset_add(struct strset *s, const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    for (size_t i = (size_t)(h ^ (h >> 29)) & s->mask;; i = (i + 1) & s->mask) {
        if (!s->p[i]) {
            s->p[i] = p;
            s->n[i] = n;
            return true;
        }
        if (s->n[i] == n && memcmp(s->p[i], p, n) == 0)
            return false;
    }
}

/* Writes the variant's vocab-only GGUF and returns its path. */
static const char *write_variant(const char *name) {
    static char path[4096];
    const char *dir = getenv("ADAKV_BUILDDIR");
    snprintf(path, sizeof path, "%s/tests/tok-variant-%s.gguf", dir ? dir : ".", name);
    struct adakv_err e = {{0}};
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", "llama");
    if (strcmp(name, "spm") != 0) {
        const struct gguf_kv *toks =
            gguf_get_arr(model_file, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &e);
        const struct gguf_kv *merges =
            gguf_get_arr(model_file, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &e);
        const struct gguf_kv *types =
            gguf_get_arr(model_file, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &e);
        cr_assert(toks && merges && types, "%s", e.msg);
        gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
        if (strcmp(name, "default") != 0)
            gw_kv_str(w, "tokenizer.ggml.pre", name);
        const struct gguf_kv *arrs[2] = {toks, merges};
        const char *keys[2] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"};
        for (int a = 0; a < 2; a++) {
            const char **strs = malloc(arrs[a]->arr_n * sizeof *strs);
            uint64_t *lens = malloc(arrs[a]->arr_n * sizeof *lens);
            for (uint64_t i = 0; i < arrs[a]->arr_n; i++) {
                strs[i] = arrs[a]->arr_strs[i].ptr;
                lens[i] = arrs[a]->arr_strs[i].len;
            }
            gw_kv_arr_str_n(w, keys[a], strs, lens, arrs[a]->arr_n);
            free(strs);
            free(lens);
        }
        int32_t *ty = malloc(types->arr_n * sizeof *ty);
        memcpy(ty, types->data, types->arr_n * sizeof *ty);
        gw_kv_arr_i32(w, "tokenizer.ggml.token_type", ty, types->arr_n);
        free(ty);
        gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    } else {
        size_t n_max = 300 + (size_t)tokenizer_n_vocab(tok);
        const char **strs = calloc(n_max, sizeof *strs);
        uint64_t *lens = calloc(n_max, sizeof *lens);
        int32_t *types = calloc(n_max, sizeof *types);
        float *scores = calloc(n_max, sizeof *scores);
        char *arena = malloc((size_t)tokenizer_n_vocab(tok) * 64 + 4096), *ap = arena;
        struct strset seen = {calloc(1 << 18, sizeof(char *)), calloc(1 << 18, sizeof(size_t)),
                              (1 << 18) - 1};
        size_t n = 0;
        const char *fixed[] = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < 3; i++) {
            strs[n] = fixed[i];
            lens[n] = strlen(fixed[i]);
            types[n++] = i == 0 ? 2 : 3;
        }
        for (int b = 0; b < 256; b++) {
            ap += sprintf(ap, "<0x%02X>", b);
            strs[n] = ap - 6;
            lens[n] = 6;
            types[n++] = 6;
        }
        strs[n] = "[INST]";
        lens[n] = 6;
        types[n++] = 3;
        strs[n] = "[/INST]";
        lens[n] = 7;
        types[n++] = 3;
        for (size_t i = 0; i < n; i++)
            strset_add(&seen, strs[i], lens[i]);
        char piece[1024];
        for (int32_t id = 17; id < tokenizer_n_vocab(tok); id++) {
            size_t k = tokenizer_piece(tok, id, false, piece, sizeof piece);
            cr_assert_leq(k, sizeof piece);
            if (!valid_utf8(piece, k))
                continue;
            char *start = ap;
            for (size_t i = 0; i < k; i++) {
                if (piece[i] == ' ') {
                    memcpy(ap, "\xe2\x96\x81", 3);
                    ap += 3;
                } else {
                    *ap++ = piece[i];
                }
            }
            size_t len = (size_t)(ap - start);
            if (len == 0 || !strset_add(&seen, start, len)) {
                ap = start;
                continue;
            }
            strs[n] = start;
            lens[n] = len;
            types[n] = 1;
            scores[n++] = -(float)id;
        }
        gw_kv_str(w, "tokenizer.ggml.model", "llama");
        gw_kv_arr_str_n(w, "tokenizer.ggml.tokens", strs, lens, n);
        gw_kv_arr_i32(w, "tokenizer.ggml.token_type", types, n);
        gw_kv_arr_f32(w, "tokenizer.ggml.scores", scores, n);
        gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        free(strs);
        free(lens);
        free(types);
        free(scores);
        free(arena);
        free(seen.p);
        free(seen.n);
    }
    gw_write(w, path);
    gw_free(w);
    return path;
}

static void check_variant(const char *name, const char *want_pre, bool want_bos) {
    struct golden g;
    golden_load(&g);
    free(g.text);
    g.text = tt_read_file(tt_data_path("tokenizer-golden-variants.txt"), &g.len);
    cr_assert(g.text, "cannot read tokenizer-golden-variants.txt");
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open(write_variant(name), &e);
    cr_assert(f, "%s", e.msg);
    struct tokenizer *t = tokenizer_load(f, &e);
    cr_assert(t, "%s", e.msg);
    cr_expect_str_eq(tokenizer_pre_name(t), want_pre);
    cr_expect_eq(tokenizer_adds_bos(t), want_bos);
    if (strcmp(name, "default") == 0)
        cr_expect_not_null(tokenizer_warning(t));
    else
        cr_expect_null(tokenizer_warning(t));

    long checked = 0, mismatches = 0;
    int32_t *ids = NULL, want[20000];
    size_t n_ids, nl = strlen(name);
    for (char *line = strtok(g.text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "V ", 2) != 0 || strncmp(line + 2, name, nl) != 0 || line[2 + nl] != ' ')
            continue;
        long idx, nbytes;
        int add, parse, off;
        cr_assert_eq(sscanf(line + 3 + nl, "%ld %d %d %ld :%n", &idx, &add, &parse, &nbytes, &off),
                     4);
        cr_assert(idx >= 0 && idx < g.n_corpus && (long)g.corpus[idx].n == nbytes);
        size_t n_want = 0;
        char *p = line + 3 + nl + off, *end;
        for (long v; v = strtol(p, &end, 10), end != p; p = end)
            want[n_want++] = (int32_t)v;
        cr_assert_eq(
            tokenizer_encode(t, g.corpus[idx].p, g.corpus[idx].n, add, parse, &ids, &n_ids, &e), 0,
            "%s", e.msg);
        checked++;
        if (n_ids != n_want || (n_ids && memcmp(ids, want, n_ids * sizeof *ids) != 0)) {
            if (mismatches < 6) {
                cr_log_error("%s: string %ld (add=%d parse=%d) differs", name, idx, add, parse);
                print_ids("llama.cpp", want, n_want);
                print_ids("adakv    ", ids, n_ids);
            }
            mismatches++;
        }
    }
    cr_log_info("%s: %ld encodings checked, %ld mismatches", name, checked, mismatches);
    cr_expect_geq(checked, g.n_corpus);
    cr_expect_eq(mismatches, 0);
    free(ids);
    tokenizer_free(t);
    gguf_close(f);
    golden_free(&g);
}

Test(smollm2, variant_llama3) {
    check_variant("llama3", "llama3", true);
}
Test(smollm2, variant_qwen2) {
    check_variant("qwen2", "qwen2", false);
}
Test(smollm2, variant_gpt2) {
    check_variant("gpt-2", "gpt-2", false);
}
Test(smollm2, variant_default) {
    check_variant("default", "default", false);
}
Test(smollm2, variant_spm) {
    check_variant("spm", "spm", true);
}

/* Random bytes (with fragments of special-token text mixed in): every id in range, decode and
 * streaming succeed, streamed output is valid UTF-8. Run under ASan/UBSan in CI. */
Test(smollm2, random_bytes_never_crash) {
    static const char *bits[] = {"<|im_start|>", "<|im_end|>", "<|",           "|>", "'s",  "  ",
                                 "\n",           "\xf0\x9f",   "\xe4\xbd\xa0", "12", "\xc3"};
    srand(11);
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n_ids;
    char text[256], out[4096];
    for (int round = 0; round < 3000; round++) {
        size_t n = 0, want = (size_t)(rand() % 96);
        while (n < want) {
            if (rand() % 3 == 0) {
                const char *b = bits[rand() % (int)(sizeof bits / sizeof bits[0])];
                size_t bl = strlen(b);
                if (n + bl > sizeof text)
                    break;
                memcpy(text + n, b, bl);
                n += bl;
            } else {
                text[n++] = (char)(rand() % 256);
            }
        }
        int parse = round & 1;
        cr_assert_eq(tokenizer_encode(tok, text, n, round & 2, parse, &ids, &n_ids, &e), 0);
        struct utf8_stream st = {{0}, 0};
        size_t o = 0;
        for (size_t i = 0; i < n_ids; i++) {
            cr_assert(ids[i] >= 0 && ids[i] < tokenizer_n_vocab(tok));
            char piece[256];
            size_t pl = tokenizer_piece(tok, ids[i], parse, piece, sizeof piece);
            cr_assert_leq(pl, sizeof piece);
            o += utf8_stream_push(&st, piece, pl, out + o, sizeof out - o);
        }
        o += utf8_stream_flush(&st, out + o, sizeof out - o);
        cr_assert_leq(o, sizeof out);
        cr_assert(valid_utf8(out, o), "round %d: stream output is not valid UTF-8", round);
        char *dec;
        size_t dl;
        cr_assert_eq(tokenizer_decode(tok, ids, n_ids, true, parse, &dec, &dl, &e), 0);
        free(dec);
    }
    free(ids);
}
