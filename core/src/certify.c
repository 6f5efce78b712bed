/* The verdict for one end point (certify.h): options, names, the per-call context, and the
 * driver that runs the tests of science.md in order and says which one decided.
 *
 * DESIGN
 * Order of the tests and what each may conclude (science.md, "Verdict for one end point θ"):
 *  0. polish (optional, certify_polish.c) — moves θ only when R does not rise and ‖∇R‖ falls;
 *  1. stationarity — ‖∇R‖ > max(grad_tol, grad_tol_rel·‖θ‖) ⇒ not_converged (the other
 *     numbers below are still computed and reported, curvature and probes are not run). At a
 *     kink the gradient is that of θ's own pieces; the bounds below are tight at θ only where it
 *     vanishes (up to the tolerance), so no certificate is lost by testing it first;
 *  2. patterns, margin m, dead units, boundary pairs b (certify_region.c);
 *  3. b = 0: region certificate R ≤ B + tol ⇒ certified; else the exact one-hidden-layer test
 *     (certify_onehidden.c) R ≤ E + tol ⇒ certified, R > E + tol with every v_j ≠ 0 ⇒ saddle;
 *     0 < b ≤ max_boundary_pairs: the same bounds minimised over side assignments ⇒ certified;
 *  4. b = 0 and undecided: Lanczos λ_min < −curv_tol·max(1, |λ_max|) ⇒ saddle (certify_curv.c);
 *  5. probes (certify_probe.c): an escape at the smallest radius ⇒ saddle; none ⇒ likely_minimum.
 * Certified points skip 4–5 unless check_certified; then a negative curvature or an escape is
 * reported as a contradiction (the label stays, the reason says so first).
 * Tolerances: tol = cert_tol·max(1, R). Both bounds are lower bounds only for exact inner
 * minima and without weight decay; otherwise they are reported but never certify.
 * Memory: the context (objective, workspace, pattern rows, scratch vectors) is allocated once per
 * call; the certificate's own arrays are allocated once their sizes are known. */
#include "basin/certify.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "certify_int.h"

#define CERT_CHUNK 256 /* samples per forward pass of a scan, and per objective batch */

static const char *const verdict_names[] = {"certified_minimum", "likely_minimum", "saddle",
                                            "not_converged"};
static const char *const decider_names[] = {
    "stationarity",       "region_certificate", "exact_one_hidden_layer", "boundary_certificate",
    "negative_curvature", "escape_probe",       "probes_no_escape",       "second_order"};

const char *basin_verdict_name(basin_verdict v)
{
    if ((unsigned)v < sizeof verdict_names / sizeof *verdict_names)
        return verdict_names[v];
    return "unknown";
}

int basin_verdict_from_name(const char *name, basin_verdict *out)
{
    if (!name || !out)
        return BASIN_EINVAL;
    for (size_t i = 0; i < sizeof verdict_names / sizeof *verdict_names; i++)
        if (strcmp(name, verdict_names[i]) == 0) {
            *out = (basin_verdict)i;
            return BASIN_OK;
        }
    return BASIN_EINVAL;
}

const char *basin_decider_name(basin_decider d)
{
    if ((unsigned)d < sizeof decider_names / sizeof *decider_names)
        return decider_names[d];
    return "unknown";
}

void basin_certify_defaults(basin_certify_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->grad_tol = 1e-6;
    opts->grad_tol_rel = 0.0;
    opts->cert_tol = 1e-9;
    opts->curv_tol = 1e-6;
    opts->margin_tol = 1e-9;
    opts->max_boundary_pairs = 16;
    opts->polish = 1;
    opts->polish_max_iter = 500;
    opts->polish_grad_tol = 1e-10;
    opts->probes = 8;
    opts->n_radii = 3;
    opts->radii[0] = 1e-3;
    opts->radii[1] = 1e-2;
    opts->radii[2] = 1e-1;
    opts->probe_steps = 200;
    opts->probe_lr = 0.0;
    opts->seed = 0;
    opts->lanczos_max_iter = 0;
    opts->dense_max_params = 400;
    opts->check_certified = 0;
    opts->group_sample_cap = 32;
}

static int nonneg(double v)
{
    return isfinite(v) && v >= 0.0;
}

int basin_certify_check_opts(const basin_certify_opts *o)
{
    if (!o || !nonneg(o->grad_tol) || !nonneg(o->grad_tol_rel) || !nonneg(o->cert_tol) ||
        !nonneg(o->curv_tol) || !nonneg(o->margin_tol) || !nonneg(o->polish_grad_tol) ||
        !nonneg(o->probe_lr) || o->max_boundary_pairs > BASIN_CERTIFY_MAX_BOUNDARY ||
        o->n_radii > BASIN_CERTIFY_MAX_RADII || (o->probes > 0 && o->n_radii == 0))
        return BASIN_EINVAL;
    for (size_t r = 0; r < o->n_radii; r++)
        if (!(isfinite(o->radii[r]) && o->radii[r] > 0))
            return BASIN_EINVAL;
    return BASIN_OK;
}

double basin__cert_norm(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

double basin__cert_fround(double f)
{
    return 16.0 * DBL_EPSILON * fmax(fabs(f), DBL_MIN);
}

/* ---- context ---- */

static void ctx_free(basin__cert_ctx *c)
{
    basin_objective_release(&c->obj);
    basin_net_ws_free(c->ws);
    basin_free(c->out);
    basin_free(c->scale);
    basin_free(c->scale2);
    basin_free(c->play);
    basin_free(c->codes);
    basin_free(c->codes2);
    basin_free(c->loss_i);
    basin_free(c->active);
    basin_free(c->items);
    basin_free(c->g);
    basin_free(c->x1);
    basin_free(c->x2);
    basin_free(c->g1);
    basin_free(c->theta);
}

static int ctx_init(basin__cert_ctx *c, const basin_net *net, const basin_dataset *ds,
                    const basin_loss *loss, double l2, const basin_certify_opts *opts)
{
    int rc;
    size_t nP, ck;
    memset(c, 0, sizeof *c);
    c->net = net;
    c->ds = ds;
    c->loss = loss;
    c->l2 = l2;
    c->opts = opts;
    if ((rc = basin_objective_empirical(net, ds, loss, l2, CERT_CHUNK, &c->obj)) != BASIN_OK)
        return rc;
    c->dim = c->obj.dim;
    c->n = ds->n;
    c->k = basin_net_out_dim(net);
    c->chunk = c->n < CERT_CHUNK ? c->n : CERT_CHUNK;
    if ((rc = basin_net_ws_create(net, c->chunk, &c->ws)) != BASIN_OK ||
        (rc = basin__cert_layout(c)) != BASIN_OK)
        return rc;
    if ((rc = basin_mul_size(c->n, c->P, &nP)) != BASIN_OK ||
        (rc = basin_mul_size(c->chunk, c->k, &ck)) != BASIN_OK)
        return rc;
    c->items_cap = opts->max_boundary_pairs > BASIN__CERT_LIST_MIN ? opts->max_boundary_pairs
                                                                   : BASIN__CERT_LIST_MIN;
    c->out = basin_alloc_array(ck, sizeof *c->out);
    c->scale = basin_alloc_array(c->chunk, sizeof *c->scale);
    c->scale2 = basin_alloc_array(c->chunk, sizeof *c->scale2);
    c->codes = basin_alloc_array(nP ? nP : 1, sizeof *c->codes);
    c->codes2 = basin_alloc_array(nP ? nP : 1, sizeof *c->codes2);
    c->loss_i = basin_alloc_array(c->n, sizeof *c->loss_i);
    c->active = basin_alloc_array(c->n_active ? c->n_active : 1, 1);
    c->items = basin_alloc_array(c->items_cap, sizeof *c->items);
    c->g = basin_alloc_array(c->dim, sizeof *c->g);
    c->x1 = basin_alloc_array(c->dim, sizeof *c->x1);
    c->x2 = basin_alloc_array(c->dim, sizeof *c->x2);
    c->g1 = basin_alloc_array(c->dim, sizeof *c->g1);
    c->theta = basin_alloc_array(c->dim, sizeof *c->theta);
    if (!c->theta || !c->out || !c->scale || !c->scale2 || !c->codes || !c->codes2 || !c->loss_i ||
        !c->active || !c->items || !c->g || !c->x1 || !c->x2 || !c->g1)
        return BASIN_ENOMEM;
    c->one_hidden =
        basin__cert_onehidden_detect(net, &c->oh) && basin__cert_onehidden_loss_ok(loss, l2);
    return BASIN_OK;
}

/* ---- certificate arrays ---- */

static int fill_dead(const basin__cert_ctx *c, basin_certificate *cert)
{
    size_t layers = 0;
    for (size_t p = 0; p < c->n_play; p++)
        layers += (size_t)c->play[p].track_dead;
    cert->dead_units = basin_calloc(layers ? layers : 1, sizeof *cert->dead_units);
    if (!cert->dead_units)
        return BASIN_ENOMEM;
    for (size_t p = 0; p < c->n_play; p++) {
        const basin__cert_play *pl = &c->play[p];
        if (!pl->track_dead)
            continue;
        basin_cert_dead *dl = &cert->dead_units[cert->n_dead_layers++];
        dl->layer = pl->layer;
        dl->units = pl->units;
        for (size_t u = 0; u < pl->units; u++)
            dl->n_dead += (size_t)!c->active[pl->active_offset + u];
        dl->dead = basin_alloc_array(dl->n_dead ? dl->n_dead : 1, sizeof *dl->dead);
        if (!dl->dead)
            return BASIN_ENOMEM;
        size_t m = 0;
        for (size_t u = 0; u < pl->units; u++)
            if (!c->active[pl->active_offset + u])
                dl->dead[m++] = u;
    }
    return BASIN_OK;
}

static int fill_boundary(const basin__cert_ctx *c, basin_certificate *cert)
{
    cert->boundary_pairs =
        basin_alloc_array(c->n_items ? c->n_items : 1, sizeof *cert->boundary_pairs);
    if (!cert->boundary_pairs)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < c->n_items; i++) {
        cert->boundary_pairs[i].layer = c->play[c->items[i].play].layer;
        cert->boundary_pairs[i].sample = c->items[i].sample;
        cert->boundary_pairs[i].unit = c->items[i].unit;
    }
    cert->n_boundary_listed = c->n_items;
    return BASIN_OK;
}

void basin_certificate_free(basin_certificate *cert)
{
    if (!cert)
        return;
    if (cert->dead_units)
        for (size_t i = 0; i < cert->n_dead_layers; i++)
            basin_free(cert->dead_units[i].dead);
    basin_free(cert->dead_units);
    if (cert->region.groups)
        for (size_t g = 0; g < cert->region.n_groups; g++)
            basin_free(cert->region.groups[g].indices);
    basin_free(cert->region.groups);
    basin_free(cert->boundary_pairs);
    basin_free(cert->descent);
    basin_free(cert->witness);
    basin_free(cert);
}

/* ---- the reason string ---- */

static void say(basin_certificate *cert, const char *fmt, ...)
{
    size_t used = strlen(cert->reason);
    if (used + 1 >= sizeof cert->reason)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cert->reason + used, sizeof cert->reason - used, fmt, ap);
    va_end(ap);
}

/* Why neither bound certified (appended to reason). */
static void say_inconclusive(const basin__cert_ctx *c, basin_certificate *cert)
{
    const basin_cert_region *rg = &cert->region;
    const basin_cert_exact *ex = &cert->exact;
    double R = cert->risk;
    if (!rg->ran) {
        say(cert, "; bounds not applicable with l2 != 0");
        return;
    }
    if (cert->n_boundary > c->opts->max_boundary_pairs) {
        say(cert, "; %zu boundary pairs > max %zu: bounds skipped", cert->n_boundary,
            c->opts->max_boundary_pairs);
        return;
    }
    if (cert->n_boundary > 0) {
        say(cert, "; boundary bound inconclusive (%zu of %zu assignments, min B - R = %.3g)",
            rg->boundary_evaluated, rg->boundary_total, rg->boundary_bound - R);
        return;
    }
    if (!rg->exact)
        say(cert, "; group fits approximate (bound gap %.3g): no certificate", rg->bound_gap);
    else
        say(cert, "; group bound inconclusive (R - B = %.3g)", R - rg->bound);
    if (ex->ran)
        say(cert, "; exact test R - E = %.3g%s", R - ex->value, ex->exact ? "" : " (inexact)");
}

static size_t smallest_level(const basin_certificate *cert)
{
    size_t best = 0;
    for (size_t r = 1; r < cert->n_probe_levels; r++)
        if (cert->probes[r].radius < cert->probes[best].radius)
            best = r;
    return best;
}

/* ---- the driver ---- */

static void judge_bounds(basin_certificate *cert, int *decided)
{
    const basin_cert_region *rg = &cert->region;
    const basin_cert_exact *ex = &cert->exact;
    double R = cert->risk;
    *decided = 1;
    if (rg->holds) {
        cert->label = BASIN_VERDICT_CERTIFIED_MINIMUM;
        cert->decided_by = BASIN_DECIDED_REGION_CERTIFICATE;
        say(cert,
            "region certificate: R - B = %.3g <= tol over %zu groups, all fits exact, "
            "margin %.3g",
            R - rg->bound, rg->n_groups, cert->margin);
        size_t sep = 0;
        for (size_t g = 0; g < rg->n_groups; g++)
            sep += (size_t)!rg->groups[g].fit_attained;
        if (sep > 0) /* logistic / cross-entropy: a minimum only up to the tolerance */
            say(cert, "; %zu separable group(s): infimum 0 not attained", sep);
    } else if (ex->holds) {
        cert->label = BASIN_VERDICT_CERTIFIED_MINIMUM;
        cert->decided_by = BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER;
        say(cert, "exact one-hidden-layer test: R - E = %.3g <= tol", R - ex->value);
        if (rg->ran)
            say(cert, " (group bound alone: R - B = %.3g)", R - rg->bound);
    } else if (ex->not_minimum) {
        cert->label = BASIN_VERDICT_SADDLE;
        cert->decided_by = BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER;
        say(cert,
            "exact one-hidden-layer test: R - E = %.3g > tol with every v_j != 0: not a "
            "local minimum (descent direction %s)",
            R - ex->value, ex->descent_verified ? "verified" : "not verified numerically");
    } else if (rg->boundary_holds || ex->boundary_holds) {
        cert->label = BASIN_VERDICT_CERTIFIED_MINIMUM;
        cert->decided_by = BASIN_DECIDED_BOUNDARY_CERTIFICATE;
        if (rg->boundary_holds)
            say(cert,
                "boundary certificate: %zu boundary pairs, all %zu side assignments "
                "give R <= B + tol (min B - R = %.3g)",
                cert->n_boundary, rg->boundary_total, rg->boundary_bound - R);
        else
            say(cert,
                "boundary certificate (exact one-hidden-layer form): %zu boundary pairs, "
                "all %zu side assignments give R <= E + tol",
                cert->n_boundary, ex->boundary_total);
    } else {
        *decided = 0;
    }
}

static int judge_rest(basin__cert_ctx *c, const double *theta, basin_certificate *cert,
                      int certified)
{
    int rc = BASIN_OK;
    if (cert->n_boundary == 0) {
        if ((rc = basin__cert_curvature(c, theta, cert)) != BASIN_OK)
            return rc;
        const basin_cert_curvature *cv = &cert->curvature;
        double lam = cv->dense ? fmin(cv->lambda_min, cv->dense_lambda_min) : cv->lambda_min;
        if (lam < -cv->threshold) {
            if (certified) {
                cert->contradiction = 1;
                say(cert, "; CONTRADICTION: lambda_min = %.3g < -%.3g at a certified point", lam,
                    cv->threshold);
            } else {
                cert->label = BASIN_VERDICT_SADDLE;
                cert->decided_by = BASIN_DECIDED_NEGATIVE_CURVATURE;
                say(cert, "negative curvature: lambda_min = %.3g < -%.3g (Lanczos %s, %zu steps)",
                    lam, cv->threshold, cv->lanczos_converged ? "converged" : "not converged",
                    cv->lanczos_iterations);
                return BASIN_OK;
            }
        }
    }
    if (c->opts->probes > 0 && c->opts->n_radii > 0) {
        if ((rc = basin__cert_probes(c, theta, cert->risk, cert)) != BASIN_OK)
            return rc;
        const basin_cert_probe_level *lv = &cert->probes[smallest_level(cert)];
        if (lv->escaped > 0 && certified) {
            cert->contradiction = 1;
            say(cert, "; CONTRADICTION: %zu of %zu probes at radius %.3g escaped to R = %.17g",
                lv->escaped, lv->tried, lv->radius, lv->best_risk);
        } else if (lv->escaped > 0) {
            cert->label = BASIN_VERDICT_SADDLE;
            cert->decided_by = BASIN_DECIDED_ESCAPE_PROBE;
            say(cert,
                "escape probe: %zu of %zu probes at radius %.3g ended at R = %.17g < "
                "R(theta) = %.17g",
                lv->escaped, lv->tried, lv->radius, lv->best_risk, cert->risk);
            return BASIN_OK;
        }
    }
    if (certified)
        return BASIN_OK;
    cert->label = BASIN_VERDICT_LIKELY_MINIMUM;
    int probed = c->opts->probes > 0 && c->opts->n_radii > 0;
    cert->decided_by = probed ? BASIN_DECIDED_PROBES_NO_ESCAPE : BASIN_DECIDED_SECOND_ORDER;
    if (probed)
        say(cert, "no probe escaped at radius %.3g", cert->probes[smallest_level(cert)].radius);
    else
        say(cert, "probes off");
    if (cert->curvature.ran)
        say(cert, "; lambda_min = %.3g", cert->curvature.lambda_min);
    else
        say(cert, "; %zu boundary pairs: curvature not defined", cert->n_boundary);
    say_inconclusive(c, cert);
    return BASIN_OK;
}

static int analyse(basin__cert_ctx *c, double *theta, basin_certificate *cert)
{
    const basin_certify_opts *o = c->opts;
    int rc;
    double R;
    if (o->polish && (rc = basin__cert_polish(c, theta, cert)) != BASIN_OK)
        return rc;
    if ((rc = c->obj.value_grad(c->obj.ctx, theta, NULL, 0, &R, c->g)) != BASIN_OK)
        return rc;
    cert->risk = R;
    cert->param_norm = basin__cert_norm(theta, c->dim);
    cert->grad_norm = basin__cert_norm(c->g, c->dim);
    cert->grad_norm_rel =
        cert->param_norm > 0 ? cert->grad_norm / cert->param_norm : cert->grad_norm;
    double gtol = fmax(o->grad_tol, o->grad_tol_rel * cert->param_norm);
    cert->stationary = cert->grad_norm <= gtol;
    if (!isfinite(R) || !isfinite(cert->grad_norm)) {
        cert->label = BASIN_VERDICT_NOT_CONVERGED;
        cert->decided_by = BASIN_DECIDED_STATIONARITY;
        say(cert, "non-finite risk or gradient");
        return BASIN_OK;
    }
    if ((rc = basin__cert_scan(c, theta, c->codes, 1, cert)) != BASIN_OK ||
        (rc = fill_dead(c, cert)) != BASIN_OK || (rc = fill_boundary(c, cert)) != BASIN_OK)
        return rc;
    cert->symmetry_zero_modes = basin__cert_symmetry_modes(c->net, cert);
    if (c->l2 == 0.0 && (rc = basin__cert_region(c, R, cert)) != BASIN_OK)
        return rc;
    cert->exact.applicable = c->one_hidden;
    if (c->one_hidden && (rc = basin__cert_exact(c, &c->oh, theta, R, cert)) != BASIN_OK)
        return rc;
    if (!cert->stationary) {
        cert->label = BASIN_VERDICT_NOT_CONVERGED;
        cert->decided_by = BASIN_DECIDED_STATIONARITY;
        say(cert, "not stationary: |grad R| = %.3g > %.3g%s", cert->grad_norm, gtol,
            !o->polish              ? ""
            : cert->polish.accepted ? " after polish"
                                    : " (polish tried, not accepted)");
        return BASIN_OK;
    }
    int decided;
    judge_bounds(cert, &decided);
    int certified = decided && cert->label == BASIN_VERDICT_CERTIFIED_MINIMUM;
    if (decided && !(certified && o->check_certified))
        return BASIN_OK;
    return judge_rest(c, theta, cert, certified);
}

int basin__certify_ex(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      double l2, double *theta, const basin_certify_opts *opts, int use_lanes,
                      basin_certificate **out)
{
    basin_certify_opts defaults;
    basin__cert_ctx c;
    basin_certificate *cert = NULL;
    int rc = BASIN_OK;
    memset(&c, 0, sizeof c);
    if (out)
        *out = NULL;
    if (!opts) {
        basin_certify_defaults(&defaults);
        opts = &defaults;
    }
    if (!net || !ds || !loss || !theta || !out || ds->n == 0 || !nonneg(l2) ||
        basin_net_param_count(net) == 0 || basin_certify_check_opts(opts) != BASIN_OK) {
        rc = BASIN_EINVAL;
        goto done;
    }
    for (size_t i = 0; i < basin_net_param_count(net); i++)
        if (!isfinite(theta[i])) {
            rc = BASIN_EINVAL;
            goto done;
        }
    cert = basin_calloc(1, sizeof *cert);
    if (!cert) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    cert->polish.method = "none";
    cert->margin = INFINITY;
    cert->witness_risk = INFINITY;
    cert->witness_radius = INFINITY;
    if ((rc = ctx_init(&c, net, ds, loss, l2, opts)) != BASIN_OK)
        goto done;
    c.use_lanes = use_lanes;
    cert->dim = c.dim;
    cert->n_samples = c.n;
    memcpy(c.theta, theta, c.dim * sizeof *theta);
    if ((rc = analyse(&c, c.theta, cert)) != BASIN_OK)
        goto done;
    if (cert->polish.accepted) /* only now: a failed call leaves theta untouched */
        memcpy(theta, c.theta, c.dim * sizeof *theta);
    *out = cert;
    cert = NULL;
done:
    basin_certificate_free(cert);
    ctx_free(&c);
    return rc;
}

int basin_certify(const basin_net *net, const basin_dataset *ds, const basin_loss *loss, double l2,
                  double *theta, const basin_certify_opts *opts, basin_certificate **out)
{
    return basin__certify_ex(net, ds, loss, l2, theta, opts, 1, out);
}
