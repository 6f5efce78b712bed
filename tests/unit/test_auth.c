/* Tests of token authentication (auth.c, store_sqlite_tokens.c, cli_token.c) and of its place in
 * `basinlab serve --auth tokens`.
 *
 * Unit level: the constant-time comparison on equal and unequal buffers (a difference at the
 * first, a middle and the last byte; bytes past n ignored); the token hash against the FIPS
 * 180-2 SHA-256 test vectors; generated tokens decoded here by a base64url decoder of this file
 * (every one is 32 bytes, all distinct, and every bit position of the secret takes both values
 * across 200 tokens); the Authorization parser and the policy table; the store's token records
 * (find only active ones, revoke once, refuse duplicates and bad fields); the flags.
 *
 * Over real HTTP with the real binary: `basinlab token create` prints exactly one token on
 * stdout, and the database files hold its SHA-256 (computed here with nettle directly) but not
 * the token. A server with --auth tokens then answers 401 with the Bearer challenge without a
 * token, with error="invalid_token" for malformed, unknown and (after `basinlab token revoke`
 * from another process) revoked tokens, 403 with error="insufficient_scope" for a read token on
 * POST and DELETE (and the refused POST created nothing), and serves reads to read tokens and
 * everything to write tokens; /healthz and /readyz stay public, /metrics needs a token. Finally
 * serve.c's warning: binding a non-loopback address without authentication says so; with
 * --auth tokens it does not. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <nettle/sha2.h>

#include "auth.h"
#include "basin/status.h"
#include "config.h"
#include "http_client.h"
#include "store.h"

#define ORIGIN "https://dash.example.org"

/* ---- constant-time comparison, hashing, token shape ---- */

static void test_ct_equal(void **state)
{
    (void)state;
    unsigned char a[64], b[64];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = b[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(auth_ct_equal(a, b, sizeof a), 1);
    assert_int_equal(auth_ct_equal(a, b, 0), 1);
    const size_t spots[] = {0, 31, 63};
    for (size_t k = 0; k < 3; k++) {
        b[spots[k]] ^= 0x80;
        assert_int_equal(auth_ct_equal(a, b, sizeof a), 0);
        assert_int_equal(auth_ct_equal(b, a, sizeof a), 0);
        b[spots[k]] ^= 0x80;
    }
    b[1] ^= 1; /* a one-bit difference */
    assert_int_equal(auth_ct_equal(a, b, sizeof a), 0);
    b[1] ^= 1;
    b[63] = 0; /* beyond n: not compared */
    assert_int_equal(auth_ct_equal(a, b, 63), 1);
    assert_int_equal(auth_ct_equal("secret-hash", "secret-hash", 11), 1);
    assert_int_equal(auth_ct_equal("secret-hash", "secret-hasH", 11), 0);
}

static void test_hash_vectors(void **state)
{
    (void)state;
    char hex[AUTH_HASH_HEX_SIZE];
    /* FIPS 180-2, appendix B */
    auth_token_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    auth_token_hash(two_blocks, sizeof two_blocks - 1, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    auth_token_hash("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* only len bytes count */
    auth_token_hash("abcdef", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* This file's own base64url decoder (no padding): returns the byte count, -1 on a bad char. */
static int b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(alphabet, s[i]);
        if (p == NULL || s[i] == '\0')
            return -1;
        acc = (acc << 6) | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1; /* leftover bits must be zero */
    return (int)n;
}

static void test_generated_tokens(void **state)
{
    (void)state;
    enum { N = 200 };
    static char tokens[N][AUTH_TOKEN_SIZE];
    unsigned char any_one[AUTH_SECRET_BYTES] = {0};
    unsigned char any_zero[AUTH_SECRET_BYTES] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(auth_token_generate(tokens[i]), BASIN_OK);
        size_t len = strlen(tokens[i]);
        assert_int_equal(len, 47);
        assert_memory_equal(tokens[i], "blt_", 4);
        assert_int_equal(auth_token_well_formed(tokens[i], len), 1);
        unsigned char secret[64];
        assert_int_equal(b64url_decode(tokens[i] + 4, len - 4, secret, sizeof secret), 32);
        for (int k = 0; k < AUTH_SECRET_BYTES; k++) {
            any_one[k] |= secret[k];
            any_zero[k] |= (unsigned char)~secret[k];
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tokens[i], tokens[j]);
    }
    /* all 256 bits vary: a secret that is partly constant (a short read) would show here */
    for (int k = 0; k < AUTH_SECRET_BYTES; k++) {
        assert_int_equal(any_one[k], 0xff);
        assert_int_equal(any_zero[k], 0xff);
    }
}

static void test_token_shape(void **state)
{
    (void)state;
    char t[AUTH_TOKEN_SIZE];
    assert_int_equal(auth_token_generate(t), BASIN_OK);
    assert_int_equal(auth_token_well_formed(t, strlen(t)), 1);
    assert_int_equal(auth_token_well_formed(t, strlen(t) - 1), 0);
    char bad[AUTH_TOKEN_SIZE + 1];
    memcpy(bad, t, sizeof t);
    bad[0] = 'x'; /* prefix */
    assert_int_equal(auth_token_well_formed(bad, strlen(bad)), 0);
    const char swaps[] = {'+', '/', '=', ' ', '.', '~'};
    for (size_t i = 0; i < sizeof swaps; i++) {
        memcpy(bad, t, sizeof t);
        bad[20] = swaps[i];
        assert_int_equal(auth_token_well_formed(bad, strlen(bad)), 0);
    }
    memcpy(bad, t, sizeof t);
    bad[30] = '\0';
    assert_int_equal(auth_token_well_formed(bad, 47), 0); /* embedded NUL */
    memcpy(bad, t, sizeof t);
    bad[47] = 'A';
    bad[48] = '\0';
    assert_int_equal(auth_token_well_formed(bad, 48), 0);
}

static void test_parse_bearer(void **state)
{
    (void)state;
    const char *tok = NULL;
    size_t len = 0;
    assert_int_equal(auth_parse_bearer("Bearer blt_abc", &tok, &len), BASIN_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(tok, "blt_abc", 7);
    assert_int_equal(auth_parse_bearer("bearer   x-y_z", &tok, &len), BASIN_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(tok, "x-y_z", 5);
    assert_int_equal(auth_parse_bearer("BEARER t", &tok, &len), BASIN_OK);
    const char *bad[] = {"Basic dXNlcjpwYXNz", "Bearer",    "Bearer ",   "Bearerabc", "Bearer a b",
                         "Bearer a ",          "Bearer\ta", " Bearer a", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_parse_bearer(bad[i], &tok, &len), BASIN_EINVAL);
    assert_int_equal(auth_parse_bearer(NULL, &tok, &len), BASIN_EINVAL);
}

static void test_policy(void **state)
{
    (void)state;
    struct auth_policy p = {NULL, 0};
    assert_int_equal(auth_required_scope(&p, "GET", "/healthz"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "HEAD", "/readyz"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "GET", "/openapi.yaml"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "GET", "/"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "GET", "/js/{file}"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "GET", "/metrics"), AUTH_SCOPE_READ);
    assert_int_equal(auth_required_scope(&p, "GET", "/v1/limits"), AUTH_SCOPE_READ);
    assert_int_equal(auth_required_scope(&p, "HEAD", "/v1/datasets"), AUTH_SCOPE_READ);
    assert_int_equal(auth_required_scope(&p, "GET", "/v1/experiments/{id}/events"),
                     AUTH_SCOPE_READ);
    assert_int_equal(auth_required_scope(&p, "POST", "/v1/datasets"), AUTH_SCOPE_WRITE);
    assert_int_equal(auth_required_scope(&p, "DELETE", "/v1/datasets/{id}"), AUTH_SCOPE_WRITE);
    assert_int_equal(auth_required_scope(&p, "POST", "/v1/experiments/{id}/cancel"),
                     AUTH_SCOPE_WRITE);
    p.metrics_public = 1;
    assert_int_equal(auth_required_scope(&p, "GET", "/metrics"), AUTH_SCOPE_NONE);
    assert_int_equal(auth_required_scope(&p, "GET", "/v1/limits"), AUTH_SCOPE_READ);

    enum auth_scope s = AUTH_SCOPE_NONE;
    assert_int_equal(auth_scope_parse("read", &s), BASIN_OK);
    assert_int_equal(s, AUTH_SCOPE_READ);
    assert_int_equal(auth_scope_parse("write", &s), BASIN_OK);
    assert_int_equal(s, AUTH_SCOPE_WRITE);
    assert_int_equal(auth_scope_parse("admin", &s), BASIN_EINVAL);
    assert_int_equal(auth_scope_parse("Read", &s), BASIN_EINVAL);
    assert_int_equal(auth_scope_parse(NULL, &s), BASIN_EINVAL);
}

/* ---- the store's token records ---- */

static void rm_files(const char *dir, const char *const *names)
{
    char path[600];
    for (size_t i = 0; names[i] != NULL; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static const char *const db_files[] = {"t.db", "t.db-wal", "t.db-shm", "server.log",
                                       "out",  "err",      NULL};

static void test_store_records(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_auth_XXXXXX";
    char loc[600], err[256], hash[AUTH_HASH_HEX_SIZE];
    char token[AUTH_TOKEN_SIZE], id[STORE_ID_SIZE], id2[STORE_ID_SIZE];
    struct store *st = NULL;
    struct store_api_token rec;
    assert_non_null(mkdtemp(dir));
    snprintf(loc, sizeof loc, "%s/t.db", dir);
    assert_int_equal(store_open(loc, NULL, &st, err, sizeof err), STORE_OK);
    assert_true(store_has_api_tokens(st));

    assert_int_equal(auth_token_create(st, AUTH_SCOPE_READ, "ci reader", token, id), BASIN_OK);
    assert_int_equal(strlen(id), 20);
    assert_memory_equal(id, "tok_", 4);
    auth_token_hash(token, strlen(token), hash);
    assert_int_equal(store_api_token_find(st, hash, &rec), STORE_OK);
    assert_string_equal(rec.id, id);
    assert_string_equal(rec.scope, "read");
    assert_string_equal(rec.name, "ci reader");
    assert_string_equal(rec.secret_sha256, hash);
    assert_int_equal(rec.revoked_at_ms, 0);
    assert_true(rec.created_at_ms > 1600000000000LL);

    assert_int_equal(auth_token_create(st, AUTH_SCOPE_WRITE, NULL, token, id2), BASIN_OK);
    assert_string_not_equal(id, id2);

    /* the same hash twice is refused */
    struct store_api_token dup = rec;
    assert_int_equal(store_api_token_insert(st, &dup, id2), STORE_ECONFLICT);
    /* bad fields */
    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    assert_int_equal(auth_token_create(st, AUTH_SCOPE_READ, name65, token, id2), BASIN_EINVAL);
    assert_int_equal(auth_token_create(st, AUTH_SCOPE_NONE, NULL, token, id2), BASIN_EINVAL);
    snprintf(dup.scope, sizeof dup.scope, "admin");
    dup.secret_sha256[0] = dup.secret_sha256[0] == 'a' ? 'b' : 'a';
    assert_int_equal(store_api_token_insert(st, &dup, id2), STORE_EINVAL);
    snprintf(dup.scope, sizeof dup.scope, "read");
    dup.secret_sha256[5] = 'G';
    assert_int_equal(store_api_token_insert(st, &dup, id2), STORE_EINVAL);

    struct store_api_token *items = NULL;
    size_t n = 0;
    assert_int_equal(store_api_token_list(st, &items, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].id, id);
    assert_string_equal(items[1].scope, "write");
    assert_string_equal(items[1].name, "");
    free(items);

    int changed = -1;
    assert_int_equal(store_api_token_revoke(st, id, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_api_token_revoke(st, id, &changed), STORE_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(store_api_token_find(st, hash, &rec), STORE_ENOTFOUND);
    assert_int_equal(store_api_token_revoke(st, "tok_0000000000000000", &changed), STORE_ENOTFOUND);
    assert_int_equal(store_api_token_list(st, &items, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(items[0].revoked_at_ms >= items[0].created_at_ms);
    assert_int_equal(items[1].revoked_at_ms, 0);
    free(items);
    assert_int_equal(store_api_token_find(st, "not-a-hash", &rec), STORE_EINVAL);

    store_close(st);
    rm_files(dir, db_files);
}

static const char *env_auth(const char *name)
{
    if (strcmp(name, "BASINLAB_AUTH") == 0)
        return "tokens";
    if (strcmp(name, "BASINLAB_PUBLIC_HEALTH") == 0)
        return "1";
    return NULL;
}

static void test_config_flags(void **state)
{
    (void)state;
    struct serve_config c;
    char err[256];
    int help = 0;
    char *none[] = {"serve"};
    assert_int_equal(config_load(&c, 1, none, NULL, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.auth, CONFIG_AUTH_NONE);
    assert_int_equal(c.public_health, 0);
    assert_int_equal(config_load(&c, 1, none, env_auth, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.auth, CONFIG_AUTH_TOKENS);
    assert_int_equal(c.public_health, 1);
    /* a switch takes no value: the next argument is the next flag */
    char *sw[] = {"serve", "--auth", "tokens", "--public-health", "--port", "7"};
    assert_int_equal(config_load(&c, 6, sw, NULL, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.auth, CONFIG_AUTH_TOKENS);
    assert_int_equal(c.public_health, 1);
    assert_int_equal(c.port, 7);
    char *off[] = {"serve", "--auth=none", "--public-health=false"};
    assert_int_equal(config_load(&c, 3, off, env_auth, &help, err, sizeof err), BASIN_OK);
    assert_int_equal(c.auth, CONFIG_AUTH_NONE);
    assert_int_equal(c.public_health, 0);
    char *bad[] = {"serve", "--auth", "password"};
    assert_int_equal(config_load(&c, 3, bad, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--auth"));
    char *badb[] = {"serve", "--public-health=maybe"};
    assert_int_equal(config_load(&c, 2, badb, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--public-health"));
}

/* ---- the real binary ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    return n;
}

/* Run `basinlab token ARGS...` (NULL-terminated); stdout and stderr into out/err (cap bytes
 * each). Returns the exit status. */
static int run_cli(const char *dir, char *out, char *err, size_t cap, ...)
{
    char *argv[16];
    char out_path[600], err_path[600];
    int argc = 0;
    va_list ap;
    argv[argc++] = (char *)BASINLAB_BINARY;
    argv[argc++] = (char *)"token";
    va_start(ap, cap);
    for (char *a = va_arg(ap, char *); a != NULL && argc < 15; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(err_path, sizeof err_path, "%s/err", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(BASINLAB_BINARY, argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    read_file(out_path, out, cap);
    read_file(err_path, err, cap);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct server {
    pid_t pid;
    int port;
};

/* `basinlab serve --port 0 --db DIR/t.db --workers 1 EXTRA...`; stderr to DIR/server.log. */
static void server_start(const char *dir, struct server *s, const char *const *extra)
{
    int pipefd[2];
    char db[600], log[600], line[512];
    char *argv[24];
    int argc = 0;
    snprintf(db, sizeof db, "%s/t.db", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *base[] = {BASINLAB_BINARY, "serve", "--port", "0", "--db", db, "--workers", "1"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        argv[argc++] = (char *)base[i];
    for (size_t i = 0; extra[i] != NULL && argc < 23; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    assert_int_equal(pipe(pipefd), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(pipefd[1], STDOUT_FILENO);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(BASINLAB_BINARY, argv);
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
    /* "basinlab listening on http://HOST:PORT (db ...)" */
    const char *p = strstr(line, "listening on http://");
    assert_non_null(p);
    const char *colon = strchr(p + strlen("listening on http://"), ' ');
    assert_non_null(colon);
    while (colon > p && colon[-1] != ':')
        colon--;
    s->port = atoi(colon);
    assert_true(s->port > 0 && s->port < 65536);
}

static void server_stop(struct server *s)
{
    int status = 0;
    kill(s->pid, SIGTERM);
    assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "server status: exited %d code %d signal %d\n", WIFEXITED(status),
                WEXITSTATUS(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s->pid = 0;
}

/* method path, with `Authorization: Bearer token` when token is not NULL (auth_header
 * overrides the whole header line), an optional JSON body and an Origin; *r holds zeros or
 * the previous answer, which is freed first. */
static void call(int port, const char *method, const char *path, const char *token,
                 const char *auth_header, const char *body, const char *origin, struct http_resp *r)
{
    char authz[256], orig[256];
    size_t n = 0;
    struct http_req q = http_req_json(method, path, body);
    q.timeout_ms = 20000;
    if (auth_header != NULL) {
        q.headers[n++] = auth_header;
    } else if (token != NULL) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
        q.headers[n++] = authz;
    }
    if (origin != NULL) {
        snprintf(orig, sizeof orig, "Origin: %s", origin);
        q.headers[n++] = orig;
    }
    http_resp_free(r);
    assert_int_equal(http_request(NULL, port, &q, r), CURLE_OK);
}

static long status_of(int port, const char *method, const char *path, const char *token)
{
    struct http_resp r = {0};
    call(port, method, path, token, NULL, NULL, NULL, &r);
    long status = r.status;
    http_resp_free(&r);
    return status;
}

/* A 401/403 problem with the given challenge (prefix match on WWW-Authenticate). */
static void expect_challenge(const struct http_resp *r, long status, const char *challenge)
{
    if (r->status != status)
        fprintf(stderr, "got %ld: %s\n", r->status, r->body);
    assert_int_equal(r->status, status);
    assert_string_equal(http_header_or(r, "WWW-Authenticate", ""), challenge);
    assert_string_equal(http_header_or(r, "Content-Type", ""), "application/problem+json");
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    json_decref(j);
}

/* Is needle (n bytes) anywhere in the file? */
static int file_contains(const char *path, const char *needle, size_t n)
{
    static char buf[8 << 20];
    size_t len = read_file(path, buf, sizeof buf);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) == 0)
            return 1;
    }
    return 0;
}

static int db_contains(const char *dir, const char *needle)
{
    char path[600];
    const char *files[] = {"t.db", "t.db-wal", "t.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (file_contains(path, needle, strlen(needle)))
            return 1;
    }
    return 0;
}

/* Hex SHA-256 with nettle directly (independent of auth.c's hashing and hex encoding). */
static void sha256_hex(const char *s, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, strlen(s), (const uint8_t *)s);
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The token on the single stdout line of `token create`; the id from its stderr line. */
static void create_token(const char *dir, const char *scope, const char *name, char *token,
                         char *id)
{
    char out[4096], err[4096], db[600];
    snprintf(db, sizeof db, "%s/t.db", dir);
    int rc = name != NULL ? run_cli(dir, out, err, sizeof out, "create", "--scope", scope, "--db",
                                    db, "--name", name, (char *)NULL)
                          : run_cli(dir, out, err, sizeof out, "create", "--db", db, "--scope",
                                    scope, (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "token create: %s\n", err);
    assert_int_equal(rc, 0);
    size_t len = strlen(out);
    assert_true(len == 48 && out[47] == '\n'); /* one line: the token, nothing else */
    memcpy(token, out, 47);
    token[47] = '\0';
    assert_int_equal(auth_token_well_formed(token, 47), 1);
    assert_null(strstr(err, token)); /* never on stderr */
    const char *p = strstr(err, "tok_");
    assert_non_null(p);
    memcpy(id, p, 20);
    id[20] = '\0';
}

static void test_binary_end_to_end(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_auth_XXXXXX";
    char reader[64], writer[64], reader_id[32], writer_id[32], hash[65];
    char out[8192], err[4096], db[600];
    struct server s;
    struct http_resp r = {0};
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/t.db", dir);

    create_token(dir, "read", "ci reader", reader, reader_id);
    create_token(dir, "write", NULL, writer, writer_id);
    assert_string_not_equal(reader, writer);
    /* only the hashes are on disk */
    assert_false(db_contains(dir, reader));
    assert_false(db_contains(dir, writer));
    assert_false(db_contains(dir, reader + 4)); /* not even the secret without its prefix */
    sha256_hex(reader, hash);
    assert_true(db_contains(dir, hash));
    sha256_hex(writer, hash);
    assert_true(db_contains(dir, hash));

    assert_int_equal(run_cli(dir, out, err, sizeof out, "list", "--db", db, (char *)NULL), 0);
    assert_non_null(strstr(out, reader_id));
    assert_non_null(strstr(out, writer_id));
    assert_non_null(strstr(out, "ci reader"));
    assert_null(strstr(out, reader)); /* list never shows secrets */
    assert_int_equal(run_cli(dir, out, err, sizeof out, "create", "--db", db, (char *)NULL), 2);
    assert_int_equal(
        run_cli(dir, out, err, sizeof out, "create", "--scope", "admin", "--db", db, (char *)NULL),
        2);

    const char *extra[] = {"--auth", "tokens", "--cors-origins", ORIGIN, NULL};
    server_start(dir, &s, extra);
    int port = s.port;

    /* public */
    assert_int_equal(status_of(port, "GET", "/healthz", NULL), 200);
    assert_int_equal(status_of(port, "GET", "/readyz", NULL), 200);
    assert_int_equal(status_of(port, "GET", "/openapi.yaml", NULL), 200);
    /* no token */
    call(port, "GET", "/v1/datasets", NULL, NULL, NULL, ORIGIN, &r);
    expect_challenge(&r, 401, "Bearer realm=\"basinlab\"");
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""),
                        ORIGIN); /* a dashboard can read why */
    call(port, "GET", "/metrics", NULL, NULL, NULL, NULL, &r);
    expect_challenge(&r, 401, "Bearer realm=\"basinlab\"");
    call(port, "POST", "/v1/datasets", NULL, NULL, "{}", NULL, &r);
    expect_challenge(&r, 401, "Bearer realm=\"basinlab\"");
    /* malformed, other schemes, unknown */
    static const char invalid[] = "Bearer realm=\"basinlab\", error=\"invalid_token\"";
    call(port, "GET", "/v1/datasets", "not-a-token", NULL, NULL, NULL, &r);
    expect_challenge(&r, 401, invalid);
    call(port, "GET", "/v1/datasets", NULL, "Authorization: Basic dXNlcjpwYXNz", NULL, NULL, &r);
    expect_challenge(&r, 401, invalid);
    char unknown[AUTH_TOKEN_SIZE];
    assert_int_equal(auth_token_generate(unknown), BASIN_OK);
    call(port, "GET", "/v1/datasets", unknown, NULL, NULL, NULL, &r);
    expect_challenge(&r, 401, invalid);
    char tampered[64];
    snprintf(tampered, sizeof tampered, "%s", reader);
    tampered[46] = tampered[46] == 'A' ? 'B' : 'A';
    call(port, "GET", "/v1/datasets", tampered, NULL, NULL, NULL, &r);
    expect_challenge(&r, 401, invalid);

    /* read scope: reads yes, writes no (and the refused write changed nothing) */
    static const char dataset[] =
        "{\"kind\": \"generator\", \"generator\": {\"name\": \"xor\", \"n\": 8, \"seed\": 1}}";
    assert_int_equal(status_of(port, "GET", "/v1/datasets", reader), 200);
    assert_int_equal(status_of(port, "HEAD", "/v1/datasets", reader), 200);
    assert_int_equal(status_of(port, "GET", "/metrics", reader), 200);
    assert_int_equal(status_of(port, "GET", "/v1/limits", reader), 200);
    call(port, "POST", "/v1/datasets", reader, NULL, dataset, NULL, &r);
    expect_challenge(&r, 403,
                     "Bearer realm=\"basinlab\", error=\"insufficient_scope\", scope=\"write\"");
    call(port, "GET", "/v1/datasets", reader, NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_error_t e;
    json_t *list = json_loads(r.body, 0, &e);
    assert_non_null(list);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 0);
    json_decref(list);

    /* write scope: everything */
    call(port, "POST", "/v1/datasets", writer, NULL, dataset, NULL, &r);
    assert_int_equal(r.status, 201);
    json_t *ds = json_loads(r.body, 0, &e);
    assert_non_null(ds);
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets/%s", json_string_value(json_object_get(ds, "id")));
    json_decref(ds);
    assert_int_equal(status_of(port, "GET", path, writer), 200);
    assert_int_equal(status_of(port, "GET", path, reader), 200);
    call(port, "DELETE", path, reader, NULL, NULL, NULL, &r);
    expect_challenge(&r, 403,
                     "Bearer realm=\"basinlab\", error=\"insufficient_scope\", scope=\"write\"");
    assert_int_equal(status_of(port, "GET", path, reader), 200); /* still there */
    assert_int_equal(status_of(port, "DELETE", path, writer), 204);
    assert_int_equal(status_of(port, "GET", path, reader), 404);
    /* routing comes first: unknown paths are 404 and wrong methods 405, token or not */
    assert_int_equal(status_of(port, "GET", "/v1/nothing/here", NULL), 404);
    assert_int_equal(status_of(port, "PUT", "/v1/datasets", NULL), 405);

    /* revoked from another process while the server runs: refused from the next request on */
    assert_int_equal(
        run_cli(dir, out, err, sizeof out, "revoke", reader_id, "--db", db, (char *)NULL), 0);
    call(port, "GET", "/v1/datasets", reader, NULL, NULL, NULL, &r);
    expect_challenge(&r, 401, invalid);
    assert_int_equal(status_of(port, "GET", "/v1/datasets", writer), 200);
    assert_int_equal(run_cli(dir, out, err, sizeof out, "list", "--db", db, (char *)NULL), 0);
    const char *line = strstr(out, reader_id);
    assert_non_null(line);
    char row[256];
    snprintf(row, sizeof row, "%.*s", (int)strcspn(line, "\n"), line);
    assert_non_null(strstr(row, "revoked"));
    assert_int_equal(run_cli(dir, out, err, sizeof out, "revoke", "tok_0000000000000000", "--db",
                             db, (char *)NULL),
                     1);
    http_resp_free(&r);
    server_stop(&s);

    /* the server log never contains a token */
    char log[600];
    snprintf(log, sizeof log, "%s/server.log", dir);
    assert_false(file_contains(log, reader, strlen(reader)));
    assert_false(file_contains(log, writer, strlen(writer)));
    rm_files(dir, db_files);
}

/* serve.c warns when it listens beyond loopback without authentication. */
static void test_bind_warning(void **state)
{
    (void)state;
    char dir[] = "/tmp/basinlab_auth_XXXXXX";
    char log[600], text[8192];
    struct server s;
    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof log, "%s/server.log", dir);
    const char *open_bind[] = {"--bind", "0.0.0.0", NULL};
    server_start(dir, &s, open_bind);
    read_file(log, text, sizeof text);
    server_stop(&s);
    assert_non_null(strstr(text, "warning: listening on 0.0.0.0"));
    assert_non_null(strstr(text, "no authentication"));

    const char *with_auth[] = {"--bind", "0.0.0.0", "--auth", "tokens", NULL};
    server_start(dir, &s, with_auth);
    read_file(log, text, sizeof text);
    server_stop(&s);
    assert_null(strstr(text, "warning: listening on"));
    /* but it says that nobody can call it yet */
    assert_non_null(strstr(text, "no active token"));
    rm_files(dir, db_files);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ct_equal),          cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_generated_tokens),  cmocka_unit_test(test_token_shape),
        cmocka_unit_test(test_parse_bearer),      cmocka_unit_test(test_policy),
        cmocka_unit_test(test_store_records),     cmocka_unit_test(test_config_flags),
        cmocka_unit_test(test_binary_end_to_end), cmocka_unit_test(test_bind_warning),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
