/*
 * stats.c - fairsem_stats(): a snapshot for people and bindings.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Records with an open (not unregistered) registration of t. */
static unsigned registrations_of(const fairsem_t *sem, uint32_t t)
{
    unsigned n = 0;
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        n += fs_bit_test(fs_row(sem->opens, sem->geo.reg_words, p), t);
    return n;
}

int fairsem_stats(fairsem_t *sem, fairsem_stats_t *stats, fairsem_tenant_stats_t *tenants, size_t cap,
                  size_t *count)
{
    if (!sem || !stats || (cap && !tenants))
        return -EINVAL;
    struct fs_snapshot *s = fairsem__snapshot(sem);
    if (!s)
        return -ENOMEM;
    memset(stats, 0, sizeof *stats);
    stats->max_slots = s->max_slots;
    stats->min_share = s->min_share;
    stats->flags = s->flags;
    stats->demanding_tenants = fairsem__policy_demanding(s, FS_NO_TENANT);
    stats->slots_in_use = s->in_use;
    stats->slots_available = s->max_slots - s->in_use;
    stats->waiters = s->nwaiters;
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        stats->attached_procs += fs_proc_is_live(atomic_load(&sem->procs[p].state));
    size_t n = 0;
    for (uint32_t t = 0; t < s->ntenants; t++) {
        /* The name is read first, consistently with the entry's state (an
         * entry retired or re-inserted meanwhile reads as not live). */
        char id[FAIRSEM_TENANT_ID_MAX + 1];
        bool live = fairsem__tenant_name(sem, t, id) != 0;
        unsigned regs = registrations_of(sem, t);
        stats->registered_tenants += live && regs > 0;
        /* A closing tenant (every registration unregistered) leaves the
         * list at once; the slots it still holds stay in slots_in_use. */
        if (!live || (regs == 0 && s->waiting[t] == 0))
            continue;
        if (n < cap) {
            fairsem_tenant_stats_t *ts = &tenants[n];
            memcpy(ts->id, id, sizeof ts->id);
            ts->held = s->held[t];
            ts->waiting = s->waiting[t];
            ts->share = fairsem__policy_share(s, t, FS_NO_TENANT);
            ts->weight = atomic_load(&sem->tenants[t].weight);
            ts->registrations = regs;
        }
        n++;
    }
    if (count)
        *count = n;
    return 0;
}
