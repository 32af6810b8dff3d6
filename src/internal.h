/*
 * internal.h - declarations shared between the library's files, grouped by
 * the file that defines them.  Never installed.
 */
#ifndef FAIRSEM_INTERNAL_H
#define FAIRSEM_INTERNAL_H

#define FAIRSEM_BUILDING 1
#include "fairsem.h"
#include "layout.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>
/* The static-inline wfcqueue: nothing of liburcu is needed at run time. */
#define _LGPL_SOURCE 1
#include <urcu/wfcqueue.h>

/* Every fairsem_options_t.flags bit a segment may carry. */
#define FS_CREATE_FLAGS (FAIRSEM_WORK_CONSERVING | FAIRSEM_STRICT_FIFO)
/* Does a segment with these flags barge (docs/design.md section 3)? */
static inline bool fs_barging(unsigned flags) { return !(flags & FAIRSEM_STRICT_FIFO); }
/* How often the pool's prober looks for dead holders (probe.c). */
#define FS_POLL_NS (10u * 1000u * 1000u)
/* How long one waiting thread per handle (the watcher) sleeps before it
 * looks whether the prober is still there (bounds recovery while a prober
 * is stopped); the handle's other waiting threads sleep FS_LONG_NS, woken
 * when a role is handed to them, and taking an unheld role at every wake
 * (a hand-off wake that races their going to sleep is lost: FS_LONG_NS
 * bounds that gap). */
#define FS_IDLE_NS (1000u * 1000u * 1000u)
#define FS_LONG_NS (3ull * FS_IDLE_NS)
/* A prober whose last round is older than this is stopped or gone. */
#define FS_PROBER_STALE_NS (100u * 1000u * 1000u)
/* The prober runs the scheduler as a safety net every this many rounds. */
#define FS_SAFETY_ROUNDS 10
/* Pending reservations a prober remembers from one round to the next. */
#define FS_PENDING_MAX 16
/* Pause instructions a waiter spins before it sleeps (a few microseconds). */
#define FS_SPIN_ROUNDS 200

/* ---------------------------------------------------------- local handles */

/* Event-loop state of one handle (request.c). */
struct fs_events {
    int efd;          /* eventfd the user polls */
    pthread_t thread; /* waits on the record's wake word */
    _Atomic int stop;
    struct cds_wfcq_head pending_head; /* started requests -> waker thread */
    struct cds_wfcq_tail pending_tail;
    struct cds_wfcq_head done_head; /* completed requests -> user */
    struct cds_wfcq_tail done_tail;
    pthread_mutex_t collect_lock; /* process-local: one dequeuer of
                                          done_* at a time (fairsem_events
                                          from several threads) */
};

/* The validated settings of a segment, copied into the handle at open:
 * bounds are never re-read from memory another process could overwrite. */
struct fs_geometry {
    uint32_t max_slots, min_share, max_tenants, max_waiters, max_procs, flags;
    uint32_t map_words, reg_words;
    char rule_name[FAIRSEM_RULE_NAME_MAX + 1];
};

struct fairsem {
    int fd;                          /* segment file, O_CLOEXEC */
    char name[FAIRSEM_NAME_MAX + 1]; /* "" for an anonymous segment */
    unsigned char *base;
    size_t size;
    struct fs_header *hdr;
    struct fs_geometry geo;
    _Atomic uint64_t *map;
    struct fs_proc *procs;
    _Atomic uint64_t *regs;
    _Atomic uint64_t *opens;
    struct fs_tenant *tenants;
    _Atomic uint64_t *slots;
    _Atomic uint64_t *since;
    struct fs_cell *cells;
    struct fs_tenant_counters *counters;
    const uint32_t *shares; /* the custom rule's table; NULL: built-in */
    bool readonly;          /* FAIRSEM_READONLY: never attaches */

    /* Attachment: valid while attach_epoch == fairsem__fork_epoch. */
    pthread_mutex_t attach_lock; /* process-local: guards attaching, the
                                        tenant-handle list and starting the event
                                        thread; acquire and release take it only
                                        in a fork child's first call and when a
                                        deferred unregistration completes (a stopped
                                        process stops only itself) */
    uint64_t attach_epoch;
    uint32_t proc_idx;
    uint32_t proc_tag;
    _Atomic uint32_t next_stamp;
    _Atomic uint64_t last_probe_ns; /* last look for dead holders by a
                                        caller that could not wait */
    _Atomic uint64_t prober_epoch;  /* fork epoch of this handle's thread
                                        that holds FS_PROBER_BYTE (0: none) */
    _Atomic uint64_t watcher_epoch; /* fork epoch of this handle's waiting
                                        thread that watches the prober */
    _Atomic uint32_t next_serial;
    _Atomic int32_t *local_refs;        /* [max_tenants]: this record's
                                        registrations; -1 while clearing */
    _Atomic int32_t *local_open;        /* [max_tenants]: those of them not
                                        unregistered; -1 while changing */
    struct fairsem_tenant *tenant_list; /* under attach_lock */
    struct fs_events *events;           /* NULL until first async request */

    struct fairsem *next_open; /* fork registry (segment.c) */
};

/* Busy word of a tenant handle: (slots held + requests queued) counted in
 * FS_BUSY_ONE steps, plus FS_BUSY_CLOSING once unregistered and
 * FS_BUSY_FORCED once unregistered with FAIRSEM_FORCE. */
#define FS_BUSY_CLOSING 1u
#define FS_BUSY_FORCED 2u
#define FS_BUSY_ONE 4u

/* Freed only by fairsem_tenant_free() or fairsem_close(), never when the
 * registration ends, so no thread still using it reads freed memory. */
struct fairsem_tenant {
    fairsem_t *sem;
    uint32_t idx;    /* tenant table index */
    uint32_t serial; /* names this handle in cells it queues */
    uint64_t epoch;  /* fork epoch of the registration */
    _Atomic uint64_t busy;
    _Atomic bool finished; /* the registration has ended */
    unsigned weight;
    char id[FAIRSEM_TENANT_ID_MAX + 1];
    struct fairsem_tenant *prev, *next; /* sem->tenant_list */
};

/* Unregistered with FAIRSEM_FORCE: requests must not start waiting. */
static inline bool fs_tenant_forced(const fairsem_tenant_t *t) { return atomic_load(&t->busy) & FS_BUSY_FORCED; }

enum { FS_REQ_QUEUED, FS_REQ_SETTLING, FS_REQ_GRANTED, FS_REQ_TAKEN, FS_REQ_CANCELLED };

struct fairsem_request {
    fairsem_tenant_t *tenant;
    uint64_t epoch; /* fork epoch it was started in */
    void *user;
    uint32_t cell;
    uint64_t seq;
    bool async;
    _Atomic int state;      /* FS_REQ_* */
    _Atomic int refs;       /* user + waker thread while async */
    fairsem_slot_t slot;    /* valid in FS_REQ_GRANTED */
    uint64_t reserved_seen; /* fairsem__ticket_unhide's memory */
    struct cds_wfcq_node node;
};

/* The layers, lowest first; a file calls only into files earlier in this
 * list (docs/design.md, "Layers"):
 *   os.c; layout.h;
 *   ticket.c, slot.c, tenant.c, proc.c   shared words: change them, report
 *                                        what became more permissive, never
 *                                        run the scheduler;
 *   policy.c, snapshot.c                 what fairness asks, what the words say;
 *   schedule.c                           decisions, and the kick;
 *   probe.c, registration.c              dead-record rounds; registering and
 *                                        tenant handles;
 *   sem.c, request.c, segment.c, reap.c, stats.c, dump.c, check.c
 *                                        the public entry points (request.c
 *                                        releases through sem.c, and
 *                                        fairsem_close stops request.c's
 *                                        thread). */

/* ------------------------------------------------------------------ os.c */

/* Crash points: after every write to shared memory that another write must
 * follow.  Built in only with FAIRSEM_CRASHPOINTS (the crash-torture tests'
 * copy of the library); fairsem__crash_arm(n, sig, fd) makes the n-th point
 * this process passes raise `sig` (SIGKILL, SIGSTOP), and writes "n name"
 * lines for every point passed to fd (if fd >= 0). */
#ifdef FAIRSEM_CRASHPOINTS
void fairsem__crashpoint(const char *where);
void fairsem__crash_arm(long n, int sig, int trace_fd);
#define FS_CRASHPOINT(where) fairsem__crashpoint(where)
#else
#define FS_CRASHPOINT(where) ((void)0)
#endif

extern _Atomic uint64_t fairsem__fork_epoch;
uint64_t fairsem__now_ns(void); /* CLOCK_MONOTONIC */
uint64_t fairsem__realtime_ns(void);
/* CLOCK_MONOTONIC_COARSE, for the hold timestamps on the hot path (since[],
 * held_ns): a few ms of resolution, no more than a memory read.  Inline:
 * each acquire and each release reads it, and a call costs as much. */
static inline uint64_t fs_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Sleep while *word == expected, at most timeout_ns; shared futex. */
void fairsem__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns);
void fairsem__futex_wake(_Atomic uint32_t *word, int count);
/* Non-blocking OFD write lock / unlock of one byte. 0, -EAGAIN, -errno. */
int fairsem__lease_lock(int fd, off_t byte);
/* Is byte locked by another open file description? (F_OFD_GETLK; needs only
 * read access.)  1 yes, 0 no, -errno. */
int fairsem__lease_held(int fd, off_t byte);
void fairsem__lease_unlock(int fd, off_t byte);

/* ---------------------------------------------------------------- counting */

/* The counts each module takes as it acts (layout.h, "counters"), inline so
 * that the shared-word modules need no call into a file above them. */

/* Count n in word `k` (FS_CNT_*) of tenant entry t's lifetime block.
 * Relaxed: a count orders nothing and is read by nobody who decides.  t
 * may come from shared memory (a scrubbed slot word or cell): an index out
 * of range counts nowhere. */
static inline void fs_count(fairsem_t *sem, uint32_t t, unsigned k, uint64_t n)
{
    if (t < sem->geo.max_tenants)
        atomic_fetch_add_explicit(&sem->counters[t].lifetime.word[k], n, memory_order_relaxed);
}

/* A hold of tenant t that began at `since` (since[i], coarse clock) ended.
 * since is 0 for a slot nobody ever stamped (a holder killed between its
 * claim and the stamp, on a fresh slot): no time to count. */
static inline void fs_count_hold_end(fairsem_t *sem, uint32_t t, uint64_t since)
{
    uint64_t now = fs_coarse_ns();
    if (since && now > since)
        fs_count(sem, t, FS_CNT_HELD_NS, now - since);
}

/* A request of tenant t queued at `enqueued_ns` (CLOCK_MONOTONIC) was
 * granted, and its grant consumed. */
static inline void fs_count_wait(fairsem_t *sem, uint32_t t, uint64_t enqueued_ns)
{
    uint64_t now = fairsem__now_ns();
    uint64_t wait = now > enqueued_ns ? now - enqueued_ns : 0;
    fs_count(sem, t, FS_CNT_GRANTS_WAITED, 1);
    fs_count(sem, t, FS_CNT_WAIT_BUCKET0 + fs_wait_bucket(wait), 1);
    fs_count(sem, t, FS_CNT_WAIT_NS, wait);
}

/* Entry t is INIT and ours: its counters start at 0 (baseline := lifetime). */
static inline void fs_counters_baseline(fairsem_t *sem, uint32_t t)
{
    struct fs_tenant_counters *c = &sem->counters[t];
    for (unsigned k = 0; k < FS_COUNTER_WORDS; k++)
        atomic_store_explicit(&c->baseline.word[k],
                              atomic_load_explicit(&c->lifetime.word[k], memory_order_relaxed),
                              memory_order_relaxed);
}

/* --------------------------------------------------------------- ticket.c */

/* Queue a request of tenant (FIFO number in *seq, cell in *cell): 0 or
 * FAIRSEM_EWAITERS.  Less permissive: it bumps the version; the caller
 * kicks afterwards all the same (it may be next already). */
int fairsem__ticket_enqueue(fairsem_tenant_t *tenant, bool async, uint32_t *cell, uint64_t *seq);
#define FS_NEW_SEQ UINT64_MAX
/* Called by the owner of a still-waiting request on each poll: if a live
 * granter's reservation has hidden the request from the queue since the
 * last poll, move it to a new cell with the same seq (*cell is updated)
 * and return true (visible again: the caller kicks).  If no cell is free,
 * or the request stopped waiting meanwhile, nothing moves. */
bool fairsem__ticket_unhide(fairsem_tenant_t *tenant, bool async, uint32_t *cell, uint64_t seq,
                            uint64_t *last_seen);
/* A granter's CAS of cell c from WAITING(seq) to GRANTED(seq, slot). */
bool fairsem__ticket_grant(fairsem_t *sem, uint32_t c, uint64_t seq, uint32_t slot);
/* Barging.  A decision found a free slot for request (c, seq) and
 * nobody running to take it: set FS_CELL_ROUSED by CAS and wake the owner,
 * unless the mark is set already (the owner is on its way). */
void fairsem__ticket_rouse(fairsem_t *sem, uint32_t c, uint64_t seq);
/* The owner of WAITING cell c, whose word it read as *s with FS_CELL_ROUSED
 * set, clears the mark before it looks for a slot: true and *s the word
 * left; false if the word is no longer *s (*s is the word now: look again). */
bool fairsem__ticket_unrouse(fairsem_t *sem, uint32_t c, uint64_t *s);
/* The owner's look after a rouse lost the slot to a barger: mark the
 * request FS_CELL_HANDOFF (handed its next slot) while it still waits. */
void fairsem__ticket_mark_handoff(fairsem_t *sem, uint32_t c, uint64_t seq);
/* Owner's cancel: FS_TICKET_GRANTED (slot in *granted_slot),
 * FS_TICKET_CANCELLED (this call ended the request: the caller counts it),
 * FS_TICKET_ENDED (someone else had cancelled it). */
enum { FS_TICKET_GRANTED, FS_TICKET_CANCELLED, FS_TICKET_ENDED };
int fairsem__ticket_cancel(fairsem_t *sem, uint32_t c, uint32_t *granted_slot);
void fairsem__ticket_free(fairsem_t *sem, uint32_t c);
/* Cancel every waiting cell of this process queued through `serial`; how
 * many (more permissive when > 0: the caller kicks). */
unsigned fairsem__ticket_cancel_serial(fairsem_t *sem, uint32_t serial);
/* Wake whoever sleeps on cell c (its own futex, or its record's waker). */
void fairsem__ticket_wake(fairsem_t *sem, uint32_t c);

/* ----------------------------------------------------------------- slot.c */

/* A fresh acquisition stamp. */
uint32_t fairsem__slot_stamp(fairsem_t *sem);
/* CAS slot i from FREE (exactly 0) to `word`; true if it was free. */
bool fairsem__slot_claim(fairsem_t *sem, uint32_t i, uint64_t word);
/* Undo an uncommitted claim (the word is still only ours). */
void fairsem__slot_unclaim(fairsem_t *sem, uint32_t i);
/* Free slot i if it still holds `reservation` (its request left). */
void fairsem__slot_withdraw(fairsem_t *sem, uint32_t i, uint64_t reservation);
/* Slot i is now HELD by tenant handle t under `stamp`: note the time, and
 * return the handle that names it. */
fairsem_slot_t fairsem__slot_taken(fairsem_tenant_t *t, uint32_t i, uint32_t stamp);
/* Make the slot reserved for cell c (GRANTED) this process's HELD slot and
 * free the cell: 0, or FAIRSEM_ECORRUPT (the grant named no slot reserved
 * for it; the cell is freed all the same). */
int fairsem__slot_consume_grant(fairsem_tenant_t *t, uint32_t c, fairsem_slot_t *slot);
/* Free the slot `slot` names if tenant handle t holds it, and count the
 * hold's time; true if freed (more permissive: the caller kicks). */
bool fairsem__slot_give_back(fairsem_tenant_t *t, fairsem_slot_t slot);

/* --------------------------------------------------------------- tenant.c */

/* Retire tenant idx if no record has it registered. */
void fairsem__tenant_retire(fairsem_t *sem, uint32_t idx);
/* Make tenant idx's closing word say whether any record has it open; true
 * if it became closing (more permissive: the caller kicks). */
bool fairsem__tenant_settle_closing(fairsem_t *sem, uint32_t idx);
/* Finish tenant-table work record p died in the middle of. */
void fairsem__tenant_scrub(fairsem_t *sem, uint32_t p);
/* Set tenant t's weight; true if it changed (the caller kicks). */
bool fairsem__tenant_set_weight(fairsem_t *sem, uint32_t t, unsigned weight);
/* Copy tenant t's name; returns the entry's state word the copy belongs
 * to, or 0 (and "") if t is not a live entry, its name is unterminated, or
 * it kept changing while read. */
uint64_t fairsem__tenant_name(const fairsem_t *sem, uint32_t t, char out[FAIRSEM_TENANT_ID_MAX + 1]);

/* ----------------------------------------------------------------- proc.c */

/* Make sure this process has a record on sem (first call after a fork):
 * 0 or an error.  Sets *kick (if kick is not NULL) when the record claimed
 * was a dead one's, whose slots and cells it scrubbed. */
int fairsem__attach(fairsem_t *sem, bool *kick);
/* Detaching, in two steps around the caller's kick: free every word that
 * names this process's record; then let the record go (FREE, lease
 * dropped). */
void fairsem__proc_scrub_self(fairsem_t *sem);
void fairsem__proc_release(fairsem_t *sem);
/* Probe record p (one F_OFD_GETLK if it reads LIVE): if its owner is proven
 * dead, or it is DEAD already, scrub its slot and cell words and, if its
 * lease is free, finish it; true then (more permissive: the caller
 * kicks).  Caller is attached. */
bool fairsem__proc_reap_if_dead(fairsem_t *sem, uint32_t p, fairsem_reap_report_t *report);
/* 1 if record p's lease is held (its owner lives), else 0. */
int fairsem__record_alive(fairsem_t *sem, uint32_t p);
/* Has incarnation `tag` (record + generation) ended for good: its record is
 * out of range, free, or claimed again since?  Then its scrub (if it needed
 * one) is over, and a word still naming it is a leftover nobody else will
 * touch.  (A LIVE record with a dropped lease is dead but not gone, and so
 * is a DEAD one: its scrubbers own its words.) */
bool fairsem__tag_gone(const fairsem_t *sem, uint32_t tag);

/* --------------------------------------------------------------- policy.c */

struct fs_waiter {
    uint64_t seq;
    uint32_t cell;
    uint32_t tenant;
    uint64_t enqueued_ns; /* barging: its age; 0 when it is handed
                             its slot whatever its age (an event-loop
                             request, or one marked FS_CELL_HANDOFF) */
    bool roused;          /* barging: FS_CELL_ROUSED, its owner on its way */
};

/* What the slots and cells say at one moment (taken by snapshot.c). */
struct fs_snapshot {
    unsigned max_slots, min_share, flags, ntenants;
    const uint32_t *shares;    /* [ntenants + 1] custom rule; NULL: built-in */
    struct fs_tenant *tenants; /* for weights */
    unsigned nfree;
    uint32_t first_free; /* a free slot index when nfree > 0 */
    uint16_t *held;      /* [ntenants] slots held or reserved */
    uint16_t *waiting;   /* [ntenants] requests still waiting */
    uint32_t *weight;    /* [ntenants] read once, for touched */
    bool *closing;       /* [ntenants] read once, for touched:
                                        its held slots make it no demand */
    uint32_t *touched;   /* tenants with held or waiting > 0 */
    unsigned ntouched;
    struct fs_waiter *waiters; /* waiting requests, in no order (seq is the order) */
    unsigned nwaiters;
    unsigned in_use; /* slots not free */
    uint64_t now_ns; /* barging with waiters: when they were read */
};

/* FS_ACT_ROUSE (barging only): a slot is free for a young waiter
 * and no running caller takes it: wake the waiter to come and take it. */
enum fs_action_kind { FS_ACT_NONE, FS_ACT_GRANT, FS_ACT_TAKE, FS_ACT_ROUSE };

struct fs_action {
    enum fs_action_kind kind;
    const struct fs_waiter *waiter; /* FS_ACT_GRANT, FS_ACT_ROUSE */
};

#define FS_NO_TENANT UINT32_MAX
#define FS_NO_CELL UINT32_MAX
/* The next step fairness asks for.  `newcomer` is a tenant asking without a
 * queued request (FS_NO_TENANT: none); `self` the cell of a queued request
 * whose owner is running and asking (FS_NO_CELL: none). */
struct fs_action fairsem__policy_next(const struct fs_snapshot *snap, uint32_t newcomer, uint32_t self);
/* Share of tenant t, counting `extra` as demanding too (FS_NO_TENANT: none). */
unsigned fairsem__policy_share(const struct fs_snapshot *snap, uint32_t t, uint32_t extra);
unsigned fairsem__policy_demanding(const struct fs_snapshot *snap, uint32_t extra);

/* ------------------------------------------------------------- snapshot.c */

struct fs_snapshot *fairsem__snapshot(fairsem_t *sem);

/* ------------------------------------------------------------- schedule.c */

/* Carry out fairness steps until none is due; with `newcomer` set, stop
 * when the newcomer may take a slot and take it (0 and *slot), else
 * -EAGAIN.  A newcomer counts as demanding, so its call does not serve
 * waiters that only the state without it would let in: kick first. */
int fairsem__schedule(fairsem_t *sem, fairsem_tenant_t *newcomer, fairsem_slot_t *slot);
/* Serve waiters after a change that made the state more permissive (the
 * rule for who calls this is at the top of schedule.c). */
void fairsem__kick(fairsem_t *sem);
/* Barging: the running owner of queued request (cell c) asks for a
 * free slot (its kick, see schedule.c); true if its cell is now GRANTED. */
bool fairsem__schedule_self(fairsem_t *sem, uint32_t c);
/* fairsem__attach, then a kick if the record it claimed was a dead one's
 * (for entry points that attach and change nothing else shared). */
int fairsem__attach_kick(fairsem_t *sem);

/* ---------------------------------------------------------------- probe.c */

/* Look for dead records that hold or wait (each named record probed once),
 * scrub them, and kick if any was. */
void fairsem__reap_referenced(fairsem_t *sem);

/* One waiting thread's part in watching the pool.  One waiter per pool, the
 * prober (it holds the lock on FS_PROBER_BYTE), wakes every FS_POLL_NS to
 * probe the records slot words and cells name, run the scheduler and nudge
 * requests a stopped granter hides; one waiter per handle, the watcher,
 * every FS_IDLE_NS to see that the prober still beats; everyone else sleeps
 * until woken (FS_LONG_NS at most). */
struct fs_idle {
    bool prober;
    bool watcher;           /* this handle's watcher */
    uint64_t last_round_ns; /* also the beat it last published */
    bool tried;             /* has tried to take the role */
    unsigned rounds;        /* rounds done (safety-net schedule) */
    uint32_t nudges_seen;   /* the record's nudge word, last look */
    unsigned npending;      /* reservations pending at last round */
    uint32_t pending_slot[FS_PENDING_MAX];
    uint64_t pending_word[FS_PENDING_MAX];
};
/* Call whenever a wait brought no news: takes the prober role if it is
 * vacant (or its holder stale), does a round when due (as prober, or as a
 * deputy for a stopped prober).  Returns how long to sleep next. */
uint64_t fairsem__idle(fairsem_t *sem, struct fs_idle *me);
/* Should a synchronous waiter in cell c look whether it is hidden?  Yes if
 * the prober nudged its record since the last call, or this thread's own
 * last round (as prober or deputy) saw a reservation pending for c. */
bool fairsem__idle_hides(fairsem_t *sem, struct fs_idle *me, uint32_t c);
/* Call when the thread stops waiting: hands the prober role on (wakes
 * another waiter, which takes it). */
void fairsem__idle_leave(fairsem_t *sem, struct fs_idle *me);

/* --------------------------------------------------------- registration.c */

/* End the registration once it holds and waits for nothing (the handle
 * itself stays allocated). */
void fairsem__tenant_finish(fairsem_tenant_t *tenant);
/* Count a new slot or request on the handle (a fork child's first use
 * registers it here first): 0, FAIRSEM_ENOTREG if closing, or an error of
 * attaching or registering. */
int fairsem__tenant_busy_get(fairsem_tenant_t *tenant);
void fairsem__tenant_busy_put(fairsem_tenant_t *tenant);

/* -------------------------------------------------------------- request.c */

/* Settle a request (see its FS_REQ_* state); returns the new state. */
int fairsem__request_settle(fairsem_request_t *req);
void fairsem__events_stop(fairsem_t *sem);

/* ------------------------------------------------------------------- util */

/* A spin-wait hint to the CPU. */
static inline void fs_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline uint32_t fs_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ? h : 1;
}

#endif /* FAIRSEM_INTERNAL_H */
