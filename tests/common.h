/* Helpers shared by the tests. */
#ifndef FAIRSEM_TEST_COMMON_H
#define FAIRSEM_TEST_COMMON_H

#include <fairsem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* A segment name no other test (or parallel Criterion worker) uses. */
static inline const char *test_name(char *buf, size_t n, const char *what)
{
    static _Atomic unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, n, "/fstest-%s-%d-%u-%ld", what, (int)getpid(), atomic_fetch_add(&counter, 1),
             (long)(ts.tv_nsec % 100000));
    return buf;
}

/* How long a test waits for something that must happen.  A busy machine is
 * slow, not wrong: this bounds only how long a broken test takes to fail,
 * and no test's verdict otherwise depends on it. */
#define TEST_PATIENCE_MS 60000u
#define TEST_PATIENCE_NS (TEST_PATIENCE_MS * 1000000ull)

static inline uint64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void test_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
