/* First-order optimizers used by the training loop: plain gradient descent (mini-batch SGD when
 * the trainer feeds mini-batch gradients), heavy-ball and Nesterov momentum, and Adam, with a
 * constant or step-decay learning rate.
 *
 * DESIGN
 * - Update rules are those of torch.optim (PyTorch 1.13, single-tensor code path) so that a
 *   trajectory can be replayed in PyTorch step for step:
 *     SGD (dampening 0, no weight decay): b = μ·b + g (b starts at 0, so the first b = g, as
 *       torch's clone); heavy ball θ −= lr·b; Nesterov θ −= lr·(g + μ·b).
 *     Adam (no amsgrad, no weight decay), step count t starting at 1:
 *       m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *       θ −= (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps).
 *     The operations are evaluated in the same order as torch's CPU kernels (mul_/add_,
 *     addcmul_ = v + c·g·g, addcdiv_ = θ + (−step)·m / denom) so the rounding agrees.
 * - The learning rate in force at update t (0-based) is lr·γ^floor(t / step_every) for the step
 *   schedule (torch.optim.lr_scheduler.StepLR stepped once per update).
 * - The state owns its buffers: m (momentum buffer or Adam's first moment) and v (Adam's second
 *   moment), allocated once in basin_optim_state_init; basin_optim_step never allocates. */
#include "basin/optim.h"

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"

void basin_optim_defaults(basin_optim_kind kind, double lr, basin_optim_spec *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->lr = lr;
    out->batch = 0;
    out->momentum = (kind == BASIN_OPT_MOMENTUM || kind == BASIN_OPT_NESTEROV) ? 0.9 : 0.0;
    out->beta1 = 0.9;
    out->beta2 = 0.999;
    out->eps = 1e-8;
    out->schedule = BASIN_SCHEDULE_CONSTANT;
    out->step_every = 0;
    out->gamma = 1.0;
}

static int in_unit_interval(double x)
{
    return isfinite(x) && x >= 0.0 && x < 1.0;
}

/* Only the fields the chosen kind and schedule read are checked, so a GD spec whose Adam fields
 * are left zero is valid. */
int basin_optim_check(const basin_optim_spec *spec)
{
    int rc = BASIN_EINVAL;
    if (!spec)
        goto done;
    if (!(isfinite(spec->lr) && spec->lr > 0.0))
        goto done;
    switch (spec->kind) {
    case BASIN_OPT_GD:
        break;
    case BASIN_OPT_MOMENTUM:
    case BASIN_OPT_NESTEROV:
        if (!in_unit_interval(spec->momentum))
            goto done;
        break;
    case BASIN_OPT_ADAM:
        if (!in_unit_interval(spec->beta1) || !in_unit_interval(spec->beta2))
            goto done;
        if (!(isfinite(spec->eps) && spec->eps > 0.0))
            goto done;
        break;
    default:
        goto done;
    }
    switch (spec->schedule) {
    case BASIN_SCHEDULE_CONSTANT:
        break;
    case BASIN_SCHEDULE_STEP:
        if (spec->step_every == 0 || !(isfinite(spec->gamma) && spec->gamma > 0.0))
            goto done;
        break;
    default:
        goto done;
    }
    rc = BASIN_OK;
done:
    return rc;
}

/* Contract: on failure *st is left zeroed, so basin_optim_state_release is always safe. */
int basin_optim_state_init(basin_optim_state *st, const basin_optim_spec *spec, size_t dim)
{
    int rc;
    memset(st, 0, sizeof *st);
    rc = basin_optim_check(spec);
    if (rc != BASIN_OK)
        goto done;
    size_t bytes;
    rc = basin_mul_size(dim, sizeof(double), &bytes);
    if (rc != BASIN_OK)
        goto done;
    st->spec = *spec;
    st->dim = dim;
    if (spec->kind != BASIN_OPT_GD) {
        st->m = basin_calloc(dim, sizeof *st->m);
        if (!st->m) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    if (spec->kind == BASIN_OPT_ADAM) {
        st->v = basin_calloc(dim, sizeof *st->v);
        if (!st->v) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    rc = BASIN_OK;
done:
    if (rc != BASIN_OK) {
        basin_optim_state_release(st);
    }
    return rc;
}

void basin_optim_state_release(basin_optim_state *st)
{
    if (!st)
        return;
    basin_free(st->m);
    basin_free(st->v);
    memset(st, 0, sizeof *st);
}

void basin_optim_state_reset(basin_optim_state *st)
{
    if (!st)
        return;
    st->t = 0;
    if (st->m)
        memset(st->m, 0, st->dim * sizeof *st->m);
    if (st->v)
        memset(st->v, 0, st->dim * sizeof *st->v);
}

double basin_optim_lr(const basin_optim_spec *spec, size_t t)
{
    if (spec->schedule != BASIN_SCHEDULE_STEP || spec->step_every == 0)
        return spec->lr;
    return spec->lr * pow(spec->gamma, (double)(t / spec->step_every));
}

static void step_momentum(basin_optim_state *st, double lr, double *theta, const double *grad)
{
    const double mu = st->spec.momentum;
    const int nesterov = st->spec.kind == BASIN_OPT_NESTEROV;
    double *b = st->m;
    for (size_t i = 0; i < st->dim; i++) {
        b[i] = mu * b[i] + grad[i];
        double d = nesterov ? grad[i] + mu * b[i] : b[i];
        theta[i] -= lr * d;
    }
}

static void step_adam(basin_optim_state *st, double lr, double *theta, const double *grad)
{
    const double b1 = st->spec.beta1, b2 = st->spec.beta2, eps = st->spec.eps;
    const double t = (double)(st->t + 1);
    const double bc1 = 1.0 - pow(b1, t);
    const double bc2_sqrt = sqrt(1.0 - pow(b2, t));
    const double step_size = lr / bc1;
    double *m = st->m, *v = st->v;
    for (size_t i = 0; i < st->dim; i++) {
        const double g = grad[i];
        m[i] = m[i] * b1 + g * (1.0 - b1);
        v[i] = v[i] * b2 + (1.0 - b2) * g * g;
        const double denom = sqrt(v[i]) / bc2_sqrt + eps;
        theta[i] += -step_size * m[i] / denom;
    }
}

void basin_optim_step(basin_optim_state *st, double *theta, const double *grad)
{
    const double lr = basin_optim_lr(&st->spec, st->t);
    switch (st->spec.kind) {
    case BASIN_OPT_MOMENTUM:
    case BASIN_OPT_NESTEROV:
        step_momentum(st, lr, theta, grad);
        break;
    case BASIN_OPT_ADAM:
        step_adam(st, lr, theta, grad);
        break;
    case BASIN_OPT_GD:
    default:
        for (size_t i = 0; i < st->dim; i++)
            theta[i] -= lr * grad[i];
        break;
    }
    st->t++;
}

const char *basin_optim_name(basin_optim_kind kind)
{
    switch (kind) {
    case BASIN_OPT_GD:
        return "gd";
    case BASIN_OPT_MOMENTUM:
        return "momentum";
    case BASIN_OPT_NESTEROV:
        return "nesterov";
    case BASIN_OPT_ADAM:
        return "adam";
    default:
        return "unknown";
    }
}
