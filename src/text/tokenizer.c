/* Tokenizer loading from GGUF metadata: vocab and merge hash tables, model-family defaults, the
 * special token ids the file names, accessors. The special tokens it does not name and the
 * end-of-generation set are found in tokenizer-special.c; encoding and decoding are in
 * tokenizer-text.c, the BPE and SPM merge loops in tokenizer-bpe.c and tokenizer-spm.c.
 *
 * Defaults follow llama.cpp's llama_vocab::impl::load (read as facts): which model family adds
 * BOS, which pre-tokenizer a tokenizer.ggml.pre name means. */
#include "tokenizer-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- hash tables */

uint64_t tok_hash(const char *s, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) { /* FNV-1a: short keys, no alignment needs */
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t tok_mix(uint64_t h) { /* spread FNV's weak low bits before masking */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int index_init(struct tok_index *ix, size_t n, struct adakv_err *e) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return err_set(e, "tokenizer: out of memory for a %zu-entry hash table", n);
    ix->mask = cap - 1;
    return 0;
}

int32_t tok_lookup(const struct tokenizer *t, const char *text, size_t len) {
    size_t i = tok_mix(tok_hash(text, len, TOK_HASH_SEED)) & t->vocab_index.mask;
    for (;; i = (i + 1) & t->vocab_index.mask) {
        uint32_t s = t->vocab_index.slots[i];
        if (!s)
            return -1;
        const struct tok_token *tk = &t->tokens[s - 1];
        if (tk->len == len && memcmp(tk->text, text, len) == 0)
            return (int32_t)(s - 1);
    }
}

/* Later duplicates replace earlier ones, as llama.cpp's token_to_id[word] = i does. */
static void vocab_insert(struct tokenizer *t, uint32_t id) {
    const struct tok_token *tk = &t->tokens[id];
    size_t i = tok_mix(tok_hash(tk->text, tk->len, TOK_HASH_SEED)) & t->vocab_index.mask;
    for (;; i = (i + 1) & t->vocab_index.mask) {
        uint32_t s = t->vocab_index.slots[i];
        if (!s || (t->tokens[s - 1].len == tk->len &&
                   memcmp(t->tokens[s - 1].text, tk->text, tk->len) == 0)) {
            t->vocab_index.slots[i] = id + 1;
            return;
        }
    }
}

int32_t tok_merge_rank(const struct tokenizer *t, const char *l, size_t ln, const char *r,
                       size_t rn) {
    if (!t->n_merges)
        return -1;
    uint64_t h = tok_hash(l, ln, TOK_HASH_SEED);
    h = tok_hash(" ", 1, h);
    h = tok_hash(r, rn, h);
    size_t i = tok_mix(h) & t->merge_index.mask;
    for (;; i = (i + 1) & t->merge_index.mask) {
        uint32_t s = t->merge_index.slots[i];
        if (!s)
            return -1;
        const struct tok_merge *m = &t->merges[s - 1];
        /* The stored split (first space from offset 1) must fall exactly between l and r. */
        if (m->len == ln + 1 + rn && m->split == ln && memcmp(m->text, l, ln) == 0 &&
            memcmp(m->text + ln + 1, r, rn) == 0)
            return (int32_t)(s - 1);
    }
}

/* The first occurrence of a merge line keeps its rank (llama.cpp: bpe_ranks.emplace). */
static void merge_insert(struct tokenizer *t, uint32_t rank) {
    const struct tok_merge *m = &t->merges[rank];
    size_t i = tok_mix(tok_hash(m->text, m->len, TOK_HASH_SEED)) & t->merge_index.mask;
    for (;; i = (i + 1) & t->merge_index.mask) {
        uint32_t s = t->merge_index.slots[i];
        if (!s) {
            t->merge_index.slots[i] = rank + 1;
            return;
        }
        const struct tok_merge *o = &t->merges[s - 1];
        if (o->len == m->len && memcmp(o->text, m->text, m->len) == 0)
            return;
    }
}

int tok_ids_push(struct tok_ids *ids, int32_t id, struct adakv_err *e) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return err_set(e, "tokenizer: out of memory for %zu token ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

/* ---------------------------------------------------------------- metadata helpers */

static const struct gguf_kv *find_typed(const struct gguf_file *f, const char *key,
                                        enum gguf_type type) {
    const struct gguf_kv *kv = gguf_find(f, key);
    return kv && kv->type == type ? kv : NULL;
}

/* Appends one warning line to t->warning (dropped if it does not fit: the first ones matter). */
static void tok_warn(struct tokenizer *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tok_warn(struct tokenizer *t, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t used = strlen(t->warning);
    if (used + !!used + strlen(line) + 1 > sizeof t->warning)
        return;
    snprintf(t->warning + used, sizeof t->warning - used, "%s%s", used ? "\n" : "", line);
}

int tok_read_id(struct tokenizer *t, const struct gguf_file *f, const char *key, int32_t *id,
                struct adakv_err *e) {
    if (!gguf_find(f, key))
        return 0;
    uint32_t v;
    if (gguf_get_u32(f, key, &v, e))
        return -1;
    if (v < (uint32_t)t->n_vocab)
        *id = (int32_t)v;
    else if (*id >= 0)
        tok_warn(t, "%s: %s = %u is outside the vocabulary (%d tokens): using %d", f->path, key, v,
                 t->n_vocab, *id);
    else
        tok_warn(t, "%s: %s = %u is outside the vocabulary (%d tokens): ignored", f->path, key, v,
                 t->n_vocab);
    return 0;
}

static int read_bool(const struct gguf_file *f, const char *key, bool *out, struct adakv_err *e) {
    if (!gguf_find(f, key))
        return 0;
    return gguf_get_bool(f, key, out, e);
}

/* Reads element i of an INT32 or FLOAT32 array entry (values may be unaligned). */
static float arr_f32(const struct gguf_kv *kv, uint64_t i) {
    if (kv->arr_type == GGUF_TYPE_INT32) {
        int32_t v;
        memcpy(&v, kv->data + 4 * i, 4);
        return (float)v;
    }
    float v;
    memcpy(&v, kv->data + 4 * i, 4);
    return v;
}

/* Pre-tokenizer names llama.cpp knows for the regex sets adakv implements. */
struct pre_entry {
    const char *name;
    enum tok_pre pre;
    bool clean_spaces, ignore_merges, add_bos;
};
static const struct pre_entry pre_table[] = {
    {"default", TOK_PRE_DEFAULT, true, false, false},
    {"llama3", TOK_PRE_LLAMA3, true, true, true},
    {"llama-v3", TOK_PRE_LLAMA3, true, true, true},
    {"llama-bpe", TOK_PRE_LLAMA3, true, true, true},
    {"falcon3", TOK_PRE_LLAMA3, true, true, true},
    {"falcon-h1", TOK_PRE_LLAMA3, true, true, true},
    {"pixtral", TOK_PRE_LLAMA3, true, true, true},
    {"midm-2.0", TOK_PRE_LLAMA3, true, true, true},
    {"lfm2", TOK_PRE_LLAMA3, true, true, true},
    {"dbrx", TOK_PRE_LLAMA3, true, false, false},
    {"smaug-bpe", TOK_PRE_LLAMA3, true, false, false},
    {"smollm", TOK_PRE_SMOLLM, false, false, false},
    {"starcoder", TOK_PRE_SMOLLM, true, false, false},
    {"refact", TOK_PRE_SMOLLM, true, false, false},
    {"command-r", TOK_PRE_SMOLLM, false, false, false},
    {"codeshell", TOK_PRE_SMOLLM, true, false, false},
    {"exaone", TOK_PRE_SMOLLM, true, false, false},
    {"minerva-7b", TOK_PRE_SMOLLM, true, false, false},
    {"mellum2", TOK_PRE_SMOLLM, true, false, false},
    {"gpt-2", TOK_PRE_GPT2, true, false, false},
    {"gpt2", TOK_PRE_GPT2, true, false, false},
    {"phi-2", TOK_PRE_GPT2, true, false, false},
    {"mpt", TOK_PRE_GPT2, true, false, false},
    {"olmo", TOK_PRE_GPT2, true, false, false},
    {"jais", TOK_PRE_GPT2, true, false, false},
    {"exaone4", TOK_PRE_GPT2, true, false, false},
    {"trillion", TOK_PRE_GPT2, false, false, false},
    {"granite-docling", TOK_PRE_GPT2, false, false, false},
    {"qwen2", TOK_PRE_QWEN2, true, false, false},
    {"deepseek-r1-qwen", TOK_PRE_QWEN2, true, false, false},
    {"stablelm2", TOK_PRE_QWEN2, true, false, false},
    {"megrez", TOK_PRE_QWEN2, true, false, false},
    {"hunyuan", TOK_PRE_QWEN2, false, false, false},
    {"solar-open", TOK_PRE_QWEN2, false, false, false},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- load */

static unsigned attr_of_type(int32_t type) {
    switch (type) {
    case 1:
        return TOKEN_ATTR_NORMAL;
    case 2:
        return TOKEN_ATTR_UNKNOWN;
    case 3:
        return TOKEN_ATTR_CONTROL;
    case 4:
        return TOKEN_ATTR_USER_DEFINED;
    case 5:
        return TOKEN_ATTR_UNUSED;
    case 6:
        return TOKEN_ATTR_BYTE;
    default:
        return TOKEN_ATTR_UNDEFINED;
    }
}

static int load_model_kind(struct tokenizer *t, const struct gguf_file *f, struct adakv_err *e) {
    struct gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, e))
        return -1;
    if (gguf_str_eq(model, "gpt2")) {
        t->model = TOK_MODEL_BPE;
        t->bos = t->eos = 11; /* llama.cpp's BPE defaults, used only without the keys */
        t->unk = -1;
        t->add_bos = false;
        t->add_space_prefix = false;
        t->clean_spaces = true;
    } else if (gguf_str_eq(model, "llama")) {
        t->model = TOK_MODEL_SPM;
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
        t->clean_spaces = false;
        snprintf(t->pre_name, sizeof t->pre_name, "spm");
        return 0;
    } else {
        return err_set(e, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2 or llama)",
                       f->path, (int)(model.len > 64 ? 64 : model.len), model.ptr);
    }

    const struct gguf_kv *pre = find_typed(f, "tokenizer.ggml.pre", GGUF_TYPE_STRING);
    struct gguf_str name = {0, ""};
    if (pre && gguf_get_str(f, "tokenizer.ggml.pre", &name, e))
        return -1;
    if (!pre || name.len == 0) {
        t->pre = TOK_PRE_DEFAULT;
        snprintf(t->pre_name, sizeof t->pre_name, "default");
        tok_warn(t,
                 "%s: no tokenizer.ggml.pre: using llama.cpp's default pre-tokenizer, "
                 "tokenization may be wrong",
                 f->path);
        return 0;
    }
    for (size_t i = 0; i < COUNT(pre_table); i++) {
        if (gguf_str_eq(name, pre_table[i].name)) {
            t->pre = pre_table[i].pre;
            t->clean_spaces = pre_table[i].clean_spaces;
            t->ignore_merges = pre_table[i].ignore_merges;
            t->add_bos = pre_table[i].add_bos;
            snprintf(t->pre_name, sizeof t->pre_name, "%s", pre_table[i].name);
            return 0;
        }
    }
    t->pre = TOK_PRE_GPT2;
    snprintf(t->pre_name, sizeof t->pre_name, "gpt2");
    tok_warn(t,
             "%s: unknown tokenizer.ggml.pre '%.*s': using the GPT-2 pre-tokenizer, "
             "tokenization may differ from the model's",
             f->path, (int)(name.len > 48 ? 48 : name.len), name.ptr);
    return 0;
}

/* Merges whose left or right side or result is not a token: llama.cpp keeps them without a word
 * (a merged symbol that is not a token is emitted as byte tokens), so they stay; the warning
 * counts them and names the first, as such a file was most likely made by a broken converter. */
static int check_merges(struct tokenizer *t, const struct gguf_file *f, struct adakv_err *e) {
    size_t cap = 0;
    for (uint32_t i = 0; i < t->n_merges; i++)
        cap = t->merges[i].len > cap ? t->merges[i].len : cap;
    char *joined = malloc(cap ? cap : 1);
    if (!joined)
        return err_set(e, "tokenizer: out of memory");
    uint32_t n_bad = 0, first = 0;
    for (uint32_t i = 0; i < t->n_merges; i++) {
        const struct tok_merge *m = &t->merges[i];
        if (!m->split)
            continue; /* no space: never matches, nothing to check */
        const uint32_t rn = m->len - m->split - 1;
        memcpy(joined, m->text, m->split);
        memcpy(joined + m->split, m->text + m->split + 1, rn);
        if (tok_lookup(t, m->text, m->split) >= 0 &&
            tok_lookup(t, m->text + m->split + 1, rn) >= 0 &&
            tok_lookup(t, joined, m->split + rn) >= 0)
            continue;
        if (!n_bad++)
            first = i;
    }
    free(joined);
    if (n_bad) {
        const struct tok_merge *m = &t->merges[first];
        tok_warn(t,
                 "%s: tokenizer.ggml.merges: %u of %u merges name a token not in the vocabulary "
                 "(first: #%u '%.*s'): kept, as llama.cpp does",
                 f->path, n_bad, t->n_merges, first, (int)(m->len > 40 ? 40 : m->len), m->text);
    }
    return 0;
}

static int load_vocab(struct tokenizer *t, const struct gguf_file *f, struct adakv_err *e) {
    const struct gguf_kv *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, e);
    if (!toks)
        return -1;
    if (toks->arr_n == 0 || toks->arr_n > INT32_MAX / 2)
        return err_set(e, "%s: tokenizer.ggml.tokens has %llu entries", f->path,
                       (unsigned long long)toks->arr_n);
    uint64_t n = toks->arr_n;
    t->n_vocab = (int32_t)n;

    const struct gguf_kv *types = gguf_find(f, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_TYPE_ARRAY || types->arr_type != GGUF_TYPE_INT32))
        return err_set(e, "%s: tokenizer.ggml.token_type is not an int32 array", f->path);
    if (types && types->arr_n < n)
        return err_set(e, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", f->path,
                       (unsigned long long)types->arr_n, (unsigned long long)n);
    const struct gguf_kv *scores = gguf_find(f, "tokenizer.ggml.scores");
    if (scores && (scores->type != GGUF_TYPE_ARRAY ||
                   (scores->arr_type != GGUF_TYPE_FLOAT32 && scores->arr_type != GGUF_TYPE_INT32)))
        return err_set(e, "%s: tokenizer.ggml.scores is not a float32 or int32 array", f->path);
    if (scores && scores->arr_n < n)
        return err_set(e, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens", f->path,
                       (unsigned long long)scores->arr_n, (unsigned long long)n);
    /* Longer arrays: llama.cpp reads the first n entries and says nothing; so do we, aloud. */
    if (types && types->arr_n > n)
        tok_warn(t, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens: extra ignored",
                 f->path, (unsigned long long)types->arr_n, (unsigned long long)n);
    if (scores && scores->arr_n > n)
        tok_warn(t, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens: extra ignored",
                 f->path, (unsigned long long)scores->arr_n, (unsigned long long)n);

    const struct gguf_kv *merges = NULL;
    if (t->model == TOK_MODEL_BPE) {
        merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, e);
        if (!merges)
            return -1;
        if (merges->arr_n > UINT32_MAX / 2)
            return err_set(e, "%s: tokenizer.ggml.merges has too many entries", f->path);
    }

    /* One arena for every string: token texts (empty ones become "[EMPTY_i]" like llama.cpp)
     * and merge lines. */
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++)
        bytes += toks->arr_strs[i].len + 24; /* room for "[EMPTY_i]" if it has to replace */
    if (merges)
        for (uint64_t i = 0; i < merges->arr_n; i++)
            bytes += merges->arr_strs[i].len;
    t->arena = malloc(bytes ? bytes : 1);
    t->tokens = calloc(n, sizeof *t->tokens);
    if (!t->arena || !t->tokens)
        return err_set(e, "tokenizer: out of memory for %llu tokens", (unsigned long long)n);
    if (index_init(&t->vocab_index, n, e))
        return -1;
    char *p = t->arena;
    for (uint64_t i = 0; i < n; i++) {
        struct tok_token *tk = &t->tokens[i];
        struct gguf_str s = toks->arr_strs[i];
        if (s.len > UINT32_MAX)
            return err_set(e, "%s: token %llu is too long", f->path, (unsigned long long)i);
        /* llama.cpp reads strings through a const char *, so a NUL ends the text. */
        s.len = strnlen(s.ptr, s.len);
        if (s.len) {
            memcpy(p, s.ptr, s.len);
            tk->len = (uint32_t)s.len;
        } else {
            tk->len = (uint32_t)snprintf(p, 24, "[EMPTY_%llu]", (unsigned long long)i);
        }
        tk->text = p;
        p += tk->len;
        tk->score = scores ? arr_f32(scores, i) : 0.0f;
        if (types) {
            int32_t ty;
            memcpy(&ty, types->data + 4 * i, 4);
            tk->attr = attr_of_type(ty);
        } else {
            tk->attr = TOKEN_ATTR_NORMAL;
        }
        vocab_insert(t, (uint32_t)i);
    }
    if (merges) {
        t->n_merges = (uint32_t)merges->arr_n;
        t->merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *t->merges);
        if (!t->merges || index_init(&t->merge_index, t->n_merges, e))
            return err_set(e, "tokenizer: out of memory for %u merges", t->n_merges);
        for (uint32_t i = 0; i < t->n_merges; i++) {
            struct gguf_str s = merges->arr_strs[i];
            s.len = strnlen(s.ptr, s.len); /* as for tokens: a NUL ends the line */
            struct tok_merge *m = &t->merges[i];
            memcpy(p, s.ptr, s.len);
            m->text = p;
            m->len = (uint32_t)s.len;
            p += s.len;
            /* Split at the first space found from byte 1 on; a line without one never matches
             * (llama.cpp stores it as the pair ("", "")). */
            const char *sp = s.len > 1 ? memchr(m->text + 1, ' ', s.len - 1) : NULL;
            if (!sp)
                continue;
            m->split = (uint32_t)(sp - m->text);
            merge_insert(t, i);
        }
        return check_merges(t, f, e);
    }
    return 0;
}

struct tokenizer *tokenizer_load(const struct gguf_file *f, struct adakv_err *e) {
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(e, "tokenizer: out of memory");
        return NULL;
    }
    t->eot = t->eom = -1;
    if (load_model_kind(t, f, e) || load_vocab(t, f, e))
        goto fail;
    if (t->bos >= t->n_vocab)
        t->bos = -1;
    if (t->eos >= t->n_vocab)
        t->eos = -1;
    if (t->unk >= t->n_vocab)
        t->unk = -1;
    /* pad and sep are read only to be checked: generation never uses them (llama.cpp reads
     * both; "seperator" is its spelling) */
    int32_t pad = -1, sep = -1;
    if (tok_read_id(t, f, "tokenizer.ggml.bos_token_id", &t->bos, e) ||
        tok_read_id(t, f, "tokenizer.ggml.eos_token_id", &t->eos, e) ||
        tok_read_id(t, f, "tokenizer.ggml.eot_token_id", &t->eot, e) ||
        tok_read_id(t, f, "tokenizer.ggml.eom_token_id", &t->eom, e) ||
        tok_read_id(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, e) ||
        tok_read_id(t, f, "tokenizer.ggml.padding_token_id", &pad, e) ||
        tok_read_id(t, f, "tokenizer.ggml.seperator_token_id", &sep, e) ||
        read_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos, e) ||
        read_bool(f, "tokenizer.ggml.add_eos_token", &t->add_eos, e) ||
        read_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, e))
        goto fail;
    if (tok_special_setup(t, f, e))
        goto fail;
    return t;
fail:
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(struct tokenizer *t) {
    if (!t)
        return;
    free(t->tokens);
    free(t->vocab_index.slots);
    free(t->merges);
    free(t->merge_index.slots);
    free(t->arena);
    free(t->eog);
    free(t->special);
    free(t);
}

/* ---------------------------------------------------------------- accessors */

int32_t tokenizer_n_vocab(const struct tokenizer *t) {
    return t->n_vocab;
}
int32_t tokenizer_bos(const struct tokenizer *t) {
    return t->bos;
}
int32_t tokenizer_eos(const struct tokenizer *t) {
    return t->eos;
}
int32_t tokenizer_eot(const struct tokenizer *t) {
    return t->eot;
}
bool tokenizer_adds_bos(const struct tokenizer *t) {
    return t->add_bos;
}
const char *tokenizer_warning(const struct tokenizer *t) {
    return t->warning[0] ? t->warning : NULL;
}
const char *tokenizer_model_name(const struct tokenizer *t) {
    return t->model == TOK_MODEL_BPE ? "gpt2" : "llama";
}
const char *tokenizer_pre_name(const struct tokenizer *t) {
    return t->pre_name;
}

bool tokenizer_is_eog(const struct tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

unsigned tokenizer_attr(const struct tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->tokens[id].attr : TOKEN_ATTR_UNDEFINED;
}

const char *tokenizer_token_text(const struct tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab)
        return NULL;
    *len = t->tokens[id].len;
    return t->tokens[id].text;
}

int32_t tokenizer_find(const struct tokenizer *t, const char *text, size_t len) {
    return tok_lookup(t, text, len);
}
