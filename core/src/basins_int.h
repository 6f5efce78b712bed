/* Private helpers shared by the basins_*.c files (basins.h): the table of hidden slots (the
 * layers whose units can be rescaled and permuted, with where their incoming and outgoing
 * weights sit in θ), activation-pattern encoding, and batched evaluation helpers.
 *
 * Parameter geometry of a slot (see net.h for the θ layout): unit u of layer `layer` has its
 * incoming weights in the contiguous row W_l[u][0..in_len) (dense [out][in], conv
 * [out_c][in_c·k·k]) and its bias at b_l[u]; the next parametrised layer `next` has next_rows
 * weight rows of next_cols columns, and unit u feeds the contiguous block of columns
 * [u·block, (u+1)·block) of every row (block = 1 dense→dense, h·w through flatten, k·k for a
 * conv's input channel). */
#ifndef BASIN_BASINS_INT_H
#define BASIN_BASINS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "basin/basins.h"
#include "net_int.h"

typedef struct basin__slot {
    size_t layer;     /* the dense/conv2d layer whose output units are the slot's units */
    size_t next;      /* the next parametrised layer */
    size_t units;     /* dense units or conv filters */
    size_t in_len;    /* incoming weights per unit */
    int has_bias;     /* layer has a bias vector */
    size_t next_rows; /* weight rows of the next layer */
    size_t next_cols; /* weight columns of the next layer */
    size_t block;     /* next_cols / units */
    int rescalable;   /* a nonlinear activation lies between: normalise this slot */
    size_t w_off;     /* offset in θ of W_l[0][0] */
    size_t b_off;     /* offset in θ of b_l[0] (meaningful when has_bias) */
    size_t wn_off;    /* offset in θ of W_next[0][0] */
} basin__slot;

/* The hidden slots of net, in layer order (*slots NULL when there are none; free with
 * basin_free). BASIN_ERANGE when a dimension does not fit BLAS's int. */
int basin__find_slots(const basin_net *net, basin__slot **slots, size_t *n_slots);

/* Normalise the rescalable slots of theta in place (the body of basin_normalize). */
void basin__normalize_slots(const basin__slot *slots, size_t n_slots, double *theta);

/* ---- activation patterns ---- */
typedef struct basin__pattern_shape {
    size_t sign_units; /* units of nonlinear activation layers: one bit each */
    size_t sign_words; /* ⌈sign_units / 32⌉ */
    size_t pool_units; /* max-pool windows: one word each (the argmax) */
    size_t words;      /* sign_words + pool_units per sample */
} basin__pattern_shape;

int basin__pattern_shape_of(const basin_net *net, basin__pattern_shape *shape);
/* The pattern of row `row` of the last forward pass held by ws, into words[0..shape->words). */
void basin__pattern_row(const basin_net *net, const basin_net_ws *ws,
                        const basin__pattern_shape *shape, size_t row, uint32_t *words);
/* Entries (bits and pool words) on which two patterns differ. */
size_t basin__pattern_diff(const basin__pattern_shape *shape, const uint32_t *a, const uint32_t *b);

/* ---- evaluation ---- */
/* Check that ds (≥ 1 sample) and loss suit net. */
int basin__check_data(const basin_net *net, const basin_dataset *ds, const basin_loss *loss);
/* The batch size to use: requested (0 = default) capped by the number of samples. */
size_t basin__batch_size(size_t requested, size_t n);
/* Number of distinct patterns of theta on ds, using ws (any max_batch) for the forward passes. */
int basin__count_regions_ws(const basin_net *net, basin_net_ws *ws, const basin_dataset *ds,
                            const double *theta, size_t *regions);

#endif
