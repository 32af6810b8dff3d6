/*
 * fairsem-idle - what blocked waiters cost while nothing happens, and how
 * fast a SIGKILLed holder's slot reaches one of them.
 *
 *   fairsem-idle [--seconds S] [--trials N] [--procs P] [--recovery-waiters W]
 *
 * CPU: a holder process takes every slot of a pool of 1 or 10,000 slots;
 * W = 10, 100, 1,000 waiters then block on it, spread over P processes
 * (one tenant each), half of them synchronous (one thread each in
 * fairsem_acquire) and half event-loop requests (fairsem_request_start,
 * collected by the process's poll loop).  Once the pool's queue holds all W,
 * the CPU time of every thread of every waiter process is summed from
 * /proc/<pid>/task/<tid>/schedstat over S seconds and printed as % of one CPU.
 *
 * Recovery: the same world with W = 10 (one event-loop request in each
 * process) and with the recovery W; the holder is SIGKILLed and the time
 * until the first waiter is granted (any waiter, sync or event-loop, stamps
 * a shared word) is measured, N trials per pool size, p50 and max.
 *
 * Every segment carries this process's pid in its name and is unlinked;
 * every child is killed and waited for.
 */
#define _GNU_SOURCE
#include <fairsem.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "fairsem-idle: %s: %s\n", what, rc < 0 ? fairsem_strerror(rc) : "failed");
    exit(1);
}

/* Shared with every child: the first grant's CLOCK_MONOTONIC time. */
static _Atomic uint64_t *first_grant;

static void stamp_grant(void)
{
    uint64_t none = 0, t = now_ns();
    atomic_compare_exchange_strong(first_grant, &none, t);
}

struct world {
    char name[64];
    pid_t holder;
    pid_t waiters[MAX_PROCS];
    unsigned nprocs;
};

static void signal_ready(int fd)
{
    char c = 1;
    if (write(fd, &c, 1) != 1)
        _exit(3);
}

static void wait_ready(int fd, unsigned n)
{
    char c;
    for (unsigned k = 0; k < n; k++)
        if (read(fd, &c, 1) != 1)
            die("a child did not start", 0);
}

static void holder_main(const char *name, unsigned slots, int ready)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, "holder", 0, &t))
        _exit(2);
    for (unsigned k = 0; k < slots; k++)
        if (fairsem_try_acquire(t, &s))
            _exit(2);
    signal_ready(ready);
    for (;;)
        pause();
}

static void *sync_waiter(void *arg)
{
    fairsem_slot_t s;
    if (fairsem_acquire(arg, &s) == 0)
        stamp_grant();
    for (;;)
        pause();
    return NULL;
}

/* One waiter process: `nsync` threads in fairsem_acquire, `nasync`
 * event-loop requests served by this process's poll loop. */
static void waiter_main(const char *name, unsigned idx, unsigned nsync, unsigned nasync, int ready)
{
    fairsem_t *sem;
    fairsem_tenant_t *t;
    char tenant[32];
    snprintf(tenant, sizeof tenant, "waiters-%u", idx);
    if (fairsem_open(name, NULL, &sem) || fairsem_tenant_register(sem, tenant, 0, &t))
        _exit(2);
    for (unsigned k = 0; k < nsync; k++) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        if (pthread_create(&th, &attr, sync_waiter, t))
            _exit(2);
    }
    int efd = fairsem_event_fd(sem);
    if (efd < 0)
        _exit(2);
    for (unsigned k = 0; k < nasync; k++) {
        fairsem_request_t *req;
        if (fairsem_request_start(t, NULL, &req))
            _exit(2);
    }
    signal_ready(ready);
    for (;;) {
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        if (poll(&pfd, 1, -1) == 1) {
            fairsem_request_t *done[64];
            if (fairsem_events(sem, done, 64))
                stamp_grant();
        }
    }
}

static void world_start(struct world *w, unsigned slots, unsigned waiters, unsigned procs)
{
    static unsigned serial;
    snprintf(w->name, sizeof w->name, "/fairsem-idle-%d-%u", (int)getpid(), serial++);
    fairsem_options_t o = {.max_slots = slots, .max_waiters = waiters + 16, .max_tenants = procs + 4};
    fairsem_t *sem;
    int rc = fairsem_create(w->name, &o, &sem);
    if (rc)
        die("create", rc);
    int fds[2];
    if (pipe(fds))
        die("pipe", 0);
    atomic_store(first_grant, 0);
    if ((w->holder = fork()) == 0)
        holder_main(w->name, slots, fds[1]);
    wait_ready(fds[0], 1);
    w->nprocs = waiters < procs ? waiters : procs;
    for (unsigned p = 0; p < w->nprocs; p++) {
        unsigned share = waiters / w->nprocs + (p < waiters % w->nprocs);
        if ((w->waiters[p] = fork()) == 0)
            waiter_main(w->name, p, share / 2, share - share / 2, fds[1]);
    }
    wait_ready(fds[0], w->nprocs);
    close(fds[0]);
    close(fds[1]);
    /* Every sync thread has started; wait until the queue holds them all. */
    fairsem_stats_t st;
    uint64_t give_up = now_ns() + 60ull * 1000000000u;
    while (fairsem_stats(sem, &st, NULL, 0, NULL) == 0 && st.waiters < waiters && now_ns() < give_up)
        sleep_ms(10);
    if (st.waiters < waiters)
        die("waiters did not queue", 0);
    fairsem_close(sem);
}

static void world_stop(struct world *w)
{
    kill(w->holder, SIGKILL);
    waitpid(w->holder, NULL, 0);
    for (unsigned p = 0; p < w->nprocs; p++) {
        kill(w->waiters[p], SIGKILL);
        waitpid(w->waiters[p], NULL, 0);
    }
    fairsem_unlink(w->name, 0);
}

/* CPU time (ns) of every thread of process pid so far. */
static uint64_t process_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    uint64_t sum = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char stat[320];
        snprintf(stat, sizeof stat, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(stat, "r");
        unsigned long long ns;
        if (f && fscanf(f, "%llu", &ns) == 1)
            sum += ns;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return sum;
}

static uint64_t waiters_cpu_ns(const struct world *w)
{
    uint64_t sum = 0;
    for (unsigned p = 0; p < w->nprocs; p++)
        sum += process_cpu_ns(w->waiters[p]);
    return sum;
}

static double idle_cpu_percent(unsigned slots, unsigned waiters, unsigned procs, unsigned seconds)
{
    struct world w;
    world_start(&w, slots, waiters, procs);
    sleep_ms(300); /* let the last enqueues settle */
    uint64_t t0 = now_ns(), c0 = waiters_cpu_ns(&w);
    sleep_ms(seconds * 1000);
    uint64_t c1 = waiters_cpu_ns(&w), t1 = now_ns();
    world_stop(&w);
    return 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void recovery(unsigned slots, unsigned waiters, unsigned procs, unsigned trials)
{
    double ms[256];
    unsigned n = 0;
    for (unsigned k = 0; k < trials && n < 256; k++) {
        struct world w;
        world_start(&w, slots, waiters, procs);
        sleep_ms(200 + (unsigned)(rand() % 20)); /* land anywhere in a poll interval */
        uint64_t t0 = now_ns();
        kill(w.holder, SIGKILL);
        uint64_t give_up = t0 + 10ull * 1000000000u;
        while (!atomic_load(first_grant) && now_ns() < give_up)
            sleep_ms(1);
        uint64_t t1 = atomic_load(first_grant);
        world_stop(&w);
        if (!t1)
            die("no waiter was granted within 10 s of the holder's death", 0);
        ms[n++] = (double)(t1 - t0) / 1e6;
    }
    qsort(ms, n, sizeof ms[0], cmp_double);
    printf("recovery  slots=%-6u waiters=%-5u trials=%-3u p50=%.2f ms  max=%.2f ms\n", slots, waiters, n,
           ms[n / 2], ms[n - 1]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    unsigned seconds = 3, trials = 20, procs = 10, rwaiters = 1000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--seconds"))
            seconds = (unsigned)atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--trials"))
            trials = (unsigned)atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--procs"))
            procs = (unsigned)atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--recovery-waiters"))
            rwaiters = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--trials N] [--procs P] [--recovery-waiters W]\n", argv[0]);
            return 2;
        }
    }
    if (procs < 1 || procs > MAX_PROCS || seconds < 1 || trials < 1 || rwaiters < 1) {
        fprintf(stderr, "fairsem-idle: --procs 1..%d, --seconds, --trials, --recovery-waiters >= 1\n", MAX_PROCS);
        return 2;
    }
    first_grant = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (first_grant == MAP_FAILED)
        die("mmap", 0);
    srand((unsigned)getpid());
    static const unsigned pools[] = {1, 10000}, counts[] = {10, 100, 1000};
    for (unsigned s = 0; s < 2; s++)
        for (unsigned c = 0; c < 3; c++) {
            double pct = idle_cpu_percent(pools[s], counts[c], procs, seconds);
            printf("idle cpu  slots=%-6u waiters=%-5u procs=%-3u %6.2f %% of one CPU\n", pools[s], counts[c],
                   counts[c] < procs ? counts[c] : procs, pct);
            fflush(stdout);
        }
    /* W = 10 over 10 processes is one event-loop request each: nobody but
     * event threads waits. */
    for (unsigned s = 0; s < 2; s++) {
        recovery(pools[s], 10, procs, trials);
        recovery(pools[s], rwaiters, procs, trials);
    }
    return 0;
}
