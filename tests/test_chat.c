/* Chat formats: the default model's own template (expected text rendered with Python's jinja2
 * from the template in the GGUF, messages = [user "What is 2+2?"], add_generation_prompt), and
 * short templates written for this test that carry the markers of each family. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gguf-writer.h"
#include "gguf.h"
#include "tokenizer.h"

static void expect_render(const char *tmpl, const char *user, const char *want) {
    struct adakv_err e = {{0}};
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(
        chat_apply_template(tmpl, tmpl ? strlen(tmpl) : 0, user, strlen(user), &out, &n, &e), 0,
        "%s", e.msg);
    cr_expect_str_eq(out, want);
    cr_expect_eq(n, strlen(want));
    free(out);
}

/* Two conversations: turns only, and a system message with white space at the ends of every
 * content (which formats trim what). */
static const struct adakv_chat_message conv_plain[] = {
    {"user", "Hi", 2}, {"assistant", "Hello! How can I help?", 22}, {"user", "What is 2+2?", 12}};
static const struct adakv_chat_message conv_system[] = {{"system", " You are terse. ", 16},
                                                        {"user", " Hi\n", 4},
                                                        {"assistant", " Hello. ", 8},
                                                        {"user", "What is 2+2?", 12}};
#define N_OF(a) (sizeof a / sizeof a[0])

static void expect_conv(const char *tmpl, const struct adakv_chat_message *m, size_t n,
                        const char *want) {
    struct adakv_err e = {{0}};
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(chat_apply_messages_template(tmpl, tmpl ? strlen(tmpl) : 0, m, n, &out, &len, &e),
                 0, "%s", e.msg);
    cr_expect_str_eq(out, want);
    cr_expect_eq(len, strlen(want));
    free(out);
}

/* The default model's file (ADAKV_MODEL, set by make check). */
static struct gguf_file *open_default_model(void) {
    struct adakv_err e = {{0}};
    const char *path = getenv("ADAKV_MODEL");
    cr_assert(path);
    struct gguf_file *f = gguf_open(path, &e);
    cr_assert(f, "%s", e.msg);
    return f;
}

Test(chat, smollm2_template_from_the_model) {
    struct adakv_err e = {{0}};
    struct gguf_file *f = open_default_model();
    struct gguf_str tmpl;
    cr_assert_eq(gguf_get_str(f, "tokenizer.chat_template", &tmpl, &e), 0, "%s", e.msg);
    cr_expect_eq(chat_detect(tmpl.ptr, tmpl.len), CHAT_FORMAT_CHATML);

    const char *want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained "
                       "by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                       "<|im_start|>assistant\n";
    char *out;
    size_t n;
    cr_assert_eq(chat_apply(f, "What is 2+2?", 12, &out, &n, &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, want);

    /* Encoded with parse_special the markers become single control tokens. */
    struct tokenizer *t = tokenizer_load(f, &e);
    cr_assert(t, "%s", e.msg);
    int32_t *ids = NULL;
    size_t n_ids;
    cr_assert_eq(tokenizer_encode(t, out, n, true, true, &ids, &n_ids, &e), 0);
    int32_t im_start = tokenizer_find(t, "<|im_start|>", 12);
    int32_t im_end = tokenizer_find(t, "<|im_end|>", 10);
    size_t starts = 0, ends = 0;
    for (size_t i = 0; i < n_ids; i++) {
        starts += ids[i] == im_start;
        ends += ids[i] == im_end;
    }
    cr_expect_eq(ids[0], im_start);
    cr_expect_eq(starts, 3);
    cr_expect_eq(ends, 2);
    cr_expect(tokenizer_is_eog(t, im_end));
    free(ids);
    free(out);
    tokenizer_free(t);
    gguf_close(f);
}

Test(chat, chatml_variants) {
    /* Qwen2-style default system message, written with Jinja's "\n" escapes. */
    expect_render("{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system"
                  "\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
                  "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}",
                  "hi",
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "hi<|im_end|>\n<|im_start|>assistant\n");
    /* A system block that only copies the user's system message is not a default. */
    expect_render("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
                  "messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}{{ '<|im_start|>' }}",
                  "hi", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    /* No template at all: plain ChatML, as llama.cpp falls back to. */
    expect_render(NULL, "x\ny", "<|im_start|>user\nx\ny<|im_end|>\n<|im_start|>assistant\n");
}

Test(chat, llama3) {
    const char *l3 = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + "
                     "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
                     "'<|eot_id|>' }}{% endfor %}";
    cr_expect_eq(chat_detect(l3, strlen(l3)), CHAT_FORMAT_LLAMA3);
    expect_render(l3, "  Hello there \n",
                  "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    const char *l31 = "{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" "
                      "%}{%- endif %}{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
                      "<|start_header_id|><|end_header_id|>{{ message['content'] | trim }}";
    expect_render(l31, "Hi",
                  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                  "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

Test(chat, mistral) {
    const char *v1 = "{{ bos_token }}{% for message in messages %}{% if message['role'] == "
                     "'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}";
    cr_expect_eq(chat_detect(v1, strlen(v1)), CHAT_FORMAT_MISTRAL);
    expect_render(v1, "Say hi", "[INST] Say hi [/INST]");
    const char *v3 = "{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}";
    expect_render(v3, "Say hi", "[INST] Say hi[/INST]");
    const char *tekken = "{{- '[INST]' + message['content'] + '[/INST]' }}";
    expect_render(tekken, "Say hi", "[INST]Say hi[/INST]");
}

Test(chat, unknown_format_is_one_error_line) {
    struct adakv_err e = {{0}};
    char *out = NULL;
    size_t n;
    const char *tmpl = "{% for m in messages %}<turn>{{ m['content'] }}{% endfor %}";
    cr_expect_eq(chat_detect(tmpl, strlen(tmpl)), CHAT_FORMAT_UNKNOWN);
    cr_expect_eq(chat_apply_template(tmpl, strlen(tmpl), "x", 1, &out, &n, &e), -1);
    cr_expect_null(out);
    cr_expect(strstr(e.msg, "tokenizer.chat_template") != NULL, "%s", e.msg);
    cr_expect_null(strchr(e.msg, '\n'));
    cr_expect_str_eq(chat_format_name(CHAT_FORMAT_CHATML), "chatml");
    cr_expect_str_eq(chat_format_name(CHAT_FORMAT_UNKNOWN), "unknown");
}

/* Gemma's turns (llama.cpp LLM_CHAT_TEMPLATE_GEMMA): found by the marker in a template, and the
 * fallback for a gemma3 file without a template (Gemma 3 base models ship none; llama.cpp's
 * --chat-template gemma); the user text is trimmed as llama.cpp's trim() does. */
static void expect_file_render(const char *arch, const char *want) {
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", arch);
    char path[64];
    snprintf(path, sizeof path, "chat-%s.gguf", arch);
    gw_write(w, path);
    gw_free(w);
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open(path, &e);
    cr_assert(f, "%s", e.msg);
    char *out = NULL;
    size_t n;
    cr_assert_eq(chat_apply(f, " Hi there\n", 10, &out, &n, &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, want);
    free(out);
    gguf_close(f);
    remove(path);
}

Test(chat, gemma) {
    const char *g = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + "
                    "'\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";
    cr_expect_eq(chat_detect(g, strlen(g)), CHAT_FORMAT_GEMMA);
    cr_expect_str_eq(chat_format_name(CHAT_FORMAT_GEMMA), "gemma");
    expect_render(g, "\t What is 2+2? \n",
                  "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n");
    expect_file_render("gemma3",
                       "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n");
    /* any other arch without a template keeps llama.cpp's ChatML fallback, untrimmed */
    expect_file_render("llama", "<|im_start|>user\n Hi there\n<|im_end|>\n<|im_start|>assistant\n");
}

/* Whole conversations. The expected texts are llama.cpp's (0c1e57098, the peer build): its
 * llama-server's POST /apply-template with the two conversations above, `--jinja` for the
 * default model's own template (ChatML), `--no-jinja --chat-template NAME` for its built-in
 * llama3, gemma, mistral-v3 and mistral-v3-tekken forms; templates here carry those markers. */
Test(chat, conversations_as_llama_cpp_renders_them) {
    struct adakv_err e = {{0}};
    struct gguf_file *f = open_default_model();
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(chat_apply_messages(f, conv_plain, N_OF(conv_plain), &out, &n, &e), 0, "%s",
                 e.msg);
    cr_expect_str_eq(out, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
                          "trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                          "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
                          "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    cr_assert_eq(chat_apply_messages(f, conv_system, N_OF(conv_system), &out, &n, &e), 0, "%s",
                 e.msg);
    cr_expect_str_eq(out, "<|im_start|>system\n You are terse. <|im_end|>\n<|im_start|>user\n Hi\n"
                          "<|im_end|>\n<|im_start|>assistant\n Hello. <|im_end|>\n"
                          "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    gguf_close(f);

    const char *l3 = "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                     "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}";
    expect_conv(l3, conv_plain, N_OF(conv_plain),
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>"
                "user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant"
                "<|end_header_id|>\n\n");
    expect_conv(l3, conv_system, N_OF(conv_system),
                "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user"
                "<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant"
                "<|end_header_id|>\n\n");

    const char *g = "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim }}";
    expect_conv(g, conv_plain, N_OF(conv_plain),
                "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello! How can I "
                "help?<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
                "<start_of_turn>model\n");
    expect_conv(g, conv_system, N_OF(conv_system),
                "<start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
                "Hello.<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
                "<start_of_turn>model\n");

    const char *v3 = "{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}";
    expect_conv(v3, conv_plain, N_OF(conv_plain),
                "[INST] Hi[/INST] Hello! How can I help?</s>[INST] What is 2+2?[/INST]");
    expect_conv(v3, conv_system, N_OF(conv_system),
                "[INST]  You are terse. \n\n Hi\n[/INST] Hello.</s>[INST] What is 2+2?[/INST]");
    const char *tekken = "{{- '[INST]' + message['content'] + '[/INST]' }}";
    expect_conv(tekken, conv_plain, N_OF(conv_plain),
                "[INST]Hi[/INST]Hello! How can I help?</s>[INST]What is 2+2?[/INST]");
    expect_conv(tekken, conv_system, N_OF(conv_system),
                "[INST] You are terse. \n\n Hi\n[/INST] Hello. </s>[INST]What is 2+2?[/INST]");
}

/* Llama 3.1+: the conversation's system text goes after the date in the one system block
 * (the template's "Today Date: ... \n\n" + system_message, trimmed); written from the
 * template's text, as llama.cpp renders this form only through Jinja. */
Test(chat, llama31_system_text_after_the_date) {
    const char *l31 = "{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
                      "<|start_header_id|><|end_header_id|>{{ message['content'] | trim }}";
    expect_conv(l31, conv_system, N_OF(conv_system),
                "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                "December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user"
                "<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant"
                "<|end_header_id|>\n\n");
}

/* Conversations no template here renders: one line each, nothing written. */
Test(chat, conversations_refused) {
    const struct {
        struct adakv_chat_message m[2];
        size_t n;
        const char *says;
    } bad[] = {
        {{{"tool", "x", 1}, {"user", "y", 1}}, 2, "role 'tool'"},
        {{{"user", "x", 1}, {"system", "y", 1}}, 2, "may only come first"},
        {{{"user", "x", 1}, {"assistant", "y", 1}}, 2, "last message must be the user's"},
        {{{"user", "x", 1}}, 0, "no messages"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        struct adakv_err e = {{0}};
        char *out = NULL;
        size_t n = 0;
        cr_expect_eq(chat_apply_messages_template(NULL, 0, bad[i].m, bad[i].n, &out, &n, &e), -1);
        cr_expect_null(out);
        cr_expect(strstr(e.msg, bad[i].says) != NULL, "case %zu: %s", i, e.msg);
        cr_expect_null(strchr(e.msg, '\n'));
    }
}
