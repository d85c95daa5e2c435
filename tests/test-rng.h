/* The kernel tests' random inputs: a seeded xorshift generator, so every run of a test sees the
 * same values and a failure can be replayed. */
#ifndef ADAKV_TEST_RNG_H
#define ADAKV_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state;
static inline void rng_seed(uint64_t s) {
    rng_state = s * 0x9E3779B97F4A7C15ull + 1;
}
static inline float rng_uniform(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1ull << 23)) - 1.0);
}

#endif
