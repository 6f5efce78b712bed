/* Unit tests of basin_net_hvp (exact Hessian-vector products by the R-operator): against
 * central differences of the exact gradient on every net of the gradient-check catalogue,
 * symmetry vᵀ(Hw) = wᵀ(Hv), closed-form Hessians (a two-weight deep linear net, whose cross
 * term r·x exercises the δ·R{a} and V_W·δ terms, and logistic regression, which is pure loss
 * curvature), chunking and selection invariance, and that evaluation never allocates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "basin/alloc.h"
#include "basin/net.h"
#include "basin/status.h"
#include "gradcheck.h"
#include "net_int.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            print_error("%s = %.17g vs %s = %.17g (tol %g)\n", #a, a_, #b, b_, (double)(tol));     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define FD_H 1e-5
#define FD_TOL 1e-6
#define MIN_MARGIN 1e-3

static void random_unit(gc_rand *r, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = gc_normal(r);
    double s = gc_norm(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] /= s;
}

static void test_hvp_fd_every_case(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    gc_rand r = {2024};
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        double margin = gc_fixture_margin(&fx, fx.theta);
        assert_true(margin >= MIN_MARGIN);
        size_t n = fx.dim;
        double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
        double *hv = malloc(n * sizeof *hv), *hw = malloc(n * sizeof *hw);
        double *fd = malloc(n * sizeof *fd);
        assert_true(v && w && hv && hw && fd);
        random_unit(&r, v, n);
        random_unit(&r, w, n);
        assert_int_equal(
            basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, v, hv),
            BASIN_OK);
        assert_int_equal(gc_fd_hvp(gc_fixture_risk, &fx, fx.theta, n, v, FD_H, fd), BASIN_OK);
        double err = gc_rel_err(hv, fd, n, 1e-8);
        print_message("%-22s dim %4zu |Hv| %.2e hvp rel err %.1e", cases[c].name, n, gc_norm(fd, n),
                      err);
        assert_true(err <= FD_TOL);
        assert_true(gc_norm(fd, n) > 1e-3); /* a vanishing product would test nothing */
        assert_int_equal(
            basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, w, hw),
            BASIN_OK);
        double a = gc_dot(v, hw, n), b = gc_dot(w, hv, n);
        double scale = gc_norm(hw, n) + gc_norm(hv, n); /* ‖v‖ = ‖w‖ = 1 */
        print_message("  symmetry %.1e\n", fabs(a - b) / scale);
        assert_true(fabs(a - b) <= 1e-12 * scale);
        free(v);
        free(w);
        free(hv);
        free(hw);
        free(fd);
        gc_fixture_teardown(&fx);
    }
}

/* f = w2·w1·x, R = ½(f − y)²: H = [[w2²x², w1w2x² + r·x], [w1w2x² + r·x, w1²x²]], r = f − y. */
static void test_hvp_deep_linear_closed_form(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_DENSE_NB(1), GC_IDENTITY, GC_DENSE_NB(1)};
    basin_arch arch = {1, {1}, 3, layers};
    basin_net *net;
    basin_net_ws *ws;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_ws_create(net, 1, &ws), BASIN_OK);
    double w1 = 1.5, w2 = -0.7, x = 2, y = 0.3, theta[] = {w1, w2};
    double r = w2 * w1 * x - y;
    double H[2][2] = {{w2 * w2 * x * x, w1 * w2 * x * x + r * x},
                      {w1 * w2 * x * x + r * x, w1 * w1 * x * x}};
    basin_dataset ds = {.n = 1, .in_rank = 1, .in_shape = {1}, .in_dim = 1, .y_dim = 1};
    ds.x = &x;
    ds.y = &y;
    basin_loss loss = {BASIN_LOSS_SQUARED, 1};
    for (int j = 0; j < 2; j++) {
        double e[2] = {j == 0, j == 1}, hv[2];
        assert_int_equal(basin_net_hvp(net, ws, theta, &ds, NULL, 1, &loss, e, hv), BASIN_OK);
        assert_near(hv[0], H[0][j], 1e-14);
        assert_near(hv[1], H[1][j], 1e-14);
    }
    basin_net_ws_free(ws);
    basin_net_free(net);
}

/* Logistic regression f = w·x + b: H = (1/n) Σ σ(1−σ) [x;1][x;1]ᵀ. */
static void test_hvp_logistic_closed_form(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_DENSE(1)};
    basin_arch arch = {1, {2}, 1, layers};
    basin_net *net;
    basin_net_ws *ws;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_ws_create(net, 2, &ws), BASIN_OK); /* two chunks */
    double x[] = {0.5, -1, 2, 0.25, -1.5, 1}, y[] = {1, 0, 1}, theta[] = {0.8, -0.4, 0.1};
    basin_dataset ds = {.n = 3, .in_rank = 1, .in_shape = {2}, .in_dim = 2, .y_dim = 1};
    ds.x = x;
    ds.y = y;
    basin_loss loss = {BASIN_LOSS_LOGISTIC, 1};
    double H[3][3] = {{0}};
    for (int i = 0; i < 3; i++) {
        double z = theta[0] * x[2 * i] + theta[1] * x[2 * i + 1] + theta[2];
        double s = 1 / (1 + exp(-z)), u[3] = {x[2 * i], x[2 * i + 1], 1};
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                H[a][b] += s * (1 - s) * u[a] * u[b] / 3;
    }
    for (int j = 0; j < 3; j++) {
        double e[3] = {j == 0, j == 1, j == 2}, hv[3];
        assert_int_equal(basin_net_hvp(net, ws, theta, &ds, NULL, 3, &loss, e, hv), BASIN_OK);
        for (int a = 0; a < 3; a++)
            assert_near(hv[a], H[a][j], 1e-15);
    }
    basin_net_ws_free(ws);
    basin_net_free(net);
}

static void test_hvp_chunking_and_selection(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    gc_rand r = {77};
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        size_t n = fx.dim;
        basin_net_ws *small;
        assert_int_equal(basin_net_ws_create(fx.net, 3, &small), BASIN_OK);
        double *v = malloc(n * sizeof *v), *h1 = malloc(n * sizeof *h1);
        double *h2 = malloc(n * sizeof *h2);
        assert_true(v && h1 && h2);
        random_unit(&r, v, n);
        assert_int_equal(
            basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, v, h1),
            BASIN_OK);
        assert_int_equal(
            basin_net_hvp(fx.net, small, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, v, h2),
            BASIN_OK);
        assert_true(gc_rel_err(h2, h1, n, 1e-300) <= 1e-14);
        /* idx = all samples in order equals idx == NULL; a permutation changes only rounding */
        size_t idx[16];
        for (size_t i = 0; i < fx.ds.n; i++)
            idx[i] = fx.ds.n - 1 - i;
        assert_int_equal(
            basin_net_hvp(fx.net, small, fx.theta, &fx.ds, idx, fx.ds.n, &fx.loss, v, h2),
            BASIN_OK);
        assert_true(gc_rel_err(h2, h1, n, 1e-300) <= 1e-13);
        /* a single sample selection is the Hessian of that sample's loss alone */
        basin_dataset one = fx.ds;
        one.n = 1;
        one.x = fx.ds.x + 2 * fx.ds.in_dim;
        one.y = fx.ds.y + 2 * fx.ds.y_dim;
        idx[0] = 2;
        assert_int_equal(basin_net_hvp(fx.net, small, fx.theta, &fx.ds, idx, 1, &fx.loss, v, h1),
                         BASIN_OK);
        assert_int_equal(basin_net_hvp(fx.net, fx.ws, fx.theta, &one, NULL, 1, &fx.loss, v, h2),
                         BASIN_OK);
        assert_true(gc_rel_err(h2, h1, n, 1e-300) <= 1e-14);
        free(v);
        free(h1);
        free(h2);
        basin_net_ws_free(small);
        gc_fixture_teardown(&fx);
    }
}

/* White-box: the conv kernels work on groups of samples (ws->conv_group, normally as large as
 * the im2col cap allows). Forcing groups of 1 and 2 must not change forward, gradient or Hv. */
static void test_conv_sample_groups(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    gc_rand r = {5150};
    for (size_t c = 0; c < n_cases; c++) {
        if (cases[c].in_rank != 3)
            continue;
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        size_t n = fx.dim, k = basin_net_out_dim(fx.net), N = fx.ds.n;
        double *v = malloc(n * sizeof *v), *g[2], *h[2], *o[2], risk[2];
        assert_non_null(v);
        random_unit(&r, v, n);
        for (int t = 0; t < 2; t++) {
            g[t] = malloc(n * sizeof *g[t]);
            h[t] = malloc(n * sizeof *h[t]);
            o[t] = malloc(N * k * sizeof *o[t]);
            assert_true(g[t] && h[t] && o[t]);
        }
        for (size_t group = 1; group <= 2; group++) {
            basin_net_ws *ws;
            assert_int_equal(basin_net_ws_create(fx.net, N, &ws), BASIN_OK);
            for (size_t l = 0; l < basin_net_layer_count(fx.net); l++) {
                if (basin_net_layer_spec(fx.net, l)->kind != BASIN_LAYER_CONV2D)
                    continue;
                assert_int_equal(ws->conv_group[l], N); /* small nets: one group */
                ws->conv_group[l] = group;
            }
            basin_net_ws *w2[2] = {fx.ws, ws};
            for (int t = 0; t < 2; t++) {
                assert_int_equal(basin_net_forward(fx.net, w2[t], fx.theta, fx.ds.x, N, o[t]),
                                 BASIN_OK);
                assert_int_equal(basin_net_risk_grad(fx.net, w2[t], fx.theta, &fx.ds, NULL, N,
                                                     &fx.loss, &risk[t], g[t]),
                                 BASIN_OK);
                assert_int_equal(
                    basin_net_hvp(fx.net, w2[t], fx.theta, &fx.ds, NULL, N, &fx.loss, v, h[t]),
                    BASIN_OK);
            }
            assert_true(gc_rel_err(o[1], o[0], N * k, 1e-300) <= 1e-14);
            assert_near(risk[1], risk[0], 1e-14 * risk[0]);
            assert_true(gc_rel_err(g[1], g[0], n, 1e-300) <= 1e-14);
            assert_true(gc_rel_err(h[1], h[0], n, 1e-300) <= 1e-14);
            basin_net_ws_free(ws);
        }
        for (int t = 0; t < 2; t++) {
            free(g[t]);
            free(h[t]);
            free(o[t]);
        }
        free(v);
        gc_fixture_teardown(&fx);
    }
}

static void test_hvp_arguments(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    gc_net_fixture fx;
    assert_int_equal(gc_fixture_setup(&cases[0], &fx), BASIN_OK);
    double *v = calloc(fx.dim, sizeof *v), *hv = malloc(fx.dim * sizeof *hv);
    assert_true(v && hv);
    for (size_t i = 0; i < fx.dim; i++)
        hv[i] = 1;
    assert_int_equal(basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, v, hv),
                     BASIN_OK);
    for (size_t i = 0; i < fx.dim; i++)
        assert_near(hv[i], 0.0, 0); /* H·0 = 0: hv is overwritten, not accumulated */
    assert_int_equal(
        basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, NULL, hv),
        BASIN_EINVAL);
    assert_int_equal(
        basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n + 1, &fx.loss, v, hv),
        BASIN_EINVAL);
    free(v);
    free(hv);
    gc_fixture_teardown(&fx);
}

static void *refuse_malloc(size_t size, void *ctx)
{
    (void)size;
    ++*(int *)ctx;
    return NULL;
}

static void *refuse_realloc(void *p, size_t size, void *ctx)
{
    (void)p;
    (void)size;
    ++*(int *)ctx;
    return NULL;
}

static void plain_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

/* Once the workspace exists, forward, risk_grad and hvp run without a single allocation. */
static void test_evaluation_never_allocates(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        basin_net_ws *small;
        assert_int_equal(basin_net_ws_create(fx.net, 3, &small), BASIN_OK);
        size_t k = basin_net_out_dim(fx.net);
        double *g = malloc(fx.dim * sizeof *g), *hv = malloc(fx.dim * sizeof *hv);
        double *o = malloc(fx.ds.n * k * sizeof *o), risk;
        assert_true(g && hv && o);
        int calls = 0;
        basin_allocator refuse = {refuse_malloc, refuse_realloc, plain_free, &calls};
        basin_set_allocator(&refuse);
        int rc1 = basin_net_forward(fx.net, small, fx.theta, fx.ds.x, fx.ds.n, o);
        int rc2 =
            basin_net_risk_grad(fx.net, small, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, &risk, g);
        int rc3 = basin_net_hvp(fx.net, small, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, g, hv);
        basin_set_allocator(NULL);
        assert_int_equal(rc1, BASIN_OK);
        assert_int_equal(rc2, BASIN_OK);
        assert_int_equal(rc3, BASIN_OK);
        assert_int_equal(calls, 0);
        free(g);
        free(hv);
        free(o);
        basin_net_ws_free(small);
        gc_fixture_teardown(&fx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hvp_fd_every_case),
        cmocka_unit_test(test_hvp_deep_linear_closed_form),
        cmocka_unit_test(test_hvp_logistic_closed_form),
        cmocka_unit_test(test_hvp_chunking_and_selection),
        cmocka_unit_test(test_conv_sample_groups),
        cmocka_unit_test(test_hvp_arguments),
        cmocka_unit_test(test_evaluation_never_allocates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
