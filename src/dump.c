/*
 * dump.c - fairsem_info() and fairsem_dump(): reading a segment for people.
 *
 * Reads only, so a FAIRSEM_READONLY handle (read permission) is enough.
 * Liveness is asked with F_OFD_GETLK, which takes no lock: looking never
 * makes a reader the scrubber of anything.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

int fairsem_info(fairsem_t *sem, fairsem_info_t *info)
{
    if (!sem || !info)
        return -EINVAL;
    /* The settings validated at open (the live header may have been
     * overwritten since), and the display-only fields. */
    const struct fs_geometry *g = &sem->geo;
    memset(info, 0, sizeof *info);
    info->layout_version = FS_LAYOUT_VERSION;
    info->max_slots = g->max_slots;
    info->min_share = g->min_share;
    info->max_tenants = g->max_tenants;
    info->max_waiters = g->max_waiters;
    info->max_procs = g->max_procs;
    info->flags = g->flags;
    memcpy(info->rule_name, g->rule_name, sizeof info->rule_name - 1);
    info->size = sem->size;
    info->created_ns = sem->hdr->created_ns;
    return 0;
}

static void dump_procs(fairsem_t *sem, const fairsem_dump_ops_t *ops, void *arg)
{
    for (uint32_t p = 0; p < sem->geo.max_procs; p++) {
        const struct fs_proc *rec = &sem->procs[p];
        if (!fs_proc_is_live(atomic_load(&rec->state)))
            continue;
        fairsem_proc_info_t info = {p, rec->pid, fairsem__record_alive(sem, p), rec->attached_ns};
        ops->proc(arg, &info);
    }
}

static void dump_holders(fairsem_t *sem, const fairsem_dump_ops_t *ops, void *arg)
{
    uint64_t now = fs_coarse_ns();
    char name[FAIRSEM_TENANT_ID_MAX + 1];
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        fairsem_holder_info_t info = {.slot = i, .tenant = name};
        if (fs_slot_kind(w) == FS_SLOT_HELD) {
            info.record = fs_slot_record(w);
            fairsem__tenant_name(sem, fs_slot_who(w), name);
        } else if (fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) < sem->geo.max_waiters) {
            /* Granted to a queued request: show who it is for. */
            const struct fs_cell *cell = &sem->cells[fs_slot_who(w)];
            info.granted = 1;
            info.record = fs_owner_record(atomic_load(&cell->owner));
            fairsem__tenant_name(sem, atomic_load(&cell->tenant), name);
        } else {
            continue;
        }
        info.pid = info.record < sem->geo.max_procs ? sem->procs[info.record].pid : 0;
        info.alive = fairsem__record_alive(sem, info.record);
        uint64_t since = atomic_load(&sem->since[i]);
        info.held_ns = now > since ? now - since : 0;
        ops->holder(arg, &info);
    }
}

static void dump_waiters(fairsem_t *sem, const fairsem_dump_ops_t *ops, void *arg)
{
    uint64_t now = fairsem__now_ns();
    uint64_t last = 0;
    char name[FAIRSEM_TENANT_ID_MAX + 1];
    /* Oldest first: repeatedly take the smallest seq above the last one. */
    for (;;) {
        uint32_t best = UINT32_MAX;
        uint64_t best_seq = UINT64_MAX;
        for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
            const struct fs_cell *cell = &sem->cells[c];
            uint64_t seq = atomic_load(&cell->seq);
            if (atomic_load(&cell->owner) && fs_cell_kind(atomic_load(&cell->state)) != FS_CELL_EMPTY &&
                seq + 1 > last && seq < best_seq) {
                best = c;
                best_seq = seq;
            }
        }
        if (best == UINT32_MAX)
            return;
        last = best_seq + 1;
        const struct fs_cell *cell = &sem->cells[best];
        fairsem_waiter_info_t info = {.ticket = best_seq, .tenant = name};
        info.record = fs_owner_record(atomic_load(&cell->owner));
        info.pid = info.record < sem->geo.max_procs ? sem->procs[info.record].pid : 0;
        info.alive = fairsem__record_alive(sem, info.record);
        info.state = (int)fs_cell_kind(atomic_load(&cell->state));
        uint64_t since = atomic_load(&cell->enqueued_ns);
        info.age_ns = now > since ? now - since : 0;
        fairsem__tenant_name(sem, atomic_load(&cell->tenant), name);
        ops->waiter(arg, &info);
    }
}

int fairsem_dump(fairsem_t *sem, const fairsem_dump_ops_t *ops, void *arg)
{
    if (!sem || !ops)
        return -EINVAL;
    if (ops->proc)
        dump_procs(sem, ops, arg);
    if (ops->holder)
        dump_holders(sem, ops, arg);
    if (ops->waiter)
        dump_waiters(sem, ops, arg);
    return 0;
}
