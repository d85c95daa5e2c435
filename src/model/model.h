/* A loaded model: the mapped GGUF file, its architecture's hyperparameters and tensor views,
 * and the tokenizer. Immutable after adakv_model_load, so any number of contexts (and
 * threads) may share one model. */
#ifndef ADAKV_MODEL_H
#define ADAKV_MODEL_H

#include "adakv.h"
#include "arch.h"
#include "gguf.h"

struct prefill_gemm;
struct decode_pack;

struct adakv_model {
    struct gguf_file *gguf;  /* owned; weights are views into its mapping */
    struct tokenizer *tok;   /* owned; NULL when the file has no tokenizer.ggml.model */
    const struct arch *arch; /* static registry entry */
    struct model_hparams hp;
    struct model_weights w;    /* w.layers owned */
    char *name;                /* general.name or "", owned */
    char type_counts[256];     /* "Q4_1: 210, F32: 61, Q8_0: 1" */
    int n_threads;             /* from adakv_model_params; 0 = all cores */
    struct prefill_gemm *gemm; /* prepacked dense weights for prompt batches, or NULL */
    struct decode_pack *dpack; /* weights repacked into tiles (decode-pack.h), or NULL */
    double repack_ms;          /* wall time the repacking took at load */
    bool prefill_amx;          /* prompt batches on AMX tiles (--prefill-gemm auto, gemm-amx.h) */
};

/* The load without the weight copies: binds the architecture's hyperparameters and tensors and
 * the tokenizer on an opened file, whose ownership passes to the model (closed on failure too).
 * adakv_model_load is gguf_open + model_bind + the copies; the GGUF fuzz target
 * (tests/fuzz/fuzz-gguf.c) calls it on gguf_open_memory files. NULL with e set on failure. */
struct adakv_model *model_bind(struct gguf_file *f, struct adakv_err *e);

/* Writes "T1: n1, T2: n2, ..." for the tensors of f, most frequent type first (ties by type
 * id), truncated with "..." if it does not fit. */
void model_type_counts(const struct gguf_file *f, char *buf, size_t size);

#endif
