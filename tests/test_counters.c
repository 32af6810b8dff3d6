/*
 * test_counters.c - the counters of fairsem_counters() move exactly as a
 * scripted run says: immediate and waited grants (with the wait
 * histogram), timeouts, cancels, slots and requests reclaimed from
 * SIGKILLed processes, per-tenant counters that restart with the tenant's
 * entry while the pool's keep going, on read-only handles too, and no
 * increment lost while many threads in many processes hammer one pool.
 *
 * Forked children never call cr_assert: they report through a pipe and
 * their exit status, and end with _exit.
 */
#define _GNU_SOURCE
#include "common.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void) { kill_all_unlink(g_seg); }

TestSuite(counters, .fini = cleanup, .timeout = 120);

#define MS 1000000ull

/* ---------------------------------------------------------------- helpers */

static fairsem_counters_t pool_counters(fairsem_t *sem)
{
    fairsem_counters_t c;
    cr_assert_eq(fairsem_counters(sem, &c, NULL, NULL, 0, NULL), 0);
    return c;
}

/* The counters of tenant id; fails the test if it has no entry. */
static fairsem_tenant_counters_t tenant_counters(fairsem_t *sem, const char *id)
{
    fairsem_counters_t pool;
    fairsem_tenant_counters_t tc[16];
    size_t n = 0;
    cr_assert_eq(fairsem_counters(sem, &pool, NULL, tc, 16, &n), 0);
    for (size_t k = 0; k < n && k < 16; k++)
        if (strcmp(tc[k].id, id) == 0)
            return tc[k];
    cr_assert_fail("tenant %s has no counters", id);
    return tc[0];
}

static uint64_t bucket_sum(const fairsem_counters_t *c)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++)
        n += c->wait_buckets[k];
    return n;
}

/* A thread that acquires (with a timeout if timeout_ns), records when it
 * started and when the call returned, and releases at once if granted. */
struct waiter {
    fairsem_tenant_t *tenant;
    uint64_t timeout_ns;
    int rc;
    uint64_t started_ns, returned_ns;
    pthread_t thread;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    fairsem_slot_t s;
    w->started_ns = test_now_ns();
    w->rc = w->timeout_ns ? fairsem_acquire_timeout(w->tenant, w->timeout_ns, &s) : fairsem_acquire(w->tenant, &s);
    w->returned_ns = test_now_ns();
    if (w->rc == 0)
        fairsem_release(w->tenant, s);
    return NULL;
}

static void waiter_start(struct waiter *w, fairsem_tenant_t *t, uint64_t timeout_ns)
{
    *w = (struct waiter){.tenant = t, .timeout_ns = timeout_ns};
    cr_assert_eq(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

static int waiter_join(struct waiter *w)
{
    pthread_join(w->thread, NULL);
    return w->rc;
}

/* ------------------------------------------------------------ the bounds */

Test(counters, wait_bucket_bounds_are_1_2_5_steps_from_1us_to_100s)
{
    static const uint64_t want[FAIRSEM_WAIT_BUCKETS - 1] = {
        1000ull,       2000ull,        5000ull,        10000ull,       20000ull,
        50000ull,      100000ull,      200000ull,      500000ull,      1000000ull,
        2000000ull,    5000000ull,     10000000ull,    20000000ull,    50000000ull,
        100000000ull,  200000000ull,   500000000ull,   1000000000ull,  2000000000ull,
        5000000000ull, 10000000000ull, 20000000000ull, 50000000000ull, 100000000000ull};
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS - 1; k++)
        cr_assert_eq(fairsem_wait_bucket_bound_ns(k), want[k], "bound %u", k);
    cr_assert_eq(fairsem_wait_bucket_bound_ns(FAIRSEM_WAIT_BUCKETS - 1), UINT64_MAX);
    cr_assert_eq(fairsem_wait_bucket_bound_ns(FAIRSEM_WAIT_BUCKETS), UINT64_MAX);
    cr_assert_eq(fairsem_wait_bucket_bound_ns(~0u), UINT64_MAX);
}

Test(counters, bad_arguments_are_einval)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-inval", 1);
    fairsem_counters_t c;
    size_t n;
    cr_assert_eq(fairsem_counters(NULL, &c, NULL, NULL, 0, NULL), -EINVAL);
    cr_assert_eq(fairsem_counters(sem, NULL, NULL, NULL, 0, NULL), -EINVAL);
    cr_assert_eq(fairsem_counters(sem, &c, NULL, NULL, 1, &n), -EINVAL);
    seg_close_unlink(sem, g_seg);
}

/* ------------------------------------------------------ the scripted run */

/* One slot; tenant "a" holds it while "b" queues behind. */
Test(counters, scripted_run_moves_each_counter_exactly)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-script", 1);
    fairsem_tenant_t *a = tenant_reg(sem, "a"), *b = tenant_reg(sem, "b");
    fairsem_slot_t s;

    /* N immediate grants. */
    enum { N = 5, M = 3, K = 2 };
    for (int k = 0; k < N; k++) {
        cr_assert_eq(fairsem_try_acquire(a, &s), 0);
        cr_assert_eq(fairsem_release(a, s), 0);
    }
    fairsem_counters_t c = pool_counters(sem);
    cr_assert_eq(c.grants_immediate, N);
    cr_assert_eq(c.grants_waited, 0);
    cr_assert_eq(tenant_counters(sem, "a").counters.grants_immediate, N);
    cr_assert_eq(tenant_counters(sem, "b").counters.grants_immediate, 0);

    /* M waited grants: each waits at least as long as "a" holds the slot
     * after seeing it queued, and at most as long as its acquire call. */
    uint64_t least = 0, most = 0;
    for (int k = 0; k < M; k++) {
        cr_assert_eq(fairsem_acquire(a, &s), 0);
        struct waiter w;
        waiter_start(&w, b, 0);
        cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));
        uint64_t queued = test_now_ns();
        test_sleep_ms(20);
        uint64_t freed = test_now_ns();
        cr_assert_eq(fairsem_release(a, s), 0);
        cr_assert_eq(waiter_join(&w), 0);
        least += freed - queued;
        most += w.returned_ns - w.started_ns;
    }
    c = pool_counters(sem);
    cr_assert_eq(c.grants_immediate, N + M);
    cr_assert_eq(c.grants_waited, M);
    cr_assert_eq(bucket_sum(&c), M, "histogram count == grants_waited");
    cr_assert(c.wait_ns >= least && c.wait_ns <= most, "wait_ns %llu outside [%llu, %llu]",
              (unsigned long long)c.wait_ns, (unsigned long long)least, (unsigned long long)most);
    for (unsigned k = 0; fairsem_wait_bucket_bound_ns(k) < 20 * MS; k++)
        cr_assert_eq(c.wait_buckets[k], 0, "no wait of 20 ms or more falls in bucket %u", k);
    fairsem_tenant_counters_t tb = tenant_counters(sem, "b");
    cr_assert_eq(tb.counters.grants_waited, M);
    cr_assert_eq(tb.counters.wait_ns, c.wait_ns);
    cr_assert_eq(memcmp(tb.counters.wait_buckets, c.wait_buckets, sizeof c.wait_buckets), 0);
    cr_assert_eq(tenant_counters(sem, "a").counters.grants_waited, 0);

    /* K timeouts. */
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    for (int k = 0; k < K; k++) {
        fairsem_slot_t never;
        cr_assert_eq(fairsem_acquire_timeout(b, 5 * MS, &never), -ETIMEDOUT);
    }
    /* One cancel through the event-loop API. */
    fairsem_request_t *req;
    fairsem_slot_t got;
    cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
    cr_assert_eq(fairsem_request_result(req, &got), -EAGAIN);
    cr_assert_eq(fairsem_request_cancel(req), 0);
    cr_assert_eq(fairsem_request_cancel(req), 0, "a second cancel counts nothing");
    fairsem_request_free(req);
    /* One more timeout: an event-loop request whose caller's deadline passed. */
    cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
    cr_assert_eq(fairsem_request_expire(req), 0);
    cr_assert_eq(fairsem_request_cancel(req), 0, "ending it again counts nothing");
    fairsem_request_free(req);
    /* One cancel by a forced unregistration (a second registration of "c"
     * keeps its entry, and so its counters, alive). */
    fairsem_tenant_t *c1 = tenant_reg(sem, "c"), *c2 = tenant_reg(sem, "c");
    struct waiter w;
    waiter_start(&w, c1, 0);
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));
    cr_assert_eq(fairsem_tenant_unregister(c1, FAIRSEM_FORCE), 0);
    cr_assert_eq(waiter_join(&w), -ECANCELED);
    cr_assert_eq(fairsem_release(a, s), 0);

    c = pool_counters(sem);
    cr_assert_eq(c.timeouts, K + 1);
    cr_assert_eq(c.cancels, 2);
    cr_assert_eq(c.grants_immediate, N + M + 1);
    cr_assert_eq(c.grants_waited, M);
    cr_assert_eq(c.reclaimed_slots, 0);
    cr_assert_eq(c.reclaimed_requests, 0);
    tb = tenant_counters(sem, "b");
    cr_assert_eq(tb.counters.timeouts, K + 1);
    cr_assert_eq(tb.counters.cancels, 1);
    cr_assert_eq(tenant_counters(sem, "c").counters.cancels, 1);
    cr_assert_eq(tenant_counters(sem, "a").counters.timeouts, 0);
    fairsem_tenant_free(c1);
    fairsem_tenant_free(c2);
    seg_close_unlink(sem, g_seg);
}

/* Holds of 60 ms add at least 60 ms less one tick of the coarse clock
 * (at most 10 ms) to held_ns. */
Test(counters, held_ns_counts_the_time_slots_were_held)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-held", 2);
    fairsem_tenant_t *a = tenant_reg(sem, "a");
    fairsem_slot_t s1, s2;
    cr_assert_eq(fairsem_acquire(a, &s1), 0);
    cr_assert_eq(fairsem_acquire(a, &s2), 0);
    uint64_t t0 = test_now_ns();
    test_sleep_ms(60);
    cr_assert_eq(pool_counters(sem).held_ns, 0, "holds count when they end");
    cr_assert_eq(fairsem_release(a, s1), 0);
    cr_assert_eq(fairsem_release(a, s2), 0);
    uint64_t spent = test_now_ns() - t0;
    uint64_t held = tenant_counters(sem, "a").counters.held_ns;
    cr_assert(held >= 2 * (60 - 10) * MS && held <= 2 * (spent + 10 * MS), "held_ns %llu for two holds of %llu ns",
              (unsigned long long)held, (unsigned long long)spent);
    seg_close_unlink(sem, g_seg);
}

Test(counters, oldest_wait_is_the_age_of_the_oldest_waiting_request)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-oldest", 1);
    fairsem_tenant_t *a = tenant_reg(sem, "a"), *b = tenant_reg(sem, "b");
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(a, &s), 0);
    fairsem_counters_t c;
    uint64_t oldest = 1;
    cr_assert_eq(fairsem_counters(sem, &c, &oldest, NULL, 0, NULL), 0);
    cr_assert_eq(oldest, 0, "nobody waits");
    struct waiter w;
    waiter_start(&w, b, 0);
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));
    test_sleep_ms(30); /* the request queued before wait_waiters saw it */
    fairsem_tenant_counters_t tc[4];
    size_t n = 0;
    cr_assert_eq(fairsem_counters(sem, &c, &oldest, tc, 4, &n), 0);
    uint64_t upper = test_now_ns() - w.started_ns;
    cr_assert_eq(n, 2);
    cr_assert(oldest >= 30 * MS && oldest <= upper, "oldest %llu", (unsigned long long)oldest);
    const fairsem_tenant_counters_t *ta = strcmp(tc[0].id, "a") == 0 ? &tc[0] : &tc[1];
    const fairsem_tenant_counters_t *tb = ta == &tc[0] ? &tc[1] : &tc[0];
    cr_assert_str_eq(tb->id, "b");
    cr_assert_eq(ta->oldest_wait_ns, 0);
    cr_assert(tb->oldest_wait_ns >= 30 * MS && tb->oldest_wait_ns <= upper);
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(waiter_join(&w), 0);
    cr_assert_eq(fairsem_counters(sem, &c, &oldest, NULL, 0, NULL), 0);
    cr_assert_eq(oldest, 0);
    seg_close_unlink(sem, g_seg);
}

/* ------------------------------------------------------------ dead ones */

/* A worker of tenant "dead" holds the only slot and another of tenant
 * "gone" queues behind it; each is SIGKILLed in turn and fairsem_reap takes
 * its request, then its slot, back (one at a time: a reap that freed the
 * slot first would grant it to the dead waiter and take it back from it
 * too, which is a second slot reclaimed).  The test registers both tenants
 * itself, so their entries (and counters) outlive the workers. */
Test(counters, reap_counts_a_killed_waiters_request_and_a_killed_holders_slot)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-reap", 1);
    fairsem_tenant_t *dead = tenant_reg(sem, "dead"), *gone = tenant_reg(sem, "gone");
    struct worker holder, waiter;
    cr_assert(spawn_ctl(&holder, g_seg, "dead", "h"));
    cr_assert(spawn_ctl(&waiter, g_seg, "gone", "w"));
    worker_expect(&holder, 'a', 'A');
    worker_queue(&waiter, sem, 1);
    worker_kill(&waiter); /* first: a live waiter's prober would reap the holder */
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.tickets, 1);
    fairsem_counters_t c = pool_counters(sem);
    cr_assert_eq(c.reclaimed_requests, 1);
    cr_assert_eq(c.reclaimed_slots, 0);
    cr_assert_eq(c.cancels + c.timeouts, 0, "a reclaimed request is not a cancel");
    cr_assert_eq(tenant_counters(sem, "gone").counters.reclaimed_requests, 1);
    cr_assert_eq(tenant_counters(sem, "dead").counters.reclaimed_requests, 0);

    test_sleep_ms(60);
    worker_kill(&holder);
    cr_assert_eq(pool_counters(sem).held_ns, 0, "the hold has not ended yet");
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.slots, 1);
    c = pool_counters(sem);
    cr_assert_eq(c.reclaimed_slots, 1);
    cr_assert_eq(c.reclaimed_requests, 1);
    cr_assert(c.held_ns >= (60 - 10) * MS, "held_ns %llu", (unsigned long long)c.held_ns);
    fairsem_tenant_counters_t td = tenant_counters(sem, "dead"), tg = tenant_counters(sem, "gone");
    cr_assert_eq(td.counters.reclaimed_slots, 1);
    cr_assert_eq(td.counters.held_ns, c.held_ns);
    cr_assert_eq(tg.counters.reclaimed_slots, 0);
    /* A reap with nothing dead counts nothing. */
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    fairsem_counters_t again = pool_counters(sem);
    cr_assert_eq(memcmp(&again, &c, sizeof c), 0);
    fairsem_tenant_free(dead);
    fairsem_tenant_free(gone);
    seg_close_unlink(sem, g_seg);
}

/* A blocked waiter's prober takes the killed holder's slot back; a blocking
 * acquire queues before it probes (only try_acquire probes first), so b's
 * grant is a waited one and is in the histogram. */
Test(counters, prober_counts_the_slot_it_takes_back_from_a_killed_holder)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-probe", 1);
    fairsem_tenant_t *dead = tenant_reg(sem, "dead"), *b = tenant_reg(sem, "b");
    struct worker holder;
    cr_assert(spawn_ctl(&holder, g_seg, "dead", "h"));
    worker_expect(&holder, 'a', 'A');
    worker_kill(&holder);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(b, &s), 0);
    cr_assert_eq(fairsem_release(b, s), 0);
    fairsem_counters_t c = pool_counters(sem);
    cr_assert_eq(c.reclaimed_slots, 1);
    cr_assert_eq(tenant_counters(sem, "dead").counters.reclaimed_slots, 1);
    cr_assert_eq(tenant_counters(sem, "b").counters.reclaimed_slots, 0);
    cr_assert_eq(c.grants_immediate, 1, "the holder's grant");
    cr_assert_eq(c.grants_waited, 1, "b's, after its prober took the slot back");
    cr_assert_eq(bucket_sum(&c), 1, "histogram count == grants_waited");
    cr_assert_eq(tenant_counters(sem, "b").counters.grants_waited, 1);
    fairsem_tenant_free(dead);
    seg_close_unlink(sem, g_seg);
}

/* --------------------------------------------------- tenant incarnations */

Test(counters, tenant_counters_restart_with_its_entry_while_the_pools_go_on)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-reset", 1);
    fairsem_tenant_t *x = tenant_reg(sem, "x");
    fairsem_slot_t s;
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fairsem_acquire(x, &s), 0);
        cr_assert_eq(fairsem_release(x, s), 0);
    }
    cr_assert_eq(fairsem_acquire_timeout(x, 0, &s), 0);
    fairsem_slot_t never;
    fairsem_tenant_t *y = tenant_reg(sem, "y");
    cr_assert_eq(fairsem_acquire_timeout(y, MS, &never), -ETIMEDOUT);
    cr_assert_eq(fairsem_release(x, s), 0);
    cr_assert_eq(tenant_counters(sem, "x").counters.grants_immediate, 4);
    cr_assert_eq(fairsem_tenant_free(x), 0);
    cr_assert_eq(fairsem_tenant_free(y), 0);

    fairsem_counters_t pool;
    size_t n = 9;
    cr_assert_eq(fairsem_counters(sem, &pool, NULL, NULL, 0, &n), 0);
    cr_assert_eq(n, 0, "no entry is left");
    cr_assert_eq(pool.grants_immediate, 4, "a retired entry's counts stay in the pool's");
    cr_assert_eq(pool.timeouts, 1);

    x = tenant_reg(sem, "x");
    y = tenant_reg(sem, "y");
    fairsem_tenant_counters_t tx = tenant_counters(sem, "x"), ty = tenant_counters(sem, "y");
    fairsem_counters_t zero = {0};
    cr_assert_eq(memcmp(&tx.counters, &zero, sizeof zero), 0, "x starts again at 0");
    cr_assert_eq(memcmp(&ty.counters, &zero, sizeof zero), 0, "y starts again at 0");
    cr_assert_eq(fairsem_acquire(x, &s), 0);
    cr_assert_eq(fairsem_release(x, s), 0);
    cr_assert_eq(tenant_counters(sem, "x").counters.grants_immediate, 1);
    pool = pool_counters(sem);
    cr_assert_eq(pool.grants_immediate, 5);
    cr_assert_eq(pool.timeouts, 1);
    seg_close_unlink(sem, g_seg);
}

Test(counters, read_only_handle_reads_them_and_count_may_exceed_cap)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-ro", 2);
    fairsem_tenant_t *t[3] = {tenant_reg(sem, "t0"), tenant_reg(sem, "t1"), tenant_reg(sem, "t2")};
    fairsem_slot_t s;
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fairsem_acquire(t[k], &s), 0);
        cr_assert_eq(fairsem_release(t[k], s), 0);
    }
    fairsem_options_t ro = {.flags = FAIRSEM_READONLY};
    fairsem_t *reader;
    cr_assert_eq(fairsem_open(g_seg, &ro, &reader), 0);
    fairsem_counters_t c;
    fairsem_tenant_counters_t one;
    size_t n = 0;
    uint64_t oldest = 7;
    cr_assert_eq(fairsem_counters(reader, &c, &oldest, &one, 1, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(c.grants_immediate, 3);
    cr_assert_eq(oldest, 0);
    cr_assert_eq(one.counters.grants_immediate, 1);
    cr_assert(strcmp(one.id, "t0") == 0 || strcmp(one.id, "t1") == 0 || strcmp(one.id, "t2") == 0);
    cr_assert_eq(fairsem_counters(reader, &c, NULL, NULL, 0, NULL), 0, "count may be NULL");
    fairsem_close(reader);
    seg_close_unlink(sem, g_seg);
}

/* ---------------------------------------------------------------- hammer */

enum { HAMMER_PROCS = 3, HAMMER_THREADS = 4, HAMMER_ROUNDS = 400, HAMMER_TENANTS = 3 };
static const char *const hammer_ids[HAMMER_TENANTS] = {"h0", "h1", "h2"};

struct hammer_thread {
    fairsem_tenant_t *tenant;
    unsigned idx;
    uint64_t granted, timed_out, failed;
    pthread_t thread;
};

static void *hammer_main(void *arg)
{
    struct hammer_thread *h = arg;
    for (int k = 0; k < HAMMER_ROUNDS; k++) {
        fairsem_slot_t s;
        int rc = k % 4 == 3   ? fairsem_try_acquire(h->tenant, &s)
                 : k % 4 == 2 ? fairsem_acquire_timeout(h->tenant, 20000, &s) /* 20 us: some time out */
                              : fairsem_acquire(h->tenant, &s);
        if (rc == 0) {
            h->granted++;
            sched_yield();
            if (fairsem_release(h->tenant, s) != 0)
                h->failed++;
        } else if (rc == -ETIMEDOUT) {
            h->timed_out++;
        } else if (rc != -EAGAIN) {
            h->failed++;
        }
    }
    return NULL;
}

/* A child's whole run: its grants and its timeouts per tenant, written to
 * `fd`; exit 0, or 1 if anything failed. */
static void hammer_child(const char *seg, int fd)
{
    fairsem_t *sem;
    if (fairsem_open(seg, NULL, &sem) != 0)
        _exit(1);
    struct hammer_thread th[HAMMER_THREADS];
    uint64_t counted[2][HAMMER_TENANTS] = {{0}}, failed = 0; /* grants, timeouts */
    for (unsigned k = 0; k < HAMMER_THREADS; k++) {
        th[k] = (struct hammer_thread){.idx = k % HAMMER_TENANTS};
        if (fairsem_tenant_register(sem, hammer_ids[th[k].idx], 1, &th[k].tenant) != 0 ||
            pthread_create(&th[k].thread, NULL, hammer_main, &th[k]) != 0)
            _exit(1);
    }
    for (unsigned k = 0; k < HAMMER_THREADS; k++) {
        pthread_join(th[k].thread, NULL);
        counted[0][th[k].idx] += th[k].granted;
        counted[1][th[k].idx] += th[k].timed_out;
        failed += th[k].failed;
    }
    fairsem_close(sem);
    _exit(write(fd, counted, sizeof counted) == (ssize_t)sizeof counted && failed == 0 ? 0 : 1);
}

Test(counters, no_increment_is_lost_under_threads_and_processes)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cnt-hammer", 2);
    fairsem_tenant_t *keep[HAMMER_TENANTS]; /* entries outlive the workers */
    for (unsigned t = 0; t < HAMMER_TENANTS; t++)
        keep[t] = tenant_reg(sem, hammer_ids[t]);
    int fds[HAMMER_PROCS][2];
    pid_t pids[HAMMER_PROCS];
    for (int p = 0; p < HAMMER_PROCS; p++) {
        cr_assert_eq(pipe(fds[p]), 0);
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0)
            hammer_child(g_seg, fds[p][1]);
        track_pid(pids[p]);
        close(fds[p][1]);
    }
    uint64_t want[2][HAMMER_TENANTS] = {{0}}, total = 0, timeouts = 0;
    for (int p = 0; p < HAMMER_PROCS; p++) {
        int status = wait_exit(pids[p], TEST_PATIENCE_MS);
        cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed", p);
        uint64_t counted[2][HAMMER_TENANTS];
        cr_assert_eq(read(fds[p][0], counted, sizeof counted), (ssize_t)sizeof counted);
        close(fds[p][0]);
        for (unsigned t = 0; t < HAMMER_TENANTS; t++) {
            want[0][t] += counted[0][t];
            want[1][t] += counted[1][t];
            total += counted[0][t];
            timeouts += counted[1][t];
        }
    }
    fairsem_counters_t c = pool_counters(sem);
    cr_assert_eq(c.grants_immediate + c.grants_waited, total, "pool grants %llu + %llu, workers counted %llu",
                 (unsigned long long)c.grants_immediate, (unsigned long long)c.grants_waited,
                 (unsigned long long)total);
    cr_assert_gt(c.grants_waited, 0, "two slots for twelve threads: some must have waited");
    cr_assert_eq(bucket_sum(&c), c.grants_waited);
    cr_log_info("%llu grants (%llu waited), %llu timeouts", (unsigned long long)total,
                (unsigned long long)c.grants_waited, (unsigned long long)timeouts);
    cr_assert_eq(c.timeouts, timeouts);
    cr_assert_eq(c.cancels, 0);
    cr_assert_eq(c.reclaimed_slots + c.reclaimed_requests, 0);
    for (unsigned t = 0; t < HAMMER_TENANTS; t++) {
        fairsem_tenant_counters_t tc = tenant_counters(sem, hammer_ids[t]);
        cr_assert_eq(tc.counters.grants_immediate + tc.counters.grants_waited, want[0][t], "tenant %s",
                     hammer_ids[t]);
        cr_assert_eq(tc.counters.timeouts, want[1][t], "tenant %s", hammer_ids[t]);
        cr_assert_eq(bucket_sum(&tc.counters), tc.counters.grants_waited);
        fairsem_tenant_free(keep[t]);
    }
    seg_close_unlink(sem, g_seg);
}
