/* Runs a fuzz target's committed corpus as an ordinary test, without clang or libFuzzer: every
 * regular file named on the command line, or found (sorted, one level deep) in a directory named
 * there, is read whole and passed to LLVMFuzzerTestOneInput once, in a child process of its own,
 * so that one failing input (a failed check aborts; under ASan/UBSan builds a sanitizer report
 * does too) does not hide the others: every failing file is named.
 *
 * usage: TARGET_replay PATH... ; exit 0 when every input passed, 1 when any failed, a path is
 * unreadable or no input was found (an empty corpus would make the test vacuous). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

/* Run one input in this process (the child). */
static int run_input(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    int bad = ferror(f) || buf == NULL;
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        return -1;
    }
    /* libFuzzer hands over exactly len bytes: a copy of that size lets ASan see overreads */
    uint8_t *exact = malloc(len > 0 ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

/* 1 when the input passed, 0 when it failed, -1 when it could not be run. */
static int run_file(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "replay: cannot fork for %s\n", path);
        return -1;
    }
    if (pid == 0)
        exit(run_input(path) == 0 ? 0 : 3); /* exit(), not _exit(): LeakSanitizer runs at exit */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        return -1;
    fprintf(stderr, "replay: FAILED %s (%s %d)\n", path,
            WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 0;
}

static int skip_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

struct tally {
    int passed, failed, unreadable;
};

static void count(struct tally *t, int r)
{
    if (r > 0)
        t->passed++;
    else if (r == 0)
        t->failed++;
    else
        t->unreadable++;
}

static int run_dir(const char *dir, struct tally *t)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, skip_entry, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            count(t, run_file(path));
        free(names[i]);
    }
    free(names);
    return 0;
}

int main(int argc, char **argv)
{
    struct tally t = {0, 0, 0};
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such path %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &t) != 0)
                return 1;
        } else {
            count(&t, run_file(argv[i]));
        }
    }
    printf("replay: %d inputs passed, %d failed, %d unreadable\n", t.passed, t.failed,
           t.unreadable);
    if (t.passed + t.failed == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    return t.failed == 0 && t.unreadable == 0 ? 0 : 1;
}
