/* Tests of the per-client rate limit (ratelimit.c) and its place in the request pipeline.
 *
 * The limiter is driven directly with fake client addresses and a fake clock: every expected
 * decision and Retry-After is worked out here from the token-bucket definition (tokens =
 * min(burst, tokens + elapsed·rate), one per request, wait = ceil((1 − tokens)/rate)). The map
 * bound is checked with thousands of addresses, and the LRU rule by keeping one exhausted client
 * busy while others come and go (an evicted bucket would come back full and let it through).
 * Several threads draining one bucket at a frozen clock must get exactly `burst` tokens in
 * total. Over real HTTP: an in-process server on loopback with the hook installed (429 with
 * Retry-After and a problem body before routing and before the body is read; refill after the
 * advertised wait), and the real binary with --rate-limit, which must publish the limit at
 * /v1/limits and enforce it. Plus the flag's parsing in config.c. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "basin/status.h"
#include "config.h"
#include "http.h"
#include "http_client.h"
#include "ratelimit.h"
#include "reply.h"
#include "router.h"

#define SEC UINT64_C(1000000000)

/* One decision at time t (seconds, fake clock). */
static int take(struct ratelimit *rl, const char *client, double t_s, unsigned *retry)
{
    int allowed = -1;
    unsigned r = 12345;
    assert_int_equal(ratelimit_take_at(rl, client, (uint64_t)llround(t_s * 1e9), &allowed, &r),
                     BASIN_OK);
    assert_true(allowed == 0 || allowed == 1);
    if (retry != NULL)
        *retry = r;
    return allowed;
}

/* ---- the token bucket ---- */

static void test_burst_then_refill(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    unsigned retry = 0;
    assert_int_equal(ratelimit_create(1.0, 3, 16, &rl), BASIN_OK);
    /* a new client starts with a full bucket: exactly burst requests at once */
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "10.0.0.1", 100.0, &retry), 1);
    assert_int_equal(take(rl, "10.0.0.1", 100.0, &retry), 0);
    assert_int_equal(retry, 1); /* one token at 1/s: ceil(1/1) */
    /* half a second later: 0.5 tokens, still refused, and a refusal costs nothing */
    assert_int_equal(take(rl, "10.0.0.1", 100.5, &retry), 0);
    assert_int_equal(retry, 1); /* ceil(0.5 / 1) */
    /* one second after the burst: exactly one token */
    assert_int_equal(take(rl, "10.0.0.1", 101.0, &retry), 1);
    assert_int_equal(take(rl, "10.0.0.1", 101.0, &retry), 0);
    /* a long silence refills to the burst, not beyond */
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "10.0.0.1", 5000.0, NULL), 1);
    assert_int_equal(take(rl, "10.0.0.1", 5000.0, NULL), 0);
    /* another client has its own bucket */
    assert_int_equal(take(rl, "10.0.0.2", 5000.0, NULL), 1);

    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    assert_int_equal(st.allowed, 3 + 1 + 3 + 1);
    assert_int_equal(st.limited, 1 + 1 + 1 + 1);
    assert_int_equal(st.clients, 2);
    assert_int_equal(st.evicted, 0);
    ratelimit_free(rl);
}

static void test_retry_after_matches_formula(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    const double rate = 0.25;
    unsigned retry = 0;
    assert_int_equal(ratelimit_create(rate, 2, 4, &rl), BASIN_OK);
    assert_int_equal(take(rl, "192.0.2.7", 0.0, NULL), 1);
    assert_int_equal(take(rl, "192.0.2.7", 0.0, NULL), 1);
    /* tokens(t) = 0.25·t after the burst; the wait is ceil((1 − tokens)/rate) */
    const double times[] = {0.0, 0.4, 1.0, 2.5, 3.2, 3.99};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        double tokens = rate * times[i];
        unsigned want = (unsigned)ceil((1.0 - tokens) / rate - 1e-9);
        if (want < 1)
            want = 1;
        assert_int_equal(take(rl, "192.0.2.7", times[i], &retry), 0);
        assert_int_equal(retry, want);
    }
    assert_int_equal(take(rl, "192.0.2.7", 4.0, &retry), 1); /* 4 s · 0.25/s = 1 token */
    assert_int_equal(take(rl, "192.0.2.7", 4.0, &retry), 0);
    assert_int_equal(retry, 4);
    ratelimit_free(rl);
}

static void test_clock_going_back(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    unsigned retry = 0;
    assert_int_equal(ratelimit_create(1.0, 1, 4, &rl), BASIN_OK);
    assert_int_equal(take(rl, "10.1.1.1", 50.0, NULL), 1);
    /* a thread whose clock reading is older arrives "at" the bucket's time: no tokens appear */
    assert_int_equal(take(rl, "10.1.1.1", 10.0, &retry), 0);
    assert_int_equal(retry, 1);
    assert_int_equal(take(rl, "10.1.1.1", 50.5, &retry), 0);
    assert_int_equal(take(rl, "10.1.1.1", 51.0, NULL), 1);
    ratelimit_free(rl);
}

static void test_map_stays_bounded(void **state)
{
    (void)state;
    enum { CAP = 8, CLIENTS = 5000 };
    struct ratelimit *rl = NULL;
    struct ratelimit_stats st;
    char addr[64];
    assert_int_equal(ratelimit_create(1.0, 3, CAP, &rl), BASIN_OK);
    /* one client exhausts its bucket at t = 0 */
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(rl, "198.51.100.1", 0.0, NULL), 1);
    assert_int_equal(take(rl, "198.51.100.1", 0.0, NULL), 0);
    /* thousands of other addresses arrive; the exhausted client stays the most recently seen
     * one, so the idlest (another address) is always the one evicted and it stays refused */
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_int_equal(take(rl, addr, 0.0, NULL), 1); /* a new client has a full bucket */
        assert_int_equal(take(rl, "198.51.100.1", 0.0, NULL), 0);
        ratelimit_get_stats(rl, &st);
        assert_true(st.clients <= CAP);
    }
    ratelimit_get_stats(rl, &st);
    assert_int_equal(st.clients, CAP);
    /* every client beyond the first CAP − 1 newcomers pushed one out */
    assert_int_equal(st.evicted, CLIENTS - (CAP - 1));
    /* each evicted bucket had just given a token away: none was full again */
    assert_int_equal(st.evicted_busy, st.evicted);

    /* after a long silence every bucket is full: evicting them loses nothing */
    uint64_t busy_before = st.evicted_busy;
    for (int i = 0; i < 100; i++) {
        snprintf(addr, sizeof addr, "172.16.%d.%d", i / 256, i % 256);
        assert_int_equal(take(rl, addr, 1000.0 + 10.0 * i, NULL), 1);
    }
    ratelimit_get_stats(rl, &st);
    assert_int_equal(st.clients, CAP);
    assert_int_equal(st.evicted, CLIENTS - (CAP - 1) + 100);
    assert_int_equal(st.evicted_busy, busy_before);
    ratelimit_free(rl);
}

static void test_eviction_takes_the_idlest(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_create(0.001, 1, 3, &rl), BASIN_OK);
    /* three clients each spend their only token, at t = 1, 2, 3 */
    assert_int_equal(take(rl, "10.0.0.1", 1.0, NULL), 1);
    assert_int_equal(take(rl, "10.0.0.2", 2.0, NULL), 1);
    assert_int_equal(take(rl, "10.0.0.3", 3.0, NULL), 1);
    assert_int_equal(take(rl, "10.0.0.1", 4.0, NULL), 0); /* .1 is now the most recent */
    /* a fourth client pushes out the least recently seen: .2 */
    assert_int_equal(take(rl, "10.0.0.4", 5.0, NULL), 1);
    assert_int_equal(take(rl, "10.0.0.1", 6.0, NULL), 0); /* kept: still empty */
    assert_int_equal(take(rl, "10.0.0.3", 7.0, NULL), 0); /* kept: still empty */
    assert_int_equal(take(rl, "10.0.0.2", 8.0, NULL), 1); /* forgotten: a fresh bucket */
    ratelimit_free(rl);
}

static void test_client_keys(void **state)
{
    (void)state;
    char key[RATELIMIT_KEY_SIZE];
    ratelimit_client_key("192.0.2.1", key);
    assert_string_equal(key, "192.0.2.1");
    ratelimit_client_key("::ffff:192.0.2.1", key);
    assert_string_equal(key, "192.0.2.1");
    ratelimit_client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key);
    assert_string_equal(key, "2001:db8:1:2::/64");
    ratelimit_client_key("::1", key);
    assert_string_equal(key, "::/64");
    ratelimit_client_key("", key);
    assert_string_equal(key, "");
    ratelimit_client_key("not an address", key);
    assert_string_equal(key, "not an address");

    /* one /64 shares a bucket; the next /64 does not; a v4-mapped address is its IPv4 */
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_create(0.001, 1, 16, &rl), BASIN_OK);
    assert_int_equal(take(rl, "2001:db8:1:2::1", 0.0, NULL), 1);
    assert_int_equal(take(rl, "2001:db8:1:2:ffff::5", 0.0, NULL), 0);
    assert_int_equal(take(rl, "2001:db8:1:3::1", 0.0, NULL), 1);
    assert_int_equal(take(rl, "203.0.113.9", 0.0, NULL), 1);
    assert_int_equal(take(rl, "::ffff:203.0.113.9", 0.0, NULL), 0);
    ratelimit_free(rl);
}

struct drain_arg {
    struct ratelimit *rl;
    int attempts;
    int allowed;
};

static void *drain_main(void *p)
{
    struct drain_arg *a = p;
    for (int i = 0; i < a->attempts; i++) {
        int ok = 0;
        unsigned retry = 0;
        if (ratelimit_take_at(a->rl, "10.9.9.9", 7 * SEC, &ok, &retry) == BASIN_OK && ok)
            a->allowed++;
    }
    return NULL;
}

static void test_threads_share_one_bucket(void **state)
{
    (void)state;
    enum { THREADS = 4, ATTEMPTS = 3000, BURST = 5000 };
    struct ratelimit *rl = NULL;
    pthread_t th[THREADS];
    struct drain_arg args[THREADS];
    assert_int_equal(ratelimit_create(1.0, BURST, 64, &rl), BASIN_OK);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct drain_arg){rl, ATTEMPTS, 0};
        assert_int_equal(pthread_create(&th[i], NULL, drain_main, &args[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
    }
    /* the clock never moves: exactly the burst is handed out, no token twice */
    assert_int_equal(total, BURST);
    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    assert_int_equal(st.allowed, BURST);
    assert_int_equal(st.limited, THREADS * ATTEMPTS - BURST);
    ratelimit_free(rl);
}

static void test_create_and_parse(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_create(0.0, 1, 4, &rl), BASIN_EINVAL);
    assert_int_equal(ratelimit_create(NAN, 1, 4, &rl), BASIN_EINVAL);
    assert_int_equal(ratelimit_create(1.0, 0, 4, &rl), BASIN_EINVAL);
    assert_int_equal(ratelimit_create(2e6, 1, 4, &rl), BASIN_EINVAL);
    assert_null(rl);
    int allowed = 0;
    unsigned retry = 0;
    assert_int_equal(ratelimit_take_at(NULL, "x", 0, &allowed, &retry), BASIN_EINVAL);

    double rps = 0;
    unsigned burst = 0;
    assert_int_equal(ratelimit_parse("10", &rps, &burst), BASIN_OK);
    assert_true(rps == 10.0);
    assert_int_equal(burst, 10);
    assert_int_equal(ratelimit_parse("0.5", &rps, &burst), BASIN_OK);
    assert_true(rps == 0.5);
    assert_int_equal(burst, 1);
    assert_int_equal(ratelimit_parse("2.5:7", &rps, &burst), BASIN_OK);
    assert_true(rps == 2.5);
    assert_int_equal(burst, 7);
    const char *bad[] = {"",          "0",  "-1", "abc",   "1:",  "1:0", "1:x", "1e9",
                         "5:2000000", " 5", "5 ", "5:3:1", "inf", "nan", ".",   "1:+2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rps = -1;
        burst = 99;
        assert_int_equal(ratelimit_parse(bad[i], &rps, &burst), BASIN_EINVAL);
        assert_true(rps == -1 && burst == 99); /* nothing written on failure */
    }
}

static const char *env_rate(const char *name)
{
    return strcmp(name, "BASINLAB_RATE_LIMIT") == 0 ? "3:9" : NULL;
}

static void test_config_flag(void **state)
{
    (void)state;
    struct serve_config c;
    char err[256];
    int help = 0;
    char *none[] = {"serve"};
    assert_int_equal(config_load(&c, 1, none, NULL, &help, err, sizeof err), BASIN_OK);
    assert_true(c.rate_limit_rps == 0);
    assert_int_equal(c.rate_limit_burst, 0);
    assert_int_equal(config_load(&c, 1, none, env_rate, &help, err, sizeof err), BASIN_OK);
    assert_true(c.rate_limit_rps == 3.0);
    assert_int_equal(c.rate_limit_burst, 9);
    char *flag[] = {"serve", "--rate-limit", "0.5:4"};
    assert_int_equal(config_load(&c, 3, flag, env_rate, &help, err, sizeof err), BASIN_OK);
    assert_true(c.rate_limit_rps == 0.5);
    assert_int_equal(c.rate_limit_burst, 4);
    char *off[] = {"serve", "--rate-limit=0"};
    assert_int_equal(config_load(&c, 2, off, env_rate, &help, err, sizeof err), BASIN_OK);
    assert_true(c.rate_limit_rps == 0);
    char *bad[] = {"serve", "--rate-limit", "fast"};
    assert_int_equal(config_load(&c, 3, bad, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--rate-limit"));
}

/* ---- over HTTP ---- */

/* method path with an optional JSON body; *r holds zeros or the previous answer, which is
 * freed first. */
static void http(int port, const char *method, const char *path, const char *body,
                 struct http_resp *r)
{
    struct http_req q = http_req_json(method, path, body);
    q.timeout_ms = 15000;
    http_resp_free(r);
    assert_int_equal(http_request(NULL, port, &q, r), CURLE_OK);
}

static atomic_int handler_calls;

static int h_ok(struct request *req, struct reply *rep)
{
    (void)req;
    atomic_fetch_add(&handler_calls, 1);
    return reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
}

static const struct route test_routes[] = {
    {"GET", "/ping", h_ok, ROUTE_BODY_NONE},
    {"POST", "/items", h_ok, ROUTE_BODY_JSON},
};

static struct http_server *start_limited(struct ratelimit *rl)
{
    struct http_config cfg;
    struct http_server *srv = NULL;
    http_config_defaults(&cfg);
    cfg.port = 0;
    cfg.log_fn = http_log_discard;
    cfg.hooks.admit = (struct request_hook){ratelimit_hook, rl};
    assert_int_equal(http_server_start(&cfg, test_routes, 2, NULL, &srv), BASIN_OK);
    return srv;
}

static void sleep_s(unsigned s)
{
    struct timespec ts = {(time_t)s, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void expect_429(const struct http_resp *r, unsigned max_retry)
{
    assert_int_equal(r->status, 429);
    assert_string_equal(http_header_or(r, "Content-Type", ""), "application/problem+json");
    long retry = strtol(http_header_or(r, "Retry-After", ""), NULL, 10);
    assert_true(retry >= 1 && retry <= (long)max_retry);
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 429);
    json_decref(j);
}

static void test_http_refuses_before_routing_and_body(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    struct http_resp r = {0};
    /* 0.001/s: the bucket does not refill within the test, so every decision is fixed */
    assert_int_equal(ratelimit_create(0.001, 2, 16, &rl), BASIN_OK);
    struct http_server *srv = start_limited(rl);
    int port = http_server_port(srv);
    atomic_store(&handler_calls, 0);
    http(port, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
    http(port, "GET", "/no/such/path", NULL, &r); /* counted too: a 404 is still a request */
    assert_int_equal(r.status, 404);
    http(port, "GET", "/ping", NULL, &r);
    expect_429(&r, 1000);
    assert_true(strtol(http_header_or(&r, "Retry-After", ""), NULL, 10) >=
                999);                             /* (1 − ε)/0.001 s */
    http(port, "GET", "/no/such/path", NULL, &r); /* refused before routing: 429, not 404 */
    expect_429(&r, 1000);
    http(port, "POST", "/items", "{\"a\": 1}", &r);
    expect_429(&r, 1000);
    http_resp_free(&r);
    assert_int_equal(atomic_load(&handler_calls), 1); /* only the first /ping ran */
    http_server_quiesce(srv);
    http_server_stop(srv);
    struct ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    assert_int_equal(st.allowed, 2);
    assert_int_equal(st.limited, 3);
    ratelimit_free(rl);
}

static void test_http_refills_after_retry_after(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    struct http_resp r = {0};
    /* 0.25/s, burst 1: a second request within 4 s is refused */
    assert_int_equal(ratelimit_create(0.25, 1, 16, &rl), BASIN_OK);
    struct http_server *srv = start_limited(rl);
    int port = http_server_port(srv);
    http(port, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
    http(port, "GET", "/ping", NULL, &r);
    expect_429(&r, 4);
    /* waiting the advertised time is enough */
    sleep_s((unsigned)strtol(http_header_or(&r, "Retry-After", ""), NULL, 10));
    http(port, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    http_server_quiesce(srv);
    http_server_stop(srv);
    ratelimit_free(rl);
}

/* ---- the real binary ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `basinlab serve --port 0 --rate-limit 0.01:3`; returns the port, *pid the child. */
static int serve_limited(const char *dir, pid_t *pid)
{
    int pipefd[2];
    char db[512], log[512], line[512];
    snprintf(db, sizeof db, "%s/rl.db", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    assert_int_equal(pipe(pipefd), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", db, "--workers",
              "1", "--rate-limit", "0.01:3", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    double t0 = now_s();
    while (len + 1 < sizeof line && now_s() - t0 < 20.0) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        if (read(pipefd[0], line + len, 1) <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(pipefd[0]);
    const char *p = strstr(line, "http://127.0.0.1:");
    assert_non_null(p);
    return atoi(p + strlen("http://127.0.0.1:"));
}

static void test_binary_publishes_and_enforces(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_rl_XXXXXX";
    char path[600];
    pid_t pid = 0;
    struct http_resp r = {0};
    assert_non_null(mkdtemp(dir));
    int port = serve_limited(dir, &pid);
    http(port, "GET", "/v1/limits", NULL, &r);
    assert_int_equal(r.status, 200);
    json_error_t e;
    json_t *lim = json_loads(r.body, 0, &e);
    assert_non_null(lim);
    json_t *rate = json_object_get(lim, "rate_limit");
    assert_true(json_is_object(rate));
    assert_true(json_number_value(json_object_get(rate, "requests_per_second")) == 0.01);
    assert_int_equal(json_integer_value(json_object_get(rate, "burst")), 3);
    json_decref(lim);
    http(port, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    http(port, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    http(port, "GET", "/healthz", NULL, &r); /* the fourth request of a burst of 3 */
    expect_429(&r, 100);
    http_resp_free(&r);
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof path, "%s/rl.db", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/rl.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/rl.db-shm", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/server.log", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_retry_after_matches_formula),
        cmocka_unit_test(test_clock_going_back),
        cmocka_unit_test(test_map_stays_bounded),
        cmocka_unit_test(test_eviction_takes_the_idlest),
        cmocka_unit_test(test_client_keys),
        cmocka_unit_test(test_threads_share_one_bucket),
        cmocka_unit_test(test_create_and_parse),
        cmocka_unit_test(test_config_flag),
        cmocka_unit_test(test_http_refuses_before_routing_and_body),
        cmocka_unit_test(test_http_refills_after_retry_after),
        cmocka_unit_test(test_binary_publishes_and_enforces),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
