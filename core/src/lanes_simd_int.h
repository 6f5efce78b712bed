/* One instruction-set instantiation of the 8-lane kernel (net_lanes.c) written with explicit
 * vector operations, because the compiler's auto-vectorisation of the generic code spills its
 * register tiles. net_lanes.c includes this file once per instruction set, after defining
 *   SIMD_ATTR                    the function attribute selecting the instruction set
 *   SIMD_NAME(x)                 x with the instruction set's suffix
 *   V                            one value of every lane (8 doubles)
 *   V_LOAD(p) V_STORE(p, v) V_SET1(x) V_ZERO
 *   V_FMA(a, b, c) = a·b + c rounded once; V_ADD V_SUB V_MUL
 *   V_SLOPE(v, sp, sn)           per lane sp where v > 0 (ordered: NaN takes sn), else sn
 *   VTS VTJ VTI                  register tile: samples, outputs, inputs
 * and undefines them afterwards. Every lane performs exactly the operations of the generic
 * kernel in the same order (net_lanes.c, DESIGN): only the tiling and the instructions differ,
 * so the results are bit-identical to eval_body. Forward and input-error passes run on all SB
 * rows of a block (rows past the block's last sample hold zero inputs and are never read
 * back), so their tiles never have a sample remainder. No include guard, by design. */

/* Forward tile: samples s0..s0+VTS × outputs j0..j0+jn, as fwd_tile. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vfwd_tile)(const stage *st, const size_t jn, size_t s0,
                                                  size_t j0, int scalar_in, const double *P,
                                                  const double *w, const double *a, double *z,
                                                  double *sl)
{
    V acc[VTS][VTJ];
    const size_t in = st->in, out = st->out;
    for (size_t jj = 0; jj < jn; jj++) {
        const V b0 = st->has_bias ? V_LOAD(P + (st->b_off + j0 + jj) * 8) : V_ZERO;
        for (size_t ss = 0; ss < VTS; ss++)
            acc[ss][jj] = b0;
    }
    for (size_t i = 0; i < in; i++) {
        V wv[VTJ];
        for (size_t jj = 0; jj < jn; jj++)
            wv[jj] = V_LOAD(w + (i * out + j0 + jj) * 8);
        for (size_t ss = 0; ss < VTS; ss++) {
            const V av =
                scalar_in ? V_SET1(a[(s0 + ss) * in + i]) : V_LOAD(a + ((s0 + ss) * in + i) * 8);
            for (size_t jj = 0; jj < jn; jj++)
                acc[ss][jj] = V_FMA(wv[jj], av, acc[ss][jj]);
        }
    }
    const V spos = V_SET1(st->sp), sneg = V_SET1(st->sn);
    for (size_t ss = 0; ss < VTS; ss++)
        for (size_t jj = 0; jj < jn; jj++) {
            const size_t o = ((s0 + ss) * out + j0 + jj) * 8;
            if (st->has_act) {
                const V s = V_SLOPE(acc[ss][jj], spos, sneg);
                V_STORE(sl + o, s);
                V_STORE(z + o, V_MUL(s, acc[ss][jj]));
            } else {
                V_STORE(z + o, acc[ss][jj]);
            }
        }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vfwd_stage)(const stage *st, int scalar_in, const double *P,
                                                   const double *w, const double *a, double *z,
                                                   double *sl)
{
    const size_t out = st->out;
    for (size_t s0 = 0; s0 < SB; s0 += VTS) {
        size_t j0 = 0;
        for (; j0 + VTJ <= out; j0 += VTJ)
            SIMD_NAME(vfwd_tile)(st, VTJ, s0, j0, scalar_in, P, w, a, z, sl);
        switch (out - j0) {
        case 0:
            break;
        case 1:
            SIMD_NAME(vfwd_tile)(st, 1, s0, j0, scalar_in, P, w, a, z, sl);
            break;
        case 2:
            SIMD_NAME(vfwd_tile)(st, 2, s0, j0, scalar_in, P, w, a, z, sl);
            break;
        default:
            SIMD_NAME(vfwd_tile)(st, out - j0, s0, j0, scalar_in, P, w, a, z, sl);
            break;
        }
    }
}

/* Loss values into sum and output errors into d[0], as block_loss. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vblock_loss)(const plan *pl, const bufs *b,
                                                    const basin_dataset *ds, const size_t *idx,
                                                    size_t s0, size_t S, const basin_loss *loss,
                                                    double inv_m, int want_grad, double *sum)
{
    const size_t k = pl->k;
    const stage *last = &pl->st[pl->n - 1];
    const V half = V_SET1(0.5), vinv = V_SET1(inv_m);
    memset(b->d[0] + S * k * 8, 0, (SB - S) * k * 8 * sizeof(double)); /* rows past the block */
    for (size_t s = 0; s < S; s++) {
        const size_t smp = idx ? idx[s0 + s] : s0 + s;
        const double *y = ds->y + smp * ds->y_dim;
        const double *o = b->out + s * k * 8;
        double *d = b->d[0] + s * k * 8;
        if (loss->kind == BASIN_LOSS_SQUARED) {
            V v = V_ZERO;
            for (size_t c = 0; c < k; c++) {
                const V r = V_SUB(V_LOAD(o + c * 8), V_SET1(y[c]));
                v = V_ADD(v, V_MUL(V_MUL(half, r), r));
                V_STORE(d + c * 8, V_MUL(r, vinv));
            }
            V_STORE(sum, V_ADD(V_LOAD(sum), v));
        } else {
            double ol[BASIN__LANES_MAX_WIDTH], gl[BASIN__LANES_MAX_WIDTH];
            for (size_t l = 0; l < 8; l++) {
                for (size_t c = 0; c < k; c++)
                    ol[c] = o[c * 8 + l];
                sum[l] += basin_loss_eval(loss, ol, y, k, want_grad ? gl : NULL);
                if (want_grad)
                    for (size_t c = 0; c < k; c++)
                        d[c * 8 + l] = gl[c] * inv_m;
            }
        }
        if (want_grad && last->has_act) {
            const double *sl = b->sl + last->sl_off * SB * 8 + s * k * 8;
            for (size_t c = 0; c < k; c++)
                V_STORE(d + c * 8, V_MUL(V_LOAD(d + c * 8), V_LOAD(sl + c * 8)));
        }
    }
}

/* Weight-gradient tile jn × in_n over the block's S samples, as wgrad_tile; with_bias: also the
 * bias entries of the tile's rows (bgrad: one add per sample in order), fused here because
 * their S-long add chains would otherwise run one row at a time. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vwgrad_tile)(const stage *st, const size_t jn,
                                                    const size_t in_n, size_t S, size_t j0,
                                                    size_t i0, int scalar_in, int with_bias,
                                                    const double *a, const double *d, double *G)
{
    V g[VTJ][VTI], gb[VTJ];
    const size_t in = st->in, out = st->out;
    for (size_t jj = 0; jj < jn; jj++) {
        for (size_t ii = 0; ii < in_n; ii++)
            g[jj][ii] = V_LOAD(G + (st->w_off + (j0 + jj) * in + i0 + ii) * 8);
        gb[jj] = with_bias ? V_LOAD(G + (st->b_off + j0 + jj) * 8) : V_ZERO;
    }
    for (size_t s = 0; s < S; s++) {
        V dv[VTJ];
        for (size_t jj = 0; jj < jn; jj++) {
            dv[jj] = V_LOAD(d + (s * out + j0 + jj) * 8);
            if (with_bias)
                gb[jj] = V_ADD(gb[jj], dv[jj]);
        }
        for (size_t ii = 0; ii < in_n; ii++) {
            const V av =
                scalar_in ? V_SET1(a[s * in + i0 + ii]) : V_LOAD(a + (s * in + i0 + ii) * 8);
            for (size_t jj = 0; jj < jn; jj++)
                g[jj][ii] = V_FMA(dv[jj], av, g[jj][ii]);
        }
    }
    for (size_t jj = 0; jj < jn; jj++) {
        for (size_t ii = 0; ii < in_n; ii++)
            V_STORE(G + (st->w_off + (j0 + jj) * in + i0 + ii) * 8, g[jj][ii]);
        if (with_bias)
            V_STORE(G + (st->b_off + j0 + jj) * 8, gb[jj]);
    }
}

/* Tiles over the inputs of output rows j0..j0+jn; the first also takes the rows' biases. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vwgrad_row)(const stage *st, const size_t jn, size_t S,
                                                   size_t j0, int scalar_in, const double *a,
                                                   const double *d, double *G)
{
    const size_t in = st->in;
    size_t i0 = 0;
    for (; i0 + VTI <= in; i0 += VTI)
        SIMD_NAME(vwgrad_tile)(st, jn, VTI, S, j0, i0, scalar_in, i0 == 0 && st->has_bias, a, d, G);
    const int wb = i0 == 0 && st->has_bias;
    switch (in - i0) {
    case 0:
        break;
    case 1:
        SIMD_NAME(vwgrad_tile)(st, jn, 1, S, j0, i0, scalar_in, wb, a, d, G);
        break;
    case 2:
        SIMD_NAME(vwgrad_tile)(st, jn, 2, S, j0, i0, scalar_in, wb, a, d, G);
        break;
    default:
        SIMD_NAME(vwgrad_tile)(st, jn, in - i0, S, j0, i0, scalar_in, wb, a, d, G);
        break;
    }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vwgrad)(const stage *st, size_t S, int scalar_in,
                                               const double *a, const double *d, double *G)
{
    const size_t out = st->out;
    size_t j0 = 0;
    for (; j0 + VTJ <= out; j0 += VTJ)
        SIMD_NAME(vwgrad_row)(st, VTJ, S, j0, scalar_in, a, d, G);
    switch (out - j0) {
    case 0:
        break;
    case 1:
        SIMD_NAME(vwgrad_row)(st, 1, S, j0, scalar_in, a, d, G);
        break;
    default:
        SIMD_NAME(vwgrad_row)(st, out - j0, S, j0, scalar_in, a, d, G);
        break;
    }
}

/* Input-error tile: samples s0..s0+VTS × inputs i0..i0+in_n, as bwd_tile. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vbwd_tile)(const stage *st, const size_t in_n, size_t s0,
                                                  size_t i0, const double *P, const double *d,
                                                  const double *sl, double *e)
{
    V acc[VTS][VTI];
    const size_t in = st->in, out = st->out;
    for (size_t ss = 0; ss < VTS; ss++)
        for (size_t ii = 0; ii < in_n; ii++)
            acc[ss][ii] = V_ZERO;
    for (size_t j = 0; j < out; j++) {
        V wv[VTI];
        for (size_t ii = 0; ii < in_n; ii++)
            wv[ii] = V_LOAD(P + (st->w_off + j * in + i0 + ii) * 8);
        for (size_t ss = 0; ss < VTS; ss++) {
            const V dv = V_LOAD(d + ((s0 + ss) * out + j) * 8);
            for (size_t ii = 0; ii < in_n; ii++)
                acc[ss][ii] = V_FMA(wv[ii], dv, acc[ss][ii]);
        }
    }
    for (size_t ss = 0; ss < VTS; ss++)
        for (size_t ii = 0; ii < in_n; ii++) {
            const size_t o = ((s0 + ss) * in + i0 + ii) * 8;
            V_STORE(e + o, sl ? V_MUL(acc[ss][ii], V_LOAD(sl + o)) : acc[ss][ii]);
        }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(vbwd_stage)(const stage *st, const double *P,
                                                   const double *d, const double *sl, double *e)
{
    const size_t in = st->in;
    for (size_t s0 = 0; s0 < SB; s0 += VTS) {
        size_t i0 = 0;
        for (; i0 + VTI <= in; i0 += VTI)
            SIMD_NAME(vbwd_tile)(st, VTI, s0, i0, P, d, sl, e);
        switch (in - i0) {
        case 0:
            break;
        case 1:
            SIMD_NAME(vbwd_tile)(st, 1, s0, i0, P, d, sl, e);
            break;
        case 2:
            SIMD_NAME(vbwd_tile)(st, 2, s0, i0, P, d, sl, e);
            break;
        default:
            SIMD_NAME(vbwd_tile)(st, in - i0, s0, i0, P, d, sl, e);
            break;
        }
    }
}

/* One block of S ≤ SB samples, as eval_block with lw = 8 (no recording). */
SIMD_ATTR static void SIMD_NAME(vblock)(const plan *pl, const double *P, const bufs *b,
                                        const basin_dataset *ds, const size_t *idx, size_t s0,
                                        size_t S, const basin_loss *loss, double inv_m, double *G,
                                        double *sum)
{
    const size_t in0 = pl->in0;
    for (size_t s = 0; s < SB; s++) {
        if (s < S) {
            const size_t smp = idx ? idx[s0 + s] : s0 + s;
            memcpy(b->x + s * in0, ds->x + smp * in0, in0 * sizeof(double));
        } else {
            memset(b->x + s * in0, 0, in0 * sizeof(double));
        }
    }
    for (size_t t = 0; t < pl->n; t++) {
        const stage *st = &pl->st[t];
        const double *w = b->wf + st->wf_off * 8;
        double *z = t + 1 < pl->n ? b->act + pl->st[t + 1].a_off * SB * 8 : b->out;
        double *sl = st->has_act ? b->sl + st->sl_off * SB * 8 : NULL;
        if (t == 0)
            SIMD_NAME(vfwd_stage)(st, 1, P, w, b->x, z, sl);
        else
            SIMD_NAME(vfwd_stage)(st, 0, P, w, b->act + st->a_off * SB * 8, z, sl);
    }
    SIMD_NAME(vblock_loss)(pl, b, ds, idx, s0, S, loss, inv_m, G != NULL, sum);
    if (!G)
        return;
    int cur = 0;
    for (size_t t = pl->n; t-- > 0;) {
        const stage *st = &pl->st[t];
        const double *d = b->d[cur];
        if (t == 0) {
            SIMD_NAME(vwgrad)(st, S, 1, b->x, d, G);
            break;
        }
        SIMD_NAME(vwgrad)(st, S, 0, b->act + st->a_off * SB * 8, d, G);
        const stage *below = &pl->st[t - 1];
        const double *sl = below->has_act ? b->sl + below->sl_off * SB * 8 : NULL;
        SIMD_NAME(vbwd_stage)(st, P, d, sl, b->d[1 - cur]);
        cur = 1 - cur;
    }
}

SIMD_ATTR static void SIMD_NAME(veval)(const plan *pl, const double *P, const basin_dataset *ds,
                                       const size_t *idx, size_t m, const basin_loss *loss,
                                       double *G, double *risk, double *scratch)
{
    bufs b;
    double sum[8];
    const double inv_m = 1.0 / (double)m;
    carve(pl, 8, scratch, &b);
    transpose_weights(pl, 8, P, b.wf);
    for (size_t l = 0; l < 8; l++)
        sum[l] = 0.0;
    for (size_t s0 = 0; s0 < m; s0 += SB)
        SIMD_NAME(vblock)(pl, P, &b, ds, idx, s0, m - s0 < SB ? m - s0 : SB, loss, inv_m, G, sum);
    for (size_t l = 0; l < 8; l++)
        risk[l] = sum[l] / (double)m;
}
