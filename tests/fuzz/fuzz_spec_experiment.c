/* libFuzzer target: spec_experiment_parse_text, the parser of POST /v1/experiments bodies and of
 * `basinlab train --spec` files. The input is the body text.
 *
 * Asserted beyond "no crash, no leak, no undefined behaviour": the result is exactly one of a
 * spec (and no errors) or errors (and no spec); every error is answerable (fuzz.h); a spec's
 * canonical JSON parses again to the same canonical JSON, since h_experiments.c stores the
 * canonical text and the worker parses it back. Limits are scaled down (fuzz_limits). */
#include <string.h>

#include "basin/status.h"
#include "fuzz.h"

static struct limits lim;

static json_t *reparse(const char *text, size_t len)
{
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    json_t *canon = NULL;
    spec_errors_init(&errs);
    if (spec_experiment_parse_text(text, len, &lim, &exp, &errs) == BASIN_OK)
        canon = spec_experiment_to_json(exp);
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    return canon;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    fuzz_limits(&lim);
    spec_errors_init(&errs);
    int rc = spec_experiment_parse_text((const char *)data, size, &lim, &exp, &errs);
    FUZZ_CHECK(rc == BASIN_OK || rc == BASIN_EINVAL);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(exp != NULL && errs.count == 0);
        FUZZ_CHECK((exp->dataset == NULL) != (exp->dataset_id == NULL));
        FUZZ_CHECK((exp->arch == NULL) != (exp->architecture_id == NULL));
        FUZZ_CHECK(exp->restarts >= 1 && exp->restarts <= lim.max_restarts);
        FUZZ_CHECK(exp->train.max_steps >= 1 && exp->train.max_steps <= lim.max_steps);
        if (exp->arch != NULL)
            FUZZ_CHECK(basin_net_param_count(exp->arch->net) <= lim.max_params);
        if (exp->dataset != NULL && exp->dataset->data != NULL)
            FUZZ_CHECK(exp->dataset->data->n <= lim.max_points);
        json_t *canon = spec_experiment_to_json(exp);
        fuzz_check_canonical(canon, reparse);
        json_decref(canon);
    } else {
        FUZZ_CHECK(exp == NULL && errs.count > 0);
        fuzz_check_spec_errors(&errs);
    }
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    return 0;
}
