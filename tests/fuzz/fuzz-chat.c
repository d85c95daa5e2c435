/* Fuzz target: the chat template renderer (format detection from markers in the template text,
 * default system messages, trimming, the user text spliced in).
 *
 * Input: "TEMPLATE\0USER TEXT" renders USER TEXT with TEMPLATE; an input without a NUL is user
 * text for the fallback (no template: plain ChatML). The template is copied to a buffer of its
 * exact length, since the renderer takes (pointer, length) and must not read past it. */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    char *tmpl = NULL;
    size_t tmpl_len = 0;
    const char *user = (const char *)data;
    size_t user_len = size;
    if (nul) {
        tmpl_len = (size_t)(nul - data);
        if (!(tmpl = malloc(tmpl_len ? tmpl_len : 1)))
            return 0;
        memcpy(tmpl, data, tmpl_len);
        user = (const char *)nul + 1;
        user_len = size - tmpl_len - 1;
    }
    struct adakv_err e = {{0}};
    char *out = NULL;
    size_t out_len = 0;
    (void)chat_format_name(tmpl ? chat_detect(tmpl, tmpl_len) : CHAT_FORMAT_CHATML);
    if (!chat_apply_template(tmpl, tmpl_len, user, user_len, &out, &out_len, &e)) {
        if (out[out_len] != '\0') /* the contract: NUL-terminated at out_len */
            abort();
        free(out);
    }
    free(tmpl);
    return 0;
}
