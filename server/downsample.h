/* Downsampling a long trajectory for display without losing spikes: the step range is cut into
 * equal-width buckets and each bucket keeps its first, last, lowest-risk and highest-risk points
 * (so a one-step spike or dip always survives, unlike averaging or taking every k-th point).
 * Pure C: fed points in increasing step order, one at a time, so the caller can stream chunks.
 *
 * Usage: downsample_init(&d, lo, hi, max_points); downsample_add(&d, &p) for each point in step
 * order; downsample_finish(&d, &out, &n) (the kept points, increasing steps, no duplicates,
 * n ≤ max_points); downsample_free(&d) (also after a failure; accepts a zeroed struct). */
#ifndef BASINLAB_DOWNSAMPLE_H
#define BASINLAB_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ds_bucket {
    int has;
    struct store_traj_point first, last, min, max;
};

struct downsampler {
    int64_t lo, hi, width;
    size_t n_buckets;
    struct ds_bucket *buckets;
};

/* Buckets of `width` = ceil((hi − lo + 1) / (max_points / 4)) steps covering [lo, hi]; points
 * outside are ignored. STORE_EINVAL if max_points < 4, lo < 0 or hi < lo; STORE_ENOMEM. */
int downsample_init(struct downsampler *d, int64_t lo, int64_t hi, size_t max_points);
/* Risk order for min/max treats NaN as the highest value (a NaN blow-up is a spike to keep). */
void downsample_add(struct downsampler *d, const struct store_traj_point *p);
/* The kept points into a malloc'd array (free(); NULL when *n == 0). */
int downsample_finish(const struct downsampler *d, struct store_traj_point **out, size_t *n);
void downsample_free(struct downsampler *d);

#endif
