/* Unicode helpers: lenient decoding as llama.cpp does it, class tables, GPT-2 byte alphabet,
 * and the streaming UTF-8 sanitiser (never a partial sequence out, U+FFFD per maximal
 * invalid subpart, nothing written past cap). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

static uint32_t dec(const char *s, size_t len, size_t *adv) {
    return unicode_decode_lenient((const unsigned char *)s, len, adv);
}

Test(unicode, lenient_decode_like_llama_cpp) {
    size_t adv;
    cr_expect_eq(dec("A", 1, &adv), 'A');
    cr_expect_eq(adv, 1);
    cr_expect_eq(dec("\xc3\xa9", 2, &adv), 0xE9);
    cr_expect_eq(adv, 2);
    cr_expect_eq(dec("\xf0\x9f\x98\x80", 4, &adv), 0x1F600);
    cr_expect_eq(adv, 4);
    /* truncated by len: never reads past it */
    cr_expect_eq(dec("\xf0\x9f\x98\x80", 3, &adv), UNICODE_REPLACEMENT);
    cr_expect_eq(adv, 1);
    cr_expect_eq(dec("\xc3", 1, &adv), UNICODE_REPLACEMENT);
    cr_expect_eq(adv, 1);
    /* stray continuation, bad continuation, F8+ */
    cr_expect_eq(dec("\x80", 1, &adv), UNICODE_REPLACEMENT);
    cr_expect_eq(dec("\xc3(", 2, &adv), UNICODE_REPLACEMENT);
    cr_expect_eq(adv, 1);
    cr_expect_eq(dec("\xf8\x88\x80\x80\x80", 5, &adv), UNICODE_REPLACEMENT);
    /* llama.cpp accepts overlong forms and surrogates as decoded */
    cr_expect_eq(dec("\xc0\x80", 2, &adv), 0);
    cr_expect_eq(adv, 2);
    cr_expect_eq(dec("\xed\xa0\x80", 3, &adv), 0xD800);
    /* above U+10FFFF: llama.cpp aborts; adakv gives U+FFFD for one byte */
    cr_expect_eq(dec("\xf4\x90\x80\x80", 4, &adv), UNICODE_REPLACEMENT);
    cr_expect_eq(adv, 1);
    cr_expect_eq(dec("\xf7\xbf\xbf\xbf", 4, &adv), UNICODE_REPLACEMENT);

    char out[4];
    cr_expect_eq(unicode_encode(0x1F600, out), 4);
    cr_expect_eq(memcmp(out, "\xf0\x9f\x98\x80", 4), 0);
    cr_expect_eq(unicode_encode(0xD800, out), 3);   /* as llama.cpp writes it back */
    cr_expect_eq(unicode_encode(0x110000, out), 3); /* U+FFFD */
    cr_expect_eq(unicode_len_utf8(0x41), 1);
    cr_expect_eq(unicode_len_utf8(0x80), 1);
    cr_expect_eq(unicode_len_utf8(0xC3), 2);
    cr_expect_eq(unicode_len_utf8(0xE4), 3);
    cr_expect_eq(unicode_len_utf8(0xFF), 4);
}

Test(unicode, every_code_point_round_trips) {
    char buf[4];
    for (uint32_t c = 0; c < UNICODE_MAX_CPT; c++) {
        size_t n = unicode_encode(c, buf), adv;
        uint32_t back = dec(buf, n, &adv);
        cr_assert(back == c && adv == n, "U+%04X", c);
    }
}

Test(unicode, class_tables) {
    cr_expect_str_eq(unicode_data_version, "15.1.0");
    cr_expect_eq(unicode_ranges[0].first, 0);
    for (size_t i = 1; i < unicode_ranges_count; i++)
        cr_assert_gt(unicode_ranges[i].first, unicode_ranges[i - 1].first);
    cr_expect_eq(unicode_cpt_flags('A'), UNICODE_LETTER);
    cr_expect_eq(unicode_cpt_flags('7'), UNICODE_NUMBER);
    cr_expect_eq(unicode_cpt_flags(' '), UNICODE_SEPARATOR | UNICODE_WHITESPACE);
    cr_expect_eq(unicode_cpt_flags('\n'), UNICODE_CONTROL | UNICODE_WHITESPACE);
    cr_expect_eq(unicode_cpt_flags(0x1C), UNICODE_CONTROL); /* not White_Space */
    cr_expect_eq(unicode_cpt_flags('!'), UNICODE_PUNCTUATION);
    cr_expect_eq(unicode_cpt_flags('$'), UNICODE_SYMBOL);
    cr_expect_eq(unicode_cpt_flags(0x85), UNICODE_CONTROL | UNICODE_WHITESPACE);
    cr_expect_eq(unicode_cpt_flags(0x3000), UNICODE_SEPARATOR | UNICODE_WHITESPACE);
    cr_expect_eq(unicode_cpt_flags(0x0301), UNICODE_MARK);
    cr_expect_eq(unicode_cpt_flags(0x0663), UNICODE_NUMBER); /* Arabic-Indic three */
    cr_expect_eq(unicode_cpt_flags(0x00BD), UNICODE_NUMBER); /* ½ */
    cr_expect_eq(unicode_cpt_flags(0x4E00), UNICODE_LETTER);
    cr_expect_eq(unicode_cpt_flags(0x2EBF0), UNICODE_LETTER); /* CJK Ext I, new in 15.1 */
    cr_expect_eq(unicode_cpt_flags(0x1FAE8), UNICODE_SYMBOL); /* 🫨, new in 15.0 */
    cr_expect_eq(unicode_cpt_flags(0xE000), UNICODE_CONTROL); /* private use */
    cr_expect_eq(unicode_cpt_flags(0x0378), UNICODE_UNDEFINED);
    cr_expect_eq(unicode_cpt_flags(0x10FFFF), UNICODE_UNDEFINED);
    cr_expect_eq(unicode_cpt_flags(0x110000), UNICODE_UNDEFINED);
    cr_expect_eq(unicode_cpt_flags(0xFFFFFFFF), UNICODE_UNDEFINED);
    /* exactly one category bit everywhere */
    for (uint32_t c = 0; c < UNICODE_MAX_CPT; c += 7) {
        unsigned cat = unicode_cpt_flags(c) & UNICODE_CATEGORY_MASK;
        cr_assert(cat && (cat & (cat - 1)) == 0, "U+%04X", c);
    }
}

Test(unicode, gpt2_byte_alphabet) {
    cr_expect_eq(unicode_byte_to_cpt(' '), 0x120);  /* Ġ */
    cr_expect_eq(unicode_byte_to_cpt('\n'), 0x10A); /* Ċ */
    cr_expect_eq(unicode_byte_to_cpt('a'), 'a');
    cr_expect_eq(unicode_byte_to_cpt(0xAD), 0x143);
    bool seen[0x200] = {false};
    for (int b = 0; b < 256; b++) {
        uint32_t c = unicode_byte_to_cpt((uint8_t)b);
        cr_assert_lt(c, 0x200);
        cr_assert_not(seen[c], "byte %d maps to a used code point", b);
        seen[c] = true;
        cr_assert_eq(unicode_cpt_to_byte(c), b);
    }
    cr_expect_eq(unicode_cpt_to_byte(0x20), -1);
    cr_expect_eq(unicode_cpt_to_byte(0x144), -1);
    cr_expect_eq(unicode_cpt_to_byte(0x1F600), -1);
}

/* ---------------------------------------------------------------- streaming */

static size_t push_all(struct utf8_stream *s, const char *in, size_t n, char *out) {
    return utf8_stream_push(s, in, n, out, 3 * (n + 4));
}

Test(utf8_stream, holds_back_partial_sequences) {
    struct utf8_stream s = {{0}, 0};
    char out[64];
    const char *smile = "\xf0\x9f\x98\x80";
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(push_all(&s, smile + i, 1, out), 0, "byte %d leaked", i);
        cr_expect_eq(s.n, i + 1);
    }
    cr_expect_eq(push_all(&s, smile + 3, 1, out), 4);
    cr_expect_eq(memcmp(out, smile, 4), 0);
    cr_expect_eq(s.n, 0);
    /* "a" + first half of é, then the rest + "b" */
    cr_expect_eq(push_all(&s, "a\xc3", 2, out), 1);
    cr_expect_eq(out[0], 'a');
    cr_expect_eq(push_all(&s,
                          "\xa9"
                          "b",
                          2, out),
                 3);
    cr_expect_eq(memcmp(out,
                        "\xc3\xa9"
                        "b",
                        3),
                 0);
}

Test(utf8_stream, replaces_invalid_bytes) {
    struct utf8_stream s = {{0}, 0};
    char out[64];
    const char *fffd = "\xef\xbf\xbd";
    /* invalid lead, stray continuation, overlong, surrogate, > U+10FFFF */
    struct {
        const char *in;
        size_t n;
        const char *want;
        size_t want_n;
    } cases[] = {
        {"\xff", 1, "\xef\xbf\xbd", 3},
        {"a\x80"
         "b",
         3,
         "a\xef\xbf\xbd"
         "b",
         5},
        {"\xc0\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12},
        /* truncated 3-byte sequence followed by ASCII: one U+FFFD for the maximal subpart */
        {"\xe2\x82(", 3, "\xef\xbf\xbd(", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = push_all(&s, cases[i].in, cases[i].n, out);
        n += utf8_stream_flush(&s, out + n, sizeof out - n);
        cr_expect_eq(n, cases[i].want_n, "case %zu: %zu bytes", i, n);
        cr_expect_eq(memcmp(out, cases[i].want, cases[i].want_n), 0, "case %zu", i);
    }
    /* an incomplete sequence left at the end becomes one U+FFFD at flush */
    cr_expect_eq(push_all(&s, "\xf0\x9f\x98", 3, out), 0);
    cr_expect_eq(utf8_stream_flush(&s, out, sizeof out), 3);
    cr_expect_eq(memcmp(out, fffd, 3), 0);
    cr_expect_eq(s.n, 0);
    /* a pending prefix broken by the next push */
    cr_expect_eq(push_all(&s, "\xe4\xbd", 2, out), 0);
    cr_expect_eq(push_all(&s, "x", 1, out), 4);
    cr_expect_eq(memcmp(out, "\xef\xbf\xbdx", 4), 0);
}

Test(utf8_stream, small_buffer_changes_nothing) {
    struct utf8_stream s = {{0}, 0};
    char out[8] = "zzzzzzz";
    cr_expect_eq(utf8_stream_push(&s, "\xc3", 1, out, 0), 0);
    size_t need = utf8_stream_push(&s,
                                   "\xa9"
                                   "abcdefgh",
                                   9, out, 4);
    cr_expect_eq(need, 10);
    cr_expect_eq(s.n, 1); /* still holding 0xC3 */
    cr_expect_eq(out[0], 'z');
    char big[16];
    cr_expect_eq(utf8_stream_push(&s,
                                  "\xa9"
                                  "abcdefgh",
                                  9, big, sizeof big),
                 10);
    cr_expect_eq(memcmp(big,
                        "\xc3\xa9"
                        "abcdefgh",
                        10),
                 0);
}

/* Random bytes, random chunking: output is always valid and equals a one-shot run. */
Test(utf8_stream, random_chunks_match_one_shot) {
    srand(7);
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(rand() % 200);
        unsigned char in[200];
        for (size_t i = 0; i < n; i++) {
            int r = rand() % 4;
            in[i] = r == 0   ? (unsigned char)(rand() % 128)
                    : r == 1 ? (unsigned char)(0x80 + rand() % 64)
                             : (unsigned char)(0xC0 + rand() % 64);
        }
        struct utf8_stream a = {{0}, 0}, b = {{0}, 0};
        char one[1024], many[1024];
        size_t n1 = push_all(&a, (const char *)in, n, one);
        n1 += utf8_stream_flush(&a, one + n1, sizeof one - n1);
        size_t n2 = 0;
        for (size_t i = 0; i < n;) {
            size_t k = 1 + (size_t)(rand() % 7);
            if (k > n - i)
                k = n - i;
            size_t w = push_all(&b, (const char *)in + i, k, many + n2);
            for (size_t j = 0; j < w;) {
                int l = unicode_valid_seq_len((unsigned char *)many + n2 + j, w - j);
                cr_assert_gt(l, 0, "round %d: invalid output", round);
                j += (size_t)l;
            }
            n2 += w;
            i += k;
        }
        n2 += utf8_stream_flush(&b, many + n2, sizeof many - n2);
        cr_assert_eq(n1, n2, "round %d", round);
        cr_assert_eq(memcmp(one, many, n1), 0, "round %d", round);
    }
}
