/* Private helpers shared by the store backends (store_common.c): clock, copies, opaque cursors,
 * little-endian float64 packing and the destructors' building blocks. Not for handlers. */
#ifndef BASINLAB_STORE_INT_H
#define BASINLAB_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Wall-clock milliseconds since the Unix epoch. */
int64_t store__now_ms(void);
/* malloc'd copy of s (NULL for NULL); *out NULL and STORE_ENOMEM on failure. */
int store__strdup(const char *s, char **out);
/* a·b into *out, STORE_EINVAL on size_t overflow. */
int store__mul_size(size_t a, size_t b, size_t *out);
/* Copies src into a fixed id buffer; STORE_EINVAL if it is NULL, empty or too long. */
int store__copy_id(char dst[STORE_ID_SIZE], const char *src);

/* Opaque cursors: base64url of "tag.v1.v2...". decode checks the tag and the count exactly;
 * anything else is STORE_EINVAL. */
int store__cursor_encode(const char *tag, const int64_t *vals, size_t n,
                         char out[STORE_CURSOR_SIZE]);
int store__cursor_decode(const char *cursor, const char *tag, int64_t *vals, size_t n);

/* float64 ⇄ 8 little-endian bytes, independent of the host's byte order. */
void store__put_f64le(unsigned char *p, double v);
double store__get_f64le(const unsigned char *p);
/* Trajectory points ⇄ 32-byte records (step as float64). */
void store__pack_points(const struct store_traj_point *pts, size_t n, unsigned char *out);
void store__unpack_points(const unsigned char *in, size_t n, struct store_traj_point *pts);

/* Release what a record owns, not the record itself (for arrays of records). */
void store__dataset_clear(struct store_dataset *d);
void store__architecture_clear(struct store_architecture *a);
void store__experiment_clear(struct store_experiment *e);
void store__run_clear(struct store_run *r);

/* The SQLite backend's constructor (store_sqlite.c). */
int store__sqlite_open(const char *path, const struct store_options *opt, struct store **out,
                       char *err, size_t errcap);
/* store_run_counts.c: a (stop reason, verdict label, count) group of the backends' one GROUP BY
 * (either name NULL: not counted there), added to c's lists; then store__run_counts_finish sorts
 * both lists by name and merges equal names. */
int store__run_counts_add(struct store_run_counts *c, const char *stop_reason,
                          const char *verdict_label, int64_t count);
void store__run_counts_finish(struct store_run_counts *c);

/* The PostgreSQL backend's constructor (store_pg.c), for "postgres://" and "postgresql://". */
int store__pg_open(const char *url, const struct store_options *opt, struct store **out, char *err,
                   size_t errcap);

#endif
