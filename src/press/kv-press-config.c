/* Press configuration (kv-press.h): defaults, the press names (adakv's and kvpress's), the flag
 * parsers the CLI and adakv_press_set call, the checks of a whole configuration, and what a
 * configuration implies (per-head budget, whether W_O is needed). */
#include "kv-press.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"

/* ---------------------------------------------------------------- configuration and flags */

void kv_press_config_default(struct kv_press_config *c) {
    *c = (struct kv_press_config){
        .kind = KV_PRESS_SNAPKV,
        .alloc = KV_ALLOC_UNIFORM,
        .budget = 0,
        .ratio = 0.0f,
        .window = 32,
        .kernel = 7,
        .pool = KV_POOL_MAX,
        .alpha = 0.2f,
        .beta = 20.0f,
        .n_sink = 4,
        .critical_ratio = 0.5f,
        .critical_eps = 1e-4f,
        .seed = 42,
        .reserve = 0,
        .kv_max = 0,
        .decode_chunk = 64,
        .eattn_future = 512,
        .eattn_eps = 0.0f,
    };
}

static const struct {
    const char *name;
    enum kv_press_kind kind;
    enum kv_press_alloc alloc;
    bool sets_alloc;
} press_names[] = {
    {"full", KV_PRESS_FULL, KV_ALLOC_UNIFORM, false},
    {"none", KV_PRESS_FULL, KV_ALLOC_UNIFORM, false},
    {"no_press", KV_PRESS_FULL, KV_ALLOC_UNIFORM, false},
    {"streaming", KV_PRESS_STREAMING, KV_ALLOC_UNIFORM, false},
    {"streaming_llm", KV_PRESS_STREAMING, KV_ALLOC_UNIFORM, false},
    {"snapkv", KV_PRESS_SNAPKV, KV_ALLOC_UNIFORM, false},
    {"ada-snapkv", KV_PRESS_SNAPKV, KV_ALLOC_ADA, true},
    {"adakv_snapkv", KV_PRESS_SNAPKV, KV_ALLOC_ADA, true},
    {"pyramid", KV_PRESS_PYRAMID, KV_ALLOC_UNIFORM, false},
    {"pyramidkv", KV_PRESS_PYRAMID, KV_ALLOC_UNIFORM, false},
    {"ada-pyramid", KV_PRESS_PYRAMID, KV_ALLOC_ADA, true},
    {"critical", KV_PRESS_CRITICAL, KV_ALLOC_UNIFORM, false},
    {"critical_snapkv", KV_PRESS_CRITICAL, KV_ALLOC_UNIFORM, false},
    {"ada-critical", KV_PRESS_CRITICAL, KV_ALLOC_ADA, true},
    {"critical_adakv_snapkv", KV_PRESS_CRITICAL, KV_ALLOC_ADA, true},
    {"random", KV_PRESS_RANDOM, KV_ALLOC_UNIFORM, false},
    {"knorm", KV_PRESS_KNORM, KV_ALLOC_UNIFORM, false},
    {"kvzip", KV_PRESS_KVZIP, KV_ALLOC_UNIFORM, false},
    {"ada-kvzip", KV_PRESS_KVZIP, KV_ALLOC_ADA, true},
    {"adakv_kvzip", KV_PRESS_KVZIP, KV_ALLOC_ADA, true},
    {"expected", KV_PRESS_EATTN, KV_ALLOC_UNIFORM, false},
    {"expected_attention", KV_PRESS_EATTN, KV_ALLOC_UNIFORM, false},
    {"ada-expected", KV_PRESS_EATTN, KV_ALLOC_ADA, true},
    {"adakv_expected_attention", KV_PRESS_EATTN, KV_ALLOC_ADA, true},
};

const char *kv_press_name(enum kv_press_kind kind) {
    for (size_t i = 0; i < sizeof press_names / sizeof press_names[0]; i++)
        if (press_names[i].kind == kind)
            return press_names[i].name;
    return "?";
}

int kv_press_parse_name(const char *s, struct kv_press_config *c, struct adakv_err *e) {
    for (size_t i = 0; i < sizeof press_names / sizeof press_names[0]; i++)
        if (s && strcmp(s, press_names[i].name) == 0) {
            c->kind = press_names[i].kind;
            if (press_names[i].sets_alloc)
                c->alloc = press_names[i].alloc;
            return 0;
        }
    return err_set(e,
                   "--press: unknown press '%s' (full, streaming, snapkv, pyramid, critical, "
                   "random, knorm, kvzip, expected, ada-snapkv, ada-pyramid, ada-critical, "
                   "ada-kvzip, ada-expected, or a kvpress name)",
                   s ? s : "");
}

/* Whole-string float parse: trailing junk, empty strings and overflow are errors (integers:
 * flag.h). */
static int parse_float(const char *s, const char *flag, float *out, struct adakv_err *e) {
    char *end;
    errno = 0;
    float v = s ? strtof(s, &end) : 0.0f;
    if (!s || end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return err_set(e, "%s: '%s' is not a finite number", flag, s ? s : "");
    *out = v;
    return 0;
}

int kv_press_parse_budget(const char *s, int *out, struct adakv_err *e) {
    return flag_parse_int("--kv-budget", s, 1, 1 << 30, out, e);
}

int kv_press_parse_ratio(const char *s, float *out, struct adakv_err *e) {
    float v = 0.0f;
    if (parse_float(s, "--kv-ratio", &v, e) < 0)
        return -1;
    if (!(v >= 0.0f && v < 1.0f))
        return err_set(e, "--kv-ratio: %g is outside [0, 1) (fraction of entries removed)", v);
    *out = v;
    return 0;
}

int kv_press_parse_alpha(const char *s, float *out, struct adakv_err *e) {
    float v = 0.0f;
    if (parse_float(s, "--alpha", &v, e) < 0)
        return -1;
    if (!(v >= 0.0f && v <= 1.0f))
        return err_set(e, "--alpha: %g is outside [0, 1]", v);
    *out = v;
    return 0;
}

int kv_press_parse_window(const char *s, int *out, struct adakv_err *e) {
    return flag_parse_int("--window", s, 1, 1 << 20, out, e);
}

int kv_press_parse_kernel(const char *s, int *out, struct adakv_err *e) {
    int v = 0;
    if (flag_parse_int("--pool-kernel", s, 1, 1023, &v, e) < 0)
        return -1;
    if (v % 2 == 0)
        return err_set(e, "--pool-kernel: %d is even (the pooling window must be centred)", v);
    *out = v;
    return 0;
}

int kv_press_parse_beta(const char *s, float *out, struct adakv_err *e) {
    float v = 0.0f;
    if (parse_float(s, "--beta", &v, e) < 0)
        return -1;
    if (!(v > 0.0f))
        return err_set(e, "--beta: %g must be > 0", v);
    *out = v;
    return 0;
}

int kv_press_parse_sink(const char *s, int *out, struct adakv_err *e) {
    return flag_parse_int("--sink", s, 0, 1 << 20, out, e);
}

int kv_press_parse_kv_max(const char *s, int *out, struct adakv_err *e) {
    return flag_parse_int("--kv-max", s, 1, 1 << 30, out, e);
}

int kv_press_parse_kv_chunk(const char *s, int *out, struct adakv_err *e) {
    return flag_parse_int("--kv-chunk", s, 1, 1 << 30, out, e);
}

int kv_press_parse_pool(const char *s, enum kv_pool *out, struct adakv_err *e) {
    if (s && strcmp(s, "max") == 0)
        *out = KV_POOL_MAX;
    else if (s && strcmp(s, "avg") == 0)
        *out = KV_POOL_AVG;
    else
        return err_set(e, "--pool: unknown pooling '%s' (max or avg)", s ? s : "");
    return 0;
}

int kv_press_check_window(int window, int prompt_len, struct adakv_err *e) {
    if (window > prompt_len)
        return err_set(e, "--window: %d is longer than the prompt (%d tokens)", window, prompt_len);
    return 0;
}

int kv_press_config_check(const struct kv_press_config *c, struct adakv_err *e) {
    if (c->budget < 0)
        return err_set(e, "--kv-budget: %d must be >= 1", c->budget);
    if (c->budget > 0 && c->ratio > 0.0f)
        return err_set(e, "--kv-budget and --kv-ratio are mutually exclusive");
    if (!(c->ratio >= 0.0f && c->ratio < 1.0f))
        return err_set(e, "--kv-ratio: %g is outside [0, 1)", c->ratio);
    if (!(c->alpha >= 0.0f && c->alpha <= 1.0f))
        return err_set(e, "--alpha: %g is outside [0, 1]", c->alpha);
    if (c->window < 1)
        return err_set(e, "--window: %d must be >= 1", c->window);
    if (c->kernel < 1 || c->kernel % 2 == 0)
        return err_set(e, "--pool-kernel: %d must be odd and >= 1", c->kernel);
    if (!(c->beta > 0.0f))
        return err_set(e, "--beta: %g must be > 0", c->beta);
    if (c->n_sink < 0)
        return err_set(e, "--sink: %d must be >= 0", c->n_sink);
    if (!(c->critical_ratio >= 0.0f && c->critical_ratio <= 1.0f))
        return err_set(e, "critical stage-1 ratio %g is outside [0, 1]", c->critical_ratio);
    if (c->reserve < 0)
        return err_set(e, "kv reserve %d must be >= 0", c->reserve);
    if (c->kv_max < 0)
        return err_set(e, "--kv-max: %d must be >= 1 (or 0 for no cap)", c->kv_max);
    if (c->kv_max > 0 && c->kv_max <= c->window)
        return err_set(e, "--kv-max: %d must exceed --window %d (the recent rows re-scoring it)",
                       c->kv_max, c->window);
    if (c->decode_chunk < 1)
        return err_set(e, "--kv-chunk: %d must be >= 1", c->decode_chunk);
    return 0;
}

bool kv_press_needs_w_o(const struct kv_press_config *c) {
    return c->kind == KV_PRESS_CRITICAL;
}

int kv_press_head_budget(const struct kv_press_config *c, int len) {
    if (c->budget > 0)
        return c->budget;
    int b = (int)floorf((float)len * (1.0f - c->ratio)); /* float: 0.2 removed of 1000 keeps 800 */
    return b < 1 ? 1 : b;
}
