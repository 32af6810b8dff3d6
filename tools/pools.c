/*
 * pools.c - the pools an exporter reads: attached read-only (no process
 * record, so an exporter never keeps a pool from being removed), re-opened
 * when the name was removed or now names another segment, and with --all
 * every segment `fairsem list` finds.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "exposition.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct exposed_pool *find(struct pool_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (!strcmp(set->pools[i].name, name))
            return &set->pools[i];
    return NULL;
}

static struct exposed_pool *append(struct pool_set *set, const char *name)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 8;
        struct exposed_pool *pools = realloc(set->pools, cap * sizeof *pools);
        if (!pools)
            return NULL;
        set->pools = pools;
        set->cap = cap;
    }
    struct exposed_pool *p = &set->pools[set->count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->err = -ENOENT;
    return p;
}

int pool_set_add(struct pool_set *set, const char *name)
{
    struct exposed_pool *p = find(set, name);
    if (!p && !(p = append(set, name)))
        return -ENOMEM;
    p->named = true;
    return 0;
}

/* Open p if it is closed, or re-open it if its name went elsewhere. */
static void refresh(struct exposed_pool *p)
{
    if (p->sem && fairsem_check_linked(p->sem) == 0)
        return;
    if (p->sem)
        fairsem_close(p->sem);
    p->sem = NULL;
    p->err = cli_open(p->name, true, &p->sem);
    if (p->err < 0)
        p->sem = NULL;
}

/* --all: a segment found in the directory; a new one is kept open, as
 * refresh() would open it again. */
static bool discovered(void *arg, const char *name, fairsem_t *sem, int err)
{
    struct pool_set *set = arg;
    struct exposed_pool *p;
    if (err < 0 || find(set, name) || !(p = append(set, name)))
        return false;
    p->sem = sem;
    p->err = 0;
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct exposed_pool *)a)->name, ((const struct exposed_pool *)b)->name);
}

void pool_set_refresh(struct pool_set *set)
{
    if (set->all)
        cli_each_segment(discovered, set);
    size_t kept = 0;
    for (size_t i = 0; i < set->count; i++) {
        struct exposed_pool *p = &set->pools[i];
        refresh(p);
        if (p->sem || p->named)
            set->pools[kept++] = *p; /* a pool found by --all goes with its name */
    }
    set->count = kept;
    /* Named pools first, in the order given (they were added before any
     * was discovered), then the discovered ones by name. */
    size_t named = 0;
    while (named < set->count && set->pools[named].named)
        named++;
    qsort(set->pools + named, set->count - named, sizeof *set->pools, by_name);
}

void pool_set_close(struct pool_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        fairsem_close(set->pools[i].sem);
    free(set->pools);
    memset(set, 0, sizeof *set);
}
