/* Per-layer kernels of the network: forward maps and their transposes for a batch of m
 * sample-major rows. The drivers in net_eval.c (forward, backward) and net_hvp.c (R-operator)
 * combine them; every kernel is linear in its data argument, so the same code serves the
 * forward pass, the R-forward pass and back-propagation.
 *
 * DESIGN
 * - Dense: Z = A·Wᵀ + 1·bᵀ, one cblas_dgemm for the whole batch; the weight gradient is
 *   Dᵀ·A and the input error D·W (W row-major [out][in], torch's layout).
 * - Conv2d by im2col: for a group of g samples, the patches form a (g·P) × (C·k·k) matrix
 *   (row = sample·position, column = channel·ky·kx, the order of the torch weight
 *   [F][C][k][k]), so the convolution is one GEMM Col·Wᵀ giving [sample·position][filter],
 *   then transposed into the [filter][position] feature layout while the bias is added. The
 *   weight gradient is Dᵀ·Col and the input error is col2im(D·W) (scatter-add of the patch
 *   errors). Groups bound the im2col memory (ws->conv_group) while keeping GEMMs large.
 *   When a chunk of rows fits one group, the forward pass can leave its im2col in a per-layer
 *   keep buffer (basin__conv_keep) and the weight gradient of the same rows reuses it instead
 *   of unfolding the input a second time.
 *   Padding is implicit: out-of-range taps read 0 and receive no error.
 * - Pools: window = stride = size, floor mode, so windows never overlap and the trailing rows
 *   and columns that fit no window get zero error. Max pooling keeps torch's rule: the first
 *   strict maximum in row-major window order wins (a NaN always wins), and the chosen input
 *   index is stored so that backward and the R-forward pass route through the same switch.
 * - Activations: h(z) = s·z with s = s_pos when z > 0 and s = s_neg otherwise. At z == 0 the
 *   value is 0 either way; the derivative there uses s_neg, which is torch's convention
 *   (relu'(0) = 0, leaky_relu'(0) = slope). h'' = 0, so R{h(z)} = h'(z)·R{z} and the backward
 *   of the R-pass uses the same slopes. */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "net_int.h"

/* BLAS takes int sizes; basin_net_ws_create has checked that every size passed fits. */
#define BI(x) ((blasint)(x))

void basin__dense_fwd(const basin__layer *L, size_t m, const double *a, const double *W,
                      const double *b, int acc, double *z)
{
    size_t in = L->info.in_dim, out = L->info.out_dim;
    for (size_t i = 0; i < m; i++) {
        double *zi = z + i * out;
        if (!acc && b)
            memcpy(zi, b, out * sizeof *zi);
        else if (!acc)
            memset(zi, 0, out * sizeof *zi);
        else if (b)
            for (size_t j = 0; j < out; j++)
                zi[j] += b[j];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BI(m), BI(out), BI(in), 1.0, a, BI(in), W,
                BI(in), 1.0, z, BI(out));
}

void basin__dense_wgrad(const basin__layer *L, size_t m, const double *d, const double *a,
                        double *gW, double *gb)
{
    size_t in = L->info.in_dim, out = L->info.out_dim;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, BI(out), BI(in), BI(m), 1.0, d, BI(out), a,
                BI(in), 1.0, gW, BI(in));
    if (gb)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < out; j++)
                gb[j] += d[i * out + j];
}

void basin__dense_bwd(const basin__layer *L, size_t m, const double *d, const double *W, int acc,
                      double *d_in)
{
    size_t in = L->info.in_dim, out = L->info.out_dim;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BI(m), BI(in), BI(out), 1.0, d, BI(out),
                W, BI(in), acc ? 1.0 : 0.0, d_in, BI(in));
}

/* Patches of g samples (a points at the first) into col, one row per output position. Windows
 * entirely inside the image (all of them without padding) are copied without bound checks. */
static void im2col(const basin__layer *L, const double *a, size_t g, double *col)
{
    const basin_layer_info *li = &L->info;
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2];
    size_t k = L->spec.kernel, st = L->spec.stride, ckk = L->conv_ckk;
    ptrdiff_t pt = (ptrdiff_t)li->pad_top, pl = (ptrdiff_t)li->pad_left;
    for (size_t s = 0; s < g; s++) {
        const double *as = a + s * li->in_dim;
        for (size_t oy = 0; oy < OH; oy++) {
            ptrdiff_t y0 = (ptrdiff_t)(oy * st) - pt;
            int rows_in = y0 >= 0 && y0 + (ptrdiff_t)k <= (ptrdiff_t)H;
            for (size_t ox = 0; ox < OW; ox++) {
                double *row = col + ((s * OH + oy) * OW + ox) * ckk;
                ptrdiff_t x0 = (ptrdiff_t)(ox * st) - pl;
                if (rows_in && x0 >= 0 && x0 + (ptrdiff_t)k <= (ptrdiff_t)Wd) {
                    for (size_t c = 0; c < C; c++)
                        for (size_t ky = 0; ky < k; ky++) {
                            const double *src = as + (c * H + (size_t)y0 + ky) * Wd + (size_t)x0;
                            double *dst = row + (c * k + ky) * k;
                            for (size_t kx = 0; kx < k; kx++)
                                dst[kx] = src[kx];
                        }
                    continue;
                }
                for (size_t c = 0; c < C; c++) {
                    for (size_t ky = 0; ky < k; ky++) {
                        double *dst = row + (c * k + ky) * k;
                        ptrdiff_t iy = y0 + (ptrdiff_t)ky;
                        if (iy < 0 || iy >= (ptrdiff_t)H) {
                            memset(dst, 0, k * sizeof *dst);
                            continue;
                        }
                        const double *src = as + (c * H + (size_t)iy) * Wd;
                        for (size_t kx = 0; kx < k; kx++) {
                            ptrdiff_t ix = x0 + (ptrdiff_t)kx;
                            dst[kx] = (ix >= 0 && ix < (ptrdiff_t)Wd) ? src[ix] : 0.0;
                        }
                    }
                }
            }
        }
    }
}

/* The transpose of im2col: add the patch errors of g samples into d_in (the first sample's). */
static void col2im_add(const basin__layer *L, const double *col, size_t g, double *d_in)
{
    const basin_layer_info *li = &L->info;
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2];
    size_t k = L->spec.kernel, st = L->spec.stride, ckk = L->conv_ckk;
    ptrdiff_t pt = (ptrdiff_t)li->pad_top, pl = (ptrdiff_t)li->pad_left;
    for (size_t s = 0; s < g; s++) {
        double *ds = d_in + s * li->in_dim;
        for (size_t oy = 0; oy < OH; oy++) {
            for (size_t ox = 0; ox < OW; ox++) {
                const double *row = col + ((s * OH + oy) * OW + ox) * ckk;
                ptrdiff_t x0 = (ptrdiff_t)(ox * st) - pl;
                for (size_t c = 0; c < C; c++) {
                    for (size_t ky = 0; ky < k; ky++) {
                        ptrdiff_t iy = (ptrdiff_t)(oy * st + ky) - pt;
                        if (iy < 0 || iy >= (ptrdiff_t)H)
                            continue;
                        const double *src = row + (c * k + ky) * k;
                        double *dst = ds + (c * H + (size_t)iy) * Wd;
                        for (size_t kx = 0; kx < k; kx++) {
                            ptrdiff_t ix = x0 + (ptrdiff_t)kx;
                            if (ix >= 0 && ix < (ptrdiff_t)Wd)
                                dst[ix] += src[kx];
                        }
                    }
                }
            }
        }
    }
}

/* tmp[(s·P + p)·F + f] = d[s][f·P + p] for g samples: errors in GEMM order. */
static void to_position_major(const basin__layer *L, const double *d, size_t g, double *tmp)
{
    size_t P = L->conv_p, F = L->spec.filters, out = L->info.out_dim;
    for (size_t s = 0; s < g; s++)
        for (size_t f = 0; f < F; f++) {
            const double *df = d + s * out + f * P;
            double *t = tmp + s * P * F + f;
            for (size_t p = 0; p < P; p++)
                t[p * F] = df[p];
        }
}

double *basin__conv_keep(const basin_net_ws *ws, size_t layer, size_t m)
{
    return ws->colkeep && m <= ws->chunk ? ws->colkeep[layer] : NULL;
}

void basin__conv_fwd(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                     const double *a, const double *W, const double *b, int acc, double *z,
                     double *keep)
{
    size_t P = L->conv_p, F = L->spec.filters, ckk = L->conv_ckk;
    size_t in = L->info.in_dim, out = L->info.out_dim;
    size_t gmax = keep ? m : ws->conv_group[layer]; /* a keep buffer holds all m rows */
    double *col = keep ? keep : ws->col;
    for (size_t s0 = 0; s0 < m; s0 += gmax) {
        size_t g = m - s0 < gmax ? m - s0 : gmax;
        im2col(L, a + s0 * in, g, col);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BI(g * P), BI(F), BI(ckk), 1.0, col,
                    BI(ckk), W, BI(ckk), 0.0, ws->tmp, BI(F));
        for (size_t s = 0; s < g; s++)
            for (size_t f = 0; f < F; f++) {
                double bf = b ? b[f] : 0.0;
                double *zf = z + (s0 + s) * out + f * P;
                const double *t = ws->tmp + s * P * F + f;
                if (acc)
                    for (size_t p = 0; p < P; p++)
                        zf[p] += t[p * F] + bf;
                else
                    for (size_t p = 0; p < P; p++)
                        zf[p] = t[p * F] + bf;
            }
    }
}

void basin__conv_wgrad(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                       const double *d, const double *a, double *gW, double *gb, const double *kept)
{
    size_t P = L->conv_p, F = L->spec.filters, ckk = L->conv_ckk;
    size_t in = L->info.in_dim, out = L->info.out_dim;
    size_t gmax = kept ? m : ws->conv_group[layer];
    for (size_t s0 = 0; s0 < m; s0 += gmax) {
        size_t g = m - s0 < gmax ? m - s0 : gmax;
        if (!kept)
            im2col(L, a + s0 * in, g, ws->col);
        to_position_major(L, d + s0 * out, g, ws->tmp);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, BI(F), BI(ckk), BI(g * P), 1.0,
                    ws->tmp, BI(F), kept ? kept : ws->col, BI(ckk), 1.0, gW, BI(ckk));
    }
    if (gb)
        for (size_t s = 0; s < m; s++)
            for (size_t f = 0; f < F; f++) {
                const double *df = d + s * out + f * P;
                double acc = 0.0;
                for (size_t p = 0; p < P; p++)
                    acc += df[p];
                gb[f] += acc;
            }
}

void basin__conv_bwd(const basin__layer *L, basin_net_ws *ws, size_t layer, size_t m,
                     const double *d, const double *W, int acc, double *d_in, int tmp_ready)
{
    size_t P = L->conv_p, F = L->spec.filters, ckk = L->conv_ckk;
    size_t in = L->info.in_dim, out = L->info.out_dim;
    size_t gmax = tmp_ready ? m : ws->conv_group[layer];
    if (!acc)
        memset(d_in, 0, m * in * sizeof *d_in);
    for (size_t s0 = 0; s0 < m; s0 += gmax) {
        size_t g = m - s0 < gmax ? m - s0 : gmax;
        if (!tmp_ready)
            to_position_major(L, d + s0 * out, g, ws->tmp);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BI(g * P), BI(ckk), BI(F), 1.0,
                    ws->tmp, BI(F), W, BI(ckk), 0.0, ws->col, BI(ckk));
        col2im_add(L, ws->col, g, d_in + s0 * in);
    }
}

void basin__avgpool_fwd(const basin__layer *L, size_t m, const double *a, double *z)
{
    const basin_layer_info *li = &L->info;
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2], p = L->spec.size;
    double scale = 1.0 / (double)(p * p);
    for (size_t s = 0; s < m; s++) {
        const double *as = a + s * li->in_dim;
        double *zs = z + s * li->out_dim;
        for (size_t c = 0; c < C; c++)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < OW; ox++) {
                    double acc = 0.0;
                    for (size_t dy = 0; dy < p; dy++) {
                        const double *r = as + (c * H + oy * p + dy) * Wd + ox * p;
                        for (size_t dx = 0; dx < p; dx++)
                            acc += r[dx];
                    }
                    zs[(c * OH + oy) * OW + ox] = acc * scale;
                }
    }
}

void basin__avgpool_bwd(const basin__layer *L, size_t m, const double *d, double *d_in)
{
    const basin_layer_info *li = &L->info;
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2], p = L->spec.size;
    double scale = 1.0 / (double)(p * p);
    if (OH * p != H || OW * p != Wd) /* floor mode left rows or columns that get no error */
        memset(d_in, 0, m * li->in_dim * sizeof *d_in);
    for (size_t s = 0; s < m; s++) {
        const double *ds = d + s * li->out_dim;
        double *es = d_in + s * li->in_dim;
        for (size_t c = 0; c < C; c++)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < OW; ox++) {
                    double v = ds[(c * OH + oy) * OW + ox] * scale;
                    for (size_t dy = 0; dy < p; dy++) {
                        double *r = es + (c * H + oy * p + dy) * Wd + ox * p;
                        for (size_t dx = 0; dx < p; dx++)
                            r[dx] = v;
                    }
                }
    }
}

void basin__maxpool_fwd(const basin__layer *L, size_t m, const double *a, double *z, size_t *argmax)
{
    const basin_layer_info *li = &L->info;
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2], p = L->spec.size;
    for (size_t s = 0; s < m; s++) {
        const double *as = a + s * li->in_dim;
        double *zs = z + s * li->out_dim;
        size_t *am = argmax + s * li->out_dim;
        for (size_t c = 0; c < C; c++)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < OW; ox++) {
                    size_t best = (c * H + oy * p) * Wd + ox * p;
                    double bv = -INFINITY;
                    for (size_t dy = 0; dy < p; dy++)
                        for (size_t dx = 0; dx < p; dx++) {
                            size_t j = (c * H + oy * p + dy) * Wd + ox * p + dx;
                            if (as[j] > bv || isnan(as[j])) {
                                bv = as[j];
                                best = j;
                            }
                        }
                    size_t o = (c * OH + oy) * OW + ox;
                    zs[o] = bv;
                    am[o] = best;
                }
    }
}

void basin__maxpool_gather(const basin__layer *L, size_t m, const double *a, const size_t *argmax,
                           double *z)
{
    size_t in = L->info.in_dim, out = L->info.out_dim;
    for (size_t s = 0; s < m; s++)
        for (size_t o = 0; o < out; o++)
            z[s * out + o] = a[s * in + argmax[s * out + o]];
}

void basin__maxpool_bwd(const basin__layer *L, size_t m, const double *d, const size_t *argmax,
                        double *d_in)
{
    size_t in = L->info.in_dim, out = L->info.out_dim;
    memset(d_in, 0, m * in * sizeof *d_in);
    for (size_t s = 0; s < m; s++)
        for (size_t o = 0; o < out; o++)
            d_in[s * in + argmax[s * out + o]] += d[s * out + o];
}

void basin__act_apply(const basin__layer *L, size_t m, const double *pre, const double *x,
                      double *out)
{
    double sn = L->spec.s_neg, sp = L->spec.s_pos;
    size_t n = m * L->info.in_dim;
    for (size_t i = 0; i < n; i++)
        out[i] = (pre[i] > 0 ? sp : sn) * x[i];
}

void basin__sum_fwd(const basin__layer *L, size_t m, const double *a, double *z)
{
    size_t in = L->info.in_dim;
    for (size_t s = 0; s < m; s++) {
        double acc = 0.0;
        for (size_t j = 0; j < in; j++)
            acc += a[s * in + j];
        z[s] = acc;
    }
}

void basin__sum_bwd(const basin__layer *L, size_t m, const double *d, double *d_in)
{
    size_t in = L->info.in_dim;
    for (size_t s = 0; s < m; s++)
        for (size_t j = 0; j < in; j++)
            d_in[s * in + j] = d[s];
}
