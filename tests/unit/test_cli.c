/* Tests of the `basinlab` executable's offline commands (server/main.c, server/cli_train.c): the
 * real binary (BASINLAB_BINARY) is spawned with posix_spawn, its stdout and stderr captured in
 * files. Checks the exit statuses (0 / 1 / 2), that invalid specs print every error as
 * "<pointer>: <message>" on stderr and nothing on stdout, the shape of the result document,
 * that the result does not depend on --threads (identical text), that the reported end points
 * reproduce the reported risks when evaluated by the core, and the --out file handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "basin/net.h"
#include "basin/status.h"
#include "spec.h"

extern char **environ;

static const double PI = 3.14159265358979323846;

static char tmpdir[64];

struct proc {
    int status; /* exit status, or −1 when the process did not exit normally */
    char *out, *err;
    size_t out_len;
};

static char *path_in_tmp(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = '\0';
    if (len != NULL)
        *len = got;
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Single quotes become double quotes, so that specs read well in C. */
static void write_spec(const char *name, const char *spec)
{
    char *s = strdup(spec);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    write_file(path_in_tmp(name), s);
    free(s);
}

/* Run the binary with args (NULL-terminated, without argv[0]); stdin from stdin_path if given. */
static void run(const char *const *args, const char *stdin_path, struct proc *p)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = BASINLAB_BINARY;
    for (; args[n - 1] != NULL && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    char out_path[256], err_path[256];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmpdir);
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, BASINLAB_BINARY, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    p->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    p->out = slurp(out_path, &p->out_len);
    p->err = slurp(err_path, NULL);
}

static void proc_free(struct proc *p)
{
    free(p->out);
    free(p->err);
}

static json_t *parse_output(const struct proc *p)
{
    json_error_t e;
    json_t *j = json_loadb(p->out, p->out_len, 0, &e);
    if (j == NULL)
        fprintf(stderr, "bad JSON: %s\n%s\n", e.text, p->out);
    assert_non_null(j);
    return j;
}

#define TINY                                                                                       \
    "{'dataset':{'kind':'generator','generator':{'name':'xor','n':12,'noise':0.2,'seed':2}},"      \
    "'architecture':{'layers':[{'type':'dense','units':4},{'type':'activation','kind':'relu'},{"   \
    "'type':'dense','units':1}]},'optimizer':{'kind':'gd','lr':0.2},'restarts':6,'seed':3,"        \
    "'max_steps':200,'stop':{'grad_tol':1e-7},'trajectory_every':50}"

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basinlab_cli_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlink(path_in_tmp(e->d_name));
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---- tests ---- */

static void test_bad_spec(void **state)
{
    (void)state;
    write_spec("bad.json",
               "{'dataset':{'kind':'generator','generator':{'name':'xor','n':10}},'architecture':{"
               "'layers':[{'type':'dense','units':1000000000}]},'restarts':0}");
    const char *args[] = {"train", "--spec", path_in_tmp("bad.json"), NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.out_len, 0);
    assert_non_null(
        strstr(p.err, "/architecture/layers/0/units: must be a positive integer ≤ 65536\n"));
    assert_non_null(strstr(p.err, "/restarts: must be a positive integer ≤ 10000\n"));
    proc_free(&p);

    write_file(path_in_tmp("broken.json"), "{\"restarts\": }");
    const char *args2[] = {"train", "--spec", path_in_tmp("broken.json"), NULL};
    run(args2, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.out_len, 0);
    assert_non_null(strstr(p.err, "(root): malformed JSON at line 1"));
    proc_free(&p);

    /* by-id references need the server */
    write_spec("byid.json", "{'dataset_id':'ds_1','architecture':{'input_shape':[2],'layers':[{"
                            "'type':'dense','units':1}]}}");
    const char *args3[] = {"train", "--spec", path_in_tmp("byid.json"), NULL};
    run(args3, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.out_len, 0);
    assert_non_null(strstr(p.err, "/dataset_id: "));
    proc_free(&p);
}

static void test_usage(void **state)
{
    (void)state;
    struct proc p;
    const char *none[] = {NULL};
    run(none, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "usage: basinlab"));
    proc_free(&p);

    const char *unknown[] = {"frobnicate", NULL};
    run(unknown, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "unknown command 'frobnicate'"));
    proc_free(&p);

    const char *nospec[] = {"train", NULL};
    run(nospec, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.out_len, 0);
    assert_non_null(strstr(p.err, "--spec is required"));
    assert_non_null(strstr(p.err, "usage: basinlab train"));
    proc_free(&p);

    const char *badthreads[] = {"train", "--spec", "x.json", "--threads", "0", NULL};
    run(badthreads, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "--threads"));
    proc_free(&p);

    const char *badopt[] = {"train", "--spec", "x.json", "--fast", NULL};
    run(badopt, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err, "unexpected argument '--fast'"));
    proc_free(&p);

    const char *missing[] = {"train", "--spec", path_in_tmp("does-not-exist.json"), NULL};
    run(missing, NULL, &p);
    assert_int_equal(p.status, 2);
    assert_int_equal(p.out_len, 0);
    assert_non_null(strstr(p.err, "cannot open"));
    proc_free(&p);

    const char *version[] = {"version", NULL};
    run(version, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_string_equal(p.out, "basinlab " BASINLAB_VERSION "\n");
    proc_free(&p);

    const char *help[] = {"help", NULL};
    run(help, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "--trajectory"));
    proc_free(&p);
}

static void test_valid_run(void **state)
{
    (void)state;
    write_spec("tiny.json", TINY);
    const char *args[] = {"train", "--spec", path_in_tmp("tiny.json"), "--threads", "2", NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_string_equal(p.err, ""); /* no progress bar: stderr is not a terminal */
    json_t *j = parse_output(&p);
    assert_string_equal(json_string_value(json_object_get(j, "basinlab")), BASINLAB_VERSION);
    assert_int_equal(json_integer_value(json_object_get(j, "param_count")), 17);
    json_t *spec = json_object_get(j, "spec");
    assert_int_equal(json_integer_value(json_object_get(spec, "restarts")), 6);
    json_t *ds = json_object_get(j, "dataset");
    assert_int_equal(json_integer_value(json_object_get(ds, "n")), 12);
    assert_string_equal(json_string_value(json_object_get(ds, "task")), "binary");
    json_t *lf = json_object_get(ds, "linear_fit");
    assert_true(json_real_value(json_object_get(lf, "risk")) > 0.0);
    assert_true(json_is_false(json_object_get(lf, "linearly_fittable")));

    json_t *runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 6);
    double best = INFINITY;
    for (size_t r = 0; r < 6; r++) {
        json_t *run_j = json_array_get(runs, r);
        assert_int_equal(json_integer_value(json_object_get(run_j, "restart")), r);
        assert_int_equal(json_integer_value(json_object_get(run_j, "seed")), 3);
        assert_string_equal(json_string_value(json_object_get(run_j, "status")), "finished");
        json_int_t steps = json_integer_value(json_object_get(run_j, "steps"));
        assert_true(steps >= 1 && steps <= 200);
        double fr = json_real_value(json_object_get(run_j, "final_risk"));
        double ir = json_real_value(json_object_get(run_j, "initial_risk"));
        assert_true(fr <= ir); /* GD with a small step does not end above its start here */
        if (fr < best)
            best = fr;
        assert_null(json_object_get(run_j, "params"));
        assert_null(json_object_get(run_j, "trajectory"));
    }
    json_t *sum = json_object_get(j, "summary");
    assert_true(json_real_value(json_object_get(sum, "best_risk")) == best);
    json_t *levels = json_object_get(sum, "risk_levels");
    json_int_t total = 0;
    double prev = -1;
    for (size_t i = 0; i < json_array_size(levels); i++) {
        json_t *l = json_array_get(levels, i);
        double risk = json_real_value(json_object_get(l, "risk"));
        assert_true(risk > prev);
        prev = risk;
        total += json_integer_value(json_object_get(l, "count"));
    }
    assert_int_equal(total, 6);
    json_decref(j);
    proc_free(&p);
}

/* The risk levels follow the documented rule: sort the final risks, split where consecutive ones
 * differ by more than max(1e-6, 1e-3·risk). Recomputed here from the runs. */
static void test_risk_levels(void **state)
{
    (void)state;
    write_spec("xor4.json",
               "{'dataset':{'kind':'generator','generator':{'name':'xor','n':8,'noise':0}},"
               "'architecture':{'layers':[{'type':'dense','units':2},{'type':'activation','kind':"
               "'relu'},{'type':'dense','units':1}]},'optimizer':{'kind':'gd','lr':0.1},"
               "'restarts':24,'seed':7,'max_steps':20000,'stop':{'grad_tol':1e-8}}");
    const char *args[] = {"train", "--spec", path_in_tmp("xor4.json"), NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    json_t *j = parse_output(&p);
    json_t *runs = json_object_get(j, "runs");
    double r[24];
    size_t n = json_array_size(runs);
    assert_int_equal(n, 24);
    for (size_t i = 0; i < n; i++)
        r[i] = json_real_value(json_object_get(json_array_get(runs, i), "final_risk"));
    for (size_t i = 1; i < n; i++) /* insertion sort */
        for (size_t k = i; k > 0 && r[k] < r[k - 1]; k--) {
            double t = r[k];
            r[k] = r[k - 1];
            r[k - 1] = t;
        }
    json_t *levels = json_object_get(json_object_get(j, "summary"), "risk_levels");
    size_t level = 0, start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && r[i] - r[i - 1] <= fmax(1e-6, 1e-3 * r[i]))
            continue;
        json_t *l = json_array_get(levels, level++);
        assert_non_null(l);
        assert_true(json_real_value(json_object_get(l, "risk")) == r[start]);
        assert_int_equal(json_integer_value(json_object_get(l, "count")), i - start);
        start = i;
    }
    assert_int_equal(json_array_size(levels), level);
    /* XOR on 4 distinct points: the best affine fit has risk 1/8, and some restarts of a
     * 2-2-1 ReLU net reach 0 while others stop on a higher level */
    json_t *lf = json_object_get(json_object_get(j, "dataset"), "linear_fit");
    assert_true(fabs(json_real_value(json_object_get(lf, "risk")) - 0.125) < 1e-12);
    assert_true(level >= 2);
    json_decref(j);
    proc_free(&p);
}

/* The lines of the run list, which hold everything a run reports. */
static char *run_lines(const char *out)
{
    const char *a = strstr(out, "\"runs\": [\n");
    const char *b = strstr(out, "\n  ],\n");
    assert_non_null(a);
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

static void test_threads_identical(void **state)
{
    (void)state;
    write_spec("tiny.json", TINY);
    const char *a1[] = {"train", "--spec",   path_in_tmp("tiny.json"), "--threads",
                        "1",     "--params", "--trajectory",           NULL};
    const char *a2[] = {"train", "--spec",   path_in_tmp("tiny.json"), "--threads",
                        "2",     "--params", "--trajectory",           NULL};
    const char *a3[] = {"train", "--spec=-", "--threads=3", "--params", "--trajectory", NULL};
    struct proc p1, p2, p3;
    run(a1, NULL, &p1);
    run(a2, NULL, &p2);
    run(a3, path_in_tmp("tiny.json"), &p3); /* the spec from stdin */
    assert_int_equal(p1.status, 0);
    assert_int_equal(p2.status, 0);
    assert_int_equal(p3.status, 0);
    char *l1 = run_lines(p1.out), *l2 = run_lines(p2.out), *l3 = run_lines(p3.out);
    assert_true(strstr(l1, "\"final_risk\":") != NULL);
    assert_string_equal(l1, l2);
    assert_string_equal(l1, l3);
    free(l1);
    free(l2);
    free(l3);
    proc_free(&p1);
    proc_free(&p2);
    proc_free(&p3);
}

/* --params and --trajectory: the end point, evaluated by the core, gives the reported final
 * risk; the trajectory starts at step 0 with the initial risk and ends at the final step. */
static void test_params_and_trajectory(void **state)
{
    (void)state;
    write_spec("tiny.json", TINY);
    const char *args[] = {"train",   "--spec", path_in_tmp("tiny.json"), "--params", "--trajectory",
                          "--quiet", NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    json_t *j = parse_output(&p);

    char *text = slurp(path_in_tmp("tiny.json"), NULL);
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs), BASIN_OK);
    const basin_dataset *ds = exp->dataset->data;
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(exp->arch->net, ds->n, &ws), BASIN_OK);

    json_t *runs = json_object_get(j, "runs");
    for (size_t r = 0; r < json_array_size(runs); r++) {
        json_t *run_j = json_array_get(runs, r);
        json_t *params = json_object_get(run_j, "params");
        assert_int_equal(json_array_size(params), 17);
        double theta[17];
        for (size_t i = 0; i < 17; i++)
            theta[i] = json_real_value(json_array_get(params, i));
        double risk = 0;
        assert_int_equal(basin_net_risk_grad(exp->arch->net, ws, theta, ds, NULL, ds->n, &exp->loss,
                                             &risk, NULL),
                         BASIN_OK);
        double fr = json_real_value(json_object_get(run_j, "final_risk"));
        assert_true(fabs(risk - fr) <= 1e-12 * fmax(1.0, fabs(fr)));

        json_t *traj = json_object_get(run_j, "trajectory");
        size_t n = json_array_size(traj);
        json_int_t steps = json_integer_value(json_object_get(run_j, "steps"));
        assert_true(n >= 2);
        json_t *first = json_array_get(traj, 0), *last = json_array_get(traj, n - 1);
        assert_int_equal(json_integer_value(json_array_get(first, 0)), 0);
        assert_true(json_real_value(json_array_get(first, 1)) ==
                    json_real_value(json_object_get(run_j, "initial_risk")));
        assert_int_equal(json_integer_value(json_array_get(last, 0)), steps);
        assert_true(json_real_value(json_array_get(last, 1)) == fr);
        /* every 50 steps in between */
        for (size_t i = 1; i + 1 < n; i++)
            assert_int_equal(json_integer_value(json_array_get(json_array_get(traj, i), 0)),
                             50 * (json_int_t)i);
    }
    basin_net_ws_free(ws);
    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    free(text);
    json_decref(j);
    proc_free(&p);
}

static void test_out_file(void **state)
{
    (void)state;
    write_spec("tiny.json", TINY);
    char *out = path_in_tmp("result.json");
    write_file(out, "old contents");
    const char *args[] = {"train", "--spec", path_in_tmp("tiny.json"), "--out", out, NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    assert_int_equal(p.out_len, 0);
    size_t len;
    char *text = slurp(out, &len);
    json_t *j = json_loadb(text, len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 6);
    json_decref(j);
    free(text);
    proc_free(&p);
    /* no temporary file is left behind */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, ".tmp"));
    closedir(d);

    /* a FIFO (like /dev/null, not a regular file) is written in place, never renamed over */
    char *fifo = path_in_tmp("out.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) { /* child: copy the FIFO into a regular file, then exit */
        alarm(30);     /* never opened for writing (a rename replaced it): die, test fails */
        int in = open(fifo, O_RDONLY),
            outfd = open(path_in_tmp("fifo.copy"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[4096];
        ssize_t got;
        while (in >= 0 && outfd >= 0 && (got = read(in, buf, sizeof buf)) > 0)
            if (write(outfd, buf, (size_t)got) != got)
                _exit(1);
        _exit(in >= 0 && outfd >= 0 ? 0 : 1);
    }
    const char *to_fifo[] = {"train", "--spec", path_in_tmp("tiny.json"), "--out", fifo, NULL};
    run(to_fifo, NULL, &p);
    int rs = 0;
    assert_int_equal(waitpid(reader, &rs, 0), reader);
    assert_true(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
    assert_int_equal(p.status, 0);
    struct stat sb;
    assert_int_equal(stat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    text = slurp(path_in_tmp("fifo.copy"), &len);
    j = json_loadb(text, len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 6);
    json_decref(j);
    free(text);
    proc_free(&p);

    /* an unwritable destination is an internal failure (1), with nothing on stdout */
    const char *bad[] = {
        "train", "--spec", path_in_tmp("tiny.json"), "--out", "/nonexistent-dir/x.json", NULL};
    run(bad, NULL, &p);
    assert_int_equal(p.status, 1);
    assert_int_equal(p.out_len, 0);
    assert_non_null(strstr(p.err, "cannot create"));
    proc_free(&p);
}

static void test_teacher_gaussian(void **state)
{
    (void)state;
    write_spec("tg.json",
               "{'dataset':{'kind':'teacher_gaussian','k':2,'d':2,'teacher':'identity'},"
               "'architecture':{'input_shape':[2],'layers':[{'type':'dense','units':2,'bias':"
               "false},{'type':'activation','kind':'relu'},{'type':'sum'}]},'optimizer':{'kind':"
               "'gd','lr':0.05},'restarts':4,'max_steps':5}");
    const char *args[] = {"train", "--spec", path_in_tmp("tg.json"), "--params", NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    json_t *j = parse_output(&p);
    json_t *ds = json_object_get(j, "dataset");
    assert_string_equal(json_string_value(json_object_get(ds, "kind")), "teacher_gaussian");
    assert_true(json_is_null(json_object_get(ds, "linear_fit")));
    json_t *runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 4);
    for (size_t r = 0; r < 4; r++) {
        json_t *run_j = json_array_get(runs, r);
        /* Check F at the end point against the closed form for the identity teacher:
         * F(W) = ½ Σ κ(w_i,w_j) − Σ κ(w_i,e_j) + ½ Σ κ(e_i,e_j) with
         * κ(u,v) = ‖u‖‖v‖(sin θ + (π − θ) cos θ)/(2π). */
        json_t *params = json_object_get(run_j, "params");
        double w[2][2] = {{json_real_value(json_array_get(params, 0)),
                           json_real_value(json_array_get(params, 1))},
                          {json_real_value(json_array_get(params, 2)),
                           json_real_value(json_array_get(params, 3))}};
        double v[2][2] = {{1, 0}, {0, 1}};
        double f = 0;
        for (int a = 0; a < 3; a++) {
            for (size_t i = 0; i < 2; i++) {
                for (size_t k = 0; k < 2; k++) {
                    const double *u = a == 2 ? v[i] : w[i];
                    const double *x = a == 0 ? w[k] : v[k];
                    double nu = hypot(u[0], u[1]), nx = hypot(x[0], x[1]);
                    if (nu == 0 || nx == 0)
                        continue;
                    double c = (u[0] * x[0] + u[1] * x[1]) / (nu * nx);
                    c = c > 1 ? 1 : (c < -1 ? -1 : c);
                    double th = acos(c);
                    double kap = nu * nx * (sin(th) + (PI - th) * cos(th)) / (2 * PI);
                    f += (a == 1 ? -1.0 : 0.5) * kap;
                }
            }
        }
        double fr = json_real_value(json_object_get(run_j, "final_risk"));
        assert_true(fabs(f - fr) <= 1e-10 * fmax(1.0, fabs(fr)));
    }
    json_decref(j);
    proc_free(&p);
}

/* ---- verdicts, label counts, basins, spurious shares (issue 4) ---- */

#define SINE12_SPEC(certify)                                                                       \
    "{'dataset':{'kind':'inline','x':[[-1.0],[-0.818182],[-0.636364],[-0.454545],[-0.272727],"     \
    "[-0.090909],[0.090909],[0.272727],[0.454545],[0.636364],[0.818182],[1.0]],'y':[-0.14112,"     \
    "-0.634257,-0.943322,-0.978619,-0.729904,-0.269359,0.269359,0.729904,0.978619,0.943322,"       \
    "0.634257,0.14112]},'architecture':{'layers':[{'type':'dense','units':4},{'type':'activation'" \
    ","                                                                                            \
    "'kind':'relu'},{'type':'dense','units':1}]},'optimizer':{'kind':'gd','lr':0.05},'restarts':"  \
    "12,'seed':5,'max_steps':3000,'stop':{'grad_tol':1e-9}" certify "}"

/* The Wilson score interval at 95%, written out here: centre ± half over 1 + z²/n. */
static void wilson95(double k, double n, double *lo, double *hi)
{
    const double z = 1.959963984540054;
    double p = k / n;
    double centre = (p + z * z / (2 * n)) / (1 + z * z / n);
    double half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

static void assert_wilson(const json_t *ci, double k, double n)
{
    double lo, hi;
    wilson95(k, n, &lo, &hi);
    assert_int_equal(json_array_size(ci), 2);
    assert_true(fabs(json_real_value(json_array_get(ci, 0)) - lo) <= 1e-12);
    assert_true(fabs(json_real_value(json_array_get(ci, 1)) - hi) <= 1e-12);
}

static const char *const LABELS[] = {"certified_minimum", "likely_minimum", "saddle",
                                     "not_converged"};

/* The data-term risk of a parameter array, evaluated by the core. */
static double risk_of(const struct spec_experiment *exp, const json_t *params)
{
    const basin_dataset *ds = exp->dataset->data;
    size_t dim = basin_net_param_count(exp->arch->net);
    double theta[64], risk = 0;
    assert_true(dim <= 64);
    assert_int_equal(json_array_size(params), dim);
    for (size_t i = 0; i < dim; i++)
        theta[i] = json_real_value(json_array_get(params, i));
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(exp->arch->net, ds->n, &ws), BASIN_OK);
    assert_int_equal(
        basin_net_risk_grad(exp->arch->net, ws, theta, ds, NULL, ds->n, &exp->loss, &risk, NULL),
        BASIN_OK);
    basin_net_ws_free(ws);
    return risk;
}

static void test_verdicts_and_basins(void **state)
{
    (void)state;
    write_spec("sine12.json", SINE12_SPEC(""));
    const char *args[] = {"train", "--spec", path_in_tmp("sine12.json"), "--params", "--threads",
                          "2",     NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    json_t *j = parse_output(&p);
    char *text = slurp(path_in_tmp("sine12.json"), NULL);
    struct spec_errors errs;
    struct spec_experiment *exp = NULL;
    spec_errors_init(&errs);
    assert_int_equal(spec_experiment_parse_text(text, strlen(text), NULL, &exp, &errs), BASIN_OK);

    json_t *runs = json_object_get(j, "runs"), *sum = json_object_get(j, "summary");
    size_t n = json_array_size(runs);
    json_int_t finished = json_integer_value(json_object_get(sum, "finished"));
    assert_int_equal(n, 12);
    assert_int_equal(finished, 12);
    json_int_t counts[4] = {0}, spurious = 0;
    for (size_t r = 0; r < n; r++) {
        json_t *run_j = json_array_get(runs, r), *v = json_object_get(run_j, "verdict");
        assert_true(json_is_object(v));
        const char *label = json_string_value(json_object_get(v, "label"));
        int known = 0;
        for (size_t l = 0; l < 4; l++)
            if (label != NULL && strcmp(label, LABELS[l]) == 0) {
                counts[l]++;
                known = 1;
            }
        assert_true(known);
        assert_non_null(json_string_value(json_object_get(v, "decided_by")));
        /* the verdict judged the end point it reports: the polished one when it moved */
        double vr = json_real_value(json_object_get(v, "risk"));
        json_t *pol = json_object_get(v, "polish");
        json_t *pp = json_object_get(run_j, "polished_params");
        if (json_is_true(json_object_get(pol, "accepted"))) {
            assert_non_null(pp);
            assert_true(fabs(risk_of(exp, pp) - vr) <= 1e-12 * fmax(1.0, vr));
        } else {
            assert_null(pp);
            assert_true(fabs(risk_of(exp, json_object_get(run_j, "params")) - vr) <=
                        1e-12 * fmax(1.0, vr));
        }
        /* the training's values are kept as they were */
        assert_true(fabs(json_real_value(json_object_get(pol, "risk_before")) -
                         json_real_value(json_object_get(run_j, "final_risk"))) <=
                    1e-12 * fmax(1.0, vr));
        json_t *sp = json_object_get(run_j, "spurious");
        assert_true(json_is_object(sp));
        spurious += json_is_true(json_object_get(sp, "flag"));
    }
    /* label counts: the runs' labels, summing to the finished runs */
    json_t *lc = json_object_get(sum, "label_counts");
    json_int_t total = json_integer_value(json_object_get(lc, "none"));
    assert_int_equal(total, 0);
    for (size_t l = 0; l < 4; l++) {
        assert_int_equal(json_integer_value(json_object_get(lc, LABELS[l])), counts[l]);
        total += counts[l];
    }
    assert_int_equal(total, finished);
    /* spurious share with its Wilson interval */
    assert_int_equal(json_integer_value(json_object_get(sum, "spurious_count")), spurious);
    assert_true(json_real_value(json_object_get(sum, "spurious_share")) ==
                (double)spurious / (double)finished);
    assert_wilson(json_object_get(sum, "spurious_share_ci"), (double)spurious, (double)finished);

    /* basins: a partition of the finished runs, lowest risk first, shares with Wilson CIs */
    json_t *basins = json_object_get(sum, "basins");
    size_t nb = json_array_size(basins);
    assert_true(nb >= 1);
    int seen[12] = {0};
    json_int_t members_total = 0;
    double best = json_real_value(json_object_get(json_array_get(basins, 0), "risk")), prev = -1;
    json_int_t best_rep =
        json_integer_value(json_object_get(json_array_get(basins, 0), "representative"));
    double tol = json_real_value(json_object_get(sum, "spurious_tol"));
    for (size_t b = 0; b < nb; b++) {
        json_t *bj = json_array_get(basins, b), *members = json_object_get(bj, "members");
        json_int_t count = json_integer_value(json_object_get(bj, "count"));
        double risk = json_real_value(json_object_get(bj, "risk"));
        assert_true(risk >= prev);
        prev = risk;
        assert_int_equal(json_array_size(members), count);
        int rep_in = 0;
        for (size_t i = 0; i < json_array_size(members); i++) {
            json_int_t m = json_integer_value(json_array_get(members, i));
            assert_true(m >= 0 && m < 12);
            assert_int_equal(seen[m], 0);
            seen[m] = 1;
            rep_in |= m == json_integer_value(json_object_get(bj, "representative"));
        }
        assert_true(rep_in);
        members_total += count;
        assert_true(json_real_value(json_object_get(bj, "share")) ==
                    (double)count / (double)finished);
        assert_wilson(json_object_get(bj, "share_ci"), (double)count, (double)finished);
        int above = risk - best > tol * fmax(1.0, fabs(risk));
        json_t *sp = json_object_get(bj, "spurious"), *wit = json_object_get(bj, "witness_restart");
        if (above) {
            assert_int_equal(json_integer_value(wit), best_rep);
        } else {
            assert_true(json_is_false(sp));
            assert_true(json_is_null(wit));
        }
    }
    assert_int_equal(members_total, finished);
    /* the risks on this data differ: a 1-4-1 ReLU net has several minima on 12 sine points */
    assert_true(nb >= 2);

    spec_experiment_free(exp);
    spec_errors_clear(&errs);
    free(text);
    json_decref(j);
    proc_free(&p);
}

static void test_certify_disabled(void **state)
{
    (void)state;
    write_spec("sine12_off.json", SINE12_SPEC(",'certify':{'enabled':false}"));
    const char *args[] = {"train", "--spec", path_in_tmp("sine12_off.json"), "--quiet", NULL};
    struct proc p;
    run(args, NULL, &p);
    assert_int_equal(p.status, 0);
    json_t *j = parse_output(&p);
    json_t *runs = json_object_get(j, "runs"), *sum = json_object_get(j, "summary");
    for (size_t r = 0; r < json_array_size(runs); r++)
        assert_true(json_is_null(json_object_get(json_array_get(runs, r), "verdict")));
    json_t *lc = json_object_get(sum, "label_counts");
    json_int_t finished = json_integer_value(json_object_get(sum, "finished"));
    assert_int_equal(json_integer_value(json_object_get(lc, "none")), finished);
    for (size_t l = 0; l < 4; l++)
        assert_int_equal(json_integer_value(json_object_get(lc, LABELS[l])), 0);
    json_int_t total = 0;
    json_t *basins = json_object_get(sum, "basins");
    for (size_t b = 0; b < json_array_size(basins); b++)
        total += json_integer_value(json_object_get(json_array_get(basins, b), "count"));
    assert_int_equal(total, finished);
    assert_true(json_is_false(
        json_object_get(json_object_get(json_object_get(j, "spec"), "certify"), "enabled")));
    json_decref(j);
    proc_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_spec),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_valid_run),
        cmocka_unit_test(test_risk_levels),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_params_and_trajectory),
        cmocka_unit_test(test_out_file),
        cmocka_unit_test(test_teacher_gaussian),
        cmocka_unit_test(test_verdicts_and_basins),
        cmocka_unit_test(test_certify_disabled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
