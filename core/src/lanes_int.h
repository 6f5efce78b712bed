/* The lane kernel for small dense nets (net_lanes.c): forward, loss and backward fused per
 * sample, for `lw` parameter vectors at once held in SIMD lanes (lw = 1 for one θ, lw =
 * BASIN__LANES for batched restarts). basin_net_risk_grad uses it with lw = 1 for every net it
 * accepts and basin_train_batch with lw = BASIN__LANES, and every lane performs exactly the
 * floating-point operations of the lw = 1 call on its own θ, which is what makes batched
 * restarts bit-identical to single ones.
 *
 * Packed layout: a θ-shaped vector for lw lanes is P[p·lw + lane] (parameter-major, lanes
 * innermost); for lw = 1 that is θ itself. */
#ifndef BASIN_LANES_INT_H
#define BASIN_LANES_INT_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"

#define BASIN__LANES 8            /* restarts evaluated together by the batched trainer */
#define BASIN__LANES_MAX_WIDTH 32 /* widest dense layer (in or out) the kernel takes */
#define BASIN__LANES_MAX_STAGES 8 /* dense layers */
#define BASIN__LANES_MAX_PARAMS 4096

/* 1 when net fits the lane kernel: a [d] input, only dense, activation and flatten layers, the
 * first parametrised layer dense, every activation right after a dense layer, widths ≤
 * BASIN__LANES_MAX_WIDTH, ≤ BASIN__LANES_MAX_STAGES dense layers and ≤ BASIN__LANES_MAX_PARAMS
 * parameters. Depends on the net only (never on lw), so one θ and a batch take the same path. */
int basin__lanes_eligible(const basin_net *net);

/* Doubles of scratch basin__lanes_eval needs for lw ∈ {1, BASIN__LANES} lanes (0 when the net
 * is not eligible). Small: bounded by the limits above. */
size_t basin__lanes_scratch_len(const basin_net *net, size_t lw);

/* p rounded up to the next 64-byte boundary (p must have 7 doubles of slack after it). The
 * 8-lane kernel wants P and G aligned like this. */
double *basin__align64(double *p);

/* Risk of lw packed parameter vectors P on the samples idx[0..m) of ds (idx == NULL: 0..m−1):
 * risk[lane] = (1/m) Σ ℓ(f(x_i), y_i) and, when G != NULL, G (packed like P, zeroed by the
 * caller) += ∇R. The selection and targets must have been checked (basin__check_selection).
 * ws != NULL (lw = 1 only) receives the layer values of the last ws->chunk-sized chunk, as
 * basin_net_risk_grad's other path leaves them (basin_net_ws_layer_input). Never allocates. */
void basin__lanes_eval(const basin_net *net, size_t lw, const double *P, const basin_dataset *ds,
                       const size_t *idx, size_t m, const basin_loss *loss, double *G, double *risk,
                       double *scratch, basin_net_ws *ws);

/* The same evaluation with one instruction set forced (tests check that every one gives the
 * same bits): BASIN_OK, BASIN_ENOTSUP when this CPU or build lacks it, BASIN_EINVAL for a net
 * the kernel does not take or a bad lw. */
typedef enum basin__lanes_isa {
    BASIN__ISA_GENERIC, /* portable C */
    BASIN__ISA_AVX2,    /* x86-64 AVX2 + FMA */
    BASIN__ISA_AVX512   /* x86-64 AVX-512 F/VL/DQ */
} basin__lanes_isa;
int basin__lanes_eval_isa(basin__lanes_isa isa, const basin_net *net, size_t lw, const double *P,
                          const basin_dataset *ds, const size_t *idx, size_t m,
                          const basin_loss *loss, double *G, double *risk, double *scratch,
                          basin_net_ws *ws);

#endif
