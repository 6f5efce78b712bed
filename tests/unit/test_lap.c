/* Tests of the linear assignment solver (lap.c) against brute force: every one of the n!
 * permutations is scored for n ≤ 7, on random real matrices and on degenerate ones (integer
 * ties, constant and rank-one sum matrices where every permutation is optimal, huge and
 * negative entries). Larger instances use a planted zero-cost permutation whose optimum is
 * known; argument errors and allocation failures are checked too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "basin/lap.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "failing_alloc.h"

#define MAXN 7

/* Minimum of Σ_i c[i][σ(i)] over all permutations, by Heap's algorithm. */
static double brute_force(size_t n, const double *c)
{
    size_t perm[MAXN], cnt[MAXN] = {0};
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    double best = INFINITY;
    for (;;) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += c[i * n + perm[i]];
        if (s < best)
            best = s;
        size_t i = 1;
        while (i < n && cnt[i] >= i)
            cnt[i++] = 0;
        if (i >= n)
            break;
        size_t j = i % 2 ? cnt[i] : 0, t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        cnt[i]++;
    }
    return n == 0 ? 0.0 : best;
}

/* Solve, check that the answer is a permutation whose cost is the reported total, and that the
 * total equals the brute-force optimum. */
static void check_against_brute(size_t n, const double *c, double tol)
{
    size_t sigma[MAXN];
    int seen[MAXN] = {0};
    double total = NAN;
    assert_int_equal(basin_lap_solve(n, c, sigma, &total), BASIN_OK);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        assert_true(sigma[i] < n);
        assert_false(seen[sigma[i]]);
        seen[sigma[i]] = 1;
        s += c[i * n + sigma[i]];
    }
    assert_true(s == total);
    double best = brute_force(n, c);
    if (!(fabs(total - best) <= tol)) {
        print_error("n=%zu: lap %.17g, brute force %.17g\n", n, total, best);
        fail();
    }
}

static void test_random_real(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 11, 0);
    double c[MAXN * MAXN];
    for (size_t n = 1; n <= MAXN; n++)
        for (int trial = 0; trial < 30; trial++) {
            for (size_t k = 0; k < n * n; k++)
                c[k] = basin_rng_normal(&rng) * (trial % 3 == 0 ? 100.0 : 1.0);
            check_against_brute(n, c, 1e-12 * (trial % 3 == 0 ? 100.0 : 1.0) * (double)n);
        }
}

static void test_integer_ties(void **state)
{
    (void)state;
    basin_rng rng;
    basin_rng_init(&rng, 12, 0);
    double c[MAXN * MAXN];
    for (size_t n = 1; n <= MAXN; n++)
        for (int trial = 0; trial < 40; trial++) {
            uint64_t levels = (uint64_t)(trial % 4) + 1; /* 1 level: a constant matrix */
            for (size_t k = 0; k < n * n; k++)
                c[k] = (double)basin_rng_below(&rng, levels) - 1.0;
            check_against_brute(n, c, 0.0); /* small integers: exact arithmetic */
        }
}

/* c_ij = a_i + b_j: every permutation costs Σa + Σb. */
static void test_sum_matrix_all_optimal(void **state)
{
    (void)state;
    double a[MAXN] = {3, -1, 4, 1, -5, 9, 2}, b[MAXN] = {-6, 5, 3, -5, 8, 9, -7};
    double c[MAXN * MAXN];
    for (size_t n = 1; n <= MAXN; n++) {
        double expect = 0.0;
        for (size_t i = 0; i < n; i++) {
            expect += a[i] + b[i];
            for (size_t j = 0; j < n; j++)
                c[i * n + j] = a[i] + b[j];
        }
        size_t sigma[MAXN];
        double total;
        assert_int_equal(basin_lap_solve(n, c, sigma, &total), BASIN_OK);
        assert_true(total == expect);
        check_against_brute(n, c, 0.0);
    }
}

static void test_wide_range(void **state)
{
    (void)state;
    /* Entries spanning 1e-3..1e6 in magnitude with a unique optimum found by brute force. */
    double c[4 * 4] = {1e6,  2e-3, 5e5, -3e2, 7.5,  1e6,  -1e-3, 4e4,
                       -2e5, 3e3,  1e6, 9.0,  6e-3, -8e1, 2e2,   1e6};
    check_against_brute(4, c, 1e-9);
    size_t sigma[4];
    double total;
    assert_int_equal(basin_lap_solve(4, c, sigma, &total), BASIN_OK);
    /* Hand check: rows 0..3 → columns 3, 2, 0, 1 costs −300 − 0.001 − 200000 − 80. */
    assert_int_equal(sigma[0], 3);
    assert_int_equal(sigma[1], 2);
    assert_int_equal(sigma[2], 0);
    assert_int_equal(sigma[3], 1);
}

/* A planted permutation with cost 0, everything else cost ≥ 1: the unique optimum. */
static void test_planted_large(void **state)
{
    (void)state;
    enum { N = 60 };
    static double c[N * N];
    size_t planted[N], sigma[N];
    basin_rng rng;
    basin_rng_init(&rng, 13, 0);
    for (size_t i = 0; i < N; i++)
        planted[i] = i;
    basin_rng_shuffle(&rng, planted, N);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            c[i * N + j] = j == planted[i] ? 0.0 : 1.0 + basin_rng_uniform(&rng);
    double total;
    assert_int_equal(basin_lap_solve(N, c, sigma, &total), BASIN_OK);
    assert_true(total == 0.0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(sigma[i], planted[i]);
}

static void test_arguments(void **state)
{
    (void)state;
    double c[4] = {1, 2, 3, 4}, total = -1;
    size_t sigma[2];
    assert_int_equal(basin_lap_solve(0, NULL, NULL, &total), BASIN_OK);
    assert_true(total == 0.0);
    assert_int_equal(basin_lap_solve(2, NULL, sigma, NULL), BASIN_EINVAL);
    assert_int_equal(basin_lap_solve(2, c, NULL, NULL), BASIN_EINVAL);
    c[3] = NAN;
    assert_int_equal(basin_lap_solve(2, c, sigma, NULL), BASIN_EINVAL);
    c[3] = INFINITY;
    assert_int_equal(basin_lap_solve(2, c, sigma, NULL), BASIN_EINVAL);
    assert_int_equal(basin_lap_solve(SIZE_MAX / 2, c, sigma, NULL), BASIN_ERANGE);
    /* Without total: still solved. */
    c[3] = 4;
    assert_int_equal(basin_lap_solve(2, c, sigma, NULL), BASIN_OK);
    assert_int_equal(sigma[0], 0); /* 1 + 4 < 2 + 3 */
    assert_int_equal(sigma[1], 1);
}

static int solve_once(void *arg)
{
    (void)arg;
    double c[9] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
    size_t sigma[3];
    double total;
    int rc = basin_lap_solve(3, c, sigma, &total);
    if (rc == BASIN_OK && total != 5.0) /* 1 + 2 + 2 (brute force by hand: rows → 1, 0, 2) */
        return BASIN_EINVAL;
    return rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    failing_alloc_report rep;
    assert_true(failing_alloc_sweep(solve_once, NULL, FAILING_ALLOC_FROM_N, 0, &rep));
    assert_true(rep.runs >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_real),
        cmocka_unit_test(test_integer_ties),
        cmocka_unit_test(test_sum_matrix_all_optimal),
        cmocka_unit_test(test_wide_range),
        cmocka_unit_test(test_planted_large),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
