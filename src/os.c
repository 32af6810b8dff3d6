/*
 * os.c - the operating-system seam: clocks, shared futexes, lease locks.
 *
 * Contract: fairsem__futex_wait() may return early (spurious wake, signal,
 * the word already changed); callers re-check the word and their deadline
 * after every return.  Lease locks are OFD locks: owned by the open file
 * description, dropped by the kernel when its last descriptor closes.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* This process's fork generation: bumped in every fork child (segment.c's
 * atfork handler), so a handle, record or request from before the fork
 * tells itself apart by its epoch. */
_Atomic uint64_t fairsem__fork_epoch = 1;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t fairsem__now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t fairsem__realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }

void fairsem__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
    struct timespec rel = {
        .tv_sec = (time_t)(timeout_ns / 1000000000u),
        .tv_nsec = (long)(timeout_ns % 1000000000u),
    };
    /* Shared futex (no FUTEX_PRIVATE_FLAG): wakers live in other processes.
     * EINTR, EAGAIN (word changed) and ETIMEDOUT all mean "look again". */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &rel, NULL, 0);
}

void fairsem__futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
}

static int lease_op(int fd, off_t byte, short type)
{
    struct flock fl = {
        .l_type = type,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    return errno == EACCES ? -EAGAIN : -errno;
}

int fairsem__lease_lock(int fd, off_t byte) { return lease_op(fd, byte, F_WRLCK); }

int fairsem__lease_held(int fd, off_t byte)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = byte,
        .l_len = 1,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}
void fairsem__lease_unlock(int fd, off_t byte) { (void)lease_op(fd, byte, F_UNLCK); }

#ifdef FAIRSEM_CRASHPOINTS
#include <signal.h>
#include <stdio.h>

static long crash_at = -1;
static int crash_signal = SIGKILL;
static int crash_trace_fd = -1;
static _Atomic long crash_passed;

void fairsem__crash_arm(long n, int sig, int trace_fd)
{
    crash_at = n;
    crash_signal = sig;
    crash_trace_fd = trace_fd;
    atomic_store(&crash_passed, 0);
}

void fairsem__crashpoint(const char *where)
{
    long n = atomic_fetch_add(&crash_passed, 1) + 1;
    if (crash_trace_fd >= 0)
        dprintf(crash_trace_fd, "%ld %s\n", n, where);
    if (n == crash_at)
        raise(crash_signal);
}
#endif
