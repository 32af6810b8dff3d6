/*
 * tsan_register_churn.c - registrations come and go while other threads
 * acquire.
 *
 *  - two churn threads register a tenant (three ids each, in turn), take a
 *    slot or try to, give it back and unregister (plain, forced, if-idle);
 *  - two steady threads acquire and release through a handle that stays;
 *  - one thread reads fairsem_stats() with the tenant list throughout;
 *  - the main thread, 300 rounds: registers a handle, starts two threads
 *    that acquire and release through it, and unregisters it once both have
 *    used it; they go on until they see FAIRSEM_ENOTREG; then a second
 *    unregister gets FAIRSEM_ENOTREG and the handle is freed.
 *
 * Checked: every call returns one of its documented results; after each
 * round the tenant of the unregistered handle has only the main thread's
 * other registration left and holds no slot; in the end every slot is free,
 * nobody waits and fairsem_check() finds nothing.
 */
#include "harness.h"

#define SLOTS 4
#define CHURN_ROUNDS 2000
#define STEADY_ROUNDS 10000
#define MAIN_ROUNDS 300

static fairsem_t *sem;
static _Atomic int busy_threads; /* churn + steady threads still running */

static void *churn(void *arg)
{
    int id = (int)(intptr_t)arg;
    static const unsigned flags[3] = {0, FAIRSEM_FORCE, FAIRSEM_IF_IDLE};
    for (int k = 0; k < CHURN_ROUNDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "churn-%d-%d", id, k % 3);
        fairsem_tenant_t *t = harness_register(sem, name);
        fairsem_slot_t s;
        int rc = k % 2 ? fairsem_try_acquire(t, &s) : fairsem_acquire_timeout(t, 1000000, &s);
        if (rc == 0)
            expect(fairsem_release(t, s), 0, "fairsem_release (churn)");
        else if (rc != -EAGAIN && rc != -ETIMEDOUT)
            fail("churn acquire returned %s", fairsem_err_name(rc));
        expect(fairsem_tenant_unregister(t, flags[k % 3]), 0, "fairsem_tenant_unregister (churn)");
        expect(fairsem_tenant_free(t), 0, "fairsem_tenant_free (churn)");
    }
    atomic_fetch_sub(&busy_threads, 1);
    return NULL;
}

static void *steady(void *arg)
{
    fairsem_tenant_t *t = arg;
    for (int k = 0; k < STEADY_ROUNDS; k++) {
        fairsem_slot_t s;
        expect(fairsem_acquire(t, &s), 0, "fairsem_acquire (steady)");
        expect(fairsem_release(t, s), 0, "fairsem_release (steady)");
    }
    atomic_fetch_sub(&busy_threads, 1);
    return NULL;
}

static void *observer(void *arg)
{
    (void)arg;
    while (atomic_load(&busy_threads) > 0) {
        fairsem_stats_t st;
        fairsem_tenant_stats_t ts[8];
        size_t n;
        expect(fairsem_stats(sem, &st, ts, 8, &n), 0, "fairsem_stats");
        for (size_t i = 0; i < n && i < 8; i++)
            if (strnlen(ts[i].id, sizeof ts[i].id) == sizeof ts[i].id)
                fail("stats: a tenant id without its NUL");
        harness_nap();
    }
    return NULL;
}

/* One round of the main thread's handle. */
struct doomed {
    fairsem_tenant_t *t;
    _Atomic int used;    /* threads that have acquired through it */
    _Atomic int stopped; /* threads that have seen FAIRSEM_ENOTREG */
};

static void *doomed_user(void *arg)
{
    struct doomed *d = arg;
    bool counted = false;
    for (;;) {
        fairsem_slot_t s;
        int rc = fairsem_try_acquire(d->t, &s);
        if (rc == FAIRSEM_ENOTREG)
            break;
        if (rc == 0)
            expect(fairsem_release(d->t, s), 0, "fairsem_release (doomed handle)");
        else if (rc != -EAGAIN)
            fail("try_acquire through a doomed handle returned %s", fairsem_err_name(rc));
        if (!counted) {
            atomic_fetch_add(&d->used, 1);
            counted = true;
        }
    }
    atomic_fetch_add(&d->stopped, 1);
    return NULL;
}

int main(void)
{
    fairsem_options_t o = {.max_slots = SLOTS, .max_tenants = 16};
    sem = harness_create("churn", &o);
    fairsem_tenant_t *steady_t = harness_register(sem, "steady");
    fairsem_tenant_t *keep = harness_register(sem, "doomed");
    pthread_t th[4], obs;
    atomic_store(&busy_threads, 4);
    harness_start(&th[0], churn, (void *)(intptr_t)0);
    harness_start(&th[1], churn, (void *)(intptr_t)1);
    harness_start(&th[2], steady, steady_t);
    harness_start(&th[3], steady, steady_t);
    harness_start(&obs, observer, NULL);
    for (int round = 0; round < MAIN_ROUNDS; round++) {
        struct doomed d = {.t = harness_register(sem, "doomed")};
        pthread_t users[2];
        harness_start(&users[0], doomed_user, &d);
        harness_start(&users[1], doomed_user, &d);
        while (atomic_load(&d.used) < 2 && atomic_load(&d.stopped) == 0)
            harness_nap();
        expect(fairsem_tenant_unregister(d.t, 0), 0, "fairsem_tenant_unregister (doomed)");
        pthread_join(users[0], NULL);
        pthread_join(users[1], NULL);
        expect(fairsem_tenant_unregister(d.t, 0), FAIRSEM_ENOTREG, "a second fairsem_tenant_unregister");
        expect(fairsem_tenant_free(d.t), 0, "fairsem_tenant_free (doomed)");
        fairsem_tenant_stats_t ts[16];
        fairsem_stats_t st;
        size_t n;
        expect(fairsem_stats(sem, &st, ts, 16, &n), 0, "fairsem_stats");
        for (size_t i = 0; i < n && i < 16; i++)
            if (strcmp(ts[i].id, "doomed") == 0 && (ts[i].registrations != 1 || ts[i].held != 0))
                fail("round %d: doomed tenant has %u registrations and %u slots after unregistering", round,
                     ts[i].registrations, ts[i].held);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_join(obs, NULL);
    expect(fairsem_tenant_unregister(keep, 0), 0, "fairsem_tenant_unregister (keep)");
    expect(fairsem_tenant_unregister(steady_t, 0), 0, "fairsem_tenant_unregister (steady)");
    harness_finish(sem);
    printf("tsan_register_churn: %d churn, %d steady, %d doomed-handle rounds\n", 2 * CHURN_ROUNDS,
           2 * STEADY_ROUNDS, MAIN_ROUNDS);
    return 0;
}
