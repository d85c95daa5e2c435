/* adakv_model_load: open and validate the GGUF file, pick the architecture named by
 * general.architecture, read its hyperparameters, bind its tensors (type and shape checked),
 * load the tokenizer. Every failure is one line naming the file and what is wrong. */
#include "model.h"

#include <omp.h>
#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "cpu.h"
#include "decode-pack.h"
#include "prefill-gemm.h"
#include "quant.h"
#include "tensor-type.h"
#include "tokenizer.h"

void model_type_counts(const struct gguf_file *f, char *buf, size_t size) {
    uint64_t counts[TENSOR_TYPE_COUNT];
    gguf_count_tensor_types(f, counts);
    buf[0] = '\0';
    size_t off = 0;
    for (;;) {
        int best = -1; /* most frequent type not yet printed */
        for (int t = 0; t < TENSOR_TYPE_COUNT; t++)
            if (counts[t] && (best < 0 || counts[t] > counts[best]))
                best = t;
        if (best < 0)
            return;
        const int n = snprintf(buf + off, size - off, "%s%s: %llu", off ? ", " : "",
                               tensor_type_name((uint32_t)best), (unsigned long long)counts[best]);
        if (n < 0 || (size_t)n >= size - off) {
            if (size >= 4)
                memcpy(buf + (off + 4 <= size ? off : size - 4), "...", 4);
            return;
        }
        off += (size_t)n;
        counts[best] = 0;
    }
}

static char *copy_str(struct gguf_str s) {
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

void adakv_model_free(struct adakv_model *m) {
    if (!m)
        return;
    if (m->tok)
        tokenizer_free(m->tok);
    prefill_gemm_free(m->gemm);
    decode_pack_free(m->dpack);
    free(m->w.layers);
    free(m->name);
    if (m->gguf)
        gguf_close(m->gguf);
    free(m);
}

/* The arch registered under `name` (models/registry.c's table), or NULL. */
static const struct arch *arch_find(struct gguf_str name) {
    for (const struct arch *const *a = arch_registry; *a; a++)
        if (gguf_str_eq(name, (*a)->name))
            return *a;
    return NULL;
}

static int load_arch(struct adakv_model *m, struct adakv_err *e) {
    const struct gguf_file *f = m->gguf;
    struct gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, e))
        return -1;
    m->arch = arch_find(arch);
    if (!m->arch)
        return err_set(e, "%s: unknown architecture '%.*s' (supported: %s)", f->path,
                       (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, arch_registry_names);
    if (m->arch->load_hparams(f, &m->hp, e))
        return -1;
    if (m->arch->bind_tensors(f, &m->hp, &m->w, e))
        return -1;
    return 0;
}

enum { LAYER_LINEARS = 7 };

/* The linear weights of every layer, in one array [n_layer * LAYER_LINEARS]: what the prompt
 * GEMMs prepare (the output head is left out there: prefill needs logits of the last token
 * only) and, with the output head, what the decode repack does. */
static void layer_linears(const struct adakv_model *m, const struct gguf_tensor **out) {
    for (int il = 0; il < m->hp.n_layer; il++) {
        const struct model_layer *L = &m->w.layers[il];
        const struct gguf_tensor *l[LAYER_LINEARS] = {L->wq,     L->wk,   L->wv,    L->wo,
                                                      L->w_gate, L->w_up, L->w_down};
        memcpy(out + (size_t)il * LAYER_LINEARS, l, sizeof l);
    }
}

/* True when prompt batches can multiply t without a dense copy: a blocked quantized kernel over
 * its native rows (gemm) or over its repacked tiles (gemm_rp). */
static bool quantized_prompt_kernel(const struct gguf_tensor *t) {
    const struct quant_kernels *k = quant_kernels(t->type);
    return k && (k->gemm || (k->gemm_rp && k->rp_tile));
}

/* Prepacks layer linear weights for oneDNN (prefill-gemm.h) as asked: every one for f32/bf16;
 * for auto only those without a quantized prompt kernel (float weights, or types whose kernels
 * the ISA lacks), since the dense copy costs 2-4x the file in memory and load time. */
static int load_prefill_gemm(struct adakv_model *m, enum adakv_prefill_gemm want,
                             const struct gguf_tensor **ts, int n, struct adakv_err *e) {
    const struct simd_cpu_flags *cpu = simd_cpu_flags();
    const bool x86_simd = simd_isa() != SIMD_ISA_SCALAR && !cpu->neon;
    enum prefill_gemm_type type;
    int n_dense = n;
    switch (want) {
    case ADAKV_PREFILL_GEMM_QUANT:
        return 0;
    case ADAKV_PREFILL_GEMM_F32:
        type = PREFILL_GEMM_F32;
        break;
    case ADAKV_PREFILL_GEMM_BF16:
        /* oneDNN 2.x has bf16 matmuls for AVX-512 cores only; elsewhere its error would not
         * say why */
        if (simd_isa() != SIMD_ISA_AVX512)
            return err_set(e, "%s: --prefill-gemm bf16 needs AVX-512 (this CPU runs %s); use f32",
                           m->gguf->path, simd_isa_name(simd_isa()));
        type = PREFILL_GEMM_BF16;
        break;
    default: {
        if (!x86_simd)
            return 0;
        type = cpu->avx512_bf16 && simd_isa() == SIMD_ISA_AVX512 ? PREFILL_GEMM_BF16
                                                                 : PREFILL_GEMM_F32;
        n_dense = 0;      /* ts reordered: the weights that need the copy first */
        size_t dense = 0; /* a dense copy above 4 GiB is not worth it by default */
        for (int i = 0; i < n; i++)
            if (!quantized_prompt_kernel(ts[i])) {
                const struct gguf_tensor *t = ts[i];
                ts[i] = ts[n_dense], ts[n_dense++] = t;
                dense += (size_t)(t->ne[0] * t->ne[1]) * (type == PREFILL_GEMM_BF16 ? 2 : 4);
            }
        if (n_dense == 0 || dense > ((size_t)4 << 30))
            return 0;
    }
    }
    const int threads = m->n_threads > 0 ? m->n_threads : omp_get_num_procs();
    m->gemm = prefill_gemm_create(type, ts, n_dense, threads, e);
    return m->gemm ? 0 : -1;
}

/* The weight copies: oneDNN's prompt GEMMs (layers) and the repacked tiles (layers and head). */
static int load_weight_copies(struct adakv_model *m, enum adakv_prefill_gemm want,
                              struct adakv_err *e) {
    const int n = m->hp.n_layer * LAYER_LINEARS;
    const struct gguf_tensor **ts = malloc((size_t)(n + 1) * sizeof *ts);
    if (!ts)
        return err_set(e, "%s: out of memory", m->gguf->path);
    layer_linears(m, ts);
    ts[n] = m->w.output;
    /* auto: prompt batches of repacked weights on AMX tiles where the CPU has them */
    m->prefill_amx = want == ADAKV_PREFILL_GEMM_AUTO && simd_amx();
    int rc = load_prefill_gemm(m, want, ts, n, e);
    if (!rc) {
        const double t0 = omp_get_wtime();
        rc = decode_pack_create(m->gguf, ts, n + 1, &m->dpack, e);
        m->repack_ms = (omp_get_wtime() - t0) * 1e3;
        if (!rc) /* where decode will stream them from sets its prefetch distance (cpu.h) */
            simd_set_decode_stream_bytes(decode_pack_bytes(m->dpack));
    }
    free(ts);
    return rc ? -1 : 0;
}

int adakv_prefill_gemm_parse(const char *flag, const char *s, enum adakv_prefill_gemm *out,
                             struct adakv_err *e) {
    static const char *const names[] = {"auto", "quant", "f32", "bf16"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum adakv_prefill_gemm)i;
            return 0;
        }
    return err_set(e, "%s: expected auto, quant, f32 or bf16, got '%s'", flag, s);
}

struct adakv_model *model_bind(struct gguf_file *f, struct adakv_err *e) {
    struct adakv_model *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(e, "%s: out of memory", f->path);
        gguf_close(f);
        return NULL;
    }
    m->gguf = f;
    if (load_arch(m, e))
        goto fail;
    struct gguf_str name = {0, ""};
    if (gguf_find(f, "general.name") && gguf_get_str(f, "general.name", &name, e))
        goto fail;
    if (!(m->name = copy_str(name))) {
        err_set(e, "%s: out of memory", f->path);
        goto fail;
    }
    if (gguf_find(f, "tokenizer.ggml.model")) {
        if (!(m->tok = tokenizer_load(f, e)))
            goto fail;
        if (tokenizer_n_vocab(m->tok) > m->hp.n_vocab) {
            err_set(e, "%s: tokenizer has %d tokens but the model only %d embeddings", f->path,
                    tokenizer_n_vocab(m->tok), m->hp.n_vocab);
            goto fail;
        }
    }
    model_type_counts(f, m->type_counts, sizeof m->type_counts);
    return m;
fail:
    adakv_model_free(m);
    return NULL;
}

/* The weight copies are made on a thread of their own, joined here. Their OpenMP regions leave a
 * pool of workers with the thread that ran them (libgomp keeps one per thread); left with the
 * caller beside the pool of the thread that later runs the evals (adakv-server loads on its main
 * thread and decodes on its engine thread), they made 4 OpenMP threads on 2 CPUs, libgomp then
 * throttled its spinning at barriers, and the eval thread's worker slept on a futex in every
 * parallel region: one client of adakv-server decoded at 9.6 ms a step, 2.5 with one pool (38%
 * of its samples had been the kernel's context switches). A pool ends with its thread. */
struct copies_job {
    struct adakv_model *m;
    enum adakv_prefill_gemm gemm;
    struct adakv_err *e;
    int rc;
};

static void *copies_main(void *arg) {
    struct copies_job *j = arg;
    j->rc = load_weight_copies(j->m, j->gemm, j->e);
    return NULL;
}

struct adakv_model *adakv_model_load(const char *path, const struct adakv_model_params *p,
                                     struct adakv_err *e) {
    struct gguf_file *f = gguf_open(path, e);
    struct adakv_model *m = f ? model_bind(f, e) : NULL;
    if (!m)
        return NULL;
    m->n_threads = p && p->n_threads > 0 ? p->n_threads : 0;
    struct copies_job j = {m, p ? p->prefill_gemm : ADAKV_PREFILL_GEMM_AUTO, e, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, copies_main, &j))
        err_set(e, "%s: cannot start a thread to repack the weights", path);
    else
        pthread_join(t, NULL);
    if (j.rc) {
        adakv_model_free(m);
        return NULL;
    }
    return m;
}

void adakv_model_get_info(const struct adakv_model *m, struct adakv_model_info *out) {
    memset(out, 0, sizeof *out);
    out->arch = m->arch->name;
    out->name = m->name;
    out->n_vocab = m->hp.n_vocab;
    out->n_ctx_train = m->hp.n_ctx_train;
    out->n_layer = m->hp.n_layer;
    out->n_embd = m->hp.n_embd;
    out->n_head = m->hp.n_head;
    out->n_head_kv = m->hp.n_head_kv;
    out->head_dim = m->hp.head_dim;
    out->n_ff = m->hp.n_ff;
    snprintf(out->type_counts, sizeof out->type_counts, "%s", m->type_counts);
    if (m->gemm)
        snprintf(out->prefill_gemm, sizeof out->prefill_gemm, "oneDNN %s, %.1f MiB",
                 prefill_gemm_name(m->gemm), (double)prefill_gemm_bytes(m->gemm) / (1 << 20));
    else
        snprintf(out->prefill_gemm, sizeof out->prefill_gemm, "%s",
                 m->prefill_amx ? "AMX bf16 tiles over the repacked weights" : "quantized");
    snprintf(
        out->weights, sizeof out->weights,
        "%.1f MiB mapped, %.1f MiB repacked in %.0f ms (%.1f MiB of the file's pages released)",
        (double)m->gguf->size / (1 << 20), (double)decode_pack_bytes(m->dpack) / (1 << 20),
        m->repack_ms, (double)decode_pack_released(m->dpack) / (1 << 20));
}

const struct tokenizer *adakv_model_tokenizer(const struct adakv_model *m) {
    return m->tok;
}
const struct gguf_file *adakv_model_gguf(const struct adakv_model *m) {
    return m->gguf;
}
