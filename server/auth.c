/* Token authentication (auth.h): making tokens, hashing them, and the pipeline hook that
 * checks `Authorization: Bearer` against the store.
 *
 * DESIGN
 * - Secrets: 32 bytes from getrandom(2) (the kernel CSPRNG; it blocks only before the pool is
 *   first seeded), base64url without padding behind the prefix "blt_", so a leaked token is
 *   recognisable by secret scanners. 256 bits make guessing hopeless, and make a plain, unsalted
 *   SHA-256 the right storage: salts and slow hashes protect low-entropy passwords against
 *   dictionary attacks, which do not exist for uniformly random 256-bit secrets. A fast hash
 *   keeps the per-request check to one indexed lookup.
 * - Lookup: the hash of the presented token is the key of an indexed query for an active
 *   token. Timing of that query can only reveal something about the hash of what the client
 *   itself sent, never about a stored secret (finding a token from its hash needs a SHA-256
 *   preimage). The stored hash that comes back is still compared with the computed one in
 *   constant time (nettle's memeql_sec), so no comparison on a secret-derived value ever
 *   short-circuits. The check happens on every request, without a cache, so a revocation
 *   (another process, `basinlab token revoke`) takes effect on the next request.
 * - Malformed tokens (wrong prefix or length, characters outside base64url) are refused before
 *   the store is asked, so garbage costs no database work.
 * - Policy: scopes follow the method (GET/HEAD read; anything else write, which includes read);
 *   the few public routes are named by their pattern in the route table (routes.c), so the
 *   policy is one short table here. Pipeline errors (404, 405) come before this hook, so
 *   unknown paths are 404 with or without a token: they reveal only the public route table.
 * - Answers: RFC 6750 §3 — 401 with `WWW-Authenticate: Bearer realm="basinlab"` (plus
 *   error="invalid_token" when a token was sent), 403 with error="insufficient_scope" and the
 *   scope needed. The token itself never appears in an answer or a log line. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "basin/status.h"
#include "reply.h"

enum { AUTH_STORE_RETRY_S = 1 };

static const char *const public_patterns[] = {
    "/healthz", "/readyz", "/openapi.yaml", "/", "/{file}", "/js/{file}", "/vendor/{file}",
};

const char *auth_scope_name(enum auth_scope scope)
{
    switch (scope) {
    case AUTH_SCOPE_READ:
        return "read";
    case AUTH_SCOPE_WRITE:
        return "write";
    default:
        return "none";
    }
}

int auth_scope_parse(const char *name, enum auth_scope *out)
{
    if (name != NULL && strcmp(name, "read") == 0)
        *out = AUTH_SCOPE_READ;
    else if (name != NULL && strcmp(name, "write") == 0)
        *out = AUTH_SCOPE_WRITE;
    else
        return BASIN_EINVAL;
    return BASIN_OK;
}

static int random_bytes(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return BASIN_ENOTSUP;
        }
        got += (size_t)r;
    }
    return BASIN_OK;
}

int auth_token_generate(char out[AUTH_TOKEN_SIZE])
{
    uint8_t secret[AUTH_SECRET_BYTES];
    char text[BASE64_ENCODE_LENGTH(AUTH_SECRET_BYTES) + BASE64_ENCODE_FINAL_LENGTH + 1];
    struct base64_encode_ctx ctx;
    int rc = random_bytes(secret, sizeof secret);
    if (rc != BASIN_OK)
        goto done;
    base64url_encode_init(&ctx);
    size_t n = base64_encode_update(&ctx, text, sizeof secret, secret);
    n += base64_encode_final(&ctx, text + n);
    while (n > 0 && text[n - 1] == '=')
        n--; /* unpadded: the length is fixed anyway */
    size_t plen = strlen(AUTH_TOKEN_PREFIX);
    if (plen + n != AUTH_TOKEN_CHARS) {
        rc = BASIN_EINVAL; /* cannot happen with nettle's encoder; never hand out a short token */
        goto done;
    }
    memcpy(out, AUTH_TOKEN_PREFIX, plen);
    memcpy(out + plen, text, n);
    out[plen + n] = '\0';
done:
    memset(text, 0, sizeof text);
    memset(secret, 0, sizeof secret);
    return rc;
}

void auth_token_hash(const char *token, size_t len, char out[AUTH_HASH_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)token);
    sha256_digest(&ctx, sizeof digest, digest);
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[2 * SHA256_DIGEST_SIZE] = '\0';
}

int auth_token_well_formed(const char *token, size_t len)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t plen = strlen(AUTH_TOKEN_PREFIX);
    if (len != AUTH_TOKEN_CHARS || strncmp(token, AUTH_TOKEN_PREFIX, plen) != 0)
        return 0;
    for (size_t i = plen; i < len; i++) {
        if (token[i] == '\0' || strchr(b64url, token[i]) == NULL)
            return 0;
    }
    return 1;
}

int auth_ct_equal(const void *a, const void *b, size_t n)
{
    return memeql_sec(a, b, n) ? 1 : 0;
}

int auth_parse_bearer(const char *authorization, const char **token, size_t *len)
{
    static const char scheme[] = "Bearer";
    const char *p = authorization;
    if (p == NULL || strncasecmp(p, scheme, sizeof scheme - 1) != 0 || p[sizeof scheme - 1] != ' ')
        return BASIN_EINVAL;
    p += sizeof scheme - 1;
    p += strspn(p, " ");
    size_t n = strcspn(p, " \t");
    if (n == 0 || p[n] != '\0')
        return BASIN_EINVAL;
    *token = p;
    *len = n;
    return BASIN_OK;
}

int auth_token_create(struct store *store, enum auth_scope scope, const char *name,
                      char token_out[AUTH_TOKEN_SIZE], char id_out[STORE_ID_SIZE])
{
    struct store_api_token rec;
    char token[AUTH_TOKEN_SIZE];
    int rc = BASIN_OK;
    memset(&rec, 0, sizeof rec);
    if (name == NULL)
        name = "";
    if ((scope != AUTH_SCOPE_READ && scope != AUTH_SCOPE_WRITE) ||
        strlen(name) >= sizeof rec.name) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = auth_token_generate(token);
    if (rc != BASIN_OK)
        goto done;
    memcpy(rec.name, name, strlen(name) + 1);
    snprintf(rec.scope, sizeof rec.scope, "%s", auth_scope_name(scope));
    auth_token_hash(token, strlen(token), rec.secret_sha256);
    rc = store_api_token_insert(store, &rec, id_out);
    if (rc != STORE_OK)
        goto done;
    memcpy(token_out, token, AUTH_TOKEN_SIZE);
done:
    memset(token, 0, sizeof token);
    return rc;
}

enum auth_scope auth_required_scope(const struct auth_policy *policy, const char *method,
                                    const char *route_pattern)
{
    for (size_t i = 0; i < sizeof public_patterns / sizeof public_patterns[0]; i++) {
        if (strcmp(route_pattern, public_patterns[i]) == 0)
            return AUTH_SCOPE_NONE;
    }
    if (policy->metrics_public && strcmp(route_pattern, "/metrics") == 0)
        return AUTH_SCOPE_NONE;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return AUTH_SCOPE_READ;
    return AUTH_SCOPE_WRITE;
}

/* Answer 401 (error: NULL = no token was sent) or 403 with the RFC 6750 challenge. */
static int challenge(struct reply *rep, int status, const char *error, enum auth_scope need,
                     const char *detail)
{
    char value[160];
    if (error == NULL)
        snprintf(value, sizeof value, "Bearer realm=\"basinlab\"");
    else if (status == 403)
        snprintf(value, sizeof value, "Bearer realm=\"basinlab\", error=\"%s\", scope=\"%s\"",
                 error, auth_scope_name(need));
    else
        snprintf(value, sizeof value, "Bearer realm=\"basinlab\", error=\"%s\"", error);
    int rc = reply_header(rep, "WWW-Authenticate", value);
    if (rc == BASIN_OK)
        rc = reply_problem(rep, status, NULL, detail, NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

/* The store could not answer: 503 (with Retry-After) when that is passing, else 500. */
static int store_failed(struct reply *rep, int src)
{
    int status = store_http_status(src);
    int rc = BASIN_OK;
    if (status != 503)
        status = 500;
    rep->log_cause = "token lookup failed in the store";
    if (status == 503)
        rc = reply_retry_after(rep, AUTH_STORE_RETRY_S);
    if (rc == BASIN_OK)
        rc = reply_problem(rep, status, NULL, "cannot check the bearer token now", NULL, 0);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

int auth_hook(void *ctx, const struct request *req, struct reply *rep)
{
    const struct auth_policy *policy = ctx;
    const char *token = NULL;
    size_t len = 0;
    char hash[AUTH_HASH_HEX_SIZE];
    struct store_api_token rec;
    enum auth_scope need = auth_required_scope(policy, req->method, req->route->pattern);
    if (need == AUTH_SCOPE_NONE)
        return BASIN_OK;
    const char *header = request_header(req, "Authorization");
    if (header == NULL)
        return challenge(rep, 401, NULL, need,
                         "this endpoint needs a token: send `Authorization: Bearer <token>` "
                         "(make one with `basinlab token create`)");
    if (auth_parse_bearer(header, &token, &len) != BASIN_OK || !auth_token_well_formed(token, len))
        return challenge(rep, 401, "invalid_token", need,
                         "the Authorization header is not `Bearer <token>` with a basinlab token");
    auth_token_hash(token, len, hash);
    int src = store_api_token_find(policy->store, hash, &rec);
    if (src == STORE_ENOTFOUND ||
        (src == STORE_OK && !auth_ct_equal(rec.secret_sha256, hash, sizeof hash - 1)))
        return challenge(rep, 401, "invalid_token", need, "the token is unknown or revoked");
    if (src != STORE_OK)
        return store_failed(rep, src);
    enum auth_scope have = AUTH_SCOPE_NONE;
    if (auth_scope_parse(rec.scope, &have) != BASIN_OK || have < need)
        return challenge(rep, 403, "insufficient_scope", need,
                         need == AUTH_SCOPE_WRITE
                             ? "this request changes data and needs a token with scope write"
                             : "this request needs a token with scope read");
    return BASIN_OK;
}
