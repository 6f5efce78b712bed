/* The crash loop: the real binary (BASINLAB_BINARY) serves a large experiment while a client
 * keeps submitting small ones, and is killed with SIGKILL at random moments — at least
 * CRASH_KILLS times while runs are still training — and restarted on the same database.
 *
 * After every kill the database is read directly (the server is dead, so it cannot tidy up
 * first) and after the last restart everything is let finish. Checked:
 *  - every run ends `finished`, exactly once: one run_finished event per run, and a complete
 *    trajectory (from step 0 to its final step: a killed attempt left no points behind);
 *  - no finished result ever changes: each run seen terminal after one kill has the same status,
 *    steps, risk, end point and finish time after every later kill and at the end;
 *  - no acknowledged submission is missing: every 202 the client saw names an experiment that
 *    exists with all its runs; submissions whose answer was lost to a kill are sent again with
 *    the same Idempotency-Key and the store ends with exactly one experiment per key;
 *  - a lost worker is charged for the run it was executing only: over the whole test the
 *    attempts charged beyond each run's successful one, sum(attempts) - count(*), are at most
 *    one per worker thread per kill (the runs that never started in an interrupted batch get
 *    their attempt back at the requeue);
 *  - PRAGMA integrity_check is "ok".
 * The kill moments come from a seeded generator; the seed is printed, and the environment
 * variable BASINLAB_CRASH_SEED replays a run.
 *
 * Why every run can be asked to finish: the store fails a run whose worker was lost
 * max_attempts (3) times. Only the run a worker was executing is charged (the rest of its batch
 * of up to 8 gets the attempt back at the requeue), but kills that keep falling before that run
 * is redone would still fail it. So the random delay of a life starts once the runs charged
 * twice are settled again (they are claimed first); the runs are short (no certification) so
 * that this takes a moment. The work is topped up with another large experiment whenever fewer
 * than BIG_LOW runs are left, so every kill falls while runs train and the last life has little
 * left to finish, however fast the machine. */
#define _XOPEN_SOURCE 700 /* nftw */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "http_client.h"

#define CRASH_KILLS 20   /* kills while the queue still holds work */
#define MAX_LIVES 60     /* bound on restarts, should the work run out too early */
#define BIG_RESTARTS 400 /* runs of one large experiment */
#define BIG_LOW 200      /* fewer unsettled runs than this: submit another large experiment */
#define MAX_KEYS 4096    /* small submissions tracked */
#define WORKERS 2        /* worker threads of the server (--workers) */
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- time and randomness ---- */

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

/* splitmix64: the kill schedule, reproducible from the printed seed */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- temporary directory ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- the server process ---- */

struct server {
    pid_t pid;
    int port;
    char db[512];
    char log[512];
};

/* Start `basinlab serve --port 0 --db DIR/basinlab.db --workers WORKERS` and read the port from
 * its listening line; stderr goes to DIR/server.log. */
static void server_start(const char *dir, struct server *s)
{
    int pipefd[2];
    snprintf(s->db, sizeof s->db, "%s/basinlab.db", dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", dir);
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
        execl(BASINLAB_BINARY, BASINLAB_BINARY, "serve", "--port", "0", "--db", s->db, "--workers",
              STR(WORKERS), (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    char line[512];
    size_t len = 0;
    double t0 = now_s();
    while (len + 1 < sizeof line && now_s() - t0 < 20.0) {
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
    const char *p = strstr(line, "http://127.0.0.1:");
    if (p == NULL)
        fail_msg("the server did not start (see %s): '%s'", s->log, line);
    s->port = atoi(p + strlen("http://127.0.0.1:"));
    assert_true(s->port > 0 && s->port < 65536);
}

static int server_wait(struct server *s, int sig)
{
    int status = 0;
    kill(s->pid, sig);
    assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- HTTP ---- */

/* status < 0: no answer (-CURLcode), e.g. the server died mid-request. */
static void http(int port, const char *method, const char *path, const char *body, const char *key,
                 struct http_resp *r)
{
    char keyh[128];
    struct http_req q = http_req_json(method, path, body);
    q.headers[0] = "Expect:";
    q.timeout_ms = 10000;
    if (key != NULL) {
        snprintf(keyh, sizeof keyh, "Idempotency-Key: %s", key);
        q.headers[1] = keyh;
    }
    if (http_request(NULL, port, &q, r) != CURLE_OK)
        r->status = -(long)r->cc;
}

/* The "id" of a JSON answer into out (cap bytes); 1 when present. */
static int answer_id(const struct http_resp *r, char *out, size_t cap)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(j, "id"));
    int ok = id != NULL && strlen(id) < cap;
    if (ok)
        snprintf(out, cap, "%s", id);
    json_decref(j);
    return ok;
}

/* ---- experiments ---- */

#define XOR_SPEC                                                                                   \
    "\"dataset\": {\"kind\": \"generator\", \"generator\": {\"name\": \"xor\", \"n\": 24, "        \
    "\"noise\": 0.05, \"seed\": 2}}, \"architecture\": {\"input_shape\": [2], \"layers\": "        \
    "[{\"type\": \"dense\", \"units\": 3}, {\"type\": \"activation\", \"kind\": \"relu\"}, "       \
    "{\"type\": \"dense\", \"units\": 1}]}, \"loss\": \"squared\", \"optimizer\": {\"kind\": "     \
    "\"gd\", \"lr\": 0.05}, \"trajectory_every\": 25, \"certify\": {\"enabled\": false}"

static char big_body[1024];
static const char small_body[] = "{" XOR_SPEC ", \"restarts\": 2, \"seed\": 5, \"max_steps\": 100}";

/* What the client knows of one keyed submission. */
struct keyed {
    char key[32];
    char id[32]; /* "" until a 202 named it */
    const char *body;
    long long restarts;
};

struct client {
    int port;
    atomic_int stop;
    struct keyed *keys;
    size_t *n_keys;
    int bad_status; /* an answer that is neither 2xx nor "no answer" */
    char bad_text[256];
};

/* Send (or re-send) a keyed submission; fills the id on 202. 0 when no answer came. */
static int send_keyed(int port, struct keyed *k, int *bad, char *bad_text, size_t cap)
{
    struct http_resp r;
    char id[32];
    http(port, "POST", "/v1/experiments", k->body, k->key, &r);
    int answered = r.status > 0;
    if (r.status == 202 && answer_id(&r, id, sizeof id)) {
        if (k->id[0] != '\0' && strcmp(k->id, id) != 0 && !*bad) {
            *bad = 1;
            snprintf(bad_text, cap, "key %s named %s, then %s", k->key, k->id, id);
        }
        snprintf(k->id, sizeof k->id, "%s", id);
    } else if (answered && !*bad) {
        *bad = 1;
        snprintf(bad_text, cap, "POST %s: %ld %.200s", k->key, r.status, r.body ? r.body : "");
    }
    http_resp_free(&r);
    return answered;
}

/* Submits small keyed experiments and reads until told to stop or the server dies. */
static void *client_main(void *arg)
{
    struct client *c = arg;
    while (!atomic_load(&c->stop) && *c->n_keys < MAX_KEYS) {
        struct keyed *k = &c->keys[*c->n_keys];
        memset(k, 0, sizeof *k);
        snprintf(k->key, sizeof k->key, "small-%zu", *c->n_keys);
        k->body = small_body;
        k->restarts = 2;
        (*c->n_keys)++;
        if (!send_keyed(c->port, k, &c->bad_status, c->bad_text, sizeof c->bad_text))
            break;
        struct http_resp r;
        http(c->port, "GET", "/v1/experiments?limit=20", NULL, NULL, &r);
        int dead = r.status < 0;
        if (r.status > 0 && r.status != 200 && !c->bad_status) {
            c->bad_status = 1;
            snprintf(c->bad_text, sizeof c->bad_text, "GET list: %ld", r.status);
        }
        http_resp_free(&r);
        if (dead)
            break;
        sleep_ms(20);
    }
    return NULL;
}

/* ---- the database, read directly between lives ---- */

struct snapshot {
    char **rows; /* "run_id|status|steps|risk|finished_at|params" of terminal runs, sorted */
    size_t n;
    long long unsettled; /* queued + running runs */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->rows[i]);
    free(s->rows);
    memset(s, 0, sizeof *s);
}

static void snapshot_take(const char *path, struct snapshot *s)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    memset(s, 0, sizeof *s);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT r.id || '|' || r.status || '|' || ifnull(r.steps, -1) || '|' "
                           "|| quote(r.final_risk) || '|' || r.finished_at || '|' || "
                           "ifnull(hex(p.data), '') FROM runs r LEFT JOIN run_params p ON "
                           "p.run_id = r.id WHERE r.status IN ('finished', 'failed', "
                           "'cancelled') ORDER BY r.id",
                           -1, &st, NULL),
        SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            s->rows = realloc(s->rows, cap * sizeof *s->rows);
            assert_non_null(s->rows);
        }
        s->rows[s->n] = strdup((const char *)sqlite3_column_text(st, 0));
        assert_non_null(s->rows[s->n]);
        s->n++;
    }
    sqlite3_finalize(st);
    qsort(s->rows, s->n, sizeof *s->rows, cmp_str);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM runs WHERE status IN ('queued', "
                                        "'running')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    s->unsettled = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Every terminal run of `before` is in `after`, unchanged. */
static void assert_terminal_unchanged(const struct snapshot *before, const struct snapshot *after)
{
    for (size_t i = 0; i < before->n; i++) {
        if (bsearch(&before->rows[i], after->rows, after->n, sizeof *after->rows, cmp_str) == NULL)
            fail_msg("a terminal run changed or vanished: %.120s", before->rows[i]);
    }
    assert_true(after->n >= before->n);
}

static long long db_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void wait_all_settled(int port, const char *db, double timeout_s)
{
    double t0 = now_s();
    for (;;) {
        struct http_resp r;
        http(port, "GET", "/v1/experiments?status=running&limit=1", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
        if (db_count(db, "SELECT count(*) FROM runs WHERE status IN ('queued', 'running')") == 0)
            return;
        if (now_s() - t0 > timeout_s)
            fail_msg("runs still unsettled after %.0f s", timeout_s);
        sleep_ms(100);
    }
}

/* The store charges a lost worker's attempt to the run it was executing and fails a run lost
 * max_attempts (3) times; runs charged twice already are redone first after a restart. Wait
 * (bounded) until they are, so that the kill that follows cannot fail a run that merely had
 * the bad luck of being under two kills (see the file comment). */
static void wait_retried_runs(const char *db)
{
    double t0 = now_s();
    while (now_s() - t0 < 15.0 &&
           db_count(db, "SELECT count(*) FROM runs WHERE attempts >= 2 AND status IN "
                        "('queued', 'running')") > 0)
        sleep_ms(10);
}

/* ---- the test ---- */

static void test_sigkill_loop(void **state)
{
    (void)state;
    /* tmpfs when there is one: a SIGKILL loses nothing the kernel holds, on tmpfs as on a disk,
     * and without fsync costs the runs are short enough that a claim is done long before the
     * next kill (see the file comment) */
    char dir[64];
    snprintf(dir, sizeof dir, "%s/basinlab_crash_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    struct server srv;
    struct snapshot prev, cur;
    static struct keyed keys[MAX_KEYS];
    size_t n_keys = 0;
    int bad = 0;
    char bad_text[256] = "";
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    const char *env_seed = getenv("BASINLAB_CRASH_SEED");
    if (env_seed != NULL)
        seed = strtoull(env_seed, NULL, 10);
    fprintf(stderr, "crash loop seed %llu (BASINLAB_CRASH_SEED replays it)\n",
            (unsigned long long)seed);
    assert_non_null(mkdtemp(dir));
    memset(&prev, 0, sizeof prev);
    snprintf(big_body, sizeof big_body,
             "{" XOR_SPEC ", \"restarts\": %d, \"seed\": 9, \"max_steps\": 100}", BIG_RESTARTS);

    int kills_with_work = 0, kills = 0, bigs = 0;
    for (int life = 0; life < MAX_LIVES && kills_with_work < CRASH_KILLS; life++) {
        server_start(dir, &srv);
        /* answers lost to the last kill: send them again under the same key */
        for (size_t i = 0; i < n_keys; i++) {
            if (keys[i].id[0] == '\0')
                assert_int_equal(send_keyed(srv.port, &keys[i], &bad, bad_text, sizeof bad_text),
                                 1);
        }
        /* keep a large experiment training: another one when the queue runs low */
        if (life == 0 || prev.unsettled < BIG_LOW) {
            struct keyed *big = &keys[n_keys++];
            snprintf(big->key, sizeof big->key, "big-%d", bigs++);
            big->body = big_body;
            big->restarts = BIG_RESTARTS;
            assert_int_equal(send_keyed(srv.port, big, &bad, bad_text, sizeof bad_text), 1);
        }
        if (bad)
            fail_msg("life %d: %s", life, bad_text);
        struct client c = {.port = srv.port, .keys = keys, .n_keys = &n_keys};
        pthread_t tid;
        assert_int_equal(pthread_create(&tid, NULL, client_main, &c), 0);
        wait_retried_runs(srv.db);
        sleep_ms(60 + (unsigned)(next_random(&seed) % 260));
        assert_int_equal(server_wait(&srv, SIGKILL), 128 + SIGKILL);
        kills++;
        atomic_store(&c.stop, 1);
        pthread_join(tid, NULL);
        if (c.bad_status && !bad) {
            bad = 1;
            snprintf(bad_text, sizeof bad_text, "%s", c.bad_text);
        }
        if (bad)
            fail_msg("life %d: %s", life, bad_text);

        snapshot_take(srv.db, &cur);
        assert_terminal_unchanged(&prev, &cur);
        if (cur.unsettled > 0)
            kills_with_work++;
        snapshot_free(&prev);
        prev = cur;
    }
    assert_true(kills_with_work >= CRASH_KILLS);

    /* the last life: everything finishes */
    server_start(dir, &srv);
    for (size_t i = 0; i < n_keys; i++) {
        if (keys[i].id[0] == '\0')
            assert_int_equal(send_keyed(srv.port, &keys[i], &bad, bad_text, sizeof bad_text), 1);
    }
    if (bad)
        fail_msg("last life: %s", bad_text);
    wait_all_settled(srv.port, srv.db, 120.0);
    assert_int_equal(server_wait(&srv, SIGTERM), 0);

    snapshot_take(srv.db, &cur);
    assert_terminal_unchanged(&prev, &cur);
    assert_int_equal(cur.unsettled, 0);

    /* one experiment per key, each with all its runs, each acknowledged id present */
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM experiments"), (long long)n_keys);
    long long runs_expected = 0;
    for (size_t i = 0; i < n_keys; i++) {
        char sql[256];
        assert_true(keys[i].id[0] != '\0');
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                 "WHERE e.id = '%s' AND e.idempotency_key = '%s'",
                 keys[i].id, keys[i].key);
        assert_int_equal(db_count(srv.db, sql), keys[i].restarts);
        runs_expected += keys[i].restarts;
    }
    /* every run finished, exactly once, with a complete trajectory */
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM runs"), runs_expected);
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM runs WHERE status = 'finished'"),
                     runs_expected);
    assert_int_equal((long long)cur.n, runs_expected);
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM events WHERE type = 'run_finished'"),
                     runs_expected);
    assert_int_equal(db_count(srv.db, "SELECT count(DISTINCT json_extract(data, '$.run_id')) "
                                      "FROM events WHERE type = 'run_finished'"),
                     runs_expected);
    assert_int_equal(db_count(srv.db, "SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 "
                                      "FROM run_params p WHERE p.run_id = r.id)"),
                     0);
    assert_int_equal(
        db_count(srv.db, "SELECT count(*) FROM runs r WHERE (SELECT min(first_step) FROM "
                         "trajectory_chunks t WHERE t.run_id = r.id) IS NOT 0 OR (SELECT "
                         "max(last_step) FROM trajectory_chunks t WHERE t.run_id = r.id) IS NOT "
                         "r.steps"),
        0);
    /* Each kill leaves at most one claim per worker thread (WORKERS) with runs still running,
     * and each such claim charges one run; a claim's other runs had their attempt given back.
     * Charging the whole batch (up to 8 runs a claim) would break this bound. */
    long long extra = db_count(srv.db, "SELECT sum(attempts) - count(*) FROM runs");
    fprintf(stderr, "crash loop: %lld attempts charged for %d kills\n", extra, kills);
    assert_true(extra >= 0);
    assert_true(extra <= (long long)WORKERS * kills);
    assert_integrity(srv.db);
    fprintf(stderr, "crash loop: %d kills with work queued, %zu keyed submissions, %lld runs\n",
            kills_with_work, n_keys, runs_expected);
    snapshot_free(&prev);
    snapshot_free(&cur);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
