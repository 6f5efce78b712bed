/* Optimizers: gradient descent, mini-batch SGD, heavy-ball and Nesterov momentum, Adam, with a
 * constant or step-decay learning rate. Update rules follow torch.optim (SGD with dampening 0,
 * Adam without amsgrad) so that trajectories can be compared with PyTorch step for step. */
#ifndef BASIN_OPTIM_H
#define BASIN_OPTIM_H

#include <stddef.h>

typedef enum basin_optim_kind {
    BASIN_OPT_GD,       /* θ −= lr·g (with batch > 0: mini-batch SGD) */
    BASIN_OPT_MOMENTUM, /* v = μv + g; θ −= lr·v */
    BASIN_OPT_NESTEROV, /* v = μv + g; θ −= lr·(g + μv) */
    BASIN_OPT_ADAM      /* torch.optim.Adam */
} basin_optim_kind;

typedef enum basin_schedule_kind {
    BASIN_SCHEDULE_CONSTANT,
    BASIN_SCHEDULE_STEP /* lr · gamma^floor(step / step_every) */
} basin_schedule_kind;

typedef struct basin_optim_spec {
    basin_optim_kind kind;
    double lr;                /* > 0 */
    size_t batch;             /* 0 = full batch; else samples per step, reshuffled every epoch */
    double momentum;          /* μ in [0, 1) for MOMENTUM/NESTEROV */
    double beta1, beta2, eps; /* Adam */
    basin_schedule_kind schedule;
    size_t step_every;
    double gamma;
} basin_optim_spec;

/* A spec with torch's defaults for `kind` (momentum 0.9, betas 0.9/0.999, eps 1e-8). */
void basin_optim_defaults(basin_optim_kind kind, double lr, basin_optim_spec *out);
/* BASIN_OK or BASIN_EINVAL for out-of-range values. */
int basin_optim_check(const basin_optim_spec *spec);

/* Optimizer state for `dim` parameters (momentum / moment buffers). */
typedef struct basin_optim_state {
    basin_optim_spec spec;
    size_t dim;
    size_t t; /* steps taken */
    double *m, *v;
} basin_optim_state;

int basin_optim_state_init(basin_optim_state *st, const basin_optim_spec *spec, size_t dim);
void basin_optim_state_release(basin_optim_state *st);
void basin_optim_state_reset(basin_optim_state *st);
/* Learning rate in force at step t (0-based). */
double basin_optim_lr(const basin_optim_spec *spec, size_t t);
/* One update of θ with gradient g. */
void basin_optim_step(basin_optim_state *st, double *theta, const double *grad);

const char *basin_optim_name(basin_optim_kind kind);

#endif
