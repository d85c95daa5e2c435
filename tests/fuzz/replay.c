/* The fuzz targets without libFuzzer: a `make check` test per target (built by the normal
 * compiler, so also under the ASan/UBSan build of tools/test.sh) that runs the target's
 * LLVMFuzzerTestOneInput over the generated seeds and every committed reproducer in
 * $ADAKV_SRCDIR/tests/fuzz/regress/TARGET/ (a crash found by the campaign stays fixed), or over
 * the files and directories given as arguments (to replay a new crash file by hand).
 * FUZZ_TARGET names the target at compile time. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the target"
#endif

/* Each input in a buffer of its exact size, as libFuzzer gives it: a read past the end is a
 * heap overflow ASan reports. */
static void run_seed(const uint8_t *data, size_t size, const char *name, void *user) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    (*(int *)user)++;
    (void)name;
}

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap)
            buf = realloc(buf, cap *= 2);
    fclose(f);
    if (!buf)
        abort();
    uint8_t *exact = realloc(buf, n ? n : 1);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

/* A file, or every regular file of a directory (not recursive). Returns the count, -1 when
 * the path cannot be read. */
static int run_path(const char *path) {
    struct stat st;
    if (stat(path, &st))
        return -1;
    if (!S_ISDIR(st.st_mode))
        return run_file(path) ? -1 : 1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (de->d_name[0] != '.' && !stat(p, &st) && S_ISREG(st.st_mode) && !run_file(p))
            n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (run_path(argv[i]) < 0) {
                fprintf(stderr, "%s: cannot read\n", argv[i]);
                return 1;
            }
        return 0;
    }
    int n_seeds = 0;
    if (fuzz_seeds(FUZZ_TARGET, run_seed, &n_seeds) < 0)
        return 1;
    const char *src = getenv("ADAKV_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src ? src : ".", FUZZ_TARGET);
    const int n_regress = run_path(dir); /* -1: no reproducers for this target (yet) */
    printf("fuzz-replay %s: %d seeds, %d reproducers from %s\n", FUZZ_TARGET, n_seeds,
           n_regress > 0 ? n_regress : 0, dir);
    return n_seeds > 0 ? 0 : 1;
}
