/* A verdict as JSON (certificate_json.h): a plain field-by-field mapping of basin_certificate,
 * with non-finite reals as null (JSON cannot carry them) and the optional vectors (descent
 * direction, probe witness) only when the certificate has them. */
#include "certificate_json.h"

#include <math.h>

struct jb {
    int ok;
};

static json_t *real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Steal v into o (json_*_set_new releases v on failure too); a NULL anywhere is out of memory. */
static void set(struct jb *b, json_t *o, const char *key, json_t *v)
{
    if (o == NULL) {
        json_decref(v);
        b->ok = 0;
    } else if (v == NULL || json_object_set_new(o, key, v) != 0) {
        b->ok = 0;
    }
}

static void push(struct jb *b, json_t *a, json_t *v)
{
    if (a == NULL) {
        json_decref(v);
        b->ok = 0;
    } else if (v == NULL || json_array_append_new(a, v) != 0) {
        b->ok = 0;
    }
}

static json_t *sizes(struct jb *b, const size_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && b->ok && i < n; i++)
        push(b, a, json_integer((json_int_t)v[i]));
    return a;
}

static json_t *reals(struct jb *b, const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && b->ok && i < n; i++)
        push(b, a, real(v[i]));
    return a;
}

static json_t *site(struct jb *b, const basin_cert_site *s)
{
    json_t *o = json_object();
    set(b, o, "layer", json_integer((json_int_t)s->layer));
    set(b, o, "sample", json_integer((json_int_t)s->sample));
    set(b, o, "unit", json_integer((json_int_t)s->unit));
    return o;
}

static json_t *polish_json(struct jb *b, const basin_cert_polish *p)
{
    json_t *o = json_object();
    set(b, o, "ran", json_boolean(p->ran));
    set(b, o, "accepted", json_boolean(p->accepted));
    set(b, o, "method", json_string(p->method ? p->method : "none"));
    set(b, o, "iterations", json_integer((json_int_t)p->iterations));
    set(b, o, "moved", real(p->moved));
    set(b, o, "pattern_changed", json_boolean(p->pattern_changed));
    set(b, o, "risk_before", p->ran ? real(p->risk_before) : json_null());
    set(b, o, "risk_after", p->ran ? real(p->risk_after) : json_null());
    set(b, o, "grad_before", p->ran ? real(p->grad_before) : json_null());
    set(b, o, "grad_after", p->ran ? real(p->grad_after) : json_null());
    return o;
}

static json_t *margin_json(struct jb *b, const basin_certificate *c)
{
    json_t *o = json_object();
    set(b, o, "value", c->has_margin ? real(c->margin) : json_null());
    set(b, o, "at", c->has_margin ? site(b, &c->margin_at) : json_null());
    return o;
}

static json_t *dead_json(struct jb *b, const basin_certificate *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && b->ok && i < c->n_dead_layers; i++) {
        const basin_cert_dead *d = &c->dead_units[i];
        json_t *o = json_object();
        set(b, o, "layer", json_integer((json_int_t)d->layer));
        set(b, o, "units", json_integer((json_int_t)d->units));
        set(b, o, "dead", sizes(b, d->dead, d->n_dead));
        push(b, a, o);
    }
    return a;
}

static json_t *boundary_json(struct jb *b, const basin_certificate *c)
{
    json_t *o = json_object(), *pairs = json_array();
    for (size_t i = 0; pairs != NULL && b->ok && i < c->n_boundary_listed; i++)
        push(b, pairs, site(b, &c->boundary_pairs[i]));
    set(b, o, "count", json_integer((json_int_t)c->n_boundary));
    set(b, o, "pairs", pairs);
    return o;
}

static json_t *region_json(struct jb *b, const basin_cert_region *r)
{
    json_t *o = json_object(), *groups = json_array(), *bd = json_object();
    for (size_t i = 0; groups != NULL && b->ok && i < r->n_groups; i++) {
        const basin_cert_group *g = &r->groups[i];
        json_t *go = json_object();
        set(b, go, "n_samples", json_integer((json_int_t)g->n_samples));
        set(b, go, "pattern_hash", json_string(g->pattern_hash));
        set(b, go, "risk_sum", real(g->risk_sum));
        set(b, go, "fit_risk_sum", real(g->fit_risk_sum));
        set(b, go, "fit_gap", real(g->fit_gap));
        set(b, go, "fit_exact", json_boolean(g->fit_exact));
        set(b, go, "fit_attained", json_boolean(g->fit_attained));
        set(b, go, "indices", sizes(b, g->indices, g->n_indices));
        push(b, groups, go);
    }
    set(b, bd, "ran", json_boolean(r->boundary_ran));
    set(b, bd, "total", json_integer((json_int_t)r->boundary_total));
    set(b, bd, "evaluated", json_integer((json_int_t)r->boundary_evaluated));
    set(b, bd, "bound", r->boundary_ran ? real(r->boundary_bound) : json_null());
    set(b, bd, "exact", json_boolean(r->boundary_exact));
    set(b, bd, "holds", json_boolean(r->boundary_holds));
    set(b, o, "ran", json_boolean(r->ran));
    set(b, o, "bound", r->ran ? real(r->bound) : json_null());
    set(b, o, "bound_gap", r->ran ? real(r->bound_gap) : json_null());
    set(b, o, "exact", json_boolean(r->exact));
    set(b, o, "holds", json_boolean(r->holds));
    set(b, o, "n_groups", json_integer((json_int_t)r->n_groups));
    set(b, o, "groups", groups);
    set(b, o, "boundary", bd);
    return o;
}

static json_t *exact_json(struct jb *b, const basin_cert_exact *e)
{
    json_t *o = json_object(), *bd = json_object();
    set(b, bd, "ran", json_boolean(e->boundary_ran));
    set(b, bd, "total", json_integer((json_int_t)e->boundary_total));
    set(b, bd, "evaluated", json_integer((json_int_t)e->boundary_evaluated));
    set(b, bd, "value", e->boundary_ran ? real(e->boundary_value) : json_null());
    set(b, bd, "holds", json_boolean(e->boundary_holds));
    set(b, o, "applicable", json_boolean(e->applicable));
    set(b, o, "ran", json_boolean(e->ran));
    set(b, o, "value", e->ran ? real(e->value) : json_null());
    set(b, o, "exact", json_boolean(e->exact));
    set(b, o, "iterations", json_integer((json_int_t)e->iterations));
    set(b, o, "holds", json_boolean(e->holds));
    set(b, o, "not_minimum", json_boolean(e->not_minimum));
    set(b, o, "descent_verified", json_boolean(e->descent_verified));
    set(b, o, "boundary", bd);
    return o;
}

static json_t *curvature_json(struct jb *b, const basin_cert_curvature *cv)
{
    json_t *o = json_object();
    set(b, o, "ran", json_boolean(cv->ran));
    set(b, o, "lambda_min", cv->ran ? real(cv->lambda_min) : json_null());
    set(b, o, "lambda_max", cv->ran ? real(cv->lambda_max) : json_null());
    set(b, o, "converged", json_boolean(cv->lanczos_converged));
    set(b, o, "iterations", json_integer((json_int_t)cv->lanczos_iterations));
    set(b, o, "residual_min", cv->ran ? real(cv->residual_min) : json_null());
    set(b, o, "residual_max", cv->ran ? real(cv->residual_max) : json_null());
    set(b, o, "threshold", cv->ran ? real(cv->threshold) : json_null());
    set(b, o, "dense", json_boolean(cv->dense));
    set(b, o, "dense_lambda_min", cv->dense ? real(cv->dense_lambda_min) : json_null());
    set(b, o, "dense_lambda_max", cv->dense ? real(cv->dense_lambda_max) : json_null());
    set(b, o, "near_zero_eigs", json_integer((json_int_t)cv->near_zero_eigs));
    return o;
}

static json_t *probes_json(struct jb *b, const basin_certificate *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && b->ok && i < c->n_probe_levels; i++) {
        const basin_cert_probe_level *p = &c->probes[i];
        json_t *o = json_object();
        set(b, o, "radius", real(p->radius));
        set(b, o, "radius_abs", real(p->radius_abs));
        set(b, o, "tried", json_integer((json_int_t)p->tried));
        set(b, o, "escaped", json_integer((json_int_t)p->escaped));
        set(b, o, "best_risk", real(p->best_risk));
        push(b, a, o);
    }
    return a;
}

json_t *certificate_json(const basin_certificate *c)
{
    struct jb b = {1};
    json_t *o;

    if (c == NULL)
        return NULL;
    o = json_object();
    set(&b, o, "label", json_string(basin_verdict_name(c->label)));
    set(&b, o, "decided_by", json_string(basin_decider_name(c->decided_by)));
    set(&b, o, "reason", json_string(c->reason));
    set(&b, o, "contradiction", json_boolean(c->contradiction));
    set(&b, o, "dim", json_integer((json_int_t)c->dim));
    set(&b, o, "n_samples", json_integer((json_int_t)c->n_samples));
    set(&b, o, "risk", real(c->risk));
    set(&b, o, "param_norm", real(c->param_norm));
    set(&b, o, "grad_norm", real(c->grad_norm));
    set(&b, o, "grad_norm_rel", real(c->grad_norm_rel));
    set(&b, o, "stationary", json_boolean(c->stationary));
    set(&b, o, "polish", polish_json(&b, &c->polish));
    set(&b, o, "margin", margin_json(&b, c));
    set(&b, o, "dead_units", dead_json(&b, c));
    set(&b, o, "boundary", boundary_json(&b, c));
    set(&b, o, "region", region_json(&b, &c->region));
    set(&b, o, "exact", exact_json(&b, &c->exact));
    set(&b, o, "curvature", curvature_json(&b, &c->curvature));
    set(&b, o, "symmetry_zero_modes", json_integer((json_int_t)c->symmetry_zero_modes));
    set(&b, o, "probes", probes_json(&b, c));
    if (c->descent != NULL) {
        json_t *d = json_object();
        set(&b, d, "from", json_string(basin_decider_name(c->descent_from)));
        set(&b, d, "curvature", real(c->descent_curvature));
        set(&b, d, "direction", reals(&b, c->descent, c->dim));
        set(&b, o, "descent", d);
    } else {
        set(&b, o, "descent", json_null());
    }
    if (c->witness != NULL) {
        json_t *w = json_object();
        set(&b, w, "risk", real(c->witness_risk));
        set(&b, w, "radius", real(c->witness_radius));
        set(&b, w, "params", reals(&b, c->witness, c->dim));
        set(&b, o, "witness", w);
    } else {
        set(&b, o, "witness", json_null());
    }
    if (!b.ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
