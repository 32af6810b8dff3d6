/*
 * test_multiproc.c - many processes on one segment: exec'd prog_worker
 * programs (unrelated processes) and fork children.
 *
 * Forked children never call cr_assert: they report through their exit
 * status (or a pipe) and end with _exit.
 */
#define _GNU_SOURCE
#include "common.h"
#include "evidence.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ------------------------------------------------------------ housekeeping */

/* What the fini hook must undo if an assertion ends a test early. */
static char g_seg[FAIRSEM_NAME_MAX + 1];
static char g_ev[FAIRSEM_NAME_MAX + 1];

static void cleanup(void)
{
    kill_all_unlink(g_seg);
    if (g_ev[0])
        shm_unlink(g_ev);
    g_ev[0] = '\0';
}

TestSuite(multiproc, .fini = cleanup, .timeout = 60);

/* ------------------------------------------------------------- stats helpers */

static unsigned held_of(fairsem_t *sem, const char *id)
{
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[16];
    size_t n = 0;
    if (fairsem_stats(sem, &st, ts, 16, &n) < 0)
        return 9999;
    const fairsem_tenant_stats_t *t = find_tenant(ts, n < 16 ? n : 16, id);
    return t ? t->held : 0;
}

/* ----------------------------------------------------------- loop evidence */

/* Start `prog_worker loop` (tracked) recording into the evidence object ev;
 * it runs until the evidence's stop flag is set, or for 10 s at most. */
static pid_t spawn_loop(const char *seg, const char *tenant, const char *ev, int tidx, unsigned share,
                        unsigned hold_us)
{
    char a_tidx[16], a_share[16], a_hold[16];
    snprintf(a_tidx, sizeof a_tidx, "%d", tidx);
    snprintf(a_share, sizeof a_share, "%u", share);
    snprintf(a_hold, sizeof a_hold, "%u", hold_us);
    pid_t pid = fork();
    if (pid == 0) {
        execl(WORKER_PATH, "prog_worker", "loop", seg, tenant, ev, a_tidx, a_share, a_hold, "10000", (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        track_pid(pid);
    return pid;
}

/* Create the evidence object g_ev (named afresh for `what`). */
static struct pw_evidence *loop_evidence(const char *what)
{
    test_name(g_ev, sizeof g_ev, what);
    struct pw_evidence *ev = evidence_create(g_ev);
    cr_assert_not_null(ev);
    return ev;
}

/* Start n loop workers, worker i of tenant tenants[i % ntenants] (index
 * i % ntenants), and wait until all of them are ready. */
static void spawn_loops(pid_t *pids, int n, struct pw_evidence *ev, const char *const *tenants, int ntenants,
                        unsigned share, unsigned hold_us)
{
    for (int i = 0; i < n; i++) {
        pids[i] = spawn_loop(g_seg, tenants[i % ntenants], g_ev, i % ntenants, share, hold_us);
        cr_assert_gt(pids[i], 0);
    }
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (atomic_load(&ev->ready) < n && atomic_load(&ev->errors) == 0 && test_now_ns() < end)
        test_sleep_ms(1);
    cr_assert_eq(atomic_load(&ev->ready), n, "workers did not all start");
}

/* Stop the loop workers and expect each to exit with status 0. */
static void stop_loops(const pid_t *pids, int n, struct pw_evidence *ev)
{
    atomic_store(&ev->stop, 1);
    for (int i = 0; i < n; i++) {
        int status = wait_exit(pids[i], TEST_PATIENCE_MS);
        cr_assert(status >= 0 && WIFEXITED(status), "worker %d did not end", i);
        cr_assert_eq(WEXITSTATUS(status), 0, "worker %d exit status %d", i, WEXITSTATUS(status));
    }
}

/* Close and unlink the segment and the evidence object. */
static void loop_teardown(fairsem_t *sem, struct pw_evidence *ev)
{
    seg_close_unlink(sem, g_seg);
    munmap(ev, sizeof *ev);
    shm_unlink(g_ev);
    g_ev[0] = '\0';
}

/* ------------------------------------------------------------------- tests */

/* Nine unrelated processes of three tenants hammer a work-conserving
 * segment of 3 slots: never more than 3 holders at once. */
Test(multiproc, holders_never_exceed_max_slots)
{
    fairsem_options_t o = {.max_slots = 3, .flags = FAIRSEM_WORK_CONSERVING};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "mp-max", &o);
    struct pw_evidence *ev = loop_evidence("mp-max-ev");

    static const char *const tenants[3] = {"x", "y", "z"};
    pid_t pids[9];
    /* share limit 3: with work conservation a tenant may take them all */
    spawn_loops(pids, 9, ev, tenants, 3, 3, 300);

    /* Sample until every tenant has been served a few times and two
     * workers overlapped (not for a time: a busy machine runs them slowly). */
    unsigned max_in_use = 0, samples = 0;
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (test_now_ns() < end &&
           (atomic_load(&ev->max_total) < 2 || atomic_load(&ev->acquisitions[0]) <= 10 ||
            atomic_load(&ev->acquisitions[1]) <= 10 || atomic_load(&ev->acquisitions[2]) <= 10)) {
        fairsem_stats_t st;
        cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
        cr_assert_leq(st.slots_in_use, 3u);
        cr_assert_eq(st.slots_in_use + st.slots_available, 3u);
        if (st.slots_in_use > max_in_use)
            max_in_use = st.slots_in_use;
        samples++;
        test_sleep_ms(2);
    }
    stop_loops(pids, 9, ev);
    cr_assert_eq(atomic_load(&ev->errors), 0);
    cr_assert_eq(atomic_load(&ev->over_slots), 0, "more holders than slots");
    cr_assert_leq(atomic_load(&ev->max_total), 3);
    cr_assert_geq(atomic_load(&ev->max_total), 2, "the workers never overlapped");
    for (int t = 0; t < 3; t++)
        cr_assert_gt(atomic_load(&ev->acquisitions[t]), 10, "tenant %d starved", t);
    cr_log_info("max_slots test: %ld/%ld/%ld acquisitions, max concurrent %d, %u samples (max %u)",
                (long)atomic_load(&ev->acquisitions[0]), (long)atomic_load(&ev->acquisitions[1]),
                (long)atomic_load(&ev->acquisitions[2]), atomic_load(&ev->max_total), samples, max_in_use);

    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);
    cr_assert_eq(st.waiters, 0u);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    loop_teardown(sem, ev);
}

/* Two tenants with four processes each, always more of them waiting than
 * holding: each tenant holds at most its share (4 / 2 = 2). */
Test(multiproc, tenant_held_to_share_while_other_waits)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-share", 4);
    struct pw_evidence *ev = loop_evidence("mp-share-ev");

    static const char *const tenants[2] = {"A", "B"};
    pid_t pids[8];
    spawn_loops(pids, 8, ev, tenants, 2, 2, 1000);

    /* Steady state: both tenants waiting, and any excess taken before the
     * second tenant arrived drained (seen in the tags, not waited for). */
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[8];
    size_t n;
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    for (;;) {
        cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
        const fairsem_tenant_stats_t *a = find_tenant(ts, n, "A"), *b = find_tenant(ts, n, "B");
        if (a && b && a->waiting > 0 && b->waiting > 0 && a->held <= 2 && b->held <= 2)
            break;
        cr_assert_lt(test_now_ns(), end, "never saw both tenants waiting at their shares");
        test_sleep_ms(1);
    }
    atomic_store(&ev->check_share, 1);

    /* Sample until enough was seen (not for a time). */
    unsigned samples = 0, checked = 0, violations = 0, max_seen[2] = {0, 0};
    end = test_now_ns() + TEST_PATIENCE_NS;
    while (test_now_ns() < end &&
           (checked <= 50 || atomic_load(&ev->acquisitions[0]) + atomic_load(&ev->acquisitions[1]) <= 200)) {
        cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
        cr_assert_leq(st.slots_in_use, 4u);
        samples++;
        const fairsem_tenant_stats_t *a = find_tenant(ts, n, "A"), *b = find_tenant(ts, n, "B");
        if (a && b && a->waiting > 0 && b->waiting > 0) {
            checked++;
            if (a->share != 2 || b->share != 2 || a->held > 2 || b->held > 2)
                violations++;
            if (a->held > max_seen[0])
                max_seen[0] = a->held;
            if (b->held > max_seen[1])
                max_seen[1] = b->held;
        }
        test_sleep_ms(1);
    }
    stop_loops(pids, 8, ev);
    long acq_a = atomic_load(&ev->acquisitions[0]), acq_b = atomic_load(&ev->acquisitions[1]);
    cr_log_info("share test: acquisitions A %ld B %ld; worker max held A %d B %d; %u/%u samples "
                "checked, stats max held A %u B %u",
                acq_a, acq_b, atomic_load(&ev->max_held[0]), atomic_load(&ev->max_held[1]), checked, samples,
                max_seen[0], max_seen[1]);
    cr_assert_eq(atomic_load(&ev->errors), 0);
    cr_assert_eq(atomic_load(&ev->over_slots), 0);
    cr_assert_eq(atomic_load(&ev->over_share[0]), 0, "tenant A held more than its share");
    cr_assert_eq(atomic_load(&ev->over_share[1]), 0, "tenant B held more than its share");
    cr_assert_leq(atomic_load(&ev->max_held[0]), 2);
    cr_assert_leq(atomic_load(&ev->max_held[1]), 2);
    cr_assert_gt(checked, 10u, "never saw both tenants waiting");
    cr_assert_eq(violations, 0u, "fairsem_stats showed a tenant over its share");
    /* Equal shares and equal holds: neither tenant gets much less. */
    cr_assert_gt(acq_a + acq_b, 100);
    cr_assert_gt(acq_a * 4, acq_a + acq_b, "A got %ld of %ld", acq_a, acq_a + acq_b);
    cr_assert_gt(acq_b * 4, acq_a + acq_b, "B got %ld of %ld", acq_b, acq_a + acq_b);

    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);
    loop_teardown(sem, ev);
}

/* One slot held; waiters of t2, t3, t1 (three processes) queue in that
 * order; they are served in that order. */
Test(multiproc, fifo_across_processes)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-fifo", 1);
    fairsem_slot_t s;
    fairsem_tenant_t *h = tenant_reg_acquire(sem, "holder", &s);

    int order[2];
    cr_assert_eq(pipe2(order, O_CLOEXEC), 0);
    const char *names[3] = {"t2", "t3", "t1"};
    struct worker w[3];
    for (int i = 0; i < 3; i++)
        cr_assert(spawn_ctl_shared(&w[i], g_seg, names[i], names[i], order[0], order[1]), "spawn %s", names[i]);
    close(order[1]);
    for (int i = 0; i < 3; i++) {
        send_cmd(&w[i], 'a');
        cr_assert(wait_waiters(sem, (unsigned)i + 1, TEST_PATIENCE_MS), "%s did not queue", names[i]);
        test_sleep_ms(20);
    }
    cr_assert_not(readable_within(order[0], 0), "a waiter was served while the slot was held");
    cr_assert_eq(fairsem_release(h, s), 0);

    char served[3][16];
    for (int k = 0; k < 3;) {
        char line[128], tag[16], kind;
        int num;
        cr_assert_geq(read_line(order[0], line, sizeof line, TEST_PATIENCE_MS), 0, "waiter %d never served", k);
        cr_assert_eq(sscanf(line, "%15s %c %d", tag, &kind, &num), 3, "bad line '%s'", line);
        if (kind == 'R')
            continue; /* the previous holder's acknowledgement */
        cr_assert_eq(kind, 'A', "'%s'", line);
        cr_assert_eq(num, 0);
        snprintf(served[k], sizeof served[k], "%s", tag);
        for (int i = 0; i < 3; i++)
            if (strcmp(w[i].tag, tag) == 0)
                send_cmd(&w[i], 'r');
        k++;
    }
    cr_log_info("fifo: served %s %s %s", served[0], served[1], served[2]);
    for (int k = 0; k < 3; k++)
        cr_assert_str_eq(served[k], names[k], "position %d: %s instead of %s", k, served[k], names[k]);

    kill_all();
    fairsem_close(sem);
    close(order[0]);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}

/* The seed problem, across processes: A holds all 10 slots (one process)
 * with more A requests queued (two more processes); B arrives (another
 * process) and gets the next slot released; A is then held to 5. */
Test(multiproc, problem_scenario_across_processes)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-problem", 10);

    struct worker a, a2, a3, b;
    cr_assert(spawn_ctl(&a, g_seg, "A", "a"));
    cr_assert(spawn_ctl(&a2, g_seg, "A", "a2"));
    cr_assert(spawn_ctl(&a3, g_seg, "A", "a3"));
    cr_assert(spawn_ctl(&b, g_seg, "B", "b"));
    int num;
    for (int i = 0; i < 10; i++) {
        send_cmd(&a, 'a');
        cr_assert_eq(reply_of(&a, &num, TEST_PATIENCE_MS), 'A', "A's acquire %d", i);
    }
    cr_assert_eq(held_of(sem, "A"), 10u);
    worker_queue(&a2, sem, 1);
    worker_queue(&a3, sem, 2);
    worker_queue(&b, sem, 3);

    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[8];
    size_t n;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
    const fairsem_tenant_stats_t *ta = find_tenant(ts, n, "A"), *tb = find_tenant(ts, n, "B");
    cr_assert(ta && tb);
    cr_assert_eq(ta->held, 10u);
    cr_assert_eq(ta->waiting, 2u);
    cr_assert_eq(tb->waiting, 1u);
    cr_assert_eq(ta->share, 5u);
    cr_assert_eq(tb->share, 5u);
    cr_assert_eq(st.demanding_tenants, 2u);

    /* The next release goes to B, though A's requests are older. */
    worker_expect(&a, 'r', 'R');
    cr_assert_eq(reply_of(&b, &num, TEST_PATIENCE_MS), 'A', "B was not served by the first release");
    cr_assert_not(readable_within(a2.out, 50), "A's waiter was served over B");
    cr_assert_not(readable_within(a3.out, 0), "A's waiter was served over B");
    cr_assert_eq(held_of(sem, "A"), 9u);
    cr_assert_eq(held_of(sem, "B"), 1u);

    /* A goes down to 5; its waiters are not served while it is at 5 or more. */
    for (int i = 0; i < 4; i++) {
        worker_expect(&a, 'r', 'R');
    }
    cr_assert_not(readable_within(a2.out, 50), "A served above its share");
    cr_assert_not(readable_within(a3.out, 0), "A served above its share");
    cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
    ta = find_tenant(ts, n, "A");
    cr_assert(ta);
    cr_assert_eq(ta->held, 5u);
    cr_assert_eq(st.slots_in_use, 6u);
    cr_assert_eq(st.waiters, 2u);

    /* Below 5: the oldest A waiter gets one, and A is back at exactly 5. */
    worker_expect(&a, 'r', 'R');
    cr_assert_eq(reply_of(&a2, &num, TEST_PATIENCE_MS), 'A', "A's oldest waiter not served under share");
    cr_assert_not(readable_within(a3.out, 50), "A's second waiter served above share");
    cr_assert_eq(held_of(sem, "A"), 5u);
    cr_assert_eq(held_of(sem, "B"), 1u);

    kill_all();
    seg_close_unlink(sem, g_seg);
}

/* Exit codes of the fork children below. */
enum {
    CHILD_OK = 0,
    CHILD_STATS = 10,
    CHILD_SEES,
    CHILD_RELEASE,
    CHILD_STILL,
    CHILD_ACQUIRE,
    CHILD_REGS,
    CHILD_OWN_RELEASE,
    CHILD_AGAIN
};

static void child_setup(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); }

/* Track the fork child pid and expect it to exit CHILD_OK within 5 s. */
static void child_wait_ok(pid_t pid)
{
    track_pid(pid);
    int status = wait_exit(pid, TEST_PATIENCE_MS);
    cr_assert(status >= 0 && WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), CHILD_OK, "child failed at step %d", WEXITSTATUS(status));
}

/* A fork child holds nothing of its parent's: the parent's slot shows as
 * in use but releasing it from the child is FAIRSEM_ESLOT, and the child's
 * end leaves the parent's slot alone. */
Test(multiproc, fork_child_holds_nothing)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-fork1", 2);
    fairsem_slot_t s;
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "fk", &s);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_setup();
        fairsem_stats_t st;
        if (fairsem_stats(sem, &st, NULL, 0, NULL) < 0)
            _exit(CHILD_STATS);
        if (st.slots_in_use != 1)
            _exit(CHILD_SEES);
        if (fairsem_release(t, s) != FAIRSEM_ESLOT)
            _exit(CHILD_RELEASE);
        if (fairsem_stats(sem, &st, NULL, 0, NULL) < 0 || st.slots_in_use != 1)
            _exit(CHILD_STILL);
        fairsem_close(sem); /* scrubs the child's record: must spare the parent's slot */
        _exit(CHILD_OK);
    }
    child_wait_ok(pid);

    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.slots, 0u, "reaping took a slot");
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u, "the parent's slot went away with the child");
    cr_assert_eq(fairsem_release(t, s), 0);
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);
    seg_close_unlink(sem, g_seg);
}

/* A fork child acquires at once through the tenant handle it inherited
 * (re-registered for it), and releases what it took. */
Test(multiproc, fork_child_uses_inherited_tenant_at_once)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-fork2", 2);
    fairsem_slot_t s;
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "fk", &s);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_setup();
        fairsem_slot_t cs, extra;
        if (fairsem_try_acquire(t, &cs) != 0) /* a try: it cannot wait */
            _exit(CHILD_ACQUIRE);
        fairsem_stats_t st;
        fairsem_tenant_stats_t ts[4];
        size_t n;
        if (fairsem_stats(sem, &st, ts, 4, &n) < 0 || n != 1)
            _exit(CHILD_STATS);
        if (st.slots_in_use != 2 || ts[0].held != 2)
            _exit(CHILD_SEES);
        if (ts[0].registrations != 2)
            _exit(CHILD_REGS);
        if (fairsem_try_acquire(t, &extra) != -EAGAIN) /* both taken now */
            _exit(CHILD_AGAIN);
        if (fairsem_release(t, s) != FAIRSEM_ESLOT) /* the parent's */
            _exit(CHILD_RELEASE);
        if (fairsem_release(t, cs) != 0)
            _exit(CHILD_OWN_RELEASE);
        fairsem_close(sem);
        _exit(CHILD_OK);
    }
    child_wait_ok(pid);

    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[4];
    size_t n;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 4, &n), 0);
    cr_assert_eq(st.slots_in_use, 1u);
    cr_assert_eq(n, 1u);
    cr_assert_eq(ts[0].registrations, 1u, "the child's registration outlived it");
    cr_assert_eq(fairsem_release(t, s), 0);
    seg_close_unlink(sem, g_seg);
}

/* A fork child that frees, cancels or force-unregisters what it inherited
 * touches only its own memory: the parent's queued request stays queued
 * and is granted to the parent. */
Test(multiproc, fork_child_leaves_parent_requests_alone)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "mp-fork3", 1);
    fairsem_tenant_t *holder, *asker;
    cr_assert_eq(fairsem_tenant_register(sem, "holder", 1, &holder), 0);
    cr_assert_eq(fairsem_tenant_register(sem, "asker", 1, &asker), 0);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(holder, &s), 0);
    fairsem_request_t *req;
    cr_assert_eq(fairsem_request_start(asker, NULL, &req), 0);
    fairsem_slot_t got;
    cr_assert_eq(fairsem_request_result(req, &got), -EAGAIN);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_setup();
        if (fairsem_request_result(req, &got) != -ECANCELED)
            _exit(CHILD_SEES);
        if (fairsem_request_cancel(req) != 0)
            _exit(CHILD_RELEASE);
        fairsem_request_free(req);
        if (fairsem_tenant_unregister(asker, FAIRSEM_FORCE) != 0)
            _exit(CHILD_STILL);
        _exit(CHILD_OK);
    }
    child_wait_ok(pid);

    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.waiters, 1u, "the child's calls dropped the parent's request");
    cr_assert_eq(fairsem_release(holder, s), 0);
    int rc = -EAGAIN;
    for (uint64_t end = test_now_ns() + TEST_PATIENCE_NS; rc == -EAGAIN && test_now_ns() < end;) {
        rc = fairsem_request_result(req, &got);
        if (rc == -EAGAIN)
            test_sleep_ms(5);
    }
    cr_assert_eq(rc, 0, "the parent's request was not granted: %s", fairsem_strerror(rc));
    cr_assert_eq(fairsem_release(asker, got), 0);
    fairsem_request_free(req);
    seg_close_unlink(sem, g_seg);
}

/* fairsem_open_anonymous: the segment is shared with children forked after
 * it; four of them (two through the inherited tenant handle, two through
 * their own registrations) never hold more than max_slots together. */
struct anon_evidence {
    _Atomic int total, max_total, over, started;
};

Test(multiproc, anonymous_segment_shared_with_children)
{
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem;
    cr_assert_eq(fairsem_open_anonymous(&o, &sem), 0);
    fairsem_tenant_t *t = tenant_reg(sem, "anon");
    struct anon_evidence *ev = mmap(NULL, sizeof *ev, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(ev, MAP_FAILED);

    /* Parent holds one slot while the children start: they must see it. */
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire(t, &s), 0);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            child_setup();
            fairsem_tenant_t *mine = t;
            if (i >= 2) {
                char id[16];
                snprintf(id, sizeof id, "kid%d", i);
                if (fairsem_tenant_register(sem, id, 1, &mine) != 0)
                    _exit(CHILD_REGS);
            }
            fairsem_stats_t st;
            if (fairsem_stats(sem, &st, NULL, 0, NULL) < 0)
                _exit(CHILD_STATS);
            if (st.slots_in_use < 1) /* the parent's slot, at least */
                _exit(CHILD_SEES);
            atomic_fetch_add(&ev->started, 1);
            for (int k = 0; k < 150; k++) {
                fairsem_slot_t cs;
                if (fairsem_acquire_timeout(mine, TEST_PATIENCE_NS, &cs) != 0)
                    _exit(CHILD_ACQUIRE);
                int v = atomic_fetch_add(&ev->total, 1) + 1;
                int m = atomic_load(&ev->max_total);
                while (v > m && !atomic_compare_exchange_weak(&ev->max_total, &m, v))
                    ;
                if (v > 2)
                    atomic_fetch_add(&ev->over, 1);
                usleep(100);
                atomic_fetch_sub(&ev->total, 1);
                if (fairsem_release(mine, cs) != 0)
                    _exit(CHILD_OWN_RELEASE);
            }
            fairsem_close(sem);
            _exit(CHILD_OK);
        }
        track_pid(pids[i]);
    }
    /* Let them start against the parent's slot, then hand it back. */
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (atomic_load(&ev->started) < 4 && test_now_ns() < end)
        test_sleep_ms(1);
    atomic_fetch_add(&ev->total, 1); /* the parent counts as a holder too */
    test_sleep_ms(20);
    atomic_fetch_sub(&ev->total, 1);
    cr_assert_eq(fairsem_release(t, s), 0);
    for (int i = 0; i < 4; i++) {
        int status = wait_exit(pids[i], TEST_PATIENCE_MS);
        cr_assert(status >= 0 && WIFEXITED(status), "child %d did not end", i);
        cr_assert_eq(WEXITSTATUS(status), CHILD_OK, "child %d failed at step %d", i, WEXITSTATUS(status));
    }
    cr_assert_eq(atomic_load(&ev->over), 0, "more holders than slots");
    cr_assert_leq(atomic_load(&ev->max_total), 2);
    cr_assert_geq(atomic_load(&ev->max_total), 1);

    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);
    cr_assert_eq(st.waiters, 0u);
    fairsem_slot_t a, b;
    cr_assert_eq(fairsem_try_acquire(t, &a), 0);
    cr_assert_eq(fairsem_try_acquire(t, &b), 0);
    cr_assert_eq(fairsem_release(t, a), 0);
    cr_assert_eq(fairsem_release(t, b), 0);
    munmap(ev, sizeof *ev);
    fairsem_close(sem);
}

/* A process that dies with the last open registration of a tenant turns
 * it closing when it is reaped, and fairsem_reap serves whoever the grown
 * shares let in before it returns (5 slots: the closing tenant's 2 no
 * longer count, so A's share grows from 2 to 5).  Strict FIFO, so that
 * serving is a hand-off, done when the reap returns (barging would only
 * rouse the waiter, which then takes the slot itself). */
Test(multiproc, reaping_the_last_open_registration_serves_the_grown_share)
{
    fairsem_options_t o = {.max_slots = 5, .flags = FAIRSEM_STRICT_FIFO};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "mp-reapclose", &o);
    struct worker open_t, a;
    cr_assert(spawn_ctl(&open_t, g_seg, "t", "t"), "spawn the holder of t's open registration");
    fairsem_tenant_t *t = tenant_reg(sem, "t");
    fairsem_slot_t st[2];
    cr_assert_eq(fairsem_acquire(t, &st[0]), 0);
    cr_assert_eq(fairsem_acquire(t, &st[1]), 0);
    cr_assert_eq(fairsem_tenant_unregister(t, 0), 0); /* "t" stays open in the worker */
    cr_assert(spawn_ctl(&a, g_seg, "a", "a"), "spawn a");
    worker_expect(&a, 'a', 'A');
    worker_expect(&a, 'a', 'A'); /* a at its share of 2 */
    worker_queue(&a, sem, 1);
    worker_kill(&open_t);
    fairsem_reap_report_t r;
    cr_assert_eq(fairsem_reap(sem, &r), 0);
    cr_assert_eq(r.procs, 1u);
    fairsem_stats_t s;
    cr_assert_eq(fairsem_stats(sem, &s, NULL, 0, NULL), 0);
    cr_assert_eq(s.waiters, 0u, "the reap did not serve a's waiter");
    cr_assert_eq(s.demanding_tenants, 1u, "the closing tenant still counts");
    int num = 0;
    cr_assert_eq(reply_of(&a, &num, TEST_PATIENCE_MS), 'A');
    cr_assert_eq(fairsem_release(t, st[0]), 0);
    cr_assert_eq(fairsem_release(t, st[1]), 0);
    worker_kill(&a);
    seg_close_unlink(sem, g_seg);
}
