/* The on-disk format of one trajectory chunk, shared by the SQLite and PostgreSQL backends
 * (store_sqlite_traj.c, store_pg_traj.c): points ⇄ (stride, data) next to the chunk's
 * first_step, last_step and count columns. */
#ifndef BASINLAB_TRAJ_CODEC_H
#define BASINLAB_TRAJ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define TRAJ_REGULAR_POINT_BYTES 24  /* risk, grad_norm, param_norm; the step is implied */
#define TRAJ_EXPLICIT_POINT_BYTES 32 /* step, risk, grad_norm, param_norm */

/* Bytes of data a chunk of count points has in the format of stride (0 = explicit). */
size_t traj_chunk_bytes(int64_t stride, size_t count);

/* Encodes n (1..STORE_TRAJ_CHUNK_POINTS) points with strictly increasing steps into out
 * (room for TRAJ_EXPLICIT_POINT_BYTES·n): regular (*stride > 0) when every step but the last is
 * pts[0].step + i·stride, explicit (*stride = 0) otherwise. *len is the bytes written. */
void traj_encode(const struct store_traj_point *pts, size_t n, unsigned char *out, int64_t *stride,
                 size_t *len);

/* Decodes a stored chunk into pts (room for count points). STORE_ECORRUPT when the columns and
 * the data disagree (wrong length, a regular chunk whose last step is not after its grid). */
int traj_decode(const unsigned char *data, size_t len, int64_t count, int64_t first_step,
                int64_t last_step, int64_t stride, struct store_traj_point *pts);

#endif
