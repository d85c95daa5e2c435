/* adakv-run: a thin program over libadakv.
 * flags -> model load -> tokenize (+ chat template) -> prefill (layer-major, KV presses) ->
 * decode loop streaming text to stdout -> timing summary on stderr.
 * This is the only place that prints errors and exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "adakv.h"
#include "chat.h"
#include "cli.h"
#include "perplexity.h"
#include "sampler.h"
#include "tokenizer.h"

#define MAX_PROMPT_BYTES (256u << 20) /* refuse absurd inputs before reading them */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int die(const char *msg) {
    fprintf(stderr, "adakv-run: %s\n", msg);
    return 1;
}

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer. */
static int read_all(const char *path, char **out, size_t *len, struct adakv_err *e) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return err_set(e, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            if (f != stdin)
                fclose(f);
            return err_set(e, "%s: out of memory", path);
        }
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        if (cap >= MAX_PROMPT_BYTES) {
            free(buf);
            if (f != stdin)
                fclose(f);
            return err_set(e, "%s: larger than %u MiB", path, MAX_PROMPT_BYTES >> 20);
        }
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(buf);
        return err_set(e, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void ppl_progress(void *user, int chunk, int n_chunk, double ppl) {
    (void)user;
    fprintf(stderr, "[%d/%d] running PPL = %.4f\n", chunk + 1, n_chunk, ppl);
}

static const char *kv_type_name(enum adakv_kv_type t) {
    return t == ADAKV_KV_INT8 ? "int8" : t == ADAKV_KV_F16 ? "f16" : "f32";
}

int main(int argc, char **argv) {
    struct cli_opts o;
    struct adakv_err e = {{0}};
    if (cli_parse(argc, argv, &o, &e))
        return die(e.msg);
    if (o.help) {
        cli_usage(stdout);
        return 0;
    }
    if (o.version) {
        printf("adakv-run %s\n", ADAKV_VERSION);
        return 0;
    }

    /* read the input before loading the model: a missing prompt file fails fast */
    char *text = NULL;
    size_t text_len = 0;
    const char *input = o.perplexity_file ? o.perplexity_file : o.prompt_file;
    if (input) {
        if (read_all(input, &text, &text_len, &e))
            return die(e.msg);
    } else {
        text_len = strlen(o.prompt_text);
        text = malloc(text_len + 1);
        if (!text)
            return die("out of memory");
        memcpy(text, o.prompt_text, text_len + 1);
    }
    if (text_len == 0) {
        free(text);
        snprintf(e.msg, sizeof e.msg, "%s: the prompt is empty", input ? input : "-p");
        return die(e.msg);
    }

    double t0 = now_ms();
    struct adakv_model_params mp = {.n_threads = o.n_threads};
    struct adakv_model *m = adakv_model_load(o.model_path, &mp, &e);
    if (!m) {
        free(text);
        return die(e.msg);
    }
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    const struct tokenizer *tok = adakv_model_tokenizer(m);

    /* tokenize: chat template first when asked, special-token text is parsed like llama.cpp */
    char *prompt = text;
    size_t prompt_len = text_len;
    if (o.chat && !o.perplexity_file) {
        if (chat_apply(adakv_model_gguf(m), text, text_len, &prompt, &prompt_len, &e)) {
            free(text);
            adakv_model_free(m);
            return die(e.msg);
        }
    }
    int32_t *toks = NULL;
    size_t n_toks = 0;
    bool parse_special = !o.perplexity_file;
    int rc = tokenizer_encode(tok, prompt, prompt_len, true, parse_special, &toks, &n_toks, &e);
    if (prompt != text)
        free(prompt);
    free(text);
    if (rc) {
        adakv_model_free(m);
        return die(e.msg);
    }
    if (n_toks == 0) {
        free(toks);
        adakv_model_free(m);
        return die("the prompt has no tokens");
    }

    int n_ctx = o.n_ctx;
    if (n_ctx == 0)
        n_ctx = info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    if (o.perplexity_file && o.n_ctx == 0)
        n_ctx = 512; /* llama-perplexity's default chunk */

    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = n_ctx;
    cp.kv_type = o.kv_type;
    cp.n_threads = o.n_threads;
    cp.reference = o.reference;
    struct adakv_ctx *ctx = adakv_ctx_new(m, &cp, &e);
    if (!ctx) {
        free(toks);
        adakv_model_free(m);
        return die(e.msg);
    }
    double t_load = now_ms() - t0;
    int status = 0;

    if (o.perplexity_file) {
        float *logits = malloc((size_t)n_ctx * info.n_vocab * sizeof *logits);
        struct ppl_result r;
        double tp = now_ms();
        int32_t bos = tokenizer_adds_bos(tok) ? tokenizer_bos(tok) : -1;
        if (!logits)
            status = die("out of memory for perplexity logits");
        else if (perplexity_run(ctx, info.n_vocab, toks, n_toks, n_ctx, bos, logits, ppl_progress,
                                NULL, &r, &e))
            status = die(e.msg);
        else {
            printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
            if (o.perf) {
                double ms = now_ms() - tp;
                fprintf(stderr,
                        "adakv_perf: perplexity: %d chunks of %d tokens, %ld scored, %.2f ms "
                        "(%.2f tokens per second)\n",
                        r.n_chunk, n_ctx, r.n_scored, ms, r.n_chunk * n_ctx / (ms / 1e3));
            }
        }
        free(logits);
        goto done;
    }

    if ((int)n_toks > n_ctx) {
        snprintf(e.msg, sizeof e.msg, "the prompt is %zu tokens, longer than the context (-c %d)",
                 n_toks, n_ctx);
        status = die(e.msg);
        goto done;
    }

    {
        float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
        struct sampler smp;
        struct sampler_params sp = {.temp = o.temp,
                                    .top_k = o.top_k,
                                    .top_p = o.top_p,
                                    .seed = o.seed_set ? o.seed : (uint64_t)time(NULL) ^ getpid()};
        if (!logits || sampler_init(&smp, &sp, info.n_vocab, &e)) {
            free(logits);
            status = die(logits ? e.msg : "out of memory");
            goto done;
        }
        double tp = now_ms();
        if (adakv_eval(ctx, toks, (int)n_toks, logits, false, &e)) {
            status = die(e.msg);
            sampler_free(&smp);
            free(logits);
            goto done;
        }
        double t_prompt = now_ms() - tp;

        /* decode loop: sample, stream the piece, feed it back */
        struct utf8_stream us = {0};
        size_t piece_cap = 256, out_cap = 3 * (256 + 4);
        char *piece = malloc(piece_cap), *outbuf = malloc(out_cap);
        int n_gen = 0, n_eval = 0;
        double td = now_ms(), t_sample = 0.0;
        bool ctx_full = false;
        for (;;) {
            if (o.n_predict == 0)
                break;
            double ts = now_ms();
            int32_t id = sampler_sample(&smp, logits);
            t_sample += now_ms() - ts;
            if (tokenizer_is_eog(tok, id))
                break;
            size_t np = tokenizer_piece(tok, id, false, piece, piece_cap);
            if (np > piece_cap) { /* vocab strings are untrusted: any length may come */
                piece_cap = np;
                out_cap = 3 * (np + 4);
                piece = realloc(piece, piece_cap);
                outbuf = realloc(outbuf, out_cap);
                if (!piece || !outbuf) {
                    status = die("out of memory for a token piece");
                    break;
                }
                tokenizer_piece(tok, id, false, piece, piece_cap);
            }
            size_t no = utf8_stream_push(&us, piece, np, outbuf, out_cap);
            fwrite(outbuf, 1, no, stdout);
            fflush(stdout);
            n_gen++;
            if (o.n_predict >= 0 && n_gen >= o.n_predict)
                break; /* the last token needs no forward pass */
            if (adakv_ctx_n_past(ctx) >= n_ctx) {
                ctx_full = true;
                break;
            }
            if (adakv_eval(ctx, &id, 1, logits, false, &e)) {
                status = die(e.msg);
                break;
            }
            n_eval++;
        }
        if (outbuf) {
            size_t no = utf8_stream_flush(&us, outbuf, out_cap);
            fwrite(outbuf, 1, no, stdout);
        }
        free(piece);
        free(outbuf);
        printf("\n");
        fflush(stdout);
        if (ctx_full)
            fprintf(stderr, "adakv-run: stopped: context of %d tokens is full\n", n_ctx);
        double t_eval = now_ms() - td - t_sample;
        if (o.perf && status == 0) {
            fprintf(stderr, "adakv_perf:        load time = %10.2f ms\n", t_load);
            fprintf(stderr,
                    "adakv_perf: prompt eval time = %10.2f ms / %5zu tokens (%8.2f ms per "
                    "token, %8.2f tokens per second)\n",
                    t_prompt, n_toks, t_prompt / n_toks, n_toks / (t_prompt / 1e3));
            fprintf(stderr,
                    "adakv_perf:        eval time = %10.2f ms / %5d runs   (%8.2f ms per "
                    "token, %8.2f tokens per second)\n",
                    t_eval, n_eval, n_eval ? t_eval / n_eval : 0.0,
                    n_eval ? n_eval / (t_eval / 1e3) : 0.0);
            fprintf(stderr, "adakv_perf:    sampling time = %10.2f ms / %5d tokens\n", t_sample,
                    n_gen);
            fprintf(stderr, "adakv_perf:       total time = %10.2f ms / %5zu tokens\n",
                    now_ms() - t0, n_toks + n_gen);
        }
        sampler_free(&smp);
        free(logits);
    }

done:
    /* a failed run prints its one error line and nothing else */
    if (o.perf && status == 0) {
        fprintf(stderr, "adakv_perf:            model = %s (%s, %s), %d layers, %d/%d heads\n",
                o.model_path, info.arch, info.type_counts, info.n_layer, info.n_head,
                info.n_head_kv);
        fprintf(stderr, "adakv_perf:         kv cache = %s, %d tokens, %.2f MiB\n",
                kv_type_name(o.kv_type), adakv_ctx_n_past(ctx),
                adakv_ctx_kv_bytes(ctx) / (1024.0 * 1024.0));
        fprintf(stderr, "adakv_perf:         peak RSS = %.1f MiB\n", peak_rss_kib() / 1024.0);
    }
    free(toks);
    adakv_ctx_free(ctx);
    adakv_model_free(m);
    return status;
}
