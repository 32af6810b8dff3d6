/*
 * snapshot.c - read the slots and the queue into a fs_snapshot.
 *
 * A snapshot is not atomic: slots and cells change while it is read.  That
 * is fine because no decision taken on it lands unless the version word is
 * unchanged when the decision commits (see layout.h), and every change
 * that could make such a decision wrong moves the version word.
 *
 * Scratch space is per thread (no allocation on the hot path after the
 * first call) and sized to the largest segment this thread has seen.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct scratch {
    unsigned cap_tenants, cap_waiters, cap_slots;
    uint32_t *reserved_cells;
    unsigned nreserved;
    struct fs_snapshot snap;
};

/* The thread's scratch, found through a plain TLS pointer on the hot path;
 * the key only exists to free it when the thread exits. */
static _Thread_local struct scratch *thread_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct scratch *sc = p;
    free(sc->snap.held);
    free(sc->snap.waiting);
    free(sc->snap.weight);
    free(sc->snap.closing);
    free(sc->snap.touched);
    free(sc->snap.waiters);
    free(sc->reserved_cells);
    free(sc);
}

static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

static struct scratch *scratch_for(const struct fs_geometry *h)
{
    struct scratch *sc = thread_scratch;
    if (sc && sc->cap_tenants >= h->max_tenants && sc->cap_waiters >= h->max_waiters &&
        sc->cap_slots >= h->max_slots)
        return sc;
    pthread_once(&scratch_once, scratch_key_init);
    if (sc) {
        thread_scratch = NULL;
        pthread_setspecific(scratch_key, NULL);
        scratch_free(sc);
    }
    sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->cap_tenants = h->max_tenants;
    sc->cap_waiters = h->max_waiters;
    sc->cap_slots = h->max_slots;
    sc->snap.held = calloc(h->max_tenants, sizeof *sc->snap.held);
    sc->snap.waiting = calloc(h->max_tenants, sizeof *sc->snap.waiting);
    sc->snap.weight = calloc(h->max_tenants, sizeof *sc->snap.weight);
    sc->snap.closing = calloc(h->max_tenants, sizeof *sc->snap.closing);
    sc->snap.touched = calloc(h->max_tenants, sizeof *sc->snap.touched);
    sc->snap.waiters = calloc(h->max_waiters, sizeof *sc->snap.waiters);
    sc->reserved_cells = calloc(h->max_slots, sizeof *sc->reserved_cells);
    if (!sc->snap.held || !sc->snap.waiting || !sc->snap.weight || !sc->snap.closing || !sc->snap.touched ||
        !sc->snap.waiters || !sc->reserved_cells) {
        scratch_free(sc);
        return NULL;
    }
    pthread_setspecific(scratch_key, sc);
    thread_scratch = sc;
    return sc;
}

/* First sight of t in this snapshot: list it, and read its weight and
 * closing mark once so every share computed from this snapshot uses the
 * same. */
static void touch(struct fs_snapshot *s, uint32_t t)
{
    if (s->held[t] == 0 && s->waiting[t] == 0) {
        const struct fs_tenant *e = &s->tenants[t];
        s->touched[s->ntouched++] = t;
        s->weight[t] = atomic_load(&e->weight);
        s->closing[t] = fs_tenant_closing(atomic_load(&e->state), atomic_load(&e->closing));
    }
}

static bool is_reserved(const struct scratch *sc, uint32_t c)
{
    for (unsigned k = 0; k < sc->nreserved; k++)
        if (sc->reserved_cells[k] == c)
            return true;
    return false;
}

static void scan_slots(fairsem_t *sem, struct scratch *sc)
{
    struct fs_snapshot *s = &sc->snap;
    for (uint32_t i = 0; i < s->max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        uint32_t t = FS_NO_TENANT;
        /* Free means exactly 0, as every claim expects: a FREE-kind word
         * with stray bits (or any word of no known kind) is in use by
         * nobody, so no decision ever picks a slot its claim cannot take.
         * fairsem_reap resets such words. */
        if (w == 0) {
            if (s->nfree++ == 0)
                s->first_free = i;
            continue;
        }
        switch (fs_slot_kind(w)) {
        case FS_SLOT_HELD: t = fs_slot_who(w); break;
        case FS_SLOT_RESERVED: {
            uint32_t c = fs_slot_who(w);
            if (c >= sem->geo.max_waiters)
                break;
            struct fs_cell *cell = &sem->cells[c];
            uint64_t st = atomic_load(&cell->state);
            bool live = fs_cell_kind(st) == FS_CELL_WAITING ||
                        (fs_cell_kind(st) == FS_CELL_GRANTED && fs_cell_slot(st) == i);
            if (live && fs_cell_stamp(st) == fs_slot_stamp(w)) {
                t = atomic_load(&cell->tenant);
                sc->reserved_cells[sc->nreserved++] = c;
            }
            break;
        }
        default: break;
        }
        s->in_use++;
        if (t < s->ntenants) {
            touch(s, t);
            s->held[t]++;
        }
    }
}

/* Could `owner` be a cell owner's word (FS_OWNER_BIT | the tag of a record
 * that exists, no other bit)?  Whether that record lives is the reaper's
 * question, not ours. */
static bool owner_plausible(const fairsem_t *sem, uint64_t owner)
{
    return fs_owner_well_formed(owner) && fs_owner_record(owner) < sem->geo.max_procs;
}

static void scan_cells(fairsem_t *sem, struct scratch *sc)
{
    struct fs_snapshot *s = &sc->snap;
    for (uint32_t k = 0; k < sem->geo.map_words; k++) {
        uint64_t bits = atomic_load(&sem->map[k]);
        while (bits) {
            uint32_t c = k * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= sem->geo.max_waiters)
                break;
            struct fs_cell *cell = &sem->cells[c];
            uint64_t st = atomic_load(&cell->state);
            if (fs_cell_kind(st) != FS_CELL_WAITING || is_reserved(sc, c))
                continue;
            uint32_t t = atomic_load(&cell->tenant);
            uint64_t seq = atomic_load(&cell->seq);
            if (t >= s->ntenants || !fs_cell_waiting(st, seq))
                continue; /* recycled while we read it (or malformed) */
            /* Owner read after state: 0 means the cell was freed since (its
             * owner word is cleared last), or that nobody owns it at all; a
             * grant to such a cell would reach nobody. */
            if (!owner_plausible(sem, atomic_load(&cell->owner)))
                continue;
            /* Read after the state: this incarnation's (written before its
             * seq).  0: handed its slot whatever its age. */
            uint64_t since = 0;
            if (fs_barging(s->flags) && !fs_cell_handoff(st) && !(atomic_load(&cell->flags) & FS_CELL_ASYNC))
                since = atomic_load(&cell->enqueued_ns);
            s->waiters[s->nwaiters++] = (struct fs_waiter){seq, c, t, since, fs_cell_roused(st)};
            touch(s, t);
            s->waiting[t]++;
        }
    }
}

struct fs_snapshot *fairsem__snapshot(fairsem_t *sem)
{
    const struct fs_geometry *h = &sem->geo;
    struct scratch *sc = scratch_for(h);
    if (!sc)
        return NULL;
    struct fs_snapshot *s = &sc->snap;
    for (unsigned k = 0; k < s->ntouched; k++) {
        s->held[s->touched[k]] = 0;
        s->waiting[s->touched[k]] = 0;
    }
    s->ntouched = 0;
    s->nwaiters = 0;
    s->nfree = 0;
    s->in_use = 0;
    s->first_free = 0;
    sc->nreserved = 0;
    s->max_slots = h->max_slots;
    s->min_share = h->min_share;
    s->flags = h->flags;
    s->ntenants = h->max_tenants;
    s->shares = sem->shares;
    s->tenants = sem->tenants;
    scan_slots(sem, sc);
    scan_cells(sem, sc);
    s->now_ns = fs_barging(s->flags) && s->nwaiters ? fairsem__now_ns() : 0;
    return s;
}
