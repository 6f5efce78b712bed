/* Group fit (construct.h): given a partition of the samples, fit each group's best affine piece
 * and build a PL network that uses piece g on group g — the paper's "different pieces fit
 * disjoint groups", which yields many local minima with different risks on one dataset.
 *
 * DESIGN
 * Pieces: p_g = the best affine fit of group g (basin_affine_fit_group, scalar output). The
 * construction's risk is (1/N) Σ_g Σ_{i∈g} ℓ(p_g(x_i), y_i), evaluated at the returned pieces.
 * one_d (inputs of dimension 1, groups occupying disjoint x intervals): a continuous PL function
 * through the pieces, taken in x order. Between groups g and h (gap (hi_g, lo_h) with no sample
 * inside) the pieces meet at their intersection x* when it lies in the gap at least 1e-3 of the
 * gap width away from both ends (one kink, slope α_g → α_h); otherwise a connecting segment
 * from (u, p_g(u)) to (v, p_h(v)) with u, v at 1/3 and 2/3 of the gap (two kinks; the brief's
 * "from the last x of g to the first x of h" moved inside the gap so that no kink sits on a
 * sample); identical pieces need no kink. Then f(x) = c + α_0·relu(x − t_0) + Σ_k d_k relu(x − t_k)
 * with d_k the slope changes, α_0 the first piece's slope and t_0 = min x − max(1, x range):
 * the unit relu(x − t_0) is active on every sample and carries the linear term (its kink lies
 * below all data), c = γ_0 + α_0 t_0. One hidden layer: dense(K+1) → relu → dense(1). Every
 * sample is strictly inside a region (the smallest kink–sample distance is reported), each
 * region holding samples holds exactly one group (or several groups with one identical piece),
 * so the region certificate sees B = R: a certified local minimum.
 * lattice (any d): f = max_g min_{h∈S_g} p_h, S_g = {h : p_h ≥ p_g on every sample of g}
 * (g ∈ S_g). On a sample x of group g the term of g is p_g(x), so f(x) = p_g(x) iff every term
 * g' has min_{h∈S_g'} p_h(x) ≤ p_g(x); this is checked on every sample, with a rounding
 * allowance of 1e-12·(1 + |p_g(x)|) in both comparisons, and the first violation is reported
 * (group, term, sample): no CPWL function of this lattice form uses piece g on group g for this
 * partition. When the check holds, the CPWL compiler builds the net.
 * Verification: the compiled net is evaluated on every sample; its outputs must match the
 * pieces (1e-9 relative to max(1, max |p|)) and its risk the pieces' risk (1e-10 relative). */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/construct.h"
#include "basin/linfit.h"
#include "basin/status.h"
#include "construct_int.h"

#define GF_CHUNK 256
#define GF_TIE 1e-12      /* relative rounding allowance of the lattice comparisons */
#define GF_KINK_EDGE 1e-3 /* an intersection closer than this fraction of the gap is not used */
#define GF_OUT_TOL 1e-9   /* per-sample agreement net vs pieces */
#define GF_RISK_TOL 1e-10 /* risk agreement */

#define SAY(rep, rc, ...)                                                                          \
    basin__construct_say((rep)->message, sizeof((rep)->message), rc, __VA_ARGS__)

void basin_group_fit_report_release(basin_group_fit_report *report)
{
    if (!report)
        return;
    basin_free(report->groups);
    basin_free(report->coef);
    basin_free(report->kinks);
    basin_free(report->set_start);
    basin_free(report->set_members);
    report->groups = NULL;
    report->coef = NULL;
    report->kinks = NULL;
    report->set_start = NULL;
    report->set_members = NULL;
}

typedef struct gf_work {
    size_t n, d, G;
    size_t *label;   /* n */
    size_t *idx;     /* n: samples ordered by group */
    size_t *gstart;  /* G + 1 */
    size_t *order;   /* G: groups by x (one_d) */
    double *pa, *pb; /* G × d slopes, G intercepts (for the compiler) */
    double *out;     /* n network outputs */
} gf_work;

static void work_release(gf_work *w)
{
    basin_free(w->label);
    basin_free(w->idx);
    basin_free(w->gstart);
    basin_free(w->order);
    basin_free(w->pa);
    basin_free(w->pb);
    basin_free(w->out);
}

static double piece_at(const double *coef, size_t d, const double *x)
{
    double v = coef[d];
    for (size_t c = 0; c < d; c++)
        v += coef[c] * x[c];
    return v;
}

static int labels_from_breaks(const basin_dataset *ds, const basin_group_fit_spec *sp, size_t *lab,
                              basin_group_fit_report *rep)
{
    if (ds->in_dim != 1)
        return SAY(rep, BASIN_EINVAL, "breakpoints need 1-D inputs, the dataset has %zu",
                   ds->in_dim);
    for (size_t k = 0; k < sp->n_breakpoints; k++) {
        if (!isfinite(sp->breakpoints[k]))
            return SAY(rep, BASIN_EINVAL, "breakpoint %zu is not finite", k);
        if (k > 0 && !(sp->breakpoints[k] > sp->breakpoints[k - 1]))
            return SAY(rep, BASIN_EINVAL, "breakpoints must increase strictly (at %zu)", k);
    }
    for (size_t i = 0; i < ds->n; i++) {
        size_t g = 0;
        for (size_t k = 0; k < sp->n_breakpoints; k++) {
            if (ds->x[i] == sp->breakpoints[k])
                return SAY(rep, BASIN_EINVAL, "breakpoint %zu equals the x of sample %zu", k, i);
            if (ds->x[i] > sp->breakpoints[k])
                g = k + 1;
        }
        lab[i] = g;
    }
    return BASIN_OK;
}

/* Labels, group sizes and the samples ordered by group. */
static int make_groups(const basin_dataset *ds, const basin_group_fit_spec *sp, gf_work *w,
                       basin_group_fit_report *rep)
{
    int rc;
    w->label = basin_alloc_array(w->n, sizeof *w->label);
    w->idx = basin_alloc_array(w->n, sizeof *w->idx);
    w->gstart = basin_calloc(w->G + 1, sizeof *w->gstart);
    if (!w->label || !w->idx || !w->gstart)
        return BASIN_ENOMEM;
    if (!sp->group) {
        if ((rc = labels_from_breaks(ds, sp, w->label, rep)) != BASIN_OK)
            return rc;
    } else {
        for (size_t i = 0; i < w->n; i++) {
            if (sp->group[i] >= w->G)
                return SAY(rep, BASIN_EINVAL, "sample %zu has group %zu, not below n_groups %zu", i,
                           sp->group[i], w->G);
            w->label[i] = sp->group[i];
        }
    }
    for (size_t i = 0; i < w->n; i++)
        w->gstart[w->label[i] + 1]++;
    for (size_t g = 0; g < w->G; g++) {
        if (w->gstart[g + 1] == 0)
            return SAY(rep, BASIN_EINVAL, "group %zu has no samples", g);
        w->gstart[g + 1] += w->gstart[g];
    }
    size_t *fill = w->order = basin_alloc_array(w->G, sizeof *w->order);
    if (!fill)
        return BASIN_ENOMEM;
    memcpy(fill, w->gstart, w->G * sizeof *fill);
    for (size_t i = 0; i < w->n; i++)
        w->idx[fill[w->label[i]]++] = i;
    return BASIN_OK;
}

/* Each group's best affine piece and its risk at the returned coefficients. */
static int fit_groups(const basin_dataset *ds, const basin_loss *loss, gf_work *w,
                      basin_group_fit_report *rep)
{
    size_t d = w->d;
    double total = 0.0;
    for (size_t g = 0; g < w->G; g++) {
        basin_affine_fit fit;
        basin_group_piece *P = &rep->groups[g];
        const size_t *ix = w->idx + w->gstart[g];
        double *coef = rep->coef + g * (d + 1);
        P->n = w->gstart[g + 1] - w->gstart[g];
        int rc = basin_affine_fit_group(ds, ix, P->n, loss, 1, &fit, coef);
        if (rc)
            return SAY(rep, rc, "the affine fit of group %zu failed: %s", g, basin_strerror(rc));
        P->fit_risk_sum = fit.risk_sum;
        P->fit_gap = fit.gap;
        P->fit_exact = fit.exact;
        P->fit_attained = fit.attained;
        P->x_lo = INFINITY;
        P->x_hi = -INFINITY;
        double sum = 0.0;
        for (size_t r = 0; r < P->n; r++) {
            const double *x = ds->x + ix[r] * d;
            double o = piece_at(coef, d, x);
            sum += basin_loss_eval(loss, &o, ds->y + ix[r] * ds->y_dim, 1, NULL);
            P->x_lo = fmin(P->x_lo, x[0]);
            P->x_hi = fmax(P->x_hi, x[0]);
        }
        P->risk_sum = sum;
        total += sum;
    }
    rep->risk = total / (double)w->n;
    return BASIN_OK;
}

/* 1-D groups in disjoint x intervals: w->order lists them by x. */
static int contiguous(gf_work *w, const basin_group_fit_report *rep)
{
    if (w->d != 1)
        return 0;
    for (size_t g = 0; g < w->G; g++)
        w->order[g] = g;
    /* insertion sort by x_lo: G is small next to n */
    for (size_t a = 1; a < w->G; a++) {
        size_t g = w->order[a], b = a;
        for (; b > 0 && rep->groups[w->order[b - 1]].x_lo > rep->groups[g].x_lo; b--)
            w->order[b] = w->order[b - 1];
        w->order[b] = g;
    }
    for (size_t a = 0; a + 1 < w->G; a++)
        if (!(rep->groups[w->order[a]].x_hi < rep->groups[w->order[a + 1]].x_lo))
            return 0;
    return 1;
}

/* Kinks of the 1-D function between consecutive groups; kinks/dk have room for 2(G−1). */
static size_t one_d_kinks(const gf_work *w, const basin_group_fit_report *rep, double *kinks,
                          double *dk)
{
    size_t K = 0;
    for (size_t a = 0; a + 1 < w->G; a++) {
        size_t g = w->order[a], h = w->order[a + 1];
        double ag = rep->coef[2 * g], cg = rep->coef[2 * g + 1];
        double ah = rep->coef[2 * h], ch = rep->coef[2 * h + 1];
        double hi = rep->groups[g].x_hi, lo = rep->groups[h].x_lo, gap = lo - hi;
        if (ag == ah && cg == ch)
            continue;
        if (ag != ah) {
            double xs = (ch - cg) / (ag - ah);
            if (xs > hi + GF_KINK_EDGE * gap && xs < lo - GF_KINK_EDGE * gap) {
                kinks[K] = xs;
                dk[K++] = ah - ag;
                continue;
            }
        }
        double u = hi + gap / 3.0, v = hi + 2.0 * gap / 3.0;
        double slope = ((ah * v + ch) - (ag * u + cg)) / (v - u);
        if (slope != ag) {
            kinks[K] = u;
            dk[K++] = slope - ag;
        }
        if (ah != slope) {
            kinks[K] = v;
            dk[K++] = ah - slope;
        }
    }
    return K;
}

static int build_one_d(const basin_dataset *ds, gf_work *w, basin_group_fit_report *rep,
                       basin_construction **out)
{
    basin_construction *c = NULL;
    basin_net *net = NULL;
    double *dk = NULL;
    size_t cap = 2 * (w->G - 1);
    int rc = BASIN_ENOMEM;
    rep->kinks = basin_alloc_array(cap ? cap : 1, sizeof *rep->kinks);
    dk = basin_alloc_array(cap ? cap : 1, sizeof *dk);
    if (!rep->kinks || !dk)
        goto done;
    size_t K = one_d_kinks(w, rep, rep->kinks, dk);
    rep->n_kinks = K;
    if (K + 1 > BASIN_NET_MAX_WIDTH) {
        rc = SAY(rep, BASIN_ERANGE, "%zu kinks exceed the width limit %d", K, BASIN_NET_MAX_WIDTH);
        goto done;
    }
    double xmin = rep->groups[w->order[0]].x_lo, xmax = rep->groups[w->order[w->G - 1]].x_hi;
    rep->t0 = xmin - fmax(1.0, xmax - xmin);
    rep->min_kink_distance = INFINITY;
    for (size_t k = 0; k < K; k++)
        for (size_t i = 0; i < w->n; i++)
            rep->min_kink_distance = fmin(rep->min_kink_distance, fabs(rep->kinks[k] - ds->x[i]));
    if ((rc = basin__construction_new(3, &c)) != BASIN_OK)
        goto done;
    c->arch.in_rank = 1;
    c->arch.in_shape[0] = 1;
    c->layers[0].kind = BASIN_LAYER_DENSE;
    c->layers[0].units = K + 1;
    c->layers[0].bias = 1;
    c->layers[1].kind = BASIN_LAYER_ACTIVATION;
    c->layers[1].act = BASIN_ACT_RELU;
    c->layers[2].kind = BASIN_LAYER_DENSE;
    c->layers[2].units = 1;
    c->layers[2].bias = 1;
    if ((rc = basin__construction_finish(c, &net, rep->message, sizeof rep->message)) != BASIN_OK)
        goto done;
    /* θ: W1 (K+1), b1 (K+1), W2 (K+1), b2 */
    double *W1 = c->theta, *b1 = W1 + K + 1, *W2 = b1 + K + 1, *b2 = W2 + K + 1;
    size_t first = w->order[0];
    double a0 = rep->coef[2 * first], c0 = rep->coef[2 * first + 1];
    W1[0] = 1.0;
    b1[0] = -rep->t0;
    W2[0] = a0;
    for (size_t k = 0; k < K; k++) {
        W1[k + 1] = 1.0;
        b1[k + 1] = -rep->kinks[k];
        W2[k + 1] = dk[k];
    }
    *b2 = c0 + a0 * rep->t0;
    rc = BASIN_OK;
done:
    basin_free(dk);
    basin_net_free(net);
    if (rc) {
        basin_construction_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* S_g = {h : p_h ≥ p_g − tie on every sample of g}, as offsets into members. */
static int lattice_sets(const basin_dataset *ds, const gf_work *w, basin_group_fit_report *rep)
{
    size_t G = w->G, d = w->d, GG;
    if (basin_mul_size(G, G, &GG))
        return BASIN_ERANGE;
    rep->set_start = basin_calloc(G + 1, sizeof *rep->set_start);
    rep->set_members = basin_alloc_array(GG, sizeof *rep->set_members);
    if (!rep->set_start || !rep->set_members)
        return BASIN_ENOMEM;
    size_t m = 0;
    for (size_t g = 0; g < G; g++) {
        rep->set_start[g] = m;
        for (size_t h = 0; h < G; h++) {
            int above = 1;
            for (size_t r = w->gstart[g]; r < w->gstart[g + 1] && above; r++) {
                const double *x = ds->x + w->idx[r] * d;
                double pg = piece_at(rep->coef + g * (d + 1), d, x);
                double ph = piece_at(rep->coef + h * (d + 1), d, x);
                above = ph >= pg - GF_TIE * (1.0 + fabs(pg));
            }
            if (above || h == g)
                rep->set_members[m++] = h;
        }
    }
    rep->set_start[G] = m;
    return BASIN_OK;
}

/* Every term g' must stay ≤ p_g on every sample of g. */
static int lattice_check(const basin_dataset *ds, const gf_work *w, basin_group_fit_report *rep)
{
    size_t d = w->d;
    for (size_t i = 0; i < w->n; i++) {
        const double *x = ds->x + i * d;
        size_t g = w->label[i];
        double pg = piece_at(rep->coef + g * (d + 1), d, x);
        for (size_t t = 0; t < w->G; t++) {
            double mn = INFINITY;
            for (size_t k = rep->set_start[t]; k < rep->set_start[t + 1]; k++)
                mn = fmin(mn, piece_at(rep->coef + rep->set_members[k] * (d + 1), d, x));
            if (mn > pg + GF_TIE * (1.0 + fabs(pg))) {
                rep->fail_group = (long)g;
                rep->fail_term = (long)t;
                rep->fail_sample = (long)i;
                rep->fail_term_value = mn;
                rep->fail_piece_value = pg;
                return SAY(rep, BASIN_ENOTSUP,
                           "no CPWL function of the lattice form max_g min_{h in S_g} p_h uses "
                           "piece g on group g for this partition: on sample %zu (group %zu) the "
                           "term of group %zu is %.17g > p_%zu = %.17g",
                           i, g, t, mn, g, pg);
            }
        }
    }
    return BASIN_OK;
}

static int build_lattice(const basin_dataset *ds, gf_work *w, basin_group_fit_report *rep,
                         basin_construction **out)
{
    size_t G = w->G, d = w->d, nd;
    int rc;
    *out = NULL;
    if ((rc = lattice_sets(ds, w, rep)) != BASIN_OK || (rc = lattice_check(ds, w, rep)) != BASIN_OK)
        return rc;
    if (basin_mul_size(G, d, &nd))
        return BASIN_ERANGE;
    w->pa = basin_alloc_array(nd, sizeof *w->pa);
    w->pb = basin_alloc_array(G, sizeof *w->pb);
    if (!w->pa || !w->pb)
        return BASIN_ENOMEM;
    for (size_t g = 0; g < G; g++) {
        memcpy(w->pa + g * d, rep->coef + g * (d + 1), d * sizeof *w->pa);
        w->pb[g] = rep->coef[g * (d + 1) + d];
    }
    basin_cpwl_spec sp = {d, G, w->pa, w->pb, G, rep->set_start, rep->set_members};
    rc = basin_construct_cpwl(&sp, out, &rep->cpwl);
    if (rc)
        SAY(rep, rc, "the CPWL compiler failed: %s", rep->cpwl.message);
    return rc;
}

/* Evaluate the network on every sample: outputs against the pieces, risk against rep->risk. */
static int verify(const basin_dataset *ds, const basin_loss *loss, const basin_construction *c,
                  gf_work *w, basin_group_fit_report *rep)
{
    basin_net *net = NULL;
    basin_net_ws *ws = NULL;
    int rc = basin_net_create(&c->arch, &net, NULL);
    if (rc || (rc = basin_net_ws_create(net, w->n < GF_CHUNK ? w->n : GF_CHUNK, &ws)))
        goto done;
    w->out = basin_alloc_array(w->n, sizeof *w->out);
    if (!w->out) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if ((rc = basin_net_forward(net, ws, c->theta, ds->x, w->n, w->out)) != BASIN_OK ||
        (rc = basin_net_risk_grad(net, ws, c->theta, ds, NULL, w->n, loss, &rep->net_risk, NULL)) !=
            BASIN_OK)
        goto done;
    double diff = 0.0, scale = 1.0;
    for (size_t i = 0; i < w->n; i++) {
        double p = piece_at(rep->coef + w->label[i] * (w->d + 1), w->d, ds->x + i * w->d);
        diff = fmax(diff, fabs(w->out[i] - p));
        scale = fmax(scale, fabs(p));
    }
    if (!(diff <= GF_OUT_TOL * scale)) {
        rc = SAY(rep, BASIN_ENUMERIC, "the network misses the pieces by %g on the data", diff);
        goto done;
    }
    double tol = GF_RISK_TOL * fmax(rep->risk, 1e-6 * scale * scale);
    if (!(fabs(rep->net_risk - rep->risk) <= tol))
        rc = SAY(rep, BASIN_ENUMERIC, "the network's risk %.17g differs from the pieces' %.17g",
                 rep->net_risk, rep->risk);
done:
    basin_net_ws_free(ws);
    basin_net_free(net);
    return rc;
}

static int check_args(const basin_dataset *ds, const basin_loss *loss,
                      const basin_group_fit_spec *sp, basin_group_fit_report *rep)
{
    if (!ds || !loss || !sp)
        return SAY(rep, BASIN_EINVAL, "missing argument");
    if (ds->n == 0 || !ds->x || !ds->y || ds->in_dim == 0)
        return SAY(rep, BASIN_EINVAL, "the dataset is empty");
    if (basin_loss_check(loss, 1) != BASIN_OK || ds->y_dim != basin_loss_target_dim(loss, 1))
        return SAY(rep, BASIN_EINVAL,
                   "group fit builds scalar-output nets: loss %s with %zu target values does not "
                   "fit",
                   basin_loss_name(loss->kind), ds->y_dim);
    if (sp->group && sp->breakpoints)
        return SAY(rep, BASIN_EINVAL, "give either group labels or breakpoints, not both");
    if (!sp->group && sp->n_breakpoints > 0 && !sp->breakpoints)
        return SAY(rep, BASIN_EINVAL, "n_breakpoints without breakpoints");
    if (sp->group && sp->n_groups == 0)
        return SAY(rep, BASIN_EINVAL, "n_groups must be at least 1");
    if (sp->method != BASIN_GROUP_FIT_AUTO && sp->method != BASIN_GROUP_FIT_ONE_D &&
        sp->method != BASIN_GROUP_FIT_LATTICE)
        return SAY(rep, BASIN_EINVAL, "unknown method %d", (int)sp->method);
    return BASIN_OK;
}

int basin_construct_group_fit(const basin_dataset *ds, const basin_loss *loss,
                              const basin_group_fit_spec *spec, basin_construction **out,
                              basin_group_fit_report *report)
{
    basin_group_fit_report scratch;
    basin_group_fit_report *rep = report ? report : &scratch;
    basin_construction *c = NULL;
    gf_work w;
    size_t ncoef;
    int rc;
    memset(&w, 0, sizeof w);
    memset(rep, 0, sizeof *rep);
    rep->method = "";
    rep->fail_group = rep->fail_term = rep->fail_sample = -1;
    rep->min_kink_distance = INFINITY;
    if (!out) {
        rc = SAY(rep, BASIN_EINVAL, "missing argument");
        goto done;
    }
    *out = NULL;
    if ((rc = check_args(ds, loss, spec, rep)) != BASIN_OK)
        goto done;
    w.n = ds->n;
    w.d = ds->in_dim;
    w.G = spec->group ? spec->n_groups : spec->n_breakpoints + 1;
    if (w.G == 0 || w.G > w.n) {
        rc = SAY(rep, BASIN_EINVAL, "%zu groups for %zu samples: some group would be empty", w.G,
                 w.n);
        goto done;
    }
    rep->n_groups = w.G;
    rep->dim = w.d;
    if ((rc = basin_add_size(w.d, 1, &ncoef)) || (rc = basin_mul_size(ncoef, w.G, &ncoef)))
        goto done;
    rep->groups = basin_calloc(w.G, sizeof *rep->groups);
    rep->coef = basin_calloc(ncoef, sizeof *rep->coef);
    if (!rep->groups || !rep->coef) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if ((rc = make_groups(ds, spec, &w, rep)) || (rc = fit_groups(ds, loss, &w, rep)))
        goto done;
    int one_d = contiguous(&w, rep);
    if (spec->method == BASIN_GROUP_FIT_ONE_D && !one_d) {
        rc = SAY(rep, BASIN_EINVAL,
                 "one_d needs 1-D inputs whose groups occupy disjoint x intervals");
        goto done;
    }
    if (spec->method == BASIN_GROUP_FIT_LATTICE)
        one_d = 0;
    rep->method = one_d ? "one_d" : "lattice";
    rc = one_d ? build_one_d(ds, &w, rep, &c) : build_lattice(ds, &w, rep, &c);
    if (rc == BASIN_OK)
        rc = verify(ds, loss, c, &w, rep);
done:
    if (rc == BASIN_ENOMEM && rep->message[0] == '\0')
        SAY(rep, rc, "out of memory");
    if (rc == BASIN_ERANGE && rep->message[0] == '\0')
        SAY(rep, rc, "sizes overflow");
    work_release(&w);
    if (!report)
        basin_group_fit_report_release(&scratch);
    if (rc) {
        basin_construction_free(c);
        c = NULL;
    }
    if (out)
        *out = c;
    return rc;
}
