/*
 * wait.c - the event-loop API and the library thread behind it.
 *
 * Async requests sleep on nothing: their cells are marked FS_CELL_ASYNC, so
 * a granter also bumps the owner record's wake word.  One thread per handle
 * (started with the first async request) sleeps on that word, settles the
 * requests it tracks, queues completed ones on a wfcqueue and makes the
 * handle's eventfd readable.  The user's event loop polls that descriptor
 * and collects completions with fairsem_events().
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
static void probe_referenced(fairsem_t *sem, struct fs_idle *me)
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
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        if (seen[p / 64] & fs_bit(p))
            fairsem__proc_reap_if_dead(sem, p, NULL);
}

void fairsem__reap_referenced(fairsem_t *sem) { probe_referenced(sem, NULL); }

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

/* A round: dead holders' slots back (a reap runs the scheduler), hidden
 * requests nudged, and every FS_SAFETY_ROUNDS the scheduler as a safety
 * net (nothing should be left for it: releasers and cancellers schedule). */
static void probe_round(fairsem_t *sem, struct fs_idle *me)
{
    probe_referenced(sem, me);
    if (me->rounds++ % FS_SAFETY_ROUNDS == 0) {
        /* DEAD records nothing names any more still need their lease-held
         * part finished (registrations, closing words, tenant work) when
         * the scrubber that held the lease stopped or died. */
        for (uint32_t p = 0; p < sem->geo.max_procs; p++)
            if (fs_proc_is_dead(atomic_load(&sem->procs[p].state)))
                fairsem__proc_reap_if_dead(sem, p, NULL);
        fairsem__schedule(sem, NULL, NULL);
    }
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

static void request_unref(fairsem_request_t *req)
{
    if (atomic_fetch_sub(&req->refs, 1) == 1)
        free(req);
}

int fairsem__request_settle(fairsem_request_t *req)
{
    for (;;) {
        int st = atomic_load(&req->state);
        if (st == FS_REQ_SETTLING) {
            sched_yield();
            continue;
        }
        if (st != FS_REQ_QUEUED)
            return st;
        /* Lost to a concurrent settle or cancel: look again (st is SETTLING
         * now, which is no outcome). */
        if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_SETTLING))
            continue;
        fairsem_tenant_t *t = req->tenant;
        fairsem_t *sem = t->sem;
        uint64_t s = atomic_load(&sem->cells[req->cell].state);
        int next = FS_REQ_QUEUED;
        if (fs_cell_kind(s) == FS_CELL_GRANTED) {
            next = fairsem__claim_grant(t, req->cell, &req->slot) == 0 ? FS_REQ_GRANTED
                                                                                  : FS_REQ_CANCELLED;
        } else if (fs_cell_kind(s) == FS_CELL_CANCELLED) {
            fairsem__ticket_free(sem, req->cell);
            next = FS_REQ_CANCELLED;
        }
        if (next == FS_REQ_CANCELLED)
            fairsem__tenant_busy_put(t);
        atomic_store(&req->state, next);
        return next;
    }
}

/* The waker's share of fairsem__ticket_unhide, done while it owns the
 * request (SETTLING) so a concurrent cancel sees a consistent cell. */
static void unhide(fairsem_request_t *req)
{
    int st = FS_REQ_QUEUED;
    if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_SETTLING))
        return;
    fairsem__ticket_unhide(req->tenant, true, &req->cell, req->seq, &req->reserved_seen);
    atomic_store(&req->state, FS_REQ_QUEUED);
}

/* Run unhide for the tracked requests some reservation names (one scan of
 * the slots serves them all); true if any still looks hidden. */
static bool unhide_hidden(fairsem_t *sem, fairsem_request_t **track, size_t n)
{
    uint64_t reserved[(FAIRSEM_MAX_WAITERS_LIMIT + 64) / 64] = {0};
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) < sem->geo.max_waiters)
            mark(reserved, fs_slot_who(w));
    }
    bool hidden = false;
    for (size_t k = 0; k < n; k++) {
        fairsem_request_t *req = track[k];
        if (!(reserved[req->cell / 64] & fs_bit(req->cell)) && !req->reserved_seen)
            continue;
        unhide(req);
        hidden |= req->reserved_seen != 0;
    }
    return hidden;
}

static void signal_efd(struct fs_events *ev)
{
    uint64_t one = 1;
    ssize_t n = write(ev->efd, &one, sizeof one);
    (void)n;
}

static void wake_thread(fairsem_t *sem)
{
    struct fs_proc *rec = &sem->procs[sem->proc_idx];
    atomic_fetch_add(&rec->wake, 1);
    fairsem__futex_wake(&rec->wake, INT_MAX);
}

/* The waker: tracks queued async requests until each completes. */
static void *waker_main(void *arg)
{
    fairsem_t *sem = arg;
    struct fs_events *ev = sem->events;
    struct fs_proc *rec = &sem->procs[sem->proc_idx];
    fairsem_request_t **track = NULL;
    size_t n = 0, cap = 0;
    struct fs_idle idle = {0};
    uint32_t settled = atomic_load(&rec->wake), nudged = atomic_load(&rec->nudge);
    uint64_t settled_ns = 0;
    bool hidden = false;
    while (!atomic_load(&ev->stop)) {
        uint32_t seen = atomic_load(&rec->wake);
        /* Tracked requests change with the wake word: settle them then, when
         * new ones arrive, and (a safety net) after a wake at least
         * FS_POLL_NS after the last settling. */
        uint64_t now = fairsem__now_ns();
        bool news = seen != settled || now - settled_ns >= FS_POLL_NS;
        if (news) {
            settled = seen;
            settled_ns = now;
        }
        struct cds_wfcq_node *node;
        while ((node = __cds_wfcq_dequeue_nonblocking(&ev->pending_head, &ev->pending_tail)) &&
               node != CDS_WFCQ_WOULDBLOCK) {
            news = true;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                fairsem_request_t **grown = realloc(track, ncap * sizeof *grown);
                if (!grown) { /* retry later; the node goes back */
                    cds_wfcq_enqueue(&ev->pending_head, &ev->pending_tail, node);
                    break;
                }
                track = grown;
                cap = ncap;
            }
            track[n++] = caa_container_of(node, fairsem_request_t, node);
        }
        bool completed = false;
        for (size_t k = 0; news && k < n;) {
            if (fairsem__request_settle(track[k]) == FS_REQ_QUEUED) {
                k++;
                continue;
            }
            cds_wfcq_node_init(&track[k]->node);
            cds_wfcq_enqueue(&ev->done_head, &ev->done_tail, &track[k]->node);
            track[k] = track[--n];
            completed = true;
        }
        if (completed)
            signal_efd(ev);
        uint64_t nap = FS_IDLE_NS;
        if (n) {
            nap = fairsem__idle(sem, &idle);
            if (hidden)
                nap = FS_POLL_NS; /* unhide moves a request on its second look */
        } else {
            fairsem__idle_leave(sem, &idle);
        }
        fairsem__futex_wait(&rec->wake, seen, nap);
        if (n) {
            uint32_t nudges = atomic_load(&rec->nudge);
            if (nudges != nudged || hidden) {
                nudged = nudges;
                hidden = unhide_hidden(sem, track, n);
            }
        }
    }
    fairsem__idle_leave(sem, &idle);
    for (size_t k = 0; k < n; k++)
        request_unref(track[k]);
    free(track);
    return NULL;
}

static int events_start(fairsem_t *sem)
{
    pthread_mutex_lock(&sem->attach_lock);
    int rc = 0;
    if (!sem->events) {
        struct fs_events *ev = calloc(1, sizeof *ev);
        if (!ev) {
            rc = -ENOMEM;
            goto out;
        }
        ev->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ev->efd < 0) {
            rc = -errno;
            free(ev);
            goto out;
        }
        cds_wfcq_init(&ev->pending_head, &ev->pending_tail);
        cds_wfcq_init(&ev->done_head, &ev->done_tail);
        pthread_mutex_init(&ev->collect_lock, NULL);
        sem->events = ev;
        if ((rc = -pthread_create(&ev->thread, NULL, waker_main, sem)) < 0) {
            close(ev->efd);
            free(ev);
            sem->events = NULL;
        }
    }
out:
    pthread_mutex_unlock(&sem->attach_lock);
    return rc;
}

void fairsem__events_stop(fairsem_t *sem)
{
    struct fs_events *ev = sem->events;
    if (!ev)
        return;
    atomic_store(&ev->stop, 1);
    wake_thread(sem);
    pthread_join(ev->thread, NULL);
    struct cds_wfcq_node *node;
    while ((node = __cds_wfcq_dequeue_nonblocking(&ev->pending_head, &ev->pending_tail)) &&
           node != CDS_WFCQ_WOULDBLOCK)
        request_unref(caa_container_of(node, fairsem_request_t, node));
    while ((node = __cds_wfcq_dequeue_nonblocking(&ev->done_head, &ev->done_tail)) &&
           node != CDS_WFCQ_WOULDBLOCK)
        request_unref(caa_container_of(node, fairsem_request_t, node));
    close(ev->efd);
    pthread_mutex_destroy(&ev->collect_lock);
    free(ev);
    sem->events = NULL;
}

int fairsem_event_fd(fairsem_t *sem)
{
    if (!sem)
        return -EINVAL;
    int rc = fairsem__attach(sem);
    if (rc == 0)
        rc = events_start(sem);
    return rc < 0 ? rc : sem->events->efd;
}

int fairsem_request_start(fairsem_tenant_t *tenant, void *user, fairsem_request_t **out)
{
    tenant = tenant ? tenant : fairsem_tenant_current();
    if (!tenant || !out)
        return -EINVAL;
    fairsem_t *sem = tenant->sem;
    int rc = fairsem__tenant_busy_get(tenant);
    if (rc < 0)
        return rc;
    fairsem_request_t *req = calloc(1, sizeof *req);
    if (!req || (rc = events_start(sem)) < 0) {
        free(req);
        fairsem__tenant_busy_put(tenant);
        return req ? rc : -ENOMEM;
    }
    req->tenant = tenant;
    req->epoch = atomic_load(&fairsem__fork_epoch);
    req->user = user;
    req->async = true;
    atomic_store(&req->refs, 1);
    rc = fairsem__schedule(sem, tenant, &req->slot);
    if (rc == 0) {
        atomic_store(&req->state, FS_REQ_GRANTED);
    } else if (rc == -EAGAIN && (rc = fairsem__ticket_enqueue(tenant, true, &req->cell, &req->seq)) == 0) {
        atomic_store(&req->state, FS_REQ_QUEUED);
        atomic_store(&req->refs, 2); /* the waker's */
        cds_wfcq_node_init(&req->node);
        cds_wfcq_enqueue(&sem->events->pending_head, &sem->events->pending_tail, &req->node);
        wake_thread(sem);
        fairsem__schedule(sem, NULL, NULL);
    } else {
        free(req);
        fairsem__tenant_busy_put(tenant);
        return rc;
    }
    *out = req;
    return 0;
}

/* A request started before a fork belongs to the parent: in the child it
 * reports -ECANCELED and is never touched in shared memory. */
static bool inherited(const fairsem_request_t *req)
{
    return req->epoch != atomic_load(&fairsem__fork_epoch);
}

int fairsem_request_result(fairsem_request_t *req, fairsem_slot_t *slot)
{
    if (!req || !slot)
        return -EINVAL;
    if (inherited(req))
        return -ECANCELED;
    int st = fairsem__request_settle(req);
    switch (st) {
    case FS_REQ_GRANTED:
        if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_TAKEN))
            return fairsem_request_result(req, slot);
        *slot = req->slot;
        return 0;
    case FS_REQ_TAKEN:
        return -EALREADY;
    case FS_REQ_CANCELLED:
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}

int fairsem_request_cancel(fairsem_request_t *req)
{
    if (!req)
        return -EINVAL;
    if (inherited(req))
        return 0;
    for (;;) {
        int st = atomic_load(&req->state);
        switch (st) {
        case FS_REQ_SETTLING:
            sched_yield();
            continue;
        case FS_REQ_TAKEN:
            return -EALREADY;
        case FS_REQ_CANCELLED:
            return 0;
        case FS_REQ_GRANTED:
            if (atomic_compare_exchange_strong(&req->state, &st, FS_REQ_CANCELLED)) {
                fairsem_release(req->tenant, req->slot);
                return 0;
            }
            continue;
        default: /* QUEUED */
            break;
        }
        if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_SETTLING))
            continue;
        fairsem_tenant_t *t = req->tenant;
        fairsem_t *sem = t->sem;
        uint32_t granted;
        if (fairsem__ticket_cancel(sem, req->cell, &granted) == 0) {
            /* A grant raced the cancel: take the slot and give it back. */
            fairsem_slot_t slot;
            if (fairsem__claim_grant(t, req->cell, &slot) == 0)
                fairsem_release(t, slot);
            else
                fairsem__tenant_busy_put(t);
        } else {
            fairsem__ticket_free(sem, req->cell);
            fairsem__schedule(sem, NULL, NULL);
            fairsem__tenant_busy_put(t);
        }
        atomic_store(&req->state, FS_REQ_CANCELLED);
        wake_thread(sem); /* so the waker reports it */
        return 0;
    }
}

void fairsem_request_free(fairsem_request_t *req)
{
    if (!req)
        return;
    if (inherited(req)) {
        free(req); /* the child's copy: the waker's reference died with the fork */
        return;
    }
    if (atomic_load(&req->state) != FS_REQ_TAKEN)
        fairsem_request_cancel(req);
    request_unref(req);
}

void *fairsem_request_user(const fairsem_request_t *req) { return req ? req->user : NULL; }

size_t fairsem_events(fairsem_t *sem, fairsem_request_t **done, size_t cap)
{
    if (!sem || !sem->events || !done)
        return 0;
    struct fs_events *ev = sem->events;
    uint64_t count;
    ssize_t r = read(ev->efd, &count, sizeof count);
    (void)r;
    size_t n = 0;
    struct cds_wfcq_node *node;
    /* The wfcqueue allows concurrent enqueuers but only one dequeuer. */
    pthread_mutex_lock(&ev->collect_lock);
    while (n < cap && (node = __cds_wfcq_dequeue_nonblocking(&ev->done_head, &ev->done_tail)) &&
           node != CDS_WFCQ_WOULDBLOCK) {
        fairsem_request_t *req = caa_container_of(node, fairsem_request_t, node);
        /* The waker's reference travelled with the node.  Dropping it tells
         * in one step whether the user still has the request: if ours was
         * the last reference, fairsem_request_free() came first and the
         * request is freed here, never reported. */
        if (atomic_fetch_sub(&req->refs, 1) == 1)
            free(req);
        else
            done[n++] = req;
    }
    bool more = !cds_wfcq_empty(&ev->done_head, &ev->done_tail);
    pthread_mutex_unlock(&ev->collect_lock);
    if (more)
        signal_efd(ev);
    return n;
}
