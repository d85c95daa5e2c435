/* Fuzz target: the GGUF reader and the model binding on the parsed file.
 *
 * The input is a GGUF image. It is parsed twice from memory (gguf_open_memory): once accepting
 * every known tensor type, as the adakv-gguf inspector does, with every metadata value read back
 * through the typed getters and array helpers; once as adakv-run opens it, followed by
 * model_bind (architecture hyperparameters, tensor binding, tokenizer), the model info, the
 * chat template of the file, a short encode/decode with the file's own vocabulary and the
 * memory plan of a context. The weight repacking of adakv_model_load is left out: it reads
 * tensor data the reader has already bounds-checked, and costs milliseconds per input. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "fuzz.h"
#include "model.h"
#include "tokenizer.h"

/* Reads every entry back by key, the way the loaders do. */
static void read_metadata(const struct gguf_file *f) {
    struct adakv_err e = {{0}};
    char key[256];
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, kv->key.len))
            continue; /* not reachable by a C-string lookup */
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if (gguf_find(f, key) != kv)
            abort(); /* the sorted index must find the entry it was built from */
        uint64_t u;
        uint32_t u32;
        int64_t s;
        float x;
        bool b;
        struct gguf_str str;
        (void)gguf_get_u64(f, key, &u, &e);
        (void)gguf_get_i64(f, key, &s, &e);
        (void)gguf_get_u32(f, key, &u32, &e);
        (void)gguf_get_f32(f, key, &x, &e);
        (void)gguf_get_bool(f, key, &b, &e);
        (void)gguf_get_str(f, key, &str, &e);
        if (kv->type != GGUF_TYPE_ARRAY)
            continue;
        (void)gguf_get_arr(f, key, kv->arr_type, &e);
        const uint64_t n = kv->arr_n < 64 ? kv->arr_n : 64; /* enough to touch every element kind */
        for (uint64_t j = 0; j < n; j++) {
            (void)gguf_arr_i64(kv, j, &s);
            (void)gguf_arr_f32(kv, j, &x);
            if (kv->arr_strs)
                (void)gguf_arr_str(kv, j);
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_find_tensor(f, f->tensors[i].name) != &f->tensors[i])
            abort();
    uint64_t counts[TENSOR_TYPE_COUNT];
    gguf_count_tensor_types(f, counts);
}

/* What adakv-run does with a bound model before the first token. */
static void use_model(const struct adakv_model *m) {
    struct adakv_err e = {{0}};
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    char *text = NULL;
    size_t len = 0;
    if (!chat_apply(m->gguf, "Hi <|im_end|> there", 19, &text, &len, &e) && m->tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (!tokenizer_encode(m->tok, text, len, true, true, &ids, &n, &e)) {
            char *back = NULL;
            if (!tokenizer_decode(m->tok, ids, n, true, true, &back, &len, &e))
                free(back);
        }
        free(ids);
    }
    free(text);
    struct adakv_ctx_params p;
    adakv_ctx_params_default(&p);
    p.n_ctx = info.n_ctx_train > 0 && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    p.n_threads = 1;
    struct adakv_mem_plan plan;
    adakv_ctx_plan(m, &p, &plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open_memory(data, size, "fuzz.gguf", GGUF_OPEN_ANY_KNOWN_TYPE, &e);
    if (!f)
        return 0; /* refused with any type allowed: refused by the strict open too */
    read_metadata(f);
    gguf_close(f);
    if (!(f = gguf_open_memory(data, size, "fuzz.gguf", 0, &e)))
        return 0;
    struct adakv_model *m = model_bind(f, &e); /* owns f from here, also on failure */
    if (m)
        use_model(m);
    adakv_model_free(m);
    return 0;
}
