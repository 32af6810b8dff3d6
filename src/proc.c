/*
 * proc.c - process records: claiming one under its lease, probing others'
 * leases, and scrubbing what a dead (or detaching) record's tags name.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static uint64_t proc_state(uint64_t gen, unsigned kind) { return gen << 1 | kind; }
static unsigned state_kind(uint64_t st) { return (unsigned)(st & 1); }
static uint64_t state_gen(uint64_t st) { return st >> 1; }

static bool own_record(const fairsem_t *sem, uint32_t p)
{
    return sem->attach_epoch == atomic_load(&fairsem__fork_epoch) && sem->proc_idx == p;
}

/* Take record p if it is free, or if its owner is dead (scrubbing it). */
static int try_claim(fairsem_t *sem, uint32_t p)
{
    struct fs_proc *rec = &sem->procs[p];
    if (fairsem__lease_lock(sem->fd, FS_LEASE_BASE + p) != 0)
        return -EAGAIN;
    FS_CRASHPOINT("attach.leased");
    /* The lease is ours: nobody else can claim or scrub p now. */
    uint64_t st = atomic_load(&rec->state);
    bool was_dead = state_kind(st) == FS_PROC_LIVE;
    sem->proc_idx = p; /* what the scrub marks as ours in flight is p's */
    if (was_dead)
        fairsem__proc_scrub(sem, p, NULL);
    uint64_t gen = state_gen(st) + 1;
    rec->pid = (int32_t)getpid();
    rec->attached_ns = fairsem__realtime_ns();
    atomic_store(&rec->wake, 0);
    atomic_store(&rec->state, proc_state(gen, FS_PROC_LIVE));
    FS_CRASHPOINT("attach.live");
    sem->proc_idx = p;
    sem->proc_tag = fs_proc_tag(p, gen);
    if (was_dead) /* what the dead owner held may be due to waiters */
        fairsem__schedule(sem, NULL, NULL);
    return 0;
}

int fairsem__proc_claim(fairsem_t *sem)
{
    uint32_t n = sem->geo.max_procs;
    uint32_t start = (uint32_t)getpid() % n;
    /* First pass: free records only; second: also live-looking ones, whose
     * owners may have died (the lease probe tells). */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < n; k++) {
            uint32_t p = (start + k) % n;
            if (pass == 0 && state_kind(atomic_load(&sem->procs[p].state)) != FS_PROC_FREE)
                continue;
            if (try_claim(sem, p) == 0)
                return 0;
        }
    }
    return FAIRSEM_EPROCS;
}

void fairsem__proc_release(fairsem_t *sem)
{
    uint32_t p = sem->proc_idx;
    struct fs_proc *rec = &sem->procs[p];
    fairsem__proc_scrub(sem, p, NULL);
    FS_CRASHPOINT("detach.scrubbed");
    /* Hand what we freed to waiters while our record still vouches for
     * the reservations we make. */
    fairsem__schedule(sem, NULL, NULL);
    uint64_t st = atomic_load(&rec->state);
    atomic_store(&rec->state, proc_state(state_gen(st), FS_PROC_FREE));
    FS_CRASHPOINT("detach.freed");
    fairsem__lease_unlock(sem->fd, FS_LEASE_BASE + p);
}

int fairsem_lease_dup(fairsem_t *sem)
{
    if (!sem)
        return -EINVAL;
    int rc = fairsem__attach(sem);
    if (rc < 0)
        return rc;
    /* Same open file description, hence the same OFD lock. */
    int fd = fcntl(sem->fd, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? -errno : fd;
}

bool fairsem__proc_reap_if_dead(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    if (own_record(sem, p) || state_kind(atomic_load(&sem->procs[p].state)) != FS_PROC_LIVE)
        return false;
    if (fairsem__lease_lock(sem->fd, FS_LEASE_BASE + p) != 0)
        return false; /* alive (or being claimed or scrubbed right now) */
    FS_CRASHPOINT("reap.leased");
    bool reaped = false;
    uint64_t st = atomic_load(&sem->procs[p].state);
    if (state_kind(st) == FS_PROC_LIVE) {
        fairsem__proc_scrub(sem, p, report);
        atomic_store(&sem->procs[p].state, proc_state(state_gen(st), FS_PROC_FREE));
        FS_CRASHPOINT("reap.freed");
        if (report)
            report->procs++;
        reaped = true;
    }
    fairsem__lease_unlock(sem->fd, FS_LEASE_BASE + p);
    if (reaped)
        fairsem__schedule(sem, NULL, NULL);
    return reaped;
}

/* Free the slot reserved for cell c, if slot i still is. */
static bool free_reservation(fairsem_t *sem, uint32_t i, uint32_t c)
{
    if (i >= sem->geo.max_slots)
        return false; /* corrupt grant: there is no such slot */
    uint64_t w = atomic_load(&sem->slots[i]);
    return fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) == c &&
           atomic_compare_exchange_strong(&sem->slots[i], &w, 0);
}

static void scrub_cells(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        struct fs_cell *cell = &sem->cells[c];
        uint64_t owner = atomic_load(&cell->owner);
        if (!owner || fs_tag_proc((uint32_t)owner) != p)
            continue;
        uint64_t s = atomic_load(&cell->state);
        /* Close the cell to granters first, so no new grant can land. */
        while (fs_cell_kind(s) == FS_CELL_WAITING &&
               !atomic_compare_exchange_strong(&cell->state, &s,
                                               fs_cell_word(s >> 32, FS_CELL_CANCELLED, 0)))
            ;
        FS_CRASHPOINT("scrub.cell_closed");
        if (fs_cell_kind(s) == FS_CELL_GRANTED && free_reservation(sem, fs_cell_slot(s), c) && report)
            report->slots++;
        if (report && fs_cell_kind(s) != FS_CELL_EMPTY)
            report->tickets++;
        FS_CRASHPOINT("scrub.cell_slot_freed");
        fairsem__ticket_free(sem, c);
    }
}

static void scrub_slots(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_kind(w) == FS_SLOT_FREE || fs_tag_proc(fs_slot_owner(w)) != p)
            continue;
        if (fs_slot_kind(w) == FS_SLOT_RESERVED) {
            /* p granted it; once its cell says GRANTED with this slot it
             * belongs to the cell's owner, not to p. */
            uint32_t c = fs_slot_who(w);
            uint64_t s = c < sem->geo.max_waiters ? atomic_load(&sem->cells[c].state) : 0;
            if (fs_cell_kind(s) == FS_CELL_GRANTED && fs_cell_slot(s) == i &&
                fs_seq_stamp(s >> 32) == fs_slot_stamp(w))
                continue;
            atomic_compare_exchange_strong(&sem->slots[i], &w, 0);
            FS_CRASHPOINT("scrub.reservation_freed");
            continue;
        }
        if (atomic_compare_exchange_strong(&sem->slots[i], &w, 0) && report)
            report->slots++;
        FS_CRASHPOINT("scrub.slot_freed");
    }
}

/* Open bits go first (an open bit implies the registration bit); then the
 * closing word of every tenant p had registered is re-derived, and only
 * then are the registration bits cleared: a scrubber, or p itself, that
 * died anywhere in between leaves those bits for the next scrubber, which
 * re-derives again. */
static void scrub_registrations(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    uint32_t words = sem->geo.reg_words;
    for (uint32_t k = 0; k < words; k++)
        atomic_store(&sem->opens[(size_t)p * words + k], 0);
    FS_CRASHPOINT("scrub.closed");
    for (uint32_t k = 0; k < words; k++)
        for (uint64_t bits = atomic_load(&sem->regs[(size_t)p * words + k]); bits; bits &= bits - 1) {
            uint32_t t = k * 64 + (uint32_t)__builtin_ctzll(bits);
            if (t < sem->geo.max_tenants)
                fairsem__tenant_settle_closing(sem, t);
        }
    for (uint32_t k = 0; k < words; k++) {
        uint64_t bits = atomic_exchange(&sem->regs[(size_t)p * words + k], 0);
        FS_CRASHPOINT("scrub.unregistered");
        while (bits) {
            uint32_t t = k * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (report)
                report->registrations++;
            if (t < sem->geo.max_tenants)
                fairsem__tenant_retire(sem, t);
        }
    }
}

void fairsem__proc_scrub(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    scrub_cells(sem, p, report);
    scrub_slots(sem, p, report);
    scrub_registrations(sem, p, report);
    fairsem__tenant_scrub(sem, p);
}

bool fairsem__tag_gone(const fairsem_t *sem, uint32_t tag)
{
    uint32_t p = fs_tag_proc(tag);
    if (p >= sem->geo.max_procs)
        return true;
    uint64_t st = atomic_load(&sem->procs[p].state);
    return state_kind(st) == FS_PROC_FREE || fs_proc_tag(p, state_gen(st)) != tag;
}
