/* struct store_run_counts (store.h) shared by both backends: the destructor, and the folding of
 * the backends' one GROUP BY (status, verdict_label, stop_reason) into the two lists of counts.
 *
 * DESIGN
 * The backends group by every outcome column in the order of the covering index
 * runs_experiment_outcome, so the database streams the groups without a sort; the groups are
 * few (statuses × labels × stop reasons actually present) and are folded here: each name is
 * appended to its list, then the list is sorted by name (strcmp, bytewise) and equal names are
 * merged by adding their counts. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

void store_run_counts_free(struct store_run_counts *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_stop_reasons; i++)
        free(c->stop_reasons[i].name);
    for (size_t i = 0; i < c->n_verdicts; i++)
        free(c->verdicts[i].name);
    free(c->stop_reasons);
    free(c->verdicts);
    free(c);
}

static int append(struct store_name_count **items, size_t *n, const char *name, int64_t count)
{
    struct store_name_count *t;
    size_t bytes;
    int rc = store__mul_size(*n + 1, sizeof **items, &bytes);
    if (rc != STORE_OK)
        goto done;
    t = realloc(*items, bytes);
    if (!t) {
        rc = STORE_ENOMEM;
        goto done;
    }
    *items = t;
    t[*n].name = NULL;
    rc = store__strdup(name, &t[*n].name);
    if (rc != STORE_OK)
        goto done;
    t[*n].count = count;
    (*n)++;
done:
    return rc;
}

int store__run_counts_add(struct store_run_counts *c, const char *stop_reason,
                          const char *verdict_label, int64_t count)
{
    int rc = STORE_OK;
    if (stop_reason)
        rc = append(&c->stop_reasons, &c->n_stop_reasons, stop_reason, count);
    if (rc == STORE_OK && verdict_label)
        rc = append(&c->verdicts, &c->n_verdicts, verdict_label, count);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct store_name_count *)a)->name,
                  ((const struct store_name_count *)b)->name);
}

static void fold(struct store_name_count *items, size_t *n)
{
    size_t out = 0;
    if (*n == 0)
        return;
    qsort(items, *n, sizeof *items, by_name);
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(items[i].name, items[out].name) == 0) {
            items[out].count += items[i].count;
            free(items[i].name);
        } else {
            items[++out] = items[i];
        }
    }
    *n = out + 1;
}

void store__run_counts_finish(struct store_run_counts *c)
{
    fold(c->stop_reasons, &c->n_stop_reasons);
    fold(c->verdicts, &c->n_verdicts);
}
