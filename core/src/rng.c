/* Counter-based random numbers for every stochastic choice in the core: initial points,
 * mini-batch order, dataset generators. A generator is a (key, counter) pair and holds no
 * hidden state beyond the current output block, so a stream can be recreated anywhere.
 *
 * DESIGN
 * - Block function: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 *   easy as 1, 2, 3", SC'11; Random123 philox.h). Ten rounds of two 32×32→64 multiplies with
 *   M0 = 0xD2511F53, M1 = 0xCD9E8D57, the key bumped by the Weyl constants 0x9E3779B9 and
 *   0xBB67AE85 between rounds. Checked against Random123's kat_vectors.
 * - Keying: key = the 64-bit seed (low word in key[0]); ctr[2..3] = the 64-bit stream (low word
 *   in ctr[2]); ctr[0..1] = a 64-bit block counter starting at 0. One block gives four u32 words,
 *   handed out in order ctr-block word 0,1,2,3. A stream has 2^64 blocks, never exhausted in
 *   practice; the counter wraps silently.
 * - u64 = (first u32 << 32) | second u32. uniform = top 53 bits of a u64 times 2^-53, so it lies
 *   in [0, 1) and 1.0 is never returned.
 * - normal: Box–Muller, both deviates of a pair used (the second is cached in rng->spare).
 *   u1 = 1 − uniform ∈ (0, 1], so log(u1) is finite and the radius sqrt(−2 log u1) is at most
 *   ≈ 8.57; the result is never inf or nan.
 * - below(n): the OpenBSD arc4random_uniform rejection: reject x < 2^64 mod n, then x mod n is
 *   exactly uniform. The rejection probability is < n / 2^64.
 * - shuffle: Fisher–Yates from the top, j = below(i+1). */
#include "basin/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void basin_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void basin_rng_init(basin_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->key[0] = (uint32_t)seed;
    rng->key[1] = (uint32_t)(seed >> 32);
    rng->ctr[0] = 0;
    rng->ctr[1] = 0;
    rng->ctr[2] = (uint32_t)stream;
    rng->ctr[3] = (uint32_t)(stream >> 32);
    rng->block[0] = rng->block[1] = rng->block[2] = rng->block[3] = 0;
    rng->used = 4;
    rng->has_spare = 0;
    rng->spare = 0.0;
}

/* Fill block from the current counter, then advance the 64-bit block counter. */
static void refill(basin_rng *rng)
{
    basin_philox4x32_10(rng->ctr, rng->key, rng->block);
    rng->used = 0;
    if (++rng->ctr[0] == 0)
        ++rng->ctr[1];
}

uint32_t basin_rng_u32(basin_rng *rng)
{
    if (rng->used >= 4)
        refill(rng);
    return rng->block[rng->used++];
}

uint64_t basin_rng_u64(basin_rng *rng)
{
    uint64_t hi = basin_rng_u32(rng);
    uint64_t lo = basin_rng_u32(rng);
    return (hi << 32) | lo;
}

double basin_rng_uniform(basin_rng *rng)
{
    return (double)(basin_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double basin_rng_normal(basin_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    double u1 = 1.0 - basin_rng_uniform(rng); /* (0, 1]: log never sees 0 */
    double u2 = basin_rng_uniform(rng);
    double r = sqrt(-2.0 * log(u1));
    double phi = 6.283185307179586476925286766559 * u2;
    rng->spare = r * sin(phi);
    rng->has_spare = 1;
    return r * cos(phi);
}

uint64_t basin_rng_below(basin_rng *rng, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t threshold = (0 - n) % n; /* = 2^64 mod n */
    for (;;) {
        uint64_t x = basin_rng_u64(rng);
        if (x >= threshold)
            return x % n;
    }
}

void basin_rng_shuffle(basin_rng *rng, size_t *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)basin_rng_below(rng, (uint64_t)i + 1);
        size_t tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
    }
}
