/* The "certify" section of an experiment spec (spec.h): how every finished run's end point is
 * judged. Parsed strictly into basin_certify_opts plus the server's own options (enabled,
 * spurious_tol, global_tol) and written back in canonical form with every default filled in.
 *
 * The field names and bounds are those of the CertifyOptions of constructions and evaluations
 * (imported.c), so one "certify" object means the same everywhere; "probe_radii" is the
 * experiment's name of the probe radii, and "radii" (the evaluations' name) is accepted as an
 * alias so that the stored spec of an evaluation parses as an experiment spec too. The
 * canonical form always writes "probe_radii". */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/status.h"
#include "spec.h"
#include "spec_int.h"

#define DEFAULT_SPURIOUS_TOL 1e-6 /* spurious.h, SPURIOUS_DEFAULT_TOL */
#define DEFAULT_GLOBAL_TOL 1e-3

static const char *const certify_keys[] = {"enabled",
                                           "polish",
                                           "polish_max_iter",
                                           "polish_grad_tol",
                                           "grad_tol",
                                           "grad_tol_rel",
                                           "cert_tol",
                                           "curv_tol",
                                           "margin_tol",
                                           "max_boundary_pairs",
                                           "probes",
                                           "probe_radii",
                                           "radii",
                                           "probe_steps",
                                           "probe_lr",
                                           "lanczos_max_iter",
                                           "dense_max_params",
                                           "check_certified",
                                           "group_sample_cap",
                                           "seed",
                                           "spurious_tol",
                                           "global_tol",
                                           NULL};

void spec_certify_defaults(struct spec_certify *out)
{
    memset(out, 0, sizeof *out);
    out->enabled = 1;
    basin_certify_defaults(&out->opts);
    out->opts.polish = 1;
    out->spurious_tol = DEFAULT_SPURIOUS_TOL;
    out->global_tol = DEFAULT_GLOBAL_TOL;
}

/* The radii array at member `key`: 1..BASIN_CERTIFY_MAX_RADII finite numbers > 0. */
static int parse_radii(struct spec_ctx *c, const json_t *arr, const char *key,
                       basin_certify_opts *o)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    int rc = BASIN_OK;
    size_t mark = spec_ptr_push(c, key);
    if (!json_is_array(arr) || n < 1 || n > BASIN_CERTIFY_MAX_RADII) {
        spec_err(c, "must be an array of 1 to %d numbers > 0", BASIN_CERTIFY_MAX_RADII);
        rc = BASIN_EINVAL;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        double d = json_is_number(e) ? json_number_value(e) : NAN;
        if (!(isfinite(d) && d > 0)) {
            size_t m2 = spec_ptr_push_index(c, i);
            spec_err(c, "must be a finite number > 0");
            spec_ptr_pop(c, m2);
            rc = BASIN_EINVAL;
            continue;
        }
        o->radii[i] = d;
    }
    if (rc == BASIN_OK)
        o->n_radii = n;
done:
    spec_ptr_pop(c, mark);
    return rc;
}

int spec_certify_parse_at(struct spec_ctx *c, const json_t *v, struct spec_certify *out)
{
    basin_certify_opts *o = &out->opts;
    int rc = BASIN_OK;

    spec_certify_defaults(out);
    if (v == NULL)
        return BASIN_OK;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    rc |= spec_check_keys(c, v, certify_keys, "certify");
    rc |= spec_get_bool(c, v, "enabled", 1, &out->enabled);
    rc |= spec_get_bool(c, v, "polish", 1, &o->polish);
    rc |= spec_get_size(c, v, "polish_max_iter", 0, 0, SPEC_CERTIFY_MAX_POLISH_ITER,
                        o->polish_max_iter, &o->polish_max_iter);
    rc |= spec_get_num(c, v, "polish_grad_tol", 0, SPEC_NUM_NONNEG, o->polish_grad_tol,
                       &o->polish_grad_tol);
    rc |= spec_get_num(c, v, "grad_tol", 0, SPEC_NUM_NONNEG, o->grad_tol, &o->grad_tol);
    rc |= spec_get_num(c, v, "grad_tol_rel", 0, SPEC_NUM_NONNEG, o->grad_tol_rel, &o->grad_tol_rel);
    rc |= spec_get_num(c, v, "cert_tol", 0, SPEC_NUM_NONNEG, o->cert_tol, &o->cert_tol);
    rc |= spec_get_num(c, v, "curv_tol", 0, SPEC_NUM_NONNEG, o->curv_tol, &o->curv_tol);
    rc |= spec_get_num(c, v, "margin_tol", 0, SPEC_NUM_NONNEG, o->margin_tol, &o->margin_tol);
    rc |= spec_get_size(c, v, "max_boundary_pairs", 0, 0, BASIN_CERTIFY_MAX_BOUNDARY,
                        o->max_boundary_pairs, &o->max_boundary_pairs);
    rc |= spec_get_size(c, v, "probes", 0, 0, SPEC_CERTIFY_MAX_PROBES, o->probes, &o->probes);
    const json_t *pr = json_object_get(v, "probe_radii"), *ra = json_object_get(v, "radii");
    if (pr != NULL && ra != NULL) {
        spec_err_at(c, "radii", "give the probe radii once, as \"probe_radii\"");
        rc = BASIN_EINVAL;
    } else if (pr != NULL || ra != NULL) {
        rc |= parse_radii(c, pr != NULL ? pr : ra, pr != NULL ? "probe_radii" : "radii", o);
    }
    rc |= spec_get_size(c, v, "probe_steps", 0, 0, SPEC_CERTIFY_MAX_PROBE_STEPS, o->probe_steps,
                        &o->probe_steps);
    rc |= spec_get_num(c, v, "probe_lr", 0, SPEC_NUM_NONNEG, o->probe_lr, &o->probe_lr);
    rc |= spec_get_size(c, v, "lanczos_max_iter", 0, 0, SPEC_CERTIFY_MAX_LANCZOS,
                        o->lanczos_max_iter, &o->lanczos_max_iter);
    rc |= spec_get_size(c, v, "dense_max_params", 0, 0, SPEC_CERTIFY_MAX_DENSE_PARAMS,
                        o->dense_max_params, &o->dense_max_params);
    rc |= spec_get_bool(c, v, "check_certified", 0, &o->check_certified);
    rc |= spec_get_size(c, v, "group_sample_cap", 0, 0, SPEC_CERTIFY_MAX_GROUP_SAMPLES,
                        o->group_sample_cap, &o->group_sample_cap);
    rc |= spec_get_u64(c, v, "seed", 0, &o->seed);
    rc |= spec_get_num(c, v, "spurious_tol", 0, SPEC_NUM_NONNEG, DEFAULT_SPURIOUS_TOL,
                       &out->spurious_tol);
    rc |=
        spec_get_num(c, v, "global_tol", 0, SPEC_NUM_NONNEG, DEFAULT_GLOBAL_TOL, &out->global_tol);
    /* The fields above cover every rule of the core; this only guards against drift. */
    if (rc == BASIN_OK && basin_certify_check_opts(o) != BASIN_OK) {
        spec_err(c, "is not accepted by the verifier (basin_certify_check_opts)");
        rc = BASIN_EINVAL;
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

int spec_certify_parse(const json_t *certify, struct spec_certify *out, struct spec_errors *errs)
{
    struct spec_ctx c;
    spec_ctx_init(&c, NULL, errs);
    size_t mark = spec_ptr_push(&c, "certify");
    int rc = spec_certify_parse_at(&c, certify, out);
    spec_ptr_pop(&c, mark);
    if (c.oom)
        return BASIN_ENOMEM;
    return rc;
}

json_t *spec_certify_to_json(const struct spec_certify *c)
{
    const basin_certify_opts *o = &c->opts;
    json_t *obj = json_object(), *radii = json_array();
    int ok = obj != NULL && radii != NULL;
    for (size_t i = 0; ok && i < o->n_radii; i++)
        spec_append(radii, json_real(o->radii[i]), &ok);
    spec_set(obj, "enabled", json_boolean(c->enabled), &ok);
    spec_set(obj, "polish", json_boolean(o->polish), &ok);
    spec_set(obj, "polish_max_iter", json_integer((json_int_t)o->polish_max_iter), &ok);
    spec_set(obj, "polish_grad_tol", json_real(o->polish_grad_tol), &ok);
    spec_set(obj, "grad_tol", json_real(o->grad_tol), &ok);
    spec_set(obj, "grad_tol_rel", json_real(o->grad_tol_rel), &ok);
    spec_set(obj, "cert_tol", json_real(o->cert_tol), &ok);
    spec_set(obj, "curv_tol", json_real(o->curv_tol), &ok);
    spec_set(obj, "margin_tol", json_real(o->margin_tol), &ok);
    spec_set(obj, "max_boundary_pairs", json_integer((json_int_t)o->max_boundary_pairs), &ok);
    spec_set(obj, "probes", json_integer((json_int_t)o->probes), &ok);
    spec_set(obj, "probe_radii", radii, &ok);
    radii = NULL;
    spec_set(obj, "probe_steps", json_integer((json_int_t)o->probe_steps), &ok);
    spec_set(obj, "probe_lr", json_real(o->probe_lr), &ok);
    spec_set(obj, "lanczos_max_iter", json_integer((json_int_t)o->lanczos_max_iter), &ok);
    spec_set(obj, "dense_max_params", json_integer((json_int_t)o->dense_max_params), &ok);
    spec_set(obj, "check_certified", json_boolean(o->check_certified), &ok);
    spec_set(obj, "group_sample_cap", json_integer((json_int_t)o->group_sample_cap), &ok);
    spec_set(obj, "seed", json_integer((json_int_t)o->seed), &ok);
    spec_set(obj, "spurious_tol", json_real(c->spurious_tol), &ok);
    spec_set(obj, "global_tol", json_real(c->global_tol), &ok);
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
