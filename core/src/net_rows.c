/* The row kernel: risk and gradient of one parameter vector for mid-size dense nets (layers of
 * up to 128 units), with 8 samples per AVX-512 vector and forward, loss and backward fused per
 * block of 64 samples. basin_net_risk_grad uses it for the dense nets the lane kernel does not
 * take (rows_int.h); elsewhere those nets keep the BLAS path.
 *
 * DESIGN
 * - Why. At these widths one GEMM call per layer and pass does little work, and the OpenBLAS
 *   build here runs AVX2 kernels (OPENBLAS_CORETYPE=Haswell): a fused AVX-512 kernel keeps the
 *   whole state of a block (its layer values, slopes and errors, about 64 KB) in L1/L2, does
 *   the activation and its mask in the same pass as the products, and uses the full vector width.
 * - Layout. A block holds its layer values feature-major, [feature][64 samples], so one vector
 *   is one feature of 8 consecutive samples and weights enter as broadcast scalars read from θ
 *   itself ([out][in] rows). Register tiles of 4 sample-vectors × 4 units: forward
 *   z_j = b_j + Σ_i W[j][i]·a_i (i ascending), input errors e_i = Σ_j W[j][i]·d_j (j ascending
 *   from 0), each accumulator its own fma chain.
 * - Gradient. The weight gradient is a sum over samples, so each entry keeps 8 partial sums, one
 *   per lane (samples ≡ lane mod 8), in a θ-shaped vector accumulator GA, updated per block by
 *   tiles of 4 × 4 entries (8 fma's each, one per sample-vector in order); at the end
 *   ∇R_p = GA_p[0] + … + GA_p[7] in that order. The risk is kept the same way. So the result is
 *   deterministic, but it is summed in another order than the BLAS path: a different rounding,
 *   not a different value (test_lanes checks both agree to 1e-12).
 * - The last block is padded with zero inputs; a 0/1 mask removes the padded samples from the
 *   risk and from the output errors, so they contribute exactly nothing to the gradient.
 * - Nets the lane kernel takes never come here, so batched restarts (lanes) and single ones
 *   still share one kernel; this one only ever evaluates one θ. */
#include <math.h>
#include <string.h>

#include "lanes_int.h"
#include "net_int.h"
#include "rows_int.h"

#define NB 64 /* samples per block */
#define NV 8  /* sample-vectors per block */
#define TV 4  /* register tile: sample-vectors */
#define TU 4  /*                units */

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
    size_t in, out, w_off, b_off;
    int has_bias, has_act;
    double sn, sp;
    size_t dense_layer, act_layer;
    size_t a_off, sl_off; /* block buffers, in features (× NB doubles) */
} rstage;

typedef struct rplan {
    size_t n;
    rstage st[BASIN__ROWS_MAX_STAGES];
    size_t in0, k, maxw, act_len, sl_len, dim;
} rplan;

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
            st->sn = L->spec.s_neg;
            st->sp = L->spec.s_pos;
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
    pl->k = pl->st[pl->n - 1].out;
    pl->dim = net->param_count;
    for (size_t t = 0; t < pl->n; t++) {
        rstage *st = &pl->st[t];
        if (t > 0) {
            st->a_off = pl->act_len;
            pl->act_len += st->in;
        }
        if (st->has_act) {
            st->sl_off = pl->sl_len;
            pl->sl_len += st->out;
        }
        pl->maxw = st->in > pl->maxw ? st->in : pl->maxw;
        pl->maxw = st->out > pl->maxw ? st->out : pl->maxw;
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
    /* GA; X, stage inputs, slopes, outputs, targets, mask, two error buffers, pre-activations;
     * slack for the 64-byte alignment */
    return pl.dim * 8 + (pl.in0 + pl.act_len + pl.sl_len + 2 * pl.k + 1 + 3 * pl.maxw) * NB + 8;
}

#if ROWS_SIMD

typedef struct rbufs {
    double *ga, *x, *act, *sl, *out, *y, *mask, *d[2], *pre;
} rbufs;

static void rcarve(const rplan *pl, double *scr, rbufs *b)
{
    b->ga = basin__align64(scr);
    b->x = b->ga + pl->dim * 8;
    b->act = b->x + pl->in0 * NB;
    b->sl = b->act + pl->act_len * NB;
    b->out = b->sl + pl->sl_len * NB;
    b->y = b->out + pl->k * NB;
    b->mask = b->y + pl->k * NB;
    b->d[0] = b->mask + NB;
    b->d[1] = b->d[0] + pl->maxw * NB;
    b->pre = b->d[1] + pl->maxw * NB;
}

/* Forward tile: sample-vectors v0..v0+TV × units j0..j0+jn of stage st. pre: [out][NB] or NULL. */
TARGET INLINE void rfwd_tile(const rstage *st, const size_t jn, size_t v0, size_t j0,
                             const double *theta, const double *a, double *z, double *sl,
                             double *pre)
{
    __m512d acc[TV][TU];
    const size_t in = st->in;
    const double *W = theta + st->w_off;
    for (size_t jj = 0; jj < jn; jj++) {
        const __m512d b0 =
            st->has_bias ? _mm512_set1_pd(theta[st->b_off + j0 + jj]) : _mm512_setzero_pd();
        for (size_t v = 0; v < TV; v++)
            acc[v][jj] = b0;
    }
    for (size_t i = 0; i < in; i++) {
        __m512d w[TU];
        for (size_t jj = 0; jj < jn; jj++)
            w[jj] = _mm512_set1_pd(W[(j0 + jj) * in + i]);
        for (size_t v = 0; v < TV; v++) {
            const __m512d av = _mm512_loadu_pd(a + i * NB + (v0 + v) * 8);
            for (size_t jj = 0; jj < jn; jj++)
                acc[v][jj] = _mm512_fmadd_pd(w[jj], av, acc[v][jj]);
        }
    }
    const __m512d spos = _mm512_set1_pd(st->sp), sneg = _mm512_set1_pd(st->sn);
    for (size_t jj = 0; jj < jn; jj++)
        for (size_t v = 0; v < TV; v++) {
            const size_t o = (j0 + jj) * NB + (v0 + v) * 8;
            if (pre)
                _mm512_storeu_pd(pre + o, acc[v][jj]);
            if (st->has_act) {
                __mmask8 pos = _mm512_cmp_pd_mask(acc[v][jj], _mm512_setzero_pd(), _CMP_GT_OQ);
                const __m512d s = _mm512_mask_blend_pd(pos, sneg, spos);
                _mm512_storeu_pd(sl + o, s);
                _mm512_storeu_pd(z + o, _mm512_mul_pd(s, acc[v][jj]));
            } else {
                _mm512_storeu_pd(z + o, acc[v][jj]);
            }
        }
}

TARGET INLINE void rfwd_stage(const rstage *st, const double *theta, const double *a, double *z,
                              double *sl, double *pre)
{
    const size_t out = st->out;
    for (size_t v0 = 0; v0 < NV; v0 += TV) {
        size_t j0 = 0;
        for (; j0 + TU <= out; j0 += TU)
            rfwd_tile(st, TU, v0, j0, theta, a, z, sl, pre);
        switch (out - j0) {
        case 0:
            break;
        case 1:
            rfwd_tile(st, 1, v0, j0, theta, a, z, sl, pre);
            break;
        case 2:
            rfwd_tile(st, 2, v0, j0, theta, a, z, sl, pre);
            break;
        default:
            rfwd_tile(st, 3, v0, j0, theta, a, z, sl, pre);
            break;
        }
    }
}

/* Input-error tile: sample-vectors v0..v0+TV × inputs i0..i0+in_n; sl: slopes below or NULL. */
TARGET INLINE void rbwd_tile(const rstage *st, const size_t in_n, size_t v0, size_t i0,
                             const double *theta, const double *d, const double *sl, double *e)
{
    __m512d acc[TV][TU];
    const size_t in = st->in, out = st->out;
    const double *W = theta + st->w_off;
    for (size_t ii = 0; ii < in_n; ii++)
        for (size_t v = 0; v < TV; v++)
            acc[v][ii] = _mm512_setzero_pd();
    for (size_t j = 0; j < out; j++) {
        __m512d w[TU];
        for (size_t ii = 0; ii < in_n; ii++)
            w[ii] = _mm512_set1_pd(W[j * in + i0 + ii]);
        for (size_t v = 0; v < TV; v++) {
            const __m512d dv = _mm512_loadu_pd(d + j * NB + (v0 + v) * 8);
            for (size_t ii = 0; ii < in_n; ii++)
                acc[v][ii] = _mm512_fmadd_pd(w[ii], dv, acc[v][ii]);
        }
    }
    for (size_t ii = 0; ii < in_n; ii++)
        for (size_t v = 0; v < TV; v++) {
            const size_t o = (i0 + ii) * NB + (v0 + v) * 8;
            _mm512_storeu_pd(e + o,
                             sl ? _mm512_mul_pd(acc[v][ii], _mm512_loadu_pd(sl + o)) : acc[v][ii]);
        }
}

TARGET INLINE void rbwd_stage(const rstage *st, const double *theta, const double *d,
                              const double *sl, double *e)
{
    const size_t in = st->in;
    for (size_t v0 = 0; v0 < NV; v0 += TV) {
        size_t i0 = 0;
        for (; i0 + TU <= in; i0 += TU)
            rbwd_tile(st, TU, v0, i0, theta, d, sl, e);
        switch (in - i0) {
        case 0:
            break;
        case 1:
            rbwd_tile(st, 1, v0, i0, theta, d, sl, e);
            break;
        case 2:
            rbwd_tile(st, 2, v0, i0, theta, d, sl, e);
            break;
        default:
            rbwd_tile(st, 3, v0, i0, theta, d, sl, e);
            break;
        }
    }
}

/* Gradient tile: GA[j][i] (8 lanes) += d_j·a_i for every sample-vector in order, for
 * j0..j0+jn × i0..i0+in_n; with_bias: GA[b_j] += d_j too. */
TARGET INLINE void rgrad_tile(const rstage *st, const size_t jn, const size_t in_n, size_t j0,
                              size_t i0, int with_bias, const double *a, const double *d,
                              double *ga)
{
    __m512d g[TU][TU], gb[TU];
    const size_t in = st->in;
    for (size_t jj = 0; jj < jn; jj++) {
        for (size_t ii = 0; ii < in_n; ii++)
            g[jj][ii] = _mm512_load_pd(ga + (st->w_off + (j0 + jj) * in + i0 + ii) * 8);
        gb[jj] = with_bias ? _mm512_load_pd(ga + (st->b_off + j0 + jj) * 8) : _mm512_setzero_pd();
    }
    for (size_t v = 0; v < NV; v++) {
        __m512d dv[TU];
        for (size_t jj = 0; jj < jn; jj++) {
            dv[jj] = _mm512_loadu_pd(d + (j0 + jj) * NB + v * 8);
            if (with_bias)
                gb[jj] = _mm512_add_pd(gb[jj], dv[jj]);
        }
        for (size_t ii = 0; ii < in_n; ii++) {
            const __m512d av = _mm512_loadu_pd(a + (i0 + ii) * NB + v * 8);
            for (size_t jj = 0; jj < jn; jj++)
                g[jj][ii] = _mm512_fmadd_pd(dv[jj], av, g[jj][ii]);
        }
    }
    for (size_t jj = 0; jj < jn; jj++) {
        for (size_t ii = 0; ii < in_n; ii++)
            _mm512_store_pd(ga + (st->w_off + (j0 + jj) * in + i0 + ii) * 8, g[jj][ii]);
        if (with_bias)
            _mm512_store_pd(ga + (st->b_off + j0 + jj) * 8, gb[jj]);
    }
}

TARGET INLINE void rgrad_row(const rstage *st, const size_t jn, size_t j0, const double *a,
                             const double *d, double *ga)
{
    const size_t in = st->in;
    size_t i0 = 0;
    for (; i0 + TU <= in; i0 += TU)
        rgrad_tile(st, jn, TU, j0, i0, i0 == 0 && st->has_bias, a, d, ga);
    const int wb = i0 == 0 && st->has_bias;
    switch (in - i0) {
    case 0:
        break;
    case 1:
        rgrad_tile(st, jn, 1, j0, i0, wb, a, d, ga);
        break;
    case 2:
        rgrad_tile(st, jn, 2, j0, i0, wb, a, d, ga);
        break;
    default:
        rgrad_tile(st, jn, 3, j0, i0, wb, a, d, ga);
        break;
    }
}

TARGET INLINE void rgrad_stage(const rstage *st, const double *a, const double *d, double *ga)
{
    const size_t out = st->out;
    size_t j0 = 0;
    for (; j0 + TU <= out; j0 += TU)
        rgrad_row(st, TU, j0, a, d, ga);
    switch (out - j0) {
    case 0:
        break;
    case 1:
        rgrad_row(st, 1, j0, a, d, ga);
        break;
    case 2:
        rgrad_row(st, 2, j0, a, d, ga);
        break;
    default:
        rgrad_row(st, 3, j0, a, d, ga);
        break;
    }
}

/* Output errors ∂ℓ/∂o / m of the block's samples into d[0] (0 for padding, times the output
 * activation's slope) and their losses into the 8 lane sums. */
TARGET INLINE void rloss(const rplan *pl, const rbufs *b, const basin_dataset *ds,
                         const size_t *idx, size_t s0, size_t S, const basin_loss *loss,
                         double inv_m, int want_grad, double *sum)
{
    const size_t k = pl->k;
    const rstage *last = &pl->st[pl->n - 1];
    double *d = b->d[0];
    if (loss->kind == BASIN_LOSS_SQUARED) {
        const __m512d half = _mm512_set1_pd(0.5), vinv = _mm512_set1_pd(inv_m);
        for (size_t v = 0; v < NV; v++) {
            const __m512d mask = _mm512_load_pd(b->mask + v * 8);
            __m512d val = _mm512_setzero_pd();
            for (size_t c = 0; c < k; c++) {
                const size_t o = c * NB + v * 8;
                const __m512d r =
                    _mm512_sub_pd(_mm512_load_pd(b->out + o), _mm512_load_pd(b->y + o));
                val = _mm512_add_pd(val, _mm512_mul_pd(_mm512_mul_pd(half, r), r));
                _mm512_store_pd(d + o, _mm512_mul_pd(_mm512_mul_pd(r, vinv), mask));
            }
            _mm512_storeu_pd(sum, _mm512_add_pd(_mm512_loadu_pd(sum), _mm512_mul_pd(val, mask)));
        }
    } else {
        double o[BASIN__ROWS_MAX_WIDTH], g[BASIN__ROWS_MAX_WIDTH];
        memset(d, 0, k * NB * sizeof *d);
        for (size_t s = 0; s < S; s++) {
            const size_t smp = idx ? idx[s0 + s] : s0 + s;
            for (size_t c = 0; c < k; c++)
                o[c] = b->out[c * NB + s];
            sum[s % 8] +=
                basin_loss_eval(loss, o, ds->y + smp * ds->y_dim, k, want_grad ? g : NULL);
            if (want_grad)
                for (size_t c = 0; c < k; c++)
                    d[c * NB + s] = g[c] * inv_m;
        }
    }
    if (want_grad && last->has_act) {
        const double *sl = b->sl + last->sl_off * NB;
        for (size_t q = 0; q < k * NB; q += 8)
            _mm512_store_pd(d + q, _mm512_mul_pd(_mm512_load_pd(d + q), _mm512_load_pd(sl + q)));
    }
}

/* Copy the block's rows at selection positions ≥ rec_from into ws->act (row-major). */
static void rrecord(basin_net_ws *ws, const double *src, size_t layer, size_t cols, size_t s0,
                    size_t S, size_t rec_from)
{
    for (size_t s = 0; s < S; s++) {
        if (s0 + s < rec_from)
            continue;
        double *row = ws->act[layer] + (s0 + s - rec_from) * cols;
        for (size_t c = 0; c < cols; c++)
            row[c] = src[c * NB + s];
    }
}

TARGET static void rblock(const rplan *pl, const double *theta, const rbufs *b,
                          const basin_dataset *ds, const size_t *idx, size_t s0, size_t S,
                          const basin_loss *loss, double inv_m, int want_grad, double *sum,
                          basin_net_ws *ws, size_t rec_from)
{
    const size_t in0 = pl->in0, k = pl->k;
    const int rec = ws && s0 + S > rec_from;
    for (size_t s = 0; s < NB; s++) {
        const size_t smp = s < S ? (idx ? idx[s0 + s] : s0 + s) : 0;
        const double *xr = ds->x + smp * in0;
        for (size_t f = 0; f < in0; f++)
            b->x[f * NB + s] = s < S ? xr[f] : 0.0;
        b->mask[s] = s < S ? 1.0 : 0.0;
        if (loss->kind == BASIN_LOSS_SQUARED) {
            const double *yr = ds->y + smp * ds->y_dim;
            for (size_t c = 0; c < k; c++)
                b->y[c * NB + s] = s < S ? yr[c] : 0.0;
        }
    }
    if (rec)
        rrecord(ws, b->x, 0, in0, s0, S, rec_from);
    for (size_t t = 0; t < pl->n; t++) {
        const rstage *st = &pl->st[t];
        const double *a = t == 0 ? b->x : b->act + st->a_off * NB;
        double *z = t + 1 < pl->n ? b->act + pl->st[t + 1].a_off * NB : b->out;
        double *sl = st->has_act ? b->sl + st->sl_off * NB : NULL;
        rfwd_stage(st, theta, a, z, sl, rec ? b->pre : NULL);
        if (rec) {
            rrecord(ws, b->pre, st->dense_layer + 1, st->out, s0, S, rec_from);
            if (st->has_act)
                rrecord(ws, z, st->act_layer + 1, st->out, s0, S, rec_from);
        }
    }
    rloss(pl, b, ds, idx, s0, S, loss, inv_m, want_grad, sum);
    if (!want_grad)
        return;
    int cur = 0;
    for (size_t t = pl->n; t-- > 0;) {
        const rstage *st = &pl->st[t];
        const double *d = b->d[cur];
        rgrad_stage(st, t == 0 ? b->x : b->act + st->a_off * NB, d, b->ga);
        if (t == 0)
            break;
        const rstage *below = &pl->st[t - 1];
        rbwd_stage(st, theta, d, below->has_act ? b->sl + below->sl_off * NB : NULL, b->d[1 - cur]);
        cur = 1 - cur;
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
    if (grad)
        memset(b.ga, 0, pl.dim * 8 * sizeof(double));
    const double inv_m = 1.0 / (double)m;
    size_t rec_from = ws ? ((m - 1) / ws->chunk) * ws->chunk : 0;
    for (size_t s0 = 0; s0 < m; s0 += NB)
        rblock(&pl, theta, &b, ds, idx, s0, m - s0 < NB ? m - s0 : NB, loss, inv_m, grad != NULL,
               sum, ws, rec_from);
    if (grad)
        for (size_t p = 0; p < pl.dim; p++) {
            const double *g = b.ga + p * 8;
            double acc = g[0];
            for (size_t l = 1; l < 8; l++)
                acc += g[l];
            grad[p] = acc;
        }
    double r = sum[0];
    for (size_t l = 1; l < 8; l++)
        r += sum[l];
    *risk = r / (double)m;
    if (ws)
        ws->rows = m - rec_from;
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
