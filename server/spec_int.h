/* Private helpers shared by the spec parser files (spec.c, spec_dataset.c, spec_arch.c,
 * spec_train.c): the parse context with the current JSON Pointer, error recording and typed
 * field readers that record a precise error themselves (Redis's ...OrReply pattern: a caller
 * reads `if (spec_get_size(...) != BASIN_OK) ok = 0;` and moves on to the next field, so that
 * every error in a body is reported, not only the first). */
#ifndef BASINLAB_SPEC_INT_H
#define BASINLAB_SPEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "limits.h"
#include "spec.h"

#if defined(__GNUC__) || defined(__clang__)
#define SPEC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPEC_PRINTF(f, a)
#endif

#define SPEC_PTR_MAX 512

struct spec_ctx {
    const struct limits *lim;
    struct spec_errors *errs;
    int oom;                /* an allocation failed: the parse ends with BASIN_ENOMEM */
    char ptr[SPEC_PTR_MAX]; /* the JSON Pointer of the value being read */
    size_t len;
};

void spec_ctx_init(struct spec_ctx *c, const struct limits *lim, struct spec_errors *errs);

/* Descend into member `key` / element `index`; return a mark for spec_ptr_pop. */
size_t spec_ptr_push(struct spec_ctx *c, const char *key);
size_t spec_ptr_push_index(struct spec_ctx *c, size_t index);
void spec_ptr_pop(struct spec_ctx *c, size_t mark);

/* Record an error at the current pointer, or at its member `key`. */
void spec_err(struct spec_ctx *c, const char *fmt, ...) SPEC_PRINTF(2, 3);
void spec_err_at(struct spec_ctx *c, const char *key, const char *fmt, ...) SPEC_PRINTF(3, 4);
/* Errors recorded so far (to tell whether a section added any). */
size_t spec_err_count(const struct spec_ctx *c);

/* Every member of obj must be in the NULL-terminated list `allowed`; each other member is an
 * error "unknown field" (with " for <what>" when what != NULL). BASIN_EINVAL if any. */
int spec_check_keys(struct spec_ctx *c, const json_t *obj, const char *const *allowed,
                    const char *what);

/* Typed readers of member `key` of obj. A missing member gives the default (or the error
 * "required" when required); a present member of the wrong type or out of range records an
 * error and returns BASIN_EINVAL. */
int spec_get_size(struct spec_ctx *c, const json_t *obj, const char *key, int required, size_t min,
                  size_t max, size_t dflt, size_t *out);
int spec_get_u64(struct spec_ctx *c, const json_t *obj, const char *key, uint64_t dflt,
                 uint64_t *out);

enum spec_num_rule {
    SPEC_NUM_FINITE,   /* any finite number */
    SPEC_NUM_POSITIVE, /* > 0 */
    SPEC_NUM_NONNEG,   /* ≥ 0 */
    SPEC_NUM_UNIT      /* in [0, 1) */
};
int spec_get_num(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                 enum spec_num_rule rule, double dflt, double *out);
int spec_get_bool(struct spec_ctx *c, const json_t *obj, const char *key, int dflt, int *out);
/* A string member (*out borrowed from obj; dflt when missing and not required). */
int spec_get_string(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                    const char *dflt, const char **out);
/* A member whose value must be one of names[0..n); *out = its index. */
int spec_get_enum(struct spec_ctx *c, const json_t *obj, const char *key, int required,
                  const char *const *names, size_t n, size_t dflt, size_t *out);
/* A value (not a member) as a size, for array elements and shapes. */
int spec_value_size(struct spec_ctx *c, const json_t *v, size_t min, size_t max, size_t *out);
/* Duplicate an optional "name" string member into *out (NULL when absent). */
int spec_get_name(struct spec_ctx *c, const json_t *obj, char **out);

/* An input_shape array: [d] or [c,h,w] of positive integers, each ≤ max, product ≤ max. */
int spec_get_shape(struct spec_ctx *c, const json_t *obj, const char *key, size_t max, size_t *rank,
                   size_t shape[3], int *present);

/* Sections (pointers relative to c's current pointer, which must point at the object). */
int spec_dataset_parse_at(struct spec_ctx *c, const json_t *v, struct spec_dataset **out);
/* default_rank 0: input_shape required; SPEC_SHAPE_UNKNOWN: the default would come from a
 * dataset that failed to parse, so a missing input_shape is not reported again (the layers are
 * still checked, the net is not built and the result is BASIN_EINVAL); else input_shape defaults
 * to default_shape. */
#define SPEC_SHAPE_UNKNOWN ((size_t)-1)
int spec_arch_parse_at(struct spec_ctx *c, const json_t *v, size_t default_rank,
                       const size_t *default_shape, struct spec_arch **out);
int spec_loss_parse_at(struct spec_ctx *c, const json_t *v, basin_loss *out);
int spec_optimizer_parse_at(struct spec_ctx *c, const json_t *v, size_t max_steps,
                            basin_optim_spec *out);
int spec_init_parse_at(struct spec_ctx *c, const json_t *v, struct spec_experiment *exp);
int spec_stop_parse_at(struct spec_ctx *c, const json_t *v, size_t max_steps,
                       basin_train_spec *out);
/* "certify" (spec_certify.c); v NULL gives the defaults. */
int spec_certify_parse_at(struct spec_ctx *c, const json_t *v, struct spec_certify *out);

/* The values one sample produces in net: the sum of every layer's output size (what
 * max_activations bounds; the evaluation workspace holds a few copies of it per sample).
 * Saturates at SIZE_MAX. */
size_t spec_net_activations(const basin_net *net);
/* The multiply-adds of one sample's forward pass — a dense layer's weights, a conv layer's
 * weights times its output positions — plus one per value produced. Saturates at SIZE_MAX. */
size_t spec_net_forward_work(const basin_net *net);

/* Serialisation helpers: a finite double, or null for NaN/±inf (which JSON cannot carry). */
json_t *spec_json_num(double v);
json_t *spec_json_shape(size_t rank, const size_t *shape);
json_t *spec_loss_to_json(const basin_loss *loss);
json_t *spec_optimizer_to_json(const basin_optim_spec *o);
json_t *spec_init_to_json(const basin_init *init);
json_t *spec_stop_to_json(const basin_train_spec *t);
/* json_object_set_new that tolerates a NULL value and reports failure: *ok = 0. */
void spec_set(json_t *obj, const char *key, json_t *value, int *ok);
void spec_append(json_t *arr, json_t *value, int *ok);

#endif
