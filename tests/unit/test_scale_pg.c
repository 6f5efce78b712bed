/* The scale-out test of issue 9: one `basinlab serve --train 0` (the API only) and separate
 * `basinlab worker` processes sharing one PostgreSQL store, all real binaries (BASINLAB_BINARY)
 * driven over HTTP and inspected with direct SQL (libpq).
 *   1. one worker trains experiment A (R restarts): the baseline throughput;
 *   2. three workers train experiment B (the same spec): throughput with three, reported
 *      against one (the machine has 2 cores, so ~2x is the ceiling; only reported);
 *   3. the three workers train experiment C; one is killed with SIGKILL while it trains a run,
 *      and a second one later; the survivor finishes everything once the killed workers'
 *      leases expire (2 s) and a reaper requeues their runs.
 * Checked: every run of A, B and C finished exactly once (one row, one run_finished event, one
 * end point), some run of C needed a second attempt (the kill really hit a run in flight), and
 * C's results are bit-identical to A's and B's restart by restart (a requeued run is retrained
 * from its seed, nothing half-written survives) — the expected values come from the other
 * experiments' runs, not from a formula in the code under test.
 * Needs PostgreSQL (BASINLAB_TEST_STORE, or scripts/pg's cluster through BASINLAB_PG_STATE);
 * skipped without. */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "http_client.h"
#include "ids.h"

#define RESTARTS 12
#define MAX_PROCS 8
#define LEASE "2"

static char base_url[512];
static char location[700];
static char schema[32];
static char logdir[64];
static pid_t procs[MAX_PROCS];
static int n_procs;

static const char spec[] =
    "{\"dataset\": {\"kind\": \"generator\", \"generator\": {\"name\": \"xor\", \"n\": 40, "
    "\"noise\": 0, \"seed\": 1}}, \"architecture\": {\"input_shape\": [2], \"layers\": "
    "[{\"type\": \"dense\", \"units\": 2}, {\"type\": \"activation\", \"kind\": \"relu\"}, "
    "{\"type\": \"dense\", \"units\": 1}]}, \"restarts\": 12, \"seed\": 5, \"max_steps\": 15000, "
    "\"stop\": {\"grad_tol\": 0}, \"trajectory_every\": 1000}";

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

/* ---- PostgreSQL ---- */

static int find_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    const char *state = getenv("BASINLAB_PG_STATE");
    if (u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0)) {
        snprintf(base_url, sizeof base_url, "%s", u);
        return 1;
    }
    if (state) {
        char path[600];
        FILE *f;
        snprintf(path, sizeof path, "%s/url", state);
        f = fopen(path, "r");
        if (f && fgets(base_url, sizeof base_url, f)) {
            base_url[strcspn(base_url, "\r\n")] = '\0';
            fclose(f);
            return base_url[0] != '\0';
        }
        if (f)
            fclose(f);
    }
    return 0;
}

/* One integer (or boolean) answered by sql in the test's schema. */
static long long db_int(const char *sql)
{
    char set[96];
    PGconn *c = PQconnectdb(base_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    snprintf(set, sizeof set, "SET search_path TO %s", schema);
    PQclear(PQexec(c, set));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    long long v = PQgetvalue(r, 0, 0)[0] == 't' ? 1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* ---- processes ---- */

/* Starts BASINLAB_BINARY with argv, stderr to logdir/<log>; returns its pid and the first
 * stdout line (which both commands print once they are up). */
static pid_t spawn(char *const argv[], const char *log, char *line, size_t cap)
{
    int pipefd[2];
    char path[160];
    size_t len = 0;
    double t0;
    pid_t pid;

    assert_true(n_procs < MAX_PROCS);
    snprintf(path, sizeof path, "%s/%s", logdir, log);
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], STDOUT_FILENO);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(BASINLAB_BINARY, argv);
        _exit(127);
    }
    procs[n_procs++] = pid;
    close(pipefd[1]);
    t0 = now_s();
    while (len + 1 < cap && now_s() - t0 < 20.0) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(pipefd[0], line + len, 1);
        if (n <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(pipefd[0]);
    return pid;
}

static pid_t start_worker(int k)
{
    char line[512], log[32];
    char *argv[] = {BASINLAB_BINARY,   "worker", "--store", location, "--workers", "1",
                    "--lease-timeout", LEASE,    "--batch", "1",      NULL};
    snprintf(log, sizeof log, "worker%d.log", k);
    pid_t pid = spawn(argv, log, line, sizeof line);
    assert_non_null(strstr(line, "basinlab worker ready"));
    assert_null(strstr(line, "***")); /* the test URL has no password to hide */
    return pid;
}

static pid_t api_pid;

static int start_api(void)
{
    char line[512];
    char *argv[] = {BASINLAB_BINARY, "serve", "--port",          "0",   "--db", location,
                    "--train",       "0",     "--lease-timeout", LEASE, NULL};
    api_pid = spawn(argv, "api.log", line, sizeof line);
    const char *p = strstr(line, "http://127.0.0.1:");
    assert_non_null(p);
    assert_non_null(strstr(line, "0 workers"));
    return atoi(p + strlen("http://127.0.0.1:"));
}

/* SIGTERM (sig 0) or SIGKILL, then reap; the pid leaves the list. */
static void stop(pid_t pid, int sig)
{
    int st = 0, i;
    kill(pid, sig ? sig : SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!sig) /* a clean drain exits 0 */
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (i = 0; i < n_procs; i++)
        if (procs[i] == pid)
            procs[i] = procs[--n_procs];
}

/* ---- HTTP ---- */

static void submit(int port, char id[32])
{
    struct http_resp r;
    struct http_req q = http_req_json("POST", "/v1/experiments", spec);
    q.timeout_ms = 15000;
    q.parse_json = 1;
    assert_int_equal(http_request(NULL, port, &q, &r), CURLE_OK);
    assert_int_equal(r.status, 202);
    assert_non_null(r.json);
    snprintf(id, 32, "%s", json_string_value(json_object_get(r.json, "id")));
    assert_int_equal(strncmp(id, "ex_", 3), 0);
    http_resp_free(&r);
}

/* ---- the event stream, read by another thread while workers elsewhere make progress ---- */

struct stream {
    int port;
    char id[32];
    struct http_resp resp; /* the whole stream */
    pthread_t tid;
};

static void *stream_main(void *arg)
{
    struct stream *st = arg;
    char path[128];
    /* the stream ends when the experiment does */
    struct http_req q = {.path = path, .timeout_ms = 120000};
    snprintf(path, sizeof path, "/v1/experiments/%s/events", st->id);
    http_request(NULL, st->port, &q, &st->resp);
    return NULL;
}

/* Occurrences of needle in hay. */
static size_t count_in(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- checks ---- */

/* sql with every "?" replaced by the quoted id, then db_int. */
static long long count_of(const char *sql, const char *id)
{
    char q[700];
    size_t o = 0;
    for (; *sql && o + 40 < sizeof q; sql++) {
        if (*sql == '?')
            o += (size_t)snprintf(q + o, sizeof q - o, "'%s'", id);
        else
            q[o++] = *sql;
    }
    q[o] = '\0';
    return db_int(q);
}

/* Waits until the experiment is finished; returns the seconds it took from t0. */
static double wait_finished(const char *id, double t0, double timeout_s)
{
    for (;;) {
        if (count_of("SELECT count(*) FROM experiments WHERE id = ? AND status = 'finished'", id) ==
            1)
            return now_s() - t0;
        assert_true(now_s() - t0 < timeout_s);
        sleep_ms(100);
    }
}

static void check_exactly_once(const char *id)
{
    assert_int_equal(
        count_of("SELECT count(*) FROM runs WHERE experiment_id = ? AND status = 'finished'", id),
        RESTARTS);
    assert_int_equal(count_of("SELECT count(*) FROM runs WHERE experiment_id = ?", id), RESTARTS);
    assert_int_equal(count_of("SELECT count(*) FROM events WHERE experiment_id = ? "
                              "AND type = 'run_finished'",
                              id),
                     RESTARTS);
    assert_int_equal(count_of("SELECT count(DISTINCT data->>'run_id') FROM events "
                              "WHERE experiment_id = ? AND type = 'run_finished'",
                              id),
                     RESTARTS);
    assert_int_equal(count_of("SELECT count(*) FROM run_params p JOIN runs r ON r.id = p.run_id "
                              "WHERE r.experiment_id = ?",
                              id),
                     RESTARTS);
    /* one "finished" status event: the experiment finished once */
    assert_int_equal(count_of("SELECT count(*) FROM events WHERE experiment_id = ? "
                              "AND type = 'status' AND data->>'status' = 'finished'",
                              id),
                     1);
}

/* Restart by restart, the two experiments reached bit-identical end points. */
static void check_same_results(const char *a, const char *b)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs x JOIN runs y ON y.restart_index = x.restart_index "
             "JOIN run_params px ON px.run_id = x.id JOIN run_params py ON py.run_id = y.id "
             "WHERE x.experiment_id = '%s' AND y.experiment_id = '%s' "
             "AND x.final_risk = y.final_risk AND x.steps = y.steps AND px.data = py.data",
             a, b);
    assert_int_equal(db_int(sql), RESTARTS);
}

/* The worker's thread holds a run right now. */
static int training(pid_t pid)
{
    char host[64], sql[256];
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "host");
    host[sizeof host - 1] = '\0';
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE status = 'running' AND claimed_by = '%.16s-%ld-0'",
             host, (long)pid % 100000000L);
    return db_int(sql) > 0;
}

static void wait_training(pid_t pid)
{
    double t0 = now_s();
    while (!training(pid)) {
        assert_true(now_s() - t0 < 30.0);
        sleep_ms(20);
    }
}

/* ---- the test ---- */

static void test_scale_out(void **state)
{
    char a[32], b[32], c[32];
    pid_t w[3];
    double t0, t1, t3, tc;
    (void)state;
    if (!base_url[0])
        skip();
    int port = start_api();

    /* 1. one worker */
    w[0] = start_worker(0);
    t0 = now_s();
    submit(port, a);
    t1 = wait_finished(a, t0, 120.0);
    check_exactly_once(a);

    /* 2. three workers */
    w[1] = start_worker(1);
    w[2] = start_worker(2);
    t0 = now_s();
    submit(port, b);
    t3 = wait_finished(b, t0, 120.0);
    check_exactly_once(b);
    check_same_results(a, b);
    printf("scale: %d runs: 1 worker %.2f runs/s, 3 workers %.2f runs/s (x%.2f; 2 cores)\n",
           RESTARTS, RESTARTS / t1, RESTARTS / t3, t1 / t3);
    assert_true(t1 > 0 && t3 > 0);
    {
        /* how many workers took part */
        printf("scale: experiment B trained by %lld distinct workers\n",
               count_of("SELECT count(DISTINCT claimed_by) FROM runs WHERE experiment_id = ?", b));
    }

    /* 3. kill one worker mid-run, and another one later; the API process streams the progress
     * that the workers (other processes) write */
    struct stream sse;
    memset(&sse, 0, sizeof sse);
    t0 = now_s();
    submit(port, c);
    sse.port = port;
    snprintf(sse.id, sizeof sse.id, "%s", c);
    assert_int_equal(pthread_create(&sse.tid, NULL, stream_main, &sse), 0);
    wait_training(w[0]);
    stop(w[0], SIGKILL);
    wait_training(w[1]);
    stop(w[1], SIGKILL);
    tc = wait_finished(c, t0, 120.0);
    printf("scale: with two workers killed, experiment C finished in %.1f s\n", tc);
    pthread_join(sse.tid, NULL);
    assert_int_equal(sse.resp.status, 200);
    assert_true(sse.resp.len > 0);
    /* every run's result reached the stream once, then the end of the experiment */
    assert_int_equal(count_in(sse.resp.body, "event: run_finished"), RESTARTS);
    assert_int_equal(count_in(sse.resp.body, "\"status\":\"finished\",\"progress\""), 1);
    for (int i = 0; i < RESTARTS; i++) {
        char sql[200], rid[32];
        PGconn *pc = PQconnectdb(base_url);
        snprintf(sql, sizeof sql,
                 "SELECT id FROM %s.runs WHERE experiment_id = '%s' AND restart_index = %d", schema,
                 c, i);
        PGresult *r = PQexec(pc, sql);
        assert_int_equal(PQntuples(r), 1);
        snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(pc);
        assert_int_equal(count_in(sse.resp.body, rid), 1);
    }
    http_resp_free(&sse.resp);
    check_exactly_once(c);
    check_same_results(a, c);
    /* the kills hit runs in flight: those were requeued and trained again */
    assert_true(
        count_of("SELECT count(*) FROM runs WHERE experiment_id = ? AND attempts >= 2", c) >= 2);

    /* the survivor drains cleanly, the API too */
    stop(w[2], 0);
    stop(api_pid, 0);
}

static int group_setup(void **state)
{
    char hex[32];
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    if (!find_url()) {
        fprintf(stderr, "test_scale_pg: no PostgreSQL (BASINLAB_TEST_STORE or "
                        "BASINLAB_PG_STATE): skipping\n");
        return 0;
    }
    if (ids_new("s_", hex, sizeof hex) != 0)
        return -1;
    snprintf(schema, sizeof schema, "%s", hex);
    snprintf(location, sizeof location, "%s%sschema=%s", base_url,
             strchr(base_url, '?') ? "&" : "?", schema);
    strcpy(logdir, "/tmp/basinlab_scale_XXXXXX");
    return mkdtemp(logdir) ? 0 : -1;
}

/* Whatever happened, no process of the test outlives it. */
static int group_teardown(void **state)
{
    (void)state;
    while (n_procs > 0) {
        pid_t pid = procs[--n_procs];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (logdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", logdir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", logdir);
    }
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_out),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
