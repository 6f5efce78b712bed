/* The training loop: one restart from its seeded initial point to a stopping rule, with the
 * trajectory callback, cancellation, divergence handling, and the batched entry point that runs
 * many restarts with one set of buffers.
 *
 * DESIGN
 * - Identity of a run. Restart r of spec->seed draws its initial point from basin_rng stream 2r
 *   and its mini-batch order from stream 2r+1 (train.h). Nothing else is random, no state
 *   survives from one restart to the next (the index permutation starts from 0..n−1 and the
 *   optimizer state from zero every time), so a run is a pure function of (obj, spec, r).
 * - Full batch (optim.batch == 0): every step evaluates the full objective R and ∇R at the
 *   current θ; that gradient is used both for the stopping rules of the current θ and for the
 *   update. The loop is: check rules at θ_k → update → evaluate at θ_{k+1}. So the risk and
 *   gradient reported for the returned θ are always those of that θ, never of the previous
 *   iterate.
 * - Mini-batch (optim.batch = B > 0): an epoch is a fresh Fisher–Yates permutation of the
 *   n_samples indices cut into ceil(n/B) consecutive batches (the last one partial, used as is).
 *   The full objective is evaluated at step 0, every check_every steps (0: at the end of every
 *   epoch), at trajectory points and at the final step; the stopping rules on R and ‖∇R‖ are
 *   applied only there.
 * - Stopping rules, tested in this order at a point where R is known: risk_tol (R ≤ risk_tol,
 *   enabled when ≥ 0), grad_tol (‖∇R‖ ≤ grad_tol, enabled when > 0), plateau (window w > 0:
 *   (R_ref − R)/|R_ref| < plateau_tol where R_ref is the latest full evaluation at a step ≤ s − w,
 *   tested once s ≥ w; R_ref = 0 counts as no decrease), then max_steps; should_stop is polled
 *   whenever the step count is a multiple of 64 (including 0).
 * - Divergence: a full evaluation with non-finite R, ‖∇R‖ or ‖θ‖ (the norms are plain sums of
 *   squares, so a norm overflowing counts too), R > diverge_factor·max(R0, 1), or a non-finite
 *   mini-batch risk/gradient/θ ends the run with BASIN_STOP_DIVERGED (BASIN_OK is returned). The
 *   run is then rolled back to the last ACCEPTED point (the last full evaluation that passed
 *   these checks): θ, steps, final_risk, grad_norm and param_norm all describe that point. For
 *   full-batch runs it is the previous iterate; mini-batch runs lose at most the steps since the
 *   last check. If R0 itself fails, θ stays at the initial point, steps = 0 and no trajectory
 *   point is emitted (a non-finite point has no JSON form).
 * - Trajectory: on_point is called at step 0, at every multiple of trajectory_every, and at the
 *   final step unless it was just emitted; a nonzero return cancels (BASIN_STOP_CANCELLED, also
 *   when it happens at the final point). The diverging evaluation is never emitted.
 * - risk_falling compares the final R with R_ref for w = plateau_window (100 when 0): the latest
 *   full evaluation at a step ≤ max(s − w, 0). A ring of min(w, max_steps)+1 (step, R) pairs is
 *   enough for both uses: those entries span at least w steps.
 * - Memory: everything (gradients, accepted point, index permutation, risk ring, optimizer
 *   moments) is allocated once per basin_train_restart / basin_train_batch call; the loop itself
 *   never allocates. */
#include "basin/train.h"

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "lanes_int.h"
#include "objective_int.h"

#define SHOULD_STOP_PERIOD 64
#define RISK_FALLING_WINDOW 100

void basin_train_defaults(basin_train_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    basin_optim_defaults(BASIN_OPT_GD, 0.01, &spec->optim);
    spec->init.kind = BASIN_INIT_HE_NORMAL;
    spec->init.std = 1.0;
    spec->init.a = 1.0;
    spec->init.bias = 0.0;
    spec->seed = 0;
    spec->max_steps = 10000;
    spec->grad_tol = 1e-8;
    spec->risk_tol = -1.0;
    spec->plateau_tol = 0.0;
    spec->plateau_window = 0;
    spec->diverge_factor = 1e6;
    spec->trajectory_every = 100;
    spec->check_every = 0;
}

static int init_check(const basin_init *in)
{
    switch (in->kind) {
    case BASIN_INIT_HE_NORMAL:
    case BASIN_INIT_HE_UNIFORM:
    case BASIN_INIT_XAVIER_NORMAL:
    case BASIN_INIT_XAVIER_UNIFORM:
        return isfinite(in->bias) ? BASIN_OK : BASIN_EINVAL;
    case BASIN_INIT_NORMAL:
        return isfinite(in->std) && in->std >= 0.0 ? BASIN_OK : BASIN_EINVAL;
    case BASIN_INIT_UNIFORM:
        return isfinite(in->a) && in->a >= 0.0 ? BASIN_OK : BASIN_EINVAL;
    case BASIN_INIT_GIVEN:
        return BASIN_OK; /* given_len is checked against the objective by the trainer */
    default:
        return BASIN_EINVAL;
    }
}

/* Rejects NaN everywhere; diverge_factor must be ≤ 0 (disabled) or ≥ 1 so that R0 itself is
 * never "exploding"; plateau_tol must be finite and ≥ 0 when the plateau rule is on. */
int basin_train_check(const basin_train_spec *spec)
{
    int rc = BASIN_EINVAL;
    if (!spec)
        goto done;
    rc = basin_optim_check(&spec->optim);
    if (rc != BASIN_OK)
        goto done;
    rc = init_check(&spec->init);
    if (rc != BASIN_OK)
        goto done;
    rc = BASIN_EINVAL;
    if (spec->max_steps < 1)
        goto done;
    if (!(isfinite(spec->grad_tol) && spec->grad_tol >= 0.0))
        goto done;
    if (isnan(spec->risk_tol))
        goto done;
    if (spec->plateau_window > 0 && !(isfinite(spec->plateau_tol) && spec->plateau_tol >= 0.0))
        goto done;
    if (isnan(spec->diverge_factor) || (spec->diverge_factor > 0.0 && spec->diverge_factor < 1.0))
        goto done;
    rc = BASIN_OK;
done:
    return rc;
}

const char *basin_stop_reason_name(basin_stop_reason r)
{
    switch (r) {
    case BASIN_STOP_MAX_STEPS:
        return "max_steps";
    case BASIN_STOP_GRAD_TOL:
        return "grad_tol";
    case BASIN_STOP_RISK_TOL:
        return "risk_tol";
    case BASIN_STOP_PLATEAU:
        return "plateau";
    case BASIN_STOP_DIVERGED:
        return "diverged";
    case BASIN_STOP_CANCELLED:
        return "cancelled";
    default:
        return "unknown";
    }
}

/* ---- buffers shared by the restarts of one call ---- */

typedef struct train_ws {
    size_t dim;
    size_t n;          /* samples permuted for mini-batches; 0 for full-batch runs */
    double *grad;      /* mini-batch gradient (full batch: the full gradient) */
    double *full_grad; /* full gradient (== grad for full-batch runs) */
    double *good;      /* the last accepted point */
    size_t *idx;       /* mini-batch permutation */
    size_t hist_cap;
    size_t *hist_step; /* ring of accepted full evaluations */
    double *hist_risk;
    basin_optim_state opt;
} train_ws;

static void ws_release(train_ws *ws)
{
    if (!ws)
        return;
    if (ws->full_grad != ws->grad)
        basin_free(ws->full_grad);
    basin_free(ws->grad);
    basin_free(ws->good);
    basin_free(ws->idx);
    basin_free(ws->hist_step);
    basin_free(ws->hist_risk);
    basin_optim_state_release(&ws->opt);
    memset(ws, 0, sizeof *ws);
}

static size_t risk_window(const basin_train_spec *spec)
{
    return spec->plateau_window > 0 ? spec->plateau_window : RISK_FALLING_WINDOW;
}

static int ws_init(train_ws *ws, const basin_objective *obj, const basin_train_spec *spec)
{
    int rc;
    size_t bytes;
    memset(ws, 0, sizeof *ws);
    ws->dim = obj->dim;
    ws->n = spec->optim.batch > 0 ? obj->n_samples : 0;
    size_t w = risk_window(spec);
    rc = basin_add_size(w < spec->max_steps ? w : spec->max_steps, 1, &ws->hist_cap);
    if (rc == BASIN_OK)
        rc = basin_mul_size(ws->dim, sizeof(double), &bytes);
    if (rc == BASIN_OK)
        rc = basin_mul_size(ws->n, sizeof(size_t), &bytes);
    if (rc != BASIN_OK)
        goto done;
    rc = BASIN_ENOMEM;
    ws->grad = basin_alloc_array(ws->dim, sizeof(double));
    ws->good = basin_alloc_array(ws->dim, sizeof(double));
    ws->hist_step = basin_alloc_array(ws->hist_cap, sizeof(size_t));
    ws->hist_risk = basin_alloc_array(ws->hist_cap, sizeof(double));
    if (!ws->grad || !ws->good || !ws->hist_step || !ws->hist_risk)
        goto done;
    if (ws->n > 0) {
        ws->full_grad = basin_alloc_array(ws->dim, sizeof(double));
        ws->idx = basin_alloc_array(ws->n, sizeof(size_t));
        if (!ws->full_grad || !ws->idx)
            goto done;
    } else {
        ws->full_grad = ws->grad;
    }
    rc = basin_optim_state_init(&ws->opt, &spec->optim, ws->dim);
done:
    if (rc != BASIN_OK)
        ws_release(ws);
    return rc;
}

/* ---- one restart ---- */

typedef struct run {
    const basin_objective *obj;
    const basin_train_spec *spec;
    const basin_train_hooks *hooks;
    uint64_t restart;
    train_ws *ws;
    double *theta;
    int started; /* the start point has been evaluated */
    basin_rng batch_rng;
    size_t pos;    /* next index into the permutation; 0 = a new epoch starts */
    int epoch_end; /* the last mini-batch closed an epoch */
    size_t steps;  /* updates applied to theta */
    int have_full; /* risk/gnorm/pnorm describe the current theta */
    double risk, gnorm, pnorm;
    double r0, limit; /* limit ≤ 0: no explosion test */
    int have_good;
    size_t good_step;
    double good_risk, good_gnorm, good_pnorm;
    size_t hist_len, hist_next;
    int emitted_any;
    size_t last_emitted;
} run;

static double norm2(const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* Take the full objective's evaluation at theta (status erc, value; gradient already in
 * ws->full_grad); *ok = 0 when the point counts as divergence. An objective reporting
 * BASIN_EDIVERGED is divergence too, not an error. */
static int take_eval(run *r, int erc, double value, int *ok)
{
    int rc = erc;
    *ok = 0;
    if (rc == BASIN_EDIVERGED) {
        r->risk = r->gnorm = NAN;
        r->pnorm = norm2(r->theta, r->ws->dim);
        rc = BASIN_OK;
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    r->risk = value;
    r->gnorm = norm2(r->ws->full_grad, r->ws->dim);
    r->pnorm = norm2(r->theta, r->ws->dim);
    r->have_full = 1;
    *ok = isfinite(value) && isfinite(r->gnorm) && isfinite(r->pnorm) &&
          !(r->limit > 0.0 && value > r->limit);
done:
    return rc;
}

/* Evaluate the full objective at theta through the objective itself. */
static int eval_full(run *r, int *ok)
{
    double value = 0.0;
    int erc = r->obj->value_grad(r->obj->ctx, r->theta, NULL, 0, &value, r->ws->full_grad);
    return take_eval(r, erc, value, ok);
}

/* Remember the current (just evaluated, finite) point as the rollback target. */
static void accept_point(run *r)
{
    train_ws *ws = r->ws;
    memcpy(ws->good, r->theta, ws->dim * sizeof(double));
    r->have_good = 1;
    r->good_step = r->steps;
    r->good_risk = r->risk;
    r->good_gnorm = r->gnorm;
    r->good_pnorm = r->pnorm;
    ws->hist_step[r->hist_next] = r->steps;
    ws->hist_risk[r->hist_next] = r->risk;
    r->hist_next = (r->hist_next + 1) % ws->hist_cap;
    if (r->hist_len < ws->hist_cap)
        r->hist_len++;
}

/* The latest accepted risk at a step ≤ bound; 0 when there is none. */
static int hist_lookup(const run *r, size_t bound, double *risk)
{
    const train_ws *ws = r->ws;
    for (size_t k = 1; k <= r->hist_len; k++) {
        size_t i = (r->hist_next + ws->hist_cap - k) % ws->hist_cap;
        if (ws->hist_step[i] <= bound) {
            *risk = ws->hist_risk[i];
            return 1;
        }
    }
    return 0;
}

/* Returns nonzero when the hook asks to cancel. */
static int emit_point(run *r)
{
    r->emitted_any = 1;
    r->last_emitted = r->steps;
    if (!r->hooks || !r->hooks->on_point)
        return 0;
    basin_traj_point pt;
    pt.step = r->steps;
    pt.risk = r->risk;
    pt.grad_norm = r->gnorm;
    pt.param_norm = r->pnorm;
    return r->hooks->on_point(r->hooks->user, r->restart, &pt);
}

/* Stopping rules on R at the current point (have_full). Returns 1 and sets *reason if one fires. */
static int rule_fires(const run *r, basin_stop_reason *reason)
{
    const basin_train_spec *spec = r->spec;
    if (spec->risk_tol >= 0.0 && r->risk <= spec->risk_tol) {
        *reason = BASIN_STOP_RISK_TOL;
        return 1;
    }
    if (spec->grad_tol > 0.0 && r->gnorm <= spec->grad_tol) {
        *reason = BASIN_STOP_GRAD_TOL;
        return 1;
    }
    double ref;
    if (spec->plateau_window > 0 && r->steps >= spec->plateau_window &&
        hist_lookup(r, r->steps - spec->plateau_window, &ref)) {
        double rel = ref != 0.0 ? (ref - r->risk) / fabs(ref) : 0.0;
        if (rel < spec->plateau_tol) {
            *reason = BASIN_STOP_PLATEAU;
            return 1;
        }
    }
    return 0;
}

/* Gradient of the next mini-batch into ws->grad; *ok = 0 on non-finite values. */
static int minibatch_grad(run *r, int *ok)
{
    train_ws *ws = r->ws;
    if (r->pos == 0)
        basin_rng_shuffle(&r->batch_rng, ws->idx, ws->n);
    size_t left = ws->n - r->pos;
    size_t m = r->spec->optim.batch < left ? r->spec->optim.batch : left;
    double value = 0.0;
    int rc = r->obj->value_grad(r->obj->ctx, r->theta, ws->idx + r->pos, m, &value, ws->grad);
    r->pos += m;
    r->epoch_end = r->pos == ws->n;
    if (r->epoch_end)
        r->pos = 0;
    *ok = 0;
    if (rc == BASIN_EDIVERGED)
        rc = BASIN_OK; /* the objective saw non-finite values itself: divergence, not an error */
    else if (rc == BASIN_OK)
        *ok = isfinite(value) && isfinite(norm2(ws->grad, ws->dim));
    return rc;
}

static int full_eval_due(const run *r)
{
    const basin_train_spec *spec = r->spec;
    if (r->ws->n == 0 || r->steps == spec->max_steps)
        return 1;
    if (spec->trajectory_every > 0 && r->steps % spec->trajectory_every == 0)
        return 1;
    if (spec->check_every > 0)
        return r->steps % spec->check_every == 0;
    return r->epoch_end;
}

/* Run the loop up to the next full evaluation: rules at the current point, max_steps,
 * should_stop, then updates (with their mini-batch gradients) until a full evaluation is due.
 * *stopped = 1 with *reason set when the run ends first; rc < 0 on an objective error. */
static int advance(run *r, basin_stop_reason *reason, int *stopped)
{
    const basin_train_spec *spec = r->spec;
    const basin_train_hooks *hooks = r->hooks;
    train_ws *ws = r->ws;
    int rc = BASIN_OK, ok;
    *stopped = 1;
    for (;;) {
        if (r->have_full && rule_fires(r, reason))
            break;
        if (r->steps >= spec->max_steps) {
            *reason = BASIN_STOP_MAX_STEPS;
            break;
        }
        if (hooks && hooks->should_stop && r->steps % SHOULD_STOP_PERIOD == 0 &&
            hooks->should_stop(hooks->user, r->restart)) {
            *reason = BASIN_STOP_CANCELLED;
            break;
        }
        if (ws->n > 0) {
            rc = minibatch_grad(r, &ok);
            if (rc != BASIN_OK)
                break;
            if (!ok) {
                *reason = BASIN_STOP_DIVERGED;
                break;
            }
        }
        basin_optim_step(&ws->opt, r->theta, ws->grad);
        r->steps++;
        r->have_full = 0;
        if (!full_eval_due(r)) {
            if (!isfinite(norm2(r->theta, ws->dim))) {
                *reason = BASIN_STOP_DIVERGED;
                break;
            }
            continue;
        }
        *stopped = 0;
        break;
    }
    return rc;
}

/* After a full evaluation inside the loop: accept the point and emit it when due. Returns 1
 * with *reason set when the run ends here. */
static int after_eval(run *r, int ok, basin_stop_reason *reason)
{
    const basin_train_spec *spec = r->spec;
    if (!ok) {
        *reason = BASIN_STOP_DIVERGED;
        return 1;
    }
    accept_point(r);
    if (spec->trajectory_every > 0 && r->steps % spec->trajectory_every == 0 && emit_point(r)) {
        *reason = BASIN_STOP_CANCELLED;
        return 1;
    }
    return 0;
}

static void rollback(run *r)
{
    if (!r->have_good)
        return; /* R0 failed: theta stays at the initial point */
    memcpy(r->theta, r->ws->good, r->ws->dim * sizeof(double));
    r->steps = r->good_step;
    r->risk = r->good_risk;
    r->gnorm = r->good_gnorm;
    r->pnorm = r->good_pnorm;
    r->have_full = 1;
}

/* Make sure R at the end point is known (mini-batch runs may stop between checks), roll back on
 * divergence, emit the last trajectory point and fill res. */
static int finish(run *r, basin_stop_reason reason, basin_run_result *res)
{
    int rc = BASIN_OK, ok;
    if (reason != BASIN_STOP_DIVERGED && !r->have_full) {
        rc = eval_full(r, &ok);
        if (rc != BASIN_OK)
            goto done;
        if (ok)
            accept_point(r);
        else
            reason = BASIN_STOP_DIVERGED;
    }
    if (reason == BASIN_STOP_DIVERGED)
        rollback(r);
    if (r->have_good && (!r->emitted_any || r->last_emitted != r->steps) && emit_point(r))
        reason = BASIN_STOP_CANCELLED;
    size_t w = risk_window(r->spec);
    double ref;
    res->reason = reason;
    res->steps = r->steps;
    res->initial_risk = r->r0;
    res->final_risk = r->risk;
    res->grad_norm = r->gnorm;
    res->param_norm = r->pnorm;
    res->risk_falling =
        r->have_good && hist_lookup(r, r->steps >= w ? r->steps - w : 0, &ref) && ref > r->risk;
done:
    return rc;
}

static int init_theta(const basin_objective *obj, const basin_net *net,
                      const basin_train_spec *spec, uint64_t restart, double *theta)
{
    const basin_init *in = &spec->init;
    int rc = BASIN_OK;
    if (in->kind == BASIN_INIT_GIVEN) {
        if (in->given) {
            if (in->given_len != obj->dim) {
                rc = BASIN_EINVAL;
                goto done;
            }
            memmove(theta, in->given, obj->dim * sizeof(double));
        }
        goto done; /* given == NULL: theta already holds the start point */
    }
    basin_rng rng;
    basin_rng_init(&rng, spec->seed, 2 * restart);
    if (net) {
        rc = basin_net_init_params(net, in, &rng, theta);
        goto done;
    }
    /* Without a net only fan-in-free schemes are possible; the same draws as net.c. */
    if (in->kind == BASIN_INIT_NORMAL) {
        for (size_t i = 0; i < obj->dim; i++)
            theta[i] = in->std * basin_rng_normal(&rng);
    } else if (in->kind == BASIN_INIT_UNIFORM) {
        for (size_t i = 0; i < obj->dim; i++)
            theta[i] = in->a * (2.0 * basin_rng_uniform(&rng) - 1.0);
    } else {
        rc = BASIN_EINVAL;
    }
done:
    return rc;
}

/* Set up run r for restart `restart` and draw its start point; the run then wants the full
 * objective at r->theta (run_feed). */
static int run_begin(run *r, train_ws *ws, const basin_objective *obj, const basin_net *net,
                     const basin_train_spec *spec, uint64_t restart, double *theta,
                     const basin_train_hooks *hooks, basin_run_result *res)
{
    memset(res, 0, sizeof *res);
    res->restart = restart;
    memset(r, 0, sizeof *r);
    r->obj = obj;
    r->spec = spec;
    r->hooks = hooks;
    r->restart = restart;
    r->ws = ws;
    r->theta = theta;
    basin_rng_init(&r->batch_rng, spec->seed, 2 * restart + 1);
    for (size_t i = 0; i < ws->n; i++)
        ws->idx[i] = i;
    basin_optim_state_reset(&ws->opt);
    return init_theta(obj, net, spec, restart, theta);
}

/* Give a run the full evaluation it asked for (status erc, value; gradient in ws->full_grad)
 * and advance it to its next full evaluation (*more = 1: theta holds the point) or to its end
 * (*more = 0, res filled). The first evaluation is the start point's. Whoever computes the
 * evaluation (the objective, or the lane kernel for a batch), the run's decisions are these. */
static int run_feed(run *r, int erc, double value, int *more, basin_run_result *res)
{
    basin_stop_reason reason = BASIN_STOP_MAX_STEPS;
    int ok, stopped = 0;
    int rc = take_eval(r, erc, value, &ok);
    *more = 0;
    if (rc != BASIN_OK)
        goto done;
    if (!r->started) {
        r->started = 1;
        r->r0 = r->risk;
        if (!ok) {
            reason = BASIN_STOP_DIVERGED;
            stopped = 1;
        } else {
            const basin_train_spec *spec = r->spec;
            r->limit = spec->diverge_factor > 0.0 ? spec->diverge_factor * fmax(r->r0, 1.0) : 0.0;
            accept_point(r);
            if (emit_point(r)) {
                reason = BASIN_STOP_CANCELLED;
                stopped = 1;
            }
        }
    } else {
        stopped = after_eval(r, ok, &reason);
    }
    if (!stopped) {
        rc = advance(r, &reason, &stopped);
        if (rc != BASIN_OK)
            goto done;
    }
    if (stopped)
        rc = finish(r, reason, res);
    else
        *more = 1;
done:
    return rc;
}

static int run_restart(train_ws *ws, const basin_objective *obj, const basin_net *net,
                       const basin_train_spec *spec, uint64_t restart, double *theta,
                       const basin_train_hooks *hooks, basin_run_result *res)
{
    run r;
    int more = 1;
    int rc = run_begin(&r, ws, obj, net, spec, restart, theta, hooks, res);
    while (rc == BASIN_OK && more) {
        double value = 0.0;
        int erc = obj->value_grad(obj->ctx, theta, NULL, 0, &value, ws->full_grad);
        rc = run_feed(&r, erc, value, &more, res);
    }
    return rc;
}

static int check_args(const basin_objective *obj, const basin_net *net,
                      const basin_train_spec *spec, const double *theta, const void *res)
{
    int rc = BASIN_EINVAL;
    if (!obj || !obj->value_grad || !spec || !theta || !res || obj->dim == 0)
        goto done;
    rc = basin_train_check(spec);
    if (rc != BASIN_OK)
        goto done;
    rc = BASIN_EINVAL;
    if (spec->optim.batch > 0 && obj->n_samples == 0)
        goto done; /* a closed-form objective has no samples to batch */
    if (net && basin_net_param_count(net) != obj->dim)
        goto done;
    if (spec->init.kind == BASIN_INIT_GIVEN && spec->init.given && spec->init.given_len != obj->dim)
        goto done;
    rc = BASIN_OK;
done:
    return rc;
}

/* Streams 2r and 2r+1 must not wrap around. */
#define MAX_RESTART ((UINT64_MAX - 1) / 2)

int basin_train_restart(const basin_objective *obj, const basin_net *net,
                        const basin_train_spec *spec, uint64_t restart, double *theta,
                        const basin_train_hooks *hooks, basin_run_result *res)
{
    train_ws ws;
    int rc = check_args(obj, net, spec, theta, res);
    memset(&ws, 0, sizeof ws);
    if (rc != BASIN_OK)
        goto done;
    if (restart > MAX_RESTART) {
        rc = BASIN_ERANGE;
        goto done;
    }
    rc = ws_init(&ws, obj, spec);
    if (rc != BASIN_OK)
        goto done;
    rc = run_restart(&ws, obj, net, spec, restart, theta, hooks, res);
done:
    ws_release(&ws);
    return rc;
}

/* DESIGN (batched restarts)
 * A batch must give every restart exactly the IEEE operation sequence of the single path:
 *  - the same RNG streams (2r, 2r+1) consumed in the same order;
 *  - the same reduction order for every sum (over samples in the risk and gradient, over
 *    parameters in the norms), no reassociation, no BLAS call whose blocking depends on the
 *    number of restarts, no FMA contraction that the single path does not also use;
 *  - per-restart control flow: a restart that stopped, diverged or was cancelled is never
 *    stepped again, and every stopping rule, check point, rollback and trajectory point is
 *    decided from that restart's own values at its own step count;
 *  - hooks called with that restart's index and points in increasing step order for it (the
 *    interleaving across restarts may change, so consumers must not rely on it).
 * Two ways honour this:
 *  1. Sequential: a loop over the single-restart path sharing one workspace (run_restart resets
 *     everything it reads: permutation, optimizer moments, ring, rollback point).
 *  2. Lanes, for full-batch runs of an empirical objective whose net the lane kernel takes
 *     (lanes_int.h): BASIN__LANES restarts advance in lock-step, each with its own run state
 *     and workspace, and every full evaluation of all of them is one lane-kernel call (restart
 *     in lane l, packed θ). The objective itself (basin_net_risk_grad) evaluates such nets with
 *     the same kernel at lw = 1, whose per-lane arithmetic is identical, and the l2 term is
 *     added exactly as objective.c adds it, so each lane's value and gradient are bit for bit
 *     what value_grad returns; the run's decisions are the shared run_feed/advance code. A lane
 *     whose restart ends takes the next restart at once, so lanes stay busy.
 * The tests compare a batch against single calls with memcmp on θ and on every result field. */

/* The lane path: the objective's net, data and loss, packed buffers and the runs in flight. */
typedef struct lanes_job {
    const basin_net *net;
    const basin_dataset *ds;
    basin_loss loss;
    double l2;
    size_t dim;
    double *block;           /* the one allocation behind P, G and scratch */
    double *P, *G, *scratch; /* P and G 64-byte aligned */
    train_ws ws[BASIN__LANES];
    run runs[BASIN__LANES];
    basin_run_result *res[BASIN__LANES];
    int active[BASIN__LANES];
} lanes_job;

static void lanes_release(lanes_job *j)
{
    basin_free(j->block);
    for (size_t l = 0; l < BASIN__LANES; l++)
        ws_release(&j->ws[l]);
}

/* 1 (and the objective's parts in j) when the batch can run in lanes: at least two restarts,
 * full batch, an empirical objective over a net the lane kernel takes, and every target
 * admissible (checked once here; otherwise the sequential path reports it as before). */
static int lanes_usable(const basin_objective *obj, const basin_train_spec *spec, size_t count,
                        lanes_job *j)
{
    if (count < 2 || spec->optim.batch != 0)
        return 0;
    if (basin__objective_empirical_parts(obj, &j->net, &j->ds, &j->loss, &j->l2) != BASIN_OK)
        return 0;
    const basin_dataset *ds = j->ds;
    size_t k = basin_net_out_dim(j->net);
    if (!basin__lanes_eligible(j->net) || basin_net_param_count(j->net) != obj->dim || ds->n == 0 ||
        ds->n != obj->n_samples || !ds->x || !ds->y || ds->in_dim != basin_net_in_dim(j->net) ||
        basin_loss_check(&j->loss, k) != BASIN_OK ||
        ds->y_dim != basin_loss_target_dim(&j->loss, k))
        return 0;
    for (size_t i = 0; i < ds->n; i++)
        if (basin_loss_check_target(&j->loss, k, ds->y + i * ds->y_dim) != BASIN_OK)
            return 0;
    return 1;
}

static int lanes_alloc(lanes_job *j, const basin_objective *obj, const basin_train_spec *spec)
{
    int rc = BASIN_ERANGE;
    size_t packed, total;
    j->dim = obj->dim;
    if (basin_mul_size(j->dim, 2 * BASIN__LANES, &packed) != BASIN_OK ||
        basin_add_size(packed, basin__lanes_scratch_len(j->net, BASIN__LANES) + 8, &total) !=
            BASIN_OK)
        goto done;
    rc = BASIN_ENOMEM;
    j->block = basin_alloc_array(total, sizeof(double));
    if (!j->block)
        goto done;
    j->P = basin__align64(j->block);
    j->G = j->P + j->dim * BASIN__LANES;
    j->scratch = j->G + j->dim * BASIN__LANES;
    for (size_t l = 0; l < BASIN__LANES; l++) {
        rc = ws_init(&j->ws[l], obj, spec);
        if (rc != BASIN_OK)
            goto done;
    }
    rc = BASIN_OK;
done:
    return rc;
}

/* One lane-kernel evaluation at every active lane's θ, fed to its run; ended runs leave. */
static int lanes_step(lanes_job *j)
{
    const size_t L = BASIN__LANES, dim = j->dim;
    double risk[BASIN__LANES];
    int rc = BASIN_OK;
    for (size_t l = 0; l < L; l++) {
        const double *t = j->active[l] ? j->runs[l].theta : NULL;
        for (size_t p = 0; p < dim; p++)
            j->P[p * L + l] = t ? t[p] : 0.0;
    }
    memset(j->G, 0, dim * L * sizeof(double));
    basin__lanes_eval(j->net, L, j->P, j->ds, NULL, j->ds->n, &j->loss, j->G, risk, j->scratch,
                      NULL);
    for (size_t l = 0; l < L && rc == BASIN_OK; l++) {
        if (!j->active[l])
            continue;
        run *r = &j->runs[l];
        double *g = r->ws->full_grad, value = risk[l];
        for (size_t p = 0; p < dim; p++)
            g[p] = j->G[p * L + l];
        if (j->l2 != 0.0) { /* exactly empirical_value_grad's l2 term (objective.c) */
            double sq = 0.0;
            for (size_t i = 0; i < dim; i++)
                sq += r->theta[i] * r->theta[i];
            value += 0.5 * j->l2 * sq;
            for (size_t i = 0; i < dim; i++)
                g[i] += j->l2 * r->theta[i];
        }
        int more;
        rc = run_feed(r, BASIN_OK, value, &more, j->res[l]);
        j->active[l] = more;
    }
    return rc;
}

/* Restarts first..first+count−1 in lanes; a lane whose run ended takes the next restart. */
static int train_lanes(lanes_job *j, const basin_objective *obj, const basin_net *net,
                       const basin_train_spec *spec, uint64_t first, size_t count, double *thetas,
                       const basin_train_hooks *hooks, basin_run_result *results)
{
    size_t next = 0, active = 0;
    int rc = lanes_alloc(j, obj, spec);
    while (rc == BASIN_OK) {
        for (size_t l = 0; l < BASIN__LANES && rc == BASIN_OK && next < count; l++) {
            if (j->active[l])
                continue;
            rc = run_begin(&j->runs[l], &j->ws[l], obj, net, spec, first + next,
                           thetas + next * j->dim, hooks, &results[next]);
            j->res[l] = &results[next];
            j->active[l] = rc == BASIN_OK;
            next++;
        }
        active = 0;
        for (size_t l = 0; l < BASIN__LANES; l++)
            active += (size_t)j->active[l];
        if (rc != BASIN_OK || active == 0)
            break;
        rc = lanes_step(j);
    }
    return rc;
}

int basin_train_batch(const basin_objective *obj, const basin_net *net,
                      const basin_train_spec *spec, uint64_t first, size_t count, double *thetas,
                      const basin_train_hooks *hooks, basin_run_result *results)
{
    train_ws ws;
    lanes_job lj;
    size_t total;
    int rc = check_args(obj, net, spec, thetas, results);
    memset(&ws, 0, sizeof ws);
    memset(&lj, 0, sizeof lj);
    if (rc != BASIN_OK || count == 0)
        goto done;
    rc = basin_mul_size(count, obj->dim, &total);
    if (rc != BASIN_OK)
        goto done;
    if (first > MAX_RESTART || count - 1 > MAX_RESTART - first) {
        rc = BASIN_ERANGE;
        goto done;
    }
    if (lanes_usable(obj, spec, count, &lj)) {
        rc = train_lanes(&lj, obj, net, spec, first, count, thetas, hooks, results);
        goto done;
    }
    rc = ws_init(&ws, obj, spec);
    if (rc != BASIN_OK)
        goto done;
    for (size_t i = 0; i < count; i++) {
        rc = run_restart(&ws, obj, net, spec, first + i, thetas + i * obj->dim, hooks, &results[i]);
        if (rc != BASIN_OK)
            goto done;
    }
done:
    ws_release(&ws);
    lanes_release(&lj);
    return rc;
}
