/* The default published limits (limits.h) and their JSON form for GET /v1/limits.
 *
 * Sizing: a dataset of max_dataset_values doubles is 80 MB; a network of max_params parameters
 * is 80 MB per θ, and a worker holds a few such vectors (θ, gradient, optimizer state). The body
 * cap lets an inline dataset of a few hundred thousand values through; larger data should be
 * generated server-side or uploaded as CSV within the same cap. max_width equals the core's
 * BASIN_NET_MAX_WIDTH; max_params is what actually bounds the memory of a network's
 * parameters, max_activations and max_batch_activations that of its evaluation workspace: a
 * conv layer with few parameters but a huge padding or input still produces huge feature maps,
 * and the workspace holds a few copies (values and R-values, errors) of every layer's output for
 * each sample evaluated at once. 2^26 values are 512 MiB per copy.
 *
 * Work done while a request is parsed, on the HTTP thread, is bounded too: a teacher_gaussian
 * dataset's setup computes k² kernel values of d-vectors (k² · d; 10^8 is well under a second),
 * and the "teacher" generator runs the teacher on every sample (n × its multiply-adds per
 * sample; 10^9 is about a second of BLAS). */
#include "limits.h"

void limits_defaults(struct limits *out)
{
    out->max_body_bytes = (size_t)32 << 20;
    out->max_points = 100000;
    out->max_input_dim = 16384;
    out->max_dataset_values = 10000000;
    out->max_layers = 64;
    out->max_width = 65536;
    out->max_params = 10000000;
    out->max_restarts = 10000;
    out->max_steps = 10000000;
    out->max_trajectory_points = 10000;
    out->max_classes = 1000;
    out->max_activations = (size_t)1 << 22;
    out->max_batch_activations = (size_t)1 << 26;
    out->max_teacher_work = 100000000;
    out->max_generator_work = 1000000000;
    out->rate_limit_rps = 0; /* serve.c sets it from --rate-limit */
    out->rate_limit_burst = 0;
}

json_t *limits_to_json(const struct limits *lim)
{
    json_t *rate = lim->rate_limit_rps > 0
                       ? json_pack("{s:f, s:I}", "requests_per_second", lim->rate_limit_rps,
                                   "burst", (json_int_t)lim->rate_limit_burst)
                       : json_null();
    json_t *out =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                  "max_body_bytes", (json_int_t)lim->max_body_bytes, "max_points",
                  (json_int_t)lim->max_points, "max_input_dim", (json_int_t)lim->max_input_dim,
                  "max_dataset_values", (json_int_t)lim->max_dataset_values, "max_layers",
                  (json_int_t)lim->max_layers, "max_width", (json_int_t)lim->max_width,
                  "max_params", (json_int_t)lim->max_params, "max_restarts",
                  (json_int_t)lim->max_restarts, "max_steps", (json_int_t)lim->max_steps,
                  "max_trajectory_points", (json_int_t)lim->max_trajectory_points, "max_classes",
                  (json_int_t)lim->max_classes, "max_activations", (json_int_t)lim->max_activations,
                  "max_batch_activations", (json_int_t)lim->max_batch_activations,
                  "max_teacher_work", (json_int_t)lim->max_teacher_work, "max_generator_work",
                  (json_int_t)lim->max_generator_work);
    if (out != NULL && (rate == NULL || json_object_set_new(out, "rate_limit", rate) != 0)) {
        json_decref(out);
        return NULL; /* set_new released rate */
    }
    if (out == NULL)
        json_decref(rate);
    return out;
}
