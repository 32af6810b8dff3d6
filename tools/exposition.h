/*
 * exposition.h - what `fairsem metrics` and `fairsem serve` share: the set
 * of pools they read (attached read-only, re-opened when a pool was removed
 * and created again) and the Prometheus / OpenMetrics text of that set.
 */
#ifndef FAIRSEM_EXPOSITION_H
#define FAIRSEM_EXPOSITION_H

#include <fairsem.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Per-tenant series of one pool, unless --max-tenants says otherwise. */
#define EXPOSITION_DEFAULT_MAX_TENANTS 50u

enum exposition_format {
    EXPOSITION_PROMETHEUS,  /* text format 0.0.4 (what promtool and the textfile collector read) */
    EXPOSITION_OPENMETRICS, /* OpenMetrics 1.0.0 text, ending "# EOF" */
};

/* HTTP Content-Type of each format. */
const char *exposition_content_type(enum exposition_format format);
/* The format an HTTP Accept header asks for (NULL: none sent):
 * OpenMetrics when it lists application/openmetrics-text with a q above 0
 * and at least that of text/plain (or of a wildcard), else 0.0.4. */
enum exposition_format exposition_negotiate(const char *accept);

/* One pool of a set: open (sem, err 0) or not (sem NULL, err says why;
 * exported as fairsem_up 0). */
struct exposed_pool {
    char name[FAIRSEM_NAME_MAX + 1];
    fairsem_t *sem;
    int err;
    bool named; /* given by name (kept when it fails), not found by --all */
    int said;   /* the err serve last reported on stderr (0: up) */
};

struct pool_set {
    struct exposed_pool *pools;
    size_t count, cap;
    bool all; /* also every segment `fairsem list` finds that opens */
};

/* Add a pool given by name (not opened yet); -ENOMEM. */
int pool_set_add(struct pool_set *set, const char *name);
/* Before each reading: re-open named pools that are closed, or whose
 * name was removed or now names another segment; with `all`, add the
 * segments that appeared and drop the ones that are gone. */
void pool_set_refresh(struct pool_set *set);
void pool_set_close(struct pool_set *set);

/* Write the exposition of every pool of the set; per pool, the busiest
 * max_tenants tenants get series of their own and the rest are summed
 * under tenant="__other__" (the rule is in docs/fairsem.1).
 * @return 0; -ENOMEM; -EIO (out failed). */
int exposition_write(FILE *out, const struct pool_set *set, unsigned max_tenants, enum exposition_format format);

#endif
