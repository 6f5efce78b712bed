/* Seeded synthetic datasets (data.h): the toy problems on which spurious minima are studied
 * (XOR, moons, circles, spirals, blobs, a 1-D sine, a teacher network, bars and stripes).
 *
 * DESIGN
 * Every generator draws from basin_rng stream 0 of spec->seed, in the order written below, so
 * a (kind, n, noise, seed, ...) tuple names one dataset bit for bit on every platform with IEEE
 * doubles and a correctly rounded libm. Normal deviates are drawn even when noise = 0, so the
 * noise level only scales the perturbation and never shifts the rest of the stream. Class
 * labels are assigned round-robin (sample i has class i mod C), so the classes are balanced to
 * within one sample and stored in that order (no shuffle). g, g1, g2, ... are successive
 * basin_rng_normal draws, u a basin_rng_uniform draw (uniform on [0, 1)), σ = spec->noise.
 *
 *   xor            q = i mod 4, s1 = +1 if q&1 else −1, s2 = +1 if q&2 else −1;
 *                  x = (s1 + σ g1, s2 + σ g2); y = [s1 > 0] xor [s2 > 0]. Binary.
 *   two_moons      c = i mod 2, t = π u; c = 0: (cos t, sin t), c = 1: (1 − cos t, ½ − sin t)
 *                  (scikit-learn's make_moons with random t); x = that + σ (g1, g2); y = c.
 *   circles        c = i mod 2, φ = 2π u, r = 1 (c = 0, outer) or ½ (c = 1, inner);
 *                  x = r (cos φ, sin φ) + σ (g1, g2); y = c. Binary.
 *   spirals        C = classes (default 2), c = i mod C, t = u, φ = 2π c / C + 3π t (three half
 *                  turns), x = t (cos φ, sin φ) + σ (g1, g2); y = c. Binary when C = 2.
 *   gaussian_blobs C = classes (default 3), D = dim (default 2). First the centres: C·D draws,
 *                  centre[c][j] = 4u − 2 (uniform in [−2, 2)), class-major. Then per sample
 *                  c = i mod C, x_j = centre[c][j] + σ g_j (j = 0..D−1); y = c.
 *   sine           x = 2u − 1, y = sin(π x) + σ g (noise on the target only). Regression.
 *   teacher        net = basin_net_create(spec->teacher); θ = basin_net_init_params(He normal,
 *                  biases 0) from the stream; then all inputs x (n·in_dim draws of N(0, 1),
 *                  row-major); y = f_θ(x) + σ ε with ε the next n·out_dim normal draws.
 *                  The dataset takes the teacher's input shape; dim must be 0 or its in_dim.
 *   bars_stripes   s = image_size (default 8, ≥ 2), c = i mod 2, k = basin_rng_below(s); the
 *                  1×s×s image is 1 on row k (c = 0, horizontal bar) or on column k (c = 1,
 *                  vertical bar) and 0 elsewhere, plus σ g on every pixel (s² draws, row-major).
 *                  y = c. Binary, in_rank 3.
 * Fields a generator does not use (classes, dim, image_size, teacher) are ignored. */
#include "basin/data.h"

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"

/* M_PI is POSIX/XSI, not C11. */
#define GEN_PI 3.14159265358979323846

/* Classes need output units and exact integer labels; the same bound as a layer's width. */
#define GEN_MAX_CLASSES 65536

static const char *const generator_names[] = {
    "xor", "two_moons", "circles", "spirals", "gaussian_blobs", "sine", "teacher", "bars_stripes"};

#define GEN_COUNT (sizeof generator_names / sizeof generator_names[0])

const char *basin_generator_name(basin_generator_kind kind)
{
    if ((unsigned)kind < GEN_COUNT)
        return generator_names[kind];
    return "unknown";
}

int basin_generator_from_name(const char *name, basin_generator_kind *out)
{
    if (!name || !out)
        return BASIN_EINVAL;
    for (size_t i = 0; i < GEN_COUNT; i++) {
        if (strcmp(name, generator_names[i]) == 0) {
            *out = (basin_generator_kind)i;
            return BASIN_OK;
        }
    }
    return BASIN_EINVAL;
}

static void set_classes(basin_dataset *ds, size_t classes)
{
    ds->task = classes == 2 ? BASIN_TASK_BINARY : BASIN_TASK_MULTICLASS;
    ds->n_classes = classes;
}

static int make_2d(size_t n, basin_dataset **out)
{
    size_t shape[1] = {2};
    return basin_dataset_create(n, 1, shape, 1, out);
}

static void gen_xor(basin_dataset *ds, double noise, basin_rng *rng)
{
    for (size_t i = 0; i < ds->n; i++) {
        size_t q = i % 4;
        double s1 = (q & 1) ? 1.0 : -1.0, s2 = (q & 2) ? 1.0 : -1.0;
        double g1 = basin_rng_normal(rng), g2 = basin_rng_normal(rng);
        ds->x[2 * i] = s1 + noise * g1;
        ds->x[2 * i + 1] = s2 + noise * g2;
        ds->y[i] = (double)((s1 > 0) != (s2 > 0));
    }
    set_classes(ds, 2);
}

static void gen_two_moons(basin_dataset *ds, double noise, basin_rng *rng)
{
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = i % 2;
        double t = GEN_PI * basin_rng_uniform(rng);
        double g1 = basin_rng_normal(rng), g2 = basin_rng_normal(rng);
        double a = c == 0 ? cos(t) : 1.0 - cos(t);
        double b = c == 0 ? sin(t) : 0.5 - sin(t);
        ds->x[2 * i] = a + noise * g1;
        ds->x[2 * i + 1] = b + noise * g2;
        ds->y[i] = (double)c;
    }
    set_classes(ds, 2);
}

static void gen_circles(basin_dataset *ds, double noise, basin_rng *rng)
{
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = i % 2;
        double phi = 2.0 * GEN_PI * basin_rng_uniform(rng);
        double g1 = basin_rng_normal(rng), g2 = basin_rng_normal(rng);
        double r = c == 0 ? 1.0 : 0.5;
        ds->x[2 * i] = r * cos(phi) + noise * g1;
        ds->x[2 * i + 1] = r * sin(phi) + noise * g2;
        ds->y[i] = (double)c;
    }
    set_classes(ds, 2);
}

static void gen_spirals(basin_dataset *ds, double noise, size_t classes, basin_rng *rng)
{
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = i % classes;
        double t = basin_rng_uniform(rng);
        double g1 = basin_rng_normal(rng), g2 = basin_rng_normal(rng);
        double phi = 2.0 * GEN_PI * (double)c / (double)classes + 3.0 * GEN_PI * t;
        ds->x[2 * i] = t * cos(phi) + noise * g1;
        ds->x[2 * i + 1] = t * sin(phi) + noise * g2;
        ds->y[i] = (double)c;
    }
    set_classes(ds, classes);
}

static int gen_blobs(basin_dataset *ds, double noise, size_t classes, basin_rng *rng)
{
    size_t dim = ds->in_dim;
    double *centres = basin_alloc_array(classes, dim * sizeof(double));
    if (!centres)
        return BASIN_ENOMEM;
    for (size_t k = 0; k < classes * dim; k++)
        centres[k] = 4.0 * basin_rng_uniform(rng) - 2.0;
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = i % classes;
        for (size_t j = 0; j < dim; j++)
            ds->x[i * dim + j] = centres[c * dim + j] + noise * basin_rng_normal(rng);
        ds->y[i] = (double)c;
    }
    set_classes(ds, classes);
    basin_free(centres);
    return BASIN_OK;
}

static void gen_sine(basin_dataset *ds, double noise, basin_rng *rng)
{
    for (size_t i = 0; i < ds->n; i++) {
        double x = 2.0 * basin_rng_uniform(rng) - 1.0;
        double g = basin_rng_normal(rng);
        ds->x[i] = x;
        ds->y[i] = sin(GEN_PI * x) + noise * g;
    }
}

static void gen_bars_stripes(basin_dataset *ds, double noise, size_t s, basin_rng *rng)
{
    size_t pixels = s * s; /* checked by the caller */
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = i % 2;
        size_t k = (size_t)basin_rng_below(rng, s);
        double *img = ds->x + i * pixels;
        for (size_t r = 0; r < s; r++) {
            for (size_t col = 0; col < s; col++) {
                double on = (c == 0 ? r == k : col == k) ? 1.0 : 0.0;
                img[r * s + col] = on + noise * basin_rng_normal(rng);
            }
        }
        ds->y[i] = (double)c;
    }
    set_classes(ds, 2);
}

static int gen_teacher(const basin_generator_spec *spec, basin_rng *rng, basin_dataset **out)
{
    int rc = BASIN_OK;
    basin_net *net = NULL;
    basin_net_ws *ws = NULL;
    double *theta = NULL;
    basin_dataset *ds = NULL;
    if (!spec->teacher) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if ((rc = basin_net_create(spec->teacher, &net, NULL)) != BASIN_OK)
        goto done;
    size_t in_dim = basin_net_in_dim(net), out_dim = basin_net_out_dim(net);
    if (spec->dim != 0 && spec->dim != in_dim) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if ((rc = basin_dataset_create(spec->n, spec->teacher->in_rank, spec->teacher->in_shape,
                                   out_dim, &ds)) != BASIN_OK)
        goto done;
    size_t n_params = basin_net_param_count(net);
    theta = basin_alloc_array(n_params ? n_params : 1, sizeof(double));
    if (!theta) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    basin_init init;
    memset(&init, 0, sizeof init);
    init.kind = BASIN_INIT_HE_NORMAL;
    init.bias = 0.0;
    if ((rc = basin_net_init_params(net, &init, rng, theta)) != BASIN_OK)
        goto done;
    for (size_t k = 0; k < spec->n * in_dim; k++)
        ds->x[k] = basin_rng_normal(rng);
    if ((rc = basin_net_ws_create(net, spec->n < 256 ? spec->n : 256, &ws)) != BASIN_OK ||
        (rc = basin_net_forward(net, ws, theta, ds->x, spec->n, ds->y)) != BASIN_OK)
        goto done;
    for (size_t k = 0; k < spec->n * out_dim; k++)
        ds->y[k] += spec->noise * basin_rng_normal(rng);
    *out = ds;
    ds = NULL;
done:
    basin_dataset_free(ds);
    basin_free(theta);
    basin_net_ws_free(ws);
    basin_net_free(net);
    return rc;
}

/* Fill in defaults and reject what no generator can produce. */
static int check_spec(const basin_generator_spec *spec, size_t *classes, size_t *dim,
                      size_t *image_size)
{
    if (spec->n == 0 || !isfinite(spec->noise) || spec->noise < 0.0 ||
        (unsigned)spec->kind >= GEN_COUNT)
        return BASIN_EINVAL;
    size_t default_classes = spec->kind == BASIN_GEN_GAUSSIAN_BLOBS ? 3 : 2;
    *classes = spec->classes ? spec->classes : default_classes;
    *dim = spec->dim ? spec->dim : 2;
    *image_size = spec->image_size ? spec->image_size : 8;
    switch (spec->kind) {
    case BASIN_GEN_SPIRALS:
    case BASIN_GEN_GAUSSIAN_BLOBS:
        if (*classes < 2)
            return BASIN_EINVAL;
        if (*classes > GEN_MAX_CLASSES)
            return BASIN_ERANGE;
        break;
    case BASIN_GEN_BARS_STRIPES: {
        size_t pixels;
        if (*image_size < 2)
            return BASIN_EINVAL; /* a 1×1 bar is both horizontal and vertical */
        return basin_mul_size(*image_size, *image_size, &pixels);
    }
    default:
        break;
    }
    return BASIN_OK;
}

int basin_data_generate(const basin_generator_spec *spec, basin_dataset **out)
{
    int rc = BASIN_OK;
    basin_dataset *ds = NULL;
    basin_rng rng;
    size_t classes = 0, dim = 0, s = 0;
    if (!out) {
        rc = BASIN_EINVAL;
        goto done;
    }
    *out = NULL;
    if (!spec) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if ((rc = check_spec(spec, &classes, &dim, &s)) != BASIN_OK)
        goto done;
    basin_rng_init(&rng, spec->seed, 0);
    switch (spec->kind) {
    case BASIN_GEN_XOR:
    case BASIN_GEN_TWO_MOONS:
    case BASIN_GEN_CIRCLES:
    case BASIN_GEN_SPIRALS:
        if ((rc = make_2d(spec->n, &ds)) != BASIN_OK)
            goto done;
        if (spec->kind == BASIN_GEN_XOR)
            gen_xor(ds, spec->noise, &rng);
        else if (spec->kind == BASIN_GEN_TWO_MOONS)
            gen_two_moons(ds, spec->noise, &rng);
        else if (spec->kind == BASIN_GEN_CIRCLES)
            gen_circles(ds, spec->noise, &rng);
        else
            gen_spirals(ds, spec->noise, classes, &rng);
        break;
    case BASIN_GEN_GAUSSIAN_BLOBS: {
        size_t shape[1] = {dim};
        if ((rc = basin_dataset_create(spec->n, 1, shape, 1, &ds)) != BASIN_OK ||
            (rc = gen_blobs(ds, spec->noise, classes, &rng)) != BASIN_OK)
            goto done;
        break;
    }
    case BASIN_GEN_SINE: {
        size_t shape[1] = {1};
        if ((rc = basin_dataset_create(spec->n, 1, shape, 1, &ds)) != BASIN_OK)
            goto done;
        gen_sine(ds, spec->noise, &rng);
        break;
    }
    case BASIN_GEN_TEACHER:
        if ((rc = gen_teacher(spec, &rng, &ds)) != BASIN_OK)
            goto done;
        break;
    case BASIN_GEN_BARS_STRIPES: {
        size_t shape[3] = {1, s, s};
        if ((rc = basin_dataset_create(spec->n, 3, shape, 1, &ds)) != BASIN_OK)
            goto done;
        gen_bars_stripes(ds, spec->noise, s, &rng);
        break;
    }
    }
    *out = ds;
    ds = NULL;
done:
    basin_dataset_free(ds);
    return rc;
}
