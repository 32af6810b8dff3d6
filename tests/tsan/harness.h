/*
 * harness.h - what the ThreadSanitizer programs share: a unique segment,
 * failure reporting (a program exits 1 on the first wrong result; TSan
 * itself ends it on the first race with halt_on_error=1), and the final
 * check that the pool is whole again.
 *
 * These programs are plain C with pthreads, not Criterion (whose runner
 * cannot run under TSan).  No forked children, no timing: threads meet
 * through atomics and joins; the only clock is a generous deadline that
 * turns a lost completion into a failure instead of a hang.
 */
#ifndef FAIRSEM_TSAN_HARNESS_H
#define FAIRSEM_TSAN_HARNESS_H

#define _GNU_SOURCE
#include <fairsem.h>
#include <sanitizer/common_interface_defs.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char harness_segment[64];

/* Report a wrong result, remove the segment and end the program. */
static inline void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (harness_segment[0])
        fairsem_unlink(harness_segment, FAIRSEM_UNLINK_FORCE);
    _exit(1);
}

/* Expect rc == want from the call described by what. */
static inline void expect(int rc, int want, const char *what)
{
    if (rc != want)
        fail("%s returned %s, want %s", what, fairsem_err_name(rc), fairsem_err_name(want));
}

static inline uint64_t harness_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Let other threads run while waiting for a state they will reach. */
static inline void harness_nap(void)
{
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
}

/* TSan ends the program on its first report (halt_on_error): remove the
 * segment on the way out. */
static inline void harness_unlink_segment(void)
{
    if (harness_segment[0])
        fairsem_unlink(harness_segment, FAIRSEM_UNLINK_FORCE);
}

/* Create this program's segment (named after the program and its pid). */
static inline fairsem_t *harness_create(const char *what, const fairsem_options_t *o)
{
    snprintf(harness_segment, sizeof harness_segment, "/fstsan-%s-%d", what, (int)getpid());
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
    __sanitizer_set_death_callback(harness_unlink_segment);
#endif
#endif
    fairsem_t *sem;
    expect(fairsem_create(harness_segment, o, &sem), 0, "fairsem_create");
    return sem;
}

static inline fairsem_tenant_t *harness_register(fairsem_t *sem, const char *id)
{
    fairsem_tenant_t *t;
    expect(fairsem_tenant_register(sem, id, 1, &t), 0, "fairsem_tenant_register");
    return t;
}

static inline void harness_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    if (pthread_create(th, NULL, fn, arg) != 0)
        fail("pthread_create");
}

static inline void on_violation(void *arg, unsigned kind, const char *message)
{
    (void)arg;
    fprintf(stderr, "violation %#x: %s\n", kind, message);
}

/* Every slot free, nobody queued, every invariant holding; then close and
 * unlink. */
static inline void harness_finish(fairsem_t *sem)
{
    fairsem_stats_t st;
    expect(fairsem_stats(sem, &st, NULL, 0, NULL), 0, "fairsem_stats");
    if (st.slots_in_use != 0 || st.slots_available != st.max_slots || st.waiters != 0)
        fail("pool not whole at the end: %u in use, %u of %u available, %u waiting", st.slots_in_use,
             st.slots_available, st.max_slots, st.waiters);
    int bad = fairsem_check(sem, on_violation, NULL);
    if (bad != 0)
        fail("fairsem_check found violations %#x", bad);
    fairsem_close(sem);
    expect(fairsem_unlink(harness_segment, 0), 0, "fairsem_unlink");
}

#endif
