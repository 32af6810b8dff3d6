/*
 * test_barging.c - barging (the default) with real processes: a young waiter is
 * roused, not handed, so a running caller may take the slot first, and the
 * roused waiter is still served (no rouse is lost); a waiter that lost the
 * race once is marked FS_CELL_HANDOFF and handed the next slot; a waiter
 * older than FAIRSEM_HANDOFF_NS, and any event-loop request, is handed its
 * slot; nobody barges past a share.  The decisions themselves are tested on
 * hand-built snapshots in test_policy.c (barging_*).
 */
#define _GNU_SOURCE
#include "common.h"
#include "internal.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void) { kill_all_unlink(g_seg); }

TestSuite(barging, .fini = cleanup, .timeout = 120);

/* Twice the bound, in ms, rounded up: a request queued before such a sleep
 * is older than the bound afterwards, however the machine is loaded. */
#define PAST_THE_BOUND_MS (2 * FAIRSEM_HANDOFF_NS / 1000000u + 1)

static fairsem_t *barging_segment(const char *what, unsigned slots)
{
    fairsem_options_t o = {.max_slots = slots};
    return seg_create_opts(g_seg, sizeof g_seg, what, &o);
}

/* One slot, held by us (tenant A, in *s); worker w of tenant A started. */
static fairsem_tenant_t *one_slot_held(const char *what, fairsem_t **sem, fairsem_slot_t *s, struct worker *w)
{
    *sem = barging_segment(what, 1);
    fairsem_tenant_t *a = tenant_reg_acquire(*sem, "A", s);
    cr_assert(spawn_ctl(w, g_seg, "A", "w"));
    return a;
}

/* End worker w (it holds nothing), then the segment. */
static void finish(fairsem_t *sem, struct worker *w)
{
    worker_close(w);
    cr_assert_eq(wait_exit(w->pid, TEST_PATIENCE_MS), 0);
    seg_close_unlink(sem, g_seg);
}

/* Until the segment shows `waiters` queued requests, without sleeping, so
 * that the request is as young as this machine allows when we go on. */
static void spin_until_waiters(fairsem_t *sem, unsigned waiters)
{
    uint64_t end = test_now_ns() + (uint64_t)TEST_PATIENCE_MS * 1000000u;
    fairsem_stats_t st;
    while (fairsem_stats(sem, &st, NULL, 0, NULL) != 0 || st.waiters != waiters)
        cr_assert_lt(test_now_ns(), end, "the worker did not queue");
}

static void stop(pid_t pid)
{
    int st;
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
}

/* Is some cell WAITING with FS_CELL_HANDOFF set? */
static bool handoff_marked(fairsem_t *sem)
{
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        uint64_t s = atomic_load(&sem->cells[c].state);
        if (fs_cell_kind(s) == FS_CELL_WAITING && fs_cell_handoff(s))
            return true;
    }
    return false;
}

Test(barging, starving_waiter_is_handed_the_slot)
{
    fairsem_t *sem;
    fairsem_slot_t s;
    struct worker w;
    fairsem_tenant_t *a = one_slot_held("barge-starved", &sem, &s, &w);
    worker_queue(&w, sem, 1);
    test_sleep_ms(PAST_THE_BOUND_MS);
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(fairsem_try_acquire(a, &s), -EAGAIN, "a newcomer took the slot of a starving waiter");
    int num;
    cr_assert_eq(reply_of(&w, &num, TEST_PATIENCE_MS), 'A');
    worker_expect(&w, 'r', 'R');
    finish(sem, &w);
}

/* Each round: we hold the only slot, the worker queues, we release and at
 * once try to take the slot back.  A young waiter is only roused, so we may
 * get it (a barge); then we release again, and that release, or the
 * waiter's own look, must serve it.  In even rounds the worker is stopped
 * across our release and barge, so it cannot win the race: its rouse waits
 * for it.  In odd rounds it runs, and may wake, find the slot taken, mark
 * itself for a hand-off and sleep again.  Either way it gets the slot every
 * round; and over enough rounds some barge happens with the worker stopped
 * (with strict FIFO none could: the slot is reserved for it). */
Test(barging, roused_waiter_is_served_after_a_barge)
{
    fairsem_t *sem;
    fairsem_slot_t s;
    struct worker w;
    fairsem_tenant_t *a = one_slot_held("barge-rouse", &sem, &s, &w);
    unsigned barges[2] = {0, 0}, rounds = 0;
    while (rounds < 100 || (rounds < 400 && barges[0] < 10)) {
        bool stopped = rounds++ % 2 == 0;
        send_cmd(&w, 'a');
        spin_until_waiters(sem, 1);
        if (stopped)
            stop(w.pid);
        cr_assert_eq(fairsem_release(a, s), 0);
        int rc = fairsem_try_acquire(a, &s);
        cr_assert(rc == 0 || rc == -EAGAIN, "try_acquire: %d", rc);
        if (rc == 0) {
            barges[!stopped]++;
            cr_assert_eq(fairsem_release(a, s), 0);
        }
        if (stopped)
            cr_assert_eq(kill(w.pid, SIGCONT), 0);
        int num;
        cr_assert_eq(reply_of(&w, &num, TEST_PATIENCE_MS), 'A', "round %u: the roused waiter was not served",
                     rounds);
        worker_expect(&w, 'r', 'R');
        cr_assert_eq(fairsem_acquire(a, &s), 0);
    }
    cr_log_info("%u rounds; barges: %u with the waiter stopped, %u with it running", rounds, barges[0], barges[1]);
    cr_assert_gt(barges[0], 0, "no newcomer ever took a slot ahead of a young waiter");
    cr_assert_eq(fairsem_release(a, s), 0);
    finish(sem, &w);
}

/* The worker queues and is stopped; we release (rousing it) and take the
 * slot back.  Resumed, it looks, finds the slot held and marks itself for
 * a hand-off; our next release hands it the slot directly. */
Test(barging, waiter_that_lost_once_is_handed_the_next_slot)
{
    fairsem_t *sem;
    fairsem_slot_t s;
    struct worker w;
    fairsem_tenant_t *a = one_slot_held("barge-handoff", &sem, &s, &w);
    bool barged = false;
    for (unsigned round = 0; round < 400 && !barged; round++) {
        send_cmd(&w, 'a');
        spin_until_waiters(sem, 1);
        stop(w.pid);
        cr_assert_eq(fairsem_release(a, s), 0);
        barged = fairsem_try_acquire(a, &s) == 0;
        cr_assert_eq(kill(w.pid, SIGCONT), 0);
        if (!barged) { /* it was old enough to be handed the slot */
            int num;
            cr_assert_eq(reply_of(&w, &num, TEST_PATIENCE_MS), 'A');
            worker_expect(&w, 'r', 'R');
            cr_assert_eq(fairsem_acquire(a, &s), 0);
        }
    }
    cr_assert(barged, "no newcomer ever took a slot ahead of a young waiter");
    uint64_t end = test_now_ns() + (uint64_t)TEST_PATIENCE_MS * 1000000u;
    while (!handoff_marked(sem))
        cr_assert_lt(test_now_ns(), end, "the roused waiter that lost did not mark itself");
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(fairsem_try_acquire(a, &s), -EAGAIN, "a newcomer took a slot marked for hand-off");
    int num;
    cr_assert_eq(reply_of(&w, &num, TEST_PATIENCE_MS), 'A');
    worker_expect(&w, 'r', 'R');
    finish(sem, &w);
}

/* An event-loop request is handed its slot at once, however young: its
 * owner's loop may not run for a while, and nothing rouses a loop. */
Test(barging, event_loop_request_is_handed_the_slot)
{
    fairsem_t *sem = barging_segment("barge-loop", 1);
    fairsem_slot_t s;
    fairsem_tenant_t *a = tenant_reg_acquire(sem, "A", &s);
    fairsem_tenant_t *b = tenant_reg(sem, "B");
    fairsem_request_t *req;
    cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
    cr_assert_eq(fairsem_release(a, s), 0);
    cr_assert_eq(fairsem_try_acquire(a, &s), -EAGAIN, "a newcomer took an event-loop request's slot");
    fairsem_slot_t got;
    cr_assert_eq(fairsem_request_result(req, &got), 0);
    cr_assert_eq(fairsem_release(b, got), 0);
    fairsem_request_free(req);
    seg_close_unlink(sem, g_seg);
}

/* The state word of the WAITING or GRANTED cell whose request is the
 * `rank`-th oldest (0: the oldest) of the two queued. */
static uint64_t queued_word(fairsem_t *sem, unsigned rank)
{
    uint64_t best[2] = {0, 0}, seqs[2] = {UINT64_MAX, UINT64_MAX};
    for (uint32_t c = 0; c < sem->geo.max_waiters; c++) {
        uint64_t s = atomic_load(&sem->cells[c].state), seq = atomic_load(&sem->cells[c].seq);
        if (fs_cell_kind(s) != FS_CELL_WAITING && fs_cell_kind(s) != FS_CELL_GRANTED)
            continue;
        unsigned k = seq < seqs[0] ? 0 : seq < seqs[1] ? 1 : 2;
        if (k == 0) {
            seqs[1] = seqs[0];
            best[1] = best[0];
        }
        if (k < 2) {
            seqs[k] = seq;
            best[k] = s;
        }
    }
    return best[rank];
}

/* We hold both slots; workers 1 then 2 queue and are stopped.  We free one
 * slot (rousing worker 1 if it is young), then the other: with worker 1
 * already roused, the second slot must rouse (or hand) worker 2 at once;
 * "already roused" is no reason to wake nobody, since a roused owner takes
 * one slot at most (here it is stopped; it could as well grant itself from
 * a look taken before the second release).  Both workers are stopped, so
 * the words we read after our releases are the releases' own work. */
Test(barging, second_free_slot_reaches_the_second_waiter)
{
    fairsem_t *sem = barging_segment("barge-two", 2);
    fairsem_slot_t s[2];
    fairsem_tenant_t *a = tenant_reg_acquire(sem, "A", &s[0]);
    cr_assert_eq(fairsem_acquire(a, &s[1]), 0);
    struct worker w[2];
    cr_assert(spawn_ctl(&w[0], g_seg, "A", "w1"));
    cr_assert(spawn_ctl(&w[1], g_seg, "A", "w2"));
    unsigned roused_first = 0, rounds = 0;
    while (rounds < 50 || (rounds < 400 && roused_first < 5)) {
        rounds++;
        for (unsigned k = 0; k < 2; k++) {
            send_cmd(&w[k], 'a');
            spin_until_waiters(sem, k + 1);
        }
        stop(w[0].pid);
        stop(w[1].pid);
        cr_assert_eq(fairsem_release(a, s[0]), 0);
        roused_first +=
            fs_cell_kind(queued_word(sem, 0)) == FS_CELL_WAITING && fs_cell_roused(queued_word(sem, 0));
        cr_assert_eq(fairsem_release(a, s[1]), 0);
        uint64_t second = queued_word(sem, 1);
        cr_assert(fs_cell_kind(second) == FS_CELL_GRANTED || fs_cell_roused(second),
                  "round %u: a slot is free and the second waiter was neither roused nor handed it (%#llx)",
                  rounds, (unsigned long long)second);
        for (unsigned k = 0; k < 2; k++)
            cr_assert_eq(kill(w[k].pid, SIGCONT), 0);
        for (unsigned k = 0; k < 2; k++) {
            int num;
            cr_assert_eq(reply_of(&w[k], &num, TEST_PATIENCE_MS), 'A');
            worker_expect(&w[k], 'r', 'R');
        }
        cr_assert_eq(fairsem_acquire(a, &s[0]), 0);
        cr_assert_eq(fairsem_acquire(a, &s[1]), 0);
    }
    cr_log_info("%u rounds, %u with the first waiter roused", rounds, roused_first);
    cr_assert_gt(roused_first, 0, "the first waiter was never young enough to be roused");
    for (unsigned k = 0; k < 2; k++) {
        worker_close(&w[k]);
        cr_assert_eq(wait_exit(w[k].pid, TEST_PATIENCE_MS), 0);
    }
    cr_assert_eq(fairsem_release(a, s[0]), 0);
    cr_assert_eq(fairsem_release(a, s[1]), 0);
    seg_close_unlink(sem, g_seg);
}

/* The rounds of roused_waiter_is_served_after_a_barge with FAIRSEM_STRICT_FIFO: the release hands the slot to
 * the stopped young waiter (its cell is GRANTED when the release returns),
 * so a newcomer never takes it, in any round. */
Test(barging, strict_fifo_hands_a_young_waiter_every_slot)
{
    fairsem_options_t o = {.max_slots = 1, .flags = FAIRSEM_STRICT_FIFO};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "barge-strict", &o);
    fairsem_slot_t s;
    fairsem_tenant_t *a = tenant_reg_acquire(sem, "A", &s);
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "A", "w"));
    for (unsigned round = 0; round < 100; round++) {
        send_cmd(&w, 'a');
        spin_until_waiters(sem, 1);
        stop(w.pid);
        cr_assert_eq(fairsem_release(a, s), 0);
        cr_assert_eq(fs_cell_kind(queued_word(sem, 0)), FS_CELL_GRANTED, "round %u: the release did not hand it",
                     round);
        cr_assert_eq(fairsem_try_acquire(a, &s), -EAGAIN, "round %u: a newcomer took a waiter's slot", round);
        cr_assert_eq(kill(w.pid, SIGCONT), 0);
        int num;
        cr_assert_eq(reply_of(&w, &num, TEST_PATIENCE_MS), 'A');
        worker_expect(&w, 'r', 'R');
        cr_assert_eq(fairsem_acquire(a, &s), 0);
    }
    cr_assert_eq(fairsem_release(a, s), 0);
    finish(sem, &w);
}

/* A holds both slots; B queues, so shares become 1 each, and is stopped.
 * A releases one: whatever B's age (roused if young, handed the slot if
 * old), A, at its share, may not take it back; resumed, B gets it.  B is
 * stopped so that it cannot take the slot before A tries, and the rounds go
 * on until B was young in some, so that the barging path is the one tried. */
Test(barging, no_barge_past_a_share)
{
    fairsem_t *sem = barging_segment("barge-share", 2);
    fairsem_slot_t s1, s2;
    fairsem_tenant_t *a = tenant_reg_acquire(sem, "A", &s1);
    cr_assert_eq(fairsem_acquire(a, &s2), 0);
    struct worker b;
    cr_assert(spawn_ctl(&b, g_seg, "B", "b"));
    unsigned roused = 0, rounds = 0;
    while (rounds < 20 || (rounds < 400 && roused == 0)) {
        rounds++;
        send_cmd(&b, 'a');
        spin_until_waiters(sem, 1);
        stop(b.pid);
        cr_assert_eq(fairsem_release(a, s2), 0);
        uint64_t word = queued_word(sem, 0);
        roused += fs_cell_kind(word) == FS_CELL_WAITING && fs_cell_roused(word);
        cr_assert_eq(fairsem_try_acquire(a, &s2), -EAGAIN, "round %u: A took more than its share", rounds);
        cr_assert_eq(kill(b.pid, SIGCONT), 0);
        int num;
        cr_assert_eq(reply_of(&b, &num, TEST_PATIENCE_MS), 'A');
        cr_assert_eq(fairsem_try_acquire(a, &s2), -EAGAIN);
        worker_expect(&b, 'r', 'R');
        cr_assert_eq(fairsem_acquire(a, &s2), 0);
    }
    cr_log_info("%u rounds, %u with B roused", rounds, roused);
    cr_assert_gt(roused, 0, "B was never young enough to be roused");
    cr_assert_eq(fairsem_release(a, s2), 0);
    cr_assert_eq(fairsem_release(a, s1), 0);
    finish(sem, &b);
}
