/* adakv-fidelity's options: the flags, their defaults and checks (fidelity-opts.c), read by the
 * study (adakv-fidelity.c). */
#ifndef ADAKV_TOOLS_FIDELITY_OPTS_H
#define ADAKV_TOOLS_FIDELITY_OPTS_H

#include <stdbool.h>

#include "adakv.h"

#define MAX_LIST 64 /* presses or budgets per run */

enum fid_mode { FID_AGNOSTIC, FID_AWARE };

struct fid_opts {
    const char *model, *file, *csv, *kl_out;
    int prefix;       /* context tokens; 0 = text length - continuation */
    int continuation; /* teacher-forced tokens after the context */
    char *press_list, *budget_list;
    const char *press_names[MAX_LIST];
    int n_press;
    int budgets[MAX_LIST];
    int n_budget;
    enum adakv_kv_type kv_type, ref_kv_type;
    bool plain, ref_plain; /* plain C kernels (ctx param `reference`) for pairs / reference */
    enum adakv_prefill_gemm
        gemm; /* --prefill-gemm: how the context and continuation batches multiply */
    enum fid_mode mode;
    int window;    /* press observation window (queries kept for scoring) */
    bool no_reuse; /* a full prefill per pair instead of one shared prefill */
    int n_threads;
    /* --press-opt NAME=VALUE, applied to every press (adakv_press_set's names: the table of press
     * options, src/press/press-options.c) */
    const char *opt_name[MAX_LIST], *opt_value[MAX_LIST];
    int n_press_opt;
};

/* Reads the flags (exits 0 after --help) and checks every press name and option before the
 * model loads. -1 with e set. */
int fid_opts_parse(int argc, char **argv, struct fid_opts *o, struct adakv_err *e);
/* Sets every --press-opt on p. */
int fid_apply_press_opts(const struct fid_opts *o, struct adakv_press *p, struct adakv_err *e);
/* "int8", "f16" or "f32". */
const char *fid_kv_type_name(enum adakv_kv_type t);

#endif
