/* Tests of the seeded generators (data_gen.c): determinism, shapes and tasks, class balance,
 * the geometric definition of each generator checked on noise-free samples, the teacher's
 * targets recomputed by hand from the documented stream order, and rejection of bad specs. */
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
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"

#define PI 3.14159265358979323846

/* cmocka's assert_float_equal compares in single precision; this one in double. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double near_a_ = (a), near_b_ = (b);                                                       \
        if (!(fabs(near_a_ - near_b_) <= (tol))) {                                                 \
            print_error("%.17g != %.17g (tolerance %g)\n", near_a_, near_b_, (double)(tol));       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static basin_generator_spec spec_of(basin_generator_kind kind, size_t n, double noise,
                                    uint64_t seed)
{
    basin_generator_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.n = n;
    s.noise = noise;
    s.seed = seed;
    return s;
}

static basin_dataset *generate(const basin_generator_spec *s)
{
    basin_dataset *ds = NULL;
    int rc = basin_data_generate(s, &ds);
    assert_int_equal(rc, BASIN_OK);
    assert_non_null(ds);
    return ds;
}

/* A 3-4-1 ReLU teacher (input [3]). */
static const basin_layer_spec teacher_layers[3] = {
    {.kind = BASIN_LAYER_DENSE, .units = 4, .bias = 1},
    {.kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_RELU},
    {.kind = BASIN_LAYER_DENSE, .units = 1, .bias = 1},
};
static const basin_arch teacher_arch = {1, {3, 0, 0}, 3, teacher_layers};

static void test_determinism(void **state)
{
    (void)state;
    for (int kind = BASIN_GEN_XOR; kind <= BASIN_GEN_BARS_STRIPES; kind++) {
        basin_generator_spec s = spec_of((basin_generator_kind)kind, 37, 0.1, 12345);
        s.teacher = &teacher_arch;
        basin_dataset *a = generate(&s), *b = generate(&s);
        assert_int_equal(a->n, 37);
        assert_int_equal(a->in_dim, b->in_dim);
        assert_memory_equal(a->x, b->x, a->n * a->in_dim * sizeof(double));
        assert_memory_equal(a->y, b->y, a->n * a->y_dim * sizeof(double));
        s.seed = 12346;
        basin_dataset *c = generate(&s);
        assert_true(memcmp(a->x, c->x, a->n * a->in_dim * sizeof(double)) != 0);
        for (size_t i = 0; i < a->n * a->in_dim; i++)
            assert_true(isfinite(a->x[i]));
        basin_dataset_free(a);
        basin_dataset_free(b);
        basin_dataset_free(c);
    }
}

static void test_shapes_and_tasks(void **state)
{
    (void)state;
    struct {
        basin_generator_kind kind;
        size_t classes, dim, image_size;
        size_t in_rank, in_dim, y_dim;
        basin_task task;
        size_t n_classes;
    } cases[] = {
        {BASIN_GEN_XOR, 0, 0, 0, 1, 2, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_TWO_MOONS, 0, 0, 0, 1, 2, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_CIRCLES, 0, 0, 0, 1, 2, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_SPIRALS, 0, 0, 0, 1, 2, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_SPIRALS, 5, 0, 0, 1, 2, 1, BASIN_TASK_MULTICLASS, 5},
        {BASIN_GEN_GAUSSIAN_BLOBS, 0, 0, 0, 1, 2, 1, BASIN_TASK_MULTICLASS, 3},
        {BASIN_GEN_GAUSSIAN_BLOBS, 2, 7, 0, 1, 7, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_SINE, 0, 0, 0, 1, 1, 1, BASIN_TASK_REGRESSION, 0},
        {BASIN_GEN_TEACHER, 0, 0, 0, 1, 3, 1, BASIN_TASK_REGRESSION, 0},
        {BASIN_GEN_TEACHER, 0, 3, 0, 1, 3, 1, BASIN_TASK_REGRESSION, 0},
        {BASIN_GEN_BARS_STRIPES, 0, 0, 0, 3, 64, 1, BASIN_TASK_BINARY, 2},
        {BASIN_GEN_BARS_STRIPES, 0, 0, 5, 3, 25, 1, BASIN_TASK_BINARY, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        basin_generator_spec s = spec_of(cases[c].kind, 20, 0.05, 3);
        s.classes = cases[c].classes;
        s.dim = cases[c].dim;
        s.image_size = cases[c].image_size;
        s.teacher = &teacher_arch;
        basin_dataset *ds = generate(&s);
        assert_int_equal(ds->in_rank, cases[c].in_rank);
        assert_int_equal(ds->in_dim, cases[c].in_dim);
        assert_int_equal(ds->y_dim, cases[c].y_dim);
        assert_int_equal(ds->task, cases[c].task);
        assert_int_equal(ds->n_classes, cases[c].n_classes);
        if (cases[c].in_rank == 3) {
            assert_int_equal(ds->in_shape[0], 1);
            assert_int_equal(ds->in_shape[1] * ds->in_shape[2], cases[c].in_dim);
        }
        basin_dataset_free(ds);
    }
}

/* Class counts differ by at most one, every label is an integer class. */
static void check_balance(const basin_dataset *ds, size_t classes)
{
    size_t counts[16] = {0};
    assert_true(classes <= 16);
    for (size_t i = 0; i < ds->n; i++) {
        double y = ds->y[i];
        assert_true(y >= 0 && y < (double)classes && y == floor(y));
        counts[(size_t)y]++;
    }
    size_t lo = ds->n, hi = 0;
    for (size_t c = 0; c < classes; c++) {
        lo = counts[c] < lo ? counts[c] : lo;
        hi = counts[c] > hi ? counts[c] : hi;
    }
    assert_true(hi - lo <= 1);
    assert_true(lo >= ds->n / classes);
}

static void test_label_balance(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_XOR, 103, 0.3, 9);
    basin_dataset *ds = generate(&s);
    check_balance(ds, 2);
    basin_dataset_free(ds);
    s.kind = BASIN_GEN_SPIRALS;
    s.classes = 3;
    ds = generate(&s);
    check_balance(ds, 3);
    basin_dataset_free(ds);
    s.kind = BASIN_GEN_GAUSSIAN_BLOBS;
    s.classes = 4;
    ds = generate(&s);
    check_balance(ds, 4);
    basin_dataset_free(ds);
    s = spec_of(BASIN_GEN_BARS_STRIPES, 31, 0.1, 2);
    ds = generate(&s);
    check_balance(ds, 2);
    basin_dataset_free(ds);
}

static void test_xor_labels(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_XOR, 40, 0.0, 77);
    basin_dataset *ds = generate(&s);
    int corners[4] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        double a = ds->x[2 * i], b = ds->x[2 * i + 1];
        assert_true(fabs(a) == 1.0 && fabs(b) == 1.0);
        assert_true(ds->y[i] == (double)((a > 0) != (b > 0)));
        corners[(a > 0) + 2 * (b > 0)]++;
    }
    for (int q = 0; q < 4; q++)
        assert_int_equal(corners[q], 10);
    basin_dataset_free(ds);
    /* With small noise the points stay in their quadrant and keep the xor label. */
    s.noise = 0.05;
    ds = generate(&s);
    for (size_t i = 0; i < ds->n; i++)
        assert_true(ds->y[i] == (double)((ds->x[2 * i] > 0) != (ds->x[2 * i + 1] > 0)));
    basin_dataset_free(ds);
}

static void test_circles_and_moons_geometry(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_CIRCLES, 50, 0.0, 5);
    basin_dataset *ds = generate(&s);
    for (size_t i = 0; i < ds->n; i++) {
        double r = hypot(ds->x[2 * i], ds->x[2 * i + 1]);
        assert_near(r, ds->y[i] == 0 ? 1.0 : 0.5, 1e-14);
    }
    basin_dataset_free(ds);
    s.kind = BASIN_GEN_TWO_MOONS;
    ds = generate(&s);
    for (size_t i = 0; i < ds->n; i++) {
        double a = ds->x[2 * i], b = ds->x[2 * i + 1];
        if (ds->y[i] == 0) { /* upper half of the unit circle */
            assert_near(hypot(a, b), 1.0, 1e-14);
            assert_true(b >= 0);
        } else { /* lower half of the unit circle centred at (1, 0.5) */
            assert_near(hypot(a - 1.0, b - 0.5), 1.0, 1e-14);
            assert_true(b <= 0.5);
        }
    }
    basin_dataset_free(ds);
}

static void test_spirals_geometry(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_SPIRALS, 60, 0.0, 8);
    s.classes = 3;
    basin_dataset *ds = generate(&s);
    for (size_t i = 0; i < ds->n; i++) {
        double a = ds->x[2 * i], b = ds->x[2 * i + 1], t = hypot(a, b);
        assert_true(t < 1.0);
        double phi = 2.0 * PI * ds->y[i] / 3.0 + 3.0 * PI * t;
        assert_near(a, t * cos(phi), 1e-12);
        assert_near(b, t * sin(phi), 1e-12);
    }
    basin_dataset_free(ds);
}

static void test_blobs_geometry(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_GAUSSIAN_BLOBS, 30, 0.0, 4);
    s.dim = 4;
    basin_dataset *ds = generate(&s);
    assert_int_equal(ds->in_dim, 4);
    /* Noise-free: every sample sits on its class centre, centres differ, within [−2, 2). */
    for (size_t i = 3; i < ds->n; i++)
        assert_memory_equal(ds->x + i * 4, ds->x + (i % 3) * 4, 4 * sizeof(double));
    for (size_t a = 0; a < 3; a++) {
        assert_true(ds->y[a] == (double)a);
        for (size_t j = 0; j < 4; j++)
            assert_true(ds->x[a * 4 + j] >= -2.0 && ds->x[a * 4 + j] < 2.0);
        for (size_t b = a + 1; b < 3; b++)
            assert_true(memcmp(ds->x + a * 4, ds->x + b * 4, 4 * sizeof(double)) != 0);
    }
    basin_dataset_free(ds);
    /* With noise σ the spread around the centre has about that standard deviation. */
    s = spec_of(BASIN_GEN_GAUSSIAN_BLOBS, 3000, 0.3, 4);
    basin_dataset *noisy = generate(&s);
    s.noise = 0.0;
    basin_dataset *clean = generate(&s);
    double ss = 0;
    for (size_t k = 0; k < 3000 * 2; k++)
        ss += (noisy->x[k] - clean->x[k]) * (noisy->x[k] - clean->x[k]);
    assert_near(sqrt(ss / 6000.0), 0.3, 0.02);
    basin_dataset_free(noisy);
    basin_dataset_free(clean);
}

static void test_sine(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_SINE, 100, 0.0, 6);
    basin_dataset *ds = generate(&s);
    for (size_t i = 0; i < ds->n; i++) {
        assert_true(ds->x[i] >= -1.0 && ds->x[i] < 1.0);
        assert_near(ds->y[i], sin(PI * ds->x[i]), 1e-15);
    }
    s.noise = 0.5;
    basin_dataset *noisy = generate(&s);
    /* Noise on the target only: same inputs. */
    assert_memory_equal(noisy->x, ds->x, 100 * sizeof(double));
    int differs = 0;
    for (size_t i = 0; i < ds->n; i++)
        differs |= noisy->y[i] != ds->y[i];
    assert_true(differs);
    basin_dataset_free(ds);
    basin_dataset_free(noisy);
}

static void test_bars_stripes(void **state)
{
    (void)state;
    basin_generator_spec s = spec_of(BASIN_GEN_BARS_STRIPES, 40, 0.0, 10);
    s.image_size = 6;
    basin_dataset *ds = generate(&s);
    assert_int_equal(ds->in_shape[0], 1);
    assert_int_equal(ds->in_shape[1], 6);
    assert_int_equal(ds->in_shape[2], 6);
    int positions[2][6] = {{0}};
    for (size_t i = 0; i < ds->n; i++) {
        const double *img = ds->x + i * 36;
        int row_full = -1, col_full = -1;
        size_t ones = 0;
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 6; c++) {
                assert_true(img[r * 6 + c] == 0.0 || img[r * 6 + c] == 1.0);
                ones += img[r * 6 + c] == 1.0;
            }
        assert_int_equal(ones, 6);
        for (int r = 0; r < 6; r++) {
            int full = 1;
            for (int c = 0; c < 6; c++)
                full &= img[r * 6 + c] == 1.0;
            if (full)
                row_full = r;
        }
        for (int c = 0; c < 6; c++) {
            int full = 1;
            for (int r = 0; r < 6; r++)
                full &= img[r * 6 + c] == 1.0;
            if (full)
                col_full = c;
        }
        if (ds->y[i] == 0) {
            assert_true(row_full >= 0 && col_full < 0);
            positions[0][row_full]++;
        } else {
            assert_true(ds->y[i] == 1.0);
            assert_true(col_full >= 0 && row_full < 0);
            positions[1][col_full]++;
        }
    }
    /* The bar position is random: 20 draws from 6 places do not all land on one. */
    for (int c = 0; c < 2; c++) {
        int used = 0;
        for (int k = 0; k < 6; k++)
            used += positions[c][k] > 0;
        assert_true(used >= 2);
    }
    basin_dataset_free(ds);
}

/* The teacher's targets recomputed by hand: θ He-normal from stream 0, then the inputs, then
 * the noise, as data_gen.c documents; the 3-4-1 ReLU net evaluated explicitly. */
static void test_teacher(void **state)
{
    (void)state;
    const size_t n = 25;
    basin_generator_spec s = spec_of(BASIN_GEN_TEACHER, n, 0.0, 2024);
    s.teacher = &teacher_arch;
    basin_dataset *clean = generate(&s);
    s.noise = 0.25;
    basin_dataset *noisy = generate(&s);

    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&teacher_arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_param_count(net), 21);
    double theta[21];
    basin_init init;
    memset(&init, 0, sizeof init);
    init.kind = BASIN_INIT_HE_NORMAL;
    basin_rng rng;
    basin_rng_init(&rng, 2024, 0);
    assert_int_equal(basin_net_init_params(net, &init, &rng, theta), BASIN_OK);
    basin_net_free(net);
    for (size_t i = 0; i < n; i++) {
        double x[3];
        for (int j = 0; j < 3; j++) {
            x[j] = basin_rng_normal(&rng);
            assert_true(clean->x[i * 3 + j] == x[j]);
        }
        /* θ = W1 (4×3), b1 (4), W2 (1×4), b2 (1) in state_dict order. */
        double out = theta[20];
        for (int u = 0; u < 4; u++) {
            double pre = theta[12 + u];
            for (int j = 0; j < 3; j++)
                pre += theta[u * 3 + j] * x[j];
            out += theta[16 + u] * (pre > 0 ? pre : 0.0);
        }
        assert_near(clean->y[i], out, 1e-12);
    }
    assert_memory_equal(noisy->x, clean->x, n * 3 * sizeof(double));
    for (size_t i = 0; i < n; i++)
        assert_near(noisy->y[i] - clean->y[i], 0.25 * basin_rng_normal(&rng), 1e-12);
    basin_dataset_free(clean);
    basin_dataset_free(noisy);
}

static void test_bad_specs(void **state)
{
    (void)state;
    struct {
        basin_generator_kind kind;
        size_t n;
        double noise;
        size_t classes, dim, image_size;
        int rc;
    } cases[] = {
        {BASIN_GEN_XOR, 0, 0.1, 0, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_XOR, 10, -0.1, 0, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_XOR, 10, NAN, 0, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_XOR, 10, INFINITY, 0, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_SPIRALS, 10, 0.1, 1, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_GAUSSIAN_BLOBS, 10, 0.1, 1, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_GAUSSIAN_BLOBS, 10, 0.1, 100000, 0, 0, BASIN_ERANGE},
        {BASIN_GEN_GAUSSIAN_BLOBS, 10, 0.1, 3, SIZE_MAX / 2, 0, BASIN_ERANGE},
        {BASIN_GEN_BARS_STRIPES, 10, 0.1, 0, 0, 1, BASIN_EINVAL},
        {BASIN_GEN_BARS_STRIPES, 10, 0.1, 0, 0, SIZE_MAX / 2, BASIN_ERANGE},
        {BASIN_GEN_XOR, SIZE_MAX / 2, 0.1, 0, 0, 0, BASIN_ERANGE},
        {(basin_generator_kind)99, 10, 0.1, 0, 0, 0, BASIN_EINVAL},
        {BASIN_GEN_TEACHER, 10, 0.1, 0, 0, 0, BASIN_EINVAL}, /* no teacher */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        basin_generator_spec s = spec_of(cases[c].kind, cases[c].n, cases[c].noise, 1);
        s.classes = cases[c].classes;
        s.dim = cases[c].dim;
        s.image_size = cases[c].image_size;
        basin_dataset *ds = (basin_dataset *)(uintptr_t)1;
        assert_int_equal(basin_data_generate(&s, &ds), cases[c].rc);
        assert_null(ds);
    }
    /* Teacher input dimension must match dim when dim is given. */
    basin_generator_spec s = spec_of(BASIN_GEN_TEACHER, 10, 0.1, 1);
    s.teacher = &teacher_arch;
    s.dim = 2;
    basin_dataset *ds = NULL;
    assert_int_equal(basin_data_generate(&s, &ds), BASIN_EINVAL);
    /* An invalid teacher architecture is refused by the net builder. */
    basin_arch bad = teacher_arch;
    bad.in_shape[0] = 0;
    s.dim = 0;
    s.teacher = &bad;
    assert_int_not_equal(basin_data_generate(&s, &ds), BASIN_OK);
    assert_null(ds);
    assert_int_equal(basin_data_generate(NULL, &ds), BASIN_EINVAL);
    assert_int_equal(basin_data_generate(&s, NULL), BASIN_EINVAL);
}

static void test_names(void **state)
{
    (void)state;
    const char *names[] = {"xor",  "two_moons", "circles",     "spirals", "gaussian_blobs",
                           "sine", "teacher",   "bars_stripes"};
    for (int k = 0; k < 8; k++) {
        basin_generator_kind kind;
        assert_string_equal(basin_generator_name((basin_generator_kind)k), names[k]);
        assert_int_equal(basin_generator_from_name(names[k], &kind), BASIN_OK);
        assert_int_equal(kind, k);
    }
    basin_generator_kind kind = BASIN_GEN_SINE;
    assert_int_equal(basin_generator_from_name("moons", &kind), BASIN_EINVAL);
    assert_int_equal(basin_generator_from_name("XOR", &kind), BASIN_EINVAL);
    assert_int_equal(kind, BASIN_GEN_SINE);
    assert_string_equal(basin_generator_name((basin_generator_kind)42), "unknown");
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
    basin_generator_kind kinds[2] = {BASIN_GEN_GAUSSIAN_BLOBS, BASIN_GEN_TEACHER};
    for (int t = 0; t < 2; t++) {
        basin_generator_spec s = spec_of(kinds[t], 12, 0.1, 1);
        s.teacher = &teacher_arch;
        int ok = 0, nomem = 0;
        for (long k = 0; k < 200 && !ok; k++) {
            basin_dataset *ds = NULL;
            basin_set_allocator(&a);
            alloc_countdown = k;
            int rc = basin_data_generate(&s, &ds);
            alloc_countdown = -1;
            basin_set_allocator(NULL);
            if (rc == BASIN_OK) {
                ok = 1;
                assert_int_equal(ds->n, 12);
            } else {
                assert_int_equal(rc, BASIN_ENOMEM);
                assert_null(ds);
                nomem++;
            }
            basin_dataset_free(ds);
        }
        assert_true(ok);
        assert_true(nomem >= 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_shapes_and_tasks),
        cmocka_unit_test(test_label_balance),
        cmocka_unit_test(test_xor_labels),
        cmocka_unit_test(test_circles_and_moons_geometry),
        cmocka_unit_test(test_spirals_geometry),
        cmocka_unit_test(test_blobs_geometry),
        cmocka_unit_test(test_sine),
        cmocka_unit_test(test_bars_stripes),
        cmocka_unit_test(test_teacher),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
