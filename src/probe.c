/*
 * probe.c - finding dead records: the probe rounds and who does them.
 *
 * Nothing announces a death, so somebody has to look: one waiting thread
 * per pool, the prober (it holds the lock on FS_PROBER_BYTE), probes every
 * FS_POLL_NS each record a slot word or a queued cell names (one
 * F_OFD_GETLK each, proc.c proves and scrubs), nudges requests a stopped
 * granter hides, and kicks the scheduler after a reap and every
 * FS_SAFETY_ROUNDS rounds.  One waiting thread per handle, the watcher,
 * checks every FS_IDLE_NS that the prober still beats and does a deputy
 * round when it does not; everyone else sleeps until woken
 * (docs/design.md section 6).  This sits next to proc.c, not in it,
 * because it runs the scheduler and proc.c is below it (schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

#define SEEN_WORDS ((FAIRSEM_MAX_PROCS_LIMIT + 64) / 64)

static void mark(uint64_t *seen, uint32_t p) { seen[p / 64] |= fs_bit(p); }

/* Is slot word w (at i) a reservation whose request still waits?  Normally
 * only for the microseconds between a granter's reserve and its grant. */
static bool reservation_pending(fairsem_t *sem, uint64_t w)
{
    uint32_t c = fs_slot_who(w);
    if (fs_slot_kind(w) != FS_SLOT_RESERVED || c >= sem->geo.max_waiters)
        return false;
    uint64_t s = atomic_load(&sem->cells[c].state);
    return fs_cell_kind(s) == FS_CELL_WAITING && fs_cell_stamp(s) == fs_slot_stamp(w);
}

/* A prober's memory: was reservation (i, w) pending in its last round too? */
static bool pending_before(const struct fs_idle *me, uint32_t i, uint64_t w)
{
    for (unsigned k = 0; k < me->npending; k++)
        if (me->pending_slot[k] == i && me->pending_word[k] == w)
            return true;
    return false;
}

/* Wake the owner of cell c to look whether it is hidden (ticket_unhide). */
static void nudge(fairsem_t *sem, uint32_t c)
{
    uint64_t owner = atomic_load(&sem->cells[c].owner);
    if (owner)
        atomic_fetch_add(&sem->procs[fs_tag_proc((uint32_t)owner) % sem->geo.max_procs].nudge, 1);
    fairsem__ticket_wake(sem, c);
}

/* Probe every record a slot word or a queued cell names, each once.  With
 * `me` (a prober's round), also nudge the owners of requests hidden by the
 * same reservation two rounds in a row (its granter is stopped). */
static bool probe_referenced(fairsem_t *sem, struct fs_idle *me)
{
    uint64_t seen[SEEN_WORDS] = {0};
    unsigned npending = 0;
    uint32_t pending_slot[FS_PENDING_MAX];
    uint64_t pending_word[FS_PENDING_MAX];
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (!w)
            continue;
        mark(seen, fs_slot_record(w));
        if (me && fs_slot_kind(w) == FS_SLOT_RESERVED && reservation_pending(sem, w)) {
            if (pending_before(me, i, w))
                nudge(sem, fs_slot_who(w));
            if (npending < FS_PENDING_MAX) {
                pending_slot[npending] = i;
                pending_word[npending++] = w;
            }
        }
    }
    if (me) {
        me->npending = npending;
        for (unsigned k = 0; k < npending; k++) {
            me->pending_slot[k] = pending_slot[k];
            me->pending_word[k] = pending_word[k];
        }
    }
    /* Queued cells only (the map): a process that died before announcing
     * its cell is found by fairsem_reap, which probes every record. */
    for (uint32_t k = 0; k < sem->geo.map_words; k++) {
        for (uint64_t bits = atomic_load(&sem->map[k]); bits; bits &= bits - 1) {
            uint32_t c = k * 64 + (uint32_t)__builtin_ctzll(bits);
            uint64_t o = c < sem->geo.max_waiters ? atomic_load(&sem->cells[c].owner) : 0;
            if (o)
                mark(seen, fs_owner_record(o));
        }
    }
    bool reaped = false;
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        if (seen[p / 64] & fs_bit(p))
            reaped |= fairsem__proc_reap_if_dead(sem, p, NULL);
    return reaped;
}

void fairsem__reap_referenced(fairsem_t *sem)
{
    if (probe_referenced(sem, NULL))
        fairsem__kick(sem); /* what the dead held is due to waiters first */
}

/* ----------------------------------------------------------- the prober */

static bool stale(uint64_t beat, uint64_t now)
{
    return beat == 0 || (now > beat && now - beat >= FS_PROBER_STALE_NS);
}

/* Take a role among the threads of this handle (prober_epoch,
 * watcher_epoch: the fork epoch of the thread that has it, 0 none; a fork
 * child's epoch differs, so a role its parent's thread had is free). */
static bool take_local(_Atomic uint64_t *role)
{
    uint64_t epoch = atomic_load(&fairsem__fork_epoch), held = atomic_load(role);
    return held != epoch && atomic_compare_exchange_strong(role, &held, epoch);
}

/* Wake the owner of one waiting request (of record `owner` only, if not 0). */
static void wake_one(fairsem_t *sem, uint64_t owner)
{
    for (uint32_t k = 0; k < sem->geo.map_words; k++) {
        for (uint64_t bits = atomic_load(&sem->map[k]); bits; bits &= bits - 1) {
            uint32_t c = k * 64 + (uint32_t)__builtin_ctzll(bits);
            if (c >= sem->geo.max_waiters || fs_cell_kind(atomic_load(&sem->cells[c].state)) != FS_CELL_WAITING ||
                (owner && atomic_load(&sem->cells[c].owner) != owner))
                continue;
            fairsem__ticket_wake(sem, c);
            return;
        }
    }
}

/* Take the prober role if nobody has it: when this thread starts waiting,
 * and whenever the beat is stale (one non-blocking fcntl).  The lock on
 * FS_PROBER_BYTE decides between processes, and the kernel drops it if the
 * prober dies, so a new waiter replaces a dead prober at once (sleeping
 * ones within FS_IDLE_NS); prober_epoch decides between the threads of one
 * handle, whose locks the kernel does not tell apart. */
static void become_prober(fairsem_t *sem, struct fs_idle *me, uint64_t now)
{
    if (me->tried && !stale(atomic_load(&sem->hdr->probe_beat), now))
        return;
    me->tried = true;
    if (!take_local(&sem->prober_epoch))
        return;
    if (fairsem__lease_lock(sem->fd, FS_PROBER_BYTE) != 0) {
        atomic_store(&sem->prober_epoch, 0);
        return;
    }
    /* First round one interval from now: a role taken over from a prober
     * that just left needs no catching up. */
    me->prober = true;
    me->last_round_ns = now;
    me->npending = 0;
    atomic_store(&sem->hdr->probe_beat, now);
}

/* A round: dead holders' slots back, hidden requests nudged, then a kick
 * if a reap freed anything, and every FS_SAFETY_ROUNDS one anyway, as a
 * safety net (nothing should be left for it: the rule in schedule.c makes
 * every entry point kick what it freed). */
static void probe_round(fairsem_t *sem, struct fs_idle *me)
{
    bool kick = probe_referenced(sem, me);
    if (me->rounds++ % FS_SAFETY_ROUNDS == 0) {
        /* DEAD records nothing names any more still need their lease-held
         * part finished (registrations, closing words, tenant work) when
         * the scrubber that held the lease stopped or died. */
        for (uint32_t p = 0; p < sem->geo.max_procs; p++)
            if (fs_proc_is_dead(atomic_load(&sem->procs[p].state)))
                fairsem__proc_reap_if_dead(sem, p, NULL);
        kick = true;
    }
    if (kick)
        fairsem__kick(sem);
}

uint64_t fairsem__idle(fairsem_t *sem, struct fs_idle *me)
{
    uint64_t now = fairsem__now_ns();
    if (!me->prober)
        become_prober(sem, me, now);
    /* One thread per handle, the watcher, keeps an eye on the prober; the
     * handle's other threads sleep until woken (FS_LONG_NS is a safety net
     * only).  A prober watches too, so that its handle has a watcher again
     * as soon as it leaves. */
    if (!me->watcher)
        me->watcher = take_local(&sem->watcher_epoch);
    if (me->prober) {
        if (now - me->last_round_ns >= FS_POLL_NS) {
            me->last_round_ns = now;
            atomic_store(&sem->hdr->probe_beat, now);
            probe_round(sem, me);
        }
        return FS_POLL_NS;
    }
    if (!me->watcher)
        return FS_LONG_NS;
    /* The prober is stopped (its lock is held but it does not beat): one
     * watcher per stale period does its round instead. */
    uint64_t beat = atomic_load(&sem->hdr->probe_beat);
    if (stale(beat, now) && atomic_compare_exchange_strong(&sem->hdr->probe_beat, &beat, now))
        probe_round(sem, me);
    return FS_IDLE_NS;
}

bool fairsem__idle_hides(fairsem_t *sem, struct fs_idle *me, uint32_t c)
{
    uint32_t nudges = atomic_load(&sem->procs[sem->proc_idx].nudge);
    bool nudged = nudges != me->nudges_seen;
    me->nudges_seen = nudges;
    for (unsigned k = 0; !nudged && k < me->npending; k++)
        nudged = fs_slot_who(me->pending_word[k]) == c;
    return nudged;
}

void fairsem__idle_leave(fairsem_t *sem, struct fs_idle *me)
{
    if (me->watcher) {
        /* Hand the watch to another waiting thread of this handle. */
        me->watcher = false;
        atomic_store(&sem->watcher_epoch, 0);
        wake_one(sem, fs_owner_word(sem->proc_tag));
    }
    if (!me->prober)
        return;
    me->prober = false;
    fairsem__lease_unlock(sem->fd, FS_PROBER_BYTE);
    atomic_store(&sem->prober_epoch, 0);
    uint64_t beat = me->last_round_ns;
    atomic_compare_exchange_strong(&sem->hdr->probe_beat, &beat, 0);
    /* Hand the role on: wake one waiting request's owner, which finds the
     * beat cleared and takes the role.  (If that owner is stopped, the
     * watchers' FS_IDLE_NS sleeps bound the gap.) */
    wake_one(sem, 0);
}
