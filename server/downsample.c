/* Spike-preserving bucket downsampling of trajectories (see downsample.h).
 *
 * DESIGN
 * The method is the "min/max per bucket" (M4-style) reduction used by time-series plotting:
 * with buckets no wider than a pixel column, drawing the first, min, max and last point of each
 * bucket reproduces the line chart of the full series. Buckets are equal ranges of steps, not of
 * point counts, so the x axis stays linear when the trajectory was recorded irregularly. Bucket
 * index = (step − lo) / width in integers: exact for every step ≤ 2^53 (no float rounding), and
 * monotone in the step, so streaming points in step order fills buckets in order. Invariant:
 * each bucket holds only points whose step maps to it, so the output, sorted within each bucket,
 * is sorted overall. Memory: 4 points per bucket, independent of the series length. */
#include "downsample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int downsample_init(struct downsampler *d, int64_t lo, int64_t hi, size_t max_points)
{
    int64_t span;
    size_t nb;

    memset(d, 0, sizeof *d);
    if (max_points < 4 || lo < 0 || hi < lo)
        return STORE_EINVAL;
    span = hi - lo + 1;
    nb = max_points / 4;
    if ((uint64_t)nb > (uint64_t)span)
        nb = (size_t)span;
    d->width = span / (int64_t)nb + (span % (int64_t)nb != 0);
    /* With the rounded-up width fewer buckets may be needed to cover the span. */
    d->n_buckets = (size_t)(span / d->width + (span % d->width != 0));
    d->lo = lo;
    d->hi = hi;
    d->buckets = calloc(d->n_buckets, sizeof *d->buckets);
    if (!d->buckets) {
        memset(d, 0, sizeof *d);
        return STORE_ENOMEM;
    }
    return STORE_OK;
}

/* a < b in risk, NaN above everything. */
static int risk_less(double a, double b)
{
    return !isnan(a) && (isnan(b) || a < b);
}

void downsample_add(struct downsampler *d, const struct store_traj_point *p)
{
    struct ds_bucket *b;
    if (!d->buckets || p->step < d->lo || p->step > d->hi)
        return;
    b = &d->buckets[(p->step - d->lo) / d->width];
    if (!b->has) {
        b->has = 1;
        b->first = b->last = b->min = b->max = *p;
        return;
    }
    b->last = *p;
    if (risk_less(p->risk, b->min.risk))
        b->min = *p;
    if (risk_less(b->max.risk, p->risk))
        b->max = *p;
}

int downsample_finish(const struct downsampler *d, struct store_traj_point **out, size_t *n)
{
    struct store_traj_point *pts = NULL;
    size_t i, k = 0;

    *out = NULL;
    *n = 0;
    if (!d->buckets)
        return STORE_EINVAL;
    pts = malloc(4 * d->n_buckets * sizeof *pts);
    if (!pts)
        return STORE_ENOMEM;
    for (i = 0; i < d->n_buckets; i++) {
        const struct ds_bucket *b = &d->buckets[i];
        struct store_traj_point four[4];
        int a, c;
        if (!b->has)
            continue;
        four[0] = b->first;
        four[1] = b->min;
        four[2] = b->max;
        four[3] = b->last;
        for (a = 1; a < 4; a++) { /* insertion sort by step */
            struct store_traj_point t = four[a];
            for (c = a; c > 0 && four[c - 1].step > t.step; c--)
                four[c] = four[c - 1];
            four[c] = t;
        }
        for (a = 0; a < 4; a++)
            if (a == 0 || four[a].step != four[a - 1].step)
                pts[k++] = four[a];
    }
    if (k == 0) {
        free(pts);
        return STORE_OK;
    }
    *out = pts;
    *n = k;
    return STORE_OK;
}

void downsample_free(struct downsampler *d)
{
    if (!d)
        return;
    free(d->buckets);
    memset(d, 0, sizeof *d);
}
