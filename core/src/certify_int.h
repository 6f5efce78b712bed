/* Private state shared by the certify_*.c files (certify.h is the public side): the per-call
 * context that holds the objective, one evaluation workspace, the pattern layout and the
 * activation pattern of every sample, plus the prototypes each file offers the driver.
 *
 * Pattern layout: every ACTIVATION layer whose two slopes differ (identity layers cannot change
 * the function by switching sides) contributes one code per input feature (1 = pre > 0, the
 * s_pos side; 0 = the s_neg side); every MAXPOOL layer contributes one code per window (the
 * position of the maximum inside the window, or BASIN__CERT_ZERO_TIE when the maximum is a tie
 * of entries that are identically 0 near θ). Layers below the first parametrised layer do not
 * depend on θ ("fixed"): they take part in the grouping but have no margin. A sample's pattern is
 * the row of these codes; two samples with equal rows share one affine map near θ. */
#ifndef BASIN_CERTIFY_INT_H
#define BASIN_CERTIFY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "basin/certify.h"
#include "basin/objective.h"
#include "net_int.h"

#define BASIN__CERT_ZERO_TIE UINT32_MAX
#define BASIN__CERT_MAX_ALT 16  /* alternatives of one tied max-pool window */
#define BASIN__CERT_LIST_MIN 64 /* boundary pairs listed at least (when there are so many) */

/* One pattern layer. */
typedef struct basin__cert_play {
    size_t layer;
    int is_pool;
    int fixed;     /* below every parametrised layer: part of the pattern, never a boundary */
    size_t cols;   /* codes per sample: input features (activation) or windows (max pool) */
    size_t offset; /* of its first code in a pattern row */
    size_t src;    /* index of the nearest parametrised layer below (its input gives the scale);
                      n_layers when fixed */
    int src_bias;
    double s_neg, s_pos;    /* activation slopes */
    int track_dead;         /* activation with s_neg = 0 */
    size_t units, unit_div; /* dead units: features, or channels (feature / unit_div) */
    size_t active_offset;   /* into ctx->active */
    long below;             /* max pool: index of the play of an activation layer right below
                               with s_neg = 0 (its inactive entries are frozen zeros), or −1 */
} basin__cert_play;

/* A boundary pair (activation) or a tied max-pool window: the codes it may take near θ. */
typedef struct basin__cert_item {
    size_t sample, play, unit, pos; /* pos: index in the pattern row */
    size_t n_alt;                   /* 0: too many alternatives to enumerate */
    uint32_t alt[BASIN__CERT_MAX_ALT];
} basin__cert_item;

/* The dense one-hidden-layer architecture [flatten] dense(H) act dense(1). */
typedef struct basin__onehidden {
    size_t l1, lact, lout;
    size_t H, d;
    int bias1, bias2;
    size_t off_w1, off_b1, off_w2, off_b2;
    double s_neg, s_pos;
    size_t P; /* unknowns: u (H·d), β (H if bias1), c (1 if bias2) */
} basin__onehidden;

typedef struct basin__cert_ctx {
    const basin_net *net;
    const basin_dataset *ds;
    const basin_loss *loss;
    double l2;
    const basin_certify_opts *opts;
    basin_objective obj;
    basin_net_ws *ws; /* scans: forward passes of `chunk` samples */
    size_t chunk;
    size_t dim, n, k;
    double *out;   /* chunk × k network outputs */
    double *scale; /* chunk: scale of the play being scanned */
    double *scale2;
    size_t n_play;
    basin__cert_play *play;
    size_t P;              /* codes per sample */
    uint32_t *codes;       /* n × P at the judged point */
    uint32_t *codes2;      /* n × P scratch */
    double *loss_i;        /* n per-sample losses at the judged point */
    unsigned char *active; /* per dead-tracked unit: active on some sample */
    size_t n_active;
    basin__cert_item *items; /* the first items_cap boundary items */
    size_t items_cap, n_items;
    double *g, *x1, *x2, *g1; /* dim each */
    double *theta;            /* dim: the point being judged (the caller's copy is written back
                                 only on success) */
    int one_hidden;           /* the exact test's architecture and loss apply */
    basin__onehidden oh;
    int use_lanes; /* 1: for nets the lane kernel takes, probes run in its lanes and polish calls
                      it directly (same bits either way; 0 is the reference path) */
} basin__cert_ctx;

/* ---- certify.c ---- */
/* basin_certify with the lane-kernel shortcuts on (use_lanes = 1, what basin_certify does:
 * probes in lanes, polish evaluating through the kernel directly) or off (0: every evaluation
 * through the objective, the reference path the tests compare with bit for bit). */
int basin__certify_ex(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      double l2, double *theta, const basin_certify_opts *opts, int use_lanes,
                      basin_certificate **out);

/* ---- certify_region.c ---- */
/* Fill the pattern layout (play, P, n_active) of c->net. */
int basin__cert_layout(basin__cert_ctx *c);
/* Forward all samples at theta and write their pattern rows to codes (n × P). With full, also
 * the per-sample losses (ctx->loss_i), the margin, the boundary items and the dead-unit flags
 * (into cert and ctx). */
int basin__cert_scan(basin__cert_ctx *c, const double *theta, uint32_t *codes, int full,
                     basin_certificate *cert);
/* Groups, best affine fits, B, and the boundary form of the bound (R = risk at the point). */
int basin__cert_region(basin__cert_ctx *c, double R, basin_certificate *cert);

/* ---- certify_onehidden.c ---- */
/* 1 and *oh filled when the net is a dense one-hidden-layer net with scalar output. */
int basin__cert_onehidden_detect(const basin_net *net, basin__onehidden *oh);
/* 1 when the exact test's convex problem can be solved for this loss (squared, logistic,
 * huber) and l2 = 0. */
int basin__cert_onehidden_loss_ok(const basin_loss *loss, double l2);
/* The exact test (both forms) at theta with risk R; fills cert->exact and, for a non-minimum,
 * cert->descent. */
int basin__cert_exact(basin__cert_ctx *c, const basin__onehidden *oh, const double *theta, double R,
                      basin_certificate *cert);
/* The convex polish candidate: the minimiser of the convex problem with the slopes of the
 * pattern rows in c->codes2 (the caller scans θ into them; units with v_j = 0 held fixed),
 * mapped back to θ in out (dim values). *ok = 0 when nothing was found. */
int basin__cert_convex_candidate(basin__cert_ctx *c, const basin__onehidden *oh,
                                 const double *theta, double *out, size_t *iterations, int *ok);

/* ---- certify_polish.c ---- */
/* Polish theta in place when the result is better (lower R up to rounding, smaller gradient). */
int basin__cert_polish(basin__cert_ctx *c, double *theta, basin_certificate *cert);

/* ---- certify_curv.c ---- */
int basin__cert_curvature(basin__cert_ctx *c, const double *theta, basin_certificate *cert);
/* Units / channels with the per-unit rescaling symmetry (needs the dead-unit lists). */
size_t basin__cert_symmetry_modes(const basin_net *net, const basin_certificate *cert);

/* ---- certify_probe.c ---- */
int basin__cert_probes(basin__cert_ctx *c, const double *theta, double R, basin_certificate *cert);

/* ---- shared helpers (certify.c) ---- */
double basin__cert_norm(const double *v, size_t n);
/* Rounding allowance of a risk value: 16ε·max(|f|, tiny). */
double basin__cert_fround(double f);

#endif
