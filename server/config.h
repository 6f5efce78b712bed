/* The settings of `basinlab serve` (and `basinlab worker`): command-line flags and their
 * environment variables (BASINLAB_PORT, BASINLAB_DB or BASINLAB_STORE, BASINLAB_WORKERS,
 * BASINLAB_BIND, BASINLAB_MAX_QUEUED_RUNS, BASINLAB_MAX_RUN_SECONDS, BASINLAB_WEB,
 * BASINLAB_TRAIN, BASINLAB_LEASE_TIMEOUT, BASINLAB_AUTH, BASINLAB_CORS_ORIGINS,
 * BASINLAB_RATE_LIMIT, BASINLAB_PUBLIC_HEALTH). The environment is read first and flags
 * override it, so a container can set defaults that a command line still wins over. Values are
 * validated strictly (whole string, range); a bad one is a usage error naming the flag or variable.
 */
#ifndef BASINLAB_CONFIG_H
#define BASINLAB_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PORT 8080
#define CONFIG_DEFAULT_DB "./basinlab.db"
#define CONFIG_DEFAULT_BIND "127.0.0.1"
#define CONFIG_DEFAULT_MAX_QUEUED_RUNS 1000000
#define CONFIG_MAX_WORKERS 256

/* --auth: who may call the API (auth.h). */
enum config_auth { CONFIG_AUTH_NONE, CONFIG_AUTH_TOKENS };
#define CONFIG_DEFAULT_LEASE_TIMEOUT 30.0 /* seconds */
#define CONFIG_MIN_LEASE_TIMEOUT 2.0      /* twice the workers' 1 s heartbeat */

struct serve_config {
    const char *bind;          /* numeric IPv4/IPv6 address (borrowed from argv or environ) */
    unsigned port;             /* 0 = an ephemeral port */
    const char *db;            /* store location: a path or "sqlite:PATH" */
    unsigned workers;          /* worker threads; 0 = one per core */
    size_t max_queued_runs;    /* submissions that would queue more runs get 429; 0 = no bound */
    double max_run_seconds;    /* wall-clock budget of one run; 0 = none */
    const char *web_root;      /* dashboard directory; NULL = none */
    enum config_auth auth;     /* --auth none (default) | tokens */
    const char *cors_origins;  /* comma-separated exact origins (cors.h); NULL = no CORS */
    double rate_limit_rps;     /* requests per second per client (ratelimit.h); 0 = no limit */
    unsigned rate_limit_burst; /* the bucket size; ≥ 1 when rate_limit_rps > 0 */
    int public_health;         /* 1: /metrics needs no token either (healthz/readyz never do) */
    unsigned train;            /* 1: run the worker pool here; 0: API only (separate workers) */
    double lease_timeout;      /* shared stores: a run unheard of this long is requeued (seconds) */
    size_t batch;              /* runs a training thread claims at once; 0 = the pool's default */
};

/* Looks up an environment variable (getenv in production, a table in tests). */
typedef const char *(*config_env_fn)(const char *name);

void config_defaults(struct serve_config *cfg);

/* Fill cfg from the defaults, then env (may be NULL), then argv[1..argc) (argv[0] is the
 * sub-command name). Returns 0, or BASIN_EINVAL with a one-line reason in err (errcap > 0).
 * *help = 1 when -h/--help was given (nothing else is checked after it). */
int config_load(struct serve_config *cfg, int argc, char **argv, config_env_fn env, int *help,
                char *err, size_t errcap);

/* The flags and variables, for `basinlab serve --help`. */
void config_usage(FILE *out);

#endif
