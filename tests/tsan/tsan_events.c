/*
 * tsan_events.c - the event-loop API from several threads at once.
 *
 * Usage: tsan_events COLLECTORS
 *
 * Three starter threads queue requests on one handle of a 1-slot pool
 * (each keeps a slot it was granted at once until its next start, so the
 * others' requests wait) and cancel every third queued one themselves;
 * COLLECTORS threads poll the handle's descriptor and collect completions
 * with fairsem_events(), taking and giving back each granted slot.
 *
 * Who frees: a starter frees its own requests, a granted-at-once one right
 * away, a queued one once a collector has reported it.  The API cannot say
 * whether a request that result() granted right after start had waited (and
 * so will be reported), so a starter frees under a write lock that
 * collectors hold for reading while they collect: nothing is freed while a
 * collector may hold it, and the collectors still run fairsem_events()
 * concurrently with each other.
 *
 * Checked: a request that had to wait is reported exactly once, with an
 * outcome; no request is reported after it was freed; every request's slot
 * is taken exactly once or it was cancelled; in the end every slot is free,
 * nobody waits and fairsem_check() finds nothing.
 */
#include "harness.h"

#include <poll.h>

#define STARTERS 3
#define PER_STARTER 5000
#define MAX_OUTSTANDING 4 /* unreported queued requests per starter */
#define MAX_COLLECTORS 4

struct track {
    fairsem_request_t *req;
    _Atomic int waited;    /* result() right after start said it is queued */
    _Atomic int reported;  /* times fairsem_events() returned it */
    _Atomic int outcomes;  /* slot taken (by anyone) or cancelled */
    _Atomic int freed;
};

static fairsem_t *sem;
static fairsem_tenant_t *tenant;
static struct track tracks[STARTERS][PER_STARTER];
static pthread_rwlock_t free_lock = PTHREAD_RWLOCK_INITIALIZER;
static _Atomic int stop_collecting;
static _Atomic unsigned granted_late, cancelled;

static void free_request(struct track *tr)
{
    pthread_rwlock_wrlock(&free_lock);
    fairsem_request_free(tr->req);
    atomic_store(&tr->freed, 1);
    pthread_rwlock_unlock(&free_lock);
}

/* Free the starter's queued requests that have been reported; how many of
 * them remain unreported. */
static int sweep(struct track *mine, int started, int *next_unfreed)
{
    int left = 0;
    for (int k = *next_unfreed; k < started; k++) {
        struct track *tr = &mine[k];
        if (atomic_load(&tr->freed))
            continue;
        if (atomic_load(&tr->reported))
            free_request(tr);
        else
            left++;
    }
    while (*next_unfreed < started && atomic_load(&mine[*next_unfreed].freed))
        (*next_unfreed)++;
    return left;
}

static void *starter(void *arg)
{
    struct track *mine = tracks[(intptr_t)arg];
    fairsem_slot_t kept;
    bool keeping = false;
    int next_unfreed = 0;
    for (int k = 0; k < PER_STARTER; k++) {
        while (sweep(mine, k, &next_unfreed) >= MAX_OUTSTANDING)
            harness_nap();
        struct track *tr = &mine[k];
        pthread_rwlock_wrlock(&free_lock); /* tr->req is set before any collector sees it */
        int rc = fairsem_request_start(tenant, tr, &tr->req);
        pthread_rwlock_unlock(&free_lock);
        expect(rc, 0, "fairsem_request_start");
        if (keeping)
            expect(fairsem_release(tenant, kept), 0, "fairsem_release (granted at once)");
        keeping = false;
        rc = fairsem_request_result(tr->req, &kept);
        if (rc == 0) {
            keeping = true;
            atomic_fetch_add(&tr->outcomes, 1);
            free_request(tr);
            continue;
        }
        /* -EALREADY: it waited, and a collector has taken its slot already. */
        if (rc != -EAGAIN && rc != -EALREADY)
            fail("fairsem_request_result right after start returned %s", fairsem_err_name(rc));
        atomic_store(&tr->waited, 1);
        if (k % 3 == 0) {
            rc = fairsem_request_cancel(tr->req);
            if (rc != 0 && rc != -EALREADY)
                fail("fairsem_request_cancel returned %s", fairsem_err_name(rc));
        }
    }
    if (keeping)
        expect(fairsem_release(tenant, kept), 0, "fairsem_release (granted at once)");
    /* A lost completion is never reported: give up after two minutes. */
    uint64_t deadline = harness_now_ns() + 120ull * 1000000000u;
    int left;
    while ((left = sweep(mine, PER_STARTER, &next_unfreed)) > 0) {
        if (harness_now_ns() > deadline)
            fail("%d queued requests of a starter were never reported (completions lost)", left);
        harness_nap();
    }
    return NULL;
}

static void collect(fairsem_request_t *req)
{
    struct track *tr = fairsem_request_user(req);
    if (!tr || tr < &tracks[0][0] || tr >= &tracks[STARTERS][0])
        fail("fairsem_events returned a request with a foreign user pointer");
    if (atomic_load(&tr->freed))
        fail("fairsem_events returned a freed request");
    if (atomic_fetch_add(&tr->reported, 1) != 0)
        fail("a request was reported twice");
    fairsem_slot_t s;
    int rc = fairsem_request_result(req, &s);
    if (rc == 0) {
        atomic_fetch_add(&tr->outcomes, 1);
        atomic_fetch_add(&granted_late, 1);
        expect(fairsem_release(tenant, s), 0, "fairsem_release (reported grant)");
    } else if (rc == -ECANCELED) {
        atomic_fetch_add(&tr->outcomes, 1);
        atomic_fetch_add(&cancelled, 1);
    } else if (rc != -EALREADY) { /* -EALREADY: its starter took the slot */
        fail("a reported request has no outcome: %s", fairsem_err_name(rc));
    }
}

static void *collector(void *arg)
{
    (void)arg;
    int efd = fairsem_event_fd(sem);
    if (efd < 0)
        fail("fairsem_event_fd: %s", fairsem_err_name(efd));
    while (!atomic_load(&stop_collecting)) {
        struct pollfd p = {efd, POLLIN, 0};
        poll(&p, 1, 50);
        fairsem_request_t *done[3];
        pthread_rwlock_rdlock(&free_lock);
        size_t n = fairsem_events(sem, done, 3);
        for (size_t i = 0; i < n; i++)
            collect(done[i]);
        pthread_rwlock_unlock(&free_lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int ncollectors = argc > 1 ? atoi(argv[1]) : 1;
    if (ncollectors < 1 || ncollectors > MAX_COLLECTORS)
        fail("usage: tsan_events COLLECTORS (1..%d)", MAX_COLLECTORS);
    fairsem_options_t o = {.max_slots = 1, .max_waiters = 64};
    sem = harness_create("events", &o);
    tenant = harness_register(sem, "events");
    pthread_t starters[STARTERS], collectors[MAX_COLLECTORS];
    for (int c = 0; c < ncollectors; c++)
        harness_start(&collectors[c], collector, NULL);
    for (int s = 0; s < STARTERS; s++)
        harness_start(&starters[s], starter, (void *)(intptr_t)s);
    for (int s = 0; s < STARTERS; s++)
        pthread_join(starters[s], NULL);
    atomic_store(&stop_collecting, 1);
    for (int c = 0; c < ncollectors; c++)
        pthread_join(collectors[c], NULL);
    unsigned waited = 0;
    for (int s = 0; s < STARTERS; s++) {
        for (int k = 0; k < PER_STARTER; k++) {
            struct track *tr = &tracks[s][k];
            waited += atomic_load(&tr->waited);
            if (atomic_load(&tr->waited) && atomic_load(&tr->reported) != 1)
                fail("a request that waited was reported %d times", atomic_load(&tr->reported));
            if (atomic_load(&tr->outcomes) != 1)
                fail("a request had %d outcomes (taken or cancelled), want 1", atomic_load(&tr->outcomes));
        }
    }
    if (waited == 0)
        fail("no request had to wait: the test exercised nothing");
    expect(fairsem_tenant_unregister(tenant, 0), 0, "fairsem_tenant_unregister");
    harness_finish(sem);
    printf("tsan_events, %d collector(s): %u of %d requests waited; %u granted after waiting, %u cancelled\n",
           ncollectors, waited, STARTERS * PER_STARTER, atomic_load(&granted_late), atomic_load(&cancelled));
    return 0;
}
