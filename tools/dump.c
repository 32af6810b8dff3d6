/*
 * dump.c - `fairsem dump`: the segment at a glance, as tables or JSON,
 * once or refreshed (--watch).
 *
 * JSON schema "fairsem-dump" version 2 is documented in docs/fairsem.1;
 * add fields freely, but bump the version when a field changes meaning or
 * goes away (or, as version 2 did with the counters, when readers should
 * know they may rely on new ones: every version 1 field stays).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DUMP_SCHEMA_VERSION 2

static volatile sig_atomic_t stop_watch;
static void on_interrupt(int sig)
{
    (void)sig;
    stop_watch = 1;
}

/* JSON string.  Tenant ids are bytes other than NUL: valid UTF-8 is copied,
 * any other byte b >= 0x80 is written as \u00bb (documented in fairsem(1)),
 * so the output is always valid JSON. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int n;
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (*p < 0x80) {
            fputc(*p, out);
        } else if ((n = cli_utf8_length(p)) > 0) {
            fwrite(p, 1, (size_t)n, out);
            p += n - 1;
        } else {
            fprintf(out, "\\u%04x", *p);
        }
    }
    fputc('"', out);
}

static const char *state_name(int state)
{
    switch (state) {
    case FAIRSEM_REQUEST_WAITING: return "waiting";
    case FAIRSEM_REQUEST_GRANTED: return "granted";
    case FAIRSEM_REQUEST_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

/* --watch fits an 80x24 terminal: each table shows at most this many rows,
 * its last row saying "... N more" when there are more. */
#define WATCH_WIDTH 80
#define WATCH_TENANT_ROWS 4
#define WATCH_HOLDER_ROWS 4
#define WATCH_WAITER_ROWS 3
#define WATCH_PROC_ROWS 2
/* Columns of a tenant's bar (held against share) under --watch. */
#define WATCH_BAR_CELLS 20

struct printer {
    FILE *out;
    bool json;
    bool first;
    unsigned limit;                                    /* table rows to show (0: all) */
    unsigned total;                                    /* table rows seen */
    char kept[WATCH_TENANT_ROWS][4 * WATCH_WIDTH + 1]; /* the largest of the WATCH_*_ROWS; UTF-8 */
};

/* One table row: printed at once, or kept until end_table() when limited. */
static void table_row(struct printer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void table_row(struct printer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!p->limit) {
        vfprintf(p->out, fmt, ap);
    } else if (p->total < p->limit) {
        vsnprintf(p->kept[p->total], sizeof p->kept[0], fmt, ap);
        p->kept[p->total][strcspn(p->kept[p->total], "\n")] = '\0';
    }
    va_end(ap);
    p->total++;
}

static void start_table(struct printer *p, unsigned limit)
{
    p->limit = limit;
    p->total = 0;
}

static void end_table(struct printer *p)
{
    if (!p->limit)
        return;
    unsigned shown = p->total <= p->limit ? p->total : p->limit - 1;
    for (unsigned k = 0; k < shown; k++)
        fprintf(p->out, "%s\n", p->kept[k]);
    if (shown < p->total)
        fprintf(p->out, "\u2026 %u more\n", p->total - shown);
}

static void sep(struct printer *p)
{
    if (!p->first)
        fputc(',', p->out);
    p->first = false;
}

/* Tenant ids are cut to their column under --watch. */
static int id_width(const struct printer *p) { return p->limit ? 24 : FAIRSEM_TENANT_ID_MAX; }

static void print_proc(void *arg, const fairsem_proc_info_t *i)
{
    struct printer *p = arg;
    if (p->json) {
        sep(p);
        fprintf(p->out, "{\"record\":%u,\"pid\":%d,\"alive\":%s}", i->record, i->pid, i->alive ? "true" : "false");
    } else {
        table_row(p, "%-7u %-8d %s\n", i->record, i->pid, i->alive ? "yes" : "NO (reapable)");
    }
}

static void print_holder(void *arg, const fairsem_holder_info_t *i)
{
    struct printer *p = arg;
    if (p->json) {
        sep(p);
        fprintf(p->out, "{\"slot\":%u,\"tenant\":", i->slot);
        json_string(p->out, i->tenant);
        fprintf(p->out, ",\"pid\":%d,\"held_ms\":%llu,\"alive\":%s,\"granted\":%s}", i->pid,
                (unsigned long long)(i->held_ns / 1000000), i->alive ? "true" : "false",
                i->granted ? "true" : "false");
    } else {
        table_row(p, "%-5u %-24.*s %-8d %8.1fs %s%s\n", i->slot, id_width(p), i->tenant, i->pid, i->held_ns / 1e9,
                  i->alive ? "yes" : "NO", i->granted ? " (granted, not yet taken)" : "");
    }
}

static void print_waiter(void *arg, const fairsem_waiter_info_t *i)
{
    struct printer *p = arg;
    if (p->json) {
        sep(p);
        fprintf(p->out, "{\"ticket\":%llu,\"tenant\":", (unsigned long long)i->ticket);
        json_string(p->out, i->tenant);
        fprintf(p->out, ",\"pid\":%d,\"age_ms\":%llu,\"state\":\"%s\",\"alive\":%s}", i->pid,
                (unsigned long long)(i->age_ns / 1000000), state_name(i->state), i->alive ? "true" : "false");
    } else {
        table_row(p, "%-8llu %-24.*s %-8d %8.1fs %s%s\n", (unsigned long long)i->ticket, id_width(p), i->tenant,
                  i->pid, i->age_ns / 1e9, state_name(i->state), i->alive ? "" : " (dead)");
    }
}

/* --watch: the tenant's bar, WATCH_BAR_CELLS wide, standing for
 * max(held, share) slots: held within the share is full (U+2588), held
 * beyond it (slots lent by a work-conserving pool) dark shade (U+2593),
 * the share not held light shade (U+2591).  A tenant that holds anything
 * gets at least one full cell. */
static void share_bar(char *out, unsigned held, unsigned share)
{
    unsigned total = held > share ? held : share, within = held < share ? held : share;
    unsigned full = total ? (within * WATCH_BAR_CELLS + total / 2) / total : 0;
    unsigned lent = total ? ((held - within) * WATCH_BAR_CELLS + total / 2) / total : 0;
    if (within && !full)
        full = 1;
    if (full + lent > WATCH_BAR_CELLS)
        lent = WATCH_BAR_CELLS - full;
    out[0] = '\0';
    for (unsigned k = 0; k < WATCH_BAR_CELLS; k++)
        strcat(out, k < full ? "\u2588" : k < full + lent ? "\u2593" : "\u2591");
}

/* The q-quantile of the waits in the pool's histogram, estimated as
 * Prometheus' histogram_quantile() does: find the bucket that holds the
 * rank q * count, and interpolate linearly between its bounds (0 below the
 * first).  Waits past the last finite bound (100 s) give UINT64_MAX. */
static uint64_t wait_quantile_ns(const fairsem_counters_t *c, double q)
{
    uint64_t count = 0, below = 0;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++)
        count += c->wait_buckets[k];
    double rank = q * (double)count;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++) {
        uint64_t n = c->wait_buckets[k];
        if (n == 0 || (double)(below + n) < rank) {
            below += n;
            continue;
        }
        uint64_t lo = k ? fairsem_wait_bucket_bound_ns(k - 1) : 0, hi = fairsem_wait_bucket_bound_ns(k);
        if (hi == UINT64_MAX)
            return UINT64_MAX;
        return lo + (uint64_t)((double)(hi - lo) * (rank - (double)below) / (double)n);
    }
    return 0;
}

/* "850µs", "12.5ms", "3.20s", ">100s". */
static void format_wait(char *out, size_t cap, uint64_t ns)
{
    if (ns == UINT64_MAX)
        snprintf(out, cap, ">%.0fs", fairsem_wait_bucket_bound_ns(FAIRSEM_WAIT_BUCKETS - 2) / 1e9);
    else if (ns < 1000000)
        snprintf(out, cap, "%.0f\u00b5s", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(out, cap, "%.1fms", ns / 1e6);
    else
        snprintf(out, cap, "%.2fs", ns / 1e9);
}

/* Holding or waiting most first. */
static int by_demand(const void *a, const void *b)
{
    const fairsem_tenant_stats_t *x = a, *y = b;
    unsigned dx = x->held + x->waiting, dy = y->held + y->waiting;
    return dx == dy ? strcmp(x->id, y->id) : dx > dy ? -1 : 1;
}

/* --watch: the wait quantiles and what came of the queued requests. */
static void print_waits(FILE *out, fairsem_t *sem)
{
    fairsem_counters_t c;
    uint64_t oldest = 0;
    if (fairsem_counters(sem, &c, &oldest, NULL, 0, NULL) < 0)
        return;
    char oldest_text[24];
    format_wait(oldest_text, sizeof oldest_text, oldest);
    if (c.grants_waited == 0) {
        fprintf(out, "waits: none granted yet  timeouts %llu  oldest %s\n", (unsigned long long)c.timeouts,
                oldest ? oldest_text : "-");
        return;
    }
    static const double qs[] = {0.5, 0.9, 0.99};
    char q[3][24];
    for (int k = 0; k < 3; k++)
        format_wait(q[k], sizeof q[k], wait_quantile_ns(&c, qs[k]));
    fprintf(out, "waits p50 %s  p90 %s  p99 %s  of %llu  timeouts %llu  oldest %s\n", q[0], q[1], q[2],
            (unsigned long long)c.grants_waited, (unsigned long long)c.timeouts, oldest ? oldest_text : "-");
}

static void json_counters(FILE *out, const fairsem_counters_t *c)
{
    fprintf(out,
            "{\"grants_immediate\":%llu,\"grants_waited\":%llu,\"timeouts\":%llu,\"cancels\":%llu,"
            "\"reclaimed_slots\":%llu,\"reclaimed_requests\":%llu,\"held_ns\":%llu,\"wait_ns\":%llu,"
            "\"wait_buckets\":[",
            (unsigned long long)c->grants_immediate, (unsigned long long)c->grants_waited,
            (unsigned long long)c->timeouts, (unsigned long long)c->cancels,
            (unsigned long long)c->reclaimed_slots, (unsigned long long)c->reclaimed_requests,
            (unsigned long long)c->held_ns, (unsigned long long)c->wait_ns);
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++)
        fprintf(out, "%s%llu", k ? "," : "", (unsigned long long)c->wait_buckets[k]);
    fputs("]}", out);
}

/* bsearch: the id `key` against a tenant's counters. */
static int id_vs_counters(const void *key, const void *elem)
{
    return strcmp(key, ((const fairsem_tenant_counters_t *)elem)->id);
}

/* qsort: tenants' counters by id. */
static int counters_by_id(const void *a, const void *b)
{
    return id_vs_counters(((const fairsem_tenant_counters_t *)a)->id, b);
}

/* The counters part of the JSON object: the histogram's bounds, the pool's
 * counters and oldest wait; tenant counters sorted by id into tc[] (*ntc). */
static void json_pool_counters(FILE *out, fairsem_t *sem, fairsem_tenant_counters_t *tc, size_t cap, size_t *ntc)
{
    fairsem_counters_t pool = {0};
    uint64_t oldest = 0;
    *ntc = 0;
    fairsem_counters(sem, &pool, &oldest, tc, cap, ntc);
    if (*ntc > cap)
        *ntc = cap;
    qsort(tc, *ntc, sizeof *tc, counters_by_id);
    fputs(",\"wait_bucket_bounds_ns\":[", out);
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS - 1; k++)
        fprintf(out, "%s%llu", k ? "," : "", (unsigned long long)fairsem_wait_bucket_bound_ns(k));
    fprintf(out, ",null],\"oldest_wait_seconds\":%.6f,\"counters\":", oldest / 1e9);
    json_counters(out, &pool);
}

static int dump_once(const char *name, fairsem_t *sem, bool json, bool watch, FILE *out)
{
    fairsem_info_t info;
    fairsem_stats_t st;
    fairsem_info(sem, &info);
    fairsem_tenant_stats_t *tenants = calloc(info.max_tenants, sizeof *tenants);
    fairsem_tenant_counters_t *counted = json ? calloc(info.max_tenants, sizeof *counted) : NULL;
    if (!tenants || (json && !counted)) {
        free(tenants);
        return cli_fail(name, -ENOMEM);
    }
    size_t ncounted = 0;
    size_t count = 0;
    fairsem_stats(sem, &st, tenants, info.max_tenants, &count);
    if (count > info.max_tenants)
        count = info.max_tenants;
    if (watch && !json) /* the rows that fit: the busiest */
        qsort(tenants, count, sizeof *tenants, by_demand);
    struct printer p = {.out = out, .json = json, .first = true};
    fairsem_dump_ops_t procs = {.proc = print_proc}, holders = {.holder = print_holder},
                       waiters = {.waiter = print_waiter};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (json) {
        fprintf(out, "{\"schema\":\"fairsem-dump\",\"version\":%d,\"name\":", DUMP_SCHEMA_VERSION);
        json_string(out, name);
        fprintf(out, ",\"time_ms\":%lld,\"layout_version\":%u,\"max_slots\":%u,\"min_share\":%u,\"rule\":",
                (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, info.layout_version, info.max_slots,
                info.min_share);
        json_string(out, info.rule_name);
        fprintf(out,
                ",\"work_conserving\":%s,\"strict_fifo\":%s,\"in_use\":%u,\"free\":%u,\"waiting\":%u,\"demanding_"
                "tenants\":%u,"
                "\"registered_tenants\":%u,\"procs\":[",
                (info.flags & FAIRSEM_WORK_CONSERVING) ? "true" : "false",
                (info.flags & FAIRSEM_STRICT_FIFO) ? "true" : "false", st.slots_in_use, st.slots_available,
                st.waiters, st.demanding_tenants, st.registered_tenants);
        fairsem_dump(sem, &procs, &p);
        fputs("]", out);
        json_pool_counters(out, sem, counted, info.max_tenants, &ncounted);
        fputs(",\"tenants\":[", out);
        for (size_t k = 0; k < count; k++) {
            fprintf(out, "%s{\"id\":", k ? "," : "");
            json_string(out, tenants[k].id);
            fprintf(out, ",\"weight\":%u,\"share\":%u,\"held\":%u,\"waiting\":%u,\"registrations\":%u",
                    tenants[k].weight, tenants[k].share, tenants[k].held, tenants[k].waiting,
                    tenants[k].registrations);
            const fairsem_tenant_counters_t *mine =
                bsearch(tenants[k].id, counted, ncounted, sizeof *counted, id_vs_counters);
            const fairsem_tenant_counters_t none = {.oldest_wait_ns = 0};
            fprintf(out,
                    ",\"oldest_wait_seconds\":%.6f,\"counters\":", (mine ? mine : &none)->oldest_wait_ns / 1e9);
            json_counters(out, &(mine ? mine : &none)->counters);
            fputc('}', out);
        }
        fputs("],\"holders\":[", out);
        p.first = true;
        fairsem_dump(sem, &holders, &p);
        fputs("],\"waiters\":[", out);
        p.first = true;
        fairsem_dump(sem, &waiters, &p);
        fputs("]}\n", out);
    } else {
        if (watch) {
            char when[32];
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&now.tv_sec, &(struct tm){0}));
            fprintf(out, "%.58s  %s\n", name, when);
            fprintf(out, "slots %u  in use %u  free %u  waiters %u  demanding %u  procs %u\n", info.max_slots,
                    st.slots_in_use, st.slots_available, st.waiters, st.demanding_tenants, st.attached_procs);
            print_waits(out, sem);
        } else {
            fprintf(out, "%s  layout %u  slots %u  in use %u  free %u  waiters %u  demanding tenants %u\n", name,
                    info.layout_version, info.max_slots, st.slots_in_use, st.slots_available, st.waiters,
                    st.demanding_tenants);
            fprintf(out, "min share %u  rule %s  work-conserving %s  strict-fifo %s  processes %u\n\n",
                    info.min_share, info.rule_name[0] ? info.rule_name : "built-in",
                    (info.flags & FAIRSEM_WORK_CONSERVING) ? "yes" : "no",
                    (info.flags & FAIRSEM_STRICT_FIFO) ? "yes" : "no", st.attached_procs);
        }
        if (watch)
            fprintf(out, "%-24s %-*s %11s %8s\n", "TENANT", WATCH_BAR_CELLS, "HELD vs SHARE", "HELD/SHARE",
                    "WAITING");
        else
            fprintf(out, "%-24s %6s %6s %6s %8s\n", "TENANT", "WEIGHT", "SHARE", "HELD", "WAITING");
        start_table(&p, watch ? WATCH_TENANT_ROWS : 0);
        for (size_t k = 0; k < count; k++) {
            char bar[4 * WATCH_BAR_CELLS + 1];
            if (watch) {
                share_bar(bar, tenants[k].held, tenants[k].share);
                table_row(&p, "%-24.*s %s %5u/%-5u %8u\n", id_width(&p), tenants[k].id, bar, tenants[k].held,
                          tenants[k].share, tenants[k].waiting);
            } else {
                table_row(&p, "%-24.*s %6u %6u %6u %8u%s\n", id_width(&p), tenants[k].id, tenants[k].weight,
                          tenants[k].share, tenants[k].held, tenants[k].waiting,
                          tenants[k].held >= tenants[k].share && tenants[k].share ? "  at share" : "");
            }
        }
        end_table(&p);
        fprintf(out, "\n%-5s %-24s %-8s %9s %s\n", "SLOT", "TENANT", "PID", "SINCE", "ALIVE");
        start_table(&p, watch ? WATCH_HOLDER_ROWS : 0);
        fairsem_dump(sem, &holders, &p);
        end_table(&p);
        fprintf(out, "\n%-8s %-24s %-8s %9s %s\n", "TICKET", "TENANT", "PID", "AGE", "STATE");
        start_table(&p, watch ? WATCH_WAITER_ROWS : 0);
        fairsem_dump(sem, &waiters, &p);
        end_table(&p);
        fprintf(out, "\n%-7s %-8s %s\n", "RECORD", "PID", "ALIVE");
        start_table(&p, watch ? WATCH_PROC_ROWS : 0);
        fairsem_dump(sem, &procs, &p);
        end_table(&p);
    }
    free(tenants);
    free(counted);
    return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
    static const char *help = "usage: fairsem dump NAME [--json] [--watch[=SECONDS]]\n"
                              "Show the segment: header, tenants (TENANT WEIGHT SHARE HELD WAITING), holders\n"
                              "(SLOT TENANT PID SINCE ALIVE), waiters (TICKET TENANT PID AGE STATE) and\n"
                              "processes.  Needs only read permission.  --json prints one object (schema\n"
                              "\"fairsem-dump\" version 2, see fairsem(1)); --watch refreshes every SECONDS\n"
                              "(default 1) until interrupted, one JSON object per line with --json; the\n"
                              "tables then show the time, the wait quantiles (p50 p90 p99, estimated from\n"
                              "the wait histogram) and a bar per tenant of its slots against its share,\n"
                              "and fit an 80x24 terminal (long ones end with \"... N more\", tenant ids\n"
                              "are cut to 24 bytes).\n";
    bool json = false, watch = false;
    double interval = 1.0;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--watch")) {
            watch = true;
        } else if (!strncmp(argv[i], "--watch=", 8)) {
            watch = true;
            if (!cli_parse_seconds(argv[i] + 8, &interval) || interval <= 0)
                return cli_usage("dump", help, "--watch='%s' is not a number of seconds above 0", argv[i] + 8);
        } else if (argv[i][0] == '-') {
            return cli_usage("dump", help, "unknown option '%s'", argv[i]);
        } else if (name) {
            return cli_usage("dump", help, "one NAME only ('%s' is a second one)", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (!name)
        return cli_usage("dump", help, "missing NAME");
    const char *problem = cli_name_problem(name);
    if (problem)
        return cli_usage("dump", help, "%s", problem);
    fairsem_t *sem;
    int rc = cli_open(name, true, &sem);
    if (rc < 0)
        return cli_fail(name, rc);
    if (!watch) {
        rc = dump_once(name, sem, json, false, stdout);
        fairsem_close(sem);
        return rc;
    }
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    while (!stop_watch) {
        if (!json)
            fputs("\033[H\033[2J", stdout);
        dump_once(name, sem, json, true, stdout);
        fflush(stdout);
        struct timespec nap = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
        nanosleep(&nap, NULL);
    }
    fairsem_close(sem);
    return EXIT_OK;
}
