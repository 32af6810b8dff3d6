/*
 * segment.c - creating, validating, attaching and detaching segments, and
 * what a fork child must drop.
 *
 * Creation publishes atomically: the segment is built in an O_TMPFILE under
 * /dev/shm, sized with posix_fallocate (a full /dev/shm fails here, never as
 * SIGBUS later), given its mode with fchmod (the umask does not decide), and
 * only then linked under its name with linkat, which fails with EEXIST if
 * another creator won.  No process can ever see a half-built segment under
 * a name.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

/* Open handles, so a fork child can drop what it inherited.  A process-local
 * mutex: taken only by open, close and fork, never by acquire or release.
 * Openers hold it from before the file is opened until the handle is in the
 * registry (and close from before it leaves until the file is closed), so a
 * fork by another thread never copies a descriptor the child would not
 * know to drop. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static fairsem_t *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) { pthread_mutex_lock(&registry_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&registry_lock); }

/* The child shares the parent's open file descriptions, hence its leases:
 * give every handle a description of its own before anything else runs, so
 * the parent's leases die with the parent. */
static void atfork_child(void)
{
    atomic_fetch_add(&fairsem__fork_epoch, 1);
    for (fairsem_t *sem = registry; sem; sem = sem->next_open) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", sem->fd);
        int mode = (sem->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
        int fd = open(path, mode);
        if (fd < 0 && sem->name[0])
            fd = shm_open(sem->name, mode, 0);
        if (fd >= 0) {
            dup3(fd, sem->fd, O_CLOEXEC);
            close(fd);
            /* The inherited mapping pins the parent's description too (a
             * MAP_SHARED mapping holds a reference to its file), and with it
             * the parent's lease: map our own description in its place. */
            mmap(sem->base, sem->size, sem->readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                 sem->fd, 0);
        } else {
            close(sem->fd);
            sem->fd = -1;
        }
        pthread_mutex_init(&sem->attach_lock, NULL);
        if (sem->events) {
            close(sem->events->efd);
            free(sem->events); /* its thread does not exist in the child */
            sem->events = NULL;
        }
        for (unsigned t = 0; t < sem->geo.max_tenants; t++) {
            atomic_store(&sem->local_refs[t], 0);
            atomic_store(&sem->local_open[t], 0);
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

static void atfork_install(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

static void registry_enter(void)
{
    pthread_once(&atfork_once, atfork_install);
    pthread_mutex_lock(&registry_lock);
}

static int registry_leave(int rc)
{
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

/* Both under registry_lock. */
static void registry_add(fairsem_t *sem)
{
    sem->next_open = registry;
    registry = sem;
}

/* False if sem is not an open handle (closed already, or never opened). */
static bool registry_remove(fairsem_t *sem)
{
    for (fairsem_t **p = &registry; *p; p = &(*p)->next_open) {
        if (*p == sem) {
            *p = sem->next_open;
            return true;
        }
    }
    return false;
}

/* "/x": one leading '/', no other, and not "/." or "/..", which name the
 * directory /dev/shm itself or its parent, never a segment. */
static int check_name(const char *name)
{
    if (!name || name[0] != '/' || name[1] == '\0' || strchr(name + 1, '/') || strcmp(name, "/.") == 0 ||
        strcmp(name, "/..") == 0)
        return -EINVAL;
    if (strlen(name) > FAIRSEM_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

static uint64_t align_up(uint64_t v) { return (v + FS_CACHELINE - 1) & ~(uint64_t)(FS_CACHELINE - 1); }

/* Fill the geometry fields of `h` from its capacities; returns total size. */
static uint64_t layout_geometry(struct fs_header *h)
{
    h->map_words = (h->max_waiters + 63) / 64;
    h->reg_words = (h->max_tenants + 63) / 64;
    uint64_t off = sizeof(struct fs_header);
    h->off_map = off;
    off = align_up(off + (uint64_t)h->map_words * 8);
    h->off_procs = off;
    off = align_up(off + (uint64_t)h->max_procs * sizeof(struct fs_proc));
    h->off_regs = off;
    off = align_up(off + (uint64_t)h->max_procs * h->reg_words * 8);
    h->off_opens = off;
    off = align_up(off + (uint64_t)h->max_procs * h->reg_words * 8);
    h->off_tenants = off;
    off = align_up(off + (uint64_t)h->max_tenants * sizeof(struct fs_tenant));
    h->off_slots = off;
    off = align_up(off + (uint64_t)h->max_slots * 8);
    h->off_since = off;
    off = align_up(off + (uint64_t)h->max_slots * 8);
    h->off_cells = off;
    off = align_up(off + (uint64_t)h->max_waiters * sizeof(struct fs_cell));
    h->off_counters = off;
    off = align_up(off + (uint64_t)h->max_tenants * sizeof(struct fs_tenant_counters));
    h->off_shares = 0;
    if (h->rule_name[0]) {
        h->off_shares = off;
        off = align_up(off + ((uint64_t)h->max_tenants + 1) * sizeof(uint32_t));
    }
    return off;
}

/* A rule's share for `demanding` tenants, as the share table stores it. */
static uint32_t rule_share(const fairsem_options_t *o, unsigned max_slots, unsigned demanding)
{
    unsigned share = o->share_fn(max_slots, demanding, o->share_fn_arg);
    return share > max_slots ? max_slots : share;
}

static int check_options(const fairsem_options_t *o)
{
    if (!o || o->max_slots == 0 || o->max_slots > FAIRSEM_MAX_SLOTS_LIMIT)
        return -EINVAL;
    if (o->min_share > o->max_slots)
        return -EINVAL;
    if (o->max_tenants > FAIRSEM_MAX_TENANTS_LIMIT || o->max_waiters > FAIRSEM_MAX_WAITERS_LIMIT ||
        o->max_procs > FAIRSEM_MAX_PROCS_LIMIT)
        return -EINVAL;
    if (o->flags & ~FS_CREATE_FLAGS)
        return -EINVAL;
    if (o->mode & ~07777u)
        return -EINVAL;
    if (o->share_fn_name &&
        (!o->share_fn || !o->share_fn_name[0] || strlen(o->share_fn_name) > FAIRSEM_RULE_NAME_MAX))
        return -EINVAL;
    if (!o->share_fn_name && o->share_fn)
        return -EINVAL;
    return 0;
}

/* Point the handle's region pointers into the mapping, from `h`: the
 * header as this process wrote or validated it, never the live one (which
 * anyone with write access can change at any moment). */
static void map_regions(fairsem_t *sem, const struct fs_header *h)
{
    sem->geo = (struct fs_geometry){.max_slots = h->max_slots,
                                    .min_share = h->min_share,
                                    .max_tenants = h->max_tenants,
                                    .max_waiters = h->max_waiters,
                                    .max_procs = h->max_procs,
                                    .flags = h->flags,
                                    .map_words = h->map_words,
                                    .reg_words = h->reg_words};
    memcpy(sem->geo.rule_name, h->rule_name, sizeof sem->geo.rule_name);
    sem->map = (_Atomic uint64_t *)(sem->base + h->off_map);
    sem->procs = (struct fs_proc *)(sem->base + h->off_procs);
    sem->regs = (_Atomic uint64_t *)(sem->base + h->off_regs);
    sem->opens = (_Atomic uint64_t *)(sem->base + h->off_opens);
    sem->tenants = (struct fs_tenant *)(sem->base + h->off_tenants);
    sem->slots = (_Atomic uint64_t *)(sem->base + h->off_slots);
    sem->since = (_Atomic uint64_t *)(sem->base + h->off_since);
    sem->cells = (struct fs_cell *)(sem->base + h->off_cells);
    sem->counters = (struct fs_tenant_counters *)(sem->base + h->off_counters);
    sem->shares = h->off_shares ? (const uint32_t *)(sem->base + h->off_shares) : NULL;
}

static fairsem_t *handle_new(int fd, const char *name)
{
    fairsem_t *sem = calloc(1, sizeof *sem);
    if (!sem)
        return NULL;
    sem->fd = fd;
    if (name)
        snprintf(sem->name, sizeof sem->name, "%s", name);
    pthread_mutex_init(&sem->attach_lock, NULL);
    atomic_store(&sem->next_stamp, (uint32_t)getpid() * 2654435761u);
    return sem;
}

static void handle_free(fairsem_t *sem)
{
    if (sem->base)
        munmap(sem->base, sem->size);
    if (sem->fd >= 0)
        close(sem->fd);
    free(sem->local_refs);
    free(sem->local_open);
    pthread_mutex_destroy(&sem->attach_lock);
    free(sem);
}

/* Map, allocate local state, register for fork and attach. */
static int handle_finish(fairsem_t *sem, fairsem_t **out)
{
    sem->local_refs = calloc(sem->geo.max_tenants, sizeof *sem->local_refs);
    sem->local_open = calloc(sem->geo.max_tenants, sizeof *sem->local_open);
    if (!sem->local_refs || !sem->local_open) {
        handle_free(sem);
        return -ENOMEM;
    }
    registry_add(sem);
    int rc = sem->readonly ? 0 : fairsem__attach_kick(sem);
    if (rc < 0) {
        registry_remove(sem);
        handle_free(sem);
        return rc;
    }
    *out = sem;
    return 0;
}

/* Build a new segment in the anonymous file `fd`. */
static int build(fairsem_t *sem, const fairsem_options_t *o)
{
    struct fs_header h = {0};
    h.max_slots = o->max_slots;
    h.min_share = o->min_share ? o->min_share : 1;
    h.max_tenants = o->max_tenants ? o->max_tenants : FAIRSEM_DEFAULT_MAX_TENANTS;
    h.max_waiters = o->max_waiters ? o->max_waiters : FAIRSEM_DEFAULT_MAX_WAITERS;
    h.max_procs = o->max_procs ? o->max_procs : FAIRSEM_DEFAULT_MAX_PROCS;
    h.flags = o->flags;
    if (o->share_fn_name)
        snprintf(h.rule_name, sizeof h.rule_name, "%s", o->share_fn_name);
    uint64_t size = layout_geometry(&h);

    if (fchmod(sem->fd, o->mode ? o->mode : 0600) < 0)
        return -errno;
    int err = posix_fallocate(sem->fd, 0, (off_t)size);
    if (err)
        return err == EFBIG ? -ENOSPC : -err;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sem->fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    sem->base = base;
    sem->size = size;
    sem->hdr = base;

    h.magic = FS_MAGIC;
    h.layout_version = FS_LAYOUT_VERSION;
    h.layout_hash = FS_LAYOUT_HASH;
    h.total_size = size;
    h.created_ns = fairsem__realtime_ns();
    if (h.off_shares) {
        uint32_t *shares = (uint32_t *)(sem->base + h.off_shares);
        shares[0] = h.max_slots; /* never used: D >= 1 */
        for (unsigned d = 1; d <= h.max_tenants; d++)
            shares[d] = rule_share(o, h.max_slots, d);
    }
    /* Every other byte is zero from fallocate, which is each region's
     * initial state (free slots, empty cells, free records and tenants). */
    memcpy(sem->hdr, &h, offsetof(struct fs_header, version));
    atomic_store(&sem->hdr->version, 1);
    atomic_store_explicit((_Atomic uint32_t *)&sem->hdr->ready, FS_READY, memory_order_release);
    map_regions(sem, &h);
    return 0;
}

/* A handle on the new, unnamed file `fd` (or -1 and errno), with a segment
 * built in it. */
static int handle_build(int fd, const char *name, const fairsem_options_t *opts, fairsem_t **out)
{
    if (fd < 0)
        return -errno;
    fairsem_t *sem = handle_new(fd, name);
    if (!sem) {
        close(fd);
        return -ENOMEM;
    }
    int rc = build(sem, opts);
    if (rc < 0) {
        handle_free(sem);
        return rc;
    }
    *out = sem;
    return 0;
}

static int create_locked(const char *name, const fairsem_options_t *opts, fairsem_t **out)
{
    int rc = check_name(name);
    if (rc < 0)
        return rc;
    if (!out || (rc = check_options(opts)) < 0)
        return rc < 0 ? rc : -EINVAL;
    fairsem_t *sem = NULL;
    if ((rc = handle_build(open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), name, opts, &sem)) < 0)
        return rc;
    FS_CRASHPOINT("create.built");
    char from[64], to[sizeof SHM_DIR + FAIRSEM_NAME_MAX + 1];
    snprintf(from, sizeof from, "/proc/self/fd/%d", sem->fd);
    snprintf(to, sizeof to, SHM_DIR "%s", name);
    if (linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) < 0) {
        rc = -errno;
        handle_free(sem);
        return rc;
    }
    return handle_finish(sem, out);
}

static int open_anonymous_locked(const fairsem_options_t *opts, fairsem_t **out)
{
    int rc = check_options(opts);
    if (rc < 0 || !out)
        return rc < 0 ? rc : -EINVAL;
    fairsem_t *sem = NULL;
    if ((rc = handle_build(memfd_create("fairsem", MFD_CLOEXEC), NULL, opts, &sem)) < 0)
        return rc;
    return handle_finish(sem, out);
}

/* Copy the settings part of a mapped header once: validation and mapping
 * then use only the copy, so a writer changing the live header between the
 * two cannot make the handle use what was never validated.  The ready word
 * is read first (acquire: the creator sets it last, with release). */
static void header_copy(const struct fs_header *live, struct fs_header *h)
{
    uint32_t ready = atomic_load_explicit((_Atomic uint32_t *)&live->ready, memory_order_acquire);
    memcpy(h, live, offsetof(struct fs_header, version));
    h->ready = ready;
}

/* Validate a header copy against the file size, field by field. */
static int validate(const struct fs_header *h, uint64_t file_size)
{
    if (h->magic != FS_MAGIC)
        return FAIRSEM_EMAGIC;
    if (h->layout_version != FS_LAYOUT_VERSION || h->layout_hash != FS_LAYOUT_HASH)
        return FAIRSEM_EVERSION;
    if (h->ready != FS_READY)
        return FAIRSEM_EINIT;
    if (h->total_size != file_size)
        return FAIRSEM_ECORRUPT;
    if (h->max_slots == 0 || h->max_slots > FAIRSEM_MAX_SLOTS_LIMIT || h->min_share == 0 ||
        h->min_share > h->max_slots || h->max_tenants == 0 || h->max_tenants > FAIRSEM_MAX_TENANTS_LIMIT ||
        h->max_waiters == 0 || h->max_waiters > FAIRSEM_MAX_WAITERS_LIMIT || h->max_procs == 0 ||
        h->max_procs > FAIRSEM_MAX_PROCS_LIMIT || (h->flags & ~FS_CREATE_FLAGS) ||
        memchr(h->rule_name, '\0', sizeof h->rule_name) == NULL)
        return FAIRSEM_ECORRUPT;
    struct fs_header g = *h;
    if (layout_geometry(&g) != h->total_size || g.off_map != h->off_map || g.off_procs != h->off_procs ||
        g.off_regs != h->off_regs || g.off_opens != h->off_opens || g.off_tenants != h->off_tenants ||
        g.off_slots != h->off_slots || g.off_since != h->off_since || g.off_cells != h->off_cells ||
        g.off_counters != h->off_counters || g.off_shares != h->off_shares || g.map_words != h->map_words ||
        g.reg_words != h->reg_words)
        return FAIRSEM_ECORRUPT;
    return 0;
}

/* The segment carries its rule's shares, so an opener needs no function.
 * One that names a rule must name the stored one, and one that brings the
 * function too must bring one that gives the stored shares. */
static int check_rule(const fairsem_t *sem, const fairsem_options_t *local)
{
    if (!local || !local->share_fn_name)
        return local && local->share_fn ? -EINVAL : 0;
    if (strcmp(sem->geo.rule_name, local->share_fn_name) != 0)
        return FAIRSEM_ERULE;
    if (local->share_fn)
        for (unsigned d = 1; d <= sem->geo.max_tenants; d++)
            if (rule_share(local, sem->geo.max_slots, d) != sem->shares[d])
                return FAIRSEM_ERULE;
    return 0;
}

static int open_locked(const char *name, const fairsem_options_t *local, fairsem_t **out)
{
    int rc = check_name(name);
    if (rc < 0)
        return rc;
    if (!out)
        return -EINVAL;
    bool readonly = local && (local->flags & FAIRSEM_READONLY);
    int fd = shm_open(name, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    fairsem_t *sem = handle_new(fd, name);
    if (!sem) {
        close(fd);
        return -ENOMEM;
    }
    sem->readonly = readonly;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    /* Magic first, so files that are not ours say so whatever their size.
     * A file too short to hold it is not ours either: creation publishes a
     * segment only at its full size, so no segment is ever that short. */
    uint64_t magic = 0;
    if (pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic || magic != FS_MAGIC) {
        rc = FAIRSEM_EMAGIC;
        goto fail;
    }
    if ((uint64_t)st.st_size < sizeof(struct fs_header)) {
        rc = FAIRSEM_ECORRUPT; /* truncated: not even a header */
        goto fail;
    }
    void *base = mmap(NULL, (size_t)st.st_size, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    sem->base = base;
    sem->size = (size_t)st.st_size;
    sem->hdr = base;
    struct fs_header h;
    header_copy(sem->hdr, &h);
    if ((rc = validate(&h, (uint64_t)st.st_size)) < 0)
        goto fail;
    FS_CRASHPOINT("open.validated");
    map_regions(sem, &h);
    if ((rc = check_rule(sem, local)) < 0)
        goto fail;
    return handle_finish(sem, out);
fail:
    handle_free(sem);
    return rc;
}

int fairsem_create(const char *name, const fairsem_options_t *opts, fairsem_t **out)
{
    registry_enter();
    return registry_leave(create_locked(name, opts, out));
}

int fairsem_open_anonymous(const fairsem_options_t *opts, fairsem_t **out)
{
    registry_enter();
    return registry_leave(open_anonymous_locked(opts, out));
}

int fairsem_open(const char *name, const fairsem_options_t *local, fairsem_t **out)
{
    registry_enter();
    return registry_leave(open_locked(name, local, out));
}

/* The first lease byte at or after `from` that one of this process's own
 * handles on the file (dev, ino) holds, or `end`.  Under registry_lock. */
static off_t next_own_lease(dev_t dev, ino_t ino, off_t from, off_t end)
{
    uint64_t epoch = atomic_load(&fairsem__fork_epoch);
    off_t next = end;
    for (const fairsem_t *sem = registry; sem; sem = sem->next_open) {
        off_t lease = FS_LEASE_BASE + sem->proc_idx;
        struct stat st;
        if (sem->readonly || sem->attach_epoch != epoch || lease < from || lease >= next ||
            fstat(sem->fd, &st) < 0)
            continue;
        if (st.st_dev == dev && st.st_ino == ino)
            next = lease;
    }
    return next;
}

/* 0 if no other live process is attached to the segment `name`, else
 * FAIRSEM_EATTACHED; or why we cannot tell.  The lease locks are the only
 * witness, whatever the header says, so a damaged segment is judged alike:
 * F_OFD_GETLK over every record's lease byte, except those this process's
 * own handles hold (GETLK through our fresh description sees them like
 * anyone's), so asked range by range between our own bytes.  The kernel
 * reports any one conflicting lock, not the lowest, hence no stepping from
 * lock to lock.  Under registry_lock: no thread of ours opens or closes
 * meanwhile. */
static int check_unattached(const char *name)
{
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct {
        uint64_t magic;
        uint32_t layout_version;
    } head = {0};
    struct stat st;
    int rc = 0;
    ssize_t got = pread(fd, &head, sizeof head, 0);
    if (got < 0 || fstat(fd, &st) < 0)
        rc = -errno;
    else if (got < (ssize_t)sizeof head.magic || head.magic != FS_MAGIC)
        rc = FAIRSEM_EMAGIC; /* never remove what is not ours without FORCE */
    else if ((uint64_t)st.st_size >= sizeof(struct fs_header) && head.layout_version != FS_LAYOUT_VERSION)
        rc = FAIRSEM_EVERSION; /* another layout may keep its leases elsewhere */
    const off_t end = FS_LEASE_BASE + FAIRSEM_MAX_PROCS_LIMIT;
    for (off_t from = FS_LEASE_BASE; rc == 0 && from < end;) {
        off_t own = next_own_lease(st.st_dev, st.st_ino, from, end);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = from, .l_len = own - from};
        if (own > from && fcntl(fd, F_OFD_GETLK, &fl) < 0)
            rc = -errno;
        else if (own > from && fl.l_type != F_UNLCK)
            rc = FAIRSEM_EATTACHED;
        from = own + 1;
    }
    close(fd);
    return rc;
}

int fairsem_unlink(const char *name, unsigned flags)
{
    int rc = check_name(name);
    if (rc < 0)
        return rc;
    if (flags & ~FAIRSEM_UNLINK_FORCE)
        return -EINVAL;
    if (!(flags & FAIRSEM_UNLINK_FORCE)) {
        registry_enter();
        rc = registry_leave(check_unattached(name));
        if (rc < 0)
            return rc;
    }
    return shm_unlink(name) < 0 ? -errno : 0;
}

int fairsem_check_linked(fairsem_t *sem)
{
    if (!sem)
        return -EINVAL;
    struct stat mine, named;
    if (fstat(sem->fd, &mine) < 0)
        return -errno;
    if (!sem->name[0])
        return 0;
    if (mine.st_nlink == 0)
        return FAIRSEM_EUNLINKED;
    char path[sizeof SHM_DIR + FAIRSEM_NAME_MAX + 1];
    snprintf(path, sizeof path, SHM_DIR "%s", sem->name);
    if (stat(path, &named) < 0 || named.st_ino != mine.st_ino || named.st_dev != mine.st_dev)
        return FAIRSEM_EUNLINKED;
    return 0;
}

int fairsem_lease_dup(fairsem_t *sem)
{
    if (!sem)
        return -EINVAL;
    int rc = fairsem__attach_kick(sem);
    if (rc < 0)
        return rc;
    /* Same open file description, hence the same OFD lock. */
    int fd = fcntl(sem->fd, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? -errno : fd;
}

int fairsem_close(fairsem_t *sem)
{
    if (!sem)
        return 0;
    registry_enter();
    if (!registry_remove(sem))
        return registry_leave(-EBADF);
    fairsem__events_stop(sem);
    if (sem->attach_epoch == atomic_load(&fairsem__fork_epoch)) {
        fairsem__proc_scrub_self(sem);
        /* Hand what we freed to waiters while our record still vouches
         * for the reservations we make. */
        fairsem__kick(sem);
        fairsem__proc_release(sem);
    }
    for (fairsem_tenant_t *t = sem->tenant_list, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    handle_free(sem);
    return registry_leave(0);
}
