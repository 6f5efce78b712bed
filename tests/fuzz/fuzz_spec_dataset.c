/* libFuzzer target: spec_dataset_parse, the parser of POST /v1/datasets JSON bodies (inline
 * points, CSV text in a string, generators, the Gaussian teacher). The input is the body text,
 * loaded the way the router loads it (nesting guard, then json_loadb with duplicate keys
 * rejected).
 *
 * Asserted: a spec xor errors; errors are answerable (fuzz.h); a spec's samples respect the
 * limits and are finite; its canonical JSON (what the store keeps and records.c parses back)
 * is a fixed point of parse ∘ to_json; the listing summary can be built. */
#include <math.h>
#include <string.h>

#include "basin/status.h"
#include "fuzz.h"
#include "router.h"

static struct limits lim;

static json_t *reparse(const char *text, size_t len)
{
    struct spec_errors errs;
    struct spec_dataset *ds = NULL;
    json_t *canon = NULL;
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    spec_errors_init(&errs);
    if (body != NULL && spec_dataset_parse(body, &lim, &ds, &errs) == BASIN_OK)
        canon = spec_dataset_to_json(ds);
    json_decref(body);
    spec_dataset_free(ds);
    spec_errors_clear(&errs);
    return canon;
}

static void check_samples(const basin_dataset *d)
{
    FUZZ_CHECK(d->n >= 1 && d->n <= lim.max_points);
    FUZZ_CHECK(d->in_dim >= 1 && d->in_dim <= lim.max_input_dim);
    FUZZ_CHECK(d->y_dim >= 1);
    FUZZ_CHECK(d->n * d->in_dim <= lim.max_dataset_values);
    for (size_t i = 0; i < d->n * d->in_dim; i++)
        FUZZ_CHECK(isfinite(d->x[i]));
    for (size_t i = 0; i < d->n * d->y_dim; i++)
        FUZZ_CHECK(isfinite(d->y[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spec_errors errs;
    struct spec_dataset *ds = NULL;
    const char *text = (const char *)data;
    fuzz_limits(&lim);
    if (json_nesting_exceeds(text, size, ROUTE_MAX_JSON_DEPTH))
        return 0;
    json_t *body = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL)
        return 0;
    spec_errors_init(&errs);
    int rc = spec_dataset_parse(body, &lim, &ds, &errs);
    FUZZ_CHECK(rc == BASIN_OK || rc == BASIN_EINVAL);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(ds != NULL && errs.count == 0);
        FUZZ_CHECK(ds->in_rank == 1 || ds->in_rank == 3);
        if (ds->kind == SPEC_DATASET_TEACHER_GAUSSIAN)
            FUZZ_CHECK(ds->data == NULL && ds->tg.k >= 1 && ds->tg.d >= 1);
        else
            check_samples(ds->data);
        json_t *summary = spec_dataset_summary(ds);
        FUZZ_CHECK(summary != NULL);
        json_decref(summary);
        json_t *canon = spec_dataset_to_json(ds);
        fuzz_check_canonical(canon, reparse);
        json_decref(canon);
    } else {
        FUZZ_CHECK(ds == NULL && errs.count > 0);
        fuzz_check_spec_errors(&errs);
    }
    spec_dataset_free(ds);
    spec_errors_clear(&errs);
    json_decref(body);
    return 0;
}
