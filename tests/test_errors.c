/*
 * test_errors.c - bad input: every case returns its own error, none
 * crashes, and a failed call leaves nothing behind.
 */
#include <criterion/criterion.h>

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

static fairsem_t *make(char *name, size_t n, const char *what, const fairsem_options_t *o)
{
    fairsem_t *sem = NULL;
    test_name(name, n, what);
    int rc = fairsem_create(name, o, &sem);
    cr_assert_eq(rc, 0, "create %s: %s", name, fairsem_strerror(rc));
    return sem;
}

static fairsem_t *make_slots(char *name, size_t n, const char *what, unsigned max_slots)
{
    fairsem_options_t o = {.max_slots = max_slots};
    return make(name, n, what, &o);
}

static void finish(const char *name, fairsem_t *sem)
{
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(name, 0), 0);
}

#define CHECK_RC(call, want)                                                                          \
    do {                                                                                              \
        int rc_ = (call);                                                                             \
        cr_assert_eq(rc_, (want), "%s: got %d (%s), want %d (%s)", #call, rc_, fairsem_err_name(rc_), \
                     (int)(want), fairsem_err_name(want));                                            \
    } while (0)

/* ------------------------------------------------------------ NULL input */

Test(errors, null_segment_functions)
{
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem = NULL;
    char name[128];
    test_name(name, sizeof name, "null");
    CHECK_RC(fairsem_create(NULL, &o, &sem), -EINVAL);
    CHECK_RC(fairsem_create(name, NULL, &sem), -EINVAL);
    CHECK_RC(fairsem_create(name, &o, NULL), -EINVAL);
    cr_assert_null(sem);
    CHECK_RC(fairsem_open(name, NULL, &sem), -ENOENT); /* nothing was created */
    CHECK_RC(fairsem_open(NULL, NULL, &sem), -EINVAL);
    CHECK_RC(fairsem_open(name, NULL, NULL), -EINVAL);
    CHECK_RC(fairsem_open_anonymous(NULL, &sem), -EINVAL);
    CHECK_RC(fairsem_open_anonymous(&o, NULL), -EINVAL);
    CHECK_RC(fairsem_unlink(NULL, 0), -EINVAL);
    CHECK_RC(fairsem_check_linked(NULL), -EINVAL);
    CHECK_RC(fairsem_stats(NULL, &(fairsem_stats_t){0}, NULL, 0, NULL), -EINVAL);
    CHECK_RC(fairsem_reap(NULL, NULL), -EINVAL);
    CHECK_RC(fairsem_event_fd(NULL), -EINVAL);
    fairsem_request_t *done[2];
    cr_assert_eq(fairsem_events(NULL, done, 2), 0);
    fairsem_close(NULL); /* ignored */
    cr_assert_null(sem);
}

Test(errors, null_with_live_segment)
{
    char name[128];
    fairsem_t *sem = make_slots(name, sizeof name, "nulllive", 1);
    fairsem_tenant_t *t = NULL;
    CHECK_RC(fairsem_tenant_register(NULL, "a", 1, &t), -EINVAL);
    CHECK_RC(fairsem_tenant_register(sem, NULL, 1, &t), -EINVAL);
    CHECK_RC(fairsem_tenant_register(sem, "a", 1, NULL), -EINVAL);
    cr_assert_null(t);
    CHECK_RC(fairsem_stats(sem, NULL, NULL, 0, NULL), -EINVAL);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 3, NULL), -EINVAL);
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.registered_tenants, 0, "failed registrations left a tenant");
    CHECK_RC(fairsem_reap(sem, NULL), 0);
    fairsem_reap_report_t rep;
    memset(&rep, 0xff, sizeof rep);
    CHECK_RC(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 0);
    cr_assert_eq(rep.slots, 0);
    CHECK_RC(fairsem_check_linked(sem), 0);
    CHECK_RC(fairsem_info(NULL, &(fairsem_info_t){0}), -EINVAL);
    CHECK_RC(fairsem_info(sem, NULL), -EINVAL);
    CHECK_RC(fairsem_dump(NULL, &(fairsem_dump_ops_t){0}, NULL), -EINVAL);
    CHECK_RC(fairsem_dump(sem, NULL, NULL), -EINVAL);
    CHECK_RC(fairsem_check(NULL, NULL, NULL), -EINVAL);
    CHECK_RC(fairsem_check(sem, NULL, NULL), 0);
    finish(name, sem);
}

Test(errors, null_tenant_functions)
{
    char name[128];
    fairsem_t *sem = make_slots(name, sizeof name, "nullten", 1);
    fairsem_tenant_t *t = NULL;
    CHECK_RC(fairsem_tenant_register(sem, "a", 1, &t), 0);
    fairsem_slot_t s = {0};
    fairsem_request_t *req = NULL;
    cr_assert_null(fairsem_tenant_current());
    /* NULL tenant and no current tenant */
    CHECK_RC(fairsem_acquire(NULL, &s), -EINVAL);
    CHECK_RC(fairsem_try_acquire(NULL, &s), -EINVAL);
    CHECK_RC(fairsem_acquire_timeout(NULL, 1000, &s), -EINVAL);
    CHECK_RC(fairsem_request_start(NULL, NULL, &req), -EINVAL);
    CHECK_RC(fairsem_release(NULL, s), -EINVAL);
    CHECK_RC(fairsem_tenant_unregister(NULL, 0), -EINVAL);
    cr_assert_null(fairsem_tenant_id(NULL));
    /* NULL out-pointers */
    CHECK_RC(fairsem_acquire(t, NULL), -EINVAL);
    CHECK_RC(fairsem_try_acquire(t, NULL), -EINVAL);
    CHECK_RC(fairsem_acquire_timeout(t, 1000, NULL), -EINVAL);
    CHECK_RC(fairsem_request_start(t, NULL, NULL), -EINVAL);
    cr_assert_null(req);
    /* request functions */
    CHECK_RC(fairsem_request_result(NULL, &s), -EINVAL);
    CHECK_RC(fairsem_request_cancel(NULL), -EINVAL);
    cr_assert_null(fairsem_request_user(NULL));
    fairsem_request_free(NULL);
    CHECK_RC(fairsem_request_start(t, &s, &req), 0);
    CHECK_RC(fairsem_request_result(req, NULL), -EINVAL);
    CHECK_RC(fairsem_request_result(req, &s), 0);
    CHECK_RC(fairsem_release(t, s), 0);
    fairsem_request_free(req);
    /* unknown unregister flag */
    CHECK_RC(fairsem_tenant_unregister(t, 0x4), -EINVAL);
    CHECK_RC(fairsem_tenant_unregister(t, 0x80000000u), -EINVAL);
    /* none of it left a slot taken or the tenant unregistered */
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0);
    cr_assert_eq(st.waiters, 0);
    cr_assert_eq(st.registered_tenants, 1);
    CHECK_RC(fairsem_try_acquire(t, &s), 0);
    CHECK_RC(fairsem_release(t, s), 0);
    CHECK_RC(fairsem_tenant_unregister(t, 0), 0);
    finish(name, sem);
}

/* ------------------------------------------------------------------ names */

Test(errors, bad_names)
{
    fairsem_options_t o = {.max_slots = 2};
    fairsem_t *sem = NULL;
    static const char *const bad[] = {"noslash", "/a/b", "/", "", "//", "/x/"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cr_assert_eq(fairsem_create(bad[k], &o, &sem), -EINVAL, "create \"%s\"", bad[k]);
        cr_assert_eq(fairsem_open(bad[k], NULL, &sem), -EINVAL, "open \"%s\"", bad[k]);
        cr_assert_eq(fairsem_unlink(bad[k], 0), -EINVAL, "unlink \"%s\"", bad[k]);
    }
    char longname[301];
    longname[0] = '/';
    memset(longname + 1, 'n', 299);
    longname[300] = '\0';
    CHECK_RC(fairsem_create(longname, &o, &sem), -ENAMETOOLONG);
    CHECK_RC(fairsem_open(longname, NULL, &sem), -ENAMETOOLONG);
    CHECK_RC(fairsem_unlink(longname, 0), -ENAMETOOLONG);
    /* one byte over the limit */
    longname[FAIRSEM_NAME_MAX + 1] = '\0';
    CHECK_RC(fairsem_create(longname, &o, &sem), -ENAMETOOLONG);
    cr_assert_null(sem);
}

/* ---------------------------------------------------------------- options */

static unsigned rule(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)arg;
    return max_slots / demanding;
}

static void bad_options(const fairsem_options_t *o, const char *what)
{
    char name[128];
    fairsem_t *sem = NULL;
    test_name(name, sizeof name, "badopt");
    int rc = fairsem_create(name, o, &sem);
    cr_assert_eq(rc, -EINVAL, "%s: create gave %s", what, fairsem_err_name(rc));
    cr_assert_null(sem);
    cr_assert_eq(fairsem_open(name, NULL, &sem), -ENOENT, "%s: a segment was left behind", what);
    rc = fairsem_open_anonymous(o, &sem);
    cr_assert_eq(rc, -EINVAL, "%s: open_anonymous gave %s", what, fairsem_err_name(rc));
    cr_assert_null(sem);
}

Test(errors, bad_options)
{
    bad_options(&(fairsem_options_t){.max_slots = 0}, "max_slots 0");
    bad_options(&(fairsem_options_t){.max_slots = FAIRSEM_MAX_SLOTS_LIMIT + 1}, "max_slots over limit");
    bad_options(&(fairsem_options_t){.max_slots = 10, .min_share = 11}, "min_share > max_slots");
    bad_options(&(fairsem_options_t){.max_slots = 10, .flags = 0x4}, "unknown flag 0x4");
    bad_options(&(fairsem_options_t){.max_slots = 10, .flags = FAIRSEM_WORK_CONSERVING | 0x100},
                "unknown flag 0x100");
    bad_options(&(fairsem_options_t){.max_slots = 10, .max_tenants = FAIRSEM_MAX_TENANTS_LIMIT + 1},
                "max_tenants over limit");
    bad_options(&(fairsem_options_t){.max_slots = 10, .max_waiters = FAIRSEM_MAX_WAITERS_LIMIT + 1},
                "max_waiters over limit");
    bad_options(&(fairsem_options_t){.max_slots = 10, .max_procs = FAIRSEM_MAX_PROCS_LIMIT + 1},
                "max_procs over limit");
    bad_options(&(fairsem_options_t){.max_slots = 10, .mode = 010000}, "mode bits");
    bad_options(&(fairsem_options_t){.max_slots = 10, .share_fn_name = "r"}, "rule name without fn");
    bad_options(&(fairsem_options_t){.max_slots = 10, .share_fn = rule}, "rule fn without name");
    bad_options(&(fairsem_options_t){.max_slots = 10, .share_fn_name = "", .share_fn = rule}, "empty rule name");
    bad_options(&(fairsem_options_t){.max_slots = 10,
                                     .share_fn_name = "0123456789abcdef0123456789abcdef",
                                     .share_fn = rule},
                "rule name of 32");
}

Test(errors, options_at_limits_are_fine)
{
    char name[128];
    /* max_slots at its limit, min_share == max_slots, 31-byte rule name */
    fairsem_options_t o = {.max_slots = FAIRSEM_MAX_SLOTS_LIMIT,
                           .min_share = FAIRSEM_MAX_SLOTS_LIMIT,
                           .max_tenants = 4,
                           .max_waiters = 4,
                           .max_procs = 4,
                           .share_fn_name = "0123456789abcdef0123456789abcde",
                           .share_fn = rule};
    fairsem_t *sem = make(name, sizeof name, "limits", &o);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.max_slots, FAIRSEM_MAX_SLOTS_LIMIT);
    cr_assert_eq(st.min_share, FAIRSEM_MAX_SLOTS_LIMIT);
    finish(name, sem);
}

/* ---------------------------------------------------------------- tenants */

Test(errors, tenant_ids)
{
    char name[128];
    fairsem_t *sem = make_slots(name, sizeof name, "ids", 1);
    fairsem_tenant_t *t = NULL;
    CHECK_RC(fairsem_tenant_register(sem, "", 1, &t), -EINVAL);
    char id[80];
    memset(id, 'x', sizeof id);
    id[64] = '\0';
    CHECK_RC(fairsem_tenant_register(sem, id, 1, &t), -ENAMETOOLONG);
    id[79] = '\0';
    memset(id, 'y', 79);
    CHECK_RC(fairsem_tenant_register(sem, id, 1, &t), -ENAMETOOLONG);
    cr_assert_null(t);
    memset(id, 'z', 63);
    id[63] = '\0';
    CHECK_RC(fairsem_tenant_register(sem, id, 1, &t), 0);
    cr_assert_not_null(t);
    cr_assert_str_eq(fairsem_tenant_id(t), id);
    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[2];
    size_t n = 0;
    CHECK_RC(fairsem_stats(sem, &st, ts, 2, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ts[0].id, id);
    fairsem_slot_t s;
    CHECK_RC(fairsem_try_acquire(t, &s), 0);
    CHECK_RC(fairsem_release(t, s), 0);
    CHECK_RC(fairsem_tenant_unregister(t, 0), 0);
    finish(name, sem);
}

Test(errors, tenant_table_full)
{
    char name[128];
    fairsem_options_t o = {.max_slots = 2, .max_tenants = 2};
    fairsem_t *sem = make(name, sizeof name, "tfull", &o);
    fairsem_tenant_t *a, *b, *c = NULL, *a2;
    CHECK_RC(fairsem_tenant_register(sem, "a", 1, &a), 0);
    CHECK_RC(fairsem_tenant_register(sem, "b", 1, &b), 0);
    CHECK_RC(fairsem_tenant_register(sem, "c", 1, &c), FAIRSEM_ETENANTS);
    cr_assert_null(c);
    /* an existing id still registers */
    CHECK_RC(fairsem_tenant_register(sem, "a", 1, &a2), 0);
    CHECK_RC(fairsem_tenant_unregister(a2, 0), 0);
    /* freeing an entry makes room */
    CHECK_RC(fairsem_tenant_unregister(b, 0), 0);
    CHECK_RC(fairsem_tenant_register(sem, "c", 1, &c), 0);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.registered_tenants, 2);
    finish(name, sem);
}

/* ---------------------------------------------------------- wait queue */

struct blocked {
    fairsem_tenant_t *t;
    int rc;
    fairsem_slot_t s;
    int rel;
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    b->rc = fairsem_acquire(b->t, &b->s);
    b->rel = b->rc == 0 ? fairsem_release(b->t, b->s) : -1;
    return NULL;
}

static unsigned waiters_of(fairsem_t *sem)
{
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    return st.waiters;
}

Test(errors, wait_queue_full)
{
    char name[128];
    fairsem_options_t o = {.max_slots = 1, .max_waiters = 1};
    fairsem_t *sem = make(name, sizeof name, "wfull", &o);
    fairsem_tenant_t *a, *b;
    CHECK_RC(fairsem_tenant_register(sem, "a", 1, &a), 0);
    CHECK_RC(fairsem_tenant_register(sem, "b", 1, &b), 0);
    fairsem_slot_t s, x;
    CHECK_RC(fairsem_acquire(a, &s), 0);
    struct blocked first = {.t = b, .rc = 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocked_main, &first), 0);
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (waiters_of(sem) != 1) {
        cr_assert_lt(test_now_ns(), end, "first waiter never queued");
        test_sleep_ms(1);
    }
    /* a second blocking waiter finds no cell: fails at once, not blocks (a
     * wait would outlast the test's timeout) */
    CHECK_RC(fairsem_acquire(b, &x), FAIRSEM_EWAITERS);
    CHECK_RC(fairsem_acquire_timeout(a, 3600000000000ull, &x), FAIRSEM_EWAITERS);
    fairsem_request_t *req = NULL;
    CHECK_RC(fairsem_request_start(b, NULL, &req), FAIRSEM_EWAITERS);
    cr_assert_null(req);
    CHECK_RC(fairsem_try_acquire(b, &x), -EAGAIN);
    cr_assert_eq(waiters_of(sem), 1);
    CHECK_RC(fairsem_release(a, s), 0);
    pthread_join(th, NULL);
    cr_assert_eq(first.rc, 0, "%s", fairsem_err_name(first.rc));
    cr_assert_eq(first.rel, 0);
    /* the cell is free again */
    CHECK_RC(fairsem_acquire_timeout(b, 1000000, &x), 0);
    CHECK_RC(fairsem_release(b, x), 0);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.slots_in_use, 0);
    cr_assert_eq(st.waiters, 0);
    finish(name, sem);
}

/* ------------------------------------------------------- process table */

Test(errors, process_table_full)
{
    char name[128];
    fairsem_options_t o = {.max_slots = 1, .max_procs = 1};
    fairsem_t *sem = make(name, sizeof name, "pfull", &o);
    fairsem_t *other = NULL;
    CHECK_RC(fairsem_open(name, NULL, &other), FAIRSEM_EPROCS);
    cr_assert_null(other);
    CHECK_RC(fairsem_open(name, NULL, &other), FAIRSEM_EPROCS);
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.attached_procs, 1);
    /* once the first handle detaches, the record is free */
    fairsem_close(sem);
    CHECK_RC(fairsem_open(name, NULL, &other), 0);
    CHECK_RC(fairsem_stats(other, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.attached_procs, 1);
    finish(name, other);
}

/* --------------------------------------------------- existence, format */

Test(errors, exists_and_missing)
{
    char name[128];
    fairsem_t *sem = make_slots(name, sizeof name, "exists", 2);
    fairsem_t *other = NULL;
    fairsem_options_t o = {.max_slots = 5};
    CHECK_RC(fairsem_create(name, &o, &other), -EEXIST);
    cr_assert_null(other);
    /* the existing segment is untouched */
    fairsem_stats_t st;
    CHECK_RC(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    cr_assert_eq(st.max_slots, 2);
    CHECK_RC(fairsem_check_linked(sem), 0);
    CHECK_RC(fairsem_unlink(name, 0), 0);
    CHECK_RC(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    CHECK_RC(fairsem_unlink(name, 0), -ENOENT);
    CHECK_RC(fairsem_open(name, NULL, &other), -ENOENT);
    cr_assert_null(other);
    fairsem_close(sem);
    char missing[128];
    test_name(missing, sizeof missing, "missing");
    CHECK_RC(fairsem_open(missing, NULL, &other), -ENOENT);
}

Test(errors, not_a_segment)
{
    char name[128];
    fairsem_t *sem = NULL;
    test_name(name, sizeof name, "junk");
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    /* too short even for the magic: no segment is ever published that short */
    cr_assert_eq(ftruncate(fd, 4), 0);
    CHECK_RC(fairsem_open(name, NULL, &sem), FAIRSEM_EMAGIC);
    /* zeros: no magic, whatever the size */
    cr_assert_eq(ftruncate(fd, 16), 0);
    CHECK_RC(fairsem_open(name, NULL, &sem), FAIRSEM_EMAGIC);
    cr_assert_eq(ftruncate(fd, 65536), 0);
    CHECK_RC(fairsem_open(name, NULL, &sem), FAIRSEM_EMAGIC);
    /* the magic, then nothing: a truncated segment */
    cr_assert_eq(ftruncate(fd, 0), 0);
    cr_assert_eq(pwrite(fd, "FAIRSEM1", 8, 0), 8);
    cr_assert_eq(ftruncate(fd, 16), 0);
    CHECK_RC(fairsem_open(name, NULL, &sem), FAIRSEM_ECORRUPT);
    cr_assert_null(sem);
    close(fd);
    CHECK_RC(fairsem_unlink(name, 0), 0);
}

/* ----------------------------------------------------------------- texts */

Test(errors, strerror_and_names)
{
    static const int codes[] = {
#define X(name, value, text) FAIRSEM_##name,
        FAIRSEM_ERRNO_MAP(X)
#undef X
    };
    static const char *const names[] = {
#define X(name, value, text) "FAIRSEM_" #name,
        FAIRSEM_ERRNO_MAP(X)
#undef X
    };
    const size_t n = sizeof codes / sizeof codes[0];
    cr_assert_eq(n, 12);
    const char *unknown_text = fairsem_strerror(1);
    for (size_t i = 0; i < n; i++) {
        const char *ti = fairsem_strerror(codes[i]);
        const char *ni = fairsem_err_name(codes[i]);
        cr_assert_not_null(ti);
        cr_assert_not_null(ni);
        cr_assert_str_eq(ni, names[i]);
        cr_assert_str_neq(ti, unknown_text);
        cr_assert_str_neq(ti, "success");
        cr_assert_gt(strlen(ti), 5);
        cr_assert_lt(codes[i], -4000, "%s not in the reserved range", ni);
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(codes[i], codes[j]);
            cr_assert_str_neq(ti, fairsem_strerror(codes[j]), "%s and %s share text", ni, names[j]);
            cr_assert_str_neq(ni, fairsem_err_name(codes[j]));
        }
        /* and distinct from the errno texts the API also returns */
        static const int errnos[] = {EINVAL, ENOENT, EEXIST, EAGAIN, ETIMEDOUT, ECANCELED, EBUSY, ENAMETOOLONG};
        for (size_t e = 0; e < sizeof errnos / sizeof errnos[0]; e++) {
            cr_assert_str_neq(ti, fairsem_strerror(-errnos[e]));
            cr_assert_str_neq(ni, fairsem_err_name(-errnos[e]));
        }
    }
    cr_assert_str_eq(fairsem_err_name(-EAGAIN), "EAGAIN");
    cr_assert_str_eq(fairsem_err_name(-ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(fairsem_err_name(0), "OK");
    cr_assert_str_eq(fairsem_strerror(-EINVAL), strerror(EINVAL));
    /* anything at all gives some text, never NULL */
    static const int odd[] = {1, 12345, -3999, -4000, -4012, -99999, 0x7fffffff};
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        cr_assert_not_null(fairsem_strerror(odd[k]));
        cr_assert_not_null(fairsem_err_name(odd[k]));
    }
    cr_assert_str_eq(fairsem_version(), "0.1.0");
}
