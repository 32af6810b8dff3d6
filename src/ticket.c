/*
 * ticket.c - queued requests ("tickets") in the cell table.
 *
 * A cell is claimed by CAS on its owner word, then announced in the queue
 * map, filled, numbered from header.ticket_seq and only then made WAITING;
 * the version bump that follows is the moment the request joins the queue
 * (see layout.h).  A cell leaves in the reverse order: EMPTY, map bit,
 * owner.  A process dying anywhere in between leaves a cell whose owner
 * word names it, which its scrubber frees.  Functions here change cell
 * words and report what they did; they never run the scheduler (the rule
 * is in schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <limits.h>

static void map_set(fairsem_t *sem, uint32_t c, bool on)
{
    _Atomic uint64_t *w = &sem->map[c / 64];
    uint64_t bit = fs_bit(c);
    if (on)
        atomic_fetch_or(w, bit);
    else
        atomic_fetch_and(w, ~bit);
}

/* The slot words reserved for the request (cell c, seq), folded into one
 * value that changes whenever any of them does (0: none). */
static uint64_t reservations_for(fairsem_t *sem, uint32_t c, uint64_t seq)
{
    uint64_t seen = 0;
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_reserved_for(w, c, seq))
            seen ^= w * 0x9e3779b97f4a7c15ull + i;
    }
    return seen;
}

/* Claim a free cell for this process (owner word, then the queue map; the
 * cell stays EMPTY, which scanners ignore, until published).  With a kept
 * seq, skip cells an old reservation for that same (cell, seq) still
 * points at: the request would be hidden there again. */
static int claim_cell(fairsem_t *sem, uint64_t kept_seq, uint32_t *out)
{
    uint32_t n = sem->geo.max_waiters;
    uint32_t start = (sem->proc_idx * 31u + atomic_fetch_add(&sem->next_stamp, 1)) % n;
    uint64_t me = fs_owner_word(sem->proc_tag);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t c = (start + k) % n;
        struct fs_cell *cell = &sem->cells[c];
        uint64_t none = 0;
        if (atomic_load(&cell->owner) != 0 || (kept_seq != FS_NEW_SEQ && reservations_for(sem, c, kept_seq)) ||
            !atomic_compare_exchange_strong(&cell->owner, &none, me))
            continue;
        FS_CRASHPOINT("enqueue.owned");
        map_set(sem, c, true);
        FS_CRASHPOINT("enqueue.mapped");
        *out = c;
        return 0;
    }
    return FAIRSEM_EWAITERS;
}

/* CAS request (c, seq) from WAITING, marked or not, to `to`: true if this
 * call made it leave WAITING.  A failed CAS on a word that is still
 * WAITING only means a mark came or went: try again. */
static bool leave_waiting(fairsem_t *sem, uint32_t c, uint64_t seq, uint64_t to)
{
    struct fs_cell *cell = &sem->cells[c];
    uint64_t s = atomic_load(&cell->state);
    while (fs_cell_waiting(s, seq))
        if (atomic_compare_exchange_weak(&cell->state, &s, to))
            return true;
    return false;
}

/* Fill a claimed cell and make the request WAITING with number `seq`
 * (FS_NEW_SEQ: the next one, i.e. the back of the queue), queued since
 * `enqueued_ns` (a moved request keeps its first cell's, so its wait and
 * age count from when it really queued). */
static uint64_t publish(fairsem_tenant_t *tenant, bool async, uint32_t c, uint64_t seq, uint64_t enqueued_ns)
{
    fairsem_t *sem = tenant->sem;
    struct fs_cell *cell = &sem->cells[c];
    atomic_store(&cell->tenant, tenant->idx);
    atomic_store(&cell->flags, async ? FS_CELL_ASYNC : 0);
    atomic_store(&cell->serial, tenant->serial);
    atomic_store(&cell->enqueued_ns, enqueued_ns);
    FS_CRASHPOINT("enqueue.filled");
    if (seq == FS_NEW_SEQ)
        seq = atomic_fetch_add(&sem->hdr->ticket_seq, 1);
    atomic_store(&cell->seq, seq);
    FS_CRASHPOINT("enqueue.numbered");
    atomic_store(&cell->state, fs_cell_word(seq, FS_CELL_WAITING, 0));
    FS_CRASHPOINT("enqueue.waiting");
    atomic_fetch_add(&sem->hdr->version, 1);
    FS_CRASHPOINT("enqueue.published");
    /* A forced unregistration sets FS_BUSY_FORCED and then cancels the
     * WAITING cells of its serial; this cell was made WAITING before the
     * flag is read here (both sequentially consistent), so either that scan
     * sees the cell or this read sees the flag: no request of a forced
     * registration is left waiting.  (The cell may be roused meanwhile:
     * leave_waiting takes the word marked too.) */
    if (fs_tenant_forced(tenant) && leave_waiting(sem, c, seq, fs_cell_word(seq, FS_CELL_CANCELLED, 0)))
        fs_count(sem, tenant->idx, FS_CNT_CANCELS, 1);
    return seq;
}

int fairsem__ticket_enqueue(fairsem_tenant_t *tenant, bool async, uint32_t *cell, uint64_t *seq)
{
    int rc = claim_cell(tenant->sem, FS_NEW_SEQ, cell);
    if (rc == 0)
        *seq = publish(tenant, async, *cell, FS_NEW_SEQ, fairsem__now_ns());
    return rc;
}

int fairsem__ticket_cancel(fairsem_t *sem, uint32_t c, uint32_t *granted_slot)
{
    struct fs_cell *cell = &sem->cells[c];
    uint64_t s = atomic_load(&cell->state);
    for (;;) {
        switch (fs_cell_kind(s)) {
        case FS_CELL_WAITING:
            if (atomic_compare_exchange_weak(&cell->state, &s, fs_cell_moved(s, FS_CELL_CANCELLED, 0))) {
                FS_CRASHPOINT("cancel.cancelled");
                return FS_TICKET_CANCELLED;
            }
            break;
        case FS_CELL_GRANTED: *granted_slot = fs_cell_slot(s); return FS_TICKET_GRANTED;
        default: return FS_TICKET_ENDED;
        }
    }
}

bool fairsem__ticket_grant(fairsem_t *sem, uint32_t c, uint64_t seq, uint32_t slot)
{
    return leave_waiting(sem, c, seq, fs_cell_word(seq, FS_CELL_GRANTED, slot));
}

/* Set `mark` in request (c, seq)'s WAITING word: true if this call set it
 * (false: the request left WAITING, or the mark was set already). */
static bool set_mark(fairsem_t *sem, uint32_t c, uint64_t seq, uint32_t mark)
{
    struct fs_cell *cell = &sem->cells[c];
    uint64_t s = atomic_load(&cell->state);
    while (fs_cell_waiting(s, seq) && !(fs_cell_slot(s) & mark))
        if (atomic_compare_exchange_weak(&cell->state, &s, fs_cell_marked(s, mark, true)))
            return true;
    return false;
}

void fairsem__ticket_rouse(fairsem_t *sem, uint32_t c, uint64_t seq)
{
    /* Already roused: the owner is on its way (one wake per burst). */
    if (set_mark(sem, c, seq, FS_CELL_ROUSED)) {
        FS_CRASHPOINT("rouse.marked");
        fairsem__ticket_wake(sem, c);
    }
}

bool fairsem__ticket_unrouse(fairsem_t *sem, uint32_t c, uint64_t *s)
{
    uint64_t cleared = fs_cell_marked(*s, FS_CELL_ROUSED, false);
    if (!atomic_compare_exchange_strong(&sem->cells[c].state, s, cleared))
        return false;
    FS_CRASHPOINT("rouse.cleared");
    *s = cleared;
    return true;
}

void fairsem__ticket_mark_handoff(fairsem_t *sem, uint32_t c, uint64_t seq)
{
    if (set_mark(sem, c, seq, FS_CELL_HANDOFF))
        FS_CRASHPOINT("handoff.marked");
}

void fairsem__ticket_free(fairsem_t *sem, uint32_t c)
{
    struct fs_cell *cell = &sem->cells[c];
    atomic_store(&cell->state, 0);
    FS_CRASHPOINT("free.emptied");
    map_set(sem, c, false);
    FS_CRASHPOINT("free.unmapped");
    atomic_store(&cell->owner, 0);
    FS_CRASHPOINT("free.disowned");
}

void fairsem__ticket_wake(fairsem_t *sem, uint32_t c)
{
    struct fs_cell *cell = &sem->cells[c];
    fairsem__futex_wake(fs_cell_futex(cell), INT_MAX);
    if (atomic_load(&cell->flags) & FS_CELL_ASYNC) {
        uint64_t owner = atomic_load(&cell->owner);
        if (owner) {
            struct fs_proc *rec = &sem->procs[fs_owner_record(owner) % sem->geo.max_procs];
            atomic_fetch_add(&rec->wake, 1);
            fairsem__futex_wake(&rec->wake, INT_MAX);
        }
    }
}

bool fairsem__ticket_unhide(fairsem_tenant_t *tenant, bool async, uint32_t *c, uint64_t seq, uint64_t *last_seen)
{
    fairsem_t *sem = tenant->sem;
    uint64_t seen = reservations_for(sem, *c, seq);
    bool stuck = seen != 0 && seen == *last_seen;
    *last_seen = seen;
    if (!stuck)
        return false;
    /* A granter reserved a slot for us a whole poll ago and has not
     * finished: it is stopped (a dead one would have been scrubbed).  Its
     * reservation hides us from every other granter, so move to another
     * cell, keeping our place in the queue (same seq).  The new cell is
     * claimed first (no free cell: stay, and keep waiting); the old one is
     * left only if this call is what takes it out of WAITING (a grant or a
     * forced cancel that got there first stands).  The stranded
     * reservation is the granter's to undo when it resumes. */
    uint32_t fresh, old = *c;
    if (claim_cell(sem, seq, &fresh) < 0)
        return false;
    if (!leave_waiting(sem, old, seq, fs_cell_word(seq, FS_CELL_CANCELLED, 0))) {
        fairsem__ticket_free(sem, fresh);
        return false;
    }
    FS_CRASHPOINT("unhide.left");
    publish(tenant, async, fresh, seq, atomic_load(&sem->cells[old].enqueued_ns));
    fairsem__ticket_free(sem, old);
    *c = fresh;
    *last_seen = 0;
    return true;
}

unsigned fairsem__ticket_cancel_serial(fairsem_t *sem, uint32_t serial)
{
    uint64_t me = fs_owner_word(sem->proc_tag);
    unsigned n = 0;
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        struct fs_cell *cell = &sem->cells[c];
        /* State first: if the cell is recycled after this read, the CAS
         * below fails, since every incarnation has its own seq. */
        uint64_t s = atomic_load(&cell->state);
        if (atomic_load(&cell->owner) != me || atomic_load(&cell->serial) != serial)
            continue;
        /* A mark that comes or goes (a rouse, the owner's unrouse or
         * hand-off mark) fails a CAS on a word still WAITING for the same
         * request: again (leave_waiting); a recycled cell's seq differs. */
        if (fs_cell_kind(s) == FS_CELL_WAITING &&
            leave_waiting(sem, c, fs_cell_seq(s), fs_cell_moved(s, FS_CELL_CANCELLED, 0))) {
            fs_count(sem, atomic_load(&cell->tenant), FS_CNT_CANCELS, 1);
            fairsem__ticket_wake(sem, c);
            n++;
        }
    }
    return n;
}
