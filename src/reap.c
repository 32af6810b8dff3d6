/*
 * reap.c - fairsem_reap(): reclaim at once what dead processes left, and
 * reset words that no process, live or dead, can explain.
 * (Waiters do the first on their own for the records they depend on; see
 * fairsem__reap_referenced in probe.c.)
 *
 * A word is repaired only when nobody can ever act on it: no live process
 * will release, undo or free it, and no scrubber will.  That is so when the
 * word has no owner at all (a FREE-kind slot word with stray bits, a word
 * of no known kind, a cell with state or map bit but no owner), when it
 * could not have been written by anyone (a reservation for a cell past
 * max_waiters), or when the incarnation it names is gone for good
 * (fairsem__tag_gone: record out of range, free, or claimed again since).
 * Every repair is a CAS from the exact word read, so a word that changed
 * meanwhile (its owner acted after all) is left alone.  Words naming a live
 * record are never touched, even when they make no sense (a slot HELD for a
 * tenant the holder does not register): the record's own scrub frees them
 * when it detaches or dies, and fairsem_check reports them until then.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Does slot word w (of slot i) belong to nobody who will ever act on it? */
static bool slot_orphaned(fairsem_t *sem, uint32_t i, uint64_t w)
{
    switch (fs_slot_kind(w)) {
    case FS_SLOT_FREE: return w != 0; /* stray bits: no writer makes such a word */
    case FS_SLOT_HELD: return fairsem__tag_gone(sem, fs_slot_owner(w));
    case FS_SLOT_RESERVED: {
        uint32_t c = fs_slot_who(w);
        if (c >= sem->geo.max_waiters)
            return true; /* granters reserve only for cells they scanned */
        if (!fairsem__tag_gone(sem, fs_slot_owner(w)))
            return false; /* its granter finishes or undoes it */
        /* Once its cell says GRANTED with this slot it is the cell
         * owner's; that cell is repaired (or not) on its own. */
        uint64_t s = atomic_load(&sem->cells[c].state);
        return !fs_cell_granted_by(s, i, w);
    }
    default: return true;
    }
}

static void repair_slots(fairsem_t *sem, fairsem_reap_report_t *report)
{
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (w && slot_orphaned(sem, i, w) && atomic_compare_exchange_strong(&sem->slots[i], &w, 0)) {
            report->repaired++;
            report->slots++;
        }
    }
}

static bool mapped(const fairsem_t *sem, uint32_t c) { return fs_bit_test(sem->map, c); }

/* Does cell c, whose owner word is `owner`, belong to nobody? */
static bool cell_orphaned(fairsem_t *sem, uint32_t c, uint64_t owner)
{
    /* A cell naming a gone incarnation of a record whose lease is held now
     * is left to that holder: a claimer scrubbing the record's dead
     * incarnation takes its cells over under the next generation's tag
     * (gone, by the record's state, until the claim completes) and frees
     * them by plain stores, which a repair racing it could let land on a
     * cell claimed again in between. */
    if (owner) {
        uint32_t tag = fs_owner_tag(owner);
        return fairsem__tag_gone(sem, tag) && !fairsem__record_alive(sem, fs_tag_proc(tag));
    }
    /* No owner: a cell is claimed (owner) before it is mapped or filled
     * and disowned last, so a state or a map bit here is a leftover. */
    return mapped(sem, c) || atomic_load(&sem->cells[c].state) != 0;
}

/* Take cell c over (CAS of its owner word, as an enqueuer claims one), so
 * nobody else can claim or free it, then close it to granters, give back
 * a slot granted to it and free it. */
static void repair_cell(fairsem_t *sem, uint32_t c, uint64_t owner, fairsem_reap_report_t *report)
{
    struct fs_cell *cell = &sem->cells[c];
    if (!atomic_compare_exchange_strong(&cell->owner, &owner, fs_owner_word(sem->proc_tag)))
        return;
    /* (An owner may have claimed and freed it since we looked: then it is
     * clean, and giving it back repairs nothing.) */
    bool dirty = owner || atomic_load(&cell->state) != 0 || mapped(sem, c);
    uint32_t i;
    if (fairsem__ticket_cancel(sem, c, &i) == FS_TICKET_GRANTED && i < sem->geo.max_slots) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) == c &&
            atomic_compare_exchange_strong(&sem->slots[i], &w, 0))
            report->slots++;
    }
    fairsem__ticket_free(sem, c);
    report->repaired += dirty;
}

static void repair_cells(fairsem_t *sem, fairsem_reap_report_t *report)
{
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        uint64_t owner = atomic_load(&sem->cells[c].owner);
        if (cell_orphaned(sem, c, owner))
            repair_cell(sem, c, owner, report);
    }
}

/* A tenant entry left INIT or DYING names its inserter or retirer in 12
 * bits (fs_tenant_proc), which can say a record past max_procs: nobody can
 * be that record, so its work is finished here as its scrubber would finish
 * it (back to FREE, or ACTIVE if still registered).
 * An entry naming a record that exists is that record's (or its
 * scrubber's) to finish. */
static void repair_tenants(fairsem_t *sem, fairsem_reap_report_t *report)
{
    for (uint32_t t = 0; t < sem->geo.max_tenants; t++) {
        uint64_t st = atomic_load(&sem->tenants[t].state);
        unsigned kind = fs_tenant_kind(st);
        uint32_t worker = fs_tenant_proc(st);
        if ((kind == FS_TENANT_INIT || kind == FS_TENANT_DYING) && worker >= sem->geo.max_procs) {
            fairsem__tenant_scrub(sem, worker);
            report->repaired += atomic_load(&sem->tenants[t].state) != st;
        }
    }
}

int fairsem_reap(fairsem_t *sem, fairsem_reap_report_t *report)
{
    if (!sem)
        return -EINVAL;
    fairsem_reap_report_t local;
    if (!report)
        report = &local;
    memset(report, 0, sizeof *report);
    int rc = fairsem__attach(sem, NULL); /* we kick at the end anyway */
    if (rc < 0)
        return rc;
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        fairsem__proc_reap_if_dead(sem, p, report);
    /* Cells first: freeing a cell may orphan the reservation it pointed
     * at, which the slot pass then sees. */
    repair_cells(sem, report);
    repair_slots(sem, report);
    repair_tenants(sem, report);
    for (uint32_t t = 0; t < sem->geo.max_tenants; t++)
        fairsem__tenant_retire(sem, t);
    fairsem__kick(sem); /* whatever the reap freed goes to waiters */
    return 0;
}
