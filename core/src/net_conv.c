/* The block kernel for convolutional nets: risk and gradient of one parameter vector with 8
 * samples per SIMD vector, direct convolution, and forward, loss and backward fused per block
 * of NB samples. basin_net_risk_grad uses it for the nets basin__conv_eligible takes
 * (conv_int.h); the R-operator and forward-only paths keep the BLAS/im2col kernels.
 *
 * DESIGN
 * - Why. The convolutions of small-image nets are skinny GEMMs (K = c·k·k = 9, N = 8 for a
 *   first 3×3 layer): through im2col + dgemm most of the time went to unfolding, packing and
 *   transposes, not to multiply-adds. Here the state of a block of NB samples (every layer
 *   value and two error buffers, a few hundred KB for 8×8 images) stays in L2 and every
 *   multiply-add is a full-width FMA.
 * - Layout. Block buffers are feature-major, [feature][NB samples], features in the net's own
 *   (channel, row, column) order, so a vector is one feature of 8 consecutive samples and a
 *   weight enters as a broadcast scalar read from θ itself ([F][C][k][k]). A dense layer is
 *   the 1×1 convolution of a 1×1 image with C = in, F = units (same weight layout).
 * - Convolution by index ranges: at output position (oy, ox) only taps inside the image are
 *   visited (padding contributes nothing and costs nothing). Forward: z = b + Σ_{c, ky, kx}
 *   W·a in that order, register tile CT_F filters × NV sample-vectors. Input errors are
 *   gathered per input position (no scatter, no zeroing): e = Σ_{ky, kx, f} W·d over the
 *   output positions whose window holds that input, any stride. The activation that follows
 *   a conv/dense layer is applied in the forward tile.
 * - Gradient. Each weight keeps 8 partial sums, one per lane (samples ≡ lane mod 8), in a
 *   θ-shaped accumulator GA; for tap (ky, kx) a tile of filters × channels runs over the
 *   output positions whose tap reads the image, then over the sample-vectors. At the end
 *   ∇R_p = GA_p[0] + … + GA_p[7] in that order; the risk is summed the same way. The order is
 *   fixed by the net and m alone, so results are deterministic and the same whoever calls
 *   (basin_train_batch and basin_train_restart both come through basin_net_risk_grad); it is
 *   another order than the BLAS path's, so the two agree to rounding, not bit for bit.
 * - The last block is padded with zero inputs whose output errors are set to 0, so they add
 *   exactly +0 to every partial sum. Back-propagation stops at the first parametrised layer.
 * - Pools keep net_layers.c's rules: avg = (Σ window)·(1/p²); max = first strict maximum in
 *   row-major window order, NaN wins; the backward recomputes that switch from the stored
 *   input instead of keeping indices. Floor-mode leftovers get zero error.
 * - Instruction sets: conv_simd_int.h is instantiated for AVX-512, AVX2+FMA and portable C
 *   (fma() per lane), all with the same operations in the same order, so they give the same
 *   bits (test_conv_kernel checks). basin_net_risk_grad takes the widest one the CPU has;
 *   without AVX2 it keeps the BLAS path (libm's fma() would be slower than that).
 * - Never allocates: the scratch is sized by basin__conv_scratch_need at workspace creation. */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "conv_int.h"
#include "net_int.h"

#define NV 2        /* sample-vectors per block */
#define NB (NV * 8) /* samples per block */
#define MAX_OUT 128
#define MAX_PER_SAMPLE ((size_t)1 << 15) /* block buffer doubles per sample */
#define MAX_PARAMS ((size_t)1 << 16)

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CONV_DISPATCH 1
#include <immintrin.h>
#if defined(__clang__)
#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#else
#define TARGET_AVX512                                                                              \
    __attribute__((target("avx512f,avx512vl,avx512dq,fma,prefer-vector-width=512")))
#endif
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define CONV_DISPATCH 0
#endif

enum { CS_CONV, CS_ACT, CS_AVG, CS_MAX, CS_SUM };

typedef struct cstage {
    int kind;
    size_t layer; /* index in the net */
    size_t C, H, W, F, OH, OW, k, st, pt, pl, pool;
    size_t in_dim, out_dim;
    size_t w_off, b_off;
    int has_bias;
    int fuse_act; /* conv: the next stage is an activation, applied in the forward tile */
    int fused;    /* activation: applied by the conv before it */
    double sn, sp;
    size_t a_off, z_off; /* block buffers of input and output, in features (× NB doubles) */
} cstage;

typedef struct cplan {
    size_t n, first; /* stages; the first parametrised one */
    cstage st[BASIN__CONV_MAX_STAGES];
    size_t in0, k, dim, buf_len, maxdim;
} cplan;

typedef struct cbufs {
    double *ga, *buf, *d[2];
} cbufs;

static int conv_plan(const basin_net *net, cplan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (!net || net->in_rank != 3 || net->out_dim > MAX_OUT || net->param_count > MAX_PARAMS ||
        net->first_param >= net->n_layers)
        return 0;
    int has_conv = 0;
    size_t off = net->in_dim, maxdim = net->in_dim;
    pl->first = (size_t)-1;
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        const basin_layer_info *li = &L->info;
        if (L->spec.kind == BASIN_LAYER_FLATTEN)
            continue;
        if (pl->n == BASIN__CONV_MAX_STAGES || li->out_dim > MAX_PER_SAMPLE)
            return 0;
        cstage *st = &pl->st[pl->n];
        st->layer = l;
        st->in_dim = li->in_dim;
        st->out_dim = li->out_dim;
        st->a_off = pl->n == 0 ? 0 : pl->st[pl->n - 1].z_off;
        st->z_off = off;
        st->w_off = li->param_offset;
        st->b_off = li->param_offset + li->weight_count;
        st->has_bias = li->bias_count > 0;
        st->sn = st->sp = 1.0;
        st->k = st->st = 1;
        if (li->in_rank == 3) {
            st->C = li->in_shape[0];
            st->H = li->in_shape[1];
            st->W = li->in_shape[2];
        } else {
            st->C = li->in_dim;
            st->H = st->W = 1;
        }
        switch (L->spec.kind) {
        case BASIN_LAYER_CONV2D:
            has_conv = 1;
            st->kind = CS_CONV;
            st->F = L->spec.filters;
            st->OH = li->out_shape[1];
            st->OW = li->out_shape[2];
            st->k = L->spec.kernel;
            st->st = L->spec.stride;
            st->pt = li->pad_top;
            st->pl = li->pad_left;
            break;
        case BASIN_LAYER_DENSE:
            st->kind = CS_CONV;
            st->F = li->out_dim;
            st->OH = st->OW = 1;
            break;
        case BASIN_LAYER_ACTIVATION:
            st->kind = CS_ACT;
            st->sn = L->spec.s_neg;
            st->sp = L->spec.s_pos;
            if (pl->n > 0 && pl->st[pl->n - 1].kind == CS_CONV) {
                cstage *below = &pl->st[pl->n - 1];
                below->fuse_act = 1;
                below->sn = st->sn;
                below->sp = st->sp;
                st->fused = 1;
            }
            break;
        case BASIN_LAYER_AVGPOOL:
        case BASIN_LAYER_MAXPOOL:
            st->kind = L->spec.kind == BASIN_LAYER_AVGPOOL ? CS_AVG : CS_MAX;
            st->pool = L->spec.size;
            st->F = st->C;
            st->OH = li->out_shape[1];
            st->OW = li->out_shape[2];
            break;
        case BASIN_LAYER_SUM:
            st->kind = CS_SUM;
            break;
        default:
            return 0;
        }
        if (basin__layer_has_params(L) && pl->first == (size_t)-1)
            pl->first = pl->n;
        off += li->out_dim;
        maxdim = li->out_dim > maxdim ? li->out_dim : maxdim;
        if (off > MAX_PER_SAMPLE)
            return 0;
        pl->n++;
    }
    if (!has_conv || pl->first == (size_t)-1)
        return 0;
    pl->in0 = net->in_dim;
    pl->k = net->out_dim;
    pl->dim = net->param_count;
    pl->buf_len = off;
    pl->maxdim = maxdim;
    return off + 2 * maxdim <= MAX_PER_SAMPLE;
}

int basin__conv_eligible(const basin_net *net)
{
    cplan pl;
    return conv_plan(net, &pl);
}

size_t basin__conv_scratch_need(const basin_net *net)
{
    cplan pl;
    if (!conv_plan(net, &pl))
        return 0;
    /* GA, block buffers, two error buffers, slack for the 64-byte alignment; bounded by the
     * plan's limits, so no overflow */
    return pl.dim * 8 + (pl.buf_len + 2 * pl.maxdim) * NB + 8;
}

static int cpu_has(basin__lanes_isa isa)
{
#if CONV_DISPATCH
    if (isa == BASIN__ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    if (isa == BASIN__ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == BASIN__ISA_GENERIC;
}

size_t basin__conv_scratch_len(const basin_net *net)
{
    if (!cpu_has(BASIN__ISA_AVX512) && !cpu_has(BASIN__ISA_AVX2))
        return 0;
    return basin__conv_scratch_need(net);
}

/* ---- helpers shared by every instruction set (no floating-point arithmetic but the loss) ---- */

/* Taps [lo, hi) of a window starting at o0 (may be negative) that fall inside [0, n). */
ALWAYS_INLINE void tap_range(ptrdiff_t o0, size_t k, size_t n, size_t *lo, size_t *hi)
{
    size_t a = o0 < 0 ? (size_t)(-o0) : 0, b = k;
    if (o0 >= (ptrdiff_t)n)
        b = 0;
    else if (o0 + (ptrdiff_t)k > (ptrdiff_t)n)
        b = (size_t)((ptrdiff_t)n - o0);
    a = a < k ? a : k;
    *lo = a;
    *hi = b > a ? b : a;
}

/* Output positions [lo, hi) whose tap kpos reads an input inside [0, n_in): o·s + kpos − pad. */
ALWAYS_INLINE void out_range(size_t kpos, size_t pad, size_t n_in, size_t s, size_t n_out,
                             size_t *lo, size_t *hi)
{
    size_t a = kpos >= pad ? 0 : (pad - kpos + s - 1) / s, b = 0;
    if (n_in - 1 + pad >= kpos)
        b = (n_in - 1 + pad - kpos) / s + 1;
    b = b < n_out ? b : n_out;
    *lo = a;
    *hi = b > a ? b : a;
}

static void gather_block(const cplan *pl, const cbufs *b, const basin_dataset *ds,
                         const size_t *idx, size_t s0, size_t S)
{
    const size_t in0 = pl->in0;
    double *x = b->buf;
    for (size_t s = 0; s < S; s++) {
        const double *xr = ds->x + (idx ? idx[s0 + s] : s0 + s) * in0;
        for (size_t f = 0; f < in0; f++)
            x[f * NB + s] = xr[f];
    }
    for (size_t s = S; s < NB; s++)
        for (size_t f = 0; f < in0; f++)
            x[f * NB + s] = 0.0;
}

/* Copy the block's layer values at selection positions ≥ rec_from into ws->act (row-major). */
static void record_block(const cplan *pl, const cbufs *b, basin_net_ws *ws, size_t s0, size_t S,
                         size_t rec_from)
{
    for (size_t t = 0; t <= pl->n; t++) {
        size_t layer = t == 0 ? 0 : pl->st[t - 1].layer + 1;
        size_t cols = t == 0 ? pl->in0 : pl->st[t - 1].out_dim;
        const double *src = b->buf + (t == 0 ? 0 : pl->st[t - 1].z_off) * NB;
        for (size_t s = 0; s < S; s++) {
            if (s0 + s < rec_from)
                continue;
            double *row = ws->act[layer] + (s0 + s - rec_from) * cols;
            for (size_t c = 0; c < cols; c++)
                row[c] = src[c * NB + s];
        }
    }
}

/* Losses of the block's samples into the 8 lane sums and output errors ∂ℓ/∂o / m into d[0]
 * (0 for the padding). */
static void block_loss(const cplan *pl, const cbufs *b, const basin_dataset *ds, const size_t *idx,
                       size_t s0, size_t S, const basin_loss *loss, double inv_m, int want_grad,
                       double *sum)
{
    const size_t k = pl->k;
    const double *out = b->buf + pl->st[pl->n - 1].z_off * NB;
    double o[MAX_OUT], g[MAX_OUT], *d = b->d[0];
    for (size_t s = 0; s < S; s++) {
        const size_t smp = idx ? idx[s0 + s] : s0 + s;
        for (size_t c = 0; c < k; c++)
            o[c] = out[c * NB + s];
        sum[s % 8] += basin_loss_eval(loss, o, ds->y + smp * ds->y_dim, k, want_grad ? g : NULL);
        if (want_grad)
            for (size_t c = 0; c < k; c++)
                d[c * NB + s] = g[c] * inv_m;
    }
    if (want_grad)
        for (size_t s = S; s < NB; s++)
            for (size_t c = 0; c < k; c++)
                d[c * NB + s] = 0.0;
}

/* Input index (within one sample's features) of the maximum of window (c, oy, ox), lane s. */
ALWAYS_INLINE size_t max_switch(const cstage *st, const double *a, size_t c, size_t oy, size_t ox,
                                size_t s)
{
    const size_t p = st->pool, H = st->H, Wd = st->W;
    size_t best = (c * H + oy * p) * Wd + ox * p;
    double bv = -INFINITY;
    for (size_t dy = 0; dy < p; dy++)
        for (size_t dx = 0; dx < p; dx++) {
            const size_t j = (c * H + oy * p + dy) * Wd + ox * p + dx;
            const double x = a[j * NB + s];
            if (x > bv || isnan(x)) {
                bv = x;
                best = j;
            }
        }
    return best;
}

static void max_fwd(const cstage *st, const double *a, double *z)
{
    for (size_t c = 0; c < st->C; c++)
        for (size_t oy = 0; oy < st->OH; oy++)
            for (size_t ox = 0; ox < st->OW; ox++) {
                const size_t o = (c * st->OH + oy) * st->OW + ox;
                for (size_t s = 0; s < NB; s++) {
                    const size_t j = max_switch(st, a, c, oy, ox, s);
                    /* a lone -inf window keeps -inf, as the BLAS path's first-strict rule */
                    z[o * NB + s] = a[j * NB + s];
                }
            }
}

static void max_bwd(const cstage *st, const double *a, const double *d, double *e)
{
    memset(e, 0, st->in_dim * NB * sizeof *e);
    for (size_t c = 0; c < st->C; c++)
        for (size_t oy = 0; oy < st->OH; oy++)
            for (size_t ox = 0; ox < st->OW; ox++) {
                const size_t o = (c * st->OH + oy) * st->OW + ox;
                for (size_t s = 0; s < NB; s++)
                    e[max_switch(st, a, c, oy, ox, s) * NB + s] = d[o * NB + s];
            }
}

/* ---- instantiations ---- */

/* Portable C: 8 doubles, fma() per lane (correctly rounded, like the vector FMAs). */
typedef struct vgen {
    double l[8];
} vgen;

ALWAYS_INLINE vgen g_load(const double *p)
{
    vgen r;
    memcpy(r.l, p, sizeof r.l);
    return r;
}
ALWAYS_INLINE void g_store(double *p, vgen v)
{
    memcpy(p, v.l, sizeof v.l);
}
ALWAYS_INLINE vgen g_set1(double x)
{
    vgen r;
    for (int i = 0; i < 8; i++)
        r.l[i] = x;
    return r;
}
ALWAYS_INLINE vgen g_fma(vgen a, vgen b, vgen c)
{
    vgen r;
    for (int i = 0; i < 8; i++)
        r.l[i] = fma(a.l[i], b.l[i], c.l[i]);
    return r;
}
ALWAYS_INLINE vgen g_add(vgen a, vgen b)
{
    vgen r;
    for (int i = 0; i < 8; i++)
        r.l[i] = a.l[i] + b.l[i];
    return r;
}
ALWAYS_INLINE vgen g_mul(vgen a, vgen b)
{
    vgen r;
    for (int i = 0; i < 8; i++)
        r.l[i] = a.l[i] * b.l[i];
    return r;
}
ALWAYS_INLINE vgen g_slope(vgen v, vgen sp, vgen sn)
{
    vgen r;
    for (int i = 0; i < 8; i++)
        r.l[i] = v.l[i] > 0 ? sp.l[i] : sn.l[i];
    return r;
}

#define SIMD_ATTR
#define SIMD_NAME(x) x##_generic
#define V vgen
#define V_LOAD(p) g_load(p)
#define V_STORE(p, v) g_store(p, v)
#define V_SET1(x) g_set1(x)
#define V_ZERO g_set1(0.0)
#define V_FMA(a, b, c) g_fma(a, b, c)
#define V_ADD(a, b) g_add(a, b)
#define V_MUL(a, b) g_mul(a, b)
#define V_SLOPE(v, sp, sn) g_slope(v, sp, sn)
#define CT_F 4
#define CT_C 4
#define CT_GF 2
#define CT_GC 2
#include "conv_simd_int.h"
#undef SIMD_ATTR
#undef SIMD_NAME
#undef V
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
#undef V_ADD
#undef V_MUL
#undef V_SLOPE
#undef CT_F
#undef CT_C
#undef CT_GF
#undef CT_GC

#if CONV_DISPATCH
/* AVX-512: a vector is one zmm register; 32 registers hold tiles of 8 × 2 and 4 × 4. */
#define SIMD_ATTR TARGET_AVX512
#define SIMD_NAME(x) x##_avx512
#define V __m512d
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_SET1(x) _mm512_set1_pd(x)
#define V_ZERO _mm512_setzero_pd()
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_SLOPE(v, sp, sn)                                                                         \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ), sn, sp)
#define CT_F 8
#define CT_C 8
#define CT_GF 4
#define CT_GC 4
#include "conv_simd_int.h"
#undef SIMD_ATTR
#undef SIMD_NAME
#undef V
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
#undef V_ADD
#undef V_MUL
#undef V_SLOPE
#undef CT_F
#undef CT_C
#undef CT_GF
#undef CT_GC

/* AVX2: a vector is two ymm registers; 16 registers allow tiles of 2 × 2. */
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
#define V_MUL(a, b) ((v256x2){_mm256_mul_pd((a).lo, (b).lo), _mm256_mul_pd((a).hi, (b).hi)})
#define V_SLOPE(v, sp, sn)                                                                         \
    ((v256x2){_mm256_blendv_pd((sn).lo, (sp).lo,                                                   \
                               _mm256_cmp_pd((v).lo, _mm256_setzero_pd(), _CMP_GT_OQ)),            \
              _mm256_blendv_pd((sn).hi, (sp).hi,                                                   \
                               _mm256_cmp_pd((v).hi, _mm256_setzero_pd(), _CMP_GT_OQ))})
#define CT_F 2
#define CT_C 2
#define CT_GF 2
#define CT_GC 2
#include "conv_simd_int.h"
#undef SIMD_ATTR
#undef SIMD_NAME
#undef V
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
#undef V_ADD
#undef V_MUL
#undef V_SLOPE
#undef CT_F
#undef CT_C
#undef CT_GF
#undef CT_GC
#endif

typedef void (*block_fn)(const cplan *pl, const double *theta, const cbufs *b,
                         const basin_dataset *ds, const size_t *idx, size_t s0, size_t S,
                         const basin_loss *loss, double inv_m, int want_grad, double *sum,
                         basin_net_ws *ws, size_t rec_from);

static void run_eval(const cplan *pl, block_fn blk, const double *theta, const basin_dataset *ds,
                     const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                     double *risk, double *scratch, basin_net_ws *ws)
{
    cbufs b;
    double sum[8] = {0};
    b.ga = basin__align64(scratch);
    b.buf = b.ga + pl->dim * 8;
    b.d[0] = b.buf + pl->buf_len * NB;
    b.d[1] = b.d[0] + pl->maxdim * NB;
    if (grad)
        memset(b.ga, 0, pl->dim * 8 * sizeof *b.ga);
    const double inv_m = 1.0 / (double)m;
    const size_t rec_from = ws ? ((m - 1) / ws->chunk) * ws->chunk : 0;
    for (size_t s0 = 0; s0 < m; s0 += NB)
        blk(pl, theta, &b, ds, idx, s0, m - s0 < NB ? m - s0 : NB, loss, inv_m, grad != NULL, sum,
            ws, rec_from);
    if (grad)
        for (size_t p = 0; p < pl->dim; p++) {
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

int basin__conv_eval_isa(basin__lanes_isa isa, const basin_net *net, const double *theta,
                         const basin_dataset *ds, const size_t *idx, size_t m,
                         const basin_loss *loss, double *grad, double *risk, double *scratch,
                         basin_net_ws *ws)
{
    cplan pl;
    block_fn blk = NULL;
    int rc = BASIN_EINVAL;
    if (!conv_plan(net, &pl) || m == 0 || !theta || !ds || !loss || !risk || !scratch)
        goto done;
    rc = BASIN_ENOTSUP;
    if (!cpu_has(isa))
        goto done;
    switch (isa) {
    case BASIN__ISA_GENERIC:
        blk = block_generic;
        break;
#if CONV_DISPATCH
    case BASIN__ISA_AVX2:
        blk = block_avx2;
        break;
    case BASIN__ISA_AVX512:
        blk = block_avx512;
        break;
#endif
    default:
        goto done;
    }
    run_eval(&pl, blk, theta, ds, idx, m, loss, grad, risk, scratch, ws);
    rc = BASIN_OK;
done:
    return rc;
}

void basin__conv_eval(const basin_net *net, const double *theta, const basin_dataset *ds,
                      const size_t *idx, size_t m, const basin_loss *loss, double *grad,
                      double *risk, double *scratch, basin_net_ws *ws)
{
    if (basin__conv_eval_isa(BASIN__ISA_AVX512, net, theta, ds, idx, m, loss, grad, risk, scratch,
                             ws) == BASIN_ENOTSUP &&
        basin__conv_eval_isa(BASIN__ISA_AVX2, net, theta, ds, idx, m, loss, grad, risk, scratch,
                             ws) == BASIN_ENOTSUP)
        basin__conv_eval_isa(BASIN__ISA_GENERIC, net, theta, ds, idx, m, loss, grad, risk, scratch,
                             ws);
}
