/* The published limits of basinlab: the largest request the service (and the offline CLI)
 * accepts. The spec parser checks every user-supplied size against these BEFORE it allocates
 * anything proportional to it; GET /v1/limits publishes them so that clients can check first.
 * The values are deliberately below the core's hard limits (BASIN_NET_MAX_*), which exist to
 * keep arithmetic safe, not to keep a shared server responsive. */
#ifndef BASINLAB_LIMITS_H
#define BASINLAB_LIMITS_H

#include <stddef.h>

#include <jansson.h>

struct limits {
    size_t max_body_bytes;        /* request body / spec file size */
    size_t max_points;            /* samples in a dataset (n) */
    size_t max_input_dim;         /* values per input (product of input_shape), also per target */
    size_t max_dataset_values;    /* n · input_dim */
    size_t max_layers;            /* layers of one architecture */
    size_t max_width;             /* units of a dense layer, filters of a conv layer, kernel, ... */
    size_t max_params;            /* parameters of one network */
    size_t max_restarts;          /* runs of one experiment */
    size_t max_steps;             /* optimizer steps of one run */
    size_t max_trajectory_points; /* trajectory points stored per run */
    size_t max_classes;           /* classes of a classification dataset */
    size_t max_activations;       /* values one sample produces in a network: Σ layer outputs */
    size_t max_batch_activations; /* samples evaluated at once × max_activations of the net */
    size_t max_teacher_work;      /* k² · d of a teacher_gaussian dataset (its setup cost) */
    size_t max_generator_work;    /* n × the teacher's multiply-adds per sample ("teacher"
                                     generator) */
    double rate_limit_rps;        /* requests per second per client (--rate-limit); 0 = none */
    size_t rate_limit_burst;      /* requests at once per client; 0 when there is no limit */
};

/* The defaults (documented in limits.c). */
void limits_defaults(struct limits *out);

/* {"max_body_bytes": ..., ...} with every field above, the rate limit as "rate_limit":
 * {"requests_per_second", "burst"} or null; NULL when out of memory. */
json_t *limits_to_json(const struct limits *lim);

#endif
