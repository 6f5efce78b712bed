/* The block kernel for convolutional nets (net_conv.c): risk and gradient of one θ with 8
 * samples per SIMD vector and forward, loss and backward fused per block of samples, direct
 * convolution (no im2col, no GEMM). basin_net_risk_grad uses it for the nets it takes
 * (basin__conv_eligible) on CPUs with AVX-512 or AVX2+FMA; other nets and CPUs keep the BLAS
 * path. The R-operator and the forward-only entry points always use the BLAS path. */
#ifndef BASIN_CONV_INT_H
#define BASIN_CONV_INT_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "lanes_int.h"

#define BASIN__CONV_MAX_STAGES 64 /* layers other than flatten */

/* 1 when the kernel takes net: a [c,h,w] input, at least one conv2d layer, at most
 * BASIN__CONV_MAX_STAGES non-flatten layers, out_dim ≤ 128, and block buffers and parameter
 * partial sums within fixed bounds. Depends on the net only. */
int basin__conv_eligible(const basin_net *net);

/* Doubles of scratch the kernel needs for net whatever the instruction set (0 when not
 * eligible), and the same but 0 also when this CPU has neither AVX-512 nor AVX2+FMA (then
 * basin_net_risk_grad keeps the BLAS path). */
size_t basin__conv_scratch_need(const basin_net *net);
size_t basin__conv_scratch_len(const basin_net *net);

/* risk = (1/m) Σ ℓ over the samples idx[0..m) (idx == NULL: 0..m−1) and, when grad != NULL,
 * grad = ∇R (overwritten). The selection must have been checked. ws != NULL receives the layer
 * values of the last ws->chunk rows (basin_net_ws_layer_input). Never allocates. */
void basin__conv_eval(const basin_net *net, const double *theta, const basin_dataset *ds,
                      const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                      double *risk, double *scratch, basin_net_ws *ws);

/* The same with one instruction set forced (every one gives the same bits): BASIN_OK,
 * BASIN_ENOTSUP when this CPU or build lacks it, BASIN_EINVAL for a net it does not take or
 * m == 0. scratch: basin__conv_scratch_need(net) doubles. */
int basin__conv_eval_isa(basin__lanes_isa isa, const basin_net *net, const double *theta,
                         const basin_dataset *ds, const size_t *idx, size_t m,
                         const basin_loss *loss, double *grad, double *risk, double *scratch,
                         basin_net_ws *ws);

#endif
