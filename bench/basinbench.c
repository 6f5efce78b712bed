/* basinbench: basinlab's side of the benchmark against PyTorch (bench/README.md).
 *
 *   basinbench gen DIR [CASES]         write the cases' data (default abcde; e: start points)
 *   basinbench run CASE DIR [options]  time one case with the core; prints one JSON object
 *   basinbench peak [--threads T]      the machine's FMA-loop peak and a large dgemm, GFLOP/s
 *
 * It goes through the public core API exactly as the server does (basin_train_batch for many
 * restarts, basin_train_restart for one, the teacher objective, basin_certify), so the times
 * are the product's. run.py alternates it with torch_cases.py and summarises both.
 *
 * DESIGN
 * - Cases (squared loss, full-batch GD unless said; He-normal init, zero biases):
 *   a MLP 2-16-16-1 ReLU, two moons N = 200, lr 0.05, 2000 steps per restart: restarts/s.
 *   b MLP 2-64-64-64-1 ReLU, two moons N = 2000: seconds per step.
 *   c MLP 784-256-256-10 ReLU, softmax cross entropy, 10 Gaussian blobs in 784-D, N = 10000.
 *   d CNN on 1×8×8 bars/stripes, N = 1000: conv3×3(8, same) ReLU, avgpool 2, conv3×3(16, same)
 *     ReLU, avgpool 4 (global), flatten, dense 1.
 *   e teacher–student closed form, identity teacher k = d = 10, n = 10 students, lr 0.1, start
 *     N(0, 1/d), until ‖∇F‖ ≤ 1e-9 (cap 100000 steps): restarts/s.
 *   f basin_certify of case b's end point after --steps GD steps: region certificate and
 *     Lanczos λ_min (polish and probes off, the point taken as stationary); the default
 *     pipeline is timed too.
 * - Threads. With --threads T, many-restart cases split their restarts into T contiguous
 *   ranges, one thread and one objective each (objectives carry scratch); single-restart cases
 *   give OpenBLAS T threads. The core itself never starts threads.
 * - FLOP counts are the GEMM-shaped work of one evaluation (forward, weight gradients, input
 *   errors above the first parametrised layer; 2 flop per multiply-add; a convolution counts
 *   only the taps inside the image), times evaluations. The
 *   trainer evaluates steps + 1 points per restart; the rate uses what it really did. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "basin/alloc.h"
#include "basin/certify.h"
#include "basin/data.h"
#include "basin/net.h"
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "basin/train.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define E_TEACHER_DIM 10
#define E_SEED 5

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "basinbench: %s: %s\n", what, basin_strerror(rc));
    return 1;
}

/* ---- the cases' architectures and data ---- */

typedef struct bench_case {
    char name;
    size_t n_layers;
    basin_layer_spec layers[12];
    basin_arch arch;
    basin_loss loss;
    basin_generator_spec gen;
    double lr;
} bench_case;

static basin_layer_spec dense(size_t units)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_DENSE;
    s.units = units;
    s.bias = 1;
    return s;
}

static basin_layer_spec relu(void)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_ACTIVATION;
    s.act = BASIN_ACT_RELU;
    return s;
}

static basin_layer_spec conv_same(size_t filters)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_CONV2D;
    s.filters = filters;
    s.kernel = 3;
    s.stride = 1;
    s.padding = BASIN_PAD_SAME;
    s.bias = 1;
    return s;
}

static basin_layer_spec pool(basin_layer_kind kind, size_t size)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.size = size;
    return s;
}

static void mlp_case(bench_case *c, size_t d, const size_t *widths, size_t n_hidden, size_t out)
{
    c->n_layers = 0;
    for (size_t i = 0; i < n_hidden; i++) {
        c->layers[c->n_layers++] = dense(widths[i]);
        c->layers[c->n_layers++] = relu();
    }
    c->layers[c->n_layers++] = dense(out);
    c->arch.in_rank = 1;
    c->arch.in_shape[0] = d;
}

/* Fill c for case name ('a'..'d', and 'f' = b's net and data). */
static int get_case(char name, bench_case *c)
{
    static const size_t a_w[] = {16, 16}, b_w[] = {64, 64, 64}, c_w[] = {256, 256};
    memset(c, 0, sizeof *c);
    c->name = name;
    c->loss.kind = BASIN_LOSS_SQUARED;
    c->loss.huber_delta = 1.0;
    c->lr = 0.05;
    switch (name) {
    case 'a':
        mlp_case(c, 2, a_w, 2, 1);
        c->gen =
            (basin_generator_spec){.kind = BASIN_GEN_TWO_MOONS, .n = 200, .noise = 0.1, .seed = 1};
        break;
    case 'b':
    case 'f':
        mlp_case(c, 2, b_w, 3, 1);
        c->gen =
            (basin_generator_spec){.kind = BASIN_GEN_TWO_MOONS, .n = 2000, .noise = 0.1, .seed = 2};
        break;
    case 'c':
        mlp_case(c, 784, c_w, 2, 10);
        c->loss.kind = BASIN_LOSS_CROSS_ENTROPY;
        c->lr = 0.01;
        c->gen = (basin_generator_spec){.kind = BASIN_GEN_GAUSSIAN_BLOBS,
                                        .n = 10000,
                                        .noise = 1.0,
                                        .seed = 3,
                                        .classes = 10,
                                        .dim = 784};
        break;
    case 'd':
        c->layers[0] = conv_same(8);
        c->layers[1] = relu();
        c->layers[2] = pool(BASIN_LAYER_AVGPOOL, 2);
        c->layers[3] = conv_same(16);
        c->layers[4] = relu();
        c->layers[5] = pool(BASIN_LAYER_AVGPOOL, 4);
        c->layers[6] = pool(BASIN_LAYER_FLATTEN, 0);
        c->layers[7] = dense(1);
        c->n_layers = 8;
        c->arch.in_rank = 3;
        c->arch.in_shape[0] = 1;
        c->arch.in_shape[1] = 8;
        c->arch.in_shape[2] = 8;
        c->gen = (basin_generator_spec){
            .kind = BASIN_GEN_BARS_STRIPES, .n = 1000, .noise = 0.1, .seed = 4, .image_size = 8};
        break;
    default:
        return BASIN_EINVAL;
    }
    c->arch.n_layers = c->n_layers;
    c->arch.layers = c->layers;
    return BASIN_OK;
}

/* Multiply-adds of one evaluation with gradient, per sample. */
/* Kernel taps that fall inside the image, summed over the output positions of a conv layer
 * (taps in the padding multiply zeros: no work is counted for them). */
static double conv_taps(const basin_net *net, size_t l, const basin_layer_info *li)
{
    const basin_layer_spec *sp = basin_net_layer_spec(net, l);
    double taps = 0.0;
    for (size_t oy = 0; oy < li->out_shape[1]; oy++)
        for (size_t ox = 0; ox < li->out_shape[2]; ox++)
            for (size_t ky = 0; ky < sp->kernel; ky++)
                for (size_t kx = 0; kx < sp->kernel; kx++) {
                    long iy = (long)(oy * sp->stride + ky) - (long)li->pad_top;
                    long ix = (long)(ox * sp->stride + kx) - (long)li->pad_left;
                    taps += iy >= 0 && ix >= 0 && iy < (long)li->in_shape[1] &&
                            ix < (long)li->in_shape[2];
                }
    return taps;
}

static double macs_per_sample(const basin_net *net)
{
    double fwd = 0.0, bwd_in = 0.0;
    int below = 0; /* a parametrised layer exists below */
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_layer_info li;
        basin_net_layer_info(net, l, &li);
        double m = 0.0;
        if (li.kind == BASIN_LAYER_DENSE)
            m = (double)li.in_dim * (double)li.out_dim;
        else if (li.kind == BASIN_LAYER_CONV2D)
            m = conv_taps(net, l, &li) * (double)li.out_shape[0] * (double)li.in_shape[0];
        fwd += m;
        if (below)
            bwd_in += m;
        if (m > 0)
            below = 1;
    }
    return 2.0 * fwd + bwd_in; /* forward + weight gradient + input errors */
}

/* ---- gen ---- */

static int write_dataset(const char *dir, char name, const basin_dataset *ds)
{
    char path[4096];
    int rc = 1;
    snprintf(path, sizeof path, "%s/case_%c.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    if (fwrite(ds->x, sizeof(double), ds->n * ds->in_dim, f) != ds->n * ds->in_dim ||
        fwrite(ds->y, sizeof(double), ds->n * ds->y_dim, f) != ds->n * ds->y_dim)
        goto done;
    if (fclose(f) != 0) {
        f = NULL;
        goto done;
    }
    f = NULL;
    snprintf(path, sizeof path, "%s/case_%c.json", dir, name);
    f = fopen(path, "w");
    if (!f)
        goto done;
    fprintf(f, "{\"n\": %zu, \"in_dim\": %zu, \"y_dim\": %zu, \"in_shape\": [", ds->n, ds->in_dim,
            ds->y_dim);
    for (size_t i = 0; i < ds->in_rank; i++)
        fprintf(f, "%s%zu", i ? ", " : "", ds->in_shape[i]);
    fprintf(f, "]}\n");
    rc = 0;
done:
    if (f && fclose(f) != 0)
        rc = 1;
    return rc;
}

/* Case e's start points, drawn exactly as basin_train_* draws NORMAL inits without a net. */
static int write_teacher_starts(const char *dir, size_t restarts)
{
    const size_t n = E_TEACHER_DIM, d = E_TEACHER_DIM;
    const double std = 1.0 / sqrt((double)d);
    char path[4096];
    snprintf(path, sizeof path, "%s/case_e.bin", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    int rc = 0;
    for (size_t r = 0; r < restarts && !rc; r++) {
        basin_rng rng;
        basin_rng_init(&rng, E_SEED, 2 * (uint64_t)r);
        for (size_t i = 0; i < n * d && !rc; i++) {
            double v = std * basin_rng_normal(&rng);
            rc = fwrite(&v, sizeof v, 1, f) != 1;
        }
    }
    if (fclose(f) != 0)
        rc = 1;
    snprintf(path, sizeof path, "%s/case_e.json", dir);
    f = fopen(path, "w");
    if (!f)
        return 1;
    fprintf(f, "{\"n\": %zu, \"k\": %zu, \"d\": %zu, \"restarts\": %zu, \"std\": %.17g}\n", n,
            (size_t)E_TEACHER_DIM, d, restarts, std);
    if (fclose(f) != 0)
        rc = 1;
    return rc;
}

/* Write the data of the cases named in `which` ("abcde" for all). */
static int cmd_gen(const char *dir, const char *which)
{
    const char names[] = "abcd";
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    for (size_t i = 0; i < sizeof names - 1; i++) {
        bench_case c;
        if (!strchr(which, names[i]))
            continue;
        basin_dataset *ds = NULL;
        get_case(names[i], &c);
        int rc = basin_data_generate(&c.gen, &ds);
        if (rc != BASIN_OK)
            return die("generate", rc);
        if (write_dataset(dir, names[i], ds)) {
            basin_dataset_free(ds);
            fprintf(stderr, "basinbench: cannot write case %c into %s\n", names[i], dir);
            return 1;
        }
        basin_dataset_free(ds);
    }
    if (strchr(which, 'e') && write_teacher_starts(dir, 1024)) {
        fprintf(stderr, "basinbench: cannot write case e starts\n");
        return 1;
    }
    return 0;
}

/* ---- run ---- */

typedef struct opts {
    char name;
    const char *dir;
    int threads;
    size_t restarts, steps, warmup;
} opts;

typedef struct worker {
    const basin_net *net;
    const basin_dataset *ds;
    const basin_loss *loss;
    const basin_teacher *teacher;
    const basin_train_spec *spec;
    uint64_t first;
    size_t count;
    double *thetas;
    basin_run_result *results;
    int rc;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    basin_objective obj;
    memset(&obj, 0, sizeof obj);
    if (w->teacher)
        w->rc = basin_teacher_objective(w->teacher, E_TEACHER_DIM, &obj);
    else
        w->rc = basin_objective_empirical(w->net, w->ds, w->loss, 0.0, 0, &obj);
    if (w->rc == BASIN_OK)
        w->rc = basin_train_batch(&obj, w->net, w->spec, w->first, w->count, w->thetas, NULL,
                                  w->results);
    basin_objective_release(&obj);
    return NULL;
}

/* Restarts 0..R−1 split over T threads; returns the wall time in *seconds. */
static int run_restarts(const opts *o, const basin_net *net, const basin_dataset *ds,
                        const basin_loss *loss, const basin_teacher *teacher,
                        const basin_train_spec *spec, size_t dim, double *thetas,
                        basin_run_result *results, double *seconds)
{
    worker w[16];
    pthread_t tid[16];
    size_t T = (size_t)o->threads, R = o->restarts;
    int rc = BASIN_OK;
    double t0 = now_s();
    for (size_t t = 0; t < T; t++) {
        size_t lo = R * t / T, hi = R * (t + 1) / T;
        w[t] = (worker){net,          ds,      loss, teacher, spec, lo, hi - lo, thetas + lo * dim,
                        results + lo, BASIN_OK};
        if (t + 1 < T) {
            if (pthread_create(&tid[t], NULL, worker_main, &w[t]) != 0)
                return BASIN_ENOMEM;
        } else {
            worker_main(&w[t]);
        }
    }
    for (size_t t = 0; t + 1 < T; t++)
        pthread_join(tid[t], NULL);
    *seconds = now_s() - t0;
    for (size_t t = 0; t < T; t++)
        if (w[t].rc != BASIN_OK)
            rc = w[t].rc;
    return rc;
}

static void train_spec(basin_train_spec *s, double lr, size_t steps)
{
    basin_train_defaults(s);
    s->optim.lr = lr;
    s->max_steps = steps;
    s->grad_tol = 0.0; /* every restart does exactly `steps` updates, like the torch loop */
    s->trajectory_every = 0;
    s->seed = 1;
}

static void print_common(const opts *o, const char *unit, double value, double seconds)
{
    printf("{\"side\": \"basin\", \"case\": \"%c\", \"threads\": %d, \"unit\": \"%s\", "
           "\"value\": %.6g, \"seconds\": %.6g, \"maxrss_kb\": %ld, \"blas_core\": \"%s\"",
           o->name, o->threads, unit, value, seconds, maxrss_kb(), openblas_get_corename());
}

static int case_restarts(const opts *o, const bench_case *c)
{
    basin_net *net = NULL;
    basin_dataset *ds = NULL;
    double *thetas = NULL;
    basin_run_result *res = NULL;
    int rc = basin_net_create(&c->arch, &net, NULL);
    if (rc == BASIN_OK)
        rc = basin_data_generate(&c->gen, &ds);
    if (rc != BASIN_OK)
        goto done;
    size_t dim = basin_net_param_count(net);
    thetas = basin_alloc_array(o->restarts, dim * sizeof(double));
    res = basin_alloc_array(o->restarts, sizeof *res);
    rc = BASIN_ENOMEM;
    if (!thetas || !res)
        goto done;
    basin_train_spec spec;
    train_spec(&spec, c->lr, o->steps);
    double seconds;
    rc = run_restarts(o, net, ds, &c->loss, NULL, &spec, dim, thetas, res, &seconds);
    if (rc != BASIN_OK)
        goto done;
    double evals = 0.0, risk = 0.0;
    size_t diverged = 0;
    for (size_t r = 0; r < o->restarts; r++) {
        evals += (double)res[r].steps + 1.0;
        risk += res[r].final_risk;
        diverged += res[r].reason == BASIN_STOP_DIVERGED;
    }
    double flop = evals * (double)ds->n * 2.0 * macs_per_sample(net);
    print_common(o, "restarts/s", (double)o->restarts / seconds, seconds);
    printf(", \"restarts\": %zu, \"steps\": %zu, \"flop\": %.6g, \"gflops\": %.4g, "
           "\"mean_final_risk\": %.6g, \"diverged\": %zu}\n",
           o->restarts, o->steps, flop, flop / seconds * 1e-9, risk / (double)o->restarts,
           diverged);
done:
    basin_free(thetas);
    basin_free(res);
    basin_dataset_free(ds);
    basin_net_free(net);
    return rc == BASIN_OK ? 0 : die("case", rc);
}

/* One restart per thread, as the server's workers run them: each thread has its own objective
 * and θ, trains warm-up steps, waits at the barrier, then trains the timed steps from a fresh
 * start (restart index = thread index). */
typedef struct stepper {
    const basin_net *net;
    const basin_dataset *ds;
    const bench_case *c;
    const opts *o;
    size_t restart;
    pthread_barrier_t *go;
    double t_start, t_end;
    basin_run_result res;
    int rc;
} stepper;

static void *stepper_main(void *p)
{
    stepper *w = p;
    basin_objective obj;
    double *theta = NULL;
    memset(&obj, 0, sizeof obj);
    w->rc = basin_objective_empirical(w->net, w->ds, &w->c->loss, 0.0, 0, &obj);
    if (w->rc == BASIN_OK && !(theta = basin_alloc_array(obj.dim, sizeof(double))))
        w->rc = BASIN_ENOMEM;
    basin_train_spec spec;
    train_spec(&spec, w->c->lr, w->o->warmup > 0 ? w->o->warmup : 1);
    if (w->rc == BASIN_OK)
        w->rc = basin_train_restart(&obj, w->net, &spec, w->restart, theta, NULL, &w->res);
    spec.max_steps = w->o->steps;
    pthread_barrier_wait(w->go); /* every thread reaches it, failed or not */
    w->t_start = now_s();
    if (w->rc == BASIN_OK)
        w->rc = basin_train_restart(&obj, w->net, &spec, w->restart, theta, NULL, &w->res);
    w->t_end = now_s();
    basin_free(theta);
    basin_objective_release(&obj);
    return NULL;
}

/* Time per step. T = 1: one restart, OpenBLAS single-threaded. T > 1: T restarts at once, one
 * per thread (OpenBLAS single-threaded inside each), and the figure is the throughput
 * wall / (T · steps) — how the server uses T cores for the many restarts of an experiment. */
static int case_steps(const opts *o, const bench_case *c)
{
    basin_net *net = NULL;
    basin_dataset *ds = NULL;
    stepper w[16];
    pthread_t tid[16];
    pthread_barrier_t go;
    size_t T = o->threads < 1 ? 1 : o->threads > 16 ? 16 : (size_t)o->threads, started = 0;
    int rc = basin_net_create(&c->arch, &net, NULL), have_barrier = 0;
    if (rc == BASIN_OK)
        rc = basin_data_generate(&c->gen, &ds);
    if (rc != BASIN_OK)
        goto done;
    openblas_set_num_threads(1);
    rc = BASIN_ENOMEM;
    if (pthread_barrier_init(&go, NULL, (unsigned)T) != 0)
        goto done;
    have_barrier = 1;
    for (size_t t = 0; t < T; t++)
        w[t] = (stepper){net, ds, c, o, t, &go, 0.0, 0.0, {0}, BASIN_OK};
    for (; started + 1 < T; started++)
        if (pthread_create(&tid[started], NULL, stepper_main, &w[started]) != 0) {
            /* the started threads wait at a barrier that can no longer fill */
            fprintf(stderr, "basinbench: cannot start thread %zu\n", started);
            exit(1);
        }
    stepper_main(&w[T - 1]);
    rc = BASIN_OK;
done:
    for (size_t t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    if (have_barrier)
        pthread_barrier_destroy(&go);
    if (rc == BASIN_OK) {
        double t0 = w[0].t_start, t1 = w[0].t_end, evals = 0.0;
        for (size_t t = 0; t < T; t++) {
            t0 = w[t].t_start < t0 ? w[t].t_start : t0;
            t1 = w[t].t_end > t1 ? w[t].t_end : t1;
            evals += (double)w[t].res.steps + 1.0;
            if (w[t].rc != BASIN_OK)
                rc = w[t].rc;
        }
        double seconds = t1 - t0;
        if (rc == BASIN_OK) {
            double flop = evals * (double)ds->n * 2.0 * macs_per_sample(net);
            print_common(o, "s/step", seconds / ((double)T * (double)o->steps), seconds);
            printf(", \"steps\": %zu, \"restarts\": %zu, \"flop\": %.6g, \"gflops\": %.4g, "
                   "\"final_risk\": %.6g, \"reason\": \"%s\"}\n",
                   w[0].res.steps, T, flop, flop / seconds * 1e-9, w[0].res.final_risk,
                   basin_stop_reason_name(w[0].res.reason));
        }
    }
    basin_dataset_free(ds);
    basin_net_free(net);
    return rc == BASIN_OK ? 0 : die("case", rc);
}

static int case_teacher(const opts *o)
{
    basin_teacher *t = NULL;
    double *thetas = NULL;
    basin_run_result *res = NULL;
    const size_t dim = E_TEACHER_DIM * E_TEACHER_DIM;
    int rc = basin_teacher_create_identity(E_TEACHER_DIM, E_TEACHER_DIM, &t);
    if (rc != BASIN_OK)
        goto done;
    rc = BASIN_ENOMEM;
    thetas = basin_alloc_array(o->restarts, dim * sizeof(double));
    res = basin_alloc_array(o->restarts, sizeof *res);
    if (!thetas || !res)
        goto done;
    basin_train_spec spec;
    basin_train_defaults(&spec);
    spec.optim.lr = 0.1;
    spec.init.kind = BASIN_INIT_NORMAL;
    spec.init.std = 1.0 / sqrt((double)E_TEACHER_DIM);
    spec.seed = E_SEED;
    spec.max_steps = o->steps;
    spec.grad_tol = 1e-9;
    spec.trajectory_every = 0;
    double seconds;
    rc = run_restarts(o, NULL, NULL, NULL, t, &spec, dim, thetas, res, &seconds);
    if (rc != BASIN_OK)
        goto done;
    double steps = 0.0, risk = 0.0;
    size_t converged = 0;
    for (size_t r = 0; r < o->restarts; r++) {
        steps += (double)res[r].steps;
        risk += res[r].final_risk;
        converged += res[r].reason == BASIN_STOP_GRAD_TOL;
    }
    print_common(o, "restarts/s", (double)o->restarts / seconds, seconds);
    printf(", \"restarts\": %zu, \"steps_total\": %.0f, \"converged\": %zu, "
           "\"mean_final_risk\": %.6g}\n",
           o->restarts, steps, converged, risk / (double)o->restarts);
done:
    basin_free(thetas);
    basin_free(res);
    basin_teacher_free(t);
    return rc == BASIN_OK ? 0 : die("case e", rc);
}

/* Train case b's net for `steps` steps (the end point), then time basin_certify on it. */
static int case_certify(const opts *o)
{
    bench_case c;
    basin_net *net = NULL;
    basin_dataset *ds = NULL;
    basin_objective obj;
    basin_certificate *cert = NULL;
    double *theta = NULL;
    memset(&obj, 0, sizeof obj);
    openblas_set_num_threads(o->threads);
    get_case('f', &c);
    int rc = basin_net_create(&c.arch, &net, NULL);
    if (rc == BASIN_OK)
        rc = basin_data_generate(&c.gen, &ds);
    if (rc == BASIN_OK)
        rc = basin_objective_empirical(net, ds, &c.loss, 0.0, 0, &obj);
    if (rc != BASIN_OK)
        goto done;
    rc = BASIN_ENOMEM;
    theta = basin_alloc_array(obj.dim, sizeof(double));
    if (!theta)
        goto done;
    basin_train_spec spec;
    basin_run_result res;
    train_spec(&spec, c.lr, o->steps);
    rc = basin_train_restart(&obj, net, &spec, 0, theta, NULL, &res);
    if (rc != BASIN_OK)
        goto done;
    /* The figure: region certificate + Lanczos λ_min, so the point must count as
     * stationary (GD stops short of 1e-6) and polish and probes are off. */
    basin_certify_opts co;
    basin_certify_defaults(&co);
    co.polish = 0;
    co.probes = 0;
    co.grad_tol = 1.0;
    double t0 = now_s();
    rc = basin_certify(net, ds, &c.loss, 0.0, theta, &co, &cert);
    double seconds = now_s() - t0;
    if (rc != BASIN_OK)
        goto done;
    size_t groups = cert->region.n_groups, iters = cert->curvature.lanczos_iterations;
    double lmin = cert->curvature.lambda_min;
    const char *label = basin_verdict_name(cert->label);
    const char *by = basin_decider_name(cert->decided_by);
    basin_certificate_free(cert);
    cert = NULL;
    /* The whole default pipeline (polish, probes) for comparison. */
    double t1 = now_s();
    rc = basin_certify(net, ds, &c.loss, 0.0, theta, NULL, &cert);
    double seconds_default = now_s() - t1;
    if (rc != BASIN_OK)
        goto done;
    print_common(o, "s", seconds, seconds);
    printf(", \"train_steps\": %zu, \"label\": \"%s\", \"decided_by\": \"%s\", "
           "\"region_groups\": %zu, \"lanczos_iterations\": %zu, \"lambda_min\": %.6g, "
           "\"seconds_default_opts\": %.6g, \"label_default_opts\": \"%s\"}\n",
           res.steps, label, by, groups, iters, lmin, seconds_default,
           basin_verdict_name(cert->label));
done:
    basin_certificate_free(cert);
    basin_free(theta);
    basin_objective_release(&obj);
    basin_dataset_free(ds);
    basin_net_free(net);
    return rc == BASIN_OK ? 0 : die("case f", rc);
}

static int cmd_run(const opts *o)
{
    bench_case c;
    switch (o->name) {
    case 'a':
        get_case('a', &c);
        openblas_set_num_threads(1);
        return case_restarts(o, &c);
    case 'b':
    case 'c':
    case 'd':
        get_case(o->name, &c);
        return case_steps(o, &c);
    case 'e':
        openblas_set_num_threads(1);
        return case_teacher(o);
    case 'f':
        return case_certify(o);
    default:
        fprintf(stderr, "basinbench: unknown case %c\n", o->name);
        return 2;
    }
}

/* ---- peak ---- */

#define FMA_CHAINS 12

#if HAVE_X86
__attribute__((target("avx512f"))) static double fma_loop_512(long iters)
{
    __m512d acc[FMA_CHAINS];
    const __m512d b = _mm512_set1_pd(0.999999), c = _mm512_set1_pd(1e-6);
    for (int k = 0; k < FMA_CHAINS; k++)
        acc[k] = _mm512_set1_pd((double)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < FMA_CHAINS; k++)
            acc[k] = _mm512_fmadd_pd(acc[k], b, c);
    double s = 0.0, out[8];
    for (int k = 0; k < FMA_CHAINS; k++) {
        _mm512_storeu_pd(out, acc[k]);
        for (int l = 0; l < 8; l++)
            s += out[l];
    }
    return s;
}

__attribute__((target("avx2,fma"))) static double fma_loop_256(long iters)
{
    __m256d acc[FMA_CHAINS];
    const __m256d b = _mm256_set1_pd(0.999999), c = _mm256_set1_pd(1e-6);
    for (int k = 0; k < FMA_CHAINS; k++)
        acc[k] = _mm256_set1_pd((double)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < FMA_CHAINS; k++)
            acc[k] = _mm256_fmadd_pd(acc[k], b, c);
    double s = 0.0, out[4];
    for (int k = 0; k < FMA_CHAINS; k++) {
        _mm256_storeu_pd(out, acc[k]);
        for (int l = 0; l < 4; l++)
            s += out[l];
    }
    return s;
}
#endif

typedef struct fma_job {
    long iters;
    int width; /* doubles per vector */
    double sink, seconds;
} fma_job;

static void *fma_main(void *p)
{
    fma_job *j = p;
    double t0 = now_s();
#if HAVE_X86
    j->sink = j->width == 8 ? fma_loop_512(j->iters) : fma_loop_256(j->iters);
#endif
    j->seconds = now_s() - t0;
    return NULL;
}

/* float64 FMA throughput of T threads, GFLOP/s (best of 10 short runs: the machine's peak is
 * what it reaches when nothing else runs). */
static double fma_peak(int T, int *width)
{
    fma_job jobs[16];
    pthread_t tid[16];
    double best = 0.0;
#if HAVE_X86
    *width = __builtin_cpu_supports("avx512f") ? 8 : (__builtin_cpu_supports("fma") ? 4 : 0);
#else
    *width = 0;
#endif
    if (*width == 0)
        return 0.0;
    for (int rep = 0; rep < 10; rep++) {
        for (int t = 0; t < T; t++) {
            jobs[t] = (fma_job){20000000, *width, 0.0, 0.0};
            if (pthread_create(&tid[t], NULL, fma_main, &jobs[t]) != 0)
                return 0.0;
        }
        double slowest = 0.0;
        for (int t = 0; t < T; t++) {
            pthread_join(tid[t], NULL);
            slowest = jobs[t].seconds > slowest ? jobs[t].seconds : slowest;
        }
        double flop = (double)T * 20000000.0 * FMA_CHAINS * *width * 2.0;
        best = flop / slowest * 1e-9 > best ? flop / slowest * 1e-9 : best;
    }
    return best;
}

/* dgemm n×n×n through OpenBLAS with T threads, GFLOP/s (best of 3). */
static double dgemm_rate(int T, size_t n)
{
    double *a = basin_alloc_array(n * n, sizeof(double));
    double *b = basin_alloc_array(n * n, sizeof(double));
    double *c = basin_alloc_array(n * n, sizeof(double));
    double best = 0.0;
    if (a && b && c) {
        for (size_t i = 0; i < n * n; i++) {
            a[i] = (double)(i % 7) - 3.0;
            b[i] = (double)(i % 5) - 2.0;
        }
        openblas_set_num_threads(T);
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n,
                        (blasint)n, 1.0, a, (blasint)n, b, (blasint)n, 0.0, c, (blasint)n);
            double r = 2.0 * (double)n * (double)n * (double)n / (now_s() - t0) * 1e-9;
            best = r > best ? r : best;
        }
    }
    basin_free(a);
    basin_free(b);
    basin_free(c);
    return best;
}

static int cmd_peak(int T)
{
    int width;
    double fma = fma_peak(T, &width);
    double gemm = dgemm_rate(T, 2000);
    printf("{\"threads\": %d, \"fma_gflops\": %.4g, \"fma_vector_doubles\": %d, "
           "\"dgemm_gflops\": %.4g, \"dgemm_n\": 2000, \"blas_core\": \"%s\", "
           "\"blas_config\": \"%s\"}\n",
           T, fma, width, gemm, openblas_get_corename(), openblas_get_config());
    return 0;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr, "usage: basinbench gen DIR [CASES]\n"
                    "       basinbench run CASE DIR [--threads T] [--restarts R] [--steps S] "
                    "[--warmup W]\n"
                    "       basinbench peak [--threads T]\n");
    return 2;
}

static int parse_opts(int argc, char **argv, int start, opts *o)
{
    for (int i = start; i < argc; i++) {
        if (i + 1 >= argc)
            return 1;
        long v = strtol(argv[i + 1], NULL, 10);
        if (v < 0 || (v == 0 && strcmp(argv[i], "--warmup") != 0))
            return 1;
        if (strcmp(argv[i], "--threads") == 0 && v <= 16)
            o->threads = (int)v;
        else if (strcmp(argv[i], "--restarts") == 0)
            o->restarts = (size_t)v;
        else if (strcmp(argv[i], "--steps") == 0)
            o->steps = (size_t)v;
        else if (strcmp(argv[i], "--warmup") == 0)
            o->warmup = (size_t)v;
        else
            return 1;
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {0, NULL, 1, 64, 2000, 3};
    if (argc >= 3 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(argv[2], argc >= 4 ? argv[3] : "abcde");
    if (argc >= 4 && strcmp(argv[1], "run") == 0 && strlen(argv[2]) == 1) {
        o.name = argv[2][0];
        o.dir = argv[3];
        if (parse_opts(argc, argv, 4, &o))
            return usage();
        return cmd_run(&o);
    }
    if (argc >= 2 && strcmp(argv[1], "peak") == 0) {
        if (parse_opts(argc, argv, 2, &o))
            return usage();
        return cmd_peak(o.threads);
    }
    return usage();
}
