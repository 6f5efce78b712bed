/* Second-order evidence for a verdict: the extreme Hessian eigenvalues at θ by Lanczos on the
 * objective's exact Hessian-vector products, the dense Hessian spectrum for small nets (to count
 * near-zero eigenvalues), and the count of hidden units whose rescaling symmetry explains some
 * of those zeros.
 *
 * DESIGN
 * - Where every margin is positive R is smooth near θ, so λ_min < −curv_tol·max(1, |λ_max|)
 *   means a direction of negative curvature: θ is a saddle, and the Ritz (or dense
 *   eigen-) vector is the escape direction. A Ritz value is a Rayleigh quotient, so a negative
 *   one is a genuine negative-curvature direction even before Lanczos converges.
 * - Rescaling symmetry: for a unit of a parametrised layer P followed (through activations,
 *   pools, flatten only) by another parametrised layer, multiplying its incoming weights and bias
 *   by a > 0 and its outgoing weights by 1/a leaves the function unchanged (every two-slope
 *   activation is positively homogeneous). At a critical point the orbit's tangent is a
 *   zero-eigenvalue direction, one per non-dead unit (dense) or channel (conv). Dead units have
 *   more flat directions and are not counted. */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/hessian.h"
#include "basin/status.h"
#include "certify_int.h"

#define NEAR_ZERO_REL 1e-8

typedef struct hvp_ctx {
    basin__cert_ctx *c;
    const double *theta;
} hvp_ctx;

static int hvp_matvec(void *p, const double *v, double *out)
{
    hvp_ctx *h = p;
    return h->c->obj.hvp(h->c->obj.ctx, h->theta, v, out);
}

/* Dense Hessian spectrum; vec_min receives the eigenvector of the smallest eigenvalue. */
static int dense_spectrum(basin__cert_ctx *c, hvp_ctx *h, basin_cert_curvature *cv, double *vec_min)
{
    size_t dim = c->dim, dd;
    int rc = BASIN_OK;
    double *H = NULL, *w = NULL, *vecs = NULL;
    if ((rc = basin_mul_size(dim, dim, &dd)) != BASIN_OK)
        goto done;
    H = basin_alloc_array(dd, sizeof *H);
    vecs = basin_alloc_array(dd, sizeof *vecs);
    w = basin_alloc_array(dim, sizeof *w);
    if (!H || !vecs || !w) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if ((rc = basin_operator_dense(dim, hvp_matvec, h, H)) != BASIN_OK ||
        (rc = basin_sym_eig(dim, H, w, vecs)) != BASIN_OK)
        goto done;
    cv->dense = 1;
    cv->dense_lambda_min = w[0];
    cv->dense_lambda_max = w[dim - 1];
    double big = fmax(fabs(w[0]), fabs(w[dim - 1])), thr = NEAR_ZERO_REL * fmax(1.0, big);
    cv->near_zero_eigs = 0;
    for (size_t i = 0; i < dim; i++)
        cv->near_zero_eigs += (size_t)(fabs(w[i]) <= thr);
    memcpy(vec_min, vecs, dim * sizeof *vec_min);
done:
    basin_free(H);
    basin_free(w);
    basin_free(vecs);
    return rc;
}

int basin__cert_curvature(basin__cert_ctx *c, const double *theta, basin_certificate *cert)
{
    basin_cert_curvature *cv = &cert->curvature;
    size_t dim = c->dim;
    hvp_ctx h = {c, theta};
    basin_lanczos_opts lo;
    basin_lanczos_result res;
    int rc = BASIN_OK;
    double *vmin = basin_alloc_array(dim, sizeof *vmin);
    double *dmin = basin_alloc_array(dim, sizeof *dmin);
    if (!vmin || !dmin) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memset(&lo, 0, sizeof lo);
    lo.max_iter = c->opts->lanczos_max_iter;
    lo.seed = c->opts->seed;
    if ((rc = basin_lanczos_extremes(dim, hvp_matvec, &h, &lo, &res, vmin, NULL)) != BASIN_OK)
        goto done;
    cv->ran = 1;
    cv->lambda_min = res.lambda_min;
    cv->lambda_max = res.lambda_max;
    cv->lanczos_converged = res.converged;
    cv->lanczos_iterations = res.iterations;
    cv->residual_min = res.residual_min;
    cv->residual_max = res.residual_max;
    cv->threshold = c->opts->curv_tol * fmax(1.0, fabs(res.lambda_max));
    if (dim <= c->opts->dense_max_params && (rc = dense_spectrum(c, &h, cv, dmin)) != BASIN_OK)
        goto done;
    double lam = cv->lambda_min;
    const double *dir = vmin;
    if (cv->dense && cv->dense_lambda_min < lam) {
        lam = cv->dense_lambda_min;
        dir = dmin;
    }
    if (lam < -cv->threshold && !cert->descent) {
        cert->descent = basin_alloc_array(dim, sizeof *cert->descent);
        if (!cert->descent) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        double nd = basin__cert_norm(dir, dim);
        for (size_t i = 0; i < dim; i++)
            cert->descent[i] = dir[i] / nd;
        cert->descent_from = BASIN_DECIDED_NEGATIVE_CURVATURE;
        cert->descent_curvature = lam;
    }
done:
    basin_free(vmin);
    basin_free(dmin);
    return rc;
}

static size_t dead_in_layer(const basin_certificate *cert, size_t layer)
{
    for (size_t i = 0; i < cert->n_dead_layers; i++)
        if (cert->dead_units[i].layer == layer)
            return cert->dead_units[i].n_dead;
    return 0;
}

size_t basin__cert_symmetry_modes(const basin_net *net, const basin_certificate *cert)
{
    size_t count = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        if (!basin__layer_has_params(L))
            continue;
        size_t j = l + 1, first_act = net->n_layers;
        int dead_found = 0;
        size_t dead = 0;
        for (; j < net->n_layers; j++) {
            basin_layer_kind k = net->layers[j].spec.kind;
            if (k != BASIN_LAYER_ACTIVATION && k != BASIN_LAYER_MAXPOOL &&
                k != BASIN_LAYER_AVGPOOL && k != BASIN_LAYER_FLATTEN)
                break;
            if (k != BASIN_LAYER_ACTIVATION)
                continue;
            if (first_act == net->n_layers)
                first_act = j;
            if (!dead_found && net->layers[j].spec.s_neg == 0.0 &&
                net->layers[j].spec.s_pos != 0.0) {
                dead = dead_in_layer(cert, j);
                dead_found = 1;
            }
        }
        if (first_act == net->n_layers || j >= net->n_layers ||
            !basin__layer_has_params(&net->layers[j]))
            continue;
        size_t units = L->spec.kind == BASIN_LAYER_CONV2D ? L->spec.filters : L->info.out_dim;
        count += units - (dead < units ? dead : units);
    }
    return count;
}
