/* Constructed and imported parameter points (imported.h): parse a construction or evaluation
 * body, build the point, judge it with basin_certify, store it as a finished run.
 *
 * DESIGN
 * - One parser for the shared part. The dataset, architecture, loss and l2 of a body are the
 *   experiment's: they go through spec_experiment_parse on a sub-object holding exactly those
 *   members, so the rules, defaults and JSON Pointers are the experiment's and a stored point's
 *   canonical spec is an ordinary experiment spec (readable by every consumer of experiments:
 *   the spurious key, basins, the dashboard). cpwl and group_fit make their own architecture;
 *   the sub-object names a placeholder architecture_id that is dropped right after parsing.
 * - Errors are collected, never first-only: the kind's fields and the certify options are parsed
 *   whatever the experiment part said, and sizes are checked before allocation (the arrays are
 *   at most as long as the body that holds them, itself bounded by limits.max_body_bytes).
 * - Compatibility before work. cpwl and group_fit produce a scalar-output dense network on the
 *   dataset's input, so the loss and the targets are checked against a placeholder dense(1)
 *   network of the same input shape before anything is fitted. A record given by id is pointed
 *   at as /dataset_id or /architecture_id, with the path inside the record in the message.
 * - Constructions are verified by the core (construct.h); the point is then judged exactly like
 *   a trained end point (basin_certify), except that polishing is off unless asked for: the
 *   claim is about the point as built or given. A point that is too big to judge on a request
 *   thread (samples × parameters above max_work) is refused before any work starts.
 * - The constructed architecture is serialised with the experiment serialiser and parsed back,
 *   so the published limits apply to it and the stored record is the canonical form. Datasets
 *   with [c,h,w] inputs get a leading flatten layer (no parameters: θ is unchanged). */
#include "imported.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/linfit.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "records.h"
#include "spurious.h"
#include "verdict.h"

#define PTR_CAP 256
#define MSG_CAP 512
#define PLACEHOLDER_ARCH_ID "constructed"

/* ---- errors ---- */

int imported_error(struct spec_errors *errs, const char *pointer, const char *fmt, ...)
{
    char msg[MSG_CAP];
    char *p = NULL, *m = NULL;
    int rc = BASIN_OK;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errs->count >= SPEC_MAX_ERRORS) {
        errs->dropped++;
        goto done;
    }
    p = basin_strdup(pointer);
    m = basin_strdup(msg);
    if (p == NULL || m == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (errs->count == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        struct spec_error *items = basin_realloc(errs->items, cap * sizeof *items);
        if (items == NULL) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        errs->items = items;
        errs->cap = cap;
    }
    errs->items[errs->count].pointer = p;
    errs->items[errs->count].message = m;
    errs->count++;
    p = NULL;
    m = NULL;
done:
    basin_free(p);
    basin_free(m);
    return rc;
}

/* Errors appended since `from` that point into an inline section (`from_ptr`, e.g. "/dataset")
 * of a record that was given by id are moved to `to_ptr` ("/dataset_id"), the path inside the
 * record going into the message. */
static int remap_errors(struct spec_errors *errs, size_t from, const char *from_ptr,
                        const char *to_ptr, const char *what)
{
    size_t len = strlen(from_ptr);
    for (size_t i = from; i < errs->count; i++) {
        struct spec_error *e = &errs->items[i];
        if (strncmp(e->pointer, from_ptr, len) != 0 ||
            (e->pointer[len] != '\0' && e->pointer[len] != '/'))
            continue;
        char msg[MSG_CAP];
        const char *inside = e->pointer + len;
        if (inside[0] != '\0')
            snprintf(msg, sizeof msg, "the %s's %s: %s", what, inside, e->message);
        else
            snprintf(msg, sizeof msg, "the %s: %s", what, e->message);
        char *p = basin_strdup(to_ptr), *m = basin_strdup(msg);
        if (p == NULL || m == NULL) {
            basin_free(p);
            basin_free(m);
            return BASIN_ENOMEM;
        }
        basin_free(e->pointer);
        basin_free(e->message);
        e->pointer = p;
        e->message = m;
    }
    return BASIN_OK;
}

/* "/key" with RFC 6901 escapes (~ → ~0, / → ~1). */
static void key_pointer(char *buf, size_t cap, const char *prefix, const char *key)
{
    size_t n = (size_t)snprintf(buf, cap, "%s/", prefix);
    for (const char *k = key; *k && n + 3 < cap; k++) {
        if (*k == '~' || *k == '/') {
            buf[n++] = '~';
            buf[n++] = *k == '~' ? '0' : '1';
        } else {
            buf[n++] = *k;
        }
    }
    buf[n < cap ? n : cap - 1] = '\0';
}

/* ---- typed readers: each records its own error and returns BASIN_EINVAL ---- */

struct rd {
    struct spec_errors *errs;
    int oom;
    int bad;
};

static void rd_err(struct rd *r, const char *pointer, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void rd_err(struct rd *r, const char *pointer, const char *fmt, ...)
{
    char msg[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->bad = 1;
    if (imported_error(r->errs, pointer, "%s", msg) != BASIN_OK)
        r->oom = 1;
}

/* A finite number member; *out keeps its default when absent. min_open: > lo, else ≥ lo. */
static void rd_num(struct rd *r, const json_t *obj, const char *prefix, const char *key, double lo,
                   int min_open, double *out)
{
    char ptr[PTR_CAP];
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return;
    key_pointer(ptr, sizeof ptr, prefix, key);
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d)) {
        rd_err(r, ptr, "must be a finite number");
    } else if (min_open ? !(d > lo) : !(d >= lo)) {
        rd_err(r, ptr, "must be %s %g", min_open ? ">" : "≥", lo);
    } else {
        *out = d;
    }
}

/* An integer member in [lo, hi]. */
static void rd_size(struct rd *r, const json_t *obj, const char *prefix, const char *key, size_t lo,
                    size_t hi, size_t *out)
{
    char ptr[PTR_CAP];
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return;
    key_pointer(ptr, sizeof ptr, prefix, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
        (uint64_t)json_integer_value(v) > hi)
        rd_err(r, ptr, "must be an integer from %zu to %zu", lo, hi);
    else
        *out = (size_t)json_integer_value(v);
}

static void rd_u64(struct rd *r, const json_t *obj, const char *prefix, const char *key,
                   uint64_t *out)
{
    char ptr[PTR_CAP];
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return;
    key_pointer(ptr, sizeof ptr, prefix, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        rd_err(r, ptr, "must be a non-negative integer");
    else
        *out = (uint64_t)json_integer_value(v);
}

static void rd_bool(struct rd *r, const json_t *obj, const char *prefix, const char *key, int *out)
{
    char ptr[PTR_CAP];
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return;
    key_pointer(ptr, sizeof ptr, prefix, key);
    if (!json_is_boolean(v))
        rd_err(r, ptr, "must be true or false");
    else
        *out = json_is_true(v);
}

/* Every member of obj must be listed in one of the NULL-terminated lists a and b. */
static void rd_keys(struct rd *r, const json_t *obj, const char *prefix, const char *const *a,
                    const char *const *b, const char *what)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int known = 0;
        for (size_t i = 0; a != NULL && a[i] != NULL && !known; i++)
            known = strcmp(a[i], key) == 0;
        for (size_t i = 0; b != NULL && b[i] != NULL && !known; i++)
            known = strcmp(b[i], key) == 0;
        if (!known) {
            char ptr[PTR_CAP];
            key_pointer(ptr, sizeof ptr, prefix, key);
            rd_err(r, ptr, "unknown field%s%s", what ? " for " : "", what ? what : "");
        }
    }
}

/* An array of n ≤ max finite numbers into a new array (NULL when n = 0). */
static int rd_reals(struct rd *r, const json_t *v, const char *ptr, size_t min_n, size_t max_n,
                    double **out, size_t *n_out)
{
    char ep[PTR_CAP];
    size_t n = json_array_size(v);
    *out = NULL;
    *n_out = 0;
    if (!json_is_array(v)) {
        rd_err(r, ptr, "must be an array of numbers");
        return BASIN_EINVAL;
    }
    if (n < min_n || n > max_n) {
        rd_err(r, ptr, "must have %zu to %zu values; it has %zu", min_n, max_n, n);
        return BASIN_EINVAL;
    }
    if (n == 0)
        return BASIN_OK;
    double *a = basin_alloc_array(n, sizeof *a);
    if (a == NULL) {
        r->oom = 1;
        return BASIN_ENOMEM;
    }
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        a[i] = json_number_value(e);
        if (!json_is_number(e) || !isfinite(a[i])) {
            snprintf(ep, sizeof ep, "%s/%zu", ptr, i);
            rd_err(r, ep, "must be a finite number");
            ok = 0;
        }
    }
    if (!ok) {
        basin_free(a);
        return BASIN_EINVAL;
    }
    *out = a;
    *n_out = n;
    return BASIN_OK;
}

/* ---- certify options ---- */

int imported_parse_certify(const json_t *certify, struct spec_certify *out,
                           struct spec_errors *errs)
{
    int rc = spec_certify_parse(certify, out, errs);
    /* the point judged is the point given or built, unless polishing is asked for */
    if (rc == BASIN_OK && json_object_get(certify, "polish") == NULL)
        out->opts.polish = 0;
    return rc;
}

/* ---- the kinds' fields ---- */

const char *imported_kind_name(enum imported_kind kind)
{
    switch (kind) {
    case IMPORTED_LINEAR_REGION:
        return "linear_region_minimum";
    case IMPORTED_CPWL:
        return "cpwl";
    case IMPORTED_GROUP_FIT:
        return "group_fit";
    case IMPORTED_EVALUATION:
        break;
    }
    return "evaluation";
}

static const char *const shared_keys[] = {"dataset", "dataset_id", "loss", "certify", NULL};
static const char *const eval_keys[] = {"architecture", "architecture_id", "l2", "params", NULL};
static const char *const lr_keys[] = {"kind",   "architecture", "architecture_id",
                                      "margin", "margin_rel",   "force_train",
                                      "seed",   "max_attempts", NULL};
static const char *const cpwl_keys[] = {"kind", "pieces", "sets", NULL};
static const char *const gf_keys[] = {"kind",         "groups",          "breakpoints", "method",
                                      "architecture", "architecture_id", NULL};
static const char *const kind_only[] = {"kind", NULL};

static void parse_linear_region(struct rd *r, const json_t *body, basin_linear_region_opts *lr)
{
    basin_linear_region_defaults(lr);
    rd_num(r, body, "", "margin", 0, 1, &lr->margin);
    rd_num(r, body, "", "margin_rel", 0, 1, &lr->margin_rel);
    rd_bool(r, body, "", "force_train", &lr->force_train);
    rd_u64(r, body, "", "seed", &lr->seed);
    rd_size(r, body, "", "max_attempts", 1, 20, &lr->max_attempts);
}

static void parse_cpwl(struct rd *r, const json_t *body, const struct limits *lim,
                       struct imported_request *rq)
{
    char ptr[PTR_CAP];
    const json_t *pieces = json_object_get(body, "pieces");
    const json_t *sets = json_object_get(body, "sets");
    size_t max_pieces = lim->max_width < IMPORTED_MAX_PIECES ? lim->max_width : IMPORTED_MAX_PIECES;
    size_t np = json_array_size(pieces), ns = json_array_size(sets), total = 0;

    if (pieces == NULL)
        rd_err(r, "/pieces", "required: the affine pieces [{\"a\": [...], \"b\": ...}, ...]");
    else if (!json_is_array(pieces) || np < 1 || np > max_pieces)
        rd_err(r, "/pieces", "must be an array of 1 to %zu pieces", max_pieces);
    if (sets == NULL)
        rd_err(r, "/sets", "required: the index sets S_i of f = max_i min_{j in S_i} piece_j");
    else if (!json_is_array(sets) || ns < 1 || ns > max_pieces)
        rd_err(r, "/sets", "must be an array of 1 to %zu index sets", max_pieces);
    if (r->bad)
        return;
    /* pieces: all slopes of one length d */
    rq->a = NULL;
    for (size_t i = 0; i < np; i++) {
        const json_t *p = json_array_get(pieces, i);
        snprintf(ptr, sizeof ptr, "/pieces/%zu", i);
        if (!json_is_object(p)) {
            rd_err(r, ptr, "must be an object {\"a\": [...], \"b\": number}");
            continue;
        }
        rd_keys(r, p, ptr, (const char *const[]){"a", "b", NULL}, NULL, "a piece");
        const json_t *av = json_object_get(p, "a"), *bv = json_object_get(p, "b");
        size_t d = json_array_size(av);
        char aptr[PTR_CAP];
        snprintf(aptr, sizeof aptr, "/pieces/%zu/a", i);
        if (av == NULL) {
            rd_err(r, aptr, "required");
        } else if (!json_is_array(av) || d < 1 || d > lim->max_input_dim) {
            rd_err(r, aptr, "must be an array of 1 to %zu numbers", lim->max_input_dim);
        } else if (rq->dim == 0) {
            rq->dim = d;
            if (basin_mul_size(np, d, &total) != BASIN_OK ||
                (rq->a = basin_alloc_array(total, sizeof *rq->a)) == NULL ||
                (rq->b = basin_alloc_array(np, sizeof *rq->b)) == NULL) {
                r->oom = 1;
                return;
            }
        } else if (d != rq->dim) {
            rd_err(r, aptr, "has %zu values; piece 0 has %zu (every piece has the same input size)",
                   d, rq->dim);
        }
        if (rq->a != NULL && d == rq->dim) {
            for (size_t k = 0; k < d; k++) {
                const json_t *e = json_array_get(av, k);
                rq->a[i * d + k] = json_number_value(e);
                if (!json_is_number(e) || !isfinite(json_number_value(e))) {
                    snprintf(ptr, sizeof ptr, "/pieces/%zu/a/%zu", i, k);
                    rd_err(r, ptr, "must be a finite number");
                }
            }
        }
        snprintf(ptr, sizeof ptr, "/pieces/%zu/b", i);
        if (bv == NULL)
            rd_err(r, ptr, "required");
        else if (!json_is_number(bv) || !isfinite(json_number_value(bv)))
            rd_err(r, ptr, "must be a finite number");
        else if (rq->b != NULL)
            rq->b[i] = json_number_value(bv);
    }
    rq->n_pieces = np;
    /* sets: non-empty arrays of piece indices */
    total = 0;
    for (size_t i = 0; i < ns; i++) {
        const json_t *s = json_array_get(sets, i);
        snprintf(ptr, sizeof ptr, "/sets/%zu", i);
        if (!json_is_array(s) || json_array_size(s) < 1 || json_array_size(s) > max_pieces) {
            rd_err(r, ptr, "must be a non-empty array of at most %zu piece indices", max_pieces);
            continue;
        }
        total += json_array_size(s);
    }
    if (total > lim->max_width) {
        rd_err(r, "/sets", "lists %zu members in all; the limit is %zu", total, lim->max_width);
        return;
    }
    if (r->bad)
        return;
    rq->set_start = basin_alloc_array(ns + 1, sizeof *rq->set_start);
    rq->members = basin_alloc_array(total, sizeof *rq->members);
    if (rq->set_start == NULL || rq->members == NULL) {
        r->oom = 1;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < ns; i++) {
        const json_t *s = json_array_get(sets, i);
        rq->set_start[i] = m;
        for (size_t k = 0; k < json_array_size(s); k++) {
            const json_t *e = json_array_get(s, k);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                (uint64_t)json_integer_value(e) >= np) {
                snprintf(ptr, sizeof ptr, "/sets/%zu/%zu", i, k);
                rd_err(r, ptr, "must be a piece index from 0 to %zu", np - 1);
                rq->members[m++] = 0;
            } else {
                rq->members[m++] = (size_t)json_integer_value(e);
            }
        }
    }
    rq->set_start[ns] = m;
    rq->n_sets = ns;
    rq->n_members = m;
}

static void parse_group_fit(struct rd *r, const json_t *body, const struct limits *lim,
                            struct imported_request *rq)
{
    static const char *const methods[] = {"auto", "one_d", "lattice"};
    static const basin_group_fit_method kinds[] = {BASIN_GROUP_FIT_AUTO, BASIN_GROUP_FIT_ONE_D,
                                                   BASIN_GROUP_FIT_LATTICE};
    const json_t *groups = json_object_get(body, "groups");
    const json_t *bps = json_object_get(body, "breakpoints");
    const json_t *method = json_object_get(body, "method");
    char ptr[PTR_CAP];

    rq->method = BASIN_GROUP_FIT_AUTO;
    if (method != NULL) {
        size_t i = 0;
        while (i < 3 &&
               !(json_is_string(method) && strcmp(json_string_value(method), methods[i]) == 0))
            i++;
        if (i == 3)
            rd_err(r, "/method", "must be one of \"auto\", \"one_d\", \"lattice\"");
        else
            rq->method = kinds[i];
    }
    if (groups != NULL && bps != NULL) {
        rd_err(r, "/breakpoints", "give either groups or breakpoints, not both");
        return;
    }
    if (groups == NULL && bps == NULL) {
        rd_err(r, "/groups", "required (or breakpoints): a group label for every sample");
        return;
    }
    if (bps != NULL) {
        rq->by_breakpoints = 1;
        if (rd_reals(r, bps, "/breakpoints", 0, lim->max_points, &rq->breakpoints,
                     &rq->n_breakpoints) != BASIN_OK)
            return;
        for (size_t i = 1; i < rq->n_breakpoints; i++)
            if (!(rq->breakpoints[i] > rq->breakpoints[i - 1])) {
                snprintf(ptr, sizeof ptr, "/breakpoints/%zu", i);
                rd_err(r, ptr, "breakpoints must be strictly increasing (%g follows %g)",
                       rq->breakpoints[i], rq->breakpoints[i - 1]);
            }
        rq->n_groups = rq->n_breakpoints + 1;
        return;
    }
    size_t n = json_array_size(groups);
    if (!json_is_array(groups) || n < 1 || n > lim->max_points) {
        rd_err(r, "/groups", "must be an array of 1 to %zu group labels (one per sample)",
               lim->max_points);
        return;
    }
    rq->labels = basin_alloc_array(n, sizeof *rq->labels);
    if (rq->labels == NULL) {
        r->oom = 1;
        return;
    }
    size_t max_label = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(groups, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            (uint64_t)json_integer_value(e) >= n) {
            snprintf(ptr, sizeof ptr, "/groups/%zu", i);
            rd_err(r, ptr, "must be a group label from 0 to %zu", n - 1);
            rq->labels[i] = 0;
            continue;
        }
        rq->labels[i] = (size_t)json_integer_value(e);
        if (rq->labels[i] > max_label)
            max_label = rq->labels[i];
    }
    rq->n_labels = n;
    rq->n_groups = max_label + 1;
    if (r->bad)
        return;
    /* every label 0..G−1 used: the core needs non-empty groups */
    unsigned char *used = basin_calloc(rq->n_groups, 1);
    if (used == NULL) {
        r->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        used[rq->labels[i]] = 1;
    for (size_t g = 0; g < rq->n_groups; g++)
        if (!used[g]) {
            rd_err(r, "/groups", "group %zu has no sample: labels must be 0 to %zu, each used", g,
                   rq->n_groups - 1);
            break;
        }
    basin_free(used);
}

/* ---- parse ---- */

void imported_request_free(struct imported_request *rq)
{
    if (rq == NULL)
        return;
    spec_experiment_free(rq->exp);
    basin_free(rq->params);
    basin_free(rq->a);
    basin_free(rq->b);
    basin_free(rq->set_start);
    basin_free(rq->members);
    basin_free(rq->labels);
    basin_free(rq->breakpoints);
    basin_free(rq);
}

static int parse_kind(struct rd *r, const json_t *body, enum imported_kind *kind)
{
    static const enum imported_kind kinds[] = {IMPORTED_LINEAR_REGION, IMPORTED_CPWL,
                                               IMPORTED_GROUP_FIT};
    const json_t *v = json_object_get(body, "kind");
    if (v == NULL) {
        rd_err(r, "/kind", "required: \"linear_region_minimum\", \"cpwl\" or \"group_fit\"");
        return BASIN_EINVAL;
    }
    for (size_t i = 0; i < 3; i++)
        if (json_is_string(v) && strcmp(json_string_value(v), imported_kind_name(kinds[i])) == 0) {
            *kind = kinds[i];
            return BASIN_OK;
        }
    rd_err(r, "/kind", "must be \"linear_region_minimum\", \"cpwl\" or \"group_fit\"");
    return BASIN_EINVAL;
}

/* The experiment-like members of body, for spec_experiment_parse. */
static json_t *experiment_part(const json_t *body, enum imported_kind kind)
{
    static const char *const keys[] = {
        "dataset", "dataset_id", "architecture", "architecture_id", "loss", "l2", NULL};
    json_t *sub = json_object();
    int ok = sub != NULL;
    for (size_t i = 0; ok && keys[i] != NULL; i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (v != NULL)
            ok = json_object_set(sub, keys[i], v) == 0;
    }
    /* group_fit may name an architecture to embed the construction in */
    if (ok && (kind == IMPORTED_CPWL ||
               (kind == IMPORTED_GROUP_FIT && json_object_get(body, "architecture") == NULL &&
                json_object_get(body, "architecture_id") == NULL)))
        ok = json_object_set_new(sub, "architecture_id", json_string(PLACEHOLDER_ARCH_ID)) == 0;
    if (!ok) {
        json_decref(sub);
        return NULL;
    }
    return sub;
}

int imported_parse(const json_t *body, int construction, const struct limits *lim,
                   struct imported_request **out, struct spec_errors *errs)
{
    struct rd r = {errs, 0, 0};
    struct imported_request *rq = NULL;
    json_t *sub = NULL;
    int rc = BASIN_OK, kind_ok = 1, exp_rc;

    *out = NULL;
    if (!json_is_object(body)) {
        rc = imported_error(errs, "", "the body must be a JSON object");
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    rq = basin_calloc(1, sizeof *rq);
    if (rq == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rq->kind = IMPORTED_EVALUATION;
    if (construction && parse_kind(&r, body, &rq->kind) != BASIN_OK)
        kind_ok = 0;
    if (kind_ok) {
        const char *const *own = eval_keys;
        if (rq->kind == IMPORTED_LINEAR_REGION)
            own = lr_keys;
        else if (rq->kind == IMPORTED_CPWL)
            own = cpwl_keys;
        else if (rq->kind == IMPORTED_GROUP_FIT)
            own = gf_keys;
        rd_keys(&r, body, "", shared_keys, own,
                construction ? imported_kind_name(rq->kind) : "an evaluation");
    } else {
        rd_keys(&r, body, "", shared_keys, kind_only, NULL);
    }

    sub = experiment_part(body, rq->kind);
    if (sub == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    exp_rc = spec_experiment_parse(sub, lim, &rq->exp, errs);
    if (exp_rc == BASIN_ENOMEM) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (exp_rc != BASIN_OK)
        r.bad = 1;

    struct spec_certify certify_opts;
    int crc = imported_parse_certify(json_object_get(body, "certify"), &certify_opts, errs);
    if (crc == BASIN_ENOMEM)
        r.oom = 1;
    else if (crc != BASIN_OK)
        r.bad = 1;
    if (kind_ok) {
        switch (rq->kind) {
        case IMPORTED_EVALUATION: {
            const json_t *p = json_object_get(body, "params");
            if (p == NULL)
                rd_err(&r, "/params", "required: the parameter vector (PyTorch state_dict order)");
            else
                rd_reals(&r, p, "/params", 1, lim->max_params, &rq->params, &rq->n_params);
            break;
        }
        case IMPORTED_LINEAR_REGION:
            parse_linear_region(&r, body, &rq->lr);
            break;
        case IMPORTED_CPWL:
            parse_cpwl(&r, body, lim, rq);
            break;
        case IMPORTED_GROUP_FIT:
            parse_group_fit(&r, body, lim, rq);
            break;
        }
    }
    if (r.oom) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (r.bad || !kind_ok || rq->exp == NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rq->dataset_by_id = rq->exp->dataset_id != NULL;
    rq->embed =
        rq->kind == IMPORTED_GROUP_FIT && (json_object_get(body, "architecture") != NULL ||
                                           json_object_get(body, "architecture_id") != NULL);
    if (rq->kind == IMPORTED_CPWL || (rq->kind == IMPORTED_GROUP_FIT && !rq->embed)) {
        basin_free(rq->exp->architecture_id);
        rq->exp->architecture_id = NULL;
    } else {
        rq->arch_by_id = rq->exp->architecture_id != NULL;
    }
    /* the options the point is judged with, kept in the stored spec as an experiment's are */
    rq->exp->certify_opts = certify_opts;
    json_decref(rq->exp->certify);
    rq->exp->certify = spec_certify_to_json(&certify_opts);
    if (rq->exp->certify == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *out = rq;
    rq = NULL;
done:
    json_decref(sub);
    imported_request_free(rq);
    return rc;
}

/* ---- build ---- */

void imported_point_free(struct imported_point *pt)
{
    if (pt == NULL)
        return;
    basin_free(pt->theta);
    json_decref(pt->report);
    json_decref(pt->verdict);
    basin_free(pt);
}

/* Compatibility of rq->exp (dataset and arch attached) with errors remapped for ids. */
static int check_compat(const struct imported_request *rq, const struct limits *lim,
                        struct spec_errors *errs)
{
    size_t from = errs->count;
    int rc = spec_experiment_check_compat(rq->exp, lim, errs);
    if (rc == BASIN_EINVAL && rq->dataset_by_id &&
        remap_errors(errs, from, "/dataset", "/dataset_id", "dataset") != BASIN_OK)
        rc = BASIN_ENOMEM;
    if (rc == BASIN_EINVAL && rq->arch_by_id &&
        remap_errors(errs, from, "/architecture", "/architecture_id", "architecture") != BASIN_OK)
        rc = BASIN_ENOMEM;
    return rc;
}

/* A spec_arch from layers on the dataset's input: [flatten] + layers for [c,h,w] inputs. The
 * JSON round trip applies the published limits; errors go to `pointer`. */
static int arch_from_layers(const struct spec_dataset *sd, const basin_layer_spec *layers,
                            size_t n_layers, const struct limits *lim, const char *pointer,
                            struct spec_arch **out, struct spec_errors *errs)
{
    struct spec_arch tmp;
    struct spec_errors inner;
    basin_layer_spec *all = NULL;
    json_t *j = NULL;
    int rc = BASIN_OK;
    size_t extra = sd->in_rank == 3 ? 1 : 0;

    *out = NULL;
    spec_errors_init(&inner);
    all = basin_calloc(n_layers + extra, sizeof *all);
    if (all == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (extra)
        all[0].kind = BASIN_LAYER_FLATTEN;
    memcpy(all + extra, layers, n_layers * sizeof *all);
    memset(&tmp, 0, sizeof tmp);
    tmp.arch.in_rank = sd->in_rank;
    memcpy(tmp.arch.in_shape, sd->in_shape, sizeof tmp.arch.in_shape);
    tmp.arch.n_layers = n_layers + extra;
    tmp.arch.layers = all;
    tmp.layers = all;
    j = spec_arch_to_json(&tmp);
    if (j == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = spec_arch_parse(j, lim, out, &inner);
    if (rc == BASIN_EINVAL) {
        for (size_t i = 0; i < inner.count && rc != BASIN_ENOMEM; i++)
            if (imported_error(errs, pointer, "the constructed network is not accepted: %s%s%s",
                               inner.items[i].pointer, inner.items[i].pointer[0] ? ": " : "",
                               inner.items[i].message) != BASIN_OK)
                rc = BASIN_ENOMEM;
    }
done:
    spec_errors_clear(&inner);
    json_decref(j);
    basin_free(all);
    return rc;
}

static int set_arch(struct spec_experiment *exp, struct spec_arch *arch)
{
    spec_arch_free(exp->arch);
    exp->arch = arch;
    return BASIN_OK;
}

static int work_ok(const struct imported_request *rq, double max_work, struct spec_errors *errs,
                   int *ok)
{
    double p = (double)basin_net_param_count(rq->exp->arch->net);
    /* teacher_gaussian points have no samples; their verdict works on the p × p Hessian */
    double n = rq->exp->dataset->data ? (double)rq->exp->dataset->data->n : p;
    *ok = 1;
    if (max_work > 0 && n * p > max_work) {
        *ok = 0;
        return imported_error(errs, "",
                              "judging this point on a request would take too long: %.0f samples "
                              "(or parameters) × %.0f parameters = %.3g exceeds %.3g; train it "
                              "as an experiment "
                              "or judge it offline with `basinlab certify`",
                              n, p, n * p, max_work);
    }
    return BASIN_OK;
}

static json_t *jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jreals(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, jreal(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* json_pack with NULL-safe reals: o, then members set one by one. */
static void jset(json_t *o, const char *key, json_t *v, int *ok)
{
    if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
        if (o == NULL)
            json_decref(v);
        *ok = 0;
    }
}

static json_t *linear_region_report(const basin_linear_region_report *r,
                                    const basin_construction *c, size_t dim)
{
    json_t *o = json_object();
    int ok = o != NULL;
    jset(o, "kind", json_string("linear_region_minimum"), &ok);
    jset(o, "method", json_string(r->method ? r->method : ""), &ok);
    jset(o, "r_lin", jreal(r->r_lin), &ok);
    jset(o, "r_lin_exact", json_boolean(r->r_lin_exact), &ok);
    jset(o, "r_lin_attained", json_boolean(r->r_lin_attained), &ok);
    jset(o, "linear_risk", jreal(r->linear_risk), &ok);
    jset(o, "linear_grad_norm", jreal(r->linear_grad_norm), &ok);
    jset(o, "risk", jreal(r->risk), &ok);
    jset(o, "grad_norm", jreal(r->grad_norm), &ok);
    jset(o, "margin", jreal(r->margin), &ok);
    jset(o, "min_preactivation", jreal(r->min_preactivation), &ok);
    jset(o, "max_output_diff", jreal(r->max_output_diff), &ok);
    jset(o, "n_lifted_layers", json_integer((json_int_t)r->n_lifted_layers), &ok);
    jset(o, "n_shifted_units", json_integer((json_int_t)r->n_shifted_units), &ok);
    if (strcmp(r->method ? r->method : "", "trained") == 0) {
        json_t *t = json_object();
        jset(t, "steps", json_integer((json_int_t)r->train_steps), &ok);
        jset(t, "attempts", json_integer((json_int_t)r->train_attempts), &ok);
        jset(t, "lr", jreal(r->train_lr), &ok);
        jset(t, "stop_reason", json_string(basin_stop_reason_name(r->stop_reason)), &ok);
        jset(o, "training", t, &ok);
    } else {
        jset(o, "training", json_null(), &ok);
    }
    jset(o, "params_linear", c->theta_linear ? jreals(c->theta_linear, dim) : json_null(), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *cpwl_json(const basin_cpwl_report *r)
{
    json_t *o = json_object();
    int ok = o != NULL;
    jset(o, "min_depth", json_integer((json_int_t)r->min_depth), &ok);
    jset(o, "max_depth", json_integer((json_int_t)r->max_depth), &ok);
    jset(o, "hidden_layers", json_integer((json_int_t)r->hidden_layers), &ok);
    jset(o, "max_width", json_integer((json_int_t)r->max_width), &ok);
    jset(o, "n_params", json_integer((json_int_t)r->n_params), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *cpwl_report(const struct imported_request *rq, const basin_cpwl_report *r)
{
    json_t *o = cpwl_json(r);
    int ok = o != NULL;
    jset(o, "kind", json_string("cpwl"), &ok);
    jset(o, "n_pieces", json_integer((json_int_t)rq->n_pieces), &ok);
    jset(o, "n_sets", json_integer((json_int_t)rq->n_sets), &ok);
    jset(o, "dim", json_integer((json_int_t)rq->dim), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *group_fit_report(const basin_group_fit_report *r)
{
    json_t *o = json_object(), *groups = json_array();
    int ok = o != NULL && groups != NULL;
    size_t nc = r->dim + 1;
    for (size_t g = 0; ok && g < r->n_groups; g++) {
        const basin_group_piece *p = &r->groups[g];
        json_t *go = json_object();
        jset(go, "n", json_integer((json_int_t)p->n), &ok);
        jset(go, "risk_sum", jreal(p->risk_sum), &ok);
        jset(go, "fit_risk_sum", jreal(p->fit_risk_sum), &ok);
        jset(go, "fit_gap", jreal(p->fit_gap), &ok);
        jset(go, "fit_exact", json_boolean(p->fit_exact), &ok);
        jset(go, "fit_attained", json_boolean(p->fit_attained), &ok);
        jset(go, "slopes", jreals(r->coef + g * nc, r->dim), &ok);
        jset(go, "intercept", jreal(r->coef[g * nc + r->dim]), &ok);
        if (r->dim == 1) {
            jset(go, "x_lo", jreal(p->x_lo), &ok);
            jset(go, "x_hi", jreal(p->x_hi), &ok);
        }
        if (go == NULL || json_array_append_new(groups, go) != 0)
            ok = 0;
    }
    jset(o, "kind", json_string("group_fit"), &ok);
    jset(o, "method", json_string(r->method ? r->method : ""), &ok);
    jset(o, "n_groups", json_integer((json_int_t)r->n_groups), &ok);
    jset(o, "risk", jreal(r->risk), &ok);
    jset(o, "net_risk", jreal(r->net_risk), &ok);
    jset(o, "groups", groups, &ok);
    groups = NULL;
    if (r->method != NULL && strcmp(r->method, "one_d") == 0) {
        jset(o, "kinks", jreals(r->kinks, r->n_kinks), &ok);
        jset(o, "carrier_kink", jreal(r->t0), &ok);
        jset(o, "min_kink_distance", jreal(r->min_kink_distance), &ok);
    } else if (r->set_start != NULL) {
        json_t *sets = json_array();
        for (size_t g = 0; ok && sets != NULL && g < r->n_groups; g++) {
            json_t *s = json_array();
            for (size_t k = r->set_start[g]; s != NULL && k < r->set_start[g + 1]; k++)
                if (json_array_append_new(s, json_integer((json_int_t)r->set_members[k])) != 0)
                    ok = 0;
            if (s == NULL || json_array_append_new(sets, s) != 0)
                ok = 0;
        }
        jset(o, "sets", sets, &ok);
        jset(o, "cpwl", cpwl_json(&r->cpwl), &ok);
    }
    json_decref(groups);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* θ of a construction into pt (the construction keeps nothing). */
static int take_theta(basin_construction *c, struct imported_point *pt)
{
    pt->dim = c->n_params;
    pt->theta = c->theta;
    c->theta = NULL;
    return BASIN_OK;
}

static int build_linear_region(struct imported_request *rq, struct imported_point *pt,
                               struct spec_errors *errs)
{
    basin_linear_region_report rep;
    basin_construction *c = NULL;
    const char *arch_ptr = rq->arch_by_id ? "/architecture_id" : "/architecture";
    char ptr[PTR_CAP];
    int rc;

    memset(&rep, 0, sizeof rep);
    rc = basin_construct_linear_region(&rq->exp->arch->arch, rq->exp->dataset->data, &rq->exp->loss,
                                       &rq->lr, &c, &rep);
    if (rc == BASIN_ENOTSUP || rc == BASIN_EINVAL || rc == BASIN_ERANGE) {
        if (rep.layer >= 0 && !rq->arch_by_id)
            snprintf(ptr, sizeof ptr, "%s/layers/%ld", arch_ptr, rep.layer);
        else
            snprintf(ptr, sizeof ptr, "%s", arch_ptr);
        if (rep.layer >= 0 && rq->arch_by_id)
            rc = imported_error(errs, ptr,
                                "no linear-region minimum for this architecture (layer %ld): %s",
                                rep.layer, rep.message[0] ? rep.message : basin_strerror(rc));
        else
            rc = imported_error(errs, ptr, "no linear-region minimum for this architecture: %s",
                                rep.message[0] ? rep.message : basin_strerror(rc));
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    if (c->n_params != basin_net_param_count(rq->exp->arch->net)) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    pt->report = linear_region_report(&rep, c, c->n_params);
    if (pt->report == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = take_theta(c, pt);
done:
    basin_construction_free(c);
    return rc;
}

static int build_cpwl(struct imported_request *rq, const struct limits *lim,
                      struct imported_point *pt, struct spec_errors *errs)
{
    basin_cpwl_spec spec = {rq->dim,    rq->n_pieces,  rq->a,      rq->b,
                            rq->n_sets, rq->set_start, rq->members};
    basin_cpwl_report rep;
    basin_construction *c = NULL;
    struct spec_arch *arch = NULL;
    int rc;

    memset(&rep, 0, sizeof rep);
    if (rq->dim != rq->exp->dataset->data->in_dim) {
        rc = imported_error(errs, "/pieces/0/a",
                            "has %zu values; the dataset's inputs have %zu (flattened)", rq->dim,
                            rq->exp->dataset->data->in_dim);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    rc = basin_construct_cpwl(&spec, &c, &rep);
    if (rc == BASIN_EINVAL || rc == BASIN_ERANGE) {
        rc = imported_error(errs, "/sets", "cannot compile this max-min form: %s",
                            rep.message[0] ? rep.message : basin_strerror(rc));
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = arch_from_layers(rq->exp->dataset, c->layers, c->arch.n_layers, lim, "/sets", &arch, errs);
    if (rc != BASIN_OK)
        goto done;
    if (basin_net_param_count(arch->net) != c->n_params) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    pt->report = cpwl_report(rq, &rep);
    if (pt->report == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    set_arch(rq->exp, arch);
    arch = NULL;
    rc = take_theta(c, pt);
done:
    spec_arch_free(arch);
    basin_construction_free(c);
    return rc;
}

/* 1 when spec is dense(bias) → relu → dense(1, bias) on a [d] input. */
static int one_hidden_relu(const basin_arch *a)
{
    const basin_layer_spec *l = a->layers;
    return a->in_rank == 1 && a->n_layers == 3 && l[0].kind == BASIN_LAYER_DENSE && l[0].bias &&
           l[1].kind == BASIN_LAYER_ACTIVATION && l[1].act == BASIN_ACT_RELU &&
           l[2].kind == BASIN_LAYER_DENSE && l[2].units == 1 && l[2].bias;
}

/* A one-hidden-layer group fit (K hidden units) written in the given architecture
 * dense(H ≥ K) → relu → dense(1): the extra units get zero incoming weights, bias −1 and zero
 * outgoing weights, so they are off on every sample (with margin) and add nothing; the point
 * then belongs to the same objective as the runs trained on that architecture. */
static int embed_one_hidden(struct imported_request *rq, const basin_group_fit_report *rep,
                            const basin_construction *c, struct imported_point *pt,
                            struct spec_errors *errs)
{
    const basin_arch *ga = &rq->exp->arch->arch;
    const char *arch_ptr = rq->arch_by_id ? "/architecture_id" : "/architecture";
    size_t d = rq->exp->dataset->data->in_dim, k = c->layers[0].units, h, dim;
    int rc = BASIN_OK;

    if (!one_hidden_relu(ga) || !one_hidden_relu(&c->arch)) {
        rc = imported_error(errs, arch_ptr,
                            "a group fit can be embedded only in dense → relu → dense(1) (biases "
                            "on), and only when it has one hidden layer (method one_d; this one "
                            "is %s)",
                            rep->method ? rep->method : "?");
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    h = ga->layers[0].units;
    if (h < k) {
        rc = imported_error(errs, arch_ptr,
                            "the construction needs %zu hidden units; the architecture has %zu", k,
                            h);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    dim = basin_net_param_count(rq->exp->arch->net);
    if (dim != h * d + 2 * h + 1 || c->n_params != k * d + 2 * k + 1) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    pt->theta = basin_calloc(dim, sizeof *pt->theta);
    if (pt->theta == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    pt->dim = dim;
    /* [W1 (h×d)] [b1 (h)] [W2 (1×h)] [b2] */
    memcpy(pt->theta, c->theta, k * d * sizeof *pt->theta);
    memcpy(pt->theta + h * d, c->theta + k * d, k * sizeof *pt->theta);
    for (size_t u = k; u < h; u++)
        pt->theta[h * d + u] = -1.0;
    memcpy(pt->theta + h * d + h, c->theta + k * d + k, k * sizeof *pt->theta);
    pt->theta[dim - 1] = c->theta[c->n_params - 1];
    json_t *e = json_pack("{s:I, s:I}", "hidden_units_used", (json_int_t)k, "dead_units_added",
                          (json_int_t)(h - k));
    if (e == NULL || json_object_set_new(pt->report, "embedded", e) != 0)
        rc = BASIN_ENOMEM;
done:
    return rc;
}

static int build_group_fit(struct imported_request *rq, const struct limits *lim,
                           struct imported_point *pt, struct spec_errors *errs)
{
    const basin_dataset *ds = rq->exp->dataset->data;
    const char *ptr = rq->by_breakpoints ? "/breakpoints" : "/groups";
    basin_group_fit_spec spec;
    basin_group_fit_report rep;
    basin_construction *c = NULL;
    struct spec_arch *arch = NULL;
    int rc;

    memset(&rep, 0, sizeof rep);
    memset(&spec, 0, sizeof spec);
    if (!rq->by_breakpoints && rq->n_labels != ds->n) {
        rc = imported_error(errs, "/groups", "has %zu labels; the dataset has %zu samples",
                            rq->n_labels, ds->n);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rq->by_breakpoints && ds->in_dim != 1) {
        rc = imported_error(errs, "/breakpoints",
                            "breakpoints need 1-D inputs; the dataset's inputs have %zu values "
                            "(give groups instead)",
                            ds->in_dim);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    spec.group = rq->by_breakpoints ? NULL : rq->labels;
    spec.n_groups = rq->n_groups;
    spec.breakpoints = rq->breakpoints;
    spec.n_breakpoints = rq->n_breakpoints;
    spec.method = rq->method;
    rc = basin_construct_group_fit(ds, &rq->exp->loss, &spec, &c, &rep);
    if (rc == BASIN_ENOTSUP) {
        if (rep.message[0] != '\0')
            rc = imported_error(errs, ptr, "impossible partition: %s", rep.message);
        else
            rc = imported_error(errs, ptr,
                                "impossible partition: no CPWL function of the max-min form uses "
                                "piece g on group g (group %ld, sample %ld, term of group %ld: "
                                "%.17g > %.17g)",
                                rep.fail_group, rep.fail_sample, rep.fail_term, rep.fail_term_value,
                                rep.fail_piece_value);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rc == BASIN_EINVAL || rc == BASIN_ERANGE) {
        rc = imported_error(errs, ptr, "%s", rep.message[0] ? rep.message : basin_strerror(rc));
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    pt->report = group_fit_report(&rep);
    if (pt->report == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (rq->embed) {
        rc = embed_one_hidden(rq, &rep, c, pt, errs);
        goto done;
    }
    rc = arch_from_layers(rq->exp->dataset, c->layers, c->arch.n_layers, lim, ptr, &arch, errs);
    if (rc != BASIN_OK)
        goto done;
    if (basin_net_param_count(arch->net) != c->n_params) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    set_arch(rq->exp, arch);
    arch = NULL;
    rc = take_theta(c, pt);
done:
    basin_group_fit_report_release(&rep);
    spec_arch_free(arch);
    basin_construction_free(c);
    return rc;
}

/* cpwl and group_fit: the loss and targets against a scalar-output net on the dataset's input. */
static int check_scalar_output(struct imported_request *rq, const struct limits *lim,
                               struct spec_errors *errs)
{
    basin_layer_spec dense;
    struct spec_arch *placeholder = NULL;
    int rc;

    memset(&dense, 0, sizeof dense);
    dense.kind = BASIN_LAYER_DENSE;
    dense.units = 1;
    dense.bias = 1;
    rc = arch_from_layers(rq->exp->dataset, &dense, 1, lim, "", &placeholder, errs);
    if (rc != BASIN_OK)
        goto done;
    rq->exp->arch = placeholder;
    rc = check_compat(rq, lim, errs);
    rq->exp->arch = NULL;
done:
    spec_arch_free(placeholder);
    return rc;
}

int imported_build(struct imported_request *rq, const struct limits *lim, double max_work,
                   struct imported_point **out, struct spec_errors *errs)
{
    struct imported_point *pt = NULL;
    const char *ds_ptr = rq->dataset_by_id ? "/dataset_id" : "/dataset";
    int rc = BASIN_OK, ok = 1;

    *out = NULL;
    if (rq->exp->dataset == NULL ||
        (rq->exp->arch == NULL &&
         (rq->kind == IMPORTED_EVALUATION || rq->kind == IMPORTED_LINEAR_REGION || rq->embed))) {
        rc = BASIN_EINVAL; /* the caller did not resolve the ids */
        goto done;
    }
    if (rq->exp->dataset->data == NULL && rq->kind != IMPORTED_EVALUATION) {
        rc = imported_error(errs, ds_ptr,
                            "a construction needs a dataset with samples; teacher_gaussian "
                            "datasets have none (their objective is the closed-form population "
                            "risk)");
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    pt = basin_calloc(1, sizeof *pt);
    if (pt == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (rq->kind == IMPORTED_CPWL || (rq->kind == IMPORTED_GROUP_FIT && !rq->embed))
        rc = check_scalar_output(rq, lim, errs);
    else
        rc = check_compat(rq, lim, errs);
    if (rc != BASIN_OK)
        goto done;
    if (rq->kind == IMPORTED_EVALUATION || rq->kind == IMPORTED_LINEAR_REGION) {
        rc = work_ok(rq, max_work, errs, &ok);
        if (rc == BASIN_OK && !ok)
            rc = BASIN_EINVAL;
        if (rc != BASIN_OK)
            goto done;
    }
    switch (rq->kind) {
    case IMPORTED_EVALUATION: {
        size_t p = basin_net_param_count(rq->exp->arch->net);
        if (rq->n_params != p) {
            rc = imported_error(errs, "/params",
                                "has %zu values; the architecture has %zu parameters (PyTorch "
                                "state_dict order: per layer the weight, then the bias)",
                                rq->n_params, p);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
        pt->theta = basin_alloc_array(p, sizeof *pt->theta);
        if (pt->theta == NULL) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        memcpy(pt->theta, rq->params, p * sizeof *pt->theta);
        pt->dim = p;
        break;
    }
    case IMPORTED_LINEAR_REGION:
        rc = build_linear_region(rq, pt, errs);
        break;
    case IMPORTED_CPWL:
        rc = build_cpwl(rq, lim, pt, errs);
        break;
    case IMPORTED_GROUP_FIT:
        rc = build_group_fit(rq, lim, pt, errs);
        break;
    }
    if (rc != BASIN_OK)
        goto done;
    if (rq->kind == IMPORTED_CPWL || rq->kind == IMPORTED_GROUP_FIT) {
        rc = work_ok(rq, max_work, errs, &ok);
        if (rc == BASIN_OK && !ok)
            rc = BASIN_EINVAL;
        if (rc != BASIN_OK)
            goto done;
    }
    *out = pt;
    pt = NULL;
done:
    imported_point_free(pt);
    return rc;
}

/* ---- judge ---- */

static int make_teacher(const struct spec_teacher_gaussian *tg, basin_teacher **out)
{
    switch (tg->teacher) {
    case SPEC_TEACHER_IDENTITY:
        return basin_teacher_create_identity(tg->k, tg->d, out);
    case SPEC_TEACHER_RANDOM_ORTHONORMAL:
        return basin_teacher_create_random_orthonormal(tg->k, tg->d, tg->seed, out);
    case SPEC_TEACHER_MATRIX:
        break;
    }
    return basin_teacher_create_given(tg->k, tg->d, tg->matrix, out);
}

int imported_judge(const struct imported_request *rq, struct imported_point *pt, char *why,
                   size_t why_cap)
{
    const struct spec_experiment *exp = rq->exp;
    basin_teacher *teacher = NULL;
    basin_objective obj;
    struct verdict_out vo;
    double *grad = NULL;
    int rc;

    memset(&obj, 0, sizeof obj);
    memset(&vo, 0, sizeof vo);
    if (why_cap > 0)
        why[0] = '\0';
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        rc = make_teacher(&exp->dataset->tg, &teacher);
        if (rc == BASIN_OK)
            rc = basin_teacher_objective(teacher, exp->arch->layers[0].units, &obj);
    } else {
        rc = basin_objective_empirical(exp->arch->net, exp->dataset->data, &exp->loss, exp->l2, 0,
                                       &obj);
    }
    if (rc == BASIN_OK && obj.dim != pt->dim)
        rc = BASIN_EINVAL;
    if (rc != BASIN_OK)
        goto done;
    grad = basin_alloc_array(pt->dim, sizeof *grad);
    if (grad == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = obj.value_grad(obj.ctx, pt->theta, NULL, 0, &pt->given_risk, grad);
    if (rc != BASIN_OK)
        goto done;
    double g2 = 0, t2 = 0;
    for (size_t i = 0; i < pt->dim; i++) {
        g2 += grad[i] * grad[i];
        t2 += pt->theta[i] * pt->theta[i];
    }
    pt->given_grad_norm = sqrt(g2);
    pt->given_param_norm = sqrt(t2);
    pt->risk = pt->given_risk;
    pt->grad_norm = pt->given_grad_norm;
    pt->param_norm = pt->given_param_norm;
    /* the verdict exactly as a trained end point gets it (verdict.h), with this point's options */
    rc = verdict_judge(exp, teacher, pt->theta, &vo);
    if (rc != BASIN_OK)
        goto done;
    if (!vo.judged) {
        if (vo.error[0] != '\0') { /* not "certify": {"enabled": false} */
            snprintf(why, why_cap, "%s", vo.error);
            rc = BASIN_ENUMERIC;
        }
        goto done;
    }
    pt->verdict = vo.verdict;
    vo.verdict = NULL;
    pt->label = vo.label;
    pt->moved = vo.moved;
    pt->risk = vo.risk;
    pt->grad_norm = vo.grad_norm;
    pt->param_norm = vo.param_norm;
done:
    verdict_out_release(&vo);
    basin_free(grad);
    basin_objective_release(&obj);
    basin_teacher_free(teacher);
    return rc;
}

json_t *imported_result_json(const struct imported_request *rq, const struct imported_point *pt)
{
    json_t *o = json_object();
    int ok = o != NULL;
    int show_params = rq->kind != IMPORTED_EVALUATION || pt->moved;
    jset(o, "kind", json_string(imported_kind_name(rq->kind)), &ok);
    jset(o, "architecture", spec_arch_summary(rq->exp->arch), &ok);
    if (show_params)
        jset(o, "params", jreals(pt->theta, pt->dim), &ok);
    if (pt->report != NULL)
        jset(o, "construction", json_incref(pt->report), &ok);
    jset(o, "risk", jreal(pt->given_risk), &ok);
    jset(o, "grad_norm", jreal(pt->given_grad_norm), &ok);
    jset(o, "param_norm", jreal(pt->given_param_norm), &ok);
    jset(o, "verdict", pt->verdict ? json_incref(pt->verdict) : json_null(), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- store ---- */

static json_t *canonical_spec(const struct spec_experiment *exp, const char *ds_id,
                              const char *ar_id)
{
    json_t *c = spec_experiment_to_json(exp);
    if (c == NULL)
        return NULL;
    json_object_del(c, "dataset");
    json_object_del(c, "architecture");
    if (json_object_set_new(c, "dataset_id", json_string(ds_id)) != 0 ||
        json_object_set_new(c, "architecture_id", json_string(ar_id)) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

int imported_store(struct store *st, const struct limits *lim, const struct imported_request *rq,
                   const struct imported_point *pt, struct imported_stored *ids, int *store_rc)
{
    const struct spec_experiment *exp = rq->exp;
    struct store_dataset dsrec;
    struct store_architecture arrec;
    struct store_finished_run fr;
    json_t *spec = NULL, *summary = NULL;
    char key[STORE_KEY_SIZE];
    int rc = BASIN_OK, ok = 1;

    memset(&dsrec, 0, sizeof dsrec);
    memset(&arrec, 0, sizeof arrec);
    memset(ids, 0, sizeof *ids);
    *store_rc = STORE_OK;
    if (rq->dataset_by_id) {
        snprintf(ids->dataset_id, sizeof ids->dataset_id, "%s", exp->dataset_id);
    } else {
        rc = records_dataset_build(exp->dataset, lim, &dsrec);
        if (rc != BASIN_OK)
            goto done;
        *store_rc = store_dataset_insert(st, &dsrec, ids->dataset_id);
        if (*store_rc != STORE_OK) {
            rc = BASIN_EINVAL;
            goto done;
        }
    }
    if (rq->arch_by_id) {
        snprintf(ids->architecture_id, sizeof ids->architecture_id, "%s", exp->architecture_id);
    } else {
        rc = records_arch_build(exp->arch, &arrec);
        if (rc != BASIN_OK)
            goto done;
        *store_rc = store_architecture_insert(st, &arrec, ids->architecture_id);
        if (*store_rc != STORE_OK) {
            rc = BASIN_EINVAL;
            goto done;
        }
    }
    spec = canonical_spec(exp, ids->dataset_id, ids->architecture_id);
    summary = json_object();
    jset(summary, "origin",
         json_string(store_run_origin_name(
             rq->kind == IMPORTED_EVALUATION ? STORE_ORIGIN_IMPORTED : STORE_ORIGIN_CONSTRUCTION)),
         &ok);
    jset(summary, "kind", json_string(imported_kind_name(rq->kind)), &ok);
    if (pt->report != NULL)
        jset(summary, "construction", json_incref(pt->report), &ok);
    if (spec == NULL || !ok) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memset(&fr, 0, sizeof fr);
    fr.dataset_id = ids->dataset_id;
    fr.architecture_id = ids->architecture_id;
    fr.spec = spec;
    fr.objective_key = spurious_objective_key(spec, ids->dataset_id, ids->architecture_id, key,
                                              sizeof key) == BASIN_OK
                           ? key
                           : NULL;
    fr.summary = summary;
    fr.origin = rq->kind == IMPORTED_EVALUATION ? STORE_ORIGIN_IMPORTED : STORE_ORIGIN_CONSTRUCTION;
    fr.seed = rq->kind == IMPORTED_LINEAR_REGION ? rq->lr.seed : 0;
    fr.steps = -1;
    fr.stop_reason = NULL;
    fr.final_risk = pt->risk;
    fr.grad_norm = pt->grad_norm;
    fr.param_norm = pt->param_norm;
    fr.initial_risk = pt->given_risk;
    fr.verdict = pt->verdict;
    fr.verdict_label = pt->label;
    fr.params = pt->theta;
    fr.n_params = pt->dim;
    *store_rc = store_run_insert_finished(st, &fr, ids->experiment_id, ids->run_id);
    if (*store_rc != STORE_OK)
        rc = BASIN_EINVAL;
done:
    records_dataset_release(&dsrec);
    records_arch_release(&arrec);
    json_decref(spec);
    json_decref(summary);
    return rc;
}
