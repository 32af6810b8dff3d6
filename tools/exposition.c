/*
 * exposition.c - the Prometheus text (0.0.4) and OpenMetrics 1.0 text of a
 * set of pools.
 *
 * Every pool is read once (fairsem_info, fairsem_stats, fairsem_counters),
 * then each metric family is written with the samples of every pool, as
 * both formats want a family's samples together.  The two formats differ
 * only in a counter family's name on its TYPE/HELP lines (OpenMetrics
 * names the family without "_total"), in the UNIT lines and in the final
 * "# EOF" (OpenMetrics only).  Names and units follow the Prometheus
 * conventions: base units (seconds), "_total" on counters, and the pool's
 * name as the label `pool`.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "exposition.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The label of the aggregate of the tenants without series of their own. */
#define OTHER_TENANTS "__other__"

/* A tenant's id as a label value (escaped, see label_value) and what it
 * shows; also the pool's own figures, and the sum of the folded tenants. */
struct row {
    char label[3 * FAIRSEM_TENANT_ID_MAX + 1]; /* a byte takes 3 at most */
    unsigned held, waiting, share;
    fairsem_counters_t counters;
    uint64_t oldest_wait_ns;
};

struct reading {
    const struct exposed_pool *pool;
    bool up; /* open and read */
    fairsem_stats_t stats;
    struct row total;    /* the pool's own counters (held etc. unused) */
    struct row *tenants; /* with series of their own, busiest first */
    size_t kept;
    struct row other; /* the folded tenants, summed */
    unsigned folded;  /* how many */
    size_t entries;   /* tenants with counters */
};

const char *exposition_content_type(enum exposition_format format)
{
    return format == EXPOSITION_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                            : "text/plain; version=0.0.4; charset=utf-8";
}

/* The q of one media range of an Accept header ("type/sub;q=0.5"), 1 by
 * default. */
static double accept_q(const char *range, size_t len)
{
    for (const char *p = range; p < range + len; p++) {
        if (*p != ';')
            continue;
        p++;
        while (p < range + len && *p == ' ')
            p++;
        if (p + 2 <= range + len && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
            return strtod(p + 2, NULL);
    }
    return 1.0;
}

enum exposition_format exposition_negotiate(const char *accept)
{
    double om = 0, text = 0;
    for (const char *p = accept; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        double q = accept_q(p, len);
        size_t type_len = strcspn(p, ";,");
        while (type_len && p[type_len - 1] == ' ')
            type_len--;
        if (type_len == 28 && !strncasecmp(p, "application/openmetrics-text", 28))
            om = q > om ? q : om;
        else if ((type_len == 10 && !strncasecmp(p, "text/plain", 10)) ||
                 (type_len == 6 && !strncmp(p, "text/*", 6)) || (type_len == 3 && !strncmp(p, "*/*", 3)))
            text = q > text ? q : text;
        p += len;
    }
    return om > 0 && om >= text ? EXPOSITION_OPENMETRICS : EXPOSITION_PROMETHEUS;
}

/* A tenant id as a label value, without the quotes.  Both formats want
 * UTF-8 with \, " and newline escaped.  Ids are any bytes but NUL: valid
 * UTF-8 is copied, and any other byte b is written as the character U+00bb
 * (its Latin-1 reading), as `fairsem dump --json` writes it, so an id
 * reads the same in both.  The other control characters have no escape
 * and some parsers (Python's prometheus_client) break lines at a carriage
 * return, so they are written as their Unicode control pictures (U+2409
 * for a tab, U+2421 for DEL).  Two ids can then print alike (a byte 0xe9
 * and the character U+00E9); read_pool folds the second into __other__. */
static void label_value(char *out, const char *id)
{
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        int n;
        if (*p == '\\' || *p == '"') {
            *out++ = '\\';
            *out++ = (char)*p;
        } else if (*p == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (*p < 0x20 || *p == 0x7f) {
            unsigned picture = 0x2400 + (*p == 0x7f ? 0x21u : *p);
            *out++ = (char)(0xe0 | picture >> 12);
            *out++ = (char)(0x80 | (picture >> 6 & 0x3f));
            *out++ = (char)(0x80 | (picture & 0x3f));
        } else if (*p < 0x80) {
            *out++ = (char)*p;
        } else if ((n = cli_utf8_length(p)) > 0) {
            memcpy(out, p, (size_t)n);
            out += n;
            p += n - 1;
        } else {
            *out++ = (char)(0xc0 | *p >> 6);
            *out++ = (char)(0x80 | (*p & 0x3f));
        }
    }
    *out = '\0';
}

static void add_counters(fairsem_counters_t *sum, const fairsem_counters_t *c)
{
    sum->grants_immediate += c->grants_immediate;
    sum->grants_waited += c->grants_waited;
    sum->timeouts += c->timeouts;
    sum->cancels += c->cancels;
    sum->reclaimed_slots += c->reclaimed_slots;
    sum->reclaimed_requests += c->reclaimed_requests;
    sum->held_ns += c->held_ns;
    sum->wait_ns += c->wait_ns;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++)
        sum->wait_buckets[k] += c->wait_buckets[k];
}

static void add_row(struct row *sum, const struct row *r)
{
    sum->held += r->held;
    sum->waiting += r->waiting;
    sum->share += r->share;
    add_counters(&sum->counters, &r->counters);
    if (r->oldest_wait_ns > sum->oldest_wait_ns)
        sum->oldest_wait_ns = r->oldest_wait_ns;
}

/* One tenant while ranking: its row and its id (ranks break ties). */
struct ranked {
    struct row row;
    const char *id;
};

static uint64_t grants(const struct row *r) { return r->counters.grants_immediate + r->counters.grants_waited; }

/* Busiest first: held + waiting, then grants, then the id's bytes. */
static int by_activity(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    unsigned bx = x->row.held + x->row.waiting, by = y->row.held + y->row.waiting;
    if (bx != by)
        return bx > by ? -1 : 1;
    if (grants(&x->row) != grants(&y->row))
        return grants(&x->row) > grants(&y->row) ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int by_stats_id(const void *a, const void *b)
{
    return strcmp(((const fairsem_tenant_stats_t *)a)->id, ((const fairsem_tenant_stats_t *)b)->id);
}

/* Read one open pool: its figures, and its tenants ranked and capped. */
static int read_pool(struct reading *r, unsigned max_tenants)
{
    fairsem_t *sem = r->pool->sem;
    fairsem_info_t info;
    int rc = fairsem_info(sem, &info);
    if (rc < 0)
        return rc;
    size_t cap = info.max_tenants, nstats = 0, ncounters = 0;
    fairsem_tenant_stats_t *stats = calloc(cap, sizeof *stats);
    fairsem_tenant_counters_t *counters = calloc(cap, sizeof *counters);
    struct ranked *ranked = calloc(cap, sizeof *ranked);
    r->tenants = calloc(cap, sizeof *r->tenants);
    rc = -ENOMEM;
    if (!stats || !counters || !ranked || !r->tenants)
        goto out;
    if ((rc = fairsem_stats(sem, &r->stats, stats, cap, &nstats)) < 0 ||
        (rc = fairsem_counters(sem, &r->total.counters, &r->total.oldest_wait_ns, counters, cap, &ncounters)) < 0)
        goto out;
    nstats = nstats < cap ? nstats : cap;
    ncounters = ncounters < cap ? ncounters : cap;
    r->entries = ncounters;
    /* Every tenant with counters; held, waiting and share from the stats,
     * which list only registered or waiting tenants (0 for the others). */
    qsort(stats, nstats, sizeof *stats, by_stats_id);
    for (size_t k = 0; k < ncounters; k++) {
        struct ranked *t = &ranked[k];
        t->id = counters[k].id;
        t->row.counters = counters[k].counters;
        t->row.oldest_wait_ns = counters[k].oldest_wait_ns;
        fairsem_tenant_stats_t key, *s;
        memcpy(key.id, counters[k].id, sizeof key.id);
        if ((s = bsearch(&key, stats, nstats, sizeof *stats, by_stats_id))) {
            t->row.held = s->held;
            t->row.waiting = s->waiting;
            t->row.share = s->share;
        }
        label_value(t->row.label, t->id);
    }
    qsort(ranked, ncounters, sizeof *ranked, by_activity);
    /* The first max_tenants get series of their own, unless their label
     * is "__other__" or one already taken (ids that are not UTF-8 can
     * print alike): those are folded with the rest, so that no two series
     * have the same labels. */
    for (size_t k = 0; k < ncounters; k++) {
        bool fold = r->kept >= max_tenants || !strcmp(ranked[k].row.label, OTHER_TENANTS);
        for (size_t j = 0; j < r->kept && !fold; j++)
            fold = !strcmp(r->tenants[j].label, ranked[k].row.label);
        if (fold) {
            add_row(&r->other, &ranked[k].row);
            r->folded++;
        } else {
            r->tenants[r->kept++] = ranked[k].row;
        }
    }
    strcpy(r->other.label, OTHER_TENANTS);
    rc = 0;
out:
    free(stats);
    free(counters);
    free(ranked);
    return rc;
}

/* ------------------------------------------------------------- families */

enum family_type { GAUGE, COUNTER, HISTOGRAM, SUMMARY };
/* struct family.flags */
#define SECONDS 0x1u    /* values are ns, written as seconds (unit "seconds") */
#define PER_TENANT 0x2u /* one sample per tenant row, else one per pool */
#define DOWN_TOO 0x4u   /* also sampled for a pool that could not be read */

typedef uint64_t value_fn(const struct reading *r, const struct row *row, unsigned variant);

struct family {
    const char *name; /* the family, without "_total" */
    enum family_type type;
    unsigned flags;
    const char *label;       /* a label of its own, or NULL */
    const char *variants[2]; /* that label's values */
    value_fn *value;         /* gauges and counters */
    const char *help;
};

/* A family's row in families[], without a label of its own or with one. */
#define FAMILY(name, type, flags, value, help)             \
    {                                                      \
        name, type, flags, NULL, {NULL, NULL}, value, help \
    }
#define FAMILY_BY(name, type, flags, label, v0, v1, value, help) \
    {                                                            \
        name, type, flags, label, {v0, v1}, value, help          \
    }

/* The value of a family for one pool (r) and one row (the pool's own or a
 * tenant's), `variant` picking the value of its own label. */
#define VALUE_OF(name, expr)                                                                    \
    static uint64_t name##_of(const struct reading *r, const struct row *row, unsigned variant) \
    {                                                                                           \
        (void)r, (void)row, (void)variant;                                                      \
        return (expr);                                                                          \
    }
VALUE_OF(up, r->up)
VALUE_OF(slots, variant ? r->stats.slots_available : r->stats.slots_in_use)
VALUE_OF(waiting, row == &r->total ? r->stats.waiters : row->waiting)
VALUE_OF(demanding, r->stats.demanding_tenants)
VALUE_OF(registered, r->stats.registered_tenants)
VALUE_OF(procs, r->stats.attached_procs)
VALUE_OF(entries, r->entries)
VALUE_OF(folded, r->folded)
VALUE_OF(oldest_wait, row->oldest_wait_ns)
VALUE_OF(held, row->held)
VALUE_OF(share, row->share)
VALUE_OF(grants, variant ? row->counters.grants_waited : row->counters.grants_immediate)
VALUE_OF(timeouts, row->counters.timeouts)
VALUE_OF(cancels, row->counters.cancels)
VALUE_OF(reclaimed_slots, row->counters.reclaimed_slots)
VALUE_OF(reclaimed_requests, row->counters.reclaimed_requests)
VALUE_OF(held_ns, row->counters.held_ns)

static const struct family families[] = {
    FAMILY("fairsem_up", GAUGE, DOWN_TOO, up_of,
           "1 if the pool could be read, 0 if not (missing, incompatible, no permission)"),
    FAMILY_BY("fairsem_slots", GAUGE, 0, "state", "in_use", "free", slots_of, "Slots of the pool, by state"),
    FAMILY("fairsem_waiting_requests", GAUGE, 0, waiting_of, "Queued requests not yet granted"),
    FAMILY("fairsem_demanding_tenants", GAUGE, 0, demanding_of,
           "Tenants holding or waiting for slots: the divisor of the shares"),
    FAMILY("fairsem_registered_tenants", GAUGE, 0, registered_of, "Tenants some process has registered"),
    FAMILY("fairsem_attached_processes", GAUGE, 0, procs_of,
           "Process records in use (read-only readers take none)"),
    FAMILY("fairsem_oldest_wait_seconds", GAUGE, SECONDS, oldest_wait_of,
           "Age of the oldest waiting request, 0 if none waits"),
    FAMILY("fairsem_tenant_entries", GAUGE, 0, entries_of, "Tenants with counters (entries in the tenant table)"),
    FAMILY("fairsem_folded_tenants", GAUGE, 0, folded_of,
           "Tenants without series of their own, summed under tenant __other__"),
    FAMILY_BY("fairsem_grants", COUNTER, 0, "kind", "immediate", "waited", grants_of,
              "Slots granted: at once, or to a queued request"),
    FAMILY("fairsem_timeouts", COUNTER, 0, timeouts_of, "Queued requests whose deadline passed"),
    FAMILY("fairsem_cancels", COUNTER, 0, cancels_of, "Queued requests cancelled"),
    FAMILY("fairsem_reclaimed_slots", COUNTER, 0, reclaimed_slots_of, "Slots taken back from dead processes"),
    FAMILY("fairsem_reclaimed_requests", COUNTER, 0, reclaimed_requests_of,
           "Queued requests of dead processes dropped"),
    FAMILY("fairsem_held_seconds", COUNTER, SECONDS, held_ns_of,
           "Slot-seconds of the holds that ended (released or reclaimed)"),
    FAMILY("fairsem_wait_seconds", HISTOGRAM, SECONDS, NULL,
           "Waits of the queued requests that were granted, from queueing to grant"),
    FAMILY("fairsem_tenant_held_slots", GAUGE, PER_TENANT, held_of, "Slots the tenant holds"),
    FAMILY("fairsem_tenant_share_slots", GAUGE, PER_TENANT, share_of,
           "Slots the tenant is entitled to now (its fair share)"),
    FAMILY("fairsem_tenant_waiting_requests", GAUGE, PER_TENANT, waiting_of,
           "Queued requests of the tenant not yet granted"),
    FAMILY("fairsem_tenant_oldest_wait_seconds", GAUGE, SECONDS | PER_TENANT, oldest_wait_of,
           "Age of the tenant's oldest waiting request, 0 if none (__other__: the oldest of all)"),
    FAMILY_BY("fairsem_tenant_grants", COUNTER, PER_TENANT, "kind", "immediate", "waited", grants_of,
              "Slots granted to the tenant: at once, or to a queued request"),
    FAMILY("fairsem_tenant_timeouts", COUNTER, PER_TENANT, timeouts_of,
           "Queued requests of the tenant whose deadline passed"),
    FAMILY("fairsem_tenant_cancels", COUNTER, PER_TENANT, cancels_of, "Queued requests of the tenant cancelled"),
    FAMILY("fairsem_tenant_reclaimed_slots", COUNTER, PER_TENANT, reclaimed_slots_of,
           "Slots of the tenant taken back from dead processes"),
    FAMILY("fairsem_tenant_reclaimed_requests", COUNTER, PER_TENANT, reclaimed_requests_of,
           "Queued requests of the tenant dropped with their dead process"),
    FAMILY("fairsem_tenant_held_seconds", COUNTER, SECONDS | PER_TENANT, held_ns_of,
           "Slot-seconds of the tenant's holds that ended"),
    FAMILY("fairsem_tenant_wait_seconds", SUMMARY, SECONDS | PER_TENANT, NULL,
           "Waits of the tenant's granted queued requests (count and sum: the mean)"),
};

/* ns as seconds, exactly: "1.5", "0.000002", "3". */
static void write_seconds(FILE *out, uint64_t ns)
{
    char frac[16];
    int n = snprintf(frac, sizeof frac, "%09" PRIu64, ns % 1000000000u);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    fprintf(out, "%" PRIu64 "%s%s", ns / 1000000000u, n ? "." : "", frac);
}

/* One sample line: NAME{pool="P"[,tenant="T"][,EXTRA]} VALUE */
static void write_sample(FILE *out, const struct family *f, const char *suffix, const struct reading *r,
                         const struct row *row, const char *extra, uint64_t value, bool seconds)
{
    fprintf(out, "%s%s{pool=\"", f->name, suffix);
    /* Pool names are the segment's name: '/' then bytes, maybe any. */
    char pool[3 * FAIRSEM_NAME_MAX + 1];
    label_value(pool, r->pool->name);
    fputs(pool, out);
    fputc('"', out);
    if (f->flags & PER_TENANT)
        fprintf(out, ",tenant=\"%s\"", row->label);
    if (extra)
        fprintf(out, ",%s", extra);
    fputs("} ", out);
    if (seconds)
        write_seconds(out, value);
    else
        fprintf(out, "%" PRIu64, value);
    fputc('\n', out);
}

/* A histogram (cumulative buckets from the non-cumulative counts) or a
 * summary without quantiles (count and sum).  _count is the sum of the
 * buckets read, so that it always matches the +Inf bucket. */
static void write_distribution(FILE *out, const struct family *f, const struct reading *r, const struct row *row)
{
    const fairsem_counters_t *c = &row->counters;
    uint64_t cumulative = 0;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++) {
        cumulative += c->wait_buckets[k];
        if (f->type != HISTOGRAM)
            continue;
        uint64_t bound = fairsem_wait_bucket_bound_ns(k);
        char le[48];
        if (bound == UINT64_MAX)
            snprintf(le, sizeof le, "le=\"+Inf\"");
        else
            snprintf(le, sizeof le, "le=\"%.9g\"", (double)bound / 1e9);
        write_sample(out, f, "_bucket", r, row, le, cumulative, false);
    }
    write_sample(out, f, "_count", r, row, NULL, cumulative, false);
    write_sample(out, f, "_sum", r, row, NULL, c->wait_ns, true);
}

static void write_family(FILE *out, const struct family *f, const struct reading *readings, size_t n,
                         enum exposition_format format)
{
    static const char *types[] = {"gauge", "counter", "histogram", "summary"};
    bool om = format == EXPOSITION_OPENMETRICS;
    /* 0.0.4 names a counter family by its samples' name. */
    const char *suffix = f->type == COUNTER && !om ? "_total" : "";
    fprintf(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", f->name, suffix, f->help, f->name, suffix, types[f->type]);
    if (om && (f->flags & SECONDS))
        fprintf(out, "# UNIT %s seconds\n", f->name);
    for (size_t i = 0; i < n; i++) {
        const struct reading *r = &readings[i];
        if (!r->up && !(f->flags & DOWN_TOO))
            continue;
        size_t rows = (f->flags & PER_TENANT) ? r->kept + (r->folded > 0) : 1;
        for (size_t k = 0; k < rows; k++) {
            const struct row *row = !(f->flags & PER_TENANT) ? &r->total
                                    : k < r->kept            ? &r->tenants[k]
                                                             : &r->other;
            if (f->type == HISTOGRAM || f->type == SUMMARY) {
                write_distribution(out, f, r, row);
                continue;
            }
            for (unsigned v = 0; v < (f->label ? 2u : 1u); v++) {
                char extra[64];
                if (f->label)
                    snprintf(extra, sizeof extra, "%s=\"%s\"", f->label, f->variants[v]);
                write_sample(out, f, f->type == COUNTER ? "_total" : "", r, row, f->label ? extra : NULL,
                             f->value(r, row, v), (f->flags & SECONDS));
            }
        }
    }
}

int exposition_write(FILE *out, const struct pool_set *set, unsigned max_tenants, enum exposition_format format)
{
    struct reading *readings = calloc(set->count ? set->count : 1, sizeof *readings);
    if (!readings)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < set->count && rc != -ENOMEM; i++) {
        readings[i].pool = &set->pools[i];
        rc = set->pools[i].sem ? read_pool(&readings[i], max_tenants) : -ENOENT;
        readings[i].up = rc == 0;
    }
    rc = rc == -ENOMEM ? rc : 0;
    if (rc == 0) {
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
            write_family(out, &families[f], readings, set->count, format);
        if (format == EXPOSITION_OPENMETRICS)
            fputs("# EOF\n", out);
        if (ferror(out))
            rc = -EIO;
    }
    for (size_t i = 0; i < set->count; i++)
        free(readings[i].tenants);
    free(readings);
    return rc;
}
