/* Optional token authentication of `basinlab serve --auth tokens`.
 *
 * A token is "blt_" followed by 43 base64url characters: 256 bits from getrandom. `basinlab
 * token create --scope read|write` prints it once (cli_token.c); the store keeps only its
 * SHA-256 (store.h, struct store_api_token). A client sends `Authorization: Bearer <token>`.
 * Scopes: `read` allows GET and HEAD, `write` allows every method (it includes read).
 * Without a token the answer is 401 with `WWW-Authenticate: Bearer realm="basinlab"`; with an
 * unknown, revoked or malformed one, 401 with error="invalid_token"; with too small a scope,
 * 403 with error="insufficient_scope" (RFC 6750 §3). Public without a token: /healthz, /readyz,
 * /openapi.yaml and the dashboard's static files (they hold no data; the dashboard's own API
 * calls need a token like any client's), and /metrics too when `--public-health` is given. */
#ifndef BASINLAB_AUTH_H
#define BASINLAB_AUTH_H

#include <stddef.h>

#include "router.h"
#include "store.h"

enum auth_scope { AUTH_SCOPE_NONE = 0, AUTH_SCOPE_READ = 1, AUTH_SCOPE_WRITE = 2 };

#define AUTH_TOKEN_PREFIX "blt_"
enum {
    AUTH_SECRET_BYTES = 32,                        /* random bytes in a token */
    AUTH_TOKEN_CHARS = 4 + 43,                     /* prefix + unpadded base64url of 32 bytes */
    AUTH_TOKEN_SIZE = AUTH_TOKEN_CHARS + 1,        /* with the NUL */
    AUTH_HASH_HEX_SIZE = STORE_API_TOKEN_HASH_SIZE /* 64 hex digits + NUL */
};

/* "read" / "write" ("none" for AUTH_SCOPE_NONE). */
const char *auth_scope_name(enum auth_scope scope);
/* "read" or "write" → the scope; BASIN_EINVAL for anything else. */
int auth_scope_parse(const char *name, enum auth_scope *out);

/* A fresh token (prefix + 256 random bits, base64url). BASIN_ENOTSUP when the kernel gives no
 * randomness (nothing is written then). */
int auth_token_generate(char out[AUTH_TOKEN_SIZE]);
/* Lower-case hex SHA-256 of the len bytes of token. */
void auth_token_hash(const char *token, size_t len, char out[AUTH_HASH_HEX_SIZE]);
/* 1 when token (len bytes) has the shape of a token this server makes, else 0. */
int auth_token_well_formed(const char *token, size_t len);

/* Constant-time comparison of n bytes: 1 when equal, else 0. The time depends on n only, never
 * on where the bytes differ. */
int auth_ct_equal(const void *a, const void *b, size_t n);

/* Parse an Authorization header value "Bearer <token>" (scheme case-insensitive, one or more
 * spaces, no trailing garbage): *token points into the value, *len its length. BASIN_EINVAL
 * for another scheme or a malformed value. */
int auth_parse_bearer(const char *authorization, const char **token, size_t *len);

/* Make a token, store its hash with scope and name (NULL or "" = none; at most 64 bytes) and
 * return the token (shown once, never stored) and its id. Returns 0, BASIN_EINVAL (bad scope or
 * name), BASIN_ENOTSUP (no randomness) or a STORE_E* code from the store. */
int auth_token_create(struct store *store, enum auth_scope scope, const char *name,
                      char token_out[AUTH_TOKEN_SIZE], char id_out[STORE_ID_SIZE]);

/* What the authorize hook enforces. */
struct auth_policy {
    struct store *store; /* where tokens are looked up (borrowed) */
    int metrics_public;  /* --public-health: /metrics needs no token either */
};

/* The scope a request needs: AUTH_SCOPE_NONE for the public routes (by route pattern),
 * AUTH_SCOPE_READ for GET and HEAD, AUTH_SCOPE_WRITE for every other method. */
enum auth_scope auth_required_scope(const struct auth_policy *policy, const char *method,
                                    const char *route_pattern);

/* The pipeline hook (router.h, struct pipeline_hooks.authorize); ctx is a struct auth_policy.
 * Lets the request through, or answers 401 / 403 (or 500 / 503 when the store fails). */
int auth_hook(void *ctx, const struct request *req, struct reply *rep);

#endif
