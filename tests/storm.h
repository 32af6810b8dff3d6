/*
 * storm.h - the kill storm, shared by test_storm.c (fast, ~10 s) and
 * long_storm.c (long label, >= 60 s and >= 3000 kills).
 *
 * STORM_SLOTS slots, STORM_TENANTS tenants, STORM_WORKERS forked worker
 * processes (worker i registers tenant i % STORM_TENANTS; odd workers use the
 * handle inherited from the test process, even ones open the segment
 * themselves).  Each worker loops, choosing at random: fairsem_acquire,
 * fairsem_try_acquire, fairsem_acquire_timeout, an event-loop request that
 * waits on the event fd a random while and then takes the result or cancels,
 * or an event-loop request cancelled (or freed) at once; a slot it gets is
 * held 0-2 ms and released, and it asks again at once.
 *
 * Evidence: a MAP_SHARED|MAP_ANONYMOUS area mapped before any fork, one entry
 * per worker: the slot index it holds (written right after the acquire
 * returns, cleared right before the release, so it is always a subset of
 * what the library says the worker holds) and its tenant.
 *
 * The test process (single-threaded) is the killer and the checker.  About
 * every 10 ms it SIGKILLs a random worker, waits for it, clears its evidence
 * entry (a dead process holds nothing we may count) and forks a fresh worker
 * in its place.  About every 100 ms it checks: it stops every worker
 * (SIGSTOP, then waitpid(WUNTRACED) so each is really stopped: a reading of
 * the 16 entries while workers run could pair one worker's entry from before
 * its release with another's from after its acquire, a false double
 * holder), then asserts from the evidence that live holders never exceed
 * STORM_SLOTS, every index is in range, no index is held by two live
 * workers, and (the frozen library state being a consistent snapshot too)
 * that holders <= slots_in_use and each tenant's evidence holders <= its
 * held count; it samples fairsem_stats for fairness (a tenant holding more
 * than its share while another tenant waits, in 3 consecutive samples, is a
 * violation: a share that shrinks leaves a transient excess, since held
 * slots are not revoked) and then resumes every worker (SIGCONT).  Stopping
 * workers anywhere is itself allowed by the design (a stopped process
 * delays nobody).
 *
 * At the end: workers are told to stop and must exit 0; fairsem_reap,
 * fairsem_check must return 0, every slot is free, no waiter is left, and a
 * fresh process takes all STORM_SLOTS slots.
 *
 * Forked children never call cr_assert: they report through their exit
 * status (and the evidence) and end with _exit.
 */
#ifndef FAIRSEM_TEST_STORM_H
#define FAIRSEM_TEST_STORM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#define STORM_SLOTS 8
#define STORM_TENANTS 4
#define STORM_WORKERS 16
#define STORM_HOLD_MAX_US 2000
#define STORM_CHECK_MS 100
#define STORM_FAIR_STREAK 3

/* Worker exit statuses (0: stopped cleanly). */
enum {
    STORM_EXIT_OK = 0,
    STORM_EXIT_OPEN = 20,
    STORM_EXIT_REGISTER,
    STORM_EXIT_ACQUIRE,
    STORM_EXIT_TRY,
    STORM_EXIT_TIMEOUT,
    STORM_EXIT_START,
    STORM_EXIT_RESULT,
    STORM_EXIT_CANCEL,
    STORM_EXIT_AFTER_CANCEL,
    STORM_EXIT_RELEASE,
    STORM_EXIT_INDEX,
    STORM_EXIT_EVENTFD,
    STORM_EXIT_PARENT,
};

static const char *storm_exit_name(int code)
{
    switch (code) {
    case STORM_EXIT_OPEN: return "open";
    case STORM_EXIT_REGISTER: return "register";
    case STORM_EXIT_ACQUIRE: return "acquire";
    case STORM_EXIT_TRY: return "try_acquire";
    case STORM_EXIT_TIMEOUT: return "acquire_timeout";
    case STORM_EXIT_START: return "request_start";
    case STORM_EXIT_RESULT: return "request_result";
    case STORM_EXIT_CANCEL: return "request_cancel";
    case STORM_EXIT_AFTER_CANCEL: return "request_result after cancel";
    case STORM_EXIT_RELEASE: return "release";
    case STORM_EXIT_INDEX: return "slot index out of range";
    case STORM_EXIT_EVENTFD: return "event_fd";
    case STORM_EXIT_PARENT: return "parent gone";
    default: return "?";
    }
}

enum { STORM_OP_ACQUIRE, STORM_OP_TRY, STORM_OP_TIMEOUT, STORM_OP_EVENT, STORM_OP_CANCEL, STORM_NOPS };

struct storm_entry {
    _Atomic int slot;    /* slot index held, -1 none */
    _Atomic int tenant;  /* tenant number, -1 no worker */
    _Atomic int last_rc; /* the unexpected return code a failing worker saw */
};

struct storm_evidence {
    _Atomic int stop;
    _Atomic long acquisitions;
    _Atomic long by_op[STORM_NOPS];        /* acquisitions per way of asking */
    _Atomic long timeouts, again, cancels; /* calls that got no slot */
    _Atomic long event_waits;              /* event-loop requests waited on */
    struct storm_entry w[STORM_WORKERS];
};

struct storm_result {
    long kills, spawned, acquisitions, checks, samples;
    long over_capacity, double_held, bad_index, over_library, fairness;
    long worker_errors;
    double seconds;
};

/* ------------------------------------------------------------ the state */

static struct {
    char name[FAIRSEM_NAME_MAX + 1];
    fairsem_t *sem;
    struct storm_evidence *ev;
    pid_t pid[STORM_WORKERS];
    pid_t parent;
} g_storm;

static void storm_cleanup(void)
{
    for (int i = 0; i < STORM_WORKERS; i++) {
        if (g_storm.pid[i] > 0) {
            kill(g_storm.pid[i], SIGKILL);
            waitpid(g_storm.pid[i], NULL, 0);
            g_storm.pid[i] = 0;
        }
    }
    if (g_storm.sem)
        fairsem_close(g_storm.sem);
    g_storm.sem = NULL;
    if (g_storm.name[0])
        fairsem_unlink(g_storm.name, FAIRSEM_UNLINK_FORCE);
    g_storm.name[0] = '\0';
    if (g_storm.ev)
        munmap(g_storm.ev, sizeof *g_storm.ev);
    g_storm.ev = NULL;
}

static uint64_t storm_rand(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void storm_sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ the worker */

static int storm_fail(struct storm_entry *me, int code, int rc)
{
    atomic_store(&me->last_rc, rc);
    return code;
}

/* Hold the slot a while, with the evidence set around it, and give it back. */
static int storm_hold(struct storm_evidence *ev, struct storm_entry *me, fairsem_tenant_t *t, fairsem_slot_t s,
                      int op, uint64_t *rng)
{
    unsigned idx = fairsem_slot_index(s);
    if (idx >= STORM_SLOTS)
        return storm_fail(me, STORM_EXIT_INDEX, (int)idx);
    atomic_store(&me->slot, (int)idx);
    atomic_fetch_add(&ev->acquisitions, 1);
    atomic_fetch_add(&ev->by_op[op], 1);
    unsigned us = (unsigned)(storm_rand(rng) % (STORM_HOLD_MAX_US + 1));
    if (us > 100)
        storm_sleep_us(us);
    atomic_store(&me->slot, -1);
    int rc = fairsem_release(t, s);
    return rc ? storm_fail(me, STORM_EXIT_RELEASE, rc) : 0;
}

/* One event-loop request: wait up to 8 ms on the event fd, then take the
 * result if it was granted, else cancel it.  `at_once`: cancel (or just
 * free) without waiting. */
static int storm_event(fairsem_t *sem, fairsem_tenant_t *t, int efd, struct storm_evidence *ev,
                       struct storm_entry *me, bool at_once, uint64_t *rng)
{
    fairsem_request_t *req;
    int rc = fairsem_request_start(t, me, &req);
    if (rc)
        return storm_fail(me, STORM_EXIT_START, rc);
    if (at_once && storm_rand(rng) % 4 == 0) {
        fairsem_request_free(req); /* cancels it, giving back a racing grant */
        atomic_fetch_add(&ev->cancels, 1);
        return 0;
    }
    fairsem_slot_t s = {0};
    rc = -EAGAIN;
    if (!at_once) {
        /* The fd may be readable for an older request's completion (a
         * cancelled one is reported too): poll until this one settles or
         * the deadline passes. */
        atomic_fetch_add(&ev->event_waits, 1);
        uint64_t deadline = test_now_ns() + storm_rand(rng) % 9000000u;
        while ((rc = fairsem_request_result(req, &s)) == -EAGAIN) {
            uint64_t now = test_now_ns();
            if (now >= deadline)
                break;
            struct pollfd p = {efd, POLLIN, 0};
            if (poll(&p, 1, (int)((deadline - now + 999999) / 1000000)) > 0) {
                fairsem_request_t *done[8];
                while (fairsem_events(sem, done, 8) == 8)
                    ;
            }
        }
    }
    if (rc == 0) {
        fairsem_request_free(req);
        return storm_hold(ev, me, t, s, STORM_OP_EVENT, rng);
    }
    if (rc != -EAGAIN) {
        fairsem_request_free(req);
        return storm_fail(me, STORM_EXIT_RESULT, rc);
    }
    rc = fairsem_request_cancel(req);
    if (rc) {
        fairsem_request_free(req);
        return storm_fail(me, STORM_EXIT_CANCEL, rc);
    }
    rc = fairsem_request_result(req, &s);
    fairsem_request_free(req);
    if (rc != -ECANCELED)
        return storm_fail(me, STORM_EXIT_AFTER_CANCEL, rc);
    atomic_fetch_add(&ev->cancels, 1);
    return 0;
}

static int storm_worker(int i, uint64_t seed)
{
    struct storm_evidence *ev = g_storm.ev;
    struct storm_entry *me = &ev->w[i];
    uint64_t rng = seed | 1;
    fairsem_t *sem = NULL;
    fairsem_tenant_t *t;
    char tenant[32];
    int rc;
    if (i % 2) {
        sem = g_storm.sem; /* inherited: attaches on its first call */
    } else if ((rc = fairsem_open(g_storm.name, NULL, &sem)) != 0) {
        return storm_fail(me, STORM_EXIT_OPEN, rc);
    }
    snprintf(tenant, sizeof tenant, "storm-%d", i % STORM_TENANTS);
    if ((rc = fairsem_tenant_register(sem, tenant, 1, &t)) != 0)
        return storm_fail(me, STORM_EXIT_REGISTER, rc);
    int efd = fairsem_event_fd(sem);
    if (efd < 0)
        return storm_fail(me, STORM_EXIT_EVENTFD, efd);
    while (!atomic_load(&ev->stop)) {
        fairsem_slot_t s;
        int op = (int)(storm_rand(&rng) % STORM_NOPS);
        switch (op) {
        case STORM_OP_ACQUIRE:
            if ((rc = fairsem_acquire(t, &s)) != 0)
                return storm_fail(me, STORM_EXIT_ACQUIRE, rc);
            break;
        case STORM_OP_TRY:
            rc = fairsem_try_acquire(t, &s);
            if (rc == -EAGAIN) {
                atomic_fetch_add(&ev->again, 1);
                continue;
            }
            if (rc)
                return storm_fail(me, STORM_EXIT_TRY, rc);
            break;
        case STORM_OP_TIMEOUT:
            rc = fairsem_acquire_timeout(t, storm_rand(&rng) % 3000000u, &s);
            if (rc == -ETIMEDOUT) {
                atomic_fetch_add(&ev->timeouts, 1);
                continue;
            }
            if (rc)
                return storm_fail(me, STORM_EXIT_TIMEOUT, rc);
            break;
        default:
            if ((rc = storm_event(sem, t, efd, ev, me, op == STORM_OP_CANCEL, &rng)) != 0)
                return rc;
            continue;
        }
        if ((rc = storm_hold(ev, me, t, s, op, &rng)) != 0)
            return rc;
    }
    fairsem_close(sem);
    return 0;
}

static pid_t storm_spawn(int i, uint64_t seed)
{
    atomic_store(&g_storm.ev->w[i].slot, -1);
    atomic_store(&g_storm.ev->w[i].tenant, i % STORM_TENANTS);
    atomic_store(&g_storm.ev->w[i].last_rc, 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != g_storm.parent)
            _exit(STORM_EXIT_PARENT);
        _exit(storm_worker(i, seed));
    }
    g_storm.pid[i] = pid;
    return pid;
}

/* ------------------------------------------------------------ the checker */

/* A worker ended by itself: that is an error unless it exited 0 while
 * stopping.  Logs it and counts it. */
static void storm_worker_ended(struct storm_result *r, int i, int status, const char *when)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && atomic_load(&g_storm.ev->stop))
        return;
    r->worker_errors++;
    if (WIFEXITED(status))
        cr_log_error("worker %d (%s) exited %d: %s failed with %s", i, when, WEXITSTATUS(status),
                     storm_exit_name(WEXITSTATUS(status)),
                     fairsem_err_name(atomic_load(&g_storm.ev->w[i].last_rc)));
    else
        cr_log_error("worker %d (%s) died of signal %d", i, when, WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

static void storm_kill_one(struct storm_result *r, int i, uint64_t seed)
{
    pid_t pid = g_storm.pid[i];
    int status;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    g_storm.pid[i] = 0;
    /* It is dead: whatever its entry says, it holds nothing any more. */
    atomic_store(&g_storm.ev->w[i].slot, -1);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        r->kills++;
    else
        storm_worker_ended(r, i, status, "before its kill");
    storm_spawn(i, seed);
    r->spawned++;
}

static int storm_tenant_of(const char *id)
{
    int t;
    char tail;
    if (sscanf(id, "storm-%d%c", &t, &tail) == 1 && t >= 0 && t < STORM_TENANTS)
        return t;
    return -1;
}

/* Stop every worker, check the evidence and sample the stats, resume. */
static void storm_check(struct storm_result *r, int streak[STORM_TENANTS], uint64_t *rng)
{
    for (int i = 0; i < STORM_WORKERS; i++)
        if (g_storm.pid[i] > 0)
            kill(g_storm.pid[i], SIGSTOP);
    for (int i = 0; i < STORM_WORKERS; i++) {
        int status;
        pid_t got;
        if (g_storm.pid[i] <= 0)
            continue;
        while ((got = waitpid(g_storm.pid[i], &status, WUNTRACED)) < 0 && errno == EINTR)
            ;
        if (got == g_storm.pid[i] && !WIFSTOPPED(status)) {
            /* It ended by itself: it holds nothing; replaced after the
             * check (a new worker now would not be frozen). */
            g_storm.pid[i] = 0;
            atomic_store(&g_storm.ev->w[i].slot, -1);
            storm_worker_ended(r, i, status, "found at a check");
        }
    }
    r->checks++;

    /* The evidence, frozen. */
    int holder_of[STORM_SLOTS];
    int per_tenant[STORM_TENANTS] = {0};
    int holders = 0;
    for (int s = 0; s < STORM_SLOTS; s++)
        holder_of[s] = -1;
    for (int i = 0; i < STORM_WORKERS; i++) {
        int s = atomic_load(&g_storm.ev->w[i].slot);
        if (s < 0)
            continue;
        holders++;
        per_tenant[atomic_load(&g_storm.ev->w[i].tenant)]++;
        if (s >= STORM_SLOTS) {
            r->bad_index++;
            cr_log_error("check %ld: worker %d holds slot %d of %d", r->checks, i, s, STORM_SLOTS);
            continue;
        }
        if (holder_of[s] >= 0) {
            r->double_held++;
            cr_log_error("check %ld: slot %d is held by workers %d and %d at once", r->checks, s, holder_of[s], i);
        }
        holder_of[s] = i;
    }
    if (holders > STORM_SLOTS) {
        r->over_capacity++;
        cr_log_error("check %ld: %d live holders for %d slots", r->checks, holders, STORM_SLOTS);
    }

    /* The library's view of the same frozen moment. */
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[16];
    size_t n = 0;
    if (fairsem_stats(g_storm.sem, &st, ts, 16, &n) == 0) {
        r->samples++;
        if (n > 16)
            n = 16;
        if ((unsigned)holders > st.slots_in_use) {
            r->over_library++;
            cr_log_error("check %ld: %d workers hold a slot, the library says %u are in use", r->checks, holders,
                         st.slots_in_use);
        }
        unsigned held[STORM_TENANTS] = {0}, share[STORM_TENANTS] = {0}, waiting[STORM_TENANTS] = {0};
        for (size_t k = 0; k < n; k++) {
            int t = storm_tenant_of(ts[k].id);
            if (t < 0)
                continue;
            held[t] = ts[k].held;
            share[t] = ts[k].share;
            waiting[t] = ts[k].waiting;
        }
        for (int t = 0; t < STORM_TENANTS; t++) {
            if ((unsigned)per_tenant[t] > held[t]) {
                r->over_library++;
                cr_log_error("check %ld: %d workers of tenant %d hold a slot, the library says %u", r->checks,
                             per_tenant[t], t, held[t]);
            }
            bool others_wait = false;
            for (int o = 0; o < STORM_TENANTS; o++)
                others_wait |= o != t && waiting[o] > 0;
            if (held[t] > share[t] && others_wait) {
                if (++streak[t] == STORM_FAIR_STREAK) {
                    r->fairness++;
                    cr_log_error("check %ld: tenant %d holds %u (share %u) while others wait, %d samples running "
                                 "(held/share/waiting: %u/%u/%u %u/%u/%u %u/%u/%u %u/%u/%u)",
                                 r->checks, t, held[t], share[t], STORM_FAIR_STREAK, held[0], share[0], waiting[0],
                                 held[1], share[1], waiting[1], held[2], share[2], waiting[2], held[3], share[3],
                                 waiting[3]);
                }
            } else {
                streak[t] = 0;
            }
        }
    }

    for (int i = 0; i < STORM_WORKERS; i++) {
        if (g_storm.pid[i] > 0) {
            kill(g_storm.pid[i], SIGCONT);
        } else {
            storm_spawn(i, storm_rand(rng));
            r->spawned++;
        }
    }
}

/* Tell the workers to stop and collect them (each must exit 0). */
static void storm_stop(struct storm_result *r)
{
    atomic_store(&g_storm.ev->stop, 1);
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    for (int i = 0; i < STORM_WORKERS; i++) {
        int status;
        pid_t got = 0;
        while ((got = waitpid(g_storm.pid[i], &status, WNOHANG)) == 0 && test_now_ns() < end)
            test_sleep_ms(5);
        if (got == 0) {
            r->worker_errors++;
            cr_log_error("worker %d did not stop", i);
            kill(g_storm.pid[i], SIGKILL);
            waitpid(g_storm.pid[i], &status, 0);
        } else {
            storm_worker_ended(r, i, status, "while stopping");
        }
        g_storm.pid[i] = 0;
        atomic_store(&g_storm.ev->w[i].slot, -1);
    }
}

/* After the storm: reap, check, every slot free, a fresh process takes all. */
static void storm_verify(void)
{
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(g_storm.sem, &rep), 0);
    cr_log_info("final reap: %u procs, %u slots, %u tickets, %u registrations", rep.procs, rep.slots, rep.tickets,
                rep.registrations);
    int bad = fairsem_check(g_storm.sem, NULL, NULL);
    cr_assert_eq(bad, 0, "fairsem_check found violations %#x after the storm", bad);
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(g_storm.sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_available, STORM_SLOTS, "%u of %u slots free after the storm", st.slots_available,
                 STORM_SLOTS);
    cr_assert_eq(st.slots_in_use, 0u);
    cr_assert_eq(st.waiters, 0u, "%u waiters left after the storm", st.waiters);
    cr_assert_eq(st.attached_procs, 1u, "%u process records in use (only the test's should be)",
                 st.attached_procs);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        unsigned got = 0;
        if (fairsem_open(g_storm.name, NULL, &sem) == 0 && fairsem_tenant_register(sem, "storm-0", 1, &t) == 0)
            while (got < STORM_SLOTS && fairsem_try_acquire(t, &s) == 0)
                got++;
        _exit(got == STORM_SLOTS ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a fresh process could not take all %d slots",
              STORM_SLOTS);
}

/*
 * Run the storm on a segment created with `flags` for at least min_ms and at
 * least min_kills kills (giving up at max_ms), then verify.  Fills *r.
 */
static void storm_run(unsigned flags, unsigned min_ms, long min_kills, unsigned max_ms, struct storm_result *r)
{
    memset(r, 0, sizeof *r);
    memset(&g_storm, 0, sizeof g_storm);
    g_storm.parent = getpid();
    test_name(g_storm.name, sizeof g_storm.name, "storm");
    fairsem_options_t o = {.max_slots = STORM_SLOTS, .flags = flags};
    cr_assert_eq(fairsem_create(g_storm.name, &o, &g_storm.sem), 0);
    void *map = mmap(NULL, sizeof *g_storm.ev, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    g_storm.ev = map;
    for (int i = 0; i < STORM_WORKERS; i++) {
        atomic_store(&g_storm.ev->w[i].slot, -1);
        atomic_store(&g_storm.ev->w[i].tenant, -1);
    }

    uint64_t seed = test_now_ns() ^ ((uint64_t)getpid() << 32);
    cr_log_info("storm seed %#llx", (unsigned long long)seed);
    uint64_t rng = seed | 1;
    for (int i = 0; i < STORM_WORKERS; i++)
        cr_assert_gt(storm_spawn(i, storm_rand(&rng)), 0);

    int streak[STORM_TENANTS] = {0};
    uint64_t t0 = test_now_ns(), next_check = t0 + STORM_CHECK_MS * 1000000ull;
    for (;;) {
        uint64_t now = test_now_ns();
        uint64_t ms = (now - t0) / 1000000u;
        if ((ms >= min_ms && r->kills >= min_kills) || ms >= max_ms)
            break;
        storm_sleep_us(5000 + (unsigned)(storm_rand(&rng) % 10001)); /* ~10 ms */
        storm_kill_one(r, (int)(storm_rand(&rng) % STORM_WORKERS), storm_rand(&rng));
        if (test_now_ns() >= next_check) {
            storm_check(r, streak, &rng);
            next_check = test_now_ns() + STORM_CHECK_MS * 1000000ull;
        }
    }
    storm_check(r, streak, &rng);
    r->seconds = (double)(test_now_ns() - t0) / 1e9;
    storm_stop(r);
    r->acquisitions = atomic_load(&g_storm.ev->acquisitions);

    const struct storm_evidence *ev = g_storm.ev;
    char line[2][512];
    snprintf(line[0], sizeof line[0],
             "storm: %.1f s, %ld kills, %ld workers forked, %ld acquisitions (acquire %ld, try %ld, timeout %ld, "
             "event %ld of %ld waited on), %ld EAGAIN, %ld ETIMEDOUT, %ld cancelled requests",
             r->seconds, r->kills, r->spawned + STORM_WORKERS, r->acquisitions, atomic_load(&ev->by_op[0]),
             atomic_load(&ev->by_op[1]), atomic_load(&ev->by_op[2]), atomic_load(&ev->by_op[3]),
             atomic_load(&ev->event_waits), atomic_load(&ev->again), atomic_load(&ev->timeouts),
             atomic_load(&ev->cancels));
    snprintf(line[1], sizeof line[1],
             "storm: %ld checks, %ld stats samples; violations: %ld capacity, %ld double holder, %ld bad index, "
             "%ld evidence beyond library, %ld fairness; %ld worker errors",
             r->checks, r->samples, r->over_capacity, r->double_held, r->bad_index, r->over_library, r->fairness,
             r->worker_errors);
    for (int k = 0; k < 2; k++) {
        cr_log_info("%s", line[k]);
        printf("%s\n", line[k]); /* shown by ctest -V */
    }
    fflush(stdout);

    cr_assert_eq(r->worker_errors, 0, "%ld workers failed (see the log)", r->worker_errors);
    cr_assert_eq(r->over_capacity + r->double_held + r->bad_index, 0, "slot exclusivity violated");
    cr_assert_eq(r->over_library, 0, "workers hold slots the library does not count");
    cr_assert_eq(r->fairness, 0, "%ld fairness violations", r->fairness);
    cr_assert_geq(r->kills, min_kills, "only %ld kills in %.1f s", r->kills, r->seconds);
    cr_assert_gt(r->acquisitions, r->kills, "too few acquisitions (%ld)", r->acquisitions);
    for (int op = 0; op < STORM_OP_CANCEL; op++)
        cr_assert_gt(atomic_load(&ev->by_op[op]), 0, "no acquisition by way %d", op);
    storm_verify();
}

#endif
