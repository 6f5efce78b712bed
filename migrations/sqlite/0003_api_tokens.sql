-- basinlab schema 3: the API tokens of `basinlab serve --auth tokens` (server/auth.h), made by
-- `basinlab token create` and checked on every request.
--
-- Only the SHA-256 of a token's secret is stored (64 lower-case hex digits, UNIQUE, which is
-- also the index a request is authenticated through); the secret itself is printed once by
-- `token create` and exists nowhere else. A token is never deleted, only revoked (revoked_at
-- set), so `token list` keeps the record of what existed. scope 'write' includes 'read'.
CREATE TABLE api_tokens (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
        CHECK (length(id) = 20 AND substr(id, 1, 4) = 'tok_' AND substr(id, 5) NOT GLOB '*[^0-9a-f]*'),
    name TEXT CHECK (name IS NULL OR length(CAST(name AS BLOB)) BETWEEN 1 AND 64),
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    secret_sha256 TEXT NOT NULL UNIQUE
        CHECK (length(secret_sha256) = 64 AND secret_sha256 NOT GLOB '*[^0-9a-f]*'),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER CHECK (revoked_at IS NULL OR revoked_at >= created_at)
) STRICT;
