/*
 * fairsem-bench - fairsem against the cross-process semaphores people use
 * today, through the same scenarios in one run (see bench/README.md).
 *
 *   fairsem-bench [--quick] [--json] [--only abcdef] [--impl LIST] [--chart DIR]
 *
 * Peers: POSIX named semaphore (sem_open), SysV semaphore with SEM_UNDO,
 * a robust process-shared pthread mutex + condvar pool in shared memory,
 * OFD byte-range locks (one byte per slot).
 *
 * Every object created here carries this process's pid in its name and is
 * removed on exit (also on SIGINT/SIGTERM); every child is waited for.
 */
#define _GNU_SOURCE
#include <fairsem.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ util */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void sleep_ns(uint64_t ns) { sleep_until(now_ns() + ns); }

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fairsem-bench[%d]: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* q in [0,1] of v[0..n) (sorts v). */
static uint64_t pct(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t k = (size_t)ceil(q * (double)n) - (q > 0);
    return v[k < n ? k : n - 1];
}

static double median_d(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

/* Process state letter from /proc/<pid>/stat ('S' = sleeping, blocked). */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

/* Wait until `pid` (which announced it is about to block) sleeps; give up
 * after `cap_ns` (it may be spinning on a CPU it shares with us). */
static void wait_blocked(pid_t pid, uint64_t cap_ns)
{
    uint64_t end = now_ns() + cap_ns;
    while (proc_state(pid) != 'S' && now_ns() < end)
        sched_yield();
}

/* ---------------------------------------------------------- options/state */

static bool opt_quick, opt_json;
static const char *opt_chart; /* --chart DIR */
static char opt_only[16] = "abcdef";
static char opt_impls[128] = "fairsem,posix,sysv,pthread,ofd,fairsem-strict";
static pid_t main_pid;

/* Objects to remove at exit. */
#define MAX_CLEAN 64
static struct {
    char kind; /* 'p' posix sem, 'm' shm, 'f' file, 's' sysv, 'F' fairsem */
    char name[96];
    int id;
} cleanup_list[MAX_CLEAN];
static int ncleanup;
static pid_t children[64];
static int nchildren;

static void clean_one(int k)
{
    switch (cleanup_list[k].kind) {
    case 'p': sem_unlink(cleanup_list[k].name); break;
    case 'm': shm_unlink(cleanup_list[k].name); break;
    case 'f': unlink(cleanup_list[k].name); break;
    case 's': semctl(cleanup_list[k].id, 0, IPC_RMID); break;
    case 'F': fairsem_unlink(cleanup_list[k].name, FAIRSEM_UNLINK_FORCE); break;
    }
    cleanup_list[k].kind = 0;
}

static int track(char kind, const char *name, int id)
{
    for (int k = 0; k < MAX_CLEAN; k++)
        if (!cleanup_list[k].kind) {
            cleanup_list[k].kind = kind;
            snprintf(cleanup_list[k].name, sizeof cleanup_list[k].name, "%s", name ? name : "");
            cleanup_list[k].id = id;
            if (k >= ncleanup)
                ncleanup = k + 1;
            return k;
        }
    die("too many objects");
    return -1;
}

static void untrack(int k)
{
    if (k >= 0 && cleanup_list[k].kind)
        clean_one(k);
}

static void kill_children(void)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    nchildren = 0;
}

static void cleanup_all(void)
{
    if (getpid() != main_pid)
        return;
    kill_children();
    for (int k = 0; k < ncleanup; k++)
        if (cleanup_list[k].kind)
            clean_one(k);
}

static void on_signal(int sig)
{
    cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static unsigned name_seq;
static void unique_name(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "/fsbench-%d-%s-%u", (int)main_pid, what, name_seq++);
}

/* ------------------------------------------------------ shared scoreboard */

#define MAXW 64
#define MAXLAT 20000
#define MAXMS 2048 /* per-millisecond op counts of a worker (scenario b) */
struct wres {
    uint64_t ops, held_ns;
    uint64_t wait_p50, wait_p99, nwaits;
    double ns_per_pair;
    uint64_t first_ns;      /* when its first acquire returned (0: never) */
    uint32_t per_ms[MAXMS]; /* ops completed in each ms of the window */
};

struct board {
    _Atomic int ready, go, failed;
    uint64_t start, end, hold_ns;
    struct wres w[MAXW];
    /* handoff */
    _Atomic int announce[2];
    _Atomic int acquired;
    _Atomic uint64_t t_release;
    _Atomic int pids[2];
    uint64_t lat[MAXLAT];
    /* dead holder */
    _Atomic int v_held, w_announce, w_done;
    uint64_t w_t1;
    int w_rc;
    /* helper processes (scale) */
    _Atomic int helper_ready, helper_stop;
};
static struct board *B;

static pid_t spawn(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    if (nchildren < 64)
        children[nchildren++] = pid;
    return pid;
}

static int reap_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            break;
        }
    return st;
}

static void reap_all(void)
{
    while (nchildren > 0) {
        int st = reap_child(children[0]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            atomic_store(&B->failed, 1);
    }
}

/* --------------------------------------------------------- implementations */

/* K_FAIRSEM_STRICT: fairsem created with FAIRSEM_STRICT_FIFO (K_FAIRSEM:
 * the default, barging), so that one run compares the two. */
enum { K_FAIRSEM, K_POSIX, K_SYSV, K_PTHREAD, K_OFD, K_FAIRSEM_STRICT, NKINDS };
static const char *kind_name[NKINDS] = {"fairsem", "posix", "sysv", "pthread", "ofd", "fairsem-strict"};

static bool is_fairsem(int kind) { return kind == K_FAIRSEM || kind == K_FAIRSEM_STRICT; }

/* What a fairsem segment looks like (scale scenario varies it). */
struct fcfg {
    unsigned max_tenants, max_waiters, max_procs;
    bool rule_one; /* custom rule: every tenant's share is 1 */
};

struct pool {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int free, waiters;
};

/* A semaphore under test: created by the parent, used by children. */
struct bobj {
    int kind;
    unsigned slots;
    char name[96];
    int semid;
    int clean_idx;
    struct fcfg fc;
    fairsem_t *fs; /* the parent's handle (reaper) */
};

/* One process's attachment. */
struct pctx {
    struct bobj *o;
    fairsem_t *fs;
    fairsem_tenant_t *ft;
    sem_t *ps;
    struct pool *pool;
};

/* One thread's. */
struct tctx {
    struct pctx *p;
    int fd; /* ofd */
    unsigned id;
};

static unsigned share_one(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)max_slots, (void)demanding, (void)arg;
    return 1;
}

static void fs_local(const struct bobj *o, fairsem_options_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_slots = o->slots;
    opt->max_tenants = o->fc.max_tenants;
    opt->max_waiters = o->fc.max_waiters;
    opt->max_procs = o->fc.max_procs;
    if (o->kind == K_FAIRSEM_STRICT)
        opt->flags = FAIRSEM_STRICT_FIFO;
    if (o->fc.rule_one) {
        opt->share_fn_name = "bench-one";
        opt->share_fn = share_one;
    }
}

static void obj_create(struct bobj *o, int kind, unsigned slots, const struct fcfg *fc)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->slots = slots;
    o->clean_idx = -1;
    if (fc)
        o->fc = *fc;
    switch (kind) {
    case K_FAIRSEM:
    case K_FAIRSEM_STRICT: {
        unique_name(o->name, sizeof o->name, "fs");
        fairsem_options_t opt;
        fs_local(o, &opt);
        int rc = fairsem_create(o->name, &opt, &o->fs);
        if (rc < 0)
            die("fairsem_create: %s", fairsem_strerror(rc));
        o->clean_idx = track('F', o->name, 0);
        break;
    }
    case K_POSIX: {
        unique_name(o->name, sizeof o->name, "sem");
        sem_t *s = sem_open(o->name, O_CREAT | O_EXCL, 0600, slots);
        if (s == SEM_FAILED)
            die("sem_open: %s", strerror(errno));
        sem_close(s);
        o->clean_idx = track('p', o->name, 0);
        break;
    }
    case K_SYSV: {
        o->semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
        if (o->semid < 0)
            die("semget: %s", strerror(errno));
        o->clean_idx = track('s', NULL, o->semid);
        if (semctl(o->semid, 0, SETVAL, (int)slots) < 0)
            die("semctl: %s", strerror(errno));
        break;
    }
    case K_PTHREAD: {
        unique_name(o->name, sizeof o->name, "pool");
        int fd = shm_open(o->name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            die("shm_open: %s", strerror(errno));
        o->clean_idx = track('m', o->name, 0);
        if (ftruncate(fd, sizeof(struct pool)) < 0)
            die("ftruncate: %s", strerror(errno));
        struct pool *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            die("mmap: %s", strerror(errno));
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&p->m, &ma);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->cv, &ca);
        p->free = (int)slots;
        munmap(p, sizeof *p);
        break;
    }
    case K_OFD: {
        snprintf(o->name, sizeof o->name, "/dev/shm/fsbench-%d-ofd-%u", (int)main_pid, name_seq++);
        int fd = open(o->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            die("open %s: %s", o->name, strerror(errno));
        o->clean_idx = track('f', o->name, 0);
        if (ftruncate(fd, slots) < 0)
            die("ftruncate: %s", strerror(errno));
        close(fd);
        break;
    }
    }
}

static void obj_destroy(struct bobj *o)
{
    if (is_fairsem(o->kind) && o->fs) {
        fairsem_close(o->fs);
        o->fs = NULL;
    }
    untrack(o->clean_idx);
    o->clean_idx = -1;
}

static int p_attach(struct pctx *p, struct bobj *o, const char *tenant)
{
    memset(p, 0, sizeof *p);
    p->o = o;
    switch (o->kind) {
    case K_FAIRSEM:
    case K_FAIRSEM_STRICT: {
        fairsem_options_t opt;
        fs_local(o, &opt);
        int rc = fairsem_open(o->name, &opt, &p->fs);
        if (rc == 0)
            rc = fairsem_tenant_register(p->fs, tenant ? tenant : "bench", 1, &p->ft);
        return rc;
    }
    case K_POSIX: p->ps = sem_open(o->name, 0); return p->ps == SEM_FAILED ? -errno : 0;
    case K_PTHREAD: {
        int fd = shm_open(o->name, O_RDWR, 0);
        if (fd < 0)
            return -errno;
        p->pool = mmap(NULL, sizeof *p->pool, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        return p->pool == MAP_FAILED ? -errno : 0;
    }
    default: return 0;
    }
}

static void p_detach(struct pctx *p)
{
    switch (p->o->kind) {
    case K_FAIRSEM:
    case K_FAIRSEM_STRICT: fairsem_close(p->fs); break;
    case K_POSIX: sem_close(p->ps); break;
    case K_PTHREAD: munmap(p->pool, sizeof *p->pool); break;
    default: break;
    }
}

static int t_init(struct tctx *t, struct pctx *p, unsigned id)
{
    t->p = p;
    t->id = id;
    t->fd = -1;
    if (p->o->kind == K_OFD) {
        t->fd = open(p->o->name, O_RDWR | O_CLOEXEC);
        if (t->fd < 0)
            return -errno;
    }
    return 0;
}

static void t_fini(struct tctx *t)
{
    if (t->fd >= 0)
        close(t->fd);
}

static void on_alarm(int sig) { (void)sig; }

static int pool_lock(struct pool *p)
{
    int rc = pthread_mutex_lock(&p->m);
    if (rc == EOWNERDEAD)
        rc = pthread_mutex_consistent(&p->m);
    return rc;
}

/* timeout_ns 0: wait forever.  0 and *tok, or a negative errno. */
static int t_acquire(struct tctx *t, uint64_t timeout_ns, uint64_t *tok)
{
    struct pctx *p = t->p;
    *tok = 0;
    switch (p->o->kind) {
    case K_FAIRSEM:
    case K_FAIRSEM_STRICT: {
        fairsem_slot_t s;
        int rc = timeout_ns ? fairsem_acquire_timeout(p->ft, timeout_ns, &s) : fairsem_acquire(p->ft, &s);
        if (rc == 0)
            *tok = s.tag;
        return rc;
    }
    case K_POSIX:
        if (timeout_ns) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t t2 = (uint64_t)ts.tv_nsec + timeout_ns;
            ts.tv_sec += (time_t)(t2 / 1000000000u);
            ts.tv_nsec = (long)(t2 % 1000000000u);
            while (sem_timedwait(p->ps, &ts) < 0)
                if (errno != EINTR)
                    return -errno;
            return 0;
        }
        while (sem_wait(p->ps) < 0)
            if (errno != EINTR)
                return -errno;
        return 0;
    case K_SYSV: {
        struct sembuf op = {0, -1, SEM_UNDO};
        struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
        while (semtimedop(p->o->semid, &op, 1, timeout_ns ? &ts : NULL) < 0)
            if (errno != EINTR)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        return 0;
    }
    case K_PTHREAD: {
        struct pool *pl = p->pool;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t t2 = (uint64_t)ts.tv_nsec + timeout_ns;
        ts.tv_sec += (time_t)(t2 / 1000000000u);
        ts.tv_nsec = (long)(t2 % 1000000000u);
        int rc = pool_lock(pl);
        if (rc)
            return -rc;
        while (pl->free == 0) {
            pl->waiters++;
            rc = timeout_ns ? pthread_cond_timedwait(&pl->cv, &pl->m, &ts) : pthread_cond_wait(&pl->cv, &pl->m);
            if (rc == EOWNERDEAD)
                rc = pthread_mutex_consistent(&pl->m);
            pl->waiters--;
            if (rc == ETIMEDOUT && pl->free == 0) {
                pthread_mutex_unlock(&pl->m);
                return -ETIMEDOUT;
            }
        }
        pl->free--;
        pthread_mutex_unlock(&pl->m);
        return 0;
    }
    case K_OFD: {
        unsigned n = p->o->slots;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
        for (unsigned k = 0; k < n; k++) {
            fl.l_start = (t->id + k) % n;
            fl.l_pid = 0;
            if (fcntl(t->fd, F_OFD_SETLK, &fl) == 0) {
                *tok = (uint64_t)fl.l_start;
                return 0;
            }
        }
        fl.l_start = t->id % n;
        fl.l_pid = 0;
        if (timeout_ns) { /* only single-threaded callers (scenario e) */
            struct sigaction sa = {.sa_handler = on_alarm};
            sigaction(SIGALRM, &sa, NULL);
            alarm((unsigned)((timeout_ns + 999999999u) / 1000000000u));
        }
        int rc;
        while ((rc = fcntl(t->fd, F_OFD_SETLKW, &fl)) < 0 && errno == EINTR && !timeout_ns)
            ;
        int err = errno;
        if (timeout_ns)
            alarm(0);
        if (rc < 0)
            return err == EINTR ? -ETIMEDOUT : -err;
        *tok = (uint64_t)fl.l_start;
        return 0;
    }
    }
    return -EINVAL;
}

static void t_release(struct tctx *t, uint64_t tok)
{
    struct pctx *p = t->p;
    switch (p->o->kind) {
    case K_FAIRSEM:
    case K_FAIRSEM_STRICT: {
        int rc = fairsem_release(p->ft, (fairsem_slot_t){tok});
        if (rc < 0)
            die("fairsem_release: %s", fairsem_strerror(rc));
        break;
    }
    case K_POSIX: sem_post(p->ps); break;
    case K_SYSV: {
        struct sembuf op = {0, 1, SEM_UNDO};
        while (semop(p->o->semid, &op, 1) < 0 && errno == EINTR)
            ;
        break;
    }
    case K_PTHREAD:
        pool_lock(p->pool);
        p->pool->free++;
        if (p->pool->waiters)
            pthread_cond_signal(&p->pool->cv);
        pthread_mutex_unlock(&p->pool->m);
        break;
    case K_OFD: {
        struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = (off_t)tok, .l_len = 1};
        fcntl(t->fd, F_OFD_SETLK, &fl);
        break;
    }
    }
}

static void must(int rc, const char *what)
{
    if (rc < 0)
        die("%s: %s", what, rc < -1000 ? fairsem_strerror(rc) : strerror(-rc));
}

/* ------------------------------------------------------- machine records */

static char *records;
static size_t rec_len, rec_cap;

/* emit("scenario", "s:b", "impl", "s:posix", "ops_per_s", "f:123.4", NULL):
 * values prefixed s: are strings, f: numbers. */
static void emit(const char *first, ...)
{
    char line[1024];
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    n += (size_t)snprintf(line + n, sizeof line - n, opt_json ? "{" : "");
    bool firstkv = true;
    for (const char *k = first; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        bool str = v[0] == 's';
        v += 2;
        if (opt_json)
            n += (size_t)snprintf(line + n, sizeof line - n, "%s\"%s\":%s%s%s", firstkv ? "" : ",", k,
                                  str ? "\"" : "", v, str ? "\"" : "");
        else {
            bool q = str && strpbrk(v, " \t\"") != NULL;
            n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%s%s%s", firstkv ? "" : " ", k, q ? "\"" : "",
                                  v, q ? "\"" : "");
        }
        firstkv = false;
        if (n >= sizeof line - 2)
            break;
    }
    va_end(ap);
    n += (size_t)snprintf(line + n, sizeof line - n, opt_json ? "}\n" : "\n");
    if (rec_len + n + 1 > rec_cap) {
        rec_cap = (rec_cap + n + 1) * 2;
        records = realloc(records, rec_cap);
        if (!records)
            die("out of memory");
    }
    memcpy(records + rec_len, line, n + 1);
    rec_len += n;
}

/* Formatting helpers for emit (rotating static buffers). */
static const char *F(double v)
{
    static char buf[64][40];
    static int k;
    char *b = buf[k++ % 64];
    if (isnan(v) || isinf(v))
        snprintf(b, 40, "f:null");
    else
        snprintf(b, 40, "f:%.6g", v);
    return b;
}
static const char *S(const char *v)
{
    static char buf[64][128];
    static int k;
    char *b = buf[k++ % 64];
    b[0] = 's', b[1] = ':';
    size_t n = strlen(v);
    if (n > 125)
        n = 125;
    memcpy(b + 2, v, n);
    b[2 + n] = 0;
    return b;
}

/* --------------------------------------------------------------- targets */

struct target {
    char name[96], rule[96];
    double measured;
    bool pass, have;
};
static struct target targets[64];
static int ntargets;

static void target(const char *name, const char *rule, double measured, bool have, bool pass)
{
    struct target *t = &targets[ntargets++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->rule, sizeof t->rule, "%s", rule);
    t->measured = measured;
    t->have = have;
    t->pass = have && pass;
}

/* Is kind one of the comma-separated names in --impls? */
static bool impl_on(int kind)
{
    size_t n = strlen(kind_name[kind]);
    for (const char *s = opt_impls; (s = strstr(s, kind_name[kind])) != NULL; s += n)
        if ((s == opt_impls || s[-1] == ',') && (s[n] == ',' || s[n] == '\0'))
            return true;
    return false;
}

/* ============================================================ scenario a */

struct unc_arg {
    struct bobj *o;
    int slot;
    uint64_t dur_ns;
    const char *tenant;
};

static void unc_child(void *arg)
{
    struct unc_arg *a = arg;
    struct pctx p;
    struct tctx t;
    must(p_attach(&p, a->o, a->tenant), "attach");
    must(t_init(&t, &p, 0), "thread init");
    uint64_t tok;
    for (int i = 0; i < 2000; i++) { /* warm up */
        must(t_acquire(&t, 0, &tok), "acquire");
        t_release(&t, tok);
    }
    double runs[5];
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = now_ns(), t1, n = 0;
        do {
            for (int i = 0; i < 128; i++) {
                t_acquire(&t, 0, &tok);
                t_release(&t, tok);
            }
            n += 128;
        } while ((t1 = now_ns()) - t0 < a->dur_ns / 5);
        runs[r] = (double)(t1 - t0) / (double)n;
    }
    B->w[a->slot].ns_per_pair = median_d(runs, 5);
    t_fini(&t);
    p_detach(&p);
}

static double run_uncontended(struct bobj *o, const char *tenant, uint64_t dur)
{
    struct unc_arg a = {o, 0, dur, tenant};
    B->w[0].ns_per_pair = 0;
    pid_t pid = spawn(unc_child, &a);
    int st = reap_child(pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        die("uncontended child failed");
    return B->w[0].ns_per_pair;
}

static double res_a[NKINDS];

/* Instructions per uncontended pair: bench/callgrind.sh on the
 * fairsem-fastpath built next to this program (NAN without valgrind). */
static double callgrind_pair(void)
{
    char self[4096], cmd[8400];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NAN;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return NAN;
    *slash = 0;
    snprintf(cmd, sizeof cmd, "sh '%s' '%s/fairsem-fastpath' 2>/dev/null", FAIRSEM_CALLGRIND_SH, self);
    fflush(NULL);
    FILE *f = popen(cmd, "r");
    if (!f)
        return NAN;
    char line[512];
    double ir = NAN;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "instructions_per_pair=", 22))
            ir = atof(line + 22);
    pclose(f);
    return ir;
}

static void scenario_a(void)
{
    uint64_t dur = opt_quick ? 100000000u : 1000000000u;
    printf("\n== a. Uncontended: one process, acquire+release pairs (median of 5 runs) ==\n");
    printf("%-10s %12s\n", "impl", "ns/pair");
    for (int k = 0; k < NKINDS; k++) {
        res_a[k] = NAN;
        if (!impl_on(k))
            continue;
        struct bobj o;
        obj_create(&o, k, 1, NULL);
        res_a[k] = run_uncontended(&o, "a", dur);
        obj_destroy(&o);
        printf("%-10s %12.1f\n", kind_name[k], res_a[k]);
        emit("scenario", S("a"), "impl", S(kind_name[k]), "ns_per_pair", F(res_a[k]), NULL);
    }
    double r1 = res_a[K_FAIRSEM] / res_a[K_POSIX];
    target("a: uncontended fairsem/posix", "<= 2.0", r1, !isnan(r1), r1 <= 2.0);
    if (impl_on(K_FAIRSEM)) {
        double ir = callgrind_pair();
        if (!isnan(ir))
            printf("fairsem instructions per pair (callgrind): %.0f\n", ir);
        emit("scenario", S("a"), "impl", S("fairsem"), "instructions_per_pair", F(ir), NULL);
        target("a: instructions per pair (callgrind)", "<= 150", ir, !isnan(ir), ir <= 150);
    }
}

/* ============================================================ scenarios b, c */

struct load_arg {
    struct bobj *o;
    int slot;    /* scoreboard entry */
    int threads; /* threads in this process */
    const char *tenant;
    bool record_waits;
};

struct thr_arg {
    struct pctx *p;
    unsigned id;
    bool record_waits;
    struct wres *res; /* single-threaded workers: their per-ms counts here */
    uint64_t ops, held;
    uint64_t *waits;
    size_t nwaits, capwaits;
};

static void *load_thread(void *arg)
{
    struct thr_arg *ta = arg;
    struct tctx t;
    must(t_init(&t, ta->p, ta->id), "thread init");
    atomic_fetch_add(&B->ready, 1);
    while (!atomic_load(&B->go))
        sleep_ns(100000);
    uint64_t start = B->start, end = B->end, hold = B->hold_ns;
    sleep_until(start);
    for (;;) {
        uint64_t tok, t0 = now_ns();
        if (t0 >= end)
            break;
        must(t_acquire(&t, 0, &tok), "acquire");
        uint64_t t1 = now_ns();
        if (t1 >= end) {
            t_release(&t, tok);
            break;
        }
        uint64_t t2 = t1;
        if (hold) {
            sleep_until(t1 + hold);
            t2 = now_ns();
        }
        t_release(&t, tok);
        ta->ops++;
        ta->held += (t2 < end ? t2 : end) - t1;
        if (ta->res) {
            if (!ta->res->first_ns)
                ta->res->first_ns = t1;
            uint64_t ms = (t1 - start) / 1000000u;
            if (ms < MAXMS)
                ta->res->per_ms[ms]++;
        }
        if (ta->record_waits && ta->nwaits < ta->capwaits)
            ta->waits[ta->nwaits++] = t1 - t0;
    }
    t_fini(&t);
    return NULL;
}

static void load_child(void *arg)
{
    struct load_arg *a = arg;
    struct pctx p;
    must(p_attach(&p, a->o, a->tenant), "attach");
    struct thr_arg ta[16];
    pthread_t th[16];
    size_t cap = a->record_waits ? 400000 : 0;
    for (int i = 0; i < a->threads; i++) {
        ta[i] = (struct thr_arg){
            &p, (unsigned)(a->slot + i), a->record_waits, a->threads == 1 ? &B->w[a->slot] : NULL, 0, 0, NULL, 0,
            cap};
        if (cap && !(ta[i].waits = malloc(cap * sizeof(uint64_t))))
            die("out of memory");
    }
    if (a->threads == 1)
        load_thread(&ta[0]);
    else {
        for (int i = 0; i < a->threads; i++)
            if (pthread_create(&th[i], NULL, load_thread, &ta[i]))
                die("pthread_create");
        for (int i = 0; i < a->threads; i++)
            pthread_join(th[i], NULL);
    }
    struct wres *r = &B->w[a->slot];
    uint64_t *all = NULL;
    size_t n = 0;
    if (a->record_waits && !(all = malloc((size_t)a->threads * cap * sizeof *all)))
        die("out of memory");
    for (int i = 0; i < a->threads; i++) {
        r->ops += ta[i].ops;
        r->held_ns += ta[i].held;
        if (all)
            memcpy(all + n, ta[i].waits, ta[i].nwaits * sizeof *all), n += ta[i].nwaits;
        free(ta[i].waits);
    }
    if (all) {
        r->nwaits = n;
        r->wait_p50 = pct(all, n, 0.50);
        r->wait_p99 = pct(all, n, 0.99);
        free(all);
    }
    p_detach(&p);
}

/* Run nproc processes (threads[i] threads each, tenant[i]) for dur. */
static void run_load(struct bobj *o, int nproc, const int *threads, const char *const *tenant, uint64_t hold,
                     uint64_t dur, bool record_waits)
{
    memset(B->w, 0, sizeof B->w);
    atomic_store(&B->ready, 0);
    B->hold_ns = hold;
    atomic_store(&B->go, 0);
    struct load_arg args[MAXW];
    int nthreads = 0;
    for (int i = 0; i < nproc; i++) {
        args[i] = (struct load_arg){o, i, threads ? threads[i] : 1, tenant ? tenant[i] : "bench", record_waits};
        nthreads += args[i].threads;
        spawn(load_child, &args[i]);
    }
    /* Every worker thread is up and attached: start them together. */
    while (atomic_load(&B->ready) < nthreads) {
        if (atomic_load(&B->failed))
            break;
        sleep_ns(200000);
    }
    B->start = now_ns() + 2000000u;
    B->end = B->start + dur;
    atomic_store(&B->go, 1);
    reap_all();
    if (atomic_load(&B->failed))
        die("a load child failed");
}

static double jain(const struct wres *w, int n)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++)
        s += (double)w[i].ops, s2 += (double)w[i].ops * (double)w[i].ops;
    return s2 > 0 ? s * s / (n * s2) : 0;
}

/* Jain's index of the ops done after every worker had its first slot, and
 * how long into the window that was (ms; NAN if some worker never got
 * one).  Telling it from the whole window's index shows whether an
 * unfair total comes from the start (some processes ran before others
 * were on a CPU at all) or from the steady state. */
static double jain_settled(const struct wres *w, int n, double *settle_ms)
{
    uint64_t last = 0;
    for (int i = 0; i < n; i++) {
        if (!w[i].first_ns) {
            *settle_ms = NAN;
            return NAN;
        }
        last = w[i].first_ns > last ? w[i].first_ns : last;
    }
    uint64_t from = (last - B->start) / 1000000u + 1, to = (B->end - B->start) / 1000000u;
    *settle_ms = (double)(last - B->start) / 1e6;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double ops = 0;
        for (uint64_t ms = from; ms < to && ms < MAXMS; ms++)
            ops += w[i].per_ms[ms];
        s += ops, s2 += ops * ops;
    }
    return s2 > 0 ? s * s / (n * s2) : NAN;
}

/* Scenario b's grid, kept for the targets and the chart. */
static const int b_P[] = {2, 4, 8, 16};
static const unsigned b_S[] = {1, 4};
static const uint64_t b_H[] = {0, 50000};
#define B_NP (sizeof b_P / sizeof b_P[0])
static double res_b_tput[2][2][B_NP][NKINDS], res_b_jain[2][2][B_NP][NKINDS], res_b_util[2][2][B_NP][NKINDS];
static bool have_b;

static void b_targets(void)
{
    char name[96];
    /* H = 0, S = 1, P = 4..16: throughput against POSIX and fairness among
     * the processes of one tenant. */
    for (size_t pi = 1; pi < B_NP; pi++) {
        double r = res_b_tput[0][0][pi][K_FAIRSEM] / res_b_tput[0][0][pi][K_POSIX];
        snprintf(name, sizeof name, "b: H=0 S=1 P=%d ops/s fairsem/posix", b_P[pi]);
        target(name, ">= 0.25", r, !isnan(r), r >= 0.25);
    }
    for (size_t pi = 1; pi < B_NP; pi++) {
        double j = res_b_jain[0][0][pi][K_FAIRSEM];
        snprintf(name, sizeof name, "b: H=0 S=1 P=%d per-process Jain", b_P[pi]);
        target(name, ">= 0.95", j, !isnan(j), j >= 0.95);
    }
    /* H = 50 us: the share of slot-time in use.  With fewer processes than
     * slots the pool cannot be full, so those rows are not targets. */
    for (size_t si = 0; si < 2; si++)
        for (size_t pi = 0; pi < B_NP; pi++) {
            if ((unsigned)b_P[pi] < b_S[si])
                continue;
            double u = res_b_util[1][si][pi][K_FAIRSEM];
            snprintf(name, sizeof name, "b: H=50us S=%u P=%d utilisation", b_S[si], b_P[pi]);
            target(name, ">= 0.95", u, !isnan(u), u >= 0.95);
        }
}

static void scenario_b(void)
{
    uint64_t dur = opt_quick ? 30000000u : 400000000u;
    printf("\n== b. Contended: P processes, S slots, hold H; %.0f ms per run ==\n", dur / 1e6);
    printf("%-8s %3s %2s %5s %12s %7s %6s %9s %7s\n", "impl", "P", "S", "H_us", "ops/s", "Jain", "util",
           "settle_ms", "Jain_s");
    for (size_t hi = 0; hi < 2; hi++)
        for (size_t si = 0; si < 2; si++)
            for (size_t pi = 0; pi < B_NP; pi++)
                for (int k = 0; k < NKINDS; k++) {
                    double *tput = &res_b_tput[hi][si][pi][k], *util = &res_b_util[hi][si][pi][k];
                    double *j = &res_b_jain[hi][si][pi][k];
                    *tput = *util = *j = NAN;
                    if (!impl_on(k))
                        continue;
                    struct bobj o;
                    obj_create(&o, k, b_S[si], NULL);
                    run_load(&o, b_P[pi], NULL, NULL, b_H[hi], dur, false);
                    obj_destroy(&o);
                    uint64_t ops = 0, held = 0;
                    for (int i = 0; i < b_P[pi]; i++)
                        ops += B->w[i].ops, held += B->w[i].held_ns;
                    *tput = (double)ops * 1e9 / (double)dur;
                    *util = (double)held / ((double)dur * b_S[si]);
                    *j = jain(B->w, b_P[pi]);
                    double settle, js = jain_settled(B->w, b_P[pi], &settle);
                    printf("%-8s %3d %2u %5.0f %12.0f %7.4f %6.3f %9.2f %7.4f\n", kind_name[k], b_P[pi], b_S[si],
                           b_H[hi] / 1e3, *tput, *j, *util, settle, js);
                    emit("scenario", S("b"), "impl", S(kind_name[k]), "P", F(b_P[pi]), "S", F(b_S[si]), "hold_us",
                         F(b_H[hi] / 1e3), "ops_per_s", F(*tput), "jain", F(*j), "util", F(*util), "settle_ms",
                         F(settle), "jain_settled", F(js), NULL);
                }
    have_b = true;
    b_targets();
}

#define C_B_THREADS 4
static double res_c_share[NKINDS], res_c_util[NKINDS];
static bool have_c;

static void scenario_c(void)
{
    uint64_t dur = opt_quick ? 500000000u : 2000000000u, hold = 100000;
    const unsigned nslots = 4;
    int threads[9];
    const char *tenants[9];
    for (int i = 0; i < 8; i++)
        threads[i] = 1, tenants[i] = "A";
    threads[8] = C_B_THREADS, tenants[8] = "B";
    printf("\n== c. Tenants: A = 8 processes, B = 1 process with %d threads; S=4, 100 us holds, %.1f s ==\n",
           C_B_THREADS, dur / 1e9);
    printf("%-8s %8s %8s %6s %10s %10s\n", "impl", "A_share", "B_share", "util", "B_p50_us", "B_p99_us");
    for (int k = 0; k < NKINDS; k++) {
        if (!impl_on(k))
            continue;
        struct bobj o;
        obj_create(&o, k, nslots, NULL);
        run_load(&o, 9, threads, tenants, hold, dur, true);
        obj_destroy(&o);
        double a = 0, b = (double)B->w[8].held_ns;
        for (int i = 0; i < 8; i++)
            a += (double)B->w[i].held_ns;
        double util = (a + b) / ((double)dur * nslots), bs = b / (a + b);
        double p50 = B->w[8].wait_p50 / 1e3, p99 = B->w[8].wait_p99 / 1e3;
        res_c_share[k] = bs;
        res_c_util[k] = util;
        printf("%-8s %8.3f %8.3f %6.3f %10.1f %10.1f\n", kind_name[k], 1 - bs, bs, util, p50, p99);
        emit("scenario", S("c"), "impl", S(kind_name[k]), "A_share", F(1 - bs), "B_share", F(bs), "util", F(util),
             "B_wait_p50_us", F(p50), "B_wait_p99_us", F(p99), "B_acquires", F((double)B->w[8].nwaits), NULL);
        if (k == K_FAIRSEM) {
            double pc = round(bs * 100), wait_ratio = p99 * 1e3 / (double)hold;
            target("c: B's share of slot-time", "48..52 % (whole %)", bs, true, pc >= 48 && pc <= 52);
            target("c: utilisation", ">= 0.95", util, true, util >= 0.95);
            target("c: B p99 wait / hold time", "<= 2.0", wait_ratio, true, wait_ratio <= 2.0);
        }
    }
    have_c = true;
    for (int k = 0; k < NKINDS; k++)
        if (!impl_on(k))
            res_c_share[k] = res_c_util[k] = NAN;
}

/* ============================================================ scenario d */

struct ho_arg {
    struct bobj *o;
    int me;
    int iters;
    const char *tenant;
};

/* Ping-pong: in round i the process i%2 holds, the other blocks in acquire;
 * the holder waits until the other sleeps, stamps t_release and releases. */
static void ho_child(void *arg)
{
    struct ho_arg *a = arg;
    struct pctx p;
    struct tctx t;
    must(p_attach(&p, a->o, a->tenant), "attach");
    must(t_init(&t, &p, (unsigned)a->me), "thread init");
    atomic_store(&B->pids[a->me], (int)getpid());
    uint64_t tok = 0;
    if (a->me == 0)
        must(t_acquire(&t, 0, &tok), "acquire");
    atomic_fetch_add(&B->ready, 1);
    while (atomic_load(&B->ready) < 2)
        sched_yield();
    for (int i = 0; i < a->iters; i++) {
        int holder = i % 2;
        if (holder == a->me) {
            while (atomic_load(&B->announce[!a->me]) != i + 1)
                sched_yield();
            wait_blocked(atomic_load(&B->pids[!a->me]), 20000000u);
            atomic_store(&B->t_release, now_ns());
            t_release(&t, tok);
            while (atomic_load(&B->acquired) != i + 1) /* no barging back */
                sched_yield();
        } else {
            atomic_store(&B->announce[a->me], i + 1);
            must(t_acquire(&t, 0, &tok), "acquire");
            uint64_t t1 = now_ns();
            if (i < MAXLAT)
                B->lat[i] = t1 - atomic_load(&B->t_release);
            atomic_store(&B->acquired, i + 1);
        }
    }
    if ((a->iters % 2) == a->me) /* holds after the last round */
        t_release(&t, tok);
    t_fini(&t);
    p_detach(&p);
}

static void run_handoff(struct bobj *o, const char *tenant, int iters, double *p50, double *p99)
{
    if (iters > MAXLAT)
        iters = MAXLAT;
    atomic_store(&B->ready, 0);
    atomic_store(&B->announce[0], 0);
    atomic_store(&B->announce[1], 0);
    atomic_store(&B->acquired, 0);
    struct ho_arg a0 = {o, 0, iters, tenant}, a1 = {o, 1, iters, tenant};
    pid_t x = spawn(ho_child, &a0);
    while (atomic_load(&B->ready) < 1) /* process 0 holds first */
        sched_yield();
    pid_t y = spawn(ho_child, &a1);
    int s1 = reap_child(x), s2 = reap_child(y);
    if (!WIFEXITED(s1) || !WIFEXITED(s2) || WEXITSTATUS(s1) || WEXITSTATUS(s2))
        die("handoff child failed");
    *p50 = pct(B->lat, (size_t)iters, 0.50) / 1e3;
    *p99 = pct(B->lat, (size_t)iters, 0.99) / 1e3;
}

static void scenario_d(void)
{
    /* Rounds interleave the implementations, so a change in the machine's
     * state (other load, idle vCPUs) hits them all alike. */
    int rounds = 4, per = opt_quick ? 100 : 1000, iters = rounds * per;
    printf("\n== d. Handoff: release in one process -> blocked waiter in another returns (%d handoffs, %d rounds) "
           "==\n",
           iters, rounds);
    printf("%-10s %10s %10s\n", "impl", "p50_us", "p99_us");
    double p50[NKINDS], p99[NKINDS];
    uint64_t *lat[NKINDS] = {0};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NKINDS; k++) {
            if (!impl_on(k))
                continue;
            if (!lat[k] && !(lat[k] = malloc((size_t)iters * sizeof(uint64_t))))
                die("out of memory");
            struct bobj o;
            double x, y;
            obj_create(&o, k, 1, NULL);
            run_handoff(&o, "d", per, &x, &y);
            obj_destroy(&o);
            memcpy(lat[k] + (size_t)r * per, B->lat, (size_t)per * sizeof(uint64_t));
        }
    for (int k = 0; k < NKINDS; k++) {
        p50[k] = p99[k] = NAN;
        if (!lat[k])
            continue;
        p50[k] = pct(lat[k], (size_t)iters, 0.50) / 1e3;
        p99[k] = pct(lat[k], (size_t)iters, 0.99) / 1e3;
        free(lat[k]);
        printf("%-10s %10.1f %10.1f\n", kind_name[k], p50[k], p99[k]);
        emit("scenario", S("d"), "impl", S(kind_name[k]), "p50_us", F(p50[k]), "p99_us", F(p99[k]), NULL);
    }
    double r1 = p50[K_FAIRSEM] / p50[K_POSIX], r2 = p99[K_FAIRSEM] / p99[K_POSIX];
    target("d: handoff p50 fairsem/posix", "<= 1.2", r1, !isnan(r1), r1 <= 1.2);
    target("d: handoff p99 fairsem/posix", "<= 1.5", r2, !isnan(r2), r2 <= 1.5);
}

/* ============================================================ scenario e */

#define E_CAP_NS 1000000000u

static void e_victim(void *arg)
{
    struct bobj *o = arg;
    struct pctx p;
    struct tctx t;
    uint64_t tok;
    must(p_attach(&p, o, "e"), "attach");
    must(t_init(&t, &p, 0), "thread init");
    must(t_acquire(&t, 0, &tok), "acquire");
    atomic_store(&B->v_held, 1);
    for (;;)
        pause(); /* until SIGKILL */
}

static void e_waiter(void *arg)
{
    struct bobj *o = arg;
    struct pctx p;
    struct tctx t;
    uint64_t tok;
    must(p_attach(&p, o, "e"), "attach");
    must(t_init(&t, &p, 0), "thread init");
    atomic_store(&B->w_announce, 1);
    int rc = t_acquire(&t, E_CAP_NS, &tok);
    B->w_t1 = now_ns();
    B->w_rc = rc;
    if (rc == 0)
        t_release(&t, tok);
    t_fini(&t);
    p_detach(&p);
}

/* One trial: ms until the waiter had the slot, or -1 (lost: 1 s cap). */
static double dead_trial(int kind, bool reap, uint64_t delay_ns)
{
    struct bobj o;
    obj_create(&o, kind, 1, NULL);
    atomic_store(&B->v_held, 0);
    atomic_store(&B->w_announce, 0);
    pid_t v = spawn(e_victim, &o);
    while (!atomic_load(&B->v_held))
        sched_yield();
    pid_t w = spawn(e_waiter, &o);
    while (!atomic_load(&B->w_announce))
        sched_yield();
    wait_blocked(w, 50000000u);
    /* Kill at a different point of the waiter's 10 ms poll each trial. */
    sleep_ns(delay_ns);
    wait_blocked(w, 50000000u);
    uint64_t t0 = now_ns();
    kill(v, SIGKILL);
    if (reap) {
        reap_child(v); /* dead and its descriptors closed */
        fairsem_reap_report_t rep;
        fairsem_reap(o.fs, &rep);
    }
    int st = reap_child(w);
    if (!reap)
        reap_child(v);
    obj_destroy(&o);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        die("dead-holder waiter failed");
    if (B->w_rc != 0)
        return -1;
    return (double)(B->w_t1 - t0) / 1e6;
}

static void scenario_e(void)
{
    int trials = opt_quick ? 3 : 10;
    printf(
        "\n== e. Dead holder: SIGKILL the holder while a waiter blocks; time until the waiter has the slot ==\n");
    printf("%-14s %8s %10s %10s %s\n", "impl", "trials", "median_ms", "max_ms", "outcome");
    for (int v = 0; v < NKINDS + 1; v++) {
        int kind = v == 0 ? K_FAIRSEM : v - 1;
        bool reap = v == 1;
        if (!impl_on(kind))
            continue;
        const char *label = v == 0 ? "fairsem" : v == 1 ? "fairsem+reap" : kind_name[kind];
        double ms[16];
        int n = 0, lost = 0;
        for (int i = 0; i < trials; i++) {
            double r = dead_trial(kind, reap, 1000000u + (uint64_t)i * 10000000u / (uint64_t)trials);
            if (r < 0) {
                lost++;
                break; /* a lost slot costs the whole cap: once is enough */
            }
            ms[n++] = r;
        }
        double mx = 0;
        for (int i = 0; i < n; i++)
            mx = fmax(mx, ms[i]);
        double med = n ? median_d(ms, n) : NAN;
        const char *outcome = lost ? "lost (slot never came back within 1 s)" : "recovered";
        if (lost)
            printf("%-14s %8d %10s %10s %s\n", label, n + lost, "lost", "lost", outcome);
        else
            printf("%-14s %8d %10.3f %10.3f %s\n", label, n, med, mx, outcome);
        emit("scenario", S("e"), "impl", S(label), "trials", F(n + lost), "median_ms", lost ? S("lost") : F(med),
             "max_ms", lost ? S("lost") : F(mx), "lost", F(lost), NULL);
        if (v == 0)
            target("e: dead holder, no reap, median ms", "<= 10", med, n > 0 && !lost, med <= 10.0);
        if (v == 1)
            target("e: dead holder, reap, median ms", "<= 1", med, n > 0 && !lost, med <= 1.0);
    }
}

/* ============================================================ scenario f */

enum { H_NONE, H_TENANTS, H_WAITERS, H_FILL };
struct helper_arg {
    struct bobj *o;
    int kind;
    unsigned n;
};

static void helper_child(void *arg)
{
    struct helper_arg *a = arg;
    fairsem_options_t opt;
    fs_local(a->o, &opt);
    fairsem_t *fs;
    must(fairsem_open(a->o->name, &opt, &fs), "helper open");
    fairsem_tenant_t *t;
    char id[32];
    fairsem_request_t **reqs = NULL;
    if (a->kind == H_TENANTS) {
        for (unsigned i = 0; i < a->n; i++) {
            snprintf(id, sizeof id, "idle-%u", i);
            must(fairsem_tenant_register(fs, id, 1, &t), "register idle tenant");
        }
    } else if (a->kind == H_WAITERS) {
        fairsem_slot_t s;
        must(fairsem_tenant_register(fs, "W", 1, &t), "register W");
        must(fairsem_acquire(t, &s), "W acquire"); /* W is now at its share (1) */
        if (!(reqs = calloc(a->n, sizeof *reqs)))
            die("out of memory");
        for (unsigned i = 0; i < a->n; i++)
            must(fairsem_request_start(t, NULL, &reqs[i]), "request_start");
        fairsem_stats_t st;
        fairsem_stats(fs, &st, NULL, 0, NULL);
        if (st.waiters != a->n)
            die("expected %u waiters, segment says %u", a->n, st.waiters);
    } else if (a->kind == H_FILL) {
        fairsem_slot_t s;
        must(fairsem_tenant_register(fs, "M", 1, &t), "register M");
        for (unsigned i = 0; i < a->n; i++)
            must(fairsem_acquire(t, &s), "fill acquire");
    }
    atomic_store(&B->helper_ready, 1);
    while (!atomic_load(&B->helper_stop))
        sleep_ns(2000000);
    if (reqs)
        for (unsigned i = 0; i < a->n; i++)
            fairsem_request_free(reqs[i]);
    free(reqs);
    fairsem_close(fs);
}

struct scale_cfg {
    const char *dim, *label;
    unsigned slots;
    struct fcfg fc;
    int helper;
    unsigned helper_n;
};

static void scenario_f(void)
{
    uint64_t dur = opt_quick ? 60000000u : 500000000u;
    int iters = opt_quick ? 200 : 2000;
    const struct scale_cfg cfgs[] = {
        {"tenants", "1", 1, {4095, 0, 0, false}, H_NONE, 0},
        {"tenants", "1000", 1, {4095, 0, 0, false}, H_TENANTS, 999},
        {"tenants", "4095", 1, {4095, 0, 0, false}, H_TENANTS, 4094}, /* + M */
        {"waiters", "0", 2, {0, 1100, 0, true}, H_WAITERS, 0},
        {"waiters", "1000", 2, {0, 1100, 0, true}, H_WAITERS, 1000},
        {"slots", "1", 1, {0, 0, 0, false}, H_FILL, 0},
        {"slots", "10000", 10000, {0, 0, 0, false}, H_FILL, 9999},
    };
    int ncfg = (int)(sizeof cfgs / sizeof cfgs[0]);
    double unc[8], p50[8], p99[8];
    printf("\n== f. Scale (fairsem): acquire+release ns and handoff us as the segment grows ==\n");
    printf("%-8s %6s %12s %10s %10s\n", "dim", "n", "ns/pair", "ho_p50_us", "ho_p99_us");
    for (int i = 0; i < ncfg; i++) {
        const struct scale_cfg *c = &cfgs[i];
        struct bobj o;
        obj_create(&o, K_FAIRSEM, c->slots, &c->fc);
        struct helper_arg ha = {&o, c->helper, c->helper_n};
        pid_t h = 0;
        atomic_store(&B->helper_ready, 0);
        atomic_store(&B->helper_stop, 0);
        if (c->helper != H_NONE) {
            h = spawn(helper_child, &ha);
            while (!atomic_load(&B->helper_ready)) {
                if (waitpid(h, NULL, WNOHANG) == h)
                    die("scale helper failed (%s %s)", c->dim, c->label);
                sleep_ns(1000000);
            }
        }
        /* In the waiters rows, W is at its share (1 of the 2 slots) with
         * its requests queued; M takes the other slot past them. In the
         * fill rows, M itself holds all slots but one. */
        unc[i] = run_uncontended(&o, "M", dur);
        run_handoff(&o, "M", iters, &p50[i], &p99[i]);
        atomic_store(&B->helper_stop, 1);
        if (h)
            reap_child(h);
        obj_destroy(&o);
        printf("%-8s %6s %12.1f %10.1f %10.1f\n", c->dim, c->label, unc[i], p50[i], p99[i]);
        emit("scenario", S("f"), "impl", S("fairsem"), "dim", S(c->dim), "n", S(c->label), "ns_per_pair",
             F(unc[i]), "handoff_p50_us", F(p50[i]), "handoff_p99_us", F(p99[i]), NULL);
    }
    printf("growth: tenants 1->1000 pair %.2fx handoff %.2fx; 1->4095 pair %.2fx handoff %.2fx\n", unc[1] / unc[0],
           p50[1] / p50[0], unc[2] / unc[0], p50[2] / p50[0]);
    printf("growth: waiters 0->1000 pair %.2fx handoff %.2fx; slots 1->10000 pair %.2fx handoff %.2fx\n",
           unc[4] / unc[3], p50[4] / p50[3], unc[6] / unc[5], p50[6] / p50[5]);
    emit("scenario", S("f-growth"), "tenants_1_1000_pair", F(unc[1] / unc[0]), "tenants_1_1000_handoff",
         F(p50[1] / p50[0]), "tenants_1_4095_pair", F(unc[2] / unc[0]), "tenants_1_4095_handoff",
         F(p50[2] / p50[0]), "waiters_0_1000_pair", F(unc[4] / unc[3]), "waiters_0_1000_handoff",
         F(p50[4] / p50[3]), "slots_1_10000_pair", F(unc[6] / unc[5]), "slots_1_10000_handoff", F(p50[6] / p50[5]),
         NULL);
    target("f: pair cost growth, tenants 1->1000", "<= 1.5", unc[1] / unc[0], true, unc[1] / unc[0] <= 1.5);
    target("f: pair cost growth, slots 1->10000", "<= 2.0", unc[6] / unc[5], true, unc[6] / unc[5] <= 2.0);
    target("f: pair cost growth, waiters 0->1000", "<= 2.0", unc[4] / unc[3], true, unc[4] / unc[3] <= 2.0);
}

/* ================================================================= chart */

/* --chart DIR: the b and c results as data files, a gnuplot script that
 * draws them, and the SVGs it makes (b.svg: ops/s against P for each S and
 * H; c.svg: tenant B's share and the utilisation per implementation). */
static FILE *chart_file(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die("--chart: %s: %s", path, strerror(errno));
    return f;
}

static void chart_data(const char *dir)
{
    FILE *f = chart_file(dir, "b.dat");
    for (size_t hi = 0; hi < 2; hi++)
        for (size_t si = 0; si < 2; si++) {
            fprintf(f, "# H_us=%.0f S=%u: P, then ops/s of each implementation\n", b_H[hi] / 1e3, b_S[si]);
            for (size_t pi = 0; pi < B_NP; pi++) {
                fprintf(f, "%d", b_P[pi]);
                for (int k = 0; k < NKINDS; k++)
                    fprintf(f, " %.6g", res_b_tput[hi][si][pi][k]);
                fprintf(f, "\n");
            }
            fprintf(f, "\n\n");
        }
    fclose(f);
    f = chart_file(dir, "c.dat");
    fprintf(f, "# impl B_share util\n");
    for (int k = 0; k < NKINDS; k++)
        if (!isnan(res_c_share[k]))
            fprintf(f, "%s %.6g %.6g\n", kind_name[k], res_c_share[k], res_c_util[k]);
    fclose(f);
}

static void chart_script(const char *dir, const char *when)
{
    FILE *f = chart_file(dir, "chart.gp");
    fprintf(f, "# made by fairsem-bench --chart; run from any directory: gnuplot %s/chart.gp\n", dir);
    fprintf(f, "dir = '%s'\nimpls = '", dir);
    for (int k = 0; k < NKINDS; k++)
        fprintf(f, "%s%s", k ? " " : "", kind_name[k]);
    fprintf(f, "'\nset terminal svg size 1100,780 dynamic font 'sans,12' background rgb 'white'\n"
               "set datafile missing 'nan'\n");
    fprintf(f,
            "set output dir.'/b.svg'\n"
            "set multiplot layout 2,2 title 'b. Contended: P processes on S slots, hold H (%s)'\n"
            "set logscale xy 2\nset logscale y 10\nset xtics (2, 4, 8, 16)\nset xrange [1.7:19]\n"
            "set xlabel 'P (processes)'\nset ylabel 'ops/s'\nset grid\nset key bottom left font ',10'\n"
            "set format y '10^{%%T}'\n",
            when);
    for (size_t hi = 0; hi < 2; hi++)
        for (size_t si = 0; si < 2; si++)
            fprintf(f,
                    "set title 'S = %u, H = %.0f us'\n"
                    "plot for [c=2:%d] dir.'/b.dat' index %zu using 1:c with linespoints lw (c == 2 ? 3 : 1.5) "
                    "title word(impls, c - 1)\n",
                    b_S[si], b_H[hi] / 1e3, NKINDS + 1, hi * 2 + si);
    fprintf(f, "unset multiplot\n");
    fprintf(f,
            "reset\nset output dir.'/c.svg'\n"
            "set multiplot layout 1,2 title \"c. Tenants: A = 8 processes, B = 1 process x 4 threads, "
            "4 slots, 100 us holds (%s)\"\n"
            "set style data histograms\nset style fill solid 0.8 border -1\nset boxwidth 0.7\n"
            "set yrange [0:1]\nset grid y\nunset key\nset xtics rotate by -30\n"
            "set title \"tenant B's share of slot-time (fair: 0.5)\"\n"
            "set arrow 1 from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 2 lw 2\n"
            "plot dir.'/c.dat' using 2:xtic(1) lc rgb '#3060a0'\n"
            "unset arrow 1\nset title 'slot utilisation (target: 0.95)'\n"
            "set arrow 2 from graph 0, first 0.95 to graph 1, first 0.95 nohead dt 2 lw 2\n"
            "plot dir.'/c.dat' using 3:xtic(1) lc rgb '#a06030'\n"
            "unset multiplot\n",
            when);
    fclose(f);
}

static void chart(const char *dir, const char *when)
{
    if (!have_b || !have_c) {
        fprintf(stderr, "fairsem-bench: --chart needs scenarios b and c; no chart written\n");
        return;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        die("--chart: %s: %s", dir, strerror(errno));
    chart_data(dir);
    chart_script(dir, when);
    char script[4200];
    snprintf(script, sizeof script, "%s/chart.gp", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "fairsem-bench: gnuplot: %s (scripts/deps.sh --bench installs it)\n", strerror(errno));
        _exit(127);
    }
    int st = reap_child(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        printf("\nchart: %s/b.svg %s/c.svg (data and gnuplot script beside them)\n", dir, dir);
    else
        fprintf(stderr, "fairsem-bench: gnuplot failed; data and script are in %s\n", dir);
}

/* ================================================================== main */

static void usage(FILE *f)
{
    fprintf(f, "usage: fairsem-bench [--quick] [--json] [--only LETTERS] [--impl LIST] [--chart DIR]\n"
               "  --quick        short runs (whole run under 20 s)\n"
               "  --json         machine-readable lines as JSON objects (default key=value)\n"
               "  --only abcdef  scenarios to run: a uncontended, b contended, c tenants,\n"
               "                 d handoff, e dead holder, f scale (default: all)\n"
               "  --impl LIST    comma-separated subset of fairsem,posix,sysv,pthread,ofd\n"
               "  --chart DIR    write DIR/b.svg and DIR/c.svg (gnuplot) from scenarios b and c\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            opt_quick = true;
        else if (!strcmp(argv[i], "--json"))
            opt_json = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            snprintf(opt_only, sizeof opt_only, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--chart") && i + 1 < argc)
            opt_chart = argv[++i];
        else if (!strcmp(argv[i], "--impl") && i + 1 < argc)
            snprintf(opt_impls, sizeof opt_impls, "%s", argv[++i]);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    main_pid = getpid();
    atexit(cleanup_all);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* 50 us default slack would swamp the holds */
    B = mmap(NULL, sizeof *B, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (B == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct utsname u;
    uname(&u);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    printf("fairsem-bench: fairsem %s, %s mode, %s, %s %s, %ld CPUs online\n", fairsem_version(),
           opt_quick ? "quick" : "full", date, u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN));
    emit("scenario", S("meta"), "fairsem", S(fairsem_version()), "mode", S(opt_quick ? "quick" : "full"), "date",
         S(date), "kernel", S(u.release), "cpus", F((double)sysconf(_SC_NPROCESSORS_ONLN)), NULL);
    uint64_t t0 = now_ns();
    if (strchr(opt_only, 'a'))
        scenario_a();
    if (strchr(opt_only, 'b'))
        scenario_b();
    if (strchr(opt_only, 'c'))
        scenario_c();
    if (strchr(opt_only, 'd'))
        scenario_d();
    if (strchr(opt_only, 'e'))
        scenario_e();
    if (strchr(opt_only, 'f') && impl_on(K_FAIRSEM))
        scenario_f();

    printf("\n== Targets (fairsem; ratios from this run) ==\n");
    for (int i = 0; i < ntargets; i++) {
        struct target *t = &targets[i];
        if (t->have)
            printf("%-50s %-20s %10.3f  %s\n", t->name, t->rule, t->measured, t->pass ? "PASS" : "MISS");
        else
            printf("%-50s %-20s %10s  %s\n", t->name, t->rule, "n/a", "MISS");
        emit("scenario", S("target"), "target", S(t->name), "rule", S(t->rule), "measured",
             t->have ? F(t->measured) : S("n/a"), "result", S(t->pass ? "PASS" : "MISS"), NULL);
    }
    if (opt_chart)
        chart(opt_chart, date);
    printf("\nwall time %.1f s\n", (now_ns() - t0) / 1e9);
    printf("\n== Machine-readable (%s) ==\n", opt_json ? "JSON lines" : "key=value lines");
    fwrite(records, 1, rec_len, stdout);
    free(records);
    return 0;
}
