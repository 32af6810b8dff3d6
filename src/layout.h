/*
 * layout.h - the shared-memory segment, described in one place.
 *
 * Every struct that lives in shared memory is here, with fixed-width types,
 * offsets instead of pointers, and its size pinned by _Static_assert; every
 * shared word's codec (fs_* inline functions) sits next to its struct, and
 * _Static_asserts tie each field's width to the public limit it must hold
 * (fairsem.h): no file outside this one shifts or masks a shared word.  Any
 * change to a struct, a tag encoding or the meaning of a field must bump
 * FS_LAYOUT_VERSION: two builds that disagree must never share a segment
 * (FS_LAYOUT_HASH, derived from the struct sizes, catches the ones people
 * forget).
 *
 * MAP OF THE SEGMENT (all regions 64-byte aligned, sizes fixed at creation)
 *
 *   header        struct fs_header: identity, settings, two hot counters
 *   queue map     uint64_t[ceil(max_waiters/64)]: bit c set while cell c is
 *                 owned (a cheap "does anybody wait?" and a scan index)
 *   procs         struct fs_proc[max_procs]: one record per attached handle
 *   registrations uint64_t[max_procs][ceil(max_tenants/64)]: bit t of row p
 *                 set while record p has tenant t registered (including
 *                 registrations that are closing: unregistered, still
 *                 holding or waiting); the tenant entry lives while any is set
 *   opens         uint64_t[max_procs][ceil(max_tenants/64)]: bit t of row p
 *                 set while record p has an open registration of t (one not
 *                 unregistered); a tenant with no open bit is "closing"
 *   tenants       struct fs_tenant[max_tenants]
 *   slots         _Atomic uint64_t[max_slots]: the owner word of each slot
 *   since         _Atomic uint64_t[max_slots]: CLOCK_MONOTONIC_COARSE time the
 *                 current holder took the slot (for display and held_ns;
 *                 written by the holder after it owns the slot, so a holder
 *                 killed in between leaves the previous hold's time, and its
 *                 reclaimer counts from then)
 *   cells         struct fs_cell[max_waiters]: queued requests ("tickets")
 *   counters      struct fs_tenant_counters[max_tenants]: what happened to
 *                 each tenant entry (lifetime words, never reset) and the
 *                 lifetime values when its current incarnation was inserted
 *                 (baseline); see "counters" below
 *   shares        uint32_t[max_tenants + 1], only for a custom share rule
 *                 (rule_name not empty): entry D is the rule's share of each
 *                 demanding tenant when D tenants demand, already clamped to
 *                 max_slots (min_share is applied on use).  A share rule is a
 *                 function of (max_slots, D) alone and both are bounded, so
 *                 the creator evaluates it once for every D and no other
 *                 process ever needs the function: every process, in any
 *                 language, and every tool computes the same shares.
 *
 * THE TRUTH IS IN THE TAGS
 *
 * Every fact "X belongs to Y" is one 64-bit word changed by one CAS: a slot
 * word names its holder (process record + generation, tenant, stamp) or the
 * queued request it is reserved for; a cell's owner word names the process
 * waiting in it; a registration bit sits in the registering record's row.
 * There are no counters to keep in step: held, waiting and demanding counts
 * are derived by scanning slots and cells (fs_snapshot in policy code); the
 * statistics counters (region "counters") are never read by a decision.  So
 * a process that dies between two writes leaves nothing that needs undoing
 * beyond what its tags name, and whoever scrubs its record frees exactly
 * that.  (The design brief's "intent" words are therefore not needed: no
 * operation moves a count that a tag does not also record.)
 *
 * THE VERSION WORD (header.version) serialises decisions without a lock.
 * A decision (grant a slot to a queued request, or let a newcomer take one)
 * reads version, scans, claims one slot word with a CAS, then commits by
 * CAS(version, v, v + 1).  If the commit fails, something changed since the
 * scan: the claim is undone and the decision is retried.  Two committed
 * decisions are therefore ordered, and the later one's scan saw the earlier
 * one's claim.  Events that make the state more permissive (a release, a
 * cancel) need no commit: a decision taken on the older state was only more
 * cautious.  Enqueueing a request makes it less permissive (one more
 * demanding tenant, one more older request), so it bumps version after its
 * cell is visible.  A process stopped anywhere delays no one: at worst its
 * claim is a slot others see as taken.
 *
 * WHO WRITES WHAT
 *
 *   header settings   the creator, before the segment is published under its
 *                     name (linkat of an O_TMPFILE), never again
 *   shares            the creator, likewise; read-only afterwards
 *   header.version    anyone: CAS to commit a decision, fetch_add on enqueue
 *   header.ticket_seq anyone: fetch_add to number a queued request (FIFO
 *                     order is this number, not the cell index)
 *   header.probe_beat the prober (the process holding the lock on byte
 *                     FS_PROBER_BYTE): CLOCK_MONOTONIC time of its last
 *                     round, 0 when it stops probing; a deputy (CAS from a
 *                     stale beat to now) while the prober is stopped
 *   proc.state        see "process record" below
 *   proc.wake         anyone granting or cancelling an async request of the
 *                     record (futex word, increment + wake)
 *   proc.nudge        the prober (increment, then wake): look for hidden
 *                     requests
 *   registrations     the record's owner; its scrubber (holding its lease)
 *   opens             the record's owner (set after its registration bit is
 *                     set, cleared when the registration is unregistered,
 *                     before that bit is cleared); its scrubber
 *   tenant.state      the inserter (FREE->INIT->ACTIVE, or ->FREE when it
 *                     backs off); whoever retires an unused tenant
 *                     (ACTIVE->DYING->FREE); a registrant that rescues a
 *                     DYING entry (DYING->ACTIVE); the scrubber of a dead
 *                     inserter or retirer (INIT->FREE, DYING->FREE/ACTIVE)
 *   tenant.weight     any registrant (last registration wins)
 *   tenant.closing    the inserter (not closing, while INIT); anyone who
 *                     changed an opens bit of the tenant, or scrubbed one:
 *                     CAS to match "no opens bit is set" (fs_tenant_closing)
 *   tenant name/hash  the inserter, while the entry is INIT (the name a word
 *                     at a time, atomically: fs_name_store)
 *   slot words        see "slot word" below
 *   cell.owner        claimant (CAS 0->tag); owner or scrubber (tag->0)
 *   cell fields       the owner, before the cell turns WAITING
 *   cell.state        owner (EMPTY->WAITING, ->EMPTY when done), a granter
 *                     (WAITING->GRANTED), anyone cancelling (WAITING->
 *                     CANCELLED: the owner, a forced unregister, a scrubber)
 *   counters.lifetime whoever acted, after the event, by relaxed fetch_add
 *                     (never any other write, so no word ever decreases):
 *                     grants_immediate  the taker, after its TAKE committed
 *                     grants_waited, wait_buckets[], wait_ns
 *                                       the request's owner, after its HELD
 *                                       CAS consumed the grant (wait = now -
 *                                       cell.enqueued_ns, CLOCK_MONOTONIC)
 *                     timeouts          the owner whose deadline passed, if
 *                                       its CAS WAITING->CANCELLED won
 *                     cancels           whoever won that CAS for a cancel
 *                                       (fairsem_request_cancel, a forced
 *                                       unregister, a detaching owner)
 *                     reclaimed_requests a scrubber of a DEAD record whose
 *                                       CAS WAITING->CANCELLED won
 *                     reclaimed_slots   a scrubber of a DEAD record whose CAS
 *                                       freed a HELD word, or the reservation
 *                                       of a GRANTED cell
 *                     held_ns           the holder at release, or whoever
 *                                       frees a HELD word in a scrub (now -
 *                                       since[i], coarse clock)
 *                     for the tenant the slot word or cell names
 *   counters.baseline the inserter, while the entry is INIT (a copy of the
 *                     lifetime words at that moment)
 *
 * SLOT WORD (64 bits)
 *
 *   kind:2 | stamp:24 | who:12 | owner:26
 *   FREE      all zero, and only that: every snapshot, claim, check and
 *             reap treats a word as free only if it is exactly 0 (a
 *             FREE-kind word with stray bits, or kind 3, is a slot in use
 *             by nobody, which fairsem_reap resets)
 *   HELD      owner = holder's proc tag, who = tenant index, stamp = a
 *             number unique to that acquisition (fairsem_slot_t carries it)
 *   RESERVED  owner = the granter's proc tag, who = cell index, stamp = low
 *             24 bits of that cell's seq.  Written by a granter before it
 *             commits; it becomes the cell's once the cell says GRANTED with
 *             this slot index, and the cell's owner turns it into HELD.  A
 *             reservation whose cell is no longer WAITING-or-GRANTED-with-
 *             this-slot is an orphan, freed by its granter or a scrubber.
 *
 *   A proc tag is record index (12 bits) | generation (14 bits) << 12; the
 *   generation changes every time a record is claimed, so tags of a dead
 *   incarnation never match a live one.
 *
 * LIVENESS: OFD LEASES, NEVER PIDS
 *
 * Record p is leased by an F_OFD_SETLK write lock on byte FS_LEASE_BASE + p
 * of the segment file (far past EOF).  The kernel drops it when the last
 * descriptor of that open file description closes, i.e. when the process
 * dies (the descriptor is O_CLOEXEC and a fork child reopens the file, so no
 * child or exec'd program keeps a parent's lease alive).  pids are kept for
 * display only.  fairsem_unlink() asks F_OFD_GETLK (which takes nothing)
 * over the whole range FS_LEASE_BASE .. + FAIRSEM_MAX_PROCS_LIMIT to see who
 * is attached.
 *
 * PROCESS RECORD STATE (proc.state, one word, changed only as below)
 *
 *   FREE(g)  = g << 1          nobody's; claimable by whoever takes its lease
 *   LIVE(g)  = g << 1 | 1      owned by the holder of its lease, incarnation g
 *                              (tags name it as record | (g mod 2^14) << 12)
 *   DEAD(g)  = DEAD_BIT | g << 1   incarnation g is proven dead; its words
 *                              are being scrubbed, by anyone, concurrently
 *
 *   FREE(g)  -> LIVE(g+1)  the claimer, holding the lease (CAS)
 *   LIVE(g)  -> FREE(g)    the owner detaching, after scrubbing itself and
 *                          before it drops the lease
 *   LIVE(g)  -> DEAD(g)    anyone, by CAS, after F_OFD_GETLK found the lease
 *                          byte unlocked: the owner locks before LIVE(g) and
 *                          unlocks only after FREE(g), so "LIVE(g) after an
 *                          unlocked lease" can only mean its holder died
 *   DEAD(g)  -> FREE(g)    a scrubber holding the lease, after a complete
 *                          scrub (slots, cells, registrations, tenant work)
 *   DEAD(g)  -> LIVE(g+1)  a claimer holding the lease, which then scrubs
 *                          the dead words itself before it uses the record
 *
 * Nobody but the owner holds the lease of a LIVE record (a prober proves
 * death without it), so a stopped prober never makes a dead record look
 * alive.  Slot and cell words of a DEAD record are scrubbed by anyone
 * without its lease: every step is a CAS from a word naming the record,
 * taken only while proc.state still reads DEAD(g) (checked after the word is
 * read), so two scrubbers, or one that resumes late, never free a word of a
 * later incarnation (that would need the record to be claimed 2^14 times
 * inside one scrubber's check-then-CAS and the new word to be identical).
 * Registration and opens bits and tenant entries are scrubbed only under
 * the lease.
 *
 * FUTEX WORDS: cell.state (one waiter sleeps on its own cell; a grant or a
 * cancel wakes exactly it) and proc.wake (the library thread that feeds a
 * process's event-loop descriptor).  Both are shared futexes.  A stale read
 * of either is harmless: sleepers re-check after every wake and never sleep
 * longer than a bounded interval while they wait for a slot (10 ms for the
 * pool's prober, 1 s for one watcher per handle, 3 s at most for the
 * others; see docs/design.md section 6).
 */
#ifndef FAIRSEM_LAYOUT_H
#define FAIRSEM_LAYOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fairsem.h" /* the public limits the field widths are checked against */

#define FS_MAGIC 0x314d455352494146ull /* "FAIRSEM1" read as little-endian */
#define FS_LAYOUT_VERSION 6u
#define FS_READY 0x52454459u /* header.ready once initialised */
#define FS_CACHELINE 64u
#define FS_LEASE_BASE ((off_t)1 << 40)     /* lease byte of record p: base + p */
#define FS_PROBER_BYTE (FS_LEASE_BASE - 1) /* locked by the pool's prober */

/* ----------------------------------------------------------------- header */

struct fs_header {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t layout_hash;
    uint64_t total_size;
    uint32_t max_slots;
    uint32_t min_share;
    uint32_t max_tenants;
    uint32_t max_waiters;
    uint32_t max_procs;
    uint32_t flags;
    uint32_t ready;     /* FS_READY once every region is initialised */
    uint32_t map_words; /* ceil(max_waiters / 64) */
    uint32_t reg_words; /* ceil(max_tenants / 64) */
    uint32_t reserved0;
    uint64_t off_map, off_procs, off_regs, off_tenants, off_slots, off_since, off_cells;
    uint64_t created_ns; /* CLOCK_REALTIME at creation, for display */
    char rule_name[32];  /* "" = built-in weighted rule */
    uint64_t off_shares; /* the share table; 0 with the built-in rule */
    uint64_t off_opens;
    _Atomic uint64_t probe_beat; /* the prober's last round (CLOCK_MONOTONIC),
                                    0: nobody probes; read about once a second
                                    by each waiter, so it shares this line */
    uint64_t off_counters;
    /* hot words, each alone on its cache line */
    _Atomic uint64_t version;
    uint8_t pad1[FS_CACHELINE - 8];
    _Atomic uint64_t ticket_seq;
    uint8_t pad2[FS_CACHELINE - 8];
};
_Static_assert(sizeof(struct fs_header) == 5 * FS_CACHELINE, "header size");
_Static_assert(offsetof(struct fs_header, version) == 3 * FS_CACHELINE, "hot words on their own lines");

/* --------------------------------------------------------- process record */

enum { FS_PROC_FREE = 0, FS_PROC_LIVE = 1 };
#define FS_PROC_DEAD_BIT (1ull << 63)

/* state word: generation << 1 | FS_PROC_*, or FS_PROC_DEAD_BIT | generation
 * << 1 (see "process record state" above).  Readers that only ask "is this
 * incarnation live?" test bit 0, which is clear in DEAD. */
struct fs_proc {
    _Atomic uint64_t state;
    _Atomic uint32_t wake;  /* futex word: bumped when an async request of
                                this record is granted or cancelled */
    int32_t pid;            /* display only */
    uint64_t attached_ns;   /* CLOCK_REALTIME, display only */
    _Atomic uint32_t nudge; /* bumped by the prober (before it wakes the
                                request) when a request of this record is
                                hidden by a stopped granter's reservation */
    uint8_t pad[FS_CACHELINE - 28];
};
_Static_assert(sizeof(struct fs_proc) == FS_CACHELINE, "proc record size");

static inline uint64_t fs_proc_free(uint64_t gen) { return gen << 1 | FS_PROC_FREE; }
static inline uint64_t fs_proc_live(uint64_t gen) { return gen << 1 | FS_PROC_LIVE; }
static inline uint64_t fs_proc_dead(uint64_t gen) { return FS_PROC_DEAD_BIT | gen << 1; }
static inline bool fs_proc_is_live(uint64_t st) { return (st & 1) == FS_PROC_LIVE; }
static inline bool fs_proc_is_dead(uint64_t st) { return (st & FS_PROC_DEAD_BIT) != 0; }
/* FREE(g): neither live nor dead. */
static inline bool fs_proc_is_free(uint64_t st) { return !fs_proc_is_live(st) && !fs_proc_is_dead(st); }
static inline uint64_t fs_proc_gen(uint64_t st) { return (st & ~FS_PROC_DEAD_BIT) >> 1; }

/* PROC TAG (26 bits): record index:12 | (generation mod 2^14) << 12.  It
 * names one incarnation of a record in slot words (owner field), cell
 * owner words and nowhere else; record indices are below max_procs. */
#define FS_PROC_BITS 12
#define FS_PGEN_BITS 14
#define FS_TAG_BITS (FS_PROC_BITS + FS_PGEN_BITS)
#define FS_TAG_MASK ((1u << FS_TAG_BITS) - 1)
_Static_assert(FAIRSEM_MAX_PROCS_LIMIT <= 1u << FS_PROC_BITS, "a record index fits a proc tag");

static inline uint32_t fs_proc_tag(uint32_t idx, uint64_t gen)
{
    return idx | (uint32_t)(gen & ((1u << FS_PGEN_BITS) - 1)) << FS_PROC_BITS;
}
static inline uint32_t fs_tag_proc(uint32_t tag) { return tag & ((1u << FS_PROC_BITS) - 1); }
/* The tag of record p's incarnation in state st. */
static inline uint32_t fs_proc_state_tag(uint32_t p, uint64_t st) { return fs_proc_tag(p, fs_proc_gen(st)); }


/* ----------------------------------------------------------------- tenant */

enum { FS_TENANT_FREE = 0, FS_TENANT_INIT = 1, FS_TENANT_ACTIVE = 2, FS_TENANT_DYING = 3 };

/* state word: hash:32 | gen:18 | proc:12 | state:2.  proc names the inserter
 * while INIT and the retirer while DYING (so their scrubber can finish the
 * job); entering DYING bumps gen, so no two DYING words are alike.
 *
 * closing word: gen:18 << 1 | closing.  Closing means every registration of
 * the tenant has been unregistered (no opens bit): as in aio-fairshare, such
 * a tenant no longer counts as demanding for the slots it still holds, and
 * leaves the per-tenant stats, until it is registered again.  It is derived
 * from the opens bits and only honoured when its gen is the state word's, so
 * a stale write for an earlier incarnation of the entry means "open". */
struct fs_tenant {
    _Atomic uint64_t state;
    _Atomic uint32_t weight;
    uint32_t hash;
    _Atomic uint32_t closing; /* on the decisions' cache line, with weight */
    uint32_t reserved0;
    char name[64];
    uint8_t pad[FS_CACHELINE * 2 - 88];
};
_Static_assert(sizeof(struct fs_tenant) == 2 * FS_CACHELINE, "tenant size");
_Static_assert(offsetof(struct fs_tenant, name) % 8 == 0, "tenant name is read a word at a time");

/* A tenant's name is written (by its inserter, while INIT) and read (by
 * lookups, stats, dump, check) one 8-byte word at a time with atomic
 * accesses: a reader racing a re-insertion of the entry gets whole words,
 * never a data race, and tells a mixed copy by re-reading the state word
 * (fairsem__tenant_name). */
#define FS_NAME_WORDS (sizeof(((struct fs_tenant *)0)->name) / 8)

static inline void fs_name_store(struct fs_tenant *e, const char *id, size_t len)
{
    for (size_t k = 0; k < FS_NAME_WORDS; k++) {
        uint64_t w = 0;
        if (k * 8 < len)
            memcpy(&w, id + k * 8, len - k * 8 < 8 ? len - k * 8 : 8);
        __atomic_store_n((uint64_t *)(void *)e->name + k, w, __ATOMIC_RELAXED);
    }
}

static inline void fs_name_load(const struct fs_tenant *e, char out[sizeof e->name])
{
    for (size_t k = 0; k < FS_NAME_WORDS; k++) {
        uint64_t w = __atomic_load_n((const uint64_t *)(const void *)e->name + k, __ATOMIC_RELAXED);
        memcpy(out + k * 8, &w, 8);
    }
}

#define FS_TENANT_KIND_BITS 2
#define FS_TENANT_PROC_BITS 12
#define FS_TENANT_GEN_BITS 18
#define FS_TENANT_GEN_MASK ((1u << FS_TENANT_GEN_BITS) - 1)
_Static_assert(FS_TENANT_KIND_BITS + FS_TENANT_PROC_BITS + FS_TENANT_GEN_BITS == 32,
               "tenant state: hash in the high half");
_Static_assert(FAIRSEM_MAX_PROCS_LIMIT <= 1u << FS_TENANT_PROC_BITS,
               "an inserter's record index fits the tenant state");
_Static_assert(FS_TENANT_GEN_BITS + 1 <= 32, "the closing word holds a generation and a bit");

static inline uint64_t fs_tenant_state(unsigned kind, uint32_t proc, uint32_t gen, uint32_t hash)
{
    return (uint64_t)hash << 32 |
           (uint64_t)(gen & FS_TENANT_GEN_MASK) << (FS_TENANT_KIND_BITS + FS_TENANT_PROC_BITS) |
           (uint64_t)(proc & ((1u << FS_TENANT_PROC_BITS) - 1)) << FS_TENANT_KIND_BITS | kind;
}
static inline unsigned fs_tenant_kind(uint64_t state)
{
    return (unsigned)(state & ((1u << FS_TENANT_KIND_BITS) - 1));
}
static inline uint32_t fs_tenant_proc(uint64_t state)
{
    return (uint32_t)(state >> FS_TENANT_KIND_BITS) & ((1u << FS_TENANT_PROC_BITS) - 1);
}
static inline uint32_t fs_tenant_gen(uint64_t state)
{
    return (uint32_t)(state >> (FS_TENANT_KIND_BITS + FS_TENANT_PROC_BITS)) & FS_TENANT_GEN_MASK;
}
static inline uint32_t fs_tenant_hash(uint64_t state) { return (uint32_t)(state >> 32); }
/* ACTIVE or DYING: the entry is a tenant, with a name. */
static inline bool fs_tenant_live(uint64_t state)
{
    return fs_tenant_kind(state) == FS_TENANT_ACTIVE || fs_tenant_kind(state) == FS_TENANT_DYING;
}
static inline uint32_t fs_closing_word(uint32_t gen, bool closing)
{
    return (gen & FS_TENANT_GEN_MASK) << 1 | closing;
}
/* Is the entry, in state `state`, closing? */
static inline bool fs_tenant_closing(uint64_t state, uint32_t closing)
{
    return (closing & 1) && closing >> 1 == fs_tenant_gen(state);
}

/* ------------------------------------------------------------------- cell */

enum { FS_CELL_EMPTY = 0, FS_CELL_WAITING = 1, FS_CELL_GRANTED = 2, FS_CELL_CANCELLED = 3 };
#define FS_CELL_ASYNC 0x1u /* owner waits through its event-loop thread */

/* state word: low 32 bits of seq << 32 | slot index << 4 | FS_CELL_*.
 * Carrying the seq makes a granter's CAS fail on a recycled cell (ABA).
 * Sleepers wait on its low half (fs_cell_futex), which holds the kind.
 * A WAITING word names no slot; in a barging segment (the default: no
 * FAIRSEM_STRICT_FIFO) its slot field may carry two marks (fs_cell_waiting
 * accepts either; every CAS out of WAITING takes the word as read, marks
 * and all):
 *   FS_CELL_ROUSED   set by CAS, from an unroused WAITING word, by anyone
 *                    whose decision found a free slot for the request and
 *                    no running caller to take it (then a futex wake);
 *                    cleared by CAS by the owner alone, before it looks for
 *                    a free slot itself (so a rouse that lands while it
 *                    looks changes the futex word it sleeps on).
 *   FS_CELL_HANDOFF  set by CAS by the owner alone, when a look after a
 *                    rouse lost the slot to a barger: from then on the
 *                    request, once oldest eligible, is handed its slot
 *                    directly, whatever its age.  Never cleared: the cell
 *                    leaves WAITING with it. */
struct fs_cell {
    _Atomic uint64_t owner; /* 0, or FS_OWNER_BIT | proc tag (fs_owner_word) */
    _Atomic uint64_t seq;   /* FIFO order */
    _Atomic uint64_t state; /* futex word in its low half */
    _Atomic uint32_t tenant;
    _Atomic uint32_t flags;  /* FS_CELL_ASYNC */
    _Atomic uint32_t serial; /* owner's tenant-handle serial (forced unregister) */
    uint32_t reserved0;
    _Atomic uint64_t enqueued_ns; /* CLOCK_MONOTONIC, by the owner before the
                                     seq; a request moved by unhide keeps
                                     it: ages, the wait counted at the
                                     grant, and barging decisions (an
                                     oldest eligible request older than
                                     FAIRSEM_HANDOFF_NS is handed its slot) */
    uint8_t pad[FS_CACHELINE - 48];
};
_Static_assert(sizeof(struct fs_cell) == FS_CACHELINE, "cell size");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "fs_cell_futex assumes little-endian");

#define FS_CELL_KIND_BITS 4
#define FS_CELL_SLOT_BITS 28
#define FS_CELL_SEQ_BITS 32
_Static_assert(FS_CELL_KIND_BITS + FS_CELL_SLOT_BITS + FS_CELL_SEQ_BITS == 64, "cell state word");
_Static_assert(FAIRSEM_MAX_SLOTS_LIMIT <= 1u << FS_CELL_SLOT_BITS, "a slot index fits a cell state");

static inline uint64_t fs_cell_word(uint64_t seq, uint32_t kind, uint32_t slot)
{
    return (seq & 0xffffffffu) << FS_CELL_SEQ_BITS |
           (uint64_t)(slot & ((1u << FS_CELL_SLOT_BITS) - 1)) << FS_CELL_KIND_BITS | kind;
}
static inline uint32_t fs_cell_kind(uint64_t s) { return (uint32_t)s & ((1u << FS_CELL_KIND_BITS) - 1); }
static inline uint32_t fs_cell_slot(uint64_t s) { return (uint32_t)s >> FS_CELL_KIND_BITS; }
/* The (low 32 bits of the) seq of the request the state belongs to. */
static inline uint32_t fs_cell_seq(uint64_t s) { return (uint32_t)(s >> FS_CELL_SEQ_BITS); }
/* Is state s a state of the request numbered seq? */
static inline bool fs_cell_of_seq(uint64_t s, uint64_t seq) { return fs_cell_seq(s) == (uint32_t)seq; }
/* The same state word, now of kind `kind` (slot: 0 unless GRANTED). */
static inline uint64_t fs_cell_moved(uint64_t s, uint32_t kind, uint32_t slot)
{
    return fs_cell_word(fs_cell_seq(s), kind, slot);
}
#define FS_CELL_ROUSED (1u << (FS_CELL_SLOT_BITS - 1))
#define FS_CELL_HANDOFF (1u << (FS_CELL_SLOT_BITS - 2))
#define FS_CELL_WAIT_MARKS (FS_CELL_ROUSED | FS_CELL_HANDOFF)
_Static_assert(FAIRSEM_MAX_SLOTS_LIMIT < FS_CELL_HANDOFF, "the waiting marks are not slot indexes");
/* Is s the WAITING word of request seq, marked or not? */
static inline bool fs_cell_waiting(uint64_t s, uint64_t seq)
{
    return fs_cell_kind(s) == FS_CELL_WAITING && fs_cell_of_seq(s, seq) &&
           (fs_cell_slot(s) & ~FS_CELL_WAIT_MARKS) == 0;
}
static inline bool fs_cell_roused(uint64_t s) { return fs_cell_slot(s) & FS_CELL_ROUSED; }
static inline bool fs_cell_handoff(uint64_t s) { return fs_cell_slot(s) & FS_CELL_HANDOFF; }
/* The WAITING word s with `marks` (FS_CELL_WAIT_MARKS) set or cleared. */
static inline uint64_t fs_cell_marked(uint64_t s, uint32_t marks, bool on)
{
    uint64_t bits = (uint64_t)marks << FS_CELL_KIND_BITS;
    return on ? s | bits : s & ~bits;
}
static inline _Atomic uint32_t *fs_cell_futex(struct fs_cell *cell) { return (_Atomic uint32_t *)&cell->state; }

/* OWNER WORD (cell.owner): 0, or FS_OWNER_BIT | the owner's proc tag; no
 * other bit is ever set. */
#define FS_OWNER_BIT (1ull << 63)
static inline uint64_t fs_owner_word(uint32_t tag) { return FS_OWNER_BIT | tag; }
static inline uint32_t fs_owner_tag(uint64_t owner) { return (uint32_t)(owner & FS_TAG_MASK); }
static inline uint32_t fs_owner_record(uint64_t owner) { return fs_tag_proc(fs_owner_tag(owner)); }
/* Could owner word o name a record (exactly FS_OWNER_BIT and a tag)? */
static inline bool fs_owner_well_formed(uint64_t owner)
{
    return (owner & ~(uint64_t)FS_TAG_MASK) == FS_OWNER_BIT;
}

/* BIT SETS: the queue map (bit c: cell c is owned) and the rows of the
 * registrations and opens regions (row p, bit t: record p has tenant t),
 * rows of reg_words words each.  Bit i lives in word i / 64. */
static inline uint64_t fs_bit(uint32_t i) { return 1ull << (i % 64); }
static inline bool fs_bit_test(const _Atomic uint64_t *words, uint32_t i)
{
    return atomic_load(&words[i / 64]) & fs_bit(i);
}
/* Row p of the registrations or opens region. */
static inline _Atomic uint64_t *fs_row(_Atomic uint64_t *rows, uint32_t reg_words, uint32_t p)
{
    return rows + (size_t)p * reg_words;
}

/* --------------------------------------------------------------- counters */

/* COUNTERS.  Each tenant entry index has a block of lifetime counters,
 * bumped by whichever process acts (relaxed fetch_add, no lock) and never
 * reset, and a baseline block, written by the inserter while the entry is
 * INIT: a copy of the lifetime words at that moment.  A tenant's counters
 * are lifetime - baseline, so they start at 0 with each incarnation of its
 * entry; the pool's are the sum of every entry's lifetime block, monotonic
 * because no lifetime word ever decreases, and nothing is folded anywhere a
 * crash could tear.  Each count follows its event: a process killed between
 * the two loses that one count, and nothing is counted twice (only the
 * winner of the CAS that ends a request, or frees a word, counts it).  The
 * blocks live in their own region, away from the tenants' decision lines. */
enum {
    FS_CNT_GRANTS_IMMEDIATE,
    FS_CNT_GRANTS_WAITED,
    FS_CNT_TIMEOUTS,
    FS_CNT_CANCELS,
    FS_CNT_RECLAIMED_SLOTS,
    FS_CNT_RECLAIMED_REQUESTS,
    FS_CNT_HELD_NS,
    FS_CNT_WAIT_NS,
    FS_CNT_WAIT_BUCKET0, /* FS_WAIT_BUCKETS words: the wait histogram */
};
#define FS_WAIT_BUCKETS 26
#define FS_COUNTER_WORDS (FS_CNT_WAIT_BUCKET0 + FS_WAIT_BUCKETS)
_Static_assert(FS_WAIT_BUCKETS == FAIRSEM_WAIT_BUCKETS, "the public histogram's size");
/* Word k of a block is field k of fairsem_counters_t, so a block's values
 * copy straight into the public struct. */
_Static_assert(sizeof(fairsem_counters_t) == FS_COUNTER_WORDS * sizeof(uint64_t), "counter fields");
_Static_assert(offsetof(fairsem_counters_t, grants_waited) == FS_CNT_GRANTS_WAITED * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, timeouts) == FS_CNT_TIMEOUTS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, cancels) == FS_CNT_CANCELS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, reclaimed_slots) == FS_CNT_RECLAIMED_SLOTS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, reclaimed_requests) == FS_CNT_RECLAIMED_REQUESTS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, held_ns) == FS_CNT_HELD_NS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, wait_ns) == FS_CNT_WAIT_NS * 8, "counter order");
_Static_assert(offsetof(fairsem_counters_t, wait_buckets) == FS_CNT_WAIT_BUCKET0 * 8, "counter order");

struct fs_counters {
    _Atomic uint64_t word[FS_COUNTER_WORDS];
    uint8_t pad[FS_CACHELINE * 5 - FS_COUNTER_WORDS * 8];
};
_Static_assert(sizeof(struct fs_counters) == 5 * FS_CACHELINE, "counter block size");

struct fs_tenant_counters {
    struct fs_counters lifetime; /* hot: the first line takes every count but the histogram */
    struct fs_counters baseline;
};

/* The wait histogram: bucket k < FS_WAIT_BUCKETS - 1 counts waits up to
 * 1, 2, 5 x 10^(k/3) us (1 us .. 100 s); the last one, longer waits. */
static inline uint64_t fs_wait_bucket_bound(unsigned k)
{
    static const uint64_t steps[3] = {1, 2, 5};
    if (k >= FS_WAIT_BUCKETS - 1)
        return UINT64_MAX;
    uint64_t bound = steps[k % 3] * 1000u;
    for (unsigned decade = 0; decade < k / 3; decade++)
        bound *= 10;
    return bound;
}

static inline unsigned fs_wait_bucket(uint64_t wait_ns)
{
    unsigned k = 0;
    while (k < FS_WAIT_BUCKETS - 1 && wait_ns > fs_wait_bucket_bound(k))
        k++;
    return k;
}

/* ------------------------------------------------------------- slot words */

enum { FS_SLOT_FREE = 0, FS_SLOT_HELD = 1, FS_SLOT_RESERVED = 2 };

/* kind:2 | stamp:24 | who:12 | owner:26 (see "slot word" above). */
#define FS_WHO_BITS 12
#define FS_STAMP_BITS 24
#define FS_STAMP_MASK ((1u << FS_STAMP_BITS) - 1)
_Static_assert(2 + FS_STAMP_BITS + FS_WHO_BITS + FS_TAG_BITS == 64, "slot word");
_Static_assert(FAIRSEM_MAX_TENANTS_LIMIT <= 1u << FS_WHO_BITS, "a tenant index fits a HELD slot word");
_Static_assert(FAIRSEM_MAX_WAITERS_LIMIT <= 1u << FS_WHO_BITS, "a cell index fits a RESERVED slot word");
_Static_assert(FS_STAMP_BITS <= FS_CELL_SEQ_BITS, "a reservation's stamp is taken from the cell's seq");

static inline uint64_t fs_slot_word(unsigned kind, uint32_t stamp, uint32_t who, uint32_t proc_tag)
{
    return (uint64_t)kind << 62 | (uint64_t)(stamp & FS_STAMP_MASK) << (FS_TAG_BITS + FS_WHO_BITS) |
           (uint64_t)(who & ((1u << FS_WHO_BITS) - 1)) << FS_TAG_BITS | (proc_tag & FS_TAG_MASK);
}
static inline unsigned fs_slot_kind(uint64_t w) { return (unsigned)(w >> 62); }
static inline uint32_t fs_slot_stamp(uint64_t w)
{
    return (uint32_t)(w >> (FS_TAG_BITS + FS_WHO_BITS)) & FS_STAMP_MASK;
}
static inline uint32_t fs_slot_who(uint64_t w) { return (uint32_t)(w >> FS_TAG_BITS) & ((1u << FS_WHO_BITS) - 1); }
static inline uint32_t fs_slot_owner(uint64_t w) { return (uint32_t)w & FS_TAG_MASK; }
/* The record index a non-free slot word names (holder or granter). */
static inline uint32_t fs_slot_record(uint64_t w) { return fs_tag_proc(fs_slot_owner(w)); }
/* The stamp a reservation for the request numbered seq carries. */
static inline uint32_t fs_seq_stamp(uint64_t seq) { return (uint32_t)seq & FS_STAMP_MASK; }
/* The stamp a reservation for the request in cell state s carries. */
static inline uint32_t fs_cell_stamp(uint64_t s) { return fs_seq_stamp(fs_cell_seq(s)); }
/* Is w a reservation for the request numbered seq in cell c? */
static inline bool fs_slot_reserved_for(uint64_t w, uint32_t c, uint64_t seq)
{
    return fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) == c && fs_slot_stamp(w) == fs_seq_stamp(seq);
}
/* Does cell state s say GRANTED with slot i, for the request reservation w
 * was made for?  Then w belongs to the cell's owner, not to its granter. */
static inline bool fs_cell_granted_by(uint64_t s, uint32_t i, uint64_t w)
{
    return fs_cell_kind(s) == FS_CELL_GRANTED && fs_cell_slot(s) == i && fs_cell_stamp(s) == fs_slot_stamp(w);
}

/* A format word derived from the structs: builds that disagree never attach. */
#define FS_LAYOUT_HASH                                                                                   \
    ((uint32_t)(sizeof(struct fs_header) * 1000003u ^ sizeof(struct fs_proc) * 10007u ^                  \
                sizeof(struct fs_tenant) * 101u ^ sizeof(struct fs_cell) * 7u ^                          \
                sizeof(struct fs_tenant_counters) * 3u ^ FS_LAYOUT_VERSION << 24 ^ FS_STAMP_BITS << 16 ^ \
                FS_WHO_BITS << 8 ^ FS_TAG_BITS))

#endif /* FAIRSEM_LAYOUT_H */
