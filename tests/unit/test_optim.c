/* Unit tests of the optimizers (optim.c): spec defaults and validation, the step-decay learning
 * rate, and the first updates of GD, heavy-ball, Nesterov and Adam against the torch.optim
 * formulas written out by hand here (scalar arithmetic, one line per formula), plus reset and
 * allocation-failure behaviour of the optimizer state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/optim.h"
#include "basin/status.h"

static void assert_close(double got, double want, double rel)
{
    double tol = rel * fmax(fabs(want), 1e-300);
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (rel tol %g)", got, want, rel);
}

static void test_defaults(void **state)
{
    (void)state;
    basin_optim_spec s;
    basin_optim_defaults(BASIN_OPT_MOMENTUM, 0.05, &s);
    assert_int_equal(s.kind, BASIN_OPT_MOMENTUM);
    assert_true(s.lr == 0.05 && s.momentum == 0.9 && s.batch == 0);
    assert_int_equal(s.schedule, BASIN_SCHEDULE_CONSTANT);
    assert_int_equal(basin_optim_check(&s), BASIN_OK);
    basin_optim_defaults(BASIN_OPT_ADAM, 1e-3, &s);
    assert_true(s.beta1 == 0.9 && s.beta2 == 0.999 && s.eps == 1e-8);
    assert_int_equal(basin_optim_check(&s), BASIN_OK);
    basin_optim_defaults(BASIN_OPT_GD, 0.1, &s);
    assert_true(s.momentum == 0.0);
    assert_int_equal(basin_optim_check(&s), BASIN_OK);
    assert_string_equal(basin_optim_name(BASIN_OPT_GD), "gd");
    assert_string_equal(basin_optim_name(BASIN_OPT_MOMENTUM), "momentum");
    assert_string_equal(basin_optim_name(BASIN_OPT_NESTEROV), "nesterov");
    assert_string_equal(basin_optim_name(BASIN_OPT_ADAM), "adam");
}

static void test_check_rejects(void **state)
{
    (void)state;
    basin_optim_spec s;
    const double bad_lr[] = {0.0, -0.1, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        basin_optim_defaults(BASIN_OPT_GD, bad_lr[i], &s);
        assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    }
    const double bad_mu[] = {1.0, -0.01, 1.5, NAN};
    for (size_t i = 0; i < 4; i++) {
        basin_optim_defaults(BASIN_OPT_NESTEROV, 0.1, &s);
        s.momentum = bad_mu[i];
        assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
        s.kind = BASIN_OPT_MOMENTUM;
        assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    }
    basin_optim_defaults(BASIN_OPT_MOMENTUM, 0.1, &s);
    s.momentum = 0.0;
    assert_int_equal(basin_optim_check(&s), BASIN_OK);

    const double bad_beta[] = {1.0, -0.1, NAN};
    for (size_t i = 0; i < 3; i++) {
        basin_optim_defaults(BASIN_OPT_ADAM, 0.1, &s);
        s.beta1 = bad_beta[i];
        assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
        basin_optim_defaults(BASIN_OPT_ADAM, 0.1, &s);
        s.beta2 = bad_beta[i];
        assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    }
    basin_optim_defaults(BASIN_OPT_ADAM, 0.1, &s);
    s.eps = 0.0;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    s.eps = -1e-8;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);

    basin_optim_defaults(BASIN_OPT_GD, 0.1, &s);
    s.schedule = BASIN_SCHEDULE_STEP;
    s.step_every = 0;
    s.gamma = 0.5;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    s.step_every = 10;
    assert_int_equal(basin_optim_check(&s), BASIN_OK);
    s.gamma = 0.0;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    s.gamma = -0.5;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    s.gamma = NAN;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);

    basin_optim_defaults(BASIN_OPT_GD, 0.1, &s);
    s.kind = (basin_optim_kind)99;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    basin_optim_defaults(BASIN_OPT_GD, 0.1, &s);
    s.schedule = (basin_schedule_kind)7;
    assert_int_equal(basin_optim_check(&s), BASIN_EINVAL);
    assert_int_equal(basin_optim_check(NULL), BASIN_EINVAL);

    basin_optim_state st;
    basin_optim_defaults(BASIN_OPT_ADAM, -1.0, &s);
    assert_int_equal(basin_optim_state_init(&st, &s, 3), BASIN_EINVAL);
    assert_null(st.m);
    assert_null(st.v);
    basin_optim_state_release(&st);
    basin_optim_state_release(NULL);
}

static void test_step_schedule(void **state)
{
    (void)state;
    basin_optim_spec s;
    basin_optim_defaults(BASIN_OPT_GD, 0.1, &s);
    assert_true(basin_optim_lr(&s, 0) == 0.1 && basin_optim_lr(&s, 1000) == 0.1);
    s.schedule = BASIN_SCHEDULE_STEP;
    s.step_every = 3;
    s.gamma = 0.5;
    const double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
    for (size_t t = 0; t < 10; t++)
        assert_close(basin_optim_lr(&s, t), want[t], 1e-15);

    /* The rate in force at update t is used: θ moves by 0.1, 0.1, 0.1, 0.05 with g = 1. */
    basin_optim_state st;
    double theta = 0.0, g = 1.0;
    assert_int_equal(basin_optim_state_init(&st, &s, 1), BASIN_OK);
    const double pos[] = {-0.1, -0.2, -0.3, -0.35, -0.4};
    for (size_t t = 0; t < 5; t++) {
        basin_optim_step(&st, &theta, &g);
        assert_close(theta, pos[t], 1e-14);
    }
    assert_int_equal(st.t, 5);
    basin_optim_state_release(&st);
}

/* The same gradient sequence for every test below (the updates do not depend on θ). */
static const double G[3][2] = {{0.5, -1.0}, {-0.25, 2.0}, {1.0, 0.125}};
static const double THETA0[2] = {1.0, -2.0};

static void run3(basin_optim_kind kind, double lr, double mu, double out[3][2])
{
    basin_optim_spec s;
    basin_optim_state st;
    basin_optim_defaults(kind, lr, &s);
    if (kind == BASIN_OPT_MOMENTUM || kind == BASIN_OPT_NESTEROV)
        s.momentum = mu;
    assert_int_equal(basin_optim_state_init(&st, &s, 2), BASIN_OK);
    double theta[2] = {THETA0[0], THETA0[1]};
    for (int k = 0; k < 3; k++) {
        basin_optim_step(&st, theta, G[k]);
        out[k][0] = theta[0];
        out[k][1] = theta[1];
    }
    basin_optim_state_release(&st);
}

static void test_gd(void **state)
{
    (void)state;
    double got[3][2];
    run3(BASIN_OPT_GD, 0.1, 0.0, got);
    /* θ1 = (1 − 0.05, −2 + 0.1); θ2 = (0.95 + 0.025, −1.9 − 0.2); θ3 = (0.975 − 0.1, −2.1 −
     * 0.0125) */
    assert_close(got[0][0], 0.95, 1e-15);
    assert_close(got[0][1], -1.9, 1e-15);
    assert_close(got[1][0], 0.975, 1e-15);
    assert_close(got[1][1], -2.1, 1e-15);
    assert_close(got[2][0], 0.875, 1e-15);
    assert_close(got[2][1], -2.1125, 1e-15);
}

/* torch.optim.SGD(momentum=μ, dampening=0): buf_1 = g_1, buf_k = μ·buf_{k−1} + g_k;
 * heavy ball p −= lr·buf; nesterov p −= lr·(g + μ·buf). */
static void test_momentum_and_nesterov(void **state)
{
    (void)state;
    const double lr = 0.1, mu = 0.9;
    double got[3][2], want[3][2];
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        run3(nesterov ? BASIN_OPT_NESTEROV : BASIN_OPT_MOMENTUM, lr, mu, got);
        for (int i = 0; i < 2; i++) {
            double p = THETA0[i], buf = 0.0;
            for (int k = 0; k < 3; k++) {
                buf = (k == 0) ? G[k][i] : mu * buf + G[k][i];
                double d = nesterov ? G[k][i] + mu * buf : buf;
                p -= lr * d;
                want[k][i] = p;
            }
        }
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 2; i++)
                assert_close(got[k][i], want[k][i], 1e-14);
    }
    /* Hand values for coordinate 0 of heavy ball: buf = 0.5, 0.2, 1.18. */
    run3(BASIN_OPT_MOMENTUM, lr, mu, got);
    assert_close(got[0][0], 0.95, 1e-14);
    assert_close(got[1][0], 0.93, 1e-14);
    assert_close(got[2][0], 0.812, 1e-14);
    /* Nesterov, coordinate 0: d = 0.5 + 0.45, −0.25 + 0.18, 1.0 + 1.062. */
    run3(BASIN_OPT_NESTEROV, lr, mu, got);
    assert_close(got[0][0], 0.905, 1e-14);
    assert_close(got[1][0], 0.912, 1e-14);
    assert_close(got[2][0], 0.7058, 1e-14);
}

/* torch.optim.Adam: m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
 * p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps), t = 1, 2, 3. */
static void test_adam(void **state)
{
    (void)state;
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double got[3][2];
    run3(BASIN_OPT_ADAM, lr, 0.0, got);
    for (int i = 0; i < 2; i++) {
        double p = THETA0[i], m = 0.0, v = 0.0;
        for (int k = 0; k < 3; k++) {
            double t = k + 1.0, g = G[k][i];
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * g * g;
            double mhat = m / (1 - pow(b1, t));
            double vhat = v / (1 - pow(b2, t));
            p -= lr * mhat / (sqrt(vhat) + eps);
            assert_close(got[k][i], p, 1e-13);
        }
    }
    /* First step is lr·g/(|g| + eps): coordinate 0 moves by 0.01·0.5/(0.5 + 1e-8). */
    assert_close(got[0][0], 1.0 - 0.01 * (1.0 - 2e-8), 1e-15);
    assert_close(got[0][1], -2.0 + 0.01 * (1.0 - 1e-8), 1e-15);
}

static void test_reset(void **state)
{
    (void)state;
    basin_optim_spec s;
    basin_optim_state st;
    basin_optim_defaults(BASIN_OPT_ADAM, 0.01, &s);
    assert_int_equal(basin_optim_state_init(&st, &s, 2), BASIN_OK);
    double a[2] = {THETA0[0], THETA0[1]}, b[2] = {THETA0[0], THETA0[1]};
    basin_optim_step(&st, a, G[0]);
    basin_optim_step(&st, a, G[1]);
    basin_optim_state_reset(&st);
    assert_int_equal(st.t, 0);
    basin_optim_step(&st, b, G[0]);
    double want[3][2];
    run3(BASIN_OPT_ADAM, 0.01, 0.0, want);
    assert_true(b[0] == want[0][0] && b[1] == want[0][1]);
    basin_optim_state_release(&st);
    assert_null(st.m);
    basin_optim_state_release(&st); /* twice is fine */
}

static int fail_after;
static void *failing_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (fail_after-- <= 0)
        return NULL;
    return malloc(size);
}
static void *plain_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(p, size);
}
static void plain_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    basin_allocator a = {failing_malloc, plain_realloc, plain_free, NULL};
    basin_optim_spec s;
    basin_optim_defaults(BASIN_OPT_ADAM, 0.01, &s);
    for (int n = 0; n < 2; n++) {
        basin_optim_state st;
        fail_after = n;
        basin_set_allocator(&a);
        int rc = basin_optim_state_init(&st, &s, 4);
        basin_set_allocator(NULL);
        assert_int_equal(rc, BASIN_ENOMEM);
        assert_null(st.m);
        assert_null(st.v);
    }
    basin_optim_state st;
    assert_int_equal(basin_optim_state_init(&st, &s, SIZE_MAX / 4), BASIN_ERANGE);
    basin_optim_state_release(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_step_schedule),
        cmocka_unit_test(test_gd),
        cmocka_unit_test(test_momentum_and_nesterov),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
