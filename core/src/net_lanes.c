/* The lane kernel: risk and gradient of small dense nets with forward, loss and
 * backward fused per block of samples, for one parameter vector (lw = 1) or for
 * BASIN__LANES of them at once (lw = 8, one restart per SIMD lane).
 * basin_net_risk_grad routes every eligible net here with lw = 1; the batched
 * trainer uses lw = 8 (lanes_int.h).
 *
 * DESIGN
 * - Why. Tiny nets (2-16-16-1 on a few hundred samples) are far too small for
 * BLAS: a GEMM call costs more than its arithmetic. Many restarts of the same
 * net on the same data are the common workload, and they share everything but
 * θ, so restart r lives in lane r: every weight load, FMA and store serves 8
 * restarts, the sample x_i is a broadcast scalar, and the whole state (θ, ∇R,
 * activations of a block of samples) stays in L1.
 * - Bit-identity. Lane r of an lw = 8 call performs exactly the IEEE operations
 * of an lw = 1 call on θ_r, in the same order, so a batched restart is
 * bit-identical to a single one and to basin_net_risk_grad. That holds because
 * (a) every value is a per-lane expression: no reduction ever mixes lanes; (b)
 * each reduction has one fixed order, independent of lw, of the sample blocking
 * and of the SIMD width: z_j = fma chain over inputs i ascending starting from
 * b_j; δ_in,i = fma chain over outputs j ascending starting from 0; every
 *   gradient entry and the risk accumulate over samples in selection order (one
 * fma / add per sample); (c) multiply-adds are explicit fma() (correctly
 * rounded everywhere, so the scalar, AVX2 and AVX-512 variants agree) and
 * nothing else can be contracted: core builds as ISO C11, where GCC defaults to
 * -ffp-contract=off. The lw = 1 code uses different loop nests (vectorised over
 * units instead of lanes) but the same per-element sequences.
 * - Blocking. Samples go in blocks of SB: forward of the block (layer inputs
 * and activation slopes kept), per-sample loss errors, then backward, where
 * each weight-gradient entry is loaded once per block and receives SB
 * consecutive fma's (same order as one per sample).
 * - Layout. Packed vectors P[p·lw + lane] (θ order, lanes innermost). The
 * forward pass reads a transposed copy Wf[(i·out + j)·lw + lane] made once per
 * call so that the inner loop runs over contiguous outputs; back-propagation
 * reads P directly ([j][i] rows).
 * - Register tiles. Forward: 4 samples × 4 outputs accumulate over the inputs;
 * input errors: 4 samples × 4 inputs over the outputs; weight gradients: 4
 * outputs × 4 inputs over the block's samples. Each accumulator is its own fma
 * chain, so 16 chains hide the latency and one weight load serves 4 samples.
 * - ISA. lw = 8 has hand-tiled versions with AVX-512 and AVX2 intrinsics
 * (lanes_simd_int.h, included once per instruction set; the generic code's
 * auto-vectorisation spills its tiles), picked at run time with
 * __builtin_cpu_supports, so a portable build still uses the wide units. lw = 1
 * is the generic code compiled for the same targets. Elsewhere the generic code
 * runs for both; without hardware FMA, fma() is libm's (slow, same results). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "basin/status.h"
#include "lanes_int.h"
#include "net_int.h"

#define SB 8 /* samples per block */
#define TS 4 /* register tiles: samples */
#define TJ 4 /*                 output units */
#define TI 4 /*                 input units */

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define LANES_DISPATCH 1
#if defined(__clang__)
#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#else
#define TARGET_AVX512                                                                              \
    __attribute__((target("avx512f,avx512vl,avx512dq,fma,prefer-vector-width=512")))
#endif
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define LANES_DISPATCH 0
#endif

typedef struct stage {
    size_t in, out;
    size_t w_off, b_off; /* into θ (b_off meaningful when has_bias) */
    int has_bias, has_act;
    double sn, sp;        /* activation slopes */
    size_t dense_layer;   /* layer index of the dense layer */
    size_t act_layer;     /* layer index of its activation (has_act) */
    size_t wf_off;        /* into Wf (units of lw) */
    size_t a_off, sl_off; /* stage input (t ≥ 1) and slopes in the block buffers
                             (per sample) */
} stage;

typedef struct plan {
    size_t n;
    stage st[BASIN__LANES_MAX_STAGES];
    size_t in0, k, maxw;
    size_t wf_len, act_len, sl_len; /* per lane (wf) and per sample per lane (act, sl) */
} plan;

static int make_plan(const basin_net *net, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (net->in_rank != 1 || net->param_count > BASIN__LANES_MAX_PARAMS)
        return 0;
    int after_dense = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        stage *st;
        switch (L->spec.kind) {
        case BASIN_LAYER_FLATTEN: /* a no-op on a [d] input */
            continue;
        case BASIN_LAYER_DENSE:
            if (pl->n == BASIN__LANES_MAX_STAGES || L->info.in_dim > BASIN__LANES_MAX_WIDTH ||
                L->info.out_dim > BASIN__LANES_MAX_WIDTH)
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
    for (size_t t = 0; t < pl->n; t++) {
        stage *st = &pl->st[t];
        st->wf_off = pl->wf_len;
        pl->wf_len += st->in * st->out;
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

int basin__lanes_eligible(const basin_net *net)
{
    plan pl;
    return net && make_plan(net, &pl);
}

size_t basin__lanes_scratch_len(const basin_net *net, size_t lw)
{
    plan pl;
    if (!net || !make_plan(net, &pl))
        return 0;
    /* Wf, stage inputs, slopes, outputs, two error buffers; input rows and pre-activations; and
     * the slack that lets carve() start on a 64-byte boundary */
    return pl.wf_len * lw + (pl.act_len + pl.sl_len + pl.k + 2 * pl.maxw) * SB * lw +
           (pl.in0 + pl.maxw) * SB + 8;
}

double *basin__align64(double *p)
{
    uintptr_t u = (uintptr_t)p;
    return p + ((64 - u % 64) % 64) / sizeof(double);
}

/* Block buffers carved from the scratch. */
typedef struct bufs {
    double *wf, *act, *sl, *out, *d[2], *x, *pre;
} bufs;

/* Every buffer but the last two starts on a 64-byte boundary (all lengths before them are
 * multiples of 8 doubles when lw = 8): a misaligned 512-bit access splits across cache lines,
 * which costs the 8-lane kernel a third of its speed. */
static void carve(const plan *pl, size_t lw, double *scr, bufs *b)
{
    b->wf = basin__align64(scr);
    b->act = b->wf + pl->wf_len * lw;
    b->sl = b->act + pl->act_len * SB * lw;
    b->out = b->sl + pl->sl_len * SB * lw;
    b->d[0] = b->out + pl->k * SB * lw;
    b->d[1] = b->d[0] + pl->maxw * SB * lw;
    b->x = b->d[1] + pl->maxw * SB * lw;
    b->pre = b->x + pl->in0 * SB; /* lw = 1 only: pre-activations of one stage */
}

/* Wf[(i·out + j)·lw + l] = W[j][i] of lane l. */
ALWAYS_INLINE void transpose_weights(const plan *pl, const size_t lw, const double *P, double *wf)
{
    for (size_t t = 0; t < pl->n; t++) {
        const stage *st = &pl->st[t];
        double *w = wf + st->wf_off * lw;
        for (size_t j = 0; j < st->out; j++)
            for (size_t i = 0; i < st->in; i++)
                for (size_t l = 0; l < lw; l++)
                    w[(i * st->out + j) * lw + l] = P[(st->w_off + j * st->in + i) * lw + l];
    }
}

/* Forward tile: samples s0..s0+sn of the block × outputs j0..j0+jn.
 *   z = b + Σ_i W[j][i]·a_i (i ascending), then h(z) = slope·z.
 * a: the block's stage input, scalar rows [S][in] (scalar_in: shared by the
 * lanes) or [S][in][lw]; z, sl: [S][out][lw]; pre (lw = 1, may be NULL):
 * [S][out] pre-activations. */
ALWAYS_INLINE void fwd_tile(const stage *st, const size_t lw, const size_t sn, const size_t jn,
                            size_t s0, size_t j0, int scalar_in, const double *P, const double *w,
                            const double *a, double *z, double *sl, double *pre)
{
    double acc[TS * TJ * BASIN__LANES];
    const size_t in = st->in, out = st->out;
    for (size_t jj = 0; jj < jn; jj++)
        for (size_t l = 0; l < lw; l++) {
            const double b0 = st->has_bias ? P[(st->b_off + j0 + jj) * lw + l] : 0.0;
            for (size_t ss = 0; ss < sn; ss++)
                acc[(ss * TJ + jj) * lw + l] = b0;
        }
    for (size_t i = 0; i < in; i++) {
        const double *wi = w + (i * out + j0) * lw;
        for (size_t ss = 0; ss < sn; ss++) {
            if (scalar_in) {
                const double xv = a[(s0 + ss) * in + i];
                for (size_t jj = 0; jj < jn; jj++)
                    for (size_t l = 0; l < lw; l++)
                        acc[(ss * TJ + jj) * lw + l] =
                            fma(wi[jj * lw + l], xv, acc[(ss * TJ + jj) * lw + l]);
            } else {
                const double *av = a + ((s0 + ss) * in + i) * lw;
                for (size_t jj = 0; jj < jn; jj++)
                    for (size_t l = 0; l < lw; l++)
                        acc[(ss * TJ + jj) * lw + l] =
                            fma(wi[jj * lw + l], av[l], acc[(ss * TJ + jj) * lw + l]);
            }
        }
    }
    const double sneg = st->sn, spos = st->sp;
    for (size_t ss = 0; ss < sn; ss++) {
        const size_t row = (s0 + ss) * out + j0;
        for (size_t jj = 0; jj < jn; jj++)
            for (size_t l = 0; l < lw; l++) {
                const double v = acc[(ss * TJ + jj) * lw + l];
                if (lw == 1 && pre)
                    pre[row + jj] = v;
                if (st->has_act) {
                    const double s = v > 0 ? spos : sneg;
                    sl[(row + jj) * lw + l] = s;
                    z[(row + jj) * lw + l] = s * v;
                } else {
                    z[(row + jj) * lw + l] = v;
                }
            }
    }
}

ALWAYS_INLINE void fwd_stage(const stage *st, const size_t lw, size_t S, int scalar_in,
                             const double *P, const double *w, const double *a, double *z,
                             double *sl, double *pre)
{
    const size_t out = st->out;
    size_t s0 = 0;
    for (; s0 + TS <= S; s0 += TS) {
        size_t j0 = 0;
        for (; j0 + TJ <= out; j0 += TJ)
            fwd_tile(st, lw, TS, TJ, s0, j0, scalar_in, P, w, a, z, sl, pre);
        if (j0 < out)
            fwd_tile(st, lw, TS, out - j0, s0, j0, scalar_in, P, w, a, z, sl, pre);
    }
    if (s0 < S)
        for (size_t j0 = 0; j0 < out; j0 += TJ)
            fwd_tile(st, lw, S - s0, out - j0 < TJ ? out - j0 : TJ, s0, j0, scalar_in, P, w, a, z,
                     sl, pre);
}

/* Loss values into sum and output errors ∂ℓ/∂o / m (times the output
 * activation's slope) into d for the S samples of a block. */
ALWAYS_INLINE void block_loss(const plan *pl, const size_t lw, const bufs *b,
                              const basin_dataset *ds, const size_t *idx, size_t s0, size_t S,
                              const basin_loss *loss, double inv_m, int want_grad, double *sum)
{
    const size_t k = pl->k;
    const stage *last = &pl->st[pl->n - 1];
    for (size_t s = 0; s < S; s++) {
        const size_t smp = idx ? idx[s0 + s] : s0 + s;
        const double *y = ds->y + smp * ds->y_dim;
        const double *o = b->out + s * k * lw;
        double *d = b->d[0] + s * k * lw;
        if (loss->kind == BASIN_LOSS_SQUARED) {
            double v[BASIN__LANES];
            for (size_t l = 0; l < lw; l++)
                v[l] = 0.0;
            for (size_t c = 0; c < k; c++)
                for (size_t l = 0; l < lw; l++) {
                    const double r = o[c * lw + l] - y[c];
                    v[l] += 0.5 * r * r;
                    d[c * lw + l] = r * inv_m;
                }
            for (size_t l = 0; l < lw; l++)
                sum[l] += v[l];
        } else {
            double ol[BASIN__LANES_MAX_WIDTH], gl[BASIN__LANES_MAX_WIDTH];
            for (size_t l = 0; l < lw; l++) {
                for (size_t c = 0; c < k; c++)
                    ol[c] = o[c * lw + l];
                sum[l] += basin_loss_eval(loss, ol, y, k, want_grad ? gl : NULL);
                if (want_grad)
                    for (size_t c = 0; c < k; c++)
                        d[c * lw + l] = gl[c] * inv_m;
            }
        }
        if (want_grad && last->has_act) {
            const double *sl = b->sl + last->sl_off * SB * lw + s * k * lw;
            for (size_t c = 0; c < k * lw; c++)
                d[c] *= sl[c];
        }
    }
}

/* Weight-gradient tile: gW[j][i] += Σ_s d_s[j]·a_s[i] for j0..j0+jn ×
 * i0..i0+in_n over the S samples of the block, each entry one fma per sample in
 * sample order (independent chains across the tile). */
ALWAYS_INLINE void wgrad_tile(const stage *st, const size_t lw, const size_t jn, const size_t in_n,
                              size_t S, size_t j0, size_t i0, int scalar_in, const double *a,
                              const double *d, double *G)
{
    double g[TJ * TI * BASIN__LANES];
    const size_t in = st->in, out = st->out;
    for (size_t jj = 0; jj < jn; jj++)
        for (size_t q = 0; q < in_n * lw; q++)
            g[jj * TI * lw + q] = G[(st->w_off + (j0 + jj) * in + i0) * lw + q];
    for (size_t s = 0; s < S; s++) {
        const double *dv = d + (s * out + j0) * lw;
        for (size_t jj = 0; jj < jn; jj++)
            for (size_t ii = 0; ii < in_n; ii++)
                for (size_t l = 0; l < lw; l++) {
                    const double av =
                        scalar_in ? a[s * in + i0 + ii] : a[(s * in + i0 + ii) * lw + l];
                    g[(jj * TI + ii) * lw + l] =
                        fma(dv[jj * lw + l], av, g[(jj * TI + ii) * lw + l]);
                }
    }
    for (size_t jj = 0; jj < jn; jj++)
        for (size_t q = 0; q < in_n * lw; q++)
            G[(st->w_off + (j0 + jj) * in + i0) * lw + q] = g[jj * TI * lw + q];
}

/* gb[j] += Σ_s d_s[j] in sample order. */
ALWAYS_INLINE void bgrad(const stage *st, const size_t lw, size_t S, const double *d, double *G)
{
    double *gb = G + st->b_off * lw;
    for (size_t s = 0; s < S; s++)
        for (size_t q = 0; q < st->out * lw; q++)
            gb[q] += d[s * st->out * lw + q];
}

ALWAYS_INLINE void wgrad(const stage *st, const size_t lw, size_t S, int scalar_in, const double *a,
                         const double *d, double *G)
{
    const size_t in = st->in, out = st->out;
    if (st->has_bias)
        bgrad(st, lw, S, d, G);
    for (size_t j0 = 0; j0 < out; j0 += TJ) {
        const size_t jn = out - j0 < TJ ? out - j0 : TJ;
        size_t i0 = 0;
        if (jn == TJ && scalar_in)
            for (; i0 + TI <= in; i0 += TI)
                wgrad_tile(st, lw, TJ, TI, S, j0, i0, 1, a, d, G);
        else if (jn == TJ)
            for (; i0 + TI <= in; i0 += TI)
                wgrad_tile(st, lw, TJ, TI, S, j0, i0, 0, a, d, G);
        for (; i0 < in; i0 += TI)
            wgrad_tile(st, lw, jn, in - i0 < TI ? in - i0 : TI, S, j0, i0, scalar_in, a, d, G);
    }
}

/* Input-error tile: e_s[i] = slope_s[i]·Σ_j W[j][i]·d_s[j] (j ascending, from
 * 0) for samples s0..s0+sn × inputs i0..i0+in_n; sl (the activation below) may
 * be NULL. */
ALWAYS_INLINE void bwd_tile(const stage *st, const size_t lw, const size_t sn, const size_t in_n,
                            size_t s0, size_t i0, const double *P, const double *d,
                            const double *sl, double *e)
{
    double acc[TS * TI * BASIN__LANES];
    const size_t in = st->in, out = st->out;
    for (size_t q = 0; q < TS * TI * BASIN__LANES; q++)
        acc[q] = 0.0;
    for (size_t j = 0; j < out; j++) {
        const double *w = P + (st->w_off + j * in + i0) * lw;
        for (size_t ss = 0; ss < sn; ss++) {
            const double *dv = d + ((s0 + ss) * out + j) * lw;
            for (size_t ii = 0; ii < in_n; ii++)
                for (size_t l = 0; l < lw; l++)
                    acc[(ss * TI + ii) * lw + l] =
                        fma(w[ii * lw + l], dv[l], acc[(ss * TI + ii) * lw + l]);
        }
    }
    for (size_t ss = 0; ss < sn; ss++) {
        const size_t row = ((s0 + ss) * in + i0) * lw;
        for (size_t q = 0; q < in_n * lw; q++)
            e[row + q] = sl ? acc[ss * TI * lw + q] * sl[row + q] : acc[ss * TI * lw + q];
    }
}

ALWAYS_INLINE void bwd_stage(const stage *st, const size_t lw, size_t S, const double *P,
                             const double *d, const double *sl, double *e)
{
    const size_t in = st->in;
    size_t s0 = 0;
    for (; s0 + TS <= S; s0 += TS) {
        size_t i0 = 0;
        for (; i0 + TI <= in; i0 += TI)
            bwd_tile(st, lw, TS, TI, s0, i0, P, d, sl, e);
        if (i0 < in)
            bwd_tile(st, lw, TS, in - i0, s0, i0, P, d, sl, e);
    }
    if (s0 < S)
        for (size_t i0 = 0; i0 < in; i0 += TI)
            bwd_tile(st, lw, S - s0, in - i0 < TI ? in - i0 : TI, s0, i0, P, d, sl, e);
}

/* Copy the layer values of the block's samples at selection positions ≥
 * rec_from into ws->act rows (lw = 1): the stage input for t = 0, the
 * pre-activation and the activation output. */
static void record_stage(basin_net_ws *ws, const stage *st, size_t t, const double *x,
                         const double *pre, const double *z, size_t s0, size_t S, size_t rec_from)
{
    for (size_t s = 0; s < S; s++) {
        if (s0 + s < rec_from)
            continue;
        size_t row = s0 + s - rec_from;
        if (t == 0)
            memcpy(ws->act[0] + row * st->in, x + s * st->in, st->in * sizeof(double));
        memcpy(ws->act[st->dense_layer + 1] + row * st->out, pre + s * st->out,
               st->out * sizeof(double));
        if (st->has_act)
            memcpy(ws->act[st->act_layer + 1] + row * st->out, z + s * st->out,
                   st->out * sizeof(double));
    }
}

/* One block of S samples starting at selection position s0. */
ALWAYS_INLINE void eval_block(const plan *pl, const size_t lw, const double *P, const bufs *b,
                              const basin_dataset *ds, const size_t *idx, size_t s0, size_t S,
                              const basin_loss *loss, double inv_m, double *G, double *sum,
                              basin_net_ws *ws, size_t rec_from)
{
    const size_t in0 = pl->in0;
    const int rec = lw == 1 && ws && s0 + S > rec_from;
    for (size_t s = 0; s < S; s++) {
        const size_t smp = idx ? idx[s0 + s] : s0 + s;
        memcpy(b->x + s * in0, ds->x + smp * in0, in0 * sizeof(double));
    }
    for (size_t t = 0; t < pl->n; t++) {
        const stage *st = &pl->st[t];
        const double *w = b->wf + st->wf_off * lw;
        const double *a = t == 0 ? b->x : b->act + st->a_off * SB * lw;
        double *z = t + 1 < pl->n ? b->act + pl->st[t + 1].a_off * SB * lw : b->out;
        double *sl = st->has_act ? b->sl + st->sl_off * SB * lw : NULL;
        if (t == 0)
            fwd_stage(st, lw, S, 1, P, w, a, z, sl, rec ? b->pre : NULL);
        else
            fwd_stage(st, lw, S, 0, P, w, a, z, sl, rec ? b->pre : NULL);
        if (rec)
            record_stage(ws, st, t, b->x, b->pre, z, s0, S, rec_from);
    }
    block_loss(pl, lw, b, ds, idx, s0, S, loss, inv_m, G != NULL, sum);
    if (!G)
        return;
    int cur = 0;
    for (size_t t = pl->n; t-- > 0;) {
        const stage *st = &pl->st[t];
        const double *d = b->d[cur];
        if (t == 0) {
            wgrad(st, lw, S, 1, b->x, d, G);
            break;
        }
        wgrad(st, lw, S, 0, b->act + st->a_off * SB * lw, d, G);
        const stage *below = &pl->st[t - 1];
        const double *sl = below->has_act ? b->sl + below->sl_off * SB * lw : NULL;
        bwd_stage(st, lw, S, P, d, sl, b->d[1 - cur]);
        cur = 1 - cur;
    }
}

ALWAYS_INLINE void eval_body(const plan *pl, const size_t lw, const double *P,
                             const basin_dataset *ds, const size_t *idx, size_t m,
                             const basin_loss *loss, double *G, double *risk, double *scratch,
                             basin_net_ws *ws)
{
    bufs b;
    double sum[BASIN__LANES];
    const double inv_m = 1.0 / (double)m;
    size_t rec_from = 0;
    carve(pl, lw, scratch, &b);
    transpose_weights(pl, lw, P, b.wf);
    for (size_t l = 0; l < lw; l++)
        sum[l] = 0.0;
    if (ws)
        rec_from = ((m - 1) / ws->chunk) * ws->chunk; /* the last chunk's start */
    size_t s0 = 0;
    for (; s0 + SB <= m; s0 += SB)
        eval_block(pl, lw, P, &b, ds, idx, s0, SB, loss, inv_m, G, sum, ws, rec_from);
    if (s0 < m)
        eval_block(pl, lw, P, &b, ds, idx, s0, m - s0, loss, inv_m, G, sum, ws, rec_from);
    for (size_t l = 0; l < lw; l++)
        risk[l] = sum[l] / (double)m;
    if (ws)
        ws->rows = m - rec_from;
}

#if LANES_DISPATCH
#include <immintrin.h>

/* AVX-512: the 8 lanes are one zmm register. */
#define SIMD_ATTR TARGET_AVX512
#define SIMD_NAME(x) x##_avx512
#define V __m512d
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_SET1(x) _mm512_set1_pd(x)
#define V_ZERO _mm512_setzero_pd()
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_SUB(a, b) _mm512_sub_pd(a, b)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_SLOPE(v, sp, sn)                                                                         \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ), sn, sp)
#define VTS 4
#define VTJ 4
#define VTI 4
#include "lanes_simd_int.h"
#undef SIMD_ATTR
#undef SIMD_NAME
#undef V
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_SLOPE
#undef VTS
#undef VTJ
#undef VTI

/* AVX2: the 8 lanes are two ymm registers; 16 registers allow a 2 × 2 tile. */
typedef struct v256x2 {
    __m256d lo, hi;
} v256x2;
#define SIMD_ATTR TARGET_AVX2
#define SIMD_NAME(x) x##_avx2
#define V v256x2
#define V_LOAD(p) ((v256x2){_mm256_loadu_pd(p), _mm256_loadu_pd((p) + 4)})
#define V_STORE(p, v) (_mm256_storeu_pd(p, (v).lo), _mm256_storeu_pd((p) + 4, (v).hi))
#define V_SET1(x) ((v256x2){_mm256_set1_pd(x), _mm256_set1_pd(x)})
#define V_ZERO ((v256x2){_mm256_setzero_pd(), _mm256_setzero_pd()})
#define V_FMA(a, b, c)                                                                             \
    ((v256x2){_mm256_fmadd_pd((a).lo, (b).lo, (c).lo), _mm256_fmadd_pd((a).hi, (b).hi, (c).hi)})
#define V_ADD(a, b) ((v256x2){_mm256_add_pd((a).lo, (b).lo), _mm256_add_pd((a).hi, (b).hi)})
#define V_SUB(a, b) ((v256x2){_mm256_sub_pd((a).lo, (b).lo), _mm256_sub_pd((a).hi, (b).hi)})
#define V_MUL(a, b) ((v256x2){_mm256_mul_pd((a).lo, (b).lo), _mm256_mul_pd((a).hi, (b).hi)})
#define V_SLOPE(v, sp, sn)                                                                         \
    ((v256x2){_mm256_blendv_pd((sn).lo, (sp).lo,                                                   \
                               _mm256_cmp_pd((v).lo, _mm256_setzero_pd(), _CMP_GT_OQ)),            \
              _mm256_blendv_pd((sn).hi, (sp).hi,                                                   \
                               _mm256_cmp_pd((v).hi, _mm256_setzero_pd(), _CMP_GT_OQ))})
#define VTS 2
#define VTJ 2
#define VTI 2
#include "lanes_simd_int.h"
#undef SIMD_ATTR
#undef SIMD_NAME
#undef V
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_SLOPE
#undef VTS
#undef VTJ
#undef VTI
#endif

#define LANES_ARGS                                                                                 \
    const plan *pl, const double *P, const basin_dataset *ds, const size_t *idx, size_t m,         \
        const basin_loss *loss, double *G, double *risk, double *scratch, basin_net_ws *ws
#define LANES_CALL(lw) eval_body(pl, lw, P, ds, idx, m, loss, G, risk, scratch, ws)

static void eval_1(LANES_ARGS)
{
    LANES_CALL(1);
}
static void eval_8(LANES_ARGS)
{
    LANES_CALL(BASIN__LANES);
}
#if LANES_DISPATCH
TARGET_AVX2 static void eval_1_avx2(LANES_ARGS)
{
    LANES_CALL(1);
}
TARGET_AVX512 static void eval_1_avx512(LANES_ARGS)
{
    LANES_CALL(1);
}
#endif

int basin__lanes_eval_isa(basin__lanes_isa isa, const basin_net *net, size_t lw, const double *P,
                          const basin_dataset *ds, const size_t *idx, size_t m,
                          const basin_loss *loss, double *G, double *risk, double *scratch,
                          basin_net_ws *ws)
{
    plan pl;
    int rc = BASIN_EINVAL;
    if (!make_plan(net, &pl) || (lw != 1 && lw != BASIN__LANES) || m == 0)
        goto done;
    if (lw != 1)
        ws = NULL;
    rc = BASIN_ENOTSUP;
    switch (isa) {
    case BASIN__ISA_GENERIC:
        (lw == 1 ? eval_1 : eval_8)(&pl, P, ds, idx, m, loss, G, risk, scratch, ws);
        rc = BASIN_OK;
        break;
#if LANES_DISPATCH
    case BASIN__ISA_AVX2:
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
            goto done;
        if (lw == 1)
            eval_1_avx2(&pl, P, ds, idx, m, loss, G, risk, scratch, ws);
        else
            veval_avx2(&pl, P, ds, idx, m, loss, G, risk, scratch);
        rc = BASIN_OK;
        break;
    case BASIN__ISA_AVX512:
        if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") ||
            !__builtin_cpu_supports("avx512dq"))
            goto done;
        if (lw == 1)
            eval_1_avx512(&pl, P, ds, idx, m, loss, G, risk, scratch, ws);
        else
            veval_avx512(&pl, P, ds, idx, m, loss, G, risk, scratch);
        rc = BASIN_OK;
        break;
#endif
    default:
        break;
    }
done:
    return rc;
}

void basin__lanes_eval(const basin_net *net, size_t lw, const double *P, const basin_dataset *ds,
                       const size_t *idx, size_t m, const basin_loss *loss, double *G, double *risk,
                       double *scratch, basin_net_ws *ws)
{
    /* the widest instruction set the CPU has; every one gives the same bits */
    if (basin__lanes_eval_isa(BASIN__ISA_AVX512, net, lw, P, ds, idx, m, loss, G, risk, scratch,
                              ws) == BASIN_ENOTSUP &&
        basin__lanes_eval_isa(BASIN__ISA_AVX2, net, lw, P, ds, idx, m, loss, G, risk, scratch,
                              ws) == BASIN_ENOTSUP)
        basin__lanes_eval_isa(BASIN__ISA_GENERIC, net, lw, P, ds, idx, m, loss, G, risk, scratch,
                              ws);
}
