/* The row kernel (net_rows.c): risk and gradient of one θ for mid-size dense nets, with the
 * units of one sample in the SIMD lanes and forward, loss and backward fused per block of samples.
 * It takes the nets the lane kernel (lanes_int.h) does not take because a layer is wider than
 * BASIN__LANES_MAX_WIDTH, up to BASIN__ROWS_MAX_WIDTH, on CPUs with AVX-512 (others keep the
 * BLAS path). Used by basin_net_risk_grad. */
#ifndef BASIN_ROWS_INT_H
#define BASIN_ROWS_INT_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"

#define BASIN__ROWS_MAX_WIDTH 128
#define BASIN__ROWS_MAX_STAGES 16

/* Doubles of scratch the row kernel needs for net, or 0 when it does not take the net (shape,
 * or a CPU without AVX-512). */
size_t basin__rows_scratch_len(const basin_net *net);

/* risk = (1/m) Σ ℓ over the samples idx[0..m) (idx == NULL: 0..m−1) and, when grad != NULL,
 * grad = ∇R (overwritten). The selection must have been checked. ws != NULL receives the
 * pre-activations (activation layers' inputs, what basin_net_ws_layer_input returns) of the last
 * ws->chunk rows; the other layer buffers of ws are left as they were. Never allocates. */
void basin__rows_eval(const basin_net *net, const double *theta, const basin_dataset *ds,
                      const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                      double *risk, double *scratch, basin_net_ws *ws);

#endif
