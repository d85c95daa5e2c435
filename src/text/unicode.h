/* Unicode helpers for the tokenizers: UTF-8 decoding that behaves exactly like llama.cpp's
 * (so token ids match on invalid input too), code point classes for the pre-tokenizer regexes,
 * GPT-2's byte <-> code point alphabet, and a streaming UTF-8 sanitiser for detokenised output.
 * No function here reads past the `len` it is given. */
#ifndef ADAKV_UNICODE_H
#define ADAKV_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Code point class bits (same values as llama.cpp's unicode_cpt_flags, so the category of a
 * code point is exactly one of the low eight bits). */
enum {
    UNICODE_UNDEFINED = 0x01,   /* Cn: unassigned */
    UNICODE_NUMBER = 0x02,      /* \p{N} */
    UNICODE_LETTER = 0x04,      /* \p{L} */
    UNICODE_SEPARATOR = 0x08,   /* \p{Z} */
    UNICODE_MARK = 0x10,        /* \p{M} */
    UNICODE_PUNCTUATION = 0x20, /* \p{P} */
    UNICODE_SYMBOL = 0x40,      /* \p{S} */
    UNICODE_CONTROL = 0x80,     /* \p{C} without Cn */
    UNICODE_CATEGORY_MASK = 0xFF,
    UNICODE_WHITESPACE = 0x100, /* \s: the White_Space property */
};

#define UNICODE_REPLACEMENT 0xFFFDu
#define UNICODE_MAX_CPT     0x110000u

struct unicode_range {
    uint32_t first;
    uint16_t flags;
};
/* Generated tables (src/text/unicode-data.c, by tools/gen-unicode-data.py). */
extern const struct unicode_range unicode_ranges[];
extern const size_t unicode_ranges_count;
extern const char unicode_data_version[];

/* Class bits of a code point; code points >= 0x110000 are UNICODE_UNDEFINED. */
uint16_t unicode_cpt_flags(uint32_t cpt);

/* Length of a UTF-8 sequence judged by its first byte alone, as llama.cpp's symbol splitter
 * does: 1 for ASCII and stray continuation bytes, 2/3/4 by the high nibble. */
size_t unicode_len_utf8(unsigned char lead);

/* Decodes one code point at s[0..len) (len >= 1) the way llama.cpp does: lead byte patterns
 * and continuation bytes are checked, overlong forms and surrogates are accepted as decoded.
 * An invalid sequence consumes one byte and yields U+FFFD. Sequences that decode above
 * U+10FFFF (F5..F7 leads) also yield U+FFFD for one byte: llama.cpp aborts on them. */
uint32_t unicode_decode_lenient(const unsigned char *s, size_t len, size_t *adv);

/* Writes the UTF-8 form of cpt (< 0x110000; surrogates are written as 3 bytes like llama.cpp)
 * into out[0..4) and returns its length. */
size_t unicode_encode(uint32_t cpt, char out[4]);

/* GPT-2 byte-level alphabet: every byte maps to one printable code point. */
uint32_t unicode_byte_to_cpt(uint8_t byte);
/* Inverse; -1 when cpt is not in the alphabet. */
int unicode_cpt_to_byte(uint32_t cpt);

/* Length of the strictly valid UTF-8 sequence (Unicode Table 3-7) starting at s, or 0 if the
 * bytes there are invalid; -1 if they are a valid but incomplete prefix of a sequence. */
int unicode_valid_seq_len(const unsigned char *s, size_t len);

/* Streaming detokeniser output: feed raw token bytes, get only complete, valid UTF-8. An
 * incomplete sequence at the end is held back until the next push; invalid bytes become U+FFFD
 * (one per maximal invalid subpart, as Python's errors="replace" does). */
struct utf8_stream {
    unsigned char pending[8];
    int n;
};
/* Returns the number of bytes the output needs. If that is more than cap, nothing is written,
 * nothing is consumed and the state is unchanged: grow the buffer and call again. The result is
 * never more than 3 * (n + 4). */
size_t utf8_stream_push(struct utf8_stream *s, const char *in, size_t n, char *out, size_t cap);
/* Emits what is still pending (an incomplete sequence becomes U+FFFD) and resets the state.
 * Same return convention as utf8_stream_push; never more than 3 bytes. */
size_t utf8_stream_flush(struct utf8_stream *s, char *out, size_t cap);

#endif
