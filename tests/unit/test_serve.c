/* End-to-end tests of `basinlab serve`: the real binary (BASINLAB_BINARY) started on port 0
 * with a database in a temporary directory, driven over real HTTP with libcurl. Covers the
 * experiment handlers (submit, idempotency, validation pointers, list/get/runs, cancel, delete),
 * the SSE event stream with resumption, ETag/304, chunked bodies, concurrent clients, the
 * SIGTERM drain and restart, and a SIGKILL mid-run followed by a restart (every run finishes
 * exactly once; the database passes PRAGMA integrity_check). Two cases run in-process instead
 * (an HTTP server on the real route table without workers), because they need a state that a
 * live server reaches only by timing luck: a full queue (429) and a draining server (503).
 * Plus the flag/environment parsing of config.c.
 *
 * Expected values never come from the code under test: ordering by final_risk is checked
 * against a sort done here, the linear-fit risk against normal equations solved here, event
 * counts against the number of runs submitted.
 *
 * With BASINLAB_TEST_STORE set to a postgres:// URL (ctest's test_serve_pg, scripts/pg) every
 * server runs on PostgreSQL instead, each temporary directory mapped to its own schema
 * (store_location), with a 3 s lease so that a restart after SIGKILL gets the killed
 * process's runs back quickly; direct queries go through libpq. */
#define _XOPEN_SOURCE 700 /* nftw */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "app.h"
#include "basin/status.h"
#include "config.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "serve.h"
#include "store.h"

#define XOR_DATASET                                                                                \
    "\"dataset\": {\"kind\": \"generator\", \"generator\": {\"name\": \"xor\", \"n\": 40, "        \
    "\"noise\": 0, \"seed\": 1}}"
#define XOR_ARCH                                                                                   \
    "\"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 2}, "  \
    "{\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}"

/* The xor example, small: 8 restarts of a few hundred steps. */
static const char xor_body[] = "{" XOR_DATASET ", " XOR_ARCH ", \"loss\": \"squared\", "
                               "\"optimizer\": {\"kind\": \"gd\", \"lr\": 0.1}, \"restarts\": 8, "
                               "\"seed\": 7, \"max_steps\": 300}";

/* ---- time ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- temporary directory ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the store under test ---- */

/* The PostgreSQL URL under test, or NULL for SQLite files. */
static const char *pg_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    return u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0) ? u
                                                                                             : NULL;
}

/* A schema name for a temporary directory: its base name, lowercased, as [a-z0-9_]. */
static void schema_of(const char *dir, char *out, size_t cap)
{
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    size_t o = 0;
    o += (size_t)snprintf(out, cap, "t_");
    for (; *base && o + 1 < cap; base++) {
        char c = *base;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[o++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
    }
    out[o] = '\0';
}

/* The store location for the database file `file` in dir: the file, or on PostgreSQL the URL
 * with the directory's schema. */
static void store_location(const char *dir, const char *file, char *out, size_t cap)
{
    char schema[96];
    if (!pg_url()) {
        snprintf(out, cap, "%s/%s", dir, file);
        return;
    }
    schema_of(dir, schema, sizeof schema);
    snprintf(out, cap, "%s%sschema=%s", pg_url(), strchr(pg_url(), '?') ? "&" : "?", schema);
}

/* A libpq connection whose search_path is the schema of location (PostgreSQL only). */
static PGconn *pg_connect(const char *location)
{
    const char *sch = strstr(location, "schema=");
    char sql[160];
    PGconn *c = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_non_null(sch);
    snprintf(sql, sizeof sql, "SET search_path TO %.100s", sch + 7);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

/* ---- the server process ---- */

struct server {
    pid_t pid;
    int port;
    char db[512];
    char log[512];
};

/* Start `basinlab serve --port 0 --db DIR/basinlab.db --workers N` and read the port from its
 * listening line. stderr (the access log) goes to DIR/server.log. */
static void server_start(const char *dir, unsigned workers, struct server *s)
{
    int pipefd[2];
    char workers_text[16];
    store_location(dir, "basinlab.db", s->db, sizeof s->db);
    snprintf(s->log, sizeof s->log, "%s/server.log", dir);
    snprintf(workers_text, sizeof workers_text, "%u", workers);
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], STDOUT_FILENO);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        if (pg_url())
            execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", s->db,
                  "--workers", workers_text, "--lease-timeout", "3", (char *)NULL);
        else
            execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", s->db,
                  "--workers", workers_text, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->port = 0;
    char line[512];
    size_t len = 0;
    double t0 = now_s();
    while (len + 1 < sizeof line && now_s() - t0 < 15.0) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(pipefd[0], line + len, 1);
        if (n <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(pipefd[0]);
    /* "basinlab listening on http://127.0.0.1:PORT (db PATH, N workers)" */
    const char *p = strstr(line, "http://127.0.0.1:");
    assert_non_null(p);
    s->port = atoi(p + strlen("http://127.0.0.1:"));
    assert_true(s->port > 0 && s->port < 65536);
    char expect[600];
    snprintf(expect, sizeof expect, "(db %s, %u workers)", s->db, workers);
    assert_non_null(strstr(line, expect));
}

/* Send sig and wait up to timeout_s for the exit. Returns the exit status (or 128 + signal);
 * -1 when it did not exit in time (it is then killed). *elapsed_s: seconds until it exited. */
static int server_stop(struct server *s, int sig, double timeout_s, double *elapsed_s)
{
    int status = 0;
    double t0 = now_s();
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (now_s() - t0 > timeout_s) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    if (elapsed_s != NULL)
        *elapsed_s = now_s() - t0;
    s->pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* ---- HTTP ---- */

/* One request: a body goes as JSON unless c->headers name a type, and 15 s unless
 * c->timeout_ms says otherwise; status < 0: no answer (-CURLcode). */
static void http(int port, const struct http_req *c, struct http_resp *r)
{
    struct http_req q = *c;
    if (q.body != NULL) {
        q.body_len = strlen(q.body);
        if (q.content_type == NULL)
            q.content_type = "application/json";
    }
    if (q.timeout_ms == 0)
        q.timeout_ms = 15000;
    if (http_request(NULL, port, &q, r) != CURLE_OK)
        r->status = -(long)r->cc;
}

static json_t *body_json(const struct http_resp *r)
{
    json_error_t err;
    json_t *j = r->body ? json_loads(r->body, 0, &err) : NULL;
    if (j == NULL)
        fprintf(stderr, "not JSON (status %ld): %s\n", r->status, r->body ? r->body : "(none)");
    assert_non_null(j);
    return j;
}

/* GET path, assert `status`, return the JSON body (caller decrefs). */
static json_t *get_json(int port, const char *path, long status)
{
    struct http_resp r;
    struct http_req c = {.method = "GET", .path = path};
    http(port, &c, &r);
    if (r.status != status)
        fprintf(stderr, "GET %s: %ld %s\n", path, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, status);
    json_t *j = body_json(&r);
    http_resp_free(&r);
    return j;
}

/* POST body to /v1/experiments; returns the status, *id (when 202) the new id. */
static long submit(int port, const char *body, const char *key, char *id, size_t cap,
                   struct http_resp *out)
{
    char keyh[300];
    struct http_resp r;
    struct http_req c = {.method = "POST", .path = "/v1/experiments", .body = body};
    if (key != NULL) {
        snprintf(keyh, sizeof keyh, "Idempotency-Key: %s", key);
        c.headers[0] = keyh;
    }
    http(port, &c, &r);
    if (r.status == 202 && id != NULL) {
        json_t *j = body_json(&r);
        snprintf(id, cap, "%s", json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    long st = r.status;
    if (out != NULL)
        *out = r;
    else
        http_resp_free(&r);
    return st;
}

static json_t *get_experiment(int port, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/experiments/%s", id);
    return get_json(port, path, 200);
}

/* Poll until the experiment's status is `want` (or timeout); returns the last view. */
static json_t *wait_status(int port, const char *id, const char *want, double timeout_s)
{
    double t0 = now_s();
    for (;;) {
        json_t *e = get_experiment(port, id);
        const char *st = json_string_value(json_object_get(e, "status"));
        if ((st != NULL && strcmp(st, want) == 0) || now_s() - t0 > timeout_s)
            return e;
        json_decref(e);
        sleep_ms(100);
    }
}

static json_int_t progress_of(const json_t *e, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(e, "progress"), key));
}

/* Every run of an experiment (one page of up to 1000). */
static json_t *runs_of(int port, const char *id, const char *query)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/experiments/%s/runs?limit=1000%s", id, query);
    json_t *page = get_json(port, path, 200);
    json_t *items = json_incref(json_object_get(page, "items"));
    assert_true(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    return items;
}

/* ---- SSE ---- */

struct sse_event {
    long long id;
    char type[32];
    json_t *data;
};

struct sse_log {
    struct sse_event ev[256];
    size_t n;
};

static void sse_log_clear(struct sse_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->ev[i].data);
    l->n = 0;
}

/* Parse a whole event-stream text (frames separated by blank lines). */
static void sse_parse(const char *text, struct sse_log *l)
{
    struct sse_event cur = {.id = -1};
    char data[8192] = "";
    const char *p = text;
    while (p != NULL && *p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == 0) {
            if (data[0] != '\0' && l->n < 256) {
                json_error_t err;
                cur.data = json_loads(data, 0, &err);
                assert_non_null(cur.data);
                l->ev[l->n++] = cur;
            }
            memset(&cur, 0, sizeof cur);
            cur.id = -1;
            data[0] = '\0';
        } else if (len > 4 && strncmp(p, "id: ", 4) == 0) {
            cur.id = strtoll(p + 4, NULL, 10);
        } else if (len > 7 && strncmp(p, "event: ", 7) == 0) {
            size_t m = len - 7 < sizeof cur.type - 1 ? len - 7 : sizeof cur.type - 1;
            memcpy(cur.type, p + 7, m);
            cur.type[m] = '\0';
        } else if (len >= 6 && strncmp(p, "data: ", 6) == 0) {
            strncat(data, p + 6, len - 6 < sizeof data - strlen(data) - 1 ? len - 6 : 0);
        }
        p = nl ? nl + 1 : NULL;
    }
}

/* Read the events stream of an experiment to its end (the server closes it once the experiment
 * is settled). last_id < 0: no Last-Event-ID. via_query: resume with ?last_event_id=. */
static void read_events(int port, const char *id, long long last_id, int via_query,
                        struct sse_log *l)
{
    char path[200], hdr[64];
    struct http_resp r;
    struct http_req c = {.method = "GET", .path = path, .timeout_ms = 20000};
    if (last_id >= 0 && via_query) {
        snprintf(path, sizeof path, "/v1/experiments/%s/events?last_event_id=%lld", id, last_id);
    } else {
        snprintf(path, sizeof path, "/v1/experiments/%s/events", id);
        if (last_id >= 0) {
            snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld", last_id);
            c.headers[0] = hdr;
        }
    }
    http(port, &c, &r);
    assert_int_equal(r.status, 200); /* also: ended by the server before the timeout */
    sse_parse(r.body ? r.body : "", l);
    http_resp_free(&r);
}

/* ---- the shared server for the functional cases ---- */

struct suite {
    char dir[128];
    struct server srv;
    char xor_id[64]; /* the finished xor experiment */
};

static int suite_setup(void **state)
{
    static struct suite s;
    memset(&s, 0, sizeof s);
    snprintf(s.dir, sizeof s.dir, "/tmp/basinlab_serve_XXXXXX");
    if (mkdtemp(s.dir) == NULL)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server_start(s.dir, 2, &s.srv);
    *state = &s;
    return 0;
}

static int suite_teardown(void **state)
{
    struct suite *s = *state;
    if (s->srv.pid > 0)
        server_stop(&s->srv, SIGKILL, 5, NULL);
    rm_tree(s->dir);
    curl_global_cleanup();
    return 0;
}

/* ---- cases ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* POST xor → 202 + Location; runs finish; ordered by final_risk; idempotent retry; the inline
 * dataset became a record whose linear-fit risk matches least squares solved here. */
static void test_xor_lifecycle(void **state)
{
    struct suite *s = *state;
    int port = s->srv.port;
    struct http_resp r;
    char id[64], id2[64], path[160];

    assert_int_equal(submit(port, xor_body, "xor-key-1", id, sizeof id, &r), 202);
    snprintf(path, sizeof path, "/v1/experiments/%s", id);
    assert_string_equal(http_header_or(&r, "Location", ""), path);
    assert_string_equal(http_header_or(&r, "Idempotent-Replayed", ""), "");
    http_resp_free(&r);

    json_t *e = wait_status(port, id, "finished", 20.0);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "finished");
    assert_int_equal(progress_of(e, "finished"), 8);
    assert_int_equal(json_integer_value(json_object_get(e, "restarts")), 8);
    const char *ds_id = json_string_value(json_object_get(e, "dataset_id"));
    const char *ar_id = json_string_value(json_object_get(e, "architecture_id"));
    assert_true(ds_id != NULL && strncmp(ds_id, "ds_", 3) == 0);
    assert_true(ar_id != NULL && strncmp(ar_id, "ar_", 3) == 0);
    assert_null(json_object_get(e, "dataset")); /* stored by id, not inline */

    /* runs by final_risk: 8 finished, ascending, the same values as the index order sorted */
    json_t *by_risk = runs_of(port, id, "&order=final_risk");
    json_t *by_index = runs_of(port, id, "");
    assert_int_equal(json_array_size(by_risk), 8);
    assert_int_equal(json_array_size(by_index), 8);
    double sorted[8], risks[8];
    for (size_t i = 0; i < 8; i++) {
        json_t *ri = json_array_get(by_index, i);
        json_t *rr = json_array_get(by_risk, i);
        assert_int_equal(json_integer_value(json_object_get(ri, "index")), (json_int_t)i);
        assert_string_equal(json_string_value(json_object_get(rr, "status")), "finished");
        assert_true(json_is_number(json_object_get(rr, "final_risk")));
        sorted[i] = json_number_value(json_object_get(ri, "final_risk"));
        risks[i] = json_number_value(json_object_get(rr, "final_risk"));
    }
    qsort(sorted, 8, sizeof sorted[0], cmp_double);
    for (size_t i = 0; i < 8; i++)
        assert_true(risks[i] == sorted[i]);
    /* the summary's best risk is the smallest final risk */
    json_t *summary = json_object_get(e, "summary");
    assert_true(json_number_value(json_object_get(summary, "best_risk")) == sorted[0]);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(summary, "stop_reasons"), "max_steps")) +
            json_integer_value(
                json_object_get(json_object_get(summary, "stop_reasons"), "grad_tol")),
        8);
    json_decref(by_risk);
    json_decref(by_index);

    /* idempotent retry: the same experiment, nothing new; a different body: 409 */
    json_t *dl = get_json(port, "/v1/datasets?limit=1000", 200);
    size_t datasets_before = json_array_size(json_object_get(dl, "items"));
    json_decref(dl);
    assert_int_equal(submit(port, xor_body, "xor-key-1", id2, sizeof id2, &r), 202);
    assert_string_equal(id2, id);
    assert_string_equal(http_header_or(&r, "Location", ""), path);
    assert_string_equal(http_header_or(&r, "Idempotent-Replayed", ""), "true");
    http_resp_free(&r);
    char other[sizeof xor_body + 8];
    snprintf(other, sizeof other, "%s", xor_body);
    char *seed = strstr(other, "\"seed\": 7");
    assert_non_null(seed);
    seed[8] = '8';
    assert_int_equal(submit(port, other, "xor-key-1", NULL, 0, &r), 409);
    assert_string_equal(http_header_or(&r, "Location", ""), "");
    http_resp_free(&r);
    json_t *list = get_json(port, "/v1/experiments?limit=1000", 200);
    size_t with_id = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(list, "items")); i++) {
        const char *x = json_string_value(
            json_object_get(json_array_get(json_object_get(list, "items"), i), "id"));
        with_id += strcmp(x, id) == 0;
    }
    assert_int_equal(with_id, 1);
    json_decref(list);
    /* the inline dataset of the replayed and the refused submission left no record behind */
    dl = get_json(port, "/v1/datasets?limit=1000", 200);
    assert_int_equal(json_array_size(json_object_get(dl, "items")), datasets_before);
    json_decref(dl);
    /* an Idempotency-Key that is too long */
    char longkey[202];
    memset(longkey, 'k', 201);
    longkey[201] = '\0';
    assert_int_equal(submit(port, xor_body, longkey, NULL, 0, NULL), 400);

    /* the dataset record: R_lin (squared) = min ½‖Xw − y‖²/n solved here by normal equations */
    snprintf(path, sizeof path, "/v1/datasets/%s/points?limit=1000", ds_id);
    json_t *pts = get_json(port, path, 200);
    json_t *x = json_object_get(pts, "x"), *y = json_object_get(pts, "y");
    size_t n = json_array_size(x);
    assert_int_equal(n, 40);
    double A[3][4] = {{0}};
    for (size_t i = 0; i < n; i++) {
        double row[3] = {json_number_value(json_array_get(json_array_get(x, i), 0)),
                         json_number_value(json_array_get(json_array_get(x, i), 1)), 1.0};
        double yi = json_number_value(json_array_get(y, i));
        for (int a = 0; a < 3; a++) {
            for (int b = 0; b < 3; b++)
                A[a][b] += row[a] * row[b];
            A[a][3] += row[a] * yi;
        }
    }
    for (int c = 0; c < 3; c++) /* Gauss–Jordan; the design of xor corners is non-singular */
        for (int rr = 0; rr < 3; rr++) {
            if (rr == c)
                continue;
            double f = A[rr][c] / A[c][c];
            for (int k = 0; k < 4; k++)
                A[rr][k] -= f * A[c][k];
        }
    double w[3] = {A[0][3] / A[0][0], A[1][3] / A[1][1], A[2][3] / A[2][2]};
    double risk = 0;
    for (size_t i = 0; i < n; i++) {
        double o = w[0] * json_number_value(json_array_get(json_array_get(x, i), 0)) +
                   w[1] * json_number_value(json_array_get(json_array_get(x, i), 1)) + w[2];
        double rdiff = o - json_number_value(json_array_get(y, i));
        risk += 0.5 * rdiff * rdiff;
    }
    risk /= (double)n;
    json_decref(pts);
    snprintf(path, sizeof path, "/v1/datasets/%s", ds_id);
    json_t *ds = get_json(port, path, 200);
    assert_string_equal(json_string_value(json_object_get(ds, "kind")), "generator");
    assert_int_equal(json_integer_value(json_object_get(ds, "n")), 40);
    json_t *sq =
        json_object_get(json_object_get(json_object_get(ds, "linear_fit"), "loss"), "squared");
    assert_true(risk > 0.01); /* xor: no affine map fits */
    assert_true(fabs(json_number_value(json_object_get(sq, "risk")) - risk) < 1e-9);
    assert_true(json_is_false(json_object_get(sq, "linearly_fittable")));
    json_decref(ds);
    snprintf(path, sizeof path, "/v1/architectures/%s", ar_id);
    json_t *ar = get_json(port, path, 200);
    assert_int_equal(json_integer_value(json_object_get(ar, "param_count")), 2 * 2 + 2 + 2 + 1);
    json_decref(ar);

    snprintf(s->xor_id, sizeof s->xor_id, "%s", id);
    json_decref(e);
}

/* The event stream of the finished xor experiment (it was read live in test_sse_live). */
static void check_xor_events(const struct sse_log *l, size_t runs)
{
    size_t finished = 0;
    assert_true(l->n >= runs + 1);
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            assert_true(l->ev[i].id > l->ev[i - 1].id);
        if (strcmp(l->ev[i].type, "run_finished") == 0) {
            finished++;
            assert_true(json_is_string(json_object_get(l->ev[i].data, "run_id")));
        }
    }
    assert_int_equal(finished, runs);
    const struct sse_event *last = &l->ev[l->n - 1];
    assert_string_equal(last->type, "status");
    assert_string_equal(json_string_value(json_object_get(last->data, "status")), "finished");
}

/* SSE read while the experiment runs; then resumption after an event id. */
static void test_sse_live_and_resume(void **state)
{
    struct suite *s = *state;
    int port = s->srv.port;
    struct sse_log all = {0}, rest = {0}, rest2 = {0};
    char id[64];
    assert_int_equal(submit(port, xor_body, NULL, id, sizeof id, NULL), 202);
    read_events(port, id, -1, 0, &all); /* opened at once: the runs finish while it is open */
    check_xor_events(&all, 8);
    /* each run reported once */
    for (size_t i = 0; i < all.n; i++)
        for (size_t j = i + 1; j < all.n; j++)
            if (strcmp(all.ev[i].type, "run_finished") == 0 &&
                strcmp(all.ev[j].type, "run_finished") == 0)
                assert_string_not_equal(
                    json_string_value(json_object_get(all.ev[i].data, "run_id")),
                    json_string_value(json_object_get(all.ev[j].data, "run_id")));

    /* resume after the third event: exactly the events after it, then the end */
    size_t k = 2;
    read_events(port, id, all.ev[k].id, 0, &rest);
    assert_int_equal(rest.n, all.n - k - 1);
    for (size_t i = 0; i < rest.n; i++) {
        assert_true(rest.ev[i].id == all.ev[k + 1 + i].id);
        assert_string_equal(rest.ev[i].type, all.ev[k + 1 + i].type);
        assert_true(json_equal(rest.ev[i].data, all.ev[k + 1 + i].data));
    }
    read_events(port, id, all.ev[all.n - 2].id, 1, &rest2); /* ?last_event_id= */
    assert_int_equal(rest2.n, 1);
    assert_string_equal(rest2.ev[0].type, "status");
    sse_log_clear(&rest2);
    read_events(port, id, all.ev[all.n - 1].id, 0, &rest2); /* after the end: nothing, ends */
    assert_int_equal(rest2.n, 0);

    struct http_resp r;
    struct http_req c = {.method = "GET", .path = "/v1/experiments/ex_0123456789abcdef/events"};
    http(port, &c, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/v1/experiments/%s/events", id);
    struct http_req bad = {.method = "GET", .path = path, .headers = {"Last-Event-ID: x7"}};
    http(port, &bad, &r);
    assert_int_equal(r.status, 400);
    http_resp_free(&r);
    sse_log_clear(&all);
    sse_log_clear(&rest);
    sse_log_clear(&rest2);
}

/* One bad body and the exact pointers its 422 must name. */
struct bad_case {
    const char *body;
    const char *pointers[3];
};

static void expect_pointers(int port, const char *body, const char *const *pointers)
{
    struct http_resp r;
    assert_int_equal(submit(port, body, NULL, NULL, 0, &r), 422);
    json_t *p = body_json(&r);
    json_t *errs = json_object_get(p, "errors");
    size_t want = 0;
    while (want < 3 && pointers[want] != NULL)
        want++;
    if (json_array_size(errs) != want)
        fprintf(stderr, "body %s\nanswer %s\n", body, r.body);
    assert_int_equal(json_array_size(errs), want);
    for (size_t i = 0; i < want; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(errs, i), "pointer")),
                            pointers[i]);
    json_decref(p);
    http_resp_free(&r);
}

static void test_bad_specs(void **state)
{
    struct suite *s = *state;
    int port = s->srv.port;
    static const struct bad_case cases[] = {
        {"{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 0}", {"/restarts"}},
        {"{" XOR_DATASET ", " XOR_ARCH ", \"optimizer\": {\"kind\": \"gd\", \"lr\": -1}}",
         {"/optimizer/lr"}},
        {"{" XOR_DATASET ", " XOR_ARCH ", \"foo\": 1}", {"/foo"}},
        {"{" XOR_DATASET ", \"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": "
         "\"dense\", \"units\": 0}]}}",
         {"/architecture/layers/0/units"}},
        {"{" XOR_DATASET ", " XOR_ARCH ", \"max_steps\": 0, \"seed\": -1}",
         {"/max_steps", "/seed"}},
        {"{" XOR_DATASET ", " XOR_ARCH ", \"loss\": \"cross_entropy\"}", {"/loss"}},
        {"{\"dataset_id\": \"ds_0123456789abcdef\", \"architecture_id\": \"ar_0123456789abcdef\"}",
         {"/dataset_id", "/architecture_id"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_pointers(port, cases[i].body, cases[i].pointers);

    /* by id: a regression dataset (targets 0.5) cannot take the logistic loss; the error points
     * at the member the client wrote */
    char id[64], body[1024];
    static const char reg[] =
        "{\"dataset\": {\"kind\": \"inline\", \"x\": [[0], [1]], \"y\": [0.5, 0.25]}, "
        "\"architecture\": {\"layers\": [{\"type\": \"dense\", \"units\": 1}]}, "
        "\"restarts\": 1, \"max_steps\": 5}";
    assert_int_equal(submit(port, reg, NULL, id, sizeof id, NULL), 202);
    json_t *e = get_experiment(port, id);
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"architecture_id\": \"%s\", \"loss\": \"logistic\"}",
             json_string_value(json_object_get(e, "dataset_id")),
             json_string_value(json_object_get(e, "architecture_id")));
    const char *const ptr_ds[] = {"/dataset_id", "/dataset_id", NULL};
    expect_pointers(port, body, ptr_ds);
    /* ... and the same records with squared loss are accepted */
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"architecture_id\": \"%s\", \"restarts\": 1, "
             "\"max_steps\": 5}",
             json_string_value(json_object_get(e, "dataset_id")),
             json_string_value(json_object_get(e, "architecture_id")));
    assert_int_equal(submit(port, body, NULL, NULL, 0, NULL), 202);
    /* an inline architecture whose input does not fit the dataset given by id */
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"architecture\": {\"input_shape\": [3], \"layers\": "
             "[{\"type\": \"dense\", \"units\": 1}]}}",
             json_string_value(json_object_get(e, "dataset_id")));
    const char *const ptr_arch[] = {"/architecture/input_shape", NULL};
    expect_pointers(port, body, ptr_arch);
    json_decref(e);

    /* malformed JSON → 400; wrong media type → 415 */
    struct http_resp r;
    assert_int_equal(submit(port, "{\"restarts\": ", NULL, NULL, 0, NULL), 400);
    struct http_req c = {.method = "POST",
                         .path = "/v1/experiments",
                         .body = xor_body,
                         .headers = {"Content-Type: text/plain"}};
    http(port, &c, &r);
    assert_int_equal(r.status, 415);
    http_resp_free(&r);
    /* unknown and malformed ids */
    json_decref(get_json(port, "/v1/experiments/ex_0123456789abcdef", 404));
    json_decref(get_json(port, "/v1/experiments/nonsense", 404));
    json_decref(get_json(port, "/v1/experiments/ex_0123456789abcdef/runs", 404));
    struct http_req cancel = {.method = "POST",
                              .path = "/v1/experiments/ex_0123456789abcdef/cancel"};
    http(port, &cancel, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    /* bad query parameters */
    json_decref(get_json(port, "/v1/experiments?status=bogus", 400));
    json_decref(get_json(port, "/v1/experiments?limit=0", 400));
    json_decref(get_json(port, "/v1/experiments?cursor=garbage", 400));
}

static void test_etag_304(void **state)
{
    struct suite *s = *state;
    int port = s->srv.port;
    char path[160], inm[200];
    struct http_resp r1, r2, r3;
    assert_true(s->xor_id[0] != '\0');
    snprintf(path, sizeof path, "/v1/experiments/%s", s->xor_id);
    struct http_req c = {.method = "GET", .path = path};
    http(port, &c, &r1);
    assert_int_equal(r1.status, 200);
    assert_true(http_header_or(&r1, "ETag", "")[0] == '"');
    snprintf(inm, sizeof inm, "If-None-Match: %s", http_header_or(&r1, "ETag", ""));
    struct http_req c2 = {.method = "GET", .path = path, .headers = {inm}};
    http(port, &c2, &r2);
    assert_int_equal(r2.status, 304);
    assert_int_equal(r2.len, 0);
    struct http_req c3 = {.method = "GET", .path = path, .headers = {"If-None-Match: \"nope\""}};
    http(port, &c3, &r3);
    assert_int_equal(r3.status, 200);
    assert_string_equal(r3.body, r1.body);
    http_resp_free(&r1);
    http_resp_free(&r2);
    http_resp_free(&r3);
}

/* A long experiment: delete refused while running, cancel stops it within ~1.5 s. */
static void test_cancel_and_delete(void **state)
{
    struct suite *s = *state;
    int port = s->srv.port;
    char id[64], path[160];
    struct http_resp r;
    static const char long_body[] = "{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 3, "
                                    "\"max_steps\": 10000000, \"stop\": {\"grad_tol\": 0}}";
    assert_int_equal(submit(port, long_body, NULL, id, sizeof id, NULL), 202);
    json_t *e = wait_status(port, id, "running", 10.0);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "running");
    json_decref(e);
    sleep_ms(200);

    snprintf(path, sizeof path, "/v1/experiments/%s", id);
    struct http_req del = {.method = "DELETE", .path = path};
    http(port, &del, &r);
    assert_int_equal(r.status, 409);
    http_resp_free(&r);

    snprintf(path, sizeof path, "/v1/experiments/%s/cancel", id);
    struct http_req cancel = {.method = "POST", .path = path};
    double t0 = now_s();
    http(port, &cancel, &r);
    assert_int_equal(r.status, 200);
    json_t *v = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "cancelled");
    json_decref(v);
    http_resp_free(&r);
    double settled = -1;
    while (now_s() - t0 < 5.0) {
        e = get_experiment(port, id);
        json_int_t running = progress_of(e, "running"), queued = progress_of(e, "queued");
        json_decref(e);
        if (running == 0 && queued == 0) {
            settled = now_s() - t0;
            break;
        }
        sleep_ms(50);
    }
    assert_true(settled >= 0);
    assert_true(settled < 2.0); /* heartbeat ~1 s + a poll every 64 steps; slack for load */
    json_t *runs = runs_of(port, id, "");
    assert_int_equal(json_array_size(runs), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(runs, i), "status")),
                            "cancelled");
    json_decref(runs);
    /* cancelling again changes nothing; cancelling a finished experiment is a conflict */
    http(port, &cancel, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/experiments/%s/cancel", s->xor_id);
    struct http_req cancel_done = {.method = "POST", .path = path};
    http(port, &cancel_done, &r);
    assert_int_equal(r.status, 409);
    http_resp_free(&r);

    /* delete the cancelled one: 204, then it is gone */
    snprintf(path, sizeof path, "/v1/experiments/%s", id);
    http(port, &del, &r);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    json_decref(get_json(port, path, 404));
    http(port, &del, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
}

/* The body arrives one byte per chunk. */
static void test_chunked_body(void **state)
{
    struct suite *s = *state;
    struct http_resp r;
    struct http_req c = {.method = "POST",
                         .path = "/v1/experiments",
                         .body = xor_body,
                         .chunk_bytes = 1,
                         .chunked = 1};
    http(s->srv.port, &c, &r);
    assert_int_equal(r.status, 202);
    assert_true(strncmp(http_header_or(&r, "Location", ""), "/v1/experiments/ex_", 19) == 0);
    http_resp_free(&r);
}

struct client {
    int port;
    int index;
    long post_status, get_status;
    char id[64];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    char body[1024], path[300];
    struct http_resp r;
    snprintf(body, sizeof body,
             "{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 1, \"seed\": %d, \"max_steps\": 20}",
             c->index);
    struct http_req post = {.method = "POST", .path = "/v1/experiments", .body = body};
    http(c->port, &post, &r);
    c->post_status = r.status;
    if (r.status == 202)
        snprintf(c->id, sizeof c->id, "%s",
                 http_header_or(&r, "Location", "") + strlen("/v1/experiments/"));
    snprintf(path, sizeof path, "%s", http_header_or(&r, "Location", ""));
    http_resp_free(&r);
    struct http_req get = {.method = "GET", .path = path};
    http(c->port, &get, &r);
    c->get_status = r.status;
    http_resp_free(&r);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    struct suite *s = *state;
    enum { N_CLIENTS = 20 };
    struct client cl[N_CLIENTS];
    pthread_t tid[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        cl[i] = (struct client){.port = s->srv.port, .index = i};
        assert_int_equal(pthread_create(&tid[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < N_CLIENTS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < N_CLIENTS; i++) {
        assert_int_equal(cl[i].post_status, 202);
        assert_int_equal(cl[i].get_status, 200);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(cl[i].id, cl[j].id);
    }
    /* the request hook feeds /metrics: at least these 40 requests were counted */
    struct http_resp r;
    struct http_req m = {.method = "GET", .path = "/metrics"};
    http(s->srv.port, &m, &r);
    assert_int_equal(r.status, 200);
    const char *line = strstr(r.body, "\nbasinlab_http_requests_total ");
    assert_non_null(line);
    assert_true(strtoll(line + strlen("\nbasinlab_http_requests_total "), NULL, 10) >= 40);
    http_resp_free(&r);
}

/* ---- restarts: SIGTERM drain and SIGKILL ---- */

static const char restart_body[] = "{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 3, \"seed\": 3, "
                                   "\"max_steps\": 30000, \"stop\": {\"grad_tol\": 0}, "
                                   "\"trajectory_every\": 1000}";

/* Wait until the experiment has a running run. */
static void wait_running(int port, const char *id)
{
    double t0 = now_s();
    for (;;) {
        json_t *e = get_experiment(port, id);
        json_int_t running = progress_of(e, "running");
        json_decref(e);
        if (running > 0)
            return;
        assert_true(now_s() - t0 < 10.0);
        sleep_ms(50);
    }
}

/* The single integer a query on the database file answers (the server must not be running). */
static long long db_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    if (pg_url()) {
        PGconn *c = pg_connect(path);
        PGresult *r = PQexec(c, sql);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return n;
    }
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Every run finished, each with exactly one run_finished event. */
static void check_exactly_once(int port, const char *id, size_t runs)
{
    struct sse_log l = {0};
    read_events(port, id, -1, 0, &l);
    json_t *items = runs_of(port, id, "");
    assert_int_equal(json_array_size(items), runs);
    for (size_t i = 0; i < runs; i++) {
        json_t *r = json_array_get(items, i);
        const char *rid = json_string_value(json_object_get(r, "id"));
        assert_string_equal(json_string_value(json_object_get(r, "status")), "finished");
        assert_int_equal(json_integer_value(json_object_get(r, "steps")), 30000);
        size_t seen = 0;
        for (size_t k = 0; k < l.n; k++)
            if (strcmp(l.ev[k].type, "run_finished") == 0)
                seen +=
                    strcmp(json_string_value(json_object_get(l.ev[k].data, "run_id")), rid) == 0;
        assert_int_equal(seen, 1);
    }
    json_decref(items);
    sse_log_clear(&l);
}

static void test_sigterm_drain_and_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_term_XXXXXX";
    char id[64];
    struct server srv;
    double took = 0;
    assert_non_null(mkdtemp(dir));
    server_start(dir, 1, &srv);
    assert_int_equal(submit(srv.port, restart_body, NULL, id, sizeof id, NULL), 202);
    wait_running(srv.port, id);
    assert_int_equal(server_stop(&srv, SIGTERM, 10.0, &took), 0);
    assert_true(took < 10.0);
    /* the drain handed the run in flight back: nothing running, nothing failed or cancelled */
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
    assert_true(db_count(srv.db, "SELECT count(*) FROM runs WHERE status = 'queued'") >= 1);
    assert_int_equal(
        db_count(srv.db, "SELECT count(*) FROM runs WHERE status IN ('failed', 'cancelled')"), 0);

    server_start(dir, 1, &srv);
    json_t *e = wait_status(srv.port, id, "finished", 30.0);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "finished");
    json_decref(e);
    check_exactly_once(srv.port, id, 3);
    assert_int_equal(server_stop(&srv, SIGINT, 10.0, NULL), 0);
    rm_tree(dir);
}

static void test_sigkill_then_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_kill_XXXXXX";
    char id[64];
    struct server srv;
    assert_non_null(mkdtemp(dir));
    server_start(dir, 1, &srv);
    assert_int_equal(submit(srv.port, restart_body, NULL, id, sizeof id, NULL), 202);
    /* wait for one finished run while another is still running */
    json_t *before = NULL;
    double t0 = now_s();
    for (;;) {
        json_t *e = get_experiment(srv.port, id);
        int ready = progress_of(e, "finished") >= 1 && progress_of(e, "finished") < 3;
        json_decref(e);
        if (ready) {
            before = runs_of(srv.port, id, "&status=finished");
            break;
        }
        assert_true(now_s() - t0 < 20.0);
        sleep_ms(20);
    }
    assert_int_equal(server_stop(&srv, SIGKILL, 5.0, NULL), 128 + SIGKILL);
    /* the killed process left a run `running`: the restart must requeue it */
    assert_true(db_count(srv.db, "SELECT count(*) FROM runs WHERE status = 'running'") >= 1);

    server_start(dir, 1, &srv);
    json_t *e = wait_status(srv.port, id, "finished", 30.0);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "finished");
    json_decref(e);
    check_exactly_once(srv.port, id, 3);
    /* runs finished before the kill are unchanged */
    json_t *after = runs_of(srv.port, id, "");
    assert_true(json_array_size(before) >= 1);
    for (size_t i = 0; i < json_array_size(before); i++) {
        json_t *b = json_array_get(before, i);
        json_t *a = json_array_get(after, (size_t)json_integer_value(json_object_get(b, "index")));
        assert_string_equal(json_string_value(json_object_get(a, "id")),
                            json_string_value(json_object_get(b, "id")));
        assert_true(json_equal(json_object_get(a, "final_risk"), json_object_get(b, "final_risk")));
        assert_true(json_equal(json_object_get(a, "timings"), json_object_get(b, "timings")));
    }
    json_decref(before);
    json_decref(after);
    assert_int_equal(server_stop(&srv, SIGTERM, 10.0, NULL), 0);
    if (pg_url()) {
        /* PostgreSQL checks its constraints at every commit; the runs are all finished */
        assert_int_equal(db_count(srv.db, "SELECT count(*) FROM runs WHERE status <> 'finished'"),
                         0);
        rm_tree(dir);
        return;
    }

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(srv.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    rm_tree(dir);
}

/* ---- in-process: a full queue and a draining server ---- */

static void test_queue_full_and_draining(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_q_XXXXXX";
    char loc[600], err[256];
    struct app app;
    struct store *st = NULL;
    struct http_server *srv = NULL;
    struct http_config hc;
    struct http_resp r;
    assert_non_null(mkdtemp(dir));
    store_location(dir, "q.db", loc, sizeof loc);
    assert_int_equal(store_open(loc, NULL, &st, err, sizeof err), STORE_OK);
    memset(&app, 0, sizeof app);
    assert_int_equal(app_init(&app), BASIN_OK);
    app.store = st;
    limits_defaults(&app.limits);
    app.max_queued_runs = 10; /* no workers: submitted runs stay queued */
    http_config_defaults(&hc);
    hc.port = 0;
    hc.log_fn = http_log_discard;
    assert_int_equal(http_server_start(&hc, basinlab_routes, basinlab_route_count, &app, &srv),
                     BASIN_OK);
    int port = http_server_port(srv);

    assert_int_equal(submit(port, xor_body, NULL, NULL, 0, NULL), 202); /* 8 queued */
    assert_int_equal(submit(port, xor_body, NULL, NULL, 0, &r), 429);   /* 16 > 10 */
    assert_true(atoi(http_header_or(&r, "Retry-After", "")) > 0);
    http_resp_free(&r);
    static const char two[] = "{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 2}";
    static const char one[] = "{" XOR_DATASET ", " XOR_ARCH ", \"restarts\": 1}";
    assert_int_equal(submit(port, two, NULL, NULL, 0, NULL), 202); /* exactly 10 */
    assert_int_equal(submit(port, one, NULL, NULL, 0, NULL), 429);
    json_t *list = get_json(port, "/v1/experiments?status=queued", 200);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 2);
    json_decref(list);

    atomic_store(&app.draining, 1);
    app.max_queued_runs = 0; /* no bound: only the drain refuses */
    assert_int_equal(submit(port, one, NULL, NULL, 0, &r), 503);
    assert_true(atoi(http_header_or(&r, "Retry-After", "")) > 0);
    http_resp_free(&r);
    list = get_json(port, "/v1/experiments", 200); /* reads still served */
    assert_int_equal(json_array_size(json_object_get(list, "items")), 2);
    json_decref(list);

    http_server_quiesce(srv);
    http_server_stop(srv);
    store_close(st);
    app_destroy(&app);
    rm_tree(dir);
}

/* ---- config.c ---- */

static const char *fake_env(const char *name)
{
    static const char *const table[][2] = {{"BASINLAB_PORT", "9090"},
                                           {"BASINLAB_DB", "/data/env.db"},
                                           {"BASINLAB_WORKERS", "3"},
                                           {"BASINLAB_MAX_RUN_SECONDS", "2.5"}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i][0], name) == 0)
            return table[i][1];
    return NULL;
}

static const char *bad_env(const char *name)
{
    return strcmp(name, "BASINLAB_WORKERS") == 0 ? "many" : NULL;
}

static void test_config(void **state)
{
    (void)state;
    struct serve_config c;
    char err[200];
    int help = 0;
    char *none[] = {"serve"};
    assert_int_equal(config_load(&c, 1, none, NULL, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.db, "./basinlab.db");
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_queued_runs, 1000000);
    assert_null(c.web_root);

    /* environment, then flags win */
    char *args[] = {"serve", "--port", "0", "--bind=::1", "--web", "/srv/web", "--max-queued-runs",
                    "7"};
    assert_int_equal(config_load(&c, 8, args, fake_env, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.port, 0);
    assert_string_equal(c.db, "/data/env.db");
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.bind, "::1");
    assert_string_equal(c.web_root, "/srv/web");
    assert_int_equal(c.max_queued_runs, 7);
    assert_true(c.max_run_seconds == 2.5);
    assert_int_equal(help, 0);

    char *bad_port[] = {"serve", "--port", "65536"};
    assert_int_equal(config_load(&c, 3, bad_port, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--port"));
    char *trailing[] = {"serve", "--workers", "2x"};
    assert_int_equal(config_load(&c, 3, trailing, NULL, &help, err, sizeof err), BASIN_EINVAL);
    char *negative[] = {"serve", "--max-run-seconds", "-1"};
    assert_int_equal(config_load(&c, 3, negative, NULL, &help, err, sizeof err), BASIN_EINVAL);
    char *missing[] = {"serve", "--db"};
    assert_int_equal(config_load(&c, 2, missing, NULL, &help, err, sizeof err), BASIN_EINVAL);
    char *unknown[] = {"serve", "--colour", "blue"};
    assert_int_equal(config_load(&c, 3, unknown, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--colour"));
    assert_int_equal(config_load(&c, 1, none, bad_env, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "BASINLAB_WORKERS"));
    char *h[] = {"serve", "--port", "1", "--help"};
    assert_int_equal(config_load(&c, 4, h, NULL, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(help, 1);
}

/* A database from the future is refused with the store's message and exit status 1. */
static void test_refuses_newer_database(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_new_XXXXXX";
    char path[600], err[256];
    struct store *st = NULL;
    assert_non_null(mkdtemp(dir));
    store_location(dir, "basinlab.db", path, sizeof path);
    assert_int_equal(store_open(path, NULL, &st, err, sizeof err), STORE_OK);
    store_close(st);
    if (pg_url()) {
        PGconn *c = pg_connect(path);
        PGresult *r = PQexec(c, "INSERT INTO schema_migrations (version, name) "
                                "VALUES (9999, '9999_future.sql')");
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9999", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char log[640];
        snprintf(log, sizeof log, "%s/server.log", dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    rm_tree(dir);
}

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* serve_signals_setup, shared by `serve` and `worker`: a SIGTERM the kernel hands to a thread
 * that existed before the set-up and does not block it (OpenBLAS starts such threads before
 * main) must still reach serve_signals_wait in the thread that did the set-up, not kill the
 * process with the default action. Run in a child so the process's signal state stays clean. */
static void test_signal_on_foreign_thread(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pthread_t foreign;
        sigset_t set;
        if (pthread_create(&foreign, NULL, idle_thread, NULL) != 0)
            _exit(10);
        if (serve_signals_setup(&set) != 0)
            _exit(11);
        if (pthread_kill(foreign, SIGTERM) != 0) /* delivered to that thread only */
            _exit(12);
        int sig = serve_signals_wait(&set);
        _exit(sig == SIGTERM ? 0 : 13);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the child was killed by signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest served[] = {
        cmocka_unit_test(test_xor_lifecycle),      cmocka_unit_test(test_sse_live_and_resume),
        cmocka_unit_test(test_bad_specs),          cmocka_unit_test(test_etag_304),
        cmocka_unit_test(test_cancel_and_delete),  cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_concurrent_clients),
    };
    const struct CMUnitTest alone[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_signal_on_foreign_thread),
        cmocka_unit_test(test_queue_full_and_draining),
        cmocka_unit_test(test_refuses_newer_database),
        cmocka_unit_test(test_sigterm_drain_and_restart),
        cmocka_unit_test(test_sigkill_then_restart),
    };
    signal(SIGPIPE, SIG_IGN);
    int failed = cmocka_run_group_tests_name("served", served, suite_setup, suite_teardown);
    failed += cmocka_run_group_tests_name("alone", alone, NULL, NULL);
    return failed;
}
