/* The /v1/experiments handlers: submit (202 + Location), list, get (with progress and a summary
 * of the runs), cancel, delete, and the runs of one experiment. The event stream is in
 * h_events.c.
 *
 * Submission validates everything a worker will need before anything is stored, so a spec that
 * parses but cannot run fails at POST time with 422, never later as failed runs: the parse, the
 * referenced records (an unknown dataset_id / architecture_id is a 422 at that pointer), the
 * dataset–architecture compatibility, a dry build of the objective, and the round trip of the
 * canonical spec through the parser (what the worker reads back). Then inline datasets and
 * architectures become records of their own (records.h) and the experiment and its N runs are
 * created in one transaction; "202 Accepted" is sent only after that commit.
 *
 * Idempotency-Key (at most 200 printable ASCII characters): the store keeps the key with the
 * SHA-256 of the canonical request body (the body re-serialised compactly with sorted keys, so
 * whitespace and key order do not matter). A retry with the same key and body answers like the
 * first time: 202, the same Location, the experiment's (current) view, plus
 * `Idempotent-Replayed: true`. The same key with a different body is 409 Conflict (the IETF
 * draft allows 422 as well; 409 says "this key is taken", which is what happened). Inline records
 * inserted for a replayed or failed submission are deleted again. A replay is answered only
 * when the queue has room and the server is not draining (otherwise 429 / 503 with Retry-After,
 * like any submission; retrying later gives the first answer).
 *
 * Delete only applies to terminal experiments (finished or cancelled): a queued or running one
 * answers 409 "cancel it first". */
#include "handlers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nettle/sha2.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/objective.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "ids.h"
#include "records.h"
#include "spurious.h"
#include "utf8.h"

enum {
    IDEMPOTENCY_KEY_MAX = 200,
    RETRY_AFTER_DRAINING_S = 5,
    RETRY_AFTER_QUEUE_FULL_S = 10,
    LOCATION_BYTES = 64
};

/* 404 for an id that is not an experiment id, without asking the store. */
static int experiment_id_or_reply(struct request *req, struct reply *rep, const char **id)
{
    *id = request_param(req, "id");
    if (*id != NULL && ids_valid(*id, IDS_PREFIX_EXPERIMENT))
        return BASIN_OK;
    int rc = reply_problem(rep, 404, NULL, "no experiment has this id", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int store_error(struct reply *rep, int store_rc, const char *id)
{
    char what[64];
    snprintf(what, sizeof what, "experiment %s", id);
    return reply_store_error(rep, store_rc, what);
}

/* ---- the summary ---- */

/* {name: count} of the store's GROUP BY rows (names are distinct). */
static int name_counts_json(const struct store_name_count *items, size_t n, json_t **out)
{
    json_t *o = json_object();
    int rc = o != NULL ? BASIN_OK : BASIN_ENOMEM;
    for (size_t i = 0; rc == BASIN_OK && i < n; i++)
        if (json_object_set_new(o, items[i].name, json_integer((json_int_t)items[i].count)) != 0)
            rc = BASIN_ENOMEM;
    if (rc == BASIN_OK) {
        *out = o;
        o = NULL;
    }
    json_decref(o);
    return rc;
}

/* {"best_risk", "best_run_id", "stop_reasons": {reason: count} | null, "verdicts": {label:
 * count} | null}, plus the spurious fields of spurious_summary_into (label counts, spurious
 * count and share with its Wilson interval, the objective's best point). A summary stored by
 * someone else (store_experiment_set_summary) is laid over it. *store_rc receives a store
 * failure.
 * Everything is counted in the database (store_experiment_run_counts: GROUP BY stop_reason and
 * verdict_label over every run of any status, and the finished run with the lowest finite risk;
 * store_experiment_spurious_stats), so the cost in C does not grow with the number of runs and
 * no run or verdict JSON is loaded. With scan = 0 (the items of the list) the groupings are
 * skipped (stop_reasons / verdicts are null); the best run, the same in both, is one indexed
 * lookup of the lowest finite finished risk, so a list item costs a few small indexed queries. */
static int summary_json(struct store *st, const struct store_experiment *e, int scan, json_t **out,
                        int *store_rc)
{
    struct store_run_counts *c = NULL;
    struct store_spurious_stats sp;
    double tol_rel = spurious_tol_rel(e->spec);
    json_t *o = NULL, *reasons = NULL, *verdicts = NULL;
    const char *best_id = NULL;
    double best_risk = NAN;
    int rc = BASIN_OK;

    *out = NULL;
    *store_rc = STORE_OK;
    o = json_object();
    if (o == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *store_rc = store_experiment_run_counts(st, e->id, scan, &c);
    if (*store_rc != STORE_OK)
        goto done;
    if (scan) {
        rc = name_counts_json(c->stop_reasons, c->n_stop_reasons, &reasons);
        if (rc == BASIN_OK)
            rc = name_counts_json(c->verdicts, c->n_verdicts, &verdicts);
        if (rc != BASIN_OK)
            goto done;
    }
    if (c->best_found) {
        best_id = c->best_run_id;
        best_risk = c->best_risk;
    }
    if (json_object_set_new(o, "best_risk", best_id ? view_real(best_risk) : json_null()) != 0 ||
        json_object_set_new(o, "best_run_id", best_id ? json_string(best_id) : json_null()) != 0 ||
        json_object_set(o, "stop_reasons", reasons ? reasons : json_null()) != 0 ||
        json_object_set(o, "verdicts", verdicts ? verdicts : json_null()) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *store_rc = store_experiment_spurious_stats(st, e->id, tol_rel, &sp);
    if (*store_rc != STORE_OK)
        goto done;
    rc = spurious_summary_into(o, &sp, tol_rel);
    if (rc != BASIN_OK)
        goto done;
    if (json_is_object(e->summary) && json_object_update(o, e->summary) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *out = o;
    o = NULL;
done:
    if (*store_rc != STORE_OK && rc == BASIN_OK)
        rc = BASIN_EINVAL;
    store_run_counts_free(c);
    json_decref(o);
    json_decref(reasons);
    json_decref(verdicts);
    return rc;
}

/* Answer `status` with the view of experiment `id` (with its summary). */
static int answer_experiment(struct request *req, struct reply *rep, int status, const char *id)
{
    struct app *app = req->app;
    struct store_experiment *e = NULL;
    json_t *view = NULL, *summary = NULL;
    int src = STORE_OK;
    int rc = BASIN_OK;

    src = store_experiment_get(app->store, id, &e);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    rc = summary_json(app->store, e, 1, &summary, &src);
    if (rc != BASIN_OK) {
        if (src != STORE_OK)
            rc = store_error(rep, src, id);
        goto done;
    }
    view = view_experiment(e);
    if (view == NULL || json_object_set(view, "summary", summary) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_json(rep, status, view);
    view = NULL;
done:
    json_decref(view);
    json_decref(summary);
    store_experiment_free(e);
    return rc;
}

/* ---- submission ---- */

/* 1 when the key is 1..IDEMPOTENCY_KEY_MAX printable ASCII characters. */
static int idempotency_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return 0;
    return 1;
}

/* Lower-case hex SHA-256 of the body serialised compactly with sorted keys. */
static int request_hash(const json_t *body, char hex[2 * SHA256_DIGEST_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS;
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    int rc = BASIN_OK;
    size_t len = json_dumpb(body, NULL, 0, flags);
    char *text = len > 0 ? basin_malloc(len) : NULL;
    if (text == NULL || json_dumpb(body, text, len, flags) != len) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)text);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * SHA256_DIGEST_SIZE] = '\0';
done:
    basin_free(text);
    return rc;
}

/* Pointers into a referenced record ("/dataset/y/3") are shown at the member the client wrote
 * ("/dataset_id"), with the part inside the record in the message. */
struct remap {
    const char *from; /* "/dataset" */
    const char *to;   /* "/dataset_id" */
    const char *what; /* "dataset" */
};

static int reply_compat_errors(struct reply *rep, const struct spec_errors *errs,
                               const struct remap *maps, size_t n_maps)
{
    int rc = BASIN_OK;
    struct problem_error *pe = NULL;
    char **owned = NULL;
    char detail[96];
    size_t n = errs->count;

    pe = basin_alloc_array(n > 0 ? n : 1, sizeof *pe);
    owned = basin_calloc(n > 0 ? n : 1, sizeof *owned);
    if (pe == NULL || owned == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct spec_error *e = &errs->items[i];
        pe[i].pointer = e->pointer;
        pe[i].message = e->message;
        for (size_t m = 0; m < n_maps; m++) {
            size_t len = strlen(maps[m].from);
            if (strncmp(e->pointer, maps[m].from, len) != 0 ||
                (e->pointer[len] != '\0' && e->pointer[len] != '/'))
                continue;
            const char *inside = e->pointer + len;
            size_t cap = strlen(maps[m].what) + strlen(inside) + strlen(e->message) + 32;
            owned[i] = basin_malloc(cap);
            if (owned[i] == NULL) {
                rc = BASIN_ENOMEM;
                goto done;
            }
            if (inside[0] != '\0')
                snprintf(owned[i], cap, "the %s's %s: %s", maps[m].what, inside, e->message);
            else
                snprintf(owned[i], cap, "the %s: %s", maps[m].what, e->message);
            pe[i].pointer = maps[m].to;
            pe[i].message = owned[i];
            break;
        }
    }
    snprintf(detail, sizeof detail, "the request has %zu invalid field%s", n, n == 1 ? "" : "s");
    rc = reply_problem(rep, 422, NULL, detail, pe, n);
done:
    for (size_t i = 0; owned != NULL && i < n; i++)
        basin_free(owned[i]);
    basin_free(owned);
    basin_free(pe);
    return rc;
}

static int make_teacher(const struct spec_teacher_gaussian *tg, basin_teacher **out)
{
    switch (tg->teacher) {
    case SPEC_TEACHER_IDENTITY:
        return basin_teacher_create_identity(tg->k, tg->d, out);
    case SPEC_TEACHER_RANDOM_ORTHONORMAL:
        return basin_teacher_create_random_orthonormal(tg->k, tg->d, tg->seed, out);
    case SPEC_TEACHER_MATRIX:
        break;
    }
    return basin_teacher_create_given(tg->k, tg->d, tg->matrix, out);
}

/* Build (and drop) the objective a worker will build: what the core refuses is refused now. */
static int dry_objective(const struct spec_experiment *exp)
{
    basin_objective obj;
    basin_teacher *teacher = NULL;
    int rc;
    memset(&obj, 0, sizeof obj);
    if (exp->dataset->kind == SPEC_DATASET_TEACHER_GAUSSIAN) {
        rc = make_teacher(&exp->dataset->tg, &teacher);
        if (rc == BASIN_OK)
            rc = basin_teacher_objective(teacher, exp->arch->layers[0].units, &obj);
    } else {
        rc = basin_objective_empirical(exp->arch->net, exp->dataset->data, &exp->loss, exp->l2,
                                       exp->max_batch, &obj);
    }
    if (rc == BASIN_OK && obj.dim != basin_net_param_count(exp->arch->net))
        rc = BASIN_EINVAL;
    basin_objective_release(&obj);
    basin_teacher_free(teacher);
    return rc;
}

/* Resolve dataset_id / architecture_id into exp->dataset / exp->arch. Unknown ids are collected
 * as problems (pointer /dataset_id, /architecture_id); returns BASIN_EINVAL after answering. */
/* How many bytes of an unknown id a message quotes: at most 40, never half a character. */
static int id_shown(const char *id)
{
    return (int)utf8_prefix_len(id, strlen(id), 40);
}

static int resolve_refs(struct request *req, struct reply *rep, struct spec_experiment *exp)
{
    struct app *app = req->app;
    struct store_dataset *d = NULL;
    struct store_architecture *a = NULL;
    struct spec_errors errs;
    struct problem_error pe[2];
    char msg[2][96];
    size_t n_pe = 0;
    int rc = BASIN_OK, src;

    spec_errors_init(&errs);
    if (exp->dataset == NULL) {
        src = store_dataset_get(app->store, exp->dataset_id, 0, &d);
        if (src == STORE_ENOTFOUND) {
            snprintf(msg[n_pe], sizeof msg[n_pe], "no dataset has the id '%.*s'",
                     id_shown(exp->dataset_id), exp->dataset_id);
            pe[n_pe].pointer = "/dataset_id";
            pe[n_pe].message = msg[n_pe];
            n_pe++;
        } else if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "dataset");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
    }
    if (exp->arch == NULL) {
        src = store_architecture_get(app->store, exp->architecture_id, &a);
        if (src == STORE_ENOTFOUND) {
            snprintf(msg[n_pe], sizeof msg[n_pe], "no architecture has the id '%.*s'",
                     id_shown(exp->architecture_id), exp->architecture_id);
            pe[n_pe].pointer = "/architecture_id";
            pe[n_pe].message = msg[n_pe];
            n_pe++;
        } else if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "architecture");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
    }
    if (n_pe > 0) {
        rc = reply_problem(rep, 422, NULL, "the request refers to records that do not exist", pe,
                           n_pe);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (d != NULL) {
        rc = records_dataset_spec(d, &app->limits, &exp->dataset, &errs);
        if (rc == BASIN_EINVAL) {
            rep->log_cause = "a stored dataset spec does not parse";
            rc = reply_problem(rep, 500, NULL, "the stored dataset cannot be read", NULL, 0);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        }
        if (rc != BASIN_OK)
            goto done;
    }
    if (a != NULL) {
        rc = records_arch_spec(a, &app->limits, &exp->arch, &errs);
        if (rc == BASIN_EINVAL) {
            rep->log_cause = "a stored architecture spec does not parse";
            rc = reply_problem(rep, 500, NULL, "the stored architecture cannot be read", NULL, 0);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        }
        if (rc != BASIN_OK)
            goto done;
    }
done:
    store_dataset_free(d);
    store_architecture_free(a);
    spec_errors_clear(&errs);
    return rc;
}

/* The canonical spec that is stored: the parsed one with ids in place of inline objects. */
static json_t *canonical_with_ids(const struct spec_experiment *exp, const char *ds_id,
                                  const char *ar_id)
{
    json_t *c = spec_experiment_to_json(exp);
    if (c == NULL)
        return NULL;
    json_object_del(c, "dataset");
    json_object_del(c, "architecture");
    if (json_object_set_new(c, "dataset_id", json_string(ds_id)) != 0 ||
        json_object_set_new(c, "architecture_id", json_string(ar_id)) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* The queue would exceed app->max_queued_runs (0 = no bound): answer 429. */
static int queue_full_or_reply(struct app *app, struct reply *rep, size_t restarts, int *full)
{
    struct store_metrics m;
    int rc = BASIN_OK;
    *full = 0;
    if (app->max_queued_runs == 0)
        return BASIN_OK;
    int src = store_metrics(app->store, &m);
    if (src != STORE_OK) {
        *full = 1;
        return reply_store_error(rep, src, "queue");
    }
    size_t depth = m.queue_depth > 0 ? (size_t)m.queue_depth : 0;
    if (depth > app->max_queued_runs || restarts > app->max_queued_runs - depth) {
        *full = 1;
        rc = reply_problemf(rep, 429, NULL,
                            "the queue holds %zu runs; %zu more would exceed its bound of %zu",
                            depth, restarts, app->max_queued_runs);
        if (rc == BASIN_OK)
            rc = reply_retry_after(rep, RETRY_AFTER_QUEUE_FULL_S);
    }
    return rc;
}

int h_experiments_create(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct spec_errors errs;
    struct spec_experiment *exp = NULL, *again = NULL;
    struct store_dataset newds;
    struct store_architecture newar;
    json_t *canon = NULL;
    char ds_id[STORE_ID_SIZE] = "", ar_id[STORE_ID_SIZE] = "", ex_id[STORE_ID_SIZE] = "";
    char hash[2 * SHA256_DIGEST_SIZE + 1];
    char location[LOCATION_BYTES];
    int inserted_ds = 0, inserted_ar = 0, existed = 0, full = 0, by_id = 0;
    int rc = BASIN_OK, src;

    spec_errors_init(&errs);
    memset(&newds, 0, sizeof newds);
    memset(&newar, 0, sizeof newar);
    if (atomic_load(&app->draining)) {
        rc = reply_problem(rep, 503, NULL, "the server is shutting down; submit again later", NULL,
                           0);
        if (rc == BASIN_OK)
            rc = reply_retry_after(rep, RETRY_AFTER_DRAINING_S);
        goto done;
    }
    const char *key = request_header(req, "Idempotency-Key");
    if (key != NULL && !idempotency_key_ok(key)) {
        rc = reply_problemf(rep, 400, "Invalid Idempotency-Key",
                            "Idempotency-Key must be 1 to %d printable ASCII characters",
                            IDEMPOTENCY_KEY_MAX);
        goto done;
    }
    if (req->json == NULL) {
        rc = reply_problem(rep, 400, NULL, "a JSON experiment body is required", NULL, 0);
        goto done;
    }
    rc = spec_experiment_parse(req->json, &app->limits, &exp, &errs);
    if (rc == BASIN_EINVAL) {
        rc = reply_spec_errors(rep, 422, &errs);
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    if (key != NULL && (rc = request_hash(req->json, hash)) != BASIN_OK)
        goto done;
    rc = queue_full_or_reply(app, rep, exp->restarts, &full);
    if (rc != BASIN_OK || full)
        goto done;

    /* what the parser could not check alone: the referenced records, then compatibility */
    by_id = exp->dataset == NULL || exp->arch == NULL;
    if (by_id) {
        rc = resolve_refs(req, rep, exp);
        if (rc != BASIN_OK) {
            if (rc == BASIN_EINVAL) /* answered */
                rc = BASIN_OK;
            goto done;
        }
        rc = spec_experiment_check_compat(exp, &app->limits, &errs);
        if (rc == BASIN_EINVAL) {
            struct remap maps[2];
            size_t n_maps = 0;
            if (exp->dataset_id != NULL)
                maps[n_maps++] = (struct remap){"/dataset", "/dataset_id", "dataset"};
            if (exp->architecture_id != NULL)
                maps[n_maps++] =
                    (struct remap){"/architecture", "/architecture_id", "architecture"};
            rc = reply_compat_errors(rep, &errs, maps, n_maps);
            goto done;
        }
        if (rc != BASIN_OK)
            goto done;
    }
    rc = dry_objective(exp);
    if (rc == BASIN_ENOMEM)
        goto done;
    if (rc != BASIN_OK) {
        struct problem_error pe = {"", basin_strerror(rc)};
        rc = reply_problem(rep, 422, NULL,
                           "the experiment cannot be set up: the trainer refuses this combination",
                           &pe, 1);
        goto done;
    }

    /* inline objects become records of their own */
    if (exp->dataset_id != NULL) {
        snprintf(ds_id, sizeof ds_id, "%s", exp->dataset_id);
    } else {
        rc = records_dataset_build(exp->dataset, &app->limits, &newds);
        if (rc != BASIN_OK)
            goto done;
        src = store_dataset_insert(app->store, &newds, ds_id);
        if (src == STORE_EINVAL) /* refused a record built here from a valid spec: ours, 500 */
            src = STORE_EINTERNAL;
        if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "dataset");
            goto done;
        }
        inserted_ds = 1;
    }
    if (exp->architecture_id != NULL) {
        snprintf(ar_id, sizeof ar_id, "%s", exp->architecture_id);
    } else {
        rc = records_arch_build(exp->arch, &newar);
        if (rc != BASIN_OK)
            goto done;
        src = store_architecture_insert(app->store, &newar, ar_id);
        if (src == STORE_EINVAL)
            src = STORE_EINTERNAL;
        if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "architecture");
            goto done;
        }
        inserted_ar = 1;
    }

    canon = canonical_with_ids(exp, ds_id, ar_id);
    if (canon == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    /* the worker starts from this text: it must parse to the same experiment */
    spec_errors_clear(&errs);
    rc = spec_experiment_parse(canon, &app->limits, &again, &errs);
    if (rc == BASIN_EINVAL) {
        rep->log_cause = "the canonical experiment spec does not parse again";
        rc = reply_problem(rep, 500, NULL, "the experiment could not be stored", NULL, 0);
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;

    char okey[STORE_KEY_SIZE];
    if (spurious_objective_key(canon, ds_id, ar_id, okey, sizeof okey) != BASIN_OK)
        okey[0] = '\0'; /* the store derives it from the spec where it can */
    struct store_experiment_new ne = {.dataset_id = ds_id,
                                      .architecture_id = ar_id,
                                      .spec = canon,
                                      .restarts = (int64_t)exp->restarts,
                                      .seed = exp->train.seed,
                                      .run_seeds = NULL,
                                      .idempotency_key = key,
                                      .request_hash = key != NULL ? hash : NULL,
                                      .objective_key = okey[0] != '\0' ? okey : NULL};
    src = store_experiment_create(app->store, &ne, ex_id, &existed);
    if (src == STORE_EINVAL)
        src = STORE_EINTERNAL;
    if (src == STORE_ECONFLICT && key != NULL) {
        rc = reply_problem(rep, 409, "Idempotency-Key reused",
                           "this Idempotency-Key was used for a different request body", NULL, 0);
        goto done;
    }
    if (src == STORE_ENOTFOUND) {
        /* a referenced record was deleted since it was checked */
        struct problem_error pe = {exp->dataset_id != NULL ? "/dataset_id" : "/architecture_id",
                                   "the referenced record no longer exists"};
        rc = reply_problem(rep, 422, NULL, "the request refers to records that do not exist", &pe,
                           1);
        goto done;
    }
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "experiment");
        goto done;
    }
    if (!existed)
        app_notify(app);
    else if ((rc = reply_header(rep, "Idempotent-Replayed", "true")) != BASIN_OK)
        goto done;
    snprintf(location, sizeof location, "/v1/experiments/%s", ex_id);
    rc = reply_header(rep, "Location", location);
    if (rc == BASIN_OK)
        rc = answer_experiment(req, rep, 202, ex_id);
done:
    if (ex_id[0] == '\0' || existed) {
        /* nothing refers to records made for a submission that did not create an experiment */
        if (inserted_ds)
            store_dataset_delete(app->store, ds_id);
        if (inserted_ar)
            store_architecture_delete(app->store, ar_id);
    }
    records_dataset_release(&newds);
    records_arch_release(&newar);
    json_decref(canon);
    spec_experiment_free(again);
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    return rc;
}

/* ---- reads and state changes ---- */

int h_experiments_list(struct request *req, struct reply *rep)
{
    static const char *const statuses[] = {"any", "queued", "running", "finished", "cancelled"};
    struct app *app = req->app;
    struct store_experiment_list *l = NULL;
    json_t *items = NULL;
    const char *cursor = NULL;
    size_t limit = 0, which = 0;
    int rc = page_params_or_reply(req, rep, &limit, &cursor);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    rc = query_choice_or_reply(req, rep, "status", statuses, 5, 0, &which);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    int status = -1;
    if (which > 0) {
        enum store_exp_status s;
        if (store_exp_status_parse(statuses[which], &s) != STORE_OK)
            return BASIN_EINVAL;
        status = (int)s;
    }
    int src = store_experiment_list(app->store, status, limit, cursor, &l);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "experiments");
        goto done;
    }
    items = json_array();
    if (items == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    /* each item carries the computed summary of GET one, without the groupings (summary_json) */
    for (size_t i = 0; i < l->n; i++) {
        json_t *summary = NULL;
        rc = summary_json(app->store, &l->items[i], 0, &summary, &src);
        if (rc != BASIN_OK) {
            if (src != STORE_OK)
                rc = reply_store_error(rep, src, "experiments");
            goto done;
        }
        json_t *view = view_experiment(&l->items[i]);
        if (view != NULL && json_object_set(view, "summary", summary) != 0) {
            json_decref(view);
            view = NULL;
        }
        json_decref(summary);
        if (json_array_append_new(items, view) != 0) { /* steals view; fails for NULL */
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    rc = reply_page(req, rep, items, l->next_cursor);
    items = NULL;
done:
    json_decref(items);
    store_experiment_list_free(l);
    return rc;
}

int h_experiments_get(struct request *req, struct reply *rep)
{
    const char *id = NULL;
    int rc = experiment_id_or_reply(req, rep, &id);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    return answer_experiment(req, rep, 200, id);
}

int h_experiments_cancel(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    const char *id = NULL;
    int changed = 0;
    int rc = experiment_id_or_reply(req, rep, &id);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    int src = store_experiment_cancel(app->store, id, &changed);
    if (src == STORE_ECONFLICT)
        return reply_problemf(rep, 409, NULL,
                              "experiment %s already finished; there is nothing to cancel", id);
    if (src != STORE_OK)
        return store_error(rep, src, id);
    if (changed)
        app_notify(app);
    return answer_experiment(req, rep, 200, id);
}

int h_experiments_delete(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_experiment *e = NULL;
    const char *id = NULL;
    int rc = experiment_id_or_reply(req, rep, &id);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    int src = store_experiment_get(app->store, id, &e);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    if (e->status == STORE_EXP_QUEUED || e->status == STORE_EXP_RUNNING) {
        rc = reply_problemf(rep, 409, NULL,
                            "experiment %s is %s; cancel it first (POST /v1/experiments/%s/cancel)",
                            id, store_exp_status_name(e->status), id);
        goto done;
    }
    src = store_experiment_delete(app->store, id);
    if (src != STORE_OK) {
        rc = store_error(rep, src, id);
        goto done;
    }
    app_notify(app); /* event streams of this experiment end */
    rep->status = 204;
done:
    store_experiment_free(e);
    return rc;
}

int h_experiments_runs(struct request *req, struct reply *rep)
{
    static const char *const orders[] = {"index", "final_risk"};
    static const char *const statuses[] = {"any",      "queued", "running",
                                           "finished", "failed", "cancelled"};
    static const char *const spurious_choices[] = {"any", "true", "false"};
    struct app *app = req->app;
    struct store_run_list *l = NULL;
    struct spurious_context ctx;
    json_t *items = NULL;
    const char *id = NULL, *cursor = NULL;
    size_t limit = 0, order = 0, which = 0, spurious = 0;
    int rc = experiment_id_or_reply(req, rep, &id);
    if (rc == BASIN_OK)
        rc = page_params_or_reply(req, rep, &limit, &cursor);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "order", orders, 2, 0, &order);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "status", statuses, 6, 0, &which);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "spurious", spurious_choices, 3, 0, &spurious);
    if (rc != BASIN_OK)
        return rc == BASIN_EINVAL ? BASIN_OK : rc;
    struct store_run_filter f = {.status = -1,
                                 .verdict_label = request_query(req, "verdict"),
                                 .order = order == 1 ? STORE_ORDER_FINAL_RISK : STORE_ORDER_INDEX};
    if (which > 0) {
        enum store_run_status s;
        if (store_run_status_parse(statuses[which], &s) != STORE_OK)
            return BASIN_EINVAL;
        f.status = (int)s;
    }
    /* every item shows its spurious flag; ?spurious= filters on the same judgement (spurious.h),
     * in SQL, so pages and cursors stay exact */
    int src = spurious_context_load(app->store, id, &ctx);
    if (src == STORE_OK && spurious == 0) {
        src = store_run_list(app->store, id, &f, limit, cursor, &l);
    } else if (src == STORE_OK) {
        struct store_spurious_filter sf = {.mode = spurious == 1 ? STORE_SPURIOUS_TRUE
                                                                 : STORE_SPURIOUS_FALSE,
                                           .best = ctx.best.found ? ctx.best.final_risk : NAN,
                                           .tol_rel = ctx.tol_rel};
        src = store_run_list_spurious(app->store, id, &f, &sf, limit, cursor, &l);
    }
    if (src != STORE_OK) {
        rc = src == STORE_EINVAL ? reply_problem(rep, 400, "Invalid query parameter",
                                                 "query parameter 'cursor' is not a cursor of "
                                                 "this list",
                                                 NULL, 0)
                                 : store_error(rep, src, id);
        goto done;
    }
    items = json_array();
    if (items == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < l->n; i++) {
        json_t *v = view_run(&l->items[i]);
        if (v == NULL || spurious_attach(v, &l->items[i], &ctx) != BASIN_OK) {
            json_decref(v);
            rc = BASIN_ENOMEM;
            goto done;
        }
        if (json_array_append_new(items, v) != 0) { /* steals v */
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    rc = reply_page(req, rep, items, l->next_cursor);
    items = NULL;
done:
    json_decref(items);
    store_run_list_free(l);
    return rc;
}
