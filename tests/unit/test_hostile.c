/* The hostile-request corpus (tests/hostile/cases.jsonl, written by make_cases.py there) replayed
 * over real HTTP against the real binary: `basinlab serve --port 0 --db <tmp>` is started, the
 * port read from its "listening on http://HOST:PORT" line, and every case sent on its own TCP
 * connection by a raw socket client (so that malformed request lines, bytes that are not UTF-8,
 * duplicate headers, chunked and slow bodies go out exactly as written).
 *
 * Each answer is checked against the case's expectation: the status (never a 5xx), a
 * problem+json body whose errors[].pointer names the offending field, the named headers, and
 * after every case that the server still answers GET /healthz. A slow case sends its body a few
 * bytes per interval while other connections must be answered within SLOW_PROBE_MAX_MS. At the
 * end the list endpoints must show exactly the records the corpus's valid requests created:
 * nothing that a refused request began may be left half-written. Finally SIGTERM must stop the
 * server cleanly.
 *
 * All failures are collected and printed with their case ids before the test fails, so one run
 * shows every broken case. The expectations come from the API contract, never from this
 * server's answers. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#define CASES_FILE BASINLAB_SOURCE_DIR "/tests/hostile/cases.jsonl"

enum {
    MIN_CASES = 300,
    RESPONSE_TIMEOUT_MS = 30000,
    HEALTH_TIMEOUT_MS = 5000,
    SLOW_PROBE_MAX_MS = 1000,
    SEND_PIECE = 65536,
    MAX_VARS = 64,
    MAX_FAILURES = 1000
};

/* ---- small utilities ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A growable byte buffer (NUL-terminated for convenience; it may hold NULs). */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        assert_non_null(p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    buf_add(b, tmp, (size_t)n);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* RFC 4648 base64 (the corpus's binary fields). Returns 0, or -1 for malformed text. */
static int b64_decode(const char *s, struct buf *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    for (; *s != '\0' && *s != '='; s++) {
        const char *hit = strchr(alphabet, *s);
        if (hit == NULL)
            return -1;
        acc = (acc << 6) | (unsigned)(hit - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)((acc >> bits) & 0xff);
            buf_add(out, &c, 1);
        }
    }
    return 0;
}

/* ---- failures ---- */

struct failures {
    char *items[MAX_FAILURES];
    size_t n;
};

static struct failures failures;

static void fail_case(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_case(const char *id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = strlen(id) + strlen(msg) + 4;
    char *line = malloc(len);
    assert_non_null(line);
    snprintf(line, len, "%s: %s", id, msg);
    fprintf(stderr, "hostile FAIL %s\n", line);
    if (failures.n < MAX_FAILURES)
        failures.items[failures.n++] = line;
    else
        free(line);
}

/* ---- the server ---- */

struct server {
    pid_t pid;
    char host[64];
    int port;
    char dir[256];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Start `basinlab serve --port 0 --db DIR/hostile.db --workers 1` and parse its listening line
 * "basinlab listening on http://HOST:PORT (...)". The server's stderr goes to DIR/server.log. */
static void server_start(struct server *s)
{
    char db[512], log[512], line[512];
    int pipefd[2];
    snprintf(s->dir, sizeof s->dir, "/tmp/basinlab-hostile-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(db, sizeof db, "%s/hostile.db", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], STDOUT_FILENO);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", db, "--workers",
              "1", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    size_t len = 0;
    double t0 = now_ms();
    while (len + 1 < sizeof line && now_ms() - t0 < 15000) {
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
    const char *url = strstr(line, "listening on http://");
    if (url == NULL)
        fail_msg("no listening line from basinlab serve (got '%s'; log in %s)", line, log);
    url += strlen("listening on http://");
    const char *colon = strrchr(url, ':');
    const char *space = strchr(url, ' ');
    assert_non_null(colon);
    assert_true(space == NULL || colon < space);
    size_t hlen = (size_t)(colon - url);
    assert_true(hlen > 0 && hlen < sizeof s->host);
    memcpy(s->host, url, hlen);
    s->host[hlen] = '\0';
    s->port = atoi(colon + 1);
    assert_true(s->port > 0 && s->port < 65536);
    /* this client speaks IPv4 to a numeric address */
    struct in_addr probe;
    assert_int_equal(inet_pton(AF_INET, s->host, &probe), 1);
}

/* SIGTERM and wait; returns the exit status, or -1 after a SIGKILL when it hung. */
static int server_stop(struct server *s, double timeout_ms)
{
    int status = 0;
    double t0 = now_ms();
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (now_ms() - t0 > timeout_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int server_alive(const struct server *s)
{
    return s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
}

/* ---- the raw HTTP client ---- */

static int connect_to(const struct server *s)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->port);
    inet_pton(AF_INET, s->host, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send everything; 0, or -1 when the peer stopped reading (it may have answered already). */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len > SEND_PIECE ? SEND_PIECE : len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

struct response {
    int status; /* 0 when no status line arrived */
    struct buf raw;
    const char *body; /* into raw */
    size_t body_len;
};

/* Read until the server closes (every request says Connection: close) or the deadline. */
static void read_response(int fd, struct response *r, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    char chunk[65536];
    memset(r, 0, sizeof *r);
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf_add(&r->raw, chunk, (size_t)n);
    }
    if (r->raw.len < 12 || strncmp(r->raw.p, "HTTP/1.", 7) != 0)
        return;
    r->status = atoi(r->raw.p + 9);
    const char *end = strstr(r->raw.p, "\r\n\r\n");
    if (end == NULL)
        return;
    r->body = end + 4;
    r->body_len = r->raw.len - (size_t)(r->body - r->raw.p);
}

/* The value of response header `name` (case-insensitive), copied into out; NULL if absent. */
static const char *response_header(const struct response *r, const char *name, char *out,
                                   size_t cap)
{
    const char *p = r->raw.p ? strstr(r->raw.p, "\r\n") : NULL;
    size_t nlen = strlen(name);
    while (p != NULL && p < (r->body ? r->body - 2 : r->raw.p + r->raw.len)) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void response_free(struct response *r)
{
    buf_free(&r->raw);
}

/* GET path on a fresh connection. */
static void http_get(const struct server *s, const char *path, struct response *r, int timeout_ms)
{
    struct buf req = {0};
    buf_fmt(&req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path, s->host,
            s->port);
    int fd = connect_to(s);
    memset(r, 0, sizeof *r);
    if (fd >= 0) {
        send_all(fd, req.p, req.len);
        read_response(fd, r, timeout_ms);
        close(fd);
    }
    buf_free(&req);
}

/* ---- captures and substitution ---- */

struct vars {
    char *name[MAX_VARS];
    char *value[MAX_VARS];
    size_t n;
};

static struct vars vars;

static const char *var_get(const char *name, size_t len)
{
    for (size_t i = 0; i < vars.n; i++) {
        if (strlen(vars.name[i]) == len && strncmp(vars.name[i], name, len) == 0)
            return vars.value[i];
    }
    return NULL;
}

static void var_set(const char *name, const char *value)
{
    assert_true(vars.n < MAX_VARS);
    vars.name[vars.n] = strdup(name);
    vars.value[vars.n] = strdup(value);
    assert_non_null(vars.name[vars.n]);
    assert_non_null(vars.value[vars.n]);
    vars.n++;
}

/* Replace every ${name} in s[0..len) by its captured value into out. Returns 0, or -1 when a
 * name was never captured (the case is then reported, not sent). */
static int substitute(const char *s, size_t len, struct buf *out, const char **missing)
{
    size_t i = 0;
    buf_add(out, "", 0); /* out->p is a string even when s is empty */
    while (i < len) {
        if (i + 1 < len && s[i] == '$' && s[i + 1] == '{') {
            const char *close_brace = memchr(s + i + 2, '}', len - i - 2);
            if (close_brace != NULL) {
                const char *v = var_get(s + i + 2, (size_t)(close_brace - (s + i + 2)));
                if (v == NULL) {
                    *missing = s + i;
                    return -1;
                }
                buf_str(out, v);
                i = (size_t)(close_brace - s) + 1;
                continue;
            }
        }
        buf_add(out, s + i, 1);
        i++;
    }
    return 0;
}

/* RFC 6901 evaluation; NULL when the pointer does not resolve. */
static json_t *pointer_get(json_t *doc, const char *ptr)
{
    json_t *cur = doc;
    if (ptr[0] == '\0')
        return doc;
    if (ptr[0] != '/')
        return NULL;
    const char *p = ptr + 1;
    for (;;) {
        char token[512];
        size_t k = 0;
        while (*p != '\0' && *p != '/' && k + 1 < sizeof token) {
            if (p[0] == '~' && p[1] == '1') {
                token[k++] = '/';
                p += 2;
            } else if (p[0] == '~' && p[1] == '0') {
                token[k++] = '~';
                p += 2;
            } else {
                token[k++] = *p++;
            }
        }
        token[k] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, token);
        } else if (json_is_array(cur)) {
            char *end = NULL;
            unsigned long idx = strtoul(token, &end, 10);
            cur = (k > 0 && *end == '\0') ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
        if (cur == NULL || *p == '\0')
            return cur;
        p++;
    }
}

/* ---- building a request from a case ---- */

static const char *str_member(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The case's body bytes (body, body_b64 or body_gen); 1 when the case has a body. */
static int case_body(const char *id, const json_t *c, struct buf *body, int *ok)
{
    const char *missing = NULL;
    json_t *gen = json_object_get(c, "body_gen");
    const char *text = str_member(c, "body");
    const char *b64 = str_member(c, "body_b64");
    if (text != NULL) {
        if (substitute(text, strlen(text), body, &missing) != 0) {
            fail_case(id, "body refers to an uncaptured %.40s", missing);
            *ok = 0;
        }
        return 1;
    }
    if (b64 != NULL) {
        if (b64_decode(b64, body) != 0) {
            fail_case(id, "body_b64 is not base64");
            *ok = 0;
        }
        return 1;
    }
    if (json_is_array(gen)) {
        size_t i;
        json_t *piece;
        json_array_foreach(gen, i, piece)
        {
            const char *unit = json_string_value(json_array_get(piece, 0));
            json_int_t count = json_integer_value(json_array_get(piece, 1));
            assert_non_null(unit);
            size_t ulen = strlen(unit);
            for (json_int_t k = 0; k < count; k++)
                buf_add(body, unit, ulen);
        }
        return 1;
    }
    return 0;
}

static int case_has_header(const json_t *c, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(c, "headers"), i, h)
    {
        const char *n = json_string_value(json_array_get(h, 0));
        if (n != NULL && strcasecmp(n, name) == 0)
            return 1;
    }
    return 0;
}

/* Request line and headers (without the final empty line). */
static int request_head(const struct server *s, const char *id, const json_t *c, struct buf *head)
{
    const char *missing = NULL;
    struct buf target = {0};
    const char *path = str_member(c, "path");
    const char *path_b64 = str_member(c, "path_b64");
    int ok = 1;
    if (path_b64 != NULL)
        ok = b64_decode(path_b64, &target) == 0;
    else if (substitute(path, strlen(path), &target, &missing) != 0)
        ok = 0;
    if (!ok) {
        fail_case(id, "bad path or uncaptured %.40s", missing ? missing : "");
        buf_free(&target);
        return 0;
    }
    buf_str(head, str_member(c, "method"));
    buf_str(head, " ");
    buf_add(head, target.p, target.len);
    buf_fmt(head, " HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n", s->host, s->port);
    buf_free(&target);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(c, "headers"), i, h)
    {
        const char *name = json_string_value(json_array_get(h, 0));
        json_t *value = json_array_get(h, 1);
        buf_str(head, name);
        buf_str(head, ": ");
        if (json_is_object(value)) {
            if (b64_decode(str_member(value, "b64"), head) != 0)
                ok = 0;
        } else if (substitute(json_string_value(value), json_string_length(value), head,
                              &missing) != 0) {
            ok = 0;
        }
        buf_str(head, "\r\n");
    }
    if (!ok)
        fail_case(id, "a header value is malformed or refers to an uncaptured name");
    return ok;
}

/* GET /healthz must answer 200 within max_ms; returns the latency or -1. */
static double probe_health(const struct server *s, int max_ms)
{
    struct response r;
    double t0 = now_ms();
    http_get(s, "/healthz", &r, max_ms);
    double dt = now_ms() - t0;
    int ok = r.status == 200;
    response_free(&r);
    return ok ? dt : -1;
}

/* Send body in `chunk`-byte pieces every interval_ms (chunked coding when chunked), probing
 * other connections between pieces. */
static void send_slow(const struct server *s, const char *id, int fd, const struct buf *body,
                      int chunked, const json_t *slow)
{
    size_t chunk = (size_t)json_integer_value(json_object_get(slow, "chunk"));
    unsigned interval = (unsigned)json_integer_value(json_object_get(slow, "interval_ms"));
    size_t probes = 0;
    assert_true(chunk > 0 && interval > 0);
    for (size_t off = 0; off < body->len; off += chunk) {
        size_t n = body->len - off < chunk ? body->len - off : chunk;
        char size_line[32];
        snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        if (chunked)
            send_all(fd, size_line, strlen(size_line));
        send_all(fd, body->p + off, n);
        if (chunked)
            send_all(fd, "\r\n", 2);
        double t0 = now_ms();
        double dt = probe_health(s, SLOW_PROBE_MAX_MS * 5);
        if (dt < 0 || dt > SLOW_PROBE_MAX_MS)
            fail_case(id, "while a slow body was arriving, GET /healthz took %.0f ms (limit %d)",
                      dt, SLOW_PROBE_MAX_MS);
        probes++;
        double spent = now_ms() - t0;
        if (spent < interval)
            sleep_ms((unsigned)(interval - spent));
    }
    if (chunked)
        send_all(fd, "0\r\n\r\n", 5);
    assert_true(probes >= 2); /* the case must really be slow */
}

/* ---- checking an answer ---- */

static int expected_status_ok(const json_t *x, int status)
{
    json_t *exact = json_object_get(x, "status");
    json_t *cls = json_object_get(x, "status_class");
    json_t *in = json_object_get(x, "status_in");
    if (exact != NULL)
        return status == (int)json_integer_value(exact);
    if (cls != NULL)
        return status / 100 == (int)json_integer_value(cls);
    if (json_is_array(in)) {
        size_t i;
        json_t *v;
        json_array_foreach(in, i, v)
        {
            if (status == (int)json_integer_value(v))
                return 1;
        }
        return 0;
    }
    return 0;
}

/* Compare an expected JSON value (strings may hold ${name}) with the actual one. */
static int json_expected_equal(const json_t *want, const json_t *got)
{
    if (json_is_string(want)) {
        struct buf b = {0};
        const char *missing = NULL;
        const char *w = json_string_value(want);
        int eq = substitute(w, strlen(w), &b, &missing) == 0 && json_is_string(got) &&
                 json_string_length(got) == b.len &&
                 memcmp(json_string_value(got), b.p ? b.p : "", b.len) == 0;
        buf_free(&b);
        return eq;
    }
    return json_equal((json_t *)want, (json_t *)got);
}

static void check_problem(const char *id, const json_t *x, const struct response *r, json_t *body)
{
    char ct[256];
    if (response_header(r, "Content-Type", ct, sizeof ct) == NULL ||
        strncmp(ct, "application/problem+json", 24) != 0) {
        fail_case(id, "status %d without application/problem+json (Content-Type %s)", r->status,
                  response_header(r, "Content-Type", ct, sizeof ct) ? ct : "none");
        return;
    }
    if (!json_is_object(body)) {
        fail_case(id, "the problem body is not a JSON object");
        return;
    }
    if (json_integer_value(json_object_get(body, "status")) != r->status ||
        !json_is_string(json_object_get(body, "title")))
        fail_case(id, "the problem body lacks its status %d or a title", r->status);
    const char *want_ptr = str_member(x, "pointer");
    const char *want_prefix = str_member(x, "pointer_prefix");
    if (want_ptr != NULL || want_prefix != NULL) {
        struct buf ptr = {0};
        const char *missing = NULL;
        const char *want = want_ptr ? want_ptr : want_prefix;
        assert_int_equal(substitute(want, strlen(want), &ptr, &missing), 0);
        int found = 0;
        size_t i;
        json_t *err;
        json_array_foreach(json_object_get(body, "errors"), i, err)
        {
            const char *p = str_member(err, "pointer");
            if (p == NULL)
                continue;
            if (want_ptr ? strcmp(p, ptr.p) == 0 : strncmp(p, ptr.p, ptr.len) == 0)
                found = 1;
        }
        if (!found) {
            char *errs = json_dumps(json_object_get(body, "errors"), JSON_COMPACT);
            fail_case(id, "no error %s pointer '%.200s' among %.400s",
                      want_ptr ? "with" : "starting with the", ptr.p, errs ? errs : "(none)");
            free(errs);
        }
        buf_free(&ptr);
    }
    const char *want_detail = str_member(x, "detail_contains");
    if (want_detail != NULL) {
        const char *detail = str_member(body, "detail");
        if (detail == NULL || strstr(detail, want_detail) == NULL)
            fail_case(id, "the problem detail '%.200s' does not name '%s'",
                      detail ? detail : "(none)", want_detail);
    }
}

static void check_answer(const char *id, const json_t *c, const struct response *r)
{
    const json_t *x = json_object_get(c, "expect");
    if (r->status == 0) {
        fail_case(id, "no answer (connection closed or timed out)");
        return;
    }
    if (r->status >= 500)
        fail_case(id, "server error %d: %.300s", r->status, r->body ? r->body : "");
    if (!expected_status_ok(x, r->status)) {
        char *want = json_dumps(x, JSON_COMPACT);
        fail_case(id, "status %d, expected %s; body %.300s", r->status, want ? want : "?",
                  r->body ? r->body : "");
        free(want);
        return;
    }
    json_t *body = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    json_t *problem = json_object_get(x, "problem");
    int want_problem = problem != NULL ? json_is_true(problem) : r->status >= 400;
    if (want_problem)
        check_problem(id, x, r, body);
    const char *hname;
    json_t *hval;
    json_object_foreach(json_object_get(x, "header"), hname, hval)
    {
        char got[1024];
        struct buf want = {0};
        const char *missing = NULL;
        const char *w = json_string_value(hval);
        assert_int_equal(substitute(w, strlen(w), &want, &missing), 0);
        if (response_header(r, hname, got, sizeof got) == NULL || strstr(got, want.p) == NULL)
            fail_case(id, "header %s does not contain '%s'", hname, want.p);
        buf_free(&want);
    }
    json_object_foreach(json_object_get(x, "header_not"), hname, hval)
    {
        char got[1024];
        if (response_header(r, hname, got, sizeof got) != NULL &&
            strstr(got, json_string_value(hval)) != NULL)
            fail_case(id, "header %s echoes '%s'", hname, json_string_value(hval));
    }
    json_t *items = json_object_get(x, "items");
    if (items != NULL &&
        json_array_size(json_object_get(body, "items")) != (size_t)json_integer_value(items))
        fail_case(id, "a list of %zu items, expected %d",
                  json_array_size(json_object_get(body, "items")), (int)json_integer_value(items));
    const char *ptr;
    json_t *want;
    json_object_foreach(json_object_get(x, "json"), ptr, want)
    {
        json_t *got = body ? pointer_get(body, ptr) : NULL;
        if (got == NULL || !json_expected_equal(want, got))
            fail_case(id, "answer member %s differs from the expected value", ptr);
    }
    const char *name;
    json_t *cptr;
    json_object_foreach(json_object_get(c, "capture"), name, cptr)
    {
        json_t *got = body ? pointer_get(body, json_string_value(cptr)) : NULL;
        if (!json_is_string(got))
            fail_case(id, "nothing to capture at %s", json_string_value(cptr));
        else
            var_set(name, json_string_value(got));
    }
    json_decref(body);
}

/* ---- what valid requests created ---- */

struct created {
    json_t *ids; /* {"datasets": {id: true}, "architectures": ..., "experiments": ...} */
};

static void note_created(struct created *cr, const char *kind, const char *id_value)
{
    json_t *set = json_object_get(cr->ids, kind);
    assert_non_null(set);
    json_object_set_new(set, id_value, json_true());
}

static void record_creation(struct created *cr, const char *id, const json_t *c,
                            const struct response *r)
{
    const char *kind = str_member(c, "creates");
    if (kind == NULL || r->status < 200 || r->status >= 300 || r->body == NULL)
        return;
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    const char *rid = json_string_value(json_object_get(body, "id"));
    if (rid == NULL) {
        fail_case(id, "a created record's answer has no id");
    } else {
        note_created(cr, kind, rid);
        if (strcmp(kind, "experiments") == 0) {
            /* inline objects become records of their own, named in the answer */
            const char *d = json_string_value(json_object_get(body, "dataset_id"));
            const char *a = json_string_value(json_object_get(body, "architecture_id"));
            if (d != NULL)
                note_created(cr, "datasets", d);
            if (a != NULL)
                note_created(cr, "architectures", a);
        }
    }
    json_decref(body);
}

/* The ids a list endpoint shows must be exactly the created ones. */
static void check_list(const struct server *s, const struct created *cr, const char *kind)
{
    char path[128];
    struct response r;
    snprintf(path, sizeof path, "/v1/%s?limit=1000", kind);
    http_get(s, path, &r, RESPONSE_TIMEOUT_MS);
    assert_int_equal(r.status, 200);
    json_t *body = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(body);
    assert_true(json_is_null(json_object_get(body, "next_cursor")));
    json_t *want = json_object_get(cr->ids, kind);
    json_t *seen = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(body, "items"), i, item)
    {
        const char *rid = str_member(item, "id");
        assert_non_null(rid);
        json_object_set_new(seen, rid, json_true());
        if (json_object_get(want, rid) == NULL)
            fail_case(kind, "the list shows %s, which no valid request of the corpus created", rid);
    }
    const char *rid;
    json_t *v;
    json_object_foreach(want, rid, v)
    {
        if (json_object_get(seen, rid) == NULL)
            fail_case(kind, "the list lacks %s, created by a valid request", rid);
    }
    json_decref(seen);
    json_decref(body);
    response_free(&r);
}

/* ---- one case ---- */

static void run_case(const struct server *s, struct created *cr, const json_t *c)
{
    const char *id = str_member(c, "id");
    struct buf head = {0}, body = {0}, raw = {0};
    struct response r;
    int ok = 1;
    memset(&r, 0, sizeof r);
    const char *raw_b64 = str_member(c, "raw_b64");
    json_t *raw_gen = json_object_get(c, "raw_gen");
    int chunked = json_is_true(json_object_get(c, "chunked"));
    json_t *slow = json_object_get(c, "slow");
    if (raw_b64 != NULL) {
        ok = b64_decode(raw_b64, &raw) == 0;
    } else if (json_is_array(raw_gen)) {
        size_t i;
        json_t *piece;
        json_array_foreach(raw_gen, i, piece)
        {
            struct buf unit = {0};
            ok &= b64_decode(json_string_value(json_array_get(piece, 0)), &unit) == 0;
            for (json_int_t k = 0; k < json_integer_value(json_array_get(piece, 1)); k++)
                buf_add(&raw, unit.p, unit.len);
            buf_free(&unit);
        }
    } else {
        int has_body = case_body(id, c, &body, &ok);
        ok = ok && request_head(s, id, c, &head);
        if (chunked)
            buf_str(&head, "Transfer-Encoding: chunked\r\n");
        else if (has_body && !case_has_header(c, "Content-Length"))
            buf_fmt(&head, "Content-Length: %zu\r\n", body.len);
        buf_str(&head, "\r\n");
    }
    if (!ok)
        goto done;
    int fd = connect_to(s);
    if (fd < 0) {
        fail_case(id, "cannot connect to the server");
        goto done;
    }
    if (raw.len > 0) {
        send_all(fd, raw.p, raw.len);
    } else if (send_all(fd, head.p, head.len) == 0 &&
               !json_is_true(json_object_get(c, "no_body"))) {
        if (json_is_object(slow)) {
            send_slow(s, id, fd, &body, chunked, slow);
        } else if (chunked) {
            /* pieces of SEND_PIECE bytes; a server that answered early may stop reading */
            int sent_ok = 1;
            for (size_t off = 0; sent_ok && off < body.len; off += SEND_PIECE) {
                size_t n = body.len - off < SEND_PIECE ? body.len - off : SEND_PIECE;
                char size_line[32];
                snprintf(size_line, sizeof size_line, "%zx\r\n", n);
                sent_ok = send_all(fd, size_line, strlen(size_line)) == 0 &&
                          send_all(fd, body.p + off, n) == 0 && send_all(fd, "\r\n", 2) == 0;
            }
            if (sent_ok)
                send_all(fd, "0\r\n\r\n", 5);
        } else {
            send_all(fd, body.p, body.len);
        }
    }
    json_t *timeout = json_object_get(c, "timeout_ms");
    int timeout_ms = timeout != NULL ? (int)json_integer_value(timeout) : RESPONSE_TIMEOUT_MS;
    read_response(fd, &r, timeout_ms);
    close(fd);
    check_answer(id, c, &r);
    record_creation(cr, id, c, &r);
done:
    if (probe_health(s, HEALTH_TIMEOUT_MS) < 0)
        fail_case(id, "GET /healthz failed after this case (server %s)",
                  server_alive(s) ? "running but not answering" : "gone");
    response_free(&r);
    buf_free(&head);
    buf_free(&body);
    buf_free(&raw);
}

/* ---- tests ---- */

static json_t *load_cases(void)
{
    FILE *f = fopen(CASES_FILE, "r");
    if (f == NULL)
        fail_msg("cannot open %s", CASES_FILE);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lineno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        lineno++;
        json_t *c = json_loadb(line, (size_t)n, 0, &err);
        if (c == NULL)
            fail_msg("%s line %zu: %s", CASES_FILE, lineno, err.text);
        json_array_append_new(all, c);
    }
    free(line);
    fclose(f);
    return all;
}

/* The corpus itself: large enough, unique ids, every case with an expectation that allows no
 * 5xx, and every class of hostile input the issue lists present. */
static void test_corpus_is_well_formed(void **state)
{
    (void)state;
    json_t *all = load_cases();
    json_t *seen = json_object();
    size_t i;
    json_t *c;
    assert_true(json_array_size(all) >= MIN_CASES);
    json_array_foreach(all, i, c)
    {
        const char *id = str_member(c, "id");
        assert_non_null(id);
        assert_null(json_object_get(seen, id));
        json_object_set_new(seen, id, json_true());
        assert_non_null(str_member(c, "method"));
        assert_non_null(str_member(c, "path"));
        json_t *x = json_object_get(c, "expect");
        assert_true(json_is_object(x));
        int status = (int)json_integer_value(json_object_get(x, "status"));
        int cls = (int)json_integer_value(json_object_get(x, "status_class"));
        assert_true((status >= 200 && status < 500) || cls == 2 || cls == 4 ||
                    json_is_array(json_object_get(x, "status_in")));
    }
    static const char *const prefixes[] = {
        "json-",  "arch-", "ds-",    "csv-",     "exp-",  "idem-", "path-", "method-",
        "ctype-", "body-", "query-", "nesting-", "slow-", "sql-",  "raw-",  "conflict-"};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
        size_t count = 0;
        json_array_foreach(all, i, c)
        {
            count += strncmp(str_member(c, "id"), prefixes[k], strlen(prefixes[k])) == 0;
        }
        if (count == 0)
            fail_msg("no case of class %s", prefixes[k]);
    }
    json_decref(seen);
    json_decref(all);
}

/* The server of the running test, stopped by the teardown even when an assertion fails. */
static struct server the_server;

static int stop_leftover_server(void **state)
{
    (void)state;
    if (the_server.pid > 0) {
        kill(the_server.pid, SIGKILL);
        waitpid(the_server.pid, NULL, 0);
        the_server.pid = 0;
    }
    return 0;
}

static void test_hostile_corpus(void **state)
{
    (void)state;
    struct server *sp = &the_server;
    struct created cr;
    memset(sp, 0, sizeof *sp);
    json_t *all = load_cases();
    cr.ids = json_pack("{s:{}, s:{}, s:{}}", "datasets", "architectures", "experiments");
    server_start(sp);
    size_t i;
    json_t *c;
    double t0 = now_ms();
    json_array_foreach(all, i, c)
    {
        run_case(sp, &cr, c);
    }
    fprintf(stderr, "hostile: %zu cases in %.1f s, %zu failures\n", json_array_size(all),
            (now_ms() - t0) / 1e3, failures.n);
    check_list(sp, &cr, "datasets");
    check_list(sp, &cr, "architectures");
    check_list(sp, &cr, "experiments");
    int status = server_stop(sp, 12000);
    if (status != 0)
        fail_case("shutdown", "basinlab serve exited with %d after SIGTERM (log in %s)", status,
                  sp->dir);
    json_decref(cr.ids);
    json_decref(all);
    for (size_t k = 0; k < vars.n; k++) {
        free(vars.name[k]);
        free(vars.value[k]);
    }
    vars.n = 0;
    size_t n_failed = failures.n;
    if (n_failed == 0) {
        nftw(sp->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "hostile: %zu failures (server log kept in %s/server.log):\n", n_failed,
                sp->dir);
        for (size_t k = 0; k < n_failed; k++)
            fprintf(stderr, "  %s\n", failures.items[k]);
    }
    for (size_t k = 0; k < failures.n; k++)
        free(failures.items[k]);
    failures.n = 0;
    if (n_failed > 0)
        fail_msg("%zu hostile cases failed", n_failed);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_is_well_formed),
        cmocka_unit_test_teardown(test_hostile_corpus, stop_leftover_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
