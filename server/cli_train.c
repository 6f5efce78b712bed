/* `basinlab train --spec FILE|- [--out FILE] [--threads N] [--params] [--trajectory] [--quiet]`:
 * parse an experiment spec, run all its restarts on local threads, print one JSON document.
 *
 * DESIGN
 * - Work sharing: N worker threads (default: online cores, never more than restarts) claim
 *   restart indices from one atomic counter. Each worker owns its objective (scratch memory is
 *   per objective, objective.h) and its θ buffer; the net, dataset and teacher are read-only and
 *   shared. A restart's result is written into slot [index] of a preallocated array by the one
 *   worker that claimed it, and read only after every worker is joined, so no lock is needed
 *   and the output does not depend on N or on scheduling: restart r is a pure function of
 *   (spec, r) (train.h), and OpenBLAS is pinned to one thread so that no BLAS-level split can
 *   change the order of floating-point sums either.
 * - Progress: when stderr is a terminal (and not --quiet) the main thread redraws a bar from the
 *   atomic count of finished restarts every 100 ms; otherwise it only joins.
 * - Output: nothing is written until every run is done. The JSON text is built in memory, then
 *   written to stdout or to a temporary file next to --out that is renamed over it, so a reader
 *   never sees a partial document. Runs are one line each, the rest indented, so the file is
 *   readable and still one JSON value.
 * - Exit status: 0; 2 for usage errors and invalid specs (every error on stderr as
 *   "<pointer>: <message>", stdout untouched); 1 for internal failures (out of memory, a run
 *   failing with a core error, I/O). A diverged run is not a failure of the program: it is
 *   reported with status "failed" and stop_reason "diverged" and left out of the risk levels.
 * - Verdicts: with certify.enabled (the default) the worker that trained a finished run judges
 *   its end point right away (verdict.h; deterministic, so the output still does not depend on
 *   N). A run's final_risk, grad_norm, params and trajectory stay those of training; the verdict
 *   holds the judged (possibly polished) point's numbers and the polish block says how it
 *   moved (--params adds the polished end point as "polished_params" when it moved).
 * - Summary: label_counts over the finished runs; basins by basin_cluster (basins.h) over the
 *   judged end points of the finished runs, each with its share of the finished runs and a
 *   Wilson 95% interval (spurious.h, spurious_wilson); spurious flags by the rule of spurious.h
 *   (a minimum whose risk is above the best by more than spurious_tol·max(1, |R|)), the best
 *   run as the witness. The end points are kept only while restarts × parameters stays below
 *   BASINS_MAX_VALUES; beyond that "basins" is null and "basins_error" says why. */
#include "json_out.h"
#include "cli_train.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "basin/alloc.h"
#include "basin/linfit.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "basin/train.h"
#include "basin/basins.h"
#include "limits.h"
#include "spec.h"
#include "spurious.h"
#include "verdict.h"

#define MAX_THREADS 1024
#define LINEAR_FIT_TOL 1e-9
#define BASINS_MAX_VALUES ((size_t)1 << 24) /* end points kept for the basins (128 MB) */

struct cli_opts {
    const char *spec_path;
    const char *out_path;
    size_t threads; /* 0 = online cores */
    int params, trajectory, quiet;
};

struct run_slot {
    int rc; /* basin_train_restart status (or the worker's set-up failure, or ENOMEM judging) */
    basin_run_result res;
    basin_traj_point *traj;
    size_t n_traj, cap_traj;
    int traj_oom;
    struct verdict_out v; /* the verdict of a finished run (judged = 0 when none) */
    double train_s, certify_s;
};

struct job {
    const struct spec_experiment *exp;
    const basin_net *net;
    const basin_teacher *teacher; /* teacher_gaussian datasets; else NULL */
    size_t dim, restarts;
    struct run_slot *runs;
    double *params; /* restarts × dim when --params */
    double *ends;   /* restarts × dim: the judged end points, for the basins (NULL: none) */
    int want_traj;
    atomic_size_t next;
    atomic_size_t done;
};

struct worker {
    struct job *job;
    struct run_slot *cur;
    pthread_t tid;
    int started;
};

void cli_train_usage(FILE *out)
{
    fputs("usage: basinlab train --spec FILE|- [--out FILE] [--threads N] [--params]\n"
          "                      [--trajectory] [--quiet]\n"
          "  --spec FILE    the experiment spec (JSON; - reads stdin)\n"
          "  --out FILE     write the result there (atomically) instead of stdout\n"
          "  --threads N    worker threads (default: the number of cores)\n"
          "  --params       include every run's end point\n"
          "  --trajectory   include every run's trajectory [step, risk, grad_norm, param_norm]\n"
          "  --quiet        no progress bar on stderr\n",
          out);
}

/* ---- arguments ---- */

static int parse_count(const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s == NULL || *s < '0' || *s > '9')
        return BASIN_EINVAL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > MAX_THREADS)
        return BASIN_EINVAL;
    *out = (size_t)v;
    return BASIN_OK;
}

/* "--name value" or "--name=value"; *i advances past what was consumed. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return NULL;
    (*i)++;
    return argv[*i];
}

static int parse_args(int argc, char **argv, struct cli_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--params") == 0) {
            o->params = 1;
        } else if (strcmp(a, "--trajectory") == 0) {
            o->trajectory = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if ((v = option_value(argc, argv, &i, "--spec")) != NULL) {
            o->spec_path = v;
        } else if ((v = option_value(argc, argv, &i, "--out")) != NULL) {
            o->out_path = v;
        } else if ((v = option_value(argc, argv, &i, "--threads")) != NULL) {
            if (parse_count(v, &o->threads) != BASIN_OK) {
                fprintf(stderr, "basinlab train: --threads must be an integer in [1, %d]\n",
                        MAX_THREADS);
                return BASIN_EINVAL;
            }
        } else {
            fprintf(stderr, "basinlab train: unexpected argument '%s'\n", a);
            return BASIN_EINVAL;
        }
    }
    if (o->spec_path == NULL) {
        fprintf(stderr, "basinlab train: --spec is required\n");
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

/* ---- input ---- */

/* Read all of f, failing with BASIN_ERANGE past max bytes. *out is basin_malloc'd. */
static int read_all(FILE *f, size_t max, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = basin_malloc(cap);
    int rc = BASIN_OK;
    if (buf == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                rc = BASIN_ERANGE;
                goto done;
            }
            char *grown = basin_realloc(buf, cap * 2);
            if (grown == NULL) {
                rc = BASIN_ENOMEM;
                goto done;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        rc = BASIN_EPARSE;
    else if (n > max)
        rc = BASIN_ERANGE;
done:
    if (rc != BASIN_OK) {
        basin_free(buf);
        buf = NULL;
    }
    *out = buf;
    *len = n;
    return rc;
}

/* Returns a CLI exit status; *exp set on success. */
static int load_spec(const struct cli_opts *o, const struct limits *lim,
                     struct spec_experiment **exp)
{
    struct spec_errors errs;
    char *text = NULL;
    size_t len = 0;
    int status = CLI_EXIT_OK;
    FILE *f = strcmp(o->spec_path, "-") == 0 ? stdin : fopen(o->spec_path, "rb");
    spec_errors_init(&errs);
    if (f == NULL) {
        fprintf(stderr, "basinlab train: cannot open %s: %s\n", o->spec_path, strerror(errno));
        status = CLI_EXIT_USAGE;
        goto done;
    }
    int rc = read_all(f, lim->max_body_bytes, &text, &len);
    if (f != stdin)
        fclose(f);
    if (rc != BASIN_OK) {
        if (rc == BASIN_ERANGE)
            fprintf(stderr, "(root): the spec is larger than the limit of %zu bytes\n",
                    lim->max_body_bytes);
        else
            fprintf(stderr, "basinlab train: cannot read %s: %s\n", o->spec_path,
                    basin_strerror(rc));
        status = rc == BASIN_ENOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_USAGE;
        goto done;
    }
    rc = spec_experiment_parse_text(text, len, lim, exp, &errs);
    if (rc == BASIN_ENOMEM) {
        fprintf(stderr, "basinlab train: out of memory while reading the spec\n");
        status = CLI_EXIT_INTERNAL;
    } else if (rc != BASIN_OK) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s: %s\n", errs.items[i].pointer[0] ? errs.items[i].pointer : "(root)",
                    errs.items[i].message);
        if (errs.dropped > 0)
            fprintf(stderr, "(and %zu more errors)\n", errs.dropped);
        status = CLI_EXIT_USAGE;
    }
done:
    basin_free(text);
    spec_errors_clear(&errs);
    return status;
}

/* What only the server can do. */
static int offline_checks(const struct spec_experiment *exp)
{
    int status = CLI_EXIT_OK;
    if (exp->dataset_id != NULL) {
        fprintf(stderr, "/dataset_id: datasets by id need the server (basinlab serve); "
                        "give the dataset inline\n");
        status = CLI_EXIT_USAGE;
    }
    if (exp->architecture_id != NULL) {
        fprintf(stderr, "/architecture_id: architectures by id need the server (basinlab "
                        "serve); give the architecture inline\n");
        status = CLI_EXIT_USAGE;
    }
    return status;
}

/* ---- training ---- */

static int on_point(void *user, uint64_t restart, const basin_traj_point *pt)
{
    struct worker *w = user;
    struct run_slot *s = w->cur;
    (void)restart;
    if (s->n_traj == s->cap_traj) {
        size_t cap = s->cap_traj ? s->cap_traj * 2 : 64;
        basin_traj_point *grown = basin_realloc(s->traj, cap * sizeof *grown);
        if (grown == NULL) {
            s->traj_oom = 1;
            return 1; /* cancel: the run is reported as an internal failure */
        }
        s->traj = grown;
        s->cap_traj = cap;
    }
    s->traj[s->n_traj++] = *pt;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_failed(const struct run_slot *s)
{
    return s->res.reason == BASIN_STOP_DIVERGED || s->res.reason == BASIN_STOP_CANCELLED;
}

/* A finished run, as the summary counts them: not failed, with a finite final risk. */
static int run_finished(const struct run_slot *s)
{
    return !run_failed(s) && isfinite(s->res.final_risk);
}

static int make_objective(const struct job *job, basin_objective *obj)
{
    const struct spec_experiment *exp = job->exp;
    if (job->teacher != NULL)
        return basin_teacher_objective(job->teacher, exp->arch->layers[0].units, obj);
    return basin_objective_empirical(job->net, exp->dataset->data, &exp->loss, exp->l2,
                                     exp->max_batch, obj);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct job *job = w->job;
    const struct spec_experiment *exp = job->exp;
    basin_objective obj;
    basin_train_hooks hooks = {on_point, NULL, w};
    double *theta = NULL;
    memset(&obj, 0, sizeof obj);
    int setup = make_objective(job, &obj);
    if (setup == BASIN_OK && obj.dim != job->dim)
        setup = BASIN_EINVAL;
    if (setup == BASIN_OK) {
        theta = basin_alloc_array(job->dim, sizeof *theta);
        if (theta == NULL)
            setup = BASIN_ENOMEM;
    }
    for (;;) {
        size_t r = atomic_fetch_add(&job->next, 1);
        if (r >= job->restarts)
            break;
        struct run_slot *slot = &job->runs[r];
        slot->rc = setup;
        if (setup == BASIN_OK) {
            if (exp->train.init.kind == BASIN_INIT_GIVEN)
                memcpy(theta, exp->given_params, job->dim * sizeof *theta);
            w->cur = slot;
            double t0 = now_s();
            slot->rc = basin_train_restart(&obj, job->net, &exp->train, r, theta,
                                           job->want_traj ? &hooks : NULL, &slot->res);
            double t1 = now_s();
            slot->train_s = t1 - t0;
            if (slot->rc == BASIN_OK && job->params != NULL)
                memcpy(job->params + r * job->dim, theta, job->dim * sizeof *theta);
            if (slot->rc == BASIN_OK && run_finished(slot)) {
                slot->rc = verdict_judge(exp, job->teacher, theta, &slot->v);
                slot->certify_s = now_s() - t1;
                if (slot->rc == BASIN_OK && job->ends != NULL)
                    memcpy(job->ends + r * job->dim, theta, job->dim * sizeof *theta);
            }
        }
        atomic_fetch_add(&job->done, 1);
    }
    basin_free(theta);
    basin_objective_release(&obj);
    return NULL;
}

static void draw_progress(size_t done, size_t total, double elapsed)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    size_t fill = total ? done * WIDTH / total : WIDTH;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\rtraining [%s] %zu/%zu restarts  %.1f s", bar, done, total, elapsed);
    fflush(stderr);
}

/* Threads that fail to start are harmless: the started ones claim every restart, and when
 * none starts the calling thread does the work itself. */
static int run_workers(struct job *job, size_t threads, int progress, double t0)
{
    struct worker *workers = basin_calloc(threads, sizeof *workers);
    if (workers == NULL)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < threads; i++) {
        workers[i].job = job;
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0)
            break;
        workers[i].started = 1;
    }
    if (!workers[0].started)
        worker_main(&workers[0]);
    while (progress && atomic_load(&job->done) < job->restarts) {
        draw_progress(atomic_load(&job->done), job->restarts, now_s() - t0);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < threads; i++)
        if (workers[i].started)
            pthread_join(workers[i].tid, NULL);
    if (progress) {
        draw_progress(job->restarts, job->restarts, now_s() - t0);
        fputc('\n', stderr);
    }
    basin_free(workers);
    return BASIN_OK;
}

/* ---- output ---- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *grown = basin_realloc(b->p, cap);
        if (grown == NULL) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static int dump_cb(const char *s, size_t n, void *data)
{
    struct buf *b = data;
    buf_add(b, s, n);
    return b->oom ? -1 : 0;
}

/* Append `"key": <value>` (compact), stealing value; NULL value means out of memory. */
static void buf_member(struct buf *b, const char *indent, const char *key, json_t *value, int last)
{
    if (value == NULL) {
        b->oom = 1;
        return;
    }
    buf_puts(b, indent);
    buf_puts(b, "\"");
    buf_puts(b, key);
    buf_puts(b, "\": ");
    if (json_write_compact(value, dump_cb, b) != 0)
        b->oom = 1;
    buf_puts(b, last ? "\n" : ",\n");
    json_decref(value);
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void put(json_t *o, const char *key, json_t *v, int *ok)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        *ok = 0;
}

/* The spurious judgement of the runs (spurious.h's rule, within this experiment): best is the
 * lowest risk of a finished run (the judged risk when there is a verdict). */
struct spur {
    double tol_rel;
    int have_best;
    size_t best_run;
    double best_risk;
};

/* The risk a finished run is judged by: its verdict's, else the training's. */
static double judged_risk(const struct run_slot *s)
{
    return s->v.judged ? s->v.risk : s->res.final_risk;
}

/* 1 = a minimum (certified or likely), 0 = not (saddle, not converged), -1 = unknown. */
static int run_minimum(const struct run_slot *s)
{
    if (!s->v.judged)
        return -1;
    return strcmp(s->v.label, "certified_minimum") == 0 ||
           strcmp(s->v.label, "likely_minimum") == 0;
}

static void spur_init(const struct job *job, struct spur *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->tol_rel = job->exp->certify_opts.spurious_tol;
    for (size_t r = 0; r < job->restarts; r++) {
        const struct run_slot *s = &job->runs[r];
        if (!run_finished(s))
            continue;
        double R = judged_risk(s);
        if (isfinite(R) && (!sp->have_best || R < sp->best_risk)) {
            sp->have_best = 1;
            sp->best_run = r;
            sp->best_risk = R;
        }
    }
}

/* R above the best by more than the tolerance (so that the best is a witness). */
static int spur_above(const struct spur *sp, double R)
{
    return sp->have_best && isfinite(R) && R - sp->best_risk > sp->tol_rel * fmax(1.0, fabs(R));
}

/* flag: 1 spurious, 0 not, -1 unknown (no verdict, or not finished). */
static int spur_flag(const struct spur *sp, const struct run_slot *s)
{
    int minimum = run_finished(s) ? run_minimum(s) : -1;
    if (minimum < 0)
        return -1;
    return minimum && spur_above(sp, judged_risk(s));
}

static json_t *spurious_json(const struct spur *sp, const struct run_slot *s)
{
    int flag = spur_flag(sp, s), above = run_finished(s) && spur_above(sp, judged_risk(s));
    double R = judged_risk(s);
    return json_pack("{s:o, s:o, s:o}", "flag", flag < 0 ? json_null() : json_boolean(flag),
                     "witness_restart",
                     above ? json_integer((json_int_t)sp->best_run) : json_null(), "gap",
                     run_finished(s) && sp->have_best ? num(R - sp->best_risk) : json_null());
}

static json_t *run_json(const struct job *job, const struct spur *sp, size_t r)
{
    const struct run_slot *s = &job->runs[r];
    const basin_run_result *res = &s->res;
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "restart", json_integer((json_int_t)r), &ok);
    put(o, "seed", json_integer((json_int_t)job->exp->train.seed), &ok);
    put(o, "status", json_string(run_failed(s) ? "failed" : "finished"), &ok);
    put(o, "stop_reason", json_string(basin_stop_reason_name(res->reason)), &ok);
    put(o, "steps", json_integer((json_int_t)res->steps), &ok);
    put(o, "initial_risk", num(res->initial_risk), &ok);
    put(o, "final_risk", num(res->final_risk), &ok);
    put(o, "grad_norm", num(res->grad_norm), &ok);
    put(o, "param_norm", num(res->param_norm), &ok);
    if (job->params != NULL) {
        json_t *p = json_array();
        for (size_t i = 0; p != NULL && ok && i < job->dim; i++)
            if (json_array_append_new(p, num(job->params[r * job->dim + i])) != 0)
                ok = 0;
        put(o, "params", p, &ok);
    }
    if (job->params != NULL && s->v.moved && job->ends != NULL) {
        json_t *p = json_array();
        for (size_t i = 0; p != NULL && ok && i < job->dim; i++)
            if (json_array_append_new(p, num(job->ends[r * job->dim + i])) != 0)
                ok = 0;
        put(o, "polished_params", p, &ok);
    }
    if (s->v.judged) {
        put(o, "verdict", json_incref(s->v.verdict), &ok);
    } else {
        put(o, "verdict", json_null(), &ok);
        if (s->v.error[0] != '\0')
            put(o, "analysis_error", json_string(s->v.error), &ok);
    }
    put(o, "spurious", spurious_json(sp, s), &ok);
    if (job->want_traj) {
        json_t *t = json_array();
        for (size_t i = 0; t != NULL && ok && i < s->n_traj; i++) {
            const basin_traj_point *pt = &s->traj[i];
            json_t *row = json_pack("[I, o, o, o]", (json_int_t)pt->step, num(pt->risk),
                                    num(pt->grad_norm), num(pt->param_norm));
            if (row == NULL || json_array_append_new(t, row) != 0)
                ok = 0;
        }
        put(o, "trajectory", t, &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const label_names[] = {"certified_minimum", "likely_minimum", "saddle",
                                          "not_converged"};
#define N_LABELS (sizeof label_names / sizeof label_names[0])

/* Counts by verdict label of the finished runs among `runs` (all when runs == NULL), "none"
 * for those without a verdict. */
static json_t *label_counts_json(const struct job *job, const size_t *runs, size_t n)
{
    json_int_t counts[N_LABELS + 1] = {0};
    size_t total = runs != NULL ? n : job->restarts;
    for (size_t i = 0; i < total; i++) {
        const struct run_slot *s = &job->runs[runs != NULL ? runs[i] : i];
        if (!run_finished(s))
            continue;
        size_t k = N_LABELS;
        for (size_t l = 0; s->v.judged && l < N_LABELS; l++)
            if (strcmp(s->v.label, label_names[l]) == 0)
                k = l;
        counts[k]++;
    }
    json_t *o = json_object();
    int ok = o != NULL;
    for (size_t l = 0; l < N_LABELS; l++)
        put(o, label_names[l], json_integer(counts[l]), &ok);
    put(o, "none", json_integer(counts[N_LABELS]), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *wilson_json(size_t k, size_t n)
{
    double lo, hi;
    if (n == 0)
        return json_null();
    spurious_wilson((int64_t)k, (int64_t)n, SPURIOUS_WILSON_Z, &lo, &hi);
    return json_pack("[f, f]", lo, hi);
}

static json_t *sizes_json(const size_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_integer((json_int_t)v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* One basin; point indices are mapped to restart indices through `runs`. */
static json_t *basin_json(const struct job *job, const struct spur *sp, const basin_clustering *cl,
                          size_t b, const size_t *runs, size_t *members)
{
    const basin_basin_info *bi = &cl->basins[b];
    const basin_basin_info *best = &cl->basins[cl->lowest];
    size_t rep = runs[bi->representative];
    for (size_t i = 0; i < bi->count; i++)
        members[i] = runs[bi->members[i]];
    /* the rule of spurious.h on the basin's (data-term) risk against the lowest basin's */
    int above = bi->risk - best->risk > sp->tol_rel * fmax(1.0, fabs(bi->risk));
    int minimum = run_minimum(&job->runs[rep]);
    json_t *o = json_object();
    int ok = o != NULL;
    put(o, "index", json_integer((json_int_t)b), &ok);
    put(o, "risk", num(bi->risk), &ok);
    put(o, "count", json_integer((json_int_t)bi->count), &ok);
    put(o, "share", num((double)bi->count / (double)cl->n_points), &ok);
    put(o, "share_ci", wilson_json(bi->count, cl->n_points), &ok);
    put(o, "representative", json_integer((json_int_t)rep), &ok);
    put(o, "label", job->runs[rep].v.judged ? json_string(job->runs[rep].v.label) : json_null(),
        &ok);
    put(o, "label_counts", label_counts_json(job, members, bi->count), &ok);
    put(o, "members", sizes_json(members, bi->count), &ok);
    put(o, "regions", bi->regions > 0 ? json_integer((json_int_t)bi->regions) : json_null(), &ok);
    put(o, "max_func_dist", num(bi->max_func_dist), &ok);
    put(o, "gap", num(bi->risk - best->risk), &ok);
    put(o, "spurious",
        !above        ? json_false()
        : minimum < 0 ? json_null()
                      : json_boolean(minimum),
        &ok);
    put(o, "witness_restart",
        above ? json_integer((json_int_t)runs[best->representative]) : json_null(), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "basins" (and "basins_error" when they could not be computed) into the summary o. */
static int basins_into(json_t *o, const struct job *job, const struct spur *sp)
{
    const struct spec_experiment *exp = job->exp;
    basin_clustering *cl = NULL;
    basin_cluster_opts co;
    size_t *runs = basin_alloc_array(job->restarts, sizeof *runs);
    size_t *members = basin_alloc_array(job->restarts, sizeof *members);
    double *pts = NULL;
    const char *why = NULL;
    size_t n = 0;
    int ok = 1, rc = BASIN_OK;

    basin_cluster_defaults(&co);
    if (runs == NULL || members == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (exp->dataset->data == NULL) {
        why = "teacher_gaussian has no samples to compare functions on (basins.h)";
        goto done;
    }
    if (job->ends == NULL) {
        why = "restarts x parameters is too large to keep every end point";
        goto done;
    }
    for (size_t r = 0; r < job->restarts; r++)
        if (run_finished(&job->runs[r]))
            runs[n++] = r;
    pts = basin_alloc_array(n > 0 ? n * job->dim : 1, sizeof *pts);
    if (pts == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(pts + i * job->dim, job->ends + runs[i] * job->dim, job->dim * sizeof *pts);
    rc = basin_cluster(job->net, exp->dataset->data, &exp->loss, n, pts, NULL, &co, &cl);
    if (rc != BASIN_OK && rc != BASIN_ENOMEM) {
        why = basin_strerror(rc);
        rc = BASIN_OK;
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    json_t *arr = json_array();
    for (size_t b = 0; arr != NULL && ok && b < cl->n_basins; b++)
        if (json_array_append_new(arr, basin_json(job, sp, cl, b, runs, members)) != 0)
            ok = 0;
    put(o, "basins", arr, &ok);
    put(o, "basin_options",
        json_pack("{s:f, s:f}", "risk_tol", co.risk_tol, "func_tol_rel", co.func_tol_rel), &ok);
done:
    if (rc == BASIN_OK && why != NULL) {
        put(o, "basins", json_null(), &ok);
        put(o, "basins_error", json_string(why), &ok);
    }
    basin_clustering_free(cl);
    basin_free(pts);
    basin_free(runs);
    basin_free(members);
    return rc != BASIN_OK || !ok ? BASIN_ENOMEM : BASIN_OK;
}

/* label_counts, the spurious count and share (Wilson 95%) over the finished runs, basins, and
 * the time spent training and judging (summed over runs). */
static int verdicts_into(json_t *o, const struct job *job, const struct spur *sp)
{
    size_t finished = 0, spurious = 0, minima = 0;
    double train_s = 0, certify_s = 0;
    int ok = 1;
    for (size_t r = 0; r < job->restarts; r++) {
        const struct run_slot *s = &job->runs[r];
        train_s += s->train_s;
        certify_s += s->certify_s;
        if (!run_finished(s))
            continue;
        finished++;
        minima += run_minimum(s) == 1;
        spurious += spur_flag(sp, s) == 1;
    }
    put(o, "label_counts", label_counts_json(job, NULL, 0), &ok);
    put(o, "minima_count", json_integer((json_int_t)minima), &ok);
    put(o, "spurious_count", json_integer((json_int_t)spurious), &ok);
    put(o, "spurious_share", finished ? num((double)spurious / (double)finished) : json_null(),
        &ok);
    put(o, "spurious_share_ci", wilson_json(spurious, finished), &ok);
    put(o, "spurious_tol", num(sp->tol_rel), &ok);
    /* best_risk above is the training's; the spurious flags compare judged risks */
    put(o, "best_restart", sp->have_best ? json_integer((json_int_t)sp->best_run) : json_null(),
        &ok);
    put(o, "best_judged_risk", sp->have_best ? num(sp->best_risk) : json_null(), &ok);
    if (ok && basins_into(o, job, sp) != BASIN_OK)
        ok = 0;
    put(o, "train_s", num(train_s), &ok);
    put(o, "certify_s", num(certify_s), &ok);
    return ok ? BASIN_OK : BASIN_ENOMEM;
}

/* Final risks of the finished runs grouped into levels: sorted, split wherever consecutive
 * risks differ by more than max(1e-6, 1e-3·risk). Each level reports its lowest risk. */
static json_t *summary_json(const struct job *job, const struct spur *sp, double elapsed)
{
    double *risks = basin_alloc_array(job->restarts, sizeof *risks);
    json_t *o = json_object(), *levels = json_array();
    size_t m = 0, failed = 0;
    int ok = risks != NULL && o != NULL && levels != NULL;
    for (size_t r = 0; ok && r < job->restarts; r++) {
        const struct run_slot *s = &job->runs[r];
        if (run_failed(s) || !isfinite(s->res.final_risk))
            failed++;
        else
            risks[m++] = s->res.final_risk;
    }
    if (ok)
        qsort(risks, m, sizeof *risks, cmp_double);
    for (size_t i = 0; ok && i < m;) {
        size_t j = i + 1;
        while (j < m && risks[j] - risks[j - 1] <= fmax(1e-6, 1e-3 * risks[j]))
            j++;
        json_t *level =
            json_pack("{s:o, s:I}", "risk", num(risks[i]), "count", (json_int_t)(j - i));
        if (level == NULL || json_array_append_new(levels, level) != 0)
            ok = 0;
        i = j;
    }
    if (ok) {
        put(o, "best_risk", m > 0 ? num(risks[0]) : json_null(), &ok);
        put(o, "finished", json_integer((json_int_t)m), &ok);
        put(o, "failed", json_integer((json_int_t)failed), &ok);
        put(o, "risk_levels", levels, &ok);
        levels = NULL;
        if (ok && verdicts_into(o, job, sp) != BASIN_OK)
            ok = 0;
        put(o, "elapsed_s", num(elapsed), &ok);
    }
    json_decref(levels);
    basin_free(risks);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *dataset_json(const struct spec_experiment *exp)
{
    json_t *o = spec_dataset_summary(exp->dataset);
    const basin_dataset *ds = exp->dataset->data;
    if (o == NULL)
        return NULL;
    json_t *lf = json_null();
    double risk = 0;
    int exact = 0, fittable = 0;
    if (ds != NULL && basin_linear_fit_risk(ds, &exp->loss, basin_net_out_dim(exp->arch->net),
                                            LINEAR_FIT_TOL, &risk, &exact, &fittable) == BASIN_OK) {
        json_decref(lf);
        lf = json_pack("{s:o, s:b, s:b}", "risk", num(risk), "exact", exact, "linearly_fittable",
                       fittable);
    }
    if (lf == NULL || json_object_set_new(o, "linear_fit", lf) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int build_output(const struct job *job, double elapsed, struct buf *b)
{
    const struct spec_experiment *exp = job->exp;
    struct spur sp;
    spur_init(job, &sp);
    buf_puts(b, "{\n");
    buf_member(b, "  ", "basinlab", json_string(BASINLAB_VERSION), 0);
    buf_member(b, "  ", "spec", spec_experiment_to_json(exp), 0);
    buf_member(b, "  ", "dataset", dataset_json(exp), 0);
    buf_member(b, "  ", "param_count", json_integer((json_int_t)job->dim), 0);
    buf_puts(b, "  \"runs\": [\n");
    for (size_t r = 0; r < job->restarts && !b->oom; r++) {
        json_t *run = run_json(job, &sp, r);
        if (run == NULL) {
            b->oom = 1;
            break;
        }
        buf_puts(b, "    ");
        if (json_write_compact(run, dump_cb, b) != 0)
            b->oom = 1;
        buf_puts(b, r + 1 < job->restarts ? ",\n" : "\n");
        json_decref(run);
    }
    buf_puts(b, "  ],\n");
    buf_member(b, "  ", "summary", summary_json(job, &sp, elapsed), 1);
    buf_puts(b, "}\n");
    return b->oom ? BASIN_ENOMEM : BASIN_OK;
}

static int write_fd_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write straight into something that is not a regular file: /dev/null, a FIFO, a terminal. */
static int write_special(const char *path, const struct buf *b)
{
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    int status = CLI_EXIT_INTERNAL;
    if (fd < 0) {
        fprintf(stderr, "basinlab train: cannot open %s: %s\n", path, strerror(errno));
        goto done;
    }
    if (write_fd_all(fd, b->p, b->len) != 0) {
        fprintf(stderr, "basinlab train: cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }
    status = CLI_EXIT_OK;
done:
    if (fd >= 0 && close(fd) != 0 && status == CLI_EXIT_OK) {
        fprintf(stderr, "basinlab train: cannot write %s: %s\n", path, strerror(errno));
        status = CLI_EXIT_INTERNAL;
    }
    return status;
}

/* Write to path through a temporary file in the same directory and rename(2), which is atomic.
 * Only for a regular file (or a new one): renaming over /dev/null or a FIFO would replace the
 * device or pipe with a regular file, so those are written in place. */
static int write_output(const char *path, const struct buf *b)
{
    if (path == NULL) {
        if (write_fd_all(STDOUT_FILENO, b->p, b->len) != 0) {
            fprintf(stderr, "basinlab train: cannot write stdout: %s\n", strerror(errno));
            return CLI_EXIT_INTERNAL;
        }
        return CLI_EXIT_OK;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return write_special(path, b);
    size_t n = strlen(path) + sizeof ".tmpXXXXXX";
    char *tmp = basin_malloc(n);
    int status = CLI_EXIT_INTERNAL, fd = -1;
    if (tmp == NULL) {
        fprintf(stderr, "basinlab train: out of memory\n");
        goto done;
    }
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "basinlab train: cannot create %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    if (write_fd_all(fd, b->p, b->len) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "basinlab train: cannot write %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "basinlab train: cannot write %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "basinlab train: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        goto done;
    }
    status = CLI_EXIT_OK;
done:
    if (fd >= 0)
        close(fd);
    if (status != CLI_EXIT_OK && tmp != NULL)
        unlink(tmp);
    basin_free(tmp);
    return status;
}

/* ---- the command ---- */

static int make_teacher(const struct spec_dataset *ds, basin_teacher **out)
{
    const struct spec_teacher_gaussian *tg = &ds->tg;
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

/* Fails with a message when any run ended in a core error rather than a stopping rule. */
static int check_runs(const struct job *job)
{
    for (size_t r = 0; r < job->restarts; r++) {
        const struct run_slot *s = &job->runs[r];
        if (s->traj_oom) {
            fprintf(stderr, "basinlab train: restart %zu: out of memory for its trajectory\n", r);
            return CLI_EXIT_INTERNAL;
        }
        if (s->rc != BASIN_OK) {
            fprintf(stderr, "basinlab train: restart %zu failed: %s\n", r, basin_strerror(s->rc));
            return CLI_EXIT_INTERNAL;
        }
    }
    return CLI_EXIT_OK;
}

static size_t default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (size_t)(n > MAX_THREADS ? MAX_THREADS : n);
}

static int prepare_job(const struct cli_opts *o, const struct spec_experiment *exp,
                       basin_teacher **teacher, struct job *job)
{
    int rc = BASIN_OK;
    memset(job, 0, sizeof *job);
    job->exp = exp;
    job->net = exp->arch->net;
    job->dim = basin_net_param_count(job->net);
    job->restarts = exp->restarts;
    job->want_traj = o->trajectory;
    atomic_init(&job->next, 0);
    atomic_init(&job->done, 0);
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        rc = make_teacher(exp->dataset, teacher);
        if (rc != BASIN_OK)
            return rc;
        job->teacher = *teacher;
    }
    job->runs = basin_calloc(job->restarts, sizeof *job->runs);
    if (job->runs == NULL)
        return BASIN_ENOMEM;
    size_t count;
    int fits = basin_mul_size(job->restarts, job->dim, &count) == BASIN_OK;
    if (o->params) {
        if (!fits)
            return BASIN_ERANGE;
        job->params = basin_alloc_array(count, sizeof *job->params);
        if (job->params == NULL)
            return BASIN_ENOMEM;
    }
    if (fits && count <= BASINS_MAX_VALUES) {
        job->ends = basin_alloc_array(count, sizeof *job->ends);
        if (job->ends == NULL)
            return BASIN_ENOMEM;
    }
    return BASIN_OK;
}

static void release_job(struct job *job)
{
    if (job->runs != NULL)
        for (size_t r = 0; r < job->restarts; r++) {
            basin_free(job->runs[r].traj);
            verdict_out_release(&job->runs[r].v);
        }
    basin_free(job->runs);
    basin_free(job->params);
    basin_free(job->ends);
}

int cli_train_main(int argc, char **argv)
{
    struct cli_opts o;
    struct limits lim;
    struct spec_experiment *exp = NULL;
    basin_teacher *teacher = NULL;
    struct job job;
    struct buf out = {NULL, 0, 0, 0};
    double t0 = now_s();
    int status, rc;

    memset(&job, 0, sizeof job);
    limits_defaults(&lim);
    if (parse_args(argc, argv, &o) != BASIN_OK) {
        cli_train_usage(stderr);
        status = CLI_EXIT_USAGE;
        goto done;
    }
    status = load_spec(&o, &lim, &exp);
    if (status != CLI_EXIT_OK)
        goto done;
    status = offline_checks(exp);
    if (status != CLI_EXIT_OK)
        goto done;
    rc = prepare_job(&o, exp, &teacher, &job);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab train: cannot set up the runs: %s\n", basin_strerror(rc));
        status = CLI_EXIT_INTERNAL;
        goto done;
    }
    size_t threads = o.threads ? o.threads : default_threads();
    if (threads > job.restarts)
        threads = job.restarts;
    openblas_set_num_threads(1);
    int progress = !o.quiet && isatty(STDERR_FILENO);
    rc = run_workers(&job, threads, progress, t0);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab train: cannot start workers: %s\n", basin_strerror(rc));
        status = CLI_EXIT_INTERNAL;
        goto done;
    }
    status = check_runs(&job);
    if (status != CLI_EXIT_OK)
        goto done;
    if (build_output(&job, now_s() - t0, &out) != BASIN_OK) {
        fprintf(stderr, "basinlab train: out of memory while writing the result\n");
        status = CLI_EXIT_INTERNAL;
        goto done;
    }
    status = write_output(o.out_path, &out);
done:
    basin_free(out.p);
    release_job(&job);
    basin_teacher_free(teacher);
    spec_experiment_free(exp);
    return status;
}
