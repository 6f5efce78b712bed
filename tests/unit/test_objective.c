/* Unit tests of the empirical-risk objective (objective.h): value = risk + (l2/2)‖θ‖² with the
 * l2 term in value, gradient and Hessian-vector product (checked against the net's risk plus a
 * hand-added penalty and against central differences), mini-batch selection, scratch-size
 * independence, argument validation, release semantics and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "basin/alloc.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "gradcheck.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            print_error("%s = %.17g vs %s = %.17g (tol %g)\n", #a, a_, #b, b_, (double)(tol));     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define L2 0.03

static const gc_net_case *find_case(const char *name)
{
    size_t n;
    const gc_net_case *cases = gc_net_cases(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    fail_msg("no case %s", name);
    return NULL;
}

/* The full objective as a gc_value_grad_fn. */
static int obj_full(void *ctx, const double *theta, double *value, double *grad)
{
    const basin_objective *obj = ctx;
    return obj->value_grad(obj->ctx, theta, NULL, 0, value, grad);
}

static void test_value_grad_hvp_with_l2(void **state)
{
    (void)state;
    const char *names[] = {"dense_deep_vector", "cnn_maxpool_ce", "leaky_hinge"};
    gc_rand r = {31};
    for (size_t c = 0; c < 3; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(find_case(names[c]), &fx), BASIN_OK);
        assert_true(gc_fixture_margin(&fx, fx.theta) >= 1e-3);
        basin_objective obj;
        assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, L2, 3, &obj),
                         BASIN_OK);
        size_t n = fx.dim;
        assert_int_equal(obj.dim, n);
        assert_int_equal(obj.n_samples, fx.ds.n);
        assert_non_null(obj.hvp);
        double *g = malloc(n * sizeof *g), *gr = malloc(n * sizeof *gr),
               *fd = malloc(n * sizeof *fd);
        double *v = malloc(n * sizeof *v), *hv = malloc(n * sizeof *hv),
               *hr = malloc(n * sizeof *hr);
        assert_true(g && gr && fd && v && hv && hr);
        double value, risk, sq = gc_dot(fx.theta, fx.theta, n);
        assert_int_equal(obj.value_grad(obj.ctx, fx.theta, NULL, 0, &value, g), BASIN_OK);
        assert_int_equal(gc_fixture_risk(&fx, fx.theta, &risk, gr), BASIN_OK);
        assert_near(value, risk + 0.5 * L2 * sq, 1e-14 * value);
        for (size_t i = 0; i < n; i++)
            gr[i] += L2 * fx.theta[i];
        assert_true(gc_rel_err(g, gr, n, 1e-300) <= 1e-14);
        assert_int_equal(gc_fd_gradient(obj_full, &obj, fx.theta, n, 1e-6, fd), BASIN_OK);
        assert_true(gc_rel_err(g, fd, n, 1e-8) <= 1e-6);
        for (size_t i = 0; i < n; i++)
            v[i] = gc_normal(&r);
        assert_int_equal(obj.hvp(obj.ctx, fx.theta, v, hv), BASIN_OK);
        assert_int_equal(
            basin_net_hvp(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, v, hr),
            BASIN_OK);
        for (size_t i = 0; i < n; i++)
            hr[i] += L2 * v[i];
        assert_true(gc_rel_err(hv, hr, n, 1e-300) <= 1e-14);
        assert_int_equal(gc_fd_hvp(obj_full, &obj, fx.theta, n, v, 1e-5, fd), BASIN_OK);
        assert_true(gc_rel_err(hv, fd, n, 1e-8) <= 1e-6);
        free(g);
        free(gr);
        free(fd);
        free(v);
        free(hv);
        free(hr);
        basin_objective_release(&obj);
        assert_null(obj.ctx);
        assert_null(obj.value_grad);
        gc_fixture_teardown(&fx);
    }
}

static void test_minibatch_and_scratch_size(void **state)
{
    (void)state;
    gc_net_fixture fx;
    assert_int_equal(gc_fixture_setup(find_case("conv_same_odd_even"), &fx), BASIN_OK);
    basin_objective small, all;
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, L2, 1, &small), BASIN_OK);
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, L2, 0, &all), BASIN_OK);
    size_t n = fx.dim;
    double *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2), v1, v2, risk;
    assert_true(g1 && g2);
    assert_int_equal(small.value_grad(small.ctx, fx.theta, NULL, 0, &v1, g1), BASIN_OK);
    assert_int_equal(all.value_grad(all.ctx, fx.theta, NULL, 0, &v2, g2), BASIN_OK);
    assert_near(v1, v2, 1e-14 * v2);
    assert_true(gc_rel_err(g1, g2, n, 1e-300) <= 1e-14);
    /* a mini-batch: mean loss over the batch plus the same l2 term */
    const size_t idx[] = {1, 3};
    assert_int_equal(all.value_grad(all.ctx, fx.theta, idx, 2, &v1, g1), BASIN_OK);
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, idx, 2, &fx.loss, &risk, g2),
        BASIN_OK);
    assert_near(v1, risk + 0.5 * L2 * gc_dot(fx.theta, fx.theta, n), 1e-14 * v1);
    for (size_t i = 0; i < n; i++)
        g2[i] += L2 * fx.theta[i];
    assert_true(gc_rel_err(g1, g2, n, 1e-300) <= 1e-14);
    /* value only */
    assert_int_equal(all.value_grad(all.ctx, fx.theta, idx, 2, &v2, NULL), BASIN_OK);
    assert_near(v1, v2, 1e-15 * v1);
    /* a bad index is reported, not read */
    const size_t bad[] = {0, 99};
    assert_int_equal(all.value_grad(all.ctx, fx.theta, bad, 2, &v2, NULL), BASIN_EINVAL);
    free(g1);
    free(g2);
    basin_objective_release(&small);
    basin_objective_release(&all);
    gc_fixture_teardown(&fx);
}

static void test_arguments_and_release(void **state)
{
    (void)state;
    gc_net_fixture fx;
    assert_int_equal(gc_fixture_setup(find_case("relu_squared"), &fx), BASIN_OK);
    basin_objective obj;
    memset(&obj, 0xAB, sizeof obj);
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, -1.0, 0, &obj),
                     BASIN_EINVAL);
    assert_null(obj.ctx); /* zeroed on failure: releasing it is safe */
    assert_int_equal(obj.dim, 0);
    basin_objective_release(&obj);
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, NAN, 0, &obj),
                     BASIN_EINVAL);
    basin_loss ce = {BASIN_LOSS_CROSS_ENTROPY, 1}; /* needs ≥ 2 outputs */
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &ce, 0, 0, &obj), BASIN_EINVAL);
    fx.ds.y_dim = 2;
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, 0, 0, &obj), BASIN_EINVAL);
    fx.ds.y_dim = 1;
    fx.ds.in_dim = 2;
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, 0, 0, &obj), BASIN_EINVAL);
    fx.ds.in_dim = 3;
    assert_int_equal(basin_objective_empirical(NULL, &fx.ds, &fx.loss, 0, 0, &obj), BASIN_EINVAL);
    /* l2 = 0 is the plain risk */
    double value, risk;
    assert_int_equal(basin_objective_empirical(fx.net, &fx.ds, &fx.loss, 0, 0, &obj), BASIN_OK);
    assert_int_equal(obj.value_grad(obj.ctx, fx.theta, NULL, 0, &value, NULL), BASIN_OK);
    assert_int_equal(gc_fixture_risk(&fx, fx.theta, &risk, NULL), BASIN_OK);
    assert_near(value, risk, 0);
    basin_objective_release(&obj);
    basin_objective_release(&obj); /* zeroed by the first release */
    basin_objective_release(NULL);
    gc_fixture_teardown(&fx);
}

typedef struct fail_alloc {
    long countdown;
} fail_alloc;

static void *fa_malloc(size_t size, void *ctx)
{
    fail_alloc *f = ctx;
    if (f->countdown == 0)
        return NULL;
    if (f->countdown > 0)
        f->countdown--;
    return malloc(size);
}

static void *fa_realloc(void *p, size_t size, void *ctx)
{
    fail_alloc *f = ctx;
    if (f->countdown == 0)
        return NULL;
    if (f->countdown > 0)
        f->countdown--;
    return realloc(p, size);
}

static void fa_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    gc_net_fixture fx;
    assert_int_equal(gc_fixture_setup(find_case("cnn_maxpool_ce"), &fx), BASIN_OK);
    fail_alloc fa;
    basin_allocator al = {fa_malloc, fa_realloc, fa_free, &fa};
    int ok = 0;
    for (long n = 0; n < 30 && !ok; n++) {
        basin_objective obj;
        fa.countdown = n;
        basin_set_allocator(&al);
        int rc = basin_objective_empirical(fx.net, &fx.ds, &fx.loss, L2, 2, &obj);
        basin_set_allocator(NULL);
        if (rc == BASIN_OK) {
            ok = 1;
            assert_true(n >= 2);
        } else {
            assert_int_equal(rc, BASIN_ENOMEM);
            assert_null(obj.ctx);
        }
        basin_objective_release(&obj);
    }
    assert_true(ok);
    gc_fixture_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_grad_hvp_with_l2),
        cmocka_unit_test(test_minibatch_and_scratch_size),
        cmocka_unit_test(test_arguments_and_release),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
