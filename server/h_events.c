/* GET /v1/experiments/{id}/events: an experiment's progress as Server-Sent Events.
 *
 * DESIGN
 * The store appends events in the same transaction as the change they describe ("status" on
 * every experiment status change, "run_finished" when a run becomes terminal) with strictly
 * increasing ids, so the stream is a cursor over that log: each event goes out with `id:` = the
 * store id, `event:` = its type and `data:` = its JSON, and a client that reconnects with
 * Last-Event-ID (or ?last_event_id= for clients that cannot set headers) resumes right after the
 * last event it saw, with nothing lost or repeated.
 *
 * The producer (sse.h) runs on the connection's thread: it reads the events after its cursor;
 * when there are none it waits on the app's change notifier (app_wait_change, woken by every
 * submission, run_finish and cancel) for at most its budget, capped at EVENTS_POLL_MS so that
 * changes made without a notification (another process on the same database) still show up.
 *
 * End of stream: the experiment is terminal (finished or cancelled), no run is still running
 * (runs of a cancelled experiment finish as cancelled after the status event) and every event
 * up to that moment was sent. The check reads the progress first and the events after, and a
 * run's terminal event commits with its status, so no event can be missed. A deleted experiment
 * ends the stream too. Reconnecting after the end gets the remaining events (none) and ends. */
#include "handlers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "ids.h"
#include "sse.h"

enum {
    EVENTS_BATCH = 200,   /* events read per store call */
    EVENTS_POLL_MS = 1000 /* longest wait between two looks at the store */
};

struct events_ctx {
    struct app *app;
    char id[STORE_ID_SIZE];
    int64_t after; /* the id of the last event sent */
    uint64_t seen; /* the notifier's sequence number at the last look */
};

static void events_ctx_free(void *p)
{
    basin_free(p);
}

/* Compact JSON text of v (null for NULL), NUL-terminated, basin_malloc'd; NULL on OOM. */
static char *dump_compact(const json_t *v)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    json_t *null = NULL;
    if (v == NULL)
        v = null = json_null();
    size_t len = json_dumpb(v, NULL, 0, flags);
    char *text = len > 0 ? basin_malloc(len + 1) : NULL;
    if (text != NULL && json_dumpb(v, text, len, flags) == len) {
        text[len] = '\0';
    } else {
        basin_free(text);
        text = NULL;
    }
    json_decref(null);
    return text;
}

/* Emit every event after ctx->after (up to EVENTS_BATCH); *sent counts them. Store codes. */
static int emit_batch(struct events_ctx *ctx, struct sse_writer *w, size_t *sent)
{
    struct store_event_list *l = NULL;
    char idbuf[32];
    int src = store_events_since(ctx->app->store, ctx->id, ctx->after, EVENTS_BATCH, &l);
    *sent = 0;
    if (src != STORE_OK)
        return src;
    for (size_t i = 0; i < l->n; i++) {
        const struct store_event *ev = &l->items[i];
        char *data = dump_compact(ev->data);
        if (data == NULL) {
            src = STORE_ENOMEM;
            break;
        }
        snprintf(idbuf, sizeof idbuf, "%" PRId64, ev->id);
        int rc = sse_emit(w, idbuf, ev->type, data);
        basin_free(data);
        if (rc != BASIN_OK) {
            src = STORE_ENOMEM;
            break;
        }
        ctx->after = ev->id;
        (*sent)++;
    }
    store_event_list_free(l);
    return src;
}

/* 1 when the experiment can produce no more events: terminal with nothing running. */
static int experiment_settled(struct events_ctx *ctx, int *src)
{
    struct store_experiment *e = NULL;
    *src = store_experiment_get(ctx->app->store, ctx->id, &e);
    if (*src != STORE_OK)
        return 0;
    int settled = (e->status == STORE_EXP_FINISHED || e->status == STORE_EXP_CANCELLED) &&
                  e->progress.running == 0;
    store_experiment_free(e);
    return settled;
}

static int events_produce(void *p, struct sse_writer *w, unsigned wait_ms)
{
    struct events_ctx *ctx = p;
    size_t sent = 0;
    int src = emit_batch(ctx, w, &sent);
    if (src == STORE_ENOTFOUND)
        return SSE_DONE; /* the experiment was deleted */
    if (src == STORE_ENOMEM)
        return BASIN_ENOMEM;
    if (src != STORE_OK)
        return SSE_MORE; /* busy or failing store: try again in the next slice */
    if (sent == EVENTS_BATCH)
        return SSE_MORE; /* more are waiting: hand these to the client first */
    int settled = experiment_settled(ctx, &src);
    if (src == STORE_ENOTFOUND)
        return SSE_DONE;
    if (settled) {
        /* everything the settled experiment logged is committed: send the rest and end */
        do {
            src = emit_batch(ctx, w, &sent);
        } while (src == STORE_OK && sent == EVENTS_BATCH);
        if (src == STORE_ENOMEM)
            return BASIN_ENOMEM;
        return src == STORE_OK || src == STORE_ENOTFOUND ? SSE_DONE : SSE_MORE;
    }
    if (sent > 0)
        return SSE_MORE;
    app_wait_change(ctx->app, &ctx->seen, wait_ms < EVENTS_POLL_MS ? wait_ms : EVENTS_POLL_MS);
    src = emit_batch(ctx, w, &sent);
    if (src == STORE_ENOTFOUND)
        return SSE_DONE;
    if (src == STORE_ENOMEM)
        return BASIN_ENOMEM;
    return SSE_MORE;
}

/* A non-negative decimal event id ("" and absent mean 0). BASIN_EINVAL otherwise. */
static int parse_event_id(const char *s, int64_t *out)
{
    char *end = NULL;
    *out = 0;
    if (s == NULL || s[0] == '\0')
        return BASIN_OK;
    if (s[0] < '0' || s[0] > '9')
        return BASIN_EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return BASIN_EINVAL;
    *out = (int64_t)v;
    return BASIN_OK;
}

int h_experiments_events(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_experiment *e = NULL;
    struct events_ctx *ctx = NULL;
    int64_t after = 0;
    int rc = BASIN_OK;

    const char *id = request_param(req, "id");
    if (id == NULL || !ids_valid(id, IDS_PREFIX_EXPERIMENT)) {
        rc = reply_problem(rep, 404, NULL, "no experiment has this id", NULL, 0);
        goto done;
    }
    const char *last = sse_last_event_id(req);
    const char *name = "Last-Event-ID";
    if (last == NULL) {
        last = request_query(req, "last_event_id");
        name = "last_event_id";
    }
    if (parse_event_id(last, &after) != BASIN_OK) {
        rc = reply_problemf(rep, 400, "Invalid event id",
                            "%s must be an event id this stream sent (a non-negative integer)",
                            name);
        goto done;
    }
    int src = store_experiment_get(app->store, id, &e);
    if (src != STORE_OK) {
        char what[64];
        snprintf(what, sizeof what, "experiment %s", id);
        rc = reply_store_error(rep, src, what);
        goto done;
    }
    ctx = basin_calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    ctx->app = app;
    snprintf(ctx->id, sizeof ctx->id, "%s", id);
    ctx->after = after;
    app_wait_change(app, &ctx->seen, 0); /* take the current sequence number */
    rc = sse_reply(rep, events_produce, ctx, events_ctx_free);
    ctx = NULL; /* owned by the stream (or freed by sse_reply) */
done:
    store_experiment_free(e);
    basin_free(ctx);
    return rc;
}
