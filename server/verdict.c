/* The verdict of one trained end point (verdict.h): basin_certify for datasets with samples, the
 * closed-form Hessian for the Gaussian teacher–student objective.
 *
 * DESIGN
 * Samples. basin_certify with the experiment's options; its JSON (certificate_json) is the
 * verdict, and the judged point's risk, gradient and parameter norms are the certificate's.
 *
 * teacher_gaussian. F(W) (teacher.h) is smooth wherever every student row is nonzero (teacher.c:
 * twice differentiable, parallel rows included), with the exact Hessian available in closed form.
 * A dead row w_i = 0 is a kink; the trainer (relu'(0) = 0) never moves it, and its Hessian rows
 * and columns are 0. The steps, in the order of science.md:
 *  1. Polish (certify.polish): Newton's method on the live coordinates with the exact Hessian
 *     (step −H⁻¹g by its eigen-decomposition, only while H is positive definite there), Armijo
 *     backtracking (c = 1e-4); near rounding a step that keeps F within 16ε|F| and lowers ‖∇F‖
 *     is taken instead. Accepted under certify_polish.c's rule: F did not rise beyond rounding,
 *     ‖∇F‖ fell and the result is stationary; otherwise W is left as trained. Only when the
 *     dense Hessian is allowed (n·d ≤ dense_max_params); above that the point is judged as
 *     trained.
 *  2. Stationarity: ‖∇F‖ ≤ max(grad_tol, grad_tol_rel·‖W‖), else not_converged.
 *  3. Second order on the live directions (the coordinates of nonzero rows): all eigenvalues of
 *     that block (dense_max_params permitting; else Lanczos on exact Hessian-vector products,
 *     whose λ_min is only an upper bound and so can show a saddle but never prove a minimum).
 *     λ_min < −curv_tol·max(1, |λ_max|) ⇒ saddle with the eigenvector as the descent direction.
 *  4. Dead rows: moving w_i = 0 to εu (‖u‖ = 1) changes F by exactly ε·D(u) + ε²/4 with
 *     D(u) = Σ_l κ(u, w_l) − Σ_j κ(u, v_j) (expand the square; κ(u, u) = ½). D(u) < −gtol for
 *     one of the candidates ±e_a, v̂_j, −ŵ_l ⇒ saddle (a first-order descent direction). Since
 *     only candidates are tried, dead rows otherwise leave the point a likely minimum.
 *  5. Positive definite (λ_min > the threshold) with no dead row: a strict local minimum ⇒
 *     certified_minimum; anything else stationary ⇒ likely_minimum.
 *  Global: when the student can represent the teacher (n ≥ k) the global minimum is F = 0, so
 *  F ≥ global_tol means the point is not a global minimum ("not_global"). With n < k the global
 *  value is unknown and not_global is null. */
#include "verdict.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/certify.h"
#include "basin/hessian.h"
#include "basin/status.h"
#include "certificate_json.h"

#define NEWTON_MAX_ITER 50 /* quadratic convergence needs a handful; each costs O(dim³) */
#define NEWTON_HALVINGS 40
#define ARMIJO_C 1e-4
#define NEAR_ZERO_REL 1e-8 /* near-zero eigenvalue: |λ| ≤ 1e-8·max(1, |λ_max|) (certify.h) */
#define RELU_LAYER 1       /* [dense(n, bias = false), relu, sum]: the activation layer */

void verdict_out_release(struct verdict_out *out)
{
    if (out == NULL)
        return;
    json_decref(out->verdict);
    out->verdict = NULL;
    out->label = NULL;
    out->judged = 0;
}

static void out_init(struct verdict_out *out)
{
    memset(out, 0, sizeof *out);
    out->risk = out->grad_norm = out->param_norm = NAN;
}

static double norm2(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* The rounding error of F (as certify.c counts it). */
static double fround(double f)
{
    return 16.0 * DBL_EPSILON * fmax(fabs(f), DBL_MIN);
}

/* ---- datasets with samples ---- */

static int judge_samples(const struct spec_experiment *exp, double *theta, struct verdict_out *out)
{
    basin_certificate *cert = NULL;
    int rc = basin_certify(exp->arch->net, exp->dataset->data, &exp->loss, exp->l2, theta,
                           &exp->certify_opts.opts, &cert);
    if (rc == BASIN_ENOMEM)
        goto done;
    if (rc != BASIN_OK) {
        snprintf(out->error, sizeof out->error, "the verifier failed: %s", basin_strerror(rc));
        rc = BASIN_OK;
        goto done;
    }
    out->verdict = certificate_json(cert);
    if (out->verdict == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    out->judged = 1;
    out->label = basin_verdict_name(cert->label);
    out->moved = cert->polish.accepted;
    out->risk = cert->risk;
    out->grad_norm = cert->grad_norm;
    out->param_norm = cert->param_norm;
done:
    basin_certificate_free(cert);
    return rc;
}

/* ---- teacher_gaussian: the closed form ---- */

/* Work space of one teacher verdict. */
struct tw {
    const basin_teacher *t;
    const basin_certify_opts *o;
    size_t n, d, dim;
    size_t m;                /* live coordinates */
    size_t *coord;           /* dim: the live coordinates first m */
    unsigned char *dead_row; /* n */
    size_t n_dead;
    double *g, *x, *xn, *gn, *s, *H, *Hl, *vecs, *w; /* H, Hl, vecs: dim² when dense */
    int dense_ok; /* dim ≤ dense_max_params (H and friends allocated) */
};

static void tw_free(struct tw *w)
{
    basin_free(w->coord);
    basin_free(w->dead_row);
    basin_free(w->g);
    basin_free(w->x);
    basin_free(w->xn);
    basin_free(w->gn);
    basin_free(w->s);
    basin_free(w->H);
    basin_free(w->Hl);
    basin_free(w->vecs);
    basin_free(w->w);
}

static int tw_alloc(struct tw *w)
{
    size_t sq = 0;
    w->coord = basin_alloc_array(w->dim, sizeof *w->coord);
    w->dead_row = basin_calloc(w->n, 1);
    w->g = basin_alloc_array(w->dim, sizeof(double));
    w->x = basin_alloc_array(w->dim, sizeof(double));
    w->xn = basin_alloc_array(w->dim, sizeof(double));
    w->gn = basin_alloc_array(w->dim, sizeof(double));
    w->s = basin_alloc_array(w->dim, sizeof(double));
    w->w = basin_alloc_array(w->dim, sizeof(double));
    if (!w->coord || !w->dead_row || !w->g || !w->x || !w->xn || !w->gn || !w->s || !w->w)
        return BASIN_ENOMEM;
    w->dense_ok = w->dim <= w->o->dense_max_params;
    if (!w->dense_ok)
        return BASIN_OK;
    if (basin_mul_size(w->dim, w->dim, &sq) != BASIN_OK)
        return BASIN_ERANGE;
    w->H = basin_alloc_array(sq, sizeof(double));
    w->Hl = basin_alloc_array(sq, sizeof(double));
    w->vecs = basin_alloc_array(sq, sizeof(double));
    return (w->H && w->Hl && w->vecs) ? BASIN_OK : BASIN_ENOMEM;
}

/* Which rows of x are dead (zero norm, as teacher.c counts them); the live coordinates. */
static void find_live(struct tw *w, const double *x)
{
    w->m = 0;
    w->n_dead = 0;
    for (size_t i = 0; i < w->n; i++) {
        w->dead_row[i] = norm2(x + i * w->d, w->d) == 0.0;
        w->n_dead += w->dead_row[i];
        for (size_t a = 0; !w->dead_row[i] && a < w->d; a++)
            w->coord[w->m++] = i * w->d + a;
    }
}

/* Eigen-decomposition of the Hessian at x on the live coordinates: w->w (ascending, m values),
 * w->vecs (rows, m values each). Needs dense_ok. */
static int live_eig(struct tw *w, const double *x)
{
    int rc = basin_teacher_hessian(w->t, w->n, x, w->H);
    if (rc != BASIN_OK || w->m == 0)
        return rc;
    for (size_t a = 0; a < w->m; a++)
        for (size_t b = 0; b < w->m; b++)
            w->Hl[a * w->m + b] = w->H[w->coord[a] * w->dim + w->coord[b]];
    return basin_sym_eig(w->m, w->Hl, w->w, w->vecs);
}

/* Step 1: Newton on the live coordinates from w->x (F, g given); see DESIGN. */
static int newton_polish(struct tw *w, double *F, basin_cert_polish *p)
{
    int rc = BASIN_OK;
    size_t max_iter =
        w->o->polish_max_iter < NEWTON_MAX_ITER ? w->o->polish_max_iter : NEWTON_MAX_ITER;
    for (size_t it = 0; it < max_iter; it++) {
        double gnorm = norm2(w->g, w->dim);
        if (gnorm <= w->o->polish_grad_tol || w->m == 0)
            break;
        if ((rc = live_eig(w, w->x)) != BASIN_OK)
            return rc;
        if (!(w->w[0] > 0.0))
            break; /* not convex here: Newton's step need not descend */
        memset(w->s, 0, w->dim * sizeof *w->s);
        for (size_t k = 0; k < w->m; k++) {
            const double *v = w->vecs + k * w->m;
            double c = 0.0;
            for (size_t a = 0; a < w->m; a++)
                c += v[a] * w->g[w->coord[a]];
            c /= w->w[k];
            for (size_t a = 0; a < w->m; a++)
                w->s[w->coord[a]] -= c * v[a];
        }
        double slope = dot(w->g, w->s, w->dim), alpha = 1.0, Fn = NAN;
        int taken = 0;
        for (size_t h = 0; h < NEWTON_HALVINGS && !taken; h++, alpha *= 0.5) {
            for (size_t i = 0; i < w->dim; i++)
                w->xn[i] = w->x[i] + alpha * w->s[i];
            if ((rc = basin_teacher_risk_grad(w->t, w->n, w->xn, &Fn, w->gn)) != BASIN_OK)
                return rc;
            if (!isfinite(Fn))
                continue;
            taken = Fn <= *F + ARMIJO_C * alpha * slope ||
                    (Fn <= *F + fround(*F) && norm2(w->gn, w->dim) < gnorm);
        }
        if (!taken)
            break;
        memcpy(w->x, w->xn, w->dim * sizeof *w->x);
        memcpy(w->g, w->gn, w->dim * sizeof *w->g);
        *F = Fn;
        p->iterations++;
    }
    return rc;
}

struct hvp_ctx {
    const struct tw *w;
    const double *x;
    double *tmp;
};

/* The Hessian restricted to the live coordinates (dead coordinates in and out are zero). */
static int live_hvp(void *ctx, const double *v, double *out)
{
    const struct hvp_ctx *h = ctx;
    const struct tw *w = h->w;
    memcpy(h->tmp, v, w->dim * sizeof *h->tmp);
    for (size_t i = 0; i < w->n; i++)
        if (w->dead_row[i])
            memset(h->tmp + i * w->d, 0, w->d * sizeof *h->tmp);
    int rc = basin_teacher_hvp(w->t, w->n, h->x, h->tmp, out);
    for (size_t i = 0; rc == BASIN_OK && i < w->n; i++)
        if (w->dead_row[i])
            memset(out + i * w->d, 0, w->d * sizeof *out);
    return rc;
}

/* Step 3: curvature on the live directions into cert->curvature; *descent (dim values, unit)
 * receives the eigenvector of λ_min. */
static int curvature(struct tw *w, const double *x, basin_certificate *cert, double *descent)
{
    basin_cert_curvature *cv = &cert->curvature;
    int rc = BASIN_OK;
    memset(descent, 0, w->dim * sizeof *descent);
    cv->ran = 1;
    cv->threshold = w->o->curv_tol;
    if (w->m == 0) { /* every row dead: no smooth direction at all */
        cv->lanczos_converged = 1;
        cv->dense = w->dense_ok;
        return BASIN_OK;
    }
    if (w->dense_ok) {
        if ((rc = live_eig(w, x)) != BASIN_OK)
            return rc;
        cv->dense = 1;
        cv->lambda_min = cv->dense_lambda_min = w->w[0];
        cv->lambda_max = cv->dense_lambda_max = w->w[w->m - 1];
        cv->lanczos_converged = 1;
        double zero = NEAR_ZERO_REL * fmax(1.0, fabs(cv->lambda_max));
        for (size_t k = 0; k < w->m; k++)
            cv->near_zero_eigs += fabs(w->w[k]) <= zero;
        for (size_t a = 0; a < w->m; a++)
            descent[w->coord[a]] = w->vecs[a];
    } else {
        basin_lanczos_opts lo = {w->o->lanczos_max_iter, 0.0, w->o->seed};
        basin_lanczos_result res;
        struct hvp_ctx h = {w, x, w->xn};
        if ((rc = basin_lanczos_extremes(w->dim, live_hvp, &h, &lo, &res, descent, NULL)) !=
            BASIN_OK)
            return rc;
        cv->lambda_min = res.lambda_min;
        cv->lambda_max = res.lambda_max;
        cv->lanczos_converged = res.converged;
        cv->lanczos_iterations = res.iterations;
        cv->residual_min = res.residual_min;
        cv->residual_max = res.residual_max;
    }
    cv->threshold = w->o->curv_tol * fmax(1.0, fabs(cv->lambda_max));
    return BASIN_OK;
}

/* Step 4: the smallest D(u) over the candidate unit directions; *u_min receives its u. */
static double dead_derivative(const struct tw *w, const double *x, double *u, double *u_min,
                              size_t *checked)
{
    const basin_teacher *t = w->t;
    size_t d = w->d, n_cand = 2 * d + t->k + w->n;
    double best = INFINITY;
    *checked = 0;
    for (size_t c = 0; c < n_cand; c++) {
        memset(u, 0, d * sizeof *u);
        if (c < 2 * d) {
            u[c / 2] = c % 2 ? -1.0 : 1.0;
        } else if (c < 2 * d + t->k) {
            const double *v = t->v + (c - 2 * d) * d;
            double nv = norm2(v, d);
            if (nv == 0.0)
                continue;
            for (size_t a = 0; a < d; a++)
                u[a] = v[a] / nv;
        } else {
            size_t l = c - 2 * d - t->k;
            if (w->dead_row[l])
                continue;
            double nw = norm2(x + l * d, d);
            for (size_t a = 0; a < d; a++)
                u[a] = -x[l * d + a] / nw;
        }
        double D = 0.0;
        for (size_t l = 0; l < w->n; l++)
            if (!w->dead_row[l])
                D += basin_teacher_kappa(d, u, x + l * d);
        for (size_t j = 0; j < t->k; j++)
            D -= basin_teacher_kappa(d, u, t->v + j * d);
        (*checked)++;
        if (D < best) {
            best = D;
            memcpy(u_min, u, d * sizeof *u);
        }
    }
    return best;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void
say(basin_certificate *cert, const char *fmt, ...)
{
    size_t used = strlen(cert->reason);
    va_list ap;
    va_start(ap, fmt);
    if (used + 1 < sizeof cert->reason)
        vsnprintf(cert->reason + used, sizeof cert->reason - used, fmt, ap);
    va_end(ap);
}

/* Dead rows as the certificate lists dead units (one activation layer). */
static int fill_dead(const struct tw *w, basin_certificate *cert)
{
    cert->dead_units = basin_calloc(1, sizeof *cert->dead_units);
    if (cert->dead_units == NULL)
        return BASIN_ENOMEM;
    cert->n_dead_layers = 1;
    basin_cert_dead *dd = &cert->dead_units[0];
    dd->layer = RELU_LAYER;
    dd->units = w->n;
    if (w->n_dead == 0)
        return BASIN_OK;
    dd->dead = basin_alloc_array(w->n_dead, sizeof *dd->dead);
    if (dd->dead == NULL)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < w->n; i++)
        if (w->dead_row[i])
            dd->dead[dd->n_dead++] = i;
    return BASIN_OK;
}

/* The JSON of a teacher verdict: certificate_json plus the closed-form fields. */
static int teacher_json(const struct tw *w, const basin_certificate *cert, int decided_by_hessian,
                        int dead_descent, double dmin, size_t dead_checked, double F,
                        double global_tol, json_t **out)
{
    json_t *v = certificate_json(cert), *cf = json_object(), *dead = json_array();
    int ok = v != NULL && cf != NULL && dead != NULL;
    int realizable = w->n >= w->t->k;
    for (size_t i = 0; ok && i < w->n; i++)
        if (w->dead_row[i])
            ok = json_array_append_new(dead, json_integer((json_int_t)i)) == 0;
    ok = ok && json_object_set_new(
                   v, "decided_by",
                   json_string(decided_by_hessian ? "closed_form_hessian" : "stationarity")) == 0;
    if (ok && dead_descent)
        ok = json_object_set_new(json_object_get(v, "descent"), "from",
                                 json_string("dead_unit_direction")) == 0;
    ok = ok && json_object_set_new(cf, "objective", json_string("teacher_gaussian")) == 0 &&
         json_object_set_new(cf, "students", json_integer((json_int_t)w->n)) == 0 &&
         json_object_set_new(cf, "teachers", json_integer((json_int_t)w->t->k)) == 0 &&
         json_object_set_new(cf, "live_directions", json_integer((json_int_t)w->m)) == 0 &&
         json_object_set_new(cf, "dead_rows", dead) == 0;
    dead = NULL;
    ok =
        ok &&
        json_object_set_new(cf, "hessian",
                            json_string(cert->curvature.ran
                                            ? (cert->curvature.dense ? "dense" : "lanczos")
                                            : "not_computed")) == 0 &&
        json_object_set_new(cf, "dead_direction_min",
                            w->n_dead > 0 && isfinite(dmin) ? json_real(dmin) : json_null()) == 0 &&
        json_object_set_new(cf, "dead_directions_checked",
                            json_integer((json_int_t)dead_checked)) == 0 &&
        json_object_set_new(cf, "realizable", json_boolean(realizable)) == 0 &&
        json_object_set_new(cf, "global_tol", json_real(global_tol)) == 0 &&
        json_object_set_new(cf, "not_global",
                            realizable && isfinite(F) ? json_boolean(F >= global_tol)
                                                      : json_null()) == 0;
    ok = ok && json_object_set_new(v, "closed_form", cf) == 0;
    cf = NULL;
    json_decref(dead);
    json_decref(cf);
    if (!ok) {
        json_decref(v);
        return BASIN_ENOMEM;
    }
    *out = v;
    return BASIN_OK;
}

/* One teacher verdict in progress. */
struct tjudge {
    struct tw w;
    const struct spec_certify *sc;
    basin_certificate *cert;
    double *u, *u_min, *descent;
    double F0, F, dmin;
    size_t dead_checked;
    int by_hessian;   /* decided by the Hessian (else by stationarity) */
    int dead_descent; /* the descent direction leaves a dead row */
};

/* Step 1 on θ; afterwards w.x, w.g and F hold the point to judge. */
static int teacher_polish(struct tjudge *j, double *theta)
{
    struct tw *w = &j->w;
    const basin_certify_opts *o = &j->sc->opts;
    basin_cert_polish *p = &j->cert->polish;
    double g0 = norm2(w->g, w->dim);
    int rc;
    p->ran = 1;
    p->risk_before = j->F0;
    p->grad_before = g0;
    if ((rc = newton_polish(w, &j->F, p)) != BASIN_OK)
        return rc;
    double g1 = norm2(w->g, w->dim);
    double gtol1 = fmax(o->grad_tol, o->grad_tol_rel * norm2(w->x, w->dim));
    p->accepted = p->iterations > 0 && j->F <= j->F0 + fround(j->F0) && g1 < g0 && g1 <= gtol1;
    if (p->accepted) {
        p->method = "newton_closed_form";
        double m2 = 0.0;
        for (size_t i = 0; i < w->dim; i++)
            m2 += (w->x[i] - theta[i]) * (w->x[i] - theta[i]);
        p->moved = sqrt(m2);
        memcpy(theta, w->x, w->dim * sizeof *theta);
    } else { /* back to the trained point */
        memcpy(w->x, theta, w->dim * sizeof *w->x);
        if ((rc = basin_teacher_risk_grad(w->t, w->n, w->x, &j->F, w->g)) != BASIN_OK)
            return rc;
    }
    p->risk_after = j->F;
    p->grad_after = norm2(w->g, w->dim);
    return BASIN_OK;
}

/* The descent direction: row `row` = u_min, the rest 0 (unit norm). */
static void dead_direction(struct tjudge *j)
{
    struct tw *w = &j->w;
    memset(j->descent, 0, w->dim * sizeof *j->descent);
    for (size_t i = 0; i < w->n; i++)
        if (w->dead_row[i]) {
            memcpy(j->descent + i * w->d, j->u_min, w->d * sizeof *j->u_min);
            break;
        }
}

/* Steps 2–5: the label and its reason. */
static int teacher_decide(struct tjudge *j)
{
    struct tw *w = &j->w;
    basin_certificate *cert = j->cert;
    const basin_certify_opts *o = &j->sc->opts;
    const basin_cert_curvature *cv = &cert->curvature;
    int rc;

    cert->risk = j->F;
    cert->param_norm = norm2(w->x, w->dim);
    cert->grad_norm = norm2(w->g, w->dim);
    cert->grad_norm_rel =
        cert->param_norm > 0 ? cert->grad_norm / cert->param_norm : cert->grad_norm;
    double gtol = fmax(o->grad_tol, o->grad_tol_rel * cert->param_norm);
    cert->stationary = cert->grad_norm <= gtol;
    if ((rc = fill_dead(w, cert)) != BASIN_OK)
        return rc;
    cert->label = BASIN_VERDICT_NOT_CONVERGED;
    cert->decided_by = BASIN_DECIDED_STATIONARITY;
    if (!isfinite(j->F) || !isfinite(cert->grad_norm)) {
        say(cert, "non-finite risk or gradient");
        return BASIN_OK;
    }
    if (!cert->stationary) {
        say(cert, "not stationary: |grad F| = %.3g > %.3g%s", cert->grad_norm, gtol,
            !o->polish              ? ""
            : cert->polish.accepted ? " after polish"
                                    : " (polish tried, not accepted)");
        return BASIN_OK;
    }
    j->by_hessian = 1;
    if ((rc = curvature(w, w->x, cert, j->descent)) != BASIN_OK)
        return rc;
    if (w->n_dead > 0)
        j->dmin = dead_derivative(w, w->x, j->u, j->u_min, &j->dead_checked);

    if (w->m > 0 && cv->lambda_min < -cv->threshold) {
        cert->label = BASIN_VERDICT_SADDLE;
        say(cert,
            "closed-form Hessian: lambda_min = %.3g < -%.3g on the %zu live directions (%s): "
            "not a local minimum",
            cv->lambda_min, cv->threshold, w->m, cv->dense ? "all eigenvalues" : "Lanczos");
        cert->descent_curvature = cv->lambda_min;
    } else if (w->n_dead > 0 && j->dmin < -gtol) {
        cert->label = BASIN_VERDICT_SADDLE;
        say(cert,
            "dead student row: moving it to eps*u changes F by eps*D(u) + eps^2/4 with D(u) = "
            "%.3g < -%.3g: not a local minimum",
            j->dmin, gtol);
        dead_direction(j);
        cert->descent_curvature = 0.5; /* d²F/dε² = 2·(ε²/4)'' = κ(u, u) = ½ */
        j->dead_descent = 1;
    } else if (w->n_dead == 0 && cv->dense && cv->lambda_min > cv->threshold) {
        cert->label = BASIN_VERDICT_CERTIFIED_MINIMUM;
        say(cert,
            "closed-form Hessian positive definite: lambda_min = %.3g > %.3g at |grad F| = "
            "%.3g: strict local minimum",
            cv->lambda_min, cv->threshold, cert->grad_norm);
    } else {
        cert->label = BASIN_VERDICT_LIKELY_MINIMUM;
        say(cert, "stationary, lambda_min = %.3g >= -%.3g on the live directions", cv->lambda_min,
            cv->threshold);
        if (w->n_dead > 0)
            say(cert,
                "; %zu dead row(s): %zu candidate directions out of them ascend (min D = "
                "%.3g), others untested",
                w->n_dead, j->dead_checked, j->dmin);
        else if (!cv->dense)
            say(cert, " (Lanczos: an upper bound, cannot prove positive definiteness)");
        else
            say(cert, " (%zu near-zero eigenvalues: not strict)", cv->near_zero_eigs);
    }
    if (cert->label == BASIN_VERDICT_SADDLE) {
        cert->descent = j->descent;
        j->descent = NULL;
        cert->descent_from = BASIN_DECIDED_NEGATIVE_CURVATURE;
    }
    if (w->n >= w->t->k && j->F >= j->sc->global_tol)
        say(cert, "; F = %.6g >= global_tol %.3g: not global", j->F, j->sc->global_tol);
    return BASIN_OK;
}

static int judge_teacher(const struct spec_experiment *exp, const basin_teacher *t, double *theta,
                         struct verdict_out *out)
{
    struct tjudge j;
    struct tw *w = &j.w;
    int rc = BASIN_OK;

    memset(&j, 0, sizeof j);
    j.sc = &exp->certify_opts;
    j.F0 = j.F = NAN;
    j.dmin = INFINITY;
    w->t = t;
    w->o = &j.sc->opts;
    w->n = exp->arch->layers[0].units;
    w->d = t->d;
    w->dim = basin_net_param_count(exp->arch->net);
    if (w->n == 0 || w->n > SIZE_MAX / w->d || w->n * w->d != w->dim) {
        snprintf(out->error, sizeof out->error,
                 "the architecture is not the teacher-student net [dense(n), relu, sum] on [%zu]",
                 w->d);
        goto done;
    }
    j.cert = basin_calloc(1, sizeof *j.cert);
    j.u = basin_alloc_array(w->d, sizeof *j.u);
    j.u_min = basin_alloc_array(w->d, sizeof *j.u_min);
    j.descent = basin_alloc_array(w->dim, sizeof *j.descent);
    if (!j.cert || !j.u || !j.u_min || !j.descent) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if ((rc = tw_alloc(w)) != BASIN_OK)
        goto done;
    j.cert->polish.method = "none";
    j.cert->margin = INFINITY;
    j.cert->witness_risk = INFINITY;
    j.cert->witness_radius = INFINITY;
    j.cert->dim = w->dim;
    memcpy(w->x, theta, w->dim * sizeof *w->x);
    if ((rc = basin_teacher_risk_grad(t, w->n, w->x, &j.F0, w->g)) != BASIN_OK)
        goto done;
    j.F = j.F0;
    find_live(w, w->x);
    if (w->o->polish && w->dense_ok && isfinite(j.F0) &&
        (rc = teacher_polish(&j, theta)) != BASIN_OK)
        goto done;
    if ((rc = teacher_decide(&j)) != BASIN_OK)
        goto done;
    rc = teacher_json(w, j.cert, j.by_hessian, j.dead_descent, j.dmin, j.dead_checked, j.F,
                      j.sc->global_tol, &out->verdict);
    if (rc != BASIN_OK)
        goto done;
    out->judged = 1;
    out->label = basin_verdict_name(j.cert->label);
    out->moved = j.cert->polish.accepted;
    out->risk = j.cert->risk;
    out->grad_norm = j.cert->grad_norm;
    out->param_norm = j.cert->param_norm;
done:
    basin_certificate_free(j.cert);
    basin_free(j.descent);
    basin_free(j.u);
    basin_free(j.u_min);
    tw_free(w);
    return rc;
}

/* ---- the entry point ---- */

int verdict_judge(const struct spec_experiment *exp, const basin_teacher *teacher, double *theta,
                  struct verdict_out *out)
{
    int rc = BASIN_OK;
    if (out == NULL)
        return BASIN_EINVAL;
    out_init(out);
    if (exp == NULL || exp->arch == NULL || exp->dataset == NULL || theta == NULL) {
        snprintf(out->error, sizeof out->error, "internal: nothing to judge");
        goto done;
    }
    if (!exp->certify_opts.enabled)
        goto done;
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        if (teacher == NULL)
            snprintf(out->error, sizeof out->error,
                     "internal: no teacher for a teacher_gaussian "
                     "experiment");
        else
            rc = judge_teacher(exp, teacher, theta, out);
    } else if (exp->dataset->data == NULL) {
        snprintf(out->error, sizeof out->error, "internal: the dataset has no samples");
    } else if ((double)exp->dataset->data->n * (double)basin_net_param_count(exp->arch->net) >
               VERDICT_MAX_WORK) {
        snprintf(out->error, sizeof out->error,
                 "too large to judge here: samples x parameters = %.3g > %.3g (judge the end "
                 "point offline with `basinlab certify`)",
                 (double)exp->dataset->data->n * (double)basin_net_param_count(exp->arch->net),
                 VERDICT_MAX_WORK);
    } else {
        rc = judge_samples(exp, theta, out);
    }
    if (rc != BASIN_OK) {
        verdict_out_release(out);
        if (rc == BASIN_ENOMEM) {
            out->error[0] = '\0';
        } else {
            snprintf(out->error, sizeof out->error, "the verifier failed: %s", basin_strerror(rc));
            rc = BASIN_OK;
        }
    }
done:
    return rc;
}
