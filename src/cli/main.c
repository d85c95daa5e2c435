/* adakv-run: a thin program over libadakv.
 * flags -> prompt (+ questions) -> model load -> tokenize (+ chat template) -> prefill
 * (layer-major, with the KV press) -> decode loop streaming text to stdout -> timing summary on
 * stderr. This is the only place that prints errors and exits. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "adakv-ext.h"
#include "cli.h"
#include "cpu.h"
#include "perplexity.h"
#include "prompt.h"
#include "sampler.h"
#include "tokenizer.h"

#define MAX_INPUT_BYTES (256u << 20) /* refuse absurd inputs before reading them */

/* Set by the first SIGINT: prefill stops within a chunk, generation before the next token, and
 * the run ends as a finished one does (text flushed, timings printed) with status 130, as
 * llama.cpp's does. SA_RESETHAND: a second Ctrl-C kills at once. */
static volatile sig_atomic_t g_interrupt;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupt = 1;
}

static void catch_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer. */
static int read_all(const char *path, char **out, size_t *len, struct adakv_err *e) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return err_set(e, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    errno = 0;
    int rc = 0;
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        if (cap >= MAX_INPUT_BYTES) {
            rc = err_set(e, "%s: larger than %u MiB", path, MAX_INPUT_BYTES >> 20);
            break;
        }
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (!buf)
        rc = err_set(e, "%s: out of memory", path);
    else if (!rc && ferror(f)) /* errno from the failed read, e.g. EISDIR for a directory */
        rc = err_set(e, "%s: %s", path, errno ? strerror(errno) : "read error");
    if (f != stdin)
        fclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* ==== what the run owns ==== */

struct text {
    char *s;
    size_t n;
    const char *name; /* for messages */
};

struct run {
    struct cli_opts o;
    struct text context;
    struct text questions[17]; /* from a separator line, then every --question */
    int n_questions;
    struct adakv_model *m;
    struct adakv_model_info info;
    const struct tokenizer *tok;
    struct adakv_ctx *ctx;
    int n_ctx;
    float *logits;
    /* timings (ms) and counts, llama.cpp's perf vocabulary */
    double t0, t_load, t_prompt, t_eval, t_sample;
    long n_prompt, n_eval, n_gen;
    bool show_progress;
    size_t kv_rows_after_prefill; /* rows kept right after the (last) compressed prefill */
    struct adakv_mem_plan plan;   /* what the context holds at its fullest (load line) */
    int32_t *eog;                 /* --ignore-eos: the end-of-generation ids, masked out */
    int n_eog;
    bool stdout_closed; /* a write to stdout failed (EPIPE with SIGPIPE ignored): stop quietly */
};

static void run_free(struct run *r) {
    free(r->context.s);
    for (int i = 0; i < r->n_questions; i++)
        free(r->questions[i].s);
    free(r->logits);
    free(r->eog);
    adakv_ctx_free(r->ctx);
    adakv_model_free(r->m);
    cli_opts_free(&r->o);
}

static int fail(struct run *r, const char *msg) {
    fprintf(stderr, "adakv-run: %s\n", msg);
    run_free(r);
    return 1;
}

/* Reads the prompt (or perplexity text) and the questions; a prompt file may carry a question
 * after a line that is exactly CLI_QUESTION_SEPARATOR. */
static int read_inputs(struct run *r, struct adakv_err *e) {
    const struct cli_opts *o = &r->o;
    const char *input = o->perplexity_file ? o->perplexity_file : o->prompt_file;
    if (input) {
        if (read_all(input, &r->context.s, &r->context.n, e))
            return -1;
        r->context.name = input;
    } else {
        r->context.n = strlen(o->prompt_text);
        r->context.s = strdup(o->prompt_text);
        r->context.name = "-p";
        if (!r->context.s)
            return err_set(e, "out of memory");
    }
    if (!o->perplexity_file) {
        const char *sep = CLI_QUESTION_SEPARATOR;
        size_t sl = strlen(sep);
        for (char *p = r->context.s; (p = strstr(p, sep)); p += sl) {
            bool line_start = p == r->context.s || p[-1] == '\n';
            bool line_end = p[sl] == '\n' || p[sl] == '\0' || (p[sl] == '\r' && p[sl + 1] == '\n');
            if (!line_start || !line_end)
                continue;
            char *q = p + sl + (p[sl] == '\r') + (p[sl] != '\0');
            struct text *t = &r->questions[r->n_questions++];
            t->n = strlen(q);
            t->s = strdup(q);
            t->name = r->context.name;
            if (!t->s)
                return err_set(e, "out of memory");
            *p = '\0';
            r->context.n = (size_t)(p - r->context.s);
            break;
        }
    }
    for (int i = 0; i < o->n_questions; i++) {
        struct text *t = &r->questions[r->n_questions];
        if (read_all(o->questions[i], &t->s, &t->n, e))
            return -1;
        t->name = o->questions[i];
        r->n_questions++;
    }
    if (r->context.n == 0)
        return err_set(e, "%s: the prompt is empty", r->context.name);
    for (int i = 0; i < r->n_questions; i++)
        if (r->questions[i].n == 0)
            return err_set(e, "%s: the question is empty", r->questions[i].name);
    return 0;
}

/* Prefill progress on stderr, redrawn in place: layer-major prefill finishes one layer of the
 * whole prompt at a time, so layers done / layers is the fraction of the work. */
struct progress {
    double t0;
    long n_tokens;
    bool active, tty;
};

static void show_progress(void *user, int done, int n_layer) {
    struct progress *p = user;
    if (!p->active)
        return;
    double el = (now_ms() - p->t0) / 1e3, frac = (double)done / n_layer;
    /* a terminal gets one line redrawn in place; a log gets a line per tenth of the work */
    if (!p->tty && done * 10 / n_layer == (done - 1) * 10 / n_layer)
        return;
    fprintf(stderr, "%sprefill %ld tokens: layer %d/%d (%3.0f%%) %7.1f tok/s ETA %5.1f s%s",
            p->tty ? "\r" : "", p->n_tokens, done, n_layer, 100.0 * frac,
            frac * p->n_tokens / (el > 0 ? el : 1e-9), el / frac - el, p->tty ? " " : "\n");
    if (p->tty && done == n_layer)
        fputs("\r\033[K", stderr); /* leave the terminal clean for the answer */
    fflush(stderr);
}

static struct progress g_progress;

static int prefill(struct run *r, const int32_t *toks, size_t n, bool compress,
                   struct adakv_err *e) {
    if (n == 0)
        return 0;
    if ((long)n > r->n_ctx - adakv_ctx_n_past(r->ctx))
        return err_set(e, "the prompt is %zu tokens, longer than the context (-c %d)",
                       n + adakv_ctx_n_past(r->ctx), r->n_ctx);
    if (compress && adakv_press_evicts(r->o.press) && (long)n < adakv_press_window(r->o.press))
        return err_set(e, "--window: %d is longer than the prompt (%zu tokens)",
                       adakv_press_window(r->o.press), n);
    adakv_ctx_press_enable(r->ctx, compress);
    double t = now_ms();
    g_progress = (struct progress){
        .t0 = t, .n_tokens = (long)n, .active = r->show_progress, .tty = isatty(STDERR_FILENO)};
    int rc = adakv_eval(r->ctx, toks, (int)n, r->logits, false, e);
    r->t_prompt += now_ms() - t;
    r->n_prompt += rc ? 0 : (long)n; /* an interrupted batch evaluated none of its tokens */
    if (compress)
        r->kv_rows_after_prefill = adakv_ctx_kv_rows(r->ctx);
    return rc;
}

/* KVzip (--press kvzip): the context is prefilled with its reconstruction (the model asked to
 * repeat it, then the context again, as prompt_tokenize writes a question and a reply after the
 * same context), which scores and compresses it; the reconstruction's rows are dropped.
 * Without a question, the context's last token is held back and evaluated on top, uncompressed,
 * for the logits generation starts from. With --question-aware the question's tokens (aq, n_aq)
 * follow the reconstruction, so their queries score the context too (adakv.h,
 * adakv_ctx_prefill_kvzip_aware; docs/eval.md measures it). */
static int prefill_kvzip(struct run *r, const int32_t *ct, size_t n_ct, bool has_question,
                         const int32_t *aq, size_t n_aq, struct adakv_err *e) {
    int32_t *rc_tok = NULL, *rq_tok = NULL;
    size_t n_rc = 0, n_rq = 0;
    struct prompt_text pt = {.context = r->context.s,
                             .n_context = r->context.n,
                             .question = KVZIP_REPEAT_PROMPT,
                             .n_question = strlen(KVZIP_REPEAT_PROMPT),
                             .reply = r->context.s,
                             .n_reply = r->context.n};
    int rc = prompt_tokenize(r->tok, r->o.chat ? adakv_model_gguf(r->m) : NULL, &pt, &rc_tok, &n_rc,
                             &rq_tok, &n_rq, e);
    /* Only the reconstruction (rq_tok) is used: without a chat template the context's last
     * token may merge with the repeat prompt's newline, so rc_tok can end differently from ct,
     * which is what the model has seen. */
    (void)n_rc;
    const size_t n = has_question ? n_ct : n_ct - 1;
    if (!rc && (long)n < adakv_press_window(r->o.press))
        rc = err_set(e, "--window: %d is longer than the prompt (%zu tokens)",
                     adakv_press_window(r->o.press), n);
    if (!rc) {
        adakv_ctx_press_enable(r->ctx, true);
        double t = now_ms();
        rc = adakv_ctx_prefill_kvzip_aware(r->ctx, ct, (int)n, rq_tok, (int)n_rq, aq, (int)n_aq, e);
        r->t_prompt += now_ms() - t;
        r->n_prompt += rc ? 0 : (long)n;
        r->kv_rows_after_prefill = adakv_ctx_kv_rows(r->ctx);
    }
    if (!rc && !has_question)
        rc = prefill(r, ct + n, 1, false, e);
    free(rc_tok);
    free(rq_tok);
    return rc;
}

/* Samples from r->logits, streams each piece to stdout, feeds it back; stops at an
 * end-of-generation token, after -n tokens, or when the context is full. */
static int generate(struct run *r, struct sampler *smp, struct adakv_err *e) {
    struct utf8_stream us = {0};
    size_t piece_cap = 256, out_cap = 3 * (256 + 4);
    char *piece = malloc(piece_cap), *out = malloc(out_cap);
    int rc = piece && out ? 0 : err_set(e, "out of memory");
    for (int n_gen = 0; !rc && (r->o.n_predict < 0 || n_gen < r->o.n_predict);) {
        if (g_interrupt || r->stdout_closed)
            break;
        double ts = now_ms();
        for (int i = 0; i < r->n_eog; i++) /* --ignore-eos: llama.cpp's -inf logit bias */
            r->logits[r->eog[i]] = -INFINITY;
        int32_t id = sampler_sample(smp, r->logits);
        r->t_sample += now_ms() - ts;
        if (tokenizer_is_eog(r->tok, id))
            break;
        size_t np = tokenizer_piece(r->tok, id, false, piece, piece_cap);
        if (np > piece_cap) { /* vocab strings are untrusted: any length may come */
            char *p2 = realloc(piece, np), *o2 = realloc(out, 3 * (np + 4));
            piece = p2 ? p2 : piece;
            out = o2 ? o2 : out;
            if (!p2 || !o2) {
                rc = err_set(e, "out of memory for a token piece");
                break;
            }
            piece_cap = np;
            out_cap = 3 * (np + 4);
            tokenizer_piece(r->tok, id, false, piece, piece_cap);
        }
        fwrite(out, 1, utf8_stream_push(&us, piece, np, out, out_cap), stdout);
        if (fflush(stdout) && errno == EPIPE)
            r->stdout_closed = true; /* the reader is gone (e.g. | head): nothing more to say */
        r->n_gen++;
        if (++n_gen == r->o.n_predict)
            break; /* the last token needs no forward pass */
        if (adakv_ctx_n_past(r->ctx) >= r->n_ctx) {
            fprintf(stderr, "adakv-run: stopped: context of %d tokens is full\n", r->n_ctx);
            break;
        }
        double t = now_ms();
        rc = adakv_eval(r->ctx, &id, 1, r->logits, false, e);
        r->t_eval += now_ms() - t;
        r->n_eval++;
    }
    if (out && !r->stdout_closed)
        fwrite(out, 1, utf8_stream_flush(&us, out, out_cap), stdout);
    if (!r->stdout_closed) {
        printf("\n");
        fflush(stdout);
    }
    free(piece);
    free(out);
    return rc;
}

/* Prefill + generate for the prompt alone, or for each question. Question-agnostic: the context
 * is compressed once, each question is prefilled on top without compression, and the context
 * is rewound to before the question for the next one. Question-aware: context and question are
 * compressed together, from scratch for each question. */
static int answer(struct run *r, struct sampler *smp, struct adakv_err *e) {
    int nq = r->n_questions ? r->n_questions : 1;
    int ctx_past = -1;
    for (int i = 0; i < nq; i++) {
        int32_t *ct = NULL, *qt = NULL;
        size_t n_ct = 0, n_qt = 0;
        const struct text *q = r->n_questions ? &r->questions[i] : NULL;
        struct prompt_text pt = {.context = r->context.s,
                                 .n_context = r->context.n,
                                 .question = q ? q->s : NULL,
                                 .n_question = q ? q->n : 0};
        int rc = prompt_tokenize(r->tok, r->o.chat ? adakv_model_gguf(r->m) : NULL, &pt, &ct, &n_ct,
                                 &qt, &n_qt, e);
        if (!rc && n_ct + n_qt == 0)
            rc = err_set(e, "%s: the prompt has no tokens", r->context.name);
        if (!rc && i > 0)
            printf("\n");
        const bool kvzip = adakv_press_needs_reconstruction(r->o.press);
        if (!rc && kvzip && r->o.question_aware && n_qt == 0)
            rc = err_set(e, "--question-aware: --press kvzip takes its question from --question");
        if (!rc && kvzip && n_ct < 2)
            rc = err_set(e, "--press kvzip: the context has %zu tokens", n_ct);
        const bool kvzip_aware = kvzip && r->o.question_aware;
        if (!rc && r->o.question_aware && !kvzip) {
            int32_t *all = realloc(ct, (n_ct + n_qt) * sizeof *all);
            rc = all ? 0 : err_set(e, "out of memory");
            if (all) {
                ct = all;
                memcpy(ct + n_ct, qt, n_qt * sizeof *qt);
                adakv_ctx_reset(r->ctx);
                rc = prefill(r, ct, n_ct + n_qt, true, e);
            }
        } else if (!rc) {
            if (ctx_past < 0 || kvzip_aware) { /* aware: compressed again for each question */
                adakv_ctx_reset(r->ctx);
                rc = kvzip ? prefill_kvzip(r, ct, n_ct, n_qt > 0, kvzip_aware ? qt : NULL,
                                           kvzip_aware ? n_qt : 0, e)
                           : prefill(r, ct, n_ct, true, e);
                ctx_past = adakv_ctx_n_past(r->ctx);
            } else {
                rc = adakv_ctx_rewind(r->ctx, ctx_past, e);
            }
            if (!rc)
                rc = prefill(r, qt, n_qt, false, e);
        }
        if (!rc && r->o.kv_report && i == 0) {
            char *rep = NULL;
            if (adakv_ctx_kv_report(r->ctx, &rep, e) == 0)
                fputs(rep, stderr);
            free(rep);
        }
        free(ct);
        free(qt);
        if (rc || (rc = generate(r, smp, e)))
            return rc;
        if (g_interrupt || r->stdout_closed)
            break; /* no further questions */
    }
    return 0;
}

/* --ignore-eos: every token that would end generation (eos, eot, the EOG texts). */
static int collect_eog(struct run *r) {
    const int32_t n = tokenizer_n_vocab(r->tok);
    for (int32_t id = 0; id < n; id++)
        r->n_eog += tokenizer_is_eog(r->tok, id);
    r->eog = malloc((size_t)(r->n_eog ? r->n_eog : 1) * sizeof *r->eog);
    if (!r->eog)
        return -1;
    r->n_eog = 0;
    for (int32_t id = 0; id < n; id++)
        if (tokenizer_is_eog(r->tok, id))
            r->eog[r->n_eog++] = id;
    return 0;
}

static void ppl_progress(void *user, int chunk, int n_chunk, double ppl) {
    (void)user;
    fprintf(stderr, "[%d/%d] running PPL = %.4f\n", chunk + 1, n_chunk, ppl);
}

static int perplexity(struct run *r, struct adakv_err *e) {
    int32_t *toks = NULL;
    size_t n = 0;
    if (tokenizer_encode(r->tok, r->context.s, r->context.n, true, false, &toks, &n, e))
        return -1;
    struct ppl_result res;
    double t = now_ms();
    int32_t bos = tokenizer_adds_bos(r->tok) ? tokenizer_bos(r->tok) : -1;
    int rc = perplexity_run(r->ctx, r->info.n_vocab, toks, n, r->n_ctx, bos, r->logits,
                            ppl_progress, NULL, &res, e);
    free(toks);
    if (rc)
        return -1;
    printf("Final estimate: PPL = %.4f +/- %.5f\n", res.ppl, res.ppl_err);
    r->t_prompt = now_ms() - t;
    r->n_prompt = (long)res.n_chunk * r->n_ctx;
    return 0;
}

static void print_perf(const struct run *r) {
    const double tp = r->t_prompt, te = r->t_eval;
    fprintf(stderr, "adakv_perf:            model = %s (%s, %s), %d layers, %d/%d heads, %s\n",
            r->o.model_path, r->info.arch, r->info.type_counts, r->info.n_layer, r->info.n_head,
            r->info.n_head_kv, simd_isa_name(simd_isa()));
    const double mib = 1024.0 * 1024.0;
    fprintf(stderr,
            "adakv_perf:        load time = %10.2f ms (weights: %s; prompt GEMMs: %s; planned "
            "%.1f MiB = model %.1f + KV %.1f + scratch %.1f, of %.0f MiB RAM)\n",
            r->t_load, r->info.weights, r->info.prefill_gemm,
            (r->plan.model + r->plan.kv + r->plan.scratch) / mib, r->plan.model / mib,
            r->plan.kv / mib, r->plan.scratch / mib, r->plan.ram / mib);
    fprintf(stderr,
            "adakv_perf: prompt eval time = %10.2f ms / %5ld tokens (%8.2f ms per token, %8.2f "
            "tokens per second)\n",
            tp, r->n_prompt, r->n_prompt ? tp / r->n_prompt : 0.0,
            tp > 0 ? r->n_prompt / (tp / 1e3) : 0.0);
    fprintf(stderr,
            "adakv_perf:        eval time = %10.2f ms / %5ld runs   (%8.2f ms per token, %8.2f "
            "tokens per second)\n",
            te, r->n_eval, r->n_eval ? te / r->n_eval : 0.0, te > 0 ? r->n_eval / (te / 1e3) : 0.0);
    fprintf(stderr, "adakv_perf:    sampling time = %10.2f ms / %5ld tokens\n", r->t_sample,
            r->n_gen);
    fprintf(stderr, "adakv_perf:       total time = %10.2f ms / %5ld tokens\n", now_ms() - r->t0,
            r->n_prompt + r->n_gen);
    /* rows: one per (token, layer, KV head); f16 bytes of the same rows without eviction */
    const int n_past = adakv_ctx_n_past(r->ctx);
    const size_t full = (size_t)n_past * r->info.n_layer * r->info.n_head_kv;
    const size_t rows = adakv_ctx_kv_rows(r->ctx);
    const double f16_mib = full * 2.0 * 2 * r->info.head_dim / (1024.0 * 1024.0);
    const char *kv = r->o.kv_type == ADAKV_KV_INT8  ? "int8"
                     : r->o.kv_type == ADAKV_KV_F16 ? "f16"
                                                    : "f32";
    char press[160];
    adakv_press_describe(r->o.press, press, sizeof press);
    fprintf(stderr,
            "adakv_perf:         kv cache = %s, %zu of %zu rows kept (%.1f%% evicted), %s, "
            "%.2f MiB (f16 without eviction: %.2f MiB), peak %.2f MiB\n",
            kv, rows, full, full ? 100.0 * (1.0 - (double)rows / full) : 0.0, press,
            adakv_ctx_kv_bytes(r->ctx) / (1024.0 * 1024.0), f16_mib,
            adakv_ctx_kv_peak_bytes(r->ctx) / (1024.0 * 1024.0));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "adakv_perf:         peak RSS = %.1f MiB\n", ru.ru_maxrss / 1024.0);
    fprintf(stderr, "adakv_perf: %s\n", adakv_ctx_placement(r->ctx));
}

int main(int argc, char **argv) {
    struct run r;
    memset(&r, 0, sizeof r);
    struct adakv_err e = {{0}};
    if (cli_parse(argc, argv, &r.o, &e))
        return fail(&r, e.msg);
    if (r.o.help) {
        cli_usage(stdout);
        run_free(&r);
        return 0;
    }
    if (r.o.version) {
        printf("adakv-run %s\n", ADAKV_VERSION);
        run_free(&r);
        return 0;
    }
    /* a typo in ADAKV_ISA is an error, not a silent fallback */
    if (simd_isa_init(e.msg, sizeof e.msg))
        return fail(&r, e.msg);
    /* inputs first: a missing prompt file fails before the model is mapped */
    if (read_inputs(&r, &e))
        return fail(&r, e.msg);

    catch_sigint();
    r.t0 = now_ms();
    struct adakv_model_params mp = {.n_threads = r.o.n_threads, .prefill_gemm = r.o.prefill_gemm};
    if (!(r.m = adakv_model_load(r.o.model_path, &mp, &e)))
        return fail(&r, e.msg);
    adakv_model_get_info(r.m, &r.info);
    r.tok = adakv_model_tokenizer(r.m);
    for (const char *w = tokenizer_warning(r.tok), *nl; w; w = nl ? nl + 1 : NULL) {
        nl = strchr(w, '\n'); /* one prefixed line per warning */
        fprintf(stderr, "adakv-run: warning: %.*s\n", nl ? (int)(nl - w) : (int)strlen(w), w);
    }
    r.n_ctx = r.o.n_ctx                   ? r.o.n_ctx
              : r.o.perplexity_file       ? 512 /* llama-perplexity's default chunk */
              : r.info.n_ctx_train < 4096 ? r.info.n_ctx_train
                                          : 4096;
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = r.n_ctx;
    cp.kv_type = r.o.kv_type;
    cp.n_threads = r.o.n_threads;
    cp.numa = r.o.numa;
    cp.reference = r.o.reference;
    r.show_progress = r.o.progress == CLI_PROGRESS_ON ||
                      (r.o.progress == CLI_PROGRESS_AUTO && isatty(STDERR_FILENO));
    cp.progress = show_progress;
    cp.progress_user = &g_progress;
    cp.interrupt = &g_interrupt;
    adakv_ctx_plan(r.m, &cp, &r.plan);
    if (!(r.ctx = adakv_ctx_new(r.m, &cp, &e)))
        return fail(&r, e.msg);
    if (r.o.ignore_eos && r.tok && collect_eog(&r))
        return fail(&r, "out of memory");
    if (!r.o.perplexity_file &&
        adakv_press_set(r.o.press, "reserve", r.o.n_predict < 0 ? "0" : "256", &e) == 0) {
        /* decode room after compaction: -n rows per head (capped: the cache still grows) */
        char reserve[16];
        snprintf(reserve, sizeof reserve, "%d",
                 r.o.n_predict < 0 || r.o.n_predict > r.n_ctx ? r.n_ctx : r.o.n_predict);
        adakv_press_set(r.o.press, "reserve", reserve, &e);
    }
    if (adakv_ctx_set_press(r.ctx, r.o.press, r.o.kv_report, &e))
        return fail(&r, e.msg);
    size_t n_logits = (size_t)(r.o.perplexity_file ? r.n_ctx : 1) * r.info.n_vocab;
    if (!(r.logits = malloc(n_logits * sizeof *r.logits)))
        return fail(&r, "out of memory for logits");
    r.t_load = now_ms() - r.t0;

    int rc;
    if (r.o.perplexity_file) {
        rc = perplexity(&r, &e);
    } else {
        struct sampler smp;
        struct sampler_params sp = {.temp = r.o.temp,
                                    .top_k = r.o.top_k,
                                    .top_p = r.o.top_p,
                                    .seed =
                                        r.o.seed_set ? r.o.seed : (uint64_t)time(NULL) ^ getpid()};
        rc = sampler_init(&smp, &sp, r.info.n_vocab, &e);
        if (!rc)
            rc = answer(&r, &smp, &e);
        sampler_free(&smp);
    }
    if (rc && !g_interrupt)
        return fail(&r, e.msg);
    if (r.o.perf) /* a failed run prints its one error line and nothing else */
        print_perf(&r);
    run_free(&r);
    return g_interrupt ? 128 + SIGINT : 0; /* the shell's status for a Ctrl-C, as llama.cpp */
}
