/* rng.h: the run's seeded random stream (xoshiro256**, seeded through splitmix64). A value object
 * the caller owns; no global state. Streams derived with rng_split are independent of call order
 * elsewhere, so a layer's init does not depend on how many numbers another layer drew. */
#ifndef RESPROP_RNG_H
#define RESPROP_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

void rng_init(Rng *r, uint64_t seed);
/* A new stream for (seed of r, key): deterministic, does not advance r. */
Rng rng_split(const Rng *r, uint64_t key);
uint64_t rng_u64(Rng *r);
/* Uniform in [0, 1). */
double rng_uniform(Rng *r);
/* Uniform integer in [0, n), n > 0, unbiased. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Standard normal (Box-Muller; one value per call). */
double rng_normal(Rng *r);

#endif
