/* One instruction-set instantiation of the block kernel for convolutional nets (net_conv.c).
 * net_conv.c includes this file once per instruction set, after defining
 *   SIMD_ATTR                 the function attribute selecting the instruction set
 *   SIMD_NAME(x)              x with the instruction set's suffix
 *   V                         one value for 8 samples (8 doubles)
 *   V_LOAD(p) V_STORE(p, v) V_SET1(x) V_ZERO
 *   V_FMA(a, b, c) = a·b + c rounded once; V_ADD V_MUL
 *   V_SLOPE(v, sp, sn)        per lane sp where v > 0 (ordered: NaN takes sn), else sn
 *   CT_F CT_C CT_GF CT_GC     register tiles: filters (forward), input channels (input
 *                             errors), filters × channels (weight gradient); each tile also
 *                             spans all NV sample-vectors of the block
 * and undefines them afterwards. Every instantiation performs the same floating-point
 * operations in the same order on every lane (tiles only regroup independent accumulators), so
 * all of them give the same bits. No include guard, by design. */

/* Forward tile at output position (oy, ox): filters f0..f0+fn, all sample-vectors. Taps that
 * fall into the padding are skipped by index ranges. post != NULL: also the fused activation. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(fwd_tile)(const cstage *st, const size_t fn, size_t f0,
                                                 size_t oy, size_t ox, const double *theta,
                                                 const double *a, double *z, double *post)
{
    V acc[CT_F][NV];
    const size_t C = st->C, H = st->H, Wd = st->W, k = st->k, kk = k * k, ckk = C * kk;
    const size_t P = st->OH * st->OW;
    const double *W = theta + st->w_off;
    for (size_t fj = 0; fj < fn; fj++) {
        const V b0 = st->has_bias ? V_SET1(theta[st->b_off + f0 + fj]) : V_ZERO;
        for (size_t v = 0; v < NV; v++)
            acc[fj][v] = b0;
    }
    const ptrdiff_t y0 = (ptrdiff_t)(oy * st->st) - (ptrdiff_t)st->pt;
    const ptrdiff_t x0 = (ptrdiff_t)(ox * st->st) - (ptrdiff_t)st->pl;
    size_t ky0, ky1, kx0, kx1;
    tap_range(y0, k, H, &ky0, &ky1);
    tap_range(x0, k, Wd, &kx0, &kx1);
    for (size_t c = 0; c < C; c++)
        for (size_t ky = ky0; ky < ky1; ky++) {
            const double *ar = a + (c * H + (size_t)(y0 + (ptrdiff_t)ky)) * Wd * NB;
            const double *wr = W + f0 * ckk + (c * k + ky) * k;
            for (size_t kx = kx0; kx < kx1; kx++) {
                const double *ap = ar + (size_t)(x0 + (ptrdiff_t)kx) * NB;
                V av[NV];
                for (size_t v = 0; v < NV; v++)
                    av[v] = V_LOAD(ap + v * 8);
                for (size_t fj = 0; fj < fn; fj++) {
                    const V w = V_SET1(wr[fj * ckk + kx]);
                    for (size_t v = 0; v < NV; v++)
                        acc[fj][v] = V_FMA(w, av[v], acc[fj][v]);
                }
            }
        }
    const size_t p = oy * st->OW + ox;
    const V sp = V_SET1(st->sp), sn = V_SET1(st->sn);
    for (size_t fj = 0; fj < fn; fj++)
        for (size_t v = 0; v < NV; v++) {
            const size_t o = ((f0 + fj) * P + p) * NB + v * 8;
            V_STORE(z + o, acc[fj][v]);
            if (post)
                V_STORE(post + o, V_MUL(V_SLOPE(acc[fj][v], sp, sn), acc[fj][v]));
        }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(fwd_stage)(const cstage *st, const double *theta,
                                                  const double *a, double *z, double *post)
{
    const size_t F = st->F;
    for (size_t oy = 0; oy < st->OH; oy++)
        for (size_t ox = 0; ox < st->OW; ox++) {
            size_t f0 = 0;
            for (; f0 + CT_F <= F; f0 += CT_F)
                SIMD_NAME(fwd_tile)(st, CT_F, f0, oy, ox, theta, a, z, post);
            for (; f0 + CT_F / 2 <= F; f0 += CT_F / 2)
                SIMD_NAME(fwd_tile)(st, CT_F / 2, f0, oy, ox, theta, a, z, post);
            for (; f0 < F; f0++)
                SIMD_NAME(fwd_tile)(st, 1, f0, oy, ox, theta, a, z, post);
        }
}

/* Input-error tile at input position (iy, ix): channels c0..c0+cn, all sample-vectors,
 * e = Σ over the output positions and taps that read this input of W·d. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(bwd_tile)(const cstage *st, const size_t cn, size_t c0,
                                                 size_t iy, size_t ix, const double *theta,
                                                 const double *d, double *e)
{
    V acc[CT_C][NV];
    const size_t C = st->C, H = st->H, Wd = st->W, k = st->k, kk = k * k, ckk = C * kk;
    const size_t F = st->F, OH = st->OH, OW = st->OW, P = OH * OW, s = st->st;
    const double *W = theta + st->w_off;
    for (size_t ci = 0; ci < cn; ci++)
        for (size_t v = 0; v < NV; v++)
            acc[ci][v] = V_ZERO;
    for (size_t ky = 0; ky < k; ky++) {
        const ptrdiff_t t = (ptrdiff_t)(iy + st->pt) - (ptrdiff_t)ky;
        if (t < 0 || (size_t)t % s != 0 || (size_t)t / s >= OH)
            continue;
        const size_t oy = (size_t)t / s;
        for (size_t kx = 0; kx < k; kx++) {
            const ptrdiff_t u = (ptrdiff_t)(ix + st->pl) - (ptrdiff_t)kx;
            if (u < 0 || (size_t)u % s != 0 || (size_t)u / s >= OW)
                continue;
            const double *dp = d + (oy * OW + (size_t)u / s) * NB;
            const double *wp = W + (c0 * k + ky) * k + kx;
            for (size_t f = 0; f < F; f++) {
                V dv[NV];
                for (size_t v = 0; v < NV; v++)
                    dv[v] = V_LOAD(dp + f * P * NB + v * 8);
                for (size_t ci = 0; ci < cn; ci++) {
                    const V w = V_SET1(wp[f * ckk + ci * kk]);
                    for (size_t v = 0; v < NV; v++)
                        acc[ci][v] = V_FMA(w, dv[v], acc[ci][v]);
                }
            }
        }
    }
    for (size_t ci = 0; ci < cn; ci++)
        for (size_t v = 0; v < NV; v++)
            V_STORE(e + (((c0 + ci) * H + iy) * Wd + ix) * NB + v * 8, acc[ci][v]);
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(bwd_stage)(const cstage *st, const double *theta,
                                                  const double *d, double *e)
{
    const size_t C = st->C;
    for (size_t iy = 0; iy < st->H; iy++)
        for (size_t ix = 0; ix < st->W; ix++) {
            size_t c0 = 0;
            for (; c0 + CT_C <= C; c0 += CT_C)
                SIMD_NAME(bwd_tile)(st, CT_C, c0, iy, ix, theta, d, e);
            for (; c0 + CT_C / 2 <= C; c0 += CT_C / 2)
                SIMD_NAME(bwd_tile)(st, CT_C / 2, c0, iy, ix, theta, d, e);
            for (; c0 < C; c0++)
                SIMD_NAME(bwd_tile)(st, 1, c0, iy, ix, theta, d, e);
        }
}

/* Weight-gradient tile of tap (ky, kx): filters f0..f0+fn × channels c0..c0+cn, 8 lane
 * partial sums each, over the output positions [oy0,oy1) × [ox0,ox1) whose tap reads the image
 * (not the padding), position by position and sample-vector by sample-vector. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(wgrad_tile)(const cstage *st, const size_t fn,
                                                   const size_t cn, size_t f0, size_t c0, size_t ky,
                                                   size_t kx, const size_t *r, const double *a,
                                                   const double *d, double *ga)
{
    V g[CT_GF][CT_GC];
    const size_t C = st->C, H = st->H, Wd = st->W, k = st->k, kk = k * k;
    const size_t OW = st->OW, P = st->OH * OW, s = st->st;
    for (size_t fj = 0; fj < fn; fj++)
        for (size_t ci = 0; ci < cn; ci++)
            g[fj][ci] = V_LOAD(ga + (st->w_off + ((f0 + fj) * C + c0 + ci) * kk + ky * k + kx) * 8);
    for (size_t oy = r[0]; oy < r[1]; oy++) {
        const size_t iy = oy * s + ky - st->pt;
        for (size_t ox = r[2]; ox < r[3]; ox++) {
            const size_t ix = ox * s + kx - st->pl, p = oy * OW + ox;
            for (size_t v = 0; v < NV; v++) {
                V dv[CT_GF];
                for (size_t fj = 0; fj < fn; fj++)
                    dv[fj] = V_LOAD(d + ((f0 + fj) * P + p) * NB + v * 8);
                for (size_t ci = 0; ci < cn; ci++) {
                    const V av = V_LOAD(a + (((c0 + ci) * H + iy) * Wd + ix) * NB + v * 8);
                    for (size_t fj = 0; fj < fn; fj++)
                        g[fj][ci] = V_FMA(dv[fj], av, g[fj][ci]);
                }
            }
        }
    }
    for (size_t fj = 0; fj < fn; fj++)
        for (size_t ci = 0; ci < cn; ci++)
            V_STORE(ga + (st->w_off + ((f0 + fj) * C + c0 + ci) * kk + ky * k + kx) * 8, g[fj][ci]);
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(wgrad_row)(const cstage *st, const size_t fn, size_t f0,
                                                  size_t ky, size_t kx, const size_t *r,
                                                  const double *a, const double *d, double *ga)
{
    size_t c0 = 0;
    for (; c0 + CT_GC <= st->C; c0 += CT_GC)
        SIMD_NAME(wgrad_tile)(st, fn, CT_GC, f0, c0, ky, kx, r, a, d, ga);
    for (; c0 < st->C; c0++)
        SIMD_NAME(wgrad_tile)(st, fn, 1, f0, c0, ky, kx, r, a, d, ga);
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(wgrad_stage)(const cstage *st, const double *a,
                                                    const double *d, double *ga)
{
    const size_t F = st->F, k = st->k, P = st->OH * st->OW;
    for (size_t ky = 0; ky < k; ky++)
        for (size_t kx = 0; kx < k; kx++) {
            size_t r[4];
            out_range(ky, st->pt, st->H, st->st, st->OH, &r[0], &r[1]);
            out_range(kx, st->pl, st->W, st->st, st->OW, &r[2], &r[3]);
            size_t f0 = 0;
            for (; f0 + CT_GF <= F; f0 += CT_GF)
                SIMD_NAME(wgrad_row)(st, CT_GF, f0, ky, kx, r, a, d, ga);
            for (; f0 < F; f0++)
                SIMD_NAME(wgrad_row)(st, 1, f0, ky, kx, r, a, d, ga);
        }
    if (!st->has_bias)
        return;
    for (size_t f = 0; f < F; f++) {
        V g = V_LOAD(ga + (st->b_off + f) * 8);
        for (size_t p = 0; p < P; p++)
            for (size_t v = 0; v < NV; v++)
                g = V_ADD(g, V_LOAD(d + (f * P + p) * NB + v * 8));
        V_STORE(ga + (st->b_off + f) * 8, g);
    }
}

/* out = h'(pre) ⊙ x over n features: the activation (x = pre) and its backward. */
SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(act_pass)(const cstage *st, size_t n, const double *pre,
                                                 const double *x, double *out)
{
    const V sp = V_SET1(st->sp), sn = V_SET1(st->sn);
    for (size_t q = 0; q < n * NB; q += 8)
        V_STORE(out + q, V_MUL(V_SLOPE(V_LOAD(pre + q), sp, sn), V_LOAD(x + q)));
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(avg_fwd)(const cstage *st, const double *a, double *z)
{
    const size_t H = st->H, Wd = st->W, OH = st->OH, OW = st->OW, p = st->pool;
    const V scale = V_SET1(1.0 / (double)(p * p));
    for (size_t c = 0; c < st->C; c++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++)
                for (size_t v = 0; v < NV; v++) {
                    V acc = V_ZERO;
                    for (size_t dy = 0; dy < p; dy++)
                        for (size_t dx = 0; dx < p; dx++)
                            acc = V_ADD(acc,
                                        V_LOAD(a + ((c * H + oy * p + dy) * Wd + ox * p + dx) * NB +
                                               v * 8));
                    V_STORE(z + ((c * OH + oy) * OW + ox) * NB + v * 8, V_MUL(acc, scale));
                }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(avg_bwd)(const cstage *st, const double *d, double *e)
{
    const size_t H = st->H, Wd = st->W, OH = st->OH, OW = st->OW, p = st->pool;
    const V scale = V_SET1(1.0 / (double)(p * p));
    if (OH * p != H || OW * p != Wd) /* floor mode left inputs that get no error */
        memset(e, 0, st->in_dim * NB * sizeof *e);
    for (size_t c = 0; c < st->C; c++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++)
                for (size_t v = 0; v < NV; v++) {
                    const V val = V_MUL(V_LOAD(d + ((c * OH + oy) * OW + ox) * NB + v * 8), scale);
                    for (size_t dy = 0; dy < p; dy++)
                        for (size_t dx = 0; dx < p; dx++)
                            V_STORE(e + ((c * H + oy * p + dy) * Wd + ox * p + dx) * NB + v * 8,
                                    val);
                }
}

SIMD_ATTR ALWAYS_INLINE void SIMD_NAME(sum_fwd)(const cstage *st, const double *a, double *z)
{
    for (size_t v = 0; v < NV; v++) {
        V acc = V_ZERO;
        for (size_t j = 0; j < st->in_dim; j++)
            acc = V_ADD(acc, V_LOAD(a + j * NB + v * 8));
        V_STORE(z + v * 8, acc);
    }
}

/* One block of S ≤ NB samples starting at selection position s0: forward, loss, backward. */
SIMD_ATTR static void SIMD_NAME(block)(const cplan *pl, const double *theta, const cbufs *b,
                                       const basin_dataset *ds, const size_t *idx, size_t s0,
                                       size_t S, const basin_loss *loss, double inv_m,
                                       int want_grad, double *sum, basin_net_ws *ws,
                                       size_t rec_from)
{
    gather_block(pl, b, ds, idx, s0, S);
    for (size_t t = 0; t < pl->n; t++) {
        const cstage *st = &pl->st[t];
        const double *a = b->buf + st->a_off * NB;
        double *z = b->buf + st->z_off * NB;
        switch (st->kind) {
        case CS_CONV:
            SIMD_NAME(fwd_stage)
            (st, theta, a, z, st->fuse_act ? b->buf + pl->st[t + 1].z_off * NB : NULL);
            break;
        case CS_ACT:
            if (!st->fused)
                SIMD_NAME(act_pass)(st, st->in_dim, a, a, z);
            break;
        case CS_AVG:
            SIMD_NAME(avg_fwd)(st, a, z);
            break;
        case CS_MAX:
            max_fwd(st, a, z);
            break;
        case CS_SUM:
            SIMD_NAME(sum_fwd)(st, a, z);
            break;
        }
    }
    if (ws && s0 + S > rec_from)
        record_block(pl, b, ws, s0, S, rec_from);
    block_loss(pl, b, ds, idx, s0, S, loss, inv_m, want_grad, sum);
    if (!want_grad)
        return;
    int cur = 0;
    for (size_t t = pl->n; t-- > pl->first;) {
        const cstage *st = &pl->st[t];
        const double *a = b->buf + st->a_off * NB, *d = b->d[cur];
        double *e = b->d[1 - cur];
        switch (st->kind) {
        case CS_CONV:
            SIMD_NAME(wgrad_stage)(st, a, d, b->ga);
            if (t == pl->first)
                return;
            SIMD_NAME(bwd_stage)(st, theta, d, e);
            break;
        case CS_ACT:
            SIMD_NAME(act_pass)(st, st->in_dim, a, d, e);
            break;
        case CS_AVG:
            SIMD_NAME(avg_bwd)(st, d, e);
            break;
        case CS_MAX:
            max_bwd(st, a, d, e);
            break;
        case CS_SUM:
            for (size_t j = 0; j < st->in_dim; j++)
                memcpy(e + j * NB, d, NB * sizeof *e);
            break;
        }
        cur = 1 - cur;
    }
}
