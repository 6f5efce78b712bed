/* Flags and environment of `basinlab serve` (config.h). Each setting is described once in a
 * table (flag, variable, kind, range), so the flag, the variable and the help text cannot drift
 * apart. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basin/status.h"
#include "cors.h"
#include "ratelimit.h"

enum setting_kind {
    SET_TEXT,
    SET_UINT,
    SET_SIZE,
    SET_SECONDS,
    SET_AUTH,
    SET_ORIGINS,
    SET_RATE,
    SET_BOOL
};

struct setting {
    const char *flag; /* "--port" */
    const char *env;  /* "BASINLAB_PORT" */
    enum setting_kind kind;
    unsigned long long min, max; /* integer range (SET_UINT, SET_SIZE) */
    const char *help;
};

static const struct setting settings[] = {
    {"--port", "BASINLAB_PORT", SET_UINT, 0, 65535, "TCP port (0 = any free port), default 8080"},
    {"--db", "BASINLAB_DB", SET_TEXT, 0, 0, "database file, default ./basinlab.db"},
    {"--store", "BASINLAB_STORE", SET_TEXT, 0, 0,
     "store location (same as --db): a SQLite file, sqlite:PATH or postgres://..."},
    {"--workers", "BASINLAB_WORKERS", SET_UINT, 0, CONFIG_MAX_WORKERS,
     "training threads, default one per core (0)"},
    {"--bind", "BASINLAB_BIND", SET_TEXT, 0, 0, "numeric address to listen on, default 127.0.0.1"},
    {"--max-queued-runs", "BASINLAB_MAX_QUEUED_RUNS", SET_SIZE, 0, (unsigned long long)SIZE_MAX,
     "queued runs above which submissions get 429 (0 = no bound), default 1000000"},
    {"--max-run-seconds", "BASINLAB_MAX_RUN_SECONDS", SET_SECONDS, 0, 0,
     "wall-clock budget of one run, else it fails (0 = none), default 0"},
    {"--web", "BASINLAB_WEB", SET_TEXT, 0, 0, "directory of the dashboard's files"},
    {"--auth", "BASINLAB_AUTH", SET_AUTH, 0, 0,
     "none (default) or tokens: Bearer tokens from `basinlab token create`"},
    {"--cors-origins", "BASINLAB_CORS_ORIGINS", SET_ORIGINS, 0, 0,
     "comma-separated exact origins allowed to call the API from a browser"},
    {"--rate-limit", "BASINLAB_RATE_LIMIT", SET_RATE, 0, 0,
     "RPS[:BURST] requests per second per client (0 = none), default none"},
    {"--public-health", "BASINLAB_PUBLIC_HEALTH", SET_BOOL, 0, 0,
     "with --auth tokens, also /metrics without a token (healthz, readyz always)"},
    {"--train", "BASINLAB_TRAIN", SET_UINT, 0, 1,
     "1: train runs in this process; 0: API only (basinlab worker trains), default 1"},
    {"--batch", "BASINLAB_BATCH", SET_SIZE, 1, 4096,
     "runs a training thread claims at once (1..4096), default 8"},
    {"--lease-timeout", "BASINLAB_LEASE_TIMEOUT", SET_SECONDS, 0, 0,
     "PostgreSQL: a run whose worker is silent this long is requeued (>= 2), default 30"},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

void config_defaults(struct serve_config *cfg)
{
    cfg->bind = CONFIG_DEFAULT_BIND;
    cfg->port = CONFIG_DEFAULT_PORT;
    cfg->db = CONFIG_DEFAULT_DB;
    cfg->workers = 0;
    cfg->max_queued_runs = CONFIG_DEFAULT_MAX_QUEUED_RUNS;
    cfg->max_run_seconds = 0;
    cfg->web_root = NULL;
    cfg->auth = CONFIG_AUTH_NONE;
    cfg->cors_origins = NULL;
    cfg->rate_limit_rps = 0;
    cfg->rate_limit_burst = 0;
    cfg->public_health = 0;
    cfg->train = 1;
    cfg->batch = 0;
    cfg->lease_timeout = CONFIG_DEFAULT_LEASE_TIMEOUT;
}

void config_usage(FILE *out)
{
    fputs("usage: basinlab serve [options]\n"
          "options (each also from its environment variable; flags win):\n",
          out);
    for (size_t i = 0; i < N_SETTINGS; i++)
        fprintf(out, "  %-18s %-26s %s\n", settings[i].flag, settings[i].env, settings[i].help);
}

static int fail(char *err, size_t errcap, const char *what, const char *value, const char *why)
{
    if (errcap > 0)
        snprintf(err, errcap, "%s: '%.64s' %s", what, value, why);
    return BASIN_EINVAL;
}

/* A whole decimal integer in [min, max]. */
static int parse_integer(const char *s, unsigned long long min, unsigned long long max,
                         unsigned long long *out)
{
    char *end = NULL;
    if (s[0] < '0' || s[0] > '9')
        return BASIN_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return BASIN_EINVAL;
    *out = v;
    return BASIN_OK;
}

/* The security settings: --auth, --cors-origins, --rate-limit, --public-health. */
static int apply_security(struct serve_config *cfg, const struct setting *s, const char *what,
                          const char *value, char *err, size_t errcap)
{
    char why[200];
    struct cors *cors = NULL;
    switch (s->kind) {
    case SET_AUTH:
        if (strcmp(value, "none") == 0)
            cfg->auth = CONFIG_AUTH_NONE;
        else if (strcmp(value, "tokens") == 0)
            cfg->auth = CONFIG_AUTH_TOKENS;
        else
            return fail(err, errcap, what, value, "is not none or tokens");
        return BASIN_OK;
    case SET_ORIGINS:
        if (cors_create(value, &cors, why, sizeof why) != BASIN_OK) {
            if (errcap > 0)
                snprintf(err, errcap, "%s: %s", what, why[0] ? why : "out of memory");
            return BASIN_EINVAL;
        }
        cors_free(cors);
        cfg->cors_origins = value;
        return BASIN_OK;
    case SET_RATE:
        if (strcmp(value, "0") == 0) {
            cfg->rate_limit_rps = 0;
            cfg->rate_limit_burst = 0;
        } else if (ratelimit_parse(value, &cfg->rate_limit_rps, &cfg->rate_limit_burst) !=
                   BASIN_OK) {
            return fail(err, errcap, what, value,
                        "is not RPS[:BURST] (RPS in [0.001, 1e6], BURST a whole number >= 1)");
        }
        return BASIN_OK;
    case SET_BOOL:
        if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
            cfg->public_health = 1;
        else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
            cfg->public_health = 0;
        else
            return fail(err, errcap, what, value, "is not 1, 0, true, false, yes or no");
        return BASIN_OK;
    default:
        return BASIN_EINVAL;
    }
}

static int apply(struct serve_config *cfg, const struct setting *s, const char *what,
                 const char *value, char *err, size_t errcap)
{
    unsigned long long v = 0;
    char range[96];
    switch (s->kind) {
    case SET_AUTH:
    case SET_ORIGINS:
    case SET_RATE:
    case SET_BOOL:
        return apply_security(cfg, s, what, value, err, errcap);
    case SET_TEXT:
        if (value[0] == '\0')
            return fail(err, errcap, what, value, "must not be empty");
        break;
    case SET_UINT:
    case SET_SIZE:
        if (parse_integer(value, s->min, s->max, &v) != BASIN_OK) {
            snprintf(range, sizeof range, "is not an integer in [%llu, %llu]", s->min, s->max);
            return fail(err, errcap, what, value, range);
        }
        break;
    case SET_SECONDS: {
        char *end = NULL;
        errno = 0;
        double d = strtod(value, &end);
        if (value[0] == '\0' || errno != 0 || *end != '\0' || !isfinite(d) || d < 0 || d > 1e9)
            return fail(err, errcap, what, value, "is not a number of seconds in [0, 1e9]");
        if (strcmp(s->flag, "--lease-timeout") == 0) {
            if (d < CONFIG_MIN_LEASE_TIMEOUT || d > 1e6)
                return fail(err, errcap, what, value, "is not a number of seconds in [2, 1e6]");
            cfg->lease_timeout = d;
            return BASIN_OK;
        }
        cfg->max_run_seconds = d;
        return BASIN_OK;
    }
    }
    if (strcmp(s->flag, "--port") == 0)
        cfg->port = (unsigned)v;
    else if (strcmp(s->flag, "--db") == 0 || strcmp(s->flag, "--store") == 0)
        cfg->db = value;
    else if (strcmp(s->flag, "--train") == 0)
        cfg->train = (unsigned)v;
    else if (strcmp(s->flag, "--batch") == 0)
        cfg->batch = (size_t)v;
    else if (strcmp(s->flag, "--workers") == 0)
        cfg->workers = (unsigned)v;
    else if (strcmp(s->flag, "--bind") == 0)
        cfg->bind = value;
    else if (strcmp(s->flag, "--max-queued-runs") == 0)
        cfg->max_queued_runs = (size_t)v;
    else if (strcmp(s->flag, "--web") == 0)
        cfg->web_root = value;
    return BASIN_OK;
}

int config_load(struct serve_config *cfg, int argc, char **argv, config_env_fn env, int *help,
                char *err, size_t errcap)
{
    int rc = BASIN_OK;
    *help = 0;
    if (errcap > 0)
        err[0] = '\0';
    config_defaults(cfg);
    for (size_t i = 0; env != NULL && i < N_SETTINGS; i++) {
        const char *v = env(settings[i].env);
        if (v != NULL && (rc = apply(cfg, &settings[i], settings[i].env, v, err, errcap)) != 0)
            return rc;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = 1;
            return BASIN_OK;
        }
        const struct setting *s = NULL;
        const char *value = NULL;
        for (size_t i = 0; s == NULL && i < N_SETTINGS; i++) {
            size_t n = strlen(settings[i].flag);
            if (strncmp(arg, settings[i].flag, n) != 0)
                continue;
            if (arg[n] == '=') {
                s = &settings[i];
                value = arg + n + 1;
            } else if (arg[n] == '\0' && settings[i].kind == SET_BOOL) {
                s = &settings[i]; /* a switch: its presence means 1 */
                value = "1";
            } else if (arg[n] == '\0') {
                s = &settings[i];
                if (a + 1 >= argc) {
                    if (errcap > 0)
                        snprintf(err, errcap, "%s needs a value", s->flag);
                    return BASIN_EINVAL;
                }
                value = argv[++a];
            }
        }
        if (s == NULL) {
            if (errcap > 0)
                snprintf(err, errcap, "unknown option '%.64s'", arg);
            return BASIN_EINVAL;
        }
        rc = apply(cfg, s, s->flag, value, err, errcap);
        if (rc != BASIN_OK)
            return rc;
    }
    return BASIN_OK;
}
