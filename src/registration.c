/*
 * registration.c - registering tenants, and the tenant handles.
 *
 * A tenant entry is found by name (linear probing from its hash, over the
 * whole table, so freed entries never break a chain).  Insertion claims a
 * FREE entry as INIT (tagged with the name's hash and the inserter's
 * record), writes the name, then backs off if any other entry with the same
 * hash exists: two processes inserting the same id at once can never both
 * keep theirs.  A registration sets this process's bit in the entry's
 * column of the registrations region (and of the opens region while it is
 * not unregistered); tenant.c retires an entry nobody registers.  The
 * handle's busy word counts what it holds and queues, so an unregistration
 * completes when the last of them is released.  fairsem_tenant_register
 * and fairsem_tenant_unregister are entry points: they kick the scheduler
 * when what they did lets waiters in (schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local fairsem_tenant_t *current_tenant;

static void pause_briefly(void)
{
    struct timespec ts = {0, 20000 + (rand() % 20000)};
    nanosleep(&ts, NULL);
}

/* How long a registration waits for another process to finish inserting a
 * tenant of the same id (or hash) before it gives up with -EBUSY: an
 * inserter takes microseconds unless it is stopped. */
#define INIT_WAIT_NS (2ull * 1000 * 1000 * 1000)

/* Wait while entry i stays the INIT word `st`; if its inserter died, its
 * scrub (which this may run) frees the entry.  What a scrub here frees is
 * kicked to waiters at once, not when the wait ends: the entry stays INIT
 * while another scrubber holds the dead record's lease, up to INIT_WAIT_NS.
 * False if it is still there after INIT_WAIT_NS (its inserter is alive but
 * stopped, or its scrubber is). */
static bool wait_init(fairsem_t *sem, uint32_t i, uint64_t st)
{
    uint64_t deadline = fairsem__now_ns() + INIT_WAIT_NS;
    for (int spins = 0; atomic_load(&sem->tenants[i].state) == st; spins++) {
        if (spins % 64 == 63 && fs_tenant_proc(st) != sem->proc_idx && fs_tenant_proc(st) < sem->geo.max_procs &&
            fairsem__proc_reap_if_dead(sem, fs_tenant_proc(st), NULL))
            fairsem__kick(sem);
        if (fairsem__now_ns() > deadline && atomic_load(&sem->tenants[i].state) == st)
            return false;
        pause_briefly();
    }
    return true;
}

static bool same_name(const struct fs_tenant *e, const char *id, size_t len)
{
    char name[sizeof e->name];
    fs_name_load(e, name);
    return memcmp(name, id, len) == 0 && name[len] == '\0';
}

/* Could entry j (not `mine`) be the same tenant as id?  A live entry is
 * compared by name; an entry still being inserted only by hash, so two
 * inserters of one id (or of two ids with one hash) both back off and
 * retry after a random pause until one of them gets through alone. */
static bool duplicate_exists(fairsem_t *sem, uint32_t mine, uint32_t hash, const char *id, size_t len)
{
    for (uint32_t j = 0; j < sem->geo.max_tenants; j++) {
        uint64_t st = atomic_load(&sem->tenants[j].state);
        if (j == mine || fs_tenant_kind(st) == FS_TENANT_FREE || fs_tenant_hash(st) != hash)
            continue;
        if (fs_tenant_kind(st) == FS_TENANT_INIT || same_name(&sem->tenants[j], id, len))
            return true;
    }
    return false;
}

/* Find id, or insert it.  Returns its index, or an error. */
static int lookup_or_insert(fairsem_t *sem, const char *id, size_t len, uint32_t hash, unsigned weight)
{
    uint32_t n = sem->geo.max_tenants;
    bool retired = false;
    for (;;) {
        int64_t first_free = -1;
        bool restart = false;
        for (uint32_t k = 0; k < n && !restart; k++) {
            uint32_t i = (hash + k) % n;
            uint64_t st = atomic_load(&sem->tenants[i].state);
            switch (fs_tenant_kind(st)) {
            case FS_TENANT_FREE:
                if (first_free < 0)
                    first_free = i;
                break;
            case FS_TENANT_INIT:
                if (fs_tenant_hash(st) == hash) {
                    if (!wait_init(sem, i, st))
                        return -EBUSY;
                    restart = true;
                }
                break;
            default:
                if (fs_tenant_hash(st) == hash && same_name(&sem->tenants[i], id, len))
                    return (int)i;
            }
        }
        if (restart)
            continue;
        if (first_free < 0) {
            if (retired)
                return FAIRSEM_ETENANTS;
            for (uint32_t i = 0; i < n; i++) /* left by dead or departed processes */
                fairsem__tenant_retire(sem, i);
            retired = true;
            continue;
        }
        uint32_t i = (uint32_t)first_free;
        struct fs_tenant *e = &sem->tenants[i];
        uint64_t st = atomic_load(&e->state);
        if (fs_tenant_kind(st) != FS_TENANT_FREE)
            continue;
        uint64_t init = fs_tenant_state(FS_TENANT_INIT, sem->proc_idx, fs_tenant_gen(st), hash);
        if (!atomic_compare_exchange_strong(&e->state, &st, init))
            continue;
        FS_CRASHPOINT("tenant.init");
        fs_name_store(e, id, len);
        e->hash = hash;
        atomic_store(&e->weight, weight);
        atomic_store(&e->closing, fs_closing_word(fs_tenant_gen(st), false));
        fs_counters_baseline(sem, i);
        FS_CRASHPOINT("tenant.named");
        uint64_t next = duplicate_exists(sem, i, hash, id, len)
                            ? fs_tenant_state(FS_TENANT_FREE, 0, fs_tenant_gen(st) + 1, 0)
                            : fs_tenant_state(FS_TENANT_ACTIVE, 0, fs_tenant_gen(st), hash);
        if (!atomic_compare_exchange_strong(&e->state, &init, next) || fs_tenant_kind(next) == FS_TENANT_FREE) {
            pause_briefly();
            continue;
        }
        FS_CRASHPOINT("tenant.active");
        return (int)i;
    }
}

/* This process's count of registrations of t (`counts`: local_refs, or
 * local_open for those not unregistered); the bit of its row in `bits`
 * (regs, or opens) follows the count's 0 <-> 1 transitions.  -1 marks a
 * transition in progress (another thread of this process). */
struct local_count {
    _Atomic int32_t *counts;
    _Atomic uint64_t *bits;
    const char *set_point, *cleared_point; /* crash points */
};

static struct local_count registrations(const fairsem_t *sem)
{
    return (struct local_count){sem->local_refs, sem->regs, "register.bit_set", "unregister.bit_cleared"};
}

static struct local_count open_registrations(const fairsem_t *sem)
{
    return (struct local_count){sem->local_open, sem->opens, "register.opened", "unregister.closed"};
}

static _Atomic uint64_t *count_word(const fairsem_t *sem, const struct local_count *lc, uint32_t t)
{
    return &fs_row(lc->bits, sem->geo.reg_words, sem->proc_idx)[t / 64];
}

/* Returns true when this was the process's first such registration of t. */
static bool local_count_get(fairsem_t *sem, struct local_count lc, uint32_t t)
{
    _Atomic int32_t *r = &lc.counts[t];
    for (;;) {
        int32_t v = atomic_load(r);
        if (v < 0) {
            sched_yield();
        } else if (v == 0) {
            if (atomic_compare_exchange_weak(r, &v, -1)) {
                atomic_fetch_or(count_word(sem, &lc, t), fs_bit(t));
                FS_CRASHPOINT(lc.set_point);
                atomic_store(r, 1);
                return true;
            }
        } else if (atomic_compare_exchange_weak(r, &v, v + 1)) {
            return false;
        }
    }
}

/* Returns true when this was the process's last such registration of t. */
static bool local_count_put(fairsem_t *sem, struct local_count lc, uint32_t t)
{
    _Atomic int32_t *r = &lc.counts[t];
    for (;;) {
        int32_t v = atomic_load(r);
        if (v < 0) {
            sched_yield();
        } else if (v == 1) {
            if (atomic_compare_exchange_weak(r, &v, -1)) {
                atomic_fetch_and(count_word(sem, &lc, t), ~fs_bit(t));
                FS_CRASHPOINT(lc.cleared_point);
                atomic_store(r, 0);
                return true;
            }
        } else if (v == 0) {
            return false;
        } else if (atomic_compare_exchange_weak(r, &v, v - 1)) {
            return false;
        }
    }
}

/* A registration of t through this process opens, or closes (unregistered:
 * the slots it holds no longer make t demanding). */
static void registration_opens(fairsem_t *sem, uint32_t t)
{
    if (local_count_get(sem, open_registrations(sem), t))
        fairsem__tenant_settle_closing(sem, t);
}

/* True if t became closing (shares grow: the caller kicks). */
static bool registration_closes(fairsem_t *sem, uint32_t t)
{
    return local_count_put(sem, open_registrations(sem), t) && fairsem__tenant_settle_closing(sem, t);
}

/* Find or create the entry and hold a registration on it.  *kick: the
 * weight changed (a dead inserter reaped on the way is kicked at once). */
static int register_index(fairsem_t *sem, const char *id, size_t len, unsigned weight, uint32_t *out, bool *kick)
{
    uint32_t hash = fs_hash(id, len);
    for (;;) {
        int idx = lookup_or_insert(sem, id, len, hash, weight);
        if (idx < 0)
            return idx;
        struct fs_tenant *e = &sem->tenants[idx];
        local_count_get(sem, registrations(sem), (uint32_t)idx);
        /* Our bit is set: from now on the entry cannot be retired, so if it
         * is (still) this tenant, it stays this tenant. */
        uint64_t st = atomic_load(&e->state);
        for (;;) {
            bool live = fs_tenant_live(st);
            if (!live || fs_tenant_hash(st) != hash || !same_name(e, id, len))
                break;
            if (fs_tenant_kind(st) == FS_TENANT_ACTIVE) {
                registration_opens(sem, (uint32_t)idx);
                *kick |= fairsem__tenant_set_weight(sem, (uint32_t)idx, weight);
                *out = (uint32_t)idx;
                return 0;
            }
            /* DYING: take it back from the retirer. */
            atomic_compare_exchange_strong(&e->state, &st,
                                           fs_tenant_state(FS_TENANT_ACTIVE, 0, fs_tenant_gen(st), hash));
        }
        if (local_count_put(sem, registrations(sem), (uint32_t)idx))
            fairsem__tenant_retire(sem, (uint32_t)idx);
    }
}

static int check_id(const char *id, size_t *len)
{
    if (!id || !id[0])
        return -EINVAL;
    *len = strnlen(id, FAIRSEM_TENANT_ID_MAX + 1);
    return *len > FAIRSEM_TENANT_ID_MAX ? -ENAMETOOLONG : 0;
}

int fairsem_tenant_register(fairsem_t *sem, const char *tenant_id, unsigned weight, fairsem_tenant_t **out)
{
    size_t len;
    int rc;
    if (!sem || !out)
        return -EINVAL;
    if ((rc = check_id(tenant_id, &len)) < 0)
        return rc;
    bool kick = false;
    if ((rc = fairsem__attach(sem, &kick)) < 0)
        return rc;
    fairsem_tenant_t *t = calloc(1, sizeof *t);
    if (!t) {
        rc = -ENOMEM;
        goto out;
    }
    t->sem = sem;
    t->weight = weight ? weight : 1;
    memcpy(t->id, tenant_id, len);
    t->serial = atomic_fetch_add(&sem->next_serial, 1) + 1;
    if ((rc = register_index(sem, t->id, len, t->weight, &t->idx, &kick)) < 0) {
        free(t);
        goto out;
    }
    t->epoch = sem->attach_epoch;
    pthread_mutex_lock(&sem->attach_lock);
    t->next = sem->tenant_list;
    if (t->next)
        t->next->prev = t;
    sem->tenant_list = t;
    pthread_mutex_unlock(&sem->attach_lock);
    *out = t;
out:
    if (kick)
        fairsem__kick(sem);
    return rc;
}

/* The first use of an inherited handle in a fork child, a step of the
 * acquire or request_start calling it; it kicks, before their newcomer's
 * decision, what attaching or registering made more permissive.  Cold: it
 * runs once per handle and fork, and kept out of fairsem__tenant_busy_get
 * it costs the acquire path nothing. */
__attribute__((cold, noinline)) static int adopt(fairsem_tenant_t *t)
{
    fairsem_t *sem = t->sem;
    bool kick = false;
    int rc = fairsem__attach(sem, &kick);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&sem->attach_lock);
    if (atomic_load(&t->busy) & FS_BUSY_CLOSING) {
        rc = FAIRSEM_ENOTREG; /* unregistered here before its first use */
    } else if (t->epoch != sem->attach_epoch) {
        rc = register_index(sem, t->id, strlen(t->id), t->weight, &t->idx, &kick);
        if (rc == 0) {
            /* The parent's slots and requests are not ours. */
            atomic_store(&t->busy, atomic_load(&t->busy) & (FS_BUSY_CLOSING | FS_BUSY_FORCED));
            t->epoch = sem->attach_epoch;
        }
    }
    pthread_mutex_unlock(&sem->attach_lock);
    if (kick)
        fairsem__kick(sem);
    return rc;
}

/* The registration ends: called exactly once per handle, by whoever moved
 * its busy word to "closing with nothing held or queued".  The handle's
 * memory stays valid (fairsem_tenant_free() or fairsem_close() frees it),
 * so threads still calling through it read FAIRSEM_ENOTREG from live
 * memory. */
void fairsem__tenant_finish(fairsem_tenant_t *t)
{
    fairsem_t *sem = t->sem;
    if (current_tenant == t)
        current_tenant = NULL;
    bool ours = t->epoch == sem->attach_epoch && sem->attach_epoch == atomic_load(&fairsem__fork_epoch);
    if (ours && local_count_put(sem, registrations(sem), t->idx))
        fairsem__tenant_retire(sem, t->idx);
    atomic_store_explicit(&t->finished, true, memory_order_release);
}

int fairsem__tenant_busy_get(fairsem_tenant_t *t)
{
    if (t->epoch != atomic_load_explicit(&fairsem__fork_epoch, memory_order_relaxed)) {
        int rc = adopt(t);
        if (rc < 0)
            return rc;
    }
    /* A CAS, not fetch_add: once the closing bit is set the count must only
     * fall, or two callers could both see it reach zero and finish twice. */
    uint64_t b = atomic_load(&t->busy);
    do {
        if (b & FS_BUSY_CLOSING)
            return FAIRSEM_ENOTREG;
    } while (!atomic_compare_exchange_weak(&t->busy, &b, b + FS_BUSY_ONE));
    return 0;
}

void fairsem__tenant_busy_put(fairsem_tenant_t *t)
{
    uint64_t old = atomic_fetch_sub(&t->busy, FS_BUSY_ONE);
    if ((old & ~(uint64_t)FS_BUSY_FORCED) == (FS_BUSY_ONE | FS_BUSY_CLOSING))
        fairsem__tenant_finish(t); /* deferred unregistration completes */
}

/* Set the closing bit (and FS_BUSY_FORCED with `forced`) unless it is set
 * already, and count one more unit of busy for the caller: the
 * registration cannot end (finish) under it while it does the rest of the
 * unregistration; it drops the unit with fairsem__tenant_busy_put.  False if
 * the handle was closing already. */
static bool begin_closing(fairsem_tenant_t *t, bool forced)
{
    uint64_t b = atomic_load(&t->busy);
    uint64_t bits = FS_BUSY_CLOSING | (forced ? FS_BUSY_FORCED : 0);
    do {
        if (b & FS_BUSY_CLOSING)
            return false;
    } while (!atomic_compare_exchange_weak(&t->busy, &b, (b | bits) + FS_BUSY_ONE));
    return true;
}

static bool inherited(const fairsem_tenant_t *t) { return t->epoch != atomic_load(&fairsem__fork_epoch); }

int fairsem_tenant_unregister(fairsem_tenant_t *t, unsigned flags)
{
    if (!t || (flags & ~(FAIRSEM_FORCE | FAIRSEM_IF_IDLE)))
        return -EINVAL;
    fairsem_t *sem = t->sem;
    if (inherited(t)) {
        /* Inherited from the parent and never used here: this process
         * holds and waits for nothing through it; the parent's requests
         * are the parent's.  Decided under attach_lock, which a first use
         * (adopt) also takes. */
        pthread_mutex_lock(&sem->attach_lock);
        if (inherited(t)) {
            bool first = begin_closing(t, false);
            if (first)
                fairsem__tenant_finish(t);
            pthread_mutex_unlock(&sem->attach_lock);
            return first ? 0 : FAIRSEM_ENOTREG;
        }
        pthread_mutex_unlock(&sem->attach_lock);
    }
    if (flags & FAIRSEM_IF_IDLE) {
        uint64_t idle = 0;
        if (!atomic_compare_exchange_strong(&t->busy, &idle, FS_BUSY_CLOSING | FS_BUSY_ONE))
            return (idle & FS_BUSY_CLOSING) ? FAIRSEM_ENOTREG : -EBUSY;
    } else if (!begin_closing(t, flags & FAIRSEM_FORCE)) {
        return FAIRSEM_ENOTREG;
    }
    /* Requests that enqueue from now on see FS_BUSY_FORCED and cancel
     * themselves (ticket.c, publish); this catches the ones already in,
     * before any scheduling below could grant one of them. */
    bool kick = (flags & FAIRSEM_FORCE) && fairsem__ticket_cancel_serial(sem, t->serial) > 0;
    /* At once, even while its slots are still held: as in aio-fairshare,
     * an unregistered tenant stops counting as demanding. */
    kick |= registration_closes(sem, t->idx);
    if (kick)
        fairsem__kick(sem);
    fairsem__tenant_busy_put(t); /* ends the registration if it is idle */
    return 0;
}

int fairsem_tenant_free(fairsem_tenant_t *t)
{
    if (!t)
        return -EINVAL;
    fairsem_t *sem = t->sem;
    if (inherited(t)) {
        /* The parent's registration: nothing of it is this process's to
         * wait for.  Only the memory is. */
        fairsem_tenant_unregister(t, 0);
    } else {
        int rc = fairsem_tenant_unregister(t, FAIRSEM_IF_IDLE);
        if (rc == -EBUSY || (rc == FAIRSEM_ENOTREG && atomic_load(&t->busy) >= FS_BUSY_ONE))
            return -EBUSY;
        /* Unregistered and idle: the busy word says so before the thread
         * that emptied it has finished the registration; wait for it (a few
         * local steps, never another process). */
        while (!atomic_load_explicit(&t->finished, memory_order_acquire))
            sched_yield();
    }
    pthread_mutex_lock(&sem->attach_lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        sem->tenant_list = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&sem->attach_lock);
    free(t);
    return 0;
}

void fairsem_tenant_set_current(fairsem_tenant_t *tenant) { current_tenant = tenant; }
fairsem_tenant_t *fairsem_tenant_current(void) { return current_tenant; }
const char *fairsem_tenant_id(const fairsem_tenant_t *tenant) { return tenant ? tenant->id : NULL; }
