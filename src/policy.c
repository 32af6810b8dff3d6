/*
 * policy.c - fairness: shares and the next admission step.
 *
 * Pure functions of a snapshot: no shared memory is written here, no
 * futex, no process.  A fairness change touches this file only and is
 * tested on hand-built snapshots (tests/test_policy.c).
 *
 * Rules (DESIGN section 1):
 *  - a tenant is demanding while it waits, or holds slots and is still
 *    registered somewhere (a closing tenant's held slots are only in use);
 *  - share(t) = max(min_share, max_slots * w_t / sum of demanding weights)
 *    for the built-in rule (all weights 1 gives max_slots / D), or
 *    max(min_share, f(max_slots, D)) for a custom rule, read from the
 *    table the creator filled with f's value for every D;
 *  - a free slot goes to the oldest waiting request whose tenant is under
 *    its share; only when there is none may a newcomer (a request not yet
 *    queued, which is younger than every queued one) under its share take
 *    it; with FAIRSEM_WORK_CONSERVING, a slot nobody under share can use is
 *    lent to the oldest waiter, then to a newcomer;
 *  - barging (the default; not with FAIRSEM_STRICT_FIFO): that oldest
 *    eligible request is handed the slot only once it is starving: it
 *    has waited FAIRSEM_HANDOFF_NS, or lost a race after a rouse
 *    (FS_CELL_HANDOFF), or is an event-loop request.
 *    Before, a running caller under its share takes the slot (a queued
 *    request whose owner looks, then a newcomer), and when no running
 *    caller can, the oldest eligible request is roused to come and take
 *    it.  Shares are the same rules either way: only who, among the
 *    tenants under share, gets the slot first changes.
 */
#include "internal.h"

/* Every tenant in snap->touched holds or waits. */
static bool in_touched(const struct fs_snapshot *s, uint32_t t)
{
    return t != FS_NO_TENANT && (s->held[t] > 0 || s->waiting[t] > 0);
}

/* A touched tenant demands unless all it does is hold slots for
 * registrations that have all been unregistered (it is closing). */
static bool demands(const struct fs_snapshot *s, uint32_t t)
{
    return t != FS_NO_TENANT && (s->waiting[t] > 0 || (s->held[t] > 0 && !s->closing[t]));
}

static unsigned weight_of(const struct fs_snapshot *s, uint32_t t)
{
    unsigned w = in_touched(s, t) ? s->weight[t] : atomic_load(&s->tenants[t].weight);
    return w ? w : 1;
}

/* What every share of one decision divides by: the number of demanding
 * tenants and the sum of their weights (the newcomer `extra` included). */
struct demand {
    unsigned tenants;
    uint64_t weight;
};

static struct demand demand_of(const struct fs_snapshot *s, uint32_t extra)
{
    struct demand dm = {0, 0};
    for (unsigned k = 0; k < s->ntouched; k++) {
        uint32_t t = s->touched[k];
        if (demands(s, t)) {
            dm.tenants++;
            dm.weight += weight_of(s, t);
        }
    }
    if (extra != FS_NO_TENANT && !demands(s, extra)) {
        dm.tenants++;
        dm.weight += weight_of(s, extra);
    }
    return dm;
}

/* Share of demanding tenant t. */
static unsigned share_in(const struct fs_snapshot *s, const struct demand *dm, uint32_t t)
{
    uint64_t share = s->shares ? s->shares[dm->tenants < s->ntenants ? dm->tenants : s->ntenants]
                               : (uint64_t)s->max_slots * weight_of(s, t) / dm->weight;
    /* (A weight changed between two reads of an untouched tenant's weight
     * could push a quotient past the pool; a share never exceeds it.) */
    if (share > s->max_slots)
        share = s->max_slots;
    return share < s->min_share ? s->min_share : (unsigned)share;
}

unsigned fairsem__policy_demanding(const struct fs_snapshot *s, uint32_t extra)
{
    return demand_of(s, extra).tenants;
}

/* A tenant that is not demanding is given the share it would have if it
 * asked now: it is counted as demanding too. */
unsigned fairsem__policy_share(const struct fs_snapshot *s, uint32_t t, uint32_t extra)
{
    struct demand dm = demand_of(s, extra);
    if (!demands(s, t) && t != extra) {
        dm.tenants++;
        dm.weight += weight_of(s, t);
    }
    return share_in(s, &dm, t);
}

/* Barging: must request w be handed its slot now? */
static bool starving(const struct fs_snapshot *s, const struct fs_waiter *w)
{
    return !fs_barging(s->flags) || w->enqueued_ns == 0 ||
           (s->now_ns > w->enqueued_ns && s->now_ns - w->enqueued_ns >= FAIRSEM_HANDOFF_NS);
}

/* One pass over the waiters, in whatever order the snapshot holds them:
 * shares are computed once per decision, so a long queue costs O(n). */
struct fs_action fairsem__policy_next(const struct fs_snapshot *s, uint32_t newcomer, uint32_t self)
{
    struct fs_action none = {FS_ACT_NONE, NULL};
    if (s->nfree == 0)
        return none;
    /* The newcomer counts as demanding for everyone's share: it is asking. */
    struct demand dm = demand_of(s, newcomer);
    const struct fs_waiter *eligible = NULL, *oldest = NULL, *me = NULL, *unroused = NULL;
    unsigned nroused = 0; /* eligible waiters roused already: each on its way to one free slot */
    for (unsigned k = 0; k < s->nwaiters; k++) {
        const struct fs_waiter *w = &s->waiters[k];
        bool older = !eligible || w->seq < eligible->seq, mine = w->cell == self;
        if (!oldest || w->seq < oldest->seq)
            oldest = w;
        if (s->held[w->tenant] < share_in(s, &dm, w->tenant)) {
            if (older)
                eligible = w;
            if (mine)
                me = w;
            if (w->roused)
                nroused++;
            else if (!unroused || w->seq < unroused->seq)
                unroused = w;
        }
    }
    bool newcomer_under = newcomer != FS_NO_TENANT && s->held[newcomer] < share_in(s, &dm, newcomer);
    if (eligible && !starving(s, eligible)) {
        if (me)
            return (struct fs_action){FS_ACT_GRANT, me};
        if (newcomer_under)
            return (struct fs_action){FS_ACT_TAKE, NULL};
        /* The oldest eligible request is roused if it is not yet; others
         * while fewer are roused than slots are free: a roused owner that
         * is stopped, or grants itself from a look taken before this slot
         * was freed, takes one slot at most. */
        if (unroused && (unroused == eligible || nroused < s->nfree))
            return (struct fs_action){FS_ACT_ROUSE, unroused};
        return none;
    }
    if (eligible)
        return (struct fs_action){FS_ACT_GRANT, eligible};
    if (newcomer_under)
        return (struct fs_action){FS_ACT_TAKE, NULL};
    if (!(s->flags & FAIRSEM_WORK_CONSERVING))
        return none;
    if (oldest)
        return (struct fs_action){FS_ACT_GRANT, oldest};
    if (newcomer != FS_NO_TENANT)
        return (struct fs_action){FS_ACT_TAKE, NULL};
    return none;
}
