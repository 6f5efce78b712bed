/* Unit tests of the training loop (train.c) on objectives defined here: a convex quadratic
 * F(θ) = ½(θ−c)ᵀA(θ−c) with known minimiser and contraction rate, the Rosenbrock function, and a
 * per-sample least-squares objective for mini-batch runs. Expected values come from closed forms
 * (powers of the GD iteration matrix), from a plain GD loop written here, or from the objective
 * itself evaluated at the returned point. The last test trains a 2-4-1 ReLU net on XOR through
 * net.c and objective.c. */
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
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "basin/train.h"

/* ---- objectives ---- */

typedef struct quad {
    size_t n;
    double A[16]; /* n × n, symmetric positive definite */
    double c[4];
    size_t full_calls, batch_calls, calls;
    size_t fail_at_call;  /* > 0: that call returns BASIN_ENOMEM */
    double diverge_above; /* > 0: |θ_0| above it makes the objective report BASIN_EDIVERGED */
} quad;

static int quad_vg(void *ctx, const double *theta, const size_t *idx, size_t m, double *value,
                   double *grad)
{
    (void)m;
    quad *q = ctx;
    q->calls++;
    if (idx)
        q->batch_calls++;
    else
        q->full_calls++;
    if (q->fail_at_call && q->calls == q->fail_at_call)
        return BASIN_ENOMEM;
    if (q->diverge_above > 0 && fabs(theta[0]) > q->diverge_above)
        return BASIN_EDIVERGED;
    double r[4], v = 0.0;
    for (size_t i = 0; i < q->n; i++)
        r[i] = theta[i] - q->c[i];
    for (size_t i = 0; i < q->n; i++) {
        double ar = 0.0;
        for (size_t j = 0; j < q->n; j++)
            ar += q->A[i * q->n + j] * r[j];
        if (grad)
            grad[i] = ar;
        v += r[i] * ar;
    }
    *value = 0.5 * v;
    return BASIN_OK;
}

static basin_objective quad_obj(quad *q)
{
    basin_objective o;
    memset(&o, 0, sizeof o);
    o.dim = q->n;
    o.ctx = q;
    o.value_grad = quad_vg;
    return o;
}

/* A = diag(a0, a1), c = (c0, c1). */
static quad quad_diag(double a0, double a1, double c0, double c1)
{
    quad q;
    memset(&q, 0, sizeof q);
    q.n = 2;
    q.A[0] = a0;
    q.A[3] = a1;
    q.c[0] = c0;
    q.c[1] = c1;
    return q;
}

static int rosen_vg(void *ctx, const double *t, const size_t *idx, size_t m, double *value,
                    double *grad)
{
    (void)ctx;
    (void)idx;
    (void)m;
    double a = 1.0 - t[0], b = t[1] - t[0] * t[0];
    *value = a * a + 100.0 * b * b;
    if (grad) {
        grad[0] = -2.0 * a - 400.0 * t[0] * b;
        grad[1] = 200.0 * b;
    }
    return BASIN_OK;
}

/* Least squares over N samples: F_S(θ) = (1/|S|) Σ_{i∈S} ½(θ·x_i − y_i)². Records every
 * mini-batch index it is asked for. */
enum { LS_N = 10, LS_D = 3, LOG_CAP = 4096 };
typedef struct lsq {
    double x[LS_N * LS_D], y[LS_N];
    size_t full_calls;
    size_t log[LOG_CAP], log_len;
    size_t sizes[LOG_CAP], n_batches;
} lsq;

static int lsq_vg(void *ctx, const double *theta, const size_t *idx, size_t m, double *value,
                  double *grad)
{
    lsq *L = ctx;
    if (!idx) {
        m = LS_N;
        L->full_calls++;
    } else {
        if (L->n_batches < LOG_CAP)
            L->sizes[L->n_batches++] = m;
        for (size_t k = 0; k < m && L->log_len < LOG_CAP; k++)
            L->log[L->log_len++] = idx[k];
    }
    double v = 0.0;
    if (grad)
        memset(grad, 0, LS_D * sizeof(double));
    for (size_t k = 0; k < m; k++) {
        size_t i = idx ? idx[k] : k;
        double r = -L->y[i];
        for (size_t j = 0; j < LS_D; j++)
            r += theta[j] * L->x[i * LS_D + j];
        v += 0.5 * r * r;
        if (grad)
            for (size_t j = 0; j < LS_D; j++)
                grad[j] += r * L->x[i * LS_D + j] / (double)m;
    }
    *value = v / (double)m;
    return BASIN_OK;
}

/* A consistent system y = X w*, w* = (1, −2, 0.5), with a deterministic well-spread X. */
static void lsq_init(lsq *L, basin_objective *o)
{
    memset(L, 0, sizeof *L);
    const double w[LS_D] = {1.0, -2.0, 0.5};
    for (size_t i = 0; i < LS_N; i++) {
        double yi = 0.0;
        for (size_t j = 0; j < LS_D; j++) {
            double xij = sin(1.3 * (double)(i + 1) + 2.1 * (double)j) + (i % 3 == j ? 1.0 : 0.0);
            L->x[i * LS_D + j] = xij;
            yi += w[j] * xij;
        }
        L->y[i] = yi;
    }
    memset(o, 0, sizeof *o);
    o->dim = LS_D;
    o->n_samples = LS_N;
    o->ctx = L;
    o->value_grad = lsq_vg;
}

/* ---- helpers ---- */

static double norm(const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* A spec starting from `start` (GIVEN), GD with lr, no stopping rule but max_steps. */
static basin_train_spec gd_spec(double lr, size_t max_steps, const double *start, size_t dim)
{
    basin_train_spec s;
    basin_train_defaults(&s);
    s.optim.lr = lr;
    s.max_steps = max_steps;
    s.grad_tol = 0.0;
    s.trajectory_every = 0;
    s.init.kind = BASIN_INIT_GIVEN;
    s.init.given = start;
    s.init.given_len = dim;
    return s;
}

/* The GD iteration written out here: θ_k after k steps from θ_0. */
static void ref_gd(quad *q, double lr, const double *theta0, size_t k, double *out)
{
    double g[4], v;
    memcpy(out, theta0, q->n * sizeof(double));
    for (size_t s = 0; s < k; s++) {
        quad_vg(q, out, NULL, 0, &v, g);
        for (size_t i = 0; i < q->n; i++)
            out[i] -= lr * g[i];
    }
}

static void assert_close(double got, double want, double rel)
{
    double tol = rel * fmax(fabs(want), 1e-300);
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (rel tol %g)", got, want, rel);
}

typedef struct recorder {
    size_t n;
    size_t steps[256];
    uint64_t restarts[256];
    double risk[256], grad_norm[256], param_norm[256];
    size_t cancel_at_step; /* on_point returns 1 at this step (0 = never) */
    size_t stop_calls, stop_on_call;
} recorder;

static int rec_point(void *user, uint64_t restart, const basin_traj_point *pt)
{
    recorder *r = user;
    if (r->n < 256) {
        r->steps[r->n] = pt->step;
        r->restarts[r->n] = restart;
        r->risk[r->n] = pt->risk;
        r->grad_norm[r->n] = pt->grad_norm;
        r->param_norm[r->n] = pt->param_norm;
        r->n++;
    }
    return r->cancel_at_step && pt->step == r->cancel_at_step;
}

static int rec_should_stop(void *user, uint64_t restart)
{
    (void)restart;
    recorder *r = user;
    r->stop_calls++;
    return r->stop_on_call && r->stop_calls >= r->stop_on_call;
}

/* ---- spec checks and argument errors ---- */

static void test_defaults_and_check(void **state)
{
    (void)state;
    basin_train_spec s;
    basin_train_defaults(&s);
    assert_int_equal(s.optim.kind, BASIN_OPT_GD);
    assert_true(s.optim.lr == 0.01);
    assert_int_equal(s.init.kind, BASIN_INIT_HE_NORMAL);
    assert_int_equal(s.max_steps, 10000);
    assert_true(s.grad_tol == 1e-8 && s.risk_tol == -1.0 && s.diverge_factor == 1e6);
    assert_int_equal(s.plateau_window, 0);
    assert_int_equal(s.trajectory_every, 100);
    assert_int_equal(basin_train_check(&s), BASIN_OK);

    basin_train_spec b = s;
    b.max_steps = 0;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b = s;
    b.grad_tol = -1e-3;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b.grad_tol = NAN;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b = s;
    b.risk_tol = NAN;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b = s;
    b.plateau_window = 5;
    b.plateau_tol = -0.1;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b.plateau_tol = 0.01;
    assert_int_equal(basin_train_check(&b), BASIN_OK);
    b = s;
    b.diverge_factor = 0.5;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b.diverge_factor = NAN;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b.diverge_factor = 0.0;
    assert_int_equal(basin_train_check(&b), BASIN_OK);
    b = s;
    b.optim.lr = 0.0;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b = s;
    b.init.kind = (basin_init_kind)42;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    b = s;
    b.init.kind = BASIN_INIT_NORMAL;
    b.init.std = -1.0;
    assert_int_equal(basin_train_check(&b), BASIN_EINVAL);
    assert_int_equal(basin_train_check(NULL), BASIN_EINVAL);

    assert_string_equal(basin_stop_reason_name(BASIN_STOP_MAX_STEPS), "max_steps");
    assert_string_equal(basin_stop_reason_name(BASIN_STOP_GRAD_TOL), "grad_tol");
    assert_string_equal(basin_stop_reason_name(BASIN_STOP_RISK_TOL), "risk_tol");
    assert_string_equal(basin_stop_reason_name(BASIN_STOP_PLATEAU), "plateau");
    assert_string_equal(basin_stop_reason_name(BASIN_STOP_DIVERGED), "diverged");
    assert_string_equal(basin_stop_reason_name(BASIN_STOP_CANCELLED), "cancelled");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 2.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    double theta[2];
    basin_run_result res;
    basin_train_spec s = gd_spec(0.1, 10, start, 2);

    assert_int_equal(basin_train_restart(NULL, NULL, &s, 0, theta, NULL, &res), BASIN_EINVAL);
    assert_int_equal(basin_train_restart(&o, NULL, NULL, 0, theta, NULL, &res), BASIN_EINVAL);
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, NULL, NULL, &res), BASIN_EINVAL);
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, NULL), BASIN_EINVAL);
    assert_int_equal(basin_train_restart(&o, NULL, &s, UINT64_MAX, theta, NULL, &res),
                     BASIN_ERANGE);
    assert_int_equal(basin_train_batch(&o, NULL, &s, UINT64_MAX / 2 - 1, 3, theta, NULL, &res),
                     BASIN_ERANGE);
    s.init.given_len = 3;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_EINVAL);
    s = gd_spec(0.1, 10, start, 2);
    s.optim.batch = 2; /* a closed-form objective has no samples */
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_EINVAL);
    s = gd_spec(0.1, 10, start, 2);
    s.init.kind = BASIN_INIT_HE_NORMAL; /* needs a net for fan-in */
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_EINVAL);
    s = gd_spec(0.1, 10, start, 2);
    o.dim = 0;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_EINVAL);
    o = quad_obj(&q);
    q.calls = 0;
    q.fail_at_call = 4; /* an objective error is returned, not treated as divergence */
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_ENOMEM);
}

/* ---- stopping rules ---- */

/* GD on A = [[3,1],[1,2]] (λ = (5±√5)/2) reaches c; the step count s at which ‖∇F‖ ≤ tol lies
 * between the bounds given by the slow eigendirection (ρ = 1 − lr·λ_min): ρ^s |⟨g0,u⟩| ≤ tol
 * and ‖g_s‖ ≤ ρ^s ‖g0‖. */
static void test_gd_quadratic_grad_tol(void **state)
{
    (void)state;
    quad q;
    memset(&q, 0, sizeof q);
    q.n = 2;
    q.A[0] = 3.0;
    q.A[1] = q.A[2] = 1.0;
    q.A[3] = 2.0;
    q.c[0] = 0.25;
    q.c[1] = -1.5;
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.25, -3.0}; /* θ0 − c = (1, −1.5): close to the slow direction */
    const double lr = 0.2, tol = 1e-10;
    basin_train_spec s = gd_spec(lr, 5000, start, 2);
    s.grad_tol = tol;
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_GRAD_TOL);

    double lmin = (5.0 - sqrt(5.0)) / 2.0, rho = 1.0 - lr * lmin;
    double u[2] = {1.0, lmin - 3.0}, un = norm(u, 2);
    double g0[2] = {3.0 * 1.0 + 1.0 * -1.5, 1.0 * 1.0 + 2.0 * -1.5};
    double g0u = fabs(g0[0] * u[0] + g0[1] * u[1]) / un;
    double lower = log(tol / g0u) / log(rho), upper = log(tol / norm(g0, 2)) / log(rho);
    assert_true((double)res.steps >= floor(lower) && (double)res.steps <= ceil(upper));
    assert_true(upper - lower < 3.0); /* the bounds are tight: the test has teeth */

    double d[2] = {theta[0] - q.c[0], theta[1] - q.c[1]};
    assert_true(norm(d, 2) <= tol / lmin);
    /* Reported values are those of the returned θ, not of the previous iterate. */
    double v, g[2];
    quad_vg(&q, theta, NULL, 0, &v, g);
    assert_true(res.final_risk == v);
    assert_true(res.grad_norm == norm(g, 2));
    assert_true(res.grad_norm <= tol);
    assert_true(res.param_norm == norm(theta, 2));
    quad_vg(&q, start, NULL, 0, &v, NULL);
    assert_true(res.initial_risk == v);
    assert_int_equal(res.restart, 0);
    assert_int_equal(res.risk_falling, 1);
}

/* diag(1, 4), lr 0.1: g_k = (0.9^k e1, 4·0.6^k e2) in closed form. */
static void test_grad_tol_exact_count(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 4.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 5000, start, 2);
    s.grad_tol = 1e-6;
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    size_t k = 0;
    while (hypot(pow(0.9, (double)k), 4.0 * pow(0.6, (double)k)) > 1e-6)
        k++;
    assert_int_equal(res.reason, BASIN_STOP_GRAD_TOL);
    assert_true(res.steps + 1 >= k && res.steps <= k + 1);
    assert_close(theta[0], pow(0.9, (double)res.steps), 1e-9);
}

static void test_max_steps(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 4.0, 0.5, -0.5);
    basin_objective o = quad_obj(&q);
    const double start[2] = {2.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 25, start, 2);
    double theta[2], want[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_MAX_STEPS);
    assert_int_equal(res.steps, 25);
    /* One full evaluation per step plus the initial one. */
    assert_int_equal(q.full_calls, 26);
    assert_int_equal(q.batch_calls, 0);
    ref_gd(&q, 0.1, start, 25, want);
    assert_close(theta[0], want[0], 1e-14);
    assert_close(theta[1], want[1], 1e-14);
    /* closed form: θ − c = ((1 − 0.1)^25 · 1.5, (1 − 0.4)^25 · 1.5) */
    assert_close(theta[0] - 0.5, 1.5 * pow(0.9, 25), 1e-12);
    assert_close(theta[1] + 0.5, 1.5 * pow(0.6, 25), 1e-9);
}

static void test_risk_tol(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 4.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 1000, start, 2);
    s.risk_tol = 1e-4;
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_RISK_TOL);
    /* R_k = ½(0.81^k + 4·0.36^k): first k with R_k ≤ 1e-4. */
    size_t k = 0;
    while (0.5 * (pow(0.81, (double)k) + 4.0 * pow(0.36, (double)k)) > 1e-4)
        k++;
    assert_int_equal(res.steps, k);
    assert_true(res.final_risk <= 1e-4);
    s.risk_tol = 10.0; /* already met at step 0 */
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_RISK_TOL);
    assert_int_equal(res.steps, 0);
    assert_true(theta[0] == 1.0 && theta[1] == 1.0);
}

/* diag(1, 0.01), lr 0.1: the fast direction dies out, then R falls by 1 − 0.999^20 ≈ 0.0198
 * per 10 steps. With tol 0.03 the rule fires at the first s ≥ 10 where the closed-form
 * relative decrease is below 0.03; with tol 0.01 it never fires. */
static void test_plateau(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 0.01, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 300, start, 2);
    s.plateau_window = 10;
    s.plateau_tol = 0.03;
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_PLATEAU);
    size_t k = 10;
    for (;; k++) {
        double ra = 0.5 * (pow(0.81, (double)(k - 10)) + 0.01 * pow(0.998001, (double)(k - 10)));
        double rb = 0.5 * (pow(0.81, (double)k) + 0.01 * pow(0.998001, (double)k));
        if ((ra - rb) / ra < 0.03)
            break;
    }
    assert_true(k > 10 && k < 300);
    assert_int_equal(res.steps, k);
    assert_int_equal(res.risk_falling, 1);

    s.plateau_tol = 0.01;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_MAX_STEPS);
    assert_int_equal(res.steps, 300);

    /* Started at the minimum nothing moves: the rule fires as soon as a full window has passed. */
    const double at_min[2] = {0.0, 0.0};
    s.init.given = at_min;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_PLATEAU);
    assert_int_equal(res.steps, 10);
    assert_int_equal(res.risk_falling, 0);
}

/* A = I, c = 0, lr 3: θ_k = (−2)^k θ_0 and R_k = 4^k exactly. With diverge_factor 1e6 and R0 = 1
 * the run explodes at step 10 and is rolled back to step 9. */
static void test_diverged_factor(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 1.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(3.0, 1000, start, 2);
    s.diverge_factor = 1e6;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    basin_train_hooks hooks = {rec_point, NULL, &rec};
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, &hooks, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_DIVERGED);
    assert_int_equal(res.steps, 9);
    assert_true(theta[0] == -512.0 && theta[1] == -512.0);
    assert_true(res.final_risk == 262144.0);
    assert_true(res.initial_risk == 1.0);
    assert_close(res.grad_norm, 512.0 * sqrt(2.0), 1e-15);
    assert_int_equal(res.risk_falling, 0);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.steps[0], 0);
    assert_int_equal(rec.steps[1], 9);
    assert_true(rec.risk[1] == 262144.0);
}

/* Same iteration with only non-finite values counting: R_512 = 4^512 overflows, so the run
 * stops at the last finite point, step 511. */
static void test_diverged_nonfinite(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 1.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(3.0, 100000, start, 2);
    s.diverge_factor = 0.0;
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_DIVERGED);
    assert_int_equal(res.steps, 511);
    assert_true(theta[0] == -ldexp(1.0, 511) && theta[1] == theta[0]);
    assert_true(res.final_risk == ldexp(1.0, 1022));

    /* Rosenbrock with a far too large step: θ stays finite and describes the result. */
    basin_objective ro;
    memset(&ro, 0, sizeof ro);
    ro.dim = 2;
    ro.value_grad = rosen_vg;
    const double rstart[2] = {-1.2, 1.0};
    s = gd_spec(0.1, 10000, rstart, 2);
    s.diverge_factor = 0.0;
    assert_int_equal(basin_train_restart(&ro, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_DIVERGED);
    assert_true(isfinite(theta[0]) && isfinite(theta[1]));
    assert_true(res.steps >= 1 && res.steps < 100);
    double v, g[2];
    rosen_vg(NULL, theta, NULL, 0, &v, g);
    assert_true(isfinite(v) && v == res.final_risk && norm(g, 2) == res.grad_norm);

    /* An objective that reports BASIN_EDIVERGED itself: rolled back to the last good point. */
    q = quad_diag(1.0, 1.0, 0.0, 0.0);
    q.diverge_above = 100.0;
    o = quad_obj(&q);
    s = gd_spec(3.0, 1000, start, 2);
    s.diverge_factor = 0.0;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_DIVERGED);
    assert_int_equal(res.steps, 6); /* |θ| = 64 at step 6, 128 at step 7 */
    assert_true(theta[0] == 64.0);
}

static void test_cancel_should_stop(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 0.001, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 1000, start, 2);
    recorder rec;
    memset(&rec, 0, sizeof rec);
    rec.stop_on_call = 3;
    basin_train_hooks hooks = {rec_point, rec_should_stop, &rec};
    double theta[2], want[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 7, theta, &hooks, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_CANCELLED);
    assert_int_equal(rec.stop_calls, 3);
    assert_int_equal(res.steps, 128); /* polled at steps 0, 64, 128 (train.c DESIGN) */
    ref_gd(&q, 0.1, start, 128, want);
    assert_close(theta[0], want[0], 1e-13);
    assert_close(theta[1], want[1], 1e-13);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.steps[1], 128);
    assert_true(rec.restarts[0] == 7 && rec.restarts[1] == 7);
}

static void test_cancel_on_point(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 0.001, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 1000, start, 2);
    s.trajectory_every = 10;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    rec.cancel_at_step = 30;
    basin_train_hooks hooks = {rec_point, NULL, &rec};
    double theta[2], want[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, &hooks, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_CANCELLED);
    assert_int_equal(res.steps, 30);
    assert_int_equal(rec.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(rec.steps[i], 10 * i);
    ref_gd(&q, 0.1, start, 30, want);
    assert_close(theta[0], want[0], 1e-13);
}

/* ---- trajectory ---- */

static void check_traj(size_t every, size_t max_steps, const size_t *want, size_t n_want)
{
    quad q = quad_diag(2.0, 0.5, 1.0, -1.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {0.0, 3.0};
    basin_train_spec s = gd_spec(0.1, max_steps, start, 2);
    s.trajectory_every = every;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    basin_train_hooks hooks = {rec_point, NULL, &rec};
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, &hooks, &res), BASIN_OK);
    assert_int_equal(rec.n, n_want);
    for (size_t i = 0; i < n_want; i++) {
        assert_int_equal(rec.steps[i], want[i]);
        double th[2], g[2], v;
        ref_gd(&q, 0.1, start, want[i], th);
        quad_vg(&q, th, NULL, 0, &v, g);
        assert_close(rec.risk[i], v, 1e-13);
        assert_close(rec.grad_norm[i], norm(g, 2), 1e-13);
        assert_close(rec.param_norm[i], norm(th, 2), 1e-13);
    }
    assert_true(rec.risk[n_want - 1] == res.final_risk);
}

static void test_trajectory(void **state)
{
    (void)state;
    const size_t a[] = {0, 7, 14, 21, 28, 30};
    check_traj(7, 30, a, 6);
    const size_t b[] = {0, 10, 20, 30};
    check_traj(10, 30, b, 4);
    const size_t c[] = {0, 30};
    check_traj(0, 30, c, 2);
    const size_t d[] = {0, 1, 2, 3};
    check_traj(1, 3, d, 4);

    /* A run that stops on grad_tol ends with a point at its last step. */
    quad q = quad_diag(1.0, 4.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    const double start[2] = {1.0, 1.0};
    basin_train_spec s = gd_spec(0.1, 5000, start, 2);
    s.grad_tol = 1e-6;
    s.trajectory_every = 50;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    basin_train_hooks hooks = {rec_point, NULL, &rec};
    double theta[2];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, &hooks, &res), BASIN_OK);
    assert_true(res.steps % 50 != 0);
    assert_int_equal(rec.n, res.steps / 50 + 2);
    assert_int_equal(rec.steps[rec.n - 1], res.steps);
    assert_true(rec.risk[rec.n - 1] == res.final_risk);
    assert_true(rec.grad_norm[rec.n - 1] == res.grad_norm);
}

/* ---- other optimizers through the trainer ---- */

static void test_other_optimizers(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 4.0, 0.5, -0.5);
    basin_objective o = quad_obj(&q);
    const double start[2] = {2.0, 1.0};
    double theta[2];
    basin_run_result res;
    const basin_optim_kind kinds[] = {BASIN_OPT_MOMENTUM, BASIN_OPT_NESTEROV, BASIN_OPT_ADAM};
    for (size_t k = 0; k < 3; k++) {
        basin_train_spec s = gd_spec(0.05, 3, start, 2);
        basin_optim_defaults(kinds[k], 0.05, &s.optim);
        /* The first 3 updates use the gradient of the current θ (torch formulas by hand). */
        assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
        double p[2] = {start[0], start[1]}, m[2] = {0, 0}, v[2] = {0, 0};
        for (int t = 1; t <= 3; t++) {
            double g[2], val;
            quad_vg(&q, p, NULL, 0, &val, g);
            for (int i = 0; i < 2; i++) {
                if (kinds[k] == BASIN_OPT_ADAM) {
                    m[i] = 0.9 * m[i] + 0.1 * g[i];
                    v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                    double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
                    p[i] -= 0.05 * mh / (sqrt(vh) + 1e-8);
                } else {
                    m[i] = 0.9 * m[i] + g[i];
                    p[i] -= 0.05 * (kinds[k] == BASIN_OPT_NESTEROV ? g[i] + 0.9 * m[i] : m[i]);
                }
            }
        }
        assert_close(theta[0], p[0], 1e-12);
        assert_close(theta[1], p[1], 1e-12);

        /* And they converge to c. */
        s.max_steps = 20000;
        s.grad_tol = 1e-7;
        if (kinds[k] == BASIN_OPT_ADAM) {
            s.optim.schedule = BASIN_SCHEDULE_STEP;
            s.optim.step_every = 300;
            s.optim.gamma = 0.5;
        }
        assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
        assert_int_equal(res.reason, BASIN_STOP_GRAD_TOL);
        assert_true(fabs(theta[0] - 0.5) < 1e-6 && fabs(theta[1] + 0.5) < 1e-6);
    }
}

/* ---- determinism and batching ---- */

static void test_init_streams(void **state)
{
    (void)state;
    quad q;
    memset(&q, 0, sizeof q);
    q.n = 4;
    for (size_t i = 0; i < 4; i++)
        q.A[i * 4 + i] = 1.0 + (double)i;
    basin_objective o = quad_obj(&q);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_NORMAL;
    s.init.std = 0.5;
    s.seed = 1234;
    s.max_steps = 50;
    s.grad_tol = 0.0;
    double a[4], b[4], c[4];
    basin_run_result ra, rb, rc;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 3, a, NULL, &ra), BASIN_OK);
    assert_int_equal(basin_train_restart(&o, NULL, &s, 3, b, NULL, &rb), BASIN_OK);
    assert_int_equal(basin_train_restart(&o, NULL, &s, 4, c, NULL, &rc), BASIN_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_true(ra.final_risk == rb.final_risk && ra.final_risk != rc.final_risk);

    /* The initial point is std·N(0,1) from stream 2·restart of the seed. */
    basin_rng rng;
    basin_rng_init(&rng, 1234, 6);
    double t0[4], v;
    for (size_t i = 0; i < 4; i++)
        t0[i] = 0.5 * basin_rng_normal(&rng);
    quad_vg(&q, t0, NULL, 0, &v, NULL);
    assert_true(ra.initial_risk == v);
}

static void assert_results_equal(const basin_run_result *x, const basin_run_result *y)
{
    assert_true(x->restart == y->restart);
    assert_int_equal(x->reason, y->reason);
    assert_int_equal(x->steps, y->steps);
    assert_memory_equal(&x->initial_risk, &y->initial_risk, sizeof(double));
    assert_memory_equal(&x->final_risk, &y->final_risk, sizeof(double));
    assert_memory_equal(&x->grad_norm, &y->grad_norm, sizeof(double));
    assert_memory_equal(&x->param_norm, &y->param_norm, sizeof(double));
    assert_int_equal(x->risk_falling, y->risk_falling);
}

static void batch_vs_single(const basin_objective *o, const basin_train_spec *s)
{
    enum { COUNT = 5, FIRST = 3 };
    const size_t dim = o->dim;
    double batch[COUNT * 4], single[COUNT * 4];
    basin_run_result rb[COUNT], rs[COUNT];
    recorder hb, hs;
    memset(&hb, 0, sizeof hb);
    memset(&hs, 0, sizeof hs);
    basin_train_hooks hooks_b = {rec_point, NULL, &hb}, hooks_s = {rec_point, NULL, &hs};
    assert_int_equal(basin_train_batch(o, NULL, s, FIRST, COUNT, batch, &hooks_b, rb), BASIN_OK);
    for (size_t i = 0; i < COUNT; i++)
        assert_int_equal(
            basin_train_restart(o, NULL, s, FIRST + i, single + i * dim, &hooks_s, &rs[i]),
            BASIN_OK);
    assert_memory_equal(batch, single, COUNT * dim * sizeof(double));
    for (size_t i = 0; i < COUNT; i++) {
        assert_results_equal(&rb[i], &rs[i]);
        assert_true(rb[i].restart == FIRST + i);
    }
    assert_int_equal(hb.n, hs.n);
    assert_memory_equal(hb.steps, hs.steps, hb.n * sizeof(size_t));
    assert_memory_equal(hb.restarts, hs.restarts, hb.n * sizeof(uint64_t));
    assert_memory_equal(hb.risk, hs.risk, hb.n * sizeof(double));
    /* The restarts really differ. */
    assert_memory_not_equal(batch, batch + dim, dim * sizeof(double));
}

static void test_batch_equals_single(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 3.0, 0.2, 0.1);
    basin_objective o = quad_obj(&q);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_UNIFORM;
    s.init.a = 2.0;
    s.seed = 77;
    s.max_steps = 200;
    s.grad_tol = 1e-6;
    s.trajectory_every = 25;
    s.optim.lr = 0.05;
    batch_vs_single(&o, &s);

    lsq L;
    basin_objective lo;
    lsq_init(&L, &lo);
    basin_optim_defaults(BASIN_OPT_MOMENTUM, 0.02, &s.optim);
    s.optim.batch = 4;
    s.init.kind = BASIN_INIT_NORMAL;
    s.init.std = 1.0;
    s.check_every = 7;
    batch_vs_single(&lo, &s);
}

/* Mini-batches: each epoch is a fresh permutation of 0..N−1 cut into 4, 4, 2; the order comes
 * from stream 2·restart+1 and is reproducible. */
static void test_minibatch_order(void **state)
{
    (void)state;
    lsq L;
    basin_objective o;
    lsq_init(&L, &o);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_NORMAL;
    s.seed = 5;
    s.optim.lr = 0.01;
    s.optim.batch = 4;
    s.max_steps = 30; /* 10 epochs of 3 batches */
    s.grad_tol = 0.0;
    s.trajectory_every = 0;
    double theta[LS_D];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 2, theta, NULL, &res), BASIN_OK);
    assert_int_equal(L.n_batches, 30);
    assert_int_equal(L.log_len, 100);
    for (size_t b = 0; b < 30; b++)
        assert_int_equal(L.sizes[b], b % 3 == 2 ? 2 : 4);
    int distinct_epochs = 0;
    for (size_t e = 0; e < 10; e++) {
        int seen[LS_N] = {0};
        for (size_t k = 0; k < LS_N; k++)
            seen[L.log[e * LS_N + k]]++;
        for (size_t i = 0; i < LS_N; i++)
            assert_int_equal(seen[i], 1);
        if (e > 0)
            distinct_epochs +=
                memcmp(L.log + e * LS_N, L.log + (e - 1) * LS_N, LS_N * sizeof(size_t)) != 0;
    }
    assert_true(distinct_epochs >= 8);

    /* First epoch = Fisher–Yates of the identity with stream 2·2+1. */
    basin_rng rng;
    basin_rng_init(&rng, 5, 5);
    size_t perm[LS_N];
    for (size_t i = 0; i < LS_N; i++)
        perm[i] = i;
    basin_rng_shuffle(&rng, perm, LS_N);
    assert_memory_equal(perm, L.log, sizeof perm);

    size_t first[100];
    memcpy(first, L.log, sizeof first);
    L.log_len = L.n_batches = 0;
    double theta2[LS_D];
    assert_int_equal(basin_train_restart(&o, NULL, &s, 2, theta2, NULL, &res), BASIN_OK);
    assert_memory_equal(first, L.log, sizeof first);
    assert_memory_equal(theta, theta2, sizeof theta);
    L.log_len = L.n_batches = 0;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 3, theta2, NULL, &res), BASIN_OK);
    assert_memory_not_equal(first, L.log, sizeof first);
}

static void test_minibatch_checks(void **state)
{
    (void)state;
    lsq L;
    basin_objective o;
    lsq_init(&L, &o);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_NORMAL;
    s.optim.lr = 0.01;
    s.optim.batch = 4;
    s.max_steps = 20;
    s.grad_tol = 0.0;
    s.trajectory_every = 0;
    s.check_every = 5;
    double theta[LS_D];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(L.full_calls, 5); /* steps 0, 5, 10, 15, 20 */
    s.check_every = 0;                 /* per epoch of 3 steps: 0, 3, ..., 18 and the final 20 */
    L.full_calls = 0;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res), BASIN_OK);
    assert_int_equal(L.full_calls, 8);
    assert_int_equal(res.reason, BASIN_STOP_MAX_STEPS);
    double v, g[LS_D];
    lsq_vg(&L, theta, NULL, 0, &v, g);
    assert_true(v == res.final_risk && norm(g, LS_D) == res.grad_norm);
}

/* The system is consistent, so SGD interpolates and the full gradient vanishes. */
static void test_minibatch_converges(void **state)
{
    (void)state;
    lsq L;
    basin_objective o;
    lsq_init(&L, &o);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_NORMAL;
    s.optim.lr = 0.1;
    s.optim.batch = 3;
    s.max_steps = 20000;
    s.grad_tol = 1e-9;
    s.check_every = 10;
    double theta[LS_D];
    basin_run_result res;
    assert_int_equal(basin_train_restart(&o, NULL, &s, 1, theta, NULL, &res), BASIN_OK);
    assert_int_equal(res.reason, BASIN_STOP_GRAD_TOL);
    assert_true(res.steps % 10 == 0);
    assert_true(fabs(theta[0] - 1.0) < 1e-6 && fabs(theta[1] + 2.0) < 1e-6 &&
                fabs(theta[2] - 0.5) < 1e-6);
    double v, g[LS_D];
    lsq_vg(&L, theta, NULL, 0, &v, g);
    assert_true(norm(g, LS_D) == res.grad_norm && res.grad_norm <= 1e-9);
}

/* GIVEN without a `given` vector: theta (each row of thetas) is the start point. */
static void test_given_in_place(void **state)
{
    (void)state;
    quad q = quad_diag(1.0, 4.0, 0.0, 0.0);
    basin_objective o = quad_obj(&q);
    basin_train_spec s = gd_spec(0.1, 10, NULL, 0);
    double thetas[4] = {1.0, 1.0, -2.0, 0.5}, want[2];
    const double start1[2] = {-2.0, 0.5};
    basin_run_result res[2];
    assert_int_equal(basin_train_batch(&o, NULL, &s, 0, 2, thetas, NULL, res), BASIN_OK);
    ref_gd(&q, 0.1, start1, 10, want);
    assert_true(thetas[2] == want[0] && thetas[3] == want[1]);
    assert_close(thetas[0], pow(0.9, 10), 1e-13);
}

/* ---- a real network: 2-4-1 ReLU on the four XOR points ---- */

static void test_xor_net(void **state)
{
    (void)state;
    basin_layer_spec layers[3];
    memset(layers, 0, sizeof layers);
    layers[0].kind = BASIN_LAYER_DENSE;
    layers[0].units = 4;
    layers[0].bias = 1;
    layers[1].kind = BASIN_LAYER_ACTIVATION;
    layers[1].act = BASIN_ACT_RELU;
    layers[2].kind = BASIN_LAYER_DENSE;
    layers[2].units = 1;
    layers[2].bias = 1;
    basin_arch arch;
    memset(&arch, 0, sizeof arch);
    arch.in_rank = 1;
    arch.in_shape[0] = 2;
    arch.n_layers = 3;
    arch.layers = layers;
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_param_count(net), 17);

    const size_t shape[1] = {2};
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(4, 1, shape, 1, &ds), BASIN_OK);
    const double x[8] = {-1, -1, -1, 1, 1, -1, 1, 1}, y[4] = {0, 1, 1, 0};
    memcpy(ds->x, x, sizeof x);
    memcpy(ds->y, y, sizeof y);
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_objective o;
    memset(&o, 0, sizeof o);
    assert_int_equal(basin_objective_empirical(net, ds, &loss, 0.0, 0, &o), BASIN_OK);

    basin_train_spec s;
    basin_train_defaults(&s);
    s.seed = 11;
    s.optim.lr = 0.05;
    s.max_steps = 400;
    s.grad_tol = 1e-10;
    s.trajectory_every = 50;
    enum { COUNT = 4 };
    double batch[COUNT * 17], single[COUNT * 17];
    basin_run_result rb[COUNT], rs[COUNT];
    recorder rec;
    memset(&rec, 0, sizeof rec);
    basin_train_hooks hooks = {rec_point, NULL, &rec};
    assert_int_equal(basin_train_batch(&o, net, &s, 0, COUNT, batch, &hooks, rb), BASIN_OK);
    for (size_t i = 0; i < COUNT; i++) {
        assert_int_equal(basin_train_restart(&o, net, &s, i, single + i * 17, NULL, &rs[i]),
                         BASIN_OK);
        assert_results_equal(&rb[i], &rs[i]);
        assert_true(rb[i].reason == BASIN_STOP_MAX_STEPS || rb[i].reason == BASIN_STOP_GRAD_TOL);
        assert_true(rb[i].final_risk < rb[i].initial_risk);
        /* He-normal start drawn from stream 2·i through net.c. */
        basin_rng rng;
        double t0[17], v, g[17];
        basin_rng_init(&rng, 11, 2 * i);
        assert_int_equal(basin_net_init_params(net, &s.init, &rng, t0), BASIN_OK);
        assert_int_equal(o.value_grad(o.ctx, t0, NULL, 0, &v, NULL), BASIN_OK);
        assert_true(v == rb[i].initial_risk);
        assert_int_equal(o.value_grad(o.ctx, batch + i * 17, NULL, 0, &v, g), BASIN_OK);
        assert_true(v == rb[i].final_risk && norm(g, 17) == rb[i].grad_norm);
    }
    assert_memory_equal(batch, single, sizeof batch);
    assert_memory_not_equal(batch, batch + 17, 17 * sizeof(double));
    /* Full-batch GD with a small step: the risk never goes up between trajectory points. */
    for (size_t k = 1; k < rec.n; k++)
        if (rec.restarts[k] == rec.restarts[k - 1])
            assert_true(rec.risk[k] <= rec.risk[k - 1]);

    /* A net whose parameter count differs from the objective's is refused. */
    basin_objective wrong = o;
    wrong.dim = 16;
    assert_int_equal(basin_train_restart(&wrong, net, &s, 0, single, NULL, rs), BASIN_EINVAL);

    basin_objective_release(&o);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- allocation failures ---- */

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

static void test_alloc_failures(void **state)
{
    (void)state;
    lsq L;
    basin_objective o;
    lsq_init(&L, &o);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.init.kind = BASIN_INIT_NORMAL;
    basin_optim_defaults(BASIN_OPT_ADAM, 0.01, &s.optim);
    s.optim.batch = 4;
    s.max_steps = 10;
    basin_allocator a = {failing_malloc, plain_realloc, plain_free, NULL};
    double theta[LS_D];
    basin_run_result res;
    int n, rc = BASIN_ENOMEM;
    for (n = 0; n < 50 && rc == BASIN_ENOMEM; n++) {
        fail_after = n;
        basin_set_allocator(&a);
        rc = basin_train_restart(&o, NULL, &s, 0, theta, NULL, &res);
        basin_set_allocator(NULL);
    }
    assert_int_equal(rc, BASIN_OK);
    assert_true(n >= 8); /* every buffer was a separate failure point (leaks: ASan/valgrind) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_check),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_gd_quadratic_grad_tol),
        cmocka_unit_test(test_grad_tol_exact_count),
        cmocka_unit_test(test_max_steps),
        cmocka_unit_test(test_risk_tol),
        cmocka_unit_test(test_plateau),
        cmocka_unit_test(test_diverged_factor),
        cmocka_unit_test(test_diverged_nonfinite),
        cmocka_unit_test(test_cancel_should_stop),
        cmocka_unit_test(test_cancel_on_point),
        cmocka_unit_test(test_trajectory),
        cmocka_unit_test(test_other_optimizers),
        cmocka_unit_test(test_init_streams),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_minibatch_order),
        cmocka_unit_test(test_minibatch_checks),
        cmocka_unit_test(test_minibatch_converges),
        cmocka_unit_test(test_given_in_place),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_xor_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
