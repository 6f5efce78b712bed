/* Schema migrations embedded into the binary (generated from migrations/sqlite/ at build time
 * by cmake/embed_migrations.cmake). */
#ifndef BASINLAB_MIGRATE_H
#define BASINLAB_MIGRATE_H

struct migration {
    int version;      /* NNNN of NNNN_name.sql; strictly increasing */
    const char *name; /* file name */
    const char *sql;  /* the file's text */
};

extern const struct migration basinlab_sqlite_migrations[]; /* terminated by {0, 0, 0} */
extern const int basinlab_sqlite_migration_count;

#endif
