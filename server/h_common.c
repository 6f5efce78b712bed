/* What every handler shares (handlers.h): the problem answers for store and spec failures, the
 * paged-list envelope with its `Link: rel="next"` header, the limit/cursor validator, and the
 * views that turn store records into the API's JSON. One view per resource, so a dataset looks
 * the same in POST's answer, in GET and in a list.
 *
 * View conventions: times are RFC 3339 UTC strings with milliseconds ("2024-05-01T12:00:00.123Z"),
 * null when unset; reals that are unknown (NaN) or not representable in JSON are null; a
 * record's canonical spec is merged into its view (bulky sample data excepted: x, y and csv
 * text are served by /points), so a client sees the defaults that were filled in. */
#include "handlers.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/alloc.h"
#include "basin/status.h"

enum { PAGE_DEFAULT_LIMIT = 50, PAGE_MAX_LIMIT = 1000 };

/* Query parameters a paged answer may have been filtered or shaped by; the Link to the next
 * page repeats those present (the transport offers lookup by name only, no iteration). Add the
 * name of any new list filter here. */
static const char *const page_query_names[] = {
    "limit",      "status", "verdict", "verdict_label", "order",    "spurious", "format",
    "max_points", "from",   "to",      "full",          "risk_tol", "func_tol", NULL};

int reply_store_error(struct reply *rep, int store_rc, const char *what)
{
    int status = store_http_status(store_rc);
    const char *thing = what != NULL ? what : "resource";
    int rc = BASIN_OK;
    switch (status) {
    case 404:
        rc = reply_problemf(rep, 404, NULL, "%s does not exist", thing);
        break;
    case 409:
        rc = reply_problemf(rep, 409, NULL, "%s: %s", thing, store_strerror(store_rc));
        break;
    case 400:
        rc = reply_problemf(rep, 400, NULL, "%s: invalid cursor or argument", thing);
        break;
    case 503:
        rc = reply_problemf(rep, 503, NULL, "%s: %s; retry later", thing, store_strerror(store_rc));
        if (rc == BASIN_OK)
            rc = reply_retry_after(rep, store_rc == STORE_EFULL ? 30 : 1);
        break;
    default:
        rep->log_cause = store_strerror(store_rc);
        rc = reply_problem(rep, 500, NULL, "the data store failed", NULL, 0);
        break;
    }
    return rc;
}

int reply_spec_errors(struct reply *rep, int status, const struct spec_errors *errs)
{
    int rc = BASIN_OK;
    char dropped[96];
    char detail[96];
    size_t n = errs->count + (errs->dropped > 0 ? 1 : 0);
    struct problem_error *pe = basin_alloc_array(n > 0 ? n : 1, sizeof *pe);
    if (pe == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < errs->count; i++) {
        pe[i].pointer = errs->items[i].pointer;
        pe[i].message = errs->items[i].message;
    }
    if (errs->dropped > 0) {
        snprintf(dropped, sizeof dropped, "%zu more errors not shown", errs->dropped);
        pe[errs->count].pointer = "";
        pe[errs->count].message = dropped;
    }
    snprintf(detail, sizeof detail, "the request has %zu invalid field%s",
             errs->count + errs->dropped, errs->count + errs->dropped == 1 ? "" : "s");
    rc = reply_problem(rep, status, NULL, detail, pe, n);
done:
    basin_free(pe);
    return rc;
}

/* A growable NUL-terminated string for URLs. */
struct text {
    char *buf;
    size_t len, cap;
};

static int text_add(struct text *t, const char *s)
{
    size_t n = strlen(s);
    size_t need = 0;
    if (basin_add_size(t->len, n, &need) != BASIN_OK || basin_add_size(need, 1, &need))
        return BASIN_ERANGE;
    if (need > t->cap) {
        size_t cap = t->cap ? t->cap : 128;
        while (cap < need) {
            if (basin_mul_size(cap, 2, &cap) != BASIN_OK)
                return BASIN_ERANGE;
        }
        char *grown = basin_realloc(t->buf, cap);
        if (grown == NULL)
            return BASIN_ENOMEM;
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
    return BASIN_OK;
}

/* Append "name=value&" with the value percent-encoded. */
static int text_add_param(struct text *t, const char *name, const char *value)
{
    char *enc = NULL;
    int rc = url_encode(value, &enc);
    if (rc == BASIN_OK)
        rc = text_add(t, name);
    if (rc == BASIN_OK)
        rc = text_add(t, "=");
    if (rc == BASIN_OK)
        rc = text_add(t, enc);
    if (rc == BASIN_OK)
        rc = text_add(t, "&");
    basin_free(enc);
    return rc;
}

int reply_link_next_page(const struct request *req, struct reply *rep, const char *next_cursor)
{
    int rc = BASIN_OK;
    struct text t = {0};
    if (next_cursor == NULL || next_cursor[0] == '\0')
        goto done;
    rc = text_add(&t, req->path);
    if (rc == BASIN_OK)
        rc = text_add(&t, "?");
    for (size_t i = 0; rc == BASIN_OK && page_query_names[i] != NULL; i++) {
        const char *v = request_query(req, page_query_names[i]);
        if (v != NULL)
            rc = text_add_param(&t, page_query_names[i], v);
    }
    if (rc == BASIN_OK)
        rc = text_add_param(&t, "cursor", next_cursor);
    if (rc != BASIN_OK)
        goto done;
    t.buf[t.len - 1] = '\0'; /* the last '&' */
    rc = reply_link_next(rep, t.buf);
done:
    basin_free(t.buf);
    return rc;
}

int reply_page(struct request *req, struct reply *rep, json_t *items, const char *next_cursor)
{
    int rc = BASIN_OK;
    int last = next_cursor == NULL || next_cursor[0] == '\0';
    json_t *body = NULL;
    if (items == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    body = json_pack("{s:O, s:o}", "items", items, "next_cursor",
                     last ? json_null() : json_string(next_cursor));
    if (body == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_link_next_page(req, rep, next_cursor);
    if (rc != BASIN_OK)
        goto done;
    rc = reply_json(rep, 200, body);
    body = NULL;
done:
    json_decref(items);
    json_decref(body);
    return rc;
}

int page_params_or_reply(struct request *req, struct reply *rep, size_t *limit, const char **cursor)
{
    int rc = query_size_or_reply(req, rep, "limit", PAGE_DEFAULT_LIMIT, 1, PAGE_MAX_LIMIT, limit);
    if (rc != BASIN_OK)
        return rc;
    const char *c = request_query(req, "cursor");
    if (c != NULL && strlen(c) >= STORE_CURSOR_SIZE) {
        rc = reply_problem(rep, 400, "Invalid query parameter",
                           "query parameter 'cursor' is not a cursor this server issued", NULL, 0);
        return rc == BASIN_OK ? BASIN_EINVAL : rc;
    }
    *cursor = c != NULL && c[0] != '\0' ? c : NULL;
    return BASIN_OK;
}

/* ---- JSON building blocks ---- */

json_t *view_time(int64_t ms)
{
    char buf[40];
    struct tm tm;
    if (ms <= 0)
        return json_null();
    time_t secs = (time_t)(ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL)
        return json_null();
    size_t len = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (len == 0)
        return json_null();
    snprintf(buf + len, sizeof buf - len, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

json_t *view_real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* uint64 seeds: an integer when it fits JSON's usual int64 range (always, for seeds that came
 * from a spec), else the nearest double. */
static json_t *view_u64(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* json_object_set_new that tolerates a NULL value and records failure in *ok. */
static void set(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        *ok = 0;
}

/* Copy the members of spec into view, except those named in skip (NULL-terminated). */
static void merge_spec(json_t *view, const json_t *spec, const char *const *skip, int *ok)
{
    const char *key;
    json_t *value;
    if (!json_is_object(spec))
        return;
    json_object_foreach((json_t *)spec, key, value)
    {
        int skipped = 0;
        for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
            skipped |= strcmp(key, skip[i]) == 0;
        if (!skipped && json_object_set(view, key, value) != 0)
            *ok = 0;
    }
}

static json_t *finish(json_t *o, int ok)
{
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- views ---- */

json_t *view_dataset(const struct store_dataset *d)
{
    /* samples are served by /points; the view keeps the parameters that made them */
    static const char *const skip[] = {"x", "y", "csv", "kind", "name", "input_shape", NULL};
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok)
        return NULL;
    merge_spec(o, d->spec, skip, &ok);
    set(o, "id", json_string(d->id), &ok);
    set(o, "name", string_or_null(d->name), &ok);
    set(o, "kind", string_or_null(d->kind), &ok);
    set(o, "input_shape", d->input_shape ? json_incref(d->input_shape) : json_null(), &ok);
    set(o, "output_dim", json_integer(d->y_dim), &ok);
    set(o, "n", json_integer(d->n), &ok);
    set(o, "task", string_or_null(d->task), &ok);
    set(o, "n_classes", json_integer(d->n_classes), &ok);
    set(o, "linear_fit", d->linear_fit ? json_incref(d->linear_fit) : json_null(), &ok);
    set(o, "created_at", view_time(d->created_at_ms), &ok);
    return finish(o, ok);
}

json_t *view_architecture(const struct store_architecture *a)
{
    static const char *const skip[] = {"name", NULL};
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok)
        return NULL;
    merge_spec(o, a->spec, skip, &ok);
    set(o, "id", json_string(a->id), &ok);
    set(o, "name", string_or_null(a->name), &ok);
    set(o, "output_dim", json_integer(a->out_dim), &ok);
    set(o, "param_count", json_integer(a->param_count), &ok);
    set(o, "created_at", view_time(a->created_at_ms), &ok);
    return finish(o, ok);
}

json_t *view_progress(const struct store_progress *p)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)p->queued, "running",
                     (json_int_t)p->running, "finished", (json_int_t)p->finished, "failed",
                     (json_int_t)p->failed, "cancelled", (json_int_t)p->cancelled, "total",
                     (json_int_t)(p->queued + p->running + p->finished + p->failed + p->cancelled));
}

json_t *view_experiment(const struct store_experiment *e)
{
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok)
        return NULL;
    merge_spec(o, e->spec, NULL, &ok);
    set(o, "id", json_string(e->id), &ok);
    set(o, "status", json_string(store_exp_status_name(e->status)), &ok);
    set(o, "dataset_id", json_string(e->dataset_id), &ok);
    set(o, "architecture_id", json_string(e->architecture_id), &ok);
    set(o, "restarts", json_integer(e->restarts), &ok);
    set(o, "seed", view_u64(e->seed), &ok);
    set(o, "cancel_requested", json_boolean(e->cancel_requested), &ok);
    set(o, "progress", view_progress(&e->progress), &ok);
    set(o, "summary", e->summary ? json_incref(e->summary) : json_null(), &ok);
    set(o, "created_at", view_time(e->created_at_ms), &ok);
    set(o, "updated_at", view_time(e->updated_at_ms), &ok);
    set(o, "finished_at", view_time(e->finished_at_ms), &ok);
    return finish(o, ok);
}

static json_t *run_timings(const struct store_run *r)
{
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok)
        return NULL;
    set(o, "started_at", view_time(r->started_at_ms), &ok);
    set(o, "finished_at", view_time(r->finished_at_ms), &ok);
    if (r->started_at_ms > 0 && r->finished_at_ms >= r->started_at_ms)
        set(o, "duration_ms", json_integer(r->finished_at_ms - r->started_at_ms), &ok);
    else
        set(o, "duration_ms", json_null(), &ok);
    set(o, "lease_at", view_time(r->lease_at_ms), &ok);
    return finish(o, ok);
}

json_t *view_run(const struct store_run *r)
{
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok)
        return NULL;
    set(o, "id", json_string(r->id), &ok);
    set(o, "experiment_id", json_string(r->experiment_id), &ok);
    set(o, "index", json_integer(r->index), &ok);
    set(o, "seed", view_u64(r->seed), &ok);
    set(o, "status", json_string(store_run_status_name(r->status)), &ok);
    set(o, "origin", json_string(store_run_origin_name(r->origin)), &ok);
    set(o, "steps", r->steps >= 0 ? json_integer(r->steps) : json_null(), &ok);
    set(o, "stop_reason", string_or_null(r->stop_reason), &ok);
    set(o, "initial_risk", view_real(r->initial_risk), &ok);
    set(o, "final_risk", view_real(r->final_risk), &ok);
    set(o, "grad_norm", view_real(r->grad_norm), &ok);
    set(o, "param_norm", view_real(r->param_norm), &ok);
    set(o, "verdict", r->verdict ? json_incref(r->verdict) : json_null(), &ok);
    set(o, "verdict_label", string_or_null(r->verdict_label), &ok);
    set(o, "error", string_or_null(r->error), &ok);
    set(o, "attempts", json_integer(r->attempts), &ok);
    set(o, "has_params", json_boolean(r->has_params), &ok);
    set(o, "timings", run_timings(r), &ok);
    return finish(o, ok);
}

size_t format_double(char *buf, size_t cap, double v)
{
    int len = 0;
    if (cap == 0)
        return 0;
    if (isnan(v)) {
        len = snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        len = snprintf(buf, cap, "%s", v > 0 ? "inf" : "-inf");
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            len = snprintf(buf, cap, "%.*g", prec, v);
            if (len < 0 || (size_t)len >= cap || strtod(buf, NULL) == v)
                break;
        }
    }
    if (len < 0)
        len = 0;
    return (size_t)len < cap ? (size_t)len : cap - 1;
}
