/* Certification of trained end points: a 1-4-1 ReLU net trained by gradient descent
 * (basin_train_restart) on a 1-D dataset no CPWL function with four kinks fits. Every restart
 * that training reports converged must, after polish, have ‖∇R‖ ≤ 1e-9 and be certified, with
 * the exact one-hidden-layer value E recomputed here (design built from a forward pass written
 * here, least squares by LAPACK) and the group bound B recomputed here (samples grouped by
 * their on/off pattern, one least-squares line per group in closed form). At least one of them
 * is a minimum the group bound alone cannot certify. A point moved off a minimum fails the
 * exact test, and its descent direction is checked by evaluating the risk written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/certify.h"
#include "basin/data.h"
#include "basin/net.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/train.h"

#define N 16
#define H 4
#define DIM (3 * H + 1)

#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)

static void assert_near_at(double a, double b, double tol, const char *expr, const char *file,
                           int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s = %.17g, expected %.17g within %.3g\n", expr, a, b, tol);
        _fail(file, line);
    }
}

static void dataset(double *x, double *y)
{
    for (int i = 0; i < N; i++) {
        x[i] = -1.0 + 2.0 * i / (N - 1);
        y[i] = x[i] * x[i] + (i % 2 ? 0.1 : -0.1);
    }
}

/* θ = (w[H], b[H], v[H], c): pre-activations and ½-squared risk. */
static double pre(const double *th, int j, double x)
{
    return th[j] * x + th[H + j];
}

static double risk(const double *th, const double *x, const double *y)
{
    double s = 0;
    for (int i = 0; i < N; i++) {
        double f = th[3 * H];
        for (int j = 0; j < H; j++)
            f += th[2 * H + j] * fmax(0.0, pre(th, j, x[i]));
        s += 0.5 * (f - y[i]) * (f - y[i]);
    }
    return s / N;
}

/* E: (1/N) min over (u, β, c) of ½Σ(Σ_j s_ij (u_j x_i + β_j) + c − y_i)², s_ij = [pre > 0]. */
static double exact_value(const double *th, const double *x, const double *y)
{
    const int P = 2 * H + 1;
    double D[N * (2 * H + 1)], b[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < H; j++) {
            double s = pre(th, j, x[i]) > 0 ? 1.0 : 0.0;
            D[i * P + j] = s * x[i];
            D[i * P + H + j] = s;
        }
        D[i * P + 2 * H] = 1.0;
        b[i] = y[i];
    }
    double sv[N];
    lapack_int rank;
    double Dc[N * (2 * H + 1)];
    memcpy(Dc, D, sizeof D);
    assert_int_equal(LAPACKE_dgelsd(LAPACK_ROW_MAJOR, N, P, 1, Dc, P, b, 1, sv, 1e-13, &rank), 0);
    double s = 0;
    for (int i = 0; i < N; i++) {
        double o = 0;
        for (int k = 0; k < P; k++)
            o += D[i * P + k] * b[k];
        s += 0.5 * (o - y[i]) * (o - y[i]);
    }
    return s / N;
}

/* B: samples grouped by their pattern, each group's best line in closed form. */
static double group_bound(const double *th, const double *x, const double *y, size_t *groups)
{
    unsigned pat[N];
    int done[N] = {0};
    for (int i = 0; i < N; i++) {
        pat[i] = 0;
        for (int j = 0; j < H; j++)
            pat[i] |= (pre(th, j, x[i]) > 0 ? 1u : 0u) << j;
    }
    double total = 0;
    *groups = 0;
    for (int i = 0; i < N; i++) {
        if (done[i])
            continue;
        double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int k = i; k < N; k++)
            if (pat[k] == pat[i]) {
                done[k] = 1;
                n++;
                sx += x[k];
                sy += y[k];
            }
        double mx = sx / n, my = sy / n;
        for (int k = i; k < N; k++)
            if (pat[k] == pat[i]) {
                sxx += (x[k] - mx) * (x[k] - mx);
                sxy += (x[k] - mx) * (y[k] - my);
            }
        double slope = n > 1 ? sxy / sxx : 0.0;
        for (int k = i; k < N; k++)
            if (pat[k] == pat[i]) {
                double e = my + slope * (x[k] - mx) - y[k];
                total += 0.5 * e * e;
            }
        (*groups)++;
    }
    return total / N;
}

static basin_net *net_141(void)
{
    basin_layer_spec L[3];
    memset(L, 0, sizeof L);
    L[0].kind = BASIN_LAYER_DENSE;
    L[0].units = H;
    L[0].bias = 1;
    L[1].kind = BASIN_LAYER_ACTIVATION;
    L[1].act = BASIN_ACT_RELU;
    L[2].kind = BASIN_LAYER_DENSE;
    L[2].units = 1;
    L[2].bias = 1;
    basin_arch arch = {1, {1, 0, 0}, 3, L};
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    return net;
}

static void test_trained_minima(void **state)
{
    (void)state;
    double x[N], y[N];
    dataset(x, y);
    basin_net *net = net_141();
    size_t shape[1] = {1};
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(N, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, sizeof x);
    memcpy(ds->y, y, sizeof y);
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_objective obj;
    assert_int_equal(basin_objective_empirical(net, ds, &loss, 0.0, 0, &obj), BASIN_OK);
    basin_train_spec spec;
    basin_train_defaults(&spec);
    spec.optim.lr = 0.05;
    spec.max_steps = 20000;
    spec.grad_tol = 1e-7;
    spec.seed = 7;
    basin_certify_opts opts;
    basin_certify_defaults(&opts);
    size_t converged = 0, bound_inconclusive = 0;
    double keep[DIM];
    int have_keep = 0;
    for (uint64_t r = 0; r < 12; r++) {
        double th[DIM];
        basin_run_result res;
        assert_int_equal(basin_train_restart(&obj, net, &spec, r, th, NULL, &res), BASIN_OK);
        if (res.reason != BASIN_STOP_GRAD_TOL)
            continue; /* training itself says it did not converge */
        converged++;
        basin_certificate *c = NULL;
        assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
        double R = risk(th, x, y), E = exact_value(th, x, y);
        size_t ng;
        double B = group_bound(th, x, y, &ng);
        assert_true(c->grad_norm <= 1e-9);
        assert_near(c->risk, R, 1e-14);
        assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
        assert_true(c->exact.ran && c->exact.exact && c->exact.holds);
        assert_near(c->exact.value, E, 1e-13);
        assert_true(fabs(R - E) <= 1e-12);
        assert_int_equal(c->region.n_groups, ng);
        assert_near(c->region.bound, B, 1e-13);
        if (R > B + 1e-9) {
            bound_inconclusive++;
            assert_int_equal(c->decided_by, BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER);
            assert_false(c->region.holds);
        }
        if (!have_keep && c->n_boundary == 0 && c->margin > 1e-4) {
            memcpy(keep, th, sizeof keep);
            have_keep = 1;
        }
        basin_certificate_free(c);
    }
    assert_true(converged >= 4);
    assert_true(bound_inconclusive >= 1);
    assert_true(have_keep);

    /* a point moved off that minimum, judged without polish */
    double th[DIM];
    for (int i = 0; i < DIM; i++)
        th[i] = keep[i] + 1e-3 * sin(1.0 + 3.0 * i);
    opts.polish = 0;
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
    double R = risk(th, x, y), E = exact_value(th, x, y);
    assert_int_equal(c->label, BASIN_VERDICT_NOT_CONVERGED);
    assert_true(c->exact.ran);
    assert_near(c->exact.value, E, 1e-13);
    assert_true(R > E + 1e-9);
    assert_true(c->exact.not_minimum);
    assert_true(c->exact.descent_verified);
    assert_non_null(c->descent);
    assert_int_equal(c->descent_from, BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER);
    double nd = 0;
    for (int i = 0; i < DIM; i++)
        nd += c->descent[i] * c->descent[i];
    assert_near(nd, 1.0, 1e-12);
    /* v is held fixed along the direction */
    for (int j = 0; j < H; j++)
        assert_near(c->descent[2 * H + j], 0.0, 0.0);
    for (double eps = 1e-6; eps <= 1e-4; eps *= 10) {
        double t[DIM];
        for (int i = 0; i < DIM; i++)
            t[i] = th[i] + eps * c->descent[i];
        assert_true(risk(t, x, y) < R);
    }
    basin_certificate_free(c);
    basin_objective_release(&obj);
    basin_dataset_free(ds);
    basin_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trained_minima),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
