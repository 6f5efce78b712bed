/* Cross-origin access for dashboards served from other origins (`basinlab serve
 * --cors-origins "https://a.example,http://localhost:5173"`): an allowlist of exact origins.
 * A request whose Origin is on the list gets Access-Control-Allow-Origin naming that origin
 * (never "*"); a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) from a
 * listed origin is answered 204 with the allowed methods, headers and a Max-Age. Every answer
 * carries `Vary: Origin`, since it depends on the Origin. No Access-Control-Allow-Credentials:
 * the API authenticates with a bearer token that scripts send themselves, not with cookies, so
 * browsers never need to attach credentials. Without --cors-origins none of this is installed
 * and browsers keep the same-origin policy. */
#ifndef BASINLAB_CORS_H
#define BASINLAB_CORS_H

#include <stddef.h>

#include "router.h"

enum {
    CORS_MAX_ORIGINS = 32,
    CORS_MAX_ORIGIN_BYTES = 256,
    CORS_MAX_AGE_S = 600 /* how long a browser may reuse a preflight answer */
};

/* Methods and request headers a preflight allows; headers scripts may read from an answer. */
#define CORS_ALLOW_METHODS "GET, HEAD, POST, DELETE"
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, X-Request-Id"
#define CORS_EXPOSE_HEADERS "ETag, Link, Location, Retry-After, X-Request-Id, WWW-Authenticate"

struct cors;

/* Parse a comma-separated list of origins ("scheme://host[:port]", scheme http or https, no
 * path, no trailing '/', no "*" or "null"; spaces around commas are ignored; scheme and host are
 * compared in lower case, as browsers send them). Returns 0, or BASIN_EINVAL with a sentence in
 * err (errcap bytes; may be 0) quoting the bad entry ("'x' is not an origin: ..."), or
 * BASIN_ENOMEM. */
int cors_create(const char *list, struct cors **out, char *err, size_t errcap);
/* Accepts NULL. */
void cors_free(struct cors *c);

/* Number of origins on the list. */
size_t cors_origin_count(const struct cors *c);
/* 1 when origin (the request's Origin header; NULL = none) is on the list, else 0. */
int cors_origin_allowed(const struct cors *c, const char *origin);

/* Pipeline hook (struct pipeline_hooks.preflight, before routing): answers a preflight from a
 * listed origin with 204 and returns BASIN_EINVAL ("answered"); lets everything else through
 * (a preflight from another origin then gets the answer an OPTIONS request gets without CORS:
 * 405, with no Access-Control-* headers, so the browser refuses the cross-origin call). */
int cors_preflight_hook(void *ctx, const struct request *req, struct reply *rep);

/* Pipeline hook (struct pipeline_hooks.decorate, every answer): Vary: Origin, and for a listed
 * origin Access-Control-Allow-Origin and Access-Control-Expose-Headers. */
void cors_decorate_hook(void *ctx, const struct request *req, struct reply *rep);

#endif
