/*
 * test_storm.c - the kill storm, short (about 10 s): 16 worker processes of
 * 4 tenants on 8 slots, one SIGKILLed and replaced every ~10 ms, checked
 * every 100 ms for exclusive slots and fair shares, with strict FIFO and
 * with barging (the default).  See storm.h;
 * long_storm.c runs the same storm for a minute or more.
 */
#include "storm.h"

TestSuite(storm, .fini = storm_cleanup);

/* Barging (the default): rouses, waiters that grant themselves and
 * hand-off marks, killed anywhere. */
Test(storm, kill_storm_short, .timeout = 120)
{
    struct storm_result r;
    storm_run(0, 9000, 300, 30000, &r);
    printf("test_storm: %.1f s, %ld kills, %ld acquisitions, %ld violations\n", r.seconds, r.kills, r.acquisitions,
           r.over_capacity + r.double_held + r.bad_index + r.over_library + r.fairness);
}

/* The same storm with FAIRSEM_STRICT_FIFO: every grant a hand-off. */
Test(storm, kill_storm_strict, .timeout = 120)
{
    struct storm_result r;
    storm_run(FAIRSEM_STRICT_FIFO, 9000, 300, 30000, &r);
    printf("test_storm (strict FIFO): %.1f s, %ld kills, %ld acquisitions, %ld violations\n", r.seconds, r.kills,
           r.acquisitions, r.over_capacity + r.double_held + r.bad_index + r.over_library + r.fairness);
}
