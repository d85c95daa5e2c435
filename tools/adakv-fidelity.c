/* adakv-fidelity: how far a KV press moves the model's next-token distribution on real text.
 *
 * The text is tokenized; its first `prefix` tokens are the context that gets compressed and the
 * next `continuation` tokens are teacher-forced on top of it. The reference is the same run with
 * the full cache. For every (press, budget) pair the tool reports, over the continuation
 * positions, the mean (and max) KL(full || compressed) over the whole vocabulary in double
 * precision, how often the two agree on the top-1 token, the NLL of the true next token, the
 * rows and bytes the compressed cache keeps, and the prefill and continuation times.
 *
 * Modes (issue 3, "question-agnostic" / "question-aware"):
 *   agnostic  the context alone is prefilled with the press; compression is then switched off
 *             and the whole continuation is evaluated on the compressed cache in one call;
 *   aware     the first `window` continuation tokens are prefilled with the context, so the
 *             press scores with queries that already see the continuation; the rest of the
 *             continuation is scored. Those first tokens' own logits came from the uncompressed
 *             prompt attention, so they are not scored.
 *
 * Speed: prefill is layer-major and layer l is compressed only after its own prompt attention
 * ran, so the prompt's hidden states (hence every layer's K, V and window queries) are the same
 * whatever the press; only the cache left behind differs. The public API cannot hand one
 * prefilled cache to several presses, so a naive study pays a 6,000-token prefill per pair
 * (--no-reuse does exactly that: one adakv_eval of the whole context with the press on). By
 * default the tool instead prefills the context minus its last `window` tokens ONCE with the
 * full cache and keeps a copy of that cache; each pair then restores the copy (adakv_ctx_rewind,
 * then the rows are copied back through kv-cache.h, the one internal header used here), installs
 * its press and prefills the last `window` tokens: the press then runs on every layer's whole
 * segment with the window's queries, which is what a single compressed prefill of the context
 * does (the same segments, the same window queries). The reference goes through the same
 * sequence with the full cache, so the full press still reproduces it bit for bit, and
 * tests/test_fidelity.c checks that both paths keep the same rows and give the same KL.
 *
 * Usage: adakv-fidelity -m model.gguf -f text.txt [options]   (see usage() below) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv-ext.h"
#include "flag.h"
#include "kv-cache.h"
#include "tokenizer.h"

#define MAX_TEXT_BYTES (64u << 20) /* refuse absurd inputs before reading them */
#define MAX_LIST       64          /* presses or budgets per run */

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
    /* --press-opt NAME=VALUE, applied to every press (adakv_press_set names: alpha, ada, pool,
     * pool-kernel, beta, sink, critical-ratio, seed) */
    const char *opt_name[MAX_LIST], *opt_value[MAX_LIST];
    int n_press_opt;
};

/* What one run (reference or pair) leaves behind. */
struct fid_run {
    double t_prefill_ms, t_cont_ms; /* this run's own prefill (with compression), continuation */
    size_t kv_rows, kv_bytes;       /* live rows and their bytes right after compression */
};

/* Agreement of one pair's logits with the reference's, over the scored positions. */
struct fid_score {
    double kl_mean, kl_max;
    double kl_se;             /* standard error of kl_mean over the positions */
    double top1;              /* fraction of positions with the same argmax */
    double nll_ref, nll_test; /* mean -log p(true next token), over positions with a target */
    int n_pos, n_nll;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

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
            "                     (alpha=0.5, ada=kvpress, pool=avg, pool-kernel=5, beta=10,\n"
            "                     sink=4, critical-ratio=0.5, seed=1); repeatable\n"
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

static const char *kv_type_name(enum adakv_kv_type t) {
    return t == ADAKV_KV_INT8 ? "int8" : t == ADAKV_KV_F16 ? "f16" : "f32";
}

/* Sets every --press-opt on p. */
static int apply_press_opts(const struct fid_opts *o, struct adakv_press *p, struct adakv_err *e) {
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
    int rc = adakv_press_set(p, "press", name, e) || apply_press_opts(o, p, e);
    adakv_press_free(p);
    return rc;
}

static int parse_flags(int argc, char **argv, struct fid_opts *o, struct adakv_err *e) {
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

/* ==== input ==== */

static int read_text(const char *path, char **out, size_t *len, struct adakv_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, "%s: %s", path, strerror(errno));
    size_t cap = MAX_TEXT_BYTES + 1;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    int rc = 0;
    if (!buf)
        rc = err_set(e, "%s: out of memory", path);
    else if (ferror(f))
        rc = err_set(e, "%s: read error", path);
    else if (n == cap)
        rc = err_set(e, "%s: larger than %u MiB", path, MAX_TEXT_BYTES >> 20);
    fclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ==== one run: prefill the context (compressed), then teacher-force the continuation ==== */

/* Tokens prefilled with compression on: the context, plus in aware mode the first `window`
 * continuation tokens (the "question" the press may look at). */
static int n_compressed_tokens(const struct fid_opts *o) {
    return o->prefix + (o->mode == FID_AWARE ? o->window : 0);
}

/* Continuation positions whose logits come from the compressed cache. */
static int n_scored(const struct fid_opts *o) {
    return o->prefix + o->continuation - n_compressed_tokens(o);
}

static size_t kv_live_bytes(struct adakv_ctx *c) {
    const struct kv_cache *kv = adakv_ctx_kv(c);
    return adakv_ctx_kv_rows(c) * 2 * kv_row_bytes(kv->type, kv->head_dim);
}

/* After the compressed prefill ended at time t_compressed (ms): records the cache, then
 * teacher-forces the continuation with compression off (question-agnostic: it must see the
 * compressed context, not recompress) and keeps its n_scored(o) rows of logits. */
static int finish_run(struct adakv_ctx *c, const struct fid_opts *o, const int32_t *tokens,
                      double t_compressed, float *logits, struct fid_run *out,
                      struct adakv_err *e) {
    out->kv_rows = adakv_ctx_kv_rows(c);
    out->kv_bytes = kv_live_bytes(c);
    adakv_ctx_press_enable(c, false);
    int n_first = n_compressed_tokens(o);
    if (adakv_eval(c, tokens + n_first, n_scored(o), logits, true, e))
        return -1;
    out->t_cont_ms = now_ms() - t_compressed;
    return 0;
}

/* --no-reuse: runs tokens[0, prefix + continuation) from an empty context with `press` (NULL =
 * the full cache), the context in one compressed prefill; logits receives n_scored(o) rows of
 * n_vocab floats. The reference goes through the same calls, so the full press reproduces it. */
static int run_once(struct adakv_model *m, const struct fid_opts *o, const int32_t *tokens,
                    const struct adakv_press *press, enum adakv_kv_type kv_type, bool plain,
                    float *logits, struct fid_run *out, struct adakv_err *e) {
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = o->prefix + o->continuation;
    cp.kv_type = kv_type;
    cp.n_threads = o->n_threads;
    cp.window = o->window;
    cp.reference = plain;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, e);
    if (!c)
        return -1;
    int rc = -1, n_first = n_compressed_tokens(o);
    if (press && adakv_ctx_set_press(c, press, false, e))
        goto out;
    double t0 = now_ms();
    if (adakv_eval(c, tokens, n_first, NULL, false, e))
        goto out;
    double t1 = now_ms();
    out->t_prefill_ms = t1 - t0;
    if (finish_run(c, o, tokens, t1, logits, out, e))
        goto out;
    rc = 0;
out:
    adakv_ctx_free(c);
    return rc;
}

/* ==== one shared prefill, a restored copy of its cache per run (see the header) ==== */

struct fid_session {
    struct adakv_ctx *c;
    struct kv_cache snap; /* the cache after the shared prefill */
    bool snap_ok, used;
    int n_shared;       /* tokens prefilled once: the compressed tokens minus the window */
    double t_shared_ms; /* time of that prefill */
};

static void session_close(struct fid_session *ss) {
    if (ss->snap_ok)
        kv_cache_free(&ss->snap);
    adakv_ctx_free(ss->c);
    *ss = (struct fid_session){0};
}

/* Prefills the shared tokens once into a new context and keeps a copy of its cache. */
static int session_open(struct fid_session *ss, struct adakv_model *m, const struct fid_opts *o,
                        const int32_t *tokens, enum adakv_kv_type kv_type, bool plain,
                        struct adakv_err *e) {
    *ss = (struct fid_session){.n_shared = n_compressed_tokens(o) - o->window};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = o->prefix + o->continuation;
    cp.kv_type = kv_type;
    cp.n_threads = o->n_threads;
    cp.window = o->window;
    cp.reference = plain;
    if (!(ss->c = adakv_ctx_new(m, &cp, e)))
        return -1;
    double t0 = now_ms();
    if (adakv_eval(ss->c, tokens, ss->n_shared, NULL, false, e))
        goto fail;
    ss->t_shared_ms = now_ms() - t0;
    const struct kv_cache *kv = adakv_ctx_kv(ss->c);
    if (kv_cache_init(&ss->snap, kv->type, kv->n_layer, kv->n_head_kv, kv->head_dim, e))
        goto fail;
    ss->snap_ok = true;
    if (kv_cache_copy(&ss->snap, kv, e))
        goto fail;
    return 0;
fail:
    session_close(ss);
    return -1;
}

/* One run on the shared prefill: the cache as it was after it, then the last `window` context
 * tokens prefilled with `press` (NULL = the full cache) on, then the continuation. */
static int session_run(struct fid_session *ss, const struct fid_opts *o, const int32_t *tokens,
                       const struct adakv_press *press, float *logits, struct fid_run *out,
                       struct adakv_err *e) {
    struct adakv_press *full = NULL;
    if (ss->used && (adakv_ctx_rewind(ss->c, ss->n_shared, e) ||
                     kv_cache_copy(adakv_ctx_kv(ss->c), &ss->snap, e)))
        return -1;
    ss->used = true;
    if (!press && !(press = full = adakv_press_new()))
        return err_set(e, "out of memory");
    int rc = adakv_ctx_set_press(ss->c, press, false, e);
    adakv_press_free(full);
    if (rc)
        return -1;
    adakv_ctx_press_enable(ss->c, true);
    double t0 = now_ms();
    if (adakv_eval(ss->c, tokens + ss->n_shared, n_compressed_tokens(o) - ss->n_shared, NULL, false,
                   e))
        return -1;
    double t1 = now_ms();
    out->t_prefill_ms = t1 - t0;
    return finish_run(ss->c, o, tokens, t1, logits, out, e);
}

/* ==== agreement with the reference ==== */

static double log_sum_exp(const float *x, int n) {
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    return mx + log(s);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* KL(p || q) of two softmax distributions given by logits, in double precision. */
static double kl_logits(const float *p, const float *q, int n) {
    double lse_p = log_sum_exp(p, n), lse_q = log_sum_exp(q, n), kl = 0.0;
    for (int i = 0; i < n; i++) {
        double lp = p[i] - lse_p, lq = q[i] - lse_q;
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* Row r of the scored logits predicts tokens[first + r + 1] (when the text has it). */
/* kl_pos and agree_pos receive each row's KL and top-1 agreement (for --kl-out). */
static void score_pair(const float *ref, const float *test, int n_rows, int n_vocab,
                       const int32_t *tokens, int n_tokens, int first, double *kl_pos,
                       unsigned char *agree_pos, struct fid_score *s) {
    *s = (struct fid_score){.n_pos = n_rows};
    int agree = 0;
    double kl_sq = 0.0;
    for (int r = 0; r < n_rows; r++) {
        const float *p = ref + (size_t)r * n_vocab, *q = test + (size_t)r * n_vocab;
        double kl = kl_logits(p, q, n_vocab);
        kl_pos[r] = kl;
        s->kl_mean += kl;
        kl_sq += kl * kl;
        s->kl_max = kl > s->kl_max ? kl : s->kl_max;
        agree_pos[r] = argmax(p, n_vocab) == argmax(q, n_vocab);
        agree += agree_pos[r];
        int target = first + r + 1;
        if (target < n_tokens) {
            s->nll_ref += log_sum_exp(p, n_vocab) - p[tokens[target]];
            s->nll_test += log_sum_exp(q, n_vocab) - q[tokens[target]];
            s->n_nll++;
        }
    }
    s->kl_mean /= n_rows;
    if (n_rows > 1) {
        double var = (kl_sq - n_rows * s->kl_mean * s->kl_mean) / (n_rows - 1);
        s->kl_se = sqrt(var > 0.0 ? var / n_rows : 0.0);
    }
    s->top1 = (double)agree / n_rows;
    if (s->n_nll) {
        s->nll_ref /= s->n_nll;
        s->nll_test /= s->n_nll;
    }
}

/* ==== report ==== */

struct fid_report {
    FILE *csv;
    FILE *kl_out; /* per-position KL and top-1 agreement, or NULL */
    int n_seg;    /* n_layer * n_head_kv */
};

static void report_header(const struct fid_report *r) {
    printf("%-14s %6s %9s %9s %11s %9s %11s %7s %8s %8s %9s %8s\n", "press", "budget", "rows/head",
           "KV MiB", "mean KL", "+- se", "max KL", "top-1", "NLL", "dNLL", "prefill s", "cont s");
    if (r->csv)
        fprintf(r->csv, "press,budget,kv_type,ref_kv_type,kernels,ref_kernels,mode,prefix,"
                        "continuation,n_scored,"
                        "kv_rows,rows_per_head,kv_bytes,kl_mean,kl_se,kl_max,top1,nll_ref,nll,"
                        "prefill_s,cont_s\n");
}

static void report_row(const struct fid_report *r, const struct fid_opts *o, const char *press,
                       int budget, const struct fid_run *run, const struct fid_score *s,
                       const double *kl_pos, const unsigned char *agree_pos, int first) {
    char b[16];
    snprintf(b, sizeof b, budget ? "%d" : "all", budget);
    double per_head = (double)run->kv_rows / r->n_seg;
    printf("%-14s %6s %9.1f %9.2f %11.6f %9.6f %11.6f %6.2f%% %8.4f %+8.4f %9.2f %8.2f\n", press, b,
           per_head, run->kv_bytes / 1048576.0, s->kl_mean, s->kl_se, s->kl_max, 100.0 * s->top1,
           s->nll_test, s->nll_test - s->nll_ref, run->t_prefill_ms / 1e3, run->t_cont_ms / 1e3);
    fflush(stdout);
    if (r->csv) {
        fprintf(r->csv,
                "%s,%s,%s,%s,%s,%s,%s,%d,%d,%d,%zu,%.2f,%zu,%.9g,%.3g,%.9g,%.6f,%.6f,%.6f,%.3f,"
                "%.3f\n",
                press, b, kv_type_name(o->kv_type), kv_type_name(o->ref_kv_type),
                o->plain ? "plain" : "fast", o->ref_plain ? "plain" : "fast",
                o->mode == FID_AWARE ? "aware" : "agnostic", o->prefix, o->continuation, s->n_pos,
                run->kv_rows, per_head, run->kv_bytes, s->kl_mean, s->kl_se, s->kl_max, s->top1,
                s->nll_ref, s->nll_test, run->t_prefill_ms / 1e3, run->t_cont_ms / 1e3);
        fflush(r->csv);
    }
    if (r->kl_out) {
        /* position = index in the text of the token whose logits were scored */
        for (int i = 0; i < s->n_pos; i++)
            fprintf(r->kl_out, "%s,%s,%d,%.9g,%d\n", press, b, first + i, kl_pos[i], agree_pos[i]);
        fflush(r->kl_out);
    }
}

/* ==== the study ==== */

struct fid_state {
    struct fid_opts o;
    char *text;
    int32_t *tokens;
    size_t n_tokens;
    struct adakv_model *m;
    struct adakv_model_info info;
    float *ref, *test;        /* [n_scored][n_vocab] logits */
    double *kl_pos;           /* [n_scored] one pair's KL per position */
    unsigned char *agree_pos; /* [n_scored] one pair's top-1 agreement per position */
    struct fid_report rep;
    struct fid_session ss; /* the pairs' shared prefill (unless --no-reuse) */
};

static void state_free(struct fid_state *s) {
    free(s->text);
    free(s->tokens);
    free(s->ref);
    free(s->test);
    free(s->kl_pos);
    free(s->agree_pos);
    session_close(&s->ss);
    adakv_model_free(s->m);
    if (s->rep.csv)
        fclose(s->rep.csv);
    if (s->rep.kl_out)
        fclose(s->rep.kl_out);
}

static int prepare(struct fid_state *s, struct adakv_err *e) {
    struct fid_opts *o = &s->o;
    size_t len = 0;
    if (read_text(o->file, &s->text, &len, e))
        return -1;
    struct adakv_model_params mp = {.n_threads = o->n_threads, .prefill_gemm = o->gemm};
    s->m = adakv_model_load(o->model, &mp, e);
    if (!s->m)
        return -1;
    adakv_model_get_info(s->m, &s->info);
    if (tokenizer_encode(adakv_model_tokenizer(s->m), s->text, len, true, false, &s->tokens,
                         &s->n_tokens, e))
        return -1;
    size_t n_tok = s->n_tokens;
    if (!o->prefix)
        o->prefix = n_tok > (size_t)o->continuation ? (int)(n_tok - o->continuation) : 0;
    if (o->prefix < 1 || (size_t)o->prefix + o->continuation > n_tok)
        return err_set(e, "%s: %zu tokens, too short for --prefix %d + --continuation %d", o->file,
                       n_tok, o->prefix, o->continuation);
    if (o->window >= o->prefix)
        return err_set(e, "--window %d must be shorter than the %d-token prefix", o->window,
                       o->prefix);
    if (n_scored(o) < 1)
        return err_set(e,
                       "--mode aware: --continuation %d leaves nothing to score after the "
                       "%d-token window",
                       o->continuation, o->window);
    size_t n = (size_t)n_scored(o) * s->info.n_vocab;
    s->ref = malloc(n * sizeof *s->ref);
    s->test = malloc(n * sizeof *s->test);
    if (!s->ref || !s->test)
        return err_set(e, "out of memory for %d x %d logits", n_scored(o), s->info.n_vocab);
    s->kl_pos = malloc((size_t)n_scored(o) * sizeof *s->kl_pos);
    s->agree_pos = malloc((size_t)n_scored(o));
    if (!s->kl_pos || !s->agree_pos)
        return err_set(e, "out of memory");
    if (o->csv && !(s->rep.csv = fopen(o->csv, "w")))
        return err_set(e, "%s: %s", o->csv, strerror(errno));
    if (o->kl_out && !(s->rep.kl_out = fopen(o->kl_out, "w")))
        return err_set(e, "%s: %s", o->kl_out, strerror(errno));
    if (s->rep.kl_out)
        fprintf(s->rep.kl_out, "press,budget,position,kl,top1_agree\n");
    s->rep.n_seg = s->info.n_layer * s->info.n_head_kv;
    return 0;
}

/* Builds the press for one pair; budget 0 = none (full). */
static struct adakv_press *make_press(const struct fid_opts *o, const char *name, int budget,
                                      struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    char buf[32];
    if (!p) {
        err_set(e, "out of memory");
        return NULL;
    }
    snprintf(buf, sizeof buf, "%d", o->window);
    int rc = adakv_press_set(p, "press", name, e) || adakv_press_set(p, "window", buf, e) ||
             apply_press_opts(o, p, e);
    if (!rc && budget) {
        snprintf(buf, sizeof buf, "%d", budget);
        rc = adakv_press_set(p, "kv-budget", buf, e);
    }
    if (rc || adakv_press_check(p, e)) {
        adakv_press_free(p);
        return NULL;
    }
    return p;
}

static int run_pair(struct fid_state *s, const char *name, int budget, struct adakv_err *e) {
    const struct fid_opts *o = &s->o;
    struct adakv_press *p = make_press(o, name, budget, e);
    if (!p)
        return -1;
    char desc[160];
    adakv_press_describe(p, desc, sizeof desc);
    int shown_budget = adakv_press_evicts(p) ? budget : 0;
    fprintf(stderr, "adakv-fidelity: %s ...\n", desc);
    struct fid_run run;
    int rc = o->no_reuse ? run_once(s->m, o, s->tokens, p, o->kv_type, o->plain, s->test, &run, e)
                         : session_run(&s->ss, o, s->tokens, p, s->test, &run, e);
    adakv_press_free(p);
    if (rc)
        return -1;
    struct fid_score sc;
    score_pair(s->ref, s->test, n_scored(o), s->info.n_vocab, s->tokens, (int)s->n_tokens,
               n_compressed_tokens(o), s->kl_pos, s->agree_pos, &sc);
    report_row(&s->rep, o, name, shown_budget, &run, &sc, s->kl_pos, s->agree_pos,
               n_compressed_tokens(o));
    return 0;
}

/* A press that never evicts (full) gives the same cache at every budget: it runs once. */
static bool press_is_full(const char *name, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    bool full = p && !adakv_press_set(p, "press", name, e) &&
                !adakv_press_set(p, "kv-budget", "1", e) && !adakv_press_evicts(p);
    adakv_press_free(p);
    return full;
}

/* The full-cache reference logits into s->ref, through the same calls the pairs make: in the
 * pairs' session when the KV type and kernels match, else in a session of its own. */
static int reference(struct fid_state *s, struct fid_run *run, double *t_shared,
                     struct adakv_err *e) {
    const struct fid_opts *o = &s->o;
    if (o->no_reuse)
        return run_once(s->m, o, s->tokens, NULL, o->ref_kv_type, o->ref_plain, s->ref, run, e);
    bool same = o->ref_kv_type == o->kv_type && o->ref_plain == o->plain;
    struct fid_session own = {0}, *ss = same ? &s->ss : &own;
    int rc = session_open(ss, s->m, o, s->tokens, o->ref_kv_type, o->ref_plain, e);
    if (!rc) {
        *t_shared = ss->t_shared_ms;
        rc = session_run(ss, o, s->tokens, NULL, s->ref, run, e);
    }
    session_close(&own);
    return rc;
}

static int study(struct fid_state *s, struct adakv_err *e) {
    const struct fid_opts *o = &s->o;
    printf("model %s (%s), text %s: %zu tokens; prefix %d, continuation %d, %d scored positions, "
           "%s mode, KV %s%s vs reference %s%s, window %d\n",
           o->model, s->info.name, o->file, s->n_tokens, o->prefix, o->continuation, n_scored(o),
           o->mode == FID_AWARE ? "aware" : "agnostic", kv_type_name(o->kv_type),
           o->plain ? " (plain kernels)" : "", kv_type_name(o->ref_kv_type),
           o->ref_plain ? " (plain kernels)" : "", o->window);
    fprintf(stderr, "adakv-fidelity: reference (full %s cache) ...\n",
            kv_type_name(o->ref_kv_type));
    struct fid_run ref_run;
    double t_shared = 0.0;
    if (reference(s, &ref_run, &t_shared, e))
        return -1;
    printf("reference: prefill %.2f s, continuation %.2f s, %zu KV rows, %.2f MiB\n",
           (t_shared + ref_run.t_prefill_ms) / 1e3, ref_run.t_cont_ms / 1e3, ref_run.kv_rows,
           ref_run.kv_bytes / 1048576.0);
    if (!o->no_reuse) {
        if (!s->ss.c && session_open(&s->ss, s->m, o, s->tokens, o->kv_type, o->plain, e))
            return -1;
        printf("pairs share one prefill of %d tokens (%.2f s); 'prefill s' below is each pair's "
               "last %d context tokens with its compression\n",
               s->ss.n_shared, s->ss.t_shared_ms / 1e3, n_compressed_tokens(o) - s->ss.n_shared);
    }
    report_header(&s->rep);
    for (int i = 0; i < o->n_press; i++) {
        const char *name = o->press_names[i];
        if (press_is_full(name, e)) {
            if (run_pair(s, name, 0, e))
                return -1;
            continue;
        }
        for (int j = 0; j < o->n_budget; j++)
            if (run_pair(s, name, o->budgets[j], e))
                return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct fid_state s = {0};
    struct adakv_err e = {{0}};
    int rc = parse_flags(argc, argv, &s.o, &e);
    if (!rc)
        rc = prepare(&s, &e);
    if (!rc)
        rc = study(&s, &e);
    if (rc)
        fprintf(stderr, "adakv-fidelity: %s\n", e.msg);
    state_free(&s);
    return rc ? 1 : 0;
}
