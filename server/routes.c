/* The route table of the v1 API: every handler of handlers.h with its method, path pattern
 * and body kind. Literal routes come before parameterised ones (router.h: first match wins). */
#include "handlers.h"

const struct route basinlab_routes[] = {
    {"GET", "/healthz", h_healthz, ROUTE_BODY_NONE},
    {"GET", "/readyz", h_readyz, ROUTE_BODY_NONE},
    {"GET", "/metrics", h_metrics, ROUTE_BODY_NONE},
    {"GET", "/v1/limits", h_limits, ROUTE_BODY_NONE},
    {"GET", "/openapi.yaml", h_openapi, ROUTE_BODY_NONE},

    {"POST", "/v1/datasets", h_datasets_create, ROUTE_BODY_CSV_OR_JSON},
    {"GET", "/v1/datasets", h_datasets_list, ROUTE_BODY_NONE},
    {"GET", "/v1/datasets/{id}", h_datasets_get, ROUTE_BODY_NONE},
    {"DELETE", "/v1/datasets/{id}", h_datasets_delete, ROUTE_BODY_NONE},
    {"GET", "/v1/datasets/{id}/points", h_datasets_points, ROUTE_BODY_NONE},

    {"POST", "/v1/architectures", h_architectures_create, ROUTE_BODY_JSON},
    {"GET", "/v1/architectures", h_architectures_list, ROUTE_BODY_NONE},
    {"GET", "/v1/architectures/{id}", h_architectures_get, ROUTE_BODY_NONE},
    {"DELETE", "/v1/architectures/{id}", h_architectures_delete, ROUTE_BODY_NONE},

    {"POST", "/v1/experiments", h_experiments_create, ROUTE_BODY_JSON},
    {"GET", "/v1/experiments", h_experiments_list, ROUTE_BODY_NONE},
    {"GET", "/v1/experiments/{id}", h_experiments_get, ROUTE_BODY_NONE},
    {"DELETE", "/v1/experiments/{id}", h_experiments_delete, ROUTE_BODY_NONE},
    {"POST", "/v1/experiments/{id}/cancel", h_experiments_cancel, ROUTE_BODY_NONE},
    {"GET", "/v1/experiments/{id}/runs", h_experiments_runs, ROUTE_BODY_NONE},
    {"GET", "/v1/experiments/{id}/events", h_experiments_events, ROUTE_STREAM},
    {"GET", "/v1/experiments/{id}/basins", h_experiments_basins, ROUTE_BODY_NONE},
    {"GET", "/v1/experiments/{id}/basins/{index}/members", h_experiments_basin_members,
     ROUTE_BODY_NONE},

    {"GET", "/v1/runs/{id}", h_runs_get, ROUTE_BODY_NONE},
    {"GET", "/v1/runs/{id}/function", h_runs_function, ROUTE_BODY_NONE},
    {"GET", "/v1/runs/{id}/trajectory", h_runs_trajectory, ROUTE_BODY_NONE},
    {"GET", "/v1/runs/{id}/params", h_runs_params, ROUTE_BODY_NONE},

    {"GET", "/v1/compare", h_compare, ROUTE_BODY_NONE},

    {"POST", "/v1/constructions", h_constructions_create, ROUTE_BODY_JSON},
    {"POST", "/v1/evaluations", h_evaluations_create, ROUTE_BODY_JSON},

    /* the dashboard (h_static.c): last, so that every API path above wins */
    {"GET", "/", h_static_index, ROUTE_BODY_NONE},
    {"GET", "/js/{file}", h_static_file, ROUTE_BODY_NONE},
    {"GET", "/vendor/{file}", h_static_file, ROUTE_BODY_NONE},
    {"GET", "/{file}", h_static_file, ROUTE_BODY_NONE},
};

const size_t basinlab_route_count = sizeof basinlab_routes / sizeof basinlab_routes[0];
