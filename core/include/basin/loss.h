/* Per-sample losses ℓ(o, y) of a network output o (k numbers) against a target row y.
 *
 * Conventions match PyTorch's reduction='sum' over the k outputs of one sample (the risk then
 * takes the mean over samples):
 *   squared        ½ Σ (o−y)²                     y: k numbers
 *   absolute       Σ |o−y|  (derivative 0 at 0)   y: k numbers
 *   huber{δ}       Σ ½r² if |r|<δ else δ(|r|−½δ)  y: k numbers   (torch.nn.HuberLoss)
 *   logistic       softplus(o) − y·o              k = 1, y ∈ {0,1} (BCEWithLogitsLoss)
 *   cross_entropy  logsumexp(o) − o_y             y: one class index in [0,k)
 *   hinge          max(0, 1 − t·o), t = 2y−1      k = 1, y ∈ {0,1}
 * All are convex in o. Second derivatives (for Hessian-vector products) are exact where the loss
 * is twice differentiable and 0 on the measure-zero kinks (as autograd does). */
#ifndef BASIN_LOSS_H
#define BASIN_LOSS_H

#include <stddef.h>

typedef enum basin_loss_kind {
    BASIN_LOSS_SQUARED,
    BASIN_LOSS_ABSOLUTE,
    BASIN_LOSS_HUBER,
    BASIN_LOSS_LOGISTIC,
    BASIN_LOSS_CROSS_ENTROPY,
    BASIN_LOSS_HINGE
} basin_loss_kind;

typedef struct basin_loss {
    basin_loss_kind kind;
    double huber_delta; /* > 0; used by BASIN_LOSS_HUBER only (default 1) */
} basin_loss;

/* Number of target values per sample this loss expects for a network with out_dim outputs. */
size_t basin_loss_target_dim(const basin_loss *loss, size_t out_dim);

/* BASIN_OK when the loss can be used with out_dim outputs (logistic/hinge need 1, cross
 * entropy ≥ 2) and delta is valid; BASIN_EINVAL otherwise. */
int basin_loss_check(const basin_loss *loss, size_t out_dim);

/* BASIN_OK when target row y (basin_loss_target_dim values) is admissible: finite, 0/1 for
 * logistic and hinge, an integer class in [0,out_dim) for cross entropy. */
int basin_loss_check_target(const basin_loss *loss, size_t out_dim, const double *y);

/* ℓ(o, y) for one sample; when grad != NULL also writes ∂ℓ/∂o (k values). */
double basin_loss_eval(const basin_loss *loss, const double *o, const double *y, size_t k,
                       double *grad);

/* hv = (∂²ℓ/∂o²) v for one sample (k values). */
void basin_loss_hess_vec(const basin_loss *loss, const double *o, const double *y, size_t k,
                         const double *v, double *hv);

/* The infimum of ℓ over o (0 for all losses here); used to state when risk 0 is global. */
double basin_loss_infimum(const basin_loss *loss);

/* Stable name ("squared", "cross_entropy", ...) and the reverse lookup (BASIN_EINVAL if unknown).
 */
const char *basin_loss_name(basin_loss_kind kind);
int basin_loss_from_name(const char *name, basin_loss_kind *out);

#endif
