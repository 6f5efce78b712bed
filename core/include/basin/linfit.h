/* Best affine fits: min over (A, b) of Σ_i ℓ(A x_i + b, y_i) on a set of samples.
 *
 * Used for a dataset's linear-fit risk R_lin (is the data linearly fittable — the premise of
 * the theory) and, per group of samples sharing an activation pattern, for the region
 * certificate. Exactness by loss:
 *   squared        exact: least squares by LAPACK dgelsd (minimum-norm, rank-deficient safe)
 *   logistic, cross_entropy  Newton with backtracking to ‖∇‖ ≤ 1e-12; separable groups have
 *                  infimum 0 that no finite (A,b) attains: reported with attained = 0
 *   huber          Newton / IRLS on the smooth convex objective (exact to tolerance)
 *   absolute, hinge  linear programs solved approximately (iteratively reweighted / smoothed);
 *                  reported with exact = 0 and an optimality gap bound where available. */
#ifndef BASIN_LINFIT_H
#define BASIN_LINFIT_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"

typedef struct basin_affine_fit {
    double risk_sum; /* min Σ_i ℓ over the group (not divided by anything) */
    int exact;       /* 1 when risk_sum is the exact minimum up to rounding/tolerance */
    int attained;    /* 0 when the infimum is approached only as ‖A‖ → ∞ */
    size_t iterations;
    size_t rank; /* rank of the [x 1] design (squared loss) */
    double gap;  /* estimated bound on risk_sum − the true minimum; 0 when exact */
} basin_affine_fit;

/* Fit on samples idx[0..m) of ds (idx == NULL: the first m) for a model with out_dim outputs.
 * coef (may be NULL) receives A row-major (out_dim × in_dim) followed by b (out_dim). */
int basin_affine_fit_group(const basin_dataset *ds, const size_t *idx, size_t m,
                           const basin_loss *loss, size_t out_dim, basin_affine_fit *fit,
                           double *coef);

/* R_lin = (1/n) · min Σ_i ℓ over the whole dataset; *fittable = 1 when R_lin ≤ tol. */
int basin_linear_fit_risk(const basin_dataset *ds, const basin_loss *loss, size_t out_dim,
                          double tol, double *risk, int *exact, int *fittable);

#endif
