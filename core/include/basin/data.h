/* Datasets: inline arrays, CSV text, and seeded generators.
 *
 * A dataset holds n samples; x is n rows of in_dim numbers (the input flattened row-major from
 * in_shape, [d] or [c,h,w]); y is n rows of y_dim numbers: regression targets, 0/1 labels
 * (binary) or class indices (multiclass, y_dim = 1). The dataset owns x and y. */
#ifndef BASIN_DATA_H
#define BASIN_DATA_H

#include <stddef.h>
#include <stdint.h>

struct basin_arch;

typedef enum basin_task {
    BASIN_TASK_REGRESSION,
    BASIN_TASK_BINARY,
    BASIN_TASK_MULTICLASS
} basin_task;

typedef struct basin_dataset {
    size_t n;
    size_t in_rank;     /* 1 or 3 */
    size_t in_shape[3]; /* [d] or [c,h,w]; unused entries 0 */
    size_t in_dim;      /* product of in_shape */
    size_t y_dim;
    basin_task task;
    size_t n_classes; /* 2 for binary, ≥ 2 for multiclass, 0 for regression */
    double *x;        /* n * in_dim */
    double *y;        /* n * y_dim */
} basin_dataset;

/* Allocate a zero-filled dataset; sizes overflow-checked (BASIN_ERANGE). task = regression. */
int basin_dataset_create(size_t n, size_t in_rank, const size_t *in_shape, size_t y_dim,
                         basin_dataset **out);
void basin_dataset_free(basin_dataset *ds);
/* Deep copy. */
int basin_dataset_clone(const basin_dataset *ds, basin_dataset **out);
/* Reinterpret the input as in_shape (product must equal in_dim, else BASIN_EINVAL). */
int basin_dataset_reshape(basin_dataset *ds, size_t in_rank, const size_t *in_shape);
/* Infer task from y: y_dim == 1 and all labels in {0,1} → binary; all non-negative integers with
 * more than two values → multiclass (n_classes = max+1); else regression. */
void basin_dataset_infer_task(basin_dataset *ds);

/* ---- CSV ---- */
typedef struct basin_csv_options {
    int header;     /* 1: first line is a header, 0: none, -1: detect (non-numeric cells) */
    size_t y_cols;  /* trailing columns that are targets (default 1 when 0) */
    char delimiter; /* ',' when 0 */
} basin_csv_options;

typedef struct basin_parse_error {
    size_t line;   /* 1-based; 0 when not tied to a line */
    size_t column; /* 1-based field index; 0 when not tied to a column */
    char message[160];
} basin_parse_error;

/* Parse CSV text (RFC 4180 quoting, LF or CRLF, optional UTF-8 BOM, blank lines skipped) of
 * numeric rows into a dataset with in_shape [cols − y_cols]. Every row must have the same number
 * of fields; cells must be finite numbers. On failure returns BASIN_EPARSE (or BASIN_ENOMEM /
 * BASIN_ERANGE) and fills err with the line and column. max_rows bounds the allocation
 * (0 = no bound). */
int basin_data_from_csv(const char *text, size_t len, const basin_csv_options *opts,
                        size_t max_rows, basin_dataset **out, basin_parse_error *err);

/* ---- generators ---- */
typedef enum basin_generator_kind {
    BASIN_GEN_XOR,            /* 2-D, 4 Gaussian clusters at (±1,±1), label = xor of signs */
    BASIN_GEN_TWO_MOONS,      /* 2-D, binary */
    BASIN_GEN_CIRCLES,        /* 2-D, binary: inner vs outer circle (factor 0.5) */
    BASIN_GEN_SPIRALS,        /* 2-D, `classes` interleaved spirals */
    BASIN_GEN_GAUSSIAN_BLOBS, /* `dim`-D, `classes` isotropic blobs */
    BASIN_GEN_SINE,           /* 1-D regression: y = sin(π x) + noise, x uniform in [−1, 1] */
    BASIN_GEN_TEACHER,        /* x ~ N(0, I_dim), y = teacher net(x) + noise (regression) */
    BASIN_GEN_BARS_STRIPES    /* 1×size×size images: label 0 = a horizontal bar, 1 = vertical */
} basin_generator_kind;

typedef struct basin_generator_spec {
    basin_generator_kind kind;
    size_t n;     /* number of samples, ≥ 1 */
    double noise; /* ≥ 0; Gaussian noise std (meaning per generator, documented in data.c) */
    uint64_t seed;
    size_t classes;                   /* spirals, blobs (default 2 / 3 when 0) */
    size_t dim;                       /* blobs, teacher: input dimension (default 2 when 0) */
    size_t image_size;                /* bars_stripes: side length (default 8 when 0) */
    const struct basin_arch *teacher; /* teacher: architecture of the teacher net (input [dim]) */
} basin_generator_spec;

int basin_data_generate(const basin_generator_spec *spec, basin_dataset **out);

/* Name <-> kind ("xor", "two_moons", "circles", "spirals", "gaussian_blobs", "sine", "teacher",
 * "bars_stripes"). */
const char *basin_generator_name(basin_generator_kind kind);
int basin_generator_from_name(const char *name, basin_generator_kind *out);

#endif
