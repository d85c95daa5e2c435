/* press-cost: what a question-agnostic press costs, as % of one prefill of the same context
 * (issue 12: KVzip-style <= 100%, expected-attention-style <= 5% at 8k tokens).
 *
 * For each length L: the first L tokens of a text file are prefilled once with the full cache
 * (the baseline) and once per press at the ratio; KVzip presses prefill through
 * adakv_ctx_prefill_kvzip with the reconstruction "\n\n" KVZIP_REPEAT_PROMPT "\n" + the same L
 * tokens (kvpress's prompt for a model without a chat template). Printed per press: wall seconds,
 * the hook's seconds (adakv_ctx_press_seconds: scoring, selection, compaction), and the extra
 * wall time over the baseline as % of it. Each prefill runs `reps` times; the minimum counts
 * (the machine is shared: the minimum is the least disturbed run).
 *
 * usage: press-cost MODEL TEXT THREADS RATIO REPS LEN... -- PRESS...
 * (a PRESS is a name, or NAME:OPTION=VALUE:...: kvzip:rec-chunk=1024) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv-ext.h"
#include "tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return s;
}

struct run_time {
    double wall, hook;
};

/* A press argument NAME[:OPTION=VALUE...] (press options as adakv_press_set takes them). */
static int press_from_arg(struct adakv_press *p, const char *arg, struct adakv_err *e) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    char *save = NULL, *tok = strtok_r(buf, ":", &save);
    int rc = adakv_press_set(p, "press", tok ? tok : "", e);
    while (!rc && (tok = strtok_r(NULL, ":", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(e->msg, sizeof e->msg, "press-cost: %s: an option needs NAME=VALUE", tok);
            return -1;
        }
        *eq = '\0';
        rc = adakv_press_set(p, tok, eq + 1, e);
    }
    return rc;
}

static int one(struct adakv_ctx *c, const char *press, const char *ratio, const int32_t *tok, int n,
               const int32_t *rec, int n_rec, struct run_time *out, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    int rc = !p || press_from_arg(p, press, e) ||
             (strcmp(press, "full") && adakv_press_set(p, "kv-ratio", ratio, e));
    adakv_ctx_reset(c);
    if (!rc)
        rc = adakv_ctx_set_press(c, p, false, e);
    const bool kvzip = !rc && adakv_press_needs_reconstruction(p);
    adakv_press_free(p);
    if (rc)
        return -1;
    const double t0 = now_s();
    rc = kvzip ? adakv_ctx_prefill_kvzip(c, tok, n, rec, n_rec, e)
               : adakv_eval(c, tok, n, NULL, false, e);
    out->wall = now_s() - t0;
    out->hook = adakv_ctx_press_seconds(c);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: press-cost MODEL TEXT THREADS RATIO REPS LEN... -- PRESS...\n");
        return 2;
    }
    struct adakv_err e = {{0}};
    const int threads = atoi(argv[3]), reps = atoi(argv[5]);
    const char *ratio = argv[4];
    int a = 6, lens[16], n_len = 0;
    while (a < argc && strcmp(argv[a], "--") && n_len < 16)
        lens[n_len++] = atoi(argv[a++]);
    const int first_press = a + 1;
    struct adakv_model_params mp = {.n_threads = threads};
    struct adakv_model *m = adakv_model_load(argv[1], &mp, &e);
    size_t len = 0;
    char *text = read_all(argv[2], &len);
    if (!m || !text) {
        fprintf(stderr, "press-cost: %s\n", m ? "cannot read the text" : e.msg);
        return 1;
    }
    const struct tokenizer *t = adakv_model_tokenizer(m);
    int32_t *tok = NULL, *rp = NULL;
    size_t n_tok = 0, n_rp = 0;
    const char *repeat = "\n\n" KVZIP_REPEAT_PROMPT "\n";
    if (tokenizer_encode(t, text, len, false, false, &tok, &n_tok, &e) ||
        tokenizer_encode(t, repeat, strlen(repeat), false, false, &rp, &n_rp, &e)) {
        fprintf(stderr, "press-cost: %s\n", e.msg);
        return 1;
    }
    printf("tokens,press,ratio,threads,wall_s,hook_s,extra_pct_of_prefill\n");
    for (int li = 0; li < n_len; li++) {
        const int n = lens[li];
        if ((size_t)n > n_tok) {
            fprintf(stderr, "press-cost: the text has only %zu tokens\n", n_tok);
            return 1;
        }
        int32_t *rec = malloc(((size_t)n + n_rp) * sizeof *rec);
        memcpy(rec, rp, n_rp * sizeof *rec);
        memcpy(rec + n_rp, tok, (size_t)n * sizeof *rec);
        const int n_rec = n + (int)n_rp;
        struct adakv_ctx_params cp;
        adakv_ctx_params_default(&cp);
        cp.n_ctx = n + n_rec + 8;
        cp.n_threads = threads;
        struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
        if (!c) {
            fprintf(stderr, "press-cost: %s\n", e.msg);
            return 1;
        }
        double base = 0.0;
        for (int pi = first_press - 1; pi < argc; pi++) {
            const char *press = pi == first_press - 1 ? "full" : argv[pi];
            struct run_time best = {1e30, 0.0};
            for (int r = 0; r < reps; r++) {
                struct run_time rt;
                if (one(c, press, ratio, tok, n, rec, n_rec, &rt, &e)) {
                    fprintf(stderr, "press-cost: %s: %s\n", press, e.msg);
                    return 1;
                }
                if (rt.wall < best.wall)
                    best = rt;
            }
            if (pi == first_press - 1)
                base = best.wall;
            printf("%d,%s,%s,%d,%.3f,%.3f,%.1f\n", n, press, pi == first_press - 1 ? "0" : ratio,
                   threads, best.wall, best.hook, 100.0 * (best.wall - base) / base);
            fflush(stdout);
        }
        adakv_ctx_free(c);
        free(rec);
    }
    free(tok), free(rp), free(text);
    adakv_model_free(m);
    return 0;
}
