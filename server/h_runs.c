/* The /v1/runs handlers: one run, its trajectory and its end point.
 *
 * Trajectory. GET /v1/runs/{id}/trajectory answers one of two shapes of the same series:
 *  - display (default): at most max_points points (default 1000, 4..100000) of [from, to]. A
 *    range that fits is returned whole; a longer one is downsampled by the store per step bucket
 *    keeping first, last, min-risk and max-risk points (downsample.h), so a one-step spike is
 *    never averaged away. "downsampled" says which happened. To decide without counting the
 *    range first, the handler reads max_points + 1 points: if they are all there is, that is the
 *    answer; otherwise it asks for the downsampled series.
 *  - full (full=true, or format=csv): every point of [from, to] in pages of `limit` (default
 *    10000, max 100000), with a step cursor ("s" + the next step) in next_cursor and Link.
 * JSON: {"run_id", "count" (points in this answer), "total_count", "first_step", "last_step"
 * (the stored series, -1 when empty), "from", "to", "downsampled", "points": [[step, risk,
 * grad_norm, param_norm], ...] (non-finite values as null), "next_cursor"}.
 * CSV: header step,risk,grad_norm,param_norm; non-finite values as NaN / inf / -inf.
 *
 * Params. GET /v1/runs/{id}/params answers the end point θ in the documented flat layout
 * (PyTorch state_dict order): JSON by default, or the raw little-endian float64 bytes when the
 * Accept header asks for application/octet-stream (with X-Param-Count). 404 while the run has no
 * end point. */
#include "handlers.h"
#include "spurious.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "ids.h"
#include "resp_cache.h"

enum {
    TRAJ_DEFAULT_POINTS = 1000,
    TRAJ_MAX_POINTS = 100000,
    TRAJ_DEFAULT_PAGE = 10000,
    TRAJ_MAX_PAGE = 100000,
    TRAJ_CSV_ROW_BYTES = 4 * 32 /* four values of at most 31 bytes with their separators */
};

#define TRAJ_MAX_STEP ((int64_t)1 << 53) /* steps are stored exactly as float64 */

static int run_id_or_reply(struct request *req, struct reply *rep, const char **id)
{
    *id = request_param(req, "id");
    if (*id != NULL && ids_valid(*id, IDS_PREFIX_RUN))
        return BASIN_OK;
    int rc = reply_problem(rep, 404, NULL, "no run has this id", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int store_error(struct reply *rep, int store_rc, const char *id)
{
    char what[64];
    snprintf(what, sizeof what, "run %s", id);
    return reply_store_error(rep, store_rc, what);
}

/* Render the run view (with its read-time spurious block) into rep. */
static int run_render(struct app *app, struct reply *rep, const char *id)
{
    struct store_run *r = NULL;
    struct spurious_context ctx;
    json_t *view = NULL;
    int rc = BASIN_OK;

    int src = store_run_get(app->store, id, &r);
    if (src == STORE_OK)
        src = spurious_context_load(app->store, r->experiment_id, &ctx);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    view = view_run(r);
    if (view == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    /* the spurious flag is computed at read time, so it is always the current truth */
    rc = spurious_attach(view, r, &ctx);
    if (rc == BASIN_OK) {
        rc = reply_json(rep, 200, view);
        view = NULL;
    }
done:
    json_decref(view);
    store_run_free(r);
    return rc;
}

/* GET /v1/runs/{id} through the response cache (resp_cache.c has the validity argument): the
 * change counter is read BEFORE anything the answer is made of, a hit needs the counter to be
 * unchanged, and a miss renders and stores the body under the counter read first. The ETag is
 * the body hash either way (the router's own rule), so it only changes when the body does. When
 * If-None-Match is exactly the cached ETag the body is not even copied: the router turns the
 * empty 200 into a 304 (it compares the same tags). A store without a counter, or a failed
 * counter read, renders without the cache. */
int h_runs_get(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    const char *id = NULL;
    char etag[RESP_CACHE_ETAG_SIZE];
    char *body = NULL;
    size_t len = 0;
    uint64_t version = 0;
    int rc = BASIN_OK;

    if (run_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int cached = app->run_cache != NULL && store_data_version(app->store, &version) == STORE_OK;
    const char *inm = request_header(req, "If-None-Match");
    if (cached && inm != NULL && resp_cache_get(app->run_cache, id, version, NULL, &len, etag)) {
        if (strcmp(inm, etag) == 0) {
            rep->status = 200; /* bodiless: becomes the 304 in router.c's apply_conditional */
            rc = reply_header(rep, "ETag", etag);
            goto done;
        }
    }
    if (cached && resp_cache_get(app->run_cache, id, version, &body, &len, etag)) {
        rc = reply_take_body(rep, 200, "application/json", body, len);
        if (rc == BASIN_OK)
            rc = reply_header(rep, "ETag", etag);
        goto done;
    }
    rc = run_render(app, rep, id);
    if (rc != BASIN_OK || rep->status != 200 || !cached)
        goto done;
    snprintf(etag, sizeof etag, "\"%016llx\"",
             (unsigned long long)reply_fnv1a64(rep->body, rep->body_len));
    /* without the header (out of memory) the router computes the same tag; just do not cache */
    if (reply_header(rep, "ETag", etag) == BASIN_OK)
        resp_cache_put(app->run_cache, id, version, rep->body, rep->body_len, etag);
done:
    return rc;
}

/* ---- trajectory ---- */

struct traj_query {
    size_t max_points;
    int64_t from, to;
    int csv;
    int full;
    size_t limit;
    int64_t start; /* from, or where the cursor says the page starts */
};

/* A step query parameter: digits only, ≤ 2^53. */
static int step_or_reply(struct request *req, struct reply *rep, const char *name, int64_t def,
                         int64_t *out)
{
    const char *v = request_query(req, name);
    *out = def;
    if (v == NULL)
        return BASIN_OK;
    size_t len = strlen(v);
    int ok = len > 0 && len <= 16 && strspn(v, "0123456789") == len;
    if (ok) {
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        ok = errno == 0 && x <= TRAJ_MAX_STEP;
        *out = x;
    }
    if (ok)
        return BASIN_OK;
    int rc = reply_problemf(rep, 400, "Invalid query parameter",
                            "query parameter '%s' must be a step: an integer in [0, 2^53]", name);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

/* Step cursors of the full series: "s" + decimal step, inside [from, to]. */
static int traj_cursor_or_reply(struct request *req, struct reply *rep, struct traj_query *q)
{
    const char *c = request_query(req, "cursor");
    q->start = q->from;
    if (c == NULL || c[0] == '\0')
        return BASIN_OK;
    size_t len = strlen(c);
    int ok = c[0] == 's' && len >= 2 && len <= 17 && strspn(c + 1, "0123456789") == len - 1;
    if (ok) {
        long long x = strtoll(c + 1, NULL, 10);
        ok = x >= q->from && x <= q->to;
        q->start = x;
    }
    if (ok)
        return BASIN_OK;
    int rc = reply_problem(rep, 400, "Invalid query parameter",
                           "query parameter 'cursor' is not a cursor this server issued for this "
                           "range",
                           NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int traj_query_or_reply(struct request *req, struct reply *rep, struct traj_query *q)
{
    static const char *const formats[] = {"json", "csv"};
    static const char *const flags[] = {"false", "true"};
    size_t format = 0, full = 0;
    int rc = query_size_or_reply(req, rep, "max_points", TRAJ_DEFAULT_POINTS, 4, TRAJ_MAX_POINTS,
                                 &q->max_points);
    if (rc == BASIN_OK)
        rc = step_or_reply(req, rep, "from", 0, &q->from);
    if (rc == BASIN_OK)
        rc = step_or_reply(req, rep, "to", TRAJ_MAX_STEP, &q->to);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "format", formats, 2, 0, &format);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "full", flags, 2, 0, &full);
    if (rc == BASIN_OK)
        rc = query_size_or_reply(req, rep, "limit", TRAJ_DEFAULT_PAGE, 1, TRAJ_MAX_PAGE, &q->limit);
    if (rc == BASIN_OK && q->from > q->to) {
        rc = reply_problemf(rep, 400, "Invalid query parameter",
                            "'from' (%lld) is after 'to' (%lld)", (long long)q->from,
                            (long long)q->to);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
    }
    if (rc == BASIN_OK)
        rc = traj_cursor_or_reply(req, rep, q);
    q->csv = format == 1;
    q->full = full == 1 || q->csv;
    return rc;
}

static json_t *points_json(const struct store_traj_point *pts, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *p = json_pack("[I, o, o, o]", (json_int_t)pts[i].step, view_real(pts[i].risk),
                              view_real(pts[i].grad_norm), view_real(pts[i].param_norm));
        if (json_array_append_new(arr, p) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static int traj_answer_json(struct reply *rep, const char *run_id, const struct traj_query *q,
                            const struct store_traj_info *info, const struct store_traj_point *pts,
                            size_t n, int downsampled, const char *next)
{
    json_t *body = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o, s:o}", "run_id", run_id, "count",
        (json_int_t)n, "total_count", (json_int_t)info->count, "first_step",
        (json_int_t)info->first_step, "last_step", (json_int_t)info->last_step, "from",
        (json_int_t)q->from, "to", (json_int_t)q->to, "downsampled", downsampled, "points",
        points_json(pts, n), "next_cursor", next[0] ? json_string(next) : json_null());
    if (body == NULL)
        return BASIN_ENOMEM;
    return reply_json(rep, 200, body);
}

static int traj_answer_csv(struct reply *rep, const struct store_traj_point *pts, size_t n)
{
    static const char header[] = "step,risk,grad_norm,param_norm\n";
    size_t cap = 0;
    if (basin_mul_size(n, TRAJ_CSV_ROW_BYTES, &cap) != BASIN_OK ||
        basin_add_size(cap, sizeof header, &cap) != BASIN_OK)
        return BASIN_ERANGE;
    char *buf = basin_malloc(cap);
    if (buf == NULL)
        return BASIN_ENOMEM;
    memcpy(buf, header, sizeof header - 1);
    char *w = buf + sizeof header - 1;
    for (size_t i = 0; i < n; i++) {
        w += sprintf(w, "%lld,", (long long)pts[i].step);
        w += format_double(w, 32, pts[i].risk);
        *w++ = ',';
        w += format_double(w, 32, pts[i].grad_norm);
        *w++ = ',';
        w += format_double(w, 32, pts[i].param_norm);
        *w++ = '\n';
    }
    return reply_take_body(rep, 200, "text/csv; charset=utf-8", buf, (size_t)(w - buf));
}

int h_runs_trajectory(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_traj_point *pts = NULL;
    struct store_traj_info info;
    struct traj_query q;
    const char *id = NULL;
    char next[32] = "";
    size_t n = 0;
    int64_t next_step = -1;
    int downsampled = 0;
    int rc = BASIN_OK;
    int src;

    memset(&q, 0, sizeof q);
    if (run_id_or_reply(req, rep, &id) != BASIN_OK || traj_query_or_reply(req, rep, &q) != 0)
        goto done;
    src = store_trajectory_info(app->store, id, &info);
    if (src == STORE_OK && q.full) {
        src = store_trajectory_read(app->store, id, q.start, q.to, q.limit, &pts, &n, &next_step);
        if (src == STORE_OK && next_step >= 0)
            snprintf(next, sizeof next, "s%lld", (long long)next_step);
    } else if (src == STORE_OK) {
        src = store_trajectory_read(app->store, id, q.from, q.to, q.max_points + 1, &pts, &n,
                                    &next_step);
        if (src == STORE_OK && n > q.max_points) {
            free(pts);
            pts = NULL;
            downsampled = 1;
            src = store_trajectory_downsample(app->store, id, q.from, q.to, q.max_points, &pts, &n);
        }
    }
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    if (next[0] != '\0') {
        rc = reply_link_next_page(req, rep, next);
        if (rc != BASIN_OK)
            goto done;
    }
    if (q.csv)
        rc = traj_answer_csv(rep, pts, n);
    else
        rc = traj_answer_json(rep, id, &q, &info, pts, n, downsampled, next);
done:
    free(pts);
    return rc;
}

/* ---- params ---- */

/* 1 when the Accept header lists application/octet-stream (parameters such as q are ignored:
 * JSON is the default, so any explicit request for the raw bytes wins). */
static int wants_octets(const struct request *req)
{
    const char *accept = request_header(req, "Accept");
    static const char want[] = "application/octet-stream";
    for (const char *p = accept; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        if (strncasecmp(p, want, sizeof want - 1) == 0) {
            char after = p[sizeof want - 1];
            if (after == '\0' || after == ',' || after == ';' || after == ' ' || after == '\t')
                return 1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

static void put_f64le(unsigned char *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(bits >> (8 * i));
}

static int params_octets(struct reply *rep, const double *params, size_t n)
{
    char count[32];
    size_t len = 0;
    if (basin_mul_size(n, 8, &len) != BASIN_OK)
        return BASIN_ERANGE;
    unsigned char *buf = basin_malloc(len + 1);
    if (buf == NULL)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < n; i++)
        put_f64le(buf + 8 * i, params[i]);
    snprintf(count, sizeof count, "%zu", n);
    int rc = reply_header(rep, "X-Param-Count", count);
    if (rc != BASIN_OK) {
        basin_free(buf);
        return rc;
    }
    return reply_take_body(rep, 200, "application/octet-stream", (char *)buf, len);
}

static int params_json(struct reply *rep, const char *run_id, const double *params, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, view_real(params[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *body = json_pack("{s:s, s:I, s:s, s:o}", "run_id", run_id, "param_count", (json_int_t)n,
                             "layout", "pytorch_state_dict", "params", arr);
    if (body == NULL)
        return BASIN_ENOMEM;
    return reply_json(rep, 200, body);
}

int h_runs_params(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_run *r = NULL;
    double *params = NULL;
    size_t n = 0;
    const char *id = NULL;
    int rc = BASIN_OK;

    if (run_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int src = store_run_get(app->store, id, &r);
    if (src == STORE_OK)
        src = store_run_params_get(app->store, id, &params, &n);
    if (src == STORE_ENOTFOUND && r != NULL) {
        rc = reply_problemf(rep, 404, NULL, "run %s has no end point yet (status %s)", id,
                            store_run_status_name(r->status));
        goto done;
    }
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    rc = wants_octets(req) ? params_octets(rep, params, n) : params_json(rep, id, params, n);
done:
    free(params);
    store_run_free(r);
    return rc;
}
