/*
 * tenant.c - tenant entries: retiring, finishing a dead worker's entry,
 * closing words and weights.
 *
 * An entry lives while any record has its registration bit; the last
 * process to let go retires it (ACTIVE -> DYING -> FREE), and a registrant
 * that finds it DYING rescues it (DYING -> ACTIVE) after setting its own
 * bit, so the retirer's final CAS fails.  Finding and inserting entries is
 * registration.c's.  Functions here change tenant words and report when
 * the state became more permissive (a tenant became closing, a weight
 * changed); they never run the scheduler (the rule is in schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <string.h>

static _Atomic uint64_t *reg_word(const fairsem_t *sem, uint32_t p, uint32_t t)
{
    return &fs_row(sem->regs, sem->geo.reg_words, p)[t / 64];
}

static bool anyone_registered(const fairsem_t *sem, uint32_t t)
{
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        if (atomic_load(reg_word(sem, p, t)) & fs_bit(t))
            return true;
    return false;
}

/* ACTIVE -> DYING -> FREE when no record registers t.  Entering DYING
 * bumps the generation and names the retirer, so every DYING word is
 * unique: a stale retirer's CAS can never land on an entry that a
 * registrant rescued (DYING -> ACTIVE) in between. */
void fairsem__tenant_retire(fairsem_t *sem, uint32_t t)
{
    struct fs_tenant *e = &sem->tenants[t];
    uint64_t st = atomic_load(&e->state);
    if (fs_tenant_kind(st) != FS_TENANT_ACTIVE || anyone_registered(sem, t))
        return;
    uint64_t dying = fs_tenant_state(FS_TENANT_DYING, sem->proc_idx, fs_tenant_gen(st) + 1, fs_tenant_hash(st));
    if (!atomic_compare_exchange_strong(&e->state, &st, dying))
        return;
    FS_CRASHPOINT("retire.dying");
    uint64_t back = anyone_registered(sem, t)
                        ? fs_tenant_state(FS_TENANT_ACTIVE, 0, fs_tenant_gen(dying), fs_tenant_hash(st))
                        : fs_tenant_state(FS_TENANT_FREE, 0, fs_tenant_gen(dying) + 1, 0);
    /* A registrant that set its bit after our scan has rescued the entry
     * and makes this CAS fail. */
    atomic_compare_exchange_strong(&e->state, &dying, back);
    FS_CRASHPOINT("retire.done");
}

/* Finish what dead record p left half-done in the tenant table: entries it
 * was inserting go back to FREE, entries it was retiring are retired (or
 * revived if registered).  Caller owns p's lease. */
void fairsem__tenant_scrub(fairsem_t *sem, uint32_t p)
{
    for (uint32_t t = 0; t < sem->geo.max_tenants; t++) {
        struct fs_tenant *e = &sem->tenants[t];
        uint64_t st = atomic_load(&e->state);
        if (fs_tenant_proc(st) != p ||
            (fs_tenant_kind(st) != FS_TENANT_INIT && fs_tenant_kind(st) != FS_TENANT_DYING))
            continue;
        uint64_t next = fs_tenant_kind(st) == FS_TENANT_DYING && anyone_registered(sem, t)
                            ? fs_tenant_state(FS_TENANT_ACTIVE, 0, fs_tenant_gen(st), fs_tenant_hash(st))
                            : fs_tenant_state(FS_TENANT_FREE, 0, fs_tenant_gen(st) + 1, 0);
        atomic_compare_exchange_strong(&e->state, &st, next);
    }
}

static bool anyone_open(const fairsem_t *sem, uint32_t t)
{
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        if (fs_bit_test(fs_row(sem->opens, sem->geo.reg_words, p), t))
            return true;
    return false;
}

/* Bring t's closing word in line with the opens bits.  Whoever changes an
 * opens bit calls this afterwards, so the last change's call sees the
 * final bits (each pass re-reads them after its own CAS).  A tenant that
 * comes back makes the state less permissive (one more demanding tenant):
 * the version moves, as for an enqueue.  Returns true when t became
 * closing, i.e. the state more permissive (the caller kicks the
 * scheduler). */
bool fairsem__tenant_settle_closing(fairsem_t *sem, uint32_t t)
{
    struct fs_tenant *e = &sem->tenants[t];
    bool became_closing = false;
    for (;;) {
        uint64_t st = atomic_load(&e->state);
        if (fs_tenant_kind(st) != FS_TENANT_ACTIVE)
            return became_closing; /* retiring, or gone: nothing holds for it */
        bool closing = !anyone_open(sem, t);
        uint32_t word = atomic_load(&e->closing);
        if (fs_tenant_closing(st, word) == closing) {
            if (atomic_load(&e->state) == st)
                return became_closing;
            continue;
        }
        if (!atomic_compare_exchange_strong(&e->closing, &word, fs_closing_word(fs_tenant_gen(st), closing)))
            continue;
        FS_CRASHPOINT("tenant.closing_settled");
        if (closing)
            became_closing = true;
        else
            atomic_fetch_add(&sem->hdr->version, 1);
    }
}

/* The last registration sets a tenant's weight.  Shares change with it, so
 * it moves the version word (decisions in flight retry); true if it
 * changed (the caller kicks: the new shares may let waiters in). */
bool fairsem__tenant_set_weight(fairsem_t *sem, uint32_t t, unsigned weight)
{
    if (atomic_exchange(&sem->tenants[t].weight, weight) == weight)
        return false;
    atomic_fetch_add(&sem->hdr->version, 1);
    return true;
}

/* Seqlock-style: the name is copied (word by word, atomically) between
 * two reads of the entry's state word; entering or leaving INIT, DYING or
 * FREE always changes that word (its generation), so an equal pair means
 * no writer touched the name in between.  A few tries, then give up. */
#define NAME_TRIES 4

uint64_t fairsem__tenant_name(const fairsem_t *sem, uint32_t t, char out[FAIRSEM_TENANT_ID_MAX + 1])
{
    out[0] = '\0';
    if (t >= sem->geo.max_tenants)
        return 0;
    const struct fs_tenant *e = &sem->tenants[t];
    for (int k = 0; k < NAME_TRIES; k++) {
        uint64_t st = atomic_load(&e->state);
        if (!fs_tenant_live(st))
            return 0;
        char name[sizeof e->name];
        fs_name_load(e, name);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load(&e->state) == st) {
            if (!memchr(name, '\0', sizeof name))
                return 0; /* malformed: no terminator */
            memcpy(out, name, FAIRSEM_TENANT_ID_MAX + 1);
            return st;
        }
    }
    return 0;
}
