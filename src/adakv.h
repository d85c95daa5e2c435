/* adakv public API: load a GGUF model (Llama, Qwen, Gemma 3 families) and run prompts on the
 * CPU with an int8 KV cache that Ada-KV presses can evict. Every type here is an opaque handle
 * or a plain struct of numbers; the installed libadakv.so exports these functions and nothing
 * else. examples/generate.c is a whole program on it (`pkg-config --cflags --libs adakv`).
 *
 *     struct adakv_err e;
 *     struct adakv_model *m = adakv_model_load("model.gguf", &mp, &e);
 *     struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
 *     adakv_tokenize(m, text, len, true, false, &tokens, &n, &e);
 *     adakv_eval(c, tokens, n, logits, false, &e);        // prompt
 *     int32_t t = adakv_sample(sampler, logits);          // then one token at a time
 *
 * Errors: every call that can fail takes a struct adakv_err * and returns -1 or NULL with one
 * line in err->msg naming the file, flag or field at fault. Nothing here prints or exits.
 * Memory this API hands out (token arrays, texts, reports) is freed with adakv_free. */
#ifndef ADAKV_H
#define ADAKV_H

#include <signal.h> /* sig_atomic_t */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADAKV_VERSION "0.1.0"

/* The library is built with hidden symbols; this marks the ones it exports. */
#if defined(__GNUC__)
#define ADAKV_API __attribute__((visibility("default")))
#else
#define ADAKV_API
#endif

struct adakv_err {
    char msg[512];
};

struct adakv_model; /* weights (mapped from the GGUF file), hyperparameters, tokenizer */
struct adakv_ctx;   /* one sequence: KV cache, positions, scratch */

/* KV storage type; int8 (symmetric, one scale per row) is the default. */
enum adakv_kv_type { ADAKV_KV_INT8 = 0, ADAKV_KV_F16 = 1, ADAKV_KV_F32 = 2 };

/* Thread placement over NUMA nodes, as llama.cpp's --numa: off = thread i on core i;
 * distribute = threads spread over the nodes; isolate = only the cores of the starting node. */
enum adakv_numa { ADAKV_NUMA_OFF = 0, ADAKV_NUMA_DISTRIBUTE = 1, ADAKV_NUMA_ISOLATE = 2 };

/* ---- model ---- */

/* How prompt batches multiply by the weights (decode always streams the quantized weights).
 * AUTO: the quantized weights (their repacked tiles, or native rows) wherever the ISA has a
 * blocked kernel for the type, no copy; on CPUs with AMX-BF16 the repacked K-quant tiles are
 * dequantized to bf16 a panel at a time and multiplied on AMX tiles (weights and activations
 * rounded to 8 significant bits, f32 sums); oneDNN (bf16 with AVX512-BF16, else f32) on a dense
 * copy only for the weights without a kernel (float types), unless that copy would exceed 4 GiB.
 * QUANT: the quantized kernels alone, with llama.cpp's 8-bit activations and integer sums. */
enum adakv_prefill_gemm {
    ADAKV_PREFILL_GEMM_AUTO = 0,
    ADAKV_PREFILL_GEMM_QUANT, /* the quantized matmul in 8-bit arithmetic, no extra memory */
    ADAKV_PREFILL_GEMM_F32,   /* oneDNN, weights dequantized to f32 at load */
    ADAKV_PREFILL_GEMM_BF16,  /* oneDNN, weights dequantized to bf16 at load */
};

struct adakv_model_params {
    int n_threads; /* 0 = all cores */
    enum adakv_prefill_gemm prefill_gemm;
};
/* Parses auto|quant|f32|bf16 (flag names the option in the message). 0, or -1 with e set. */
ADAKV_API int adakv_prefill_gemm_parse(const char *flag, const char *s,
                                       enum adakv_prefill_gemm *out, struct adakv_err *e);

/* Maps `path`, validates it, binds the architecture's tensors (type and shape checked) and
 * loads the tokenizer. Returns NULL with one line in e on any failure. */
ADAKV_API struct adakv_model *adakv_model_load(const char *path, const struct adakv_model_params *p,
                                               struct adakv_err *e);
ADAKV_API void adakv_model_free(struct adakv_model *m);

struct adakv_model_info {
    const char *arch; /* general.architecture, e.g. "llama" (owned by the model) */
    const char *name; /* general.name or "" (owned by the model) */
    int n_vocab, n_ctx_train, n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
    char type_counts[256]; /* tensors per weight type: "Q4_1: 210, F32: 61, Q8_0: 1" */
    char prefill_gemm[64]; /* "oneDNN bf16, 202.5 MiB" or "quantized" */
    char weights[128];     /* file mapped, bytes repacked at load and how long it took */
};
ADAKV_API void adakv_model_get_info(const struct adakv_model *m, struct adakv_model_info *out);

/* ---- context (one sequence) ---- */

struct adakv_ctx_params {
    int n_ctx;                  /* max tokens (positions) in this sequence */
    enum adakv_kv_type kv_type; /* storage of K/V rows */
    int n_threads;              /* 0 = all cores */
    bool reference;             /* plain C kernels and scalar matmul everywhere */
    int window;                 /* query rows kept per layer for scoring; 0 = default 32 */
    /* Called after each layer of a prefill (n > 1) with layers done and the layer count, so a
     * long prompt can show progress; NULL = none. */
    void (*progress)(void *user, int layers_done, int n_layer);
    void *progress_user;
    enum adakv_numa numa; /* thread placement (threads.h); threads are pinned unless the user
                             set OMP_PLACES or OMP_PROC_BIND */
    /* If not NULL and nonzero when a prompt batch's next chunk or layer starts, adakv_eval stops
     * with "eval: interrupted" (a SIGINT handler sets it); the context must then be reset. */
    const volatile sig_atomic_t *interrupt;
};

/* Fills p with the defaults: n_ctx 4096, int8 KV, all cores, fast kernels, window 32, no press. */
/* Parses int8 (or q8, i8), f16 or f32 (flag names the option in the message). 0, or -1 with e
 * set. */
ADAKV_API int adakv_kv_type_parse(const char *flag, const char *s, enum adakv_kv_type *out,
                                  struct adakv_err *e);
ADAKV_API void adakv_ctx_params_default(struct adakv_ctx_params *p);

/* Allocates the KV cache and all scratch for n_ctx tokens; nothing is allocated per token
 * afterwards. Returns NULL with e set when n_ctx is out of range, when the plan
 * (adakv_ctx_plan) exceeds the machine's RAM, or when memory runs out. */
ADAKV_API struct adakv_ctx *adakv_ctx_new(struct adakv_model *m, const struct adakv_ctx_params *p,
                                          struct adakv_err *e);
ADAKV_API void adakv_ctx_free(struct adakv_ctx *c);

/* What a context with params p would hold at its fullest, computed without allocating: the
 * model's memory (mapped file plus load-time weight copies), the KV cache with n_ctx rows in
 * every (layer, KV head), and the scratch; with the machine's RAM (0 if unknown), which
 * adakv_ctx_new refuses to exceed. Bytes. */
struct adakv_mem_plan {
    uint64_t model, kv, scratch, ram;
};
ADAKV_API void adakv_ctx_plan(const struct adakv_model *m, const struct adakv_ctx_params *p,
                              struct adakv_mem_plan *out);

/* Runs n tokens at the next positions (n > 1: layer-major prefill over all n tokens; n == 1:
 * decode). logits: if not NULL, receives n_vocab floats for the last token, or for every token
 * when all_logits (then logits holds n * n_vocab floats). Fails cleanly (one line) when the
 * context would exceed n_ctx or a token id is out of range. The compression hook runs only
 * for n > 1. */
ADAKV_API int adakv_eval(struct adakv_ctx *c, const int32_t *tokens, int n, float *logits,
                         bool all_logits, struct adakv_err *e);
ADAKV_API int
adakv_ctx_n_past(const struct adakv_ctx *c);         /* next position = tokens evaluated so far */
ADAKV_API void adakv_ctx_reset(struct adakv_ctx *c); /* empty the cache, keep the allocations */
/* Forgets every token at position >= n_past (e.g. a question and its answer), so one compressed
 * context can answer several questions without being recomputed. */
ADAKV_API int adakv_ctx_rewind(struct adakv_ctx *c, int n_past, struct adakv_err *e);
ADAKV_API size_t
adakv_ctx_kv_bytes(const struct adakv_ctx *c); /* bytes currently allocated for K/V */
ADAKV_API size_t
adakv_ctx_kv_rows(const struct adakv_ctx *c); /* live K/V rows over all layers and heads */
/* Wall seconds spent in the compression hook (scoring, budget allocation, compaction) since the
 * context was created or last reset: the press's share of a prefill. */
ADAKV_API double adakv_ctx_press_seconds(const struct adakv_ctx *c);
/* KVzip (--press kvzip / ada-kvzip): prefills tokens[0..n) (the context, or its rest on top of
 * the cache) followed by rec[0..n_rec), the reconstruction: a prompt asking the model to repeat
 * the context, then the context itself, teacher-forced (a user turn KVZIP_REPEAT_PROMPT whose
 * reply is the context builds exactly these tokens). Each layer's press scores every cached row
 * by the largest attention the reconstruction's queries give it and keeps its budget of them;
 * the reconstruction's own rows are dropped, and the position counter ends at n_past + n, as if
 * only the context had been prefilled and compressed. Costs the reconstruction's prefill. The
 * copy ends with the context (cached rows included): past the press's rec-chunk rows it is
 * repeated in pieces whose copy queries see only the sinks, their piece, the prompt before the
 * copy and their part of the copy (docs/presses.md), which keeps that cost linear in the length.
 * With any other press (or none) this is
 * adakv_eval(c, tokens, n, NULL, false, e): rec is ignored.
 * Needs n + n_rec free positions. 0, or -1 with e set. */
ADAKV_API int adakv_ctx_prefill_kvzip(struct adakv_ctx *c, const int32_t *tokens, int n,
                                      const int32_t *rec, int n_rec, struct adakv_err *e);
/* Question-aware KVzip (this project's extension; docs/eval.md measures it): as
 * adakv_ctx_prefill_kvzip with the question's tokens question[0..n_question) (and the reply
 * prefix, if any) prefilled after the reconstruction. A row's score is the larger of its
 * reconstruction score and the attention the question's queries pay it (summed over them), each
 * normalized over its layer, so what the question reads is kept beside what the reconstruction
 * needs. The question's rows are dropped with the reconstruction's: prefill the question again
 * on the compressed cache. n_question 0 is adakv_ctx_prefill_kvzip. Needs
 * n + n_rec + n_question free positions. 0, or -1 with e set. */
ADAKV_API int adakv_ctx_prefill_kvzip_aware(struct adakv_ctx *c, const int32_t *tokens, int n,
                                            const int32_t *rec, int n_rec, const int32_t *question,
                                            int n_question, struct adakv_err *e);
#define KVZIP_REPEAT_PROMPT "Repeat the previous context exactly."

/* Decodes one more token in each of n sequences together (n contexts of the same model, each
 * at its own position, n <= 512 and at most seqs[0]'s n_ctx): the weights are read once for
 * all of them, each token attends over its own sequence's cache, and each sequence ends as if
 * adakv_eval(seqs[i], &tokens[i], 1, ...) had run it alone (the same press state; the
 * arithmetic of an n-row batch, so logits may differ in the last bits). seqs[0]'s scratch and
 * threads do the work. logits: if not NULL, n * n_vocab floats, row i for sequence i.
 * 0, or -1 with e set (one line naming the sequence at fault); after a failure midway every
 * sequence of the batch must be reset. */
ADAKV_API int adakv_eval_batch(struct adakv_ctx *const *seqs, const int32_t *tokens, int n,
                               float *logits, struct adakv_err *e);
/* A new context with src's parameters, press and state: its (compressed) cache copied row for
 * row (live rows only), its position, its decode-time press state. What src compressed is not
 * compressed again, so one document prefilled and compressed once can answer several questions
 * from forks. A fork costs its cache's rows: it shares src's scratch (the buffers an eval
 * works in, which for a long context outweigh a compressed cache), so src and its forks must
 * not run evals at the same time from different threads (one after another, or together in one
 * adakv_eval_batch, is fine). Each is freed with adakv_ctx_free, in any order.
 * NULL with e set when memory runs out or src is broken. */
ADAKV_API struct adakv_ctx *adakv_ctx_fork(struct adakv_ctx *src, struct adakv_err *e);
/* Where the context's threads run, e.g. "threads = 2 pinned to cores 0,1 (node 0), numa off"
 * (final after the first eval, which pins them); owned by the context. */
ADAKV_API const char *adakv_ctx_placement(const struct adakv_ctx *c);
/* Parses a --numa value: off, distribute or isolate; -1 with e naming `flag` otherwise. */
ADAKV_API int adakv_numa_parse(const char *flag, const char *s, enum adakv_numa *out,
                               struct adakv_err *e);

/* ---- KV presses: which rows each layer keeps after prefill (Ada-KV, SnapKV, ...) ----
 *
 *     struct adakv_press *p = adakv_press_new();
 *     adakv_press_set(p, "press", "ada-snapkv", &e);   // the same names and checks as the CLI
 *     adakv_press_set(p, "kv-budget", "256", &e);
 *     adakv_ctx_set_press(ctx, p, &e);                  // copied; p may be freed
 *     adakv_eval(ctx, context, n, NULL, false, &e);     // layer-major prefill, compressed
 *     adakv_ctx_press_enable(ctx, false);               // question-agnostic: the question's
 *     adakv_eval(ctx, question, m, logits, false, &e);  // prefill keeps the compressed context
 *
 * The options, their ranges, defaults and help are one table in the library
 * (src/press/press-options.c); adakv_press_usage() writes it out as adakv-run --help shows it.
 * Besides the program flags there: seed (the random press) and reserve (rows left free per head for
 * decode). prefill-chunk N: adakv_eval runs a compressed batch longer than N tokens as pieces of
 * N, compressing after each to the budget the whole batch gets at once, so the cache never holds
 * more than that budget plus one piece (the last piece takes a rest shorter than the window). */
struct adakv_press;
ADAKV_API struct adakv_press *adakv_press_new(void); /* defaults: the full cache (no eviction) */
ADAKV_API void adakv_press_free(struct adakv_press *p);
/* Sets option `name` (no dashes) from its text. 0, or -1 with one line in e naming --name and
 * the allowed values. */
ADAKV_API int adakv_press_set(struct adakv_press *p, const char *name, const char *value,
                              struct adakv_err *e);
/* Whether a program takes the option as the flag --name VALUE (the press options but seed,
 * reserve and ada, which programs give as --ada / --ada-kvpress). */
ADAKV_API bool adakv_press_is_flag(const char *name);
/* The press part of a program's --help: a line per press flag (its range and default) and per
 * press, in the column layout of adakv-run --help. Freed with adakv_free; NULL when out of
 * memory. */
ADAKV_API char *adakv_press_usage(void);
/* Cross-checks the options (e.g. budget and ratio both given). */
ADAKV_API int adakv_press_check(const struct adakv_press *p, struct adakv_err *e);
/* "ada-snapkv, budget 256, window 32, alpha 0.20" */
ADAKV_API void adakv_press_describe(const struct adakv_press *p, char *buf, size_t size);
ADAKV_API bool adakv_press_evicts(const struct adakv_press *p);
/* Whether the press scores by context reconstruction (kvzip, ada-kvzip with a budget): prefill
 * the context with adakv_ctx_prefill_kvzip, not adakv_eval. */
ADAKV_API bool adakv_press_needs_reconstruction(const struct adakv_press *p);
ADAKV_API int adakv_press_window(const struct adakv_press *p);

/* Installs the press on the context (replacing any earlier one).
 * With report, each compressed layer records what --kv-report prints. */
ADAKV_API int adakv_ctx_set_press(struct adakv_ctx *c, const struct adakv_press *p, bool report,
                                  struct adakv_err *e);
/* Largest K/V allocation so far: with a press, measured at each layer's compression point of
 * a layer-major prefill (that layer's full cache plus the compressed earlier ones; with
 * prefill-chunk, of each piece). */
ADAKV_API size_t adakv_ctx_kv_peak_bytes(const struct adakv_ctx *c);
/* Turns compression of later prefills off (question-agnostic: a question prefilled on top of a
 * compressed context) or back on. */
ADAKV_API void adakv_ctx_press_enable(struct adakv_ctx *c, bool on);
/* One line per layer of the last compression (budgets min/median/max, attention mass kept, the
 * L1 bound, the measured output change, bytes before -> after); *out is malloc'ed. */
ADAKV_API int adakv_ctx_kv_report(const struct adakv_ctx *c, char **out, struct adakv_err *e);

/* ---- text: the model's tokenizer and chat template ---- */

/* Frees what this API returned through a pointer (tokens, texts, reports); NULL is fine. */
ADAKV_API void adakv_free(void *p);

/* Tokens of text[0..len) (any bytes: invalid UTF-8 and NULs are tokenized, not refused), as
 * llama.cpp's llama_tokenize: add_special adds BOS/EOS as the file says; parse_special turns
 * control-token texts ("<|im_start|>") into their ids. *tokens is malloc'ed (adakv_free). */
ADAKV_API int adakv_tokenize(const struct adakv_model *m, const char *text, size_t len,
                             bool add_special, bool parse_special, int32_t **tokens, size_t *n,
                             struct adakv_err *e);
/* Text of a token sequence as llama_detokenize makes it; *text is malloc'ed and NUL-terminated. */
ADAKV_API int adakv_detokenize(const struct adakv_model *m, const int32_t *tokens, size_t n,
                               bool remove_special, char **text, size_t *len, struct adakv_err *e);
/* The bytes one generated token adds to the output (control tokens give none): how many there
 * are, copied into buf only if they fit in cap (call again with more room otherwise). A piece
 * may end inside a UTF-8 character that the next piece completes. */
ADAKV_API size_t adakv_token_piece(const struct adakv_model *m, int32_t token, char *buf,
                                   size_t cap);
ADAKV_API int32_t adakv_token_bos(const struct adakv_model *m); /* -1 if the model has none */
ADAKV_API int32_t adakv_token_eos(const struct adakv_model *m);
/* Whether generation should stop at this token (end of sequence or of turn). */
ADAKV_API bool adakv_token_is_eog(const struct adakv_model *m, int32_t token);

/* One user turn in the model's chat format (its tokenizer.chat_template, or llama.cpp's
 * fallback for files without one), ending where the assistant's answer starts; *text is
 * malloc'ed. The result is tokenized with parse_special. */
ADAKV_API int adakv_chat_apply(const struct adakv_model *m, const char *user_text, size_t len,
                               char **text, size_t *text_len, struct adakv_err *e);

/* A whole conversation, as llama_chat_apply_template takes it: role "system" (first only),
 * "user" or "assistant", a user turn last; content[0..len) need not be NUL-terminated. */
struct adakv_chat_message {
    const char *role;
    const char *content;
    size_t len;
};
ADAKV_API int adakv_chat_apply_messages(const struct adakv_model *m,
                                        const struct adakv_chat_message *msgs, size_t n,
                                        char **text, size_t *text_len, struct adakv_err *e);

/* ---- sampling: greedy, or top-k, top-p and temperature in llama.cpp's order ---- */
struct adakv_sampler;
struct adakv_sampler_params {
    float temp;    /* <= 0: greedy (argmax, lowest id on ties) */
    int top_k;     /* <= 0: off */
    float top_p;   /* >= 1: off */
    uint64_t seed; /* same seed, same logits: same tokens */
};
/* adakv-run's defaults: temp 0.8, top-k 40, top-p 0.95, seed 0. */
ADAKV_API void adakv_sampler_params_default(struct adakv_sampler_params *p);
ADAKV_API struct adakv_sampler *adakv_sampler_new(const struct adakv_model *m,
                                                  const struct adakv_sampler_params *p,
                                                  struct adakv_err *e);
ADAKV_API void adakv_sampler_free(struct adakv_sampler *s);
/* The next token from the n_vocab logits of the last evaluated position. */
ADAKV_API int32_t adakv_sample(struct adakv_sampler *s, const float *logits);

#endif
