/*
 * test_idle.c - blocked waiters cost (almost) nothing while nothing
 * happens, and a stopped or killed prober does not stop recovery.
 *
 * The cost is counted in wake-ups, not CPU time: every voluntary context
 * switch of every thread of the waiter processes (/proc/.../status).  A
 * waiter that sleeps cannot be woken more often by a busy machine, only
 * less, so the bound cannot flake under load; before the elected prober,
 * each of the 100 waiters here woke every 10 ms (about 30,000 wake-ups in
 * the 3 s window), now only the prober does (about 300), one thread per
 * process once a second, and everyone else not at all.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "common.h"
#include "internal.h"

#define PROCS 4
#define SYNC_PER_PROC 12
#define ASYNC_PER_PROC 13
#define WAITERS (PROCS * (SYNC_PER_PROC + ASYNC_PER_PROC))

static void *blocked_acquire(void *arg)
{
    fairsem_slot_t s;
    fairsem_acquire(arg, &s);
    return NULL;
}

/* A waiter process: sync threads in fairsem_acquire and event-loop
 * requests, then a poll loop on the event descriptor.  Never returns. */
static void waiter_process(const char *name, int idx, int ready)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    char tenant[32];
    snprintf(tenant, sizeof tenant, "waiters-%d", idx);
    if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, tenant, 0, &t))
        _exit(2);
    for (int k = 0; k < SYNC_PER_PROC; k++) {
        pthread_t th;
        if (pthread_create(&th, NULL, blocked_acquire, t))
            _exit(2);
    }
    int efd = fairsem_event_fd(sem);
    for (int k = 0; k < ASYNC_PER_PROC; k++) {
        fairsem_request_t *req;
        if (efd < 0 || fairsem_request_start(t, NULL, &req))
            _exit(2);
    }
    char c = 1;
    if (write(ready, &c, 1) != 1)
        _exit(2);
    for (;;) {
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        poll(&pfd, 1, -1);
    }
}

/* Voluntary context switches of every thread of process pid so far. */
static unsigned long wakeups(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    unsigned long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char status[320], line[128];
        snprintf(status, sizeof status, "/proc/%d/task/%s/status", (int)pid, e->d_name);
        FILE *f = fopen(status, "r");
        unsigned long n;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1)
                sum += n;
        if (f)
            fclose(f);
    }
    closedir(d);
    return sum;
}

static bool wait_queued(fairsem_t *sem, unsigned n)
{
    fairsem_stats_t st;
    for (int tries = 0; tries < 6000; tries++) {
        if (fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.waiters >= n)
            return true;
        test_sleep_ms(10);
    }
    return false;
}

Test(idle, blocked_waiters_sleep, .timeout = 180)
{
    char name[96];
    test_name(name, sizeof name, "idle");
    fairsem_options_t o = {.max_slots = 1, .max_waiters = WAITERS + 8};
    fairsem_t *sem;
    fairsem_tenant_t *holder;
    fairsem_slot_t held;
    cr_assert_eq(fairsem_create(name, &o, &sem), 0);
    cr_assert_eq(fairsem_tenant_register(sem, "holder", 0, &holder), 0);
    cr_assert_eq(fairsem_acquire(holder, &held), 0);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++)
        if ((pids[p] = fork()) == 0)
            waiter_process(name, p, ready[1]);
    char c;
    bool started = true;
    for (int p = 0; p < PROCS; p++)
        started &= read(ready[0], &c, 1) == 1;
    bool queued = started && wait_queued(sem, WAITERS);
    unsigned long before = 0, after = 0;
    if (queued) {
        test_sleep_ms(500); /* the last enqueues settle */
        for (int p = 0; p < PROCS; p++)
            before += wakeups(pids[p]);
        test_sleep_ms(3000);
        for (int p = 0; p < PROCS; p++)
            after += wakeups(pids[p]);
    }
    for (int p = 0; p < PROCS; p++) {
        kill(pids[p], SIGKILL);
        waitpid(pids[p], NULL, 0);
    }
    close(ready[0]);
    close(ready[1]);
    fairsem_release(holder, held);
    fairsem_close(sem);
    fairsem_unlink(name, 0);
    cr_assert(queued, "the %d waiters did not all queue", WAITERS);
    unsigned long woke = after - before;
    cr_log_info("%d blocked waiters woke %lu times in 3 s", WAITERS, woke);
    /* Expected: ~300 (the prober) + ~3 per process (its watcher). */
    cr_assert_lt(woke, 2000ul, "%d blocked waiters woke %lu times in 3 s (every waiter is polling)", WAITERS,
                 woke);
}

/* ------------------------------------------------ the prober goes away */

static pid_t spawn_holder(const char *name, unsigned slots, int ready)
{
    pid_t pid = fork();
    if (pid == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        char c = 1;
        if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, "holder", 0, &t))
            _exit(2);
        for (unsigned k = 0; k < slots; k++)
            if (fairsem_acquire(t, &s))
                _exit(2);
        if (write(ready, &c, 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    return pid;
}

/* A synchronous waiter: exit 0 once granted, 1 if it timed out. */
static pid_t spawn_waiter(const char *name, const char *tenant)
{
    pid_t pid = fork();
    if (pid == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, tenant, 0, &t))
            _exit(2);
        _exit(fairsem_acquire_timeout(t, 60000000000ull, &s) == 0 ? 0 : 1);
    }
    return pid;
}

/* The first waiter is the prober; it is stopped (or killed), then the
 * holder is killed: the second waiter must still get a slot (one of the
 * two: the older, stopped waiter is owed the other). */
static void prober_gone(int how)
{
    char name[96];
    test_name(name, sizeof name, "prober");
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(name, &o, &sem), 0);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t holder = spawn_holder(name, 2, ready[1]);
    char c;
    bool ok = read(ready[0], &c, 1) == 1;
    pid_t prober = spawn_waiter(name, "first");
    ok = ok && wait_queued(sem, 1);
    for (int tries = 0; ok && !atomic_load(&sem->hdr->probe_beat) && tries < 6000; tries++)
        test_sleep_ms(10);
    ok = ok && atomic_load(&sem->hdr->probe_beat) != 0;
    pid_t other = spawn_waiter(name, "second");
    ok = ok && wait_queued(sem, 2);
    kill(prober, how);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    uint64_t t0 = test_now_ns();
    int status = -1;
    if (ok)
        waitpid(other, &status, 0);
    double ms = (double)(test_now_ns() - t0) / 1e6;
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    kill(prober, SIGKILL);
    waitpid(prober, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    fairsem_close(sem);
    fairsem_unlink(name, 0);
    cr_assert(ok, "the holder did not start, or the waiters did not queue");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the other waiter got no slot after the holder died (status %#x)", status);
    cr_log_info("prober %s: the other waiter was granted %.1f ms after the holder died",
                how == SIGSTOP ? "stopped" : "killed", ms);
}

Test(idle, stopped_prober_does_not_stop_recovery, .timeout = 120) { prober_gone(SIGSTOP); }

Test(idle, killed_prober_is_replaced, .timeout = 120) { prober_gone(SIGKILL); }
