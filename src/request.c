/*
 * request.c - the event-loop API (fairsem_request_*, fairsem_events,
 * fairsem_event_fd) and the library thread behind it, the waker.
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
            next = fairsem__slot_consume_grant(t, req->cell, &req->slot) == 0 ? FS_REQ_GRANTED : FS_REQ_CANCELLED;
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
 * request (SETTLING) so a concurrent cancel sees a consistent cell.  True
 * if it moved (visible again: the caller kicks). */
static bool unhide(fairsem_request_t *req)
{
    int st = FS_REQ_QUEUED;
    if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_SETTLING))
        return false;
    bool moved = fairsem__ticket_unhide(req->tenant, true, &req->cell, req->seq, &req->reserved_seen);
    atomic_store(&req->state, FS_REQ_QUEUED);
    return moved;
}

/* Run unhide for the tracked requests some reservation names (one scan of
 * the slots serves them all); true if any still looks hidden. */
static bool unhide_hidden(fairsem_t *sem, fairsem_request_t **track, size_t n)
{
    uint64_t reserved[(FAIRSEM_MAX_WAITERS_LIMIT + 64) / 64] = {0};
    for (uint32_t i = 0; i < sem->geo.max_slots; i++) {
        uint64_t w = atomic_load(&sem->slots[i]);
        if (fs_slot_kind(w) == FS_SLOT_RESERVED && fs_slot_who(w) < sem->geo.max_waiters)
            reserved[fs_slot_who(w) / 64] |= fs_bit(fs_slot_who(w));
    }
    bool hidden = false, moved = false;
    for (size_t k = 0; k < n; k++) {
        fairsem_request_t *req = track[k];
        if (!(reserved[req->cell / 64] & fs_bit(req->cell)) && !req->reserved_seen)
            continue;
        moved |= unhide(req);
        hidden |= req->reserved_seen != 0;
    }
    if (moved)
        fairsem__kick(sem);
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
    while ((node = __cds_wfcq_dequeue_nonblocking(&ev->done_head, &ev->done_tail)) && node != CDS_WFCQ_WOULDBLOCK)
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
    int rc = fairsem__attach_kick(sem);
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
        fairsem__kick(sem); /* we may be next already */
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
static bool inherited(const fairsem_request_t *req) { return req->epoch != atomic_load(&fairsem__fork_epoch); }

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
    case FS_REQ_TAKEN: return -EALREADY;
    case FS_REQ_CANCELLED: return -ECANCELED;
    default: return -EAGAIN;
    }
}

/* Cancel, counting a request this call takes out of the queue in counter
 * `why` (FS_CNT_CANCELS, FS_CNT_TIMEOUTS). */
static int request_end(fairsem_request_t *req, unsigned why)
{
    if (!req)
        return -EINVAL;
    if (inherited(req))
        return 0;
    for (;;) {
        int st = atomic_load(&req->state);
        switch (st) {
        case FS_REQ_SETTLING: sched_yield(); continue;
        case FS_REQ_TAKEN: return -EALREADY;
        case FS_REQ_CANCELLED: return 0;
        case FS_REQ_GRANTED:
            if (atomic_compare_exchange_strong(&req->state, &st, FS_REQ_CANCELLED)) {
                fairsem_release(req->tenant, req->slot);
                return 0;
            }
            continue;
        default: /* QUEUED */ break;
        }
        if (!atomic_compare_exchange_strong(&req->state, &st, FS_REQ_SETTLING))
            continue;
        fairsem_tenant_t *t = req->tenant;
        fairsem_t *sem = t->sem;
        uint32_t granted;
        int ended = fairsem__ticket_cancel(sem, req->cell, &granted);
        if (ended == FS_TICKET_GRANTED) {
            /* A grant raced the cancel: take the slot and give it back. */
            fairsem_slot_t slot;
            if (fairsem__slot_consume_grant(t, req->cell, &slot) == 0)
                fairsem_release(t, slot);
            else
                fairsem__tenant_busy_put(t);
        } else {
            if (ended == FS_TICKET_CANCELLED)
                fs_count(sem, t->idx, why, 1);
            fairsem__ticket_free(sem, req->cell);
            fairsem__kick(sem); /* our leaving may lift shares */
            fairsem__tenant_busy_put(t);
        }
        atomic_store(&req->state, FS_REQ_CANCELLED);
        wake_thread(sem); /* so the waker reports it */
        return 0;
    }
}

int fairsem_request_cancel(fairsem_request_t *req) { return request_end(req, FS_CNT_CANCELS); }

int fairsem_request_expire(fairsem_request_t *req) { return request_end(req, FS_CNT_TIMEOUTS); }

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
