/* Escape probes: K random perturbations of θ at each of several radii, each followed by a short
 * gradient descent; an end point with R below R(θ) − tol from the SMALLEST radius shows that θ
 * is not a local minimum (it is kept as a witness). Ends below R(θ) from larger radii are
 * reported (they may have left θ's neighbourhood) and the lowest one is kept as the witness when
 * nothing nearer escaped.
 *
 * DESIGN
 * - Perturbation k at radius level r is a Gaussian direction from basin_rng(seed, stream
 *   r·K + k), normalised to length radius·‖θ‖ (radius itself when θ = 0): reproducible and
 *   independent of the other levels.
 * - Descent: probe_lr > 0 gives plain GD at that step; probe_lr = 0 gives GD with Armijo
 *   backtracking (c = 1e-4, the trial step doubles after each success), which needs no tuning
 *   and never increases R. A non-finite value ends that probe (counted as tried, not escaped). */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "certify_int.h"

#define PROBE_HALVINGS 60

/* probe_steps of descent from x (c->g receives gradients); *f_out = R at the end. */
static int descend(basin__cert_ctx *c, double *x, double *f_out)
{
    size_t n = c->dim;
    double f, lr = c->opts->probe_lr, t = 1.0;
    int rc = c->obj.value_grad(c->obj.ctx, x, NULL, 0, &f, c->g);
    for (size_t s = 0; s < c->opts->probe_steps && rc == BASIN_OK && isfinite(f); s++) {
        double gg = 0;
        for (size_t i = 0; i < n; i++)
            gg += c->g[i] * c->g[i];
        if (gg == 0.0)
            break;
        if (lr > 0) {
            for (size_t i = 0; i < n; i++)
                x[i] -= lr * c->g[i];
            rc = c->obj.value_grad(c->obj.ctx, x, NULL, 0, &f, c->g);
            continue;
        }
        int ok = 0;
        double fn = f;
        for (int h = 0; h < PROBE_HALVINGS && !ok && rc == BASIN_OK; h++, t *= 0.5) {
            for (size_t i = 0; i < n; i++)
                c->x2[i] = x[i] - t * c->g[i];
            rc = c->obj.value_grad(c->obj.ctx, c->x2, NULL, 0, &fn, NULL);
            ok = fn <= f - 1e-4 * t * gg;
        }
        if (!ok || rc)
            break;
        t *= 4.0; /* undo the last halving and try twice the accepted step next time */
        memcpy(x, c->x2, n * sizeof *x);
        rc = c->obj.value_grad(c->obj.ctx, x, NULL, 0, &f, c->g);
    }
    *f_out = f;
    return rc;
}

int basin__cert_probes(basin__cert_ctx *c, const double *theta, double R, basin_certificate *cert)
{
    const basin_certify_opts *o = c->opts;
    size_t n = c->dim, K = o->probes;
    double tnorm = basin__cert_norm(theta, n), tol = o->cert_tol * fmax(1.0, fabs(R));
    int rc = BASIN_OK;
    cert->n_probe_levels = o->n_radii;
    for (size_t r = 0; r < o->n_radii && !rc; r++) {
        basin_cert_probe_level *lv = &cert->probes[r];
        lv->radius = o->radii[r];
        lv->radius_abs = tnorm > 0 ? o->radii[r] * tnorm : o->radii[r];
        lv->best_risk = INFINITY;
        for (size_t k = 0; k < K && !rc; k++) {
            basin_rng rng;
            basin_rng_init(&rng, o->seed, (uint64_t)(r * K + k));
            for (size_t i = 0; i < n; i++)
                c->x1[i] = basin_rng_normal(&rng);
            double dn = basin__cert_norm(c->x1, n), f;
            for (size_t i = 0; i < n; i++)
                c->x1[i] = theta[i] + lv->radius_abs * c->x1[i] / dn;
            if ((rc = descend(c, c->x1, &f)) != BASIN_OK)
                break;
            lv->tried++;
            if (!isfinite(f))
                continue;
            lv->best_risk = fmin(lv->best_risk, f);
            if (!(f < R - tol))
                continue;
            lv->escaped++;
            /* the witness: from the smallest radius first, then the lowest end point */
            int nearer = o->radii[r] < cert->witness_radius;
            int same = o->radii[r] == cert->witness_radius;
            if (!cert->witness || nearer || (same && f < cert->witness_risk)) {
                if (!cert->witness) {
                    cert->witness = basin_alloc_array(n, sizeof *cert->witness);
                    if (!cert->witness) {
                        rc = BASIN_ENOMEM;
                        break;
                    }
                }
                memcpy(cert->witness, c->x1, n * sizeof *c->x1);
                cert->witness_risk = f;
                cert->witness_radius = o->radii[r];
            }
        }
    }
    return rc;
}
