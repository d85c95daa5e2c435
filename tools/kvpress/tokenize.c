/* Prints the token ids adakv's tokenizer gives a text file (no BOS/EOS added unless the model
 * says so, special tokens not parsed), one line, space-separated. tools/kvpress/golden.py feeds
 * exactly these ids to transformers, so kvpress and adakv compress identical sequences;
 * tests/test_kvpress_keep.c re-tokenizes the same file and checks it still gets these ids.
 *
 * Only the public API (libadakv.so hides the tokenizer's own symbols). Built by
 * tools/kvpress/run.sh against the build tree:
 *     cc -std=c11 -Isrc tools/kvpress/tokenize.c -Lbuild/.libs -ladakv
 * usage: tokenize model.gguf text.txt */
#include <stdio.h>
#include <stdlib.h>

#include "adakv.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s model.gguf text.txt\n", argv[0]);
        return 2;
    }
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = 1};
    struct adakv_model *m = adakv_model_load(argv[1], &mp, &e);
    if (!m) {
        fprintf(stderr, "tokenize: %s\n", e.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    int32_t *ids = NULL;
    size_t n = 0;
    if (adakv_tokenize(m, text, len, true, false, &ids, &n, &e) < 0) {
        fprintf(stderr, "tokenize: %s\n", e.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    adakv_free(ids);
    adakv_model_free(m);
    return 0;
}
