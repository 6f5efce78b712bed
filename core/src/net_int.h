/* Private layout of basin_net and basin_net_ws, shared by the net_*.c files: the checked layer
 * table built by basin_net_create, the workspace buffers, and the per-layer kernels
 * (net_layers.c) that the forward, backward and R-operator drivers (net_eval.c, net_hvp.c)
 * string together.
 *
 * Buffer conventions: every batch buffer is sample-major, m rows of a layer's features. act[l]
 * is the input of layer l (act[0] the gathered input rows, act[n_layers] the output); a flatten
 * layer changes no data, so act[l+1] aliases act[l] there. ract[] holds the R-values
 * R{act[l]} = d/dε act[l](θ + εv) with the same aliasing. */
#ifndef BASIN_NET_INT_H
#define BASIN_NET_INT_H

#include <stddef.h>

#include "basin/net.h"

typedef struct basin__layer {
    basin_layer_spec spec; /* normalised (activation slopes filled in) */
    basin_layer_info info;
    size_t fan_in, fan_out; /* parametrised layers; 0 otherwise */
    size_t conv_p;          /* conv2d: output positions out_h·out_w */
    size_t conv_ckk;        /* conv2d: in_c·k·k, the length of one im2col row */
} basin__layer;

struct basin_net {
    size_t n_layers;
    basin__layer *layers;
    size_t in_rank, in_shape[3], in_dim, out_dim, param_count;
    size_t max_dim;     /* largest feature count of any layer input or output */
    size_t first_param; /* index of the first parametrised layer; n_layers when none */
};

struct basin_net_ws {
    const basin_net *net;
    size_t max_batch;
    size_t chunk; /* rows per chunk of basin_net_risk_grad: ≤ max_batch, sized for the cache */
    size_t rows;  /* samples held by the last forward pass (0 before any) */
    double **act, **ract;
    double *delta[2], *rdelta[2]; /* ping-pong back-propagated errors and their R-values */
    double *col;                  /* conv im2col rows of a group of samples */
    double *tmp;                  /* conv output in [sample·position][filter] order */
    size_t *conv_group;           /* conv2d layer l: samples per im2col group */
    size_t **argmax;              /* maxpool layer l: input index of each output, per row */
    double *block;                /* the one allocation behind act, ract, delta, col, tmp */
    size_t *iblock;               /* the one allocation behind argmax */
    double *lanes;                /* lane-kernel scratch (lanes_int.h); NULL when not eligible */
    double *rowscratch;           /* row-kernel scratch (rows_int.h); NULL when not eligible */
    double *convscratch;          /* conv block-kernel scratch (conv_int.h); NULL when not taken */
    double **colkeep;             /* conv2d layer l: im2col of up to `chunk` rows, or NULL */
    double *keepblock;            /* the one allocation behind colkeep */
};

/* 1 for dense and conv2d layers. */
int basin__layer_has_params(const basin__layer *L);

/* ---- kernels (net_layers.c); m rows each, buffers as described above ---- */
/* z (=, or += when acc) a·Wᵀ + b (b may be NULL). */
void basin__dense_fwd(const basin__layer *L, size_t m, const double *a, const double *W,
                      const double *b, int acc, double *z);
/* gW += dᵀ·a; gb += column sums of d (gb may be NULL). */
void basin__dense_wgrad(const basin__layer *L, size_t m, const double *d, const double *a,
                        double *gW, double *gb);
/* d_in (=, or += when acc) d·W. */
void basin__dense_bwd(const basin__layer *L, size_t m, const double *d, const double *W, int acc,
                      double *d_in);
/* The same three for a convolution, through ws->col and ws->tmp. keep (from
 * basin__conv_keep, or NULL): the forward pass leaves its im2col there, and a weight gradient of
 * the same input rows passes it as kept instead of unfolding them again. */
double *basin__conv_keep(const basin_net_ws *ws, size_t layer, size_t m);
void basin__conv_fwd(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                     const double *a, const double *W, const double *b, int acc, double *z,
                     double *keep);
void basin__conv_wgrad(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                       const double *d, const double *a, double *gW, double *gb,
                       const double *kept);
/* tmp_ready: ws->tmp already holds d in GEMM order for all m rows, as a basin__conv_wgrad of
 * the same d with a kept im2col leaves it. */
void basin__conv_bwd(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                     const double *d, const double *W, int acc, double *d_in, int tmp_ready);
void basin__avgpool_fwd(const basin__layer *L, size_t m, const double *a, double *z);
void basin__avgpool_bwd(const basin__layer *L, size_t m, const double *d, double *d_in);
/* z = window maxima of a; argmax[j] = index into the sample's input of the first maximum. */
void basin__maxpool_fwd(const basin__layer *L, size_t m, const double *a, double *z,
                        size_t *argmax);
/* z[j] = a[argmax[j]]: the pool with the switch positions of the forward pass frozen. */
void basin__maxpool_gather(const basin__layer *L, size_t m, const double *a, const size_t *argmax,
                           double *z);
void basin__maxpool_bwd(const basin__layer *L, size_t m, const double *d, const size_t *argmax,
                        double *d_in);
/* out = h'(pre) ⊙ x: the activation itself (x = pre), its R-forward and its backward. */
void basin__act_apply(const basin__layer *L, size_t m, const double *pre, const double *x,
                      double *out);
void basin__sum_fwd(const basin__layer *L, size_t m, const double *a, double *z);
void basin__sum_bwd(const basin__layer *L, size_t m, const double *d, double *d_in);

/* ---- drivers (net_eval.c) ---- */
/* Check the arguments shared by basin_net_risk_grad and basin_net_hvp: the dataset matches the
 * net, the loss suits out_dim, every index is in range and every selected target admissible. */
int basin__check_selection(const basin_net *net, const basin_net_ws *ws, const basin_dataset *ds,
                           const size_t *idx, size_t m, const basin_loss *loss);
/* Copy the input rows of samples [start, start+count) of the selection into ws->act[0]. */
void basin__gather(basin_net_ws *ws, const basin_dataset *ds, const size_t *idx, size_t start,
                   size_t count);
/* Forward pass of m rows already in ws->act[0]; sets ws->rows. */
void basin__forward_rows(const basin_net *net, basin_net_ws *ws, const double *theta, size_t m);

#endif
