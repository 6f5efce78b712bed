/* Runs a fuzz target's committed corpus as an ordinary test, without clang or libFuzzer: every
 * regular file named on the command line, or found (sorted, one level deep) in a directory named
 * there, is read whole and passed to LLVMFuzzerTestOneInput once.
 *
 * The inputs run in a child process, one after the other; before each one the child tells the
 * parent its index through a pipe. A failed check aborts (under ASan/UBSan builds a sanitizer
 * report does too), so when the child dies the parent knows which input killed it, reports it
 * and starts a new child at the next input: one failing input does not hide the others, and a
 * passing corpus costs a single fork.
 *
 * usage: TARGET_replay PATH... ; exit 0 when every input passed, 1 when any failed, a path is
 * unreadable or no input was found (an empty corpus would make the test vacuous). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

struct paths {
    char **items;
    size_t n, cap;
};

static int paths_add(struct paths *p, const char *path)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        char **items = realloc(p->items, cap * sizeof *items);
        if (items == NULL)
            return -1;
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n] = strdup(path);
    return p->items[p->n++] != NULL ? 0 : -1;
}

static int skip_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Collect a file, or the regular files of a directory in name order. */
static int collect(const char *arg, struct paths *out)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "replay: no such path %s\n", arg);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return paths_add(out, arg);
    struct dirent **names = NULL;
    int n = scandir(arg, &names, skip_hidden, alphasort);
    int rc = 0;
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", arg);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", arg, names[i]->d_name);
        if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = paths_add(out, path);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Read a whole file into an allocation of exactly its size (libFuzzer hands over exactly len
 * bytes, so ASan sees any read past them). Returns 0, or -1. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    *data = NULL;
    *len = 0;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size > 0 ? size : 1);
    int ok = buf != NULL && fread(buf, 1, size, f) == size;
    fclose(f);
    if (!ok) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = size;
    return 0;
}

/* The child: run inputs from `start`, announcing each index on fd. Exit 0 when all ran, 3 when
 * one could not be read. exit() rather than _exit(): LeakSanitizer checks at exit. */
static void run_from(const struct paths *p, size_t start, int fd)
{
    for (size_t i = start; i < p->n; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (write(fd, &i, sizeof i) != (ssize_t)sizeof i)
            exit(4);
        if (read_file(p->items[i], &data, &len) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", p->items[i]);
            exit(3);
        }
        LLVMFuzzerTestOneInput(data, len);
        free(data);
    }
    size_t done = p->n;
    if (write(fd, &done, sizeof done) != (ssize_t)sizeof done)
        exit(4);
    exit(0);
}

int main(int argc, char **argv)
{
    struct paths p = {NULL, 0, 0};
    size_t failed = 0, start = 0;
    int broken = 0;
    for (int i = 1; i < argc; i++) {
        if (collect(argv[i], &p) != 0)
            return 1;
    }
    if (p.n == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    while (start < p.n && !broken) {
        int fds[2];
        if (pipe(fds) != 0)
            return 1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(fds[0]);
            run_from(&p, start, fds[1]);
        }
        close(fds[1]);
        size_t last = start, idx;
        ssize_t got;
        while ((got = read(fds[0], &idx, sizeof idx)) == (ssize_t)sizeof idx ||
               (got < 0 && errno == EINTR)) {
            if (got > 0)
                last = idx;
        }
        close(fds[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && last == p.n)
            break;
        if (WIFEXITED(status) && WEXITSTATUS(status) >= 3 && WEXITSTATUS(status) <= 4) {
            broken = 1;
            break;
        }
        /* the child died running input `last` (or, after the last one, at exit: a leak) */
        fprintf(stderr, "replay: FAILED %s (%s %d)\n", last < p.n ? p.items[last] : "(at exit)",
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        failed++;
        start = last + 1;
    }
    printf("replay: %zu inputs, %zu failed%s\n", p.n, failed, broken ? ", unreadable input" : "");
    for (size_t i = 0; i < p.n; i++)
        free(p.items[i]);
    free(p.items);
    return failed == 0 && !broken ? 0 : 1;
}
