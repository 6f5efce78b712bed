/* Allocation faults in request handling: each request below runs through the real pipeline
 * (router_match → router_check_content_type → router_dispatch → handler → store) in-process,
 * with the Nth allocation failing, for N = 1, 2, ... until a run makes no failed allocation.
 *
 * Three allocators are faulted, one sweep each:
 *  - the basin allocator (alloc.h), which core/ and the server's own code use, with jansson
 *    pointed at it too (json_set_alloc_funcs(basin_malloc, basin_free) for the whole process);
 *    both "only the Nth fails" and "the Nth and every later one fail" (then even the error
 *    path cannot allocate and the transport's static 500 is the answer);
 *  - SQLite's allocator (SQLITE_CONFIG_MALLOC wrapping SQLite's own), so the store meets
 *    SQLITE_NOMEM in every statement, bind, step and commit a request makes.
 * Every faulted run must answer 500 (a problem+json body whenever an allocation could still
 * succeed) and leave no block of the basin allocator live (tests/unit/failing_alloc.h counts
 * them, jansson's values included); the final, unfaulted run must give the normal answer.
 * jansson's decoder is the one thing that cannot take a failed allocation (see json_loadb
 * below): the request body is parsed before the fault is armed, and decoding inside the store
 * runs with the fault suspended (the parse step's own failures are covered by test_http).
 * Expected answers are the statuses of the API contract (201, 202, 200), not outputs of the
 * code under test. */
#define _GNU_SOURCE /* RTLD_NEXT */

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "failing_alloc.h"
#include "handlers.h"
#include "limits.h"
#include "reply.h"
#include "router.h"
#include "store.h"

/* ---- SQLite's allocator, wrapped to fail on request ---- */

static sqlite3_mem_methods sq_default;
static struct {
    size_t calls, fail_at, failures;
    int from_n; /* fail every call from fail_at on, else only that one */
} sqf;

static int sq_should_fail(void)
{
    if (sqf.fail_at == 0)
        return 0;
    sqf.calls++;
    int fail = sqf.from_n ? sqf.calls >= sqf.fail_at : sqf.calls == sqf.fail_at;
    if (fail)
        sqf.failures++;
    return fail;
}

static void *sq_malloc(int n)
{
    return sq_should_fail() ? NULL : sq_default.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
    return sq_should_fail() ? NULL : sq_default.xRealloc(p, n);
}

static void sq_free(void *p)
{
    sq_default.xFree(p);
}

static int sq_size(void *p)
{
    return sq_default.xSize(p);
}

static int sq_roundup(int n)
{
    return sq_default.xRoundup(n);
}

static int sq_init(void *app_data)
{
    return sq_default.xInit(app_data);
}

static void sq_shutdown(void *app_data)
{
    sq_default.xShutdown(app_data);
}

/* Before SQLite initialises: route its allocations through the wrapper above. */
static int sqlite_alloc_install(void)
{
    static sqlite3_mem_methods wrapped;
    sqlite3_shutdown();
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sq_default) != SQLITE_OK)
        return -1;
    wrapped = sq_default;
    wrapped.xMalloc = sq_malloc;
    wrapped.xRealloc = sq_realloc;
    wrapped.xFree = sq_free;
    wrapped.xSize = sq_size;
    wrapped.xRoundup = sq_roundup;
    wrapped.xInit = sq_init;
    wrapped.xShutdown = sq_shutdown;
    /* lookaside slots would hide small allocations from the wrapper */
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK)
        return -1;
    return sqlite3_initialize() == SQLITE_OK ? 0 : -1;
}

/* ---- jansson's decoder runs with faults suspended ---- */

/* The failing allocator of the sweep in progress (NULL outside a sweep), and its N (to set a
 * debugger's breakpoint condition on). */
static failing_alloc *current_fa;
static size_t current_n;
static const void *current_request;

/* jansson 2.14's lexer ignores a failed allocation while it saves a token's text: the decoded
 * value silently loses a character, or an assertion aborts the process (lex_unget_unsave). So
 * every json_loadb the code under test makes runs with the fault suspended — its allocations
 * are still made through, and counted live by, the failing allocator, so a leaked decoded value
 * is caught — and the sweep goes on counting after it. This definition in the executable takes
 * the place of jansson's for the statically linked server code; the real one is found with
 * RTLD_NEXT. */
json_t *json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error)
{
    typedef json_t *(*loadb_fn)(const char *, size_t, size_t, json_error_t *);
    static loadb_fn real;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "json_loadb");
        if (sym == NULL)
            abort();
        memcpy(&real, &sym, sizeof real);
    }
    failing_alloc *fa = current_fa;
    if (fa == NULL)
        return real(buffer, buflen, flags, error);
    size_t calls = fa->calls, fail_at = fa->fail_at;
    fa->fail_at = 0;
    json_t *j = real(buffer, buflen, flags, error);
    fa->calls = calls;
    fa->fail_at = fail_at;
    return j;
}

/* ---- fixture: a store and the records the requests refer to ---- */

static struct {
    char dir[64];
    char db[128];
    struct app app;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE], run[STORE_ID_SIZE];
} g;

/* A request as the transport would hand it over. */
struct rq {
    const char *method;
    const char *path;
    const char *query; /* "a=b&c=d" (values not encoded), NULL for none */
    const char *ctype; /* Content-Type, NULL for none */
    const char *body;  /* NULL for none */
    const char *key;   /* Idempotency-Key, NULL for none */
    int want;          /* the status of the unfaulted run */
};

static const char *rq_lookup(void *ctx, enum request_lookup_kind kind, const char *name)
{
    static char value[256];
    const struct rq *q = ctx;
    if (kind == REQUEST_LOOKUP_HEADER) {
        if (strcasecmp(name, "Idempotency-Key") == 0)
            return q->key;
        if (strcasecmp(name, "Content-Type") == 0)
            return q->ctype;
        return NULL;
    }
    size_t nlen = strlen(name);
    for (const char *p = q->query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=' &&
            len - nlen - 1 < sizeof value) {
            memcpy(value, p + nlen + 1, len - nlen - 1);
            value[len - nlen - 1] = '\0';
            return value;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Run one request; pre is the already parsed JSON body (stolen), NULL when there is none.
 * The answer is left in rep (status 0 = the transport's static 500). */
static void run_request(const struct rq *q, json_t *pre, struct reply *rep)
{
    struct route_match m;
    struct request req;
    enum body_kind kind = BODY_KIND_NONE;
    memset(&m, 0, sizeof m);
    reply_init(rep, q->path);
    int rc = router_match(basinlab_routes, basinlab_route_count, q->method, q->path, &m, rep);
    if (rc == BASIN_OK)
        rc = router_check_content_type(m.route, q->ctype, q->body != NULL, &kind, rep);
    if (rc != BASIN_OK) {
        if (rc == BASIN_ENOMEM)
            reply_clear(rep); /* as http.c does: nothing answered → static 500 */
        json_decref(pre);
        route_match_clear(&m);
        return;
    }
    memset(&req, 0, sizeof req);
    req.method = q->method;
    req.path = q->path;
    req.request_id = "alloc-test";
    req.client = "127.0.0.1";
    req.app = &g.app;
    req.route = m.route;
    req.n_params = m.n_params;
    memcpy(req.params, m.params, sizeof req.params);
    /* a JSON body arrives parsed (see the file comment); CSV stays raw */
    req.body_kind = kind == BODY_KIND_JSON ? BODY_KIND_NONE : kind;
    req.json = pre;
    req.body = q->body;
    req.body_len = q->body ? strlen(q->body) : 0;
    req.lookup = rq_lookup;
    req.lookup_ctx = (void *)q;
    router_dispatch(&req, rep);
    route_match_clear(&m);
}

/* The unfaulted answer of a request (for the fixture). */
static int plain_request(const struct rq *q, char id[STORE_ID_SIZE])
{
    struct reply rep;
    json_t *pre = NULL;
    if (q->body != NULL && q->ctype != NULL && strcmp(q->ctype, "application/json") == 0)
        pre = json_loads(q->body, 0, NULL);
    run_request(q, pre, &rep);
    int status = rep.status;
    if (id != NULL && rep.body != NULL) {
        json_t *j = json_loadb(rep.body, rep.body_len, 0, NULL);
        snprintf(id, STORE_ID_SIZE, "%s", json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    reply_clear(&rep);
    return status;
}

static const char ds_body[] =
    "{\"name\": \"four\", \"kind\": \"inline\", \"x\": [[0,0],[0,1],[1,0],"
    "[1,1]], \"y\": [0,1,1,0]}";
static const char ar_body[] = "{\"name\": \"a3\", \"input_shape\": [2], \"layers\": [{\"type\": "
                              "\"dense\", \"units\": 3}, {\"type\": \"activation\", \"kind\": "
                              "\"relu\"}, {\"type\": \"dense\", \"units\": 1}]}";
static const char ex_inline[] =
    "{\"dataset\": {\"kind\": \"inline\", \"x\": [[0,0],[0,1],[1,0],[1,1]], \"y\": [0,1,1,0]}, "
    "\"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 2}, "
    "{\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}, "
    "\"loss\": \"squared\", \"optimizer\": {\"kind\": \"adam\", \"lr\": 0.01}, \"restarts\": 3, "
    "\"seed\": 4, \"max_steps\": 100}";
static char ex_by_id[256];

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    /* tmpfs when there is one: thousands of commits, each fsynced (synchronous=FULL) */
    snprintf(g.dir, sizeof g.dir, "%s/basinlab_alloc_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.db, sizeof g.db, "%s/store.db", g.dir);
    /* no rendered-response cache: every GET of the sweep must go through the render path */
    setenv("BASINLAB_RUN_CACHE_BYTES", "0", 1);
    if (app_init(&g.app) != BASIN_OK)
        return -1;
    limits_defaults(&g.app.limits);
    if (store_open(g.db, NULL, &g.app.store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    const struct rq ds = {"POST", "/v1/datasets", NULL, "application/json", ds_body, NULL, 201};
    const struct rq ar = {"POST", "/v1/architectures", NULL, "application/json", ar_body, NULL,
                          201};
    if (plain_request(&ds, g.ds) != 201 || plain_request(&ar, g.ar) != 201)
        return -1;
    snprintf(ex_by_id, sizeof ex_by_id,
             "{\"dataset_id\": \"%s\", \"architecture_id\": \"%s\", \"restarts\": 2, \"seed\": 1, "
             "\"max_steps\": 50}",
             g.ds, g.ar);
    const struct rq ex = {"POST", "/v1/experiments", NULL, "application/json", ex_by_id, NULL, 202};
    if (plain_request(&ex, g.ex) != 202)
        return -1;
    /* one run finished with a trajectory and an end point, as a worker would leave it */
    struct store_claim *claim = NULL;
    if (store_claim_runs(g.app.store, "alloc-test", 1, &claim) != STORE_OK || claim == NULL)
        return -1;
    snprintf(g.run, sizeof g.run, "%s", claim->runs[0].id);
    struct store_traj_point pts[40];
    for (int i = 0; i < 40; i++)
        pts[i] = (struct store_traj_point){i * 5, 1.0 / (1.0 + i), 0.1 * i, 2.0 + i};
    double params[13];
    for (int i = 0; i < 13; i++)
        params[i] = 0.25 * i - 1.0;
    struct store_run_result res;
    memset(&res, 0, sizeof res);
    res.run_id = g.run;
    res.token = claim->token;
    res.status = STORE_RUN_FINISHED;
    res.steps = 195;
    res.stop_reason = "max_steps";
    res.initial_risk = 1.0;
    res.final_risk = 0.025;
    res.grad_norm = 0.01;
    res.param_norm = 3.0;
    res.params = params;
    res.n_params = 13;
    int rc = store_trajectory_append(g.app.store, g.run, claim->token, pts, 40);
    if (rc == STORE_OK)
        rc = store_run_finish(g.app.store, &res);
    store_claim_free(claim);
    return rc == STORE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char path[192];
    store_close(g.app.store);
    app_destroy(&g.app);
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", g.dir, files[i]);
        unlink(path);
    }
    rmdir(g.dir);
    return 0;
}

/* ---- the sweep ---- */

enum fault_target { FAULT_BASIN, FAULT_SQLITE };

struct sweep_report {
    size_t faulted_runs;
    size_t survived;        /* faulted runs that gave the unfaulted answer all the same */
    size_t allocations;     /* made by an unfaulted run */
    size_t problem_answers; /* faulted runs answered with a problem+json 500 */
};

/* Drop what legitimately differs between two runs of the same request (new ids, times). */
static void strip_volatile(json_t *j)
{
    static const char *const keys[] = {"id",         "dataset_id", "architecture_id",
                                       "created_at", "updated_at", "finished_at"};
    size_t i;
    json_t *v;
    if (json_is_object(j)) {
        for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
            json_object_del(j, keys[i]);
        const char *k;
        json_object_foreach(j, k, v) strip_volatile(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) strip_volatile(v);
    }
}

/* The answer of a run, comparable across runs: NULL when it is not JSON. Made and freed with
 * the faults off. */
static json_t *comparable(const char *body, size_t len)
{
    json_t *j = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    strip_volatile(j);
    return j;
}

/* Every N up to SWEEP_DENSE, then about SWEEP_SPARSE values of N spread over the rest of the
 * request's allocations, then on until a run makes no failed allocation: full coverage of the
 * cheap beginning of a request (parsing, validation), bounded time for the long tail. */
enum { SWEEP_DENSE = 200, SWEEP_SPARSE = 200 };
/* SQLite's sweeps are dearer: a connection whose ROLLBACK failed is closed, so the next run
 * opens (and faults) a new one. */
enum { SQLITE_DENSE = 64, SQLITE_SPARSE = 64 };

/* How many allocations of `target` one unfaulted run of q makes. */
static size_t count_allocations(const struct rq *q, enum fault_target target)
{
    failing_alloc fa;
    struct reply rep;
    json_t *pre = NULL;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_ONLY_N);
    if (q->body != NULL && q->ctype != NULL && strcmp(q->ctype, "application/json") == 0)
        pre = json_loads(q->body, 0, NULL);
    size_t base = fa.calls;
    memset(&sqf, 0, sizeof sqf);
    sqf.fail_at = SIZE_MAX; /* count, never fail */
    current_fa = &fa;
    run_request(q, pre, &rep);
    current_fa = NULL;
    size_t n = target == FAULT_BASIN ? fa.calls - base : sqf.calls;
    sqf.fail_at = 0;
    reply_clear(&rep);
    failing_alloc_remove();
    return n;
}

/* N = 1, 2, ... until the request makes no failed allocation; see the file comment. A faulted
 * run that still succeeds (an allocation whose failure the code can do without, like SQLite's
 * benign ones) must give exactly the unfaulted answer: a failure may be survived, never
 * turned into a different result. */
static void sweep(const struct rq *q, enum fault_target target, failing_alloc_mode mode,
                  struct sweep_report *rep_out)
{
    const size_t max_n = 200000;
    memset(rep_out, 0, sizeof *rep_out);
    struct reply ref_rep;
    json_t *pre0 = NULL;
    if (q->body != NULL && q->ctype != NULL && strcmp(q->ctype, "application/json") == 0)
        pre0 = json_loads(q->body, 0, NULL);
    run_request(q, pre0, &ref_rep);
    if (ref_rep.status != q->want)
        fail_msg("%s %s unfaulted: %d (want %d)", q->method, q->path, ref_rep.status, q->want);
    json_t *ref = comparable(ref_rep.body, ref_rep.body_len);
    char *ref_text = ref_rep.body != NULL ? strndup(ref_rep.body, ref_rep.body_len) : NULL;
    reply_clear(&ref_rep);
    size_t total = count_allocations(q, target);
    size_t dense = target == FAULT_BASIN ? SWEEP_DENSE : SQLITE_DENSE;
    size_t sparse = target == FAULT_BASIN ? SWEEP_SPARSE : SQLITE_SPARSE;
    size_t stride = total > dense + sparse ? (total - dense) / sparse : 1;
    for (size_t i = 0, n = 1; n <= max_n; i++, n = i < dense ? i + 1 : n + stride) {
        failing_alloc fa;
        struct reply rep;
        json_t *pre = NULL;
        failing_alloc_install(&fa, 0, mode);
        if (q->body != NULL && q->ctype != NULL && strcmp(q->ctype, "application/json") == 0) {
            pre = json_loads(q->body, 0, NULL);
            assert_non_null(pre);
        }
        current_fa = &fa;
        current_n = n;
        current_request = q;
        if (target == FAULT_BASIN) {
            fa.fail_at = fa.calls + n;
        } else {
            memset(&sqf, 0, sizeof sqf);
            sqf.from_n = mode == FAILING_ALLOC_FROM_N;
            sqf.fail_at = n;
        }
        run_request(q, pre, &rep);
        size_t failures = target == FAULT_BASIN ? fa.failures : sqf.failures;
        sqf.fail_at = 0;
        int status = rep.status;
        int problem = rep.content_type != NULL &&
                      strcmp(rep.content_type, "application/problem+json") == 0 && rep.body_len > 0;
        char cause[160] = "";
        if (status != q->want && rep.body != NULL)
            snprintf(cause, sizeof cause, "%.*s",
                     (int)(rep.body_len < sizeof cause - 1 ? rep.body_len : sizeof cause - 1),
                     rep.body);
        char *body = NULL;
        size_t body_len = rep.body_len;
        if (status == q->want && rep.body != NULL) {
            body = malloc(rep.body_len + 1);
            assert_non_null(body);
            memcpy(body, rep.body, rep.body_len);
            body[rep.body_len] = '\0';
        }
        reply_clear(&rep);
        current_fa = NULL;
        failing_alloc_remove();
        if (status == q->want && failures > 0) {
            json_t *got = comparable(body, body_len);
            int same = ref == NULL ? (body == NULL || (ref_text && strcmp(body, ref_text) == 0))
                                   : json_equal(got, ref);
            json_decref(got);
            /* /metrics carries counters that move between runs: its status is what counts */
            if (!same && strcmp(q->path, "/metrics") != 0)
                fail_msg("%s %s: N=%zu answered %d with a different body: %.300s", q->method,
                         q->path, n, status, body ? body : "(none)");
        }
        free(body);
        if (fa.live != 0)
            fail_msg("%s %s: N=%zu leaked %ld blocks (status %d)", q->method, q->path, n, fa.live,
                     status);
        if (failures == 0) {
            if (status != q->want)
                fail_msg("%s %s unfaulted: %d (want %d) %s", q->method, q->path, status, q->want,
                         cause);
            json_decref(ref);
            free(ref_text);
            rep_out->allocations = total;
            return;
        }
        rep_out->faulted_runs++;
        if (status == q->want) {
            rep_out->survived++;
            continue;
        }
        if (status != 500 && status != 0)
            fail_msg("%s %s: N=%zu answered %d, not 500: %s", q->method, q->path, n, status, cause);
        if (problem)
            rep_out->problem_answers++;
        /* with only one failure the error path can still build its problem body */
        if (mode == FAILING_ALLOC_ONLY_N && target == FAULT_BASIN && !problem && status != 0)
            fail_msg("%s %s: N=%zu answered 500 without a problem body", q->method, q->path, n);
    }
    fail_msg("%s %s: still failing after %zu allocations", q->method, q->path, max_n);
}

/* ---- the requests ---- */

static char path_buf[16][160];

static void requests(struct rq *out, size_t *n)
{
    size_t k = 0;
    out[k++] = (struct rq){"POST", "/v1/datasets", NULL, "application/json", ds_body, NULL, 201};
    out[k++] = (struct rq){"POST",
                           "/v1/datasets",
                           "y_cols=1&header=true&name=up",
                           "text/csv",
                           "a,b,t\n1,2,3\n4,5,6.5\n",
                           NULL,
                           201};
    out[k++] =
        (struct rq){"POST", "/v1/architectures", NULL, "application/json", ar_body, NULL, 201};
    out[k++] =
        (struct rq){"POST", "/v1/experiments", NULL, "application/json", ex_inline, NULL, 202};
    out[k++] = (struct rq){"POST",   "/v1/experiments", NULL, "application/json",
                           ex_by_id, "alloc-key-1",     202};
    out[k++] = (struct rq){"GET", "/v1/datasets", "limit=5", NULL, NULL, NULL, 200};
    snprintf(path_buf[0], sizeof path_buf[0], "/v1/datasets/%s", g.ds);
    out[k++] = (struct rq){"GET", path_buf[0], NULL, NULL, NULL, NULL, 200};
    snprintf(path_buf[1], sizeof path_buf[1], "/v1/datasets/%s/points", g.ds);
    out[k++] = (struct rq){"GET", path_buf[1], NULL, NULL, NULL, NULL, 200};
    snprintf(path_buf[2], sizeof path_buf[2], "/v1/experiments/%s", g.ex);
    out[k++] = (struct rq){"GET", path_buf[2], NULL, NULL, NULL, NULL, 200};
    snprintf(path_buf[3], sizeof path_buf[3], "/v1/experiments/%s/runs", g.ex);
    out[k++] = (struct rq){"GET", path_buf[3], "order=final_risk&limit=10", NULL, NULL, NULL, 200};
    snprintf(path_buf[4], sizeof path_buf[4], "/v1/runs/%s", g.run);
    out[k++] = (struct rq){"GET", path_buf[4], NULL, NULL, NULL, NULL, 200};
    snprintf(path_buf[5], sizeof path_buf[5], "/v1/runs/%s/trajectory", g.run);
    out[k++] = (struct rq){"GET", path_buf[5], "max_points=8", NULL, NULL, NULL, 200};
    snprintf(path_buf[6], sizeof path_buf[6], "/v1/runs/%s/params", g.run);
    out[k++] = (struct rq){"GET", path_buf[6], NULL, NULL, NULL, NULL, 200};
    out[k++] = (struct rq){"GET", "/v1/experiments", "status=running", NULL, NULL, NULL, 200};
    out[k++] = (struct rq){"GET", "/metrics", NULL, NULL, NULL, NULL, 200};
    out[k++] = (struct rq){"GET", "/v1/limits", NULL, NULL, NULL, NULL, 200};
    *n = k;
}

static void sweep_all(enum fault_target target, failing_alloc_mode mode)
{
    struct rq qs[24];
    size_t n = 0;
    requests(qs, &n);
    for (size_t i = 0; i < n; i++) {
        struct sweep_report rep;
        sweep(&qs[i], target, mode, &rep);
        fprintf(stderr, "  %-6s %-40.40s %5zu allocations, %4zu faulted runs (%zu survived)\n",
                qs[i].method, qs[i].path, rep.allocations, rep.faulted_runs, rep.survived);
        /* the request did allocate (SQLite: if it touches the store): something was tested */
        assert_true(rep.faulted_runs > 0 || (target == FAULT_SQLITE && rep.allocations == 0));
        /* runs that did not survive answered a problem when the error path could allocate
         * (/metrics survives a failing store by design: it leaves the store's gauges out) */
        if ((target == FAULT_SQLITE || mode == FAILING_ALLOC_ONLY_N) &&
            rep.faulted_runs > rep.survived)
            assert_true(rep.problem_answers > 0);
    }
}

static void test_basin_only_nth(void **state)
{
    (void)state;
    sweep_all(FAULT_BASIN, FAILING_ALLOC_ONLY_N);
}

static void test_basin_from_nth(void **state)
{
    (void)state;
    sweep_all(FAULT_BASIN, FAILING_ALLOC_FROM_N);
}

static void test_sqlite_only_nth(void **state)
{
    (void)state;
    sweep_all(FAULT_SQLITE, FAILING_ALLOC_ONLY_N);
}

static void test_sqlite_from_nth(void **state)
{
    (void)state;
    sweep_all(FAULT_SQLITE, FAILING_ALLOC_FROM_N);
}

/* After all that, the store still answers and holds one experiment for the Idempotency-Key. */
static void test_store_intact_afterwards(void **state)
{
    (void)state;
    struct rq again = {"POST",   "/v1/experiments", NULL, "application/json",
                       ex_by_id, "alloc-key-1",     202};
    char id[STORE_ID_SIZE];
    assert_int_equal(plain_request(&again, id), 202);
    struct store_experiment_list *l = NULL;
    size_t keyed = 0;
    char cursor[STORE_CURSOR_SIZE] = "";
    do {
        assert_int_equal(store_experiment_list(g.app.store, -1, 1000, cursor, &l), STORE_OK);
        for (size_t i = 0; i < l->n; i++) {
            if (l->items[i].idempotency_key != NULL &&
                strcmp(l->items[i].idempotency_key, "alloc-key-1") == 0) {
                keyed++;
                assert_string_equal(l->items[i].id, id);
            }
        }
        snprintf(cursor, sizeof cursor, "%s", l->next_cursor);
        store_experiment_list_free(l);
    } while (cursor[0] != '\0');
    assert_int_equal(keyed, 1);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(g.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    /* before any allocation either library makes */
    if (sqlite_alloc_install() != 0) {
        fprintf(stderr, "cannot wrap SQLite's allocator\n");
        return 1;
    }
    json_set_alloc_funcs(basin_malloc, basin_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basin_only_nth),          cmocka_unit_test(test_basin_from_nth),
        cmocka_unit_test(test_sqlite_only_nth),         cmocka_unit_test(test_sqlite_from_nth),
        cmocka_unit_test(test_store_intact_afterwards),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
