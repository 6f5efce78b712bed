/* libFuzzer target: spec_arch_parse, the parser of POST /v1/architectures bodies (and of every
 * inline architecture). The input is the body text, loaded as the router loads it.
 *
 * Asserted: a spec xor errors; errors are answerable (fuzz.h); a spec has a built network
 * within the parameter and layer limits whose input shape is the declared one; its canonical
 * JSON is a fixed point of parse ∘ to_json; the listing summary can be built. */
#include <string.h>

#include "basin/status.h"
#include "fuzz.h"
#include "router.h"

static struct limits lim;

static json_t *reparse(const char *text, size_t len)
{
    struct spec_errors errs;
    struct spec_arch *arch = NULL;
    json_t *canon = NULL;
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    spec_errors_init(&errs);
    if (body != NULL && spec_arch_parse(body, &lim, &arch, &errs) == BASIN_OK)
        canon = spec_arch_to_json(arch);
    json_decref(body);
    spec_arch_free(arch);
    spec_errors_clear(&errs);
    return canon;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spec_errors errs;
    struct spec_arch *arch = NULL;
    const char *text = (const char *)data;
    fuzz_limits(&lim);
    if (json_nesting_exceeds(text, size, ROUTE_MAX_JSON_DEPTH))
        return 0;
    json_t *body = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL)
        return 0;
    spec_errors_init(&errs);
    int rc = spec_arch_parse(body, &lim, &arch, &errs);
    FUZZ_CHECK(rc == BASIN_OK || rc == BASIN_EINVAL);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(arch != NULL && arch->net != NULL && errs.count == 0);
        FUZZ_CHECK(arch->arch.n_layers >= 1 && arch->arch.n_layers <= lim.max_layers);
        FUZZ_CHECK(basin_net_param_count(arch->net) <= lim.max_params);
        FUZZ_CHECK(basin_net_out_dim(arch->net) >= 1);
        size_t in_dim = 1;
        for (size_t i = 0; i < arch->arch.in_rank; i++)
            in_dim *= arch->arch.in_shape[i];
        FUZZ_CHECK(basin_net_in_dim(arch->net) == in_dim && in_dim <= lim.max_input_dim);
        json_t *summary = spec_arch_summary(arch);
        FUZZ_CHECK(summary != NULL);
        json_decref(summary);
        json_t *canon = spec_arch_to_json(arch);
        fuzz_check_canonical(canon, reparse);
        json_decref(canon);
    } else {
        FUZZ_CHECK(arch == NULL && errs.count > 0);
        fuzz_check_spec_errors(&errs);
    }
    spec_arch_free(arch);
    spec_errors_clear(&errs);
    json_decref(body);
    return 0;
}
