/* Cross-checks libbasin against an independent implementation: fixtures computed by PyTorch
 * (tests/reference/make_fixtures.py, see tests/reference/README.md) for dense, conv and
 * teacher–student networks, every loss, and the optimizers.
 *
 * Each network case is rebuilt from the API's layer JSON (translated here directly into
 * basin_layer_spec, independently of the server's parser) and must reproduce PyTorch's forward
 * outputs, risk, gradient and Hessian-vector product; each optimizer case must reproduce
 * torch.optim's iterates for 5 full-batch steps. The measure is the norm-wise relative error
 * ‖a−b‖/max(‖b‖,1e-300), except that a reference that is exactly 0 accepts differences up to
 * ABS_FLOOR, and must not exceed TOL. A family test reports its worst case per quantity and lists
 * every failing case by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/optim.h"
#include "basin/status.h"

#define TOL 1e-10
#define ABS_FLOOR 1e-14
#define MAX_FAILURES_SHOWN 40

/* ---------------------------------------------------------------- JSON helpers -------------- */

static json_t *load_family(const char *family)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", BASINLAB_FIXTURE_DIR, family);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        print_error("cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
    assert_non_null(root);
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    assert_true(json_array_size(cases) > 0);
    return root;
}

/* Number of leaves of a (possibly nested) array of numbers. */
static size_t count_numbers(const json_t *a)
{
    if (json_is_number(a))
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        n += count_numbers(json_array_get(a, i));
    return n;
}

static void fill_numbers(const json_t *a, double *out, size_t *pos)
{
    if (json_is_number(a)) {
        out[(*pos)++] = json_number_value(a);
        return;
    }
    assert_true(json_is_array(a));
    for (size_t i = 0; i < json_array_size(a); i++)
        fill_numbers(json_array_get(a, i), out, pos);
}

/* The numbers of c[key], flattened row-major, in a fresh array; *n gets their count. */
static double *get_numbers(const json_t *c, const char *key, size_t *n)
{
    const json_t *a = json_object_get(c, key);
    if (!a)
        print_error("fixture has no \"%s\"\n", key);
    assert_non_null(a);
    *n = count_numbers(a);
    double *out = calloc(*n ? *n : 1, sizeof *out);
    assert_non_null(out);
    size_t pos = 0;
    fill_numbers(a, out, &pos);
    assert_int_equal(pos, *n);
    return out;
}

static size_t get_size(const json_t *o, const char *key, size_t dflt)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return dflt;
    assert_true(json_is_integer(v) && json_integer_value(v) >= 0);
    return (size_t)json_integer_value(v);
}

static double get_double(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return dflt;
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *get_string(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        print_error("missing string \"%s\"\n", key);
    assert_non_null(s);
    return s;
}

/* ---------------------------------------------------------------- spec translation ---------- */

/* Fills one layer spec from the API's layer JSON; 0 on success, -1 for an unknown layer. */
static int layer_from_json(const json_t *l, basin_layer_spec *s)
{
    memset(s, 0, sizeof *s);
    const char *type = get_string(l, "type");
    const json_t *bias = json_object_get(l, "bias");
    s->bias = bias ? json_is_true(bias) : 1;
    if (strcmp(type, "dense") == 0) {
        s->kind = BASIN_LAYER_DENSE;
        s->units = get_size(l, "units", 0);
    } else if (strcmp(type, "conv2d") == 0) {
        s->kind = BASIN_LAYER_CONV2D;
        s->filters = get_size(l, "filters", 0);
        s->kernel = get_size(l, "kernel", 0);
        s->stride = get_size(l, "stride", 1);
        const json_t *p = json_object_get(l, "padding");
        if (!p || (json_is_string(p) && strcmp(json_string_value(p), "valid") == 0)) {
            s->padding = BASIN_PAD_VALID;
        } else if (json_is_string(p) && strcmp(json_string_value(p), "same") == 0) {
            s->padding = BASIN_PAD_SAME;
        } else {
            assert_true(json_is_integer(p));
            s->padding = BASIN_PAD_EXPLICIT;
            s->pad = (size_t)json_integer_value(p);
        }
    } else if (strcmp(type, "avgpool") == 0 || strcmp(type, "maxpool") == 0) {
        s->kind = type[0] == 'a' ? BASIN_LAYER_AVGPOOL : BASIN_LAYER_MAXPOOL;
        s->size = get_size(l, "size", 0);
    } else if (strcmp(type, "flatten") == 0) {
        s->kind = BASIN_LAYER_FLATTEN;
    } else if (strcmp(type, "sum") == 0) {
        s->kind = BASIN_LAYER_SUM;
    } else if (strcmp(type, "activation") == 0) {
        s->kind = BASIN_LAYER_ACTIVATION;
        const char *kind = get_string(l, "kind");
        if (strcmp(kind, "relu") == 0) {
            s->act = BASIN_ACT_RELU;
        } else if (strcmp(kind, "leaky_relu") == 0) {
            s->act = BASIN_ACT_LEAKY_RELU;
            s->slope = get_double(l, "slope", NAN);
        } else if (strcmp(kind, "pwl") == 0) {
            s->act = BASIN_ACT_PWL;
            s->s_neg = get_double(l, "s_neg", NAN);
            s->s_pos = get_double(l, "s_pos", NAN);
        } else if (strcmp(kind, "identity") == 0) {
            s->act = BASIN_ACT_IDENTITY;
        } else {
            return -1;
        }
    } else {
        return -1;
    }
    return 0;
}

static void loss_from_json(const json_t *c, basin_loss *loss)
{
    const json_t *l = json_object_get(c, "loss");
    assert_int_equal(basin_loss_from_name(get_string(l, "kind"), &loss->kind), BASIN_OK);
    loss->huber_delta = get_double(l, "delta", 1.0);
}

/* A case's network, loss and data, ready for libbasin. */
typedef struct ref_case {
    const char *name;
    basin_layer_spec *specs;
    basin_net *net;
    basin_loss loss;
    basin_dataset ds; /* x and y point into the arrays below */
    double *x, *y, *params;
    size_t n_params;
} ref_case;

static void ref_case_release(ref_case *rc)
{
    basin_net_free(rc->net);
    free(rc->specs);
    free(rc->x);
    free(rc->y);
    free(rc->params);
    memset(rc, 0, sizeof *rc);
}

/* Builds the net and data of case c; on a failure it prints why and returns -1. The layout
 * checks (param_count, in_dim) run here so that a mismatch fails loudly for every family. */
static int ref_case_load(const json_t *c, ref_case *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->name = get_string(c, "name");
    const json_t *shape = json_object_get(c, "input_shape");
    const json_t *layers = json_object_get(c, "layers");
    assert_true(json_is_array(shape) && json_is_array(layers));
    basin_arch arch = {0};
    arch.in_rank = json_array_size(shape);
    assert_true(arch.in_rank == 1 || arch.in_rank == 3);
    size_t in_dim = 1;
    for (size_t i = 0; i < arch.in_rank; i++) {
        arch.in_shape[i] = (size_t)json_integer_value(json_array_get(shape, i));
        in_dim *= arch.in_shape[i];
    }
    arch.n_layers = json_array_size(layers);
    rc->specs = calloc(arch.n_layers, sizeof *rc->specs);
    assert_non_null(rc->specs);
    for (size_t i = 0; i < arch.n_layers; i++) {
        if (layer_from_json(json_array_get(layers, i), &rc->specs[i]) != 0) {
            print_error("%s: layer %zu: unknown type/kind in fixture\n", rc->name, i);
            return -1;
        }
    }
    arch.layers = rc->specs;
    loss_from_json(c, &rc->loss);

    basin_net_error err = {0};
    int rc_create = basin_net_create(&arch, &rc->net, &err);
    if (rc_create != BASIN_OK) {
        print_error("%s: basin_net_create: %s (layer %ld, field \"%s\": %s)\n", rc->name,
                    basin_strerror(rc_create), err.layer, err.field, err.message);
        return -1;
    }
    size_t out_dim = basin_net_out_dim(rc->net);
    if (basin_loss_check(&rc->loss, out_dim) != BASIN_OK) {
        print_error("%s: loss rejected for out_dim %zu\n", rc->name, out_dim);
        return -1;
    }

    size_t nx, ny;
    rc->params = get_numbers(c, "params", &rc->n_params);
    rc->x = get_numbers(c, "x", &nx);
    rc->y = get_numbers(c, "y", &ny);
    size_t count = basin_net_param_count(rc->net);
    if (count != rc->n_params || count != get_size(c, "param_count", 0)) {
        print_error("%s: LAYOUT MISMATCH: basin_net_param_count = %zu, torch has %zu params\n",
                    rc->name, count, rc->n_params);
        return -1;
    }
    if (basin_net_in_dim(rc->net) != in_dim || nx % in_dim != 0) {
        print_error("%s: in_dim %zu, fixture input %zu values\n", rc->name,
                    basin_net_in_dim(rc->net), in_dim);
        return -1;
    }
    size_t m = nx / in_dim;
    size_t y_dim = basin_loss_target_dim(&rc->loss, out_dim);
    if (ny != m * y_dim) {
        print_error("%s: %zu targets for %zu samples of %zu\n", rc->name, ny, m, y_dim);
        return -1;
    }
    basin_dataset *ds = &rc->ds;
    ds->n = m;
    ds->in_rank = arch.in_rank;
    memcpy(ds->in_shape, arch.in_shape, sizeof ds->in_shape);
    ds->in_dim = in_dim;
    ds->y_dim = y_dim;
    ds->x = rc->x;
    ds->y = rc->y;
    switch (rc->loss.kind) {
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_HINGE:
        ds->task = BASIN_TASK_BINARY;
        ds->n_classes = 2;
        break;
    case BASIN_LOSS_CROSS_ENTROPY:
        ds->task = BASIN_TASK_MULTICLASS;
        ds->n_classes = out_dim;
        break;
    default:
        ds->task = BASIN_TASK_REGRESSION;
        ds->n_classes = 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- error bookkeeping --------- */

static double rel_err(const double *a, const double *b, size_t n)
{
    double nd = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        nd += (a[i] - b[i]) * (a[i] - b[i]);
        nb += b[i] * b[i];
    }
    nd = sqrt(nd);
    nb = sqrt(nb);
    if (isnan(nd)) /* NaN in a: always a failure */
        return INFINITY;
    if (nb == 0.0 && nd <= ABS_FLOOR)
        return 0.0;
    return nd / fmax(nb, 1e-300);
}

enum { Q_OUTPUTS, Q_RISK, Q_GRAD, Q_HVP, Q_THETA, Q_COUNT };
static const char *const quantity_names[Q_COUNT] = {"outputs", "risk", "grad", "hvp", "theta"};

typedef struct tally {
    double worst[Q_COUNT];
    char worst_case[Q_COUNT][128];
    int failures; /* comparisons above TOL + cases that could not be built */
    int compared;
} tally;

static void tally_add(tally *t, int q, const char *name, const char *detail, double err)
{
    t->compared++;
    if (t->worst_case[q][0] == 0 || err > t->worst[q]) {
        t->worst[q] = err;
        snprintf(t->worst_case[q], sizeof t->worst_case[q], "%s%s", name, detail);
    }
    if (!(err <= TOL)) {
        if (t->failures++ < MAX_FAILURES_SHOWN)
            print_error("MISMATCH %-36s %-7s%s relative error %.3e (tol %.0e)\n", name,
                        quantity_names[q], detail, err, TOL);
    }
}

static void tally_report(const tally *t, const char *family)
{
    print_message("[%s] %d comparisons\n", family, t->compared);
    for (int q = 0; q < Q_COUNT; q++)
        if (t->worst_case[q][0])
            print_message("[%s]   worst %-7s %.3e  (%s)\n", family, quantity_names[q], t->worst[q],
                          t->worst_case[q]);
    if (t->failures)
        print_error("[%s] %d failures\n", family, t->failures);
    assert_true(t->compared > 0);
    assert_int_equal(t->failures, 0);
}

/* ---------------------------------------------------------------- network families ---------- */

/* Outputs, risk, grad and hvp of one case with a workspace of max_batch samples; idx (or NULL)
 * selects the samples in a different order, which must not change the mean. */
static void compare_net(tally *t, ref_case *rc, const json_t *c, size_t max_batch,
                        const size_t *idx, const char *detail)
{
    size_t m = rc->ds.n, out_dim = basin_net_out_dim(rc->net), P = rc->n_params;
    size_t n_out, n_grad, n_hvp, n_v;
    double *ref_out = get_numbers(c, "outputs", &n_out);
    double *ref_grad = get_numbers(c, "grad", &n_grad);
    double *ref_hvp = get_numbers(c, "hvp", &n_hvp);
    double *v = get_numbers(c, "v", &n_v);
    double ref_risk = get_double(c, "risk", NAN);
    assert_int_equal(n_out, m * out_dim);
    assert_int_equal(n_grad, P);
    assert_int_equal(n_hvp, P);
    assert_int_equal(n_v, P);
    double *out = calloc(m * out_dim, sizeof *out);
    double *grad = calloc(P ? P : 1, sizeof *grad);
    double *hv = calloc(P ? P : 1, sizeof *hv);
    assert_true(out && grad && hv);

    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(rc->net, max_batch, &ws), BASIN_OK);
    int r = basin_net_forward(rc->net, ws, rc->params, rc->x, m, out);
    if (r != BASIN_OK) {
        print_error("%s: basin_net_forward: %s\n", rc->name, basin_strerror(r));
        t->failures++;
    } else if (!idx) {
        tally_add(t, Q_OUTPUTS, rc->name, detail, rel_err(out, ref_out, m * out_dim));
    }
    double risk = NAN;
    r = basin_net_risk_grad(rc->net, ws, rc->params, &rc->ds, idx, m, &rc->loss, &risk, grad);
    if (r != BASIN_OK) {
        print_error("%s: basin_net_risk_grad: %s\n", rc->name, basin_strerror(r));
        t->failures++;
    } else {
        tally_add(t, Q_RISK, rc->name, detail, rel_err(&risk, &ref_risk, 1));
        tally_add(t, Q_GRAD, rc->name, detail, rel_err(grad, ref_grad, P));
    }
    r = basin_net_hvp(rc->net, ws, rc->params, &rc->ds, idx, m, &rc->loss, v, hv);
    if (r != BASIN_OK) {
        print_error("%s: basin_net_hvp: %s\n", rc->name, basin_strerror(r));
        t->failures++;
    } else {
        tally_add(t, Q_HVP, rc->name, detail, rel_err(hv, ref_hvp, P));
    }
    basin_net_ws_free(ws);
    free(out);
    free(grad);
    free(hv);
    free(ref_out);
    free(ref_grad);
    free(ref_hvp);
    free(v);
}

static void run_net_family(const char *family)
{
    json_t *root = load_family(family);
    json_t *cases = json_object_get(root, "cases");
    tally t = {0};
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        ref_case rc;
        if (ref_case_load(c, &rc) != 0) {
            t.failures++;
            ref_case_release(&rc);
            continue;
        }
        size_t m = rc.ds.n;
        size_t *rev = calloc(m, sizeof *rev);
        assert_non_null(rev);
        for (size_t k = 0; k < m; k++)
            rev[k] = m - 1 - k;
        compare_net(&t, &rc, c, m, NULL, "");
        /* Chunked evaluation (a workspace smaller than the batch) must give the same numbers. */
        if (m > 2)
            compare_net(&t, &rc, c, 2, NULL, " [chunks of 2]");
        compare_net(&t, &rc, c, m, rev, " [reversed idx]");
        free(rev);
        ref_case_release(&rc);
    }
    tally_report(&t, family);
    json_decref(root);
}

static void test_dense(void **state)
{
    (void)state;
    run_net_family("dense");
}

static void test_losses(void **state)
{
    (void)state;
    run_net_family("losses");
}

static void test_conv(void **state)
{
    (void)state;
    run_net_family("conv");
}

static void test_teacher_student(void **state)
{
    (void)state;
    run_net_family("teacher_student");
}

/* ---------------------------------------------------------------- optimizer family ---------- */

static void optim_spec_from_json(const json_t *o, basin_optim_spec *spec)
{
    const char *kind = get_string(o, "kind");
    basin_optim_kind k = BASIN_OPT_GD;
    if (strcmp(kind, "gd") == 0)
        k = BASIN_OPT_GD;
    else if (strcmp(kind, "momentum") == 0)
        k = BASIN_OPT_MOMENTUM;
    else if (strcmp(kind, "nesterov") == 0)
        k = BASIN_OPT_NESTEROV;
    else if (strcmp(kind, "adam") == 0)
        k = BASIN_OPT_ADAM;
    else
        fail_msg("unknown optimizer kind %s", kind);
    basin_optim_defaults(k, get_double(o, "lr", NAN), spec);
    spec->batch = 0;
    spec->momentum = get_double(o, "momentum", spec->momentum);
    spec->beta1 = get_double(o, "beta1", spec->beta1);
    spec->beta2 = get_double(o, "beta2", spec->beta2);
    spec->eps = get_double(o, "eps", spec->eps);
    const json_t *sched = json_object_get(o, "schedule");
    if (sched) {
        assert_string_equal(get_string(sched, "kind"), "step");
        spec->schedule = BASIN_SCHEDULE_STEP;
        spec->step_every = get_size(sched, "step_every", 0);
        spec->gamma = get_double(sched, "gamma", NAN);
    }
    assert_int_equal(basin_optim_check(spec), BASIN_OK);
}

/* Replays one torch.optim trajectory: gradient from basin_net_risk_grad at the current θ, then
 * basin_optim_step; θ after every step and the risk before it are compared. */
static void replay_trajectory(tally *t, ref_case *rc, const json_t *o, size_t steps)
{
    char label[128];
    snprintf(label, sizeof label, "%s/%s", rc->name, get_string(o, "name"));
    basin_optim_spec spec;
    optim_spec_from_json(o, &spec);
    size_t n_thetas, n_risks, P = rc->n_params, m = rc->ds.n;
    double *ref_thetas = get_numbers(o, "thetas", &n_thetas);
    double *ref_risks = get_numbers(o, "risks", &n_risks);
    assert_int_equal(n_thetas, steps * P);
    assert_int_equal(n_risks, steps);
    double *theta = malloc(P * sizeof *theta);
    double *grad = malloc(P * sizeof *grad);
    assert_true(theta && grad);
    memcpy(theta, rc->params, P * sizeof *theta);
    basin_optim_state st;
    assert_int_equal(basin_optim_state_init(&st, &spec, P), BASIN_OK);
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(rc->net, m, &ws), BASIN_OK);
    for (size_t s = 0; s < steps; s++) {
        char detail[32];
        snprintf(detail, sizeof detail, " step %zu", s + 1);
        double risk = NAN;
        int r = basin_net_risk_grad(rc->net, ws, theta, &rc->ds, NULL, m, &rc->loss, &risk, grad);
        if (r != BASIN_OK) {
            print_error("%s: basin_net_risk_grad: %s\n", label, basin_strerror(r));
            t->failures++;
            break;
        }
        tally_add(t, Q_RISK, label, detail, rel_err(&risk, &ref_risks[s], 1));
        basin_optim_step(&st, theta, grad);
        tally_add(t, Q_THETA, label, detail, rel_err(theta, &ref_thetas[s * P], P));
    }
    basin_net_ws_free(ws);
    basin_optim_state_release(&st);
    free(theta);
    free(grad);
    free(ref_thetas);
    free(ref_risks);
}

static void test_optim(void **state)
{
    (void)state;
    json_t *root = load_family("optim");
    json_t *cases = json_object_get(root, "cases");
    tally t = {0};
    int saw_step_schedule = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        ref_case rc;
        if (ref_case_load(c, &rc) != 0) {
            t.failures++;
            ref_case_release(&rc);
            continue;
        }
        size_t steps = get_size(c, "steps", 0);
        assert_true(steps > 0);
        const json_t *opts = json_object_get(c, "optimizers");
        assert_true(json_array_size(opts) >= 5);
        for (size_t k = 0; k < json_array_size(opts); k++) {
            const json_t *o = json_array_get(opts, k);
            saw_step_schedule |= json_object_get(o, "schedule") != NULL;
            replay_trajectory(&t, &rc, o, steps);
        }
        ref_case_release(&rc);
    }
    assert_true(saw_step_schedule);
    tally_report(&t, "optim");
    json_decref(root);
}

/* StepLR(step_size=2, gamma=0.5) from lr 0.1: 0.1, 0.1, 0.05, 0.05, 0.025 (by hand). */
static void test_step_schedule_lr(void **state)
{
    (void)state;
    basin_optim_spec spec;
    basin_optim_defaults(BASIN_OPT_GD, 0.1, &spec);
    spec.schedule = BASIN_SCHEDULE_STEP;
    spec.step_every = 2;
    spec.gamma = 0.5;
    const double expect[5] = {0.1, 0.1, 0.05, 0.05, 0.025};
    for (size_t t = 0; t < 5; t++)
        assert_true(fabs(basin_optim_lr(&spec, t) - expect[t]) <= 1e-15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense), cmocka_unit_test(test_losses),
        cmocka_unit_test(test_conv),  cmocka_unit_test(test_teacher_student),
        cmocka_unit_test(test_optim), cmocka_unit_test(test_step_schedule_lr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
