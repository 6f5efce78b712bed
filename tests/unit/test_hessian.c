/* Tests of hessian.c: Lanczos extremes, the dense operator and the dense eigensolver, against
 * matrices whose spectrum is known by construction (A = Q diag(λ) Qᵀ with Q from a LAPACK QR
 * of a Gaussian matrix, built here in the test), against LAPACK's dsyev called directly, and
 * against hand-solved 1×1 and 2×2 cases; plus error propagation and an allocation-failure
 * sweep (failing_alloc.h) showing every ENOMEM path is clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>
#include <lapacke.h>

#include "basin/alloc.h"
#include "basin/hessian.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "failing_alloc.h"

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

/* ---- test matrices ---- */

typedef struct dense_op {
    size_t n;
    const double *A; /* n × n row-major */
    size_t calls;
    size_t fail_at; /* 1-based call that fails (0 = never) */
    int fail_rc;    /* status returned then */
    size_t nan_at;  /* 1-based call whose output holds a NaN (0 = never) */
} dense_op;

static int dense_matvec(void *ctx, const double *v, double *out)
{
    dense_op *op = ctx;
    op->calls++;
    if (op->fail_at && op->calls == op->fail_at)
        return op->fail_rc;
    for (size_t i = 0; i < op->n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < op->n; j++)
            s += op->A[i * op->n + j] * v[j];
        out[i] = s;
    }
    if (op->nan_at && op->calls == op->nan_at)
        out[op->n / 2] = NAN;
    return BASIN_OK;
}

static void dense_op_init(dense_op *op, size_t n, const double *A)
{
    memset(op, 0, sizeof *op);
    op->n = n;
    op->A = A;
}

/* Q (n × n, row-major) orthogonal: the Q factor of a Gaussian matrix. */
static void random_orthogonal(size_t n, uint64_t seed, double *Q)
{
    basin_rng rng;
    double *tau = malloc(n * sizeof(double));
    assert_non_null(tau);
    basin_rng_init(&rng, seed, 7);
    for (size_t i = 0; i < n * n; i++)
        Q[i] = basin_rng_normal(&rng);
    lapack_int n_ = (lapack_int)n;
    assert_int_equal(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n_, n_, Q, n_, tau), 0);
    assert_int_equal(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n_, n_, n_, Q, n_, tau), 0);
    free(tau);
}

/* A = Q diag(lambda) Qᵀ; Q is returned too (column i = eigenvector of lambda[i]). */
static double *matrix_with_spectrum(size_t n, const double *lambda, uint64_t seed, double **Q_out)
{
    double *Q = malloc(n * n * sizeof(double));
    double *A = calloc(n * n, sizeof(double));
    assert_non_null(Q);
    assert_non_null(A);
    random_orthogonal(n, seed, Q);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t l = 0; l < n; l++)
                s += Q[i * n + l] * lambda[l] * Q[j * n + l];
            A[i * n + j] = s;
        }
    /* exact symmetry, so that the operator is symmetric to the last bit */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            A[j * n + i] = A[i * n + j];
    if (Q_out)
        *Q_out = Q;
    else
        free(Q);
    return A;
}

static double vec_norm(const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* ‖A x − λ x‖, computed here independently of the code under test. */
static double residual(size_t n, const double *A, const double *x, double lambda)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = -lambda * x[i];
        for (size_t j = 0; j < n; j++)
            r += A[i * n + j] * x[j];
        s += r * r;
    }
    return sqrt(s);
}

/* Norm of the part of x outside span{Q e_l : l in [lo, hi)}. */
static double outside_span(size_t n, const double *Q, size_t lo, size_t hi, const double *x)
{
    double *p = calloc(n, sizeof(double));
    assert_non_null(p);
    for (size_t l = lo; l < hi; l++) {
        double c = 0.0;
        for (size_t i = 0; i < n; i++)
            c += Q[i * n + l] * x[i];
        for (size_t i = 0; i < n; i++)
            p[i] += c * Q[i * n + l];
    }
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (x[i] - p[i]) * (x[i] - p[i]);
    free(p);
    return sqrt(s);
}

/* Run Lanczos on A and check both extremes against the known ones, and the Ritz vectors'
 * residuals computed here. */
static void check_extremes(size_t n, const double *A, double lmin, double lmax,
                           const basin_lanczos_opts *opts, double tol_lambda)
{
    dense_op op;
    basin_lanczos_result res;
    double *xmin = malloc(n * sizeof(double)), *xmax = malloc(n * sizeof(double));
    assert_non_null(xmin);
    assert_non_null(xmax);
    dense_op_init(&op, n, A);
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, opts, &res, xmin, xmax),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations >= 1 && res.iterations <= n);
    assert_near(res.lambda_min, lmin, tol_lambda);
    assert_near(res.lambda_max, lmax, tol_lambda);
    assert_near(vec_norm(xmin, n), 1.0, 1e-12);
    assert_near(vec_norm(xmax, n), 1.0, 1e-12);
    double scale = fmax(fmax(fabs(lmin), fabs(lmax)), 1.0);
    double rmin = residual(n, A, xmin, res.lambda_min);
    double rmax = residual(n, A, xmax, res.lambda_max);
    assert_true(rmin <= 1e-9 * scale);
    assert_true(rmax <= 1e-9 * scale);
    /* the reported residuals are the true ones */
    assert_near(res.residual_min, rmin, 1e-12 * scale);
    assert_near(res.residual_max, rmax, 1e-12 * scale);
    free(xmin);
    free(xmax);
}

/* ---- Lanczos ---- */

static void test_lanczos_known_spectrum(void **state)
{
    (void)state;
    const size_t n = 40;
    double lambda[40];
    basin_rng rng;
    basin_rng_init(&rng, 11, 0);
    for (size_t i = 0; i < n; i++)
        lambda[i] = 0.5 + 2.0 * basin_rng_uniform(&rng);
    lambda[3] = 0.1;  /* the extremes, placed off the ends of the array */
    lambda[17] = 3.0; /* so that nothing depends on their position */
    double *A = matrix_with_spectrum(n, lambda, 1, NULL);
    basin_lanczos_opts opts = {0, 0.0, 5};
    check_extremes(n, A, 0.1, 3.0, &opts, 1e-9);
    check_extremes(n, A, 0.1, 3.0, NULL, 1e-9); /* defaults */
    free(A);
}

/* Well-separated extremes in a large space: converged well before the Krylov cap, with the
 * stopping rule (not the cap) ending the run. */
static void test_lanczos_early_stop(void **state)
{
    (void)state;
    const size_t n = 160;
    double *lambda = malloc(n * sizeof(double));
    assert_non_null(lambda);
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)i / (double)n; /* [0, 1) */
    lambda[0] = -4.0;
    lambda[n - 1] = 6.0;
    double *A = matrix_with_spectrum(n, lambda, 2, NULL);
    dense_op op;
    basin_lanczos_result res;
    dense_op_init(&op, n, A);
    basin_lanczos_opts opts = {n, 1e-10, 3};
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, NULL, NULL),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations < n / 2);
    /* one matvec per step plus two per residual check */
    assert_true(op.calls >= res.iterations + 2);
    assert_near(res.lambda_min, -4.0, 1e-9);
    assert_near(res.lambda_max, 6.0, 1e-9);
    free(A);
    free(lambda);
}

static void test_lanczos_indefinite(void **state)
{
    (void)state;
    const size_t n = 25;
    double lambda[25];
    for (size_t i = 0; i < n; i++)
        lambda[i] = -7.0 + 11.0 * (double)i / (double)(n - 1); /* −7 … 4 */
    double *A = matrix_with_spectrum(n, lambda, 3, NULL);
    basin_lanczos_opts opts = {0, 0.0, 9};
    check_extremes(n, A, -7.0, 4.0, &opts, 1e-9);
    free(A);
}

/* Eigenvalues 1e-10 apart at both ends. */
static void test_lanczos_clustered(void **state)
{
    (void)state;
    const size_t n = 30;
    double lambda[30];
    for (size_t i = 0; i < n; i++)
        lambda[i] = 1.0 + 0.05 * (double)i;
    lambda[0] = -1.0;
    lambda[1] = -1.0 + 1e-10;
    lambda[2] = -1.0 + 2e-10;
    lambda[n - 1] = 5.0;
    lambda[n - 2] = 5.0 - 1e-10;
    double *A = matrix_with_spectrum(n, lambda, 4, NULL);
    basin_lanczos_opts opts = {0, 0.0, 1};
    check_extremes(n, A, -1.0, 5.0, &opts, 1e-9);
    free(A);
}

/* Repeated extreme eigenvalues: a Krylov space sees each distinct eigenvalue once, so the run
 * ends on an invariant subspace after at most (number of distinct eigenvalues) steps; the Ritz
 * vectors must lie in the right eigenspaces. */
static void test_lanczos_degenerate(void **state)
{
    (void)state;
    const size_t n = 24;
    double lambda[24];
    double *Q;
    /* 0, 1, 2, 3 six times each; the eigenvectors of v are columns [6v, 6v+6) of Q */
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)(i / 6);
    double *A = matrix_with_spectrum(n, lambda, 5, &Q);
    dense_op op;
    basin_lanczos_result res;
    double xmin[24], xmax[24];
    dense_op_init(&op, n, A);
    basin_lanczos_opts opts = {0, 0.0, 12};
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, xmin, xmax),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations <= 4);
    assert_near(res.lambda_min, 0.0, 1e-12);
    assert_near(res.lambda_max, 3.0, 1e-12);
    assert_true(outside_span(n, Q, 0, 6, xmin) < 1e-10);
    assert_true(outside_span(n, Q, 18, 24, xmax) < 1e-10);
    free(A);
    free(Q);
}

/* An ill-conditioned spectrum (10^−3 … 10^3, log-spaced) where the small end converges only
 * when the Krylov space fills the whole space: this needs the basis to stay orthogonal over
 * all dim steps (without reorthogonalisation ghost copies of 10^3 appear and λ_min is off). */
static void test_lanczos_full_space(void **state)
{
    (void)state;
    const size_t n = 60;
    double lambda[60];
    for (size_t i = 0; i < n; i++)
        lambda[i] = pow(10.0, -3.0 + 6.0 * (double)i / (double)(n - 1));
    double *A = matrix_with_spectrum(n, lambda, 13, NULL);
    basin_lanczos_opts opts = {n, 1e-12, 21};
    check_extremes(n, A, 1e-3, 1e3, &opts, 1e-9);
    free(A);
}

/* A random symmetric matrix against LAPACK's dsyev called directly. */
static void test_lanczos_vs_lapack(void **state)
{
    (void)state;
    const size_t n = 50;
    double *A = malloc(n * n * sizeof(double)), *B = malloc(n * n * sizeof(double));
    double w[50];
    assert_non_null(A);
    assert_non_null(B);
    basin_rng rng;
    basin_rng_init(&rng, 99, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            A[i * n + j] = A[j * n + i] = basin_rng_normal(&rng);
    memcpy(B, A, n * n * sizeof(double));
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, B, (lapack_int)n, w),
                     0);
    basin_lanczos_opts opts = {0, 1e-11, 42};
    check_extremes(n, A, w[0], w[n - 1], &opts, 1e-9);
    free(A);
    free(B);
}

static void test_lanczos_dim1(void **state)
{
    (void)state;
    double A[1] = {-2.5};
    dense_op op;
    basin_lanczos_result res;
    double xmin[1], xmax[1];
    dense_op_init(&op, 1, A);
    assert_int_equal(basin_lanczos_extremes(1, dense_matvec, &op, NULL, &res, xmin, xmax),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations == 1);
    assert_near(res.lambda_min, -2.5, 1e-15);
    assert_near(res.lambda_max, -2.5, 1e-15);
    assert_near(fabs(xmin[0]), 1.0, 1e-15);
    assert_near(fabs(xmax[0]), 1.0, 1e-15);
    assert_true(res.residual_min <= 1e-15 && res.residual_max <= 1e-15);
}

/* [[2,1],[1,2]]: eigenvalues 1, 3 with eigenvectors (1,−1)/√2, (1,1)/√2. */
static void test_lanczos_dim2(void **state)
{
    (void)state;
    double A[4] = {2, 1, 1, 2};
    dense_op op;
    basin_lanczos_result res;
    double xmin[2], xmax[2];
    dense_op_init(&op, 2, A);
    assert_int_equal(basin_lanczos_extremes(2, dense_matvec, &op, NULL, &res, xmin, xmax),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations <= 2);
    assert_near(res.lambda_min, 1.0, 1e-14);
    assert_near(res.lambda_max, 3.0, 1e-14);
    double r = sqrt(0.5);
    assert_near(fabs(xmin[0]), r, 1e-12);
    assert_near(xmin[0] + xmin[1], 0.0, 1e-12);
    assert_near(fabs(xmax[0]), r, 1e-12);
    assert_near(xmax[0] - xmax[1], 0.0, 1e-12);
}

/* The zero operator: an invariant subspace at the first step. */
static void test_lanczos_zero_operator(void **state)
{
    (void)state;
    double A[9] = {0};
    dense_op op;
    basin_lanczos_result res;
    dense_op_init(&op, 3, A);
    assert_int_equal(basin_lanczos_extremes(3, dense_matvec, &op, NULL, &res, NULL, NULL),
                     BASIN_OK);
    assert_true(res.converged);
    assert_true(res.iterations == 1);
    assert_true(res.lambda_min == 0.0 && res.lambda_max == 0.0);
}

/* A too-small Krylov cap on a hard spectrum: not converged, and the Ritz values lie inside the
 * spectrum (Cauchy interlacing), strictly away from the true extremes. */
static void test_lanczos_not_converged(void **state)
{
    (void)state;
    const size_t n = 120;
    double *lambda = malloc(n * sizeof(double));
    assert_non_null(lambda);
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)i / (double)(n - 1); /* uniform in [0, 1]: slow convergence */
    double *A = matrix_with_spectrum(n, lambda, 6, NULL);
    dense_op op;
    basin_lanczos_result res;
    dense_op_init(&op, n, A);
    basin_lanczos_opts opts = {5, 1e-10, 1};
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, NULL, NULL),
                     BASIN_OK);
    assert_false(res.converged);
    assert_true(res.iterations == 5);
    assert_true(res.lambda_min > 1e-6 && res.lambda_min < 0.5);
    assert_true(res.lambda_max < 1.0 - 1e-6 && res.lambda_max > 0.5);
    assert_true(res.residual_min > 1e-10 || res.residual_max > 1e-10);
    free(A);
    free(lambda);
}

/* The cap is min(max_iter, dim) and the same seed gives the same run. */
static void test_lanczos_cap_and_reproducible(void **state)
{
    (void)state;
    const size_t n = 12;
    double lambda[12];
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)(i * i);
    double *A = matrix_with_spectrum(n, lambda, 8, NULL);
    dense_op op;
    basin_lanczos_result r1, r2;
    double x1[12], x2[12];
    basin_lanczos_opts opts = {1000, 1e-13, 77};
    dense_op_init(&op, n, A);
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &r1, x1, NULL), BASIN_OK);
    dense_op_init(&op, n, A);
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &r2, x2, NULL), BASIN_OK);
    assert_true(r1.iterations <= n);
    assert_true(r1.iterations == r2.iterations);
    assert_true(r1.lambda_min == r2.lambda_min && r1.lambda_max == r2.lambda_max);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_near(r1.lambda_min, 0.0, 1e-9);
    assert_near(r1.lambda_max, 121.0, 1e-9 * 121.0);
    free(A);
}

static void test_lanczos_matvec_error(void **state)
{
    (void)state;
    const size_t n = 20;
    double lambda[20];
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)i;
    double *A = matrix_with_spectrum(n, lambda, 9, NULL);
    dense_op op;
    basin_lanczos_result res;
    /* an error on each of the first calls, including the residual matvecs at the end */
    dense_op_init(&op, n, A);
    basin_lanczos_opts opts = {0, 0.0, 2};
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, NULL, NULL),
                     BASIN_OK);
    size_t total = op.calls;
    for (size_t k = 1; k <= total; k++) {
        dense_op_init(&op, n, A);
        op.fail_at = k;
        op.fail_rc = BASIN_ECANCELLED;
        res.iterations = 99;
        assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, NULL, NULL),
                         BASIN_ECANCELLED);
        assert_true(op.calls == k); /* stopped at once */
        assert_true(res.iterations == 0 && res.converged == 0);
    }
    dense_op_init(&op, n, A);
    op.nan_at = 3;
    assert_int_equal(basin_lanczos_extremes(n, dense_matvec, &op, &opts, &res, NULL, NULL),
                     BASIN_ENUMERIC);
    free(A);
}

static void test_lanczos_invalid(void **state)
{
    (void)state;
    double A[1] = {1.0};
    dense_op op;
    basin_lanczos_result res;
    dense_op_init(&op, 1, A);
    basin_lanczos_opts bad_tol = {0, -1e-3, 0};
    basin_lanczos_opts nan_tol = {0, NAN, 0};
    assert_int_equal(basin_lanczos_extremes(0, dense_matvec, &op, NULL, &res, NULL, NULL),
                     BASIN_EINVAL);
    assert_int_equal(basin_lanczos_extremes(1, NULL, &op, NULL, &res, NULL, NULL), BASIN_EINVAL);
    assert_int_equal(basin_lanczos_extremes(1, dense_matvec, &op, NULL, NULL, NULL, NULL),
                     BASIN_EINVAL);
    assert_int_equal(basin_lanczos_extremes(1, dense_matvec, &op, &bad_tol, &res, NULL, NULL),
                     BASIN_EINVAL);
    assert_int_equal(basin_lanczos_extremes(1, dense_matvec, &op, &nan_tol, &res, NULL, NULL),
                     BASIN_EINVAL);
    assert_true(op.calls == 0);
    /* max_iter · dim overflowing size_t is refused before any allocation */
    basin_lanczos_opts huge = {SIZE_MAX, 0.0, 0};
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    int rc = basin_lanczos_extremes(SIZE_MAX / 2, dense_matvec, &op, &huge, &res, NULL, NULL);
    failing_alloc_remove();
    assert_int_equal(rc, BASIN_ERANGE);
    assert_true(fa.calls == 0);
}

/* ---- dense operator and dense eigensolver ---- */

/* A non-symmetric matvec M: H must be (M + Mᵀ)/2 entry by entry. */
static void test_operator_dense(void **state)
{
    (void)state;
    double M[9] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
    double H[9];
    double expect[9] = {1, 3, 5, 3, 5, 7, 5, 7, 10};
    dense_op op;
    dense_op_init(&op, 3, M);
    assert_int_equal(basin_operator_dense(3, dense_matvec, &op, H), BASIN_OK);
    assert_true(op.calls == 3);
    for (int i = 0; i < 9; i++)
        assert_near(H[i], expect[i], 0.0);
    dense_op_init(&op, 3, M);
    op.fail_at = 2;
    op.fail_rc = BASIN_EDIVERGED;
    assert_int_equal(basin_operator_dense(3, dense_matvec, &op, H), BASIN_EDIVERGED);
    assert_int_equal(basin_operator_dense(0, dense_matvec, &op, H), BASIN_EINVAL);
    failing_alloc fa;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    int rc = basin_operator_dense(SIZE_MAX / 2, dense_matvec, &op, H);
    failing_alloc_remove();
    assert_int_equal(rc, BASIN_ERANGE);
    assert_true(fa.calls == 0);
}

static void test_sym_eig(void **state)
{
    (void)state;
    const size_t n = 15;
    double lambda[15];
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)((int)(i * 7 % 15) - 5); /* −5 … 9, shuffled */
    double *A = matrix_with_spectrum(n, lambda, 10, NULL);
    double *H = malloc(n * n * sizeof(double)), *V = malloc(n * n * sizeof(double));
    double w[15], w2[15];
    assert_non_null(H);
    assert_non_null(V);
    memcpy(H, A, n * n * sizeof(double));
    assert_int_equal(basin_sym_eig(n, H, w, V), BASIN_OK);
    for (size_t i = 0; i < n; i++) {
        assert_near(w[i], -5.0 + (double)i, 1e-12);
        /* row i of V is a unit eigenvector of w[i] */
        assert_near(vec_norm(V + i * n, n), 1.0, 1e-12);
        assert_true(residual(n, A, V + i * n, w[i]) < 1e-12);
    }
    memcpy(H, A, n * n * sizeof(double));
    assert_int_equal(basin_sym_eig(n, H, w2, NULL), BASIN_OK);
    for (size_t i = 0; i < n; i++)
        assert_near(w2[i], w[i], 1e-12);
    H[5] = NAN;
    assert_int_equal(basin_sym_eig(n, H, w2, NULL), BASIN_EINVAL);
    assert_int_equal(basin_sym_eig(0, H, w2, NULL), BASIN_EINVAL);
    free(A);
    free(H);
    free(V);
}

/* ---- allocation failures ---- */

typedef struct sweep_case {
    size_t n;
    const double *A;
    double *H, *w, *V;
} sweep_case;

static int run_lanczos(void *arg)
{
    sweep_case *c = arg;
    dense_op op;
    basin_lanczos_result res;
    dense_op_init(&op, c->n, c->A);
    basin_lanczos_opts opts = {0, 0.0, 4};
    return basin_lanczos_extremes(c->n, dense_matvec, &op, &opts, &res, c->w, c->V);
}

static int run_dense(void *arg)
{
    sweep_case *c = arg;
    dense_op op;
    dense_op_init(&op, c->n, c->A);
    return basin_operator_dense(c->n, dense_matvec, &op, c->H);
}

static int run_eig(void *arg)
{
    sweep_case *c = arg;
    memcpy(c->H, c->A, c->n * c->n * sizeof(double));
    return basin_sym_eig(c->n, c->H, c->w, c->V);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const size_t n = 10;
    double lambda[10];
    for (size_t i = 0; i < n; i++)
        lambda[i] = (double)i - 3.0;
    double *A = matrix_with_spectrum(n, lambda, 12, NULL);
    double H[100], w[10], V[100];
    sweep_case c = {n, A, H, w, V};
    int (*fns[3])(void *) = {run_lanczos, run_dense, run_eig};
    for (int f = 0; f < 3; f++) {
        for (int mode = 0; mode < 2; mode++) {
            failing_alloc_report rep;
            int ok = failing_alloc_sweep(fns[f], &c, (failing_alloc_mode)mode, 0, &rep);
            if (!ok)
                print_error("fn %d mode %d: bad N %zu rc %d live %ld final %d\n", f, mode,
                            rep.bad_n, rep.bad_rc, rep.bad_live, rep.final_rc);
            assert_true(ok);
            assert_true(rep.runs >= 1); /* each allocates, so each was made to fail */
        }
    }
    free(A);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lanczos_known_spectrum),
        cmocka_unit_test(test_lanczos_early_stop),
        cmocka_unit_test(test_lanczos_indefinite),
        cmocka_unit_test(test_lanczos_clustered),
        cmocka_unit_test(test_lanczos_degenerate),
        cmocka_unit_test(test_lanczos_full_space),
        cmocka_unit_test(test_lanczos_vs_lapack),
        cmocka_unit_test(test_lanczos_dim1),
        cmocka_unit_test(test_lanczos_dim2),
        cmocka_unit_test(test_lanczos_zero_operator),
        cmocka_unit_test(test_lanczos_not_converged),
        cmocka_unit_test(test_lanczos_cap_and_reproducible),
        cmocka_unit_test(test_lanczos_matvec_error),
        cmocka_unit_test(test_lanczos_invalid),
        cmocka_unit_test(test_operator_dense),
        cmocka_unit_test(test_sym_eig),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
