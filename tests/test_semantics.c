/*
 * test_semantics.c - the fairness and lifecycle rules on real segments, in
 * one process (threads stand in for waiting clients).
 */
#include <criterion/criterion.h>

#include "common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

struct seg {
    char name[128];
    fairsem_t *sem;
};

static void seg_create(struct seg *g, const char *what, const fairsem_options_t *o)
{
    test_name(g->name, sizeof g->name, what);
    int rc = fairsem_create(g->name, o, &g->sem);
    cr_assert_eq(rc, 0, "fairsem_create(%s): %s", g->name, fairsem_strerror(rc));
}

static void seg_create_slots(struct seg *g, const char *what, unsigned max_slots, unsigned flags)
{
    fairsem_options_t o = {.max_slots = max_slots, .flags = flags};
    seg_create(g, what, &o);
}

static void seg_destroy(struct seg *g)
{
    fairsem_close(g->sem);
    cr_assert_eq(fairsem_unlink(g->name, 0), 0);
}

static fairsem_tenant_t *reg(fairsem_t *sem, const char *id, unsigned weight)
{
    fairsem_tenant_t *t = NULL;
    int rc = fairsem_tenant_register(sem, id, weight, &t);
    cr_assert_eq(rc, 0, "register %s: %s", id, fairsem_strerror(rc));
    cr_assert_not_null(t);
    return t;
}

/* A segment of max_slots slots (flags) with tenants "a" and "b" of weight 1. */
static void seg_create_ab(struct seg *g, const char *what, unsigned max_slots, unsigned flags,
                          fairsem_tenant_t **a, fairsem_tenant_t **b)
{
    seg_create_slots(g, what, max_slots, flags);
    *a = reg(g->sem, "a", 1);
    *b = reg(g->sem, "b", 1);
}

static fairsem_stats_t stats_of(fairsem_t *sem)
{
    fairsem_stats_t st;
    int rc = fairsem_stats(sem, &st, NULL, 0, NULL);
    cr_assert_eq(rc, 0);
    return st;
}

/* Per-tenant stats of `id` into *out; false if it is not listed. */
static bool find_tstats(fairsem_t *sem, const char *id, fairsem_tenant_stats_t *out)
{
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[64];
    size_t n = 0;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 64, &n), 0);
    for (size_t k = 0; k < n && k < 64; k++)
        if (strcmp(ts[k].id, id) == 0) {
            *out = ts[k];
            return true;
        }
    return false;
}

/* Per-tenant stats of `id`; fails the test if absent. */
static fairsem_tenant_stats_t tstats_of(fairsem_t *sem, const char *id)
{
    fairsem_tenant_stats_t t;
    if (!find_tstats(sem, id, &t))
        cr_assert_fail("tenant %s missing from stats", id);
    return t;
}

static bool tenant_listed(fairsem_t *sem, const char *id)
{
    fairsem_tenant_stats_t t;
    return find_tstats(sem, id, &t);
}

/* try_acquire until it fails or `cap` slots are taken; returns how many
 * succeeded (slots stored) and in *last_rc the failure (0 if cap was hit). */
static unsigned take_all(fairsem_tenant_t *t, fairsem_slot_t *slots, unsigned cap, int *last_rc)
{
    unsigned n = 0;
    int rc = 0;
    while (n < cap && (rc = fairsem_try_acquire(t, &slots[n])) == 0)
        n++;
    if (last_rc)
        *last_rc = rc;
    return n;
}

static void release_all(fairsem_tenant_t *t, fairsem_slot_t *slots, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        cr_assert_eq(fairsem_release(t, slots[k]), 0, "release %u", k);
}

/* a, then b, takes a first slot; then each takes up to `more` further
 * slots while it may.  *na and *nb get how many each holds. */
static void take_both(fairsem_tenant_t *a, fairsem_slot_t *sa, unsigned *na, fairsem_tenant_t *b,
                      fairsem_slot_t *sb, unsigned *nb, unsigned more)
{
    cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
    cr_assert_eq(fairsem_try_acquire(b, &sb[0]), 0);
    *na = 1 + take_all(a, &sa[1], more, NULL);
    *nb = 1 + take_all(b, &sb[1], more, NULL);
}

/* Wait (bounded) until the segment shows `waiters` queued requests. */
static void wait_waiters(fairsem_t *sem, unsigned waiters)
{
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (stats_of(sem).waiters != waiters) {
        cr_assert_lt(test_now_ns(), end, "timed out waiting for %u waiters (have %u)", waiters,
                     stats_of(sem).waiters);
        test_sleep_ms(1);
    }
}

static void assert_all_free(fairsem_t *sem)
{
    fairsem_stats_t st = stats_of(sem);
    cr_assert_eq(st.slots_in_use, 0, "slots_in_use %u", st.slots_in_use);
    cr_assert_eq(st.slots_available, st.max_slots, "available %u of %u", st.slots_available, st.max_slots);
    cr_assert_eq(st.waiters, 0, "waiters %u", st.waiters);
}

/* End of a test: nothing held or queued is left; close and unlink. */
static void seg_finish(struct seg *g)
{
    assert_all_free(g->sem);
    seg_destroy(g);
}

/* A client thread that acquires, records in which order it was served, and either
 * releases at once or holds until told to release. */
static _Atomic int serve_counter;

struct client {
    pthread_t th;
    fairsem_tenant_t *t;
    uint64_t timeout_ns; /* 0: fairsem_acquire */
    bool hold;
    int rc;
    int release_rc;
    fairsem_slot_t slot;
    int order;
    _Atomic int done;
    _Atomic int release;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    c->rc =
        c->timeout_ns ? fairsem_acquire_timeout(c->t, c->timeout_ns, &c->slot) : fairsem_acquire(c->t, &c->slot);
    c->order = atomic_fetch_add(&serve_counter, 1);
    atomic_store(&c->done, 1);
    if (c->rc == 0) {
        if (c->hold) {
            uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
            while (!atomic_load(&c->release) && test_now_ns() < end)
                test_sleep_ms(1);
        }
        c->release_rc = fairsem_release(c->t, c->slot);
    }
    return NULL;
}

static void client_start(struct client *c, fairsem_tenant_t *t, bool hold, uint64_t timeout_ns)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->hold = hold;
    c->timeout_ns = timeout_ns;
    c->order = -1;
    c->release_rc = -1;
    cr_assert_eq(pthread_create(&c->th, NULL, client_main, c), 0);
}

/* Start a client and wait until its request is queued. */
static void client_queue(fairsem_t *sem, struct client *c, fairsem_tenant_t *t, bool hold)
{
    unsigned before = stats_of(sem).waiters;
    client_start(c, t, hold, 0);
    wait_waiters(sem, before + 1);
}

static void client_wait_done(struct client *c)
{
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (!atomic_load(&c->done)) {
        cr_assert_lt(test_now_ns(), end, "client never served");
        test_sleep_ms(1);
    }
}

static void client_join(struct client *c)
{
    atomic_store(&c->release, 1);
    pthread_join(c->th, NULL);
}

/* ------------------------------------------------------------ share table */

static void share_row(unsigned d, unsigned expect)
{
    struct seg g;
    seg_create_slots(&g, "share", 10, 0);
    fairsem_tenant_t *t[10];
    fairsem_slot_t slots[10][10];
    unsigned got[10];
    char id[16];
    /* every tenant demands first (holds one slot) */
    for (unsigned k = 0; k < d; k++) {
        snprintf(id, sizeof id, "t%u", k);
        t[k] = reg(g.sem, id, 1);
        cr_assert_eq(fairsem_try_acquire(t[k], &slots[k][0]), 0, "tenant %u first slot", k);
    }
    for (unsigned k = 0; k < d; k++) {
        int rc;
        got[k] = 1 + take_all(t[k], &slots[k][1], 9, &rc);
        cr_assert_eq(got[k], expect, "D=%u tenant %u got %u, want %u", d, k, got[k], expect);
        if (got[k] < 10)
            cr_assert_eq(rc, -EAGAIN, "D=%u: %s", d, fairsem_err_name(rc));
    }
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, d);
    cr_assert_eq(st.registered_tenants, d);
    cr_assert_eq(st.slots_in_use, d * expect);
    cr_assert_eq(st.slots_available, 10 - d * expect);
    for (unsigned k = 0; k < d; k++) {
        snprintf(id, sizeof id, "t%u", k);
        fairsem_tenant_stats_t ts = tstats_of(g.sem, id);
        cr_assert_eq(ts.share, expect);
        cr_assert_eq(ts.held, expect);
    }
    for (unsigned k = 0; k < d; k++)
        release_all(t[k], slots[k], got[k]);
    seg_finish(&g);
}

Test(semantics, share_table_1) { share_row(1, 10); }
Test(semantics, share_table_2) { share_row(2, 5); }
Test(semantics, share_table_3) { share_row(3, 3); }
Test(semantics, share_table_5) { share_row(5, 2); }
Test(semantics, share_table_10) { share_row(10, 1); }

Test(semantics, only_demanding_tenants_count)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "demanding", 10, 0, &a, &b);
    reg(g.sem, "idle1", 1);
    reg(g.sem, "idle2", 1);
    fairsem_slot_t sa[10], sb[10];
    unsigned na, nb;
    take_both(a, sa, &na, b, sb, &nb, 9);
    cr_assert_eq(na, 5);
    cr_assert_eq(nb, 5);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.registered_tenants, 4);
    cr_assert_eq(st.demanding_tenants, 2);
    /* an idle tenant is shown the share it would have: 10/3 */
    cr_assert_eq(tstats_of(g.sem, "idle1").share, 3);
    cr_assert_eq(tstats_of(g.sem, "idle1").held, 0);
    release_all(a, sa, na);
    release_all(b, sb, nb);
    seg_destroy(&g);
}

Test(semantics, waiting_tenant_counts)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "waitcount", 10, 0, &a, &b);
    fairsem_slot_t sa[10];
    cr_assert_eq(take_all(a, sa, 10, NULL), 10);
    cr_assert_eq(tstats_of(g.sem, "a").share, 10);
    struct client cb;
    client_queue(g.sem, &cb, b, true);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 2);
    cr_assert_eq(st.waiters, 1);
    cr_assert_eq(tstats_of(g.sem, "a").share, 5);
    cr_assert_eq(tstats_of(g.sem, "b").share, 5);
    cr_assert_eq(tstats_of(g.sem, "b").waiting, 1);
    cr_assert_eq(tstats_of(g.sem, "b").held, 0);
    /* the first released slot goes to the waiter */
    cr_assert_eq(fairsem_release(a, sa[9]), 0);
    client_wait_done(&cb);
    cr_assert_eq(cb.rc, 0);
    /* and A, at 9 of share 5, cannot take the next free one */
    cr_assert_eq(fairsem_release(a, sa[8]), 0);
    fairsem_slot_t x;
    cr_assert_eq(fairsem_try_acquire(a, &x), -EAGAIN);
    client_join(&cb);
    cr_assert_eq(cb.release_rc, 0);
    release_all(a, sa, 8);
    seg_finish(&g);
}

Test(semantics, shares_grow_back)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "growback", 10, 0, &a, &b);
    fairsem_slot_t sa[10], sb[10];
    unsigned na, nb;
    take_both(a, sa, &na, b, sb, &nb, 9);
    cr_assert_eq(na, 5);
    cr_assert_eq(nb, 5);
    release_all(b, sb, nb);
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 1);
    cr_assert_eq(tstats_of(g.sem, "a").share, 10);
    cr_assert_eq(fairsem_tenant_unregister(b, FAIRSEM_IF_IDLE), 0);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 1);
    /* B left: A may grow to 10 */
    na += take_all(a, &sa[na], 10 - na, NULL);
    cr_assert_eq(na, 10);
    release_all(a, sa, na);
    seg_finish(&g);
}

/* ------------------------------------------------------------------- FIFO */

Test(semantics, fifo_order)
{
    struct seg g;
    seg_create_slots(&g, "fifo", 1, 0);
    fairsem_tenant_t *t1 = reg(g.sem, "t1", 1), *t2 = reg(g.sem, "t2", 1), *t3 = reg(g.sem, "t3", 1);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t1, &s), 0);
    atomic_store(&serve_counter, 0);
    struct client c2, c3, c1;
    client_queue(g.sem, &c2, t2, false);
    client_queue(g.sem, &c3, t3, false);
    client_queue(g.sem, &c1, t1, false);
    cr_assert_eq(atomic_load(&serve_counter), 0);
    cr_assert_eq(fairsem_release(t1, s), 0);
    client_join(&c2);
    client_join(&c3);
    client_join(&c1);
    cr_assert_eq(c2.rc, 0);
    cr_assert_eq(c3.rc, 0);
    cr_assert_eq(c1.rc, 0);
    cr_assert_eq(c2.order, 0, "t2 served %d", c2.order);
    cr_assert_eq(c3.order, 1, "t3 served %d", c3.order);
    cr_assert_eq(c1.order, 2, "t1 served %d", c1.order);
    cr_assert_eq(c1.release_rc, 0);
    seg_finish(&g);
}

Test(semantics, newcomer_does_not_pass_eligible_waiter)
{
    struct seg g;
    seg_create_slots(&g, "newcomer", 10, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1), *b = reg(g.sem, "b", 1), *c = reg(g.sem, "c", 1);
    fairsem_slot_t sa[10], x;
    cr_assert_eq(take_all(a, sa, 10, NULL), 10);
    struct client cb;
    client_queue(g.sem, &cb, b, true);
    /* C is under its share, but B asked first */
    cr_assert_eq(fairsem_try_acquire(c, &x), -EAGAIN);
    cr_assert_eq(fairsem_acquire_timeout(c, 1000000, &x), -ETIMEDOUT);
    cr_assert_eq(atomic_load(&cb.done), 0);
    cr_assert_eq(fairsem_release(a, sa[9]), 0);
    client_wait_done(&cb);
    cr_assert_eq(cb.rc, 0);
    cr_assert_eq(tstats_of(g.sem, "c").held, 0);
    cr_assert_eq(tstats_of(g.sem, "b").held, 1);
    client_join(&cb);
    release_all(a, sa, 9);
    seg_finish(&g);
}

Test(semantics, newcomer_allowed_when_waiters_at_share)
{
    struct seg g;
    seg_create_slots(&g, "newcomer2", 10, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1), *b = reg(g.sem, "b", 1), *c = reg(g.sem, "c", 1);
    fairsem_slot_t sa[10], sb[10], sc;
    unsigned na, nb;
    take_both(a, sa, &na, b, sb, &nb, 9);
    cr_assert_eq(na, 5);
    cr_assert_eq(nb, 5);
    struct client cb;
    client_queue(g.sem, &cb, b, true); /* B waits at its share */
    cr_assert_eq(fairsem_release(a, sa[4]), 0);
    test_sleep_ms(20);
    /* not granted: B is at share and lending is off */
    cr_assert_eq(atomic_load(&cb.done), 0);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.slots_available, 1);
    cr_assert_eq(st.waiters, 1);
    /* C is under share: the older at-share waiter does not block it */
    cr_assert_eq(fairsem_try_acquire(c, &sc), 0);
    /* end B's wait: C gives its slot back; shares now 5, B holds 5 -> B
     * still waits; B releases one of its own, the waiter gets it */
    cr_assert_eq(fairsem_release(c, sc), 0);
    cr_assert_eq(fairsem_release(b, sb[4]), 0);
    client_wait_done(&cb);
    cr_assert_eq(cb.rc, 0);
    client_join(&cb);
    release_all(a, sa, 4);
    release_all(b, sb, 4);
    seg_finish(&g);
}

/* The seed's "Problem": A holds everything and queues more; B arrives. */
Test(semantics, seed_problem_scenario)
{
    struct seg g;
    seg_create_slots(&g, "problem", 10, 0);
    fairsem_tenant_t *a = reg(g.sem, "A", 1), *b = reg(g.sem, "B", 1);
    fairsem_slot_t sa[10];
    cr_assert_eq(take_all(a, sa, 10, NULL), 10);
    struct client aw[2], bw[6];
    for (int k = 0; k < 2; k++)
        client_queue(g.sem, &aw[k], a, true);
    for (int k = 0; k < 6; k++)
        client_queue(g.sem, &bw[k], b, true);
    cr_assert_eq(stats_of(g.sem).waiters, 8);
    cr_assert_eq(tstats_of(g.sem, "A").share, 5);

    /* the next released slot goes to B's first request */
    unsigned a_main = 10;
    cr_assert_eq(fairsem_release(a, sa[--a_main]), 0);
    client_wait_done(&bw[0]);
    cr_assert_eq(bw[0].rc, 0);
    for (int k = 1; k < 6; k++)
        cr_assert_eq(atomic_load(&bw[k].done), 0);
    for (int k = 0; k < 2; k++)
        cr_assert_eq(atomic_load(&aw[k].done), 0);
    cr_assert_eq(tstats_of(g.sem, "A").held, 9);
    cr_assert_eq(tstats_of(g.sem, "B").held, 1);

    /* four more releases by A: all to B, in B's order */
    for (int k = 1; k < 5; k++) {
        cr_assert_eq(fairsem_release(a, sa[--a_main]), 0);
        client_wait_done(&bw[k]);
        cr_assert_eq(bw[k].rc, 0);
        cr_assert_eq(atomic_load(&aw[0].done), 0);
    }
    cr_assert_eq(tstats_of(g.sem, "A").held, 5);
    cr_assert_eq(tstats_of(g.sem, "B").held, 5);

    /* A drops to 4: A's own (older) waiter is under share again */
    cr_assert_eq(fairsem_release(a, sa[--a_main]), 0);
    client_wait_done(&aw[0]);
    cr_assert_eq(aw[0].rc, 0);
    cr_assert_eq(atomic_load(&bw[5].done), 0);
    cr_assert_eq(atomic_load(&aw[1].done), 0);
    cr_assert_eq(tstats_of(g.sem, "A").held, 5);

    /* B drops to 4: its waiter passes A's older, at-share waiter */
    atomic_store(&bw[4].release, 1);
    client_wait_done(&bw[5]);
    cr_assert_eq(bw[5].rc, 0);
    pthread_join(bw[4].th, NULL);
    cr_assert_eq(bw[4].release_rc, 0);
    cr_assert_eq(atomic_load(&aw[1].done), 0);
    cr_assert_eq(tstats_of(g.sem, "A").held, 5);
    cr_assert_eq(tstats_of(g.sem, "B").held, 5);
    cr_assert_eq(tstats_of(g.sem, "A").waiting, 1);

    for (int k = 0; k < 6; k++)
        if (k != 4)
            client_join(&bw[k]);
    release_all(a, sa, a_main);
    client_join(&aw[0]);
    client_join(&aw[1]);
    cr_assert_eq(aw[1].rc, 0);
    for (int k = 0; k < 6; k++)
        cr_assert_eq(bw[k].release_rc, 0);
    seg_finish(&g);
}

/* ------------------------------------------------------ try and timeout */

Test(semantics, try_and_timeout)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "timeout", 2, 0, &a, &b);
    fairsem_slot_t sa[2], x;
    cr_assert_eq(take_all(a, sa, 2, NULL), 2);
    /* (A try that waited would wait for ever here: nothing frees a slot.) */
    cr_assert_eq(fairsem_try_acquire(b, &x), -EAGAIN);
    uint64_t t0 = test_now_ns();
    int rc = fairsem_acquire_timeout(b, 100000000ull, &x);
    uint64_t took = test_now_ns() - t0;
    cr_assert_eq(rc, -ETIMEDOUT, "%s", fairsem_err_name(rc));
    cr_assert_geq(took, 100000000ull, "timed out early, after %llu ns", (unsigned long long)took);
    cr_log_info("a 100 ms acquire_timeout returned after %.1f ms", took / 1e6);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.slots_in_use, 2);
    cr_assert_eq(tstats_of(g.sem, "b").waiting, 0);
    cr_assert_eq(st.demanding_tenants, 1);
    /* zero timeout */
    cr_assert_eq(fairsem_acquire_timeout(b, 0, &x), -ETIMEDOUT);
    release_all(a, sa, 2);
    assert_all_free(g.sem);
    /* nothing leaked: B gets a slot at once (share 10/1 -> both) */
    cr_assert_eq(fairsem_acquire_timeout(b, 1000000, &x), 0);
    cr_assert_eq(fairsem_release(b, x), 0);
    seg_finish(&g);
}

Test(semantics, timeout_then_grant)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "tgrant", 1, 0, &a, &b);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    struct client cb;
    client_start(&cb, b, false, TEST_PATIENCE_NS);
    wait_waiters(g.sem, 1);
    cr_assert_eq(fairsem_release(a, s), 0);
    client_join(&cb);
    cr_assert_eq(cb.rc, 0, "a timed acquire granted before its timeout failed: %s", fairsem_err_name(cb.rc));
    cr_assert_eq(cb.release_rc, 0);
    seg_finish(&g);
}

/* ----------------------------------------------------------------- stress */

struct stress {
    fairsem_t *sem;
    fairsem_tenant_t *t[3];
    _Atomic int stop;
    _Atomic unsigned errors;
    _Atomic unsigned grants;
    _Atomic unsigned timeouts;
    _Atomic unsigned cancels;
    char what[128];
};

struct stress_arg {
    struct stress *s;
    unsigned id;
};

static void stress_err(struct stress *s, const char *what, int rc)
{
    if (atomic_fetch_add(&s->errors, 1) == 0)
        snprintf(s->what, sizeof s->what, "%s: %s", what, fairsem_err_name(rc));
}

static void spin_a_little(unsigned seed)
{
    for (volatile unsigned k = 0; k < (seed % 2000); k++)
        ;
}

static void *stress_main(void *arg)
{
    struct stress_arg *sa = arg;
    struct stress *s = sa->s;
    unsigned seed = sa->id * 7919u + 1;
    fairsem_tenant_t *t = s->t[sa->id % 3];
    while (!atomic_load(&s->stop)) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        fairsem_slot_t slot;
        if (sa->id % 2 == 0) {
            /* blocking client with tiny timeouts */
            int rc = fairsem_acquire_timeout(t, (r % 200) * 1000ull, &slot);
            if (rc == 0) {
                atomic_fetch_add(&s->grants, 1);
                if (fairsem_slot_index(slot) >= 3)
                    stress_err(s, "slot index", 0);
                spin_a_little(r);
                if ((rc = fairsem_release(t, slot)) != 0)
                    stress_err(s, "release", rc);
            } else if (rc == -ETIMEDOUT) {
                atomic_fetch_add(&s->timeouts, 1);
            } else {
                stress_err(s, "acquire_timeout", rc);
            }
        } else {
            /* event-loop client that often cancels */
            fairsem_request_t *req;
            int rc = fairsem_request_start(t, s, &req);
            if (rc != 0) {
                stress_err(s, "request_start", rc);
                continue;
            }
            if (fairsem_request_user(req) != s)
                stress_err(s, "request_user", 0);
            spin_a_little(r >> 3);
            switch (r % 3) {
            case 0: /* cancel: whatever raced, the slot is not ours */
                if ((rc = fairsem_request_cancel(req)) != 0)
                    stress_err(s, "cancel", rc);
                if ((rc = fairsem_request_result(req, &slot)) != -ECANCELED)
                    stress_err(s, "result after cancel", rc);
                atomic_fetch_add(&s->cancels, 1);
                break;
            case 1: /* poll the result, use the slot if granted */
                rc = fairsem_request_result(req, &slot);
                if (rc == 0) {
                    atomic_fetch_add(&s->grants, 1);
                    if (fairsem_request_result(req, &slot) != -EALREADY)
                        stress_err(s, "second result", 0);
                    if (fairsem_request_cancel(req) != -EALREADY)
                        stress_err(s, "cancel after take", 0);
                    if ((rc = fairsem_release(t, slot)) != 0)
                        stress_err(s, "release req", rc);
                } else if (rc != -EAGAIN) {
                    stress_err(s, "result", rc);
                }
                break;
            default: /* free cancels what is still queued */ break;
            }
            fairsem_request_free(req);
        }
    }
    return NULL;
}

Test(semantics, stress_timeouts_and_cancels, .timeout = 90)
{
    struct seg g;
    seg_create_slots(&g, "stress", 3, 0);
    struct stress s = {.sem = g.sem};
    s.t[0] = reg(g.sem, "s0", 1);
    s.t[1] = reg(g.sem, "s1", 2);
    s.t[2] = reg(g.sem, "s2", 1);
    enum { N = 6 };
    pthread_t th[N];
    struct stress_arg args[N];
    for (unsigned k = 0; k < N; k++) {
        args[k] = (struct stress_arg){&s, k};
        cr_assert_eq(pthread_create(&th[k], NULL, stress_main, &args[k]), 0);
    }
    /* Until enough of both happened (not for a time: a busy machine may
     * run the threads little). */
    for (uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
         (atomic_load(&s.grants) < 500 || atomic_load(&s.cancels) < 50) && test_now_ns() < end;)
        test_sleep_ms(10);
    atomic_store(&s.stop, 1);
    for (unsigned k = 0; k < N; k++)
        pthread_join(th[k], NULL);
    cr_assert_eq(atomic_load(&s.errors), 0, "%u errors, first: %s", atomic_load(&s.errors), s.what);
    cr_assert_geq(atomic_load(&s.grants), 500);
    cr_assert_geq(atomic_load(&s.cancels), 50);
    assert_all_free(g.sem);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 0);
    cr_assert_eq(st.registered_tenants, 3);
    int bad = fairsem_check(g.sem, NULL, NULL);
    cr_assert_eq(bad, 0, "fairsem_check after the stress: 0x%x", (unsigned)bad);
    /* and the pool still works in full */
    fairsem_slot_t x[3];
    cr_assert_eq(take_all(s.t[0], x, 3, NULL), 3);
    release_all(s.t[0], x, 3);
    seg_destroy(&g);
}

/* ---------------------------------------------------------- event loop */

Test(semantics, event_loop_request)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "events", 1, 0, &a, &b);
    fairsem_slot_t s, x;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    int efd = fairsem_event_fd(g.sem);
    cr_assert_geq(efd, 0);
    int cookie;
    fairsem_request_t *req;
    cr_assert_eq(fairsem_request_start(b, &cookie, &req), 0);
    cr_assert_eq(fairsem_request_user(req), &cookie);
    cr_assert_eq(fairsem_request_result(req, &x), -EAGAIN);
    cr_assert_eq(stats_of(g.sem).waiters, 1);
    cr_assert_eq(fairsem_release(a, s), 0);
    struct pollfd p = {efd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, TEST_PATIENCE_MS), 1, "event fd never became readable");
    fairsem_request_t *done[4];
    cr_assert_eq(fairsem_events(g.sem, done, 4), 1);
    cr_assert_eq(done[0], req);
    cr_assert_eq(fairsem_request_result(req, &x), 0);
    cr_assert_eq(fairsem_request_result(req, &x), -EALREADY);
    cr_assert_eq(tstats_of(g.sem, "b").held, 1);
    cr_assert_eq(fairsem_release(b, x), 0);
    fairsem_request_free(req);
    seg_finish(&g);
}

/* --------------------------------------------------------- unregistering */

Test(semantics, deferred_unregister)
{
    struct seg g;
    seg_create_slots(&g, "deferred", 4, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1);
    fairsem_slot_t s[2], x;
    fairsem_request_t *req = NULL;
    cr_assert_eq(fairsem_acquire(a, &s[0]), 0);
    cr_assert_eq(fairsem_acquire(a, &s[1]), 0);
    cr_assert_eq(fairsem_tenant_unregister(a, 0), 0);
    /* new acquires fail at once; the handle still releases */
    cr_assert_eq(fairsem_try_acquire(a, &x), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_acquire(a, &x), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_acquire_timeout(a, 1000000, &x), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_request_start(a, NULL, &req), FAIRSEM_ENOTREG);
    cr_assert_null(req);
    cr_assert_eq(fairsem_tenant_unregister(a, 0), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_FORCE), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_IF_IDLE), FAIRSEM_ENOTREG);
    /* As in aio-fairshare: gone from the stats and from D at once, while
     * its slots stay in use until released. */
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.registered_tenants, 0, "deferred: no longer registered");
    cr_assert_eq(st.demanding_tenants, 0, "deferred: no longer demanding");
    cr_assert(!tenant_listed(g.sem, "a"));
    cr_assert_eq(st.slots_in_use, 2);
    cr_assert_eq(fairsem_release(a, s[0]), 0);
    cr_assert_eq(stats_of(g.sem).slots_in_use, 1);
    cr_assert_eq(fairsem_release(a, s[1]), 0); /* the registration ends now */
    st = stats_of(g.sem);
    cr_assert_eq(st.registered_tenants, 0);
    cr_assert_eq(st.slots_available, 4);
    cr_assert(!tenant_listed(g.sem, "a"));
    seg_destroy(&g);
}

Test(semantics, forced_unregister_cancels_waiters)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "forced", 1, 0, &a, &b);
    fairsem_slot_t sb, sa;
    cr_assert_eq(fairsem_acquire(b, &sb), 0);
    cr_assert_eq(fairsem_try_acquire(a, &sa), -EAGAIN);
    struct client c1, c2;
    client_queue(g.sem, &c1, a, false);
    client_queue(g.sem, &c2, a, false);
    cr_assert_eq(tstats_of(g.sem, "a").waiting, 2);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_FORCE), 0);
    client_join(&c1);
    client_join(&c2);
    cr_assert_eq(c1.rc, -ECANCELED, "%s", fairsem_err_name(c1.rc));
    cr_assert_eq(c2.rc, -ECANCELED, "%s", fairsem_err_name(c2.rc));
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.registered_tenants, 1);
    cr_assert_eq(st.slots_in_use, 1);
    cr_assert_eq(fairsem_release(b, sb), 0);
    seg_finish(&g);
}

Test(semantics, forced_unregister_with_held_slot)
{
    struct seg g;
    seg_create_slots(&g, "forcedheld", 1, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    struct client c;
    client_queue(g.sem, &c, a, false);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_FORCE), 0);
    pthread_join(c.th, NULL);
    cr_assert_eq(c.rc, -ECANCELED);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 0);
    cr_assert_eq(stats_of(g.sem).slots_in_use, 1, "its held slot stays in use");
    cr_assert_eq(fairsem_try_acquire(a, &(fairsem_slot_t){0}), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_release(a, s), 0); /* last: the registration ends */
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.registered_tenants, 0);
    seg_finish(&g);
}

Test(semantics, unregister_if_idle)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "ifidle", 2, 0, &a, &b);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_IF_IDLE), -EBUSY);
    /* nothing changed: A still acquires */
    fairsem_slot_t s2;
    cr_assert_eq(fairsem_try_acquire(a, &s2), 0);
    cr_assert_eq(fairsem_release(a, s2), 0);
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_IF_IDLE), 0);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 1);
    /* a waiting tenant is not idle either */
    fairsem_slot_t x[2];
    cr_assert_eq(take_all(b, x, 2, NULL), 2);
    fairsem_tenant_t *c = reg(g.sem, "c", 1);
    struct client cc;
    client_queue(g.sem, &cc, c, false);
    cr_assert_eq(fairsem_tenant_unregister(c, FAIRSEM_IF_IDLE), -EBUSY);
    cr_assert_eq(fairsem_release(b, x[1]), 0);
    client_join(&cc);
    cr_assert_eq(cc.rc, 0);
    cr_assert_eq(cc.release_rc, 0);
    cr_assert_eq(fairsem_tenant_unregister(c, FAIRSEM_IF_IDLE), 0);
    cr_assert_eq(fairsem_release(b, x[0]), 0);
    cr_assert_eq(fairsem_tenant_unregister(b, 0), 0);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.registered_tenants, 0);
    seg_finish(&g);
}

Test(semantics, reregister_after_unregister)
{
    struct seg g;
    seg_create_slots(&g, "rereg", 2, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 3);
    cr_assert_eq(fairsem_tenant_unregister(a, 0), 0);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 0);
    a = reg(g.sem, "a", 1);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(a, &s), 0);
    cr_assert_eq(tstats_of(g.sem, "a").weight, 1);
    cr_assert_eq(fairsem_release(a, s), 0);
    seg_destroy(&g);
}

/* Two ids with one 32-bit hash are two tenants, each registered at once,
 * and they get separate shares. */
Test(semantics, tenant_ids_with_one_hash, .timeout = 10)
{
    struct seg g;
    seg_create_slots(&g, "hash", 4, 0);
    fairsem_tenant_t *a = reg(g.sem, "tenant-97758", 1);
    fairsem_tenant_t *b = reg(g.sem, "tenant-180560", 1); /* same FNV-1a hash */
    fairsem_tenant_t *a2 = reg(g.sem, "tenant-97758", 1);
    fairsem_slot_t s[4];
    cr_assert_eq(fairsem_try_acquire(a, &s[0]), 0);
    cr_assert_eq(fairsem_try_acquire(b, &s[1]), 0);
    cr_assert_eq(fairsem_try_acquire(a2, &s[2]), 0);
    cr_assert_eq(fairsem_try_acquire(a2, &s[3]), -EAGAIN, "a holds its share of 2 of 4");
    cr_assert_eq(tstats_of(g.sem, "tenant-97758").held, 2);
    cr_assert_eq(tstats_of(g.sem, "tenant-180560").held, 1);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 2);
    cr_assert_eq(fairsem_release(a, s[0]), 0);
    cr_assert_eq(fairsem_release(b, s[1]), 0);
    cr_assert_eq(fairsem_release(a2, s[2]), 0);
    cr_assert_eq(fairsem_check(g.sem, NULL, NULL), 0);
    seg_destroy(&g);
}

/* Threads acquire and release through a handle while another thread
 * unregisters it (deferred): the handle is finished exactly once, so the
 * process's other registration of the same tenant stays intact. */
struct churn {
    fairsem_tenant_t *t;
    _Atomic int stop;
};

static void *churn_thread(void *arg)
{
    struct churn *ch = arg;
    fairsem_slot_t s;
    while (!atomic_load(&ch->stop))
        if (fairsem_try_acquire(ch->t, &s) == 0)
            fairsem_release(ch->t, s);
    return NULL;
}

Test(semantics, unregister_while_other_threads_acquire, .timeout = 30)
{
    struct seg g;
    seg_create_slots(&g, "churn", 4, 0);
    fairsem_tenant_t *keep = reg(g.sem, "shared", 1);
    for (int round = 0; round < 200; round++) {
        struct churn ch = {.t = reg(g.sem, "shared", 1)};
        pthread_t th[3];
        for (int k = 0; k < 3; k++)
            pthread_create(&th[k], NULL, churn_thread, &ch);
        sched_yield();
        cr_assert_eq(fairsem_tenant_unregister(ch.t, 0), 0);
        atomic_store(&ch.stop, 1);
        for (int k = 0; k < 3; k++)
            pthread_join(th[k], NULL);
        cr_assert_eq(tstats_of(g.sem, "shared").registrations, 1u,
                     "round %d: the other handle lost its registration", round);
        cr_assert_eq(stats_of(g.sem).slots_in_use, 0u, "round %d", round);
        /* The handle outlived its registration (ASan would report a use
         * after free in the threads above otherwise); now it goes. */
        cr_assert_eq(fairsem_try_acquire(ch.t, &(fairsem_slot_t){0}), FAIRSEM_ENOTREG);
        cr_assert_eq(fairsem_tenant_free(ch.t), 0, "round %d", round);
    }
    cr_assert_eq(fairsem_tenant_unregister(keep, 0), 0);
    seg_destroy(&g);
}

/* A closing tenant (unregistered, still holding) no longer counts toward
 * D, so the others' shares grow at once; registering it again brings it
 * back with the slots it still holds. */
Test(semantics, closing_tenant_leaves_the_demand)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "closing", 4, 0, &a, &b);
    fairsem_slot_t sa[2], sb[2];
    cr_assert_eq(take_all(a, sa, 2, NULL), 2);
    cr_assert_eq(take_all(b, sb, 2, NULL), 2);
    struct client cb;
    client_queue(g.sem, &cb, b, true); /* B at its share of 2 waits */
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 2);
    cr_assert_eq(tstats_of(g.sem, "b").share, 2);
    cr_assert_eq(fairsem_tenant_unregister(a, 0), 0); /* deferred: A holds 2 */
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 1, "the closing tenant left D");
    cr_assert_eq(st.slots_in_use, 4);
    cr_assert_eq(tstats_of(g.sem, "b").share, 4, "B's share grew at once");
    cr_assert(!tenant_listed(g.sem, "a"));
    /* A's first release goes to B's waiter (B is under its new share). */
    cr_assert_eq(fairsem_release(a, sa[0]), 0);
    client_wait_done(&cb);
    cr_assert_eq(cb.rc, 0);
    cr_assert_eq(tstats_of(g.sem, "b").held, 3);
    /* Registering A again brings it back, holding its last slot. */
    fairsem_tenant_t *a2 = reg(g.sem, "a", 1);
    st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 2);
    cr_assert_eq(tstats_of(g.sem, "a").held, 1);
    cr_assert_eq(tstats_of(g.sem, "b").share, 2);
    cr_assert_eq(fairsem_release(a, sa[1]), 0);
    cr_assert_eq(fairsem_tenant_unregister(a2, 0), 0);
    client_join(&cb);
    release_all(b, sb, 2);
    seg_finish(&g);
}

/* Two processes share a tenant: it stays demanding while any registration
 * of it is open, and turns closing when the last one is unregistered. */
Test(semantics, closing_needs_every_registration_closed)
{
    struct seg g;
    seg_create_slots(&g, "closing2", 4, 0);
    fairsem_t *other;
    cr_assert_eq(fairsem_open(g.name, NULL, &other), 0);
    fairsem_tenant_t *mine = reg(g.sem, "shared", 1), *theirs = reg(other, "shared", 1);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(mine, &s), 0);
    cr_assert_eq(fairsem_tenant_unregister(mine, 0), 0);
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 1, "the other handle is still open");
    cr_assert_eq(tstats_of(g.sem, "shared").registrations, 1);
    cr_assert_eq(tstats_of(g.sem, "shared").held, 1);
    cr_assert_eq(fairsem_tenant_unregister(theirs, 0), 0);
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 0, "every registration closed");
    cr_assert_eq(stats_of(g.sem).slots_in_use, 1);
    /* A handle that detaches with the tenant open leaves it closing (its
     * record is scrubbed as a dead one's is: torture::closing_tenant kills
     * a process at every point of this instead). */
    fairsem_tenant_t *again = reg(other, "shared", 1);
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 1);
    fairsem_close(other);
    (void)again;
    cr_assert_eq(stats_of(g.sem).demanding_tenants, 0);
    cr_assert_eq(fairsem_release(mine, s), 0);
    seg_finish(&g);
}

/* A handle stays valid after its deferred unregistration completes: the
 * documented errors come from live memory, and fairsem_tenant_free() is
 * the one call that frees it (refusing while it still holds). */
Test(semantics, handle_outlives_its_registration)
{
    struct seg g;
    seg_create_slots(&g, "outlive", 2, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1);
    fairsem_slot_t s[2];
    cr_assert_eq(fairsem_acquire(a, &s[0]), 0);
    cr_assert_eq(fairsem_acquire(a, &s[1]), 0);
    cr_assert_eq(fairsem_tenant_free(a), -EBUSY, "freeing a handle that holds slots");
    cr_assert_eq(tstats_of(g.sem, "a").held, 2, "a refused free changed nothing");
    cr_assert_eq(fairsem_tenant_unregister(a, 0), 0);
    cr_assert_eq(fairsem_tenant_free(a), -EBUSY, "unregistered, but still holding");
    cr_assert_eq(fairsem_release(a, s[0]), 0);
    cr_assert_eq(fairsem_release(a, s[1]), 0); /* the registration ends here */
    cr_assert_eq(stats_of(g.sem).registered_tenants, 0);
    cr_assert_eq(fairsem_release(a, s[1]), FAIRSEM_ESLOT);
    cr_assert_eq(fairsem_tenant_unregister(a, 0), FAIRSEM_ENOTREG);
    cr_assert_eq(fairsem_try_acquire(a, &s[0]), FAIRSEM_ENOTREG);
    cr_assert_str_eq(fairsem_tenant_id(a), "a");
    cr_assert_eq(fairsem_tenant_free(a), 0);
    /* Freeing a registered, idle handle ends its registration. */
    fairsem_tenant_t *b = reg(g.sem, "b", 1);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 1);
    cr_assert_eq(fairsem_tenant_free(b), 0);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 0);
    cr_assert_eq(fairsem_tenant_free(NULL), -EINVAL);
    seg_destroy(&g);
}

/* Closing twice is an error that changes nothing, not a double free. */
Test(semantics, close_twice)
{
    struct seg g;
    seg_create_slots(&g, "close2", 1, 0);
    reg(g.sem, "a", 1);
    cr_assert_eq(fairsem_close(g.sem), 0);
    cr_assert_eq(fairsem_close(g.sem), -EBADF);
    cr_assert_eq(fairsem_close(NULL), 0);
    cr_assert_eq(fairsem_unlink(g.name, 0), 0);
}

/* A forced unregistration cancels a request that another thread is
 * queueing at that very moment (it used to be missed: the scan for the
 * registration's cells ran before the cell was published). */
struct forced_race {
    fairsem_tenant_t *t;
    _Atomic int entering;
    int rc;
};

static void *forced_race_acquirer(void *arg)
{
    struct forced_race *fr = arg;
    fairsem_slot_t s;
    atomic_store(&fr->entering, 1);
    fr->rc = fairsem_acquire_timeout(fr->t, TEST_PATIENCE_NS, &s);
    if (fr->rc == 0)
        fairsem_release(fr->t, s);
    return NULL;
}

Test(semantics, forced_unregister_races_enqueue, .timeout = 120)
{
    struct seg g;
    seg_create_slots(&g, "forcerace", 1, 0);
    fairsem_tenant_t *b = reg(g.sem, "b", 1);
    fairsem_slot_t held;
    cr_assert_eq(fairsem_acquire(b, &held), 0); /* the pool stays full */
    unsigned cancelled = 0, refused = 0;
    for (int round = 0; round < 2000; round++) {
        struct forced_race fr = {.t = reg(g.sem, "a", 1)};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, forced_race_acquirer, &fr), 0);
        while (!atomic_load(&fr.entering))
            sched_yield();
        /* Land the unregistration anywhere in the acquire (a few us). */
        for (volatile int k = (round * 7919) % 1024; k > 0; k--)
            ;
        cr_assert_eq(fairsem_tenant_unregister(fr.t, FAIRSEM_FORCE), 0);
        pthread_join(th, NULL);
        cr_assert(fr.rc == -ECANCELED || fr.rc == FAIRSEM_ENOTREG, "round %d: the racing acquire returned %s",
                  round, fairsem_err_name(fr.rc));
        cancelled += fr.rc == -ECANCELED;
        refused += fr.rc == FAIRSEM_ENOTREG;
        cr_assert_eq(fairsem_tenant_free(fr.t), 0, "round %d: the forced unregistration is still pending", round);
    }
    cr_log_info("forced race: %u cancelled while queued, %u refused at entry", cancelled, refused);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.registered_tenants, 1);
    cr_assert_eq(fairsem_release(b, held), 0);
    seg_finish(&g);
}

/* ------------------------------------------------------ current tenant */

struct cur_arg {
    fairsem_tenant_t *b;
    fairsem_tenant_t *seen_before, *seen_after;
    int rc_none, rc_b, rel_none, rel_b;
};

static void *current_thread(void *arg)
{
    struct cur_arg *ca = arg;
    fairsem_slot_t s;
    ca->seen_before = fairsem_tenant_current();
    ca->rc_none = fairsem_acquire(NULL, &s);
    fairsem_tenant_set_current(ca->b);
    ca->seen_after = fairsem_tenant_current();
    ca->rc_b = fairsem_try_acquire(NULL, &s);
    ca->rel_b = ca->rc_b == 0 ? fairsem_release(ca->b, s) : -1;
    return NULL;
}

Test(semantics, thread_local_current_tenant)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "current", 4, 0, &a, &b);
    fairsem_slot_t s;
    cr_assert_null(fairsem_tenant_current());
    cr_assert_eq(fairsem_acquire(NULL, &s), -EINVAL);
    fairsem_tenant_set_current(a);
    cr_assert_eq(fairsem_tenant_current(), a);
    cr_assert_eq(fairsem_acquire(NULL, &s), 0);
    cr_assert_eq(tstats_of(g.sem, "a").held, 1);
    cr_assert_eq(tstats_of(g.sem, "b").held, 0);
    /* another thread has its own current tenant */
    struct cur_arg ca = {.b = b};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, current_thread, &ca), 0);
    pthread_join(th, NULL);
    cr_assert_null(ca.seen_before);
    cr_assert_eq(ca.rc_none, -EINVAL);
    cr_assert_eq(ca.seen_after, b);
    cr_assert_eq(ca.rc_b, 0);
    cr_assert_eq(ca.rel_b, 0);
    cr_assert_eq(fairsem_tenant_current(), a, "another thread changed ours");
    fairsem_slot_t s2;
    cr_assert_eq(fairsem_acquire_timeout(NULL, 1000000, &s2), 0);
    cr_assert_eq(tstats_of(g.sem, "a").held, 2);
    release_all(a, (fairsem_slot_t[]){s, s2}, 2);
    /* the current tenant is forgotten when it is unregistered */
    cr_assert_eq(fairsem_tenant_unregister(a, 0), 0);
    cr_assert_null(fairsem_tenant_current());
    cr_assert_eq(fairsem_try_acquire(NULL, &s), -EINVAL);
    fairsem_tenant_set_current(NULL);
    cr_assert_null(fairsem_tenant_current());
    seg_destroy(&g);
}

/* ------------------------------------------------------------------ stats */

Test(semantics, stats_in_each_state)
{
    struct seg g;
    fairsem_options_t o = {.max_slots = 4, .min_share = 1, .max_tenants = 8};
    seg_create(&g, "stats", &o);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.max_slots, 4);
    cr_assert_eq(st.min_share, 1);
    cr_assert_eq(st.flags, 0);
    cr_assert_eq(st.registered_tenants, 0);
    cr_assert_eq(st.demanding_tenants, 0);
    cr_assert_eq(st.slots_in_use, 0);
    cr_assert_eq(st.slots_available, 4);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.attached_procs, 1);
    size_t count = 99;
    fairsem_tenant_stats_t ts[8];
    cr_assert_eq(fairsem_stats(g.sem, &st, ts, 8, &count), 0);
    cr_assert_eq(count, 0);

    fairsem_tenant_t *a = reg(g.sem, "alpha", 3), *b = reg(g.sem, "beta", 1);
    cr_assert_eq(fairsem_stats(g.sem, &st, ts, 8, &count), 0);
    cr_assert_eq(count, 2);
    cr_assert_eq(st.registered_tenants, 2);
    cr_assert_eq(st.demanding_tenants, 0);
    fairsem_tenant_stats_t ta = tstats_of(g.sem, "alpha");
    cr_assert_eq(ta.held, 0);
    cr_assert_eq(ta.waiting, 0);
    cr_assert_eq(ta.weight, 3);
    cr_assert_eq(ta.registrations, 1);
    cr_assert_eq(ta.share, 4);

    /* alpha alone takes all 4 */
    fairsem_slot_t sa[4];
    cr_assert_eq(take_all(a, sa, 4, NULL), 4);
    st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 1);
    cr_assert_eq(st.slots_in_use, 4);
    cr_assert_eq(st.slots_available, 0);
    cr_assert_eq(st.waiters, 0);
    ta = tstats_of(g.sem, "alpha");
    cr_assert_eq(ta.held, 4);
    cr_assert_eq(ta.share, 4);
    /* beta, idle, would have 4*1/4 = 1 */
    cr_assert_eq(tstats_of(g.sem, "beta").share, 1);

    /* beta waits */
    struct client cb;
    client_queue(g.sem, &cb, b, true);
    st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 2);
    cr_assert_eq(st.waiters, 1);
    cr_assert_eq(st.slots_in_use, 4);
    fairsem_tenant_stats_t tb = tstats_of(g.sem, "beta");
    cr_assert_eq(tb.waiting, 1);
    cr_assert_eq(tb.held, 0);
    cr_assert_eq(tb.share, 1);
    cr_assert_eq(tb.weight, 1);
    cr_assert_eq(tstats_of(g.sem, "alpha").share, 3);

    /* the count is right even when cap is small */
    count = 0;
    cr_assert_eq(fairsem_stats(g.sem, &st, ts, 1, &count), 0);
    cr_assert_eq(count, 2);

    /* a release serves beta */
    cr_assert_eq(fairsem_release(a, sa[3]), 0);
    client_wait_done(&cb);
    st = stats_of(g.sem);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.slots_in_use, 4);
    cr_assert_eq(tstats_of(g.sem, "beta").held, 1);
    cr_assert_eq(tstats_of(g.sem, "alpha").held, 3);

    /* a second registration of alpha (weight 2: last one wins) */
    fairsem_tenant_t *a2 = reg(g.sem, "alpha", 2);
    ta = tstats_of(g.sem, "alpha");
    cr_assert_eq(ta.weight, 2);
    cr_assert_eq(ta.registrations, 1, "one process record");
    cr_assert_eq(stats_of(g.sem).registered_tenants, 2);
    cr_assert_eq(fairsem_tenant_unregister(a2, 0), 0);
    cr_assert_eq(stats_of(g.sem).registered_tenants, 2);

    client_join(&cb);
    release_all(a, sa, 3);
    st = stats_of(g.sem);
    cr_assert_eq(st.demanding_tenants, 0);
    cr_assert_eq(st.slots_available, 4);
    seg_destroy(&g);
}

Test(semantics, stats_attached_procs)
{
    struct seg g;
    seg_create_slots(&g, "procs", 2, 0);
    fairsem_t *other;
    cr_assert_eq(fairsem_open(g.name, NULL, &other), 0);
    cr_assert_eq(stats_of(g.sem).attached_procs, 2);
    fairsem_tenant_t *x = reg(other, "x", 1);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(x, &s), 0);
    cr_assert_eq(stats_of(g.sem).slots_in_use, 1);
    /* closing gives back what the handle held */
    fairsem_close(other);
    fairsem_stats_t st = stats_of(g.sem);
    cr_assert_eq(st.attached_procs, 1);
    cr_assert_eq(st.slots_in_use, 0);
    cr_assert_eq(st.registered_tenants, 0);
    seg_destroy(&g);
}

/* ------------------------------------------------------------- settings */

Test(semantics, min_share)
{
    struct seg g;
    fairsem_options_t o = {.max_slots = 10, .min_share = 3};
    seg_create(&g, "minshare", &o);
    cr_assert_eq(stats_of(g.sem).min_share, 3);
    fairsem_tenant_t *t[4];
    fairsem_slot_t s[4][10];
    unsigned n[4];
    char id[8];
    for (unsigned k = 0; k < 4; k++) {
        snprintf(id, sizeof id, "m%u", k);
        t[k] = reg(g.sem, id, 1);
        cr_assert_eq(fairsem_try_acquire(t[k], &s[k][0]), 0);
    }
    /* built-in 10/4 = 2, raised to 3 */
    n[0] = 1 + take_all(t[0], &s[0][1], 9, NULL);
    cr_assert_eq(n[0], 3);
    cr_assert_eq(tstats_of(g.sem, "m0").share, 3);
    n[1] = 1 + take_all(t[1], &s[1][1], 9, NULL);
    n[2] = 1 + take_all(t[2], &s[2][1], 9, NULL);
    cr_assert_eq(n[1], 3);
    cr_assert_eq(n[2], 3);
    /* pool exhausted: the last tenant keeps 1 */
    n[3] = 1 + take_all(t[3], &s[3][1], 9, NULL);
    cr_assert_eq(n[3], 1);
    cr_assert_eq(stats_of(g.sem).slots_available, 0);
    for (unsigned k = 0; k < 4; k++)
        release_all(t[k], s[k], n[k]);
    seg_finish(&g);
}

static unsigned plus_one(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)arg;
    return max_slots / demanding + 1;
}

static unsigned minus_one(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)arg;
    return max_slots / demanding - 1;
}

Test(semantics, custom_rule)
{
    struct seg g;
    fairsem_options_t o = {.max_slots = 10, .share_fn_name = "plus1", .share_fn = plus_one};
    seg_create(&g, "rule", &o);
    fairsem_t *other = NULL, *plain = NULL;
    fairsem_options_t same = {.share_fn_name = "plus1", .share_fn = plus_one};
    cr_assert_eq(fairsem_open(g.name, &same, &other), 0);
    /* The segment carries the rule's shares: no function needed to open. */
    fairsem_options_t name_only = {.share_fn_name = "plus1"};
    cr_assert_eq(fairsem_open(g.name, NULL, &plain), 0);
    fairsem_close(plain);
    cr_assert_eq(fairsem_open(g.name, &name_only, &plain), 0);
    fairsem_close(plain);
    /* The one rule error left: naming, or bringing, another rule. */
    fairsem_options_t different = {.share_fn_name = "minus1", .share_fn = minus_one};
    fairsem_options_t same_name_other_fn = {.share_fn_name = "plus1", .share_fn = minus_one};
    fairsem_options_t fn_without_name = {.share_fn = plus_one};
    fairsem_t *bad = NULL;
    cr_assert_eq(fairsem_open(g.name, &different, &bad), FAIRSEM_ERULE);
    cr_assert_eq(fairsem_open(g.name, &same_name_other_fn, &bad), FAIRSEM_ERULE);
    cr_assert_eq(fairsem_open(g.name, &fn_without_name, &bad), -EINVAL);
    cr_assert_null(bad);

    /* 2 tenants on 10 slots: 10/2 + 1 = 6 each, whether or not the handle
     * was opened with the function */
    cr_assert_eq(fairsem_open(g.name, NULL, &plain), 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1), *b = reg(plain, "b", 1);
    fairsem_slot_t sa[10], sb[10];
    cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
    cr_assert_eq(fairsem_try_acquire(b, &sb[0]), 0);
    unsigned na = 1 + take_all(a, &sa[1], 9, NULL);
    cr_assert_eq(na, 6);
    cr_assert_eq(tstats_of(g.sem, "a").share, 6);
    cr_assert_eq(tstats_of(plain, "b").share, 6);
    cr_assert_eq(tstats_of(other, "b").share, 6);
    unsigned nb = 1 + take_all(b, &sb[1], 9, NULL);
    cr_assert_eq(nb, 4, "pool exhausted at 4");
    release_all(a, sa, na);
    release_all(b, sb, nb);
    fairsem_close(other);
    fairsem_close(plain);
    assert_all_free(g.sem);

    /* a built-in segment refuses a named rule */
    struct seg h;
    seg_create_slots(&h, "builtin", 2, 0);
    cr_assert_eq(fairsem_open(h.name, &same, &bad), FAIRSEM_ERULE);
    cr_assert_eq(fairsem_open(h.name, &name_only, &bad), FAIRSEM_ERULE);
    seg_destroy(&h);
    seg_destroy(&g);
}

Test(semantics, weights)
{
    struct seg g;
    seg_create_slots(&g, "weights", 9, 0);
    fairsem_tenant_t *a = reg(g.sem, "heavy", 2), *b = reg(g.sem, "light", 1);
    fairsem_slot_t sa[9], sb[9];
    unsigned na, nb;
    take_both(b, sb, &nb, a, sa, &na, 8);
    cr_assert_eq(na, 6);
    cr_assert_eq(nb, 3);
    fairsem_tenant_stats_t ta = tstats_of(g.sem, "heavy"), tb = tstats_of(g.sem, "light");
    cr_assert_eq(ta.weight, 2);
    cr_assert_eq(tb.weight, 1);
    cr_assert_eq(ta.share, 6);
    cr_assert_eq(tb.share, 3);
    release_all(a, sa, na);
    release_all(b, sb, nb);
    seg_destroy(&g);
}

static void conserving(unsigned flags)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, flags ? "wcon" : "wcoff", 10, flags, &a, &b);
    cr_assert_eq(stats_of(g.sem).flags, flags);
    fairsem_slot_t sa[10], sb[10];
    unsigned na, nb;
    take_both(a, sa, &na, b, sb, &nb, 4);
    cr_assert_eq(na, 5);
    cr_assert_eq(nb, 5);
    cr_assert_eq(stats_of(g.sem).slots_available, 0);

    /* A, at its share, queues one more request; then B frees a slot */
    struct client ca;
    fairsem_request_t *queued = NULL;
    fairsem_slot_t unused;
    if (flags)
        client_start(&ca, a, true, 0);
    else
        cr_assert_eq(fairsem_request_start(a, NULL, &queued), 0);
    wait_waiters(g.sem, 1);
    cr_assert_eq(fairsem_release(b, sb[--nb]), 0);
    if (flags) {
        /* nobody under share can use it: lent to A's waiter */
        client_wait_done(&ca);
        cr_assert_eq(ca.rc, 0, "%s", fairsem_err_name(ca.rc));
        cr_assert_eq(tstats_of(g.sem, "a").held, 6);
        cr_assert_eq(stats_of(g.sem).slots_available, 0);
        cr_assert_eq(stats_of(g.sem).waiters, 0);
    } else {
        /* The release decided at once; a little later nothing has changed. */
        cr_assert_eq(fairsem_request_result(queued, &unused), -EAGAIN, "at-share waiter served at once");
        test_sleep_ms(20);
        cr_assert_eq(fairsem_request_result(queued, &unused), -EAGAIN,
                     "at-share waiter served without work conserving");
        cr_assert_eq(stats_of(g.sem).slots_available, 1);
        cr_assert_eq(stats_of(g.sem).waiters, 1);
        fairsem_request_free(queued);
        cr_assert_eq(stats_of(g.sem).slots_available, 1);
        cr_assert_eq(stats_of(g.sem).waiters, 0);
    }

    /* B frees another; A (at or over share, nobody waits) asks at once */
    cr_assert_eq(fairsem_release(b, sb[--nb]), 0);
    int rc = fairsem_try_acquire(a, &sa[na]);
    if (flags) {
        cr_assert_eq(rc, 0, "work-conserving: A borrows, got %s", fairsem_err_name(rc));
        na++;
        cr_assert_eq(tstats_of(g.sem, "a").held, 7);
        cr_assert_eq(stats_of(g.sem).slots_available, 0);
    } else {
        cr_assert_eq(rc, -EAGAIN, "not work-conserving: got %s", fairsem_err_name(rc));
        cr_assert_eq(stats_of(g.sem).slots_available, 2);
    }

    /* B, under share, gets slots back: at once, or as loans come home */
    if (flags) {
        cr_assert_eq(fairsem_try_acquire(b, &sb[nb]), -EAGAIN);
        cr_assert_eq(fairsem_release(a, sa[--na]), 0);
        cr_assert_eq(fairsem_try_acquire(b, &sb[nb]), 0);
        nb++;
    } else {
        cr_assert_eq(fairsem_try_acquire(b, &sb[nb]), 0);
        nb++;
        cr_assert_eq(fairsem_try_acquire(b, &sb[nb]), 0);
        nb++;
        cr_assert_eq(fairsem_try_acquire(b, &sb[nb]), -EAGAIN);
    }
    if (flags) {
        client_join(&ca);
        cr_assert_eq(ca.release_rc, 0);
    }
    release_all(a, sa, na);
    release_all(b, sb, nb);
    seg_finish(&g);
}

Test(semantics, work_conserving_on) { conserving(FAIRSEM_WORK_CONSERVING); }
Test(semantics, work_conserving_off) { conserving(0); }

/* ------------------------------------------------------------------ slots */

Test(semantics, slot_index_in_range)
{
    struct seg g;
    seg_create_slots(&g, "index", 10, 0);
    fairsem_tenant_t *a = reg(g.sem, "a", 1);
    fairsem_slot_t s[10];
    cr_assert_eq(take_all(a, s, 10, NULL), 10);
    unsigned seen = 0;
    for (unsigned k = 0; k < 10; k++) {
        unsigned i = fairsem_slot_index(s[k]);
        cr_assert_lt(i, 10);
        cr_assert_eq(seen & (1u << i), 0, "index %u handed out twice", i);
        seen |= 1u << i;
    }
    cr_assert_eq(seen, 0x3ff);
    release_all(a, s, 10);
    seg_destroy(&g);
}

Test(semantics, release_twice_and_forged)
{
    struct seg g;
    fairsem_tenant_t *a, *b;
    seg_create_ab(&g, "eslot", 4, 0, &a, &b);
    fairsem_slot_t s, t;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    cr_assert_eq(fairsem_acquire(a, &t), 0);
    /* through another tenant handle */
    cr_assert_eq(fairsem_release(b, s), FAIRSEM_ESLOT);
    /* forged: random tag, wrong stamp, index out of range */
    cr_assert_eq(fairsem_release(a, (fairsem_slot_t){0}), FAIRSEM_ESLOT);
    cr_assert_eq(fairsem_release(a, (fairsem_slot_t){0x123456789abcdefull}), FAIRSEM_ESLOT);
    cr_assert_eq(fairsem_release(a, (fairsem_slot_t){s.tag ^ (1ull << 16)}), FAIRSEM_ESLOT);
    cr_assert_eq(fairsem_release(a, (fairsem_slot_t){(s.tag & ~0xffffull) | 0xfff0}), FAIRSEM_ESLOT);
    /* t's stamp with s's index */
    cr_assert_eq(fairsem_release(a, (fairsem_slot_t){(t.tag & ~0xffffull) | (s.tag & 0xffff)}), FAIRSEM_ESLOT);
    cr_assert_eq(stats_of(g.sem).slots_in_use, 2);
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(fairsem_release(a, s), FAIRSEM_ESLOT);
    /* the freed slot, taken again by b, is still not a's */
    fairsem_slot_t u;
    cr_assert_eq(fairsem_acquire(b, &u), 0);
    cr_assert_eq(fairsem_release(a, s), FAIRSEM_ESLOT);
    cr_assert_eq(fairsem_release(b, u), 0);
    cr_assert_eq(fairsem_release(a, t), 0);
    cr_assert_eq(fairsem_release(a, t), FAIRSEM_ESLOT);
    assert_all_free(g.sem);
    /* the handle is still registered and working */
    cr_assert_eq(fairsem_tenant_unregister(a, FAIRSEM_IF_IDLE), 0);
    seg_destroy(&g);
}
