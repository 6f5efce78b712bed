/* Training: the loop, stopping rules, trajectory callback and batched restarts.
 *
 * A restart is identified by (spec->seed, restart index). Its initial point is drawn from
 * basin_rng stream 2·index and its mini-batch order from stream 2·index+1, so the same spec
 * and index give a bit-identical trajectory and end point however restarts are batched or
 * spread over threads. */
#ifndef BASIN_TRAIN_H
#define BASIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "basin/net.h"
#include "basin/objective.h"
#include "basin/optim.h"

typedef struct basin_train_spec {
    basin_optim_spec optim;
    basin_init init;
    uint64_t seed;
    size_t max_steps;        /* ≥ 1 */
    double grad_tol;         /* stop when ‖∇R‖ ≤ grad_tol (0 disables) */
    double risk_tol;         /* stop when R ≤ risk_tol (negative disables) */
    double plateau_tol;      /* stop when the relative decrease of R over plateau_window steps */
    size_t plateau_window;   /*   is below plateau_tol (window 0 disables) */
    double diverge_factor;   /* fail when R > diverge_factor·max(R0, 1) or non-finite (≤ 0:
                                only non-finite values count) */
    size_t trajectory_every; /* call on_point every k steps (and at the first and last); 0 = only
                                first and last */
    size_t check_every;      /* mini-batch runs: evaluate the full objective every k steps
                                (0 = once per epoch) for stopping rules */
} basin_train_spec;

/* A spec with documented defaults: GD lr 0.01, He-normal init, 10000 steps, grad_tol 1e-8,
 * risk_tol −1, plateau off, diverge_factor 1e6, trajectory every 100 steps. */
void basin_train_defaults(basin_train_spec *spec);
int basin_train_check(const basin_train_spec *spec);

typedef enum basin_stop_reason {
    BASIN_STOP_MAX_STEPS,
    BASIN_STOP_GRAD_TOL,
    BASIN_STOP_RISK_TOL,
    BASIN_STOP_PLATEAU,
    BASIN_STOP_DIVERGED,
    BASIN_STOP_CANCELLED
} basin_stop_reason;
const char *basin_stop_reason_name(basin_stop_reason r);

typedef struct basin_traj_point {
    size_t step;
    double risk;      /* full objective */
    double grad_norm; /* ‖∇R‖ of the full objective */
    double param_norm;
} basin_traj_point;

typedef struct basin_train_hooks {
    /* Called for trajectory points of restart `restart`; a nonzero return cancels the run. */
    int (*on_point)(void *user, uint64_t restart, const basin_traj_point *pt);
    /* Polled about every 64 steps; a nonzero return cancels the run (BASIN_STOP_CANCELLED). */
    int (*should_stop)(void *user, uint64_t restart);
    void *user;
} basin_train_hooks;

typedef struct basin_run_result {
    uint64_t restart;
    basin_stop_reason reason;
    size_t steps;
    double initial_risk;
    double final_risk; /* full objective at the end point */
    double grad_norm;
    double param_norm;
    int risk_falling; /* 1 if R fell over the last plateau_window (or 100) steps */
} basin_run_result;

/* Divergence rolls θ back to the last point whose full objective passed every check (for GD the
 * previous iterate); `steps` and the last trajectory point describe that point. A non-finite
 * initial risk leaves θ at the start with steps = 0. With init GIVEN and no `given` vector the
 * incoming theta is the start point. diverge_factor in (0, 1) is rejected by basin_train_check.
 *
 * Train restart `restart`: initialise θ (theta, obj->dim values; read as the start point only
 * when spec->init.kind == BASIN_INIT_GIVEN), run until a stopping rule fires, leave the end point
 * in theta and fill res. Divergence is not an error: it returns BASIN_OK with
 * res->reason = BASIN_STOP_DIVERGED. net is needed for fan-in based initialisation (may be NULL
 * for NORMAL/UNIFORM/GIVEN). hooks may be NULL. */
int basin_train_restart(const basin_objective *obj, const basin_net *net,
                        const basin_train_spec *spec, uint64_t restart, double *theta,
                        const basin_train_hooks *hooks, basin_run_result *res);

/* Train restarts first..first+count−1 together; thetas is count × obj->dim, results count long.
 * Bit-identical to calling basin_train_restart on each. */
int basin_train_batch(const basin_objective *obj, const basin_net *net,
                      const basin_train_spec *spec, uint64_t first, size_t count, double *thetas,
                      const basin_train_hooks *hooks, basin_run_result *results);

#endif
