/* Tests of the certification module (certify.h) on hand-built end points whose answer is known
 * by construction: all-active least-squares fits (region certificate, R = B = R_lin from normal
 * equations solved here), a stationary saddle whose Hessian is compared with a finite-difference
 * Hessian of a risk written here, a dead unit, a kink sitting exactly on a data point (bounds
 * worked out by hand), a boundary saddle that only the probes can expose, a tied max-pool
 * window, an absolute-loss point where the approximate affine fit must not certify, weight
 * decay, option checks, polish, and allocation-failure sweeps (failing_alloc.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/certify.h"
#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/status.h"
#include "failing_alloc.h"

#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)

static void assert_near_at(double a, double b, double tol, const char *expr, const char *file,
                           int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s = %.17g, expected %.17g within %.3g\n", expr, a, b, tol);
        _fail(file, line);
    }
}

/* ---- builders ---- */

static basin_layer_spec dense(size_t units)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_DENSE;
    s.units = units;
    s.bias = 1;
    return s;
}

static basin_layer_spec act(basin_act_kind kind, double slope)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_ACTIVATION;
    s.act = kind;
    s.slope = slope;
    return s;
}

static basin_net *make_net(size_t in_rank, const size_t *in_shape, const basin_layer_spec *layers,
                           size_t n_layers)
{
    basin_arch arch;
    memset(&arch, 0, sizeof arch);
    arch.in_rank = in_rank;
    for (size_t i = 0; i < in_rank; i++)
        arch.in_shape[i] = in_shape[i];
    arch.n_layers = n_layers;
    arch.layers = layers;
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    return net;
}

static basin_dataset *make_ds(size_t n, size_t d, const double *x, const double *y)
{
    basin_dataset *ds = NULL;
    size_t shape[1] = {d};
    assert_int_equal(basin_dataset_create(n, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, n * d * sizeof *x);
    memcpy(ds->y, y, n * sizeof *y);
    return ds;
}

static basin_loss squared(void)
{
    basin_loss l = {BASIN_LOSS_SQUARED, 1.0};
    return l;
}

static basin_certify_opts quiet_opts(void)
{
    basin_certify_opts o;
    basin_certify_defaults(&o);
    o.polish = 0;
    return o;
}

/* ---- a 2-D dataset no affine map fits, and its least-squares fit by normal equations ---- */

#define N2 10

static void data2d(double *x, double *y)
{
    for (size_t i = 0; i < N2; i++) {
        double a = -1.0 + 2.0 * (double)i / (N2 - 1), b = 0.8 * sin(2.1 * (double)i);
        x[2 * i] = a;
        x[2 * i + 1] = b;
        y[i] = a * a - 0.5 * b * b + 0.3 * a * b;
    }
}

/* Solve the 3×3 system M a = r by Cramer's rule. */
static void solve3(const double M[9], const double r[3], double a[3])
{
    double det = M[0] * (M[4] * M[8] - M[5] * M[7]) - M[1] * (M[3] * M[8] - M[5] * M[6]) +
                 M[2] * (M[3] * M[7] - M[4] * M[6]);
    for (int k = 0; k < 3; k++) {
        double T[9];
        memcpy(T, M, sizeof T);
        for (int i = 0; i < 3; i++)
            T[3 * i + k] = r[i];
        a[k] = (T[0] * (T[4] * T[8] - T[5] * T[7]) - T[1] * (T[3] * T[8] - T[5] * T[6]) +
                T[2] * (T[3] * T[7] - T[4] * T[6])) /
               det;
    }
}

/* a = (A1, A2, b) minimising ½Σ(A·x + b − y)²; returns R_lin = that minimum / N. */
static double lsq2d(const double *x, const double *y, double a[3])
{
    double M[9] = {0}, r[3] = {0};
    for (size_t i = 0; i < N2; i++) {
        double z[3] = {x[2 * i], x[2 * i + 1], 1.0};
        for (int p = 0; p < 3; p++) {
            r[p] += z[p] * y[i];
            for (int q = 0; q < 3; q++)
                M[3 * p + q] += z[p] * z[q];
        }
    }
    solve3(M, r, a);
    double s = 0;
    for (size_t i = 0; i < N2; i++) {
        double e = a[0] * x[2 * i] + a[1] * x[2 * i + 1] + a[2] - y[i];
        s += 0.5 * e * e;
    }
    return s / N2;
}

/* 2-3-1 ReLU net, every unit active (biases 10), output = the least-squares affine fit. */
static void lsq_net_theta(const double a[3], double th[13])
{
    const double W1[6] = {1, 0, 0, 1, 1, 1};
    memcpy(th, W1, sizeof W1);
    th[6] = th[7] = th[8] = 10.0;
    th[9] = a[0] - 0.5;
    th[10] = a[1] - 0.5;
    th[11] = 0.5;
    th[12] = a[2] - 10.0 * (th[9] + th[10] + th[11]);
}

static basin_net *net_231(void)
{
    static const size_t in[1] = {2};
    basin_layer_spec L[3] = {dense(3), act(BASIN_ACT_RELU, 0), dense(1)};
    return make_net(1, in, L, 3);
}

static void test_region_one_hidden(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3], th[13];
    data2d(x, y);
    double rlin = lsq2d(x, y, a);
    assert_true(rlin > 1e-3); /* no affine map fits the data */
    lsq_net_theta(a, th);
    basin_net *net = net_231();
    basin_dataset *ds = make_ds(N2, 2, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_REGION_CERTIFICATE);
    assert_string_equal(basin_decider_name(c->decided_by), "region_certificate");
    assert_near(c->risk, rlin, 1e-12);
    assert_near(c->region.bound, rlin, 1e-12);
    assert_int_equal(c->region.n_groups, 1);
    assert_int_equal(c->region.groups[0].n_samples, N2);
    assert_near(c->region.groups[0].risk_sum, N2 * rlin, 1e-11);
    assert_true(c->region.exact);
    assert_true(c->grad_norm <= 1e-10);
    assert_true(c->stationary);
    /* smallest pre-activation is 10 − 2 = 8 at |x| ≤ 1, scale ‖(x, 1)‖ ≤ √3 */
    assert_true(c->margin > 8.0 / sqrt(3.0) - 1e-9);
    assert_int_equal(c->n_boundary, 0);
    assert_int_equal(c->symmetry_zero_modes, 3);
    assert_true(c->exact.applicable && c->exact.ran && c->exact.holds);
    assert_near(c->exact.value, rlin, 1e-12);
    assert_int_equal(c->curvature.ran, 0); /* certified: skipped */
    assert_int_equal(c->n_probe_levels, 0);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_region_two_hidden(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3];
    data2d(x, y);
    double rlin = lsq2d(x, y, a);
    static const size_t in[1] = {2};
    basin_layer_spec L[5] = {dense(3), act(BASIN_ACT_RELU, 0), dense(2), act(BASIN_ACT_RELU, 0),
                             dense(1)};
    basin_net *net = make_net(1, in, L, 5);
    assert_int_equal(basin_net_param_count(net), 9 + 8 + 3);
    /* h1 = W1 x + 10 (all > 0); h2_1 = 2x1 + x2 + 20, h2_2 = −0.5x1 + 0.5x2 + 5 (both > 0) */
    double th[20] = {1, 0, 0, 1, 1, 1, 10, 10, 10, 1, 0, 1, 0, 1, -0.5, 0, 0};
    double u2 = (2.0 * a[1] - a[0]) / 1.5, u1 = a[1] - 0.5 * u2;
    th[17] = u1;
    th[18] = u2;
    th[19] = a[2] - 20.0 * u1 - 5.0 * u2;
    basin_dataset *ds = make_ds(N2, 2, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_REGION_CERTIFICATE);
    assert_near(c->risk, rlin, 1e-12);
    assert_near(c->region.bound, rlin, 1e-12);
    assert_int_equal(c->region.n_groups, 1);
    assert_int_equal(c->exact.applicable, 0); /* two hidden layers */
    assert_int_equal(c->symmetry_zero_modes, 3 + 2);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- 1-D one-hidden-layer nets with a risk written here ---- */

/* ½-squared risk of f(x) = Σ_j v_j relu(w_j x + b_j) + c, θ = (w[H], b[H], v[H], c). */
static double risk_1d(const double *th, size_t H, const double *x, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double f = th[3 * H];
        for (size_t j = 0; j < H; j++)
            f += th[2 * H + j] * fmax(0.0, th[j] * x[i] + th[H + j]);
        s += 0.5 * (f - y[i]) * (f - y[i]);
    }
    return s / (double)n;
}

static basin_net *net_1h1(size_t H)
{
    static const size_t in[1] = {1};
    basin_layer_spec L[3] = {dense(H), act(BASIN_ACT_RELU, 0), dense(1)};
    return make_net(1, in, L, 3);
}

static void test_saddle_curvature(void **state)
{
    (void)state;
    /* r = y − 5 = (−1, 2, −1): Σr = 0 and Σ_{x>0} r x = 0, so v = 0, c = 5 is stationary, but
     * ∂²R/∂v∂b = −(1/3)Σ_{x>0} r = −1/3 ≠ 0 while ∂²R/∂b² = 0: negative curvature. */
    const double x[3] = {-1, 1, 2}, y[3] = {4, 7, 4};
    double th[4] = {1, 0, 0, 5}; /* w, b, v, c */
    basin_net *net = net_1h1(1);
    basin_dataset *ds = make_ds(3, 1, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->label, BASIN_VERDICT_SADDLE);
    assert_int_equal(c->decided_by, BASIN_DECIDED_NEGATIVE_CURVATURE);
    assert_true(c->grad_norm <= 1e-14);
    assert_int_equal(c->n_boundary, 0);
    assert_true(c->exact.ran && !c->exact.not_minimum); /* v = 0: the exact test cannot say */
    /* finite-difference Hessian of the risk written above, then LAPACK */
    double H[16], w[4], h = 1e-4, R0 = risk_1d(th, 1, x, y, 3);
    assert_near(c->risk, R0, 1e-15);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double t[4], f[4];
            const double si[4] = {1, 1, -1, -1}, sj[4] = {1, -1, 1, -1};
            for (int k = 0; k < 4; k++) {
                memcpy(t, th, sizeof t);
                t[i] += si[k] * h;
                t[j] += sj[k] * h;
                f[k] = risk_1d(t, 1, x, y, 3);
            }
            H[4 * i + j] = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h);
        }
    double Hc[16];
    memcpy(Hc, H, sizeof H);
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', 4, Hc, 4, w), 0);
    assert_true(w[0] < -0.05);
    assert_near(c->curvature.lambda_min, w[0], 1e-5);
    assert_near(c->curvature.lambda_max, w[3], 1e-5);
    assert_true(c->curvature.dense);
    assert_near(c->curvature.dense_lambda_min, w[0], 1e-5);
    assert_int_equal(c->curvature.near_zero_eigs, 1); /* the w row is zero (v = 0) */
    assert_int_equal(c->symmetry_zero_modes, 1);
    /* the escape direction: unit, dᵀHd = λ_min, and R falls both ways along it */
    assert_non_null(c->descent);
    assert_int_equal(c->descent_from, BASIN_DECIDED_NEGATIVE_CURVATURE);
    double dHd = 0, dd = 0;
    for (int i = 0; i < 4; i++) {
        dd += c->descent[i] * c->descent[i];
        for (int j = 0; j < 4; j++)
            dHd += c->descent[i] * H[4 * i + j] * c->descent[j];
    }
    assert_near(dd, 1.0, 1e-12);
    assert_near(dHd, w[0], 1e-5);
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        double t[4];
        for (int i = 0; i < 4; i++)
            t[i] = th[i] + sgn * 1e-3 * c->descent[i];
        assert_true(risk_1d(t, 1, x, y, 3) < R0);
    }
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_dead_units(void **state)
{
    (void)state;
    const double x[6] = {-1, -0.6, -0.2, 0.2, 0.6, 1}, y[6] = {1, 0.2, 0.1, 0.3, 0.5, 1.2};
    double th[10] = {1, -1, 1, 5, 5, -100, 0.3, 0.4, 0.7, 0.1};
    basin_net *net = net_1h1(3);
    basin_dataset *ds = make_ds(6, 1, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    o.probes = 0;
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->n_dead_layers, 1);
    assert_int_equal(c->dead_units[0].layer, 1);
    assert_int_equal(c->dead_units[0].units, 3);
    assert_int_equal(c->dead_units[0].n_dead, 1);
    assert_int_equal(c->dead_units[0].dead[0], 2);
    assert_int_equal(c->symmetry_zero_modes, 2);
    basin_certificate_free(c);
    basin_net_free(net);
    /* leaky ReLU: no unit has zero output and zero derivative */
    static const size_t in[1] = {1};
    basin_layer_spec L[3] = {dense(3), act(BASIN_ACT_LEAKY_RELU, 0.1), dense(1)};
    net = make_net(1, in, L, 3);
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->n_dead_layers, 0);
    assert_int_equal(c->symmetry_zero_modes, 3);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_kink_on_data_point(void **state)
{
    (void)state;
    /* f = relu(x): constant 0 on {−2, −1, 0} (residuals −0.1, 0.1, 0), exact on {1, 2}. The
     * kink sits on the sample x = 0. R = ½(0.01 + 0.01)/5 = 0.002. Assignments of that pair:
     *  negative side: groups {−2,−1,0} (best line SSE 0.015) and {1,2} (0): B = 0.0015;
     *                 slopes-fixed problem: constant on the left (SSE 0.02) → E = 0.002;
     *  positive side: groups {−2,−1} and {0,1,2}, both exact: B = 0; E = 0.002 again. */
    const double x[5] = {-2, -1, 0, 1, 2}, y[5] = {0.1, -0.1, 0, 1, 2};
    double th[4] = {1, 0, 1, 0};
    basin_net *net = net_1h1(1);
    basin_dataset *ds = make_ds(5, 1, x, y);
    basin_loss loss = squared();
    basin_certify_opts o;
    basin_certify_defaults(&o);
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_near(c->risk, 0.002, 1e-15);
    assert_int_equal(c->n_boundary, 1);
    assert_int_equal(c->n_boundary_listed, 1);
    assert_int_equal(c->boundary_pairs[0].layer, 1);
    assert_int_equal(c->boundary_pairs[0].sample, 2);
    assert_int_equal(c->boundary_pairs[0].unit, 0);
    assert_true(c->has_margin);
    assert_near(c->margin, 0.0, 0.0);
    assert_int_equal(c->margin_at.sample, 2);
    assert_true(c->label == BASIN_VERDICT_CERTIFIED_MINIMUM ||
                c->label == BASIN_VERDICT_LIKELY_MINIMUM);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_BOUNDARY_CERTIFICATE);
    /* the group bound fails on the first assignment (negative side) */
    assert_true(c->region.boundary_ran);
    assert_int_equal(c->region.boundary_total, 2);
    assert_int_equal(c->region.boundary_evaluated, 1);
    assert_near(c->region.boundary_bound, 0.0015, 1e-12);
    assert_false(c->region.boundary_holds);
    assert_false(c->region.holds);
    /* the exact form holds on both */
    assert_true(c->exact.boundary_ran);
    assert_int_equal(c->exact.boundary_total, 2);
    assert_int_equal(c->exact.boundary_evaluated, 2);
    assert_near(c->exact.boundary_value, 0.002, 1e-12);
    assert_true(c->exact.boundary_holds);
    assert_int_equal(c->curvature.ran, 0);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_two_kinks_on_data_points(void **state)
{
    (void)state;
    /* f = relu(x) − relu(x − 4) on x = −3..7: pieces 0, x, 4. Interior samples carry noise
     * (0.1, −0.2, 0.1) with Σr = Σr·x = 0 on every piece; the kink samples x = 0 and x = 4 lie
     * exactly on both neighbouring lines. Whichever side each kink sample takes, every group's
     * least-squares line stays the network's piece, so B = R for all four assignments. */
    double x[11], y[11];
    const double noise[3] = {0.1, -0.2, 0.1};
    for (int i = 0; i < 11; i++) {
        x[i] = i - 3;
        double f = fmax(0.0, x[i]) - fmax(0.0, x[i] - 4);
        int interior = i != 3 && i != 7;
        y[i] = f + (interior ? noise[(i < 3 ? i : i < 7 ? i - 4 : i - 8)] : 0.0);
    }
    double th[7] = {1, 1, 0, -4, 1, -1, 0};
    basin_net *net = net_1h1(2);
    basin_dataset *ds = make_ds(11, 1, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    double R = 3 * 0.5 * (0.01 + 0.04 + 0.01) / 11;
    assert_near(c->risk, R, 1e-15);
    assert_true(c->grad_norm <= 1e-14);
    assert_int_equal(c->n_boundary, 2);
    assert_int_equal(c->boundary_pairs[0].sample, 3);
    assert_int_equal(c->boundary_pairs[0].unit, 0);
    assert_int_equal(c->boundary_pairs[1].sample, 7);
    assert_int_equal(c->boundary_pairs[1].unit, 1);
    assert_int_equal(c->region.n_groups, 3);
    assert_true(c->region.boundary_ran);
    assert_int_equal(c->region.boundary_total, 4);
    assert_int_equal(c->region.boundary_evaluated, 4);
    assert_near(c->region.boundary_bound, R, 1e-14);
    assert_true(c->region.boundary_holds);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_BOUNDARY_CERTIFICATE);
    assert_int_equal(c->exact.boundary_total, 4);
    assert_int_equal(c->exact.boundary_evaluated, 4);
    assert_near(c->exact.boundary_value, R, 1e-14);
    assert_true(c->exact.boundary_holds);
    basin_certificate_free(c);
    /* move the first kink sample off both lines: the assignment that puts it with the left
     * group now fits it better than the network does, so the bound fails */
    ds->y[3] = 0.3;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_false(c->region.boundary_holds);
    assert_int_not_equal(c->decided_by, BASIN_DECIDED_BOUNDARY_CERTIFICATE);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_probe_escape_at_boundary(void **state)
{
    (void)state;
    /* r = y − 5 = (−0.5, −0.5, 2, −1): Σr = 0, Σ_{x>0} r x = 0, so v = 0, c = 5 is stationary;
     * the sample x = 0 sits on the kink (no curvature test), and the (b, v) plane has
     * negative curvature, so descent from a small perturbation escapes. */
    const double x[4] = {-1, 0, 1, 2}, y[4] = {4.5, 4.5, 7, 4};
    double th[4] = {1, 0, 0, 5};
    basin_net *net = net_1h1(1);
    basin_dataset *ds = make_ds(4, 1, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    double R0 = risk_1d(th, 1, x, y, 4);
    assert_near(c->risk, R0, 1e-15);
    assert_int_equal(c->n_boundary, 1);
    assert_int_equal(c->curvature.ran, 0);
    assert_int_equal(c->label, BASIN_VERDICT_SADDLE);
    assert_int_equal(c->decided_by, BASIN_DECIDED_ESCAPE_PROBE);
    assert_int_equal(c->n_probe_levels, 3);
    assert_near(c->probes[0].radius, 1e-3, 0);
    assert_near(c->probes[0].radius_abs, 1e-3 * sqrt(26.0), 1e-15);
    assert_int_equal(c->probes[0].tried, 8);
    assert_true(c->probes[0].escaped >= 1);
    assert_non_null(c->witness);
    assert_near(c->witness_radius, 1e-3, 0);
    double Rw = risk_1d(c->witness, 1, x, y, 4);
    assert_near(c->witness_risk, Rw, 1e-14);
    assert_true(Rw < R0 - 1e-9);
    assert_true(c->probes[0].best_risk <= Rw);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_maxpool_tie(void **state)
{
    (void)state;
    /* input [1,2,4]; 1×1 conv with 2 filters (x + 10: alive; x − 100: dead), ReLU, 2×2 max
     * pooling, dense(1). Sample 0's first window holds 11, 11, 10, 10: a tie of live entries.
     * The dead channel's windows are ties of frozen zeros: no boundary. */
    static const size_t in[3] = {1, 2, 4};
    basin_layer_spec L[5];
    memset(L, 0, sizeof L);
    L[0].kind = BASIN_LAYER_CONV2D;
    L[0].filters = 2;
    L[0].kernel = 1;
    L[0].stride = 1;
    L[0].bias = 1;
    L[1] = act(BASIN_ACT_RELU, 0);
    L[2].kind = BASIN_LAYER_MAXPOOL;
    L[2].size = 2;
    L[3].kind = BASIN_LAYER_FLATTEN;
    L[4] = dense(1);
    basin_net *net = make_net(3, in, L, 5);
    assert_int_equal(basin_net_param_count(net), 4 + 4 + 1);
    double th[9] = {1, 1, 10, -100, 0.5, -0.25, 0.125, 1, 0.3};
    const double x[16] = {1, 1, 3, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 4}, y[2] = {1, 2};
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(2, 3, in, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, sizeof x);
    memcpy(ds->y, y, sizeof y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    o.probes = 0;
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->n_boundary, 1);
    assert_int_equal(c->boundary_pairs[0].layer, 2);
    assert_int_equal(c->boundary_pairs[0].sample, 0);
    assert_int_equal(c->boundary_pairs[0].unit, 0);
    assert_near(c->margin, 0.0, 0.0);
    assert_int_equal(c->margin_at.layer, 2);
    assert_int_equal(c->n_dead_layers, 1);
    assert_int_equal(c->dead_units[0].units, 2); /* channels */
    assert_int_equal(c->dead_units[0].n_dead, 1);
    assert_int_equal(c->dead_units[0].dead[0], 1);
    assert_int_equal(c->symmetry_zero_modes, 1);
    /* two samples with different argmax patterns; the tie enumerates 2 assignments */
    assert_int_equal(c->region.n_groups, 2);
    assert_true(c->region.boundary_ran);
    assert_int_equal(c->region.boundary_total, 2);
    basin_certificate_free(c);
    /* without the tie (sample 0's first window 12, 11, 10, 10) every margin is positive; the
     * smallest is sample 1's window 0 gap 1 over ‖(x, 1)‖ = √(4 + 1 + 16 + 1) */
    ds->x[0] = 2;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->n_boundary, 0);
    assert_near(c->margin, 1.0 / sqrt(22.0), 1e-15);
    assert_int_equal(c->margin_at.layer, 2);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_absolute_loss_not_certified(void **state)
{
    (void)state;
    /* f ≡ 0 (w = 0, b = 10, v = 1, c = −10) on y = (1, −1, −1, 1) at x = (−3, −1, 1, 3): the
     * residual signs sum to 0 against 1 and x, so this is a least-absolute-deviations minimum
     * with gradient exactly 0. linfit's absolute fit is approximate: its risk_sum is an upper
     * bound, so the region bound must not certify, whatever R − B says. */
    const double x[4] = {-3, -1, 1, 3}, y[4] = {1, -1, -1, 1};
    double th[4] = {0, 10, 1, -10};
    basin_net *net = net_1h1(1);
    basin_dataset *ds = make_ds(4, 1, x, y);
    basin_loss loss = {BASIN_LOSS_ABSOLUTE, 1.0};
    basin_certify_opts o = quiet_opts();
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_near(c->risk, 1.0, 0.0);
    assert_near(c->grad_norm, 0.0, 0.0);
    assert_true(c->region.ran);
    assert_int_equal(c->region.n_groups, 1);
    assert_false(c->region.exact);
    assert_false(c->region.holds);
    assert_int_equal(c->exact.applicable, 0);
    assert_int_not_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->label, BASIN_VERDICT_LIKELY_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_PROBES_NO_ESCAPE);
    assert_true(c->curvature.ran);
    assert_null(c->witness);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_weight_decay_skips_bounds(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3], th[13];
    data2d(x, y);
    lsq2d(x, y, a);
    lsq_net_theta(a, th);
    basin_net *net = net_231();
    basin_dataset *ds = make_ds(N2, 2, x, y);
    basin_loss loss = squared();
    basin_certify_opts o = quiet_opts();
    o.probes = 0;
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 1e-3, th, &o, &c), BASIN_OK);
    assert_int_equal(c->region.ran, 0);
    assert_int_equal(c->exact.applicable, 0);
    assert_int_not_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    /* R includes (l2/2)‖θ‖² */
    double sq = 0;
    for (int i = 0; i < 13; i++)
        sq += th[i] * th[i];
    double rlin = lsq2d(x, y, a);
    assert_near(c->risk, rlin + 0.5e-3 * sq, 1e-12);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_polish(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3], th[13], th0[13];
    data2d(x, y);
    double rlin = lsq2d(x, y, a);
    lsq_net_theta(a, th);
    for (int i = 0; i < 13; i++)
        th[i] += 1e-3 * sin(1.0 + i);
    memcpy(th0, th, sizeof th);
    basin_net *net = net_231();
    basin_dataset *ds = make_ds(N2, 2, x, y);
    basin_loss loss = squared();
    basin_certificate *c = NULL;
    /* polish off: the perturbed point is not stationary */
    basin_certify_opts o = quiet_opts();
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_int_equal(c->label, BASIN_VERDICT_NOT_CONVERGED);
    assert_int_equal(c->decided_by, BASIN_DECIDED_STATIONARITY);
    assert_false(c->polish.ran);
    assert_memory_equal(th, th0, sizeof th);
    basin_certificate_free(c);
    /* polish on: the convex one-hidden-layer solve lands on the least-squares fit */
    basin_certify_defaults(&o);
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_true(c->polish.ran && c->polish.accepted);
    assert_string_equal(c->polish.method, "one_hidden_layer_convex");
    assert_false(c->polish.pattern_changed);
    assert_true(c->polish.grad_after <= 1e-10);
    assert_near(c->polish.risk_after, rlin, 1e-12);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    double mv = 0;
    for (int i = 0; i < 13; i++)
        mv += (th[i] - th0[i]) * (th[i] - th0[i]);
    assert_near(c->polish.moved, sqrt(mv), 1e-15);
    assert_true(c->polish.moved > 0);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_polish_lbfgs_two_hidden(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3];
    data2d(x, y);
    double rlin = lsq2d(x, y, a);
    static const size_t in[1] = {2};
    basin_layer_spec L[5] = {dense(3), act(BASIN_ACT_RELU, 0), dense(2), act(BASIN_ACT_RELU, 0),
                             dense(1)};
    basin_net *net = make_net(1, in, L, 5);
    double th[20] = {1, 0, 0, 1, 1, 1, 10, 10, 10, 1, 0, 1, 0, 1, -0.5, 0, 0};
    double u2 = (2.0 * a[1] - a[0]) / 1.5, u1 = a[1] - 0.5 * u2;
    th[17] = u1;
    th[18] = u2;
    th[19] = a[2] - 20.0 * u1 - 5.0 * u2;
    for (int i = 0; i < 20; i++)
        th[i] += 1e-4 * cos(2.0 * i);
    basin_dataset *ds = make_ds(N2, 2, x, y);
    basin_loss loss = squared();
    basin_certify_opts o;
    basin_certify_defaults(&o);
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &o, &c), BASIN_OK);
    assert_true(c->polish.accepted);
    assert_string_equal(c->polish.method, "lbfgs");
    assert_true(c->polish.grad_after < c->polish.grad_before);
    assert_true(c->grad_norm <= 1e-6);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_int_equal(c->decided_by, BASIN_DECIDED_REGION_CERTIFICATE);
    assert_near(c->risk, rlin, 1e-11);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_options_and_names(void **state)
{
    (void)state;
    basin_certify_opts o;
    basin_certify_defaults(&o);
    assert_near(o.grad_tol, 1e-6, 0);
    assert_near(o.cert_tol, 1e-9, 0);
    assert_near(o.curv_tol, 1e-6, 0);
    assert_near(o.margin_tol, 1e-9, 0);
    assert_int_equal(o.max_boundary_pairs, 16);
    assert_int_equal(o.polish, 1);
    assert_near(o.polish_grad_tol, 1e-10, 0);
    assert_int_equal(o.probes, 8);
    assert_int_equal(o.n_radii, 3);
    assert_near(o.radii[0], 1e-3, 0);
    assert_near(o.radii[2], 1e-1, 0);
    assert_int_equal(o.probe_steps, 200);
    assert_int_equal(basin_certify_check_opts(&o), BASIN_OK);
    basin_certify_opts b = o;
    b.cert_tol = -1;
    assert_int_equal(basin_certify_check_opts(&b), BASIN_EINVAL);
    b = o;
    b.margin_tol = NAN;
    assert_int_equal(basin_certify_check_opts(&b), BASIN_EINVAL);
    b = o;
    b.max_boundary_pairs = BASIN_CERTIFY_MAX_BOUNDARY + 1;
    assert_int_equal(basin_certify_check_opts(&b), BASIN_EINVAL);
    b = o;
    b.n_radii = BASIN_CERTIFY_MAX_RADII + 1;
    assert_int_equal(basin_certify_check_opts(&b), BASIN_EINVAL);
    b = o;
    b.radii[1] = 0;
    assert_int_equal(basin_certify_check_opts(&b), BASIN_EINVAL);
    assert_int_equal(basin_certify_check_opts(NULL), BASIN_EINVAL);
    const char *names[4] = {"certified_minimum", "likely_minimum", "saddle", "not_converged"};
    for (int v = 0; v < 4; v++) {
        basin_verdict back;
        assert_string_equal(basin_verdict_name((basin_verdict)v), names[v]);
        assert_int_equal(basin_verdict_from_name(names[v], &back), BASIN_OK);
        assert_int_equal(back, v);
    }
    basin_verdict back;
    assert_int_equal(basin_verdict_from_name("minimum", &back), BASIN_EINVAL);
    assert_string_equal(basin_decider_name(BASIN_DECIDED_PROBES_NO_ESCAPE), "probes_no_escape");
    assert_string_equal(basin_decider_name(BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER),
                        "exact_one_hidden_layer");
    /* argument errors leave theta and *out alone / NULL */
    basin_net *net = net_1h1(1);
    const double x[2] = {0, 1}, y[2] = {0, 1};
    basin_dataset *ds = make_ds(2, 1, x, y);
    basin_loss loss = squared();
    double th[4] = {1, 0.5, 1, 0};
    basin_certificate *c = (basin_certificate *)&th; /* must be reset to NULL */
    assert_int_equal(basin_certify(NULL, ds, &loss, 0, th, NULL, &c), BASIN_EINVAL);
    assert_null(c);
    assert_int_equal(basin_certify(net, ds, &loss, -1.0, th, NULL, &c), BASIN_EINVAL);
    th[1] = INFINITY;
    assert_int_equal(basin_certify(net, ds, &loss, 0, th, NULL, &c), BASIN_EINVAL);
    th[1] = 0.5;
    b = o;
    b.cert_tol = -1;
    assert_int_equal(basin_certify(net, ds, &loss, 0, th, &b, &c), BASIN_EINVAL);
    basin_loss bad = {BASIN_LOSS_CROSS_ENTROPY, 1.0}; /* needs ≥ 2 outputs */
    assert_int_equal(basin_certify(net, ds, &bad, 0, th, NULL, &c), BASIN_EINVAL);
    assert_null(c);
    basin_certificate_free(NULL);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- allocation failures ---- */

typedef struct sweep_case {
    const basin_net *net;
    const basin_dataset *ds;
    basin_loss loss;
    const double *theta;
    size_t dim;
    basin_certify_opts opts;
} sweep_case;

static int run_certify(void *arg)
{
    sweep_case *s = arg;
    double th[32];
    memcpy(th, s->theta, s->dim * sizeof *th);
    basin_certificate *c = NULL;
    int rc = basin_certify(s->net, s->ds, &s->loss, 0.0, th, &s->opts, &c);
    if (rc == BASIN_OK && !c)
        rc = BASIN_EINVAL;
    basin_certificate_free(c);
    return rc;
}

static void sweep(sweep_case *s)
{
    for (int mode = 0; mode < 2; mode++) {
        failing_alloc_report rep;
        int ok = failing_alloc_sweep(run_certify, s, (failing_alloc_mode)mode, 0, &rep);
        if (!ok)
            print_error("mode %d: bad N %zu rc %d live %ld final %d\n", mode, rep.bad_n, rep.bad_rc,
                        rep.bad_live, rep.final_rc);
        assert_true(ok);
        assert_true(rep.runs >= 20);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    double x[2 * N2], y[N2], a[3], th[13];
    data2d(x, y);
    lsq2d(x, y, a);
    lsq_net_theta(a, th);
    for (int i = 0; i < 13; i++)
        th[i] += 1e-3 * sin(1.0 + i);
    basin_net *net = net_231();
    basin_dataset *ds = make_ds(N2, 2, x, y);
    sweep_case s;
    s.net = net;
    s.ds = ds;
    s.loss = squared();
    s.theta = th;
    s.dim = 13;
    basin_certify_defaults(&s.opts);
    s.opts.check_certified = 1; /* polish, bounds, curvature and probes all run */
    s.opts.probes = 2;
    s.opts.n_radii = 1;
    s.opts.probe_steps = 3;
    sweep(&s);
    basin_dataset_free(ds);
    basin_net_free(net);
    /* the boundary enumeration paths */
    const double xb[5] = {-2, -1, 0, 1, 2}, yb[5] = {0.1, -0.1, 0, 1, 2};
    const double thb[4] = {1, 0, 1, 0};
    net = net_1h1(1);
    ds = make_ds(5, 1, xb, yb);
    sweep_case sb;
    sb.net = net;
    sb.ds = ds;
    sb.loss = squared();
    sb.theta = thb;
    sb.dim = 4;
    basin_certify_defaults(&sb.opts);
    sb.opts.probes = 1;
    sb.opts.n_radii = 1;
    sb.opts.probe_steps = 2;
    sb.opts.check_certified = 1;
    sweep(&sb);
    basin_dataset_free(ds);
    basin_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_one_hidden),
        cmocka_unit_test(test_region_two_hidden),
        cmocka_unit_test(test_saddle_curvature),
        cmocka_unit_test(test_dead_units),
        cmocka_unit_test(test_kink_on_data_point),
        cmocka_unit_test(test_two_kinks_on_data_points),
        cmocka_unit_test(test_probe_escape_at_boundary),
        cmocka_unit_test(test_maxpool_tie),
        cmocka_unit_test(test_absolute_loss_not_certified),
        cmocka_unit_test(test_weight_decay_skips_bounds),
        cmocka_unit_test(test_polish),
        cmocka_unit_test(test_polish_lbfgs_two_hidden),
        cmocka_unit_test(test_options_and_names),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
