/* Fuzz target: adakv-run's command-line parser. The input is an argv vector, its arguments
 * separated by NUL bytes (argv[0] is added), so mutations add, drop, repeat and edit flags and
 * values. The parser must return 0 or one error line; the options it built are freed either way.
 * The vector is a private copy: cli_parse may modify argv strings as main's may. */
#include <stdlib.h>

#include "cli.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int n = 0;
    char **args = fuzz_split(data, size, &n);
    if (!args)
        return 0;
    char **argv = malloc(((size_t)n + 2) * sizeof *argv);
    if (argv) {
        argv[0] = "adakv-run";
        for (int i = 0; i < n; i++)
            argv[i + 1] = args[i];
        argv[n + 1] = NULL; /* as main's argv */
        struct cli_opts o;
        struct adakv_err e = {{0}};
        (void)cli_parse(n + 1, argv, &o, &e);
        cli_opts_free(&o);
    }
    free(argv);
    free(args);
    return 0;
}
