/*
 * policy.c - fairness: shares and the next admission step.
 *
 * Pure functions of a snapshot: no shared memory is written here, no
 * futex, no process.  A fairness change touches this file only and is
 * tested on hand-built snapshots (tests/test_policy.c).
 *
 * Rules (DESIGN section 1):
 *  - a tenant is demanding while it holds or waits;
 *  - share(t) = max(min_share, max_slots * w_t / sum of demanding weights)
 *    for the built-in rule (all weights 1 gives max_slots / D), or
 *    max(min_share, f(max_slots, D)) for a custom rule;
 *  - a free slot goes to the oldest waiting request whose tenant is under
 *    its share; only when there is none may a newcomer (a request not yet
 *    queued, which is younger than every queued one) under its share take
 *    it; with FAIRSEM_WORK_CONSERVING, a slot nobody under share can use is
 *    lent to the oldest waiter, then to a newcomer.
 */
#include "internal.h"

/* Every tenant in snap->touched holds or waits, i.e. is demanding. */
static bool in_touched(const struct fs_snapshot *s, uint32_t t)
{
    return t != FS_NO_TENANT && (s->held[t] > 0 || s->waiting[t] > 0);
}

unsigned fairsem__policy_demanding(const struct fs_snapshot *s, uint32_t extra)
{
    return s->ntouched + (extra != FS_NO_TENANT && !in_touched(s, extra));
}

static unsigned weight_of(const struct fs_snapshot *s, uint32_t t)
{
    unsigned w = in_touched(s, t) ? s->weight[t] : atomic_load(&s->tenants[t].weight);
    return w ? w : 1;
}

/* A tenant that is not demanding is given the share it would have if it
 * asked now: it is counted as demanding too. */
unsigned fairsem__policy_share(const struct fs_snapshot *s, uint32_t t, uint32_t extra)
{
    uint32_t also = in_touched(s, t) || t == extra ? FS_NO_TENANT : t;
    unsigned d = fairsem__policy_demanding(s, extra) + (also != FS_NO_TENANT);
    uint64_t share;
    if (s->share_fn) {
        share = s->share_fn(s->max_slots, d, s->share_arg);
    } else {
        uint64_t total = 0;
        for (unsigned k = 0; k < s->ntouched; k++)
            total += weight_of(s, s->touched[k]);
        if (extra != FS_NO_TENANT && !in_touched(s, extra))
            total += weight_of(s, extra);
        if (also != FS_NO_TENANT)
            total += weight_of(s, also);
        share = (uint64_t)s->max_slots * weight_of(s, t) / total;
    }
    /* (A weight changed between two reads of an untouched tenant's weight
     * could push a quotient past the pool; a share never exceeds it.) */
    if (share > s->max_slots)
        share = s->max_slots;
    return share < s->min_share ? s->min_share : (unsigned)share;
}

static bool under_share(const struct fs_snapshot *s, uint32_t t, uint32_t extra)
{
    return s->held[t] < fairsem__policy_share(s, t, extra);
}

struct fs_action fairsem__policy_next(const struct fs_snapshot *s, uint32_t newcomer)
{
    struct fs_action none = {FS_ACT_NONE, NULL};
    if (s->nfree == 0)
        return none;
    /* The newcomer counts as demanding for everyone's share: it is asking. */
    for (unsigned k = 0; k < s->nwaiters; k++)
        if (under_share(s, s->waiters[k].tenant, newcomer))
            return (struct fs_action){FS_ACT_GRANT, &s->waiters[k]};
    if (newcomer != FS_NO_TENANT && under_share(s, newcomer, newcomer))
        return (struct fs_action){FS_ACT_TAKE, NULL};
    if (!(s->flags & FAIRSEM_WORK_CONSERVING))
        return none;
    if (s->nwaiters > 0)
        return (struct fs_action){FS_ACT_GRANT, &s->waiters[0]};
    if (newcomer != FS_NO_TENANT)
        return (struct fs_action){FS_ACT_TAKE, NULL};
    return none;
}
