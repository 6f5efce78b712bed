/* Tests of the replaceable allocator (alloc.h): size arithmetic overflow, basin_calloc /
 * basin_alloc_array refusing wrapped sizes, and the failing_alloc.h test helper itself (its
 * two failure modes, live-block tracking and the failure sweep), since every other test's
 * "no leak on ENOMEM" claim rests on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "failing_alloc.h"

static void test_mul_size(void **state)
{
    (void)state;
    size_t out = 7;
    assert_int_equal(basin_mul_size(3, 5, &out), BASIN_OK);
    assert_true(out == 15);
    assert_int_equal(basin_mul_size(0, SIZE_MAX, &out), BASIN_OK);
    assert_true(out == 0);
    assert_int_equal(basin_mul_size(SIZE_MAX, 1, &out), BASIN_OK);
    assert_true(out == SIZE_MAX);
    /* the largest exact product: (2^(w/2) − 1)·(2^(w/2) + 1) = 2^w − 1 */
    size_t half = (size_t)1 << (sizeof(size_t) * 4);
    assert_int_equal(basin_mul_size(half - 1, half + 1, &out), BASIN_OK);
    assert_true(out == SIZE_MAX);
    out = 7;
    assert_int_equal(basin_mul_size(half, half, &out), BASIN_ERANGE);
    assert_true(out == 7); /* untouched on overflow */
    assert_int_equal(basin_mul_size(SIZE_MAX / 2 + 1, 2, &out), BASIN_ERANGE);
    assert_int_equal(basin_mul_size(2, SIZE_MAX / 2 + 1, &out), BASIN_ERANGE);
    assert_true(out == 7);
}

static void test_add_size(void **state)
{
    (void)state;
    size_t out = 7;
    assert_int_equal(basin_add_size(SIZE_MAX - 3, 3, &out), BASIN_OK);
    assert_true(out == SIZE_MAX);
    out = 7;
    assert_int_equal(basin_add_size(SIZE_MAX - 3, 4, &out), BASIN_ERANGE);
    assert_int_equal(basin_add_size(1, SIZE_MAX, &out), BASIN_ERANGE);
    assert_true(out == 7);
    assert_int_equal(basin_add_size(0, 0, &out), BASIN_OK);
    assert_true(out == 0);
}

/* An overflowing count·size must yield NULL without even asking the allocator (a wrapped,
 * small request would "succeed" and be overrun). */
static void test_calloc_overflow(void **state)
{
    (void)state;
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    void *p = basin_calloc(SIZE_MAX / 8 + 1, 16);
    void *q =
        basin_alloc_array((size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4));
    size_t calls = fa.calls;
    failing_alloc_remove();
    assert_null(p);
    assert_null(q);
    assert_true(calls == 0);
}

/* basin_calloc clears memory that the helper poisons; basin_alloc_array does not. */
static void test_calloc_zeroes(void **state)
{
    (void)state;
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    unsigned char *raw = basin_alloc_array(64, 1);
    unsigned char *zero = basin_calloc(16, 4);
    int raw_poisoned = raw && raw[0] == FAILING_ALLOC_POISON && raw[63] == FAILING_ALLOC_POISON;
    int all_zero = zero != NULL;
    for (size_t i = 0; zero && i < 64; i++)
        all_zero &= zero[i] == 0;
    basin_free(raw);
    basin_free(zero);
    failing_alloc_remove();
    assert_true(raw_poisoned);
    assert_true(all_zero);
    assert_true(fa.live == 0);
}

static void test_counts_and_live(void **state)
{
    (void)state;
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    char *a = basin_malloc(10);
    char *b = basin_calloc(3, 4);
    char *s = basin_strdup("basin");
    long live3 = fa.live;
    size_t bytes3 = fa.live_bytes;
    memcpy(a, "012345678", 10);
    a = basin_realloc(a, 100); /* grows: content kept, still one block */
    int kept = a && memcmp(a, "012345678", 10) == 0;
    size_t bytes_grown = fa.live_bytes;
    basin_free(b);
    basin_free(NULL); /* not a call to the allocator */
    long live_after_free = fa.live;
    basin_free(a);
    basin_free(s);
    failing_alloc_remove();
    assert_true(live3 == 3);
    assert_true(bytes3 == 10 + 12 + 6);
    assert_true(kept);
    assert_true(bytes_grown == 100 + 12 + 6);
    assert_true(live_after_free == 2);
    assert_true(fa.live == 0);
    assert_true(fa.live_bytes == 0);
    assert_true(fa.peak_bytes == 118);
    assert_true(fa.calls == 4);
    assert_true(fa.frees == 3);
    assert_true(fa.failures == 0);
}

static void test_fail_from_n(void **state)
{
    (void)state;
    failing_alloc fa;
    void *p[5];
    failing_alloc_install(&fa, 3, FAILING_ALLOC_FROM_N);
    for (int i = 0; i < 5; i++)
        p[i] = basin_malloc(8);
    long live = fa.live;
    for (int i = 0; i < 5; i++)
        basin_free(p[i]);
    failing_alloc_remove();
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    assert_null(p[2]);
    assert_null(p[3]);
    assert_null(p[4]);
    assert_true(live == 2);
    assert_true(fa.failures == 3);
    assert_true(fa.live == 0);
}

static void test_fail_only_n(void **state)
{
    (void)state;
    failing_alloc fa;
    void *p[5];
    failing_alloc_install(&fa, 2, FAILING_ALLOC_ONLY_N);
    for (int i = 0; i < 5; i++)
        p[i] = basin_malloc(8);
    for (int i = 0; i < 5; i++)
        basin_free(p[i]);
    failing_alloc_remove();
    assert_non_null(p[0]);
    assert_null(p[1]);
    assert_non_null(p[2]);
    assert_non_null(p[3]);
    assert_non_null(p[4]);
    assert_true(fa.failures == 1);
    assert_true(fa.live == 0);
}

/* A failed realloc leaves the old block valid and still live. */
static void test_realloc_failure_keeps_block(void **state)
{
    (void)state;
    failing_alloc fa;
    failing_alloc_install(&fa, 2, FAILING_ALLOC_ONLY_N);
    char *a = basin_malloc(4);
    memcpy(a, "abc", 4);
    char *b = basin_realloc(a, 1000);
    int intact = memcmp(a, "abc", 4) == 0;
    long live = fa.live;
    basin_free(a);
    failing_alloc_remove();
    assert_null(b);
    assert_true(intact);
    assert_true(live == 1);
    assert_true(fa.live == 0);
}

/* After removal, the C library allocator is back: the helper's counters no longer move. */
static void test_remove_restores_default(void **state)
{
    (void)state;
    failing_alloc fa;
    failing_alloc_install(&fa, 1, FAILING_ALLOC_FROM_N);
    void *failed = basin_malloc(8);
    failing_alloc_remove();
    void *p = basin_malloc(8);
    basin_free(p);
    assert_null(failed);
    assert_non_null(p);
    assert_true(fa.calls == 1);
    assert_true(fa.frees == 0);
}

/* ---- the sweep helper, on functions with known allocation behaviour ---- */

/* Three allocations with correct cleanup on every path. */
static int three_allocs_clean(void *arg)
{
    (void)arg;
    int rc = BASIN_OK;
    void *a = basin_malloc(1), *b = basin_malloc(2), *c = basin_malloc(3);
    if (!a || !b || !c)
        rc = BASIN_ENOMEM;
    basin_free(a);
    basin_free(b);
    basin_free(c);
    return rc;
}

/* Leaks its first block when the second allocation fails. */
static int leaks_on_second(void *arg)
{
    void **leaked = arg;
    void *a = basin_malloc(1);
    if (!a)
        return BASIN_ENOMEM;
    void *b = basin_malloc(2);
    if (!b) {
        *leaked = a;
        return BASIN_ENOMEM;
    }
    basin_free(a);
    basin_free(b);
    return BASIN_OK;
}

/* Reports a wrong status when its second allocation fails. */
static int wrong_status(void *arg)
{
    (void)arg;
    void *a = basin_malloc(1), *b = basin_malloc(2);
    int rc = !a ? BASIN_ENOMEM : !b ? BASIN_EINVAL : BASIN_OK;
    basin_free(a);
    basin_free(b);
    return rc;
}

static void test_sweep_clean(void **state)
{
    (void)state;
    failing_alloc_report rep;
    assert_true(failing_alloc_sweep(three_allocs_clean, NULL, FAILING_ALLOC_FROM_N, 0, &rep));
    assert_true(rep.runs == 3);
    assert_true(rep.allocations == 3);
    assert_true(rep.bad_n == 0);
    assert_int_equal(rep.final_rc, BASIN_OK);
    assert_true(failing_alloc_sweep(three_allocs_clean, NULL, FAILING_ALLOC_ONLY_N, 0, &rep));
    assert_true(rep.runs == 3);
}

static void test_sweep_finds_leak(void **state)
{
    (void)state;
    failing_alloc_report rep;
    void *leaked = NULL;
    int ok = failing_alloc_sweep(leaks_on_second, &leaked, FAILING_ALLOC_FROM_N, 0, &rep);
    /* free the leak with a helper allocator so the test itself is clean under ASan */
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    basin_free(leaked);
    failing_alloc_remove();
    assert_false(ok);
    assert_true(rep.bad_n == 2);
    assert_int_equal(rep.bad_rc, BASIN_ENOMEM);
    assert_true(rep.bad_live == 1);
}

static void test_sweep_finds_wrong_status(void **state)
{
    (void)state;
    failing_alloc_report rep;
    assert_false(failing_alloc_sweep(wrong_status, NULL, FAILING_ALLOC_FROM_N, 0, &rep));
    assert_true(rep.bad_n == 2);
    assert_int_equal(rep.bad_rc, BASIN_EINVAL);
    assert_true(rep.bad_live == 0);
}

static void test_sweep_max_runs(void **state)
{
    (void)state;
    failing_alloc_report rep;
    assert_false(failing_alloc_sweep(three_allocs_clean, NULL, FAILING_ALLOC_FROM_N, 2, &rep));
    assert_true(rep.runs == 2);
    assert_int_equal(rep.final_rc, BASIN_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mul_size),
        cmocka_unit_test(test_add_size),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_calloc_zeroes),
        cmocka_unit_test(test_counts_and_live),
        cmocka_unit_test(test_fail_from_n),
        cmocka_unit_test(test_fail_only_n),
        cmocka_unit_test(test_realloc_failure_keeps_block),
        cmocka_unit_test(test_remove_restores_default),
        cmocka_unit_test(test_sweep_clean),
        cmocka_unit_test(test_sweep_finds_leak),
        cmocka_unit_test(test_sweep_finds_wrong_status),
        cmocka_unit_test(test_sweep_max_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
