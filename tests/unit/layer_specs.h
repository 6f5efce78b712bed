/* Layer-spec builders shared by the kernel tests (test_lanes, test_rows_kernel,
 * test_conv_kernel): one zeroed basin_layer_spec with the fields of one layer kind set. */
#ifndef BASINLAB_TEST_LAYER_SPECS_H
#define BASINLAB_TEST_LAYER_SPECS_H

#include <string.h>

#include "basin/net.h"

static inline basin_layer_spec dense(size_t units, int bias)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_DENSE;
    s.units = units;
    s.bias = bias;
    return s;
}

/* a: leaky slope and s_neg; b: s_pos (basin_net_create fills the slopes of relu/leaky/identity) */
static inline basin_layer_spec act(basin_act_kind kind, double a, double b)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_ACTIVATION;
    s.act = kind;
    s.slope = a;
    s.s_neg = a;
    s.s_pos = b;
    return s;
}

/* A layer with no fields but its kind and an optional size (flatten, sum, pools). */
static inline basin_layer_spec simple(basin_layer_kind kind, size_t size)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.size = size;
    return s;
}

static inline basin_layer_spec conv(size_t filters, size_t k, size_t stride, basin_padding pad,
                                    size_t p, int bias)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_CONV2D;
    s.filters = filters;
    s.kernel = k;
    s.stride = stride;
    s.padding = pad;
    s.pad = p;
    s.bias = bias;
    return s;
}

#endif
