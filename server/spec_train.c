/* The training sections of an experiment spec: "loss", "optimizer" (with its schedule), "init"
 * and "stop", parsed into basin_loss / basin_optim_spec / basin_init / basin_train_spec and
 * written back in canonical form (every default filled in, only the fields the chosen kind uses).
 *
 * "sgd" is not a separate core optimizer: it is gradient descent with a mini-batch, so the
 * canonical form names a batched GD "sgd" and a full-batch one "gd". Fields that the chosen kind
 * does not use (e.g. "momentum" for adam) are errors rather than silently ignored. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "spec.h"
#include "spec_int.h"

/* ---- loss ---- */

static const char *const loss_names[] = {"squared",  "absolute",      "huber",
                                         "logistic", "cross_entropy", "hinge"};
#define N_LOSSES (sizeof loss_names / sizeof loss_names[0])

static int loss_kind_from(const char *name, basin_loss_kind *out)
{
    return basin_loss_from_name(name, out);
}

int spec_loss_parse_at(struct spec_ctx *c, const json_t *v, basin_loss *out)
{
    static const char *const huber_keys[] = {"kind", "delta", NULL};
    static const char *const plain_keys[] = {"kind", NULL};
    out->kind = BASIN_LOSS_SQUARED;
    out->huber_delta = 1.0;
    if (json_is_string(v)) {
        if (loss_kind_from(json_string_value(v), &out->kind) == BASIN_OK)
            return BASIN_OK;
        spec_err(c, "must be one of \"squared\", \"absolute\", \"huber\", \"logistic\", "
                    "\"cross_entropy\", \"hinge\" (or an object with \"kind\")");
        return BASIN_EINVAL;
    }
    if (!json_is_object(v)) {
        spec_err(c, "must be a loss name or an object with \"kind\"");
        return BASIN_EINVAL;
    }
    size_t k;
    if (spec_get_enum(c, v, "kind", 1, loss_names, N_LOSSES, 0, &k) != BASIN_OK) {
        spec_check_keys(c, v, huber_keys, "a loss");
        return BASIN_EINVAL;
    }
    if (loss_kind_from(loss_names[k], &out->kind) != BASIN_OK) {
        spec_err_at(c, "kind", "is not a loss of this build");
        return BASIN_EINVAL;
    }
    int rc = BASIN_OK;
    if (out->kind == BASIN_LOSS_HUBER) {
        rc |= spec_check_keys(c, v, huber_keys, "loss huber");
        rc |= spec_get_num(c, v, "delta", 0, SPEC_NUM_POSITIVE, 1.0, &out->huber_delta);
    } else {
        rc |= spec_check_keys(c, v, plain_keys, NULL);
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

json_t *spec_loss_to_json(const basin_loss *loss)
{
    if (loss->kind == BASIN_LOSS_HUBER)
        return json_pack("{s:s, s:f}", "kind", "huber", "delta", loss->huber_delta);
    return json_string(basin_loss_name(loss->kind));
}

/* ---- optimizer ---- */

enum { OPT_GD, OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, N_OPTS };
static const char *const opt_names[N_OPTS] = {"gd", "sgd", "momentum", "nesterov", "adam"};
static const basin_optim_kind opt_kinds[N_OPTS] = {BASIN_OPT_GD, BASIN_OPT_GD, BASIN_OPT_MOMENTUM,
                                                   BASIN_OPT_NESTEROV, BASIN_OPT_ADAM};
static const char *const opt_keys[N_OPTS][9] = {
    {"kind", "lr", "schedule", "batch", NULL},
    {"kind", "lr", "schedule", "batch", NULL},
    {"kind", "lr", "schedule", "batch", "momentum", NULL},
    {"kind", "lr", "schedule", "batch", "momentum", NULL},
    {"kind", "lr", "schedule", "batch", "beta1", "beta2", "eps", NULL}};

static int parse_schedule(struct spec_ctx *c, const json_t *v, size_t max_steps,
                          basin_optim_spec *o)
{
    static const char *const names[] = {"constant", "step"};
    static const char *const constant_keys[] = {"kind", NULL};
    static const char *const step_keys[] = {"kind", "step_every", "gamma", NULL};
    size_t k;
    int rc = BASIN_OK;
    o->schedule = BASIN_SCHEDULE_CONSTANT;
    o->step_every = 0;
    o->gamma = 0.1;
    if (v == NULL)
        return BASIN_OK;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    if (spec_get_enum(c, v, "kind", 1, names, 2, 0, &k) != BASIN_OK) {
        spec_check_keys(c, v, step_keys, "a schedule");
        return BASIN_EINVAL;
    }
    if (k == 0) {
        rc |= spec_check_keys(c, v, constant_keys, "schedule constant");
    } else {
        o->schedule = BASIN_SCHEDULE_STEP;
        rc |= spec_check_keys(c, v, step_keys, "schedule step");
        rc |= spec_get_size(c, v, "step_every", 1, 1, max_steps, 0, &o->step_every);
        rc |= spec_get_num(c, v, "gamma", 0, SPEC_NUM_POSITIVE, 0.1, &o->gamma);
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

int spec_optimizer_parse_at(struct spec_ctx *c, const json_t *v, size_t max_steps,
                            basin_optim_spec *out)
{
    size_t k = OPT_GD;
    int rc = BASIN_OK;
    basin_optim_defaults(BASIN_OPT_GD, 0.01, out);
    out->batch = 0;
    out->schedule = BASIN_SCHEDULE_CONSTANT;
    if (v == NULL)
        return BASIN_OK;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    if (spec_get_enum(c, v, "kind", 0, opt_names, N_OPTS, OPT_GD, &k) != BASIN_OK) {
        spec_check_keys(c, v, opt_keys[OPT_ADAM], "an optimizer");
        return BASIN_EINVAL;
    }
    char what[32];
    snprintf(what, sizeof what, "optimizer %s", opt_names[k]);
    rc |= spec_check_keys(c, v, opt_keys[k], what);
    double lr;
    rc |= spec_get_num(c, v, "lr", 0, SPEC_NUM_POSITIVE, k == OPT_ADAM ? 0.001 : 0.01, &lr);
    basin_optim_defaults(opt_kinds[k], lr, out);
    switch (k) {
    case OPT_GD:
        if (json_object_get(v, "batch") != NULL) {
            spec_err_at(c, "batch", "gd is full-batch; use \"sgd\" for mini-batches");
            rc = BASIN_EINVAL;
        }
        out->batch = 0;
        break;
    case OPT_SGD:
        rc |= spec_get_size(c, v, "batch", 1, 1, c->lim->max_points, 0, &out->batch);
        break;
    case OPT_MOMENTUM:
    case OPT_NESTEROV:
        rc |= spec_get_size(c, v, "batch", 0, 0, c->lim->max_points, 0, &out->batch);
        rc |= spec_get_num(c, v, "momentum", 0, SPEC_NUM_UNIT, 0.9, &out->momentum);
        break;
    case OPT_ADAM:
        rc |= spec_get_size(c, v, "batch", 0, 0, c->lim->max_points, 0, &out->batch);
        rc |= spec_get_num(c, v, "beta1", 0, SPEC_NUM_UNIT, 0.9, &out->beta1);
        rc |= spec_get_num(c, v, "beta2", 0, SPEC_NUM_UNIT, 0.999, &out->beta2);
        rc |= spec_get_num(c, v, "eps", 0, SPEC_NUM_POSITIVE, 1e-8, &out->eps);
        break;
    }
    size_t mark = spec_ptr_push(c, "schedule");
    rc |= parse_schedule(c, json_object_get(v, "schedule"), max_steps, out);
    spec_ptr_pop(c, mark);
    return rc ? BASIN_EINVAL : BASIN_OK;
}

json_t *spec_optimizer_to_json(const basin_optim_spec *o)
{
    json_t *obj = json_object();
    int ok = obj != NULL;
    const char *name = "gd";
    switch (o->kind) {
    case BASIN_OPT_GD:
        name = o->batch > 0 ? "sgd" : "gd";
        break;
    case BASIN_OPT_MOMENTUM:
        name = "momentum";
        break;
    case BASIN_OPT_NESTEROV:
        name = "nesterov";
        break;
    case BASIN_OPT_ADAM:
        name = "adam";
        break;
    }
    spec_set(obj, "kind", json_string(name), &ok);
    spec_set(obj, "lr", json_real(o->lr), &ok);
    if (o->kind != BASIN_OPT_GD || o->batch > 0)
        spec_set(obj, "batch", json_integer((json_int_t)o->batch), &ok);
    if (o->kind == BASIN_OPT_MOMENTUM || o->kind == BASIN_OPT_NESTEROV)
        spec_set(obj, "momentum", json_real(o->momentum), &ok);
    if (o->kind == BASIN_OPT_ADAM) {
        spec_set(obj, "beta1", json_real(o->beta1), &ok);
        spec_set(obj, "beta2", json_real(o->beta2), &ok);
        spec_set(obj, "eps", json_real(o->eps), &ok);
    }
    if (o->schedule == BASIN_SCHEDULE_STEP)
        spec_set(obj, "schedule",
                 json_pack("{s:s, s:I, s:f}", "kind", "step", "step_every",
                           (json_int_t)o->step_every, "gamma", o->gamma),
                 &ok);
    else
        spec_set(obj, "schedule", json_pack("{s:s}", "kind", "constant"), &ok);
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ---- init ---- */

static const char *const init_names[] = {"he",     "he_uniform", "xavier", "xavier_uniform",
                                         "normal", "uniform",    "given"};
static const basin_init_kind init_kinds[] = {BASIN_INIT_HE_NORMAL,     BASIN_INIT_HE_UNIFORM,
                                             BASIN_INIT_XAVIER_NORMAL, BASIN_INIT_XAVIER_UNIFORM,
                                             BASIN_INIT_NORMAL,        BASIN_INIT_UNIFORM,
                                             BASIN_INIT_GIVEN};
#define N_INITS (sizeof init_names / sizeof init_names[0])

static int parse_given(struct spec_ctx *c, const json_t *v, struct spec_experiment *exp)
{
    json_t *arr = json_object_get(v, "params");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (arr == NULL) {
        spec_err_at(c, "params", "required");
        return BASIN_EINVAL;
    }
    if (n == 0) {
        spec_err_at(c, "params", "must be a non-empty array of numbers");
        return BASIN_EINVAL;
    }
    if (n > c->lim->max_params) {
        spec_err_at(c, "params", "has %zu values; the limit is %zu parameters", n,
                    c->lim->max_params);
        return BASIN_EINVAL;
    }
    exp->given_params = basin_alloc_array(n, sizeof(double));
    if (exp->given_params == NULL) {
        c->oom = 1;
        return BASIN_ENOMEM;
    }
    exp->given_len = n;
    int rc = BASIN_OK;
    size_t mark = spec_ptr_push(c, "params");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        double d = json_is_number(e) ? json_number_value(e) : 0;
        if (!json_is_number(e) || !isfinite(d)) {
            size_t m2 = spec_ptr_push_index(c, i);
            spec_err(c, "must be a finite number");
            spec_ptr_pop(c, m2);
            rc = BASIN_EINVAL;
        }
        exp->given_params[i] = d;
    }
    spec_ptr_pop(c, mark);
    exp->train.init.given = exp->given_params;
    exp->train.init.given_len = n;
    return rc;
}

int spec_init_parse_at(struct spec_ctx *c, const json_t *v, struct spec_experiment *exp)
{
    static const char *const fan_keys[] = {"kind", "bias", NULL};
    static const char *const normal_keys[] = {"kind", "std", NULL};
    static const char *const uniform_keys[] = {"kind", "a", NULL};
    static const char *const given_keys[] = {"kind", "params", NULL};
    static const char *const any_keys[] = {"kind", "bias", "std", "a", "params", NULL};
    basin_init *init = &exp->train.init;
    size_t k = 0;
    int rc = BASIN_OK;
    memset(init, 0, sizeof *init);
    init->kind = BASIN_INIT_HE_NORMAL;
    init->std = 0.1;
    init->a = 0.1;
    if (v == NULL)
        return BASIN_OK;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    if (spec_get_enum(c, v, "kind", 0, init_names, N_INITS, 0, &k) != BASIN_OK) {
        spec_check_keys(c, v, any_keys, "an init");
        return BASIN_EINVAL;
    }
    init->kind = init_kinds[k];
    char what[32];
    snprintf(what, sizeof what, "init %s", init_names[k]);
    switch (init->kind) {
    case BASIN_INIT_NORMAL:
        rc |= spec_check_keys(c, v, normal_keys, what);
        rc |= spec_get_num(c, v, "std", 0, SPEC_NUM_POSITIVE, 0.1, &init->std);
        break;
    case BASIN_INIT_UNIFORM:
        rc |= spec_check_keys(c, v, uniform_keys, what);
        rc |= spec_get_num(c, v, "a", 0, SPEC_NUM_POSITIVE, 0.1, &init->a);
        break;
    case BASIN_INIT_GIVEN:
        rc |= spec_check_keys(c, v, given_keys, what);
        rc |= parse_given(c, v, exp);
        break;
    default:
        rc |= spec_check_keys(c, v, fan_keys, what);
        rc |= spec_get_num(c, v, "bias", 0, SPEC_NUM_FINITE, 0.0, &init->bias);
        break;
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

json_t *spec_init_to_json(const basin_init *init)
{
    json_t *o = json_object();
    int ok = o != NULL;
    const char *name = "he";
    for (size_t i = 0; i < N_INITS; i++)
        if (init_kinds[i] == init->kind)
            name = init_names[i];
    spec_set(o, "kind", json_string(name), &ok);
    switch (init->kind) {
    case BASIN_INIT_NORMAL:
        spec_set(o, "std", json_real(init->std), &ok);
        break;
    case BASIN_INIT_UNIFORM:
        spec_set(o, "a", json_real(init->a), &ok);
        break;
    case BASIN_INIT_GIVEN: {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && ok && i < init->given_len; i++)
            spec_append(arr, json_real(init->given[i]), &ok);
        spec_set(o, "params", arr, &ok);
        break;
    }
    default:
        spec_set(o, "bias", json_real(init->bias), &ok);
        break;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- stopping rules ---- */

static int parse_plateau(struct spec_ctx *c, const json_t *v, size_t max_steps, basin_train_spec *t)
{
    static const char *const keys[] = {"tol", "window", NULL};
    int rc = BASIN_OK;
    t->plateau_tol = 0;
    t->plateau_window = 0;
    if (v == NULL || json_is_null(v))
        return BASIN_OK;
    size_t mark = spec_ptr_push(c, "plateau");
    if (!json_is_object(v)) {
        spec_err(c, "must be an object {\"tol\", \"window\"} or null");
        rc = BASIN_EINVAL;
    } else {
        rc |= spec_check_keys(c, v, keys, "plateau");
        rc |= spec_get_num(c, v, "tol", 1, SPEC_NUM_POSITIVE, 0, &t->plateau_tol);
        rc |= spec_get_size(c, v, "window", 1, 1, max_steps, 0, &t->plateau_window);
    }
    spec_ptr_pop(c, mark);
    return rc ? BASIN_EINVAL : BASIN_OK;
}

/* A number with rule `rule`, or null (→ off_value); absent → dflt. */
static int get_num_or_null(struct spec_ctx *c, const json_t *obj, const char *key,
                           enum spec_num_rule rule, double dflt, double off_value, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (v != NULL && json_is_null(v)) {
        *out = off_value;
        return BASIN_OK;
    }
    return spec_get_num(c, obj, key, 0, rule, dflt, out);
}

int spec_stop_parse_at(struct spec_ctx *c, const json_t *v, size_t max_steps, basin_train_spec *t)
{
    static const char *const keys[] = {"grad_tol", "risk_tol", "plateau", "diverge_factor", NULL};
    int rc = BASIN_OK;
    t->grad_tol = 1e-8;
    t->risk_tol = -1;
    t->plateau_tol = 0;
    t->plateau_window = 0;
    t->diverge_factor = 1e6;
    if (v == NULL)
        return BASIN_OK;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    rc |= spec_check_keys(c, v, keys, NULL);
    rc |= spec_get_num(c, v, "grad_tol", 0, SPEC_NUM_NONNEG, 1e-8, &t->grad_tol);
    rc |= get_num_or_null(c, v, "risk_tol", SPEC_NUM_NONNEG, -1, -1, &t->risk_tol);
    rc |= parse_plateau(c, json_object_get(v, "plateau"), max_steps, t);
    /* The trainer needs a factor ≥ 1 so that the initial risk itself never counts as exploding. */
    json_t *df = json_object_get(v, "diverge_factor");
    if (df != NULL && !json_is_null(df) &&
        (!json_is_number(df) || !isfinite(json_number_value(df)) || json_number_value(df) < 1)) {
        spec_err_at(c, "diverge_factor", "must be a number ≥ 1 (or null: only non-finite values)");
        rc = BASIN_EINVAL;
    } else {
        rc |=
            get_num_or_null(c, v, "diverge_factor", SPEC_NUM_POSITIVE, 1e6, 0, &t->diverge_factor);
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

json_t *spec_stop_to_json(const basin_train_spec *t)
{
    json_t *o = json_object();
    int ok = o != NULL;
    spec_set(o, "grad_tol", json_real(t->grad_tol), &ok);
    spec_set(o, "risk_tol", t->risk_tol >= 0 ? json_real(t->risk_tol) : json_null(), &ok);
    if (t->plateau_window > 0)
        spec_set(
            o, "plateau",
            json_pack("{s:f, s:I}", "tol", t->plateau_tol, "window", (json_int_t)t->plateau_window),
            &ok);
    else
        spec_set(o, "plateau", json_null(), &ok);
    spec_set(o, "diverge_factor",
             t->diverge_factor > 0 ? json_real(t->diverge_factor) : json_null(), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
