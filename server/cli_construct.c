/* `basinlab construct` and `basinlab certify` (cli_construct.h): the steps of imported.h run
 * offline — parse, build, judge — with the dataset and architecture inline (there is no store to
 * resolve ids in) and no work bound (the user's own machine). Nothing is written to stdout
 * unless the whole document is ready; errors go to stderr as "<pointer>: <message>". */
#include "cli_construct.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "cli_train.h"
#include "imported.h"
#include "json_out.h"
#include "limits.h"
#include "spec.h"
#include "verdict.h"

void cli_construct_usage(FILE *out)
{
    fputs("usage: basinlab construct --spec FILE|-\n"
          "  build one of the paper's constructions (a POST /v1/constructions body with the\n"
          "  dataset and architecture inline), certify it and print it as JSON\n"
          "usage: basinlab certify --spec FILE|- --params FILE [--restart N]\n"
          "  the verdict of a parameter vector: the spec is an experiment spec (dataset,\n"
          "  architecture, loss, l2, certify); the params file is a JSON array or the output\n"
          "  of `basinlab train --params` (pick a run with --restart N)\n",
          out);
}

struct args {
    const char *cmd;
    const char *spec;
    const char *params;
    long restart; /* −1 = not given */
};

/* "--name value" or "--name=value"; *i advances past what was consumed. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return NULL;
    (*i)++;
    return argv[*i];
}

static int parse_args(int argc, char **argv, int with_params, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    a->restart = -1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = option_value(argc, argv, &i, "--spec")) != NULL) {
            a->spec = v;
        } else if (with_params && (v = option_value(argc, argv, &i, "--params")) != NULL) {
            a->params = v;
        } else if (with_params && (v = option_value(argc, argv, &i, "--restart")) != NULL) {
            char *end = NULL;
            errno = 0;
            long r = strtol(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || r < 0) {
                fprintf(stderr, "basinlab %s: --restart must be a non-negative integer\n", a->cmd);
                return BASIN_EINVAL;
            }
            a->restart = r;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_construct_usage(stdout);
            return BASIN_ENOTSUP; /* answered */
        } else {
            fprintf(stderr, "basinlab %s: unexpected argument '%s'\n", a->cmd, argv[i]);
            return BASIN_EINVAL;
        }
    }
    if (a->spec == NULL || (with_params && a->params == NULL)) {
        fprintf(stderr, "basinlab %s: --spec%s is required\n", a->cmd,
                with_params ? " and --params are" : "");
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

/* A JSON document from a file ("-" = stdin) of at most max bytes. Returns an exit status. */
static int load_json(const char *cmd, const char *path, size_t max, json_t **out)
{
    json_error_t jerr;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    int status = CLI_EXIT_OK;

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "basinlab %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    /* the limit is checked while reading: nothing larger is ever held */
    size_t cap = 4096, n = 0;
    char *buf = basin_malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap > max)
                break;
            char *grown = basin_realloc(buf, cap * 2);
            if (grown == NULL) {
                basin_free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int read_error = ferror(f);
    if (f != stdin)
        fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "basinlab %s: out of memory reading %s\n", cmd, path);
        status = CLI_EXIT_INTERNAL;
    } else if (read_error) {
        fprintf(stderr, "basinlab %s: cannot read %s\n", cmd, path);
        status = CLI_EXIT_USAGE;
    } else if (n > max) {
        fprintf(stderr, "(root): %s is larger than the limit of %zu bytes\n", path, max);
        status = CLI_EXIT_USAGE;
    } else {
        *out = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
        if (*out == NULL) {
            fprintf(stderr, "(root): %s is not valid JSON: %s (line %d, column %d)\n", path,
                    jerr.text, jerr.line, jerr.column);
            status = CLI_EXIT_USAGE;
        }
    }
    basin_free(buf);
    return status;
}

static void print_errors(const struct spec_errors *errs, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "%s%s: %s\n", prefix,
                errs->items[i].pointer[0] ? errs->items[i].pointer : "(root)",
                errs->items[i].message);
    if (errs->dropped > 0)
        fprintf(stderr, "(and %zu more errors)\n", errs->dropped);
}

/* Datasets and architectures by id need the server. */
static int offline_only(const struct imported_request *rq)
{
    int status = CLI_EXIT_OK;
    if (rq->exp->dataset_id != NULL) {
        fprintf(stderr, "/dataset_id: datasets by id need the server (basinlab serve); give the "
                        "dataset inline\n");
        status = CLI_EXIT_USAGE;
    }
    if (rq->exp->architecture_id != NULL) {
        fprintf(stderr, "/architecture_id: architectures by id need the server (basinlab serve); "
                        "give the architecture inline\n");
        status = CLI_EXIT_USAGE;
    }
    return status;
}

static int write_cb(const char *s, size_t n, void *data)
{
    return fwrite(s, 1, n, (FILE *)data) == n ? 0 : -1;
}

/* Build, judge and print; returns an exit status. Errors at /params are about the params file:
 * they are shown as "<params_prefix><params_where>: ...". */
static int run(const char *cmd, struct imported_request *rq, const char *params_prefix,
               const char *params_where)
{
    struct spec_errors errs;
    struct imported_point *pt = NULL;
    struct limits lim;
    json_t *doc = NULL;
    char why[VERDICT_ERROR_CAP] = "";
    int status = CLI_EXIT_OK, rc;

    spec_errors_init(&errs);
    limits_defaults(&lim);
    rc = imported_build(rq, &lim, 0, &pt, &errs);
    if (rc == BASIN_EINVAL) {
        for (size_t i = 0; i < errs.count; i++) {
            const char *ptr = errs.items[i].pointer;
            if (params_prefix != NULL && strcmp(ptr, "/params") == 0)
                fprintf(stderr, "%s%s: %s\n", params_prefix,
                        params_where[0] ? params_where : "(root)", errs.items[i].message);
            else
                fprintf(stderr, "%s: %s\n", ptr[0] ? ptr : "(root)", errs.items[i].message);
        }
        status = CLI_EXIT_USAGE;
        goto done;
    }
    if (rc == BASIN_OK)
        rc = imported_judge(rq, pt, why, sizeof why);
    if (rc == BASIN_OK && (doc = imported_result_json(rq, pt)) == NULL)
        rc = BASIN_ENOMEM;
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab %s: %s\n", cmd, why[0] ? why : basin_strerror(rc));
        status = CLI_EXIT_INTERNAL;
        goto done;
    }
    if (json_write_compact(doc, write_cb, stdout) != 0 || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        fprintf(stderr, "basinlab %s: cannot write the output\n", cmd);
        status = CLI_EXIT_INTERNAL;
    }
done:
    json_decref(doc);
    imported_point_free(pt);
    spec_errors_clear(&errs);
    return status;
}

int cli_construct_main(int argc, char **argv)
{
    struct args a;
    struct spec_errors errs;
    struct imported_request *rq = NULL;
    struct limits lim;
    json_t *body = NULL;
    int status, rc;

    spec_errors_init(&errs);
    limits_defaults(&lim);
    rc = parse_args(argc, argv, 0, &a);
    if (rc != BASIN_OK) {
        status = rc == BASIN_ENOTSUP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        goto done;
    }
    status = load_json(a.cmd, a.spec, lim.max_body_bytes, &body);
    if (status != CLI_EXIT_OK)
        goto done;
    rc = imported_parse(body, 1, &lim, &rq, &errs);
    if (rc != BASIN_OK) {
        print_errors(&errs, "");
        status = rc == BASIN_ENOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_USAGE;
        goto done;
    }
    status = offline_only(rq);
    if (status == CLI_EXIT_OK)
        status = run(a.cmd, rq, NULL, "");
done:
    json_decref(body);
    imported_request_free(rq);
    spec_errors_clear(&errs);
    return status;
}

/* The parameter vector of a params file: an array, or `train --params` output. */
static int params_from_file(const struct args *a, const json_t *doc, double **out, size_t *n,
                            char *prefix, size_t cap, char where[64])
{
    const json_t *arr = doc;

    snprintf(prefix, cap, "params %s: ", a->params);
    if (json_is_object(doc)) {
        const json_t *runs = json_object_get(doc, "runs");
        size_t i, pick = json_array_size(runs);
        const json_t *r;
        if (!json_is_array(runs) || json_array_size(runs) == 0) {
            fprintf(stderr, "%s/runs: expected the output of `basinlab train --params`\n", prefix);
            return CLI_EXIT_USAGE;
        }
        if (a->restart < 0 && json_array_size(runs) > 1) {
            fprintf(stderr, "%s/runs: has %zu runs; choose one with --restart N\n", prefix,
                    json_array_size(runs));
            return CLI_EXIT_USAGE;
        }
        json_array_foreach(runs, i, r)
        {
            const json_t *rs = json_object_get(r, "restart");
            if (a->restart < 0 ||
                (json_is_integer(rs) && json_integer_value(rs) == (json_int_t)a->restart)) {
                pick = i;
                break;
            }
        }
        if (pick == json_array_size(runs)) {
            fprintf(stderr, "%s/runs: no run has restart %ld\n", prefix, a->restart);
            return CLI_EXIT_USAGE;
        }
        arr = json_object_get(json_array_get(runs, pick), "params");
        snprintf(where, 64, "/runs/%zu/params", pick);
        if (arr == NULL) {
            fprintf(stderr, "%s%s: missing (run `basinlab train` with --params)\n", prefix, where);
            return CLI_EXIT_USAGE;
        }
    } else if (a->restart > 0) {
        fprintf(stderr, "%s(root): a single parameter vector has no restart %ld\n", prefix,
                a->restart);
        return CLI_EXIT_USAGE;
    }
    size_t len = json_array_size(arr);
    if (!json_is_array(arr) || len == 0) {
        fprintf(stderr, "%s%s: must be a non-empty array of numbers\n", prefix,
                where[0] ? where : "(root)");
        return CLI_EXIT_USAGE;
    }
    double *v = basin_alloc_array(len, sizeof *v);
    if (v == NULL) {
        fprintf(stderr, "basinlab %s: out of memory\n", a->cmd);
        return CLI_EXIT_INTERNAL;
    }
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(arr, i);
        v[i] = json_number_value(e);
        if (!json_is_number(e)) { /* null (a non-finite value in train's output) included */
            fprintf(stderr, "%s%s/%zu: must be a finite number\n", prefix, where, i);
            basin_free(v);
            return CLI_EXIT_USAGE;
        }
    }
    *out = v;
    *n = len;
    return CLI_EXIT_OK;
}

int cli_certify_main(int argc, char **argv)
{
    struct args a;
    struct spec_errors errs;
    struct imported_request *rq = NULL;
    struct spec_experiment *exp = NULL;
    struct limits lim;
    json_t *spec = NULL, *pdoc = NULL;
    char prefix[512], where[64] = "";
    int status, rc;

    spec_errors_init(&errs);
    limits_defaults(&lim);
    rc = parse_args(argc, argv, 1, &a);
    if (rc != BASIN_OK) {
        status = rc == BASIN_ENOTSUP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        goto done;
    }
    status = load_json(a.cmd, a.spec, lim.max_body_bytes, &spec);
    if (status == CLI_EXIT_OK)
        status = load_json(a.cmd, a.params, lim.max_body_bytes, &pdoc);
    if (status != CLI_EXIT_OK)
        goto done;
    rc = spec_experiment_parse(spec, &lim, &exp, &errs);
    if (rc != BASIN_OK) {
        print_errors(&errs, "");
        status = rc == BASIN_ENOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_USAGE;
        goto done;
    }
    rq = basin_calloc(1, sizeof *rq);
    if (rq == NULL) {
        status = CLI_EXIT_INTERNAL;
        goto done;
    }
    rq->kind = IMPORTED_EVALUATION;
    rq->exp = exp;
    exp = NULL;
    rq->dataset_by_id = rq->exp->dataset_id != NULL;
    rq->arch_by_id = rq->exp->architecture_id != NULL;
    status = offline_only(rq);
    if (status != CLI_EXIT_OK)
        goto done;
    /* the spec's certify options, with polish off unless the spec sets it */
    rc = imported_parse_certify(json_object_get(spec, "certify"), &rq->exp->certify_opts, &errs);
    if (rc != BASIN_OK) {
        print_errors(&errs, "");
        status = rc == BASIN_ENOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_USAGE;
        goto done;
    }
    status = params_from_file(&a, pdoc, &rq->params, &rq->n_params, prefix, sizeof prefix, where);
    if (status == CLI_EXIT_OK)
        status = run(a.cmd, rq, prefix, where);
done:
    json_decref(spec);
    json_decref(pdoc);
    spec_experiment_free(exp);
    imported_request_free(rq);
    spec_errors_clear(&errs);
    return status;
}
