/* The empirical-risk objective (objective.h): R(θ) = (1/N) Σ ℓ(f_θ(x_i), y_i) + (l2/2)‖θ‖²
 * of a net on a dataset, seen through the basin_objective interface that trainers and the
 * Hessian code use. A mini-batch (idx) gets the mean loss over its samples plus the same l2
 * term, so its gradient is an unbiased estimate of the full one. The objective owns one
 * evaluation workspace, hence one thread at a time. */
#include "basin/objective.h"

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "objective_int.h"

typedef struct empirical_ctx {
    const basin_net *net;
    const basin_dataset *ds;
    basin_loss loss;
    double l2;
    basin_net_ws *ws;
} empirical_ctx;

static void empirical_release(void *p)
{
    empirical_ctx *c = p;
    if (!c)
        return;
    basin_net_ws_free(c->ws);
    basin_free(c);
}

static int empirical_value_grad(void *p, const double *theta, const size_t *idx, size_t m,
                                double *value, double *grad)
{
    empirical_ctx *c = p;
    size_t n = idx ? m : c->ds->n, dim = basin_net_param_count(c->net);
    double risk;
    int rc = basin_net_risk_grad(c->net, c->ws, theta, c->ds, idx, n, &c->loss, &risk, grad);
    if (rc)
        return rc;
    if (c->l2 != 0.0) {
        double sq = 0.0;
        for (size_t i = 0; i < dim; i++)
            sq += theta[i] * theta[i];
        risk += 0.5 * c->l2 * sq;
        if (grad)
            for (size_t i = 0; i < dim; i++)
                grad[i] += c->l2 * theta[i];
    }
    *value = risk;
    return BASIN_OK;
}

static int empirical_hvp(void *p, const double *theta, const double *v, double *hv)
{
    empirical_ctx *c = p;
    size_t dim = basin_net_param_count(c->net);
    int rc = basin_net_hvp(c->net, c->ws, theta, c->ds, NULL, c->ds->n, &c->loss, v, hv);
    if (rc)
        return rc;
    if (c->l2 != 0.0)
        for (size_t i = 0; i < dim; i++)
            hv[i] += c->l2 * v[i];
    return BASIN_OK;
}

int basin_objective_empirical(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                              double l2, size_t max_batch, basin_objective *out)
{
    empirical_ctx *c = NULL;
    int rc = BASIN_OK;
    if (out)
        memset(out, 0, sizeof *out);
    if (!net || !ds || !loss || !out || ds->n == 0 || !isfinite(l2) || l2 < 0 ||
        ds->in_dim != basin_net_in_dim(net) ||
        basin_loss_check(loss, basin_net_out_dim(net)) != BASIN_OK ||
        ds->y_dim != basin_loss_target_dim(loss, basin_net_out_dim(net))) {
        rc = BASIN_EINVAL;
        goto done;
    }
    c = basin_calloc(1, sizeof *c);
    if (!c) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    c->net = net;
    c->ds = ds;
    c->loss = *loss;
    c->l2 = l2;
    if (max_batch == 0 || max_batch > ds->n)
        max_batch = ds->n;
    rc = basin_net_ws_create(net, max_batch, &c->ws);
    if (rc)
        goto done;
    out->dim = basin_net_param_count(net);
    out->n_samples = ds->n;
    out->ctx = c;
    out->value_grad = empirical_value_grad;
    out->hvp = empirical_hvp;
    out->release = empirical_release;
    c = NULL;
done:
    empirical_release(c);
    return rc;
}

int basin__objective_empirical_parts(const basin_objective *obj, const basin_net **net,
                                     const basin_dataset **ds, basin_loss *loss, double *l2)
{
    if (!obj || obj->value_grad != empirical_value_grad || !obj->ctx)
        return BASIN_EINVAL;
    const empirical_ctx *c = obj->ctx;
    *net = c->net;
    *ds = c->ds;
    *loss = c->loss;
    *l2 = c->l2;
    return BASIN_OK;
}

void basin_objective_release(basin_objective *obj)
{
    if (!obj)
        return;
    if (obj->release)
        obj->release(obj->ctx);
    memset(obj, 0, sizeof *obj);
}
