/*
 * procs.h - helpers shared by the tests that start other processes:
 * tracking their pids (so a test's fini hook can kill what an assertion
 * left running), prog_worker "ctl" processes driven through pipes, and
 * waiting for the segment to reach a state.
 *
 * Everything is static: each test program gets its own copy of the pid
 * table.  Include after common.h's prerequisites (_GNU_SOURCE first).
 * The helpers that assert are for the test process only (never call them
 * in a forked child).
 */
#ifndef FAIRSEM_TEST_PROCS_H
#define FAIRSEM_TEST_PROCS_H

#include "common.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKER_PATH FAIRSEM_TEST_BINDIR "/prog_worker"

/* ------------------------------------------------------------ pid tracking */

#define PROCS_MAX_PIDS 64
static pid_t g_pids[PROCS_MAX_PIDS];
static int g_npids;

/* Remember a child so that kill_all() ends it if the test stops early. */
static inline void track_pid(pid_t pid)
{
    if (g_npids < PROCS_MAX_PIDS)
        g_pids[g_npids++] = pid;
}

/* Forget a child the test has collected itself. */
static inline void untrack_pid(pid_t pid)
{
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
}

/* SIGKILL and collect every tracked process (SIGCONT first, so a stopped
 * one dies at once; grandchildren too, for tests that made this process
 * their subreaper and tracked them). */
static inline void kill_all(void)
{
    for (int i = 0; i < g_npids; i++) {
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGCONT);
            kill(g_pids[i], SIGKILL);
            waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
    }
    g_npids = 0;
}

/* A suite's fini hook: kill every tracked process, then unlink the segment
 * named in seg (if any) and clear seg. */
static inline void kill_all_unlink(char *seg)
{
    kill_all();
    if (seg[0])
        fairsem_unlink(seg, FAIRSEM_UNLINK_FORCE);
    seg[0] = '\0';
}

/* SIGKILL pid, collect it and forget it; true if it died of the signal. */
static inline bool kill_wait(pid_t pid)
{
    if (kill(pid, SIGKILL) < 0)
        return false;
    int status;
    bool ok = waitpid(pid, &status, 0) == pid && WIFSIGNALED(status);
    untrack_pid(pid);
    return ok;
}

/* Wait for pid (tracked) with a deadline; returns its wait status (and
 * forgets it), or -1 if it did not end in time. */
static inline int wait_exit(pid_t pid, unsigned timeout_ms)
{
    uint64_t end = test_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            untrack_pid(pid);
            return status;
        }
        if (r < 0 || test_now_ns() > end)
            return -1;
        test_sleep_ms(2);
    }
}

/* ----------------------------------------------------------- descriptors */

/* One line from fd (without the '\n'), waiting at most timeout_ms; its
 * length, or -1 on timeout, EOF or error. */
static inline int read_line(int fd, char *buf, size_t cap, unsigned timeout_ms)
{
    uint64_t end = test_now_ns() + (uint64_t)timeout_ms * 1000000u;
    size_t n = 0;
    for (;;) {
        uint64_t now = test_now_ns();
        if (now >= end)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)((end - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 < cap)
            buf[n++] = c;
    }
}

/* True if fd becomes readable (or hung up) within ms milliseconds. */
static inline bool readable_within(int fd, unsigned ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, (int)ms) == 1;
}

/* ------------------------------------------------- prog_worker ctl processes */

struct worker {
    pid_t pid;
    int in;  /* commands to the worker */
    int out; /* its replies (maybe shared with other workers) */
    char tag[16];
};

/* Start `prog_worker ctl seg tenant tag` (tracked); shared_out_w >= 0 makes
 * its stdout that pipe's write end (read end shared_out_r), so several
 * workers answer on one pipe.  Waits for its READY line. */
static inline bool spawn_ctl_shared(struct worker *w, const char *seg, const char *tenant,
                                    const char *tag, int shared_out_r, int shared_out_w)
{
    int in[2], out[2] = {shared_out_r, shared_out_w};
    if (pipe2(in, O_CLOEXEC) < 0)
        return false;
    if (shared_out_w < 0 && pipe2(out, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execl(WORKER_PATH, "prog_worker", "ctl", seg, tenant, tag, (char *)NULL);
        _exit(127);
    }
    track_pid(pid);
    close(in[0]);
    if (shared_out_w < 0)
        close(out[1]);
    w->pid = pid;
    w->in = in[1];
    w->out = out[0];
    snprintf(w->tag, sizeof w->tag, "%s", tag);
    char line[128], want[64];
    snprintf(want, sizeof want, "%s READY", tag);
    return read_line(w->out, line, sizeof line, TEST_PATIENCE_MS) > 0 && strncmp(line, want, strlen(want)) == 0;
}

/* Start a ctl worker with a reply pipe of its own. */
static inline bool spawn_ctl(struct worker *w, const char *seg, const char *tenant, const char *tag)
{
    return spawn_ctl_shared(w, seg, tenant, tag, -1, -1);
}

/* Close the test's ends of a worker's pipes (the worker sees EOF and ends). */
static inline void worker_close(struct worker *w)
{
    close(w->in);
    close(w->out);
}

/* Send the one-byte command c ('a', 't', 'r', 'q'). */
static inline void send_cmd(struct worker *w, char c)
{
    ssize_t n = write(w->in, &c, 1);
    (void)n;
}

/* Read the next reply of w: its kind ('A', 'R', 'E') and number, or 0. */
static inline char reply_of(struct worker *w, int *num, unsigned timeout_ms)
{
    char line[128], tag[16], kind;
    if (read_line(w->out, line, sizeof line, timeout_ms) < 0)
        return 0;
    if (sscanf(line, "%15s %c %d", tag, &kind, num) != 3 || strcmp(tag, w->tag) != 0)
        return 0;
    return kind;
}

/* --------------------------------------------------------- segment state */

/* Wait until the segment shows `waiters` queued requests. */
static inline bool wait_waiters(fairsem_t *sem, unsigned waiters, unsigned timeout_ms)
{
    uint64_t end = test_now_ns() + (uint64_t)timeout_ms * 1000000u;
    fairsem_stats_t st;
    while (test_now_ns() < end) {
        if (fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.waiters == waiters)
            return true;
        test_sleep_ms(1);
    }
    return false;
}

/* The tenant called id among n tenant stats, or NULL. */
static inline const fairsem_tenant_stats_t *find_tenant(const fairsem_tenant_stats_t *ts, size_t n,
                                                        const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ts[i].id, id) == 0)
            return &ts[i];
    return NULL;
}

/* ------------------------------------------------------ named test segments */

/* Name seg afresh for `what` (cap bytes) and create it with options o. */
static inline fairsem_t *seg_create_opts(char *seg, size_t cap, const char *what,
                                         const fairsem_options_t *o)
{
    test_name(seg, cap, what);
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(seg, o, &sem), 0);
    return sem;
}

/* The same with max_slots slots and every other option left default. */
static inline fairsem_t *seg_create_named(char *seg, size_t cap, const char *what, unsigned max_slots)
{
    fairsem_options_t o = {.max_slots = max_slots};
    return seg_create_opts(seg, cap, what, &o);
}

/* Close sem, unlink the segment named in seg and forget the name. */
static inline void seg_close_unlink(fairsem_t *sem, char *seg)
{
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(seg, 0), 0);
    seg[0] = '\0';
}

/* Register tenant id (weight 1) on sem. */
static inline fairsem_tenant_t *tenant_reg(fairsem_t *sem, const char *id)
{
    fairsem_tenant_t *t;
    cr_assert_eq(fairsem_tenant_register(sem, id, 1, &t), 0);
    return t;
}

/* Register tenant id (weight 1) on sem and take a slot for it into *s. */
static inline fairsem_tenant_t *tenant_reg_acquire(fairsem_t *sem, const char *id, fairsem_slot_t *s)
{
    fairsem_tenant_t *t = tenant_reg(sem, id);
    cr_assert_eq(fairsem_acquire(t, s), 0);
    return t;
}

/* ---------------------------------------------------- driving ctl workers */

/* Send c to w and expect a reply of kind `want`; its number. */
static inline int worker_expect(struct worker *w, char c, char want)
{
    int num = 0;
    send_cmd(w, c);
    char k = reply_of(w, &num, TEST_PATIENCE_MS);
    cr_assert_eq(k, want, "%s: '%c' got reply '%c', want '%c'", w->tag, c, k ? k : '-', want);
    return num;
}

/* Send 'a' to w and wait until the segment shows `waiters` queued requests. */
static inline void worker_queue(struct worker *w, fairsem_t *sem, unsigned waiters)
{
    send_cmd(w, 'a');
    cr_assert(wait_waiters(sem, waiters, TEST_PATIENCE_MS), "%s did not queue", w->tag);
}

/* SIGKILL w, collect it and close the test's ends of its pipes. */
static inline void worker_kill(struct worker *w)
{
    cr_assert(kill_wait(w->pid), "%s did not die of SIGKILL", w->tag);
    worker_close(w);
}

#endif
