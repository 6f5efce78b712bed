/* Tests of the verdicts a run gets (issue 4): the "certify" section of the experiment spec
 * (spec_certify.c: defaults, canonical form, strict errors with exact JSON Pointers), the worker
 * path (run_exec.c → verdict.c → basin_certify, stored with store_run_finish in a real SQLite
 * store) and the closed-form teacher_gaussian verdict (verdict.c).
 *
 * References are independent of the code under test: stored end points are re-evaluated with
 * basin_net_risk_grad / basin_teacher_risk_grad; the teacher's curvature is checked against the
 * eigenvalues (LAPACK dsyev, called here) of a central-difference Hessian of the gradient; a
 * claimed descent direction is checked by evaluating F along it; default values are the
 * documented constants typed here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "basin/net.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "spec.h"
#include "store.h"
#include "verdict.h"
#include "worker.h"

/* ---- fixture: a SQLite store in a temporary directory ---- */

struct fx {
    char dir[64];
    char path[96];
    struct store *store;
    struct app app;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[256] = "";
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/basinlab_verdicts_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    if (store_open(f->path, NULL, &f->store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (app_init(&f->app) != BASIN_OK)
        return -1;
    f->app.store = f->store;
    limits_defaults(&f->app.limits);
    openblas_set_num_threads(1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[128];
    f->app.store = NULL;
    store_close(f->store);
    app_destroy(&f->app);
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void quiet_log(void *user, const char *msg)
{
    (void)user;
    fprintf(stderr, "  [worker log] %s\n", msg);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- specs ---- */

/* 12 points of sin(3x) on [-1, 1]: no line fits them (linear-fit risk > 0), and a 1-4-1 ReLU
 * net has many distinct minima on them. */
#define SINE12                                                                                     \
    "{\"kind\": \"inline\", \"x\": [[-1.0], [-0.818182], [-0.636364], [-0.454545], [-0.272727], "  \
    "[-0.090909], [0.090909], [0.272727], [0.454545], [0.636364], [0.818182], [1.0]], \"y\": "     \
    "[-0.14112, -0.634257, -0.943322, -0.978619, -0.729904, -0.269359, 0.269359, 0.729904, "       \
    "0.978619, 0.943322, 0.634257, 0.14112]}"
#define RELU_141                                                                                   \
    "{\"layers\": [{\"type\": \"dense\", \"units\": 4}, {\"type\": \"activation\", \"kind\": "     \
    "\"relu\"}, {\"type\": \"dense\", \"units\": 1}]}"

static char *sine_spec(int restarts, const char *certify)
{
    char *buf = malloc(4096);
    assert_non_null(buf);
    snprintf(buf, 4096,
             "{\"dataset\": " SINE12 ", \"architecture\": " RELU_141 ", \"optimizer\": {\"kind\": "
             "\"gd\", \"lr\": 0.05}, \"restarts\": %d, \"seed\": 11, \"max_steps\": 4000, "
             "\"stop\": {\"grad_tol\": 1e-9}, \"trajectory_every\": 500%s%s}",
             restarts, certify ? ", \"certify\": " : "", certify ? certify : "");
    return buf;
}

static struct spec_experiment *parse(const char *text)
{
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    int rc = spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "spec error %s: %s\n", errs.items[i].pointer, errs.items[i].message);
    spec_errors_clear(&errs);
    assert_int_equal(rc, BASIN_OK);
    return exp;
}

static json_t *shape_json(size_t rank, const size_t *shape)
{
    json_t *a = json_array();
    for (size_t i = 0; i < rank; i++)
        json_array_append_new(a, json_integer((json_int_t)shape[i]));
    return a;
}

/* Store the inline dataset and architecture as records and the canonical spec naming them as
 * an experiment, as the POST /v1/experiments handler does. */
static void submit(struct fx *f, struct spec_experiment *exp, char id[STORE_ID_SIZE])
{
    char ds_id[STORE_ID_SIZE], ar_id[STORE_ID_SIZE];
    struct store_dataset d;
    struct store_architecture a;
    struct store_experiment_new e;
    const struct spec_dataset *sd = exp->dataset;
    int existed = -1;

    memset(&d, 0, sizeof d);
    d.spec = spec_dataset_to_json(sd);
    assert_non_null(d.spec);
    d.kind = strdup(json_string_value(json_object_get(d.spec, "kind")));
    d.input_shape = shape_json(sd->in_rank, sd->in_shape);
    if (sd->data != NULL) {
        d.n = (int64_t)sd->data->n;
        d.in_dim = (int64_t)sd->data->in_dim;
        d.y_dim = (int64_t)sd->data->y_dim;
        d.task = strdup(spec_task_name(sd->data->task));
        d.n_classes = (int64_t)sd->data->n_classes;
        d.x = sd->data->x;
        d.y = sd->data->y;
    } else {
        d.in_dim = (int64_t)sd->tg.d;
        d.y_dim = 1;
        d.task = strdup("regression");
    }
    assert_int_equal(store_dataset_insert(f->store, &d, ds_id), STORE_OK);
    free(d.kind);
    free(d.task);
    json_decref(d.input_shape);
    json_decref(d.spec);

    memset(&a, 0, sizeof a);
    a.spec = spec_arch_to_json(exp->arch);
    a.param_count = (int64_t)basin_net_param_count(exp->arch->net);
    a.out_dim = (int64_t)basin_net_out_dim(exp->arch->net);
    assert_int_equal(store_architecture_insert(f->store, &a, ar_id), STORE_OK);
    json_decref(a.spec);

    struct spec_dataset *keep_ds = exp->dataset;
    struct spec_arch *keep_arch = exp->arch;
    exp->dataset = NULL;
    exp->arch = NULL;
    exp->dataset_id = ds_id;
    exp->architecture_id = ar_id;
    json_t *canon = spec_experiment_to_json(exp);
    exp->dataset_id = NULL;
    exp->architecture_id = NULL;
    exp->dataset = keep_ds;
    exp->arch = keep_arch;
    assert_non_null(canon);
    memset(&e, 0, sizeof e);
    e.dataset_id = ds_id;
    e.architecture_id = ar_id;
    e.spec = canon;
    e.restarts = (int64_t)exp->restarts;
    e.seed = exp->train.seed;
    assert_int_equal(store_experiment_create(f->store, &e, id, &existed), STORE_OK);
    json_decref(canon);
}

/* Train and judge every run of `text` with a pool of two workers; the finished run list. */
static struct store_run_list *run_experiment(struct fx *f, struct spec_experiment *exp)
{
    char id[STORE_ID_SIZE];
    struct worker_pool *pool = NULL;
    struct worker_options o;
    memset(&o, 0, sizeof o);
    o.batch = 4;
    o.idle_poll_ms = 50;
    o.name = "vt";
    o.log = quiet_log;
    submit(f, exp, id);
    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);
    double t0 = now_s();
    enum store_exp_status st = STORE_EXP_QUEUED;
    while (now_s() - t0 < 60.0) {
        struct store_experiment *e = NULL;
        assert_int_equal(store_experiment_get(f->store, id, &e), STORE_OK);
        st = e->status;
        store_experiment_free(e);
        if (st == STORE_EXP_FINISHED)
            break;
        sleep_ms(20);
    }
    worker_pool_stop(pool);
    assert_int_equal(st, STORE_EXP_FINISHED);
    struct store_run_list *l = NULL;
    assert_int_equal(store_run_list(f->store, id, NULL, 1000, NULL, &l), STORE_OK);
    assert_int_equal(l->n, exp->restarts);
    return l;
}

static double jreal(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

/* The last trajectory point of a run (the point training ended at). */
static struct store_traj_point last_point(struct fx *f, const char *run_id)
{
    struct store_traj_point last;
    int64_t from = 0;
    int seen = 0;
    memset(&last, 0, sizeof last);
    while (from >= 0) {
        struct store_traj_point *pts = NULL;
        size_t got = 0;
        int64_t next = -1;
        assert_int_equal(
            store_trajectory_read(f->store, run_id, from, INT64_MAX, 1000, &pts, &got, &next),
            STORE_OK);
        if (got > 0) {
            last = pts[got - 1];
            seen = 1;
        }
        free(pts);
        from = next;
    }
    assert_true(seen);
    return last;
}

static int is_label(const char *s)
{
    return s != NULL && (strcmp(s, "certified_minimum") == 0 || strcmp(s, "likely_minimum") == 0 ||
                         strcmp(s, "saddle") == 0 || strcmp(s, "not_converged") == 0);
}

/* ---- the worker path ---- */

static void test_worker_verdicts(void **state)
{
    struct fx *f = *state;
    char *text = sine_spec(20, NULL);
    struct spec_experiment *exp = parse(text);
    const basin_dataset *ds = exp->dataset->data;
    basin_net_ws *ws = NULL;
    size_t dim = basin_net_param_count(exp->arch->net), certified = 0, moved = 0;
    assert_int_equal(basin_net_ws_create(exp->arch->net, ds->n, &ws), BASIN_OK);
    struct store_run_list *l = run_experiment(f, exp);

    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *run = &l->items[i];
        assert_int_equal(run->status, STORE_RUN_FINISHED);
        assert_null(run->error);
        /* every finished run has a verdict, with its label in both places */
        assert_non_null(run->verdict);
        assert_true(is_label(run->verdict_label));
        const json_t *v = run->verdict;
        assert_string_equal(json_string_value(json_object_get(v, "label")), run->verdict_label);
        assert_non_null(json_string_value(json_object_get(v, "decided_by")));
        assert_true(json_string_length(json_object_get(v, "reason")) > 0);
        /* the verdict's numbers are the run's */
        assert_true(jreal(v, "risk") == run->final_risk);
        assert_true(jreal(v, "grad_norm") == run->grad_norm);
        assert_true(jreal(v, "param_norm") == run->param_norm);
        assert_int_equal(json_integer_value(json_object_get(v, "dim")), (json_int_t)dim);
        if (strcmp(run->verdict_label, "certified_minimum") == 0) {
            certified++;
            assert_true(run->grad_norm <= 1e-9);
        }
        /* the stored end point reproduces final_risk (and its gradient norm) */
        double *params = NULL, risk = 0, g[13], g2 = 0;
        size_t n = 0;
        assert_int_equal(store_run_params_get(f->store, run->id, &params, &n), STORE_OK);
        assert_int_equal(n, dim);
        assert_int_equal(dim, 13);
        assert_int_equal(
            basin_net_risk_grad(exp->arch->net, ws, params, ds, NULL, ds->n, &exp->loss, &risk, g),
            BASIN_OK);
        for (size_t k = 0; k < dim; k++)
            g2 += g[k] * g[k];
        assert_true(fabs(risk - run->final_risk) <= 1e-12 * fmax(1.0, fabs(risk)));
        assert_true(fabs(sqrt(g2) - run->grad_norm) <= 1e-9 * fmax(1.0, run->grad_norm) + 1e-13);
        free(params);
        /* the training's own end stays in the polish block and in the trajectory */
        const json_t *p = json_object_get(v, "polish");
        assert_true(json_is_true(json_object_get(p, "ran")));
        struct store_traj_point last = last_point(f, run->id);
        assert_int_equal(last.step, run->steps);
        assert_true(fabs(jreal(p, "risk_before") - last.risk) <=
                    1e-12 * fmax(1.0, fabs(last.risk)));
        if (json_is_true(json_object_get(p, "accepted"))) {
            moved++;
            assert_true(fabs(jreal(p, "risk_after") - run->final_risk) <=
                        1e-14 * fmax(1.0, run->final_risk));
            assert_true(run->final_risk <= last.risk * (1 + 1e-12));
        } else {
            assert_true(fabs(run->final_risk - last.risk) <= 1e-12 * fmax(1.0, last.risk));
        }
    }
    /* GD stops at ‖∇R‖ ≈ 1e-9 or at 4000 steps on this data; the polish finishes the job and
     * every end point is then certified (the region or the exact one-hidden-layer test) */
    assert_true(certified >= 10);
    assert_true(moved >= 1);
    store_run_list_free(l);
    basin_net_ws_free(ws);
    spec_experiment_free(exp);
    free(text);
}

static void test_worker_certify_disabled(void **state)
{
    struct fx *f = *state;
    char *text = sine_spec(3, "{\"enabled\": false}");
    struct spec_experiment *exp = parse(text);
    assert_false(exp->certify_opts.enabled);
    struct store_run_list *l = run_experiment(f, exp);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *run = &l->items[i];
        assert_int_equal(run->status, STORE_RUN_FINISHED);
        assert_null(run->verdict);
        assert_null(run->verdict_label);
        assert_null(run->error);
        /* the end point is the trained one: the trajectory ends at the stored risk */
        struct store_traj_point last = last_point(f, run->id);
        assert_true(last.risk == run->final_risk);
        assert_true(last.grad_norm == run->grad_norm);
    }
    store_run_list_free(l);
    spec_experiment_free(exp);
    free(text);
}

/* teacher_gaussian through the worker: the closed-form verdict, stored like any other. */
static void test_worker_teacher(void **state)
{
    struct fx *f = *state;
    static const char text[] =
        "{\"dataset\": {\"kind\": \"teacher_gaussian\", \"k\": 2, \"d\": 2}, \"architecture\": "
        "{\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 2, \"bias\": false}, "
        "{\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"sum\"}]}, \"optimizer\": "
        "{\"kind\": \"gd\", \"lr\": 0.2}, \"init\": {\"kind\": \"normal\", \"std\": 0.8}, "
        "\"restarts\": 4, \"seed\": 2, \"max_steps\": 3000, \"stop\": {\"grad_tol\": 1e-7}}";
    struct spec_experiment *exp = parse(text);
    basin_teacher *t = NULL;
    assert_int_equal(basin_teacher_create_identity(2, 2, &t), BASIN_OK);
    struct store_run_list *l = run_experiment(f, exp);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *run = &l->items[i];
        assert_int_equal(run->status, STORE_RUN_FINISHED);
        assert_non_null(run->verdict);
        assert_true(is_label(run->verdict_label));
        const char *by = json_string_value(json_object_get(run->verdict, "decided_by"));
        assert_non_null(by);
        if (strcmp(run->verdict_label, "not_converged") == 0)
            assert_string_equal(by, "stationarity");
        else
            assert_string_equal(by, "closed_form_hessian");
        assert_non_null(json_object_get(run->verdict, "closed_form"));
        assert_true(jreal(run->verdict, "risk") == run->final_risk);
        double *params = NULL, F = 0, g[4];
        size_t n = 0;
        assert_int_equal(store_run_params_get(f->store, run->id, &params, &n), STORE_OK);
        assert_int_equal(n, 4);
        assert_int_equal(basin_teacher_risk_grad(t, 2, params, &F, g), BASIN_OK);
        assert_true(fabs(F - run->final_risk) <= 1e-13 * fmax(1.0, F));
        free(params);
    }
    store_run_list_free(l);
    basin_teacher_free(t);
    spec_experiment_free(exp);
}

/* ---- the spec ---- */

struct bad_case {
    const char *certify;
    const char *pointer;
    const char *message; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"3", "/certify", "must be an object"},
    {"{\"colour\": 1}", "/certify/colour", "unknown field"},
    {"{\"enabled\": 1}", "/certify/enabled", "true or false"},
    {"{\"polish\": \"yes\"}", "/certify/polish", "true or false"},
    {"{\"grad_tol\": -1}", "/certify/grad_tol", "≥ 0"},
    {"{\"grad_tol_rel\": \"x\"}", "/certify/grad_tol_rel", "≥ 0"},
    {"{\"cert_tol\": -1e-9}", "/certify/cert_tol", "≥ 0"},
    {"{\"curv_tol\": -0.5}", "/certify/curv_tol", "≥ 0"},
    {"{\"margin_tol\": null}", "/certify/margin_tol", "≥ 0"},
    {"{\"max_boundary_pairs\": 25}", "/certify/max_boundary_pairs", "24"},
    {"{\"max_boundary_pairs\": 2.5}", "/certify/max_boundary_pairs", ""},
    {"{\"probes\": 65}", "/certify/probes", "64"},
    {"{\"probes\": -1}", "/certify/probes", ""},
    {"{\"probe_radii\": []}", "/certify/probe_radii", "1 to 8"},
    {"{\"probe_radii\": [1,2,3,4,5,6,7,8,9]}", "/certify/probe_radii", "1 to 8"},
    {"{\"probe_radii\": 0.1}", "/certify/probe_radii", "1 to 8"},
    {"{\"probe_radii\": [0.1, -1]}", "/certify/probe_radii/1", "> 0"},
    {"{\"probe_radii\": [0, 0.1]}", "/certify/probe_radii/0", "> 0"},
    {"{\"radii\": [0.1, \"a\"]}", "/certify/radii/1", "> 0"},
    {"{\"radii\": [0.1], \"probe_radii\": [0.2]}", "/certify/radii", "once"},
    {"{\"probe_steps\": 5001}", "/certify/probe_steps", "5000"},
    {"{\"probe_lr\": -0.1}", "/certify/probe_lr", "≥ 0"},
    {"{\"lanczos_max_iter\": 1001}", "/certify/lanczos_max_iter", "1000"},
    {"{\"dense_max_params\": 2001}", "/certify/dense_max_params", "2000"},
    {"{\"polish_max_iter\": 5001}", "/certify/polish_max_iter", "5000"},
    {"{\"polish_grad_tol\": -1}", "/certify/polish_grad_tol", "≥ 0"},
    {"{\"group_sample_cap\": 100001}", "/certify/group_sample_cap", "100000"},
    {"{\"check_certified\": 0}", "/certify/check_certified", "true or false"},
    {"{\"seed\": -3}", "/certify/seed", "non-negative"},
    {"{\"spurious_tol\": -1e-6}", "/certify/spurious_tol", "≥ 0"},
    {"{\"global_tol\": \"big\"}", "/certify/global_tol", "≥ 0"},
};

static void test_bad_certify_specs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *bc = &bad_cases[i];
        char *text = sine_spec(2, bc->certify);
        struct spec_errors errs;
        struct spec_experiment *exp = NULL;
        spec_errors_init(&errs);
        int rc = spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs);
        if (rc != BASIN_EINVAL || errs.count != 1)
            fail_msg("certify %s: rc %d, %zu errors (want one)", bc->certify, rc, errs.count);
        assert_null(exp);
        if (strcmp(errs.items[0].pointer, bc->pointer) != 0 ||
            strstr(errs.items[0].message, bc->message) == NULL)
            fail_msg("certify %s: got %s: %s; want %s: ...%s...", bc->certify,
                     errs.items[0].pointer, errs.items[0].message, bc->pointer, bc->message);
        spec_errors_clear(&errs);
        free(text);
    }
    /* every error is reported, not only the first */
    char *text = sine_spec(2, "{\"probes\": 100, \"grad_tol\": -1, \"probe_radii\": [1, -1], "
                              "\"x\": 0}");
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs),
                     BASIN_EINVAL);
    assert_int_equal(errs.count, 4);
    const char *want[] = {"/certify/x", "/certify/grad_tol", "/certify/probes",
                          "/certify/probe_radii/1"};
    for (size_t w = 0; w < 4; w++) {
        int found = 0;
        for (size_t k = 0; k < errs.count; k++)
            found |= strcmp(errs.items[k].pointer, want[w]) == 0;
        if (!found)
            fail_msg("no error at %s", want[w]);
    }
    spec_errors_clear(&errs);
    free(text);
    /* the standalone parser reports at the same pointers */
    json_t *c = json_pack("{s:i}", "probes", 1000);
    struct spec_certify sc;
    spec_errors_init(&errs);
    assert_int_equal(spec_certify_parse(c, &sc, &errs), BASIN_EINVAL);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.items[0].pointer, "/certify/probes");
    spec_errors_clear(&errs);
    json_decref(c);
}

static char *canonical_text(const struct spec_experiment *exp)
{
    json_t *j = spec_experiment_to_json(exp);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void test_certify_canonical(void **state)
{
    (void)state;
    /* absent: the documented defaults, in the parsed options and in the canonical JSON */
    char *text = sine_spec(2, NULL);
    struct spec_experiment *exp = parse(text);
    const struct spec_certify *sc = &exp->certify_opts;
    assert_true(sc->enabled);
    assert_true(sc->opts.polish);
    assert_true(sc->opts.grad_tol == 1e-6 && sc->opts.grad_tol_rel == 0.0);
    assert_true(sc->opts.cert_tol == 1e-9 && sc->opts.curv_tol == 1e-6);
    assert_true(sc->opts.margin_tol == 1e-9);
    assert_int_equal(sc->opts.max_boundary_pairs, 16);
    assert_int_equal(sc->opts.probes, 8);
    assert_int_equal(sc->opts.n_radii, 3);
    assert_true(sc->opts.radii[0] == 1e-3 && sc->opts.radii[1] == 1e-2 &&
                sc->opts.radii[2] == 1e-1);
    assert_int_equal(sc->opts.probe_steps, 200);
    assert_true(sc->opts.probe_lr == 0.0);
    assert_int_equal(sc->opts.lanczos_max_iter, 0);
    assert_true(sc->spurious_tol == 1e-6 && sc->global_tol == 1e-3);
    json_t *j = spec_experiment_to_json(exp);
    json_t *c = json_object_get(j, "certify");
    assert_true(json_is_true(json_object_get(c, "enabled")));
    assert_true(json_is_true(json_object_get(c, "polish")));
    assert_int_equal(json_integer_value(json_object_get(c, "probes")), 8);
    assert_int_equal(json_array_size(json_object_get(c, "probe_radii")), 3);
    assert_true(json_real_value(json_object_get(c, "spurious_tol")) == 1e-6);
    assert_true(json_real_value(json_object_get(c, "global_tol")) == 1e-3);
    assert_null(json_object_get(c, "radii"));
    json_decref(j);
    spec_experiment_free(exp);
    free(text);

    /* given values survive, "radii" becomes "probe_radii", and the canonical form is a fixed
     * point of parse → serialise */
    text = sine_spec(2, "{\"enabled\": false, \"polish\": false, \"probes\": 3, \"radii\": [0.5, "
                        "0.05], \"grad_tol\": 1e-7, \"curv_tol\": 0, \"max_boundary_pairs\": 4, "
                        "\"lanczos_max_iter\": 30, \"seed\": 9, \"spurious_tol\": 0.01, "
                        "\"global_tol\": 0.2, \"check_certified\": true}");
    exp = parse(text);
    sc = &exp->certify_opts;
    assert_false(sc->enabled);
    assert_false(sc->opts.polish);
    assert_int_equal(sc->opts.probes, 3);
    assert_int_equal(sc->opts.n_radii, 2);
    assert_true(sc->opts.radii[0] == 0.5 && sc->opts.radii[1] == 0.05);
    assert_true(sc->opts.grad_tol == 1e-7 && sc->opts.curv_tol == 0.0);
    assert_int_equal(sc->opts.max_boundary_pairs, 4);
    assert_int_equal(sc->opts.lanczos_max_iter, 30);
    assert_int_equal(sc->opts.seed, 9);
    assert_true(sc->opts.check_certified);
    assert_true(sc->spurious_tol == 0.01 && sc->global_tol == 0.2);
    char *t1 = canonical_text(exp);
    j = spec_experiment_to_json(exp);
    c = json_object_get(j, "certify");
    assert_null(json_object_get(c, "radii"));
    assert_true(json_real_value(json_array_get(json_object_get(c, "probe_radii"), 1)) == 0.05);
    char *again = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct spec_experiment *exp2 = parse(again);
    char *t2 = canonical_text(exp2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    free(again);
    spec_experiment_free(exp2);
    spec_experiment_free(exp);
    free(text);
}

/* ---- the closed-form teacher verdict ---- */

static struct spec_experiment *teacher_exp(size_t n, const char *certify)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"dataset\": {\"kind\": \"teacher_gaussian\", \"k\": 2, \"d\": 2}, "
             "\"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", "
             "\"units\": %zu, \"bias\": false}, {\"type\": \"activation\", \"kind\": \"relu\"}, "
             "{\"type\": \"sum\"}]}%s%s}",
             n, certify ? ", \"certify\": " : "", certify ? certify : "");
    return parse(text);
}

static double teacher_F(const basin_teacher *t, size_t n, const double *W)
{
    double F = 0;
    assert_int_equal(basin_teacher_risk_grad(t, n, W, &F, NULL), BASIN_OK);
    return F;
}

/* The smallest eigenvalue (LAPACK) of the central-difference Hessian of ∇F, on the coordinates
 * of the rows listed in live (dim ≤ 8). */
static double fd_lambda_min(const basin_teacher *t, size_t n, const double *W, const int *live)
{
    size_t dim = n * t->d, m = 0, coord[8];
    double H[64], w[8], gp[8], gm[8], x[8], h = 1e-5;
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; live[i] && a < t->d; a++)
            coord[m++] = i * t->d + a;
    for (size_t a = 0; a < m; a++) {
        memcpy(x, W, dim * sizeof *x);
        x[coord[a]] += h;
        double F;
        assert_int_equal(basin_teacher_risk_grad(t, n, x, &F, gp), BASIN_OK);
        x[coord[a]] -= 2 * h;
        assert_int_equal(basin_teacher_risk_grad(t, n, x, &F, gm), BASIN_OK);
        for (size_t b = 0; b < m; b++)
            H[a * m + b] = (gp[coord[b]] - gm[coord[b]]) / (2 * h);
    }
    for (size_t a = 0; a < m; a++) /* symmetrise */
        for (size_t b = 0; b < a; b++)
            H[a * m + b] = H[b * m + a] = 0.5 * (H[a * m + b] + H[b * m + a]);
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)m, H, (lapack_int)m, w),
                     0);
    return w[0];
}

static void test_teacher_certified(void **state)
{
    (void)state;
    basin_teacher *t = NULL;
    assert_int_equal(basin_teacher_create_identity(2, 2, &t), BASIN_OK);
    struct spec_experiment *exp = teacher_exp(2, NULL);
    /* near the teacher (W = I, F = 0): the polish must carry it there */
    double W[4] = {1.003, -0.002, 0.001, 0.998}, W0[4];
    memcpy(W0, W, sizeof W);
    struct verdict_out v;
    assert_int_equal(verdict_judge(exp, t, W, &v), BASIN_OK);
    assert_true(v.judged);
    assert_string_equal(v.label, "certified_minimum");
    assert_string_equal(json_string_value(json_object_get(v.verdict, "decided_by")),
                        "closed_form_hessian");
    assert_true(v.moved);
    /* the returned point is the polished one: stationary, and its F is the verdict's */
    double g[4], F;
    assert_int_equal(basin_teacher_risk_grad(t, 2, W, &F, g), BASIN_OK);
    assert_true(F == v.risk);
    assert_true(sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2] + g[3] * g[3]) <= 1e-9);
    assert_true(F <= 1e-12);
    assert_true(memcmp(W, W0, sizeof W) != 0);
    const json_t *p = json_object_get(v.verdict, "polish");
    assert_true(fabs(jreal(p, "risk_before") - teacher_F(t, 2, W0)) <= 1e-15);
    /* curvature: all eigenvalues of the exact Hessian; λ_min against finite differences */
    const json_t *cv = json_object_get(v.verdict, "curvature");
    int live[2] = {1, 1};
    double lam = fd_lambda_min(t, 2, W, live);
    assert_true(lam > 1e-3);
    assert_true(fabs(jreal(cv, "lambda_min") - lam) <= 1e-6);
    assert_true(json_is_true(json_object_get(cv, "dense")));
    const json_t *cf = json_object_get(v.verdict, "closed_form");
    assert_true(json_is_true(json_object_get(cf, "realizable")));
    assert_true(json_is_false(json_object_get(cf, "not_global")));
    verdict_out_release(&v);

    /* without polish, the same start is judged as it is: not stationary */
    spec_experiment_free(exp);
    exp = teacher_exp(2, "{\"polish\": false}");
    memcpy(W, W0, sizeof W);
    assert_int_equal(verdict_judge(exp, t, W, &v), BASIN_OK);
    assert_string_equal(v.label, "not_converged");
    assert_string_equal(json_string_value(json_object_get(v.verdict, "decided_by")),
                        "stationarity");
    assert_false(v.moved);
    assert_memory_equal(W, W0, sizeof W);
    assert_true(v.risk == teacher_F(t, 2, W0));
    verdict_out_release(&v);
    spec_experiment_free(exp);
    basin_teacher_free(t);
}

/* Gradient descent on row 0 only (row 1 stays dead): a stationary point of the live row. */
static void descend_row0(const basin_teacher *t, size_t n, double *W)
{
    double g[4], F;
    for (int it = 0; it < 20000; it++) {
        assert_int_equal(basin_teacher_risk_grad(t, n, W, &F, g), BASIN_OK);
        if (sqrt(g[0] * g[0] + g[1] * g[1]) < 1e-13)
            break;
        W[0] -= 0.5 * g[0];
        W[1] -= 0.5 * g[1];
    }
}

static void test_teacher_dead_row_and_small_student(void **state)
{
    (void)state;
    basin_teacher *t = NULL;
    assert_int_equal(basin_teacher_create_identity(2, 2, &t), BASIN_OK);
    /* two students, the second dead: stationary on the live row, but leaving the dead row
     * towards the uncovered teacher lowers F (D(u) < 0) */
    struct spec_experiment *exp = teacher_exp(2, NULL);
    double W[4] = {0.9, 0.3, 0.0, 0.0};
    descend_row0(t, 2, W);
    double F0 = teacher_F(t, 2, W);
    struct verdict_out v;
    assert_int_equal(verdict_judge(exp, t, W, &v), BASIN_OK);
    assert_string_equal(v.label, "saddle");
    assert_string_equal(json_string_value(json_object_get(v.verdict, "decided_by")),
                        "closed_form_hessian");
    const json_t *d = json_object_get(v.verdict, "descent");
    assert_string_equal(json_string_value(json_object_get(d, "from")), "dead_unit_direction");
    const json_t *dir = json_object_get(d, "direction");
    assert_int_equal(json_array_size(dir), 4);
    double dv[4], Wn[4], norm = 0;
    for (size_t i = 0; i < 4; i++) {
        dv[i] = json_real_value(json_array_get(dir, i));
        norm += dv[i] * dv[i];
    }
    assert_true(fabs(norm - 1.0) <= 1e-12);
    assert_true(dv[0] == 0.0 && dv[1] == 0.0); /* it leaves the dead row only */
    /* F really goes down along it, at the rate the verdict states: F(W + εd) − F(W) =
     * ε·D + ε²/4 exactly, so a finite difference recovers D */
    double eps = 1e-4;
    for (size_t i = 0; i < 4; i++)
        Wn[i] = W[i] + eps * dv[i];
    double F1 = teacher_F(t, 2, Wn);
    assert_true(F1 < F0);
    const json_t *cf = json_object_get(v.verdict, "closed_form");
    double D = jreal(cf, "dead_direction_min");
    assert_true(D < 0);
    assert_true(fabs((F1 - F0) / eps - eps / 4 - D) <= 1e-7);
    assert_int_equal(json_array_size(json_object_get(cf, "dead_rows")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(cf, "dead_rows"), 0)), 1);
    /* one teacher unit is not covered: F is far from 0, and 0 is reachable (n ≥ k) */
    assert_true(F0 > 0.05);
    assert_true(json_is_true(json_object_get(cf, "not_global")));
    verdict_out_release(&v);
    spec_experiment_free(exp);

    /* one student for two teachers: its best direction is a strict local minimum (the
     * finite-difference Hessian is positive definite), and the global value is unknown */
    exp = teacher_exp(1, NULL);
    double w1[2] = {0.9, 0.3};
    descend_row0(t, 1, w1);
    int live[1] = {1};
    double lam = fd_lambda_min(t, 1, w1, live);
    assert_int_equal(verdict_judge(exp, t, w1, &v), BASIN_OK);
    assert_true(lam > 1e-3);
    assert_string_equal(v.label, "certified_minimum");
    assert_true(fabs(jreal(json_object_get(v.verdict, "curvature"), "lambda_min") - lam) <= 1e-6);
    cf = json_object_get(v.verdict, "closed_form");
    assert_true(json_is_false(json_object_get(cf, "realizable")));
    assert_true(json_is_null(json_object_get(cf, "not_global")));
    verdict_out_release(&v);
    spec_experiment_free(exp);
    basin_teacher_free(t);
}

/* Judging that cannot be done is an error text, never a crash or a verdict. */
static void test_verdict_errors(void **state)
{
    (void)state;
    char *text = sine_spec(1, NULL);
    struct spec_experiment *exp = parse(text);
    double theta[13];
    for (size_t i = 0; i < 13; i++)
        theta[i] = 0.1 * (double)i;
    theta[5] = NAN; /* basin_certify refuses a non-finite point */
    struct verdict_out v;
    assert_int_equal(verdict_judge(exp, NULL, theta, &v), BASIN_OK);
    assert_false(v.judged);
    assert_null(v.verdict);
    assert_true(strlen(v.error) > 0);
    verdict_out_release(&v);
    spec_experiment_free(exp);
    free(text);

    /* above VERDICT_MAX_WORK (samples x parameters): refused with a reason, θ untouched */
    static const char big[] =
        "{\"dataset\": {\"kind\": \"generator\", \"generator\": {\"name\": \"sine\", \"n\": "
        "10000}}, \"architecture\": {\"layers\": [{\"type\": \"dense\", \"units\": 2000}, "
        "{\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}}";
    exp = parse(big);
    size_t dim = basin_net_param_count(exp->arch->net);
    assert_int_equal(dim, 6001);
    assert_true(10000.0 * (double)dim > VERDICT_MAX_WORK);
    double *big_theta = calloc(dim, sizeof *big_theta);
    assert_non_null(big_theta);
    big_theta[0] = 0.25;
    assert_int_equal(verdict_judge(exp, NULL, big_theta, &v), BASIN_OK);
    assert_false(v.judged);
    assert_non_null(strstr(v.error, "too large"));
    assert_true(big_theta[0] == 0.25);
    verdict_out_release(&v);
    free(big_theta);
    spec_experiment_free(exp);

    /* certify disabled: nothing computed, no error */
    text = sine_spec(1, "{\"enabled\": false}");
    exp = parse(text);
    theta[5] = 0.5;
    assert_int_equal(verdict_judge(exp, NULL, theta, &v), BASIN_OK);
    assert_false(v.judged);
    assert_string_equal(v.error, "");
    verdict_out_release(&v);
    spec_experiment_free(exp);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_certify_specs),
        cmocka_unit_test(test_certify_canonical),
        cmocka_unit_test(test_teacher_certified),
        cmocka_unit_test(test_teacher_dead_row_and_small_student),
        cmocka_unit_test(test_verdict_errors),
        cmocka_unit_test_setup_teardown(test_worker_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_certify_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_teacher, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
