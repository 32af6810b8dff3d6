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
