/* Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
 *
 * A generator is keyed by (seed, stream): the experiment seed and e.g. the restart index.
 * Every draw is a pure function of (seed, stream, counter), so restart r of an experiment sees
 * the same numbers whether it runs alone, in a batch, or on another thread. No global state. */
#ifndef BASIN_RNG_H
#define BASIN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct basin_rng {
    uint32_t key[2];
    uint32_t ctr[4]; /* ctr[2..3] hold the stream, ctr[0..1] the block counter */
    uint32_t block[4];
    unsigned used; /* words of block already handed out (4 = empty) */
    int has_spare;
    double spare; /* second normal deviate of the last Box-Muller pair */
} basin_rng;

void basin_rng_init(basin_rng *rng, uint64_t seed, uint64_t stream);
uint32_t basin_rng_u32(basin_rng *rng);
uint64_t basin_rng_u64(basin_rng *rng);
/* Uniform on [0, 1) with 53 random bits. */
double basin_rng_uniform(basin_rng *rng);
/* Standard normal deviate. */
double basin_rng_normal(basin_rng *rng);
/* Uniform integer in [0, n), unbiased (rejection); n > 0. */
uint64_t basin_rng_below(basin_rng *rng, uint64_t n);
/* Fisher-Yates shuffle of a[0..n). */
void basin_rng_shuffle(basin_rng *rng, size_t *a, size_t n);

/* The Philox4x32-10 block function itself, exposed for the known-answer test. */
void basin_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
