/* The experiment spec (spec.h): the parse context and typed field readers shared by the spec
 * files, the error list, the experiment body itself, the cross-section checks and the canonical
 * JSON of an experiment. Datasets, architectures and the training sections live in
 * spec_dataset.c, spec_arch.c and spec_train.c.
 *
 * DESIGN: the parser walks the body once, section by section, carrying the JSON Pointer of the
 * value it reads in a fixed buffer (the structural keys are ours and short; keys taken from the
 * body appear only in "unknown field" errors, which are escaped into their own allocation). A
 * reader that finds a bad value records the error and returns BASIN_EINVAL; its caller notes
 * that the section failed and keeps reading, so one pass reports every independent error.
 * Checks that combine sections (input shape against the dataset, loss against the output size
 * and the targets, batch against n, given parameters against param_count) run only when the
 * sections they need parsed cleanly, so that one mistake is not reported three times.
 * Sizes are compared with the limits before any allocation that depends on them. */
#include "spec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "spec_int.h"
#include "utf8.h"

/* ---- errors ---- */

void spec_errors_init(struct spec_errors *errs)
{
    errs->items = NULL;
    errs->count = 0;
    errs->cap = 0;
    errs->dropped = 0;
}

void spec_errors_clear(struct spec_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++) {
        basin_free(errs->items[i].pointer);
        basin_free(errs->items[i].message);
    }
    basin_free(errs->items);
    spec_errors_init(errs);
}

/* Takes ownership of pointer and message (frees them on failure). */
static int errors_add(struct spec_errors *errs, char *pointer, char *message)
{
    int rc = BASIN_OK;
    if (pointer == NULL || message == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (errs->count >= SPEC_MAX_ERRORS) {
        errs->dropped++;
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
    errs->items[errs->count].pointer = pointer;
    errs->items[errs->count].message = message;
    errs->count++;
    pointer = NULL;
    message = NULL;
done:
    basin_free(pointer);
    basin_free(message);
    return rc;
}

json_t *spec_errors_to_json(const struct spec_errors *errs)
{
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < errs->count; i++)
        spec_append(arr,
                    json_pack("{s:s, s:s}", "pointer", errs->items[i].pointer, "message",
                              errs->items[i].message),
                    &ok);
    if (ok && errs->dropped > 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "%zu more errors not shown", errs->dropped);
        spec_append(arr, json_pack("{s:s, s:s}", "pointer", "", "message", msg), &ok);
    }
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* ---- context and pointers ---- */

void spec_ctx_init(struct spec_ctx *c, const struct limits *lim, struct spec_errors *errs)
{
    c->lim = lim;
    c->errs = errs;
    c->oom = 0;
    c->ptr[0] = '\0';
    c->len = 0;
}

/* Append "/" + key with RFC 6901 escaping (~ → ~0, / → ~1) into buf (cap bytes, truncating
 * between characters, never inside one: a pointer must stay UTF-8). */
static size_t escape_into(char *buf, size_t len, size_t cap, const char *key)
{
    size_t klen = strlen(key);
    if (len + 1 < cap)
        buf[len++] = '/';
    for (size_t i = 0; i < klen;) {
        if (key[i] == '~' || key[i] == '/') {
            if (len + 2 >= cap)
                break;
            buf[len++] = '~';
            buf[len++] = key[i] == '~' ? '0' : '1';
            i++;
            continue;
        }
        size_t n = utf8_char_len(key + i, klen - i);
        if (n == 0)
            n = 1; /* not UTF-8 (jansson's keys always are); record() replaces it */
        if (len + n >= cap)
            break;
        memcpy(buf + len, key + i, n);
        len += n;
        i += n;
    }
    buf[len] = '\0';
    return len;
}

size_t spec_ptr_push(struct spec_ctx *c, const char *key)
{
    size_t mark = c->len;
    c->len = escape_into(c->ptr, c->len, sizeof c->ptr, key);
    return mark;
}

size_t spec_ptr_push_index(struct spec_ctx *c, size_t index)
{
    char num[32];
    snprintf(num, sizeof num, "%zu", index);
    return spec_ptr_push(c, num);
}

void spec_ptr_pop(struct spec_ctx *c, size_t mark)
{
    c->len = mark;
    c->ptr[mark] = '\0';
}

size_t spec_err_count(const struct spec_ctx *c)
{
    return c->errs->count + c->errs->dropped;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = basin_malloc((size_t)n + 1);
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* s itself when it is well-formed UTF-8, else a sanitised copy (s freed); NULL when out of
 * memory. Messages quote request text (jansson's error text cuts characters in half), and
 * spec_errors_to_json and the 422 answer need UTF-8. */
static char *utf8_or_clean(char *s)
{
    char *clean = NULL;
    if (s == NULL || utf8_valid(s, strlen(s)))
        return s;
    utf8_sanitize(s, strlen(s), &clean);
    basin_free(s);
    return clean;
}

static void record(struct spec_ctx *c, const char *key, const char *fmt, va_list ap)
{
    char *pointer = NULL;
    if (key == NULL) {
        pointer = basin_strdup(c->ptr);
    } else {
        /* Keys from the body may be long: escape into an exact-size allocation. */
        size_t extra = 2 * strlen(key) + 2, cap;
        if (basin_add_size(c->len, extra, &cap) == BASIN_OK)
            pointer = basin_malloc(cap);
        if (pointer != NULL) {
            memcpy(pointer, c->ptr, c->len + 1);
            escape_into(pointer, c->len, cap, key);
        }
    }
    char *message = utf8_or_clean(vformat(fmt, ap));
    pointer = utf8_or_clean(pointer);
    if (errors_add(c->errs, pointer, message) != BASIN_OK)
        c->oom = 1;
}

void spec_err(struct spec_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(c, NULL, fmt, ap);
    va_end(ap);
}

void spec_err_at(struct spec_ctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(c, key, fmt, ap);
    va_end(ap);
}

/* ---- typed readers ---- */

int spec_check_keys(struct spec_ctx *c, const json_t *obj, const char *const *allowed,
                    const char *what)
{
    int rc = BASIN_OK;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        int known = 0;
        for (const char *const *a = allowed; *a != NULL && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known) {
            if (what != NULL)
                spec_err_at(c, key, "unknown field for %s", what);
            else
                spec_err_at(c, key, "unknown field");
            rc = BASIN_EINVAL;
        }
    }
    return rc;
}

/* v as an integer in [min, max]: JSON integers, or reals with an integral value (JSON does not
 * distinguish 4 from 4.0). */
static int value_in_range(const json_t *v, double min, double max, double *out)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return 0;
    if (!isfinite(d) || d != floor(d) || d < min || d > max)
        return 0;
    *out = d;
    return 1;
}

static void size_message(struct spec_ctx *c, size_t min, size_t max)
{
    if (min == 0)
        spec_err(c, "must be a non-negative integer ≤ %zu", max);
    else if (min == 1)
        spec_err(c, "must be a positive integer ≤ %zu", max);
    else
        spec_err(c, "must be an integer in [%zu, %zu]", min, max);
}

int spec_value_size(struct spec_ctx *c, const json_t *v, size_t min, size_t max, size_t *out)
{
    /* Exact for integers; doubles above 2^53 only matter for limits that large. */
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= 0 && (unsigned long long)i >= min && (unsigned long long)i <= max) {
            *out = (size_t)i;
            return BASIN_OK;
        }
    } else {
        double d;
        if (value_in_range(v, (double)min, (double)max, &d)) {
            *out = (size_t)d;
            return BASIN_OK;
        }
    }
    size_message(c, min, max);
    return BASIN_EINVAL;
}

int spec_get_size(struct spec_ctx *c, const json_t *obj, const char *key, int required, size_t min,
                  size_t max, size_t dflt, size_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            spec_err_at(c, key, "required");
            return BASIN_EINVAL;
        }
        *out = dflt;
        return BASIN_OK;
    }
    size_t mark = spec_ptr_push(c, key);
    int rc = spec_value_size(c, v, min, max, out);
    spec_ptr_pop(c, mark);
    return rc;
}

int spec_get_u64(struct spec_ctx *c, const json_t *obj, const char *key, uint64_t dflt,
                 uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return BASIN_OK;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return BASIN_OK;
    }
    double d;
    if (value_in_range(v, 0, 9007199254740992.0, &d)) {
        *out = (uint64_t)d;
        return BASIN_OK;
    }
    spec_err_at(c, key, "must be a non-negative integer");
    return BASIN_EINVAL;
}

int spec_get_num(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                 enum spec_num_rule rule, double dflt, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            spec_err_at(c, key, "required");
            return BASIN_EINVAL;
        }
        *out = dflt;
        return BASIN_OK;
    }
    int ok = json_is_number(v);
    double d = ok ? json_number_value(v) : 0;
    ok = ok && isfinite(d);
    switch (rule) {
    case SPEC_NUM_FINITE:
        if (!ok)
            spec_err_at(c, key, "must be a finite number");
        break;
    case SPEC_NUM_POSITIVE:
        ok = ok && d > 0;
        if (!ok)
            spec_err_at(c, key, "must be a number > 0");
        break;
    case SPEC_NUM_NONNEG:
        ok = ok && d >= 0;
        if (!ok)
            spec_err_at(c, key, "must be a number ≥ 0");
        break;
    case SPEC_NUM_UNIT:
        ok = ok && d >= 0 && d < 1;
        if (!ok)
            spec_err_at(c, key, "must be a number in [0, 1)");
        break;
    }
    if (!ok)
        return BASIN_EINVAL;
    *out = d;
    return BASIN_OK;
}

int spec_get_bool(struct spec_ctx *c, const json_t *obj, const char *key, int dflt, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return BASIN_OK;
    }
    if (!json_is_boolean(v)) {
        spec_err_at(c, key, "must be true or false");
        return BASIN_EINVAL;
    }
    *out = json_is_true(v);
    return BASIN_OK;
}

int spec_get_string(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                    const char *dflt, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            spec_err_at(c, key, "required");
            return BASIN_EINVAL;
        }
        *out = dflt;
        return BASIN_OK;
    }
    if (!json_is_string(v)) {
        spec_err_at(c, key, "must be a string");
        return BASIN_EINVAL;
    }
    *out = json_string_value(v);
    return BASIN_OK;
}

int spec_get_enum(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                  const char *const *names, size_t n, size_t dflt, size_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            spec_err_at(c, key, "required");
            return BASIN_EINVAL;
        }
        *out = dflt;
        return BASIN_OK;
    }
    if (json_is_string(v)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *out = i;
                return BASIN_OK;
            }
        }
    }
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    spec_err_at(c, key, "must be one of %s", list);
    return BASIN_EINVAL;
}

int spec_get_name(struct spec_ctx *c, const json_t *obj, char **out)
{
    const char *s = NULL;
    *out = NULL;
    if (spec_get_string(c, obj, "name", 0, NULL, &s) != BASIN_OK)
        return BASIN_EINVAL;
    if (s != NULL) {
        *out = basin_strdup(s);
        if (*out == NULL) {
            c->oom = 1;
            return BASIN_ENOMEM;
        }
    }
    return BASIN_OK;
}

int spec_get_shape(struct spec_ctx *c, const json_t *obj, const char *key, size_t max, size_t *rank,
                   size_t shape[3], int *present)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    if (v == NULL)
        return BASIN_OK;
    size_t mark = spec_ptr_push(c, key);
    int rc = BASIN_OK;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n != 1 && n != 3) {
        spec_err(c, "must be [d] or [c, h, w] (positive integers)");
        rc = BASIN_EINVAL;
        goto done;
    }
    size_t prod = 1;
    for (size_t i = 0; i < n; i++) {
        size_t m2 = spec_ptr_push_index(c, i);
        if (spec_value_size(c, json_array_get(v, i), 1, max, &shape[i]) != BASIN_OK)
            rc = BASIN_EINVAL;
        spec_ptr_pop(c, m2);
    }
    if (rc != BASIN_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (basin_mul_size(prod, shape[i], &prod) != BASIN_OK || prod > max) {
            spec_err(c, "has more than %zu values per input (the limit)", max);
            rc = BASIN_EINVAL;
            goto done;
        }
    }
    *rank = n;
    for (size_t i = n; i < 3; i++)
        shape[i] = 0;
done:
    spec_ptr_pop(c, mark);
    return rc;
}

/* ---- serialisation helpers ---- */

json_t *spec_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *spec_json_shape(size_t rank, const size_t *shape)
{
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < rank; i++)
        spec_append(arr, json_integer((json_int_t)shape[i]), &ok);
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

void spec_set(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (value == NULL || obj == NULL) {
        json_decref(value);
        *ok = 0;
        return;
    }
    if (json_object_set_new(obj, key, value) != 0)
        *ok = 0;
}

void spec_append(json_t *arr, json_t *value, int *ok)
{
    if (value == NULL || arr == NULL) {
        json_decref(value);
        *ok = 0;
        return;
    }
    if (json_array_append_new(arr, value) != 0)
        *ok = 0;
}

const char *spec_task_name(basin_task task)
{
    switch (task) {
    case BASIN_TASK_BINARY:
        return "binary";
    case BASIN_TASK_MULTICLASS:
        return "multiclass";
    case BASIN_TASK_REGRESSION:
        break;
    }
    return "regression";
}

/* ---- the experiment ---- */

static const char *const experiment_keys[] = {"dataset",
                                              "dataset_id",
                                              "architecture",
                                              "architecture_id",
                                              "loss",
                                              "l2",
                                              "optimizer",
                                              "init",
                                              "restarts",
                                              "seed",
                                              "max_steps",
                                              "stop",
                                              "trajectory_every",
                                              "max_batch",
                                              "certify",
                                              NULL};

void spec_experiment_free(struct spec_experiment *exp)
{
    if (exp == NULL)
        return;
    spec_dataset_free(exp->dataset);
    basin_free(exp->dataset_id);
    spec_arch_free(exp->arch);
    basin_free(exp->architecture_id);
    basin_free(exp->given_params);
    json_decref(exp->certify);
    basin_free(exp);
}

/* Exactly one of `inline_key` (an object) and `id_key` (a non-empty string id). *obj receives
 * the inline object, *id a copy of the id. */
static int parse_either(struct spec_ctx *c, const json_t *body, const char *inline_key,
                        const char *id_key, const json_t **obj, char **id)
{
    json_t *v = json_object_get(body, inline_key);
    json_t *ref = json_object_get(body, id_key);
    *obj = NULL;
    *id = NULL;
    if (v != NULL && ref != NULL) {
        spec_err_at(c, id_key, "give either %s or %s, not both", inline_key, id_key);
        return BASIN_EINVAL;
    }
    if (v == NULL && ref == NULL) {
        spec_err_at(c, inline_key, "required (or %s)", id_key);
        return BASIN_EINVAL;
    }
    if (ref != NULL) {
        if (!json_is_string(ref) || json_string_length(ref) == 0) {
            spec_err_at(c, id_key, "must be a non-empty string");
            return BASIN_EINVAL;
        }
        *id = basin_strdup(json_string_value(ref));
        if (*id == NULL) {
            c->oom = 1;
            return BASIN_ENOMEM;
        }
        return BASIN_OK;
    }
    if (!json_is_object(v)) {
        spec_err_at(c, inline_key, "must be an object");
        return BASIN_EINVAL;
    }
    *obj = v;
    return BASIN_OK;
}

/* The default trajectory_every: 100, or larger to keep a run within the stored-points limit. */
static size_t default_trajectory_every(size_t max_steps, size_t max_points)
{
    /* A run stores at most floor(max_steps/every) + 2 points: that is ≤ max_points exactly when
     * every > max_steps/(max_points − 1). */
    size_t every = 100;
    if (max_points > 2) {
        size_t need = max_steps / (max_points - 1) + 1;
        if (need > every)
            every = need;
    }
    return every;
}

static int parse_schedule_fields(struct spec_ctx *c, const json_t *body,
                                 struct spec_experiment *exp)
{
    const struct limits *lim = c->lim;
    basin_train_spec *t = &exp->train;
    int rc = BASIN_OK;
    size_t every_default = default_trajectory_every(t->max_steps, lim->max_trajectory_points);
    if (spec_get_size(c, body, "trajectory_every", 0, 0, lim->max_steps, every_default,
                      &t->trajectory_every) != BASIN_OK) {
        rc = BASIN_EINVAL;
    } else if (t->trajectory_every > 0) {
        size_t points = t->max_steps / t->trajectory_every + 2;
        if (points > lim->max_trajectory_points) {
            size_t mark = spec_ptr_push(c, "trajectory_every");
            spec_err(c,
                     "gives up to %zu points per run; the limit is %zu (use ≥ %zu for "
                     "max_steps %zu)",
                     points, lim->max_trajectory_points, every_default, t->max_steps);
            spec_ptr_pop(c, mark);
            rc = BASIN_EINVAL;
        }
    }
    return rc;
}

static int parse_sections(struct spec_ctx *c, const json_t *body, struct spec_experiment *exp,
                          int *compat_ready)
{
    const struct limits *lim = c->lim;
    const json_t *ds_obj, *arch_obj;
    int ok = 1, ds_ok = 1, arch_ok = 1, loss_ok = 1, train_ok = 1;
    size_t mark;

    if (parse_either(c, body, "dataset", "dataset_id", &ds_obj, &exp->dataset_id) != BASIN_OK)
        ds_ok = 0;
    if (ds_obj != NULL) {
        mark = spec_ptr_push(c, "dataset");
        if (spec_dataset_parse_at(c, ds_obj, &exp->dataset) != BASIN_OK)
            ds_ok = 0;
        spec_ptr_pop(c, mark);
    }
    if (parse_either(c, body, "architecture", "architecture_id", &arch_obj,
                     &exp->architecture_id) != BASIN_OK)
        arch_ok = 0;
    if (arch_obj != NULL) {
        const struct spec_dataset *ds = exp->dataset;
        size_t rank = ds ? ds->in_rank : (ds_obj != NULL ? SPEC_SHAPE_UNKNOWN : 0);
        mark = spec_ptr_push(c, "architecture");
        if (spec_arch_parse_at(c, arch_obj, rank, ds ? ds->in_shape : NULL, &exp->arch) != BASIN_OK)
            arch_ok = 0;
        spec_ptr_pop(c, mark);
    }

    json_t *loss = json_object_get(body, "loss");
    if (loss == NULL) {
        exp->loss.kind = BASIN_LOSS_SQUARED;
        exp->loss.huber_delta = 1.0;
    } else {
        mark = spec_ptr_push(c, "loss");
        if (spec_loss_parse_at(c, loss, &exp->loss) != BASIN_OK)
            loss_ok = 0;
        spec_ptr_pop(c, mark);
    }
    if (spec_get_num(c, body, "l2", 0, SPEC_NUM_NONNEG, 0.0, &exp->l2) != BASIN_OK)
        ok = 0;

    basin_train_defaults(&exp->train);
    basin_train_spec *t = &exp->train;
    if (spec_get_size(c, body, "max_steps", 0, 1, lim->max_steps, 10000, &t->max_steps) !=
        BASIN_OK) {
        train_ok = 0;
        t->max_steps = 10000; /* keep reading the sections that refer to it */
    }
    json_t *opt = json_object_get(body, "optimizer");
    mark = spec_ptr_push(c, "optimizer");
    if (spec_optimizer_parse_at(c, opt, t->max_steps, &t->optim) != BASIN_OK)
        train_ok = 0;
    spec_ptr_pop(c, mark);
    json_t *init = json_object_get(body, "init");
    mark = spec_ptr_push(c, "init");
    if (spec_init_parse_at(c, init, exp) != BASIN_OK)
        train_ok = 0;
    spec_ptr_pop(c, mark);
    if (spec_get_size(c, body, "restarts", 0, 1, lim->max_restarts, 1, &exp->restarts) != BASIN_OK)
        ok = 0;
    if (spec_get_u64(c, body, "seed", 0, &t->seed) != BASIN_OK)
        ok = 0;
    json_t *stop = json_object_get(body, "stop");
    mark = spec_ptr_push(c, "stop");
    if (spec_stop_parse_at(c, stop, t->max_steps, t) != BASIN_OK)
        train_ok = 0;
    spec_ptr_pop(c, mark);
    if (parse_schedule_fields(c, body, exp) != BASIN_OK)
        ok = 0;
    if (spec_get_size(c, body, "max_batch", 0, 1, lim->max_points, 0, &exp->max_batch) != BASIN_OK)
        ok = 0;

    json_t *certify = json_object_get(body, "certify");
    mark = spec_ptr_push(c, "certify");
    if (spec_certify_parse_at(c, certify, &exp->certify_opts) != BASIN_OK) {
        ok = 0;
    } else if (certify != NULL) {
        exp->certify = spec_certify_to_json(&exp->certify_opts);
        if (exp->certify == NULL)
            c->oom = 1;
    }
    spec_ptr_pop(c, mark);
    *compat_ready =
        exp->dataset != NULL && exp->arch != NULL && ds_ok && arch_ok && loss_ok && train_ok;
    return (ok && ds_ok && arch_ok && loss_ok && train_ok) ? BASIN_OK : BASIN_EINVAL;
}

/* ---- cross-section checks ---- */

static void shape_text(size_t rank, const size_t *shape, char *buf, size_t cap)
{
    if (rank == 3)
        snprintf(buf, cap, "[%zu, %zu, %zu]", shape[0], shape[1], shape[2]);
    else
        snprintf(buf, cap, "[%zu]", shape[0]);
}

static int check_shapes(struct spec_ctx *c, const struct spec_dataset *ds,
                        const struct spec_arch *arch)
{
    const basin_arch *a = &arch->arch;
    int same = a->in_rank == ds->in_rank;
    for (size_t i = 0; same && i < a->in_rank; i++)
        same = a->in_shape[i] == ds->in_shape[i];
    if (same)
        return BASIN_OK;
    char want[96], got[96];
    shape_text(ds->in_rank, ds->in_shape, want, sizeof want);
    shape_text(a->in_rank, a->in_shape, got, sizeof got);
    size_t mark = spec_ptr_push(c, "architecture");
    spec_err_at(c, "input_shape", "is %s but the dataset's input_shape is %s", got, want);
    spec_ptr_pop(c, mark);
    return BASIN_EINVAL;
}

static int check_loss_outputs(struct spec_ctx *c, const basin_loss *loss, size_t out_dim)
{
    const char *name = basin_loss_name(loss->kind);
    if (basin_loss_check(loss, out_dim) != BASIN_OK) {
        if (loss->kind == BASIN_LOSS_CROSS_ENTROPY)
            spec_err_at(c, "loss",
                        "cross_entropy needs ≥ 2 outputs (one per class); the architecture "
                        "has %zu",
                        out_dim);
        else
            spec_err_at(c, "loss", "%s needs an architecture with 1 output; it has %zu", name,
                        out_dim);
        return BASIN_EINVAL;
    }
    if (loss->kind == BASIN_LOSS_CROSS_ENTROPY && out_dim > c->lim->max_classes) {
        spec_err_at(c, "loss", "cross_entropy with %zu classes; the limit is %zu classes", out_dim,
                    c->lim->max_classes);
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

static void target_requirement(const basin_loss *loss, size_t out_dim, char *buf, size_t cap)
{
    switch (loss->kind) {
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_HINGE:
        snprintf(buf, cap, "must be 0 or 1 for loss %s", basin_loss_name(loss->kind));
        break;
    case BASIN_LOSS_CROSS_ENTROPY:
        snprintf(buf, cap, "must be a class index in [0, %zu) for cross_entropy", out_dim);
        break;
    default:
        snprintf(buf, cap, "must be finite");
        break;
    }
}

/* Where the targets of a dataset kind are written in the body. */
static const char *targets_key(const struct spec_dataset *ds)
{
    switch (ds->kind) {
    case SPEC_DATASET_INLINE:
        return "y";
    case SPEC_DATASET_CSV:
        return "csv";
    default:
        return "generator";
    }
}

/* Every target row must suit the loss; inline rows are pointed at one by one (/dataset/y/<i>),
 * csv and generated ones by row number. At most 10 are listed, then a count of the rest. */
static int check_targets(struct spec_ctx *c, const struct spec_dataset *sd, const basin_loss *loss,
                         size_t out_dim)
{
    const basin_dataset *ds = sd->data;
    size_t need = basin_loss_target_dim(loss, out_dim);
    size_t mark = spec_ptr_push(c, "dataset");
    int rc = BASIN_OK;
    if (ds->y_dim != need) {
        const char *key = sd->kind == SPEC_DATASET_CSV ? "y_cols" : targets_key(sd);
        spec_err_at(c, key, "targets have %zu values per sample; loss %s on %zu outputs needs %zu",
                    ds->y_dim, basin_loss_name(loss->kind), out_dim, need);
        rc = BASIN_EINVAL;
        goto done;
    }
    char req[96];
    target_requirement(loss, out_dim, req, sizeof req);
    size_t bad = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (basin_loss_check_target(loss, out_dim, ds->y + i * ds->y_dim) == BASIN_OK)
            continue;
        if (bad++ >= 10)
            continue;
        if (sd->kind == SPEC_DATASET_INLINE) {
            size_t m2 = spec_ptr_push(c, "y");
            spec_ptr_push_index(c, i);
            spec_err(c, "%s", req);
            spec_ptr_pop(c, m2);
        } else {
            spec_err_at(c, targets_key(sd), "sample %zu: target %s", i + 1, req);
        }
    }
    if (bad > 10)
        spec_err_at(c, targets_key(sd), "%zu more targets are not admissible", bad - 10);
    if (bad > 0)
        rc = BASIN_EINVAL;
done:
    spec_ptr_pop(c, mark);
    return rc;
}

/* The closed-form population risk (teacher.h) is that of the student [dense(n, bias false),
 * relu, sum]; any other architecture has no closed form here. */
static int check_student(struct spec_ctx *c, const struct spec_arch *arch)
{
    const basin_arch *a = &arch->arch;
    const char *msg = "teacher_gaussian trains the student [dense(n, bias false), relu, sum]";
    int rc = BASIN_OK;
    size_t mark = spec_ptr_push(c, "architecture");
    spec_ptr_push(c, "layers");
    if (a->n_layers != 3) {
        spec_err(c, "%s", msg);
        rc = BASIN_EINVAL;
        goto done;
    }
    const basin_layer_spec *l = a->layers;
    size_t m2 = spec_ptr_push_index(c, 0);
    if (l[0].kind != BASIN_LAYER_DENSE)
        spec_err_at(c, "type", "%s", msg);
    else if (l[0].bias)
        spec_err_at(c, "bias", "must be false: %s", msg);
    spec_ptr_pop(c, m2);
    m2 = spec_ptr_push_index(c, 1);
    if (l[1].kind != BASIN_LAYER_ACTIVATION || l[1].act != BASIN_ACT_RELU)
        spec_err(c, "%s", msg);
    spec_ptr_pop(c, m2);
    m2 = spec_ptr_push_index(c, 2);
    if (l[2].kind != BASIN_LAYER_SUM)
        spec_err_at(c, "type", "%s", msg);
    spec_ptr_pop(c, m2);
    if (l[0].kind != BASIN_LAYER_DENSE || l[0].bias || l[1].kind != BASIN_LAYER_ACTIVATION ||
        l[1].act != BASIN_ACT_RELU || l[2].kind != BASIN_LAYER_SUM)
        rc = BASIN_EINVAL;
done:
    spec_ptr_pop(c, mark);
    return rc;
}

static int check_teacher_gaussian(struct spec_ctx *c, const struct spec_experiment *exp,
                                  size_t out_dim)
{
    int rc = check_student(c, exp->arch);
    if (exp->loss.kind != BASIN_LOSS_SQUARED) {
        spec_err_at(c, "loss", "teacher_gaussian datasets use the squared population risk");
        rc = BASIN_EINVAL;
    }
    if (rc == BASIN_OK && out_dim != 1) {
        spec_err_at(c, "architecture", "teacher_gaussian needs a scalar output; it has %zu",
                    out_dim);
        rc = BASIN_EINVAL;
    }
    if (exp->train.optim.batch != 0) {
        size_t mark = spec_ptr_push(c, "optimizer");
        spec_err_at(c, "batch", "teacher_gaussian has no samples to batch (population risk)");
        spec_ptr_pop(c, mark);
        rc = BASIN_EINVAL;
    }
    if (exp->max_batch != 0) {
        spec_err_at(c, "max_batch", "teacher_gaussian has no samples to batch");
        rc = BASIN_EINVAL;
    }
    return rc;
}

/* The training workspace holds every layer's output for the samples evaluated at once (the
 * whole dataset unless max_batch says otherwise): rows × activations ≤ max_batch_activations.
 * max_batch only chunks the evaluation, so lowering it is always a way out. */
static int check_workspace(struct spec_ctx *c, const struct spec_experiment *exp)
{
    const basin_dataset *ds = exp->dataset->data;
    if (ds == NULL) /* teacher_gaussian: a closed form, no samples */
        return BASIN_OK;
    size_t rows = exp->max_batch > 0 && exp->max_batch < ds->n ? exp->max_batch : ds->n;
    size_t per = spec_net_activations(exp->arch->net), values;
    size_t limit = c->lim->max_batch_activations;
    if (basin_mul_size(rows, per, &values) == BASIN_OK && values <= limit)
        return BASIN_OK;
    if (per > limit) {
        spec_err_at(c, "architecture",
                    "computes %zu values per sample; evaluating even one sample exceeds the limit "
                    "of %zu values evaluated at once",
                    per, limit);
    } else {
        spec_err_at(c, "max_batch",
                    "evaluating %zu samples at once × %zu values per sample exceeds the limit of "
                    "%zu; set max_batch ≤ %zu",
                    rows, per, limit, limit / per);
    }
    return BASIN_EINVAL;
}

static int check_compat(struct spec_ctx *c, const struct spec_experiment *exp)
{
    const struct spec_dataset *ds = exp->dataset;
    const struct spec_arch *arch = exp->arch;
    size_t out_dim = basin_net_out_dim(arch->net);
    size_t params = basin_net_param_count(arch->net);
    int rc = BASIN_OK;

    if (check_shapes(c, ds, arch) != BASIN_OK)
        rc = BASIN_EINVAL;
    if (check_loss_outputs(c, &exp->loss, out_dim) != BASIN_OK) {
        rc = BASIN_EINVAL;
    } else if (ds->data != NULL) {
        if (check_targets(c, ds, &exp->loss, out_dim) != BASIN_OK)
            rc = BASIN_EINVAL;
    }
    if (ds->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        if (check_teacher_gaussian(c, exp, out_dim) != BASIN_OK)
            rc = BASIN_EINVAL;
    } else if (ds->data != NULL && exp->train.optim.batch > ds->data->n) {
        size_t mark = spec_ptr_push(c, "optimizer");
        spec_err_at(c, "batch", "must be ≤ the number of samples (%zu)", ds->data->n);
        spec_ptr_pop(c, mark);
        rc = BASIN_EINVAL;
    }
    if (check_workspace(c, exp) != BASIN_OK)
        rc = BASIN_EINVAL;
    if (exp->train.init.kind == BASIN_INIT_GIVEN && exp->given_len != params) {
        size_t mark = spec_ptr_push(c, "init");
        spec_err_at(c, "params", "must have %zu values (the architecture's param_count); got %zu",
                    params, exp->given_len);
        spec_ptr_pop(c, mark);
        rc = BASIN_EINVAL;
    }
    return rc;
}

int spec_experiment_check_compat(const struct spec_experiment *exp, const struct limits *lim,
                                 struct spec_errors *errs)
{
    struct limits dl;
    if (lim == NULL) {
        limits_defaults(&dl);
        lim = &dl;
    }
    if (exp->dataset == NULL || exp->arch == NULL)
        return BASIN_EINVAL;
    struct spec_ctx c;
    spec_ctx_init(&c, lim, errs);
    int rc = check_compat(&c, exp);
    if (c.oom)
        rc = BASIN_ENOMEM;
    return rc;
}

/* The core's own checks, as a backstop: the parser should have caught everything already. */
static int core_checks(struct spec_ctx *c, const struct spec_experiment *exp)
{
    if (basin_optim_check(&exp->train.optim) != BASIN_OK) {
        spec_err_at(c, "optimizer", "rejected by the optimizer");
        return BASIN_EINVAL;
    }
    if (basin_train_check(&exp->train) != BASIN_OK) {
        spec_err(c, "training settings rejected by the trainer");
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

int spec_experiment_parse(const json_t *body, const struct limits *lim,
                          struct spec_experiment **out, struct spec_errors *errs)
{
    struct limits dl;
    struct spec_ctx c;
    struct spec_experiment *exp = NULL;
    int rc = BASIN_OK, compat_ready = 0;

    *out = NULL;
    if (lim == NULL) {
        limits_defaults(&dl);
        lim = &dl;
    }
    spec_ctx_init(&c, lim, errs);
    size_t errors_before = spec_err_count(&c);
    if (!json_is_object(body)) {
        spec_err(&c, "must be a JSON object");
        rc = BASIN_EINVAL;
        goto done;
    }
    exp = basin_calloc(1, sizeof *exp);
    if (exp == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    spec_check_keys(&c, body, experiment_keys, NULL);
    parse_sections(&c, body, exp, &compat_ready);
    if (compat_ready && !c.oom)
        check_compat(&c, exp);
    if (spec_err_count(&c) == errors_before && !c.oom)
        core_checks(&c, exp);
    if (c.oom)
        rc = BASIN_ENOMEM;
    else if (spec_err_count(&c) != errors_before)
        rc = BASIN_EINVAL;
done:
    if (rc == BASIN_OK)
        *out = exp;
    else
        spec_experiment_free(exp);
    return rc;
}

int spec_experiment_parse_text(const char *text, size_t len, const struct limits *lim,
                               struct spec_experiment **out, struct spec_errors *errs)
{
    struct limits dl;
    struct spec_ctx c;
    json_error_t jerr;
    json_t *body = NULL;
    int rc;

    *out = NULL;
    if (lim == NULL) {
        limits_defaults(&dl);
        lim = &dl;
    }
    spec_ctx_init(&c, lim, errs);
    if (len > lim->max_body_bytes) {
        spec_err(&c, "the spec has %zu bytes; the limit is %zu", len, lim->max_body_bytes);
        rc = c.oom ? BASIN_ENOMEM : BASIN_EINVAL;
        goto done;
    }
    body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        spec_err(&c, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        rc = c.oom ? BASIN_ENOMEM : BASIN_EINVAL;
        goto done;
    }
    rc = spec_experiment_parse(body, lim, out, errs);
done:
    json_decref(body);
    return rc;
}

/* ---- canonical JSON ---- */

json_t *spec_experiment_to_json(const struct spec_experiment *exp)
{
    const basin_train_spec *t = &exp->train;
    json_t *o = json_object();
    int ok = o != NULL;
    if (exp->dataset != NULL)
        spec_set(o, "dataset", spec_dataset_to_json(exp->dataset), &ok);
    else
        spec_set(o, "dataset_id", json_string(exp->dataset_id ? exp->dataset_id : ""), &ok);
    if (exp->arch != NULL)
        spec_set(o, "architecture", spec_arch_to_json(exp->arch), &ok);
    else
        spec_set(o, "architecture_id",
                 json_string(exp->architecture_id ? exp->architecture_id : ""), &ok);
    spec_set(o, "loss", spec_loss_to_json(&exp->loss), &ok);
    spec_set(o, "l2", json_real(exp->l2), &ok);
    spec_set(o, "optimizer", spec_optimizer_to_json(&t->optim), &ok);
    spec_set(o, "init", spec_init_to_json(&t->init), &ok);
    spec_set(o, "restarts", json_integer((json_int_t)exp->restarts), &ok);
    spec_set(o, "seed", json_integer((json_int_t)t->seed), &ok);
    spec_set(o, "max_steps", json_integer((json_int_t)t->max_steps), &ok);
    spec_set(o, "stop", spec_stop_to_json(t), &ok);
    spec_set(o, "trajectory_every", json_integer((json_int_t)t->trajectory_every), &ok);
    if (exp->max_batch > 0)
        spec_set(o, "max_batch", json_integer((json_int_t)exp->max_batch), &ok);
    if (exp->certify != NULL)
        spec_set(o, "certify", json_deep_copy(exp->certify), &ok);
    else
        spec_set(o, "certify", spec_certify_to_json(&exp->certify_opts), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
