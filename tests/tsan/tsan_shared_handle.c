/*
 * tsan_shared_handle.c - one tenant handle used by several threads at once,
 * next to a second tenant, while another thread reads stats and dumps.
 *
 * Four threads acquire and release through one handle (blocking, try and
 * timed acquires in turn), one thread through a handle of another tenant,
 * on a 3-slot pool.  Checked: no slot index is ever held by two threads at
 * once; every release of a held slot succeeds; in the end every slot is
 * free, nobody waits and fairsem_check() finds nothing.
 */
#include "harness.h"

#define SLOTS 3
#define SHARED_THREADS 4
#define ROUNDS 10000

static fairsem_t *sem;
static fairsem_tenant_t *shared, *other;
static _Atomic int holder[SLOTS]; /* 0 free, else the thread's number + 1 */
static _Atomic int workers_left;
static _Atomic unsigned timeouts, busy;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    fairsem_tenant_t *t = id < SHARED_THREADS ? shared : other;
    for (int k = 0; k < ROUNDS; k++) {
        fairsem_slot_t s;
        int rc;
        switch (k % 3) {
        case 0: rc = fairsem_acquire(t, &s); break;
        case 1: rc = fairsem_try_acquire(t, &s); break;
        default: rc = fairsem_acquire_timeout(t, 2000000, &s); break;
        }
        if (rc == -EAGAIN || rc == -ETIMEDOUT) {
            atomic_fetch_add(rc == -EAGAIN ? &busy : &timeouts, 1);
            continue;
        }
        expect(rc, 0, "acquire");
        unsigned idx = fairsem_slot_index(s);
        if (idx >= SLOTS)
            fail("slot index %u out of range", idx);
        int was = atomic_exchange(&holder[idx], id + 1);
        if (was != 0)
            fail("slot %u granted to thread %d while thread %d holds it", idx, id, was - 1);
        if (k % 7 == 0)
            sched_yield();
        atomic_store(&holder[idx], 0);
        expect(fairsem_release(t, s), 0, "fairsem_release");
    }
    atomic_fetch_sub(&workers_left, 1);
    return NULL;
}

static void *observer(void *arg)
{
    (void)arg;
    static const fairsem_dump_ops_t ops = {0};
    while (atomic_load(&workers_left) > 0) {
        fairsem_stats_t st;
        fairsem_tenant_stats_t ts[4];
        size_t n;
        expect(fairsem_stats(sem, &st, ts, 4, &n), 0, "fairsem_stats");
        if (st.slots_in_use + st.slots_available != SLOTS)
            fail("stats: %u in use + %u available != %d", st.slots_in_use, st.slots_available, SLOTS);
        expect(fairsem_dump(sem, &ops, NULL), 0, "fairsem_dump");
        harness_nap();
    }
    return NULL;
}

int main(void)
{
    fairsem_options_t o = {.max_slots = SLOTS};
    sem = harness_create("shared", &o);
    shared = harness_register(sem, "shared");
    other = harness_register(sem, "other");
    pthread_t th[SHARED_THREADS + 1], obs;
    atomic_store(&workers_left, SHARED_THREADS + 1);
    for (int i = 0; i <= SHARED_THREADS; i++)
        harness_start(&th[i], worker, (void *)(intptr_t)i);
    harness_start(&obs, observer, NULL);
    for (int i = 0; i <= SHARED_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(obs, NULL);
    expect(fairsem_tenant_unregister(shared, 0), 0, "fairsem_tenant_unregister");
    expect(fairsem_tenant_unregister(other, 0), 0, "fairsem_tenant_unregister");
    harness_finish(sem);
    printf("tsan_shared_handle: %d acquires per thread, %u try_acquire -EAGAIN, %u timeouts\n", ROUNDS,
           atomic_load(&busy), atomic_load(&timeouts));
    return 0;
}
