/* The /v1/architectures handlers: create (a spec validated by spec_arch_parse, which also builds
 * the network once to check that the layers fit together and to count the parameters), list,
 * get and delete (409 while an experiment uses the architecture). The stored spec is the
 * canonical JSON, so defaults (bias, stride, padding, slopes) are visible in every answer. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "basin/status.h"
#include "ids.h"
#include "records.h"

static int arch_id_or_reply(struct request *req, struct reply *rep, const char **id)
{
    *id = request_param(req, "id");
    if (*id != NULL && ids_valid(*id, IDS_PREFIX_ARCHITECTURE))
        return BASIN_OK;
    int rc = reply_problem(rep, 404, NULL, "no architecture has this id", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int store_error(struct reply *rep, int store_rc, const char *id)
{
    char what[64];
    snprintf(what, sizeof what, "architecture %s", id);
    return reply_store_error(rep, store_rc, what);
}

static int answer_architecture(struct reply *rep, int status, const struct store_architecture *a)
{
    json_t *view = view_architecture(a);
    if (view == NULL)
        return BASIN_ENOMEM;
    return reply_json(rep, status, view);
}

int h_architectures_create(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct spec_errors errs;
    struct spec_arch *arch = NULL;
    struct store_architecture rec;
    struct store_architecture *got = NULL;
    char id[STORE_ID_SIZE];
    char location[64];
    int rc;

    spec_errors_init(&errs);
    memset(&rec, 0, sizeof rec);
    if (req->json == NULL) {
        rc = reply_problem(rep, 400, NULL, "a JSON architecture body is required", NULL, 0);
        goto done;
    }
    rc = spec_arch_parse(req->json, &app->limits, &arch, &errs);
    if (rc == BASIN_EINVAL) {
        rc = reply_spec_errors(rep, 422, &errs);
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = records_arch_build(arch, &rec);
    if (rc != BASIN_OK)
        goto done;
    if (rec.param_count == 0) {
        /* valid layers, but nothing to train: no experiment could use it */
        static const struct problem_error e = {
            "/layers", "has no trainable parameters: add a dense or conv2d layer"};
        rc = reply_problem(rep, 422, NULL, "the request has 1 invalid field", &e, 1);
        goto done;
    }
    int src = store_architecture_insert(app->store, &rec, id);
    if (src == STORE_EINVAL) {
        rep->log_cause = "the store refused an architecture record built from a valid spec";
        rc = reply_problem(rep, 500, NULL, "the architecture could not be stored", NULL, 0);
        goto done;
    }
    if (src == STORE_OK)
        src = store_architecture_get(app->store, id, &got);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "architecture");
        goto done;
    }
    snprintf(location, sizeof location, "/v1/architectures/%s", id);
    rc = reply_header(rep, "Location", location);
    if (rc == BASIN_OK)
        rc = answer_architecture(rep, 201, got);
done:
    records_arch_release(&rec);
    store_architecture_free(got);
    spec_arch_free(arch);
    spec_errors_clear(&errs);
    return rc;
}

int h_architectures_list(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_architecture_list *l = NULL;
    json_t *items = NULL;
    const char *cursor = NULL;
    size_t limit = 0;
    int rc = BASIN_OK;

    if (page_params_or_reply(req, rep, &limit, &cursor) != BASIN_OK)
        goto done; /* answered 400 (or out of memory: the pipeline answers 500) */
    int src = store_architecture_list(app->store, limit, cursor, &l);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "architecture list");
        goto done;
    }
    items = json_array();
    for (size_t i = 0; items != NULL && i < l->n; i++) {
        if (json_array_append_new(items, view_architecture(&l->items[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    if (items == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_page(req, rep, items, l->next_cursor);
done:
    store_architecture_list_free(l);
    return rc;
}

int h_architectures_get(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_architecture *a = NULL;
    const char *id = NULL;
    int rc = BASIN_OK;

    if (arch_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int src = store_architecture_get(app->store, id, &a);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    rc = answer_architecture(rep, 200, a);
done:
    store_architecture_free(a);
    return rc;
}

int h_architectures_delete(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    const char *id = NULL;
    int rc = BASIN_OK;

    if (arch_id_or_reply(req, rep, &id) != BASIN_OK)
        goto done;
    int src = store_architecture_delete(app->store, id);
    if (src == STORE_ECONFLICT) {
        rc = reply_problemf(
            rep, 409, NULL,
            "architecture %s is used by at least one experiment; delete those first", id);
    } else if (src != STORE_OK) {
        rc = store_error(rep, src, id);
    } else {
        rep->status = 204;
    }
done:
    return rc;
}
