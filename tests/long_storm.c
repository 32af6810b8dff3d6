/*
 * long_storm.c - the kill storm, long (ctest -L long): at least 60 s and at
 * least 3000 kills of 16 worker processes of 4 tenants on 8 slots, checked
 * every 100 ms for exclusive slots and fair shares, with strict FIFO and
 * with barging (the default).  See storm.h.
 */
#include "storm.h"

TestSuite(storm, .fini = storm_cleanup);

Test(storm, kill_storm_long_strict, .timeout = 900)
{
    struct storm_result r;
    storm_run(FAIRSEM_STRICT_FIFO, 60000, 3000, 600000, &r);
    printf("long_storm (strict FIFO): %.1f s, %ld kills, %ld acquisitions, %ld violations\n", r.seconds, r.kills,
           r.acquisitions, r.over_capacity + r.double_held + r.bad_index + r.over_library + r.fairness);
}

Test(storm, kill_storm_long, .timeout = 900)
{
    struct storm_result r;
    storm_run(0, 60000, 3000, 600000, &r);
    printf("long_storm: %.1f s, %ld kills, %ld acquisitions, %ld violations\n", r.seconds, r.kills, r.acquisitions,
           r.over_capacity + r.double_held + r.bad_index + r.over_library + r.fairness);
}
