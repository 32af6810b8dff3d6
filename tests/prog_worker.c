/*
 * prog_worker.c - a helper process for the multi-process tests: an
 * unrelated program (fork + exec) attached to a named segment.
 *
 *   prog_worker ctl SEGMENT TENANT TAG
 *       Attach, register TENANT, print "TAG READY <pid>" on stdout, then obey
 *       one-byte commands read from stdin, answering each with one line
 *       (one write(2), so several workers may share one reply pipe):
 *         a  acquire (blocking)      -> "TAG A <slot index>" | "TAG E <rc>"
 *         t  try_acquire             -> "TAG A <slot index>" | "TAG E <rc>"
 *         r  release the newest slot -> "TAG R <slot index>" | "TAG E <rc>"
 *         q  exit 0 (without closing: the process just ends)
 *       EOF on stdin also ends it.
 *
 *   prog_worker loop SEGMENT TENANT EVIDENCE TIDX SHARE HOLD_US MAX_MS
 *       Attach, register TENANT, then acquire / hold HOLD_US / release until
 *       the evidence's stop flag is set (or MAX_MS passed), recording into
 *       the shared-memory object EVIDENCE (struct pw_evidence of
 *       evidence.h, created by the test): concurrent holders overall and
 *       of tenant number TIDX, and violations of max_slots (from the
 *       segment) and of SHARE (only counted while the test has set
 *       check_share).  The counters are raised after an acquire returns
 *       and lowered before the release, so they never exceed the true
 *       number of holders: any count over a limit is a real violation.
 *
 * Exit status: 0 fine; 2 usage; 3 open; 4 register; 5 acquire; 6 release;
 * 7 evidence object unusable; 8 a max_slots violation seen; 9 a share
 * violation seen; 10 the stats call failed.
 */
#define _GNU_SOURCE
#include <fairsem.h>

#include "evidence.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void raise_max(_Atomic int *max, int v)
{
    int m = atomic_load(max);
    while (v > m && !atomic_compare_exchange_weak(max, &m, v))
        ;
}

static void reply(const char *tag, const char *fmt, ...)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s ", tag);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(STDOUT_FILENO, line, (size_t)n) != n)
        _exit(1);
}

static int attach(const char *segment, const char *tenant, fairsem_t **sem, fairsem_tenant_t **t)
{
    int rc = fairsem_open(segment, NULL, sem);
    if (rc < 0) {
        fprintf(stderr, "prog_worker: open %s: %s\n", segment, fairsem_strerror(rc));
        return 3;
    }
    rc = fairsem_tenant_register(*sem, tenant, 1, t);
    if (rc < 0) {
        fprintf(stderr, "prog_worker: register %s: %s\n", tenant, fairsem_strerror(rc));
        return 4;
    }
    return 0;
}

static int run_ctl(const char *segment, const char *tenant, const char *tag)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    int rc = attach(segment, tenant, &sem, &t);
    if (rc)
        return rc;
    fairsem_slot_t held[1024];
    unsigned nheld = 0;
    reply(tag, "READY %d", (int)getpid());
    for (;;) {
        char cmd;
        ssize_t n = read(STDIN_FILENO, &cmd, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || cmd == 'q')
            return 0;
        switch (cmd) {
        case 'a':
        case 't': {
            fairsem_slot_t s;
            rc = cmd == 'a' ? fairsem_acquire(t, &s) : fairsem_try_acquire(t, &s);
            if (rc == 0 && nheld < sizeof held / sizeof held[0]) {
                held[nheld++] = s;
                reply(tag, "A %u", fairsem_slot_index(s));
            } else {
                reply(tag, "E %d", rc);
            }
            break;
        }
        case 'r':
            if (nheld == 0) {
                reply(tag, "E %d", -ENOENT);
                break;
            }
            rc = fairsem_release(t, held[nheld - 1]);
            if (rc == 0) {
                nheld--;
                reply(tag, "R %u", fairsem_slot_index(held[nheld]));
            } else {
                reply(tag, "E %d", rc);
            }
            break;
        default: break; /* newlines and other noise */
        }
    }
}

static int run_loop(char **argv)
{
    const char *segment = argv[0], *tenant = argv[1], *evname = argv[2];
    int tidx = atoi(argv[3]);
    int share = atoi(argv[4]);
    unsigned hold_us = (unsigned)strtoul(argv[5], NULL, 10);
    uint64_t max_ns = strtoull(argv[6], NULL, 10) * 1000000ull;
    if (tidx < 0 || tidx >= PW_MAX_TENANTS || share <= 0)
        return 2;

    struct pw_evidence *ev = evidence_map(evname);
    if (!ev)
        return 7;

    fairsem_t *sem;
    fairsem_tenant_t *t;
    int rc = attach(segment, tenant, &sem, &t);
    if (rc) {
        atomic_fetch_add(&ev->errors, 1);
        return rc;
    }
    fairsem_stats_t st;
    if (fairsem_stats(sem, &st, NULL, 0, NULL) < 0) {
        atomic_fetch_add(&ev->errors, 1);
        return 10;
    }
    int max_slots = (int)st.max_slots;
    atomic_fetch_add(&ev->ready, 1);

    int status = 0;
    uint64_t end = now_ns() + max_ns;
    while (!atomic_load(&ev->stop) && now_ns() < end) {
        fairsem_slot_t s;
        /* Bounded, so a lost wake-up shows as an error instead of a hang
         * (a minute: a busy machine is slow, not wrong). */
        rc = fairsem_acquire_timeout(t, 60000000000ull, &s);
        if (rc < 0) {
            fprintf(stderr, "prog_worker %s: acquire: %s\n", tenant, fairsem_strerror(rc));
            atomic_fetch_add(&ev->errors, 1);
            status = 5;
            break;
        }
        int total = atomic_fetch_add(&ev->total, 1) + 1;
        int mine = atomic_fetch_add(&ev->held[tidx], 1) + 1;
        atomic_fetch_add(&ev->acquisitions[tidx], 1);
        raise_max(&ev->max_total, total);
        if (total > max_slots) {
            atomic_fetch_add(&ev->over_slots, 1);
            status = 8;
        }
        if (atomic_load(&ev->check_share)) {
            raise_max(&ev->max_held[tidx], mine);
            if (mine > share) {
                atomic_fetch_add(&ev->over_share[tidx], 1);
                if (!status)
                    status = 9;
            }
        }
        sleep_us(hold_us);
        atomic_fetch_sub(&ev->held[tidx], 1);
        atomic_fetch_sub(&ev->total, 1);
        rc = fairsem_release(t, s);
        if (rc < 0) {
            fprintf(stderr, "prog_worker %s: release: %s\n", tenant, fairsem_strerror(rc));
            atomic_fetch_add(&ev->errors, 1);
            status = 6;
            break;
        }
    }
    fairsem_close(sem);
    return status;
}

int main(int argc, char **argv)
{
    /* Never outlive the test that started us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 2;
    if (argc == 5 && strcmp(argv[1], "ctl") == 0)
        return run_ctl(argv[2], argv[3], argv[4]);
    if (argc == 9 && strcmp(argv[1], "loop") == 0)
        return run_loop(argv + 2);
    fprintf(stderr, "usage: prog_worker ctl SEGMENT TENANT TAG\n"
                    "       prog_worker loop SEGMENT TENANT EVIDENCE TIDX SHARE HOLD_US MAX_MS\n");
    return 2;
}
