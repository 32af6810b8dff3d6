/*
 * test_events.c - the event-loop API (fairsem_request_start, event_fd,
 * fairsem_events, request_result, request_cancel) against grants made by
 * other processes.
 *
 * Forked children never call cr_assert: they report through their exit
 * status and end with _exit.
 */
#define _GNU_SOURCE
#include "common.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ------------------------------------------------------------ housekeeping */

/* What the fini hook must undo if an assertion ends a test early (the
 * processes a test started are tracked by procs.h). */
static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void) { kill_all_unlink(g_seg); }

TestSuite(events, .fini = cleanup, .timeout = 60);

/* ------------------------------------------------------------------ helpers */

static unsigned slots_in_use(fairsem_t *sem)
{
    fairsem_stats_t st;
    return fairsem_stats(sem, &st, NULL, 0, NULL) == 0 ? st.slots_in_use : 9999;
}

/* The segment's event descriptor (fails the test if there is none). */
static int event_fd_of(fairsem_t *sem)
{
    int efd = fairsem_event_fd(sem);
    cr_assert_geq(efd, 0);
    return efd;
}

/* A 1-slot segment named for `what` whose slot the ctl worker *w
 * (tenant "other", tag "w") holds. */
static fairsem_t *seg_held_by_worker(const char *what, struct worker *w)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, what, 1);
    cr_assert(spawn_ctl(w, g_seg, "other", "w"));
    worker_expect(w, 'a', 'A');
    return sem;
}

/* ------------------------------------------------------------------- tests */

/* A queued request is granted by a release in another process: the event
 * descriptor becomes readable, fairsem_events returns the request and
 * fairsem_request_result hands over the slot. */
Test(events, grant_from_other_process_wakes_event_fd)
{
    struct worker w;
    fairsem_t *sem = seg_held_by_worker("ev-grant", &w);
    fairsem_tenant_t *t = tenant_reg(sem, "loop");
    int efd = event_fd_of(sem);
    int marker;
    fairsem_request_t *req;
    fairsem_slot_t s;
    cr_assert_eq(fairsem_request_start(t, &marker, &req), 0);
    cr_assert_eq(fairsem_request_user(req), &marker);
    cr_assert_eq(fairsem_request_result(req, &s), -EAGAIN);
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));
    cr_assert_not(readable_within(efd, 30), "readable before any grant");
    fairsem_request_t *done[4];
    cr_assert_eq(fairsem_events(sem, done, 4), 0u);

    uint64_t t0 = test_now_ns();
    worker_expect(&w, 'r', 'R');
    cr_assert(readable_within(efd, TEST_PATIENCE_MS), "the grant never made the descriptor readable");
    cr_log_info("event fd readable %.2f ms after the other process's release", (double)(test_now_ns() - t0) / 1e6);
    cr_assert_eq(fairsem_events(sem, done, 4), 1u);
    cr_assert_eq(done[0], req);
    cr_assert_eq(fairsem_request_user(done[0]), &marker);
    cr_assert_not(readable_within(efd, 0), "still readable with nothing to collect");
    cr_assert_eq(fairsem_request_result(req, &s), 0);
    cr_assert_eq(fairsem_slot_index(s), 0u);
    cr_assert_eq(fairsem_request_result(req, &s), -EALREADY);
    cr_assert_eq(fairsem_request_cancel(req), -EALREADY);
    cr_assert_eq(slots_in_use(sem), 1u);

    /* The other process cannot have it now; after our release it can. */
    cr_assert_eq(worker_expect(&w, 't', 'E'), -EAGAIN);
    cr_assert_eq(fairsem_release(t, s), 0);
    fairsem_request_free(req);
    worker_expect(&w, 't', 'A');

    kill_all();
    worker_close(&w);
    seg_close_unlink(sem, g_seg);
}

static void *cancel_thread(void *arg) { return (void *)(intptr_t)fairsem_request_cancel(arg); }

/* Cancelled from another thread while queued: -ECANCELED, reported on the
 * descriptor, and no slot is lost. */
Test(events, cancel_from_other_thread_while_queued)
{
    struct worker w;
    fairsem_t *sem = seg_held_by_worker("ev-cancel", &w);
    fairsem_tenant_t *t = tenant_reg(sem, "loop");
    int efd = event_fd_of(sem);
    fairsem_request_t *req;
    fairsem_slot_t s;
    cr_assert_eq(fairsem_request_start(t, NULL, &req), 0);
    cr_assert_eq(fairsem_request_result(req, &s), -EAGAIN);
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));

    pthread_t th;
    void *ret;
    cr_assert_eq(pthread_create(&th, NULL, cancel_thread, req), 0);
    cr_assert_eq(pthread_join(th, &ret), 0);
    cr_assert_eq((int)(intptr_t)ret, 0);
    cr_assert_eq(fairsem_request_result(req, &s), -ECANCELED);
    cr_assert_eq(fairsem_request_cancel(req), 0, "a second cancel is harmless");
    cr_assert(readable_within(efd, TEST_PATIENCE_MS), "the cancel was not reported");
    fairsem_request_t *done[4];
    cr_assert_eq(fairsem_events(sem, done, 4), 1u);
    cr_assert_eq(done[0], req);
    cr_assert(wait_waiters(sem, 0, TEST_PATIENCE_MS), "the cancelled request is still queued");

    /* The holder's release must find nobody to give the slot to. */
    worker_expect(&w, 'r', 'R');
    cr_assert_eq(slots_in_use(sem), 0u, "the slot went to the cancelled request");
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    cr_assert_eq(fairsem_release(t, s), 0);
    cr_assert_eq(fairsem_request_result(req, &s), -ECANCELED);
    fairsem_request_free(req);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);

    kill_all();
    worker_close(&w);
    seg_close_unlink(sem, g_seg);
}

/* Cancels racing grants: another process churns the one slot while this
 * one starts and cancels requests at random moments.  Afterwards every
 * slot is back and nothing is queued. */
struct churn {
    _Atomic int stop;
    _Atomic long rounds;
};

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void spin_us(unsigned us)
{
    uint64_t end = test_now_ns() + us * 1000ull;
    while (test_now_ns() < end)
        ;
}

Test(events, cancel_racing_grants)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ev-race", 1);
    struct churn *ch = mmap(NULL, sizeof *ch, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(ch, MAP_FAILED);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fairsem_tenant_t *c;
        if (fairsem_tenant_register(sem, "churn", 1, &c) != 0)
            _exit(10);
        uint32_t rnd = (uint32_t)getpid();
        while (!atomic_load(&ch->stop)) {
            fairsem_slot_t s;
            if (fairsem_acquire_timeout(c, TEST_PATIENCE_NS, &s) != 0)
                _exit(11);
            spin_us(xorshift(&rnd) % 50);
            if (fairsem_release(c, s) != 0)
                _exit(12);
            atomic_fetch_add(&ch->rounds, 1);
            spin_us(xorshift(&rnd) % 50);
        }
        fairsem_close(sem);
        _exit(0);
    }
    track_pid(pid);

    fairsem_tenant_t *t = tenant_reg(sem, "loop");
    cr_assert_geq(fairsem_event_fd(sem), 0);
    uint32_t rnd = 12345;
    unsigned taken = 0, cancelled = 0, at_once = 0;
    enum { ITER = 2000 };
    for (int i = 0; i < ITER; i++) {
        fairsem_request_t *req;
        fairsem_slot_t s;
        bool have = false;
        cr_assert_eq(fairsem_request_start(t, NULL, &req), 0, "iteration %d", i);
        if (i % 4 == 0) { /* right after start: granted at once, or queued */
            int rc = fairsem_request_result(req, &s);
            cr_assert(rc == 0 || rc == -EAGAIN, "iteration %d: %s", i, fairsem_err_name(rc));
            have = rc == 0;
            at_once += have;
        }
        if (!have)
            spin_us(xorshift(&rnd) % 60);
        if (!have && i % 3 == 0) { /* take it if granted by now */
            int rc = fairsem_request_result(req, &s);
            cr_assert(rc == 0 || rc == -EAGAIN, "iteration %d: %s", i, fairsem_err_name(rc));
            have = rc == 0;
        }
        int rc = fairsem_request_cancel(req);
        if (have) {
            cr_assert_eq(rc, -EALREADY, "iteration %d: cancel of a taken slot gave %s", i, fairsem_err_name(rc));
            cr_assert_eq(fairsem_release(t, s), 0, "iteration %d", i);
            taken++;
        } else {
            cr_assert_eq(rc, 0, "iteration %d: %s", i, fairsem_err_name(rc));
            cr_assert_eq(fairsem_request_result(req, &s), -ECANCELED, "iteration %d", i);
            cancelled++;
        }
        fairsem_request_free(req);
        if (i % 64 == 0) {
            fairsem_request_t *done[64];
            while (fairsem_events(sem, done, 64) > 0)
                ;
        }
    }
    atomic_store(&ch->stop, 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    untrack_pid(pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "the churning process failed at step %d", WEXITSTATUS(status));
    cr_log_info("cancel race: %u cancelled, %u taken (%u at once), %ld grants to the other process", cancelled,
                taken, at_once, (long)atomic_load(&ch->rounds));
    cr_assert_gt(atomic_load(&ch->rounds), 10, "no contention happened");

    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u, "a slot leaked");
    cr_assert_eq(st.waiters, 0u, "a request stayed queued");
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    cr_assert_eq(fairsem_release(t, s), 0);
    munmap(ch, sizeof *ch);
    seg_close_unlink(sem, g_seg);
}

/* A request that can be served at once is: result 0 right after start. */
Test(events, granted_at_once)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ev-once", 2);
    fairsem_tenant_t *t = tenant_reg(sem, "loop");
    int efd = event_fd_of(sem);

    fairsem_request_t *r1, *r2, *r3;
    fairsem_slot_t s1, s2, s3;
    cr_assert_eq(fairsem_request_start(t, NULL, &r1), 0);
    cr_assert_eq(fairsem_request_result(r1, &s1), 0, "not granted at once with slots free");
    cr_assert_eq(fairsem_request_start(t, NULL, &r2), 0);
    cr_assert_eq(fairsem_request_result(r2, &s2), 0);
    cr_assert_neq(fairsem_slot_index(s1), fairsem_slot_index(s2));
    cr_assert_eq(slots_in_use(sem), 2u);

    /* The third waits, and is granted by the release of the first. */
    cr_assert_eq(fairsem_request_start(t, NULL, &r3), 0);
    cr_assert_eq(fairsem_request_result(r3, &s3), -EAGAIN);
    cr_assert_eq(fairsem_release(t, s1), 0);
    cr_assert(readable_within(efd, TEST_PATIENCE_MS));
    fairsem_request_t *done[4];
    size_t n = 0;
    for (int k = 0; k < 10 && n == 0; k++)
        n = fairsem_events(sem, done, 4);
    cr_assert_eq(n, 1u);
    cr_assert_eq(done[0], r3);
    cr_assert_eq(fairsem_request_result(r3, &s3), 0);
    cr_assert_eq(fairsem_slot_index(s3), fairsem_slot_index(s1));

    cr_assert_eq(fairsem_release(t, s2), 0);
    cr_assert_eq(fairsem_release(t, s3), 0);
    cr_assert_eq(fairsem_release(t, s3), FAIRSEM_ESLOT);
    fairsem_request_free(r1);
    fairsem_request_free(r2);
    fairsem_request_free(r3);
    cr_assert_eq(slots_in_use(sem), 0u);
    seg_close_unlink(sem, g_seg);
}

/* Two threads collect completions of one handle at once while the main
 * thread keeps requests queued on a 2-slot pool: every request that had to
 * wait is reported exactly once (a lost completion would strand its slot
 * and stop the run), and every slot comes back. */
struct collector {
    fairsem_t *sem;
    fairsem_tenant_t *t;
    int efd;
    _Atomic unsigned *collected, *outstanding;
    _Atomic int *stop;
    pthread_mutex_t *starting; /* held by the starter until it is done with a
                                  new request (a collector may free it) */
    unsigned twice;            /* requests reported a second time */
};

static void *collector_main(void *arg)
{
    struct collector *c = arg;
    while (!atomic_load(c->stop)) {
        struct pollfd p = {c->efd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        fairsem_request_t *done[8];
        size_t n = fairsem_events(c->sem, done, 8);
        pthread_mutex_lock(c->starting);
        for (size_t k = 0; k < n; k++) {
            _Atomic int *seen = fairsem_request_user(done[k]);
            if (atomic_fetch_add(seen, 1) != 0)
                c->twice++;
            fairsem_slot_t s;
            if (fairsem_request_result(done[k], &s) == 0)
                fairsem_release(c->t, s);
            fairsem_request_free(done[k]);
            atomic_fetch_add(c->collected, 1);
            atomic_fetch_sub(c->outstanding, 1);
        }
        pthread_mutex_unlock(c->starting);
    }
    return NULL;
}

Test(events, two_collectors_lose_nothing, .timeout = 120)
{
    enum { REQUESTS = 4000, IN_FLIGHT = 32 };
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ev-2coll", 2);
    fairsem_tenant_t *t = tenant_reg(sem, "loop");
    static _Atomic int seen[REQUESTS];
    _Atomic unsigned collected = 0, outstanding = 0;
    _Atomic int stop = 0;
    pthread_mutex_t starting = PTHREAD_MUTEX_INITIALIZER;
    struct collector c[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        c[k] = (struct collector){sem, t, event_fd_of(sem), &collected, &outstanding, &stop, &starting, 0};
        cr_assert_eq(pthread_create(&th[k], NULL, collector_main, &c[k]), 0);
    }
    unsigned queued = 0, nheld = 0;
    fairsem_slot_t held[2]; /* granted at once: kept, so later requests queue */
    uint64_t deadline = test_now_ns() + 90ull * 1000 * 1000 * 1000;
    for (int i = 0; i < REQUESTS; i++) {
        atomic_store(&seen[i], 0);
        while (atomic_load(&outstanding) >= IN_FLIGHT && test_now_ns() < deadline)
            sched_yield();
        cr_assert_lt(test_now_ns(), deadline, "completions stopped after %u of %u queued requests",
                     atomic_load(&collected), queued);
        fairsem_request_t *req;
        fairsem_slot_t s;
        pthread_mutex_lock(&starting);
        int rc = fairsem_request_start(t, (void *)&seen[i], &req);
        bool at_once = rc == 0 && fairsem_request_result(req, &s) == 0;
        if (at_once) { /* granted at once: never reported */
            held[nheld++] = s;
            fairsem_request_free(req);
        } else if (rc == 0) {
            queued++;
            atomic_fetch_add(&outstanding, 1);
        }
        pthread_mutex_unlock(&starting);
        cr_assert_eq(rc, 0);
        if (atomic_load(&outstanding) >= IN_FLIGHT / 2) /* let the queue move */
            while (nheld)
                cr_assert_eq(fairsem_release(t, held[--nheld]), 0);
    }
    while (nheld)
        cr_assert_eq(fairsem_release(t, held[--nheld]), 0);
    while (atomic_load(&outstanding) && test_now_ns() < deadline)
        sched_yield();
    atomic_store(&stop, 1);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    cr_assert_eq(atomic_load(&collected), queued, "%u of %u queued requests were never reported",
                 queued - atomic_load(&collected), queued);
    cr_assert_eq(c[0].twice + c[1].twice, 0u, "a request was reported twice");
    cr_log_info("two collectors: %u of %u requests queued, all reported once", queued, (unsigned)REQUESTS);
    cr_assert_gt(queued, REQUESTS / 10, "the pool was too idle for requests to queue (%u)", queued);
    cr_assert_eq(slots_in_use(sem), 0u);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    seg_close_unlink(sem, g_seg);
}
