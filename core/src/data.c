/* Dataset objects (data.h): allocation with overflow-checked sizes, deep copy, reshaping of the
 * input, and inference of the task (regression, binary, multiclass) from the targets. The CSV
 * reader lives in data_csv.c and the seeded generators in data_gen.c; both build on these. */
#include "basin/data.h"

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"

/* Class labels above this are taken as regression targets: a class needs an output unit, and a
 * net never has more units than this in one layer (BASIN_NET_MAX_WIDTH). It also keeps the
 * double → size_t conversion of the largest label well defined. */
#define DATA_MAX_CLASSES 65536.0

/* Product of in_shape[0..in_rank) into *in_dim; BASIN_EINVAL for a bad rank or a zero extent,
 * BASIN_ERANGE on overflow. */
static int shape_dim(size_t in_rank, const size_t *in_shape, size_t *in_dim)
{
    if ((in_rank != 1 && in_rank != 3) || !in_shape)
        return BASIN_EINVAL;
    size_t dim = 1;
    for (size_t i = 0; i < in_rank; i++) {
        if (in_shape[i] == 0)
            return BASIN_EINVAL;
        int rc = basin_mul_size(dim, in_shape[i], &dim);
        if (rc)
            return rc;
    }
    *in_dim = dim;
    return BASIN_OK;
}

static void set_shape(basin_dataset *ds, size_t in_rank, const size_t *in_shape, size_t in_dim)
{
    ds->in_rank = in_rank;
    for (size_t i = 0; i < 3; i++)
        ds->in_shape[i] = i < in_rank ? in_shape[i] : 0;
    ds->in_dim = in_dim;
}

int basin_dataset_create(size_t n, size_t in_rank, const size_t *in_shape, size_t y_dim,
                         basin_dataset **out)
{
    int rc = BASIN_OK;
    basin_dataset *ds = NULL;
    size_t in_dim = 0, nx = 0, ny = 0;
    if (!out) {
        rc = BASIN_EINVAL;
        goto done;
    }
    *out = NULL;
    if (y_dim == 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if ((rc = shape_dim(in_rank, in_shape, &in_dim)) != BASIN_OK)
        goto done;
    if ((rc = basin_mul_size(n, in_dim, &nx)) != BASIN_OK ||
        (rc = basin_mul_size(n, y_dim, &ny)) != BASIN_OK)
        goto done;
    /* Byte counts too: basin_calloc would refuse them, but as ENOMEM rather than ERANGE. */
    if ((rc = basin_mul_size(nx, sizeof(double), &nx)) != BASIN_OK ||
        (rc = basin_mul_size(ny, sizeof(double), &ny)) != BASIN_OK)
        goto done;
    ds = basin_calloc(1, sizeof *ds);
    if (!ds) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    ds->n = n;
    set_shape(ds, in_rank, in_shape, in_dim);
    ds->y_dim = y_dim;
    ds->task = BASIN_TASK_REGRESSION;
    ds->n_classes = 0;
    ds->x = basin_calloc(1, nx);
    ds->y = basin_calloc(1, ny);
    if (!ds->x || !ds->y) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *out = ds;
    ds = NULL;
done:
    basin_dataset_free(ds);
    return rc;
}

void basin_dataset_free(basin_dataset *ds)
{
    if (!ds)
        return;
    basin_free(ds->x);
    basin_free(ds->y);
    basin_free(ds);
}

int basin_dataset_clone(const basin_dataset *ds, basin_dataset **out)
{
    int rc = BASIN_OK;
    basin_dataset *copy = NULL;
    if (!ds || !out) {
        rc = BASIN_EINVAL;
        goto done;
    }
    *out = NULL;
    if ((rc = basin_dataset_create(ds->n, ds->in_rank, ds->in_shape, ds->y_dim, &copy)) != BASIN_OK)
        goto done;
    copy->task = ds->task;
    copy->n_classes = ds->n_classes;
    /* create() has already proven these products do not overflow. */
    memcpy(copy->x, ds->x, ds->n * ds->in_dim * sizeof(double));
    memcpy(copy->y, ds->y, ds->n * ds->y_dim * sizeof(double));
    *out = copy;
    copy = NULL;
done:
    basin_dataset_free(copy);
    return rc;
}

int basin_dataset_reshape(basin_dataset *ds, size_t in_rank, const size_t *in_shape)
{
    size_t in_dim = 0;
    if (!ds)
        return BASIN_EINVAL;
    int rc = shape_dim(in_rank, in_shape, &in_dim);
    if (rc == BASIN_ERANGE || (rc == BASIN_OK && in_dim != ds->in_dim))
        rc = BASIN_EINVAL; /* an overflowing product cannot equal in_dim either */
    if (rc == BASIN_OK)
        set_shape(ds, in_rank, in_shape, in_dim);
    return rc;
}

void basin_dataset_infer_task(basin_dataset *ds)
{
    if (!ds)
        return;
    ds->task = BASIN_TASK_REGRESSION;
    ds->n_classes = 0;
    if (ds->y_dim != 1 || ds->n == 0)
        return;
    int binary = 1, integral = 1;
    double first = ds->y[0], second = first, max = first;
    size_t distinct = 1;
    for (size_t i = 0; i < ds->n; i++) {
        double v = ds->y[i];
        if (v != 0.0 && v != 1.0)
            binary = 0;
        if (!(v >= 0.0 && v <= DATA_MAX_CLASSES - 1.0 && v == floor(v)))
            integral = 0;
        if (!integral)
            break;
        if (distinct == 1 && v != first) {
            second = v;
            distinct = 2;
        } else if (distinct == 2 && v != first && v != second) {
            distinct = 3; /* "more than two" is all that matters */
        }
        if (v > max)
            max = v;
    }
    if (binary) {
        ds->task = BASIN_TASK_BINARY;
        ds->n_classes = 2;
    } else if (integral && distinct > 2) {
        ds->task = BASIN_TASK_MULTICLASS;
        ds->n_classes = (size_t)max + 1;
    }
}
