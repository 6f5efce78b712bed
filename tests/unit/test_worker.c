/* Unit tests of the worker pool (worker.c) and its executor (run_exec.c) against a real SQLite
 * store in a temporary directory, without HTTP. Experiments are submitted the way the handler
 * does it: an inline spec is parsed, its dataset and architecture are stored as records, and the
 * canonical spec with their ids is stored with the experiment. Expected results come from direct
 * basin_train_restart calls on the inline-parsed spec (restart r, the spec's seed): the worker
 * must reproduce them bit for bit from the stored records, whatever the batch size B and the
 * number of threads. Also tested: the store addition store_claim_release (the drain path), and
 * that a lost claim charges only the run the worker was executing (store_requeue_stale).
 * The specs switch certification off (certify.enabled = false): a verdict's polish may move the
 * end point, and this file checks training alone (test_verdicts.c checks the verdicts).
 *
 * The workers see the store through a thin forwarding table that counts trajectory appends, so
 * "points are written in chunks, never one call per point" is asserted, not assumed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "basin/train.h"
#include "spec.h"
#include "store.h"
#include "worker.h"

/* ---- a store that counts what the workers do ---- */

struct counting_store {
    struct store base; /* first: the workers' struct store * */
    struct store *inner;
    struct store_ops ops;
    atomic_int appends;    /* trajectory_append calls */
    atomic_int append_max; /* the most points in one call */
    atomic_int heartbeats;
    atomic_int releases;
    /* Simulated loss: the first append for this run first requeues every running run, as the
     * reaper does for a worker whose lease expired (empty: never). */
    char lose_at_run[STORE_ID_SIZE];
    atomic_int lost;
    int64_t lost_requeued, lost_failed;
};

static struct counting_store *cs_of(struct store *s)
{
    return (struct counting_store *)s;
}

static int cs_claim_runs(struct store *s, const char *w, size_t m, struct store_claim **out)
{
    return store_claim_runs(cs_of(s)->inner, w, m, out);
}

static int cs_heartbeat(struct store *s, const char *token, int *cancel)
{
    atomic_fetch_add(&cs_of(s)->heartbeats, 1);
    return store_claim_heartbeat(cs_of(s)->inner, token, cancel);
}

static int cs_release(struct store *s, const char *token, int64_t *requeued)
{
    atomic_fetch_add(&cs_of(s)->releases, 1);
    return store_claim_release(cs_of(s)->inner, token, requeued);
}

static int cs_run_finish(struct store *s, const struct store_run_result *r)
{
    return store_run_finish(cs_of(s)->inner, r);
}

static int cs_append(struct store *s, const char *run_id, const char *token,
                     const struct store_traj_point *pts, size_t n)
{
    struct counting_store *cs = cs_of(s);
    atomic_fetch_add(&cs->appends, 1);
    int prev = atomic_load(&cs->append_max);
    while ((int)n > prev && !atomic_compare_exchange_weak(&cs->append_max, &prev, (int)n))
        ;
    if (cs->lose_at_run[0] && strcmp(run_id, cs->lose_at_run) == 0 &&
        atomic_exchange(&cs->lost, 1) == 0) {
        int rc =
            store_requeue_stale(cs->inner, STORE_NO_LIMIT, &cs->lost_requeued, &cs->lost_failed);
        if (rc != STORE_OK)
            return rc;
    }
    return store_trajectory_append(cs->inner, run_id, token, pts, n);
}

static int cs_dataset_get(struct store *s, const char *id, unsigned flags,
                          struct store_dataset **out)
{
    return store_dataset_get(cs_of(s)->inner, id, flags, out);
}

static int cs_architecture_get(struct store *s, const char *id, struct store_architecture **out)
{
    return store_architecture_get(cs_of(s)->inner, id, out);
}

/* ---- fixture ---- */

struct fx {
    char dir[64];
    char path[96];
    struct store *store; /* the test's own reads and writes */
    struct counting_store cs;
    struct app app;
    atomic_int log_lines;
};

static void test_log(void *user, const char *msg)
{
    struct fx *f = user;
    atomic_fetch_add(&f->log_lines, 1);
    fprintf(stderr, "  [worker log] %s\n", msg);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[256] = "";
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/basinlab_worker_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    if (store_open(f->path, NULL, &f->store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    f->cs.inner = f->store;
    f->cs.ops.claim_runs = cs_claim_runs;
    f->cs.ops.claim_heartbeat = cs_heartbeat;
    f->cs.ops.claim_release = cs_release;
    f->cs.ops.run_finish = cs_run_finish;
    f->cs.ops.trajectory_append = cs_append;
    f->cs.ops.dataset_get = cs_dataset_get;
    f->cs.ops.architecture_get = cs_architecture_get;
    f->cs.base.ops = &f->cs.ops;
    if (app_init(&f->app) != BASIN_OK)
        return -1;
    f->app.store = &f->cs.base;
    limits_defaults(&f->app.limits);
    /* The direct reference runs below must use the BLAS the workers use. */
    openblas_set_num_threads(1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[128];
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

static struct worker_options opts(size_t batch, struct fx *f)
{
    struct worker_options o;
    memset(&o, 0, sizeof o);
    o.batch = batch;
    o.idle_poll_ms = 100;
    o.name = "test";
    o.log = test_log;
    o.log_user = f;
    return o;
}

/* ---- specs ---- */

#define XOR8_DATA                                                                                  \
    "{\"kind\": \"inline\", \"x\": [[0,0],[0,1],[1,0],[1,1],[0.5,0.2],[0.3,0.9],[0.8,0.4],"        \
    "[0.1,0.6]], \"y\": [0,1,1,0,0.4,0.7,0.6,0.3]}"
#define RELU_241                                                                                   \
    "{\"layers\": [{\"type\": \"dense\", \"units\": 4}, {\"type\": \"activation\", \"kind\": "     \
    "\"relu\"}, {\"type\": \"dense\", \"units\": 1}]}"

/* An experiment on the 8-point dataset and the 2-4-1 ReLU net. */
static char *spec_text(const char *optimizer, const char *arch, int restarts, int seed,
                       long max_steps, long traj_every)
{
    char *buf = malloc(4096);
    assert_non_null(buf);
    snprintf(buf, 4096,
             "{\"dataset\": " XOR8_DATA ", \"architecture\": %s, \"optimizer\": %s, "
             "\"init\": {\"kind\": \"normal\", \"std\": 0.5}, \"restarts\": %d, \"seed\": %d, "
             "\"max_steps\": %ld, \"stop\": {\"grad_tol\": 0}, \"trajectory_every\": %ld, "
             "\"certify\": {\"enabled\": false}}",
             arch ? arch : RELU_241, optimizer, restarts, seed, max_steps, traj_every);
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

/* The dataset record of an inline-parsed spec, as the handler stores it. */
static void insert_dataset(struct fx *f, const struct spec_dataset *sd, char id[STORE_ID_SIZE])
{
    struct store_dataset d;
    json_t *spec = spec_dataset_to_json(sd);
    assert_non_null(spec);
    memset(&d, 0, sizeof d);
    d.kind = strdup(json_string_value(json_object_get(spec, "kind")));
    d.spec = spec;
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
        d.n = 0;
        d.in_dim = (int64_t)sd->tg.d;
        d.y_dim = 1;
        d.task = strdup("regression");
    }
    assert_int_equal(store_dataset_insert(f->store, &d, id), STORE_OK);
    free(d.kind);
    free(d.task);
    json_decref(d.input_shape);
    json_decref(spec);
}

static void insert_architecture(struct fx *f, const struct spec_arch *sa, char id[STORE_ID_SIZE])
{
    struct store_architecture a;
    memset(&a, 0, sizeof a);
    a.spec = spec_arch_to_json(sa);
    assert_non_null(a.spec);
    a.param_count = (int64_t)basin_net_param_count(sa->net);
    a.out_dim = (int64_t)basin_net_out_dim(sa->net);
    assert_int_equal(store_architecture_insert(f->store, &a, id), STORE_OK);
    json_decref(a.spec);
}

/* Store the dataset of ds_from, the architecture of arch_from and the rest of `rest` (its
 * canonical spec with the two ids in place of the inline objects) as one experiment. */
static void submit_parts(struct fx *f, const struct spec_experiment *ds_from,
                         const struct spec_experiment *arch_from, struct spec_experiment *rest,
                         char id[STORE_ID_SIZE])
{
    char ds_id[STORE_ID_SIZE], ar_id[STORE_ID_SIZE];
    struct store_experiment_new e;
    int existed = -1;
    insert_dataset(f, ds_from->dataset, ds_id);
    insert_architecture(f, arch_from->arch, ar_id);
    struct spec_dataset *sd = rest->dataset;
    struct spec_arch *sa = rest->arch;
    rest->dataset = NULL;
    rest->arch = NULL;
    rest->dataset_id = ds_id;
    rest->architecture_id = ar_id;
    json_t *canon = spec_experiment_to_json(rest);
    rest->dataset_id = NULL;
    rest->architecture_id = NULL;
    rest->dataset = sd;
    rest->arch = sa;
    assert_non_null(canon);
    memset(&e, 0, sizeof e);
    e.dataset_id = ds_id;
    e.architecture_id = ar_id;
    e.spec = canon;
    e.restarts = (int64_t)rest->restarts;
    e.seed = rest->train.seed;
    assert_int_equal(store_experiment_create(f->store, &e, id, &existed), STORE_OK);
    assert_int_equal(existed, 0);
    json_decref(canon);
}

static void submit(struct fx *f, struct spec_experiment *exp, char id[STORE_ID_SIZE])
{
    submit_parts(f, exp, exp, exp, id);
}

/* ---- direct reference runs ---- */

struct ref_run {
    basin_run_result res;
    double *theta;
    size_t dim;
    basin_traj_point *traj;
    size_t n_traj, cap_traj;
};

static int ref_on_point(void *user, uint64_t restart, const basin_traj_point *pt)
{
    struct ref_run *r = user;
    (void)restart;
    if (r->n_traj == r->cap_traj) {
        r->cap_traj = r->cap_traj ? 2 * r->cap_traj : 256;
        r->traj = realloc(r->traj, r->cap_traj * sizeof *r->traj);
        assert_non_null(r->traj);
    }
    r->traj[r->n_traj++] = *pt;
    return 0;
}

static void reference(const struct spec_experiment *exp, size_t restart, struct ref_run *out)
{
    basin_objective obj;
    basin_teacher *t = NULL;
    basin_train_hooks hooks = {ref_on_point, NULL, out};
    memset(out, 0, sizeof *out);
    memset(&obj, 0, sizeof obj);
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        assert_int_equal(exp->dataset->tg.teacher, SPEC_TEACHER_IDENTITY);
        assert_int_equal(basin_teacher_create_identity(exp->dataset->tg.k, exp->dataset->tg.d, &t),
                         BASIN_OK);
        assert_int_equal(basin_teacher_objective(t, exp->arch->layers[0].units, &obj), BASIN_OK);
    } else {
        assert_int_equal(basin_objective_empirical(exp->arch->net, exp->dataset->data, &exp->loss,
                                                   exp->l2, exp->max_batch, &obj),
                         BASIN_OK);
    }
    out->dim = obj.dim;
    out->theta = calloc(obj.dim, sizeof *out->theta);
    assert_non_null(out->theta);
    assert_int_equal(basin_train_restart(&obj, exp->arch->net, &exp->train, restart, out->theta,
                                         &hooks, &out->res),
                     BASIN_OK);
    basin_objective_release(&obj);
    basin_teacher_free(t);
}

static void ref_free(struct ref_run *r)
{
    free(r->theta);
    free(r->traj);
}

/* ---- reading the store ---- */

static struct store_run_list *runs_of(struct fx *f, const char *exp_id)
{
    struct store_run_list *l = NULL;
    assert_int_equal(store_run_list(f->store, exp_id, NULL, 1000, NULL, &l), STORE_OK);
    return l;
}

static struct store_experiment *experiment(struct fx *f, const char *id)
{
    struct store_experiment *e = NULL;
    assert_int_equal(store_experiment_get(f->store, id, &e), STORE_OK);
    return e;
}

/* Sanitizer builds (TSan slows training ~10x) stretch the completion waits by
 * BASINLAB_TEST_TIME_SCALE; the latency bounds the tests assert (cancel, drain) are not scaled. */
static double time_scale(void)
{
    const char *v = getenv("BASINLAB_TEST_TIME_SCALE");
    double k = v ? strtod(v, NULL) : 1.0;
    return k >= 1.0 ? k : 1.0;
}

static enum store_exp_status wait_status(struct fx *f, const char *id, enum store_exp_status want,
                                         double timeout_s)
{
    double t0 = now_s();
    timeout_s *= time_scale();
    enum store_exp_status s;
    for (;;) {
        struct store_experiment *e = experiment(f, id);
        s = e->status;
        store_experiment_free(e);
        if (s == want || now_s() - t0 > timeout_s)
            break;
        sleep_ms(10);
    }
    if (s != want)
        fail_msg("experiment %s is %s after %.1f s, expected %s", id, store_exp_status_name(s),
                 timeout_s, store_exp_status_name(want));
    return s;
}

static struct store_progress progress(struct fx *f, const char *id)
{
    struct store_progress p;
    assert_int_equal(store_experiment_progress(f->store, id, &p), STORE_OK);
    return p;
}

/* Every point of a run's trajectory, in step order. */
static struct store_traj_point *trajectory(struct fx *f, const char *run_id, size_t *n)
{
    struct store_traj_point *all = NULL;
    size_t total = 0;
    int64_t from = 0;
    while (from >= 0) {
        struct store_traj_point *pts = NULL;
        size_t got = 0;
        int64_t next = -1;
        assert_int_equal(
            store_trajectory_read(f->store, run_id, from, INT64_MAX, 1000, &pts, &got, &next),
            STORE_OK);
        all = realloc(all, (total + got + 1) * sizeof *all);
        assert_non_null(all);
        if (got > 0)
            memcpy(all + total, pts, got * sizeof *pts);
        total += got;
        free(pts);
        from = next;
    }
    *n = total;
    return all;
}

static void assert_same_double(double got, double want)
{
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%.17g differs from %.17g", got, want);
}

/* A run stored by a worker against a direct run: every number bit-identical. */
static void check_run(struct fx *f, const struct store_run *run, const struct ref_run *ref,
                      int with_traj)
{
    double *params = NULL;
    size_t n = 0;
    assert_int_equal(run->steps, (int64_t)ref->res.steps);
    assert_non_null(run->stop_reason);
    assert_string_equal(run->stop_reason, basin_stop_reason_name(ref->res.reason));
    assert_same_double(run->initial_risk, ref->res.initial_risk);
    assert_same_double(run->final_risk, ref->res.final_risk);
    assert_same_double(run->grad_norm, ref->res.grad_norm);
    assert_same_double(run->param_norm, ref->res.param_norm);
    assert_int_equal(store_run_params_get(f->store, run->id, &params, &n), STORE_OK);
    assert_int_equal(n, ref->dim);
    assert_memory_equal(params, ref->theta, n * sizeof *params);
    free(params);
    if (!with_traj)
        return;
    struct store_traj_point *pts = trajectory(f, run->id, &n);
    assert_int_equal(n, ref->n_traj);
    assert_int_equal(pts[0].step, 0);
    assert_int_equal(pts[n - 1].step, run->steps);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pts[i].step, (int64_t)ref->traj[i].step);
        assert_same_double(pts[i].risk, ref->traj[i].risk);
        assert_same_double(pts[i].grad_norm, ref->traj[i].grad_norm);
        assert_same_double(pts[i].param_norm, ref->traj[i].param_norm);
    }
    free(pts);
}

/* Events of one experiment: how many of `type`, and the id of the last "status" event whose
 * status is `status` (0 if none). */
static size_t count_events(struct fx *f, const char *exp_id, const char *type, const char *status,
                           int64_t *status_event_id)
{
    struct store_event_list *l = NULL;
    size_t count = 0;
    assert_int_equal(store_events_since(f->store, exp_id, 0, 10000, &l), STORE_OK);
    if (status_event_id)
        *status_event_id = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct store_event *ev = &l->items[i];
        if (strcmp(ev->type, type) == 0)
            count++;
        const char *s = json_string_value(json_object_get(ev->data, "status"));
        if (status_event_id && status && strcmp(ev->type, "status") == 0 && s &&
            strcmp(s, status) == 0)
            *status_event_id = ev->id;
    }
    store_event_list_free(l);
    return count;
}

static int64_t event_id_of_run(struct fx *f, const char *exp_id, const char *run_id)
{
    struct store_event_list *l = NULL;
    int64_t id = 0;
    assert_int_equal(store_events_since(f->store, exp_id, 0, 10000, &l), STORE_OK);
    for (size_t i = 0; i < l->n; i++) {
        const char *r = json_string_value(json_object_get(l->items[i].data, "run_id"));
        if (strcmp(l->items[i].type, "run_finished") == 0 && r && strcmp(r, run_id) == 0)
            id = l->items[i].id;
    }
    store_event_list_free(l);
    return id;
}

/* ---- (1) every run finishes, bit-identical to a direct call ---- */

static void test_runs_finish_bit_identical(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(4, f);
    char id[STORE_ID_SIZE];
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 6, 7, 3000, 5);
    struct spec_experiment *exp = parse(text);
    submit(f, exp, id);

    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);

    struct store_experiment *e = experiment(f, id);
    assert_int_equal(e->progress.finished, 6);
    assert_int_equal(
        e->progress.queued + e->progress.running + e->progress.failed + e->progress.cancelled, 0);
    assert_true(e->finished_at_ms > 0);
    store_experiment_free(e);

    struct store_run_list *l = runs_of(f, id);
    assert_int_equal(l->n, 6);
    uint64_t steps = 0;
    int max_appends = 0, min_appends = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct ref_run ref;
        const struct store_run *run = &l->items[i];
        assert_int_equal(run->index, (int64_t)i);
        assert_int_equal(run->status, STORE_RUN_FINISHED);
        assert_int_equal(run->attempts, 1);
        assert_null(run->error);
        reference(exp, i, &ref);
        check_run(f, run, &ref, 1);
        /* 3000 steps every 5: 601 points, more than one chunk of 512 */
        assert_int_equal(ref.n_traj, 601);
        min_appends += (int)((ref.n_traj + STORE_TRAJ_CHUNK_POINTS - 1) / STORE_TRAJ_CHUNK_POINTS);
        max_appends += (int)((ref.n_traj + STORE_TRAJ_CHUNK_POINTS - 1) / STORE_TRAJ_CHUNK_POINTS) +
                       1; /* at most one timed flush per run on a very slow machine */
        steps += ref.res.steps;
        ref_free(&ref);
    }
    store_run_list_free(l);
    /* chunked writes: 2 calls per run here, never one per point */
    assert_in_range(atomic_load(&f->cs.appends), min_appends, max_appends);
    assert_int_equal(atomic_load(&f->cs.append_max), STORE_TRAJ_CHUNK_POINTS);

    /* events: running, one run_finished per run, finished */
    int64_t running_ev = 0, finished_ev = 0;
    assert_int_equal(count_events(f, id, "run_finished", NULL, NULL), 6);
    count_events(f, id, "status", "running", &running_ev);
    count_events(f, id, "status", "finished", &finished_ev);
    assert_true(running_ev > 0);
    assert_true(finished_ev > running_ev);

    assert_int_equal(atomic_load(&f->app.metrics.runs_finished_total), 6);
    assert_int_equal(atomic_load(&f->app.metrics.runs_failed_total), 0);
    assert_int_equal(atomic_load(&f->app.metrics.train_steps_total), steps);
    spec_experiment_free(exp);
    free(text);
}

/* teacher_gaussian: the closed-form population risk, from the dataset record's spec */
static void test_teacher_gaussian(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(2, f);
    char id[STORE_ID_SIZE];
    static const char text[] =
        "{\"dataset\": {\"kind\": \"teacher_gaussian\", \"k\": 2, \"d\": 3}, "
        "\"architecture\": {\"input_shape\": [3], \"layers\": [{\"type\": \"dense\", \"units\": 3, "
        "\"bias\": false}, {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"sum\"}]}, "
        "\"optimizer\": {\"kind\": \"gd\", \"lr\": 0.05}, \"init\": {\"kind\": \"normal\", "
        "\"std\": 0.5}, \"restarts\": 3, \"seed\": 5, \"max_steps\": 2000, "
        "\"stop\": {\"grad_tol\": 0}, \"trajectory_every\": 50, \"certify\": {\"enabled\": false}}";
    struct spec_experiment *exp = parse(text);
    submit(f, exp, id);
    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);
    struct store_run_list *l = runs_of(f, id);
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++) {
        struct ref_run ref;
        assert_int_equal(l->items[i].status, STORE_RUN_FINISHED);
        reference(exp, i, &ref);
        check_run(f, &l->items[i], &ref, 1);
        ref_free(&ref);
    }
    store_run_list_free(l);
    spec_experiment_free(exp);
}

/* ---- (2) cancel ---- */

#define LONG_STEPS 10000000L

static void test_cancel_stops_running_runs(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(2, f);
    char id[STORE_ID_SIZE];
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.001}", NULL, 6, 3, LONG_STEPS, 10000);
    struct spec_experiment *exp = parse(text);
    submit(f, exp, id);
    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);

    /* two claims of two runs each, and training under way */
    double t0 = now_s();
    while (progress(f, id).running < 4 && now_s() - t0 < 10.0)
        sleep_ms(10);
    assert_int_equal(progress(f, id).running, 4);
    sleep_ms(300);

    /* No app_notify: the heartbeat alone must carry the cancel to the workers. */
    int changed = 0;
    assert_int_equal(store_experiment_cancel(f->store, id, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    t0 = now_s();
    while (progress(f, id).running > 0 && now_s() - t0 < 5.0)
        sleep_ms(10);
    double took = now_s() - t0;
    struct store_progress p = progress(f, id);
    assert_int_equal(p.running, 0);
    assert_int_equal(p.queued, 0);
    assert_int_equal(p.cancelled, 6);
    if (took > 1.5)
        fail_msg("the running runs took %.2f s to stop after the cancel", took);

    struct store_run_list *l = runs_of(f, id);
    int trained = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        assert_int_equal(r->status, STORE_RUN_CANCELLED);
        if (r->steps > 0) {
            trained++;
            assert_true(r->steps < LONG_STEPS);
            assert_string_equal(r->stop_reason, "cancelled");
            assert_true(r->has_params);
            assert_true(isfinite(r->final_risk));
        }
    }
    assert_int_equal(trained, 2); /* one in flight per thread */
    store_run_list_free(l);
    struct store_experiment *e = experiment(f, id);
    assert_int_equal(e->status, STORE_EXP_CANCELLED);
    store_experiment_free(e);
    worker_pool_stop(pool);
    assert_true(atomic_load(&f->cs.heartbeats) >= 2);
    spec_experiment_free(exp);
    free(text);
}

/* ---- (3) divergence and a bad experiment fail their runs, others are unaffected ---- */

static void test_diverging_and_broken_experiments(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(8, f);
    char bad_id[STORE_ID_SIZE], good_id[STORE_ID_SIZE], broken_id[STORE_ID_SIZE];
    /* linear regression with lr 50: the GD iteration matrix has eigenvalues far outside (−1, 1) */
    char *bad_text =
        spec_text("{\"kind\": \"gd\", \"lr\": 50}",
                  "{\"layers\": [{\"type\": \"dense\", \"units\": 1}]}", 3, 1, 2000, 10);
    char *good_text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 2, 2, 1000, 100);
    static const char three_d[] =
        "{\"dataset\": {\"kind\": \"inline\", \"x\": [[0,0,1],[1,0,0]], \"y\": [0,1]}, "
        "\"architecture\": {\"layers\": [{\"type\": \"dense\", \"units\": 1}]}}";
    struct spec_experiment *bad = parse(bad_text), *good = parse(good_text), *wide = parse(three_d);
    submit(f, bad, bad_id);
    submit(f, good, good_id);
    /* the 2-D dataset with an architecture for 3-D inputs: stored, but it cannot run */
    submit_parts(f, good, wide, good, broken_id);

    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);
    wait_status(f, bad_id, STORE_EXP_FINISHED, 20.0);
    wait_status(f, good_id, STORE_EXP_FINISHED, 20.0);
    wait_status(f, broken_id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);

    struct store_run_list *l = runs_of(f, bad_id);
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        struct ref_run ref;
        reference(bad, i, &ref);
        assert_int_equal(ref.res.reason, BASIN_STOP_DIVERGED); /* the spec does diverge */
        assert_int_equal(r->status, STORE_RUN_FAILED);
        assert_non_null(r->error);
        assert_int_equal(strncmp(r->error, "diverged: ", 10), 0);
        check_run(f, r, &ref, 1); /* the end point is the last accepted one, as in the core */
        ref_free(&ref);
    }
    store_run_list_free(l);

    l = runs_of(f, good_id);
    for (size_t i = 0; i < l->n; i++) {
        struct ref_run ref;
        assert_int_equal(l->items[i].status, STORE_RUN_FINISHED);
        reference(good, i, &ref);
        check_run(f, &l->items[i], &ref, 0);
        ref_free(&ref);
    }
    store_run_list_free(l);

    l = runs_of(f, broken_id);
    assert_int_equal(l->n, 2);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        assert_int_equal(r->status, STORE_RUN_FAILED);
        assert_non_null(r->error);
        assert_non_null(strstr(r->error, "do not fit together"));
        assert_non_null(strstr(r->error, "input_shape"));
        assert_false(r->has_params);
    }
    store_run_list_free(l);
    assert_int_equal(atomic_load(&f->app.metrics.runs_failed_total), 5);
    assert_int_equal(atomic_load(&f->app.metrics.runs_finished_total), 2);
    spec_experiment_free(bad);
    spec_experiment_free(good);
    spec_experiment_free(wide);
    free(bad_text);
    free(good_text);
}

/* ---- (4) time budget ---- */

static void test_time_budget(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(2, f);
    char id[STORE_ID_SIZE];
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.001}", NULL, 2, 3, LONG_STEPS, 10000);
    struct spec_experiment *exp = parse(text);
    submit(f, exp, id);
    o.max_run_seconds = 0.25;
    double t0 = now_s();
    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 10.0);
    double took = now_s() - t0;
    worker_pool_stop(pool);
    assert_true(took >= 0.5); /* two runs of 0.25 s on one thread */
    struct store_run_list *l = runs_of(f, id);
    assert_int_equal(l->n, 2);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        assert_int_equal(r->status, STORE_RUN_FAILED);
        assert_non_null(r->error);
        assert_int_equal(strncmp(r->error, "time budget exceeded", 20), 0);
        assert_string_equal(r->stop_reason, "time_budget");
        assert_true(r->steps > 0 && r->steps < LONG_STEPS);
        assert_true(r->has_params);
    }
    /* run 0 started with the claim and stopped after its 0.25 s */
    int64_t ran_ms = l->items[0].finished_at_ms - l->items[0].started_at_ms;
    assert_in_range(ran_ms, 250, 3000);
    store_run_list_free(l);
    spec_experiment_free(exp);
    free(text);
}

/* ---- (5) drain hands runs back; a new pool finishes them exactly once ---- */

static void test_drain_requeues_then_finishes_once(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(4, f);
    char id[STORE_ID_SIZE];
    /* 151 points per run, fewer than a chunk: only the timed flush shows them early */
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.001}", NULL, 3, 11, 150000, 1000);
    struct spec_experiment *exp = parse(text);
    struct store_run_list *l = NULL;
    struct store_traj_info info;
    submit(f, exp, id);
    l = runs_of(f, id);
    char run0[STORE_ID_SIZE];
    memcpy(run0, l->items[0].id, sizeof run0);
    store_run_list_free(l);

    o.flush_ms = 100;
    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_OK);
    double t0 = now_s();
    memset(&info, 0, sizeof info);
    while (now_s() - t0 < 10.0) {
        assert_int_equal(store_trajectory_info(f->store, run0, &info), STORE_OK);
        if (info.count > 0)
            break;
        sleep_ms(5);
    }
    assert_true(info.count > 0 && info.count < 151); /* visible while it trains */
    t0 = now_s();
    assert_int_equal(worker_pool_drain(pool, 3000), BASIN_OK);
    assert_true(now_s() - t0 < 1.0);
    worker_pool_stop(pool);

    struct store_progress p = progress(f, id);
    assert_int_equal(p.queued, 3);
    assert_int_equal(p.running + p.finished + p.failed + p.cancelled, 0);
    l = runs_of(f, id);
    for (size_t i = 0; i < l->n; i++) {
        assert_int_equal(l->items[i].status, STORE_RUN_QUEUED);
        assert_int_equal(l->items[i].attempts, 0); /* a drain is not a lost worker */
        assert_int_equal(store_trajectory_info(f->store, l->items[i].id, &info), STORE_OK);
        assert_int_equal(info.count, 0);
    }
    store_run_list_free(l);
    struct store_experiment *e = experiment(f, id);
    assert_int_equal(e->status, STORE_EXP_RUNNING);
    store_experiment_free(e);
    assert_true(atomic_load(&f->cs.releases) >= 1);

    /* a new pool finishes them */
    pool = NULL;
    o.flush_ms = 0;
    assert_int_equal(worker_pool_start(&f->app, 2, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);
    assert_int_equal(count_events(f, id, "run_finished", NULL, NULL), 3);
    l = runs_of(f, id);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        assert_int_equal(r->status, STORE_RUN_FINISHED);
        assert_int_equal(r->attempts, 1);
        if (i == 0) { /* the run that was interrupted: same result, no leftover points */
            struct ref_run ref;
            reference(exp, 0, &ref);
            check_run(f, r, &ref, 1);
            ref_free(&ref);
        } else {
            assert_int_equal(store_trajectory_info(f->store, r->id, &info), STORE_OK);
            assert_int_equal(info.count, 151);
            assert_int_equal(info.first_step, 0);
            assert_int_equal(info.last_step, 150000);
        }
    }
    store_run_list_free(l);
    spec_experiment_free(exp);
    free(text);
}

/* ---- (6) fairness ---- */

static void test_small_experiment_not_starved(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(2, f);
    char big_id[STORE_ID_SIZE], small_id[STORE_ID_SIZE];
    char *big_text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 12, 1, 3000, 100);
    char *small_text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 2, 2, 3000, 100);
    struct spec_experiment *big = parse(big_text), *small = parse(small_text);
    submit(f, big, big_id);
    submit(f, small, small_id);
    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_OK);
    wait_status(f, big_id, STORE_EXP_FINISHED, 20.0);
    wait_status(f, small_id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);

    /* Event ids are global and strictly increasing: they order the two experiments' runs. */
    int64_t small_done = 0;
    count_events(f, small_id, "status", "finished", &small_done);
    assert_true(small_done > 0);
    struct store_run_list *l = runs_of(f, big_id);
    size_t before = 0, after = 0;
    for (size_t i = 0; i < l->n; i++) {
        int64_t ev = event_id_of_run(f, big_id, l->items[i].id);
        assert_true(ev > 0);
        if (ev < small_done)
            before++;
        else
            after++;
    }
    store_run_list_free(l);
    assert_true(before <= 2); /* the small one waited for at most one batch of the big one */
    assert_true(after >= 1);  /* ... and finished while the big one still had work */
    spec_experiment_free(big);
    spec_experiment_free(small);
    free(big_text);
    free(small_text);
}

/* ---- (7) B and the number of threads do not change a single bit ---- */

static void run_pool(struct fx *f, const char *id, unsigned threads, size_t batch)
{
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(batch, f);
    assert_int_equal(worker_pool_start(&f->app, threads, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);
}

static void test_batch_and_threads_identical(void **state)
{
    struct fx *f = *state;
    char a_id[STORE_ID_SIZE], b_id[STORE_ID_SIZE];
    /* mini-batches with momentum: the batch order stream matters too */
    char *text =
        spec_text("{\"kind\": \"momentum\", \"lr\": 0.02, \"batch\": 3}", NULL, 5, 9, 1500, 50);
    struct spec_experiment *exp = parse(text);
    submit(f, exp, a_id);
    run_pool(f, a_id, 1, 1);
    submit(f, exp, b_id);
    run_pool(f, b_id, 2, 8);

    struct store_run_list *a = runs_of(f, a_id), *b = runs_of(f, b_id);
    assert_int_equal(a->n, 5);
    assert_int_equal(b->n, 5);
    for (size_t i = 0; i < a->n; i++) {
        struct ref_run ref;
        assert_int_equal(a->items[i].status, STORE_RUN_FINISHED);
        assert_int_equal(b->items[i].status, STORE_RUN_FINISHED);
        reference(exp, i, &ref);
        check_run(f, &a->items[i], &ref, 1);
        check_run(f, &b->items[i], &ref, 1);
        ref_free(&ref);
    }
    store_run_list_free(a);
    store_run_list_free(b);
    spec_experiment_free(exp);
    free(text);
}

/* ---- (8) a lost claim charges only the run that was executing ---- */

/* The worker runs its batch in index order: it finished run 0 and was training run 1 when the
 * reaper took the claim away (simulated in cs_append, right before run 1's first points land).
 * Run 1 is charged, run 2 never started and is not; the worker abandons the claim, claims the
 * two again and finishes them with the same results as direct runs. */
static void test_lost_claim_charges_executing_run(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = NULL;
    struct worker_options o = opts(3, f);
    char id[STORE_ID_SIZE];
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 3, 5, 200, 10);
    struct spec_experiment *exp = parse(text);
    struct store_run_list *l = NULL;
    const int64_t want_attempts[3] = {1, 2, 1};
    submit(f, exp, id);
    l = runs_of(f, id);
    assert_int_equal(l->n, 3);
    memcpy(f->cs.lose_at_run, l->items[1].id, sizeof f->cs.lose_at_run);
    store_run_list_free(l);

    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_OK);
    wait_status(f, id, STORE_EXP_FINISHED, 20.0);
    worker_pool_stop(pool);
    assert_int_equal(atomic_load(&f->cs.lost), 1);
    assert_int_equal(f->cs.lost_requeued, 2); /* runs 1 and 2; run 0 had finished */
    assert_int_equal(f->cs.lost_failed, 0);

    assert_int_equal(count_events(f, id, "run_finished", NULL, NULL), 3);
    l = runs_of(f, id);
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++) {
        const struct store_run *r = &l->items[i];
        struct ref_run ref;
        assert_int_equal(r->index, (int64_t)i);
        assert_int_equal(r->status, STORE_RUN_FINISHED);
        assert_int_equal(r->attempts, want_attempts[i]);
        reference(exp, i, &ref);
        check_run(f, r, &ref, 1);
        ref_free(&ref);
    }
    store_run_list_free(l);
    spec_experiment_free(exp);
    free(text);
}

/* ---- the store addition: store_claim_release ---- */

static void test_claim_release(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_SIZE];
    char *text = spec_text("{\"kind\": \"gd\", \"lr\": 0.05}", NULL, 3, 1, 100, 10);
    struct spec_experiment *exp = parse(text);
    struct store_claim *c = NULL;
    struct store_traj_info info;
    int64_t n = -1;
    int cancel = -1;
    submit(f, exp, id);

    assert_int_equal(store_claim_runs(f->store, "t", 2, &c), STORE_OK);
    assert_non_null(c);
    assert_int_equal(c->n_runs, 2);
    struct store_traj_point pt = {0, 1.0, 2.0, 3.0};
    assert_int_equal(store_trajectory_append(f->store, c->runs[0].id, c->token, &pt, 1), STORE_OK);
    assert_int_equal(store_claim_release(f->store, c->token, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_trajectory_info(f->store, c->runs[0].id, &info), STORE_OK);
    assert_int_equal(info.count, 0);
    struct store_progress p = progress(f, id);
    assert_int_equal(p.queued, 3);
    assert_int_equal(p.running, 0);
    /* the token is dead */
    assert_int_equal(store_claim_heartbeat(f->store, c->token, &cancel), STORE_ECONFLICT);
    struct store_run_result rr;
    memset(&rr, 0, sizeof rr);
    rr.run_id = c->runs[0].id;
    rr.token = c->token;
    rr.status = STORE_RUN_FINISHED;
    rr.steps = 1;
    rr.initial_risk = rr.final_risk = rr.grad_norm = rr.param_norm = NAN;
    assert_int_equal(store_run_finish(f->store, &rr), STORE_ECONFLICT);
    n = -1;
    assert_int_equal(store_claim_release(f->store, c->token, &n), STORE_OK); /* idempotent */
    assert_int_equal(n, 0);
    store_claim_free(c);

    /* claimed again: the attempt was given back */
    c = NULL;
    assert_int_equal(store_claim_runs(f->store, "t", 3, &c), STORE_OK);
    assert_non_null(c);
    assert_int_equal(c->n_runs, 3);
    for (size_t i = 0; i < c->n_runs; i++)
        assert_int_equal(c->runs[i].attempts, 1);

    /* a cancelled experiment's runs end cancelled, not queued */
    int changed = 0;
    assert_int_equal(store_experiment_cancel(f->store, id, &changed), STORE_OK);
    n = -1;
    assert_int_equal(store_claim_release(f->store, c->token, &n), STORE_OK);
    assert_int_equal(n, 0);
    p = progress(f, id);
    assert_int_equal(p.cancelled, 3);
    assert_int_equal(p.queued + p.running, 0);
    store_claim_free(c);
    assert_int_equal(store_claim_release(f->store, NULL, NULL), STORE_EINVAL);
    spec_experiment_free(exp);
    free(text);
}

/* ---- arguments ---- */

static void test_pool_arguments(void **state)
{
    struct fx *f = *state;
    struct worker_pool *pool = (struct worker_pool *)1;
    struct worker_options o = opts(STORE_MAX_CLAIM + 1, f);
    assert_int_equal(worker_pool_start(&f->app, 0, NULL, &pool), BASIN_EINVAL);
    assert_null(pool);
    assert_int_equal(worker_pool_start(&f->app, WORKER_MAX_THREADS + 1, NULL, &pool), BASIN_EINVAL);
    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_EINVAL);
    o = opts(1, f);
    o.max_run_seconds = -1;
    assert_int_equal(worker_pool_start(&f->app, 1, &o, &pool), BASIN_EINVAL);
    assert_int_equal(worker_pool_start(NULL, 1, NULL, &pool), BASIN_EINVAL);
    assert_int_equal(worker_pool_drain(NULL, 10), BASIN_OK);
    worker_pool_stop(NULL);
    /* an idle pool drains at once and can be drained twice */
    assert_int_equal(worker_pool_start(&f->app, 2, NULL, &pool), BASIN_OK);
    double t0 = now_s();
    assert_int_equal(worker_pool_drain(pool, 2000), BASIN_OK);
    assert_true(now_s() - t0 < 0.5);
    assert_int_equal(worker_pool_drain(pool, 10), BASIN_OK);
    worker_pool_stop(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runs_finish_bit_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teacher_gaussian, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stops_running_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diverging_and_broken_experiments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_requeues_then_finishes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_experiment_not_starved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_threads_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_claim_charges_executing_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
