/* Datasets in the spec: inline points, CSV text, seeded generators and the Gaussian
 * teacher–student population (kinds "inline", "csv", "generator", "teacher_gaussian"), parsed
 * into basin_dataset (or the teacher description) and written back in canonical form.
 *
 * Limits before allocation: for inline data the rows of x are counted and the row length read
 * from x[0] first, and n, input size and n·input size are compared with the limits before the
 * dataset is created; generators are checked from n and their input size (fixed, `dim` or
 * image_size²); CSV text is bounded by the body size and by max_points rows, which the CSV
 * parser enforces while it reads (its allocation is therefore bounded by the body size).
 *
 * Work before it is done: generators and teachers run while the request is parsed, so their
 * cost is bounded too. A teacher_gaussian dataset of any teacher kind has k · d weights
 * (max_dataset_values) and its setup computes k² kernel values of d-vectors (k² · d ≤
 * max_teacher_work); the "teacher" generator evaluates the teacher on n samples (n × its
 * multiply-adds per sample ≤ max_generator_work, n × its values per sample ≤
 * max_batch_activations). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "spec.h"
#include "spec_int.h"

enum { DS_INLINE, DS_GENERATOR, DS_CSV, DS_TEACHER_GAUSSIAN, N_DS_KINDS };
static const char *const ds_kind_names[N_DS_KINDS] = {"inline", "generator", "csv",
                                                      "teacher_gaussian"};
static const enum spec_dataset_kind ds_kinds[N_DS_KINDS] = {
    SPEC_DATASET_INLINE, SPEC_DATASET_GENERATOR, SPEC_DATASET_CSV, SPEC_DATASET_TEACHER_GAUSSIAN};
static const char *const ds_keys[N_DS_KINDS][8] = {
    {"kind", "name", "x", "y", "input_shape", NULL},
    {"kind", "name", "generator", NULL},
    {"kind", "name", "csv", "y_cols", "header", "delimiter", "input_shape", NULL},
    {"kind", "name", "k", "d", "teacher", "seed", NULL}};

/* Generator names in the order of basin_generator_kind (data.h). */
static const char *const gen_names[] = {
    "xor", "two_moons", "circles", "spirals", "gaussian_blobs", "sine", "teacher", "bars_stripes"};
static const basin_generator_kind gen_kinds[] = {
    BASIN_GEN_XOR,     BASIN_GEN_TWO_MOONS,      BASIN_GEN_CIRCLES,
    BASIN_GEN_SPIRALS, BASIN_GEN_GAUSSIAN_BLOBS, BASIN_GEN_SINE,
    BASIN_GEN_TEACHER, BASIN_GEN_BARS_STRIPES};
#define N_GENS (sizeof gen_names / sizeof gen_names[0])

static const char *const gen_base_keys[] = {"name", "n", "noise", "seed", NULL};
static const char *const gen_spirals_keys[] = {"name", "n", "noise", "seed", "classes", NULL};
static const char *const gen_blobs_keys[] = {"name", "n", "noise", "seed", "classes", "dim", NULL};
static const char *const gen_teacher_keys[] = {"name", "n",       "noise", "seed",
                                               "dim",  "teacher", NULL};
static const char *const gen_bars_keys[] = {"name", "n", "noise", "seed", "image_size", NULL};
static const char *const gen_any_keys[] = {"name", "n",       "noise",      "seed", "classes",
                                           "dim",  "teacher", "image_size", NULL};

static const char *const teacher_names[] = {"identity", "random_orthonormal"};

void spec_dataset_free(struct spec_dataset *ds)
{
    if (ds == NULL)
        return;
    basin_dataset_free(ds->data);
    spec_arch_free(ds->teacher_arch);
    basin_free(ds->csv);
    basin_free(ds->tg.matrix);
    basin_free(ds->name);
    basin_free(ds);
}

static void set_shape(struct spec_dataset *sd, size_t rank, const size_t *shape)
{
    sd->in_rank = rank;
    for (size_t i = 0; i < 3; i++)
        sd->in_shape[i] = i < rank ? shape[i] : 0;
}

/* n · per_sample ≤ max_dataset_values; the error goes to the current pointer's member key. */
static int check_values(struct spec_ctx *c, const char *key, size_t n, size_t per_sample,
                        const char *what)
{
    size_t total;
    if (basin_mul_size(n, per_sample, &total) != BASIN_OK || total > c->lim->max_dataset_values) {
        spec_err_at(c, key, "%zu samples × %zu %s exceed the limit of %zu dataset values", n,
                    per_sample, what, c->lim->max_dataset_values);
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

/* ---- inline ---- */

/* Copy row (a JSON array of `len` finite numbers) into dst; errors point at each bad cell. */
static int read_row(struct spec_ctx *c, const json_t *row, size_t len, const char *like,
                    double *dst)
{
    if (!json_is_array(row) || json_array_size(row) != len) {
        spec_err(c, "must be an array of %zu numbers%s", len, like);
        return BASIN_EINVAL;
    }
    int rc = BASIN_OK;
    for (size_t j = 0; j < len; j++) {
        json_t *e = json_array_get(row, j);
        double d = json_is_number(e) ? json_number_value(e) : NAN;
        if (!isfinite(d)) {
            size_t mark = spec_ptr_push_index(c, j);
            spec_err(c, "must be a finite number");
            spec_ptr_pop(c, mark);
            rc = BASIN_EINVAL;
            d = 0;
        }
        dst[j] = d;
    }
    return rc;
}

/* Sizes of the inline arrays, checked against the limits before anything is allocated. */
static int inline_sizes(struct spec_ctx *c, const json_t *v, size_t *n, size_t *d, size_t *ydim,
                        int *y_rows)
{
    const struct limits *lim = c->lim;
    json_t *x = json_object_get(v, "x"), *y = json_object_get(v, "y");
    int rc = BASIN_OK;
    *n = json_is_array(x) ? json_array_size(x) : 0;
    if (x == NULL) {
        spec_err_at(c, "x", "required");
        rc = BASIN_EINVAL;
    } else if (*n == 0) {
        spec_err_at(c, "x", "must be a non-empty array of rows");
        rc = BASIN_EINVAL;
    } else if (*n > lim->max_points) {
        spec_err_at(c, "x", "has %zu rows; the limit is %zu points", *n, lim->max_points);
        rc = BASIN_EINVAL;
    } else {
        json_t *row0 = json_array_get(x, 0);
        *d = json_is_array(row0) ? json_array_size(row0) : 0;
        size_t mark = spec_ptr_push(c, "x");
        if (*d == 0) {
            spec_ptr_push_index(c, 0);
            spec_err(c, "must be a non-empty array of numbers");
            rc = BASIN_EINVAL;
        } else if (*d > lim->max_input_dim) {
            spec_ptr_push_index(c, 0);
            spec_err(c, "has %zu values; the limit is %zu per input", *d, lim->max_input_dim);
            rc = BASIN_EINVAL;
        }
        spec_ptr_pop(c, mark);
        if (rc == BASIN_OK)
            rc = check_values(c, "x", *n, *d, "inputs");
    }
    size_t ny = json_is_array(y) ? json_array_size(y) : 0;
    if (y == NULL) {
        spec_err_at(c, "y", "required");
        return BASIN_EINVAL;
    }
    if (!json_is_array(y) || (rc == BASIN_OK && ny != *n)) {
        spec_err_at(c, "y", "must be an array of %zu targets (one per row of x)",
                    rc == BASIN_OK ? *n : ny);
        return BASIN_EINVAL;
    }
    if (ny == 0) {
        spec_err_at(c, "y", "must be a non-empty array of targets");
        return BASIN_EINVAL;
    }
    json_t *y0 = json_array_get(y, 0);
    *y_rows = json_is_array(y0);
    *ydim = *y_rows ? json_array_size(y0) : 1;
    if (*ydim == 0 || *ydim > lim->max_input_dim) {
        size_t mark = spec_ptr_push(c, "y");
        spec_ptr_push_index(c, 0);
        spec_err(c, "must be a number or an array of 1 to %zu numbers", lim->max_input_dim);
        spec_ptr_pop(c, mark);
        return BASIN_EINVAL;
    }
    if (rc == BASIN_OK)
        rc = check_values(c, "y", *n, *ydim, "targets");
    return rc;
}

static int fill_inline(struct spec_ctx *c, const json_t *v, int y_rows, basin_dataset *ds)
{
    json_t *x = json_object_get(v, "x"), *y = json_object_get(v, "y");
    int rc = BASIN_OK;
    size_t mark = spec_ptr_push(c, "x");
    for (size_t i = 0; i < ds->n; i++) {
        size_t m2 = spec_ptr_push_index(c, i);
        rc |=
            read_row(c, json_array_get(x, i), ds->in_dim, " (like row 0)", ds->x + i * ds->in_dim);
        spec_ptr_pop(c, m2);
    }
    spec_ptr_pop(c, mark);
    mark = spec_ptr_push(c, "y");
    for (size_t i = 0; i < ds->n; i++) {
        size_t m2 = spec_ptr_push_index(c, i);
        json_t *e = json_array_get(y, i);
        if (y_rows) {
            rc |= read_row(c, e, ds->y_dim, " (like y[0])", ds->y + i * ds->y_dim);
        } else if (!json_is_number(e) || !isfinite(json_number_value(e))) {
            spec_err(c, "must be a finite number (like y[0])");
            rc = BASIN_EINVAL;
        } else {
            ds->y[i] = json_number_value(e);
        }
        spec_ptr_pop(c, m2);
    }
    spec_ptr_pop(c, mark);
    return rc ? BASIN_EINVAL : BASIN_OK;
}

static int parse_inline(struct spec_ctx *c, const json_t *v, struct spec_dataset *sd)
{
    size_t n = 0, d = 0, ydim = 1, rank = 1, shape[3] = {0, 0, 0};
    int y_rows = 0, present = 0, rc;
    rc = inline_sizes(c, v, &n, &d, &ydim, &y_rows);
    if (spec_get_shape(c, v, "input_shape", c->lim->max_input_dim, &rank, shape, &present) !=
        BASIN_OK)
        rc = BASIN_EINVAL;
    if (rc != BASIN_OK)
        return BASIN_EINVAL;
    if (!present) {
        rank = 1;
        shape[0] = d;
    } else if (shape[0] * (rank == 3 ? shape[1] * shape[2] : 1) != d) {
        spec_err_at(c, "input_shape", "describes %zu values but the rows of x have %zu",
                    shape[0] * (rank == 3 ? shape[1] * shape[2] : 1), d);
        return BASIN_EINVAL;
    }
    rc = basin_dataset_create(n, rank, shape, ydim, &sd->data);
    if (rc != BASIN_OK) {
        c->oom = rc == BASIN_ENOMEM;
        if (!c->oom)
            spec_err(c, "rejected: %s", basin_strerror(rc));
        return rc == BASIN_ENOMEM ? rc : BASIN_EINVAL;
    }
    set_shape(sd, rank, shape);
    rc = fill_inline(c, v, y_rows, sd->data);
    if (rc == BASIN_OK)
        basin_dataset_infer_task(sd->data);
    return rc;
}

/* ---- generator ---- */

static size_t generator_in_dim(const basin_generator_spec *g)
{
    switch (g->kind) {
    case BASIN_GEN_GAUSSIAN_BLOBS:
    case BASIN_GEN_TEACHER:
        return g->dim;
    case BASIN_GEN_SINE:
        return 1;
    case BASIN_GEN_BARS_STRIPES:
        return g->image_size * g->image_size;
    default:
        return 2;
    }
}

static int parse_generator_fields(struct spec_ctx *c, const json_t *g, size_t k,
                                  struct spec_dataset *sd)
{
    const struct limits *lim = c->lim;
    basin_generator_spec *gen = &sd->gen;
    int rc = BASIN_OK;
    const char *const *keys = gen_base_keys;
    switch (gen->kind) {
    case BASIN_GEN_SPIRALS:
        keys = gen_spirals_keys;
        break;
    case BASIN_GEN_GAUSSIAN_BLOBS:
        keys = gen_blobs_keys;
        break;
    case BASIN_GEN_TEACHER:
        keys = gen_teacher_keys;
        break;
    case BASIN_GEN_BARS_STRIPES:
        keys = gen_bars_keys;
        break;
    default:
        break;
    }
    char what[48];
    snprintf(what, sizeof what, "generator %s", gen_names[k]);
    rc |= spec_check_keys(c, g, keys, what);
    rc |= spec_get_size(c, g, "n", 1, 1, lim->max_points, 0, &gen->n);
    rc |= spec_get_num(c, g, "noise", 0, SPEC_NUM_NONNEG, 0.05, &gen->noise);
    rc |= spec_get_u64(c, g, "seed", 0, &gen->seed);
    if (gen->kind == BASIN_GEN_SPIRALS || gen->kind == BASIN_GEN_GAUSSIAN_BLOBS)
        rc |= spec_get_size(c, g, "classes", 0, 2, lim->max_classes,
                            gen->kind == BASIN_GEN_SPIRALS ? 2 : 3, &gen->classes);
    if (gen->kind == BASIN_GEN_GAUSSIAN_BLOBS || gen->kind == BASIN_GEN_TEACHER)
        rc |= spec_get_size(c, g, "dim", 0, 1, lim->max_input_dim, 2, &gen->dim);
    if (gen->kind == BASIN_GEN_BARS_STRIPES) {
        int r2 = spec_get_size(c, g, "image_size", 0, 1, lim->max_width, 8, &gen->image_size);
        size_t pixels;
        if (r2 == BASIN_OK &&
            (basin_mul_size(gen->image_size, gen->image_size, &pixels) != BASIN_OK ||
             pixels > lim->max_input_dim)) {
            spec_err_at(c, "image_size", "gives %zu² values per image; the limit is %zu",
                        gen->image_size, lim->max_input_dim);
            r2 = BASIN_EINVAL;
        }
        rc |= r2;
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

static int parse_generator_teacher(struct spec_ctx *c, const json_t *g, struct spec_dataset *sd)
{
    json_t *t = json_object_get(g, "teacher");
    if (t == NULL) {
        spec_err_at(c, "teacher", "required (the teacher network's architecture)");
        return BASIN_EINVAL;
    }
    size_t shape[3] = {sd->gen.dim, 0, 0};
    size_t mark = spec_ptr_push(c, "teacher");
    int rc = spec_arch_parse_at(c, t, 1, shape, &sd->teacher_arch);
    if (rc == BASIN_OK) {
        const basin_arch *a = &sd->teacher_arch->arch;
        if (a->in_rank != 1 || a->in_shape[0] != sd->gen.dim) {
            spec_err_at(c, "input_shape", "must be [%zu] (the generator's dim)", sd->gen.dim);
            rc = BASIN_EINVAL;
        }
    }
    spec_ptr_pop(c, mark);
    if (rc == BASIN_OK)
        sd->gen.teacher = &sd->teacher_arch->arch;
    return rc;
}

/* The teacher generator runs the teacher on all n samples, on the request's thread. */
static int check_generator_work(struct spec_ctx *c, const struct spec_dataset *sd)
{
    const basin_net *net = sd->teacher_arch->net;
    size_t n = sd->gen.n, work = spec_net_forward_work(net), acts = spec_net_activations(net);
    size_t total;
    int rc = BASIN_OK;
    if (basin_mul_size(n, work, &total) != BASIN_OK || total > c->lim->max_generator_work) {
        spec_err_at(c, "n",
                    "%zu samples × %zu multiply-adds per sample of the teacher exceed the limit "
                    "of %zu for generating a dataset",
                    n, work, c->lim->max_generator_work);
        rc = BASIN_EINVAL;
    }
    if (basin_mul_size(n, acts, &total) != BASIN_OK || total > c->lim->max_batch_activations) {
        spec_err_at(c, "n",
                    "%zu samples × %zu values per sample of the teacher exceed the limit of %zu "
                    "values evaluated at once",
                    n, acts, c->lim->max_batch_activations);
        rc = BASIN_EINVAL;
    }
    return rc;
}

static int parse_generator(struct spec_ctx *c, const json_t *v, struct spec_dataset *sd)
{
    json_t *g = json_object_get(v, "generator");
    size_t k = 0;
    int rc = BASIN_OK;
    if (g == NULL) {
        spec_err_at(c, "generator", "required");
        return BASIN_EINVAL;
    }
    size_t mark = spec_ptr_push(c, "generator");
    if (!json_is_object(g)) {
        spec_err(c, "must be an object");
        rc = BASIN_EINVAL;
        goto done;
    }
    if (spec_get_enum(c, g, "name", 1, gen_names, N_GENS, 0, &k) != BASIN_OK) {
        spec_check_keys(c, g, gen_any_keys, "a generator");
        rc = BASIN_EINVAL;
        goto done;
    }
    memset(&sd->gen, 0, sizeof sd->gen);
    sd->gen.kind = gen_kinds[k];
    rc = parse_generator_fields(c, g, k, sd);
    if (rc == BASIN_OK)
        rc = check_values(c, "n", sd->gen.n, generator_in_dim(&sd->gen), "inputs");
    if (sd->gen.kind == BASIN_GEN_TEACHER && rc == BASIN_OK)
        rc = parse_generator_teacher(c, g, sd);
    if (sd->gen.kind == BASIN_GEN_TEACHER && rc == BASIN_OK)
        rc = check_generator_work(c, sd);
    if (rc != BASIN_OK)
        goto done;
    rc = basin_data_generate(&sd->gen, &sd->data);
    if (rc == BASIN_ENOMEM) {
        c->oom = 1;
    } else if (rc != BASIN_OK) {
        spec_err(c, "rejected by the generator: %s", basin_strerror(rc));
        rc = BASIN_EINVAL;
    } else {
        set_shape(sd, sd->data->in_rank, sd->data->in_shape);
    }
done:
    spec_ptr_pop(c, mark);
    return rc;
}

/* ---- csv ---- */

static int parse_csv_options(struct spec_ctx *c, const json_t *v, struct spec_dataset *sd)
{
    int rc = BASIN_OK, header = -1;
    json_t *h = json_object_get(v, "header");
    if (h != NULL)
        rc |= spec_get_bool(c, v, "header", 0, &header);
    sd->csv_opts.header = header;
    rc |= spec_get_size(c, v, "y_cols", 0, 1, c->lim->max_input_dim, 1, &sd->csv_opts.y_cols);
    const char *delim = ",";
    if (spec_get_string(c, v, "delimiter", 0, ",", &delim) != BASIN_OK) {
        rc = BASIN_EINVAL;
    } else if (strlen(delim) != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r') {
        spec_err_at(c, "delimiter", "must be a single character (not a quote or a line break)");
        rc = BASIN_EINVAL;
    } else {
        sd->csv_opts.delimiter = delim[0];
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

static int parse_csv(struct spec_ctx *c, const json_t *v, struct spec_dataset *sd)
{
    const struct limits *lim = c->lim;
    size_t rank = 1, shape[3] = {0, 0, 0};
    int present = 0, rc = BASIN_OK;
    json_t *text = json_object_get(v, "csv");
    if (text == NULL) {
        spec_err_at(c, "csv", "required");
        rc = BASIN_EINVAL;
    } else if (!json_is_string(text)) {
        spec_err_at(c, "csv", "must be a string of CSV text");
        rc = BASIN_EINVAL;
    }
    rc |= parse_csv_options(c, v, sd);
    rc |= spec_get_shape(c, v, "input_shape", lim->max_input_dim, &rank, shape, &present);
    if (rc != BASIN_OK)
        return BASIN_EINVAL;

    sd->csv_len = json_string_length(text);
    sd->csv = basin_malloc(sd->csv_len + 1);
    if (sd->csv == NULL) {
        c->oom = 1;
        return BASIN_ENOMEM;
    }
    memcpy(sd->csv, json_string_value(text), sd->csv_len + 1);
    basin_parse_error perr;
    memset(&perr, 0, sizeof perr);
    rc =
        basin_data_from_csv(sd->csv, sd->csv_len, &sd->csv_opts, lim->max_points, &sd->data, &perr);
    if (rc == BASIN_ENOMEM) {
        c->oom = 1;
        return rc;
    }
    if (rc != BASIN_OK) {
        if (perr.line > 0 && perr.column > 0)
            spec_err_at(c, "csv", "line %zu, column %zu: %s", perr.line, perr.column, perr.message);
        else if (perr.line > 0)
            spec_err_at(c, "csv", "line %zu: %s", perr.line, perr.message);
        else
            spec_err_at(c, "csv", "%s", perr.message[0] ? perr.message : basin_strerror(rc));
        return BASIN_EINVAL;
    }
    basin_dataset *ds = sd->data;
    if (ds->in_dim > lim->max_input_dim) {
        spec_err_at(c, "csv", "has %zu input columns; the limit is %zu", ds->in_dim,
                    lim->max_input_dim);
        return BASIN_EINVAL;
    }
    if (check_values(c, "csv", ds->n, ds->in_dim, "inputs") != BASIN_OK)
        return BASIN_EINVAL;
    if (present && basin_dataset_reshape(ds, rank, shape) != BASIN_OK) {
        spec_err_at(c, "input_shape", "does not match the %zu input columns of the CSV",
                    ds->in_dim);
        return BASIN_EINVAL;
    }
    set_shape(sd, ds->in_rank, ds->in_shape);
    basin_dataset_infer_task(ds);
    return BASIN_OK;
}

/* ---- teacher_gaussian ---- */

static int parse_teacher_matrix(struct spec_ctx *c, const json_t *t, struct spec_dataset *sd)
{
    struct spec_teacher_gaussian *tg = &sd->tg;
    if (json_array_size(t) != tg->k) {
        spec_err(c, "must have k = %zu rows of d = %zu numbers", tg->k, tg->d);
        return BASIN_EINVAL;
    }
    tg->matrix = basin_alloc_array(tg->k * tg->d, sizeof(double));
    if (tg->matrix == NULL) {
        c->oom = 1;
        return BASIN_ENOMEM;
    }
    int rc = BASIN_OK;
    for (size_t i = 0; i < tg->k; i++) {
        size_t mark = spec_ptr_push_index(c, i);
        rc |= read_row(c, json_array_get(t, i), tg->d, " (d)", tg->matrix + i * tg->d);
        spec_ptr_pop(c, mark);
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

/* k · d weights (every teacher kind holds them) and k² · d setup work, before either is spent;
 * the errors point at k, the size that enters squared. */
static int check_teacher_size(struct spec_ctx *c, size_t k, size_t d)
{
    const struct limits *lim = c->lim;
    size_t weights, work;
    if (basin_mul_size(k, d, &weights) != BASIN_OK || weights > lim->max_dataset_values) {
        spec_err_at(c, "k", "k × d = %zu × %zu teacher weights exceed the limit of %zu values", k,
                    d, lim->max_dataset_values);
        return BASIN_EINVAL;
    }
    if (basin_mul_size(weights, k, &work) != BASIN_OK || work > lim->max_teacher_work) {
        spec_err_at(c, "k",
                    "k² × d = %zu² × %zu exceeds the limit of %zu for setting up a teacher "
                    "(its population risk pairs every two of the k teacher units)",
                    k, d, lim->max_teacher_work);
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

static int parse_teacher_gaussian(struct spec_ctx *c, const json_t *v, struct spec_dataset *sd)
{
    const struct limits *lim = c->lim;
    struct spec_teacher_gaussian *tg = &sd->tg;
    int rc = BASIN_OK;
    rc |= spec_get_size(c, v, "k", 1, 1, lim->max_width, 0, &tg->k);
    rc |= spec_get_size(c, v, "d", 1, 1, lim->max_input_dim, 0, &tg->d);
    rc |= spec_get_u64(c, v, "seed", 0, &tg->seed);
    if (rc == BASIN_OK)
        rc = check_teacher_size(c, tg->k, tg->d);
    json_t *t = json_object_get(v, "teacher");
    tg->teacher = SPEC_TEACHER_IDENTITY;
    if (t != NULL && json_is_array(t)) {
        tg->teacher = SPEC_TEACHER_MATRIX;
        if (rc == BASIN_OK) {
            size_t mark = spec_ptr_push(c, "teacher");
            rc = parse_teacher_matrix(c, t, sd);
            spec_ptr_pop(c, mark);
        }
    } else if (t != NULL) {
        size_t k;
        if (!json_is_string(t) ||
            spec_get_enum(c, v, "teacher", 0, teacher_names, 2, 0, &k) != BASIN_OK) {
            if (!json_is_string(t))
                spec_err_at(c, "teacher",
                            "must be \"identity\", \"random_orthonormal\" or a k × d matrix");
            rc = BASIN_EINVAL;
        } else {
            tg->teacher = k == 0 ? SPEC_TEACHER_IDENTITY : SPEC_TEACHER_RANDOM_ORTHONORMAL;
        }
    }
    if (rc == BASIN_OK && tg->teacher != SPEC_TEACHER_MATRIX && tg->k > tg->d) {
        spec_err_at(c, "teacher", "%s needs k ≤ d (k = %zu, d = %zu)",
                    teacher_names[tg->teacher == SPEC_TEACHER_IDENTITY ? 0 : 1], tg->k, tg->d);
        rc = BASIN_EINVAL;
    }
    if (rc == BASIN_OK) {
        size_t shape[3] = {tg->d, 0, 0};
        set_shape(sd, 1, shape);
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

/* ---- entry points ---- */

int spec_dataset_parse_at(struct spec_ctx *c, const json_t *v, struct spec_dataset **out)
{
    struct spec_dataset *sd = NULL;
    size_t k = 0;
    int rc = BASIN_OK;
    size_t errors_before = spec_err_count(c);

    *out = NULL;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        rc = BASIN_EINVAL;
        goto done;
    }
    sd = basin_calloc(1, sizeof *sd);
    if (sd == NULL) {
        c->oom = 1;
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (spec_get_enum(c, v, "kind", 1, ds_kind_names, N_DS_KINDS, 0, &k) != BASIN_OK) {
        rc = BASIN_EINVAL;
        goto done;
    }
    sd->kind = ds_kinds[k];
    char what[48];
    snprintf(what, sizeof what, "a %s dataset", ds_kind_names[k]);
    spec_check_keys(c, v, ds_keys[k], what);
    spec_get_name(c, v, &sd->name);
    switch (sd->kind) {
    case SPEC_DATASET_INLINE:
        rc = parse_inline(c, v, sd);
        break;
    case SPEC_DATASET_GENERATOR:
        rc = parse_generator(c, v, sd);
        break;
    case SPEC_DATASET_CSV:
        rc = parse_csv(c, v, sd);
        break;
    case SPEC_DATASET_TEACHER_GAUSSIAN:
        rc = parse_teacher_gaussian(c, v, sd);
        break;
    }
    if (c->oom)
        rc = BASIN_ENOMEM;
    else if (spec_err_count(c) != errors_before)
        rc = BASIN_EINVAL;
done:
    if (rc == BASIN_OK)
        *out = sd;
    else
        spec_dataset_free(sd);
    return rc;
}

int spec_dataset_parse(const json_t *body, const struct limits *lim, struct spec_dataset **out,
                       struct spec_errors *errs)
{
    struct limits dl;
    struct spec_ctx c;
    if (lim == NULL) {
        limits_defaults(&dl);
        lim = &dl;
    }
    spec_ctx_init(&c, lim, errs);
    int rc = spec_dataset_parse_at(&c, body, out);
    return c.oom ? BASIN_ENOMEM : rc;
}

/* ---- canonical JSON ---- */

static json_t *rows_to_json(const double *v, size_t rows, size_t cols, int flat)
{
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < rows; i++) {
        if (flat) {
            spec_append(arr, json_real(v[i]), &ok);
            continue;
        }
        json_t *row = json_array();
        for (size_t j = 0; row != NULL && ok && j < cols; j++)
            spec_append(row, json_real(v[i * cols + j]), &ok);
        spec_append(arr, row, &ok);
    }
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *generator_to_json(const struct spec_dataset *sd)
{
    const basin_generator_spec *g = &sd->gen;
    json_t *o = json_object();
    int ok = o != NULL;
    const char *name = gen_names[0];
    for (size_t i = 0; i < N_GENS; i++)
        if (gen_kinds[i] == g->kind)
            name = gen_names[i];
    spec_set(o, "name", json_string(name), &ok);
    spec_set(o, "n", json_integer((json_int_t)g->n), &ok);
    spec_set(o, "noise", json_real(g->noise), &ok);
    spec_set(o, "seed", json_integer((json_int_t)g->seed), &ok);
    if (g->kind == BASIN_GEN_SPIRALS || g->kind == BASIN_GEN_GAUSSIAN_BLOBS)
        spec_set(o, "classes", json_integer((json_int_t)g->classes), &ok);
    if (g->kind == BASIN_GEN_GAUSSIAN_BLOBS || g->kind == BASIN_GEN_TEACHER)
        spec_set(o, "dim", json_integer((json_int_t)g->dim), &ok);
    if (g->kind == BASIN_GEN_TEACHER && sd->teacher_arch != NULL)
        spec_set(o, "teacher", spec_arch_to_json(sd->teacher_arch), &ok);
    if (g->kind == BASIN_GEN_BARS_STRIPES)
        spec_set(o, "image_size", json_integer((json_int_t)g->image_size), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *teacher_to_json(const struct spec_teacher_gaussian *tg)
{
    switch (tg->teacher) {
    case SPEC_TEACHER_IDENTITY:
        return json_string("identity");
    case SPEC_TEACHER_RANDOM_ORTHONORMAL:
        return json_string("random_orthonormal");
    case SPEC_TEACHER_MATRIX:
        break;
    }
    return rows_to_json(tg->matrix, tg->k, tg->d, 0);
}

json_t *spec_dataset_to_json(const struct spec_dataset *sd)
{
    json_t *o = json_object();
    int ok = o != NULL;
    const char *kind = ds_kind_names[0];
    for (size_t i = 0; i < N_DS_KINDS; i++)
        if (ds_kinds[i] == sd->kind)
            kind = ds_kind_names[i];
    spec_set(o, "kind", json_string(kind), &ok);
    if (sd->name != NULL)
        spec_set(o, "name", json_string(sd->name), &ok);
    switch (sd->kind) {
    case SPEC_DATASET_INLINE: {
        const basin_dataset *ds = sd->data;
        spec_set(o, "input_shape", spec_json_shape(sd->in_rank, sd->in_shape), &ok);
        spec_set(o, "x", rows_to_json(ds->x, ds->n, ds->in_dim, 0), &ok);
        spec_set(o, "y", rows_to_json(ds->y, ds->n, ds->y_dim, ds->y_dim == 1), &ok);
        break;
    }
    case SPEC_DATASET_GENERATOR:
        spec_set(o, "generator", generator_to_json(sd), &ok);
        break;
    case SPEC_DATASET_CSV: {
        char delim[2] = {sd->csv_opts.delimiter ? sd->csv_opts.delimiter : ',', '\0'};
        spec_set(o, "csv", json_stringn(sd->csv, sd->csv_len), &ok);
        spec_set(o, "y_cols", json_integer((json_int_t)sd->csv_opts.y_cols), &ok);
        if (sd->csv_opts.header >= 0)
            spec_set(o, "header", json_boolean(sd->csv_opts.header), &ok);
        spec_set(o, "delimiter", json_string(delim), &ok);
        spec_set(o, "input_shape", spec_json_shape(sd->in_rank, sd->in_shape), &ok);
        break;
    }
    case SPEC_DATASET_TEACHER_GAUSSIAN:
        spec_set(o, "k", json_integer((json_int_t)sd->tg.k), &ok);
        spec_set(o, "d", json_integer((json_int_t)sd->tg.d), &ok);
        spec_set(o, "teacher", teacher_to_json(&sd->tg), &ok);
        spec_set(o, "seed", json_integer((json_int_t)sd->tg.seed), &ok);
        break;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *spec_dataset_summary(const struct spec_dataset *sd)
{
    json_t *o = json_object();
    int ok = o != NULL;
    const char *kind = ds_kind_names[0];
    for (size_t i = 0; i < N_DS_KINDS; i++)
        if (ds_kinds[i] == sd->kind)
            kind = ds_kind_names[i];
    spec_set(o, "kind", json_string(kind), &ok);
    if (sd->name != NULL)
        spec_set(o, "name", json_string(sd->name), &ok);
    spec_set(o, "input_shape", spec_json_shape(sd->in_rank, sd->in_shape), &ok);
    if (sd->data != NULL) {
        const basin_dataset *ds = sd->data;
        spec_set(o, "n", json_integer((json_int_t)ds->n), &ok);
        spec_set(o, "output_dim", json_integer((json_int_t)ds->y_dim), &ok);
        spec_set(o, "task", json_string(spec_task_name(ds->task)), &ok);
        if (ds->task != BASIN_TASK_REGRESSION)
            spec_set(o, "n_classes", json_integer((json_int_t)ds->n_classes), &ok);
    } else {
        spec_set(o, "k", json_integer((json_int_t)sd->tg.k), &ok);
        spec_set(o, "d", json_integer((json_int_t)sd->tg.d), &ok);
        spec_set(o, "task", json_string("regression"), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
