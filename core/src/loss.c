/* Per-sample losses and their first and second derivatives in the network output (loss.h).
 *
 * DESIGN: the logistic and cross-entropy losses are evaluated in their numerically stable forms
 * (softplus(o) = max(o,0) + log1p(exp(−|o|)); log-sum-exp shifted by the maximum) so that large
 * logits neither overflow nor lose the small differences that matter near a minimum. */
#include "basin/loss.h"

#include <math.h>
#include <string.h>

#include "basin/status.h"

static const char *const loss_names[] = {"squared",  "absolute",      "huber",
                                         "logistic", "cross_entropy", "hinge"};

const char *basin_loss_name(basin_loss_kind kind)
{
    if ((unsigned)kind < sizeof loss_names / sizeof loss_names[0])
        return loss_names[kind];
    return "unknown";
}

int basin_loss_from_name(const char *name, basin_loss_kind *out)
{
    for (size_t i = 0; i < sizeof loss_names / sizeof loss_names[0]; i++) {
        if (strcmp(name, loss_names[i]) == 0) {
            *out = (basin_loss_kind)i;
            return BASIN_OK;
        }
    }
    return BASIN_EINVAL;
}

size_t basin_loss_target_dim(const basin_loss *loss, size_t out_dim)
{
    switch (loss->kind) {
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_HINGE:
    case BASIN_LOSS_CROSS_ENTROPY:
        return 1;
    default:
        return out_dim;
    }
}

int basin_loss_check(const basin_loss *loss, size_t out_dim)
{
    if (out_dim == 0)
        return BASIN_EINVAL;
    switch (loss->kind) {
    case BASIN_LOSS_SQUARED:
    case BASIN_LOSS_ABSOLUTE:
        return BASIN_OK;
    case BASIN_LOSS_HUBER:
        return (isfinite(loss->huber_delta) && loss->huber_delta > 0) ? BASIN_OK : BASIN_EINVAL;
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_HINGE:
        return out_dim == 1 ? BASIN_OK : BASIN_EINVAL;
    case BASIN_LOSS_CROSS_ENTROPY:
        return out_dim >= 2 ? BASIN_OK : BASIN_EINVAL;
    }
    return BASIN_EINVAL;
}

int basin_loss_check_target(const basin_loss *loss, size_t out_dim, const double *y)
{
    size_t k = basin_loss_target_dim(loss, out_dim);
    for (size_t j = 0; j < k; j++)
        if (!isfinite(y[j]))
            return BASIN_EINVAL;
    switch (loss->kind) {
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_HINGE:
        return (y[0] == 0.0 || y[0] == 1.0) ? BASIN_OK : BASIN_EINVAL;
    case BASIN_LOSS_CROSS_ENTROPY:
        return (y[0] >= 0 && y[0] < (double)out_dim && y[0] == floor(y[0])) ? BASIN_OK
                                                                            : BASIN_EINVAL;
    default:
        return BASIN_OK;
    }
}

static double softplus(double o)
{
    return fmax(o, 0.0) + log1p(exp(-fabs(o)));
}

static double sigmoid(double o)
{
    if (o >= 0)
        return 1.0 / (1.0 + exp(-o));
    double e = exp(o);
    return e / (1.0 + e);
}

/* Softmax of o into p (k values); returns log-sum-exp(o). */
static double softmax(const double *o, size_t k, double *p)
{
    double mx = o[0];
    for (size_t j = 1; j < k; j++)
        mx = fmax(mx, o[j]);
    double s = 0;
    for (size_t j = 0; j < k; j++)
        s += exp(o[j] - mx);
    if (p)
        for (size_t j = 0; j < k; j++)
            p[j] = exp(o[j] - mx) / s;
    return mx + log(s);
}

double basin_loss_eval(const basin_loss *loss, const double *o, const double *y, size_t k,
                       double *grad)
{
    double value = 0;
    switch (loss->kind) {
    case BASIN_LOSS_SQUARED:
        for (size_t j = 0; j < k; j++) {
            double r = o[j] - y[j];
            value += 0.5 * r * r;
            if (grad)
                grad[j] = r;
        }
        break;
    case BASIN_LOSS_ABSOLUTE:
        for (size_t j = 0; j < k; j++) {
            double r = o[j] - y[j];
            value += fabs(r);
            if (grad)
                grad[j] = (r > 0) - (r < 0);
        }
        break;
    case BASIN_LOSS_HUBER: {
        double d = loss->huber_delta;
        for (size_t j = 0; j < k; j++) {
            double r = o[j] - y[j];
            if (fabs(r) < d) {
                value += 0.5 * r * r;
                if (grad)
                    grad[j] = r;
            } else {
                value += d * (fabs(r) - 0.5 * d);
                if (grad)
                    grad[j] = r > 0 ? d : -d;
            }
        }
        break;
    }
    case BASIN_LOSS_LOGISTIC:
        value = softplus(o[0]) - y[0] * o[0];
        if (grad)
            grad[0] = sigmoid(o[0]) - y[0];
        break;
    case BASIN_LOSS_CROSS_ENTROPY: {
        size_t c = (size_t)y[0];
        value = softmax(o, k, grad) - o[c];
        if (grad)
            grad[c] -= 1.0;
        break;
    }
    case BASIN_LOSS_HINGE: {
        double t = 2.0 * y[0] - 1.0;
        double margin = 1.0 - t * o[0];
        value = margin > 0 ? margin : 0.0;
        if (grad)
            grad[0] = margin > 0 ? -t : 0.0;
        break;
    }
    }
    return value;
}

void basin_loss_hess_vec(const basin_loss *loss, const double *o, const double *y, size_t k,
                         const double *v, double *hv)
{
    switch (loss->kind) {
    case BASIN_LOSS_SQUARED:
        memcpy(hv, v, k * sizeof *hv);
        break;
    case BASIN_LOSS_HUBER:
        for (size_t j = 0; j < k; j++)
            hv[j] = fabs(o[j] - y[j]) < loss->huber_delta ? v[j] : 0.0;
        break;
    case BASIN_LOSS_LOGISTIC: {
        double s = sigmoid(o[0]);
        hv[0] = s * (1.0 - s) * v[0];
        break;
    }
    case BASIN_LOSS_CROSS_ENTROPY: {
        /* (diag(p) − p pᵀ) v, with p written into hv first. */
        softmax(o, k, hv);
        double pv = 0;
        for (size_t j = 0; j < k; j++)
            pv += hv[j] * v[j];
        for (size_t j = 0; j < k; j++)
            hv[j] = hv[j] * (v[j] - pv);
        break;
    }
    case BASIN_LOSS_ABSOLUTE:
    case BASIN_LOSS_HINGE:
        memset(hv, 0, k * sizeof *hv);
        break;
    }
}

double basin_loss_infimum(const basin_loss *loss)
{
    (void)loss;
    return 0.0;
}
