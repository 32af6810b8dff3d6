/*
 * schedule.c - the scheduler: the one place admission decisions are taken.
 *
 * A decision reads the version word, snapshots slots and cells, asks
 * policy.c for the next step, claims one slot word and commits with
 * CAS(version, v, v + 1); a failed commit undoes the claim and looks again
 * (docs/design.md section 3).  Nothing here waits for another process.
 *
 * WHO RUNS THE SCHEDULER.  The modules below it (slot.c, ticket.c, proc.c,
 * tenant.c) change shared words and return whether they made the state
 * more permissive: a freed slot, a cancelled or freed request, a dead
 * record scrubbed, a tenant that became closing or whose weight changed,
 * and (not more permissive, but new work) a request queued or made visible
 * again.  They never call the scheduler.  The public entry points, and the
 * library's own waiting threads, do: after the lower-layer calls that
 * reported such a change, each kicks once (fairsem__kick), before it
 * returns, goes (back) to sleep, or asks for a slot as a newcomer (a
 * newcomer counts itself as demanding, so its decision does not serve the
 * waiters that only the state without it would let in).  The prober also
 * kicks every FS_SAFETY_ROUNDS rounds, as a safety net.  The callers, and
 * nobody else:
 *   sem.c           acquire (enqueued; left the queue on timeout; moved by
 *                   unhide), release
 *   request.c       request_start (enqueued), request_cancel, event_fd
 *                   (attached), the waker thread (moved by unhide)
 *   registration.c  register, unregister, a fork child's first use of an
 *                   inherited handle
 *   segment.c       open and create (attached), close (before the record
 *                   is let go), lease_dup (attached)
 *   reap.c          fairsem_reap
 *   probe.c         the prober's and deputies' rounds, and a non-waiting
 *                   caller's look for dead holders
 * A kick lost is a wake-up lost: every path that frees capacity must reach
 * one.
 *
 * Barging (the default; not with FAIRSEM_STRICT_FIFO) adds one caller and
 * one step.  A waiter whose owner is running (sem.c: just queued, or woken
 * with its cell FS_CELL_ROUSED) kicks with itself named
 * (fairsem__schedule_self) and may grant itself.
 * A decision whose free slot belongs to a young oldest eligible request
 * and that no running caller may take rouses that request (ticket.c)
 * instead of reserving the slot for it; see docs/design.md section 3.
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

static bool commit(fairsem_t *sem, uint64_t v)
{
    return atomic_compare_exchange_strong(&sem->hdr->version, &v, v + 1);
}

/* Let the newcomer take free slot i: 0, or -EAGAIN to look again. */
static int take(fairsem_t *sem, fairsem_tenant_t *newcomer, uint64_t v, uint32_t i, fairsem_slot_t *slot)
{
    uint32_t stamp = fairsem__slot_stamp(sem);
    if (!fairsem__slot_claim(sem, i, fs_slot_word(FS_SLOT_HELD, stamp, newcomer->idx, sem->proc_tag)))
        return -EAGAIN;
    FS_CRASHPOINT("take.claimed");
    if (!commit(sem, v)) {
        fairsem__slot_unclaim(sem, i); /* uncommitted: still only ours */
        FS_CRASHPOINT("take.undone");
        return -EAGAIN;
    }
    FS_CRASHPOINT("take.committed");
    *slot = fairsem__slot_taken(newcomer, i, stamp);
    fs_count(sem, newcomer->idx, FS_CNT_GRANTS_IMMEDIATE, 1);
    return 0;
}

/* Reserve free slot i for waiter w, commit, then mark its cell GRANTED and
 * wake its owner, unless the owner is the caller (self).  True if the cell
 * was granted. */
static bool grant(fairsem_t *sem, const struct fs_waiter *w, uint64_t v, uint32_t i, uint32_t self)
{
    uint64_t res = fs_slot_word(FS_SLOT_RESERVED, fs_seq_stamp(w->seq), w->cell, sem->proc_tag);
    if (!fairsem__slot_claim(sem, i, res))
        return false;
    FS_CRASHPOINT("grant.reserved");
    if (!commit(sem, v)) {
        fairsem__slot_unclaim(sem, i);
        FS_CRASHPOINT("grant.undone");
        return false;
    }
    FS_CRASHPOINT("grant.committed");
    if (!fairsem__ticket_grant(sem, w->cell, w->seq, i)) {
        fairsem__slot_withdraw(sem, i, res); /* cancelled meanwhile */
        FS_CRASHPOINT("grant.withdrawn");
        return false;
    }
    FS_CRASHPOINT("grant.granted");
    if (w->cell != self)
        fairsem__ticket_wake(sem, w->cell);
    return true;
}

/* `self`: the cell of a queued request whose owner runs this decision
 * (barging), or FS_NO_CELL; *mine is set when that cell is
 * granted. */
static int schedule(fairsem_t *sem, fairsem_tenant_t *newcomer, uint32_t self, bool *mine, fairsem_slot_t *slot)
{
    uint32_t nt = newcomer ? newcomer->idx : FS_NO_TENANT;
    for (;;) {
        uint64_t v = atomic_load(&sem->hdr->version);
        struct fs_snapshot *s = fairsem__snapshot(sem);
        if (!s)
            return -ENOMEM;
        struct fs_action act = fairsem__policy_next(s, nt, *mine ? FS_NO_CELL : self);
        if (act.kind == FS_ACT_NONE)
            return newcomer ? -EAGAIN : 0;
        if (act.kind == FS_ACT_ROUSE) {
            /* Changes no share, so nothing to commit: the roused owner
             * looks for itself (and a newcomer that may not take the slot
             * waits, as with strict FIFO). */
            fairsem__ticket_rouse(sem, act.waiter->cell, act.waiter->seq);
            if (s->nfree > 1)
                continue; /* the next free slot needs a roused owner of its own */
            return newcomer ? -EAGAIN : 0;
        }
        if (act.kind == FS_ACT_TAKE) {
            if (take(sem, newcomer, v, s->first_free, slot) == 0)
                return 0;
            continue;
        }
        const struct fs_waiter w = *act.waiter;
        if (grant(sem, &w, v, s->first_free, self) && w.cell == self) {
            *mine = true;
            if (s->nfree == 1)
                return 0; /* with more free slots, go on to pass them on */
        }
    }
}

int fairsem__schedule(fairsem_t *sem, fairsem_tenant_t *newcomer, fairsem_slot_t *slot)
{
    bool mine = false;
    return schedule(sem, newcomer, FS_NO_CELL, &mine, slot);
}

bool fairsem__schedule_self(fairsem_t *sem, uint32_t c)
{
    bool mine = false;
    schedule(sem, NULL, c, &mine, NULL);
    return mine;
}

void fairsem__kick(fairsem_t *sem)
{
    if (waiters_present(sem))
        fairsem__schedule(sem, NULL, NULL);
}

int fairsem__attach_kick(fairsem_t *sem)
{
    bool kick = false;
    int rc = fairsem__attach(sem, &kick);
    if (kick)
        fairsem__kick(sem);
    return rc;
}
