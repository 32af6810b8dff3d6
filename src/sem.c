/*
 * sem.c - acquire, release and the scheduler that hands slots out.
 *
 * fairsem__schedule() is the one place decisions are taken: read the
 * version word, snapshot, ask policy.c for the next step, claim one slot
 * word, commit with CAS(version).  A failed commit undoes the claim and
 * looks again.  Nothing here waits for another process.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>

static bool waiters_present(const fairsem_t *sem)
{
    for (uint32_t k = 0; k < sem->geo.map_words; k++)
        if (atomic_load(&sem->map[k]))
            return true;
    return false;
}

static uint32_t new_stamp(fairsem_t *sem)
{
    return atomic_fetch_add(&sem->next_stamp, 1) & FS_STAMP_MASK;
}

/* fairsem_slot_t.tag: handle serial:24 << 40 | stamp:24 << 16 | slot index:16.
 * The slot word itself names the process, so the serial only has to tell
 * this process's tenant handles apart. */
static fairsem_slot_t slot_handle(const fairsem_tenant_t *t, uint32_t stamp, uint32_t i)
{
    return (fairsem_slot_t){(uint64_t)(t->serial & 0xffffff) << 40 | (uint64_t)stamp << 16 | i};
}

unsigned fairsem_slot_index(fairsem_slot_t slot) { return (unsigned)(slot.tag & 0xffff); }

static bool commit(fairsem_t *sem, uint64_t v)
{
    return atomic_compare_exchange_strong(&sem->hdr->version, &v, v + 1);
}

int fairsem__schedule(fairsem_t *sem, fairsem_tenant_t *newcomer, fairsem_slot_t *slot)
{
    uint32_t nt = newcomer ? newcomer->idx : FS_NO_TENANT;
    for (;;) {
        uint64_t v = atomic_load(&sem->hdr->version);
        struct fs_snapshot *s = fairsem__snapshot(sem);
        if (!s)
            return -ENOMEM;
        struct fs_action act = fairsem__policy_next(s, nt);
        uint32_t i = s->first_free;
        uint64_t expect = 0;
        if (act.kind == FS_ACT_NONE)
            return newcomer ? -EAGAIN : 0;
        if (act.kind == FS_ACT_TAKE) {
            uint32_t stamp = new_stamp(sem);
            uint64_t word = fs_slot_word(FS_SLOT_HELD, stamp, nt, sem->proc_tag);
            if (!atomic_compare_exchange_strong(&sem->slots[i], &expect, word))
                continue;
            FS_CRASHPOINT("take.claimed");
            if (!commit(sem, v)) {
                atomic_store(&sem->slots[i], 0); /* uncommitted: still only ours */
                FS_CRASHPOINT("take.undone");
                continue;
            }
            FS_CRASHPOINT("take.committed");
            atomic_store_explicit(&sem->since[i], fairsem__coarse_ns(), memory_order_relaxed);
            *slot = slot_handle(newcomer, stamp, i);
            return 0;
        }
        const struct fs_waiter w = *act.waiter;
        uint64_t res = fs_slot_word(FS_SLOT_RESERVED, fs_seq_stamp(w.seq), w.cell, sem->proc_tag);
        if (!atomic_compare_exchange_strong(&sem->slots[i], &expect, res))
            continue;
        FS_CRASHPOINT("grant.reserved");
        if (!commit(sem, v)) {
            atomic_store(&sem->slots[i], 0);
            FS_CRASHPOINT("grant.undone");
            continue;
        }
        FS_CRASHPOINT("grant.committed");
        struct fs_cell *cell = &sem->cells[w.cell];
        uint64_t waiting = fs_cell_word(w.seq, FS_CELL_WAITING, 0);
        if (atomic_compare_exchange_strong(&cell->state, &waiting, fs_cell_word(w.seq, FS_CELL_GRANTED, i))) {
            FS_CRASHPOINT("grant.granted");
            fairsem__ticket_wake(sem, w.cell);
        } else {
            atomic_compare_exchange_strong(&sem->slots[i], &res, 0); /* cancelled meanwhile */
            FS_CRASHPOINT("grant.withdrawn");
        }
    }
}

/* A grant that names no slot reserved for its cell (only a corrupt word
 * does that: nobody frees a reservation its GRANTED cell points at) is
 * dropped, and the cell freed so that it is not lost as well. */
static int grant_corrupt(fairsem_t *sem, uint32_t c)
{
    fairsem__ticket_free(sem, c);
    return FAIRSEM_ECORRUPT;
}

int fairsem__claim_grant(fairsem_tenant_t *t, uint32_t c, fairsem_slot_t *slot)
{
    fairsem_t *sem = t->sem;
    struct fs_cell *cell = &sem->cells[c];
    uint64_t s = atomic_load(&cell->state);
    uint32_t i = fs_cell_slot(s);
    if (fs_cell_kind(s) != FS_CELL_GRANTED || i >= sem->geo.max_slots)
        return grant_corrupt(sem, c);
    uint64_t w = atomic_load(&sem->slots[i]);
    if (!fs_slot_reserved_for(w, c, fs_cell_seq(s)))
        return grant_corrupt(sem, c);
    uint32_t stamp = new_stamp(sem);
    if (!atomic_compare_exchange_strong(&sem->slots[i], &w, fs_slot_word(FS_SLOT_HELD, stamp, t->idx, sem->proc_tag)))
        return grant_corrupt(sem, c);
    FS_CRASHPOINT("consume.held");
    atomic_store_explicit(&sem->since[i], fairsem__coarse_ns(), memory_order_relaxed);
    fairsem__ticket_free(sem, c);
    *slot = slot_handle(t, stamp, i);
    return 0;
}

/* Free slot i if it holds `word`; then serve waiters. */
bool fairsem__slot_give_back(fairsem_t *sem, fairsem_slot_t slot, uint64_t word)
{
    uint32_t i = fairsem_slot_index(slot);
    if (i >= sem->geo.max_slots || !atomic_compare_exchange_strong(&sem->slots[i], &word, 0))
        return false;
    FS_CRASHPOINT("release.freed");
    if (waiters_present(sem))
        fairsem__schedule(sem, NULL, NULL);
    return true;
}

int fairsem_release(fairsem_tenant_t *tenant, fairsem_slot_t slot)
{
    if (!tenant)
        return -EINVAL;
    fairsem_t *sem = tenant->sem;
    if (tenant->epoch != atomic_load(&fairsem__fork_epoch) ||
        (uint32_t)(slot.tag >> 40) != (tenant->serial & 0xffffff))
        return FAIRSEM_ESLOT;
    uint32_t stamp = (uint32_t)(slot.tag >> 16) & ((1u << FS_STAMP_BITS) - 1);
    uint64_t word = fs_slot_word(FS_SLOT_HELD, stamp, tenant->idx, sem->proc_tag);
    if (!fairsem__slot_give_back(sem, slot, word))
        return FAIRSEM_ESLOT;
    fairsem__tenant_busy_put(tenant);
    return 0;
}

static fairsem_tenant_t *resolve(fairsem_tenant_t *tenant)
{
    return tenant ? tenant : fairsem_tenant_current();
}

/* Before sleeping, watch the cell for a few microseconds: a slot released
 * by a process running on another CPU then reaches us without a futex
 * sleep and wake-up (which costs tens of microseconds in which the slot
 * sits reserved and idle).  Returns true if the cell changed. */
static bool spin_for_grant(struct fs_cell *cell, uint64_t s)
{
    for (int i = 0; i < FS_SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&cell->state, memory_order_relaxed) != s)
            return true;
        fs_cpu_relax();
    }
    return false;
}

/* Wait on our own cell until granted, cancelled or the deadline.  Between
 * wakes, take part in watching the pool (fairsem__idle: one prober polls,
 * everyone else sleeps long); a wake that brings no grant may be the
 * prober's nudge that a stopped granter hides us (or a prober handing its
 * role on). */
static int wait_on_cell(fairsem_tenant_t *tenant, uint32_t c, uint64_t seq, uint64_t deadline,
                        fairsem_slot_t *slot, struct fs_idle *idle)
{
    fairsem_t *sem = tenant->sem;
    struct fs_cell *cell = &sem->cells[c];
    uint64_t reserved_seen = 0;
    uint64_t nap = fairsem__idle(sem, idle);
    bool first = true;
    for (;;) {
        uint64_t s = atomic_load(&cell->state);
        if (fs_cell_kind(s) == FS_CELL_GRANTED)
            return fairsem__claim_grant(tenant, c, slot);
        if (fs_cell_kind(s) == FS_CELL_CANCELLED) {
            fairsem__ticket_free(sem, c);
            return -ECANCELED;
        }
        uint64_t now = fairsem__now_ns();
        if (deadline && now >= deadline) {
            uint32_t granted;
            if (fairsem__ticket_cancel(sem, c, &granted) == 0)
                continue; /* the grant won the race: keep the slot */
            fairsem__ticket_free(sem, c);
            fairsem__schedule(sem, NULL, NULL); /* our leaving may lift shares */
            return -ETIMEDOUT;
        }
        uint64_t sleep = nap;
        if (deadline && deadline - now < sleep)
            sleep = deadline - now;
        if (!(first && spin_for_grant(cell, s)))
            fairsem__futex_wait(fs_cell_futex(cell), (uint32_t)s, sleep);
        first = false;
        if (atomic_load(&cell->state) == s) {
            nap = fairsem__idle(sem, idle);
            if (fairsem__idle_hides(sem, idle, c) || reserved_seen) {
                fairsem__ticket_unhide(tenant, false, &c, seq, &reserved_seen);
                cell = &sem->cells[c];
            }
            if (reserved_seen)
                nap = FS_POLL_NS; /* unhide moves us on its second look */
        }
    }
}

static int wait_cell(fairsem_tenant_t *tenant, uint32_t c, uint64_t seq, uint64_t deadline,
                     fairsem_slot_t *slot)
{
    struct fs_idle idle = {.nudges_seen = atomic_load(&tenant->sem->procs[tenant->sem->proc_idx].nudge)};
    int rc = wait_on_cell(tenant, c, seq, deadline, slot, &idle);
    fairsem__idle_leave(tenant->sem, &idle);
    return rc;
}

/* A caller that will not sleep never runs a waiter's periodic look for dead
 * holders; do it here, at most once per poll interval per handle, so a
 * try_acquire loop also sees a dead process's slots come back. */
static bool probe_dead_holders(fairsem_t *sem)
{
    uint64_t now = fairsem__now_ns(), last = atomic_load(&sem->last_probe_ns);
    if (now - last < FS_POLL_NS || !atomic_compare_exchange_strong(&sem->last_probe_ns, &last, now))
        return false;
    fairsem__reap_referenced(sem);
    return true;
}

/* deadline: 0 = forever, UINT64_MAX = do not wait */
static int acquire(fairsem_tenant_t *tenant, uint64_t deadline, fairsem_slot_t *slot)
{
    tenant = resolve(tenant);
    if (!tenant || !slot)
        return -EINVAL;
    int rc = fairsem__tenant_busy_get(tenant);
    if (rc < 0)
        return rc;
    fairsem_t *sem = tenant->sem;
    rc = fairsem__schedule(sem, tenant, slot);
    if (rc == -EAGAIN && deadline == UINT64_MAX && probe_dead_holders(sem))
        rc = fairsem__schedule(sem, tenant, slot);
    if (rc == -EAGAIN && deadline != UINT64_MAX) {
        uint32_t c;
        uint64_t seq;
        rc = fairsem__ticket_enqueue(tenant, false, &c, &seq);
        if (rc == 0) {
            fairsem__schedule(sem, NULL, NULL); /* we may be next already */
            rc = wait_cell(tenant, c, seq, deadline, slot);
        }
    }
    if (rc < 0)
        fairsem__tenant_busy_put(tenant);
    return rc;
}

int fairsem_acquire(fairsem_tenant_t *tenant, fairsem_slot_t *slot) { return acquire(tenant, 0, slot); }

int fairsem_try_acquire(fairsem_tenant_t *tenant, fairsem_slot_t *slot)
{
    return acquire(tenant, UINT64_MAX, slot);
}

int fairsem_acquire_timeout(fairsem_tenant_t *tenant, uint64_t timeout_ns, fairsem_slot_t *slot)
{
    uint64_t deadline = fairsem__now_ns() + timeout_ns;
    if (deadline == 0 || deadline == UINT64_MAX || deadline < timeout_ns)
        deadline = UINT64_MAX - 1; /* effectively forever */
    return acquire(tenant, deadline, slot);
}
