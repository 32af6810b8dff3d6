/*
 * check.c - fairsem_check(): verify the segment's invariants.
 *
 * Counts (held per tenant, in use, free) are derived from the tags, so
 * "the counts match the tags" holds by construction; what can go wrong is a
 * tag that is malformed or names something dead or gone, and that is what
 * this looks for.  Other processes keep running while it reads, so a state
 * in passing (a grant between two of its writes) can look wrong for a
 * moment: a pass that finds anything is repeated, and only what every pass
 * finds is reported.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PASSES 5

struct finding {
    unsigned kind;
    char text[160];
};

struct pass {
    struct finding found[64];
    unsigned n, kinds;
};

static void note(struct pass *ps, unsigned kind, const char *fmt, ...)
{
    ps->kinds |= kind;
    if (ps->n == sizeof ps->found / sizeof ps->found[0])
        return;
    struct finding *f = &ps->found[ps->n++];
    f->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof f->text, fmt, ap);
    va_end(ap);
}

/* Is tag (record + generation) the current incarnation of a live record? */
static bool tag_live(fairsem_t *sem, uint32_t tag)
{
    uint32_t p = fs_tag_proc(tag);
    if (p >= sem->geo.max_procs)
        return false;
    uint64_t st = atomic_load(&sem->procs[p].state);
    return fs_proc_is_live(st) && fs_proc_state_tag(p, st) == tag && fairsem__record_alive(sem, p);
}

/* Is tag the next incarnation of a DEAD record whose lease is held, i.e. a
 * claimer's, which takes the dead incarnation's cells over (EMPTY) before
 * it frees them and writes LIVE (proc.c, try_claim)? */
static bool tag_claiming(fairsem_t *sem, uint32_t tag)
{
    uint32_t p = fs_tag_proc(tag);
    if (p >= sem->geo.max_procs)
        return false;
    uint64_t st = atomic_load(&sem->procs[p].state);
    return fs_proc_is_dead(st) && fs_proc_tag(p, fs_proc_gen(st) + 1) == tag && fairsem__record_alive(sem, p);
}

/* Is owner word o a well-formed cell owner naming a live incarnation? */
static bool owner_live(fairsem_t *sem, uint64_t o)
{
    return fs_owner_well_formed(o) && tag_live(sem, fs_owner_tag(o));
}

static bool tenant_valid(const fairsem_t *sem, uint32_t t)
{
    if (t >= sem->geo.max_tenants)
        return false;
    return fs_tenant_live(atomic_load(&sem->tenants[t].state));
}

/* Does record p have tenant t registered?  A holder always does: its bit
 * is set before its first acquire for t and cleared only after its last
 * release (registration.c; a scrub frees slots before it clears bits). */
static bool registers(const fairsem_t *sem, uint32_t p, uint32_t t)
{
    return fs_bit_test(fs_row(sem->regs, sem->geo.reg_words, p), t);
}

static bool opens(const fairsem_t *sem, uint32_t p, uint32_t t)
{
    return fs_bit_test(fs_row(sem->opens, sem->geo.reg_words, p), t);
}

static bool holds_any(fairsem_t *sem, uint32_t t)
{
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_kind(w) == FS_SLOT_HELD && fs_slot_who(w) == t)
            return true;
    }
    return false;
}

static void check_slots(fairsem_t *sem, struct pass *ps)
{
    const struct fs_geometry *h = &sem->geo;
    for (uint32_t i = 0; i < h->max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        switch (fs_slot_kind(w)) {
        case FS_SLOT_FREE:
            if (w != 0)
                note(ps, FAIRSEM_CHECK_SLOTS, "slot %u: free word with stray bits %#llx", i,
                     (unsigned long long)w);
            break;
        case FS_SLOT_HELD: {
            bool valid = tenant_valid(sem, fs_slot_who(w)), live = tag_live(sem, fs_slot_owner(w));
            if (!valid)
                note(ps, FAIRSEM_CHECK_SLOTS, "slot %u: held for tenant index %u, which is not a tenant", i,
                     fs_slot_who(w));
            if (!live)
                note(ps, FAIRSEM_CHECK_DEAD, "slot %u: held by record %u, which is dead or gone", i,
                     fs_slot_record(w));
            if (valid && live && !registers(sem, fs_slot_record(w), fs_slot_who(w)))
                note(ps, FAIRSEM_CHECK_SLOTS,
                     "slot %u: held by record %u for tenant %u, which it does not register", i, fs_slot_record(w),
                     fs_slot_who(w));
            break;
        }
        case FS_SLOT_RESERVED: {
            uint32_t c = fs_slot_who(w);
            if (c >= h->max_waiters) {
                note(ps, FAIRSEM_CHECK_SLOTS, "slot %u: reserved for cell %u, out of range", i, c);
                break;
            }
            uint64_t s = atomic_load(&sem->cells[c].state);
            bool granted = fs_cell_kind(s) == FS_CELL_GRANTED && fs_cell_slot(s) == i;
            if (fs_cell_stamp(s) != fs_slot_stamp(w) || !(granted || fs_cell_kind(s) == FS_CELL_WAITING))
                note(ps, FAIRSEM_CHECK_SLOTS, "slot %u: reserved for a request of cell %u that is gone", i, c);
            else if (granted && !owner_live(sem, atomic_load(&sem->cells[c].owner)))
                note(ps, FAIRSEM_CHECK_DEAD, "slot %u: granted to a request of a dead record", i);
            else if (!granted && !tag_live(sem, fs_slot_owner(w)))
                note(ps, FAIRSEM_CHECK_DEAD, "slot %u: reservation by a dead record", i);
            break;
        }
        default: note(ps, FAIRSEM_CHECK_SLOTS, "slot %u: malformed word %#llx", i, (unsigned long long)w);
        }
    }
}

static void check_cells(fairsem_t *sem, struct pass *ps)
{
    const struct fs_geometry *h = &sem->geo;
    uint64_t next_seq = atomic_load(&sem->hdr->ticket_seq);
    for (uint32_t c = 0; c < h->max_waiters; c++) {
        const struct fs_cell *cell = &sem->cells[c];
        uint64_t owner = atomic_load(&cell->owner);
        uint64_t s = atomic_load(&cell->state);
        bool mapped = fs_bit_test(sem->map, c);
        if (!owner) {
            if (s != 0 || mapped)
                note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: no owner but %s", c, s ? "a state" : "in the queue map");
            continue;
        }
        if (owner & ~(FS_OWNER_BIT | FS_TAG_MASK))
            note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: malformed owner word %#llx", c, (unsigned long long)owner);
        else if (!owner_live(sem, owner) &&
                 !(s == 0 && fs_owner_well_formed(owner) && tag_claiming(sem, fs_owner_tag(owner))))
            note(ps, FAIRSEM_CHECK_DEAD, "cell %u: owned by record %u, which is dead or gone", c,
                 fs_owner_record(owner));
        if (fs_cell_kind(s) == FS_CELL_EMPTY)
            continue; /* being filled or emptied */
        if (!mapped)
            note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: queued but missing from the queue map", c);
        /* Only a WAITING word of a barging segment may carry marks. */
        bool marks_explained = fs_barging(sem->geo.flags) && fs_cell_waiting(s, fs_cell_seq(s));
        if (fs_cell_kind(s) > FS_CELL_CANCELLED ||
            (fs_cell_kind(s) != FS_CELL_GRANTED && fs_cell_slot(s) != 0 && !marks_explained))
            note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: malformed state %#llx", c, (unsigned long long)s);
        if (atomic_load(&cell->seq) >= next_seq || !fs_cell_of_seq(s, atomic_load(&cell->seq)))
            note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: ticket number out of step", c);
        if (!tenant_valid(sem, atomic_load(&cell->tenant)))
            note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: queued for a tenant that does not exist", c);
        if (fs_cell_kind(s) == FS_CELL_GRANTED) {
            uint32_t i = fs_cell_slot(s);
            uint64_t w = i < h->max_slots ? atomic_load(&sem->slots[i]) : 0;
            if (fs_slot_kind(w) != FS_SLOT_RESERVED || fs_slot_who(w) != c)
                note(ps, FAIRSEM_CHECK_QUEUE, "cell %u: granted slot %u, which is not reserved for it", c, i);
        }
    }
    /* Bits past the last cell in the map's last word (scanners skip them). */
    if (h->max_waiters % 64 && atomic_load(&sem->map[h->map_words - 1]) >> (h->max_waiters % 64))
        note(ps, FAIRSEM_CHECK_QUEUE, "queue map: bits set past cell %u, the last", h->max_waiters - 1);
}

static void check_tenants(fairsem_t *sem, struct pass *ps)
{
    const struct fs_geometry *h = &sem->geo;
    for (uint32_t t = 0; t < h->max_tenants; t++) {
        uint64_t st = atomic_load(&sem->tenants[t].state);
        unsigned kind = fs_tenant_kind(st);
        uint32_t worker = fs_tenant_proc(st); /* inserter (INIT) or retirer (DYING) */
        if ((kind == FS_TENANT_INIT || kind == FS_TENANT_DYING) &&
            (worker >= h->max_procs || !fairsem__record_alive(sem, worker)))
            note(ps, FAIRSEM_CHECK_DEAD, "tenant %u: left %s by record %u, which is dead", t,
                 kind == FS_TENANT_INIT ? "half-inserted" : "half-retired", worker);
        char name[FAIRSEM_TENANT_ID_MAX + 1], other[FAIRSEM_TENANT_ID_MAX + 1];
        if (!tenant_valid(sem, t))
            continue;
        st = fairsem__tenant_name(sem, t, name);
        size_t len = strlen(name);
        if (!st || len == 0 || fs_hash(name, len) != fs_tenant_hash(st)) {
            note(ps, FAIRSEM_CHECK_TENANTS, "tenant %u: malformed name or hash", t);
            continue;
        }
        for (uint32_t u = t + 1; u < h->max_tenants; u++)
            if (tenant_valid(sem, u) && fairsem__tenant_name(sem, u, other) && strcmp(name, other) == 0)
                note(ps, FAIRSEM_CHECK_TENANTS, "tenants %u and %u: both named \"%s\"", t, u, name);
        if (fs_tenant_kind(st) == FS_TENANT_ACTIVE) {
            bool open = false;
            for (uint32_t p = 0; p < h->max_procs && !open; p++)
                open = opens(sem, p, t);
            /* The mark only decides whether held slots count as demand: a
             * stale one on a tenant that holds nothing (a scrubber stopped
             * between clearing a record's opens bits and re-deriving) changes
             * nothing and is not reported. */
            if (fs_tenant_closing(st, atomic_load(&sem->tenants[t].closing)) == open && holds_any(sem, t))
                note(ps, FAIRSEM_CHECK_TENANTS, "tenant %u: marked %s, but %s", t, open ? "closing" : "open",
                     open ? "a registration of it is open" : "every registration of it is unregistered");
        }
    }
    for (uint32_t p = 0; p < h->max_procs; p++) {
        uint64_t st = atomic_load(&sem->procs[p].state);
        /* A DEAD record's bits are cleared by whoever holds its lease: not
         * a fault while somebody does (or is stopped doing) that. */
        bool live = !fs_proc_is_free(st) && fairsem__record_alive(sem, p);
        for (uint32_t k = 0; k < h->reg_words; k++) {
            uint64_t bits = atomic_load(&fs_row(sem->regs, h->reg_words, p)[k]);
            if (bits && !live)
                note(ps, FAIRSEM_CHECK_DEAD, "record %u: dead or free, still registers tenants", p);
            for (; bits; bits &= bits - 1) {
                uint32_t t = k * 64 + (uint32_t)__builtin_ctzll(bits);
                if (!tenant_valid(sem, t))
                    note(ps, FAIRSEM_CHECK_TENANTS, "record %u: registers tenant index %u, which is free", p, t);
            }
            uint64_t open = atomic_load(&fs_row(sem->opens, h->reg_words, p)[k]);
            if (open && !live)
                note(ps, FAIRSEM_CHECK_DEAD, "record %u: dead or free, still has tenants open", p);
            for (open &= ~atomic_load(&fs_row(sem->regs, h->reg_words, p)[k]); open; open &= open - 1)
                note(ps, FAIRSEM_CHECK_TENANTS, "record %u: has tenant index %u open without registering it", p,
                     k * 64 + (uint32_t)__builtin_ctzll(open));
        }
    }
}

int fairsem_check(fairsem_t *sem, fairsem_violation_fn report, void *arg)
{
    if (!sem)
        return -EINVAL;
    static _Thread_local struct pass ps;
    for (int pass = 0; pass < PASSES; pass++) {
        memset(&ps, 0, sizeof ps);
        check_slots(sem, &ps);
        check_cells(sem, &ps);
        check_tenants(sem, &ps);
        if (ps.kinds == 0)
            return 0;
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    for (unsigned k = 0; report && k < ps.n; k++)
        report(arg, ps.found[k].kind, ps.found[k].text);
    return (int)ps.kinds;
}
