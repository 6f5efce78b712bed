/* Finite-difference helpers for unit tests (header-only): central differences of a value
 * (gradient checks) and of a gradient along a direction (Hessian-vector checks), an error
 * measure, a small independent random generator for test data, and the distance of a network
 * evaluation from the kinks of its activations, max pools and loss — a finite difference
 * across a kink measures nothing, so a test asserts that margin before trusting one.
 *
 * Central differences have error O(h²) from truncation plus O(ε_mach·|f|/h) from rounding:
 * h = 1e-6 gives about 1e-9 relative on the smooth pieces of the functions tested here. */
#ifndef BASINLAB_GRADCHECK_H
#define BASINLAB_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basin/loss.h"
#include "basin/net.h"
#include "basin/status.h"

/* Value (and gradient when grad != NULL) of a scalar function; returns a BASIN_* status. */
typedef int (*gc_value_grad_fn)(void *ctx, const double *theta, double *value, double *grad);

/* out[i] = (f(θ + h e_i) − f(θ − h e_i)) / 2h. */
static inline int gc_fd_gradient(gc_value_grad_fn f, void *ctx, const double *theta, size_t dim,
                                 double h, double *out)
{
    double *t = malloc((dim ? dim : 1) * sizeof *t);
    int rc = t ? BASIN_OK : BASIN_ENOMEM;
    for (size_t i = 0; i < dim && rc == BASIN_OK; i++) {
        double fp = 0, fm = 0;
        memcpy(t, theta, dim * sizeof *t);
        t[i] = theta[i] + h;
        rc = f(ctx, t, &fp, NULL);
        t[i] = theta[i] - h;
        if (rc == BASIN_OK)
            rc = f(ctx, t, &fm, NULL);
        out[i] = (fp - fm) / (2 * h);
    }
    free(t);
    return rc;
}

/* out = (∇f(θ + h v) − ∇f(θ − h v)) / 2h ≈ ∇²f(θ) v. */
static inline int gc_fd_hvp(gc_value_grad_fn f, void *ctx, const double *theta, size_t dim,
                            const double *v, double h, double *out)
{
    size_t n = dim ? dim : 1;
    double *t = malloc(n * sizeof *t), *gp = malloc(n * sizeof *gp), *gm = malloc(n * sizeof *gm);
    double val;
    int rc = (t && gp && gm) ? BASIN_OK : BASIN_ENOMEM;
    for (size_t i = 0; i < dim && rc == BASIN_OK; i++)
        t[i] = theta[i] + h * v[i];
    if (rc == BASIN_OK)
        rc = f(ctx, t, &val, gp);
    for (size_t i = 0; i < dim && rc == BASIN_OK; i++)
        t[i] = theta[i] - h * v[i];
    if (rc == BASIN_OK)
        rc = f(ctx, t, &val, gm);
    for (size_t i = 0; i < dim && rc == BASIN_OK; i++)
        out[i] = (gp[i] - gm[i]) / (2 * h);
    free(t);
    free(gp);
    free(gm);
    return rc;
}

/* max_i |a_i − b_i| / max(max_i |b_i|, floor): the error relative to the reference's scale. */
static inline double gc_rel_err(const double *a, const double *b, size_t n, double floor)
{
    double num = 0, den = floor;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static inline double gc_dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline double gc_norm(const double *a, size_t n)
{
    return sqrt(gc_dot(a, a, n));
}

/* ---- test data: splitmix64, independent of basin_rng ---- */
typedef struct gc_rand {
    uint64_t s;
} gc_rand;

static inline double gc_uniform(gc_rand *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static inline double gc_normal(gc_rand *r)
{
    double u1 = 1.0 - gc_uniform(r), u2 = gc_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Smallest distance to a kink in the last forward pass held by ws: |pre-activation| of every
 * non-identity activation, and the gap between the two largest entries of every max-pool
 * window (windows of a relu's output that are all 0 excepted). Returns INFINITY when the net has no
 * kinks. */
static inline double gc_net_kink_margin(const basin_net *net, const basin_net_ws *ws)
{
    double margin = INFINITY;
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_layer_info li;
        basin_net_layer_info(net, l, &li);
        const basin_layer_spec *s = basin_net_layer_spec(net, l);
        const double *x;
        size_t rows, cols;
        if (li.kind == BASIN_LAYER_ACTIVATION && s->s_neg == s->s_pos)
            continue;
        if (basin_net_ws_layer_input(ws, l, &x, &rows, &cols) != BASIN_OK)
            continue;
        if (li.kind == BASIN_LAYER_ACTIVATION) {
            for (size_t i = 0; i < rows * cols; i++)
                margin = fmin(margin, fabs(x[i]));
            continue;
        }
        /* After a relu, a window whose maximum is 0 holds only dead units (their own margins
         * are checked above): the pool output stays 0 near θ, whatever wins the tie. */
        const basin_layer_spec *prev = l > 0 ? basin_net_layer_spec(net, l - 1) : NULL;
        int after_relu =
            prev && prev->kind == BASIN_LAYER_ACTIVATION && prev->s_neg == 0 && prev->s_pos > 0;
        size_t C = li.in_shape[0], H = li.in_shape[1], W = li.in_shape[2], p = s->size;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < C; c++)
                for (size_t oy = 0; oy < H / p; oy++)
                    for (size_t ox = 0; ox < W / p; ox++) {
                        double b1 = -INFINITY, b2 = -INFINITY;
                        for (size_t dy = 0; dy < p; dy++)
                            for (size_t dx = 0; dx < p; dx++) {
                                double v = x[r * cols + (c * H + oy * p + dy) * W + ox * p + dx];
                                if (v > b1) {
                                    b2 = b1;
                                    b1 = v;
                                } else if (v > b2) {
                                    b2 = v;
                                }
                            }
                        if (p > 1 && !(after_relu && b1 == 0))
                            margin = fmin(margin, b1 - b2);
                    }
    }
    return margin;
}

/* Smallest distance of outputs o (n × k) from the kinks of the loss against targets y:
 * o = y (absolute), |o − y| = δ (huber), t·o = 1 (hinge). INFINITY for smooth losses. */
static inline double gc_loss_kink_margin(const basin_loss *loss, const double *o, const double *y,
                                         size_t n, size_t k)
{
    double margin = INFINITY;
    size_t yd = basin_loss_target_dim(loss, k);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++) {
            double r = o[i * k + j] - (yd == k ? y[i * yd + j] : 0);
            if (loss->kind == BASIN_LOSS_ABSOLUTE)
                margin = fmin(margin, fabs(r));
            else if (loss->kind == BASIN_LOSS_HUBER)
                margin = fmin(margin, fabs(fabs(r) - loss->huber_delta));
            else if (loss->kind == BASIN_LOSS_HINGE)
                margin = fmin(margin, fabs(1.0 - (2.0 * y[i] - 1.0) * o[i]));
        }
    return margin;
}

/* ---- compact layer specs for test architectures ---- */
#define GC_DENSE(u)                                                                                \
    {                                                                                              \
        .kind = BASIN_LAYER_DENSE, .units = (u), .bias = 1                                         \
    }
#define GC_DENSE_NB(u)                                                                             \
    {                                                                                              \
        .kind = BASIN_LAYER_DENSE, .units = (u), .bias = 0                                         \
    }
#define GC_CONV(f, k, s, padmode, p)                                                               \
    {                                                                                              \
        .kind = BASIN_LAYER_CONV2D, .filters = (f), .kernel = (k), .stride = (s),                  \
        .padding = (padmode), .pad = (p), .bias = 1                                                \
    }
#define GC_MAXPOOL(p)                                                                              \
    {                                                                                              \
        .kind = BASIN_LAYER_MAXPOOL, .size = (p)                                                   \
    }
#define GC_AVGPOOL(p)                                                                              \
    {                                                                                              \
        .kind = BASIN_LAYER_AVGPOOL, .size = (p)                                                   \
    }
#define GC_FLATTEN                                                                                 \
    {                                                                                              \
        .kind = BASIN_LAYER_FLATTEN                                                                \
    }
#define GC_SUM                                                                                     \
    {                                                                                              \
        .kind = BASIN_LAYER_SUM                                                                    \
    }
#define GC_RELU                                                                                    \
    {                                                                                              \
        .kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_RELU                                      \
    }
#define GC_LEAKY(a)                                                                                \
    {                                                                                              \
        .kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_LEAKY_RELU, .slope = (a)                  \
    }
#define GC_PWL(n, p)                                                                               \
    {                                                                                              \
        .kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_PWL, .s_neg = (n), .s_pos = (p)           \
    }
#define GC_IDENTITY                                                                                \
    {                                                                                              \
        .kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_IDENTITY                                  \
    }

#define GC_CONV_NB(f, k, s, padmode, p)                                                            \
    {                                                                                              \
        .kind = BASIN_LAYER_CONV2D, .filters = (f), .kernel = (k), .stride = (s),                  \
        .padding = (padmode), .pad = (p), .bias = 0                                                \
    }

/* ---- a net + dataset + θ fixture for finite-difference checks ---- */
typedef struct gc_net_case {
    const char *name;
    size_t in_rank, in_shape[3];
    size_t n_layers;
    const basin_layer_spec *layers;
    basin_loss loss;
    size_t n;         /* samples */
    uint64_t seed;    /* of x, y and θ */
    double theta_std; /* θ ~ N(0, theta_std²) */
} gc_net_case;

typedef struct gc_net_fixture {
    basin_net *net;
    basin_net_ws *ws; /* max_batch = n: holds the whole last evaluation */
    basin_dataset ds;
    basin_loss loss;
    double *theta;
    size_t dim;
} gc_net_fixture;

static inline void gc_fixture_teardown(gc_net_fixture *fx)
{
    basin_net_ws_free(fx->ws);
    basin_net_free(fx->net);
    free(fx->ds.x);
    free(fx->ds.y);
    free(fx->theta);
    memset(fx, 0, sizeof *fx);
}

/* Build the net of case c, n random inputs x ~ N(0, 1), targets suited to the loss (normal
 * regression targets, 0/1 labels, class indices) and θ ~ N(0, theta_std²). */
static inline int gc_fixture_setup(const gc_net_case *c, gc_net_fixture *fx)
{
    basin_arch arch = {
        c->in_rank, {c->in_shape[0], c->in_shape[1], c->in_shape[2]}, c->n_layers, c->layers};
    gc_rand r = {c->seed};
    memset(fx, 0, sizeof *fx);
    fx->loss = c->loss;
    int rc = basin_net_create(&arch, &fx->net, NULL);
    if (rc == BASIN_OK)
        rc = basin_net_ws_create(fx->net, c->n, &fx->ws);
    if (rc != BASIN_OK) {
        gc_fixture_teardown(fx);
        return rc;
    }
    size_t k = basin_net_out_dim(fx->net), d = basin_net_in_dim(fx->net);
    basin_dataset *ds = &fx->ds;
    ds->n = c->n;
    ds->in_rank = c->in_rank;
    memcpy(ds->in_shape, c->in_shape, sizeof ds->in_shape);
    ds->in_dim = d;
    ds->y_dim = basin_loss_target_dim(&c->loss, k);
    fx->dim = basin_net_param_count(fx->net);
    ds->x = malloc(c->n * d * sizeof *ds->x);
    ds->y = malloc(c->n * ds->y_dim * sizeof *ds->y);
    fx->theta = malloc((fx->dim ? fx->dim : 1) * sizeof *fx->theta);
    if (!ds->x || !ds->y || !fx->theta) {
        gc_fixture_teardown(fx);
        return BASIN_ENOMEM;
    }
    for (size_t i = 0; i < c->n * d; i++)
        ds->x[i] = gc_normal(&r);
    for (size_t i = 0; i < c->n * ds->y_dim; i++) {
        double u = gc_uniform(&r);
        if (c->loss.kind == BASIN_LOSS_LOGISTIC || c->loss.kind == BASIN_LOSS_HINGE)
            ds->y[i] = u < 0.5 ? 0.0 : 1.0;
        else if (c->loss.kind == BASIN_LOSS_CROSS_ENTROPY)
            ds->y[i] = floor(u * (double)k);
        else
            ds->y[i] = gc_normal(&r);
    }
    for (size_t i = 0; i < fx->dim; i++)
        fx->theta[i] = c->theta_std * gc_normal(&r);
    return BASIN_OK;
}

/* Risk (and gradient) of the fixture on all its samples: a gc_value_grad_fn. */
static inline int gc_fixture_risk(void *ctx, const double *theta, double *value, double *grad)
{
    gc_net_fixture *fx = ctx;
    return basin_net_risk_grad(fx->net, fx->ws, theta, &fx->ds, NULL, fx->ds.n, &fx->loss, value,
                               grad);
}

/* Distance of the fixture's evaluation at θ from every kink (net and loss); −1 on error. */
static inline double gc_fixture_margin(gc_net_fixture *fx, const double *theta)
{
    size_t k = basin_net_out_dim(fx->net);
    double *o = malloc(fx->ds.n * k * sizeof *o), margin = -1;
    if (o && basin_net_forward(fx->net, fx->ws, theta, fx->ds.x, fx->ds.n, o) == BASIN_OK)
        margin = fmin(gc_net_kink_margin(fx->net, fx->ws),
                      gc_loss_kink_margin(&fx->loss, o, fx->ds.y, fx->ds.n, k));
    free(o);
    return margin;
}

/* The catalogue of nets the gradient and Hessian-vector checks run on: every layer kind, every
 * activation, both pools (also as the first layer and in floor mode), every loss, conv with
 * stride 2 and same (odd and even kernel) and explicit padding, and whole nets. */
static inline const gc_net_case *gc_net_cases(size_t *count)
{
    static const basin_layer_spec deep[] = {GC_DENSE(6),   GC_RELU,     GC_DENSE(5),
                                            GC_LEAKY(0.1), GC_DENSE(4), GC_PWL(0.3, 1.7),
                                            GC_DENSE(3),   GC_IDENTITY, GC_DENSE(2)};
    static const basin_layer_spec relu1[] = {GC_DENSE(5), GC_RELU, GC_DENSE(1)};
    static const basin_layer_spec leaky2[] = {GC_DENSE(5), GC_LEAKY(0.2), GC_DENSE(2)};
    static const basin_layer_spec pwl2[] = {GC_DENSE(5), GC_PWL(0.3, 1.7), GC_DENSE(2)};
    static const basin_layer_spec ident1[] = {GC_DENSE(4), GC_IDENTITY, GC_DENSE(1)};
    static const basin_layer_spec relu4[] = {GC_DENSE(6), GC_RELU, GC_DENSE(4)};
    static const basin_layer_spec leaky1[] = {GC_DENSE(5), GC_LEAKY(0.05), GC_DENSE(1)};
    static const basin_layer_spec student[] = {GC_DENSE_NB(4), GC_RELU, GC_SUM};
    static const basin_layer_spec conv_s2[] = {GC_CONV(3, 3, 2, BASIN_PAD_VALID, 0), GC_RELU,
                                               GC_FLATTEN, GC_DENSE(2)};
    static const basin_layer_spec conv_same[] = {GC_CONV(2, 3, 1, BASIN_PAD_SAME, 0),
                                                 GC_LEAKY(0.1),
                                                 GC_CONV(2, 2, 1, BASIN_PAD_SAME, 0),
                                                 GC_RELU,
                                                 GC_FLATTEN,
                                                 GC_DENSE(1)};
    static const basin_layer_spec conv_pad[] = {GC_CONV(3, 3, 2, BASIN_PAD_EXPLICIT, 1),
                                                GC_PWL(0.3, 1.7), GC_FLATTEN, GC_DENSE(1)};
    static const basin_layer_spec cnn_max[] = {GC_CONV(3, 3, 1, BASIN_PAD_VALID, 0),
                                               GC_RELU,
                                               GC_MAXPOOL(2),
                                               GC_CONV(2, 2, 1, BASIN_PAD_VALID, 0),
                                               GC_RELU,
                                               GC_FLATTEN,
                                               GC_DENSE(3)};
    static const basin_layer_spec cnn_avg[] = {GC_CONV(2, 3, 1, BASIN_PAD_SAME, 0), GC_RELU,
                                               GC_AVGPOOL(2), GC_FLATTEN, GC_DENSE(2)};
    static const basin_layer_spec max_first[] = {GC_MAXPOOL(2), GC_FLATTEN, GC_DENSE(3), GC_RELU,
                                                 GC_DENSE(1)};
    static const basin_layer_spec avg_first[] = {GC_AVGPOOL(3), GC_FLATTEN, GC_DENSE(2),
                                                 GC_LEAKY(0.3), GC_DENSE(1)};
    static const basin_layer_spec conv_nb[] = {GC_CONV_NB(2, 3, 1, BASIN_PAD_SAME, 0), GC_RELU,
                                               GC_MAXPOOL(3), GC_SUM};
#define GC_N(a) (sizeof(a) / sizeof((a)[0])), (a)
    static const gc_net_case cases[] = {
        {"dense_deep_vector", 1, {4}, GC_N(deep), {BASIN_LOSS_SQUARED, 1}, 8, 11, 0.6},
        {"relu_squared", 1, {3}, GC_N(relu1), {BASIN_LOSS_SQUARED, 1}, 7, 12, 0.7},
        {"leaky_absolute", 1, {3}, GC_N(leaky2), {BASIN_LOSS_ABSOLUTE, 1}, 7, 13, 0.7},
        {"pwl_huber", 1, {3}, GC_N(pwl2), {BASIN_LOSS_HUBER, 0.5}, 7, 14, 0.7},
        {"identity_logistic", 1, {3}, GC_N(ident1), {BASIN_LOSS_LOGISTIC, 1}, 7, 15, 0.7},
        {"relu_cross_entropy", 1, {3}, GC_N(relu4), {BASIN_LOSS_CROSS_ENTROPY, 1}, 7, 16, 0.7},
        {"leaky_hinge", 1, {3}, GC_N(leaky1), {BASIN_LOSS_HINGE, 1}, 7, 17, 0.7},
        {"sum_student", 1, {3}, GC_N(student), {BASIN_LOSS_SQUARED, 1}, 7, 18, 0.7},
        {"conv_stride2_valid", 3, {2, 7, 7}, GC_N(conv_s2), {BASIN_LOSS_SQUARED, 1}, 4, 19, 0.4},
        {"conv_same_odd_even", 3, {1, 5, 5}, GC_N(conv_same), {BASIN_LOSS_SQUARED, 1}, 4, 20, 0.5},
        {"conv_explicit_pad", 3, {2, 6, 6}, GC_N(conv_pad), {BASIN_LOSS_LOGISTIC, 1}, 4, 21, 0.4},
        {"cnn_maxpool_ce", 3, {1, 8, 8}, GC_N(cnn_max), {BASIN_LOSS_CROSS_ENTROPY, 1}, 4, 22, 0.5},
        {"cnn_avgpool_floor", 3, {2, 7, 7}, GC_N(cnn_avg), {BASIN_LOSS_HUBER, 1}, 4, 23, 0.4},
        {"maxpool_first", 3, {2, 5, 5}, GC_N(max_first), {BASIN_LOSS_SQUARED, 1}, 5, 24, 0.6},
        {"avgpool_first", 3, {1, 6, 6}, GC_N(avg_first), {BASIN_LOSS_SQUARED, 1}, 5, 25, 0.6},
        {"conv_nobias_maxpool3", 3, {1, 6, 6}, GC_N(conv_nb), {BASIN_LOSS_SQUARED, 1}, 4, 26, 0.5},
    };
#undef GC_N
    *count = sizeof cases / sizeof cases[0];
    return cases;
}

#endif
