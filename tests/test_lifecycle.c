/*
 * test_lifecycle.c - process life-cycle edges: a full /dev/shm, fork while
 * another thread waits, exec and posix_spawn after taking a slot, and the
 * `fairsem run` wrapper killed while its command lives on.
 *
 * Forked children never call cr_assert: they report through their exit
 * status or a pipe and end with _exit.  Every process a test starts is
 * tracked and killed (and collected) in the suite's fini; this process is
 * made a child subreaper so grandchildren left by a killed child come back
 * to it.
 */
#define _GNU_SOURCE
#include "common.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define SLEEP_SECONDS "600" /* outlives any slow test; killed by it */

/* ------------------------------------------------------------ housekeeping */

static char g_seg[FAIRSEM_NAME_MAX + 1];
static pid_t g_pids[16];

static void track(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++) {
        if (g_pids[i] <= 0) {
            g_pids[i] = pid;
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
}

/* SIGKILL pid and collect it (it must be our child: direct, or adopted
 * through the subreaper).  Returns its wait status. */
static int kill_collect(pid_t pid)
{
    int status = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    untrack(pid);
    return status;
}

static void cleanup(void)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] > 0)
            kill_collect(g_pids[i]);
    if (g_seg[0])
        fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE);
    g_seg[0] = '\0';
}

static void setup(void) { prctl(PR_SET_CHILD_SUBREAPER, 1); }

TestSuite(lifecycle, .init = setup, .fini = cleanup, .timeout = 60);

/* Still running (not exited, not a zombie)? */
static bool running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static bool comm_is(pid_t pid, const char *comm)
{
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok && strcmp(buf, comm) == 0;
}

/* A process whose parent is `ppid` and whose command is `comm`, or 0. */
static pid_t find_child(pid_t ppid, const char *comm)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        char state;
        int parent;
        if (p && sscanf(p + 1, " %c %d", &state, &parent) == 2 && parent == ppid && comm_is((pid_t)pid, comm))
            found = (pid_t)pid;
    }
    closedir(d);
    return found;
}

/* Does /proc/pid/environ hold the string `want` ("NAME=value")? */
static bool environ_has(pid_t pid, const char *want)
{
    char path[64];
    static char buf[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, want) == 0)
            return true;
    return false;
}

/* Take a slot through t, trying for up to `ms` milliseconds (try_acquire,
 * then a short blocking wait, which probes the leases of the holders).
 * Returns the milliseconds it took, or -1. */
static double slot_back(fairsem_tenant_t *t, fairsem_slot_t *s, unsigned ms)
{
    uint64_t t0 = test_now_ns();
    while (test_now_ns() - t0 < (uint64_t)ms * 1000000u) {
        int rc = fairsem_try_acquire(t, s);
        if (rc == -EAGAIN)
            rc = fairsem_acquire_timeout(t, 20000000u, s);
        if (rc == 0)
            return (double)(test_now_ns() - t0) / 1e6;
        if (rc != -EAGAIN && rc != -ETIMEDOUT) {
            cr_log_error("acquire: %s", fairsem_err_name(rc));
            return -1;
        }
    }
    return -1;
}

static bool wait_in_use(fairsem_t *sem, unsigned in_use, unsigned waiters, unsigned ms)
{
    uint64_t end = test_now_ns() + (uint64_t)ms * 1000000u;
    fairsem_stats_t st;
    while (test_now_ns() < end) {
        if (fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.slots_in_use == in_use && st.waiters == waiters)
            return true;
        test_sleep_ms(1);
    }
    return false;
}

/* Reap, check, and make sure nothing is held, queued or attached but us. */
static void verify_clean(fairsem_t *sem, const char *where)
{
    cr_assert_eq(fairsem_reap(sem, NULL), 0);
    int bad = fairsem_check(sem, NULL, NULL);
    cr_assert_eq(bad, 0, "%s: fairsem_check found %#x", where, bad);
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u, "%s: %u slots still in use", where, st.slots_in_use);
    cr_assert_eq(st.waiters, 0u, "%s: %u waiters left", where, st.waiters);
    cr_assert_eq(st.attached_procs, 1u, "%s: %u process records in use, only ours should be", where,
                 st.attached_procs);
}

/* ------------------------------------------------------------ (a) full /dev/shm */

enum {
    SHM_OK = 0,
    SHM_UNSHARE = 10,
    SHM_PRIVATE,
    SHM_MOUNT,
    SHM_BIG_NOT_ENOSPC,
    SHM_LEFTOVER,
    SHM_SMALL_CREATE,
    SHM_SMALL_USE,
    SHM_SMALL_TOO_BIG,
    SHM_FILLER,
    SHM_FULL_NOT_ENOSPC,
    SHM_AFTER_FULL,
};

static const char *shm_what(int code)
{
    switch (code) {
    case SHM_UNSHARE: return "unshare(CLONE_NEWNS) failed";
    case SHM_PRIVATE: return "making mounts private failed";
    case SHM_MOUNT: return "mounting a 64k tmpfs on /dev/shm failed";
    case SHM_BIG_NOT_ENOSPC: return "creating a 1 MB+ segment in 64k did not return -ENOSPC";
    case SHM_LEFTOVER: return "a failed create left a file in /dev/shm";
    case SHM_SMALL_CREATE: return "a small segment could not be created";
    case SHM_SMALL_USE: return "the small segment did not work";
    case SHM_SMALL_TOO_BIG: return "the small segment is not small (>= 32k)";
    case SHM_FILLER: return "could not fill the tmpfs";
    case SHM_FULL_NOT_ENOSPC: return "creating in a full /dev/shm did not return -ENOSPC";
    case SHM_AFTER_FULL: return "creating after freeing room failed";
    default: return "?";
    }
}

static int shm_entries(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int full_shm_child(const char *name, int report)
{
    if (unshare(CLONE_NEWNS) < 0)
        return SHM_UNSHARE;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return SHM_PRIVATE;
    if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=64k") < 0)
        return SHM_MOUNT;

    /* Far more than 64k: 65535 slots alone are 1 MB. */
    fairsem_options_t big = {.max_slots = 65535, .max_tenants = 4095, .max_waiters = 4095, .max_procs = 4095};
    fairsem_t *sem = NULL;
    int rc = fairsem_create(name, &big, &sem);
    if (write(report, &rc, sizeof rc) != (ssize_t)sizeof rc)
        return SHM_BIG_NOT_ENOSPC;
    if (rc != -ENOSPC)
        return SHM_BIG_NOT_ENOSPC;
    if (shm_entries() != 0 || fairsem_open(name, NULL, &sem) != -ENOENT)
        return SHM_LEFTOVER;

    fairsem_options_t small = {.max_slots = 4, .max_tenants = 4, .max_waiters = 4, .max_procs = 4};
    if (fairsem_create(name, &small, &sem) != 0)
        return SHM_SMALL_CREATE;
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_info_t info;
    if (fairsem_tenant_register(sem, "x", 0, &t) || fairsem_acquire(t, &s) || fairsem_release(t, s) ||
        fairsem_info(sem, &info))
        return SHM_SMALL_USE;
    if (info.size >= 32768)
        return SHM_SMALL_TOO_BIG;
    fairsem_close(sem);
    if (fairsem_unlink(name, 0) != 0)
        return SHM_SMALL_USE;

    /* Now fill the tmpfs to the last block: even a small segment must fail
     * with -ENOSPC, and work again once there is room. */
    int fd = open("/dev/shm/filler", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return SHM_FILLER;
    static char block[4096];
    while (write(fd, block, sizeof block) == (ssize_t)sizeof block)
        ;
    while (write(fd, block, 1) == 1)
        ;
    close(fd);
    rc = fairsem_create(name, &small, &sem);
    if (write(report, &rc, sizeof rc) != (ssize_t)sizeof rc || rc != -ENOSPC)
        return SHM_FULL_NOT_ENOSPC;
    if (shm_entries() != 1)
        return SHM_LEFTOVER;
    unlink("/dev/shm/filler");
    if (fairsem_create(name, &small, &sem) != 0)
        return SHM_AFTER_FULL;
    fairsem_close(sem);
    fairsem_unlink(name, 0);
    return SHM_OK;
}

Test(lifecycle, full_dev_shm_is_enospc_not_sigbus)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (a private tmpfs on /dev/shm)");
    test_name(g_seg, sizeof g_seg, "lc-full");
    int rep[2];
    cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(rep[0]);
        _exit(full_shm_child(g_seg, rep[1]));
    }
    track(pid);
    close(rep[1]);
    int status;
    waitpid(pid, &status, 0);
    untrack(pid);
    int rcs[2] = {1, 1};
    ssize_t got = read(rep[0], rcs, sizeof rcs);
    close(rep[0]);
    cr_assert(!WIFSIGNALED(status), "the child died of signal %d (%s) creating segments in a full /dev/shm",
              WTERMSIG(status), strsignal(WTERMSIG(status)));
    cr_assert(WIFEXITED(status));
    int code = WEXITSTATUS(status);
    cr_assert_eq(code, 0, "%s (exit %d; create returned %s%s%s)", shm_what(code), code,
                 got >= (ssize_t)sizeof(int) ? fairsem_err_name(rcs[0]) : "-",
                 got >= (ssize_t)sizeof rcs ? ", then " : "",
                 got >= (ssize_t)sizeof rcs ? fairsem_err_name(rcs[1]) : "");
    cr_log_info("1 MB segment in a 64k /dev/shm: %s; small segment in a full one: %s", fairsem_err_name(rcs[0]),
                fairsem_err_name(rcs[1]));
    g_seg[0] = '\0'; /* it lived in the child's private tmpfs only */
}

/* ------------------------------------------------------------ (b) fork while a thread waits */

struct waiter {
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    _Atomic int done;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = fairsem_acquire(w->t, &w->s);
    atomic_store(&w->done, 1);
    return NULL;
}

enum { FK_OK = 0, FK_FOREIGN_RELEASE = 10, FK_ACQUIRE, FK_INDEX, FK_RELEASE, FK_TWICE, FK_STATS, FK_TRY };

static const char *fork_what(int code)
{
    switch (code) {
    case FK_FOREIGN_RELEASE: return "the child could release a slot its parent holds";
    case FK_ACQUIRE: return "the child could not acquire through the inherited tenant handle";
    case FK_INDEX: return "the child got a slot its parent holds";
    case FK_RELEASE: return "the child could not release its slot";
    case FK_TWICE: return "the child could release its slot twice";
    case FK_STATS: return "the child's view of the segment is wrong";
    case FK_TRY: return "the child could not try_acquire after its release";
    default: return "?";
    }
}

/*
 * 3 slots, tenants A, B, C (weight 1).  The test holds one slot through A
 * and one through B: with A and B demanding, each share is 1, so a thread
 * waiting through A stays queued although a slot is free.  Then the main
 * thread forks: the child (one thread) takes the free slot through the
 * inherited, still unused handle of C (C's share is 1 with 3 demanding), and
 * must hold nothing of the parent's.  After it exits the waiter is still
 * queued, and is served when the test releases A's slot.
 */
Test(lifecycle, fork_while_a_thread_waits)
{
    test_name(g_seg, sizeof g_seg, "lc-fork");
    fairsem_options_t o = {.max_slots = 3};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_tenant_t *ta, *tb, *tc;
    cr_assert_eq(fairsem_tenant_register(sem, "A", 1, &ta), 0);
    cr_assert_eq(fairsem_tenant_register(sem, "B", 1, &tb), 0);
    cr_assert_eq(fairsem_tenant_register(sem, "C", 1, &tc), 0);
    fairsem_slot_t sa, sb;
    cr_assert_eq(fairsem_acquire(ta, &sa), 0);
    cr_assert_eq(fairsem_acquire(tb, &sb), 0);

    struct waiter w = {.t = ta};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
    cr_assert(wait_in_use(sem, 2, 1, TEST_PATIENCE_MS), "the waiter did not queue");
    cr_assert_eq(atomic_load(&w.done), 0, "the waiter was served over its share");

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fairsem_slot_t s;
        fairsem_stats_t st;
        /* Nothing of the parent's is ours. */
        if (fairsem_release(ta, sa) != FAIRSEM_ESLOT)
            _exit(FK_FOREIGN_RELEASE);
        if (fairsem_acquire_timeout(tc, TEST_PATIENCE_NS, &s) != 0)
            _exit(FK_ACQUIRE);
        unsigned idx = fairsem_slot_index(s);
        if (idx == fairsem_slot_index(sa) || idx == fairsem_slot_index(sb) || idx >= 3)
            _exit(FK_INDEX);
        if (fairsem_stats(sem, &st, NULL, 0, NULL) || st.slots_in_use != 3 || st.waiters != 1)
            _exit(FK_STATS);
        if (fairsem_release(tc, s) != 0)
            _exit(FK_RELEASE);
        if (fairsem_release(tc, s) != FAIRSEM_ESLOT)
            _exit(FK_TWICE);
        /* C is under its share again: a try gets the slot back. */
        if (fairsem_try_acquire(tc, &s) != 0 || fairsem_release(tc, s) != 0)
            _exit(FK_TRY);
        _exit(FK_OK); /* no close: the lease drops with the process */
    }
    track(pid);
    int status;
    waitpid(pid, &status, 0);
    untrack(pid);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    cr_assert_eq(code, 0, "fork child: %s (status %d)", fork_what(code), code);

    /* The waiter is still queued, the free slot still not its own. */
    cr_assert(wait_in_use(sem, 2, 1, TEST_PATIENCE_MS),
              "after the child: the waiter left the queue or slots leaked");
    test_sleep_ms(30);
    cr_assert_eq(atomic_load(&w.done), 0, "the waiter was served over its share after the fork");

    uint64_t t0 = test_now_ns();
    cr_assert_eq(fairsem_release(ta, sa), 0);
    while (!atomic_load(&w.done) && test_now_ns() - t0 < TEST_PATIENCE_NS)
        test_sleep_ms(1);
    cr_assert_eq(atomic_load(&w.done), 1, "the waiter was not served after a release");
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, 0, "the waiter's acquire: %s", fairsem_err_name(w.rc));
    cr_log_info("waiter served %.1f ms after the release that followed the fork",
                (double)(test_now_ns() - t0) / 1e6);
    cr_assert_eq(fairsem_release(ta, w.s), 0);
    cr_assert_eq(fairsem_release(tb, sb), 0);

    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.slots, 0u, "the child left %u slots", rep.slots);
    cr_assert_eq(rep.tickets, 0u, "the child left %u queued requests", rep.tickets);
    verify_clean(sem, "after fork");
    fairsem_tenant_stats_t ts[8];
    size_t n = 0;
    cr_assert_eq(fairsem_stats(sem, &(fairsem_stats_t){0}, ts, 8, &n), 0);
    for (size_t i = 0; i < n && i < 8; i++)
        cr_assert_eq(ts[i].registrations, 1u, "tenant %s has %u registrations (only ours should be left)",
                     ts[i].id, ts[i].registrations);
    fairsem_slot_t all[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_try_acquire(tc, &all[i]), 0, "slot %d of 3 not free", i);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_release(tc, all[i]), 0);
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}

/* ------------------------------------------------------------ (c) exec and posix_spawn */

enum spawn_kind { EXEC_SELF, FORK_EXEC, POSIX_SPAWN };

/* The holder: take the one slot, then start `sleep` as `kind` says; report
 * the sleep's pid on `report` and wait to be killed. */
static int holder_child(const char *name, enum spawn_kind kind, int report, int go)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, "holder", 1, &t) || fairsem_acquire(t, &s))
        return 10;
    char *argv[] = {"sleep", SLEEP_SECONDS, NULL};
    pid_t pid = getpid();
    if (kind == EXEC_SELF) {
        char c;
        if (write(report, &pid, sizeof pid) != (ssize_t)sizeof pid || read(go, &c, 1) != 1)
            return 11;
        execv("/bin/sleep", argv); /* keeps the pid and the death signal */
        return 12;
    }
    if (kind == FORK_EXEC) {
        pid = fork();
        if (pid < 0)
            return 13;
        if (pid == 0) {
            execv("/bin/sleep", argv);
            _exit(127);
        }
    } else if (posix_spawn(&pid, "/bin/sleep", NULL, NULL, argv, environ) != 0) {
        return 14;
    }
    if (write(report, &pid, sizeof pid) != (ssize_t)sizeof pid)
        return 11;
    for (;;)
        pause();
}

static void spawned_program_keeps_no_lease(enum spawn_kind kind, const char *what)
{
    test_name(g_seg, sizeof g_seg, "lc-exec");
    fairsem_options_t o = {.max_slots = 1};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_tenant_t *t;
    cr_assert_eq(fairsem_tenant_register(sem, "waiter", 1, &t), 0);

    int rep[2], go[2];
    cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
    pid_t holder = fork();
    cr_assert_geq(holder, 0);
    if (holder == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(rep[0]);
        close(go[1]);
        _exit(holder_child(g_seg, kind, rep[1], go[0]));
    }
    track(holder);
    close(rep[1]);
    close(go[0]);
    pid_t prog = 0;
    struct pollfd p = {rep[0], POLLIN, 0};
    cr_assert_eq(poll(&p, 1, TEST_PATIENCE_MS), 1, "%s: the holder never reported", what);
    cr_assert_eq(read(rep[0], &prog, sizeof prog), (ssize_t)sizeof prog, "%s: the holder failed", what);
    close(rep[0]);
    if (prog != holder)
        track(prog);

    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), -EAGAIN, "%s: the holder does not hold the slot", what);
    uint64_t t0 = test_now_ns();
    if (kind == EXEC_SELF) {
        char c = 0;
        cr_assert_eq(write(go[1], &c, 1), 1);
        /* Wait for the exec itself (the holder is the same pid). */
        while (!comm_is(holder, "sleep") && test_now_ns() - t0 < TEST_PATIENCE_NS)
            test_sleep_ms(1);
        cr_assert(comm_is(holder, "sleep"), "%s: the holder did not exec", what);
    } else {
        int status = kill_collect(holder);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: the holder was not killed (status %#x)",
                  what, status);
    }
    close(go[1]);
    double ms = slot_back(t, &s, TEST_PATIENCE_MS);
    cr_assert_geq(ms, 0, "%s: the slot did not come back while the spawned program runs", what);
    cr_log_info("%s: slot back %.1f ms after the holder %s", what, ms,
                kind == EXEC_SELF ? "exec'd" : "was killed");
    cr_assert(running(prog) && comm_is(prog, "sleep"), "%s: the spawned program is gone", what);
    cr_assert_eq(fairsem_release(t, s), 0);

    int status = kill_collect(prog);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: sleep ended by itself (status %#x)", what,
              status);
    verify_clean(sem, what);
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}

Test(lifecycle, exec_drops_the_lease) { spawned_program_keeps_no_lease(EXEC_SELF, "exec"); }

Test(lifecycle, fork_exec_then_holder_killed) { spawned_program_keeps_no_lease(FORK_EXEC, "fork+exec"); }

Test(lifecycle, posix_spawn_then_holder_killed) { spawned_program_keeps_no_lease(POSIX_SPAWN, "posix_spawn"); }

/* ------------------------------------------------------------ (d) fairsem run */

/* `fairsem run NAME --tenant T -- sleep 30` SIGKILLed: as with flock(1),
 * its slot stays held while the sleep lives on (the sleep inherited the
 * lease), and comes back once the sleep is killed too. */
Test(lifecycle, killed_fairsem_run_holds_its_slot_until_its_command_ends)
{
    test_name(g_seg, sizeof g_seg, "lc-run");
    fairsem_options_t o = {.max_slots = 1};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_tenant_t *t;
    cr_assert_eq(fairsem_tenant_register(sem, "observer", 1, &t), 0);

    pid_t run = fork();
    cr_assert_geq(run, 0);
    if (run == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* kept by the tool, not by its child */
        execl(FAIRSEM_TOOL, "fairsem", "run", g_seg, "--tenant", "T", "--", "sleep", SLEEP_SECONDS, (char *)NULL);
        _exit(127);
    }
    track(run);
    cr_assert(wait_in_use(sem, 1, 0, TEST_PATIENCE_MS), "fairsem run never took the slot");
    pid_t sleeper = 0;
    uint64_t t0 = test_now_ns();
    while (!(sleeper = find_child(run, "sleep")) && test_now_ns() - t0 < TEST_PATIENCE_NS)
        test_sleep_ms(2);
    cr_assert_gt(sleeper, 0, "fairsem run never started sleep");
    track(sleeper);
    /* The command sees the slot it runs under. */
    char want[FAIRSEM_NAME_MAX + 32];
    t0 = test_now_ns();
    while (!environ_has(sleeper, "FAIRSEM_SLOT=0") && test_now_ns() - t0 < TEST_PATIENCE_NS)
        test_sleep_ms(1); /* until the exec has happened */
    cr_assert(environ_has(sleeper, "FAIRSEM_SLOT=0"), "sleep does not see FAIRSEM_SLOT=0");
    snprintf(want, sizeof want, "FAIRSEM_NAME=%s", g_seg);
    cr_assert(environ_has(sleeper, want), "sleep does not see %s", want);
    cr_assert(environ_has(sleeper, "FAIRSEM_TENANT=T"));

    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), -EAGAIN, "fairsem run does not hold the slot");
    int status = kill_collect(run);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "fairsem run was not killed (status %#x)",
              status);
    cr_assert_lt(slot_back(t, &s, 200), 0, "the slot of a killed `fairsem run` came back while its command runs");
    cr_assert(running(sleeper), "sleep died with fairsem run");

    status = kill_collect(sleeper);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "sleep ended by itself (status %#x)", status);
    double ms = slot_back(t, &s, TEST_PATIENCE_MS);
    cr_assert_geq(ms, 0, "the slot did not come back after the command's end");
    cr_log_info("fairsem run and its command killed: slot back after %.1f ms", ms);
    cr_assert_eq(fairsem_release(t, s), 0);
    verify_clean(sem, "fairsem run");
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}
