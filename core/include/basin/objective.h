/* The objective a trainer minimises: a function of one flat parameter vector θ.
 *
 * Training and second-order analysis see only this interface, so the empirical risk of a
 * network on a dataset and closed-form objectives (the Gaussian teacher–student population
 * risk) are handled by the same code. An objective carries its own scratch memory and is
 * therefore used by one thread at a time; create one per worker. */
#ifndef BASIN_OBJECTIVE_H
#define BASIN_OBJECTIVE_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"

typedef struct basin_objective {
    size_t dim;       /* number of parameters */
    size_t n_samples; /* samples that mini-batches draw from; 0 for closed-form objectives */
    void *ctx;
    /* value (and gradient when grad != NULL) on samples idx[0..m) (idx == NULL: the full
     * objective; m is then ignored). Returns a BASIN_* status. */
    int (*value_grad)(void *ctx, const double *theta, const size_t *idx, size_t m, double *value,
                      double *grad);
    /* hv = ∇²F(θ) v of the full objective; NULL when not available. */
    int (*hvp)(void *ctx, const double *theta, const double *v, double *hv);
    void (*release)(void *ctx);
} basin_objective;

/* R(θ) = (1/N) Σ ℓ(f_θ(x_i), y_i) + (l2/2)‖θ‖² on all of ds. net and ds are borrowed and must
 * outlive the objective. max_batch bounds the scratch memory (samples evaluated at once;
 * 0 = all of ds). */
int basin_objective_empirical(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                              double l2, size_t max_batch, basin_objective *out);

/* Free what the objective owns (safe on a zeroed struct). */
void basin_objective_release(basin_objective *obj);

#endif
