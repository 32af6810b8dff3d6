/*
 * sem.c - the blocking API: acquire (try, timed, forever) and release.
 *
 * A caller first asks the scheduler for a slot as a newcomer; if it may
 * not have one and will wait, it queues a request (ticket.c), kicks the
 * scheduler (it may be next already) and sleeps on its own cell until a
 * granter marks it GRANTED, or it is cancelled, or the deadline passes.
 * Decisions are schedule.c's; this file only kicks it where the rule there
 * says an entry point must.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>

int fairsem_release(fairsem_tenant_t *tenant, fairsem_slot_t slot)
{
    if (!tenant)
        return -EINVAL;
    if (tenant->epoch != atomic_load(&fairsem__fork_epoch) || !fairsem__slot_give_back(tenant, slot))
        return FAIRSEM_ESLOT;
    fairsem__kick(tenant->sem);
    fairsem__tenant_busy_put(tenant);
    return 0;
}

static fairsem_tenant_t *resolve(fairsem_tenant_t *tenant) { return tenant ? tenant : fairsem_tenant_current(); }

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

/* The kick of a running waiter (schedule.c's rule): with barging it
 * names itself, and may grant itself a free slot its share allows. */
static void kick_as_waiter(fairsem_t *sem, uint32_t c)
{
    if (fs_barging(sem->geo.flags))
        fairsem__schedule_self(sem, c);
    else
        fairsem__kick(sem);
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
            return fairsem__slot_consume_grant(tenant, c, slot);
        if (fs_cell_kind(s) == FS_CELL_CANCELLED) {
            fairsem__ticket_free(sem, c);
            return -ECANCELED;
        }
        /* Roused (barging): a slot was free for us.  Clear the mark
         * first, then look: a rouse after the clear sets it again, and so
         * changes the word the sleep below compares.  A look that finds
         * the slot taken by a barger marks the request for a direct
         * hand-off of its next slot. */
        if (fs_cell_roused(s)) {
            if (fairsem__ticket_unrouse(sem, c, &s) && !fairsem__schedule_self(sem, c))
                fairsem__ticket_mark_handoff(sem, c, seq);
            continue;
        }
        uint64_t now = fairsem__now_ns();
        if (deadline && now >= deadline) {
            uint32_t granted;
            int ended = fairsem__ticket_cancel(sem, c, &granted);
            if (ended == FS_TICKET_GRANTED)
                continue; /* the grant won the race: keep the slot */
            if (ended == FS_TICKET_CANCELLED)
                fs_count(sem, tenant->idx, FS_CNT_TIMEOUTS, 1);
            fairsem__ticket_free(sem, c);
            fairsem__kick(sem); /* our leaving may lift shares */
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
            if ((fairsem__idle_hides(sem, idle, c) || reserved_seen) &&
                fairsem__ticket_unhide(tenant, false, &c, seq, &reserved_seen)) {
                cell = &sem->cells[c];
                kick_as_waiter(sem, c); /* visible again, in a new cell */
            }
            if (reserved_seen)
                nap = FS_POLL_NS; /* unhide moves us on its second look */
        }
    }
}

static int wait_cell(fairsem_tenant_t *tenant, uint32_t c, uint64_t seq, uint64_t deadline, fairsem_slot_t *slot)
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
            kick_as_waiter(sem, c); /* we may be next already */
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
