/* The SQLite backend's trajectories (store.h): appending points in chunks, reading a step range
 * page by page, and the spike-preserving downsampled read (downsample.c).
 *
 * DESIGN
 * A trajectory is a sequence of chunk rows (run_id, chunk_no) holding up to
 * STORE_TRAJ_CHUNK_POINTS points, with the chunk's first and last step and its stride as
 * columns; the data is 24 bytes per point when the steps are evenly spaced (implied by the
 * stride) and 32 otherwise (traj_codec.h has the formats). Never a row per point: an append
 * first tops up the run's last chunk (read, decode, extend, re-encode, rewrite: at most 16 KiB)
 * and then adds full chunks, so even one-point appends cost O(chunk) and keep one row per 512
 * points. The top-up is an UPDATE, which keeps the row's rowid: a REPLACE would delete it and
 * append it at the end of the table, leaving a hole in its old page.
 * Invariants: steps increase strictly along the trajectory (append rejects anything else), hence
 * chunk_no order is step order and a step range maps to a contiguous run of chunks found with
 * last_step ≥ from AND first_step ≤ to. Appends are fenced like run_finish (the run must be
 * `running` under the caller's token), so a worker that lost its claim cannot write into the
 * trajectory of the next attempt. Reads run in one read transaction (a consistent snapshot). */
#include "store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#include "downsample.h"
#include "traj_codec.h"

#define MAX_STEP ((int64_t)1 << 53) /* steps travel as float64 */

/* ---- chunk iteration ---- */

struct chunk_iter {
    sqlite3_stmt *st;
    struct store_traj_point buf[STORE_TRAJ_CHUNK_POINTS];
};

static int iter_open(struct sqlite_store *ss, sqlite3 *db, const char *run_id, int64_t from,
                     int64_t to, struct chunk_iter *it)
{
    int rc =
        store_sq_prepare(ss, db,
                         "SELECT count, first_step, last_step, stride, data FROM trajectory_chunks "
                         "WHERE run_id = ?1 "
                         "AND last_step >= ?2 AND first_step <= ?3 ORDER BY chunk_no",
                         &it->st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(it->st, 1, run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(it->st, 2, from));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(it->st, 3, to));
    return rc;
}

/* The next chunk's points in it->buf; *n = 0 at the end. */
static int iter_next(struct sqlite_store *ss, sqlite3 *db, struct chunk_iter *it, size_t *n)
{
    int64_t count;
    int rc, src = sqlite3_step(it->st);

    *n = 0;
    if (src == SQLITE_DONE)
        return STORE_OK;
    if (src != SQLITE_ROW)
        return store_sq_fail(ss, db, sqlite3_extended_errcode(db), "trajectory read");
    count = store_sq_col_int(it->st, 0);
    if (sqlite3_column_type(it->st, 4) != SQLITE_BLOB)
        return STORE_ECORRUPT;
    rc = traj_decode(sqlite3_column_blob(it->st, 4), (size_t)sqlite3_column_bytes(it->st, 4), count,
                     store_sq_col_int(it->st, 1), store_sq_col_int(it->st, 2),
                     store_sq_col_int(it->st, 3), it->buf);
    if (rc != STORE_OK)
        return rc;
    *n = (size_t)count;
    return STORE_OK;
}

static int run_exists(struct sqlite_store *ss, sqlite3 *db, const char *run_id)
{
    int exists = 0;
    int rc = store_sq_exists(ss, db, "SELECT 1 FROM runs WHERE id = ?1", run_id, &exists);
    return rc != STORE_OK ? rc : exists ? STORE_OK : STORE_ENOTFOUND;
}

/* ---- append ---- */

static int check_points(const struct store_traj_point *pts, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (pts[i].step < 0 || pts[i].step > MAX_STEP || (i > 0 && pts[i].step <= pts[i - 1].step))
            return STORE_EINVAL;
    }
    return STORE_OK;
}

/* Within the transaction: STORE_OK if the run is running under token. */
static int check_fence(struct sqlite_store *ss, sqlite3 *db, const char *run_id, const char *token)
{
    sqlite3_stmt *st = NULL;
    const char *status, *held;
    int rc, src;

    rc = store_sq_prepare(ss, db, "SELECT status, claim_token FROM runs WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? STORE_ENOTFOUND
                                : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "fence");
        goto done;
    }
    status = (const char *)sqlite3_column_text(st, 0);
    held = (const char *)sqlite3_column_text(st, 1);
    if (!status || strcmp(status, "running") != 0 || !held || strcmp(held, token) != 0)
        rc = STORE_ECONFLICT;
done:
    sqlite3_finalize(st);
    return rc;
}

struct last_chunk {
    int exists;
    int64_t chunk_no, last_step, count;
    struct store_traj_point pts[STORE_TRAJ_CHUNK_POINTS];
    unsigned char data[TRAJ_EXPLICIT_POINT_BYTES * STORE_TRAJ_CHUNK_POINTS]; /* encode buffer */
};

static int read_last_chunk(struct sqlite_store *ss, sqlite3 *db, const char *run_id,
                           struct last_chunk *lc)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    lc->exists = 0;
    rc = store_sq_prepare(ss, db,
                          "SELECT chunk_no, first_step, last_step, count, stride, data "
                          "FROM trajectory_chunks WHERE run_id = ?1 "
                          "ORDER BY chunk_no DESC LIMIT 1",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        goto done;
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "last chunk");
        goto done;
    }
    lc->chunk_no = store_sq_col_int(st, 0);
    lc->last_step = store_sq_col_int(st, 2);
    lc->count = store_sq_col_int(st, 3);
    if (sqlite3_column_type(st, 5) != SQLITE_BLOB) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    rc = traj_decode(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5), lc->count,
                     store_sq_col_int(st, 1), lc->last_step, store_sq_col_int(st, 4), lc->pts);
    if (rc == STORE_OK)
        lc->exists = 1;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Writes one chunk of n points (encoded into buf): a new row, or the rewrite of an existing
 * one (update = 1) in place. */
static int write_chunk(struct sqlite_store *ss, sqlite3 *db, const char *run_id, int64_t chunk_no,
                       int update, const struct store_traj_point *pts, size_t n, unsigned char *buf)
{
    sqlite3_stmt *st = NULL;
    int64_t stride;
    size_t len;
    int rc;

    traj_encode(pts, n, buf, &stride, &len);
    rc = store_sq_prepare(ss, db,
                          update ? "UPDATE trajectory_chunks SET first_step = ?3, last_step = ?4, "
                                   "count = ?5, stride = ?6, data = ?7 "
                                   "WHERE run_id = ?1 AND chunk_no = ?2"
                                 : "INSERT INTO trajectory_chunks "
                                   "(run_id, chunk_no, first_step, last_step, count, stride, data) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, chunk_no));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, pts[0].step));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 4, pts[n - 1].step));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, (int64_t)n));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, stride));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_blob64(st, 7, buf, (sqlite3_uint64)len, SQLITE_STATIC));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "chunk write");
    if (rc == STORE_OK && sqlite3_changes(db) != 1)
        rc = STORE_EINTERNAL;
    sqlite3_finalize(st);
    return rc;
}

int store_sq_trajectory_append(struct store *s, const char *run_id, const char *token,
                               const struct store_traj_point *pts, size_t n)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct last_chunk *lc = NULL;
    size_t done_pts = 0;
    int64_t next_no = 0;
    int rc;

    if (!run_id || !token || (n > 0 && !pts) || check_points(pts, n) != STORE_OK) {
        rc = STORE_EINVAL;
        goto done;
    }
    lc = malloc(sizeof *lc);
    if (!lc) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = check_fence(ss, db, run_id, token);
    if (rc != STORE_OK || n == 0)
        goto done;
    rc = read_last_chunk(ss, db, run_id, lc);
    if (rc != STORE_OK)
        goto done;
    if (lc->exists) {
        if (pts[0].step <= lc->last_step) {
            rc = STORE_EINVAL;
            goto done;
        }
        next_no = lc->chunk_no + 1;
        if (lc->count < STORE_TRAJ_CHUNK_POINTS) {
            size_t room = (size_t)(STORE_TRAJ_CHUNK_POINTS - lc->count);
            size_t m = n < room ? n : room;
            memcpy(lc->pts + lc->count, pts, m * sizeof *pts);
            rc = write_chunk(ss, db, run_id, lc->chunk_no, 1, lc->pts, (size_t)lc->count + m,
                             lc->data);
            done_pts = m;
        }
    }
    while (rc == STORE_OK && done_pts < n) {
        size_t m = n - done_pts;
        if (m > STORE_TRAJ_CHUNK_POINTS)
            m = STORE_TRAJ_CHUNK_POINTS;
        rc = write_chunk(ss, db, run_id, next_no++, 0, pts + done_pts, m, lc->data);
        done_pts += m;
    }
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
done:
    store_sq_release(ss, db);
    free(lc);
    return rc;
}

/* ---- reads ---- */

int store_sq_trajectory_info(struct store *s, const char *run_id, struct store_traj_info *out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, src;

    if (!run_id) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = run_exists(ss, db, run_id);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db,
                              "SELECT IFNULL(sum(count), 0), IFNULL(min(first_step), -1), "
                              "IFNULL(max(last_step), -1) FROM trajectory_chunks WHERE run_id = ?1",
                              &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, src == SQLITE_DONE ? SQLITE_ERROR : src, "trajectory info");
        goto done;
    }
    out->count = store_sq_col_int(st, 0);
    out->first_step = store_sq_col_int(st, 1);
    out->last_step = store_sq_col_int(st, 2);
    sqlite3_finalize(st);
    st = NULL;
    rc = store_sq_commit(ss, db);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* Grow *pts to hold at least need points (geometric, capped at cap). */
static int reserve(struct store_traj_point **pts, size_t *have, size_t need, size_t cap)
{
    size_t want;
    void *p;
    if (need <= *have)
        return STORE_OK;
    want = *have ? 2 * *have : STORE_TRAJ_CHUNK_POINTS;
    if (want < need)
        want = need;
    if (want > cap)
        want = cap;
    if (want > SIZE_MAX / sizeof **pts)
        return STORE_ENOMEM;
    p = realloc(*pts, want * sizeof **pts);
    if (!p)
        return STORE_ENOMEM;
    *pts = p;
    *have = want;
    return STORE_OK;
}

int store_sq_trajectory_read(struct store *s, const char *run_id, int64_t from_step,
                             int64_t to_step, size_t limit, struct store_traj_point **pts,
                             size_t *n, int64_t *next_step)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct chunk_iter *it = NULL;
    struct store_traj_point *out = NULL;
    size_t have = 0, k = 0, m, i;
    int64_t next = -1;
    int rc;

    *pts = NULL;
    if (!run_id || limit == 0 || from_step > to_step) {
        rc = STORE_EINVAL;
        goto done;
    }
    it = calloc(1, sizeof *it);
    if (!it) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = run_exists(ss, db, run_id);
    if (rc == STORE_OK)
        rc = iter_open(ss, db, run_id, from_step, to_step, it);
    while (rc == STORE_OK && next < 0) {
        rc = iter_next(ss, db, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++) {
            if (it->buf[i].step < from_step || it->buf[i].step > to_step)
                continue;
            if (k == limit) {
                next = it->buf[i].step;
                break;
            }
            rc = reserve(&out, &have, k + 1, limit);
            if (rc != STORE_OK)
                break;
            out[k++] = it->buf[i];
        }
    }
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc != STORE_OK)
        goto done;
    *pts = k ? out : NULL;
    if (k)
        out = NULL;
    *n = k;
    *next_step = next;
done:
    if (it)
        sqlite3_finalize(it->st);
    store_sq_release(ss, db);
    free(it);
    free(out);
    return rc;
}

/* Pass 1 of the downsampled read: count and step bounds of the points inside [from, to]. */
static int range_scan(struct sqlite_store *ss, sqlite3 *db, const char *run_id, int64_t from,
                      int64_t to, struct chunk_iter *it, size_t *count, int64_t *lo, int64_t *hi)
{
    size_t m, i;
    int rc;

    *count = 0;
    *lo = -1;
    *hi = -1;
    rc = iter_open(ss, db, run_id, from, to, it);
    while (rc == STORE_OK) {
        rc = iter_next(ss, db, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++) {
            if (it->buf[i].step < from || it->buf[i].step > to)
                continue;
            if (*count == 0)
                *lo = it->buf[i].step;
            *hi = it->buf[i].step;
            (*count)++;
        }
    }
    sqlite3_finalize(it->st);
    it->st = NULL;
    return rc;
}

int store_sq_trajectory_downsample(struct store *s, const char *run_id, int64_t from_step,
                                   int64_t to_step, size_t max_points,
                                   struct store_traj_point **pts, size_t *n)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct chunk_iter *it = NULL;
    struct downsampler ds;
    size_t count = 0, m, i;
    int64_t lo, hi;
    int rc;

    *pts = NULL;
    memset(&ds, 0, sizeof ds);
    if (!run_id || max_points < 4 || from_step > to_step) {
        rc = STORE_EINVAL;
        goto done;
    }
    it = calloc(1, sizeof *it);
    if (!it) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = run_exists(ss, db, run_id);
    if (rc == STORE_OK)
        rc = range_scan(ss, db, run_id, from_step, to_step, it, &count, &lo, &hi);
    if (rc != STORE_OK)
        goto done;
    if (count == 0) {
        *n = 0;
        goto done;
    }
    if (count <= max_points) {
        /* It fits: the whole range, every point. */
        size_t got = 0;
        int64_t next = -1;
        rc = store_sq_commit(ss, db);
        if (rc == STORE_OK)
            rc = store_sq_trajectory_read(s, run_id, lo, hi, count, pts, &got, &next);
        if (rc == STORE_OK)
            *n = got;
        goto done;
    }
    rc = downsample_init(&ds, lo, hi, max_points);
    if (rc == STORE_OK)
        rc = iter_open(ss, db, run_id, lo, hi, it);
    while (rc == STORE_OK) {
        rc = iter_next(ss, db, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++)
            downsample_add(&ds, &it->buf[i]);
    }
    if (rc == STORE_OK)
        rc = downsample_finish(&ds, pts, n);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc != STORE_OK) {
        free(*pts);
        *pts = NULL;
    }
done:
    if (it)
        sqlite3_finalize(it->st);
    downsample_free(&ds);
    store_sq_release(ss, db);
    free(it);
    return rc;
}
