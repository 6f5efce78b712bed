/* Tests of the spike-preserving trajectory downsampler (server/downsample.c): a hand-worked
 * bucket example, spikes and dips surviving a 25× reduction, NaN treated as a spike, the point
 * budget respected for awkward spans, and argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "downsample.h"

static struct store_traj_point pt(int64_t step, double risk)
{
    struct store_traj_point p = {step, risk, 0.5 * risk, 2.0};
    return p;
}

static int has_step(const struct store_traj_point *p, size_t n, int64_t step)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i].step == step)
            return 1;
    return 0;
}

static void assert_strictly_increasing(const struct store_traj_point *p, size_t n)
{
    size_t i;
    for (i = 1; i < n; i++)
        assert_true(p[i].step > p[i - 1].step);
}

/* Steps 0..9, 2 buckets of 5 steps. Bucket 0 = risks 3 1 4 1 5: first step 0, min step 1 (the
 * first of the two 1s), max step 4, last step 4. Bucket 1 = 9 2 6 5 3: first/max step 5, min
 * step 6, last step 9. */
static void test_hand_example(void **state)
{
    static const double risk[10] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    static const int64_t want[] = {0, 1, 4, 5, 6, 9};
    struct downsampler d;
    struct store_traj_point *out = NULL;
    size_t n = 0, i;
    (void)state;

    assert_int_equal(downsample_init(&d, 0, 9, 8), STORE_OK);
    assert_int_equal(d.n_buckets, 2);
    assert_int_equal(d.width, 5);
    for (i = 0; i < 10; i++) {
        struct store_traj_point p = pt((int64_t)i, risk[i]);
        downsample_add(&d, &p);
    }
    assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (i = 0; i < n; i++) {
        assert_int_equal(out[i].step, want[i]);
        assert_true(out[i].risk == risk[want[i]]); /* the point itself, not an aggregate */
        assert_true(out[i].grad_norm == 0.5 * risk[want[i]]);
    }
    free(out);
    downsample_free(&d);
}

static void test_spikes_survive(void **state)
{
    struct downsampler d;
    struct store_traj_point *out = NULL;
    size_t n = 0, i;
    (void)state;

    /* 1000 points every 10 steps, a smooth decay with one spike and one dip. */
    assert_int_equal(downsample_init(&d, 0, 9990, 40), STORE_OK);
    for (i = 0; i < 1000; i++) {
        int64_t step = 10 * (int64_t)i;
        double r = 1.0 / (1.0 + (double)i);
        if (step == 5370)
            r = 100.0;
        if (step == 7010)
            r = -5.0;
        struct store_traj_point p = pt(step, r);
        downsample_add(&d, &p);
    }
    assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
    assert_true(n <= 40);
    assert_true(n >= 20); /* 10 buckets, each keeps at least first and last */
    assert_strictly_increasing(out, n);
    assert_true(has_step(out, n, 5370));
    assert_true(has_step(out, n, 7010));
    assert_true(has_step(out, n, 0));
    assert_true(has_step(out, n, 9990));
    free(out);
    downsample_free(&d);
}

static void test_nan_is_a_spike(void **state)
{
    struct downsampler d;
    struct store_traj_point *out = NULL;
    size_t n = 0, i;
    (void)state;

    assert_int_equal(downsample_init(&d, 0, 99, 4), STORE_OK); /* one bucket */
    for (i = 0; i < 100; i++) {
        struct store_traj_point p = pt((int64_t)i, i == 50 ? NAN : 2.0 - 0.01 * (double)i);
        downsample_add(&d, &p);
    }
    assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
    /* first = step 0 (also the max of the finite values, but NaN outranks it), min = step 99 =
     * last, max = step 50 (NaN). */
    assert_int_equal(n, 3);
    assert_int_equal(out[0].step, 0);
    assert_int_equal(out[1].step, 50);
    assert_true(isnan(out[1].risk));
    assert_int_equal(out[2].step, 99);
    free(out);
    downsample_free(&d);
}

/* Spans that do not divide evenly: the budget of max_points is never exceeded, and every step in
 * [lo, hi] lands in a bucket (so the last point is kept). */
static void test_budget_and_coverage(void **state)
{
    static const int64_t spans[] = {1, 2, 7, 11, 99, 101, 1000, 12345};
    static const size_t budgets[] = {4, 5, 8, 13, 100};
    size_t a, b, i;
    (void)state;

    for (a = 0; a < sizeof spans / sizeof spans[0]; a++) {
        for (b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
            struct downsampler d;
            struct store_traj_point *out = NULL;
            size_t n = 0;
            int64_t lo = 3, hi = 3 + spans[a] - 1;
            assert_int_equal(downsample_init(&d, lo, hi, budgets[b]), STORE_OK);
            for (i = 0; i < (size_t)spans[a]; i++) {
                struct store_traj_point p = pt(lo + (int64_t)i, sin((double)i));
                downsample_add(&d, &p);
            }
            assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
            assert_true(n <= budgets[b]);
            assert_true(n >= 1);
            assert_int_equal(out[0].step, lo);
            assert_int_equal(out[n - 1].step, hi);
            assert_strictly_increasing(out, n);
            if ((size_t)spans[a] <= budgets[b] / 4) /* one step per bucket: all kept */
                assert_int_equal(n, spans[a]);
            free(out);
            downsample_free(&d);
        }
    }
}

static void test_outside_points_ignored(void **state)
{
    struct downsampler d;
    struct store_traj_point *out = NULL;
    size_t n = 0;
    struct store_traj_point before = pt(4, 1000.0), inside = pt(5, 1.0), after = pt(11, -1000.0);
    (void)state;

    assert_int_equal(downsample_init(&d, 5, 10, 400), STORE_OK);
    assert_int_equal(d.width, 1); /* more budget than steps: one step per bucket */
    downsample_add(&d, &before);
    downsample_add(&d, &inside);
    downsample_add(&d, &after);
    assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].step, 5);
    free(out);
    downsample_free(&d);

    /* Nothing added: no points, no allocation. */
    assert_int_equal(downsample_init(&d, 0, 10, 8), STORE_OK);
    assert_int_equal(downsample_finish(&d, &out, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_null(out);
    downsample_free(&d);
}

static void test_bad_arguments(void **state)
{
    struct downsampler d;
    (void)state;
    assert_int_equal(downsample_init(&d, 0, 10, 3), STORE_EINVAL);
    assert_int_equal(downsample_init(&d, 10, 9, 8), STORE_EINVAL);
    assert_int_equal(downsample_init(&d, -1, 9, 8), STORE_EINVAL);
    downsample_free(&d); /* safe on a zeroed struct */
    downsample_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_example),           cmocka_unit_test(test_spikes_survive),
        cmocka_unit_test(test_nan_is_a_spike),         cmocka_unit_test(test_budget_and_coverage),
        cmocka_unit_test(test_outside_points_ignored), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
