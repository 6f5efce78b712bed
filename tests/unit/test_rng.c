/* Unit tests of the counter-based generator (rng.c): Random123 known-answer vectors for the
 * Philox4x32-10 block function, the (seed, stream, counter) keying, the derived draws (u64,
 * uniform, normal, below, shuffle) and statistical sanity checks with loose (≥ 5σ) bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "basin/rng.h"

/* Random123 kat_vectors, philox4x32_10 lines. */
static void test_philox_kat(void **state)
{
    (void)state;
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint32_t out[4];
        basin_philox4x32_10(kat[k].ctr, kat[k].key, out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(out[i], kat[k].out[i]);
    }
}

/* The generator's words are the block function at key = seed, ctr = (block, stream). */
static void test_keying(void **state)
{
    (void)state;
    const uint64_t seed = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL;
    const uint32_t key[2] = {0x89abcdefu, 0x01234567u};
    basin_rng rng;
    basin_rng_init(&rng, seed, stream);
    for (uint32_t block = 0; block < 3; block++) {
        uint32_t ctr[4] = {block, 0, 0x76543210u, 0xfedcba98u}, out[4];
        basin_philox4x32_10(ctr, key, out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(basin_rng_u32(&rng), out[i]);
    }
}

/* The 64-bit block counter carries from ctr[0] into ctr[1]. */
static void test_counter_carry(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 5, 9);
    rng.ctr[0] = 0xffffffffu;
    const uint32_t key[2] = {5, 0};
    uint32_t c1[4] = {0xffffffffu, 0, 9, 0}, c2[4] = {0, 1, 9, 0}, o1[4], o2[4];
    basin_philox4x32_10(c1, key, o1);
    basin_philox4x32_10(c2, key, o2);
    for (int i = 0; i < 4; i++)
        assert_int_equal(basin_rng_u32(&rng), o1[i]);
    assert_int_equal(basin_rng_u32(&rng), o2[0]);
    /* next block to generate: (1, 1) */
    assert_int_equal(rng.ctr[0], 1);
    assert_int_equal(rng.ctr[1], 1);
}

static void test_u64_and_uniform_bits(void **state)
{
    (void)state;
    basin_rng a, b;
    basin_rng_init(&a, 42, 3);
    basin_rng_init(&b, 42, 3);
    for (int i = 0; i < 100; i++) {
        uint64_t hi = basin_rng_u32(&b), lo = basin_rng_u32(&b);
        assert_true(basin_rng_u64(&a) == ((hi << 32) | lo));
    }
    for (int i = 0; i < 1000; i++) {
        double u = basin_rng_uniform(&a);
        assert_true(u >= 0.0 && u < 1.0);
        double scaled = u * 0x1.0p53; /* exactly 53 bits: an integer */
        assert_true(scaled == floor(scaled));
    }
    /* The largest possible draw is 1 − 2^-53, never 1. */
    basin_rng_init(&a, 0, 0);
    a.block[0] = a.block[1] = a.block[2] = a.block[3] = 0xffffffffu;
    a.used = 0;
    assert_true(basin_rng_uniform(&a) == 1.0 - 0x1.0p-53);
}

static void test_uniform_moments(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 2024, 0);
    const int n = 100000;
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++) {
        double u = basin_rng_uniform(&rng);
        s += u;
        s2 += u * u;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* σ(mean) = 9.1e-4, σ(var) ≈ 2.4e-4 */
    assert_true(fabs(mean - 0.5) < 0.0046);
    assert_true(fabs(var - 1.0 / 12.0) < 0.0012);
}

static void test_normal_moments(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 7, 11);
    const int n = 100000;
    double s = 0.0, s2 = 0.0, s4 = 0.0, pair = 0.0, prev = 0.0;
    int inside = 0;
    for (int i = 0; i < n; i++) {
        double z = basin_rng_normal(&rng);
        assert_true(isfinite(z));
        s += z;
        s2 += z * z;
        s4 += z * z * z * z;
        if (fabs(z) < 1.0)
            inside++;
        if (i % 2 == 1)
            pair += prev * z; /* the two deviates of a Box–Muller pair are independent */
        prev = z;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(fabs(mean) < 0.016);                           /* σ = 0.0032 */
    assert_true(fabs(var - 1.0) < 0.023);                      /* σ = sqrt(2/n) = 0.0045 */
    assert_true(fabs(s4 / n - 3.0) < 0.16);                    /* σ = sqrt(96/n) = 0.031 */
    assert_true(fabs((double)inside / n - 0.682689) < 0.0075); /* σ = 0.0015 */
    assert_true(fabs(pair / (n / 2)) < 0.023);                 /* σ = sqrt(2/n) */
}

/* The extreme uniform draws must not produce inf/nan: uniform = 1 − 2^-53 gives the largest
 * radius sqrt(−2 ln 2^-53); uniform = 0 gives radius 0. */
static void test_normal_extremes(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 1, 1);
    rng.block[0] = rng.block[1] = rng.block[2] = rng.block[3] = 0xffffffffu;
    rng.used = 0;
    double z1 = basin_rng_normal(&rng), z2 = basin_rng_normal(&rng);
    double rmax = sqrt(-2.0 * log(0x1.0p-53));
    assert_true(isfinite(z1) && isfinite(z2));
    assert_true(fabs(sqrt(z1 * z1 + z2 * z2) - rmax) < 1e-9);

    basin_rng_init(&rng, 1, 1);
    rng.block[0] = rng.block[1] = rng.block[2] = rng.block[3] = 0;
    rng.used = 0;
    z1 = basin_rng_normal(&rng);
    z2 = basin_rng_normal(&rng);
    assert_true(z1 == 0.0 && z2 == 0.0);
}

static void test_below_chi_square(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 99, 4);
    enum { K = 7, DRAWS = 70000 };
    size_t counts[K] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = basin_rng_below(&rng, K);
        assert_true(v < K);
        counts[v]++;
    }
    double chi2 = 0.0, expect = (double)DRAWS / K;
    for (int k = 0; k < K; k++)
        chi2 += (counts[k] - expect) * (counts[k] - expect) / expect;
    assert_true(chi2 < 30.0); /* 6 dof: P(χ² > 27.9) = 1e-4 */
    assert_true(basin_rng_below(&rng, 1) == 0);
}

/* n = 3·2^62: plain x mod n would give [0, 2^62) probability 1/2 instead of 1/3. */
static void test_below_unbiased_large_n(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 3, 0);
    const uint64_t n = 3ULL << 62;
    const int draws = 30000;
    int low = 0;
    for (int i = 0; i < draws; i++) {
        uint64_t v = basin_rng_below(&rng, n);
        assert_true(v < n);
        if (v < (1ULL << 62))
            low++;
    }
    assert_true(fabs((double)low / draws - 1.0 / 3.0) < 0.014); /* σ = 0.0027 */
}

static void test_shuffle(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 8, 8);
    size_t a[50];
    for (size_t i = 0; i < 50; i++)
        a[i] = i;
    basin_rng_shuffle(&rng, a, 50);
    int seen[50] = {0}, moved = 0;
    for (size_t i = 0; i < 50; i++) {
        assert_true(a[i] < 50);
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 30);
    basin_rng_shuffle(&rng, a, 0);
    basin_rng_shuffle(&rng, a, 1);

    /* All 6 orders of 3 items equally likely. */
    enum { TRIALS = 60000 };
    size_t counts[6] = {0};
    for (int t = 0; t < TRIALS; t++) {
        size_t p[3] = {0, 1, 2};
        basin_rng_shuffle(&rng, p, 3);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    double chi2 = 0.0, expect = TRIALS / 6.0;
    for (int k = 0; k < 6; k++)
        chi2 += (counts[k] - expect) * (counts[k] - expect) / expect;
    assert_true(chi2 < 30.0); /* 5 dof: P(χ² > 25.7) = 1e-4 */
}

static void test_streams(void **state)
{
    (void)state;
    basin_rng a, b;
    uint32_t x[64], y[64];
    basin_rng_init(&a, 1, 0);
    basin_rng_init(&b, 1, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(basin_rng_u32(&a), basin_rng_u32(&b));

    const uint64_t keys[][2] = {{1, 0}, {1, 1}, {2, 0}, {1, 1ULL << 32}, {1ULL << 32, 0}};
    const size_t nk = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < nk; i++) {
        for (size_t j = i + 1; j < nk; j++) {
            basin_rng_init(&a, keys[i][0], keys[i][1]);
            basin_rng_init(&b, keys[j][0], keys[j][1]);
            int same = 0;
            for (int k = 0; k < 64; k++) {
                x[k] = basin_rng_u32(&a);
                y[k] = basin_rng_u32(&b);
                same += x[k] == y[k];
            }
            assert_true(same < 4);
        }
    }
    /* Re-initialising restarts the stream and drops a cached normal deviate. */
    basin_rng_init(&a, 5, 6);
    double z0 = basin_rng_normal(&a);
    basin_rng_init(&a, 5, 6);
    assert_true(basin_rng_normal(&a) == z0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_keying),
        cmocka_unit_test(test_counter_carry),
        cmocka_unit_test(test_u64_and_uniform_bits),
        cmocka_unit_test(test_uniform_moments),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_normal_extremes),
        cmocka_unit_test(test_below_chi_square),
        cmocka_unit_test(test_below_unbiased_large_n),
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
