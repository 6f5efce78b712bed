/* The executor of one worker thread (run_exec.h): stored records → core objects → trained runs
 * → trajectory chunks and fenced results in the store.
 *
 * DESIGN
 * - Identity. Run r of an experiment is basin_train_restart(obj, net, spec with seed = the run's
 *   seed, restart = r). The objective is rebuilt from exactly the bytes the handler stored: the
 *   x/y blobs (float64, bit-exact), the architecture parsed from its canonical spec, the training
 *   settings parsed from the experiment's canonical spec (reals round-trip through JSON exactly).
 *   Nothing else enters a run — not the claim batch, not the thread, not what ran before on this
 *   thread (train.c resets all of its state per restart; OpenBLAS runs one thread per worker) —
 *   so the end point is bit-identical to a direct call whatever B or the number of threads.
 * - Cache. Building the objects means reading the dataset blob and parsing three specs, so a
 *   thread keeps the objects of its last `cache_entries` experiments (LRU, keyed by experiment
 *   id; records never change after insert, so an entry can never be stale). The objective holds
 *   scratch memory and must not be shared between threads, hence per-thread caches. A permanent
 *   set-up failure (a missing or invalid record, incompatible dataset and architecture) is cached
 *   too, as an error text every run of that experiment is failed with.
 * - Hooks. basin_train_restart polls should_stop every 64 steps. The hook (a) honours the pool's
 *   drain flag, (b) enforces the run's wall-clock budget, (c) flushes buffered trajectory points
 *   older than flush_ms and (d) renews the claim's lease about every heartbeat_ms, or sooner (at
 *   most every 200 ms) when the app's change notifier moved — a cancel answered by a handler
 *   bumps it — and the heartbeat's reply carries the experiment's cancel flag. on_point appends
 *   to a fixed buffer of STORE_TRAJ_CHUNK_POINTS points, flushed when full: a store call per
 *   chunk, never per point, and nothing is allocated per step.
 * - Outcomes. Every claimed run ends in exactly one of: reported terminal by store_run_finish
 *   (finished; failed for divergence, a time budget, a core error or a bad experiment; cancelled
 *   after the experiment's cancel), handed back to `queued` by store_claim_release (drain, store
 *   or memory trouble: training is deterministic, so redoing it later changes nothing), or
 *   abandoned when the store says the claim is gone (STORE_ECONFLICT / STORE_ENOTFOUND: the run
 *   was requeued, cancelled or deleted behind us; the fenced update would refuse us anyway).
 *   The trajectory is flushed completely before run_finish, because a terminal run accepts no
 *   more points.
 * - Verdicts. A finished run of an experiment with certify.enabled (the default) is judged
 *   before it is reported (verdict.h: basin_certify, or the closed-form Hessian for
 *   teacher_gaussian). The polish may move θ: the stored end point and final_risk / grad_norm /
 *   param_norm are then the polished point's, and the trajectory still ends at the trained
 *   point, whose values the verdict's polish block keeps. So with certify on, the stored end
 *   point is bit-identical to basin_train_restart followed by basin_certify with the spec's
 *   options (both deterministic), not to training alone. Judging runs outside the training
 *   hooks (no cancel or time budget inside it; the lease is renewed right after); a memory
 *   failure hands the run back like one in training, any other verifier failure leaves the
 *   verdict null with "analysis_error: ..." in the run's error. */
#include "run_exec.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "basin/train.h"
#include "spec.h"
#include "verdict.h"

#define DEFAULT_HEARTBEAT_MS 1000u
#define DEFAULT_FLUSH_MS 2000u
#define DEFAULT_CACHE_ENTRIES 2u
#define NOTIFY_HEARTBEAT_MIN_NS (200 * 1000000LL) /* early heartbeats at most this often */
#define MSG_CAP 1024

/* The core objects of one experiment (or why it cannot run). */
struct exp_entry {
    char id[STORE_ID_SIZE];      /* "" = free slot */
    struct spec_experiment *exp; /* dataset and arch attached */
    basin_teacher *teacher;      /* teacher_gaussian only */
    basin_objective obj;
    const basin_net *net;
    double *theta; /* dim values: the run's start and end point */
    size_t dim;
    char *error;   /* permanent set-up failure: every run fails with this */
    uint64_t used; /* LRU stamp */
};

/* Why the run being trained was told to stop. */
enum stop_cause { CAUSE_NONE, CAUSE_CANCEL, CAUSE_DRAIN, CAUSE_BUDGET, CAUSE_LOST, CAUSE_STORE };

/* What happened to one claimed run. */
enum run_step { STEP_REPORTED, STEP_DRAIN, STEP_LOST, STEP_RETRY };

struct run_exec {
    struct run_exec_config cfg;
    int64_t heartbeat_ns, flush_ns, budget_ns; /* budget 0 = none */
    struct exp_entry *cache;
    size_t n_cache;
    uint64_t clock;
    struct store_traj_point *buf; /* STORE_TRAJ_CHUNK_POINTS */
    size_t n_buf;
    /* the claim being executed */
    const struct store_claim *claim;
    int64_t last_heartbeat_ns;
    uint64_t seen_seq;
    int cancel_seen;
    /* the run being trained */
    const struct store_claimed_run *run;
    enum stop_cause cause;
    int64_t run_start_ns, last_flush_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void
exec_log(struct run_exec *x, const char *fmt, ...)
{
    char msg[MSG_CAP];
    int n = snprintf(msg, sizeof msg, "%s: ", x->cfg.worker_id ? x->cfg.worker_id : "worker");
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (x->cfg.log)
        x->cfg.log(x->cfg.log_user, msg);
    else
        fprintf(stderr, "basinlab %s\n", msg);
}

static uint64_t notify_seq(struct app *app)
{
    pthread_mutex_lock(&app->notify_mu);
    uint64_t seq = app->notify_seq;
    pthread_mutex_unlock(&app->notify_mu);
    return seq;
}

/* A store code that retrying cannot fix. */
static int store_permanent(int rc)
{
    return rc == STORE_ENOTFOUND || rc == STORE_ECORRUPT || rc == STORE_EINVAL;
}

/* ---- the cache: building an experiment's objects ---- */

static void entry_clear(struct exp_entry *e)
{
    spec_experiment_free(e->exp);
    basin_objective_release(&e->obj);
    basin_teacher_free(e->teacher);
    basin_free(e->theta);
    basin_free(e->error);
    memset(e, 0, sizeof *e);
}

/* "prefix: /pointer: message; ..." from parser errors. */
static void errors_text(const struct spec_errors *errs, const char *prefix, char *msg, size_t cap)
{
    size_t len = (size_t)snprintf(msg, cap, "%s", prefix);
    for (size_t i = 0; i < errs->count && len < cap; i++) {
        const struct spec_error *e = &errs->items[i];
        int n = snprintf(msg + len, cap - len, "%s %s%s%s", i == 0 ? ":" : ";",
                         e->pointer[0] ? e->pointer : "", e->pointer[0] ? ": " : "", e->message);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

static int dataset_kind(const char *name, enum spec_dataset_kind *out)
{
    static const char *const names[] = {"inline", "generator", "csv", "teacher_gaussian"};
    static const enum spec_dataset_kind kinds[] = {SPEC_DATASET_INLINE, SPEC_DATASET_GENERATOR,
                                                   SPEC_DATASET_CSV, SPEC_DATASET_TEACHER_GAUSSIAN};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = kinds[i];
            return BASIN_OK;
        }
    return BASIN_EINVAL;
}

static int task_kind(const char *name, basin_task *out)
{
    static const char *const names[] = {"regression", "binary", "multiclass"};
    static const basin_task tasks[] = {BASIN_TASK_REGRESSION, BASIN_TASK_BINARY,
                                       BASIN_TASK_MULTICLASS};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = tasks[i];
            return BASIN_OK;
        }
    return BASIN_EINVAL;
}

/* [d] or [c,h,w] of positive integers whose product is in_dim. */
static int record_shape(const json_t *shape, int64_t in_dim, size_t *rank, size_t dims[3])
{
    size_t n = json_array_size(shape), prod = 1;
    if (!json_is_array(shape) || (n != 1 && n != 3))
        return BASIN_EINVAL;
    for (size_t i = 0; i < 3; i++) {
        dims[i] = 0;
        if (i >= n)
            continue;
        json_t *v = json_array_get(shape, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return BASIN_EINVAL;
        dims[i] = (size_t)json_integer_value(v);
        if (basin_mul_size(prod, dims[i], &prod) != BASIN_OK)
            return BASIN_EINVAL;
    }
    if (in_dim < 1 || prod != (size_t)in_dim)
        return BASIN_EINVAL;
    *rank = n;
    return BASIN_OK;
}

/* The samples of a stored dataset (kinds inline, csv, generator). BASIN_EINVAL (with msg) for a
 * record that makes no sense, BASIN_ENOMEM. */
static int samples_from_record(const struct store_dataset *d, struct spec_dataset *sd, char *msg,
                               size_t cap)
{
    size_t rank = 0, dims[3], nx, ny;
    basin_task task = BASIN_TASK_REGRESSION;
    int rc = BASIN_EINVAL;
    if (record_shape(d->input_shape, d->in_dim, &rank, dims) != BASIN_OK || d->n < 1 ||
        d->y_dim < 1 || d->n_classes < 0 || task_kind(d->task, &task) != BASIN_OK ||
        basin_mul_size((size_t)d->n, (size_t)d->in_dim, &nx) != BASIN_OK ||
        basin_mul_size((size_t)d->n, (size_t)d->y_dim, &ny) != BASIN_OK || !d->x || !d->y) {
        snprintf(msg, cap, "the dataset record %s is malformed (shape, sizes, task or samples)",
                 d->id);
        goto done;
    }
    rc = basin_dataset_create((size_t)d->n, rank, dims, (size_t)d->y_dim, &sd->data);
    if (rc != BASIN_OK) {
        snprintf(msg, cap, "cannot hold the dataset %s: %s", d->id, basin_strerror(rc));
        goto done;
    }
    memcpy(sd->data->x, d->x, nx * sizeof(double));
    memcpy(sd->data->y, d->y, ny * sizeof(double));
    sd->data->task = task;
    sd->data->n_classes = (size_t)d->n_classes;
    sd->in_rank = rank;
    memcpy(sd->in_shape, dims, sizeof dims);
done:
    return rc;
}

/* A spec_dataset from a dataset record: the samples from the blobs, or (teacher_gaussian, n = 0)
 * the parsed spec. */
static int dataset_from_record(const struct store_dataset *d, const struct limits *lim,
                               struct spec_dataset **out, char *msg, size_t cap)
{
    struct spec_errors errs;
    struct spec_dataset *sd = NULL;
    enum spec_dataset_kind kind;
    int rc;

    spec_errors_init(&errs);
    *out = NULL;
    rc = dataset_kind(d->kind, &kind);
    if (rc != BASIN_OK) {
        snprintf(msg, cap, "the dataset %s has an unknown kind", d->id);
        goto done;
    }
    if (kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        rc = spec_dataset_parse(d->spec, lim, &sd, &errs);
        if (rc == BASIN_EINVAL)
            errors_text(&errs, "the stored teacher_gaussian dataset spec is invalid", msg, cap);
        goto done;
    }
    sd = basin_calloc(1, sizeof *sd);
    if (sd == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    sd->kind = kind;
    rc = samples_from_record(d, sd, msg, cap);
done:
    spec_errors_clear(&errs);
    if (rc == BASIN_OK)
        *out = sd;
    else
        spec_dataset_free(sd);
    return rc;
}

static int make_teacher(const struct spec_teacher_gaussian *tg, basin_teacher **out)
{
    switch (tg->teacher) {
    case SPEC_TEACHER_IDENTITY:
        return basin_teacher_create_identity(tg->k, tg->d, out);
    case SPEC_TEACHER_RANDOM_ORTHONORMAL:
        return basin_teacher_create_random_orthonormal(tg->k, tg->d, tg->seed, out);
    case SPEC_TEACHER_MATRIX:
        break;
    }
    return basin_teacher_create_given(tg->k, tg->d, tg->matrix, out);
}

/* Resolve the records the canonical spec names (inline sections are used as they are). */
static int attach_records(struct run_exec *x, const struct store_claim *c,
                          struct spec_experiment *exp, struct spec_errors *errs, char *msg,
                          size_t cap, int *permanent)
{
    struct store *st = x->cfg.app->store;
    const struct limits *lim = &x->cfg.app->limits;
    struct store_architecture *ar = NULL;
    struct store_dataset *dr = NULL;
    int rc = BASIN_OK;

    if (exp->arch == NULL) {
        rc = store_architecture_get(st, c->architecture_id, &ar);
        if (rc != STORE_OK) {
            *permanent = store_permanent(rc);
            snprintf(msg, cap, "cannot read the architecture %s: %s", c->architecture_id,
                     store_strerror(rc));
            goto done;
        }
        rc = spec_arch_parse(ar->spec, lim, &exp->arch, errs);
        if (rc == BASIN_EINVAL) {
            *permanent = 1;
            errors_text(errs, "the stored architecture spec is invalid", msg, cap);
        }
        if (rc != BASIN_OK)
            goto done;
    }
    if (exp->dataset == NULL) {
        rc = store_dataset_get(st, c->dataset_id, STORE_WITH_DATA, &dr);
        if (rc != STORE_OK) {
            *permanent = store_permanent(rc);
            snprintf(msg, cap, "cannot read the dataset %s: %s", c->dataset_id, store_strerror(rc));
            goto done;
        }
        rc = dataset_from_record(dr, lim, &exp->dataset, msg, cap);
        *permanent = rc == BASIN_EINVAL;
    }
done:
    store_architecture_free(ar);
    store_dataset_free(dr);
    return rc;
}

/* The objective and the θ buffer of a complete, compatible experiment. */
static int make_objective(struct exp_entry *e, char *msg, size_t cap, int *permanent)
{
    const struct spec_experiment *exp = e->exp;
    int rc;

    e->net = exp->arch->net;
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        rc = make_teacher(&exp->dataset->tg, &e->teacher);
        if (rc == BASIN_OK)
            rc = basin_teacher_objective(e->teacher, exp->arch->layers[0].units, &e->obj);
    } else {
        rc = basin_objective_empirical(e->net, exp->dataset->data, &exp->loss, exp->l2,
                                       exp->max_batch, &e->obj);
    }
    if (rc == BASIN_OK && e->obj.dim != basin_net_param_count(e->net))
        rc = BASIN_EINVAL;
    if (rc != BASIN_OK) {
        *permanent = rc != BASIN_ENOMEM;
        snprintf(msg, cap, "cannot build the objective: %s", basin_strerror(rc));
        goto done;
    }
    e->dim = e->obj.dim;
    e->theta = basin_alloc_array(e->dim, sizeof *e->theta);
    if (e->theta == NULL)
        rc = BASIN_ENOMEM;
done:
    return rc;
}

/* Build e for claim c. A permanent failure still returns BASIN_OK, with e->error set; any other
 * nonzero code is transient (memory, a busy store) and leaves e cleared. */
static int entry_build(struct run_exec *x, const struct store_claim *c, struct exp_entry *e)
{
    struct spec_errors errs;
    char msg[MSG_CAP] = "";
    int rc, permanent = 0;

    spec_errors_init(&errs);
    memcpy(e->id, c->experiment_id, sizeof e->id);
    rc = spec_experiment_parse(c->spec, &x->cfg.app->limits, &e->exp, &errs);
    if (rc == BASIN_EINVAL) {
        permanent = 1;
        errors_text(&errs, "the stored experiment spec is invalid", msg, sizeof msg);
    }
    if (rc == BASIN_OK)
        rc = attach_records(x, c, e->exp, &errs, msg, sizeof msg, &permanent);
    if (rc == BASIN_OK) {
        spec_errors_clear(&errs);
        rc = spec_experiment_check_compat(e->exp, &x->cfg.app->limits, &errs);
        if (rc == BASIN_EINVAL) {
            permanent = 1;
            errors_text(&errs, "the dataset and the architecture do not fit together", msg,
                        sizeof msg);
        }
    }
    if (rc == BASIN_OK)
        rc = make_objective(e, msg, sizeof msg, &permanent);
    if (rc != BASIN_OK && permanent) {
        exec_log(x, "experiment %s cannot run: %s", c->experiment_id, msg);
        entry_clear(e);
        memcpy(e->id, c->experiment_id, sizeof e->id);
        e->error = basin_strdup(msg);
        rc = e->error ? BASIN_OK : BASIN_ENOMEM;
    }
    if (rc != BASIN_OK) {
        exec_log(x, "cannot set up experiment %s (will retry): %s", c->experiment_id,
                 msg[0] ? msg : "out of memory");
        entry_clear(e);
    }
    spec_errors_clear(&errs);
    return rc;
}

/* The cached entry for c's experiment, building it in the least recently used slot. */
static int entry_get(struct run_exec *x, const struct store_claim *c, struct exp_entry **out)
{
    struct exp_entry *victim = &x->cache[0];
    int rc = BASIN_OK;

    *out = NULL;
    for (size_t i = 0; i < x->n_cache; i++) {
        struct exp_entry *e = &x->cache[i];
        if (e->id[0] != '\0' && strcmp(e->id, c->experiment_id) == 0) {
            e->used = ++x->clock;
            *out = e;
            goto done;
        }
        if (victim->id[0] == '\0')
            continue; /* a free slot beats any used one */
        if (e->id[0] == '\0' || e->used < victim->used)
            victim = e;
    }
    entry_clear(victim);
    rc = entry_build(x, c, victim);
    if (rc == BASIN_OK) {
        victim->used = ++x->clock;
        *out = victim;
    }
done:
    return rc;
}

/* ---- the hooks ---- */

/* A store call failed: a fenced-out claim is lost, anything else is trouble to back off from. */
static void store_failed(struct run_exec *x, int rc, const char *what)
{
    int lost = rc == STORE_ECONFLICT || rc == STORE_ENOTFOUND;
    x->cause = lost ? CAUSE_LOST : CAUSE_STORE;
    exec_log(x, "%s for run %s failed: %s%s", what, x->run ? x->run->id : "-", store_strerror(rc),
             lost ? " (the claim is gone)" : "");
}

static void flush_points(struct run_exec *x, int64_t now)
{
    x->last_flush_ns = now;
    if (x->n_buf == 0)
        return;
    int rc =
        store_trajectory_append(x->cfg.app->store, x->run->id, x->claim->token, x->buf, x->n_buf);
    if (rc == STORE_OK)
        x->n_buf = 0;
    else
        store_failed(x, rc, "appending trajectory points");
}

static void heartbeat(struct run_exec *x, int64_t now)
{
    int cancel = 0;
    int rc = store_claim_heartbeat(x->cfg.app->store, x->claim->token, &cancel);
    x->last_heartbeat_ns = now;
    if (rc == STORE_OK) {
        if (cancel) {
            x->cancel_seen = 1;
            x->cause = CAUSE_CANCEL;
        }
    } else if (rc == STORE_ECONFLICT || rc == STORE_ENOTFOUND) {
        store_failed(x, rc, "heartbeat");
    } else {
        /* The lease outlives many heartbeat periods: try again at the next one. */
        exec_log(x, "heartbeat of claim for experiment %s failed: %s", x->claim->experiment_id,
                 store_strerror(rc));
    }
}

/* Renew the lease every heartbeat period, or early when the notifier says something changed
 * (perhaps a cancel), but not more often than every 200 ms. */
static void heartbeat_if_due(struct run_exec *x, int64_t now)
{
    int64_t since = now - x->last_heartbeat_ns;
    if (since < NOTIFY_HEARTBEAT_MIN_NS)
        return;
    uint64_t seq = notify_seq(x->cfg.app);
    if (since < x->heartbeat_ns && seq == x->seen_seq)
        return;
    x->seen_seq = seq;
    heartbeat(x, now);
}

static int should_stop(void *user, uint64_t restart)
{
    struct run_exec *x = user;
    (void)restart;
    if (x->cause != CAUSE_NONE)
        return 1;
    if (x->cfg.drain && atomic_load(x->cfg.drain)) {
        x->cause = CAUSE_DRAIN;
        return 1;
    }
    int64_t now = now_ns();
    if (x->budget_ns > 0 && now - x->run_start_ns >= x->budget_ns) {
        x->cause = CAUSE_BUDGET;
        return 1;
    }
    if (x->n_buf > 0 && now - x->last_flush_ns >= x->flush_ns)
        flush_points(x, now);
    if (x->cause == CAUSE_NONE)
        heartbeat_if_due(x, now);
    return x->cause != CAUSE_NONE;
}

static int on_point(void *user, uint64_t restart, const basin_traj_point *pt)
{
    struct run_exec *x = user;
    (void)restart;
    if (x->cause == CAUSE_LOST || x->cause == CAUSE_STORE)
        return 1;
    if (x->cause == CAUSE_DRAIN)
        return 0; /* the claim release drops this run's points anyway */
    if (x->n_buf == STORE_TRAJ_CHUNK_POINTS) {
        flush_points(x, now_ns());
        if (x->cause == CAUSE_LOST || x->cause == CAUSE_STORE)
            return 1;
    }
    struct store_traj_point *p = &x->buf[x->n_buf++];
    p->step = (int64_t)pt->step;
    p->risk = pt->risk;
    p->grad_norm = pt->grad_norm;
    p->param_norm = pt->param_norm;
    return 0;
}

/* ---- one run ---- */

static void result_init(struct store_run_result *rr, const struct store_claim *c,
                        const struct store_claimed_run *r)
{
    memset(rr, 0, sizeof *rr);
    rr->run_id = r->id;
    rr->token = c->token;
    rr->steps = -1;
    rr->initial_risk = rr->final_risk = rr->grad_norm = rr->param_norm = NAN;
}

static enum run_step report(struct run_exec *x, const struct store_run_result *rr)
{
    struct app *app = x->cfg.app;
    int rc = store_run_finish(app->store, rr);
    if (rc == STORE_ECONFLICT || rc == STORE_ENOTFOUND) {
        exec_log(x, "run %s was taken away before its result was stored (%s)", rr->run_id,
                 store_strerror(rc));
        return STEP_LOST;
    }
    if (rc != STORE_OK) {
        exec_log(x, "storing the result of run %s failed: %s", rr->run_id, store_strerror(rc));
        return STEP_RETRY;
    }
    if (rr->status == STORE_RUN_FINISHED)
        atomic_fetch_add(&app->metrics.runs_finished_total, 1);
    else if (rr->status == STORE_RUN_FAILED)
        atomic_fetch_add(&app->metrics.runs_failed_total, 1);
    app_notify(app);
    return STEP_REPORTED;
}

static void divergence_text(const basin_train_spec *spec, const basin_run_result *res, char *msg,
                            size_t cap)
{
    if (!isfinite(res->initial_risk)) {
        snprintf(msg, cap, "diverged: the risk at the initial point is not finite");
        return;
    }
    if (spec->diverge_factor > 0.0)
        snprintf(msg, cap,
                 "diverged: the risk, its gradient or the parameters became non-finite, or the "
                 "risk exceeded diverge_factor·max(R0, 1) = %.6g; the reported values are those "
                 "of the last accepted point (step %zu)",
                 spec->diverge_factor * fmax(res->initial_risk, 1.0), res->steps);
    else
        snprintf(msg, cap,
                 "diverged: the risk, its gradient or the parameters became non-finite; the "
                 "reported values are those of the last accepted point (step %zu)",
                 res->steps);
}

/* The result of a run that trained (rc = basin_train_restart's status). */
static void trained_result(struct run_exec *x, const struct exp_entry *e,
                           const basin_train_spec *spec, int rc, const basin_run_result *res,
                           struct store_run_result *rr, char *msg, size_t cap)
{
    if (rc != BASIN_OK) {
        rr->status = STORE_RUN_FAILED;
        snprintf(msg, cap, "training failed: %s", basin_strerror(rc));
        rr->error = msg;
        return;
    }
    rr->steps = (int64_t)res->steps;
    rr->initial_risk = res->initial_risk;
    rr->final_risk = res->final_risk;
    rr->grad_norm = res->grad_norm;
    rr->param_norm = res->param_norm;
    rr->params = e->theta;
    rr->n_params = e->dim;
    rr->stop_reason = basin_stop_reason_name(res->reason);
    rr->status = STORE_RUN_FINISHED;
    if (x->cause == CAUSE_CANCEL) {
        rr->status = STORE_RUN_CANCELLED;
    } else if (x->cause == CAUSE_BUDGET) {
        rr->status = STORE_RUN_FAILED;
        rr->stop_reason = "time_budget";
        snprintf(msg, cap,
                 "time budget exceeded: stopped after %.3f s at step %zu (the limit is %g s)",
                 (double)(now_ns() - x->run_start_ns) / 1e9, res->steps, x->cfg.max_run_seconds);
        rr->error = msg;
    } else if (res->reason == BASIN_STOP_DIVERGED) {
        rr->status = STORE_RUN_FAILED;
        divergence_text(spec, res, msg, cap);
        rr->error = msg;
    } else if (res->reason == BASIN_STOP_CANCELLED) {
        /* Only our hooks cancel, and each sets a cause; keep the run visible if that breaks. */
        rr->status = STORE_RUN_FAILED;
        snprintf(msg, cap, "internal error: training stopped without a cause");
        rr->error = msg;
    }
}

/* The verdict of a finished run (verdict.h): the judged — possibly polished — point becomes the
 * run's end point and its numbers the run's final_risk, grad_norm and param_norm; the values
 * the training ended with stay in the verdict's polish block (risk_before, grad_before). A
 * verifier failure other than memory leaves the verdict null with "analysis_error: ..." in the
 * run's error, and the run still finished. STEP_REPORTED means: rr is ready to be reported. */
static enum run_step judge_run(struct run_exec *x, const struct exp_entry *e,
                               const struct store_claimed_run *r, struct store_run_result *rr,
                               struct verdict_out *v, char *msg, size_t cap)
{
    int rc = verdict_judge(e->exp, e->teacher, e->theta, v);
    if (rc != BASIN_OK) {
        exec_log(x, "run %s: %s while judging its end point (will retry)", r->id,
                 basin_strerror(rc));
        return STEP_RETRY;
    }
    /* Judging is not interrupted by the hooks: renew the lease before reporting. */
    heartbeat_if_due(x, now_ns());
    if (x->cause == CAUSE_LOST)
        return STEP_LOST;
    if (v->judged) {
        rr->verdict = v->verdict;
        rr->verdict_label = v->label;
        rr->final_risk = v->risk;
        rr->grad_norm = v->grad_norm;
        rr->param_norm = v->param_norm;
    } else if (v->error[0] != '\0') {
        snprintf(msg, cap, "analysis_error: %s", v->error);
        rr->error = msg;
        exec_log(x, "run %s: no verdict: %s", r->id, v->error);
    }
    return STEP_REPORTED;
}

static enum run_step train_run(struct run_exec *x, const struct exp_entry *e,
                               const struct store_claimed_run *r)
{
    struct app *app = x->cfg.app;
    basin_train_hooks hooks = {on_point, should_stop, x};
    basin_train_spec spec = e->exp->train;
    basin_run_result res;
    struct store_run_result rr;
    char msg[MSG_CAP];

    memset(&res, 0, sizeof res);
    spec.seed = r->seed;
    x->n_buf = 0;
    x->run_start_ns = x->last_flush_ns = now_ns();
    int rc =
        basin_train_restart(&e->obj, e->net, &spec, (uint64_t)r->index, e->theta, &hooks, &res);
    if (rc == BASIN_OK)
        atomic_fetch_add(&app->metrics.train_steps_total, (uint_fast64_t)res.steps);
    if (x->cause == CAUSE_DRAIN)
        return STEP_DRAIN;
    if (rc == BASIN_ENOMEM && x->cause == CAUSE_NONE) {
        exec_log(x, "run %s: out of memory while training (will retry)", r->id);
        return STEP_RETRY;
    }
    if (x->cause != CAUSE_LOST && x->cause != CAUSE_STORE)
        flush_points(x, now_ns());
    if (x->cause == CAUSE_LOST)
        return STEP_LOST;
    if (x->cause == CAUSE_STORE)
        return STEP_RETRY;
    result_init(&rr, x->claim, r);
    trained_result(x, e, &spec, rc, &res, &rr, msg, sizeof msg);
    if (rr.status != STORE_RUN_FINISHED || !e->exp->certify_opts.enabled)
        return report(x, &rr);
    struct verdict_out v;
    enum run_step step = judge_run(x, e, r, &rr, &v, msg, sizeof msg);
    if (step == STEP_REPORTED)
        step = report(x, &rr);
    verdict_out_release(&v);
    return step;
}

static enum run_step run_one(struct run_exec *x, const struct exp_entry *e,
                             const struct store_claimed_run *r)
{
    struct store_run_result rr;

    x->run = r;
    x->cause = CAUSE_NONE;
    if (x->cfg.drain && atomic_load(x->cfg.drain))
        return STEP_DRAIN;
    heartbeat_if_due(x, now_ns());
    if (x->cause == CAUSE_LOST)
        return STEP_LOST;
    x->cause = CAUSE_NONE; /* a cancel is remembered in cancel_seen */
    result_init(&rr, x->claim, r);
    if (x->cancel_seen) {
        rr.status = STORE_RUN_CANCELLED;
        return report(x, &rr);
    }
    if (e->error != NULL) {
        rr.status = STORE_RUN_FAILED;
        rr.error = e->error;
        return report(x, &rr);
    }
    return train_run(x, e, r);
}

/* ---- the API ---- */

int run_exec_create(const struct run_exec_config *cfg, struct run_exec **out)
{
    struct run_exec *x = NULL;
    int rc = BASIN_EINVAL;

    if (out)
        *out = NULL;
    if (!cfg || !out || !cfg->app || !cfg->app->store || !(cfg->max_run_seconds >= 0.0))
        goto done;
    rc = BASIN_ENOMEM;
    x = basin_calloc(1, sizeof *x);
    if (x == NULL)
        goto done;
    x->cfg = *cfg;
    x->heartbeat_ns =
        (int64_t)(cfg->heartbeat_ms ? cfg->heartbeat_ms : DEFAULT_HEARTBEAT_MS) * 1000000LL;
    x->flush_ns = (int64_t)(cfg->flush_ms ? cfg->flush_ms : DEFAULT_FLUSH_MS) * 1000000LL;
    x->budget_ns = cfg->max_run_seconds > 0.0
                       ? (cfg->max_run_seconds < 1e9 ? (int64_t)(cfg->max_run_seconds * 1e9) : 0)
                       : 0;
    x->n_cache = cfg->cache_entries ? cfg->cache_entries : DEFAULT_CACHE_ENTRIES;
    x->cache = basin_calloc(x->n_cache, sizeof *x->cache);
    x->buf = basin_alloc_array(STORE_TRAJ_CHUNK_POINTS, sizeof *x->buf);
    if (x->cache == NULL || x->buf == NULL)
        goto done;
    rc = BASIN_OK;
done:
    if (rc == BASIN_OK)
        *out = x;
    else
        run_exec_free(x);
    return rc;
}

void run_exec_free(struct run_exec *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; x->cache != NULL && i < x->n_cache; i++)
        entry_clear(&x->cache[i]);
    basin_free(x->cache);
    basin_free(x->buf);
    basin_free(x);
}

static void release_claim(struct run_exec *x, const struct store_claim *c)
{
    int64_t n = 0;
    int rc = store_claim_release(x->cfg.app->store, c->token, &n);
    if (rc != STORE_OK)
        exec_log(x,
                 "cannot hand the claim on experiment %s back: %s (its runs stay running "
                 "until the next start-up requeues them)",
                 c->experiment_id, store_strerror(rc));
    else if (n > 0)
        app_notify(x->cfg.app);
}

int run_exec_claim(struct run_exec *x, const struct store_claim *claim,
                   enum run_exec_outcome *outcome)
{
    enum run_exec_outcome out = RUN_EXEC_DONE;
    struct exp_entry *e = NULL;

    if (!x || !claim || !outcome)
        return BASIN_EINVAL;
    x->claim = claim;
    x->run = NULL;
    x->cancel_seen = 0;
    x->last_heartbeat_ns = now_ns();
    x->seen_seq = notify_seq(x->cfg.app);
    if (entry_get(x, claim, &e) != BASIN_OK) {
        out = RUN_EXEC_RETRY;
        goto done;
    }
    for (size_t i = 0; i < claim->n_runs && out == RUN_EXEC_DONE; i++) {
        switch (run_one(x, e, &claim->runs[i])) {
        case STEP_REPORTED:
            break;
        case STEP_DRAIN:
            out = RUN_EXEC_RELEASED;
            break;
        case STEP_LOST:
            out = RUN_EXEC_LOST;
            break;
        case STEP_RETRY:
            out = RUN_EXEC_RETRY;
            break;
        }
    }
done:
    if (out == RUN_EXEC_RELEASED || out == RUN_EXEC_RETRY)
        release_claim(x, claim);
    x->claim = NULL;
    x->run = NULL;
    *outcome = out;
    return BASIN_OK;
}
