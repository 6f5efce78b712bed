/* Tests of the dataset object (data.c): creation with checked sizes, deep copies, reshaping,
 * task inference, and clean failure when allocations fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/data.h"
#include "basin/status.h"

static void test_create_shapes(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    size_t img[3] = {2, 3, 4};
    assert_int_equal(basin_dataset_create(5, 3, img, 2, &ds), BASIN_OK);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->in_rank, 3);
    assert_int_equal(ds->in_dim, 24);
    assert_int_equal(ds->in_shape[2], 4);
    assert_int_equal(ds->y_dim, 2);
    assert_int_equal(ds->task, BASIN_TASK_REGRESSION);
    assert_int_equal(ds->n_classes, 0);
    for (size_t i = 0; i < 5 * 24; i++)
        assert_true(ds->x[i] == 0.0);
    for (size_t i = 0; i < 5 * 2; i++)
        assert_true(ds->y[i] == 0.0);
    basin_dataset_free(ds);

    size_t vec[3] = {7, 99, 99}; /* entries beyond the rank are ignored and stored as 0 */
    assert_int_equal(basin_dataset_create(1, 1, vec, 1, &ds), BASIN_OK);
    assert_int_equal(ds->in_dim, 7);
    assert_int_equal(ds->in_shape[1], 0);
    assert_int_equal(ds->in_shape[2], 0);
    basin_dataset_free(ds);
    basin_dataset_free(NULL);
}

static void test_create_rejects(void **state)
{
    (void)state;
    basin_dataset *ds = (basin_dataset *)(uintptr_t)1;
    size_t shape[3] = {2, 2, 2};
    assert_int_equal(basin_dataset_create(3, 2, shape, 1, &ds), BASIN_EINVAL);
    assert_null(ds);
    assert_int_equal(basin_dataset_create(3, 0, shape, 1, &ds), BASIN_EINVAL);
    assert_int_equal(basin_dataset_create(3, 1, shape, 0, &ds), BASIN_EINVAL);
    assert_int_equal(basin_dataset_create(3, 1, NULL, 1, &ds), BASIN_EINVAL);
    size_t zero[3] = {2, 0, 2};
    assert_int_equal(basin_dataset_create(3, 3, zero, 1, &ds), BASIN_EINVAL);
    assert_int_equal(basin_dataset_create(3, 1, shape, 1, NULL), BASIN_EINVAL);
    /* Overflows: of the shape product, of n · in_dim, of the byte count. */
    size_t big[3] = {SIZE_MAX / 2, 3, 1};
    assert_int_equal(basin_dataset_create(1, 3, big, 1, &ds), BASIN_ERANGE);
    size_t three[1] = {3};
    assert_int_equal(basin_dataset_create(SIZE_MAX / 2, 1, three, 1, &ds), BASIN_ERANGE);
    size_t one[1] = {1};
    assert_int_equal(basin_dataset_create(SIZE_MAX / 4, 1, one, 1, &ds), BASIN_ERANGE);
    assert_int_equal(basin_dataset_create(1, 1, one, SIZE_MAX / 4, &ds), BASIN_ERANGE);
    assert_null(ds);
}

static void test_clone_is_deep(void **state)
{
    (void)state;
    basin_dataset *ds = NULL, *copy = NULL;
    size_t shape[1] = {3};
    assert_int_equal(basin_dataset_create(4, 1, shape, 1, &ds), BASIN_OK);
    for (size_t i = 0; i < 12; i++)
        ds->x[i] = (double)i * 0.5;
    for (size_t i = 0; i < 4; i++)
        ds->y[i] = (double)(i % 2);
    ds->task = BASIN_TASK_BINARY;
    ds->n_classes = 2;
    assert_int_equal(basin_dataset_clone(ds, &copy), BASIN_OK);
    assert_ptr_not_equal(copy->x, ds->x);
    assert_ptr_not_equal(copy->y, ds->y);
    assert_int_equal(copy->n, 4);
    assert_int_equal(copy->in_dim, 3);
    assert_int_equal(copy->task, BASIN_TASK_BINARY);
    assert_int_equal(copy->n_classes, 2);
    assert_memory_equal(copy->x, ds->x, 12 * sizeof(double));
    assert_memory_equal(copy->y, ds->y, 4 * sizeof(double));
    ds->x[5] = 100;
    assert_true(copy->x[5] == 2.5);
    basin_dataset_free(ds);
    assert_true(copy->y[3] == 1.0); /* still readable after the original is gone */
    basin_dataset_free(copy);
    assert_int_equal(basin_dataset_clone(NULL, &copy), BASIN_EINVAL);
}

static void test_reshape(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    size_t flat[1] = {12};
    assert_int_equal(basin_dataset_create(2, 1, flat, 1, &ds), BASIN_OK);
    size_t img[3] = {3, 2, 2};
    assert_int_equal(basin_dataset_reshape(ds, 3, img), BASIN_OK);
    assert_int_equal(ds->in_rank, 3);
    assert_int_equal(ds->in_shape[0], 3);
    assert_int_equal(ds->in_shape[2], 2);
    assert_int_equal(ds->in_dim, 12);
    size_t wrong[3] = {3, 2, 3};
    assert_int_equal(basin_dataset_reshape(ds, 3, wrong), BASIN_EINVAL);
    assert_int_equal(ds->in_shape[2], 2); /* unchanged on failure */
    size_t huge[3] = {SIZE_MAX, 2, 2};
    assert_int_equal(basin_dataset_reshape(ds, 3, huge), BASIN_EINVAL);
    assert_int_equal(basin_dataset_reshape(ds, 2, img), BASIN_EINVAL);
    assert_int_equal(basin_dataset_reshape(ds, 1, flat), BASIN_OK);
    assert_int_equal(ds->in_rank, 1);
    assert_int_equal(ds->in_shape[1], 0);
    basin_dataset_free(ds);
}

/* Dataset with y_dim 1 and the given targets. */
static basin_dataset *with_targets(const double *y, size_t n)
{
    basin_dataset *ds = NULL;
    size_t shape[1] = {1};
    assert_int_equal(basin_dataset_create(n, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->y, y, n * sizeof *y);
    ds->task = BASIN_TASK_MULTICLASS; /* must be overwritten */
    ds->n_classes = 77;
    return ds;
}

static void expect_task(const double *y, size_t n, basin_task task, size_t n_classes)
{
    basin_dataset *ds = with_targets(y, n);
    basin_dataset_infer_task(ds);
    assert_int_equal(ds->task, task);
    assert_int_equal(ds->n_classes, n_classes);
    basin_dataset_free(ds);
}

static void test_infer_task(void **state)
{
    (void)state;
    const double bin[] = {0, 1, 1, 0}, zeros[] = {0, 0, 0}, three[] = {0, 1, 2, 1};
    const double sparse[] = {1, 3, 5}, two_vals[] = {0, 2, 2}, frac[] = {0, 1, 0.5};
    const double neg[] = {-1, 0, 1}, big[] = {0, 1, 1e9}, odd[] = {2, 7, 2, 7, 4};
    expect_task(bin, 4, BASIN_TASK_BINARY, 2);
    expect_task(zeros, 3, BASIN_TASK_BINARY, 2);
    expect_task(three, 4, BASIN_TASK_MULTICLASS, 3);
    expect_task(sparse, 3, BASIN_TASK_MULTICLASS, 6);
    expect_task(odd, 5, BASIN_TASK_MULTICLASS, 8);
    expect_task(two_vals, 3, BASIN_TASK_REGRESSION, 0);
    expect_task(frac, 3, BASIN_TASK_REGRESSION, 0);
    expect_task(neg, 3, BASIN_TASK_REGRESSION, 0);
    expect_task(big, 3, BASIN_TASK_REGRESSION, 0);
    const double with_nan[] = {0, 1, NAN};
    expect_task(with_nan, 3, BASIN_TASK_REGRESSION, 0);

    /* More than one target column is regression even with 0/1 values. */
    basin_dataset *ds = NULL;
    size_t shape[1] = {1};
    assert_int_equal(basin_dataset_create(2, 1, shape, 2, &ds), BASIN_OK);
    ds->y[1] = 1;
    ds->task = BASIN_TASK_BINARY;
    basin_dataset_infer_task(ds);
    assert_int_equal(ds->task, BASIN_TASK_REGRESSION);
    assert_int_equal(ds->n_classes, 0);
    basin_dataset_free(ds);
    basin_dataset_infer_task(NULL);
}

static long alloc_countdown = -1;

static void *failing_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (alloc_countdown == 0)
        return NULL;
    if (alloc_countdown > 0)
        alloc_countdown--;
    return malloc(size);
}

static void *plain_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void plain_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    basin_allocator a = {failing_malloc, plain_realloc, plain_free, NULL};
    size_t shape[1] = {4};
    basin_dataset *src = NULL;
    assert_int_equal(basin_dataset_create(3, 1, shape, 1, &src), BASIN_OK);
    basin_set_allocator(&a);
    for (long k = 0; k < 3; k++) {
        basin_dataset *ds = (basin_dataset *)(uintptr_t)1;
        alloc_countdown = k;
        assert_int_equal(basin_dataset_create(3, 1, shape, 1, &ds), BASIN_ENOMEM);
        assert_null(ds);
        alloc_countdown = k;
        assert_int_equal(basin_dataset_clone(src, &ds), BASIN_ENOMEM);
        assert_null(ds);
    }
    alloc_countdown = 3;
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_clone(src, &ds), BASIN_OK);
    alloc_countdown = -1;
    basin_set_allocator(NULL);
    basin_dataset_free(ds);
    basin_dataset_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_shapes), cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_clone_is_deep), cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_infer_task),    cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
