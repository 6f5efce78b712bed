/* Tests of teacher.c, the closed-form Gaussian teacher–student risk. References are independent
 * of the closed forms under test: Monte-Carlo estimates over Gaussian samples (4-sigma bounds
 * from the sample variance), central finite differences (value → gradient → Hessian), values
 * worked out by hand (κ at special angles, the Hessian at the identity teacher), the empirical
 * risk of the equivalent network [dense(n, no bias), relu, sum] (net.c), the dense Hessian's
 * spectrum against Lanczos on the objective's HVP, and the allocation-failure sweep of
 * failing_alloc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "basin/alloc.h"
#include "basin/hessian.h"
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "failing_alloc.h"

#define PI 3.14159265358979323846

/* cmocka 1.1.5 has no double comparison: |a − b| ≤ tol, reporting both values. */
#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)

static void assert_near_at(double a, double b, double tol, const char *expr, const char *file,
                           int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s = %.17g, expected %.17g within %.3g\n", expr, a, b, tol);
        _fail(file, line);
    }
}

static double relu(double z)
{
    return z > 0 ? z : 0.0;
}

static double dotv(size_t d, const double *x, const double *y)
{
    double s = 0.0;
    for (size_t a = 0; a < d; a++)
        s += x[a] * y[a];
    return s;
}

static void fill_normal(double *x, size_t m, uint64_t seed, double scale)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 3);
    for (size_t i = 0; i < m; i++)
        x[i] = scale * basin_rng_normal(&rng);
}

/* Σ_i relu(w_i·x) for n rows of d. */
static double two_layer(size_t n, size_t d, const double *W, const double *x)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += relu(dotv(d, W + i * d, x));
    return s;
}

static double risk(const basin_teacher *t, size_t n, const double *W)
{
    double f = NAN;
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, NULL), BASIN_OK);
    return f;
}

/* Running mean and variance (Welford) of a Monte-Carlo quantity. */
typedef struct mc_stat {
    size_t n;
    double mean, m2;
} mc_stat;

static void mc_add(mc_stat *s, double y)
{
    s->n++;
    double delta = y - s->mean;
    s->mean += delta / (double)s->n;
    s->m2 += delta * (y - s->mean);
}

/* |exact − MC mean| ≤ 4 standard errors (plus a hair for exact zero-variance cases). */
static void assert_mc(const mc_stat *s, double exact, const char *what)
{
    double se = sqrt(s->m2 / (double)(s->n - 1) / (double)s->n);
    if (!(fabs(exact - s->mean) <= 4.0 * se + 1e-12)) {
        print_error("%s: closed form %.10g, Monte Carlo %.10g ± %.3g\n", what, exact, s->mean, se);
        fail();
    }
}

#define MC_SAMPLES 200000

/* ---- κ ---- */

static void test_kappa_closed_forms(void **state)
{
    (void)state;
    double u[3] = {1.0, -2.0, 2.0}; /* ‖u‖ = 3 */
    double mu[3] = {-2.0, 4.0, -4.0};
    double z[3] = {0, 0, 0};
    double o[3] = {2.0, 1.0, 0.0};                          /* ⟂ u, ‖o‖ = √5 */
    assert_near(basin_teacher_kappa(3, u, u), 4.5, 1e-14);  /* ‖u‖²/2 */
    assert_near(basin_teacher_kappa(3, u, mu), 0.0, 1e-14); /* never both positive */
    assert_near(basin_teacher_kappa(3, u, z), 0.0, 0.0);    /* zero row */
    assert_near(basin_teacher_kappa(3, u, o), 3.0 * sqrt(5.0) / (2.0 * PI), 1e-14); /* θ = π/2 */
    /* θ = π/3: (sin θ + (π − θ) cos θ)/(2π) = (√3/2 + π/3)/(2π) */
    double a[2] = {1.0, 0.0}, b[2] = {0.5, sqrt(3.0) / 2.0};
    assert_near(basin_teacher_kappa(2, a, b), (sqrt(3.0) / 2.0 + PI / 3.0) / (2.0 * PI), 1e-14);
    /* nearly parallel: κ = (u·v)/2 + O(θ³) */
    double c[2] = {1.0, 1e-7};
    assert_near(basin_teacher_kappa(2, a, c), 0.5, 1e-15);
    /* symmetric and positively homogeneous of degree 1 in each argument */
    double u2[3] = {2.5, -5.0, 5.0};
    assert_near(basin_teacher_kappa(3, o, u), basin_teacher_kappa(3, u, o), 1e-15);
    assert_near(basin_teacher_kappa(3, u2, o), 2.5 * basin_teacher_kappa(3, u, o), 1e-14);
}

static void test_kappa_monte_carlo(void **state)
{
    (void)state;
    enum { d = 5 };
    double u[d] = {0.3, -1.0, 0.7, 0.2, 1.1}, v[d] = {0.9, 0.4, -0.5, 1.2, -0.1}, x[d];
    basin_rng rng;
    basin_rng_init(&rng, 2024, 0);
    mc_stat s = {0, 0, 0};
    for (size_t r = 0; r < MC_SAMPLES; r++) {
        for (size_t a = 0; a < d; a++)
            x[a] = basin_rng_normal(&rng);
        mc_add(&s, relu(dotv(d, u, x)) * relu(dotv(d, v, x)));
    }
    assert_mc(&s, basin_teacher_kappa(d, u, v), "kappa");
}

/* ---- F, ∇F, ∇²F against Monte Carlo ---- */

/* F, the gradient and the off-diagonal Hessian blocks against sample means of
 *   ½(f_W − f_V)²,  (f_W − f_V)·1{w_i·x > 0}·x,  1{w_0·x > 0}·1{w_1·x > 0}·x xᵀ. */
static void test_monte_carlo(void **state)
{
    (void)state;
    enum { n = 3, k = 3, d = 4, nd = n * d };
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_random_orthonormal(k, d, 5, &t), BASIN_OK);
    double W[nd], grad[nd], H[nd * nd], x[d];
    fill_normal(W, nd, 77, 0.8);
    double f;
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, grad), BASIN_OK);
    assert_int_equal(basin_teacher_hessian(t, n, W, H), BASIN_OK);
    mc_stat sf = {0, 0, 0}, sg[nd], sh[d * d];
    memset(sg, 0, sizeof sg);
    memset(sh, 0, sizeof sh);
    basin_rng rng;
    basin_rng_init(&rng, 31337, 0);
    for (size_t r = 0; r < MC_SAMPLES; r++) {
        for (size_t a = 0; a < d; a++)
            x[a] = basin_rng_normal(&rng);
        double e = two_layer(n, d, W, x) - two_layer(k, d, t->v, x);
        mc_add(&sf, 0.5 * e * e);
        for (size_t i = 0; i < n; i++) {
            int on = dotv(d, W + i * d, x) > 0;
            for (size_t a = 0; a < d; a++)
                mc_add(&sg[i * d + a], on ? e * x[a] : 0.0);
        }
        int both = dotv(d, W, x) > 0 && dotv(d, W + d, x) > 0;
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++)
                mc_add(&sh[a * d + b], both ? x[a] * x[b] : 0.0);
    }
    assert_mc(&sf, f, "F");
    for (size_t i = 0; i < nd; i++)
        assert_mc(&sg[i], grad[i], "gradient");
    for (size_t a = 0; a < d; a++)
        for (size_t b = 0; b < d; b++)
            assert_mc(&sh[a * d + b], H[a * nd + d + b], "Hessian block (0,1)");
    basin_teacher_free(t);
}

/* ---- derivatives against finite differences ---- */

/* A generic point: a non-orthogonal teacher with unequal norms, more students than teachers. */
static basin_teacher *generic_teacher(size_t k, size_t d)
{
    double v[64];
    assert_true(k * d <= 64);
    fill_normal(v, k * d, 4, 1.0);
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_given(k, d, v, &t), BASIN_OK);
    return t;
}

static void check_gradient_fd(const basin_teacher *t, size_t n, const double *W0)
{
    size_t nd = n * t->d;
    double W[64], grad[64], f;
    assert_true(nd <= 64);
    memcpy(W, W0, nd * sizeof(double));
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, grad), BASIN_OK);
    for (size_t p = 0; p < nd; p++) {
        double h = 1e-5, keep = W[p];
        W[p] = keep + h;
        double fp = risk(t, n, W);
        W[p] = keep - h;
        double fm = risk(t, n, W);
        W[p] = keep;
        assert_near(grad[p], (fp - fm) / (2.0 * h), 1e-8 * fmax(1.0, fabs(grad[p])));
    }
}

/* Each column of H against the central difference (step h) of the gradient, to tol·max|H|,
 * and against the HVP with the unit vector. */
static void check_hessian_fd_h(const basin_teacher *t, size_t n, const double *W0, double h,
                               double tol)
{
    size_t nd = n * t->d;
    double *H = malloc(nd * nd * sizeof(double));
    double W[64], gp[64], gm[64], f;
    assert_non_null(H);
    assert_true(nd <= 64);
    memcpy(W, W0, nd * sizeof(double));
    assert_int_equal(basin_teacher_hessian(t, n, W, H), BASIN_OK);
    double hmax = 0.0;
    for (size_t i = 0; i < nd * nd; i++)
        hmax = fmax(hmax, fabs(H[i]));
    for (size_t q = 0; q < nd; q++) {
        double keep = W[q];
        W[q] = keep + h;
        assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, gp), BASIN_OK);
        W[q] = keep - h;
        assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, gm), BASIN_OK);
        W[q] = keep;
        for (size_t p = 0; p < nd; p++)
            assert_near(H[p * nd + q], (gp[p] - gm[p]) / (2.0 * h), tol * hmax);
        /* the matrix-free product with e_q is the same column */
        double e[64] = {0}, hv[64];
        e[q] = 1.0;
        assert_int_equal(basin_teacher_hvp(t, n, W, e, hv), BASIN_OK);
        for (size_t p = 0; p < nd; p++)
            assert_near(hv[p], H[p * nd + q], 1e-13 * fmax(1.0, hmax));
    }
    free(H);
}

static void check_hessian_fd(const basin_teacher *t, size_t n, const double *W0, double tol)
{
    check_hessian_fd_h(t, n, W0, 1e-5, tol);
}

static void test_derivatives_fd(void **state)
{
    (void)state;
    enum { n = 4, k = 3, d = 5 };
    basin_teacher *t = generic_teacher(k, d);
    double W[n * d];
    for (uint64_t seed = 10; seed < 13; seed++) {
        fill_normal(W, n * d, seed, 1.0);
        check_gradient_fd(t, n, W);
        check_hessian_fd(t, n, W, 1e-6);
    }
    basin_teacher_free(t);
}

/* Student rows parallel / antiparallel to each other and to teacher rows (sin θ = 0, the
 * limits taken in the closed forms). F is only C² there (κ − limit = O(θ³)), so a central
 * difference of the gradient is O(h) accurate: a looser bound. */
static void test_derivatives_degenerate_angles(void **state)
{
    (void)state;
    enum { n = 4, k = 2, d = 3 };
    double v[k * d] = {1.0, 0.5, -0.3, -0.2, 0.8, 0.6};
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_given(k, d, v, &t), BASIN_OK);
    double W[n * d] = {
        2.0,  1.0,  -0.6,  /* parallel to v_0 */
        -0.5, 2.0,  1.5,   /* parallel to v_1 */
        -1.0, -0.5, 0.3,   /* antiparallel to v_0 and to w_0 */
        0.4,  0.2,  -0.12, /* parallel to w_0 */
    };
    check_gradient_fd(t, n, W);
    check_hessian_fd(t, n, W, 1e-4);
    basin_teacher_free(t);
}

/* Rows 3e-4 rad apart (a student near a teacher row and near another student): the
 * G_w ∝ sin θ terms are ~1e-4 there and must not be lost; F's fourth derivative grows like
 * 1/θ, so the step is smaller. */
static void test_derivatives_near_parallel(void **state)
{
    (void)state;
    enum { n = 3, k = 2, d = 3 };
    double v[k * d] = {1.0, 0.5, -0.3, -0.2, 0.8, 0.6};
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_given(k, d, v, &t), BASIN_OK);
    double W[n * d] = {1.0, 0.5, -0.3 + 3e-4, 0.5, 0.25 + 1.5e-4, -0.15, 0.3, -1.0, 0.2};
    check_gradient_fd(t, n, W);
    check_hessian_fd_h(t, n, W, 1e-6, 1e-6);
    basin_teacher_free(t);
}

/* ---- structure ---- */

static void test_hessian_symmetric_and_hvp(void **state)
{
    (void)state;
    enum { n = 5, k = 4, d = 4, nd = n * d };
    basin_teacher *t = generic_teacher(k, d);
    double W[nd], v[nd], hv[nd], hv2[nd];
    double *H = malloc(nd * nd * sizeof(double));
    assert_non_null(H);
    fill_normal(W, nd, 21, 1.0);
    fill_normal(v, nd, 22, 1.0);
    assert_int_equal(basin_teacher_hessian(t, n, W, H), BASIN_OK);
    for (size_t p = 0; p < nd; p++)
        for (size_t q = 0; q < p; q++)
            assert_near(H[p * nd + q], H[q * nd + p], 1e-14);
    assert_int_equal(basin_teacher_hvp(t, n, W, v, hv), BASIN_OK);
    for (size_t p = 0; p < nd; p++) {
        double s = 0.0;
        for (size_t q = 0; q < nd; q++)
            s += H[p * nd + q] * v[q];
        assert_near(hv[p], s, 1e-12);
    }
    /* the HVP against a directional difference of the gradient, independently of H */
    double Wp[nd], Wm[nd], gp[nd], gm[nd], f, h = 1e-5;
    for (size_t p = 0; p < nd; p++) {
        Wp[p] = W[p] + h * v[p];
        Wm[p] = W[p] - h * v[p];
    }
    assert_int_equal(basin_teacher_risk_grad(t, n, Wp, &f, gp), BASIN_OK);
    assert_int_equal(basin_teacher_risk_grad(t, n, Wm, &f, gm), BASIN_OK);
    for (size_t p = 0; p < nd; p++)
        assert_near(hv[p], (gp[p] - gm[p]) / (2.0 * h), 1e-6 * fmax(1.0, fabs(hv[p])));
    /* the objective's hvp is the same operator */
    basin_objective obj;
    assert_int_equal(basin_teacher_objective(t, n, &obj), BASIN_OK);
    assert_int_equal(obj.hvp(obj.ctx, W, v, hv2), BASIN_OK);
    assert_memory_equal(hv, hv2, sizeof hv);
    basin_objective_release(&obj);
    free(H);
    basin_teacher_free(t);
}

/* At W = a permutation of the teacher: F = 0, ∇F = 0, H ⪰ 0. */
static void check_global_min(const basin_teacher *t)
{
    size_t k = t->k, d = t->d, nd = k * d;
    double W[64], grad[64], f;
    assert_true(nd <= 64);
    for (size_t i = 0; i < k; i++) /* reversed order */
        memcpy(W + i * d, t->v + (k - 1 - i) * d, d * sizeof(double));
    assert_int_equal(basin_teacher_risk_grad(t, k, W, &f, grad), BASIN_OK);
    assert_near(f, 0.0, 1e-14);
    for (size_t p = 0; p < nd; p++)
        assert_near(grad[p], 0.0, 1e-14);
}

static void test_global_minimum(void **state)
{
    (void)state;
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_identity(4, 6, &t), BASIN_OK);
    check_global_min(t);
    basin_teacher_free(t);
    assert_int_equal(basin_teacher_create_random_orthonormal(5, 5, 3, &t), BASIN_OK);
    check_global_min(t);
    basin_teacher_free(t);
    t = generic_teacher(3, 4);
    check_global_min(t);
    /* and a nearby point has F > 0 */
    double W[12];
    memcpy(W, t->v, sizeof W);
    W[5] += 1e-3;
    assert_true(risk(t, 3, W) > 0.0);
    basin_teacher_free(t);
}

/* At W = V = identity (k = n = d) by hand: θ = π/2 between distinct rows and 0 between a row
 * and itself, so the diagonal blocks are ½I (the G_w terms of students and teachers cancel)
 * and the (i,j) block is E[1{x_i>0}1{x_j>0} x xᵀ] = ¼I + (e_i e_jᵀ + e_j e_iᵀ)/(2π). */
static void test_hessian_at_identity_teacher(void **state)
{
    (void)state;
    enum { k = 3, d = 3, nd = k * d };
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_identity(k, d, &t), BASIN_OK);
    double H[nd * nd];
    assert_int_equal(basin_teacher_hessian(t, k, t->v, H), BASIN_OK);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            for (size_t a = 0; a < d; a++)
                for (size_t b = 0; b < d; b++) {
                    double e;
                    if (i == j)
                        e = a == b ? 0.5 : 0.0;
                    else
                        e = (a == b ? 0.25 : 0.0) +
                            (((a == i && b == j) || (a == j && b == i)) ? 1.0 / (2.0 * PI) : 0.0);
                    assert_near(H[(i * d + a) * nd + j * d + b], e, 1e-15);
                }
    basin_teacher_free(t);
}

/* A zero student row is a dead unit: F is that of the other students, its gradient block and
 * its Hessian rows and columns are 0, and the rest of H is the reduced student's. */
static void test_dead_unit(void **state)
{
    (void)state;
    enum { n = 3, k = 2, d = 3, nd = n * d, rd = (n - 1) * d };
    basin_teacher *t = generic_teacher(k, d);
    double W[nd], R[rd], g[nd], gr[rd], H[nd * nd], HR[rd * rd], v[nd], hv[nd], f, fr;
    fill_normal(W, nd, 8, 1.0);
    memset(W + d, 0, d * sizeof(double)); /* row 1 dead */
    memcpy(R, W, d * sizeof(double));
    memcpy(R + d, W + 2 * d, d * sizeof(double));
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, g), BASIN_OK);
    assert_int_equal(basin_teacher_risk_grad(t, n - 1, R, &fr, gr), BASIN_OK);
    assert_near(f, fr, 1e-14);
    for (size_t a = 0; a < d; a++) {
        assert_true(g[d + a] == 0.0);
        assert_near(g[a], gr[a], 1e-14);
        assert_near(g[2 * d + a], gr[d + a], 1e-14);
    }
    assert_int_equal(basin_teacher_hessian(t, n, W, H), BASIN_OK);
    assert_int_equal(basin_teacher_hessian(t, n - 1, R, HR), BASIN_OK);
    size_t map[rd]; /* reduced index → full index */
    for (size_t p = 0; p < rd; p++)
        map[p] = p < d ? p : p + d;
    for (size_t p = 0; p < nd; p++)
        for (size_t a = 0; a < d; a++) {
            assert_true(H[p * nd + d + a] == 0.0);
            assert_true(H[(d + a) * nd + p] == 0.0);
        }
    for (size_t p = 0; p < rd; p++)
        for (size_t q = 0; q < rd; q++)
            assert_near(H[map[p] * nd + map[q]], HR[p * rd + q], 1e-14);
    fill_normal(v, nd, 9, 1.0);
    assert_int_equal(basin_teacher_hvp(t, n, W, v, hv), BASIN_OK);
    for (size_t p = 0; p < nd; p++) {
        double s = 0.0;
        for (size_t q = 0; q < nd; q++)
            s += H[p * nd + q] * v[q];
        assert_near(hv[p], s, 1e-12);
    }
    basin_teacher_free(t);
}

/* A zero teacher row contributes nothing: same F as without it. */
static void test_zero_teacher_row(void **state)
{
    (void)state;
    double v3[9] = {1, 2, 0, 0, 0, 0, -1, 0.5, 2}, v2[6] = {1, 2, 0, -1, 0.5, 2};
    basin_teacher *t3, *t2;
    assert_int_equal(basin_teacher_create_given(3, 3, v3, &t3), BASIN_OK);
    assert_int_equal(basin_teacher_create_given(2, 3, v2, &t2), BASIN_OK);
    double W[6] = {0.3, -0.2, 1.0, 0.7, 0.7, -0.1}, g3[6], g2[6], f3, f2;
    assert_int_equal(basin_teacher_risk_grad(t3, 2, W, &f3, g3), BASIN_OK);
    assert_int_equal(basin_teacher_risk_grad(t2, 2, W, &f2, g2), BASIN_OK);
    assert_near(f3, f2, 1e-14);
    for (int p = 0; p < 6; p++)
        assert_near(g3[p], g2[p], 1e-14);
    basin_teacher_free(t3);
    basin_teacher_free(t2);
}

/* ---- construction ---- */

static void test_random_orthonormal(void **state)
{
    (void)state;
    basin_teacher *t, *t2, *t3;
    assert_int_equal(basin_teacher_create_random_orthonormal(4, 7, 11, &t), BASIN_OK);
    assert_int_equal(basin_teacher_create_random_orthonormal(4, 7, 11, &t2), BASIN_OK);
    assert_int_equal(basin_teacher_create_random_orthonormal(4, 7, 12, &t3), BASIN_OK);
    assert_true(t->k == 4 && t->d == 7);
    for (size_t i = 0; i < 4; i++) {
        assert_near(t->vnorm[i], 1.0, 1e-14);
        for (size_t j = 0; j < 4; j++)
            assert_near(dotv(7, t->v + i * 7, t->v + j * 7), i == j ? 1.0 : 0.0, 1e-14);
    }
    assert_memory_equal(t->v, t2->v, 28 * sizeof(double));
    assert_true(memcmp(t->v, t3->v, 28 * sizeof(double)) != 0);
    /* orthonormal rows: ½ Σ κ = k/4 + (k choose 2)/(2π) */
    assert_near(t->risk_const, 1.0 + 6.0 / (2.0 * PI), 1e-13);
    basin_teacher_free(t);
    basin_teacher_free(t2);
    basin_teacher_free(t3);
}

/* Q·sign(diag R) is Haar: over many draws E[v_0] = 0 and E[v_0 v_0ᵀ] = I/d. Plain Q from
 * Householder QR has a sign bias (its R diagonal has a fixed sign convention). */
static void test_random_orthonormal_unbiased(void **state)
{
    (void)state;
    enum { d = 3, draws = 4000 };
    mc_stat m[d], sq[d];
    memset(m, 0, sizeof m);
    memset(sq, 0, sizeof sq);
    for (uint64_t s = 0; s < draws; s++) {
        basin_teacher *t;
        assert_int_equal(basin_teacher_create_random_orthonormal(2, d, s, &t), BASIN_OK);
        for (size_t a = 0; a < d; a++) {
            mc_add(&m[a], t->v[a]);
            mc_add(&sq[a], t->v[a] * t->v[a]);
        }
        basin_teacher_free(t);
    }
    for (size_t a = 0; a < d; a++) {
        assert_mc(&m[a], 0.0, "E[v_0]");
        assert_mc(&sq[a], 1.0 / d, "E[v_0²]");
    }
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    basin_teacher *t = (basin_teacher *)&t; /* must be reset to NULL on failure */
    double v[4] = {1, 0, 0, NAN}, W[2] = {1, 1}, f;
    assert_int_equal(basin_teacher_create_identity(3, 2, &t), BASIN_EINVAL);
    assert_null(t);
    assert_int_equal(basin_teacher_create_identity(0, 2, &t), BASIN_EINVAL);
    assert_int_equal(basin_teacher_create_identity(1, 0, &t), BASIN_EINVAL);
    assert_int_equal(basin_teacher_create_random_orthonormal(3, 2, 1, &t), BASIN_EINVAL);
    assert_int_equal(basin_teacher_create_given(2, 2, v, &t), BASIN_EINVAL);
    assert_int_equal(basin_teacher_create_given(2, 2, NULL, &t), BASIN_EINVAL);
    assert_int_equal(basin_teacher_create_given(SIZE_MAX / 2, 4, v, &t), BASIN_ERANGE);
    assert_null(t);
    assert_int_equal(basin_teacher_create_identity(1, 2, &t), BASIN_OK);
    assert_int_equal(basin_teacher_risk_grad(t, 0, W, &f, NULL), BASIN_EINVAL);
    assert_int_equal(basin_teacher_risk_grad(t, 1, NULL, &f, NULL), BASIN_EINVAL);
    assert_int_equal(basin_teacher_risk_grad(t, 1, W, NULL, NULL), BASIN_EINVAL);
    assert_int_equal(basin_teacher_hessian(t, SIZE_MAX / 4, W, W), BASIN_ERANGE);
    basin_objective obj;
    assert_int_equal(basin_teacher_objective(t, 0, &obj), BASIN_EINVAL);
    assert_null(obj.ctx);
    basin_teacher_free(t);
    basin_teacher_free(NULL);
}

/* ---- the objective ---- */

static void test_objective(void **state)
{
    (void)state;
    enum { n = 3, k = 2, d = 4, nd = n * d };
    basin_teacher *t = generic_teacher(k, d);
    basin_objective obj;
    assert_int_equal(basin_teacher_objective(t, n, &obj), BASIN_OK);
    double W[nd], g1[nd], g2[nd], g3[nd], f1, f2, f3;
    fill_normal(W, nd, 5, 1.0);
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f1, g1), BASIN_OK);
    basin_teacher_free(t); /* the objective owns a copy */
    assert_true(obj.dim == nd);
    assert_true(obj.n_samples == 0);
    assert_int_equal(obj.value_grad(obj.ctx, W, NULL, 0, &f2, g2), BASIN_OK);
    size_t idx[2] = {0, 1}; /* a "mini-batch" is still the full closed form */
    assert_int_equal(obj.value_grad(obj.ctx, W, idx, 2, &f3, g3), BASIN_OK);
    assert_true(f1 == f2 && f2 == f3);
    assert_memory_equal(g1, g2, sizeof g1);
    assert_memory_equal(g1, g3, sizeof g1);
    assert_int_equal(obj.value_grad(obj.ctx, W, NULL, 0, &f2, NULL), BASIN_OK);
    assert_true(f1 == f2);
    basin_objective_release(&obj);
    assert_null(obj.ctx);
}

/* F is the infinite-sample limit of the squared-loss risk of [dense(n, no bias), relu, sum]:
 * on one Gaussian sample, the network's empirical risk and gradient (net.c) equal the sample
 * means the test computes itself, and those agree with F and ∇F within 4 standard errors. */
static void test_matches_network(void **state)
{
    (void)state;
    enum { n = 3, k = 2, d = 3, nd = n * d, N = 40000 };
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_random_orthonormal(k, d, 9, &t), BASIN_OK);
    basin_layer_spec layers[3];
    memset(layers, 0, sizeof layers);
    layers[0].kind = BASIN_LAYER_DENSE;
    layers[0].units = n;
    layers[0].bias = 0;
    layers[1].kind = BASIN_LAYER_ACTIVATION;
    layers[1].act = BASIN_ACT_RELU;
    layers[2].kind = BASIN_LAYER_SUM;
    basin_arch arch = {1, {d, 0, 0}, 3, layers};
    basin_net *net;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_true(basin_net_param_count(net) == nd);
    size_t shape[1] = {d};
    basin_dataset *ds;
    assert_int_equal(basin_dataset_create(N, 1, shape, 1, &ds), BASIN_OK);
    fill_normal(ds->x, (size_t)N * d, 606, 1.0);
    for (size_t s = 0; s < N; s++)
        ds->y[s] = two_layer(k, d, t->v, ds->x + s * d);
    double W[nd], g[nd], ge[nd], f, fe;
    fill_normal(W, nd, 607, 1.0);
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_objective obj;
    assert_int_equal(basin_objective_empirical(net, ds, &loss, 0.0, 0, &obj), BASIN_OK);
    assert_int_equal(obj.value_grad(obj.ctx, W, NULL, 0, &fe, ge), BASIN_OK);
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &f, g), BASIN_OK);
    mc_stat sf = {0, 0, 0}, sg[nd];
    memset(sg, 0, sizeof sg);
    for (size_t s = 0; s < N; s++) {
        const double *x = ds->x + s * d;
        double e = two_layer(n, d, W, x) - ds->y[s];
        mc_add(&sf, 0.5 * e * e);
        for (size_t i = 0; i < n; i++) {
            int on = dotv(d, W + i * d, x) > 0;
            for (size_t a = 0; a < d; a++)
                mc_add(&sg[i * d + a], on ? e * x[a] : 0.0);
        }
    }
    assert_near(fe, sf.mean, 1e-12 * fmax(1.0, sf.mean));
    assert_mc(&sf, f, "F vs network sample");
    for (size_t p = 0; p < nd; p++) {
        assert_near(ge[p], sg[p].mean, 1e-12 * fmax(1.0, fabs(sg[p].mean)));
        assert_mc(&sg[p], g[p], "gradient vs network sample");
    }
    basin_objective_release(&obj);
    basin_dataset_free(ds);
    basin_net_free(net);
    basin_teacher_free(t);
}

/* Second-order analysis of F through the objective's HVP (Lanczos) agrees with the dense
 * closed-form Hessian's spectrum (dsyev) at a generic point and at the global minimum, where
 * H = E[J Jᵀ] is positive semidefinite. */
typedef struct hvp_ctx {
    basin_objective *obj;
    const double *theta;
} hvp_ctx;

static int objective_matvec(void *ctx, const double *v, double *out)
{
    hvp_ctx *c = ctx;
    return c->obj->hvp(c->obj->ctx, c->theta, v, out);
}

static void test_spectrum_through_lanczos(void **state)
{
    (void)state;
    enum { n = 4, k = 4, d = 4, nd = n * d };
    basin_teacher *t;
    assert_int_equal(basin_teacher_create_random_orthonormal(k, d, 17, &t), BASIN_OK);
    basin_objective obj;
    assert_int_equal(basin_teacher_objective(t, n, &obj), BASIN_OK);
    double W[nd], H[nd * nd], w[nd];
    for (int point = 0; point < 2; point++) {
        if (point == 0)
            fill_normal(W, nd, 18, 1.0);
        else
            memcpy(W, t->v, sizeof W);
        assert_int_equal(basin_teacher_hessian(t, n, W, H), BASIN_OK);
        assert_int_equal(basin_sym_eig(nd, H, w, NULL), BASIN_OK);
        hvp_ctx c = {&obj, W};
        basin_lanczos_opts opts = {0, 1e-12, 1};
        basin_lanczos_result res;
        assert_int_equal(basin_lanczos_extremes(nd, objective_matvec, &c, &opts, &res, NULL, NULL),
                         BASIN_OK);
        assert_true(res.converged);
        assert_near(res.lambda_min, w[0], 1e-10);
        assert_near(res.lambda_max, w[nd - 1], 1e-10);
        if (point == 1)
            assert_true(w[0] > -1e-12);
    }
    basin_objective_release(&obj);
    basin_teacher_free(t);
}

/* ---- allocation failures ---- */

typedef struct sweep_case {
    basin_teacher *t;
    size_t n;
    const double *W;
    double *out, *H;
} sweep_case;

static int run_create(void *arg)
{
    (void)arg;
    basin_teacher *a = NULL, *b = NULL, *c = NULL;
    double v[6] = {1, 2, 3, 4, 5, 6};
    int rc = basin_teacher_create_identity(2, 3, &a);
    if (rc == BASIN_OK)
        rc = basin_teacher_create_random_orthonormal(2, 3, 1, &b);
    if (rc == BASIN_OK)
        rc = basin_teacher_create_given(2, 3, v, &c);
    basin_teacher_free(a);
    basin_teacher_free(b);
    basin_teacher_free(c);
    return rc;
}

static int run_evaluate(void *arg)
{
    sweep_case *c = arg;
    double f;
    int rc = basin_teacher_risk_grad(c->t, c->n, c->W, &f, c->out);
    if (rc == BASIN_OK)
        rc = basin_teacher_hessian(c->t, c->n, c->W, c->H);
    if (rc == BASIN_OK)
        rc = basin_teacher_hvp(c->t, c->n, c->W, c->W, c->out);
    return rc;
}

static int run_objective(void *arg)
{
    sweep_case *c = arg;
    basin_objective obj;
    int rc = basin_teacher_objective(c->t, c->n, &obj);
    basin_objective_release(&obj);
    return rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    basin_teacher *t = generic_teacher(2, 3);
    double W[6] = {0.5, -1, 2, 1, 1, 0}, out[6], H[36];
    sweep_case c = {t, 2, W, out, H};
    int (*fns[3])(void *) = {run_create, run_evaluate, run_objective};
    for (int f = 0; f < 3; f++) {
        for (int mode = 0; mode < 2; mode++) {
            failing_alloc_report rep;
            int ok = failing_alloc_sweep(fns[f], &c, (failing_alloc_mode)mode, 0, &rep);
            if (!ok)
                print_error("fn %d mode %d: bad N %zu rc %d live %ld final %d\n", f, mode,
                            rep.bad_n, rep.bad_rc, rep.bad_live, rep.final_rc);
            assert_true(ok);
            assert_true(rep.runs >= 1);
        }
    }
    basin_teacher_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kappa_closed_forms),
        cmocka_unit_test(test_kappa_monte_carlo),
        cmocka_unit_test(test_monte_carlo),
        cmocka_unit_test(test_derivatives_fd),
        cmocka_unit_test(test_derivatives_degenerate_angles),
        cmocka_unit_test(test_derivatives_near_parallel),
        cmocka_unit_test(test_hessian_symmetric_and_hvp),
        cmocka_unit_test(test_global_minimum),
        cmocka_unit_test(test_hessian_at_identity_teacher),
        cmocka_unit_test(test_dead_unit),
        cmocka_unit_test(test_zero_teacher_row),
        cmocka_unit_test(test_random_orthonormal),
        cmocka_unit_test(test_random_orthonormal_unbiased),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_objective),
        cmocka_unit_test(test_matches_network),
        cmocka_unit_test(test_spectrum_through_lanczos),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
