/* Trajectory chunk encoding (traj_codec.h).
 *
 * DESIGN
 * Two formats, told apart by the chunk's stride column:
 *  - regular (stride > 0): 24 bytes per point, risk, grad_norm, param_norm as little-endian
 *    float64. Point i < count−1 has step first_step + i·stride; the last point has step
 *    last_step, which may be off the grid (a run that stops between recording steps still
 *    records its final step). A single point has first_step = last_step and stride 1.
 *  - explicit (stride = 0): 32 bytes per point with the step as float64 too: the format of
 *    every chunk written before migration 0004, and the fallback for irregular step sequences.
 * Both reproduce the points bit for bit: the reals are stored verbatim, and steps are integers
 * ≤ 2^53 (exact as float64, and first_step + i·stride ≤ last_step never overflows).
 * Invariants of a regular chunk (checked on decode): count ≥ 1, len = 24·count,
 * first_step + (count−2)·stride < last_step for count ≥ 2, first_step = last_step for count 1.
 * The encoder picks regular whenever it applies, so re-encoding a topped-up explicit chunk
 * whose steps turned out evenly spaced converts it. */
#include "traj_codec.h"

#include "store_int.h"

#define MAX_STEP ((int64_t)1 << 53)

size_t traj_chunk_bytes(int64_t stride, size_t count)
{
    return (stride > 0 ? TRAJ_REGULAR_POINT_BYTES : TRAJ_EXPLICIT_POINT_BYTES) * count;
}

static int64_t regular_stride(const struct store_traj_point *pts, size_t n)
{
    int64_t stride;
    size_t i;

    if (n < 2)
        return 1;
    stride = pts[1].step - pts[0].step;
    /* the grid only has to hold up to the next-to-last point */
    for (i = 2; i + 1 < n; i++) {
        if (pts[i].step - pts[i - 1].step != stride)
            return 0;
    }
    return stride;
}

void traj_encode(const struct store_traj_point *pts, size_t n, unsigned char *out, int64_t *stride,
                 size_t *len)
{
    size_t i;

    *stride = regular_stride(pts, n);
    if (*stride == 0) {
        store__pack_points(pts, n, out);
        *len = TRAJ_EXPLICIT_POINT_BYTES * n;
        return;
    }
    for (i = 0; i < n; i++, out += TRAJ_REGULAR_POINT_BYTES) {
        store__put_f64le(out, pts[i].risk);
        store__put_f64le(out + 8, pts[i].grad_norm);
        store__put_f64le(out + 16, pts[i].param_norm);
    }
    *len = TRAJ_REGULAR_POINT_BYTES * n;
}

int traj_decode(const unsigned char *data, size_t len, int64_t count, int64_t first_step,
                int64_t last_step, int64_t stride, struct store_traj_point *pts)
{
    size_t i, n;

    if (count < 1 || count > STORE_TRAJ_CHUNK_POINTS || stride < 0 || stride > MAX_STEP ||
        first_step < 0 || first_step > MAX_STEP || last_step < first_step || last_step > MAX_STEP)
        return STORE_ECORRUPT;
    n = (size_t)count;
    if (!data || len != traj_chunk_bytes(stride, n))
        return STORE_ECORRUPT;
    if (stride == 0) {
        store__unpack_points(data, n, pts);
        return STORE_OK;
    }
    if (n == 1 ? first_step != last_step : first_step + (int64_t)(n - 2) * stride >= last_step)
        return STORE_ECORRUPT;
    for (i = 0; i < n; i++, data += TRAJ_REGULAR_POINT_BYTES) {
        pts[i].step = i + 1 == n ? last_step : first_step + (int64_t)i * stride;
        pts[i].risk = store__get_f64le(data);
        pts[i].grad_norm = store__get_f64le(data + 8);
        pts[i].param_norm = store__get_f64le(data + 16);
    }
    return STORE_OK;
}
