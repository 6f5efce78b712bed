/* The CORS allowlist of `basinlab serve --cors-origins` (cors.h): parsing the list, the
 * preflight answer and the headers added to every answer.
 *
 * DESIGN
 * - Exact origins only. An origin is the serialised (scheme, host, port) of the page that calls
 *   us; the list holds exactly those, checked at start-up (http or https, a plain host name, an
 *   IPv4 address or a bracketed IPv6 address, an optional port, nothing else). No wildcard, no
 *   pattern, no "null" (the origin of sandboxed frames and file: pages, which any attacker can
 *   produce). Comparison ignores ASCII case, as scheme and host are case-insensitive; the answer
 *   echoes the request's own Origin, which is what the browser compares with.
 * - No credentials. Access-Control-Allow-Credentials is never sent, so the browser never
 *   attaches cookies or HTTP authentication of its own to a cross-origin call; a dashboard
 *   sends its bearer token in Authorization, which a preflight must allow explicitly (it does).
 *   Together with exact origins this keeps "wildcard with credentials" impossible by
 *   construction.
 * - Every answer varies by Origin (`Vary: Origin`, merged into an existing Vary), so a shared
 *   cache never hands one origin's answer to another. Errors carry the CORS headers too: a
 *   script must be able to read a 401, 404 or 429 problem, not only successes.
 * - Preflights are answered before routing and before authentication: the Fetch standard sends
 *   them without credentials, so they could never pass an authentication check. They reveal
 *   nothing but the fixed lists below. Preflights are still rate-limited (that hook runs
 *   first). A preflight from an origin not on the list is not answered here: it gets the
 *   ordinary answer to OPTIONS (405 with Allow), without Access-Control-* headers. */
#include "cors.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "reply.h"

struct cors {
    size_t n;
    char origin[CORS_MAX_ORIGINS][CORS_MAX_ORIGIN_BYTES];
};

static int set_err(char *err, size_t errcap, const char *entry, size_t len, const char *why)
{
    if (errcap > 0)
        snprintf(err, errcap, "'%.*s' %s", (int)(len > 80 ? 80 : len), entry, why);
    return BASIN_EINVAL;
}

static int is_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.';
}

/* Is [s, s+len) a serialised http(s) origin? Explains why not in *why. */
static int origin_ok(const char *s, size_t len, const char **why)
{
    size_t i;
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        i = 7;
    } else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        i = 8;
    } else {
        *why = "is not an origin: it must start with http:// or https://";
        return 0;
    }
    size_t host = i;
    if (i < len && s[i] == '[') {
        i++;
        while (i < len && (isxdigit((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= len || s[i] != ']' || i == host + 1) {
            *why = "has a malformed [IPv6] host";
            return 0;
        }
        i++;
    } else {
        while (i < len && is_host_char(s[i]))
            i++;
        if (i == host || s[host] == '.' || s[host] == '-' || s[i - 1] == '.') {
            *why = "has no valid host";
            return 0;
        }
    }
    if (i < len && s[i] == ':') {
        size_t port = ++i;
        unsigned long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - port < 5)
            v = v * 10 + (unsigned long)(s[i++] - '0');
        if (i == port || v == 0 || v > 65535) {
            *why = "has a port that is not in [1, 65535]";
            return 0;
        }
    }
    if (i != len) {
        *why = "is not an origin: only scheme://host[:port], without a path or a trailing '/'";
        return 0;
    }
    return 1;
}

int cors_create(const char *list, struct cors **out, char *err, size_t errcap)
{
    int rc = BASIN_OK;
    struct cors *c = NULL;
    *out = NULL;
    if (errcap > 0)
        err[0] = '\0';
    if (list == NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    c = basin_calloc(1, sizeof *c);
    if (c == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (const char *p = list;;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        const char *next = p + len;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *why = NULL;
        if (len == 0) {
            rc = set_err(err, errcap, list, strlen(list), "has an empty entry");
            goto done;
        }
        if ((len == 1 && p[0] == '*') || (len == 4 && strncasecmp(p, "null", 4) == 0)) {
            rc = set_err(err, errcap, p, len, "is not allowed: list exact origins");
            goto done;
        }
        if (!origin_ok(p, len, &why)) {
            rc = set_err(err, errcap, p, len, why);
            goto done;
        }
        if (c->n == CORS_MAX_ORIGINS || len >= CORS_MAX_ORIGIN_BYTES) {
            rc = set_err(err, errcap, p, len, "is one origin too many or too long");
            goto done;
        }
        for (size_t k = 0; k < len; k++)
            c->origin[c->n][k] = (char)tolower((unsigned char)p[k]);
        c->origin[c->n][len] = '\0';
        c->n++;
        if (*next == '\0')
            break;
        p = next + 1;
    }
    *out = c;
    c = NULL;
done:
    basin_free(c);
    return rc;
}

void cors_free(struct cors *c)
{
    basin_free(c);
}

size_t cors_origin_count(const struct cors *c)
{
    return c->n;
}

int cors_origin_allowed(const struct cors *c, const char *origin)
{
    if (c == NULL || origin == NULL)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        if (strcasecmp(c->origin[i], origin) == 0)
            return 1;
    }
    return 0;
}

/* Does the comma-separated header value `list` contain `token` (ignoring case)? */
static int list_has(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    for (const char *p = list;;) {
        p += strspn(p, " \t,");
        if (*p == '\0')
            return 0;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == tlen && strncasecmp(p, token, tlen) == 0)
            return 1;
        p += len;
    }
}

/* Add `token` to the answer's Vary header (merged with what is there). */
static int add_vary(struct reply *rep, const char *token)
{
    char merged[256];
    const char *vary = reply_find_header(rep, "Vary");
    if (vary == NULL)
        return reply_header(rep, "Vary", token);
    if (list_has(vary, token) || strcmp(vary, "*") == 0)
        return BASIN_OK;
    if ((size_t)snprintf(merged, sizeof merged, "%s, %s", vary, token) >= sizeof merged)
        return BASIN_ERANGE;
    return reply_header(rep, "Vary", merged);
}

int cors_preflight_hook(void *ctx, const struct request *req, struct reply *rep)
{
    const struct cors *c = ctx;
    const char *origin = request_header(req, "Origin");
    if (strcmp(req->method, "OPTIONS") != 0 || origin == NULL ||
        request_header(req, "Access-Control-Request-Method") == NULL ||
        !cors_origin_allowed(c, origin))
        return BASIN_OK;
    char max_age[16];
    snprintf(max_age, sizeof max_age, "%d", (int)CORS_MAX_AGE_S);
    int rc = reply_header(rep, "Access-Control-Allow-Origin", origin);
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Access-Control-Max-Age", max_age);
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Vary",
                          "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (rc == BASIN_OK)
        rep->status = 204;
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

void cors_decorate_hook(void *ctx, const struct request *req, struct reply *rep)
{
    const struct cors *c = ctx;
    const char *origin = request_header(req, "Origin");
    /* best effort: an answer that cannot take more headers goes out without them, and the
     * browser then refuses to show it to the script, which is the safe direction */
    if (add_vary(rep, "Origin") != BASIN_OK || !cors_origin_allowed(c, origin))
        return;
    if (reply_header(rep, "Access-Control-Allow-Origin", origin) == BASIN_OK)
        reply_header(rep, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}
