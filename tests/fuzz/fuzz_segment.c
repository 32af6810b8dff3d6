/*
 * fuzz_segment.c - libFuzzer on segment images: whatever bytes a segment
 * file holds, every read path and the acquire path return, with an error
 * or a result, and never crash or hang (the run's -timeout makes a hang a
 * failure).
 *
 * An input is not the image itself (random bytes never pass the magic
 * check) but a recipe for one, so mutations stay close to real segments:
 *
 *   byte 0      template: bits 0-1 pick the settings (tiny capacities),
 *               bit 2 picks a populated image (a process that held a slot,
 *               had a request queued and two tenants registered, then
 *               "died": its record is LIVE but nobody holds its lease)
 *               instead of a freshly created one; bit 3 adds
 *               fairsem_check (slow on a broken image: it re-reads for
 *               20 ms before it believes a violation, so the fuzzer
 *               chooses when to pay for it)
 *   then        patches of 6 bytes: u16 where, u32 value (little-endian).
 *               where = region << 12 | word: 32-bit word (word % its words)
 *               of region (region % REGIONS) of src/layout.h (the header,
 *               then each region named by a header offset), so a recipe
 *               keeps its meaning when another region changes size;
 *               0xffff: truncate the image to value % size bytes.
 *
 * Each input becomes /dev/shm/fairsem-fuzz-<pid>-<n>, is opened read-only
 * (info, stats, dump, counters, check, reap), then read-write (the same,
 * plus a tenant registration, try_acquire/release and a 1 ms
 * acquire_timeout), closed and unlinked (fairsem_unlink, forced if it
 * refuses).
 */
#define _GNU_SOURCE
#include <fairsem.h>
#include "layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The regions a patch can address: the header, then every region the
 * header names by its offset. */
static const size_t region_offset_field[] = {
    0, offsetof(struct fs_header, off_map), offsetof(struct fs_header, off_procs),
    offsetof(struct fs_header, off_regs), offsetof(struct fs_header, off_opens),
    offsetof(struct fs_header, off_tenants), offsetof(struct fs_header, off_slots),
    offsetof(struct fs_header, off_since), offsetof(struct fs_header, off_cells),
    offsetof(struct fs_header, off_counters),
};
#define REGIONS (sizeof region_offset_field / sizeof region_offset_field[0])

static const fairsem_options_t settings[4] = {
    {.max_slots = 1, .max_tenants = 2, .max_waiters = 2, .max_procs = 2},
    {.max_slots = 3, .max_tenants = 4, .max_waiters = 4, .max_procs = 4, .flags = FAIRSEM_WORK_CONSERVING},
    {.max_slots = 8, .min_share = 2, .max_tenants = 65, .max_waiters = 65, .max_procs = 3},
    {.max_slots = 2, .max_tenants = 3, .max_waiters = 1, .max_procs = 66},
};

struct image {
    unsigned char *bytes;
    size_t size;
};

static struct image templates[8];

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_segment: %s: %s\n", what, fairsem_strerror(rc));
    abort();
}

static struct image read_segment(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die("template file", -errno);
    struct image im = {malloc((size_t)st.st_size), (size_t)st.st_size};
    if (!im.bytes || read(fd, im.bytes, im.size) != (ssize_t)im.size)
        die("reading the template", -EIO);
    close(fd);
    return im;
}

/* A template image, made once: a real segment with these settings, copied
 * while (if populated) it holds a slot, a queued request and registrations
 * of this process.  The copy's lease bytes are on another file, so in the
 * copy that record looks like a process that died there. */
static const struct image *template_image(unsigned which)
{
    struct image *im = &templates[which];
    if (im->bytes)
        return im;
    const fairsem_options_t *o = &settings[which & 3];
    char name[64];
    snprintf(name, sizeof name, "/fairsem-fuzz-%d-template", (int)getpid());
    fairsem_t *sem;
    int rc = fairsem_create(name, o, &sem);
    if (rc)
        die("creating a template", rc);
    if (which & 4) {
        fairsem_tenant_t *a, *b;
        fairsem_slot_t held[8];
        fairsem_request_t *req;
        unsigned n = 0;
        if ((rc = fairsem_tenant_register(sem, "a", 2, &a)) || (rc = fairsem_tenant_register(sem, "b", 1, &b)))
            die("registering", rc);
        while (n < o->max_slots && fairsem_try_acquire(n % 2 ? b : a, &held[n]) == 0)
            n++;
        if ((rc = fairsem_request_start(b, NULL, &req)))
            die("queueing", rc);
        *im = read_segment(name);
        fairsem_request_free(req);
        while (n--)
            fairsem_release(n % 2 ? b : a, held[n]);
    } else {
        *im = read_segment(name);
    }
    fairsem_close(sem);
    rc = fairsem_unlink(name, 0);
    if (rc)
        die("unlinking the template", rc);
    return im;
}

/* Where region r of template t starts (the header, region 0, at 0). */
static uint64_t region_start(const struct image *t, unsigned r)
{
    uint64_t off = 0;
    if (r > 0)
        memcpy(&off, t->bytes + region_offset_field[r], sizeof off);
    return off;
}

/* Region r of template t: from its start to the next region's. */
static void region_of(const struct image *t, unsigned r, size_t *first, size_t *end)
{
    const struct fs_header *h = (const struct fs_header *)t->bytes;
    *first = region_start(t, r);
    *end = r == 0 ? sizeof *h : h->total_size;
    for (unsigned k = 1; k < REGIONS; k++) {
        uint64_t next = region_start(t, k);
        if (next > *first && next < *end)
            *end = next;
    }
}

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* The image an input describes, written to /dev/shm/<name>; false if the
 * input has no template byte. */
static bool write_image(const uint8_t *data, size_t len, const char *name)
{
    if (len < 1)
        return false;
    const struct image *t = template_image(data[0] & 7);
    unsigned char *bytes = malloc(t->size);
    memcpy(bytes, t->bytes, t->size);
    size_t size = t->size;
    for (size_t k = 1; k + 6 <= len; k += 6) {
        uint32_t where = le16(data + k), value = le32(data + k + 2);
        if (where == 0xffff) {
            size = value % t->size;
            continue;
        }
        size_t first, end;
        region_of(t, (where >> 12) % REGIONS, &first, &end);
        memcpy(bytes + first + (where & 0xfff) % ((end - first) / 4) * 4, &value, 4);
    }
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, bytes, size) != (ssize_t)size)
        die("writing the image", -errno);
    close(fd);
    free(bytes);
    return true;
}

/* Dump callbacks touch every string they are given. */
static size_t touched;
static void on_proc(void *arg, const fairsem_proc_info_t *p) { (void)arg; touched += p->record; }
static void on_holder(void *arg, const fairsem_holder_info_t *h)
{
    (void)arg;
    touched += strlen(h->tenant) + h->slot;
}
static void on_waiter(void *arg, const fairsem_waiter_info_t *w)
{
    (void)arg;
    touched += strlen(w->tenant) + w->record;
}
static void on_violation(void *arg, unsigned kind, const char *message)
{
    (void)arg;
    touched += strlen(message) + kind;
}

static bool with_check;

/* The read paths, on either kind of handle. */
static void observe(fairsem_t *sem)
{
    fairsem_info_t info;
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[4];
    size_t count;
    static const fairsem_dump_ops_t ops = {on_proc, on_holder, on_waiter};
    if (fairsem_info(sem, &info) == 0)
        touched += strlen(info.rule_name);
    if (fairsem_stats(sem, &st, ts, 4, &count) == 0)
        for (size_t i = 0; i < count && i < 4; i++)
            touched += strlen(ts[i].id);
    fairsem_dump(sem, &ops, NULL);
    fairsem_counters_t pool;
    fairsem_tenant_counters_t tc[4];
    uint64_t oldest;
    if (fairsem_counters(sem, &pool, &oldest, tc, 4, &count) == 0)
        for (size_t i = 0; i < count && i < 4; i++)
            touched += strlen(tc[i].id) + (tc[i].counters.grants_waited & 1);
    if (with_check)
        fairsem_check(sem, on_violation, NULL);
}

static void use(fairsem_t *sem)
{
    observe(sem);
    fairsem_tenant_t *t;
    if (fairsem_tenant_register(sem, "a", 1, &t) == 0) {
        fairsem_slot_t s;
        if (fairsem_try_acquire(t, &s) == 0)
            fairsem_release(t, s);
        if (fairsem_acquire_timeout(t, 1000000, &s) == 0)
            fairsem_release(t, s);
        fairsem_tenant_unregister(t, FAIRSEM_FORCE);
        fairsem_tenant_free(t);
    }
    fairsem_reap(sem, NULL);
    observe(sem);
}

/* A run that ended on a finding (a hang is killed) leaves its last image
 * behind: remove the images of processes that are gone. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    DIR *dir = opendir("/dev/shm");
    for (struct dirent *e; dir && (e = readdir(dir));) {
        int pid;
        if (sscanf(e->d_name, "fairsem-fuzz-%d-", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH) {
            char path[300];
            snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
            unlink(path);
        }
    }
    if (dir)
        closedir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static unsigned serial;
    char name[64];
    snprintf(name, sizeof name, "/fairsem-fuzz-%d-%u", (int)getpid(), serial++);
    if (!write_image(data, len, name))
        return 0;
    with_check = data[0] & 8;
    fairsem_t *sem;
    fairsem_options_t ro = {.flags = FAIRSEM_READONLY};
    if (fairsem_open(name, &ro, &sem) == 0) {
        observe(sem);
        if (fairsem_reap(sem, NULL) != -EPERM)
            abort();
        fairsem_close(sem);
    }
    if (fairsem_open(name, NULL, &sem) == 0) {
        use(sem);
        fairsem_close(sem);
    }
    /* Unlinking reads the image too; whatever it says, the name goes. */
    if (fairsem_unlink(name, 0) != 0)
        fairsem_unlink(name, FAIRSEM_UNLINK_FORCE);
    return 0;
}
