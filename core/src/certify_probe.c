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
 *   and never increases R. A non-finite value ends that probe (counted as tried, not escaped).
 * - Lanes. The probes of one level are independent descents, so for nets the lane kernel takes
 *   (lanes_int.h) up to BASIN__LANES of them advance in lock-step, one per SIMD lane of
 *   basin__lanes_eval: each lane runs the sequential descent as a small state machine (value and
 *   gradient at x, or an Armijo trial value at x − t·g) and one kernel call serves every lane's
 *   next request (an accepted Armijo trial point's R and ∇R come from its trial evaluation,
 *   which saves descend()'s second evaluation of that point). A lane of that kernel performs
 * exactly the floating-point operations of the one-θ call that the objective's value_grad makes
 * (the contract the batched trainer relies on too), the l2 term is added as objective.c adds it,
 * and the per-lane arithmetic below is the sequential code's, so every probe ends on the same bits
 * as when run alone; the results are then taken in probe order, so counts, best risks and the
 * witness are unchanged (test_certify_probes compares both paths bit for bit). Idle lanes evaluate
 * θ = 0 and are ignored. Other nets keep the sequential path. */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "certify_int.h"
#include "lanes_int.h"

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

/* ---- lock-step descents in the lanes of the lane kernel ---- */

enum { LANE_IDLE, LANE_VG, LANE_TRIAL };

/* One lane: the state of descend() between two evaluations. */
typedef struct probe_lane {
    int state;               /* LANE_VG: wants R and ∇R at x; LANE_TRIAL: wants R at x2 */
    size_t s;                /* completed steps */
    int h;                   /* halvings tried in this step */
    double f, t;             /* R(x) and the trial step */
    double gg;               /* ‖g‖² of this step */
    double *x, *x2, *g, *g2; /* g2: ∇R at x2 (the next g when the trial is accepted) */
} probe_lane;

typedef struct probe_batch {
    const basin_net *net;
    basin_loss loss;
    double *block, *P, *G, *scratch; /* P, G: dim × BASIN__LANES packed, 64-byte aligned */
    double *lane_mem;                /* 4 · BASIN__LANES · dim */
    probe_lane lane[BASIN__LANES];
} probe_batch;

static void batch_free(probe_batch *b)
{
    basin_free(b->block);
    basin_free(b->lane_mem);
}

/* 1 and b allocated when the probes can run in lanes; 0 to stay sequential (or on ENOMEM via
 * *rc). */
static int batch_init(basin__cert_ctx *c, probe_batch *b, int *rc)
{
    size_t dim = c->dim, packed, total, lm;
    memset(b, 0, sizeof *b);
    *rc = BASIN_OK;
    if (!c->use_lanes || !basin__lanes_eligible(c->net) || basin_net_param_count(c->net) != dim ||
        basin__check_selection(c->net, c->ws, c->ds, NULL, c->n, c->loss) != BASIN_OK)
        return 0;
    if (basin_mul_size(dim, 2 * BASIN__LANES, &packed) != BASIN_OK ||
        basin_add_size(packed, basin__lanes_scratch_len(c->net, BASIN__LANES) + 8, &total) !=
            BASIN_OK ||
        basin_mul_size(dim, 4 * BASIN__LANES, &lm) != BASIN_OK)
        return 0;
    b->net = c->net;
    b->loss = *c->loss;
    b->block = basin_alloc_array(total, sizeof(double));
    b->lane_mem = basin_alloc_array(lm, sizeof(double));
    if (!b->block || !b->lane_mem) {
        batch_free(b);
        *rc = BASIN_ENOMEM;
        return 0;
    }
    b->P = basin__align64(b->block);
    b->G = b->P + dim * BASIN__LANES;
    b->scratch = b->G + dim * BASIN__LANES;
    for (size_t l = 0; l < BASIN__LANES; l++) {
        b->lane[l].x = b->lane_mem + (4 * l) * dim;
        b->lane[l].x2 = b->lane_mem + (4 * l + 1) * dim;
        b->lane[l].g = b->lane_mem + (4 * l + 2) * dim;
        b->lane[l].g2 = b->lane_mem + (4 * l + 3) * dim;
    }
    return 1;
}

/* One kernel call: R and ∇R (into g for LANE_VG lanes, g2 for LANE_TRIAL lanes) at every busy
 * lane's point, with the objective's l2 term added exactly as objective.c adds it. */
static void batch_eval(basin__cert_ctx *c, probe_batch *b, double *value)
{
    const size_t L = BASIN__LANES, dim = c->dim;
    double risk[BASIN__LANES];
    for (size_t l = 0; l < L; l++) {
        const probe_lane *ln = &b->lane[l];
        const double *p = ln->state == LANE_VG ? ln->x : ln->state == LANE_TRIAL ? ln->x2 : NULL;
        for (size_t i = 0; i < dim; i++)
            b->P[i * L + l] = p ? p[i] : 0.0;
    }
    memset(b->G, 0, dim * L * sizeof(double));
    basin__lanes_eval(b->net, L, b->P, c->ds, NULL, c->n, &b->loss, b->G, risk, b->scratch, NULL);
    for (size_t l = 0; l < L; l++) {
        probe_lane *ln = &b->lane[l];
        if (ln->state == LANE_IDLE)
            continue;
        const double *p = ln->state == LANE_VG ? ln->x : ln->x2;
        double v = risk[l], *g = ln->state == LANE_VG ? ln->g : ln->g2;
        for (size_t i = 0; i < dim; i++)
            g[i] = b->G[i * L + l];
        if (c->l2 != 0.0) {
            double sq = 0.0;
            for (size_t i = 0; i < dim; i++)
                sq += p[i] * p[i];
            v += 0.5 * c->l2 * sq;
            for (size_t i = 0; i < dim; i++)
                g[i] += c->l2 * p[i];
        }
        value[l] = v;
    }
}

/* Start step ln->s of a lane whose R and ∇R at x are known (descend()'s loop head). */
static void lane_step(basin__cert_ctx *c, probe_lane *ln)
{
    size_t n = c->dim;
    double lr = c->opts->probe_lr;
    if (!(ln->s < c->opts->probe_steps && isfinite(ln->f))) {
        ln->state = LANE_IDLE;
        return;
    }
    double gg = 0;
    for (size_t i = 0; i < n; i++)
        gg += ln->g[i] * ln->g[i];
    if (gg == 0.0) {
        ln->state = LANE_IDLE;
        return;
    }
    ln->gg = gg;
    if (lr > 0) {
        for (size_t i = 0; i < n; i++)
            ln->x[i] -= lr * ln->g[i];
        ln->state = LANE_VG;
        return;
    }
    ln->h = 0;
    for (size_t i = 0; i < n; i++)
        ln->x2[i] = ln->x[i] - ln->t * ln->g[i];
    ln->state = LANE_TRIAL;
}

/* Feed a lane the value it asked for (first = the value at its start point). */
static void lane_feed(basin__cert_ctx *c, probe_lane *ln, double v, int first)
{
    size_t n = c->dim;
    if (ln->state == LANE_VG) {
        ln->f = v;
        if (!first)
            ln->s++;
        lane_step(c, ln);
        return;
    }
    /* LANE_TRIAL */
    int ok = v <= ln->f - 1e-4 * ln->t * ln->gg;
    ln->t *= 0.5;
    ln->h++;
    if (ok) {
        /* descend() now evaluates R and ∇R at x2 again: the same kernel on the same point, so
         * the value just computed and g2 are those bits; take them */
        double *t = ln->g;
        ln->t *= 4.0;
        memcpy(ln->x, ln->x2, n * sizeof *ln->x);
        ln->g = ln->g2;
        ln->g2 = t;
        ln->f = v;
        ln->s++;
        lane_step(c, ln);
    } else if (ln->h < PROBE_HALVINGS) {
        for (size_t i = 0; i < n; i++)
            ln->x2[i] = ln->x[i] - ln->t * ln->g[i];
    } else {
        ln->state = LANE_IDLE;
    }
}

/* Descend from the cnt ≤ BASIN__LANES start points already in the lanes' x; f_out[l] = R at the
 * end of lane l, its end point left in lane l's x. */
static void batch_descend(basin__cert_ctx *c, probe_batch *b, size_t cnt, double *f_out)
{
    double value[BASIN__LANES];
    int first[BASIN__LANES];
    size_t busy = 0;
    for (size_t l = 0; l < BASIN__LANES; l++) {
        probe_lane *ln = &b->lane[l];
        ln->state = l < cnt ? LANE_VG : LANE_IDLE;
        ln->s = 0;
        ln->h = 0;
        ln->t = 1.0;
        ln->f = NAN;
        first[l] = 1;
        busy += l < cnt;
    }
    while (busy > 0) {
        batch_eval(c, b, value);
        busy = 0;
        for (size_t l = 0; l < cnt; l++) {
            probe_lane *ln = &b->lane[l];
            if (ln->state == LANE_IDLE)
                continue;
            int was_vg = ln->state == LANE_VG;
            lane_feed(c, ln, value[l], first[l]);
            if (was_vg)
                first[l] = 0;
            busy += ln->state != LANE_IDLE;
        }
    }
    for (size_t l = 0; l < cnt; l++)
        f_out[l] = b->lane[l].f;
}

/* Start point of probe k at level r (radius_abs) into x. */
static void start_point(basin__cert_ctx *c, const double *theta, size_t r, size_t k,
                        double radius_abs, double *x)
{
    size_t n = c->dim;
    basin_rng rng;
    basin_rng_init(&rng, c->opts->seed, (uint64_t)(r * c->opts->probes + k));
    for (size_t i = 0; i < n; i++)
        x[i] = basin_rng_normal(&rng);
    double dn = basin__cert_norm(x, n);
    for (size_t i = 0; i < n; i++)
        x[i] = theta[i] + radius_abs * x[i] / dn;
}

/* Account the end (x, f) of a probe of level r. */
static int record(basin__cert_ctx *c, size_t r, basin_cert_probe_level *lv, const double *x,
                  double f, double R, double tol, basin_certificate *cert)
{
    const basin_certify_opts *o = c->opts;
    size_t n = c->dim;
    lv->tried++;
    if (!isfinite(f))
        return BASIN_OK;
    lv->best_risk = fmin(lv->best_risk, f);
    if (!(f < R - tol))
        return BASIN_OK;
    lv->escaped++;
    /* the witness: from the smallest radius first, then the lowest end point */
    int nearer = o->radii[r] < cert->witness_radius;
    int same = o->radii[r] == cert->witness_radius;
    if (!cert->witness || nearer || (same && f < cert->witness_risk)) {
        if (!cert->witness) {
            cert->witness = basin_alloc_array(n, sizeof *cert->witness);
            if (!cert->witness)
                return BASIN_ENOMEM;
        }
        memcpy(cert->witness, x, n * sizeof *x);
        cert->witness_risk = f;
        cert->witness_radius = o->radii[r];
    }
    return BASIN_OK;
}

int basin__cert_probes(basin__cert_ctx *c, const double *theta, double R, basin_certificate *cert)
{
    const basin_certify_opts *o = c->opts;
    size_t n = c->dim, K = o->probes;
    double tnorm = basin__cert_norm(theta, n), tol = o->cert_tol * fmax(1.0, fabs(R));
    probe_batch b;
    int rc = BASIN_OK;
    int lanes = batch_init(c, &b, &rc);
    if (rc != BASIN_OK)
        goto done;
    cert->n_probe_levels = o->n_radii;
    for (size_t r = 0; r < o->n_radii && !rc; r++) {
        basin_cert_probe_level *lv = &cert->probes[r];
        lv->radius = o->radii[r];
        lv->radius_abs = tnorm > 0 ? o->radii[r] * tnorm : o->radii[r];
        lv->best_risk = INFINITY;
        if (lanes) {
            for (size_t k0 = 0; k0 < K && !rc; k0 += BASIN__LANES) {
                size_t cnt = K - k0 < BASIN__LANES ? K - k0 : BASIN__LANES;
                double f[BASIN__LANES];
                for (size_t l = 0; l < cnt; l++)
                    start_point(c, theta, r, k0 + l, lv->radius_abs, b.lane[l].x);
                batch_descend(c, &b, cnt, f);
                for (size_t l = 0; l < cnt && !rc; l++)
                    rc = record(c, r, lv, b.lane[l].x, f[l], R, tol, cert);
            }
            continue;
        }
        for (size_t k = 0; k < K && !rc; k++) {
            double f;
            start_point(c, theta, r, k, lv->radius_abs, c->x1);
            if ((rc = descend(c, c->x1, &f)) != BASIN_OK)
                break;
            rc = record(c, r, lv, c->x1, f, R, tol, cert);
        }
    }
done:
    if (lanes)
        batch_free(&b);
    return rc;
}
