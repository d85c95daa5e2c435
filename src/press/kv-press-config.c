/* Press configuration (kv-press.h): a press by name (adakv's and kvpress's, from the table of
 * presses), the window against the prompt, and what a configuration implies (per-head budget,
 * whether W_O is needed). Its options: press-options.c. */
#include "kv-press.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- configuration and flags */

int kv_press_parse_name(const char *s, struct kv_press_config *c, struct adakv_err *e) {
    bool ada = false;
    const struct press_desc *d = kv_press_find(s, &ada);
    if (d) {
        c->press = d;
        if (ada)
            c->alloc = KV_ALLOC_ADA;
        return 0;
    }
    /* the table's names, then its ada names: what --help lists */
    char names[320] = "";
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < kv_n_presses && n < sizeof names; i++) {
            const char *name = pass ? kv_presses[i].ada[0] : kv_presses[i].name;
            if (name)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s, ", name);
        }
    return err_set(e, "--press: unknown press '%s' (%sor a kvpress name)", s ? s : "", names);
}

int kv_press_check_window(int window, int prompt_len, struct adakv_err *e) {
    if (window > prompt_len)
        return err_set(e, "--window: %d is longer than the prompt (%d tokens)", window, prompt_len);
    return 0;
}

bool kv_press_needs_w_o(const struct kv_press_config *c) {
    return c->press->needs & PRESS_NEEDS_W_O;
}

int kv_press_head_budget(const struct kv_press_config *c, int len) {
    if (c->budget > 0)
        return c->budget;
    int b = (int)floorf((float)len * (1.0f - c->ratio)); /* float: 0.2 removed of 1000 keeps 800 */
    return b < 1 ? 1 : b;
}
