/* The row kernel: risk and gradient of one parameter vector for mid-size dense nets (layers of
 * up to 128 units), with the units of one sample in the AVX-512 lanes and forward, loss and
 * backward fused per block of 48 samples. basin_net_risk_grad uses it for the dense nets the
 * lane kernel does not take (rows_int.h); elsewhere those nets keep the BLAS path.
 *
 * DESIGN
 * - Why. At these widths one GEMM call per layer and pass does little work, and the OpenBLAS
 *   build here runs AVX2 kernels (OPENBLAS_CORETYPE=Haswell): a fused AVX-512 kernel keeps the
 *   state of a block (its layer values, slopes and errors) in L1/L2, does the activation and
 *   its mask in the same pass as the products, and uses the full vector width.
 * - Layout. Everything is sample-major, as basin_net_ws stores layers: a block row is one
 *   sample, its features padded with zeros to a multiple of 8, so one vector is 8 units of one
 *   sample. Each of the three products of a layer is then one register-tiled micro-kernel
 *   C[r][c-vectors] += Σ_k P[r][k]·Q[k][c-vectors] (P broadcast, Q loaded as vectors; tiles of
 *   MR = 6 rows × MC = 4 vectors: 24 independent fma chains, 10 loads per 24 fma's):
 *     forward       z[s][j] = b_j + Σ_i a[s][i]·W[j][i]   P = a,   Q = Wᵀ (padded copy), k = i
 *     input errors  e[s][i] = Σ_j d[s][j]·W[j][i]         P = d,   Q = W (padded copy),  k = j
 *     weights       G[j][i] += Σ_s d[s][j]·a[s][i]         P = dᵀ,  Q = a,                k = s
 *   each sum in ascending k from the first term (forward: from b_j). The weight gradient is
 *   therefore exact per entry (no lane partials): every G[j][i] and bias sum runs over the
 *   selected samples in selection order, block after block. So the result is deterministic and
 *   independent of the caller; it is summed in another order than the BLAS path (a different
 *   rounding, not a different value: test_lanes / test_rows_kernel check 1e-12).
 * - Padding. Padded units have zero weights and bias in the copies, so their values and errors
 *   are exactly 0. A partial last block runs its sample tiles up to a multiple of MR on zero
 *   inputs; those rows get zero output errors and the weight sums stop at the real samples.
 * - Recording. basin_net_ws_layer_input reads the pre-activations (activation layers' inputs)
 *   of the last chunk row-major, and for dense nets the last chunk is every selected row. The
 *   block rows are already rows, so recording is a copy of their real columns, with streaming
 *   stores (megabytes per pass: they would evict the block and cost a read for ownership per
 *   line). Only those activation inputs are recorded, not the dense layers' inputs or the
 *   outputs: nothing reads them after basin_net_risk_grad, and writing them doubled the memory
 *   traffic of a pass (rows_int.h).
 * - Nets the lane kernel takes never come here, so batched restarts (lanes) and single ones
 *   still share one kernel; this one only ever evaluates one θ. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lanes_int.h"
#include "net_int.h"
#include "rows_int.h"

#define NB 48 /* samples per block: a multiple of MR */
#define MR 6  /* register tile: rows */
#define MC 4  /*                vectors of 8 columns */

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define ROWS_SIMD 1
#include <immintrin.h>
#if defined(__clang__)
#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#else
#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma,prefer-vector-width=512")))
#endif
#define INLINE static inline __attribute__((always_inline))
#else
#define ROWS_SIMD 0
#endif

typedef struct rstage {
    size_t in, out, inp, outp; /* widths and widths padded to a multiple of 8 */
    size_t w_off, b_off;       /* in θ */
    int has_bias, has_act;
    double slope[2]; /* s_neg, s_pos */
    size_t dense_layer, act_layer;
    size_t wt_off, wp_off, bb_off, g_off, gb_off; /* in the weight region of the scratch */
    size_t a_off, sl_off;                         /* in the block buffers (× NB doubles) */
} rstage;

typedef struct rplan {
    size_t n;
    rstage st[BASIN__ROWS_MAX_STAGES];
    size_t in0, in0p, k, kp, maxp, act_len, sl_len, dim, wlen;
} rplan;

static size_t pad8(size_t n)
{
    return (n + 7) / 8 * 8;
}

static int rows_plan(const basin_net *net, rplan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (net->in_rank != 1 || basin__lanes_eligible(net))
        return 0;
    int after_dense = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        rstage *st;
        switch (L->spec.kind) {
        case BASIN_LAYER_FLATTEN:
            continue;
        case BASIN_LAYER_DENSE:
            if (pl->n == BASIN__ROWS_MAX_STAGES || L->info.in_dim > BASIN__ROWS_MAX_WIDTH ||
                L->info.out_dim > BASIN__ROWS_MAX_WIDTH)
                return 0;
            st = &pl->st[pl->n++];
            st->in = L->info.in_dim;
            st->out = L->info.out_dim;
            st->w_off = L->info.param_offset;
            st->b_off = L->info.param_offset + L->info.weight_count;
            st->has_bias = L->info.bias_count > 0;
            st->dense_layer = l;
            after_dense = 1;
            break;
        case BASIN_LAYER_ACTIVATION:
            if (!after_dense)
                return 0;
            st = &pl->st[pl->n - 1];
            st->has_act = 1;
            st->slope[0] = L->spec.s_neg;
            st->slope[1] = L->spec.s_pos;
            st->act_layer = l;
            after_dense = 0;
            break;
        default:
            return 0;
        }
    }
    if (pl->n == 0)
        return 0;
    pl->in0 = pl->st[0].in;
    pl->in0p = pad8(pl->in0);
    pl->k = pl->st[pl->n - 1].out;
    pl->kp = pad8(pl->k);
    pl->dim = net->param_count;
    for (size_t t = 0; t < pl->n; t++) {
        rstage *st = &pl->st[t];
        st->inp = pad8(st->in);
        st->outp = pad8(st->out);
        st->wt_off = pl->wlen;
        pl->wlen += st->in * st->outp;
        st->wp_off = pl->wlen;
        pl->wlen += st->out * st->inp;
        st->bb_off = pl->wlen;
        pl->wlen += st->outp;
        st->g_off = pl->wlen;
        pl->wlen += st->out * st->inp;
        st->gb_off = pl->wlen;
        pl->wlen += st->outp;
        if (t > 0) {
            st->a_off = pl->act_len;
            pl->act_len += st->inp;
        }
        if (st->has_act) {
            st->sl_off = pl->sl_len;
            pl->sl_len += st->outp;
        }
        pl->maxp = st->inp > pl->maxp ? st->inp : pl->maxp;
        pl->maxp = st->outp > pl->maxp ? st->outp : pl->maxp;
    }
    return 1;
}

static int cpu_ok(void)
{
#if ROWS_SIMD
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

size_t basin__rows_scratch_len(const basin_net *net)
{
    rplan pl;
    if (!net || !cpu_ok() || !rows_plan(net, &pl))
        return 0;
    /* weight copies and gradient sums; X, stage inputs, slopes, outputs, two error buffers,
     * pre-activations; slack for the 64-byte alignment */
    return pl.wlen + (pl.in0p + pl.act_len + pl.sl_len + pl.kp + 3 * pl.maxp) * NB + 8;
}

#if ROWS_SIMD

typedef struct rbufs {
    double *w, *x, *act, *sl, *out, *d[2], *pre;
} rbufs;

static void rcarve(const rplan *pl, double *scr, rbufs *b)
{
    b->w = basin__align64(scr);
    b->x = b->w + pl->wlen;
    b->act = b->x + pl->in0p * NB;
    b->sl = b->act + pl->act_len * NB;
    b->out = b->sl + pl->sl_len * NB;
    b->d[0] = b->out + pl->kp * NB;
    b->d[1] = b->d[0] + pl->maxp * NB;
    b->pre = b->d[1] + pl->maxp * NB;
}

/* The micro-kernel: acc[r][c] += Σ_{k<K} P[r·prs + k·pks]·Q[k·ldq + 8c .. +8], k ascending. */
TARGET INLINE void rmk(const size_t R, const size_t C, size_t K, const double *P, size_t prs,
                       size_t pks, const double *Q, size_t ldq, __m512d acc[MR][MC])
{
    for (size_t k = 0; k < K; k++) {
        __m512d q[MC];
        for (size_t c = 0; c < C; c++)
            q[c] = _mm512_load_pd(Q + k * ldq + c * 8);
        for (size_t r = 0; r < R; r++) {
            const __m512d p = _mm512_set1_pd(P[r * prs + k * pks]);
            for (size_t c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_pd(p, q[c], acc[r][c]);
        }
    }
}

/* Forward tile: rows r0..r0+MR × vectors c0..c0+C of stage st; pre == NULL: not recorded. */
TARGET INLINE void rfwd_tile(const rstage *st, const size_t C, size_t r0, size_t c0,
                             const double *w, const double *a, double *z, double *sl, double *pre)
{
    __m512d acc[MR][MC];
    const size_t outp = st->outp;
    for (size_t c = 0; c < C; c++) {
        const __m512d b0 = _mm512_load_pd(w + st->bb_off + (c0 + c) * 8);
        for (size_t r = 0; r < MR; r++)
            acc[r][c] = b0;
    }
    rmk(MR, C, st->in, a + r0 * st->inp, st->inp, 1, w + st->wt_off + c0 * 8, outp, acc);
    /* loaded per tile through an opaque pointer: hoisted out of the tile loop, the two slopes
     * would pin two of the 32 registers the micro-kernel needs (24 sums, 4 + 1 operands) */
    const double *slopes = st->slope;
    __asm__("" : "+r"(slopes));
    const __m512d sneg = _mm512_set1_pd(slopes[0]), spos = _mm512_set1_pd(slopes[1]);
    for (size_t r = 0; r < MR; r++)
        for (size_t c = 0; c < C; c++) {
            const size_t o = (r0 + r) * outp + (c0 + c) * 8;
            if (st->has_act) {
                if (pre)
                    _mm512_store_pd(pre + o, acc[r][c]);
                const __mmask8 pos = _mm512_cmp_pd_mask(acc[r][c], _mm512_setzero_pd(), _CMP_GT_OQ);
                const __m512d s = _mm512_mask_blend_pd(pos, sneg, spos);
                _mm512_store_pd(sl + o, s);
                _mm512_store_pd(z + o, _mm512_mul_pd(s, acc[r][c]));
            } else {
                _mm512_store_pd(z + o, acc[r][c]);
            }
        }
}

TARGET static __attribute__((noinline)) void rfwd_stage(const rstage *st, size_t rows,
                                                        const double *w, const double *a, double *z,
                                                        double *sl, double *pre)
{
    const size_t nv = st->outp / 8;
    for (size_t c0 = 0; c0 < nv; c0 += MC) {
        const size_t C = nv - c0 < MC ? nv - c0 : MC;
        for (size_t r0 = 0; r0 < rows; r0 += MR) {
            switch (C) {
            case 1:
                rfwd_tile(st, 1, r0, c0, w, a, z, sl, pre);
                break;
            case 2:
                rfwd_tile(st, 2, r0, c0, w, a, z, sl, pre);
                break;
            case 3:
                rfwd_tile(st, 3, r0, c0, w, a, z, sl, pre);
                break;
            default:
                rfwd_tile(st, MC, r0, c0, w, a, z, sl, pre);
                break;
            }
        }
    }
}

/* Input-error tile: rows r0..r0+MR × vectors c0..c0+C of e (stage st's input width);
 * sl: slopes of the stage below or NULL. */
TARGET INLINE void rbwd_tile(const rstage *st, const size_t C, size_t r0, size_t c0,
                             const double *w, const double *d, const double *sl, double *e)
{
    __m512d acc[MR][MC];
    const size_t inp = st->inp;
    for (size_t r = 0; r < MR; r++)
        for (size_t c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_pd();
    rmk(MR, C, st->out, d + r0 * st->outp, st->outp, 1, w + st->wp_off + c0 * 8, inp, acc);
    for (size_t r = 0; r < MR; r++)
        for (size_t c = 0; c < C; c++) {
            const size_t o = (r0 + r) * inp + (c0 + c) * 8;
            _mm512_store_pd(e + o,
                            sl ? _mm512_mul_pd(acc[r][c], _mm512_load_pd(sl + o)) : acc[r][c]);
        }
}

TARGET static __attribute__((noinline)) void rbwd_stage(const rstage *st, size_t rows,
                                                        const double *w, const double *d,
                                                        const double *sl, double *e)
{
    const size_t nv = st->inp / 8;
    for (size_t c0 = 0; c0 < nv; c0 += MC) {
        const size_t C = nv - c0 < MC ? nv - c0 : MC;
        for (size_t r0 = 0; r0 < rows; r0 += MR) {
            switch (C) {
            case 1:
                rbwd_tile(st, 1, r0, c0, w, d, sl, e);
                break;
            case 2:
                rbwd_tile(st, 2, r0, c0, w, d, sl, e);
                break;
            case 3:
                rbwd_tile(st, 3, r0, c0, w, d, sl, e);
                break;
            default:
                rbwd_tile(st, MC, r0, c0, w, d, sl, e);
                break;
            }
        }
    }
}

/* Gradient tile: G[j0..j0+R][vectors c0..c0+C] += Σ_{s<S} d[s][j]·a[s][·], s ascending. */
TARGET INLINE void rgrad_tile(const rstage *st, const size_t R, const size_t C, size_t j0,
                              size_t c0, size_t S, const double *a, const double *d, double *g)
{
    __m512d acc[MR][MC];
    const size_t inp = st->inp;
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++)
            acc[r][c] = _mm512_load_pd(g + (j0 + r) * inp + (c0 + c) * 8);
    rmk(R, C, S, d + j0, 1, st->outp, a + c0 * 8, inp, acc);
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++)
            _mm512_store_pd(g + (j0 + r) * inp + (c0 + c) * 8, acc[r][c]);
}

TARGET INLINE void rgrad_cols(const rstage *st, const size_t C, size_t c0, size_t S,
                              const double *a, const double *d, double *g)
{
    const size_t out = st->out;
    size_t j0 = 0;
    for (; j0 + MR <= out; j0 += MR)
        rgrad_tile(st, MR, C, j0, c0, S, a, d, g);
    switch (out - j0) {
    case 0:
        break;
    case 1:
        rgrad_tile(st, 1, C, j0, c0, S, a, d, g);
        break;
    case 2:
        rgrad_tile(st, 2, C, j0, c0, S, a, d, g);
        break;
    case 3:
        rgrad_tile(st, 3, C, j0, c0, S, a, d, g);
        break;
    case 4:
        rgrad_tile(st, 4, C, j0, c0, S, a, d, g);
        break;
    default:
        rgrad_tile(st, 5, C, j0, c0, S, a, d, g);
        break;
    }
}

TARGET static __attribute__((noinline)) void
rgrad_stage(const rstage *st, size_t S, const double *a, const double *d, double *w)
{
    double *g = w + st->g_off;
    const size_t nv = st->inp / 8;
    for (size_t c0 = 0; c0 < nv; c0 += MC) {
        switch (nv - c0 < MC ? nv - c0 : MC) {
        case 1:
            rgrad_cols(st, 1, c0, S, a, d, g);
            break;
        case 2:
            rgrad_cols(st, 2, c0, S, a, d, g);
            break;
        case 3:
            rgrad_cols(st, 3, c0, S, a, d, g);
            break;
        default:
            rgrad_cols(st, MC, c0, S, a, d, g);
            break;
        }
    }
    if (!st->has_bias)
        return;
    double *gb = w + st->gb_off;
    const size_t outp = st->outp;
    for (size_t c = 0; c < outp; c += 8) {
        __m512d acc = _mm512_load_pd(gb + c);
        for (size_t s = 0; s < S; s++)
            acc = _mm512_add_pd(acc, _mm512_load_pd(d + s * outp + c));
        _mm512_store_pd(gb + c, acc);
    }
}

/* Output errors ∂ℓ/∂o / m of the block's samples into d[0] (0 for padding, times the output
 * activation's slope) and their losses into the 8 partial sums (sample s into sum[s % 8]). */
static void rloss(const rplan *pl, const rbufs *b, const basin_dataset *ds, const size_t *idx,
                  size_t s0, size_t S, size_t rows, const basin_loss *loss, double inv_m,
                  int want_grad, double *sum)
{
    const size_t k = pl->k, kp = pl->kp;
    const rstage *last = &pl->st[pl->n - 1];
    double *d = b->d[0];
    memset(d, 0, rows * kp * sizeof *d);
    for (size_t s = 0; s < S; s++) {
        const size_t smp = idx ? idx[s0 + s] : s0 + s;
        const double *o = b->out + s * kp, *y = ds->y + smp * ds->y_dim;
        double *g = d + s * kp, val = 0.0;
        if (loss->kind == BASIN_LOSS_SQUARED) {
            for (size_t c = 0; c < k; c++) {
                const double r = o[c] - y[c];
                val += 0.5 * r * r;
                g[c] = r;
            }
        } else {
            val = basin_loss_eval(loss, o, y, k, want_grad ? g : NULL);
        }
        sum[s % 8] += val;
        if (!want_grad)
            continue;
        const double *sl = last->has_act ? b->sl + last->sl_off * NB + s * kp : NULL;
        for (size_t c = 0; c < k; c++)
            g[c] = sl ? g[c] * inv_m * sl[c] : g[c] * inv_m;
    }
}

/* Copy the real columns of the block's rows at selection positions >= rec_from into ws->act.
 * Those rows are written once per evaluation and only read back by a later caller, so whole
 * cache lines go out with streaming stores: they would otherwise evict the block and cost a
 * read for ownership each (the last chunk is all rows for dense nets, megabytes per pass). */
TARGET static void rrecord(basin_net_ws *ws, const double *src, size_t ld, size_t layer,
                           size_t cols, size_t s0, size_t S, size_t rec_from)
{
    const size_t first = s0 < rec_from ? rec_from - s0 : 0;
    if (first >= S)
        return;
    double *dst = ws->act[layer] + (s0 + first - rec_from) * cols;
    src += first * ld;
    const size_t rows = S - first;
    if (ld != cols) {
        for (size_t s = 0; s < rows; s++)
            memcpy(dst + s * cols, src + s * ld, cols * sizeof *src);
        return;
    }
    const size_t n = rows * cols;
    size_t q = 0;
    for (; q < n && ((uintptr_t)(dst + q) & 63) != 0; q++)
        dst[q] = src[q];
    for (; q + 8 <= n; q += 8)
        _mm512_stream_pd(dst + q, _mm512_loadu_pd(src + q));
    for (; q < n; q++)
        dst[q] = src[q];
}

TARGET static void rblock(const rplan *pl, const rbufs *b, const basin_dataset *ds,
                          const size_t *idx, size_t s0, size_t S, const basin_loss *loss,
                          double inv_m, int want_grad, double *sum, basin_net_ws *ws,
                          size_t rec_from)
{
    const size_t in0 = pl->in0, in0p = pl->in0p;
    const size_t rows = (S + MR - 1) / MR * MR;
    const int rec = ws && s0 + S > rec_from;
    for (size_t s = 0; s < rows; s++) {
        double *xb = b->x + s * in0p;
        size_t f = 0;
        if (s < S) {
            const size_t smp = idx ? idx[s0 + s] : s0 + s;
            memcpy(xb, ds->x + smp * in0, in0 * sizeof *xb);
            f = in0;
        }
        for (; f < in0p; f++)
            xb[f] = 0.0;
    }
    for (size_t t = 0; t < pl->n; t++) {
        const rstage *st = &pl->st[t];
        const double *a = t == 0 ? b->x : b->act + st->a_off * NB;
        double *z = t + 1 < pl->n ? b->act + pl->st[t + 1].a_off * NB : b->out;
        double *sl = st->has_act ? b->sl + st->sl_off * NB : NULL;
        rfwd_stage(st, rows, b->w, a, z, sl, rec && st->has_act ? b->pre : NULL);
        if (rec && st->has_act)
            rrecord(ws, b->pre, st->outp, st->dense_layer + 1, st->out, s0, S, rec_from);
    }
    rloss(pl, b, ds, idx, s0, S, rows, loss, inv_m, want_grad, sum);
    if (!want_grad)
        return;
    int cur = 0;
    for (size_t t = pl->n; t-- > 0;) {
        const rstage *st = &pl->st[t];
        const double *d = b->d[cur];
        rgrad_stage(st, S, t == 0 ? b->x : b->act + st->a_off * NB, d, b->w);
        if (t == 0)
            break;
        const rstage *below = &pl->st[t - 1];
        rbwd_stage(st, rows, b->w, d, below->has_act ? b->sl + below->sl_off * NB : NULL,
                   b->d[1 - cur]);
        cur = 1 - cur;
    }
}

/* The zero-padded copies of θ's weights (Wᵀ for the forward pass, W for the input errors) and
 * biases, and cleared gradient sums. */
static void rprep(const rplan *pl, const double *theta, double *w)
{
    memset(w, 0, pl->wlen * sizeof *w);
    for (size_t t = 0; t < pl->n; t++) {
        const rstage *st = &pl->st[t];
        const double *W = theta + st->w_off;
        double *wt = w + st->wt_off, *wp = w + st->wp_off;
        for (size_t j = 0; j < st->out; j++)
            for (size_t i = 0; i < st->in; i++) {
                wt[i * st->outp + j] = W[j * st->in + i];
                if (t > 0)
                    wp[j * st->inp + i] = W[j * st->in + i];
            }
        if (st->has_bias)
            memcpy(w + st->bb_off, theta + st->b_off, st->out * sizeof *w);
    }
}

void basin__rows_eval(const basin_net *net, const double *theta, const basin_dataset *ds,
                      const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                      double *risk, double *scratch, basin_net_ws *ws)
{
    rplan pl;
    rbufs b;
    double sum[8] = {0};
    if (!rows_plan(net, &pl) || m == 0)
        return; /* callers check the scratch length first */
    rcarve(&pl, scratch, &b);
    rprep(&pl, theta, b.w);
    const double inv_m = 1.0 / (double)m;
    size_t rec_from = ws ? ((m - 1) / ws->chunk) * ws->chunk : 0;
    for (size_t s0 = 0; s0 < m; s0 += NB)
        rblock(&pl, &b, ds, idx, s0, m - s0 < NB ? m - s0 : NB, loss, inv_m, grad != NULL, sum, ws,
               rec_from);
    if (grad)
        for (size_t t = 0; t < pl.n; t++) {
            const rstage *st = &pl.st[t];
            const double *g = b.w + st->g_off;
            for (size_t j = 0; j < st->out; j++)
                memcpy(grad + st->w_off + j * st->in, g + j * st->inp, st->in * sizeof *grad);
            if (st->has_bias)
                memcpy(grad + st->b_off, b.w + st->gb_off, st->out * sizeof *grad);
        }
    double r = sum[0];
    for (size_t l = 1; l < 8; l++)
        r += sum[l];
    *risk = r / (double)m;
    if (ws) {
        _mm_sfence(); /* order the streaming stores of rrecord before any later store */
        ws->rows = m - rec_from;
    }
}

#else

void basin__rows_eval(const basin_net *net, const double *theta, const basin_dataset *ds,
                      const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                      double *risk, double *scratch, basin_net_ws *ws)
{
    /* unreachable: basin__rows_scratch_len is 0 without the instruction set */
    (void)net, (void)theta, (void)ds, (void)idx, (void)m, (void)loss, (void)grad, (void)scratch;
    (void)ws;
    *risk = NAN;
}

#endif
