/* The backend-independent part of the store (store.h): store_open's choice of backend, names of
 * codes and enums, record destructors, opaque cursors and little-endian packing used by every
 * backend. */
#include "store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *store_strerror(int rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_ECONFLICT:
        return "conflict with the current state";
    case STORE_EBUSY:
        return "database busy";
    case STORE_EFULL:
        return "database or disk full";
    case STORE_EIO:
        return "database I/O error";
    case STORE_ECORRUPT:
        return "database corrupt";
    case STORE_ETOONEW:
        return "database schema newer than this binary";
    case STORE_EINVAL:
        return "invalid argument";
    case STORE_ENOMEM:
        return "out of memory";
    case STORE_EINTERNAL:
        return "internal database error";
    default:
        return "unknown store error";
    }
}

int store_http_status(int rc)
{
    switch (rc) {
    case STORE_OK:
        return 200;
    case STORE_ENOTFOUND:
        return 404;
    case STORE_ECONFLICT:
        return 409;
    case STORE_EINVAL:
        return 400;
    case STORE_EBUSY:
    case STORE_EFULL:
    case STORE_EIO: /* the disk refused a read or write: the request may succeed later */
        return 503;
    default:
        return 500;
    }
}

static const char *const exp_status_names[STORE_EXP_STATUS_COUNT] = {"queued", "running",
                                                                     "finished", "cancelled"};
static const char *const run_status_names[STORE_RUN_STATUS_COUNT] = {
    "queued", "running", "finished", "failed", "cancelled"};
static const char *const origin_names[] = {"trained", "construction", "imported"};

const char *store_exp_status_name(enum store_exp_status s)
{
    return (unsigned)s < STORE_EXP_STATUS_COUNT ? exp_status_names[s] : "unknown";
}

const char *store_run_status_name(enum store_run_status s)
{
    return (unsigned)s < STORE_RUN_STATUS_COUNT ? run_status_names[s] : "unknown";
}

const char *store_run_origin_name(enum store_run_origin o)
{
    return (unsigned)o < sizeof origin_names / sizeof origin_names[0] ? origin_names[o] : "unknown";
}

int store_exp_status_parse(const char *name, enum store_exp_status *out)
{
    int i;
    for (i = 0; name && i < STORE_EXP_STATUS_COUNT; i++) {
        if (strcmp(name, exp_status_names[i]) == 0) {
            *out = (enum store_exp_status)i;
            return STORE_OK;
        }
    }
    return STORE_EINVAL;
}

int store_run_status_parse(const char *name, enum store_run_status *out)
{
    int i;
    for (i = 0; name && i < STORE_RUN_STATUS_COUNT; i++) {
        if (strcmp(name, run_status_names[i]) == 0) {
            *out = (enum store_run_status)i;
            return STORE_OK;
        }
    }
    return STORE_EINVAL;
}

int store_open(const char *location, const struct store_options *opt, struct store **out, char *err,
               size_t errcap)
{
    static const char sqlite_scheme[] = "sqlite:";

    *out = NULL;
    if (!location || !*location) {
        if (err && errcap)
            snprintf(err, errcap, "no store location given");
        return STORE_EINVAL;
    }
    if (strncmp(location, "postgres://", 11) == 0 || strncmp(location, "postgresql://", 13) == 0)
        return store__pg_open(location, opt, out, err, errcap);
    if (strncmp(location, sqlite_scheme, sizeof sqlite_scheme - 1) == 0)
        location += sizeof sqlite_scheme - 1;
    return store__sqlite_open(location, opt, out, err, errcap);
}

/* ---- small helpers ---- */

int64_t store__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store__strdup(const char *s, char **out)
{
    size_t len;
    *out = NULL;
    if (!s)
        return STORE_OK;
    len = strlen(s) + 1;
    *out = malloc(len);
    if (!*out)
        return STORE_ENOMEM;
    memcpy(*out, s, len);
    return STORE_OK;
}

int store__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return STORE_EINVAL;
    *out = a * b;
    return STORE_OK;
}

int store__copy_id(char dst[STORE_ID_SIZE], const char *src)
{
    size_t len;
    if (!src)
        return STORE_EINVAL;
    len = strlen(src);
    if (len == 0 || len >= STORE_ID_SIZE)
        return STORE_EINVAL;
    memcpy(dst, src, len + 1);
    return STORE_OK;
}

/* ---- cursors ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

int store__cursor_encode(const char *tag, const int64_t *vals, size_t n,
                         char out[STORE_CURSOR_SIZE])
{
    char plain[STORE_CURSOR_SIZE];
    size_t len, i, o = 0;
    int w;

    w = snprintf(plain, sizeof plain, "%s", tag);
    if (w < 0 || (size_t)w >= sizeof plain)
        return STORE_EINVAL;
    len = (size_t)w;
    for (i = 0; i < n; i++) {
        w = snprintf(plain + len, sizeof plain - len, ".%" PRId64, vals[i]);
        if (w < 0 || (size_t)w >= sizeof plain - len)
            return STORE_EINVAL;
        len += (size_t)w;
    }
    /* 4 output characters per 3 input bytes must fit with the NUL. */
    if ((len + 2) / 3 * 4 + 1 > STORE_CURSOR_SIZE)
        return STORE_EINVAL;
    for (i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)plain[i] << 16;
        size_t rem = len - i;
        if (rem > 1)
            v |= (unsigned char)plain[i + 1] << 8;
        if (rem > 2)
            v |= (unsigned char)plain[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (rem > 1)
            out[o++] = b64url[(v >> 6) & 63];
        if (rem > 2)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return STORE_OK;
}

int store__cursor_decode(const char *cursor, const char *tag, int64_t *vals, size_t n)
{
    char plain[STORE_CURSOR_SIZE];
    size_t len, i, o = 0, taglen, k;
    const char *p;
    unsigned bits = 0;
    int nbits = 0;

    if (!cursor)
        return STORE_EINVAL;
    len = strlen(cursor);
    if (len == 0 || len >= STORE_CURSOR_SIZE || len % 4 == 1)
        return STORE_EINVAL;
    for (i = 0; i < len; i++) {
        int v = b64url_value(cursor[i]);
        if (v < 0)
            return STORE_EINVAL;
        bits = (bits << 6) | (unsigned)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            plain[o++] = (char)((bits >> nbits) & 0xff);
        }
    }
    /* Leftover bits must be zero, so every cursor has exactly one spelling. */
    if (bits & ((1u << nbits) - 1))
        return STORE_EINVAL;
    plain[o] = '\0';
    if (memchr(plain, '\0', o))
        return STORE_EINVAL;
    taglen = strlen(tag);
    if (strncmp(plain, tag, taglen) != 0)
        return STORE_EINVAL;
    p = plain + taglen;
    for (k = 0; k < n; k++) {
        char *end;
        long long v;
        if (*p != '.' || !(p[1] == '-' || (p[1] >= '0' && p[1] <= '9')))
            return STORE_EINVAL;
        errno = 0;
        v = strtoll(p + 1, &end, 10);
        if (errno != 0 || end == p + 1)
            return STORE_EINVAL;
        vals[k] = (int64_t)v;
        p = end;
    }
    return *p == '\0' ? STORE_OK : STORE_EINVAL;
}

/* ---- little-endian float64 ---- */

void store__put_f64le(unsigned char *p, double v)
{
    uint64_t u;
    int i;
    memcpy(&u, &v, sizeof u);
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

double store__get_f64le(const unsigned char *p)
{
    uint64_t u = 0;
    double v;
    int i;
    for (i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    memcpy(&v, &u, sizeof v);
    return v;
}

void store__pack_points(const struct store_traj_point *pts, size_t n, unsigned char *out)
{
    size_t i;
    for (i = 0; i < n; i++, out += 32) {
        store__put_f64le(out, (double)pts[i].step);
        store__put_f64le(out + 8, pts[i].risk);
        store__put_f64le(out + 16, pts[i].grad_norm);
        store__put_f64le(out + 24, pts[i].param_norm);
    }
}

void store__unpack_points(const unsigned char *in, size_t n, struct store_traj_point *pts)
{
    size_t i;
    for (i = 0; i < n; i++, in += 32) {
        pts[i].step = (int64_t)store__get_f64le(in);
        pts[i].risk = store__get_f64le(in + 8);
        pts[i].grad_norm = store__get_f64le(in + 16);
        pts[i].param_norm = store__get_f64le(in + 24);
    }
}

/* ---- destructors ---- */

void store__dataset_clear(struct store_dataset *d)
{
    free(d->name);
    free(d->kind);
    free(d->task);
    free(d->x);
    free(d->y);
    json_decref(d->spec);
    json_decref(d->input_shape);
    json_decref(d->linear_fit);
    memset(d, 0, sizeof *d);
}

void store__architecture_clear(struct store_architecture *a)
{
    free(a->name);
    json_decref(a->spec);
    memset(a, 0, sizeof *a);
}

void store__experiment_clear(struct store_experiment *e)
{
    json_decref(e->spec);
    json_decref(e->summary);
    free(e->idempotency_key);
    memset(e, 0, sizeof *e);
}

void store__run_clear(struct store_run *r)
{
    free(r->stop_reason);
    json_decref(r->verdict);
    free(r->verdict_label);
    free(r->error);
    free(r->claimed_by);
    memset(r, 0, sizeof *r);
}

void store_dataset_free(struct store_dataset *d)
{
    if (!d)
        return;
    store__dataset_clear(d);
    free(d);
}

void store_architecture_free(struct store_architecture *a)
{
    if (!a)
        return;
    store__architecture_clear(a);
    free(a);
}

void store_experiment_free(struct store_experiment *e)
{
    if (!e)
        return;
    store__experiment_clear(e);
    free(e);
}

void store_run_free(struct store_run *r)
{
    if (!r)
        return;
    store__run_clear(r);
    free(r);
}

void store_claim_free(struct store_claim *c)
{
    if (!c)
        return;
    json_decref(c->spec);
    free(c->runs);
    free(c);
}

void store_dataset_list_free(struct store_dataset_list *l)
{
    size_t i;
    if (!l)
        return;
    for (i = 0; i < l->n; i++)
        store__dataset_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void store_architecture_list_free(struct store_architecture_list *l)
{
    size_t i;
    if (!l)
        return;
    for (i = 0; i < l->n; i++)
        store__architecture_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void store_experiment_list_free(struct store_experiment_list *l)
{
    size_t i;
    if (!l)
        return;
    for (i = 0; i < l->n; i++)
        store__experiment_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void store_run_list_free(struct store_run_list *l)
{
    size_t i;
    if (!l)
        return;
    for (i = 0; i < l->n; i++)
        store__run_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void store_event_list_free(struct store_event_list *l)
{
    size_t i;
    if (!l)
        return;
    for (i = 0; i < l->n; i++)
        json_decref(l->items[i].data);
    free(l->items);
    free(l);
}
