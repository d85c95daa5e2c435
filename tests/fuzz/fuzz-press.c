/* Fuzz target: the press option parser (adakv_press_set: the --press, --kv-budget, --alpha ...
 * values of adakv-run, adakv-eval and adakv-fidelity --press-opt) and its cross-checks.
 * The input is NAME\0VALUE\0NAME\0VALUE...; every pair is applied in order (a rejected one
 * leaves the press as it was, so later pairs still run), then the whole press is checked and
 * described as the CLI would print it. */
#include <stdlib.h>

#include "adakv.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int n = 0;
    char **args = fuzz_split(data, size, &n);
    if (!args)
        return 0;
    struct adakv_press *p = adakv_press_new();
    if (p) {
        struct adakv_err e = {{0}};
        for (int i = 0; i < n; i += 2) /* a lone last name has a NULL value: "missing value" */
            (void)adakv_press_set(p, args[i], i + 1 < n ? args[i + 1] : NULL, &e);
        (void)adakv_press_check(p, &e);
        char desc[256];
        adakv_press_describe(p, desc, sizeof desc);
        (void)adakv_press_evicts(p);
        (void)adakv_press_window(p);
        adakv_press_free(p);
    }
    free(args);
    return 0;
}
