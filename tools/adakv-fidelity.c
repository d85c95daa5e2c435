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
 * Why one full prefill per pair: prefill is layer-major and layer l is compressed only after its
 * own prompt attention ran, so the prompt's hidden states (and hence every layer's K, V and
 * window queries) are the same whatever the press; only the cache left behind differs. A study
 * could prefill once and compress copies of the full cache, but the public API (adakv.h) has no
 * way to hand a prefilled cache to a press, so each pair pays a full prefill. Pairs run in one
 * process so the model is mapped once and the reference logits stay in memory.
 *
 * Usage: adakv-fidelity -m model.gguf -f text.txt [options]   (see usage() below) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv.h"
#include "tokenizer.h"

#define MAX_TEXT_BYTES (64u << 20) /* refuse absurd inputs before reading them */
#define MAX_LIST       64          /* presses or budgets per run */

enum fid_mode { FID_AGNOSTIC, FID_AWARE };

struct fid_opts {
    const char *model, *file, *csv;
    int prefix;       /* context tokens; 0 = text length - continuation */
    int continuation; /* teacher-forced tokens after the context */
    char *press_list, *budget_list;
    const char *press_names[MAX_LIST];
    int n_press;
    int budgets[MAX_LIST];
    int n_budget;
    enum adakv_kv_type kv_type, ref_kv_type;
    enum fid_mode mode;
    int window; /* press observation window (queries kept for scoring) */
    int n_threads;
};

/* What one run (reference or pair) leaves behind. */
struct fid_run {
    double t_prefill_ms, t_cont_ms;
    size_t kv_rows, kv_bytes; /* right after the compressed prefill */
};

/* Agreement of one pair's logits with the reference's, over the scored positions. */
struct fid_score {
    double kl_mean, kl_max;
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
            "  --mode M           agnostic (default) or aware (see the source's header)\n"
            "  --window N         press observation window (default 32)\n"
            "  -t, --threads N    threads (default: all cores)\n"
            "  --csv FILE         also write one CSV row per pair to FILE\n");
}

/* ==== flags ==== */

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out,
                     struct adakv_err *e) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s)
        return err_set(e, "%s: missing value", flag);
    if (errno || end == s || *end)
        return err_set(e, "%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi)
        return err_set(e, "%s: %ld is out of range [%d, %d]", flag, v, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_kv_type(const char *flag, const char *s, enum adakv_kv_type *out,
                         struct adakv_err *e) {
    if (!s)
        return err_set(e, "%s: missing value", flag);
    if (!strcmp(s, "int8"))
        *out = ADAKV_KV_INT8;
    else if (!strcmp(s, "f16"))
        *out = ADAKV_KV_F16;
    else if (!strcmp(s, "f32"))
        *out = ADAKV_KV_F32;
    else
        return err_set(e, "%s: expected int8, f16 or f32, got '%s'", flag, s);
    return 0;
}

static const char *kv_type_name(enum adakv_kv_type t) {
    return t == ADAKV_KV_INT8 ? "int8" : t == ADAKV_KV_F16 ? "f16" : "f32";
}

/* Splits `list` in place at commas; empty items are an error. */
static int split_list(const char *flag, char *list, const char **items, int *n,
                      struct adakv_err *e) {
    *n = 0;
    for (char *p = list;; p++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p)
            return err_set(e, "%s: empty item in the list", flag);
        if (*n == MAX_LIST)
            return err_set(e, "%s: more than %d items", flag, MAX_LIST);
        items[(*n)++] = p;
        if (!comma)
            return 0;
        p = comma;
    }
}

/* A press name must be one adakv_press_set accepts; checked before the long reference run. */
static int check_press_name(const char *name, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    if (!p)
        return err_set(e, "out of memory");
    int rc = adakv_press_set(p, "press", name, e);
    adakv_press_free(p);
    return rc;
}

static int parse_flags(int argc, char **argv, struct fid_opts *o, struct adakv_err *e) {
    static char default_presses[] = "full,snapkv,ada-snapkv";
    static char default_budgets[] = "64,128,256,512,1024";
    bool ref_type_set = false;
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
        } else if (!strcmp(a, "--prefix")) {
            rc = parse_int(a, v, 1, 1 << 20, &o->prefix, e);
        } else if (!strcmp(a, "--continuation")) {
            rc = parse_int(a, v, 1, 1 << 20, &o->continuation, e);
        } else if (!strcmp(a, "--window")) {
            rc = parse_int(a, v, 1, 1 << 20, &o->window, e);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            rc = parse_int(a, v, 0, 1024, &o->n_threads, e);
        } else if (!strcmp(a, "--press")) {
            o->press_list = (char *)v;
        } else if (!strcmp(a, "--kv-budget")) {
            o->budget_list = (char *)v;
        } else if (!strcmp(a, "--kv-type")) {
            rc = parse_kv_type(a, v, &o->kv_type, e);
        } else if (!strcmp(a, "--ref-kv-type")) {
            rc = parse_kv_type(a, v, &o->ref_kv_type, e);
            ref_type_set = true;
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
    if (split_list("--press", o->press_list, o->press_names, &o->n_press, e))
        return -1;
    for (int i = 0; i < o->n_press; i++)
        if (check_press_name(o->press_names[i], e))
            return -1;
    const char *items[MAX_LIST];
    if (split_list("--kv-budget", o->budget_list, items, &o->n_budget, e))
        return -1;
    for (int i = 0; i < o->n_budget; i++)
        if (parse_int("--kv-budget", items[i], 1, 1 << 24, &o->budgets[i], e))
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

/* Runs tokens[0, prefix + continuation) with `press` (NULL = the full cache) and the given KV
 * type; logits receives n_scored(o) rows of n_vocab floats. The reference and every pair go
 * through this same call sequence, so the full press reproduces the reference bit for bit. */
static int run_once(struct adakv_model *m, const struct fid_opts *o, const int32_t *tokens,
                    const struct adakv_press *press, enum adakv_kv_type kv_type, float *logits,
                    struct fid_run *out, struct adakv_err *e) {
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = o->prefix + o->continuation;
    cp.kv_type = kv_type;
    cp.n_threads = o->n_threads;
    cp.window = o->window;
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
    out->kv_rows = adakv_ctx_kv_rows(c);
    out->kv_bytes = adakv_ctx_kv_bytes(c);
    /* question-agnostic: the continuation must see the compressed context, not recompress */
    adakv_ctx_press_enable(c, false);
    if (adakv_eval(c, tokens + n_first, n_scored(o), logits, true, e))
        goto out;
    out->t_cont_ms = now_ms() - t1;
    rc = 0;
out:
    adakv_ctx_free(c);
    return rc;
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
static void score_pair(const float *ref, const float *test, int n_rows, int n_vocab,
                       const int32_t *tokens, int n_tokens, int first, struct fid_score *s) {
    *s = (struct fid_score){.n_pos = n_rows};
    int agree = 0;
    for (int r = 0; r < n_rows; r++) {
        const float *p = ref + (size_t)r * n_vocab, *q = test + (size_t)r * n_vocab;
        double kl = kl_logits(p, q, n_vocab);
        s->kl_mean += kl;
        s->kl_max = kl > s->kl_max ? kl : s->kl_max;
        agree += argmax(p, n_vocab) == argmax(q, n_vocab);
        int target = first + r + 1;
        if (target < n_tokens) {
            s->nll_ref += log_sum_exp(p, n_vocab) - p[tokens[target]];
            s->nll_test += log_sum_exp(q, n_vocab) - q[tokens[target]];
            s->n_nll++;
        }
    }
    s->kl_mean /= n_rows;
    s->top1 = (double)agree / n_rows;
    if (s->n_nll) {
        s->nll_ref /= s->n_nll;
        s->nll_test /= s->n_nll;
    }
}

/* ==== report ==== */

struct fid_report {
    FILE *csv;
    int rows_per_head_full; /* rows one KV head holds with the full cache */
    int n_seg;              /* n_layer * n_head_kv */
};

static void report_header(const struct fid_report *r) {
    printf("%-14s %6s %9s %9s %11s %11s %7s %8s %8s %9s %8s\n", "press", "budget", "rows/head",
           "KV MiB", "mean KL", "max KL", "top-1", "NLL", "dNLL", "prefill s", "cont s");
    if (r->csv)
        fprintf(r->csv, "press,budget,kv_type,ref_kv_type,mode,prefix,continuation,n_scored,"
                        "kv_rows,rows_per_head,kv_bytes,kl_mean,kl_max,top1,nll_ref,nll,"
                        "prefill_s,cont_s\n");
}

static void report_row(const struct fid_report *r, const struct fid_opts *o, const char *press,
                       int budget, const struct fid_run *run, const struct fid_score *s) {
    char b[16];
    snprintf(b, sizeof b, budget ? "%d" : "all", budget);
    double per_head = (double)run->kv_rows / r->n_seg;
    printf("%-14s %6s %9.1f %9.2f %11.6f %11.6f %6.2f%% %8.4f %+8.4f %9.2f %8.2f\n", press, b,
           per_head, run->kv_bytes / 1048576.0, s->kl_mean, s->kl_max, 100.0 * s->top1, s->nll_test,
           s->nll_test - s->nll_ref, run->t_prefill_ms / 1e3, run->t_cont_ms / 1e3);
    fflush(stdout);
    if (r->csv) {
        fprintf(r->csv, "%s,%s,%s,%s,%s,%d,%d,%d,%zu,%.2f,%zu,%.9g,%.9g,%.6f,%.6f,%.6f,%.3f,%.3f\n",
                press, b, kv_type_name(o->kv_type), kv_type_name(o->ref_kv_type),
                o->mode == FID_AWARE ? "aware" : "agnostic", o->prefix, o->continuation, s->n_pos,
                run->kv_rows, per_head, run->kv_bytes, s->kl_mean, s->kl_max, s->top1, s->nll_ref,
                s->nll_test, run->t_prefill_ms / 1e3, run->t_cont_ms / 1e3);
        fflush(r->csv);
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
    float *ref, *test; /* [n_scored][n_vocab] logits */
    struct fid_report rep;
};

static void state_free(struct fid_state *s) {
    free(s->text);
    free(s->tokens);
    free(s->ref);
    free(s->test);
    adakv_model_free(s->m);
    if (s->rep.csv)
        fclose(s->rep.csv);
}

static int prepare(struct fid_state *s, struct adakv_err *e) {
    struct fid_opts *o = &s->o;
    size_t len = 0;
    if (read_text(o->file, &s->text, &len, e))
        return -1;
    struct adakv_model_params mp = {.n_threads = o->n_threads};
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
    if (o->window > o->prefix)
        return err_set(e, "--window %d is longer than the %d-token prefix", o->window, o->prefix);
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
    if (o->csv && !(s->rep.csv = fopen(o->csv, "w")))
        return err_set(e, "%s: %s", o->csv, strerror(errno));
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
    int rc = adakv_press_set(p, "press", name, e) || adakv_press_set(p, "window", buf, e);
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
    int rc = run_once(s->m, o, s->tokens, p, o->kv_type, s->test, &run, e);
    adakv_press_free(p);
    if (rc)
        return -1;
    struct fid_score sc;
    score_pair(s->ref, s->test, n_scored(o), s->info.n_vocab, s->tokens, (int)s->n_tokens,
               n_compressed_tokens(o), &sc);
    report_row(&s->rep, o, name, shown_budget, &run, &sc);
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

static int study(struct fid_state *s, struct adakv_err *e) {
    const struct fid_opts *o = &s->o;
    printf("model %s (%s), text %s: %zu tokens; prefix %d, continuation %d, %d scored positions, "
           "%s mode, KV %s vs reference %s, window %d\n",
           o->model, s->info.name, o->file, s->n_tokens, o->prefix, o->continuation, n_scored(o),
           o->mode == FID_AWARE ? "aware" : "agnostic", kv_type_name(o->kv_type),
           kv_type_name(o->ref_kv_type), o->window);
    fprintf(stderr, "adakv-fidelity: reference (full %s cache) ...\n",
            kv_type_name(o->ref_kv_type));
    struct fid_run ref_run;
    if (run_once(s->m, o, s->tokens, NULL, o->ref_kv_type, s->ref, &ref_run, e))
        return -1;
    printf("reference: prefill %.2f s, continuation %.2f s, %zu KV rows, %.2f MiB\n",
           ref_run.t_prefill_ms / 1e3, ref_run.t_cont_ms / 1e3, ref_run.kv_rows,
           ref_run.kv_bytes / 1048576.0);
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
