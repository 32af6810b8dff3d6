/*
 * test_policy.c - the pure fairness code (src/policy.c) on hand-built
 * snapshots: shares, demanding counts and the next admission step.
 */
#include <criterion/criterion.h>

#include "internal.h"

#include <string.h>

#define NT 16
#define NW 32

/* A snapshot and the arrays it points to. */
struct fix {
    struct fs_snapshot s;
    struct fs_tenant tenants[NT];
    uint16_t held[NT];
    uint16_t waiting[NT];
    uint32_t touched[NT];
    uint32_t weight[NT];
    bool closing[NT];
    struct fs_waiter waiters[NW];
    uint64_t next_seq;
};

static void fix_init(struct fix *f, unsigned max_slots, unsigned min_share, unsigned flags)
{
    memset(f, 0, sizeof *f);
    f->s.max_slots = max_slots;
    f->s.min_share = min_share;
    f->s.flags = flags;
    f->s.ntenants = NT;
    f->s.tenants = f->tenants;
    f->s.held = f->held;
    f->s.waiting = f->waiting;
    f->s.touched = f->touched;
    f->s.weight = f->weight;
    f->s.closing = f->closing;
    f->s.waiters = f->waiters;
    f->s.nfree = max_slots;
    f->next_seq = 100;
    for (unsigned t = 0; t < NT; t++) {
        atomic_store(&f->tenants[t].weight, 1);
        f->weight[t] = 1;
    }
}

static void fix_touch(struct fix *f, uint32_t t)
{
    if (f->held[t] == 0 && f->waiting[t] == 0)
        f->touched[f->s.ntouched++] = t;
}

/* Tenant t holds n more slots. */
static void fix_hold(struct fix *f, uint32_t t, unsigned n)
{
    cr_assert_leq(n, f->s.nfree, "fixture: not enough free slots");
    fix_touch(f, t);
    f->held[t] += n;
    f->s.nfree -= n;
    f->s.in_use += n;
    f->s.first_free = f->s.in_use < f->s.max_slots ? f->s.in_use : 0;
}

/* Tenant t queues one request (younger than every queued one); returns its
 * position in waiters[]. */
static unsigned fix_wait(struct fix *f, uint32_t t)
{
    fix_touch(f, t);
    f->waiting[t]++;
    unsigned k = f->s.nwaiters++;
    f->waiters[k] = (struct fs_waiter){f->next_seq++, 40 + k, t, 0, false};
    return k;
}

/* Both the table's weight and the snapshot's copy of it, as snapshot.c
 * would have read it. */
static void fix_weight(struct fix *f, uint32_t t, unsigned w)
{
    atomic_store(&f->tenants[t].weight, w);
    f->weight[t] = w;
}

/* Tenant 0 (weight w0) and tenant 1 (weight 1) hold one slot each. */
static void fix_weighted_pair(struct fix *f, unsigned w0)
{
    fix_weight(f, 0, w0);
    fix_weight(f, 1, 1);
    fix_hold(f, 0, 1);
    fix_hold(f, 1, 1);
}

/* The usual fixture: 10 slots, min_share 1, tenant 0 holding h0 and
 * tenant 1 holding h1. */
static void fix_two(struct fix *f, unsigned flags, unsigned h0, unsigned h1)
{
    fix_init(f, 10, 1, flags);
    fix_hold(f, 0, h0);
    fix_hold(f, 1, h1);
}

/* The kind of the next admission step (with `newcomer` asking). */
static enum fs_action_kind next_kind(struct fix *f, uint32_t newcomer)
{
    return fairsem__policy_next(&f->s, newcomer, FS_NO_CELL).kind;
}

/* The next step (with `newcomer` asking) grants waiters[w]. */
static void assert_grant(struct fix *f, uint32_t newcomer, unsigned w)
{
    struct fs_action a = fairsem__policy_next(&f->s, newcomer, FS_NO_CELL);
    cr_assert_eq(a.kind, FS_ACT_GRANT);
    cr_assert_eq(a.waiter, &f->waiters[w], "granted waiter %ld, want %u",
                 a.waiter ? (long)(a.waiter - f->waiters) : -1L, w);
}

/* ------------------------------------------------------------------ shares */

/* Seed table: 10 slots, D demanding tenants of weight 1. */
static void check_share_row(unsigned d, unsigned expect)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    /* half hold, the others only wait: both kinds are demanding */
    for (unsigned t = 0; t < d; t++) {
        if (t % 2 == 0)
            fix_hold(&f, t, 1);
        else
            fix_wait(&f, t);
    }
    cr_assert_eq(fairsem__policy_demanding(&f.s, FS_NO_TENANT), d);
    for (unsigned t = 0; t < d; t++)
        cr_assert_eq(fairsem__policy_share(&f.s, t, FS_NO_TENANT), expect, "D=%u tenant %u: share %u, want %u", d,
                     t, fairsem__policy_share(&f.s, t, FS_NO_TENANT), expect);
}

Test(policy, share_table_1) { check_share_row(1, 10); }
Test(policy, share_table_2) { check_share_row(2, 5); }
Test(policy, share_table_3) { check_share_row(3, 3); }
Test(policy, share_table_5) { check_share_row(5, 2); }
Test(policy, share_table_10) { check_share_row(10, 1); }

Test(policy, share_table_via_newcomer)
{
    /* D-1 demanding tenants plus a newcomer (extra) give the row for D. */
    static const unsigned rows[][2] = {{1, 10}, {2, 5}, {3, 3}, {5, 2}, {10, 1}};
    for (unsigned r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct fix f;
        fix_init(&f, 10, 1, 0);
        unsigned d = rows[r][0];
        for (unsigned t = 0; t + 1 < d; t++)
            fix_hold(&f, t, 1);
        uint32_t newcomer = d - 1;
        cr_assert_eq(fairsem__policy_demanding(&f.s, newcomer), d);
        cr_assert_eq(fairsem__policy_share(&f.s, newcomer, newcomer), rows[r][1], "D=%u", d);
        if (d > 1)
            cr_assert_eq(fairsem__policy_share(&f.s, 0, newcomer), rows[r][1], "D=%u", d);
    }
}

Test(policy, demanding_counts)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    cr_assert_eq(fairsem__policy_demanding(&f.s, FS_NO_TENANT), 0);
    cr_assert_eq(fairsem__policy_demanding(&f.s, 3), 1);
    fix_hold(&f, 0, 2);
    fix_wait(&f, 1);
    fix_wait(&f, 1);
    cr_assert_eq(fairsem__policy_demanding(&f.s, FS_NO_TENANT), 2);
    /* an extra that already demands is not counted twice */
    cr_assert_eq(fairsem__policy_demanding(&f.s, 0), 2);
    cr_assert_eq(fairsem__policy_demanding(&f.s, 1), 2);
    cr_assert_eq(fairsem__policy_demanding(&f.s, 7), 3);
}

Test(policy, idle_tenants_not_counted)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    /* tenants 0..5 exist (weights set), only 1 and 4 demand */
    for (unsigned t = 0; t < 6; t++)
        fix_weight(&f, t, 1);
    fix_hold(&f, 1, 3);
    fix_wait(&f, 4);
    cr_assert_eq(fairsem__policy_demanding(&f.s, FS_NO_TENANT), 2);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 5);
    cr_assert_eq(fairsem__policy_share(&f.s, 4, FS_NO_TENANT), 5);
    /* an idle tenant is given the share it would have if it asked now */
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 3);
    /* a heavy idle tenant changes nobody's share */
    fix_weight(&f, 2, 50);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 5);
}

Test(policy, min_share_raises)
{
    struct fix f;
    fix_init(&f, 10, 3, 0);
    for (unsigned t = 0; t < 5; t++)
        fix_hold(&f, t, 1);
    /* built-in gives 10/5 = 2, raised to 3 */
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 3);
    cr_assert_eq(fairsem__policy_share(&f.s, 4, FS_NO_TENANT), 3);

    /* min_share never lowers a larger share */
    fix_init(&f, 10, 3, 0);
    fix_hold(&f, 0, 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 10);
    fix_hold(&f, 1, 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 5);

    /* 10 tenants on 10 slots with min_share 2: everyone is promised 2 */
    fix_init(&f, 10, 2, 0);
    for (unsigned t = 0; t < 10; t++)
        fix_wait(&f, t);
    cr_assert_eq(fairsem__policy_share(&f.s, 9, FS_NO_TENANT), 2);
}

/* A custom rule is a table of shares by the number of demanding tenants
 * (the creator fills it from the rule's function, src/segment.c). */
static void fix_rule(struct fix *f, uint32_t shares[NT + 1], unsigned (*rule)(unsigned max_slots, unsigned d))
{
    for (unsigned d = 0; d <= NT; d++)
        shares[d] = rule(f->s.max_slots, d ? d : 1);
    f->s.shares = shares;
}

static unsigned plus_one(unsigned max_slots, unsigned demanding) { return max_slots / demanding + 1; }

static unsigned zero_rule(unsigned max_slots, unsigned demanding)
{
    (void)max_slots, (void)demanding;
    return 0;
}

static unsigned whole_pool(unsigned max_slots, unsigned demanding)
{
    (void)demanding;
    return max_slots * 3; /* more than the pool: read back clamped */
}

Test(policy, custom_rule)
{
    struct fix f;
    uint32_t shares[NT + 1];
    fix_init(&f, 10, 1, 0);
    fix_rule(&f, shares, plus_one);
    fix_hold(&f, 0, 1);
    fix_wait(&f, 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 6, "D=2: 10/2 + 1");
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 6);
    /* with a newcomer: 10/3 + 1 = 4 */
    cr_assert_eq(fairsem__policy_share(&f.s, 0, 5), 4);
    /* weights do not matter to a custom rule */
    fix_weight(&f, 0, 9);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 6);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 6);
}

Test(policy, custom_rule_raised_to_min_share)
{
    struct fix f;
    uint32_t shares[NT + 1];
    fix_init(&f, 10, 2, 0);
    fix_rule(&f, shares, zero_rule);
    fix_hold(&f, 0, 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 2);
}

/* A table entry beyond the pool (a corrupt segment) is read as the pool. */
Test(policy, custom_rule_never_above_the_pool)
{
    struct fix f;
    uint32_t shares[NT + 1];
    fix_init(&f, 10, 1, 0);
    fix_rule(&f, shares, whole_pool);
    fix_hold(&f, 0, 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 10);
}

Test(policy, weights)
{
    struct fix f;
    fix_init(&f, 9, 1, 0);
    fix_weighted_pair(&f, 2);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 6);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 3);
    /* a newcomer of weight 3 joins: total 6 -> 3, 1, 4 (floor 9*w/6) */
    fix_weight(&f, 2, 3);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, 2), 3);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, 2), 1);
    cr_assert_eq(fairsem__policy_share(&f.s, 2, 2), 4);
}

Test(policy, weight_zero_counts_as_one)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    fix_weighted_pair(&f, 0);
    cr_assert_eq(fairsem__policy_share(&f.s, 0, FS_NO_TENANT), 5);
    cr_assert_eq(fairsem__policy_share(&f.s, 1, FS_NO_TENANT), 5);
}

/* ----------------------------------------------------------- next step */

Test(policy, nothing_to_do)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE);
    /* a lone newcomer on an empty pool takes a slot */
    cr_assert_eq(next_kind(&f, 0), FS_ACT_TAKE);
}

Test(policy, no_free_slot_means_none)
{
    struct fix f;
    fix_init(&f, 2, 1, FAIRSEM_WORK_CONSERVING);
    fix_hold(&f, 0, 2);
    fix_wait(&f, 1); /* under share, but nothing is free */
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE);
    cr_assert_eq(next_kind(&f, 2), FS_ACT_NONE);
}

Test(policy, fifo_oldest_under_share)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    fix_hold(&f, 0, 2);
    unsigned w1 = fix_wait(&f, 1);
    fix_wait(&f, 2);
    fix_wait(&f, 1);
    assert_grant(&f, FS_NO_TENANT, w1);
    struct fs_action a = fairsem__policy_next(&f.s, FS_NO_TENANT, FS_NO_CELL);
    cr_assert_eq(a.waiter->tenant, 1);
    cr_assert_eq(a.waiter->seq, f.waiters[0].seq);
}

Test(policy, at_share_waiter_is_skipped)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    /* 0 holds 5 = its share (D=2) and queues again; 1 queues after it */
    fix_hold(&f, 0, 5);
    fix_wait(&f, 0);
    unsigned w1 = fix_wait(&f, 1);
    fix_wait(&f, 0);
    assert_grant(&f, FS_NO_TENANT, w1);
}

Test(policy, at_share_waiter_does_not_block)
{
    struct fix f;
    fix_two(&f, 0, 5, 4);
    fix_wait(&f, 0);
    /* only at-share waiters: no grant, the slot stays free */
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE);
    /* tenant 1 (under share) as a newcomer may take it */
    cr_assert_eq(next_kind(&f, 1), FS_ACT_TAKE);
    /* tenant 0 (at share) as a newcomer may not */
    cr_assert_eq(next_kind(&f, 0), FS_ACT_NONE);
}

Test(policy, newcomer_does_not_barge)
{
    struct fix f;
    fix_init(&f, 10, 1, 0);
    /* 0 holds 2 and waits: under its share (10/2 = 5) with the newcomer too */
    fix_hold(&f, 0, 2);
    unsigned w = fix_wait(&f, 0);
    /* newcomer 5 is under share too, but the older request comes first */
    assert_grant(&f, 5, w);
    /* same with a newcomer of a tenant that already waits */
    cr_assert_eq(next_kind(&f, 0), FS_ACT_GRANT);
}

Test(policy, newcomer_allowed_past_at_share_waiters)
{
    struct fix f;
    fix_two(&f, 0, 5, 4);
    fix_wait(&f, 0);
    fix_wait(&f, 0);
    /* newcomer 2: shares become 3; 0 (5 held) is over, 2 (0 held) under */
    struct fs_action a = fairsem__policy_next(&f.s, 2, FS_NO_CELL);
    cr_assert_eq(a.kind, FS_ACT_TAKE);
    cr_assert_null(a.waiter);
}

Test(policy, newcomer_counts_in_waiters_shares)
{
    struct fix f;
    /* without a newcomer 0's waiter is under share (4 < 5) */
    fix_two(&f, 0, 4, 5);
    unsigned w = fix_wait(&f, 0);
    assert_grant(&f, FS_NO_TENANT, w);
    /* with newcomer 2 asking, shares drop to 3: 0 is over, 2 is under */
    cr_assert_eq(next_kind(&f, 2), FS_ACT_TAKE);
}

Test(policy, newcomer_at_share_refused)
{
    struct fix f;
    fix_two(&f, 0, 5, 3);
    cr_assert_eq(next_kind(&f, 0), FS_ACT_NONE);
    cr_assert_eq(next_kind(&f, 1), FS_ACT_TAKE);
}

Test(policy, work_conserving_off)
{
    struct fix f;
    fix_two(&f, 0, 5, 3);
    fix_wait(&f, 0);
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE);
    cr_assert_eq(next_kind(&f, 0), FS_ACT_NONE);
}

Test(policy, work_conserving_lends_to_oldest_waiter)
{
    struct fix f;
    fix_two(&f, FAIRSEM_WORK_CONSERVING, 5, 5 - 2); /* 1 holds 3, does not wait */
    unsigned w0 = fix_wait(&f, 0);
    fix_wait(&f, 0);
    assert_grant(&f, FS_NO_TENANT, w0);
    /* a newcomer under share still goes before a loan */
    cr_assert_eq(next_kind(&f, 1), FS_ACT_TAKE);
}

Test(policy, work_conserving_prefers_under_share)
{
    struct fix f;
    fix_two(&f, FAIRSEM_WORK_CONSERVING, 6, 2);
    fix_wait(&f, 0);               /* older, over share */
    unsigned w1 = fix_wait(&f, 1); /* younger, under share */
    assert_grant(&f, FS_NO_TENANT, w1);
}

Test(policy, work_conserving_lends_to_newcomer)
{
    struct fix f;
    fix_two(&f, FAIRSEM_WORK_CONSERVING, 5, 3);
    /* 0 at share, nobody waits: with WC the newcomer 0 may borrow */
    cr_assert_eq(next_kind(&f, 0), FS_ACT_TAKE);
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE);
}

/* ----------------------------------------------------------------- barging */

/* A snapshot with `flags` (0: barging) taken at 10 ms. */
static void fix_at_10ms(struct fix *f, unsigned flags)
{
    fix_init(f, 10, 1, flags);
    f->s.now_ns = 10 * FAIRSEM_HANDOFF_NS;
}

static void fix_barging(struct fix *f) { fix_at_10ms(f, 0); }

static void fix_age(struct fix *f, unsigned w, uint64_t age_ns)
{
    f->waiters[w].enqueued_ns = f->s.now_ns - age_ns;
}

Test(policy, barging_young_waiter_is_roused_not_handed)
{
    struct fix f;
    fix_barging(&f);
    unsigned w = fix_wait(&f, 0);
    fix_age(&f, w, FAIRSEM_HANDOFF_NS - 1);
    struct fs_action a = fairsem__policy_next(&f.s, FS_NO_TENANT, FS_NO_CELL);
    cr_assert_eq(a.kind, FS_ACT_ROUSE);
    cr_assert_eq(a.waiter, &f.waiters[w]);
}

Test(policy, barging_newcomer_under_share_takes_before_young_waiter)
{
    struct fix f;
    fix_barging(&f);
    fix_age(&f, fix_wait(&f, 0), 1000);
    cr_assert_eq(next_kind(&f, 1), FS_ACT_TAKE);
}

Test(policy, barging_newcomer_at_share_does_not_take)
{
    struct fix f;
    fix_barging(&f);
    fix_hold(&f, 1, 5); /* 1's share with 0 waiting: 5 */
    fix_age(&f, fix_wait(&f, 0), 1000);
    cr_assert_eq(next_kind(&f, 1), FS_ACT_ROUSE);
}

/* Tenant 0 has waited old_age_ns; the owner of tenant 1's younger request
 * looks while newcomer 2 asks too: the waiter granted. */
static const struct fs_waiter *granted_when_a_waiter_looks(struct fix *f, uint64_t old_age_ns)
{
    fix_barging(f);
    fix_age(f, fix_wait(f, 0), old_age_ns);
    unsigned me = fix_wait(f, 1);
    fix_age(f, me, 1000);
    struct fs_action a = fairsem__policy_next(&f->s, 2, f->waiters[me].cell);
    cr_assert_eq(a.kind, FS_ACT_GRANT);
    return a.waiter;
}

Test(policy, barging_running_waiter_grants_itself)
{
    struct fix f;
    cr_assert_eq(granted_when_a_waiter_looks(&f, 2000), &f.waiters[1],
                 "the running waiter goes before a newcomer and an older sleeper");
}

Test(policy, barging_starving_waiter_is_handed_first)
{
    struct fix f;
    cr_assert_eq(granted_when_a_waiter_looks(&f, FAIRSEM_HANDOFF_NS), &f.waiters[0],
                 "nobody barges past a request that waited the bound");
}

Test(policy, barging_marked_waiter_is_handed_whatever_its_age)
{
    struct fix f;
    fix_barging(&f);
    unsigned w = fix_wait(&f, 0); /* enqueued_ns 0: FS_CELL_HANDOFF or event-loop */
    assert_grant(&f, 1, w);
}

Test(policy, barging_waiter_over_share_cannot_grant_itself)
{
    struct fix f;
    fix_barging(&f);
    fix_hold(&f, 0, 5);
    unsigned me = fix_wait(&f, 0);
    fix_age(&f, me, 1000);
    unsigned other = fix_wait(&f, 1);
    fix_age(&f, other, 500);
    struct fs_action a = fairsem__policy_next(&f.s, FS_NO_TENANT, f.waiters[me].cell);
    cr_assert_eq(a.kind, FS_ACT_ROUSE);
    cr_assert_eq(a.waiter, &f.waiters[other]);
}

/* Two slots free, the oldest waiter roused already (stopped, or about to
 * grant itself from a look taken before the second slot was freed): the
 * second slot rouses the next waiter, or it would sleep beside a free slot
 * until the prober's safety kick. */
Test(policy, barging_second_free_slot_rouses_the_next_waiter)
{
    struct fix f;
    fix_barging(&f);
    fix_hold(&f, 2, 8);
    unsigned a = fix_wait(&f, 0), b = fix_wait(&f, 1);
    fix_age(&f, a, 1000);
    fix_age(&f, b, 500);
    f.waiters[a].roused = true;
    struct fs_action act = fairsem__policy_next(&f.s, FS_NO_TENANT, FS_NO_CELL);
    cr_assert_eq(act.kind, FS_ACT_ROUSE);
    cr_assert_eq(act.waiter, &f.waiters[b], "the roused waiter takes one slot at most");
    f.waiters[b].roused = true;
    cr_assert_eq(next_kind(&f, FS_NO_TENANT), FS_ACT_NONE, "one roused owner per free slot");
}

Test(policy, strict_fifo_hands_a_young_waiter_its_slot)
{
    struct fix f;
    fix_at_10ms(&f, FAIRSEM_STRICT_FIFO);
    unsigned w = fix_wait(&f, 0);
    fix_age(&f, w, 1000);
    assert_grant(&f, 1, w);
}
