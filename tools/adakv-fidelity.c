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
 * Usage: adakv-fidelity -m model.gguf -f text.txt [options]   (see usage() in fidelity-opts.c) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv-ext.h"
#include "fidelity-opts.h"
#include "kv-cache.h"
#include "tokenizer.h"

#define MAX_TEXT_BYTES (64u << 20) /* refuse absurd inputs before reading them */

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
                press, b, fid_kv_type_name(o->kv_type), fid_kv_type_name(o->ref_kv_type),
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
             fid_apply_press_opts(o, p, e);
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
           o->mode == FID_AWARE ? "aware" : "agnostic", fid_kv_type_name(o->kv_type),
           o->plain ? " (plain kernels)" : "", fid_kv_type_name(o->ref_kv_type),
           o->ref_plain ? " (plain kernels)" : "", o->window);
    fprintf(stderr, "adakv-fidelity: reference (full %s cache) ...\n",
            fid_kv_type_name(o->ref_kv_type));
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
    int rc = fid_opts_parse(argc, argv, &s.o, &e);
    if (!rc)
        rc = prepare(&s, &e);
    if (!rc)
        rc = study(&s, &e);
    if (rc)
        fprintf(stderr, "adakv-fidelity: %s\n", e.msg);
    state_free(&s);
    return rc ? 1 : 0;
}
