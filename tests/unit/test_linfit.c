/* Tests of the best affine fits (linfit.c) against independent references: the normal
 * equations solved in the test, closed forms (XOR, one-hot clusters whose optimum is the
 * empirical class frequencies), finite-difference gradients, and exhaustive enumeration of the
 * vertices of the 1-D linear programs (absolute, hinge) and a brute-force grid (Huber). */
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
#include "basin/linfit.h"
#include "basin/loss.h"
#include "basin/rng.h"
#include "basin/status.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double near_a_ = (a), near_b_ = (b);                                                       \
        if (!(fabs(near_a_ - near_b_) <= (tol))) {                                                 \
            print_error("%.17g != %.17g (tolerance %g)\n", near_a_, near_b_, (double)(tol));       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static basin_dataset *make(size_t n, size_t in_dim, size_t y_dim, const double *x, const double *y)
{
    basin_dataset *ds = NULL;
    size_t shape[1] = {in_dim};
    assert_int_equal(basin_dataset_create(n, 1, shape, y_dim, &ds), BASIN_OK);
    if (x)
        memcpy(ds->x, x, n * in_dim * sizeof(double));
    if (y)
        memcpy(ds->y, y, n * y_dim * sizeof(double));
    return ds;
}

static basin_loss loss_of(basin_loss_kind kind)
{
    basin_loss l = {kind, 1.0};
    return l;
}

/* Σ_i ℓ(A x_i + b, y_i) with coef = [A row-major, b], evaluated independently of linfit. */
static double risk_at(const basin_dataset *ds, const basin_loss *loss, size_t out_dim,
                      const double *coef)
{
    double sum = 0, o[16];
    size_t d = ds->in_dim;
    assert_true(out_dim <= 16);
    for (size_t i = 0; i < ds->n; i++) {
        for (size_t k = 0; k < out_dim; k++) {
            o[k] = coef[out_dim * d + k];
            for (size_t j = 0; j < d; j++)
                o[k] += coef[k * d + j] * ds->x[i * d + j];
        }
        sum += basin_loss_eval(loss, o, ds->y + i * ds->y_dim, out_dim, NULL);
    }
    return sum;
}

/* Central-difference gradient norm (∞) of risk_at at coef. */
static double fd_grad_max(const basin_dataset *ds, const basin_loss *loss, size_t out_dim,
                          const double *coef, double h)
{
    size_t nc = out_dim * (ds->in_dim + 1);
    double *c = malloc(nc * sizeof *c), worst = 0;
    assert_non_null(c);
    for (size_t j = 0; j < nc; j++) {
        memcpy(c, coef, nc * sizeof *c);
        c[j] = coef[j] + h;
        double fp = risk_at(ds, loss, out_dim, c);
        c[j] = coef[j] - h;
        double fm = risk_at(ds, loss, out_dim, c);
        worst = fmax(worst, fabs(fp - fm) / (2 * h));
    }
    free(c);
    return worst;
}

/* Solve the n × n system a x = b (a, b overwritten) by Gaussian elimination with pivoting. */
static void solve_dense(double *a, double *b, size_t n, size_t nrhs)
{
    for (size_t c = 0; c < n; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
                piv = r;
        for (size_t j = 0; j < n; j++) {
            double t = a[c * n + j];
            a[c * n + j] = a[piv * n + j];
            a[piv * n + j] = t;
        }
        for (size_t j = 0; j < nrhs; j++) {
            double t = b[c * nrhs + j];
            b[c * nrhs + j] = b[piv * nrhs + j];
            b[piv * nrhs + j] = t;
        }
        for (size_t r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (size_t j = c; j < n; j++)
                a[r * n + j] -= f * a[c * n + j];
            for (size_t j = 0; j < nrhs; j++)
                b[r * nrhs + j] -= f * b[c * nrhs + j];
        }
    }
    for (size_t c = n; c-- > 0;)
        for (size_t j = 0; j < nrhs; j++) {
            double s = b[c * nrhs + j];
            for (size_t k = c + 1; k < n; k++)
                s -= a[c * n + k] * b[k * nrhs + j];
            b[c * nrhs + j] = s / a[c * n + c];
        }
}

static void test_squared_normal_equations(void **state)
{
    (void)state;
    enum { M = 20, D = 3, K = 2, P = D + 1 };
    basin_rng rng;
    basin_rng_init(&rng, 11, 0);
    basin_dataset *ds = make(M, D, K, NULL, NULL);
    for (size_t i = 0; i < M * D; i++)
        ds->x[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < M * K; i++)
        ds->y[i] = basin_rng_normal(&rng) + 3.0;
    /* ZᵀZ θᵀ = ZᵀY with z = [x, 1]. */
    double g[P * P] = {0}, r[P * K] = {0};
    for (size_t i = 0; i < M; i++) {
        double z[P];
        memcpy(z, ds->x + i * D, D * sizeof(double));
        z[D] = 1.0;
        for (size_t a = 0; a < P; a++) {
            for (size_t b = 0; b < P; b++)
                g[a * P + b] += z[a] * z[b];
            for (size_t k = 0; k < K; k++)
                r[a * K + k] += z[a] * ds->y[i * K + k];
        }
    }
    solve_dense(g, r, P, K);
    basin_loss loss = loss_of(BASIN_LOSS_SQUARED);
    basin_affine_fit fit;
    double coef[K * P];
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, K, &fit, coef), BASIN_OK);
    for (size_t k = 0; k < K; k++) {
        for (size_t j = 0; j < D; j++)
            assert_near(coef[k * D + j], r[j * K + k], 1e-12);
        assert_near(coef[K * D + k], r[D * K + k], 1e-12);
    }
    double ref = 0;
    for (size_t i = 0; i < M; i++)
        for (size_t k = 0; k < K; k++) {
            double o = r[D * K + k];
            for (size_t j = 0; j < D; j++)
                o += r[j * K + k] * ds->x[i * D + j];
            ref += 0.5 * (o - ds->y[i * K + k]) * (o - ds->y[i * K + k]);
        }
    assert_near(fit.risk_sum, ref, 1e-12 * ref);
    assert_int_equal(fit.rank, P);
    assert_int_equal(fit.exact, 1);
    assert_int_equal(fit.attained, 1);
    assert_true(fit.gap == 0.0);
    basin_dataset_free(ds);
}

static void test_perfectly_linear(void **state)
{
    (void)state;
    enum { M = 12 };
    basin_dataset *ds = make(M, 2, 1, NULL, NULL);
    for (size_t i = 0; i < M; i++) {
        ds->x[2 * i] = (double)i * 0.3 - 1.0;
        ds->x[2 * i + 1] = cos((double)i);
        ds->y[i] = 2.0 * ds->x[2 * i] - 3.0 * ds->x[2 * i + 1] + 0.5;
    }
    basin_loss_kind kinds[3] = {BASIN_LOSS_SQUARED, BASIN_LOSS_HUBER, BASIN_LOSS_ABSOLUTE};
    for (int t = 0; t < 3; t++) {
        basin_loss loss = loss_of(kinds[t]);
        basin_affine_fit fit;
        double coef[3];
        assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, 1, &fit, coef), BASIN_OK);
        assert_true(fit.risk_sum >= 0 && fit.risk_sum < 1e-12);
        assert_near(coef[0], 2.0, 1e-9);
        assert_near(coef[1], -3.0, 1e-9);
        assert_near(coef[2], 0.5, 1e-9);
        assert_int_equal(fit.rank, 3);
        double risk;
        int exact, fittable;
        assert_int_equal(basin_linear_fit_risk(ds, &loss, 1, 1e-10, &risk, &exact, &fittable),
                         BASIN_OK);
        assert_int_equal(fittable, 1);
    }
    basin_dataset_free(ds);
}

static void test_xor_least_squares(void **state)
{
    (void)state;
    const double x[8] = {-1, -1, 1, -1, -1, 1, 1, 1}, y[4] = {0, 1, 1, 0};
    basin_dataset *ds = make(4, 2, 1, x, y);
    basin_loss loss = loss_of(BASIN_LOSS_SQUARED);
    basin_affine_fit fit;
    double coef[3];
    /* Best affine fit: the constant 1/2, risk_sum = 4 · ½ · ¼. */
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &loss, 1, &fit, coef), BASIN_OK);
    assert_near(fit.risk_sum, 0.5, 1e-15);
    assert_near(coef[0], 0.0, 1e-15);
    assert_near(coef[1], 0.0, 1e-15);
    assert_near(coef[2], 0.5, 1e-15);
    double risk = -1;
    int exact = -1, fittable = -1;
    assert_int_equal(basin_linear_fit_risk(ds, &loss, 1, 1e-6, &risk, &exact, &fittable), BASIN_OK);
    assert_near(risk, 0.125, 1e-15);
    assert_int_equal(exact, 1);
    assert_int_equal(fittable, 0);
    assert_int_equal(basin_linear_fit_risk(ds, &loss, 1, 0.2, &risk, &exact, &fittable), BASIN_OK);
    assert_int_equal(fittable, 1);
    /* Logistic on XOR: the optimum is o = 0 everywhere, risk 4 log 2. */
    basin_loss logistic = loss_of(BASIN_LOSS_LOGISTIC);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &logistic, 1, &fit, coef), BASIN_OK);
    assert_near(fit.risk_sum, 4 * log(2.0), 1e-14);
    assert_int_equal(fit.attained, 1);
    assert_int_equal(fit.exact, 1);
    /* Hinge on XOR: every affine o has Σ hinge ≥ 4 (pairs cancel), attained at o = 0. */
    basin_loss hinge = loss_of(BASIN_LOSS_HINGE);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &hinge, 1, &fit, coef), BASIN_OK);
    assert_near(fit.risk_sum, 4.0, 1e-7);
    assert_int_equal(fit.exact, 0);
    assert_true(fit.gap >= 0 && fit.gap < 1e-6);
    basin_dataset_free(ds);
}

static void test_rank_deficient(void **state)
{
    (void)state;
    enum { M = 9 };
    basin_dataset *ds = make(M, 2, 1, NULL, NULL);
    double sx = 0, sy = 0;
    for (size_t i = 0; i < M; i++) {
        double t = (double)i - 3.0;
        ds->x[2 * i] = t;
        ds->x[2 * i + 1] = 2.0 * t; /* a duplicate direction */
        ds->y[i] = sin(t) + 0.1 * t * t;
        sx += t;
        sy += ds->y[i];
    }
    /* Simple regression on t in closed form. */
    double mx = sx / M, my = sy / M, sxx = 0, sxy = 0;
    for (size_t i = 0; i < M; i++) {
        sxx += (ds->x[2 * i] - mx) * (ds->x[2 * i] - mx);
        sxy += (ds->x[2 * i] - mx) * (ds->y[i] - my);
    }
    double slope = sxy / sxx, icept = my - slope * mx, ref = 0;
    for (size_t i = 0; i < M; i++) {
        double r = slope * ds->x[2 * i] + icept - ds->y[i];
        ref += 0.5 * r * r;
    }
    basin_loss loss = loss_of(BASIN_LOSS_SQUARED);
    basin_affine_fit fit;
    double coef[3];
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.rank, 2);
    assert_near(fit.risk_sum, ref, 1e-12);
    /* Minimum norm: slope split as a + 2b = slope with (a, b) ∝ (1, 2). */
    assert_near(coef[0] + 2.0 * coef[1], slope, 1e-12);
    assert_near(2.0 * coef[0], coef[1], 1e-12);
    assert_near(coef[2], icept, 1e-12);
    basin_dataset_free(ds);

    /* Fewer points than parameters: interpolated, risk 0. */
    const double x2[6] = {0.3, -1, 2, 5, 1, -2}, y2[2] = {7, -4};
    ds = make(2, 3, 1, x2, y2);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 2, &loss, 1, &fit, NULL), BASIN_OK);
    assert_int_equal(fit.rank, 2);
    assert_true(fit.risk_sum < 1e-25);
    basin_dataset_free(ds);

    /* The same point twice with different targets cannot be interpolated: mean 1/2. */
    const double x3[4] = {1, 1, 1, 1}, y3[2] = {0, 1};
    ds = make(2, 2, 1, x3, y3);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 2, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.rank, 1);
    assert_near(fit.risk_sum, 0.25, 1e-14);
    basin_dataset_free(ds);
}

static void test_index_selection(void **state)
{
    (void)state;
    enum { M = 10 };
    basin_rng rng;
    basin_rng_init(&rng, 5, 0);
    basin_dataset *ds = make(M, 2, 1, NULL, NULL);
    for (size_t i = 0; i < 2 * M; i++)
        ds->x[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < M; i++)
        ds->y[i] = basin_rng_normal(&rng);
    const size_t idx[5] = {7, 0, 3, 9, 4};
    basin_dataset *sub = make(5, 2, 1, NULL, NULL);
    for (size_t i = 0; i < 5; i++) {
        memcpy(sub->x + 2 * i, ds->x + 2 * idx[i], 2 * sizeof(double));
        sub->y[i] = ds->y[idx[i]];
    }
    basin_loss loss = loss_of(BASIN_LOSS_SQUARED);
    basin_affine_fit a, b;
    double ca[3], cb[3];
    assert_int_equal(basin_affine_fit_group(ds, idx, 5, &loss, 1, &a, ca), BASIN_OK);
    assert_int_equal(basin_affine_fit_group(sub, NULL, 5, &loss, 1, &b, cb), BASIN_OK);
    assert_near(a.risk_sum, b.risk_sum, 1e-14);
    assert_near(a.risk_sum, risk_at(sub, &loss, 1, ca), 1e-13);
    for (int j = 0; j < 3; j++)
        assert_near(ca[j], cb[j], 1e-12);
    /* The first m samples when idx is NULL. */
    basin_dataset *head = make(4, 2, 1, ds->x, ds->y);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &loss, 1, &a, ca), BASIN_OK);
    assert_int_equal(basin_affine_fit_group(head, NULL, 4, &loss, 1, &b, cb), BASIN_OK);
    assert_near(a.risk_sum, b.risk_sum, 1e-14);
    basin_dataset_free(head);
    basin_dataset_free(sub);
    basin_dataset_free(ds);
}

/* Labels from a noisy linear rule plus a duplicated point with both labels: not separable. */
static basin_dataset *noisy_binary(size_t m, uint64_t seed)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    basin_dataset *ds = make(m, 2, 1, NULL, NULL);
    for (size_t i = 0; i < m; i++) {
        double a = basin_rng_normal(&rng), b = basin_rng_normal(&rng);
        ds->x[2 * i] = a;
        ds->x[2 * i + 1] = b;
        double logit = 2.0 * a - b + 0.3;
        ds->y[i] = basin_rng_uniform(&rng) < 1.0 / (1.0 + exp(-logit)) ? 1.0 : 0.0;
    }
    ds->x[2] = ds->x[0];
    ds->x[3] = ds->x[1];
    ds->y[0] = 0;
    ds->y[1] = 1;
    return ds;
}

/* No random perturbation of coef (several scales) lowers the risk below risk_sum. */
static void check_no_better_nearby(const basin_dataset *ds, const basin_loss *loss, size_t out_dim,
                                   const double *coef, double risk_sum)
{
    size_t nc = out_dim * (ds->in_dim + 1);
    double c[64];
    assert_true(nc <= 64);
    basin_rng rng;
    basin_rng_init(&rng, 99, 0);
    for (int trial = 0; trial < 300; trial++) {
        double scale = pow(10.0, -1.0 - (double)(trial % 5));
        for (size_t j = 0; j < nc; j++)
            c[j] = coef[j] + scale * basin_rng_normal(&rng);
        assert_true(risk_at(ds, loss, out_dim, c) >= risk_sum - 1e-12 * (1 + risk_sum));
    }
}

static void test_logistic_non_separable(void **state)
{
    (void)state;
    basin_dataset *ds = noisy_binary(60, 3);
    basin_loss loss = loss_of(BASIN_LOSS_LOGISTIC);
    basin_affine_fit fit;
    double coef[3];
    assert_int_equal(basin_affine_fit_group(ds, NULL, 60, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 1);
    assert_int_equal(fit.exact, 1);
    assert_int_equal(fit.rank, 3);
    assert_true(fit.iterations > 0 && fit.iterations < 50);
    assert_near(fit.risk_sum, risk_at(ds, &loss, 1, coef), 1e-12);
    assert_true(fd_grad_max(ds, &loss, 1, coef, 1e-5) < 1e-7);
    check_no_better_nearby(ds, &loss, 1, coef, fit.risk_sum);
    /* A line search along each axis through coef (another grid reference). */
    for (int j = 0; j < 3; j++)
        for (int s = -50; s <= 50; s++) {
            double c[3] = {coef[0], coef[1], coef[2]};
            c[j] += 0.002 * s;
            assert_true(risk_at(ds, &loss, 1, c) >= fit.risk_sum - 1e-13);
        }
    basin_dataset_free(ds);
}

/* One-hot clusters: sample i sits at e_{cluster(i)}; with the intercept the affine map sets each
 * cluster's logits freely, so the optimum predicts each cluster's empirical class frequencies
 * and the minimum is Σ_clusters Σ_c −n_jc log(n_jc / n_j). */
static void test_one_hot_closed_forms(void **state)
{
    (void)state;
    /* counts[j][c]: samples of class c in cluster j. */
    const size_t counts[4][3] = {{3, 1, 0}, {2, 2, 2}, {0, 5, 1}, {1, 0, 0}};
    const size_t dims[2] = {4, 500}; /* 500 inputs × 3 classes: the CG path */
    for (int t = 0; t < 2; t++) {
        size_t d = dims[t], m = 0;
        for (int j = 0; j < 4; j++)
            for (int c = 0; c < 3; c++)
                m += counts[j][c];
        basin_dataset *ds = make(m, d, 1, NULL, NULL);
        size_t i = 0;
        double ref = 0;
        for (int j = 0; j < 4; j++) {
            size_t nj = counts[j][0] + counts[j][1] + counts[j][2];
            for (int c = 0; c < 3; c++) {
                for (size_t r = 0; r < counts[j][c]; r++, i++) {
                    ds->x[i * d + (size_t)j * (d / 4)] = 1.0;
                    ds->y[i] = c;
                }
                if (counts[j][c])
                    ref -= (double)counts[j][c] * log((double)counts[j][c] / (double)nj);
            }
        }
        basin_loss ce = loss_of(BASIN_LOSS_CROSS_ENTROPY);
        basin_affine_fit fit;
        double *coef = malloc(3 * (d + 1) * sizeof *coef);
        assert_non_null(coef);
        assert_int_equal(basin_affine_fit_group(ds, NULL, m, &ce, 3, &fit, coef), BASIN_OK);
        assert_near(fit.risk_sum, ref, 1e-9);
        assert_int_equal(fit.exact, 1);
        assert_int_equal(fit.attained, 1);
        assert_int_equal(fit.rank, 4);
        free(coef);

        /* Logistic on class 1 vs the rest of the same clusters. */
        double ref_bin = 0;
        for (int j = 0; j < 4; j++) {
            double n1 = (double)counts[j][1];
            double n0 = (double)(counts[j][0] + counts[j][2]);
            if (n1 > 0 && n0 > 0)
                ref_bin -= n1 * log(n1 / (n0 + n1)) + n0 * log(n0 / (n0 + n1));
        }
        for (size_t s = 0; s < m; s++)
            ds->y[s] = ds->y[s] == 1.0 ? 1.0 : 0.0;
        basin_loss lg = loss_of(BASIN_LOSS_LOGISTIC);
        assert_int_equal(basin_affine_fit_group(ds, NULL, m, &lg, 1, &fit, NULL), BASIN_OK);
        /* Clusters 3 (one class only) push their logit to ±∞: the infimum is approached,
         * not attained, so only the value is checked, to the gradient tolerance's effect. */
        assert_near(fit.risk_sum, ref_bin, 1e-9);
        basin_dataset_free(ds);
    }
}

static void test_logistic_separable(void **state)
{
    (void)state;
    enum { M = 40 };
    basin_rng rng;
    basin_rng_init(&rng, 8, 0);
    basin_dataset *ds = make(M, 2, 1, NULL, NULL);
    for (size_t i = 0; i < M; i++) {
        double a = basin_rng_normal(&rng), b = basin_rng_normal(&rng);
        double side = a + 0.5 * b - 0.2;
        if (fabs(side) < 0.05)
            a += side > 0 ? 0.1 : -0.1;
        ds->x[2 * i] = a;
        ds->x[2 * i + 1] = b;
        ds->y[i] = a + 0.5 * b - 0.2 > 0 ? 1.0 : 0.0;
    }
    basin_loss loss = loss_of(BASIN_LOSS_LOGISTIC);
    basin_affine_fit fit;
    double coef[3];
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 0);
    assert_int_equal(fit.exact, 1);
    assert_true(fit.risk_sum >= 0 && fit.risk_sum <= 1e-12 * M);
    assert_true(risk_at(ds, &loss, 1, coef) <= 1e-12 * M);
    for (size_t i = 0; i < M; i++) {
        double o = coef[0] * ds->x[2 * i] + coef[1] * ds->x[2 * i + 1] + coef[2];
        assert_true((2 * ds->y[i] - 1) * o > 0);
    }
    double risk;
    int exact, fittable;
    assert_int_equal(basin_linear_fit_risk(ds, &loss, 1, 1e-9, &risk, &exact, &fittable), BASIN_OK);
    assert_int_equal(fittable, 1);
    /* One class only: separable by the intercept alone. */
    for (size_t i = 0; i < M; i++)
        ds->y[i] = 0;
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 0);
    assert_true(risk_at(ds, &loss, 1, coef) <= 1e-12 * M);
    basin_dataset_free(ds);
}

static void test_cross_entropy(void **state)
{
    (void)state;
    enum { M = 90, K = 3 };
    basin_rng rng;
    basin_rng_init(&rng, 21, 0);
    basin_dataset *ds = make(M, 2, 1, NULL, NULL);
    const double centre[K][2] = {{0, 0}, {1, 0.5}, {-0.5, 1}};
    for (size_t i = 0; i < M; i++) {
        size_t c = i % K;
        ds->x[2 * i] = centre[c][0] + 0.8 * basin_rng_normal(&rng);
        ds->x[2 * i + 1] = centre[c][1] + 0.8 * basin_rng_normal(&rng);
        ds->y[i] = (double)c;
    }
    basin_loss loss = loss_of(BASIN_LOSS_CROSS_ENTROPY);
    basin_affine_fit fit;
    double coef[K * 3];
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, K, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 1);
    assert_int_equal(fit.exact, 1);
    assert_near(fit.risk_sum, risk_at(ds, &loss, K, coef), 1e-12);
    assert_true(fd_grad_max(ds, &loss, K, coef, 1e-5) < 1e-7);
    check_no_better_nearby(ds, &loss, K, coef, fit.risk_sum);

    /* Far-apart blobs: separable, infimum 0 not attained. */
    for (size_t i = 0; i < M; i++) {
        size_t c = i % K;
        ds->x[2 * i] = 10 * centre[c][0] + 0.3 * basin_rng_normal(&rng);
        ds->x[2 * i + 1] = 10 * centre[c][1] + 0.3 * basin_rng_normal(&rng);
    }
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, K, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 0);
    assert_int_equal(fit.exact, 1);
    assert_true(fit.risk_sum <= 1e-12 * M);
    assert_true(risk_at(ds, &loss, K, coef) <= 1e-12 * M);
    basin_dataset_free(ds);
}

static void test_cross_entropy_cg_separable(void **state)
{
    (void)state;
    enum { M = 60, D = 400, K = 3 }; /* 1203 unknowns: the CG path; M < D: separable */
    basin_rng rng;
    basin_rng_init(&rng, 31, 0);
    basin_dataset *ds = make(M, D, 1, NULL, NULL);
    for (size_t i = 0; i < M * D; i++)
        ds->x[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < M; i++)
        ds->y[i] = (double)basin_rng_below(&rng, K);
    basin_loss loss = loss_of(BASIN_LOSS_CROSS_ENTROPY);
    basin_affine_fit fit;
    double *coef = malloc(K * (D + 1) * sizeof *coef);
    assert_non_null(coef);
    assert_int_equal(basin_affine_fit_group(ds, NULL, M, &loss, K, &fit, coef), BASIN_OK);
    assert_int_equal(fit.attained, 0);
    assert_int_equal(fit.rank, M);
    assert_true(risk_at(ds, &loss, K, coef) <= 1e-12 * M);
    free(coef);
    basin_dataset_free(ds);
}

/* 1-D data with outliers. */
static basin_dataset *outlier_line(size_t m, uint64_t seed, int binary)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    basin_dataset *ds = make(m, 1, 1, NULL, NULL);
    for (size_t i = 0; i < m; i++) {
        double x = 4.0 * basin_rng_uniform(&rng) - 2.0;
        ds->x[i] = x;
        if (binary)
            ds->y[i] = x + 0.6 * basin_rng_normal(&rng) > 0.3 ? 1.0 : 0.0;
        else
            ds->y[i] = 1.5 * x + 0.3 + 0.4 * basin_rng_normal(&rng) + (i % 5 == 0 ? 3.0 : 0.0);
    }
    return ds;
}

static void test_huber_brute_force(void **state)
{
    (void)state;
    basin_dataset *ds = outlier_line(15, 4, 0);
    basin_loss loss = {BASIN_LOSS_HUBER, 0.5};
    basin_affine_fit fit;
    double coef[2];
    assert_int_equal(basin_affine_fit_group(ds, NULL, 15, &loss, 1, &fit, coef), BASIN_OK);
    assert_int_equal(fit.exact, 1);
    assert_near(fit.risk_sum, risk_at(ds, &loss, 1, coef), 1e-12);
    /* A grid over slope × intercept in [−5, 5]², then a finer one around its best point. */
    double best = INFINITY, bw = 0, bb = 0;
    for (int a = 0; a <= 400; a++)
        for (int b = 0; b <= 400; b++) {
            double c[2] = {-5.0 + 0.025 * a, -5.0 + 0.025 * b};
            double r = risk_at(ds, &loss, 1, c);
            assert_true(r >= fit.risk_sum - 1e-12);
            if (r < best) {
                best = r;
                bw = c[0];
                bb = c[1];
            }
        }
    double fine = best;
    for (int a = -100; a <= 100; a++)
        for (int b = -100; b <= 100; b++) {
            double c[2] = {bw + 0.00025 * a, bb + 0.00025 * b};
            double r = risk_at(ds, &loss, 1, c);
            assert_true(r >= fit.risk_sum - 1e-12);
            fine = fmin(fine, r);
        }
    assert_true(fine - fit.risk_sum < 1e-5);
    assert_true(fd_grad_max(ds, &loss, 1, coef, 1e-6) < 1e-6);
    basin_dataset_free(ds);
}

/* Exact minimum of a 1-D LP-type loss: the optimum is a vertex of the arrangement of the lines
 * where one sample's loss has its kink, i.e. the (w, b) on two of them at once. */
static double vertex_minimum(const basin_dataset *ds, const basin_loss *loss)
{
    double best = INFINITY;
    size_t m = ds->n;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) {
            double xi = ds->x[i], xj = ds->x[j], ri, rj;
            if (xi == xj)
                continue;
            if (loss->kind == BASIN_LOSS_ABSOLUTE) { /* w x + b = y */
                ri = ds->y[i];
                rj = ds->y[j];
            } else { /* t (w x + b) = 1  ⇔  w x + b = t */
                ri = 2 * ds->y[i] - 1;
                rj = 2 * ds->y[j] - 1;
            }
            double w = (ri - rj) / (xi - xj), c[2] = {w, ri - w * xi};
            best = fmin(best, risk_at(ds, loss, 1, c));
        }
    return best;
}

static void test_absolute_exact_reference(void **state)
{
    (void)state;
    basin_dataset *ds = outlier_line(25, 6, 0);
    basin_loss loss = loss_of(BASIN_LOSS_ABSOLUTE);
    basin_affine_fit fit;
    double coef[2];
    double ref = vertex_minimum(ds, &loss);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 25, &loss, 1, &fit, coef), BASIN_OK);
    assert_near(fit.risk_sum, risk_at(ds, &loss, 1, coef), 1e-12);
    assert_true(fit.risk_sum >= ref - 1e-12);
    assert_true(fit.risk_sum - ref < 1e-8);
    assert_int_equal(fit.exact, 0);
    assert_true(fit.gap >= fit.risk_sum - ref); /* the estimate covers the true gap */
    assert_true(fit.gap < 1e-6);
    basin_dataset_free(ds);

    /* Two target columns are two independent problems. */
    basin_dataset *a = outlier_line(20, 7, 0), *b = outlier_line(20, 8, 0);
    basin_dataset *two = make(20, 1, 2, NULL, NULL);
    for (size_t i = 0; i < 20; i++) {
        b->x[i] = a->x[i];
        two->x[i] = a->x[i];
        two->y[2 * i] = a->y[i];
        two->y[2 * i + 1] = b->y[i];
    }
    double c2[4];
    assert_int_equal(basin_affine_fit_group(two, NULL, 20, &loss, 2, &fit, c2), BASIN_OK);
    double ref2 = vertex_minimum(a, &loss) + vertex_minimum(b, &loss);
    assert_true(fit.risk_sum >= ref2 - 1e-12 && fit.risk_sum - ref2 < 1e-7);
    assert_near(fit.risk_sum, risk_at(two, &loss, 2, c2), 1e-12);
    basin_dataset_free(a);
    basin_dataset_free(b);
    basin_dataset_free(two);
}

static void test_hinge_exact_reference(void **state)
{
    (void)state;
    basin_dataset *ds = outlier_line(30, 9, 1);
    basin_loss loss = loss_of(BASIN_LOSS_HINGE);
    basin_affine_fit fit;
    double coef[2];
    double ref = vertex_minimum(ds, &loss);
    assert_true(ref > 0.5); /* the noisy labels are not separable */
    assert_int_equal(basin_affine_fit_group(ds, NULL, 30, &loss, 1, &fit, coef), BASIN_OK);
    assert_near(fit.risk_sum, risk_at(ds, &loss, 1, coef), 1e-12);
    assert_true(fit.risk_sum >= ref - 1e-12);
    assert_true(fit.risk_sum - ref < 1e-8);
    assert_int_equal(fit.exact, 0);
    assert_true(fit.gap >= fit.risk_sum - ref);
    assert_true(fit.gap < 1e-6);
    /* Separable labels: risk exactly 0 with all margins ≥ 1. */
    for (size_t i = 0; i < 30; i++)
        ds->y[i] = ds->x[i] > 0.1 ? 1.0 : 0.0;
    assert_int_equal(basin_affine_fit_group(ds, NULL, 30, &loss, 1, &fit, coef), BASIN_OK);
    assert_true(fit.risk_sum == 0.0);
    assert_int_equal(fit.exact, 1);
    assert_int_equal(fit.attained, 1);
    for (size_t i = 0; i < 30; i++)
        assert_true((2 * ds->y[i] - 1) * (coef[0] * ds->x[i] + coef[1]) >= 1.0);
    basin_dataset_free(ds);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    const double x[4] = {0, 1, 2, 3}, y[4] = {0, 1, 0, 2};
    basin_dataset *ds = make(4, 1, 1, x, y);
    basin_affine_fit fit;
    double coef[4];
    basin_loss lg = loss_of(BASIN_LOSS_LOGISTIC), ce = loss_of(BASIN_LOSS_CROSS_ENTROPY);
    basin_loss sq = loss_of(BASIN_LOSS_SQUARED), hub = {BASIN_LOSS_HUBER, -1.0};
    /* Label 2 is not a logistic target, but is fine for 3-class cross-entropy. */
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &lg, 1, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 3, &lg, 1, &fit, coef), BASIN_OK);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &ce, 2, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &ce, 1, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &lg, 2, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &sq, 2, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &hub, 1, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 5, &sq, 1, &fit, coef), BASIN_EINVAL);
    const size_t bad_idx[2] = {1, 4};
    assert_int_equal(basin_affine_fit_group(ds, bad_idx, 2, &sq, 1, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &sq, 1, NULL, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(NULL, NULL, 4, &sq, 1, &fit, coef), BASIN_EINVAL);
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, NULL, 1, &fit, coef), BASIN_EINVAL);
    ds->x[2] = NAN;
    assert_int_equal(basin_affine_fit_group(ds, NULL, 4, &sq, 1, &fit, coef), BASIN_EINVAL);
    /* The empty group: risk 0, coefficients zeroed. */
    coef[0] = coef[1] = 5;
    assert_int_equal(basin_affine_fit_group(ds, NULL, 0, &sq, 1, &fit, coef), BASIN_OK);
    assert_true(fit.risk_sum == 0.0 && fit.exact == 1 && fit.attained == 1);
    assert_true(coef[0] == 0.0 && coef[1] == 0.0);
    double risk;
    assert_int_equal(basin_linear_fit_risk(ds, &sq, 1, -1.0, &risk, NULL, NULL), BASIN_EINVAL);
    basin_dataset_free(ds);
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
    basin_dataset *ds = noisy_binary(20, 2);
    basin_loss_kind kinds[4] = {BASIN_LOSS_SQUARED, BASIN_LOSS_LOGISTIC, BASIN_LOSS_ABSOLUTE,
                                BASIN_LOSS_HINGE};
    for (int t = 0; t < 4; t++) {
        basin_loss loss = loss_of(kinds[t]);
        basin_affine_fit ref, fit;
        assert_int_equal(basin_affine_fit_group(ds, NULL, 20, &loss, 1, &ref, NULL), BASIN_OK);
        int ok = 0, nomem = 0;
        for (long k = 0; k < 100 && !ok; k++) {
            basin_set_allocator(&a);
            alloc_countdown = k;
            int rc = basin_affine_fit_group(ds, NULL, 20, &loss, 1, &fit, NULL);
            alloc_countdown = -1;
            basin_set_allocator(NULL);
            if (rc == BASIN_OK) {
                ok = 1;
                assert_true(fit.risk_sum == ref.risk_sum);
            } else {
                assert_int_equal(rc, BASIN_ENOMEM);
                assert_true(fit.risk_sum == 0.0);
                nomem++;
            }
        }
        assert_true(ok);
        assert_true(nomem >= 3);
    }
    basin_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squared_normal_equations),
        cmocka_unit_test(test_perfectly_linear),
        cmocka_unit_test(test_xor_least_squares),
        cmocka_unit_test(test_rank_deficient),
        cmocka_unit_test(test_index_selection),
        cmocka_unit_test(test_logistic_non_separable),
        cmocka_unit_test(test_one_hot_closed_forms),
        cmocka_unit_test(test_logistic_separable),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_cg_separable),
        cmocka_unit_test(test_huber_brute_force),
        cmocka_unit_test(test_absolute_exact_reference),
        cmocka_unit_test(test_hinge_exact_reference),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
