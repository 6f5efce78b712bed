/* `basinlab token create | list | revoke` (cli_token.h). The token is generated and hashed by
 * auth.c; this file parses the command line, opens the store and prints. The secret goes to
 * stdout alone on one line, so `TOKEN=$(basinlab token create --scope read)` captures exactly
 * it, and it is never written anywhere else (not to stderr, not to the store). */
#include "cli_token.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "basin/status.h"
#include "cli_train.h"
#include "config.h"
#include "store.h"

struct token_args {
    const char *db;
    const char *scope; /* create */
    const char *name;  /* create; NULL = none */
    const char *id;    /* revoke */
};

void cli_token_usage(FILE *out)
{
    fputs("usage: basinlab token create --scope read|write [--name NAME] [--db PATH]\n"
          "       basinlab token list [--db PATH]\n"
          "       basinlab token revoke ID [--db PATH]\n"
          "  create prints the new token once, on stdout (only its SHA-256 is stored);\n"
          "  scope read allows GET and HEAD, write allows every method.\n"
          "  PATH defaults to $BASINLAB_DB, else " CONFIG_DEFAULT_DB ".\n",
          out);
}

/* Parse argv[2..argc) of one sub-command: the options it takes and, for revoke, one ID. */
static int parse_args(int argc, char **argv, int is_create, int is_revoke, struct token_args *a)
{
    memset(a, 0, sizeof *a);
    a->db = getenv("BASINLAB_DB");
    if (a->db == NULL || a->db[0] == '\0')
        a->db = CONFIG_DEFAULT_DB;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot = NULL;
        if (strcmp(arg, "--db") == 0)
            slot = &a->db;
        else if (is_create && strcmp(arg, "--scope") == 0)
            slot = &a->scope;
        else if (is_create && strcmp(arg, "--name") == 0)
            slot = &a->name;
        if (slot != NULL) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "basinlab token: %s needs a value\n", arg);
                return BASIN_EINVAL;
            }
            *slot = argv[++i];
        } else if (is_revoke && a->id == NULL && arg[0] != '-') {
            a->id = arg;
        } else {
            fprintf(stderr, "basinlab token: unexpected argument '%.64s'\n", arg);
            return BASIN_EINVAL;
        }
    }
    if (is_create && a->scope == NULL) {
        fputs("basinlab token create: --scope read|write is required\n", stderr);
        return BASIN_EINVAL;
    }
    if (is_revoke && a->id == NULL) {
        fputs("basinlab token revoke: which token? give its id (see basinlab token list)\n",
              stderr);
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

static int open_store(const char *db, struct store **out)
{
    char err[512];
    err[0] = '\0';
    int src = store_open(db, NULL, out, err, sizeof err);
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab token: cannot open the database %s: %s\n", db,
                err[0] ? err : store_strerror(src));
        return CLI_EXIT_INTERNAL;
    }
    if (!store_has_api_tokens(*out)) {
        fprintf(stderr, "basinlab token: the store at %s keeps no API tokens\n", db);
        store_close(*out);
        *out = NULL;
        return CLI_EXIT_INTERNAL;
    }
    return CLI_EXIT_OK;
}

static int token_create(const struct token_args *a, struct store *store)
{
    enum auth_scope scope = AUTH_SCOPE_NONE;
    char token[AUTH_TOKEN_SIZE];
    char id[STORE_ID_SIZE];
    int rc = CLI_EXIT_OK;
    const char *name = a->name != NULL ? a->name : "";
    if (auth_scope_parse(a->scope, &scope) != BASIN_OK) {
        fprintf(stderr, "basinlab token create: --scope '%.32s' is not read or write\n", a->scope);
        return CLI_EXIT_USAGE;
    }
    if (strlen(name) > STORE_API_TOKEN_NAME_SIZE - 1) {
        fprintf(stderr, "basinlab token create: --name may be at most %d bytes\n",
                STORE_API_TOKEN_NAME_SIZE - 1);
        return CLI_EXIT_USAGE;
    }
    int src = auth_token_create(store, scope, name, token, id);
    if (src != BASIN_OK) {
        fprintf(stderr, "basinlab token create: %s\n",
                src == BASIN_ENOTSUP  ? "the kernel gives no randomness"
                : src == BASIN_EINVAL ? "invalid scope or name"
                                      : store_strerror(src));
        rc = CLI_EXIT_INTERNAL;
        goto done;
    }
    if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "basinlab token create: cannot write the token; revoke %s\n", id);
        rc = CLI_EXIT_INTERNAL;
        goto done;
    }
    fprintf(stderr,
            "basinlab: created %s (scope %s%s%s); the token above is shown only now: "
            "send it as `Authorization: Bearer <token>`\n",
            id, auth_scope_name(scope), name[0] ? ", name " : "", name);
done:
    memset(token, 0, sizeof token);
    return rc;
}

static void format_ms(int64_t ms, char *buf, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int token_list(struct store *store)
{
    struct store_api_token *items = NULL;
    size_t n = 0;
    char created[32], revoked[32];
    int src = store_api_token_list(store, &items, &n);
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab token list: %s\n", store_strerror(src));
        return CLI_EXIT_INTERNAL;
    }
    printf("%-20s  %-5s  %-28s  %-20s  %s\n", "ID", "SCOPE", "STATE", "CREATED", "NAME");
    for (size_t i = 0; i < n; i++) {
        const struct store_api_token *t = &items[i];
        format_ms(t->created_at_ms, created, sizeof created);
        char state[40] = "active";
        if (t->revoked_at_ms != 0) {
            format_ms(t->revoked_at_ms, revoked, sizeof revoked);
            snprintf(state, sizeof state, "revoked %s", revoked);
        }
        printf("%-20s  %-5s  %-28s  %-20s  %s\n", t->id, t->scope, state, created, t->name);
    }
    free(items);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_INTERNAL;
}

static int token_revoke(const struct token_args *a, struct store *store)
{
    int changed = 0;
    int src = store_api_token_revoke(store, a->id, &changed);
    if (src == STORE_ENOTFOUND) {
        fprintf(stderr, "basinlab token revoke: no token %.64s\n", a->id);
        return CLI_EXIT_INTERNAL;
    }
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab token revoke: %s\n", store_strerror(src));
        return CLI_EXIT_INTERNAL;
    }
    fprintf(stderr, "basinlab: %s %s\n", a->id, changed ? "revoked" : "was already revoked");
    return CLI_EXIT_OK;
}

int cli_token_main(int argc, char **argv)
{
    struct token_args a;
    struct store *store = NULL;
    int status = CLI_EXIT_USAGE;
    const char *sub = argc >= 2 ? argv[1] : "";
    int is_create = strcmp(sub, "create") == 0;
    int is_list = strcmp(sub, "list") == 0;
    int is_revoke = strcmp(sub, "revoke") == 0;
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        cli_token_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!is_create && !is_list && !is_revoke) {
        fprintf(stderr, "basinlab token: unknown sub-command '%.32s'\n", sub);
        cli_token_usage(stderr);
        goto done;
    }
    if (parse_args(argc, argv, is_create, is_revoke, &a) != BASIN_OK) {
        cli_token_usage(stderr);
        goto done;
    }
    status = open_store(a.db, &store);
    if (status != CLI_EXIT_OK)
        goto done;
    if (is_create)
        status = token_create(&a, store);
    else if (is_list)
        status = token_list(store);
    else
        status = token_revoke(&a, store);
done:
    store_close(store);
    return status;
}
