/* Unicode helpers; see unicode.h. */
#include "unicode.h"

#include <string.h>

uint16_t unicode_cpt_flags(uint32_t cpt) {
    if (cpt >= UNICODE_MAX_CPT)
        return UNICODE_UNDEFINED;
    /* Binary search for the last range whose first code point is <= cpt. */
    size_t lo = 0, hi = unicode_ranges_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (unicode_ranges[mid].first <= cpt)
            lo = mid;
        else
            hi = mid;
    }
    return unicode_ranges[lo].flags;
}

size_t unicode_len_utf8(unsigned char lead) {
    static const unsigned char len_of_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len_of_nibble[lead >> 4];
}

static bool is_cont(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

uint32_t unicode_decode_lenient(const unsigned char *s, size_t len, size_t *adv) {
    unsigned char c = s[0];
    *adv = 1;
    if (c < 0x80)
        return c;
    if ((c & 0x40) == 0) /* stray continuation byte */
        return UNICODE_REPLACEMENT;
    if ((c & 0x20) == 0) {
        if (len < 2 || !is_cont(s[1]))
            return UNICODE_REPLACEMENT;
        *adv = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((c & 0x10) == 0) {
        if (len < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            return UNICODE_REPLACEMENT;
        *adv = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if ((c & 0x08) == 0) {
        if (len < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            return UNICODE_REPLACEMENT;
        uint32_t cpt = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                       ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cpt >= UNICODE_MAX_CPT) /* llama.cpp throws "invalid codepoint" later; we degrade */
            return UNICODE_REPLACEMENT;
        *adv = 4;
        return cpt;
    }
    return UNICODE_REPLACEMENT; /* F8..FF */
}

size_t unicode_encode(uint32_t cpt, char out[4]) {
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        out[0] = (char)(0xC0 | (cpt >> 6));
        out[1] = (char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        out[0] = (char)(0xE0 | (cpt >> 12));
        out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    if (cpt >= UNICODE_MAX_CPT)
        cpt = UNICODE_REPLACEMENT;
    if (cpt < 0x10000)
        return unicode_encode(cpt, out);
    out[0] = (char)(0xF0 | (cpt >> 18));
    out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cpt & 0x3F));
    return 4;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes keep their code point, the other 68 bytes
 * (0-32, 127-160, 173) take U+0100, U+0101, ... in increasing byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t unicode_byte_to_cpt(uint8_t byte) {
    if (byte_is_printable(byte))
        return byte;
    /* rank among the non-printable bytes: 0-32 are 0..32, 127-160 are 33..66, 173 is 67 */
    if (byte <= 0x20)
        return 0x100 + byte;
    if (byte <= 0xA0)
        return 0x100 + 33 + (byte - 0x7F);
    return 0x100 + 67;
}

int unicode_cpt_to_byte(uint32_t cpt) {
    if (cpt < 0x100)
        return byte_is_printable(cpt) ? (int)cpt : -1;
    if (cpt >= 0x100 + 68)
        return -1;
    uint32_t r = cpt - 0x100;
    if (r <= 32)
        return (int)r;
    if (r <= 66)
        return (int)(0x7F + r - 33);
    return 0xAD;
}

int unicode_valid_seq_len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= len)
            return -1;
        unsigned char b = s[i];
        bool ok = i == 1 ? (b >= lo && b <= hi) : is_cont(b);
        if (!ok)
            return 0;
    }
    return need;
}

static const char replacement_utf8[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Runs the sanitiser over pending + in. With out == NULL it only counts. Returns the output
 * size and, through keep/nkeep, the incomplete tail that stays pending. */
static size_t stream_run(const unsigned char *buf, size_t n, char *out, unsigned char *keep,
                         int *nkeep, bool final) {
    size_t i = 0, o = 0;
    *nkeep = 0;
    while (i < n) {
        int l = unicode_valid_seq_len(buf + i, n - i);
        if (l > 0) {
            if (out)
                memcpy(out + o, buf + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
            continue;
        }
        if (l < 0 && !final) { /* valid prefix cut by the end of the input: hold it */
            *nkeep = (int)(n - i);
            if (keep)
                memcpy(keep, buf + i, n - i);
            return o;
        }
        /* Invalid: skip the maximal subpart (lead plus the continuation bytes that were still
         * acceptable), emit one U+FFFD for it. */
        size_t skip = 1;
        if (l < 0) {
            skip = n - i;
        } else {
            while (i + skip < n && skip < 4) {
                int tail = unicode_valid_seq_len(buf + i, skip + 1);
                if (tail != -1)
                    break;
                skip++;
            }
        }
        if (out)
            memcpy(out + o, replacement_utf8, 3);
        o += 3;
        i += skip;
    }
    return o;
}

static size_t stream_process(struct utf8_stream *s, const char *in, size_t n, char *out, size_t cap,
                             bool final) {
    /* The pending bytes (at most 3) go in front of each 64-byte chunk of input, so no buffer
     * proportional to n is needed. The first pass only counts, the second writes: the caller
     * learns the size before anything changes. */
    unsigned char chunk[8 + 64], pend[8];
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *dst = pass ? out : NULL;
        size_t o = 0, pos = 0;
        int np = s->n;
        memcpy(pend, s->pending, (size_t)np);
        do {
            size_t take = n - pos < 64 ? n - pos : 64;
            memcpy(chunk, pend, (size_t)np);
            if (take)
                memcpy(chunk + np, in + pos, take);
            pos += take;
            int nkeep;
            o += stream_run(chunk, (size_t)np + take, dst ? dst + o : NULL, pend, &nkeep,
                            final && pos == n);
            np = nkeep;
        } while (pos < n);
        if (pass == 0) {
            total = o;
            if (total > cap)
                return total;
        } else {
            s->n = np;
            memcpy(s->pending, pend, (size_t)np);
        }
    }
    return total;
}

size_t utf8_stream_push(struct utf8_stream *s, const char *in, size_t n, char *out, size_t cap) {
    return stream_process(s, in, n, out, cap, false);
}

size_t utf8_stream_flush(struct utf8_stream *s, char *out, size_t cap) {
    return stream_process(s, "", 0, out, cap, true);
}
