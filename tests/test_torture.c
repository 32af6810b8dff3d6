/*
 * test_torture.c - kill a process at every crash point of the library and
 * show that nothing is lost: afterwards `check` passes, `reap` restores
 * every slot, and a fresh process can take all of them.
 *
 * Linked against the copy of the library built with crash points
 * (FAIRSEM_CRASHPOINTS): fairsem__crash_arm(n, sig, fd) makes the n-th
 * point a process passes raise `sig`.  For each scenario, a first run
 * traces how many points the scenario passes; then the scenario is re-run
 * once for every point, killed exactly there.
 *
 * Scenarios: idle (register, acquire, release, try, timeout, event-loop
 * request, unregister, detach), waiters queued (the pool is full; the
 * victim times out, cancels, then waits and is granted), mid-reclaim
 * (the victim reaps a dead process's slots, queue entry and registration;
 * also stopped, rather than killed, at each point), and closing (the victim
 * holds the last open registration of a tenant whose closing registration
 * in the test process still holds a slot).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "common.h"
#include "internal.h"

#define SLOTS 3

struct world {
    char name[96];
    fairsem_t *sem; /* the test's own handle */
    fairsem_tenant_t *owner;
    fairsem_slot_t held[SLOTS];
    unsigned nheld;
    pthread_t releaser;
    bool releasing;
    _Atomic bool releaser_started; /* set by the releaser before it blocks */
    fairsem_tenant_t *closing;     /* CLOSING: unregistered, holding closing_slot */
    fairsem_slot_t closing_slot;
    int victim_blocking; /* read end: the victim is about to block */
};

/* Write end of the world's victim_blocking pipe while a victim is to be
 * forked (the test process closes it right after the fork, so the releaser
 * sees end-of-file if the victim dies before it writes). */
static int victim_blocking_fd = -1;

/* ------------------------------------------------------------ scenarios */

static int open_as(const char *name, const char *tenant, fairsem_t **sem, fairsem_tenant_t **t)
{
    int rc = fairsem_open(name, NULL, sem);
    return rc < 0 ? rc : fairsem_tenant_register(*sem, tenant, 0, t);
}

/* Victim body for the idle pool.  Returns 0 when every call behaved. */
static int victim_idle(const char *name)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    fairsem_slot_t a, b;
    fairsem_request_t *req;
    if (open_as(name, "victim", &sem, &t) < 0)
        return 1;
    if (fairsem_acquire(t, &a) || fairsem_try_acquire(t, &b) || fairsem_release(t, a))
        return 2;
    if (fairsem_acquire_timeout(t, 1000000, &a) || fairsem_release(t, a) || fairsem_release(t, b))
        return 3;
    if (fairsem_request_start(t, NULL, &req) || fairsem_request_result(req, &a) || fairsem_release(t, a))
        return 4;
    fairsem_request_free(req);
    if (fairsem_tenant_unregister(t, 0))
        return 5;
    fairsem_close(sem);
    return 0;
}

/* Victim body while the test holds every slot; the test's releaser thread
 * frees one once the victim's last acquire is queued (told by a byte on
 * victim_blocking_fd, then seen in the stats). */
static int victim_waiting(const char *name)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_request_t *req;
    if (open_as(name, "victim", &sem, &t) < 0)
        return 1;
    if (fairsem_try_acquire(t, &s) != -EAGAIN)
        return 2;
    if (fairsem_acquire_timeout(t, 2000000, &s) != -ETIMEDOUT)
        return 3;
    if (fairsem_request_start(t, NULL, &req) || fairsem_request_cancel(req))
        return 4;
    fairsem_request_free(req);
    char c = 0;
    if (write(victim_blocking_fd, &c, 1) != 1)
        return 6;
    if (fairsem_acquire(t, &s) || fairsem_release(t, s))
        return 5;
    fairsem_close(sem);
    return 0;
}

/* Victim body: reclaim what a dead process left.  `alone`: nobody else
 * reclaims it meanwhile, so this call must be the one that finds it. */
static int victim_reaping(const char *name, bool alone)
{
    fairsem_t *sem;
    if (fairsem_open(name, NULL, &sem) < 0)
        return 1;
    fairsem_reap_report_t r;
    if (fairsem_reap(sem, &r) || (alone && r.procs != 1))
        return 2;
    fairsem_close(sem);
    return 0;
}

/* Victim body: open the tenant "shared" and unregister it, leaving it
 * closing (the test's own closing registration holds a slot of it). */
static int victim_closing(const char *name)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    if (open_as(name, "shared", &sem, &t) < 0)
        return 1;
    if (fairsem_tenant_unregister(t, 0))
        return 2;
    fairsem_close(sem);
    return 0;
}

enum scenario { IDLE, WAITING, REAPING, CLOSING };

struct world;
static void take_one(struct world *w);

/* A process that takes two slots and, once the test has taken the third,
 * queues for one more and dies. */
static void leave_a_corpse(struct world *w, const char *name)
{
    int go[2], ready[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        fairsem_request_t *req;
        char c = 0;
        if (open_as(name, "corpse", &sem, &t) == 0 && fairsem_acquire(t, &s) == 0 && fairsem_acquire(t, &s) == 0 &&
            write(ready[1], &c, 1) == 1 && read(go[0], &c, 1) == 1 && fairsem_request_start(t, NULL, &req) == 0 &&
            fairsem_request_result(req, &s) == -EAGAIN)
            raise(SIGKILL);
        _exit(1);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the corpse did not get its slots");
    take_one(w);
    cr_assert_eq(write(go[1], &c, 1), 1);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "the corpse did not queue");
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
}

static void take_one(struct world *w)
{
    cr_assert_eq(fairsem_acquire(w->owner, &w->held[w->nheld]), 0);
    w->nheld++;
}

/* Create flags of the worlds a test builds (0: barging, the default). */
static unsigned world_flags;

/* Free one slot once the victim waits for it in its last acquire; give up
 * (releasing nothing) if the victim dies first.  A barging world releases
 * as soon as it sees the request, so that the request is young and the
 * release rouses the victim, which then grants itself. */
static void *release_later(void *arg)
{
    struct world *w = arg;
    char c;
    atomic_store(&w->releaser_started, true);
    if (read(w->victim_blocking, &c, 1) != 1)
        return NULL;
    for (;;) {
        fairsem_stats_t st;
        if (fairsem_stats(w->sem, &st, NULL, 0, NULL) == 0 && st.waiters == 1)
            break;
        struct pollfd p = {w->victim_blocking, POLLIN, 0};
        if (poll(&p, 1, world_flags & FAIRSEM_STRICT_FIFO ? 1 : 0) == 1) /* end-of-file: the victim died */
            return NULL;
    }
    fairsem_release(w->owner, w->held[--w->nheld]);
    return NULL;
}

/* Wait (up to a minute: a busy machine is slow, not wrong) until sem shows
 * n queued requests. */
static bool wait_queued(fairsem_t *sem, unsigned n)
{
    for (uint64_t end = test_now_ns() + 60000000000ull; test_now_ns() < end; test_sleep_ms(1)) {
        fairsem_stats_t st;
        if (fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.waiters == n)
            return true;
    }
    return false;
}

/* Queue capacity of the worlds a test builds (0: the default). */
static unsigned world_max_waiters;
/* Process records of the worlds a test builds (0: the default). */
static unsigned world_max_procs;

static void world_setup(struct world *w, enum scenario sc)
{
    memset(w, 0, sizeof *w);
    test_name(w->name, sizeof w->name, "torture");
    fairsem_options_t o = {
        .max_slots = SLOTS, .max_waiters = world_max_waiters, .max_procs = world_max_procs, .flags = world_flags};
    cr_assert_eq(fairsem_create(w->name, &o, &w->sem), 0);
    cr_assert_eq(fairsem_tenant_register(w->sem, "owner", 0, &w->owner), 0);
    if (sc == WAITING) {
        for (; w->nheld < SLOTS; w->nheld++)
            cr_assert_eq(fairsem_acquire(w->owner, &w->held[w->nheld]), 0);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        w->victim_blocking = fds[0];
        victim_blocking_fd = fds[1];
        w->releasing = true;
        pthread_create(&w->releaser, NULL, release_later, w);
        /* Fork the victim only once the thread is blocked in read(): a fork
         * while a thread is starting copies the sanitizer allocator's locks
         * held, and the victim's own event thread then hangs on them. */
        while (!atomic_load(&w->releaser_started))
            sched_yield();
    } else if (sc == REAPING) {
        leave_a_corpse(w, w->name);
    } else if (sc == CLOSING) {
        cr_assert_eq(fairsem_tenant_register(w->sem, "shared", 0, &w->closing), 0);
        cr_assert_eq(fairsem_acquire(w->closing, &w->closing_slot), 0);
        cr_assert_eq(fairsem_tenant_unregister(w->closing, 0), 0);
    }
}

/* The pool's counters after the clean run of the scenario being tortured
 * (set by trace()): a run killed anywhere does a part of the same events,
 * so it counts no more grants, timeouts or cancels (a kill loses a count,
 * never adds one). */
static fairsem_counters_t clean_counts;
static bool clean_counted;

static fairsem_counters_t counts_of(fairsem_t *sem)
{
    fairsem_counters_t c;
    if (fairsem_counters(sem, &c, NULL, NULL, 0, NULL) != 0)
        cr_assert_fail("fairsem_counters failed");
    return c;
}

static void check_counts(fairsem_t *sem, const fairsem_counters_t *before, const char *where)
{
    /* Only a failing check reaches Criterion: each passing assertion is a
     * message its worker thread handles, and a fork while that thread is
     * in the sanitizer's allocator leaves the victim a lock nobody frees. */
    fairsem_counters_t c = counts_of(sem);
    const uint64_t *now = (const uint64_t *)&c, *then = (const uint64_t *)before;
    for (size_t k = 0; k < sizeof c / sizeof *now; k++)
        if (now[k] < then[k])
            cr_assert_fail("counter word %zu went down (%llu -> %llu) after a kill at %s", k,
                           (unsigned long long)then[k], (unsigned long long)now[k], where);
    uint64_t waits = 0;
    for (unsigned k = 0; k < FAIRSEM_WAIT_BUCKETS; k++)
        waits += c.wait_buckets[k];
    if (waits != c.grants_waited)
        cr_assert_fail("histogram count != grants_waited after a kill at %s", where);
    if (!clean_counted)
        return;
    if (c.grants_immediate + c.grants_waited > clean_counts.grants_immediate + clean_counts.grants_waited)
        cr_assert_fail("more grants counted than a clean run's after a kill at %s", where);
    if (c.timeouts > clean_counts.timeouts)
        cr_assert_fail("timeouts after a kill at %s", where);
    if (c.cancels > clean_counts.cancels)
        cr_assert_fail("cancels after a kill at %s", where);
}

/* After the victim: reap, check, give back, and let a fresh process take
 * every slot; the counters only went up, and counted nothing twice. */
static void world_verify(struct world *w, const char *where)
{
    fairsem_counters_t before = counts_of(w->sem);
    if (w->releasing) {
        pthread_join(w->releaser, NULL);
        close(w->victim_blocking);
    }
    while (w->nheld)
        cr_assert_eq(fairsem_release(w->owner, w->held[--w->nheld]), 0, "%s", where);
    cr_assert_eq(fairsem_reap(w->sem, NULL), 0);
    int bad = fairsem_check(w->sem, NULL, NULL);
    cr_assert_eq(bad, 0, "check found violations %#x after a kill at %s", bad, where);
    fairsem_stats_t st;
    if (w->closing) {
        /* Nobody has "shared" open any more: its held slot is no demand. */
        fairsem_stats(w->sem, &st, NULL, 0, NULL);
        cr_assert_eq(st.demanding_tenants, 0, "a closing tenant counts as demanding after a kill at %s", where);
        cr_assert_eq(fairsem_release(w->closing, w->closing_slot), 0, "%s", where);
    }
    fairsem_stats(w->sem, &st, NULL, 0, NULL);
    cr_assert_eq(st.slots_available, SLOTS, "%u of %u slots free after a kill at %s", st.slots_available, SLOTS,
                 where);
    cr_assert_eq(st.waiters, 0, "%u waiters left after a kill at %s", st.waiters, where);
    pid_t pid = fork();
    if (pid == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        unsigned got = 0;
        /* The victim's own tenant id: an entry it left half-inserted or
         * half-retired must not block anyone. */
        if (open_as(w->name, "victim", &sem, &t) == 0)
            while (got < SLOTS && fairsem_try_acquire(t, &s) == 0)
                got++;
        _exit(got == SLOTS ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a fresh process could not take all %d slots "
              "after a kill at %s",
              SLOTS, where);
    check_counts(w->sem, &before, where);
    if (!clean_counted && !strcmp(where, "(no kill)"))
        clean_counts = counts_of(w->sem);
    fairsem_close(w->sem);
    fairsem_unlink(w->name, 0);
}

static int run_victim(enum scenario sc, const char *name)
{
    switch (sc) {
    case IDLE: return victim_idle(name);
    case WAITING: return victim_waiting(name);
    case CLOSING: return victim_closing(name);
    default: return victim_reaping(name, world_max_procs == 0); /* else it claims the corpse's record */
    }
}

/* Run the victim armed at point n (0: never); returns its wait status. */
static int victim(enum scenario sc, const char *name, long n, int trace_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        fairsem__crash_arm(n, SIGKILL, trace_fd);
        _exit(run_victim(sc, name));
    }
    if (victim_blocking_fd >= 0) {
        close(victim_blocking_fd);
        victim_blocking_fd = -1;
    }
    int status;
    waitpid(pid, &status, 0);
    return status;
}

/* Names of the points a clean run passes, in order. */
static unsigned trace(enum scenario sc, char names[][48], unsigned cap)
{
    struct world w;
    world_setup(&w, sc);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int status = victim(sc, w.name, 0, fds[1]);
    close(fds[1]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "clean run failed: status %#x", status);
    FILE *in = fdopen(fds[0], "r");
    unsigned n = 0;
    long k;
    char name[48];
    while (fscanf(in, "%ld %47s", &k, name) == 2)
        if (n < cap)
            snprintf(names[n++], sizeof names[0], "%s", name);
    fclose(in);
    world_verify(&w, "(no kill)");
    return n;
}

/* The first of must_pass that names[0..n) lacks, or NULL. */
static const char *missing_point(char names[][48], unsigned n, const char *const *must_pass)
{
    for (const char *const *m = must_pass; *m; m++) {
        bool seen = false;
        for (unsigned k = 0; k < n && !seen; k++)
            seen = !strcmp(names[k], *m);
        if (!seen)
            return *m;
    }
    return NULL;
}

static void torture(enum scenario sc, const char *const *must_pass)
{
    static char names[512][48];
    /* Timing may pick the path of a clean run (barging: a young request
     * is roused and grants itself, an old one is handed its slot): trace
     * again, up to 10 times, until one passes every point it must. */
    unsigned n = 0;
    const char *missing = "";
    for (unsigned tries = 0; tries < 10 && missing; tries++) {
        n = trace(sc, names, 512);
        missing = missing_point(names, n, must_pass);
    }
    cr_assert(!missing, "the scenario never passes crash point %s", missing);
    clean_counted = true;
    unsigned killed = 0;
    for (unsigned k = 1; k <= n; k++) {
        struct world w;
        world_setup(&w, sc);
        int status = victim(sc, w.name, k, -1);
        char where[80];
        snprintf(where, sizeof where, "point %u (%s)", k, names[k - 1]);
        cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "victim failed at %s: status %#x", where, status);
        killed += WIFSIGNALED(status);
        world_verify(&w, where);
    }
    /* Timing may move a few points between runs; nearly all must hit. */
    cr_assert_geq(killed * 10, n * 9, "only %u of %u runs were killed", killed, n);
    cr_log_info("killed at %u of %u crash points", killed, n);
}

Test(torture, idle_pool, .timeout = 120)
{
    static const char *const must[] = {"attach.live",
                                       "register.bit_set",
                                       "tenant.active",
                                       "take.claimed",
                                       "take.committed",
                                       "release.freed",
                                       "unregister.bit_cleared",
                                       "retire.dying",
                                       "detach.scrubbed",
                                       "detach.freed",
                                       NULL};
    torture(IDLE, must);
}

/* The points every WAITING run passes, strict or barging. */
static const char *const waiting_must[] = {"enqueue.owned",
                                           "enqueue.mapped",
                                           "enqueue.published",
                                           "cancel.cancelled",
                                           "free.disowned",
                                           "consume.held",
                                           NULL};

/* With FAIRSEM_STRICT_FIFO: the release hands the slot to the victim. */
Test(torture, waiters_queued, .timeout = 120)
{
    world_flags = FAIRSEM_STRICT_FIFO;
    torture(WAITING, waiting_must);
}

/* The same barging (the default): the release rouses the victim, which
 * clears the mark and grants itself (reserve, commit, grant, claim: crash
 * points of its own), unless its request is already older than the bound,
 * when the release hands the slot over as before.  Timing picks the path
 * of each run; the clean run traced is a roused one, so that the victim's
 * own grant is killed at each of its points, and every run is verified
 * whichever path it took. */
Test(torture, waiters_queued_barging, .timeout = 120)
{
    static const char *const must[] = {"enqueue.owned",
                                       "enqueue.mapped",
                                       "enqueue.published",
                                       "cancel.cancelled",
                                       "free.disowned",
                                       "rouse.cleared",
                                       "grant.reserved",
                                       "grant.committed",
                                       "grant.granted",
                                       "consume.held",
                                       NULL};
    torture(WAITING, must);
}

Test(torture, closing_tenant, .timeout = 120)
{
    static const char *const must[] = {"register.opened", "tenant.closing_settled", "unregister.closed",
                                       "unregister.bit_cleared", NULL};
    torture(CLOSING, must);
}

Test(torture, mid_reclaim, .timeout = 120)
{
    static const char *const must[] = {
        "reap.dead",        "scrub.cell_closed", "scrub.cell_slot_freed", "scrub.cell_emptied", "scrub.cell_taken",
        "scrub.slot_freed", "reap.leased",       "scrub.unregistered",    "reap.freed",         NULL};
    torture(REAPING, must);
}

static void print_violation(void *arg, unsigned kind, const char *text)
{
    (void)arg;
    cr_log_error("check: %#x %s", kind, text);
}

/* A scrubber stopped at any point of reclaiming a dead process (including
 * while it holds the dead record's lease) wedges nobody: while it is
 * stopped, another process gets the dead process's slots, and after a
 * `reap` by that process `check` passes; once the scrubber resumes and
 * finishes, every slot is still held exactly once (the late scrubber frees
 * nothing it should not). */
static void stopped_reaper(void)
{
    static char names[512][48];
    unsigned n = trace(REAPING, names, 512), stopped = 0;
    for (unsigned k = 1; k <= n; k++) {
        struct world w;
        world_setup(&w, REAPING); /* the corpse holds 2 slots and queues; the test holds 1 */
        pid_t pid = fork();
        if (pid == 0) {
            fairsem__crash_arm(k, SIGSTOP, -1);
            _exit(victim_reaping(w.name, false));
        }
        int status;
        waitpid(pid, &status, WUNTRACED);
        if (!WIFSTOPPED(status)) {
            world_verify(&w, names[k - 1]);
            continue;
        }
        stopped++;
        int rc = 0;
        while (rc == 0 && w.nheld < SLOTS)
            if ((rc = fairsem_acquire_timeout(w.owner, 20000000000ull, &w.held[w.nheld])) == 0)
                w.nheld++;
        /* What needs no lease the stopped scrubber holds, anyone finishes. */
        int bad = rc ? 0 : fairsem_reap(w.sem, NULL) ? -1 : fairsem_check(w.sem, print_violation, NULL);
        if (rc || bad) /* never leave a stopped process behind */
            kill(pid, SIGKILL);
        cr_assert_eq(rc, 0, "no slot of the dead process (%s) while its scrubber is stopped at %s",
                     fairsem_strerror(rc), names[k - 1]);
        cr_assert_eq(bad, 0, "check found violations %#x while a scrubber is stopped at %s", bad, names[k - 1]);
        kill(pid, SIGCONT);
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the scrubber stopped at %s failed: %#x",
                  names[k - 1], status);
        fairsem_stats_t st;
        fairsem_stats(w.sem, &st, NULL, 0, NULL);
        cr_assert_eq(st.slots_in_use, SLOTS, "%u of %u slots in use after the scrubber stopped at %s resumed",
                     st.slots_in_use, SLOTS, names[k - 1]);
        world_verify(&w, names[k - 1]); /* releases each held slot: none was freed behind our back */
    }
    cr_assert_geq(stopped * 10, n * 9, "only %u of %u runs stopped", stopped, n);
}

Test(torture, stopped_scrubber, .timeout = 300) { stopped_reaper(); }

/* The same with no free process record: the victim's attach must claim the
 * corpse's record, and a claimer stopped at any point of that (after it
 * took the record's lease, before and after it wrote LIVE) must not keep
 * the dead process's slots from the others. */
Test(torture, stopped_claimer, .timeout = 300)
{
    world_max_procs = 2; /* the test process and the corpse */
    stopped_reaper();
}

/* A process stopped at any crash point never blocks the others: with the
 * victim frozen there, another process still takes and gives back every
 * slot the victim does not hold. */
Test(torture, stopped_anywhere, .timeout = 120)
{
    static char names[512][48];
    unsigned n = trace(IDLE, names, 512);
    for (unsigned k = 1; k <= n; k++) {
        struct world w;
        world_setup(&w, IDLE);
        pid_t pid = fork();
        if (pid == 0) {
            fairsem__crash_arm(k, SIGSTOP, -1);
            _exit(victim_idle(w.name));
        }
        int status;
        waitpid(pid, &status, WUNTRACED);
        if (WIFSTOPPED(status)) {
            /* The stopped victim holds or has claimed at most 2 of the 3
             * slots; its tenant counts as demanding, so the owner's share is
             * 1: the owner must still get it, again and again, without
             * waiting for the victim. */
            for (int round = 0; round < 5; round++) {
                fairsem_slot_t s;
                int rc = fairsem_acquire_timeout(w.owner, 5000000000ull, &s);
                cr_assert_eq(rc, 0, "no slot (%s) while a process is stopped at %s", fairsem_strerror(rc),
                             names[k - 1]);
                cr_assert_eq(fairsem_release(w.owner, s), 0);
            }
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        world_verify(&w, names[k - 1]);
    }
}

/* Eight processes race to create-or-open one name, 200 rounds; in every
 * round one creator is killed while building.  Exactly one usable segment
 * must result each time. */
Test(torture, create_race, .timeout = 120)
{
    for (int round = 0; round < 200; round++) {
        char name[96];
        test_name(name, sizeof name, "race");
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pids[8];
        for (int p = 0; p < 8; p++) {
            pids[p] = fork();
            if (pids[p] == 0) {
                close(fds[0]);
                if (p == 0)
                    fairsem__crash_arm(1, SIGKILL, -1); /* dies at "create.built" */
                fairsem_options_t o = {.max_slots = 4};
                fairsem_t *sem;
                int rc = fairsem_create(name, &o, &sem);
                char created = rc == 0;
                if (rc == -EEXIST)
                    rc = fairsem_open(name, NULL, &sem);
                for (int tries = 0; rc == -ENOENT && tries < 1000; tries++) {
                    rc = fairsem_create(name, &o, &sem);
                    created = rc == 0;
                    if (rc == -EEXIST)
                        rc = fairsem_open(name, NULL, &sem);
                }
                fairsem_stats_t st;
                if (rc == 0 && fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.max_slots == 4) {
                    if (write(fds[1], &created, 1) != 1)
                        _exit(3);
                    _exit(0);
                }
                _exit(2);
            }
        }
        close(fds[1]);
        int ok = 0, killed = 0;
        for (int p = 0; p < 8; p++) {
            int status;
            waitpid(pids[p], &status, 0);
            ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
            killed += WIFSIGNALED(status);
        }
        char c;
        int creators = 0;
        while (read(fds[0], &c, 1) == 1)
            creators += c;
        close(fds[0]);
        fairsem_unlink(name, FAIRSEM_UNLINK_FORCE);
        cr_assert_eq(killed, 1, "round %d: the armed creator was not killed", round);
        cr_assert_eq(ok, 7, "round %d: only %d of 7 processes got a usable segment", round, ok);
        cr_assert_eq(creators, 1, "round %d: %d processes created the segment", round, creators);
    }
}

/* A releaser stopped in the middle of handing its slot to a waiter (slot
 * reserved, cell not yet granted) must not hide that waiter from others:
 * when another slot frees, the waiter gets it.  With no free cell to move
 * to (`resume`: a queue of one), the waiter keeps waiting instead, and is
 * served when the granter resumes and finishes the handoff. */
static void stopped_granter(long point, const char *what, bool resume)
{
    struct world w;
    world_flags = FAIRSEM_STRICT_FIFO; /* barging: the release only rouses the waiter */
    world_setup(&w, IDLE);
    take_one(&w);
    take_one(&w); /* the owner holds 2 of 3 */
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t granter = fork();
    if (granter == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        char c = 0;
        if (open_as(w.name, "granter", &sem, &t) || fairsem_acquire(t, &s) || write(ready[1], &c, 1) != 1 ||
            read(go[0], &c, 1) != 1) /* the waiter has queued */
            _exit(1);
        fairsem__crash_arm(point, SIGSTOP, -1);
        fairsem_release(t, s);
        _exit(0);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    pid_t waiter = fork();
    if (waiter == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        if (open_as(w.name, "waiter", &sem, &t))
            _exit(1);
        /* Long enough that only a waiter nobody serves times out. */
        _exit(fairsem_acquire_timeout(t, 20000000000ull, &s) == 0 ? 0 : 2);
    }
    cr_assert(wait_queued(w.sem, 1), "the waiter did not queue");
    cr_assert_eq(write(go[1], &c, 1), 1);
    int status;
    waitpid(granter, &status, WUNTRACED);
    cr_assert(WIFSTOPPED(status), "the granter did not stop at %s", what);
    cr_assert_eq(fairsem_release(w.owner, w.held[--w.nheld]), 0);
    if (resume) {
        /* Several of the waiter's polls: it cannot move, and must not give
         * up (nor be served) while the granter is stopped. */
        test_sleep_ms(100);
        cr_assert_eq(waitpid(waiter, &status, WNOHANG), 0, "the waiter gave up while the granter was stopped");
        kill(granter, SIGCONT);
    }
    uint64_t t0 = test_now_ns();
    waitpid(waiter, &status, 0);
    double ms = (test_now_ns() - t0) / 1e6;
    kill(granter, SIGKILL);
    waitpid(granter, NULL, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the waiter was not served while the granter was stopped at %s", what);
    cr_log_info("granter stopped at %s: waiter served %.1f ms after another slot freed", what, ms);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    world_verify(&w, what);
}

Test(torture, stopped_granter_after_reserving, .timeout = 60) { stopped_granter(2, "grant.reserved", false); }

Test(torture, stopped_granter_after_committing, .timeout = 60) { stopped_granter(3, "grant.committed", false); }

Test(torture, stopped_granter_with_no_free_cell, .timeout = 60)
{
    world_max_waiters = 1;
    stopped_granter(3, "grant.committed", true);
}

/* A reaper killed between clearing a dead record's opens bits and
 * re-deriving its tenants' closing words (scrub.closed) leaves nothing
 * that names the record, so no probe of a slot or cell would return to it:
 * the pool's prober finishes such DEAD records itself.  Here tenant "t"
 * holds 2 of 6 slots through a registration the test unregistered, and the
 * dead process had "t" open; once the stale mark is re-derived, "t" is no
 * longer demanding and tenant "a" may hold all 4 other slots. */
Test(torture, killed_reaper_leaves_no_stale_closing_mark, .timeout = 300)
{
    for (long k = 1;; k++) {
        char name[96];
        test_name(name, sizeof name, "torture-stale");
        fairsem_options_t o = {.max_slots = 6};
        fairsem_t *sem;
        cr_assert_eq(fairsem_create(name, &o, &sem), 0);
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        pid_t corpse = fork();
        if (corpse == 0) {
            fairsem_t *csem;
            fairsem_tenant_t *ct;
            char c = 1;
            if (open_as(name, "t", &csem, &ct) == 0 && write(ready[1], &c, 1) == 1)
                pause();
            _exit(1);
        }
        char c;
        cr_assert_eq(read(ready[0], &c, 1), 1, "the corpse did not register");
        close(ready[0]);
        close(ready[1]);
        fairsem_tenant_t *closing, *a;
        fairsem_slot_t held[2], got[4];
        cr_assert_eq(fairsem_tenant_register(sem, "t", 0, &closing), 0);
        cr_assert_eq(fairsem_acquire(closing, &held[0]), 0);
        cr_assert_eq(fairsem_acquire(closing, &held[1]), 0);
        cr_assert_eq(fairsem_tenant_unregister(closing, 0), 0); /* "t" stays open in the corpse */
        kill(corpse, SIGKILL);
        waitpid(corpse, NULL, 0);
        int trace_fds[2];
        cr_assert_eq(pipe(trace_fds), 0);
        pid_t reaper = fork();
        if (reaper == 0) {
            close(trace_fds[0]);
            fairsem__crash_arm(k, SIGKILL, trace_fds[1]);
            _exit(victim_reaping(name, false));
        }
        close(trace_fds[1]);
        FILE *in = fdopen(trace_fds[0], "r");
        char last[48] = "";
        long n;
        while (fscanf(in, "%ld %47s", &n, last) == 2)
            ;
        fclose(in);
        int status;
        waitpid(reaper, &status, 0);
        cr_assert(WIFSIGNALED(status), "the reaper never passed scrub.closed (it ended at %s)", last);
        bool there = strcmp(last, "scrub.closed") == 0;
        if (there) {
            cr_assert_eq(fairsem_tenant_register(sem, "a", 0, &a), 0);
            unsigned ngot = 0;
            int rc = 0;
            /* Without a re-derivation "t" counts as demanding: a's share
             * would be 3 of 6 and the 4th acquire would time out. */
            while (rc == 0 && ngot < 4)
                if ((rc = fairsem_acquire_timeout(a, 20000000000ull, &got[ngot])) == 0)
                    ngot++;
            cr_assert_eq(rc, 0, "a got %u of 4 slots (%s): the closing mark stayed stale", ngot,
                         fairsem_strerror(rc));
            for (unsigned i = 0; i < ngot; i++)
                cr_assert_eq(fairsem_release(a, got[i]), 0);
        }
        cr_assert_eq(fairsem_release(closing, held[0]), 0);
        cr_assert_eq(fairsem_release(closing, held[1]), 0);
        fairsem_close(sem);
        fairsem_unlink(name, FAIRSEM_UNLINK_FORCE);
        if (there)
            break;
    }
}
