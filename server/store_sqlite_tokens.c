/* The API tokens of the SQLite backend (store.h, table api_tokens of migration 0003): insert,
 * find an active token by the SHA-256 of its secret, list, revoke. The secret never reaches
 * this file, only its hash (auth.c computes it). Every call is one statement or one
 * transaction on a pooled connection, as everywhere in the store. */
#include "store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#include "ids.h"

enum { SQ_TOKEN_ID_ATTEMPTS = 4 };

static int hash_ok(const char *h)
{
    return h != NULL && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

static int scope_ok(const char *scope)
{
    return strcmp(scope, "read") == 0 || strcmp(scope, "write") == 0;
}

/* Copy a short text column into a fixed buffer; STORE_ECORRUPT if it does not fit. */
static int col_fixed(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t len = t != NULL ? strlen(t) : 0;
    if (len >= cap)
        return STORE_ECORRUPT;
    memcpy(dst, t != NULL ? t : "", len + 1);
    return STORE_OK;
}

/* Columns: id, name, scope, secret_sha256, created_at, revoked_at. */
#define TOKEN_COLUMNS "id, name, scope, secret_sha256, created_at, revoked_at"

static int read_token(sqlite3_stmt *st, struct store_api_token *t)
{
    memset(t, 0, sizeof *t);
    int rc = store_sq_col_id(st, 0, t->id);
    if (rc == STORE_OK)
        rc = col_fixed(st, 1, t->name, sizeof t->name);
    if (rc == STORE_OK)
        rc = col_fixed(st, 2, t->scope, sizeof t->scope);
    if (rc == STORE_OK)
        rc = col_fixed(st, 3, t->secret_sha256, sizeof t->secret_sha256);
    t->created_at_ms = store_sq_col_int(st, 4);
    t->revoked_at_ms = store_sq_col_int(st, 5);
    return rc;
}

static int sq_token_insert_once(struct sqlite_store *ss, const struct store_api_token *t,
                                const char *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db,
                              "INSERT INTO api_tokens (id, name, scope, secret_sha256, created_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)",
                              &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, t->name[0] != '\0' ? t->name : NULL);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, t->scope);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 4, t->secret_sha256);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, store__now_ms()));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "api_token insert");
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* 1 when a token with this hash exists (revoked or not), 0 otherwise; <0 on error. */
static int hash_stored(struct sqlite_store *ss, const char *hash)
{
    sqlite3 *db = NULL;
    int exists = 0;
    int rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM api_tokens WHERE secret_sha256 = ?1", hash,
                             &exists);
    store_sq_release(ss, db);
    return rc == STORE_OK ? exists : rc;
}

int store_sq_api_token_insert(struct store *s, const struct store_api_token *t,
                              char id_out[STORE_ID_SIZE])
{
    struct sqlite_store *ss = store_sq(s);
    char id[STORE_ID_SIZE];
    int rc = STORE_EINVAL;
    if (t == NULL || !hash_ok(t->secret_sha256) || !scope_ok(t->scope) ||
        memchr(t->name, '\0', sizeof t->name) == NULL)
        goto done;
    /* a 64-bit id collides with an existing one only by a freak of chance: try a fresh id, but
     * a UNIQUE conflict on the hash itself is the caller's (the same secret twice) */
    for (int attempt = 0; attempt < SQ_TOKEN_ID_ATTEMPTS; attempt++) {
        if (ids_new(STORE_API_TOKEN_PREFIX, id, sizeof id) != 0) {
            rc = STORE_EINTERNAL;
            goto done;
        }
        rc = sq_token_insert_once(ss, t, id);
        if (rc != STORE_ECONFLICT)
            break;
        int dup = hash_stored(ss, t->secret_sha256);
        if (dup != 0) {
            rc = dup > 0 ? STORE_ECONFLICT : dup;
            break;
        }
    }
    if (rc == STORE_OK)
        memcpy(id_out, id, STORE_ID_SIZE);
done:
    return rc;
}

int store_sq_api_token_find(struct store *s, const char *secret_sha256, struct store_api_token *out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, src;
    if (!hash_ok(secret_sha256) || out == NULL)
        return STORE_EINVAL;
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db,
                              "SELECT " TOKEN_COLUMNS " FROM api_tokens "
                              "WHERE secret_sha256 = ?1 AND revoked_at IS NULL",
                              &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, secret_sha256);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "api_token find");
        goto done;
    }
    rc = read_token(st, out);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

int store_sq_api_token_list(struct store *s, struct store_api_token **items, size_t *n)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_api_token *list = NULL;
    size_t count = 0, cap = 0;
    int rc, src;
    *items = NULL;
    *n = 0;
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, "SELECT " TOKEN_COLUMNS " FROM api_tokens ORDER BY seq", &st);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t grown = cap ? 2 * cap : 16;
            size_t bytes;
            if (store__mul_size(grown, sizeof *list, &bytes) != STORE_OK) {
                rc = STORE_ENOMEM;
                goto done;
            }
            struct store_api_token *p = realloc(list, bytes);
            if (p == NULL) {
                rc = STORE_ENOMEM;
                goto done;
            }
            list = p;
            cap = grown;
        }
        rc = read_token(st, &list[count]);
        if (rc != STORE_OK)
            goto done;
        count++;
    }
    if (src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "api_token list");
        goto done;
    }
    *items = count > 0 ? list : NULL;
    *n = count;
    if (count > 0)
        list = NULL;
done:
    free(list);
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

int store_sq_api_token_revoke(struct store *s, const char *id, int *changed)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, exists = 0;
    if (id == NULL || changed == NULL)
        return STORE_EINVAL;
    *changed = 0;
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM api_tokens WHERE id = ?1", id, &exists);
    if (rc != STORE_OK)
        goto done;
    if (!exists) {
        rc = STORE_ENOTFOUND;
        goto done;
    }
    rc = store_sq_prepare(ss, db,
                          "UPDATE api_tokens SET revoked_at = max(?2, created_at) "
                          "WHERE id = ?1 AND revoked_at IS NULL",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, store__now_ms()));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "api_token revoke");
    if (rc == STORE_OK) {
        int n_changed = sqlite3_changes(db);
        rc = store_sq_commit(ss, db);
        if (rc == STORE_OK)
            *changed = n_changed > 0;
    }
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}
