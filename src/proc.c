/*
 * proc.c - process records: claiming one under its lease, proving an owner
 * dead, and scrubbing what a dead (or detaching) record's tags name.
 *
 * A record's state is FREE(g), LIVE(g) or DEAD(g) (layout.h says who moves
 * it).  Death is proven without the lease (F_OFD_GETLK finds the lease byte
 * unlocked while the state still reads LIVE(g), then CAS to DEAD(g)), so no
 * prober ever holds the lease of a live-looking record; slot and cell words
 * of a DEAD record are then scrubbed by anyone, each step a CAS guarded by
 * the state still reading DEAD(g).  Only a scrubber holding the lease clears
 * registrations, finishes tenant work and lets the record go (FREE, or LIVE
 * for a claimer).  A scrub frees capacity, but nothing here runs the
 * scheduler: fairsem__attach and fairsem__proc_reap_if_dead report it, and
 * their callers kick (schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <unistd.h>

static bool own_record(const fairsem_t *sem, uint32_t p)
{
    return sem->attach_epoch == atomic_load(&fairsem__fork_epoch) && sem->proc_idx == p;
}

/* ------------------------------------------------------------- scrubbing */

/* One scrub of record p: words naming p are freed only while p's state
 * still reads `guard` (DEAD(g) for anyone; the scrubber's own LIVE state
 * when it owns p), and cells are taken over with the owner word `me`. */
struct scrub {
    fairsem_t *sem;
    uint32_t p;
    uint64_t guard;
    uint64_t me;
    fairsem_reap_report_t *report;
};

/* The tag of the incarnation a scrub frees: only words naming exactly it
 * are touched (a claimer's own words, naming p's next generation, never
 * are). */
static uint32_t victim_tag(const struct scrub *sc) { return fs_proc_state_tag(sc->p, sc->guard); }

static bool guarded(const struct scrub *sc) { return atomic_load(&sc->sem->procs[sc->p].state) == sc->guard; }

/* Free slot i if it still holds the reservation for cell c's request,
 * granted in state `granted` (the stamp ties the slot word to that one
 * request; the cell is re-read just before, with its 32-bit seq, so a
 * scrubber stopped since it read the grant cannot free a reservation for
 * a later request of a recycled cell). */
static bool free_reservation(fairsem_t *sem, uint32_t i, uint32_t c, uint64_t granted)
{
    if (i >= sem->geo.max_slots)
        return false; /* corrupt grant: there is no such slot */
    uint64_t w = atomic_load(&sem->slots[i]);
    return fs_slot_reserved_for(w, c, fs_cell_seq(granted)) && atomic_load(&sem->cells[c].state) == granted &&
           atomic_compare_exchange_strong(&sem->slots[i], &w, 0);
}

/* A request or a slot of a dead record counts as reclaimed; one of a
 * record detaching (its own scrub) as what it is: a cancel, a hold's end. */
static bool reclaiming(const struct scrub *sc) { return fs_proc_is_dead(sc->guard); }

/* Close a WAITING cell to granters (CAS, so a recycled cell's new request,
 * with its own seq, is never touched); free the slot a GRANTED one was
 * given.  *s is the state read; `owner` the owner word it was read under. */
static bool close_cell(const struct scrub *sc, uint32_t c, uint64_t *s, uint64_t owner)
{
    struct fs_cell *cell = &sc->sem->cells[c];
    uint32_t tenant = atomic_load(&cell->tenant);
    while (fs_cell_kind(*s) == FS_CELL_WAITING) {
        uint64_t closed = fs_cell_moved(*s, FS_CELL_CANCELLED, 0);
        if (atomic_compare_exchange_strong(&cell->state, s, closed)) {
            *s = closed;
            fs_count(sc->sem, tenant, reclaiming(sc) ? FS_CNT_RECLAIMED_REQUESTS : FS_CNT_CANCELS, 1);
            break;
        }
        if (atomic_load(&cell->owner) != owner || !guarded(sc))
            return false;
    }
    FS_CRASHPOINT("scrub.cell_closed");
    if (fs_cell_kind(*s) == FS_CELL_GRANTED && free_reservation(sc->sem, fs_cell_slot(*s), c, *s)) {
        fs_count(sc->sem, tenant, reclaiming(sc) ? FS_CNT_RECLAIMED_SLOTS : FS_CNT_CANCELS, 1);
        if (sc->report)
            sc->report->slots++;
    }
    FS_CRASHPOINT("scrub.cell_slot_freed");
    return true;
}

static void scrub_cells(const struct scrub *sc)
{
    fairsem_t *sem = sc->sem;
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        struct fs_cell *cell = &sem->cells[c];
        /* State before owner: if the owner word still names p afterwards,
         * the state read is p's request's, or a CAS on it fails. */
        uint64_t s = atomic_load(&cell->state);
        uint64_t owner = atomic_load(&cell->owner);
        if (owner != fs_owner_word(victim_tag(sc)))
            continue;
        if (!guarded(sc) || !close_cell(sc, c, &s, owner))
            continue;
        if (owner != sc->me) {
            /* Empty it (a CAS from the closed state: the seq in it names
             * p's request), then take it over, so that we alone clear its
             * queue-map bit: a late scrubber must never clear the bit of
             * the cell's next owner.  A dead owner writes nothing, so an
             * EMPTY cell it still owns stays EMPTY. */
            if (fs_cell_kind(s) != FS_CELL_EMPTY && atomic_compare_exchange_strong(&cell->state, &s, 0)) {
                FS_CRASHPOINT("scrub.cell_emptied");
                if (sc->report)
                    sc->report->tickets++;
            }
            if (atomic_load(&cell->state) != 0 || !guarded(sc) ||
                !atomic_compare_exchange_strong(&cell->owner, &owner, sc->me))
                continue;
            FS_CRASHPOINT("scrub.cell_taken");
        } else if (sc->report && fs_cell_kind(s) != FS_CELL_EMPTY) {
            sc->report->tickets++;
        }
        fairsem__ticket_free(sem, c);
    }
}

static void scrub_slots(const struct scrub *sc)
{
    fairsem_t *sem = sc->sem;
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        while (fs_slot_kind(w) != FS_SLOT_FREE && fs_slot_owner(w) == victim_tag(sc)) {
            if (fs_slot_kind(w) == FS_SLOT_RESERVED) {
                /* p granted it; once its cell says GRANTED with this slot it
                 * belongs to the cell's owner, not to p. */
                uint32_t c = fs_slot_who(w);
                uint64_t s = c < sem->geo.max_waiters ? atomic_load(&sem->cells[c].state) : 0;
                if (fs_cell_granted_by(s, i, w))
                    break;
            }
            if (!guarded(sc))
                return;
            uint64_t since = atomic_load_explicit(&sem->since[i], memory_order_relaxed);
            if (atomic_compare_exchange_strong(&sem->slots[i], &w, 0)) {
                FS_CRASHPOINT("scrub.slot_freed");
                if (fs_slot_kind(w) == FS_SLOT_HELD) {
                    fs_count_hold_end(sem, fs_slot_who(w), since);
                    if (reclaiming(sc))
                        fs_count(sem, fs_slot_who(w), FS_CNT_RECLAIMED_SLOTS, 1);
                    if (sc->report)
                        sc->report->slots++;
                }
                break;
            }
        }
    }
}

/* Re-derive the closing word of every tenant in p's registration row (a
 * CAS from what the opens bits say: anyone may, at any time), so a stopped
 * holder of p's lease cannot leave one stale: it may be stopped after
 * clearing p's opens bits and before re-deriving. */
static void settle_closing_words(const struct scrub *sc)
{
    fairsem_t *sem = sc->sem;
    uint32_t words = sem->geo.reg_words;
    for (uint32_t k = 0; k < words; k++)
        for (uint64_t bits = atomic_load(&fs_row(sem->regs, words, sc->p)[k]); bits; bits &= bits - 1) {
            uint32_t t = k * 64 + (uint32_t)__builtin_ctzll(bits);
            if (t < sem->geo.max_tenants)
                fairsem__tenant_settle_closing(sem, t);
        }
}

/* Registration and open bits carry no generation: cleared only under p's
 * lease.  Open bits go first (an open bit implies the registration bit);
 * then the closing word of every tenant p had registered is re-derived, and
 * only then are the registration bits cleared: a scrubber, or p itself,
 * that died anywhere in between leaves those bits for the next scrubber,
 * which re-derives again. */
static void scrub_registrations(const struct scrub *sc)
{
    fairsem_t *sem = sc->sem;
    uint32_t words = sem->geo.reg_words;
    for (uint32_t k = 0; k < words; k++)
        atomic_store(&fs_row(sem->opens, words, sc->p)[k], 0);
    FS_CRASHPOINT("scrub.closed");
    settle_closing_words(sc);
    for (uint32_t k = 0; k < words; k++) {
        uint64_t bits = atomic_exchange(&fs_row(sem->regs, words, sc->p)[k], 0);
        FS_CRASHPOINT("scrub.unregistered");
        while (bits) {
            uint32_t t = k * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (sc->report)
                sc->report->registrations++;
            if (t < sem->geo.max_tenants)
                fairsem__tenant_retire(sem, t);
        }
    }
}

/* What anyone may do for a DEAD record: free its slot and cell words. */
static void scrub_words(const struct scrub *sc)
{
    scrub_cells(sc);
    scrub_slots(sc);
}

/* What only the holder of p's lease may do (p cannot change state
 * meanwhile).  Tenants of p's may become closing here (shares grow): the
 * caller's kick, due for the freed words anyway, comes after it. */
static void scrub_leased(const struct scrub *sc)
{
    scrub_registrations(sc);
    fairsem__tenant_scrub(sc->sem, sc->p);
}

static void scrub_all(const struct scrub *sc)
{
    scrub_words(sc);
    scrub_leased(sc);
}

/* ------------------------------------------------------- claim, release */

/* Take record p if it is free, or dead (then scrub the dead incarnation
 * as its new owner, and say so in *scrubbed: its slots and cells are back,
 * due to waiters). */
static int try_claim(fairsem_t *sem, uint32_t p, bool *scrubbed)
{
    struct fs_proc *rec = &sem->procs[p];
    if (fairsem__lease_lock(sem->fd, FS_LEASE_BASE + p) != 0)
        return -EAGAIN;
    FS_CRASHPOINT("attach.leased");
    /* The lease is ours: nobody else can claim p or finish its scrub. */
    uint64_t st = atomic_load(&rec->state);
    if (fs_proc_is_live(st)) {
        /* Its owner died since we looked (it would hold the lease): say so
         * at once, so that lease-less scrubbers free its words even if we
         * are stopped from here on. */
        if (!atomic_compare_exchange_strong(&rec->state, &st, fs_proc_dead(fs_proc_gen(st))) &&
            fs_proc_is_live(st)) {
            fairsem__lease_unlock(sem->fd, FS_LEASE_BASE + p);
            return -EAGAIN;
        }
        st = fs_proc_dead(fs_proc_gen(st));
    }
    uint64_t gen = fs_proc_gen(st) + 1;
    struct scrub dead = {sem, p, st, fs_owner_word(fs_proc_tag(p, gen)), NULL};
    if (fs_proc_is_dead(st))
        scrub_words(&dead); /* while p still reads DEAD: others may help */
    rec->pid = (int32_t)getpid();
    rec->attached_ns = fairsem__realtime_ns();
    atomic_store(&rec->wake, 0);
    atomic_store(&rec->state, fs_proc_live(gen));
    FS_CRASHPOINT("attach.live");
    sem->proc_idx = p;
    sem->proc_tag = fs_proc_tag(p, gen);
    if (fs_proc_is_dead(st)) {
        /* The rest of the dead incarnation's state needs the lease, which
         * is ours. */
        scrub_leased(&dead);
        *scrubbed = true;
    }
    return 0;
}

/* Prove LIVE record p's owner dead and mark it DEAD.  The owner locks its
 * lease before it writes LIVE(g) and unlocks only after FREE(g), so an
 * unlocked lease followed by a successful CAS from LIVE(g) means the lease
 * was dropped by the kernel: the owner is gone.  (Our own descriptor's
 * locks are invisible to F_OFD_GETLK: own_record excludes our record, and a
 * fork child has its own open file description before it can call us.) */
static bool prove_dead(fairsem_t *sem, uint32_t p, uint64_t st)
{
    if (own_record(sem, p) || fairsem__lease_held(sem->fd, FS_LEASE_BASE + p) != 0)
        return false; /* held, or we cannot tell */
    if (!atomic_compare_exchange_strong(&sem->procs[p].state, &st, fs_proc_dead(fs_proc_gen(st))))
        return fs_proc_is_dead(st); /* another prober got there first */
    FS_CRASHPOINT("reap.dead");
    return true;
}

static int proc_claim(fairsem_t *sem, bool *scrubbed)
{
    uint32_t n = sem->geo.max_procs;
    uint32_t start = (uint32_t)getpid() % n;
    /* First pass: free records only; second: also dead ones, and live-
     * looking ones whose owners may have died (proven without the lease). */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < n; k++) {
            uint32_t p = (start + k) % n;
            uint64_t st = atomic_load(&sem->procs[p].state);
            if (pass == 0 && !fs_proc_is_free(st))
                continue;
            if (fs_proc_is_live(st) && !prove_dead(sem, p, st))
                continue;
            if (try_claim(sem, p, scrubbed) == 0)
                return 0;
        }
    }
    return FAIRSEM_EPROCS;
}

int fairsem__attach(fairsem_t *sem, bool *kick)
{
    uint64_t epoch = atomic_load(&fairsem__fork_epoch);
    if (__atomic_load_n(&sem->attach_epoch, __ATOMIC_ACQUIRE) == epoch)
        return 0;
    if (sem->readonly)
        return -EPERM;
    pthread_mutex_lock(&sem->attach_lock);
    int rc = 0;
    bool scrubbed = false;
    if (sem->attach_epoch != epoch) {
        if (sem->fd < 0)
            rc = -EBADF;
        else if ((rc = proc_claim(sem, &scrubbed)) == 0)
            __atomic_store_n(&sem->attach_epoch, epoch, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sem->attach_lock);
    if (kick && scrubbed)
        *kick = true;
    return rc;
}

void fairsem__proc_scrub_self(fairsem_t *sem)
{
    uint32_t p = sem->proc_idx;
    struct scrub self = {sem, p, atomic_load(&sem->procs[p].state), fs_owner_word(sem->proc_tag), NULL};
    scrub_all(&self);
    FS_CRASHPOINT("detach.scrubbed");
}

void fairsem__proc_release(fairsem_t *sem)
{
    uint32_t p = sem->proc_idx;
    struct fs_proc *rec = &sem->procs[p];
    atomic_store(&rec->state, fs_proc_free(fs_proc_gen(atomic_load(&rec->state))));
    FS_CRASHPOINT("detach.freed");
    fairsem__lease_unlock(sem->fd, FS_LEASE_BASE + p);
}

bool fairsem__proc_reap_if_dead(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report)
{
    if (own_record(sem, p))
        return false;
    uint64_t st = atomic_load(&sem->procs[p].state);
    if (fs_proc_is_live(st) && prove_dead(sem, p, st))
        st = fs_proc_dead(fs_proc_gen(st));
    if (!fs_proc_is_dead(st))
        return false; /* alive, free, or detached meanwhile */
    struct scrub sc = {sem, p, st, fs_owner_word(sem->proc_tag), report};
    scrub_words(&sc);
    settle_closing_words(&sc);
    if (report)
        report->procs++;
    /* The rest needs the lease; if a stopped scrubber holds it, the slots
     * are already back and only the record and its tenant work wait.  Our
     * pass above was complete if p still reads DEAD(g) (a guard that failed
     * means p moved on): every word naming p is freed, or another
     * scrubber's now. */
    if (fairsem__lease_lock(sem->fd, FS_LEASE_BASE + p) == 0) {
        FS_CRASHPOINT("reap.leased");
        if (atomic_load(&sem->procs[p].state) == st) {
            scrub_leased(&sc);
            atomic_store(&sem->procs[p].state, fs_proc_free(fs_proc_gen(st)));
            FS_CRASHPOINT("reap.freed");
        }
        fairsem__lease_unlock(sem->fd, FS_LEASE_BASE + p);
    }
    return true;
}

int fairsem__record_alive(fairsem_t *sem, uint32_t p)
{
    if (p >= sem->geo.max_procs)
        return 0;
    if (sem->attach_epoch == atomic_load(&fairsem__fork_epoch) && !sem->readonly && p == sem->proc_idx)
        return 1; /* our own lease: GETLK does not see our own locks */
    return fairsem__lease_held(sem->fd, FS_LEASE_BASE + p) > 0;
}

bool fairsem__tag_gone(const fairsem_t *sem, uint32_t tag)
{
    uint32_t p = fs_tag_proc(tag);
    if (p >= sem->geo.max_procs)
        return true;
    uint64_t st = atomic_load(&sem->procs[p].state);
    return fs_proc_is_free(st) || fs_proc_state_tag(p, st) != tag;
}
