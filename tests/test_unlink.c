/*
 * test_unlink.c - fairsem_unlink() refuses while another live process is
 * attached (a real second process: prog_worker, exec'd), and removes the
 * name once that process has exited or died, or with FAIRSEM_UNLINK_FORCE.
 *
 * Forked children never call cr_assert: they report through a pipe and end
 * with _exit.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void) { kill_all_unlink(g_seg); }

TestSuite(unlink, .fini = cleanup, .timeout = 60);

#define CHECK_RC(call, want)                                                                                  \
    do {                                                                                                      \
        int rc_ = (call);                                                                                     \
        cr_assert_eq(rc_, (want), "%s: got %d (%s), want %d (%s)", #call, rc_, fairsem_err_name(rc_), (want), \
                     fairsem_err_name(want));                                                                 \
    } while (0)

/* The name still opens, to the very segment `sem` is attached to. */
static void assert_still_linked(fairsem_t *sem) { CHECK_RC(fairsem_check_linked(sem), 0); }

/* A worker process attached to g_seg, holding a slot, so that nobody could
 * mistake it for an idle bystander. */
static void spawn_holder(struct worker *w, const char *tag)
{
    cr_assert(spawn_ctl(w, g_seg, "other", tag), "worker %s did not start", tag);
    int idx = -1;
    send_cmd(w, 't');
    cr_assert_eq(reply_of(w, &idx, 5000), 'A', "worker %s took no slot", tag);
}

Test(unlink, refused_while_another_process_is_attached_then_allowed_after_it_exits)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-exit", 2);
    struct worker w;
    spawn_holder(&w, "W");

    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    assert_still_linked(sem);
    cr_assert_str_eq(fairsem_err_name(FAIRSEM_EATTACHED), "FAIRSEM_EATTACHED");
    cr_assert(strstr(fairsem_strerror(FAIRSEM_EATTACHED), "attached"));

    /* The worker exits normally (its lease goes with it). */
    send_cmd(&w, 'q');
    int status = wait_exit(w.pid, 10000);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status %#x", status);
    worker_close(&w);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    CHECK_RC(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    CHECK_RC(fairsem_unlink(g_seg, 0), -ENOENT);
    fairsem_close(sem);
    g_seg[0] = '\0';
}

Test(unlink, a_killed_process_does_not_block_removal)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-kill", 2);
    struct worker w;
    spawn_holder(&w, "K");
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    /* SIGKILL: nobody reaps its record, yet the kernel dropped its lease. */
    cr_assert(kill_wait(w.pid));
    worker_close(&w);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    CHECK_RC(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    fairsem_close(sem);
    g_seg[0] = '\0';
}

Test(unlink, force_removes_it_under_a_live_process_which_keeps_working)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-force", 2);
    struct worker w;
    spawn_holder(&w, "F");
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    CHECK_RC(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), 0);
    CHECK_RC(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    fairsem_t *again = NULL;
    CHECK_RC(fairsem_open(g_seg, NULL, &again), -ENOENT);
    /* The worker still shares the removed segment with us: it takes the
     * second slot, and then there is none left for us. */
    int idx = -1;
    send_cmd(&w, 't');
    cr_assert_eq(reply_of(&w, &idx, 5000), 'A');
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    CHECK_RC(fairsem_tenant_register(sem, "me", 1, &t), 0);
    CHECK_RC(fairsem_try_acquire(t, &s), -EAGAIN);
    cr_assert(kill_wait(w.pid));
    worker_close(&w);
    fairsem_close(sem);
    g_seg[0] = '\0';
}

/* This process's own handles (several records) do not count, so create,
 * use, unlink, close works; another process's record does, wherever it is
 * among ours (four records: ours take three, the worker the one left). */
Test(unlink, own_handles_do_not_count)
{
    fairsem_options_t o = {.max_slots = 2, .max_procs = 4};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "ul-own", &o);
    fairsem_t *second, *third;
    CHECK_RC(fairsem_open(g_seg, NULL, &second), 0);
    CHECK_RC(fairsem_open(g_seg, NULL, &third), 0);
    struct worker w;
    spawn_holder(&w, "O");
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    cr_assert(kill_wait(w.pid));
    worker_close(&w);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    CHECK_RC(fairsem_check_linked(third), FAIRSEM_EUNLINKED);
    fairsem_close(third);
    fairsem_close(second);
    fairsem_close(sem);
    g_seg[0] = '\0';
}

/* A forked child that runs attach(sem), reports its result ('Y' or 'N')
 * and stays until *hold is closed; returns its pid once it has reported. */
static pid_t fork_child(fairsem_t *sem, bool (*attach)(fairsem_t *), int *hold)
{
    int ready[2], stay[2];
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(stay, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(stay[1]);
        char ok = attach(sem) ? 'Y' : 'N';
        if (write(ready[1], &ok, 1) != 1)
            _exit(2);
        char c;
        while (read(stay[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    track_pid(pid);
    close(ready[1]);
    close(stay[0]);
    char got = 0;
    cr_assert_eq(read(ready[0], &got, 1), 1);
    cr_assert_eq(got, 'Y', "the child could not attach");
    close(ready[0]);
    *hold = stay[1];
    return pid;
}

/* Close the child's hold pipe and collect it. */
static void end_child(pid_t pid, int hold)
{
    close(hold);
    int status = wait_exit(pid, 10000);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

static bool register_inherited(fairsem_t *sem)
{
    fairsem_tenant_t *t;
    return fairsem_tenant_register(sem, "child", 1, &t) == 0;
}

static bool open_readonly(fairsem_t *unused)
{
    (void)unused;
    fairsem_t *ro;
    fairsem_options_t local = {.flags = FAIRSEM_READONLY};
    return fairsem_open(g_seg, &local, &ro) == 0;
}

/* A fork child that has used its inherited handle is another process. */
Test(unlink, a_fork_child_that_attached_counts)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-fork", 2);
    int hold;
    pid_t pid = fork_child(sem, register_inherited, &hold);
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    end_child(pid, hold);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    fairsem_close(sem);
    g_seg[0] = '\0';
}

/* FAIRSEM_READONLY handles (what `fairsem dump` uses) hold no record. */
Test(unlink, readonly_readers_do_not_count)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-ro", 2);
    fairsem_close(sem);
    int hold;
    pid_t pid = fork_child(NULL, open_readonly, &hold);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    end_child(pid, hold);
    g_seg[0] = '\0';
}

/* Write `len` bytes of `bytes` as the whole of shared-memory object g_seg. */
static void write_object(const void *bytes, size_t len, size_t size)
{
    int fd = shm_open(g_seg, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", g_seg, strerror(errno));
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    cr_assert_eq(pwrite(fd, bytes, len, 0), (ssize_t)len);
    close(fd);
}

Test(unlink, what_it_will_not_remove_without_force)
{
    test_name(g_seg, sizeof g_seg, "ul-junk");
    CHECK_RC(fairsem_unlink(g_seg, 0x2), -EINVAL);
    CHECK_RC(fairsem_unlink(g_seg, 0), -ENOENT);
    CHECK_RC(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), -ENOENT);

    /* Another program's object: never without FORCE. */
    write_object("not ours", 8, 4096);
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EMAGIC);
    CHECK_RC(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), 0);
    write_object("", 0, 0); /* empty: before its creator's ftruncate */
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EMAGIC);
    CHECK_RC(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), 0);

    /* A segment of another layout version may keep its leases elsewhere. */
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-ver", 1);
    fairsem_close(sem);
    char path[FAIRSEM_NAME_MAX + 16];
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    uint32_t v = FS_LAYOUT_VERSION + 1;
    cr_assert_eq(pwrite(fd, &v, sizeof v, offsetof(struct fs_header, layout_version)), (ssize_t)sizeof v);
    close(fd);
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EVERSION);
    CHECK_RC(fairsem_unlink(g_seg, FAIRSEM_UNLINK_FORCE), 0);

    /* Ours but truncated: nobody can ever have attached (open refuses it),
     * and the leases say so. */
    test_name(g_seg, sizeof g_seg, "ul-short");
    uint64_t magic = FS_MAGIC;
    write_object(&magic, sizeof magic, 16);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}

/* A damaged segment that a live process is still attached to is refused
 * alike: liveness comes from the leases, not from the header. */
Test(unlink, damaged_header_does_not_hide_a_live_process)
{
    fairsem_t *sem = seg_create_named(g_seg, sizeof g_seg, "ul-dmg", 2);
    struct worker w;
    spawn_holder(&w, "D");
    fairsem_close(sem);
    char path[FAIRSEM_NAME_MAX + 16];
    snprintf(path, sizeof path, "/dev/shm%s", g_seg);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    uint32_t procs = 0;
    cr_assert_eq(pwrite(fd, &procs, sizeof procs, offsetof(struct fs_header, max_procs)), (ssize_t)sizeof procs);
    close(fd);
    fairsem_t *ro = NULL;
    cr_assert_lt(fairsem_open(g_seg, NULL, &ro), 0, "the damaged segment still opens");
    CHECK_RC(fairsem_unlink(g_seg, 0), FAIRSEM_EATTACHED);
    cr_assert(kill_wait(w.pid));
    worker_close(&w);
    CHECK_RC(fairsem_unlink(g_seg, 0), 0);
    g_seg[0] = '\0';
}
