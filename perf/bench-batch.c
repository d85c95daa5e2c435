/* bench-batch: decode speed of B sequences decoding together (adakv_eval_batch), as
 * llama.cpp's llama-batched-bench measures it. For each B of -npl: B contexts each prefill -npp
 * random tokens (one prompt each, T_PP), then -ntg steps decode one token in every sequence
 * (B = 1: adakv_eval, else one adakv_eval_batch per step; T_TG). Each B runs -r times; the
 * median repetition is printed as a table row with S_TG = B * ntg / T_TG and its ratio to B = 1.
 * N_KV: the cached tokens of all B sequences after their prefill (rows per layer and KV head, on
 * average: with --press, every prompt is compressed at prefill and N_KV counts what was kept).
 * --fork Q: one document of -npp tokens (-f FILE: its first -npp tokens, else random ones) is
 * prefilled and compressed once; Q forks of it (adakv_ctx_fork) each prefill a different
 * question of 16 tokens and decode -ntg tokens greedily, all Q together (adakv_eval_batch).
 * Prints the document's prefill and press seconds, each fork's seconds and bytes, and, with
 * --check, compresses the document again for every question, answers the questions from those
 * the same way, and tells whether each answer equals the fork's.
 * Only the public API (adakv.h): what a server would call. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv.h"

enum { MAX_B = 64 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void) {
    fprintf(stderr, "usage: bench-batch -m model.gguf [-npp 128] [-ntg 64] [-npl 1,2,4,8] [-r 3] "
                    "[-t threads] [--press NAME --kv-ratio R] [--fork Q [-f doc.txt] [--check]]\n");
}

static int parse_int(const char *flag, const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench-batch: %s: '%s' is not an integer in [%d, %d]\n", flag, s, lo, hi);
        exit(2);
    }
    return (int)v;
}

static int fail(const char *what, const struct adakv_err *e) {
    fprintf(stderr, "bench-batch: %s: %s\n", what, e->msg);
    return 1;
}

/* The first n tokens of a text file into doc (1 if it has fewer). */
static int read_doc(struct adakv_model *m, const char *path, int32_t *doc, int n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench-batch: -f %s: cannot open\n", path);
        return 1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (size_t got = 1; got;) {
        if (len + 65536 > cap && !(text = realloc(text, cap = 2 * cap + 65536)))
            return 1;
        len += got = fread(text + len, 1, cap - len, f);
    }
    fclose(f);
    int32_t *t;
    size_t nt;
    struct adakv_err e = {{0}};
    if (adakv_tokenize(m, text, len, true, false, &t, &nt, &e))
        return fail(path, &e);
    free(text);
    if (nt < (size_t)n) {
        fprintf(stderr, "bench-batch: -f %s: %zu tokens, fewer than -npp %d\n", path, nt, n);
        return 1;
    }
    memcpy(doc, t, (size_t)n * sizeof *doc);
    adakv_free(t);
    return 0;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        best = x[i] > x[best] ? i : best;
    return best;
}

enum { QUESTION = 16 };

/* Each context's question prefilled (with whatever press state it has), then n_q greedy answers
 * of ntg tokens decoded together: answers[i * ntg ..] for context i. 0, or 1 after printing why. */
static int answer_all(struct adakv_ctx **ctx, int n_q, const int32_t (*q)[QUESTION], int ntg,
                      float *logits, int V, int32_t *answers) {
    struct adakv_err e = {{0}};
    int32_t next[MAX_B];
    for (int i = 0; i < n_q; i++) {
        if (adakv_eval(ctx[i], q[i], QUESTION, logits, false, &e))
            return fail("question prefill", &e);
        next[i] = answers[(size_t)i * ntg] = argmax(logits, V);
    }
    for (int s = 1; s < ntg; s++) {
        if (adakv_eval_batch(ctx, next, n_q, logits, &e))
            return fail("decode", &e);
        for (int i = 0; i < n_q; i++)
            next[i] = answers[(size_t)i * ntg + s] = argmax(logits + (size_t)i * V, V);
    }
    return 0;
}

static int fork_mode(struct adakv_model *m, const struct adakv_ctx_params *cp,
                     const struct adakv_press *p, const int32_t *doc, int npp, int ntg, int n_q,
                     bool check) {
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    const int V = info.n_vocab;
    struct adakv_err e = {{0}};
    float *logits = malloc((size_t)n_q * V * sizeof *logits);
    int32_t *answers = malloc((size_t)n_q * ntg * sizeof *answers);
    int32_t q[MAX_B][QUESTION];
    struct adakv_ctx *fork[MAX_B];
    if (!logits || !answers)
        return 1;
    struct adakv_ctx *d = adakv_ctx_new(m, cp, &e);
    if (!d || (p && adakv_ctx_set_press(d, p, false, &e)))
        return fail("context", &e);
    double t0 = now_s();
    if (adakv_eval(d, doc, npp, NULL, false, &e))
        return fail("document prefill", &e);
    const double t_doc = now_s() - t0;
    printf("document: %d tokens prefilled and compressed once in %.2f s (press %.3f s), %zu KV "
           "bytes\n",
           npp, t_doc, adakv_ctx_press_seconds(d), adakv_ctx_kv_bytes(d));
    adakv_ctx_press_enable(d, false); /* the questions are kept whole */
    unsigned seed = 99u;
    for (int i = 0; i < n_q; i++) {
        for (int j = 0; j < QUESTION; j++)
            q[i][j] = 1000 + (int32_t)(rand_r(&seed) % (unsigned)(V - 1000));
        t0 = now_s();
        fork[i] = adakv_ctx_fork(d, &e);
        if (!fork[i])
            return fail("fork", &e);
        printf("fork %d: %.4f s, %zu KV bytes, press %.3f s\n", i, now_s() - t0,
               adakv_ctx_kv_bytes(fork[i]), adakv_ctx_press_seconds(fork[i]));
    }
    t0 = now_s();
    if (answer_all(fork, n_q, (const int32_t(*)[QUESTION])q, ntg, logits, V, answers))
        return 1;
    double fork_press = 0.0;
    for (int i = 0; i < n_q; i++)
        fork_press += adakv_ctx_press_seconds(fork[i]);
    printf("%d questions of %d tokens answered from the forks (%d tokens each, decoded as one "
           "batch): %.2f s, press %.3f s in all\n",
           n_q, QUESTION, ntg, now_s() - t0, fork_press);
    int same = 0;
    if (check) { /* the same, each question from its own compression of the document */
        struct adakv_ctx *sep[MAX_B];
        int32_t *again = malloc((size_t)n_q * ntg * sizeof *again);
        if (!again)
            return 1;
        t0 = now_s();
        for (int i = 0; i < n_q; i++) {
            sep[i] = adakv_ctx_new(m, cp, &e);
            if (!sep[i] || (p && adakv_ctx_set_press(sep[i], p, false, &e)) ||
                adakv_eval(sep[i], doc, npp, NULL, false, &e))
                return fail("separate compression", &e);
            adakv_ctx_press_enable(sep[i], false);
        }
        if (answer_all(sep, n_q, (const int32_t(*)[QUESTION])q, ntg, logits, V, again))
            return 1;
        double press_s = 0.0;
        for (int i = 0; i < n_q; i++) {
            const bool eq = !memcmp(again + (size_t)i * ntg, answers + (size_t)i * ntg,
                                    (size_t)ntg * sizeof *again);
            same += eq;
            press_s += adakv_ctx_press_seconds(sep[i]);
            printf("question %d: answer from its own compression of the document %s the fork's\n",
                   i, eq ? "equals" : "DIFFERS FROM");
            adakv_ctx_free(sep[i]);
        }
        printf("the document compressed once per question instead: %.2f s, press %.3f s in all; "
               "%d of %d answers equal\n",
               now_s() - t0, press_s, same, n_q);
        free(again);
    }
    for (int i = 0; i < n_q; i++)
        adakv_ctx_free(fork[i]);
    adakv_ctx_free(d);
    free(logits), free(answers);
    return check && same != n_q;
}

int main(int argc, char **argv) {
    const char *path = NULL, *press = NULL, *ratio = NULL, *doc_path = NULL;
    int npp = 128, ntg = 64, reps = 3, threads = 0, npl[16], n_npl = 0, n_fork = 0;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check")) {
            check = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m"))
            path = v;
        else if (!strcmp(a, "-npp"))
            npp = parse_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "-ntg"))
            ntg = parse_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "-r"))
            reps = parse_int(a, v, 1, 100);
        else if (!strcmp(a, "-t"))
            threads = parse_int(a, v, 1, 1024);
        else if (!strcmp(a, "--press"))
            press = v;
        else if (!strcmp(a, "--kv-ratio"))
            ratio = v;
        else if (!strcmp(a, "--fork"))
            n_fork = parse_int(a, v, 1, MAX_B);
        else if (!strcmp(a, "-f"))
            doc_path = v;
        else if (!strcmp(a, "-npl")) {
            char *copy = strdup(v), *save = NULL;
            for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                if (n_npl == 16) {
                    fprintf(stderr, "bench-batch: -npl: at most 16 values\n");
                    return 2;
                }
                npl[n_npl++] = parse_int(a, s, 1, MAX_B);
            }
            free(copy);
        } else {
            usage();
            return 2;
        }
    }
    if (!path || (press && !ratio)) {
        usage();
        return 2;
    }
    if (!n_npl) {
        static const int def[] = {1, 2, 4, 8};
        memcpy(npl, def, sizeof def);
        n_npl = 4;
    }
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = threads};
    struct adakv_model *m = adakv_model_load(path, &mp, &e);
    if (!m)
        return fail(path, &e);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_press *p = NULL;
    if (press) {
        p = adakv_press_new();
        if (!p || adakv_press_set(p, "press", press, &e) ||
            adakv_press_set(p, "kv-ratio", ratio, &e))
            return fail("--press", &e);
    }
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = npp + ntg + 1;
    cp.n_threads = threads;
    int32_t *prompt = malloc((size_t)npp * sizeof *prompt), next[MAX_B];
    if (!prompt)
        return 1;
    if (n_fork) {
        cp.n_ctx = npp + QUESTION + ntg + 1;
        unsigned seed = 1234u;
        for (int i = 0; i < npp; i++)
            prompt[i] = 1000 + (int32_t)(rand_r(&seed) % (unsigned)(info.n_vocab - 1000));
        if (doc_path && read_doc(m, doc_path, prompt, npp))
            return 1;
        const int rc = fork_mode(m, &cp, p, prompt, npp, ntg, n_fork, check);
        adakv_press_free(p);
        free(prompt);
        adakv_model_free(m);
        return rc;
    }
    printf("model %s (%s), threads %d, press %s%s%s\n\n", path, info.arch, threads,
           press ? press : "none", press ? " kv-ratio " : "", press ? ratio : "");
    printf("| %5s | %5s | %3s | %7s | %8s | %9s | %8s | %9s | %8s |\n", "PP", "TG", "B", "N_KV",
           "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "vs B=1");
    printf("|------:|------:|----:|--------:|---------:|----------:|---------:|----------:|--------"
           "-:|\n");
    double tg1 = 0.0;
    for (int k = 0; k < n_npl; k++) {
        const int B = npl[k];
        double t_pp[100], t_tg[100];
        size_t n_kv = 0;
        for (int r = 0; r < reps; r++) {
            struct adakv_ctx *seq[MAX_B];
            unsigned seed = 1234u;
            double t0 = now_s();
            for (int b = 0; b < B; b++) {
                seq[b] = adakv_ctx_new(m, &cp, &e);
                if (!seq[b] || (p && adakv_ctx_set_press(seq[b], p, false, &e)))
                    return fail("context", &e);
                for (int i = 0; i < npp; i++) /* ordinary text ids, no control tokens */
                    prompt[i] = 1000 + (int32_t)(rand_r(&seed) % (unsigned)(info.n_vocab - 1000));
                if (adakv_eval(seq[b], prompt, npp, NULL, false, &e))
                    return fail("prefill", &e);
                next[b] = prompt[npp - 1];
            }
            t_pp[r] = now_s() - t0;
            n_kv = 0;
            for (int b = 0; b < B; b++)
                n_kv += adakv_ctx_kv_rows(seq[b]) / ((size_t)info.n_layer * info.n_head_kv);
            t0 = now_s();
            for (int s = 0; s < ntg; s++) {
                const int rc = B == 1 ? adakv_eval(seq[0], next, 1, NULL, false, &e)
                                      : adakv_eval_batch(seq, next, B, NULL, &e);
                if (rc)
                    return fail("decode", &e);
                for (int b = 0; b < B; b++)
                    next[b] = 1000 + (int32_t)((next[b] * 7919 + s) % (info.n_vocab - 1000));
            }
            t_tg[r] = now_s() - t0;
            for (int b = 0; b < B; b++)
                adakv_ctx_free(seq[b]);
        }
        qsort(t_pp, (size_t)reps, sizeof *t_pp, cmp_d);
        qsort(t_tg, (size_t)reps, sizeof *t_tg, cmp_d);
        const double pp = t_pp[reps / 2], tg = t_tg[reps / 2];
        const double s_tg = (double)B * ntg / tg;
        if (B == 1)
            tg1 = s_tg;
        char vs[16] = "-";
        if (tg1 > 0.0)
            snprintf(vs, sizeof vs, "%.2fx", s_tg / tg1);
        printf("| %5d | %5d | %3d | %7zu | %8.3f | %9.1f | %8.3f | %9.1f | %8s |\n", npp, ntg, B,
               n_kv, pp, (double)B * npp / pp, tg, s_tg, vs);
        fflush(stdout);
    }
    adakv_press_free(p);
    free(prompt);
    adakv_model_free(m);
    return 0;
}
