/* adakv-fidelity's flags (fidelity-opts.h): usage, parsing into struct fid_opts, and the press
 * checks that fail before the model loads. */
#include "fidelity-opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "flag.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: adakv-fidelity -m model.gguf -f text.txt [options]\n"
            "  compresses the first --prefix tokens of the text with each press and budget,\n"
            "  teacher-forces the next --continuation tokens, and compares every continuation\n"
            "  position's distribution with the full cache's: mean KL(full || press), top-1\n"
            "  agreement, kept KV rows and bytes, prefill and continuation times\n"
            "  --prefix N         context tokens to compress (default: text - continuation)\n"
            "  --continuation M   teacher-forced tokens scored after it (default 500)\n"
            "  --press LIST       comma-separated presses (default full,snapkv,ada-snapkv); any\n"
            "                     name adakv-run --press takes\n"
            "  --kv-budget LIST   comma-separated rows kept per KV head, window included\n"
            "                     (default 64,128,256,512,1024; full runs once, budget ignored)\n"
            "  --kv-type T        int8 (default), f16 or f32\n"
            "  --ref-kv-type T    KV type of the full-cache reference (default: --kv-type)\n"
            "  --kernels K        fast (default) or plain: plain C kernels and the exact f32\n"
            "                     matmul (slow; separates KV storage error from kernel error)\n"
            "  --ref-kernels K    kernels of the reference (default: --kernels)\n"
            "  --prefill-gemm G   auto (default), quant, f32 or bf16 (adakv-run --help); f32\n"
            "                     keeps activations unquantized, so a fast run also isolates\n"
            "                     KV storage error (context and continuation are batches)\n"
            "  --mode M           agnostic (default) or aware (see the source's header)\n"
            "  --window N         press observation window (default 32)\n"
            "  --press-opt K=V    set press option K for every press, as adakv-run's --K V\n"
            "                     (its --help lists them, e.g. alpha=0.5; ada=on|off|kvpress;\n"
            "                     seed=N for the random press); repeatable\n"
            "  --no-reuse         a full prefill per pair (slow; the default prefills the\n"
            "                     context once and compresses copies of its cache)\n"
            "  -t, --threads N    threads (default: all cores)\n"
            "  --csv FILE         also write one CSV row per pair to FILE\n"
            "  --kl-out FILE      and every scored position's KL and top-1 agreement to FILE\n");
}

/* ==== flags ==== */

/* The library's parser (the names and aliases adakv-run takes), and a missing value. */
static int parse_kv_type(const char *flag, const char *s, enum adakv_kv_type *out,
                         struct adakv_err *e) {
    return s ? adakv_kv_type_parse(flag, s, out, e) : err_set(e, "%s: missing value", flag);
}

static int parse_kernels(const char *flag, const char *s, bool *plain, struct adakv_err *e) {
    if (s && !strcmp(s, "fast"))
        *plain = false;
    else if (s && !strcmp(s, "plain"))
        *plain = true;
    else
        return err_set(e, "%s: expected fast or plain, got '%s'", flag, s ? s : "");
    return 0;
}

const char *fid_kv_type_name(enum adakv_kv_type t) {
    return t == ADAKV_KV_INT8 ? "int8" : t == ADAKV_KV_F16 ? "f16" : "f32";
}

int fid_apply_press_opts(const struct fid_opts *o, struct adakv_press *p, struct adakv_err *e) {
    for (int i = 0; i < o->n_press_opt; i++)
        if (adakv_press_set(p, o->opt_name[i], o->opt_value[i], e))
            return -1;
    return 0;
}

/* A press name and the options must be ones adakv_press_set accepts; checked before the long
 * reference run. */
static int check_press_name(const struct fid_opts *o, const char *name, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    if (!p)
        return err_set(e, "out of memory");
    int rc = adakv_press_set(p, "press", name, e) || fid_apply_press_opts(o, p, e);
    adakv_press_free(p);
    return rc;
}

int fid_opts_parse(int argc, char **argv, struct fid_opts *o, struct adakv_err *e) {
    static char default_presses[] = "full,snapkv,ada-snapkv";
    static char default_budgets[] = "64,128,256,512,1024";
    bool ref_type_set = false, ref_kernels_set = false;
    *o = (struct fid_opts){.continuation = 500, .window = 32};
    o->press_list = default_presses;
    o->budget_list = default_budgets;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o->file = v;
        } else if (!strcmp(a, "--csv")) {
            o->csv = v;
        } else if (!strcmp(a, "--kl-out")) {
            o->kl_out = v;
        } else if (!strcmp(a, "--prefix")) {
            rc = flag_parse_int(a, v, 1, 1 << 20, &o->prefix, e);
        } else if (!strcmp(a, "--continuation")) {
            rc = flag_parse_int(a, v, 1, 1 << 20, &o->continuation, e);
        } else if (!strcmp(a, "--window")) {
            rc = flag_parse_int(a, v, 1, 1 << 20, &o->window, e);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            rc = flag_parse_int(a, v, 0, 1024, &o->n_threads, e);
        } else if (!strcmp(a, "--press-opt")) {
            if (v && (!strchr(v, '=') || v[0] == '='))
                rc = err_set(e, "--press-opt: expected NAME=VALUE, got '%s'", v);
            else if (v && o->n_press_opt == MAX_LIST)
                rc = err_set(e, "--press-opt: more than %d options", MAX_LIST);
            else if (v) { /* split in place: argv strings are the program's to modify */
                char *eq = strchr(argv[i + 1], '=');
                *eq = '\0';
                o->opt_name[o->n_press_opt] = argv[i + 1];
                o->opt_value[o->n_press_opt++] = eq + 1;
            }
        } else if (!strcmp(a, "--press")) {
            o->press_list = (char *)v;
        } else if (!strcmp(a, "--kv-budget")) {
            o->budget_list = (char *)v;
        } else if (!strcmp(a, "--kv-type")) {
            rc = parse_kv_type(a, v, &o->kv_type, e);
        } else if (!strcmp(a, "--ref-kv-type")) {
            rc = parse_kv_type(a, v, &o->ref_kv_type, e);
            ref_type_set = true;
        } else if (!strcmp(a, "--no-reuse")) {
            o->no_reuse = true;
            continue;
        } else if (!strcmp(a, "--kernels")) {
            rc = parse_kernels(a, v, &o->plain, e);
        } else if (!strcmp(a, "--prefill-gemm")) {
            rc = v ? adakv_prefill_gemm_parse(a, v, &o->gemm, e)
                   : err_set(e, "%s: missing value", a);
        } else if (!strcmp(a, "--ref-kernels")) {
            rc = parse_kernels(a, v, &o->ref_plain, e);
            ref_kernels_set = true;
        } else if (!strcmp(a, "--mode")) {
            if (v && !strcmp(v, "agnostic"))
                o->mode = FID_AGNOSTIC;
            else if (v && !strcmp(v, "aware"))
                o->mode = FID_AWARE;
            else
                rc = err_set(e, "--mode: expected agnostic or aware, got '%s'", v ? v : "");
        } else {
            return err_set(e, "unknown flag '%s' (see --help)", a);
        }
        if (rc)
            return -1;
        if (!v)
            return err_set(e, "%s: missing value", a);
        i++;
    }
    if (!o->model)
        return err_set(e, "no model: give -m model.gguf");
    if (!o->file)
        return err_set(e, "no text: give -f text.txt");
    if (!ref_type_set)
        o->ref_kv_type = o->kv_type;
    if (!ref_kernels_set)
        o->ref_plain = o->plain;
    /* the shared prefill hands every press the context uncompressed, then prefills one window:
     * a chunked prefill (adakv.h, prefill-chunk) only happens in a prefill from scratch */
    for (int i = 0; i < o->n_press_opt && !o->no_reuse; i++)
        if (!strcmp(o->opt_name[i], "prefill-chunk"))
            return err_set(e, "--press-opt prefill-chunk: needs --no-reuse (a shared prefill "
                              "would compress the context in one piece)");
    if (flag_split_list("--press", o->press_list, o->press_names, MAX_LIST, &o->n_press, false, e))
        return -1;
    for (int i = 0; i < o->n_press; i++)
        if (check_press_name(o, o->press_names[i], e))
            return -1;
    const char *items[MAX_LIST];
    if (flag_split_list("--kv-budget", o->budget_list, items, MAX_LIST, &o->n_budget, false, e))
        return -1;
    for (int i = 0; i < o->n_budget; i++)
        if (flag_parse_int("--kv-budget", items[i], 1, 1 << 24, &o->budgets[i], e))
            return -1;
    return 0;
}
