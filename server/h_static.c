/* The dashboard's static files: GET / answers web_root/index.html and the file routes
 * (routes.c: "/{file}", "/js/{file}", "/vendor/{file}") answer the file at that path under
 * web_root (`basinlab serve --web DIR`, app.web_root). No build step at run time: the files
 * in web/ are what the browser gets.
 *
 * DESIGN
 * - Safe resolution. The relative path is rebuilt from the route pattern: its literal segments
 *   as written, each {param} replaced by the decoded segment (router.c already refused "/",
 *   NUL, "." and ".." inside a parameter). Each segment must then be a plain name
 *   ([A-Za-z0-9_.-], not starting with '.', so no dotfiles) with an extension from the table
 *   below, and anything else is 404 without touching the file system. The candidate is then
 *   resolved with realpath() and must lie strictly inside realpath(web_root): a symlink that
 *   points out of the web root is refused, one that stays inside is fine. The file is opened
 *   with O_NOFOLLOW on the resolved path, checked with fstat on the open descriptor (regular
 *   file, at most STATIC_MAX_BYTES) and read from that descriptor, so what is checked is what
 *   is sent.
 * - Caching: every answer is `Cache-Control: no-cache` plus the router's strong ETag of the
 *   body, so a reload revalidates with If-None-Match and gets a bodiless 304 when nothing
 *   changed. File names carry no content hash, so a long max-age would serve stale code after
 *   an upgrade; revalidation costs one small request per file.
 * - Security headers on every file: a Content-Security-Policy that allows only this origin
 *   (no inline script or style, no framing, no plugins), X-Content-Type-Options nosniff (the
 *   content type comes from the extension table, never from sniffing), Referrer-Policy
 *   no-referrer and X-Frame-Options DENY for browsers that predate frame-ancestors.
 * - Failures: an unknown file is a 404 problem (like any unknown path of the API); a server
 *   started without --web answers 404 at / with a hint. */
/* realpath() is XSI: POSIX.1-2008 alone does not declare it */
#define _XOPEN_SOURCE 700

#include "handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"

enum {
    STATIC_MAX_BYTES = 16 * 1024 * 1024, /* the largest file served (the dashboard's are < 1 MiB) */
    STATIC_MAX_REL = 256                 /* the longest relative path */
};

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
                          "object-src 'none'; base-uri 'none'; form-action 'self'; "
                          "frame-ancestors 'none'";

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

/* The content type for the extension of name, or NULL when the extension is not served. */
static const char *content_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        if (strcmp(dot, content_types[i].ext) == 0)
            return content_types[i].type;
    }
    return NULL;
}

static int plain_name(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Rebuild "js/app.js" from the route pattern "/js/{file}" and the decoded parameters. Returns 1
 * with rel filled when every segment is a plain name, else 0. */
static int relative_path(const struct request *req, char *rel, size_t cap)
{
    const char *p = req->route->pattern + 1;
    size_t used = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, "/");
        const char *seg = p;
        size_t seg_len = len;
        if (len >= 3 && p[0] == '{' && p[len - 1] == '}') {
            char name[32];
            if (len - 2 >= sizeof name)
                return 0;
            memcpy(name, p + 1, len - 2);
            name[len - 2] = '\0';
            seg = request_param(req, name);
            if (seg == NULL)
                return 0;
            seg_len = strlen(seg);
        }
        if (!plain_name(seg, seg_len) || used + seg_len + 2 > cap)
            return 0;
        if (used > 0)
            rel[used++] = '/';
        memcpy(rel + used, seg, seg_len);
        used += seg_len;
        p += len;
        if (*p == '/')
            p++;
    }
    rel[used] = '\0';
    return used > 0;
}

static int not_found(struct reply *rep, const char *detail)
{
    int rc = reply_problem(rep, 404, NULL, detail, NULL, 0);
    return rc;
}

/* Read the regular file `path` (already resolved) into *buf. 1 when it is not a regular file
 * or too large (answer 404), 0 when read, negative BASIN_E* on failure. */
static int read_file(const char *path, char **buf, size_t *len)
{
    int rc = BASIN_OK;
    struct stat st;
    size_t got = 0;
    char *data = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    *buf = NULL;
    *len = 0;
    if (fd < 0) {
        rc = 1;
        goto done;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        st.st_size > STATIC_MAX_BYTES) {
        rc = 1;
        goto done;
    }
    size_t size = (size_t)st.st_size;
    data = basin_malloc(size + 1);
    if (data == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = BASIN_EINVAL; /* shrank while read: an internal failure, logged */
            goto done;
        }
        got += (size_t)n;
    }
    *buf = data;
    *len = got;
    data = NULL;
done:
    if (fd >= 0)
        close(fd);
    basin_free(data);
    return rc;
}

/* Resolve rel under root: *out (free() it) gets the real path. 1 when it does not exist or
 * lies outside root, 0 when fine, BASIN_ENOMEM. realpath(…, NULL) allocates with malloc, so the
 * results are released with free(), not basin_free(). */
static int resolve_inside(const char *root, const char *rel, char **out)
{
    int rc = 1;
    char *root_real = realpath(root, NULL);
    char *joined = NULL;
    char *real = NULL;
    size_t rlen = 0, jlen = 0;
    *out = NULL;
    if (root_real == NULL)
        goto done;
    rlen = strlen(root_real);
    if (basin_add_size(rlen, strlen(rel), &jlen) != BASIN_OK ||
        basin_add_size(jlen, 2, &jlen) != BASIN_OK) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    joined = basin_malloc(jlen);
    if (joined == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    snprintf(joined, jlen, "%s/%s", root_real, rel);
    real = realpath(joined, NULL);
    if (real == NULL)
        goto done;
    /* strictly inside: "/srv/web/x", not "/srv/web" itself nor "/srv/website/x" */
    size_t prefix = rlen == 1 ? 0 : rlen; /* a web root of "/" */
    if (strncmp(real, root_real, prefix) == 0 && real[prefix] == '/' && real[prefix + 1] != '\0') {
        *out = real;
        real = NULL;
        rc = 0;
    }
done:
    free(real);
    basin_free(joined);
    free(root_real);
    return rc;
}

static int security_headers(struct reply *rep)
{
    int rc = reply_header(rep, "Content-Security-Policy", CSP);
    if (rc == BASIN_OK)
        rc = reply_header(rep, "X-Content-Type-Options", "nosniff");
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Referrer-Policy", "no-referrer");
    if (rc == BASIN_OK)
        rc = reply_header(rep, "X-Frame-Options", "DENY");
    if (rc == BASIN_OK)
        rc = reply_cache_control(rep, "no-cache");
    return rc;
}

static int serve_rel(struct request *req, struct reply *rep, const char *rel)
{
    int rc = BASIN_OK;
    const struct app *app = req->app;
    char *resolved = NULL;
    char *body = NULL;
    size_t len = 0;
    const char *type = content_type_of(rel);
    if (app == NULL || app->web_root == NULL) {
        rc = not_found(rep, "the dashboard is not served (start the server with --web DIR)");
        goto done;
    }
    if (type == NULL) {
        rc = not_found(rep, "no file at this path");
        goto done;
    }
    rc = resolve_inside(app->web_root, rel, &resolved);
    if (rc == 1) {
        rc = not_found(rep, "no file at this path");
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = read_file(resolved, &body, &len);
    if (rc == 1) {
        rc = not_found(rep, "no file at this path");
        goto done;
    }
    if (rc != BASIN_OK) {
        rep->log_cause = "reading a dashboard file failed";
        goto done;
    }
    rc = security_headers(rep);
    if (rc != BASIN_OK)
        goto done;
    rc = reply_take_body(rep, 200, type, body, len);
    body = NULL;
done:
    basin_free(body);
    free(resolved);
    return rc;
}

int h_static_index(struct request *req, struct reply *rep)
{
    return serve_rel(req, rep, "index.html");
}

int h_static_file(struct request *req, struct reply *rep)
{
    char rel[STATIC_MAX_REL];
    if (!relative_path(req, rel, sizeof rel))
        return not_found(rep, "no file at this path");
    return serve_rel(req, rep, rel);
}
