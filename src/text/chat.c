/* Chat formats recognised from template markers; see chat.h. */
#include "chat.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool has(const char *s, size_t n, const char *needle) {
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

enum chat_format chat_detect(const char *tmpl, size_t len) {
    if (!tmpl)
        return CHAT_FORMAT_UNKNOWN;
    if (has(tmpl, len, "<|im_start|>"))
        return CHAT_FORMAT_CHATML;
    if (has(tmpl, len, "<|start_header_id|>") && has(tmpl, len, "<|end_header_id|>"))
        return CHAT_FORMAT_LLAMA3;
    if (has(tmpl, len, "[INST]"))
        return CHAT_FORMAT_MISTRAL;
    if (has(tmpl, len, "<start_of_turn>"))
        return CHAT_FORMAT_GEMMA;
    return CHAT_FORMAT_UNKNOWN;
}

const char *chat_format_name(enum chat_format fmt) {
    switch (fmt) {
    case CHAT_FORMAT_CHATML:
        return "chatml";
    case CHAT_FORMAT_LLAMA3:
        return "llama3";
    case CHAT_FORMAT_MISTRAL:
        return "mistral";
    case CHAT_FORMAT_GEMMA:
        return "gemma";
    default:
        return "unknown";
    }
}

/* Growable output string. */
struct buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n) {
    if (b->oom || n == 0) /* s may be NULL then */
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) {
    put(b, s, strlen(s));
}

/* The default system message a ChatML template writes when the conversation has none (SmolLM2:
 * "You are a helpful AI assistant named SmolLM, trained by Hugging Face"; Qwen2: "You are a
 * helpful assistant."): a string literal "<|im_start|>system\n<text><|im_end|>" whose text
 * is plain (no quote, no expression). Occurrences that continue with an expression (the
 * branch that copies the user's own system message) are skipped. Returns false if none. */
static bool chatml_default_system(const char *t, size_t n, struct buf *sys) {
    static const char head[] = "<|im_start|>system";
    const char *end = t + n, *p = t;
    while ((p = memmem(p, (size_t)(end - p), head, sizeof head - 1))) {
        const char *q = p + sizeof head - 1;
        p = q;
        if (q < end && *q == '\n')
            q++;
        else if (end - q >= 2 && q[0] == '\\' && q[1] == 'n')
            q += 2;
        else
            continue;
        const char *stop = memmem(q, (size_t)(end - q), "<|im_end|>", 10);
        if (!stop || stop == q)
            continue;
        bool plain = true;
        for (const char *c = q; c < stop && plain; c++)
            plain = *c != '\'' && *c != '"' && *c != '{' && *c != '}';
        if (!plain)
            continue;
        sys->n = 0;
        for (const char *c = q; c < stop; c++) { /* Jinja string escapes */
            if (*c == '\\' && c + 1 < stop && c[1] == 'n') {
                put(sys, "\n", 1);
                c++;
            } else {
                put(sys, c, 1);
            }
        }
        return !sys->oom;
    }
    return false;
}

static bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Drops ASCII white space at both ends of u[0..*len) (Jinja's trim, llama.cpp's trim()). */
static const char *trim(const char *u, size_t *len) {
    while (*len && is_ascii_space(u[0]))
        u++, (*len)--;
    while (*len && is_ascii_space(u[*len - 1]))
        (*len)--;
    return u;
}

/* The system message's text when the conversation opens with one (it then is m[0]). */
static bool opens_with_system(const struct adakv_chat_message *m, size_t n) {
    return n && !strcmp(m[0].role, "system");
}

/* Llama 3: every turn "<|start_header_id|>role<|end_header_id|>\n\n" content "<|eot_id|>",
 * content trimmed where the template pipes it through Jinja's trim. Llama 3.1+ templates always
 * open with a system block carrying the knowledge cut-off and a date (a fixed default, "26 Jul
 * 2024", or with strftime_now today's), the conversation's own system text after it. */
static void render_llama3(const char *t, size_t n, const struct adakv_chat_message *m, size_t n_m,
                          struct buf *b) {
    const bool trims = has(t, n, "trim");
    size_t first = 0;
    if (has(t, n, "Cutting Knowledge Date")) {
        char date[32] = "26 Jul 2024";
        if (has(t, n, "strftime_now")) {
            time_t now = time(NULL);
            struct tm tmv;
            if (localtime_r(&now, &tmv))
                strftime(date, sizeof date, "%d %b %Y", &tmv);
        }
        puts_(b, "<|start_header_id|>system<|end_header_id|>\n\n"
                 "Cutting Knowledge Date: December 2023\nToday Date: ");
        puts_(b, date);
        puts_(b, "\n\n");
        if (opens_with_system(m, n_m)) {
            size_t len = m[0].len;
            const char *u = trim(m[0].content, &len);
            put(b, u, len);
            first = 1;
        }
        puts_(b, "<|eot_id|>");
    }
    for (size_t i = first; i < n_m; i++) {
        size_t len = m[i].len;
        const char *u = trims ? trim(m[i].content, &len) : m[i].content;
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        put(b, u, len);
        puts_(b, "<|eot_id|>");
    }
    puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Roles system (first only), user and assistant, a user turn last: the conversations every
 * format here renders the same way as its templates do. */
static int check_messages(const struct adakv_chat_message *m, size_t n, struct adakv_err *e) {
    if (n == 0)
        return err_set(e, "chat: no messages");
    for (size_t i = 0; i < n; i++) {
        const char *r = m[i].role ? m[i].role : "";
        if (strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "system"))
            return err_set(e, "chat: message %zu: role '%.32s' is not system, user or assistant",
                           i + 1, r);
        if (!strcmp(r, "system") && i > 0)
            return err_set(e, "chat: message %zu: a system message may only come first", i + 1);
        if (!m[i].content && m[i].len)
            return err_set(e, "chat: message %zu: no content", i + 1);
    }
    if (strcmp(m[n - 1].role, "user"))
        return err_set(e, "chat: the last message must be the user's (the answer follows it)");
    return 0;
}

/* Renders the conversation m[0..n) in format fmt, ending where the assistant's answer starts
 * (tmpl, when not NULL, supplies the details a format takes from its template). */
static int render(enum chat_format fmt, const char *tmpl, size_t tmpl_len,
                  const struct adakv_chat_message *m, size_t n, char **out, size_t *out_len,
                  struct adakv_err *e) {
    if (check_messages(m, n, e))
        return -1;
    struct buf b = {0}, sys = {0};
    switch (fmt) {
    case CHAT_FORMAT_CHATML: /* the template's default system message when m has none */
        if (!opens_with_system(m, n) && tmpl && chatml_default_system(tmpl, tmpl_len, &sys)) {
            puts_(&b, "<|im_start|>system\n");
            put(&b, sys.p, sys.n);
            puts_(&b, "<|im_end|>\n");
        }
        for (size_t i = 0; i < n; i++) {
            puts_(&b, "<|im_start|>");
            puts_(&b, m[i].role);
            puts_(&b, "\n");
            put(&b, m[i].content, m[i].len);
            puts_(&b, "<|im_end|>\n");
        }
        puts_(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_FORMAT_LLAMA3:
        render_llama3(tmpl, tmpl_len, m, n, &b);
        break;
    case CHAT_FORMAT_MISTRAL: {
        /* v0.1/v0.2 templates write "[INST] " + content + " [/INST]"; v0.3 and later drop the
         * space before [/INST], tekken versions both spaces: follow the template's literals.
         * A system text opens the first [INST] block (llama.cpp's mistral forms); an answer is
         * " " (no space in tekken) + content + "</s>" and closes the block. */
        const bool open_sp = has(tmpl, tmpl_len, "[INST] ");
        const bool close_sp = has(tmpl, tmpl_len, " [/INST]");
        bool inside = false;
        for (size_t i = 0; i < n; i++) {
            if (!inside)
                puts_(&b, open_sp ? "[INST] " : "[INST]");
            inside = true;
            if (!strcmp(m[i].role, "system")) {
                put(&b, m[i].content, m[i].len);
                puts_(&b, "\n\n");
            } else if (!strcmp(m[i].role, "user")) {
                put(&b, m[i].content, m[i].len);
                puts_(&b, close_sp ? " [/INST]" : "[/INST]");
            } else { /* v0.3 ("[INST] ", "[/INST]") trims the answer, as llama.cpp does */
                size_t len = m[i].len;
                const char *u = open_sp && !close_sp ? trim(m[i].content, &len) : m[i].content;
                puts_(&b, open_sp ? " " : "");
                put(&b, u, len);
                puts_(&b, "</s>");
                inside = false;
            }
        }
        break;
    }
    case CHAT_FORMAT_GEMMA: /* llama.cpp LLM_CHAT_TEMPLATE_GEMMA: trimmed content, the system
                             * text before the first user turn's, "model" for the assistant */
        for (size_t i = 0; i < n; i++) {
            size_t len = m[i].len;
            const char *u = trim(m[i].content, &len);
            if (!strcmp(m[i].role, "system")) {
                put(&sys, u, len);
                continue;
            }
            const bool model = !strcmp(m[i].role, "assistant");
            puts_(&b, model ? "<start_of_turn>model\n" : "<start_of_turn>user\n");
            if (sys.n && !model) {
                put(&b, sys.p, sys.n);
                puts_(&b, "\n\n");
                sys.n = 0;
            }
            put(&b, u, len);
            puts_(&b, "<end_of_turn>\n");
        }
        puts_(&b, "<start_of_turn>model\n");
        break;
    default:
        free(sys.p);
        return err_set(e, "tokenizer.chat_template: unsupported chat format (adakv knows ChatML, "
                          "Llama 3, Mistral [INST] and Gemma); use the prompt without --chat");
    }
    free(sys.p);
    if (b.oom || sys.oom || !b.p) {
        free(b.p);
        return err_set(e, "chat: out of memory");
    }
    *out = b.p;
    *out_len = b.n;
    return 0;
}

int chat_apply_messages_template(const char *tmpl, size_t tmpl_len,
                                 const struct adakv_chat_message *m, size_t n, char **out,
                                 size_t *out_len, struct adakv_err *e) {
    const enum chat_format fmt = tmpl ? chat_detect(tmpl, tmpl_len) : CHAT_FORMAT_CHATML;
    return render(fmt, tmpl, tmpl_len, m, n, out, out_len, e);
}

int chat_apply_template(const char *tmpl, size_t tmpl_len, const char *user_text, size_t len,
                        char **out, size_t *out_len, struct adakv_err *e) {
    const struct adakv_chat_message m = {"user", user_text, len};
    return chat_apply_messages_template(tmpl, tmpl_len, &m, 1, out, out_len, e);
}

int chat_apply(const struct gguf_file *f, const char *user_text, size_t len, char **out,
               size_t *out_len, struct adakv_err *e) {
    const struct adakv_chat_message m = {"user", user_text, len};
    return chat_apply_messages(f, &m, 1, out, out_len, e);
}

int chat_apply_messages(const struct gguf_file *f, const struct adakv_chat_message *m, size_t n,
                        char **out, size_t *out_len, struct adakv_err *e) {
    const struct gguf_kv *kv = gguf_find(f, "tokenizer.chat_template");
    if (!kv) {
        struct gguf_str arch = {0, ""};
        if (gguf_find(f, "general.architecture") &&
            gguf_get_str(f, "general.architecture", &arch, e))
            return -1;
        const enum chat_format fmt =
            gguf_str_eq(arch, "gemma3") ? CHAT_FORMAT_GEMMA : CHAT_FORMAT_CHATML;
        return render(fmt, NULL, 0, m, n, out, out_len, e);
    }
    struct gguf_str s;
    if (gguf_get_str(f, "tokenizer.chat_template", &s, e))
        return -1;
    if (chat_detect(s.ptr, s.len) == CHAT_FORMAT_UNKNOWN)
        return err_set(e,
                       "%s: tokenizer.chat_template: unsupported chat format (adakv knows "
                       "ChatML, Llama 3, Mistral [INST] and Gemma); use the prompt without --chat",
                       f->path);
    return chat_apply_messages_template(s.ptr, s.len, m, n, out, out_len, e);
}
