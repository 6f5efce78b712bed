/* The /v1/datasets handlers: create (JSON spec or a raw text/csv body), list, get, delete and
 * the samples (/points, as paged JSON or one CSV document).
 *
 * Creation parses and validates the whole body with spec.h (limits are checked before any
 * allocation that depends on them), materialises generator samples so that every run of every
 * experiment sees the same points, computes the linear-fit risk R_lin where that is cheap, and
 * stores the record in one insert: a dataset either exists completely or not at all.
 *
 * A text/csv body takes its options from the query string: y_cols (default 1), header=true|false
 * (absent: detected), delimiter (one character, default ","), name and input_shape ("1,8,8").
 * Its problems use JSON Pointer "" for the CSV text itself (the message names line and column)
 * and "?y_cols", "?header", ... for query parameters, since there is no JSON body to point into.
 *
 * linear_fit: {"loss": {"squared": {...}, "logistic" | "cross_entropy": {...}}} where each entry
 * is {"risk", "exact", "attained", "linearly_fittable", "tolerance"}: R_lin = (1/n) min Σ ℓ over
 * affine maps (core/linfit.h). Squared is always listed; binary data add logistic, multiclass
 * cross_entropy (records.c). A fit costing more than RECORDS_MAX_FIT_WORK (≈ n·p² for p unknowns
 * per output) is not run on the request thread: its entry has null numbers and a "skipped" reason.
 * Population datasets (teacher_gaussian, n = 0) have linear_fit null. */
#include "handlers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/linfit.h"
#include "basin/status.h"
#include "ids.h"
#include "records.h"

enum {
    POINTS_DEFAULT_LIMIT = 1000,
    POINTS_MAX_LIMIT = 10000,
    MAX_QUERY_ERRORS = 8,
    CSV_VALUE_BYTES = 32 /* enough for any format_double output plus a separator */
};

/* 404 for an id that is not a dataset id, without asking the store. The id is only echoed when
 * it is well formed (a path segment may hold bytes that are not UTF-8). */
static int dataset_id_or_reply(struct request *req, struct reply *rep, const char **id)
{
    *id = request_param(req, "id");
    if (*id != NULL && ids_valid(*id, IDS_PREFIX_DATASET))
        return BASIN_OK;
    int rc = reply_problem(rep, 404, NULL, "no dataset has this id", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int store_error(struct reply *rep, int store_rc, const char *id)
{
    char what[64];
    snprintf(what, sizeof what, "dataset %s", id);
    return reply_store_error(rep, store_rc, what);
}

/* ---- text/csv bodies ---- */

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        unsigned long cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += extra + 1;
    }
    return 1;
}

struct query_errors {
    struct problem_error items[MAX_QUERY_ERRORS];
    size_t n;
};

static void query_error(struct query_errors *qe, const char *pointer, const char *message)
{
    if (qe->n < MAX_QUERY_ERRORS) {
        qe->items[qe->n].pointer = pointer;
        qe->items[qe->n].message = message;
        qe->n++;
    }
}

/* json_object_set_new that reports a NULL value; a string that is not UTF-8 is a query error. */
static int set_query_string(json_t *o, const char *key, const char *value, struct query_errors *qe,
                            const char *pointer)
{
    if (!utf8_valid((const unsigned char *)value, strlen(value))) {
        query_error(qe, pointer, "must be UTF-8 text");
        return BASIN_OK;
    }
    json_t *s = json_string(value);
    if (s == NULL || json_object_set_new(o, key, s) != 0)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

/* "1,8,8" → [1, 8, 8]; the spec parser checks rank and limits. */
static int shape_from_query(const char *v, json_t **out)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return BASIN_ENOMEM;
    const char *p = v;
    for (;;) {
        size_t len = strspn(p, "0123456789");
        if (len == 0 || len > 9 || (p[len] != ',' && p[len] != '\0'))
            goto bad;
        if (json_array_append_new(arr, json_integer(strtol(p, NULL, 10))) != 0) {
            json_decref(arr);
            return BASIN_ENOMEM;
        }
        p += len;
        if (*p == '\0')
            break;
        p++;
    }
    *out = arr;
    return BASIN_OK;
bad:
    json_decref(arr);
    return BASIN_EINVAL;
}

/* The dataset body equivalent to a text/csv request: {"kind": "csv", "csv": <body>, ...}. Query
 * mistakes that the spec parser cannot see (not a number, not a boolean) go to qe. */
static int csv_request_body(struct request *req, json_t **out, struct query_errors *qe)
{
    int rc = BASIN_OK;
    json_t *o = json_pack("{s:s}", "kind", "csv");
    const char *v;
    *out = NULL;
    if (o == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (!utf8_valid((const unsigned char *)req->body, req->body_len)) {
        query_error(qe, "", "the CSV text is not valid UTF-8");
    } else {
        json_t *text = json_stringn(req->body ? req->body : "", req->body_len);
        if (text == NULL || json_object_set_new(o, "csv", text) != 0) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    if ((v = request_query(req, "y_cols")) != NULL) {
        size_t len = strlen(v);
        if (len == 0 || len > 9 || strspn(v, "0123456789") != len)
            query_error(qe, "?y_cols", "must be a positive integer");
        else if (json_object_set_new(o, "y_cols", json_integer(strtol(v, NULL, 10))) != 0)
            rc = BASIN_ENOMEM;
    }
    if ((v = request_query(req, "header")) != NULL) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            query_error(qe, "?header", "must be true or false");
        else if (json_object_set_new(o, "header", json_boolean(strcmp(v, "true") == 0)) != 0)
            rc = BASIN_ENOMEM;
    }
    if (rc == BASIN_OK && (v = request_query(req, "delimiter")) != NULL)
        rc = set_query_string(o, "delimiter", v, qe, "?delimiter");
    if (rc == BASIN_OK && (v = request_query(req, "name")) != NULL)
        rc = set_query_string(o, "name", v, qe, "?name");
    if (rc == BASIN_OK && (v = request_query(req, "input_shape")) != NULL) {
        json_t *shape = NULL;
        rc = shape_from_query(v, &shape);
        if (rc == BASIN_EINVAL) {
            query_error(qe, "?input_shape",
                        "must be comma-separated positive integers: d or c,h,w");
            rc = BASIN_OK;
        } else if (rc == BASIN_OK && json_object_set_new(o, "input_shape", shape) != 0) {
            rc = BASIN_ENOMEM;
        }
    }
    if (rc != BASIN_OK)
        goto done;
    *out = o;
    o = NULL;
done:
    json_decref(o);
    return rc;
}

/* Pointers into the synthesized body become "" (the CSV text) and "?name" (query parameters). */
static int remap_csv_pointers(struct spec_errors *errs)
{
    static const char *const keys[] = {"y_cols", "header", "delimiter", "name", "input_shape"};
    for (size_t i = 0; i < errs->count; i++) {
        const char *p = errs->items[i].pointer;
        const char *to = NULL;
        char buf[32];
        if (strcmp(p, "/csv") == 0 || strncmp(p, "/csv/", 5) == 0 || strcmp(p, "/kind") == 0)
            to = "";
        for (size_t k = 0; to == NULL && k < sizeof keys / sizeof keys[0]; k++) {
            size_t len = strlen(keys[k]);
            if (p[0] == '/' && strncmp(p + 1, keys[k], len) == 0 &&
                (p[len + 1] == '\0' || p[len + 1] == '/')) {
                snprintf(buf, sizeof buf, "?%s", keys[k]);
                to = buf;
            }
        }
        if (to == NULL)
            continue;
        char *copy = basin_strdup(to);
        if (copy == NULL)
            return BASIN_ENOMEM;
        basin_free(errs->items[i].pointer);
        errs->items[i].pointer = copy;
    }
    return BASIN_OK;
}

/* Parse the request into a dataset spec; 0 with *out, or the answer is given (4xx) and
 * BASIN_EINVAL returned, or BASIN_ENOMEM. */
static int parse_request(struct request *req, struct reply *rep, struct spec_dataset **out)
{
    const struct app *app = req->app;
    struct spec_errors errs;
    struct query_errors qe = {.n = 0};
    json_t *body = NULL;
    int rc = BASIN_OK;
    spec_errors_init(&errs);
    *out = NULL;
    if (req->body_kind == BODY_KIND_CSV) {
        rc = csv_request_body(req, &body, &qe);
        if (rc != BASIN_OK)
            goto done;
        if (qe.n > 0) {
            rc = reply_problem(rep, 422, NULL, "the CSV upload is invalid", qe.items, qe.n);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
        rc = spec_dataset_parse(body, &app->limits, out, &errs);
        if (rc == BASIN_EINVAL && remap_csv_pointers(&errs) != BASIN_OK)
            rc = BASIN_ENOMEM;
    } else if (req->json != NULL) {
        rc = spec_dataset_parse(req->json, &app->limits, out, &errs);
    } else {
        rc =
            reply_problem(rep, 400, NULL, "a JSON dataset or a text/csv body is required", NULL, 0);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rc == BASIN_EINVAL) {
        rc = reply_spec_errors(rep, 422, &errs);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
    }
done:
    spec_errors_clear(&errs);
    json_decref(body);
    return rc;
}

static int answer_dataset(struct reply *rep, int status, const struct store_dataset *d)
{
    json_t *view = view_dataset(d);
    if (view == NULL)
        return BASIN_ENOMEM;
    return reply_json(rep, status, view);
}

int h_datasets_create(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct spec_dataset *sd = NULL;
    struct store_dataset rec;
    struct store_dataset *got = NULL;
    char id[STORE_ID_SIZE];
    char location[64];
    int rc;

    memset(&rec, 0, sizeof rec);
    rc = parse_request(req, rep, &sd);
    if (rc != BASIN_OK) {
        if (rc == BASIN_EINVAL) /* answered */
            rc = BASIN_OK;
        goto done;
    }
    rc = records_dataset_build(sd, &app->limits, &rec);
    if (rc != BASIN_OK)
        goto done;
    int src = store_dataset_insert(app->store, &rec, id);
    if (src == STORE_EINVAL) {
        rep->log_cause = "the store refused a dataset record built from a valid spec";
        rc = reply_problem(rep, 500, NULL, "the dataset could not be stored", NULL, 0);
        goto done;
    }
    if (src == STORE_OK)
        src = store_dataset_get(app->store, id, 0, &got);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "dataset");
        goto done;
    }
    snprintf(location, sizeof location, "/v1/datasets/%s", id);
    rc = reply_header(rep, "Location", location);
    if (rc == BASIN_OK)
        rc = answer_dataset(rep, 201, got);
done:
    records_dataset_release(&rec);
    store_dataset_free(got);
    spec_dataset_free(sd);
    return rc;
}

int h_datasets_list(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_dataset_list *l = NULL;
    json_t *items = NULL;
    const char *cursor = NULL;
    size_t limit = 0;
    int rc = BASIN_OK;

    if (page_params_or_reply(req, rep, &limit, &cursor) != BASIN_OK)
        goto done; /* answered 400 (or out of memory, answered 500 by the pipeline) */
    int src = store_dataset_list(app->store, limit, cursor, &l);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "dataset list");
        goto done;
    }
    items = json_array();
    for (size_t i = 0; items != NULL && i < l->n; i++) {
        if (json_array_append_new(items, view_dataset(&l->items[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    if (items == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_page(req, rep, items, l->next_cursor);
done:
    store_dataset_list_free(l);
    return rc;
}

int h_datasets_get(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_dataset *d = NULL;
    const char *id = NULL;
    int rc = BASIN_OK;

    if (dataset_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int src = store_dataset_get(app->store, id, 0, &d);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    rc = answer_dataset(rep, 200, d);
done:
    store_dataset_free(d);
    return rc;
}

int h_datasets_delete(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    const char *id = NULL;
    int rc = BASIN_OK;

    if (dataset_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int src = store_dataset_delete(app->store, id);
    if (src == STORE_ECONFLICT) {
        rc =
            reply_problemf(rep, 409, NULL,
                           "dataset %s is used by at least one experiment; delete those first", id);
    } else if (src != STORE_OK) {
        rc = store_error(rep, src, id);
    } else {
        rep->status = 204;
    }
done:
    return rc;
}

/* ---- /points ---- */

/* Offset cursors of the points pages: "p" + decimal offset (opaque to clients). */
static int points_cursor_or_reply(struct request *req, struct reply *rep, size_t n, size_t *offset)
{
    const char *c = request_query(req, "cursor");
    *offset = 0;
    if (c == NULL || c[0] == '\0')
        return BASIN_OK;
    size_t len = strlen(c);
    int ok = c[0] == 'p' && len >= 2 && len <= 20 && strspn(c + 1, "0123456789") == len - 1;
    unsigned long long v = 0;
    if (ok) {
        errno = 0;
        v = strtoull(c + 1, NULL, 10);
        ok = errno == 0 && v < n;
    }
    if (!ok) {
        int rc = reply_problem(rep, 400, "Invalid query parameter",
                               "query parameter 'cursor' is not a cursor this server issued for "
                               "this dataset",
                               NULL, 0);
        return rc == BASIN_OK ? BASIN_EINVAL : rc;
    }
    *offset = (size_t)v;
    return BASIN_OK;
}

static json_t *rows_json(const double *v, size_t from, size_t count, size_t cols, int flat)
{
    json_t *arr = json_array();
    for (size_t i = from; arr != NULL && i < from + count; i++) {
        json_t *item = NULL;
        if (flat) {
            item = view_real(v[i]);
        } else {
            item = json_array();
            for (size_t j = 0; item != NULL && j < cols; j++) {
                if (json_array_append_new(item, view_real(v[i * cols + j])) != 0) {
                    json_decref(item);
                    item = NULL;
                }
            }
        }
        if (json_array_append_new(arr, item) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static int points_json(struct request *req, struct reply *rep, const struct store_dataset *d)
{
    size_t n = (size_t)d->n, in_dim = (size_t)d->in_dim, y_dim = (size_t)d->y_dim;
    size_t limit = 0, offset = 0;
    char next[32] = "";
    int rc =
        query_size_or_reply(req, rep, "limit", POINTS_DEFAULT_LIMIT, 1, POINTS_MAX_LIMIT, &limit);
    if (rc == BASIN_OK)
        rc = points_cursor_or_reply(req, rep, n, &offset);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc; /* answered 400 */
    size_t count = n - offset < limit ? n - offset : limit;
    if (offset + count < n)
        snprintf(next, sizeof next, "p%zu", offset + count);
    /* y is a flat list for one target per sample (like an inline dataset's "y") */
    json_t *body = json_pack("{s:s, s:I, s:O, s:I, s:I, s:I, s:o, s:o, s:o}", "dataset_id", d->id,
                             "n", (json_int_t)n, "input_shape", d->input_shape, "output_dim",
                             (json_int_t)y_dim, "offset", (json_int_t)offset, "count",
                             (json_int_t)count, "x", rows_json(d->x, offset, count, in_dim, 0), "y",
                             rows_json(d->y, offset, count, y_dim, y_dim == 1), "next_cursor",
                             next[0] ? json_string(next) : json_null());
    if (body == NULL)
        return BASIN_ENOMEM;
    rc = reply_link_next_page(req, rep, next);
    if (rc != BASIN_OK) {
        json_decref(body);
        return rc;
    }
    return reply_json(rep, 200, body);
}

/* Appends name + index (e.g. "x12") and the separator. */
static size_t csv_header_cell(char *w, const char *name, size_t i, char sep)
{
    return (size_t)sprintf(w, "%s%zu%c", name, i, sep);
}

static int points_csv(struct reply *rep, const struct store_dataset *d)
{
    size_t n = (size_t)d->n, in_dim = (size_t)d->in_dim, y_dim = (size_t)d->y_dim;
    size_t cols = in_dim + y_dim, rows = n + 1, cap = 0;
    if (basin_mul_size(rows, cols, &cap) != BASIN_OK ||
        basin_mul_size(cap, CSV_VALUE_BYTES, &cap) != BASIN_OK)
        return BASIN_ERANGE;
    char *buf = basin_malloc(cap + 1);
    if (buf == NULL)
        return BASIN_ENOMEM;
    char *w = buf;
    for (size_t j = 0; j < in_dim; j++)
        w += csv_header_cell(w, "x", j, ',');
    for (size_t j = 0; j < y_dim; j++)
        w += csv_header_cell(w, "y", j, j + 1 < y_dim ? ',' : '\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < cols; j++) {
            double v = j < in_dim ? d->x[i * in_dim + j] : d->y[i * y_dim + (j - in_dim)];
            w += format_double(w, CSV_VALUE_BYTES, v);
            *w++ = j + 1 < cols ? ',' : '\n';
        }
    }
    return reply_take_body(rep, 200, "text/csv; charset=utf-8", buf, (size_t)(w - buf));
}

int h_datasets_points(struct request *req, struct reply *rep)
{
    static const char *const formats[] = {"json", "csv"};
    struct app *app = req->app;
    struct store_dataset *d = NULL;
    const char *id = NULL;
    size_t format = 0;
    int rc = BASIN_OK;

    if (dataset_id_or_reply(req, rep, &id) != BASIN_OK ||
        query_choice_or_reply(req, rep, "format", formats, 2, 0, &format) != BASIN_OK)
        goto done;
    int src = store_dataset_get(app->store, id, STORE_WITH_DATA, &d);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    rc = format == 1 ? points_csv(rep, d) : points_json(req, rep, d);
done:
    store_dataset_free(d);
    return rc;
}
