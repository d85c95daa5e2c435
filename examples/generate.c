/* examples/generate.c: a whole program on the installed library alone (adakv.h, libadakv.so),
 * built with `cc generate.c $(pkg-config --cflags --libs adakv)`. Greedy generation from a
 * prompt, printed as it comes; with a press, the prompt's KV cache is compressed first.
 *
 *   generate MODEL.gguf PROMPT [N_TOKENS] [PRESS RATIO]
 *   e.g. generate model.gguf "The capital of France is" 16 ada-snapkv 0.5
 *
 * `make installcheck` builds it against the installed tree and compares its output with
 * adakv-run's (greedy, same prompt and count): the API gives what the CLI gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <adakv.h>

static int fail(const char *what, const struct adakv_err *e) {
    fprintf(stderr, "generate: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4 && argc != 6) {
        fprintf(stderr, "usage: generate MODEL.gguf PROMPT [N_TOKENS] [PRESS RATIO]\n");
        return 2;
    }
    const int n_predict = argc > 3 ? atoi(argv[3]) : 32;
    struct adakv_err e;
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(argv[1], &mp, &e);
    if (!m)
        return fail("load", &e);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);

    int32_t *tokens;
    size_t n;
    if (adakv_tokenize(m, argv[2], strlen(argv[2]), true, false, &tokens, &n, &e) < 0)
        return fail("tokenize", &e);

    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = (int)n + n_predict + 1;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    if (!c)
        return fail("context", &e);
    if (argc == 6) { /* a press by name, with the CLI's option names and checks */
        struct adakv_press *p = adakv_press_new();
        if (adakv_press_set(p, "press", argv[4], &e) < 0 ||
            adakv_press_set(p, "kv-ratio", argv[5], &e) < 0 || adakv_press_check(p, &e) < 0 ||
            adakv_ctx_set_press(c, p, false, &e) < 0)
            return fail("press", &e);
        adakv_press_free(p);
    }

    struct adakv_sampler_params sp;
    adakv_sampler_params_default(&sp);
    sp.temp = 0.0f; /* greedy */
    struct adakv_sampler *s = adakv_sampler_new(m, &sp, &e);
    float *logits = malloc(sizeof(float) * (size_t)info.n_vocab);
    if (!s || !logits)
        return fail("sampler", &e);

    int rc = adakv_eval(c, tokens, (int)n, logits, false, &e); /* the prompt */
    size_t cap = 64;
    char *piece = malloc(cap);
    for (int i = 0; rc == 0 && piece && i < n_predict; i++) {
        int32_t t = adakv_sample(s, logits);
        if (adakv_token_is_eog(m, t))
            break;
        size_t len = adakv_token_piece(m, t, piece, cap);
        if (len > cap) { /* a long piece: room for it, then again */
            free(piece);
            piece = malloc(cap = len);
            if (!piece)
                break;
            adakv_token_piece(m, t, piece, cap);
        }
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
        rc = adakv_eval(c, &t, 1, logits, false, &e);
    }
    free(piece);
    printf("\n");
    if (rc < 0)
        return fail("eval", &e);
    fprintf(stderr, "generate: %s, %d layers; KV %zu rows, %zu bytes\n", info.arch, info.n_layer,
            adakv_ctx_kv_rows(c), adakv_ctx_kv_bytes(c));
    adakv_free(tokens);
    free(logits);
    adakv_sampler_free(s);
    adakv_ctx_free(c);
    adakv_model_free(m);
    return 0;
}
