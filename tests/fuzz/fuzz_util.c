/* The shared checks and limits of the fuzz targets (fuzz.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/status.h"
#include "fuzz.h"
#include "reply.h"

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

void fuzz_limits(struct limits *lim)
{
    /* only the sizes that cost memory or time while parsing are scaled down */
    limits_defaults(lim);
    lim->max_body_bytes = 1 << 20;
    lim->max_points = 64;
    lim->max_input_dim = 64;
    lim->max_dataset_values = 1024;
    lim->max_layers = 12;
    lim->max_width = 64;
    lim->max_params = 4096;
}

int fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        size_t n;
        unsigned long cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* RFC 6901: "" or a sequence of "/" reference-token, where '~' appears only as ~0 or ~1. */
static int pointer_ok(const char *p)
{
    if (p[0] != '\0' && p[0] != '/')
        return 0;
    for (const char *q = p; *q != '\0'; q++) {
        if (*q == '~' && q[1] != '0' && q[1] != '1')
            return 0;
    }
    return fuzz_utf8_valid(p, strlen(p));
}

void fuzz_check_spec_errors(const struct spec_errors *errs)
{
    FUZZ_CHECK(errs->count <= SPEC_MAX_ERRORS);
    FUZZ_CHECK(errs->count > 0 || errs->dropped == 0);
    struct problem_error *pe = calloc(errs->count + 1, sizeof *pe);
    FUZZ_CHECK(pe != NULL);
    for (size_t i = 0; i < errs->count; i++) {
        const struct spec_error *e = &errs->items[i];
        FUZZ_CHECK(e->pointer != NULL && e->message != NULL);
        FUZZ_CHECK(pointer_ok(e->pointer));
        FUZZ_CHECK(e->message[0] != '\0');
        FUZZ_CHECK(fuzz_utf8_valid(e->message, strlen(e->message)));
        pe[i].pointer = e->pointer;
        pe[i].message = e->message;
    }
    json_t *arr = spec_errors_to_json(errs);
    FUZZ_CHECK(arr != NULL);
    json_decref(arr);
    /* what the handlers send: a 422 problem naming every error */
    struct reply rep;
    reply_init(&rep, "/fuzz");
    FUZZ_CHECK(reply_problem(&rep, 422, NULL, "invalid", pe, errs->count) == BASIN_OK);
    FUZZ_CHECK(rep.status == 422 && rep.body != NULL);
    reply_clear(&rep);
    free(pe);
}

void fuzz_check_canonical(const json_t *canon, json_t *(*reparse)(const char *text, size_t len))
{
    FUZZ_CHECK(canon != NULL);
    char *text = json_dumps(canon, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_t *again = reparse(text, strlen(text));
    if (again == NULL) {
        fprintf(stderr, "canonical JSON does not parse again: %s\n", text);
        fuzz_fail(__FILE__, __LINE__, "the canonical JSON parses again");
    }
    if (!json_equal(canon, again)) {
        char *t2 = json_dumps(again, JSON_COMPACT);
        fprintf(stderr, "canonical JSON changed on a round trip:\n  %s\n  %s\n", text,
                t2 ? t2 : "(null)");
        free(t2);
        fuzz_fail(__FILE__, __LINE__, "the canonical JSON is a fixed point");
    }
    json_decref(again);
    free(text);
}
