/* fuzz-seeds TARGET DIR: writes TARGET's seed corpus (seeds.c) into DIR, one file per seed,
 * for tools/fuzz.sh to hand to libFuzzer. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

static void write_seed(const uint8_t *data, size_t size, const char *name, void *user) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", (const char *)user, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
        fprintf(stderr, "fuzz-seeds: cannot write %s\n", path);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz-seeds TARGET DIR\n");
        return 2;
    }
    const int n = fuzz_seeds(argv[1], write_seed, argv[2]);
    if (n < 0)
        return 1;
    printf("fuzz-seeds: %d seeds for %s in %s\n", n, argv[1], argv[2]);
    return 0;
}
