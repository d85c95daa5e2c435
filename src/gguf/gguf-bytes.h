/* Private helpers shared by gguf.c (parsing) and gguf-get.c (lookups and getters): byte-order
 * decoding of file fields and the key order used by the sorted indices. Not for other modules. */
#ifndef ADAKV_GGUF_BYTES_H
#define ADAKV_GGUF_BYTES_H

#include <stdint.h>
#include <string.h>

/* GGUF is little-endian whatever the host is; fields may be unaligned. */
static inline uint16_t le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t le64(const uint8_t *p) {
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/* Byte-wise order of non-terminated strings, a proper prefix first. Sorting (gguf.c) and binary
 * search (gguf-get.c) must agree on it. */
static inline int bytes_cmp(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    uint64_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, (size_t)n) : 0;
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

#endif
