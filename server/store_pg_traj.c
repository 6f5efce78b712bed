/* The PostgreSQL backend's trajectories (store.h): appending points in chunks, reading a step
 * range page by page, and the spike-preserving downsampled read (downsample.c). Same rows and
 * answers as store_sqlite_traj.c.
 *
 * DESIGN
 * A trajectory is a sequence of chunk rows (run_id, chunk_no) of up to STORE_TRAJ_CHUNK_POINTS
 * points with the chunk's first and last step and its stride as columns; the data is 24 bytes
 * per point when the steps are evenly spaced and 32 otherwise (traj_codec.h has the formats).
 * Never a row per point. An append tops up the run's last chunk (read, decode, extend,
 * re-encode, upsert: at most 16 KiB) and then adds full chunks. Steps increase strictly, so
 * chunk_no order is step order and a step range is the chunks with last_step ≥ from AND
 * first_step ≤ to, read here in pages of ITER_PAGE chunks (bounded memory per query).
 * Fencing: the append first reads the run FOR SHARE and checks it is `running` under the
 * caller's token. The share lock is held to the commit, so a requeue, release or finish of the
 * run (all UPDATE it) waits for the append and the append cannot land after them; an append
 * that comes second sees the new state and gets STORE_ECONFLICT. Reads run in one read-only
 * snapshot. */
#include "store_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "downsample.h"
#include "traj_codec.h"

#define MAX_STEP ((int64_t)1 << 53) /* steps travel as float64 */
#define ITER_PAGE 64                /* chunks per query while iterating */

/* ---- chunk iteration ---- */

struct chunk_iter {
    const char *run_id;
    int64_t from, to;
    int64_t after_no; /* chunk_no of the last chunk handed out (−1: none yet) */
    PGresult *page;
    int row;
    int done;
    unsigned char raw[TRAJ_EXPLICIT_POINT_BYTES * STORE_TRAJ_CHUNK_POINTS];
    struct store_traj_point buf[STORE_TRAJ_CHUNK_POINTS];
};

static void iter_open(const char *run_id, int64_t from, int64_t to, struct chunk_iter *it)
{
    PQclear(it->page);
    it->page = NULL;
    it->run_id = run_id;
    it->from = from;
    it->to = to;
    it->after_no = -1;
    it->row = 0;
    it->done = 0;
}

static void iter_close(struct chunk_iter *it)
{
    PQclear(it->page);
    it->page = NULL;
}

/* The next chunk's points in it->buf; *n = 0 at the end. */
static int iter_next(struct pg_store *ps, PGconn *conn, struct chunk_iter *it, size_t *n)
{
    int64_t count, stride;
    size_t len;
    int rc;

    *n = 0;
    if (it->page && it->row >= PQntuples(it->page)) {
        it->done = PQntuples(it->page) < ITER_PAGE;
        PQclear(it->page);
        it->page = NULL;
    }
    if (it->done)
        return STORE_OK;
    if (!it->page) {
        struct pg_params p;
        pgp_init(&p);
        pgp_text(&p, it->run_id);
        pgp_int(&p, it->from);
        pgp_int(&p, it->to);
        pgp_int(&p, it->after_no);
        pgp_int(&p, ITER_PAGE);
        rc = store_pg_query(ps, conn,
                            "SELECT chunk_no, count, first_step, last_step, stride, data "
                            "FROM trajectory_chunks "
                            "WHERE run_id = $1::text AND last_step >= $2::bigint "
                            "AND first_step <= $3::bigint AND chunk_no > $4::bigint "
                            "ORDER BY chunk_no LIMIT $5::bigint",
                            &p, &it->page);
        if (rc != STORE_OK)
            return rc;
        it->row = 0;
        if (PQntuples(it->page) == 0) {
            it->done = 1;
            return STORE_OK;
        }
    }
    count = store_pg_col_int(it->page, it->row, 1);
    stride = store_pg_col_int(it->page, it->row, 4);
    if (count < 1 || count > STORE_TRAJ_CHUNK_POINTS)
        return STORE_ECORRUPT;
    len = traj_chunk_bytes(stride, (size_t)count);
    rc = store_pg_col_bytes(it->page, it->row, 5, it->raw, len);
    if (rc == STORE_OK)
        rc = traj_decode(it->raw, len, count, store_pg_col_int(it->page, it->row, 2),
                         store_pg_col_int(it->page, it->row, 3), stride, it->buf);
    if (rc != STORE_OK)
        return rc;
    it->after_no = store_pg_col_int(it->page, it->row, 0);
    it->row++;
    *n = (size_t)count;
    return STORE_OK;
}

static int run_exists(struct pg_store *ps, PGconn *conn, const char *run_id)
{
    int exists = 0;
    int rc = store_pg_exists(ps, conn, "SELECT 1 FROM runs WHERE id = $1::text", run_id, &exists);
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

/* STORE_OK if the run is running under token; the run stays share-locked to the commit. */
static int check_fence(struct pg_store *ps, PGconn *conn, const char *run_id, const char *token)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, run_id);
    rc = store_pg_query(
        ps, conn, "SELECT status, claim_token FROM runs WHERE id = $1::text FOR SHARE", &p, &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK && (strcmp(PQgetvalue(res, 0, 0), "running") != 0 ||
                           PQgetisnull(res, 0, 1) || strcmp(PQgetvalue(res, 0, 1), token) != 0))
        rc = STORE_ECONFLICT;
    PQclear(res);
    return rc;
}

struct last_chunk {
    int exists;
    int64_t chunk_no, last_step, count;
    struct store_traj_point pts[STORE_TRAJ_CHUNK_POINTS];
    unsigned char data[TRAJ_EXPLICIT_POINT_BYTES * STORE_TRAJ_CHUNK_POINTS]; /* raw / encoded */
};

static int read_last_chunk(struct pg_store *ps, PGconn *conn, const char *run_id,
                           struct last_chunk *lc)
{
    struct pg_params p;
    PGresult *res = NULL;
    int64_t stride;
    size_t len;
    int rc;

    lc->exists = 0;
    pgp_init(&p);
    pgp_text(&p, run_id);
    rc = store_pg_query(ps, conn,
                        "SELECT chunk_no, first_step, last_step, count, stride, data "
                        "FROM trajectory_chunks WHERE run_id = $1::text "
                        "ORDER BY chunk_no DESC LIMIT 1",
                        &p, &res);
    if (rc != STORE_OK || PQntuples(res) == 0)
        goto done;
    lc->chunk_no = store_pg_col_int(res, 0, 0);
    lc->last_step = store_pg_col_int(res, 0, 2);
    lc->count = store_pg_col_int(res, 0, 3);
    stride = store_pg_col_int(res, 0, 4);
    if (lc->count < 1 || lc->count > STORE_TRAJ_CHUNK_POINTS) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    len = traj_chunk_bytes(stride, (size_t)lc->count);
    rc = store_pg_col_bytes(res, 0, 5, lc->data, len);
    if (rc == STORE_OK)
        rc = traj_decode(lc->data, len, lc->count, store_pg_col_int(res, 0, 1), lc->last_step,
                         stride, lc->pts);
    if (rc == STORE_OK)
        lc->exists = 1;
done:
    PQclear(res);
    return rc;
}

/* Upserts one chunk of n points, encoded into buf. */
static int write_chunk(struct pg_store *ps, PGconn *conn, const char *run_id, int64_t chunk_no,
                       const struct store_traj_point *pts, size_t n, unsigned char *buf)
{
    struct pg_params p;
    int64_t stride;
    size_t len;

    traj_encode(pts, n, buf, &stride, &len);
    pgp_init(&p);
    pgp_text(&p, run_id);
    pgp_int(&p, chunk_no);
    pgp_int(&p, pts[0].step);
    pgp_int(&p, pts[n - 1].step);
    pgp_int(&p, (int64_t)n);
    pgp_int(&p, stride);
    pgp_bytes(&p, buf, len);
    return store_pg_query(ps, conn,
                          "INSERT INTO trajectory_chunks "
                          "(run_id, chunk_no, first_step, last_step, count, stride, data) "
                          "VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint, "
                          "$6::bigint, $7::bytea) ON CONFLICT (run_id, chunk_no) DO UPDATE SET "
                          "first_step = excluded.first_step, last_step = excluded.last_step, "
                          "count = excluded.count, stride = excluded.stride, data = excluded.data",
                          &p, NULL);
}

struct append_ctx {
    const char *run_id;
    const char *token;
    const struct store_traj_point *pts;
    size_t n;
    struct last_chunk *lc;
};

static int append_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct append_ctx *c = vctx;
    struct last_chunk *lc = c->lc;
    const struct store_traj_point *pts = c->pts;
    size_t n = c->n, done_pts = 0;
    int64_t next_no = 0;
    int rc;

    rc = check_fence(ps, conn, c->run_id, c->token);
    if (rc != STORE_OK || n == 0)
        return rc;
    rc = read_last_chunk(ps, conn, c->run_id, lc);
    if (rc != STORE_OK)
        return rc;
    if (lc->exists) {
        if (pts[0].step <= lc->last_step)
            return STORE_EINVAL;
        next_no = lc->chunk_no + 1;
        if (lc->count < STORE_TRAJ_CHUNK_POINTS) {
            size_t room = (size_t)(STORE_TRAJ_CHUNK_POINTS - lc->count);
            size_t m = n < room ? n : room;
            memcpy(lc->pts + lc->count, pts, m * sizeof *pts);
            rc = write_chunk(ps, conn, c->run_id, lc->chunk_no, lc->pts, (size_t)lc->count + m,
                             lc->data);
            done_pts = m;
        }
    }
    while (rc == STORE_OK && done_pts < n) {
        size_t m = n - done_pts;
        if (m > STORE_TRAJ_CHUNK_POINTS)
            m = STORE_TRAJ_CHUNK_POINTS;
        rc = write_chunk(ps, conn, c->run_id, next_no++, pts + done_pts, m, lc->data);
        done_pts += m;
    }
    return rc;
}

int store_pg_trajectory_append(struct store *s, const char *run_id, const char *token,
                               const struct store_traj_point *pts, size_t n)
{
    struct append_ctx c;
    int rc;

    if (!run_id || !token || (n > 0 && !pts) || check_points(pts, n) != STORE_OK)
        return STORE_EINVAL;
    c.run_id = run_id;
    c.token = token;
    c.pts = pts;
    c.n = n;
    c.lc = malloc(sizeof *c.lc);
    if (!c.lc)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, append_body, &c);
    free(c.lc);
    return rc;
}

/* ---- reads ---- */

struct info_ctx {
    const char *run_id;
    struct store_traj_info info;
};

static int info_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct info_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc = run_exists(ps, conn, c->run_id);

    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->run_id);
    rc = store_pg_query(ps, conn,
                        "SELECT coalesce(sum(count), 0), coalesce(min(first_step), -1), "
                        "coalesce(max(last_step), -1) FROM trajectory_chunks "
                        "WHERE run_id = $1::text",
                        &p, &res);
    if (rc == STORE_OK && PQntuples(res) != 1)
        rc = STORE_EINTERNAL;
    if (rc == STORE_OK) {
        c->info.count = store_pg_col_int(res, 0, 0);
        c->info.first_step = store_pg_col_int(res, 0, 1);
        c->info.last_step = store_pg_col_int(res, 0, 2);
    }
    PQclear(res);
    return rc;
}

int store_pg_trajectory_info(struct store *s, const char *run_id, struct store_traj_info *out)
{
    struct info_ctx c;
    int rc;

    if (!run_id)
        return STORE_EINVAL;
    memset(&c, 0, sizeof c);
    c.run_id = run_id;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, info_body, &c);
    if (rc == STORE_OK)
        *out = c.info;
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

struct read_ctx {
    const char *run_id;
    int64_t from, to;
    size_t limit;
    struct chunk_iter *it;
    struct store_traj_point *out;
    size_t have, k;
    int64_t next;
};

static int read_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct read_ctx *c = vctx;
    struct chunk_iter *it = c->it;
    size_t m, i;
    int rc;

    c->k = 0;
    c->next = -1;
    rc = run_exists(ps, conn, c->run_id);
    if (rc != STORE_OK)
        return rc;
    iter_open(c->run_id, c->from, c->to, it);
    while (rc == STORE_OK && c->next < 0) {
        rc = iter_next(ps, conn, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++) {
            if (it->buf[i].step < c->from || it->buf[i].step > c->to)
                continue;
            if (c->k == c->limit) {
                c->next = it->buf[i].step;
                break;
            }
            rc = reserve(&c->out, &c->have, c->k + 1, c->limit);
            if (rc != STORE_OK)
                break;
            c->out[c->k++] = it->buf[i];
        }
    }
    iter_close(it);
    return rc;
}

int store_pg_trajectory_read(struct store *s, const char *run_id, int64_t from_step,
                             int64_t to_step, size_t limit, struct store_traj_point **pts,
                             size_t *n, int64_t *next_step)
{
    struct read_ctx c;
    int rc;

    *pts = NULL;
    if (!run_id || limit == 0 || from_step > to_step)
        return STORE_EINVAL;
    memset(&c, 0, sizeof c);
    c.run_id = run_id;
    c.from = from_step;
    c.to = to_step;
    c.limit = limit;
    c.it = calloc(1, sizeof *c.it);
    if (!c.it)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, read_body, &c);
    if (rc == STORE_OK) {
        *pts = c.k ? c.out : NULL;
        if (c.k)
            c.out = NULL;
        *n = c.k;
        *next_step = c.next;
    }
    iter_close(c.it);
    free(c.it);
    free(c.out);
    return rc;
}

struct downsample_ctx {
    const char *run_id;
    int64_t from, to;
    size_t max_points;
    struct chunk_iter *it;
    size_t count;
    int64_t lo, hi;
    struct store_traj_point *pts;
    size_t n;
};

/* Pass 1: count and step bounds of the points inside [from, to]; pass 2 (only when they do not
 * fit): the downsampler over [lo, hi]. Both in one snapshot. */
static int downsample_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct downsample_ctx *c = vctx;
    struct chunk_iter *it = c->it;
    struct downsampler ds;
    size_t m, i;
    int rc;

    memset(&ds, 0, sizeof ds);
    free(c->pts);
    c->pts = NULL;
    c->n = 0;
    c->count = 0;
    c->lo = c->hi = -1;
    rc = run_exists(ps, conn, c->run_id);
    if (rc != STORE_OK)
        return rc;
    iter_open(c->run_id, c->from, c->to, it);
    while (rc == STORE_OK) {
        rc = iter_next(ps, conn, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++) {
            if (it->buf[i].step < c->from || it->buf[i].step > c->to)
                continue;
            if (c->count == 0)
                c->lo = it->buf[i].step;
            c->hi = it->buf[i].step;
            c->count++;
        }
    }
    iter_close(it);
    if (rc != STORE_OK || c->count <= c->max_points)
        return rc; /* nothing, or it fits: the caller reads the whole range */
    rc = downsample_init(&ds, c->lo, c->hi, c->max_points);
    if (rc == STORE_OK)
        iter_open(c->run_id, c->lo, c->hi, it);
    while (rc == STORE_OK) {
        rc = iter_next(ps, conn, it, &m);
        if (rc != STORE_OK || m == 0)
            break;
        for (i = 0; i < m; i++)
            downsample_add(&ds, &it->buf[i]);
    }
    iter_close(it);
    if (rc == STORE_OK)
        rc = downsample_finish(&ds, &c->pts, &c->n);
    downsample_free(&ds);
    return rc;
}

int store_pg_trajectory_downsample(struct store *s, const char *run_id, int64_t from_step,
                                   int64_t to_step, size_t max_points,
                                   struct store_traj_point **pts, size_t *n)
{
    struct downsample_ctx c;
    int rc;

    *pts = NULL;
    if (!run_id || max_points < 4 || from_step > to_step)
        return STORE_EINVAL;
    memset(&c, 0, sizeof c);
    c.run_id = run_id;
    c.from = from_step;
    c.to = to_step;
    c.max_points = max_points;
    c.it = calloc(1, sizeof *c.it);
    if (!c.it)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, downsample_body, &c);
    if (rc != STORE_OK)
        goto done;
    if (c.count == 0) {
        *n = 0;
    } else if (c.count <= max_points) {
        /* It fits: the whole range, every point. */
        size_t got = 0;
        int64_t next = -1;
        rc = store_pg_trajectory_read(s, run_id, c.lo, c.hi, c.count, pts, &got, &next);
        if (rc == STORE_OK)
            *n = got;
    } else {
        *pts = c.pts;
        *n = c.n;
        c.pts = NULL;
    }
done:
    iter_close(c.it);
    free(c.it);
    free(c.pts);
    return rc;
}
