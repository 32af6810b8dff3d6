/*
 * test_crash.c - processes that die (SIGKILL) or stop (SIGSTOP) at the
 * worst moments, and segments whose bytes are damaged.
 *
 * Forked children never call cr_assert: they report through their exit
 * status or a pipe and end with _exit.
 */
#define _GNU_SOURCE
#include "common.h"
#include "internal.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ------------------------------------------------------------ housekeeping */

/* What the fini hook must undo if an assertion ends a test early (the
 * processes a test started are tracked by procs.h). */
static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void) { kill_all_unlink(g_seg); }

TestSuite(crash, .fini = cleanup, .timeout = 60);

/* ------------------------------------------------------------ SIGKILL tests */

/* A holder is SIGKILLed; the waiter blocked in another process gets the
 * slot without anybody calling fairsem_reap.  Five rounds: each new holder
 * is the previous round's waiter. */
Test(crash, killed_holder_slot_goes_to_blocked_waiter)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-holder", 1);

    enum { ROUNDS = 5 };
    struct worker w[ROUNDS + 1];
    int num;
    cr_assert(spawn_ctl(&w[0], g_seg, "k", "w0"));
    send_cmd(&w[0], 'a');
    cr_assert_eq(reply_of(&w[0], &num, TEST_PATIENCE_MS), 'A');
    double ms[ROUNDS], worst = 0;
    for (int r = 0; r < ROUNDS; r++) {
        char tag[16];
        snprintf(tag, sizeof tag, "w%d", r + 1);
        /* alternate: same tenant as the holder, then another tenant */
        cr_assert(spawn_ctl(&w[r + 1], g_seg, r % 2 ? "k" : "other", tag));
        send_cmd(&w[r + 1], 'a');
        cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS), "round %d: the waiter did not queue", r);
        test_sleep_ms(15); /* most likely asleep by now: the figure printed is then a wake-up */
        uint64_t t0 = test_now_ns();
        cr_assert_eq(kill(w[r].pid, SIGKILL), 0);
        char k = reply_of(&w[r + 1], &num, TEST_PATIENCE_MS);
        uint64_t t1 = test_now_ns();
        cr_assert_eq(k, 'A', "round %d: the waiter never got the dead holder's slot", r);
        ms[r] = (double)(t1 - t0) / 1e6;
        if (ms[r] > worst)
            worst = ms[r];
        int status;
        cr_assert_eq(waitpid(w[r].pid, &status, 0), w[r].pid);
        untrack_pid(w[r].pid);
        worker_close(&w[r]);
    }
    cr_log_info("SIGKILL holder -> waiter served in %.1f %.1f %.1f %.1f %.1f ms", ms[0], ms[1], ms[2], ms[3],
                ms[4]);
    printf("SIGKILL holder -> waiter served in %.1f %.1f %.1f %.1f %.1f ms (worst %.1f)\n", ms[0], ms[1], ms[2],
           ms[3], ms[4], worst);
    fflush(stdout);

    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u); /* the last waiter holds it */
    cr_assert_eq(st.waiters, 0u);
    kill_all();
    seg_close_unlink(sem, g_seg);
}

/* Nobody waits, nobody reaps: a caller that only ever tries still sees a
 * dead holder's slot come back (try_acquire looks for dead holders itself,
 * at most once per poll interval). */
Test(crash, killed_holder_slot_comes_back_to_try_acquire)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-try", 1);
    fairsem_tenant_t *t = tenant_reg(sem, "tryer");
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "k", "holder"));
    worker_expect(&w, 'a', 'A');
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), -EAGAIN);
    uint64_t t0 = test_now_ns();
    worker_kill(&w);
    int rc = -EAGAIN;
    while (rc == -EAGAIN && test_now_ns() - t0 < TEST_PATIENCE_NS) {
        rc = fairsem_try_acquire(t, &s);
        if (rc == -EAGAIN)
            test_sleep_ms(1);
    }
    cr_assert_eq(rc, 0, "try_acquire never got the dead holder's slot: %s", fairsem_strerror(rc));
    cr_log_info("SIGKILL holder -> try_acquire succeeded after %.1f ms", (test_now_ns() - t0) / 1e6);
    cr_assert_eq(fairsem_release(t, s), 0);
    seg_close_unlink(sem, g_seg);
}

/* A waiter is SIGKILLed: fairsem_reap drops its ticket, and its tenant no
 * longer counts as demanding (the survivor's share goes back to 4). */
Test(crash, killed_waiter_ticket_dropped)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-waiter", 4);
    fairsem_tenant_t *a = tenant_reg(sem, "A");
    fairsem_slot_t s[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fairsem_try_acquire(a, &s[i]), 0);

    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "W", "w"));
    worker_queue(&w, sem, 1);
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[8];
    size_t n;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
    cr_assert_eq(st.demanding_tenants, 2u);
    cr_assert_eq(find_tenant(ts, n, "A")->share, 2u);

    worker_kill(&w);
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 1u);
    cr_assert_eq(rep.tickets, 1u);
    cr_assert_eq(rep.slots, 0u);
    cr_assert_eq(rep.registrations, 1u);
    cr_assert_eq(fairsem_stats(sem, &st, ts, 8, &n), 0);
    cr_assert_eq(st.waiters, 0u);
    cr_assert_eq(st.demanding_tenants, 1u);
    cr_assert_eq(st.attached_procs, 1u);
    cr_assert_eq(n, 1u, "the dead waiter's tenant is still listed");
    cr_assert_eq(ts[0].share, 4u);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0, "invariants broken after the reap");

    /* Its demand no longer counts: A, at 3 of 4, may take the 4th again
     * (with W still demanding, A's share would be 2). */
    cr_assert_eq(fairsem_release(a, s[3]), 0);
    cr_assert_eq(fairsem_try_acquire(a, &s[3]), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fairsem_release(a, s[i]), 0);
    seg_close_unlink(sem, g_seg);
}

/* A slot granted to a waiter that was already dead (the grant lands in its
 * cell, nobody claims it) comes back to the next blocked waiter.  Strict
 * FIFO, so that the release hands the slot over: barging would only rouse
 * the young dead waiter, and the acquire below would take the free slot
 * while the dead request still waits to be reaped. */
Test(crash, slot_granted_to_dead_waiter_comes_back)
{
    fairsem_options_t o = {.max_slots = 1, .flags = FAIRSEM_STRICT_FIFO};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-deadgrant", &o);
    fairsem_slot_t s;
    fairsem_tenant_t *a = tenant_reg_acquire(sem, "A", &s);
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "W", "w"));
    worker_queue(&w, sem, 1);
    worker_kill(&w);
    cr_assert_eq(fairsem_release(a, s), 0);
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u, "the release did not hand the slot to the dead waiter's cell");

    uint64_t t0 = test_now_ns();
    cr_assert_eq(fairsem_acquire_timeout(a, TEST_PATIENCE_NS, &s), 0,
                 "the slot granted to a dead waiter never came back");
    cr_log_info("slot granted to a dead waiter back after %.1f ms", (double)(test_now_ns() - t0) / 1e6);
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u);
    cr_assert_eq(st.waiters, 0u);
    cr_assert_eq(fairsem_release(a, s), 0);
    seg_close_unlink(sem, g_seg);
}

/* A master holding a slot forks 8 children that sleep and never call the
 * library, then is SIGKILLed: the children must not keep its lease alive,
 * so its slot comes back to another process. */
Test(crash, killed_master_with_sleeping_children)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-master", 1);
    fairsem_tenant_t *obs = tenant_reg(sem, "observer");
    /* The grandchildren are reparented to us when the master dies. */
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);

    int rep[2], life[2];
    cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(life, O_CLOEXEC), 0); /* the children live until its write end closes */
    pid_t master = fork();
    cr_assert_geq(master, 0);
    if (master == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(rep[0]);
        fairsem_t *m;
        fairsem_tenant_t *mt;
        fairsem_slot_t ms;
        if (fairsem_open(g_seg, NULL, &m) != 0 || fairsem_tenant_register(m, "master", 1, &mt) != 0 ||
            fairsem_acquire(mt, &ms) != 0)
            _exit(10);
        pid_t kids[8];
        for (int i = 0; i < 8; i++) {
            kids[i] = fork();
            if (kids[i] < 0)
                _exit(11);
            if (kids[i] == 0) {
                /* No death signal: they must outlive the master.  They end
                 * when the test closes (or loses) the pipe's write end. */
                char c;
                close(life[1]);
                while (read(life[0], &c, 1) < 0 && errno == EINTR)
                    ;
                _exit(0);
            }
        }
        if (write(rep[1], kids, sizeof kids) != (ssize_t)sizeof kids)
            _exit(12);
        for (;;)
            pause();
    }
    track_pid(master);
    close(rep[1]);
    pid_t kids[8];
    struct pollfd p = {rep[0], POLLIN, 0};
    cr_assert_eq(poll(&p, 1, TEST_PATIENCE_MS), 1, "master never reported");
    cr_assert_eq(read(rep[0], kids, sizeof kids), (ssize_t)sizeof kids, "master failed");
    for (int i = 0; i < 8; i++)
        track_pid(kids[i]);
    close(rep[0]);

    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(obs, &s), -EAGAIN, "the master does not hold the slot");
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u);

    uint64_t t0 = test_now_ns();
    cr_assert(kill_wait(master));
    /* Observe with try_acquire, blocking briefly between tries (a blocked
     * waiter is what probes the leases of the records it depends on). */
    int rc = -EAGAIN, tries = 0;
    while (rc != 0 && test_now_ns() - t0 < TEST_PATIENCE_NS) {
        tries++;
        rc = fairsem_try_acquire(obs, &s);
        if (rc == -EAGAIN)
            rc = fairsem_acquire_timeout(obs, 20000000u, &s);
        cr_assert(rc == 0 || rc == -EAGAIN || rc == -ETIMEDOUT, "rc %s", fairsem_err_name(rc));
    }
    double ms = (double)(test_now_ns() - t0) / 1e6;
    cr_log_info("master's slot back after %.1f ms (%d tries)", ms, tries);
    cr_assert_eq(rc, 0, "the master's slot did not come back");
    /* The children are still alive and attached to nothing. */
    for (int i = 0; i < 8; i++)
        cr_assert_eq(kill(kids[i], 0), 0, "child %d died", i);
    cr_assert_eq(fairsem_release(obs, s), 0);

    close(life[0]);
    close(life[1]);
    kill_all();
    seg_close_unlink(sem, g_seg);
}

/* fairsem_reap's report after a process holding 2 slots, waiting on 1
 * request and having 1 registration is killed. */
Test(crash, reap_report_exact)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-report", 2);
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "victim", "v"));
    worker_expect(&w, 'a', 'A');
    worker_expect(&w, 'a', 'A');
    send_cmd(&w, 'a'); /* blocks: both slots are its own */
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS));
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 2u);
    cr_assert_eq(st.attached_procs, 2u);
    cr_assert_eq(st.registered_tenants, 1u);

    worker_kill(&w);
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_log_info("reap: procs %u slots %u tickets %u registrations %u", rep.procs, rep.slots, rep.tickets,
                rep.registrations);
    cr_assert_eq(rep.procs, 1u);
    cr_assert_eq(rep.slots, 2u);
    cr_assert_eq(rep.tickets, 1u);
    cr_assert_eq(rep.registrations, 1u);
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);
    cr_assert_eq(st.waiters, 0u);
    cr_assert_eq(st.attached_procs, 1u);
    cr_assert_eq(st.registered_tenants, 0u);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0, "invariants broken after the reap");
    /* Nothing is left to reap. */
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs + rep.slots + rep.tickets + rep.registrations, 0u);
    seg_close_unlink(sem, g_seg);
}

/* A stopped holder is alive: its slot stays its own (no waiter or reap may
 * take it), and everybody else goes on with the remaining slots. */
Test(crash, stopped_holder_blocks_nobody_else)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-stop", 4);
    struct worker h, other;
    int num;
    cr_assert(spawn_ctl(&h, g_seg, "shared", "h"));
    cr_assert(spawn_ctl(&other, g_seg, "shared", "o"));
    worker_expect(&h, 'a', 'A');
    cr_assert_eq(kill(h.pid, SIGSTOP), 0);
    int status;
    cr_assert_eq(waitpid(h.pid, &status, WUNTRACED), h.pid);
    cr_assert(WIFSTOPPED(status));

    fairsem_tenant_t *t = tenant_reg(sem, "shared");
    for (int round = 0; round < 200; round++) {
        fairsem_slot_t s[2];
        for (int i = 0; i < 2; i++)
            cr_assert_eq(fairsem_acquire_timeout(t, TEST_PATIENCE_NS, &s[i]), 0, "round %d", round);
        /* another process takes the third free slot and gives it back */
        if (round % 20 == 0) {
            send_cmd(&other, 't');
            cr_assert_eq(reply_of(&other, &num, TEST_PATIENCE_MS), 'A', "round %d", round);
            fairsem_slot_t x;
            cr_assert_eq(fairsem_try_acquire(t, &x), -EAGAIN, "a 5th slot, or the stopped one");
            worker_expect(&other, 'r', 'R');
        }
        for (int i = 0; i < 2; i++)
            cr_assert_eq(fairsem_release(t, s[i]), 0);
    }
    /* Waiting for the stopped holder's slot does not steal it. */
    fairsem_slot_t s[3], x;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_try_acquire(t, &s[i]), 0);
    cr_assert_eq(fairsem_acquire_timeout(t, 60000000u, &x), -ETIMEDOUT);
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 0u, "a stopped process was reaped");
    cr_assert_eq(rep.slots, 0u);
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 4u);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_release(t, s[i]), 0);

    cr_assert_eq(kill(h.pid, SIGCONT), 0);
    send_cmd(&h, 'r');
    cr_assert_eq(reply_of(&h, &num, TEST_PATIENCE_MS), 'R', "the resumed holder could not release");
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0u);

    kill_all();
    worker_close(&h);
    worker_close(&other);
    seg_close_unlink(sem, g_seg);
}

/* --------------------------------------------------------------- corruption */

Test(crash, header_layout_matches_layout_h)
{
    cr_assert_eq(offsetof(struct fs_header, magic), 0u);
    cr_assert_eq(offsetof(struct fs_header, layout_version), 8u);
    cr_assert_eq(offsetof(struct fs_header, layout_hash), 12u);
    cr_assert_eq(offsetof(struct fs_header, total_size), 16u);
    cr_assert_eq(offsetof(struct fs_header, max_slots), 24u);
    /* The rest may grow, but stays in order and the hot words keep a cache
     * line each. */
    cr_assert_lt(offsetof(struct fs_header, ready), offsetof(struct fs_header, off_map));
    cr_assert_lt(offsetof(struct fs_header, off_map), offsetof(struct fs_header, off_cells));
    cr_assert_lt(offsetof(struct fs_header, rule_name) + 32, offsetof(struct fs_header, version) + 1);
    cr_assert_eq(offsetof(struct fs_header, version) % FS_CACHELINE, 0u);
    cr_assert_eq(offsetof(struct fs_header, ticket_seq), offsetof(struct fs_header, version) + FS_CACHELINE);
    cr_assert_eq(sizeof(struct fs_header) % FS_CACHELINE, 0u);

    /* And the bytes a real segment carries agree. */
    fairsem_options_t o = {.max_slots = 7, .min_share = 2};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-hdr", &o);
    char path[300];
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    struct fs_header h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    cr_assert_eq(h.magic, FS_MAGIC);
    cr_assert_eq(memcmp(&h, "FAIRSEM1", 8), 0);
    cr_assert_eq(h.layout_version, FS_LAYOUT_VERSION);
    cr_assert_eq(h.layout_hash, FS_LAYOUT_HASH);
    cr_assert_eq(h.total_size, (uint64_t)sb.st_size);
    cr_assert_eq(h.max_slots, 7u);
    cr_assert_eq(h.min_share, 2u);
    cr_assert_eq(h.ready, FS_READY);
    cr_assert_eq(h.max_procs, FAIRSEM_DEFAULT_MAX_PROCS);
    cr_assert_eq(h.off_map, sizeof(struct fs_header));
    cr_assert(h.off_map < h.off_procs && h.off_procs < h.off_regs && h.off_regs < h.off_tenants &&
              h.off_tenants < h.off_slots && h.off_slots < h.off_cells &&
              h.off_cells + (uint64_t)h.max_waiters * sizeof(struct fs_cell) <= h.off_counters &&
              h.off_counters + (uint64_t)h.max_tenants * sizeof(struct fs_tenant_counters) <= h.total_size);
    cr_assert_eq(h.off_counters % FS_CACHELINE, 0u);
    cr_assert_eq(h.off_procs % FS_CACHELINE, 0u);
    cr_assert_eq(h.off_cells % FS_CACHELINE, 0u);
    seg_close_unlink(sem, g_seg);
}

/* Create a segment and detach, leaving its file for the test to damage. */
static void fresh_segment(const char *what, char *path, size_t cap, uint64_t *size)
{
    test_name(g_seg, sizeof g_seg, what);
    fairsem_options_t o = {.max_slots = 3};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_close(sem);
    snprintf(path, cap, "/dev/shm%s", g_seg);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    *size = (uint64_t)sb.st_size;
    /* still sound */
    cr_assert_eq(fairsem_open(g_seg, NULL, &sem), 0);
    fairsem_close(sem);
}

static void poke(const char *path, off_t off, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, len, off), (ssize_t)len);
    close(fd);
}

static void expect_open(int want, const char *what)
{
    fairsem_t *sem = NULL;
    int rc = fairsem_open(g_seg, NULL, &sem);
    if (rc == 0)
        fairsem_close(sem);
    cr_assert_eq(rc, want, "%s: fairsem_open gave %s, not %s", what, fairsem_err_name(rc), fairsem_err_name(want));
    cr_assert_eq(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), 0);
    g_seg[0] = '\0';
}

/* A fresh segment (named for seg_what) with len bytes at off replaced by
 * bytes: fairsem_open must refuse it with want. */
static void expect_poked(const char *seg_what, off_t off, const void *bytes, size_t len, int want,
                         const char *what)
{
    char path[300];
    uint64_t size;
    fresh_segment(seg_what, path, sizeof path, &size);
    poke(path, off, bytes, len);
    expect_open(want, what);
}

Test(crash, corrupt_magic)
{
    expect_poked("cr-magic", offsetof(struct fs_header, magic) + 3, "X", 1, FAIRSEM_EMAGIC, "magic");
}

Test(crash, corrupt_zeroed_header)
{
    char zero[sizeof(struct fs_header)] = {0};
    expect_poked("cr-zero", 0, zero, sizeof zero, FAIRSEM_EMAGIC, "zeroed header");
}

Test(crash, corrupt_layout_version)
{
    uint32_t v = FS_LAYOUT_VERSION + 1;
    expect_poked("cr-ver", offsetof(struct fs_header, layout_version), &v, sizeof v, FAIRSEM_EVERSION,
                 "layout_version");
}

Test(crash, corrupt_layout_hash)
{
    uint32_t v = FS_LAYOUT_HASH ^ 0x10u;
    expect_poked("cr-hash", offsetof(struct fs_header, layout_hash), &v, sizeof v, FAIRSEM_EVERSION,
                 "layout_hash");
}

Test(crash, corrupt_total_size)
{
    char path[300];
    uint64_t size;
    fresh_segment("cr-size", path, sizeof path, &size);
    uint64_t v = size + 64;
    poke(path, offsetof(struct fs_header, total_size), &v, sizeof v);
    expect_open(FAIRSEM_ECORRUPT, "total_size");
}

Test(crash, corrupt_not_ready)
{
    uint32_t v = 0;
    expect_poked("cr-ready", offsetof(struct fs_header, ready), &v, sizeof v, FAIRSEM_EINIT, "ready");
}

Test(crash, corrupt_header_fields)
{
    struct {
        size_t off;
        uint64_t val;
        size_t len;
        const char *what;
    } cases[] = {
        {offsetof(struct fs_header, max_slots), 0, 4, "max_slots 0"},
        {offsetof(struct fs_header, max_slots), 9, 4, "max_slots too big for the file"},
        {offsetof(struct fs_header, min_share), 4, 4, "min_share above max_slots"},
        {offsetof(struct fs_header, max_procs), FAIRSEM_MAX_PROCS_LIMIT + 1, 4, "max_procs"},
        {offsetof(struct fs_header, flags), 0x80, 4, "unknown flag"},
        {offsetof(struct fs_header, off_cells), 128, 8, "off_cells"},
        {offsetof(struct fs_header, off_counters), 64, 8, "off_counters"},
        {offsetof(struct fs_header, off_slots), 1ull << 40, 8, "off_slots far away"},
        {offsetof(struct fs_header, map_words), 1000, 4, "map_words"},
        {offsetof(struct fs_header, off_shares), 4096, 8, "a share table the built-in rule has not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_poked("cr-field", (off_t)cases[i].off, &cases[i].val, cases[i].len, FAIRSEM_ECORRUPT,
                     cases[i].what);
    /* rule_name without its NUL */
    char junk[32];
    memset(junk, 'r', sizeof junk);
    expect_poked("cr-rule", offsetof(struct fs_header, rule_name), junk, sizeof junk, FAIRSEM_ECORRUPT,
                 "rule_name unterminated");
}

Test(crash, corrupt_truncated)
{
    char path[300];
    uint64_t size;
    fresh_segment("cr-trunc", path, sizeof path, &size);
    cr_assert_eq(truncate(path, (off_t)size - 64), 0);
    expect_open(FAIRSEM_ECORRUPT, "truncated by 64 bytes");

    fresh_segment("cr-trunc2", path, sizeof path, &size);
    cr_assert_eq(truncate(path, (off_t)sizeof(struct fs_header) - 1), 0);
    expect_open(FAIRSEM_ECORRUPT, "truncated inside the header");

    fresh_segment("cr-grow", path, sizeof path, &size);
    cr_assert_eq(truncate(path, (off_t)size + 4096), 0);
    expect_open(FAIRSEM_ECORRUPT, "grown");
}

/* Name g_seg afresh for `what` and make its file hold just len bytes. */
static void write_shm_file(const char *what, const void *bytes, size_t len)
{
    char path[300];
    test_name(g_seg, sizeof g_seg, what);
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    if (len)
        cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
    close(fd);
}

Test(crash, corrupt_tiny_and_empty_files)
{
    write_shm_file("cr-tiny", "FAIRSEM1\1\0", 10);
    expect_open(FAIRSEM_ECORRUPT, "10-byte file");
    write_shm_file("cr-empty", "", 0);
    expect_open(FAIRSEM_EMAGIC, "empty file"); /* another program's object, before its ftruncate */
}

Test(crash, check_linked_after_unlink)
{
    test_name(g_seg, sizeof g_seg, "cr-linked");
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem, *again;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    cr_assert_eq(fairsem_open(g_seg, NULL, &again), 0);
    cr_assert_eq(fairsem_check_linked(sem), 0);
    cr_assert_eq(fairsem_check_linked(again), 0);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);
    cr_assert_eq(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    cr_assert_eq(fairsem_check_linked(again), FAIRSEM_EUNLINKED);

    /* Still usable by those attached. */
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    cr_assert_eq(fairsem_tenant_register(sem, "t", 1, &t), 0);
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    cr_assert_eq(fairsem_release(t, s), 0);

    /* The name now naming another segment is just as much "unlinked". */
    fairsem_t *other;
    cr_assert_eq(fairsem_create(g_seg, &o, &other), 0);
    cr_assert_eq(fairsem_check_linked(other), 0);
    cr_assert_eq(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    fairsem_close(other);
    fairsem_close(again);
    seg_close_unlink(sem, g_seg);
    cr_assert_eq(fairsem_check_linked(NULL), -EINVAL);
}

/* g_seg mapped raw, as a writer sees it. */
struct raw {
    size_t size;
    unsigned char *base;
    struct fs_header *h;
    _Atomic uint64_t *map, *slots;
    struct fs_proc *procs;
    struct fs_tenant *tenants;
    struct fs_cell *cells;
};

static struct raw raw_map(void)
{
    char path[sizeof g_seg + 16];
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    struct raw r = {.size = (size_t)st.st_size};
    r.base = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    cr_assert_neq(r.base, MAP_FAILED);
    r.h = (struct fs_header *)r.base;
    r.map = (_Atomic uint64_t *)(r.base + r.h->off_map);
    r.slots = (_Atomic uint64_t *)(r.base + r.h->off_slots);
    r.procs = (struct fs_proc *)(r.base + r.h->off_procs);
    r.tenants = (struct fs_tenant *)(r.base + r.h->off_tenants);
    r.cells = (struct fs_cell *)(r.base + r.h->off_cells);
    return r;
}

static void raw_unmap(struct raw *r) { munmap(r->base, r->size); }

/* A dead process's queue cell claims a grant of a slot that does not exist
 * (a corrupted index): reaping it must not touch memory out of range, and
 * afterwards every invariant holds. */
Test(crash, corrupt_grant_index_in_dead_cell)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-badgrant", 1);
    fairsem_slot_t s;
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "holder", &s);
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "k", "waiter"));
    send_cmd(&w, 'a');
    cr_assert(wait_waiters(sem, 1, TEST_PATIENCE_MS), "the waiter did not queue");
    worker_kill(&w);

    struct raw r = raw_map();
    int corrupted = 0;
    for (uint32_t c = 0; c < r.h->max_waiters; c++) {
        if (atomic_load(&r.cells[c].owner) == 0)
            continue;
        uint64_t seq = atomic_load(&r.cells[c].seq);
        atomic_store(&r.cells[c].state, fs_cell_word(seq, FS_CELL_GRANTED, 0xfffffffu));
        corrupted++;
    }
    raw_unmap(&r);
    cr_assert_eq(corrupted, 1, "expected the dead waiter's one cell");

    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 1u);
    cr_assert_eq(rep.tickets, 1u);
    cr_assert_eq(fairsem_release(t, s), 0);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    seg_close_unlink(sem, g_seg);
}

/* ------------------------------------------------ single corrupt words */

/* These tests write one word the library never writes, as any process with
 * write access could, then require that: every call returns (deadlines
 * honoured, nothing spins), fairsem_check reports the word, fairsem_reap
 * resets it when nobody can ever act on it (and says so), and the slot is
 * usable again afterwards. */

/* The tag of the live record attached by process pid. */
static uint32_t raw_tag_of(const struct raw *r, pid_t pid)
{
    for (uint32_t p = 0; p < r->h->max_procs; p++) {
        uint64_t st = atomic_load(&r->procs[p].state);
        if ((st & 1) == FS_PROC_LIVE && r->procs[p].pid == pid)
            return fs_proc_tag(p, st >> 1);
    }
    cr_assert_fail("process %d has no record", (int)pid);
    return 0;
}

static uint32_t raw_free_record(const struct raw *r)
{
    for (uint32_t p = 0; p < r->h->max_procs; p++)
        if ((atomic_load(&r->procs[p].state) & 1) == FS_PROC_FREE)
            return p;
    cr_assert_fail("no free record");
    return 0;
}

static uint32_t raw_tenant(const struct raw *r, const char *id)
{
    for (uint32_t t = 0; t < r->h->max_tenants; t++)
        if (fs_tenant_kind(atomic_load(&r->tenants[t].state)) == FS_TENANT_ACTIVE &&
            strcmp(r->tenants[t].name, id) == 0)
            return t;
    cr_assert_fail("no tenant %s", id);
    return 0;
}

/* A waiting request in cell c for tenant t, as an enqueuer publishes one,
 * but with owner word `owner`; returns its seq. */
static uint64_t raw_queue(struct raw *r, uint32_t c, uint32_t t, uint64_t owner)
{
    uint64_t seq = atomic_fetch_add(&r->h->ticket_seq, 1);
    atomic_store(&r->cells[c].owner, owner);
    atomic_fetch_or(&r->map[c / 64], 1ull << (c % 64));
    atomic_store(&r->cells[c].tenant, t);
    atomic_store(&r->cells[c].seq, seq);
    atomic_store(&r->cells[c].state, fs_cell_word(seq, FS_CELL_WAITING, 0));
    atomic_fetch_add(&r->h->version, 1);
    return seq;
}

/* fairsem_check's messages, joined. */
struct findings {
    char text[2048];
};

static void collect(void *arg, unsigned kind, const char *msg)
{
    struct findings *f = arg;
    size_t n = strlen(f->text);
    snprintf(f->text + n, sizeof f->text - n, "[%u] %s\n", kind, msg);
}

/* fairsem_check must report `kind` with a message containing `words`. */
static void expect_check(fairsem_t *sem, unsigned kind, const char *words)
{
    struct findings f = {{0}};
    int rc = fairsem_check(sem, collect, &f);
    cr_assert(rc > 0 && (rc & (int)kind), "check gave %d, want kind %#x; it said:\n%s", rc, kind, f.text);
    cr_assert(strstr(f.text, words), "check did not say \"%s\"; it said:\n%s", words, f.text);
}

/* How long a probe may take before we call it hung: far more than any
 * call needs, even on a loaded machine. */
#define WATCHDOG_MS 30000

enum { PROBE_OK, PROBE_OPEN, PROBE_REGISTER, PROBE_ACQUIRE };

/* In a child: open g_seg (a new process attaching), register and ask for a
 * slot with a 50 ms deadline, which must end in -ETIMEDOUT (the corrupt
 * word holds the pool's only free slot).  The child must end within the
 * watchdog, with PROBE_OK. */
static void expect_probe_times_out(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fairsem_t *sem;
        fairsem_tenant_t *t;
        fairsem_slot_t s;
        if (fairsem_open(g_seg, NULL, &sem) != 0)
            _exit(PROBE_OPEN);
        if (fairsem_tenant_register(sem, "probe", 1, &t) != 0)
            _exit(PROBE_REGISTER);
        int rc = fairsem_acquire_timeout(t, 50000000u, &s);
        fairsem_close(sem);
        _exit(rc == -ETIMEDOUT ? PROBE_OK : PROBE_ACQUIRE);
    }
    track_pid(pid);
    int status = wait_exit(pid, WATCHDOG_MS);
    cr_assert_neq(status, -1, "open or acquire_timeout hung on the corrupt word");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == PROBE_OK, "probe ended with status %#x", status);
}

/* Reap must reset exactly `repaired` words, giving `slots` slots back. */
static void expect_reap(fairsem_t *sem, unsigned repaired, unsigned slots)
{
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.repaired, repaired, "reap repaired %u words, want %u", rep.repaired, repaired);
    cr_assert_eq(rep.slots, slots, "reap gave back %u slots, want %u", rep.slots, slots);
}

/* Every slot of the pool can be taken and given back. */
static void expect_all_slots(fairsem_tenant_t *t, unsigned n)
{
    fairsem_slot_t s[8];
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(fairsem_try_acquire(t, &s[i]), 0, "slot %u of %u is lost", i + 1, n);
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(fairsem_release(t, s[i]), 0);
}

/* What every test ends with: check reports `kind` saying `words`, reap
 * resets `repaired` words giving `slots` slots back, all `n` slots of the
 * pool are usable again and check finds nothing. */
static void expect_repaired(fairsem_t *sem, fairsem_tenant_t *t, unsigned kind, const char *words,
                            unsigned repaired, unsigned slots, unsigned n)
{
    expect_check(sem, kind, words);
    expect_reap(sem, repaired, slots);
    expect_all_slots(t, n);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    seg_close_unlink(sem, g_seg);
}

/* A 1-slot pool with tenant A registered, whose slot word is then set to
 * what `make` returns from the raw segment: a newcomer's acquire must time
 * out (not hang), check must report `kind` saying `words`, and reap must
 * reset the one word and give the slot back. */
static void expect_slot_word_repaired(const char *what, uint64_t (*make)(struct raw *), unsigned kind,
                                      const char *words)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, what, 1);
    fairsem_tenant_t *t = tenant_reg(sem, "A");
    struct raw r = raw_map();
    atomic_store(&r.slots[0], make(&r));
    raw_unmap(&r);
    expect_probe_times_out();
    expect_repaired(sem, t, kind, words, 1, 1, 1);
}

/* The review's case: the snapshot counted this word free, the claim wanted
 * exactly 0, and the scheduler retried forever (acquire_timeout, a new
 * open scrubbing a dead record, and reap all spun). */
Test(crash, corrupt_free_word_with_stray_bits)
{
    fairsem_options_t o = {.max_slots = 1, .max_procs = 2};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-stray", &o);
    fairsem_tenant_t *t = tenant_reg(sem, "A");
    /* A dead record, so the probe's open must scrub it (and schedule). */
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "k", "dead"));
    worker_kill(&w);
    struct raw r = raw_map();
    atomic_store(&r.slots[0], 0x1234u); /* kind FREE, stray bits */
    raw_unmap(&r);

    expect_probe_times_out();
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire_timeout(t, 20000000u, &s), -ETIMEDOUT);
    expect_repaired(sem, t, FAIRSEM_CHECK_SLOTS, "stray bits", 1, 1, 1);
}

/* A word of no known kind (3) holds the slot for nobody. */
static uint64_t unknown_kind(struct raw *r)
{
    (void)r;
    return 3ull << 62 | 77;
}

Test(crash, corrupt_slot_word_of_unknown_kind)
{
    expect_slot_word_repaired("cr-kind3", unknown_kind, FAIRSEM_CHECK_SLOTS, "malformed word");
}

/* A reservation for cell 4000 (past max_waiters) naming a live granter (this
 * process): no granter reserves for a cell it never scanned, so it is
 * nobody's, whoever it names. */
static uint64_t reserved_for_cell_4000(struct raw *r)
{
    return fs_slot_word(FS_SLOT_RESERVED, 7, 4000, raw_tag_of(r, getpid()));
}

Test(crash, corrupt_reservation_for_missing_cell)
{
    expect_slot_word_repaired("cr-res4000", reserved_for_cell_4000, FAIRSEM_CHECK_SLOTS, "out of range");
}

/* HELD words naming a record past max_procs, and a record that is free:
 * no process can ever release them, and no scrubber looks at them. */
Test(crash, corrupt_held_by_absent_record)
{
    fairsem_options_t o = {.max_slots = 2, .max_procs = 4};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-absent", &o);
    fairsem_tenant_t *t = tenant_reg(sem, "A");
    struct raw r = raw_map();
    uint32_t a = raw_tenant(&r, "A");
    atomic_store(&r.slots[0], fs_slot_word(FS_SLOT_HELD, 5, a, fs_proc_tag(4000, 3)));
    atomic_store(&r.slots[1], fs_slot_word(FS_SLOT_HELD, 6, a, fs_proc_tag(raw_free_record(&r), 9)));
    raw_unmap(&r);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire_timeout(t, 20000000u, &s), -ETIMEDOUT);
    expect_repaired(sem, t, FAIRSEM_CHECK_DEAD, "dead or gone", 2, 2, 2);
}

/* A 1-slot pool whose only slot tenant A holds when a waiting request of
 * A is written into cell c with owner word `owner`.  The release must not
 * grant it (a grant to it would reach nobody and keep the slot for good):
 * A takes the slot again. */
static fairsem_t *pool_with_cell(const char *what, uint32_t c, uint64_t owner, fairsem_tenant_t **t)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, what, 1);
    fairsem_slot_t s;
    *t = tenant_reg_acquire(sem, "A", &s);
    struct raw r = raw_map();
    raw_queue(&r, c, raw_tenant(&r, "A"), owner);
    raw_unmap(&r);
    cr_assert_eq(fairsem_release(*t, s), 0);
    cr_assert_eq(fairsem_try_acquire(*t, &s), 0, "the slot went to a cell nobody owns");
    cr_assert_eq(fairsem_release(*t, s), 0);
    return sem;
}

/* A WAITING cell with no owner: the scheduler ignores it; reap frees it. */
Test(crash, corrupt_ownerless_waiting_cell)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = pool_with_cell("cr-ghost", 5, 0, &t);
    expect_repaired(sem, t, FAIRSEM_CHECK_QUEUE, "cell 5: no owner", 1, 0, 1);
}

/* A queued cell owned by a record past max_procs is nobody's either. */
Test(crash, corrupt_cell_owned_by_absent_record)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = pool_with_cell("cr-cellabs", 3, FS_OWNER_BIT | fs_proc_tag(4000, 1), &t);
    expect_repaired(sem, t, FAIRSEM_CHECK_DEAD, "cell 3: owned by record 4000", 1, 0, 1);
}

/* The ownerless cell was granted the slot already (a reservation by a live
 * granter, this process): reap takes the cell over and gives the slot back. */
static uint64_t granted_to_ghost(struct raw *r)
{
    uint64_t seq = raw_queue(r, 9, raw_tenant(r, "A"), 0);
    atomic_store(&r->cells[9].state, fs_cell_word(seq, FS_CELL_GRANTED, 0));
    return fs_slot_word(FS_SLOT_RESERVED, fs_seq_stamp(seq), 9, raw_tag_of(r, getpid()));
}

Test(crash, corrupt_ownerless_granted_cell)
{
    expect_slot_word_repaired("cr-ghostgr", granted_to_ghost, FAIRSEM_CHECK_QUEUE, "cell 9: no owner");
}

/* A HELD word naming a live process, for a tenant that process does not
 * register: check reports it; reap leaves it (a live record's words are its
 * own: it may really hold the slot under a damaged tenant index); the
 * record's scrub frees it when that process dies. */
Test(crash, corrupt_phantom_held_by_live_record)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-phantom", 2);
    fairsem_tenant_t *t = tenant_reg(sem, "A");
    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "k", "live"));
    struct raw r = raw_map();
    atomic_store(&r.slots[1], fs_slot_word(FS_SLOT_HELD, 99, raw_tenant(&r, "A"), raw_tag_of(&r, w.pid)));
    raw_unmap(&r);
    expect_check(sem, FAIRSEM_CHECK_SLOTS, "which it does not register");
    expect_reap(sem, 0, 0);
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 1u);
    worker_kill(&w);
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 1u);
    cr_assert_eq(rep.slots, 1u);
    expect_all_slots(t, 2);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    seg_close_unlink(sem, g_seg);
}

/* A tenant entry left half-inserted by record 4000 (past max_procs) with
 * the hash of "X": registering "X" waits for that inserter and gives up
 * with -EBUSY, until reap finishes the entry (nobody can be record 4000). */
Test(crash, corrupt_tenant_entry_of_absent_inserter)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-tinit", 1);
    struct raw r = raw_map();
    uint32_t hash = fs_hash("X", 1);
    atomic_store(&r.tenants[5].state, fs_tenant_state(FS_TENANT_INIT, 4000, 0, hash));
    raw_unmap(&r);
    fairsem_tenant_t *t;
    cr_assert_eq(fairsem_tenant_register(sem, "X", 1, &t), -EBUSY);
    expect_check(sem, FAIRSEM_CHECK_DEAD, "half-inserted by record 4000");
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.repaired, 1u);
    t = tenant_reg(sem, "X");
    expect_all_slots(t, 1);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    seg_close_unlink(sem, g_seg);
}

/* A registration waiting for a tenant entry half-inserted by a dead process
 * reaps that process; the slot it frees goes to a waiter at once, before the
 * registration pauses to wait on.  The dead record's lease is held (here by
 * the test's own lock, as by a stopped scrubber), so the entry stays INIT
 * while the test wants; the registering process stops at its first grant,
 * which must come while it still waits: the test then frees the entry, and
 * the registration succeeds (a grant only after the wait gave up would come
 * with -EBUSY). */
Test(crash, reaped_inserter_serves_waiters_before_the_wait_goes_on)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "cr-initkick", 1);
    tenant_reg(sem, "A");
    tenant_reg(sem, "B");
    struct raw r = raw_map();
    uint32_t p = raw_free_record(&r), e = 0;
    while (fs_tenant_kind(atomic_load(&r.tenants[e].state)) != FS_TENANT_FREE)
        e++;
    atomic_store(&r.procs[p].state, fs_proc_dead(0));
    atomic_store(&r.slots[0], fs_slot_word(FS_SLOT_HELD, 7, raw_tenant(&r, "A"), fs_proc_tag(p, 0)));
    atomic_store(&r.tenants[e].state, fs_tenant_state(FS_TENANT_INIT, p, 0, fs_hash("X", 1)));
    raw_queue(&r, 0, raw_tenant(&r, "B"), fs_owner_word(raw_tag_of(&r, getpid())));
    char path[sizeof g_seg + 16];
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int lease_fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(lease_fd, 0);
    cr_assert_eq(fairsem__lease_lock(lease_fd, FS_LEASE_BASE + p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        fairsem_t *s2;
        fairsem_tenant_t *x;
        if (fairsem_open(g_seg, NULL, &s2) < 0)
            _exit(1);
        fairsem__crash_arm(2, SIGSTOP, -1); /* "scrub.slot_freed", then "grant.reserved" */
        _exit(fairsem_tenant_register(s2, "X", 1, &x) == 0 ? 0 : 2);
    }
    track_pid(pid);
    int status;
    cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(status), "the registering process did not stop at its grant");
    atomic_store(&r.tenants[e].state, fs_tenant_state(FS_TENANT_FREE, 0, 1, 0));
    kill(pid, SIGCONT);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    untrack_pid(pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the waiter was served only after the registration gave up waiting (status %d)", status);
    cr_assert_eq(fs_cell_kind(atomic_load(&r.cells[0].state)), FS_CELL_GRANTED);
    raw_unmap(&r);
    close(lease_fd);
    seg_close_unlink(sem, g_seg);
}

/* Words nothing acts on, but nothing explains either: check lists them
 * (a map bit past the last cell, an owner word with stray high bits naming
 * this live process, a waiting cell whose state carries a slot index). */
Test(crash, check_reports_words_it_cannot_explain)
{
    fairsem_options_t o = {.max_slots = 1, .max_waiters = 10};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-unexpl", &o);
    fairsem_tenant_t *t = tenant_reg(sem, "A");
    struct raw r = raw_map();
    uint32_t me = raw_tag_of(&r, getpid());
    atomic_fetch_or(&r.map[0], 1ull << 20);
    raw_queue(&r, 2, raw_tenant(&r, "A"), FS_OWNER_BIT | 1ull << 40 | me);
    uint64_t seq = raw_queue(&r, 4, raw_tenant(&r, "A"), FS_OWNER_BIT | me);
    atomic_store(&r.cells[4].state, fs_cell_word(seq, FS_CELL_WAITING, 1));
    raw_unmap(&r);
    expect_check(sem, FAIRSEM_CHECK_QUEUE, "bits set past cell 9");
    expect_check(sem, FAIRSEM_CHECK_QUEUE, "cell 2: malformed owner word");
    expect_check(sem, FAIRSEM_CHECK_QUEUE, "cell 4: malformed state");
    expect_all_slots(t, 1); /* neither cell is granted the slot */
    seg_close_unlink(sem, g_seg);
}

/* A barging mark on a waiting cell is a word barging explains; in a
 * strict FIFO segment nothing sets one, so check lists it. */
Test(crash, check_reports_a_barging_mark_only_where_nothing_barges)
{
    for (int strict = 0; strict <= 1; strict++) {
        fairsem_options_t o = {.max_slots = 1, .flags = strict ? FAIRSEM_STRICT_FIFO : 0};
        fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, strict ? "cr-mark-st" : "cr-mark-bg", &o);
        tenant_reg(sem, "A");
        struct raw r = raw_map();
        uint32_t me = raw_tag_of(&r, getpid());
        uint64_t seq = raw_queue(&r, 3, raw_tenant(&r, "A"), FS_OWNER_BIT | me);
        atomic_store(&r.cells[3].state, fs_cell_word(seq, FS_CELL_WAITING, FS_CELL_ROUSED | FS_CELL_HANDOFF));
        raw_unmap(&r);
        struct findings f = {{0}};
        int rc = fairsem_check(sem, collect, &f);
        cr_assert_eq(rc > 0 && strstr(f.text, "cell 3: malformed state"), strict, "strict=%d: check gave %d:\n%s",
                     strict, rc, f.text);
        seg_close_unlink(sem, g_seg);
    }
}

/* The opens bits and the closing word must agree with each other and
 * with the registrations: check names each disagreement. */
Test(crash, check_reports_closing_words_and_opens_bits)
{
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "cr-opens", &o);
    fairsem_tenant_t *a = tenant_reg(sem, "A");
    fairsem_tenant_t *b = tenant_reg(sem, "B");
    fairsem_slot_t sa, sb; /* the mark matters, and is checked, for tenants that hold */
    cr_assert_eq(fairsem_try_acquire(a, &sa), 0);
    cr_assert_eq(fairsem_try_acquire(b, &sb), 0);
    cr_assert_eq(fairsem_check(sem, NULL, NULL), 0);
    struct raw r = raw_map();
    uint32_t p = fs_tag_proc(raw_tag_of(&r, getpid()));
    uint32_t ta = raw_tenant(&r, "A"), tb = raw_tenant(&r, "B");
    _Atomic uint64_t *opens = (_Atomic uint64_t *)(r.base + r.h->off_opens);
    _Atomic uint64_t *regs = (_Atomic uint64_t *)(r.base + r.h->off_regs);
    uint32_t words = r.h->reg_words;
    /* A is open but marked closing. */
    uint64_t st = atomic_load(&r.tenants[ta].state);
    atomic_store(&r.tenants[ta].closing, fs_closing_word(fs_tenant_gen(st), true));
    /* B is registered, its open bit gone: unregistered but marked open. */
    atomic_fetch_and(&opens[(size_t)p * words + tb / 64], ~(1ull << (tb % 64)));
    /* An open bit for an index the record does not register. */
    uint32_t stray = ta == 5 || tb == 5 ? 6 : 5;
    atomic_fetch_and(&regs[(size_t)p * words + stray / 64], ~(1ull << (stray % 64)));
    atomic_fetch_or(&opens[(size_t)p * words + stray / 64], 1ull << (stray % 64));
    raw_unmap(&r);
    char want[80];
    snprintf(want, sizeof want, "tenant %u: marked closing", ta);
    expect_check(sem, FAIRSEM_CHECK_TENANTS, want);
    snprintf(want, sizeof want, "tenant %u: marked open", tb);
    expect_check(sem, FAIRSEM_CHECK_TENANTS, want);
    snprintf(want, sizeof want, "has tenant index %u open without registering it", stray);
    expect_check(sem, FAIRSEM_CHECK_TENANTS, want);
    cr_assert_eq(fairsem_release(a, sa), 0);
    cr_assert_eq(fairsem_release(b, sb), 0);
    seg_close_unlink(sem, g_seg);
}

/* ------------------------------------------ the header, read only once */

/* An opener stopped right after validating the header while a writer sets
 * max_slots to a value the file cannot hold: the handle must keep using
 * what it validated (before the fix, the header was read again to map the
 * regions, and the opener used 9 slots of a 3-slot file). */
Test(crash, header_changed_after_validation_is_not_used)
{
    char path[300];
    uint64_t size;
    fresh_segment("cr-reread", path, sizeof path, &size);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fairsem__crash_arm(1, SIGSTOP, -1); /* "open.validated" */
        fairsem_t *sem;
        if (fairsem_open(g_seg, NULL, &sem) != 0)
            _exit(1);
        fairsem_info_t info;
        fairsem_stats_t st;
        if (fairsem_info(sem, &info) != 0 || info.max_slots != 3)
            _exit(2);
        if (fairsem_stats(sem, &st, NULL, 0, NULL) != 0 || st.max_slots != 3 || st.slots_available != 3)
            _exit(3);
        fairsem_tenant_t *t;
        fairsem_slot_t s[4];
        if (fairsem_tenant_register(sem, "A", 1, &t) != 0)
            _exit(4);
        for (int i = 0; i < 3; i++)
            if (fairsem_try_acquire(t, &s[i]) != 0)
                _exit(5);
        if (fairsem_try_acquire(t, &s[3]) != -EAGAIN)
            _exit(6);
        fairsem_close(sem);
        _exit(0);
    }
    track_pid(pid);
    int status;
    cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(status), "the opener did not stop after validating (status %#x)", status);
    uint32_t nine = 9;
    poke(path, offsetof(struct fs_header, max_slots), &nine, sizeof nine);
    cr_assert_eq(kill(pid, SIGCONT), 0);
    status = wait_exit(pid, WATCHDOG_MS);
    cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the opener used the header as changed after validation (status %#x)", status);
    expect_open(FAIRSEM_ECORRUPT, "max_slots 9 in a 3-slot file");
}

/* ------------------------------------------------------ special names */

/* "/." and "/.." name /dev/shm itself and its parent: refused as bad names
 * on create, open and unlink alike, not -EEXIST or whatever the OS says. */
Test(crash, dot_names_refused_everywhere)
{
    const char *names[] = {"/.", "/.."};
    fairsem_options_t o = {.max_slots = 1};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        fairsem_t *sem = NULL;
        cr_assert_eq(fairsem_create(names[i], &o, &sem), -EINVAL, "create %s", names[i]);
        cr_assert_eq(fairsem_open(names[i], NULL, &sem), -EINVAL, "open %s", names[i]);
        fairsem_options_t ro = {.flags = FAIRSEM_READONLY};
        cr_assert_eq(fairsem_open(names[i], &ro, &sem), -EINVAL, "open %s read-only", names[i]);
        cr_assert_eq(fairsem_unlink(names[i], 0), -EINVAL, "unlink %s", names[i]);
    }
    /* Names that merely start with dots are ordinary names. */
    fairsem_t *sem;
    test_name(g_seg, sizeof g_seg, "cr-dots");
    char name[sizeof g_seg];
    snprintf(name, sizeof name, "/...%s", g_seg + 1);
    snprintf(g_seg, sizeof g_seg, "%s", name);
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    seg_close_unlink(sem, g_seg);
}
