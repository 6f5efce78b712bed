/* Networks with piecewise-linear activations: layer specs, parameter layout, forward,
 * backward (exact gradients) and exact Hessian-vector products.
 *
 * An architecture (basin_arch) is a plain list of layer specs; basin_net_create() checks it and
 * works out every shape and parameter offset. Parameters live in ONE flat float64 vector θ in
 * PyTorch's state_dict order: for each parametrised layer its weight, row-major as [out][in]
 * (dense) or [out_c][in_c][kh][kw] (conv2d), then its bias (if any). So a torch model built from
 * the same layers exchanges parameters with basinlab by torch.cat([p.flatten() for p in
 * model.parameters()]).
 *
 * Activations are stored sample-major: a batch of m samples is m rows of a layer's features,
 * and a [c,h,w] feature map is flattened row-major (channel, row, column).
 *
 * Layers: dense, conv2d (square kernel, stride, valid/same/explicit zero padding), avgpool and
 * maxpool (square window, stride = window, floor mode, as torch's defaults), flatten,
 * activation (relu, leaky_relu, pwl two-slope, identity) and sum (adds all features, no
 * parameters: the unit-output-weight student of teacher–student models). */
#ifndef BASIN_NET_H
#define BASIN_NET_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/rng.h"

typedef enum basin_layer_kind {
    BASIN_LAYER_DENSE,
    BASIN_LAYER_CONV2D,
    BASIN_LAYER_AVGPOOL,
    BASIN_LAYER_MAXPOOL,
    BASIN_LAYER_FLATTEN,
    BASIN_LAYER_ACTIVATION,
    BASIN_LAYER_SUM
} basin_layer_kind;

typedef enum basin_act_kind {
    BASIN_ACT_RELU,       /* s_neg = 0, s_pos = 1 */
    BASIN_ACT_LEAKY_RELU, /* s_neg = slope, s_pos = 1 */
    BASIN_ACT_PWL,        /* h(z) = s_pos·z (z ≥ 0), s_neg·z (z < 0) */
    BASIN_ACT_IDENTITY    /* s_neg = s_pos = 1: the deep-linear control */
} basin_act_kind;
/* At z == 0 the derivative used is s_neg, as in torch (relu'(0) = 0, leaky_relu'(0) = slope). */

typedef enum basin_padding {
    BASIN_PAD_VALID,   /* no padding */
    BASIN_PAD_SAME,    /* stride 1 only: total k−1, left/top (k−1)/2 (torch padding='same') */
    BASIN_PAD_EXPLICIT /* `pad` zeros on every side (torch padding=pad) */
} basin_padding;

typedef struct basin_layer_spec {
    basin_layer_kind kind;
    /* dense */
    size_t units;
    int bias; /* dense and conv2d: 1 = has a bias vector */
    /* conv2d */
    size_t filters, kernel, stride; /* stride ≥ 1 */
    basin_padding padding;
    size_t pad; /* BASIN_PAD_EXPLICIT only */
    /* avgpool, maxpool: square window `size`, stride = size */
    size_t size;
    /* activation: for RELU/LEAKY_RELU/IDENTITY basin_net_create fills s_neg/s_pos itself */
    basin_act_kind act;
    double slope;        /* leaky_relu */
    double s_neg, s_pos; /* pwl */
} basin_layer_spec;

typedef struct basin_arch {
    size_t in_rank; /* 1 ([d]) or 3 ([c,h,w]) */
    size_t in_shape[3];
    size_t n_layers;
    const basin_layer_spec *layers; /* borrowed; basin_net_create copies it */
} basin_arch;

/* Hard limits checked by basin_net_create (the server publishes stricter ones). */
#define BASIN_NET_MAX_LAYERS 256
#define BASIN_NET_MAX_WIDTH 65536

typedef struct basin_net basin_net;

typedef struct basin_net_error {
    long layer;     /* offending layer index, −1 for the input shape or the whole net */
    char field[24]; /* offending field name ("units", "kernel", ...) or "" */
    char message[160];
} basin_net_error;

typedef struct basin_layer_info {
    basin_layer_kind kind;
    size_t in_rank, in_shape[3], in_dim;
    size_t out_rank, out_shape[3], out_dim;
    size_t param_offset; /* into θ */
    size_t weight_count, bias_count;
    double s_neg, s_pos;      /* activation slopes */
    size_t pad_top, pad_left; /* conv2d */
} basin_layer_info;

/* Check arch and build the net. On BASIN_EINVAL/BASIN_ERANGE, err (if not NULL) names the layer
 * and field. The net does not keep a pointer to arch. */
int basin_net_create(const basin_arch *arch, basin_net **out, basin_net_error *err);
void basin_net_free(basin_net *net);

size_t basin_net_param_count(const basin_net *net);
size_t basin_net_in_dim(const basin_net *net);
size_t basin_net_out_dim(const basin_net *net);
size_t basin_net_layer_count(const basin_net *net);
void basin_net_layer_info(const basin_net *net, size_t layer, basin_layer_info *info);
/* The layer specs (normalised: activation slopes filled in). */
const basin_layer_spec *basin_net_layer_spec(const basin_net *net, size_t layer);
/* 1 when every activation is positively homogeneous (s_pos > 0 or identity), which gives the
 * per-unit rescaling symmetry. */
int basin_net_is_homogeneous(const basin_net *net);

/* ---- initialisation ---- */
typedef enum basin_init_kind {
    BASIN_INIT_HE_NORMAL,      /* weights N(0, 2/fan_in), biases = bias */
    BASIN_INIT_HE_UNIFORM,     /* weights U(±sqrt(6/fan_in)), biases = bias */
    BASIN_INIT_XAVIER_NORMAL,  /* weights N(0, 2/(fan_in+fan_out)), biases = bias */
    BASIN_INIT_XAVIER_UNIFORM, /* weights U(±sqrt(6/(fan_in+fan_out))), biases = bias */
    BASIN_INIT_NORMAL,         /* every parameter N(0, std²) */
    BASIN_INIT_UNIFORM,        /* every parameter U(−a, a) */
    BASIN_INIT_GIVEN           /* copy `given` (param_count values) */
} basin_init_kind;

typedef struct basin_init {
    basin_init_kind kind;
    double std;  /* normal */
    double a;    /* uniform */
    double bias; /* He/Xavier: constant bias value */
    const double *given;
    size_t given_len;
} basin_init;

/* Fill θ (param_count values) from rng. fan_in of conv = in_c·k·k, fan_out = out_c·k·k. */
int basin_net_init_params(const basin_net *net, const basin_init *init, basin_rng *rng,
                          double *theta);

/* ---- evaluation ---- */
/* Scratch memory for evaluating one net on up to max_batch samples at a time. Not shared
 * between threads; larger requests are processed in chunks of max_batch. */
typedef struct basin_net_ws basin_net_ws;
int basin_net_ws_create(const basin_net *net, size_t max_batch, basin_net_ws **out);
void basin_net_ws_free(basin_net_ws *ws);

/* out (m × out_dim) = f_θ(x) for m input rows x (m × in_dim). */
int basin_net_forward(const basin_net *net, basin_net_ws *ws, const double *theta, const double *x,
                      size_t m, double *out);

/* Empirical risk over the samples idx[0..m) of ds (idx == NULL: samples 0..m−1):
 *   R = (1/m) Σ ℓ(f_θ(x_i), y_i),
 * and, when grad != NULL, ∇R (param_count values). No L2 term here (see objective.h). */
int basin_net_risk_grad(const basin_net *net, basin_net_ws *ws, const double *theta,
                        const basin_dataset *ds, const size_t *idx, size_t m,
                        const basin_loss *loss, double *risk, double *grad);

/* hv = ∇²R(θ) v exactly (Pearlmutter's R-operator: forward-mode over reverse-mode; the
 * activations' second derivative is zero away from kinks, max pooling routes through the
 * argmax). Same sample selection as basin_net_risk_grad. */
int basin_net_hvp(const basin_net *net, basin_net_ws *ws, const double *theta,
                  const basin_dataset *ds, const size_t *idx, size_t m, const basin_loss *loss,
                  const double *v, double *hv);

/* Pre-activations of the last forward pass in ws for layer `layer` (an ACTIVATION layer's
 * input, or a MAXPOOL layer's input): rows of in_dim values for each of the last chunk's samples.
 * Used by the certificate code (activation patterns, margins). */
int basin_net_ws_layer_input(const basin_net_ws *ws, size_t layer, const double **values,
                             size_t *rows, size_t *cols);

/* Names of layer kinds / activation kinds as used in specs ("dense", "relu", ...). */
const char *basin_layer_kind_name(basin_layer_kind kind);
const char *basin_act_kind_name(basin_act_kind kind);

#endif
