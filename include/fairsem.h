/*
 * fairsem.h - a fair-share semaphore shared by unrelated processes.
 *
 * A fixed pool of `max_slots` slots lives in a POSIX shared-memory segment
 * and is divided fairly among the tenants that currently want slots.  Every
 * attached process runs the algorithm itself (there is no daemon); any of
 * them may die at any instruction without costing the others a slot.
 *
 * Conventions:
 *  - Every function that can fail returns 0 on success or a negative error:
 *    a negative errno where one fits, or one of the FAIRSEM_E* codes below
 *    (a reserved range that no errno reaches).  fairsem_strerror() and
 *    fairsem_err_name() describe any of them.
 *  - Handles are opaque.  A fairsem_t and the fairsem_tenant_t registered
 *    through it may be used from any number of threads at once.
 *  - After fork(), the child holds nothing of its parent's (no slot, no
 *    queued request, no registration) and may go on using the handles it
 *    inherited: it attaches on its first call.  A tenant handle inherited
 *    from the parent is registered again, for the child, on first use.
 *  - Write access to a segment is trust: the library survives any content a
 *    writer leaves in it (calls return, deadlines hold; fairsem_check()
 *    reports what it cannot explain, fairsem_reap() resets what nobody
 *    owns), but a writer that truncates the file makes every attached
 *    process die of SIGBUS on its next access past the new end, as with
 *    any shared mapping.  Give untrusted users no write permission (mode).
 *
 * This header is the whole public API; it compiles alone as C and C++.
 */
#ifndef FAIRSEM_H
#define FAIRSEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FAIRSEM_BUILDING) && defined(__GNUC__)
#define FAIRSEM_EXTERN __attribute__((visibility("default")))
#else
#define FAIRSEM_EXTERN
#endif

#define FAIRSEM_VERSION_MAJOR 0
#define FAIRSEM_VERSION_MINOR 1
#define FAIRSEM_VERSION_PATCH 0

/** Longest tenant id, in bytes, not counting the terminating NUL. */
#define FAIRSEM_TENANT_ID_MAX 63
/** Longest share-rule name, in bytes, not counting the terminating NUL. */
#define FAIRSEM_RULE_NAME_MAX 31
/** Longest segment name, leading '/' included. */
#define FAIRSEM_NAME_MAX 255

/** Upper bounds of the capacities in fairsem_options_t. */
#define FAIRSEM_MAX_SLOTS_LIMIT 65535u
#define FAIRSEM_MAX_TENANTS_LIMIT 4095u
#define FAIRSEM_MAX_WAITERS_LIMIT 4095u
#define FAIRSEM_MAX_PROCS_LIMIT 4095u

/** Defaults used when a capacity in fairsem_options_t is 0. */
#define FAIRSEM_DEFAULT_MAX_TENANTS 64u
#define FAIRSEM_DEFAULT_MAX_WAITERS 256u
#define FAIRSEM_DEFAULT_MAX_PROCS 128u

/* fairsem_options_t.flags */
/** Lend free slots to tenants at their share when nobody under share waits. */
#define FAIRSEM_WORK_CONSERVING 0x1u
/** Strict FIFO: a release reserves its slot for the oldest eligible waiter,
 * which gets it even if a running caller could have used it at once.
 * Without this flag (the default: barging with a starvation bound) a release
 * frees its slot and wakes the oldest eligible waiter instead, and a running
 * caller under its share (a new acquire, or a waiter that is awake) may take
 * the free slot first; the oldest eligible waiter is handed its slot
 * directly, as with this flag, once it has waited FAIRSEM_HANDOFF_NS, once
 * it has lost one race after being woken, and always if it is an event-loop
 * request.  Shares stay exact either way; only which of the tenants under
 * their share goes first changes.  Holds much longer than the bound (browser
 * tabs: seconds) see strict FIFO either way. */
#define FAIRSEM_STRICT_FIFO 0x2u
/** The starvation bound of barging (1 ms, as Go's sync.Mutex). */
#define FAIRSEM_HANDOFF_NS 1000000u

/* fairsem_open() local->flags */
/** Open for reading only (stats, info, dump, check need only read
 * permission); no process record is taken; acquire, register and reap fail
 * with -EPERM. */
#define FAIRSEM_READONLY 0x10000u

/* fairsem_unlink() flags */
/** Remove the name even while live processes are attached to it. */
#define FAIRSEM_UNLINK_FORCE 0x1u

/* fairsem_tenant_unregister() flags */
/** Cancel this registration's queued requests (they fail with -ECANCELED). */
#define FAIRSEM_FORCE 0x1u
/** Fail with -EBUSY instead of deferring when slots are held or awaited. */
#define FAIRSEM_IF_IDLE 0x2u

/*
 * The project's own error codes.  They are negative, like the negative errno
 * values the API also returns, and far below any errno.
 */
#define FAIRSEM_ERRNO_MAP(X)                                               \
    X(ENOTREG, -4001, "tenant is not registered through this handle")      \
    X(ETENANTS, -4002, "tenant table of the segment is full")              \
    X(EWAITERS, -4003, "wait queue of the segment is full")                \
    X(EPROCS, -4004, "process table of the segment is full")               \
    X(EMAGIC, -4005, "not a fairsem segment (bad magic)")                  \
    X(EVERSION, -4006, "segment layout version differs from this library") \
    X(ECORRUPT, -4007, "segment is corrupt")                               \
    X(EUNLINKED, -4008, "segment was unlinked while in use")               \
    X(ERULE, -4009, "share rule differs from the one the segment records") \
    X(ESLOT, -4010, "slot is not held through this tenant handle")         \
    X(EINIT, -4011, "segment is still being initialised")                  \
    X(EATTACHED, -4012, "live processes are attached to the segment")

enum {
#define FAIRSEM_ERRNO_ENUM(name, value, text) FAIRSEM_##name = (value),
    FAIRSEM_ERRNO_MAP(FAIRSEM_ERRNO_ENUM)
#undef FAIRSEM_ERRNO_ENUM
};

/** This process's handle on a segment. */
typedef struct fairsem fairsem_t;
/** This process's registration of one tenant on one handle. */
typedef struct fairsem_tenant fairsem_tenant_t;
/** A request queued through the event-loop API. */
typedef struct fairsem_request fairsem_request_t;
/** What an acquire hands out; pass it back to fairsem_release(). */
typedef struct fairsem_slot {
    uint64_t tag;
} fairsem_slot_t;

/**
 * A custom share rule: the share of each demanding tenant when `demanding`
 * tenants want slots out of `max_slots`.  The result is capped at max_slots
 * and raised to min_share.  fairsem_create() calls it once for every
 * `demanding` from 1 to max_tenants and stores the answers in the segment
 * with the rule's name, so no other process needs the function: every
 * process and tool computes the same shares from the stored table.  It is
 * called only inside fairsem_create(), fairsem_open_anonymous() and (to
 * verify a rule an opener brings) fairsem_open(), on the calling thread.
 */
typedef unsigned (*fairsem_share_fn)(unsigned max_slots, unsigned demanding, void *arg);

typedef struct fairsem_options {
    unsigned max_slots;                           /**< required, 1..FAIRSEM_MAX_SLOTS_LIMIT */
    unsigned min_share;                           /**< 0 = default 1; at most max_slots */
    unsigned max_tenants, max_waiters, max_procs; /**< 0 = defaults */
    unsigned flags;                               /**< FAIRSEM_WORK_CONSERVING, FAIRSEM_STRICT_FIFO */
    unsigned mode;                                /**< permission bits; 0 = 0600 */
    const char *share_fn_name;                    /**< NULL = built-in (weighted) rule */
    fairsem_share_fn share_fn;                    /**< required with share_fn_name to create */
    void *share_fn_arg;                           /**< passed to share_fn */
} fairsem_options_t;

typedef struct fairsem_stats {
    unsigned max_slots;
    unsigned min_share;
    unsigned flags;              /**< the segment's FAIRSEM_WORK_CONSERVING, FAIRSEM_STRICT_FIFO */
    unsigned registered_tenants; /**< tenants some process has registered
                                      and not unregistered */
    unsigned demanding_tenants;  /**< tenants waiting, or holding while
                                      still registered somewhere */
    unsigned slots_in_use;
    unsigned slots_available;
    unsigned waiters;        /**< queued requests not yet granted */
    unsigned attached_procs; /**< process records in use */
} fairsem_stats_t;

/** One tenant that is registered somewhere or waits.  A closing tenant
 * (every registration unregistered, some slots still held) is not listed
 * and does not count as demanding: the slots it holds count only in
 * slots_in_use, as in aio-fairshare.  Registering it again brings it back,
 * with those slots counted as its own. */
typedef struct fairsem_tenant_stats {
    char id[FAIRSEM_TENANT_ID_MAX + 1];
    unsigned held;
    unsigned waiting;
    unsigned share; /**< share it has (or would have) now */
    unsigned weight;
    unsigned registrations; /**< processes that have it registered (and
                                  not unregistered) */
} fairsem_tenant_stats_t;

typedef struct fairsem_reap_report {
    unsigned procs;         /**< dead process records scrubbed */
    unsigned slots;         /**< slots returned to the pool */
    unsigned tickets;       /**< queued requests dropped */
    unsigned registrations; /**< tenant registrations dropped */
    unsigned repaired;      /**< corrupt words reset: slot words, queue cells
                                 and tenant entries that no live or dead
                                 process will ever act on (slots among them
                                 also count in `slots`) */
} fairsem_reap_report_t;

/* ---------------------------------------------------------------- segments */

/**
 * Create the segment `name` and attach to it.
 *
 * @param name  "/something": one leading '/', no other '/', at most
 *              FAIRSEM_NAME_MAX bytes, and not "/." or "/.." (-EINVAL here,
 *              in fairsem_open() and in fairsem_unlink() alike).
 * @param opts  settings of the new segment (max_slots is required).
 * @param out   receives the handle.
 * @return 0; -EINVAL (NULL argument, bad name, max_slots 0, min_share above
 *         max_slots, a capacity over its limit, unknown flag, share_fn_name
 *         without share_fn or too long); -ENAMETOOLONG; -EEXIST (a segment of
 *         that name exists); -EACCES; -ENOSPC (no room in /dev/shm);
 *         -ENOMEM; FAIRSEM_EPROCS (attaching: no free process record);
 *         another negative errno from open, posix_fallocate, mmap or linkat.
 */
FAIRSEM_EXTERN int fairsem_create(const char *name, const fairsem_options_t *opts, fairsem_t **out);

/**
 * Attach to the existing segment `name`.
 *
 * @param local  may be NULL (the segment's own rule applies, whatever it
 *               is).  share_fn_name set: the segment must have been created
 *               with that rule; share_fn set too: it must also give the
 *               stored shares.  flags may hold FAIRSEM_READONLY.  Other
 *               fields are ignored.
 * @return 0; -EINVAL (also share_fn without share_fn_name); -ENAMETOOLONG;
 *         -ENOENT (no such segment); -EACCES;
 *         FAIRSEM_EMAGIC, FAIRSEM_EVERSION, FAIRSEM_ECORRUPT (size, layout or
 *         a header field is wrong); FAIRSEM_EINIT (its creator has not
 *         finished, or died, initialising it); FAIRSEM_ERULE (the segment
 *         records another rule than the one `local` names or brings);
 *         FAIRSEM_EPROCS (no free process record); -ENOMEM; another
 *         negative errno from shm_open, fstat or mmap.
 */
FAIRSEM_EXTERN int fairsem_open(const char *name, const fairsem_options_t *local, fairsem_t **out);

/**
 * Create an unnamed segment, shared with the children this process forks
 * after the call (and with nobody else).
 * @return as fairsem_create(), without the name errors.
 */
FAIRSEM_EXTERN int fairsem_open_anonymous(const fairsem_options_t *opts, fairsem_t **out);

/**
 * Detach.  Slots still held and requests still queued through this handle
 * are given back, and every tenant handle registered through it that
 * fairsem_tenant_free() has not freed is freed: none of them, nor `sem`,
 * may be used afterwards.  NULL is ignored.
 * @return 0; -EBADF, changing nothing, when `sem` is not an open handle
 *         (a second close is caught this way, unless a later open got the
 *         same address: like free(), close each handle once).
 */
FAIRSEM_EXTERN int fairsem_close(fairsem_t *sem);

/**
 * Remove the name `name`, unless live processes are attached to it.
 *
 * A pool is shared by name: removing the name under running processes
 * splits them from every process that opens or creates it afterwards, so
 * the pool limit no longer holds across the two groups.  Hence unlink
 * refuses while any other live process is attached (holds a process record,
 * i.e. its OFD lease: the kernel drops it when the process dies, so a crashed
 * process never blocks removal).  This process's own handles do not count:
 * create, use, unlink, close works.  FAIRSEM_READONLY handles hold no record
 * and never count.  A process opening the segment at the very moment of the
 * check may still end up attached to the removed segment;
 * fairsem_check_linked() tells it.
 *
 * With FAIRSEM_UNLINK_FORCE the name is removed whatever it names and
 * whoever is attached (processes attached keep working on the removed
 * segment).  Without it, the name must be a fairsem segment of this layout
 * version; damage past its first words does not matter, since liveness is
 * read from the lease locks, not from the segment's contents.
 *
 * One function with a flags word (as fairsem_tenant_unregister()) rather
 * than a second entry point: every caller has to choose, at compile time,
 * whether it may remove a pool others use.
 *
 * @param flags  0 or FAIRSEM_UNLINK_FORCE.
 * @return 0; FAIRSEM_EATTACHED (another live process is attached; nothing
 *         removed); -EINVAL (bad name, unknown flag); -ENAMETOOLONG;
 *         -ENOENT; -EACCES; without FORCE also FAIRSEM_EMAGIC (not a
 *         fairsem segment) and FAIRSEM_EVERSION (another layout version).
 */
FAIRSEM_EXTERN int fairsem_unlink(const char *name, unsigned flags);

/**
 * Check the segment under `sem` is still the one its name points to.
 * @return 0; FAIRSEM_EUNLINKED when the name was removed (st_nlink == 0) or
 *         now names another segment; a negative errno from fstat.
 */
FAIRSEM_EXTERN int fairsem_check_linked(fairsem_t *sem);

/**
 * A new descriptor (close-on-exec) on the open file description that carries
 * this handle's liveness lease (the handle attaches first if it has not).
 * While any process holds a descriptor on that description, this handle's
 * process record counts as alive, so what it holds is never reaped, even
 * after the process that opened the handle died.  For wrappers that hand
 * their slot to the command they start, as flock(1) hands its lock: clear
 * FD_CLOEXEC in the child before exec.  Detaching (fairsem_close) ends the
 * lease whoever else holds the descriptor.  The caller closes it.
 * @return the descriptor (>= 3); -EINVAL (NULL); -EPERM (FAIRSEM_READONLY);
 *         -EBADF (the handle lost its descriptor); FAIRSEM_EPROCS; a
 *         negative errno from fcntl.
 */
FAIRSEM_EXTERN int fairsem_lease_dup(fairsem_t *sem);

/* ----------------------------------------------------------------- tenants */

/**
 * Register `tenant_id` through this handle (creating the tenant in the
 * segment if needed).  A process may register the same id many times; each
 * registration is a handle of its own.
 *
 * @param weight  0 = 1.  The tenant's weight in the built-in rule; the last
 *                registration of a tenant sets it for every process.
 * @return 0; -EINVAL (NULL argument, empty id); -ENAMETOOLONG (id longer
 *         than FAIRSEM_TENANT_ID_MAX); -EPERM (a FAIRSEM_READONLY handle);
 *         -EBADF (the handle lost its descriptor); FAIRSEM_ETENANTS;
 *         FAIRSEM_EPROCS; -EBUSY (another process has been inserting this
 *         id, or one with the same hash, for 2 s: it is stopped); -ENOMEM.
 */
FAIRSEM_EXTERN int fairsem_tenant_register(fairsem_t *sem, const char *tenant_id, unsigned weight,
                                           fairsem_tenant_t **out);

/**
 * End a registration.  While the registration still holds slots or has
 * queued requests, the end is deferred until the last slot is released;
 * new acquires through it fail with FAIRSEM_ENOTREG at once.  This never
 * frees the handle (fairsem_tenant_free() does), so other threads may
 * still call through it: their acquires get FAIRSEM_ENOTREG, their
 * releases of slots they hold work, a second unregister gets
 * FAIRSEM_ENOTREG.
 *
 * @param flags  FAIRSEM_FORCE: cancel its queued requests, including ones
 *               other threads are queueing at this moment (their acquires
 *               return -ECANCELED); FAIRSEM_IF_IDLE: refuse with -EBUSY,
 *               changing nothing, while it holds or waits.
 * @return 0 (done, or deferred); -EINVAL (NULL, unknown flag);
 *         -EBUSY; FAIRSEM_ENOTREG (already unregistered).
 */
FAIRSEM_EXTERN int fairsem_tenant_unregister(fairsem_tenant_t *tenant, unsigned flags);

/**
 * Free a tenant handle: the only call that frees one besides
 * fairsem_close().  Ends the registration first if it is still registered
 * and idle.  The caller must make sure no other thread uses the handle any
 * more (as with free()).  A program that registers a tenant per request
 * frees each handle when done, or the handles stay allocated until
 * fairsem_close() (after which none may be used: close frees them).  In a
 * fork child, a handle inherited from the parent and not used since is
 * freed whatever the parent's registration holds.
 * @return 0 (freed); -EBUSY (slots are still held or requests still
 *         queued through it: release or cancel them first; nothing
 *         changed); -EINVAL (NULL).
 */
FAIRSEM_EXTERN int fairsem_tenant_free(fairsem_tenant_t *tenant);

/**
 * This thread's current tenant, used when an acquire is passed NULL.  A
 * thread that made a handle current must clear it (or stop using NULL)
 * before the handle is freed: only the thread that ends the registration
 * has its current tenant cleared for it.
 */
FAIRSEM_EXTERN void fairsem_tenant_set_current(fairsem_tenant_t *tenant);
FAIRSEM_EXTERN fairsem_tenant_t *fairsem_tenant_current(void);

/** The id a tenant handle was registered with. */
FAIRSEM_EXTERN const char *fairsem_tenant_id(const fairsem_tenant_t *tenant);

/* ---------------------------------------------------------- acquire/release */

/**
 * Take a slot for `tenant` (NULL: this thread's current tenant), waiting as
 * long as it takes.  Slots are granted in FIFO order among requests whose
 * tenant is under its share.
 *
 * @return 0 and *slot; -EINVAL (NULL slot, no tenant); FAIRSEM_ENOTREG
 *         (unregistered, or unregistering); FAIRSEM_EWAITERS (queue full);
 *         -ECANCELED (a forced unregister cancelled it); FAIRSEM_ECORRUPT
 *         (its grant named a slot not reserved for it: a damaged segment;
 *         the request is dropped); -ENOMEM; in a fork child, the first use
 *         of an inherited handle registers it again here, with the errors
 *         of fairsem_tenant_register() (FAIRSEM_EPROCS, FAIRSEM_ETENANTS,
 *         -EBUSY, -EBADF).
 */
FAIRSEM_EXTERN int fairsem_acquire(fairsem_tenant_t *tenant, fairsem_slot_t *slot);

/**
 * Take a slot only if that is possible at once (and would not pass an older
 * request that may take it).  When none is free it looks for dead holders
 * (at most once every 10 ms per handle), so a loop of tries also sees a
 * crashed process's slots come back.
 * @return as fairsem_acquire(), or -EAGAIN when it would have to wait.
 */
FAIRSEM_EXTERN int fairsem_try_acquire(fairsem_tenant_t *tenant, fairsem_slot_t *slot);

/**
 * As fairsem_acquire(), giving up after `timeout_ns` nanoseconds
 * (CLOCK_MONOTONIC).  A grant that races the timeout is kept and returned
 * as success: the slot is never lost.
 * @return as fairsem_acquire(), or -ETIMEDOUT.
 */
FAIRSEM_EXTERN int fairsem_acquire_timeout(fairsem_tenant_t *tenant, uint64_t timeout_ns, fairsem_slot_t *slot);

/**
 * Give a slot back; it goes straight to the oldest eligible waiter.
 * @return 0; -EINVAL (NULL tenant); FAIRSEM_ESLOT (not a slot this handle
 *         holds: released twice, forged, or acquired through another handle).
 */
FAIRSEM_EXTERN int fairsem_release(fairsem_tenant_t *tenant, fairsem_slot_t slot);

/** The slot's index, 0..max_slots-1 (e.g. which browser tab to use). */
FAIRSEM_EXTERN unsigned fairsem_slot_index(fairsem_slot_t slot);

/* --------------------------------------------------------- event-loop API */

/**
 * Queue a request for a slot without blocking.  The request may be granted
 * at once: call fairsem_request_result() right after; a request granted at
 * once is not reported again.  When a request of this handle that had to
 * wait completes (granted or cancelled), fairsem_event_fd() becomes
 * readable and fairsem_events() returns it.
 *
 * @param user  any pointer, returned by fairsem_request_user().
 * @return 0 and *out; -EINVAL (NULL out, no tenant); FAIRSEM_ENOTREG;
 *         FAIRSEM_EWAITERS; -ENOMEM; a negative errno from eventfd or
 *         pthread_create (starting the handle's event thread); in a fork
 *         child, as fairsem_acquire().  (A forced unregistration or a
 *         damaged grant shows later, as -ECANCELED from
 *         fairsem_request_result().)
 */
FAIRSEM_EXTERN int fairsem_request_start(fairsem_tenant_t *tenant, void *user, fairsem_request_t **out);

/**
 * The outcome of a request.  On success the slot belongs to the caller (as
 * from fairsem_acquire()) and later calls return -EALREADY.
 * @return 0 and *slot; -EAGAIN (still queued); -ECANCELED (cancelled, its
 *         grant was damaged, or it was started before this process
 *         forked); -EALREADY (the slot was taken already); -EINVAL (NULL).
 */
FAIRSEM_EXTERN int fairsem_request_result(fairsem_request_t *req, fairsem_slot_t *slot);

/**
 * Cancel a request, from any thread.  If a grant raced the cancel, the slot
 * is given back.  After a successful cancel, fairsem_request_result()
 * returns -ECANCELED.
 * @return 0; -EALREADY (its slot was already taken by
 *         fairsem_request_result()); -EINVAL (NULL).
 */
FAIRSEM_EXTERN int fairsem_request_cancel(fairsem_request_t *req);

/**
 * As fairsem_request_cancel(), for a caller whose own deadline for the
 * request passed (the event-loop API has no timeout of its own): the pool
 * counts it in `timeouts` instead of `cancels` (fairsem_counters()).
 * @return as fairsem_request_cancel().
 */
FAIRSEM_EXTERN int fairsem_request_expire(fairsem_request_t *req);

/** Free a request, cancelling it first if still queued.  NULL is ignored. */
FAIRSEM_EXTERN void fairsem_request_free(fairsem_request_t *req);

/** The `user` pointer given to fairsem_request_start(). */
FAIRSEM_EXTERN void *fairsem_request_user(const fairsem_request_t *req);

/**
 * One descriptor that is readable while completed requests of this handle
 * wait to be collected with fairsem_events().  Owned by the handle.
 * @return the descriptor; -EINVAL (NULL); -EPERM (FAIRSEM_READONLY);
 *         -EBADF; FAIRSEM_EPROCS; -ENOMEM; a negative errno from eventfd or
 *         pthread_create.
 */
FAIRSEM_EXTERN int fairsem_event_fd(fairsem_t *sem);

/**
 * Collect up to `cap` completed requests (granted or cancelled), oldest
 * completion first.  Call it when fairsem_event_fd() is readable; the
 * descriptor stays readable while more remain.  Safe from any number of
 * threads at once: each completion goes to exactly one caller.  A request
 * freed with fairsem_request_free() before it is collected is never
 * returned.
 * @return the number stored in done[].
 */
FAIRSEM_EXTERN size_t fairsem_events(fairsem_t *sem, fairsem_request_t **done, size_t cap);

/* ----------------------------------------------------------- observation */

/**
 * Snapshot of the segment.  `tenants` (may be NULL when cap is 0) receives
 * up to `cap` tenants; *count (may be NULL) receives how many there are.
 * @return 0; -EINVAL (NULL sem or stats); -ENOMEM.
 */
FAIRSEM_EXTERN int fairsem_stats(fairsem_t *sem, fairsem_stats_t *stats, fairsem_tenant_stats_t *tenants,
                                 size_t cap, size_t *count);

/** Buckets of the wait-time histogram: upper bounds 1, 2, 5, 10, 20, 50 ...
 *  µs up to 100 s (1-2-5 steps, 25 finite bounds), then one bucket for
 *  longer waits.  Bucket k counts waits w with bound(k-1) < w <= bound(k). */
#define FAIRSEM_WAIT_BUCKETS 26

/** Upper bound of bucket k in ns (k < FAIRSEM_WAIT_BUCKETS - 1); UINT64_MAX
 *  for the last bucket and for k out of range. */
FAIRSEM_EXTERN uint64_t fairsem_wait_bucket_bound_ns(unsigned k);

/** What a pool, or one tenant, did since it was created.  Each count is
 * made by the process that acted, after the event; a process killed between
 * the event and its count loses that one count, and nothing is ever counted
 * twice. */
typedef struct fairsem_counters {
    uint64_t grants_immediate;                   /**< acquisitions granted without queueing */
    uint64_t grants_waited;                      /**< queued requests that were granted */
    uint64_t timeouts;                           /**< queued requests whose deadline passed
                                      (fairsem_acquire_timeout,
                                      fairsem_request_expire) */
    uint64_t cancels;                            /**< queued requests cancelled (fairsem_request_cancel,
                                      a forced unregistration) */
    uint64_t reclaimed_slots;                    /**< slots taken back from dead processes */
    uint64_t reclaimed_requests;                 /**< queued requests of dead processes dropped */
    uint64_t held_ns;                            /**< slot-time of holds that ended (released
                                      or reclaimed), ns (coarse clock) */
    uint64_t wait_ns;                            /**< sum of the waits counted in wait_buckets */
    uint64_t wait_buckets[FAIRSEM_WAIT_BUCKETS]; /**< waits of grants_waited
                                      (enqueue -> grant), per bucket, NOT cumulative */
} fairsem_counters_t;

typedef struct fairsem_tenant_counters {
    char id[FAIRSEM_TENANT_ID_MAX + 1];
    fairsem_counters_t counters; /**< since this tenant's entry was created */
    uint64_t oldest_wait_ns;     /**< age of its oldest waiting request, 0 if none */
} fairsem_tenant_counters_t;

/**
 * Read the counters of the pool and of each tenant that has an entry.
 * Pool counters are monotonic over the segment's life; a tenant's start at
 * 0 when its entry is created (a tenant that leaves and comes back starts
 * again: exporters see a counter reset).  Works on read-only handles.
 * @param pool            filled with the pool's counters (required)
 * @param oldest_wait_ns  age of the pool's oldest waiting request (0: none);
 *                        may be NULL
 * @param tenants         up to cap entries (may be NULL when cap is 0)
 * @param count           set to the number of tenants with entries (may
 *                        exceed cap); may be NULL
 * @return 0; -EINVAL (NULL sem or pool, NULL tenants with cap > 0).
 */
FAIRSEM_EXTERN int fairsem_counters(fairsem_t *sem, fairsem_counters_t *pool, uint64_t *oldest_wait_ns,
                                    fairsem_tenant_counters_t *tenants, size_t cap, size_t *count);

/**
 * Reclaim what dead processes held, queued or registered.  Live processes
 * are never touched (liveness is tested with each record's lease lock).
 * A dead process's slots and queued requests are reclaimed even while
 * another process is stopped in the middle of reclaiming them; only its
 * registrations then wait until that process resumes or dies.
 * Then reset the words that nobody will ever act on (counted in
 * report->repaired): a slot word of kind FREE with stray bits or of no known
 * kind, a reservation for a cell past max_waiters, a slot or cell naming a
 * process record that is out of range, free, or claimed again since, a
 * queue cell with a state or queue-map bit but no owner, and a tenant entry
 * left half-inserted or half-retired by a record past max_procs.  A word
 * naming a live record is left to that record even when it makes no sense
 * (e.g. a slot held for a tenant the holder does not register):
 * fairsem_check() reports it, and the record's own scrub frees it when it
 * detaches or dies.
 * @param report  may be NULL.
 * @return 0; -EINVAL (NULL); -EPERM (FAIRSEM_READONLY: reaping writes);
 *         -EBADF; FAIRSEM_EPROCS (no record to attach with).
 */
FAIRSEM_EXTERN int fairsem_reap(fairsem_t *sem, fairsem_reap_report_t *report);

/** What fairsem_info() reports: the segment's settings. */
typedef struct fairsem_info {
    unsigned layout_version;
    unsigned max_slots, min_share;
    unsigned max_tenants, max_waiters, max_procs;
    unsigned flags;                            /**< FAIRSEM_WORK_CONSERVING, FAIRSEM_STRICT_FIFO */
    char rule_name[FAIRSEM_RULE_NAME_MAX + 1]; /**< "" = built-in rule */
    uint64_t size;                             /**< bytes */
    uint64_t created_ns;                       /**< CLOCK_REALTIME */
} fairsem_info_t;

/**
 * The segment's settings.
 * @return 0; -EINVAL (NULL).
 */
FAIRSEM_EXTERN int fairsem_info(fairsem_t *sem, fairsem_info_t *info);

/* States of a queued request, as fairsem_dump() reports them. */
#define FAIRSEM_REQUEST_WAITING 1
#define FAIRSEM_REQUEST_GRANTED 2   /**< granted, not yet taken by its owner */
#define FAIRSEM_REQUEST_CANCELLED 3 /**< cancelled, not yet cleared */

/* `alive` fields: 1 the process holds its lease, 0 it is dead (reapable). */
typedef struct fairsem_proc_info {
    unsigned record; /**< process record index */
    int pid;         /**< for display: pids are not identities */
    int alive;
    uint64_t attached_ns; /**< CLOCK_REALTIME */
} fairsem_proc_info_t;

typedef struct fairsem_holder_info {
    unsigned slot;
    const char *tenant; /**< valid during the callback only */
    unsigned record;
    int pid;
    int alive;
    int granted;      /**< 1: granted to a queued request, not yet taken */
    uint64_t held_ns; /**< how long it has been held (coarse) */
} fairsem_holder_info_t;

typedef struct fairsem_waiter_info {
    uint64_t ticket;    /**< FIFO order: smaller is older */
    const char *tenant; /**< valid during the callback only */
    unsigned record;
    int pid;
    int alive;
    int state;       /**< FAIRSEM_REQUEST_* */
    uint64_t age_ns; /**< time since it was queued */
} fairsem_waiter_info_t;

/** Callbacks of fairsem_dump(); any may be NULL. */
typedef struct fairsem_dump_ops {
    void (*proc)(void *arg, const fairsem_proc_info_t *info);
    void (*holder)(void *arg, const fairsem_holder_info_t *info);
    void (*waiter)(void *arg, const fairsem_waiter_info_t *info);
} fairsem_dump_ops_t;

/**
 * Walk the attached processes, the slot holders (by slot) and the queued
 * requests (oldest first), calling `ops` for each.  Reads only; works on a
 * FAIRSEM_READONLY handle and while other processes run.
 * @return 0; -EINVAL (NULL sem or ops).
 */
FAIRSEM_EXTERN int fairsem_dump(fairsem_t *sem, const fairsem_dump_ops_t *ops, void *arg);

/* Kinds of violation fairsem_check() reports (bits of its result). */
#define FAIRSEM_CHECK_SLOTS 0x1u /**< a slot word is malformed or names nothing valid */
#define FAIRSEM_CHECK_DEAD 0x2u  /**< a tag or registration names a dead or free record */
#define FAIRSEM_CHECK_QUEUE 0x4u /**< queue map, cells and grants disagree */
#define FAIRSEM_CHECK_TENANTS \
    0x8u /**< tenant table malformed or duplicated, or
                                        a tenant's closing mark disagrees with
                                        its open registrations */

typedef void (*fairsem_violation_fn)(void *arg, unsigned kind, const char *message);

/**
 * Verify the segment's invariants: every slot is free or names a live holder
 * (or a queued request it was granted to) of a live tenant, so slots in use
 * plus free slots make max_slots and each tenant's count is exactly what its
 * tags say; no tag or registration names a dead record; queue map, cells and
 * grants agree; tenant names are well formed and unique; a record has a
 * tenant open only if it registers it, and a tenant is marked closing
 * exactly when no registration of it is open.  Transient states
 * of running processes are filtered by re-reading: a violation is reported
 * only if it persists over several passes.  `report` (may be NULL) is
 * called once per violation found in the last pass.
 * Every word it cannot explain is reported, including a slot held by a live
 * process for a tenant that process does not register (FAIRSEM_CHECK_SLOTS),
 * and free slot words with stray bits.
 * @return a bitmask of FAIRSEM_CHECK_* (0: everything holds); -EINVAL
 *         (NULL).
 */
FAIRSEM_EXTERN int fairsem_check(fairsem_t *sem, fairsem_violation_fn report, void *arg);

/** Text for any value the API returns (0, negative errno, FAIRSEM_E*). */
FAIRSEM_EXTERN const char *fairsem_strerror(int err);
/** Symbolic name ("EAGAIN", "FAIRSEM_ENOTREG") for any value the API returns. */
FAIRSEM_EXTERN const char *fairsem_err_name(int err);

/** Library version as "major.minor.patch". */
FAIRSEM_EXTERN const char *fairsem_version(void);

#ifdef __cplusplus
}
#endif

#endif /* FAIRSEM_H */
