/* Analyses on the HTTP thread (analysis.h): rebuilding an experiment's net, dataset and loss from
 * its records, clustering its finished runs into basins behind a small LRU cache, and drawing the
 * function of one end point on a 1-D or 2-D grid with its activation regions.
 *
 * DESIGN
 * Cost. Handlers run on the HTTP threads, so every analysis checks its bounds first (analysis.h):
 * basins need ≤ ANALYSIS_BASINS_MAX_POINTS finished runs whose end points fit in
 * ANALYSIS_BASINS_MAX_BYTES and whose forward work points·N·P ≤ ANALYSIS_MAX_WORK; grids need
 * nx·ny·P ≤ ANALYSIS_MAX_WORK. A request over a bound is refused (422 with the numbers), never
 * sampled, so every number in an answer is about all the runs. The comparison term of leader
 * clustering (points × candidate basins at the same risk level × N × outputs) is not bounded a
 * priori; it is small unless very many distinct functions share one risk level.
 *
 * Cache. Dashboards poll /basins; recomputing a clustering of thousands of runs on each poll
 * would waste the HTTP threads. A clustering depends only on the set of finished runs (terminal
 * runs are never rewritten, and finished counts only grow) and the tolerances, so entries are
 * keyed by (store, experiment id, finished count, risk_tol, func_tol); a new finished run
 * changes the count and so the key. The spurious flags of basins are NOT cached: they depend on
 * the best point of the objective, which other experiments can improve at any time, and cost one
 * indexed query per answer. ANALYSIS_CACHE_SLOTS entries, least recently used evicted. One mutex
 * guards the table and the reference counts; the clustering itself runs outside the lock (two
 * identical concurrent misses both compute; the second insert replaces nothing that is in use).
 * Entries are immutable once published; readers hold a reference, and an evicted entry is freed
 * by whoever drops the last reference. The table is process-wide (keyed by the store pointer)
 * because struct app has no slot for it; it lives as long as the process.
 *
 * Breakpoints (1-D). The activation pattern (the side of every unit of every nonlinear
 * activation, as the forward pass uses it: z > 0, and the argmax of every max-pool window) is
 * evaluated at each grid point. Where two neighbours differ, bisection keeps the invariant
 * "pattern(lo) = pattern at the cell's left end ≠ pattern(hi)" until hi − lo ≤
 * ANALYSIS_BISECT_REL·range, and reports (lo + hi)/2, within half that of a kink; if the pattern
 * just right of it still differs from the cell's right end, the search continues from there, so
 * several kinks inside one cell are all found (a pattern that changes and changes back inside
 * one cell cannot be seen from its ends and is missed). Bisection evaluations are capped by the
 * work bound ("breakpoints_complete": false when the cap stopped it).
 * Region ids (2-D) number the distinct patterns in the order the grid is scanned (rows along x1,
 * then x0), found with an open-addressing hash table over the exact pattern words. */
#include "analysis.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/basins.h"
#include "basin/status.h"
#include "handlers.h"
#include "spurious.h"

enum { ANALYSIS_CACHE_SLOTS = 4, EVAL_BATCH = 256, MAX_CHANGES_PER_CELL = 64 };

/* ---- setup ---- */

static int task_of(const char *name, basin_task *out)
{
    static const char *const names[] = {"regression", "binary", "multiclass"};
    static const basin_task tasks[] = {BASIN_TASK_REGRESSION, BASIN_TASK_BINARY,
                                       BASIN_TASK_MULTICLASS};
    for (size_t i = 0; name != NULL && i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = tasks[i];
            return BASIN_OK;
        }
    }
    return BASIN_EINVAL;
}

/* The samples of a dataset record (n ≥ 1); BASIN_EINVAL for a record that makes no sense. */
static int dataset_from_record(const struct store_dataset *d, basin_dataset **out)
{
    size_t rank, dims[3] = {0, 0, 0}, prod = 1, nx, ny;
    basin_task task;
    int rc = BASIN_EINVAL;

    *out = NULL;
    rank = json_array_size(d->input_shape);
    if (!json_is_array(d->input_shape) || (rank != 1 && rank != 3) || d->n < 1 || d->in_dim < 1 ||
        d->y_dim < 1 || d->n_classes < 0 || !d->x || !d->y || task_of(d->task, &task) != BASIN_OK)
        goto done;
    for (size_t i = 0; i < rank; i++) {
        json_t *v = json_array_get(d->input_shape, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            goto done;
        dims[i] = (size_t)json_integer_value(v);
        if (basin_mul_size(prod, dims[i], &prod) != BASIN_OK)
            goto done;
    }
    if (prod != (size_t)d->in_dim || basin_mul_size((size_t)d->n, prod, &nx) != BASIN_OK ||
        basin_mul_size((size_t)d->n, (size_t)d->y_dim, &ny) != BASIN_OK)
        goto done;
    rc = basin_dataset_create((size_t)d->n, rank, dims, (size_t)d->y_dim, out);
    if (rc != BASIN_OK)
        goto done;
    memcpy((*out)->x, d->x, nx * sizeof(double));
    memcpy((*out)->y, d->y, ny * sizeof(double));
    (*out)->task = task;
    (*out)->n_classes = (size_t)d->n_classes;
done:
    return rc;
}

static int unreadable(struct reply *rep, const char *what)
{
    rep->log_cause = what;
    int rc =
        reply_problem(rep, 500, NULL, "a stored record of this experiment cannot be read", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

int analysis_setup_or_reply(struct app *app, struct reply *rep, const char *experiment_id,
                            struct analysis_setup **out)
{
    struct analysis_setup *s = NULL;
    struct store_architecture *ar = NULL;
    struct store_dataset *dr = NULL;
    struct spec_errors errs;
    char what[64];
    int rc = BASIN_OK, src;

    spec_errors_init(&errs);
    *out = NULL;
    s = basin_calloc(1, sizeof *s);
    if (s == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    src = store_experiment_get(app->store, experiment_id, &s->exp);
    if (src != STORE_OK) {
        snprintf(what, sizeof what, "experiment %s", experiment_id);
        rc = reply_store_error(rep, src, what);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    rc = spec_experiment_parse(s->exp->spec, &app->limits, &s->spec, &errs);
    if (rc == BASIN_EINVAL) {
        rc = unreadable(rep, "a stored experiment spec does not parse");
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    if (s->spec->arch == NULL) {
        src = store_architecture_get(app->store, s->exp->architecture_id, &ar);
        if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "the experiment's architecture");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
        rc = spec_arch_parse(ar->spec, &app->limits, &s->spec->arch, &errs);
        if (rc == BASIN_EINVAL) {
            rc = unreadable(rep, "a stored architecture spec does not parse");
            goto done;
        }
        if (rc != BASIN_OK)
            goto done;
    }
    s->arch = s->spec->arch;
    s->param_count = basin_net_param_count(s->arch->net);
    if (s->spec->dataset != NULL && s->spec->dataset->data != NULL) {
        rc = basin_dataset_clone(s->spec->dataset->data, &s->data);
        if (rc != BASIN_OK)
            goto done;
    } else if (s->spec->dataset == NULL) {
        src = store_dataset_get(app->store, s->exp->dataset_id, STORE_WITH_DATA, &dr);
        if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "the experiment's dataset");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
        if (dr->n > 0) {
            rc = dataset_from_record(dr, &s->data);
            if (rc == BASIN_EINVAL) {
                rc = unreadable(rep, "a stored dataset record is malformed");
                goto done;
            }
            if (rc != BASIN_OK)
                goto done;
            if (s->data->in_dim != basin_net_in_dim(s->arch->net)) {
                rc = unreadable(rep, "a stored dataset does not fit its experiment's net");
                goto done;
            }
        }
    }
    s->tol_rel = spurious_tol_rel(s->exp->spec);
    *out = s;
    s = NULL;
done:
    analysis_setup_free(s);
    store_architecture_free(ar);
    store_dataset_free(dr);
    spec_errors_clear(&errs);
    return rc;
}

void analysis_setup_free(struct analysis_setup *s)
{
    if (s == NULL)
        return;
    store_experiment_free(s->exp);
    spec_experiment_free(s->spec); /* owns s->arch */
    basin_dataset_free(s->data);
    basin_free(s);
}

/* ---- basins and their cache ---- */

struct cached_basins {
    struct analysis_basins pub; /* first: readers get &pub */
    const struct store *store;
    char experiment_id[STORE_ID_SIZE];
    int refs;      /* readers + 1 while in the table; guarded by cache.mu */
    uint64_t used; /* LRU clock */
};

static struct {
    pthread_mutex_t mu;
    struct cached_basins *slot[ANALYSIS_CACHE_SLOTS];
    uint64_t clock;
} cache = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

static void basins_destroy(struct cached_basins *c)
{
    if (c == NULL)
        return;
    for (size_t b = 0; b < c->pub.n_basins; b++)
        basin_free(c->pub.basins[b].members);
    basin_free(c->pub.basins);
    basin_free(c->pub.runs);
    basin_free(c);
}

/* Under cache.mu: drop one reference. */
static void unref_locked(struct cached_basins *c)
{
    if (c != NULL && --c->refs == 0)
        basins_destroy(c);
}

void analysis_basins_release(const struct analysis_basins *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&cache.mu);
    unref_locked((struct cached_basins *)(uintptr_t)b);
    pthread_mutex_unlock(&cache.mu);
}

void analysis_cache_clear(void)
{
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < ANALYSIS_CACHE_SLOTS; i++) {
        unref_locked(cache.slot[i]);
        cache.slot[i] = NULL;
    }
    pthread_mutex_unlock(&cache.mu);
}

static int same_key(const struct cached_basins *c, const struct store *st, const char *exp_id,
                    int64_t finished, double risk_tol, double func_tol)
{
    return c != NULL && c->store == st && strcmp(c->experiment_id, exp_id) == 0 &&
           c->pub.finished == finished && c->pub.risk_tol == risk_tol &&
           c->pub.func_tol == func_tol;
}

static struct cached_basins *cache_lookup(const struct store *st, const char *exp_id,
                                          int64_t finished, double risk_tol, double func_tol)
{
    struct cached_basins *hit = NULL;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < ANALYSIS_CACHE_SLOTS && hit == NULL; i++) {
        if (same_key(cache.slot[i], st, exp_id, finished, risk_tol, func_tol)) {
            hit = cache.slot[i];
            hit->refs++;
            hit->used = ++cache.clock;
        }
    }
    pthread_mutex_unlock(&cache.mu);
    return hit;
}

/* Publish c (the caller keeps its own reference): replace an entry with the same key, else the
 * least recently used slot. */
static void cache_insert(struct cached_basins *c)
{
    size_t victim = 0;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < ANALYSIS_CACHE_SLOTS; i++) {
        struct cached_basins *e = cache.slot[i];
        if (e == NULL || same_key(e, c->store, c->experiment_id, c->pub.finished, c->pub.risk_tol,
                                  c->pub.func_tol)) {
            victim = i;
            break;
        }
        if (e->used < cache.slot[victim]->used)
            victim = i;
    }
    unref_locked(cache.slot[victim]);
    c->refs++;
    c->used = ++cache.clock;
    cache.slot[victim] = c;
    pthread_mutex_unlock(&cache.mu);
}

static void count_label(struct store_label_counts *lc, const char *label)
{
    if (label[0] == '\0')
        lc->none++;
    else if (strcmp(label, "certified_minimum") == 0)
        lc->certified_minimum++;
    else if (strcmp(label, "likely_minimum") == 0)
        lc->likely_minimum++;
    else if (strcmp(label, "saddle") == 0)
        lc->saddle++;
    else if (strcmp(label, "not_converged") == 0)
        lc->not_converged++;
    else
        lc->other++;
}

/* The bounds of analysis.h for n points of s; BASIN_ERANGE / BASIN_EINVAL with why. */
static int basins_bounds(const struct analysis_setup *s, int64_t finished, char *why, size_t cap)
{
    size_t bytes = 0;
    if (s->data == NULL) {
        snprintf(why, cap,
                 "basins compare end points on the samples of the dataset; this experiment's "
                 "dataset is a population objective without samples");
        return BASIN_EINVAL;
    }
    if (finished > ANALYSIS_BASINS_MAX_POINTS) {
        snprintf(why, cap,
                 "the experiment has %lld finished runs; basins are computed for at most %d",
                 (long long)finished, ANALYSIS_BASINS_MAX_POINTS);
        return BASIN_ERANGE;
    }
    size_t n = finished > 0 ? (size_t)finished : 0;
    if (basin_mul_size(n, s->param_count, &bytes) != BASIN_OK ||
        basin_mul_size(bytes, sizeof(double), &bytes) != BASIN_OK ||
        bytes > ANALYSIS_BASINS_MAX_BYTES) {
        snprintf(why, cap,
                 "the end points of %zu runs with %zu parameters exceed the %zu MiB this "
                 "analysis may hold",
                 n, s->param_count, ANALYSIS_BASINS_MAX_BYTES >> 20);
        return BASIN_ERANGE;
    }
    double work = (double)n * (double)s->data->n * (double)s->param_count;
    if (work > ANALYSIS_MAX_WORK) {
        snprintf(why, cap,
                 "clustering %zu runs of a %zu-parameter net on %zu samples needs about %.3g "
                 "operations; the bound is %.3g",
                 n, s->param_count, s->data->n, work, ANALYSIS_MAX_WORK);
        return BASIN_ERANGE;
    }
    return BASIN_OK;
}

/* Cluster the end points into a new entry (one reference, the caller's). */
static int basins_compute(struct app *app, const struct analysis_setup *s, double risk_tol,
                          double func_tol, struct cached_basins **out, int *store_rc, char *why,
                          size_t why_cap)
{
    struct store_end_points *p = NULL;
    struct cached_basins *c = NULL;
    basin_clustering *cl = NULL;
    basin_cluster_opts opts;
    size_t keep = 0, P = s->param_count;
    int rc = BASIN_OK;

    *out = NULL;
    size_t max_points = ANALYSIS_BASINS_MAX_BYTES / sizeof(double) / P;
    if (max_points > ANALYSIS_BASINS_MAX_POINTS)
        max_points = ANALYSIS_BASINS_MAX_POINTS;
    if (max_points == 0)
        max_points = 1;
    /* a run finishing since the bounds were checked can only make p->finished larger: the
     * bounds are checked again on what was read */
    *store_rc = store_experiment_end_points(app->store, s->exp->id, max_points, P, &p);
    if (*store_rc != STORE_OK) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = basins_bounds(s, p->finished, why, why_cap);
    if (rc != BASIN_OK)
        goto done;
    c = basin_calloc(1, sizeof *c);
    if (c == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    c->store = app->store;
    snprintf(c->experiment_id, sizeof c->experiment_id, "%s", s->exp->id);
    c->refs = 1;
    c->pub.risk_tol = risk_tol;
    c->pub.func_tol = func_tol;
    c->pub.finished = p->finished;
    c->pub.skipped = p->skipped;
    /* basin_cluster refuses non-finite parameters: such runs are skipped, not fatal */
    for (size_t i = 0; i < p->n; i++) {
        int finite = 1;
        for (size_t j = 0; j < P && finite; j++)
            finite = isfinite(p->params[i * P + j]);
        if (!finite) {
            c->pub.skipped++;
            continue;
        }
        if (keep != i) {
            p->items[keep] = p->items[i];
            memmove(p->params + keep * P, p->params + i * P, P * sizeof *p->params);
        }
        keep++;
    }
    basin_cluster_defaults(&opts);
    opts.risk_tol = risk_tol;
    opts.func_tol_rel = func_tol;
    opts.count_regions = 1;
    rc = basin_cluster(s->arch->net, s->data, &s->spec->loss, keep, p->params, NULL, &opts, &cl);
    if (rc == BASIN_EINVAL) {
        snprintf(why, why_cap, "the end points cannot be clustered on this dataset and loss");
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    c->pub.n_points = keep;
    c->pub.runs = basin_alloc_array(keep > 0 ? keep : 1, sizeof *c->pub.runs);
    c->pub.basins = basin_calloc(cl->n_basins > 0 ? cl->n_basins : 1, sizeof *c->pub.basins);
    if (c->pub.runs == NULL || c->pub.basins == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (keep > 0)
        memcpy(c->pub.runs, p->items, keep * sizeof *p->items);
    for (size_t b = 0; b < cl->n_basins; b++) {
        const basin_basin_info *in = &cl->basins[b];
        struct analysis_basin *o = &c->pub.basins[b];
        o->members = basin_alloc_array(in->count > 0 ? in->count : 1, sizeof *o->members);
        if (o->members == NULL) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        c->pub.n_basins = b + 1;
        memcpy(o->members, in->members, in->count * sizeof *o->members);
        o->risk = in->risk;
        o->rep_final_risk = p->items[in->representative].final_risk;
        o->count = in->count;
        o->representative = in->representative;
        o->regions = in->regions;
        o->output_rms = in->output_rms;
        o->func_tol = in->func_tol;
        o->max_func_dist = in->max_func_dist;
        o->max_risk_gap = in->max_risk_gap;
        for (size_t m = 0; m < in->count; m++)
            count_label(&o->labels, p->items[in->members[m]].verdict_label);
    }
    *out = c;
    c = NULL;
done:
    basins_destroy(c);
    basin_clustering_free(cl);
    store_end_points_free(p);
    return rc;
}

int analysis_basins_get(struct app *app, const struct analysis_setup *s, double risk_tol,
                        double func_tol, const struct analysis_basins **out, int *hit,
                        int *store_rc, char *why, size_t why_cap)
{
    struct cached_basins *c = NULL;
    int rc = BASIN_OK;

    *out = NULL;
    *hit = 0;
    *store_rc = STORE_OK;
    rc = basins_bounds(s, s->exp->progress.finished, why, why_cap);
    if (rc != BASIN_OK)
        goto done;
    c = cache_lookup(app->store, s->exp->id, s->exp->progress.finished, risk_tol, func_tol);
    if (c != NULL) {
        *hit = 1;
        *out = &c->pub;
        goto done;
    }
    rc = basins_compute(app, s, risk_tol, func_tol, &c, store_rc, why, why_cap);
    if (rc != BASIN_OK)
        goto done;
    cache_insert(c);
    *out = &c->pub;
done:
    return rc;
}

/* ---- fitted functions ---- */

/* Where the activation pattern lives: bits for the units of nonlinear activation layers, one
 * word per max-pool window (the argmax inside it). */
struct pattern_layout {
    size_t sign_words, pool_units, words;
};

static int layout_of(const basin_net *net, struct pattern_layout *pl)
{
    size_t signs = 0;
    memset(pl, 0, sizeof *pl);
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_layer_info info;
        basin_net_layer_info(net, l, &info);
        if (info.kind == BASIN_LAYER_ACTIVATION && info.s_neg != info.s_pos) {
            if (basin_add_size(signs, info.in_dim, &signs) != BASIN_OK)
                return BASIN_ERANGE;
        } else if (info.kind == BASIN_LAYER_MAXPOOL && info.in_rank == 3) {
            if (basin_add_size(pl->pool_units, info.out_dim, &pl->pool_units) != BASIN_OK)
                return BASIN_ERANGE;
        }
    }
    pl->sign_words = signs / 32 + (signs % 32 != 0);
    if (basin_add_size(pl->sign_words, pl->pool_units, &pl->words) != BASIN_OK)
        return BASIN_ERANGE;
    return BASIN_OK;
}

/* The pattern of row `row` of the last forward pass in ws. */
static void pattern_row(const basin_net *net, const basin_net_ws *ws,
                        const struct pattern_layout *pl, size_t row, uint32_t *words)
{
    size_t bit = 0, pool = pl->sign_words;
    memset(words, 0, pl->words * sizeof *words);
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_layer_info info;
        const double *v = NULL;
        size_t rows = 0, cols = 0;
        basin_net_layer_info(net, l, &info);
        int sign = info.kind == BASIN_LAYER_ACTIVATION && info.s_neg != info.s_pos;
        int maxpool = info.kind == BASIN_LAYER_MAXPOOL && info.in_rank == 3;
        if ((!sign && !maxpool) || basin_net_ws_layer_input(ws, l, &v, &rows, &cols) != BASIN_OK ||
            row >= rows)
            continue;
        const double *z = v + row * cols;
        if (sign) {
            for (size_t j = 0; j < cols; j++, bit++)
                if (z[j] > 0)
                    words[bit / 32] |= (uint32_t)1 << (bit % 32);
            continue;
        }
        size_t size = basin_net_layer_spec(net, l)->size;
        size_t h = info.in_shape[1], w = info.in_shape[2];
        size_t oh = info.out_shape[1], ow = info.out_shape[2];
        for (size_t c = 0; c < info.out_shape[0]; c++)
            for (size_t i = 0; i < oh; i++)
                for (size_t j = 0; j < ow; j++) {
                    size_t best = 0, k = 0;
                    double top = -INFINITY;
                    for (size_t r = 0; r < size; r++)
                        for (size_t q = 0; q < size; q++, k++) {
                            double x = z[c * h * w + (i * size + r) * w + j * size + q];
                            if (x > top) {
                                top = x;
                                best = k;
                            }
                        }
                    words[pool++] = (uint32_t)best;
                }
    }
}

/* Evaluates one net at points, with values and patterns. */
struct evaluator {
    const basin_net *net;
    const double *theta;
    basin_net_ws *ws;
    struct pattern_layout pl;
    size_t in_dim, out_dim;
    double *outbuf; /* EVAL_BATCH × out_dim */
    size_t evals;   /* points evaluated one by one (bisection) */
    size_t max_evals;
};

static double value_of(const double *o, size_t k)
{
    if (k == 1)
        return o[0];
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (o[j] > o[best])
            best = j;
    return (double)best;
}

/* m ≤ EVAL_BATCH points x (m × in_dim): values[i] and patterns (m × words; may be NULL). */
static int eval_points(struct evaluator *ev, const double *x, size_t m, double *values,
                       uint32_t *patterns)
{
    int rc = basin_net_forward(ev->net, ev->ws, ev->theta, x, m, ev->outbuf);
    if (rc != BASIN_OK)
        return rc;
    for (size_t i = 0; i < m; i++) {
        values[i] = value_of(ev->outbuf + i * ev->out_dim, ev->out_dim);
        if (patterns != NULL && ev->pl.words > 0)
            pattern_row(ev->net, ev->ws, &ev->pl, i, patterns + i * ev->pl.words);
    }
    return BASIN_OK;
}

static int same_pattern(const uint32_t *a, const uint32_t *b, size_t words)
{
    return words == 0 || memcmp(a, b, words * sizeof *a) == 0;
}

/* The data range of input j widened by 10% of its span on each side. */
static void axis_range(const basin_dataset *ds, size_t j, double *lo, double *hi)
{
    if (ds == NULL || ds->n == 0) {
        *lo = -3.0;
        *hi = 3.0;
        return;
    }
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < ds->n; i++) {
        double v = ds->x[i * ds->in_dim + j];
        a = fmin(a, v);
        b = fmax(b, v);
    }
    double span = b - a;
    if (!(span > 0)) {
        *lo = a - 0.5;
        *hi = b + 0.5;
        return;
    }
    *lo = a - 0.1 * span;
    *hi = b + 0.1 * span;
}

static json_t *real_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, view_real(v[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

/* The grid lo + (hi − lo)·k/(n − 1), with both ends exact. */
static void fill_grid(double lo, double hi, size_t n, double *g)
{
    for (size_t k = 0; k < n; k++)
        g[k] = lo + (hi - lo) * ((double)k / (double)(n - 1));
    g[n - 1] = hi;
}

/* Kinks between a (pattern pa) and b (pattern pb ≠ pa): appended to br (DESIGN). scratch holds
 * 3 patterns. */
static int locate_kinks(struct evaluator *ev, double a, const uint32_t *pa, double b,
                        const uint32_t *pb, double eps, double *br, size_t *n_br, int *complete,
                        uint32_t *scratch)
{
    size_t W = ev->pl.words;
    uint32_t *pleft = scratch, *phi = scratch + W, *pm = scratch + 2 * W;
    double left = a;
    int rc = BASIN_OK;
    memcpy(pleft, pa, W * sizeof *pa);
    for (int change = 0; change < MAX_CHANGES_PER_CELL; change++) {
        double lo = left, hi = b, value;
        memcpy(phi, pb, W * sizeof *pb);
        while (hi - lo > eps) {
            double mid = lo + 0.5 * (hi - lo);
            if (!(mid > lo && mid < hi))
                break;
            if (ev->evals >= ev->max_evals) {
                *complete = 0;
                return BASIN_OK;
            }
            ev->evals++;
            rc = eval_points(ev, &mid, 1, &value, pm);
            if (rc != BASIN_OK)
                return rc;
            if (same_pattern(pm, pleft, W)) {
                lo = mid;
            } else {
                hi = mid;
                memcpy(phi, pm, W * sizeof *pm);
            }
        }
        if (*n_br >= ANALYSIS_MAX_BREAKPOINTS) {
            *complete = 0;
            return BASIN_OK;
        }
        br[(*n_br)++] = lo + 0.5 * (hi - lo);
        if (same_pattern(phi, pb, W) || !(hi < b))
            return BASIN_OK;
        left = hi;
        memcpy(pleft, phi, W * sizeof *phi);
    }
    *complete = 0;
    return rc;
}

static json_t *data_json_1d(const basin_dataset *ds)
{
    size_t n = ds != NULL ? ds->n : 0;
    if (n > ANALYSIS_DATA_SHOWN)
        n = ANALYSIS_DATA_SHOWN;
    json_t *x = json_array(), *y = json_array();
    for (size_t i = 0; x != NULL && y != NULL && i < n; i++) {
        if (json_array_append_new(x, json_real(ds->x[i * ds->in_dim])) != 0 ||
            json_array_append_new(y, json_real(ds->y[i * ds->y_dim])) != 0) {
            json_decref(x);
            x = NULL;
        }
    }
    return json_pack("{s:o, s:o, s:b}", "x", x, "y", y, "truncated",
                     ds != NULL && ds->n > ANALYSIS_DATA_SHOWN);
}

static json_t *data_json_2d(const basin_dataset *ds)
{
    size_t n = ds != NULL ? ds->n : 0;
    if (n > ANALYSIS_DATA_SHOWN)
        n = ANALYSIS_DATA_SHOWN;
    json_t *x0 = json_array(), *x1 = json_array(), *y = json_array();
    for (size_t i = 0; x0 != NULL && x1 != NULL && y != NULL && i < n; i++) {
        if (json_array_append_new(x0, json_real(ds->x[i * ds->in_dim])) != 0 ||
            json_array_append_new(x1, json_real(ds->x[i * ds->in_dim + 1])) != 0 ||
            json_array_append_new(y, json_real(ds->y[i * ds->y_dim])) != 0) {
            json_decref(x0);
            x0 = NULL;
        }
    }
    return json_pack("{s:o, s:o, s:o, s:b}", "x0", x0, "x1", x1, "y", y, "truncated",
                     ds != NULL && ds->n > ANALYSIS_DATA_SHOWN);
}

static int function_1d(struct evaluator *ev, const basin_dataset *ds, size_t nx, json_t *o)
{
    double lo, hi, *x = NULL, *y = NULL, *br = NULL;
    uint32_t *pat = NULL, *scratch = NULL;
    size_t W = ev->pl.words, n_br = 0;
    int complete = 1, rc = BASIN_OK;

    axis_range(ds, 0, &lo, &hi);
    x = basin_alloc_array(nx, sizeof *x);
    y = basin_alloc_array(nx, sizeof *y);
    br = basin_alloc_array(ANALYSIS_MAX_BREAKPOINTS, sizeof *br);
    pat = basin_alloc_array(nx * (W > 0 ? W : 1), sizeof *pat);
    scratch = basin_alloc_array(3 * (W > 0 ? W : 1), sizeof *scratch);
    if (x == NULL || y == NULL || br == NULL || pat == NULL || scratch == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    fill_grid(lo, hi, nx, x);
    for (size_t k = 0; k < nx && rc == BASIN_OK; k += EVAL_BATCH) {
        size_t m = nx - k < EVAL_BATCH ? nx - k : EVAL_BATCH;
        rc = eval_points(ev, x + k, m, y + k, pat + k * W);
    }
    double eps = ANALYSIS_BISECT_REL * (hi - lo);
    for (size_t k = 0; rc == BASIN_OK && complete && k + 1 < nx; k++) {
        if (!same_pattern(pat + k * W, pat + (k + 1) * W, W))
            rc = locate_kinks(ev, x[k], pat + k * W, x[k + 1], pat + (k + 1) * W, eps, br, &n_br,
                              &complete, scratch);
    }
    if (rc != BASIN_OK)
        goto done;
    if (json_object_set_new(o, "x", real_array(x, nx)) != 0 ||
        json_object_set_new(o, "y", real_array(y, nx)) != 0 ||
        json_object_set_new(o, "breakpoints", real_array(br, n_br)) != 0 ||
        json_object_set_new(o, "breakpoints_complete", json_boolean(complete)) != 0 ||
        json_object_set_new(o, "bisection_tol", json_real(eps)) != 0 ||
        json_object_set_new(o, "range", json_pack("[[f, f]]", lo, hi)) != 0 ||
        json_object_set_new(o, "data", data_json_1d(ds)) != 0)
        rc = BASIN_ENOMEM;
done:
    basin_free(x);
    basin_free(y);
    basin_free(br);
    basin_free(pat);
    basin_free(scratch);
    return rc;
}

/* Distinct patterns → ids in first-seen order (open addressing, exact comparison). */
struct region_map {
    size_t cap, n, words;
    size_t *slot; /* id + 1, 0 = empty */
    uint32_t *arena;
};

static uint64_t hash_words(const uint32_t *w, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static size_t region_id(struct region_map *m, const uint32_t *w)
{
    size_t i = (size_t)hash_words(w, m->words) & (m->cap - 1);
    while (m->slot[i] != 0) {
        size_t id = m->slot[i] - 1;
        if (memcmp(m->arena + id * m->words, w, m->words * sizeof *w) == 0)
            return id;
        i = (i + 1) & (m->cap - 1);
    }
    memcpy(m->arena + m->n * m->words, w, m->words * sizeof *w);
    m->slot[i] = ++m->n;
    return m->n - 1;
}

static int function_2d(struct evaluator *ev, const basin_dataset *ds, size_t nx, size_t ny,
                       json_t *o)
{
    double lo0, hi0, lo1, hi1, *g0 = NULL, *g1 = NULL, *val = NULL, xb[2 * EVAL_BATCH];
    uint32_t *pat = NULL;
    size_t W = ev->pl.words, points = nx * ny, *ids = NULL;
    struct region_map map = {0, 0, W, NULL, NULL};
    json_t *values = NULL, *regions = NULL;
    int rc = BASIN_OK;

    axis_range(ds, 0, &lo0, &hi0);
    axis_range(ds, 1, &lo1, &hi1);
    g0 = basin_alloc_array(nx, sizeof *g0);
    g1 = basin_alloc_array(ny, sizeof *g1);
    val = basin_alloc_array(points, sizeof *val);
    ids = basin_calloc(points, sizeof *ids);
    pat = basin_alloc_array(EVAL_BATCH * (W > 0 ? W : 1), sizeof *pat);
    if (g0 == NULL || g1 == NULL || val == NULL || ids == NULL || pat == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (W > 0) {
        map.cap = 1;
        while (map.cap < 2 * points)
            map.cap *= 2;
        map.slot = basin_calloc(map.cap, sizeof *map.slot);
        map.arena = basin_alloc_array(points * W, sizeof *map.arena);
        if (map.slot == NULL || map.arena == NULL) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    fill_grid(lo0, hi0, nx, g0);
    fill_grid(lo1, hi1, ny, g1);
    for (size_t p = 0; p < points && rc == BASIN_OK; p += EVAL_BATCH) {
        size_t m = points - p < EVAL_BATCH ? points - p : EVAL_BATCH;
        for (size_t i = 0; i < m; i++) {
            xb[2 * i] = g0[(p + i) % nx];
            xb[2 * i + 1] = g1[(p + i) / nx];
        }
        rc = eval_points(ev, xb, m, val + p, pat);
        for (size_t i = 0; rc == BASIN_OK && W > 0 && i < m; i++)
            ids[p + i] = region_id(&map, pat + i * W);
    }
    if (rc != BASIN_OK)
        goto done;
    values = json_array();
    regions = json_array();
    for (size_t r = 0; values != NULL && regions != NULL && r < ny; r++) {
        json_t *vr = real_array(val + r * nx, nx), *rr = json_array();
        for (size_t c = 0; rr != NULL && c < nx; c++)
            if (json_array_append_new(rr, json_integer((json_int_t)ids[r * nx + c])) != 0) {
                json_decref(rr);
                rr = NULL;
            }
        int bad = json_array_append_new(values, vr) != 0;
        bad |= json_array_append_new(regions, rr) != 0; /* both steal their value */
        if (bad) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    if (values == NULL || regions == NULL ||
        json_object_set_new(o, "x0", real_array(g0, nx)) != 0 ||
        json_object_set_new(o, "x1", real_array(g1, ny)) != 0 ||
        json_object_set(o, "values", values) != 0 ||
        json_object_set(o, "region_ids", regions) != 0 ||
        json_object_set_new(o, "regions", json_integer((json_int_t)(W > 0 ? map.n : 1))) != 0 ||
        json_object_set_new(o, "range", json_pack("[[f, f], [f, f]]", lo0, hi0, lo1, hi1)) != 0 ||
        json_object_set_new(o, "data", data_json_2d(ds)) != 0)
        rc = BASIN_ENOMEM;
done:
    json_decref(values);
    json_decref(regions);
    basin_free(g0);
    basin_free(g1);
    basin_free(val);
    basin_free(ids);
    basin_free(pat);
    basin_free(map.slot);
    basin_free(map.arena);
    return rc;
}

int analysis_function_json(const struct analysis_setup *s, const double *theta, size_t n_theta,
                           size_t nx, size_t ny, json_t **out, char *why, size_t why_cap)
{
    const basin_net *net = s->arch->net;
    struct evaluator ev;
    json_t *o = NULL;
    size_t in_dim = basin_net_in_dim(net), out_dim = basin_net_out_dim(net), points, bytes;
    int rc = BASIN_OK;

    *out = NULL;
    memset(&ev, 0, sizeof ev);
    if (in_dim != 1 && in_dim != 2) {
        snprintf(why, why_cap,
                 "the fitted function is drawn for nets with 1 or 2 inputs; this one has %zu",
                 in_dim);
        rc = BASIN_EINVAL;
        goto done;
    }
    if (n_theta != s->param_count || nx < 2 || nx > ANALYSIS_GRID_MAX ||
        (in_dim == 2 && (ny < 2 || ny > ANALYSIS_GRID_MAX))) {
        snprintf(why, why_cap, "the end point or the grid does not fit the net");
        rc = BASIN_EINVAL;
        goto done;
    }
    points = in_dim == 1 ? nx : nx * ny;
    double work = (double)points * (double)s->param_count;
    rc = layout_of(net, &ev.pl);
    if (rc == BASIN_OK && (basin_mul_size(points, ev.pl.words, &bytes) != BASIN_OK ||
                           bytes > ANALYSIS_BASINS_MAX_BYTES / sizeof(uint32_t)))
        rc = BASIN_ERANGE;
    if (rc == BASIN_OK && work > ANALYSIS_MAX_WORK)
        rc = BASIN_ERANGE;
    if (rc != BASIN_OK) {
        snprintf(why, why_cap,
                 "a %zu-point grid of a %zu-parameter net is over this server's bound for one "
                 "request (%.3g operations)",
                 points, s->param_count, ANALYSIS_MAX_WORK);
        goto done;
    }
    ev.net = net;
    ev.theta = theta;
    ev.in_dim = in_dim;
    ev.out_dim = out_dim;
    ev.outbuf = basin_alloc_array(EVAL_BATCH, out_dim * sizeof *ev.outbuf);
    if (ev.outbuf == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    ev.max_evals = (size_t)fmin(1e6, fmax(1000.0, ANALYSIS_MAX_WORK / (4.0 * s->param_count)));
    rc = basin_net_ws_create(net, EVAL_BATCH, &ev.ws);
    if (rc != BASIN_OK)
        goto done;
    int class_value = out_dim > 1;
    int logit = !class_value && (s->spec->loss.kind == BASIN_LOSS_LOGISTIC ||
                                 s->spec->loss.kind == BASIN_LOSS_HINGE);
    o = json_pack("{s:I, s:I, s:I, s:s}", "input_dim", (json_int_t)in_dim, "nx", (json_int_t)nx,
                  "ny", (json_int_t)(in_dim == 2 ? ny : 1), "value_kind",
                  class_value ? "class"
                  : logit     ? "logit"
                              : "output");
    if (o == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = in_dim == 1 ? function_1d(&ev, s->data, nx, o) : function_2d(&ev, s->data, nx, ny, o);
    if (rc != BASIN_OK)
        goto done;
    *out = o;
    o = NULL;
done:
    json_decref(o);
    basin_free(ev.outbuf);
    basin_net_ws_free(ev.ws);
    return rc;
}
