/*
 * counters.c - fairsem_counters(): what the pool and each tenant did (the
 * counts themselves are taken by the modules that act, with the inline
 * helpers of internal.h, "counting").
 *
 * Each tenant entry index has a lifetime block, only ever incremented, and
 * a baseline block its inserter copies from it (layout.h, "counters").  A
 * tenant reads lifetime - baseline; the pool reads the sum of the lifetime
 * blocks, so a retired entry's counts stay in the pool's and nothing ever
 * has to be folded from one word into another.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t fairsem_wait_bucket_bound_ns(unsigned k) { return fs_wait_bucket_bound(k); }

#define TENANT_TRIES 4

/* Tenant t's counters (lifetime - baseline), read between two equal reads
 * of its state word so the baseline is its current incarnation's (an
 * inserter writes it while INIT, before the entry turns ACTIVE).  False if
 * t is not a live entry, or kept changing (TENANT_TRIES times). */
static bool tenant_counts(const fairsem_t *sem, uint32_t t, char id[FAIRSEM_TENANT_ID_MAX + 1],
                          uint64_t out[FS_COUNTER_WORDS])
{
    struct fs_tenant_counters *c = &sem->counters[t];
    for (int k = 0; k < TENANT_TRIES; k++) {
        uint64_t st = fairsem__tenant_name(sem, t, id);
        if (!st)
            return false;
        for (unsigned w = 0; w < FS_COUNTER_WORDS; w++) {
            uint64_t base = atomic_load_explicit(&c->baseline.word[w], memory_order_relaxed);
            uint64_t life = atomic_load_explicit(&c->lifetime.word[w], memory_order_relaxed);
            out[w] = life > base ? life - base : 0; /* below: only a corrupt word */
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load(&sem->tenants[t].state) == st)
            return true;
    }
    return false;
}

/* Age of the oldest waiting request, of the pool and of each tenant
 * (oldest[t], for t < max_tenants). */
static uint64_t oldest_waits(const fairsem_t *sem, uint64_t *oldest)
{
    uint64_t now = fairsem__now_ns(), pool = 0;
    for (uint32_t k = 0; k < sem->geo.map_words; k++) {
        for (uint64_t bits = atomic_load(&sem->map[k]); bits; bits &= bits - 1) {
            uint32_t c = k * 64 + (uint32_t)__builtin_ctzll(bits);
            if (c >= sem->geo.max_waiters)
                break;
            struct fs_cell *cell = &sem->cells[c];
            if (fs_cell_kind(atomic_load(&cell->state)) != FS_CELL_WAITING)
                continue;
            uint64_t since = atomic_load(&cell->enqueued_ns);
            uint64_t age = now > since ? now - since : 0;
            uint32_t t = atomic_load(&cell->tenant);
            if (age > pool)
                pool = age;
            if (t < sem->geo.max_tenants && age > oldest[t])
                oldest[t] = age;
        }
    }
    return pool;
}

int fairsem_counters(fairsem_t *sem, fairsem_counters_t *pool, uint64_t *oldest_wait_ns,
                     fairsem_tenant_counters_t *tenants, size_t cap, size_t *count)
{
    if (!sem || !pool || (cap && !tenants))
        return -EINVAL;
    uint64_t *oldest = calloc(sem->geo.max_tenants, sizeof *oldest);
    if (!oldest)
        return -ENOMEM;
    uint64_t pool_oldest = oldest_waits(sem, oldest);
    uint64_t sum[FS_COUNTER_WORDS] = {0};
    size_t n = 0;
    for (uint32_t t = 0; t < sem->geo.max_tenants; t++) {
        for (unsigned w = 0; w < FS_COUNTER_WORDS; w++)
            sum[w] += atomic_load_explicit(&sem->counters[t].lifetime.word[w], memory_order_relaxed);
        char id[FAIRSEM_TENANT_ID_MAX + 1];
        uint64_t mine[FS_COUNTER_WORDS];
        if (!tenant_counts(sem, t, id, mine))
            continue;
        if (n < cap) {
            memcpy(tenants[n].id, id, sizeof tenants[n].id);
            memcpy(&tenants[n].counters, mine, sizeof mine);
            tenants[n].oldest_wait_ns = oldest[t];
        }
        n++;
    }
    free(oldest);
    memcpy(pool, sum, sizeof sum);
    if (oldest_wait_ns)
        *oldest_wait_ns = pool_oldest;
    if (count)
        *count = n;
    return 0;
}
