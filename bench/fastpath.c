/*
 * fastpath.c - N uncontended acquire+release pairs on an anonymous
 * fairsem segment, for bench/callgrind.sh (deterministic instruction count).
 *
 *   fairsem-fastpath [pairs] [max_slots] [waiters]
 *
 * With waiters > 0 the segment has max_slots + 1 slots and a share rule
 * that gives every tenant 1: tenant W holds one slot and queues `waiters`
 * requests (event-loop API) that stay queued while tenant M, measured,
 * takes and gives back another slot.
 */
#include <fairsem.h>

#include <stdio.h>
#include <stdlib.h>

static unsigned share_one(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)max_slots, (void)demanding, (void)arg;
    return 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    unsigned slots = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    unsigned waiters = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    fairsem_options_t o = {.max_slots = slots};
    if (waiters) {
        o.max_slots = slots + 1;
        o.max_waiters = waiters + 64;
        o.share_fn_name = "bench-one";
        o.share_fn = share_one;
    }
    fairsem_t *sem;
    fairsem_tenant_t *t, *w;
    fairsem_request_t **reqs = NULL;
    int rc = fairsem_open_anonymous(&o, &sem);
    if (rc == 0)
        rc = fairsem_tenant_register(sem, "fastpath", 1, &t);
    if (rc == 0 && waiters) {
        fairsem_slot_t s;
        reqs = calloc(waiters, sizeof *reqs);
        rc = fairsem_tenant_register(sem, "W", 1, &w);
        if (rc == 0)
            rc = fairsem_acquire(w, &s);
        for (unsigned i = 0; rc == 0 && i < waiters; i++)
            rc = fairsem_request_start(w, NULL, &reqs[i]);
    }
    if (rc < 0) {
        fprintf(stderr, "fairsem-fastpath: %s\n", fairsem_strerror(rc));
        return 1;
    }
    for (long i = 0; i < n; i++) {
        fairsem_slot_t s;
        if ((rc = fairsem_acquire(t, &s)) < 0 || (rc = fairsem_release(t, s)) < 0) {
            fprintf(stderr, "fairsem-fastpath: %s\n", fairsem_strerror(rc));
            return 1;
        }
    }
    for (unsigned i = 0; reqs && i < waiters; i++)
        fairsem_request_free(reqs[i]);
    free(reqs);
    fairsem_close(sem);
    printf("pairs=%ld slots=%u waiters=%u\n", n, slots, waiters);
    return 0;
}
