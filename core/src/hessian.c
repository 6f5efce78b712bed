/* Second-order linear algebra (hessian.h): the extreme eigenpairs of a symmetric operator known
 * only through matrix-vector products (a Hessian through Hessian-vector products), the dense
 * matrix of such an operator, and LAPACK's dense symmetric eigensolver.
 *
 * DESIGN
 * Lanczos with full reorthogonalisation (Golub & Van Loan, "Matrix Computations", 4th ed.,
 * §10.1; Parlett, "The Symmetric Eigenvalue Problem", ch. 13). From a Gaussian start vector
 * q_0 (basin_rng, keyed by opts->seed, so a run is reproducible) the recurrence
 *     w = A q_j − α_j q_j − β_{j−1} q_{j−1},  α_j = q_jᵀ A q_j,  β_j = ‖w‖,  q_{j+1} = w / β_j
 * builds an orthonormal Krylov basis Q_m (stored as m rows of length dim) and the tridiagonal
 * T_m = Q_mᵀ A Q_m (diagonal α, off-diagonal β). After the three-term update w is
 * orthogonalised against every stored q by classical Gram–Schmidt, twice ("twice is enough",
 * Giraud et al. 2005), so Q stays orthonormal to working precision and no spurious copies of
 * converged Ritz values appear. Memory is m·dim doubles; the caller bounds m with max_iter.
 *
 * Invariants: rows 0..j of Q are orthonormal; α[0..j], β[0..j−1] define T_{j+1}; j < m ≤ dim.
 *
 * After every step only the two extreme eigenpairs (θ, z) of T_{j+1} are computed, by LAPACK
 * dstevx (bisection + inverse iteration, O(j) each) rather than dstev (all pairs, O(j³)), so
 * the per-step convergence test stays cheap. In exact arithmetic the residual of the Ritz pair
 * (θ, x = Qᵀz) is ‖Ax − θx‖ = β_j·|z_last|; when both of these estimates pass, the Ritz vectors
 * are assembled and their TRUE residuals are measured with one extra matvec each; only those
 * decide `converged`. The reported eigenvalue is the Rayleigh quotient xᵀAx of the unit Ritz
 * vector, which that same matvec gives for free (it equals θ up to rounding, and it is the
 * value whose residual ‖Ax − ρx‖ is minimal). Should the true residuals disagree with the
 * estimates (rounding in an operator that is only nearly symmetric), the iteration goes on, and
 * each later step that passes the estimate pays the two extra matvecs again.
 *
 * Convergence: both residuals ≤ tol·max(|λ_min|, |λ_max|, 1). The scale is the spectral
 * magnitude rather than each eigenvalue's own |λ| because the residual of a matvec computed in
 * floating point cannot drop below ~ε‖A‖: with a per-eigenvalue scale a λ_min near 0 (the
 * interesting case at a near-degenerate minimum) could never be declared converged. Since A is
 * symmetric, |λ − λ_true| ≤ residual for the nearest true eigenvalue.
 *
 * Early exit on an invariant subspace: β_j ≤ 1e-12·‖T‖ (‖T‖ estimated by max |α|+|β|+|β|)
 * means the Krylov space is invariant under A up to rounding, so its Ritz values are exact
 * eigenvalues; with a random start vector the space contains a component of every eigenspace,
 * so the extremes are A's. The Krylov dimension is capped at dim.
 *
 * Error contract: every function returns BASIN_OK or a negative BASIN_E* code and frees what it
 * allocated on every path. A matvec's nonzero status is returned unchanged; non-finite matvec
 * output gives BASIN_ENUMERIC, as does a LAPACK failure. All memory comes from basin_alloc
 * (the LAPACKE *_work interfaces are used so LAPACK allocates nothing itself). */
#include "basin/hessian.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/rng.h"
#include "basin/status.h"

#define LANCZOS_DEFAULT_MAX_ITER 200
#define LANCZOS_DEFAULT_TOL 1e-10
#define LANCZOS_INVARIANT_REL 1e-12

/* LAPACK takes sizes as lapack_int (32-bit unless built ILP64). */
static int fits_lapack_int(size_t n)
{
    size_t max = sizeof(lapack_int) >= 8 ? (size_t)INT64_MAX : (size_t)INT32_MAX;
    return n <= max;
}

static int all_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static double norm2(const double *x, size_t n)
{
    return cblas_dnrm2((blasint)n, x, 1);
}

/* out = A v, with non-finite output reported as BASIN_ENUMERIC. */
static int apply(basin_matvec_fn matvec, void *ctx, size_t dim, const double *v, double *out)
{
    int rc = matvec(ctx, v, out);
    if (rc != BASIN_OK)
        return rc;
    return all_finite(out, dim) ? BASIN_OK : BASIN_ENUMERIC;
}

/* Scratch of one Lanczos run, allocated at once so that cleanup is one function. */
typedef struct lanczos_ws {
    size_t dim, m;
    double *q;       /* m × dim Krylov basis, row j = q_j */
    double *alpha;   /* m */
    double *beta;    /* m */
    double *w;       /* dim: the next residual vector */
    double *ax;      /* dim: A x of a Ritz vector */
    double *h;       /* m: Gram–Schmidt coefficients */
    double *td, *te; /* m: copies of α, β that dstevx may scale */
    double *work;    /* 5m */
    lapack_int *iwork, *ifail;
    double *zmin, *zmax; /* m: extreme eigenvectors of T */
    double *xmin, *xmax; /* dim: Ritz vectors */
} lanczos_ws;

static void lanczos_ws_free(lanczos_ws *ws)
{
    basin_free(ws->q);
    basin_free(ws->alpha);
    basin_free(ws->beta);
    basin_free(ws->w);
    basin_free(ws->ax);
    basin_free(ws->h);
    basin_free(ws->td);
    basin_free(ws->te);
    basin_free(ws->work);
    basin_free(ws->iwork);
    basin_free(ws->ifail);
    basin_free(ws->zmin);
    basin_free(ws->zmax);
    basin_free(ws->xmin);
    basin_free(ws->xmax);
    memset(ws, 0, sizeof *ws);
}

static int lanczos_ws_alloc(lanczos_ws *ws, size_t dim, size_t m)
{
    size_t qsize, m5;
    memset(ws, 0, sizeof *ws);
    ws->dim = dim;
    ws->m = m;
    if (basin_mul_size(m, dim, &qsize) != BASIN_OK || basin_mul_size(m, 5, &m5) != BASIN_OK)
        return BASIN_ERANGE;
    ws->q = basin_alloc_array(qsize, sizeof(double));
    ws->alpha = basin_alloc_array(m, sizeof(double));
    ws->beta = basin_alloc_array(m, sizeof(double));
    ws->w = basin_alloc_array(dim, sizeof(double));
    ws->ax = basin_alloc_array(dim, sizeof(double));
    ws->h = basin_alloc_array(m, sizeof(double));
    ws->td = basin_alloc_array(m, sizeof(double));
    ws->te = basin_alloc_array(m, sizeof(double));
    ws->work = basin_alloc_array(m5, sizeof(double));
    ws->iwork = basin_alloc_array(m5, sizeof(lapack_int));
    ws->ifail = basin_alloc_array(m, sizeof(lapack_int));
    ws->zmin = basin_alloc_array(m, sizeof(double));
    ws->zmax = basin_alloc_array(m, sizeof(double));
    ws->xmin = basin_alloc_array(dim, sizeof(double));
    ws->xmax = basin_alloc_array(dim, sizeof(double));
    if (!ws->q || !ws->alpha || !ws->beta || !ws->w || !ws->ax || !ws->h || !ws->td || !ws->te ||
        !ws->work || !ws->iwork || !ws->ifail || !ws->zmin || !ws->zmax || !ws->xmin || !ws->xmax)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

/* The index-th smallest (1-based) eigenpair of T_k = tridiag(β, α, β) by dstevx. */
static int tridiag_eigpair(lanczos_ws *ws, size_t k, size_t index, double *theta, double *z)
{
    lapack_int found = 0;
    double wv[1];
    memcpy(ws->td, ws->alpha, k * sizeof(double));
    if (k > 1)
        memcpy(ws->te, ws->beta, (k - 1) * sizeof(double));
    lapack_int info =
        LAPACKE_dstevx_work(LAPACK_COL_MAJOR, 'V', 'I', (lapack_int)k, ws->td, ws->te, 0.0, 0.0,
                            (lapack_int)index, (lapack_int)index, 2.0 * LAPACKE_dlamch('S'), &found,
                            wv, z, (lapack_int)k, ws->work, ws->iwork, ws->ifail);
    if (info != 0 || found != 1)
        return BASIN_ENUMERIC;
    *theta = wv[0];
    return BASIN_OK;
}

/* x = Q_kᵀ z normalised; *lambda = xᵀAx and *resid = ‖Ax − λx‖ (one matvec, into ws->ax, so
 * the Lanczos residual in ws->w survives for the next step). */
static int ritz_pair(lanczos_ws *ws, size_t k, basin_matvec_fn matvec, void *ctx, const double *z,
                     double *x, double *lambda, double *resid)
{
    size_t dim = ws->dim;
    cblas_dgemv(CblasRowMajor, CblasTrans, (blasint)k, (blasint)dim, 1.0, ws->q, (blasint)dim, z, 1,
                0.0, x, 1);
    double nx = norm2(x, dim);
    if (!(nx > 0) || !isfinite(nx))
        return BASIN_ENUMERIC;
    cblas_dscal((blasint)dim, 1.0 / nx, x, 1);
    int rc = apply(matvec, ctx, dim, x, ws->ax);
    if (rc != BASIN_OK)
        return rc;
    double rq = cblas_ddot((blasint)dim, x, 1, ws->ax, 1);
    cblas_daxpy((blasint)dim, -rq, x, 1, ws->ax, 1);
    *lambda = rq;
    *resid = norm2(ws->ax, dim);
    return BASIN_OK;
}

/* One Lanczos step j: α_j, β_j and the reorthogonalised residual in ws->w. */
static int lanczos_step(lanczos_ws *ws, size_t j, basin_matvec_fn matvec, void *ctx)
{
    size_t dim = ws->dim;
    const double *qj = ws->q + j * dim;
    int rc = apply(matvec, ctx, dim, qj, ws->w);
    if (rc != BASIN_OK)
        return rc;
    double a = cblas_ddot((blasint)dim, qj, 1, ws->w, 1);
    cblas_daxpy((blasint)dim, -a, qj, 1, ws->w, 1);
    if (j > 0)
        cblas_daxpy((blasint)dim, -ws->beta[j - 1], qj - dim, 1, ws->w, 1);
    for (int pass = 0; pass < 2; pass++) {
        /* h = Q w, then w −= Qᵀ h over the j+1 stored basis vectors */
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (blasint)(j + 1), (blasint)dim, 1.0, ws->q,
                    (blasint)dim, ws->w, 1, 0.0, ws->h, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, (blasint)(j + 1), (blasint)dim, -1.0, ws->q,
                    (blasint)dim, ws->h, 1, 1.0, ws->w, 1);
        a += ws->h[j];
    }
    ws->alpha[j] = a;
    ws->beta[j] = norm2(ws->w, dim);
    return BASIN_OK;
}

static void start_vector(double *q, size_t dim, uint64_t seed)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < dim; i++)
        q[i] = basin_rng_normal(&rng);
    double nq = norm2(q, dim);
    if (nq > 0) {
        cblas_dscal((blasint)dim, 1.0 / nq, q, 1);
    } else { /* not reachable with a working generator; keeps the invariant anyway */
        memset(q, 0, dim * sizeof(double));
        q[0] = 1.0;
    }
}

/* Assemble both Ritz pairs of T_k, measure their true residuals and fill res. */
static int finish(lanczos_ws *ws, size_t k, basin_matvec_fn matvec, void *ctx, double tol,
                  basin_lanczos_result *res)
{
    int rc =
        ritz_pair(ws, k, matvec, ctx, ws->zmin, ws->xmin, &res->lambda_min, &res->residual_min);
    if (rc == BASIN_OK)
        rc =
            ritz_pair(ws, k, matvec, ctx, ws->zmax, ws->xmax, &res->lambda_max, &res->residual_max);
    if (rc != BASIN_OK)
        return rc;
    double scale = fmax(fmax(fabs(res->lambda_min), fabs(res->lambda_max)), 1.0);
    res->iterations = k;
    res->converged = res->residual_min <= tol * scale && res->residual_max <= tol * scale;
    return BASIN_OK;
}

int basin_lanczos_extremes(size_t dim, basin_matvec_fn matvec, void *ctx,
                           const basin_lanczos_opts *opts, basin_lanczos_result *res,
                           double *vec_min, double *vec_max)
{
    lanczos_ws ws;
    int rc = BASIN_OK;
    memset(&ws, 0, sizeof ws);
    if (res)
        memset(res, 0, sizeof *res);
    if (dim == 0 || !matvec || !res) {
        rc = BASIN_EINVAL;
        goto done;
    }
    size_t m = opts && opts->max_iter ? opts->max_iter : LANCZOS_DEFAULT_MAX_ITER;
    double tol = opts && opts->tol != 0.0 ? opts->tol : LANCZOS_DEFAULT_TOL;
    uint64_t seed = opts ? opts->seed : 0;
    if (!(tol > 0) || !isfinite(tol)) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (m > dim)
        m = dim;
    if (!fits_lapack_int(m) || !fits_lapack_int(dim)) {
        rc = BASIN_ERANGE;
        goto done;
    }
    rc = lanczos_ws_alloc(&ws, dim, m);
    if (rc != BASIN_OK)
        goto done;

    start_vector(ws.q, dim, seed);
    double tnorm = 0.0;
    for (size_t j = 0;; j++) {
        rc = lanczos_step(&ws, j, matvec, ctx);
        if (rc != BASIN_OK)
            goto done;
        size_t k = j + 1;
        double tmin, tmax;
        rc = tridiag_eigpair(&ws, k, 1, &tmin, ws.zmin);
        if (rc == BASIN_OK)
            rc = tridiag_eigpair(&ws, k, k, &tmax, ws.zmax);
        if (rc != BASIN_OK)
            goto done;
        double bj = ws.beta[j];
        tnorm = fmax(tnorm, fabs(ws.alpha[j]) + bj + (j > 0 ? ws.beta[j - 1] : 0.0));
        double scale = fmax(fmax(fabs(tmin), fabs(tmax)), 1.0);
        int invariant = bj <= LANCZOS_INVARIANT_REL * tnorm;
        int estimated =
            bj * fabs(ws.zmin[j]) <= tol * scale && bj * fabs(ws.zmax[j]) <= tol * scale;
        int last = invariant || k == m;
        if (estimated || last) {
            rc = finish(&ws, k, matvec, ctx, tol, res);
            if (rc != BASIN_OK)
                goto done;
            if (res->converged || last)
                break;
        }
        cblas_dcopy((blasint)dim, ws.w, 1, ws.q + k * dim, 1);
        cblas_dscal((blasint)dim, 1.0 / bj, ws.q + k * dim, 1);
    }
    if (vec_min)
        memcpy(vec_min, ws.xmin, dim * sizeof(double));
    if (vec_max)
        memcpy(vec_max, ws.xmax, dim * sizeof(double));

done:
    if (rc != BASIN_OK && res)
        memset(res, 0, sizeof *res);
    lanczos_ws_free(&ws);
    return rc;
}

int basin_operator_dense(size_t dim, basin_matvec_fn matvec, void *ctx, double *H)
{
    double *e = NULL, *col = NULL;
    size_t total;
    int rc = BASIN_OK;
    if (dim == 0 || !matvec || !H) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (basin_mul_size(dim, dim, &total) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    e = basin_calloc(dim, sizeof(double));
    col = basin_alloc_array(dim, sizeof(double));
    if (!e || !col) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < dim; j++) {
        e[j] = 1.0;
        rc = apply(matvec, ctx, dim, e, col);
        e[j] = 0.0;
        if (rc != BASIN_OK)
            goto done;
        for (size_t i = 0; i < dim; i++)
            H[i * dim + j] = col[i];
    }
    for (size_t i = 0; i < dim; i++) {
        for (size_t j = i + 1; j < dim; j++) {
            double s = 0.5 * (H[i * dim + j] + H[j * dim + i]);
            H[i * dim + j] = s;
            H[j * dim + i] = s;
        }
    }

done:
    basin_free(e);
    basin_free(col);
    return rc;
}

int basin_sym_eig(size_t dim, double *H, double *w, double *vecs)
{
    double *work = NULL;
    size_t total;
    int rc = BASIN_OK;
    if (dim == 0 || !H || !w) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (basin_mul_size(dim, dim, &total) != BASIN_OK || !fits_lapack_int(dim)) {
        rc = BASIN_ERANGE;
        goto done;
    }
    if (!all_finite(H, total)) {
        rc = BASIN_EINVAL;
        goto done;
    }
    /* A symmetric matrix reads the same in either layout; in column-major the eigenvectors come
     * back as columns, which in our row-major memory are rows, as promised. */
    char jobz = vecs ? 'V' : 'N';
    lapack_int n = (lapack_int)dim;
    double query = 0.0;
    lapack_int info = LAPACKE_dsyev_work(LAPACK_COL_MAJOR, jobz, 'U', n, H, n, w, &query, -1);
    if (info != 0 || !(query >= 1.0) || !fits_lapack_int((size_t)query)) {
        rc = info != 0 ? BASIN_ENUMERIC : BASIN_ERANGE;
        goto done;
    }
    size_t lwork = (size_t)query;
    work = basin_alloc_array(lwork, sizeof(double));
    if (!work) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    info = LAPACKE_dsyev_work(LAPACK_COL_MAJOR, jobz, 'U', n, H, n, w, work, (lapack_int)lwork);
    if (info != 0) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    if (vecs)
        memcpy(vecs, H, total * sizeof(double));

done:
    basin_free(work);
    return rc;
}
