/*
 * demo - two tenants sharing 10 "browser tabs" across processes.
 *
 * Tenant A (a big crawl) starts 30 worker processes, each working through
 * 2 pages; tenant B (a small request) arrives 0.5 s later with 3 worker
 * processes of 1 page each.  The same run is made twice: first with a
 * POSIX named semaphore (sem_open) of 10, where A's workers re-take the
 * tabs they release and B waits for A's backlog, then with fairsem, where
 * B's share is 5 the moment it asks and its requests get the next tabs A
 * releases.  Every process prints a line when it gets a tab; the parent
 * prints B's worst wait under each.
 *
 * Usage: demo [SEGMENT-NAME]
 */
#define _GNU_SOURCE
#include <fairsem.h>

#include <fcntl.h>
#include <semaphore.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TABS 10
#define PAGE_MS 300

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The pool a worker takes tabs from: fairsem, or a POSIX semaphore. */
struct pool {
    fairsem_tenant_t *tenant; /* NULL: use psem */
    sem_t *psem;
};

static int pool_open(const char *name, bool fair, const char *tenant, struct pool *p)
{
    if (!fair) {
        p->tenant = NULL;
        p->psem = sem_open(name, 0);
        return p->psem == SEM_FAILED ? -1 : 0;
    }
    fairsem_t *sem;
    int rc = fairsem_open(name, NULL, &sem);
    if (rc == 0)
        rc = fairsem_tenant_register(sem, tenant, 0, &p->tenant);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", tenant, fairsem_strerror(rc));
    return rc;
}

static int pool_take(struct pool *p, fairsem_slot_t *slot)
{
    if (!p->tenant) {
        slot->tag = 0;
        return sem_wait(p->psem);
    }
    return fairsem_acquire(p->tenant, slot);
}

static void pool_give(struct pool *p, fairsem_slot_t slot)
{
    if (p->tenant)
        fairsem_release(p->tenant, slot);
    else
        sem_post(p->psem);
}

/* One worker process: fetch `pages` pages as `tenant`, reporting B's waits
 * through pipe_fd.  Exit status: 0, or 1 on error. */
static int worker(const char *name, bool fair, const char *tenant, int id, int pages, double t0, int pipe_fd)
{
    struct pool pool;
    if (pool_open(name, fair, tenant, &pool) < 0)
        return 1;
    for (int p = 0; p < pages; p++) {
        double asked = now_s();
        fairsem_slot_t slot;
        if (pool_take(&pool, &slot) < 0)
            return 1;
        double got = now_s();
        if (fair)
            printf("t=%5.2fs  %s#%-2d page %d  tab %2u  (waited %.2fs)\n", got - t0, tenant, id, p + 1,
                   fairsem_slot_index(slot), got - asked);
        else
            printf("t=%5.2fs  %s#%-2d page %d  (waited %.2fs)\n", got - t0, tenant, id, p + 1, got - asked);
        fflush(stdout);
        if (tenant[0] == 'B') {
            double waited = got - asked;
            if (write(pipe_fd, &waited, sizeof waited) != sizeof waited)
                return 1;
        }
        sleep_ms(PAGE_MS);
        pool_give(&pool, slot);
    }
    return 0;
}

static void spawn(int n, const char *name, bool fair, const char *tenant, int pages, double t0, int pipe_fd)
{
    fflush(stdout);
    for (int i = 1; i <= n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(worker(name, fair, tenant, i, pages, t0, pipe_fd));
    }
}

/* Run the scenario on one kind of pool; returns B's worst wait, or -1. */
static double scenario(const char *name, bool fair)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    printf("\n=== %s: A = 30 processes x 2 pages, B = 3 processes x 1 page, %d ms a page ===\n",
           fair ? "fairsem" : "POSIX semaphore (sem_open)", PAGE_MS);
    double t0 = now_s();
    spawn(30, name, fair, "A", 2, t0, fds[1]);
    sleep_ms(500);
    printf("t=%5.2fs  --- B arrives: A holds every tab ---\n", now_s() - t0);
    spawn(3, name, fair, "B", 1, t0, fds[1]);
    close(fds[1]);
    int status, failed = 0;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    double waited, worst = 0;
    int b_done = 0;
    while (read(fds[0], &waited, sizeof waited) == sizeof waited) {
        b_done++;
        worst = waited > worst ? waited : worst;
    }
    close(fds[0]);
    return failed || b_done != 3 ? -1 : worst;
}

int main(int argc, char **argv)
{
    char name[64];
    if (argc > 1)
        snprintf(name, sizeof name, "%s", argv[1]);
    else
        snprintf(name, sizeof name, "/fairsem-demo-%d", (int)getpid());

    sem_t *psem = sem_open(name, O_CREAT | O_EXCL, 0600, TABS);
    if (psem == SEM_FAILED) {
        perror("demo: sem_open");
        return 1;
    }
    double plain = scenario(name, false);
    sem_close(psem);
    sem_unlink(name);

    fairsem_options_t opts = {.max_slots = TABS};
    fairsem_t *sem;
    int rc = fairsem_create(name, &opts, &sem);
    if (rc < 0) {
        fprintf(stderr, "demo: cannot create %s: %s\n", name, fairsem_strerror(rc));
        return 1;
    }
    double fair = scenario(name, true);
    fairsem_close(sem);
    fairsem_unlink(name, 0);

    printf("\nB's worst wait for a tab: %.2fs with a POSIX semaphore, %.2fs with fairsem.\n", plain, fair);
    if (plain < 0 || fair < 0 || fair > PAGE_MS / 1000.0 + 0.2) {
        fprintf(stderr, "demo: unexpected outcome\n");
        return 1;
    }
    return 0;
}
