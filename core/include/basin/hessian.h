/* Second-order analysis: extreme Hessian eigenvalues by Lanczos on Hessian-vector products,
 * a dense Hessian for small problems, and symmetric eigensolvers (LAPACK). */
#ifndef BASIN_HESSIAN_H
#define BASIN_HESSIAN_H

#include <stddef.h>
#include <stdint.h>

/* out = A v for a symmetric operator A of size dim. Returns a BASIN_* status. */
typedef int (*basin_matvec_fn)(void *ctx, const double *v, double *out);

typedef struct basin_lanczos_opts {
    size_t max_iter; /* Krylov dimension cap (default min(dim, 200) when 0) */
    double tol;      /* stop when both Ritz residuals ≤ tol·max(|λ|,1) (default 1e-10 when 0) */
    uint64_t seed;   /* start vector */
} basin_lanczos_opts;

typedef struct basin_lanczos_result {
    double lambda_min, lambda_max;
    double residual_min, residual_max; /* ‖A x − λ x‖ of the Ritz vectors */
    size_t iterations;
    int converged;
} basin_lanczos_result;

/* Lanczos with full reorthogonalisation; the two extreme eigenpairs of the tridiagonal matrix are
 * found by LAPACK (dstevx, O(k) per step). Residuals are measured with a true matvec and compared
 * with tol·max(|λ_min|, |λ_max|, 1); the reported eigenvalues are the Ritz vectors' Rayleigh
 * quotients. vec_min / vec_max (dim values, may be NULL) receive unit Ritz vectors.
 * BASIN_ENUMERIC when the operator returns non-finite values. */
int basin_lanczos_extremes(size_t dim, basin_matvec_fn matvec, void *ctx,
                           const basin_lanczos_opts *opts, basin_lanczos_result *res,
                           double *vec_min, double *vec_max);

/* H (dim × dim, row-major) = [A e_1, ..., A e_dim], symmetrised as (H + Hᵀ)/2. */
int basin_operator_dense(size_t dim, basin_matvec_fn matvec, void *ctx, double *H);

/* Eigenvalues (ascending) of the symmetric dim × dim matrix H (destroyed) by LAPACK dsyev;
 * vecs (dim × dim, may be NULL) receives eigenvectors as rows. */
int basin_sym_eig(size_t dim, double *H, double *w, double *vecs);

#endif
